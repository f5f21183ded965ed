"""Statics: the global minimiser of the beta-VAE loss on n = alpha N samples, N -> infinity.

Pipeline: ``derive_statics`` (replica free energy -> saddle-point equations, SymPy) -> ``solve_statics`` (compiled
saddle point) -- checked against ``closed_form`` (random-matrix eigen-solution) and the finite-N ground truth
``erm_exact`` / ``erm_gradient`` (``symvae.simulate``, imported here too) -> thresholds (``statics_threshold``).
The pictures (``phase_diagram``, ``eg_curves``, ``rd_curves``) are in ``symvae.analysis``.
"""
from ._closed_form import PHASES as PHASES
from ._closed_form import ClosedForm as ClosedForm
from ._closed_form import classify_phase as classify_phase
from ._closed_form import closed_form as closed_form
from ._closed_form import statics_param_names as statics_param_names
from ._derivation import statics_markdown as statics_markdown
from ._derivation import statics_derivation_files as statics_derivation_files
from ._derivation import write_statics_derivations as write_statics_derivations
from ..simulate._erm import Dataset as Dataset
from ..simulate._erm import ErmResult as ErmResult
from ..simulate._erm import erm_exact as erm_exact
from ..simulate._erm import erm_gradient as erm_gradient
from ..simulate._erm import finite_size_study as finite_size_study
from ..simulate._erm import fit_finite_size as fit_finite_size
from ..simulate._erm import literal_loss as literal_loss
from ..simulate._erm import sample_dataset as sample_dataset
from ._replica import StaticsError as StaticsError
from ._replica import StaticsResult as StaticsResult
from ._replica import polish as polish
from ._replica import solve_statics as solve_statics
from ._replica import statics_system as statics_system
from ._spectrum import Slot as Slot
from ._spectrum import bulk_edge as bulk_edge
from ._spectrum import outlier as outlier
from ._spectrum import spectrum_slots as spectrum_slots
from ._thresholds import THRESHOLDS as THRESHOLDS
from ._thresholds import StaticsThresholdError as StaticsThresholdError
from ._thresholds import collapse_threshold as collapse_threshold
from ._thresholds import detection_threshold as detection_threshold
from ._thresholds import eg_peak as eg_peak
from ._thresholds import optimal_beta as optimal_beta
from ._thresholds import collapse_in as collapse_in
from ._thresholds import collapse_threshold_saddle as collapse_threshold_saddle
from ._thresholds import statics_threshold as statics_threshold
from ._thresholds import threshold_parameters as threshold_parameters
