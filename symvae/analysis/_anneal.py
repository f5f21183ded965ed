"""KL annealing: convergence time T(gamma) of a beta(t) schedule family, the optimal rate gamma*, and its scaling.

A schedule family is one expression in ``t``, ``beta`` (the final KL weight) and the rate ``gamma``. It is not derived
into the equations: the constant-beta system is derived and compiled once, and the expression runs as a runtime
program (``symvae.codegen._schedule``), so gamma, beta and a new family cost no compilation. The sensitivity source
dF/dgamma = dF/dbeta(t) * dbeta(t)/dgamma comes from the compiled system's ``dparams``, with dbeta/dgamma the SymPy
derivative of the expression, compiled to a program too. T(gamma) is the last time eg(t) is above eps* + delta, eps* the eg
of the stable fixed point of the constant-beta dynamics at the final beta. Its derivative comes from the forward
sensitivity equations dS/dt = J S + dF/dgamma (S = dy/dgamma): at the crossing eg(y(T(gamma)); gamma) = level,

    dT/dgamma = -(grad eg . S(T)) / (grad eg . F(y(T), T)),

and gamma* is the root of dT/dgamma in log gamma (bracketed, then Brent), not a grid minimum.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError, SymvaeError

__all__ = ["SCHEDULES", "schedule_expression", "AnnealingStudy", "AnnealResult", "anneal", "optimal_rate_vs_tau"]

#: schedule families: beta(t) with final value beta and rate gamma
SCHEDULES = {"tanh": "beta*tanh(gamma*t)", "linear": "beta*Min(1, gamma*t)", "exp": "beta*(1 - exp(-gamma*t))"}


def schedule_expression(schedule: str) -> str:
    """The beta(t) expression of a family name, or a user expression in t with a rate parameter ``gamma``.

    Raises:
        InvalidInputError: the expression does not parse, or lacks ``t`` or ``gamma``.
    """
    from ..model._model import parse_expression

    text = SCHEDULES.get(schedule, schedule)
    expr = parse_expression(text, "beta schedule")
    names = {s.name for s in expr.free_symbols}
    if "t" not in names or "gamma" not in names:
        raise InvalidInputError(f"an annealing schedule must depend on t and on the rate gamma, got {text!r}")
    return text


class AnnealingStudy:
    """Convergence times of one schedule family at fixed other parameters.

    Arguments:
        schedule: a key of ``SCHEDULES`` or an expression in t, gamma (and beta, the final value).
        params: rho, eta, beta (final), lam, tau (and any other parameter of the model).

    Other arguments:
        M, M_star: latents and spikes; init: initial order parameters (default
            ``symvae.simulate.default_initial_state``); target_delta: eps* + delta is the convergence level;
            t_max: horizon of one integration (T beyond it is reported as nan).
    """

    def __init__(self, schedule: str, params: Mapping[str, float], *, M: int = 1, M_star: int = 1, init=None,
                 target_delta: float = 0.01, t_max: float = 20000.0, encoder_activation: str = "linear",
                 decoder_activation: str = "linear"):
        from ..numerics import fixed_point, integrate
        from ..simulate import default_initial_state
        from ._sweep import model_for

        if not target_delta > 0:
            raise InvalidInputError(f"target delta must be > 0, got {target_delta}")
        self.schedule = schedule_expression(schedule)
        variant, expr = ("annealing", None) if self.schedule == SCHEDULES["tanh"] else ("base", self.schedule)
        activations = (encoder_activation, decoder_activation)
        self.model, self.system, self.compiled = model_for(variant, M, M_star, expr, *activations)
        _, base_system, self.base = model_for("base", M, M_star, None, *activations)
        names = [p.name for p in self.system.params]
        if "gamma" not in names:
            raise InvalidInputError("the schedule has no rate parameter gamma")
        self.params = {n: float(params[n]) for n in names if n != "gamma" and n in params}
        missing = [n for n in names if n != "gamma" and n not in self.params]
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(missing)}")
        self.gamma_index = names.index("gamma")
        self.t_max = float(t_max)
        self.target_delta = float(target_delta)
        init = dict(init) if init is not None else default_initial_state(self.system.table)
        self.y0 = self.system.pack({k: v for k, v in init.items() if k in self.system.blocks})
        # eps*: the stable fixed point of the constant-beta dynamics, reached from the same start
        base_params = {p.name: self.params[p.name] for p in base_system.params}
        self.base_params = base_params
        self.constant = integrate(self.base, self.y0, base_params, self._grid(), rtol=1e-10)
        pvec = base_system.param_vector(base_params)
        fp = fixed_point(self.base, self.constant.y[-1], base_params, throw=False)
        if fp is None or not fp.stable:
            raise SymvaeError("the constant-beta dynamics did not reach a stable fixed point by t_max "
                              f"= {self.t_max:g} (raise t_max)")
        self.eps_star = float(self.base.observables(0.0, fp.x, pvec)["eg"])
        self.level = self.eps_star + self.target_delta
        self._integrate = integrate

    def _grid(self) -> np.ndarray:
        return np.linspace(0.0, self.t_max, int(min(200001, max(2001, 4 * self.t_max))) + 1)

    def _p(self, gamma: float) -> np.ndarray:
        p = self.system.param_vector({**self.params, "gamma": float(gamma)})
        return p

    def _eg(self, y: np.ndarray, t: float, p: np.ndarray) -> float:
        return float(self.compiled.observables(float(t), y, p)["eg"])

    def _crossing(self, compiled, p: np.ndarray, traj) -> tuple[float, np.ndarray]:
        """The last crossing of ``level`` (refined by Brent on short re-integrations) and the state there."""
        from scipy.optimize import brentq

        eg = traj.observables()["eg"]
        above = np.nonzero(eg > self.level)[0]
        if len(above) == 0:
            return float(traj.t[0]), traj.y[0]
        i = above[-1]
        if i + 1 >= len(traj.t):
            return float("nan"), None
        t_i, y_i = float(traj.t[i]), traj.y[i]

        def state(t):
            return self._integrate(compiled, y_i, p, [t], t0=t_i, rtol=1e-12, atol=1e-14).y[-1]

        def g(t):
            return float(compiled.observables(t, state(t), p)["eg"]) - self.level

        T = brentq(g, t_i, float(traj.t[i + 1]), xtol=1e-10, rtol=1e-13)
        return float(T), state(T)

    @property
    def time_constant(self) -> float:
        """T at constant beta (the final value)."""
        if not hasattr(self, "_time_constant"):
            p = self.base.system.param_vector(self.base_params)
            self._time_constant = self._crossing(self.base, p, self.constant)[0]
        return self._time_constant

    def time(self, gamma: float) -> float:
        """T(gamma): the last time eg(t) > eps* + delta under the schedule with rate gamma (nan beyond t_max)."""
        return self._time_and_state(gamma)[0]

    def _time_and_state(self, gamma: float):
        if not gamma > 0:
            raise InvalidInputError(f"gamma must be > 0, got {gamma}")
        p = self._p(gamma)
        traj = self._integrate(self.compiled, self.y0, p, self._grid(), rtol=1e-10)
        if not traj.ok:
            return float("nan"), None
        return self._crossing(self.compiled, p, traj)

    def derivative(self, gamma: float) -> tuple[float, float]:
        """(T(gamma), dT/dgamma) with dT/dgamma from the forward sensitivity equations."""
        from scipy.integrate import solve_ivp

        T, yT = self._time_and_state(gamma)
        if not math.isfinite(T) or T <= 0:
            return T, float("nan")
        p = self._p(gamma)
        n = len(self.y0)
        c, k = self.compiled, self.gamma_index

        def rhs(t, z):
            y, S = z[:n], z[n:]
            return np.concatenate([c.rhs(t, y, p), c.jac(t, y, p) @ S + c.dparams(t, y, p)[:, k]])

        sol = solve_ivp(rhs, (0.0, T), np.concatenate([self.y0, np.zeros(n)]), method="DOP853", rtol=1e-10,
                        atol=1e-12)
        if not sol.success:
            return T, float("nan")
        y, S = sol.y[:n, -1], sol.y[n:, -1]
        grad = self._grad_eg(y, T, p)
        rate_t = grad @ c.rhs(T, y, p)
        # eg depends on gamma only through the state (the observables do not contain beta(t))
        return T, float(-(grad @ S) / rate_t)

    def _grad_eg(self, y: np.ndarray, t: float, p: np.ndarray) -> np.ndarray:
        """Gradient of eg in the state (central differences of the closed-form observable)."""
        h = 1e-6 * np.maximum(1.0, np.abs(y))
        grad = np.empty_like(y)
        for j in range(len(y)):
            e = np.zeros_like(y)
            e[j] = h[j]
            grad[j] = (self._eg(y + e, t, p) - self._eg(y - e, t, p)) / (2 * h[j])
        return grad

    def optimal_rate(self, *, gamma_start: float | None = None, max_expand: int = 12,
                     log: Callable[[str], None] | None = None) -> dict:
        """gamma* = argmin T(gamma): bracket a sign change of dT/dgamma by factors of 3 from ``gamma_start``
        (default 1 / T_constant ... ), then Brent's method on dT/dgamma in log gamma.

        Returns:
            {"gamma_opt", "time_opt", "time_constant", "speedup" (T_constant / T*), "time_saved_fraction",
            "evaluations"}.
        Raises:
            SymvaeError: no minimum bracketed (T monotone over the range searched).
        """
        from scipy.optimize import brentq

        evals: list[tuple[float, float, float]] = []
        memo: dict[float, float] = {}

        def dT(log_g):
            if log_g in memo:
                return memo[log_g]
            g = math.exp(log_g)
            T, d = self.derivative(g)
            evals.append((g, T, d))
            if log:
                log(f"gamma = {g:.6g}: T = {T:.6g}, dT/dgamma = {d:.6g}")
            memo[log_g] = d * g  # derivative in log gamma, same sign
            return memo[log_g]

        g0 = gamma_start or 2.0 / self.time_constant
        lo = hi = math.log(g0)
        f_lo = f_hi = dT(lo)
        if not math.isfinite(f_lo):
            raise SymvaeError(f"T(gamma) is not finite at gamma = {g0:g} (raise t_max?)")
        step = math.log(3.0)
        for _ in range(max_expand):
            if f_lo < 0 < f_hi:
                break
            if f_lo >= 0:  # T grows with gamma here: the minimum is at smaller gamma
                hi, f_hi = lo, f_lo
                lo -= step
                f_lo = dT(lo)
            else:
                lo, f_lo = hi, f_hi
                hi += step
                f_hi = dT(hi)
            if not (math.isfinite(f_lo) and math.isfinite(f_hi)):
                raise SymvaeError("T(gamma) left the horizon while bracketing gamma* (raise t_max)")
        else:
            raise SymvaeError("no minimum of T(gamma) bracketed: annealing does not speed convergence here")
        log_opt = brentq(dT, lo, hi, xtol=1e-6, rtol=1e-10)
        gamma_opt = math.exp(log_opt)
        T_opt = self.time(gamma_opt)
        T_const = self.time_constant
        return {"gamma_opt": gamma_opt, "time_opt": T_opt, "time_constant": T_const, "speedup": T_const / T_opt,
                "time_saved_fraction": 1.0 - T_opt / T_const, "eps_star": self.eps_star, "level": self.level,
                "evaluations": len(evals)}

    def slow_penalty(self, gammas: Sequence[float]) -> dict:
        """T(gamma) - T_constant for small gamma, and gamma (T - T_constant): constant if the penalty is ~ 1/gamma."""
        T_const = self.time_constant
        rows = [{"gamma": float(g), "time": self.time(g)} for g in gammas]
        for r in rows:
            r["excess"] = r["time"] - T_const
            r["gamma_times_excess"] = r["gamma"] * r["excess"]
        return {"rows": rows, "time_constant": T_const}


@dataclasses.dataclass(frozen=True)
class AnnealResult:
    """Output of ``anneal``: the optimum, the curve T(gamma) at the requested rates and the slow-annealing penalty."""

    schedule: str
    params: Mapping[str, float]
    optimum: Mapping[str, float]
    curve: list[dict]
    penalty: Mapping

    def as_dict(self) -> dict:
        return {"schedule": self.schedule, "params": dict(self.params), **self.optimum, "curve": self.curve,
                "slow_penalty": self.penalty, "status": "ok"}


def anneal(schedule: str, params: Mapping[str, float], *, gammas: Sequence[float] = (), M: int = 1, M_star: int = 1,
           init=None, target_delta: float = 0.01, t_max: float | None = None,
           progress: Callable[[str], None] | None = None, encoder_activation: str = "linear",
           decoder_activation: str = "linear") -> AnnealResult:
    """The annealing study of one schedule family: gamma*, T(gamma*), T at constant beta, the speed-up, T at
    ``gammas`` and the slow-annealing penalty at gamma*/10 and gamma*/30.

    Raises:
        InvalidInputError: bad schedule or parameters; SymvaeError: no optimum found.
    """
    tau = float(params.get("tau", 0.01))
    t_max = t_max or max(2000.0, 200.0 / tau)
    study = AnnealingStudy(schedule, params, M=M, M_star=M_star, init=init, target_delta=target_delta, t_max=t_max,
                           encoder_activation=encoder_activation, decoder_activation=decoder_activation)
    optimum = study.optimal_rate(log=progress)
    curve = [{"gamma": float(g), "time": study.time(g)} for g in gammas]
    slow = [optimum["gamma_opt"] / 10, optimum["gamma_opt"] / 30]
    penalty = study.slow_penalty(slow)
    return AnnealResult(schedule=study.schedule, params=dict(params), optimum=optimum, curve=curve, penalty=penalty)


def optimal_rate_vs_tau(schedule: str, params: Mapping[str, float], taus: Sequence[float], **kw) -> list[dict]:
    """gamma* and T(gamma*) at each step size tau (other parameters fixed)."""
    rows = []
    for tau in taus:
        p = dict(params, tau=float(tau))
        study = AnnealingStudy(schedule, p, t_max=kw.get("t_max") or max(2000.0, 200.0 / tau),
                               target_delta=kw.get("target_delta", 0.01))
        opt = study.optimal_rate()
        rows.append({"tau": float(tau), **{k: opt[k] for k in ("gamma_opt", "time_opt", "time_constant", "speedup")}})
    return rows
