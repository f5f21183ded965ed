"""Sweeps: any model parameter(s) x metrics of the online-SGD dynamics, from the ODE and from finite-N simulation.

One point of a sweep is a ``SweepPoint`` (model, parameter values, horizon, metrics); ``evaluate_point`` computes its
metrics and is the chunk function every executor runs, so results do not depend on where they were computed.

Metrics (ODE; the same names from simulation, per seed, then mean and standard error):
- ``eg_final``, ``rate_final``, ``distortion_final``: the observables at ``t_max``;
- ``eg_fp``: eg of the fixed point reached (Newton from the state at ``t_max`` on the autonomous system, i.e. with a
  beta(t) schedule replaced by its final value: its limit t -> infinity, else its value at ``t_max``); ``fp_stable``
  (1 stable, 0 marginal, -1 unstable) and ``fp_leading_eig`` (largest real part of its spectrum). Zero modes of a
  continuous symmetry (equal spike strengths) make the point ``marginal`` (``stability_class`` of
  ``symvae.numerics._fixed_points``, the one definition of the fixed-point search too). If Newton cannot converge
  there (singular Jacobian), the end state is used when its residual is below ``FP_RESIDUAL``;
- ``convergence_time``: the last time eg(t) is above eg_fp + ``target_delta`` (linear interpolation between the
  reported times, on a fine grid); for a finite-N seed, the first time eg(t) reaches that level;
- ``escape_time``: the first time eg has covered half of its way from eg(0) to eg(t_max) (the plateau escape);
- ``disentangle_time`` (M = M* >= 2): the last time the entanglement ``entanglement(m, Q)`` exceeds
  ``disentangle_level``;
- ``entanglement_final``: the entanglement at ``t_max``;
- ``superfluous_norm`` (M > M*): the largest Q_ii at ``t_max`` among latents not matched to a spike (the variance of
  background noise a superfluous latent fits; 0 if it collapsed).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["SweepPoint", "SweepResult", "sweep", "evaluate_point", "METRICS", "STRUCTURAL", "entanglement",
           "signed_matching", "model_for", "last_crossing"]

METRICS = ("eg_final", "rate_final", "distortion_final", "eg_fp", "fp_stable", "fp_leading_eig", "convergence_time",
           "escape_time", "disentangle_time", "entanglement_final", "superfluous_norm")
#: metrics available from simulation (per seed)
SIM_METRICS = ("eg_final", "rate_final", "distortion_final", "convergence_time", "escape_time", "disentangle_time",
               "entanglement_final", "superfluous_norm")
#: sweepable names that change the model or the run rather than a parameter value
STRUCTURAL = ("M", "M_star", "N", "t_max")
#: largest total number of finite-N SGD steps (N t_max seeds, summed over points) a sweep accepts
MAX_SGD_STEPS = 2e10
#: max |F| at t_max for the end state to count as the fixed point when Newton cannot polish it
FP_RESIDUAL = 1e-9


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep (picklable; sent to workers as is).

    Attributes:
        variant, M, M_star, beta_schedule: the model (``symvae.make_model``).
        params: every parameter value of the model's dynamics, by name.
        t_max: horizon; n_grid: number of reported times (uniform in [0, t_max]).
        metrics: names from ``METRICS``; target_delta: convergence band above eg_fp; disentangle_level: threshold
            of the entanglement.
        init: initial order parameters (None: ``symvae.simulate.default_initial_state``).
        finite_n, seeds, seed: add simulation means and standard errors when finite_n is set (one ``simulate`` call
            per seed, with seed ``seed + 1000 k``: Ctrl-C waits for one seed's compiled loop at most).
    """

    variant: str = "base"
    M: int = 1
    M_star: int = 1
    beta_schedule: str | None = None
    params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    t_max: float = 2000.0
    n_grid: int = 2001
    metrics: tuple[str, ...] = ("eg_final",)
    target_delta: float = 0.01
    disentangle_level: float = 0.05
    init: Mapping[str, Any] | None = None
    finite_n: int | None = None
    seeds: int = 4
    seed: int = 0
    encoder_activation: str = "linear"
    decoder_activation: str = "linear"

    @property
    def activations(self) -> tuple[str, str]:
        """(encoder, decoder) activation: the last arguments of ``model_for``."""
        return self.encoder_activation, self.decoder_activation


@functools.lru_cache(maxsize=32)
def model_for(variant: str, M: int, M_star: int, beta_schedule: str | None, encoder_activation: str = "linear",
              decoder_activation: str = "linear"):
    """(model, derived system, compiled system), cached per process (workers derive/compile each model once)."""
    from ..codegen import compile_system
    from ..derive import derive_dynamics
    from ..model import make_model

    activations = {k: v for k, v in (("encoder_activation", encoder_activation),
                                     ("decoder_activation", decoder_activation)) if v != "linear"}
    model = make_model(variant, M=M, M_star=M_star, beta_schedule=beta_schedule, **activations)
    system = derive_dynamics(model)
    return model, system, compile_system(system)


