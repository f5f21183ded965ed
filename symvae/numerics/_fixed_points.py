"""All fixed points F(x; p) = 0 of a derived system at given parameters, with spectrum, stability and kind.

Method (float64, compiled functions):
1. starting points are built from random weight vectors, so that their overlaps are physically consistent, in every
   configuration of the latents (collapsed: zero weights; zero signal: weights orthogonal to the spikes and to the
   other latents; free). A start whose zero coordinates span an invariant subspace (``_subspaces``) is solved inside
   that subspace, which finds points such as the collapsed and the noise-fitting ones exactly. Structured starts come
   first (``_structured_starts``: each latent on one spike, on a noise direction, off, or on a mixture of two
   spikes): random weights almost never come near identity-like overlaps, and with equal spike strengths the learned
   point is a continuous family (the rotation of the spike plane) whose singular Jacobian defeats Newton outside the
   invariant subspace the aligned member lies in;
2. damped Newton with deflation (Farrell et al. 2015) restarts from each start until it finds nothing new, with
   every root found so far, and all its symmetry images, deflated;
3. each root is polished, checked (residual, positivity of the variances, positive semi-definiteness of the Gram
   matrix of (W, W~^T, W*)), classified (kind; stable / marginal / unstable, ``stability_class``) and grouped into
   symmetry orbits (``_symmetry``);
4. where SymPy solves the fixed-point equations on the point's invariant subspace in closed form, or their small-step
   limit (tau -> 0), the matching closed form is attached.

Completeness of a multi-start search is not a theorem: the result states how many starts and restarts were made.
"""
from __future__ import annotations

import dataclasses
import itertools
import weakref
from typing import Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from ..codegen import CompiledSystem
from ..derive import DerivedSystem
from ..derive._nonlinear_gaussian import has_rule_nodes
from ..errors import InvalidInputError, SymvaeError
from ..model import gram_matrix
from ._closed_forms import GUARD_SECONDS, limit_system, small_step_parameters, solve_cached
from ._newton import Counter, newton_float, newton_mp
from ._subspaces import Subspace, _random_state, coordinate_roles, invariant_subspace, zero_candidates
from ._symmetry import orbit, position_index, symmetry_generators
from ._systems import ParameterPoint, as_compiled, evaluate_or_nan, positive_mask

__all__ = ["FixedPoint", "FixedPointSet", "FixedPointError", "find_fixed_points", "fixed_point", "analyse_point",
           "polish_fixed_point", "is_physical", "classify_latents", "collapsed_start", "KINDS", "STABILITIES",
           "MARGINAL_TOL", "stability_class", "unstable_count"]

#: Kinds of fixed points: every latent collapsed; some latent with zero signal overlap but nonzero norm; some latent
#: with signal overlap (and none fitting noise); anything else (e.g. an unphysical root, kept on request).
KINDS = ("collapsed", "learned", "noise-fitting", "other")
#: Stability of a fixed point of an ODE system: every Re(lambda) < -tol; no Re(lambda) > tol but some |Re(lambda)| <=
#: tol (zero modes: a continuous symmetry, e.g. the rotation of the learned point when spike strengths are equal,
#: makes the fixed points a continuous family and the Jacobian singular along it); some Re(lambda) > tol.
STABILITIES = ("stable", "marginal", "unstable")
#: the zero-mode tolerance of ``stability_class``: |Re lambda| <= MARGINAL_TOL * spectral radius (relative, because
#: the whole spectrum scales with the step size tau: at tau = 1e-6 every eigenvalue is of order 1e-6)
MARGINAL_TOL = 1e-6


def stability_class(eigenvalues, *, tol: float = MARGINAL_TOL) -> tuple[str, int]:
    """(``stable`` / ``marginal`` / ``unstable``, number of zero modes) of a Jacobian spectrum (see ``STABILITIES``).

    This is the one definition of a marginal point used by the fixed-point search and by the sweeps."""
    eig = np.asarray(eigenvalues, dtype=complex)
    if eig.size == 0:
        return "stable", 0
    scale = tol * float(np.max(np.abs(eig)))
    zero = int(np.sum(np.abs(eig.real) <= scale))
    if np.any(eig.real > scale):
        return "unstable", zero
    return ("marginal" if zero else "stable"), zero


