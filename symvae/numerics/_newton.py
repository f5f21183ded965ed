"""Newton iterations shared by the fixed-point, continuation and threshold solvers.

Float64: damped Newton on a coordinate subspace with Farrell deflation (so a root is never found twice).
mpmath: Newton on a square system with a symbolic Jacobian at a precision that doubles with each iteration
(quadratic convergence doubles the correct digits), then one step at the final precision.

References: P. E. Farrell, A. Birkisson, S. W. Funke, "Deflation techniques for finding distinct solutions of
nonlinear partial differential equations", SIAM J. Sci. Comput. 37 (2015) A2026.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import mpmath
import numpy as np

__all__ = ["Counter", "newton_float", "newton_mp", "MpNewtonResult", "agreeing_digits"]


@dataclasses.dataclass
class Counter:
    """Evaluation counts: right-hand sides, Jacobians and Newton iterations."""

    nfev: int = 0
    njev: int = 0
    newton: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"nfev": self.nfev, "njev": self.njev, "newton_iterations": self.newton}


def _deflation_gradient(xf: np.ndarray, roots: np.ndarray, power: float = 2.0, shift: float = 1.0):
    """grad log M(x) of the deflation operator M(x) = prod_r (||x - r||^-power + shift)."""
    if roots.size == 0:
        return None
    diff = xf[None, :] - roots
    dist2 = np.einsum("ij,ij->i", diff, diff)
    if np.any(dist2 == 0.0):
        return None
    dist_p = dist2 ** (-power / 2)
    weight = -power * dist_p / dist2 / (dist_p + shift)
    return weight @ diff


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
    counter = counter or Counter()
    free = np.asarray(free, dtype=int)
    x = np.array(x0, dtype=float)
    roots = np.zeros((0, len(free))) if roots is None else np.asarray(roots, dtype=float)
    pos = np.zeros(len(x), bool) if positive is None else positive
    pos_f = pos[free]
    if len(free) == 0:  # nothing to solve for (every coordinate pinned)
        return x, True, 0
    F = rhs(x)
    counter.nfev += 1
    stalled = 0
    for it in range(1, max_iter + 1):
        counter.newton += 1
        J = jac(x)
        counter.njev += 1
        Ff = F[free]
        try:
            d = np.linalg.solve(J[np.ix_(free, free)], -Ff)
        except np.linalg.LinAlgError:
            return x, False, it
        if not np.all(np.isfinite(d)):
            return x, False, it
        xf = x[free]
        step = d
        grad = _deflation_gradient(xf, roots)
        if grad is not None:
            denom = 1.0 - float(grad @ d)
            if abs(denom) < 1e-14:
                return x, False, it
            step = d / denom
        if np.max(np.abs(d)) <= xtol * (1.0 + np.max(np.abs(xf))) and np.max(np.abs(Ff)) < 1e-6:
            x_new = x.copy()
            x_new[free] = xf + d
            return x_new, True, it
        # damping: keep positive coordinates positive, then backtrack on the (deflated) residual
        lam = 1.0
        shrinking = step[pos_f] < 0
        if np.any(shrinking):
            lam = min(1.0, 0.9 * float(np.min(-xf[pos_f][shrinking] / step[pos_f][shrinking])))
        merit0 = np.linalg.norm(Ff) * _deflation_factor(xf, roots)
        for _ in range(8):
            x_try = x.copy()
            x_try[free] = xf + lam * step
            F_try = rhs(x_try)
            counter.nfev += 1
            if np.all(np.isfinite(F_try)):
                merit = np.linalg.norm(F_try[free]) * _deflation_factor(x_try[free], roots)
                if merit < merit0 * (1 - 1e-4 * lam):
                    break
            lam *= 0.5
        if not np.all(np.isfinite(F_try)):
            return x, False, it
        # stagnation (full damping for several iterations): this start leads nowhere
        stalled = stalled + 1 if lam < 1 / 64 else 0
        if stalled >= 4:
            return x_try, False, it
        x, F = x_try, F_try
        if np.max(np.abs(x)) > blowup:
            return x, False, it
    return x, False, max_iter


def _deflation_factor(xf: np.ndarray, roots: np.ndarray) -> float:
    if roots.size == 0:
        return 1.0
    diff = xf[None, :] - roots
    dist2 = np.einsum("ij,ij->i", diff, diff)
    with np.errstate(divide="ignore"):
        return float(np.prod(1.0 / np.maximum(dist2, 1e-300) + 1.0))


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
    counter = counter or Counter()
    y = [mpmath.mpf(v) for v in y0]
    digits = max(int(start_digits), 4)
    iterations = 0
    last_step = mpmath.inf
    converged = False
    final_steps = 0
    while iterations < max_iter:
        work = min(dps, 2 * digits + 10)
        with mpmath.workdps(work + 5):
            yv = mpmath.matrix(y)
            G = fun(y)
            J = jac(y)
            counter.nfev += 1
            counter.njev += 1
            counter.newton += 1
            try:
                dy = mpmath.lu_solve(J, -G)
            except ZeroDivisionError:
                break
            yv = yv + dy
            y = [yv[i] for i in range(len(y))]
            scale = 1 + mpmath.norm(yv, mpmath.inf)
            last_step = mpmath.norm(dy, mpmath.inf) / scale
        iterations += 1
        if last_step == 0:
            digits = dps
        else:
            digits = max(digits, min(dps, int(-2 * float(mpmath.log10(last_step))) - 2))
        if work >= dps:
            final_steps += 1
            if last_step <= mpmath.mpf(10) ** (-(dps - 3)):
                converged = True
                break
            if final_steps > 6:
                break
    with mpmath.workdps(dps + 5):
        residual = mpmath.norm(fun(y), mpmath.inf)
    return MpNewtonResult(y=y, converged=converged, last_step=last_step, residual=residual, iterations=iterations,
                          dps=dps)


def agreeing_digits(a, b) -> int:
    """Number of significant decimal digits on which two mpmath numbers agree (relative difference)."""
    if a == b:
        return 10 ** 6
    scale = max(abs(a), abs(b))
    if scale == 0:
        return 10 ** 6
    rel = abs(a - b) / scale
    return max(0, int(math.floor(-float(mpmath.log10(rel)))))
