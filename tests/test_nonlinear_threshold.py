"""The collapse threshold of activated (erf, ReLU) VAEs from ``threshold`` and ``symvae threshold``, checked against
things the threshold solver does not use: finite differences of the compiled right-hand side, the ODE integrated on
both sides, the learned branch shrinking into the collapsed point, and hand-derived tau -> 0 limits."""
import mpmath
import numpy as np
import pytest

import symvae
from symvae.codegen import compile_system
from symvae.derive import derive_dynamics
from symvae.numerics import integrate
from symvae.numerics._certify import interval_asin
from symvae.numerics._fixed_points import fixed_point
from symvae.numerics._thresholds import threshold

from helpers import fd_jacobian, signal_indices, run_cli, run_cli_json

PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.1)


@pytest.fixture(scope="module")
def erf_decoder():
    return compile_system(derive_dynamics(symvae.make_model("base", decoder_activation="erf")))


@pytest.fixture(scope="module")
def erf_threshold(erf_decoder):
    return threshold("collapse", erf_decoder, PARAMS, digits=25)


def test_interval_asin_encloses_asin_and_refuses_outside_its_domain():
    iv = mpmath.iv
    iv.prec = 120
    try:
        for a, b in (("-0.3", "0.2"), ("0.5", "0.5"), ("-1", "1"), ("0.9999", "1")):
            y = interval_asin(iv.mpf([a, b]))
            with mpmath.workprec(300):
                lo, hi = mpmath.asin(mpmath.mpf(a)), mpmath.asin(mpmath.mpf(b))
                assert mpmath.mpf(y.a) <= lo and hi <= mpmath.mpf(y.b)
                assert mpmath.mpf(y.b) - mpmath.mpf(y.a) <= (hi - lo) + mpmath.mpf(2) ** -100
        with pytest.raises(ValueError):
            interval_asin(iv.mpf(["0.5", "1.0001"]))
    finally:
        iv.prec = 53


def test_erf_collapse_threshold_is_certified_and_stable_in_precision(erf_decoder, erf_threshold):
    """Two precisions (25 and 40 digits): the same value on the first 25 digits, each inside its Krawczyk enclosure."""
    r25 = erf_threshold
    r40 = threshold("collapse", erf_decoder, PARAMS, digits=40)
    for r in (r25, r40):
        assert r.status == "verified" and r.certified, r.message
        with mpmath.workdps(60):
            lo, hi = (mpmath.mpf(v) for v in r.interval)
            assert lo <= mpmath.mpf(r.text) * (1 + mpmath.mpf(10) ** -(r.digits - 1)) and \
                mpmath.mpf(r.text) * (1 - mpmath.mpf(10) ** -(r.digits - 1)) <= hi
    with mpmath.workdps(60):
        assert abs(r40.value - r25.value) < mpmath.mpf(10) ** -24
    assert 1.85 < float(r25.value) < 6 / np.pi  # below the tau -> 0 value 3 (rho + eta) / pi


def test_at_beta_c_the_signal_block_has_a_zero_eigenvalue_by_finite_differences(erf_decoder, erf_threshold):
    """The collapsed point at beta_c: the finite-difference signal block has an eigenvalue ~0 (against ~1e-3 at
    beta_c (1 +- 1e-2)), which changes sign across beta_c: stable above, unstable below."""
    sysd = erf_decoder.system
    beta_c = float(erf_threshold.value)
    sig = signal_indices(sysd)
    lead = {}
    for factor in (1 - 1e-2, 1.0, 1 + 1e-2):
        params = {**PARAMS, "beta": beta_c * factor}
        x0 = np.array([float(erf_threshold.state[s.name]) for s in sysd.state])
        pt = fixed_point(erf_decoder, x0, params)
        assert np.all(pt.x[sig] == 0) and np.max(np.abs(pt.x - x0)) < 0.05
        J = fd_jacobian(erf_decoder, pt.x, params)
        lead[factor] = max(np.linalg.eigvals(J[np.ix_(sig, sig)]).real)
    assert abs(lead[1.0]) < 1e-8
    assert lead[1 - 1e-2] > 1e-4 and lead[1 + 1e-2] < -1e-4, lead


