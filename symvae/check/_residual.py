"""Comparing saddle-point equations (the statics setting): residual systems F = 0, and free energies.

Two saddle-point equations r_yours = 0 and r_symvae = 0 are the same equation when r_yours = g * r_symvae with a factor g
that does not vanish (nor blow up) on the admissible domain: ``D = beta/(beta + Q)`` is ``df/dD = 0`` with
g = 2D/(beta + Q). Two independent tests decide:

1. Exact: ``cancel(r_yours / r_symvae)`` is a ratio of polynomials; it is a valid factor when every irreducible factor
   of its numerator and denominator is provably sign-definite once the symbols that are positive on the admissible
   domain are declared so (strengths, beta, alpha, D, sigma^2 positive; weight decays, diagonal overlaps Q_kk, Q~_kk
   non-negative). A factor SymPy cannot prove non-vanishing counts as "different" here.
2. Numeric (float64 and mpmath at 50 digits), at random admissible points: (a) the ratio has the same sign at every
   point and neither residual vanishes alone; (b) the zero sets coincide: along a line through the point (one
   unknown varied, preferring K, H, m, m~, R), every admissible real root of symvae's residual is a root of yours and
   every admissible real root of yours is a root of symvae's. A constant-ratio test alone would reject the legitimate
   non-constant factors, and a sign test alone would miss small perturbations; (b) catches those.

If the exact and the 50-digit verdicts disagree, the verdict is ``inconclusive`` with the reason.

A free energy f is compared by f_symvae - f_yours (equal if it is constant in every unknown: exact gradient 0, and equal
numeric values at points that share the parameters) and by its gradient: each df_yours/dx is compared with symvae's
equation for x as above.
"""
from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections import Counter
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from ._compare import (MPMATH_DPS, PointSampler, Witness, _lambdas, float64_pair, format_sum, readable,
                       term_changes)
from ._report import CheckReport, EquationResult, witness_json
from ._settings import TargetSystem

_Witness = Witness

__all__ = ["ResidualComparison", "compare_residuals", "exact_factor", "normalised_difference", "check_statics"]

MP_ZERO = mpmath.mpf(10) ** -35  # relative size below which a 50-digit residual counts as 0
F64_ZERO = 1e-8


# ---------------------------------------------------------------------------------------------------- domain
def _sign_substitutions(system: TargetSystem) -> dict[sp.Symbol, sp.Symbol]:
    """Symbols that are positive / non-negative on the admissible domain -> Dummies carrying that assumption."""
    T = system.table
    out: dict[sp.Symbol, sp.Symbol] = {}
    for sym in system.params:
        if sym.name == "t" or sym.name.startswith("lam"):
            out[sym] = sp.Dummy(sym.name, nonnegative=True)
        else:
            out[sym] = sp.Dummy(sym.name, positive=True)
    for sym in T.D:
        if isinstance(sym, sp.Symbol):
            out[sym] = sp.Dummy(sym.name, positive=True)
    if isinstance(T.sigma2, sp.Symbol):
        out[T.sigma2] = sp.Dummy(T.sigma2.name, positive=True)
    for block in ("Q", "Q_tilde"):
        value = T.matrices().get(block)
        if isinstance(value, sp.MatrixBase):
            for k in range(value.rows):
                if isinstance(value[k, k], sp.Symbol):
                    out.setdefault(value[k, k], sp.Dummy(value[k, k].name, nonnegative=True))
    return out


def _constrained(system: TargetSystem) -> dict[sp.Symbol, str]:
    """Unknowns with a sign constraint: ``"positive"`` (D) or ``"nonnegative"`` (diagonal overlaps)."""
    T = system.table
    out = {s: "positive" for s in T.D if isinstance(s, sp.Symbol)}
    for block in ("Q", "Q_tilde"):
        value = T.matrices().get(block)
        if isinstance(value, sp.MatrixBase):
            for k in range(value.rows):
                out.setdefault(value[k, k], "nonnegative")
    return out


