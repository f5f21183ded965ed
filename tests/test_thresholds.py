"""Thresholds to arbitrary precision: published values, precision agreement, closed forms, stability flips,
two-parameter curves, user conditions, failure modes and the CLI contract."""
import json

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symvae
from hand_derivation import hand_norm_block_thresholds
from symvae.cli import main
from symvae.errors import InvalidInputError
from symvae.numerics._fixed_points import collapsed_start, find_fixed_points
from symvae.numerics._systems import as_compiled
from symvae.numerics._thresholds import locate_condition, threshold, threshold_curve

BASE = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)


@pytest.fixture(scope="module")
def base():
    return as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=1, M_star=1)))


def _mp(text):
    return mpmath.mpf(text)


@pytest.mark.parametrize("rho,eta,tau", [(1.0, 1.0, 0.01), (2.0, 0.5, 0.2), (0.3, 1.7, 0.5)])
def test_collapse_threshold_is_rho_plus_eta_at_lam_zero_for_any_tau(base, rho, eta, tau):
    """Published (lam = 0): beta_c = rho + eta, the largest data eigenvalue, whatever the step size."""
    r = threshold("collapse", base, dict(BASE, rho=rho, eta=eta, tau=tau), digits=30)
    assert r.status == "verified" and r.digits == 30
    with mpmath.workdps(40):
        exact = mpmath.mpf(repr(rho)) + mpmath.mpf(repr(eta))
        assert abs(r.value - exact) <= abs(exact) * mpmath.mpf(10) ** -29
    assert r.closed_form_digits >= 30


def test_collapse_threshold_with_weight_decay_closed_form_and_tau_independence(base):
    """With lam > 0, beta_c = (kappa^2 - lam - lam^2) / (kappa (1 + lam)), kappa = rho + eta: typed in here from the
    linearisation of the (m, m~) block at the collapsed point (D = 1), independently of the code."""
    lam, rho, eta = "0.25", "1.5", "0.7"
    values = []
    for tau in ("0.01", "0.3"):
        r = threshold("collapse", base, dict(BASE, lam=float(lam), rho=float(rho), eta=float(eta), tau=float(tau)),
                      digits=45)
        assert r.status == "verified"
        values.append(r.value)
        l_, k = sp.Rational(lam), sp.Rational(rho) + sp.Rational(eta)
        with mpmath.workdps(60):
            exact = mpmath.mpf(str(sp.N((k ** 2 - l_ - l_ ** 2) / (k * (1 + l_)), 60)))
            assert abs(r.value - exact) <= abs(exact) * mpmath.mpf(10) ** -44
        kappa, l_sym = sp.Symbol("rho") + sp.Symbol("eta"), sp.Symbol("lam")
        expr = r.closed_form.subs({s: sp.Symbol(s.name) for s in r.closed_form.free_symbols})
        assert sp.simplify(expr - (kappa ** 2 - l_sym - l_sym ** 2) / (kappa * (1 + l_sym))) == 0
        assert "tau" not in {s.name for s in r.closed_form.free_symbols}
    with mpmath.workdps(50):
        assert abs(values[0] - values[1]) <= abs(values[0]) * mpmath.mpf(10) ** -44


def test_50_and_80_digits_agree(base):
    r50 = threshold("noise", base, BASE, digits=50)
    r80 = threshold("noise", base, BASE, digits=80)
    assert r50.status == r80.status == "verified" and r50.digits == 50 and r80.digits == 80
    assert r80.text.startswith(r50.text[:-1])
    with mpmath.workdps(90):
        rel = abs(r50.value - r80.value) / abs(r80.value)
        assert rel <= mpmath.mpf(10) ** -48
    assert len(r50.text.replace(".", "").lstrip("0")) == 50


def test_noise_threshold_closed_form_and_tau_dependence(base):
    """The noise threshold is a root of a cubic in beta from the tau^2 terms; it tends to eta as tau -> 0."""
    values = {}
    for tau in (0.1, 0.01, 0.001):
        r = threshold("noise", base, dict(BASE, tau=tau), digits=40)
        assert r.status == "verified" and r.closed_form_digits >= 40
        assert "degree 3" in r.closed_form_text
        values[tau] = float(r.value)
    assert values[0.001] < values[0.01] < values[0.1]
    assert abs(values[0.001] - 1.0) < 3e-4
    assert values[0.01] == pytest.approx(float(hand_norm_block_thresholds(sp.Rational(1, 100))[1]), rel=1e-15)
    # the same cubic, typed in: det of the (Q, Q~, R) block at the collapsed point (lam = 0, D = 1)
    b, e, t = sp.symbols("b e t")
    J = sp.Matrix([[-2 * t, e ** 2 * t ** 2, 2 * e * t],
                   [e ** 2 * t ** 2, b ** 2 * e ** 2 * t ** 2 - 2 * b * e * t, -2 * b * e ** 2 * t ** 2 + 2 * e * t],
                   [e * t, -b * e ** 2 * t ** 2 + e * t, -b * e * t + e ** 2 * t ** 2 - t]])
    poly = sp.Poly(sp.expand(J.det() / t ** 3).subs({e: 1, t: sp.Rational(1, 100)}), b)
    roots = sorted(float(sp.re(r)) for r in poly.nroots(n=30))
    assert roots[1] == pytest.approx(values[0.01], rel=1e-14)


