"""Four erf or four step factors of more than two Gaussian directions (a ReLU decoder or a ReLU encoder at M = 4, an
erf product under tilts): the covariance-path nodes of Price's theorem against Monte Carlo (10^6 samples), Gauss-Hermite
rules, SciPy's orthant probability, adaptive quadrature, finite differences, and in the VAE against finite-N SGD."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from symvae.derive._nonlinear_gaussian import (PATH_PAIRS, PRICE_PATH, ErfAct, ErfActPrime, GaussRule1, GaussRule2,
                                               Relu, Step,
                                               NoClosedForm, _Engine, gauss_hermite_expectation,
                                               nonlinear_expectation, numeric_function, path_integrand,
                                               quadrature_rule, rule_nodes_as_sums)
from symvae.derive._rule_base import RULE_U, rule_parameter

u, v, w, z = FIELDS = sp.symbols("u v w z", real=True)
g, gp = ErfAct, ErfActPrime
SAMPLES = 10 ** 6
SIGMAS = 4.5


def random_cov(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(4, 5))
    return A @ A.T / 5 * scale


def monte_carlo(expr, C, seed):
    rng = np.random.default_rng(2000 + seed)
    X = np.linalg.cholesky(C) @ rng.standard_normal((4, SAMPLES))
    values = np.broadcast_to(numeric_function(expr, FIELDS)(*X), (SAMPLES,))
    return values.mean(), values.std() / math.sqrt(SAMPLES)


def derived(expr, C, used=None):
    """The engine's expectation (rule nodes kept) at the numeric covariance C."""
    return nonlinear_expectation(expr, FIELDS, lambda i, j: sp.Float(C[i, j], 20), quadrature=True, nodes=True,
                                 used=used)


def _node_value(node) -> sp.Float:
    """A ``GaussRule1`` node's rule sum, E[G(sqrt(S11) y)] by ``quadrature_rule`` (a node y > 0 stands for +-y), with
    the integrand lambdified once (SymPy's evalf of the written-out sum is far slower)."""
    g, S11, params = node.args[0], float(node.args[1]), [float(p) for p in node.args[2:]]
    functions = {"ErfAct": lambda x: special.erf(x / math.sqrt(2)),
                 "ErfActPrime": lambda x: math.sqrt(2 / math.pi) * np.exp(-x ** 2 / 2)}
    f = sp.lambdify([RULE_U] + [rule_parameter(k + 1) for k in range(len(params))], g.G,
                    modules=[functions, "numpy"], cse=True)
    nodes, weights = quadrature_rule()
    y = math.sqrt(S11) * np.array([float(t) for t in nodes])
    wts = np.array([float(t) for t in weights])
    vals = f(y, *params) + np.where(y > 0, f(-y, *params), 0.0)
    return sp.Float(float(np.sum(wts * vals)), 17)


def value(expr) -> float:
    expr = expr.xreplace({n: _node_value(n) for n in expr.atoms(GaussRule1)})
    return float(rule_nodes_as_sums(expr).evalf(17))  # GaussRule2 nodes (small integrands) written out


@pytest.mark.parametrize("seed, scale", [(1, 0.3), (2, 1.0), (3, 4.0)])
def test_four_erf_factors_against_monte_carlo_and_gauss_hermite(seed, scale):
    """E[g(u) g(v) g(w) g(z)] at random covariances (scale 0.3 to 4): the path node within 4.5 standard errors of
    10^6 samples and within the stated error (+1e-9) of a 40-point-per-axis tensor Gauss-Hermite rule (3e-13 apart
    at scale 1; at scale 4 that rule is the less accurate, 2e-5 apart, its stated error 5e-4); it is one GaussRule1
    node of the shared path integrand, listed as such in ``used``."""
    C = random_cov(seed, scale)
    expr = g(u) * g(v) * g(w) * g(z)
    used = []
    E = derived(expr, C, used)
    nodes = E.atoms(GaussRule1)
    assert len(nodes) == 1 and next(iter(nodes)).args[0] == path_integrand("erf")
    assert any(x.endswith(PRICE_PATH) for x in used)
    got = value(E)
    mean, se = monte_carlo(expr, C, seed)
    assert abs(got - mean) < SIGMAS * se, (got, mean, se)
    gh, err = gauss_hermite_expectation(numeric_function(expr, FIELDS), C, order=40)
    assert abs(got - gh) < 1e-9 + err, (got, gh, err)


@pytest.mark.parametrize("expr", [gp(u) * gp(v) * g(u + v) * g(v - w) * g(w) * g(z),   # four g under two tilts
                                  u * v * g(u) * g(v) * g(w) * g(z),                   # Stein steps first
                                  g(u) ** 2 * g(w) * g(z) * w * z],                    # a repeated factor
                         ids=str)
