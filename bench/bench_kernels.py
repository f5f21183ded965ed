"""Where users wait: whole-process start-up, hashing, cold/warm build at growing M, statics first solve, simulator.

Every figure is a ratio against a baseline measured in the same run, or a wall time against a stated target; each
line ends MET or MISSED. Cold runs use a temporary SYMVAE_CACHE; warm runs the next process on the same cache. Not a
test (nothing here is asserted); run on a quiet machine for absolute figures.

    python bench/bench_kernels.py [--quick] [--only cli,hash,scaling,statics,simulator]

``--quick`` runs (M, M*) up to (2, 2) and statics up to (2, 2), fewer repeats (a few minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def run_process(argv, env=None, timeout=3600) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    return time.perf_counter() - start, proc


def python(code: str, env=None, timeout=3600):
    return run_process([sys.executable, "-c", textwrap.dedent(code)], env=env, timeout=timeout)


# ------------------------------------------------------------------ 1. whole-process CLI vs a plain script
def bench_cli(repeats: int) -> None:
    """The warm CLI against the plain script is ``bench_dynamics.bench_cli_process``; here also ``--help`` and
    ``import symvae`` against a bare interpreter."""
    from bench_dynamics import bench_cli_process

    bench_cli_process(repeats)
    help_t = statistics.median(run_process([sys.executable, "-m", "symvae", "--help"])[0] for _ in range(repeats))
    bare_t = statistics.median(python("pass")[0] for _ in range(repeats))
    import_t = statistics.median(python("import symvae")[0] for _ in range(repeats))
    print(f"   symvae --help          : {help_t:6.2f} s   (bare interpreter {bare_t:.2f} s; 'instant' taken as "
          f"<= bare + 0.3 s: {verdict(help_t <= bare_t + 0.3)})")
    print(f"   import symvae          : {import_t:6.2f} s   (bare interpreter {bare_t:.2f} s)")


# ------------------------------------------------------------------ 2. integrate(system) vs integrate(compiled)
def bench_hash(repeats: int) -> None:
    import numpy as np

    import symvae
    from symvae.codegen import compile_system

    print("2. integrate(derived system) vs integrate(compiled system), short trajectory (t = 0..5)")
    for M in (1, 2, 4) if repeats > 3 else (1, 2):
        system = symvae.derive_dynamics(symvae.make_model("base", M=M, M_star=M))
        compiled = compile_system(system)
        init = system.pack({"m": 0.1 * np.eye(M), "m_tilde": 0.1 * np.eye(M), "Q": np.eye(M), "Q_tilde": np.eye(M),
                            "R": np.zeros((M, M)), "D": [1.0] * M})
        symvae.integrate(compiled, init, PARAMS, [0, 5])

        samples = {"system": [], "compiled": []}
        for _ in range(20 * repeats):  # interleaved, best of many: the machine's load hits both alike
            for name, target in (("system", system), ("compiled", compiled)):
                t0 = time.perf_counter()
                symvae.integrate(target, init, PARAMS, [0, 5])
                samples[name].append(time.perf_counter() - t0)
        t_sys, t_comp = min(samples["system"]), min(samples["compiled"])
        ratio = t_sys / t_comp
        print(f"   (M, M*) = ({M},{M}): system {t_sys * 1e3:7.3f} ms, compiled {t_comp * 1e3:7.3f} ms -> "
              f"ratio {ratio:.2f} (target <= 1.2: {verdict(ratio <= 1.2)})")


# ------------------------------------------------------------------ 3. cold / warm build at growing M
BUILD = """
import json, resource, time, numpy as np
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
import symvae
from symvae.codegen import compile_system
t1, c1 = time.perf_counter(), cpu()
system = symvae.derive_dynamics(symvae.make_model("base", M={M}, M_star={M}))
t2, c2 = time.perf_counter(), cpu()
compiled = compile_system(system)
t3, c3 = time.perf_counter(), cpu()
init = system.pack({{"m": 0.1 * np.eye({M}), "m_tilde": 0.1 * np.eye({M}), "Q": np.eye({M}), "Q_tilde": np.eye({M}),
                    "R": np.zeros(({M}, {M})), "D": [1.0] * {M}}})
traj = symvae.integrate(compiled, init, {params}, [0, 1, 2])
t4, c4 = time.perf_counter(), cpu()
traj.observables()
t5, c5 = time.perf_counter(), cpu()
# the numba kernels: compiled (cold) or loaded from numba's cache (warm); the short run above was plain Python (an ODE
# module is loaded plain-Python first), a long run would need them
if {with_numba}:
    from symvae.codegen._compile import CompiledSystem
    numba_system = CompiledSystem(system, compiled.module.compiled(), compiled.path)
    symvae.integrate(numba_system, init, {params}, [0, 1, 2])
