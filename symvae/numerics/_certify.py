"""Interval certification of a root: the Krawczyk test in mpmath's interval arithmetic (``libmpi``).

For G(u) = 0 with Jacobian G', a box X around an approximate root c, and Y ~ G'(c)^-1 (any non-singular matrix),

    K(X) = c - Y G(c) + (I - Y G'(X)) (X - c).

If K(X) lies in the interior of X, then X contains exactly one root of G, and it lies in K(X) (R. Krawczyk,
Computing 4 (1969) 187; R. E. Moore, "A test for existence of solutions to nonlinear systems", SIAM J. Numer. Anal. 14
(1977) 611). G and G' are evaluated in interval arithmetic on the same SymPy expressions the float64 and mpmath code
is generated from; the parameters enter as intervals enclosing the exact decimals the user typed.

Expressions with Gaussian rule nodes (``GaussRule1`` / ``GaussRule2``) are evaluated by ``RuleNodeFunction``: each
node becomes an interval proven to contain the exact expectation (``_rule_intervals``: an interval trapezoidal sum plus
a rigorous bound of its discretisation and truncation error), so the test is on the model's system, not on the
system of the float rule the derived code uses; ``krawczyk_widening`` sizes the box for the width that proof leaves.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import mpmath
import sympy as sp

from ..derive._nonlinear_gaussian import has_rule_nodes
from mpmath.libmp import (fone, from_float, from_int, fzero, mpf_abs, mpf_add, mpf_le, mpf_lt, mpf_mul, mpf_pos,
                          mpf_pow_int, mpf_sub, round_ceiling, round_floor, round_nearest, to_float)
from mpmath.libmp.libmpi import (mpi_abs, mpi_add, mpi_cos, mpi_div, mpi_exp, mpi_log, mpi_mid, mpi_mul, mpi_neg,
                                 mpi_pi, mpi_pow, mpi_pow_int, mpi_sin, mpi_sqrt, mpi_sub)

__all__ = ["Certificate", "krawczyk", "interval_functions", "enclosure_digits", "interval_asin", "interval_acos",
           "RuleNodeFunction", "krawczyk_widening", "interval_values"]

_FUNCTIONS: dict[str, tuple] = {}


_IVMPF = type(mpmath.iv.mpf(1))

#: Bits of the interval arithmetic of ``Interval`` (set by ``krawczyk`` for the duration of a test).
_PREC = [53]


class Interval:
    """A closed interval [a, b] held as mpmath's raw (a, b) tuple, with the arithmetic of mpmath's ``iv`` context
    (``libmpi``: every end rounded outwards at ``_PREC`` bits) but without its operand dispatch, so that generated
    interval code runs about 2.5x faster. Operands may be Intervals, ints, floats and mpf (all exact) or ``iv``
    intervals."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __add__(self, o):
        return Interval(mpi_add(self.v, o.v if type(o) is Interval else _operand(o), _PREC[0]))

    __radd__ = __add__

    def __sub__(self, o):
        return Interval(mpi_sub(self.v, o.v if type(o) is Interval else _operand(o), _PREC[0]))

    def __rsub__(self, o):
        return Interval(mpi_sub(_operand(o), self.v, _PREC[0]))

    def __mul__(self, o):
        return Interval(mpi_mul(self.v, o.v if type(o) is Interval else _operand(o), _PREC[0]))

    __rmul__ = __mul__

    def __truediv__(self, o):
        return Interval(mpi_div(self.v, o.v if type(o) is Interval else _operand(o), _PREC[0]))

    def __rtruediv__(self, o):
        return Interval(mpi_div(_operand(o), self.v, _PREC[0]))

    def __pow__(self, o):
        if type(o) is int:
            return Interval(mpi_pow_int(self.v, o, _PREC[0]))
        return Interval(mpi_pow(self.v, _operand(o), _PREC[0]))

    def __rpow__(self, o):
        return Interval(mpi_pow(_operand(o), self.v, _PREC[0]))

    def __neg__(self):
        return Interval(mpi_neg(self.v))

    def __pos__(self):
        return self

    def __abs__(self):
        return Interval(mpi_abs(self.v))

    def __repr__(self):
        a, b = self.v
        return f"Interval([{mpmath.mp.make_mpf(a)}, {mpmath.mp.make_mpf(b)}])"


