"""Analysis built on the numerics and the statics: the end-to-end demo, the statics pictures (phase diagrams, eg and
RD curves), sweeps, annealing studies.

Names are imported on first use (PEP 562), so the command line registers its study commands without importing the
numerics.
"""
from .._lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "run_demo": "._demo",
    "EXECUTORS": "._executor",
    "DaskExecutor": "._executor",
    "Executor": "._executor",
    "ProcessExecutor": "._executor",
    "SerialExecutor": "._executor",
    "chunk_bounds": "._executor",
    "make_executor": "._executor",
    "METRICS": "._sweep",
    "SweepPoint": "._sweep",
    "SweepResult": "._sweep",
    "entanglement": "._sweep",
    "evaluate_point": "._sweep",
    "signed_matching": "._sweep",
    "sweep": "._sweep",
    "SCHEDULES": "._anneal",
    "AnnealingStudy": "._anneal",
    "anneal": "._anneal",
    "optimal_rate_vs_tau": "._anneal",
    "NScalingResult": "._nscaling",
    "n_scaling": "._nscaling",
    "reproduce": "._reproduce",
    "METHODS": "._diagrams",
    "EgCurves": "._diagrams",
    "PhaseDiagram": "._diagrams",
    "RDCurves": "._diagrams",
    "UNSOLVED": "._diagrams",
    "eg_curves": "._diagrams",
    "phase_diagram": "._diagrams",
    "rd_curves": "._diagrams",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
