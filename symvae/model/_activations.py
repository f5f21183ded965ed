"""Activation functions of the non-linear VAEs (and of the other models of the Gaussian-expectation engine).

An activation is named by a string: ``"linear"``, ``"erf"`` (g(x) = erf(x/sqrt(2)), the convention of the soft committee
machine literature), ``"relu"``, or an expression in ``x`` (parsed by ``parse_expression``; ``erf(a)`` inside it is
written as g(sqrt(2) a), so the engine recognises it). Derivatives are SymPy functions with known rules, so gradients
of a loss stay in the algebra the Gaussian-expectation engine of ``symvae.derive`` reduces.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import sympy as sp

from ..errors import InvalidInputError

__all__ = ["ErfAct", "ErfActPrime", "Relu", "Step", "validate_activation", "activation", "ACTIVATIONS"]

#: Named activations (anything else must be an expression in x).
ACTIVATIONS = ("linear", "erf", "relu")


class ErfAct(sp.Function):
    """g(x) = erf(x / sqrt(2)); g'(x) = ``ErfActPrime(x)``."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Integer(0)
        if x.is_Number:
            return sp.erf(x / sp.sqrt(2))
        if x.could_extract_minus_sign():
            return -cls(-x)
        return None

    def fdiff(self, argindex=1):
        return ErfActPrime(self.args[0])

    def _eval_rewrite_as_erf(self, x, **kwargs):
        return sp.erf(x / sp.sqrt(2))


class ErfActPrime(sp.Function):
    """g'(x) = sqrt(2/pi) exp(-x^2/2); its derivative is -x g'(x)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.sqrt(2 / sp.pi) * sp.exp(-x ** 2 / 2)
        if x.could_extract_minus_sign():
            return cls(-x)
        return None

    def fdiff(self, argindex=1):
        return -self.args[0] * ErfActPrime(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.sqrt(2 / sp.pi) * sp.exp(-x ** 2 / 2)


class Step(sp.Function):
    """Heaviside step theta(x), the derivative of ReLU."""

    nargs = 1


class Relu(sp.Function):
    """relu(x) = max(x, 0); derivative ``Step``."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Step(self.args[0])


_X = sp.Symbol("x", real=True)


@functools.lru_cache(maxsize=64)
def _expression(text: str) -> sp.Expr:
    from ._expr import parse_expression
    expr = parse_expression(text, "activation")
    extra = expr.free_symbols - {_X}
    if extra:
        raise InvalidInputError(f"an activation is an expression in x only; {text!r} also uses "
                                f"{', '.join(sorted(s.name for s in extra))}")
    expr = expr.replace(sp.erf, lambda a: ErfAct(sp.sqrt(2) * a))
    _admissible(expr, text)
    return expr


#: the largest polynomial degree (outside function calls) of an activation: polynomial parts are expanded by Wick's
#: theorem, whose cost grows steeply with the degree (decoder x**10: 3 s at M = 1; x**15: 12 s; x**20: 17 s; x**50:
#: over a minute; M = 2 multiplies these by about ten) ...
MAX_ACTIVATION_DEGREE = 10
#: ... and with function calls too, whose terms go to the numerical rule with the polynomial factors inside: at
#: degree 5 the second-order integrands carry powers up to about 18, whose tail beyond the rule's cut |y| <= 9 is
#: below 1e-9 of the expectation (at degree 10, about 40 and 5e-5)
MAX_MIXED_DEGREE = 5
_BOUNDED_CALLS = (sp.tanh, sp.sin, sp.cos, sp.atan, ErfAct, ErfActPrime, sp.Heaviside)


class _Refused(Exception):
    pass


def _admissible(expr: sp.Expr, text: str) -> None:
    """Refuse an activation whose Gaussian expectations the derivation cannot take reliably: not real and finite for
    every real x (log or sqrt of what may be negative, a denominator that may vanish, the imaginary unit), growing
    faster than a polynomial (exp(x), cosh(x), 2**x, exp(x**2): the numerical rule truncates at |y| <= 9, so its
    result would depend on the variance unnoticed, and exp(exp(x)) or exp(x**2) have no expectation at all), or of
    polynomial degree above ``MAX_ACTIVATION_DEGREE`` (``MAX_MIXED_DEGREE`` with function calls). The walk is
    conservative: an activation it cannot show to be admissible (1/(2 + sin(x))) is refused too, with the reason."""
    try:
        kind, degree = _growth(expr)
    except _Refused as exc:
        raise InvalidInputError(f"activation {text!r}: {exc}") from None
    if kind == "exponential":
        raise InvalidInputError(f"activation {text!r} grows exponentially in x; activations must grow at most like a "
                                f"polynomial (the numerical rule's cut |y| <= 9 would make the expectations depend "
                                f"on the variance unnoticed)")
    calls = expr.has(sp.Function)
    limit = MAX_MIXED_DEGREE if calls else MAX_ACTIVATION_DEGREE
    if degree > limit:
        raise InvalidInputError(f"activation {text!r}: polynomial degree {degree} exceeds {limit}"
                                + (" with function calls (the numerical rule's accuracy)" if calls else
                                   " (the derivation's cost grows steeply with it)"))


