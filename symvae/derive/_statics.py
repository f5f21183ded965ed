"""Replica statics: the RS zero-temperature free energy of the global minimiser of the beta-VAE loss on n = alpha N
samples, assembled from the model's parts, and its saddle-point equations obtained by SymPy differentiation.

The total loss is L = sum_mu l(x^mu) + N * reg, with l the per-sample loss of ``SymbolTable.loss_parts`` (data part) and
reg = (lam_W/2) tr Q + (lam_W_tilde/2) tr Q_tilde the weight regulariser per input dimension (applied once to the total,
hence divided by alpha per sample). Nothing model-specific is typed in; the free energy per sample is

    f = - eta/(2 alpha) tr[K (Omega - m m^T)]                      (entropy of weights with the given overlaps)
        + reg/alpha                                                 (regulariser)
        + E_omega[ l(h = H omega) + 1/2 (H omega - omega)^T K (H omega - omega) ]   (energetic term)

where Omega is the overlap matrix of the trainable vectors (Q, R, Q_tilde), m their overlaps with the teacher,
omega ~ N(0, Sigma) are the "cavity" local fields of the trainable vectors with the population covariance
Sigma = SymbolTable.covariance (rho_k m m^T + eta Omega), K = (eta chi)^-1 is the inverse of the zero-temperature RS
susceptibility chi = lim beta_T (Omega^aa - Omega^ab), and H is the linear response of the training-sample fields to the
cavity fields (the minimiser of the quadratic energetic term, made explicit so that f is a polynomial in every unknown
except D). The expectation is Wick's theorem on the per-sample loss (``gaussian_expectation``). The saddle-point
equations are the derivatives of f with respect to every unknown (order parameters, D, K, H); the value of f at the
saddle point is the training loss per sample (noise floor removed: ||x||^2 -> sum_k rho_k).

Learned decoder variance: minimising over sigma^2 gives sigma^2 = eta + O(1/N), and the O(1) problem is the fixed
sigma^2 = eta problem, so statics substitutes sigma^2 = eta. See derivations/statics/ for the full derivation.
"""
from __future__ import annotations

import dataclasses
import functools

import sympy as sp

from ..errors import DerivationError, InvalidInputError
from ..model import Model, SymbolTable, t
from ..model import N as N_sym
from ._dynamics import observables as population_observables
from ._gaussian import gaussian_expectation
from ._system import DerivedSystem, cached_derivation

__all__ = ["ALPHA", "ReplicaFreeEnergy", "replica_free_energy", "derive_statics", "statics_loss"]

#: Sample ratio alpha = n / N, a runtime parameter of every statics system.
ALPHA = sp.Symbol("alpha", positive=True)


def _check_static_model(model: Model) -> None:
    vae = model.vae
    if vae.encoder_activation != "linear" or vae.decoder_activation != "linear":
        raise InvalidInputError(f"replica statics is derived for linear encoder and decoder only, got encoder "
                                f"activation {vae.encoder_activation!r}, decoder activation "
                                f"{vae.decoder_activation!r} (the online-SGD dynamics take activations)")
    if model.vae.beta_expr.has(t):
        raise InvalidInputError("statics needs a constant beta; the model's beta depends on t (a schedule)")
    for name in ("lam_W_expr", "lam_W_tilde_expr"):
        if getattr(model.vae, name).has(t):
            raise InvalidInputError("statics needs a constant weight decay; it depends on t")


def statics_loss(T: SymbolTable) -> tuple[sp.Expr, sp.Expr, dict[sp.Expr, sp.Expr]]:
    """The per-sample data loss and the regulariser per input dimension used by statics.

    Arguments:
        T: the symbol table of the model.

    Returns:
        (data_loss, reg, substitutions): ``data_loss`` is ``loss - reg`` of ``T.loss_parts`` with ||x||^2 -> sum_k rho_k
        (the O(N) noise floor N eta removed) and, for a learned decoder variance, sigma^2 -> eta and the N/2 log sigma^2
        term dropped (its O(1) remainder vanishes at sigma^2 = eta + O(1/N)); ``reg`` is the regulariser of the total
        loss divided by N; ``substitutions`` maps symbols replaced in every statics expression.
    """
    parts = T.loss_parts
    vae = T.model.vae
    subs: dict[sp.Expr, sp.Expr] = {T.x_sq: sum(T.rho, sp.Integer(0))}
    loss = parts["recon_sq"] / T.sigma2 + vae.beta_expr * parts["kl"]
    if vae.decoder_variance == "learned":
        subs[T.sigma2] = T.eta
    data = sp.expand(loss.xreplace(subs))
    return data, parts["reg"], subs


