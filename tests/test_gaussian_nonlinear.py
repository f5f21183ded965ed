"""The Gaussian-expectation rewrite engine and the closed-form table against Monte Carlo (10^6 samples).

Each check draws a random covariance (Wishart), evaluates the engine / closed form, and asserts agreement with the
sample mean within 5 standard errors of that mean (a wrong factor of 2 or a sign slip is off by tens of standard
errors).
"""
import math

import numpy as np
import pytest
import sympy as sp

from symvae.derive import gaussian_expectation
from symvae.derive._nonlinear_gaussian import (TWO_DIRECTIONS, ErfAct, ErfActPrime, NoClosedForm, Relu, Step,
                                               closed_forms, gauss_hermite_expectation, nonlinear_expectation,
                                               numeric_function, rule_expectation)

u, v, w, z = FIELDS = sp.symbols("u v w z", real=True)
g, gp = ErfAct, ErfActPrime
SAMPLES = 10 ** 6
SIGMAS = 5.0


def random_cov(seed, d=4):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d + 1))
    return A @ A.T / (d + 1) * rng.uniform(0.5, 2.0)


def monte_carlo(expr, C, seed):
    """Sample mean and its standard error of expr(fields), fields ~ N(0, C)."""
    rng = np.random.default_rng(1000 + seed)
    d = C.shape[0]
    X = np.linalg.cholesky(C + 1e-15 * np.eye(d)) @ rng.standard_normal((d, SAMPLES))
    values = np.broadcast_to(numeric_function(expr, FIELDS[:d])(*X), (SAMPLES,))
    return values.mean(), values.std() / np.sqrt(SAMPLES)


def engine(expr, C):
    d = C.shape[0]
    return float(nonlinear_expectation(expr, FIELDS[:d], lambda i, j: sp.Float(C[i, j], 20)))


def assert_mc(value, expr, C, seed):
    mean, se = monte_carlo(expr, C, seed)
    assert abs(value - mean) < SIGMAS * se, f"{expr}: {value} vs MC {mean} +- {se}"


ENGINE_CASES = [
    g(u) * g(v),                          # I2
    gp(u) * gp(v),                        # J2
    gp(u) * gp(v) * gp(w),                # J3
    gp(u) * v * g(w),                     # I3
    gp(u) * gp(v) * g(w) * g(z),          # I4
    u * g(v),                             # E[u g(v)]
    gp(u) * u * v,                        # E[g'(u) u v]
    u * v * w * z,                        # Wick
    u ** 2 * g(v) * g(w) * gp(z),         # nested Stein + tilt
    g(u) ** 2 * gp(u) ** 2,               # repeated arguments (the erf-VAE tau^2 term)
    g(u + 2 * v) * g(w - z) * u * v,      # linear combinations as arguments
    Relu(u) * Relu(v),                    # ReLU: relu = x theta, Stein on theta conditions on a hyperplane
    Relu(u) ** 2 * Step(v) * w * z,
    Relu(u) * Relu(v) * Relu(w),          # three-dimensional orthant
    Relu(u + v) * w ** 2,
]


@pytest.mark.parametrize("seed", [0])
@pytest.mark.parametrize("expr", ENGINE_CASES, ids=str)
def test_engine_matches_monte_carlo(expr, seed):
    C = random_cov(seed)
    assert_mc(engine(expr, C), expr, C, seed)


@pytest.mark.parametrize("seed", [2, 3])
def test_literature_table_matches_monte_carlo(seed):
    """Every closed form of issue 11 (erf and ReLU), re-checked against sampling; the engine agrees with each."""
    C = random_cov(seed)
    cf = closed_forms()
    S = sp.Matrix(C)
    c = lambda i, j: sp.Float(C[i, j], 20)  # noqa: E731
    table = [
        (cf["I2"](c(0, 0), c(0, 1), c(1, 1)), g(u) * g(v)),
        (cf["J"](S[:2, :2]), gp(u) * gp(v)),
        (cf["J"](S[:3, :3]), gp(u) * gp(v) * gp(w)),
        (cf["I3"](S[:3, :3]), gp(u) * v * g(w)),
        (cf["I4"](S), gp(u) * gp(v) * g(w) * g(z)),
        (cf["u_g"](c(0, 1), c(1, 1)), u * g(v)),
        (cf["gp_u_v"](c(0, 0), c(0, 1)), gp(u) * u * v),
    ]
    for value, expr in table:
        assert_mc(float(value), expr, C, seed)
        assert abs(float(value) - engine(expr, C)) < 1e-12, expr
    relu_table = [
        (cf["relu_relu"](c(0, 0), c(0, 1), c(1, 1)), Relu(u) * Relu(v)),
        (cf["step_step"](c(0, 0), c(0, 1), c(1, 1)), Step(u) * Step(v)),
        (cf["relu_v"](c(0, 1)), Relu(u) * v),
        (cf["step_v"](c(0, 0), c(0, 1)), Step(u) * v),
    ]
    for value, expr in relu_table:
        assert_mc(float(value), expr, C, seed)
        assert abs(float(value) - engine(expr, C)) < 1e-12, expr


