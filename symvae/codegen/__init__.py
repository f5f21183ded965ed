"""Code generation from derived SymPy systems: numba / numpy / mpmath functions, cached as real module files.

The public names are imported on first use (PEP 562): loading an already generated module (``_compile``, ``_warm``)
needs neither SymPy nor the derivation, only the printer (``_generate``) does.
"""
from .._lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "CacheEntry": ".._cache", "cache_root": ".._cache",
    "CompiledSystem": "._compile", "compile_system": "._schedule", "system_key": "._compile",
    "load_cached_module": "._compile", "discard_corrupt_numba_cache": "._compile",
    "generator_fingerprint": "._compile",
    "FunctionSpec": "._generate", "generate_source": "._generate",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
