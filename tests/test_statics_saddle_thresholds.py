"""Statics thresholds located on the replica saddle-point system alone (``method="saddle"``), checked against what
they were not computed from: the BBP threshold alpha_c = (eta/rho)^2 and the optimal beta s_1 - rho phi (lam = 0)
written out here by hand, and the random-matrix closed-form route (``method="closed-form"``), to >= 30 digits; the
Krawczyk enclosures must hold those values. The closed-form route's interior eg peak and optimal beta are now
certified on the augmented saddle system as well."""
import json

import mpmath
import pytest

from helpers import run_cli
from symvae.model import make_model
from symvae.statics import statics_threshold

MODEL = make_model("base")


def _interval(t):
    return tuple(mpmath.mpf(v) for v in t.interval)


def _holds(t, exact, digits):
    """The enclosure contains ``exact`` and is narrower than 10^-digits relative; the value agrees to digits."""
    lo, hi = _interval(t)
    assert lo <= exact <= hi, (t.interval, exact)
    assert hi - lo < abs(exact) * mpmath.mpf(10) ** -digits
    assert abs(t.value - exact) < abs(exact) * mpmath.mpf(10) ** -digits


def _routes_agree(name, model, params, alpha, digits):
    """The saddle route and the closed-form route both verified and certified; the saddle route's enclosure holds the
    closed-form value to ``digits``."""
    s = statics_threshold(name, model, params, alpha, digits=digits, method="saddle")
    c = statics_threshold(name, model, params, alpha, digits=digits)
    assert s.status == c.status == "verified" and s.certified and c.certified, (s.message, c.message)
    with mpmath.workdps(2 * digits + 20):
        _holds(s, c.value, digits)


def _optimal_beta_lam0(rho, eta, alpha):
    """beta_opt = s_1 - rho phi_1 at lam = 0 (the BBP top eigenvalue and eigenvector overlap, written out)."""
    g, ell = 1 / alpha, rho / eta
    return eta * (1 + ell) * (1 + g / ell) - rho * (1 - g / ell ** 2) / (1 + g / ell)


# ------------------------------------------------------------------------------------------------ detection
@pytest.mark.parametrize("rho, eta", [("2", "3"), ("1.5", "0.7")])
def test_detection_on_the_saddle_system_is_the_bbp_threshold(rho, eta):
    t = statics_threshold("detection", MODEL, dict(rho=float(rho), eta=float(eta)), digits=30, method="saddle")
    assert t.status == "verified" and t.certified and t.digits == 30, t.message
    assert "saddle-point system" in t.message and "pitchfork" in t.message
    with mpmath.workdps(80):
        _holds(t, (mpmath.mpf(eta) / mpmath.mpf(rho)) ** 2, 30)


def test_detection_and_collapse_at_strongly_informed_data_with_learned_decoder_variance():
    """rho/eta = 18, learned sigma^2: the informed branch followed down to alpha_c has D ~ 3e-4 beside H ~ 12, and
    Gauss--Newton without equilibration stalled at |F| ~ 1e-7 at alpha = 0.0052 (detection `failed`, collapse
    `not_found`). Detection against (eta/rho)^2, collapse against the closed-form route."""
    model = make_model("learned_sigma2")
    params = dict(rho=2.3539, eta=0.1319, lam=0.0, beta=3.4752)
    d = statics_threshold("detection", model, params, 10.1933, digits=30, method="saddle")
    assert d.status == "verified" and d.certified, d.message
    with mpmath.workdps(80):
        _holds(d, (mpmath.mpf("0.1319") / mpmath.mpf("2.3539")) ** 2, 30)
    _routes_agree("collapse", model, params, 10.1933, 30)


