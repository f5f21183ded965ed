"""Pictures of the statics (analysis stage; the ``symvae phase-diagram``, ``eg-curve`` and ``rd-curve`` commands call
these library functions): the (alpha, beta) phase diagram, eg(alpha) at several beta, and rate--distortion curves at
several alpha with the alpha -> infinity curve -- each as data (CSV/JSON) and as a figure (PNG/PDF by extension).

Theory points come from the replica saddle point (``method="replica"``, warm-started along each sweep and checked
against the random-matrix closed form) or directly from the closed form (``method="closed-form"``). The alpha -> inf
curve is the closed form's limit (the replica free energy has no alpha = inf form). Finite-N points, where requested,
are exact finite-N minimisers (``erm_exact``) averaged over a few datasets.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..model import Model
from ..simulate import erm_exact, sample_dataset
from ..statics import (PHASES, StaticsThresholdError, closed_form, collapse_threshold, solve_statics,
                       statics_param_names, statics_system)
from ..simulate._params import check_alpha, check_params
from ..statics._spectrum import detection_threshold_alpha

__all__ = ["PhaseDiagram", "phase_diagram", "EgCurves", "eg_curves", "RDCurves", "rd_curves", "METHODS"]

METHODS = ("replica", "closed-form")
_COLORS = {"collapsed": "#d9d9d9", "learning": "#4c9be8", "overlearning": "#f28e2b"}


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, enabled: bool, label: str):
        self.total, self.enabled, self.label, self.done = total, enabled, label, 0
        self.t0 = time.perf_counter()

    def update(self, k: int = 1) -> None:
        self.done += k
        if self.enabled:
            frac = self.done / max(self.total, 1)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% ({self.done}/{self.total}) "
                             f"{time.perf_counter() - self.t0:6.1f}s")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def _point(model, params, alpha, method, guess):
    """(phase, eg, rate, distortion, train_loss, closed-form difference, result for the next warm start)."""
    if method == "closed-form" or math.isinf(alpha):
        cf = closed_form(model, params, alpha)
        o = cf.observables
        return cf.phase, o["eg"], o["rate"], o["distortion"], cf.train_loss, 0.0, None
    r = solve_statics(model, params, alpha, guess=guess, compare=True, throw=False)
    if not r.ok:  # no local minimum found here: an unsolved point (NaN), never another saddle's values
        nan = math.nan
        return UNSOLVED, nan, nan, nan, nan, 0.0, guess
    o = r.observables
    return r.phase, o["eg"], o["rate"], o["distortion"], r.train_loss, r.closed_form_difference, r


ORDER_KEYS = ("m", "m_tilde", "Q", "Q_tilde", "R", "D")


def _diagram_point(model, params, alpha, method, guess):
    """One phase-diagram point: (row of ``_columns``, order parameters, result for the next warm start).

    The replica saddle point is solved without the closed form (``compare=False``: it is neither a start nor a trigger
    of more search); the closed form is then computed separately, only to report the difference to it."""
    cf = closed_form(model, params, alpha)
    if method == "closed-form":
        o = cf.observables
        order = {k: np.asarray(cf.order[k], dtype=float) for k in ORDER_KEYS}
        return (_code(cf.phase), o["eg"], o["rate"], o["distortion"], cf.train_loss, 0.0), order, None
    r = solve_statics(model, params, alpha, guess=guess, compare=False, throw=False)
    if not r.ok:  # no local minimum found here: an unsolved point (NaN), never another saddle's values
        nan = math.nan
        return (_code(UNSOLVED), nan, nan, nan, nan, 0.0), None, guess
    order = {k: np.asarray(r.order[k], dtype=float) for k in ORDER_KEYS}
    # W -> -W, W~ -> -W~ of one latent leaves the loss unchanged and flips its rows of m and m~: compared with the
    # closed form's sign (positive)
    aligned = dict(order)
    flip = np.sum(order["m"] * np.asarray(cf.order["m"], dtype=float), axis=1) < 0
    if np.any(flip):
        aligned["m"], aligned["m_tilde"] = order["m"].copy(), order["m_tilde"].copy()
        aligned["m"][flip], aligned["m_tilde"][flip] = -order["m"][flip], -order["m_tilde"][flip]
    diff = max(float(np.max(np.abs(np.asarray(cf.order[k], dtype=float) - aligned[k]))) for k in ORDER_KEYS)
    diff = max(diff, abs(float(cf.train_loss) - r.train_loss))
    o = r.observables
    return (_code(r.phase), o["eg"], o["rate"], o["distortion"], r.train_loss, diff), order, r


def _cell(value) -> str:
    """A CSV cell: the exact float, or empty where the solver found no minimiser (never the text 'nan')."""
    v = float(value)
    return repr(v) if math.isfinite(v) else ""


#: The phase label of a grid point where the replica solver found no minimiser (code -1 in ``PhaseDiagram.phase``).
UNSOLVED = "unsolved"


def _code(phase: str) -> int:
    return -1 if phase == UNSOLVED else PHASES.index(phase)


def _collapse_value(model, params, alpha) -> float:
    """beta_c(alpha) from ``collapse_threshold`` (nan where no phase but the collapsed one exists)."""
    try:
        return float(collapse_threshold(model, params, float(alpha))["value"])
    except StaticsThresholdError:
        return math.nan


def _secant(guess, before, beta: float):
    """The warm start of the next point of a column: ``guess`` (the last result) with its state extrapolated linearly
    in beta through ``before`` (the one before it) when both are solved, have the same phase on every latent and no
    collapsed latent (whose conjugates K are undetermined); otherwise ``guess`` itself. Only the state moves (the
    order, phase and parameters that ``solve_statics`` reads off a guess stay those of the last result): Newton then
    starts at O(h^2) instead of O(h) from the root, one or two iterations fewer."""
    if guess is None or before is None or not (guess.ok and before.ok) \
            or guess.latent_phases != before.latent_phases or "collapsed" in guess.latent_phases:
        return guess
    b1, b0 = float(guess.params["beta"]), float(before.params["beta"])
    if guess.alpha != before.alpha or b1 == b0:
        return guess
    y1, y0 = np.asarray(guess.y, dtype=float), np.asarray(before.y, dtype=float)
    step = (y1 - y0) * ((beta - b1) / (b1 - b0))
    if np.max(np.abs(step) / np.maximum(1.0, np.abs(y1))) > _SECANT_MAX:
        return guess
    return dataclasses.replace(guess, y=y1 + step)


#: largest extrapolation (relative to max(1, |y|), per coordinate) of ``_secant``: on a coarse grid (beta steps of 0.65)
#: a far extrapolation converged to an unstable saddle below the minimiser, and the search then found no minimiser
_SECANT_MAX = 0.05


def _columns(model: Model, params: Mapping[str, float], alphas: Sequence[float], betas: Sequence[float],
             method: str, lowest: Sequence):
    """Adjacent alpha columns of the phase diagram, in one pass: each column by continuation in beta (every point
    warm-started from the one below it) from its lowest point, ``lowest[j]`` = ``_diagram_point``'s result at
    betas[0] (from ``_lowest_row``), and the collapse line beta_c(alpha) of each column.
    Returns (n_beta x n_columns x 6 array, order parameters {name: n_beta x n_columns x shape}, collapse line)."""
    out = np.zeros((len(betas), len(alphas), 6))
    orders: dict[str, np.ndarray] = {}
    line = np.full(len(alphas), np.nan)
    for j, a in enumerate(alphas):
        guess = before = None
        for i, b in enumerate(betas):
            if i == 0:
                out[i, j], order, guess = lowest[j]
            else:
                start = _secant(guess, before, float(b))
                before = guess
                out[i, j], order, guess = _diagram_point(model, {**params, "beta": float(b)}, float(a), method, start)
            if order is not None:
                for k, v in order.items():
                    if k not in orders:
                        orders[k] = np.full((len(betas), len(alphas)) + v.shape, np.nan)
                    orders[k][i, j] = v
        line[j] = _collapse_value(model, params, a)
    return out, orders, line


#: The job of the worker processes (set before the fork, so that they inherit the model and its compiled system
#: instead of unpickling and reloading them per task).
_JOB: dict = {}


def _chunk(start: int, stop: int):
    job = _JOB
    return start, _columns(job["model"], job["params"], job["alphas"][start:stop], job["betas"], job["method"],
                           job["lowest"][start:stop])


def _lowest_row(model, params, alphas, beta: float, method: str) -> list:
    """``_diagram_point`` at (beta, alpha) for every alpha, by continuation in alpha along the lowest row (each point
    warm-started from the one before it): the lowest point of every column, as one serial sweep over the columns
    reaches it. Chunks of columns continued from these are independent tasks whose results equal the serial sweep's,
    and no chunk starts with a search from nothing."""
    points, guess = [], None
    for a in alphas:
        point = _diagram_point(model, {**params, "beta": beta}, float(a), method, guess)
        points.append(point)
        guess = point[2]
    return points


def _warm_up(model: Model, params: Mapping[str, float], alpha: float, beta: float, method: str) -> None:
    """Load the compiled functions once in this process before worker processes fork from it."""
    if method != "replica":
        return
    S = statics_system(model)
    pv = check_params({**params, "beta": beta}, statics_param_names(model))
    p = S.param_vector(pv, alpha)
    y = np.zeros(S.n)
    y[S.d_idx] = 1.0  # the collapsed point's D: every log finite
    S.F(y, p), S.J(y, p), S.free_energy(y, p)


@dataclasses.dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """The (alpha, beta) phase diagram.

    Attributes:
        alphas, betas: grid axes. phase: integer codes into ``PHASES`` (shape n_beta x n_alpha). eg, rate, distortion,
        train_loss: the same shape. method: how points were computed. closed_form_difference: max over the grid of
        the replica--closed-form difference (0 for the closed form; with no decay on the encoder, lam = 0 or
        ``lam_W_only``, it includes the freedom of the encoder overlaps m~, Q~, R, which are not unique at
        alpha < 1 or on a collapsed latent, while f, m, Q and D are). collapse_line: beta_c(alpha) on ``alphas``
        (nan where undefined). detection: the BBP alpha_c. seconds: wall time. order: the order parameters m,
        m_tilde, Q, Q_tilde, R, D at every point (shape n_beta x n_alpha x their own shape; NaN where unsolved).
    """

    model: Model
    params: Mapping[str, float]
    alphas: np.ndarray
    betas: np.ndarray
    phase: np.ndarray
    eg: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    train_loss: np.ndarray
    method: str
    closed_form_difference: float
    collapse_line: np.ndarray
    detection: float
    seconds: float
    order: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {p: int(np.sum(self.phase == k)) for k, p in enumerate(PHASES)}
        if np.any(self.phase == -1):
            out[UNSOLVED] = int(np.sum(self.phase == -1))
        return out

    def to_csv(self, path) -> None:
        """Rows alpha, beta, phase, eg, rate, distortion, train_loss."""
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["alpha", "beta", "phase", "eg", "rate", "distortion", "train_loss"])
            for j, a in enumerate(self.alphas):
                for i, b in enumerate(self.betas):
                    code = int(self.phase[i, j])
                    w.writerow([repr(float(a)), repr(float(b)), UNSOLVED if code < 0 else PHASES[code],
                                *(repr(float(x[i, j])) for x in (self.eg, self.rate, self.distortion,
                                                                   self.train_loss))])

    def summary(self) -> dict:
        return {"alpha_range": [float(self.alphas[0]), float(self.alphas[-1])],
                "beta_range": [float(self.betas[0]), float(self.betas[-1])],
                "shape": [len(self.betas), len(self.alphas)], "counts": self.counts(), "method": self.method,
                "closed_form_difference": self.closed_form_difference, "detection_alpha": self.detection,
                "seconds": self.seconds, "status": "partial" if np.any(self.phase == -1) else "ok"}

    def plot(self, path) -> None:
        """Phases as colours, with the collapse line beta_c(alpha) and the BBP threshold alpha_c."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        fig = Figure(figsize=(6.4, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        cmap = ListedColormap([_COLORS[p] for p in PHASES])
        ax.pcolormesh(self.alphas, self.betas, np.ma.masked_less(self.phase, 0), cmap=cmap, vmin=-0.5, vmax=2.5,
                      shading="nearest")  # unsolved points stay blank
        ax.plot(self.alphas, self.collapse_line, "k-", lw=1.2, label=r"$\beta_c(\alpha)$")
        if self.alphas[0] <= self.detection <= self.alphas[-1]:
            ax.axvline(self.detection, color="k", ls="--", lw=1.0, label=r"BBP $\alpha_c$")
        if self.alphas[-1] / self.alphas[0] > 20:
            ax.set_xscale("log")
        ax.set_xlim(self.alphas[0], self.alphas[-1])
        ax.set_ylim(self.betas[0], self.betas[-1])
        ax.set_xlabel(r"$\alpha = n/N$")
        ax.set_ylabel(r"$\beta$")
        handles = [Patch(color=_COLORS[p], label=p) for p in PHASES] + ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper right", fontsize=8)
        ax.set_title(", ".join(f"{k} = {v:g}" for k, v in self.params.items() if k != "beta"), fontsize=9)
        fig.tight_layout()
        fig.savefig(path)


