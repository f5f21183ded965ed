"""Collapse threshold of models whose collapsed fixed point is not the origin of the overlaps (issue 11).

In a VAE that samples eps (non-linear activations), SGD noise keeps Q, Q_tilde, R at O(tau) values on the collapsed
branch (m = m_tilde = 0), so the all-zero start of ``collapsed_branch`` is no fixed point. Here the collapsed point is
found by Newton at a large value of the parameter (where it is the only stable point near the all-zero start), continued
down in the invariant subspace m = m_tilde = 0 with the public continuation, and the branch point at which its signal
block changes stability is refined to verified digits by ``refine_special_point`` -- the same machinery as
``threshold("collapse", ...)``.

``threshold("collapse", ...)`` (and ``symvae threshold collapse``) does this by itself for activated models, with the
start found automatically below the step-size edge (``_thresholds.stable_collapsed_start``) and a Krawczyk
certificate; the functions here take an explicit start.
"""
from __future__ import annotations

from typing import Mapping

from ..codegen import compile_system
from ..derive import DerivedSystem, derive_dynamics
from ..model import Model
from ._continuation import continue_branch
from ._fixed_points import collapsed_start, fixed_point
from ._thresholds import Threshold, ThresholdError, refine_special_point

__all__ = ["collapse_point_from_above", "collapse_threshold_from_above"]


def collapse_point_from_above(compiled, params: Mapping[str, object], *, parameter: str = "beta",
                              start: float = 20.0, stop: float = 1e-2):
    """(branch, special point or None, message): the collapsed branch continued down from ``start`` and its first
    signal branch point (float64; see ``collapse_threshold_from_above`` for the refinement)."""
    values = {**dict(params), parameter: float(start)}
    point0 = fixed_point(compiled, collapsed_start(compiled.system), values)
    if not (point0.stable and point0.physical):
        return None, None, (f"the collapsed point found at {parameter} = {start:g} is not a stable physical fixed "
                            f"point (stable={point0.stable}, physical={point0.physical}); raise start")
    branch = continue_branch(compiled, point0, values, parameter, stop, relative_step=0.15, max_steps=5000)
    cands = [s for s in branch.special_points
             if s.kind == "BP" and s.block is not None and s.block.label == "signal"]
    if not cands:
        return branch, None, f"no signal branch point on the collapsed branch for {parameter} in [{stop:g}, {start:g}]"
    return branch, max(cands, key=lambda s: s.value), ""  # the first met coming down from the collapsed side


def collapse_threshold_from_above(system, params: Mapping[str, object], *, parameter: str = "beta",
                                  start: float = 20.0, stop: float = 1e-2, digits: int = 30,
                                  throw: bool = False) -> Threshold:
    """The collapse threshold, approached from the collapsed side (``parameter`` decreasing from ``start``).

    Arguments:
        system: a ``Model``, ``DerivedSystem`` or ``CompiledSystem``; params: values of all parameters.

    Other arguments:
        start: parameter value at which the collapsed point is stable (found by Newton from the all-zero state).
        stop: lowest parameter value searched. digits: verified digits requested. throw: raise unless verified.

    Returns:
        A ``Threshold`` (``status`` ``"verified"`` when refined to ``digits``; ``"not_found"`` with a message if no
        signal branch point lies in [stop, start]).

    Raises:
        ThresholdError: with ``throw=True`` unless verified.
    """
    if isinstance(system, Model):
        system = derive_dynamics(system)
    compiled = compile_system(system) if isinstance(system, DerivedSystem) else system
    values = {**dict(params), parameter: float(start)}
    branch, point, why = collapse_point_from_above(compiled, params, parameter=parameter, start=start, stop=stop)
    if point is None:
        if throw:
            raise ThresholdError(why)
        return Threshold(name="collapse", parameter=parameter, value=None, digits=0, requested_digits=digits,
                         status="not_found", message=why, params=values,
                         counts=dict(branch.counts) if branch is not None else {})
    return refine_special_point(point, values, digits, name="collapse", closed_form=False, throw=throw)
