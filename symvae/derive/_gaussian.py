"""Expectations of polynomials in jointly Gaussian, zero-mean local fields (Isserlis / Wick theorem)."""
from __future__ import annotations

import functools
from collections import defaultdict
from typing import Callable, Sequence

import sympy as sp

from ..errors import DerivationError

__all__ = ["split_monomials", "gaussian_expectation"]


def split_monomials(expr: sp.Expr, fields: Sequence[sp.Symbol]) -> dict[tuple[int, ...], sp.Expr]:
    """Write ``expr`` as sum_k coeff_k * prod_i fields[i]**k_i; returns {exponent tuple: coeff}.

    Raises:
        DerivationError: if ``expr`` is not a polynomial in the fields.
    """
    index = {f: i for i, f in enumerate(fields)}
    out: dict[tuple[int, ...], sp.Expr] = defaultdict(lambda: sp.Integer(0))
    for term in sp.Add.make_args(sp.expand(expr)):
        powers = [0] * len(fields)
        coeff = []
        for factor in sp.Mul.make_args(term):
            base, exp = factor.as_base_exp()
            if base in index:
                if not (exp.is_Integer and exp >= 0):
                    raise DerivationError(f"the loss is not polynomial in the local field {base}: found {factor}")
                powers[index[base]] += int(exp)
            else:
                if factor.free_symbols & index.keys():
                    raise DerivationError(f"the loss is not polynomial in the local fields: found {factor}")
                coeff.append(factor)
        out[tuple(powers)] += sp.Mul(*coeff)
    return dict(out)


def gaussian_expectation(expr: sp.Expr, fields: Sequence[sp.Symbol],
                         covariance: Callable[[int, int], sp.Expr]) -> sp.Expr:
    """E[expr] over zero-mean jointly Gaussian ``fields`` with E[f_i f_j] = covariance(i, j).

    Moments are evaluated by Wick's theorem (sum over pairings), memoised per multiset of indices.
    """
    cov = functools.lru_cache(maxsize=None)(lambda i, j: covariance(min(i, j), max(i, j)))

    @functools.lru_cache(maxsize=None)
    def moment(idx: tuple[int, ...]) -> sp.Expr:
        if not idx:
            return sp.Integer(1)
        if len(idx) % 2:
            return sp.Integer(0)
        first, rest = idx[0], idx[1:]
        total = sp.Integer(0)
        seen = set()
        for j, other in enumerate(rest):
            if other in seen:  # identical partners give identical terms: count them once, times multiplicity
                continue
            seen.add(other)
            mult = rest.count(other)
            remaining = rest[:j] + rest[j + 1:]
            total += mult * cov(first, other) * moment(tuple(sorted(remaining)))
        return total

    result = sp.Integer(0)
    for powers, coeff in split_monomials(expr, fields).items():
        idx = tuple(i for i, k in enumerate(powers) for _ in range(k))
        result += coeff * moment(idx)
    return sp.expand(result)
