"""The real-data study: spectrum fit -> predictions -> checks against trained linear and nonlinear VAEs -> report.

``realdata_study`` computes everything and returns a plain dictionary (the numbers JSON); ``write_report`` turns it
into figures, CSVs and a Markdown report. Verdicts are stated per check: a prediction "holds" when the measured
value falls in the bracket the grid allows (or equals the predicted count), otherwise it "fails" and the direction
is said.
"""
from __future__ import annotations

import csv
import json
import math
import pathlib
import time

import numpy as np

from ..errors import InvalidInputError
from ._load import RealData, subsample
from ._predict import (active_predicted, active_predicted_with_bulk, eg_alpha_curves, predict, rd_curves_total,
                       spike_observables, thresholds)
from ._spectrum import FitResult, eigenvalues, fit_eigenvalues, fit_spiked
from ._train import KL_FLOOR, linear_distortion_gain, linear_exact, train_linear, train_nonlinear

__all__ = ["realdata_study", "write_report", "fit_summary"]


def fit_summary(fit: FitResult, pred: dict, M: int) -> dict:
    """The ``symvae fit-data --json`` object."""
    return {"N": fit.N, "n": fit.n, "alpha": fit.alpha, "eta_hat": fit.eta_hat,
            "eta_ci": None if fit.boot is None else [float(v) for v in fit.boot["eta_ci"]],
            "K": fit.K, "spikes": fit.spikes(), "beta_c": pred["beta_c"], "beta_c_inf": pred["beta_c_inf"],
            "detection_alpha": pred["detection_alpha"], "optimal_beta": pred["optimal_beta"], "M": M,
            "bulk_edge": fit.bulk_edge, "spike_edge": fit.spike_edge, "spike_plus_bulk_test": fit.gof,
            "status": "ok" if fit.K > 0 else "no-spikes"}


def _midpoints(values: np.ndarray) -> list[float]:
    return [float(math.sqrt(values[i] * values[i + 1])) for i in range(len(values) - 1)]


def _linear_check(X: np.ndarray, fit: FitResult, M: int, pred: dict, seed: int) -> dict:
    lam = fit.eigenvalues[: M + 1]
    betas = [1.5 * float(lam[0])] + _midpoints(lam) + [0.5 * float(lam[min(M, fit.N) - 1])]
    exact = linear_exact(X, M, betas, eta=fit.eta_hat)
    grad = [train_linear(X, M, b, seed=seed + i) for i, b in enumerate(betas)]
    predicted = active_predicted_with_bulk(fit, pred["beta_c"], betas, M)
    rows = [{"beta": b, "predicted": int(p), "exact": int(e), "gradient": int(g["active"]),
             "gradient_kl": [float(v) for v in np.sort(g["kl"])[::-1]]}
            for b, p, e, g in zip(betas, predicted, exact["active"], grad)]
    ok = all(r["predicted"] == r["exact"] == r["gradient"] for r in rows)
    return {"M": M, "rows": rows, "verdict": "holds" if ok else "fails"}


