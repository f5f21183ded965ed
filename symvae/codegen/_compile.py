"""The build chain ``DerivedSystem -> generated module file (cached) -> CompiledSystem``."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import pathlib
import pickle
import shutil
import sys
import threading
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from .._cache import CacheEntry, _atomic_write, content_key

if TYPE_CHECKING:
    from ..derive import DerivedSystem
    from ._generate import FunctionSpec

__all__ = ["CompiledSystem", "compile_system", "system_key", "load_cached_module", "PlainFirstModule",
           "load_plain_first"]

_LOCK = threading.Lock()
_LOADED: dict[str, "CompiledSystem"] = {}


def system_key(system: DerivedSystem) -> str:
    """Content hash of the derived expressions (state, rhs, params, observables); ``DerivedSystem.key``, computed
    once per object."""
    return system.key


def _specs(system: DerivedSystem) -> list[FunctionSpec]:
    """Every generated function of a system: rhs, jac, dparams (with parameters), observables."""
    from ._generate import FunctionSpec

    return [FunctionSpec("rhs", system.rhs), *_derivative_specs(system),
            FunctionSpec("observables", list(system.observables.values()))]


def _main_specs(system: DerivedSystem) -> list[FunctionSpec]:
    """The functions of a system's main module. An ODE system's module holds the right-hand side and the
    observables only (what an integration needs): its derivatives are ``_derivative_specs``, a second module built on
    first use (``CompiledSystem.derivatives``), since differentiating, simplifying and printing the n x n Jacobian
    was most of a large system's cold build. Other systems (saddle points) keep everything in one module."""
    from ._generate import FunctionSpec

    if system.kind == "ode":
        return [FunctionSpec("rhs", system.rhs), FunctionSpec("observables", list(system.observables.values()))]
    return _specs(system)


def _derivative_specs(system: DerivedSystem) -> list[FunctionSpec]:
    from ._generate import FunctionSpec

    specs = [FunctionSpec("jac", system.jacobian, repeated_only=True)]
    if system.params:
        specs.append(FunctionSpec("dparams", system.param_jacobian, repeated_only=True))
    return specs


