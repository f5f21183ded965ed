"""Comparing right-hand sides (the dynamics setting): "dX/dt = F" must have symvae's F, term by term."""
from __future__ import annotations

import os
from typing import Any, Mapping

import sympy as sp

from ._compare import PointSampler, _is_step, arrange, compare, format_groups, format_sum, readable, term_changes
from ._reader import HandDerivation
from ._report import CheckReport, EquationResult, witness_json

__all__ = ["check_rhs"]


def _definitions_form(difference: sp.Expr, definitions: Mapping[str, sp.Expr], plain: Mapping,
                      late: frozenset, early: frozenset) -> str | None:
    """The difference as (monomial) x (one of the user's definitions), per step-size order, if that works."""
    if not definitions or difference == 0:
        return None
    pieces = []
    for sign, group in arrange(difference, {s for s in difference.free_symbols if _is_step(s)}):
        best = None
        for name, value in definitions.items():
            if value == 0 or not value.free_symbols or isinstance(value, sp.Symbol):
                continue
            quotient = sp.factor(sp.cancel(group / value))
            num, den = quotient.as_numer_denom()
            if quotient != 0 and not num.has(sp.Add) and not den.has(sp.Add):
                candidate = quotient * sp.Symbol(name)
                if best is None or sp.count_ops(candidate) < sp.count_ops(best):
                    best = candidate
        if best is None:
            return None
        pieces.append((sign, best.xreplace(plain)))
    return format_groups(pieces, late, early).removeprefix("+ ")


def _terms_json(changes: Mapping[str, list], plain, late, early) -> dict[str, Any]:
    return {"missing": [readable(t.xreplace(plain), late, early) for t in changes["missing"]],
            "extra": [readable(t.xreplace(plain), late, early) for t in changes["extra"]],
            "changed": [{"term": readable(m.xreplace(plain), late, early), "yours": readable(a),
                         "symvae": readable(b)}
                        for m, a, b in changes["changed"]]}


def check_rhs(hand: HandDerivation, *, points: int = 8, seed: int = 0, allow_missing: bool = False) -> CheckReport:
    """Check equations "unknown = right-hand side" (the dynamics setting): each right-hand side must equal symvae's.

    Arguments:
        hand: the file, read by ``read_hand_derivation``.
        points: number of random admissible points of the numeric test.
        seed: the points' random seed.
        allow_missing: do not count equations missing from the file as a mismatch.

    Returns:
        The ``CheckReport``.
    """
    system, namespace = hand.system, hand.namespace
    plain = namespace.plain_symbols()
    latex_names = namespace.latex_symbols()
    late = frozenset({u.name for s in system.element_of if s in plain for u in plain[s].free_symbols}
                     | set(hand.definitions))
    steps = {u for s in system.params if _is_step(s) for u in plain.get(s, s).free_symbols}
    early = frozenset(u.name for u in steps)
    show = lambda e: readable(e.xreplace(plain), late, early)  # noqa: E731
    sampler = PointSampler(system, seed)
    candidates = sampler.draw_many(3 * points)
    results: list[EquationResult] = []
    covered = set()
    for eq in hand.equations:
        if eq.target is None:
            yours = show(eq.rhs) if isinstance(eq.rhs, sp.Expr) else None
            results.append(EquationResult(eq.name, "extra", eq.line, eq.source,
                                          f"not an equation of the model: {eq.note}", note=eq.note, yours=yours))
            continue
        covered.add(eq.target)
        derived = system.equations[eq.target]
        comparison = compare(eq.rhs, derived, candidates, needed=points)
        difference = comparison.difference
        if comparison.verdict == "equal":
            results.append(EquationResult(eq.name, "equal", eq.line, eq.source, "", "0", "0",
                                          checks=comparison.checks, note=comparison.note))
            continue
        shown = difference.xreplace(plain)
        groups = arrange(shown, steps)
        changes = term_changes(eq.rhs, derived)
        if changes["extra"] and not changes["missing"] and not changes["changed"]:  # only terms symvae has not
            flipped = [(-sign, g) for sign, g in groups]
            message = f"your right-hand side has an extra {format_groups(flipped, late, early)}"
        else:
            message = f"your right-hand side lacks {format_groups(groups, late, early)}"
        if comparison.verdict == "inconclusive":
            message = f"inconclusive: {comparison.note}"
        variables = tuple(sorted((s.name for s in shown.free_symbols), key=str.lower))
        witness = witness_json(comparison.witness, plain) if comparison.witness else None
        results.append(EquationResult(
            eq.name, comparison.verdict, eq.line, eq.source, f"{eq.name}: {message}",
            format_sum(shown, late, early, steps),
            sp.latex(shown, symbol_names=latex_names),
            _definitions_form(difference, hand.definitions, plain, late, early), variables,
            _terms_json(changes, plain, late, early), witness, comparison.checks, comparison.note,
            show(eq.rhs), show(derived)))
    for sym, rhs in system.equations.items():
        if sym not in covered:
            name = system.equation_name(sym)
            results.append(EquationResult(name, "missing", message=f"{name}: not in the file; symvae derives "
                                                                    f"{show(rhs)}", symvae=show(rhs)))
    header = hand.header
    return CheckReport(os.fspath(hand.path), header.setting, header.variant, hand.model.M, hand.model.M_star,
                       tuple(results), allow_missing, points, seed)
