"""The exact eigen-solution of the linear beta-VAE's statics at given eigenvalues of the sample covariance.

Each latent of a minimiser sits on one of the top eigenvectors of S = X^T X / n (``derive_spectral`` explains why) and
solves a scalar problem at its eigenvalue: ``_functions(model)`` lambdifies those per-latent problems and the
population observables (float64 and mpmath), ``_latent_minimum`` minimises one latent's reduced objective. At finite N
with the sample eigenvalues this is the exact finite-N minimiser (``erm_exact``); with the limiting (BBP) spectrum it is
the random-matrix closed form of the statics (``symvae.statics.closed_form``).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy as sp

from ..derive._dynamics import observables as population_observables
from ..derive._spectral import Q_NORM, S_EIG, U_NORM, SpectralProblem, derive_spectral
from ..derive._statics import statics_loss
from ..model import Model, SymbolTable

__all__ = ["PHASES", "classify_phase", "KL_GAP", "stable_kl", "kl_gap_float", "kl_gap_mp"]


PHASES = ("collapsed", "learning", "overlearning")


def classify_phase(q, phi, *, tol: float = 1e-12) -> tuple[str, tuple[str, ...]]:
    """Phase of the solution and of each latent from the latents' q_k = Q_kk and their eigenvectors' spike overlap.

    A latent is ``collapsed`` if q_k = 0 (its posterior equals the prior), ``learning`` if q_k > 0 and its direction
    overlaps a spike, ``overlearning`` if q_k > 0 with no spike overlap (it fits noise). The solution is ``collapsed``
    if every latent is, ``learning`` if any latent learns, ``overlearning`` otherwise.

    Returns:
        (phase, per-latent phases).
    """
    per = []
    for qk, pk in zip(q, phi):
        if not qk > tol:
            per.append("collapsed")
        elif pk > tol:
            per.append("learning")
        else:
            per.append("overlearning")
    if all(p == "collapsed" for p in per):
        return "collapsed", tuple(per)
    return ("learning" if "learning" in per else "overlearning"), tuple(per)


#: kl_gap(D) = D - log D - 1, the per-latent KL term at zero mean: an O((D - 1)^2) difference of O(1) numbers, so it
#: is evaluated by its own stable function (``kl_gap_float``, ``kl_gap_mp``) instead of as written.
KL_GAP = sp.Function("kl_gap")


def stable_kl(expr: sp.Expr, D_symbols) -> sp.Expr:
    """``expr`` with every D - log D - 1 replaced by kl_gap(D): log D -> D - 1 - kl_gap(D), expanded, so the D - 1
    terms cancel exactly in SymPy before any rounding."""
    for D in D_symbols:
        if expr.has(sp.log(D)):
            expr = sp.expand(expr.subs(sp.log(D), D - 1 - KL_GAP(D)))
    return expr


def kl_gap_float(D):
    """D - log D - 1 in float64 without cancellation: the series sum_k>=2 (-x)^k / k, x = D - 1, for |x| < 0.1
    (error below 1e-17 relative), else directly (numpy arrays or floats; a scalar takes the same operations in the
    same order on Python floats, without the array machinery)."""
    if not isinstance(D, np.ndarray) or not D.ndim:
        x = float(D) - 1.0
        if abs(x) < 0.1:
            series, power = 0.0, x * x
            for k in range(2, 20):
                series = series + (power / k if k % 2 == 0 else -power / k)
                power = power * x
            return series
        if x > -1.0:  # log1p's domain (D > 0); otherwise numpy's nan below
            return x - math.log1p(x)
    x = np.asarray(D, dtype=float) - 1.0
    small = np.abs(x) < 0.1
    xs = np.where(small, x, 0.0)
    series = np.zeros_like(xs)
    power = xs * xs
    for k in range(2, 20):
        series = series + (power / k if k % 2 == 0 else -power / k)
        power = power * xs
    direct = np.where(small, 0.0, x - np.log1p(np.where(small, 0.0, x)))
    out = np.where(small, series, direct)
    return float(out) if out.ndim == 0 else out


def kl_gap_mp(D):
    """D - log D - 1 in mpmath, at twice the working precision (the cancellation loses up to half the digits)."""
    with mpmath.workdps(2 * mpmath.mp.dps + 10):
        D = mpmath.mpf(D)
        value = D - mpmath.log(D) - 1
    return +value


class _Functions:
    """Lambdified pieces of a model's spectral problem and population observables, for the fp and mp contexts."""

    def __init__(self, model: Model):
        self.model = model
        self.problem: SpectralProblem = derive_spectral(model)
        T = SymbolTable(model)
        self.table = T
        self.decay = tuple(s.name for s in self.problem.decay)
        self.spec_params = self.problem.params
        _, _, subs = statics_loss(T)
        obs = {k: stable_kl(v.xreplace(subs), T.D) for k, v in population_observables(T).items()}
        self.obs_names = tuple(obs)
        order_syms = []
        for name in ("m", "m_tilde", "Q", "Q_tilde", "R"):
            order_syms += [s for s in getattr(T, name) if isinstance(s, sp.Symbol)]
        learned_D = model.vae.encoder_variance == "learned"
        if learned_D:
            order_syms += list(T.D)
        self.order_syms = tuple(dict.fromkeys(order_syms))
        free = set().union(*(e.free_symbols for e in obs.values()))
        self.obs_params = tuple(sorted(free - set(self.order_syms), key=lambda s: s.name))
        names = {s.name for s in self.spec_params} | {s.name for s in self.obs_params}
        self.param_names = tuple(sorted(names))
        self.rho_names = tuple(r.name for r in T.rho)
        self._obs_exprs = list(obs.values())
        self._cache: dict[str, object] = {}

    def backend(self, ctx):
        key = "mp" if ctx is mpmath.mp else "fp"
        if key not in self._cache:
            module = "mpmath" if key == "mp" else "math"
            args = [Q_NORM, S_EIG, *self.spec_params]
            lat = []
            for lp in self.problem.latents:
                coeffs = [sp.expand(c) for c in lp.stationarity.all_coeffs()]
                lat.append({
                    "G": sp.lambdify(args, lp.reduced, modules=module),
                    "D": None if lp.D is None else sp.lambdify(args, lp.D, modules=module),
                    "ut": None if lp.u_tilde is None else sp.lambdify([U_NORM, S_EIG, *self.spec_params],
                                                                     lp.u_tilde, modules=module),
                    "coeffs": sp.lambdify([S_EIG, *self.spec_params], coeffs, modules=module),
                    "D_symbol": lp.D_symbol.name,
                })
            const = sp.lambdify(list(self.spec_params), self.problem.constant, modules=module)
            kl = kl_gap_mp if key == "mp" else kl_gap_float
            obs = sp.lambdify([list(self.order_syms), list(self.obs_params)], self._obs_exprs,
                              modules=[{"Max": max, "Abs": abs, "kl_gap": kl}, module])
            self._cache[key] = (lat, const, obs)
        return self._cache[key]


