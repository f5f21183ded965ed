"""Invariant coordinate subspaces of a derived system F(x; p) and the block structure of its Jacobian on them.

A set Z of state coordinates is *invariant* when F_i(x; p) = 0 for every i in Z as soon as x_Z = 0, identically in the
other coordinates and the parameters (checked symbolically). For the linear VAE these are the symmetry subspaces
m = m_tilde = 0 (no signal overlap), a collapsed latent (all its overlaps zero), and so on. On such a subspace the
Jacobian is block-triangular: its spectrum is that of the free block J_ff and of the irreducible diagonal blocks of
J_ZZ (strongly connected components of its sparsity graph). Each of those blocks has its own determinant, which is the
test function that detects a symmetry-breaking branch point even when several blocks go singular together.
"""
from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import Sequence

import numpy as np
import sympy as sp
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ..derive import DerivedSystem
from ..derive._nonlinear_gaussian import has_rule_nodes
from ._systems import evaluate_or_nan

__all__ = ["Block", "Subspace", "invariant_subspace", "zero_candidates", "coordinate_roles"]

_CACHE: "weakref.WeakKeyDictionary[DerivedSystem, dict]" = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class Block:
    """An irreducible diagonal block of the Jacobian on an invariant subspace.

    Attributes:
        indices: state indices of the block (into ``system.state``).
        names: their symbol names.
        label: ``"signal"`` (contains an overlap with the signal, m or m_tilde), ``"norm"`` (the self-overlaps
            Q_kk, Q_tilde_kk, R_kk of one latent), ``"cross"`` (overlaps between latents) or ``"other"``.
        latent: the latent (0-based) the block belongs to, when it belongs to one.
        basis: None, or the block restricted to a subspace of its coordinates: columns E (each a tuple of small
            integers, one per block coordinate) spanning a subspace that J_BB maps into itself (a symmetry's
            eigenspace at a point the symmetry fixes, ``_symmetry.symmetry_adapted_blocks``), so that the block's
            spectrum there is that of E^T J_BB E (``restrict``) together with the other parts'.
        part: what the restriction is, for messages (e.g. "odd under the swap of latents 1, 2").
    """

    indices: tuple[int, ...]
    names: tuple[str, ...]
    label: str
    latent: int | None
    basis: tuple[tuple[int, ...], ...] | None = None
    part: str | None = None

    def describe(self) -> str:
        who = f" of latent {self.latent + 1}" if self.latent is not None else ""
        part = f", the part {self.part}" if self.part else ""
        return f"{self.label} block{who} ({', '.join(self.names)}{part})"

    def restrict(self, J_BB):
        """E^T J_BB E for a restricted block (J_BB itself otherwise): a numpy array or a SymPy matrix, as given."""
        if self.basis is None:
            return J_BB
        if isinstance(J_BB, sp.MatrixBase):
            E = sp.Matrix(self.basis).T
            return E.T * J_BB * E
        E = np.array(self.basis, dtype=float).T
        return E.T @ np.asarray(J_BB) @ E

    def lift(self, w: np.ndarray) -> np.ndarray:
        """A vector of the restricted coordinates as one of the block's (E w; w itself without a restriction)."""
        if self.basis is None:
            return np.asarray(w)
        return np.array(self.basis, dtype=float).T @ np.asarray(w)


@dataclasses.dataclass(frozen=True, eq=False)
class Subspace:
    """An invariant coordinate subspace {x_Z = 0} of a derived system.

    Attributes:
        zero: the pinned coordinates Z (state indices).
        free: the remaining coordinates.
        blocks: the irreducible diagonal blocks of J_ZZ restricted to the subspace (empty when Z is empty).
    """

    system: DerivedSystem
    zero: tuple[int, ...]
    free: tuple[int, ...]
    blocks: tuple[Block, ...]

    def restrict(self, x: np.ndarray) -> np.ndarray:
        """A copy of ``x`` with the pinned coordinates set to exactly zero."""
        x = np.array(x, dtype=float)
        x[list(self.zero)] = 0.0
        return x

    @functools.cached_property
    def substitution(self) -> dict[sp.Symbol, sp.Expr]:
        return {self.system.state[i]: sp.Integer(0) for i in self.zero}

    def block_jacobian(self, block: Block) -> sp.Matrix:
        """The symbolic diagonal block J_BB on the subspace (a function of the free coordinates and parameters), entry
        by entry (``_pinned_derivative``), without the system's full Jacobian."""
        idx = list(block.indices)
        return sp.Matrix([[_pinned_derivative(self.system, self.zero, i, j) for j in idx] for i in idx])


