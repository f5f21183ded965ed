"""Training VAEs on real data, the ground truth the predictions are checked against.

- ``linear_exact``: the base linear VAE's exact finite-N global minimiser (``symvae.statics.erm_exact``) on the data.
- ``train_linear``: the same loss (the base model of ``symvae.model``, per sample
  l(x) = 1/2 ||x||^2 - x^T W mu/sqrt(N) + 1/2 mu^T Q mu + 1/2 sum_k Q_kk D_k
         + beta/2 sum_k (mu_k^2 + D_k - log D_k - 1),
  mu = W~ x/sqrt(N), Q = W^T W/N, averaged over the samples) minimised by gradient-based L-BFGS in PyTorch
  (autograd, no derivation of ours), from random weights. The sample average of l is quadratic in x, so it is
  evaluated exactly from S = X^T X/n (sum_mu x^T A x / n = tr(A S)), an N x N instead of an n x N product.
- ``train_nonlinear``: a beta-VAE with MLP encoder and decoder (one tanh hidden layer each), Gaussian decoder of unit
  variance (the theory's sigma^2 = 1, so beta is on the theory's scale), reparameterised single-sample ELBO, Adam.

A latent is active when its KL to the prior, averaged over held-out data, exceeds ``KL_FLOOR`` nats.
PyTorch comes with the optional extra ``symvae[real]``; without it these raise ``InvalidInputError``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["KL_FLOOR", "linear_exact", "train_linear", "linear_distortion_gain", "train_nonlinear", "torch_module"]

#: Activity floor on the mean KL of one latent (nats).
KL_FLOOR = 0.01


def torch_module():
    """The torch module, single-threaded, or InvalidInputError naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise InvalidInputError("training VAEs needs PyTorch: pip install 'symvae[real]'") from None
    torch.set_num_threads(1)
    return torch


def linear_exact(X: np.ndarray, M: int, betas: Sequence[float], *, eta: float = 1.0) -> dict:
    """Exact finite-N minimiser of the linear VAE with M latents (lam = 0) on the rows of X at each beta.

    Arguments:
        X: centred samples (n x N). M: latents. betas: KL weights.

    Other arguments:
        eta: the noise level passed to the solver (it only enters the reported observables, not the minimiser).

    Returns:
        {"beta", "q": len(betas) x M (Q_kk), "active": counts (Q_kk > 1e-10 (1 + s_1)), "eigenvalues": top M}.
    """
    from ..model import make_model
    from ..statics import Dataset, erm_exact
    X = np.asarray(X, dtype=float)
    n, N = X.shape
    model = make_model("base", M=M, M_star=1)
    evals, evecs = np.linalg.eigh(X.T @ X / n)
    w_star = evecs[:, -1:] * math.sqrt(N)  # the data have no planted direction; the top eigenvector stands in
    data = Dataset(X=X, W_star=w_star, rhos=(1.0,), eta=float(eta))
    q = np.zeros((len(betas), M))
    for i, b in enumerate(betas):
        r = erm_exact(model, {"rho": 1.0, "eta": float(eta), "lam": 0.0, "beta": float(b)}, data)
        q[i] = np.diag(r.order["Q"])
    tol = 1e-10 * (1 + evals[-1])
    return {"beta": [float(b) for b in betas], "q": q, "active": (q > tol).sum(axis=1),
            "eigenvalues": evals[::-1][:M]}


