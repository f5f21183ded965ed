"""Finite-N ground truth for the statics: the global minimiser of the literal loss on n = alpha N samples.

Two independent solvers of  L(W, W~, D) = sum_mu l(x^mu) + N reg  (l and reg from the model's ``loss_parts``):

(a) ``erm_exact``: through the eigendecomposition of the sample covariance S = X^T X / n. Each latent sits on one of
    the top eigenvectors of S (``derive_spectral``), with the exact per-latent scalar problem at the sample eigenvalue
    and per-sample weight decay lam/alpha -- exact at every N, no asymptotics.
(b) ``erm_gradient``: L-BFGS on (W, W~, log D [, log sigma^2]) of the literal loss, from random starts. The loss and
    its gradient are generated from the per-sample loss: l is quadratic in the local fields h = V^T x/sqrt(N)
    (V = [W, W~^T]), l = c0 + 1/2 h^T A h with c0, A functions of the overlaps, D, sigma^2 and ||x||^2, so the sample
    sum needs only V^T S V; derivatives with respect to the overlaps and to V^T S V / N come from SymPy.

Both report the order parameters against the planted W* (W*^T W*/N = I), the training loss per sample with the noise
floor removed ((L - sum_mu ||x^mu||^2/2)/n + sum_k rho_k/2, the convention of the replica free energy) and the
population observables of the weights found.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Mapping, Sequence

import mpmath
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
import sympy as sp

from ..errors import DerivationError, InvalidInputError
from ..model import Model, SymbolTable
from ._params import check_alpha, check_params
from ._spectral import _functions, classify_phase

__all__ = ["Dataset", "sample_dataset", "ErmResult", "erm_exact", "erm_gradient", "order_parameters",
           "literal_loss", "finite_size_study", "fit_finite_size"]


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """n = alpha N samples of the spiked covariance model.

    Attributes:
        X: samples as rows (n x N). W_star: planted directions (N x M*), W*^T W*/N = I. rhos, eta: the data model.
    """

    X: np.ndarray
    W_star: np.ndarray
    rhos: tuple[float, ...]
    eta: float

    @property
    def N(self) -> int:
        return self.X.shape[1]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def alpha(self) -> float:
        return self.n / self.N

    @functools.cached_property
    def S(self) -> np.ndarray:
        """Sample covariance X^T X / n (dense)."""
        return self.X.T @ self.X / self.n


def sample_dataset(model: Model, params: Mapping[str, float], N: int, alpha: float, *, seed=None) -> Dataset:
    """Draw n = round(alpha N) samples x = sum_k sqrt(rho_k/N) W*_k c_k + sqrt(eta) z with an orthonormal W* (times
    sqrt(N)), c ~ N(0, I_M*), z ~ N(0, I_N).

    Raises:
        InvalidInputError: N < 2, alpha <= 0, fewer than 2 samples, or invalid parameters.
    """
    alpha = check_alpha(alpha)
    if not isinstance(N, (int, np.integer)) or N < 2:
        raise InvalidInputError(f"N must be an integer >= 2, got {N!r}")
    n = int(round(alpha * N))
    if n < 2:
        raise InvalidInputError(f"alpha N = {alpha * N:g} gives fewer than 2 samples")
    T = SymbolTable(model)
    pv = check_params(params, [r.name for r in T.rho] + ["eta"])
    rhos = tuple(pv[r.name] for r in T.rho)
    rng = np.random.default_rng(seed)
    W_star = np.linalg.qr(rng.normal(size=(N, T.M_star)))[0] * math.sqrt(N)
    c = rng.normal(size=(n, T.M_star))
    X = (c * np.sqrt(np.array(rhos) / N)) @ W_star.T + math.sqrt(pv["eta"]) * rng.normal(size=(n, N))
    return Dataset(X=X, W_star=W_star, rhos=rhos, eta=pv["eta"])


@dataclasses.dataclass(frozen=True, eq=False)
class ErmResult:
    """A finite-N minimiser.

    Attributes:
        W (N x M), W_tilde (M x N), D (M), sigma2 (learned decoder variance, else None): the weights.
        order: order parameters m, m_tilde, Q, Q_tilde, R, D. observables: eg, rate, distortion, neg_elbo.
        train_loss: training loss per sample (noise floor removed). phase: as ``classify_phase``, a latent counting as
        learning when its signal fraction sum_j m_kj^2 / Q_kk exceeds 1/sqrt(N) (finite-N phases are fuzzy near the
        BBP threshold). eigenvalues: the top sample eigenvalues (exact solver). info: solver details.
    """

    W: np.ndarray
    W_tilde: np.ndarray
    D: np.ndarray
    sigma2: float | None
    order: Mapping[str, np.ndarray]
    observables: Mapping[str, float]
    train_loss: float
    phase: str
    eigenvalues: np.ndarray | None
    info: Mapping[str, object]


def order_parameters(W: np.ndarray, W_tilde: np.ndarray, D: np.ndarray, W_star: np.ndarray) -> dict[str, np.ndarray]:
    """m = W^T W*/N, m_tilde = W~ W*/N, Q = W^T W/N, Q_tilde = W~ W~^T/N, R = W^T W~^T/N and D."""
    N = W.shape[0]
    return {"m": W.T @ W_star / N, "m_tilde": W_tilde @ W_star / N, "Q": W.T @ W / N,
            "Q_tilde": W_tilde @ W_tilde.T / N, "R": W.T @ W_tilde.T / N, "D": np.asarray(D, dtype=float)}


def _observables(model: Model, order: Mapping[str, np.ndarray], pv: Mapping[str, float]) -> dict[str, float]:
    fns = _functions(model)
    _, _, obs = fns.backend(mpmath.fp)
    T = fns.table
    values = {}
    for name in ("m", "m_tilde", "Q", "Q_tilde", "R"):
        mat = getattr(T, name)
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                if isinstance(mat[i, j], sp.Symbol):
                    values.setdefault(mat[i, j], float(order[name][i, j]))
    for k, s in enumerate(T.D):
        values[s] = float(order["D"][k])
    out = obs([values[s] for s in fns.order_syms], [float(pv[s.name]) for s in fns.obs_params])
    return {k: float(v) for k, v in zip(fns.obs_names, out)}


def _phase(order, N: int) -> str:
    q = np.diag(order["Q"])
    signal = np.sum(order["m"] ** 2, axis=1) / np.maximum(q, 1e-300)
    # at finite N a noise eigenvector keeps a small random overlap with the spike (larger near the BBP threshold):
    # the phase is fuzzy there; count a latent as learning when its signal fraction m^2/Q exceeds 1/sqrt(N)
    return classify_phase(list(q), list(signal - 1.0 / math.sqrt(N)), tol=1e-12)[0]


def _top_eigenpairs(data: Dataset, k: int) -> tuple[np.ndarray, np.ndarray]:
    N = data.N
    if N <= 600:
        w, V = scipy.linalg.eigh(data.S, subset_by_index=[N - k, N - 1])
    else:
        X, n = data.X, data.n
        op = scipy.sparse.linalg.LinearOperator((N, N), matvec=lambda v: X.T @ (X @ v) / n, dtype=float)
        w, V = scipy.sparse.linalg.eigsh(op, k=k, which="LA", tol=1e-13, ncv=max(2 * k + 1, 40))
    order = np.argsort(w)[::-1]
    return w[order], V[:, order]


def erm_exact(model: Model, params: Mapping[str, float], data: Dataset) -> ErmResult:
    """Exact finite-N global minimiser through the top eigenpairs of S (solver (a), module docstring).

    Arguments:
        model: the model. params: parameter values (``statics_param_names(model)``). data: the samples.

    Returns:
        An ``ErmResult``.
    """
    fns = _functions(model)
    pv = check_params(params, fns.param_names)
    T = fns.table
    M, N = T.M, data.N
    lat, const_fn, _ = fns.backend(mpmath.fp)
    spec_vals = [pv[s.name] / (data.alpha if s.name in fns.decay else 1.0) for s in fns.spec_params]
    from ._spectral import _latent_minimum
    evals, evecs = _top_eigenpairs(data, M)
    identical = model.vae.encoder_variance == "learned"
    perms = [tuple(range(M))] if identical else list(itertools.permutations(range(M)))
    best = None
    for perm in perms:
        sols = [_latent_minimum(lat[k], float(evals[perm[k]]), spec_vals, mpmath.fp) for k in range(M)]
        total = sum(g for _, g in sols)
        if best is None or total < best[0]:
            best = (total, perm, sols)
    total, perm, sols = best
    W = np.zeros((N, M))
    Wt = np.zeros((M, N))
    D = np.zeros(M)
    for k in range(M):
        q, _ = sols[k]
        v = evecs[:, perm[k]]
        j = int(np.argmax(np.abs(data.W_star.T @ v)))
        v = v if data.W_star[:, j] @ v >= 0 else -v
        u = math.sqrt(max(float(q), 0.0))
        ut = u if lat[k]["ut"] is None else lat[k]["ut"](u, float(evals[perm[k]]), *spec_vals)
        W[:, k] = math.sqrt(N) * u * v
        Wt[k] = math.sqrt(N) * ut * v
        D[k] = lat[k]["D"](q, float(evals[perm[k]]), *spec_vals) if lat[k]["D"] is not None else pv[lat[k]["D_symbol"]]
    order = order_parameters(W, Wt, D, data.W_star)
    sigma2 = pv["eta"] if model.vae.decoder_variance == "learned" else None
    return ErmResult(W=W, W_tilde=Wt, D=D, sigma2=sigma2, order=order, observables=_observables(model, order, pv),
                     train_loss=float(const_fn(*spec_vals) + total), phase=_phase(order, N), eigenvalues=evals,
                     info={"solver": "eigendecomposition", "assignment": perm})


def _half_N_log_eta(data: Dataset) -> float:
    return data.N / 2 * math.log(data.eta)


class LiteralLoss:
    """The literal training loss of a model on a dataset and its gradient (solver (b), module docstring).

    Call ``value_and_grad(theta)`` with the flat parameter vector (W, W~ unless tied, log D if learned, log sigma^2
    if learned). The value is the per-sample loss with the noise floor removed (``ErmResult.train_loss``).
    """

    def __init__(self, model: Model, params: Mapping[str, float], data: Dataset):
        fns = _functions(model)
        self.pv = check_params(params, fns.param_names)
        self.model, self.data = model, data
        T = SymbolTable(model)
        self.T = T
        parts = T.loss_parts
        vae = model.vae
        loss = parts["recon_sq"] / T.sigma2 + vae.beta_expr * parts["kl"]
        self.learned_sigma2 = vae.decoder_variance == "learned"
        self.learned_D = vae.encoder_variance == "learned"
        vectors = list(dict.fromkeys(T.canonical(v) for v in T.trainable))
        self.vectors = vectors
        fields = [T.field(v) for v in vectors]
        P = len(fields)
        self.P = P
        zero = {f: 0 for f in fields}
        if any(sp.diff(loss, f).xreplace(zero) != 0 for f in fields):
            raise DerivationError("the per-sample loss has a term linear in the local fields")
        A = sp.hessian(loss, fields)
        c0 = loss.xreplace(zero)
        C = sp.Matrix(P, P, lambda i, j: sp.Symbol(f"C_{min(i, j)}_{max(i, j)}", real=True))
        xbar = sp.Symbol("xbar", positive=True)
        mean_loss = c0.xreplace({T.x_sq: xbar}) + sp.Rational(1, 2) * (A * C).trace()
        if self.learned_sigma2:
            mean_loss += T.N / 2 * sp.log(T.sigma2)
        overlaps = [s for s in T.overlap_pairs if T.overlap_pairs[s][0].family != "W_star"
                    and T.overlap_pairs[s][1].family != "W_star"]
        self.overlaps = [(s, vectors.index(T.canonical(T.overlap_pairs[s][0])),
                          vectors.index(T.canonical(T.overlap_pairs[s][1]))) for s in overlaps]
        c_syms = sorted({C[i, j] for i in range(P) for j in range(P)}, key=lambda s: s.name)
        self.c_index = [(int(s.name.split("_")[1]), int(s.name.split("_")[2])) for s in c_syms]
        scalars = list(T.D) if self.learned_D else []
        if self.learned_sigma2:
            scalars.append(T.sigma2)
        self.scalars = scalars
        const = [s for s in (set(mean_loss.free_symbols) | set(parts["reg"].free_symbols))
                 if s not in set(overlaps) | set(c_syms) | set(scalars) | {xbar, T.N}]
        self.const_names = sorted(s.name for s in const)
        args = [list(overlaps), c_syms, scalars, [xbar, T.N], sorted(const, key=lambda s: s.name)]
        reg = parts["reg"]
        total = mean_loss
        exprs = [total, reg] + [sp.diff(total, s) for s in overlaps] + [sp.diff(reg, s) for s in overlaps] \
            + [sp.diff(total, s) for s in c_syms] + [sp.diff(total, s) for s in scalars]
        self._f = sp.lambdify(args, exprs, modules="numpy")
        self.M = T.M
        self.tied = T.tied
        self.const_values = [self.pv[name] for name in self.const_names]
        self.trS = float(np.trace(data.S)) if data.N <= 4000 else float(np.sum(data.X ** 2) / data.n)
        self.sum_rho = float(sum(data.rhos))
        # noise floor: ||x||^2/(2 sigma^2) -> (tr S - sum rho)/(2 sigma^2) removed (and N/2 log eta for a learned
        # sigma^2, whose O(1) problem is the one at sigma^2 = eta)
        s2 = data.eta if self.learned_sigma2 else (self.pv["sigma2"] if vae.decoder_variance == "fixed" else 1.0)
        self.floor = -(self.trS - self.sum_rho) / (2 * s2) - (_half_N_log_eta(data) if self.learned_sigma2 else 0.0)

    # ------------------------------------------------------------------ packing
    def split(self, theta: np.ndarray):
        N, M = self.data.N, self.M
        W = theta[:N * M].reshape(N, M)
        pos = N * M
        if self.tied:
            Wt = W.T
        else:
            Wt = theta[pos:pos + N * M].reshape(M, N)
            pos += N * M
        D = np.exp(theta[pos:pos + M]) if self.learned_D else np.array([self.pv[d.name] for d in self.T.D])
        pos += M if self.learned_D else 0
        sigma2 = float(np.exp(theta[pos])) if self.learned_sigma2 else None
        return W, Wt, D, sigma2

    def join(self, W, Wt, D=None, sigma2=None) -> np.ndarray:
        parts = [np.ravel(W)] + ([] if self.tied else [np.ravel(Wt)])
        if self.learned_D:
            parts.append(np.log(np.asarray(D, dtype=float)))
        if self.learned_sigma2:
            parts.append([math.log(sigma2)])
        return np.concatenate(parts)

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        data = self.data
        N, alpha = data.N, data.alpha
        W, Wt, D, sigma2 = self.split(theta)
        V = np.concatenate([W, Wt.T], axis=1) if not self.tied else W
        SV = data.S @ V
        G = V.T @ V / N
        C = V.T @ SV / N
        ov = [G[a, b] for _, a, b in self.overlaps]
        cv = [C[i, j] for i, j in self.c_index]
        sv = list(D) if self.learned_D else []
        if self.learned_sigma2:
            sv.append(sigma2)
        out = self._f(ov, cv, sv, [self.trS, N], self.const_values)
        k = len(self.overlaps)
        value = out[0] + out[1] / alpha
        d_ov = [out[2 + i] + out[2 + k + i] / alpha for i in range(k)]
        d_c = out[2 + 2 * k:2 + 2 * k + len(self.c_index)]
        d_s = out[2 + 2 * k + len(self.c_index):]
        gV = np.zeros_like(V)
        for (_, a, b), g in zip(self.overlaps, d_ov):  # O_ab = V_a . V_b / N
            gV[:, a] += g * V[:, b] / N
            gV[:, b] += g * V[:, a] / N
        Gc = np.zeros((self.P, self.P))
        for (i, j), g in zip(self.c_index, d_c):  # C_ij = V_i^T S V_j / N (one symbol for ij and ji)
            Gc[i, j] += g if i == j else g / 2
            if i != j:
                Gc[j, i] += g / 2
        gV += 2 * SV @ Gc / N
        grads = [np.ravel(gV[:, :self.M])]
        if not self.tied:
            grads.append(np.ravel(gV[:, self.M:].T))
        if self.learned_D:
            grads.append(np.asarray(d_s[:self.M]) * D)
        if self.learned_sigma2:
            grads.append([d_s[-1] * sigma2])
        return float(value + self.floor), np.concatenate(grads)


def literal_loss(model: Model, params: Mapping[str, float], data: Dataset) -> LiteralLoss:
    """The literal per-sample training loss (noise floor removed) of ``model`` on ``data``, with its gradient."""
    return LiteralLoss(model, params, data)


def erm_gradient(model: Model, params: Mapping[str, float], data: Dataset, *, starts: int = 3, seed=None,
                 maxiter: int = 20000, gtol: float = 1e-10) -> ErmResult:
    """Finite-N minimiser by L-BFGS on the literal loss from random starts (solver (b), module docstring).

    Arguments:
        model, params, data: as ``erm_exact``.

    Other arguments:
        starts: random initialisations (W, W~ entries N(0, 1), D = 1); the lowest final loss is kept.
        seed: RNG seed. maxiter, gtol: L-BFGS budget and projected-gradient tolerance (on N times the loss).

    Returns:
        An ``ErmResult`` (``info`` has the loss of every start and the iteration counts).
    """
    L = LiteralLoss(model, params, data)
    rng = np.random.default_rng(seed)
    N, M = data.N, L.M
    best = None
    runs = []
    for _ in range(starts):
        W0 = rng.normal(size=(N, M))
        Wt0 = rng.normal(size=(M, N))
        theta0 = L.join(W0, Wt0, np.ones(M), data.eta if L.learned_sigma2 else None)

        def fun(theta):
            v, g = L.value_and_grad(theta)
            return v * N, g * N

        res = scipy.optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                                      options={"maxiter": maxiter, "maxfun": 2 * maxiter, "gtol": gtol,
                                               "ftol": 1e-15, "maxcor": 30})
        runs.append({"loss": float(res.fun / N), "nit": int(res.nit), "message": str(res.message)})
        if best is None or res.fun < best.fun:
            best = res
    W, Wt, D, sigma2 = L.split(best.x)
    order = order_parameters(W, Wt, D, data.W_star)
    return ErmResult(W=W, W_tilde=Wt, D=D, sigma2=sigma2, order=order, observables=_observables(model, order, L.pv),
                     train_loss=float(best.fun / N), phase=_phase(order, N), eigenvalues=None,
                     info={"solver": "L-BFGS", "runs": runs})


def fit_finite_size(Ns: Sequence[float], values: Sequence[float], *, exponent: float | None = 1.0):
    """Least-squares fit values(N) = a + b N^-p (p fixed to ``exponent``, or fitted if None).

    Returns:
        {"limit": a, "amplitude": b, "exponent": p, "residual": rms of the fit}.
    """
    Ns = np.asarray(Ns, dtype=float)
    y = np.asarray(values, dtype=float)

    def linear(p):
        A = np.stack([np.ones_like(Ns), Ns ** (-p)], axis=1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return coef, float(np.sqrt(np.mean((A @ coef - y) ** 2)))

    if exponent is None:
        opt = scipy.optimize.minimize_scalar(lambda p: linear(p)[1], bounds=(0.2, 2.0), method="bounded")
        p = float(opt.x)
    else:
        p = float(exponent)
    coef, rms = linear(p)
    return {"limit": float(coef[0]), "amplitude": float(coef[1]), "exponent": p, "residual": rms}


def finite_size_study(model: Model, params: Mapping[str, float], alpha: float, Ns: Sequence[int], *,
                      seeds: int = 8, observable: str = "eg") -> dict[str, object]:
    """Exact finite-N minimisers at growing N (``seeds`` datasets each): mean and standard error of an observable,
    and the fit mean(N) = limit + b / N.

    Returns:
        {"N": [...], "mean": [...], "sem": [...], "fit": fit_finite_size(...)}.
    """
    means, sems = [], []
    for N in Ns:
        vals = []
        for seed in range(seeds):
            data = sample_dataset(model, params, int(N), alpha, seed=1000 * int(N) + seed)
            r = erm_exact(model, params, data)
            vals.append(r.observables[observable] if observable in r.observables else getattr(r, observable))
        means.append(float(np.mean(vals)))
        sems.append(float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else float("nan"))
    return {"N": [int(N) for N in Ns], "mean": means, "sem": sems, "fit": fit_finite_size(Ns, means)}
