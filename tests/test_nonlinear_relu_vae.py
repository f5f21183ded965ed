"""VAEs with ReLU on one side and another non-linearity on the other (relu/erf, erf/relu, relu/relu): derived ODEs
against finite-N SGD (sampled eps, hand-written gradients), their Jacobians against finite differences, the collapse
threshold against the ODE and the simulation on both sides, fixed points, M = 2 (quadrant rule) and the refusal at
M = 3 with a ReLU encoder and a non-linear decoder."""
import math

import numpy as np
import pytest

import symvae
from symvae.derive import derive_dynamics
from symvae.derive._half_space import HalfRule1, HalfRule2
from symvae.errors import DerivationError
from symvae.model._activations import Relu, Step

from helpers import ode_simulation_rms, run_cli

SIM_INIT = dict(m=[[0.3]], m_tilde=[[0.2]], Q=[[1.0]], Q_tilde=[[1.0]], R=[[0.1]], D=[1.0])
SIM_PARAMS = dict(beta=0.5, eta=1.0, lam=0.1, rho=2.0, tau=0.3)
SIM_TIMES = [1.0, 2.0, 3.0]
#: (encoder, decoder) and the two single-non-linearity models the simulation must tell apart from it
COMBOS = [("relu", "erf"), ("erf", "relu"), ("relu", "relu")]


def _model(enc, dec, M=1):
    acts = {k: v for k, v in (("encoder_activation", enc), ("decoder_activation", dec)) if v != "linear"}
    return symvae.make_model("base", M=M, M_star=M, **acts)


def _plain(system, tmp_path):
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "generated.py"
    path.write_text(generate_source([FunctionSpec("rhs", system.rhs, ("numba",)),
                                     FunctionSpec("jac", system.jacobian, ("numba",))], system.state, system.params))
    return load_plain_first(path, f"relu_vae_{abs(hash(str(tmp_path)))}").plain


def _rms(system, rhs, sim, params):
    return ode_simulation_rms(system, rhs, sim, params, SIM_INIT, SIM_TIMES)


@pytest.mark.parametrize("enc, dec", COMBOS)
def test_relu_mixture_ode_follows_simulation(enc, dec, tmp_path):
    """N = 400, 16 seeds: the RMS deviation x sqrt(N) is of order 0.3-0.4 (measured 0.31, 0.37, 0.41), as for the
    closed-form models; each single-non-linearity model (a wrong model for this simulation) is at least twice as far
    (measured 3-8 x). No rule integrand holds a kink."""
    from symvae.simulate._nonlinear import simulate_nonlinear
    system = derive_dynamics(_model(enc, dec))
    for e in system.rhs:
        for node in e.atoms(HalfRule1, HalfRule2):
            assert not node.args[0].G.has(Relu, Step)
    if enc == "relu":
        assert any(e.has(HalfRule1, HalfRule2) for e in system.rhs)
        assert any("one side of a ReLU encoder's kink" in n for n in system.notes)
    if dec == "relu":
        assert any("ReLU kink in the reparametrisation noise" in n for n in system.notes)
    sim = simulate_nonlinear(_model(enc, dec), SIM_PARAMS, SIM_INIT, SIM_TIMES, N=400, seeds=16, seed=7)
    assert sim.status == "ok"
    right = _rms(system, _plain(system, tmp_path / "right").rhs, sim, SIM_PARAMS)
    assert right * math.sqrt(400) < 0.6, right
    for wrong_model in (_model(enc, "linear"), _model("linear", dec)):
        wrong = derive_dynamics(wrong_model)
        far = _rms(wrong, _plain(wrong, tmp_path / f"w{len(str(wrong_model))}").rhs, sim, SIM_PARAMS)
        assert far > 2 * right, (wrong_model.vae, far, right)


@pytest.mark.slow
def test_relu_erf_ode_deviation_falls_like_n_to_the_minus_half():
    """ReLU encoder, erf decoder, compiled: N = 100, 200, 400 with 32 seeds, the fitted exponent of the RMS
    deviation is about -1/2."""
    from symvae.codegen import compile_system
    from symvae.simulate._nonlinear import simulate_nonlinear
    model = _model("relu", "erf")
    system = derive_dynamics(model)
    compiled = compile_system(system)
    rms = [_rms(system, compiled.rhs, simulate_nonlinear(model, SIM_PARAMS, SIM_INIT, SIM_TIMES, N=N, seeds=32,
                                                         seed=N), SIM_PARAMS) for N in (100, 200, 400)]
    exponent = np.polyfit(np.log([100, 200, 400]), np.log(rms), 1)[0]
    assert -0.8 <= exponent <= -0.3 and rms[-1] * 20 < 0.6, (exponent, rms)


