"""The symmetric plateau of the soft committee machine and its length, from the derived online-SGD ODEs (issue 11,
section 3).

Setting of Saad & Solla (1995): K = M, orthonormal teacher (T = I), first layer trained with step tau, v = A = 1. The
symmetric (unspecialised) fixed point has Q_ii = q, Q_ik = c (i != k), R_in = r for all i, n; it is found by Newton's
method on the derived flow restricted to that subspace, with the Jacobian of the derived right-hand sides. Its escape
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


def symmetric_plateau(machine, tau: float, *, tol: float = 1e-14, max_iter: int = 50) -> Plateau:
    """The symmetric plateau of ``machine`` (K = M, T = I, first layer) at step ``tau`` (see the module docstring).

    Raises:
        InvalidInputError: another setting or tau <= 0. SymvaeError: Newton's method did not converge.
    """
    _check_setting(machine)
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise InvalidInputError(f"tau must be a finite number > 0, got {tau!r}")
    flow, K = committee_flow(machine), machine.K
    params = _teacher_params(machine, tau)
    rows = [flow.index(machine.Q(0, 0).name), flow.index(machine.Q(0, 1).name) if K > 1 else None,
            flow.index(machine.R(0, 0).name)]
    rows = [r for r in rows if r is not None]
    # d state / d (q, c, r): the tangent of the symmetric subspace
    E = np.stack([symmetric_start(machine, *e) for e in ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 1))], axis=1)
    if K == 1:
        E = E[:, [0, 2]]
    u = np.array([1 / (2 * K - 1), 1 / (2 * K - 1), 1 / math.sqrt(K * (2 * K - 1))])
    if K == 1:
        u = u[[0, 2]]
    unpack = (lambda u: symmetric_start(machine, u[0], u[1], u[2], u[2])) if K > 1 else \
        (lambda u: symmetric_start(machine, u[0], 0.0, u[1], u[1]))
    # The flow is O(tau) and one direction of the subspace is only O(tau^2)-stiff at small tau, so convergence is
    # judged by the residual relative to tau, not by the step.
    for _ in range(max_iter):
        y = unpack(u)
        F = flow.rhs(y, params)[rows]
        if np.max(np.abs(F)) <= tol * tau:
            break
        J = flow.jacobian(y, params)[rows] @ E
        u = u - np.linalg.solve(J, F)
    else:
        raise SymvaeError(f"Newton's method for the symmetric plateau did not converge at tau = {tau:g}")
    y = unpack(u)
    residual = float(np.max(np.abs(flow.rhs(y, params))))
    if not residual <= 1e-10 * tau:
        raise SymvaeError(f"the symmetric plateau at tau = {tau:g} is not a fixed point of the full flow "
                          f"(max |F| = {residual:.2e})")
    w, V = np.linalg.eig(flow.jacobian(y, params))
    top = int(np.argmax(w.real))
    vec = np.real(V[:, top])
    return Plateau(tau=float(tau), q=float(u[0]), c=float(u[1]) if K > 1 else 0.0, r=float(u[-1]), state=y,
                   eg=flow.eg(y, params), escape_rate=float(w[top].real), escape_vector=vec / np.linalg.norm(vec),
                   eigenvalues=w, residual=residual)


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