def unstable_count(eigenvalues, *, tol: float = MARGINAL_TOL) -> int:
    """The number of eigenvalues growing beyond the zero-mode tolerance of ``stability_class``."""
    eig = np.asarray(eigenvalues, dtype=complex)
    if eig.size == 0:
        return 0
    return int(np.sum(eig.real > tol * float(np.max(np.abs(eig)))))


class FixedPointError(SymvaeError):
    """Raised with ``throw=True`` when a fixed-point search or a Newton solve fails."""


@dataclasses.dataclass(frozen=True, eq=False)
class FixedPoint:
    """One fixed point of a derived system.

    Attributes:
        x: the state vector (float64). params: the parameter values.
        residual: max |F_i(x)| in float64.
        eigenvalues: eigenvalues of dF/dx, sorted by decreasing real part.
        stable: all real parts < 0 (ODE systems); None for systems without a dynamics (saddle-point systems).
        stability: ``stable`` / ``marginal`` / ``unstable`` (``stability_class``; None without a dynamics);
            n_marginal: the number of zero modes (the dimension of the orbit of a continuous symmetry).
        kind: one of ``KINDS``; latent_kinds: ``collapsed`` / ``noise-fitting`` / ``learned`` for each latent.
        physical: the variances are positive and the Gram matrix of the weights is positive semi-definite.
        subspace: the invariant subspace the point lies in (its exact zeros).
        orbit, image: index of the symmetry orbit and the group element mapping the orbit's first point to this one.
        closed_form: None, or {"limit": None | "tau -> 0", "state": {symbol name: SymPy expression},
            "distance": max |closed form - x|}.
        x_mp, residual_mp: the mpmath state and residual after ``polish_fixed_point`` (else None).
    """

    system: DerivedSystem
    x: np.ndarray
    params: Mapping[str, float]
    residual: float
    eigenvalues: np.ndarray
    stable: bool | None
    kind: str
    latent_kinds: tuple[str, ...]
    physical: bool
    subspace: Subspace
    orbit: int = 0
    image: str = "identity"
    closed_form: Mapping | None = None
    stability: str | None = None
    n_marginal: int = 0
    x_mp: tuple | None = None
    residual_mp: object = None

    @property
    def leading_eigenvalue(self) -> complex:
        return complex(self.eigenvalues[0]) if len(self.eigenvalues) else complex("nan")

    def order_parameters(self) -> dict[str, np.ndarray]:
        """The state as named order parameters (m: M x M*, Q: M x M, D: M, ...), as in ``DerivedSystem.unpack``."""
        named = self.system.unpack(self.x, self.params)
        return {k: np.asarray(v, dtype=float) for k, v in named.items()}

    def to_dict(self) -> dict:
        """JSON-ready: the order parameters, eigenvalues as [re, im] pairs, stability, kind and provenance."""
        out: dict = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.order_parameters().items()}
        out["eigenvalues"] = [[float(e.real), float(e.imag)] for e in self.eigenvalues]
        out["stable"] = self.stable
        out["stability"] = self.stability
        out["n_marginal"] = self.n_marginal
        out["kind"] = self.kind
        out["latents"] = list(self.latent_kinds)
        out["physical"] = self.physical
        out["orbit"] = self.orbit
        out["image"] = self.image
        out["residual"] = self.residual
        if self.closed_form is not None:
            out["closed_form"] = {"limit": self.closed_form["limit"],
                                  "state": {k: str(v) for k, v in self.closed_form["state"].items()}}
        else:
            out["closed_form"] = None
        return out


@dataclasses.dataclass(frozen=True)
class FixedPointSet:
    """Result of ``find_fixed_points``.

    Attributes:
        points: the fixed points, orbit by orbit (stable ones first).
        status: ``"ok"`` or ``"failed"`` (nothing found); message: a summary.
        n_starts, n_restarts: starting points and deflated restarts; n_unphysical: roots rejected as unphysical.
        counts: {"nfev", "njev", "newton_iterations"}.
    """

    points: tuple[FixedPoint, ...]
    status: str
    message: str
    n_starts: int
    n_restarts: int
    n_unphysical: int
    counts: Mapping[str, int]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def of_kind(self, kind: str) -> list[FixedPoint]:
        return [p for p in self.points if p.kind == kind]

    @property
    def stable(self) -> list[FixedPoint]:
        return [p for p in self.points if p.stable]

    def to_dict(self) -> dict:
        return {"fixed_points": [p.to_dict() for p in self.points], "status": self.status, "message": self.message,
                "n_starts": self.n_starts, "n_restarts": self.n_restarts, "n_unphysical": self.n_unphysical,
                **dict(self.counts)}