@pytest.mark.parametrize("enc, dec", [("relu", "erf"), ("relu", "relu")])
def test_jacobian_matches_finite_differences(enc, dec, tmp_path):
    """The Jacobian (half-rule covariance derivatives through the whitening) against central differences of the
    right-hand side at random states."""
    system = derive_dynamics(_model(enc, dec))
    module = _plain(system, tmp_path)
    rng = np.random.default_rng(3)
    p = system.param_vector(dict(beta=0.8, eta=1.0, lam=0.1, rho=1.5, tau=0.2))
    for _ in range(2):
        y = system.pack(dict(m=[[rng.uniform(-1, 1)]], m_tilde=[[rng.uniform(-0.5, 0.5)]],
                             Q=[[rng.uniform(0.5, 1.5)]], Q_tilde=[[rng.uniform(0.3, 1.0)]],
                             R=[[rng.uniform(-0.3, 0.3)]], D=[rng.uniform(0.3, 1.5)]))
        J = module.jac(0.0, y, p)
        for k in range(len(y)):
            up, down = y.copy(), y.copy()
            up[k] += 1e-6
            down[k] -= 1e-6
            fd = (module.rhs(0.0, up, p) - module.rhs(0.0, down, p)) / 2e-6
            assert np.allclose(J[:, k], fd, rtol=1e-6, atol=1e-8), (k, J[:, k], fd)


INIT2 = dict(m=[[0.3, 0.05], [0.05, 0.2]], m_tilde=[[0.2, 0.0], [0.0, 0.15]], Q=[[1.0, 0.1], [0.1, 1.0]],
             Q_tilde=[[1.0, 0.2], [0.2, 0.8]], R=[[0.1, 0.0], [0.0, 0.1]], D=[1.0, 0.8])


def _two_latents(enc, dec, wrong_models: bool):
    """RMS deviation of the compiled M = M* = 2 ODE from N = 400 SGD (16 seeds), and of the two single-non-linearity
    models (if ``wrong_models``)."""
    from symvae.codegen import compile_system
    from symvae.derive._half_space import QuadrantRule
    from symvae.simulate._nonlinear import simulate_nonlinear
    system = derive_dynamics(_model(enc, dec, M=2))
    assert any(e.has(QuadrantRule) for e in system.rhs)
    assert any("quadrant of two ReLU encoder kinks" in n for n in system.notes)
    sim = simulate_nonlinear(_model(enc, dec, M=2), SIM_PARAMS, INIT2, SIM_TIMES, N=400, seeds=16, seed=7)
    assert sim.status == "ok"
    rms = lambda s: ode_simulation_rms(s, compile_system(s).rhs, sim, SIM_PARAMS, INIT2, SIM_TIMES)  # noqa: E731
    others = (_model(enc, "linear", M=2), _model("linear", dec, M=2)) if wrong_models else ()
    return rms(system), [rms(derive_dynamics(m)) for m in others]


@pytest.mark.slow
@pytest.mark.parametrize("enc, dec", [("relu", "relu"), ("relu", "erf")])
def test_two_latents_follow_simulation_and_not_the_single_nonlinearity_models(enc, dec):
    """M = M* = 2 (the quadrant rule of the two encoder kinks), compiled, against the single-non-linearity models
    too; ReLU encoder with erf decoder has each latent's noise integrated inside the quadrant rule (one RHS call about
    14 ms). Measured RMS x sqrt(400): relu/relu 0.34 (others 2.6x farther), relu/erf 0.28 (others 4-6x farther).
    About 20-40 s cold each: CI checks the quadrant rule's expectations against Monte Carlo and finite differences
    (``tests/test_nonlinear_relu_mixtures.py``) and the half rules in the VAE at M = 1."""
    right, wrong = _two_latents(enc, dec, wrong_models=True)
    assert right * math.sqrt(400) < 0.6, right
    assert min(wrong) > 2 * right, (wrong, right)


