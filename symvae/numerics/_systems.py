"""Shared plumbing of the fixed-point, continuation and threshold modules: a derived system F(x; p) = 0 as seen by
the solvers (compiled float64 functions, parameters in float64 and as exact decimals for mpmath)."""
from __future__ import annotations

import math
import weakref
from typing import Mapping, Sequence

import numpy as np

from ..codegen import CompiledSystem, compile_system
from ..derive import DerivedSystem
from ..errors import InvalidInputError

__all__ = ["as_compiled", "ParameterPoint", "positive_mask", "float_text", "evaluate_or_nan"]


def as_compiled(system: DerivedSystem | CompiledSystem) -> CompiledSystem:
    """The compiled form of ``system`` (compiled, or loaded from the cache, on first use).

    Raises:
        InvalidInputError: if the system depends on time (a beta(t) schedule has no fixed points).
    """
    compiled = system if isinstance(system, CompiledSystem) else compile_system(system)
    if compiled.system.time_dependent:
        raise InvalidInputError("fixed points, continuation and thresholds need an autonomous system; this one "
                                "depends on t (a beta(t) schedule?)")
    return compiled


def float_text(value: float) -> str:
    """The shortest decimal text of a float (``0.01`` stays ``"0.01"``, so mpmath sees the decimal the user meant)."""
    return repr(float(value))


class ParameterPoint:
    """Parameter values of a system, as a float64 vector and as decimal strings for mpmath.

    Arguments:
        system: the derived system.
        values: {name: value} for every parameter of the system (numbers or decimal strings).

    Raises:
        InvalidInputError: a parameter is missing, unknown or not finite.
    """

    def __init__(self, system: DerivedSystem, values: Mapping[str, object]):
        names = [p.name for p in system.params]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InvalidInputError(f"unknown parameter(s) {', '.join(unknown)}; the system has {', '.join(names)}")
        missing = [n for n in names if n not in values]
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(missing)}")
        self.system = system
        self.names = tuple(names)
        self.text: dict[str, str] = {}
        for n in names:
            v = values[n]
            text = v.strip() if isinstance(v, str) else float_text(v)
            try:
                f = float(text)
            except ValueError:
                raise InvalidInputError(f"parameter {n}: not a number: {v!r}") from None
            if not math.isfinite(f):
                raise InvalidInputError(f"parameter {n} must be finite, got {v!r}")
            self.text[n] = text
        self.vector = np.array([float(self.text[n]) for n in names])

    @property
    def values(self) -> dict[str, float]:
        return {n: float(t) for n, t in self.text.items()}

    def index(self, name: str) -> int:
        if name not in self.names:
            raise InvalidInputError(f"{name!r} is not a parameter of this system ({', '.join(self.names)})")
        return self.names.index(name)

    def with_value(self, name: str, value: object) -> "ParameterPoint":
        values: dict[str, object] = dict(self.text)
        values[name] = value
        return ParameterPoint(self.system, values)

    def mp_list(self, exclude: Sequence[str] = ()) -> list[str]:
        """Decimal strings in parameter order (mpmath parses them at its working precision)."""
        return [self.text[n] for n in self.names if n not in exclude]


def positive_mask(system: DerivedSystem) -> np.ndarray:
    """True for state coordinates declared positive (variances such as D_k, sigma2)."""
    if system not in _POSITIVE:
        _POSITIVE[system] = np.array([bool(s.is_positive) for s in system.state], dtype=bool)
    return _POSITIVE[system]


_POSITIVE: "weakref.WeakKeyDictionary[DerivedSystem, np.ndarray]" = weakref.WeakKeyDictionary()


def evaluate_or_nan(f, x, p, shape) -> np.ndarray:
    """f(0, x, p) (a compiled system's ``rhs`` or ``jac``), or NaN where it raises an arithmetic error: the
    plain-Python phase of a fresh compilation raises where the numba code gives inf or nan (a ReLU encoder's rules at
    zero variance of its field), and callers treat both alike, as a non-finite value."""
    try:
        with np.errstate(all="ignore"):
            return f(0.0, x, p)
    except ArithmeticError:
        return np.full(shape, np.nan)
