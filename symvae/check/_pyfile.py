"""Running a Python hand derivation behind a process boundary and reading back its values without pickle or eval.

A ``.py`` derivation is code: ``symvae check`` runs it, as Python would, but in a separate isolated interpreter
(``python -I``, working directory = the file's folder) with a time limit and, where the platform allows, a memory
limit. The child (``_child.py``) writes the file's ``HEADER``, docstring, ``EQUATIONS`` and module-level expressions
as a JSON table of nodes; this module rebuilds SymPy objects from a whitelist of node kinds, unevaluated (so the
parent does no work the child could choose), with bounds on size. A child that exits early, crashes, runs out of time
or writes nothing is a one-line error, never a silent pass.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from ._source import CheckInputError

__all__ = ["run_python_derivation", "PythonValues", "Unreadable", "DEFAULT_TIME_LIMIT", "DEFAULT_MEMORY_LIMIT_MB",
           "TIME_LIMIT_ENV", "MEMORY_LIMIT_ENV"]

DEFAULT_TIME_LIMIT = 60.0        # seconds
DEFAULT_MEMORY_LIMIT_MB = 4096   # address space of the child, where RLIMIT_AS exists
TIME_LIMIT_ENV = "SYMVAE_CHECK_TIME_LIMIT"
MEMORY_LIMIT_ENV = "SYMVAE_CHECK_MEMORY_MB"

MAX_RESULT_BYTES = 256 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_MATRIX_ENTRIES = 100_000
MAX_NAME = 200
MAX_EXPONENT = 1000              # |numeric exponent| of a numeric power (rebuilt unevaluated, but later code evaluates)
_CHILD = Path(__file__).with_name("_child.py")

_OPERATIONS = {name: getattr(sp, name) for name in (
    "Add", "Mul", "Pow", "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2",
    "asinh", "acosh", "atanh", "Abs", "sign", "Min", "Max", "Heaviside", "erf", "erfc", "gamma", "loggamma", "re",
    "im", "floor", "ceiling", "KroneckerDelta", "Piecewise", "StrictLessThan", "LessThan", "StrictGreaterThan",
    "GreaterThan", "Unequality")}
_CONSTANTS = {"pi": sp.pi, "E": sp.E, "I": sp.I, "EulerGamma": sp.EulerGamma, "Catalan": sp.Catalan,
              "GoldenRatio": sp.GoldenRatio, "true": sp.true, "false": sp.false}


class Unreadable:
    """A value the parent does not rebuild (an unsupported object); ``what`` says which."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


def _limit(env: str, given: float | None, default: float, path: str, what: str) -> float:
    if given is not None:
        value = given
    elif os.environ.get(env):
        try:
            value = float(os.environ[env])
        except ValueError:
            raise CheckInputError(f"{env} must be a number, got {os.environ[env]!r}", path) from None
    else:
        value = default
    if not value > 0 or value == float("inf"):
        raise CheckInputError(f"the {what} must be a positive number, got {value!r}", path)
    return value