def _operand(o) -> tuple:
    """The raw interval of an operand: exact for ints, floats and mpf."""
    if isinstance(o, Interval):
        return o.v
    if isinstance(o, (int, float)) and not isinstance(o, bool):
        f = from_int(o) if isinstance(o, int) else from_float(o)
        return f, f
    if isinstance(o, mpmath.mpf):
        return o._mpf_, o._mpf_
    if type(o) is _IVMPF:
        return o._mpi_
    raise TypeError(f"no interval of {type(o).__name__}")


def _unary(f_raw):
    """An elementary function of libmpi (outward rounding) on any operand."""
    def g(x):
        return Interval(f_raw(_operand(x), _PREC[0]))
    return g


def _mpf(x) -> Interval:
    """The interval of a number: exact for ints, the decimal text enclosed outwards for strings."""
    if isinstance(x, str):
        return _text(x)
    return Interval(_operand(x))


def _text(x: str) -> Interval:
    """The outward enclosure of a decimal text at ``_PREC`` bits."""
    old = mpmath.iv.prec
    mpmath.iv.prec = _PREC[0]
    try:
        return Interval(mpmath.iv.mpf(x)._mpi_)
    finally:
        mpmath.iv.prec = old


def _namespace() -> dict:
    return {"mpf": _mpf, "sqrt": _unary(mpi_sqrt), "log": _unary(mpi_log), "exp": _unary(mpi_exp),
            "cos": _unary(mpi_cos), "sin": _unary(mpi_sin), "asin": interval_asin, "acos": interval_acos,
            "_pi": lambda: Interval(mpi_pi(_PREC[0])), "_e": lambda: Interval(mpi_exp((fone, fone), _PREC[0]))}


#: Guard bits of the point evaluations of ``interval_asin`` beyond the interval precision.
_ASIN_GUARD_BITS = 32


def interval_asin(x):
    """asin on an interval (``iv`` has none): asin is increasing on [-1, 1], so the image of [a, b] is
    [asin a, asin b]; the ends are computed with ``_ASIN_GUARD_BITS`` guard bits and then widened outwards by
    2^-(prec + 8) (1 + |end|), far more than the error of mpmath's asin at the higher precision. An ``Interval``
    gives an ``Interval`` (at ``_PREC``), an mpmath ``iv`` interval an ``iv`` interval (at ``iv.prec``).

    Raises:
        ValueError: the interval leaves [-1, 1] (asin is not real there).
    """
    iv = mpmath.iv
    own = isinstance(x, Interval)
    raw = x.v if own else iv.mpf(x)._mpi_
    a, b = mpmath.mp.make_mpf(raw[0]), mpmath.mp.make_mpf(raw[1])
    if a < -1 or b > 1:
        raise ValueError("the argument of asin leaves [-1, 1]")
    prec = _PREC[0] if own else iv.prec
    with mpmath.workprec(prec + _ASIN_GUARD_BITS):
        lo, hi = mpmath.asin(a), mpmath.asin(b)
        lo -= mpmath.ldexp(1 + abs(lo), -(prec + 8))
        hi += mpmath.ldexp(1 + abs(hi), -(prec + 8))
        lo_r = mpf_pos(lo._mpf_, prec, round_floor)
        hi_r = mpf_pos(hi._mpf_, prec, round_ceiling)
    return Interval((lo_r, hi_r)) if own else iv.mpf([mpmath.mp.make_mpf(lo_r), mpmath.mp.make_mpf(hi_r)])


def interval_acos(x):
    """acos = pi/2 - asin on an interval (see ``interval_asin``)."""
    if isinstance(x, Interval):
        return Interval(mpi_pi(_PREC[0])) / 2 - interval_asin(x)
    return mpmath.iv.pi / 2 - interval_asin(x)


_ALLOWED = (sp.Add, sp.Mul, sp.Pow, sp.Symbol, sp.Number, sp.log, sp.exp, sp.cos, sp.sin, sp.asin, sp.acos, sp.Abs,
            type(sp.pi), type(sp.E))


