"""The primitives shared by the Gaussian rule nodes (``_nonlinear_gaussian``, ``_half_space``): the registered
integrand atom, its integration variables and parameter slots, the error of a term without closed form, and the
refinement levels of the rules."""
from __future__ import annotations

import functools

import sympy as sp

from ..errors import DerivationError

__all__ = ["NoClosedForm", "RULE_U", "RULE_V", "rule_parameter", "Integrand", "finer"]


class NoClosedForm(DerivationError):
    """The rewrite rules end in an expectation without a closed form (e.g. four g factors, ReLU with Stein)."""


def finer(step: sp.Rational, cut: sp.Rational, level: int, extra=sp.Rational(3, 2)) -> tuple:
    """(step, cut) of a rule at refinement ``level``: level 1 is the rule itself; level 2, the check rule of the
    thresholds that cannot be certified, halves the step and moves the cut out by ``extra``."""
    if not isinstance(level, int) or level < 1:
        raise ValueError(f"rule level must be an integer >= 1, got {level!r}")
    return step / level, cut + (level - 1) * extra


#: the integration variables of a registered integrand G(u, v; q_1 .. q_k): fixed symbols, never Dummies, so a system
#: pickled by one process, its content hash and the code generated from it agree with every other process
RULE_U = sp.Symbol("u_rule", real=True)
RULE_V = sp.Symbol("v_rule", real=True)


def rule_parameter(k: int) -> sp.Symbol:
    """The k-th (1-based) parameter slot of an integrand: a symbol of the system that G depends on besides (u, v)."""
    return sp.Symbol(f"q_rule_{k}", real=True)


@functools.lru_cache(maxsize=65536)
def _tag(G: sp.Expr) -> str:
    import hashlib
    return hashlib.sha256(sp.srepr(G).encode()).hexdigest()[:16]


class Integrand(sp.AtomicExpr):
    """A registered integrand G(u, v; q_1 .. q_k) of ``GaussRule2``: an atom holding G, a SymPy expression in
    ``RULE_U``, ``RULE_V`` and the parameter slots ``rule_parameter(1..k)`` (nothing else). Being an atom, it is a leaf
    for every traversal (free symbols, substitution, CSE); it pickles as G (a SymPy expression, no code) and its
    ``srepr`` is G's, so the content hash of a derived system covers every integrand it uses."""

    __slots__ = ("G", "n_params")
    is_commutative = True

    def __new__(cls, G):
        G = sp.sympify(G, strict=True)
        slots = [int(x.name[7:]) for x in G.free_symbols - {RULE_U, RULE_V}
                 if x.name.startswith("q_rule_") and x.name[7:].isdigit() and x == rule_parameter(int(x.name[7:]))]
        if len(slots) != len(G.free_symbols - {RULE_U, RULE_V}):
            raise DerivationError(f"an integrand depends on symbols other than u, v and parameter slots: {G}")
        obj = sp.AtomicExpr.__new__(cls)
        obj.G = G
        obj.n_params = max(slots, default=0)
        return obj

    def __getnewargs__(self):
        return (self.G,)

    def _hashable_content(self):
        return (self.G,)

    @property
    def tag(self) -> str:
        """A content hash of G (16 hex digits): the name of its compiled functions."""
        return _tag(self.G)

    def sort_key(self, order=None):
        """By the content hash: SymPy's default key prints the atom (all of G) at every comparison."""
        return self.class_key(), (1, (_tag(self.G),)), sp.S.One.sort_key(), sp.S.One

    def _eval_derivative(self, s):
        return sp.Integer(0)

    def _sympystr(self, printer):
        return f"Integrand({printer._print(self.G)})"

    def _sympyrepr(self, printer):
        return f"Integrand({printer._print(self.G)})"

    def _latex(self, printer):
        return printer._print(self.G.xreplace({RULE_U: sp.Symbol("u"), RULE_V: sp.Symbol("v")}))
