"""Statics thresholds located on the derived replica saddle-point equations alone (no random-matrix closed form):
the BBP detection threshold alpha_c, the eg peak in alpha, the optimal beta and a first-order collapse in beta, as roots
of square augmented systems,
refined by Newton in mpmath and proven by the Krawczyk test (``numerics._certify``).

The saddle-point system F(x; theta) = 0 (``derive_statics``, x = (m, m~, Q, Q~, R, D, K, H)) is degenerate: K/H
directions acting on the null space of the field covariance leave every order parameter unchanged (and with a fixed
encoder variance, no decay and alpha < 1, the encoder's freedom outside the span of the data moves Q~ and m~ only).
They are fixed, not solved for: at a float64 point of the branch as many coordinates as the (equilibrated) Jacobian
has null directions are frozen at their (exact decimal) float64 values, chosen by pivoted QR of the null basis with
the K/H conjugates preferred (``freeze_null_directions``), and as many
equations are kept as the rank (pivoted QR of the rows). The kept rows F_r form a square system in the free
coordinates x_f whose Jacobian is non-singular on the branch; the frozen values are parameters of it, enclosed
exactly like the others. The Krawczyk enclosure is a proof for that square system (a unique root in the box); the
left-out equations are then evaluated in interval arithmetic on that enclosure, which proves |F| <= 10^-(digits + 5)
for each of them at the root (an exact zero of the left-out equations is not something a numerical test of an
overdetermined system can prove: that rests on the degeneracy being structural).

- Detection (alpha_c): the teacher-sign symmetry (m, m~) -> -(m, m~) makes the m-equations odd and every other one
  even, so m = m~ = 0 is invariant and the Jacobian there is block diagonal. The informed branch bifurcates from the
  uninformed one (m = 0, latent active on the bulk) where the odd block is singular:
  F_r(x_f; alpha) = 0 on m = 0 and det dF_m/dm = 0, unknowns (x_f, alpha). That determinant depends on the position
  along the degenerate K/H directions, so the frozen K/H values are taken from a point of the informed branch near
  m = 0: the informed branch reaches m = 0 on that slice at alpha_c. It does not depend on beta or the decay (the
  BBP transition is a property of the data), so it is located at beta = eta/2 without weight decay.
- eg peak and optimal beta: stationarity of eg along the branch, by implicit differentiation,
  F_r(x_f; t) = 0, dF_r/dx_f v + dF_r/dt = 0, d eg/dx_f . v + d eg/dt = 0, unknowns (x_f, v, t) with t = alpha or
  beta. The eg peak is searched on the uninformed branch (m = 0, eg = Q + rho) below alpha_c, followed down from
  alpha_c; if eg rises into alpha_c there, the peak is the cusp at alpha_c (the detection threshold). The informed
  branch above alpha_c is not followed: in the shipped models eg has no interior maximum there (it falls from the
  cusp, and at most rises again into a collapse or towards alpha -> infinity; tests/test_statics_thresholds_eg_peak.py
  scans every statics variant over a parameter grid and checks the located peak against a dense closed-form curve).
  The optimal beta is searched along the branch of the global minimiser at beta = eta/2 (m > 0 chosen: |m| = m,
  checked on the whole Krawczyk box).
- First-order collapse in beta (``first_order_collapse``; the continuous one, a branch point, is
  ``_thresholds.collapse_threshold_saddle``): F_r(x_f; beta) = 0 and f(x; beta) = f_collapsed(beta), unknowns
  (x_f, beta).

The float64 starts come from ``solve_statics`` without the closed form (``compare=False``) at a few points, then
Gauss--Newton continuation along the branch (minimum-norm steps, tangent predictor); the located point is checked
to be the global minimiser there. With M > 1 latents or M* > 1 spikes the thresholds are the top latent's on the
strongest spike, located on the model of that latent and spike alone (``top_latent_model``) and checked against the
whole model's global minimiser.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Mapping

import mpmath
import numpy as np
import scipy.linalg
import scipy.optimize
import sympy as sp

from ..errors import InvalidInputError
from ..model import Model
from ._params import check_params
from ._replica import solve_statics, statics_system

#: extrema of eg within this (relative to max(1, |eg|)) of each other are one extremum attained at several values of
#: the parameter (both threshold routes)
TIE = 1e-9

__all__ = ["StaticsThresholdError", "saddle_threshold", "SADDLE_THRESHOLDS"]

SADDLE_THRESHOLDS = ("detection", "eg_peak", "optimal_beta")


class StaticsThresholdError(InvalidInputError):
    """The threshold does not exist at these parameters (e.g. no learning phase at any beta)."""


def _decimal(v) -> str:
    """The exact decimal text of a parameter value (a float's shortest repr is what the user typed)."""
    if isinstance(v, mpmath.mpf):
        return mpmath.nstr(v, mpmath.mp.dps + 5, strip_zeros=True)
    return repr(float(v))


# ------------------------------------------------------------------------------------------------ float64 branch
def _lstsq(J: np.ndarray, b: np.ndarray, rcond: float) -> np.ndarray:
    """Minimum-norm least-squares solution of J x = b on the equilibrated system (rows, then columns scaled to unit
    max): the singular-value cut ``rcond`` then separates the degenerate K/H directions from genuinely small ones.
    Unscaled, a strongly informed branch with a learned decoder variance (D ~ 3e-4 beside H ~ 12) has genuine
    singular values of 1e-13 relative, which the cut dropped, and Gauss--Newton stalled at |F| ~ 1e-7 (the
    corrector's fallback, ``_Branch.correct``)."""
    r = np.maximum(np.abs(J).max(axis=1), 1e-300)
    Jr = J / r[:, None]
    c = np.maximum(np.abs(Jr).max(axis=0), 1e-300)
    return np.linalg.lstsq(Jr / c[None, :], b / r, rcond=rcond)[0] / c


class _Branch:
    """The saddle system of a model in float64 on the full state or on the m = 0 subspace, at parameters ``values``
    (alpha included) with one of them (``theta``) varied."""

    def __init__(self, model: Model, values: Mapping[str, float], theta: str):
        self.S = S = statics_system(model)
        if S.table.M != 1 or S.table.M_star != 1:
            raise InvalidInputError("the saddle-system thresholds handle one latent and one spike (M = M* = 1)")
        self.values, self.theta = dict(values), theta
        sysd = S.system
        self.names = [s.name for s in sysd.state]
        self.odd = np.array([S.index[s] for b in ("m", "m_tilde") for s in sysd.blocks.get(b, ())], dtype=int)
        self.even = np.setdiff1d(np.arange(S.n), self.odd)
        self.m_idx = S.index[sysd.blocks["m"][0]]
        self.q_idx = S.index[sysd.blocks["Q"][0]]
        self.rho = float(values[[r.name for r in S.table.rho][0]])

    def p(self, t: float) -> np.ndarray:
        return np.array([float(t) if n == self.theta else float(self.values[n]) for n in self.S.param_names])

    def eg(self, y) -> float:
        return float(y[self.q_idx] - 2 * math.sqrt(self.rho) * abs(y[self.m_idx]) + self.rho)

    def correct(self, y, t, zero_m: bool, tol: float = 1e-13, steps: int = 40):
        """Gauss--Newton (minimum-norm steps) onto the branch at theta = t; None if it does not converge. Full steps
        first (on a strongly informed branch with a learned decoder variance the residual rises for one step before
        it converges quadratically, which the damped iteration's monotone test refuses), then damped ones; first
        on the plain Jacobian, then on the equilibrated one (``_lstsq``; needed there too). The plain steps come
        first because their minimum-norm choice in the degenerate K/H directions keeps the branch on slices where
        the mpmath Newton of the augmented systems converges in a few steps (equilibrated, detection at rho = 2,
        eta = 3 took 8 s instead of 0.2 s)."""
        order = np.setdiff1d(np.arange(self.S.n), self.S.kh)
        for scaled in (False, True):
            out = self._gauss_newton(y, t, zero_m, tol, 12, False, scaled)
            if out is not None and np.all(np.abs(out[order] - y[order]) <= 0.25 * (np.abs(y[order]) + 0.1)):
                return out  # full steps stay near the start in the order parameters: not another branch
            out = self._gauss_newton(y, t, zero_m, tol, steps, True, scaled)
            if out is not None:
                return out
        return None

    def _gauss_newton(self, y, t, zero_m: bool, tol: float, steps: int, damped: bool, scaled: bool):
        y = np.array(y, dtype=float)
        idx = self.even if zero_m else np.arange(self.S.n)
        if zero_m:
            y[self.odd] = 0.0
        p = self.p(t)
        F = self.S.F(y, p)[idx]
        norm = float(np.max(np.abs(F)))
        for _ in range(steps):
            if not math.isfinite(norm):
                return None
            if norm < tol * max(1.0, np.max(np.abs(y))):
                return y
            J = self.S.J(y, p)[np.ix_(idx, idx)]
            dy = _lstsq(J, -F, 1e-10) if scaled else np.linalg.lstsq(J, -F, rcond=1e-10)[0]
            if not damped:
                y = y.copy()
                y[idx] += dy
                F = self.S.F(y, p)[idx]
                norm = float(np.max(np.abs(F)))
                continue
            step = 1.0
            while step > 1e-3:  # damped: the degenerate directions make full steps overshoot far from the branch
                trial = y.copy()
                trial[idx] += step * dy
                F_t = self.S.F(trial, p)[idx]
                n_t = float(np.max(np.abs(F_t)))
                if math.isfinite(n_t) and n_t < norm:
                    break
                step /= 2
            else:
                return None
            y, F, norm = trial, F_t, n_t
        return None

    def tangent(self, y, t, zero_m: bool) -> np.ndarray:
        """dy/dtheta (minimum norm) at a point of the branch."""
        idx = self.even if zero_m else np.arange(self.S.n)
        k = self.S.param_names.index(self.theta)
        p = self.p(t)
        h = 1e-7 * max(1.0, abs(t))
        pp, pm = p.copy(), p.copy()
        pp[k] += h
        pm[k] -= h
        Ft = (self.S.F(y, pp) - self.S.F(y, pm))[idx] / (2 * h)
        out = np.zeros(self.S.n)
        out[idx] = np.linalg.lstsq(self.S.J(y, p)[np.ix_(idx, idx)], -Ft, rcond=1e-12)[0]
        return out

    def odd_det(self, y, t) -> float:
        J = self.S.J(y, self.p(t))
        return float(np.linalg.det(J[np.ix_(self.odd, self.odd)]))

    def follow(self, y, t0, t1, zero_m: bool, steps: int = 40):
        """Natural continuation from (y, t0) to t1 in geometric steps of at most log(t1/t0)/``steps``: [(t, y)]. A
        step whose corrector fails is halved (down to 1/64 of the nominal step; with fixed D and no decay the
        branch bends at small beta where the nominal step failed, short of an eg minimum) and grows back after a
        success; the path stops where even the smallest step fails."""
        out = [(t0, y)]
        total = math.log(t1 / t0)
        nominal = total / steps
        h = nominal
        done = 0.0
        while abs(done) < abs(total) * (1 - 1e-12):
            h = math.copysign(min(abs(h), abs(total - done)), total)
            t_prev, y_prev = out[-1]
            t = t0 * math.exp(done + h)
            y_new = self.correct(y_prev + (t - t_prev) * self.tangent(y_prev, t_prev, zero_m), t, zero_m)
            if y_new is None:
                if abs(h) <= abs(nominal) / 64:
                    break
                h /= 2
                continue
            out.append((float(t), y_new))
            done += h
            h = math.copysign(min(2 * abs(h), abs(nominal)), total)
        return out


def top_latent_model(model: Model, params: Mapping[str, object]):
    """The model with its first latent and its strongest spike alone (M = M* = 1; everything else unchanged), its
    parameters (the strongest spike's strength as ``rho_1`` of a per-spike model; the others dropped), and the eg
    the other spikes add when nothing learns them (their strengths: eg sums over spikes). Returns
    (model, params, eg offset).

    The saddle-system thresholds of a model with M > 1 latents or M* > 1 spikes are those of its top latent (the
    first, as in the closed form) on its strongest spike: on the subspace where no latent overlaps another spike and
    the other latents are collapsed, the saddle-point equations are this model's, up to constants. They are located
    on its saddle system and checked against the global minimiser of the whole model: detection and collapse must be
    bracketed by it (``_check_detection``, ``_check_collapse``; latents on an eigenvalue equal to the top one's
    collapse with it), an eg peak or optimal beta must have every other latent collapsed there (``_check_full``)."""
    reduced = model if model.M == 1 and model.M_star == 1 else dataclasses.replace(
        model, vae=dataclasses.replace(model.vae, M=1), data=dataclasses.replace(model.data, M_star=1))
    rho_names = [r.name for r in statics_system(model).table.rho]
    values = {n: float(params[n]) for n in rho_names if n in params}
    if len(values) < len(set(rho_names)):  # the thresholds' own check names what is missing
        return reduced, dict(params), 0.0
    strengths = [values[n] for n in rho_names]
    top = int(np.argmax(strengths))
    out = {k: v for k, v in params.items() if k not in rho_names}
    out[[r.name for r in statics_system(reduced).table.rho][0]] = params[rho_names[top]]
    return reduced, out, float(sum(strengths) - strengths[top])


def _size(model: Model) -> str:
    return (f"{model.M} latent{'s' if model.M > 1 else ''}, {model.M_star} spike{'s' if model.M_star > 1 else ''}")


def _active_text(active: list[int]) -> str:
    """'latent 2 is' / 'latents 2, 3 are' (numbers of the active latents)."""
    return f"latent{'s' if len(active) > 1 else ''} {', '.join(map(str, active))} {'are' if len(active) > 1 else 'is'}"


def _check_full(full: Model, values: Mapping[str, float], theta: str, t: float, eg: float, what: str) -> None:
    """For M > 1 or M* > 1: the global minimiser of the whole model at theta = t has the eg of the top latent alone
    (``eg``, the unlearnt spikes' strengths included), i.e. every other latent collapsed; otherwise the top-latent
    reduction does not describe the model there."""
    if full.M == 1 and full.M_star == 1:
        return
    r = _global(full, values, theta, t)
    if not r.ok:
        raise StaticsThresholdError(f"the whole model's saddle point at {theta} = {t:.10g} ({what}) was not found: "
                                    f"{r.message}")
    active = [k + 2 for k, ph in enumerate(r.latent_phases[1:]) if ph != "collapsed"]
    if active or abs(float(r.observables["eg"]) - eg) > 1e-7 * (1 + abs(eg)):
        why = f"{_active_text(active)} active there" if active else "its eg differs from the top latent's"
        raise StaticsThresholdError(f"at {theta} = {t:.10g} ({what}) the whole model's global minimiser is not its "
                                    f"top latent alone ({why}): the saddle-system route, which works on the top "
                                    f"latent, does not apply (--method closed-form)")


def _global(model: Model, values: Mapping[str, float], theta: str, t: float):
    """The global minimiser of the replica free energy at theta = t, from the derived equations alone."""
    vals = {**values, theta: float(t)}
    alpha = vals.pop("alpha")
    return solve_statics(model, vals, alpha, compare=False, throw=False)


# ------------------------------------------------------------------------------------------------ augmented systems
_AUGMENTED: dict[str, tuple] = {}


def _split(S, y: np.ndarray, p: np.ndarray, idx: np.ndarray):
    """(frozen state indices, kept equation indices) removing the degenerate K/H directions at y (on the subspace
    ``idx`` of state and equations)."""
    J = S.J(y, p)[np.ix_(idx, idx)]
    # equilibrated as in the float64 solver (K grows like alpha while H - I shrinks like 1/alpha): unscaled, a genuine
    # singular value ~1e-7 next to ~1e3 at alpha = 400 would pass for a null direction
    J = J * np.maximum(np.abs(y[idx]), 1.0)
    J = J / np.maximum(np.abs(J).max(axis=1), 1e-300)[:, None]
    _, sv, Vt = np.linalg.svd(J)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    null = Vt[rank:].T
    kh_local = np.array([i for i, g in enumerate(idx) if g in set(S.kh.tolist())], dtype=int)
    frozen_local = freeze_null_directions(null, kh_local, np.arange(len(idx)))
    free_local = [i for i in range(len(idx)) if i not in set(frozen_local)]
    _, _, rows = scipy.linalg.qr(J[:, free_local].T, pivoting=True)
    rows = sorted(rows[:len(free_local)].tolist())
    return [int(idx[i]) for i in frozen_local], [int(idx[i]) for i in rows]


def freeze_null_directions(null: np.ndarray, preferred: np.ndarray, allowed: np.ndarray) -> list[int]:
    """Coordinates to fix so that the null directions ``null`` (orthonormal columns) of a degenerate system are
    removed, among the ``allowed`` ones. The null space is split into the directions that move only ``preferred``
    coordinates (the K/H conjugates: changing them changes no order parameter) and the rest; the former are removed
    by fixing conjugates (pivoted QR of their conjugate rows), the latter by fixing order parameters they move
    (pivoted QR of their other rows). A direction of the second kind: with no decay on the encoder and alpha < 1 the
    encoder is free outside the span of the data, which moves Q~ and m~ (fixed D) or m~ with conjugates 1e-4 of it
    (decay on W only); fixing a conjugate there left the system singular (Newton stalled at |F| ~ 1e-14 .. 1e-19)."""
    k = null.shape[1]
    if not k:
        return []
    allowed = np.asarray(allowed, dtype=int)
    pref = allowed[np.isin(allowed, preferred)]
    other = allowed[~np.isin(allowed, preferred)]
    pure, moving = null, null[:, :0]
    if len(other):
        _, sv, vt = np.linalg.svd(null[other], full_matrices=True)
        # directions with an order-parameter component (the columns have norm 1): O(1) where the encoder is free
        # (|Q~| = 1.0, |m~| = 1.0); a conjugate direction computed at rho/eta = 36 has 5e-6 of rounding there, which
        # at a threshold of 1e-6 froze m and left the detection system singular
        moves = int(np.sum(sv > 1e-3))
        pure, moving = null @ vt[moves:].T, null @ vt[:moves].T
    frozen: list[int] = []
    if pure.shape[1]:
        _, _, piv = scipy.linalg.qr(pure[pref].T, pivoting=True)
        frozen += [int(i) for i in pref[piv[:pure.shape[1]]]]
    if moving.shape[1]:
        _, _, piv = scipy.linalg.qr(moving[other].T, pivoting=True)
        frozen += [int(i) for i in other[piv[:moving.shape[1]]]]
    return sorted(frozen)


def _augmented(model: Model, kind: str, theta: str, zero_m: bool, frozen: list[int], rows: list[int]):
    """The square augmented system (unknowns, equations, rest symbols, mp F, mp J, index of theta, sign symbols),
    cached per model and structure."""
    key = "|".join([model.key, kind, theta, str(zero_m), ",".join(map(str, frozen)), ",".join(map(str, rows))])
    if key in _AUGMENTED:
        return _AUGMENTED[key]
    S = statics_system(model)
    sysd = S.system
    state, rhs = list(sysd.state), list(sysd.rhs)
    odd_syms = [s for b in ("m", "m_tilde") for s in sysd.blocks.get(b, ())]
    zero = {s: 0 for s in odd_syms} if zero_m else {}
    t_sym = [p for p in sysd.params if p.name == theta][0]
    frozen_syms = [state[i] for i in frozen]
    space = [s for s in state if not (zero_m and s in odd_syms)]
    free = [s for s in space if s not in frozen_syms]
    Fr = [rhs[i].xreplace(zero) for i in rows]
    m_sym = sysd.blocks["m"][0]
    positive = []
    if kind == "detection":
        odd_rows = [rhs[state.index(s)] for s in odd_syms]
        Jodd = sp.Matrix([[sp.diff(e, v).xreplace(zero) for v in odd_syms] for e in odd_rows])
        unknowns = free + [t_sym]
        eqs = Fr + [sp.expand(Jodd.det())]
    elif kind == "first-order":  # equal free energies of the learned saddle and the collapsed one
        f = sysd.observables["free_energy"]
        collapsed = {s: 0 for b in ("m", "m_tilde", "Q", "Q_tilde", "R") for s in sysd.blocks.get(b, ())}
        collapsed.update({s: 1 for s in sysd.blocks.get("D", ())})  # as solve_statics' collapsed point
        f_c = f.xreplace(collapsed)
        if f_c.free_symbols & set(state):
            raise InvalidInputError("the collapsed free energy depends on the conjugates: no first-order collapse "
                                    "on the saddle system")
        if f.has(sp.Abs):
            f = f.replace(sp.Abs, lambda a: a)  # on the learned branch m > 0 (checked on the Krawczyk box)
            positive = [m_sym]
        unknowns = free + [t_sym]
        eqs = Fr + [f - f_c]
    else:  # stationarity of eg along the branch
        eg = sysd.observables["eg"].xreplace(zero)
        if not zero_m:
            eg = eg.replace(sp.Abs, lambda a: a)  # on the branch m > 0 (checked on the Krawczyk box)
            positive = [m_sym]
        v = [sp.Symbol(f"v__{s.name}", real=True) for s in free]
        tang = sp.Matrix(Fr).jacobian(free) * sp.Matrix(v) + sp.Matrix(Fr).diff(t_sym)
        slope = sum((sp.diff(eg, s) * vi for s, vi in zip(free, v)), sp.Integer(0)) + sp.diff(eg, t_sym)
        unknowns = free + v + [t_sym]
        eqs = Fr + list(tang) + [slope]
    rest = sorted(set().union(*(e.free_symbols for e in eqs)) - set(unknowns), key=lambda s: s.name)
    jac = sp.Matrix(eqs).jacobian(unknowns)
    F = sp.lambdify(unknowns + rest, eqs, modules="mpmath")
    J = sp.lambdify(unknowns + rest, jac, modules="mpmath")
    every = [e.xreplace(zero) for s, e in zip(state, rhs) if not (zero_m and s in odd_syms)]
    full = sp.lambdify(unknowns + rest, every, modules="mpmath")  # every equation of the (sub)system, dropped rows too
    dropped = [rhs[i].xreplace(zero) for i, s in enumerate(state) if i not in set(rows)
               and not (zero_m and s in odd_syms)]
    out = (unknowns, eqs, rest, F, J, jac, len(unknowns) - 1, [unknowns.index(s) for s in positive], key, full,
           dropped)
    _AUGMENTED[key] = out
    return out


def _newton(F, J, x0, rest, dps: int, max_iter: int = 60):
    """Newton in mpmath at dps + 10 digits to max|F| < 10^-(dps + 5): chord steps first (``_chord``), then damped
    Newton from wherever they stop. Stops early when it stalls: no step along the Newton direction lowers max|F|, or
    six steps in a row do not halve it (a singular system: near a double root Newton gains a bit per step and cannot
    reach the target; it used to run its 60 steps of up to 30 halvings each, 8 s per start). Returns (x, residual)."""
    with mpmath.workdps(dps + 10):
        x = [mpmath.mpf(v) for v in x0]
        target = mpmath.mpf(10) ** (-(dps + 5))
        x, Fv, norm = _chord(F, J, x, rest, target)
        slow = 0
        for _ in range(max_iter):
            if norm < target or slow >= 6:
                break
            dx = mpmath.lu_solve(mpmath.matrix(J(*x, *rest)), -Fv)
            step = mpmath.mpf(1)
            while True:
                trial = [xi + step * d for xi, d in zip(x, dx)]
                F_trial = mpmath.matrix(F(*trial, *rest))
                n_trial = mpmath.norm(F_trial, mpmath.inf)
                if n_trial < norm:
                    break
                step /= 2
                if step < mpmath.mpf(2) ** -30:
                    return [+v for v in x], +norm
            slow = slow + 1 if n_trial > norm / 2 else 0
            x, Fv, norm = trial, F_trial, n_trial
        return [+v for v in x], +norm


def _chord(F, J, x, rest, target, max_iter: int = 12):
    """Chord (simplified Newton) steps x <- x - J0^-1 F(x) with J0 the float64 Jacobian at the start, factorised once:
    from a float64 point each step gains about as many digits as the start had (the error contracts by
    ~ |J0^-1 (J0 - J(x*))| ~ 1e-12), at the cost of one mpmath evaluation of F and a float64 solve, instead of an
    mpmath Jacobian and LU per Newton step. The residual is rescaled before the float64 solve (no underflow at
    hundreds of digits). Stops at ``target`` or as soon as a step does not shrink max|F| tenfold. Returns
    (x, F(x) as an mpmath column, max|F|)."""
    Fv = mpmath.matrix(F(*x, *rest))
    norm = mpmath.norm(Fv, mpmath.inf)
    try:
        with mpmath.workdps(20):
            J0 = np.array(mpmath.matrix(J(*x, *rest)).tolist(), dtype=float)
        if not np.all(np.isfinite(J0)):
            return x, Fv, norm
        lu = scipy.linalg.lu_factor(J0, check_finite=False)
    except (ValueError, ZeroDivisionError, TypeError, np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return x, Fv, norm
    for _ in range(max_iter):
        if norm < target or norm == 0:
            break
        scaled = np.array([float(v / norm) for v in Fv])
        dx = scipy.linalg.lu_solve(lu, scaled, check_finite=False)
        if not np.all(np.isfinite(dx)):
            break
        trial = [xi - norm * mpmath.mpf(float(d)) for xi, d in zip(x, dx)]
        F_trial = mpmath.matrix(F(*trial, *rest))
        n_trial = mpmath.norm(F_trial, mpmath.inf)
        if not n_trial < norm / 10:
            break
        x, Fv, norm = trial, F_trial, n_trial
    return x, Fv, norm


def _certify(aug, center, rest_texts, digits: int):
    """(interval of theta as decimal strings, certified, why): Krawczyk on the augmented system, box half-width
    10^-(digits + 5) relative, parameters and frozen values enclosed exactly."""
    from ..numerics._certify import interval_functions, krawczyk, residual_bound
    unknowns, eqs, rest, _, _, jac, k, positive, key, _, dropped = aug
    try:
        G, Jiv, shape = interval_functions("saddle-" + hashlib.sha1(key.encode()).hexdigest(), unknowns, rest, eqs,
                                           jac)
    except ValueError as exc:
        return None, False, str(exc)
    nonzero = (lambda *a: [a[i] for i in positive]) if positive else None
    with mpmath.workdps(digits + 25):
        cert = krawczyk(G, Jiv, shape, [mpmath.mpf(c) for c in center], rest_texts, radius_digits=digits + 5,
                        nonzero=nonzero)
        if not cert.certified:
            return None, False, cert.message
        message = cert.message
        if dropped:
            # the equations left out of the square system, bounded on the proven enclosure of its root
            try:
                Gd, _, _ = interval_functions("saddle-dropped-" + hashlib.sha1(key.encode()).hexdigest(), unknowns,
                                              rest, dropped, None)
                bound = residual_bound(Gd, cert.enclosure, rest_texts)
            except (ValueError, ZeroDivisionError, TypeError) as exc:
                return None, False, f"{message}; the left-out equations could not be bounded on it ({exc})"
            what = f"{len(dropped)} equation{'s' if len(dropped) != 1 else ''} left out of the square system"
            if not bound <= mpmath.mpf(10) ** -(digits + 5):
                return None, False, f"{message}; the {what} are only bounded by {mpmath.nstr(bound, 3)} on it"
            message += f"; the {what}: |F| <= {mpmath.nstr(bound, 3)} proven on it"
        lo, hi = cert.enclosure[k]
        pad = mpmath.mpf(10) ** -(digits + 11)
        lo_t = mpmath.nstr(lo - abs(lo) * pad, digits + 12, strip_zeros=False)
        hi_t = mpmath.nstr(hi + abs(hi) * pad, digits + 12, strip_zeros=False)
    return (lo_t, hi_t), True, message


# ------------------------------------------------------------------------------------------------ float64 location
def _uninformed_start(br: _Branch, model: Model, values: Mapping[str, float], alpha: float):
    """A point of the uninformed branch (m = 0, latent active) at ``alpha``: the global minimiser there, projected on
    m = 0 and corrected on that subspace (the informed minimiser above alpha_c lies near the uninformed branch only
    through its Q; the projection is a start, not an answer). None if there is none."""
    r = _global(model, values, "alpha", alpha)
    if not r.ok:
        return None
    y = br.correct(r.y, alpha, True)
    if y is None or not y[br.q_idx] > 1e-9:
        return None
    return y


def _detection_start(model: Model, values: Mapping[str, float], alpha_range=(1e-4, 1e4)):
    """(branch, y, alpha): a point of the informed branch close to where it meets m = 0 (float64), found by
    following the informed global minimiser down in alpha with shrinking steps. Its frozen K/H values define the
    slice on which the pitchfork is located: the informed branch reaches m = 0 on that slice at alpha_c (the odd
    block's determinant on m = 0 depends on the K/H position in the degenerate directions, and is zero at alpha_c
    on the slices the informed branch passes through)."""
    br = _Branch(model, values, "alpha")
    start = None
    for a in (1.0, 10.0, 100.0, 1e3, 1e4):
        r = _global(model, values, "alpha", a)
        if r.ok and abs(float(r.y[br.m_idx])) > 1e-7 and r.y[br.q_idx] > 1e-9:
            start = (a, np.array(r.y, dtype=float))
            break
    if start is None:
        raise StaticsThresholdError(f"no informed saddle point for alpha up to {alpha_range[1]:g}: the detection "
                                    f"threshold lies above")
    t, y = start
    if y[br.m_idx] < 0:
        y[br.odd] *= -1
    step = longest = math.log(1.05)
    while step > 1e-4 and t > alpha_range[0]:
        t_new = t * math.exp(-step)
        y_new = br.correct(y, t_new, False)
        if y_new is None or not y_new[br.m_idx] > 0 or abs(y_new[br.m_idx]) < 1e-9 or y_new[br.q_idx] <= 0:
            step /= 2
            continue
        t, y = t_new, y_new
        step = min(2 * step, longest)  # grows back: a step halved far from alpha_c cost thousands of corrections
    if t <= alpha_range[0]:
        raise StaticsThresholdError(f"the informed branch continues below alpha = {alpha_range[0]:g}")
    return br, y, t


def _extremum_on(br: _Branch, path, sign: int):
    """(y, t, others) of the extremum of eg (sign +1: maximum) at the interior samples of ``path`` [(t, y)]: every
    interior local extremum of the samples is refined by a bounded scalar search along the branch; those within
    ``TIE`` of the best are one extremum attained at several t (eg depends on beta only through the decoder norm,
    which can pass its optimal value twice), of which the smallest t is returned and the others are ``others``
    (ascending). None if the best sample is at an end of the path."""
    if len(path) < 3:
        return None
    vals = [-sign * br.eg(y) for _, y in path]
    if int(np.argmin(vals)) in (0, len(path) - 1):
        return None
    found = []
    for k in range(1, len(path) - 1):
        if vals[k] <= vals[k - 1] and vals[k] <= vals[k + 1]:
            point = _refine_extremum(br, path, k, sign)
            if point is not None:
                found.append(point)
    if not found:
        return None
    best = min(v for _, _, v in found)
    ties = sorted((t, y) for y, t, v in found if v - best <= TIE * max(1.0, abs(best)))
    return ties[0][1], ties[0][0], [t for t, _ in ties[1:]]


def _refine_extremum(br: _Branch, path, k: int, sign: int):
    """(y, t, -sign eg) at the extremum of eg between the samples k - 1 and k + 1 of ``path``, by a bounded scalar
    search along the branch (tangent predictor, corrector); None if the corrector fails there."""
    (t_lo, _), (t_k, y_k), (t_hi, _) = path[k - 1], path[k], path[k + 1]
    zero_m = abs(float(y_k[br.m_idx])) < 1e-9
    cache = {}
    slope = br.tangent(y_k, t_k, zero_m)

    def value(t):
        y = br.correct(y_k + (t - t_k) * slope, t, zero_m)  # tangent predictor: plain corrections fail at 2% steps
        if y is None:
            return math.inf
        cache[t] = y
        return -sign * br.eg(y)

    lo, hi = min(t_lo, t_hi), max(t_lo, t_hi)
    with np.errstate(invalid="ignore"):  # a failed corrector is inf, which the parabolic step turns into nan
        opt = scipy.optimize.minimize_scalar(value, bounds=(lo, hi), method="bounded",
                                             options={"xatol": 1e-11 * t_k})
    t = float(opt.x)
    y = cache[t] if t in cache else br.correct(y_k + (t - t_k) * slope, t, zero_m)
    return None if y is None else (y, t, -sign * br.eg(y))


def _follow_active(br: _Branch, y, t0, t1, zero_m: bool, ratio: float = 1.02):
    """The branch from t0 towards t1 while the latent stays active (Q > 0)."""
    steps = int(abs(math.log(t1 / t0)) / math.log(ratio)) + 1
    path = br.follow(y, t0, t1, zero_m, steps=steps)
    out = []
    for t, yy in path:
        if not yy[br.q_idx] > 1e-10:
            break
        out.append((t, yy))
    return out


def _check_global(model, values, theta, br: _Branch, y, t, what: str, full: Model, full_values,
                  offset: float) -> None:
    """The located branch point is the global minimiser of the free energy there (``solve_statics``), of the top
    latent's model and (M > 1) of the whole one."""
    r = _global(model, values, theta, t)
    if not r.ok or abs(br.eg(r.y) - br.eg(y)) > 1e-7 * (1 + abs(br.eg(y))):
        raise StaticsThresholdError(f"the stationary point of eg found on the saddle system at {theta} = {t:.10g} "
                                    f"({what}) is not on the global minimiser there")
    _check_full(full, full_values, theta, t, br.eg(y) + offset, what)


def _check_detection(full: Model, values: Mapping[str, float], a_c: float) -> str:
    """For M > 1 or M* > 1: the whole model's global minimiser is uninformed at 0.9 alpha_c and informed at 1.1
    alpha_c (its latents' overlaps with the spikes). Returns a note for the message ("" for M = M* = 1); raises if the
    whole model contradicts the bracket. Where the whole model's solver fails (strong spikes at alpha ~ 1e-3) the
    check is not made and the note says so."""
    if full.M == 1 and full.M_star == 1:
        return ""
    for factor, informed in ((0.9, False), (1.1, True)):
        r = _global(full, values, "alpha", a_c * factor)
        if not r.ok:
            return (f"; the whole model ({_size(full)}) was not checked: its solver failed at alpha = {factor} "
                    f"alpha_c")
        m = float(np.max(np.abs(r.order["m"])))
        if (m > 1e-6) != informed:
            raise StaticsThresholdError(f"the whole model's global minimiser at alpha = {factor} alpha_c is "
                                        f"{'informed' if m > 1e-6 else 'uninformed'}: the top latent's detection "
                                        f"threshold {a_c:.10g} does not bracket its own")
    return f"; the whole model ({_size(full)}) is uninformed at 0.9 alpha_c and informed at 1.1 alpha_c"


def _check_collapse(full: Model, values: Mapping[str, float], beta_name: str, below: float, beta_c: float) -> str:
    """For M > 1 or M* > 1: the whole model's global minimiser has an active latent at 0.99 beta_c (or at ``below``,
    a learned point of the top latent's branch, if that is lower) and is collapsed at 1.001 beta_c. Other latents may
    be active below too (several latents on one eigenvalue, e.g. all on the bulk edge below the BBP threshold,
    collapse together). Not at ``below`` itself: the branch is followed until Q is 1e-4 of its start, 3e-5 below
    beta_c, where the whole model's solver can no longer tell the learned saddle from the collapsed one. Returns a
    note for the message; raises if the whole model contradicts the bracket or its solver fails there."""
    if full.M == 1 and full.M_star == 1:
        return ""
    below = min(below, 0.99 * beta_c)
    for beta, collapsed in ((below, False), (1.001 * beta_c, True)):
        r = _global(full, values, beta_name, beta)
        if not r.ok:  # unlike detection, which latent collapses last depends on the model (fixed D_k): no check,
            # no result (fixed D_1 = 0.715, D_2 = 0.6233: latent 1 alone gave 2.1045, the model collapses at 2.2086)
            raise StaticsThresholdError(f"the whole model's global minimiser at {beta_name} = {beta:.10g} was not "
                                        f"found ({r.message}): the top latent's collapse threshold {beta_c:.10g} "
                                        f"could not be checked against it")
        if (r.phase == "collapsed") != collapsed:
            raise StaticsThresholdError(f"the whole model's global minimiser at {beta_name} = {beta:.10g} is "
                                        f"{'collapsed' if r.phase == 'collapsed' else 'not collapsed'}: the top "
                                        f"latent's collapse threshold {beta_c:.10g} is not the model's")
    return (f"; the whole model ({_size(full)}) has an active latent at {beta_name} = {below:.8g} and is collapsed "
            f"at 1.001 {beta_name}_c")


# ------------------------------------------------------------------------------------------------ entry point
def _is_decay(name: str) -> bool:
    return name == "lam" or name.startswith("lam_")


def _detection_texts(params, names, rho_eta, beta_name, decay: bool = False) -> dict[str, str]:
    """Exact decimal texts of the parameters of the detection problem: rho, eta as given, beta = eta/2, no decay
    (``decay``: every weight decay eta/10), any other parameter (a fixed encoder variance D_k, a fixed decoder
    variance sigma2) as given, else 1 (it was 0, which the fixed-D model rejects: detection failed for every fixed-D
    point)."""
    import decimal
    texts = {k: _decimal(params[k]) for k in rho_eta}
    with decimal.localcontext() as c:
        c.prec = 400
        texts[beta_name] = str(decimal.Decimal(texts["eta"]) / 2)
        lam = str(decimal.Decimal(texts["eta"]) / 10) if decay else "0"
    for n in names:
        if n not in texts:
            texts[n] = lam if _is_decay(n) else (_decimal(params[n]) if n in params else "1")
    return texts


def _detection(model: Model, full: Model, params, full_params, digits: int, certify: bool) -> dict:
    """The detection threshold on the saddle system (see the module docstring), first without weight decay. Where
    that system is singular at the pitchfork it is located again with every decay at eta/10: with a fixed encoder
    variance, no decay and alpha < 1 the encoder is free outside the span of the data, the informed branch reaches
    m = 0 on a slice where the odd block's m~ row vanishes identically, and det = 0 no longer picks alpha_c (Newton
    stalled at |F| ~ 1e-27 at 40 digits, or stopped at alpha_c 4e-5 off). A decay removes that freedom and does not
    move alpha_c, a property of the data (the BBP transition of the top sample eigenvector)."""
    S, S_full = statics_system(model), statics_system(full)
    beta_name = model.vae.beta_expr.name
    names = [n for n in S.param_names if n != "alpha"]
    full_names = [n for n in S_full.param_names if n != "alpha"]
    rho_eta = [r.name for r in S.table.rho] + ["eta"]
    full_rho_eta = [r.name for r in S_full.table.rho] + ["eta"]
    check_params({k: float(v) for k, v in params.items() if k in rho_eta}, rho_eta)
    attempts = (False, True) if any(_is_decay(n) for n in names) else (False,)
    for i, decay in enumerate(attempts):
        texts = _detection_texts(params, names, rho_eta, beta_name, decay)
        br, y, t = _detection_start(model, {k: float(v) for k, v in texts.items()})
        # the point of the uninformed branch on the informed point's slice first: from the informed point itself
        # (m = 0.023 at rho/eta = 36, learned sigma^2) the mpmath Newton stalled at |F| = 3e-4
        y_m0 = br.correct(y, t, True)
        try:
            out = _refine_first(model, br, [y] if y_m0 is None else [y_m0, y], t, True, "detection", "alpha", texts,
                                digits, certify)
        except ValueError:
            if i == len(attempts) - 1:
                raise
            continue
        note = _check_detection(full, {k: float(v) for k, v in _detection_texts(full_params, full_names,
                                                                                 full_rho_eta, beta_name).items()}, t)
        if decay:
            note = (f"; located with weight decay eta/10 (the system without decay is singular at the pitchfork; "
                    f"alpha_c does not depend on the decay){note}")
        return {**out, "kind": "detection", "also": [], "note": note}


def _refine_first(model, br: _Branch, starts, t, zero_m: bool, system: str, theta: str, texts: dict, digits: int,
                  certify: bool) -> dict:
    """``_refine`` at the two precisions from the first of ``starts`` from which it succeeds (its ValueError from
    the last one otherwise)."""
    for k, start in enumerate(starts):
        try:
            return _refine(model, br, start, t, zero_m, system, theta, texts, (digits + 10, 2 * digits + 20), digits,
                           certify)
        except ValueError:
            if k == len(starts) - 1:
                raise


def saddle_threshold(name: str, model: Model, params: Mapping[str, object], alpha, digits: int, *,
                     certify: bool = True) -> dict:
    """Locate a statics threshold on the replica saddle-point system alone (see the module docstring).

    Arguments:
        name: ``detection``, ``eg_peak`` or ``optimal_beta``. model: beta a parameter (M > 1 or M* > 1:
            ``top_latent_model``).
        params: parameter values (mpf or float; alpha excluded). alpha: n / N for optimal_beta, else None.
        digits: requested digits (the two Newton precisions are digits + 10 and 2 digits + 20).

    Returns:
        {"values": (value at the lower, at the higher precision), "residual": max|F| of the augmented system,
        "interval", "certified", "why", "kind": "detection" | "interior" | "uninformed-interior",
        "float64": the float64 location, "frozen": names of the frozen K/H coordinates, "size": unknowns}.

    Raises:
        StaticsThresholdError: no such point (with the reason). InvalidInputError: unsupported model.
    """
    if name not in SADDLE_THRESHOLDS:
        raise InvalidInputError(f"the saddle-system method locates {', '.join(SADDLE_THRESHOLDS)}; not {name!r}")
    full, full_params = model, params
    model, params, offset = top_latent_model(full, full_params)
    S = statics_system(model)
    beta_name = model.vae.beta_expr.name if isinstance(model.vae.beta_expr, sp.Symbol) else None
    if beta_name is None:
        raise InvalidInputError("the saddle-system thresholds need beta to be a parameter of the model")
    names = [n for n in S.param_names if n != "alpha"]
    S_full = statics_system(full)
    full_names = [n for n in S_full.param_names if n != "alpha"]
    full_values = {k: float(v) for k, v in full_params.items() if k in full_names} | (
        {} if alpha is None else {"alpha": float(alpha)})
    rho_eta = [r.name for r in S.table.rho] + ["eta"]
    note = ""
    if name == "detection":
        return _detection(model, full, params, full_params, digits, certify)
    if name == "eg_peak":
        values = check_params({k: float(v) for k, v in params.items()}, names)
        texts = {k: _decimal(params[k]) for k in names}
        theta = "alpha"
        det_values = {k: float(v) for k, v in _detection_texts(params, names, rho_eta, beta_name).items()}
        _, _, a_c = _detection_start(model, det_values)
        br = _Branch(model, values, "alpha")
        below = a_c * (1 - 1e-4)
        y0 = _uninformed_start(br, model, values, below)
        found = None
        if y0 is not None:
            path = _follow_active(br, y0, below, 1e-3, True)
            found = _extremum_on(br, path, +1)
        if found is None:  # eg increases into alpha_c (or the latent is collapsed below it): the cusp
            slope_up = y0 is not None and br.tangent(y0, below, True)[br.q_idx] > 0
            if not slope_up:
                raise StaticsThresholdError("eg(alpha) has neither an interior maximum on the uninformed branch nor "
                                            "a cusp at the detection threshold (saddle system)")
            out = saddle_threshold("detection", full, full_params, None, digits, certify=certify)
            # the whole model below the cusp, at 0.99 alpha_c (at `below`, 1e-4 under the float64 alpha_c, it can
            # still be informed: m = 0.0045 at rho = (1.0149, 0.9053))
            y1 = _uninformed_start(br, model, values, 0.99 * a_c)
            if y1 is not None:
                _check_full(full, full_values, "alpha", 0.99 * a_c, br.eg(y1) + offset, "below the cusp of eg")
            return {**out, "kind": "detection"}
        y, t, also = found
        zero_m = True
        _check_global(model, values, "alpha", br, y, t, "eg peak", full, full_values, offset)
        kind = "uninformed-interior"
    else:
        others = [n for n in names if n != beta_name]
        values = {**check_params({k: float(v) for k, v in params.items() if k != beta_name}, others),
                  "alpha": float(alpha)}
        texts = {**{k: _decimal(params[k]) for k in others}, "alpha": _decimal(alpha)}
        br = _Branch(model, values, beta_name)
        b0 = values["eta"] / 2
        r = _global(model, values, beta_name, b0)
        if not r.ok or r.phase == "collapsed":
            raise StaticsThresholdError(f"no learned saddle point at beta = eta/2 = {b0:g}")
        zero_m = abs(float(r.y[br.m_idx])) < 1e-9
        y0 = np.array(r.y, dtype=float)
        if not zero_m and y0[br.m_idx] < 0:
            y0[br.odd] *= -1
        down = _follow_active(br, y0, b0, b0 * 1e-5, zero_m)  # the closed-form route scans down to 1e-6 beta_c
        up = _follow_active(br, y0, b0, b0 * 1e3, zero_m)
        found = _extremum_on(br, down[::-1] + up[1:], -1)
        if found is None:
            raise StaticsThresholdError("eg(beta) has no interior minimum on the learned branch (saddle system)")
        y, t, also = found
        _check_global(model, values, beta_name, br, y, t, "optimal beta", full, full_values, offset)
        theta, kind = beta_name, ("uninformed-interior" if zero_m else "interior")
    out = _refine(model, br, y, t, zero_m, "extremum", theta, texts, (digits + 10, 2 * digits + 20), digits, certify)
    return {**out, "kind": kind, "also": also, "note": note}


def _refine(model, br: _Branch, y, t, zero_m: bool, system: str, theta: str, texts: dict, precisions, digits: int,
            certify: bool) -> dict:
    """Newton on the augmented system from the float64 point (y, t) at each of ``precisions`` and the Krawczyk test
    at the last one."""
    S = br.S
    idx = br.even if zero_m else np.arange(S.n)
    frozen, rows = _split(S, y, br.p(t), idx)
    aug = _augmented(model, system, theta, zero_m, frozen, rows)
    unknowns, eqs, rest, F, J, jac, k, positive, _, full, _ = aug
    frozen_names = {S.system.state[i].name for i in frozen}
    state_val = {n: float(v) for n, v in zip(br.names, y)}
    x0 = []
    tangent = br.tangent(y, t, zero_m) if system != "detection" else None
    for s in unknowns:
        if s.name == theta:
            x0.append(t)
        elif s.name.startswith("v__"):
            x0.append(float(tangent[br.names.index(s.name[3:])]))
        else:
            x0.append(state_val[s.name])
    texts = {**texts, **{n: _decimal(state_val[n]) for n in frozen_names}}
    rest_texts = [texts[s.name] for s in rest]
    results = []
    for dps in precisions:
        with mpmath.workdps(dps + 10):
            rest_mp = [mpmath.mpf(v) for v in rest_texts]
            x, res = _newton(F, J, x0, rest_mp, dps)
            if not res < mpmath.mpf(10) ** (5 - dps):
                raise ValueError(f"Newton on the augmented saddle system reached max|F| = {mpmath.nstr(res, 3)} "
                                 f"only, at {dps} digits")
            dropped = max(abs(v) for v in full(*x, *rest_mp))
            if not dropped < mpmath.mpf(10) ** (5 - dps):  # a frozen coordinate was not free after all
                raise ValueError(f"the equations left out of the square system are not satisfied at its root "
                                 f"(max|F| = {mpmath.nstr(dropped, 3)} at {dps} digits)")
            results.append((x, res))
    x_hi, res_hi = results[-1]
    if certify:
        with mpmath.workdps(precisions[-1]):
            interval, certified, why = _certify(aug, x_hi, rest_texts, digits)
    else:
        interval, certified, why = None, False, "certification not requested"
    return {"values": tuple(r[0][k] for r in results), "residual": res_hi, "interval": interval,
            "certified": certified, "why": why, "float64": t, "frozen": sorted(frozen_names),
            "size": len(unknowns), "state": {s.name: x_hi[i] for i, s in enumerate(unknowns)
                                             if not s.name.startswith("v__") and s.name != theta}}


def certify_extremum(name: str, model: Model, params: Mapping[str, object], alpha, value, digits: int):
    """(interval, certified, why) for an interior eg peak (``alpha`` None) or optimal beta located elsewhere (the
    closed form) at ``value``: the saddle point there (``solve_statics`` started from the closed form), then Newton
    and the Krawczyk test on the augmented saddle system d eg/dt = 0 (as in ``saddle_threshold``). The enclosure
    is of the saddle system's root; the caller checks that ``value`` lies in it. With M > 1 latents the system is
    the top latent's (``top_latent_model``), which describes the extremum only if every other latent is collapsed
    there (checked on the closed form; otherwise no certificate, and the reason)."""
    if model.M > 1 or model.M_star > 1:
        from ._closed_form import closed_form
        point = {**params, **({} if alpha is None else {"alpha": alpha})}
        theta = "alpha" if name == "eg_peak" else model.vae.beta_expr.name
        point[theta] = value
        a = point.pop("alpha")
        q = np.diag(np.atleast_2d(np.asarray(closed_form(model, point, float(a)).order["Q"], dtype=float)))
        active = [k + 1 for k in range(1, len(q)) if q[k] > 1e-12]
        if active:
            return None, False, (f"{_active_text(active)} active at the extremum; the augmented saddle-system "
                                 f"certificate covers the top latent alone")
        model, params, _ = top_latent_model(model, params)
    S = statics_system(model)
    beta_name = model.vae.beta_expr.name
    theta = "alpha" if name == "eg_peak" else beta_name
    names = [n for n in S.param_names if n not in ("alpha", theta)]
    texts = {n: _decimal(params[n]) for n in names}
    values = {n: float(params[n]) for n in names}
    if alpha is not None:
        texts["alpha"], values["alpha"] = _decimal(alpha), float(alpha)
    br = _Branch(model, values, theta)
    t = float(value)
    point = {**values, theta: t}
    a = point.pop("alpha")
    r = solve_statics(model, point, a, compare=False, closed_form_start=True, throw=False)
    if not r.ok or r.phase == "collapsed":
        return None, False, f"no learned saddle point at {theta} = {t:.12g} to certify on"
    y = np.array(r.y, dtype=float)
    zero_m = abs(float(y[br.m_idx])) < 1e-9
    if not zero_m and y[br.m_idx] < 0:
        y[br.odd] *= -1
    try:
        out = _refine(model, br, y, t, zero_m, "extremum", theta, texts, (digits + 10,), digits, True)
    except (ValueError, ZeroDivisionError) as exc:
        return None, False, f"Newton on the augmented saddle system: {exc}"
    return out["interval"], out["certified"], out["why"] + " on the augmented replica saddle system"


def _learned_start(model: Model, params: Mapping[str, float], alpha: float, beta_name: str):
    """(branch in beta, beta, y): the global minimiser at the first beta in eta/2, eta/20, ... where it is learned."""
    values = {**{k: float(v) for k, v in params.items() if k != beta_name}, "alpha": float(alpha)}
    br = _Branch(model, values, beta_name)
    t = values["eta"] / 2
    while True:  # the first beta (eta/2, eta/20, ...) with a learned global minimiser
        r = _global(model, values, beta_name, t)
        if r.ok and r.phase != "collapsed" and r.y[br.q_idx] > 1e-9:
            break
        t /= 10
        if t < 1e-6 * values["eta"]:
            raise StaticsThresholdError("no learned saddle point for beta in [1e-6 eta, eta/2] to follow to the "
                                        "collapse")
    return br, t, np.array(r.y, dtype=float)


def collapse_start(model: Model, params: Mapping[str, float], alpha: float, beta_name: str):
    """A learned saddle point just below a continuous collapse in beta (float64, saddle system only): the global
    minimiser at beta = eta/2 followed up in beta with shrinking steps while Q > 0. Returns an object with the
    ``model``, ``params``, ``alpha`` and ``y`` that ``collapse_threshold_saddle`` starts from, and the global
    minimiser it followed (``learned``: branch, beta, state; ``first_order_collapse`` starts there too)."""
    import types
    learned = _learned_start(model, params, alpha, beta_name)
    br, t, y = learned
    values = br.values
    q0 = float(y[br.q_idx])
    step = math.log(1.05)
    for _ in range(400):  # until Q is 1e-4 of its start (the blown-up Newton converges from there) or steps vanish
        if step < 1e-6 or y[br.q_idx] < 1e-4 * q0:
            break
        t_new = t * math.exp(step)
        if t_new > 1e7:
            raise StaticsThresholdError("the learned branch continues beyond beta = 1e7")
        y_new = br.correct(y + (t_new - t) * br.tangent(y, t, False), t_new, False)
        if y_new is None or not y_new[br.q_idx] > 1e-10:
            step /= 4
            continue
        t, y = t_new, y_new
    return types.SimpleNamespace(model=model, params={**{k: v for k, v in values.items() if k != "alpha"},
                                                      beta_name: t}, alpha=float(alpha), y=y, learned=learned)


def first_order_collapse(model: Model, params: Mapping[str, object], alpha, digits: int, *,
                         certify: bool = True, learned=None) -> dict:
    """beta_c of a first-order collapse on the saddle system alone (M = M* = 1; ``top_latent_model`` first).

    The learned branch does not meet the collapsed saddle at beta_c: the global minimiser jumps to it where their
    free energies are equal (the learned branch goes on, metastable, to a fold). So beta_c is a root of the square
    system F_r(x_f; beta) = 0, f(x; beta) = f_collapsed(beta) (``_augmented`` kind ``first-order``; the degenerate
    K/H directions frozen as for the other thresholds), refined by Newton in mpmath at two precisions and proven by
    the Krawczyk test. The float64 start follows the learned global minimiser up in beta (``_learned_start``) until
    f - f_collapsed changes sign and bisects that step on the branch (``learned``: that start, as ``collapse_start``
    found it). Returns the dict of ``saddle_threshold`` with kind ``first-order`` and the float64 beta it started
    from (``below``, for the whole-model check)."""
    from ._replica import _collapsed_state
    beta_name = model.vae.beta_expr.name
    br, t, y = learned or _learned_start(model, {k: float(v) for k, v in params.items()}, float(alpha), beta_name)
    y = np.array(y, dtype=float)
    if y[br.m_idx] < 0:  # the teacher-sign symmetry: the branch with m > 0 (f is even in m)
        y[br.odd] *= -1
    S = br.S
    below = t

    def gap(yv, tv):  # f(learned) - f(collapsed), the collapsed point as solve_statics takes it
        pv = {**{k: v for k, v in br.values.items() if k != "alpha"}, beta_name: tv}
        p = br.p(tv)
        return S.free_energy(yv, p) - S.free_energy(_collapsed_state(S, pv), p)

    g, q0 = gap(y, t), float(y[br.q_idx])
    if not g < 0:
        raise StaticsThresholdError(f"the learned saddle at beta = {t:.6g} is not below the collapsed one")
    step = math.log(1.05)
    bracket = None
    for _ in range(2000):
        if step < 1e-9:
            break
        t_new = t * math.exp(step)
        if t_new > 1e7:
            raise StaticsThresholdError("the learned branch continues beyond beta = 1e7 below the collapsed free "
                                        "energy")
        y_new = br.correct(y + (t_new - t) * br.tangent(y, t, False), t_new, False)
        if y_new is None or not y_new[br.q_idx] > 1e-10:
            step /= 4
            continue
        g_new = gap(y_new, t_new)
        if g_new >= 0:
            if y_new[br.q_idx] < 1e-3 * q0:  # f - f_c -> 0- as Q -> 0 at a continuous collapse: round-off there
                raise StaticsThresholdError(f"f - f_collapsed reaches 0 only as Q -> 0 (Q = {y_new[br.q_idx]:.3g} "
                                            f"at beta = {t_new:.10g}): a continuous collapse, no jump")
            bracket = (t, y, t_new)
            break
        t, y, g = t_new, y_new, g_new
        step = min(2 * step, math.log(1.05))
    if bracket is None:
        raise StaticsThresholdError(f"the learned branch ends (a fold or Q -> 0) at beta = {t:.10g} below the "
                                    f"collapsed free energy: no first-order collapse on it")
    lo, y_lo, hi = bracket
    for _ in range(60):  # bisection on the branch (f - f_c is monotone across a first-order jump)
        if hi - lo <= 1e-13 * hi:
            break
        mid = 0.5 * (lo + hi)
        y_mid = br.correct(y_lo + (mid - lo) * br.tangent(y_lo, lo, False), mid, False)
        if y_mid is None:
            break
        if gap(y_mid, mid) < 0:
            lo, y_lo = mid, y_mid
        else:
            hi = mid
    texts = {**{k: _decimal(v) for k, v in params.items() if k != beta_name}, "alpha": _decimal(alpha)}
    out = _refine(model, br, y_lo, lo, False, "first-order", beta_name, texts, (digits + 10, 2 * digits + 20), digits,
                  certify)
    for factor, collapsed in ((0.999, False), (1.001, True)):  # the jump is to the collapsed point, not elsewhere
        r = _global(model, br.values, beta_name, factor * lo)
        if not r.ok or (r.phase == "collapsed") != collapsed:
            raise StaticsThresholdError(f"the global minimiser at {factor} x the located beta_c = {lo:.10g} is "
                                        f"{'not found' if not r.ok else r.phase}: not a first-order collapse")
    return {**out, "kind": "first-order", "also": [], "below": below}


_SQUARE: dict[str, tuple] = {}


def certify_square(key: str, unknowns, equations, params, texts: Mapping[str, str], frozen: Mapping[int, str],
                   rows, x0, k: int, digits: int):
    """(interval of unknown k, certified, why) for a system ``equations`` = 0 in ``unknowns`` (parameters ``params``
    with exact decimal ``texts``) made square by fixing the unknowns ``frozen`` (index -> decimal text) and keeping
    the equations ``rows``: Newton in mpmath at digits + 10 from ``x0`` (float; the centre must be well inside the
    Krawczyk box of half-width 1e-(digits + 5)), the left-out equations checked at the root, then the Krawczyk
    test."""
    if key not in _SQUARE:
        fixed = [unknowns[i] for i in sorted(frozen)]
        free = [s for i, s in enumerate(unknowns) if i not in frozen]
        kept = [equations[i] for i in rows]
        rest = list(params) + fixed
        jac = sp.Matrix(kept).jacobian(free)
        _SQUARE[key] = (free, kept, rest, jac, sp.lambdify(free + rest, kept, modules="mpmath"),
                        sp.lambdify(free + rest, jac, modules="mpmath"),
                        sp.lambdify(free + rest, list(equations), modules="mpmath"))
    free, kept, rest, jac, F, J, full = _SQUARE[key]
    free_index = [i for i in range(len(unknowns)) if i not in frozen]
    rest_texts = [texts[s.name] for s in params] + [frozen[i] for i in sorted(frozen)]
    dps = digits + 10
    with mpmath.workdps(dps + 10):
        rest_mp = [mpmath.mpf(v) for v in rest_texts]
        x, res = _newton(F, J, [x0[i] for i in free_index], rest_mp, dps)
        if not res < mpmath.mpf(10) ** (5 - dps):
            return None, False, f"Newton on the square system reached max|F| = {mpmath.nstr(res, 3)} only"
        dropped = max(abs(v) for v in full(*x, *rest_mp))
        if not dropped < mpmath.mpf(10) ** (5 - dps):
            return None, False, f"the left-out equations are not satisfied (max|F| = {mpmath.nstr(dropped, 3)})"
    dropped = [e for i, e in enumerate(equations) if i not in set(rows)]
    aug = (free, kept, rest, None, None, jac, free_index.index(k), [], key, None, dropped)
    with mpmath.workdps(dps):
        return _certify(aug, x, rest_texts, digits)
