"""Proven enclosures of the Gaussian expectations that derived systems hold as rule nodes.

``GaussRule1(Integrand(G), S11, p...)`` stands for E[G(u)], u ~ N(0, S11), and ``GaussRule2(Integrand(G), S11, S12,
S22, p...)`` for E[G(u, v)], (u, v) ~ N(0, S). Derived systems *compute* them by a fixed trapezoidal rule
(``symvae.derive._nonlinear_gaussian``), whose value differs from the expectation by the rule's quadrature error. Here
they are *enclosed*: for interval-valued S and p the result is an interval proven to contain the exact expectation
for every S and p in the boxes,

    enclosure = (a trapezoidal sum in interval arithmetic) + [-E, E],

E a rigorous bound of the discretisation error of the infinite trapezoidal sum plus the error of truncating it.

The bound (Trefethen & Weideman, SIAM Review 56 (2014) 385, Theorem 5.1): if f is analytic in the strip
|Im z| < d, decays uniformly there and int |f(x + i y)| dx <= M for |y| < d, then the trapezoidal sum of step h over
all integers satisfies |int f - h sum_k f(k h)| <= 2 M / (exp(2 pi d / h) - 1). With u = s y (1-D) the integrand is
f(y) = phi(y) G(s y), and |phi(x + i y)| = phi(x) exp(y^2 / 2), so

    M(d) <= exp(d^2 / 2) int phi(x) sup_{|t| <= d} |G(s (x + i t))| dx.

Two directions: the Cholesky whitening u = a y1, v = b y1 + c y2 (a, b, c intervals), I(y1) = int F(y1, y2) dy2 and
the iterated form |I - T1 T2| <= |I - T1 I| + |T1 (I - T2)|: the first term is the 1-D bound in y1 (strip in y1, y2
real: M1 <= exp(d1^2/2) int int phi phi sup |G|), the second h1 sum_i 2 M2(i h1) / (exp(2 pi d2 / h2) - 1) with M2
the 1-D bound in y2 at the real node y1 = i h1. The tensor sum is evaluated on the lattice points inside a disc
|y| <= L; the lattice points outside are bounded with cells of the lattice: for g(|y|) = phi_2(y) (1 + |y|)^n
decreasing beyond L - 2 delta (delta = half the cell diagonal), h1 h2 sum_{|y_k| > L} g(|y_k|) <= sqrt(2 pi)
J(L - 2 delta, n + 1), J(R, n) = int_R^inf phi(x) (1 + x)^n dx <= phi(R) (1 + R)^n / (R - n / (1 + R)) (the log of the
integrand is concave: it lies below its tangent at R). One direction: h sum_{|k h| > L} <= 2 J(L - h, n).

The suprema of |G| over complex strips are bounded by a growth bound evaluated over the expression tree of G: every
sub-expression gets (A, n; B, m) with |value| <= A w^n and |Im value| <= B w^m on the whole strip region, w = 1 + |Re y|
(the Euclidean norm of the real parts), using |erf(x + i y)| <= 1 + (2/sqrt(pi)) F(|y|), F(Y) = int_0^Y exp(t^2) dt
<= min(Y e^{Y^2}, (e^{Y^2} - 1)/Y) (and the same for its imaginary part), |exp(c z^2)| <= exp(|c| (Im z)^2) for
c <= 0, |tanh(x + i y)| <= 1/cos(y) for |y| < pi/2 (the poles: a wider strip is not used), |sin z|, |cos z| <=
cosh(Im z), |Im z^k| <= k |z|^(k-1) |Im z|. Then M <= exp(d^2/2) A int phi (1 + |x|)^n, a Gaussian moment (exact
sums of binomials times E|X|^k, E R^k in two dimensions; for M2 the lattice moment h1 sum phi(i h1) (1 + |i h1|)^n,
summed explicitly up to 8 and bounded by J beyond). Functions with no such bound (a field-dependent sqrt, log,
negative power, sinh, cosh, Abs, max, steps, nested rule nodes ...) raise ``UnsupportedIntegrand`` with the reason.

For each direction the strip width d is chosen from a list (the one with the smallest bound), the step h from a list
of binary fractions (the largest that meets the requested tolerance) and the truncation radius L likewise, within a
node budget per group of nodes; when the budget does not allow the tolerance the finest affordable rule is used and
the achieved bound reported (``Report``). The choices use float estimates; the bounds of the chosen rule are then
computed with upward rounding.

Arithmetic: the trapezoidal sums in fixed-point interval arithmetic (Python integers times 2^-P: + exact, * rounded
outwards; P from the tolerance plus a headroom for the size of G on the lattice, the weights with that many more
bits); the nodes k h are exact (binary steps); weights, bounds and the functions sqrt, exp, log, cos, sin, cosh, sinh
by mpmath's ``libmpi`` (outward rounding); erf of a real interval from mpmath point values with 32 guard bits, widened
by 2^-(prec+8) (1 + |value|) (the convention of ``_certify.interval_asin``) plus the derivative bound on the interval;
tanh from exp.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import mpmath
import sympy as sp
from mpmath.libmp import (fone, from_int, from_man_exp, from_rational, fzero, mpf_abs, mpf_add, mpf_erf, mpf_le,
                          mpf_lt, mpf_mul, mpf_neg, mpf_shift, mpf_sub, round_ceiling, round_floor, round_nearest,
                          to_float, to_int)
from mpmath.libmp.libmpi import (mpi_add, mpi_cos_sin, mpi_cosh_sinh, mpi_div, mpi_exp, mpi_log, mpi_mul, mpi_neg,
                                 mpi_pi, mpi_pow_int, mpi_square, mpi_sqrt, mpi_sub)

__all__ = ["UnsupportedIntegrand", "Report", "RuleGroupEnclosure", "enclose_expectation", "group_enclosure",
           "DEFAULT_BUDGET", "DEFAULT_TOLERANCE"]

#: Largest number of nodes of one interval trapezoidal sum (per group of nodes sharing S and p).
DEFAULT_BUDGET = 20000
#: Default absolute tolerance asked of the proven error bound E.
DEFAULT_TOLERANCE = 1e-20


class UnsupportedIntegrand(ValueError):
    """An integrand uses a function (or a form) for which no rigorous complex bound is implemented."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What an enclosure used: ``bound`` the largest proven error bound E over the group's integrands (and
    ``bounds`` each), the steps and truncation radius of the interval sum, its node count, and whether the requested
    tolerance was met within the node budget."""

    bound: float
    bounds: tuple
    steps: tuple
    radius: float
    nodes: int
    tolerance: float
    met: bool

    def describe(self) -> str:
        steps = " x ".join(f"{h:g}" for h in self.steps)
        text = (f"proven quadrature error <= {self.bound:.1e} (trapezoid of step {steps} on |y| <= {self.radius:g}, "
                f"{self.nodes} nodes)")
        if not self.met:
            text += f"; the tolerance {self.tolerance:.0e} needs more than the node budget"
        return text


# ------------------------------------------------------------------------------------------------ interval helpers
_ZERO = (fzero, fzero)
_ONE = (fone, fone)


def _pt(x) -> tuple:
    return (x, x)


def _int(k: int) -> tuple:
    f = from_int(k)
    return (f, f)


def _rat(p: int, q: int, prec: int) -> tuple:
    return mpi_div(_int(p), _int(q), prec)


def _mag(v):
    """max |x| over the interval (an exact mpf)."""
    a, b = mpf_abs(v[0]), mpf_abs(v[1])
    return b if mpf_lt(a, b) else a


def _mig(v):
    """min |x| over the interval."""
    a, b = v
    if mpf_le(a, fzero) and mpf_le(fzero, b):
        return fzero
    a, b = mpf_abs(a), mpf_abs(b)
    return a if mpf_lt(a, b) else b


def _has_zero(v) -> bool:
    return mpf_le(v[0], fzero) and mpf_le(fzero, v[1])


def _sym(r) -> tuple:
    """[-r, r] for an mpf r >= 0."""
    return (mpf_neg(r), r)


def _umax(a, b):
    return b if mpf_lt(a, b) else a


def _umin(a, b):
    return a if mpf_lt(a, b) else b


_CONSTS: dict = {}


def _const(name: str, prec: int) -> tuple:
    key = (name, prec)
    v = _CONSTS.get(key)
    if v is None:
        pi = mpi_pi(prec)
        if name == "pi":
            v = pi
        elif name == "e":
            v = mpi_exp(_ONE, prec)
        elif name == "sqrt2":
            v = mpi_sqrt(_int(2), prec)
        elif name == "isqrt2":
            v = mpi_div(_ONE, mpi_sqrt(_int(2), prec), prec)
        elif name == "2/sqrtpi":
            v = mpi_div(_int(2), mpi_sqrt(pi, prec), prec)
        elif name == "sqrt(2/pi)":
            v = mpi_sqrt(mpi_div(_int(2), pi, prec), prec)
        elif name == "1/sqrt(2pi)":
            v = mpi_div(_ONE, mpi_sqrt(mpi_mul(_int(2), pi, prec), prec), prec)
        elif name == "sqrt(2pi)":
            v = mpi_sqrt(mpi_mul(_int(2), pi, prec), prec)
        elif name == "2pi":
            v = mpi_mul(_int(2), pi, prec)
        elif name == "pi/2":
            v = mpi_div(pi, _int(2), prec)
        else:  # pragma: no cover
            raise KeyError(name)
        _CONSTS[key] = v
    return v


def _erf_point(x, prec: int) -> tuple:
    """An interval around erf(x) for an mpf x: mpmath's value at prec + 32 bits, widened by 2^-(prec+8) (1 + |v|)."""
    v = mpf_erf(x, prec + 32, round_nearest)
    eps = mpf_shift(mpf_add(fone, mpf_abs(v), 30, round_ceiling), -(prec + 8))
    lo = mpf_sub(v, eps, prec, round_floor)
    hi = mpf_add(v, eps, prec, round_ceiling)
    return (lo, hi)