# --------------------------------------------------------------------------------------------- physical checks
def _gram_index(system: DerivedSystem):
    """(index, constant) with Gram = where(index >= 0, x[index], constant): the Gram matrix of [W*, W, W~] as a
    gather from the state vector (``symvae.model.gram_matrix`` is the reference layout). None if not applicable."""
    cache = _GRAM.get(system)
    if cache is not None or system in _GRAM:
        return cache
    try:
        M, Ms = system.model.M, system.model.M_star
        where = position_index(system)
        probe = {}
        for name, shape in (("m", (M, Ms)), ("m_tilde", (M, Ms)), ("Q", (M, M)), ("Q_tilde", (M, M)),
                            ("R", (M, M))):
            arr = np.full(shape, -1.0)
            for pos in np.ndindex(*shape):
                if (name, pos) in where:
                    arr[pos] = where[(name, pos)]
                elif system.model.vae.tied and name in ("m_tilde", "Q_tilde", "R"):
                    src = {"m_tilde": "m", "Q_tilde": "Q", "R": "Q"}[name]
                    arr[pos] = where[(src, pos)]
                else:
                    raise KeyError(name)
            probe[name] = arr
        index = gram_matrix(M, Ms, probe)
        index[:Ms, :Ms] = -1.0
        constant = np.zeros_like(index)
        constant[:Ms, :Ms] = np.eye(Ms)
        cache = (index.astype(int), constant)
    except (KeyError, AttributeError):
        cache = None
    _GRAM[system] = cache
    return cache


_GRAM: "weakref.WeakKeyDictionary[DerivedSystem, object]" = weakref.WeakKeyDictionary()


def is_physical(system: DerivedSystem, x: np.ndarray, params: Mapping[str, float] | None = None, *,
                tol: float = 1e-8) -> bool:
    """Positive variances (D, sigma2) and a positive semi-definite Gram matrix of (W*, W, W~).

    The Gram matrix of [W*, W, W~] (``symvae.model.gram_matrix``) is PSD iff some vectors have these overlaps, so a
    root that violates it cannot be reached by any weights.
    """
    x = np.asarray(x, dtype=float)
    pos = positive_mask(system)
    if np.any(x[pos] <= 0) or not np.all(np.isfinite(x)):
        return False
    gi = _gram_index(system)
    if gi is None:
        return True
    index, constant = gi
    G = np.where(index >= 0, x[np.maximum(index, 0)], constant)
    scale = 1.0 + float(np.max(np.abs(G)))
    return bool(np.min(np.linalg.eigvalsh(0.5 * (G + G.T))) >= -tol * scale)


def classify_latents(system: DerivedSystem, x: np.ndarray, *, tol: float = 1e-9) -> tuple[str, ...]:
    """Per latent: ``learned`` (nonzero overlap with a spike), ``noise-fitting`` (zero signal overlap, nonzero norm)
    or ``collapsed`` (zero norm)."""
    roles = coordinate_roles(system)
    try:
        M = system.model.M
    except AttributeError:
        return ()
    x = np.asarray(x, dtype=float)
    scale = tol * (1.0 + float(np.max(np.abs(x))))
    signal = np.zeros(M)
    norm = np.zeros(M)
    for k, (name, pos) in roles.items():
        if name in ("m", "m_tilde") and pos:
            signal[pos[0]] = max(signal[pos[0]], abs(x[k]))
        elif name in ("Q", "Q_tilde", "R") and pos and pos[0] == pos[1]:
            norm[pos[0]] = max(norm[pos[0]], abs(x[k]))
    return tuple("learned" if signal[i] > scale else "noise-fitting" if norm[i] > scale else "collapsed"
                 for i in range(M))


def _point_kind(latent_kinds: Sequence[str], physical: bool) -> str:
    if not physical or not latent_kinds:
        return "other"
    if all(k == "collapsed" for k in latent_kinds):
        return "collapsed"
    if any(k == "noise-fitting" for k in latent_kinds):
        return "noise-fitting"
    return "learned"


