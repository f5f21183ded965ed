"""Finite-N online SGD of the soft committee machine with erf units, many seeds at once (numpy, vectorised over
seeds): the ground truth of the derived committee ODEs on long runs such as the plateau.

x ~ N(0, I_N), y = sum_n g(nu_n), yhat = sum_k g(lambda_k), g(x) = erf(x/sqrt 2), lambda = W x/sqrt(N),
nu = W* x/sqrt(N); first layer only: w_k <- w_k - tau g'(lambda_k)(yhat - y) x/sqrt(N) (Saad & Solla 1995), N steps
per unit time. The gradient and the generalisation error below are written by hand, independently of the derivation:

    eg = (1/pi) [ sum_ik arcsin(Q_ik/sqrt((1+Q_ii)(1+Q_kk))) + sum_nm arcsin(T_nm/sqrt((1+T_nn)(1+T_mm)))
                  - 2 sum_in arcsin(R_in/sqrt((1+Q_ii)(1+T_nn))) ].
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["committee_eg", "simulate_committee_seeds"]


def committee_eg(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Generalisation error of an erf committee machine (v = A = 1) from its overlaps; leading axes broadcast."""
    dq = np.sqrt(1 + np.diagonal(Q, axis1=-2, axis2=-1))
    dt = np.sqrt(1 + np.diagonal(T, axis1=-2, axis2=-1))
    s = (np.arcsin(Q / (dq[..., :, None] * dq[..., None, :])).sum(axis=(-2, -1))
         + np.arcsin(T / (dt[..., :, None] * dt[..., None, :])).sum(axis=(-2, -1))
         - 2 * np.arcsin(R / (dq[..., :, None] * dt[..., None, :])).sum(axis=(-2, -1)))
    return s / math.pi


def simulate_committee_seeds(W0: np.ndarray, Wstar: np.ndarray, tau: float, t_eval: Sequence[float], *,
                             seed: int = 0) -> dict[str, np.ndarray]:
    """Online SGD of an erf soft committee machine (first layer, v = A = 1) for S seeds at once.

    Arguments:
        W0: (S, K, N) initial students; Wstar: (S, M, N) teachers; tau: step; t_eval: non-decreasing times (steps/N).

    Returns:
        {"t" (k,), "Q" (S, k, K, K), "R" (S, k, K, M), "T" (S, M, M), "eg" (S, k)}.
    """
    from scipy.special import erf
    W = np.array(W0, dtype=float)
    Ws = np.asarray(Wstar, dtype=float)
    if W.ndim != 3 or Ws.ndim != 3 or W.shape[0] != Ws.shape[0] or W.shape[2] != Ws.shape[2]:
        raise InvalidInputError("W0 must be (S, K, N) and Wstar (S, M, N) with the same S and N")
    S, K, N = W.shape
    t_eval = np.asarray(t_eval, dtype=float).reshape(-1)
    if len(t_eval) == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) < 0) or not np.all(np.isfinite(t_eval)):
        raise InvalidInputError("t_eval must be a non-empty, non-decreasing list of finite times >= 0")
    rng = np.random.default_rng(seed)
    sqN, c = math.sqrt(N), math.sqrt(2 / math.pi)
    steps = np.rint(t_eval * N).astype(np.int64)
    Qs, Rs = [], []
    step = 0
    for target in steps:
        while step < target:
            x = rng.standard_normal((S, N))
            lam = np.matmul(W, x[:, :, None])[:, :, 0] / sqN
            nu = np.matmul(Ws, x[:, :, None])[:, :, 0] / sqN
            delta = erf(lam / math.sqrt(2)).sum(axis=1) - erf(nu / math.sqrt(2)).sum(axis=1)
            a = c * np.exp(-lam * lam / 2) * delta[:, None]  # g'(lambda_k) (yhat - y)
            W -= (tau / sqN) * a[:, :, None] * x[:, None, :]
            step += 1
        Qs.append(W @ W.transpose(0, 2, 1) / N)
        Rs.append(W @ Ws.transpose(0, 2, 1) / N)
    T = Ws @ Ws.transpose(0, 2, 1) / N
    Q, R = np.stack(Qs, axis=1), np.stack(Rs, axis=1)
    return {"t": steps / N, "Q": Q, "R": R, "T": T, "eg": committee_eg(Q, R, T[:, None])}
