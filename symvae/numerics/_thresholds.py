"""Thresholds to any requested precision: detect in float64, solve an augmented system in mpmath, verify, and
compare with a SymPy closed form where one exists.

1. Detection: continuation (``_continuation``) along the relevant branch; a threshold is a special point there
   (a sign change of a test function, located in float64).
2. Refinement: Newton on the augmented system of the point (``_augmented``: fixed-point equations + singularity
   condition, unknowns including the parameter) with its exact symbolic Jacobian, in mpmath at the requested digits
   plus guard digits (precision doubling from the float64 start).
3. Verification: the same Newton continued at a higher precision; only the digits on which both results agree are
   reported (``digits``), and the status is ``verified`` only if that is at least the number requested.
4. Closed form: SymPy solves the smallest square subsystem that contains the singularity condition, factors the
   resulting polynomial in the parameter and keeps the factor that vanishes at the numerical root; the numerical
   value is then compared with the closed form (explicit, or the exact real root of the factor).

Named thresholds (``THRESHOLDS``), all in ``beta`` by default:

* ``collapse``: the branch point where the learned branch meets the collapsed branch: on the collapsed branch, the
  largest parameter value at which a signal block (m, m_tilde of one latent and spike) turns stable;
* ``noise``: where a latent with zero signal overlap starts fitting the background noise: the norm block (Q_kk,
  Q_tilde_kk, R_kk) of a collapsed latent turns stable. With more latents than spikes this is found on the branch
  of the learned latents (reached by branch switching at the collapse threshold), else on the collapsed branch;
* ``lr``: the upper edge in the parameter of the stability of the collapsed point, set by the step size (the
  O(tau^2) terms): the first branch point above the collapse threshold at which the collapsed point loses stability.
"""
from __future__ import annotations

import dataclasses
import math
import weakref
from typing import Callable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from ..codegen import CompiledSystem
from ..derive import derive_dynamics, symbolic_jacobian
from ..derive._nonlinear_gaussian import has_rule_nodes
from ..errors import InvalidInputError, SymvaeError
from ..model import Model
from ._augmented import AugmentedSystem, augmented_system, resolve_nonsmooth
from ._certify import enclosure_digits, interval_functions, krawczyk, krawczyk_widening
from ._closed_forms import GUARD_SECONDS, SolveTimeout, memoised, solve_cached, time_limit
from ._continuation import Branch, ContinuationError, SpecialPoint, continue_branch, switch_branch
from ._fixed_points import FixedPoint, collapsed_start, fixed_point
from ._context import FLOAT64
from ._newton import Counter, agreeing_digits, newton, newton_mp, refine_two_precisions
from ._subspaces import coordinate_roles
from ._systems import ParameterPoint, as_compiled, evaluate_or_nan

__all__ = ["Threshold", "ThresholdError", "ThresholdCurve", "THRESHOLDS", "threshold", "refine_special_point",
           "locate_condition", "threshold_curve", "collapsed_branch"]


class ThresholdError(SymvaeError):
    """Raised with ``throw=True`` when a threshold is not found or not verified to the requested digits."""


@dataclasses.dataclass(frozen=True, eq=False)
class Threshold:
    """A located threshold.

    Attributes:
        name: ``collapse``, ``noise``, ``lr``, ``condition`` or ``special point``; parameter: its parameter.
        value: the verified value (an mpmath number carrying the verified digits; None when nothing is verified).
        digits: significant digits inside the proven enclosure when ``certified``, else the digits on which two
            precisions agree ("agreeing" digits); requested_digits: what was asked for.
        interval: (lo, hi) decimal strings of an interval proven (Krawczyk test, ``_certify``) to contain exactly one
            root of the augmented system; certified: whether that proof succeeded (the message says why not).
        status: ``verified`` (digits >= requested), ``partial`` (fewer digits verified; ``value`` holds those),
            ``not_found`` (no such point in the searched range) or ``failed`` (the refinement did not converge).
        message: what was done or what went wrong.
        closed_form: a SymPy expression for the parameter value (or a polynomial whose root it is, see
            ``closed_form_text``), None if SymPy found none; closed_form_digits: digits on which it agrees with the
            numerical value.
        float64: the float64 location from the continuation.
        state: the state at the threshold, {symbol name: mpmath value}.
        special_point: the detected special point; params: the parameter values; counts: evaluation counts.
    """

    name: str
    parameter: str
    value: object
    digits: int
    requested_digits: int
    status: str
    message: str
    closed_form: sp.Expr | None = None
    closed_form_text: str | None = None
    closed_form_digits: int | None = None
    float64: float | None = None
    state: Mapping[str, object] | None = None
    special_point: SpecialPoint | None = None
    params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    interval: tuple[str, str] | None = None
    certified: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "verified"

    @property
    def text(self) -> str | None:
        """The verified digits as a decimal string."""
        if self.value is None or self.digits < 1:
            return None
        return _digits_text(self.value, self.digits)

    def as_dict(self) -> dict:
        """The JSON contract of ``symvae threshold`` (plus a few informative extras)."""
        return {"name": self.name, "parameter": self.parameter, "value": self.text, "digits": self.digits,
                "closed_form": self.closed_form_text, "status": self.status, "message": self.message,
                "requested_digits": self.requested_digits, "float64": self.float64,
                "closed_form_digits": self.closed_form_digits, "certified": self.certified,
                "interval": list(self.interval) if self.interval else None,
                "block": self.special_point.block.describe() if self.special_point and self.special_point.block
                else None}


def _digits_text(value, digits: int) -> str:
    with mpmath.workdps(digits + 10):
        return mpmath.nstr(value, digits, strip_zeros=False, min_fixed=-6, max_fixed=digits + 6)


def _same_text_digits(a, b, digits: int) -> int:
    """The largest n <= ``digits`` at which a and b print the same n significant digits (0 if none)."""
    while digits > 0 and _digits_text(a, digits) != _digits_text(b, digits):
        digits -= 1
    return digits


# ------------------------------------------------------------------------------------------------ branches
def _as_system(system) -> CompiledSystem:
    if isinstance(system, Model):
        system = derive_dynamics(system)
    return as_compiled(system)


def collapsed_branch(system, params: Mapping[str, object], parameter: str = "beta", *, lo: float = 1e-3,
                     hi: float = 1e6, relative_step: float = 0.15) -> Branch:
    """The branch of the collapsed point (all overlaps zero) from ``parameter = lo`` to ``hi``, with its special
    points (continuation in the collapsed subspace; steps grow geometrically, at most ``relative_step`` times the
    parameter)."""
    compiled = _as_system(system)
    pp = ParameterPoint(compiled.system, params).with_value(parameter, lo)
    x0 = collapsed_start(compiled.system)
    return continue_branch(compiled, x0, pp.values, parameter, hi, relative_step=relative_step, max_steps=5000)


