"""``derive_dynamics``: the one entry point of the online-SGD derivation, cached, dispatching on the model's
activations (linear models: Wick's theorem in ``_dynamics``; activated ones: the Gaussian-expectation engine in
``_nonlinear_dynamics``)."""
from __future__ import annotations

from ..model import Model
from ._dynamics import derive_linear_dynamics
from ._nonlinear_dynamics import derive_nonlinear_dynamics, is_nonlinear
from ._system import DerivedSystem, cached_derivation

__all__ = ["derive_dynamics"]


def derive_dynamics(model: Model, *, cache: bool = True, inline_schedules: bool = False) -> DerivedSystem:
    """Derive the online-SGD ODE system dx/dt = F(x, t; p) of a model: gradients of the per-sample loss -> one-step
    overlap increments (first and second order in the step) -> Gaussian expectations -> ``DerivedSystem``.

    Arguments:
        model: the model definition.
        cache: reuse a previous derivation of the same model (in memory, then on disk under ``cache_root()``).
        inline_schedules: derive a time-dependent parameter (a beta(t) schedule) inside the equations, as one more
            expression of the loss. By default it is kept out: the model without it is derived (once, shared by
            every schedule) and the expression is substituted afterwards (``Model.split_schedules``), so the
            compiled system reuses the base model's compiled code and runs the expression as a runtime program.

    Returns:
        A ``DerivedSystem`` of kind ``"ode"``.

    Raises:
        DerivationError: the model has no N -> infinity ODE limit (e.g. a step size scaled too large), or an
            activation whose expectations have no closed form.
    """
    if not inline_schedules:
        base, schedules = model.split_schedules()
        if schedules:
            return derive_dynamics(base, cache=cache).with_schedules(model, schedules)
    if not cache:
        return _derive(model)
    return cached_derivation("dynamics", model, _derive)


def _derive(model: Model) -> DerivedSystem:
    return derive_nonlinear_dynamics(model) if is_nonlinear(model) else derive_linear_dynamics(model)