@functools.lru_cache(maxsize=256)
def _final_beta(beta_expr, values: tuple, t_max: float) -> float:
    """beta(t -> infinity) of a schedule (a SymPy expression, hashable) if SymPy finds a finite limit, else
    beta(t_max)."""
    import sympy as sp

    from ..model import t as t_sym

    subs = {s: dict(values)[s.name] for s in beta_expr.free_symbols if s.name in dict(values)}
    expr = beta_expr.subs(subs)
    try:
        limit = sp.limit(expr, t_sym, sp.oo)
        if limit.is_finite and limit.is_real:
            return float(limit)
    except (NotImplementedError, ValueError, TypeError):
        pass
    return float(expr.subs(t_sym, t_max).evalf())


def _autonomous(point: SweepPoint):
    """(compiled autonomous system, its parameter values): a beta(t) schedule replaced by its final value (the limit
    t -> infinity, or its value at t_max if there is none)."""
    model, system, compiled = model_for(point.variant, point.M, point.M_star, point.beta_schedule, *point.activations)
    if not system.time_dependent:
        return compiled, dict(point.params)
    beta_expr = model.vae.beta_expr
    values = tuple(sorted((s.name, float(point.params[s.name])) for s in beta_expr.free_symbols
                          if s.name in point.params))
    beta_end = _final_beta(beta_expr, values, float(point.t_max))
    base_variant = "base" if point.variant == "annealing" else point.variant
    _, asys, acomp = model_for(base_variant, point.M, point.M_star, None, *point.activations)
    names = {p.name for p in asys.params}
    params = {k: v for k, v in point.params.items() if k in names}
    params["beta"] = beta_end
    return acomp, params