def _clip1(v) -> tuple:
    m1, p1 = mpf_neg(fone), fone
    return (_umax(v[0], m1), _umin(v[1], p1))


def _erf(x, prec: int) -> tuple:
    """erf on a real interval (increasing): endpoint values (wide intervals) or the midpoint value plus the derivative
    bound (2/sqrt(pi)) exp(-min x^2) times the radius (narrow intervals)."""
    lo, hi = x
    if lo == hi:
        return _clip1(_erf_point(lo, prec))
    width = to_float(mpf_sub(hi, lo, 53, round_ceiling))
    if width > 1e-6 or not math.isfinite(width):
        return _clip1((_erf_point(lo, prec)[0], _erf_point(hi, prec)[1]))
    mid = mpf_shift(mpf_add(lo, hi), -1)  # exact: the midpoint lies in [lo, hi]
    rad = _umax(mpf_sub(hi, mid, prec, round_ceiling), mpf_sub(mid, lo, prec, round_ceiling))
    m = _mig(x)
    slope = mpi_mul(_const("2/sqrtpi", prec), mpi_exp(mpi_neg(mpi_square(_pt(m), prec)), prec), prec)
    d = mpf_mul(slope[1], rad, prec, round_ceiling)
    v = _erf_point(mid, prec)
    return _clip1((mpf_sub(v[0], d, prec, round_floor), mpf_add(v[1], d, prec, round_ceiling)))


def _tanh_nonneg(x, prec: int) -> tuple:
    """tanh on an interval x >= 0: (1 - p) / (1 + p), p = exp(-2x), at the two ends (tanh is increasing)."""
    def at(t):
        p = mpi_exp(mpi_mul(_int(-2), _pt(t), prec), prec)
        return mpi_div(mpi_sub(_ONE, p, prec), mpi_add(_ONE, p, prec), prec)
    return (at(x[0])[0], at(x[1])[1])


def _tanh(x, prec: int) -> tuple:
    lo, hi = x
    if mpf_le(fzero, lo):
        return _tanh_nonneg(x, prec)
    if mpf_le(hi, fzero):
        return mpi_neg(_tanh_nonneg(mpi_neg(x), prec))
    a = mpi_neg(_tanh_nonneg((fzero, mpf_neg(lo)), prec))
    b = _tanh_nonneg((fzero, hi), prec)
    return (a[0], b[1])


def _F_upper(Y, prec: int):
    """An upper bound of F(Y) = int_0^Y exp(t^2) dt for an mpf Y >= 0: min(Y e^{Y^2}, (e^{Y^2} - 1) / Y)."""
    if Y == fzero:
        return fzero
    y = _pt(Y)
    e = mpi_exp(mpi_square(y, prec), prec)
    a = mpi_mul(y, e, prec)[1]
    b = mpi_div(mpi_sub(e, _ONE, prec), y, prec)[1]
    return _umin(a, b)


# ------------------------------------------------------------------------------------------------ the program
def _short(e, limit: int = 160) -> str:
    text = str(e)
    return text if len(text) <= limit else text[:limit] + " ..."


(_IN, _PARAM, _CONST, _ADD, _MUL, _POW, _SQRT, _EXP, _LOG, _ERF, _ERFACT, _ERFACTP, _TANH, _SIN, _COS, _SINH,
 _COSH) = range(17)

_NAMES = {_SQRT: "sqrt", _EXP: "exp", _LOG: "log", _ERF: "erf", _ERFACT: "ErfAct", _ERFACTP: "ErfActPrime",
          _TANH: "tanh", _SIN: "sin", _COS: "cos", _SINH: "sinh", _COSH: "cosh"}