def test_relu_i2_is_not_off_by_two():
    """E[relu(u)^2] = C/2 (half of E[u^2]): the diagonal limit of the ReLU I2 formula, against sampling."""
    cf = closed_forms()
    C = np.array([[1.3, 1.3 * (1 - 1e-9)], [1.3 * (1 - 1e-9), 1.3]])
    value = float(cf["relu_relu"](sp.Float(1.3), sp.Float(1.3 * (1 - 1e-9)), sp.Float(1.3)))
    assert abs(value - 0.65) < 1e-4
    assert_mc(value, Relu(u) * Relu(v), C, 7)


def test_parity_zeros_are_exact():
    a, b, c = sp.symbols("a b c", real=True)
    cov = lambda i, j: [[a, b, c], [b, a, c], [c, c, a]][i][j]  # noqa: E731
    assert nonlinear_expectation(g(u), FIELDS[:3], cov) == 0
    assert nonlinear_expectation(u * g(v) * g(w), FIELDS[:3], cov) == 0
    assert nonlinear_expectation(gp(u) * v, FIELDS[:3], cov) == 0
    assert nonlinear_expectation(g(u) * g(v) * g(w) * gp(u), FIELDS[:3], cov) == 0


def test_symbolic_covariance_then_numbers():
    """The engine with a symbolic covariance, evaluated at numbers, equals the engine at those numbers."""
    C = random_cov(4, d=3)
    names = sp.symbols("c00 c01 c02 c11 c12 c22", real=True)
    sym = {(0, 0): names[0], (0, 1): names[1], (0, 2): names[2], (1, 1): names[3], (1, 2): names[4],
           (2, 2): names[5]}
    expr = u * v * gp(u) * g(w) * g(v) + w ** 2 * gp(v) * gp(w)
    symbolic = nonlinear_expectation(expr, FIELDS[:3], lambda i, j: sym[i, j])
    numbers = {sym[k]: C[k] for k in sym}
    assert abs(float(symbolic.subs(numbers)) - engine(expr, C)) < 1e-12
    assert_mc(engine(expr, C), expr, C, 4)


def test_polynomials_reduce_to_wick():
    """On polynomials the engine equals the Wick expectation used for the linear models (symbolic identity)."""
    a, b, c = sp.symbols("a b c", real=True)
    cov = lambda i, j: [[a, b, c], [b, a + c, b], [c, b, 2 * a]][i][j]  # noqa: E731
    expr = u ** 4 * v ** 2 - 3 * u * v * w ** 2 + w ** 6 + u * v
    assert sp.expand(nonlinear_expectation(expr, FIELDS[:3], cov) - gaussian_expectation(expr, FIELDS[:3], cov)) == 0


def test_no_closed_form_is_reported():
    C = random_cov(5)
    with pytest.raises(NoClosedForm):
        engine(g(u) * g(v) * g(w) * g(z), C)
    with pytest.raises(NoClosedForm):
        engine(Step(u) * Step(v) * Step(w) * Step(z), C)
    with pytest.raises(NoClosedForm):
        engine(g(u) * Step(v), C)
    with pytest.raises(NoClosedForm):
        engine(sp.tanh(u) * v, C)


@pytest.mark.parametrize("expr", [g(u) * g(v) * g(w) * g(z), sp.tanh(u) * sp.tanh(v + w) * z ** 2,
                                  Relu(u) * Relu(v) * w * z], ids=str)
def test_gauss_hermite_fallback(expr):
    """The numerical fallback (stated error) against Monte Carlo; for smooth F the stated error is small."""
    C = random_cov(6)
    f = numeric_function(expr, FIELDS)
    value, error = gauss_hermite_expectation(f, C, order=24)
    mean, se = monte_carlo(expr, C, 6)
    assert abs(value - mean) < SIGMAS * se + error
    if not expr.has(Relu):
        assert error < 1e-3


# ---------------------------------------------------------------------- the numerical rule (no closed form, smooth)
def rule(expr, C, used=None):
    d = C.shape[0]
    value = nonlinear_expectation(expr, FIELDS[:d], lambda i, j: sp.Float(C[i, j], 20), quadrature=True, used=used)
    return evaluate(value)


