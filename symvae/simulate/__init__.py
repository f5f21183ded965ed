"""Ground-truth finite-N online SGD of a model, vectorised over seeds (numba), beside the N -> infinity theory.

Build chain: ``build_simulator(model)`` (per-sample gradient -> generated, cached numba module) -> ``simulate``.
"""
from ._build import Simulator as Simulator
from ._build import build_simulator as build_simulator
from ._initial import gram_factor as gram_factor
from ._initial import initial_vectors as initial_vectors
from ._nonlinear import NonlinearSimulation as NonlinearSimulation
from ._nonlinear import simulate_nonlinear as simulate_nonlinear
from ._simulate import SimulationResult as SimulationResult
from ._simulate import simulate as simulate
from ._initial import default_initial_state as default_initial_state