def test_path_under_tilts_and_stein_steps_against_monte_carlo(expr):
    """The path node where the engine reaches four erf factors after tilts (g' factors) or Stein steps: the whole
    expectation within 4.5 standard errors of 10^6 samples."""
    C = random_cov(7)
    E = derived(expr, C)
    assert E.has(GaussRule1)
    mean, se = monte_carlo(expr, C, 7)
    assert abs(value(E) - mean) < SIGMAS * se, (value(E), mean, se)


def test_path_with_repeated_factors_against_gauss_hermite():
    """g(u)^2 g(v)^2 has two directions, so the engine takes the two-direction rule; the path node for the same four
    factors (two repeated: A(1) singular, regularised by g's I) agrees with a 2-D Gauss-Hermite rule of 60 points
    per axis to 1e-12 (measured 1e-16; that rule estimates its own error at 1e-9)."""
    C = random_cov(4)
    assert derived(g(u) ** 2 * g(v) ** 2, C).has(GaussRule2)
    engine = _Engine(FIELDS, lambda i, j: sp.Float(C[i, j], 20), quadrature=True, nodes=True)
    e = [tuple(sp.Integer(int(k == i)) for k in range(4)) for i in range(4)]
    path = engine._price_path((e[0], e[0], e[1], e[1]), ())
    gh, err = gauss_hermite_expectation(numeric_function(g(u) ** 2 * g(v) ** 2, FIELDS[:2]), C[:2, :2], order=60)
    assert err < 1e-8 and abs(value(path) - gh) < 1e-12, (value(path), gh, err)


def test_path_integrand_against_adaptive_quadrature_and_its_derivative():
    """The node's 181-point rule against 20-digit adaptive quadrature of the same s-integral (below 1e-14), and its
    derivative in one covariance entry (a node of the parameter derivative) against a central difference of the
    Monte-Carlo-checked value."""
    C = random_cov(5, 2.0)
    a = [sp.Float(C[i, j], 30) for i, j in PATH_PAIRS]
    node = GaussRule1(path_integrand("erf"), 1, *a)
    h = path_integrand("erf").G
    f = sp.lambdify([RULE_U] + [rule_parameter(k + 1) for k in range(10)], h,
                    modules=[{"ErfAct": lambda x: mpmath.erf(x / mpmath.sqrt(2))}, "mpmath"], cse=True)
    with mpmath.workdps(20):
        exact = mpmath.quad(lambda t: f(t, *a) * mpmath.npdf(t), [-mpmath.inf, 0, mpmath.inf])
    assert abs(value(node) - float(exact)) < 1e-14
    x = sp.Symbol("x")
    k = PATH_PAIRS.index((1, 2))
    moved = GaussRule1(path_integrand("erf"), 1, *[x if j == k else a[j] for j in range(10)])
    derivative = value(sp.diff(moved, x).subs(x, a[k]))
    step = 1e-4
    fd = (value(moved.subs(x, a[k] + step)) - value(moved.subs(x, a[k] - step))) / (2 * step)
    assert abs(derivative - fd) < 1e-8 * max(1.0, abs(fd)), (derivative, fd)


def test_six_erf_factors_still_refused():
    """Six erf factors of six directions would need a path inside a path: refused, not approximated silently."""
    x = sp.symbols("x0:6", real=True)
    with pytest.raises(NoClosedForm):
        nonlinear_expectation(sp.Mul(*[g(f) for f in x]), x, lambda i, j: sp.Integer(int(i == j)) + sp.Rational(1, 5),
                              quadrature=True, nodes=True)