@pytest.mark.slow
@pytest.mark.parametrize("rho, eta", [("2.6424", "0.0734"), ("3.2735", "0.0902")])
def test_detection_at_rho_over_eta_36_with_learned_decoder_variance(rho, eta):
    """First point: the branch followed down to alpha_c = 7.7e-4 needed full Gauss--Newton steps (the residual rises
    for one step before it converges; the monotone damped iteration stopped at alpha = 1.1e-3, m = 0.92, and Newton
    on the augmented system then failed). Second: the mpmath Newton needs the uninformed point on the informed
    point's slice as its start (from m = 0.023 it stalled at |F| = 3e-4)."""
    t = statics_threshold("detection", make_model("learned_sigma2"), dict(rho=float(rho), eta=float(eta)), digits=30,
                          method="saddle")
    assert t.status == "verified" and t.certified, t.message
    with mpmath.workdps(80):
        _holds(t, (mpmath.mpf(eta) / mpmath.mpf(rho)) ** 2, 30)


# ------------------------------------------------------------------------------------------------ optimal beta
@pytest.mark.parametrize("rho, eta, alpha", [
    ("1", "1", "4"),
    pytest.param("1.5", "0.7", "40", marks=pytest.mark.slow),
    pytest.param("1", "0.6", "400", marks=pytest.mark.slow),  # near-degenerate: beta_opt -> eta, phi -> 1
])
def test_optimal_beta_on_the_saddle_system_equals_the_hand_formula(rho, eta, alpha):
    t = statics_threshold("optimal_beta", MODEL, dict(rho=float(rho), eta=float(eta), lam=0.0), float(alpha),
                          digits=30, method="saddle")
    assert t.status == "verified" and t.certified and t.digits == 30, t.message
    assert "implicit differentiation" in t.message
    with mpmath.workdps(80):
        _holds(t, _optimal_beta_lam0(mpmath.mpf(rho), mpmath.mpf(eta), mpmath.mpf(alpha)), 30)


@pytest.mark.slow
def test_optimal_beta_with_weight_decay_agrees_with_the_closed_form_route():
    params, alpha = dict(rho=1.0, eta=1.0, lam=0.5), 3.0
    s = statics_threshold("optimal_beta", MODEL, params, alpha, digits=30, method="saddle")
    c = statics_threshold("optimal_beta", MODEL, params, alpha, digits=30)
    assert s.certified and c.certified and s.digits == c.digits == 30
    with mpmath.workdps(80):
        _holds(s, c.value, 30)


# ------------------------------------------------------------------------------------------------ eg peak
@pytest.mark.parametrize("beta", [1.0, pytest.param(2.5, marks=pytest.mark.slow)])
def test_interior_eg_peak_on_the_saddle_system_agrees_with_the_closed_form(beta):
    """lam = 0.3: eg(alpha) peaks below the BBP threshold, on the uninformed branch (m = 0, eg = Q + rho)."""
    params = dict(rho=1.0, eta=1.0, lam=0.3, beta=beta)
    s = statics_threshold("eg_peak", MODEL, params, digits=30, method="saddle")
    c = statics_threshold("eg_peak", MODEL, params, digits=30)
    assert s.status == c.status == "verified" and s.certified and c.certified, (s.message, c.message)
    assert "uninformed branch" in s.message and float(s.value) < 1.0  # below alpha_c = 1
    with mpmath.workdps(80):
        _holds(s, c.value, 30)
        lo_c, hi_c = _interval(c)
        lo_s, hi_s = _interval(s)
        assert max(lo_c, lo_s) <= min(hi_c, hi_s)  # the two proven enclosures intersect


@pytest.mark.slow
def test_eg_peak_at_the_cusp_is_the_detection_threshold_on_the_saddle_system():
    t = statics_threshold("eg_peak", MODEL, dict(rho=1.0, eta=1.0, lam=0.5, beta=0.5), digits=30, method="saddle")
    assert t.status == "verified" and t.certified and "pitchfork" in t.message
    with mpmath.workdps(60):
        _holds(t, mpmath.mpf(1), 30)