def train_linear(X: np.ndarray, M: int, beta: float, *, seed: int = 0, max_iter: int = 400) -> dict:
    """The linear VAE's loss (module docstring) on the rows of X minimised with torch L-BFGS.

    Returns:
        {"loss", "q" (Q_kk), "D", "kl" (per latent, mean over the data), "active" (#kl > KL_FLOOR)}.
    """
    torch = torch_module()
    g = torch.Generator().manual_seed(int(seed))
    X = np.asarray(X, dtype=float)
    n, N = X.shape
    S = torch.as_tensor(X.T @ X / n)
    W = torch.randn(N, M, generator=g, dtype=torch.float64).requires_grad_()
    Wt = torch.randn(M, N, generator=g, dtype=torch.float64).requires_grad_()
    logD = torch.zeros(M, dtype=torch.float64, requires_grad=True)
    
    def parts():
        C = Wt @ S @ Wt.T / N  # E[mu mu^T]
        Q = W.T @ W / N
        D = torch.exp(logD)
        recon = (0.5 * torch.trace(S) - torch.trace(W.T @ S @ Wt.T) / N + 0.5 * (Q * C).sum()
                 + 0.5 * (torch.diagonal(Q) * D).sum())
        kl = 0.5 * (torch.diagonal(C) + D - logD - 1)
        return recon, kl, Q, D

    opt = torch.optim.LBFGS([W, Wt, logD], lr=1, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        recon, kl, _, _ = parts()
        loss = recon + beta * kl.sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        recon, kl, Q, D = parts()
        loss = float(recon + beta * kl.sum())
        kl = kl.numpy().copy()
        return {"loss": loss, "q": torch.diagonal(Q).numpy().copy(), "D": D.numpy().copy(), "kl": kl,
                "active": int(np.sum(kl > KL_FLOOR)), "W": W.detach().numpy().copy(),
                "W_tilde": Wt.detach().numpy().copy()}


def linear_distortion_gain(X: np.ndarray, W: np.ndarray, W_tilde: np.ndarray, D: np.ndarray) -> float:
    """1/2 E||x||^2 - 1/2 E_x E_{z ~ q(z|x)} ||x - W z/sqrt(N)||^2 of a linear VAE on the rows of X (exact in z)."""
    X = np.asarray(X, dtype=float)
    N = X.shape[1]
    mu = X @ W_tilde.T / math.sqrt(N)
    Q = W.T @ W / N
    cross = np.mean(np.sum((X @ W) * mu, axis=1)) / math.sqrt(N)
    return float(cross - 0.5 * np.mean(np.sum((mu @ Q) * mu, axis=1)) - 0.5 * np.sum(np.diag(Q) * D))


def train_nonlinear(X_train: np.ndarray, X_test: np.ndarray, M: int, beta: float, *, hidden: int = 64,
                    epochs: int = 150, batch: int = 128, lr: float = 2e-3, seed: int = 0) -> dict:
    """A beta-VAE with MLP encoder/decoder (module docstring) trained with Adam; evaluated on X_test.

    Arguments:
        X_train, X_test: centred samples in the theory's units. M: latents. beta: KL weight.

    Other arguments:
        hidden: width of the hidden layers. epochs, batch, lr: Adam schedule. seed: initialisation and batches.

    Returns:
        {"kl": per-latent mean KL on X_test, "active": #kl > KL_FLOOR, "recon": mean 1/2 ||x - dec(mu(x))||^2 on
        X_test, "distortion": mean 1/2 ||x - dec(z)||^2 with z ~ q(z|x) (8 draws; the theory's distortion before
        its noise floor is removed), "distortion_gain": 1/2 E||x||^2 - distortion (the distortion removed relative
        to the collapsed VAE, comparable with the theory's), "train_loss": final epoch's mean loss}.
    """
    torch = torch_module()
    if not beta > 0:
        raise InvalidInputError(f"beta must be > 0, got {beta}")
    torch.manual_seed(int(seed))
    rng = np.random.default_rng(seed)
    Xtr = torch.as_tensor(np.asarray(X_train, dtype=np.float32))
    Xte = torch.as_tensor(np.asarray(X_test, dtype=np.float32))
    N = Xtr.shape[1]
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(N, hidden), nn.Tanh(), nn.Linear(hidden, 2 * M))
    dec = nn.Sequential(nn.Linear(M, hidden), nn.Tanh(), nn.Linear(hidden, N))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=lr)

    def terms(x, sample: bool):
        h = enc(x)
        mu, logvar = h[:, :M], h[:, M:].clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        recon = 0.5 * ((x - dec(z)) ** 2).sum(1)
        kl = 0.5 * (mu * mu + torch.exp(logvar) - logvar - 1)
        return recon, kl

    n = Xtr.shape[0]
    last = math.nan
    for _ in range(epochs):
        perm = rng.permutation(n)
        total = 0.0
        for s in range(0, n, batch):
            x = Xtr[perm[s:s + batch]]
            recon, kl = terms(x, True)
            loss = (recon + beta * kl.sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
        last = total / n
    with torch.no_grad():
        recon, kl = terms(Xte, False)
        kl_mean = kl.mean(0).numpy().astype(float)
        rec = float(recon.mean())
        sampled = float(np.mean([float(terms(Xte, True)[0].mean()) for _ in range(8)]))
        base = float(0.5 * (Xte * Xte).sum(1).mean())
    return {"kl": kl_mean, "active": int(np.sum(kl_mean > KL_FLOOR)), "recon": rec, "distortion": sampled,
            "distortion_gain": base - sampled, "train_loss": last}