def _gram_check(system: TargetSystem):
    """A function point -> whether the overlaps at ``point`` form a PSD Gram matrix of [W*, W, W~] (the admissible
    domain; the teacher is orthonormal), or None if the overlaps do not cover every pair of vectors."""
    T = system.table
    vectors = list(dict.fromkeys(list(T.teacher) + [v for pair in T.overlap_pairs.values() for v in pair]))
    index = {v: i for i, v in enumerate(vectors)}
    entries = {}
    for sym, (u, w) in T.overlap_pairs.items():
        entries[(index[u], index[w])] = entries[(index[w], index[u])] = sym
    teacher = {index[v] for v in T.teacher}
    n = len(vectors)
    for i in range(n):
        for j in range(n):
            if (i, j) not in entries and not (i in teacher and j in teacher):
                return None

    def check(point) -> bool:
        with mpmath.workdps(MPMATH_DPS):
            G = mpmath.matrix(n, n)
            for i in range(n):
                for j in range(n):
                    G[i, j] = _mp(point[entries[(i, j)]]) if (i, j) in entries else mpmath.mpf(int(i == j))
            return min(mpmath.eigsy(G, eigvals_only=True)) >= -mpmath.mpf(10) ** -30
    return check


def _sign_definite(expr: sp.Expr, subs: Mapping[sp.Symbol, sp.Symbol]) -> bool:
    e = expr.xreplace(subs)
    return bool(e.is_positive or e.is_negative)


# ---------------------------------------------------------------------------------------------------- exact test
def exact_factor(yours: sp.Expr, symvae: sp.Expr, system: TargetSystem
                 ) -> tuple[str, sp.Expr | None, sp.Expr | None]:
    """Whether ``yours = g * symvae`` with g non-vanishing on the admissible domain, as far as SymPy can prove.

    Returns:
        (``"equal"`` or ``"different"``, g when it is a valid factor, the first factor of the ratio SymPy cannot show
        to be sign-definite).
    """
    if symvae == 0:
        return ("equal" if sp.cancel(yours) == 0 else "different"), None, None
    ratio = sp.cancel(sp.together(yours / symvae))
    if ratio.has(sp.Function) or any(not p.exp.is_Integer for p in ratio.atoms(sp.Pow)):
        ratio = sp.simplify(ratio)
    if ratio == 0:
        return "different", None, sp.Integer(0)
    if not ratio.free_symbols:
        return "equal", ratio, None
    subs = _sign_substitutions(system)
    num, den = sp.fraction(sp.factor(ratio))
    for part in sp.Mul.make_args(num) + sp.Mul.make_args(den):
        base, _ = part.as_base_exp()
        if base.is_Number:
            continue
        if not _sign_definite(base, subs):
            return "different", None, base
    return "equal", ratio, None


# ---------------------------------------------------------------------------------------------------- numeric test
@dataclasses.dataclass(frozen=True)
class ResidualComparison:
    """The outcome of comparing two residuals.

    Attributes:
        verdict: ``equal``, ``different`` or ``inconclusive``.
        checks: ``symbolic``, ``float64``, ``mpmath50`` -> equal / different / unavailable.
        factor: yours / symvae's when SymPy found a valid factor, else None.
        witness: a point showing a difference (mpmath values of both residuals there).
        witness_kind: ``"root_of_symvae"`` (symvae's equation holds there, yours does not), ``"root_of_yours"``, or
            ``"sign"`` (the ratio changes sign or one residual vanishes alone).
        note: a remark (why inconclusive, an unproven factor, float64 disagreeing).
        points_used: random points at which both residuals could be evaluated.
        roots_checked: line roots at which the zero sets were compared.
    """

    verdict: str
    checks: Mapping[str, str]
    factor: sp.Expr | None
    witness: Witness | None
    witness_kind: str | None
    note: str | None
    points_used: int
    roots_checked: int


def _root_variables(expr: sp.Expr, unknowns: Sequence[sp.Symbol], constrained: Mapping[sp.Symbol, str],
                    domain=()) -> list[sp.Symbol]:
    """Unknowns of ``expr`` to solve along: unconstrained (K, H), then overlaps (``domain``), low degree first."""
    num = sp.numer(sp.together(expr))
    found = [u for u in unknowns if u in num.free_symbols]

    def degree(u):
        try:
            return sp.degree(num, u)
        except (sp.PolynomialError, ValueError):
            return 99
    return sorted(found, key=lambda u: (u in constrained, u in domain, degree(u), u.name))


