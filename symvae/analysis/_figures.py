"""Tables and figures of the studies: CSV of plain numbers, PNG/PDF figures with legends outside the data."""
from __future__ import annotations

import csv
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["write_csv", "plain", "plot_sweep", "plot_anneal", "plot_nscaling", "figure_path"]



def plain(value):
    """A plain Python number/str for JSON and CSV (numpy scalars -> float/int, non-finite -> None)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_csv(path, rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> pathlib.Path:
    """Rows as CSV (header = ``columns``, default: keys in first-seen order); numbers as ``repr(float)``, missing
    or non-finite values as empty cells."""
    path = pathlib.Path(path)
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            out = []
            for c in columns:
                v = plain(r.get(c))
                out.append("" if v is None else (repr(v) if isinstance(v, float) else v))
            w.writerow(out)
    return path


def figure_path(path) -> pathlib.Path:
    """``path`` if matplotlib writes its format (the rule the command line checks before any work)."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = pathlib.Path(path)
    if path.suffix.lower().lstrip(".") not in FigureCanvasBase.get_supported_filetypes():
        raise InvalidInputError(f"unknown figure format {path.suffix or '(none)'!r} in {str(path)!r}")
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend_outside(ax, fontsize: int = 8) -> None:
    """The legend to the right of the axes, so that it never covers data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize, frameon=False)


def save_figure(fig, path) -> pathlib.Path:
    """Lay out, write at 120 dpi and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def plot_sweep(rows: Sequence[Mapping], names: Sequence[str], metrics: Sequence[str], path, *,
               title: str = "", logx: bool = False, marks: Mapping[str, float] | None = None) -> pathlib.Path:
    """One panel per metric vs the first swept name; one line per value of the second; simulation markers with
    standard-error bars where present; vertical dashed lines at ``marks`` ({label: x})."""
    path = figure_path(path)
    plt = _plt()
    x_name = names[0]
    groups: dict = {}
    for r in rows:
        groups.setdefault(r.get(names[1]) if len(names) > 1 else None, []).append(r)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.8 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        for key, grp in groups.items():
            grp = sorted(grp, key=lambda r: r[x_name])
            x = np.array([r[x_name] for r in grp], dtype=float)
            y = np.array([np.nan if r.get(metric) is None else r.get(metric, np.nan) for r in grp], dtype=float)
            label = "ODE" + (f", {names[1]} = {key:g}" if key is not None else "")
            line, = ax.plot(x, y, ".-", lw=1.5, label=label)
            if any(f"{metric}_sim" in r for r in grp):
                ys = np.array([np.nan if r.get(f"{metric}_sim") is None else r[f"{metric}_sim"] for r in grp])
                es = np.array([np.nan if r.get(f"{metric}_se") is None else r[f"{metric}_se"] for r in grp])
                ax.errorbar(x, ys.astype(float), yerr=es.astype(float), fmt="o", ms=4, capsize=2,
                            color=line.get_color(), label="simulation (mean ± s.e.)" + (
                                f", {names[1]} = {key:g}" if key is not None else ""))
        for label, xv in (marks or {}).items():
            ax.axvline(xv, color="k", ls="--", lw=1, label=label)
        ax.set(xlabel=x_name, ylabel=metric)
        if logx:
            ax.set_xscale("log")
        legend_outside(ax)
    if title:
        axes[0, 0].set_title(title)
    return save_figure(fig, path)


def plot_anneal(curve: Sequence[Mapping], optimum: Mapping, path, *, title: str = "") -> pathlib.Path:
    """T(gamma) on log-gamma axes, the optimum and the constant-beta time."""
    path = figure_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    pts = sorted((c["gamma"], c["time"]) for c in curve if c.get("time") is not None)
    if pts:
        g, T = np.array(pts).T
        ax.plot(g, T, "o-", ms=3, lw=1.2, label="T(γ), annealed")
    ax.axhline(optimum["time_constant"], color="gray", ls=":", label=f"constant β: T = {optimum['time_constant']:.1f}")
    ax.plot([optimum["gamma_opt"]], [optimum["time_opt"]], "r*", ms=10,
            label=f"γ* = {optimum['gamma_opt']:.4g}, T = {optimum['time_opt']:.1f}")
    ax.set(xscale="log", yscale="log", xlabel="annealing rate γ", ylabel="convergence time T", title=title)
    legend_outside(ax)
    return save_figure(fig, path)


def plot_nscaling(rows: Sequence[Mapping], exponent: float, path, *, title: str = "") -> pathlib.Path:
    """Deviation vs N on log axes with error bars, the fit and an N^-1/2 reference line."""
    path = figure_path(path)
    plt = _plt()
    N = np.array([r["N"] for r in rows], dtype=float)
    d = np.array([r["deviation"] for r in rows], dtype=float)
    e = np.array([r["deviation_se"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    ax.errorbar(N, d, yerr=e, fmt="o", capsize=3, label="simulation vs ODE (rms over seeds, times)")
    ref = d[0] * (N / N[0]) ** -0.5
    ax.plot(N, ref, "k--", lw=1, label=r"$\propto N^{-1/2}$")
    fit = np.exp(np.mean(np.log(d)) + exponent * (np.log(N) - np.mean(np.log(N))))
    ax.plot(N, fit, "-", lw=1, label=f"fit: exponent {exponent:.3f}")
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="deviation of eg", title=title)
    legend_outside(ax)
    return save_figure(fig, path)


def plot_time_series(path, *, ode: tuple | None = None, sim: tuple | None = None, ylabel: str = "eg",
                     title: str = "", logy: bool = False) -> pathlib.Path:
    """One observable vs t: the ODE as a line (``ode = (t, y)``) and finite-N means with standard-error bars
    (``sim = (t, mean, se, label)``)."""
    path = figure_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    if ode is not None:
        ax.plot(ode[0], ode[1], lw=1.5, label="ODE (N → ∞)")
    if sim is not None:
        ax.errorbar(sim[0], sim[1], yerr=sim[2], fmt="o", ms=4, capsize=2, label=sim[3])
    ax.set(xlabel="t = steps / N", ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    legend_outside(ax)
    return save_figure(fig, path)
