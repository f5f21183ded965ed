"""The derived N -> infinity ODEs against finite-N online SGD, for the base model and variants nobody derived by hand.

Deviations of order parameters from their N -> infinity limit are fluctuations of size O(N^-1/2) (plus an O(1/N) bias),
so tolerances are stated as c / sqrt(N). Every test also runs a negative control: an ODE that is wrong in a way the
simulation can see (the O(tau^2) terms dropped, or the mini-batch noise of b = 1) must fall outside the same tolerance.
"""
import dataclasses

import numpy as np
import pytest
import sympy as sp

import symvae
from symvae.numerics import integrate
from symvae.simulate import simulate

INIT = {"m": [[0.3]], "m_tilde": [[0.3]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}
# tau = 0.5: the dynamics (off the m = 0 plateau thanks to m(0) = 0.3) settle by t ~ 30, and the O(tau^2) terms of
# the ODE are large enough for the simulation to resolve them at N = 500 - 1000
PARAMS = dict(rho=1.5, eta=0.5, beta=0.6, lam=0.05, tau=0.5)
T_EVAL = np.linspace(0.0, 30.0, 31)
SEEDS = 8

# Tolerances, measured once (seed 0, 8 seeds, this PARAMS / T_EVAL) and stated in units of N^-1/2:
# - C_SEED: each seed's largest deviation over the trajectory and over all order-parameter entries. Measured
#   sqrt(N) * max over seeds: base 2.99, tied 1.30, learned_sigma2 3.70, minibatch 1.18 (N = 500),
#   step_sizes_annealing 3.06 (N = 1000 unless stated; 2.3 - 3.2 at N = 500). The maximum of ~200 correlated
#   fluctuations of an O(1) process over 8 seeds is a few standard deviations, hence a constant of order 3; 5 leaves
#   room for other seeds and platforms.
# - C_MEAN: the largest deviation of the seed mean, a fluctuation of size 1/sqrt(N * SEEDS) (the O(1/N) bias is below
#   it at these N). Measured sqrt(N * SEEDS) * deviation: 0.6 - 2.5 over the cases; 4 is the tolerance.
# The negative controls are far outside: dropping the tau^2 terms gives sqrt(N * SEEDS) * deviation 18 (base) and 75
# (learned sigma2) at N = 1000, with every seed beyond C_SEED (sqrt(N) * per-seed deviation: base min 6.0, median 6.9;
# learned sigma2 min 26); the b = 1 ODE against the b = 4 simulation gives 9.3 at N = 500.
C_SEED = 5.0
C_MEAN = 4.0


def _deviations(res, ode):
    """(per-seed max deviation (seeds,), max deviation of the seed mean) over times and all order-parameter entries."""
    per_seed = np.zeros(res.seeds)
    of_mean = 0.0
    for name, sim in res.per_seed.items():
        diff = sim - ode[name][None]
        per_seed = np.maximum(per_seed, np.abs(diff).reshape(res.seeds, len(res.t), -1).max(axis=(1, 2)))
        of_mean = max(of_mean, float(np.max(np.abs(diff.mean(axis=0)))))
    return per_seed, of_mean


def _within(res, ode) -> bool:
    per_seed, of_mean = _deviations(res, ode)
    return bool(np.all(per_seed < C_SEED / np.sqrt(res.N)) and of_mean < C_MEAN / np.sqrt(res.N * res.seeds))


def _without_tau_squared(system):
    """The same ODE with every term of second order in the step sizes removed (the pitfall of docs/model.md section 3)."""
    taus = [p for p in system.params if p.name.startswith("tau")]

    def first_order(expr):
        terms = sp.Add.make_args(sp.expand(expr))
        return sp.Add(*[term for term in terms if sum(sp.degree(term, tau) for tau in taus) < 2])

    return dataclasses.replace(system, rhs=tuple(first_order(e) for e in system.rhs))


CASES = {
    # name: (model, extra parameters, initial state, N)
    "base": (lambda: symvae.make_model("base"), {}, INIT, 1000),
    "tied": (lambda: symvae.make_model("tied"), {}, {"m": [[0.3]], "Q": [[1.0]], "D": [1.0]}, 1000),
    "learned_sigma2": (lambda: symvae.make_model("learned_sigma2"), {}, dict(INIT, sigma2=1.0), 1000),
    "minibatch": (lambda: symvae.make_model("minibatch"), {"b": 4}, INIT, 500),
    # separate step sizes and a KL annealing schedule beta(t) = beta tanh(gamma t), in one model
    "step_sizes_annealing": (lambda: symvae.make_model("step_sizes", beta_schedule="beta*tanh(gamma*t)"),
                             {"tau_W": 0.5, "tau_W_tilde": 0.25, "tau_D": 1.0, "gamma": 0.2}, INIT, 1000),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ode_matches_simulation(case):
    make, extra, init, N = CASES[case]
    model = make()
    params = dict(PARAMS, **extra)
    system = symvae.derive_dynamics(model)
    ode = integrate(system, init, params, T_EVAL, throw=True).order_parameters()
    res = simulate(model, params, init, T_EVAL, N=N, seeds=SEEDS)
    assert res.ok, res.message
    assert np.allclose(res.t, T_EVAL)
    per_seed, of_mean = _deviations(res, ode)
    assert np.all(per_seed < C_SEED / np.sqrt(N)), f"sqrt(N) * per-seed deviation {np.sqrt(N) * per_seed}"
    assert of_mean < C_MEAN / np.sqrt(N * SEEDS), f"sqrt(N * seeds) * mean deviation {of_mean * np.sqrt(N * SEEDS)}"
    # the dynamics did happen: m moved by much more than the tolerance on the mean
    assert np.max(np.abs(ode["m"][-1] - ode["m"][0])) > 5 * C_MEAN / np.sqrt(N * SEEDS)

    # negative controls: a wrong ODE is not within the tolerance
    if case in ("base", "learned_sigma2"):
        wrong = integrate(_without_tau_squared(system), init, params, T_EVAL, throw=True).order_parameters()
        assert not _within(res, wrong)
        wrong_per_seed, wrong_mean = _deviations(res, wrong)
        assert wrong_mean > 2 * C_MEAN / np.sqrt(N * SEEDS)
        if case == "base":
            assert np.median(wrong_per_seed) > C_SEED / np.sqrt(N)
    if case == "minibatch":
        wrong = integrate(system, init, dict(params, b=1), T_EVAL, throw=True).order_parameters()
        assert not _within(res, wrong)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["base", "learned_sigma2"])
def test_deviation_scales_as_inverse_square_root_of_N(case):
    """The RMS over seeds of each seed's largest deviation from the ODE falls like N^-1/2 (fitted exponent).

    24 seeds: with 8 the exponent estimate scatters by about +-0.1 (measured -0.42 for the base model); with 24 it
    was -0.52 for both cases (sqrt(N) * RMS deviation 1.8 - 2.0 for base, 2.5 - 2.7 for learned sigma2)."""
    make, extra, init, _ = CASES[case]
    model = make()
    params = dict(PARAMS, **extra)
    ode = integrate(symvae.derive_dynamics(model), init, params, T_EVAL, throw=True).order_parameters()
    Ns = np.array([250, 500, 1000, 2000])
    rms = []
    for N in Ns:
        res = simulate(model, params, init, T_EVAL, N=int(N), seeds=24)
        assert res.ok, res.message
        per_seed, _ = _deviations(res, ode)
        rms.append(np.sqrt(np.mean(per_seed ** 2)))
    exponent = np.polyfit(np.log(Ns), np.log(rms), 1)[0]
    assert -0.7 <= exponent <= -0.3, f"exponent {exponent:.3f}, RMS deviations {rms}"


def test_cheap_N_scaling_of_the_deviation_from_the_ode():
    """CI-sized N-scaling: three N over a factor 16, 10 seeds, a short horizon (t <= 6). The RMS over seeds of each
    seed's largest deviation from the ODE must fall like N^-1/2: the fitted exponent within [-0.75, -0.25], which
    excludes both 'no decay' (0: a wrong limit) and 'decay like 1/N' (-1: a deterministic finite-N correction). The
    exponent's scatter at this size is about +-0.1 (the slow test above uses 24 seeds and four N)."""
    model = symvae.make_model("base")
    system = symvae.derive_dynamics(model)
    t_eval = np.linspace(0.0, 6.0, 7)
    ode = integrate(system, INIT, PARAMS, t_eval, throw=True).order_parameters()
    Ns = np.array([50, 200, 800])
    rms = []
    for N in Ns:
        res = simulate(model, PARAMS, INIT, t_eval, N=int(N), seeds=10)
        assert res.ok, res.message
        rms.append(np.sqrt(np.mean(_deviations(res, ode)[0] ** 2)))
    exponent = np.polyfit(np.log(Ns), np.log(rms), 1)[0]
    assert -0.75 <= exponent <= -0.25, f"exponent {exponent:.3f}, RMS deviations {rms}"