def test_the_learned_point_shrinks_into_the_collapsed_point_at_beta_c(erf_decoder, erf_threshold):
    """A pitchfork: below beta_c the learned point's overlap m vanishes like sqrt(beta_c - beta) (Newton from a learned
    start at beta_c (1 - 1e-2) and (1 - 1e-3): m^2 in the ratio 10, and its residual is zero by the RHS)."""
    beta_c = float(erf_threshold.value)
    sysd = erf_decoder.system
    sig = signal_indices(sysd)
    start = sysd.pack(dict(m=[[0.3]], m_tilde=[[0.3]], Q=[[0.2]], Q_tilde=[[0.1]], R=[[0.1]], D=[1.0]))
    m = {}
    for d in (1e-2, 1e-3):
        params = {**PARAMS, "beta": beta_c * (1 - d)}
        pt = fixed_point(erf_decoder, start, params)
        p = np.array([params[s.name] for s in sysd.params])
        assert np.max(np.abs(erf_decoder.rhs(0.0, pt.x, p))) < 1e-12
        m[d] = abs(pt.x[sig[0]])
        assert m[d] > 0
        start = pt.x
    assert 8 < m[1e-2] ** 2 / m[1e-3] ** 2 < 12, m


def test_the_ode_learns_just_below_beta_c_and_collapses_just_above(erf_decoder, erf_threshold):
    """Integrated from m = m~ = 0.05 to t = 4e4 (about 40 relaxation times at |eigenvalue| ~ 1e-3): at
    beta_c (1 - 1e-2) m settles at the learned point, at beta_c (1 + 1e-2) it decays by orders of magnitude."""
    beta_c = float(erf_threshold.value)
    sysd = erf_decoder.system
    sig = signal_indices(sysd)
    x0 = np.array([float(erf_threshold.state[s.name]) for s in sysd.state])
    x0[sig] = 0.05
    learned = fixed_point(erf_decoder, sysd.pack(dict(m=[[0.3]], m_tilde=[[0.3]], Q=[[0.2]], Q_tilde=[[0.1]],
                                                      R=[[0.1]], D=[1.0])), {**PARAMS, "beta": beta_c * (1 - 1e-2)})
    below = integrate(erf_decoder, x0, {**PARAMS, "beta": beta_c * (1 - 1e-2)}, [4e4], rtol=1e-9, throw=True)
    above = integrate(erf_decoder, x0, {**PARAMS, "beta": beta_c * (1 + 1e-2)}, [4e4], rtol=1e-9, throw=True)
    m_below = abs(float(np.asarray(below.y)[-1][sig[0]]))
    m_above = abs(float(np.asarray(above.y)[-1][sig[0]]))
    assert abs(m_below - abs(learned.x[sig[0]])) < 0.02 * abs(learned.x[sig[0]]), (m_below, learned.x)
    assert m_above < 1e-3 * 0.05, m_above


