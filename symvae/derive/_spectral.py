"""The exact minimiser of the beta-VAE loss through the spectrum of the sample covariance, derived from the model.

Why the minimiser lives on the top eigenvectors of S = (1/n) sum_mu x^mu x^mu^T (derivations/statics/README.md):
with U = W/sqrt(N), U~ = W~^T/sqrt(N) the training loss is a function of S, U, U~ and D only; minimising over U~ for
fixed U is a quadratic problem, solved row by row in the eigenbasis of S; what remains depends on the latent frame only
through Q = U^T U, whose off-diagonal part can only raise the D / KL terms (Schur concavity of sum_k log(beta + Q_kk),
rearrangement for a fixed D), so Q is diagonal; the data term is then a linear function of the doubly substochastic
matrix P_ik = (v_i . u_k)^2 / Q_kk, minimised at a vertex: each latent on one eigenvector, the largest eigenvalues
first.

Each latent k then carries a scalar problem in its decoder norm u (Q_kk = u^2), encoder norm u~ (Q~_kk = u~^2,
R_kk = u u~) and D_k, with the sample second moments of its fields E[l^2] = s u^2, E[l mu] = s u u~, E[mu^2] = s u~^2
(s the eigenvalue). This module derives that scalar objective from the per-sample loss (Wick with the *sample*
covariance -- exact, since the loss is quadratic in the fields), eliminates u~ (linear stationarity) and D (for a
learned D), and writes the stationarity condition in q = u^2 as a polynomial whose non-negative roots, with q = 0,
are the candidate minimisers.
"""
from __future__ import annotations

import dataclasses
import functools

import sympy as sp

from ..errors import DerivationError
from ..model import Model, SymbolTable
from ._gaussian import gaussian_expectation
from ._statics import _check_static_model, statics_loss
from ._system import cached_derivation

__all__ = ["SpectralProblem", "LatentProblem", "derive_spectral"]

#: Symbols of the per-latent problem: eigenvalue, decoder norm squared, decoder and encoder norms.
S_EIG = sp.Symbol("s", positive=True)
Q_NORM = sp.Symbol("q", nonnegative=True)
U_NORM = sp.Symbol("u", nonnegative=True)
UT_NORM = sp.Symbol("u_tilde", real=True)


@dataclasses.dataclass(frozen=True)
class LatentProblem:
    """The scalar problem of one latent sitting on an eigenvector with eigenvalue ``s``.

    Attributes:
        objective: g(u, u_tilde, D; s) -- its share of the training loss per sample.
        u_tilde: u_tilde* as a function of u (None for tied weights, where u_tilde = u).
        D: D* as a function of q (None for a fixed encoder variance, where D is the parameter D_k).
        reduced: G(q) = g at u = sqrt(q), u_tilde*, D*.
        stationarity: the polynomial in q whose non-negative roots are the interior stationary points of G.
        slope0, curvature0: G'(0) and G''(0) (collapse: the collapsed latent q = 0 is locally stable iff G'(0) > 0;
            at G'(0) = 0 the transition is continuous if G''(0) > 0).
        D_symbol: the model's D_k.
    """

    objective: sp.Expr
    u_tilde: sp.Expr | None
    D: sp.Expr | None
    reduced: sp.Expr
    stationarity: sp.Poly
    slope0: sp.Expr
    curvature0: sp.Expr
    D_symbol: sp.Symbol


@dataclasses.dataclass(frozen=True, eq=False)
class SpectralProblem:
    """The eigen-solution of a model: one ``LatentProblem`` per latent plus the constant part of the training loss.

    Attributes:
        model: the model definition.
        latents: per-latent problems (they differ only for a fixed, latent-dependent D).
        constant: the training loss per sample of the collapsed solution (sum_k rho_k / 2 for the base model).
        params: the parameter symbols the expressions use, sorted by name. The weight-decay symbols among them
            (``decay``) stand for their per-sample value lam/alpha (the regulariser is applied once to the total loss),
            so alpha itself never appears and alpha -> infinity is lam -> 0 together with the spectrum's limit.
        decay: the weight-decay symbols.
    """

    model: Model
    latents: tuple[LatentProblem, ...]
    constant: sp.Expr
    params: tuple[sp.Symbol, ...]
    decay: tuple[sp.Symbol, ...]

    @functools.cached_property
    def table(self) -> SymbolTable:
        return SymbolTable(self.model)


def _latent_objective(T: SymbolTable, data_loss: sp.Expr, reg: sp.Expr):
    """Training loss per sample with every latent k on its own eigenvector (eigenvalue s_k, norms u_k, u~_k)."""
    M = T.M
    s = [sp.Symbol(f"s_eig_{k + 1}", positive=True) for k in range(M)]
    u = [sp.Symbol(f"u_{k + 1}", nonnegative=True) for k in range(M)]
    ut = u if T.tied else [sp.Symbol(f"u_tilde_{k + 1}", real=True) for k in range(M)]
    norm = {"W": u, "W_tilde": ut}
    overlap_values: dict[sp.Symbol, sp.Expr] = {}
    for sym, (a, b) in T.overlap_pairs.items():
        if a.family == "W_star" or b.family == "W_star":
            overlap_values[sym] = sp.Integer(0)  # the loss never involves teacher overlaps
            continue
        same = a.index == b.index
        overlap_values[sym] = norm[a.family][a.index] * norm[b.family][b.index] if same else sp.Integer(0)
    vectors = list(dict.fromkeys(T.canonical(v) for v in T.trainable))
    fields = [T.field(v) for v in vectors]

    def covariance(i: int, j: int) -> sp.Expr:  # sample second moments of the fields
        a, b = vectors[i], vectors[j]
        if a.index != b.index:
            return sp.Integer(0)
        return s[a.index] * norm[a.family][a.index] * norm[b.family][b.index]

    total = gaussian_expectation(data_loss, fields, covariance) + reg  # reg's decay symbols: per-sample lam/alpha
    total = sp.expand(total.xreplace(overlap_values))
    return total, s, u, ut


