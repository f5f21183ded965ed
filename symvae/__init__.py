"""symvae: symbolic-numeric theory of the high-dimensional asymptotics of variational autoencoders.

The public names below are imported on first use (PEP 562), so ``import symvae`` -- and every command-line start --
pays only for the parts it touches (SymPy, SciPy and numba are heavy to import).
"""
from __future__ import annotations

import importlib

from .errors import DerivationError as DerivationError
from .errors import InvalidInputError as InvalidInputError
from .errors import SymvaeError as SymvaeError

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "DerivedSystem": ".derive", "derive_dynamics": ".derive",
    "VARIANTS": ".model", "LinearVAE": ".model", "Model": ".model", "OnlineSGD": ".model",
    "SpikedCovariance": ".model", "make_model": ".model",
    "compile_system": ".codegen", "integrate": ".numerics._integrate",
}

#: sub-packages reachable as attributes (``symvae.model.SymbolTable``) without an explicit import
_SUBPACKAGES = ("analysis", "check", "cli", "codegen", "data", "derive", "model", "numerics", "report", "simulate",
                "statics")

__all__ = ["DerivationError", "InvalidInputError", "SymvaeError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