def test_lr_threshold(base):
    """The step-size edge is the largest root of the hand-derived norm-block determinant (~ 2 / (tau eta))."""
    for tau, digits in ((0.5, 30), (0.01, 20)):
        r = threshold("lr", base, dict(BASE, tau=tau), digits=digits)
        reference = hand_norm_block_thresholds(sp.Rational(str(tau)))[-1]  # parameters are read by their decimal spelling
        assert r.status == "verified" and abs(sp.Float(r.text, 40) - reference) < 10.0 ** (3 - digits)


@pytest.mark.parametrize("name", ["collapse", "noise", "lr"])
def test_stability_flips_exactly_at_the_threshold(base, name):
    """+-1e-8 relative around the threshold the leading eigenvalue of the critical block (for collapse and lr also of
    the full Jacobian) changes sign."""
    r = threshold(name, base, dict(BASE, tau=0.2, lam=0.1), digits=30)
    assert r.status == "verified"
    block = list(r.special_point.block.indices)
    x = collapsed_start(base.system)
    signs = []
    for factor in (1 - 1e-8, 1 + 1e-8):
        p = base.system.param_vector(dict(BASE, tau=0.2, lam=0.1, beta=float(r.value) * factor))
        J = base.jac(0, x, p)
        block_lead = np.max(np.linalg.eigvals(J[np.ix_(block, block)]).real)
        full_lead = np.max(np.linalg.eigvals(J).real)
        signs.append((np.sign(block_lead), np.sign(full_lead)))
    assert signs[0][0] == -signs[1][0] != 0
    if name == "collapse":
        assert signs[0][1] > 0 > signs[1][1]
    if name == "lr":
        assert signs[0][1] < 0 < signs[1][1]


def test_superfluous_latent_noise_threshold_is_found_on_the_learned_branch():
    two = as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=2, M_star=1)))
    r = threshold("noise", two, BASE, digits=30)
    reference = hand_norm_block_thresholds(sp.Rational(str(BASE["tau"])))[1]
    assert r.status == "verified" and abs(sp.Float(r.text, 40) - reference) < 1e-27
    assert r.special_point.block.latent == 1 and r.special_point.block.label == "norm"
    assert abs(r.state["m_11"]) > 0.5 and r.state["m_21"] == 0  # latent 1 learned, latent 2 at the transition


def test_not_found_and_bad_input(base):
    r = threshold("lr", base, BASE, digits=20, search=(0.1, 50.0))
    assert r.status == "not_found" and r.value is None and r.as_dict()["value"] is None
    assert "stays stable" in r.message
    with pytest.raises(symvae.SymvaeError):
        threshold("lr", base, BASE, digits=20, search=(0.1, 50.0), throw=True)
    with pytest.raises(InvalidInputError):
        threshold("nope", base, BASE)
    with pytest.raises(InvalidInputError):
        threshold("collapse", base, BASE, digits=0)
    with pytest.raises(InvalidInputError):
        threshold("collapse", base, BASE, parameter="nope")


def test_threshold_curve_beta_c_vs_lam(base, tmp_path):
    lams = np.linspace(0.0, 0.5, 6)
    curve = threshold_curve(base, "collapse", BASE, "lam", lams)
    assert curve.status == "ok" and np.allclose(curve.second_values, lams)
    kappa = 2.0
    assert np.allclose(curve.values, (kappa ** 2 - lams - lams ** 2) / (kappa * (1 + lams)), rtol=1e-12)
    assert curve.counts["newton_iterations"] <= 6 * len(lams)
    csv = curve.to_csv().splitlines()
    assert csv[0] == "lam,beta_collapse" and len(csv) == 7
    curve.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_threshold_curve_beta_noise_vs_tau(base):
    taus = np.linspace(0.01, 0.2, 5)
    curve = threshold_curve(base, "noise", BASE, "tau", taus)
    assert curve.status == "ok"
    for tau, value in zip(taus, curve.values):
        assert value == pytest.approx(float(threshold("noise", base, dict(BASE, tau=tau), digits=16).value),
                                      rel=1e-12)


