"""Runs a Python hand derivation in its own interpreter and writes what ``symvae check`` reads from it as JSON.

Started by ``_pyfile.run_python_derivation`` as ``python -I _child.py FILE RESULT MEMORY_MB``; it imports nothing
from symvae (so it works whatever ``sys.path`` the isolated interpreter has). Expressions are written as a flat table
of nodes ``[kind, ...payload, [child indices]]`` (a node's children come before it), never as code or pickles: the
parent rebuilds them from a whitelist of node kinds. The result is written atomically, last, so a file that ends the
process early (``SystemExit``, ``os._exit``) leaves no result, which the parent reports as an error.
"""
import json
from collections.abc import Mapping
import os
import runpy
import sys
import traceback

MAX_NODES = 2_000_000

# SymPy classes the parent can rebuild, by class name (it keeps the same list).
OPERATIONS = frozenset((
    "Add", "Mul", "Pow", "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2",
    "asinh", "acosh", "atanh", "Abs", "sign", "Min", "Max", "Heaviside", "erf", "erfc", "gamma", "loggamma", "re",
    "im", "floor", "ceiling", "KroneckerDelta", "Piecewise", "ExprCondPair", "StrictLessThan", "LessThan",
    "StrictGreaterThan", "GreaterThan", "Unequality"))
CONSTANTS = {"Pi": "pi", "Exp1": "E", "ImaginaryUnit": "I", "EulerGamma": "EulerGamma", "Catalan": "Catalan",
             "GoldenRatio": "GoldenRatio", "BooleanTrue": "true", "BooleanFalse": "false", "Infinity": "oo",
             "NegativeInfinity": "-oo", "ComplexInfinity": "zoo", "NaN": "nan"}


class Encoder:
    """Flat node table of Python/SymPy values, shared sub-expressions written once."""

    def __init__(self, sp):
        self.sp = sp
        self.nodes = []
        self.index = {}   # id(obj) -> node index
        self.keep = []    # keeps encoded objects alive so their ids stay unique

    def encode(self, root):
        stack = [(root, False)]
        pending = set()
        while stack:
            obj, ready = stack.pop()
            if id(obj) in self.index:
                continue
            node, children = self.describe(obj)
            if children and not ready:
                if id(obj) in pending:  # a container that contains itself
                    self._add(obj, ["unsupported", "self-containing " + type(obj).__name__])
                    continue
                pending.add(id(obj))
                stack.append((obj, True))
                stack.extend((c, False) for c in reversed(children) if id(c) not in self.index)
                continue
            pending.discard(id(obj))
            if any(id(c) not in self.index for c in children):
                self._add(obj, ["unsupported", "self-containing " + type(obj).__name__])
                continue
            self._add(obj, node + [[self.index[id(c)] for c in children]])
        return self.index[id(root)]

    def _add(self, obj, node):
        if len(self.nodes) >= MAX_NODES:
            raise ValueError(f"the file's expressions have more than {MAX_NODES} parts")
        self.index[id(obj)] = len(self.nodes)
        self.nodes.append(node)
        self.keep.append(obj)

    def describe(self, obj):
        """(node without its child list, children)."""
        sp = self.sp
        if isinstance(obj, bool):
            return ["unsupported", "bool"], []
        if isinstance(obj, int):
            try:
                return ["int", str(obj)], []
            except ValueError:
                return ["unsupported", "an integer with too many digits"], []
        if isinstance(obj, float):
            return ["float", repr(obj)], []
        if isinstance(obj, str):
            return ["str", obj], []
        if isinstance(obj, (list, tuple)):
            return [type(obj).__name__], list(obj)
        if isinstance(obj, sp.MatrixBase):
            return ["Matrix", obj.rows, obj.cols], list(obj)
        if not isinstance(obj, sp.Basic):
            return ["unsupported", type(obj).__name__], []
        name = type(obj).__name__
        if name in CONSTANTS:
            return ["Const", CONSTANTS[name]], []
        if obj.is_Integer:
            try:
                return ["Integer", str(obj.p)], []
            except ValueError:
                return ["unsupported", "an integer with too many digits"], []
        if obj.is_Rational:
            try:
                return ["Rational", str(obj.p), str(obj.q)], []
            except ValueError:
                return ["unsupported", "a rational with too many digits"], []
        if obj.is_Float:
            return ["Float", str(obj), int(obj._prec)], []
        if isinstance(obj, sp.Symbol):
            return ["Symbol", obj.name], []
        if isinstance(obj, sp.Equality):
            return ["Eq"], [obj.lhs, obj.rhs]
        if isinstance(obj, sp.Derivative):
            return ["Derivative", [int(n) for _, n in obj.variable_count]], \
                [obj.expr] + [v for v, _ in obj.variable_count]
        if isinstance(obj, sp.core.function.AppliedUndef):
            return ["Undef", obj.func.__name__], list(obj.args)
        if name in OPERATIONS and obj.func is getattr(sp, name, None) or name == "ExprCondPair":
            return ["Op", name], list(obj.args)
        return ["unsupported", name], []