@dataclasses.dataclass(frozen=True)
class _Named:
    """A named threshold: how to find its branch point among the special points of the relevant branch."""

    name: str
    description: str
    choose: Callable


def activated(system) -> bool:
    """Whether the model of ``system`` (derived or compiled) has a non-linear encoder or decoder activation: then
    the sampled eps keeps Q, Q_tilde, R at O(tau) values on the collapsed branch, whose point is no longer the
    all-zero state ``collapsed_branch`` starts from."""
    model = getattr(getattr(system, "system", system), "model", None)
    vae = getattr(model, "vae", None)
    return any(getattr(vae, f"{side}_activation", "linear") not in (None, "linear") for side in ("encoder", "decoder"))


#: Ratio of the geometric grid on which ``stable_collapsed_start`` looks for a stable collapsed point.
START_RATIO = 1.25


def stable_collapsed_start(compiled, pp: ParameterPoint, parameter: str, lo: float, hi: float):
    """(parameter value, FixedPoint) of the first stable, physical collapsed point (m = m_tilde = 0) found by Newton
    from the all-zero state on a geometric grid (ratio ``START_RATIO``) going up from ``lo``, or None.

    Going up from below finds the lower end of the window (beta_c, beta_lr) in which the collapsed point is stable:
    a fixed start (say beta = 20) fails once the step-size edge beta_lr ~ 2/(tau eta) drops below it."""
    x0 = _finite_collapsed_start(compiled, pp.with_value(parameter, lo).values)
    signal = [i for i, s in enumerate(compiled.system.state) if s.name.startswith(("m_", "m_tilde_"))]
    n = int(math.floor(math.log(hi / lo) / math.log(START_RATIO))) + 1
    for k in range(n + 1):
        value = min(hi, lo * START_RATIO ** k)
        try:
            point = fixed_point(compiled, x0, pp.with_value(parameter, value).values, throw=False)
        except (SymvaeError, ArithmeticError, ValueError):
            point = None
        if point is not None and point.stable and point.physical and not np.any(point.x[signal]):
            return value, point
    return None


def _finite_collapsed_start(compiled, values) -> np.ndarray:
    """``collapsed_start``, or, where the right-hand side is not finite there, the same with the latents' own
    overlaps Q_kk, Q_tilde_kk set to 1e-2: a ReLU encoder's half rules divide by the variance Q_tilde_kk of its field,
    which is zero in the all-zero state but not at the collapsed point (the sampled noise keeps it at O(tau))."""
    x0 = collapsed_start(compiled.system)
    p = compiled.system.param_vector(values)
    if np.all(np.isfinite(np.asarray(evaluate_or_nan(compiled.rhs, x0, p, x0.shape), dtype=float))):
        return x0
    x0 = x0.copy()
    for i, (name, pos) in coordinate_roles(compiled.system).items():
        if name in ("Q", "Q_tilde") and pos[0] == pos[1]:
            x0[i] = 1e-2
    return x0


def collapse_from_above(compiled, pp: ParameterPoint, parameter: str, lo: float, hi: float):
    """(branch, special point or None, message) for a model whose collapsed point is not the all-zero state
    (``activated``): a stable collapsed point (``stable_collapsed_start``) is continued down in its invariant
    subspace m = m_tilde = 0, and the collapse threshold is the largest signal branch point below it at which the
    signal block turns stable (with increasing parameter), as in ``_choose_collapse``."""
    found = stable_collapsed_start(compiled, pp, parameter, lo, hi)
    if found is None:
        return None, None, (f"no stable collapsed point (Newton from the all-zero state) for {parameter} in "
                            f"[{lo:g}, {hi:g}] on a grid of ratio {START_RATIO}: no collapse threshold in range")
    start, point0 = found
    if start <= lo:
        return None, None, (f"the collapsed point is already stable at the lower end {parameter} = {lo:g} of the "
                            f"search range: no collapse threshold in range")
    values = pp.with_value(parameter, start).values
    branch = None
    for stop in (max(lo, start / START_RATIO ** 4), lo):  # the branch point is usually just below the start
        if stop >= start or (branch is not None and stop >= branch.p[-1]):
            continue
        try:
            branch = continue_branch(compiled, point0, values, parameter, stop, relative_step=0.15, max_steps=5000)
        except ContinuationError as exc:
            return None, None, f"continuation of the collapsed point down from {parameter} = {start:g} failed: {exc}"
        cands = [s for s in branch.special_points if s.kind == "BP" and s.block is not None and
                 s.block.label == "signal" and s.stabilising]
        if cands:
            best = max(cands, key=lambda s: s.value)
            # the collapsed point must be stable all the way down to it: a loss of stability above it that no test
            # function saw would make it a wrong answer (the collapsed point already unstable there)
            unseen = _unseen_crossing(branch, parameter, above=best.value)
            return (branch, None, unseen) if unseen else (branch, best, None)
    unseen = _unseen_crossing(branch, parameter)
    if unseen:
        return branch, None, unseen
    return branch, None, (f"no signal block of the collapsed point turns stable for {parameter} in [{lo:g}, "
                          f"{start:g}] (the collapsed point is stable at {parameter} = {start:g}, continued down to "
                          f"{lo:g}): no collapse threshold in range")


#: relative distance above a located branch point within which an unstable branch point is its own crossing
UNSEEN_MARGIN = 1e-6


def _unseen_crossing(branch, parameter: str, above: float | None = None) -> str:
    """Why no branch point was found although the branch, stable at its start, loses stability further on (or ""):
    eigenvalues crossing zero in pairs leave every block determinant's sign unchanged. ``above``: only a loss of
    stability above this value counts (the branch point located below it would otherwise be taken)."""
    if branch is None or branch.stable is None or len(branch.stable) < 2 or not bool(branch.stable[0]):
        return ""
    unstable = ~np.asarray(branch.stable, dtype=bool)
    if above is not None:
        unstable &= np.asarray(branch.p, dtype=float) > above + UNSEEN_MARGIN * max(1.0, abs(above))
    lost = np.flatnonzero(unstable)
    if not lost.size:
        return ""
    k = int(lost[0])
    return (f"the collapsed point loses stability between {parameter} = {branch.p[k]:.10g} and "
            f"{branch.p[k - 1]:.10g}, but no block determinant changes sign there: eigenvalues cross zero in pairs "
            f"(exchangeable latents or spikes of equal strength repeat an eigenvalue when their blocks couple and no "
            f"swap that fixes the branch splits them), which the test functions cannot locate or refine")