_FLOAT_FUNCTIONS = {sp.tanh: math.tanh, sp.exp: math.exp, sp.erf: math.erf, sp.cos: math.cos, sp.sin: math.sin,
                    sp.sech: lambda x: 1 / math.cosh(x), ErfAct: lambda x: math.erf(x / math.sqrt(2)),
                    ErfActPrime: lambda x: math.sqrt(2 / math.pi) * math.exp(-x * x / 2)}


def evaluate(expr):
    """A field-free expression in float64, node by node (printing a rule's 833-node sums for lambdify takes longer
    than the test; SymPy's evalf does not know ErfAct)."""
    memo = {}

    def walk(e):
        if e.is_Number or e in (sp.pi, sp.E):
            return float(e)
        if e not in memo:
            args = [walk(a) for a in e.args]
            if e.is_Add:
                memo[e] = math.fsum(args)
            elif e.is_Mul:
                memo[e] = math.prod(args)
            elif e.is_Pow:
                memo[e] = args[0] ** args[1]
            else:
                memo[e] = _FLOAT_FUNCTIONS[e.func](*args)
        return memo[e]
    return walk(expr)


@pytest.mark.parametrize("expr", [sp.tanh(u + v) * u,                      # regression on u + v, then the rule
                                  sp.tanh(u - 2 * v) ** 3 * v * w ** 2,    # three bare factors, remainders by Wick
                                  (u + v) * sp.tanh(u + v) * w * z,         # a user activation x tanh(x)
                                  sp.cos(u - v) * g(u - v) * z,             # mixed with the erf activation
                                  sp.sin(w) ** 2 * u * v,
                                  u ** 2 / (1 + sp.exp(-u)) ** 2 * v * w,   # swish x/(1 + exp(-x)), squared
                                  (u + v) ** 3 * sp.tanh(u + v) ** 2 * w * z], ids=str)
def test_numerical_rule_against_monte_carlo(expr):
    """Terms with no closed form but one Gaussian direction: each bare field split into its regression on the
    direction and an independent remainder (Wick), then the trapezoidal rule."""
    C = random_cov(7)
    used = []
    value = rule(expr, C, used)
    assert used, "the rule was not used"
    assert_mc(value, expr, C, 7)


def test_numerical_rule_to_twelve_digits():
    """E[tanh(s y)^2] and E[(s y) tanh(s y) sech(s y)] by the rule against mpmath's adaptive quadrature at 30 digits,
    over the standard deviations the VAE meets (the stated accuracy: below 1e-12 while s <= 2, 1e-10 at s = 3, 1e-7
    at s = 4), and the stated degradation beyond."""
    import mpmath
    for s2, tol in ((0.3, 1e-12), (1.0, 1e-12), (2.5, 1e-12), (4.0, 1e-12), (9.0, 1e-10), (16.0, 2e-7)):
        C = np.array([[s2]])
        for expr, f in [(sp.tanh(u) ** 2, lambda x: mpmath.tanh(x) ** 2),
                        (u * sp.tanh(u) * sp.sech(u), lambda x: x * mpmath.tanh(x) * mpmath.sech(x))]:
            with mpmath.workdps(30):
                s = mpmath.sqrt(s2)
                exact = mpmath.quad(lambda y: f(s * y) * mpmath.npdf(y), [-mpmath.inf, 0, mpmath.inf])
            assert abs(rule(expr, C) - float(exact)) < tol, (s2, expr)


def test_numerical_rule_limits():
    """Non-smooth terms and terms of three or more Gaussian directions still have no value: an error, never a poor
    number; a closed form is never replaced by the rule."""
    C = random_cov(8)
    for expr in (sp.tanh(u) * sp.tanh(v) * sp.tanh(w), sp.Abs(u) * sp.tanh(u), Relu(u) * Relu(v) * Relu(w) * Relu(z),
                 sp.tanh(u + v) * sp.Abs(w - v)):
        with pytest.raises(NoClosedForm):
            rule(expr, C)
    used = []
    assert rule(g(u) * g(v), C, used) == pytest.approx(engine(g(u) * g(v), C), rel=1e-15) and not used


# ------------------------------------------------------------------------------- the two-direction numerical rule
def correlated_cov(r, scale=1.0):
    """Three fields: (u, v) with correlation r and standard deviations sqrt(scale), 0.8 sqrt(scale); w correlated
    with both."""
    L = np.array([[1.0, 0.0, 0.0], [0.8 * r, 0.8 * np.sqrt(1 - r * r), 0.0], [0.3, 0.1, 0.7]])
    return scale * L @ L.T


