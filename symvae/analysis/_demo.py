"""The end-to-end demo: derive, integrate, simulate, locate the collapse threshold, write a figure."""
from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Callable

import numpy as np

from .._cache import _atomic_write
from ..derive import derive_dynamics
from ..model import make_model
from ..codegen import compile_system
from ..numerics import find_fixed_points, integrate, threshold

__all__ = ["run_demo"]

PAPER_PARAMS = dict(rho=1.0, eta=1.0, beta=1.0, lam=0.0, tau=0.01)
#: m(0) = m~(0) = 0.05 ~ N^-1/2 at N = 400, as for an i.i.d. Gaussian initialisation.
PAPER_INIT = {"m": [[0.05]], "m_tilde": [[0.05]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}


def run_demo(out: str | pathlib.Path, *, N: int = 500, seeds: int = 4, digits: int = 30,
             log: Callable[[str], None] = print) -> dict:
    """Derive the base model, integrate eg(t) at rho = eta = beta = 1, tau = 0.01, add finite-N SGD points, locate
    the collapse threshold, and write ``eg_dynamics.png`` and ``summary.json`` into ``out``.

    Returns:
        The summary written to ``summary.json``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..simulate import simulate

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = make_model("base")
    t0 = time.perf_counter()
    system = derive_dynamics(model)
    log(f"derived {len(system.state)} ODEs for the base model in {time.perf_counter() - t0:.2f} s "
        f"(state: {', '.join(s.name for s in system.state)})")

    t_dense = np.linspace(0.0, 1500.0, 601)
    traj = integrate(system, PAPER_INIT, PAPER_PARAMS, t_dense, throw=True)
    eg = traj.observables()["eg"]
    log(f"integrated to t = 1500: eg = {eg[-1]:.5f} ({traj.message}); convergence time (eg within 1e-3 of its "
        f"final value) t = {traj.convergence_time(1e-3):.1f}")

    t_sim = np.linspace(0.0, 1500.0, 11)
    t1 = time.perf_counter()
    sim = simulate(model, PAPER_PARAMS, PAPER_INIT, t_sim, N=N, seeds=seeds, seed=1)
    sim_eg = np.asarray(sim.eg)
    log(f"finite-N online SGD (N = {N}, {seeds} seeds) in {time.perf_counter() - t1:.1f} s: {sim.status}")

    collapse = _collapse_threshold(digits, log)

    # the late-time eg is that of the stable fixed point (integration would converge slowly near beta_c)
    compiled = compile_system(system)
    beta_c = float(collapse["value"][:20])
    # eg ~ (sqrt(rho) - sqrt(beta_c - beta))^2 rises like a square root below beta_c: refine the grid there
    betas = np.concatenate([np.linspace(0.05, beta_c - 0.2, 25), beta_c - np.geomspace(0.2, 1e-6, 25),
                            np.linspace(beta_c + 1e-6, 3.0, 10)])
    final = []
    for beta in betas:
        params = dict(PAPER_PARAMS, beta=float(beta))
        stable = find_fixed_points(compiled, params).stable
        y = stable[0].x if stable else np.full(len(system.state), np.nan)
        final.append(float(compiled.observables(0.0, y, system.param_vector(params))["eg"]))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(t_dense, eg, lw=1.5, label=r"ODE ($N\to\infty$)")
    ax1.errorbar(t_sim, sim_eg.mean(axis=0), yerr=sim_eg.std(axis=0), fmt="o", ms=4, capsize=2,
                 label=f"online SGD, N = {N} ({seeds} seeds)")
    ax1.set(xlabel="t = steps / N", ylabel=r"$\varepsilon_g$", yscale="log",
            title=r"$\rho=\eta=\beta=1$, $\tau=0.01$")
    ax1.legend()
    ax2.plot(betas, final, "-", lw=1.5, label=r"stable fixed point ($\tau = 0.01$)")
    ax2.axvline(beta_c, color="k", ls="--", lw=1, label=rf"collapse threshold $\beta_c$ = {collapse['value'][:8]}")
    ax2.set(xlabel=r"$\beta$", ylabel=r"late-time $\varepsilon_g$", title="posterior collapse")
    ax2.legend(loc="center left")
    fig.tight_layout()
    figure = out / "eg_dynamics.png"
    partial = out / ".eg_dynamics.part.png"  # written under another name, then renamed: never a partial figure
    try:
        fig.savefig(partial, dpi=130)
        os.replace(partial, figure)
    finally:
        plt.close(fig)
        if partial.exists():
            partial.unlink()

    summary = {"params": PAPER_PARAMS, "init": PAPER_INIT, "eg_final_ode": float(eg[-1]),
               "eg_final_simulation_mean": float(sim_eg[:, -1].mean()),
               "eg_final_simulation_std": float(sim_eg[:, -1].std()), "N": N, "seeds": seeds,
               "convergence_time": traj.convergence_time(1e-3), "collapse_threshold": collapse,
               "figure": str(figure)}
    _atomic_write(out / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    log(f"wrote {figure} and {out / 'summary.json'}")
    return summary


def _collapse_threshold(digits: int, log) -> dict:
    """The collapse threshold in beta at the demo parameters, to ``digits`` verified digits."""
    t0 = time.perf_counter()
    info = threshold("collapse", make_model("base"), dict(PAPER_PARAMS), digits=digits, throw=True).as_dict()
    log(f"collapse threshold beta_c = {info['value']} ({info['digits']} verified digits, closed form "
        f"{info.get('closed_form')}) in {time.perf_counter() - t0:.2f} s")
    return info
