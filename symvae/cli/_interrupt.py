"""The run's interrupt flag, shared by the entry point (which sets it) and the output writers (which check it).

Set by the SIGINT handler. Some libraries turn a KeyboardInterrupt raised inside their import or C code into another
exception (numpy raises ImportError when interrupted while loading its extension), which an optional-import
``except ImportError`` may then swallow; with this flag set, any exception, and the next checkpoint
(``check_interrupt``: after start-up, before an output file is put in place, at the end), still ends the run as an
interrupt.
"""
from __future__ import annotations

__all__ = ["check_interrupt", "requested", "set_requested"]

_requested = False


def set_requested(value: bool) -> None:
    global _requested
    _requested = bool(value)


def requested() -> bool:
    return _requested


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even if the KeyboardInterrupt itself was lost."""
    if _requested:
        raise KeyboardInterrupt