@dataclasses.dataclass(frozen=True, eq=False)
class ReplicaFreeEnergy:
    """The assembled RS zero-temperature free energy per sample and its pieces (all SymPy).

    Attributes:
        model: the model definition.
        total: entropic + regulariser + energetic.
        entropic: -eta/(2 alpha) tr[K (Omega - m m^T)].
        regulariser: reg / alpha.
        energetic: E over the cavity fields of the loss at the training fields plus the quadratic coupling.
        Omega, overlap_teacher, Sigma: overlap matrix of the trainable vectors, their teacher overlaps, and the
            population covariance of their local fields.
        K, H: the matrices of the zero-temperature conjugate unknowns (K symmetric).
        fields: the distinct local-field symbols of the trainable vectors (order of Omega's rows).
        unknowns: every unknown of the saddle point, in state-vector order; blocks: name -> its symbols.
        data_loss, reg: the per-sample data loss and regulariser per dimension (see ``statics_loss``).
    """

    model: Model
    total: sp.Expr
    entropic: sp.Expr
    regulariser: sp.Expr
    energetic: sp.Expr
    Omega: sp.Matrix
    overlap_teacher: sp.Matrix
    Sigma: sp.Matrix
    K: sp.Matrix
    H: sp.Matrix
    fields: tuple[sp.Symbol, ...]
    unknowns: tuple[sp.Symbol, ...]
    blocks: dict[str, tuple[sp.Symbol, ...]]
    data_loss: sp.Expr
    reg: sp.Expr
    substitutions: dict

    @functools.cached_property
    def table(self) -> SymbolTable:
        return SymbolTable(self.model)