def _range(rng: Sequence[float], what: str, *, positive: bool) -> tuple[float, float]:
    if len(rng) != 2:
        raise InvalidInputError(f"{what} must be two numbers a:b")
    a, b = float(rng[0]), float(rng[1])
    if not (math.isfinite(a) and math.isfinite(b)) or not a < b:
        raise InvalidInputError(f"{what} must be finite with a < b, got {a}:{b}")
    if positive and a <= 0:
        raise InvalidInputError(f"{what} must be > 0, got {a}:{b}")
    return a, b


def _grid(values: Sequence[float], what: str) -> np.ndarray:
    grid = np.asarray([float(v) for v in values])
    if len(grid) < 2 or not np.all(np.isfinite(grid)) or np.any(grid <= 0) or np.any(np.diff(grid) <= 0):
        raise InvalidInputError(f"{what} must be at least 2 finite increasing numbers > 0")
    return grid


def phase_diagram(model: Model, params: Mapping[str, float], alpha_range: Sequence[float] | None,
                  beta_range: Sequence[float] | None, *, n_alpha: int = 100, n_beta: int = 100,
                  log_alpha: bool = True, method: str = "replica", workers: int = 1, progress: bool = False,
                  chunk: int | None = None, alphas: Sequence[float] | None = None,
                  betas: Sequence[float] | None = None) -> PhaseDiagram:
    """The (alpha, beta) phase diagram on a grid.

    Arguments:
        model: the model. params: parameter values (beta is the vertical axis and ignored). alpha_range, beta_range:
            (a, b) with 0 < a < b (beta > 0 too).

    Other arguments:
        n_alpha, n_beta: grid size. log_alpha: geometric alpha grid. method: ``"replica"`` or ``"closed-form"``.
        workers: processes; chunks of adjacent alpha columns are independent tasks. progress: progress bar on
            stderr. chunk: columns per task (default: a sixteenth of them, which balances two workers; the lowest
            row is first swept serially in alpha, so every point but the very first is warm-started from a
            neighbour and the results do not depend on the chunks or the number of workers). alphas, betas:
            explicit increasing grids instead of the ranges (the range may then be None).

    Returns:
        A ``PhaseDiagram``.

    Raises:
        InvalidInputError: bad ranges, sizes or parameters.
    """
    _check_method(method)
    if alphas is None:
        a0, a1 = _range(alpha_range, "alpha range", positive=True)
        if n_alpha < 2:
            raise InvalidInputError("the grid needs at least 2 x 2 points")
        alphas = np.geomspace(a0, a1, n_alpha) if log_alpha else np.linspace(a0, a1, n_alpha)
    else:
        alphas = _grid(alphas, "alphas")
    if betas is None:
        b0, b1 = _range(beta_range, "beta range", positive=True)
        if n_beta < 2:
            raise InvalidInputError("the grid needs at least 2 x 2 points")
        betas = np.linspace(b0, b1, n_beta)
    else:
        betas = _grid(betas, "betas")
    n_alpha, n_beta = len(alphas), len(betas)
    b0 = float(betas[0])
    a0 = float(alphas[0])
    params = {k: v for k, v in params.items() if k != "beta"}
    closed_form(model, {**params, "beta": b0}, a0)  # validates the parameters before any work starts
    t0 = time.perf_counter()
    bar = _Progress(n_alpha * n_beta, progress, "phase diagram")
    # chunks of adjacent columns, each continued in beta from the lowest row, swept first in alpha
    size = chunk if chunk else max(1, math.ceil(n_alpha / 16))
    bounds = [(k, min(k + size, n_alpha)) for k in range(0, n_alpha, size)]
    data = np.zeros((n_beta, n_alpha, 6))
    line = np.full(n_alpha, np.nan)
    orders: dict[str, np.ndarray] = {}

    def store(start, result):
        cols, order, part = result
        stop = start + cols.shape[1]
        data[:, start:stop] = cols
        line[start:stop] = part
        for k, v in order.items():
            if k not in orders:
                orders[k] = np.full((n_beta, n_alpha) + v.shape[2:], np.nan)
            orders[k][:, start:stop] = v
        bar.update(cols.shape[0] * cols.shape[1])

    _warm_up(model, params, float(alphas[0]), float(b0), method)
    lowest = _lowest_row(model, params, alphas, b0, method)
    if workers > 1 and len(bounds) > 1:
        import multiprocessing
        from concurrent.futures import as_completed

        _JOB.update(model=model, params=params, alphas=alphas, betas=betas, method=method, lowest=lowest)
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=min(workers, len(bounds)), mp_context=ctx) as pool:
                # largest alpha first: those columns cross the collapse line inside the beta range (each crossing
                # adds escape searches) and cost several times a column without one, so starting them first leaves
                # the cheap chunks to fill the end and balances the workers (the results do not depend on the order)
                for f in as_completed([pool.submit(_chunk, a, b) for a, b in reversed(bounds)]):
                    store(*f.result())
        finally:
            _JOB.clear()
    else:
        for a, b in bounds:
            store(a, _columns(model, params, alphas[a:b], betas, method, lowest[a:b]))
    rho_max = max(v for k, v in params.items() if k.startswith("rho"))
    return PhaseDiagram(model=model, params=params, alphas=alphas, betas=betas, phase=data[..., 0].astype(int),
                        eg=data[..., 1], rate=data[..., 2], distortion=data[..., 3], train_loss=data[..., 4],
                        method=method, closed_form_difference=float(np.max(data[..., 5])), collapse_line=line,
                        order=orders,
                        detection=detection_threshold_alpha(rho_max, params["eta"]),
                        seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------------- eg(alpha)
@dataclasses.dataclass(frozen=True, eq=False)
class EgCurves:
    """eg(alpha) at several beta, with optional finite-N points.

    Attributes:
        alphas, betas; eg (n_beta x n_alpha); phase (same shape, codes into PHASES); finite_n: rows
        {"beta", "alpha", "N", "eg_mean", "eg_sem", "seeds"}; detection: BBP alpha_c; method.
    """

    model: Model
    params: Mapping[str, float]
    alphas: np.ndarray
    betas: np.ndarray
    eg: np.ndarray
    phase: np.ndarray
    finite_n: list
    detection: float
    method: str

    def to_csv(self, path) -> None:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "beta", "alpha", "N", "eg", "eg_sem", "phase"])
            for i, b in enumerate(self.betas):
                for j, a in enumerate(self.alphas):
                    w.writerow([self.method, repr(float(b)), repr(float(a)), "inf", _cell(self.eg[i, j]), "",
                                PHASES[int(self.phase[i, j])]])
            for row in self.finite_n:
                w.writerow(["finite-N", row["beta"], row["alpha"], row["N"], row["eg_mean"], row["eg_sem"], ""])

    def summary(self) -> dict:
        """The alpha of the largest eg per beta over the solved points; unsolved points (NaN) make it ``partial``."""
        eg = np.asarray(self.eg, dtype=float)
        solved = np.isfinite(eg)
        peaks = [float(self.alphas[int(np.nanargmax(eg[i]))]) if solved[i].any() else None
                 for i in range(len(self.betas))]
        unsolved = int(np.count_nonzero(~solved))
        return {"betas": self.betas.tolist(), "alpha_range": [float(self.alphas[0]), float(self.alphas[-1])],
                "argmax_alpha": peaks, "detection_alpha": self.detection, "finite_n_points": len(self.finite_n),
                "unsolved": unsolved, "status": "partial" if unsolved else "ok"}

    def plot(self, path) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i, b in enumerate(self.betas):
            line, = ax.plot(self.alphas, self.eg[i], label=rf"$\beta = {b:g}$")
            pts = [r for r in self.finite_n if r["beta"] == b]
            if pts:
                ax.errorbar([r["alpha"] for r in pts], [r["eg_mean"] for r in pts],
                            yerr=[r["eg_sem"] for r in pts], fmt="o", ms=3, color=line.get_color())
        if self.alphas[0] <= self.detection <= self.alphas[-1]:
            ax.axvline(self.detection, color="k", ls="--", lw=1.0, label=r"BBP $\alpha_c$")
        ax.set_xscale("log")
        ax.set_xlabel(r"$\alpha = n/N$")
        ax.set_ylabel(r"$\varepsilon_g$")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)


