"""``symvae check FILE`` and ``symvae diff VARIANT_A VARIANT_B``.

Exit codes: ``check`` 0 when every equation matches, 1 when something differs (different, inconclusive, extra, or
missing unless ``--allow-missing``), 2 for unusable input. ``diff`` 0 when the variants' equations are the same,
1 when they differ, 2 for unusable input (like ``diff(1)``).
"""
from __future__ import annotations

import argparse
import sys

from ..model._variants import VARIANTS
from ._common import _positive_int, print_json

__all__ = ["register"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _run_check(args: argparse.Namespace) -> int:
    from ..check import check_file

    report = check_file(args.file, M=args.M, M_star=args.M_star, points=args.points, seed=args.seed,
                        allow_missing=args.allow_missing, time_limit=args.time_limit)
    if args.json:
        print_json(report.to_json())
    else:
        sys.stdout.write(report.format_text() + "\n")
    return report.exit_code


def _run_diff(args: argparse.Namespace) -> int:
    from ..check import diff_variants

    result = diff_variants(args.variant_a, args.variant_b, M=args.M, M_star=args.M_star, setting=args.setting)
    if args.json:
        print_json(result.to_json())
    else:
        sys.stdout.write(result.format_text() + "\n")
    return 0 if result.status == "same" else 1


def register(subparsers) -> None:
    """Add the ``check`` and ``diff`` sub-commands.

    Arguments:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "check", help="check a hand derivation (LaTeX .md/.tex or SymPy .py) against symvae's equations",
        description="Compare each equation of FILE with the one symvae derives for the model its header declares: "
                    "equal / different (with the difference in your symbols and a numeric witness) / missing / "
                    "extra. Exit 0: all match; 1: something differs; 2: unusable input. A .py derivation is code: "
                    "check runs it (in a separate Python process, in the file's folder, with a time and memory "
                    "limit), so only check .py files you would run yourself. LaTeX/Markdown files are only read, "
                    "never run.")
    p.add_argument("file", metavar="FILE", help="hand derivation: .md or .tex (LaTeX display blocks, only read) or "
                                                "a .py SymPy module (code: it is run)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--M", type=_positive_int, default=None, help="override the header's M (matrix notation)")
    p.add_argument("--M-star", type=_positive_int, default=None, help="override the header's M_star")
    p.add_argument("--points", type=_positive_int, default=8, help="random admissible points of the numeric test")
    p.add_argument("--seed", type=int, default=0, help="seed of the numeric test's points (default 0)")
    p.add_argument("--allow-missing", action="store_true",
                   help="equations missing from the file do not count as a mismatch")
    p.add_argument("--time-limit", type=_seconds, default=None, metavar="SECONDS",
                   help="seconds a .py file may run before it is stopped (default: SYMVAE_CHECK_TIME_LIMIT or 60)")
    p.set_defaults(func=_run_check)

    d = subparsers.add_parser(
        "diff", help="how the derived equations change between two model variants, term by term",
        description="Derive both variants' equations and list, per equation, the terms removed, added and whose "
                    f"coefficient changed, and the equations present in one variant only. Variants: "
                    f"{', '.join(VARIANTS)}. Exit 0: same; 1: different; 2: unusable input.")
    d.add_argument("variant_a", metavar="VARIANT_A")
    d.add_argument("variant_b", metavar="VARIANT_B")
    d.add_argument("--M", type=_positive_int, default=1, help="number of latents (default 1)")
    d.add_argument("--M-star", type=_positive_int, default=1, help="number of spikes (default 1)")
    d.add_argument("--setting", default="dynamics", help="dynamics (online-SGD ODEs, default) or statics (replica saddle-point equations)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=_run_diff)
