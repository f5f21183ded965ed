"""Finite-N online SGD of the shallow autoencoder x_hat = W g(W~ x/sqrt(N))/sqrt(N) (Refinetti & Goldt 2022, untied
weights, no bias) on spiked data, many seeds at once: the ground truth of the derived ODEs of the model
``LinearVAE(encoder_activation=..., encoder_variance="fixed", beta=0)`` at D = 0.

Data x = sum_k sqrt(rho_k/N) c_k w*_k + sqrt(eta) n, c ~ N(0, I), n ~ N(0, I_N). Per-sample loss
(1/2)||x - x_hat||^2; with h = W~ x/sqrt(N), e = x - x_hat and a_k = W_k.e/sqrt(N), the gradients (by hand) are

    grad_{W_k}  = -e g(h_k)/sqrt(N),        grad_{W~_k} = -a_k g'(h_k) x/sqrt(N),

applied with step tau to both layers, N steps per unit time. g(x) = erf(x/sqrt(2)) or x.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["simulate_autoencoder"]


def _activation(name: str):
    if name == "erf":
        from scipy.special import erf
        c = math.sqrt(2 / math.pi)
        return (lambda x: erf(x / math.sqrt(2))), (lambda x: c * np.exp(-x * x / 2))
    if name == "linear":
        return (lambda x: x), (lambda x: np.ones_like(x))
    raise InvalidInputError(f"activation must be 'erf' or 'linear', got {name!r}")


def simulate_autoencoder(Wstar: np.ndarray, W0: np.ndarray, Wt0: np.ndarray, rho: Sequence[float], eta: float,
                         tau: float, t_eval: Sequence[float], *, activation: str = "erf",
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Online SGD of the shallow autoencoder for S seeds at once (see the module docstring).

    Arguments:
        Wstar: (S, M*, N) spikes; W0: (S, M, N) decoder columns; Wt0: (S, M, N) encoder rows.
        rho: spike strengths (M*); eta: bulk variance; tau: step; t_eval: non-decreasing times (steps / N).

    Returns:
        {"t", "m" (S, k, M, M*), "m_tilde" (S, k, M, M*), "Q", "Q_tilde", "R" (S, k, M, M)} with
        m = W W*^T/N, m_tilde = W~ W*^T/N, Q = W W^T/N, Q_tilde = W~ W~^T/N, R = W W~^T/N.
    """
    g, dg = _activation(activation)
    Ws, W, Wt = (np.array(a, dtype=float) for a in (Wstar, W0, Wt0))
    if Ws.ndim != 3 or W.shape != Wt.shape or W.ndim != 3 or W.shape[0] != Ws.shape[0] or W.shape[2] != Ws.shape[2]:
        raise InvalidInputError("Wstar must be (S, M*, N) and W0, Wt0 (S, M, N)")
    S, Ms, N = Ws.shape
    rho = np.asarray(rho, dtype=float).reshape(-1)
    if len(rho) != Ms or np.any(rho < 0) or not eta >= 0:
        raise InvalidInputError("rho must have M* entries >= 0 and eta must be >= 0")
    t_eval = np.asarray(t_eval, dtype=float).reshape(-1)
    if len(t_eval) == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) < 0) or not np.all(np.isfinite(t_eval)):
        raise InvalidInputError("t_eval must be a non-empty, non-decreasing list of finite times >= 0")
    rng = np.random.default_rng(seed)
    sqN = math.sqrt(N)
    scale = np.sqrt(rho / N)
    steps = np.rint(t_eval * N).astype(np.int64)
    out = {k: [] for k in ("m", "m_tilde", "Q", "Q_tilde", "R")}
    step = 0
    for target in steps:
        while step < target:
            c = rng.standard_normal((S, Ms)) * scale
            x = np.matmul(c[:, None, :], Ws)[:, 0, :] + math.sqrt(eta) * rng.standard_normal((S, N))
            h = np.matmul(Wt, x[:, :, None])[:, :, 0] / sqN
            gh = g(h)
            e = x - np.matmul(gh[:, None, :], W)[:, 0, :] / sqN
            a = np.matmul(W, e[:, :, None])[:, :, 0] / sqN
            W += (tau / sqN) * gh[:, :, None] * e[:, None, :]
            Wt += (tau / sqN) * (a * dg(h))[:, :, None] * x[:, None, :]
            step += 1
        out["m"].append(W @ Ws.transpose(0, 2, 1) / N)
        out["m_tilde"].append(Wt @ Ws.transpose(0, 2, 1) / N)
        out["Q"].append(W @ W.transpose(0, 2, 1) / N)
        out["Q_tilde"].append(Wt @ Wt.transpose(0, 2, 1) / N)
        out["R"].append(W @ Wt.transpose(0, 2, 1) / N)
    return {"t": steps / N, **{k: np.stack(v, axis=1) for k, v in out.items()}}
