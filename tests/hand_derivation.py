"""The hand-derived base-model ODE of docs/model.md, typed in from that document (test reference only).

This file is the independent reference the engine's derivation is compared against; symvae/ itself types no ODE.
"""
import sympy as sp


def hand_rhs(T):
    """dX/dt of docs/model.md for a SymbolTable T of the base model (single rho, sigma^2 = 1, learned D, batch 1)."""
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


def hand_norm_block_thresholds(tau, eta=1, rho=1, lam=0):
    """Real roots in beta, sorted, of det of the (Q, Q_tilde, R) block of the hand-derived Jacobian at the collapsed
    point (m = m_tilde = 0, Q = Q_tilde = R = 0, D = 1) for M = M* = 1: where that block loses stability (the noise
    threshold, and the step-size edge as the largest root). Independent of the engine: built from docs/model.md."""
    from symvae.model import SymbolTable, make_model

    T = SymbolTable(make_model())
    h = hand_rhs(T)
    X = [T.Q[0, 0], T.Q_tilde[0, 0], T.R[0, 0]]
    F = sp.Matrix([h["Q"][0, 0], h["Q_tilde"][0, 0], h["R"][0, 0]])
    beta, lam_s, tau_s = sp.symbols("beta lam tau", real=True)
    at = {T.m[0, 0]: 0, T.m_tilde[0, 0]: 0, X[0]: 0, X[1]: 0, X[2]: 0, T.D[0]: 1, T.eta: eta, T.rho[0]: rho,
          lam_s: lam, tau_s: tau}
    det = sp.expand(F.jacobian(X).subs(at).det())
    roots = sp.Poly(det, beta).nroots(n=40)
    return sorted(sp.re(r) for r in roots if abs(sp.im(r)) < 1e-30)  # 40-digit SymPy Floats
