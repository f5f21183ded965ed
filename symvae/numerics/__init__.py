"""Numerics on derived systems: integration (and, built on the same compiled functions, fixed points,
continuation and thresholds)."""
from ._integrate import IntegrationError as IntegrationError
from ._integrate import Trajectory as Trajectory
from ._integrate import integrate as integrate
