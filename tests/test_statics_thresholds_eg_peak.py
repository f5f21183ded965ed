"""Where eg(alpha) at fixed beta peaks, against dense closed-form curves eg(alpha).

The published statics (docs/model.md, section 4): below the detection threshold alpha_c = (eta/rho)^2 no overlap with
the signal is possible, and eg peaks there. In the shipped models the maximum of eg(alpha) is either that cusp (small
beta with weight decay), an interior maximum below alpha_c on the uninformed branch (larger beta), or absent (lam = 0:
eg grows without bound as alpha -> 0). Above alpha_c there is no interior maximum: on every stretch of alpha where
the top latent is active, eg falls from the cusp (like -sqrt(alpha - alpha_c)) and at most rises again towards a
collapse (to the collapsed value rho) or towards alpha -> infinity; a grid over the parameters of every statics variant
shows it here (a sampled interior maximum on an active stretch would fail the test). So ``eg_peak`` (both routes) need
not follow the informed branch above alpha_c; the closed-form route scans the whole range [1e-3, 1e3] anyway, and both
routes' peaks are checked to be the maximum of the dense curve over it.
"""
import itertools

import numpy as np
import pytest

from symvae.model import make_model
from symvae.statics import closed_form, statics_threshold
from symvae.statics._closed_form import statics_param_names

MODEL = make_model("base")


def _curve(model, params, alphas):
    """(eg, q of the top latent) along ``alphas`` (closed form, float64)."""
    forms = [closed_form(model, params, a) for a in alphas]
    return (np.array([float(f.observables["eg"]) for f in forms]), np.array([float(f.q[0]) for f in forms]))


def _interior_maxima_while_active(eg, q, tol=1e-12):
    """Indices i of a sampled strict local maximum of eg with the latent active at i - 1, i and i + 1."""
    return [i for i in range(1, len(eg) - 1)
            if min(q[i - 1], q[i], q[i + 1]) > 1e-9 and eg[i] > eg[i - 1] + tol and eg[i] > eg[i + 1] + tol]


def _scan(model, grid, points):
    found, active_stretches = [], 0
    names = statics_param_names(model)
    for values in itertools.product(*(grid(n) for n in names)):
        params = dict(zip(names, values))
        rho = max(v for k, v in params.items() if k.startswith("rho"))
        a_c = (params["eta"] / rho) ** 2
        alphas = a_c * np.geomspace(1 + 1e-4, 1e4, points)
        eg, q = _curve(model, params, alphas)
        active_stretches += int(np.any(q > 1e-9))
        found += [(params, alphas[i]) for i in _interior_maxima_while_active(eg, q)]
    return found, active_stretches


def _grid(rhos, etas, lams, betas, other=(0.5, 2.0)):
    table = {"eta": etas, "lam": lams, "beta": betas, "lam_W": lams, "lam_W_tilde": lams}
    return lambda n: rhos if n.startswith("rho") else table.get(n, other)


def test_no_interior_eg_maximum_above_the_detection_threshold_base_model():
    """Base model, 18 parameter points, 150 alphas in [alpha_c, 1e4 alpha_c] each: eg never has an interior maximum
    above alpha_c while the latent is active; the grid has active stretches (falling, and rising towards a collapse)."""
    found, active = _scan(MODEL, _grid((0.5, 2.0), (1.0,), (0.0, 0.3, 3.0), (0.1, 1.0, 2.5), ()), 150)
    assert found == [] and active >= 12


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["base", "tied", "fixed_D", "learned_sigma2", "fixed_sigma2", "lam_W_only",
                                     "lam_W_tilde_only", "per_spike_rho"])
def test_no_interior_eg_maximum_above_the_detection_threshold_any_statics_variant(variant):
    model = make_model(variant)
    found, active = _scan(model, _grid((0.5, 1.0, 3.0), (0.5, 1.0, 2.0), (0.0, 0.1, 1.0, 5.0),
                                       (0.01, 0.1, 0.5, 1.0, 2.0, 3.0)), 300)
    assert found == [] and active > 0


def test_rising_towards_a_collapse_above_alpha_c_is_no_peak():
    """rho = 0.5, eta = 1, beta = 2 (alpha_c = 4): above alpha_c the latent is active on one stretch where eg falls
    from the cusp to a minimum, rises into the collapse (near alpha = 6) and then sits on the collapsed plateau
    eg = rho: a valley, so the sup above alpha_c is the value at the cusp, not an interior maximum."""
    alphas = 4.0 * np.geomspace(1 + 1e-4, 1e2, 400)
    eg, q = _curve(MODEL, dict(rho=0.5, eta=1.0, lam=0.0, beta=2.0), alphas)
    active = q > 1e-9
    end = int(np.argmin(active))  # the first collapsed sample
    assert end > 10 and np.all(active[:end]) and not np.any(active[end:])
    low = int(np.argmin(eg[:end]))
    assert 0 < low < end - 1
    assert np.all(np.diff(eg[:low + 1]) < 0) and np.all(np.diff(eg[low:end]) > 0)  # falls, then rises
    assert eg[0] == eg.max() and np.allclose(eg[end:], 0.5, atol=1e-12) and eg[end - 1] < 0.5
    assert _interior_maxima_while_active(eg, q) == []


