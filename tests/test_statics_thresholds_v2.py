"""Statics thresholds as ``Threshold`` objects: collapse in beta, in the weight decay and in alpha, their interval
certificates, and the exit codes of ``symvae threshold`` in the statics setting.

Every located value is checked against something it was not computed from: the closed-form free energy scanned by
brute force, the replica saddle point (``solve_statics``) on both sides, the inverse threshold (beta_c at the located
lam or alpha), or a 60-digit ``findroot`` on the collapse condition written out here by hand
(q = 0 stable iff s^2 < (1 + l)(beta s + l), l = lam/alpha, s the top eigenvalue of the sample covariance)."""
import json
import math
import re

import mpmath
import numpy as np
import pytest

from helpers import run_cli
from symvae.model import make_model
from symvae.numerics import Threshold
from symvae.statics import closed_form, solve_statics, statics_threshold

MODEL = make_model("base")


def _s1(rho, eta, alpha):
    """Top eigenvalue of the sample covariance (BBP), written out independently of symvae.statics._spectrum."""
    g = 1 / alpha
    ell = rho / eta
    return eta * (1 + ell) * (1 + g / ell) if ell * ell > g else eta * (1 + mpmath.sqrt(g)) ** 2


def _slope_numerator(beta, lam, rho, eta, alpha):
    s, l_eff = _s1(rho, eta, alpha), lam / alpha
    return (1 + l_eff) * (beta * s + l_eff) - s * s


def _q_top(params, alpha):
    return float(closed_form(MODEL, params, alpha).q[0])


def _interval(t: Threshold):
    return tuple(mpmath.mpf(v) for v in t.interval)


# ------------------------------------------------------------------------------------------------ lam threshold
def test_lam_threshold_against_a_brute_force_scan_of_the_closed_form():
    params, alpha = dict(rho=1.0, eta=1.0, beta=0.5, lam=0.0), 10.0
    t = statics_threshold("collapse", MODEL, params, alpha, digits=25, parameter="lam")
    assert isinstance(t, Threshold) and t.status == "verified" and t.parameter == "lam" and t.certified
    lam_c = float(t.value)
    # brute force: the top latent's q of the global minimiser of the closed form on a grid of lam
    grid = [0.5 * k for k in range(1, 60)]
    active = [_q_top({**params, "lam": x}, alpha) > 0 for x in grid]
    flips = [i for i in range(len(grid) - 1) if active[i] != active[i + 1]]
    assert len(flips) == 1 and active[0] and not active[-1]
    assert grid[flips[0]] < lam_c < grid[flips[0] + 1]
    # the learned latent exists just below lam_c, not just above
    assert _q_top({**params, "lam": lam_c * (1 - 1e-6)}, alpha) > 0
    assert _q_top({**params, "lam": lam_c * (1 + 1e-6)}, alpha) == 0


def test_lam_threshold_enclosure_holds_an_independent_60_digit_root():
    params, alpha = dict(rho=1.0, eta=1.0, beta=0.5), 10.0
    t = statics_threshold("collapse", MODEL, params, alpha, digits=30, parameter="lam")
    assert t.certified and t.digits == 30 and t.status == "verified"
    with mpmath.workdps(60):
        one = mpmath.mpf(1)
        root = mpmath.findroot(lambda x: _slope_numerator(one / 2, x, one, one, mpmath.mpf(10)), 11.5)
        lo, hi = _interval(t)
        assert lo <= root <= hi and hi - lo < root * mpmath.mpf(10) ** -30
        assert mpmath.nstr(root, 30, strip_zeros=False) == t.text