def _stability(system: DerivedSystem, eigenvalues: np.ndarray) -> tuple[str | None, int]:
    if system.kind != "ode":
        return None, 0
    return stability_class(eigenvalues)


def analyse_point(compiled: CompiledSystem, x: np.ndarray, pp: ParameterPoint, **extra) -> FixedPoint:
    """Spectrum, stability, kind and subspace of a (converged) fixed point."""
    system = compiled.system
    x = np.asarray(x, dtype=float)
    subspace = invariant_subspace(system, zero_candidates(x))
    x = subspace.restrict(x)
    J = compiled.jac(0.0, x, pp.vector)
    eig = np.linalg.eigvals(J)
    eig = eig[np.lexsort((-eig.imag, -eig.real))]
    physical = is_physical(system, x, pp.values)
    latents = classify_latents(system, x)
    residual = float(np.max(np.abs(compiled.rhs(0.0, x, pp.vector)))) if len(x) else 0.0
    stability, n_marginal = _stability(system, eig)
    return FixedPoint(system=system, x=x, params=pp.values, residual=residual, eigenvalues=eig,
                      stable=None if stability is None else stability == "stable", stability=stability,
                      n_marginal=n_marginal, kind=_point_kind(latents, physical), latent_kinds=latents,
                      physical=physical, subspace=subspace, **extra)


# --------------------------------------------------------------------------------------------- starting points
def _state_from_weights(system: DerivedSystem, W: np.ndarray, Wt: np.ndarray, D: np.ndarray,
                        sigma2: float = 1.0) -> np.ndarray:
    """The state of weights W (K x M, spikes on the first M* axes of R^K), W~ (M x K) and encoder variances D."""
    Ms = system.model.M_star
    Wstar = np.eye(W.shape[0])[:, :Ms]
    if system.model.vae.tied:
        Wt = W.T.copy()
    named = {"m": W.T @ Wstar, "m_tilde": Wt @ Wstar, "Q": W.T @ W, "Q_tilde": Wt @ Wt.T, "R": W.T @ Wt.T,
             "D": np.asarray(D, dtype=float), "sigma2": sigma2}
    x = collapsed_start(system)
    for k, (name, pos) in coordinate_roles(system).items():
        if name in named:
            arr = np.asarray(named[name])
            x[k] = arr[pos] if pos else float(arr)
    return x


#: per-latent roles of the structured starts: aligned with spike j (an int), "noise" (a direction orthogonal to the
#: spikes and to the other latents), "off" (collapsed), ("mix", s) (the normalised sum e_1 + s e_2 of two spikes)
_STRUCTURED_MAGNITUDES = (1.2, 0.6)


def _structured_starts(system: DerivedSystem, rng: np.random.Generator, *, limit: int) -> list[np.ndarray]:
    """Starts built from structured weights, which random weights almost never come close to: every latent aligned
    with one spike (identity-like overlaps and their signed permutations, the learned points), aligned with a
    noise direction (noise-fitting), switched off (collapsed), or on an equal mixture of two spikes (the entangled
    points the dynamics pass near). Weights on exact axes give exact zeros, so Newton runs inside the invariant
    subspace of the point, where the zero modes of a continuous symmetry (equal spike strengths rotate the learned
    point) are absent and the Jacobian is regular.

    The identity-like starts come first and are always kept; the rest are sampled down to ``limit``.
    """
    try:
        M, Ms = system.model.M, system.model.M_star
    except AttributeError:
        return []
    K = Ms + 2 * M
    roles: list[object] = list(range(Ms)) + ["noise", "off"]
    if Ms >= 2:
        roles += [("mix", 1.0), ("mix", -1.0)]
    first, rest = [], []
    for combo in itertools.product(roles, repeat=M):
        spikes = [r for r in combo if isinstance(r, int)]
        if len(set(spikes)) < len(spikes) or all(r == "off" for r in combo):
            continue  # a spike shared by two latents is a mixture start's job; all-off is the collapsed start
        for a in _STRUCTURED_MAGNITUDES:
            W = np.zeros((K, M))
            for k, r in enumerate(combo):
                if isinstance(r, int):
                    W[r, k] = a
                elif r == "noise":
                    W[Ms + 2 * k, k] = a
                elif r != "off":
                    W[0, k] = a / np.sqrt(2.0)
                    W[1, k] = r[1] * a / np.sqrt(2.0) * (1 if k % 2 == 0 else -1)
            q = np.sum(W * W, axis=0)
            # encoder ~ decoder / (|W|^2 + 1) and D = 1 / (1 + |W|^2): the small-step learned point at beta = 1
            Wt = (W / (1.0 + q)).T
            D = 1.0 / (1.0 + q)
            x = _state_from_weights(system, W, Wt, D)
            (first if set(combo) <= set(range(Ms)) | {"off"} else rest).append(x)
    if len(first) + len(rest) > limit and len(rest):
        keep = max(0, limit - len(first))
        rest = [rest[i] for i in sorted(rng.choice(len(rest), size=min(keep, len(rest)), replace=False))]
    return first + rest


