"""Validation of statics parameters (shared by the finite-N ERM, the closed form, the replica solver and the CLI)."""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import mpmath

from ..errors import InvalidInputError

__all__ = ["check_alpha", "check_params"]


def check_alpha(alpha, *, allow_inf: bool = False) -> float:
    """alpha as a float; must be > 0 and finite (or +inf if ``allow_inf``).

    Raises:
        InvalidInputError: otherwise.
    """
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InvalidInputError(f"alpha must be a number, got {alpha!r}") from None
    if math.isnan(a) or a <= 0 or (math.isinf(a) and not allow_inf):
        raise InvalidInputError(f"alpha = n/N must be > 0{' (or inf)' if allow_inf else ' and finite'}, got {alpha!r}")
    return a


def check_params(values: Mapping[str, object], needed: Iterable[str]) -> dict[str, float]:
    """The values of the ``needed`` parameter names, validated.

    Values are returned as floats, except mpmath numbers, which are kept. Rules: every value finite; ``eta``,
    ``beta``, ``sigma2`` and ``D_k`` > 0 (beta > 0: the KL term fixes the scale
    of the weights; at beta = 0 the minimum is not attained); ``rho``/``rho_k`` and weight decays >= 0; any other
    parameter finite.

    Raises:
        InvalidInputError: a missing, non-numeric, non-finite or out-of-range value.
    """
    out: dict[str, float] = {}
    for name in needed:
        if name not in values:
            raise InvalidInputError(f"missing value for parameter {name!r}")
        try:
            v = float(values[name])
        except (TypeError, ValueError):
            raise InvalidInputError(f"parameter {name} must be a number, got {values[name]!r}") from None
        if not math.isfinite(v):
            raise InvalidInputError(f"parameter {name} must be finite, got {values[name]!r}")
        positive = name in ("eta", "beta", "sigma2") or name.startswith("D_")
        if positive and v <= 0:
            raise InvalidInputError(f"parameter {name} must be > 0, got {v}")
        if not positive and v < 0 and (name.startswith(("rho", "lam")) or name in ("alpha",)):
            raise InvalidInputError(f"parameter {name} must be >= 0, got {v}")
        # keep arbitrary-precision values (mpmath) as given: the mp code paths need every digit
        out[name] = values[name] if isinstance(values[name], mpmath.mpf) else v
    return out