def test_kinks_of_three_latents_are_refused(capsys):
    """M = 3 with a ReLU encoder and an erf decoder: a term with the kinks of three encoder fields has no rule; a
    DerivationError naming it, and exit 2 with one line from the command line that says which models do derive.
    erf on both sides at M = 3 is refused too (three directions)."""
    with pytest.raises(DerivationError, match="kinks in 3 different fields"):
        derive_dynamics(_model("relu", "erf", M=3))
    code, out, err = run_cli(capsys, "dynamics", "--encoder-activation", "relu", "--decoder-activation", "erf",
                             "--M", "3", "--M-star", "3", "--t-max", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "kinks in 3" in err, err
    assert "on both sides (erf/erf, erf/relu, relu/erf, relu/relu) up to M = 2" in err, err
    with pytest.raises(DerivationError, match="three Gaussian directions"):  # and erf on both sides likewise
        derive_dynamics(_model("erf", "erf", M=3))


@pytest.fixture(scope="module")
def relu_erf_threshold():  # about 30 s (compilation, the two rules' augmented systems): the tests using it are slow
    from symvae.codegen import compile_system
    from symvae.numerics._thresholds import threshold
    compiled = compile_system(derive_dynamics(_model("relu", "erf")))
    params = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.1)
    return compiled, params, threshold("collapse", compiled, params, digits=12)


@pytest.mark.slow
def test_relu_erf_threshold_reports_the_digits_both_rules_agree_on(relu_erf_threshold):
    """The half rules have no interval enclosure: the threshold is not certified, and the digits reported are those
    on which the root of the rule and of the rule at half the step agree (measured: they differ by 3e-14)."""
    _, _, th = relu_erf_threshold
    assert th.value is not None and not th.certified
    assert "half its step" in th.message and "not a proof" in th.message
    assert 10 <= th.digits <= 12
    assert 0.9 < float(th.value) < 1.0  # measured 0.93637415264; the linear VAE's is near rho + eta = 2


@pytest.mark.slow
def test_relu_erf_threshold_separates_learning_from_collapse(relu_erf_threshold):
    """tau = 0.1: from m = m~ = 0.5, the ODE and finite-N SGD (N = 200, 4 seeds) grow towards the learned point at
    0.7 beta_c and decay at 1.4 beta_c (measured m(100): simulation 0.58 and 0.23, ODE 0.56 and 0.22), agreeing
    within 0.1."""
    from symvae.numerics import integrate
    from symvae.simulate import simulate_nonlinear
    compiled, params, th = relu_erf_threshold
    model = _model("relu", "erf")
    init = dict(m=[[0.5]], m_tilde=[[0.5]], Q=[[1.0]], Q_tilde=[[1.0]], R=[[0.3]], D=[1.0])
    for factor, grows in ((0.7, True), (1.4, False)):
        p = {**params, "beta": factor * float(th.value)}
        sim = simulate_nonlinear(model, p, init, [100.0], N=200, seeds=4, seed=3)
        m_sim = float(np.mean(sim.per_seed["m"][:, -1, 0, 0]))
        m_ode = float(np.asarray(integrate(compiled, compiled.system.pack(init), p, [100.0], throw=True).y).ravel()[0])
        assert abs(m_sim - m_ode) < 0.1, (factor, m_sim, m_ode)
        assert (m_sim > 0.5 and m_ode > 0.5) if grows else (m_sim < 0.3 and m_ode < 0.3), (factor, m_sim, m_ode)


def test_fixed_points_of_a_relu_encoder_are_found_and_are_where_the_ode_goes(tmp_path):
    """ReLU encoder, erf decoder, rho = 2, beta = 0.5: the search (whose all-zero start has a non-finite right-hand
    side, the encoder's field having zero variance there) finds a stable learned orbit and an unstable
    noise-fitting point, in seconds (SymPy's closed forms are not attempted through rule nodes); the ODE integrated
    from a generic state ends at the learned point (measured m = 1.6778)."""
    from symvae.codegen import compile_system
    from symvae.numerics import find_fixed_points, integrate
    system = derive_dynamics(_model("relu", "erf"))
    compiled = compile_system(system)
    params = dict(beta=0.5, eta=1.0, lam=0.0, rho=2.0, tau=0.1)
    found = find_fixed_points(compiled, params)
    learned = [p for p in found.points if p.kind == "learned" and p.stability == "stable"]
    assert learned and any(p.kind == "noise-fitting" for p in found.points), [(p.kind, p.stability) for p in
                                                                              found.points]
    end = np.asarray(integrate(compiled, SIM_INIT, params, [3000.0], throw=True).y)[-1]
    assert min(np.max(np.abs(end - p.x)) for p in learned) < 1e-5, (end, [p.x for p in learned])
