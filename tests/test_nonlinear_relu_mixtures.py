"""ReLU combined with another non-linearity (``symvae.derive._half_space``): a kink in the reparametrisation noise is
averaged in closed form, a kink in the encoder's field splits the rule there (``HalfRule1`` / ``HalfRule2``). Checked
against Monte Carlo, finite differences, the backends against each other, and the half rule against adaptive
quadrature."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

from symvae.derive._half_space import HalfRule1, HalfRule2, half_rule, noise_kink_means
from symvae.derive._nonlinear_gaussian import (GaussRule1, GaussRule2, Integrand, NoClosedForm, RULE_U, RULE_V,
                                               nonlinear_expectation, rule_parameter)
from symvae.model._activations import ErfAct, ErfActPrime, Relu, Step


def g(x):
    return erf(x / math.sqrt(2))


def gp(x):
    return math.sqrt(2 / math.pi) * np.exp(-x ** 2 / 2)


def relu(x):
    return np.maximum(x, 0.0)


def step(x):
    return (x > 0).astype(float)


# fields: h (the encoder's pre-activation), l (a data field correlated with h), e (the noise, independent)
h, l, e = sp.symbols("h l e", real=True)
c11, c12, c22, d = sp.symbols("c11 c12 c22 d", positive=True)
FIELDS = [h, l, e]


def _cov(i, j):
    C = [[c11, c12, 0], [c12, c22, 0], [0, 0, 1]]
    return C[i][j]


z_re = Relu(h) + sp.sqrt(d) * e  # ReLU encoder
z_er = ErfAct(h) + sp.sqrt(d) * e  # erf encoder
z_rr = z_re

#: (expression, numpy version, the rule nodes it must use)
CASES = [
    # relu encoder, erf decoder: a kink in h (half rules), erf in (h, e)
    (ErfAct(z_re) ** 2, lambda H, L, E, D: g(relu(H) + math.sqrt(D) * E) ** 2, HalfRule2),
    (l * ErfAct(z_re) * Step(h), lambda H, L, E, D: L * g(relu(H) + math.sqrt(D) * E) * step(H), HalfRule2),
    (ErfActPrime(z_re) * h * l * Step(h) * e,
     lambda H, L, E, D: gp(relu(H) + math.sqrt(D) * E) * H * L * step(H) * E, HalfRule2),
    (l ** 2 * ErfAct(z_re) * ErfActPrime(z_re),
     lambda H, L, E, D: L ** 2 * g(relu(H) + math.sqrt(D) * E) * gp(relu(H) + math.sqrt(D) * E), HalfRule2),
    # a second direction correlated with the kink's (S12 != 0 in the half rule)
    (ErfAct(Relu(h) + l) ** 2, lambda H, L, E, D: g(relu(H) + L) ** 2, HalfRule2),
    (ErfActPrime(Relu(h) - l) * h * Step(h) * ErfAct(l), lambda H, L, E, D: gp(relu(H) - L) * H * step(H) * g(L),
     HalfRule2),
    # erf encoder, relu decoder: the noise's kink in closed form, then the one-direction rule in h (none for the
    # first two: the terms left without a closed form are odd in h, so zero; e.g. d/2 + E[g(h)^2]/2 for the first)
    (Relu(z_er) ** 2, lambda H, L, E, D: relu(g(H) + math.sqrt(D) * E) ** 2, None),
    (l * Relu(z_er) * ErfActPrime(h), lambda H, L, E, D: L * relu(g(H) + math.sqrt(D) * E) * gp(H), None),
    (e * Step(z_er) * Relu(z_er) * l, lambda H, L, E, D: E * step(g(H) + math.sqrt(D) * E)
     * relu(g(H) + math.sqrt(D) * E) * L, GaussRule1),
    # relu on both sides: both steps
    (Relu(z_rr) ** 2 * l ** 2, lambda H, L, E, D: relu(relu(H) + math.sqrt(D) * E) ** 2 * L ** 2, HalfRule1),
    (Step(z_rr) * Relu(z_rr) * Step(h) * l * h,
     lambda H, L, E, D: step(relu(H) + math.sqrt(D) * E) * relu(relu(H) + math.sqrt(D) * E) * step(H) * L * H,
     HalfRule1),
]


def _value(expr):
    return nonlinear_expectation(expr, FIELDS, _cov, quadrature=True, nodes=True)


def test_each_case_uses_the_expected_rule():
    """The kink never reaches a smooth rule: encoder kinks give half rules, noise kinks none (None: no rule at all,
    a closed form)."""
    for expr, _, kind in CASES:
        value = _value(expr)
        if kind is None:
            assert not value.has(GaussRule1, GaussRule2, HalfRule1, HalfRule2), (expr, value)
            continue
        assert value.has(kind), (expr, value)
        if kind in (GaussRule1, GaussRule2):
            assert not value.has(HalfRule1, HalfRule2)
        for node in value.atoms(GaussRule1, GaussRule2, HalfRule1, HalfRule2):
            assert not node.args[0].G.has(Relu, Step)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    """The expectations, and their derivatives in c11, c12, c22 and d, generated (numba kernels loaded as plain
    Python), numpy and mpmath."""
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    values = [_value(expr) for expr, _, _ in CASES]
    exprs = values + [sp.diff(x, s) for s in (c11, c12, c22, d) for x in values]
    path = tmp_path_factory.mktemp("relu_mix") / "generated.py"
    path.write_text(generate_source([FunctionSpec("nodes", exprs)], (c11, c12, c22, d), ()))
    return load_plain_first(path, "relu_mixture_test").plain


def _random_points(count, seed):
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(count):
        a, b = rng.uniform(0.2, 1.5, size=2)
        r = rng.uniform(-0.9, 0.9)
        points.append(np.array([a, r * math.sqrt(a * b), b, rng.uniform(0.1, 1.5)]))
    return points


def test_relu_mixtures_against_monte_carlo(module):
    """At random covariances (correlation up to 0.9) and noise variances, every case equals a 10^6-sample Monte
    Carlo estimate within 4.5 standard errors."""
    rng = np.random.default_rng(7)
    n = 10 ** 6
    for y in _random_points(3, 21):
        C = np.array([[y[0], y[1]], [y[1], y[2]]])
        H, L = np.linalg.cholesky(C) @ rng.normal(size=(2, n))
        E = rng.normal(size=n)
        got = module.nodes(0.0, y, np.zeros(0))
        for k, (_, f, _) in enumerate(CASES):
            sample = f(H, L, E, y[3])
            se = sample.std() / math.sqrt(n)
            assert abs(got[k] - sample.mean()) < 4.5 * se, (k, y, got[k], sample.mean(), se)


def test_backends_agree_and_derivatives_match_finite_differences(module):
    """numba (as plain Python), numpy and mpmath agree to 1e-12; the derivatives in the covariance (through the
    whitening for the half rules, Price's theorem for the others) and in d equal central differences."""
    n = len(CASES)
    for j, y in enumerate(_random_points(3, 22)):
        got = module.nodes(0.0, y, np.zeros(0))
        assert np.all(np.isfinite(got))
        assert np.allclose(module.nodes_numpy(0.0, y, np.zeros(0)), got, rtol=1e-12, atol=1e-15)
        if j == 0:
            with mpmath.workdps(20):
                mp = module.nodes_mp(0.0, [mpmath.mpf(x) for x in y], [])
            assert np.allclose([float(x) for x in mp], got, rtol=1e-12, atol=1e-15)
        for k in range(4):
            step_ = 1e-5
            up, down = y.copy(), y.copy()
            up[k] += step_
            down[k] -= step_
            fd = (module.nodes(0.0, up, np.zeros(0))[:n] - module.nodes(0.0, down, np.zeros(0))[:n]) / (2 * step_)
            offset = n * (k + 1)
            assert np.allclose(got[offset:offset + n], fd, rtol=1e-6, atol=1e-8), (k, got[offset:offset + n], fd)


def test_noise_kink_means_are_the_truncated_normal_moments():
    """E_e[e^k relu(a + c e)^p theta(a + c e)] in closed form against 30-digit quadrature over e, both signs of c."""
    a = sp.Symbol("a", real=True)
    c = sp.Symbol("c", positive=True)
    for k, p, sign in ((0, 1, 1), (1, 1, 1), (2, 2, -1), (3, 0, 1), (1, 3, -1)):
        A = a + sign * c * e
        F = e ** k * Relu(A) ** p * Step(A)
        mean = noise_kink_means(F, {e: 0}, [[1]])
        assert mean is not None and not mean.has(e)
        f = sp.lambdify([a, c], mean.rewrite(sp.erf).rewrite(sp.exp), "mpmath")
        for av, cv in ((0.3, 0.7), (-1.2, 1.5), (2.0, 0.4)):
            with mpmath.workdps(30):
                kink = -av / (sign * cv)
                exact = mpmath.quad(lambda x: mpmath.npdf(x) * x ** k * max(av + sign * cv * x, 0) ** p
                                    * (1 if av + sign * cv * x > 0 else 0), [-mpmath.inf, kink, mpmath.inf])
                assert abs(f(mpmath.mpf(av), mpmath.mpf(cv)) - exact) < 1e-18, (k, p, sign, av, cv)


def test_half_rule_against_adaptive_quadrature():
    """The 50-node half-line rule: E[theta(y) G(y)] for erf, erf' and polynomial G of scale up to 3 within 5e-12 of
    30-digit adaptive quadrature (the accuracy HALF_NOTE states)."""
    nodes, weights = half_rule()
    assert len(nodes) == 50
    with mpmath.workdps(30):
        G = [lambda y, a: mpmath.erf((a * y + 0.3) / mpmath.sqrt(2)) ** 2,
             lambda y, a: y ** 2 * mpmath.exp(-(a * y - 0.5) ** 2 / 2),
             lambda y, a: (a * y) ** 3,
             lambda y, a: mpmath.ncdf(a * y / 0.7) * (a * y) ** 2]
        for f in G:
            for a in (0.3, 1, 2, 3):
                exact = mpmath.quad(lambda y: mpmath.npdf(y) * f(y, a), [0, 1, 3, mpmath.inf])
                rule = mpmath.fsum(mpmath.mpf(str(w)) * f(mpmath.mpf(str(y)), a) for y, w in zip(nodes, weights))
                assert abs(rule - exact) < 5e-12, (a, rule, exact)


def _half2_by_scipy(node):
    """E[theta(u) G(u, v)] of a numeric ``HalfRule2`` node by SciPy's adaptive quadrature over y1 > 0 and y2 after
    the whitening (independent of the node's rule and of codegen)."""
    from scipy.integrate import dblquad
    S11, S12, S22 = (float(x) for x in node.args[1:4])
    G = node.args[0].G.xreplace({rule_parameter(k + 1): p for k, p in enumerate(node.args[4:])})
    f = sp.lambdify([RULE_U, RULE_V], G.rewrite(sp.erf).rewrite(sp.exp), "math")
    a = math.sqrt(S11)
    b = S12 / a
    c = math.sqrt(S22 - b * b)
    phi = lambda y: math.exp(-y * y / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return dblquad(lambda y2, y1: phi(y1) * phi(y2) * f(a * y1, b * y1 + c * y2), 0, 12, -12, 12,
                   epsabs=1e-12, epsrel=1e-12)[0]


def test_half_node_derivatives_through_the_whitening():
    """The covariance derivatives of ``HalfRule2`` (through the whitening, nodes of u G_u, u G_v, v G_v) against
    central differences of the node's value, both by SciPy's adaptive quadrature (not the node's rule, not codegen);
    in v, where there is no kink, the derivative is Price's E[theta(u) G_vv] / 2. A constant integrand is half its
    value; LaTeX shows theta(u)."""
    q = rule_parameter(1)
    assert HalfRule1(Integrand(q ** 2), 2, sp.Symbol("a")) == sp.Symbol("a") ** 2 / 2
    G = ErfAct(RULE_U + q * RULE_V) * RULE_V + ErfActPrime(RULE_U - RULE_V)
    S = {c11: sp.Float(0.8), c12: sp.Float(0.3), c22: sp.Float(1.1)}
    node = HalfRule2(Integrand(G), c11, c12, c22, sp.Float(0.7))
    value = lambda at: _half2_by_scipy(node.xreplace(at))  # noqa: E731
    evaluate = lambda e: float(e.xreplace(S).replace(lambda x: isinstance(x, HalfRule2),  # noqa: E731
                                                     lambda x: sp.Float(_half2_by_scipy(x))))
    for s in (c11, c12, c22):
        h = 1e-4
        fd = (value({**S, s: S[s] + h}) - value({**S, s: S[s] - h})) / (2 * h)
        assert abs(evaluate(sp.diff(node, s)) - fd) < 1e-7, (s, evaluate(sp.diff(node, s)), fd)
    price = HalfRule2(Integrand(sp.diff(G, RULE_V, 2)), c11, c12, c22, sp.Float(0.7)) / 2
    assert abs(evaluate(sp.diff(node, c22)) - evaluate(price)) < 1e-9
    assert r"\theta(u)" in sp.latex(node)


def test_kinks_in_three_fields_are_refused():
    """Kinks in three fields in one term (a ReLU encoder with a non-linear decoder at M = 3) have no rule: one line
    naming the limit."""
    x, y, w = sp.symbols("x y w", real=True)
    cov = lambda i, j: sp.Integer(1) if i == j else sp.Rational(1, 3)  # noqa: E731
    with pytest.raises(NoClosedForm, match="kinks in 3 different fields"):
        nonlinear_expectation(ErfAct(Relu(x) + 1) * ErfAct(Relu(y) + 1) * ErfAct(Relu(w) + 1), [x, y, w], cov,
                              quadrature=True, nodes=True)


# ------------------------------------------------------------------- two encoder kinks: the quadrant rule (M >= 2)
h1, h2, e1, e2 = sp.symbols("h1 h2 e1 e2", real=True)
b11, b12, b22, b13, b23, b33 = sp.symbols("b11 b12 b22 b13 b23 b33", real=True)
FIELDS2 = [h1, h2, l, e1, e2]


def _cov2(i, j):
    C = [[b11, b12, b13, 0, 0], [b12, b22, b23, 0, 0], [b13, b23, b33, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]
    return C[i][j]


z1, z2 = Relu(h1) + sp.sqrt(d) * e1, Relu(h2) + sp.sqrt(d) * e2
CASES2 = [
    # ReLU on both sides at M = 2: the noise's kinks in closed form, then the quadrant of (h1, h2)
    (Relu(z1) * Relu(z2), lambda H1, H2, L, E1, E2, D: relu(relu(H1) + math.sqrt(D) * E1)
     * relu(relu(H2) + math.sqrt(D) * E2)),
    (l * Step(z1) * Relu(z2) * Step(h2), lambda H1, H2, L, E1, E2, D: L * step(relu(H1) + math.sqrt(D) * E1)
     * relu(relu(H2) + math.sqrt(D) * E2) * step(H2)),
    # ReLU encoder, erf decoder at M = 2: the noise inside the quadrant rule (NoiseMean)
    (ErfAct(z1) * ErfAct(z2) * l, lambda H1, H2, L, E1, E2, D: g(relu(H1) + math.sqrt(D) * E1)
     * g(relu(H2) + math.sqrt(D) * E2) * L),
    # kinks of both fields with a smooth function of both
    (Step(h1) * Step(h2) * ErfAct(h1 - h2) * l ** 2, lambda H1, H2, L, E1, E2, D: step(H1) * step(H2)
     * g(H1 - H2) * L ** 2),
    (Relu(h1) * Relu(-h2) * ErfActPrime(h1 + h2), lambda H1, H2, L, E1, E2, D: relu(H1) * relu(-H2) * gp(H1 + H2)),
]
ARGS2 = (b11, b12, b22, b13, b23, b33, d)


def _value2(expr):
    return nonlinear_expectation(expr, FIELDS2, _cov2, quadrature=True, nodes=True)


def test_two_kinks_use_the_quadrant_rule():
    """Every case but the last needs the quadrant rule; relu(h1) relu(-h2) g'(h1 + h2) has a closed form (the g'
    tilt, Stein's lemma and the orthant probability), checked against Monte Carlo below like the others."""
    from symvae.derive._half_space import QuadrantRule
    for k, (expr, _) in enumerate(CASES2):
        value = _value2(expr)
        if k == len(CASES2) - 1:
            assert not value.has(QuadrantRule, GaussRule1, GaussRule2, HalfRule1, HalfRule2), value
            continue
        assert value.has(QuadrantRule), (expr, value)
        for node in value.atoms(QuadrantRule):
            assert not node.args[0].G.has(Relu, Step)


@pytest.fixture(scope="module")
def module2(tmp_path_factory):
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    values = [_value2(expr) for expr, _ in CASES2]
    exprs = values + [sp.diff(x, s) for s in (b11, b12, b22, b13, d) for x in values]
    path = tmp_path_factory.mktemp("relu_quadrant") / "generated.py"
    path.write_text(generate_source([FunctionSpec("nodes", exprs)], ARGS2, ()))
    return load_plain_first(path, "relu_quadrant_test").plain


def _random_points2(count, seed):
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < count:
        A = rng.normal(size=(3, 3))
        C = A @ A.T / 3 + 0.1 * np.eye(3)
        scale = np.sqrt(np.diag(C))
        if np.max(np.abs(C[0, 1] / (scale[0] * scale[1]))) > 0.9 or np.max(scale) > 1.5:
            continue
        points.append(np.array([C[0, 0], C[0, 1], C[1, 1], C[0, 2], C[1, 2], C[2, 2], rng.uniform(0.2, 1.5)]))
    return points


def test_quadrant_rule_against_monte_carlo(module2):
    """At random covariances of (h1, h2, l) (correlation of h1, h2 up to 0.9) each case equals a 10^6-sample Monte
    Carlo estimate within 4.5 standard errors."""
    rng = np.random.default_rng(8)
    n = 10 ** 6
    for y in _random_points2(3, 31):
        C = np.array([[y[0], y[1], y[3]], [y[1], y[2], y[4]], [y[3], y[4], y[5]]])
        H1, H2, L = np.linalg.cholesky(C) @ rng.normal(size=(3, n))
        E1, E2 = rng.normal(size=(2, n))
        got = module2.nodes(0.0, y, np.zeros(0))
        for k, (_, f) in enumerate(CASES2):
            sample = f(H1, H2, L, E1, E2, y[6])
            se = sample.std() / math.sqrt(n)
            assert abs(got[k] - sample.mean()) < 4.5 * se, (k, y, got[k], sample.mean(), se)


def test_quadrant_backends_agree_and_derivatives_match_finite_differences(module2, tmp_path):
    """numba (as plain Python), numpy and mpmath agree to 1e-12 (mpmath on the cases without an inner noise rule,
    whose nested loops take seconds there); the derivatives in S11, S12, S22 (the correlation's through
    d log phi2/dr), in a regression coefficient (b13) and in the noise variance d equal central differences."""
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import FunctionSpec, generate_source
    n = len(CASES2)
    plain_cases = [_value2(CASES2[k][0]) for k in (0, 1, 3)]
    (tmp_path / "generated.py").write_text(generate_source(
        [FunctionSpec("nodes", plain_cases + [sp.diff(x, b12) for x in plain_cases])], ARGS2, ()))
    small = load_plain_first(tmp_path / "generated.py", "relu_quadrant_mp_test").plain
    for j, y in enumerate(_random_points2(1, 32)):
        got = module2.nodes(0.0, y, np.zeros(0))
        assert np.all(np.isfinite(got))
        assert np.allclose(module2.nodes_numpy(0.0, y, np.zeros(0)), got, rtol=1e-12, atol=1e-15)
        with mpmath.workdps(20):
            mp = small.nodes_mp(0.0, [mpmath.mpf(x) for x in y], [])
        assert np.allclose([float(x) for x in mp], small.nodes(0.0, y, np.zeros(0)), rtol=1e-11, atol=1e-14)
        for slot, k in enumerate((0, 1, 2, 3, 6)):
            step_ = 1e-5
            up, down = y.copy(), y.copy()
            up[k] += step_
            down[k] -= step_
            fd = (module2.nodes(0.0, up, np.zeros(0))[:n] - module2.nodes(0.0, down, np.zeros(0))[:n]) / (2 * step_)
            offset = n * (slot + 1)
            assert np.allclose(got[offset:offset + n], fd, rtol=1e-6, atol=1e-8), (k, got[offset:offset + n], fd)
