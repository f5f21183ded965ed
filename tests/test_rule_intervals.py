"""Proven enclosures of the Gaussian expectations held as rule nodes (``symvae.numerics._rule_intervals``): each
enclosure must contain the exact expectation (closed forms, mpmath.quad at 30 digits, a fine float trapezoid for a
composition) at every tolerance -- coarse tolerances use coarse rules, so the bound itself is what is tested there --
at random and strongly correlated covariances; widths are small; a wrong reference is rejected; unsupported
functions raise; and a root of a system with a rule node is certified by the Krawczyk test."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from symvae.derive._nonlinear_gaussian import RULE_U as u, RULE_V as v, GaussRule1, Integrand, rule_parameter
from symvae.model._activations import ErfAct, ErfActPrime
from symvae.numerics._rule_intervals import UnsupportedIntegrand, enclose_expectation

q = rule_parameter(1)
TOLS = (1e-3, 1e-8, 1e-20)


def _text(x) -> str:
    return mpmath.nstr(x, 40)


def _covariances():
    """Random covariances (a fixed seed) plus strongly correlated ones, as 40-digit decimal texts (exact inputs)."""
    rng = np.random.default_rng(20240611)
    out = []
    for _ in range(2):
        A = rng.normal(size=(2, 2))
        C = A @ A.T / 2 + 0.05 * np.eye(2)
        out.append((C[0, 0], C[0, 1], C[1, 1]))
    out += [(1.5, 1.45, 1.5), (2.0, -1.99, 2.0), (0.0105, 0.0, 1.0)]
    return [tuple(repr(float(x)) for x in C) for C in out]


def _I2(C11, C12, C22):
    return 2 / mpmath.pi * mpmath.asin(C12 / mpmath.sqrt((1 + C11) * (1 + C22)))


def _J2(C11, C12, C22):
    return 2 / mpmath.pi / mpmath.sqrt((1 + C11) * (1 + C22) - C12 ** 2)


@pytest.mark.parametrize("C", _covariances())
def test_two_direction_enclosures_contain_the_closed_forms(C):
    """I2 = E[g(u) g(v)] and J = E[g'(u) g'(v)] (g = erf(x/sqrt 2)) inside the enclosure at every tolerance; at
    1e-20 the width is below 1e-19 and a reference moved by 1e-15 is outside (the test can fail)."""
    with mpmath.workdps(40):
        C11, C12, C22 = (mpmath.mpf(x) for x in C)
        refs = {ErfAct(u) * ErfAct(v): _I2(C11, C12, C22), ErfActPrime(u) * ErfActPrime(v): _J2(C11, C12, C22),
                ErfAct(u) ** 2: _I2(C11, C11, C11), ErfAct(u) * ErfAct(q * v): _I2(C11, 2 * C12, 4 * C22)}
        for G, ref in refs.items():
            params = ("2",) if G.has(q) else ()
            for tol in TOLS:
                (lo, hi), report = enclose_expectation(G, C, params, tol=tol)
                assert lo <= ref <= hi, (G, C, tol, lo, hi, ref)
                assert report.bound <= tol and report.met
            assert hi - lo < 1e-19
            assert not lo <= ref + mpmath.mpf(10) ** -15 <= hi


@pytest.mark.parametrize("s2", ["0.05", "1", "2.7", "9"])
def test_one_direction_enclosures_contain_adaptive_quadrature(s2):
    """E[tanh(u)^2] and E[u^2 tanh(u)^2 g'(u)] (u ~ N(0, s2)) against mpmath.quad at 40 digits; tanh has poles at
    i pi/2, so the strip shrinks like 1/s and the step with it."""
    with mpmath.workdps(40):
        s = mpmath.sqrt(mpmath.mpf(s2))
        cases = {sp.tanh(u) ** 2: lambda x: mpmath.tanh(x) ** 2,
                 u ** 2 * sp.tanh(u) ** 2 * ErfActPrime(u): lambda x: x ** 2 * mpmath.tanh(x) ** 2 *
                 mpmath.sqrt(2 / mpmath.pi) * mpmath.exp(-x ** 2 / 2)}
        for G, f in cases.items():
            ref = mpmath.quad(lambda y: mpmath.npdf(y) * f(s * y), [-mpmath.inf, -4, -1, 0, 1, 4, mpmath.inf])
            for tol in TOLS:
                (lo, hi), report = enclose_expectation(G, (s2,), tol=tol)
                assert lo <= ref <= hi, (G, s2, tol)
                assert report.met
            assert hi - lo < 1e-19, (G, s2, hi - lo)


def test_composition_and_parameter_slots_against_a_fine_float_rule():
    """E[g(g(u) + sqrt(q) v)^2 g'(u)] and E[u v g'(sqrt(q) v + g(u))] (the forms of erf on both sides of a VAE) at
    tolerance 1e-9: the enclosure (width ~1e-9) holds a float64 trapezoid of step 1/20 on |y| <= 12 (accurate to
    about 1e-15)."""
    from scipy.special import erf
    C, qv = ("0.3", "0.1", "1.2"), 0.9
    z = sp.sqrt(q) * v + ErfAct(u)
    cases = [(ErfAct(z) ** 2 * ErfActPrime(u),
              lambda U, V: erf((np.sqrt(qv) * V + erf(U / np.sqrt(2))) / np.sqrt(2)) ** 2 * gp(U)),
             (u * v * ErfActPrime(z), lambda U, V: U * V * gp(np.sqrt(qv) * V + erf(U / np.sqrt(2))))]

    def gp(x):
        return np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2)

    C11, C12, C22 = (float(x) for x in C)
    a = math.sqrt(C11)
    b, c = C12 / a, math.sqrt(C22 - (C12 / a) ** 2)
    y = np.arange(-240, 241) / 20
    Y1, Y2 = np.meshgrid(y, y, indexing="ij")
    W = np.exp(-(Y1 ** 2 + Y2 ** 2) / 2) / (2 * np.pi) / 400
    for G, f in cases:
        ref = float(np.sum(W * f(a * Y1, b * Y1 + c * Y2)))
        (lo, hi), report = enclose_expectation(G, C, (repr(qv),), tol=1e-9)
        assert float(lo) <= ref <= float(hi), (G, float(lo), ref, float(hi))
        assert hi - lo < 3e-9 and report.met


def test_an_interval_covariance_encloses_every_covariance_in_it():
    """S11 in [0.9, 1.1]: the enclosure holds E[tanh(u)^2] at both ends and in the middle."""
    (lo, hi), _ = enclose_expectation(sp.tanh(u) ** 2, (("0.9", "1.1"),), tol=1e-12)
    with mpmath.workdps(30):
        for s2 in ("0.9", "1", "1.1"):
            s = mpmath.sqrt(mpmath.mpf(s2))
            ref = mpmath.quad(lambda y: mpmath.npdf(y) * mpmath.tanh(s * y) ** 2, [-mpmath.inf, 0, mpmath.inf])
            assert lo <= ref <= hi


def test_the_node_budget_limits_the_bound_and_says_so():
    """A budget of 40 nodes cannot reach 1e-20: the enclosure is wider, still proven, and the report says so."""
    (lo, hi), report = enclose_expectation(ErfAct(u) * ErfAct(v), ("1", "0.3", "0.8"), tol=1e-20, budget=40)
    with mpmath.workdps(30):
        ref = _I2(mpmath.mpf(1), mpmath.mpf("0.3"), mpmath.mpf("0.8"))
    assert lo <= ref <= hi
    assert not report.met and report.nodes <= 40 and report.bound > 1e-20
    assert "node budget" in report.describe()


@pytest.mark.parametrize("G, why", [(sp.Abs(u), "Abs"), (sp.sqrt(1 + u ** 2), "sqrt"),
                                    (1 / (1 + u ** 2), "negative power"), (sp.sinh(u), "sinh"),
                                    (sp.Heaviside(u), "Heaviside")])
def test_unsupported_functions_raise_with_the_reason(G, why):
    with pytest.raises(UnsupportedIntegrand, match=why):
        enclose_expectation(G, ("1",), tol=1e-10)


def test_a_root_of_a_system_with_a_rule_node_is_certified():
    """x with E_{u ~ N(0, x)}[tanh(u)^2] = c, c the 40-digit value at x = 1: ``interval_functions`` gives interval
    evaluators of the node (and its Price derivative), ``krawczyk_widening`` certifies a root inside [1 - e, 1 + e];
    a centre 1e-10 away with a 1e-14 box is refused, and c moved by 1e-12 moves the certified root away from 1."""
    from symvae.numerics._certify import interval_functions, krawczyk, krawczyk_widening
    x, cs = sp.Symbol("x_test", positive=True), sp.Symbol("c_test")
    eq = GaussRule1(Integrand(sp.tanh(u) ** 2), x) - cs
    G, J, shape = interval_functions("test-rule-root", [x], [cs], [eq], sp.Matrix([[sp.diff(eq, x)]]))
    assert G.rule_nodes
    with mpmath.workdps(45):
        c = mpmath.quad(lambda y: mpmath.npdf(y) * mpmath.tanh(y) ** 2, [-mpmath.inf, 0, mpmath.inf])
        # d/dx E_x[tanh(u)^2] = E[(tanh^2)''(u)] / 2 = E[(1 - t^2)(1 - 3 t^2)] (Price), at x = 1
        slope = mpmath.quad(lambda y: mpmath.npdf(y) * (1 - mpmath.tanh(y) ** 2) * (1 - 3 * mpmath.tanh(y) ** 2),
                            [-mpmath.inf, 0, mpmath.inf])
        G.tolerance = 1e-30
        cert, k, centre = krawczyk_widening(G, J, shape, [mpmath.mpf("1.000001")], [_text(c)], digits=25,
                                            jacobian_point=lambda y: [[slope]])
        assert cert.certified, cert.message
        lo, hi = cert.enclosure[0]
        assert lo <= 1 <= hi and hi - lo < mpmath.mpf(10) ** -24
        assert not krawczyk(G, J, shape, [1 + mpmath.mpf(10) ** -10], [_text(c)], radius_digits=14).certified
        cert2, _, _ = krawczyk_widening(G, J, shape, [mpmath.mpf(1)], [_text(c + mpmath.mpf(10) ** -12)], digits=25,
                                        jacobian_point=lambda y: [[slope]])
        assert cert2.certified and not cert2.enclosure[0][0] <= 1 <= cert2.enclosure[0][1]