_ORDER = {"bounded": 0, "polynomial": 1, "exponential": 2}


def _worst(*kinds: str) -> str:
    return max(kinds, key=_ORDER.__getitem__, default="bounded")


def _growth(e: sp.Expr) -> tuple[str, int]:
    """(how |e| grows as |x| -> infinity: bounded, polynomial or exponential; its polynomial degree outside calls),
    raising ``_Refused`` where e may be complex or infinite at a real x, or grows faster than exponentially."""
    if not e.has(_X):
        if e.has(sp.I) or e.is_real is False or e.is_finite is False:
            raise _Refused(f"{e} is not a finite real number")
        return "bounded", 0
    if e == _X:
        return "polynomial", 1
    if isinstance(e, (sp.Add, sp.Abs, sp.Min, sp.Max)):
        parts = [_growth(a) for a in e.args]
        return _worst(*[k for k, _ in parts]), max(d for _, d in parts)
    if isinstance(e, sp.Mul):
        parts = [_growth(a) for a in e.args]
        return _worst(*[k for k, _ in parts]), sum(d for _, d in parts)
    if isinstance(e, sp.Pow):
        return _power(e.base, e.exp)
    if isinstance(e, (sp.exp, sp.sinh, sp.cosh)):
        return _exponential(e)
    if isinstance(e, sp.log):
        arg = e.args[0]
        if arg.is_positive is not True:
            raise _Refused(f"{e} is not real and finite for every real x ({arg} may be zero or negative)")
        _growth(arg)
        return "polynomial", 0
    if isinstance(e, _BOUNDED_CALLS):
        for a in e.args:
            _growth(a)
        return "bounded", 0
    if isinstance(e, sp.Piecewise):
        parts = []
        for value, cond in e.args:
            parts.append(_growth(value))
            for rel in cond.atoms(sp.core.relational.Relational):
                _growth(rel.lhs), _growth(rel.rhs)
        return _worst(*[k for k, _ in parts]), max(d for _, d in parts)
    raise _Refused(f"cannot bound {e} (a growth or a domain this check does not know)")


def _power(base: sp.Expr, exp: sp.Expr) -> tuple[str, int]:
    if exp.has(_X):
        if base.is_Number and base > 0:
            return _exponential(sp.exp(exp * sp.log(base), evaluate=False))
        raise _Refused(f"{base}**({exp}): a power with x in its exponent")
    kind, degree = _growth(base)
    if exp.is_Integer and exp > 0:
        return kind, int(exp) * degree
    if exp.is_positive:  # a root: the base must not be negative
        if base.is_nonnegative is not True:
            raise _Refused(f"({base})**({exp}) is not shown to be real for every real x ({base} may be negative)")
        return kind, int(math.ceil(exp * degree))
    # a negative power: the base must stay away from zero
    constant, rest = base.as_independent(_X, as_Add=True)
    away = constant.is_Number and ((constant > 0 and rest.is_nonnegative) or (constant < 0 and rest.is_nonpositive))
    if not away or (not exp.is_Integer and constant < 0):
        raise _Refused(f"({base})**({exp}) is not shown to be finite and real for every real x: {base} is not shown "
                       f"to stay away from zero{'' if exp.is_Integer else ' on the positive side'}")
    return "bounded", 0


def _exponential(e: sp.Expr) -> tuple[str, int]:
    """exp(a), sinh(a), cosh(a): bounded if a is bounded (or a polynomial with a negative leading term of even degree,
    for exp), exponential if a grows linearly, else faster than any exponential."""
    arg = e.args[0] if not isinstance(e, sp.Pow) else e.exp
    kind, _ = _growth(arg)
    if kind == "bounded":
        return "bounded", 0
    if arg.is_polynomial(_X):
        poly = sp.Poly(arg, _X)
        if poly.degree() <= 1:
            return "exponential", 0
        if isinstance(e, sp.exp) and poly.degree() % 2 == 0 and poly.LC() < 0:
            return "bounded", 0
    raise _Refused(f"{e} grows faster than any exponential in x: its Gaussian expectations diverge or are "
                   f"dominated by the tails")


def validate_activation(value: object, what: str = "activation") -> None:
    """Raise ``InvalidInputError`` unless ``value`` names an activation (see the module docstring)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be one of {', '.join(ACTIVATIONS)} or an expression in x, got {value!r}")
    if value not in ACTIVATIONS:
        _expression(value)


def activation(value: str) -> Callable[[sp.Expr], sp.Expr]:
    """The activation named by ``value`` as a map SymPy expression -> SymPy expression."""
    validate_activation(value)
    if value == "linear":
        return lambda a: a
    if value == "erf":
        return ErfAct
    if value == "relu":
        return Relu
    expr = _expression(value)
    return lambda a: expr.subs(_X, a)
