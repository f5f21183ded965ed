"""Steps per second of ``symvae.simulate`` against a straightforward per-step numpy loop, measured in the same run.

The reference loop is what one writes first: draw x with numpy, evaluate the gradient of the literal per-sample loss
of docs/model.md section 2 in numpy (the closed form an autograd tool would produce), update W, W~, D. Not a test.

    python bench/bench_simulator.py [--N 2000] [--M 1] [--seconds 3]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import symvae
from symvae.simulate import simulate

PARAMS = dict(rho=1.5, eta=0.5, beta=0.6, lam=0.05, tau=0.3)


def init_state(M: int, M_star: int) -> dict:
    m = (0.3 * np.eye(M, M_star)).tolist()
    return {"m": m, "m_tilde": m, "Q": np.eye(M).tolist(), "Q_tilde": np.eye(M).tolist(),
            "R": np.zeros((M, M)).tolist(), "D": [1.0] * M}


def numpy_loop(N: int, M: int, M_star: int, steps: int, rng: np.random.Generator) -> float:
    """Per-step numpy SGD of the base model (literal loss gradient); returns steps per second."""
    p = PARAMS
    W_star = math.sqrt(N) * np.linalg.qr(rng.standard_normal((N, M_star)))[0]
    W = rng.standard_normal((N, M))
    W_tilde = rng.standard_normal((M, N))
    D = np.ones(M)
    sqrt_N = math.sqrt(N)
    start = time.perf_counter()
    for _ in range(steps):
        c = rng.standard_normal(M_star)
        x = W_star @ (np.sqrt(p["rho"] / N) * c) + math.sqrt(p["eta"]) * rng.standard_normal(N)
        # l = |x|^2/2 - x^T W mu/sqrt(N) + mu^T Q mu/2 + sum_k Q_kk D_k/2 + beta KL + lam(|W|^2 + |W~|^2)/(2N)
        mu = W_tilde @ x / sqrt_N
        Q = W.T @ W / N
        g_W = -np.outer(x, mu) / sqrt_N + W @ (np.outer(mu, mu) + np.diag(D)) / N + p["lam"] * W / N
        dl_dmu = -W.T @ x / sqrt_N + Q @ mu + p["beta"] * mu
        g_W_tilde = np.outer(dl_dmu, x) / sqrt_N + p["lam"] * W_tilde / N
        g_D = 0.5 * np.diag(Q) + 0.5 * p["beta"] * (1 - 1 / D)
        W = W - p["tau"] * g_W
        W_tilde = W_tilde - p["tau"] * g_W_tilde
        D = D - p["tau"] / N * g_D
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=2000)
    parser.add_argument("--M", type=int, default=1)
    parser.add_argument("--M-star", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--t-max", type=float, default=20.0)
    args = parser.parse_args()
    N, M, Ms = args.N, args.M, args.M_star
    model = symvae.make_model("base", M=M, M_star=Ms)
    init = init_state(M, Ms)
    simulate(model, PARAMS, init, [0, 1], N=N, seeds=1)  # compile / load from the cache outside the timing
    res = simulate(model, PARAMS, init, [0, args.t_max], N=N, seeds=args.seeds)
    sim_rate = res.steps_per_second
    ref_steps = max(200, int(args.t_max * N / 20))
    ref_rate = numpy_loop(N, M, Ms, ref_steps, np.random.default_rng(0))
    print(f"N = {N}, M = {M}, M* = {Ms}, one thread")
    print(f"  symvae.simulate : {sim_rate:12,.0f} steps/s ({args.seeds} seeds x {int(res.steps[-1])} steps, "
          f"{res.elapsed:.2f} s; {1e6 / sim_rate:.1f} us/step)")
    print(f"  numpy loop      : {ref_rate:12,.0f} steps/s ({ref_steps} steps; {1e6 / ref_rate:.1f} us/step)")
    print(f"  ratio           : {sim_rate / ref_rate:12.1f} x")


if __name__ == "__main__":
    main()
