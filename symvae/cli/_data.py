"""``symvae fit-data`` (a dataset's spectrum -> spiked-model fit -> predicted collapse thresholds) and
``symvae realdata`` (the full study with trained VAEs, written as a report)."""
from __future__ import annotations

import argparse
import pathlib
import sys

from ..errors import InvalidInputError
from ._common import print_json


def _int(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _dataset_options(p) -> None:
    p.add_argument("--dataset", required=True, metavar="digits|PATH",
                   help="'digits' (scikit-learn's 1797 x 64 digits), an IDX file (*-ubyte or *-ubyte.gz, e.g. "
                        "MNIST's train-images-idx3-ubyte.gz) or a .npy/.npz matrix (PATH:KEY picks an array)")
    p.add_argument("--n", type=_int(2), default=None, help="use n samples drawn without replacement")
    p.add_argument("--M", type=_int(1), default=4, help="latents of the VAE predicted for / trained (default 4)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed (subsampling, bootstrap, training)")


def register(sub) -> None:
    p = sub.add_parser("fit-data", help="fit a spiked covariance model to a dataset and predict collapse",
                       description="Sample-covariance spectrum of a dataset (centred, mean per-coordinate variance "
                                   "1) -> Marchenko-Pastur bulk eta_hat, BBP-inverted spikes rho_hat_k -> "
                                   "per-latent collapse thresholds beta_c,k(alpha) and the optimal beta.")
    _dataset_options(p)
    p.add_argument("--bootstrap", type=_int(0), default=0, metavar="B",
                   help="half-sample bootstrap replicates for intervals (0: none; else >= 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_fit_data)

    r = sub.add_parser("realdata", help="real-data study: fit, predictions, trained VAEs, Markdown report",
                       description="Fit a dataset's spectrum, predict per-latent collapse, check against linear "
                                   "VAEs (exact and gradient-trained) and MLP VAEs (PyTorch, symvae[real]); write "
                                   "report.md, figures, CSVs and numbers.json into --out.")
    _dataset_options(r)
    r.add_argument("--out", required=True, help="output folder (created)")
    r.add_argument("--quick", action="store_true", help="smaller bootstrap, grids and training")
    r.add_argument("--linear-only", action="store_true", help="skip the nonlinear (PyTorch) VAEs")
    r.set_defaults(func=run_realdata)


def _load(args):
    from ..data import load_dataset
    if getattr(args, "bootstrap", 0) == 1:
        raise InvalidInputError("--bootstrap needs 0 or at least 2 replicates")
    return load_dataset(args.dataset, n=args.n, seed=args.seed)


def run_fit_data(args) -> int:
    from ..data import fit_spiked, fit_summary, predict
    from ..data._study import _jsonable
    data = _load(args)
    if args.M > data.N:
        raise InvalidInputError(f"--M {args.M} exceeds N = {data.N}")
    fit = fit_spiked(data.X, bootstrap_draws=args.bootstrap, null_draws=100, seed=args.seed)
    pred = predict(fit, M=args.M)
    out = _jsonable(fit_summary(fit, pred, args.M))
    if args.json:
        print_json(out)
    else:
        print(f"{data.name}: n = {fit.n}, N = {fit.N}, alpha = {fit.alpha:.4g}, eta_hat = {fit.eta_hat:.4g}, "
              f"{fit.K} spikes; optimal beta (M = {args.M}) = {pred['optimal_beta']}")
        for k, s in enumerate(out["spikes"][:10]):
            print(f"  spike {k + 1}: eigenvalue {s['sample_eigenvalue']:.4g}  rho_hat {s['rho_hat']:.4g}  "
                  f"beta_c {out['beta_c'][k]:.4g}")
        g = fit.gof
        print(f"  spike-plus-bulk test: KS {g['ks']:.3g}, p = {g['p_value']}, self-consistent {g['self_consistent']}")
    return 0


def run_realdata(args) -> int:
    from ..data import eigenvalues, realdata_study, write_report
    from ._common import check_output_folder, staged_folder

    out = check_output_folder(args.out, "--out")  # the output rule of every verb: checked before any work
    if not args.linear_only:
        from ..data._train import torch_module
        torch_module()  # fail before hours of work if the extra is missing
    data = _load(args)
    study = realdata_study(data, M=args.M, quick=args.quick, nonlinear=not args.linear_only, seed=args.seed,
                           progress=lambda msg: sys.stderr.write(f"[realdata] {msg}\n"))
    with staged_folder(out) as stage:  # an interrupted or failed run leaves no half-written report
        files = write_report(study, eigenvalues(data.X), stage)
    print(f"wrote {len(files)} files to {out} (report.md); status {study['status']}")
    return 1 if study["status"] == "failed" else 0  # "no-spikes" is a finding, not a failure