def _choose_collapse(compiled, pp, parameter, lo, hi):
    if activated(compiled):
        return collapse_from_above(compiled, pp, parameter, lo, hi)
    branch = collapsed_branch(compiled, pp.values, parameter, lo=lo, hi=hi)
    # (a saddle-point system has no dynamics: there the signal-block branch point itself is the threshold)
    dynamic = compiled.system.kind == "ode"
    cands = [s for s in branch.special_points if s.kind == "BP" and s.block is not None and
             s.block.label == "signal" and (s.stabilising or not dynamic)]
    if not cands:
        return branch, None, (f"no signal block of the collapsed point turns stable for {parameter} in "
                               f"[{lo:g}, {hi:g}]: no collapse threshold in range")
    return branch, max(cands, key=lambda s: s.value), None


def _choose_lr(compiled, pp, parameter, lo, hi):
    branch = collapsed_branch(compiled, pp.values, parameter, lo=lo, hi=hi)
    collapse = [s.value for s in branch.special_points if s.kind == "BP" and s.block is not None and
                s.block.label == "signal" and s.stabilising]
    floor = max(collapse) if collapse else lo
    cands = [s for s in branch.special_points if s.kind in ("BP", "LP") and s.value > floor and
             s.unstable_before == 0 and s.unstable_after > 0 and s.stabilising is False]
    if not cands:
        if not branch.stable[-1]:
            why = "the collapsed point is never stable"
        else:
            why = f"the collapsed point stays stable up to {parameter} = {hi:g}"
        return branch, None, f"no upper stability edge in {parameter} in [{lo:g}, {hi:g}]: {why}"
    hb = [s for s in branch.special_points if s.kind == "HB?" and s.value > floor and s.value < cands[0].value]
    if hb:
        return branch, None, (f"the collapsed point loses stability through a complex pair near {parameter} = "
                              f"{hb[0].value:.6g} (a Hopf point; not located by symvae)")
    return branch, min(cands, key=lambda s: s.value), None


def _choose_noise(compiled, pp, parameter, lo, hi):
    system = compiled.system
    branch = collapsed_branch(compiled, pp.values, parameter, lo=lo, hi=hi)
    if system.model.M > system.model.M_star:
        signal = sorted((s for s in branch.special_points if s.kind == "BP" and s.block is not None and
                         s.block.label == "signal" and s.stabilising),
                        key=lambda s: (-s.value, s.block.latent if s.block.latent is not None else 0))
        if not signal:
            return branch, None, ("no collapse threshold on the collapsed branch, so no branch of learned latents "
                                  "to look for a noise-fitting transition on")
        try:
            branch = switch_branch(branch, signal[0], lo, relative_step=0.15, max_steps=5000)
        except ContinuationError as exc:
            return branch, None, f"branch switching at the collapse threshold failed: {exc}"
    cands = [s for s in branch.special_points if s.kind == "BP" and s.block is not None and
             s.block.label == "norm" and s.stabilising]
    if not cands:
        return branch, None, (f"no norm block of a zero-signal latent turns stable for {parameter} in "
                              f"[{lo:g}, {hi:g}]: no noise threshold in range")
    return branch, min(cands, key=lambda s: s.value), None


THRESHOLDS: dict[str, _Named] = {
    "collapse": _Named("collapse", "the learned branch meets the collapsed branch (posterior collapse)",
                       _choose_collapse),
    "noise": _Named("noise", "below it a latent with zero signal overlap fits the background noise", _choose_noise),
    "lr": _Named("lr", "upper edge of the stability of the collapsed point set by the step size", _choose_lr),
}


# ------------------------------------------------------------------------------------------------ refinement
def _augmented_for(point: SpecialPoint, compiled: CompiledSystem, pp: ParameterPoint,
                   condition: sp.Expr | None = None, rule_level: int = 1) -> AugmentedSystem:
    """The augmented system that pins ``point`` down (see ``_augmented``); ``rule_level``: see
    ``augmented_system``."""
    system = compiled.system
    if point.kind == "BP" and point.block is not None:
        # with an activation the expanded symbolic determinant is huge (about 5e5 operations for an erf decoder):
        # the null-vector form keeps the equations (and their interval versions) small
        kind = "block-null" if activated(system) else "block"
        return augmented_system(system, point.subspace, point.parameter, kind, block=point.block,
                                null_index=int(np.argmax(np.abs(_null_vector(point, compiled, pp)))),
                                rule_level=rule_level)
    if point.kind == "LP":
        return augmented_system(system, point.subspace, point.parameter, "fold",
                                null_index=int(np.argmax(np.abs(_null_vector(point, compiled, pp)))),
                                rule_level=rule_level)
    if point.kind == "USER":
        return augmented_system(system, point.subspace, point.parameter, "condition", condition=condition,
                                rule_level=rule_level)
    raise InvalidInputError(f"no augmented system for a {point.describe()}: only symmetry-breaking branch points, "
                            f"folds and conditions can be refined beyond float64")


def _null_vector(point: SpecialPoint, compiled: CompiledSystem, pp: ParameterPoint) -> np.ndarray:
    """Null vector (float64) of the singular block (block branch point) or of J_ff (fold) at the point."""
    J = compiled.jac(0.0, point.x, pp.with_value(point.parameter, point.value).vector)
    if point.block is not None:  # of the restricted block when the block is a symmetry-adapted part
        idx = list(point.block.indices)
        return np.linalg.svd(point.block.restrict(J[np.ix_(idx, idx)]))[2][-1]
    idx = list(point.subspace.free)
    return np.linalg.svd(J[np.ix_(idx, idx)])[2][-1]


def _initial_unknowns(aug: AugmentedSystem, point: SpecialPoint, compiled, pp: ParameterPoint) -> np.ndarray:
    u = list(point.x[list(point.subspace.free)]) + [point.value]
    if aug.kind in ("block-null", "fold"):
        v = _null_vector(point, compiled, pp)
        u += list(v / v[int(np.argmax(np.abs(v)))])
    return np.array(u, dtype=float)


def _finer_rule_digits(point, compiled, pp, condition, r2, rest, k, value, verified, counter) -> tuple[int, str]:
    """(digits, message) of a root of a system with numerical-rule nodes that could not be certified: the digits on
    which two precisions agree are digits of the rule's root, so the root is solved again (mpmath Newton, from it)
    with every rule at half its step and its cuts moved out (``augmented_system(..., rule_level=2)``); the digits on
    which the two rules agree bound those reported. An estimate of the rule's error, not a proof."""
    fine = _augmented_for(point, compiled, pp, condition, rule_level=2)
    dps = min(r2.dps, verified + 12)  # enough to see where the two roots part
    try:
        rf = newton_mp(lambda y: fine.G_mp(y, rest), lambda y: fine.J_mp(y, rest), r2.y, dps, start_digits=dps - 5,
                       counter=counter)
    except (ArithmeticError, ValueError, ZeroDivisionError) as exc:
        return 0, f"; the check with the finer rule failed ({exc}): no digit is known to be the model's"
    if not rf.converged:
        return 0, "; the check with the finer rule did not converge: no digit is known to be the model's"
    with mpmath.workdps(dps):
        agree = agreeing_digits(rf.y[k], value)
        diff = abs(rf.y[k] - value)
    kept = min(verified, agree)
    return kept, (f"; those are digits of the numerical rule's root: with every rule at half its step the root moves "
                  f"by {mpmath.nstr(diff, 2)}, so {kept} digits are reported (an estimate of the rule's error, not "
                  f"a proof)")