class _Program:
    """The integrands of a group as one straight-line program (a DAG: equal sub-expressions are computed once), with
    the sub-expressions free of the integration variables (``invariant``) hoisted out of the per-node loop."""

    def __init__(self, exprs: Sequence[sp.Expr], n_params: int):
        from ..derive._nonlinear_gaussian import RULE_U, RULE_V, rule_parameter
        from ..model._activations import ErfAct, ErfActPrime
        self._u, self._v = RULE_U, RULE_V
        self._params = {rule_parameter(k + 1): k for k in range(n_params)}
        self._funcs = {ErfAct: _ERFACT, ErfActPrime: _ERFACTP, sp.erf: _ERF, sp.exp: _EXP, sp.log: _LOG,
                       sp.tanh: _TANH, sp.sin: _SIN, sp.cos: _COS, sp.sinh: _SINH, sp.cosh: _COSH}
        self.ops: list[tuple] = []
        self.field: list[bool] = []
        self.n_params = n_params
        self._memo: dict = {}
        self._const_cache: dict = {}
        self.outputs = [self._node(e, e) for e in exprs]
        self.field_ops = [(i,) + op for i, op in enumerate(self.ops) if self.field[i] and op[0] not in (_IN,)]
        self.inputs = [i for i, op in enumerate(self.ops) if op[0] == _IN]
        # which integration variables each op depends on (1: u only, 2: v only, 3: both): the u-only ops of the
        # two-direction sum are computed once per row of the lattice
        dep = []
        for op in self.ops:
            code = op[0]
            if code == _IN:
                dep.append(1 if op[1] == 0 else 2)
            elif code in (_PARAM, _CONST):
                dep.append(0)
            elif code in (_ADD, _MUL):
                dep.append(dep[op[1]] | dep[op[2]])
            else:
                dep.append(dep[op[1]])
        self.u_ops = [t for t in self.field_ops if dep[t[0]] == 1]
        self.uv_ops = [t for t in self.field_ops if dep[t[0]] & 2]

    # -- construction
    def _emit(self, op: tuple, field: bool) -> int:
        key = op
        if key in self._memo:
            return self._memo[key]
        self.ops.append(op)
        self.field.append(field)
        self._memo[key] = len(self.ops) - 1
        return len(self.ops) - 1

    def _node(self, e: sp.Expr, whole: sp.Expr) -> int:
        key = ("expr", e)
        if key in self._memo:
            return self._memo[key]
        i = self._build(e, whole)
        self._memo[key] = i
        return i

    def _number(self, e) -> int:
        return self._emit((_CONST, e), False)

    def _build(self, e: sp.Expr, whole: sp.Expr) -> int:
        if e == self._u:
            return self._emit((_IN, 0, None), True)
        if e == self._v:
            return self._emit((_IN, 1, None), True)
        if e in self._params:
            return self._emit((_PARAM, self._params[e], None), False)
        if e.is_Number or e in (sp.pi, sp.E):
            if not (e.is_Rational or e.is_Float or e in (sp.pi, sp.E)):
                raise UnsupportedIntegrand(f"no interval value for the number {e} in the integrand {_short(whole)}")
            return self._number(e)
        if isinstance(e, (sp.Add, sp.Mul)):
            code = _ADD if isinstance(e, sp.Add) else _MUL
            kids = [self._node(a, whole) for a in e.args]
            kids.sort(key=lambda k: self.field[k])  # invariant factors first: their partial results are hoisted
            acc = kids[0]
            for k in kids[1:]:
                acc = self._emit((code, acc, k), self.field[acc] or self.field[k])
            return acc
        if isinstance(e, sp.Pow):
            base, ex = e.args
            b = self._node(base, whole)
            if ex.is_Integer:
                return self._emit((_POW, b, int(ex)), self.field[b])
            if ex == sp.Rational(1, 2):
                return self._emit((_SQRT, b, None), self.field[b])
            if ex == sp.Rational(-1, 2):
                s = self._emit((_SQRT, b, None), self.field[b])
                return self._emit((_POW, s, -1), self.field[b])
            if self.field[b] or ex.free_symbols & {self._u, self._v}:
                raise UnsupportedIntegrand(f"the power {_short(e)} of a function of the integration variables has no "
                                           f"rigorous complex bound (integrand {_short(whole)})")
            x = self._node(ex, whole)
            lg = self._emit((_LOG, b, None), False)
            return self._emit((_EXP, self._emit((_MUL, x, lg), False), None), False)
        if isinstance(e, sp.Function) and type(e) in self._funcs and len(e.args) == 1:
            a = self._node(e.args[0], whole)
            return self._emit((self._funcs[type(e)], a, None), self.field[a])
        if isinstance(e, sp.erfc) and len(e.args) == 1:
            a = self._node(e.args[0], whole)
            er = self._emit((_ERF, a, None), self.field[a])
            neg = self._emit((_MUL, self._number(sp.Integer(-1)), er), self.field[a])
            return self._emit((_ADD, self._number(sp.Integer(1)), neg), self.field[a])
        if isinstance(e, sp.sech) and len(e.args) == 1:
            a = self._node(e.args[0], whole)
            return self._emit((_POW, self._emit((_COSH, a, None), self.field[a]), -1), self.field[a])
        raise UnsupportedIntegrand(f"no rigorous interval enclosure of {type(e).__name__} (in the integrand "
                                   f"{_short(whole)}); "
                                   f"supported: +, *, powers, exp, erf, ErfAct, ErfActPrime, tanh, sin, cos, and sqrt, "
                                   f"log, sinh, cosh of parameters")

    def constant(self, e, prec: int) -> tuple:
        key = (e, prec)
        v = self._const_cache.get(key)
        if v is None:
            if e is sp.pi:
                v = _const("pi", prec)
            elif e is sp.E:
                v = _const("e", prec)
            elif e.is_Integer:
                v = _int(int(e))
            elif e.is_Rational:
                v = _rat(int(e.p), int(e.q), prec)
            else:  # a Float: its binary value, exactly
                v = _pt(e._mpf_)
            self._const_cache[key] = v
        return v

    # -- the invariant part (real intervals, once per call)
    def invariants(self, params: Sequence[tuple], prec: int) -> list:
        vals: list = [None] * len(self.ops)
        for i, op in enumerate(self.ops):
            if self.field[i]:
                continue
            code = op[0]
            if code == _PARAM:
                vals[i] = params[op[1]]
            elif code == _CONST:
                vals[i] = self.constant(op[1], prec)
            else:
                vals[i] = _real_op(code, op, vals, prec)
        return vals

    # -- real evaluation at one node
    def run_real(self, vals: list, u, v, prec: int) -> None:
        for i in self.inputs:
            vals[i] = u if self.ops[i][1] == 0 else v
        for i, code, a, b in self.field_ops:
            if code == _MUL:
                vals[i] = mpi_mul(vals[a], vals[b], prec)
            elif code == _ADD:
                vals[i] = mpi_add(vals[a], vals[b], prec)
            else:
                vals[i] = _real_op(code, (code, a, b), vals, prec)


    # -- fixed-point evaluation (the interval sums): an interval is (lo, hi) Python ints, the value times 2^P
    def run_fixed(self, vals: list, ops: list, P: int) -> None:
        """Execute ``ops`` (``u_ops``, ``uv_ops`` or ``field_ops``) on fixed-point intervals: + and * exact in
        integers and rounded outwards to 2^-P; the other operations through libmpi at P + 10 bits."""
        for i, code, a, b in ops:
            if code == _MUL:
                vals[i] = _fmul(vals[a], vals[b], P)
            elif code == _ADD:
                x, y = vals[a], vals[b]
                vals[i] = (x[0] + y[0], x[1] + y[1])
            elif code == _POW and b > 0:
                vals[i] = _fpow(vals[a], b, P)
            else:
                arg = vals[a]
                m = (from_man_exp(arg[0], -P), from_man_exp(arg[1], -P))
                vals[i] = _fix(_real_op(code, (code, 0, b), [m], P + 10), P)


def _fix(v, P: int) -> tuple:
    """A raw mpf interval as a fixed-point interval (outwards)."""
    return (to_int(mpf_shift(v[0], P), round_floor), to_int(mpf_shift(v[1], P), round_ceiling))


def _unfix(v, P: int) -> tuple:
    return (from_man_exp(v[0], -P), from_man_exp(v[1], -P))