class CompiledSystem:
    """A derived system with its generated functions (numba, numpy, mpmath). Build with ``compile_system``.

    Attributes:
        system: the ``DerivedSystem``.
        module: the generated module (``rhs_into``, ``jac_into``, ``rhs_numpy``, ``rhs_mp``, ``integrate`` ...).
        path: the generated file.
    """

    def __init__(self, system: DerivedSystem, module, path):
        self.system = system
        self.module = module
        self.path = path
        self.observable_names = tuple(system.observables)
        self._derivatives = None

    @property
    def derivatives(self):
        """The module with ``jac`` and ``dparams`` (numba, numpy, mpmath): the main module itself when it has them,
        otherwise (ODE systems) a second generated module, built (or loaded from the cache) on first use."""
        if self._derivatives is None:
            if hasattr(self.module, "jac_mp"):
                self._derivatives = self.module
            else:
                self._derivatives = _derivative_module(self.system)
        return self._derivatives

    # float64, compiled
    def rhs(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.module.rhs(float(t), np.ascontiguousarray(y, dtype=float), np.ascontiguousarray(p, dtype=float))

    def jac(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self._derivative("jac", t, y, p)

    def dparams(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        if not self.system.params:
            return np.zeros((len(self.system.state), 0))
        return self._derivative("dparams", t, y, p)

    def _derivative(self, name: str, t, y, p) -> np.ndarray:
        """``jac`` or ``dparams`` of the derivative module. A ``PlainFirstModule`` (an ODE system's, see
        ``_derivative_module``) runs the function in plain Python until the work spent on it reaches the estimated
        cost of compiling it (``COMPILE_WORK_PER_LINE`` x its statements), then compiles: a threshold's few hundred
        Jacobians never wait for numba (most of a cold run at M = 3 was compiling them), a long sweep compiles
        once. A function numba already compiled in an earlier run (its cache), or one of arithmetic only, runs
        compiled from the start."""
        module = self.derivatives
        t, y, p = float(t), np.ascontiguousarray(y, dtype=float), np.ascontiguousarray(p, dtype=float)
        if isinstance(module, PlainFirstModule) and not module.is_compiled:
            work, budget = module.derivative_work(name)
            spent = module.spent.get(name, 0)
            if budget is not None and spent + work <= budget:
                module.spent[name] = spent + work
                try:
                    with np.errstate(all="ignore"):
                        return getattr(module.plain, name)(t, y, p)
                except (ArithmeticError, ValueError):  # where numba returns inf or nan, the interpreter raises
                    pass
        return getattr(module, name)(t, y, p)

    # numpy, vectorised over trailing axes
    def rhs_numpy(self, t, y, p) -> np.ndarray:
        return self.module.rhs_numpy(t, y, p)

    def observables(self, t, y, p) -> dict[str, np.ndarray]:
        """Observables at states ``y`` of shape (n_state, ...); returns {name: array of shape y.shape[1:]}."""
        values = self.module.observables_numpy(t, y, p)
        return dict(zip(self.observable_names, values))

    # mpmath
    def rhs_mp(self, t, y, p):
        return self.module.rhs_mp(t, y, p)

    def jac_mp(self, t, y, p):
        return self.derivatives.jac_mp(t, y, p)

    def observables_mp(self, t, y, p) -> dict[str, object]:
        values = self.module.observables_mp(t, y, p)
        return {name: values[k] for k, name in enumerate(self.observable_names)}

    def param_vector(self, values: Mapping[str, float]) -> np.ndarray:
        return self.system.param_vector(values)


@functools.cache
def generator_fingerprint() -> str:
    """Hash of the code generator and its templates: part of every generated module's cache key, so a change to how
    code is generated never reuses a module written by an older generator."""
    here = pathlib.Path(__file__).parent
    h = hashlib.sha256()
    for path in [here / "_generate.py", here / "_rules.py", *sorted((here / "templates").glob("*.py"))]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _numba_cache_is_readable(path: pathlib.Path) -> bool:
    """Whether a numba cache file unpickles as numba will read it (an index: a version, then the pickled overloads;
    a data file: one pickle)."""
    try:
        with open(path, "rb") as fh:
            if path.suffix == ".nbi":
                pickle.load(fh)
                pickle.loads(fh.read())
            else:
                pickle.loads(fh.read())
    except Exception:  # any failure to unpickle is a corrupt file (UnpicklingError, EOFError, ValueError ...)
        return False
    return True


def discard_corrupt_numba_cache(directory: pathlib.Path) -> bool:
    """Delete numba's cache of a generated module (``<entry>/__pycache__``) if one of its index or data files does not
    unpickle, so numba compiles afresh instead of failing on every later run. Call it after the module is imported
    (numba's data files refer to it) and before its functions are first called. Returns True if it was discarded.

    A file is unpickled once; its SHA-256 is then kept in ``<entry>/numba-verified.json``, so later loads only hash it.
    """
    directory = pathlib.Path(directory)
    pycache = directory / "__pycache__"
    try:
        files = sorted(f for f in pycache.iterdir() if f.suffix in (".nbi", ".nbc"))
    except OSError:
        return False
    record = directory / "numba-verified.json"
    try:
        verified = json.loads(record.read_text())
    except (OSError, ValueError):
        verified = {}
    seen = {}
    for f in files:
        try:
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError:
            continue
        if verified.get(f.name) != digest and not _numba_cache_is_readable(f):
            shutil.rmtree(pycache, ignore_errors=True)
            try:
                record.unlink()
            except OSError:
                pass
            return True
        seen[f.name] = digest
    if seen != verified:
        try:
            _atomic_write(record, json.dumps(seen, indent=1, sort_keys=True).encode())
        except OSError:  # a read-only cache only costs speed
            pass
    return False


def _stored_code(stored: pathlib.Path, key: bytes, build):
    """Bytecode kept as marshalled code in the file ``stored``, headed by a 32-character hash of ``key``: read back
    when the hash matches, else ``build()`` and written (a stale or unreadable copy is rebuilt; a read-only cache only
    costs speed)."""
    import marshal

    tag = hashlib.sha256(key + b"\0" + sys.version.encode()).hexdigest()[:32].encode()
    try:
        data = stored.read_bytes()
        if data[:len(tag)] == tag:
            return marshal.loads(data[len(tag):])
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = build()
    try:
        _atomic_write(stored, tag + marshal.dumps(code))
    except OSError:
        pass
    return code


def _module_code(path: pathlib.Path):
    """The compiled bytecode of the generated file ``path``, kept beside it (``code-<python tag>.bin``, keyed by the
    source, its path and the Python version): compiling a large module (0.6 MB at (M, M*) = (5, 5)) costs ~0.2 s,
    and Python's own ``__pycache__`` copy is not written when bytecode writing is off (``PYTHONDONTWRITEBYTECODE``)."""
    source = path.read_bytes()
    # the path is part of the key: the code object names its file, and numba finds its cache beside that file
    return _stored_code(path.parent / f"code-{sys.implementation.cache_tag}.bin",
                        source + b"\0" + str(path.resolve()).encode(),
                        lambda: compile(source, str(path), "exec", dont_inherit=True))


def _load(path, name: str):
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(_module_code(path), module.__dict__)  # noqa: S102 - the generated module (our own file), not user text
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def rhs_size(source: str) -> int:
    """A size measure of the generated ``rhs_into`` in ``source``: its number of statements (lines of its body),
    the CSE assignments dominating; a line ending in ``# work N`` (a call of a generated loop) counts N. 0 if the
    module has no ``rhs_into``."""
    return function_size(source, "rhs_into")[0]


def function_size(source: str, name: str) -> tuple[int, int]:
    """(work, lines) of the generated function ``name`` in ``source``: ``work`` as ``rhs_size`` counts it (a loop
    call counts the statements it executes), ``lines`` the statements written (what numba compiles). (0, 0) if the
    module has no such function."""
    body = _function_body(source, name)
    size = 0
    for line in body:
        head, _, work = line.rpartition("  # work ")
        size += int(work) if head and work.isdigit() else 1
    return size, len(body)


def _function_body(source: str, name: str) -> list[str]:
    lines = source.splitlines()
    try:
        start = lines.index(next(line for line in lines if line.startswith(f"def {name}(")))
    except StopIteration:
        return []
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        body.append(line)
    return body


#: Numba's compile time of a generated function with calls (erf, sqrt, rule loops ...: its own type inference), in
#: units of plain-Python work (``function_size``) per statement written: about 20 ms per statement (the Jacobian of
#: linear/relu at M = 3, 1981 statements, 40 s) against 0.4 us per unit of work in plain Python (the same Jacobian:
#: 0.76 ms per call), on the 2-core machine of bench/. Arithmetic-only functions compile fast (``_llvm``) and are
#: compiled from the start.
COMPILE_WORK_PER_LINE = 50_000
#: An ODE system's derivative module runs plain Python first (``CompiledSystem._derivative``) from this many
#: statements of its Jacobian on (compiling it takes 20 s and more); a smaller one is compiled at its first call, as
#: the plain-Python load (rewriting the module's syntax tree) and phase would cost about what they save.
PLAIN_FIRST_MIN_LINES = 1000


def _numba_cache_exists(path: pathlib.Path, function: str) -> bool:
    """Whether numba's cache beside the generated file ``path`` holds an index of ``function`` (compiled by an
    earlier run: loading it costs a fraction of a second)."""
    try:
        return any(f.name.startswith(f"{path.stem}.{function}-") and f.suffix == ".nbi"
                   for f in (path.parent / "__pycache__").iterdir())
    except OSError:
        return False


class PlainFirstModule:
    """One generated module file loaded twice: ``plain``, executed as plain Python (its kernels are interpreted, numba
    is not imported), and the numba module, loaded on first need by ``compiled()``. Attributes are those of the
    module: the kernels (``rhs_into``, ``integrate_piece`` ...) from the numba module, everything else (numpy and
    mpmath functions, constants) from the plain one. ``numerics.integrate`` runs the plain kernels first within a
    work budget (see ``numerics._integrate``); ``rhs_size`` is the size measure of its right-hand side.
    """

    def __init__(self, plain, path: pathlib.Path, name: str, rhs_size: int):
        self.plain = plain
        self.path = pathlib.Path(path)
        self.name = name
        self.rhs_size = rhs_size
        self.plain_work = 0  # plain-Python work spent by integrations so far (``numerics._integrate``)
        self._compiled = None
        self._budgets: dict[str, tuple[int, int | None]] = {}
        self.spent: dict[str, int] = {}  # plain-Python work spent on each derivative function (``derivative_work``)

    def derivative_work(self, name: str) -> tuple[int, int | None]:
        """(work of one call, plain-Python budget) of the generated function ``name`` (``jac``, ``dparams``): the
        budget is the estimated cost of compiling it, or None (compiled from the start) when numba's cache already
        has it or it is arithmetic only."""
        if name not in self._budgets:
            from ._llvm import straight_line_body
            source = self.path.read_text()
            work, lines = function_size(source, f"{name}_into")
            fast = not lines or straight_line_body(_function_body(source, f"{name}_into"), min_lines=0) is not None
            cached = _numba_cache_exists(self.path, f"{name}_into")
            self._budgets[name] = (work, None if fast or cached else COMPILE_WORK_PER_LINE * lines)
        return self._budgets[name]

    @property
    def is_compiled(self) -> bool:
        """Whether the numba module is loaded (then every later integration runs compiled from the start)."""
        return self._compiled is not None

    def compiled(self):
        """The numba module (imported once; its numba cache checked before any kernel runs)."""
        with _LOCK:
            if self._compiled is None:
                self._compiled = sys.modules.get(self.name) or _load(self.path, self.name)
                discard_corrupt_numba_cache(self.path.parent)
            return self._compiled

    def __getattr__(self, attr: str):
        value = getattr(self.plain, attr)
        if getattr(value, "symvae_kernel", False):
            return getattr(self.compiled(), attr)
        return value


def _plain_code_cached(path: pathlib.Path, source: str):
    """``_jit.plain_code`` of the generated file ``path`` (text ``source``), kept beside it as marshalled bytecode
    (``plain-<python tag>.bin``, keyed by the source, ``_jit.py`` and the Python version), since the rewriting costs
    more than the rest of a short warm run."""
    from ._jit import plain_code

    return _stored_code(path.parent / f"plain-{sys.implementation.cache_tag}.bin",
                        source.encode() + b"\0" + pathlib.Path(__file__).with_name("_jit.py").read_bytes(),
                        lambda: plain_code(source, str(path)))


def load_plain_first(path, name: str) -> PlainFirstModule:
    """The generated file ``path`` as a ``PlainFirstModule`` whose numba load is named ``name``: only the plain-Python
    load happens now (under a distinct module name, see ``_jit``), so numba is not imported.

    Raises what executing the file raises (a module that does not import)."""
    from ._jit import numba_power, plain_module_name

    path = pathlib.Path(path)
    source = path.read_text()
    code = _plain_code_cached(path, source)
    plain_name = plain_module_name(name)
    spec = importlib.util.spec_from_file_location(plain_name, path)
    plain = importlib.util.module_from_spec(spec)
    plain._numba_power = numba_power
    sys.modules[plain_name] = plain
    try:
        exec(code, plain.__dict__)  # noqa: S102 - the generated module (our own file), not user text
    except BaseException:
        sys.modules.pop(plain_name, None)
        raise
    return PlainFirstModule(plain, path, name, rhs_size(source))


def load_cached_module(key: str, make_source: Callable[[], str], *, prefix: str = "symvae_generated",
                       plain_first: bool = False):
    """Import the generated module ``<cache>/<entry>/generated.py`` (entry: a hash of ``key`` and of the generator's
    own code), writing it with ``make_source()`` first if it is absent or does not match its manifest; a file that fails
    to import is regenerated once, and numba cache files that no longer unpickle are discarded (numba recompiles).
    ``plain_first``: load it as a ``PlainFirstModule`` (numba imported on the first use of a kernel that outgrows the
    plain-Python phase, see ``numerics._integrate``).

    Returns:
        (module, path)
    """
    key = content_key("module", key, generator_fingerprint())
    entry = CacheEntry(key)
    name = f"{prefix}_{key}"
    for attempt in range(2):
        if attempt == 1 or entry.read_bytes("generated.py") is None:
            entry.write_bytes("generated.py", make_source().encode())
        try:
            if plain_first:
                return load_plain_first(entry.dir / "generated.py", name), entry.dir / "generated.py"
            module = _load(entry.dir / "generated.py", name)
        except (SyntaxError, ImportError, NameError, AttributeError):
            if attempt == 1:
                raise
            continue
        # numba reads its cache at a function's first call, and its data files refer to the module: check them now
        discard_corrupt_numba_cache(entry.dir)
        return module, entry.dir / "generated.py"
    raise AssertionError("unreachable")


def _derivative_module(system):
    """The generated module of ``system``'s Jacobian and parameter Jacobian (``_derivative_specs``), cached like the
    main module under its own key. Needs the derived expressions: a system loaded without them (the warm path's
    ``PlainSystem``) has none to offer."""
    if not hasattr(type(system), "jacobian"):  # the class: on an instance hasattr computes the symbolic Jacobian
        raise TypeError("this compiled system was loaded without its derivation: no Jacobian can be generated")
    key = system_key(system) + "-derivatives"
    with _LOCK:
        from ._generate import generate_source

        header = f"kind: {system.kind} (derivatives)\nmodel: {dict(system.model.describe())}\nkey: {key}"
        module, path = load_cached_module(key, lambda: generate_source(_derivative_specs(system), system.state,
                                                                       system.params, header=header))
        if system.kind == "ode" and function_size(path.read_text(), "jac_into")[1] >= PLAIN_FIRST_MIN_LINES:
            return load_plain_first(path, module.__name__)  # its numba load is ``module`` (imported, not compiled)
    return module


def compile_system(system: DerivedSystem) -> CompiledSystem:
    """Generate (or reuse from the on-disk cache) the module of ``system`` and load it.

    The file lives in ``<cache>/<content hash>/generated.py`` so numba's own cache (``cache=True``) works across
    processes. A cache entry whose file does not match its manifest, or that fails to import, is rebuilt.
    """
    key = system_key(system)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        from ._generate import generate_source  # SymPy's printers: only when a module is written

        header = f"kind: {system.kind}\nmodel: {dict(system.model.describe())}\nkey: {key}"
        # an ODE module is loaded plain-Python first: a short first integration needs neither numba's import nor
        # its cache load (~0.5 s at (5, 5)); the kernels are compiled when an integration outgrows that phase
        module, path = load_cached_module(key, lambda: generate_source(
            _main_specs(system), system.state, system.params, header=header,
            templates=("dop853",) if system.kind == "ode" else ()), plain_first=system.kind == "ode")
        compiled = CompiledSystem(system, module, path)
        _LOADED[key] = compiled
        return compiled