def _subsample_check(X: np.ndarray, fit: FitResult, M: int, sizes: list[int], repeats: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    K = min(M, fit.K)
    rows = []
    for n_sub in sizes:
        lam_top, rho_fit = [], []
        for _ in range(repeats):
            Xs = subsample(X, n_sub, rng)
            lam = eigenvalues(Xs)
            lam_top.append(lam[:K])
            f = fit_eigenvalues(lam, n_sub, null_draws=0)
            rho_fit.append([f.rho_hat[k] if k < f.K else np.nan for k in range(K)])
        lam_top, rho_fit = np.array(lam_top), np.array(rho_fit)
        th = thresholds(fit, n_sub / fit.N, count=K)
        for k in range(K):
            rows.append({"n": int(n_sub), "alpha": n_sub / fit.N, "k": k + 1,
                         "beta_c_predicted": th["beta_c"][k],
                         "beta_c_measured": float(np.mean(lam_top[:, k])),
                         "beta_c_measured_sd": float(np.std(lam_top[:, k], ddof=1)) if repeats > 1 else 0.0,
                         "rho_hat_subsample": float(np.nanmean(rho_fit[:, k])) if np.any(np.isfinite(rho_fit[:, k]))
                         else None,
                         "detected_fraction": float(np.mean(np.isfinite(rho_fit[:, k])))})
    return rows


def _nonlinear_check(X: np.ndarray, fit: FitResult, M: int, betas: list[float], sizes: list[int], seeds: int,
                     epochs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(X.shape[0])
    n_test = max(2, X.shape[0] // 5)
    X_test_raw, X_train_all = X[perm[:n_test]], X[perm[n_test:]]
    rows = []
    for n_tr in sizes:
        Xtr = subsample(X_train_all, n_tr, rng)
        mean = Xtr.mean(axis=0)
        Xtr, Xte = Xtr - mean, X_test_raw - mean
        alpha = n_tr / fit.N
        K = min(M, fit.K)
        bc = thresholds(fit, alpha, count=K)["beta_c"]
        for b in betas:
            predicted = int(active_predicted(bc, [b], M)[0])
            theory_gain = float(np.sum(0.5 * fit.rho_hat[:K] - spike_observables(fit, b, alpha, K)[:, 2])) \
                if K else 0.0
            lin = train_linear(Xtr, M, b, seed=seed)
            lin_gain = linear_distortion_gain(Xte, lin["W"], lin["W_tilde"], lin["D"])
            for s in range(seeds):
                r = train_nonlinear(Xtr, Xte, M, b, epochs=epochs, seed=seed + 101 * s)
                rows.append({"n_train": int(n_tr), "alpha": alpha, "beta": float(b), "seed": s,
                             "active_predicted": predicted, "active_nonlinear": r["active"],
                             "active_linear": lin["active"], "kl": [float(v) for v in np.sort(r["kl"])[::-1]],
                             "distortion_gain_nonlinear": r["distortion_gain"],
                             "distortion_gain_linear": lin_gain, "distortion_gain_theory": theory_gain,
                             "recon_test": r["recon"]})
    # switch-off beta of unit k: between the largest beta with >= k active units (mean over seeds) and the next
    switch = []
    for n_tr in sizes:
        alpha = n_tr / fit.N
        bc = thresholds(fit, alpha, count=min(M, fit.K))["beta_c"]
        mean_active = [float(np.mean([r["active_nonlinear"] for r in rows if r["n_train"] == n_tr
                                      and r["beta"] == b])) for b in betas]
        for k in range(1, min(M, fit.K) + 1):
            on = [b for b, a in zip(betas, mean_active) if a >= k - 0.5]
            off = [b for b, a in zip(betas, mean_active) if a < k - 0.5]
            lo = max(on) if on else None
            hi = min(b for b in off if lo is None or b > lo) if [b for b in off if lo is None or b > lo] else None
            pred_k = bc[k - 1]
            if (lo is None or lo <= pred_k) and (hi is None or pred_k <= hi):
                verdict = "holds"
            elif lo is not None and pred_k < lo:
                verdict = "fails: unit stays on beyond the prediction"
            else:
                verdict = "fails: unit switches off before the prediction"
            switch.append({"n_train": int(n_tr), "unit": k, "beta_c_predicted": pred_k, "last_on": lo,
                           "first_off": hi, "verdict": verdict})
    return {"rows": rows, "switch_off": switch, "betas": [float(b) for b in betas], "sizes": sizes,
            "epochs": epochs, "seeds": seeds, "kl_floor": KL_FLOOR}


def realdata_study(data: RealData, *, M: int = 4, quick: bool = False, nonlinear: bool = True, seed: int = 0,
                   progress=None) -> dict:
    """Fit, predict and check a dataset (module docstring).

    Arguments:
        data: a prepared dataset (``load_dataset``).

    Other arguments:
        M: latents of the VAEs checked. quick: smaller bootstrap, grids and training (minutes, not tens).
        nonlinear: include the PyTorch MLP VAEs. seed: RNG seed. progress: callable(str) for stage messages.

    Returns:
        The numbers dictionary (``write_report`` writes it as numbers.json).
    """
    say = progress or (lambda msg: None)
    if not isinstance(M, (int, np.integer)) or M < 1 or M > data.N:
        raise InvalidInputError(f"--M must be an integer in [1, N = {data.N}], got {M!r}")
    t0 = time.perf_counter()
    X = data.X
    say("spectrum fit")
    fit = fit_spiked(X, bootstrap_draws=20 if quick else 100, null_draws=30 if quick else 200, seed=seed)
    say("predictions")
    pred = predict(fit, M=M)
    out = {"dataset": data.name, "scale": data.scale, "raw_N": data.raw_N, "dropped_constant": data.raw_N - data.N,
           "fit": fit_summary(fit, pred, M), "predictions": pred}
    if fit.K == 0:
        out["status"] = "no-spikes"
        out["seconds"] = time.perf_counter() - t0
        return out
    K = min(M, fit.K)
    say("linear VAE on the full data (exact solver and gradient training)")
    out["linear"] = _linear_check(X, fit, M, pred, seed)
    say("dataset-size dependence (subsampling n)")
    sizes = sorted({max(3, int(data.n / 2 ** j)) for j in range(4 if quick else 6)}, reverse=True)
    sizes = [s for s in sizes if s >= 3]
    out["subsample"] = _subsample_check(X, fit, M, sizes, 3 if quick else 10, seed)
    say("curves")
    a = fit.alpha
    # from below the weakest modelled spike's BBP threshold (where eg peaks) to beyond the dataset's alpha
    alphas = np.geomspace(0.3 * min(pred["detection_alpha"][:K]), 10 * a, 16 if quick else 40)
    betas_eg = [b for b in (fit.eta_hat, pred["optimal_beta"], 0.5 * pred["beta_c"][0]) if b]
    out["eg_alpha"] = {"alphas": alphas.tolist(), "betas": betas_eg,
                       "eg": eg_alpha_curves(fit, betas_eg, alphas, K).tolist()}
    rd = rd_curves_total(fit, [a / 8, a, math.inf], K, n_beta=12 if quick else 30)
    out["rd"] = {("inf" if math.isinf(k) else repr(k)): {kk: vv.tolist() for kk, vv in v.items()}
                 for k, v in rd.items()}
    if nonlinear:
        say("nonlinear VAEs (PyTorch)")
        bc = pred["beta_c"][:K]
        grid = sorted({*(_midpoints(np.array(bc + [0.6 * bc[-1]]))), 1.5 * bc[0], 0.3 * bc[-1]}, reverse=True)
        grid = [float(b) for b in grid]
        if not quick:
            grid = sorted(set(grid) | {float(b) for b in np.geomspace(0.3 * bc[-1], 1.5 * bc[0], 5)}, reverse=True)
        n_train = X.shape[0] - max(2, X.shape[0] // 5)
        sizes_nl = [n_train, max(3, n_train // 4)]
        out["nonlinear"] = _nonlinear_check(X, fit, M, grid, sizes_nl, 1 if quick else 3, 60 if quick else 150,
                                            seed)
    out["status"] = "ok"
    out["seconds"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------------- the report
def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _plot_spectrum(study: dict, fit_eigs: np.ndarray, path: pathlib.Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ._spectrum import MarchenkoPastur
    f = study["fit"]
    K = f["K"]
    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bulk = fit_eigs[K:]
    law = MarchenkoPastur(f["eta_hat"], (f["N"] - K) / f["n"])
    hi = max(float(bulk.max()) if bulk.size else law.upper, law.upper) * 1.05
    ax.hist(bulk, bins=max(10, min(60, bulk.size // 3)), range=(0, hi), density=True, color="0.75",
            label=f"the {bulk.size} non-spike eigenvalues")
    x = np.linspace(max(law.lower, 1e-9), law.upper, 400)
    ax.plot(x, law.pdf(x) / max(1 - law.atom, 1e-300), "k-", label=rf"fitted MP bulk, $\hat\eta$ = {f['eta_hat']:.3g}")
    ax.axvline(f["spike_edge"], color="C3", ls="--", lw=1, label="spike edge (Tracy-Widom 99%)")
    ax.set_xlabel("eigenvalue of S")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("bulk", fontsize=9)
    idx = np.arange(1, fit_eigs.size + 1)
    pos = fit_eigs > 0
    bx.semilogy(idx[:K], fit_eigs[:K], "C3o", ms=4, label=f"{K} spikes")
    bx.semilogy(idx[K:][pos[K:]], fit_eigs[K:][pos[K:]], "o", color="0.5", ms=3, label="bulk")
    bx.axhline(f["spike_edge"], color="C3", ls="--", lw=1, label="spike edge")
    bx.axhspan(law.lower, law.upper, color="k", alpha=0.1, label="MP support")
    bx.set_xlabel("rank k")
    bx.set_ylabel("eigenvalue (log scale)")
    bx.legend(fontsize=8)
    bx.set_title("whole spectrum (units: mean per-coordinate variance)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def _plot_active(study: dict, path: pathlib.Path) -> None:
    fig, ax = _figure()
    lin = study["linear"]["rows"]
    bc = np.array(study["predictions"]["beta_c"])
    M = study["linear"]["M"]
    b = np.geomspace(min(r["beta"] for r in lin) / 1.2, max(r["beta"] for r in lin) * 1.2, 400)
    ax.step(b, active_predicted(bc, b, M), "k-", where="post", label=r"predicted: #$\{k: \beta < \beta_{c,k}\}$")
    if study["fit"]["K"] < M:
        ax.text(0.02, 0.02, "below the bulk edge the bulk adds latents (see the table)", transform=ax.transAxes,
                fontsize=7)
    ax.plot([r["beta"] for r in lin], [r["exact"] for r in lin], "s", mfc="none", ms=9, label="linear, exact solver")
    ax.plot([r["beta"] for r in lin], [r["gradient"] for r in lin], "x", ms=7, label="linear, gradient training")
    if "nonlinear" in study:
        for n_tr in study["nonlinear"]["sizes"]:
            rows = [r for r in study["nonlinear"]["rows"] if r["n_train"] == n_tr]
            betas = sorted({r["beta"] for r in rows})
            mean = [np.mean([r["active_nonlinear"] for r in rows if r["beta"] == bb]) for bb in betas]
            ax.plot(betas, mean, "o-", ms=4, lw=0.8, label=f"MLP VAE, n_train = {n_tr}")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("active latents")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def _plot_rd(study: dict, path: pathlib.Path) -> None:
    fig, ax = _figure()
    for key, c in study["rd"].items():
        label = r"$\alpha\to\infty$" if key == "inf" else rf"$\alpha$ = {float(key):.3g}"
        ax.plot(c["rate"], c["distortion"], "--" if key == "inf" else "-", label=label)
    ax.set_xlabel("rate R (nats, summed over latents)")
    ax.set_ylabel("distortion D (noise floor removed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _plot_eg(study: dict, path: pathlib.Path) -> None:
    fig, ax = _figure()
    e = study["eg_alpha"]
    for b, row in zip(e["betas"], e["eg"]):
        ax.plot(e["alphas"], row, label=rf"$\beta$ = {b:.3g}")
    ax.axvline(study["fit"]["alpha"], color="k", ls=":", lw=1, label=r"dataset $\alpha$")
    for a_c in study["predictions"]["detection_alpha"][:study["linear"]["M"]]:
        ax.axvline(a_c, color="C3", ls="--", lw=0.6)
    ax.plot([], [], "C3--", lw=0.6, label=r"BBP $\alpha_{c,k}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha = n/N$")
    ax.set_ylabel(r"$\varepsilon_g$ (summed over latents)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _plot_subsample(study: dict, path: pathlib.Path) -> None:
    fig, ax = _figure()
    rows = study["subsample"]
    for k in sorted({r["k"] for r in rows}):
        rk = [r for r in rows if r["k"] == k]
        line, = ax.plot([r["alpha"] for r in rk], [r["beta_c_predicted"] for r in rk], "-", label=f"k = {k}")
        ax.errorbar([r["alpha"] for r in rk], [r["beta_c_measured"] for r in rk],
                    yerr=[r["beta_c_measured_sd"] for r in rk], fmt="o", ms=3, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel(r"$\alpha = n/N$ (subsampled)")
    ax.set_ylabel(r"$\beta_{c,k}$: predicted (lines), linear VAE on subsamples (dots)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_report(study: dict, eigs: np.ndarray, out: pathlib.Path) -> list[pathlib.Path]:
    """Write numbers.json, CSVs, figures and report.md of a study into ``out`` (created if missing).

    Returns:
        The files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = []
    p = out / "numbers.json"
    p.write_text(json.dumps(_jsonable(study), indent=1))
    files.append(p)
    f = study["fit"]
    _write_csv(out / "spectrum.csv", [{"index": i + 1, "eigenvalue": float(v), "spike": i < f["K"]}
                                      for i, v in enumerate(eigs)])
    _write_csv(out / "spikes.csv", [{"k": k + 1, **s, "beta_c": f["beta_c"][k],
                                     "beta_c_inf": f["beta_c_inf"][k] if k < len(f["beta_c_inf"]) else None,
                                     "detection_alpha": f["detection_alpha"][k]} for k, s in enumerate(f["spikes"])])
    files += [out / "spectrum.csv", out / "spikes.csv"]
    _plot_spectrum(study, eigs, out / "spectrum.png")
    files.append(out / "spectrum.png")
    if study.get("status") == "ok":
        _write_csv(out / "linear_active.csv", study["linear"]["rows"])
        _write_csv(out / "subsample.csv", study["subsample"])
        rd_rows = [{"alpha": k, "beta": b, "rate": r, "distortion": d} for k, c in study["rd"].items()
                   for b, r, d in zip(c["beta"], c["rate"], c["distortion"])]
        _write_csv(out / "rd.csv", rd_rows)
        e = study["eg_alpha"]
        _write_csv(out / "eg_alpha.csv", [{"beta": b, "alpha": a, "eg": v} for b, row in zip(e["betas"], e["eg"])
                                          for a, v in zip(e["alphas"], row)])
        files += [out / n for n in ("linear_active.csv", "subsample.csv", "rd.csv", "eg_alpha.csv")]
        for name, fn in (("active.png", _plot_active), ("rd.png", _plot_rd), ("eg_alpha.png", _plot_eg),
                         ("subsample.png", _plot_subsample)):
            fn(study, out / name)
            files.append(out / name)
        if "nonlinear" in study:
            _write_csv(out / "nonlinear.csv", study["nonlinear"]["rows"])
            _write_csv(out / "switch_off.csv", study["nonlinear"]["switch_off"])
            files += [out / "nonlinear.csv", out / "switch_off.csv"]
    (out / "report.md").write_text(_markdown(study))
    files.append(out / "report.md")
    return files


def _fmt(v, digits=4):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _markdown(s: dict) -> str:
    f = s["fit"]
    g = f["spike_plus_bulk_test"]
    L = [f"# Real data: {s['dataset']}", "",
         f"n = {f['n']} samples, N = {f['N']} coordinates (of {s['raw_N']}; {s['dropped_constant']} constant ones "
         f"dropped), alpha = n/N = {f['alpha']:.4g}. The data are centred and divided by {s['scale']:.4g}, so that "
         "the mean per-coordinate variance is 1: eta and rho are in those units (covariance rho W*W*^T/N + eta I).",
         "", "## Spectrum and spiked-model fit", "", "![spectrum](spectrum.png)", "",
         f"- bulk level eta_hat = {f['eta_hat']:.4g}"
         + (f" (95% interval {_fmt(f['eta_ci'][0])} to {_fmt(f['eta_ci'][1])})" if f["eta_ci"] else "")
         + f"; MP bulk edge {f['bulk_edge']:.4g}; spike edge (Tracy-Widom 99%) {f['spike_edge']:.4g}",
         f"- {f['K']} spikes above the edge (spikes.csv)",
         f"- spike-plus-bulk test: KS distance of the bulk to the fitted MP law {g['ks']:.3g} "
         f"(median under the fitted model {_fmt(g['null_ks_median'], 3)}, p = {_fmt(g['p_value'], 3)}); mean "
         f"squared deviation of the bulk from eta_hat / MP variance = {g['bulk_variance_ratio']:.3g}; "
         f"refitting eta on the bulk alone gives {g['refit_eta']:.3g} and {g['refit_K']} spikes "
         f"(self-consistent: {g['self_consistent']}). "
         + ("**The data are consistent with spikes plus a Marchenko-Pastur bulk.**" if g.get("spike_plus_bulk")
            else "**The data are not spikes plus a Marchenko-Pastur bulk**: the theory's inputs are an "
                 "approximation here; see the checks below for what survives."), "",
         "| k | sample eigenvalue | rho_hat | 95% interval | beta_c,k(alpha) | beta_c,k(inf) | alpha_c,k |",
         "|---|---|---|---|---|---|---|"]
    for k, sp_ in enumerate(f["spikes"][:12]):
        ci = sp_.get("rho_ci")
        L.append(f"| {k + 1} | {sp_['sample_eigenvalue']:.4g} | {_fmt(sp_['rho_hat'])} | "
                 f"{'-' if not ci else _fmt(ci[0]) + ' to ' + _fmt(ci[1])} | {f['beta_c'][k]:.4g} | "
                 f"{_fmt(f['beta_c_inf'][k]) if k < len(f['beta_c_inf']) else '-'} | {f['detection_alpha'][k]:.3g} |")
    if f["K"] > 12:
        L.append(f"| ... | ({f['K'] - 12} more in spikes.csv) | | | | | |")
    L += ["", f"Optimal beta for a VAE with M = {f['M']} latents (minimum of the summed eg): "
          f"{_fmt(f['optimal_beta'])} (eta_hat = {f['eta_hat']:.4g}).", ""]
    if s.get("status") != "ok":
        L.append("No spike above the edge: nothing to predict.")
        return "\n".join(L) + "\n"
    lin = s["linear"]
    L += ["## Linear VAE on the data: active latents vs beta", "", "![active](active.png)", "",
          f"M = {lin['M']} latents, lam = 0, at the dataset's alpha. Predicted count #{{k: beta < beta_c,k}} plus "
          "the latents the fitted MP bulk puts above beta (overlearning), at most M; "
          "exact finite-N minimiser (symvae.statics.erm_exact) and L-BFGS training of the literal loss (PyTorch "
          f"autograd), a latent active when its KL > {KL_FLOOR} nats. Verdict: **{lin['verdict']}**.", "",
          "| beta | predicted | exact | gradient |", "|---|---|---|---|"]
    for r in lin["rows"]:
        L.append(f"| {r['beta']:.4g} | {r['predicted']} | {r['exact']} | {r['gradient']} |")
    L += ["", "## Dataset-size dependence", "", "![subsample](subsample.png)", "",
          "Collapse thresholds predicted at alpha = n/N from the full-data fit (lines) against the linear VAE's "
          "thresholds on random subsamples of n rows (the top eigenvalues of their S; mean and sd; at the full n the "
          "two coincide by construction, the fit having inverted those eigenvalues). "
          "subsample.csv also has rho_hat refitted on each subsample (the BBP inversion should give the same rho "
          "at every n if the spiked model holds).", "",
          "| n | alpha | k | predicted | measured | sd | rho_hat (subsample) |", "|---|---|---|---|---|---|---|"]
    for r in s["subsample"]:
        if r["k"] <= 3:
            L.append(f"| {r['n']} | {r['alpha']:.3g} | {r['k']} | {r['beta_c_predicted']:.4g} | "
                     f"{r['beta_c_measured']:.4g} | {r['beta_c_measured_sd']:.2g} | {_fmt(r['rho_hat_subsample'])} |")
    L += ["", "## Rate-distortion and generalisation error", "", "![rd](rd.png)", "", "![eg](eg_alpha.png)", ""]
    if "nonlinear" in s:
        nl = s["nonlinear"]
        L += ["## Nonlinear VAE (MLP encoder/decoder, PyTorch)", "",
              f"One tanh hidden layer of 64 units each way, Gaussian decoder of unit variance, Adam, {nl['epochs']} "
              f"epochs, {nl['seeds']} seed(s) per point; 20% of the rows held out for testing. Active: mean KL on "
              f"the test rows > {nl['kl_floor']} nats. Distortion gain = 1/2 E||x||^2 - 1/2 E||x - dec(z)||^2 on "
              "the test rows (z ~ q(z|x)); theory: the linear prediction sum_k (rho_k/2 - D_k).", "",
              "| n_train | beta | active: predicted | linear | MLP | gain: theory | linear | MLP |",
              "|---|---|---|---|---|---|---|---|"]
        for r in nl["rows"]:
            L.append(f"| {r['n_train']} | {r['beta']:.4g} | {r['active_predicted']} | {r['active_linear']} | "
                     f"{r['active_nonlinear']} | {r['distortion_gain_theory']:.3g} | "
                     f"{r['distortion_gain_linear']:.3g} | {r['distortion_gain_nonlinear']:.3g} |")
        L += ["", "Switch-off beta of unit k (bracketed by the beta grid) against the predicted beta_c,k:", "",
              "| n_train | unit | predicted | last on | first off | verdict |", "|---|---|---|---|---|---|"]
        for r in nl["switch_off"]:
            L.append(f"| {r['n_train']} | {r['unit']} | {r['beta_c_predicted']:.4g} | {_fmt(r['last_on'])} | "
                     f"{_fmt(r['first_off'])} | {r['verdict']} |")
        held = sum(r["verdict"] == "holds" for r in nl["switch_off"])
        L += ["", f"The linear prediction of the switch-off beta holds for {held} of {len(nl['switch_off'])} "
              "units; where it fails the verdict says in which direction."]
    L += ["", f"({s['seconds']:.0f} s)"]
    return "\n".join(L) + "\n"
