"""Concentration of online SGD on the ODE: the deviation of finite-N runs from the N -> infinity theory vs N.

At each N, ``seeds`` simulations record eg(t) at the same times as the ODE; the deviation is the root mean square
of eg_seed(t) - eg_ODE(t) over seeds and times. The exponent is the least-squares slope of log deviation on log N;
its confidence interval comes from a bootstrap over seeds (resampled independently at every N). Each seed is one
``simulate`` call (``SeedRuns``), so an interrupt waits for one seed's compiled loop at most. The papers' claim
is concentration at rate N^-1/2.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["NScalingResult", "n_scaling"]


@dataclasses.dataclass(frozen=True)
class NScalingResult:
    """Rows (N, deviation, its bootstrap s.e., steps), the fitted exponent and its confidence interval."""

    rows: list[dict]
    exponent: float
    exponent_ci: tuple[float, float]
    confidence: float
    status: str

    def as_dict(self) -> dict:
        return {"exponent": self.exponent, "exponent_ci": list(self.exponent_ci), "confidence": self.confidence,
                "rows": self.rows, "status": self.status}


def _slope(logN: np.ndarray, logD: np.ndarray) -> float:
    x = logN - logN.mean()
    return float(np.sum(x * (logD - logD.mean())) / np.sum(x * x))


def n_scaling(params: Mapping[str, float], Ns: Sequence[int], *, seeds: int = 8, seed: int = 0, M: int = 1,
              M_star: int = 1, variant: str = "base", beta_schedule: str | None = None, init=None,
              t_max: float = 200.0, n_times: int = 21, confidence: float = 0.95, bootstrap: int = 400,
              progress: Callable[[int, int], None] | None = None, encoder_activation: str = "linear",
              decoder_activation: str = "linear") -> NScalingResult:
    """Fit deviation ~ N^exponent between finite-N online SGD and the ODE.

    Arguments:
        params: parameter values of the model's dynamics; Ns: at least two dimensions N.

    Other arguments:
        seeds: runs per N (>= 2); t_max, n_times: the recorded times (uniform, t = 0 excluded);
        confidence: level of the bootstrap interval; progress: ``progress(done, total)`` after each N.

    Raises:
        InvalidInputError: fewer than two distinct N, fewer than two seeds, bad times.
    """
    from ..numerics import integrate
    from ..simulate import default_initial_state
    from ._latents import SeedRuns
    from ._sweep import model_for

    Ns = sorted({int(n) for n in Ns})
    if len(Ns) < 2 or Ns[0] < 10:
        raise InvalidInputError(f"n-scaling needs at least two distinct N >= 10, got {Ns}")
    if seeds < 2:
        raise InvalidInputError(f"n-scaling needs at least 2 seeds, got {seeds}")
    if not (t_max > 0 and n_times >= 2):
        raise InvalidInputError("t_max must be > 0 and n_times >= 2")
    model, system, compiled = model_for(variant, M, M_star, beta_schedule, encoder_activation, decoder_activation)
    init = dict(init) if init is not None else default_initial_state(system.table)
    t_eval = np.linspace(0.0, t_max, n_times + 1)[1:]
    traj = integrate(compiled, {k: v for k, v in init.items() if k in system.blocks}, params, t_eval, throw=True)
    eg_ode_fn = lambda times: integrate(compiled, {k: v for k, v in init.items() if k in system.blocks},  # noqa: E731
                                        params, times, throw=True).observables()["eg"]
    rng = np.random.default_rng(12345)
    rows, sq = [], []
    for i, N in enumerate(Ns):
        res = SeedRuns(model, params, init, t_eval, N=N, seeds=seeds, seed=seed)
        if not res.ok:
            return NScalingResult(rows=rows, exponent=float("nan"), exponent_ci=(float("nan"), float("nan")),
                                  confidence=confidence, status="failed")
        # the simulator rounds times to whole steps: compare with the ODE at exactly those times
        eg_ode = eg_ode_fn(res.t) if not np.array_equal(res.t, traj.t) else traj.observables()["eg"]
        d2 = np.mean((np.asarray(res.eg) - eg_ode[None, :]) ** 2, axis=1)  # per seed
        sq.append(d2)
        boot = [math.sqrt(np.mean(d2[rng.integers(0, seeds, seeds)])) for _ in range(200)]
        rows.append({"N": N, "deviation": math.sqrt(float(np.mean(d2))), "deviation_se": float(np.std(boot)),
                     "seeds": seeds, "eg_ode_final": float(eg_ode[-1]), "eg_sim_final": float(res.eg[:, -1].mean())})
        if progress:
            progress(i + 1, len(Ns))
    logN = np.log(np.array(Ns, dtype=float))
    exponent = _slope(logN, np.log([r["deviation"] for r in rows]))
    slopes = []
    for _ in range(bootstrap):
        logD = [0.5 * math.log(np.mean(d2[rng.integers(0, seeds, seeds)])) for d2 in sq]
        slopes.append(_slope(logN, np.array(logD)))
    a = (1 - confidence) / 2
    lo, hi = np.quantile(slopes, [a, 1 - a])
    return NScalingResult(rows=rows, exponent=exponent, exponent_ci=(float(lo), float(hi)), confidence=confidence,
                          status="ok")
