"""Online-SGD ODEs of the soft committee machine, derived from its loss with the Gaussian-expectation engine.

Same steps as the VAE derivation (``_dynamics``): a_k = dL/dlambda_k (grad_{w_k} L = a_k x/sqrt(N)); one-step
increments of R_in = w_k.w*_n/N and Q_ik = w_i.w_k/N to second order in the step, with ||x||^2/N -> 1; N steps per unit
time; expectations over the Gaussian fields (lambda, nu) with covariance [[Q, R], [R^T, T]]. The second layer (step
tau_v/N) drifts at -tau_v E[dL/dv_k]. ``eg`` = E[L], the generalisation error.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import sympy as sp

from ..model._committee import CommitteeMachine
from ._nonlinear_gaussian import nonlinear_expectation

__all__ = ["CommitteeSystem", "derive_committee"]


@dataclasses.dataclass(frozen=True, eq=False)
class CommitteeSystem:
    """Derived ODEs dx/dt = F(x; p) of a committee machine: ``state``, ``rhs``, ``params`` (sorted), ``observables``."""

    machine: CommitteeMachine
    state: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...]
    observables: Mapping[str, sp.Expr]

    def numpy_functions(self):
        """(rhs(y, p) -> array, eg(y, p) -> float), lambdified with numpy."""
        args = list(self.state) + list(self.params)
        f = sp.lambdify(args, list(self.rhs), modules="numpy")
        e = sp.lambdify(args, self.observables["eg"], modules="numpy")
        return (lambda y, p: np.array(f(*y, *p), dtype=float)), (lambda y, p: float(e(*y, *p)))


def derive_committee(machine: CommitteeMachine) -> CommitteeSystem:
    """Derive the online-SGD ODEs of ``machine`` (see the module docstring)."""
    L = machine.loss
    fields = list(machine.fields)
    E = lambda e: nonlinear_expectation(e, fields, machine.covariance)  # noqa: E731
    tau, tau_v = sp.Symbol("tau", real=True), sp.Symbol("tau_v", real=True)
    K, M = machine.K, machine.M_teacher
    a = [sp.diff(L, lk) for lk in machine.lam]
    rhs: dict[sp.Symbol, sp.Expr] = {}
    for i in range(K):
        for k in range(i, K):
            first = E(a[i] * machine.lam[k]) + E(a[k] * machine.lam[i])
            rhs[machine.Q(i, k)] = -tau * first + tau ** 2 * E(a[i] * a[k])
        for n in range(M):
            rhs[machine.R(i, n)] = -tau * E(a[i] * machine.nu[n])
    if machine.train_second_layer:
        for k, vk in enumerate(machine.v):
            rhs[vk] = -tau_v * E(sp.diff(L, vk))
    state = machine.state
    rhs_t = tuple(rhs[s] for s in state)
    obs = {"eg": E(L)}
    free = set().union(*(e.free_symbols for e in rhs_t), *(e.free_symbols for e in obs.values()))
    params = tuple(sorted(free - set(state), key=lambda s: s.name))
    return CommitteeSystem(machine=machine, state=state, rhs=rhs_t, params=params, observables=obs)
