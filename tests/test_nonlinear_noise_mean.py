"""Terms of more than two Gaussian directions whose extra fields are independent of everything else (the
reparametrisation noise eps_k of a VAE with erf on both sides at M >= 2): the noise is integrated inside the outer
rule (``NoiseMean`` nodes), against Monte Carlo, finite differences and finite-N simulation."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

import symvae
from symvae.derive import derive_dynamics
from symvae.derive._nonlinear_gaussian import (NOISE_NOTE, RULE_U, RULE_V, GaussRule2, Integrand, NoClosedForm,
                                               NoiseMean, nonlinear_expectation, rule_parameter)
from symvae.model._activations import ErfAct, ErfActPrime

BOTH2 = dict(encoder_activation="erf", decoder_activation="erf", M=2, M_star=2)


def g(x):
    return erf(x / math.sqrt(2))


def gp(x):
    return math.sqrt(2 / math.pi) * np.exp(-x ** 2 / 2)


# the fields: u, v correlated (c11, c12, c22), e1, e2 standard normal and independent of everything
u, v, e1, e2 = sp.symbols("u v e1 e2", real=True)
c11, c12, c22, d1, d2 = sp.symbols("c11 c12 c22 d1 d2", positive=True)
z1 = ErfAct(u) + sp.sqrt(d1) * e1
z2 = ErfAct(v) + sp.sqrt(d2) * e2


def _cov(i, j):
    C = [[c11, c12, 0, 0], [c12, c22, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    return C[i][j]


#: integrands without closed form (each latent's g(z_k)^2 alone has none), with bare fields u, v, e1 that stay in
#: the integrand, and their numpy versions for Monte Carlo
CASES = [
    (ErfAct(z1) ** 2 * ErfAct(z2) ** 2,
     lambda U, V, E1, E2, D1, D2: g(g(U) + math.sqrt(D1) * E1) ** 2 * g(g(V) + math.sqrt(D2) * E2) ** 2),
    (ErfAct(z1) * ErfActPrime(z1) * e1 * ErfAct(z2) ** 3 * ErfActPrime(u) * v,
     lambda U, V, E1, E2, D1, D2: (g(g(U) + math.sqrt(D1) * E1) * gp(g(U) + math.sqrt(D1) * E1) * E1
                                   * g(g(V) + math.sqrt(D2) * E2) ** 3 * gp(U) * V)),
    (ErfActPrime(z1) ** 2 * ErfAct(z2) * ErfActPrime(z2) * u ** 2 * ErfAct(v),
     lambda U, V, E1, E2, D1, D2: (gp(g(U) + math.sqrt(D1) * E1) ** 2 * g(g(V) + math.sqrt(D2) * E2)
                                   * gp(g(V) + math.sqrt(D2) * E2) * U ** 2 * g(V))),
]


def _node(expr):
    value = nonlinear_expectation(expr, [u, v, e1, e2], _cov, quadrature=True, nodes=True)
    assert value.has(GaussRule2)
    (node,) = value.atoms(GaussRule2)
    assert node.args[0].G.has(NoiseMean)  # the noise is inside the outer two-direction rule
    return value


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    """The expectations of CASES and their derivatives in c12 and d1, generated (numba kernels loaded as plain Python:
    the same code and bits as compiled), numpy and mpmath."""
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    values = [_node(expr) for expr, _ in CASES]
    exprs = values + [sp.diff(x, c12) for x in values] + [sp.diff(x, d1) for x in values]
    path = tmp_path_factory.mktemp("noise") / "generated.py"
    path.write_text(generate_source([FunctionSpec("nodes", exprs)], (c11, c12, c22, d1, d2), ()))
    return load_plain_first(path, "noise_mean_test").plain


def _random_points(count, seed):
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(count):
        a, b = rng.uniform(0.2, 1.0, size=2)
        r = rng.uniform(-0.9, 0.9)
        points.append(np.array([a, r * math.sqrt(a * b), b, *rng.uniform(0.1, 1.5, size=2)]))
    return points


def test_nested_rules_against_monte_carlo(module):
    """At random covariances (correlation up to 0.9) and noise variances, each expectation over four fields equals
    a 10^6-sample Monte Carlo estimate within 4.5 standard errors."""
    rng = np.random.default_rng(5)
    n = 10 ** 6
    for y in _random_points(3, 11):
        C = np.array([[y[0], y[1]], [y[1], y[2]]])
        U, V = (np.linalg.cholesky(C) @ rng.normal(size=(2, n)))
        E1, E2 = rng.normal(size=(2, n))
        got = module.nodes(0.0, y, np.zeros(0))
        for k, (_, f) in enumerate(CASES):
            sample = f(U, V, E1, E2, y[3], y[4])
            se = sample.std() / math.sqrt(n)
            assert abs(got[k] - sample.mean()) < 4.5 * se, (k, y, got[k], sample.mean(), se)


def test_backends_agree_and_derivatives_match_finite_differences(module):
    """numba (as plain Python), numpy and mpmath (at one point) give the same values to 1e-12; the derivatives in the covariance
    (Price's theorem on the outer rule, through the NoiseMean parameters) and in the noise variance d1 (inside
    NoiseMean) equal central differences of the compiled values to the rule's error (measured: below 1e-8 here)."""
    import mpmath
    n = len(CASES)
    for j, y in enumerate(_random_points(3, 12)):
        got = module.nodes(0.0, y, np.zeros(0))
        assert np.allclose(module.nodes_numpy(0.0, y, np.zeros(0)), got, rtol=1e-12, atol=1e-15)
        if j == 0:  # mpmath (nested loops at 25 digits: seconds per point) at one point
            with mpmath.workdps(25):
                mp = module.nodes_mp(0.0, [mpmath.mpf(x) for x in y], [])
            assert np.allclose([float(x) for x in mp], got, rtol=1e-12, atol=1e-15)
        for k, offset in ((1, n), (3, 2 * n)):
            h = 1e-5
            up, down = y.copy(), y.copy()
            up[k] += h
            down[k] -= h
            fd = (module.nodes(0.0, up, np.zeros(0))[:n] - module.nodes(0.0, down, np.zeros(0))[:n]) / (2 * h)
            assert np.allclose(got[offset:offset + n], fd, rtol=1e-6, atol=1e-8), (k, got[offset:offset + n], fd)