# ------------------------------------------------------------------------------------------------ collapse
@pytest.mark.parametrize("lam, alpha", [(0.3, 2.0), pytest.param(0.5, 0.5, marks=pytest.mark.slow)])  # 2nd below BBP
def test_collapse_on_the_saddle_system_is_certified_around_the_exact_value(lam, alpha):
    """Continuous collapse: beta_c = (s^2 - l - l^2)/(s (1 + l)), l = lam/alpha, s the top eigenvalue (outlier above
    BBP, bulk edge eta (1 + 1/sqrt(alpha))^2 below), written out here."""
    s = statics_threshold("collapse", MODEL, dict(rho=1.0, eta=1.0, lam=lam), alpha, digits=30, method="saddle")
    assert s.status == "verified" and s.certified and s.digits == 30, s.message
    assert "blown-up" in s.message
    with mpmath.workdps(80):
        a, l_eff = mpmath.mpf(str(alpha)), mpmath.mpf(str(lam)) / mpmath.mpf(str(alpha))  # the typed decimals
        s1 = 2 * (1 + 1 / a) if a > 1 else (1 + 1 / mpmath.sqrt(a)) ** 2
        _holds(s, (s1 * s1 - l_eff - l_eff ** 2) / (s1 * (1 + l_eff)), 30)


def test_first_order_collapse_on_the_saddle_system():
    """Strong decay (rho 1.8, lam 6, alpha 2): the collapse is first order, no branch point of the learned saddle
    (it was `not_found` on this route). It is the root of F = 0, f = f_collapsed on the saddle system, certified,
    and equals the closed-form route's G(q) = G(0), G'(q) = 0 (an independent computation) to 30 digits."""
    params, alpha = dict(rho=1.8, eta=1.0, lam=6.0), 2.0
    s = statics_threshold("collapse", MODEL, params, alpha, digits=30, method="saddle")
    assert s.status == "verified" and s.certified and "first-order" in s.message and "free energy" in s.message
    _routes_agree("collapse", MODEL, params, alpha, 30)


def test_collapse_with_decay_on_the_decoder_only_below_alpha_one():
    """lam on W only (rho/eta = 17, alpha = 0.14): the blown-up system's Jacobian has singular values 2.1e-7 (a
    weakly determined m~, 6e-9 of the largest) and 1e-15 (two conjugate directions). Counting the first as null
    (rank threshold 1e-8) froze a coordinate that is not free, and Newton stalled at |F| = 1.7e-19 (`not_found`);
    the threshold is 1e-11 now. Against the closed-form route to 30 digits."""
    _routes_agree("collapse", make_model("lam_W_only"), dict(rho=5.7244, eta=0.3313, lam=1.066), 0.1417, 30)


def test_a_float64_start_just_past_a_continuous_collapse_is_no_spinodal():
    """lam on W only, rho/eta = 17.6, alpha = 3.8: the float64 branch reached beta = 2.8266405 (Q = 1e-4 of its
    start), past beta_c = 2.8266402, and the blown-up branch point below the start was refused as a spinodal
    (`not_found`). A branch point within 1e-5 below the start is accepted when the global minimiser is learned just
    below it and collapsed just above (at a spinodal it stays learned up to beta_c). Against the closed form."""
    _routes_agree("collapse", make_model("lam_W_only"), dict(rho=3.123, eta=0.1773, lam=0.7059), 3.817, 30)


@pytest.mark.parametrize("rho, eta, d1, alpha, decay", [(4.5532, 0.3806, 0.4683, 0.8363, True),
                                                      (8.7752, 0.5606, 0.9538, 0.187, False)])
def test_fixed_encoder_variance_without_decay_below_alpha_one(rho, eta, d1, alpha, decay):
    """Fixed D, lam = 0, alpha < 1, strongly informed: the encoder is free outside the span of the data, a null
    direction of the saddle system that moves Q~ and m~ but no conjugate. Freezing a conjugate left the blown-up
    system singular (collapse `not_found`, Newton stalled at |F| ~ 1e-14); an order parameter is frozen now. At the
    pitchfork the informed branch's slice can make the odd block's m~ row vanish (detection `failed`); detection is
    then located with a decay, which does not move alpha_c. Which route a case takes depends on the last bits of the
    generated Jacobian (the first case takes the decay route, the second is found directly since the Jacobian code
    keeps only repeated subexpressions); both are certified. Collapse against the closed-form route, detection
    against (eta/rho)^2 written out here."""
    model = make_model("fixed_D")
    params = dict(rho=rho, eta=eta, lam=0.0, D_1=d1)
    _routes_agree("collapse", model, params, alpha, 30)
    d = statics_threshold("detection", model, params, digits=30, method="saddle")
    assert d.status == "verified" and d.certified and ("weight decay" in d.message) == decay, d.message
    with mpmath.workdps(80):
        _holds(d, (mpmath.mpf(str(eta)) / mpmath.mpf(str(rho))) ** 2, 30)


