"""``symvae`` command line: one sub-command module per task, each with ``register(subparsers)``.

Errors in the input end with one line on stderr and exit code 2; numerical failures report their status (exit 1);
Ctrl-C prints ``symvae: interrupted`` and exits 130, at any moment (imports included). Warnings of numpy, numba or
generated code never reach stderr: the one line that ends a run says what happened.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading
import warnings

from ..errors import DerivationError, InvalidInputError, SymvaeError
from ._interrupt import check_interrupt, set_requested
from ._interrupt import requested as _interrupt_requested

#: Sub-command modules, in help order. Each defines ``register(subparsers)`` that sets ``func`` on its parser.
_COMMAND_MODULES = ("symvae.cli._derive", "symvae.cli._dynamics", "symvae.cli._fixed_points",
                    "symvae.cli._statics", "symvae.cli._check", "symvae.cli._demo", "symvae.cli._studies",
                    "symvae.cli._data", "symvae.cli._cache")

#: Which module registers each command. ``symvae COMMAND ...`` builds the parser of that one module only (importing
#: and registering all nine takes longer than a whole warm ``symvae dynamics`` run); ``symvae --help`` and an
#: unknown command build them all. tests/test_cli.py checks this table against what the modules register.
COMMANDS = {"derive": "symvae.cli._derive", "dynamics": "symvae.cli._dynamics", "simulate": "symvae.cli._dynamics",
            "fixed-points": "symvae.cli._fixed_points", "threshold": "symvae.cli._fixed_points",
            "continue": "symvae.cli._fixed_points", "statics": "symvae.cli._statics",
            "phase-diagram": "symvae.cli._statics", "eg-curve": "symvae.cli._statics",
            "rd-curve": "symvae.cli._statics", "check": "symvae.cli._check", "diff": "symvae.cli._check",
            "demo": "symvae.cli._demo", "sweep": "symvae.cli._studies", "anneal": "symvae.cli._studies",
            "n-scaling": "symvae.cli._studies", "reproduce": "symvae.cli._studies", "fit-data": "symvae.cli._data",
            "realdata": "symvae.cli._data", "cache": "symvae.cli._cache"}

#: A token that is a negative number (or a list/range starting with one), never an option: symvae has no option
#: that starts with a digit, '.', 'inf' or 'nan'.
_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

INTERRUPTED = "symvae: interrupted\n"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2, no usage dump)."""

    def error(self, message: str):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message}\n".replace("\n", " ").rstrip() + "\n")
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):
        return super().parse_known_args(join_negative_values(sys.argv[1:] if args is None else list(args)),
                                        namespace)


def join_negative_values(argv: list[str]) -> list[str]:
    """``--opt -1,5`` -> ``--opt=-1,5``, so that option values may start with a minus sign without '='."""
    out: list[str] = []
    for token in argv:
        prev = out[-1] if out else ""
        if (_NEGATIVE_VALUE.match(token) and prev.startswith("--") and prev != "--" and "=" not in prev):
            out[-1] = f"{prev}={token}"
        else:
            out.append(token)
    return out


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``symvae`` parser. Given the command line ``argv`` whose first word is a known command (and no option
    comes before it), only that command's module is imported and registered; otherwise every command is."""
    modules = _COMMAND_MODULES
    if argv and argv[0] in COMMANDS:
        modules = (COMMANDS[argv[0]],)
    parser = _Parser(prog="symvae", description="Symbolic-numeric theory of high-dimensional linear VAEs.",
                     epilog="Exit codes: 0 success, 1 numerical failure (a status says what and where), 2 bad "
                            "input (one line on stderr), 130 interrupted. Generated code is cached under "
                            "$SYMVAE_CACHE, else $XDG_CACHE_HOME/symvae, else ~/.cache/symvae (see `symvae cache`).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in modules:
        importlib.import_module(name).register(sub)
    from ._common import OUTPUT_RULE

    for command in sub.choices.values():  # one rule for every output option, stated wherever there is one
        if any(opt in ("--out", "--plot", "--csv") for a in command._actions for opt in a.option_strings):
            command.epilog = f"{command.epilog} {OUTPUT_RULE}" if command.epilog else OUTPUT_RULE
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Repeater:
    """After the first Ctrl-C, re-deliver the interrupt to the main thread every second until the run ends: an
    interrupt that a library swallowed (see ``_interrupt_requested``) then still stops the run within about a
    second."""

    def __init__(self):
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="symvae-interrupt", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        main_thread = threading.main_thread().ident
        while not self.done.wait(1.0):
            # a real signal aimed at the main thread: it also cuts short a blocking call there (sleep, wait, I/O)
            signal.pthread_kill(main_thread, signal.SIGINT)

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=2.0)