def _line_roots(expr: sp.Expr, point: Mapping[sp.Symbol, sp.Rational], var: sp.Symbol,
                constrained: Mapping[sp.Symbol, str]) -> list[sp.Expr] | None:
    """Admissible real roots of ``expr`` along ``var`` with every other symbol at ``point`` (None: not polynomial)."""
    others = {s: v for s, v in point.items() if s != var}
    g = sp.together(expr.xreplace(others))
    num, den = sp.fraction(g)
    try:
        poly = sp.Poly(sp.expand(num), var)
    except sp.PolynomialError:
        return None
    if poly.degree() <= 0:
        return None if poly.is_zero else []
    if not all(c.is_Rational for c in poly.all_coeffs()):
        return None
    if poly.degree() == 1:
        a, b = poly.all_coeffs()
        candidates = [-b / a]
    else:
        with mpmath.workdps(MPMATH_DPS + 20):
            coeffs = [mpmath.mpf(int(c.p)) / int(c.q) for c in poly.all_coeffs()]
            try:
                roots = mpmath.polyroots(coeffs, maxsteps=200, extraprec=200)
            except mpmath.libmp.libhyper.NoConvergence:
                return None
            candidates = [sp.Float(mpmath.nstr(r.real, MPMATH_DPS + 10), MPMATH_DPS + 10) for r in roots
                          if abs(mpmath.im(r)) < mpmath.mpf(10) ** -(MPMATH_DPS)]
    out = []
    for r in candidates:
        kind = constrained.get(var)
        if (kind == "positive" and not r > 0) or (kind == "nonnegative" and r < 0):
            continue
        if den.has(var) and den.xreplace({var: r}).evalf(MPMATH_DPS) == 0:
            continue
        out.append(r)
    return out


def _mp(value) -> mpmath.mpf:
    if isinstance(value, sp.Rational):
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(str(value))


