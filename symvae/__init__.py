"""symvae: symbolic-numeric theory of the high-dimensional asymptotics of variational autoencoders."""
from .derive import DerivedSystem as DerivedSystem
from .derive import derive_dynamics as derive_dynamics
from .errors import DerivationError as DerivationError
from .errors import InvalidInputError as InvalidInputError
from .errors import SymvaeError as SymvaeError
from .model import VARIANTS as VARIANTS
from .model import LinearVAE as LinearVAE
from .model import Model as Model
from .model import OnlineSGD as OnlineSGD
from .model import SpikedCovariance as SpikedCovariance
from .model import make_model as make_model

__version__ = "0.1.0"
from .codegen import compile_system as compile_system
from .numerics import integrate as integrate
