"""Closed forms by SymPy, attempted under a time limit and cached on disk (a failure is cached too).

SymPy's ``solve`` either answers a polynomial system quickly or not at all, so every attempt runs under a wall-clock
limit (SIGALRM, main thread only; elsewhere no attempt is made) and its outcome is stored in the symvae cache under the
content hash of the equations, so the time is paid once per machine.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterable, Sequence

import sympy as sp

from .._cache import CacheEntry, content_key

__all__ = ["time_limit", "solve_cached", "SolveTimeout", "small_step_parameters", "limit_system"]


class SolveTimeout(BaseException):
    """Raised inside a time-limited SymPy call (a BaseException, so SymPy's ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the body after ``seconds`` with ``SolveTimeout``; yields False (no limit possible) off the main
    thread or on platforms without ``setitimer``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield False
        return

    def _alarm(signum, frame):
        raise SolveTimeout()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def solve_cached(equations: Sequence[sp.Expr], unknowns: Sequence[sp.Symbol], *, seconds: float = 5.0,
                 tag: str = "solve") -> list[dict[sp.Symbol, sp.Expr]] | None:
    """``sympy.solve(equations, unknowns, dict=True)`` under a time limit, cached on disk.

    Returns:
        The list of solutions, or None when SymPy did not finish within ``seconds`` (or could not be limited).
    """
    equations = [sp.sympify(e, strict=True) for e in equations]  # strict: never parses text
    key = content_key(tag, sp.srepr((tuple(equations), tuple(unknowns))), f"{seconds:g}")
    entry = CacheEntry(key)
    cached = entry.get_pickle("solutions.pickle")
    if cached is not None:
        return cached["solutions"]
    solutions = None
    try:
        with time_limit(seconds) as limited:
            if limited:
                solutions = sp.solve(equations, list(unknowns), dict=True)
    except SolveTimeout:
        solutions = None
    except (NotImplementedError, ValueError, TypeError, ZeroDivisionError):
        solutions = []
    try:
        entry.put_pickle("solutions.pickle", {"solutions": solutions})
    except OSError:  # a read-only cache only costs the time again
        pass
    return solutions


def small_step_parameters(rhs: Iterable[sp.Expr], params: Iterable[sp.Symbol]) -> list[sp.Symbol]:
    """Parameters p (step sizes) with F(x; p = 0) = 0 identically: the system has a p -> 0 limit F/p."""
    rhs = list(rhs)
    return [p for p in params if all(sp.expand(e.subs(p, 0)) == 0 for e in rhs)]


def limit_system(rhs: Iterable[sp.Expr], p: sp.Symbol) -> list[sp.Expr]:
    """The leading order lim_{p -> 0} F/p of a system that vanishes at p = 0."""
    return [sp.expand(sp.expand(e / p).subs(p, 0)) for e in rhs]
