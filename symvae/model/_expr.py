"""Expressions typed by users (``--beta-schedule``, header fields, symbol maps), read without ``eval``.

The text is parsed by Python's own parser (``ast.parse(text, mode="eval")``), which only builds a syntax tree; the
tree is then walked with a whitelist of node kinds — numbers, names, ``+ - * / **``, unary ``-``/``+`` and calls of
the listed functions — and the SymPy expression is built here, node by node, with the same SymPy operations an
evaluation of the text would perform (so a schedule such as ``1.5*tanh(0.01*t)`` gives the very same expression as
before). Work is bounded before anything is built: text length, node count, nesting depth, the size of numeric
exponents and of the numbers they produce, an estimated polynomial degree and the nesting of calls; SymPy's own
simplification while building gets a CPU-time budget as a backstop. Every rejection is one line naming the construct
and, where there is one, its column.
"""
from __future__ import annotations

import ast
import contextlib
import math
import signal
import threading
import warnings
from typing import Collection

import sympy as sp

from ..errors import InvalidInputError

__all__ = ["parse_expression", "t", "N", "FUNCTIONS", "CONSTANTS", "MAX_LENGTH", "MAX_NODES", "MAX_DEPTH",
           "MAX_EXPONENT", "MAX_DIGITS", "MAX_ROOT_DIGITS", "MAX_ARGUMENTS", "MAX_EXP_ARGUMENT", "MAX_DEGREE",
           "MAX_CALL_DEPTH", "MAX_BUILD_SECONDS"]

#: Training time (steps / N) and the dimension, as SymPy symbols shared by every derivation.
t = sp.Symbol("t", nonnegative=True)
N = sp.Symbol("N", positive=True)

#: Functions allowed in user expressions (beta schedules, parameter expressions); every other name is a real symbol.
FUNCTIONS = {name: getattr(sp, name) for name in
             ("exp", "log", "sqrt", "tanh", "sinh", "cosh", "sin", "cos", "atan", "Abs", "Min", "Max", "Heaviside",
              "Piecewise", "erf")}
CONSTANTS = {"pi": sp.pi, "E": sp.E}
_SHARED = {"t": t, "N": N}

MAX_LENGTH = 2000         # characters of text
MAX_NODES = 1000          # syntax-tree nodes
MAX_DEPTH = 200           # nesting of the syntax tree (a sum of n terms nests n deep)
MAX_EXPONENT = 64         # |numeric exponent|: no power towers
MAX_DIGITS = 1000         # digits of an exact number produced by a power
MAX_ROOT_DIGITS = 100     # digits of an exact number under a root (SymPy looks for its square factors)
MAX_ARGUMENTS = 8         # arguments of Min, Max, Piecewise in all (they compare their arguments pairwise)
MAX_EXP_ARGUMENT = 1000   # |numeric argument| of exp, sinh, cosh (beyond it float64 overflows anyway)
MAX_DEGREE = 64           # estimated polynomial degree (powers of sums multiply it)
MAX_CALL_DEPTH = 16       # calls and denominators nested in one another
MAX_BUILD_SECONDS = 2.0   # CPU time SymPy may spend building (a backstop behind the bounds above)
_FLOAT_MAX = 1.7976931348623157e308
_PAIRWISE = ("Min", "Max", "Piecewise")
_GROWING = ("exp", "sinh", "cosh")

_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a}
_COMPARE = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan,
            ast.GtE: sp.GreaterThan}
_OPERATOR_NAMES = {ast.BitXor: "'^' (write powers as '**')", ast.FloorDiv: "'//'", ast.Mod: "'%'",
                   ast.MatMult: "'@'", ast.LShift: "'<<'", ast.RShift: "'>>'", ast.BitOr: "'|'", ast.BitAnd: "'&'",
                   ast.Invert: "'~'", ast.Not: "'not'"}
_NODE_NAMES = {ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
               ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
               ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string", ast.FormattedValue: "f-string",
               ast.Starred: "starred argument", ast.IfExp: "conditional expression", ast.BoolOp: "'and'/'or'",
               ast.NamedExpr: "':=' assignment", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
               ast.List: "list", ast.Dict: "dict", ast.Set: "set", ast.Slice: "slice", ast.Tuple: "tuple",
               ast.Compare: "comparison"}


class _Reject(Exception):
    """A construct the whitelist refuses: reason and the AST node (for its column)."""

    def __init__(self, reason: str, node: ast.AST | None = None, column: int | None = None):
        super().__init__(reason)
        self.reason, self.node, self.column = reason, node, column


