"""``symvae demo``: the short end-to-end run of the README."""
from __future__ import annotations

import argparse
import sys

from ..errors import InvalidInputError
from ._common import (COUNT_MAX, SIMULATION_WORK_MAX, _positive_int, add_force_option, check_count,
                      check_output_folder, check_work)

#: Time span of the demo's simulation (t = steps / N) and its cost per seed and N^2 (the model has M = M* = 1).
_T_DEMO = 1500.0
_DIGITS_MAX = 100


def register(sub) -> None:
    p = sub.add_parser("demo", help="end-to-end demo: derive, integrate, simulate, threshold, figure",
                       description="Derive the base model, integrate eg(t) at rho = eta = beta = 1, tau = 0.01, add "
                                   "finite-N SGD points, locate the collapse threshold and write a figure "
                                   "(eg_dynamics.png) and summary.json into a folder.",
                       epilog="The folder is created if missing (its parent must exist); a run that fails leaves "
                              "no empty folder behind.")
    p.add_argument("--out", default="demo", help="output folder (default ./demo)")
    p.add_argument("--N", type=_positive_int, default=500, help="dimension of the simulation points (default 500)")
    p.add_argument("--seeds", type=_positive_int, default=4, help="simulation seeds (default 4)")
    p.add_argument("--digits", type=_positive_int, default=30,
                   help=f"verified digits of the threshold, 1..{_DIGITS_MAX} (default 30)")
    add_force_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import run_demo

    if args.N < 10 or args.seeds < 1 or not 1 <= args.digits <= _DIGITS_MAX:
        raise InvalidInputError(f"--N must be >= 10, --seeds >= 1 and --digits in [1, {_DIGITS_MAX}]")
    check_count(args.seeds, "--seeds", args.force, COUNT_MAX)
    check_work(f"the demo's simulation at N = {args.N} with {args.seeds} seeds",
               args.seeds * _T_DEMO * float(args.N) ** 2 * 3, SIMULATION_WORK_MAX, "operations", args.force)
    out = check_output_folder(args.out, "--out")
    created = not out.exists()
    try:
        run_demo(out, N=args.N, seeds=args.seeds, digits=args.digits, log=lambda s: sys.stderr.write(s + "\n"))
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # leave no empty folder behind
        raise
    return 0
