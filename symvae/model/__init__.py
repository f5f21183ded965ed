"""Model definitions: data model, linear VAE, training protocol, and the named variants shipped with symvae."""
from ._model import LinearVAE as LinearVAE
from ._model import Model as Model
from ._model import N as N
from ._model import OnlineSGD as OnlineSGD
from ._model import SpikedCovariance as SpikedCovariance
from ._model import t as t
from ._symbols import ORDER_PARAMETERS as ORDER_PARAMETERS
from ._symbols import SymbolTable as SymbolTable
from ._symbols import Vector as Vector
from ._variants import VARIANTS as VARIANTS
from ._variants import make_model as make_model
from ._state import default_init as default_init
from ._state import gram_matrix as gram_matrix
from ._state import parse_init_json as parse_init_json
from ._state import validate_state as validate_state
