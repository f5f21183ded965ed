"""The symmetric plateau of the soft committee machine and its length, from the derived online-SGD ODEs (issue 11,
section 3).

Setting of Saad & Solla (1995): K = M, orthonormal teacher (T = I), first layer trained with step tau, v = A = 1. The
symmetric (unspecialised) fixed point has Q_ii = q, Q_ik = c (i != k), R_in = r for all i, n, with q > c at finite
tau; it is found by Newton's method on the derived flow restricted to that subspace (``symmetric_plateau`` says how
the identical-students point q = c is kept out), and followed in tau. Its escape
rate is the largest real part among the eigenvalues of the full Jacobian there: a permutation-breaking perturbation of
size delta0 grows like delta0 exp(lambda t), so the time spent near the plateau is T(delta0) = ln(1/delta0)/lambda + c.
``plateau_length`` measures T(delta0) by integrating the derived ODEs and fits the slope of T against ln(1/delta0).

Small-tau closed forms (Saad & Solla 1995): q = c = 1/(2K - 1), r = 1/sqrt(K(2K - 1)),
eg = (K/pi)(pi/6 - K arcsin(1/(2K))), and lambda/tau -> (2/pi) K / (sqrt(2K - 1) (2K + 1)^(3/2)).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError, SymvaeError

__all__ = ["CommitteeFlow", "Plateau", "PlateauLength", "committee_flow", "symmetric_plateau", "plateau_length",
           "small_tau_escape_rate", "symmetric_start", "escape_time"]


def small_tau_escape_rate(K: int) -> float:
    """lambda/tau as tau -> 0 at the symmetric plateau, K = M, T = I (Saad & Solla 1995)."""
    return 2 / math.pi * K / (math.sqrt(2 * K - 1) * (2 * K + 1) ** 1.5)


@dataclasses.dataclass(frozen=True, eq=False)
class CommitteeFlow:
    """The derived system of a committee machine with numpy right-hand side, Jacobian and eg."""

    system: object
    names: tuple[str, ...]
    _f: object
    _eg: object

    def _args(self, params: dict[str, float]) -> list[float]:
        try:
            return [float(params[p.name]) for p in self.system.params]
        except KeyError as exc:
            raise InvalidInputError(f"missing parameter value {exc.args[0]}") from None

    def rhs(self, y, params) -> np.ndarray:
        return np.asarray(self._f(*y, *self._args(params)), dtype=float)

    def jacobian(self, y, params) -> np.ndarray:
        """dF/dy of the generated right-hand side by complex-step differentiation, Im F(y + i h e_j)/h with
        h = 1e-30: no subtraction, so exact to round-off (F is analytic: arcsin, sqrt and rationals of the state)."""
        p, y = self._args(params), np.asarray(y, dtype=float)
        J = np.empty((len(y), len(y)))
        for j in range(len(y)):
            z = y.astype(complex)
            z[j] += 1e-30j
            J[:, j] = np.imag(np.asarray(self._f(*z, *p), dtype=complex)) / 1e-30
        return J

    def eg(self, y, params) -> float:
        return float(self._eg(*y, *self._args(params)))

    def index(self, name: str) -> int:
        return self.names.index(name)

    def solve(self, y0, params, times: Sequence[float], *, rtol: float = 1e-10, atol: float = 1e-12):
        """Integrate the derived ODEs from ``y0``; returns (times, states (len(times), dim))."""
        from scipy.integrate import solve_ivp
        p = self._args(params)
        times = np.asarray(times, dtype=float)
        sol = solve_ivp(lambda t, y: np.asarray(self._f(*y, *p), dtype=float), (0.0, float(times[-1])), list(y0),
                        t_eval=times, rtol=rtol, atol=atol, method="DOP853")
        if sol.status != 0 or not np.all(np.isfinite(sol.y)):
            raise SymvaeError(f"integration of the committee ODEs failed at t = {sol.t[-1]:g}: {sol.message}")
        return sol.t, sol.y.T


@functools.lru_cache(maxsize=8)
def committee_flow(machine) -> CommitteeFlow:
    """Derive ``machine`` (a ``CommitteeMachine``) and lambdify its right-hand side and eg (cached)."""
    import sympy as sp

    from ..derive._committee import derive_committee
    system = derive_committee(machine)
    args = list(system.state) + list(system.params)
    return CommitteeFlow(system=system, names=tuple(s.name for s in system.state),
                         _f=sp.lambdify(args, list(system.rhs), modules="numpy", cse=True),
                         _eg=sp.lambdify(args, system.observables["eg"], modules="numpy", cse=True))


def _check_setting(machine) -> None:
    if machine.K != machine.M_teacher or machine.train_second_layer or machine.teacher_second_layer != "ones":
        raise InvalidInputError("the symmetric plateau is computed for K = M, first layer only, teacher A = 1 "
                                f"(got K={machine.K}, M={machine.M_teacher}, "
                                f"train_second_layer={machine.train_second_layer})")


def _teacher_params(machine, tau: float) -> dict[str, float]:
    M = machine.M_teacher
    p = {machine.T(n, m).name: float(n == m) for n in range(M) for m in range(n, M)}
    p["tau"] = float(tau)
    return p


def symmetric_start(machine, q: float, c: float, r_diag: float, r_off: float) -> np.ndarray:
    """The state with Q_ii = q, Q_ik = c, R_ii = r_diag, R_in = r_off (i != n), in the derived state order."""
    flow = committee_flow(machine)
    y = np.empty(len(flow.names))
    for i in range(machine.K):
        for k in range(i, machine.K):
            y[flow.index(machine.Q(i, k).name)] = q if i == k else c
        for n in range(machine.M_teacher):
            y[flow.index(machine.R(i, n).name)] = r_diag if i == n else r_off
    return y


@dataclasses.dataclass(frozen=True)
class Plateau:
    """The symmetric fixed point: q, c, r, the full state, eg there, the escape rate lambda (largest real part of
    the Jacobian's eigenvalues), its eigenvector and all eigenvalues; ``residual`` = max |F| there."""

    tau: float
    q: float
    c: float
    r: float
    state: np.ndarray
    eg: float
    escape_rate: float
    escape_vector: np.ndarray
    eigenvalues: np.ndarray
    residual: float

    @property
    def unstable(self) -> int:
        """Eigenvalues with positive real part: 1 at the plateau (its escape direction)."""
        scale = max(1.0, float(np.max(np.abs(self.eigenvalues))))
        return int(np.sum(self.eigenvalues.real > 1e-12 * scale))


#: the largest step size whose plateau is found by Newton's method from the small-tau closed form directly; beyond
#: it the plateau is followed from there in tau
DIRECT_TAU = 0.25
#: how negative the smallest eigenvalue of the plateau's field covariance may be (relative): as tau -> 0 the plateau
#: tends to the rank-deficient Q = q 11^T, R = r 11^T; the unphysical roots Newton's method can find have -0.01 to -0.07
GRAM_TOLERANCE = 1e-6


def symmetric_plateau(machine, tau: float, *, tol: float = 1e-14, max_iter: int = 50) -> Plateau:
    """The symmetric plateau of ``machine`` (K = M, T = I, first layer) at step ``tau`` (see the module docstring).

    The plateau has Q_ii = q, Q_ik = c, R_in = r. At finite tau, q > c: the SGD noise (the tau^2 terms) feeds the
    students' norms but not their overlaps, so q - c = O(tau). The subspace q = c (identical students) is invariant,
    and it holds a second symmetric fixed point, which Newton's method on (q, c, r) finds from the closed form q = c:
    that point is unstable inside the symmetric subspace too (two more unstable directions, O(tau^2)), so trajectories
    do not sit there. Since F_Q11 - F_Q12 vanishes on q = c at every tau, it is (q - c) H; the plateau is solved for
    in the unknowns (c, s, r), q = c + tau s, with the equations F_Q12 / tau, F_R11 / tau and H / tau^2 =
    (F_Q11 - F_Q12) / (tau^3 s), which are regular as tau -> 0 (H = O(tau^2) + O(tau) (q - c)) and exclude q = c.
    Up to ``DIRECT_TAU`` Newton's method starts from the small-tau closed form (s = 1/10); beyond, the plateau is
    continued in tau from there (adaptive steps, each Newton solve started from the last plateau). The covariance of
    the fields [[Q, R], [R^T, T]] must come out positive semi-definite (a Gram matrix).

    Raises:
        InvalidInputError: another setting or tau <= 0. SymvaeError: Newton's method did not converge, the
        continuation stalled, or the root found is not a Gram matrix.
    """
    _check_setting(machine)
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise InvalidInputError(f"tau must be a finite number > 0, got {tau!r}")
    flow, K = committee_flow(machine), machine.K
    r0 = 1 / math.sqrt(K * (2 * K - 1))
    v = np.array([1 / (2 * K - 1), 0.1, r0]) if K > 1 else np.array([1.0, 1.0])
    at = min(tau, DIRECT_TAU)
    v = _plateau_newton(machine, at, v, tol, max_iter)
    step = at / 2
    while at < tau:
        nxt = min(tau, at + step)
        try:
            v, at = _plateau_newton(machine, nxt, v, tol, 8), nxt
            step *= 1.5
        except SymvaeError:
            step /= 4
            if step < 1e-9 * max(1.0, at):
                q, c, r = _qcr(machine, v, at)
                raise SymvaeError(f"the symmetric plateau could not be followed in tau beyond {at:g}, where "
                                  f"Q_ii = {q:.4g}, Q_ik = {c:.4g}, R_in = {r:.4g} (Newton's method fails for every "
                                  f"step: the branch ends there, or runs off to infinity where these overlaps are "
                                  f"large; for K = 2 it runs off near tau = 3.6)") from None
    q, c, r = _qcr(machine, v, tau)
    y = symmetric_start(machine, q, c, r, r)
    params = _teacher_params(machine, tau)
    residual = float(np.max(np.abs(flow.rhs(y, params))))
    if not residual <= 1e-10 * tau:
        raise SymvaeError(f"the symmetric plateau at tau = {tau:g} is not a fixed point of the full flow "
                          f"(max |F| = {residual:.2e})")
    _check_gram(machine, (q, c, r), tau)
    w, V = np.linalg.eig(flow.jacobian(y, params))
    top = int(np.argmax(w.real))
    vec = np.real(V[:, top])
    return Plateau(tau=float(tau), q=float(q), c=float(c), r=float(r), state=y, eg=flow.eg(y, params),
                   escape_rate=float(w[top].real), escape_vector=vec / np.linalg.norm(vec), eigenvalues=w,
                   residual=residual)


def _qcr(machine, v, tau: float) -> tuple:
    """(q, c, r) from the unknowns: (c, s, r) with q = c + tau s for K >= 2, (q, r) for K = 1."""
    if machine.K == 1:
        return v[0], 0.0, v[1]
    return v[0] + tau * v[1], v[0], v[2]


def _plateau_equations(machine, tau, v, f) -> list:
    """F_Q12 / tau, F_R11 / tau, (F_Q11 - F_Q12) / (tau^3 s) at (c, s, r) (K = 1: F_Q11 / tau, F_R11 / tau at
    (q, r)), with ``f`` the right-hand side lambdified for float64/complex (numpy) or for mpmath numbers; complex
    ``v`` for complex-step derivatives."""
    flow, K = committee_flow(machine), machine.K
    q, c, r = _qcr(machine, v, tau)
    y = [None] * len(flow.names)
    for i in range(K):
        for k in range(i, K):
            y[flow.index(machine.Q(i, k).name)] = q if i == k else c
        for n in range(machine.M_teacher):
            y[flow.index(machine.R(i, n).name)] = r
    params = _teacher_params(machine, tau)
    F = f(*y, *[tau if p.name == "tau" else params[p.name] for p in flow.system.params])
    F = {name: F[flow.index(name)] for name in (machine.Q(0, 0).name, machine.Q(0, 1).name if K > 1 else None,
                                                 machine.R(0, 0).name) if name is not None}
    if K == 1:
        return [F[machine.Q(0, 0).name] / tau, F[machine.R(0, 0).name] / tau]
    return [F[machine.Q(0, 1).name] / tau, F[machine.R(0, 0).name] / tau,
            (F[machine.Q(0, 0).name] - F[machine.Q(0, 1).name]) / (tau ** 3 * v[1])]


@functools.lru_cache(maxsize=8)
def _mpmath_rhs(machine):
    """The committee's right-hand side lambdified for mpmath numbers (real or complex)."""
    import sympy as sp
    system = committee_flow(machine).system
    return sp.lambdify(list(system.state) + list(system.params), list(system.rhs), modules="mpmath", cse=True)


#: below this step size the plateau's first Newton solve runs in mpmath: q - c = O(tau), and the third equation's
#: float64 rounding grows like 1e-16 / tau^2
MPMATH_TAU = 1e-2


def _plateau_newton(machine, tau: float, v: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """The project's Newton (``symvae.numerics._newton.newton``, full steps) on ``_plateau_equations`` at ``tau`` from
    ``v``: in float64 with complex-step Jacobians, and below ``MPMATH_TAU`` in mpmath at 20 + 2 log10(1/tau) digits
    with central differences (mpmath's complex asin loses a complex step's part). Converged at residual ``tol`` or a
    relative step of 1e-14 (mpmath: 1e-15); also accepted when the steps stop shrinking quadratically below 1e-8: the
    third equation's rounding floor (about 1e-16 / tau^2 in float64, 10^-dps / tau^2 = 1e-20 in mpmath), after which
    the caller checks the full flow's residual."""
    import mpmath

    from ..numerics._context import FLOAT64, MpContext
    from ..numerics._newton import newton
    n = len(v)
    if tau < MPMATH_TAU:
        dps = 20 + 2 * math.ceil(math.log10(1 / tau))
        ctx, f, t, xtol = MpContext(dps), _mpmath_rhs(machine), mpmath.mpf(tau), 1e-15

        def jac(x):
            h = mpmath.mpf(10) ** (-(mpmath.mp.dps // 3))
            J = np.empty((n, n), dtype=object)
            for j in range(n):
                up, down = list(x), list(x)
                up[j] += h
                down[j] -= h
                J[:, j] = [(a - b) / (2 * h) for a, b in zip(_plateau_equations(machine, t, up, f),
                                                             _plateau_equations(machine, t, down, f))]
            return J
    else:
        ctx, f, t, xtol = FLOAT64, committee_flow(machine)._f, tau, 1e-14

        def jac(x):
            J = np.empty((n, n))
            for j in range(n):
                z = np.asarray(x, dtype=complex)
                z[j] += 1e-30j
                J[:, j] = np.imag(np.array(_plateau_equations(machine, t, z, f), dtype=complex)) / 1e-30
            return J
    with np.errstate(all="ignore"):
        r = newton(ctx, lambda x: _plateau_equations(machine, t, x, f), jac, list(v), xtol=xtol, ftol=tol,
                   max_iter=max_iter, contraction=0.5)
    x = np.array([float(a) for a in r.x])
    if np.all(np.isfinite(x)) and (r.converged or float(r.last_step) <= 1e-8):
        return x
    raise SymvaeError(f"Newton's method for the symmetric plateau did not converge at tau = {tau:g}"
                      + (f" ({ctx.dps} digits)" if ctx is not FLOAT64 else ""))


def _check_gram(machine, qcr: tuple, tau: float) -> None:
    """Refuse a plateau whose overlaps are no Gram matrix: [[Q, R], [R^T, I]] must be positive semi-definite."""
    K = machine.K
    q, c, r = qcr
    Q = np.full((K, K), c) + (q - c) * np.eye(K)
    C = np.block([[Q, np.full((K, K), r)], [np.full((K, K), r), np.eye(K)]])
    low = float(np.linalg.eigvalsh(C)[0])
    if low < -GRAM_TOLERANCE * max(1.0, float(np.max(np.abs(C)))):
        raise SymvaeError(f"the symmetric fixed point found at tau = {tau:g} is not physical: the covariance of the "
                          f"fields [[Q, R], [R^T, T]] has the eigenvalue {low:.3g} < 0")


@dataclasses.dataclass(frozen=True)
class PlateauLength:
    """Escape times T(delta0) for initial asymmetries ``deltas``, the fitted slope of T against ln(1/delta0) and
    the escape rate lambda of the plateau (the slope should be 1/lambda), the eg(t) curve of the smallest delta0."""

    deltas: np.ndarray
    lengths: np.ndarray
    slope: float
    intercept: float
    plateau: Plateau
    t: np.ndarray
    eg: np.ndarray

    @property
    def predicted_slope(self) -> float:
        return 1 / self.plateau.escape_rate


def escape_time(t: np.ndarray, eg: np.ndarray, level: float) -> float:
    """The first time eg(t) falls below ``level`` (linear interpolation between samples)."""
    below = np.nonzero(eg < level)[0]
    if len(below) == 0 or below[0] == 0:
        return math.nan
    i = below[0]
    return float(t[i - 1] + (t[i] - t[i - 1]) * (eg[i - 1] - level) / (eg[i - 1] - eg[i]))


def plateau_length(machine, tau: float, deltas: Sequence[float], *, start: str = "plateau", q0: float = 0.5,
                   r0: float = 0.0, t_max: float | None = None, level: float = 0.5,
                   points: int = 4001) -> PlateauLength:
    """Escape time from the symmetric plateau against the initial asymmetry, from the derived ODEs.

    ``start="plateau"``: the plateau fixed point plus delta0 x (unit escape eigenvector, oriented so that R_11 grows);
    ``start="generic"``: Q_ii = q0, Q_ik = 0, R_ii = r0 + delta0, R_in = r0 (i != n), which first has to reach the
    plateau. The escape time is the first time eg falls below ``level`` x (plateau eg); the slope of T against
    ln(1/delta0) is fitted by least squares. From the plateau start the slope tends to 1/lambda; from the generic
    start the approach adds a delta0-dependent delay at finite tau (the symmetric subspace has weakly unstable
    directions of rate O(tau^2) too), so its slope converges to 1/lambda only slowly as delta0 -> 0.

    Raises:
        InvalidInputError: bad deltas. SymvaeError: no escape within t_max (default 8 ln(1/min delta0)/lambda).
    """
    deltas = np.asarray(deltas, dtype=float)
    if deltas.ndim != 1 or len(deltas) < 2 or not np.all((deltas > 0) & (deltas < 1)):
        raise InvalidInputError("deltas must be at least two numbers in (0, 1)")
    plateau = symmetric_plateau(machine, tau)
    flow = committee_flow(machine)
    params = _teacher_params(machine, tau)
    if t_max is None:
        t_max = 8 * math.log(1 / deltas.min()) / plateau.escape_rate
    times = np.linspace(0.0, t_max, points)
    lengths, curve = [], None
    if start not in ("plateau", "generic"):
        raise InvalidInputError(f"start must be 'plateau' or 'generic', got {start!r}")
    vec = plateau.escape_vector * np.sign(plateau.escape_vector[flow.index(machine.R(0, 0).name)])
    for d in deltas:
        y0 = plateau.state + d * vec if start == "plateau" else symmetric_start(machine, q0, 0.0, r0 + d, r0)
        t, Y = flow.solve(y0, params, times)
        eg = np.array([flow.eg(y, params) for y in Y])
        T = escape_time(t, eg, level * plateau.eg)
        if not math.isfinite(T):
            raise SymvaeError(f"no escape from the plateau by t = {t_max:g} for delta0 = {d:g}")
        lengths.append(T)
        if d == deltas.min():
            curve = (t, eg)
    x = np.log(1 / deltas)
    slope, intercept = np.polyfit(x, np.array(lengths), 1)
    return PlateauLength(deltas=deltas, lengths=np.array(lengths), slope=float(slope), intercept=float(intercept),
                         plateau=plateau, t=curve[0], eg=curve[1])
