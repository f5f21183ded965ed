"""The docs/model.md base-model ODEs in matrix form, written with SymPy matrices, for M = 2 latents and M* = 1 spike.

Expected: ``symvae check derivations/hand/base_dynamics.py`` reports every equation equal (exit 0).

setting: dynamics
variant: base
M: 2
M_star: 1

The header above (the lines from ``setting:`` to the next blank line) could equally be a ``HEADER`` dict. Symbols
are matched by name, so they are declared here without symvae: ``Q_12`` is the (1, 2) entry of Q, ``m_tilde_21``
the (2, 1) entry of m~ (latent 2, spike 1), ``D_1`` the first encoder variance.
"""
import sympy as sp

rho, eta, beta, lam, tau = sp.symbols("rho eta beta lam tau")
M, M_STAR = 2, 1


def entries(name, rows, cols, symmetric=False):
    """The matrix of symbols name_ij (1-based; name_ij = name_ji when symmetric)."""
    def entry(i, j):
        if symmetric and i > j:
            i, j = j, i
        return sp.Symbol(f"{name}_{i + 1}{j + 1}")
    return sp.Matrix(rows, cols, entry)


m = entries("m", M, M_STAR)
m_tilde = entries("m_tilde", M, M_STAR)
Q = entries("Q", M, M, symmetric=True)
Q_tilde = entries("Q_tilde", M, M, symmetric=True)
R = entries("R", M, M)
D = sp.Matrix([sp.Symbol(f"D_{k + 1}") for k in range(M)])
I = sp.eye(M)

kappa = rho + eta
C = rho * m_tilde * m_tilde.T + eta * Q_tilde
G = rho * m * m.T + eta * Q
H = rho * m * m_tilde.T + eta * R
B = Q + beta * I
A = C + sp.diag(*D) + lam * I

EQUATIONS = {
    "dm/dt": tau * (kappa * m_tilde - A * m),
    "dm_tilde/dt": tau * (kappa * (m - B * m_tilde) - lam * m_tilde),
    "dQ/dt": tau * (H + H.T - A * Q - Q * A) + tau**2 * eta * C,
    "dQ_tilde/dt": tau * ((H - B * C) + (H - B * C).T - 2 * lam * Q_tilde)
    + tau**2 * eta * (G - H * B - B * H.T + B * C * B),
    "dR/dt": tau * (C - A * R + G - H * B - lam * R) + tau**2 * eta * (H.T - C * B),
    "dD/dt": [-(tau / 2) * (Q[k, k] + beta * (1 - 1 / D[k])) for k in range(M)],
}
