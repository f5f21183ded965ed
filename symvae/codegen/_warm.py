"""The warm path: an ODE system whose module is already generated, loaded without SymPy and without the derivation.

A cold run (derive, generate, compile) stores in the cache a small JSON description of the system (``warm.json``:
state and parameter names, observables, how order parameters are laid out, the generated module's cache entry)
under a key computed from plain text only -- the caller's description of the model (for the command line: variant,
M, M*, the activation texts verbatim, whether beta has a schedule) and a hash of the package's own sources. An entry
of a scheduled model holds, by the schedule's text verbatim, what each expression needs (its parameter program as
plain numbers, ``store_warm_schedule``), at most MAX_SCHEDULES of them: a repeated expression starts without SymPy,
a new one takes the cold path once and is added. Two processes adding expressions at the same moment may drop one
of them (the file is rewritten whole): it only costs that expression one more cold run. A later run with the same
options finds that entry before importing SymPy: it needs only numpy and the generated module, loaded as plain
Python (``_compile.PlainFirstModule``); numba is imported only if an integration outgrows its plain-Python work
budget. Anything missing, corrupt or inconsistent reads as a miss, and the caller takes the cold path, which
rewrites the entry.
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

__all__ = ["PlainSystem", "package_fingerprint", "warm_key", "load_warm", "store_warm", "store_warm_schedule",
           "load_warm_schedule", "PlainScheduledSystem", "SCHEMA", "MAX_SCHEDULES"]

#: Version of the ``warm.json`` layout; bump when its meaning changes.
SCHEMA = 1
#: Schedule expressions a scheduled warm entry keeps (the most recently stored ones): warm.json stays bounded.
MAX_SCHEDULES = 64

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


def _read_meta(key: str) -> dict | None:
    """The parsed warm.json of entry ``key`` when it is an ODE entry of this schema, else None."""
    data = CacheEntry(key).read_bytes(_FILE)
    if data is None:
        return None
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA or meta.get("kind") != "ode":
        return None
    return meta


def load_warm(key: str) -> tuple[dict, CompiledSystem] | None:
    """The warm entry ``key``: (its ``extra`` data, a ``CompiledSystem`` over a ``PlainSystem``), or None when the
    entry or its module is absent, does not match its manifest, does not parse or import, or disagrees with itself."""
    meta = _read_meta(key)
    if meta is None:
        return None
    try:
        module_key = str(meta["module"])
        system = PlainSystem(meta["kind"], [str(n) for n in meta["state"]], [str(n) for n in meta["params"]],
                             [str(n) for n in meta["observables"]],
                             {str(k): (v[0], v[1]) for k, v in meta["layout"].items()})
        _check_layout(system.layout, len(system.state))
        extra = dict(meta["extra"])
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    module = _load_module(module_key, [s.name for s in system.state], [p.name for p in system.params])
    if module is None:
        return None
    return extra, CompiledSystem(system, module, CacheEntry(module_key).dir / "generated.py")


def _load_module(module_key: str, state, params):
    """The generated module of cache entry ``module_key`` loaded plain-first (one per process), or None when it is
    absent, does not import, or its state and parameter names are not ``state`` and ``params``."""
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
    if (getattr(plain, "STATE_NAMES", None) != tuple(state) or getattr(plain, "PARAM_NAMES", None) != tuple(params)
            or not hasattr(plain, "integrate_start") or not hasattr(plain, "integrate_piece")):
        return None
    _MODULES[module_key] = module  # one module object per process, as compile_system keeps one per system
    return module


# ------------------------------------------------------------------------------------------------ scheduled systems
# One warm entry serves every schedule expression of a model: the compiled base module is shared (a schedule is a
# runtime program, ``_schedule``), and ``warm.json`` holds, per expression text, the programs and plain data of the
# scheduled system -- at most MAX_SCHEDULES of them, the most recently stored.

def _program_data(program) -> dict:
    return {"code": program.code.tolist(), "consts": [float(c) for c in program.consts], "n_out": int(program.n_out),
            "labels": list(program.labels)}


def program_from_data(data, n_params: int):
    """A ``Program`` from its plain data (``exact`` empty: the float constants), checked so that the compiled
    interpreter can run it safely: known opcodes, arguments in range, a stack that never underflows and is empty at
    the end. Raises ValueError otherwise."""
    from ._schedule import OPCODES, Program

    code = np.asarray(data["code"], dtype=np.int64).reshape(-1, 2)
    if code.size and not np.array_equal(code, np.asarray(data["code"], dtype=float).reshape(-1, 2)):
        raise ValueError("program code")
    consts = np.asarray(data["consts"], dtype=float).reshape(-1)
    n_out = int(data["n_out"])
    labels = tuple(str(x) for x in data["labels"])
    if not np.all(np.isfinite(consts)) or n_out < 0:
        raise ValueError("program constants")
    depth = 0
    for op, a in code.tolist():
        if op not in OPCODES:
            raise ValueError("program opcode")
        if op in (0, 1, 2):
            if (op == 0 and not 0 <= a < len(consts)) or (op == 2 and not 0 <= a < n_params):
                raise ValueError("program argument")
            depth += 1
        elif op == 3:
            if not 0 <= a < n_out:
                raise ValueError("program output")
            depth -= 1
        elif op < 20:
            depth -= 1
        elif op >= 40:
            depth -= 2
        if depth < 0 or (op != 3 and depth == 0):
            raise ValueError("program stack")
    if depth != 0:
        raise ValueError("program stack")
    return Program(code, consts, n_out, labels)


class PlainScheduledSystem(CompiledSystem):
    """``ScheduledSystem`` over plain data: the base module's compiled functions with the parameter program of a
    schedule (what ``integrate`` and ``Trajectory.observables`` use of it)."""

    def __init__(self, system: PlainSystem, base: CompiledSystem, program):
        super().__init__(system, base.module, base.path)
        self.base = base
        self.program = program

    def observables(self, t, y, p):
        return self.base.observables(t, y, self.program.evaluate(t, p))

    def rhs_numpy(self, t, y, p):
        return self.base.rhs_numpy(t, y, self.program.evaluate(t, p))


def store_warm_schedule(key: str, compiled, text: str, extra: Mapping[str, object]) -> None:
    """Add (or refresh) the schedule ``text`` of a scheduled compiled system (``_schedule.ScheduledSystem``) to the
    warm entry ``key`` with the caller's ``extra`` plain data; the oldest expressions beyond MAX_SCHEDULES go."""
    system, base = compiled.system, compiled.base
    head = {"schema": SCHEMA, "kind": system.kind, "module": base.path.parent.name,
            "state": [s.name for s in system.state], "base_params": [s.name for s in base.system.params],
            "observables": list(compiled.observable_names)}
    entry = CacheEntry(key)
    schedules: dict = {}
    old = entry.read_bytes(_FILE)
    if old is not None:
        try:
            meta = json.loads(old)
            if all(meta.get(k) == v for k, v in head.items()) and isinstance(meta.get("schedules"), list):
                schedules = {str(item[0]): item[1] for item in meta["schedules"]}
        except (ValueError, TypeError, IndexError, AttributeError):
            schedules = {}
    schedules.pop(text, None)
    schedules[text] = {"params": [s.name for s in system.params], "layout": layout_of(system),
                       "program": _program_data(compiled.program), "extra": dict(extra)}
    items = list(schedules.items())[-MAX_SCHEDULES:]
    meta = dict(head, schedules=[[k, v] for k, v in items])
    try:
        entry.write_bytes(_FILE, json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    except OSError:
        pass


def load_warm_schedule(key: str, text: str) -> tuple[dict, PlainScheduledSystem] | None:
    """The schedule ``text`` of the warm entry ``key``: (its ``extra`` data, a ``PlainScheduledSystem``), or None
    (absent, corrupt or inconsistent: as ``load_warm``)."""
    meta = _read_meta(key)
    if meta is None:
        return None
    try:
        found = [item[1] for item in meta["schedules"] if item[0] == text]
        if not found:
            return None
        record = found[-1]
        module_key = str(meta["module"])
        state = [str(n) for n in meta["state"]]
        observables = [str(n) for n in meta["observables"]]
        base_params = [str(n) for n in meta["base_params"]]
        system = PlainSystem("ode", state, [str(n) for n in record["params"]], observables,
                             {str(k): (v[0], v[1]) for k, v in record["layout"].items()})
        _check_layout(system.layout, len(system.state))
        program = program_from_data(record["program"], len(system.params))
        if program.n_out != len(base_params):
            return None
        extra = dict(record["extra"])
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):
        return None
    module = _load_module(module_key, state, base_params)
    if module is None:
        return None
    path = CacheEntry(module_key).dir / "generated.py"
    base = CompiledSystem(PlainSystem("ode", state, base_params, observables, {}), module, path)
    return extra, PlainScheduledSystem(system, base, program)
