"""Augmented systems G(u) = 0 for singular points, with their symbolic Jacobian, as generated numpy/mpmath code.

The unknowns u always include the parameter p. On an invariant subspace {x_Z = 0} (``_subspaces``), with free
coordinates x_f:

* ``block`` (minimally augmented, symmetry-breaking branch point): G = [F_f(x_f, p); det J_BB(x_f, p)], where J_BB is
  an irreducible diagonal block of the Jacobian transverse to the subspace; n_f + 1 unknowns. Regular at a simple
  eigenvalue of J_BB crossing zero (which is how an exchange of stability with a branch leaving the subspace shows);
* ``block-null`` (for blocks larger than ``DET_MAX`` where a symbolic determinant is not worth it):
  G = [F_f; J_BB v; v_j - 1] with the null vector v as extra unknowns;
* a symmetry-adapted part of a block (``Block.basis`` E, ``_symmetry.symmetry_adapted_blocks``) stands for
  E^T J_BB E in both: the modes of exchangeable latents against each other, a multiple eigenvalue of J_BB, are a
  simple one of its odd part;
* ``fold``: G = [F_f; J_ff v; v_j - 1] (the standard extended system of a limit point);
* ``condition``: G = [F_f; h(x, p) - target] for an observable or any expression h (``target`` is a runtime
  parameter).

SymPy builds G and dG/du exactly; the code generator writes numpy (float64, for following a threshold in a second
parameter) and mpmath (arbitrary precision) functions into the content-hash cache, like ``compile_system``.
"""
from __future__ import annotations

import dataclasses
import functools
import threading

import sympy as sp

from .._cache import content_key
from ..codegen import FunctionSpec, generate_source, load_cached_module, system_key
from ..codegen._rules import rule_level as rule_level_context
from ..derive import DerivedSystem
from ..derive import symbolic_jacobian as jacobian
from ..errors import InvalidInputError
from ._subspaces import Block, Subspace

__all__ = ["AugmentedSystem", "augmented_system", "DET_MAX", "resolve_nonsmooth"]

#: Largest block whose determinant is formed symbolically (larger blocks use the null-vector formulation).
DET_MAX = 4

_LOCK = threading.Lock()
_LOADED: dict[str, "AugmentedSystem"] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class AugmentedSystem:
    """A generated augmented system.

    Attributes:
        kind: ``block``, ``block-null``, ``fold`` or ``condition``.
        system, subspace, parameter: where it comes from. block: the singular block (block kinds).
        unknowns: the SymPy unknowns (free coordinates, the parameter, then null-vector entries).
        rest: the runtime parameters (all other parameters; ``target`` last for a condition).
        equations, jacobian: symbolic G and dG/du.
        module: generated functions ``G_numpy``, ``G_jac_numpy``, ``G_mp``, ``G_jac_mp`` with signature (t, u, rest).
    """

    kind: str
    system: DerivedSystem
    subspace: Subspace
    parameter: str
    block: Block | None
    unknowns: tuple[sp.Symbol, ...]
    rest: tuple[sp.Symbol, ...]
    equations: tuple[sp.Expr, ...]
    jacobian: sp.Matrix
    module: object
    key: str

    @property
    def n_state(self) -> int:
        return len(self.subspace.free)

    def G_mp(self, u, rest):
        return self.module.G_mp(0, u, rest)

    def J_mp(self, u, rest):
        return self.module.G_jac_mp(0, u, rest)

    def G_float(self, u, rest):
        return self.module.G_numpy(0.0, u, rest)

    def J_float(self, u, rest):
        return self.module.G_jac_numpy(0.0, u, rest)


def resolve_nonsmooth(expr: sp.Expr, values: dict) -> sp.Expr:
    """Replace Abs and Max by the branch active at ``values`` (symbol -> float), so the expression is smooth nearby."""
    def active(e):
        if isinstance(e, sp.Abs):
            inner = e.args[0]
            sign = 1 if float(inner.subs(values)) >= 0 else -1
            return sign * inner
        if isinstance(e, sp.Max):
            vals = [float(a.subs(values)) for a in e.args]
            return e.args[vals.index(max(vals))]
        if isinstance(e, sp.Min):
            vals = [float(a.subs(values)) for a in e.args]
            return e.args[vals.index(min(vals))]
        return e

    previous = None
    while previous != expr:
        previous = expr
        expr = expr.replace(lambda e: isinstance(e, (sp.Abs, sp.Max, sp.Min)), active)
    return expr