def run_python_derivation(path: str, *, time_limit: float | None = None, memory_limit_mb: float | None = None
                          ) -> PythonValues:
    """Run a ``.py`` hand derivation in a child interpreter and return the values ``symvae check`` reads.

    Arguments:
        path: the file.
        time_limit: seconds the file may run (default ``SYMVAE_CHECK_TIME_LIMIT`` or 60).
        memory_limit_mb: address-space limit of the child in MiB (default ``SYMVAE_CHECK_MEMORY_MB`` or 4096).

    Returns:
        The ``PythonValues``: docstring, ``HEADER``, ``EQUATIONS`` as (key, value) pairs and the module-level SymPy
        expressions. Values that cannot be rebuilt are ``Unreadable``.

    Raises:
        CheckInputError: the file failed (with its line when known), exited, timed out, or left no readable result.
    """
    seconds = _limit(TIME_LIMIT_ENV, time_limit, DEFAULT_TIME_LIMIT, path, "time limit")
    memory = int(_limit(MEMORY_LIMIT_ENV, memory_limit_mb, DEFAULT_MEMORY_LIMIT_MB, path, "memory limit"))
    with tempfile.TemporaryDirectory(prefix="symvae-check-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        log_path = os.path.join(tmp, "output.txt")
        with open(log_path, "w+b") as log:
            code = _run_child([sys.executable, "-I", str(_CHILD), os.path.abspath(path), result_path, str(memory),
                               repr(float(seconds))], os.path.dirname(os.path.abspath(path)), log, seconds, path)
            last = _last_line(log)  # from our own handle: the file may have replaced the path meanwhile
        data = _read_result(result_path)
        if data is None:
            raise CheckInputError(_no_result_message(code, last, seconds), path)
        if len(data) > MAX_RESULT_BYTES:
            raise CheckInputError(f"the file's values are too large to read (over {MAX_RESULT_BYTES} bytes)", path)
        try:
            result = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise CheckInputError("the file's values could not be read back (malformed result)", path) from None
    return _module(result, path)


def _read_result(result_path: str) -> bytes | None:
    """The child's result: a regular file, not a link, read up to one byte past the size limit (None if absent)."""
    try:
        fd = os.open(result_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(MAX_RESULT_BYTES + 1)


def _run_child(argv: list[str], cwd: str, log, seconds: float, path: str) -> int | None:
    """Run the child in its own session; kill its whole process group on timeout or interrupt. None: timed out."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        raise CheckInputError(f"cannot start Python to run the file: {exc.strerror or exc}", path) from None
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                return proc.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    return None
    finally:
        _kill_group(proc)  # also whatever the file started in the background


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):  # group gone, or no process groups (Windows)
        if proc.poll() is None:
            proc.kill()
    proc.wait()


def _last_line(log) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - 4096))
    tail = log.read(4096).decode("utf-8", "replace")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return _printable(lines[-1][:200]) if lines else ""


def _printable(text: str) -> str:
    """One line without control characters (the child's text is shown in our error message)."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))


def _no_result_message(code: int | None, last: str, seconds: float) -> str:
    if code is None:
        return (f"running the file took longer than {seconds:g} s (raise the limit with --time-limit or "
                f"{TIME_LIMIT_ENV})")
    if code == 0:
        return ("the file ended the Python process (os._exit or exit at shutdown) before symvae could read its "
                "HEADER and EQUATIONS")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"running the file was stopped by {name}" + (f": {last}" if last else "")
    return f"running the file failed (exit code {code})" + (f": {last}" if last else "")


@dataclasses.dataclass(frozen=True)
class PythonValues:
    """What ``symvae check`` reads from a Python derivation, rebuilt in the parent.

    Attributes:
        doc: the module docstring (None if it has none).
        header: the ``HEADER`` mapping (JSON values; ``Unreadable`` if it is not a mapping; None if absent).
        equations: ``EQUATIONS`` as (key, value) pairs in file order (``Unreadable`` if it is neither a dict nor a
            list of ``sp.Eq``; None if absent).
        definitions: the module-level SymPy expressions with free symbols, by name.
    """

    doc: str | None
    header: object
    equations: object
    definitions: dict


def _module(result, path: str) -> PythonValues:
    def malformed():
        return CheckInputError("the file's values could not be read back (malformed result)", path)

    if not isinstance(result, dict):
        raise malformed()
    error = result.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise malformed()
        line, column = (x if isinstance(x, int) and not isinstance(x, bool) and x > 0 else None
                        for x in (error.get("line"), error.get("column")))
        raise CheckInputError(_printable(str(error.get("message", "the file failed")))[:500], path, line, column)
    values = _rebuild(result.get("nodes", []), path)

    def value(index):
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(values):
            raise malformed()
        return values[index]

    doc = result.get("doc") if isinstance(result.get("doc"), str) else None
    header = result.get("header")
    if isinstance(header, dict):
        header = header["mapping"] if isinstance(header.get("mapping"), dict) else Unreadable(
            str(header.get("type", "?"))[:MAX_NAME])
    else:
        header = None
    equations = result.get("equations")
    if isinstance(equations, dict):
        if equations.get("form") in ("dict", "eqs") and isinstance(equations.get("items"), list):
            pairs = []
            for item in equations["items"]:
                if not isinstance(item, list) or len(item) != 2:
                    raise malformed()
                pairs.append((value(item[0]), value(item[1])))
            equations = pairs
        else:
            equations = Unreadable(str(equations.get("type", "?"))[:MAX_NAME])
    else:
        equations = None
    definitions = {}
    if isinstance(result.get("definitions"), dict):
        definitions = {name: value(index) for name, index in result["definitions"].items()
                       if isinstance(name, str) and name.isidentifier()}
    return PythonValues(doc, header, equations, definitions)


def _rebuild(nodes, path: str) -> list:
    """SymPy objects from the child's node table, unevaluated; bad nodes become ``Unreadable``."""
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise CheckInputError("the file's values could not be read back (malformed or too large)", path)
    out: list = []
    for node in nodes:
        try:
            out.append(_node(node, out))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, ArithmeticError, RecursionError,
                sp.SympifyError) as exc:
            out.append(Unreadable(f"unreadable value ({type(exc).__name__})"))
    return out


def _node(node, done: list):
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise ValueError("malformed node")
    kind, payload, children = node[0], node[1:-1], node[-1] if len(node) > 1 else []
    if not isinstance(children, list) or any(not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < len(done)
                                             for c in children):
        raise ValueError("malformed children")
    args = [done[c] for c in children]
    bad = next((a for a in args if isinstance(a, Unreadable)), None)
    if bad is not None:
        return bad
    if kind == "unsupported":
        return Unreadable(str(payload[0])[:MAX_NAME] if payload else "an unsupported value")
    if kind == "int":
        return int(_text(payload[0]))
    if kind == "float":
        return float(_text(payload[0]))
    if kind == "str":
        return _text(payload[0], 100_000)
    if kind in ("list", "tuple"):
        return args if kind == "list" else tuple(args)
    if kind == "Matrix":
        rows, cols = int(payload[0]), int(payload[1])
        if rows < 0 or cols < 0 or rows * cols != len(args) or rows * cols > MAX_MATRIX_ENTRIES:
            raise ValueError("bad matrix shape")
        if not all(isinstance(a, sp.Basic) or type(a) in (int, float) for a in args):
            return Unreadable("a matrix with non-SymPy entries")
        return sp.ImmutableMatrix(rows, cols, [sp.sympify(a, strict=True) for a in args])
    if kind == "Integer":
        return sp.Integer(int(_text(payload[0])))
    if kind == "Rational":
        p, q = int(_text(payload[0])), int(_text(payload[1]))
        if q == 0:
            return Unreadable("a fraction with denominator 0")
        return sp.Rational(p, q)
    if kind == "Float":
        return sp.Float(_decimal(_text(payload[0])), precision=max(2, min(int(payload[1]), 100_000)))
    if kind == "Symbol":
        return sp.Symbol(_text(payload[0], MAX_NAME))
    if kind == "Const":
        name = _text(payload[0])
        if name not in _CONSTANTS:
            return Unreadable(f"the non-finite value {name}" if name in ("oo", "-oo", "zoo", "nan") else name)
        return _CONSTANTS[name]
    if not all(isinstance(a, sp.Basic) and not isinstance(a, sp.MatrixBase) for a in args):
        return Unreadable(f"{kind} of values that are not SymPy scalars")
    if kind == "Eq":
        return sp.Eq(args[0], args[1], evaluate=False)
    if kind == "Derivative":
        counts = [int(n) for n in payload[0]]
        if len(counts) != len(args) - 1 or any(not 0 < n <= 16 for n in counts):
            raise ValueError("bad derivative")
        return sp.Derivative(args[0], *zip(args[1:], counts), evaluate=False)
    if kind == "Undef":
        return sp.Function(_text(payload[0], MAX_NAME))(*args)
    if kind == "Op":
        name = _text(payload[0])
        if name == "ExprCondPair":
            return ExprCondPair(*args)
        if name not in _OPERATIONS:
            return Unreadable(name[:MAX_NAME])
        if name == "Pow" and args[0].is_Number and args[1].is_Number and abs(args[1]) > MAX_EXPONENT:
            return Unreadable(f"a power of a number with an exponent beyond {MAX_EXPONENT}")
        return _OPERATIONS[name](*args, evaluate=False)
    return Unreadable(kind[:MAX_NAME])


def _text(x, limit: int = 10_000) -> str:
    if not isinstance(x, str) or len(x) > limit:
        raise ValueError("bad text")
    return x


def _decimal(text: str) -> str:
    """A Float's text from the child must be a plain decimal number (sp.Float would also accept other forms)."""
    body = text.lstrip("+-")
    mantissa, _, exponent = body.lower().partition("e")
    digits = mantissa.replace(".", "", 1)
    if not digits.isdigit() or (exponent and not exponent.lstrip("+-").isdigit()) or len(exponent) > 12:
        raise ValueError("bad float")
    return text
