"""Comparing two right-hand sides in two independent ways, and describing how they differ.

1. Symbolic: the difference is canonicalised (``expand``, ``together``, ``cancel``; ``simplify`` as a fallback when
   functions other than powers are involved) and tested against 0.
2. Numeric: both sides are evaluated, separately, at random admissible points (overlaps that are Gram matrices of
   actual vectors with an orthonormal teacher, positive variances, step sizes and strengths), in float64 and in
   mpmath with 50 digits; the sides agree if they agree at every point to 1e-9 (float64) / 1e-40 (mpmath) relative.

The verdict is the common answer of the symbolic and the 50-digit test; if they disagree, it is ``inconclusive`` and
the reason is said. float64 is a third opinion: its disagreement is reported as a note, never decides.
"""
from __future__ import annotations

import dataclasses
import math
import random
import warnings
from typing import Callable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from ._settings import TargetSystem

__all__ = ["PointSampler", "Comparison", "Witness", "compare", "canonical_difference", "term_table", "readable"]

FLOAT64_RTOL = 1e-9
MPMATH_DPS = 50
MPMATH_RTOL = mpmath.mpf(10) ** -40


def float64_pair(f_a: Callable, f_b: Callable, args: Sequence) -> tuple[float, float]:
    """Both lambdified functions at ``args`` in float64; (nan, nan) where either fails (warnings silenced)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fargs = [np.float64(float(a)) for a in args]
        try:
            return float(f_a(*fargs)), float(f_b(*fargs))
        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
            return math.nan, math.nan


def canonical_difference(expr: sp.Expr) -> sp.Expr:
    """Canonical form of a difference: 0 iff it vanishes identically (as far as SymPy can tell).

    Arguments:
        expr: the difference of two right-hand sides.

    Returns:
        ``cancel(together(expand(expr)))``, or its ``simplify`` if that is 0 while the former is not (functions
        such as tanh, exp, sqrt defeat rational canonicalisation).
    """
    diff = sp.cancel(sp.together(sp.expand(expr)))
    if diff != 0 and (diff.atoms(sp.Function) or any(not p.exp.is_Integer for p in diff.atoms(sp.Pow))):
        simplified = sp.simplify(diff)
        if simplified == 0:
            return sp.Integer(0)
    return diff


# ---------------------------------------------------------------------------------------------------- points
class PointSampler:
    """Random admissible points of a model's symbols, as exact dyadic rationals (exact in float64 and mpmath).

    Overlaps are inner products of random vectors (entries in {-1, -3/4, ..., 1}) with an orthonormal teacher, so
    Q, Q~ are Gram matrices and m, m~, R are consistent with them. D, sigma^2, strengths rho, eta, beta, other
    parameters lie in [1/4, 2]; step sizes and weight decays in [1/8, 1]; a batch size b in {1, ..., 4}; t in [0, 4].
    Extra (statics) blocks: a symmetric one (K) is a positive-definite Gram matrix plus I/4, others (H) have entries
    in [-2, 2].

    Arguments:
        system: the derived system whose symbols to sample.
        seed: seed of the random generator (a check is reproducible).
    """

    def __init__(self, system: TargetSystem, seed: int = 0):
        self.system = system
        self.rng = random.Random(seed)

    def _dyadic(self, low: int, high: int, denominator: int) -> sp.Rational:
        return sp.Rational(self.rng.randint(low, high), denominator)

    def _parameter(self, sym: sp.Symbol) -> sp.Rational:
        name = sym.name
        if name == "t":
            return self._dyadic(0, 16, 4)
        if name == "b":
            return sp.Integer(self.rng.randint(1, 4))
        if name.startswith(("tau", "lam")):
            return self._dyadic(1, 8, 8)
        return self._dyadic(2, 16, 8)

    def draw(self) -> dict[sp.Symbol, sp.Rational]:
        """One point: every order-parameter symbol and parameter of the system -> a value."""
        T = self.system.table
        M, Ms = T.M, T.M_star
        dim = 2 * M + Ms + 2
        vectors = {}
        for v in T.trainable:
            vectors[v] = [self._dyadic(-4, 4, 4) for _ in range(dim)]
        for k, v in enumerate(T.teacher):
            vectors[v] = [sp.Integer(int(i == k)) for i in range(dim)]
        point: dict[sp.Symbol, sp.Rational] = {}
        for sym, (u, w) in T.overlap_pairs.items():
            point[sym] = sum((a * b for a, b in zip(vectors[u], vectors[w])), sp.Integer(0))
        for sym in T.D:
            point[sym] = self._dyadic(2, 16, 8)
        if isinstance(T.sigma2, sp.Symbol):
            point[T.sigma2] = self._dyadic(2, 16, 8)
        for block, value in getattr(self.system, "extra_blocks", {}).items():
            P = value.rows
            if block == "K":  # K: a positive-definite Gram matrix plus 1/4 I
                vecs = [[self._dyadic(-4, 4, 4) for _ in range(P)] for _ in range(P)]
                for i in range(P):
                    for j in range(P):
                        entry = sum((a * b for a, b in zip(vecs[i], vecs[j])), sp.Integer(0))
                        point.setdefault(value[i, j], entry + (sp.Rational(1, 4) if i == j else 0))
            else:  # H: any real matrix
                for sym in value:
                    point.setdefault(sym, self._dyadic(-8, 8, 4))
        for sym in self.system.params:
            point.setdefault(sym, self._parameter(sym))
        return point

    def draw_many(self, count: int) -> list[dict[sp.Symbol, sp.Rational]]:
        return [self.draw() for _ in range(count)]


# ---------------------------------------------------------------------------------------------------- comparison
@dataclasses.dataclass(frozen=True)
class Witness:
    """A point where the two right-hand sides differ, with both values (mpmath, 50 digits)."""

    point: Mapping[sp.Symbol, sp.Rational]
    yours: mpmath.mpf
    symvae: mpmath.mpf

    @property
    def difference(self) -> mpmath.mpf:
        return self.symvae - self.yours


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of comparing the user's right-hand side with symvae's.

    Attributes:
        verdict: ``"equal"``, ``"different"`` or ``"inconclusive"`` (the symbolic and the numeric test disagree).
        checks: each test's own answer: ``symbolic``, ``float64``, ``mpmath50`` -> equal/different/unavailable.
        difference: symvae's minus the user's right-hand side, canonicalised (0 when equal).
        witness: a point where they differ (largest discrepancy), when the numeric test found one.
        note: an explanation when the tests disagree.
        points_used: number of points at which both sides could be evaluated.
    """

    verdict: str
    checks: Mapping[str, str]
    difference: sp.Expr
    witness: Witness | None
    note: str | None
    points_used: int