#: relative rounding of one float64 evaluation of an augmented system with numerical rules (sums of a few thousand
#: terms of size O(1)), multiplied by the condition number of its Jacobian to bound a float64 root's rounding error
FLOAT64_RESIDUAL = 1e-15


#: the finest rule level ``_refine_float64`` tries (level L: steps / L, cuts moved out; the cost of a two-direction
#: node with an inner noise rule grows like L^3)
FLOAT64_RULE_LEVELS = 3


def _refine_float64(point: SpecialPoint, compiled, pp: ParameterPoint, condition, rest: list, digits: int, name: str,
                    throw: bool):
    """A ``Threshold`` for a system whose rules make mpmath too slow (``_mpmath_too_slow``): the augmented system is
    solved by float64 Newton (its generated numpy code) with the rules at level 1, then again from each root with
    finer rules (level 2: half the steps and the cuts moved out; level 3: a third) until two successive roots agree to
    the float64 rounding of the root (``FLOAT64_RESIDUAL`` times the condition number of the augmented Jacobian, plus
    the last Newton step) or to ``digits``, or level ``FLOAT64_RULE_LEVELS`` is reached. The finest root is reported
    with the digits on which it agrees with the one before: an estimate, not a proof; never certified."""
    counter = Counter()
    why = _mpmath_too_slow(compiled.system)
    rest = [float(v) for v in rest]
    k = len(point.subspace.free)
    base = dict(name=name, parameter=point.parameter, requested_digits=digits, float64=float(point.value),
                special_point=point, params=pp.values)
    roots, errors, aug, kept = [], [], None, 0
    for level in range(1, FLOAT64_RULE_LEVELS + 1):
        aug = _augmented_for(point, compiled, pp, condition, rule_level=level)
        u0 = _initial_unknowns(aug, point, compiled, pp) if level == 1 else roots[-1]
        n, r = len(u0), np.array(rest)
        G = lambda y: np.asarray(aug.G_float(y, r), dtype=float).reshape(-1)  # noqa: E731
        J = lambda y: np.asarray(aug.J_float(y, r), dtype=float).reshape(n, n)  # noqa: E731
        res = newton(FLOAT64, G, J, u0, xtol=1e-15, max_iter=30, counter=counter)
        y = np.asarray(res.x, dtype=float)
        Gy = G(y) if np.all(np.isfinite(y)) else np.full(n, np.nan)
        if not np.max(np.abs(Gy)) <= 1e-8 * (1 + np.max(np.abs(y))):
            msg = (f"float64 Newton on the {aug.kind} augmented system with the rules at level {level} did not "
                   f"converge (residual {np.max(np.abs(Gy)):.2g}); the continuation's float64 value is "
                   f"{point.parameter} = {float(point.value)!r}. Refined in float64 because {why}")
            if throw:
                raise ThresholdError(msg)
            return Threshold(value=None, digits=0, status="failed", message=msg, counts=counter.as_dict(), **base)
        Jy = J(y)  # (one evaluation: with nested rules each costs as much as a Newton step)
        step = np.linalg.solve(Jy, Gy)
        roots.append(y)
        errors.append(abs(step[k]) + FLOAT64_RESIDUAL * float(np.linalg.cond(Jy)) * max(1.0, abs(y[k])))
        if level == 1:
            continue
        coarse, value = float(roots[-2][k]), float(y[k])
        rounding = max(errors[-2:])
        cap = min(digits, max(0, int(math.floor(-math.log10(rounding / abs(value))))) if value else 0)
        kept = _same_text_digits(mpmath.mpf(coarse), mpmath.mpf(value), cap)
        if kept >= cap:
            break
    diff = abs(value - coarse)
    with mpmath.workdps(30):
        shown = mpmath.mpf(_digits_text(mpmath.mpf(value), kept)) if kept else None
    state = {system_state.name: roots[-1][j] for j, system_state in
             enumerate(compiled.system.state[i] for i in point.subspace.free)}
    state.update({compiled.system.state[i].name: 0.0 for i in point.subspace.zero})
    status = "verified" if kept >= digits else ("partial" if kept else "failed")
    message = (f"{aug.kind} augmented system ({len(aug.unknowns)} unknowns) solved in float64 only: {why}. With the "
               f"rules at level {len(roots)} (1/{len(roots)} of each step, cuts moved out) the root moves by "
               f"{diff:.2g} from level {len(roots) - 1}, and float64 rounding of the root is about {rounding:.2g}: "
               f"the {kept} digits on which both roots agree are reported, of the finer one's (an estimate of the "
               f"rule's and the rounding's error, not a proof)")
    result = Threshold(value=shown, digits=kept, status=status, message=message, state=state, certified=False,
                       counts=counter.as_dict(), **base)
    if throw and status != "verified":
        raise ThresholdError(message)
    return result