def test_first_order_lam_threshold_inverts_the_first_order_beta_threshold():
    """Strong decay: collapse in beta at lam = 6 is first order (q jumps); the lam threshold at that beta is 6."""
    params, alpha = dict(rho=1.8, eta=1.0, lam=6.0), 2.0
    tb = statics_threshold("collapse", MODEL, params, alpha, digits=30)
    assert tb.certified and tb.status == "verified" and "first-order" in tb.message
    with mpmath.workdps(50):
        beta = mpmath.mpf(tb.interval[0])  # any point of the enclosure: within 1e-30 of beta_c
        tl = statics_threshold("collapse", MODEL, dict(rho=1.8, eta=1.0, beta=beta), alpha, digits=25,
                               parameter="lam")
        assert tl.status == "verified" and tl.certified and "first-order" in tl.message
        assert abs(tl.value - 6) < mpmath.mpf(10) ** -25
    # first order: just below lam = 6 the top latent sits at a finite q, just above it is collapsed
    assert _q_top(dict(rho=1.8, eta=1.0, beta=float(beta), lam=6.0 * (1 - 1e-7)), alpha) > 0.01
    assert _q_top(dict(rho=1.8, eta=1.0, beta=float(beta), lam=6.0 * (1 + 1e-7)), alpha) == 0


def test_lam_threshold_not_found_when_beta_is_above_beta_c_without_decay():
    t = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, beta=2.5), 10.0, digits=10, parameter="lam")
    assert t.status == "not_found" and t.value is None and "lam = 0" in t.message
    # at alpha = inf the decay enters as lam/alpha = 0: beta_c = rho + eta = 2 > 0.5 whatever lam
    t = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, beta=0.5), math.inf, digits=10, parameter="lam")
    assert t.status == "not_found" and "no effect" in t.message
    assert _q_top(dict(rho=1.0, eta=1.0, beta=0.5, lam=1e6), math.inf) > 0


# ---------------------------------------------------------------------------------------------- alpha threshold
ALPHA_PARAMS = dict(rho=1.0, eta=1.0, beta=1.0, lam=4.0)


def test_alpha_threshold_is_where_beta_c_of_alpha_equals_beta():
    t = statics_threshold("collapse", MODEL, ALPHA_PARAMS, digits=30, parameter="alpha")
    assert t.status == "verified" and t.certified and t.parameter == "alpha"
    with mpmath.workdps(60):
        back = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, lam=4.0), t.value, digits=28)
        assert back.status == "verified" and abs(back.value - 1) < mpmath.mpf(10) ** -27
        # independent 60-digit root of the hand-written condition in alpha
        one = mpmath.mpf(1)
        root = mpmath.findroot(lambda a: _slope_numerator(one, 4 * one, one, one, a), float(t.value))
        lo, hi = _interval(t)
        assert lo <= root <= hi and hi - lo < root * mpmath.mpf(10) ** -30


def test_alpha_threshold_separates_the_replica_saddle_points():
    alpha_c = float(statics_threshold("collapse", MODEL, ALPHA_PARAMS, digits=12, parameter="alpha").value)
    below = solve_statics(MODEL, ALPHA_PARAMS, alpha_c * 0.98)
    above = solve_statics(MODEL, ALPHA_PARAMS, alpha_c * 1.02)
    assert below.ok and above.ok
    assert below.phase == "collapsed" and above.phase == "learning"
    assert float(above.order["Q"][0, 0]) > 1e-4


def test_alpha_threshold_not_found_above_rho_plus_eta():
    t = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, beta=2.5, lam=0.3), digits=10,
                          parameter="alpha")
    assert t.status == "not_found" and t.value is None and "beta_c(alpha = inf) = 2" in t.message


# ------------------------------------------------------------------------------------------------ certification
def test_detection_and_beta_thresholds_are_certified_around_the_exact_values():
    t = statics_threshold("detection", MODEL, dict(rho=2.0, eta=3.0, lam=0.0, beta=0.1), digits=40)
    assert t.certified and t.digits == 40
    with mpmath.workdps(80):
        lo, hi = _interval(t)
        assert lo <= mpmath.mpf(9) / 4 <= hi and hi - lo < mpmath.mpf(10) ** -40
    # continuous collapse in beta at lam = 0.3, alpha = 2: beta_c = (s^2 - l - l^2)/(s (1 + l)), s = 3, l = 3/20
    t = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, lam=0.3), 2.0, digits=50)
    assert t.certified and t.digits == 50 and t.status == "verified"
    with mpmath.workdps(80):
        l_eff, s = mpmath.mpf(3) / 20, mpmath.mpf(3)
        exact = (s * s - l_eff - l_eff ** 2) / (s * (1 + l_eff))
        lo, hi = _interval(t)
        assert lo <= exact <= hi and hi - lo < exact * mpmath.mpf(10) ** -50


