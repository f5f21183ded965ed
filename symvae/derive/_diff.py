"""Jacobians of many large expressions in one pass over their shared subexpressions.

``sp.Matrix(F).jacobian(x)`` differentiates each F_i in each x_j separately: n x m traversals of trees whose shared
subtrees are walked again every time, and SymPy recomputes the free symbols of a subtree at each step (a derived
system's right-hand sides at M = 4 share most of their terms; its Jacobian took minutes). ``jacobian`` walks each
distinct subexpression once and keeps its gradient as a sparse map {j: d(node)/dx_j}; a node's gradient is built from
its arguments' by the same rules as SymPy's ``diff`` (sum, product, power, chain rule through ``fdiff``), so every
entry is the expression ``diff`` would give up to SymPy's automatic ordering. A node of any other kind (e.g.
``Max``, ``Abs``, whose derivative rules SymPy writes by hand) is differentiated by ``sp.diff`` in each variable it
holds.
"""
from __future__ import annotations

from typing import Sequence

import sympy as sp

__all__ = ["jacobian"]


def _chain_rule(node) -> bool:
    """True for an applied function whose derivative is SymPy's generic chain rule through ``fdiff``."""
    return isinstance(node, sp.Function) and type(node)._eval_derivative is sp.Function._eval_derivative


def jacobian(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol]) -> sp.Matrix:
    """d exprs_i / d variables_j as a SymPy Matrix (len(exprs) x len(variables)).

    Raises:
        ValueError: a variable is not a Symbol, or appears twice.
    """
    index = {}
    for j, v in enumerate(variables):
        if not isinstance(v, sp.Symbol) or v in index:
            raise ValueError(f"jacobian needs distinct symbols as variables, got {v!r}")
        index[v] = j
    memo: dict[sp.Basic, dict[int, sp.Expr]] = {}
    free_memo: dict[sp.Basic, frozenset[int]] = {}

    def depends(node) -> frozenset[int]:
        """The variables (as indices) a node holds, memoised over the DAG."""
        hit = free_memo.get(node)
        if hit is None:
            if node in index:
                hit = frozenset((index[node],))
            elif not node.args:
                hit = frozenset(index[s] for s in getattr(node, "free_symbols", ()) if s in index)
            else:
                hit = frozenset().union(*(depends(a) for a in node.args))
            free_memo[node] = hit
        return hit

    def grad(node) -> dict[int, sp.Expr]:
        hit = memo.get(node)
        if hit is not None:
            return hit
        if not depends(node):
            out = {}
        elif node in index:
            out = {index[node]: sp.Integer(1)}
        elif node.is_Add:
            parts: dict[int, list] = {}
            for a in node.args:
                for j, d in grad(a).items():
                    parts.setdefault(j, []).append(d)
            out = {j: sp.Add(*ds) for j, ds in parts.items()}
        elif node.is_Mul:
            factors = node.args
            parts = {}
            for i, f in enumerate(factors):
                g = grad(f)
                if not g:
                    continue
                rest = sp.Mul(*factors[:i], *factors[i + 1:])
                for j, d in g.items():
                    parts.setdefault(j, []).append(rest * d)
            out = {j: sp.Add(*ds) for j, ds in parts.items()}
        elif node.is_Pow:
            base, exp = node.args
            gb, ge = grad(base), grad(exp)
            parts = {}
            if gb:
                db = exp * base ** (exp - 1)
                for j, d in gb.items():
                    parts.setdefault(j, []).append(db * d)
            if ge:
                de = node * sp.log(base)
                for j, d in ge.items():
                    parts.setdefault(j, []).append(de * d)
            out = {j: sp.Add(*ds) for j, ds in parts.items()}
        elif _chain_rule(node):
            parts = {}
            for i, a in enumerate(node.args):
                g = grad(a)
                if not g:
                    continue
                da = node.fdiff(i + 1)
                for j, d in g.items():
                    parts.setdefault(j, []).append(da * d)
            out = {j: sp.Add(*ds) for j, ds in parts.items()}
        else:
            out = {j: sp.diff(node, variables[j]) for j in sorted(depends(node))}
        out = {j: d for j, d in out.items() if d != 0}
        memo[node] = out
        return out

    rows = [grad(sp.sympify(e, strict=True)) for e in exprs]
    return sp.Matrix(len(rows), len(variables), lambda i, j: rows[i].get(j, sp.Integer(0)))