def _finite_n_points(model, params, alpha, N, seeds, observables) -> dict:
    vals = {k: [] for k in observables}
    for seed in range(seeds):
        data = sample_dataset(model, params, N, alpha, seed=seed + 7919 * N)
        r = erm_exact(model, params, data)
        for k in observables:
            vals[k].append(r.observables[k])
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0)
            for k, v in vals.items()}


def eg_curves(model: Model, params: Mapping[str, float], betas: Sequence[float], alpha_range: Sequence[float], *,
              n_alpha: int = 120, method: str = "replica", finite_n: int | None = None, finite_alphas: int = 8,
              seeds: int = 4) -> EgCurves:
    """eg(alpha) for several beta (replica or closed form), with optional exact finite-N points.

    Other arguments:
        finite_n: N of the finite-N points (None: none); finite_alphas: how many alphas; seeds: datasets per point.

    Raises:
        InvalidInputError: bad ranges or parameters.
    """
    _check_method(method)
    a0, a1 = _range(alpha_range, "alpha range", positive=True)
    alphas = np.geomspace(a0, a1, n_alpha)
    betas = np.asarray([float(b) for b in betas])
    if len(betas) == 0 or np.any(betas <= 0) or not np.all(np.isfinite(betas)):
        raise InvalidInputError("betas must be a non-empty list of finite numbers > 0")
    eg = np.zeros((len(betas), n_alpha))
    phase = np.zeros((len(betas), n_alpha), dtype=int)
    for i, b in enumerate(betas):
        guess = None
        for j, a in enumerate(alphas):
            ph, e, _, _, _, _, guess = _point(model, {**params, "beta": float(b)}, float(a), method, guess)
            eg[i, j], phase[i, j] = e, _code(ph)
    rows = []
    if finite_n:
        for b in betas:
            for a in np.geomspace(a0, a1, finite_alphas):
                stats = _finite_n_points(model, {**params, "beta": float(b)}, float(a), int(finite_n), seeds, ["eg"])
                rows.append({"beta": float(b), "alpha": float(a), "N": int(finite_n), "eg_mean": stats["eg"][0],
                             "eg_sem": stats["eg"][1], "seeds": seeds})
    rho_max = max(v for k, v in params.items() if k.startswith("rho"))
    return EgCurves(model=model, params=dict(params), alphas=alphas, betas=betas, eg=eg, phase=phase, finite_n=rows,
                    detection=detection_threshold_alpha(rho_max, params["eta"]), method=method)