def test_optimal_beta_is_certified_on_the_augmented_saddle_system():
    """The closed-form optimal beta is now proven by the Krawczyk test on d eg/d beta = 0 of the saddle system; the
    enclosure holds beta_opt = s_1 - rho phi_1 (lam = 0), written out here."""
    t = statics_threshold("optimal_beta", MODEL, dict(rho=1.0, eta=1.0, lam=0.0), 4.0, digits=12)
    assert t.status == "verified" and t.certified and t.interval is not None and t.digits == 12
    assert "saddle system" in t.message
    with mpmath.workdps(40):
        g, one = mpmath.mpf(1) / 4, mpmath.mpf(1)
        exact = 2 * (1 + g) - (1 - g) / (1 + g)
        lo, hi = _interval(t)
        assert lo <= exact <= hi and hi - lo < mpmath.mpf(10) ** -12 * one


def test_an_optimal_beta_attained_twice_is_the_same_one_on_both_routes():
    """rho = 1.8663, eta = 1.664, lam = 0.5541, alpha = 8.7246: eg is smallest where the decoder norm has one value,
    which q(beta) passes twice, so eg(beta) has two minima of equal depth (0.0434 and 1.9517). Both routes once
    certified a different one of them (each picked the lowest sample of its own scan). Now both report the smaller
    beta, name the other, and the closed-form eg at the two (computed here) is equal and below its neighbours."""
    pv = dict(rho=1.8663, eta=1.664, lam=0.5541)
    alpha = 8.7246
    a = statics_threshold("optimal_beta", MODEL, pv, alpha, digits=20)
    b = statics_threshold("optimal_beta", MODEL, pv, alpha, digits=20, method="saddle")
    assert a.status == b.status == "verified" and a.certified and b.certified
    with mpmath.workdps(30):
        assert abs(mpmath.mpf(a.value) - mpmath.mpf(b.value)) < mpmath.mpf(10) ** -19
    for t in (a, b):  # the second location is a float64 one (a bounded scalar search): ~1e-7 relative
        also = re.search(r"also at beta = ([0-9.e+-]+)", t.message)
        assert also and abs(float(also.group(1)) / 1.9517010007710393 - 1) < 1e-6, t.message

    def eg(beta):
        return closed_form(MODEL, {**pv, "beta": beta}, alpha).observables["eg"]

    low, high = float(a.value), 1.9517010007710393
    assert abs(eg(low) - eg(high)) < 1e-12
    assert all(eg(x * f) > eg(x) + 1e-6 for x in (low, high) for f in (0.8, 1.25))


def test_optimal_beta_at_the_collapse_of_a_superfluous_latent():
    """(M, M*) = (2, 1), lam = 0: the second latent fits the bulk edge s_2 = eta (1 + 1/sqrt(alpha))^2 until it
    collapses at beta = s_2, and eg falls until then; the top latent's own optimum lies below s_2, so eg has its
    minimum at the corner beta = s_2 (its slope jumps from < 0 to > 0; findroot on it used to fail). Checked against
    s_2 written out here, with the closed-form eg larger on both sides."""
    model = make_model("base", M=2, M_star=1)
    pv, alpha = dict(rho=2.0, eta=0.5, lam=0.0), 4.0
    t = statics_threshold("optimal_beta", model, pv, alpha, digits=30)
    assert t.status == "verified" and t.certified and "corner" in t.message and "latent 2" in t.message, t.message
    with mpmath.workdps(60):
        exact = mpmath.mpf("0.5") * (1 + 1 / mpmath.sqrt(4)) ** 2
        lo, hi = (mpmath.mpf(v) for v in t.interval)
        assert lo <= exact <= hi and hi - lo < mpmath.mpf(10) ** -30
    eg = [closed_form(model, {**pv, "beta": b}, alpha).observables["eg"] for b in (1.12, 1.125, 1.13)]
    assert eg[0] > eg[1] + 1e-4 and eg[2] > eg[1] + 1e-4