TWO_D_COVS = {"random": random_cov(9, d=3), "r=0.97": correlated_cov(0.97), "r=-0.995": correlated_cov(-0.995, 1.5)}
TWO_D_CASES = [(sp.tanh(u) * sp.tanh(v), c) for c in TWO_D_COVS] + [
    (sp.tanh(u) * sp.tanh(v) * w, "random"),               # w's regression on (u, v), then the 2-D rule
    (sp.tanh(u) ** 3 * sp.tanh(v) * w * u, "random"),      # (Stein's lemma took 1 min here)
    (g(g(u) + v) ** 2 * gp(u), "r=0.97"),                  # erf on both sides of a VAE: a non-linear argument
    (g(g(u) + v) ** 2 * gp(u), "r=-0.995"),
    (u * v * gp(g(u) + v) * g(u), "random"),               # bare fields kept (they are the rule's directions)
]


@pytest.mark.parametrize("expr, cov", TWO_D_CASES,
                         ids=[f"{e}-{c}" for e, c in (x.values if hasattr(x, "values") else x for x in TWO_D_CASES)])
def test_two_direction_rule_against_monte_carlo(expr, cov):
    """Terms of two Gaussian directions without a closed form: whitening by the symbolic Cholesky factor and the
    tensor-product trapezoidal rule, against 10^6 samples (within 5 standard errors), at a random covariance and two
    strongly correlated ones."""
    C = TWO_D_COVS[cov]
    used = []
    value = rule(expr, C, used)
    assert any(e.endswith(TWO_DIRECTIONS) for e in used), used
    assert_mc(value, expr, C, 9)


@pytest.mark.parametrize("s2, r, tol_i2, tol_i4", [(0.25, 0.5, 2e-9, 1e-10), (1.0, 0.95, 2e-9, 1e-10),
                                                   (1.0, -0.99, 2e-9, 1e-10), (2.25, 0.95, 2e-9, 5e-8)])
def test_two_direction_rule_against_closed_forms(s2, r, tol_i2, tol_i4):
    """The rule in place of the table: I2 = E[g(u) g(v)] and I4 = E[g'(u) g'(v) g(u) g(v)] (the literature closed
    forms, I4 at the rank-two covariance of (u, v, u, v)) agree to the stated accuracy of ``QUADRATURE2_NOTE``
    (measured: I2 below 1e-9, I4 below 1e-10 while the standard deviations are <= 1 and 2e-8 at 1.5)."""
    C = np.array([[s2, 0.8 * r * s2], [0.8 * r * s2, 0.64 * s2]])
    cov = lambda i, j: sp.Float(C[i, j], 30)  # noqa: E731
    cf = closed_forms()
    i2 = evaluate(rule_expectation(g(u) * g(v), [u, v], cov))
    assert abs(i2 - float(cf["I2"](cov(0, 0), cov(0, 1), cov(1, 1)))) < tol_i2
    C4 = sp.Matrix(4, 4, lambda i, j: cov(i % 2, j % 2))
    i4 = evaluate(rule_expectation(gp(u) * gp(v) * g(u) * g(v), [u, v], cov))
    assert abs(i4 - float(cf["I4"](C4))) < tol_i4


def test_two_direction_rule_symbolic_covariance():
    """With a symbolic covariance the rule is an expression of it (what derived systems compile); at numbers it
    equals the rule at those numbers, and the tanh error stays within the stated 1e-8 of a fine reference rule."""
    a, b, c = sp.symbols("a b c", positive=True)
    expr = sp.tanh(u) ** 2 * sp.tanh(v)
    symbolic = rule_expectation(expr, [u, v], lambda i, j: [[a, b], [b, c]][i][j])
    C = np.array([[0.8, -0.5], [-0.5, 0.9]])
    at = evaluate(symbolic.xreplace({a: sp.Float(C[0, 0]), b: sp.Float(C[0, 1]), c: sp.Float(C[1, 1])}))
    assert at == pytest.approx(evaluate(rule_expectation(expr, [u, v], lambda i, j: sp.Float(C[i, j], 30))), abs=1e-13)
    A = np.sqrt(C[0, 0])
    B, Cc = C[0, 1] / A, np.sqrt(C[1, 1] - C[0, 1] ** 2 / C[0, 0])
    y = np.arange(-10, 10.0001, 0.04)
    w_ = 0.04 * np.exp(-y * y / 2) / np.sqrt(2 * np.pi)
    Y1, Y2 = np.meshgrid(y, y, indexing="ij")
    reference = np.sum(np.outer(w_, w_) * np.tanh(A * Y1) ** 2 * np.tanh(B * Y1 + Cc * Y2))
    assert abs(at - reference) < 1e-8
