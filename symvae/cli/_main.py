"""``symvae`` command line: one sub-command module per task, each with ``register(subparsers)``.

Errors in the input end with one line on stderr and exit code 2; numerical failures report their status (exit 1).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import SymvaeError

#: Sub-command modules, in help order. Each defines ``register(subparsers)`` that sets ``func`` on its parser.
_COMMAND_MODULES = ("symvae.cli._derive", "symvae.cli._dynamics", "symvae.cli._fixed_points",
                    "symvae.cli._statics", "symvae.cli._check", "symvae.cli._demo", "symvae.cli._data")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2, no usage dump)."""

    def error(self, message: str):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symvae", description="Symbolic-numeric theory of high-dimensional linear VAEs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SymvaeError as exc:
        sys.stderr.write(f"symvae: error: {exc}\n".replace("\n", " ").rstrip() + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("symvae: interrupted\n")
        return 130
