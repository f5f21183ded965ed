"""Numerics on derived systems F(x; p): integration, fixed points, continuation and thresholds.

Everything here works on a ``DerivedSystem`` / ``CompiledSystem`` (ODE right-hand sides or saddle-point systems):
locate in float64 with the compiled Jacobians, polish and verify in mpmath.
"""
from ._augmented import AugmentedSystem as AugmentedSystem
from ._augmented import augmented_system as augmented_system
from ._continuation import Branch as Branch
from ._continuation import ContinuationError as ContinuationError
from ._continuation import SpecialPoint as SpecialPoint
from ._continuation import continue_branch as continue_branch
from ._continuation import switch_branch as switch_branch
from ._fixed_points import FixedPoint as FixedPoint
from ._fixed_points import FixedPointError as FixedPointError
from ._fixed_points import FixedPointSet as FixedPointSet
from ._fixed_points import find_fixed_points as find_fixed_points
from ._fixed_points import fixed_point as fixed_point
from ._fixed_points import polish_fixed_point as polish_fixed_point
from ._integrate import IntegrationError as IntegrationError
from ._integrate import Trajectory as Trajectory
from ._integrate import integrate as integrate
from ._subspaces import Block as Block
from ._subspaces import Subspace as Subspace
from ._subspaces import invariant_subspace as invariant_subspace
from ._threshold_report import threshold_derivation_files as threshold_derivation_files
from ._threshold_report import write_threshold_derivations as write_threshold_derivations
from ._thresholds import THRESHOLDS as THRESHOLDS
from ._thresholds import Threshold as Threshold
from ._thresholds import ThresholdCurve as ThresholdCurve
from ._thresholds import ThresholdError as ThresholdError
from ._thresholds import collapsed_branch as collapsed_branch
from ._thresholds import locate_condition as locate_condition
from ._thresholds import refine_special_point as refine_special_point
from ._thresholds import threshold as threshold
from ._thresholds import threshold_curve as threshold_curve