def collapsed_start(system: DerivedSystem) -> np.ndarray:
    """The all-collapsed starting state: every overlap zero, variances one."""
    x = np.zeros(len(system.state))
    x[positive_mask(system)] = 1.0
    return x


def _latent_coordinates(system: DerivedSystem) -> list[dict[tuple[str, tuple[int, ...]], int]]:
    """For each latent k: its own coordinates, keyed by (order parameter, position with k replaced by 0)."""
    out: list[dict] = [dict() for _ in range(system.model.M)]
    for idx, (name, pos) in coordinate_roles(system).items():
        if name in ("m", "m_tilde") and pos:
            out[pos[0]][(name, (0, pos[1]))] = idx
        elif name in ("Q", "Q_tilde", "R") and pos and pos[0] == pos[1]:
            out[pos[0]][(name, (0, 0))] = idx
        elif name == "D" and pos:
            out[pos[0]][(name, (0,))] = idx
    return out


def _recombined_starts(system: DerivedSystem, roots: Sequence[np.ndarray], rng: np.random.Generator, *,
                       limit: int) -> list[np.ndarray]:
    """Starts assembled latent by latent from the per-latent states of known roots (cross overlaps zero)."""
    coords = _latent_coordinates(system)
    pool: list[dict] = []
    for r in roots:
        for lat in coords:
            state = {key: r[i] for key, i in lat.items()}
            if not any(all(abs(state[k] - other[k]) < 1e-9 for k in state) for other in pool):
                pool.append(state)
    M = len(coords)
    combos = list(itertools.product(range(len(pool)), repeat=M))
    if len(combos) > limit:
        combos = [combos[i] for i in rng.choice(len(combos), size=limit, replace=False)]
    base = np.zeros(len(system.state))
    base[positive_mask(system)] = 1.0
    out = []
    for combo in combos:
        x = base.copy()
        for k, j in enumerate(combo):
            for key, i in coords[k].items():
                x[i] = pool[j][key]
        out.append(x)
    return out


def _configurations(M: int) -> list[tuple[str, ...]]:
    """Latent configurations up to permutation (permutation images are found through the symmetry group)."""
    kinds = ("collapsed", "zero-signal", "free")
    return [c for c in itertools.product(kinds, repeat=M) if list(c) == sorted(c, key=kinds.index)]


# --------------------------------------------------------------------------------------------- closed forms
#: SymPy is asked for exact fixed points only on subspaces with at most this many free coordinates, and for the
#: small-step limit with at most ``LIMIT_MAX_FREE`` (larger polynomial systems do not finish in seconds).
EXACT_MAX_FREE, LIMIT_MAX_FREE = 3, 7
_CANDIDATES: "weakref.WeakKeyDictionary[DerivedSystem, dict]" = weakref.WeakKeyDictionary()