def _refine(aug: AugmentedSystem, u0: np.ndarray, rest: list, digits: int, counter: Counter):
    """Newton at digits + 10 and, from there, at a higher precision; returns (r1, r2, agreeing digits)."""
    fun = lambda y: aug.G_mp(y, rest)  # noqa: E731
    jac = lambda y: aug.J_mp(y, rest)  # noqa: E731
    dps1 = digits + 10
    dps2 = digits + max(20, digits // 2) + 10
    return refine_two_precisions(fun, jac, u0, dps1, dps2, len(aug.subspace.free), counter=counter)


#: statements of numerical-rule loops per mpmath right-hand side above which a threshold is not refined in mpmath
#: (about 5 us each: erf on both sides at M = 1 runs 5.5e4, at M = 2 5.4e6, i.e. about 26 s per right-hand side,
#: and the refinement needs hundreds of evaluations of the augmented system and its Jacobian)
MP_RULE_STATEMENTS_LIMIT = 10 ** 6


_RULE_STATEMENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _mpmath_too_slow(system) -> str:
    """The reason a threshold of ``system`` is not refined in mpmath, or "" (see ``MP_RULE_STATEMENTS_LIMIT``); such
    a threshold is refined in float64 (``_refine_float64``). The count (a CSE of every rule group: 0.6 s for erf on
    both sides at M = 2) is kept per system."""
    from ..codegen._rules import rule_statements
    if system not in _RULE_STATEMENTS:
        _RULE_STATEMENTS[system] = rule_statements(system.rhs)
    count = _RULE_STATEMENTS[system]
    if count <= MP_RULE_STATEMENTS_LIMIT:
        return ""
    return (f"one mpmath evaluation of this system's right-hand side runs {count:.1e} statements of its "
            f"numerical rules (limit {MP_RULE_STATEMENTS_LIMIT:.0e}, about 5 us each), and the refinement needs "
            f"hundreds of evaluations of the augmented system and its Jacobian")


def refine_special_point(point: SpecialPoint, params: Mapping[str, object], digits: int = 30, *,
                         name: str = "special point", condition: sp.Expr | None = None,
                         closed_form: bool = True, closed_form_seconds: float = GUARD_SECONDS,
                         certify: bool = True, throw: bool = False) -> Threshold:
    """Refine a special point of a branch to ``digits`` verified digits (mpmath, augmented system).

    Arguments:
        point: a ``BP`` with a block (symmetry-breaking branch point), an ``LP`` (fold) or a ``USER`` point.
        params: values of all parameters (the point's parameter is an unknown: its value here is ignored); for a
            ``USER`` point also ``target_value``.
        digits: significant digits requested.

    Other arguments:
        name: the name reported. condition: the smooth expression h(x, p) of a ``USER`` point.
        closed_form: try SymPy for a closed form (``closed_form_seconds`` per attempt) and compare.
        certify: prove an enclosure with the Krawczyk test (``_certify``).
        throw: raise ``ThresholdError`` unless the result is ``verified``.

    Returns:
        A ``Threshold``.

    Raises:
        InvalidInputError: bad ``digits``; a branch point without a block (a generic, non-symmetric branch point
            is located in float64 by the continuation but not refined further).
        ThresholdError: with ``throw=True`` when the result is not ``verified``.
    """
    if not isinstance(digits, int) or digits < 1 or digits > 2000:
        raise InvalidInputError(f"digits must be an integer in [1, 2000], got {digits!r}")
    system = point.subspace.system
    compiled = as_compiled(system)
    values = {k: v for k, v in dict(params).items() if k != "target_value"}
    pp = ParameterPoint(system, {**values, point.parameter: point.value})
    rest = pp.mp_list(exclude=(point.parameter,))
    if condition is not None:
        rest = rest + [str(params["target_value"])]
    if _mpmath_too_slow(compiled.system):
        return _refine_float64(point, compiled, pp, condition, rest, digits, name, throw)
    counter = Counter()
    aug = _augmented_for(point, compiled, pp, condition)
    u0 = _initial_unknowns(aug, point, compiled, pp)
    r1, r2, agree = _refine(aug, u0, rest, digits, counter)
    k = len(point.subspace.free)
    base = dict(name=name, parameter=point.parameter, requested_digits=digits, float64=float(point.value),
                special_point=point, params=pp.values, counts=counter.as_dict())
    if not (r1.converged and r2.converged):
        msg = (f"mpmath Newton on the {aug.kind} augmented system did not converge (last relative step "
               f"{mpmath.nstr(r2.last_step, 3)}); float64 value {point.value!r}{_degenerate(point, compiled, pp)}")
        result = Threshold(value=None, digits=0, status="failed", message=msg, **base)
        if throw:
            raise ThresholdError(msg)
        return result
    verified = min(digits, agree)
    with mpmath.workdps(r2.dps):
        verified = _same_text_digits(r1.y[k], r2.y[k], verified)
        value = +r2.y[k]
    state = {system.state[i].name: r2.y[j] for j, i in enumerate(point.subspace.free)}
    state.update({system.state[i].name: mpmath.mpf(0) for i in point.subspace.zero})
    interval, certified, why = (_certify_root(aug, r2.y, rest, digits, k) if certify else
                                (None, False, "certification not requested"))
    if certified:
        with mpmath.workdps(r2.dps):
            lo_c, hi_c = mpmath.mpf(interval[0]), mpmath.mpf(interval[1])
            verified = enclosure_digits(lo_c, hi_c, digits)
            if not lo_c <= value <= hi_c:  # rule nodes: the proven root is the model's, the rule's root is beside it
                value = (lo_c + hi_c) / 2
    rule_check = ""
    if not certified and has_rule_nodes(system.rhs):  # the agreeing digits are the rule's: check with a finer one
        verified, rule_check = _finer_rule_digits(point, compiled, pp, condition, r2, rest, k, value, verified,
                                                  counter)
    status = "verified" if verified >= digits else "partial"
    message = (f"{aug.kind} augmented system ({len(aug.unknowns)} unknowns) solved at {r1.dps} and {r2.dps} digits; "
               + (f"{verified} digits certified ({why})" if certified else
                  f"{verified} agreeing digits (not certified: {why}){rule_check}"))
    cf = cf_text = cf_digits = None
    if closed_form and aug.kind == "block":
        found = _threshold_closed_form(aug, pp, r2.y, closed_form_seconds, r2.dps)
        if found is not None:
            cf, cf_text, exact = found
            with mpmath.workdps(r2.dps):
                cf_digits = min(agreeing_digits(exact, value), r2.dps - 5)
            message += f"; closed form agrees to {cf_digits} digits"
    result = Threshold(value=value, digits=verified, status=status, message=message, closed_form=cf,
                       closed_form_text=cf_text, closed_form_digits=cf_digits, state=state, interval=interval,
                       certified=certified, **base)
    if throw and status != "verified":
        raise ThresholdError(message)
    return result


#: eigenvalues of a block below this fraction of its largest count as zero at a located branch point
DEGENERATE_TOLERANCE = 1e-6


def _degenerate(point: SpecialPoint, compiled, pp: ParameterPoint) -> str:
    """Why a branch point's refinement may fail (or ""): several eigenvalues of its block zero together at the
    float64 point, a degenerate mode (e.g. exchangeable latents against each other), where the augmented system of a
    one-dimensional null space is singular."""
    if point.block is None or point.x is None:
        return ""
    try:
        J = compiled.jac(0.0, point.x, compiled.system.param_vector(pp.values))
        idx = list(point.block.indices)
        lam = np.abs(np.linalg.eigvals(point.block.restrict(J[np.ix_(idx, idx)])))
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return ""
    zero = int(np.sum(lam < DEGENERATE_TOLERANCE * max(1.0, float(lam.max()))))
    if zero < 2:
        return ""
    return (f"; {zero} eigenvalues of its {point.block.label} block are zero together there (a degenerate mode, e.g. "
            f"exchangeable latents against each other), so the augmented system of a one-dimensional null space is "
            f"singular: the point is located, not refined")


def _certify_root(aug: AugmentedSystem, y, rest: list, digits: int, k: int):
    """(interval of the parameter as decimal strings, certified, why) from the Krawczyk test on the augmented system
    around the refined root ``y`` (box half-width 10^-(digits + 5), relative).

    With rule nodes (``GaussRule1`` / ``GaussRule2``) the interval functions enclose the model's expectations with a
    proven quadrature error bound (``_rule_intervals``, asked for 10^-(digits + 6) in G), so the test is on the model's
    system, whose root differs from the rule's ``y`` by about the rule's error: ``krawczyk_widening`` moves the centre
    by chord steps and sizes the box from the proven widths. The interval is then as narrow as that proof allows and
    may hold fewer than ``digits`` digits (the caller reports ``enclosure_digits`` of it; ``why`` says the quadrature
    bound limits it)."""
    equations, jacobian, key, nonzero = list(aug.equations), aug.jacobian, aug.key, None
    moduli = sorted({a.args[0] for e in equations for a in sp.preorder_traversal(e) if isinstance(a, sp.Abs)},
                    key=sp.default_sort_key)
    try:
        if moduli:  # Abs made smooth at the root; the Krawczyk test checks that its argument keeps its sign
            at = {u: float(v) for u, v in zip(aug.unknowns, y)}
            at.update({r: float(v) for r, v in zip(aug.rest, rest)})
            equations = [resolve_nonsmooth(e, at) for e in equations]
            jacobian = symbolic_jacobian(equations, aug.unknowns)
            key = aug.key + "-smooth"
            nonzero = interval_functions(key + "-moduli", aug.unknowns, aug.rest, moduli, sp.Matrix([0]))[0]
        G, J, shape = interval_functions(key, aug.unknowns, aug.rest, equations, jacobian)
    except ValueError as exc:
        return None, False, str(exc)
    rules = getattr(G, "rule_nodes", False)
    with mpmath.workdps(digits + 25):
        if rules:  # the model's integrals enclosed with a proven quadrature bound: the box is as wide as it requires
            G.tolerance = max(10.0 ** -(digits + 6), 1e-60)

            def rule_jacobian(c):  # the rule's Jacobian in float64: the chord steps only need an approximation
                return aug.J_float(np.array([float(v) for v in c]), np.array([float(v) for v in rest]))
            cert, radius, _ = krawczyk_widening(G, J, shape, y, rest, digits=digits, nonzero=nonzero,
                                                jacobian_point=rule_jacobian)
        else:
            cert = krawczyk(G, J, shape, y, rest, radius_digits=digits + 5, nonzero=nonzero)
        if not cert.certified:
            if rules:
                return None, False, (f"{cert.message} (the model's rule nodes enclosed with their proven quadrature "
                                     f"error: {G.describe()})")
            return None, False, cert.message
        lo, hi = cert.enclosure[k]
        text = (mpmath.nstr(lo, digits + 12, strip_zeros=False), mpmath.nstr(hi, digits + 12, strip_zeros=False))
    # the printed ends are rounded outwards by re-checking them against the exact ends
    with mpmath.workdps(digits + 25):
        if mpmath.mpf(text[0]) > lo:
            text = (mpmath.nstr(lo - abs(lo) * mpmath.mpf(10) ** -(digits + 11), digits + 12), text[1])
        if mpmath.mpf(text[1]) < hi:
            text = (text[0], mpmath.nstr(hi + abs(hi) * mpmath.mpf(10) ** -(digits + 11), digits + 12))
    if rules:
        with mpmath.workdps(digits + 25):
            proven = enclosure_digits(mpmath.mpf(text[0]), mpmath.mpf(text[1]), digits)
        why = (f"Krawczyk on the model's system: a unique root in K(X) (box 1e-{radius} relative around the rule's "
               f"root moved by chord steps); {G.describe()}; the Jacobian's {J.n_nodes} node(s) to {J.bound():.0e}")
        if proven < digits:
            why = f"the proven bound of the quadrature error limits the enclosure; {why}"
        return text, True, why
    return text, True, cert.message


def _threshold_closed_form(aug: AugmentedSystem, pp: ParameterPoint, solution, seconds: float, dps: int):
    """(expression, text, exact value as mpf) of the threshold, or None. See the module docstring, step 4.

    The symbolic work (subsystem solve, factorisation, roots of the factors) depends on the augmented system only and
    is memoised per system (``memoised``: in memory and on disk); what depends on the parameter values (which
    solution and which factor vanish at the numerical root, the exact real root) is done on every call."""
    n_f = len(aug.subspace.free)
    p_sym = aug.unknowns[n_f]
    try:
        candidates = memoised("threshold-candidates", aug.key, lambda: _closed_form_candidates(aug, seconds))
    except SolveTimeout:
        return None
    if candidates is None:
        return None
    exact_subs = {s: sp.Rational(pp.text[s.name]) for s in aug.system.params if s != p_sym}
    numeric_x = {aug.unknowns[i]: solution[i] for i in range(n_f)}
    value30 = sp.Float(mpmath.nstr(solution[n_f], 40), 40)
    try:
        with time_limit(seconds):
            for sol, factors in candidates:
                if not _solution_matches(sol, exact_subs, p_sym, solution[n_f], numeric_x):
                    continue
                for factor in factors:
                    f_num = factor.subs(exact_subs)
                    poly = sp.Poly(f_num, p_sym)
                    scale = max(abs(c) for c in poly.all_coeffs()) * max(1, abs(value30)) ** poly.degree()
                    if abs(sp.N(f_num.subs(p_sym, value30), 30)) > 1e-20 * scale:
                        continue
                    return _closed_form_of_factor(factor, f_num, p_sym, solution[n_f], exact_subs, dps)
    except SolveTimeout:
        return None
    return None


def _closed_form_candidates(aug: AugmentedSystem, seconds: float):
    """[(solution of the subsystem, [factors of the determinant's numerator that contain the parameter])] of an
    augmented ``block`` system, or None when it has no closed form (no square subsystem, or SymPy found no
    solution). Raises ``SolveTimeout`` when a guarded SymPy call ran out of time (the caller must not remember it)."""
    n_f = len(aug.subspace.free)
    x_unknowns = list(aug.unknowns[:n_f])
    p_sym = aug.unknowns[n_f]
    eqs = [sp.numer(sp.together(e)) for e in aug.equations[:n_f]]
    det = aug.equations[-1]
    xs = set(x_unknowns)
    U = det.free_symbols & xs
    while True:
        E = [e for e in eqs if (e.free_symbols & xs) and (e.free_symbols & xs) <= U]
        if len(E) >= len(U):
            break
        grow = set().union(*[(e.free_symbols & xs) for e in eqs if e.free_symbols & U]) if U else set()
        if grow <= U:
            return None
        U |= grow
    sols = [{}]
    if U:
        sols = solve_cached(E, sorted(U, key=lambda s: s.name), seconds=seconds, tag="threshold-sub")
        if sols is None:
            raise SolveTimeout()
        if not sols:
            return None
    out = []
    with time_limit(seconds):
        for sol in sols:
            numer = sp.numer(sp.together(det.subs(sol) if sol else det))
            out.append((sol, [f for f, _ in sp.factor_list(numer)[1] if p_sym in f.free_symbols]))
    return out


def _solution_matches(sol: dict, exact_subs: dict, p_sym: sp.Symbol, p_value, numeric_x: dict) -> bool:
    """Whether a symbolic solution of the subsystem takes the numerical values of the root at these parameters."""
    for s, expr in sol.items():
        try:
            val = complex(sp.N(expr.subs(exact_subs).subs(p_sym, sp.Float(str(p_value), 30)), 30))
        except (TypeError, ValueError):
            return False
        if abs(val - complex(numeric_x[s])) > 1e-8 * (1 + abs(val)):
            return False
    return True


def _factor_roots(factor: sp.Expr, p_sym: sp.Symbol):
    """(factored roots, or None above degree 2; the factored factor) of a factor in the parameter (memoised)."""
    def compute():
        degree = sp.degree(factor, p_sym)
        roots = [sp.factor(r) for r in sp.solve(factor, p_sym)] if degree <= 2 else None
        return roots, sp.factor(factor)

    return memoised("threshold-factor-roots", sp.srepr((factor, p_sym)), compute)


def _closed_form_of_factor(factor: sp.Expr, f_num: sp.Expr, p_sym: sp.Symbol, target, exact_subs: dict, dps: int):
    """(expression, text, exact value) for the root of ``factor`` (symbolic) whose numeric version ``f_num`` vanishes
    at ``target``: the explicit root for degree <= 2, else the polynomial equation and its exact real root."""
    real = [r for r in sp.Poly(f_num, p_sym).all_roots() if r.is_real]
    if not real:
        return None
    with mpmath.workdps(dps):
        vals = [mpmath.mpf(str(sp.N(r, dps + 10))) for r in real]
        i = min(range(len(vals)), key=lambda j: abs(vals[j] - target))
    degree = sp.degree(factor, p_sym)
    roots, factored = _factor_roots(factor, p_sym)
    if degree <= 2:
        goal = complex(sp.N(real[i], 30))
        expr = min(roots, key=lambda r: abs(complex(sp.N(r.subs(exact_subs), 30)) - goal))
        return expr, str(expr), vals[i]
    text = (f"the root {p_sym} = {mpmath.nstr(vals[i], 12)} (real root {i + 1} of {len(real)} at these parameters) "
            f"of {factored} = 0, a polynomial of degree {degree} in {p_sym}")
    return sp.Eq(factor, 0), text, vals[i]


# ------------------------------------------------------------------------------------------------ entry points
def threshold(name: str, system, params: Mapping[str, object], *, parameter: str = "beta", digits: int = 30,
              search: tuple[float, float] = (1e-3, 1e6), closed_form: bool = True, certify: bool = True,
              throw: bool = False) -> Threshold:
    """Locate a named threshold (``THRESHOLDS``) to ``digits`` verified digits.

    Arguments:
        name: ``collapse``, ``noise`` or ``lr``.
        system: a ``Model`` (its online-SGD system is derived), a ``DerivedSystem`` or a ``CompiledSystem``.
        params: values of all parameters (the value of ``parameter`` is ignored).

    Other arguments:
        parameter: the threshold parameter (default ``beta``). digits: significant digits requested.
        search: the parameter range searched by continuation (geometric steps).
        closed_form: also try SymPy for a closed form and compare. throw: raise unless ``verified``.

    Returns:
        A ``Threshold``; ``status`` says whether it was found and verified.

    Raises:
        InvalidInputError: unknown name or parameter, bad digits or range.
        ThresholdError: with ``throw=True`` when the status is not ``verified``.
    """
    if name not in THRESHOLDS:
        raise InvalidInputError(f"unknown threshold {name!r}; known: {', '.join(THRESHOLDS)}")
    lo, hi = (float(v) for v in search)
    if not (0 < lo < hi) or not math.isfinite(hi):
        raise InvalidInputError(f"the search range must satisfy 0 < lo < hi < inf, got {search}")
    compiled = _as_system(system)
    if compiled.system.kind != "ode" and name != "collapse":
        raise InvalidInputError(f"the {name!r} threshold is defined by the stability of the online-SGD dynamics; "
                                f"this is a {compiled.system.kind!r} system")
    if name != "collapse" and activated(compiled):
        raise InvalidInputError(f"the {name!r} threshold is not implemented for models with a non-linear activation "
                                f"(only 'collapse' is): the sampled noise keeps Q, Q_tilde at O(tau) on the collapsed "
                                f"branch, so the invariant subspace whose branch point defines it for the linear model "
                                f"does not exist")
    values = dict(params)
    values.setdefault(parameter, lo)
    pp = ParameterPoint(compiled.system, values)
    pp.index(parameter)
    branch, point, why = THRESHOLDS[name].choose(compiled, pp, parameter, lo, hi)
    if point is None:
        result = Threshold(name=name, parameter=parameter, value=None, digits=0, requested_digits=digits,
                           status="not_found", message=why, params=pp.values,
                           counts=dict(branch.counts) if branch is not None else {})
        if throw:
            raise ThresholdError(why)
        return result
    result = refine_special_point(point, pp.values, digits, name=name, closed_form=closed_form, certify=certify,
                                  throw=False)
    if throw and result.status != "verified":
        raise ThresholdError(result.message)
    return result


def locate_condition(system, start, params: Mapping[str, object], observable: str | sp.Expr, value: float,
                     parameter: str, stop: float, *, digits: int = 30, throw: bool = False) -> Threshold:
    """The parameter value at which an observable (or any expression in state and parameters) reaches ``value``
    along the branch through ``start``.

    Arguments:
        system: a derived or compiled system (or a ``Model``). start: a ``FixedPoint`` or state on the branch.
        params: parameter values. observable: a name in ``system.observables`` (e.g. ``"eg"``) or a SymPy expression.
        value: the target. parameter, stop: the continuation parameter and how far to look.

    Returns:
        A ``Threshold`` named ``condition``.
    """
    compiled = _as_system(system)
    sysd = compiled.system
    if isinstance(observable, str):
        if observable not in sysd.observables:
            raise InvalidInputError(f"unknown observable {observable!r}; known: {', '.join(sysd.observables)}")
        expr = sysd.observables[observable]
        label = observable
        fun = None
    else:
        expr = sp.sympify(observable, strict=True)  # strict: a SymPy object or number, never text to parse
        label = str(expr)
        fn = sp.lambdify([list(sysd.state), list(sysd.params)], expr, "numpy")
        fun = (lambda x, p: fn(list(x), list(p)))  # noqa: E731
    spec = {label: (fun, float(value))} if fun is not None else {label: float(value)}
    branch = continue_branch(compiled, start, params, parameter, stop, conditions=spec, relative_step=0.15)
    points = [s for s in branch.special_points if s.kind == "USER"]
    pp = ParameterPoint(sysd, {**(dict(start.params) if isinstance(start, FixedPoint) else {}), **dict(params)})
    if not points:
        msg = (f"{label} does not reach {value} on the branch for {parameter} between {branch.p[0]:g} and "
               f"{branch.p[-1]:g}")
        if throw:
            raise ThresholdError(msg)
        return Threshold(name="condition", parameter=parameter, value=None, digits=0, requested_digits=digits,
                         status="not_found", message=msg, params=pp.values)
    point = points[0]
    at = {s: float(v) for s, v in zip(sysd.state, point.x)}
    at.update({s: float(pp.values[s.name]) for s in sysd.params})
    at[sysd.params[pp.index(parameter)]] = point.value
    smooth = resolve_nonsmooth(expr, at)
    return refine_special_point(point, {**pp.values, "target_value": float(value)}, digits, name="condition",
                                condition=smooth, closed_form=False, throw=throw)


@dataclasses.dataclass(frozen=True, eq=False)
class ThresholdCurve:
    """A threshold followed in a second parameter.

    Attributes:
        name, parameter, second: the threshold, its parameter and the second parameter.
        second_values, values: the curve (float64, each point a converged solution of the augmented system).
        status: ``ok`` or ``failed`` (the curve stops where Newton failed; ``message`` says where).
        start: the verified threshold at the first value of the second parameter.
    """

    name: str
    parameter: str
    second: str
    second_values: np.ndarray
    values: np.ndarray
    status: str
    message: str
    start: Threshold
    counts: Mapping[str, int]

    def to_dict(self) -> dict:
        return {"threshold": self.name, "parameter": self.parameter, "second_parameter": self.second,
                self.second: self.second_values.tolist(), self.parameter: self.values.tolist(),
                "start": self.start.as_dict(), "status": self.status, "message": self.message, **dict(self.counts)}

    def to_csv(self) -> str:
        lines = [f"{self.second},{self.parameter}_{self.name}"]
        lines += [f"{q!r},{v!r}" for q, v in zip(self.second_values.tolist(), self.values.tolist())]
        return "\n".join(lines) + "\n"

    def plot(self, path, *, title: str | None = None) -> None:
        """Write a figure of the curve (matplotlib, Agg backend)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot(self.second_values, self.values, "-", color="C0")
        ax.set_xlabel(_label(self.second))
        ax.set_ylabel(f"{_label(self.parameter)} ({self.name} threshold)")
        ax.set_title(title or f"{self.name} threshold vs {self.second}")
        fig.tight_layout()
        fig.savefig(path, dpi=150)
        plt.close(fig)


def _label(name: str) -> str:
    greek = {"beta": r"$\beta$", "lam": r"$\lambda$", "tau": r"$\tau$", "rho": r"$\rho$", "eta": r"$\eta$",
             "alpha": r"$\alpha$"}
    return greek.get(name, name)


def threshold_curve(system, name: str, params: Mapping[str, object], second: str, second_values: Sequence[float],
                    *, parameter: str = "beta", digits: int = 20, search: tuple[float, float] = (1e-3, 1e6),
                    throw: bool = False) -> ThresholdCurve:
    """Follow a named threshold in a second parameter (beta_c vs lam, beta_noise vs tau, ...).

    The threshold is located and verified at the first value; then its augmented system is solved by float64
    Newton (generated numpy code, exact Jacobian) along ``second_values``, each solve starting from a linear
    extrapolation of the previous two; a failed solve is retried with intermediate values (up to 6 halvings).

    Returns:
        A ``ThresholdCurve`` (``to_csv``, ``to_dict``, ``plot``).
    """
    compiled = _as_system(system)
    sysd = compiled.system
    qs = np.asarray(list(second_values), dtype=float)
    if qs.ndim != 1 or len(qs) < 2 or not np.all(np.isfinite(qs)):
        raise InvalidInputError("the second parameter needs at least two finite values")
    if second == parameter:
        raise InvalidInputError("the second parameter must differ from the threshold parameter")
    pp = ParameterPoint(sysd, {**dict(params), second: float(qs[0])})
    pp.index(second)
    first = threshold(name, compiled, pp.values, parameter=parameter, digits=digits, search=search)
    if first.value is None:
        msg = f"no {name} threshold at {second} = {qs[0]:g}: {first.message}"
        if throw:
            raise ThresholdError(msg)
        return ThresholdCurve(name, parameter, second, qs[:0], np.empty(0), "failed", msg, first, {})
    aug = _augmented_for(first.special_point, compiled, pp)
    rest_names = [s.name for s in aug.rest]
    j = rest_names.index(second)
    rest = np.array([pp.values[n] for n in rest_names])
    k = len(aug.subspace.free)
    free = list(aug.subspace.free)
    u = np.array([float(first.state[sysd.state[i].name]) for i in free] + [float(first.value)])
    if aug.kind in ("block-null", "fold"):
        u = np.concatenate([u, _initial_unknowns(aug, first.special_point, compiled, pp)[k + 1:]])
    counter = Counter()

    def solve(u0, q):
        r = rest.copy()
        r[j] = q
        n = len(u0)
        res = newton(FLOAT64, lambda y: np.asarray(aug.G_float(y, r), dtype=float).reshape(-1),
                     lambda y: np.asarray(aug.J_float(y, r), dtype=float).reshape(n, n), u0, xtol=1e-13,
                     max_iter=12, counter=counter)
        return res.x if res.converged else None

    out_q, out_u = [qs[0]], [u]
    status, message = "ok", f"followed the {name} threshold over {len(qs)} values of {second}"
    for q_next in qs[1:]:
        targets = [q_next]
        depth = 0
        while targets:
            q = targets[0]
            if len(out_u) >= 2 and out_q[-1] != out_q[-2]:
                slope = (out_u[-1] - out_u[-2]) / (out_q[-1] - out_q[-2])
                guess = out_u[-1] + slope * (q - out_q[-1])
            else:
                guess = out_u[-1]
            y = solve(guess, q)
            if y is None:
                depth += 1
                if depth > 6:
                    status = "failed"
                    message = (f"Newton on the augmented system failed at {second} = {q:g}; the curve stops at "
                               f"{second} = {out_q[-1]:g}")
                    break
                targets.insert(0, 0.5 * (out_q[-1] + q))
                continue
            out_q.append(q)
            out_u.append(y)
            targets.pop(0)
        if status != "ok":
            break
    keep = [i for i, q in enumerate(out_q) if i == 0 or q in set(qs.tolist())]
    Q = np.array([out_q[i] for i in keep])
    V = np.array([out_u[i][k] for i in keep])
    result = ThresholdCurve(name, parameter, second, Q, V, status, message, first, counter.as_dict())
    if throw and status != "ok":
        raise ThresholdError(message)
    return result
