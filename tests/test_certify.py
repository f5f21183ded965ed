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


def test_krawczyk_rejects_a_box_narrower_than_the_working_precision_and_a_shifted_centre():
    """The test can fail: at 60 digits a box of half-width 1e-70 cannot hold K(X) (rounding alone is ~1e-60), and a
    centre 1e-30 off sqrt 2 with a 1e-40 box has no root in the box."""
    x, p = sp.symbols("x p")
    G, J, shape = _system("test-sqrt", [x ** 2 - p], [x], [p])
    with mpmath.workdps(60):
        assert krawczyk(G, J, shape, [mpmath.sqrt(2)], ["2"], radius_digits=50).certified
        tight = krawczyk(G, J, shape, [mpmath.sqrt(2)], ["2"], radius_digits=70)
        assert not tight.certified and tight.enclosure is None and "not inside" in tight.message
        off = krawczyk(G, J, shape, [mpmath.sqrt(2) * (1 + mpmath.mpf(10) ** -30)], ["2"], radius_digits=40)
        assert not off.certified


def test_krawczyk_falls_back_to_the_exact_inverse_where_float64_cannot_hold_the_jacobian():
    """G = p (x^2 - 2) with p = 1e-400: the Jacobian's midpoint underflows in float64, so Y is the mpmath inverse;
    the enclosure still holds sqrt 2 (and the test on a 3 x 3 system with a dense Jacobian goes through the float64
    inverse: x = y = z = cube root of 1/10 on x^3 = p, y = x, z = y)."""
    x, y, z, p = sp.symbols("x y z p")
    G, J, shape = _system("test-tiny", [p * (x ** 2 - 2)], [x], [p])
    with mpmath.workdps(50):
        cert = krawczyk(G, J, shape, [mpmath.sqrt(2)], ["1e-400"], radius_digits=30)
        assert cert.certified
        lo, hi = cert.enclosure[0]
        assert lo < mpmath.sqrt(2) < hi
        G, J, shape = _system("test-cube", [x ** 3 - p + (y - x) * z, y - x + (z - y) ** 2, z - y + x * (y - x)],
                              [x, y, z], [p])
        root = mpmath.cbrt(mpmath.mpf(1) / 10)
        cert = krawczyk(G, J, shape, [root] * 3, ["0.1"], radius_digits=30)
        assert cert.certified and all(a < root < b for a, b in cert.enclosure)
        assert not krawczyk(G, J, shape, [root * (1 + mpmath.mpf(10) ** -20)] * 3, ["0.1"],
                            radius_digits=30).certified


def test_statics_certificates_reject_a_wrong_centre_or_a_value_outside_the_enclosure():
    """The closed-form certificates can fail: the BBP condition around alpha_c (1 + 1e-25) with a 1e-35 box, and an
    optimal beta 1e-20 away from the true one (the augmented saddle system's enclosure is around the true root, so
    the closed-form value is refused)."""
    from symvae.statics import _thresholds as T
    model = symvae.make_model("base")
    with mpmath.workdps(80):
        exact = mpmath.mpf(9) / 4
        system = T._detection_system(model, "rho")
        values = {"rho": mpmath.mpf(2), "eta": mpmath.mpf(3)}
        interval, ok, _ = T._certify(system, values, [exact], 0, 30)
        assert ok and mpmath.mpf(interval[0]) <= exact <= mpmath.mpf(interval[1])
        interval, ok, why = T._certify(system, values, [exact * (1 + mpmath.mpf(10) ** -25)], 0, 30)
        assert not ok and interval is None and "not inside" in why
        g = mpmath.mpf(1) / 4
        beta_opt = 2 * (1 + g) - (1 - g) / (1 + g)  # s_1 - rho phi_1 at rho = eta = 1, alpha = 4, lam = 0
        params = {"rho": mpmath.mpf(1), "eta": mpmath.mpf(1), "lam": mpmath.mpf(0)}
        interval, ok, _ = T._certificate("optimal_beta", model, params, mpmath.mpf(4), "beta", {"value": beta_opt},
                                         12)
        assert ok and mpmath.mpf(interval[0]) <= beta_opt <= mpmath.mpf(interval[1])
        interval, ok, why = T._certificate("optimal_beta", model, params, mpmath.mpf(4), "beta",
                                           {"value": beta_opt + mpmath.mpf(10) ** -20}, 12)
        assert not ok and "outside the Krawczyk enclosure" in why


