"""The random-matrix closed form of the statics: the eigen-solution of ``derive_spectral`` on the limiting spectrum.

Each latent sits on one of the top eigenvectors of the sample covariance (``derive_spectral`` explains why); in the
limit N -> infinity the top eigenvalues and the eigenvector-spike overlaps are those of ``spectrum_slots`` (BBP). The
order parameters follow: Q_kk = q_k, Q~_kk = u~_k^2, R_kk = u_k u~_k (all off-diagonal entries 0), D_k = D*(q_k), and
m_kj = u_k sqrt(phi), m~_kj = u~_k sqrt(phi) for the spike j carried by latent k's eigenvector (signs chosen positive;
for equal spike strengths the split of the spike subspace among latents is arbitrary and reported as the identity).

One code path for float64 (``ctx=mpmath.fp``) and arbitrary precision (``ctx=mpmath.mp``).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Mapping

import mpmath
import numpy as np
import sympy as sp

from ..errors import InvalidInputError
from ..model import Model, SymbolTable
from ..numerics._context import decimal_text
from ..simulate._spectral import KL_GAP as KL_GAP
from ..simulate._spectral import PHASES as PHASES
from ..simulate._spectral import _functions as _functions
from ..simulate._spectral import _latent_minimum as _latent_minimum
from ..simulate._spectral import _real_roots as _real_roots
from ..simulate._spectral import classify_phase as classify_phase
from ..simulate._spectral import kl_gap_float as kl_gap_float
from ..simulate._spectral import kl_gap_mp as kl_gap_mp
from ..simulate._spectral import stable_kl as stable_kl
from ._params import check_alpha, check_params
from ._spectrum import Slot, spectrum_slots

__all__ = ["ClosedForm", "closed_form", "classify_phase", "statics_param_names", "PHASES"]

@dataclasses.dataclass(frozen=True, eq=False)
class ClosedForm:
    """The random-matrix closed-form solution at one parameter point.

    Attributes:
        model: the model. alpha: n/N. params: parameter values by name (``alpha`` excluded).
        order: order parameters ``m``, ``m_tilde`` (M x M*), ``Q``, ``Q_tilde``, ``R`` (M x M), ``D`` (M) -- float
            arrays, or object arrays of mpf for ``ctx=mpmath.mp``; ``sigma2`` for a learned decoder variance (= eta).
        q: Q_kk per latent. slots: the eigenvalue slot of each latent. train_loss: training loss per sample (noise
            floor removed). observables: ``eg``, ``rate``, ``distortion``, ``neg_elbo``.
        phase, latent_phases: see ``classify_phase``.
    """

    model: Model
    alpha: object
    params: Mapping[str, object]
    order: Mapping[str, np.ndarray]
    q: tuple
    slots: tuple[Slot, ...]
    train_loss: object
    observables: Mapping[str, object]
    phase: str
    latent_phases: tuple[str, ...]


def statics_param_names(model: Model) -> tuple[str, ...]:
    """Names of the parameters a statics computation of ``model`` needs (``alpha`` excluded), sorted."""
    return _functions(model).param_names


def closed_form(model: Model, params: Mapping[str, float], alpha, *, ctx=mpmath.fp) -> ClosedForm:
    """The random-matrix closed-form global minimiser at (params, alpha) in the N -> infinity limit.

    Arguments:
        model: the model definition (any variant with a constant beta).
        params: parameter values by name (``statics_param_names(model)``); extra names are ignored.
        alpha: n / N (> 0; ``inf`` gives the population limit).

    Other arguments:
        ctx: ``mpmath.fp`` (float64) or ``mpmath.mp`` (the current mpmath precision).

    Returns:
        A ``ClosedForm``.

    Raises:
        InvalidInputError: invalid alpha or parameters.
    """
    fns = _functions(model)
    alpha = check_alpha(alpha, allow_inf=True) if ctx is not mpmath.mp else _mp_alpha(alpha)
    if ctx is mpmath.mp:  # floats as the decimals typed (0.3 is 3/10), mpmath numbers as given
        params = {k: _mp_typed(v) for k, v in params.items()}
    pv_named = check_params(params, fns.param_names)
    T = fns.table
    lat_fns, const_fn, obs_fn = fns.backend(ctx)
    conv = ctx.convert
    inv_alpha = ctx.zero if ctx.isinf(alpha) else 1 / conv(alpha)
    spec_vals = [conv(pv_named[s.name]) * (inv_alpha if s.name in fns.decay else 1) for s in fns.spec_params]
    rhos = [pv_named[n] for n in fns.rho_names]
    M, Ms = T.M, T.M_star
    slots = spectrum_slots(rhos, pv_named["eta"], alpha, M, ctx)

    # latent -> slot assignment: identical latents take the slots in order, otherwise the best permutation
    identical = model.vae.encoder_variance == "learned"
    perms = [tuple(range(M))] if identical else list(itertools.permutations(range(M)))
    best = None
    for perm in perms:
        sols = [_latent_minimum(lat_fns[k], slots[perm[k]].s, spec_vals, ctx) for k in range(M)]
        total = sum((g for _, g in sols), ctx.zero)
        if best is None or total < best[0]:
            best = (total, perm, sols)
    total, perm, sols = best
    train_loss = const_fn(*spec_vals) + total

    dtype = object if ctx is mpmath.mp else float
    zero = ctx.zero
    m = np.full((M, Ms), zero, dtype=dtype)
    mt = np.full((M, Ms), zero, dtype=dtype)
    Q = np.full((M, M), zero, dtype=dtype)
    Qt = np.full((M, M), zero, dtype=dtype)
    R = np.full((M, M), zero, dtype=dtype)
    D = np.full(M, zero, dtype=dtype)
    qs, phis = [], []
    for k in range(M):
        q, _ = sols[k]
        slot = slots[perm[k]]
        u = ctx.sqrt(q)
        fn = lat_fns[k]
        ut = u if fn["ut"] is None else fn["ut"](u, slot.s, *spec_vals)
        D[k] = fn["D"](q, slot.s, *spec_vals) if fn["D"] is not None else conv(pv_named[fn["D_symbol"]])
        Q[k, k], Qt[k, k], R[k, k] = q, ut * ut, u * ut
        if slot.spike is not None and slot.spike < Ms:
            root_phi = ctx.sqrt(slot.overlap)
            m[k, slot.spike], mt[k, slot.spike] = u * root_phi, ut * root_phi
        qs.append(q)
        phis.append(slot.overlap if slot.spike is not None else zero)
    order = {"m": m, "m_tilde": mt, "Q": Q, "Q_tilde": Qt, "R": R, "D": D}
    if model.vae.decoder_variance == "learned":
        order["sigma2"] = conv(pv_named["eta"])
    named = _order_values(T, order)
    obs_vals = obs_fn([named[s] for s in fns.order_syms], [conv(pv_named[s.name]) for s in fns.obs_params])
    observables = dict(zip(fns.obs_names, obs_vals))
    phase, per = classify_phase(qs, phis, tol=_tol(ctx))
    return ClosedForm(model=model, alpha=alpha, params=dict(pv_named), order=order, q=tuple(qs),
                      slots=tuple(slots[perm[k]] for k in range(M)), train_loss=train_loss,
                      observables=observables, phase=phase, latent_phases=per)


def _mp_typed(v):
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v):
        return mpmath.mpf(decimal_text(v))
    return v


def _mp_alpha(alpha):
    a = mpmath.mpf(_mp_typed(alpha))
    if not a > 0 or mpmath.isnan(a):
        raise InvalidInputError(f"alpha = n/N must be > 0, got {alpha!r}")
    return a


def _tol(ctx):
    return ctx.mpf(10) ** (-(ctx.dps * 2) // 3) if ctx is mpmath.mp else 1e-12


def _order_values(T: SymbolTable, order: Mapping[str, np.ndarray]) -> dict:
    """Symbol -> value for every order-parameter symbol of T (tied aliases included)."""
    out = {}
    for name, i, j, sym in _order_positions(T):
        out.setdefault(sym, order[name][i, j])
    for k, s in enumerate(T.D):
        out[s] = order["D"][k]
    return out


@functools.lru_cache(maxsize=64)
def _order_positions(T: SymbolTable) -> tuple:
    """(name, i, j, symbol) of every symbol entry of T's order-parameter matrices, in ``_order_values``' order (read
    from the SymPy matrices once per table, not per closed form)."""
    rows = []
    for name in ("m", "m_tilde", "Q", "Q_tilde", "R"):
        mat = getattr(T, name)
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                if isinstance(mat[i, j], sp.Symbol):
                    rows.append((name, i, j, mat[i, j]))
    return tuple(rows)
