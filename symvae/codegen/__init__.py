"""Code generation from derived SymPy systems: numba / numpy / mpmath functions, cached as real module files."""
from .._cache import CacheEntry as CacheEntry
from .._cache import cache_root as cache_root
from ._compile import CompiledSystem as CompiledSystem
from ._compile import compile_system as compile_system
from ._compile import system_key as system_key
from ._generate import FunctionSpec as FunctionSpec
from ._generate import generate_source as generate_source
from ._compile import load_cached_module as load_cached_module
from ._compile import discard_corrupt_numba_cache as discard_corrupt_numba_cache
from ._compile import generator_fingerprint as generator_fingerprint
