"""Predictions of the linear-VAE statics for a fitted dataset, through the public ``symvae.statics`` API.

Each fitted spike k (rho_hat_k, eta_hat) is one instance of the base model with M = M* = 1 and no weight decay: in
the closed form every latent sits on its own top eigenvector of S and the latents decouple (``closed_form``), so a
VAE with M latents on the fitted data is the sum of the M single-spike problems of the M strongest spikes. This
decoupling is checked against the M = M* = 2 ``per_spike_rho`` model in the tests. Per spike:

- collapse threshold beta_c,k(alpha) = ``collapse_threshold`` (latent k is active iff beta < beta_c,k; at lam = 0
  it equals the limiting k-th eigenvalue of S, so it moves with alpha and tends to rho_k + eta as alpha -> inf);
- detection threshold alpha_c,k = ``detection_threshold`` (BBP: below it latent k cannot overlap spike k);
- eg, rate, distortion from ``closed_form``; a VAE with M latents has the sums over k <= M; its optimal beta
  minimises the summed eg (spikes beyond M add the constant rho_k, which does not move the minimiser).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.optimize

from ..errors import InvalidInputError
from ._spectrum import FitResult

__all__ = ["spike_model", "thresholds", "spike_observables", "optimal_beta_total", "active_predicted",
           "active_predicted_with_bulk",
           "eg_alpha_curves", "rd_curves_total", "predict"]


def spike_model():
    """The single-spike base model (M = M* = 1) whose parameters are one fitted spike."""
    from ..model import make_model
    return make_model("base", M=1, M_star=1)


def _params(rho: float, eta: float, beta: float = 1.0) -> dict:
    return {"rho": float(rho), "eta": float(eta), "lam": 0.0, "beta": float(beta)}


def thresholds(fit: FitResult, alpha: float | None = None, *, count: int | None = None,
               count_inf: int | None = 0) -> dict:
    """Per-spike collapse thresholds at ``alpha`` (default: the dataset's) and BBP detection thresholds for the
    first ``count`` spikes (default all), and the collapse thresholds at alpha = inf for the first ``count_inf``
    (None: as many as ``count``).

    Returns:
        {"alpha", "beta_c": [...], "beta_c_inf": [...], "detection_alpha": [...]}.
    """
    from ..statics import collapse_threshold, detection_threshold
    alpha = fit.alpha if alpha is None else float(alpha)
    model = spike_model()
    K = fit.K if count is None else min(count, fit.K)
    K_inf = K if count_inf is None else min(count_inf, K)
    bc, bci, det = [], [], []
    for k in range(K):
        p = _params(fit.rho_hat[k], fit.eta_hat)
        bc.append(float(collapse_threshold(model, p, alpha)["value"]))
        if k < K_inf:
            bci.append(float(collapse_threshold(model, p, math.inf)["value"]))
        det.append(float(detection_threshold(model, p)))
    return {"alpha": alpha, "beta_c": bc, "beta_c_inf": bci, "detection_alpha": det}


def spike_observables(fit: FitResult, beta: float, alpha: float, count: int) -> np.ndarray:
    """count x 3 array of (eg, rate, distortion) of the single-spike closed forms of the top ``count`` spikes."""
    from ..statics import closed_form
    model = spike_model()
    out = np.zeros((count, 3))
    for k in range(count):
        obs = closed_form(model, _params(fit.rho_hat[k], fit.eta_hat, beta), alpha).observables
        out[k] = [float(obs["eg"]), float(obs["rate"]), float(obs["distortion"])]
    return out


def optimal_beta_total(fit: FitResult, M: int, alpha: float | None = None) -> dict:
    """The beta minimising the summed eg of a VAE with M latents on the fitted data (bounded minimisation on
    (0, beta_c,1), started from a 16-point scan).

    Returns:
        {"beta", "eg"}; beta is None when no spike was found.
    """
    alpha = fit.alpha if alpha is None else float(alpha)
    M = min(M, fit.K)
    if M == 0:
        return {"beta": None, "eg": None}
    top = thresholds(fit, alpha, count=1)["beta_c"][0]

    def total(b):
        return float(np.sum(spike_observables(fit, b, alpha, M)[:, 0]))

    grid = np.geomspace(top * 1e-3, top * (1 - 1e-6), 16)
    vals = [total(b) for b in grid]
    j = int(np.argmin(vals))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    opt = scipy.optimize.minimize_scalar(total, bounds=(lo, hi), method="bounded",
                                         options={"xatol": 1e-6 * top})
    return {"beta": float(opt.x), "eg": float(opt.fun)}


def active_predicted(beta_c: Sequence[float], betas: Sequence[float], M: int) -> np.ndarray:
    """Predicted number of active latents of an M-latent VAE at each beta: #{k : beta < beta_c,k}, at most M."""
    bc = np.asarray(beta_c, dtype=float)
    return np.array([min(M, int(np.sum(bc > b))) for b in betas])


def active_predicted_with_bulk(fit: FitResult, beta_c: Sequence[float], betas: Sequence[float], M: int) -> np.ndarray:
    """``active_predicted`` plus the latents that fit the bulk ("overlearning"): at lam = 0 a latent on a bulk
    eigenvalue is active when beta is below it, and (N - K)(1 - F_MP(beta)) bulk eigenvalues lie above beta."""
    law = fit.bulk_law()
    spikes = active_predicted(beta_c, betas, M)
    bulk = np.rint((fit.N - fit.K) * (1 - law.cdf(np.asarray(betas, dtype=float)))).astype(int)
    return np.minimum(M, spikes + bulk)


def eg_alpha_curves(fit: FitResult, betas: Sequence[float], alphas: Sequence[float], M: int) -> np.ndarray:
    """Summed eg of the top M spikes at each (beta, alpha): len(betas) x len(alphas)."""
    M = min(M, fit.K)
    return np.array([[float(np.sum(spike_observables(fit, b, a, M)[:, 0])) for a in alphas] for b in betas])


def rd_curves_total(fit: FitResult, alphas: Sequence[float], M: int, n_beta: int = 30) -> dict:
    """Rate--distortion curves (summed over the top M spikes) traced by beta at each alpha.

    Returns:
        alpha -> {"beta", "rate", "distortion"} arrays; beta runs geometrically from 1e-2 beta_c,1 to 1.05 beta_c,1.
    """
    M = min(M, fit.K)
    out = {}
    for a in alphas:
        top = thresholds(fit, a, count=1)["beta_c"][0]
        betas = np.geomspace(1e-2 * top, 1.05 * top, n_beta)
        vals = np.array([np.sum(spike_observables(fit, b, a, M), axis=0) for b in betas])
        out[float(a)] = {"beta": betas, "rate": vals[:, 1], "distortion": vals[:, 2]}
    return out


def predict(fit: FitResult, *, M: int = 8) -> dict:
    """The headline predictions for a VAE with M latents on the fitted data at its own alpha.

    Returns:
        {"M", "alpha", "beta_c" (all spikes), "beta_c_inf" (top M), "detection_alpha", "optimal_beta", "optimal_eg",
        "eta_hat"}.

    Raises:
        InvalidInputError: M < 1.
    """
    if not isinstance(M, (int, np.integer)) or M < 1:
        raise InvalidInputError(f"the number of latents must be >= 1, got {M!r}")
    th = thresholds(fit, count_inf=M)
    opt = optimal_beta_total(fit, M)
    return {"M": int(M), "alpha": fit.alpha, "beta_c": th["beta_c"], "beta_c_inf": th["beta_c_inf"],
            "detection_alpha": th["detection_alpha"], "optimal_beta": opt["beta"], "optimal_eg": opt["eg"],
            "eta_hat": fit.eta_hat}