def test_optimal_beta_at_a_corner_with_latents_of_their_own_encoder_variance():
    """Fixed D_1 != D_2: the closed form puts latent 1 (not 2) on the bulk edge, so the corner is latent 1's collapse
    there (the route looked for latent 2's only, and findroot on d eg/d beta failed). The located beta is where the
    closed form's smaller decoder norm reaches 0, with eg larger on both sides."""
    model = make_model("fixed_D", M=2, M_star=1)
    pv, alpha = {"D_1": 0.715, "D_2": 0.6233, "eta": 0.4626, "lam": 0.9439, "rho": 3.9682}, 0.6375
    t = statics_threshold("optimal_beta", model, pv, alpha, digits=20)
    assert t.status == "verified" and t.certified and "corner" in t.message and "latent 1" in t.message, t.message
    b = float(t.value)
    q = [np.diag(np.atleast_2d(closed_form(model, {**pv, "beta": x}, alpha).order["Q"])) for x in (b * (1 - 1e-6),
                                                                                                   b * (1 + 1e-6))]
    assert min(q[0]) > 0 and min(q[1]) == 0 and max(q[1]) > 0.1
    eg = [closed_form(model, {**pv, "beta": x}, alpha).observables["eg"] for x in (0.99 * b, b, 1.01 * b)]
    assert eg[0] > eg[1] + 1e-5 and eg[2] > eg[1] + 1e-5


def test_collapse_of_latents_with_their_own_encoder_variance_is_the_last_one():
    """Fixed D_1 = 0.715, D_2 = 0.6233, (2, 1): with latent 2 on the top eigenvalue the model learns up to beta =
    2.2086; the route took latent 1's threshold (2.1045) and certified it. Checked against the closed form's phases
    (it chooses which latent sits on which eigenvalue): learning just below, collapsed just above; the saddle route,
    whose top-latent model is latent 1's, must not report 2.1045."""
    model = make_model("fixed_D", M=2, M_star=1)
    pv, alpha = {"D_1": 0.715, "D_2": 0.6233, "eta": 0.4626, "lam": 0.9439, "rho": 3.9682}, 0.6375
    t = statics_threshold("collapse", model, pv, alpha, digits=30)
    assert t.status == "verified" and t.certified, t.message
    b = float(t.value)
    assert closed_form(model, {**pv, "beta": b * (1 - 1e-4)}, alpha).phase != "collapsed"
    assert closed_form(model, {**pv, "beta": b * (1 + 1e-4)}, alpha).phase == "collapsed"
    s = statics_threshold("collapse", model, pv, alpha, digits=20, method="saddle")
    assert s.value is None or abs(float(s.value) - b) < 1e-15, s.message


def test_fixed_encoder_variance_on_the_saddle_route():
    """Fixed D (D_1 = 0.2887), rho = 0.6141, eta = 0.4274, no decay, alpha = 0.8847. Detection on the saddle system
    once failed for every fixed-D point (its problem set D_1 = 0); it is (eta/rho)^2, written out here. The optimal
    beta is attained twice (0.00395 and 6.13, equal eg); the smaller lies at 6e-4 beta_c, below the closed-form
    route's old scan from 1e-3 beta_c and beyond the point where the saddle route's fixed continuation steps failed:
    the routes certified different minima. Both now report the smaller."""
    model = make_model("fixed_D")
    pv = dict(D_1=0.2887, rho=0.6141, eta=0.4274, lam=0.0)
    d = statics_threshold("detection", model, pv, None, digits=20, method="saddle")
    assert d.status == "verified" and d.certified
    with mpmath.workdps(40):
        exact = (mpmath.mpf("0.4274") / mpmath.mpf("0.6141")) ** 2
        lo, hi = _interval(d)
        assert lo <= exact <= hi
    a = statics_threshold("optimal_beta", model, pv, 0.8847, digits=20)
    b = statics_threshold("optimal_beta", model, pv, 0.8847, digits=20, method="saddle")
    assert a.status == b.status == "verified" and a.certified and b.certified
    with mpmath.workdps(30):
        assert abs(mpmath.mpf(a.value) - mpmath.mpf(b.value)) < mpmath.mpf(10) ** -19
    assert 0.0039 < float(a.value) < 0.0040 and "also at beta = 6.13055" in a.message


