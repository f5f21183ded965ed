"""Large saddle-point systems (more than ``NUMBA_MAX_UNKNOWNS`` unknowns, e.g. M = M* = 3): the complex-step Jacobian
of the generated residual against SymPy's own Jacobian, and the search on equal spike strengths, where every latent
learns its own spike, without the closed form as a start (checked against it, computed separately)."""
import mpmath
import numpy as np
import pytest
import sympy as sp

from symvae.model import make_model
from symvae.statics import closed_form, solve_statics, statics_param_names

ORDER = ("m", "m_tilde", "Q", "Q_tilde", "R", "D")


@pytest.fixture(autouse=True)
def no_closed_form(monkeypatch):
    monkeypatch.setenv("SYMVAE_STATICS_NO_CLOSED_FORM", "1")


@pytest.mark.parametrize("variant", ["base", "tied"])
def test_complex_step_jacobian_is_sympys_jacobian(variant):
    """The large-system module (forced here on a small system) differentiates the generated residual by complex
    steps: it must equal SymPy's symbolic Jacobian of F, in float64 (all columns and a chosen few) and at 40 digits."""
    from symvae.derive._statics import derive_statics
    from symvae.statics._replica import _compile, _ComplexStepModule

    system = derive_statics(make_model(variant, M=1, M_star=1))
    module = _compile(system, large=True)
    assert isinstance(module, _ComplexStepModule)
    args = [list(system.state), list(system.params)]
    full = sp.lambdify(args, system.jacobian, modules="numpy")
    full_mp = sp.lambdify(args, system.jacobian, modules="mpmath")
    rng = np.random.default_rng(1)
    n = len(system.state)
    for _ in range(3):
        y = rng.uniform(0.2, 1.5, n)
        p = rng.uniform(0.2, 1.5, len(system.params))
        want = np.asarray(full(list(y), list(p)), float)
        assert np.max(np.abs(want)) > 0.1  # not a comparison of zeros
        got = module.jac_numpy(0.0, y, p)
        assert np.max(np.abs(got - want)) <= 1e-13 * max(1.0, float(np.max(np.abs(want))))
        cols = np.array([n - 1, 0, 2])
        assert np.max(np.abs(module.jac_columns(0.0, y, p, cols) - want[:, cols])) <= 1e-13 * np.max(np.abs(want))
        with mpmath.workdps(40):
            ym, pm = [mpmath.mpf(v) for v in y], [mpmath.mpf(v) for v in p]
            a, b = module.jac_mp(0, ym, pm), full_mp(ym, pm)
            assert max(abs(a[i, j] - b[i, j]) for i in range(n) for j in range(n)) < mpmath.mpf(10) ** -35
    # dF/dK by exact differences (F is affine in K: every second derivative in K vanishes symbolically)
    K = list(system.blocks["K"])
    k_cols = np.array([list(system.state).index(k) for k in K])
    assert all(sp.simplify(system.jacobian[i, j].diff(k)) == 0 for i in range(n) for j in k_cols for k in K)
    for _ in range(3):
        y = rng.uniform(0.2, 1.5, n) * rng.choice([1.0, 40.0], n)  # K of either size
        p = rng.uniform(0.2, 1.5, len(system.params))
        want = np.asarray(full(list(y), list(p)), float)[:, k_cols]
        assert np.max(np.abs(want)) > 0.1
        got = module.affine_columns(0.0, y, p, k_cols, module.rhs_numpy(0.0, y, p))
        assert np.max(np.abs(got - want)) <= 1e-12 * max(1.0, float(np.max(np.abs(want))))
    # the float64 residual of the complex-capable module is the plain one on real input
    y = rng.uniform(0.2, 1.5, n)
    p = rng.uniform(0.2, 1.5, len(system.params))
    F = sp.lambdify(args, list(system.rhs), modules="numpy")
    assert np.allclose(module.rhs_numpy(0.0, y, p), np.asarray(F(list(y), list(p)), float), rtol=1e-13, atol=1e-14)
    assert module.rhs_numpy(0.0, y, p).dtype == float
    # and the compiled residual is the numpy one to the last bit
    assert np.array_equal(module.rhs_float(0.0, y, p), module.rhs_numpy(0.0, y, p))


def _equal_spikes(M):
    model = make_model("base", M=M, M_star=M)
    values = dict(rho=1.0, eta=1.0, beta=0.5, lam=0.1)
    return model, {n: values[n] for n in statics_param_names(model)}


def _check_closed_form(model, params, alpha, r):
    cf = closed_form(model, params, alpha)
    assert r.ok, r.message
    assert all(s.start != "closed form" for s in r.saddles)
    for k in ORDER:
        assert np.max(np.abs(np.asarray(cf.order[k], float) - r.order[k])) <= 1e-8, k
    assert abs(float(cf.train_loss) - r.train_loss) <= 1e-8
    assert r.phase == cf.phase == "learning"
    assert r.saddles[0].start == "informed"


@pytest.mark.slow
def test_equal_spikes_2x2_every_latent_learns_without_random_starts():
    """(2, 2), rho_1 = rho_2: starts with a single informed latent stay in the invariant subspace m_2 = 0; the
    start with every latent on its own spike reaches the global minimiser (no random start needed)."""
    model, params = _equal_spikes(2)
    r = solve_statics(model, params, 2.0, compare=False, random_starts=0, throw=False)
    _check_closed_form(model, params, 2.0, r)


@pytest.mark.slow
def test_equal_spikes_3x3_is_the_closed_form_minimiser():
    """The issue's point: (3, 3), rho = eta = 1, beta = 0.5, lam = 0.1, alpha = 2 (it returned ``failed``, 0.81 from
    the closed form)."""
    model, params = _equal_spikes(3)
    r = solve_statics(model, params, 2.0, throw=False)
    _check_closed_form(model, params, 2.0, r)
    assert r.closed_form_difference <= 1e-8