def _lambdas(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol]):
    f64 = [sp.lambdify(variables, e, modules="numpy") for e in exprs]
    mp = [sp.lambdify(variables, e, modules="mpmath") for e in exprs]
    return f64, mp


def compare(yours: sp.Expr, symvae: sp.Expr, points: Sequence[Mapping[sp.Symbol, sp.Rational]], *,
            needed: int = 8, canonicalize: Callable[[sp.Expr], sp.Expr] = canonical_difference) -> Comparison:
    """Compare two right-hand sides symbolically and numerically.

    Arguments:
        yours: the user's right-hand side, in symvae's symbols.
        symvae: symvae's right-hand side.
        points: candidate evaluation points (more than ``needed``: points where a side is singular are skipped).
        needed: number of points to use.
        canonicalize: the symbolic canonicaliser (replaceable, e.g. to test the ``inconclusive`` path).

    Returns:
        The ``Comparison``.
    """
    difference = canonicalize(symvae - yours)
    symbolic = "equal" if difference == 0 else "different"

    variables = sorted(set(yours.free_symbols) | set(symvae.free_symbols), key=lambda s: s.name)
    (f_yours, f_symvae), (m_yours, m_symvae) = _lambdas([yours, symvae], variables)
    float_verdict, mp_verdict = "equal", "equal"
    used = 0
    worst: tuple[float, Witness] | None = None
    for point in points:
        if used >= needed:
            break
        args = [point[v] for v in variables]
        try:
            with mpmath.workdps(MPMATH_DPS):
                margs = [mpmath.mpf(int(a.p)) / int(a.q) for a in args]
                a_mp, b_mp = mpmath.mpf(m_yours(*margs)), mpmath.mpf(m_symvae(*margs))
                if not (mpmath.isfinite(a_mp) and mpmath.isfinite(b_mp)):
                    continue
                scale = max(mpmath.mpf(1), abs(a_mp), abs(b_mp))
                gap = abs(a_mp - b_mp) / scale
                mp_differs = gap > MPMATH_RTOL
        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
            continue
        a_f, b_f = float64_pair(f_yours, f_symvae, args)
        used += 1
        if mp_differs:
            mp_verdict = "different"
            witness = Witness(dict(zip(variables, args)), a_mp, b_mp)
            if worst is None or gap > worst[0]:
                worst = (gap, witness)
        if math.isfinite(a_f) and math.isfinite(b_f):
            if abs(a_f - b_f) > FLOAT64_RTOL * max(1.0, abs(a_f), abs(b_f)):
                float_verdict = "different"
    if used == 0:
        float_verdict = mp_verdict = "unavailable"
    checks = {"symbolic": symbolic, "float64": float_verdict, "mpmath50": mp_verdict}

    note = None
    if symbolic == mp_verdict:
        verdict = symbolic
        if float_verdict not in (symbolic, "unavailable"):
            note = (f"float64 says {float_verdict} (the difference is below its resolution)" if symbolic == "different"
                    else "float64 round-off exceeded its tolerance; exact and 50-digit tests agree")
    elif mp_verdict == "unavailable":
        verdict = "inconclusive"
        note = "no admissible point could be evaluated (a side is singular everywhere it was tried)"
    elif symbolic == "different":
        verdict = "inconclusive"
        note = (f"the exact difference did not canonicalise to 0, but both sides agree to 50 digits at all {used} "
                f"points: simplification may have failed")
    else:
        verdict = "inconclusive"
        note = "the exact difference canonicalised to 0, but the sides differ numerically (a singular point?)"
    return Comparison(verdict, checks, difference, worst[1] if worst else None, note, used)