# ------------------------------------------------------------------------------------------------ CLI
def _run(capsys, *argv):
    return run_cli(capsys, "threshold", *argv)  # argparse's SystemExit included


def test_cli_exit_codes_of_the_statics_thresholds(capsys):
    code, out, _ = _run(capsys, "collapse", "--parameter", "alpha", "--beta", "1", "--lam", "4", "--digits", "20",
                        "--json")
    d = json.loads(out)
    assert code == 0 and d["parameter"] == "alpha" and d["certified"] is True and d["digits"] == 20
    assert set(d) >= {"name", "parameter", "value", "digits", "closed_form", "status", "message", "interval"}
    code, out, _ = _run(capsys, "collapse", "--parameter", "alpha", "--beta", "2.5", "--lam", "0.3", "--json")
    d = json.loads(out)
    assert code == 1 and d["status"] == "not_found" and d["value"] is None
    code, out, _ = _run(capsys, "collapse", "--parameter", "lam", "--alpha", "10", "--beta", "2.5", "--json")
    assert code == 1 and json.loads(out)["status"] == "not_found"
    for argv in (["collapse", "--parameter", "eta", "--alpha", "2"],
                 ["collapse", "--parameter", "alpha", "--alpha", "2"],
                 ["collapse", "--parameter", "lam", "--beta", "0.5", "--set", "alpha=3"],
                 ["detection", "--parameter", "lam"]):
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, argv
    code, out, err = _run(capsys, "collapse", "--parameter", "eta", "--alpha", "2")
    assert "beta, lam, alpha" in err


@pytest.mark.parametrize("parameter", ["beta", "lam"])
def test_cli_text_output_names_the_located_parameter(capsys, parameter):
    code, out, _ = _run(capsys, "collapse", "--parameter", parameter, "--alpha", "10", "--beta", "0.5",
                        "--lam", "0.2", "--digits", "15")
    assert code == 0 and out.startswith(f"collapse threshold: {parameter} = ")
    assert math.isfinite(float(out.split("=")[1].split()[0]))


# ------------------------------------------------------------------------- second route: the replica saddle system
@pytest.mark.parametrize("params, alpha", [(dict(rho=1.0, eta=1.0, lam=0.3), 2.0),
                                           (dict(rho=1.5, eta=0.7, lam=0.0), 4.0),
                                           (dict(rho=1.0, eta=1.0, lam=0.5), 0.5)])  # the last below BBP
def test_beta_c_from_the_saddle_equations_equals_the_closed_form(params, alpha):
    """beta_c located on the derived replica saddle-point equations alone (blown up at the branch point, degenerate
    K/H directions frozen) agrees with the closed-form threshold to >= 30 digits at two precisions. The closed form
    only chooses where the float64 learned saddle (the Newton start) is solved."""
    from symvae.statics._thresholds import collapse_threshold_saddle
    ref = statics_threshold("collapse", MODEL, params, alpha, digits=40)
    assert ref.certified and "continuous" in ref.message
    start = solve_statics(MODEL, {**params, "beta": float(ref.value) * 0.99}, alpha)
    assert start.ok and start.phase != "collapsed"
    lo, hi = (collapse_threshold_saddle(start, dps) for dps in (40, 60))
    with mpmath.workdps(70):
        assert abs(hi["value"] - lo["value"]) < abs(hi["value"]) * mpmath.mpf(10) ** -38
        e_lo, e_hi = _interval(ref)
        assert e_lo - abs(e_lo) * mpmath.mpf(10) ** -35 <= hi["value"] <= e_hi + abs(e_hi) * mpmath.mpf(10) ** -35
        assert abs(hi["value"] - ref.value) < abs(ref.value) * mpmath.mpf(10) ** -35
    assert hi["null_dimension"] >= 1 and hi["residual"] < mpmath.mpf(10) ** -50
