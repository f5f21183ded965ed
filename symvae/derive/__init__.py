"""Symbolic derivation: online-SGD ODEs (and, through the same ``DerivedSystem``, saddle-point systems)."""
from ._derive import derive_dynamics as derive_dynamics
from ._diff import jacobian as symbolic_jacobian
from ._dynamics import gradient_coefficients as gradient_coefficients
from ._gaussian import gaussian_expectation as gaussian_expectation
from ._system import DerivedSystem as DerivedSystem
from ._dynamics import observables as observables
from ._spectral import derive_spectral as derive_spectral
from ._statics import ALPHA as ALPHA
from ._statics import derive_statics as derive_statics
from ._statics import replica_free_energy as replica_free_energy
