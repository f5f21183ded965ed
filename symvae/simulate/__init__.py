"""Ground truth at finite N: online SGD of a model, vectorised over seeds (numba), beside the N -> infinity theory;
and the finite-N empirical risk minimiser on n = alpha N samples (``erm_exact``, ``erm_gradient``), the ground truth
of the statics.

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
from ._initial import random_initial_state as random_initial_state
from ._erm import Dataset as Dataset
from ._erm import ErmResult as ErmResult
from ._erm import erm_exact as erm_exact
from ._erm import erm_gradient as erm_gradient
from ._erm import finite_size_study as finite_size_study
from ._erm import fit_finite_size as fit_finite_size
from ._erm import literal_loss as literal_loss
from ._erm import sample_dataset as sample_dataset