# ----------------------------------------------------------------------------------------------- rate-distortion
@dataclasses.dataclass(frozen=True, eq=False)
class RDCurves:
    """Rate--distortion curves traced by beta at fixed alpha.

    Attributes:
        curves: alpha -> {"beta", "rate", "distortion"} arrays (alpha = inf: the closed form's limit).
        finite_n: rows {"alpha", "beta", "N", "rate", "rate_sem", "distortion", "distortion_sem", "seeds"}.
        method: theory method for finite alpha.
    """

    model: Model
    params: Mapping[str, float]
    curves: Mapping[float, Mapping[str, np.ndarray]]
    finite_n: list
    method: str

    def to_csv(self, path) -> None:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "alpha", "beta", "N", "rate", "distortion", "rate_sem", "distortion_sem"])
            for a, c in self.curves.items():
                src = "closed-form" if math.isinf(a) else self.method
                for b, r, d in zip(c["beta"], c["rate"], c["distortion"]):
                    w.writerow([src, repr(float(a)), repr(float(b)), "inf", _cell(r), _cell(d), "", ""])
            for row in self.finite_n:
                w.writerow(["finite-N", row["alpha"], row["beta"], row["N"], row["rate"], row["distortion"],
                            row["rate_sem"], row["distortion_sem"]])

    def summary(self) -> dict:
        """Per alpha the largest rate and smallest distortion over the solved points; points without a minimiser
        (NaN) are counted as ``unsolved`` and make the status ``partial``."""
        out, unsolved = {}, 0
        for a, c in self.curves.items():
            rate, dist = np.asarray(c["rate"], dtype=float), np.asarray(c["distortion"], dtype=float)
            solved = np.isfinite(rate) & np.isfinite(dist)
            unsolved += int(np.count_nonzero(~solved))
            out["inf" if math.isinf(a) else repr(float(a))] = {
                "max_rate": float(np.max(rate[solved])) if solved.any() else None,
                "min_distortion": float(np.min(dist[solved])) if solved.any() else None,
                "points": len(c["beta"]), "unsolved": int(np.count_nonzero(~solved))}
        return {"curves": out, "finite_n_points": len(self.finite_n), "unsolved": unsolved,
                "status": "partial" if unsolved else "ok"}

    def plot(self, path) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for a, c in self.curves.items():
            label = r"$\alpha \to \infty$" if math.isinf(a) else rf"$\alpha = {a:g}$"
            style = "k--" if math.isinf(a) else "-"
            line, = ax.plot(c["rate"], c["distortion"], style, label=label)
            pts = [r for r in self.finite_n if r["alpha"] == a]
            if pts:
                ax.errorbar([r["rate"] for r in pts], [r["distortion"] for r in pts],
                            xerr=[r["rate_sem"] for r in pts], yerr=[r["distortion_sem"] for r in pts], fmt="o",
                            ms=3, color=line.get_color())
        ax.set_xlabel("rate $R$")
        ax.set_ylabel("distortion $D$")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)