def derive_spectral(model: Model, *, cache: bool = True) -> SpectralProblem:
    """Derive the per-latent scalar problems of the eigen-solution (module docstring).

    Arguments:
        model: the model definition (constant beta and weight decay).
        cache: reuse a previous derivation of the same model (in memory, then on disk under ``cache_root()``).

    Returns:
        A ``SpectralProblem``.

    Raises:
        DerivationError: the training loss does not split into per-latent terms, or a stationarity condition is not
            of the expected (linear in u_tilde, rational in q) form.
    """
    _check_static_model(model)
    if not cache:
        return _derive_spectral(model)
    return cached_derivation("spectral", model, _derive_spectral, result_type=SpectralProblem)


def _derive_spectral(model: Model) -> SpectralProblem:
    T = SymbolTable(model)
    data_loss, reg, subs = statics_loss(T)
    total, s, u, ut = _latent_objective(T, data_loss, reg)
    zero = {v: 0 for v in list(u) + list(ut)}
    constant = sp.simplify(total.xreplace(zero).xreplace({D: 1 for D in T.D}))
    learned_D = T.model.vae.encoder_variance == "learned"

    latents = []
    parts = []
    z = total.xreplace(zero)  # constant + the KL terms (beta/2)(D_k - log D_k - 1) of all latents
    for k in range(T.M):
        others = {v: 0 for j in range(T.M) if j != k for v in {u[j], ut[j]}}
        own_kl = z - z.xreplace({T.D[k]: 1})
        g_k = sp.expand(total.xreplace(others) - z + own_kl)
        parts.append(g_k)
        generic = {s[k]: S_EIG, u[k]: U_NORM}
        if not T.tied:
            generic[ut[k]] = UT_NORM
        g = g_k.xreplace(generic)
        D_k = T.D[k]
        ut_star = None
        reduced = g
        if not T.tied:
            dg = sp.diff(g, UT_NORM)
            if sp.diff(dg, UT_NORM, 2) != 0:
                raise DerivationError("the training loss is not quadratic in the encoder norm")
            ut_star = sp.simplify(sp.solve(dg, UT_NORM)[0])
            reduced = reduced.xreplace({UT_NORM: ut_star})
        D_star = None
        if learned_D:
            sols = [e for e in sp.solve(sp.diff(reduced, D_k), D_k) if e.is_positive is not False]
            if len(sols) != 1:
                raise DerivationError(f"cannot solve the stationarity of the training loss in {D_k}: {sols}")
            D_star = sp.simplify(sols[0].xreplace({U_NORM: sp.sqrt(Q_NORM)}))
            reduced = reduced.xreplace({D_k: sols[0]})
        reduced = sp.simplify(reduced.xreplace({U_NORM: sp.sqrt(Q_NORM)}))
        if reduced.has(U_NORM):
            raise DerivationError("the per-latent training loss is not a function of u^2")
        numer = sp.numer(sp.together(sp.diff(reduced, Q_NORM)))
        try:
            poly = sp.Poly(sp.expand(numer), Q_NORM)
        except sp.PolynomialError:
            raise DerivationError(f"the stationarity condition of latent {k + 1} is not polynomial in q") from None
        if ut_star is not None:
            ut_star = sp.simplify(ut_star)
        slope0 = sp.simplify(sp.diff(reduced, Q_NORM).subs(Q_NORM, 0))
        curvature0 = sp.simplify(sp.diff(reduced, Q_NORM, 2).subs(Q_NORM, 0))
        latents.append(LatentProblem(objective=g, u_tilde=ut_star, D=D_star, reduced=reduced, stationarity=poly,
                                     slope0=slope0, curvature0=curvature0, D_symbol=D_k))
    if sp.simplify(total - sum(parts, sp.Integer(0)) - constant) != 0:
        raise DerivationError("the training loss does not split into a sum over latents on distinct eigenvectors")
    free = set(constant.free_symbols)
    for lp in latents:
        free |= lp.reduced.free_symbols | lp.stationarity.as_expr().free_symbols
    params = tuple(sorted(free - {S_EIG, Q_NORM, U_NORM, UT_NORM} - ({lp.D_symbol for lp in latents}
                                                                       if learned_D else set()),
                          key=lambda x: x.name))
    overlaps = set(T.overlap_pairs)
    decay = tuple(sorted(reg.free_symbols - overlaps, key=lambda x: x.name))
    return SpectralProblem(model=model, latents=tuple(latents), constant=constant, params=params, decay=decay)