def _closed_form_candidates(system: DerivedSystem, subspace: Subspace, pp: ParameterPoint, seconds: float):
    """Closed-form solutions of F = 0 on ``subspace``: exact ones, else those of the small-step limit (parameters
    that are zero at ``pp`` are set to zero first; the rest stay symbolic)."""
    zero_params = {p: 0 for p in system.params if pp.values[p.name] == 0.0}
    memo = _CANDIDATES.setdefault(system, {})
    key = (subspace.zero, tuple(sorted(p.name for p in zero_params)))
    if key in memo:
        return memo[key]
    sub = dict(subspace.substitution)
    unknowns = [system.state[i] for i in subspace.free]
    out = []
    restricted = [system.rhs[i].subs(sub).subs(zero_params) for i in subspace.free] \
        if unknowns and len(unknowns) <= LIMIT_MAX_FREE else []
    # SymPy's solver takes polynomial systems; an activated model's arcsines would only be expanded, without bound
    # (the erf decoder at M = 1: over 15 min in ``expand`` before this check)
    if restricted and all(e.is_rational_function(*unknowns) for e in restricted):
        eqs = [sp.expand(e) for e in restricted]
        solutions = None
        if len(unknowns) <= EXACT_MAX_FREE:
            solutions = solve_cached([sp.numer(sp.together(e)) for e in eqs], unknowns, seconds=seconds,
                                     tag="fixed-exact")
        if solutions:
            out += [(None, s) for s in solutions]
        else:
            for p in small_step_parameters(eqs, [q for q in system.params if q not in zero_params]):
                leading = limit_system(eqs, p)
                sols = solve_cached([sp.numer(sp.together(e)) for e in leading], unknowns, seconds=seconds,
                                    tag="fixed-limit")
                out += [(f"{p.name} -> 0", s) for s in (sols or [])]
    memo[key] = out
    return out


def _attach_closed_form(point: FixedPoint, candidates, pp: ParameterPoint) -> FixedPoint:
    system = point.system
    subs = {p: sp.Rational(pp.text[p.name]) for p in system.params}
    best = None
    for limit, sol in candidates:
        if set(sol) != {system.state[i] for i in point.subspace.free}:
            continue
        try:
            values = np.array([complex(sp.N(sol[system.state[i]].subs(subs), 20)) for i in point.subspace.free])
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if np.any(np.abs(values.imag) > 1e-12) or not np.all(np.isfinite(values.real)):
            continue
        dist = float(np.max(np.abs(values.real - point.x[list(point.subspace.free)])))
        if limit is None and dist > 1e-8 * (1 + np.max(np.abs(point.x))):
            continue
        if limit is not None and np.any(np.sign(values.real) != np.sign(np.round(point.x[list(point.subspace.free)],
                                                                                  12))):
            continue
        if best is None or dist < best[0]:
            best = (dist, limit, sol)
    if best is None:
        return point
    dist, limit, sol = best
    state = {system.state[i].name: sp.factor(sol[system.state[i]]) for i in point.subspace.free}
    state.update({system.state[i].name: sp.Integer(0) for i in point.subspace.zero})
    return dataclasses.replace(point, closed_form={"limit": limit, "state": state, "distance": dist})