def test_interval_functions_enclose_the_point_values_of_every_supported_operation():
    """Each supported operation (powers of every kind, the elementary functions, pi, E, Abs, rationals, decimals),
    evaluated on thin intervals by the generated code, encloses the 60-digit point value; a wide argument widens
    the result (no silent point evaluation)."""
    from symvae.numerics._certify import _PREC, Interval
    x, y = sp.symbols("x y")
    exprs = [x ** 2 - 3 * y, (x + y) ** -3, x ** sp.Rational(3, 2) / y, 1 / sp.sqrt(x), sp.log(x) * sp.exp(-y),
             sp.cos(x) + sp.sin(2 * y), sp.asin(y / 2) - sp.acos(x / 4), sp.pi * x + sp.E * y, sp.Abs(y - x),
             sp.Float("0.125", 30) * x - sp.Rational(1, 3), x ** y]
    G, _, _ = interval_functions("test-ops", [x], [y], exprs, sp.zeros(len(exprs), 1))
    old = _PREC[0]
    try:
        _PREC[0] = 200
        xv, yv = mpmath.mpf("1.3"), mpmath.mpf("0.7")
        thin = [Interval((v._mpf_, v._mpf_)) for v in (xv, yv)]
        wide = [Interval((mpmath.mpf(1)._mpf_, mpmath.mpf(2)._mpf_)), thin[1]]
        with mpmath.workdps(100):  # the reference: point evaluation at 100 digits (error << the 1e-90 slack)
            exact = [v for v in sp.lambdify([x, y], exprs, modules="mpmath")(xv, yv)]
        for e, g, w, r in zip(exprs, G(*thin), G(*wide), exact):
            lo, hi = (mpmath.mp.make_mpf(v) for v in g.v)
            with mpmath.workdps(100):
                slack = mpmath.mpf(10) ** -90 * (1 + abs(r))
                assert lo - slack <= r <= hi + slack, (e, lo, r, hi)
                assert hi - lo < mpmath.mpf(10) ** -50 * (1 + abs(r)), e
            w_lo, w_hi = (mpmath.mp.make_mpf(v) for v in w.v)
            assert w_hi - w_lo > mpmath.mpf(10) ** -3, e
    finally:
        _PREC[0] = old


def test_residual_bound_is_a_true_upper_bound_on_the_box():
    """max |x^2 - p|, |x y - 1| over [1.4, 1.5] x [0.6, 0.7] with p = 0.3 typed: the exact maxima are attained at
    corners (2.25 - 0.3 = 1.95; 1 - 1.4 * 0.6 = 0.16), so the bound is >= 1.95 and within rounding of it; an empty
    system is bounded by 0."""
    from symvae.numerics._certify import residual_bound

    x, y, p = sp.symbols("x y p")
    G, J, shape = interval_functions("test-bound", [x, y], [p], [x ** 2 - p, x * y - 1], None)
    assert J is None and shape is None
    with mpmath.workdps(40):
        box = [(mpmath.mpf("1.4"), mpmath.mpf("1.5")), (mpmath.mpf("0.6"), mpmath.mpf("0.7"))]
        bound = residual_bound(G, box, ["0.3"])
        exact = max(mpmath.mpf("1.5") ** 2 - mpmath.mpf("0.3"), 1 - mpmath.mpf("1.4") * mpmath.mpf("0.6"))
        assert exact <= bound <= exact + mpmath.mpf(10) ** -35
        G0, _, _ = interval_functions("test-bound-empty", [x, y], [p], [], None)
        assert residual_bound(G0, box, ["0.3"]) == 0


def test_the_left_out_equations_of_a_square_system_are_bounded_on_its_enclosure():
    """x^2 = 2, y = x made square from three equations (the third, y - x + d, left out): the certificate proves
    the square root and bounds the left-out equation on the enclosure from above by its true size |d| = 1e-37."""
    from symvae.statics._saddle_thresholds import certify_square

    x, y, a, d = sp.symbols("x y a d")
    interval, certified, why = certify_square("test-left-out", [x, y], [x ** 2 - a, y - x, y - x + d], [a, d],
                                              {"a": "2", "d": "1e-37"}, {}, [0, 1], [1.4142135623730951] * 2, 0, 25)
    assert certified, why
    with mpmath.workdps(40):
        lo, hi = (mpmath.mpf(v) for v in interval)
        assert lo < mpmath.sqrt(2) < hi and hi - lo < mpmath.mpf(10) ** -25
        bound = mpmath.mpf(why.split("|F| <= ")[1].split(" ")[0])
        assert mpmath.mpf("1e-37") <= bound * (1 + mpmath.mpf(10) ** -2) and bound < mpmath.mpf("1e-36")
    assert "the 1 equation left out of the square system: |F| <= " in why