@pytest.mark.slow
@pytest.mark.parametrize("enc, dec", [("linear", "relu"), ("relu", "linear")])
def test_relu_at_m4_ode_follows_simulation(enc, dec):
    """M = 4, M* = 1 with ReLU on one side (the kinks of four decoder inputs z_k = mu_k + sqrt(D_k) eps_k, or of four
    encoder fields, leave an orthant probability: the orthant path node): the derived ODE against finite-N SGD, 16
    seeds, at N = 100 and 400. Measured RMS deviation x sqrt(N): 0.35, 0.33 (ReLU decoder) and 0.38, 0.36 (ReLU
    encoder); the linear model (a wrong model for these simulations) is 4.6 x and 3.1 x farther at N = 400. About
    10-45 s each (CI checks the path nodes above)."""
    import symvae
    from symvae.codegen import compile_system
    from symvae.derive import derive_dynamics
    from symvae.simulate._nonlinear import simulate_nonlinear

    from helpers import ode_simulation_rms
    M = 4
    acts = {f"{side}_activation": a for side, a in (("encoder", enc), ("decoder", dec)) if a != "linear"}
    model = symvae.make_model("base", M=M, M_star=1, **acts)
    system = derive_dynamics(model)
    assert any(n.args[0] == path_integrand("orthant") for e in system.rhs for n in e.atoms(GaussRule1))
    assert any("four erf or four step factors" in n for n in system.notes)
    rhs = compile_system(system).rhs
    rng = np.random.default_rng(3)
    init = dict(m=(0.2 * rng.normal(size=(M, 1))).tolist(), m_tilde=(0.2 * rng.normal(size=(M, 1))).tolist(),
                Q=np.eye(M).tolist(), Q_tilde=np.eye(M).tolist(), R=(0.3 * np.eye(M)).tolist(), D=[1.0] * M)
    params = dict(beta=0.5, eta=1.0, lam=0.1, rho=2.0, tau=0.3)
    times = [1.0, 2.0, 3.0]
    scaled = {}
    for N in (100, 400):
        sim = simulate_nonlinear(model, params, init, times, N=N, seeds=16, seed=N)
        assert sim.status == "ok"
        scaled[N] = ode_simulation_rms(system, rhs, sim, params, init, times) * math.sqrt(N)
    assert all(0.1 < x < 0.6 for x in scaled.values()), scaled
    linear = derive_dynamics(symvae.make_model("base", M=M, M_star=1))
    far = ode_simulation_rms(linear, compile_system(linear).rhs, sim, params, init, times) * math.sqrt(400)
    assert far > 2.5 * scaled[400], (far, scaled)


ORTHANT_CASES = [Step(u) * Step(v) * Step(w) * Step(z),                    # P(orthant), Plackett's identity
                 Relu(u) * Relu(v) * Relu(w) * Relu(z),                    # Stein steps: conditionings first
                 v * Relu(u) ** 2 * Step(v) * Relu(w) * Step(z),
                 Step(u) * Step(v) * Step(w) * Step(u + z)]                # a combination as a kink


@pytest.mark.parametrize("expr", ORTHANT_CASES, ids=str)
@pytest.mark.parametrize("seed, scale", [(1, 1.0), (2, 3.0)])
def test_four_steps_against_monte_carlo(expr, seed, scale):
    """Four step factors (a ReLU encoder with a linear decoder at M = 4): the orthant path node within 4.5 standard
    errors of 10^6 samples; the bare orthant probability within 1e-5 of SciPy's multivariate normal CDF (Genz's
    quasi-Monte Carlo, default tolerance)."""
    from scipy.stats import multivariate_normal
    C = random_cov(seed, scale)
    E = derived(expr, C)
    assert any(n.args[0] == path_integrand("orthant") for n in E.atoms(GaussRule1))
    got = value(E)
    mean, se = monte_carlo(expr, C, seed)
    assert abs(got - mean) < SIGMAS * se, (got, mean, se)
    if expr == ORTHANT_CASES[0]:
        assert abs(got - multivariate_normal(mean=np.zeros(4), cov=C).cdf(np.zeros(4))) < 1e-5


@pytest.mark.parametrize("largest", [0.56, 0.99])
def test_orthant_path_rule_against_adaptive_quadrature(largest):
    """The orthant node's 181-point rule against 20-digit adaptive quadrature of the same s-integral, at a random
    correlation matrix (largest correlation 0.56) and one with a correlation of 0.99 (measured below 1e-16 at both)."""
    if largest < 0.9:
        C = random_cov(9)
        d = np.sqrt(np.diag(C))
        R = C / np.outer(d, d)
    else:
        R = np.array([[1, 0.99, 0.3, 0.3], [0.99, 1, 0.3, 0.3], [0.3, 0.3, 1, 0.5], [0.3, 0.3, 0.5, 1]])
    assert abs(np.max(np.abs(R - np.eye(4))) - largest) < 0.01 and np.linalg.eigvalsh(R).min() > 0
    r = [sp.Float(R[i, j], 30) for i, j in PATH_PAIRS if i < j]
    node = GaussRule1(path_integrand("orthant"), 1, *r)
    f = sp.lambdify([RULE_U] + [rule_parameter(k + 1) for k in range(6)], path_integrand("orthant").G,
                    modules=[{"ErfAct": lambda x: mpmath.erf(x / mpmath.sqrt(2))}, "mpmath"], cse=True)
    with mpmath.workdps(20):
        exact = mpmath.quad(lambda t: f(t, *r) * mpmath.npdf(t), [-mpmath.inf, 0, mpmath.inf])
    assert abs(value(node) - float(exact)) < 1e-14, (value(node), exact)