def _check_allowed(exprs) -> None:
    for e in exprs:
        if not isinstance(e, sp.Basic):
            continue
        bad = [a for a in sp.preorder_traversal(e) if not isinstance(a, _ALLOWED)]
        if bad:
            raise ValueError(f"no interval evaluation of {type(bad[0]).__name__}")


def interval_functions(key: str, unknowns: Sequence[sp.Symbol], rest: Sequence[sp.Symbol],
                       equations: Sequence[sp.Expr], jacobian: sp.Matrix | None):
    """(G, J, shape) evaluating ``equations`` and ``jacobian`` on intervals (mpmath ``iv``), cached under ``key``
    (``jacobian`` None: G only, J None).

    Expressions holding Gaussian rule nodes (``GaussRule1`` / ``GaussRule2``, and their derivative nodes) get
    ``RuleNodeFunction`` evaluators: each node is enclosed by ``_rule_intervals`` -- an interval proven to contain the
    exact expectation (not the value of the 833-node rule), so G and J enclose the model's system, not the rule's.

    Raises:
        ValueError: an expression uses a function without a rigorous interval version here (Abs, Max, ...), or a
            rule node's integrand one without a rigorous complex bound (``UnsupportedIntegrand``).
    """
    if key not in _FUNCTIONS:
        args = list(unknowns) + list(rest)
        exprs = list(equations) + (list(jacobian) if jacobian is not None else [])
        if has_rule_nodes(exprs):
            G = RuleNodeFunction(args, list(equations), tolerance=RULE_TOLERANCE_G)
            J = (RuleNodeFunction(args, list(jacobian), tolerance=RULE_TOLERANCE_J) if jacobian is not None
                 else None)
            _FUNCTIONS[key] = (G, J, jacobian.shape if jacobian is not None else None)
            return _FUNCTIONS[key]
        _check_allowed(exprs)
        G = sp.lambdify(args, list(equations), modules=[_namespace()], printer=_printer())
        if jacobian is None:
            _FUNCTIONS[key] = (G, None, None)
        else:
            J = sp.lambdify(args, list(jacobian), modules=[_namespace()], printer=_printer())
            _FUNCTIONS[key] = (G, J, jacobian.shape)
    return _FUNCTIONS[key]


#: Default absolute tolerance of the proven quadrature error of the rule nodes in G (``RuleNodeFunction``); callers
#: that know the digits they want set ``G.tolerance``.
RULE_TOLERANCE_G = 1e-20
#: The same in the Jacobian: in the Krawczyk operator its enclosure is multiplied by X - c, so a loose bound costs
#: nothing but keeps the interval sums small.
RULE_TOLERANCE_J = 1e-9


