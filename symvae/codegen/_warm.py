"""The warm path: an ODE system whose module is already generated, loaded without SymPy and without the derivation.

A cold run (derive, generate, compile) stores in the cache a small JSON description of the system (``warm.json``:
state and parameter names, observables, how order parameters are laid out, the generated module's cache entry)
under a key computed from plain text only -- the caller's description of the model (for the command line: variant,
M, M*, the activation and schedule texts verbatim) and a hash of the package's own sources. A later run with the same options finds that entry before importing SymPy: it needs only
numpy and the generated module, loaded as plain Python (``_compile.PlainFirstModule``); numba is imported only if
an integration outgrows its plain-Python work budget. Anything missing, corrupt or inconsistent reads as a miss, and the caller
takes the cold path, which rewrites the entry.
"""
from __future__ import annotations

import functools
import hashlib
import json
import pathlib
import re
from typing import Mapping

import numpy as np

from .._cache import CacheEntry, content_key
from ..errors import InvalidInputError
from ._compile import CompiledSystem, load_plain_first

__all__ = ["PlainSystem", "package_fingerprint", "warm_key", "load_warm", "store_warm",
           "SCHEMA"]

#: Version of the ``warm.json`` layout; bump when its meaning changes.
SCHEMA = 1

_FILE = "warm.json"
_ENTRY = re.compile(r"^[0-9a-f]{24}$")
#: Generated modules loaded by ``load_warm`` in this process, by cache entry (their content is fixed by the key).
_MODULES: dict[str, object] = {}


@functools.cache
def package_fingerprint() -> str:
    """Hash of every source file of the package (names and bytes): a warm entry is reused only by the very code that
    wrote it, so no change to derivation, code generation, defaults or the command line can reuse a stale one."""
    package = pathlib.Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def warm_key(kind: str, description: Mapping[str, object]) -> str:
    """Cache key of a warm entry: ``kind``, the plain-text model description, the package fingerprint, SCHEMA."""
    return content_key("warm", kind, json.dumps(description, sort_keys=True), package_fingerprint(), str(SCHEMA))