def signed_matching(overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The permutation and signs of latents best aligned with the spikes: maximise sum_k |overlap[perm[k], k]|.

    Returns (perm, signs) with perm[k] the latent matched to spike k and signs[k] = sign(overlap[perm[k], k]).
    Exhaustive over permutations (M <= 6 in practice)."""
    M, Ms = overlap.shape
    best, best_perm = -1.0, None
    for perm in itertools.permutations(range(M), Ms):
        score = sum(abs(overlap[perm[k], k]) for k in range(Ms))
        if score > best:
            best, best_perm = score, perm
    perm = np.array(best_perm)
    signs = np.sign(overlap[perm, np.arange(Ms)])
    signs[signs == 0] = 1.0
    return perm, signs


def entanglement(m: np.ndarray, Q: np.ndarray) -> float:
    """Off-diagonal mass of the normalised overlap matrix after optimal signed matching, in [0, 1).

    c_ik = m_ik / sqrt(Q_ii rho-free) is the cosine between latent i's decoder vector and spike k. After matching each
    spike to its best latent, the entanglement is the share of sum c_ik^2 off the matched entries: 0 for disentangled
    latents (each aligned with one spike), (M*-1)/M* for latents spread evenly over the spikes. NaN if m = 0."""
    m = np.asarray(m, dtype=float)
    q = np.sqrt(np.clip(np.diag(np.asarray(Q, dtype=float)), 1e-300, None))
    c2 = (m / q[:, None]) ** 2
    total = float(c2.sum())
    if not total > 1e-300:
        return float("nan")
    perm, _ = signed_matching(m)
    matched = float(sum(c2[perm[k], k] for k in range(m.shape[1])))
    return (total - matched) / total


def last_crossing(t: np.ndarray, v: np.ndarray, level: float) -> float:
    """The last time v(t) > level (linear interpolation); t[0] if never above; nan if still above at the end."""
    above = np.nonzero(v > level)[0]
    if len(above) == 0:
        return float(t[0])
    i = above[-1]
    if i + 1 >= len(t):
        return float("nan")
    d0, d1 = v[i] - level, v[i + 1] - level
    return float(t[i] + (t[i + 1] - t[i]) * d0 / (d0 - d1))


def _escape(t: np.ndarray, v: np.ndarray, fraction: float = 0.5) -> float:
    target = v[0] + fraction * (v[-1] - v[0])
    sign = np.sign(v[-1] - v[0])
    if sign == 0:
        return float(t[0])
    crossed = np.nonzero(sign * (v - target) >= 0)[0]
    i = crossed[0]
    if i == 0:
        return float(t[0])
    return float(t[i - 1] + (t[i] - t[i - 1]) * (target - v[i - 1]) / (v[i] - v[i - 1]))


def _first_below(t: np.ndarray, v: np.ndarray, level: float) -> float:
    """The first time v(t) <= level (linear interpolation); nan if never."""
    below = np.nonzero(v <= level)[0]
    if len(below) == 0:
        return float("nan")
    i = below[0]
    if i == 0:
        return float(t[0])
    d0, d1 = v[i - 1] - level, v[i] - level
    return float(t[i - 1] + (t[i] - t[i - 1]) * d0 / (d0 - d1))


def _series_metrics(point: SweepPoint, t: np.ndarray, obs: Mapping[str, np.ndarray], m: np.ndarray, Q: np.ndarray,
                    eg_fp: float, *, noisy: bool = False) -> dict[str, float]:
    """Metrics of one trajectory (ODE or one seed) given at times t.

    A finite-N series (``noisy``) fluctuates around its limit, so its crossing times are first hitting times of the
    levels (the last crossing of a fluctuating series is the horizon); for the ODE they are last crossings."""
    crossing = _first_below if noisy else last_crossing
    out: dict[str, float] = {}
    want = set(point.metrics)
    for key in ("eg", "rate", "distortion"):
        if f"{key}_final" in want:
            out[f"{key}_final"] = float(obs[key][-1])
    if "convergence_time" in want:
        out["convergence_time"] = crossing(t, obs["eg"], eg_fp + point.target_delta)
    if "escape_time" in want:
        out["escape_time"] = _escape(t, obs["eg"])
    if "superfluous_norm" in want:
        if point.M <= point.M_star:
            raise InvalidInputError("superfluous_norm needs M > M*")
        perm, _ = signed_matching(m[-1])
        spare = [i for i in range(point.M) if i not in set(perm.tolist())]
        out["superfluous_norm"] = float(max(Q[-1][i, i] for i in spare))
    if want & {"disentangle_time", "entanglement_final"}:
        if point.M < 2 or point.M_star < 2:
            raise InvalidInputError("disentanglement metrics need M >= 2 and M* >= 2")
        ent = np.array([entanglement(m[i], Q[i]) for i in range(len(t))])
        if "entanglement_final" in want:
            out["entanglement_final"] = float(ent[-1])
        if "disentangle_time" in want:
            out["disentangle_time"] = crossing(t, np.nan_to_num(ent, nan=1.0), point.disentangle_level)
    return out


def _initial_state(point: SweepPoint, system) -> dict:
    from ..simulate import default_initial_state

    return dict(point.init) if point.init is not None else default_initial_state(system.table)


def evaluate_point(point: SweepPoint) -> dict[str, float]:
    """All requested metrics at one point (ODE, and simulation mean / standard error when ``finite_n`` is set).

    Returns:
        {metric: value} for the ODE, plus ``status``; with finite_n: ``{metric}_sim`` (mean over seeds) and
        ``{metric}_se`` (standard error of that mean).
    """
    from ..numerics import fixed_point, integrate
    from ..numerics._fixed_points import stability_class

    unknown = [m for m in point.metrics if m not in METRICS]
    if unknown:
        raise InvalidInputError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    model, system, compiled = model_for(point.variant, point.M, point.M_star, point.beta_schedule, *point.activations)
    init = _initial_state(point, system)
    state_init = {k: v for k, v in init.items() if k in system.blocks}
    t_eval = np.linspace(0.0, point.t_max, point.n_grid)
    traj = integrate(compiled, state_init, point.params, t_eval)
    out: dict[str, float] = {"status": traj.status}
    if not traj.ok:
        return out | {m: float("nan") for m in point.metrics}
    acomp, aparams = _autonomous(point)
    pvec = acomp.system.param_vector(aparams)
    fp = fixed_point(acomp, traj.y[-1], aparams, throw=False)
    if fp is not None:
        x, eigenvalues = fp.x, fp.eigenvalues
    elif np.max(np.abs(acomp.rhs(0.0, traj.y[-1], pvec))) < FP_RESIDUAL:
        # Newton fails where a continuous symmetry makes the Jacobian singular; the end state is the fixed point
        x = traj.y[-1]
        eigenvalues = np.linalg.eigvals(acomp.jac(0.0, x, pvec))
    else:
        x = eigenvalues = None
    if x is None:
        eg_fp, stable, lead = float("nan"), float("nan"), float("nan")
    else:
        eg_fp = float(acomp.observables(0.0, x, pvec)["eg"])
        lead = float(np.max(eigenvalues.real))
        stable = {"stable": 1.0, "marginal": 0.0, "unstable": -1.0}[stability_class(eigenvalues)[0]]
    obs = traj.observables()
    named = traj.order_parameters()
    out.update(_series_metrics(point, traj.t, obs, named["m"], named["Q"], eg_fp))
    for key, value in (("eg_fp", eg_fp), ("fp_stable", stable), ("fp_leading_eig", lead)):
        if key in point.metrics:
            out[key] = value
    if point.finite_n:
        out.update(_simulated(point, model, init, t_eval, eg_fp))
    return out


def _simulated(point: SweepPoint, model, init, t_eval, eg_fp) -> dict[str, float]:
    from ._latents import SeedRuns

    res = SeedRuns(model, point.params, init, t_eval, N=point.finite_n, seeds=point.seeds, seed=point.seed)
    out: dict[str, float] = {}
    if not res.ok:
        out["status_sim"] = res.status
    per = [_series_metrics(point, res.t, {k: v[s] for k, v in res.observables.items()}, res.per_seed["m"][s],
                           res.per_seed["Q"][s], eg_fp, noisy=True) for s in range(res.seeds)]
    for metric in point.metrics:
        if metric not in SIM_METRICS:
            continue
        vals = np.array([p[metric] for p in per], dtype=float)
        out[f"{metric}_sim"] = float(np.mean(vals))
        out[f"{metric}_se"] = float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return out


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Rows of a sweep: one dict per grid point with the swept values and the metrics (plain floats)."""

    names: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: list[dict]

    @property
    def status(self) -> str:
        return "ok" if all(r.get("status") == "ok" and r.get("status_sim", "ok") == "ok" for r in self.rows) \
            else "failed"

    def column(self, key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r.get(key, np.nan) for r in self.rows], dtype=float)