# --------------------------------------------------------------------------------------------- search
def find_fixed_points(system: DerivedSystem | CompiledSystem, params: Mapping[str, object], *, starts: int = 48,
                      restarts: int = 4, seed: int = 0, include_unphysical: bool = False,
                      closed_forms: bool = True, closed_form_seconds: float = GUARD_SECONDS, max_iter: int = 60,
                      throw: bool = False) -> FixedPointSet:
    """Find the fixed points of F(x; p) = 0 at the given parameters.

    Arguments:
        system: a derived system (compiled on first use) or a compiled one; must not depend on t.
        params: a value for every parameter of the system.

    Other arguments:
        starts: number of random starting points (spread over the latent configurations), besides the collapsed
            start and the structured ones (at most ``max(starts, 16)`` beyond the identity-like ones); restarts:
            deflated restarts per start; seed: random seed (the result is deterministic for a given seed).
        include_unphysical: keep roots with a non-PSD Gram matrix or a non-positive variance (kind ``other``).
        closed_forms: attach SymPy closed forms where SymPy finds them within ``closed_form_seconds`` per system.
        max_iter: Newton iterations per run.
        throw: raise ``FixedPointError`` if nothing is found.

    Returns:
        A ``FixedPointSet``.

    Raises:
        InvalidInputError: unknown/missing parameters, a time-dependent system.
        FixedPointError: with ``throw=True``, when no fixed point is found.
    """
    compiled = as_compiled(system)
    system = compiled.system
    pp = ParameterPoint(system, params)
    p = pp.vector
    counter = Counter()
    positive = positive_mask(system)
    n = len(system.state)
    # a start whose right-hand side is not finite (or raises, in the plain-Python phase) fails; the search goes on
    rhs = lambda x: evaluate_or_nan(compiled.rhs, x, p, (n,))  # noqa: E731
    jac = lambda x: evaluate_or_nan(compiled.jac, x, p, (n, n))  # noqa: E731
    rng = np.random.default_rng(seed)
    gens = symmetry_generators(system)
    scale_tol = 1e-9

    def is_root(y):
        F = rhs(y)
        counter.nfev += 1
        J_scale = 1.0 + np.max(np.abs(y))
        return bool(np.all(np.isfinite(F)) and np.max(np.abs(F)) <= 1e-10 * J_scale * (1.0 + np.max(np.abs(p))))

    roots: list[np.ndarray] = []  # every root found, images included (deflated)
    signal_idx = [k for k, (name, _) in coordinate_roles(system).items() if name in ("m", "m_tilde")]
    accepted: list[tuple[np.ndarray, int, str]] = []
    n_unphysical = 0
    n_restarts = 0
    try:
        M = system.model.M
    except AttributeError:
        M = 0
    configs = _configurations(M) if M else [()]
    per_config = max(2, starts // max(1, len(configs)))
    start_list = [collapsed_start(system)] if M else []
    if M:
        start_list += _structured_starts(system, rng, limit=max(starts, 16))
    for config in configs:
        start_list += [_random_state(system, rng, config) for _ in range(per_config)]

    def add_root(y: np.ndarray):
        nonlocal n_unphysical
        sub = invariant_subspace(system, zero_candidates(y))
        y = sub.restrict(y)
        # polish inside the point's own subspace: exact zeros, full float64 accuracy
        y2, ok, _ = newton_float(rhs, jac, y, sub.free, positive=positive, max_iter=8, counter=counter)
        if ok:
            y = sub.restrict(y2)
        if not is_root(y):
            return False
        scale = 1.0 + np.max(np.abs(y))
        if any(np.max(np.abs(y - r)) <= 1e-7 * scale for r in roots):
            return False
        images = orbit(y, gens, is_root, tol=scale_tol)
        if len(images) > 1:  # a canonical representative: the image with the largest signal overlaps
            best = max((z for _, z in images), key=lambda z: (float(np.sum(z[signal_idx])), tuple(z)))
            images = orbit(best, gens, is_root, tol=scale_tol)
        for _, z in images:
            roots.append(z)
        physical = is_physical(system, y, pp.values)
        if not physical:
            n_unphysical += 1
            if not include_unphysical:
                return True
        orbit_id = len({o for _, o, _ in accepted})
        for label, z in images:
            accepted.append((z, orbit_id, label))
        return True

    def run(starts_):
        nonlocal n_restarts
        for x0 in starts_:
            sub = invariant_subspace(system, zero_candidates(x0))
            x0 = sub.restrict(x0)
            free = list(sub.free)
            for attempt in range(restarts):
                R = np.array([r[free] for r in roots if np.all(r[list(sub.zero)] == 0.0)]) if roots else None
                if R is not None and R.size == 0:
                    R = None
                if attempt:
                    n_restarts += 1
                x, ok, _ = newton_float(rhs, jac, x0, free, roots=R, positive=positive, max_iter=max_iter,
                                        counter=counter)
                if not ok or not add_root(x):
                    break

    run(start_list)
    if M > 1 and roots:
        # latents that do different things (one learns, one fits noise) have small basins from random starts:
        # recombine the per-latent states of the roots found so far, cross overlaps zero
        combos = _recombined_starts(system, roots, rng, limit=starts)
        start_list += combos
        run(combos)

    points = [analyse_point(compiled, z, pp, orbit=o, image=label) for z, o, label in accepted]
    if closed_forms and points and not has_rule_nodes(system.rhs):  # (SymPy cannot solve through a rule's node)
        cache: dict = {}
        for i, pt in enumerate(points):
            key = pt.subspace.zero
            if key not in cache:
                cache[key] = _closed_form_candidates(system, pt.subspace, pp, closed_form_seconds)
            points[i] = _attach_closed_form(pt, cache[key], pp)
    # orbit order: stable first, then marginal, then by kind, then by the leading eigenvalue
    first = {}
    for q in points:
        first.setdefault(q.orbit, q)
    rank = {"stable": 0, "marginal": 1, "unstable": 2, None: 2}
    order = {o: (rank[q.stability], KINDS.index(q.kind), -q.leading_eigenvalue.real) for o, q in first.items()}
    ranked = sorted(order, key=lambda o: order[o])
    renumber = {o: i for i, o in enumerate(ranked)}
    points = sorted((dataclasses.replace(q, orbit=renumber[q.orbit]) for q in points),
                    key=lambda q: (q.orbit, q.image != "identity"))
    status = "ok" if points else "failed"
    message = (f"{len(points)} fixed point(s) in {len(ranked)} symmetry orbit(s) from {len(start_list)} starts "
               f"({n_restarts} deflated restarts); {n_unphysical} unphysical root(s) "
               f"{'kept' if include_unphysical else 'rejected'}")
    if not points:
        message = f"no fixed point found from {len(start_list)} starts"
        if throw:
            raise FixedPointError(message)
    return FixedPointSet(points=tuple(points), status=status, message=message, n_starts=len(start_list),
                         n_restarts=n_restarts, n_unphysical=n_unphysical, counts=counter.as_dict())


def fixed_point(system: DerivedSystem | CompiledSystem, x0, params: Mapping[str, object], *,
                subspace: Subspace | None = None, max_iter: int = 60, throw: bool = True,
                counter: Counter | None = None) -> FixedPoint | None:
    """Newton's method from ``x0`` (a state vector or a mapping of order parameters) to one fixed point.

    Arguments:
        subspace: solve inside this invariant subspace (default: the one spanned by the exact zeros of ``x0``).

    Returns:
        The analysed ``FixedPoint`` (None if Newton fails and ``throw`` is False).

    Raises:
        FixedPointError: Newton did not converge (with ``throw=True``).
    """
    compiled = as_compiled(system)
    system = compiled.system
    pp = ParameterPoint(system, params)
    x0 = system.pack(x0) if isinstance(x0, Mapping) else np.asarray(x0, dtype=float)
    if x0.shape != (len(system.state),):
        raise InvalidInputError(f"the state must have {len(system.state)} entries")
    sub = subspace or invariant_subspace(system, zero_candidates(x0))
    x, ok, it = newton_float(lambda y: compiled.rhs(0.0, y, pp.vector), lambda y: compiled.jac(0.0, y, pp.vector),
                             sub.restrict(x0), sub.free, positive=positive_mask(system), max_iter=max_iter,
                             counter=counter)
    if not ok:
        if throw:
            raise FixedPointError(f"Newton's method did not converge in {it} iterations")
        return None
    return analyse_point(compiled, x, pp)


def polish_fixed_point(point: FixedPoint, dps: int, *, throw: bool = True) -> FixedPoint:
    """Refine a fixed point in mpmath to ``dps`` digits (inside its invariant subspace; zeros stay exact).

    Returns:
        A copy with ``x_mp`` (mpf values) and ``residual_mp`` = max |F_i| evaluated at ``dps + 5`` digits.

    Raises:
        FixedPointError: mpmath Newton did not reach the precision (with ``throw=True``).
    """
    compiled = as_compiled(point.system)
    system = compiled.system
    pp = ParameterPoint(system, point.params)
    free = list(point.subspace.free)
    p_mp = pp.mp_list()
    n = len(system.state)

    def full(yf):
        y = [mpmath.mpf(0)] * n
        for k, i in enumerate(free):
            y[i] = yf[k]
        return y

    def fun(yf):
        F = compiled.rhs_mp(0, full(yf), p_mp)
        return mpmath.matrix([F[i] for i in free])

    def jac(yf):
        J = compiled.jac_mp(0, full(yf), p_mp)
        return mpmath.matrix([[J[i, j] for j in free] for i in free])

    if not free:
        return dataclasses.replace(point, x_mp=tuple(mpmath.mpf(0) for _ in range(n)), residual_mp=mpmath.mpf(0))
    res = newton_mp(fun, jac, point.x[free], dps)
    if not res.converged and throw:
        raise FixedPointError(f"mpmath Newton did not reach {dps} digits (last step {mpmath.nstr(res.last_step, 3)})")
    return dataclasses.replace(point, x_mp=tuple(full(res.y)), residual_mp=res.residual)