def _fmul(x, y, P: int) -> tuple:
    a0, a1 = x
    b0, b1 = y
    if a0 >= 0:
        if b0 >= 0:
            lo, hi = a0 * b0, a1 * b1
        elif b1 <= 0:
            lo, hi = a1 * b0, a0 * b1
        else:
            lo, hi = a1 * b0, a1 * b1
    elif a1 <= 0:
        if b0 >= 0:
            lo, hi = a0 * b1, a1 * b0
        elif b1 <= 0:
            lo, hi = a1 * b1, a0 * b0
        else:
            lo, hi = a0 * b1, a0 * b0
    elif b0 >= 0:
        lo, hi = a0 * b1, a1 * b1
    elif b1 <= 0:
        lo, hi = a1 * b0, a0 * b0
    else:
        lo, hi = min(a0 * b1, a1 * b0), max(a0 * b0, a1 * b1)
    return (lo >> P, -((-hi) >> P))


def _fsquare(x, P: int) -> tuple:
    a0, a1 = x
    if a0 >= 0:
        lo, hi = a0 * a0, a1 * a1
    elif a1 <= 0:
        lo, hi = a1 * a1, a0 * a0
    else:
        lo, hi = 0, max(a0 * a0, a1 * a1)
    return (lo >> P, -((-hi) >> P))