t6, c6 = time.perf_counter(), cpu()
print(json.dumps(dict(imports=t1 - t0, derive=t2 - t1, codegen_load=t3 - t2, jit_first_call=t4 - t3,
                      observables=t5 - t4, numba=t6 - t5, cpu=c5 - c0, cpu_numba=c6 - c5, cpu_derive=c2 - c1,
                      cpu_codegen=c3 - c2, cpu_jit=c4 - c3, status=traj.status)))
"""


def bench_scaling(max_M: int, min_M: int = 1) -> None:
    """Cold (a new, empty SYMVAE_CACHE per M) and warm (the next process on that cache) build of the dynamics:
    derive, codegen + module load, first integrate (numba compilation of the right-hand side and the integrator, or
    their numba-cache load). The Jacobian and the parameter Jacobian are not part of it: they are a second module,
    generated on first use (``CompiledSystem.derivatives``). CPU seconds are printed beside the wall times: the
    machine is shared."""
    print(f"3. cold and warm build, (M, M*) = ({min_M},{min_M}) .. ({max_M},{max_M}); seconds per stage "
          "(derive, codegen + module load, a short first integrate (plain Python: an ODE module is loaded "
          "plain-Python first), the numba kernels = JIT (cold) or numba-cache load (warm), which a long run needs; "
          "cold totals include the JIT; the warm process is a short run, the numba column a third process that also "
          "loads the kernels from numba's cache); wall [CPU]")
    print(f"   {'M':>3} {'state':>5} | {'cold wall [CPU]':>17} {'derive':>7} {'codegen':>7} {'JIT':>7} | "
          f"{'warm wall [CPU]':>17} {'derive':>7} {'load':>7} {'1st call':>8} {'numba':>7}")
    targets_cold = {5: 60.0, 6: 300.0}
    targets_warm = {5: 1.0}
    for M in range(min_M, max_M + 1):
        with tempfile.TemporaryDirectory(prefix="symvae-bench-") as cache:
            env = {"SYMVAE_CACHE": cache}
            code = BUILD.format(M=M, params=repr(PARAMS), with_numba=True)
            cold_wall, cold = python(code, env)
            warm_wall, warm = python(BUILD.format(M=M, params=repr(PARAMS), with_numba=False), env)
            _, numba_run = python(code, env)  # a warm process that also loads the numba kernels from their cache
        if cold.returncode or warm.returncode or numba_run.returncode:
            print(f"   {M:>3}  failed: {(cold.stderr or warm.stderr or numba_run.stderr).strip().splitlines()[-1:]}")
            continue
        c, w = json.loads(cold.stdout), json.loads(warm.stdout)
        w["numba"] = json.loads(numba_run.stdout)["numba"]
        n_state = 4 * M * M + 2 * M  # m, m~, R: M^2 each; Q, Q~: M(M+1)/2 each; D: M
        line = (f"   {M:>3} {n_state:>5} | {cold_wall:7.2f} [{c['cpu'] + c['cpu_numba']:7.2f}] {c['derive']:7.2f} "
                f"{c['codegen_load']:7.2f} {c['jit_first_call'] + c['numba']:7.2f} | {warm_wall:7.2f} "
                f"[{w['cpu']:7.2f}] {w['derive']:7.2f} {w['codegen_load']:7.2f} {w['jit_first_call']:8.2f} "
                f"{w['numba']:7.2f}\n"
                f"   {'':>9} | CPU per stage {'':>3} {c['cpu_derive']:7.2f} {c['cpu_codegen']:7.2f} "
                f"{c['cpu_jit'] + c['cpu_numba']:7.2f} |")
        notes = []
        if M in targets_cold:
            notes.append(f"cold target <= {targets_cold[M]:.0f} s: wall {verdict(cold_wall <= targets_cold[M])}, "
                         f"CPU {verdict(c['cpu'] + c['cpu_numba'] <= targets_cold[M])}")
        if M in targets_warm:
            work = warm_wall - w["imports"]
            notes.append(f"warm target <= {targets_warm[M]:.0f} s beyond imports ({work:.2f} s): "
                         f"{verdict(work <= targets_warm[M])}")
        print(line + ("   " + "; ".join(notes) if notes else ""), flush=True)


# ------------------------------------------------------------------ 4. statics first solve, cold / warm
STATICS = """
import json, time
t0 = time.perf_counter()
import symvae
from symvae.statics import solve_statics
t1 = time.perf_counter()
r = solve_statics(symvae.make_model("base", M={M}, M_star={M}), dict(rho=1.5, eta=1.0, beta=0.5, lam=0.1), 2.0)
t2 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, first_solve=t2 - t1, eg=float(r.observables["eg"]))))
"""


def bench_statics(max_M: int) -> None:
    print(f"4. statics first solve in a new process, (M, M*) = (1,1) .. ({max_M},{max_M}), cold and warm cache")
    with tempfile.TemporaryDirectory(prefix="symvae-bench-") as cache:
        env = {"SYMVAE_CACHE": cache}
        for M in range(1, max_M + 1):
            cold_wall, cold = python(STATICS.format(M=M), env)
            warm_wall, warm = python(STATICS.format(M=M), env)
            if cold.returncode or warm.returncode:
                print(f"   ({M},{M}) failed: {(cold.stderr or warm.stderr).strip().splitlines()[-1:]}")
                continue
            c, w = json.loads(cold.stdout), json.loads(warm.stdout)
            note = ""
            if M == 3:
                note = (f"   cold target <= 60 s: {verdict(c['first_solve'] <= 60)}; warm target <= 3 s: "
                        f"{verdict(w['first_solve'] <= 3)}")
            print(f"   ({M},{M}): cold first solve {c['first_solve']:7.2f} s (process {cold_wall:6.2f} s), "
                  f"warm {w['first_solve']:6.2f} s (process {warm_wall:5.2f} s)" + note)


# ------------------------------------------------------------------ 5. simulator throughput and the flop bound
def flops_per_step(N: int) -> int:
    """Arithmetic of one base-model step at M = M* = 1 (b = 1), counted from the kernel: scale the N noise draws
    and add the spike (3N), the two local fields (4N), two row updates each with the sample and the two trained rows
    (2 x 6N), the one overlap the gradient needs (2N); the normal draws themselves are not counted."""
    return 21 * N


def bench_simulator(quick: bool) -> None:
    import numpy as np

    import symvae
    from symvae.simulate import simulate

    print("5. simulator throughput, base model, N = 200, M = M* = 1")
    N = 200
    init = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}
    with tempfile.TemporaryDirectory(prefix="symvae-bench-") as cache:
        code = (f"from symvae.simulate import simulate; import symvae; simulate(symvae.make_model('base'), "
                f"{PARAMS!r}, {init!r}, [0, 10], N={N}, seeds=2)")
        wall, proc = python(code, {"SYMVAE_CACHE": cache})
        print(f"   first simulate on a cold cache: {wall:6.2f} s wall (target <= 15 s: {verdict(wall <= 15)})"
              + ("" if proc.returncode == 0 else f"  [failed: {proc.stderr.strip().splitlines()[-1:]}]"))
    model = symvae.make_model("base")
    t_max = 200.0 if quick else 1000.0
    simulate(model, PARAMS, init, [0, 1], N=N, seeds=1)
    one = simulate(model, PARAMS, init, [0, t_max], N=N, seeds=1, parallel=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    seeds = 2 * cores
    serial = simulate(model, PARAMS, init, [0, t_max / 2], N=N, seeds=seeds, parallel=False)
    threaded = simulate(model, PARAMS, init, [0, t_max / 2], N=N, seeds=seeds)
    for name, a in serial.per_seed.items():
        assert np.array_equal(a, threaded.per_seed[name])  # same numbers whatever the threads
    bound_us = 1.0  # the figure: ~2k flops per step at N = 200 -> ~1 us on one core
    us = 1e6 / one.steps_per_second
    fraction = bound_us / us
    print(f"   one seed, one thread : {one.steps_per_second:12,.0f} steps/s = {us:.2f} us/step; "
          f"{flops_per_step(N)} counted flops/step = {flops_per_step(N) * one.steps_per_second / 1e9:.2f} GFlop/s; "
          f"fraction of the 1 us/step bound {fraction:.0%} (target >= 60%: {verdict(fraction >= 0.6)})")
    speedup = threaded.steps_per_second / serial.steps_per_second
    print(f"   {seeds} seeds: one thread {serial.steps_per_second:12,.0f} seed-steps/s, default "
          f"({min(seeds, cores)} threads) {threaded.steps_per_second:12,.0f} -> {speedup:.2f}x "
          f"(target: both cores used, >= 1.6x on 2 idle cores: {verdict(speedup >= 1.6 or cores == 1)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a few minutes)")
    parser.add_argument("--only", default="cli,hash,scaling,statics,simulator")
    parser.add_argument("--max-M", type=int, default=None, help="largest M = M* of the scaling table (default 5)")
    parser.add_argument("--min-M", type=int, default=1, help="smallest M = M* of the scaling table (default 1)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    repeats = 3 if args.quick else 7
    if "cli" in parts:
        bench_cli(repeats)
    if "hash" in parts:
        bench_hash(repeats)
    if "scaling" in parts:
        bench_scaling(args.max_M or (2 if args.quick else 5), args.min_M)
    if "statics" in parts:
        bench_statics(2 if args.quick else 3)
    if "simulator" in parts:
        bench_simulator(args.quick)


if __name__ == "__main__":
    main()
