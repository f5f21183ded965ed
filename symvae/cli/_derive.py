"""``symvae derive``: print the derived equations, or regenerate ``derivations/``."""
from __future__ import annotations

import argparse
import sys

from ..derive import derive_dynamics
from ..errors import InvalidInputError
from ..model import VARIANTS, make_model
from ..report import FORMATS, render, write_derivations
from ._common import M_MAX, _positive_int, add_force_option, check_output_folder, staged_folder


def register(sub) -> None:
    p = sub.add_parser("derive", help="derive and print the online-SGD ODEs of a model variant",
                       description="Derive the N -> infinity online-SGD ODEs of a model variant from its loss.")
    p.add_argument("--variant", default="base", help=f"model variant: {', '.join(VARIANTS)}")
    p.add_argument("--M", type=_positive_int, default=1,
                   help=f"number of latents (default 1; <= {M_MAX} without --force)")
    p.add_argument("--M-star", type=_positive_int, default=1,
                   help=f"number of spikes (default 1; <= {M_MAX} without --force)")
    p.add_argument("--beta-schedule", default=None, metavar="EXPR", help="beta(t) as an expression in t")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default markdown)")
    p.add_argument("--all", action="store_true", help="regenerate the derivations folder (needs --out)")
    p.add_argument("--out", default=None,
                   help="folder for --all (created if missing, its parent must exist; files are replaced only "
                        "once all are written)")
    add_force_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.all:
        if not args.out:
            raise InvalidInputError("--all needs --out FOLDER")
        out = check_output_folder(args.out, "--out")
        with staged_folder(out) as stage:
            written = _write_all(stage)
        sys.stderr.write(f"wrote {len(written)} files under {args.out}\n")
        return 0
    if args.M < 1 or args.M_star < 1:
        raise InvalidInputError(f"--M and --M-star must be >= 1, got {args.M} and {args.M_star}")
    for flag, value in (("--M", args.M), ("--M-star", args.M_star)):
        if value > M_MAX and not args.force:
            raise InvalidInputError(f"{flag} {value} exceeds the limit {M_MAX} (derivation time grows steeply with "
                                    f"M and M*); pass --force to run anyway")
    model = make_model(args.variant, M=args.M, M_star=args.M_star, beta_schedule=args.beta_schedule)
    sys.stdout.write(render(derive_dynamics(model), args.format))
    return 0


def _write_all(out) -> list:
    """Every file of the derivations folder, written under ``out``."""
    written = list(write_derivations(out))
    try:  # thresholds and statics add their own files when those stages are present
        from ..numerics import write_threshold_derivations
    except ImportError:
        write_threshold_derivations = None
    if write_threshold_derivations is not None:
        written += list(write_threshold_derivations(out))
    try:
        from ..statics import write_statics_derivations
    except ImportError:
        write_statics_derivations = None
    if write_statics_derivations is not None:
        written += list(write_statics_derivations(out))
    return written
