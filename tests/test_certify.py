"""Interval certification (Krawczyk test in mpmath's iv context) on analytic fixtures and on thresholds."""
import mpmath
import sympy as sp

import symvae
from symvae.numerics._certify import enclosure_digits, interval_functions, krawczyk
from symvae.numerics._systems import as_compiled
from symvae.numerics._thresholds import threshold


def _system(key, eqs, unknowns, rest):
    return interval_functions(key, unknowns, rest, eqs, sp.Matrix(eqs).jacobian(sp.Matrix(unknowns)))


def test_krawczyk_encloses_sqrt2_and_a_circle_line_intersection():
    x, y, p = sp.symbols("x y p")
    G, J, shape = _system("test-sqrt", [x ** 2 - p], [x], [p])
    with mpmath.workdps(60):
        cert = krawczyk(G, J, shape, [mpmath.sqrt(2) + mpmath.mpf(10) ** -50], ["2"], radius_digits=40)
        assert cert.certified
        lo, hi = cert.enclosure[0]
        assert lo < mpmath.sqrt(2) < hi and hi - lo < mpmath.mpf(10) ** -38
        assert enclosure_digits(lo, hi, 45) >= 38
    # x^2 + y^2 = 1/10 (typed as the decimal 0.1: an exact enclosure of 1/10), y = x: x = y = sqrt(1/20)
    G, J, shape = _system("test-circle", [x ** 2 + y ** 2 - p, y - x], [x, y], [p])
    with mpmath.workdps(50):
        root = mpmath.sqrt(mpmath.mpf(1) / 20)
        cert = krawczyk(G, J, shape, [root, root], ["0.1"], radius_digits=30)
        assert cert.certified and all(a < root < b for a, b in cert.enclosure)


def test_krawczyk_refuses_a_double_root_and_a_box_without_a_root():
    x, p = sp.symbols("x p")
    G, J, shape = _system("test-double", [(x - 1) ** 2 + p], [x], [p])
    with mpmath.workdps(40):
        assert not krawczyk(G, J, shape, [mpmath.mpf(1)], ["0"], radius_digits=20).certified
        G, J, shape = _system("test-none", [x ** 2 - p], [x], [p])
        far = krawczyk(G, J, shape, [mpmath.mpf("1.5")], ["2"], radius_digits=10)  # sqrt 2 is 0.09 away
        assert not far.certified and far.enclosure is None


def test_enclosure_digits_counts_common_rounding():
    with mpmath.workdps(30):
        # 1.23449 -> 1.234 but 1.23451 -> 1.235 at 4 digits; both give 1.23 at 3
        assert enclosure_digits(mpmath.mpf("1.23449"), mpmath.mpf("1.23451"), 10) == 3
        assert enclosure_digits(mpmath.mpf("2.5"), mpmath.mpf("2.5"), 7) == 7
        assert enclosure_digits(mpmath.mpf("0.999"), mpmath.mpf("1.001"), 10) == 2  # both round to 1.0


def test_collapse_threshold_is_certified_and_its_enclosure_holds_the_typed_closed_form():
    base = as_compiled(symvae.derive_dynamics(symvae.make_model("base")))
    r = threshold("collapse", base, dict(beta=1.0, eta=0.7, lam=0.3, rho=1.5, tau=0.1), digits=30, closed_form=False)
    assert r.certified and r.status == "verified" and r.digits == 30
    d = r.as_dict()
    assert d["certified"] is True and len(d["interval"]) == 2
    kappa, lam = sp.Rational("1.5") + sp.Rational("0.7"), sp.Rational("0.3")
    exact = (kappa ** 2 - lam - lam ** 2) / (kappa * (1 + lam))
    with mpmath.workdps(60):
        lo, hi = (mpmath.mpf(v) for v in d["interval"])
        e = mpmath.mpf(exact.p) / exact.q
        assert lo <= e <= hi and hi - lo < e * mpmath.mpf(10) ** -30
        # the shown digits are those of every point in the enclosure
        assert mpmath.nstr(lo, 30, strip_zeros=False) == mpmath.nstr(hi, 30, strip_zeros=False) == \
            mpmath.nstr(e, 30, strip_zeros=False)