DENSE = np.geomspace(1e-3, 1e3, 1201)


@pytest.mark.parametrize("lam, beta, at_cusp", [(0.3, 0.1, True), (1.0, 1.5, True), (0.1, 1.0, False),
                                                (0.3, 1.0, False)])
def test_closed_form_eg_peak_is_the_maximum_of_the_dense_curve(lam, beta, at_cusp):
    """rho = eta = 1 (alpha_c = 1): the located peak beats every point of a dense curve on [1e-3, 1e3]; it is the cusp
    at alpha_c for weight decay and small beta (the published statement), below alpha_c otherwise."""
    params = dict(rho=1.0, eta=1.0, lam=lam, beta=beta)
    eg, _ = _curve(MODEL, params, DENSE)
    t = statics_threshold("eg_peak", MODEL, params, digits=15, certify=False)
    assert t.status == "verified", t.message
    peak = float(closed_form(MODEL, params, float(t.value)).observables["eg"])
    k = int(np.argmax(eg))
    assert peak >= eg.max() - 1e-12 and DENSE[k - 1] <= float(t.value) <= DENSE[k + 1]
    if at_cusp:
        assert float(t.value) == 1.0 and "cusp" in t.message
    else:
        assert float(t.value) < 1.0


def test_no_eg_peak_without_weight_decay():
    """lam = 0: eg grows as alpha -> 0 (the dense curve's maximum is its left end): no peak, not_found."""
    params = dict(rho=1.0, eta=1.0, lam=0.0, beta=0.5)
    eg, _ = _curve(MODEL, params, DENSE)
    assert int(np.argmax(eg)) == 0 and np.all(np.diff(eg[DENSE < 0.5]) < 0)
    t = statics_threshold("eg_peak", MODEL, params, digits=15, certify=False)
    assert t.status == "not_found" and "no interior maximum" in t.message


def test_saddle_route_eg_peak_is_the_maximum_of_the_dense_closed_form_curve():
    """The replica saddle-point route (no closed form) finds the maximum of the closed-form curve (lam = 0.3,
    beta = 1: below alpha_c = 1, on the uninformed branch)."""
    params = dict(rho=1.0, eta=1.0, lam=0.3, beta=1.0)
    eg, _ = _curve(MODEL, params, DENSE)
    t = statics_threshold("eg_peak", MODEL, params, digits=15, method="saddle", certify=False)
    assert t.status == "verified", t.message
    k = int(np.argmax(eg))
    peak = float(closed_form(MODEL, params, float(t.value)).observables["eg"])
    assert peak >= eg.max() - 1e-12 and DENSE[k - 1] <= float(t.value) <= DENSE[k + 1]


def test_the_interior_maximum_detector_sees_a_bump():
    """The scan above can fail: a sampled bump on an active stretch is reported, one on a collapsed stretch not."""
    eg = np.array([3.0, 2.0, 2.5, 2.2, 1.0])
    assert _interior_maxima_while_active(eg, np.ones(5)) == [2]
    assert _interior_maxima_while_active(eg, np.array([1.0, 1.0, 0.0, 1.0, 1.0])) == []


CUSP_CASES = [("base", dict(rho=13.65, eta=0.7922, lam=0.4249, beta=0.4926)),
              ("fixed_D", dict(rho=20.584, eta=1.364, lam=0.05949, D_1=0.2589, beta=0.2342))]


def _cusp_is_alpha_c(model, params, method):
    import mpmath

    with mpmath.workdps(60):
        exact = (mpmath.mpf(str(params["eta"])) / mpmath.mpf(str(params["rho"]))) ** 2
    t = statics_threshold("eg_peak", model, params, digits=25, method=method)
    assert t.status == "verified" and t.certified, (method, t.message)
    with mpmath.workdps(60):
        assert abs(mpmath.mpf(t.interval[0]) - exact) < exact * mpmath.mpf(10) ** -25
    return float(exact)


@pytest.mark.parametrize("variant, params", CUSP_CASES)
def test_cusp_of_strongly_informed_data(variant, params):
    """rho/eta ~ 15-17: eg rises into alpha_c and falls like -c sqrt(alpha - alpha_c) with a large c beyond it, so at
    the float64 alpha_c eg can already be on the falling side; the closed-form route took that for "no cusp" and then
    failed (findroot on the kink, residual 165). It now gives alpha_c = (eta/rho)^2 (written out here), where the dense
    curve has its maximum."""
    model = make_model(variant)
    a_c = _cusp_is_alpha_c(model, params, "closed-form")
    alphas = np.geomspace(a_c / 3, 3 * a_c, 301)
    eg, _ = _curve(model, params, alphas)
    assert abs(alphas[int(np.argmax(eg))] / a_c - 1) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("variant, params", CUSP_CASES)
def test_cusp_of_strongly_informed_data_on_the_saddle_system(variant, params):
    """The same cusps on the saddle-system route (20 s each: the informed branch is followed down to alpha ~ 0.004)."""
    _cusp_is_alpha_c(make_model(variant), params, "saddle")