def test_noise_mean_node_rules():
    """NoiseMean: a constant integrand is itself; its derivative in a parameter is the node of dH/dq; LaTeX prints
    the expectation over epsilon."""
    a, b = sp.symbols("a b", real=True)
    q1, q2 = rule_parameter(1), rule_parameter(2)
    assert NoiseMean(Integrand(q1 ** 2), a) == a ** 2
    node = NoiseMean(Integrand(ErfAct(ErfAct(q1) + q2 * RULE_U) ** 2), a, b)
    d = sp.diff(node, b)
    assert isinstance(d, NoiseMean) and d.args[0].G == sp.diff(node.args[0].G, q2)
    text = sp.latex(node)
    assert text.startswith(r"\mathbb{E}_{\epsilon}") and r"\epsilon" in text and "u_rule" not in text


def _noise_quad(H, *args):
    """E[H(e; args)], e ~ N(0, 1), by mpmath's adaptive quadrature at 30 digits (independent of the trapezoidal
    rule and of the folding)."""
    import mpmath
    f = sp.lambdify([RULE_U] + [rule_parameter(k + 1) for k in range(len(args))], H, modules=[{
        "ErfAct": lambda x: mpmath.erf(x / mpmath.sqrt(2)), "ErfActPrime": lambda x: mpmath.sqrt(2 / mpmath.pi)
        * mpmath.exp(-x ** 2 / 2)}, "mpmath"])
    with mpmath.workdps(30):
        return mpmath.quad(lambda e: f(e, *args) * mpmath.npdf(e), [-mpmath.inf, 0, mpmath.inf])


def test_noise_means_fold_a_negated_argument_by_the_reflection_of_the_noise():
    """E[H(e; -x)] = +-E[H(e; x)] when H(-e; x) = +-H(e; -x) symbolically: NoiseMean pulls the sign out, which is what
    makes the parity of an outer integrand visible. Each fold is checked against adaptive quadrature of both sides,
    and an H without the symmetry stays as it is."""
    d, x = sp.symbols("d x", positive=True)
    q1, q2 = rule_parameter(1), rule_parameter(2)
    odd = Integrand(ErfAct(sp.sqrt(q1) * RULE_U + ErfAct(q2)))  # a decoder's g(sqrt(D) eps + g(mu))
    even = Integrand(ErfAct(sp.sqrt(q1) * RULE_U + ErfAct(q2)) ** 2 * ErfActPrime(q2))
    neither = Integrand(ErfAct(RULE_U + 1) * q2 + q1)
    assert NoiseMean(odd, d, -x) == -NoiseMean(odd, d, x)
    assert NoiseMean(even, d, -x) == NoiseMean(even, d, x)
    assert NoiseMean(neither, d, -x).args[1:] == (d, -x)
    for g, sign in ((odd, -1), (even, 1)):
        a, b = _noise_quad(g.G, 0.7, -0.9), _noise_quad(g.G, 0.7, 0.9)
        assert abs(a - sign * b) < 1e-15 and abs(b) > 1e-3, (g, a, b)
    a, b = _noise_quad(neither.G, 0.7, -0.9), _noise_quad(neither.G, 0.7, 0.9)
    assert abs(a - b) > 1e-2 and abs(a + b) > 1e-2


