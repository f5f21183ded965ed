"""The sample-covariance spectrum of a dataset and its spiked-model fit: bulk level eta_hat, spikes rho_hat_k,
bootstrap uncertainties and a test of how spike-plus-bulk the data are.

The fit (``fit_spiked``), for eigenvalues l_1 >= ... >= l_N of S = X^T X / n (centred data, theory units):

1. Bulk level by median matching: if the spikes are few (K << N), the median of all N eigenvalues is that of the
   Marchenko--Pastur law of ratio gamma = N/n and scale eta, i.e. eta times the median of MP(1, gamma);
   eta_hat = median(l) / that median (Gavish & Donoho, IEEE Trans. Inf. Theory 60 (2014) 5040).
2. Spikes: l_k is a spike if it exceeds the 99% Tracy--Widom quantile of the largest eigenvalue of pure noise of
   level eta_hat with n samples in p = N dimensions (Johnstone, Ann. Stat. 29 (2001) 295: centring
   (sqrt(n-1) + sqrt(p))^2, scale (sqrt(n-1) + sqrt(p)) (1/sqrt(n-1) + 1/sqrt(p))^(1/3), TW1 0.99 quantile 2.0234);
   this edge lies above the BBP edge eta (1 + sqrt(gamma))^2, so every spike can be inverted.
3. Spike strengths: invert the BBP map at the dataset's gamma = N/n = 1/alpha, l = eta (1 + ell)(1 + gamma/ell),
   ell = rho/eta > sqrt(gamma): ell = [(l/eta - 1 - gamma) + sqrt((l/eta - 1 - gamma)^2 - 4 gamma)] / 2.

Spike-plus-bulk test (``FitResult.gof``): the Kolmogorov--Smirnov distance between the N - K bulk eigenvalues and
the fitted MP law (ratio gamma_b = (N - K)/n; for N > n the nonzero ones against the law's continuous part), the
ratio of their mean squared deviation from eta_hat to the MP variance eta^2 gamma_b, and
whether the fit is self-consistent (re-matching the median of the N - K bulk eigenvalues alone moves eta_hat by less
than 10% and finds the same K; on a power-law spectrum it runs away, every refit declaring more spikes); the
p-value of the KS distance comes from a parametric bootstrap: Wishart spectra drawn from the fitted spiked model
itself (same n, N, eta_hat, rho_hat) and fitted the same way. A small p-value says the data are not spike-plus-bulk.

Uncertainties (``bootstrap``): half-sample bootstrap. Resampling rows with replacement would duplicate samples and
so inflate the top eigenvalues like a smaller alpha does (biased intervals that missed the truth on synthetic
data); instead each replicate draws n/2 distinct rows, is fitted at its own alpha/2, and the spread of the
replicates gives the interval estimate -+ 1.96 sd.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.linalg
import scipy.stats

from ..errors import InvalidInputError

__all__ = ["MarchenkoPastur", "FitResult", "eigenvalues", "fit_spiked", "fit_eigenvalues", "invert_bbp",
           "tracy_widom_edge", "bootstrap", "TW1_Q99"]

#: 0.99 quantile of the Tracy--Widom law of order 1 (Bejan 2005 tables).
TW1_Q99 = 2.0234


class MarchenkoPastur:
    """The Marchenko--Pastur law of the eigenvalues of S = X^T X / n for white noise of variance eta, ratio
    gamma = N/n: density sqrt((b - x)(x - a)) / (2 pi gamma eta x) on [a, b] = eta (1 -+ sqrt(gamma))^2, plus an
    atom 1 - 1/gamma at 0 when gamma > 1. The CDF is integrated on a cosine grid that removes the square-root edges.
    """

    def __init__(self, eta: float, gamma: float, grid: int = 4001):
        if not eta > 0 or not gamma > 0:
            raise InvalidInputError(f"MP law needs eta > 0 and gamma > 0, got {eta}, {gamma}")
        self.eta, self.gamma = float(eta), float(gamma)
        r = math.sqrt(gamma)
        self.lower, self.upper = eta * (1 - r) ** 2, eta * (1 + r) ** 2
        self.atom = max(0.0, 1.0 - 1.0 / gamma)
        theta = np.linspace(0.0, math.pi, grid)
        x = self.lower + (self.upper - self.lower) * (1 - np.cos(theta)) / 2
        half = (self.upper - self.lower) / 2
        # density sqrt((b-x)(x-a)) / (2 pi gamma eta x); dx = half sin(theta) dtheta; sqrt(...) = half sin(theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(x > 0, (half * np.sin(theta)) ** 2 / (2 * math.pi * gamma * eta * np.maximum(x, 1e-300)), 0.0)
        cum = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2 * np.diff(theta))])
        self._x, self._cum = x, self.atom + cum * ((1 - self.atom) / cum[-1])
        self.normalisation_error = abs(cum[-1] - (1 - self.atom))

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x > self.lower) & (x < self.upper) & (x > 0)
        out = np.zeros_like(x)
        xi = x[inside]
        out[inside] = np.sqrt((self.upper - xi) * (xi - self.lower)) / (2 * math.pi * self.gamma * self.eta * xi)
        return out

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.interp(x, self._x, self._cum, left=self.atom, right=1.0)
        return np.where(x < 0, 0.0, out)

    def ppf(self, p):
        p = np.asarray(p, dtype=float)
        return np.interp(p, self._cum, self._x, left=0.0, right=self.upper)

    @property
    def mean(self) -> float:
        return self.eta

    @property
    def variance(self) -> float:
        return self.eta ** 2 * self.gamma


def eigenvalues(X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Eigenvalues of the sample covariance of the rows of X (re-centred, with optional integer weights from a
    bootstrap), descending."""
    n = X.shape[0]
    if weights is None:
        mu = X.mean(axis=0)
        Y = X - mu
        S = Y.T @ Y / n
    else:
        w = np.asarray(weights, dtype=float)
        mu = w @ X / n
        S = (X.T * w) @ X / n - np.outer(mu, mu)
    return scipy.linalg.eigvalsh(S)[::-1].clip(min=0.0)