def rd_curves(model: Model, params: Mapping[str, float], alphas: Sequence[float], *, n_beta: int = 150,
              beta_min: float | None = None, include_infinity: bool = True, method: str = "replica",
              finite_n: int | None = None, finite_betas: int = 6, seeds: int = 3) -> RDCurves:
    """Rate--distortion curves: beta from ``beta_min`` (default 1e-2 (rho + eta)) to just above the collapse
    threshold beta_c(alpha) (geometric grid), for each alpha, plus alpha = inf.

    Raises:
        InvalidInputError: bad alphas or parameters.
    """
    _check_method(method)
    alphas = [check_alpha(a, allow_inf=True) for a in alphas]
    if not alphas:
        raise InvalidInputError("alphas must be a non-empty list")
    if include_infinity and math.inf not in alphas:
        alphas = alphas + [math.inf]
    params = {k: v for k, v in params.items() if k != "beta"}
    rho_sum = sum(v for k, v in params.items() if k.startswith("rho"))
    b0 = beta_min if beta_min is not None else 1e-2 * (max(rho_sum, 0.0) + params["eta"])
    curves = {}
    for a in alphas:
        try:
            bc = float(collapse_threshold(model, params, a)["value"])
        except StaticsThresholdError:
            bc = 2 * b0
        betas = np.geomspace(b0, max(bc * 1.02, 1.01 * b0), n_beta)
        rate, dist = np.zeros(n_beta), np.zeros(n_beta)
        guess = None
        for i, b in enumerate(betas):
            _, _, r, d, _, _, guess = _point(model, {**params, "beta": float(b)}, a, method, guess)
            rate[i], dist[i] = r, d
        curves[a] = {"beta": betas, "rate": rate, "distortion": dist}
    rows = []
    if finite_n:
        for a in alphas:
            if math.isinf(a):
                continue
            betas = curves[a]["beta"]
            for b in betas[np.linspace(0, len(betas) - 1, finite_betas).astype(int)]:
                stats = _finite_n_points(model, {**params, "beta": float(b)}, a, int(finite_n), seeds,
                                         ["rate", "distortion"])
                rows.append({"alpha": a, "beta": float(b), "N": int(finite_n), "rate": stats["rate"][0],
                             "rate_sem": stats["rate"][1], "distortion": stats["distortion"][0],
                             "distortion_sem": stats["distortion"][1], "seeds": seeds})
    return RDCurves(model=model, params=params, curves=curves, finite_n=rows, method=method)