def _beta_c_small_tau(act, rho, eta, lam):
    """Hand derivation, tau -> 0, activated decoder g, linear encoder: at the collapsed point (Q = Q~ = R = 0, D = 1)
    z = eps is standard normal and the signal block is tau [[-(E[g(z)^2] + lam), kappa E[g'(z)]],
    [kappa E[g'(z)], -(beta kappa + lam)]] with kappa = rho + eta. erf(z/sqrt 2): E[g^2] = (2/pi) asin(1/2) = 1/3,
    E[g'] = 1/sqrt(pi); ReLU: E[g^2] = 1/2, E[g'] = 1/2. Singular at beta_c = kappa E[g']^2/(E[g^2] + lam) - lam/kappa."""
    kappa = rho + eta
    g2, dg = {"erf": (1 / 3, 1 / np.sqrt(np.pi)), "relu": (0.5, 0.5)}[act]
    return kappa * dg ** 2 / (g2 + lam) - lam / kappa


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_small_tau_limit_matches_the_hand_derivation(act):
    """At tau = 1e-5 and 2e-5 the certified beta_c differs from the tau -> 0 hand value by O(tau): below 1e-3 and
    in the ratio 2 (the linear term of the expansion), so the limit itself agrees to far more digits."""
    compiled = compile_system(derive_dynamics(symvae.make_model("base", decoder_activation=act)))
    rho, eta, lam = 1.5, 0.5, 0.2
    hand = _beta_c_small_tau(act, rho, eta, lam)
    dev = []
    for tau in (1e-5, 2e-5):
        r = threshold("collapse", compiled, dict(beta=1.0, rho=rho, eta=eta, lam=lam, tau=tau), digits=20)
        assert r.status == "verified" and r.certified, r.message
        dev.append(float(r.value) - hand)
    assert abs(dev[0]) < 1e-3
    assert 1.9 < dev[1] / dev[0] < 2.1, dev