# ---------------------------------------------------------------------------------------------------- presentation
def readable(expr, late: frozenset = frozenset(), early: frozenset = frozenset()) -> str:
    """A compact plain-text form in the order theorists write: ``tau^2 eta (eta Q_tilde + rho m_tilde^2)``.

    Arguments:
        expr: the expression (symbols already renamed to the user's spelling).
        late: names of symbols written after the parameters in products (order parameters, definitions).
        early: names of symbols written first (step sizes; ``tau`` and ``tau_*`` always are).

    Returns:
        The text, with ``^`` for powers and spaces for products.
    """
    expr = sp.sympify(expr, strict=True)  # strict: never parses text

    def rank(factor):
        base = factor.base if factor.is_Pow else factor
        if base.is_Add:
            return 3
        names = {s.name for s in base.free_symbols}
        if not names:
            return 1
        if all(n == "tau" or n.startswith("tau_") or n in early for n in names):
            return 0
        return 2 if names & late else 1

    def atom(e, parenthesize_mul=False):
        text = show(e)
        if e.is_Add or (parenthesize_mul and (e.is_Mul or (e.is_Number and e < 0) or e.is_Rational and
                                               not e.is_Integer)):
            return f"({text})"
        return text

    def power(e):
        base, exp = e.as_base_exp()
        if exp == sp.Rational(1, 2):
            return f"sqrt({show(base)})"
        exp_text = show(exp)
        if not (exp.is_Integer and exp >= 0) and not exp.is_Symbol:
            exp_text = f"({exp_text})"
        return f"{atom(base, True)}^{exp_text}"

    def product(factors):
        ordered = sorted(factors, key=lambda f: (rank(f), sp.default_sort_key(f)))
        return " ".join(power(f) if f.is_Pow else atom(f, len(ordered) > 1 and f.is_Add) for f in ordered)

    def mul_text(coeff, factors):
        if coeff < 0:
            return "-" + mul_text(-coeff, factors)
        numer, denom = [], []
        for f in factors:
            b, x = f.as_base_exp()
            if x.is_Number and x < 0:
                denom.append(b if x == -1 else b ** (-x))
            else:
                numer.append(f)
        p, q = sp.fraction(coeff)
        num_text = product(numer) if numer else ""
        if p != 1 or not num_text:
            num_text = f"{p} {num_text}".strip() if num_text else str(p)
        if q != 1:
            denom.insert(0, q)
        if not denom:
            return num_text
        den_text = product(denom) if len(denom) == 1 else f"({product(denom)})"
        return f"{num_text}/{den_text}"

    def show(e):
        if e.is_Add:
            out = ""
            for k, term in enumerate(e.as_ordered_terms()):
                text = show(term)
                if k == 0:
                    out = text
                elif text.startswith("-"):
                    out += " - " + text[1:].lstrip()
                else:
                    out += " + " + text
            return out
        if e.is_Mul:
            coeff, rest = e.as_coeff_Mul()
            return mul_text(coeff, sp.Mul.make_args(rest) if rest != 1 else ())
        if e.is_Pow:
            b, x = e.as_base_exp()
            if x.is_Number and x < 0:
                return f"1/{power(b ** (-x)) if x != -1 else atom(b, True)}"
            return power(e)
        if e.is_Rational and not e.is_Integer:
            return f"{e.p}/{e.q}"
        return sp.sstr(e).replace("**", "^").replace("*", " ")

    return show(expr)


def _is_step(sym: sp.Symbol) -> bool:
    return sym.name == "tau" or sym.name.startswith("tau_")


