"""symvae: symbolic-numeric theory of the high-dimensional asymptotics of variational autoencoders.

The public names below are imported on first use, so that ``import symvae.cli`` (the console entry point) starts
without loading SymPy, numba or the numerics, and can therefore turn an early Ctrl-C into one line.
"""
import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "DerivedSystem": ".derive", "derive_dynamics": ".derive",
    "DerivationError": ".errors", "InvalidInputError": ".errors", "SymvaeError": ".errors",
    "VARIANTS": ".model", "LinearVAE": ".model", "Model": ".model", "OnlineSGD": ".model",
    "SpikedCovariance": ".model", "make_model": ".model",
    "compile_system": ".codegen", "integrate": ".numerics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symvae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