def coordinate_roles(system: DerivedSystem) -> dict[int, tuple[str, tuple[int, ...]]]:
    """For each state index, the order parameter it belongs to and its matrix position (0-based)."""
    cache = _CACHE.setdefault(system, {})
    if "roles" in cache:
        return cache["roles"]
    roles: dict[int, tuple[str, tuple[int, ...]]] = {}
    try:
        mats = system.table.matrices()
    except Exception:  # a system whose model has no symbol table (not expected for the linear VAE)
        mats = {}
    position = {}
    for name, template in mats.items():
        if isinstance(template, sp.MatrixBase):
            for i in range(template.shape[0]):
                for j in range(template.shape[1]):
                    position.setdefault(template[i, j], (name, (i, j)))
        elif isinstance(template, tuple):
            for i, s in enumerate(template):
                position.setdefault(s, (name, (i,)))
        else:
            position.setdefault(template, (name, ()))
    for block, symbols in system.blocks.items():
        for s in symbols:
            k = system.state.index(s)
            roles[k] = position.get(s, (block, ()))
    cache["roles"] = roles
    return roles


def _label(system: DerivedSystem, indices: Sequence[int]) -> tuple[str, int | None]:
    roles = coordinate_roles(system)
    parts = [roles.get(i, ("other", ())) for i in indices]
    names = {p[0] for p in parts}
    latents = {p[1][0] for p in parts if p[0] in ("m", "m_tilde", "Q", "Q_tilde", "R", "D") and p[1]}
    latents |= {p[1][1] for p in parts if p[0] in ("Q", "Q_tilde", "R") and p[1]}
    latent = next(iter(latents)) if len(latents) == 1 else None
    if names & {"m", "m_tilde"}:
        return "signal", latent
    if names <= {"Q", "Q_tilde", "R", "D"} and latent is not None:
        return "norm", latent
    if names <= {"Q", "Q_tilde", "R"}:
        return "cross", None
    return "other", latent


def _is_zero(expr: sp.Expr) -> bool:
    return expr == 0 or sp.expand(expr) == 0


def _random_state(system: DerivedSystem, rng: np.random.Generator, config: Sequence[str]) -> np.ndarray:
    """A state built from random weights; config[k] in {"collapsed", "zero-signal", "free"} for latent k."""
    roles = coordinate_roles(system)
    try:
        M, Ms = system.model.M, system.model.M_star
        tied = system.model.vae.tied
    except AttributeError:
        return rng.normal(size=len(system.state))
    shared = Ms + 2 * M
    K = shared + 2 * M
    Wstar = np.eye(K)[:, :Ms]
    W = np.zeros((K, M))
    Wt = np.zeros((M, K))
    for k, c in enumerate(config):
        s, st = np.exp(rng.uniform(np.log(0.2), np.log(2.5))), np.exp(rng.uniform(np.log(0.1), np.log(1.5)))
        if c == "free":
            W[:shared, k] = rng.normal(size=shared) * s / np.sqrt(shared)
            Wt[k, :shared] = rng.normal(size=shared) * st / np.sqrt(shared)
            # a start near the spikes, so that learned points are reached from a fraction of the starts
            W[:Ms, k] += rng.normal(size=Ms) * s
            Wt[k, :Ms] += rng.normal(size=Ms) * st
        elif c == "zero-signal":
            W[shared + 2 * k:shared + 2 * k + 2, k] = rng.normal(size=2) * s
            Wt[k, shared + 2 * k:shared + 2 * k + 2] = rng.normal(size=2) * st
    if tied:
        Wt = W.T.copy()
    named = {"m": W.T @ Wstar, "m_tilde": Wt @ Wstar, "Q": W.T @ W, "Q_tilde": Wt @ Wt.T, "R": W.T @ Wt.T,
             "D": rng.uniform(0.05, 1.5, size=M), "sigma2": rng.uniform(0.3, 2.0)}
    x = np.empty(len(system.state))
    for k, (name, pos) in roles.items():
        if name in named:
            arr = np.asarray(named[name])
            x[k] = arr[pos] if pos else float(arr)
        else:
            x[k] = rng.normal()
    return x