def tracy_widom_edge(eta: float, n: int, p: int, q: float = TW1_Q99) -> float:
    """Quantile q (TW1 units) of the largest eigenvalue of S for n samples of p-dimensional noise of level eta
    (Johnstone 2001)."""
    a, b = math.sqrt(max(n - 1, 1)), math.sqrt(max(p, 1))
    mu = (a + b) ** 2
    sigma = (a + b) * (1 / a + 1 / b) ** (1 / 3)
    return eta * (mu + q * sigma) / n


def invert_bbp(sample_eigenvalue: float, eta: float, gamma: float) -> float:
    """rho with eta (1 + ell)(1 + gamma/ell) = the sample eigenvalue, ell = rho/eta > sqrt(gamma); nan if the
    eigenvalue is not above the bulk edge eta (1 + sqrt(gamma))^2."""
    c = sample_eigenvalue / eta - 1 - gamma
    disc = c * c - 4 * gamma
    if c <= 0 or disc < 0:
        return float("nan")
    return eta * (c + math.sqrt(disc)) / 2


def _bulk_eta(lam: np.ndarray, K: int, n: int) -> float:
    bulk = lam[K:]
    N = lam.size
    law = MarchenkoPastur(1.0, (N - K) / n)
    if law.atom > 0:  # N - K > n: the zero eigenvalues carry no scale; median of the continuous part
        nz = bulk[: max(1, min(bulk.size, n - 1))]
        return float(np.median(nz) / law.ppf(law.atom + (1 - law.atom) / 2))
    return float(np.median(bulk) / law.ppf(0.5))


def _edge_count(lam: np.ndarray, eta: float, n: int) -> int:
    """K: the number of eigenvalues above the Tracy--Widom 99% edge of N-dimensional noise (and the BBP edge)."""
    N = lam.size
    edge = max(tracy_widom_edge(eta, n, N), eta * (1 + math.sqrt(N / n)) ** 2)
    return min(int(np.sum(lam > edge)), N - 2)


def _fit_eigs(lam: np.ndarray, n: int) -> tuple[float, int]:
    """(eta_hat, K) by module docstring steps 1-2."""
    eta = _bulk_eta(lam, 0, n)
    return eta, _edge_count(lam, eta, n)


