"""Repeated runs behind the tolerances of tests/test_data_nonlinear.py: the small MLP VAE on the digits at the test's
configuration, over several seeds; prints the spread of each asserted number and the time per training.

    PYTHONPATH=. python bench/bench_data.py [--seeds 8]
"""
import argparse
import json
import time

import numpy as np

from symvae.data import fit_spiked, load_dataset
from symvae.data import spike_observables, thresholds
from symvae.data import linear_distortion_gain, train_linear, train_nonlinear

# the test's configuration (keep in sync with tests/test_data_nonlinear.py)
M, EPOCHS, HIDDEN, SPLIT_SEED = 4, 40, 64, 0


def split(X, seed=SPLIT_SEED):
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    n_test = X.shape[0] // 5
    tr, te = X[perm[n_test:]], X[perm[:n_test]]
    mean = tr.mean(axis=0)
    return tr - mean, te - mean


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--only", default=None, help="one of between_3_and_4, above_top, below_all")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    d = load_dataset("digits")
    tr, te = split(d.X)
    fit = fit_spiked(tr, null_draws=0)
    lam = fit.eigenvalues
    betas = {"between_3_and_4": float(np.sqrt(lam[2] * lam[3])), "above_top": 1.5 * float(lam[0]),
             "below_all": 0.3 * float(lam[M - 1])}
    if args.only:
        betas = {args.only: betas[args.only]}
    bc = thresholds(fit, count=M)["beta_c"]
    out = {"beta_c": bc, "betas": betas}
    for name, b in betas.items():
        lin = train_linear(tr, M, b, seed=0)
        theory = float(np.sum(0.5 * fit.rho_hat[:M] - spike_observables(fit, b, fit.alpha, M)[:, 2]))
        rows = []
        for s in range(args.seeds):
            t = time.perf_counter()
            r = train_nonlinear(tr, te, M, b, hidden=HIDDEN, epochs=EPOCHS, seed=s)
            rows.append({"active": r["active"], "kl": sorted(r["kl"].tolist(), reverse=True),
                         "gain": r["distortion_gain"], "seconds": time.perf_counter() - t})
        gains = np.array([r["gain"] for r in rows])
        out[name] = {"beta": b, "active": [r["active"] for r in rows],
                     "kl_active_min": min(min(k for k in r["kl"] if k > 0.01) if r["active"] else np.inf
                                          for r in rows),
                     "kl_inactive_max": max(max([k for k in r["kl"] if k <= 0.01], default=0.0) for r in rows),
                     "gain_mean": float(gains.mean()), "gain_sd": float(gains.std(ddof=1)),
                     "gain_min": float(gains.min()), "gain_max": float(gains.max()),
                     "gain_linear_trained": linear_distortion_gain(te, lin["W"], lin["W_tilde"], lin["D"]),
                     "gain_theory": theory, "seconds_mean": float(np.mean([r["seconds"] for r in rows]))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