def test_rule_nodes_vanish_by_parity_only_over_independent_directions(tmp_path):
    """A two-direction node is zero when its integrand is odd in one direction and S12 = 0 (the reflection of that
    direction alone preserves the measure), also through a folded noise mean; not when S12 != 0 or the integrand is
    even. The compiled rule agrees: at S12 = 0 it gives rounding only, at S12 = 0.3 a clear value."""
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    from symvae.derive._nonlinear_gaussian import GaussRule1
    s11, s12, s22, dd = sp.symbols("s11 s12 s22 dd", real=True)
    q1 = rule_parameter(1)
    inner = NoiseMean(Integrand(ErfAct(sp.sqrt(rule_parameter(1)) * RULE_U + ErfAct(rule_parameter(2)))), q1,
                      RULE_U)
    odd_u = Integrand(inner * ErfAct(RULE_V))  # odd in u (through the noise mean) and in v, even in both together
    even = Integrand(inner ** 2 * ErfAct(RULE_V) ** 2)
    assert GaussRule2(odd_u, s11, 0, s22, dd) == 0
    assert GaussRule2(Integrand(RULE_U * ErfAct(RULE_V) ** 2), s11, 0, s22) == 0
    assert GaussRule1(Integrand(ErfAct(RULE_U) ** 3), s11) == 0
    assert isinstance(GaussRule2(odd_u, s11, s12, s22, dd), GaussRule2)
    assert isinstance(GaussRule2(even, s11, 0, s22, dd), GaussRule2)
    node = GaussRule2(odd_u, s11, s12, s22, dd)
    assert node.xreplace({s12: 0}) == 0  # what the invariant-subspace check relies on
    source = generate_source([FunctionSpec("node", [node])], (s11, s12, s22, dd), ())
    path = tmp_path / "generated.py"
    path.write_text(source)
    plain = load_plain_first(path, "parity_node_test").plain
    at_zero = plain.node(0.0, np.array([0.8, 0.0, 0.6, 0.5]), np.zeros(0))[0]
    at_corr = plain.node(0.0, np.array([0.8, 0.3, 0.6, 0.5]), np.zeros(0))[0]
    assert abs(at_zero) < 1e-15 and abs(at_corr) > 1e-3, (at_zero, at_corr)


def test_correlated_fields_beyond_two_directions_still_raise():
    """Only fields independent of all others go inside: three correlated directions have no rule (a DerivationError
    naming the limit), and so do three independent fields with nothing left outside."""
    x, y, w = sp.symbols("x y w", real=True)
    corr = lambda i, j: sp.Integer(1) if i == j else sp.Rational(1, 3)  # noqa: E731
    with pytest.raises(NoClosedForm, match="limited to 2 Gaussian directions"):
        nonlinear_expectation(sp.tanh(x) * sp.tanh(y) * sp.tanh(w), [x, y, w], corr, quadrature=True, nodes=True)


@pytest.fixture(scope="module")
def system():
    return derive_dynamics(symvae.make_model("base", **BOTH2))


def test_erf_both_sides_at_two_latents_is_derived(system):
    """erf on both sides at M = M* = 2 (four Gaussian directions per cross-latent term) derives: the cross terms
    are two-direction nodes over (mu_1, mu_2) with each latent's noise inside, and the system says so."""
    nodes = set().union(*(e.atoms(GaussRule2) for e in system.rhs))
    inner = [n for n in nodes if n.args[0].G.has(NoiseMean)]
    assert inner and len(inner) < len(nodes)  # same-latent terms stay (mu_k, eps_k) nodes, as at M = 1
    assert any(NOISE_NOTE in note for note in system.notes)
    assert {p.name for p in system.params} == {"beta", "eta", "lam", "rho", "tau"}