def compare_residuals(yours: sp.Expr, symvae: sp.Expr, system: TargetSystem,
                      points: Sequence[Mapping[sp.Symbol, sp.Rational]], *, needed: int = 8,
                      root_points: int = 3, display=readable) -> ResidualComparison:
    """Compare two saddle-point residuals (module docstring): equal iff yours = g * symvae, g non-vanishing.

    Arguments:
        yours, symvae: the residuals, in symvae's symbols.
        system: the statics system (domain of the symbols).
        points: candidate random admissible points.
        needed: number of points of the sign test.
        root_points: number of points through which lines are solved for the zero-set test.
        display: turns an expression into text for notes (e.g. in the user's symbols).

    Returns:
        The ``ResidualComparison``.
    """
    symbolic, factor, unproven = exact_factor(yours, symvae, system)
    factor_note = None
    if unproven is not None and unproven != 0:
        text = display(unproven)
        factor_note = (f"the ratio of the residuals has the factor {text}, which SymPy cannot show to be "
                       f"non-vanishing on the admissible domain") if len(text) <= 100 else \
            "the ratio of the residuals has a factor SymPy cannot show to be non-vanishing on the admissible domain"
    unknowns = list(system.equations)
    constrained = _constrained(system)
    variables = sorted(set(yours.free_symbols) | set(symvae.free_symbols) | set(unknowns) | set(system.params),
                       key=lambda s: s.name)
    (f_y, f_s), (m_y, m_s) = _lambdas([yours, symvae], variables)

    def evaluate(point):
        args = [point[v] for v in variables]
        with mpmath.workdps(MPMATH_DPS):
            margs = [_mp(a) for a in args]
            a, b = mpmath.mpf(m_y(*margs)), mpmath.mpf(m_s(*margs))
        af, bf = float64_pair(f_y, f_s, args)
        return a, b, af, bf

    shown_symbols = set(yours.free_symbols) | set(symvae.free_symbols)

    def Witness(point, a, b):  # noqa: N802 -- the witness lists only the symbols of the two residuals
        return _Witness({s: v for s, v in point.items() if s in shown_symbols}, a, b)

    mp_verdict = f_verdict = "equal"
    witness = kind = None
    used = roots_checked = 0
    signs: list[tuple[int, Mapping, Any, Any]] = []
    f_signs: set[int] = set()
    scale_of: list[tuple[Mapping, Any, Any]] = []
    for point in points:
        if used >= needed:
            break
        try:
            a, b, af, bf = evaluate(point)
        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
            continue
        if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
            continue
        used += 1
        scale_of.append((point, abs(a), abs(b)))
        zero_a = abs(a) <= MP_ZERO * max(1, abs(b))
        zero_b = abs(b) <= MP_ZERO * max(1, abs(a))
        if zero_a and zero_b:
            continue
        if zero_a != zero_b:
            mp_verdict = "different"
            witness, kind = witness or Witness(dict(point), a, b), kind or "sign"
            if math.isfinite(af) and math.isfinite(bf) and (abs(af) <= F64_ZERO * max(1.0, abs(bf))) != \
                    (abs(bf) <= F64_ZERO * max(1.0, abs(af))):
                f_verdict = "different"
            continue
        signs.append((int(mpmath.sign(a / b)), point, a, b))
        if math.isfinite(af) and math.isfinite(bf):
            zero_af = abs(af) <= F64_ZERO * max(1.0, abs(bf))
            zero_bf = abs(bf) <= F64_ZERO * max(1.0, abs(af))
            if zero_af != zero_bf:
                f_verdict = "different"
            elif not zero_af:
                f_signs.add(int(np.sign(af / bf)))
    if len({s for s, *_ in signs}) > 1:
        mp_verdict = "different"
        minority = min((s for s, *_ in signs), key=lambda s: sum(1 for x, *_ in signs if x == s))
        _, point, a, b = next(x for x in signs if x[0] == minority)
        witness, kind = witness or Witness(dict(point), a, b), kind or "sign"
    if len(f_signs) > 1:
        f_verdict = "different"

    # zero sets along lines through a few points
    directions = (("root_of_symvae", symvae, m_y, f_y), ("root_of_yours", yours, m_s, f_s))
    admissible = _gram_check(system)
    for point, size_y, size_s in scale_of[:root_points]:
        for label, residual, m_other, f_other in directions:
            size = size_y if label == "root_of_symvae" else size_s
            for var in _root_variables(residual, unknowns, constrained, system.table.overlap_pairs)[:4]:
                roots = _line_roots(residual, point, var, constrained)
                if roots is None:
                    continue
                before = roots_checked
                for root in roots:
                    moved = dict(point)
                    moved[var] = root
                    if admissible is not None and var in system.table.overlap_pairs and not admissible(moved):
                        continue
                    args = [moved[v] for v in variables]
                    try:
                        with mpmath.workdps(MPMATH_DPS):
                            value = mpmath.mpf(m_other(*[_mp(x) for x in args]))
                    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
                        continue
                    if not mpmath.isfinite(value):
                        continue
                    roots_checked += 1
                    if abs(value) > MP_ZERO * max(1, size):
                        mp_verdict = "different"
                        if witness is None or kind == "sign":
                            zero = mpmath.mpf(0)
                            pair = (value, zero) if label == "root_of_symvae" else (zero, value)
                            witness, kind = Witness(moved, *pair), label
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            fv = float(f_other(*[np.float64(float(x)) for x in args]))
                        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
                            fv = math.nan
                    if math.isfinite(fv) and abs(fv) > F64_ZERO * max(1.0, float(size)):
                        f_verdict = "different"
                if roots_checked > before:
                    break  # one variable per direction and point is enough
    if used == 0:
        mp_verdict = f_verdict = "unavailable"
    elif roots_checked == 0 and mp_verdict == "equal":
        mp_verdict = f_verdict = "unavailable"
    checks = {"symbolic": symbolic, "float64": f_verdict, "mpmath50": mp_verdict}

    note = None
    if symbolic == mp_verdict:
        verdict = symbolic
        if f_verdict not in (symbolic, "unavailable"):
            note = ("float64 says " + f_verdict + (" (the difference is below its resolution)"
                                                   if symbolic == "different" else
                                                   " (round-off); the exact and 50-digit tests agree"))
    elif mp_verdict == "unavailable":
        verdict = "inconclusive"
        note = "no admissible point or line root could be evaluated"
    elif symbolic == "different":
        verdict = "inconclusive"
        note = (f"{factor_note or 'SymPy found no non-vanishing factor between the residuals'}, but numerically "
                f"their zero sets coincide ({roots_checked} line roots) and their ratio keeps its sign at {used} "
                f"points")
    else:
        verdict = "inconclusive"
        note = "SymPy found a non-vanishing factor between the residuals, but they differ numerically"
    return ResidualComparison(verdict, checks, factor, witness, kind, note, used, roots_checked)


