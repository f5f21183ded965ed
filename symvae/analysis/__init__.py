"""Analysis built on the numerics: the end-to-end demo (and phase diagrams, RD curves, annealing studies)."""
from ._demo import run_demo as run_demo
