"""Analysis built on the numerics: the end-to-end demo (and phase diagrams, RD curves, annealing studies)."""
from ._demo import run_demo as run_demo
from ._executor import EXECUTORS as EXECUTORS
from ._executor import DaskExecutor as DaskExecutor
from ._executor import Executor as Executor
from ._executor import ProcessExecutor as ProcessExecutor
from ._executor import SerialExecutor as SerialExecutor
from ._executor import chunk_bounds as chunk_bounds
from ._executor import make_executor as make_executor
from ._sweep import METRICS as METRICS
from ._sweep import SweepPoint as SweepPoint
from ._sweep import SweepResult as SweepResult
from ._sweep import entanglement as entanglement
from ._sweep import evaluate_point as evaluate_point
from ._sweep import signed_matching as signed_matching
from ._sweep import sweep as sweep