def _fpow(x, k: int, P: int) -> tuple:
    """x^k, k >= 1 (squares of enclosures are enclosures of the even powers, kept non-negative)."""
    if k == 1:
        return x
    if k % 2 == 0:
        return _fsquare(_fpow(x, k // 2, P), P)
    return _fmul(x, _fpow(x, k - 1, P), P)


def _real_op(code, op, vals, prec):
    a = vals[op[1]]
    if code == _ADD:
        return mpi_add(a, vals[op[2]], prec)
    if code == _MUL:
        return mpi_mul(a, vals[op[2]], prec)
    if code == _POW:
        k = op[2]
        if k < 0:
            if _has_zero(a):
                raise ZeroDivisionError("a negative power of an interval containing 0")
            return mpi_div(_ONE, mpi_pow_int(a, -k, prec + 10), prec)
        return mpi_pow_int(a, k, prec)
    if code == _SQRT:
        if mpf_lt(a[0], fzero):
            raise ValueError("sqrt of an interval with negative values")
        return mpi_sqrt(a, prec)
    if code == _EXP:
        return mpi_exp(a, prec)
    if code == _LOG:
        if not mpf_lt(fzero, a[0]):
            raise ValueError("log of an interval with non-positive values")
        return mpi_log(a, prec)
    if code == _ERF:
        return _erf(a, prec)
    if code == _ERFACT:
        return _erf(mpi_mul(a, _const("isqrt2", prec), prec), prec)
    if code == _ERFACTP:
        return mpi_mul(_const("sqrt(2/pi)", prec), mpi_exp(mpi_neg(_half(mpi_square(a, prec))), prec), prec)
    if code == _TANH:
        return _tanh(a, prec)
    if code == _SIN:
        return mpi_cos_sin(a, prec)[1]
    if code == _COS:
        return mpi_cos_sin(a, prec)[0]
    if code == _SINH:
        return mpi_cosh_sinh(a, prec)[1]
    if code == _COSH:
        return mpi_cosh_sinh(a, prec)[0]
    raise AssertionError(code)  # pragma: no cover


def _half(v) -> tuple:
    """v / 2 exactly."""
    return (mpf_shift(v[0], -1), mpf_shift(v[1], -1))


# ------------------------------------------------------------------------------------------------ growth bounds
class _Growth:
    """|value| <= A w^n and |Im value| <= B w^m on the strip region (A, B upper bounds as mpf)."""

    __slots__ = ("A", "n", "B", "m")

    def __init__(self, A, n, B, m):
        self.A, self.n, self.B, self.m = A, n, B, m


def _uadd(a, b, prec):
    return mpf_add(a, b, prec, round_ceiling)


def _umul(a, b, prec):
    return mpf_mul(a, b, prec, round_ceiling)


def _growth(prog: _Program, inv: list, inputs: Sequence[_Growth], prec: int) -> list[_Growth]:
    """The growth bounds of every output of ``prog`` (``inv`` its invariant values)."""
    g: list = [None] * len(prog.ops)
    for i, op in enumerate(prog.ops):
        if not prog.field[i]:
            g[i] = _Growth(_mag(inv[i]), 0, fzero, 0)
            continue
        code = op[0]
        if code == _IN:
            g[i] = inputs[op[1]]
            continue
        x = g[op[1]]
        if code == _ADD:
            y = g[op[2]]
            g[i] = _Growth(_uadd(x.A, y.A, prec), max(x.n, y.n), _uadd(x.B, y.B, prec),
                           max([t.m for t in (x, y) if t.B != fzero], default=0))
        elif code == _MUL:
            y = g[op[2]]
            # Im(x y) = Re x Im y + Im x Re y; a term with a zero factor does not count for the exponent
            terms = [(_umul(x.A, y.B, prec), x.n + y.m), (_umul(x.B, y.A, prec), x.m + y.n)]
            terms = [t for t in terms if t[0] != fzero]
            g[i] = _Growth(_umul(x.A, y.A, prec), x.n + y.n,
                           _uadd(terms[0][0], terms[1][0], prec) if len(terms) == 2 else
                           (terms[0][0] if terms else fzero), max((t[1] for t in terms), default=0))
        elif code == _POW:
            k = op[2]
            if k < 0:
                raise UnsupportedIntegrand("a negative power of a function of the integration variables has no "
                                           "growth bound on a strip")
            if k == 0:
                g[i] = _Growth(fone, 0, fzero, 0)
                continue
            Ak1 = _pow_up(x.A, k - 1, prec)
            B = _umul(_umul(from_int(k), Ak1, prec), x.B, prec)
            g[i] = _Growth(_umul(Ak1, x.A, prec), k * x.n, B, (k - 1) * x.n + x.m if B != fzero else 0)
        elif code in (_ERF, _ERFACT):
            if x.m:
                raise UnsupportedIntegrand(f"the imaginary part of the argument of {_NAMES[code]} grows on the strip")
            Y = x.B if code == _ERF else _umul(x.B, _const("isqrt2", prec)[1], prec)
            C = _umul(_const("2/sqrtpi", prec)[1], _F_upper(Y, prec), prec)
            g[i] = _Growth(_uadd(fone, C, prec), 0, C, 0)
        elif code == _ERFACTP:
            if x.m:
                raise UnsupportedIntegrand("the imaginary part of the argument of ErfActPrime grows on the strip")
            e = mpi_exp(_half(mpi_square(_pt(x.B), prec)), prec)[1]
            A = _umul(_const("sqrt(2/pi)", prec)[1], e, prec)
            g[i] = _Growth(A, 0, A, 0)
        elif code == _EXP:
            A = mpi_exp(_pt(_re_upper(prog, op[1], inv, g, prec)), prec)[1]
            g[i] = _Growth(A, 0, A, 0)
        elif code == _TANH:
            if x.m or not mpf_lt(x.B, _const("pi/2", prec)[0]):
                raise UnsupportedIntegrand("tanh: the strip reaches a pole (|Im| >= pi/2)")
            c = mpi_cos_sin(_pt(x.B), prec)[0]
            A = mpi_div(_ONE, c, prec)[1]
            g[i] = _Growth(A, 0, A, 0)
        elif code in (_SIN, _COS):
            if x.m:
                raise UnsupportedIntegrand(f"the imaginary part of the argument of {_NAMES[code]} grows on the strip")
            ch, sh = mpi_cosh_sinh(_pt(x.B), prec)
            g[i] = _Growth(ch[1], 0, sh[1], 0)
        else:
            raise UnsupportedIntegrand(f"{_NAMES.get(code, code)} of a function of the integration variables has no "
                                       f"growth bound on a strip")
    return [g[k] for k in prog.outputs]


def _pow_up(a, k: int, prec: int):
    return mpi_pow_int(_pt(a), k, prec)[1] if k else fone


def _re_upper(prog: _Program, k: int, inv: list, g: list, prec: int):
    """An upper bound of Re(argument) of exp over the strip, for arguments that are sums of invariant terms and terms
    c z^2 with c <= 0 (Re(c z^2) = c (x^2 - y^2) <= |c| (Im z)^2)."""
    terms, stack = [], [k]
    while stack:
        j = stack.pop()
        op = prog.ops[j]
        if prog.field[j] and op[0] == _ADD:
            stack += [op[1], op[2]]
        else:
            terms.append(j)
    total = fzero
    for j in terms:
        if not prog.field[j]:
            total = _uadd(total, inv[j][1], prec)
            continue
        op = prog.ops[j]
        c, sq = None, None
        if op[0] == _MUL:
            a, b = op[1], op[2]
            for x, y in ((a, b), (b, a)):
                if not prog.field[x] and prog.ops[y][0] == _POW and prog.ops[y][2] == 2:
                    c, sq = inv[x], prog.ops[y][1]
        elif op[0] == _POW and op[2] == 2:
            c, sq = None, None  # +z^2: Re unbounded above
        if c is None or not mpf_le(c[1], fzero) or g[sq].m:
            raise UnsupportedIntegrand("exp of an argument that is not (const) + (negative const) * z^2 has no "
                                       "growth bound on a strip")
        total = _uadd(total, _umul(_mag(c), _umul(g[sq].B, g[sq].B, prec), prec), prec)
    return total


# ------------------------------------------------------------------------------------------------ Gaussian moments
def _phi(y, prec: int) -> tuple:
    """phi(y) = exp(-y^2/2) / sqrt(2 pi) on an interval."""
    return mpi_mul(_const("1/sqrt(2pi)", prec), mpi_exp(mpi_neg(_half(mpi_square(y, prec))), prec), prec)


_J_CACHE: dict = {}


def _J(R: float, n: int, prec: int):
    key = (R, n, prec)
    if key not in _J_CACHE:
        if len(_J_CACHE) > 4096:
            _J_CACHE.clear()
        _J_CACHE[key] = _J_raw(R, n, prec)
    return _J_CACHE[key]


def _J_raw(R: float, n: int, prec: int):
    """Upper bound of int_R^inf phi(x) (1 + x)^n dx (R > 0 with R (1 + R) > n): the log of the integrand is concave,
    so it lies below its tangent at R: <= phi(R) (1 + R)^n / (R - n / (1 + R)). Returns None if R is too small."""
    if R <= 0 or R * (1 + R) <= n + 1e-9:
        return None
    r = _rat(*_frac(R), prec)
    one_r = mpi_add(_ONE, r, prec)
    slope = mpi_sub(r, mpi_div(_int(n), one_r, prec), prec)
    if not mpf_lt(fzero, slope[0]):
        return None
    return mpi_div(mpi_mul(_phi(r, prec), mpi_pow_int(one_r, n, prec), prec), slope, prec)[1]


_INF = mpmath.inf._mpf_


def _flog(x) -> float:
    """log of a positive mpf as a float (no overflow); -inf for 0, inf for inf."""
    if x == fzero:
        return -math.inf
    sign, man, exp, bc = x
    if sign or not man:
        return math.inf if x == _INF else -math.inf
    try:
        return math.log(man) + exp * math.log(2)
    except OverflowError:  # an exponent beyond the float range (a bound of no use)
        return math.inf if exp > 0 else -math.inf


def _flog_J(R: float, n: int):
    """log of the bound of ``_J`` in floats (None where it does not hold)."""
    if R <= 0 or R * (1 + R) <= n + 1e-9:
        return None
    slope = R - n / (1 + R)
    return -R * R / 2 - 0.5 * math.log(2 * math.pi) + n * math.log1p(R) - math.log(slope)


def _frac(x: float) -> tuple[int, int]:
    """x as an exact fraction p / q (x is a binary float)."""
    return x.as_integer_ratio()


_MOMENTS: dict = {}


def _moment1(n: int, prec: int):
    """Upper bound of int phi(x) (1 + |x|)^n dx = sum_k C(n, k) E|X|^k, E|X|^k = (k-1)!! (sqrt(2/pi) if k odd)."""
    key = (1, n, prec)
    if key not in _MOMENTS:
        total = _ZERO
        for k in range(n + 1):
            dfact = 1
            for j in range(k - 1, 0, -2):
                dfact *= j
            m = _int(math.comb(n, k) * dfact)
            if k % 2:
                m = mpi_mul(m, _const("sqrt(2/pi)", prec), prec)
            total = mpi_add(total, m, prec)
        _MOMENTS[key] = total[1]
    return _MOMENTS[key]


def _moment2(n: int, prec: int):
    """Upper bound of int phi_2(x) (1 + |x|)^n dx over the plane = sum_k C(n, k) E R^k, R Rayleigh,
    E R^k = 2^(k/2) Gamma(1 + k/2)."""
    key = (2, n, prec)
    if key not in _MOMENTS:
        total = _ZERO
        for k in range(n + 1):
            if k % 2 == 0:
                m = _int(math.comb(n, k) * 2 ** (k // 2) * math.factorial(k // 2))
            else:  # Gamma(1 + k/2) = prod_{j odd <= k} (j/2) sqrt(pi)
                num = 1
                for j in range(k, 0, -2):
                    num *= j
                g = mpi_mul(_rat(num, 2 ** ((k + 1) // 2), prec), mpi_sqrt(_const("pi", prec), prec), prec)
                m = mpi_mul(_int(math.comb(n, k) * 2 ** (k // 2)), mpi_mul(g, _const("sqrt2", prec), prec), prec)
            total = mpi_add(total, m, prec)
        _MOMENTS[key] = total[1]
    return _MOMENTS[key]


def _lattice_moment(h: float, n: int, prec: int):
    """Upper bound of h sum_{k in Z} phi(k h) (1 + |k h|)^n: explicit terms for |k h| <= R plus 2 J(R - h, n)."""
    key = ("lat", h, n, prec)
    if key not in _MOMENTS:
        R = max(8.0, math.sqrt(n) + 4)
        hh = _rat(*_frac(h), prec)
        total = _ZERO
        K = int(R / h)
        for k in range(-K, K + 1):
            y = mpi_mul(_int(k), hh, prec)
            total = mpi_add(total, mpi_mul(_phi(y, prec), mpi_pow_int(mpi_add(_ONE, _abs_iv(y), prec), n, prec),
                                           prec), prec)
        total = mpi_mul(total, hh, prec)
        tail = _J(K * h, n, prec)  # h phi (1 + x)^n at x = k h, k > K, is below its integral over [k h - h, k h]
        if tail is None:
            raise ValueError("lattice moment: radius too small")  # pragma: no cover
        _MOMENTS[key] = _uadd(total[1], _umul(from_int(2), tail, prec), prec)
    return _MOMENTS[key]


def _abs_iv(v):
    if mpf_le(fzero, v[0]):
        return v
    if mpf_le(v[1], fzero):
        return mpi_neg(v)
    return (fzero, _mag(v))


def _disc_error(M, d: float, h: float, prec: int):
    """2 M / (exp(2 pi d / h) - 1), an upper bound (M an mpf)."""
    x = mpi_mul(_const("2pi", prec), mpi_div(_rat(*_frac(d), prec), _rat(*_frac(h), prec), prec), prec)
    den = mpi_sub(mpi_exp(x, prec), _ONE, prec)
    return mpi_div(mpi_mul(_int(2), _pt(M), prec), den, prec)[1]


# ------------------------------------------------------------------------------------------------ the group enclosure
#: Steps of the interval trapezoidal sums (binary fractions: the nodes k h are exact).
STEPS = (1.0, 0.75, 0.625, 0.5, 0.4375, 0.375, 0.3125, 0.28125, 0.25, 0.21875, 0.1875, 0.15625, 0.125, 0.109375,
         0.09375, 0.078125, 0.0625, 0.046875, 0.03125)
#: Strip half-widths tried (in the whitened variables).
WIDTHS = tuple(0.0625 * 2 ** (k / 2) for k in range(17))  # 0.0625 .. 16


def _inflate(v, rel: float, prec: int) -> tuple:
    """v widened by rel (|v| + 1e-30) on each side (for the box the bound tables are cached on)."""
    r = mpf_mul(mpf_add(_mag(v), from_rational(1, 10 ** 30, 60), 60, round_ceiling), mpmath.mpf(rel)._mpf_, 60,
                round_ceiling)
    return (mpf_sub(v[0], r, prec, round_floor), mpf_add(v[1], r, prec, round_ceiling))


def _inside(v, w) -> bool:
    return mpf_le(w[0], v[0]) and mpf_le(v[1], w[1])


class RuleGroupEnclosure:
    """Proven enclosures of E[G_i] for the integrands ``exprs`` (SymPy expressions in ``RULE_U`` (and ``RULE_V`` for
    ``dim`` 2) and the parameter slots) sharing one covariance and parameter vector.

    Raises:
        UnsupportedIntegrand: an integrand uses a function without a rigorous complex bound here.
    """

    def __init__(self, exprs: Sequence[sp.Expr], dim: int, n_params: int):
        if dim not in (1, 2):
            raise ValueError("the rules take one or two Gaussian directions")
        self.dim = dim
        self.n_params = n_params
        self.prog = _Program(list(exprs), n_params)
        self._tables: list = []  # [(box, prec, tables)]
        self._sums: dict = {}

    # -- covariance factor
    def _factor(self, S: Sequence[tuple], prec: int):
        if self.dim == 1:
            if mpf_lt(S[0][0], fzero):
                raise ValueError("the variance box has negative values")
            return (mpi_sqrt(S[0], prec),)
        S11, S12, S22 = S
        if mpf_lt(S11[0], fzero) or mpf_lt(S22[0], fzero):
            raise ValueError("the covariance box has negative variances")
        a = mpi_sqrt(S11, prec)
        if S12 == _ZERO:
            b = _ZERO
        else:
            if not mpf_lt(fzero, a[0]):
                raise ValueError("the covariance box contains S11 = 0 with S12 != 0")
            b = mpi_div(S12, a, prec)
        c2 = mpi_sub(S22, mpi_square(b, prec), prec)
        if mpf_lt(c2[0], fzero):
            raise ValueError("the covariance box contains matrices that are not positive semi-definite")
        return a, b, mpi_sqrt(c2, prec)

    # -- bound tables (growth bounds for each strip width), cached on an inflated box
    def _tables_for(self, S, p, prec):
        box = list(S) + list(p)
        for cached_box, cprec, tables in self._tables:
            if cprec == prec and all(_inside(v, w) for v, w in zip(box, cached_box)):
                return tables
        # exact zeros stay exact (S12 = 0: no correlation) and variances stay >= 0
        diagonal = {0} if self.dim == 1 else {0, 2}
        big = []
        for j, v in enumerate(box):
            w = v if v == _ZERO else _inflate(v, 1e-4, prec)
            if j in diagonal and mpf_le(fzero, v[0]) and mpf_lt(w[0], fzero):
                w = (fzero, w[1])
            big.append(w)
        Sb, pb = big[:len(S)], big[len(S):]
        factor = self._factor(Sb, prec)
        inv = self.prog.invariants(pb, prec)
        tables = {}
        mags = [_mag(f) for f in factor]
        if self.dim == 1:
            (s,) = mags
            tables["M"] = self._growth_list(inv, prec, lambda d: [self._in1(s, d)], moment=1)
            tables["tail"] = self._growth_at(inv, prec, [self._in1(s, 0.0)])
        else:
            a, b, c = mags
            tables["M1"] = self._growth_list(inv, prec, lambda d: self._in2(a, b, c, d, 0.0), moment=2)
            tables["Q"] = self._growth_list(inv, prec, lambda d: self._in2(a, b, c, 0.0, d), moment=None)
            tables["tail"] = self._growth_at(inv, prec, self._in2(a, b, c, 0.0, 0.0))
        self._tables.append((big, prec, tables))
        if len(self._tables) > 8:
            self._tables.pop(0)
        return tables

    @staticmethod
    def _in1(s, d: float):
        dd = mpmath.mpf(d)._mpf_
        return _Growth(_umul(s, _uadd(fone, dd, 60), 60), 1, _umul(s, dd, 60), 0)

    @staticmethod
    def _in2(a, b, c, d1: float, d2: float):
        d1m, d2m = mpmath.mpf(d1)._mpf_, mpmath.mpf(d2)._mpf_
        u = _Growth(_umul(a, _uadd(fone, d1m, 60), 60), 1, _umul(a, d1m, 60), 0)
        v = _Growth(_uadd(_umul(b, _uadd(fone, d1m, 60), 60), _umul(c, _uadd(fone, d2m, 60), 60), 60), 1,
                    _uadd(_umul(b, d1m, 60), _umul(c, d2m, 60), 60), 0)
        return [u, v]

    def _growth_at(self, inv, prec, inputs):
        return [(g.A, g.n) for g in _growth(self.prog, inv, inputs, prec)]

    def _growth_list(self, inv, prec, inputs_of, moment):
        """{d: [(M-part, n) per output]}: for moment 1 / 2 the bound exp(d^2/2) A int phi (1 + |x|)^n (complete M);
        for None, (exp(d^2/2) A, n) (the lattice factor is applied per step)."""
        out = {}
        for d in WIDTHS:
            try:
                gs = _growth(self.prog, inv, inputs_of(d), prec)
            except UnsupportedIntegrand as exc:
                if "pole" in str(exc):
                    continue  # this strip is too wide (tanh); narrower ones are tried
                raise
            ed = mpi_exp(_pt(_half(mpi_square(_pt(mpmath.mpf(d)._mpf_), prec))[1]), prec)[1]
            row = []
            for g in gs:
                A = _umul(ed, g.A, prec)
                if moment == 1:
                    row.append((_umul(A, _moment1(g.n, prec), prec), g.n))
                elif moment == 2:
                    row.append((_umul(A, _moment2(g.n, prec), prec), g.n))
                else:
                    row.append((_umul(A, _moment1(g.n, prec), prec), g.n))
            out[d] = row
        if not out:
            raise UnsupportedIntegrand("no strip around the real axis on which the integrand has a bound")
        return out

    # -- the plan: steps, truncation radius and the proven bounds
    @staticmethod
    def _log_rows(table: dict, n_out: int) -> list[list[tuple[float, float]]]:
        """Per output, [(d, log M(d))] (floats, for choosing; the bounds themselves are recomputed rigorously)."""
        return [[(d, _flog(row[i][0])) for d, row in table.items()] for i in range(n_out)]

    @staticmethod
    def _log_disc(rows: list, h: float) -> tuple[float, float]:
        """min over d of log(2 M(d) / (exp(2 pi d / h) - 1)) and the d attaining it (floats)."""
        best, arg = math.inf, None
        for d, lm in rows:
            x = 2 * math.pi * d / h
            v = math.log(2) + lm - (x + math.log1p(-math.exp(-x)) if x > 30 else math.log(math.expm1(x)))
            if v < best:
                best, arg = v, d
        return best, arg

    @staticmethod
    def _radius(log_a: list[tuple[float, int]], log_target: float, shift: int) -> float:
        """The smallest R (grid 1/8) with max_i log A_i + log J(R, n_i + shift) <= log_target."""
        R = 2.0
        while R < 60:
            ok = True
            for la, n in log_a:
                lj = _flog_J(R, n + shift)
                if lj is None or la + lj > log_target:
                    ok = False
                    break
            if ok:
                return R
            R += 0.125
        return R

    @staticmethod
    def _count2(h1, h2, L):
        n = 0
        K = int(L / h1)
        for i in range(-K, K + 1):
            r2 = L * L - (i * h1) ** 2
            if r2 >= 0:
                n += 2 * int(math.sqrt(r2) / h2) + 1
        return n

    def _plan(self, tables, tol: float, budget: int, prec: int):
        """(steps, L, nodes, per-output bounds E_i, met): the cheapest rule whose bound (estimated in floats) meets
        ``tol`` within the node budget, else the cheapest meeting 10^3 tol, 10^6 tol, ...; the bounds returned are
        then computed rigorously (upper rounding) for the chosen rule."""
        n_out = len(self.prog.outputs)
        third = math.log(tol / 3)
        tail = tables["tail"]
        log_a = [(_flog(A) + (math.log(2) if self.dim == 1 else 0.5 * math.log(2 * math.pi)), n) for A, n in tail]
        if self.dim == 1:
            rows = self._log_rows(tables["M"], n_out)
            disc = {h: [self._log_disc(r, h) for r in rows] for h in STEPS}
            choice = None
            for scale in range(0, 40, 3):
                target = third + scale * math.log(10)
                R = self._radius(log_a, target, 0)
                fits = []
                for h in STEPS:
                    if max(v for v, _ in disc[h]) <= target:
                        L = R + h
                        nodes = 2 * int(L / h) + 1
                        if nodes <= budget:
                            fits.append((nodes, h, L))
                if fits:
                    nodes, h, L = min(fits)
                    choice = (h,), L, nodes, scale == 0
                    break
            if choice is None:
                h = min((h for h in STEPS if 2 * int(8 / h) + 1 <= budget), default=STEPS[0])
                choice = (h,), 8.0, 2 * int(8 / h) + 1, False
            (h,), L, nodes, met = choice
            bounds = []
            for i in range(n_out):
                d = disc[h][i][1]
                e = _disc_error(tables["M"][d][i][0], d, h, prec)
                A, n = tail[i]
                # the sum takes k = -K .. K; h phi (1 + x)^n at x = k h, k > K, is below its integral over
                # [k h - h, k h] (decreasing there), so the rest is <= 2 A J(K h, n)
                J = _J(int(L / h) * h, n, prec)
                t = _umul(_umul(from_int(2), A, prec), J, prec) if J is not None else _INF
                bounds.append(_uadd(e, t, prec))
            return (h,), L, nodes, bounds, met and all(to_float(b) <= tol for b in bounds)
        # two directions: |I - T1 T2| <= |I - T1 I| + |T1 (I - T2)| + (the lattice outside the disc)
        rows1 = self._log_rows(tables["M1"], n_out)
        rowsq = self._log_rows(tables["Q"], n_out)
        nq = [tables["Q"][next(iter(tables["Q"]))][i][1] for i in range(n_out)]
        disc1 = {h: [self._log_disc(r, h) for r in rows1] for h in STEPS}
        discq = {h: [self._log_disc(r, h) for r in rowsq] for h in STEPS}
        # (for choosing: the lattice moment is within a few per cent of the integral for h <= 1; the chosen rule's
        # bound below uses the rigorous lattice moment)
        lat = {h: {n: _flog(_moment1(n, prec)) + math.log(1.5) for n in set(nq)} for h in STEPS}
        worst1 = {h: max(v for v, _ in disc1[h]) for h in STEPS}

        def worst2(h1, h2):
            return max(v + lat[h1][nq[i]] for i, (v, _) in enumerate(discq[h2]))

        choice = None
        for scale in range(0, 40, 3):
            target = third + scale * math.log(10)
            R = self._radius(log_a, target, 1)
            fits = []
            for h1 in STEPS:
                if worst1[h1] > target:
                    continue
                for h2 in STEPS:
                    if worst2(h1, h2) > target:
                        continue
                    L = R + math.sqrt(h1 * h1 + h2 * h2)
                    nodes = self._count2(h1, h2, L)
                    if nodes <= budget:
                        fits.append((nodes, h1, h2, L))
                    break  # finer h2 only cost more
            if fits:
                nodes, h1, h2, L = min(fits)
                choice = (h1, h2), L, nodes, scale == 0
                break
        if choice is None:
            h = min((h for h in STEPS if self._count2(h, h, 8.0) <= budget), default=STEPS[0])
            choice = (h, h), 8.0, self._count2(h, h, 8.0), False
        (h1, h2), L, nodes, met = choice
        delta = math.sqrt(h1 * h1 + h2 * h2) / 2
        bounds = []
        for i in range(n_out):
            d1 = disc1[h1][i][1]
            e1 = _disc_error(tables["M1"][d1][i][0], d1, h1, prec)
            d2 = discq[h2][i][1]
            Q, n = tables["Q"][d2][i]
            e2 = _disc_error(_umul(Q, _lattice_moment(h1, n, prec), prec), d2, h2, prec)
            A, n0 = tail[i]
            # lattice points outside the disc (|y_k| > L, with a margin of 1e-6 for the float test of the sum's
            # range); delta <= 1 / sqrt(2) < 1, so (s + delta) <= (1 + s) in the cell bound
            J = _J(L - 2 * delta - 1e-6, n0 + 1, prec)
            t = _umul(_umul(A, _const("sqrt(2pi)", prec)[1], prec), J, prec) if J is not None else _INF
            bounds.append(_uadd(_uadd(e1, e2, prec), t, prec))
        return (h1, h2), L, nodes, bounds, met and all(to_float(b) <= tol for b in bounds)

    # -- the enclosure
    def enclose(self, S: Sequence[tuple], p: Sequence[tuple], *, tol: float = DEFAULT_TOLERANCE,
                budget: int = DEFAULT_BUDGET, prec: int | None = None) -> tuple[list[tuple], Report]:
        """Intervals (raw (lo, hi) mpf tuples) proven to contain E[G_i] for every covariance in ``S`` ((S11,) or
        (S11, S12, S22), raw intervals) and parameters in ``p``, and the ``Report``.

        Raises:
            UnsupportedIntegrand: no rigorous bound for an integrand. ValueError: the covariance box leaves the
            positive semi-definite matrices.
        """
        if prec is None:
            prec = max(80, int(-math.log2(tol)) + 40)
        S = [tuple(v) for v in S]
        p = [tuple(v) for v in p]
        key = (tuple(S), tuple(p), tol, budget, prec)
        if key in self._sums:
            return self._sums[key]
        tables = self._tables_for(S, p, prec)
        steps, L, nodes, bounds, met = self._plan(tables, tol, budget, prec)
        # headroom for the fixed-point sum: |G| <= A (1 + L)^n on the lattice, so absolute roundings of 2^-P in G
        # and of the weights are amplified by at most about that much
        big = max((_flog(A) + n * math.log1p(L) for A, n in tables["tail"]), default=0.0) / math.log(2)
        head = int(min(max(big, 0.0), 4096)) + 8
        sums = self._sum(S, p, steps, L, prec + head, head)
        out = [mpi_add(s, _sym(b), prec) for s, b in zip(sums, bounds)]
        report = Report(bound=max(to_float(b) for b in bounds) if bounds else 0.0,
                        bounds=tuple(to_float(b) for b in bounds), steps=steps, radius=L, nodes=nodes,
                        tolerance=tol, met=met)
        if len(self._sums) > 64:
            self._sums.clear()
        self._sums[key] = (out, report)
        return out, report

    def _sum(self, S, p, steps, L, prec, head: int = 8) -> list[tuple]:
        """The trapezoidal sum over the lattice points in |y| <= L, in fixed-point interval arithmetic (resolution
        2^-P, P = ``prec`` bits, every operation rounded outwards; the weights at resolution 2^-(P + ``head``), as
        they multiply values up to about 2^head): raw mpf intervals."""
        prog = self.prog
        P = prec
        Pw = P + head
        factor = self._factor(S, prec)
        inv = prog.invariants(p, prec)
        vals = [_fix(v, P) if v is not None else None for v in inv]
        outs = prog.outputs
        n_out = len(outs)
        acc = [(0, 0)] * n_out
        u_in = [i for i in prog.inputs if prog.ops[i][1] == 0]
        v_in = [i for i in prog.inputs if prog.ops[i][1] == 1]
        if self.dim == 1:
            (h,) = steps
            (s,) = factor
            hh = _rat(*_frac(h), prec)
            K = int(L / h)
            for k in range(-K, K + 1):
                y = mpi_mul(_int(k), hh, prec)
                w = _fix(mpi_mul(hh, _phi(y, Pw), Pw), Pw)
                u = _fix(mpi_mul(s, y, prec), P)
                for i in u_in:
                    vals[i] = u
                prog.run_fixed(vals, prog.field_ops, P)
                for j, o in enumerate(outs):
                    t = _fmul(w, vals[o], Pw)
                    a = acc[j]
                    acc[j] = (a[0] + t[0], a[1] + t[1])
            return [_unfix(a, P) for a in acc]
        h1, h2 = steps
        a, b, c = factor
        hh1, hh2 = _rat(*_frac(h1), prec), _rat(*_frac(h2), prec)
        K1 = int(L / h1)
        K2 = int(L / h2)
        y2s = {j: mpi_mul(_int(j), hh2, prec) for j in range(-K2, K2 + 1)}
        w2 = {j: _fix(_phi(y, Pw), Pw) for j, y in y2s.items()}
        cy2 = {j: _fix(mpi_mul(c, y, prec), P) for j, y in y2s.items()}
        scale = mpi_mul(hh1, hh2, prec)
        for i in range(-K1, K1 + 1):
            r2 = L * L - (i * h1) ** 2
            if r2 < 0:
                continue
            J = int(math.sqrt(r2) / h2)
            y1 = mpi_mul(_int(i), hh1, prec)
            u = _fix(mpi_mul(a, y1, prec), P)
            by1 = _fix(mpi_mul(b, y1, prec), P)
            for q in u_in:
                vals[q] = u
            prog.run_fixed(vals, prog.u_ops, P)
            inner = [(0, 0)] * n_out
            for j in range(-J, J + 1):
                cy = cy2[j]
                v = (by1[0] + cy[0], by1[1] + cy[1])
                for q in v_in:
                    vals[q] = v
                prog.run_fixed(vals, prog.uv_ops, P)
                wj = w2[j]
                for q, o in enumerate(outs):
                    t = _fmul(wj, vals[o], Pw)
                    x = inner[q]
                    inner[q] = (x[0] + t[0], x[1] + t[1])
            w1 = _fix(mpi_mul(scale, _phi(y1, Pw), Pw), Pw)
            for q in range(n_out):
                t = _fmul(w1, inner[q], Pw)
                x = acc[q]
                acc[q] = (x[0] + t[0], x[1] + t[1])
        return [_unfix(x, P) for x in acc]


_GROUPS: dict = {}


def group_enclosure(dim: int, integrands: Sequence, n_params: int) -> RuleGroupEnclosure:
    """The (cached) ``RuleGroupEnclosure`` of ``Integrand`` atoms (or integrand expressions) of one group: its bound
    tables and sums are kept between calls (a Krawczyk test and its retries evaluate the same group many times)."""
    Gs = tuple(getattr(g, "G", g) for g in integrands)
    key = (dim, Gs, n_params)
    if key not in _GROUPS:
        if len(_GROUPS) > 64:
            _GROUPS.clear()
        _GROUPS[key] = RuleGroupEnclosure(list(Gs), dim, n_params)
    return _GROUPS[key]


# ------------------------------------------------------------------------------------------------ convenience
def _as_interval(x, prec: int) -> tuple:
    """A raw interval from an int, a decimal string (enclosed outwards), an mpf, a float (exact), an mpmath iv
    interval or a (lo, hi) pair of any of those."""
    if isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], int | str | float) and \
            isinstance(x[0], tuple):
        return x
    if isinstance(x, (tuple, list)) and len(x) == 2:
        lo, hi = _as_interval(x[0], prec), _as_interval(x[1], prec)
        return (lo[0], hi[1])
    if isinstance(x, bool):
        raise TypeError("a bool is not a number")
    if isinstance(x, int):
        return _int(x)
    if isinstance(x, float):
        f = mpmath.mpf(x)._mpf_
        return (f, f)
    if isinstance(x, mpmath.mpf):
        return (x._mpf_, x._mpf_)
    if isinstance(x, str):
        old = mpmath.iv.prec
        mpmath.iv.prec = prec
        try:
            return mpmath.iv.mpf(x)._mpi_
        finally:
            mpmath.iv.prec = old
    if hasattr(x, "_mpi_"):
        return x._mpi_
    raise TypeError(f"no interval of {type(x).__name__}")


def enclose_expectation(G: sp.Expr, S, params: Sequence = (), *, tol: float = DEFAULT_TOLERANCE,
                        budget: int = DEFAULT_BUDGET, prec: int | None = None):
    """A proven enclosure of E[G(u)] (u ~ N(0, S11), ``S`` = (S11,)) or E[G(u, v)] ((u, v) ~ N(0, S),
    ``S`` = (S11, S12, S22)) for G in ``RULE_U``, ``RULE_V`` and parameter slots ``rule_parameter(k)`` (values
    ``params``). Entries of ``S`` and ``params`` may be numbers, decimal strings or (lo, hi) pairs.

    Returns:
        ((lo, hi) as mpmath mpf, ``Report``).
    """
    if len(S) not in (1, 3):
        raise ValueError("S is (S11,) or (S11, S12, S22)")
    work = prec or max(80, int(-math.log2(tol)) + 40)
    group = RuleGroupEnclosure([G], 1 if len(S) == 1 else 2, len(params))
    out, report = group.enclose([_as_interval(x, work) for x in S], [_as_interval(x, work) for x in params], tol=tol,
                                budget=budget, prec=work)
    make = mpmath.mp.make_mpf
    return (make(out[0][0]), make(out[0][1])), report