class _Named:
    """A state or parameter symbol reduced to its name (what the numerics read of it)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class PlainSystem:
    """The parts of a ``DerivedSystem`` that integration and its outputs use, as plain data (no SymPy).

    Attributes:
        kind: ``"ode"``.
        state, params: objects with a ``name``, in vector order.
        observables: observable names, in the generated module's order.
        layout: order parameter -> (shape, [reference per entry]) with a reference ``["y", i]`` (state component),
            ``["p", name]`` (parameter) or ``["c", value]`` (a number); the order of ``SymbolTable.matrices``.
    """

    def __init__(self, kind: str, state, params, observables, layout):
        self.kind = kind
        self.state = tuple(_Named(n) for n in state)
        self.params = tuple(_Named(n) for n in params)
        self.observables = tuple(observables)
        self.layout = {name: (tuple(shape), list(refs)) for name, (shape, refs) in layout.items()}

    def param_vector(self, values: Mapping[str, float], *, dtype=float) -> np.ndarray:
        """As ``DerivedSystem.param_vector``."""
        missing = [p.name for p in self.params if p.name not in values]
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(missing)}")
        return np.array([values[p.name] for p in self.params], dtype=dtype)

    def unpack(self, y: np.ndarray, param_values: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """As ``DerivedSystem.unpack`` (the same arrays, built by the same numpy operations)."""
        y = np.asarray(y)
        pv = dict(param_values or {})

        def value(ref):
            what, arg = ref
            if what == "y":
                return y[arg]
            if what == "p":
                if arg not in pv:
                    raise TypeError(f"no value for parameter {arg}")
                return np.full(y.shape[1:], float(pv[arg]))
            return np.full(y.shape[1:], float(arg))

        out: dict[str, np.ndarray] = {}
        for name, (shape, refs) in self.layout.items():
            if len(shape) == 0:
                out[name] = value(refs[0])
            elif len(shape) == 1:
                out[name] = np.stack([value(r) for r in refs])
            else:
                rows, cols = shape
                out[name] = np.stack([np.stack([value(refs[i * cols + j]) for j in range(cols)])
                                      for i in range(rows)])
        return out


def layout_of(system) -> dict[str, list]:
    """The ``PlainSystem.layout`` of a ``DerivedSystem`` (what its ``unpack`` returns, entry by entry)."""
    import sympy as sp

    index = {s: i for i, s in enumerate(system.state)}
    T = system.table

    def ref(sym):
        if sym in index:
            return ["y", index[sym]]
        if isinstance(sym, sp.Symbol):
            return ["p", sym.name]
        return ["c", float(sym)]

    layout: dict[str, list] = {}
    for name, template in T.matrices().items():
        if name == "sigma2":
            if T.sigma2 in index or T.model.vae.decoder_variance != "unit":
                layout[name] = [[], [ref(T.sigma2)]]
            continue
        if isinstance(template, tuple):
            layout[name] = [[len(template)], [ref(s) for s in template]]
        else:
            layout[name] = [list(template.shape), [ref(s) for s in template]]  # row-major
    return layout


def store_warm(key: str, compiled: CompiledSystem, extra: Mapping[str, object]) -> None:
    """Write the warm entry ``key`` for ``compiled`` (whose module is in the cache) with the caller's ``extra``
    plain data. A read-only cache only costs speed."""
    system = compiled.system
    meta = {"schema": SCHEMA, "kind": system.kind, "module": compiled.path.parent.name,
            "state": [s.name for s in system.state], "params": [s.name for s in system.params],
            "observables": list(compiled.observable_names), "layout": layout_of(system), "extra": dict(extra)}
    try:
        CacheEntry(key).write_bytes(_FILE, json.dumps(meta, indent=1, sort_keys=True).encode())
    except OSError:
        pass


def _check_layout(layout, n_state: int) -> None:
    for shape, refs in layout.values():
        if int(np.prod(shape)) != len(refs) or len(shape) > 2:
            raise ValueError("layout shape")
        for what, arg in refs:
            if what == "y" and not (isinstance(arg, int) and 0 <= arg < n_state):
                raise ValueError("layout state index")
            if what not in ("y", "p", "c"):
                raise ValueError("layout reference")


def load_warm(key: str) -> tuple[dict, CompiledSystem] | None:
    """The warm entry ``key``: (its ``extra`` data, a ``CompiledSystem`` over a ``PlainSystem``), or None when the
    entry or its module is absent, does not match its manifest, does not parse or import, or disagrees with itself."""
    entry = CacheEntry(key)
    data = entry.read_bytes(_FILE)
    if data is None:
        return None
    try:
        meta = json.loads(data)
        if meta.get("schema") != SCHEMA or meta.get("kind") != "ode":
            return None
        module_key = str(meta["module"])
        system = PlainSystem(meta["kind"], [str(n) for n in meta["state"]], [str(n) for n in meta["params"]],
                             [str(n) for n in meta["observables"]],
                             {str(k): (v[0], v[1]) for k, v in meta["layout"].items()})
        _check_layout(system.layout, len(system.state))
        extra = dict(meta["extra"])
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    module_entry = CacheEntry(module_key)
    if not _ENTRY.match(module_key) or module_entry.read_bytes("generated.py") is None:
        return None
    name = f"symvae_generated_{module_key}"
    module = _MODULES.get(module_key)
    if module is None:
        try:  # plain Python now; numba only if the integration outgrows its plain-Python budget
            module = load_plain_first(module_entry.dir / "generated.py", name)
        except Exception:  # noqa: BLE001 - a module that does not import is a miss: the cold path regenerates it
            return None
    plain = module.plain
    if (getattr(plain, "STATE_NAMES", None) != tuple(s.name for s in system.state)
            or getattr(plain, "PARAM_NAMES", None) != tuple(p.name for p in system.params)
            or not hasattr(plain, "integrate_start") or not hasattr(plain, "integrate_piece")):
        return None
    _MODULES[module_key] = module  # one module object per process, as compile_system keeps one per system
    return extra, CompiledSystem(system, module, module_entry.dir / "generated.py")