INIT = dict(m=[[0.3, 0.05], [0.0, 0.25]], m_tilde=[[0.2, 0.0], [0.05, 0.15]], Q=[[1.0, 0.1], [0.1, 0.8]],
            Q_tilde=[[0.6, 0.05], [0.05, 0.5]], R=[[0.1, 0.0], [0.02, 0.1]], D=[1.0, 0.8])
PARAMS = dict(beta=0.5, eta=1.0, lam=0.1, rho=2.0, tau=0.3)
TIMES = [1.0, 2.0, 3.0]


def _rms(system, rhs, sim):
    from scipy.integrate import solve_ivp
    p = system.param_vector(PARAMS)
    sol = solve_ivp(lambda t, y: rhs(t, y, p), (0.0, TIMES[-1]), system.pack(INIT), t_eval=TIMES, method="DOP853",
                    rtol=1e-9, atol=1e-11)
    assert sol.status == 0
    ode = system.unpack(sol.y)
    squares = [((sim.per_seed[k] - np.moveaxis(ode[k], -1, 0)[None]) ** 2).reshape(sim.seeds, -1)
               for k in ("m", "m_tilde", "Q", "Q_tilde", "R", "D")]
    return float(np.sqrt(np.mean(np.concatenate(squares, axis=1))))


def _wrong():
    """The erf-decoder-only model at M = 2: a wrong ODE for the simulation of erf on both sides."""
    from symvae.codegen import compile_system
    other = derive_dynamics(symvae.make_model("base", **{**BOTH2, "encoder_activation": "linear"}))
    return other, compile_system(other)


def test_erf_both_sides_at_two_latents_follows_simulation(system):
    """The compiled ODE against finite-N online SGD (sampled eps, hand-written gradients), N = 400, 16 seeds: the
    RMS deviation x sqrt(N) is of order 0.3 (measured 0.28 with 32 seeds), while the ODE of the erf decoder alone
    stays about three times farther away."""
    from symvae.codegen import compile_system
    from symvae.simulate._nonlinear import simulate_nonlinear
    model = symvae.make_model("base", **BOTH2)
    sim = simulate_nonlinear(model, PARAMS, INIT, TIMES, N=400, seeds=16, seed=3)
    assert sim.status == "ok"
    right = _rms(system, compile_system(system).rhs, sim)
    other, compiled_other = _wrong()
    wrong = _rms(other, compiled_other.rhs, sim)
    assert right * math.sqrt(400) < 0.6, right
    assert wrong > 2 * right, (wrong, right)


@pytest.mark.slow
def test_erf_both_sides_at_two_latents_deviation_falls_like_n_to_the_minus_half(system):
    """N = 100, 200, 400 with 32 seeds: the RMS deviation falls like N^-1/2 (measured exponent -0.47; the erf
    decoder alone: 0.049, 0.044, 0.043, no decrease)."""
    from symvae.codegen import compile_system
    from symvae.simulate._nonlinear import simulate_nonlinear
    model = symvae.make_model("base", **BOTH2)
    rhs = compile_system(system).rhs
    rms = [_rms(system, rhs, simulate_nonlinear(model, PARAMS, INIT, TIMES, N=N, seeds=32, seed=N))
           for N in (100, 200, 400)]
    exponent = np.polyfit(np.log([100, 200, 400]), np.log(rms), 1)[0]
    assert -0.8 <= exponent <= -0.3 and rms[-1] * 20 < 0.6, (exponent, rms)