def test_cli_erf_collapse_json_and_exit_codes(capsys, erf_threshold):
    code, out = run_cli_json(capsys, "threshold", "collapse", "--decoder-activation", "erf", "--rho", "1", "--eta",
                             "1", "--tau", "0.1", "--digits", "20")
    assert code == 0
    assert out["status"] == "verified" and out["certified"] is True and out["digits"] == 20
    assert out["value"] == mpmath.nstr(erf_threshold.value, 20, strip_zeros=False)
    assert out["interval"] is not None and out["closed_form"] is None
    # nothing in range: status and exit 1
    code, out = run_cli_json(capsys, "threshold", "collapse", "--decoder-activation", "erf", "--tau", "0.1",
                             "--search", "0.5:1.5")
    assert code == 1 and out["status"] == "not_found" and out["value"] is None
    code, out = run_cli_json(capsys, "threshold", "collapse", "--decoder-activation", "erf", "--tau", "0.1",
                             "--search", "3:10")
    assert code == 1 and out["status"] == "not_found" and "already stable" in out["message"]
    # a threshold that is not implemented for activated models: one line, exit 2
    code, out, err = run_cli(capsys, "threshold", "noise", "--decoder-activation", "erf", "--tau", "0.1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "non-linear activation" in err


def test_threshold_curve_in_tau_ends_at_the_certified_value(erf_decoder, erf_threshold):
    """The float64 curve beta_c(tau) (Newton on the null-vector augmented system along tau) reaches the certified
    tau = 0.1 value from tau = 0.05, and beta_c decreases with tau (the 30-digit values at tau = 0.01 and 0.1 in
    derivations/thresholds.md and README: 1.9085 and 1.8964)."""
    from symvae.numerics._thresholds import threshold_curve

    curve = threshold_curve(erf_decoder, "collapse", PARAMS, "tau", [0.05, 0.075, 0.1], digits=15)
    assert curve.status == "ok", curve.message
    assert abs(curve.values[-1] - float(erf_threshold.value)) < 1e-12
    assert np.all(np.diff(curve.values) < 0)


# ------------------------------------------------------------------ thresholds of models with rule nodes (certified)
def _rule_root(result, compiled, params, digits):
    """(augmented system, rest, the rule's root y (all unknowns, mpmath Newton on the generated rule system))."""
    from symvae.numerics._systems import ParameterPoint
    from symvae.numerics._thresholds import _augmented_for, _initial_unknowns, _refine
    from symvae.numerics._newton import Counter
    point = result.special_point
    pp = ParameterPoint(compiled.system, {**params, point.parameter: point.value})
    aug = _augmented_for(point, compiled, pp)
    rest = pp.mp_list(exclude=(point.parameter,))
    r1, r2, _ = _refine(aug, _initial_unknowns(aug, point, compiled, pp), rest, digits, Counter())
    assert r1.converged and r2.converged
    return aug, rest, r2.y


def _fine_rule_root(aug, rest, y0, *, step=0.05, cut=11.0):
    """The threshold parameter at the root of the augmented system with every rule node evaluated by a float64
    trapezoid of step ``step`` on |y| <= ``cut`` (numpy; independent of the interval code and of the generated
    833-node rule), by chord steps with the generated (rule) Jacobian from ``y0``."""
    import sympy as sp
    from scipy.special import erf
    from symvae.derive._nonlinear_gaussian import RULE_U, RULE_V, GaussRule1, GaussRule2, rule_parameter
    from symvae.model._activations import ErfAct, ErfActPrime
    nodes = sorted(set().union(*[e.atoms(GaussRule1, GaussRule2) for e in aug.equations]), key=sp.default_sort_key)
    assert nodes
    syms = [sp.Symbol(f"_fine_node_{k}") for k in range(len(nodes))]
    args = list(aug.unknowns) + list(aug.rest)
    eqs = sp.lambdify(args + syms, [e.xreplace(dict(zip(nodes, syms))) for e in aug.equations], "numpy")
    U, V = sp.symbols("U_fine V_fine")
    y = np.arange(-int(round(cut / step)), int(round(cut / step)) + 1) * step
    w = np.exp(-y ** 2 / 2) / np.sqrt(2 * np.pi) * step
    Y1, Y2 = np.meshgrid(y, y, indexing="ij")
    W = np.outer(w, w)
    plan = []
    for node in nodes:
        one = isinstance(node, GaussRule1)
        n_cov = 1 if one else 3
        ps = [rule_parameter(k + 1) for k in range(len(node.args) - 1 - n_cov)]
        G = node.args[0].G.replace(ErfAct, lambda x: sp.erf(x / sp.sqrt(2))).replace(
            ErfActPrime, lambda x: sp.sqrt(2 / sp.pi) * sp.exp(-x ** 2 / 2))
        f = sp.lambdify([U, V] + ps, G.xreplace({RULE_U: U, RULE_V: V}), modules=[{"erf": erf}, "numpy"])
        plan.append((one, n_cov, f, sp.lambdify(args, list(node.args[1:]), "numpy")))

    def expectation(one, n_cov, f, a):
        if one:
            return float(np.sum(w * np.broadcast_to(f(np.sqrt(a[0]) * y, 0.0, *a[1:]), y.shape)))
        A = np.sqrt(a[0])
        B = a[1] / A
        C = np.sqrt(a[2] - B * B)
        return float(np.sum(W * np.broadcast_to(f(A * Y1, B * Y1 + C * Y2, *a[3:]), W.shape)))

    r = np.array([float(x) for x in rest])
    u = np.array([float(x) for x in y0])
    for _ in range(20):
        vals = [expectation(one, n_cov, f, [float(x) for x in na(*u, *r)]) for one, n_cov, f, na in plan]
        G = np.array(eqs(*u, *r, *vals), dtype=float)
        J = np.asarray(aug.J_float(u, r), dtype=float).reshape(len(u), len(u))
        du = np.linalg.solve(J, G)
        u = u - du
        if np.max(np.abs(du)) < 1e-15 * (1 + np.max(np.abs(u))):
            break
    return u[len(aug.subspace.free)]


@pytest.fixture(scope="module")
def tanh_decoder():
    return compile_system(derive_dynamics(symvae.make_model("base", decoder_activation="tanh(x)")))


def test_uncertified_rule_threshold_reports_only_the_digits_two_rules_agree_on(tanh_decoder):
    """Without the certificate (``certify=False``; the situation of the half-space rules of a ReLU encoder), the
    digits on which two precisions agree are the rule's: the root is solved again with every rule at half its step
    and only the digits both rules share are reported. Checked against the certified value (interval enclosure of the
    exact expectations): every reported digit is right, and fewer than the 24 asked are reported (the 181-node rule is
    right to about 18 digits here: measured 18 reported)."""
    from symvae.numerics._newton import agreeing_digits
    r = threshold("collapse", tanh_decoder, PARAMS, digits=24, closed_form=False, certify=False)
    assert not r.certified and "half its step" in r.message and "not a proof" in r.message, r.message
    assert r.status == "partial" and 12 <= r.digits < 24, (r.digits, r.message)
    proven = threshold("collapse", tanh_decoder, PARAMS, digits=21, closed_form=False)
    assert proven.certified and proven.digits == 21, proven.message
    with mpmath.workdps(40):
        assert agreeing_digits(mpmath.mpf(r.value), mpmath.mpf(proven.value)) >= r.digits - 1, (r.value, proven.value)


def test_tanh_decoder_threshold_with_rule_nodes_is_certified(tanh_decoder):
    """tanh decoder (GaussRule1 nodes): the Krawczyk test runs on the model's system -- every node enclosed with its
    proven quadrature error -- and certifies 14 digits (an enclosure narrower than 1e-15); the rule's root (the
    181-node rule is accurate to ~1e-18 here) is within 1e-16 of it, and so is the root of the system with every node
    by an independent float64 trapezoid of step 1/20 (to float64 accuracy); a centre moved by 1e-9 is refused with a
    1e-14 box, the rule's root itself is accepted."""
    from symvae.numerics._certify import interval_functions, krawczyk
    r = threshold("collapse", tanh_decoder, PARAMS, digits=14, closed_form=False)
    assert r.status == "verified" and r.certified and r.digits == 14, r.message
    assert "rule node(s) enclosed with proven quadrature error" in r.message
    aug, rest, y = _rule_root(r, tanh_decoder, PARAMS, 14)
    k = len(aug.subspace.free)
    with mpmath.workdps(40):
        lo, hi = (mpmath.mpf(x) for x in r.interval)
        assert hi - lo < mpmath.mpf(10) ** -15
        assert abs(y[k] - (lo + hi) / 2) < mpmath.mpf(10) ** -16  # the rule's error, below 1e-16 here
        assert lo <= r.value <= hi
    fine = _fine_rule_root(aug, rest, y)
    assert abs(fine - float(y[k])) < 1e-13 * abs(fine)
    G, J, shape = interval_functions(aug.key, aug.unknowns, aug.rest, aug.equations, aug.jacobian)
    assert G.rule_nodes
    with mpmath.workdps(39):
        assert krawczyk(G, J, shape, y, rest, radius_digits=14).certified
        moved = list(y)
        moved[k] = y[k] * (1 + mpmath.mpf(10) ** -9)
        refused = krawczyk(G, J, shape, moved, rest, radius_digits=14)
        assert not refused.certified and refused.enclosure is None
    # a node budget of 60 (a coarse rule): still certified, but only the digits its proven bound allows, and it says so
    from symvae.numerics._certify import enclosure_digits
    from symvae.numerics._rule_intervals import DEFAULT_BUDGET
    from symvae.numerics._thresholds import _certify_root
    G.budget = 60
    try:
        interval, ok, why = _certify_root(aug, y, rest, 14, k)
    finally:
        G.budget = DEFAULT_BUDGET
    assert ok and "the proven bound of the quadrature error limits the enclosure" in why, why
    with mpmath.workdps(40):
        wide = [mpmath.mpf(x) for x in interval]
        assert 3 <= enclosure_digits(wide[0], wide[1], 14) < 14
        assert wide[0] <= lo and hi <= wide[1]


@pytest.mark.slow
def test_erf_both_sides_threshold_is_certified_for_the_model_not_the_rule():
    """erf on both sides (GaussRule2 nodes, ~1 min): 12 certified digits, beta_c = 1.89813614943 -- the 833-node rule's
    root 1.89813615289 (12 agreeing digits of the rule's system) lies 3.5e-9 away, outside the enclosure, and the
    Krawczyk test refuses it as a centre with a 1e-12 box; the independent float64 rule of step 1/20 (whose error is
    ~1e-15) lands inside the enclosure (up to its own accuracy)."""
    from symvae.numerics._certify import interval_functions, krawczyk
    compiled = compile_system(derive_dynamics(symvae.make_model("base", encoder_activation="erf",
                                                                decoder_activation="erf")))
    params = dict(PARAMS, rho=1.0, eta=1.0, tau=0.1)
    r = threshold("collapse", compiled, params, digits=12, closed_form=False)
    assert r.status == "verified" and r.certified and r.digits == 12, r.message
    aug, rest, y = _rule_root(r, compiled, params, 12)
    k = len(aug.subspace.free)
    with mpmath.workdps(40):
        lo, hi = (mpmath.mpf(x) for x in r.interval)
        assert not lo <= y[k] <= hi and 1e-9 < abs(y[k] - lo) / lo < 1e-8
    fine = _fine_rule_root(aug, rest, y)
    assert float(lo) - 1e-13 <= fine <= float(hi) + 1e-13
    assert r.text == mpmath.nstr(mpmath.mpf(fine), 12)  # the reported digits are the independent root's
    G, J, shape = interval_functions(aug.key, aug.unknowns, aug.rest, aug.equations, aug.jacobian)
    with mpmath.workdps(37):
        assert not krawczyk(G, J, shape, y, rest, radius_digits=12).certified


def test_a_degenerate_branch_point_is_named_when_its_refinement_fails():
    """Exchangeable latents can make several eigenvalues of a signal block cross zero together (a ReLU encoder at
    M = 4: three); the block-null system is then singular, and the failure message says why. Here a block with a
    double zero eigenvalue and one with a simple zero."""
    from types import SimpleNamespace

    from symvae.numerics._subspaces import Block
    from symvae.numerics._thresholds import _degenerate
    rotation = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.5], [1.0, 0.0, 1.0]])
    for zeros, expected in ((2, "2 eigenvalues of its signal block are zero together"), (1, "")):
        D = np.diag([0.0] * zeros + [-0.3] * (3 - zeros))
        J = np.zeros((4, 4))
        J[1:, 1:] = rotation @ D @ np.linalg.inv(rotation)
        compiled = SimpleNamespace(jac=lambda t, x, p, J=J: J, system=SimpleNamespace(param_vector=lambda v: []))
        point = SimpleNamespace(block=Block((1, 2, 3), ("a", "b", "c"), "signal", None), x=np.zeros(4))
        text = _degenerate(point, compiled, SimpleNamespace(values={}))
        assert (expected in text) if expected else text == "", text