_repeater: _Repeater | None = None


def _sigint(signum, frame):
    """Ctrl-C: stop worker processes at once (a process pool would otherwise finish its queue), then interrupt."""
    import multiprocessing

    set_requested(True)
    if _repeater is not None:
        _repeater.start()

    for child in multiprocessing.active_children():
        try:
            child.terminate()
        except Exception:  # noqa: BLE001 - a child that is already gone
            pass
    raise KeyboardInterrupt


def _run(argv: list[str] | None) -> int:
    import numpy as np

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    command = getattr(args, "command", "symvae")
    check_interrupt()
    try:
        code = int(args.func(args) or 0)
        check_interrupt()
        return code
    except (InvalidInputError, DerivationError) as exc:  # the input cannot be used
        sys.stderr.write(f"symvae: error: {_one_line(exc)}\n")
        return 2
    except SymvaeError as exc:  # a numerical method did not succeed: its own message says what and where
        sys.stderr.write(f"symvae: {command}: {_one_line(exc)}\n")
        return 1
    except MemoryError:
        sys.stderr.write(f"symvae: {command}: out of memory (reduce the problem size)\n")
        return 1
    except (ArithmeticError, np.linalg.LinAlgError) as exc:
        sys.stderr.write(f"symvae: {command}: numerical failure ({type(exc).__name__}: {_one_line(exc)})\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract is one line; SYMVAE_DEBUG=1 shows the traceback
        if _interrupt_requested():
            raise KeyboardInterrupt from None
        if os.environ.get("SYMVAE_DEBUG"):
            raise
        sys.stderr.write(f"symvae: {command}: failed ({type(exc).__name__}: {_one_line(exc)}); "
                         f"SYMVAE_DEBUG=1 shows the traceback\n")
        return 1


def _quiet_unraisable(hook):
    """``sys.unraisablehook`` that drops the KeyboardInterrupt of a Ctrl-C which arrived inside a finaliser or weakref
    callback (Python cannot raise it there and would print "Exception ignored ..." with a traceback): the interrupt
    is recorded already and ``_Repeater`` delivers it again, so the one line ``symvae: interrupted`` stays the output."""
    def unraisable(info):
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt) and _interrupt_requested():
            return
        hook(info)
    return unraisable


def main(argv: list[str] | None = None) -> int:
    """Run ``symvae ARGV``; the exit code (SystemExit from argparse's --help / usage errors propagates)."""
    global _repeater
    set_requested(False)
    _repeater = _Repeater()
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    try:
        try:
            previous = signal.signal(signal.SIGINT, _sigint)
        except ValueError:  # not the main thread: keep Python's default handler
            previous = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import numpy as np

                with np.errstate(all="ignore"):
                    return _run(argv)
        finally:
            _repeater.stop()  # inside the outer try: an interrupt it delivers on its way out is still caught
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED)
        return 130
    except Exception:
        if _interrupt_requested():  # an interrupt that a library turned into another exception
            sys.stderr.write(INTERRUPTED)
            return 130
        raise
    finally:
        sys.unraisablehook = previous_hook


def console() -> None:
    """The program ``symvae`` (console script and ``python -m symvae``): ``main`` on ``sys.argv``, then exit.

    After an interrupt the process ends with ``os._exit(130)`` once the streams are flushed: the interpreter's own
    shutdown would otherwise re-raise SIGINT on itself (exit status -2 instead of 130) if a KeyboardInterrupt had
    passed through C code that records it, and would wait for threads a library left behind.
    """
    code = main()
    if code == 130:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe: nothing left to flush
                pass
        os._exit(130)
    sys.exit(code)
