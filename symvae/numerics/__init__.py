"""Numerics on derived systems F(x; p): integration, fixed points, continuation and thresholds.

Everything here works on a ``DerivedSystem`` / ``CompiledSystem`` (ODE right-hand sides or saddle-point systems):
locate in float64 with the compiled Jacobians, polish and verify in mpmath.

The public names are imported on first use (PEP 562): integrating with an already generated module imports neither
SciPy nor SymPy (the fixed-point, continuation and threshold modules do).
"""
from .._lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "AugmentedSystem": "._augmented", "augmented_system": "._augmented",
    "Branch": "._continuation", "ContinuationError": "._continuation", "SpecialPoint": "._continuation",
    "continue_branch": "._continuation", "switch_branch": "._continuation",
    "FixedPoint": "._fixed_points", "FixedPointError": "._fixed_points", "FixedPointSet": "._fixed_points",
    "find_fixed_points": "._fixed_points", "fixed_point": "._fixed_points", "polish_fixed_point": "._fixed_points",
    "IntegrationError": "._integrate", "Trajectory": "._integrate", "integrate": "._integrate",
    "Block": "._subspaces", "Subspace": "._subspaces", "invariant_subspace": "._subspaces",
    "threshold_derivation_files": "._threshold_report", "write_threshold_derivations": "._threshold_report",
    "THRESHOLDS": "._thresholds", "Threshold": "._thresholds", "ThresholdCurve": "._thresholds",
    "ThresholdError": "._thresholds", "collapsed_branch": "._thresholds", "locate_condition": "._thresholds",
    "refine_special_point": "._thresholds", "threshold": "._thresholds", "threshold_curve": "._thresholds",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
