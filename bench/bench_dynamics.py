"""Speed of the dynamics engine, as ratios against baselines measured in the same run.

1. RHS call: generated numba vs ``sympy.lambdify`` (numpy) vs a plain hand-written numpy RHS (target <= 0.5 us/call).
2. Full trajectory, M = M* = 1, t in [0, 1500], tau = 0.01, rtol 1e-10: symvae vs scipy solve_ivp (DOP853) +
   lambdified RHS (target >= 10x faster).
3. Derivation time, cold (no cache) and cached, for (M, M*) = (1,1), (2,1), (4,2) (targets 3 s / 0.1 s / 60 s).

Run: python bench/bench_dynamics.py
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

import symvae
from symvae.codegen import compile_system
from symvae.numerics import integrate

PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)
INIT = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}


def per_call(f, n=20000, repeats=5):
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best.append((time.perf_counter() - t0) / n)
    return min(best)


def hand_numpy_rhs(t, y, p):
    """The M = M* = 1 base RHS of docs/model.md, written by hand in plain numpy (baseline only)."""
    m, mt, Q, Qt, R, D = y
    beta, eta, lam, rho, tau = p
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


def bench_rhs(system, compiled):
    y = system.pack(INIT)
    p = system.param_vector(PARAMS)
    out = np.empty_like(y)
    compiled.module.rhs_into(0.0, y, p, out)
    lam = sp.lambdify([sp.Symbol("t")] + list(system.state) + list(system.params), list(system.rhs), "numpy")
    args = [0.0] + list(y) + list(p)
    t_numba = per_call(lambda: compiled.module.rhs_into(0.0, y, p, out))
    t_lambdify = per_call(lambda: lam(*args))
    t_hand = per_call(lambda: hand_numpy_rhs(0.0, y, p))
    assert np.allclose(hand_numpy_rhs(0.0, y, p), out)
    print("RHS call (M = M* = 1):")
    print(f"  generated numba, Python call (dispatch)  : {t_numba * 1e6:8.3f} us")
    print(f"  sympy.lambdify numpy                    : {t_lambdify * 1e6:8.3f} us   ratio {t_lambdify / t_numba:6.1f}x")
    print(f"  hand-written numpy                      : {t_hand * 1e6:8.3f} us   ratio {t_hand / t_numba:6.1f}x")
    # inside compiled code (what the integrator sees) there is no Python dispatch
    from numba import njit

    @njit
    def loop(f, y, p, out, n):
        acc = 0.0
        for i in range(n):
            y[0] += 1e-12  # defeat hoisting of the loop-invariant call
            f(0.0, y, p, out)
            acc += out[0]
        return acc

    loop(compiled.module.rhs_into, y.copy(), p, out, 10)
    n = 2_000_000
    t0 = time.perf_counter()
    loop(compiled.module.rhs_into, y.copy(), p, out, n)
    t_inner = (time.perf_counter() - t0) / n
    print(f"  generated numba, called from compiled code: {t_inner * 1e6:8.3f} us   target <= 0.5 us")
    n_inner = compiled.module.integrate(0.0, y, p, np.array([1500.0]), 1e-10, 1e-12, 0.0, 10 ** 7, 1e8)[6]
    t0 = time.perf_counter()
    compiled.module.integrate(0.0, y, p, np.array([1500.0]), 1e-10, 1e-12, 0.0, 10 ** 7, 1e8)
    per_eval = (time.perf_counter() - t0) / n_inner
    print(f"  whole integrator step cost per RHS evaluation (compiled, incl. stage arithmetic): "
          f"{per_eval * 1e6:.3f} us")
    return lam


def bench_trajectory(system, compiled, lam):
    y0 = system.pack(INIT)
    p = system.param_vector(PARAMS)
    integrate(compiled, y0, p, [1500.0])  # warm
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        traj = integrate(compiled, y0, p, [1500.0], rtol=1e-10)
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times)
    pl = list(p)
    t0 = time.perf_counter()
    ref = solve_ivp(lambda t, y: lam(t, *y, *pl), (0, 1500), y0, method="DOP853", rtol=1e-10, atol=1e-12)
    theirs = time.perf_counter() - t0
    diff = np.max(np.abs(ref.y[:, -1] - traj.y[-1]))
    print("Trajectory M = M* = 1, t in [0, 1500], tau = 0.01, rtol 1e-10:")
    print(f"  symvae (compiled DOP853)        : {ours * 1e3:9.3f} ms ({traj.nfev} evaluations)")
    print(f"  solve_ivp DOP853 + lambdify     : {theirs * 1e3:9.3f} ms ({ref.nfev} evaluations)")
    print(f"  speed-up {theirs / ours:7.1f}x   target >= 10x   (max state difference {diff:.1e})")


_CHILD = """
import sys, time
t0 = time.perf_counter()
import symvae
M, Ms, cache = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
t1 = time.perf_counter()
symvae.derive_dynamics(symvae.make_model(M=M, M_star=Ms), cache=cache)
print(time.perf_counter() - t1)
"""


def bench_derivation():
    print("Derivation time (fresh process, excluding the import):")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SYMVAE_CACHE=tmp)
        for (M, Ms), target in (((1, 1), 3), ((2, 1), None), ((4, 2), 60)):
            run = lambda cache: float(subprocess.run(  # noqa: E731
                [sys.executable, "-c", _CHILD, str(M), str(Ms), cache], env=env, capture_output=True, text=True,
                check=True).stdout)
            cold = run("1")
            cached = run("1")
            tgt = f"target cold <= {target} s" + (", cached <= 0.1 s" if (M, Ms) == (1, 1) else "") if target else ""
            print(f"  (M, M*) = ({M}, {Ms}): cold {cold:7.3f} s, cached {cached:7.3f} s   {tgt}")


if __name__ == "__main__":
    system = symvae.derive_dynamics(symvae.make_model())
    compiled = compile_system(system)
    lam = bench_rhs(system, compiled)
    bench_trajectory(system, compiled, lam)
    bench_derivation()
