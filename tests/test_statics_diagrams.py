"""The phase diagram's replica points (continuation in beta along each column, in alpha along the lowest row, chunks
of columns in worker processes) against the random-matrix closed form, computed here point by point, separately --
including points 1e-3 (relative) on both sides of the collapse line beta_c(alpha) and across the BBP threshold."""
import numpy as np
import pytest

from symvae.model import make_model
from symvae.analysis import phase_diagram
from symvae.statics import PHASES, closed_form, collapse_threshold

ORDER = ("m", "m_tilde", "Q", "Q_tilde", "R", "D")
PARAMS = dict(rho=1.0, eta=1.0, lam=0.1)


@pytest.fixture(autouse=True)
def no_closed_form(monkeypatch):
    monkeypatch.setenv("SYMVAE_STATICS_NO_CLOSED_FORM", "1")


def _grid(model):
    """8 alphas across alpha_c = 1; 8 betas holding beta_c(alpha) (1 -+ 1e-3) of two of the alphas."""
    alphas = np.array([0.3, 0.7, 1.0 - 1e-3, 1.0 + 1e-3, 1.6, 2.5, 4.0, 8.0])
    near = []
    for a in (2.5, 8.0):
        bc = float(collapse_threshold(model, PARAMS, a)["value"])
        near += [bc * (1 - 1e-3), bc * (1 + 1e-3)]
    betas = np.array(sorted([0.05, 0.5, 1.2, 3.5] + near))
    return alphas, betas


def _check_against_closed_form(model, d):
    near = 0
    for j, a in enumerate(d.alphas):
        bc = float(collapse_threshold(model, PARAMS, float(a))["value"])
        assert d.collapse_line[j] == pytest.approx(bc, rel=1e-12)
        for i, b in enumerate(d.betas):
            cf = closed_form(model, {**PARAMS, "beta": float(b)}, float(a))
            assert d.phase[i, j] == PHASES.index(cf.phase), (a, b)
            scale = max(1.0, float(np.max(np.abs(np.asarray(cf.order["Q"], float)))))
            got = {k: np.array(d.order[k][i, j]) for k in ORDER}
            # W -> -W, W~ -> -W~ of one latent leaves the loss unchanged and flips its rows of m and m~; the closed
            # form reports the positive one
            flip = np.sum(got["m"] * np.asarray(cf.order["m"], float), axis=1) < 0
            got["m"][flip], got["m_tilde"][flip] = -got["m"][flip], -got["m_tilde"][flip]
            for k in ORDER:
                assert np.max(np.abs(np.asarray(cf.order[k], float) - got[k])) <= 1e-10 * scale, (k, a, b)
            assert abs(float(cf.train_loss) - d.train_loss[i, j]) <= 1e-10 * scale
            near += abs(b / bc - 1) <= 1.001e-3
    return near


def test_phase_diagram_agrees_with_the_closed_form_point_by_point_next_to_the_collapse_line():
    model = make_model("base")
    alphas, betas = _grid(model)
    d = phase_diagram(model, PARAMS, None, None, alphas=alphas, betas=betas, chunk=3)
    assert _check_against_closed_form(model, d) == 4  # two points on each side of beta_c, at two alphas
    counts = d.counts()
    assert all(counts[p] > 0 for p in PHASES) and "unsolved" not in counts
    assert d.closed_form_difference <= 1e-10


def test_phase_diagram_is_the_same_with_one_and_two_workers():
    model = make_model("base")
    alphas, betas = _grid(model)
    one = phase_diagram(model, PARAMS, None, None, alphas=alphas[3:], betas=betas[:5], chunk=2, workers=1)
    two = phase_diagram(model, PARAMS, None, None, alphas=alphas[3:], betas=betas[:5], chunk=2, workers=2)
    assert np.array_equal(one.phase, two.phase)
    for k in ORDER:
        assert np.array_equal(one.order[k], two.order[k])
    assert np.array_equal(one.collapse_line, two.collapse_line)
    # the lowest row is swept serially first, so chunks of 2 columns reproduce the one-chunk sweep bit for bit
    # (with chunks started from nothing, the first point of each chunk would be a cold search instead)
    whole = phase_diagram(model, PARAMS, None, None, alphas=alphas[3:], betas=betas[:5], chunk=len(alphas), workers=1)
    for k in ORDER:
        assert np.array_equal(whole.order[k], one.order[k], equal_nan=True)
    assert np.array_equal(whole.eg, one.eg, equal_nan=True)


def test_explicit_grids_are_validated():
    from symvae.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        phase_diagram(make_model("base"), PARAMS, None, None, alphas=[2.0, 1.0], betas=[0.5, 1.0])
    with pytest.raises(InvalidInputError):
        phase_diagram(make_model("base"), PARAMS, None, None, alphas=[1.0, 2.0], betas=[0.0, 1.0])


def test_a_warm_start_whose_branch_crosses_the_collapsed_boundary_takes_the_collapsed_saddle(monkeypatch):
    """Just below the BBP alpha, one beta step crosses a continuous collapse: the neighbour's branch continued by
    Levenberg--Marquardt is a root with Q < 0 (inadmissible); the collapsed saddle then takes the warm start's place
    and only escape starts are added (six placement fits, not the full search's sixteen). The result is the closed
    form's, computed separately."""
    from symvae.statics import _replica, solve_statics
    from symvae.statics._replica import _gauss_newton, statics_system

    model = make_model("base")
    alpha, b_prev, b = 0.9326033468832199, 3.6808080808080807, 3.7207070707070704
    prev = solve_statics(model, {**PARAMS, "beta": b_prev}, alpha, compare=False)
    assert prev.phase == "overlearning" and 0 < float(prev.order["Q"][0, 0]) < 0.1
    S = statics_system(model)
    p = S.param_vector({**PARAMS, "beta": b}, alpha)
    y, res, _ = _gauss_newton(S, np.array(prev.y), p, tol=1e-12 * max(1.0, float(np.abs(prev.y).max())), max_iter=40)
    order = S.unpack(y, {**PARAMS, "beta": b})
    assert res <= 1e-10 and float(order["Q"][0, 0]) < 0  # the premise: the continued branch went through Q = 0
    fits = []
    original = _replica._reduced_solve
    monkeypatch.setattr(_replica, "_reduced_solve", lambda *a, **k: fits.append(1) or original(*a, **k))
    r = solve_statics(model, {**PARAMS, "beta": b}, alpha, guess=prev, compare=False)
    assert len(fits) <= 6
    cf = closed_form(model, {**PARAMS, "beta": b}, alpha)
    assert r.ok and r.phase == cf.phase == "collapsed" and r.saddles[0].start == "collapsed"
    for k in ORDER:
        assert np.max(np.abs(np.asarray(cf.order[k], float) - np.asarray(r.order[k], float))) <= 1e-10, k
    assert abs(float(cf.train_loss) - r.train_loss) <= 1e-10
