"""One Newton family, written once against a numeric context (``_context``): float64 or mpmath at any precision.

``newton(ctx, F, J, x0, damping=...)`` solves F(x) = 0 on a coordinate subspace with
  - ``damping="none"``: full Newton steps (optionally on a precision ladder in mpmath: the working precision doubles
    with each iteration, as quadratic convergence doubles the correct digits, then steps at the final precision);
  - ``damping="line"``: fraction-to-boundary damping of positive coordinates and backtracking on the residual;
  - ``damping="lm"``: Levenberg--Marquardt, equilibrated, with damping mu = theta |F| (Fan--Yuan);
and Farrell deflation of known roots (so a root is never found twice). ``newton_float`` (damped, deflated, float64)
and ``newton_mp`` (precision ladder) are thin wrappers; ``refine_two_precisions`` is the mpmath refinement at two
precisions with the digits on which they agree.

References: P. E. Farrell, A. Birkisson, S. W. Funke, "Deflation techniques for finding distinct solutions of
nonlinear partial differential equations", SIAM J. Sci. Comput. 37 (2015) A2026. J. Fan, Y. Yuan, "On the quadratic
convergence of the Levenberg-Marquardt method without nonsingularity assumption", Computing 74 (2005) 23.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import mpmath
import numpy as np

from ._context import FLOAT64, Float64, MpContext, SingularMatrix

__all__ = ["Counter", "NewtonResult", "newton", "newton_float", "newton_mp", "MpNewtonResult", "agreeing_digits",
           "refine_two_precisions"]

DAMPING = ("none", "line", "lm")


@dataclasses.dataclass
class Counter:
    """Evaluation counts: right-hand sides, Jacobians and Newton iterations."""

    nfev: int = 0
    njev: int = 0
    newton: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"nfev": self.nfev, "njev": self.njev, "newton_iterations": self.newton}


@dataclasses.dataclass(frozen=True)
class NewtonResult:
    """Result of ``newton``: the full state x (the coordinates outside ``free`` untouched), whether the stopping test
    was met, the number of iterations, the last max|F| on the solved equations (None if never needed), and the last
    correction relative to 1 + max|x|."""

    x: np.ndarray
    converged: bool
    iterations: int
    residual: object = None
    last_step: object = None


# ------------------------------------------------------------------------------------------------------ deflation
def _deflation_gradient(ctx, xf: np.ndarray, roots: np.ndarray, power: float = 2.0, shift: float = 1.0):
    """grad log M(x) of the deflation operator M(x) = prod_r (||x - r||^-power + shift)."""
    if roots.size == 0:
        return None
    diff = xf[None, :] - roots
    dist2 = ctx.rowdot(diff)
    if np.any(dist2 == 0.0):
        return None
    dist_p = dist2 ** (-power / 2)
    weight = -power * dist_p / dist2 / (dist_p + shift)
    return weight @ diff


def _deflation_factor(ctx, xf: np.ndarray, roots: np.ndarray):
    if roots.size == 0:
        return 1.0
    diff = xf[None, :] - roots
    dist2 = ctx.rowdot(diff)
    with np.errstate(divide="ignore"):
        return ctx.scalar(np.prod(1.0 / np.maximum(dist2, 1e-300) + 1.0))


# ------------------------------------------------------------------------------------------------------ the Newton
def newton(ctx: Float64 | MpContext, F: Callable, J: Callable, x0: Sequence, *, free: Sequence[int] | None = None,
           rows: Sequence[int] | None = None, damping: str = "none", deflate=None, positive=None,
           xtol=None, ftol=None, max_iter: int = 50, blowup: float | None = None, contraction: float | None = None,
           extra: int = 0, start_digits: int | None = None, max_final: int | None = None,
           counter: Counter | None = None) -> NewtonResult:
    """Newton's method for F(x) = 0 in the context ``ctx`` (``FLOAT64`` or ``MpContext(dps)``).

    Arguments:
        ctx: the numeric context. F, J: F(x) and dF/dx at a full state x (arrays, or mpmath matrices in mpmath).
        x0: starting state (floats are taken exactly, decimal strings through ``ctx.from_decimal``).

    Other arguments:
        free: the coordinates solved for (default all; the others stay fixed).
        rows: the equations used (default ``free``; a square non-singular subsystem).
        damping: "none" (full steps), "line" (positivity and backtracking on the deflated residual) or "lm"
            (equilibrated Levenberg--Marquardt, mu = theta |F|).
        deflate: known roots (rows, restricted to ``free``) deflated away ("line" only).
        positive: coordinates (mask or indices of the full state) kept strictly positive ("line": damping to the
            boundary, "lm": steps crossing it are rejected; "none": not used).
        xtol: stop when max|dx| <= xtol (1 + max|x|) ("none": x after the step, taken; "line": before the step,
            which is then taken in full, and only if max|F| < ftol).
        ftol: "none": stop when max|F| < ftol before a step; "line": see xtol; "lm": converged at max|F| <= ftol,
            after which up to ``extra`` more steps are taken while each still halves the residual (xtol not used).
        max_iter: iteration budget. blowup: give up when max|x| exceeds it ("line").
        contraction: "none": give up (from the third step on) when a step is not below ``contraction`` times the
            previous one (not converging quadratically).
        start_digits: mpmath "none" only: x0 is accurate to about this many digits; the working precision starts
            near twice that and doubles with each iteration. max_final: at most max_final + 1 steps at the final
            precision.
        counter: evaluation counts, updated in place.

    Returns:
        A ``NewtonResult``.
    """
    if damping not in DAMPING:
        raise ValueError(f"damping must be one of {', '.join(DAMPING)}, not {damping!r}")
    counter = counter if counter is not None else Counter()
    with ctx.precision():
        x = ctx.vector(x0)
    n = len(x)
    sub = free is not None or rows is not None
    free = np.arange(n) if free is None else np.asarray(free, dtype=int)
    rows = free if rows is None else np.asarray(rows, dtype=int)
    if len(free) == 0:  # nothing to solve for (every coordinate pinned)
        return NewtonResult(x, True, 0)
    if damping == "line":
        with ctx.precision():
            return _line(ctx, F, J, x, free, rows, _mask(positive, n)[free], deflate, xtol, ftol, max_iter, blowup,
                         counter)
    if deflate is not None and len(deflate):
        raise ValueError("deflation needs damping='line'")
    if damping == "lm":
        if positive is None or len(positive) == 0:
            kept = None
        elif sub:
            kept = np.flatnonzero(_mask(positive, n)[free])
        else:
            positive = np.asarray(positive)
            kept = np.flatnonzero(positive) if positive.dtype == bool else positive
        return _lm(ctx, F, J, x, free if sub else None, rows if sub else None, kept, ftol, max_iter, extra, counter)
    return _plain(ctx, F, J, x, free, rows, xtol, ftol, max_iter, contraction, start_digits, max_final, counter)


def _mask(positive, n: int) -> np.ndarray:
    """Boolean mask of the full state from a mask or from indices (None: nothing kept positive)."""
    pos = np.zeros(n, bool)
    if positive is not None:
        positive = np.asarray(positive)
        if positive.dtype == bool:
            return positive
        pos[positive.astype(int)] = True
    return pos


def _plain(ctx, F, J, x, free, rows, xtol, ftol, max_iter, contraction, start_digits, max_final, counter):
    digits = None if start_digits is None else max(int(start_digits), 4)
    it = 0
    converged = False
    last_step = ctx.inf
    residual = None
    final_steps = 0
    last = None
    while it < max_iter:
        work = ctx.dps if digits is None else min(ctx.dps, 2 * digits + 10)
        with ctx.precision(work + ctx.guard):
            Fr = ctx.asvector(F(x))[rows]
            counter.nfev += 1
            if ftol is not None:
                residual = ctx.norm_inf(Fr)
                if residual < ftol:
                    converged = True
                    break
            Jr = ctx.asmatrix(J(x))[np.ix_(rows, free)]
            counter.njev += 1
            counter.newton += 1
            try:
                d = ctx.solve(Jr, -Fr)
            except SingularMatrix:
                break
            if not ctx.isfinite(d):
                break
            x = x.copy()
            x[free] = x[free] + d
            size = ctx.norm_inf(d)
            scale = 1 + ctx.norm_inf(x)
            last_step = size / scale
        it += 1
        if not ctx.isfinite(x):
            break
        if digits is not None:
            if last_step == 0:
                digits = ctx.dps
            else:
                digits = max(digits, min(ctx.dps, int(-2 * float(ctx.log10(last_step))) - 2))
        if work >= ctx.dps:
            final_steps += 1
            if xtol is not None and size <= xtol * scale:
                converged = True
                break
            if max_final is not None and final_steps > max_final:
                break
        if contraction is not None and it > 2 and size > contraction * last:
            break
        last = size
    return NewtonResult(x, converged, it, residual, last_step)


def _line(ctx, F, J, x, free, rows, pos_f, deflate, xtol, ftol, max_iter, blowup, counter):
    if deflate is None or len(deflate) == 0:
        roots = ctx.zeros((0, len(free)))
    else:
        roots = np.array([ctx.vector(r) for r in deflate])
    xtol = 1e-12 if xtol is None else xtol
    ftol = 1e-6 if ftol is None else ftol
    Fx = ctx.asvector(F(x))
    counter.nfev += 1
    stalled = 0
    F_try = Fx
    for it in range(1, max_iter + 1):
        counter.newton += 1
        Jx = ctx.asmatrix(J(x))
        counter.njev += 1
        Ff = Fx[rows]
        try:
            d = ctx.solve(Jx[np.ix_(rows, free)], -Ff)
        except SingularMatrix:
            return NewtonResult(x, False, it)
        if not ctx.isfinite(d):
            return NewtonResult(x, False, it)
        xf = x[free]
        step = d
        grad = _deflation_gradient(ctx, xf, roots)
        if grad is not None:
            denom = 1.0 - ctx.scalar(grad @ d)
            if abs(denom) < 1e-14:
                return NewtonResult(x, False, it)
            step = d / denom
        res = ctx.norm_inf(Ff)
        if ctx.norm_inf(d) <= xtol * (1.0 + ctx.norm_inf(xf)) and res < ftol:
            x_new = x.copy()
            x_new[free] = xf + d
            return NewtonResult(x_new, True, it, res)
        # damping: keep positive coordinates positive, then backtrack on the (deflated) residual
        lam = 1.0
        shrinking = step[pos_f] < 0
        if np.any(shrinking):
            lam = min(1.0, 0.9 * float(np.min(-xf[pos_f][shrinking] / step[pos_f][shrinking])))
        merit0 = ctx.norm2(Ff) * _deflation_factor(ctx, xf, roots)
        for _ in range(8):
            x_try = x.copy()
            x_try[free] = xf + lam * step
            F_try = ctx.asvector(F(x_try))
            counter.nfev += 1
            if ctx.isfinite(F_try):
                merit = ctx.norm2(F_try[rows]) * _deflation_factor(ctx, x_try[free], roots)
                if merit < merit0 * (1 - 1e-4 * lam):
                    break
            lam *= 0.5
        if not ctx.isfinite(F_try):
            return NewtonResult(x, False, it, res)
        # stagnation (full damping for several iterations): this start leads nowhere
        stalled = stalled + 1 if lam < 1 / 64 else 0
        if stalled >= 4:
            return NewtonResult(x_try, False, it, res)
        x, Fx = x_try, F_try
        if blowup is not None and ctx.norm_inf(x) > blowup:
            return NewtonResult(x, False, it, res)
    return NewtonResult(x, False, max_iter)


def _lm(ctx, F, J, y, free, rows, d_idx, tol, max_iter, extra, counter):
    """Levenberg--Marquardt, equilibrated (unknowns scaled by max(|y_i|, 1), equations by their largest scaled
    Jacobian entry), with damping mu = theta |F| (Fan--Yuan)."""
    full = free is None

    def fun(z):
        counter.nfev += 1
        v = ctx.asvector(F(z))
        return v if full else v[rows]

    def jac(z):
        counter.njev += 1
        M = ctx.asmatrix(J(z))
        return M if full else M[np.ix_(rows, free)]

    tol = 0.0 if tol is None else tol
    with ctx.precision():
        eps = ctx.eps
        yf = y if full else y[free]
        Fx = fun(y)
        res = ctx.norm_inf(Fx)
        theta = 1e-4
        it = 0
        eye = ctx.eye(len(yf))
        taken = None
        terms = None  # 1 + sum_j |dF_i/dy_j| max(|y_j|, 1) per equation, at the last Jacobian
        while it < max_iter:
            if res <= tol:
                if extra <= 0 or res == 0.0:
                    break
                if terms is not None and bool((abs(Fx) <= 8 * eps * terms).all()):
                    break  # every equation at the rounding of its terms: a further step cannot gain
                extra -= 1
            it += 1
            counter.newton += 1
            C = np.maximum(np.abs(yf), 1.0)
            Jc = jac(y) * C
            if extra > 0:
                terms = 1.0 + np.abs(Jc).sum(axis=1)
            Rw = 1.0 / np.maximum(np.abs(Jc).max(axis=1), 1e-300)
            Js = Jc * Rw[:, None]
            Fs = Fx * Rw
            g = Js.T @ Fs
            A = Js.T @ Js
            f2 = ctx.scalar(Fs @ Fs)
            accepted = False
            attempts = 0
            while theta <= 1e12 and not (res <= tol and attempts >= 2):  # polishing a converged point: two tries
                attempts += 1
                mu = theta * ctx.sqrt(f2)
                try:
                    step = C * ctx.solve(A + mu * eye, -g)
                except SingularMatrix:
                    theta *= 10
                    continue
                if d_idx is not None and (yf[d_idx] + step[d_idx] <= 0).any():  # keep these coordinates positive
                    theta *= 10
                    continue
                yf_new = yf + step
                if full:
                    y_new = yf_new
                else:
                    y_new = y.copy()
                    y_new[free] = yf_new
                F_new = fun(y_new)
                lin = Fs + Js @ (step / C)
                predicted = f2 - ctx.scalar(lin @ lin)
                F_w = F_new * Rw
                actual = f2 - ctx.scalar(F_w @ F_w) if ctx.isfinite(F_new) else -math.inf
                if predicted > 0 and actual > 1e-4 * predicted:
                    if actual > 0.75 * predicted:
                        theta = max(theta / 8, 1e-12)
                    accepted = True
                    break
                theta *= 4
            if not accepted:
                break
            res_new = ctx.norm_inf(F_new)
            gain = res_new < 0.5 * res
            y, yf, Fx, res, taken = y_new, yf_new, F_new, res_new, step
            if res <= tol and not gain:
                break
        step_size = None if taken is None else ctx.norm_inf(taken) / (1 + ctx.norm_inf(yf))
    return NewtonResult(y, bool(res <= tol), it, res, step_size)


# ------------------------------------------------------------------------------------------------------ wrappers
def newton_float(rhs: Callable[[np.ndarray], np.ndarray], jac: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
                 free: Sequence[int], *, roots: np.ndarray | None = None, positive: np.ndarray | None = None,
                 max_iter: int = 50, xtol: float = 1e-12, blowup: float = 1e6, counter: Counter | None = None):
    """Damped (and optionally deflated) Newton on the coordinates ``free`` of F(x) = 0; the others stay fixed.

    Arguments:
        rhs, jac: F(x) and dF/dx at a full state x.
        x0: starting state. free: the coordinates solved for.

    Other arguments:
        roots: known roots (rows, restricted to ``free``) deflated away.
        positive: mask of coordinates kept strictly positive (fraction-to-boundary damping).
        max_iter, xtol: iteration budget and step tolerance (relative to the size of x).

    Returns:
        (x, converged, iterations).
    """
    free = np.asarray(free, dtype=int)
    if roots is not None:
        roots = np.asarray(roots, dtype=float)
    r = newton(FLOAT64, rhs, jac, x0, free=free, damping="line", deflate=roots, positive=positive, xtol=xtol,
               ftol=1e-6, max_iter=max_iter, blowup=blowup, counter=counter)
    return r.x, r.converged, r.iterations


@dataclasses.dataclass(frozen=True)
class MpNewtonResult:
    """Result of ``newton_mp``: the solution at ``dps`` digits, whether the last step was below the precision, the
    size of the last Newton correction (an error estimate) and the number of iterations."""

    y: list
    converged: bool
    last_step: object
    residual: object
    iterations: int
    dps: int


def newton_mp(fun: Callable, jac: Callable, y0: Sequence, dps: int, *, start_digits: int = 12,
              max_iter: int = 40, counter: Counter | None = None) -> MpNewtonResult:
    """Newton's method in mpmath with a precision ladder.

    Arguments:
        fun, jac: G(y) and dG/dy, returning mpmath matrices at the current ``mpmath.mp`` precision.
        y0: starting point (floats or mpf), accurate to about ``start_digits`` digits.
        dps: target decimal precision.

    Returns:
        An ``MpNewtonResult``; ``converged`` means the last correction was below 10^-(dps - 3) relative to |y|.
    """
    ctx = MpContext(dps, guard=5)
    with ctx.precision():
        xtol = mpmath.mpf(10) ** (-(dps - 3))
    r = newton(ctx, lambda x: fun(list(x)), lambda x: jac(list(x)), y0, damping="none", xtol=xtol,
               max_iter=max_iter, start_digits=start_digits, max_final=6, counter=counter)
    y = list(r.x)
    with mpmath.workdps(dps + 5):
        residual = mpmath.norm(fun(y), mpmath.inf)
    return MpNewtonResult(y=y, converged=r.converged, last_step=r.last_step, residual=residual,
                          iterations=r.iterations, dps=dps)


def refine_two_precisions(fun: Callable, jac: Callable, y0: Sequence, dps1: int, dps2: int, index: int, *,
                          counter: Counter | None = None):
    """Newton (``newton_mp``) at ``dps1`` digits and, from there, at ``dps2`` > dps1 digits.

    Returns:
        (r1, r2, agreeing): both results and the number of digits on which coordinate ``index`` agrees.
    """
    r1 = newton_mp(fun, jac, y0, dps1, counter=counter)
    r2 = newton_mp(fun, jac, r1.y, dps2, start_digits=dps1 - 5, counter=counter)
    with mpmath.workdps(dps2):
        agree = agreeing_digits(r1.y[index], r2.y[index])
    return r1, r2, agree


def agreeing_digits(a, b) -> int:
    """Number of significant decimal digits on which two mpmath numbers agree (relative difference)."""
    if a == b:
        return 10 ** 6
    scale = max(abs(a), abs(b))
    if scale == 0:
        return 10 ** 6
    rel = abs(a - b) / scale
    return max(0, int(math.floor(-float(mpmath.log10(rel)))))