class RuleNodeFunction:
    """An interval function of (unknowns..., rest...) for expressions with rule nodes: the nodes are replaced by
    symbols, the rest is evaluated like ``interval_functions``' other functions, and the nodes sharing their
    arguments (covariance and parameters) are enclosed together by one ``RuleGroupEnclosure``.

    Attributes:
        tolerance: absolute tolerance asked of the proven quadrature error of every node (the node budget may not
            allow it: ``reports`` say what was achieved). budget: nodes per interval sum.
        reports: the ``_rule_intervals.Report`` of each group at the last call.
    """

    rule_nodes = True

    def __init__(self, args: Sequence[sp.Symbol], exprs: Sequence[sp.Expr], *, tolerance: float):
        from ..derive._half_space import HalfRule1, HalfRule2, QuadrantRule
        from ..derive._nonlinear_gaussian import GaussRule1, GaussRule2
        from ._rule_intervals import DEFAULT_BUDGET, UnsupportedIntegrand, group_enclosure
        if any(isinstance(e, sp.Basic) and e.has(HalfRule1, HalfRule2, QuadrantRule) for e in exprs):
            raise ValueError("no interval evaluation of a half-space or quadrant rule node (a ReLU kink): its rule "
                             "has no proven error bound yet")
        nodes = set()
        for e in exprs:
            if isinstance(e, sp.Basic) and e.has(GaussRule1, GaussRule2):
                nodes |= e.atoms(GaussRule1, GaussRule2)
        by_args: dict[tuple, list] = {}
        for node in sorted(nodes, key=sp.default_sort_key):
            by_args.setdefault((1 if isinstance(node, GaussRule1) else 2, node.args[1:]), []).append(node)
        replace, symbols, self.groups = {}, [], []
        for (dim, node_args), members in by_args.items():
            names = [sp.Symbol(f"_rule_node_{len(symbols) + k}") for k in range(len(members))]
            replace.update(zip(members, names))
            symbols += names
            _check_allowed(node_args)
            n_cov = 1 if dim == 1 else 3
            try:
                enclosure = group_enclosure(dim, [m.args[0] for m in members], len(node_args) - n_cov)
            except UnsupportedIntegrand as exc:
                raise ValueError(f"no interval evaluation of a GaussRule{dim} node: {exc}") from None
            fn = sp.lambdify(list(args), list(node_args), modules=[_namespace()], printer=_printer())
            self.groups.append((fn, enclosure, n_cov))
        reduced = [e.xreplace(replace) if isinstance(e, sp.Basic) else e for e in exprs]
        _check_allowed(reduced)
        self._base = sp.lambdify(list(args) + symbols, reduced, modules=[_namespace()], printer=_printer())
        self.tolerance = tolerance
        self.budget = DEFAULT_BUDGET
        self.reports: list = []
        self.n_nodes = len(symbols)

    def __call__(self, *xs):
        from ._rule_intervals import UnsupportedIntegrand
        values, reports = [], []
        for fn, enclosure, n_cov in self.groups:
            raw = [_raw(v) for v in fn(*xs)]
            try:
                out, report = enclosure.enclose(raw[:n_cov], raw[n_cov:], tol=self.tolerance, budget=self.budget)
            except UnsupportedIntegrand as exc:
                raise ValueError(str(exc)) from None
            reports.append(report)
            values += [Interval(v) for v in out]
        self.reports = reports
        return self._base(*xs, *values)

    def bound(self) -> float:
        """The largest proven quadrature error bound of the last call (0 without rule nodes)."""
        return max((r.bound for r in self.reports), default=0.0)

    def describe(self) -> str:
        """The rule nodes and the bounds of the last call, as text."""
        if not self.reports:
            return f"{self.n_nodes} rule node(s)"
        worst = max(self.reports, key=lambda r: r.bound)
        return f"{self.n_nodes} rule node(s) enclosed with {worst.describe()}"


