"""Pseudo-arclength continuation of a branch of fixed points F(x; p) = 0 in one parameter (float64, compiled).

Unknowns u = (x_free, p) on the branch's invariant subspace (``_subspaces``): pinned coordinates stay exactly zero.
Predictor: the tangent t, the kernel of [F_x F_p], computed from the bordered system [[F_x F_p], [t_prev^T]] z = e.
Corrector: Newton on [F(u); t^T (u - u_pred)] = 0 (Keller). The step grows or shrinks with the Newton count.

Special points are detected by test functions that change sign between accepted steps and then located by a
secant/bisection (Illinois) search along the arclength:
- ``LP`` (fold): the parameter component of the tangent;
- ``BP`` (branch point inside the subspace): det [[F_x F_p], [t^T]] (the determinant of the extended Jacobian, which
  keeps its sign through a fold and changes it at a simple branch point);
- ``BP`` with a ``block`` (symmetry-breaking branch point): det J_BB for each irreducible diagonal block B of the
  Jacobian transverse to the subspace. One determinant per block, so two blocks that go singular together (the two
  latents of M = 2 at the collapse threshold) are both seen, and an exchange of stability with a branch that leaves
  the subspace is detected although no eigenvalue of the subspace problem crosses;
- ``USER``: an observable minus a target value (e.g. eg = 0.1);
- ``HB?``: the count of unstable eigenvalues changes by two without a determinant sign change (a complex pair
  crossed; reported between two steps, not located).

References: H. B. Keller, "Numerical solution of bifurcation and nonlinear eigenvalue problems" (1977);
W. Govaerts, "Numerical Methods for Bifurcations of Dynamical Equilibria", SIAM (2000), ch. 4-5.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from ..codegen import CompiledSystem
from ..derive import DerivedSystem
from ..errors import InvalidInputError, SymvaeError
from ._fixed_points import FixedPoint, classify_latents, is_physical, _point_kind
from ._context import FLOAT64
from ._newton import Counter, newton, newton_float
from ._subspaces import Block, Subspace, invariant_subspace, zero_candidates
from ._symmetry import symmetry_adapted_blocks
from ._systems import ParameterPoint, as_compiled, positive_mask

__all__ = ["Branch", "SpecialPoint", "ContinuationError", "continue_branch", "switch_branch"]


class ContinuationError(SymvaeError):
    """Raised with ``throw=True`` when a continuation stops before reaching its end."""


@dataclasses.dataclass(frozen=True, eq=False)
class SpecialPoint:
    """A special point detected on a branch.

    Attributes:
        kind: ``"LP"`` (fold), ``"BP"`` (branch point), ``"USER"`` (a condition), ``"HB?"`` (complex pair, unlocated).
        parameter, value: the continuation parameter and its value at the point (float64 accuracy).
        x: the state at the point. index: the branch point after which it lies.
        test: the test function (``"fold"``, ``"bordered"``, ``"block"``, ``"condition:<name>"``, ``"count"``).
        block: for a symmetry-breaking branch point, the Jacobian block that goes singular.
        tangent: the branch tangent (x, p) at the point. subspace: the branch's subspace.
        unstable_before, unstable_after: unstable eigenvalues of the full Jacobian at the neighbouring branch points
            (in the direction of continuation); stabilising: the count decreases with increasing parameter.
        located: False for ``HB?`` (only bracketed).
    """

    kind: str
    parameter: str
    value: float
    x: np.ndarray
    index: int
    test: str
    block: Block | None
    tangent: np.ndarray
    subspace: Subspace
    unstable_before: int
    unstable_after: int
    stabilising: bool | None
    located: bool = True

    def describe(self) -> str:
        what = {"LP": "fold", "BP": "branch point", "USER": "condition", "HB?": "complex pair crossing"}[self.kind]
        where = f" ({self.block.describe()})" if self.block is not None else ""
        return f"{what}{where} at {self.parameter} = {self.value:.12g}"

    def to_dict(self) -> dict:
        return {"type": self.kind, self.parameter: self.value, "parameter": self.parameter, "test": self.test,
                "block": self.block.describe() if self.block is not None else None,
                "block_label": self.block.label if self.block is not None else None,
                "unstable_before": self.unstable_before, "unstable_after": self.unstable_after,
                "stabilising": self.stabilising, "located": self.located, "description": self.describe()}


@dataclasses.dataclass(frozen=True, eq=False)
class Branch:
    """A continued branch of fixed points.

    Attributes:
        parameter: the continuation parameter; params: the values of the others (and the start value).
        p: parameter values along the branch (k,); x: states (k, n).
        eigenvalues: (k, n) complex, each row sorted by decreasing real part; stable: (k,) (None for non-ODE systems).
        physical: (k,) PSD Gram matrix and positive variances; kinds: (k,) kind of each point.
        special_points: detected special points, in the order met.
        subspace: the invariant subspace of the branch.
        status: ``"ok"`` (reached the end of the interval, or left it through a fold), ``"failed"`` (the step size
            underflowed or the corrector diverged), ``"max_steps"``; message: details.
        counts: {"steps", "rejected", "nfev", "njev", "newton_iterations"}.
    """

    system: DerivedSystem
    parameter: str
    params: Mapping[str, float]
    p: np.ndarray
    x: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    physical: np.ndarray
    kinds: tuple[str, ...]
    special_points: tuple[SpecialPoint, ...]
    subspace: Subspace
    status: str
    message: str
    counts: Mapping[str, int]
    compiled: CompiledSystem = dataclasses.field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __len__(self) -> int:
        return len(self.p)

    def _param_matrix(self) -> np.ndarray:
        pp = ParameterPoint(self.system, self.params)
        P = np.repeat(pp.vector[:, None], len(self.p), axis=1)
        P[pp.index(self.parameter)] = self.p
        return P

    def observables(self) -> dict[str, np.ndarray]:
        """``eg``, ``rate``, ... at every branch point."""
        if len(self.p) == 0:
            return {k: np.empty(0) for k in self.system.observables}
        values = self.compiled.observables(0.0, self.x.T, self._param_matrix())
        return {k: np.broadcast_to(np.asarray(v, dtype=float), self.p.shape).copy() for k, v in values.items()}

    def order_parameters(self) -> dict[str, np.ndarray]:
        """Named order parameters along the branch, each of shape (k, ...)."""
        pv = dict(self.params)
        named = self.system.unpack(self.x.T, pv)
        return {k: np.moveaxis(np.asarray(v, dtype=float), -1, 0) for k, v in named.items()}

    @property
    def leading_eigenvalue(self) -> np.ndarray:
        return self.eigenvalues[:, 0] if len(self.p) else np.empty(0, complex)

    def to_dict(self, *, states: bool = True) -> dict:
        out: dict = {"parameter": self.parameter, self.parameter: self.p.tolist(),
                     "stable": [None if s is None else bool(s) for s in self.stable],
                     "physical": self.physical.tolist(), "kind": list(self.kinds),
                     "leading_eigenvalue": [[float(e.real), float(e.imag)] for e in self.leading_eigenvalue]}
        out.update({k: v.tolist() for k, v in self.observables().items()})
        if states:
            out["state"] = {k: v.tolist() for k, v in self.order_parameters().items()}
        out["special_points"] = [s.to_dict() for s in self.special_points]
        out.update({"status": self.status, "message": self.message, **dict(self.counts)})
        return out


class _Problem:
    """F restricted to a subspace, as a function of u = (x_free, p)."""

    def __init__(self, compiled: CompiledSystem, pp: ParameterPoint, parameter: str, subspace: Subspace,
                 counter: Counter, conditions: Mapping[str, tuple[Callable, float]] | None = None):
        self.compiled = compiled
        self.system = compiled.system
        self.pp = pp
        self.k = pp.index(parameter)
        self.parameter = parameter
        self.subspace = subspace
        self.free = np.array(subspace.free, dtype=int)
        self.n = len(self.system.state)
        self.counter = counter
        self.conditions = dict(conditions or {})
        self.blocks = subspace.blocks  # the test functions' blocks (``adapt``)

    def adapt(self, x: np.ndarray) -> None:
        """Test the symmetry-adapted parts of the blocks at the branch's start ``x`` (``symmetry_adapted_blocks``):
        a block that a swap of latents fixing ``x`` maps onto itself is tested as its even and odd parts."""
        self.blocks = symmetry_adapted_blocks(self.system, self.subspace, x,
                                              self.compiled.jac(0.0, x, self.pp.vector))

    def split(self, u: np.ndarray):
        x = np.zeros(self.n)
        x[self.free] = u[:-1]
        p = self.pp.vector.copy()
        p[self.k] = u[-1]
        return x, p

    def join(self, x: np.ndarray, p_value: float) -> np.ndarray:
        return np.append(np.asarray(x, dtype=float)[self.free], p_value)

    def F(self, u):
        x, p = self.split(u)
        self.counter.nfev += 1
        return self.compiled.rhs(0.0, x, p)[self.free]

    def jacobians(self, u):
        """(A = [F_x F_p] on the free coordinates, full dF/dx)."""
        x, p = self.split(u)
        self.counter.njev += 1
        J = self.compiled.jac(0.0, x, p)
        Fp = self.compiled.dparams(0.0, x, p)[:, self.k]
        A = np.column_stack([J[np.ix_(self.free, self.free)], Fp[self.free]])
        return A, J

    def tangent(self, u, border):
        A, J = self.jacobians(u)
        B = np.vstack([A, border])
        rhs = np.zeros(len(u))
        rhs[-1] = 1.0
        try:
            z = np.linalg.solve(B, rhs)
        except np.linalg.LinAlgError:
            # exactly singular: u is (to the last bit) a branch point, where the kernel of A is two-dimensional;
            # its vector closest to the border still continues the branch
            _, _, Vh = np.linalg.svd(A)
            kernel = Vh[-2:] if len(Vh) >= 2 else Vh[-1:]
            z = kernel.T @ (kernel @ np.asarray(border, dtype=float))
            if not np.any(z):
                z = Vh[-1]
        return z / np.linalg.norm(z), A, J

    def correct(self, u_pred, t, *, tol, max_iter=10):
        """Newton on [F(u); t.(u - u_pred)] = 0; returns (u, converged, iterations). From the third step on, a step
        not below half the previous one rejects the correction (not converging quadratically)."""
        local = Counter()  # F and jacobians count their own evaluations
        r = newton(FLOAT64, lambda u: np.append(self.F(u), t @ (u - u_pred)),
                   lambda u: np.vstack([self.jacobians(u)[0], t]), u_pred, xtol=tol, max_iter=max_iter,
                   contraction=0.5, counter=local)
        self.counter.newton += local.newton
        return r.x, r.converged, r.iterations

    # ---------------------------------------------------------------------------------- test functions
    def tests(self, u, t, A, J) -> dict[str, float]:
        out = {"fold": float(t[-1])}
        sign, logdet = np.linalg.slogdet(np.vstack([A, t]))
        out["bordered"] = float(sign * np.exp(min(logdet, 600.0)))
        for i, block in enumerate(self.blocks):
            idx = list(block.indices)
            s, ld = np.linalg.slogdet(block.restrict(J[np.ix_(idx, idx)]))
            out[f"block{i}"] = float(s * np.exp(min(ld, 600.0)))
        if self.conditions:
            x, p = self.split(u)
            obs = None
            for name, (fun, value) in self.conditions.items():
                if fun is None:
                    if obs is None:
                        obs = self.compiled.observables(0.0, x, p)
                    out[f"condition:{name}"] = float(obs[name]) - value
                else:
                    out[f"condition:{name}"] = float(fun(x, p)) - value
        return out


def _spectrum(J: np.ndarray) -> np.ndarray:
    eig = np.linalg.eigvals(J)
    return eig[np.lexsort((-eig.imag, -eig.real))]


def _n_unstable(eig: np.ndarray) -> int:
    scale = 1e-12 * max(1.0, float(np.max(np.abs(eig)))) if len(eig) else 0.0
    return int(np.sum(eig.real > scale))


def continue_branch(system: DerivedSystem | CompiledSystem, start, params: Mapping[str, object], parameter: str,
                    stop: float, *, step: float | None = None, max_step: float | None = None,
                    min_step: float = 1e-10, relative_step: float | None = None, max_steps: int = 2000,
                    tol: float = 1e-11,
                    subspace: Subspace | None = None, direction: np.ndarray | None = None,
                    conditions: Mapping[str, object] | None = None, detect: bool = True,
                    locate: bool = True, throw: bool = False) -> Branch:
    """Continue the branch of fixed points through ``start`` in ``parameter`` up to ``stop``.

    Arguments:
        system: a derived system or a compiled one (autonomous).
        start: a ``FixedPoint``, a state vector or a mapping of order parameters; it is corrected by Newton first.
        params: values of all parameters (``params[parameter]`` is the start value).
        parameter: the continuation parameter. stop: the value to reach.

    Other arguments:
        step, max_step, min_step: initial, largest and smallest arclength step (defaults: 1e-2, 0.1 * (1 + |start -
            stop|), 1e-10). The arclength is measured in (x, p) jointly.
        relative_step: if set, a step changes the parameter by at most this fraction of |p| (geometric steps over
            decades of the parameter).
        max_steps: step budget. tol: corrector tolerance (relative step size).
        subspace: the invariant subspace to continue in (default: the one of the start's exact zeros).
        direction: a vector (x, p) fixing the orientation of the first tangent (default: towards ``stop``).
        conditions: {observable name: target value} or {name: (callable(x, p), value)}: ``USER`` points.
        detect, locate: detect special points; locate them (secant search) or only bracket them.
        throw: raise ``ContinuationError`` if the branch does not reach ``stop`` or leave the interval.

    Returns:
        A ``Branch``.

    Raises:
        InvalidInputError: bad parameter name, a start that is not a fixed point.
        ContinuationError: with ``throw=True`` when the continuation fails.
    """
    compiled = as_compiled(system)
    system = compiled.system
    values = dict(params)
    if isinstance(start, FixedPoint):
        x0 = start.x
        values = {**dict(start.params), **values}
    elif isinstance(start, Mapping):
        x0 = system.pack(start)
    else:
        x0 = np.asarray(start, dtype=float)
    if x0.shape != (len(system.state),):
        raise InvalidInputError(f"the start must have {len(system.state)} entries")
    pp = ParameterPoint(system, values)
    p_start = float(pp.vector[pp.index(parameter)])
    stop = float(stop)
    if not np.isfinite(stop) or stop == p_start:
        raise InvalidInputError(f"the end value of {parameter} must be finite and differ from the start {p_start}")
    counter = Counter()
    sub = subspace or invariant_subspace(system, zero_candidates(x0))
    cond = {}
    for name, spec in (conditions or {}).items():
        if isinstance(spec, tuple):
            cond[name] = (spec[0], float(spec[1]))
        else:
            if name not in system.observables:
                raise InvalidInputError(f"unknown observable {name!r}; known: {', '.join(system.observables)}")
            cond[name] = (None, float(spec))
    prob = _Problem(compiled, pp, parameter, sub, counter, cond)
    positive = positive_mask(system)
    x_start = sub.restrict(x0)
    residual = np.max(np.abs(compiled.rhs(0.0, x_start, pp.vector))) if len(x_start) else 0.0
    if residual > 1e-13 * (1.0 + np.max(np.abs(x_start))):
        # (a start already on the branch is kept: near a branch point Newton at fixed p is ill-conditioned)
        x_start, ok, _ = newton_float(lambda y: compiled.rhs(0.0, y, pp.vector),
                                      lambda y: compiled.jac(0.0, y, pp.vector), x_start, sub.free,
                                      positive=positive, counter=counter)
        moved = float(np.max(np.abs(x_start - x0))) if ok else np.inf
        if not ok or moved > 1e-4 * (1.0 + float(np.max(np.abs(x0)))):
            raise InvalidInputError(f"the start is not (near) a fixed point at {parameter} = {p_start} (Newton "
                                    f"{'moved it by %.3g' % moved if ok else 'did not converge'})")
    prob.adapt(x_start)
    span = abs(stop - p_start)
    h_max = max_step if max_step is not None else 0.1 * (1.0 + span)
    h = min(step if step is not None else 1e-2 * (1.0 + span) ** 0.5, h_max)

    def largest(p_value, t_p=1.0):
        # with relative_step the parameter (not the arclength) advances geometrically
        if relative_step is None:
            return h_max
        return min(h_max, relative_step * (abs(p_value) + 1e-12) / max(abs(t_p), 1e-2))

    h = min(h, largest(p_start))
    lo, hi = min(p_start, stop), max(p_start, stop)

    u = prob.join(x_start, p_start)
    border = np.zeros(len(u))
    if direction is not None:
        d = np.asarray(direction, dtype=float)
        border = np.append(d[:-1][list(sub.free)] if len(d) == len(system.state) + 1 else d[:-1], d[-1])
        border = border / np.linalg.norm(border)
    else:
        border[-1] = np.sign(stop - p_start)
    t, A, J = prob.tangent(u, border)
    if t @ border < 0:
        t = -t

    us, eigs, specials = [u], [_spectrum(J)], []
    psi = prob.tests(u, t, A, J)
    status, message = None, ""
    n_rejected = 0
    steps = 0
    while status is None:
        if steps >= max_steps:
            status, message = "max_steps", f"stopped after {max_steps} steps at {parameter} = {u[-1]:.10g}"
            break
        u_pred = u + h * t
        u_new, ok, its = prob.correct(u_pred, t, tol=tol)
        if ok:
            t_new, A_new, J_new = prob.tangent(u_new, t)
            if t_new @ t < 0:
                t_new = -t_new
            if t_new @ t < 0.9 and h > min_step * 8:  # sharp turn: the step may have jumped to another branch
                ok = False
        if not ok:
            n_rejected += 1
            h *= 0.5
            if h < min_step:
                status = "failed"
                message = (f"the step size underflowed at {parameter} = {u[-1]:.10g} (corrector did not converge; "
                           f"a singular point or the end of the branch)")
            continue
        steps += 1
        eig_new = _spectrum(J_new)
        psi_new = prob.tests(u_new, t_new, A_new, J_new)
        if detect:
            specials += _detect(prob, u, t, psi, eigs[-1], u_new, t_new, psi_new, eig_new, len(us) - 1, h,
                                tol, locate)
        crossed_end = (u_new[-1] - stop) * (u[-1] - stop) <= 0
        u, t, psi = u_new, t_new, psi_new
        us.append(u)
        eigs.append(eig_new)
        if crossed_end:
            status, message = "ok", f"reached {parameter} = {stop:g} in {steps} steps ({n_rejected} rejected)"
        elif not (lo - 1e-12 * (1 + abs(lo)) <= u[-1] <= hi + 1e-12 * (1 + abs(hi))):
            status, message = "ok", f"left the interval at {parameter} = {u[-1]:.10g} (the branch turned back)"
        elif not np.all(np.isfinite(u)) or np.max(np.abs(u)) > 1e8:
            status, message = "failed", f"the branch diverged near {parameter} = {u[-1]:.10g}"
        factor = 1.6 if its <= 2 else 1.25 if its == 3 else 1.0 if its == 4 else 0.6
        h = min(h * factor, largest(u[-1], t[-1]))
    if status == "ok" and message.startswith("reached") and us[-1][-1] != stop:
        # the last point exactly at the end value (Newton in x at fixed p); special points beyond it are dropped
        x_end, p_end = prob.split(us[-1])
        p_end[prob.k] = stop
        x_fix, ok, _ = newton_float(lambda y: compiled.rhs(0.0, y, p_end), lambda y: compiled.jac(0.0, y, p_end),
                                    x_end, sub.free, positive=positive, counter=counter)
        if ok:
            us[-1] = prob.join(x_fix, stop)
            eigs[-1] = _spectrum(compiled.jac(0.0, x_fix, p_end))
        specials = [sp_ for sp_ in specials if lo <= sp_.value <= hi]

    U = np.array(us)
    X = np.zeros((len(U), len(system.state)))
    X[:, sub.free] = U[:, :-1]
    P = U[:, -1]
    E = np.array(eigs)
    stable = np.array([bool(_n_unstable(e) == 0 and (len(e) == 0 or np.max(e.real) < 0)) if system.kind == "ode"
                       else None for e in E], dtype=object)
    pv = pp.values
    physical = np.array([is_physical(system, X[i], {**pv, parameter: P[i]}) for i in range(len(P))])
    kinds = tuple(_point_kind(classify_latents(system, X[i]), bool(physical[i])) for i in range(len(P)))
    counts = {"steps": steps, "rejected": n_rejected, **counter.as_dict()}
    branch = Branch(system=system, parameter=parameter, params={**pv, parameter: p_start}, p=P, x=X, eigenvalues=E,
                    stable=stable, physical=physical, kinds=kinds, special_points=tuple(specials), subspace=sub,
                    status=status, message=message, counts=counts, compiled=compiled)
    if throw and status != "ok":
        raise ContinuationError(message)
    return branch


def _detect(prob: _Problem, u0, t0, psi0, eig0, u1, t1, psi1, eig1, index, h, tol, locate) -> list[SpecialPoint]:
    """Special points between two accepted branch points, located by an Illinois search in the arclength."""
    found = []
    positions = []
    n0, n1 = _n_unstable(eig0), _n_unstable(eig1)
    rising = bool(u1[-1] > u0[-1])
    det_change = False
    for name, v0 in psi0.items():
        v1 = psi1[name]
        if not (np.sign(v0) != np.sign(v1) and v0 != 0):
            continue
        if name == "fold":
            kind, test, block = "LP", "fold", None
        elif name == "bordered":
            kind, test, block = "BP", "bordered", None
            det_change = True
        elif name.startswith("block"):
            kind, test, block = "BP", "block", prob.blocks[int(name[5:])]
            det_change = True
        else:
            kind, test, block = "USER", name, None
        located = _locate(prob, u0, t0, h, name, tol) if locate else (0.5 * (u0 + u1), t0)
        if located is None:
            continue
        u_star, t_star = located
        x_star, _ = prob.split(u_star)
        stabilising = None
        if n0 != n1:
            stabilising = bool((n1 < n0) == rising)
        found.append(SpecialPoint(kind=kind, parameter=prob.parameter, value=float(u_star[-1]), x=x_star,
                                  index=index, test=test, block=block, tangent=t_star, subspace=prob.subspace,
                                  unstable_before=n0, unstable_after=n1, stabilising=stabilising))
        positions.append(u_star)
    if len(found) >= 2:
        # several crossings in one step (e.g. the collapse and the step-size edge a little apart): the counts at the
        # step's ends belong to none of them; count the unstable eigenvalues between consecutive crossings
        order = np.argsort([float(np.linalg.norm(u - u0)) for u in positions])
        found = [found[i] for i in order]
        positions = [positions[i] for i in order]
        counts = [n0]
        for ua, ub in zip(positions, positions[1:]):
            u_mid, ok, _ = prob.correct(0.5 * (ua + ub), t0, tol=tol)
            counts.append(_n_unstable(_spectrum(prob.tangent(u_mid, t0)[2])) if ok else None)
        counts.append(n1)
        for i, s in enumerate(found):
            before, after = counts[i], counts[i + 1]
            if before is None or after is None:
                continue
            found[i] = dataclasses.replace(s, unstable_before=before, unstable_after=after,
                                           stabilising=None if before == after else bool((after < before) == rising))
    if not det_change and abs(n1 - n0) >= 2:
        x_mid, _ = prob.split(0.5 * (u0 + u1))
        found.append(SpecialPoint(kind="HB?", parameter=prob.parameter, value=float(0.5 * (u0[-1] + u1[-1])),
                                  x=x_mid, index=index, test="count", block=None, tangent=t0,
                                  subspace=prob.subspace, unstable_before=n0, unstable_after=n1,
                                  stabilising=bool((n1 < n0) == rising), located=False))
    found.sort(key=lambda s: abs(s.value - u0[-1]))
    return found


def _locate(prob: _Problem, u0, t0, h, name, tol, max_iter: int = 60):
    """The zero of the test function ``name`` between u0 and the next branch point (arclength h along t0).

    The bracket is first narrowed by re-continuing from u0 in steps of h/8 until it is shorter than 1e-7 (1 + |u|):
    on a long step the corrector of an intermediate point may land on another branch through a branch point, which
    would misplace the zero. Then an Illinois (secant) search on u0 + s t0 (corrected), s in (0, h). Returns
    (u, t), or None when the fine continuation does not see the sign change (it was an artefact of a long step).
    """

    def evaluate(u_pred, direction):
        u, ok, _ = prob.correct(u_pred, direction, tol=tol)
        t, A, J = prob.tangent(u, direction)
        if t @ direction < 0:
            t = -t
        return prob.tests(u, t, A, J)[name], u, t, ok

    f0 = evaluate(u0, t0)[0]
    while h > 1e-7 * (1.0 + np.max(np.abs(u0))):
        sub = h / 8
        u, t, f = u0, t0, f0
        for _ in range(12):
            f_new, u_new, t_new, ok = evaluate(u + sub * t, t)
            if not ok:
                break
            if np.sign(f_new) != np.sign(f):
                u0, t0, f0, h = u, t, f, sub
                break
            u, t, f = u_new, t_new, f_new
        else:
            return None
        if not ok:
            break

    def at(s):
        fs, us, ts, _ = evaluate(u0 + s * t0, t0)
        return fs, us, ts

    evaluate_s = at
    a, b = 0.0, h
    fa, ua, ta = evaluate_s(a)
    fb, ub, tb = evaluate_s(b)
    side = 0
    for _ in range(max_iter):
        if fa == fb:
            s = 0.5 * (a + b)
        else:
            s = (a * fb - b * fa) / (fb - fa)
        if not (min(a, b) < s < max(a, b)):
            s = 0.5 * (a + b)
        fs, us, ts = evaluate_s(s)
        if fs == 0 or abs(b - a) <= 1e-13 * (1.0 + np.max(np.abs(us))):
            return us, ts
        if np.sign(fs) == np.sign(fb):
            b, fb, ub, tb = s, fs, us, ts
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a, fa, ua, ta = s, fs, us, ts
            if side == 1:
                fb *= 0.5
            side = 1
    return (ua, ta) if abs(fa) < abs(fb) else (ub, tb)


def switch_branch(branch: Branch, point: SpecialPoint, stop: float | None = None, *, direction: int = 1,
                  step: float | None = None, **kwargs) -> Branch:
    """Continue the branch that crosses ``branch`` at the branch point ``point``.

    For a symmetry-breaking point (``point.block`` set) the new branch leaves the subspace along the kernel of J_BB;
    its subspace is the largest invariant one that excludes the kernel's coordinates. For a branch point inside the
    subspace the new direction is the part of the two-dimensional kernel of [F_x F_p] orthogonal to the old tangent.

    Arguments:
        branch: the branch the point was found on. point: a ``BP`` special point of it.
        stop: end value of the parameter (default: the far end of ``branch``'s interval in the new direction).

    Other arguments:
        direction: +1 or -1, the side of the old branch to try first (the other side is used when only it leads
            towards ``stop``; for a pitchfork both sides are symmetry images). step: the initial offset.
        **kwargs: passed to ``continue_branch``.

    Returns:
        The new ``Branch`` (its first point is the branch point itself).

    Raises:
        InvalidInputError: ``point`` is not a branch point.
        ContinuationError: the corrector falls back onto the old branch or fails.
    """
    if point.kind != "BP":
        raise InvalidInputError(f"cannot switch branches at a {point.kind} point; need a branch point (BP)")
    compiled = branch.compiled
    system = branch.system
    pp = ParameterPoint(system, {**dict(branch.params), point.parameter: point.value})
    k = pp.index(point.parameter)
    x_bp = point.x
    p_vec = pp.vector
    J = compiled.jac(0.0, x_bp, p_vec)
    n = len(system.state)
    old_sub = point.subspace
    t_old = np.zeros(n + 1)
    t_old[list(old_sub.free)] = point.tangent[:-1]
    t_old[-1] = point.tangent[-1]
    if point.block is not None:
        idx = list(point.block.indices)
        _, _, Vh = np.linalg.svd(point.block.restrict(J[np.ix_(idx, idx)]))
        vB = point.block.lift(Vh[-1])
        rest = [i for i in range(n) if i not in idx]
        phi = np.zeros(n)
        phi[idx] = vB
        sol, *_ = np.linalg.lstsq(J[:, rest], -J[:, idx] @ vB, rcond=None)
        phi[rest] = sol
        support = set(np.nonzero(np.abs(phi) > 1e-9 * np.max(np.abs(phi)))[0])
        new_sub = invariant_subspace(system, [i for i in old_sub.zero if i not in support])
        w = np.append(phi, 0.0)
    else:
        free = list(old_sub.free)
        Fp = compiled.dparams(0.0, x_bp, p_vec)[:, k]
        A = np.column_stack([J[np.ix_(free, free)], Fp[free]])
        _, _, Vh = np.linalg.svd(A)
        kernel = Vh[-2:]
        t_loc = np.append(point.tangent[:-1], point.tangent[-1])
        w_loc = kernel[0] - (kernel[0] @ t_loc) * t_loc
        if np.linalg.norm(w_loc) < 0.1:
            w_loc = kernel[1] - (kernel[1] @ t_loc) * t_loc
        w = np.zeros(n + 1)
        w[free] = w_loc[:-1]
        w[-1] = w_loc[-1]
        new_sub = old_sub
    w = w - (w @ t_old) * t_old
    w = w / np.linalg.norm(w)
    counter = Counter()
    prob = _Problem(compiled, pp, point.parameter, new_sub, counter)
    u_bp = prob.join(x_bp, point.value)
    w_loc = np.append(w[list(new_sub.free)], w[-1])
    w_loc /= np.linalg.norm(w_loc)
    scale = 1.0 + np.max(np.abs(x_bp))

    def leave(sign):
        """Corrected first point on the new branch on side ``sign`` of the old one (None if it falls back)."""
        h = step if step is not None else 1e-3 * scale
        for _ in range(12):
            u_new, ok, _ = prob.correct(u_bp + sign * h * w_loc, sign * w_loc, tol=1e-12)
            if ok:
                x_new, _ = prob.split(u_new)
                off_old = (np.max(np.abs(x_new[list(old_sub.zero)])) if old_sub.zero
                           else np.max(np.abs(u_new - u_bp)))
                if off_old > 1e-3 * h:
                    return u_new
            h *= 0.5
        return None

    sides = (direction, -direction)
    candidates = [(sgn, leave(sgn)) for sgn in sides]
    candidates = [(sgn, u) for sgn, u in candidates if u is not None]
    if not candidates:
        raise ContinuationError(f"could not leave the old branch at the {point.describe()}")
    if stop is not None:
        ahead = [(sgn, u) for sgn, u in candidates if (u[-1] - point.value) * (stop - point.value) > 0]
        if not ahead:
            side = "above" if candidates[0][1][-1] > point.value else "below"
            raise ContinuationError(f"the branch that bifurcates at the {point.describe()} exists only {side} it, "
                                    f"not towards {point.parameter} = {stop:g}")
        sign, u_new = ahead[0]
    else:
        sign, u_new = candidates[0]
        lo, hi = float(np.min(branch.p)), float(np.max(branch.p))
        stop = hi if u_new[-1] >= point.value else lo
        if stop == point.value:
            stop = lo if stop == hi else hi
    w = sign * w
    x_new, _ = prob.split(u_new)
    values = {**dict(branch.params), point.parameter: float(u_new[-1])}
    new = continue_branch(compiled, x_new, values, point.parameter, stop, subspace=new_sub,
                          direction=np.append(w[:-1], w[-1]), step=step, **kwargs)
    # prepend the branch point itself
    eig_bp = _spectrum(J)
    first_kind = new.kinds[0] if new.kinds else "other"
    return dataclasses.replace(
        new, p=np.concatenate([[point.value], new.p]), x=np.vstack([x_bp, new.x]),
        eigenvalues=np.vstack([eig_bp, new.eigenvalues]) if len(new.p) else eig_bp[None],
        stable=np.concatenate([[False if system.kind == "ode" else None], new.stable]),
        physical=np.concatenate([[is_physical(system, x_bp, pp.values)], new.physical]),
        kinds=(first_kind,) + new.kinds,
        special_points=tuple(dataclasses.replace(s, index=s.index + 1) for s in new.special_points))
