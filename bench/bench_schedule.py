"""A NEW beta(t) expression: `symvae dynamics --beta-schedule EXPR` with the schedule as a runtime program (the base
model's module already in the cache) vs the schedule derived inside the equations (a module generated and numba-
compiled for that one expression, as every new expression cost before).

Each run is a fresh process with an expression no run has seen (a new random rate), so nothing of it is cached; the
base model's module is compiled once, untimed. CPU = user + system seconds of the child.

A REPEATED expression: the same command again, served by the warm path (the plain-data cache entry of the model,
which keeps the expression's parameter program: no SymPy, no numba for this run); target: the whole process within
TARGET_WARM_SECONDS of wall time.

Run: python bench/bench_schedule.py [--repeats 3]
"""
import argparse
import os
import random
import statistics
import sys

from bench_dynamics import _timed  # one child-process timer for the bench scripts (bench/ is on sys.path)

#: target: a new expression costs seconds of CPU, not a compile
TARGET_CPU_SECONDS = 5.0
TARGET_RATIO = 3.0
#: target: a repeated expression, whole process (wall seconds)
TARGET_WARM_SECONDS = 0.5

T_MAX = 200

INLINE_SCRIPT = """
import sys
import numpy as np
import symvae
from symvae.codegen import compile_system
from symvae.numerics import integrate
from symvae.simulate import default_initial_state
model = symvae.make_model("base", beta_schedule=sys.argv[1])
system = symvae.derive_dynamics(model, inline_schedules=True)
compiled = compile_system(system)
traj = integrate(compiled, default_initial_state(system.table), dict(rho=1.0, eta=1.0, lam=0.0, tau=0.1),
                 np.linspace(0, float(sys.argv[2]), 101), throw=True)
print(traj.y[-1][0])
"""


def _new_expression(rng) -> str:
    return f"0.5*tanh({rng.uniform(0.01, 0.03):.12f}*t)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    rng = random.Random()
    cli = [sys.executable, "-m", "symvae", "dynamics", "--rho", "1", "--eta", "1", "--lam", "0", "--tau", "0.1",
           "--t-max", str(T_MAX), "--json", "--beta-schedule"]
    _timed(cli + [_new_expression(rng)], env)  # the base model's module: generated and compiled once, untimed
    runtime, inline = [], []
    for _ in range(args.repeats):  # alternate, so that both see the same load
        runtime.append(_timed(cli + [_new_expression(rng)], env)[:2])
        inline.append(_timed([sys.executable, "-c", INLINE_SCRIPT, _new_expression(rng), str(T_MAX)], env)[:2])
    med = {name: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for name, v in (("runtime program (symvae dynamics)", runtime), ("inlined, compiled per expression", inline))}
    print(f"A new beta(t) expression, fresh process, t in [0, {T_MAX}] (median of {args.repeats}; wall / CPU s):")
    for name, (wall, cpu) in med.items():
        print(f"  {name:36s}: {wall:7.2f} s wall  {cpu:7.2f} s CPU")
    new, old = med["runtime program (symvae dynamics)"], med["inlined, compiled per expression"]
    ratio = old[1] / new[1]
    met = new[1] <= TARGET_CPU_SECONDS and ratio >= TARGET_RATIO
    print(f"CPU ratio inlined / runtime: {ratio:.1f}x; target: <= {TARGET_CPU_SECONDS:g} s CPU and >= "
          f"{TARGET_RATIO:g}x: {'MET' if met else 'MISSED'}")

    repeated = cli + [_new_expression(rng)]
    first = _timed(repeated, env)  # a new expression: the cold path once, which fills the warm entry
    warm = [_timed(repeated, env) for _ in range(args.repeats)]
    if any(out != first[2] for _, _, out in warm):
        raise RuntimeError("the warm path printed something else than the cold path")
    wall, cpu = statistics.median(w for w, _, _ in warm), statistics.median(c for _, c, _ in warm)
    print(f"A repeated beta(t) expression, fresh process (median of {args.repeats}; wall / CPU s):")
    print(f"  {'first run (cold path)':36s}: {first[0]:7.2f} s wall  {first[1]:7.2f} s CPU")
    print(f"  {'repeated expression, warm path':36s}: {wall:7.2f} s wall  {cpu:7.2f} s CPU")
    print(f"wall ratio first / repeated: {first[0] / wall:.1f}x; target: repeated <= {TARGET_WARM_SECONDS:g} s wall "
          f"(whole process): {'MET' if wall <= TARGET_WARM_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