def _printer():
    from sympy.printing.pycode import MpmathPrinter

    class _IntervalPrinter(MpmathPrinter):
        """Numbers as exact interval constructors: a Rational p/q becomes mpf(p)/mpf(q) (an enclosure of p/q);
        a Float its decimal text."""

        def _print_Rational(self, e):
            return f"(mpf({e.p})/mpf({e.q}))"

        def _print_Integer(self, e):
            return f"mpf({e.p})"

        def _print_Pi(self, e):
            return "_pi()"

        def _print_Exp1(self, e):
            return "_e()"

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

    return _IntervalPrinter({"fully_qualified_modules": False, "inline": True, "order": "none"})


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

    The interval Jacobian is evaluated once, on the box; Y is the float64 inverse of its midpoint (any matrix makes
    a valid test: Y only has to be close enough to G'^-1 for K(X) to contract), and the exact mpmath inverse only if
    the float64 one is unusable or the test fails with it. The products I - Y G'(X) are formed on mpmath's raw
    interval tuples (``libmpi``, outward rounding at the working precision), skipping the exact zeros of G'.

    Arguments:
        G, J: interval functions of (unknowns..., rest...) (``interval_functions``).
        shape: the Jacobian's shape. center: an approximate root (mpf). rest: the other parameters as decimal
            strings (enclosed exactly). radius_digits: the box half-width in digits.

    Other arguments:
        nonzero: an interval function of (unknowns..., rest...) returning a list of expressions that must keep
            their sign on the whole box (the arguments of Abs that G and J were made smooth on by fixing their
            sign: G equals the original system on the box only if none of them contains zero there).
    """
    n = len(center)
    prec = mpmath.mp.prec
    old = _PREC[0]
    _PREC[0] = prec
    try:
        cr, Xr = _box(center, radius_digits, prec)
        c_iv = [Interval(v) for v in cr]
        X = [Interval(v) for v in Xr]
        p_iv = _parameters(tuple(rest), prec)
        if nonzero is not None:
            for v in nonzero(*X, *p_iv):
                a, b = _raw(v)
                if mpf_le(a, fzero) and mpf_le(fzero, b):
                    return Certificate(False, None, "the argument of an Abs changes sign inside the box")
        JX = [_raw(v) for v in J(*X, *p_iv)]
        JXm = [JX[i * shape[1]:i * shape[1] + n] for i in range(n)]
        Gc = [_raw(v) for v in G(*c_iv, *p_iv)]
        inverses = (_float_inverse, _mp_inverse)
        K = None
        for inverse in inverses:
            Y = inverse(JXm, prec)
            if Y is None:
                continue
            K = _operator(Y, Gc, JXm, cr, Xr, prec)
            if all(mpf_lt(Xr[i][0], K[i][0]) and mpf_lt(K[i][1], Xr[i][1]) for i in range(n)):
                break
        else:
            if K is None:
                return Certificate(False, None, "the Jacobian of the augmented system is singular at the root")
            return Certificate(False, None, f"K(X) is not inside the box of half-width 1e-{radius_digits} "
                                            f"(relative): the interval Jacobian is too wide there")
    except (ZeroDivisionError, ValueError, TypeError) as exc:
        return Certificate(False, None, f"interval evaluation failed ({type(exc).__name__}: {exc})")
    finally:
        _PREC[0] = old
    make = mpmath.mp.make_mpf
    return Certificate(True, tuple((make(a), make(b)) for a, b in K),
                       f"Krawczyk: K(X) inside X (box 1e-{radius_digits}), a unique root in K(X)")


def interval_values(F, box: Sequence, rest: Sequence[str]) -> list:
    """[(lo, hi) mpf] of the interval function F (``interval_functions``) on ``box`` ((lo, hi) pairs, or numbers for
    a point) at the current mpmath precision, outward rounding."""
    prec = mpmath.mp.prec
    old = _PREC[0]
    _PREC[0] = prec
    try:
        X = []
        for v in box:
            lo, hi = v if isinstance(v, (tuple, list)) else (v, v)
            X.append(Interval((mpmath.mpf(lo)._mpf_, mpmath.mpf(hi)._mpf_)))
        values = [_raw(v) for v in F(*X, *_parameters(tuple(rest), prec))]
    finally:
        _PREC[0] = old
    make = mpmath.mp.make_mpf
    return [(make(a), make(b)) for a, b in values]


def krawczyk_widening(G, J, shape, center: Sequence, rest: Sequence[str], *, digits: int, jacobian_point=None,
                      nonzero=None, attempts: int = 4) -> tuple[Certificate, int, list]:
    """The Krawczyk test for a system whose interval evaluation carries a proven but non-negligible error (rule
    nodes enclosed with their quadrature error bound): the box is as wide as that error requires.

    1. The centre (a root of an approximating system, e.g. the rule's) is moved by up to three chord steps
       c <- c - A^-1 mid G(c), A = ``jacobian_point(c)`` the approximating Jacobian (any matrix gives a valid test;
       this one only makes the centre close to the root the intervals enclose);
    2. the box radius is estimated from |A^-1 G(c)| (G(c) an interval: its width is the proven error) and the test
       run on boxes 10^-k (1 + |c_i|), k from that estimate (at most ``digits`` + 5) down by one per retry.

    Returns:
        (certificate, the k of the certified box (or of the last attempt), the centre used).
    """
    n = len(center)
    c = [mpmath.mpf(v) for v in center]
    try:
        Gc = interval_values(G, c, rest)
    except (ZeroDivisionError, ValueError, TypeError) as exc:
        return Certificate(False, None, f"interval evaluation failed ({type(exc).__name__}: {exc})"), digits + 5, c
    A = Ainv = None
    if jacobian_point is not None:
        try:
            A = mpmath.matrix(_as_rows(jacobian_point(c), n))
            Ainv = mpmath.inverse(A)
        except (ZeroDivisionError, ValueError, TypeError):
            A = Ainv = None

    def predicted(values):
        """max_i |A^-1 G(c)|_i / (1 + |c_i|), G(c) an interval: the half-width K(X) - c will need."""
        mags = [abs(lo + hi) / 2 + (hi - lo) / 2 for lo, hi in values]
        return max(sum(abs(Ainv[i, j]) * mags[j] for j in range(n)) / (1 + abs(c[i])) for i in range(n))

    goal = mpmath.mpf(10) ** -(digits + 4)
    if Ainv is not None:
        for _ in range(3):  # chord steps towards the root of the enclosed system
            if predicted(Gc) <= goal:
                break
            step = Ainv * mpmath.matrix([(lo + hi) / 2 for lo, hi in Gc])
            c = [ci - step[i] for i, ci in enumerate(c)]
            before = predicted(Gc)
            try:
                Gc = interval_values(G, c, rest)
            except (ZeroDivisionError, ValueError, TypeError) as exc:
                return (Certificate(False, None, f"interval evaluation failed ({type(exc).__name__}: {exc})"),
                        digits + 5, c)
            if predicted(Gc) > before / 10:  # no more progress: the width of G(c) dominates
                break
    k0 = digits + 5
    if Ainv is not None:
        worst = predicted(Gc)
        if worst > 0:
            k0 = min(k0, int(mpmath.floor(-mpmath.log10(8 * worst))))
    cert, k = None, k0
    for k in range(k0, k0 - attempts, -1):
        if k < 1:
            break
        cert = krawczyk(G, J, shape, c, rest, radius_digits=k, nonzero=nonzero)
        if cert.certified:
            break
    if cert is None:
        cert = Certificate(False, None, "no box to test (the interval values of the system are too wide)")
    return cert, k, c


def _as_rows(M, n: int) -> list:
    """A point Jacobian (mpmath matrix, numpy array or nested/flat list) as n rows."""
    if isinstance(M, mpmath.matrix):
        return [[M[i, j] for j in range(M.cols)] for i in range(M.rows)]
    import numpy as np
    arr = np.asarray(M, dtype=object)
    if arr.ndim == 1:
        arr = arr.reshape(n, -1)
    return [[mpmath.mpf(x) for x in row[:n]] for row in arr.tolist()]


def residual_bound(G, enclosure: Sequence, rest: Sequence[str]):
    """max |G_i| over the box ``enclosure`` ((lo, hi) mpf pairs, e.g. a Krawczyk enclosure K(X)), by interval
    evaluation at the current mpmath precision, outward rounding: a proven upper bound on every |G_i| at every point
    of the box (0 when G is empty). Raises ValueError/ZeroDivisionError/TypeError when the evaluation fails."""
    prec = mpmath.mp.prec
    old = _PREC[0]
    _PREC[0] = prec
    try:
        box = [Interval((mpmath.mpf(lo)._mpf_, mpmath.mpf(hi)._mpf_)) for lo, hi in enclosure]
        values = [_raw(v) for v in G(*box, *_parameters(tuple(rest), prec))]
    finally:
        _PREC[0] = old
    make = mpmath.mp.make_mpf
    return max((max(abs(make(a)), abs(make(b))) for a, b in values), default=mpmath.mpf(0))


def _raw(v) -> tuple:
    """The raw (lo, hi) tuple of an interval (a number is exact)."""
    return v.v if type(v) is Interval else _operand(v)


_EPS: dict[tuple, tuple] = {}


def _box(center, radius_digits: int, prec: int):
    """(c, X) as raw interval tuples: c the centre rounded to ``prec`` bits (a point interval), X = c +- r_i with
    r_i >= 10^-radius_digits (1 + |c_i|) (all rounded outwards)."""
    key = (radius_digits, prec)
    if key not in _EPS:
        _EPS[key] = mpf_pow_int(from_int(10), -radius_digits, prec, round_ceiling)
    eps = _EPS[key]
    cr, Xr = [], []
    for v in center:
        c = mpf_pos(mpmath.mpf(v)._mpf_, prec, round_nearest)
        r = mpf_mul(eps, mpf_add(fone, mpf_abs(c), prec, round_ceiling), prec, round_ceiling)
        cr.append((c, c))
        Xr.append((mpf_sub(c, r, prec, round_floor), mpf_add(c, r, prec, round_ceiling)))
    return cr, Xr


_PARAMETERS: dict[tuple, list] = {}


def _parameters(texts: tuple, prec: int) -> list:
    """The intervals enclosing the decimal ``texts`` at ``prec`` bits (a few hundred kept: parsing is a large part
    of a one-unknown test)."""
    key = (texts, prec)
    out = _PARAMETERS.get(key)
    if out is None:
        if len(_PARAMETERS) > 512:
            _PARAMETERS.clear()
        old = _PREC[0]
        _PREC[0] = prec
        try:
            out = _PARAMETERS[key] = [_text(s) for s in texts]
        finally:
            _PREC[0] = old
    return out


def _float_inverse(JXm, prec):
    """Y = the float64 inverse of the midpoint of the interval Jacobian, as exact mpf tuples; None if unusable."""
    n = len(JXm)
    if n == 1:
        a, b = JXm[0][0]
        m = 0.5 * (to_float(a) + to_float(b))
        if m == 0 or not math.isfinite(m) or not math.isfinite(1 / m):
            return None
        return [[from_float(1 / m)]]
    import numpy as np
    mid = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = JXm[i][j]
            mid[i, j] = 0.5 * (to_float(a) + to_float(b))
    if not np.all(np.isfinite(mid)):
        return None
    try:
        Y = np.linalg.inv(mid)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(Y)):
        return None
    return [[from_float(float(v)) for v in row] for row in Y]


def _mp_inverse(JXm, prec):
    """Y = the inverse of the midpoint of the interval Jacobian at the working precision; None if singular."""
    n = len(JXm)
    with mpmath.workprec(prec):
        M = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(n):
                M[i, j] = mpmath.mp.make_mpf(mpi_mid(JXm[i][j], prec))
        try:
            Yi = mpmath.inverse(M)
        except ZeroDivisionError:
            return None
        return [[Yi[i, j]._mpf_ for j in range(n)] for i in range(n)]


def _operator(Y, Gc, JXm, cr, Xr, prec):
    """K(X) = c - Y G(c) + (I - Y G'(X)) (X - c) on raw interval tuples, outward rounding at ``prec`` bits."""
    n = len(cr)
    zero = (fzero, fzero)
    one = (fone, fone)
    rows = [[(j, v) for j, v in enumerate(JXm[k]) if v != zero] for k in range(n)]
    D = [mpi_sub(Xr[j], cr[j], prec) for j in range(n)]
    K = []
    for i in range(n):
        acc = cr[i]
        M = [zero] * n
        for k in range(n):
            y = Y[i][k]
            if y == fzero:
                continue
            yy = (y, y)
            acc = mpi_sub(acc, mpi_mul(yy, Gc[k], prec), prec)
            for j, v in rows[k]:
                M[j] = mpi_add(M[j], mpi_mul(yy, v, prec), prec)
        for j in range(n):
            acc = mpi_add(acc, mpi_mul(mpi_sub(one if i == j else zero, M[j], prec), D[j], prec), prec)
        K.append(acc)
    return K


def enclosure_digits(lo, hi, limit: int) -> int:
    """Significant digits d <= limit such that every number in [lo, hi] rounds to the same d-digit text (rounding
    is monotone, so it suffices that lo and hi do)."""
    if lo == hi:
        return limit
    with mpmath.workdps(limit + 20):
        width = abs(hi - lo) / max(abs(lo), abs(hi))
        w = float(width)  # a first guess only: the texts are compared below
        log10 = math.log10(w) if w > 0 and math.isfinite(w) else float(mpmath.log10(width))
        d = min(limit, max(0, int(math.floor(-log10))))
        while d > 0 and mpmath.nstr(lo, d, strip_zeros=False) != mpmath.nstr(hi, d, strip_zeros=False):
            d -= 1
    return d