# ---------------------------------------------------------------------------------------------------- presentation
def _scale(yours: sp.Expr, symvae: sp.Expr) -> sp.Expr:
    """The most common ratio of coefficients of the monomials both expanded numerators share (1 if none)."""
    def table(e):
        out = {}
        for term in sp.Add.make_args(sp.expand(e)):
            c, mono = term.as_coeff_Mul()
            out[mono] = out.get(mono, 0) + c
        return out
    a, b = table(yours), table(symvae)
    ratios = Counter(a[m] / b[m] for m in a if m in b and b[m] != 0 and a[m] != 0)
    if not ratios:
        return sp.Integer(1)
    return ratios.most_common(1)[0][0]


def normalised_difference(form: str, yours: sp.Expr, symvae: sp.Expr, target: sp.Symbol | None,
                          rhs: sp.Expr | None) -> tuple[sp.Expr, sp.Expr, sp.Expr, str]:
    """How to show a difference: (yours, symvae's, symvae's minus yours, what is compared).

    A fixed-point equation ``x = rhs`` is compared with symvae's equation solved for x when that is linear in x;
    otherwise the residuals are compared after scaling yours by the most common coefficient ratio.
    """
    if form == "value" and target is not None and rhs is not None:
        num = sp.numer(sp.together(symvae))
        try:
            poly = sp.Poly(sp.expand(num), target)
        except sp.PolynomialError:
            poly = None
        if poly is not None and poly.degree() == 1:
            a, b = poly.all_coeffs()
            solved = sp.cancel(-b / a)
            return rhs, solved, sp.cancel(sp.together(solved - rhs)), "right-hand side"
    c = _scale(yours, symvae)
    scaled = sp.expand(yours / c)
    what = "residual" if c == 1 else f"residual (divided by {readable(c)})"
    return scaled, symvae, sp.cancel(sp.together(symvae - scaled)), what


def _signed(text: str) -> str:
    """``a - b`` -> ``+ a - b``; ``-a`` -> ``- a``."""
    return f"- {text[1:].lstrip()}" if text.startswith("-") else f"+ {text}"


