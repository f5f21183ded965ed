"""``DerivedSystem``: a derived system F(x; p) with its symbols, observables and lazily computed derivatives.

The same object serves the online-SGD ODEs (dx/dt = F) and, later, saddle-point systems (F = 0).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from typing import Callable, Mapping

import numpy as np
import sympy as sp

from .._cache import CacheEntry, content_key
from ..errors import InvalidInputError
from ..model import Model, SymbolTable, t

__all__ = ["DerivedSystem", "cached_derivation", "derivation_key"]


@dataclasses.dataclass(frozen=True, eq=False)
class DerivedSystem:
    """A derived system of equations.

    Attributes:
        kind: ``"ode"`` (rhs is dx/dt) or ``"saddle"`` (rhs = 0 at a solution).
        model: the model definition it was derived from.
        state: the unknowns, in vector order.
        rhs: one SymPy expression per state symbol.
        params: runtime parameters (all other free symbols except ``t``), sorted by name.
        observables: named expressions of state and parameters (``eg``, ``rate``, ``distortion`` ...).
        blocks: order-parameter name -> the state symbols it consists of.
        notes: what is approximate in the derivation (e.g. expectations computed by a numerical rule, with its
            accuracy); empty when every expression is exact.
        schedules: time-dependent parameters kept out of the derivation: (symbol of ``base``, its expression in t
            and the parameters); ``rhs`` and ``observables`` show them substituted, while the compiled system runs
            ``base``'s compiled code with the expressions as runtime programs (``symvae.codegen._schedule``).
        base: the derivation the schedules are substituted into (None without schedules).
    """

    kind: str
    model: Model
    state: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...]
    observables: Mapping[str, sp.Expr]
    blocks: Mapping[str, tuple[sp.Symbol, ...]]
    notes: tuple[str, ...] = ()
    schedules: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    base: "DerivedSystem | None" = None

    @functools.cached_property
    def key(self) -> str:
        """Content hash of the derived expressions (kind, state, rhs, params, observables); computed once per object
        and stored with it (pickled derivations carry it, so a warm load never re-serialises the expressions)."""
        text = sp.srepr((self.kind, self.state, self.rhs, self.params, tuple(sorted(self.observables.items()))))
        return content_key("system", text)

    @functools.cached_property
    def table(self) -> SymbolTable:
        return SymbolTable(self.model)

    @functools.cached_property
    def time_dependent(self) -> bool:
        """Whether t appears in the right-hand sides (computed once: a traversal of every expression, and the
        numerics ask at every call of ``as_compiled``)."""
        return any(e.has(t) for e in self.rhs)

    @functools.cached_property
    def _derivatives(self) -> sp.Matrix:
        """[dF/dx | dF/dp], from one pass over the shared subexpressions of the right-hand sides (``_diff``)."""
        from ._diff import jacobian
        return jacobian(self.rhs, tuple(self.state) + tuple(self.params))

    @functools.cached_property
    def jacobian(self) -> sp.Matrix:
        """dF_i/dx_j, symbolic."""
        return self._derivatives[:, :len(self.state)]

    @functools.cached_property
    def param_jacobian(self) -> sp.Matrix:
        """dF_i/dp_k, symbolic."""
        return self._derivatives[:, len(self.state):]

    def with_schedules(self, model: Model, schedules) -> "DerivedSystem":
        """This system with each (symbol, expression) of ``schedules`` substituted (``model``: the model with the
        schedules); the parameters become the free symbols left, as a derivation of ``model`` would give."""
        rep = dict(schedules)
        rhs = tuple(e.xreplace(rep) for e in self.rhs)
        obs = {k: e.xreplace(rep) for k, e in self.observables.items()}
        free = set().union(*(e.free_symbols for e in rhs), *(e.free_symbols for e in obs.values()))
        params = tuple(sorted(free - set(self.state) - {t}, key=lambda s: s.name))
        return DerivedSystem(kind=self.kind, model=model, state=self.state, rhs=rhs, params=params, observables=obs,
                             blocks=self.blocks, notes=self.notes, schedules=tuple(schedules), base=self)

    def equations(self) -> dict[sp.Symbol, sp.Expr]:
        return dict(zip(self.state, self.rhs))

    # ------------------------------------------------------------------ packing between arrays and named blocks
    def param_vector(self, values: Mapping[str, float], *, dtype=float) -> np.ndarray:
        """Order a {name: value} mapping as the parameter vector; every parameter must be given."""
        missing = [p.name for p in self.params if p.name not in values]
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(missing)}")
        return np.array([values[p.name] for p in self.params], dtype=dtype)

    def pack(self, named: Mapping[str, object], *, dtype=float) -> np.ndarray:
        """Build the state vector from order parameters given as nested lists/arrays (shapes as in ``unpack``)."""
        T = self.table
        mats = T.matrices()
        values: dict[sp.Symbol, float] = {}
        for name, symbols in self.blocks.items():
            if name not in named:
                raise InvalidInputError(f"initial state lacks {name!r}")
            template = mats[name]
            arr = np.asarray(named[name], dtype=object)
            if name == "sigma2":
                arr = arr.reshape(())
                values[symbols[0]] = arr.item()
                continue
            shape = (len(template),) if isinstance(template, tuple) else template.shape
            if arr.shape != shape:
                raise InvalidInputError(f"{name} must have shape {list(shape)}, got {list(arr.shape)}")
            for idx in np.ndindex(*shape):
                sym = template[idx] if not isinstance(template, tuple) else template[idx[0]]
                if sym in values and name in ("Q", "Q_tilde") and values[sym] != arr[idx]:
                    raise InvalidInputError(f"{name} must be symmetric")
                values[sym] = arr[idx]
        return np.array([values[s] for s in self.state], dtype=dtype)

    def unpack(self, y: np.ndarray, param_values: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """Order parameters as arrays (m: MxM*, m_tilde: MxM*, Q, Q_tilde, R: MxM, D: M; sigma2 scalar if present).

        ``y`` may carry trailing axes (e.g. time). Aliased blocks (tied weights) and fixed parameters (fixed D) are
        filled in; the latter need ``param_values``.
        """
        y = np.asarray(y)
        lookup = {s: y[i] for i, s in enumerate(self.state)}
        pv = dict(param_values or {})
        T = self.table
        out: dict[str, np.ndarray] = {}

        def value(sym):
            if sym in lookup:
                return lookup[sym]
            if isinstance(sym, sp.Symbol) and sym.name in pv:
                return np.full(y.shape[1:], float(pv[sym.name]))
            return np.full(y.shape[1:], float(sym))  # a number (sigma^2 = 1)

        for name, template in T.matrices().items():
            if name == "sigma2":
                if T.sigma2 in lookup or T.model.vae.decoder_variance != "unit":
                    out[name] = value(T.sigma2)
                continue
            if isinstance(template, tuple):
                out[name] = np.stack([value(s) for s in template])
            else:
                out[name] = np.stack([np.stack([value(template[i, j]) for j in range(template.shape[1])])
                                      for i in range(template.shape[0])])
        return out


_MEMO: dict[str, DerivedSystem] = {}


@functools.cache
def derivation_fingerprint() -> str:
    """Hash of the code that derives (``symvae/derive``, ``symvae/model``): part of every derivation's cache key, so
    a change to how equations are derived never reuses a pickle written by older code."""
    package = pathlib.Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for folder in ("derive", "model"):
        for path in sorted((package / folder).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def derivation_key(kind: str, model: Model) -> str:
    """The cache key of the ``kind`` derivation of ``model`` (its content hash and the deriving code's)."""
    return content_key(kind, model.key, derivation_fingerprint())


def cached_derivation(kind: str, model: Model, derive: Callable[[Model], DerivedSystem], *,
                      result_type: type = DerivedSystem) -> DerivedSystem:
    """``derive(model)``, reused from memory or from the on-disk cache (keyed by ``derivation_key``: ``kind``, the
    model's content hash and the deriving code's fingerprint); a missing or corrupt entry, or one that is not a
    ``result_type``, is derived again and rewritten."""
    key = derivation_key(kind, model)
    if key in _MEMO and _MEMO[key].model == model:  # equal content but another name re-derives (labels differ)
        return _MEMO[key]
    entry = CacheEntry(key)
    system = entry.get_pickle("system.pickle")
    if not isinstance(system, result_type) or system.model != model:
        system = derive(model)
        if isinstance(system, DerivedSystem):
            system.key  # hash once, before pickling, so every later load has it
        try:
            entry.put_pickle("system.pickle", system)
        except OSError:  # a read-only cache only costs speed
            pass
    _MEMO[key] = system
    return system