def arrange(expr: sp.Expr, steps=None) -> list[tuple[int, sp.Expr]]:
    """The difference arranged for reading: grouped by powers of the step sizes, each group factorised.

    Arguments:
        expr: the difference.
        steps: the step-size symbols (default: the symbols named ``tau`` or ``tau_*``).

    Returns:
        (sign, group) pairs, highest order first, with sum(sign * group) == ``expr``; the sign is -1 when most terms
        of a group are negative, so that it reads ``- tau (a + b)`` rather than ``+ tau (-a - b)``.
    """
    expr = sp.expand(expr)
    steps = sorted((s for s in expr.free_symbols if (_is_step(s) if steps is None else s in steps)),
                   key=lambda s: s.name)
    groups = {sp.Integer(1): expr}
    if steps:
        try:
            groups = sp.collect(expr, steps, evaluate=False, exact=False)
        except Exception:  # collect refuses some non-polynomial forms
            pass
    ordered = sorted(groups.items(), key=lambda kv: -sp.Poly(kv[0], *steps).total_degree()
                     if steps and kv[0].is_polynomial(*steps) else 0)
    out = []
    for key, value in ordered:
        sign, factored = _signed_factor(value)
        out.append((sign, sp.Mul(*_flat_factors(factored * key if key == 1 else factored, key), evaluate=False)))
    return out


def _mostly_negative(expr: sp.Expr) -> bool:
    terms = sp.Add.make_args(expr)
    return 2 * sum(t.could_extract_minus_sign() for t in terms) > len(terms)


def _signed_factor(value: sp.Expr) -> tuple[int, sp.Expr]:
    """``factor`` with the sign pulled out of sums that are mostly negative: (sign, unevaluated product)."""
    factored = sp.factor(value)
    sign, args = 1, []
    for arg in sp.Mul.make_args(factored):
        base, exp = arg.as_base_exp()
        if arg.is_Number and arg < 0:
            sign, arg = -sign, -arg
        elif base.is_Add and exp.is_Integer and _mostly_negative(base):
            base = sp.Add(*[-t for t in base.args])
            arg = sp.Pow(base, exp, evaluate=False) if exp != 1 else base
            if exp % 2:
                sign = -sign
        args.append(arg)
    return sign, sp.Mul(*args, evaluate=False) if len(args) > 1 else args[0]


def _flat_factors(*exprs) -> list:
    """The factors of unevaluated products, numbers first (so ``as_coeff_Mul`` finds them)."""
    flat = [f for e in exprs for f in sp.Mul.make_args(e) if f != 1]
    numbers = [f for f in flat if f.is_Number]
    coeff = sp.Mul(*numbers) if numbers else sp.Integer(1)
    return ([coeff] if coeff != 1 or len(flat) == len(numbers) else []) + [f for f in flat if not f.is_Number]


def format_groups(groups: list[tuple[int, sp.Expr]], late: frozenset = frozenset(),
                  early: frozenset = frozenset()) -> str:
    """``[(1, tau^2 eta C), (-1, 2 tau lam Q)]`` -> ``+ tau^2 eta C - 2 tau lam Q`` (``late``, ``early`` as in
    ``readable``)."""
    out = []
    for sign, group in groups:
        text = readable(group, late, early)
        if text.startswith("-"):
            sign, text = -sign, text[1:].lstrip()
        out.append(f"{'-' if sign < 0 else '+'} {text}")
    return " ".join(out)


def format_sum(expr: sp.Expr, late: frozenset = frozenset(), early: frozenset = frozenset(), steps=None) -> str:
    """``arrange`` then ``format_groups`` without the leading '+': ``tau^2 eta^2/b - 2 tau (beta eta + lam)``."""
    text = format_groups(arrange(expr, steps), late, early)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def term_table(expr: sp.Expr) -> dict[sp.Expr, sp.Expr]:
    """Expanded ``expr`` as {monomial: numeric coefficient}."""
    out: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, monomial = term.as_coeff_Mul()
        out[monomial] = out.get(monomial, 0) + coeff
    return {m: c for m, c in out.items() if c != 0}


def term_changes(yours: sp.Expr, symvae: sp.Expr) -> dict[str, list]:
    """Term by term: ``missing`` (symvae only), ``extra`` (yours only), ``changed`` (same monomial, other coefficient).

    Returns:
        {"missing": [term, ...], "extra": [term, ...], "changed": [(monomial, yours coeff, symvae coeff), ...]}.
    """
    a, b = term_table(yours), term_table(symvae)
    missing = [c * m for m, c in b.items() if m not in a]
    extra = [c * m for m, c in a.items() if m not in b]
    changed = [(m, a[m], b[m]) for m in b if m in a and sp.simplify(a[m] - b[m]) != 0]
    return {"missing": missing, "extra": extra, "changed": changed}