def test_user_condition_eg(base):
    found = find_fixed_points(base, dict(BASE, beta=0.5), closed_forms=False)
    start = [p for p in found.stable if p.image == "identity"][0]
    r = locate_condition(base, start, dict(BASE, beta=0.5), "eg", 0.3, "beta", 1.99, digits=30)
    assert r.status == "verified"
    with mpmath.workdps(40):
        p = [mpmath.mpf(repr(float(v))) for v in base.system.param_vector(dict(BASE, beta=0.5))]
        p[0] = r.value
        y = [r.state[s.name] for s in base.system.state]
        assert abs(base.observables_mp(0, y, p)["eg"] - mpmath.mpf("0.3")) < mpmath.mpf(10) ** -30
        F = base.rhs_mp(0, y, p)
        assert max(abs(F[i]) for i in range(F.rows)) < mpmath.mpf(10) ** -32


def test_cli_threshold_contract(capsys):
    code = main(["threshold", "collapse", "--lam", "0.1", "--digits", "25", "--json"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert {k: data[k] for k in ("name", "parameter", "digits", "status")} == \
        {"name": "collapse", "parameter": "beta", "digits": 25, "status": "verified"}
    assert data["value"] == "1.768181818181818181818182" and data["closed_form"]
    code = main(["threshold", "lr", "--search", "0.1:50", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["status"] == "not_found" and data["value"] is None
    # the statics setting: beta_c(alpha = 2) at rho = eta = 1, lam = 0 is the BBP outlier s_1 = 2 (1 + 1/2) = 3
    code = main(["threshold", "collapse", "--alpha", "2", "--digits", "20", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["parameter"] == "beta" and data["status"] == "verified"
    assert mpmath.mpf(data["value"]) == 3 and len(data["value"].replace(".", "")) >= 20
    code = main(["threshold", "noise", "--alpha", "2", "--json"])  # an online-SGD threshold has no statics form
    assert code == 2 and capsys.readouterr().err.count("\n") == 1


def test_cli_threshold_curve(capsys, tmp_path):
    out = tmp_path / "curve.csv"
    code = main(["continue", "--param", "beta", "--from", "0.001", "--to", "1000", "--second-param", "lam",
                 "--range", "0:0.4", "--points", "5", "--out", str(out), "--plot", str(tmp_path / "c.png"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["status"] == "ok" and len(data["lam"]) == len(data["beta"]) == 5
    assert out.read_text().splitlines()[0] == "lam,beta_collapse"


def test_finite_N_simulation_on_both_sides_of_the_collapse_threshold(base):
    """SGD at N = 200 on either side of a located threshold (lam = 0.3, so beta_c is not just rho + eta): the
    decoder norm Q tends to the learned value below and collapses above."""
    from symvae.simulate import simulate  # a broken simulator import must fail this test, not skip it
    from symvae.model import default_init

    params = dict(BASE, lam=0.3, tau=0.1)
    beta_c = float(threshold("collapse", base, params, digits=20).value)
    assert beta_c == pytest.approx((4 - 0.3 - 0.09) / (2 * 1.3), rel=1e-15)
    init = default_init(base.system.table)
    finals = {}
    for beta in (beta_c - 0.3, beta_c + 0.3):
        result = simulate(symvae.make_model("base"), dict(params, beta=beta), init, [0.0, 800.0], N=200, seeds=2)
        assert result.ok
        finals[beta] = float(result.mean["Q"][-1, 0, 0])
    below, above = finals[beta_c - 0.3], finals[beta_c + 0.3]
    learned = [p for p in find_fixed_points(base, dict(params, beta=beta_c - 0.3), closed_forms=False).stable][0]
    assert below == pytest.approx(learned.order_parameters()["Q"][0, 0], abs=0.1)
    assert above < 1e-3


def test_derivations_thresholds_in_sync():
    """derivations/thresholds.md is written by symvae (``write_threshold_derivations``) and must be up to date; the
    rows of its activated-model table are taken from the file here and checked in
    tests/test_thresholds_activated_sync.py (another file, so the two halves run on different workers)."""
    import pathlib

    from symvae.numerics._threshold_report import _ACTIVATED, activated_rows_in, threshold_derivation_files

    root = pathlib.Path(__file__).resolve().parents[1] / "derivations"
    rows = activated_rows_in((root / "thresholds.md").read_text())
    assert len(rows) == len(_ACTIVATED)
    stale = [rel for rel, text in threshold_derivation_files(activated=rows).items()
             if not (root / rel).exists() or (root / rel).read_text() != text]
    assert not stale, f"out of date (run `symvae derive --all --out derivations/`): {stale}"


# ------------------------------------------------------------------------------- crossings within one step
def _beta_c(rho, eta, lam):
    """Typed in from the linearisation of the (m, m~) block at the collapsed point (D = 1), independent of the code."""
    k = sp.Rational(rho) + sp.Rational(eta)
    lam = sp.Rational(lam)
    return (k ** 2 - lam - lam ** 2) / (k * (1 + lam))


@pytest.mark.parametrize("rho,eta,lam,tau", [("1", "1", "0", t) for t in ("0.7226", "0.8337", "0.8631")]
                         + [("2.5", "1.2", "0.05", t) for t in ("0.42", "0.44", "0.45", "0.46")])
def test_collapse_and_lr_when_both_crossings_fall_in_one_continuation_step(base, rho, eta, lam, tau):
    """Near these step sizes the collapse and the step-size edge are so close that the continuation crosses both in
    one step (the unstable count at the step ends goes 1 -> 1); both must still be found."""
    params = dict(BASE, rho=float(rho), eta=float(eta), lam=float(lam), tau=float(tau))
    r = threshold("collapse", base, params, digits=20, closed_form=False)
    assert r.status == "verified"
    with mpmath.workdps(30):
        exact = mpmath.mpf(str(sp.N(_beta_c(rho, eta, lam), 40)))
        assert abs(r.value - exact) <= abs(exact) * mpmath.mpf(10) ** -19
    lr = threshold("lr", base, params, digits=20, closed_form=False)
    x = collapsed_start(base.system)
    if lr.status == "verified":
        assert lr.value > r.value  # the collapsed point is stable in between
        mid = base.system.param_vector(dict(params, beta=float((r.value + lr.value) / 2)))
        assert np.max(np.linalg.eigvals(base.jac(0, x, mid)).real) < 0
    else:  # no stability window: the collapsed point is unstable just above beta_c
        assert lr.status == "not_found" and "never stable" in lr.message
        above = base.system.param_vector(dict(params, beta=float(r.value) * (1 + 1e-6)))
        assert np.max(np.linalg.eigvals(base.jac(0, x, above)).real) > 0
    if tau != "0.46":
        assert lr.status == "verified"


@settings(max_examples=8, deadline=None)
@given(rho=st.decimals("0.2", "3", places=2), eta=st.decimals("0.2", "3", places=2),
       lam=st.decimals("0", "0.5", places=2), tau=st.decimals("0.01", "0.9", places=2))
def test_located_collapse_threshold_equals_the_closed_form(base, rho, eta, lam, tau):
    """Wherever the learned branch exists (beta_c > 0), the located beta_c is the closed form to 20 digits."""
    exact = _beta_c(str(rho), str(eta), str(lam))
    assume(exact > sp.Rational(1, 100))
    params = dict(BASE, rho=float(rho), eta=float(eta), lam=float(lam), tau=float(tau))
    r = threshold("collapse", base, params, digits=20, closed_form=False)
    assert r.status == "verified"
    with mpmath.workdps(30):
        e = mpmath.mpf(str(sp.N(exact, 40)))
        assert abs(r.value - e) <= abs(e) * mpmath.mpf(10) ** -19


def test_statics_threshold_in_lam_is_the_lam_threshold_not_the_beta_one(capsys):
    """--parameter lam in the statics locates the weight decay at which the latent collapses at the given beta (it
    used to return beta_c labelled 'beta'); a parameter the statics does not locate is refused in one line."""
    code = main(["threshold", "collapse", "--parameter", "lam", "--alpha", "10", "--beta", "0.5", "--digits", "20",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["parameter"] == "lam" and out["status"] == "verified"
    # independent: at lam_c the collapse threshold in beta is the given beta (alpha = 10 > BBP: s_1 = 2 (1 + 1/10))
    lam = sp.Rational(out["value"]) / 10
    s1 = sp.Rational(22, 10)
    assert abs(float((s1 ** 2 - lam - lam ** 2) / (s1 * (1 + lam))) - 0.5) < 1e-15
    code = main(["threshold", "collapse", "--parameter", "rho", "--alpha", "10", "--beta", "0.5", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1 and "lam" in captured.err