"""Cross-checking hand derivations against symvae's derived equations, and comparing model variants.

``read_hand_derivation`` reads a LaTeX (Markdown/.tex) or SymPy (.py) file, ``check`` compares it equation by
equation (exact canonicalisation and 50-digit numerics), ``diff_variants`` compares two variants term by term.
Settings (``dynamics``: ODE right-hand sides; ``statics``: saddle-point residuals and free energies, see
``_residual``) are a registry: ``SETTINGS``, ``register_setting``.
"""
from ._check import CheckReport as CheckReport
from ._check import EquationResult as EquationResult
from ._check import VERDICTS as VERDICTS
from ._check import check as check
from ._check import check_file as check_file
from ._compare import Comparison as Comparison
from ._compare import PointSampler as PointSampler
from ._compare import Witness as Witness
from ._compare import canonical_difference as canonical_difference
from ._compare import compare as compare
from ._diff import EquationDiff as EquationDiff
from ._diff import VariantDiff as VariantDiff
from ._diff import diff_variants as diff_variants
from ._header import Header as Header
from ._reader import HandDerivation as HandDerivation
from ._reader import HandEquation as HandEquation
from ._reader import read_hand_derivation as read_hand_derivation
from ._settings import SETTINGS as SETTINGS
from ._settings import DynamicsSetting as DynamicsSetting
from ._settings import Setting as Setting
from ._settings import StaticsSetting as StaticsSetting
from ._settings import TargetSystem as TargetSystem
from ._settings import get_setting as get_setting
from ._settings import register_setting as register_setting
from ._source import CheckInputError as CheckInputError
