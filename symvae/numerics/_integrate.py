"""Adaptive integration of derived ODE systems (compiled DOP853), with status, divergence time and events."""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..codegen._compile import CompiledSystem, PlainFirstModule
from ..errors import InvalidInputError, SymvaeError

if TYPE_CHECKING:
    from ..derive import DerivedSystem

__all__ = ["Trajectory", "integrate", "IntegrationError"]

_STATUS = {0: "ok", 1: "diverged", 2: "failed", 3: "failed", 5: "failed"}


class IntegrationError(SymvaeError):
    """Raised by ``integrate(..., throw=True)`` when the status is not ``ok``."""


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Result of ``integrate``.

    Attributes:
        t: the requested times that were reached (shape (k,)).
        y: states at those times (shape (k, n_state)); times after a failure are absent, never NaN-filled.
        t_steps, y_steps: every accepted step (for events and plots).
        status: ``"ok"``, ``"diverged"`` or ``"failed"``; message: what happened and where.
        t_stop: the time integration stopped (the divergence time for ``"diverged"``).
        nfev, n_accepted, n_rejected: evaluation and step counts.
    """

    system: DerivedSystem
    params: np.ndarray
    param_values: Mapping[str, float]
    t: np.ndarray
    y: np.ndarray
    t_steps: np.ndarray
    y_steps: np.ndarray
    status: str
    message: str
    t_stop: float
    nfev: int
    n_accepted: int
    n_rejected: int
    compiled: CompiledSystem = dataclasses.field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def order_parameters(self) -> dict[str, np.ndarray]:
        """Named order parameters at ``t``, each of shape (k, ...) as in ``DerivedSystem.unpack``."""
        named = self.system.unpack(self.y.T, self.param_values)
        return {k: np.moveaxis(np.asarray(v, dtype=float), -1, 0) for k, v in named.items()}

    def observables(self, *, steps: bool = False) -> dict[str, np.ndarray]:
        """``eg``, ``rate``, ``distortion``, ``neg_elbo`` at ``t`` (or at every accepted step)."""
        t, y = (self.t_steps, self.y_steps) if steps else (self.t, self.y)
        if len(t) == 0:
            return {name: np.empty(0) for name in self.system.observables}
        p = self.params.reshape(-1, *([1] * 1))
        return {k: np.asarray(v, dtype=float) for k, v in self.compiled.observables(t, y.T, p).items()}

    def convergence_time(self, tol: float = 1e-3, *, observable: str = "eg") -> float:
        """The time after which the observable stays within ``tol`` of its final value (linear interpolation between
        accepted steps). Returns ``t_steps[0]`` if it never leaves the band, ``nan`` if the run failed."""
        if not self.ok:
            return float("nan")
        ts = self.t_steps
        v = self.observables(steps=True)[observable]
        outside = np.nonzero(np.abs(v - v[-1]) > tol)[0]
        if len(outside) == 0:
            return float(ts[0])
        i = outside[-1]
        if i + 1 >= len(ts):
            return float(ts[-1])
        d0, d1 = abs(v[i] - v[-1]) - tol, abs(v[i + 1] - v[-1]) - tol
        return float(ts[i] + (ts[i + 1] - ts[i]) * d0 / (d0 - d1)) if d0 != d1 else float(ts[i + 1])

    def plateau_escape_time(self, fraction: float = 0.5, *, observable: str = "eg") -> float:
        """First time the observable has covered ``fraction`` of its way from the initial to the final value."""
        if not self.ok:
            return float("nan")
        ts = self.t_steps
        v = self.observables(steps=True)[observable]
        target = v[0] + fraction * (v[-1] - v[0])
        sign = np.sign(v[-1] - v[0])
        if sign == 0:
            return float(ts[0])
        crossed = np.nonzero(sign * (v - target) >= 0)[0]
        i = crossed[0]
        if i == 0:
            return float(ts[0])
        return float(ts[i - 1] + (ts[i] - ts[i - 1]) * (target - v[i - 1]) / (v[i] - v[i - 1]))


_NO_CODE, _NO_CONSTS = np.zeros((0, 2), dtype=np.int64), np.zeros(0)  # the empty program: parameters as given

#: Accepted steps in the first piece of compiled integration; later pieces are sized to take ``PIECE_SECONDS``, so an
#: interrupt (Ctrl-C) is honoured between pieces even when one integration runs for minutes.
FIRST_PIECE = 2000
PIECE_SECONDS = 0.2

#: Work budget of the plain-Python phase of a ``PlainFirstModule`` (a module's first integrations, summed over calls:
#: the warm command line, a library user's first short runs): work is counted as RHS
#: evaluations x (statements of the RHS + ``PLAIN_STAGE_WORK`` x state components, the integrator's own per-evaluation
#: share), a deterministic measure of interpreted work; when it is used up, numba continues from the state reached.
#: Set so that the plain phase costs about what importing numba and loading the module's compiled cache cost (~1 s
#: CPU; a unit takes 0.2-0.3 us of CPU in plain Python, for (M, M*) from (1, 1) to (3, 3), on the 2-core machine of
#: bench/bench_dynamics.py): the point where compiling starts to pay off, so a run never costs much more than twice
#: the better of the two.
PLAIN_WORK_BUDGET = 4_000_000
PLAIN_STAGE_WORK = 9
#: RHS evaluations per accepted DOP853 step (12 stages and the final evaluation).
_EVALS_PER_STEP = 13


def _run_in_pieces(module, t0, y0, p, t_eval, rtol, atol, first_step, max_steps, blowup, program=None):
    """The compiled DOP853 (``integrate_start``, then ``integrate_piece`` until it stops running). Every piece
    resumes from the state the previous one left (t, y, F, proposed step), so the pieces compute exactly what one
    call would. A ``PlainFirstModule`` runs its plain-Python kernels first, in pieces within ``PLAIN_WORK_BUDGET``,
    and continues with its numba kernels from the state reached if the run is not over by then (the same arithmetic,
    see ``codegen._jit``); ``program`` (time-dependent parameters, ``symvae.codegen._schedule.Program``) is passed
    through to both. Returns (status code, t reached, y_eval, outputs reached, t_steps, y_steps, counts)."""
    pcode, pconsts = (program.code, program.consts) if program is not None else (_NO_CODE, _NO_CONSTS)
    args = (t0, y0, p, pcode, pconsts, t_eval, rtol, atol, first_step, max_steps, blowup)
    if isinstance(module, PlainFirstModule) and (module.is_compiled or module.plain_work >= PLAIN_WORK_BUDGET):
        module = module.compiled()  # numba loaded, or the budget spent by earlier calls (a sweep of short runs)
    if isinstance(module, PlainFirstModule):
        try:
            with np.errstate(all="ignore"):  # numba's error model: inf and nan, no warnings
                return _pieces(module.plain, module, *args)
        except (ArithmeticError, ValueError):
            # a math function the interpreter refuses where numba returns inf or nan (log of a negative number in a
            # diverging run ...): the whole run again, compiled, as if the plain phase had not been
            module = module.compiled()
    return _pieces(None, module, *args)


def _pieces(plain, module, t0, y0, p, pcode, pconsts, t_eval, rtol, atol, first_step, max_steps, blowup):
    y_eval = np.full((len(t_eval), len(y0)), np.nan)
    counts = np.zeros(3, dtype=np.int64)  # evaluations, accepted, rejected steps
    code, y, f, h, k = (plain or module).integrate_start(t0, y0, p, pcode, pconsts, t_eval, rtol, atol, first_step,
                                                         y_eval, counts)
    t = t0
    t_parts, y_parts = [np.array([t0])], [y.copy()[None, :]]
    if plain is not None:
        per_evaluation = module.rhs_size + PLAIN_STAGE_WORK * len(y0)
        before = module.plain_work  # the budget is per module, over every call: then numba for the rest
        while code == plain.STATUS_RUNNING:
            left = PLAIN_WORK_BUDGET - before - int(counts[0]) * per_evaluation
            if left <= 0:
                break
            steps = max(1, left // (_EVALS_PER_STEP * per_evaluation))
            code, t, h, k, t_rec, y_rec = plain.integrate_piece(t, y, f, h, p, pcode, pconsts, t_eval, y_eval, k,
                                                                rtol, atol, max_steps, steps, blowup, counts)
            t_parts.append(t_rec)
            y_parts.append(y_rec)
        module.plain_work = before + int(counts[0]) * per_evaluation
        if code == plain.STATUS_RUNNING:
            module = module.compiled()
    piece = FIRST_PIECE
    while code == module.STATUS_RUNNING:
        start = time.perf_counter()
        code, t, h, k, t_rec, y_rec = module.integrate_piece(t, y, f, h, p, pcode, pconsts, t_eval, y_eval, k, rtol,
                                                             atol, max_steps, piece, blowup, counts)
        t_parts.append(t_rec)
        y_parts.append(y_rec)
        spent = time.perf_counter() - start
        piece = max(1, int(piece * min(4.0, PIECE_SECONDS / max(spent, 1e-6))))
    return (code, float(t), y_eval, int(k), np.concatenate(t_parts), np.concatenate(y_parts),
            tuple(int(c) for c in counts))


def _program_failure(compiled, t: float, p: np.ndarray) -> str:
    """What the parameter program of ``compiled`` says at t (the integrator stopped there)."""
    from ..codegen._schedule import ScheduleError

    try:
        compiled.program.evaluate(t, p)
    except ScheduleError as exc:
        return str(exc)
    return "a time-dependent parameter is not finite there"


def integrate(system: DerivedSystem | CompiledSystem, y0, params: Mapping[str, float] | Sequence[float],
              t_eval: Sequence[float], *, t0: float = 0.0, rtol: float = 1e-10, atol: float = 1e-12,
              max_steps: int = 5_000_000, blowup: float = 1e8, first_step: float = 0.0,
              throw: bool = False) -> Trajectory:
    """Integrate dy/dt = F(y, t; p) from ``t0`` and report the state at the sorted times ``t_eval``.

    Arguments:
        system: a derived ODE system (compiled on first use) or an already compiled one.
        y0: initial state vector, or a mapping of order parameters (``{"m": [[..]], "Q": ...}``, see
            ``DerivedSystem.pack``).
        params: parameter values by name (or a vector in ``system.params`` order).
        t_eval: output times, non-decreasing, all >= t0.

    Other arguments:
        rtol, atol: tolerances of the adaptive DOP853 step control (rtol 1e-13 ... 1e-3).
        max_steps: accepted-step budget; blowup: |y| beyond which the run is declared divergent.
        throw: raise ``IntegrationError`` instead of returning a non-``ok`` status.

    Returns:
        A ``Trajectory``; on divergence or failure ``status``/``message``/``t_stop`` say what happened and where,
        and only the times reached are returned.

    Raises:
        InvalidInputError: malformed times, state or parameters.
    """
    if isinstance(system, CompiledSystem):
        compiled = system
    else:
        from ..codegen import compile_system  # derives nothing, but loads SymPy's printers on a cache miss

        compiled = compile_system(system)
    sysd = compiled.system
    if sysd.kind != "ode":
        raise InvalidInputError(f"cannot integrate a {sysd.kind!r} system")
    if isinstance(params, Mapping):
        param_values = dict(params)
        p = sysd.param_vector(param_values)
    else:
        p = np.asarray(params, dtype=float)
        param_values = {s.name: float(v) for s, v in zip(sysd.params, p)}
    if p.shape != (len(sysd.params),) or not np.all(np.isfinite(p)):
        raise InvalidInputError(f"parameters must be {len(sysd.params)} finite numbers ({[s.name for s in sysd.params]})")
    y0 = sysd.pack(y0) if isinstance(y0, Mapping) else np.asarray(y0, dtype=float)
    if y0.shape != (len(sysd.state),) or not np.all(np.isfinite(y0)):
        raise InvalidInputError(f"initial state must be {len(sysd.state)} finite numbers")
    t_eval = np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or len(t_eval) == 0 or not np.all(np.isfinite(t_eval)):
        raise InvalidInputError("t_eval must be a non-empty list of finite times")
    if np.any(np.diff(t_eval) < 0) or t_eval[0] < t0:
        raise InvalidInputError(f"t_eval must be non-decreasing and >= t0 = {t0}")
    if not (1e-14 <= rtol <= 1e-1) or not (atol > 0):
        raise InvalidInputError(f"rtol must lie in [1e-14, 0.1] and atol be > 0 (got rtol={rtol}, atol={atol})")
    code, t_stop, y_eval, k, t_steps, y_steps, (nfev, nacc, nrej) = _run_in_pieces(
        compiled.module, float(t0), y0, p, t_eval, float(rtol), float(atol), float(first_step), int(max_steps),
        float(blowup), getattr(compiled, "program", None))
    status = _STATUS[int(code)]
    if code == 0:
        message = f"reached t = {t_eval[-1]:g} in {nacc} steps ({nrej} rejected, {nfev} evaluations)"
    elif code == 1:
        big = np.argmax(np.abs(y_steps[-1])) if np.all(np.isfinite(y_steps[-1])) else None
        where = f"; largest component {sysd.state[big].name} = {y_steps[-1][big]:.3g}" if big is not None else ""
        message = f"diverged at t = {t_stop:.6g}: the state left the finite region (|y| > {blowup:g}){where}"
    elif code == 2:
        message = f"failed at t = {t_stop:.6g}: step size underflow (stiff or singular right-hand side)"
    elif code == 5:
        message = f"failed at t = {t_stop:.6g}: {_program_failure(compiled, t_stop, p)}"
    else:
        message = f"failed at t = {t_stop:.6g}: {max_steps} steps taken without reaching t = {t_eval[-1]:g}"
    traj = Trajectory(system=sysd, params=p, param_values=param_values, t=t_eval[:k].copy(), y=y_eval[:k].copy(),
                      t_steps=t_steps, y_steps=y_steps, status=status, message=message, t_stop=float(t_stop),
                      nfev=int(nfev), n_accepted=int(nacc), n_rejected=int(nrej), compiled=compiled)
    if throw and status != "ok":
        raise IntegrationError(message)
    return traj