def _orthant_value(R) -> float:
    return 1 / 16 + value(GaussRule1(path_integrand("orthant"), 1,
                                     *[sp.Float(R[i][j], 20) for i, j in PATH_PAIRS if i < j]))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0), min_size=16, max_size=16), st.permutations(range(4)))
def test_orthant_path_identities(entries, order):
    """At random correlation matrices: flipping one field's sign, P(y1 > 0, y2..4 > 0) + P(y1 < 0, y2..4 > 0) equals
    the three-dimensional orthant probability in closed form (to 1e-12); the value does not depend on the order of
    the factors (1e-14); it lies between 0 and the smallest pairwise quadrant probability."""
    B = np.array(entries).reshape(4, 4) + 1.5 * np.eye(4)
    C = B @ B.T
    d = np.sqrt(np.diag(C))
    R = C / np.outer(d, d)
    flipped = R.copy()
    flipped[0, 1:] *= -1
    flipped[1:, 0] *= -1
    r = R[1:, 1:]
    three = 1 / 8 + (math.asin(r[0, 1]) + math.asin(r[0, 2]) + math.asin(r[1, 2])) / (4 * math.pi)
    p = _orthant_value(R)
    assert abs(p + _orthant_value(flipped) - three) < 1e-12
    assert abs(_orthant_value(R[np.ix_(order, order)]) - p) < 1e-14
    quadrant = min(1 / 4 + math.asin(R[i, j]) / (2 * math.pi) for i in range(4) for j in range(i + 1, 4))
    assert -1e-15 < p <= quadrant + 1e-15


def test_path_nodes_print_as_what_they_compute():
    """In LaTeX (the derivation exports) a path node prints as its expectation over the written-out matrix, not as
    its thousand-operation integrand."""
    a = sp.Symbol("a")
    for expr, text in ((Step(u) * Step(v) * Step(w) * Step(z), r"P_{"), (g(u) * g(v) * g(w) * g(z), r"\mathbb{E}_{")):
        latex = sp.latex(nonlinear_expectation(expr, FIELDS, lambda i, j: 1 if i == j else a, quadrature=True,
                                               nodes=True))
        assert text in latex and "y_4" in latex and "asin" not in latex and len(latex) < 400, latex


def test_generated_code_of_the_path_nodes(tmp_path):
    """The path nodes and their derivative in one covariance entry through code generation: the numba kernel (loaded
    as plain Python: the same code and bits), numpy and mpmath agree with the rule sum evaluated here (1e-13), and the
    generated derivative with a central difference of the generated value."""
    import mpmath

    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    c = sp.symbols("c0:4", real=True)
    a = sp.Symbol("a", real=True)  # the covariance of u and v, the variable here

    def cov(i, j):
        base = [[1.2, 0.0, 0.3, -0.2], [0.0, 0.8, 0.25, 0.1], [0.3, 0.25, 1.5, 0.4], [-0.2, 0.1, 0.4, 0.9]]
        return a if (i, j) == (0, 1) else c[i] * base[i][j] if i == j else sp.Float(base[i][j])
    exprs = [nonlinear_expectation(e, FIELDS, cov, quadrature=True, nodes=True)
             for e in (g(u) * g(v) * g(w) * g(z), Step(u) * Step(v) * Step(w) * Step(z))]
    assert all(x.has(GaussRule1) for x in exprs)
    exprs += [sp.diff(x, a) for x in exprs]
    path = tmp_path / "generated.py"
    path.write_text(generate_source([FunctionSpec("nodes", exprs)], (a, *c), ()))
    module = load_plain_first(path, "path_node_test").plain
    y = np.array([0.35, 1.0, 1.1, 0.9, 1.05])
    got = module.nodes(0.0, y, np.zeros(0))
    here = [value(x.subs(dict(zip((a, *c), map(sp.Float, y))))) for x in exprs]
    assert np.allclose(got, here, rtol=1e-13, atol=1e-15), (got, here)
    assert np.allclose(module.nodes_numpy(0.0, y, np.zeros(0)), got, rtol=1e-13, atol=1e-15)
    with mpmath.workdps(25):
        mp = module.nodes_mp(0.0, [mpmath.mpf(float(x)) for x in y], [])
    assert np.allclose([float(x) for x in mp], got, rtol=1e-13, atol=1e-15)
    step = 1e-5
    for k in range(2):
        up, down = (module.nodes(0.0, y + s * np.eye(5)[0], np.zeros(0))[k] for s in (step, -step))
        assert abs((up - down) / (2 * step) - got[k + 2]) < 1e-8, (k, (up - down) / (2 * step), got[k + 2])