def _refit(lam: np.ndarray, n: int, eta: float, K: int) -> dict:
    eta2 = _bulk_eta(lam, K, n)
    K2 = _edge_count(lam, eta2, n) if eta2 > 0 else lam.size - 2
    return {"refit_eta": eta2, "refit_K": K2,
            "self_consistent": bool(eta2 > 0 and abs(eta2 / eta - 1) < 0.1 and K2 == K)}


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """A spiked-model fit of a spectrum.

    Attributes:
        n, N, alpha: sizes. eigenvalues: the sample spectrum, descending. eta_hat: bulk level. K: number of spikes.
        rho_hat: spike strengths (length K). spike_edge: the Tracy--Widom threshold used. bulk_edge: eta_hat (1 +
        sqrt(gamma))^2. gof: spike-plus-bulk test (module docstring). boot: bootstrap summary or None.
    """

    n: int
    N: int
    eigenvalues: np.ndarray
    eta_hat: float
    K: int
    rho_hat: np.ndarray
    spike_edge: float
    gof: dict
    boot: dict | None = None

    @property
    def alpha(self) -> float:
        return self.n / self.N

    @property
    def gamma(self) -> float:
        return self.N / self.n

    @property
    def bulk_edge(self) -> float:
        return self.eta_hat * (1 + math.sqrt(self.gamma)) ** 2

    def bulk_law(self) -> MarchenkoPastur:
        return MarchenkoPastur(self.eta_hat, (self.N - self.K) / self.n)

    def spikes(self) -> list[dict]:
        """[{"rho_hat", "rho_ci", "sample_eigenvalue", "detected_fraction"}] per spike."""
        out = []
        for k in range(self.K):
            row = {"rho_hat": float(self.rho_hat[k]), "rho_ci": None,
                   "sample_eigenvalue": float(self.eigenvalues[k])}
            if self.boot is not None:
                row["rho_ci"] = [float(v) for v in self.boot["rho_ci"][k]]
                row["detected_fraction"] = float(self.boot["detected_fraction"][k])
            out.append(row)
        return out


def _ks(bulk: np.ndarray, law: MarchenkoPastur) -> float:
    x = np.sort(bulk)
    F = law.cdf(x)
    if law.atom > 0:  # N > n: compare the nonzero eigenvalues with the continuous part (the atom is exact)
        keep = x > 1e-10 * max(float(x[-1]), 1e-300)
        x, F = x[keep], (F[keep] - law.atom) / (1 - law.atom)
    m = x.size
    if m == 0:
        return 0.0
    return float(max(np.max(np.arange(1, m + 1) / m - F), np.max(F - np.arange(m) / m)))


def _gof_stats(lam: np.ndarray, n: int, eta: float, K: int) -> tuple[float, float]:
    bulk = lam[K:]
    law = MarchenkoPastur(eta, (lam.size - K) / n)
    # variance of the whole law, zeros included (mean eta, variance eta^2 gamma also with the atom)
    return _ks(bulk, law), float(np.mean((bulk - eta) ** 2) / law.variance)


def _null_spectrum(eta: float, rhos: np.ndarray, N: int, n: int, rng) -> np.ndarray:
    """Eigenvalues of S for n centred Gaussian samples of the spiked model (diagonal covariance: the spectrum only
    depends on the population eigenvalues). Bartlett's decomposition of Wishart(n - 1) when n - 1 >= N."""
    sd = np.full(N, math.sqrt(eta))
    sd[: rhos.size] = np.sqrt(eta + rhos)
    dof = n - 1  # centring removes one degree of freedom
    if dof >= N:
        A = np.tril(rng.normal(size=(N, N)), -1)
        A[np.diag_indices(N)] = np.sqrt(rng.chisquare(dof - np.arange(N)))
        B = sd[:, None] * A
        s2 = scipy.linalg.eigvalsh(B @ B.T)  # Gram eigenvalues: faster than an SVD, the squares are what we need
    else:
        Z = rng.normal(size=(dof, N)) * sd
        s2 = scipy.linalg.eigvalsh(Z @ Z.T)
    lam = np.zeros(N)
    lam[: s2.size] = np.clip(s2, 0.0, None) / n
    return np.sort(lam)[::-1]


def fit_eigenvalues(lam: np.ndarray, n: int, *, null_draws: int = 100, seed=0) -> FitResult:
    """Spiked-model fit of a given spectrum (descending eigenvalues of S from n samples); module docstring.

    Other arguments:
        null_draws: parametric-bootstrap draws for the p-value of the spike-plus-bulk test (0: no p-value).

    Raises:
        InvalidInputError: fewer than 3 eigenvalues, n < 2, or a zero spectrum.
    """
    lam = np.sort(np.asarray(lam, dtype=float))[::-1]
    N = lam.size
    if N < 3 or n < 2:
        raise InvalidInputError(f"the spectrum fit needs N >= 3 and n >= 2, got N = {N}, n = {n}")
    if not np.all(np.isfinite(lam)) or lam[0] <= 0:
        raise InvalidInputError("the spectrum is zero or not finite")
    eta, K = _fit_eigs(lam, n)
    if not eta > 0:
        raise InvalidInputError("the bulk of the spectrum is zero: no noise level can be fitted")
    gamma = N / n
    rho = np.array([invert_bbp(float(lam[k]), eta, gamma) for k in range(K)])
    ks, var_ratio = _gof_stats(lam, n, eta, K)
    gof = {"ks": ks, "bulk_variance_ratio": var_ratio, **_refit(lam, n, eta, K), "p_value": None,
           "null_draws": int(null_draws), "null_ks_median": None, "spike_plus_bulk": None}
    if null_draws > 0:
        rng = np.random.default_rng(seed)
        null = []
        for _ in range(null_draws):
            sim = _null_spectrum(eta, np.nan_to_num(rho), N, n, rng)
            e_s, K_s = _fit_eigs(sim, n)
            null.append(_gof_stats(sim, n, e_s, K_s)[0])
        null = np.array(null)
        gof["p_value"] = float((1 + np.sum(null >= ks)) / (1 + null_draws))
        gof["null_ks_median"] = float(np.median(null))
        gof["spike_plus_bulk"] = bool(gof["p_value"] >= 0.05 and gof["self_consistent"])
    return FitResult(n=n, N=N, eigenvalues=lam, eta_hat=eta, K=K, rho_hat=rho,
                     spike_edge=max(tracy_widom_edge(eta, n, N), eta * (1 + math.sqrt(gamma)) ** 2), gof=gof)