# ------------------------------------------------------------------------------------------------ CLI
def _run(capsys, *argv):
    return run_cli(capsys, "threshold", *argv)  # argparse's SystemExit included


def test_cli_method_saddle(capsys):
    code, out, _ = _run(capsys, "detection", "--rho", "2", "--eta", "3", "--method", "saddle", "--digits", "25",
                        "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "saddle" and d["certified"] is True and d["digits"] == 25
    with mpmath.workdps(50):
        lo, hi = (mpmath.mpf(v) for v in d["interval"])
        assert lo <= mpmath.mpf(9) / 4 <= hi
    # not found: the weight decay collapses the latent at beta = eta/2 already (no learned branch to follow)
    code, out, _ = _run(capsys, "optimal_beta", "--alpha", "0.5", "--lam", "100", "--method", "saddle", "--json")
    assert code == 1 and json.loads(out)["status"] == "not_found"
    for argv in (["collapse", "--alpha", "2", "--parameter", "lam", "--method", "saddle"],
                 ["collapse", "--method", "saddle"],  # an online threshold: --method is a statics option
                 ["detection", "--method", "newton"]):
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, argv


# ------------------------------------------------------------------------------------------------ several latents
def test_two_latents_one_spike_on_the_saddle_system():
    """(M, M*) = (2, 1): the thresholds are the top latent's, located on the model with that latent alone and
    checked against the whole model's global minimiser. Detection against (eta/rho)^2 and the collapse against the
    hand formula (the second latent, on the bulk edge, collapses first); the optimal beta, where the second latent
    fits the noise, is refused with the reason instead of being taken from the top latent alone."""
    model = make_model("base", M=2, M_star=1)
    params = dict(rho=1.0, eta=1.0, lam=0.3, beta=1.0)
    d = statics_threshold("detection", model, params, digits=30, method="saddle")
    assert d.status == "verified" and d.certified, d.message
    with mpmath.workdps(80):
        _holds(d, mpmath.mpf(1), 30)
    c = statics_threshold("collapse", model, params, 2.0, digits=30, method="saddle")
    assert c.status == "verified" and c.certified, c.message
    assert c.closed_form_text.startswith("beta_c = "), c.closed_form_text  # it printed "first-order collapse"
    with mpmath.workdps(80):
        a, l_eff = mpmath.mpf(2), mpmath.mpf("0.3") / 2
        s1 = 2 * (1 + 1 / a)
        _holds(c, (s1 * s1 - l_eff - l_eff ** 2) / (s1 * (1 + l_eff)), 30)
    o = statics_threshold("optimal_beta", model, params, 2.0, digits=20, method="saddle")
    assert o.status == "not_found" and "latent 2" in o.message and "active" in o.message, o.message


@pytest.mark.slow
def test_two_latents_on_the_bulk_edge_collapse_together_on_the_saddle_system():
    """(2, 1) below the BBP threshold: both latents sit on the bulk edge and collapse at the same beta, so the second
    latent is active just below beta_c (the check used to demand it collapsed there and reported not_found)."""
    model = make_model("base", M=2, M_star=1)
    c = statics_threshold("collapse", model, dict(rho=1.0, eta=1.0, lam=0.5), 0.5, digits=30, method="saddle")
    assert c.status == "verified" and c.certified and "has an active latent" in c.message, c.message
    with mpmath.workdps(80):
        a, l_eff = mpmath.mpf("0.5"), mpmath.mpf(1)
        s1 = (1 + 1 / mpmath.sqrt(a)) ** 2
        _holds(c, (s1 * s1 - l_eff - l_eff ** 2) / (s1 * (1 + l_eff)), 30)


def _beta_c_outlier(rho, eta, lam, alpha):
    """beta_c of the latent on the outlier of a spike rho: s = eta (1 + l)(1 + 1/(alpha l)), l = rho/eta, written out."""
    ell, l_eff = rho / eta, lam / alpha
    s1 = eta * (1 + ell) * (1 + 1 / (alpha * ell))
    return (s1 * s1 - l_eff - l_eff ** 2) / (s1 * (1 + l_eff))


def test_one_latent_two_spikes_on_the_saddle_system():
    """(M, M*) = (1, 2), per-spike rho = (2, 0.5): the latent learns the strongest spike; the route works on the model
    of that spike alone (the other one's eg added) and checks the whole model. Detection (eta/rho_max)^2, collapse
    against the hand formula, optimal beta against the closed-form route."""
    model = make_model("per_spike_rho", M=1, M_star=2)
    params = dict(rho_1=2.0, rho_2=0.5, eta=1.0, lam=0.3, beta=1.0)
    d = statics_threshold("detection", model, params, digits=30, method="saddle")
    assert d.status == "verified" and d.certified and "2 spikes" in d.message, d.message
    with mpmath.workdps(80):
        _holds(d, mpmath.mpf(1) / 4, 30)
    c = statics_threshold("collapse", model, params, 2.0, digits=30, method="saddle")
    assert c.status == "verified" and c.certified, c.message
    with mpmath.workdps(80):
        _holds(c, _beta_c_outlier(mpmath.mpf(2), mpmath.mpf(1), mpmath.mpf("0.3"), mpmath.mpf(2)), 30)
    _routes_agree("optimal_beta", model, params, 2.0, 20)


@pytest.mark.slow
@pytest.mark.parametrize("variant, params, rho_max", [
    ("per_spike_rho", dict(rho_1=1.0, rho_2=2.0, eta=1.0, lam=0.3, beta=1.0), "2"),
    ("base", dict(rho=1.5, eta=1.0, lam=0.3, beta=1.0), "1.5")])
def test_two_latents_two_spikes_on_the_saddle_system(variant, params, rho_max):
    """(2, 2): the top latent on the strongest spike (the second one for per-spike rho = (1, 2); with equal spikes both
    latents learn and collapse together, which the whole-model check allows)."""
    model = make_model(variant, M=2, M_star=2)
    d = statics_threshold("detection", model, params, digits=20, method="saddle")
    c = statics_threshold("collapse", model, params, 2.0, digits=20, method="saddle")
    assert d.status == c.status == "verified" and d.certified and c.certified, (d.message, c.message)
    with mpmath.workdps(60):
        rho = mpmath.mpf(rho_max)
        _holds(d, (1 / rho) ** 2, 20)
        _holds(c, _beta_c_outlier(rho, mpmath.mpf(1), mpmath.mpf("0.3"), mpmath.mpf(2)), 20)


def test_eg_peak_at_the_cusp_with_two_spikes_on_the_saddle_system():
    """(1, 2), rho = (1.0149, 0.9053): eg peaks at the cusp, the BBP threshold of the strongest spike. The whole-model
    check once compared eg 1e-4 under the float64 alpha_c, where the whole model is still informed (m = 0.0045), and
    reported not_found; it now compares at 0.99 alpha_c. Against (eta/rho_max)^2 and the closed-form route."""
    model = make_model("per_spike_rho", M=1, M_star=2)
    params = dict(rho_1=1.0149, rho_2=0.9053, eta=0.5827, lam=0.1938, beta=0.3468)
    t = statics_threshold("eg_peak", model, params, digits=20, method="saddle")
    assert t.status == "verified" and t.certified and "pitchfork" in t.message, t.message
    with mpmath.workdps(60):
        _holds(t, (mpmath.mpf("0.5827") / mpmath.mpf("1.0149")) ** 2, 20)
