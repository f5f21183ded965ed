"""Interval certification of a root: the Krawczyk test in mpmath's ``iv`` context.

For G(u) = 0 with Jacobian G', a box X around an approximate root c, and Y ~ G'(c)^-1 (any non-singular matrix),

    K(X) = c - Y G(c) + (I - Y G'(X)) (X - c).

If K(X) lies in the interior of X, then X contains exactly one root of G, and it lies in K(X) (R. Krawczyk,
Computing 4 (1969) 187; R. E. Moore, "A test for existence of solutions to nonlinear systems", SIAM J. Numer. Anal. 14
(1977) 611). G and G' are evaluated in interval arithmetic on the same SymPy expressions the float64 and mpmath code
is generated from; the parameters enter as intervals enclosing the exact decimals the user typed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import mpmath
import sympy as sp

__all__ = ["Certificate", "krawczyk", "interval_functions", "enclosure_digits", "interval_asin", "interval_acos"]

_FUNCTIONS: dict[str, tuple] = {}


def _namespace() -> dict:
    iv = mpmath.iv
    return {"mpf": iv.mpf, "sqrt": iv.sqrt, "log": iv.log, "exp": iv.exp, "pi": iv.pi, "cos": iv.cos,
            "sin": iv.sin, "asin": interval_asin, "acos": interval_acos, "mpmath": iv}


#: Guard bits of the point evaluations of ``interval_asin`` beyond the interval precision.
_ASIN_GUARD_BITS = 32


def interval_asin(x):
    """asin on an mpmath interval (``iv`` has none): asin is increasing on [-1, 1], so the image of [a, b] is
    [asin a, asin b]; the ends are computed with ``_ASIN_GUARD_BITS`` guard bits and then widened outwards by
    2^-(prec + 8) (1 + |end|), far more than the error of mpmath's asin at the higher precision.

    Raises:
        ValueError: the interval leaves [-1, 1] (asin is not real there).
    """
    iv = mpmath.iv
    a, b = ends(iv.mpf(x))
    if a < -1 or b > 1:
        raise ValueError("the argument of asin leaves [-1, 1]")
    prec = iv.prec
    with mpmath.workprec(prec + _ASIN_GUARD_BITS):
        lo, hi = mpmath.asin(a), mpmath.asin(b)
        lo -= mpmath.ldexp(1 + abs(lo), -(prec + 8))
        hi += mpmath.ldexp(1 + abs(hi), -(prec + 8))
    return iv.mpf([lo, hi])


def interval_acos(x):
    """acos = pi/2 - asin on an mpmath interval (see ``interval_asin``)."""
    iv = mpmath.iv
    return iv.pi / 2 - interval_asin(x)


def interval_functions(key: str, unknowns: Sequence[sp.Symbol], rest: Sequence[sp.Symbol],
                       equations: Sequence[sp.Expr], jacobian: sp.Matrix):
    """(G, J) evaluating ``equations`` and ``jacobian`` on intervals (mpmath ``iv``), cached under ``key``.

    Raises:
        ValueError: an expression uses a function without a rigorous interval version here (Abs, Max, ...).
    """
    if key not in _FUNCTIONS:
        allowed = (sp.Add, sp.Mul, sp.Pow, sp.Symbol, sp.Number, sp.log, sp.exp, sp.cos, sp.sin,
                   sp.asin, sp.acos, sp.Abs, sp.NumberSymbol)
        for e in list(equations) + list(jacobian):
            bad = [a for a in sp.preorder_traversal(e) if not isinstance(a, allowed)]
            if bad:
                raise ValueError(f"no interval evaluation of {type(bad[0]).__name__}")
        args = list(unknowns) + list(rest)
        G = sp.lambdify(args, list(equations), modules=[_namespace()], printer=_printer())
        J = sp.lambdify(args, list(jacobian), modules=[_namespace()], printer=_printer())
        _FUNCTIONS[key] = (G, J, jacobian.shape)
    return _FUNCTIONS[key]


def _printer():
    from sympy.printing.pycode import MpmathPrinter

    class _IntervalPrinter(MpmathPrinter):
        """Numbers as exact interval constructors: a Rational p/q becomes mpf(p)/mpf(q) (an enclosure of p/q);
        a Float its decimal text."""

        def _print_Rational(self, e):
            return f"(mpf({e.p})/mpf({e.q}))"

        def _print_Integer(self, e):
            return f"mpf({e.p})"

        def _print_Float(self, e):
            return f"mpf('{sp.sstr(e, full_prec=True)}')"

        def _print_Pow(self, e, rational=False):
            base, exp = e.as_base_exp()
            if exp.is_Integer:
                n = int(exp)
                b = self.parenthesize(base, 100)
                if n >= 0:
                    return f"({b})**{n}"
                return f"(mpf(1)/({b})**{-n})"
            return super()._print_Pow(e, rational=rational)

    return _IntervalPrinter({"fully_qualified_modules": False, "inline": True})


@dataclasses.dataclass(frozen=True)
class Certificate:
    """Outcome of ``krawczyk``: ``certified`` (K(X) inside int X), the enclosure K(X) ((lo, hi) mpf pairs),
    and a message saying what was tried."""

    certified: bool
    enclosure: tuple | None
    message: str


def krawczyk(G, J, shape, center: Sequence, rest: Sequence[str], *, radius_digits: int,
             nonzero=None) -> Certificate:
    """The Krawczyk test on the box center +- 10^-radius_digits (1 + |center_i|), at the current mpmath precision.

    Arguments:
        G, J: interval functions of (unknowns..., rest...) (``interval_functions``).
        shape: the Jacobian's shape. center: an approximate root (mpf). rest: the other parameters as decimal
            strings (enclosed exactly). radius_digits: the box half-width in digits.

    Other arguments:
        nonzero: an interval function of (unknowns..., rest...) returning a list of expressions that must keep
            their sign on the whole box (the arguments of Abs that G and J were made smooth on by fixing their
            sign: G equals the original system on the box only if none of them contains zero there).
    """
    iv = mpmath.iv
    n = len(center)
    prec = mpmath.mp.prec
    with mpmath.workprec(prec):
        c = [mpmath.mpf(v) for v in center]
        eps = mpmath.mpf(10) ** (-radius_digits)
        J_mid_vals = None
    old = iv.prec
    iv.prec = prec
    try:
        p_iv = [iv.mpf(s) for s in rest]
        c_iv = [iv.mpf(v) for v in c]
        X = [iv.mpf([v - eps * (1 + abs(v)), v + eps * (1 + abs(v))]) for v in c]
        with mpmath.workprec(prec):
            J_mid_vals = J(*c_iv, *p_iv)
            Jm = mpmath.matrix(shape[0], shape[1])
            for k, v in enumerate(J_mid_vals):
                Jm[k // shape[1], k % shape[1]] = v.mid
            try:
                Y = mpmath.inverse(Jm)
            except ZeroDivisionError:
                return Certificate(False, None, "the Jacobian of the augmented system is singular at the root")
        if nonzero is not None:
            for v in nonzero(*X, *p_iv):
                a, b = ends(iv.mpf(v))
                if a <= 0 <= b:
                    return Certificate(False, None, "the argument of an Abs changes sign inside the box")
        Gc = G(*c_iv, *p_iv)
        JX = J(*X, *p_iv)
        Yi = [[iv.mpf(Y[i, j]) for j in range(n)] for i in range(n)]
        JXm = [[JX[i * shape[1] + j] for j in range(n)] for i in range(n)]
        K = []
        for i in range(n):
            acc = c_iv[i] - sum((Yi[i][j] * Gc[j] for j in range(n)), iv.mpf(0))
            for j in range(n):
                m_ij = (iv.mpf(1) if i == j else iv.mpf(0)) - sum((Yi[i][k] * JXm[k][j] for k in range(n)),
                                                                    iv.mpf(0))
                acc += m_ij * (X[j] - c_iv[j])
            K.append(acc)
        inside = all(ends(K[i])[0] > ends(X[i])[0] and ends(K[i])[1] < ends(X[i])[1] for i in range(n))
    except (ZeroDivisionError, ValueError, TypeError) as exc:
        return Certificate(False, None, f"interval evaluation failed ({type(exc).__name__}: {exc})")
    finally:
        iv.prec = old
    if not inside:
        return Certificate(False, None, f"K(X) is not inside the box of half-width 1e-{radius_digits} (relative): "
                                        f"the interval Jacobian is too wide there")
    return Certificate(True, tuple(ends(v) for v in K), f"Krawczyk: K(X) inside X (box 1e-{radius_digits}), a unique root in K(X)")


def ends(x) -> tuple:
    """The end points (mpf) of an mpmath interval."""
    a, b = x._mpi_
    return mpmath.mp.make_mpf(a), mpmath.mp.make_mpf(b)


def enclosure_digits(lo, hi, limit: int) -> int:
    """Significant digits d <= limit such that every number in [lo, hi] rounds to the same d-digit text (rounding
    is monotone, so it suffices that lo and hi do)."""
    if lo == hi:
        return limit
    with mpmath.workdps(limit + 20):
        width = abs(hi - lo) / max(abs(lo), abs(hi))
        d = min(limit, max(0, int(math.floor(-float(mpmath.log10(width))))))
        while d > 0 and mpmath.nstr(lo, d, strip_zeros=False) != mpmath.nstr(hi, d, strip_zeros=False):
            d -= 1
    return d
