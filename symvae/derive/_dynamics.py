"""Derivation of the N -> infinity online-SGD ODEs of the order parameters from the per-sample loss.

Steps (nothing model-specific is typed in):
1. gradient of the per-sample loss L w.r.t. each trainable vector v:  grad_v L = a_v x/sqrt(N) + sum_w c_vw w/N,
   with a_v = dL/dh_v (h_v the local field of v) and c_vw collected from the derivatives of L w.r.t. overlap symbols;
2. one-step increment of each overlap O_uv = u.v/N under v <- v - tau_v grad_v L, to first and second order in the
   steps; the second-order term keeps a_u a_v ||x||^2/N^2 with ||x||^2/N -> eta (1/b for a mini-batch of b samples);
3. the Gaussian expectation over the jointly Gaussian local fields (Wick), N steps per unit time;
4. scalar parameters s trained with step tau_s/N^k drift at rate -tau_s N^(1-k) E[dL/ds], of which the N -> infinity
   limit is kept (an O(N^p), p > 0, drift is an error: the step scaling is too large).
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import sympy as sp

from ..errors import DerivationError
from ..model import Model, SymbolTable, t
from ..model import N as N_sym
from ._gaussian import gaussian_expectation
from ._system import DerivedSystem, cached_derivation

__all__ = ["derive_linear_dynamics", "gradient_coefficients", "observables", "overlap_drifts", "assemble_system",
           "MatchingMax"]


class MatchingMax(sp.Max):
    """``Max`` of the matching sums of ``eg``, left unevaluated.

    SymPy's ``Max`` compares every pair of its arguments when it is built, and it is rebuilt on every unpickling:
    quadratic in the M!/(M - M*)! matchings (~45 s at M = M* = 5). The maximum is taken numerically by the generated
    code instead. Printers treat it as ``Max`` (``max`` / ``numpy.maximum`` / ``\\max``); with numeric arguments
    (after ``subs``) it is the number.
    """

    def __new__(cls, *args, **assumptions):
        args = tuple(sp.sympify(a) for a in args)
        if all(a.is_number for a in args) or len(args) < 2:
            return sp.Max(*args)
        obj = sp.Expr.__new__(cls, *sp.ordered(set(args)), **assumptions)
        obj._argset = frozenset(args)
        return obj

    def _as_max(self, printer, *args, **kwargs):
        return printer._print(sp.Max(*self.args, evaluate=False), *args, **kwargs)

    # every printer (str, LaTeX, Python/numba, numpy, mpmath, lambdify) prints it as the Max it stands for
    _sympystr = _latex = _pythoncode = _numpycode = _mpmathcode = _lambdacode = _as_max


def gradient_coefficients(T: SymbolTable):
    """a_v and c_vw of grad_v L = a_v x/sqrt(N) + sum_w c_vw w/N, and dL/ds for the trained scalars."""
    L = T.loss_parts["loss"]
    a = {v: sp.diff(L, T.field(v)) for v in T.trainable}
    trainable = set(T.trainable)
    c: dict[tuple, sp.Expr] = defaultdict(lambda: sp.Integer(0))
    for sym, (u, w) in T.overlap_pairs.items():
        if sym not in L.free_symbols:
            continue
        dL = sp.diff(L, sym)
        if u in trainable:
            c[u, w] += dL
        if w in trainable:
            c[w, u] += dL
    for (u, w), expr in c.items():
        if w not in trainable:
            raise DerivationError(f"the loss depends on the overlap of {u} with the fixed vector {w}")
    scalars = {}
    blocks = T.state_blocks
    for s in blocks.get("D", []):
        scalars[s] = (sp.diff(L, s), 1)
    for s in blocks.get("sigma2", []):
        scalars[s] = (sp.diff(L, s), 2)
    return a, dict(c), scalars


def _step(T: SymbolTable, v) -> sp.Expr:
    return T.model.training.step("W" if v.family == "W" else "W_tilde")


def _leading_order(expr: sp.Expr, what: str) -> sp.Expr:
    """The N^0 part of an expression polynomial in N and 1/N; error if a positive power of N survives."""
    groups: dict[sp.Expr, list[sp.Expr]] = defaultdict(list)
    for term in sp.Add.make_args(sp.expand(expr)):
        power = sp.sympify(term.as_powers_dict().get(N_sym, 0))
        if not power.is_number or (power == 0 and term.has(N_sym)):
            raise DerivationError(f"the drift of {what} is not a power series in N: {term}")
        groups[power].append(term)
    for power, terms in groups.items():
        if power > 0 and sp.simplify(sp.Add(*terms)) != 0:
            raise DerivationError(f"the drift of {what} grows like N^{power}: its step size is scaled too large")
    return sp.Add(*groups.get(0, []))


def derive_linear_dynamics(model: Model) -> DerivedSystem:
    """The ODE system of a model without activations: expectations of polynomials in the fields by Wick's theorem.
    (``derive_dynamics`` is the entry point; it caches and dispatches on the activations.)"""
    T = SymbolTable(model)
    a, c, scalars = gradient_coefficients(T)
    fields = T.fields
    field_of = {v: T.field(v) for v in T.all_vectors}
    # the local fields of a tied model are shared: expectation over distinct field symbols only
    distinct = list(dict.fromkeys(fields))
    rep = {f: next(v for v in T.all_vectors if field_of[v] == f) for f in distinct}
    covariance = lambda i, j: T.covariance(rep[distinct[i]], rep[distinct[j]])  # noqa: E731
    E = lambda e: gaussian_expectation(e, distinct, covariance)  # noqa: E731
    rhs = overlap_drifts(T, a, c, scalars, E, expand=True)
    return assemble_system(model, T, rhs, observables(T), distinct)


def overlap_drifts(T: SymbolTable, a, c, scalars, E, *, expand: bool) -> dict[sp.Symbol, sp.Expr]:
    """The N -> infinity drift of every state symbol, given the gradient coefficients (``gradient_coefficients``)
    and an expectation ``E`` over the fields: each overlap from its first-order increments and the second-order
    (SGD-noise) term, each scalar (D, sigma^2) at its leading order in N. ``expand``: expand every drift (the
    polynomial linear model); otherwise keep the closed forms as derived."""
    model = T.model
    field_of = {v: T.field(v) for v in T.all_vectors}
    eta, b = T.eta, model.training.batch_expr
    trainable = set(T.trainable)

    def drift(u, v):
        """grad_u L . v / N * N, before the expectation (a_u h_v + sum_w c_uw O_wv)."""
        out = a[u] * field_of[v]
        for w in T.trainable:
            if (u, w) in c:
                out += c[u, w] * T.overlap(w, v)
        return out

    rhs = {}
    for sym, (u, v) in T.overlap_pairs.items():
        if sym not in T.state:
            continue
        total = sp.Integer(0)
        if u in trainable:
            total -= _step(T, u) * E(drift(u, v))
        if v in trainable:
            total -= _step(T, v) * E(drift(v, u))
        if u in trainable and v in trainable:
            total += _step(T, u) * _step(T, v) * eta / b * E(a[u] * a[v])
        rhs[sym] = sp.expand(total) if expand else total

    x_sq_mean = N_sym * eta + sum(T.rho, sp.Integer(0))
    for s, (dL, k) in scalars.items():
        step = model.training.step("D" if s in T.D else "sigma2")
        drift_s = -step * N_sym ** (1 - k) * E(dL.subs(T.x_sq, x_sq_mean))
        if expand:
            rhs[s] = sp.expand(_leading_order(drift_s, s.name))
        else:
            rhs[s] = _leading_order(drift_s, s.name) if drift_s.has(N_sym) else drift_s
    return rhs


def assemble_system(model: Model, T: SymbolTable, rhs: dict, obs: dict, fields,
                    notes: tuple[str, ...] = ()) -> DerivedSystem:
    """The ``DerivedSystem`` of the drifts ``rhs`` and observables ``obs``, after checking that no drift still
    depends on N, ||x||^2 or one of the ``fields``."""
    fields = set(fields)
    for s, e in rhs.items():
        if e.has(N_sym) or e.has(T.x_sq) or e.free_symbols & fields:
            raise DerivationError(f"the derived drift of {s} still depends on N, ||x||^2 or a local field: {e}")
    state = T.state
    rhs_tuple = tuple(rhs[s] for s in state)
    free = set().union(*(e.free_symbols for e in rhs_tuple), *(e.free_symbols for e in obs.values()))
    params = tuple(sorted(free - set(state) - {t}, key=lambda s: s.name))
    return DerivedSystem(kind="ode", model=model, state=state, rhs=rhs_tuple, params=params, observables=obs,
                         blocks={k: tuple(v) for k, v in T.state_blocks.items()}, notes=tuple(notes))


def observables(T: SymbolTable) -> dict[str, sp.Expr]:
    """Population observables on fresh data as functions of the order parameters.

    ``eg``: sum_k rho_k + tr Q - 2 max over matchings pi of latents to spikes of sum_k sqrt(rho_k)|m_{pi(k) k}| -- the
    squared distance ||sqrt(rho) W* - W P||^2/N minimised over signed partial permutations P (zero-padded; reduces to
    rho - 2 sqrt(rho)|m| + Q for M = M* = 1). ``rate``: E KL(q(z|x)||p(z)). ``distortion``:
    (E||x - W z/sqrt(N)||^2 - N eta)/2. ``neg_elbo``: distortion/sigma^2 + beta * rate (per-sample beta-weighted
    negative ELBO with the O(N) noise floor and the constant removed).
    """
    fields = list(dict.fromkeys(T.fields))
    rep = {f: next(v for v in T.all_vectors if T.field(v) == f) for f in fields}
    E = lambda e: gaussian_expectation(e, fields, lambda i, j: T.covariance(rep[fields[i]], rep[fields[j]]))  # noqa
    parts = T.loss_parts
    x_sq_mean = N_sym * T.eta + sum(T.rho, sp.Integer(0))
    distortion = sp.expand(E(parts["recon_sq"].subs(T.x_sq, x_sq_mean)) - N_sym * T.eta / 2)
    rate = sp.expand(E(parts["kl"]))

    M, Ms = T.M, T.M_star
    sqrt_rho = [sp.sqrt(r) for r in T.rho]
    if M >= Ms:
        matchings = [sum((sqrt_rho[k] * sp.Abs(T.m[p[k], k]) for k in range(Ms)), sp.Integer(0))
                     for p in itertools.permutations(range(M), Ms)]
    else:
        matchings = [sum((sqrt_rho[p[i]] * sp.Abs(T.m[i, p[i]]) for i in range(M)), sp.Integer(0))
                     for p in itertools.permutations(range(Ms), M)]
    eg = sum(T.rho, sp.Integer(0)) + T.Q.trace() - 2 * MatchingMax(*matchings)
    beta = T.model.vae.beta_expr
    return {"eg": eg, "rate": rate, "distortion": distortion,
            "neg_elbo": sp.expand(distortion / T.sigma2 + beta * rate)}
