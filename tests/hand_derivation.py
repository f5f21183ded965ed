"""The hand-derived base-model ODE of shared/MODEL.md, typed in from that document (test reference only).

This file is the independent reference the engine's derivation is compared against; symvae/ itself types no ODE.
"""
import sympy as sp


def hand_rhs(T):
    """dX/dt of MODEL.md for a SymbolTable T of the base model (single rho, sigma^2 = 1, learned D, batch 1)."""
    rho, eta = T.rho[0], T.eta
    beta, lam, tau = sp.symbols("beta lam tau", real=True)
    M = T.M
    m, mt, Q, Qt, R = T.m, T.m_tilde, T.Q, T.Q_tilde, T.R
    I = sp.eye(M)
    Dm = sp.diag(*T.D)
    kappa = rho + eta
    C = rho * mt * mt.T + eta * Qt
    G = rho * m * m.T + eta * Q
    H = rho * m * mt.T + eta * R
    B = Q + beta * I
    A = C + Dm + lam * I
    return {
        "m": tau * (kappa * mt - A * m),
        "m_tilde": tau * (kappa * (m - B * mt) - lam * mt),
        "Q": tau * (H + H.T - A * Q - Q * A) + tau ** 2 * eta * C,
        "Q_tilde": tau * ((H - B * C) + (H - B * C).T - 2 * lam * Qt) + tau ** 2 * eta * (G - H * B - B * H.T + B * C * B),
        "R": tau * (C - A * R + G - H * B - lam * R) + tau ** 2 * eta * (H.T - C * B),
        "D": [-(tau / 2) * (Q[k, k] + beta * (1 - 1 / T.D[k])) for k in range(M)],
    }