def test_thresholds_of_systems_too_slow_for_mpmath_are_refined_in_float64(system, monkeypatch):
    """Where one mpmath right-hand side would run more than ``MP_RULE_STATEMENTS_LIMIT`` statements of rule loops
    (erf on both sides at M = 2: 5.4e6, about 26 s each; at M = 1: 5.5e4), the threshold is refined by float64 Newton
    on the augmented system with the rules at successive levels, never certified, with the digits on which two
    levels agree, bounded by float64 rounding. The path is exercised on the linear model with the limit lowered: its
    threshold is rho + eta (a closed form), and without rules the levels agree to rounding."""
    from symvae.codegen._rules import rule_statements
    from symvae.numerics import _thresholds
    from symvae.numerics._thresholds import MP_RULE_STATEMENTS_LIMIT, threshold
    assert rule_statements(system.rhs) > MP_RULE_STATEMENTS_LIMIT
    m1 = derive_dynamics(symvae.make_model("base", encoder_activation="erf", decoder_activation="erf"))
    assert 0 < rule_statements(m1.rhs) < MP_RULE_STATEMENTS_LIMIT / 10
    monkeypatch.setattr(_thresholds, "MP_RULE_STATEMENTS_LIMIT", -1)
    params = dict(rho=1.5, eta=0.5, lam=0.0, tau=0.01)
    result = threshold("collapse", symvae.make_model("base"), params, digits=20)
    assert result.status == "partial" and not result.certified and result.interval is None
    assert 12 <= result.digits <= 15, result.message
    assert abs(float(result.value) - 2.0) <= 10.0 ** (1 - result.digits), (result.value, result.digits)
    assert "solved in float64 only" in result.message and "not a proof" in result.message
    assert abs(result.float64 - 2.0) < 1e-6 and result.as_dict()["digits"] == result.digits
    assert threshold("collapse", symvae.make_model("base"), params, digits=8).status == "verified"


def test_the_collapsed_point_of_erf_on_both_sides_splits_into_one_block_per_latent_and_spike(system):
    """At the collapsed point the cross-latent overlaps vanish with the signal (each latent's sign flip is a symmetry
    when both activations are odd), and that subspace is found invariant symbolically: a rule node whose integrand
    is odd in a direction independent of the other is zero. The signal then splits into one 2 x 2 block (m_kj,
    m~_kj) per latent and spike; before, the latents shared a block whose determinant, with two equal spikes, had a
    double zero at the collapse and no sign change, so the threshold was not found. Checked at random points of the
    subspace with the compiled right-hand side."""
    from symvae.codegen import compile_system
    from symvae.numerics._subspaces import invariant_subspace
    from symvae.simulate import random_initial_state
    names = [s.name for s in system.state]
    signal = [i for i, n in enumerate(names) if n.startswith("m_")]
    cross = [names.index(n) for n in ("Q_12", "Q_tilde_12", "R_12", "R_21")]
    sub = invariant_subspace(system, signal + cross)
    assert sorted(sub.zero) == sorted(signal + cross)
    blocks = sorted(b.names for b in sub.blocks if b.label == "signal")
    assert blocks == [(f"m_{k}{j}", f"m_tilde_{k}{j}") for k in (1, 2) for j in (1, 2)]
    compiled = compile_system(system)
    for seed in range(3):
        y = np.array(system.pack({k: v for k, v in random_initial_state(system.table, 40, seed=seed).items()
                                  if k in system.blocks}))
        y[list(sub.zero)] = 0.0
        p = np.random.default_rng(seed).uniform(0.2, 1.0, size=len(system.params))
        F = compiled.rhs(0.0, y, p)
        assert np.max(np.abs(F[list(sub.zero)])) < 1e-14
        for j in sub.zero:  # the block structure, by central differences: (m_kj, m~_kj) couples to nothing else
            step = np.zeros_like(y)
            step[j] = 1e-4
            column = (compiled.rhs(0.0, y + step, p) - compiled.rhs(0.0, y - step, p)) / 2e-4
            others = [i for i in signal if names[j][-2:] != names[i][-2:] or j in cross]
            assert np.max(np.abs(column[others])) < 1e-9, names[j]