def _moving_numerically(system: DerivedSystem, zero: frozenset) -> set[int]:
    """Coordinates i of ``zero`` whose F_i is clearly non-zero at a random point with x_zero = 0 (so not zero
    identically: no symbolic expansion needed), for systems with numerical-rule nodes, whose expansion takes minutes
    (erf on both sides at M = 2); empty for other systems, or if the value is not finite."""
    if system.kind != "ode" or not has_rule_nodes(system.rhs):
        return set()
    from ..codegen import compile_system
    y = _random_state(system, np.random.default_rng(1), ("free",) * system.model.M)  # random weights' overlaps
    y[list(zero)] = 0.0
    p = np.random.default_rng(1).uniform(0.2, 1.0, size=len(system.params))
    value = np.asarray(evaluate_or_nan(compile_system(system).rhs, y, p, y.shape), dtype=float)
    if not np.all(np.isfinite(value)):
        return set()
    scale = 1.0 + float(np.max(np.abs(value)))
    return {i for i in zero if abs(value[i]) > 1e-9 * scale}


def _pinned_derivative(system: DerivedSystem, zero: Sequence[int], i: int, j: int) -> sp.Expr:
    """dF_i/dx_j on the subspace x_zero = 0 (j in zero): F_i with the other pinned coordinates set to zero first, which
    drops most of its terms before the derivative (the full symbolic Jacobian of a rule-node system takes about a
    minute, its substitution two more). Kept per system: the block pattern asks for every entry, the augmented
    system of a branch point again for its block's."""
    cache = _CACHE.setdefault(system, {})
    key = ("pinned", frozenset(zero), i, j)
    if key not in cache:
        xj = system.state[j]
        reduced = system.rhs[i].xreplace({system.state[k]: sp.Integer(0) for k in zero if k != j})
        cache[key] = reduced.diff(xj).xreplace({xj: sp.Integer(0)}) if reduced.has(xj) else sp.Integer(0)
    return cache[key]


def invariant_subspace(system: DerivedSystem, candidates: Sequence[int]) -> Subspace:
    """The largest invariant coordinate subspace whose pinned set lies inside ``candidates``.

    Arguments:
        system: the derived system.
        candidates: state indices that are zero at the point of interest.

    Returns:
        The ``Subspace`` (its ``zero`` may be empty), with the block structure of the Jacobian on it. Results are
        cached per system.
    """
    cache = _CACHE.setdefault(system, {})
    zero = frozenset(int(i) for i in candidates)
    key = ("subspace", zero)
    if key in cache:
        return cache[key]
    rhs = system.rhs
    while zero:
        sub = {system.state[i]: sp.Integer(0) for i in zero}
        moving = _moving_numerically(system, zero)
        keep = frozenset(i for i in zero if i not in moving and _is_zero(rhs[i].xreplace(sub)))
        if keep == zero:
            break
        zero = keep
    if ("subspace", zero) in cache:
        cache[key] = cache[("subspace", zero)]
        return cache[key]
    zero_t = tuple(sorted(zero))
    free = tuple(i for i in range(len(system.state)) if i not in zero)
    blocks: list[Block] = []
    if zero_t:
        n = len(zero_t)
        pattern = np.array([[0 if _is_zero(_pinned_derivative(system, zero_t, i, j)) else 1 for j in zero_t]
                            for i in zero_t])
        ncomp, labels = connected_components(csr_matrix(pattern), directed=True, connection="strong")
        for c in range(ncomp):
            members = tuple(zero_t[i] for i in range(n) if labels[i] == c)
            label, latent = _label(system, members)
            blocks.append(Block(members, tuple(system.state[i].name for i in members), label, latent))
        blocks.sort(key=lambda b: b.indices)
    result = Subspace(system, zero_t, free, tuple(blocks))
    cache[key] = cache[("subspace", zero)] = result
    return result


def zero_candidates(x: np.ndarray, *, rtol: float = 1e-9) -> tuple[int, ...]:
    """State indices whose value is zero up to ``rtol`` times the size of the state."""
    x = np.asarray(x, dtype=float)
    scale = 1.0 + float(np.max(np.abs(x))) if x.size else 1.0
    return tuple(int(i) for i in np.nonzero(np.abs(x) <= rtol * scale)[0])
