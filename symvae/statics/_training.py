"""Training-set rate and distortion of the replica global minimiser.

The replica free energy per sample f(beta, lam, ...) is the minimum over the weights of the training loss per sample,
f = distortion_train + beta rate_train + reg, with the regulariser reg linear in the weight decays (noise floor removed,
the convention of ``StaticsResult.train_loss``). At the saddle point every unknown (order parameters, D, and the
conjugates K, H) makes f stationary, so by the envelope theorem the partial derivatives of the derived free-energy
expression at fixed unknowns are

    rate_train = df/dbeta,     reg = sum_lam lam df/dlam,     distortion_train = f - beta rate_train - reg,

evaluated at the solved saddle. The derivatives are taken by SymPy on the ``free_energy`` observable of the derived
saddle-point system (``derive_statics``) and compiled once per model. ``training_rd`` gives them for a solved point;
``training_rd_curve`` traces them along beta at fixed alpha. The finite-N check is the literal training loss of the
exact minimiser (``erm_exact``) split the same way through its linearity in beta and lam (``erm_training_rd``).
"""
from __future__ import annotations

import math
import weakref
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import InvalidInputError
from ..model import Model

__all__ = ["training_rd", "training_rd_curve", "erm_training_rd"]

_COMPILED: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def _decay_names(names: Sequence[str]) -> list[str]:
    return [n for n in names if n == "lam" or n.startswith("lam_")]


def _derivatives(S):
    """Compiled (f, df/dbeta, [df/dlam...]) of the free-energy observable of a statics system ``S``."""
    hit = _COMPILED.get(S)
    if hit is not None:
        return hit
    system = S.system
    f = system.observables["free_energy"]
    params = {p.name: p for p in system.params}
    if "beta" not in params:
        raise InvalidInputError("the model has no beta parameter: no training rate to separate")
    decays = _decay_names(list(params))
    exprs = [f, sp.diff(f, params["beta"])] + [sp.diff(f, params[n]) for n in decays]
    fn = sp.lambdify([list(system.state), list(system.params)], exprs, modules="numpy")
    hit = (fn, decays)
    _COMPILED[S] = hit
    return hit


def training_rd(result) -> dict[str, float]:
    """Training-set quantities of a solved replica saddle point (a ``StaticsResult``).

    Returns:
        {"train_loss": f, "train_rate": df/dbeta, "train_reg": sum lam df/dlam, "train_distortion": f - beta
        train_rate - train_reg}, per sample, noise floor removed.
    """
    from ._replica import statics_system

    S = statics_system(result.model)
    fn, decays = _derivatives(S)
    p = S.param_vector(result.params, result.alpha)
    out = [float(v) for v in fn(list(result.y), list(p))]
    f, rate = out[0], out[1]
    reg = sum(float(result.params[n]) * d for n, d in zip(decays, out[2:]))
    beta = float(result.params["beta"])
    return {"train_loss": f, "train_rate": rate, "train_reg": reg, "train_distortion": f - beta * rate - reg}


def training_rd_curve(model: Model, params: Mapping[str, float], alpha: float, betas: Sequence[float]) -> list[dict]:
    """Training-set rate and distortion along ``betas`` at fixed ``alpha`` (finite), from the replica saddle point
    (each solve warm-started from the previous one). Rows: beta, train_rate, train_distortion, train_loss, and the
    population (test-set) rate and distortion, status."""
    from ._replica import solve_statics

    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise InvalidInputError(f"alpha must be a finite positive number for training-set curves, got {alpha!r}")
    rows, guess = [], None
    for b in betas:
        res = solve_statics(model, {**params, "beta": float(b)}, alpha, guess=guess)
        row = {"alpha": float(alpha), "beta": float(b), "status": res.status}
        if res.ok:
            row.update(training_rd(res))
            row.update(rate=res.observables["rate"], distortion=res.observables["distortion"])
            guess = res
        rows.append(row)
    return rows


def erm_training_rd(model: Model, params: Mapping[str, float], data) -> dict[str, float]:
    """The same split of the literal training loss at the exact finite-N minimiser on ``data`` (``erm_exact``):
    the loss is linear in beta and in each weight decay at fixed weights, so rate_train = (L(2 beta) - L(beta)) /
    beta and reg = sum_lam (L(2 lam) - L(lam)), with distortion_train = L - beta rate_train - reg."""
    from ..simulate._erm import erm_exact, literal_loss

    res = erm_exact(model, params, data)
    base = literal_loss(model, params, data)
    theta = base.join(res.W, res.W_tilde, res.D, res.sigma2)
    L = base.value_and_grad(theta)[0]
    beta = float(params["beta"])
    rate = (literal_loss(model, {**params, "beta": 2 * beta}, data).value_and_grad(theta)[0] - L) / beta
    reg = 0.0
    for n in _decay_names(list(params)):
        if float(params[n]) != 0.0:
            reg += literal_loss(model, {**params, n: 2 * float(params[n])}, data).value_and_grad(theta)[0] - L
    return {"train_loss": L, "train_rate": rate, "train_reg": reg, "train_distortion": L - beta * rate - reg,
            "erm_train_loss": float(res.train_loss)}
