"""Symbolic derivation: online-SGD ODEs (and, through the same ``DerivedSystem``, saddle-point systems)."""
from ._dynamics import derive_dynamics as derive_dynamics
from ._dynamics import gradient_coefficients as gradient_coefficients
from ._gaussian import gaussian_expectation as gaussian_expectation
from ._system import DerivedSystem as DerivedSystem
from ._dynamics import observables as observables
