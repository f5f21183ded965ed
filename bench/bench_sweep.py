"""Sweep throughput (grid points per second): serial vs local processes vs a dask.distributed LocalCluster.

Every backend runs the same chunk function on the same grid (beta x tau, M = M* = 1, eg_final/eg_fp/convergence
time from the ODE); the script also checks that the three give bit-identical rows. Compilation is warmed first (and
every worker loads the cached compiled module once before the timed run).

Run: python bench/bench_sweep.py [--points 200] [--workers 2]
"""
import argparse
import time

import numpy as np

from symvae.analysis import SweepPoint, make_executor, sweep
from symvae.analysis._executor import DaskExecutor

BASE = SweepPoint(params=dict(rho=1.0, eta=1.0, beta=1.0, lam=0.0, tau=0.1), t_max=800.0, n_grid=801,
                  metrics=("eg_final", "eg_fp", "convergence_time"))


def grid(points: int) -> dict:
    n_tau = 4
    n_beta = max(1, points // n_tau)
    return {"beta": list(np.round(np.linspace(0.1, 3.0, n_beta), 6)), "tau": [0.05, 0.08, 0.1, 0.12]}


def timed(label, run, n):
    t0 = time.perf_counter()
    rows = run()
    dt = time.perf_counter() - t0
    print(f"{label:<34} {n:>6} points in {dt:7.2f} s = {n / dt:8.1f} points/s")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    g = grid(args.points)
    n = len(g["beta"]) * len(g["tau"])
    sweep(BASE, {"beta": [1.0]})  # warm the compiled module in this process
    serial = timed("serial", lambda: sweep(BASE, g).rows, n)
    with make_executor("processes", workers=args.workers) as ex:
        sweep(BASE, {"beta": [1.0, 1.1]}, executor=ex, chunk_size=1)  # workers load the compiled module
        procs = timed(f"local processes ({args.workers})", lambda: sweep(BASE, g, executor=ex).rows, n)
    try:
        import distributed
    except ImportError:
        print("dask LocalCluster: not measured (pip install 'symvae[dask]')")
        dask_rows = serial
    else:
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            ex = DaskExecutor(client=client)
            sweep(BASE, {"beta": [1.0, 1.1]}, executor=ex, chunk_size=1)  # workers load the compiled module
            dask_rows = timed(f"dask LocalCluster ({args.workers} workers)", lambda: sweep(BASE, g, executor=ex).rows,
                              n)
    # repr: NaN (no convergence by t_max) compares equal to NaN, and floats compare bit for bit
    print("bit-identical across backends:", repr(serial) == repr(procs) == repr(dask_rows))


if __name__ == "__main__":
    main()