@pytest.mark.slow
def test_erf_both_sides_at_two_latents_threshold_equals_the_certified_one_latent_value(system):
    """erf on both sides, M = M* = 2, equal spikes: the collapse threshold (float64 refinement over rule levels)
    equals the certified M = 1 value: at the collapsed point the cross overlaps vanish, so each latent meets its
    spike as if alone. Measured: rule levels 1, 2, 3 give 1.89813615289, 1.898136149429189, 1.8981361494291307
    against the certified 1.8981361494291304944 (rho = eta = 1, lambda = 0, tau = 0.1); 12 digits reported. The
    M = 2 ODE learns at 0.9 beta_c and collapses at 1.1 beta_c."""
    from symvae.numerics._thresholds import threshold
    params = dict(rho=1.0, eta=1.0, lam=0.0, tau=0.1)
    one = threshold("collapse", symvae.make_model("base", encoder_activation="erf", decoder_activation="erf"), params,
                    digits=20)
    assert one.certified and one.digits >= 18
    two = threshold("collapse", system, params, digits=12)
    assert two.status == "verified" and two.digits == 12 and not two.certified, two.message
    assert abs(float(two.value) - float(one.value)) <= 10.0 ** -11 * float(one.value), (two.value, one.value)
    # the M = 2 ODE on both sides, from m = m~ = 0.05 on the diagonal (max |m| at t = 250, 500, 1000; measured:
    # 0.13, 0.26, 0.65 at 0.9 beta_c; 0.031, 0.016, 0.0041 at 1.1 beta_c)
    from symvae.numerics import integrate
    x0 = system.pack(dict(m=[[0.05, 0.0], [0.0, 0.05]], m_tilde=[[0.05, 0.0], [0.0, 0.05]], Q=[[0.09, 0], [0, 0.09]],
                          Q_tilde=[[0.01, 0], [0, 0.01]], R=[[0.02, 0], [0, 0.02]], D=[1.0, 1.0]))
    signal = [i for i, s in enumerate(system.state) if s.name.startswith("m_")]
    for factor, grows in ((0.9, True), (1.1, False)):
        run = integrate(system, x0, {**params, "beta": float(two.value) * factor}, [250, 500, 1000], rtol=1e-8,
                        throw=True)
        m = [float(np.max(np.abs(np.asarray(y)[signal]))) for y in run.y]
        assert (m[0] < m[1] < m[2] and m[2] > 0.3) if grows else (m[0] > m[1] > m[2] and m[2] < 0.01), (factor, m)


def test_invariant_subspaces_of_the_rule_system_are_found_without_expansion(system):
    """Fixed points and continuation ask which coordinate subspaces are invariant. On this system a symbolic
    expansion of F_i takes minutes per coordinate; coordinates that move at a random point of the subspace are now
    dropped numerically first. With every overlap zero (W = W~ = 0) only Q_11 and Q_22 move (the sampled eps feeds
    the decoder's norm at O(tau^2); Q_12 needs E[g(z_1) g(z_2)] = 0); m = m~ = 0 stays invariant, and the subspace
    found is invariant at random points of it."""
    import time

    from symvae.codegen import compile_system
    from symvae.numerics._subspaces import _moving_numerically, invariant_subspace
    from symvae.simulate import random_initial_state
    names = [s.name for s in system.state]
    signal = [i for i, n in enumerate(names) if n.startswith("m_")]
    norms = [i for i, n in enumerate(names) if n.split("_")[0] in ("Q", "R")]
    diagonal = [names.index("Q_11"), names.index("Q_22")]
    assert not _moving_numerically(system, frozenset(signal))
    assert _moving_numerically(system, frozenset(signal + norms)) == set(diagonal)
    start = time.process_time()
    sub = invariant_subspace(system, signal + diagonal)
    assert time.process_time() - start < 120  # it ran for over 8 minutes before, in the expansion
    zero = sorted(sub.zero)
    assert zero == sorted(signal)
    compiled = compile_system(system)
    for seed in range(3):
        y = np.array(system.pack({k: v for k, v in random_initial_state(system.table, 40, seed=seed).items()
                                  if k in system.blocks}))
        y[zero] = 0.0
        p = np.random.default_rng(seed).uniform(0.2, 1.0, size=len(system.params))
        assert np.max(np.abs(compiled.rhs(0.0, y, p)[zero])) < 1e-14


def test_a_crossing_without_a_sign_change_is_reported_where_it_happened():
    """A collapsed branch that is stable at its start and unstable further on, with no branch point detected (each
    signal eigenvalue twice: the block determinant keeps its sign), is reported with the interval where it lost
    stability, not as "no collapse threshold in range"; a branch that stays stable is not."""
    from types import SimpleNamespace

    from symvae.numerics._thresholds import _unseen_crossing
    branch = SimpleNamespace(stable=np.array([True, True, False, False]), p=np.array([2.0, 1.95, 1.9, 1.8]))
    text = _unseen_crossing(branch, "beta")
    assert "between beta = 1.9 and 1.95" in text and "in pairs" in text
    assert _unseen_crossing(SimpleNamespace(stable=np.array([True, True]), p=np.array([2.0, 1.0])), "beta") == ""
    assert _unseen_crossing(None, "beta") == ""
    # a branch point located at 1.7 is not the collapse threshold when the branch was unstable above it already;
    # one located at 1.9 is (the unstable points below it are its own crossing)
    assert "between beta = 1.9 and 1.95" in _unseen_crossing(branch, "beta", above=1.7)
    assert _unseen_crossing(branch, "beta", above=1.9) == ""