def bootstrap(X: np.ndarray, fit: FitResult, B: int, *, seed=0, level: float = 0.95) -> dict:
    """Half-sample bootstrap of the fit (module docstring): B replicates of n/2 rows drawn without replacement,
    each fitted at its own alpha/2 (the BBP inversion removes the alpha dependence, so replicates are unbiased
    for rho); by the delete-d jackknife with d = n/2 (Shao & Wu, Ann. Stat. 17 (1989) 1176) the spread of the
    replicates estimates the variance of the full-sample estimate with factor (n - d)/d = 1.

    Returns:
        {"B", "eta": draws, "eta_sd", "eta_ci", "rho": B x K draws (nan where the replicate's eigenvalue is not a
        spike), "rho_sd", "rho_ci": K x 2 (estimate -+ z sd), "detected_fraction": per spike, "K_draws"}.
    """
    if not isinstance(B, (int, np.integer)) or B < 2:
        raise InvalidInputError(f"--bootstrap needs B >= 2 replicates, got {B!r}")
    n, N = X.shape
    half = n // 2
    if half < 3:
        raise InvalidInputError(f"the bootstrap needs n >= 6 samples, got {n}")
    rng = np.random.default_rng(seed)
    etas, rhos, Ks = np.zeros(B), np.full((B, fit.K), np.nan), np.zeros(B, dtype=int)
    gamma = N / half
    for b in range(B):
        rows = rng.choice(n, size=half, replace=False)
        lam = eigenvalues(X[rows])
        e_b, K_b = _fit_eigs(lam, half)
        etas[b], Ks[b] = e_b, K_b
        for k in range(min(fit.K, K_b)):  # spike k detected by the replicate under the same rule
            rhos[b, k] = invert_bbp(float(lam[k]), e_b, gamma)
    z = float(scipy.stats.norm.ppf((1 + level) / 2))
    eta_sd = float(np.std(etas, ddof=1))
    with np.errstate(all="ignore"):
        rho_sd = np.array([np.nanstd(rhos[:, k], ddof=1) if np.sum(np.isfinite(rhos[:, k])) > 1 else np.nan
                           for k in range(fit.K)])
    rho_ci = np.stack([fit.rho_hat - z * rho_sd, fit.rho_hat + z * rho_sd], axis=1) if fit.K else np.zeros((0, 2))
    return {"B": int(B), "eta": etas, "eta_sd": eta_sd, "eta_ci": np.array([fit.eta_hat - z * eta_sd,
                                                                             fit.eta_hat + z * eta_sd]),
            "rho": rhos, "rho_sd": rho_sd, "rho_ci": rho_ci,
            "detected_fraction": np.mean(np.isfinite(rhos), axis=0) if fit.K else np.zeros(0), "K_draws": Ks}


def fit_spiked(X: np.ndarray, *, bootstrap_draws: int = 0, null_draws: int = 100, seed=0) -> FitResult:
    """Spiked-model fit of the rows of X (centred, in theory units), with optional bootstrap uncertainties.

    Arguments:
        X: samples as rows (n x N).

    Other arguments:
        bootstrap_draws: B >= 2 for bootstrap intervals (0: none). null_draws: draws of the spike-plus-bulk test.
        seed: RNG seed of both.

    Returns:
        A ``FitResult``.
    """
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    fit = fit_eigenvalues(eigenvalues(X), n, null_draws=null_draws, seed=seed)
    if bootstrap_draws:
        fit = dataclasses.replace(fit, boot=bootstrap(X, fit, bootstrap_draws, seed=seed + 1))
    return fit