def _apply(base: SweepPoint, assignment: Mapping[str, float]) -> SweepPoint:
    params = dict(base.params)
    fields: dict[str, Any] = {}
    for name, value in assignment.items():
        if name in ("M", "M_star", "N"):
            if value != int(value) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value}")
            fields["finite_n" if name == "N" else name] = int(value)
        elif name == "t_max":
            if not value > 0:
                raise InvalidInputError(f"t_max must be > 0, got {value}")
            fields["t_max"] = float(value)
        else:
            params[name] = float(value)
    return dataclasses.replace(base, params=params, **fields)


def sweep(base: SweepPoint, grid: Mapping[str, Sequence[float]], *, executor=None,
          progress: Callable[[int, int], None] | None = None, chunk_size: int | None = None) -> SweepResult:
    """Evaluate ``base`` over the Cartesian product of ``grid`` ({name: values}, first name varies slowest).

    Arguments:
        base: the point with every other setting (its ``params`` must hold every parameter of the model).
        grid: parameter names (model parameters, or ``M``, ``M_star``, ``N``, ``t_max``) and their values.

    Other arguments:
        executor: a ``symvae.analysis.Executor`` (default serial); progress: ``progress(done, total)``.

    Raises:
        InvalidInputError: unknown parameter or metric, bad values.
    """
    from ._executor import SerialExecutor

    if not grid:
        raise InvalidInputError("a sweep needs at least one parameter")
    names = tuple(grid)
    _, system, _ = model_for(base.variant, base.M, base.M_star, base.beta_schedule, *base.activations)
    known = {p.name for p in system.params} | set(STRUCTURAL)
    for name in names:
        if name not in known:
            raise InvalidInputError(f"cannot sweep {name!r}: the model's parameters are "
                                    f"{', '.join(sorted(p.name for p in system.params))} (or {', '.join(STRUCTURAL)})")
    unknown = [m for m in base.metrics if m not in METRICS]
    if unknown:
        raise InvalidInputError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    combos = list(itertools.product(*(list(grid[n]) for n in names)))
    if len(combos) > 10**7:
        raise InvalidInputError(f"{len(combos)} grid points: more than 10^7")
    points = [_apply(base, dict(zip(names, combo))) for combo in combos]
    # bound the work up front: a finite-N run is one uninterruptible compiled loop per point
    sgd_steps = sum(p.finite_n * p.t_max * p.seeds for p in points if p.finite_n)
    if sgd_steps > MAX_SGD_STEPS:
        raise InvalidInputError(f"the simulations would take {sgd_steps:.3g} SGD steps (limit {MAX_SGD_STEPS:.0e}): "
                                "lower --finite-n, --seeds, --t-max or the number of points")
    if any(p.n_grid > 10**6 or p.t_max > 10**7 for p in points):
        raise InvalidInputError("t_max must be <= 1e7 and n_grid <= 1e6")
    executor = executor or SerialExecutor()
    results = executor.map_points(evaluate_point, points, chunk_size=chunk_size, progress=progress)
    rows = [{**{n: (int(v) if n in ("M", "M_star", "N") else float(v)) for n, v in zip(names, combo)}, **res}
            for combo, res in zip(combos, results)]
    return SweepResult(names=names, metrics=tuple(base.metrics), rows=rows)