def _header(value, depth=0):
    """HEADER as JSON values; anything but str/number/None/dict/list is given as its str (the reader str()s it)."""
    if depth > 20:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _header(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_header(v, depth + 1) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _failure(exc, path):
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    if isinstance(exc, SystemExit):
        message = (f"the file raised SystemExit({exc.code!r}) (exit() or sys.exit()): a derivation file defines "
                   f"HEADER and EQUATIONS and must not end the process")
    else:
        message = f"running the file failed: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        message = message.splitlines()[0]
    return {"error": {"message": message, "line": line, "column": None}}


def main(argv):
    path, result_path, memory_mb = argv[1], argv[2], int(argv[3])
    seconds = float(argv[4]) if len(argv) > 4 else None
    try:
        import resource
    except ImportError:  # no resource module (Windows)
        resource = None
    limits = [(getattr(resource, "RLIMIT_AS", None), memory_mb * 1024 * 1024)]
    if seconds is not None:  # the parent kills the child at its time limit; this also ends a child whose parent was
        # killed outright (SIGKILL/SIGTERM run no cleanup; the child runs in its own session and would go on)
        limits.append((getattr(resource, "RLIMIT_CPU", None), int(seconds) + 2))
    for which, limit in limits:
        try:
            resource.setrlimit(which, (limit, limit))
        except (AttributeError, TypeError, ValueError, OSError):  # no such limit, or a lower hard limit already
            pass
    directory = os.path.dirname(os.path.abspath(path))
    os.chdir(directory)
    sys.path.insert(0, directory)
    try:
        module = runpy.run_path(path, run_name="symvae_hand_derivation")
        result = None
    except SyntaxError as exc:
        result = {"error": {"message": f"Python syntax error: {exc.msg}", "line": exc.lineno, "column": exc.offset}}
    except (Exception, SystemExit) as exc:  # the user's module failed or tried to exit: report where in their file
        result = _failure(exc, path)
    if result is None:
        try:
            result = collect(module)
        except Exception as exc:  # e.g. an object whose comparison or iteration fails, or a bound exceeded
            result = {"error": {"message": f"cannot read the file's HEADER/EQUATIONS: {type(exc).__name__}: "
                                           f"{exc}".splitlines()[0], "line": None, "column": None}}
    temporary = result_path + ".part"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(result, out)
    os.replace(temporary, result_path)


def collect(module):
    import sympy as sp

    encoder = Encoder(sp)
    result = {}
    doc = module.get("__doc__")
    result["doc"] = doc if isinstance(doc, str) else None
    if "HEADER" in module:
        raw = module["HEADER"]
        result["header"] = {"mapping": _header(dict(raw))} if isinstance(raw, Mapping) else {"type": type(raw).__name__}
    if "EQUATIONS" in module:
        raw = module["EQUATIONS"]
        if isinstance(raw, Mapping):
            items = list(raw.items())
            result["equations"] = {"form": "dict", "items": [[encoder.encode(k), encoder.encode(v)] for k, v in items]}
        elif isinstance(raw, (list, tuple)) and all(isinstance(e, sp.Eq) for e in raw):
            result["equations"] = {"form": "eqs", "items": [[encoder.encode(e.lhs), encoder.encode(e.rhs)]
                                                            for e in raw]}
        else:
            result["equations"] = {"form": "other", "type": type(raw).__name__}
    definitions = {}
    for name, value in module.items():
        if name.startswith("_") or name in ("EQUATIONS", "HEADER") or not isinstance(value, sp.Expr):
            continue
        if isinstance(value, (sp.Symbol, sp.Number)) or not value.free_symbols:
            continue
        definitions[name] = encoder.encode(value)
    result["definitions"] = definitions
    result["nodes"] = encoder.nodes
    return result


if __name__ == "__main__":
    main(sys.argv)