def test_fixed_points_of_the_erf_decoder_with_closed_forms_asked_for(erf_decoder):
    """The erf decoder's equations hold arcsines, which SymPy's solver does not take: the closed-form search skips
    them (it used to expand them for over 15 minutes before solving). The points found are roots of the compiled
    right-hand side, the same as without the closed-form search, and the learned one is stable below beta_c."""
    from symvae.numerics._fixed_points import _closed_form_candidates, find_fixed_points
    from symvae.numerics._systems import ParameterPoint
    params = dict(rho=2.0, eta=1.0, beta=1.0, lam=0.0, tau=0.1)
    with_cf = find_fixed_points(erf_decoder, params, closed_forms=True)
    without = find_fixed_points(erf_decoder, params, closed_forms=False)
    assert with_cf.status == "ok" and len(with_cf.points) == len(without.points) >= 2
    p = erf_decoder.system.param_vector(params)
    for a, b in zip(with_cf.points, without.points):
        assert np.max(np.abs(erf_decoder.rhs(0.0, a.x, p))) < 1e-10 and np.allclose(a.x, b.x, atol=1e-9)
    learned = [q for q in with_cf.points if q.stability == "stable"]
    assert learned and abs(learned[0].order_parameters()["m"][0, 0]) > 0.1
    for q in with_cf.points:
        assert q.closed_form is None
        assert _closed_form_candidates(erf_decoder.system, q.subspace, ParameterPoint(erf_decoder.system, params),
                                       1.0) == []
