"""Training-set rate and distortion of the replica minimiser (envelope theorem on the derived free energy), against
re-solved free energies (finite differences in beta) and the literal training loss of the exact finite-N minimiser."""
import math

import numpy as np
import pytest

from symvae.model import make_model
from symvae.statics import sample_dataset, solve_statics
from symvae.statics._training import erm_training_rd, training_rd, training_rd_curve

MODEL = make_model("base")
POINTS = [dict(alpha=2.0, rho=1.0, eta=1.0, beta=0.5, lam=0.0), dict(alpha=5.0, rho=1.0, eta=1.0, beta=1.0, lam=0.0),
          dict(alpha=3.0, rho=1.0, eta=1.0, beta=0.7, lam=0.5)]


def _split(point):
    params = {k: v for k, v in point.items() if k != "alpha"}
    return params, point["alpha"]


@pytest.mark.parametrize("point", POINTS)
def test_envelope_derivatives_match_re_solved_free_energies(point):
    """rate_train = df/dbeta and reg = lam df/dlam, from central differences of f over three saddle solves."""
    params, alpha = _split(point)
    tr = training_rd(solve_statics(MODEL, params, alpha))
    h = 1e-4
    f = {d: solve_statics(MODEL, dict(params, beta=params["beta"] + d), alpha).train_loss for d in (-h, h)}
    assert tr["train_rate"] == pytest.approx((f[h] - f[-h]) / (2 * h), abs=1e-6)
    if params["lam"]:
        g = {d: solve_statics(MODEL, dict(params, lam=params["lam"] + d), alpha).train_loss for d in (-h, h)}
        assert tr["train_reg"] == pytest.approx(params["lam"] * (g[h] - g[-h]) / (2 * h), abs=1e-6)
    else:
        assert tr["train_reg"] == 0.0
    assert tr["train_distortion"] + params["beta"] * tr["train_rate"] + tr["train_reg"] == pytest.approx(
        tr["train_loss"], abs=1e-12)


def _erm(params, alpha, N, seeds):
    vals = np.array([[e["train_rate"], e["train_distortion"]] for e in
                     (erm_training_rd(MODEL, params, sample_dataset(MODEL, params, N, alpha, seed=s))
                      for s in range(seeds))])
    return vals


def test_training_split_against_finite_n_minimiser():
    """One point, N = 100 and 200: the finite-N exact minimiser's training rate and distortion within 4 s.e."""
    params, alpha = _split(POINTS[0])
    tr = training_rd(solve_statics(MODEL, params, alpha))
    for N in (100, 200):
        vals = _erm(params, alpha, N, 6)
        se = vals.std(axis=0, ddof=1) / math.sqrt(len(vals))
        assert abs(vals[:, 0].mean() - tr["train_rate"]) < 4 * se[0]
        assert abs(vals[:, 1].mean() - tr["train_distortion"]) < 4 * se[1]
    # the training set is fitted better than fresh data: distortion below the population one
    res = solve_statics(MODEL, params, alpha)
    assert tr["train_distortion"] < res.observables["distortion"] - 0.1


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_training_split_n_scaling(point):
    """N = 100, 200, 400 (8 seeds): within 4 s.e. at every N, and the rms deviation of the seeds from the replica
    value shrinks from N = 100 to N = 400."""
    params, alpha = _split(point)
    tr = training_rd(solve_statics(MODEL, params, alpha))
    theory = np.array([tr["train_rate"], tr["train_distortion"]])
    rms = {}
    for N in (100, 200, 400):
        vals = _erm(params, alpha, N, 8)
        se = vals.std(axis=0, ddof=1) / math.sqrt(len(vals))
        assert np.all(np.abs(vals.mean(axis=0) - theory) < 4 * se), (N, vals.mean(axis=0), theory, se)
        rms[N] = np.sqrt(np.mean((vals - theory) ** 2, axis=0))
    assert np.all(rms[400] < rms[100]), rms


def test_curve_rows_and_collapse_end():
    rows = training_rd_curve(MODEL, dict(rho=1.0, eta=1.0, lam=0.0), 10.0, [0.2, 1.0, 2.5])
    assert [r["status"] for r in rows] == ["ok"] * 3
    rates = [r["train_rate"] for r in rows]
    assert rates[0] > rates[1] > 0 and abs(rates[2]) < 1e-9  # beta = 2.5 > beta_c(10) = 2.2: collapsed
    assert rows[2]["train_distortion"] == pytest.approx(rows[2]["distortion"], abs=1e-9)  # nothing fitted: equal
