"""The plain-script baseline of the benches: what a user would write by hand for M = M* = 1 (the base-model RHS of
docs/model.md in plain numpy) and integrate with scipy ``solve_ivp`` (DOP853, rtol 1e-10, t in [0, 1500]).

Imported for the RHS-call baseline (``rhs``); run as a script (``python bench/plain_baseline.py``) it is the
whole-process baseline, importing only numpy and scipy, and prints m(t) as JSON.
"""
import json

import numpy as np


def rhs(t, y, beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01):
    m, mt, Q, Qt, R, D = y
    kappa = rho + eta
    C = rho * mt * mt + eta * Qt
    G = rho * m * m + eta * Q
    H = rho * m * mt + eta * R
    B = Q + beta
    A = C + D + lam
    return np.array([
        tau * (kappa * mt - A * m),
        tau * (kappa * (m - B * mt) - lam * mt),
        tau * (2 * H - 2 * A * Q) + tau ** 2 * eta * C,
        tau * (2 * (H - B * C) - 2 * lam * Qt) + tau ** 2 * eta * (G - 2 * H * B + B * C * B),
        tau * (C - A * R + G - H * B - lam * R) + tau ** 2 * eta * (H - C * B),
        -(tau / 2) * (Q + beta * (1 - 1 / D)),
    ])


if __name__ == "__main__":
    from scipy.integrate import solve_ivp

    sol = solve_ivp(rhs, (0.0, 1500.0), [0.01, 0.01, 1.0, 1.0, 0.0, 1.0], method="DOP853", rtol=1e-10, atol=1e-12,
                    t_eval=np.linspace(0.0, 1500.0, 11))
    print(json.dumps({"m": sol.y[0].tolist(), "status": "ok" if sol.success else "failed"}))
