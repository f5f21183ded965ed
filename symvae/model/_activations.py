"""Activation functions of the non-linear VAEs (and of the other models of the Gaussian-expectation engine).

An activation is named by a string: ``"linear"``, ``"erf"`` (g(x) = erf(x/sqrt(2)), the convention of the soft committee
machine literature), ``"relu"``, or an expression in ``x`` (parsed by ``parse_expression``; ``erf(a)`` inside it is
written as g(sqrt(2) a), so the engine recognises it). Derivatives are SymPy functions with known rules, so gradients
of a loss stay in the algebra the Gaussian-expectation engine of ``symvae.derive`` reduces.
"""
from __future__ import annotations

import functools
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
    return expr.replace(sp.erf, lambda a: ErfAct(sp.sqrt(2) * a))


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
