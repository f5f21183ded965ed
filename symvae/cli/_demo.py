"""``symvae demo``: the short end-to-end run of the README."""
from __future__ import annotations

import argparse
import sys

from ..errors import InvalidInputError


def register(sub) -> None:
    p = sub.add_parser("demo", help="end-to-end demo: derive, integrate, simulate, threshold, figure",
                       description="Derive the base model, integrate eg(t) at rho = eta = beta = 1, tau = 0.01, add "
                                   "finite-N SGD points, locate the collapse threshold and write a figure.")
    p.add_argument("--out", default="demo", help="output folder (default ./demo)")
    p.add_argument("--N", type=int, default=500, help="dimension of the simulation points (default 500)")
    p.add_argument("--seeds", type=int, default=4, help="simulation seeds (default 4)")
    p.add_argument("--digits", type=int, default=30, help="verified digits of the threshold (default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import run_demo

    if args.N < 10 or args.seeds < 1 or args.digits < 1:
        raise InvalidInputError("--N must be >= 10, --seeds >= 1 and --digits >= 1")
    run_demo(args.out, N=args.N, seeds=args.seeds, digits=args.digits, log=lambda s: sys.stderr.write(s + "\n"))
    return 0