_FUNCTIONS: dict[str, _Functions] = {}
def _functions(model: Model) -> _Functions:
    key = model.key  # hashed once per model object
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = _Functions(model)
    return _FUNCTIONS[key]


def _real_roots(coeffs, ctx) -> list:
    """Real roots of a polynomial (coefficients highest first); zero (float64: negligible) leading terms dropped."""
    coeffs = list(coeffs)
    scale = max((abs(c) for c in coeffs), default=0)
    # exact zeros (lam = 0) and, in float64, negligible leading terms (a subnormal lam): they only move roots to
    # |q| ~ 1/eps, far beyond any minimiser, and would otherwise wreck the companion matrix
    negligible = 0 if ctx is mpmath.mp else 1e-14 * scale
    while coeffs and abs(coeffs[0]) <= negligible:
        coeffs.pop(0)
    if len(coeffs) < 2:
        return []
    if ctx is mpmath.mp:
        roots = ctx.polyroots(coeffs, maxsteps=400, extraprec=4 * ctx.prec)
        scale = max(abs(c) for c in coeffs)
        tol = ctx.mpf(10) ** (-ctx.dps // 2) * (1 + scale)
        return [ctx.re(r) for r in roots if abs(ctx.im(r)) <= tol]
    roots = _float_roots(np.array(coeffs, dtype=float))
    return [float(r.real) for r in roots if abs(r.imag) <= 1e-7 * (1.0 + abs(r))]


def _float_roots(p: np.ndarray) -> np.ndarray:
    """``numpy.roots`` of a float vector without its generic prologue: the same companion matrix (leading and trailing
    zeros stripped, -p[1:]/p[0] on the first row, ones below the diagonal), the same eigenvalue call, and a zero root
    per trailing zero coefficient."""
    nz = np.flatnonzero(p)
    if nz.size == 0:
        return np.zeros(0)
    trailing = len(p) - int(nz[-1]) - 1
    p = p[int(nz[0]):int(nz[-1]) + 1]
    N = len(p)
    if N > 1:
        A = np.zeros((N - 1, N - 1))
        A[np.arange(1, N - 1), np.arange(N - 2)] = 1.0
        A[0, :] = -p[1:] / p[0]
        roots = np.linalg.eigvals(A)
    else:
        roots = np.zeros(0)
    return np.concatenate((roots, np.zeros(trailing, roots.dtype))) if trailing else roots


def _polish_root(G, q, s, pv, ctx):
    """Newton on G'(q) = 0 (numerical derivative of the derived G) from a polynomial root, in the context."""
    if ctx is mpmath.mp:
        try:
            return ctx.findroot(lambda x: ctx.diff(lambda y: G(y, s, *pv), x), q, tol=ctx.mpf(10) ** (-ctx.dps + 3))
        except (ValueError, ZeroDivisionError):
            return q
    return q


def _latent_minimum(fn: dict, s, pv, ctx):
    """(q*, G(q*)) minimising the latent's reduced objective over q >= 0 (q = 0 and the positive stationary roots)."""
    G = fn["G"]
    best_q, best_G = ctx.zero, G(ctx.zero, s, *pv)
    for r in _real_roots(fn["coeffs"](s, *pv), ctx):
        if not r > 0:
            continue
        try:
            val = G(r, s, *pv)
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
        if val < best_G:
            best_q, best_G = r, val
    if best_q > 0 and ctx is mpmath.mp:
        best_q = _polish_root(G, best_q, s, pv, ctx)
        best_G = G(best_q, s, *pv)
    return best_q, best_G
