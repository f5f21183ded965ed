"""Model definitions: data model, linear VAE, training protocol, and the named variants shipped with symvae.

The public names are imported on first use (PEP 562): the variant table (``VARIANTS``) needs no SymPy, so the command
line can list variants in ``--help`` without importing it.
"""
import importlib

#: public name -> the module that defines it
_LAZY = {
    "LinearVAE": "._model", "Model": "._model", "N": "._model", "OnlineSGD": "._model", "SpikedCovariance": "._model",
    "t": "._model", "parse_expression": "._expr",
    "ORDER_PARAMETERS": "._symbols", "SymbolTable": "._symbols", "Vector": "._symbols",
    "VARIANTS": "._variants", "make_model": "._variants",
    "default_init": "._state", "gram_matrix": "._state", "parse_init_json": "._state", "validate_state": "._state",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