def augmented_system(system: DerivedSystem, subspace: Subspace, parameter: str, kind: str, *,
                     block: Block | None = None, null_index: int = 0, condition: sp.Expr | None = None,
                     rule_level: int = 1) -> AugmentedSystem:
    """Build (or load from the cache) an augmented system; see the module docstring for the kinds.

    Arguments:
        system: the derived system. subspace: the invariant subspace of the branch.
        parameter: the parameter that becomes an unknown.
        kind: ``block`` / ``fold`` / ``condition`` (``block`` turns into ``block-null`` for blocks > ``DET_MAX``).

    Other arguments:
        block: the singular block (``block``). null_index: which null-vector entry is normalised to one.
        condition: the expression h(x, p) (``condition``), smooth near the solution (see ``resolve_nonsmooth``).
        rule_level: the numerical rules of the system's rule nodes at this refinement (``codegen._rules.rule_level``;
            2: half the steps, the check of a threshold that cannot be certified).

    Raises:
        InvalidInputError: inconsistent arguments.
    """
    names = [p.name for p in system.params]
    if parameter not in names:
        raise InvalidInputError(f"{parameter!r} is not a parameter of this system ({', '.join(names)})")
    if kind in ("block", "block-null"):
        if block is None:
            raise InvalidInputError("a block branch point needs its block")
        if len(block.basis if block.basis is not None else block.indices) > DET_MAX:
            kind = "block-null"
    elif kind not in ("fold", "condition"):
        raise InvalidInputError(f"unknown augmented-system kind {kind!r}")
    if kind == "condition" and condition is None:
        raise InvalidInputError("a condition needs its expression")
    tag = sp.srepr((kind, subspace.zero, block.indices if block else None, parameter, null_index,
                    condition if condition is not None else 0))
    if block is not None and block.basis is not None:
        tag += f"/restricted to {block.basis}"
    if rule_level != 1:
        tag += f"/rule level {rule_level}"
    key = content_key("augmented", system_key(system), tag)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
    p_sym = system.params[names.index(parameter)]
    built = _build(system, subspace, p_sym, kind, block, null_index, condition)
    unknowns, rest, eqs, jac = built

    def source() -> str:
        specs = [FunctionSpec("G", list(eqs), backends=("numpy", "mpmath")),
                 FunctionSpec("G_jac", jac, backends=("numpy", "mpmath"))]
        header = f"augmented system ({kind}) of {system.kind} system {system_key(system)} in {parameter}"
        with rule_level_context(rule_level):
            return generate_source(specs, unknowns, rest, header=header)

    module, _ = load_cached_module(key, source, prefix="symvae_augmented")
    aug = AugmentedSystem(kind=kind, system=system, subspace=subspace, parameter=parameter, block=block,
                          unknowns=tuple(unknowns), rest=tuple(rest), equations=tuple(eqs), jacobian=jac,
                          module=module, key=key)
    with _LOCK:
        _LOADED[key] = aug
    return aug


@functools.lru_cache(maxsize=64)
def _block_det(system: DerivedSystem, subspace: Subspace, block: Block) -> sp.Expr:
    return sp.expand(block.restrict(subspace.block_jacobian(block)).det(method="berkowitz"))


def _build(system, subspace, p_sym, kind, block, null_index, condition):
    sub = subspace.substitution
    free = list(subspace.free)
    x_f = [system.state[i] for i in free]
    F_f = [system.rhs[i].xreplace(sub) for i in free]
    rest = [p for p in system.params if p != p_sym]
    unknowns = x_f + [p_sym]
    if kind == "block":
        eqs = F_f + [_block_det(system, subspace, block)]
    elif kind in ("block-null", "fold"):
        if kind == "block-null":
            Jsub = block.restrict(subspace.block_jacobian(block))
        else:
            Jsub = system.jacobian.extract(free, free).xreplace(sub)
        v = [sp.Symbol(f"nullvec_{k + 1}", real=True) for k in range(Jsub.shape[0])]
        Jv = list(Jsub * sp.Matrix(v))
        eqs = F_f + Jv + [v[null_index] - 1]
        unknowns = unknowns + v
    else:
        target = sp.Symbol("target_value", real=True)
        eqs = F_f + [condition.xreplace(sub) - target]
        rest = rest + [target]
    jac = jacobian(eqs, unknowns)
    return unknowns, rest, eqs, jac