# ---------------------------------------------------------------------------------------------------- the checker
def check_statics(hand, *, points: int = 8, seed: int = 0, allow_missing: bool = False):
    """Check a statics hand derivation (saddle-point equations and/or a free energy); see ``symvae.check.check``."""
    system, namespace = hand.system, hand.namespace
    plain = namespace.plain_symbols()
    for block in system.extra_blocks.values():
        for sym in block:
            plain.setdefault(sym, sp.Symbol(system.display_name(sym)))
    late = frozenset({u.name for s in system.element_of if s in plain for u in plain[s].free_symbols}
                     | set(hand.definitions))
    show = lambda e: readable(e.xreplace(plain), late)  # noqa: E731
    candidates = PointSampler(system, seed).draw_many(3 * points)
    results: list[EquationResult] = []
    covered: set[sp.Symbol] = set()
    notes: list[str] = []

    def result(name, eq_line, source, form, yours, target, rhs, comparison, extra_note=None):
        note = "; ".join(n for n in (extra_note, comparison.note) if n) or None
        if comparison.verdict == "equal":
            if comparison.factor is not None and comparison.factor != 1:
                factor_text = show(comparison.factor)
                if not (comparison.factor.is_Atom or comparison.factor.is_Pow):
                    factor_text = f"({factor_text})"
                if len(factor_text) <= 60:
                    note = "; ".join(n for n in (note, f"your residual = {factor_text} x symvae's") if n)
            return EquationResult(name, "equal", eq_line, source, "", "0", "0", checks=comparison.checks,
                                  note=note)
        derived = system.equations[target] if target is not None else sp.Integer(0)
        y, s, difference, what = normalised_difference(form, yours, derived, target, rhs)
        shown = difference.xreplace(plain)
        changes = term_changes(y, s) if difference != 0 else {"missing": [], "extra": [], "changed": []}
        if comparison.verdict == "inconclusive":
            message = f"{name}: inconclusive: {comparison.note}"
        elif difference == 0:
            message = f"{name}: your {what} agrees with symvae's only up to a factor that vanishes or changes sign"
        elif len(format_sum(shown, late)) > 240:
            count = len(sp.Add.make_args(sp.expand(sp.numer(sp.together(shown)))))
            message = f"{name}: your {what} differs from symvae's by an expression of {count} terms (see difference)"
        elif changes["extra"] and not changes["missing"] and not changes["changed"]:
            message = f"{name}: your {what} has an extra {_signed(format_sum(-shown, late))}"
        else:
            message = f"{name}: your {what} lacks {_signed(format_sum(shown, late))}"
        if comparison.witness_kind == "root_of_symvae":
            note = "; ".join(n for n in ("the witness is a point where symvae's equation holds and yours does not",
                                         note) if n)
        elif comparison.witness_kind == "root_of_yours":
            note = "; ".join(n for n in ("the witness is a point where your equation holds and symvae's does not",
                                         note) if n)
        variables = tuple(sorted((u.name for u in shown.free_symbols), key=str.lower))
        witness = witness_json(comparison.witness, plain) if comparison.witness else None
        terms = {"missing": [show(t) for t in changes["missing"]], "extra": [show(t) for t in changes["extra"]],
                 "changed": [{"term": show(m), "yours": readable(a), "symvae": readable(b)}
                             for m, a, b in changes["changed"]]}
        return EquationResult(name, comparison.verdict, eq_line, source, message, format_sum(shown, late),
                              sp.latex(shown, symbol_names=namespace.latex_symbols()), None, variables, terms,
                              witness, comparison.checks, note, show(y), show(s))

    def best_match(residual, exclude=()):
        """The first of symvae's equations the residual is equivalent to, else the one it differs least from."""
        fallback = None
        for sym, derived in system.equations.items():
            if sym in exclude:
                continue
            comparison = compare_residuals(residual, derived, system, candidates, needed=points, display=show)
            if comparison.verdict == "equal":
                return sym, comparison
            _, _, difference, _ = normalised_difference("residual", residual, derived, sym, None)
            size = len(sp.Add.make_args(sp.expand(sp.numer(difference))))
            if fallback is None or size < fallback[0]:
                fallback = (size, sym, comparison)
        return (fallback[1], fallback[2]) if fallback else (None, None)

    # -- the free energy
    if hand.free_energy is not None and system.free_energy is not None:
        mine, theirs = hand.free_energy, system.free_energy
        name = hand.free_energy_name
        difference = sp.expand(theirs - mine)
        unknowns = list(system.equations)
        constant_exactly = all(sp.cancel(sp.together(sp.diff(difference, u))) == 0 for u in unknowns)
        f_diff = sp.lambdify(sorted(difference.free_symbols | set(unknowns) | set(system.params),
                                    key=lambda s: s.name), difference, modules="mpmath")
        order = sorted(difference.free_symbols | set(unknowns) | set(system.params), key=lambda s: s.name)
        sampler = PointSampler(system, seed + 1)
        constant_numerically, witness = True, None
        with mpmath.workdps(MPMATH_DPS):
            for p in candidates[:points]:
                q = sampler.draw()
                q.update({s: p[s] for s in system.params})
                vp, vq = (mpmath.mpf(f_diff(*[_mp(x[s]) for s in order])) for x in (p, q))
                if abs(vp - vq) > MP_ZERO * max(1, abs(vp)):
                    constant_numerically = False
                    witness = witness or p
        grads = {u: sp.diff(mine, u) for u in unknowns}
        if not any(mine.has(s) for b in system.extra_blocks.values() for s in b):
            blocks = ", ".join(system.extra_blocks)
            notes.append(f"your free energy does not contain the conjugate unknowns {blocks}: symvae's saddle point "
                         f"is over the order parameters and {blocks} (K = (eta chi)^-1, h = H omega; see "
                         f"derivations/statics/README.md), so the comparison requires them; if you eliminated them, "
                         f"write f before extremising over them")
        checks = {"symbolic": "equal" if constant_exactly else "different",
                  "mpmath50": "equal" if constant_numerically else "different"}
        if constant_exactly and constant_numerically:
            const = sp.simplify(difference)
            note = None if const == 0 else f"differs from symvae's by a constant: {show(const)}"
            results.append(EquationResult(name, "equal", hand.free_energy_line, name, "", "0", "0", checks=checks,
                                          note=note))
        else:
            verdict = "different" if constant_exactly == constant_numerically else "inconclusive"
            shown = difference.xreplace(plain)
            wit = None
            if witness is not None:
                with mpmath.workdps(MPMATH_DPS):
                    fy = sp.lambdify(order, mine, modules="mpmath")
                    fs = sp.lambdify(order, theirs, modules="mpmath")
                    args = [_mp(witness[s]) for s in order]
                    wit = witness_json(Witness(dict(witness), mpmath.mpf(fy(*args)), mpmath.mpf(fs(*args))), plain)
            message = (f"{name}: yours differs from symvae's by a non-constant term: your {name} lacks "
                       f"{format_sum(shown, late)}") if verdict == "different" else \
                f"{name}: inconclusive: the exact and 50-digit tests of a constant difference disagree"
            results.append(EquationResult(
                name, verdict, hand.free_energy_line, name, message, format_sum(shown, late),
                sp.latex(shown, symbol_names=namespace.latex_symbols()), None,
                tuple(sorted((u.name for u in shown.free_symbols), key=str.lower)), None, wit, checks,
                "the saddle-point equations df/dx below say which stationarity conditions change", show(mine),
                show(theirs)))
        for u, grad in grads.items():
            comparison = compare_residuals(grad, system.equations[u], system, candidates, needed=points, display=show)
            eq_name = system.equation_name(u)
            extra = None
            if grad == 0:
                extra = f"your {name} does not depend on {show(u)}"
            results.append(result(eq_name, hand.free_energy_line, f"d{name}/d{show(u)}", "partial", grad, u, None,
                                  comparison, extra))
            covered.add(u)
    elif hand.free_energy is not None:
        notes.append("symvae has no free energy for this model; your f is not checked")

    # -- the saddle-point equations
    for eq in hand.equations:
        if eq.rhs is None or (eq.target is None and eq.form != "residual"):
            results.append(EquationResult(eq.name, "extra", eq.line, eq.source, f"not an equation of the model: "
                                          f"{eq.note}", note=eq.note))
            continue
        residual = eq.rhs if eq.form in ("partial", "residual") else eq.target - eq.rhs
        if eq.target is None:  # an untagged residual: find the equation it is
            sym, comparison = best_match(residual)
            if sym is None:
                results.append(EquationResult(eq.name, "extra", eq.line, eq.source, "no saddle-point equation"))
                continue
            if comparison.verdict == "equal":
                covered.add(sym)
                results.append(result(system.equation_name(sym), eq.line, eq.source, "residual", residual, sym, None,
                                      comparison, f"matched automatically: your residual on line {eq.line} is "
                                                  f"symvae's {system.equation_name(sym)}"))
            else:
                r = result(eq.name, eq.line, eq.source, "residual", residual, sym, None, comparison,
                           f"equivalent to none of symvae's saddle-point equations; closest: "
                           f"{system.equation_name(sym)} (shown); name the unknown with \\tag{{...}}")
                results.append(r)
            continue
        covered.add(eq.target)
        target = eq.target
        comparison = compare_residuals(residual, system.equations[eq.target], system, candidates, needed=points,
                                       display=show)
        extra_note = None
        name = eq.name
        if comparison.verdict != "equal" and eq.form == "value":
            other, other_cmp = best_match(residual, exclude={eq.target})
            if other is not None and other_cmp.verdict == "equal":
                covered.discard(eq.target)
                covered.add(other)
                name, comparison, target = system.equation_name(other), other_cmp, other
                extra_note = (f"your {eq.source} = ... (line {eq.line}) is symvae's {name} solved for "
                              f"{eq.source}")
        results.append(result(name, eq.line, eq.source, eq.form, residual, target, eq.rhs, comparison, extra_note))
    for sym, rhs in system.equations.items():
        if sym not in covered:
            name = system.equation_name(sym)
            results.append(EquationResult(name, "missing", message=f"{name}: not in the file; symvae derives "
                                                                    f"{name} = {show(rhs)}", symvae=show(rhs)))
    users = [e.rhs for e in hand.equations if isinstance(e.rhs, sp.Expr)]
    conj = [s for b in system.extra_blocks.values() for s in b]
    by_name = {system.equation_name(x): x for x in system.equations}
    needs_conj = any(r.verdict in ("different", "inconclusive") and r.name in by_name and system.equations[by_name[r.name]].has(*conj)
                     for r in results) if conj else False
    if users and needs_conj and not any(u.has(s) for u in users for s in conj) and hand.free_energy is None:
        blocks = ", ".join(system.extra_blocks)
        notes.append(f"your equations do not use the conjugate unknowns {blocks}: symvae's saddle-point equations "
                     f"are written with them (see derivations/statics/README.md), so the comparison requires them; "
                     f"equations with {blocks} eliminated cannot be matched to symvae's")
    header = hand.header
    return CheckReport(os.fspath(hand.path), header.setting, header.variant, hand.model.M, hand.model.M_star,
                       tuple(results), allow_missing, points, seed, tuple(notes))