def parse_expression(text: str, what: str = "expression", *, allowed_names: Collection[str] | None = None
                     ) -> sp.Expr:
    """Parse user text such as ``"beta*tanh(gamma*t)"`` into SymPy without evaluating any code.

    Accepted: int and float literals (floats keep the decimal the user typed, ``0.01`` is ``Float('0.01')``), names
    (``t`` and ``N`` are symvae's time and dimension, ``pi`` and ``E`` the constants, every other name a real symbol),
    ``+ - * / **``, unary ``-`` and ``+``, parentheses, and calls with positional arguments of ``exp log sqrt tanh
    sinh cosh sin cos atan Abs Min Max Heaviside erf`` and ``Piecewise((value, condition), ..., (value, True))``
    whose conditions are single comparisons ``< <= > >=``.

    Arguments:
        text: the user's text (at most ``MAX_LENGTH`` characters, printable ASCII).
        what: what the text is, for error messages (``"beta schedule"``).
        allowed_names: if given, the only symbol names accepted (functions and constants are always accepted).

    Returns:
        A finite SymPy expression.

    Raises:
        InvalidInputError: one line naming the offending construct and its column: a syntax error, a construct
            outside the whitelist, an unknown function, a bound exceeded, or a non-finite value.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, not {type(text).__name__}")
    shown = text if len(text) <= 80 else text[:77] + "..."

    def fail(reason: str, column: int | None = None):
        where = f" (column {column})" if column is not None else ""
        return InvalidInputError(f"{what} {shown!r}: {reason}{where}")

    if len(text) > MAX_LENGTH:
        raise fail(f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise fail("empty")
    for k, char in enumerate(text):
        if not (char == " " or char == "\t" or "!" <= char <= "~"):
            raise fail(f"character {char!r} is not allowed (printable ASCII only, on one line)", k + 1)
    try:
        with warnings.catch_warnings():  # SyntaxWarnings ("invalid decimal literal") would be extra stderr lines
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(" \t"), mode="eval")
    except SyntaxError as exc:
        offset = exc.offset + len(text) - len(text.lstrip(" \t")) if exc.offset else None
        raise fail(f"syntax error: {exc.msg}", offset) from None
    except (ValueError, MemoryError, RecursionError) as exc:  # e.g. an integer literal beyond Python's limits
        raise fail(f"cannot parse: {type(exc).__name__}") from None
    lead = len(text) - len(text.lstrip(" \t"))
    source = text.strip(" \t")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            node._symvae_text = ast.get_source_segment(source, node)  # the decimal as typed
    try:
        _check_size(tree.body)
        _check_growth(tree.body)
        with _cpu_budget(MAX_BUILD_SECONDS):
            expr = _Builder(source, allowed_names).build(tree.body)
            finite = not isinstance(expr, sp.Expr) or not expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan)
    except _Reject as exc:
        column = exc.column if exc.column is not None else getattr(exc.node, "col_offset", None)
        column = None if column is None else column + 1 + lead
        raise fail(exc.reason, column) from None
    except _OverBudget:
        raise fail(f"SymPy needs more than {MAX_BUILD_SECONDS:g} s of CPU time to simplify it; write it more "
                   f"simply") from None
    if not isinstance(expr, sp.Expr):
        raise fail("not an expression")
    if not finite:
        raise fail("not finite")
    return expr


class _OverBudget(Exception):
    """Raised by the CPU-time alarm while SymPy builds the expression."""


@contextlib.contextmanager
def _cpu_budget(seconds: float):
    """Stop SymPy's automatic simplification after ``seconds`` of CPU time (SIGVTALRM, main thread, POSIX).

    The structural bounds make typical worst cases instant, but SymPy's evaluation of some nested numeric and
    transcendental forms (sign queries through ``as_real_imag``) still grows without a simple syntactic measure;
    this is the backstop. It counts CPU time, so machine load does not change the outcome. Where no CPU-time alarm
    is available (another thread, Windows, or one already set), only the structural bounds apply.
    """
    usable = (hasattr(signal, "setitimer") and hasattr(signal, "SIGVTALRM")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_VIRTUAL)[0] == 0)
    if not usable:
        yield
        return
    armed, expired = [True], [False]

    def expire(signum, frame):
        if armed[0]:  # a late signal after the block ended is ignored
            expired[0] = True
            raise _OverBudget

    previous = signal.signal(signal.SIGVTALRM, expire)
    # The alarm repeats every 10 ms of CPU time after the budget: an exception raised from a signal handler can
    # land where Python ignores it (a gc callback, a __del__), and the next one then stops the build.
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds, 0.01)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)
    if expired[0]:  # every alarm was swallowed and the build finished anyway: over budget all the same
        raise _OverBudget


def _check_growth(root: ast.AST) -> None:
    """Bound what SymPy's automatic simplification may multiply out, before building anything.

    SymPy's assumption queries on nested powers of sums can work with their expansions, whose size grows with the
    polynomial degree (((t+1)**2+1)**2 nested ten deep takes seconds to build, fifteen deep minutes), and nested
    calls such as Abs(Abs(...) - 1) or continued fractions cost more with each level. So: a degree estimate (names 1,
    products add, powers multiply, a call counts as its arguments' degree) of at most ``MAX_DEGREE``, and calls and
    denominators nested at most ``MAX_CALL_DEPTH`` deep.
    """
    def walk(node, calls):
        if isinstance(node, ast.Constant):
            return 0
        if isinstance(node, ast.Name):
            return 0 if node.id in CONSTANTS else 1
        if isinstance(node, ast.UnaryOp):
            return walk(node.operand, calls)
        if isinstance(node, ast.BinOp):
            left = walk(node.left, calls)
            if isinstance(node.op, ast.Pow):
                exponent = node.right
                negative = isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.USub, ast.UAdd))
                literal = exponent.operand if negative else exponent
                if isinstance(literal, ast.Constant) and isinstance(literal.value, (int, float)) \
                        and not isinstance(literal.value, bool):
                    degree = left * max(1, math.ceil(min(abs(literal.value), 10.0 ** 6)))
                else:
                    degree = left + walk(exponent, calls) + 1
            else:
                divides = isinstance(node.op, ast.Div)  # a denominator nests like a call (continued fractions)
                if divides and calls + 1 > MAX_CALL_DEPTH:
                    raise _Reject(f"calls and denominators nested more than {MAX_CALL_DEPTH} deep", node)
                right = walk(node.right, calls + 1 if divides else calls)
                degree = max(left, right) if isinstance(node.op, (ast.Add, ast.Sub)) else left + right
            if degree > MAX_DEGREE:
                raise _Reject(f"the expression would multiply out to degree {degree} or more (at most {MAX_DEGREE})",
                              node)
            return degree
        if isinstance(node, ast.Call):
            if calls + 1 > MAX_CALL_DEPTH:
                raise _Reject(f"calls and denominators nested more than {MAX_CALL_DEPTH} deep", node)
            return max([1] + [walk(arg, calls + 1) for arg in ast.iter_child_nodes(node) if arg is not node.func])
        return max([0] + [walk(child, calls) for child in ast.iter_child_nodes(node)])

    walk(root, 0)


def _check_size(root: ast.AST) -> None:
    """Bound node count and depth before building anything (iteratively: no recursion on hostile input)."""
    count, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _Reject(f"more than {MAX_NODES} syntax elements", root)
        if depth > MAX_DEPTH:
            raise _Reject(f"nested more than {MAX_DEPTH} deep", node)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Builder:
    """Walks a whitelisted syntax tree and builds the SymPy expression."""

    def __init__(self, source: str, allowed_names: Collection[str] | None):
        self.source = source
        self.pairwise_arguments = 0
        self.allowed = None if allowed_names is None else frozenset(allowed_names)

    def build(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp):
            left = self.build(node.left)
            right = self.build(node.right)
            if isinstance(node.op, ast.Pow):
                return self._power(left, right, node)
            op = _BINARY.get(type(node.op))
            if op is None:  # point at the operator: the first non-blank, non-')' after the left operand
                column = node.left.end_col_offset
                while column < node.right.col_offset and self.source[column] in " \t)":
                    column += 1
                raise _Reject(f"operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)} is not "
                              f"allowed", node, column)
            return self._apply(op, (left, right), node)
        if isinstance(node, ast.UnaryOp):
            op = _UNARY.get(type(node.op))
            if op is None:
                raise _Reject(f"operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)} is not "
                              f"allowed", node)
            return self._apply(op, (self.build(node.operand),), node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Reject(f"{_NODE_NAMES.get(type(node), type(node).__name__)} is not allowed", node)

    # ------------------------------------------------------------------ leaves
    @staticmethod
    def _number(node: ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = {str: "string", bytes: "bytes", complex: "complex number", bool: "boolean",
                    type(None): "None", type(...): "'...'"}.get(type(value), type(value).__name__)
            raise _Reject(f"{kind} is not allowed (numbers only)", node)
        if isinstance(value, int):
            return sp.Integer(value)
        if not math.isfinite(value):
            raise _Reject("number outside the float64 range", node)
        # The decimal the user typed (Float('0.01')), as SymPy's parser gave it: the literal's own text.
        literal = getattr(node, "_symvae_text", None) or repr(value)
        return sp.Float(literal)

    def _name(self, node: ast.Name):
        name = node.id
        if name.startswith("_"):
            raise _Reject(f"name {name!r} is not allowed (names may not start with '_')", node)
        if name in FUNCTIONS:
            raise _Reject(f"function {name!r} needs an argument list", node)
        if name in CONSTANTS:
            return CONSTANTS[name]
        if self.allowed is not None and name not in self.allowed:
            raise _Reject(f"unknown name {name!r}; allowed: {', '.join(sorted(self.allowed)) or '(none)'}", node)
        return _SHARED.get(name) or sp.Symbol(name, real=True)

    # ------------------------------------------------------------------ operations
    @staticmethod
    def _apply(op, args, node):
        try:
            result = op(*args)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise _Reject(f"cannot evaluate: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                          node) from None
        if result is sp.nan or result is sp.zoo or result is sp.oo or result is sp.S.NegativeInfinity:
            raise _Reject("not finite", node)
        if isinstance(result, sp.Float) and not abs(float(result)) <= _FLOAT_MAX:
            raise _Reject("a number outside the float64 range", node)
        if isinstance(result, sp.Rational) and max(_digits(result.p), _digits(result.q)) > MAX_DIGITS:
            raise _Reject(f"a number of more than {MAX_DIGITS} digits", node)
        return result

    def _power(self, base, exponent, node):
        if not isinstance(base, sp.Expr) or not isinstance(exponent, sp.Expr):
            raise _Reject("a power needs expressions on both sides", node)
        if exponent.is_Number:
            if abs(exponent) > MAX_EXPONENT:
                raise _Reject(f"exponent {exponent} is larger than {MAX_EXPONENT} in magnitude", node.right)
            if base.is_Rational and exponent.is_Integer:
                digits = max(_digits(base.p), _digits(base.q)) * int(abs(exponent))
                if digits > MAX_DIGITS:
                    raise _Reject(f"the power makes a number of about {digits} digits (at most {MAX_DIGITS})", node)
            if base.is_Rational and exponent.is_Rational and not exponent.is_Integer:
                _check_root(base, node)
        return self._apply(lambda a, b: a ** b, (base, exponent), node)

    def _call(self, node: ast.Call):
        func = node.func
        if not isinstance(func, ast.Name):
            raise _Reject("only the listed functions can be called (by name)", func if not isinstance(
                func, ast.Attribute) else func)
        name = func.id
        if name not in FUNCTIONS:
            raise _Reject(f"unknown function {name!r}; allowed: {', '.join(FUNCTIONS)}", func)
        if node.keywords:
            raise _Reject(f"keyword arguments are not allowed in {name}(...)", node.keywords[0].value)
        if not node.args:
            raise _Reject(f"{name}() needs an argument", node)
        if name in _PAIRWISE:
            self.pairwise_arguments += len(node.args)
            if self.pairwise_arguments > MAX_ARGUMENTS:
                raise _Reject(f"Min, Max and Piecewise take at most {MAX_ARGUMENTS} arguments in all", node)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _Reject("starred argument is not allowed", arg)
        if name == "Piecewise":
            args = [self._piece(arg) for arg in node.args]
        else:
            args = [self.build(arg) for arg in node.args]
            for arg, sub in zip(args, node.args):
                if not isinstance(arg, sp.Expr):
                    raise _Reject(f"argument of {name} is not an expression", sub)
                if name == "sqrt" and arg.is_Rational:
                    _check_root(arg, sub)
                if name in _GROWING and arg.is_Number and abs(arg) > MAX_EXP_ARGUMENT:
                    raise _Reject(f"argument of {name} is larger than {MAX_EXP_ARGUMENT} in magnitude", sub)
        return self._apply(FUNCTIONS[name], args, node)

    def _piece(self, node: ast.AST):
        """One ``(value, condition)`` pair of a Piecewise; the condition is ``True`` or one comparison."""
        if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
            raise _Reject("Piecewise takes pairs (value, condition)", node)
        value_node, cond_node = node.elts
        value = self.build(value_node)
        if isinstance(cond_node, ast.Constant) and cond_node.value is True:
            return value, sp.true
        if not (isinstance(cond_node, ast.Compare) and len(cond_node.ops) == 1
                and type(cond_node.ops[0]) in _COMPARE):
            raise _Reject("a Piecewise condition is True or one comparison with < <= > >=", cond_node)
        left = self.build(cond_node.left)
        right = self.build(cond_node.comparators[0])
        condition = self._apply(_COMPARE[type(cond_node.ops[0])], (left, right), cond_node)
        return value, condition


def _check_root(base: sp.Rational, node: ast.AST) -> None:
    """SymPy factors an exact number to simplify its roots: keep the number small enough for that to be instant."""
    if max(_digits(base.p), _digits(base.q)) > MAX_ROOT_DIGITS:
        raise _Reject(f"a root of an exact number of more than {MAX_ROOT_DIGITS} digits", node)


def _digits(n: int) -> int:
    """Decimal digits of |n| (from its bit length: no conversion to text, which Python limits for large ints)."""
    n = abs(int(n))
    estimate = int(n.bit_length() * 0.30102999566398120)  # floor(log10 n) or one less
    return estimate + 1 if n >= 10 ** estimate else max(estimate, 1)
