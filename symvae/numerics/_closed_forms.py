"""Closed forms by SymPy, cached on disk.

SymPy's ``solve`` either answers the small polynomial systems of the threshold solver in well under a second or not at
all, so an attempt runs under a generous wall-clock guard (``GUARD_SECONDS``; SIGALRM, main thread only) against the
pathological case. Only outcomes SymPy itself reached (solutions, or "no solution") are cached under the content hash
of the equations; an attempt stopped by the guard is never cached, so a loaded machine cannot turn "not computed" into
a permanent "no closed form".
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterable, Sequence

import sympy as sp

from .._cache import CacheEntry, content_key

__all__ = ["time_limit", "solve_cached", "SolveTimeout", "memoised", "small_step_parameters", "limit_system"]


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


#: The wall-clock guard of one SymPy attempt: far above what the shipped systems need, so that the outcome does not
#: depend on the load of the machine.
GUARD_SECONDS = 300.0


def solve_cached(equations: Sequence[sp.Expr], unknowns: Sequence[sp.Symbol], *, seconds: float = GUARD_SECONDS,
                 tag: str = "solve") -> list[dict[sp.Symbol, sp.Expr]] | None:
    """``sympy.solve(equations, unknowns, dict=True)`` under a time limit, cached on disk.

    Returns:
        The list of solutions, or None when SymPy did not finish within ``seconds`` (not cached).
    """
    equations = [sp.sympify(e, strict=True) for e in equations]  # strict: never parses text
    key = content_key(tag, sp.srepr((tuple(equations), tuple(unknowns))))
    entry = CacheEntry(key)
    cached = entry.get_pickle("solutions.pickle")
    if cached is not None:
        return cached["solutions"]
    solutions = None
    try:
        with time_limit(seconds):  # off the main thread there is no guard: the attempt simply runs
            solutions = sp.solve(equations, list(unknowns), dict=True)
    except SolveTimeout:
        return None
    except (NotImplementedError, ValueError, TypeError, ZeroDivisionError):
        solutions = []
    try:
        entry.put_pickle("solutions.pickle", {"solutions": solutions})
    except OSError:  # a read-only cache only costs the time again
        pass
    return solutions


_MEMO: dict[str, object] = {}
_MEMO_MAX = 512
_MEMO_LOCK = threading.Lock()


def memoised(tag: str, key_text: str, compute):
    """``compute()`` remembered under (tag, key_text): in memory for the process and as a pickle in the on-disk
    cache. A ``SolveTimeout`` raised by ``compute`` propagates and nothing is stored, so an attempt stopped by a
    guard is computed again next time (never remembered as "no closed form"); None is a regular result."""
    key = content_key("memo", tag, key_text)
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]
    entry = CacheEntry(key)
    cached = entry.get_pickle("value.pickle")
    if cached is not None:
        value = cached["value"]
    else:
        value = compute()
        try:
            entry.put_pickle("value.pickle", {"value": value})
        except OSError:  # a read-only cache only costs the time again
            pass
    with _MEMO_LOCK:
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = value
    return value


def small_step_parameters(rhs: Iterable[sp.Expr], params: Iterable[sp.Symbol]) -> list[sp.Symbol]:
    """Parameters p (step sizes) with F(x; p = 0) = 0 identically: the system has a p -> 0 limit F/p."""
    rhs = list(rhs)
    return [p for p in params if all(sp.expand(e.subs(p, 0)) == 0 for e in rhs)]


def limit_system(rhs: Iterable[sp.Expr], p: sp.Symbol) -> list[sp.Expr]:
    """The leading order lim_{p -> 0} F/p of a system that vanishes at p = 0."""
    return [sp.expand(sp.expand(e / p).subs(p, 0)) for e in rhs]