def replica_free_energy(model: Model) -> ReplicaFreeEnergy:
    """Assemble the RS zero-temperature free energy per sample of the global minimiser (module docstring).

    Arguments:
        model: the model definition (beta and the weight decay must not depend on t).

    Returns:
        A ``ReplicaFreeEnergy``.

    Raises:
        InvalidInputError: the model has a time-dependent beta or weight decay.
        DerivationError: the per-sample loss is not polynomial in the local fields.
    """
    _check_static_model(model)
    T = SymbolTable(model)
    data_loss, reg, subs = statics_loss(T)
    # one representative vector per distinct field (a tied model has a single field per latent)
    vectors = list(dict.fromkeys(T.canonical(v) for v in T.trainable))
    fields = tuple(T.field(v) for v in vectors)
    P = len(fields)
    Omega = sp.Matrix(P, P, lambda i, j: T.overlap(vectors[i], vectors[j]))
    mm = sp.Matrix(P, T.M_star, lambda i, k: T.overlap(vectors[i], T.teacher[k]))
    Sigma = sp.Matrix(P, P, lambda i, j: T.covariance(vectors[i], vectors[j]))
    idx = lambda i: str(i + 1)  # noqa: E731 -- 1-based field positions in symbol names
    K = sp.Matrix(P, P, lambda i, j: sp.Symbol(f"K_{idx(min(i, j))}{idx(max(i, j))}", real=True))
    H = sp.Matrix(P, P, lambda i, j: sp.Symbol(f"H_{idx(i)}{idx(j)}", real=True))

    # energetic term: training fields h = H omega and cavity fields omega, jointly Gaussian; Wick on the per-sample
    # loss with placeholder covariances, then the placeholders replaced by the (unexpanded) matrix entries
    omega = tuple(sp.Symbol(f"omega_{i + 1}", real=True) for i in range(P))
    joint = list(fields) + list(omega)
    cov_h = H * Sigma * H.T
    cov_hw = H * Sigma
    placeholder: dict[tuple[int, int], sp.Symbol] = {}

    def covariance(i: int, j: int) -> sp.Symbol:
        return placeholder.setdefault((i, j), sp.Dummy(f"c{i}_{j}"))

    coupling = sp.Rational(1, 2) * ((sp.Matrix(fields) - sp.Matrix(omega)).T * K
                                    * (sp.Matrix(fields) - sp.Matrix(omega)))[0]
    moments = gaussian_expectation(data_loss + coupling, joint, covariance)

    def value(i: int, j: int) -> sp.Expr:
        if i < P and j < P:
            return cov_h[i, j]
        if i < P:
            return cov_hw[i, j - P]
        if j < P:
            return cov_hw[j, i - P]
        return Sigma[i - P, j - P]

    energetic = moments.xreplace({d: value(i, j) for (i, j), d in placeholder.items()})
    if energetic.free_symbols & set(joint):
        raise DerivationError("the energetic term still depends on a local field")
    entropic = -T.eta / (2 * ALPHA) * (K * (Omega - mm * mm.T)).trace()
    regulariser = reg / ALPHA
    total = entropic + regulariser + energetic

    blocks = {k: tuple(v) for k, v in T.state_blocks.items() if k != "sigma2"}
    blocks["K"] = tuple(K[i, j] for i in range(P) for j in range(i, P))
    blocks["H"] = tuple(H[i, j] for i in range(P) for j in range(P))
    unknowns = tuple(s for b in blocks.values() for s in b)
    return ReplicaFreeEnergy(model=model, total=total, entropic=entropic, regulariser=regulariser,
                             energetic=energetic, Omega=Omega, overlap_teacher=mm, Sigma=Sigma, K=K, H=H,
                             fields=fields, unknowns=unknowns, blocks=blocks, data_loss=data_loss, reg=reg,
                             substitutions=subs)


def derive_statics(model: Model, *, cache: bool = True) -> DerivedSystem:
    """Derive the replica saddle-point system F(x; p) = grad f = 0 of a model (module docstring).

    Arguments:
        model: the model definition.
        cache: reuse a previous derivation of the same model (in memory, then on disk under ``cache_root()``).

    Returns:
        A ``DerivedSystem`` of kind ``"saddle"``: state = order parameters (m, m_tilde, Q, Q_tilde, R, D as the model
        has them), then K (upper triangle) and H (row-major); rhs = df/dx for each; params include ``alpha``;
        observables ``eg``, ``rate``, ``distortion``, ``neg_elbo`` (population, fresh data) and ``free_energy``
        (= the training loss per sample at a saddle point).

    Raises:
        InvalidInputError: time-dependent beta or weight decay.
    """
    _check_static_model(model)
    if not cache:
        return _derive_statics(model)
    return cached_derivation("statics", model, _derive_statics)


def _derive_statics(model: Model) -> DerivedSystem:
    fe = replica_free_energy(model)
    T = fe.table
    rhs = tuple(sp.diff(fe.total, s) for s in fe.unknowns)
    obs = {k: sp.expand(v.xreplace(fe.substitutions)) for k, v in population_observables(T).items()}
    obs = {k: v.subs(N_sym, 0) if v.has(N_sym) else v for k, v in obs.items()}
    obs["free_energy"] = fe.total
    for name, e in list(obs.items()) + [(s.name, e) for s, e in zip(fe.unknowns, rhs)]:
        if e.has(N_sym) or e.has(T.x_sq):
            raise DerivationError(f"the statics expression {name} still depends on N or ||x||^2: {e}")
    free = set().union(*(e.free_symbols for e in rhs), *(e.free_symbols for e in obs.values()))
    params = tuple(sorted(free - set(fe.unknowns), key=lambda s: s.name))
    return DerivedSystem(kind="saddle", model=model, state=fe.unknowns, rhs=rhs, params=params, observables=obs,
                         blocks=fe.blocks)
