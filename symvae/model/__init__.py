"""Model definitions: data model, linear VAE, training protocol, and the named variants shipped with symvae.

The public names are imported on first use (PEP 562): the variant table (``VARIANTS``) needs no SymPy, so the command
line can list variants in ``--help`` without importing it.
"""
from .._lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "LinearVAE": "._model", "Model": "._model", "N": "._model", "OnlineSGD": "._model", "SpikedCovariance": "._model",
    "t": "._model", "parse_expression": "._expr",
    "ORDER_PARAMETERS": "._symbols", "SymbolTable": "._symbols", "Vector": "._symbols",
    "VARIANTS": "._variants", "make_model": "._variants",
    "default_init": "._state", "gram_matrix": "._state", "parse_init_json": "._state", "validate_state": "._state",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
