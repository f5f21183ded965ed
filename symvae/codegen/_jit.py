"""The ``njit`` of generated modules: numba's, or the identity for a module loaded in plain-Python mode.

A generated module starts with ``njit = njit_for(__name__)``. The loader that wants the same file as plain Python
(no numba import, no compilation: its functions run in the interpreter) registers the module name it loads it under
with ``plain_module_name`` before executing it; every other name gets numba's ``njit``, imported only then.

The interpreter computes what numba computes, operation by operation (IEEE +, -, *, /, the same libm for sqrt, exp,
pow ...), except for powers: numba multiplies out an integer-literal power (``x**3`` is ``x * (x * x)``, ``x**-2``
is ``1 / (x * x)``) and calls libm ``pow`` for the others, while numpy scalars use numpy's own ``pow``.
``plain_code`` therefore compiles the module with every ``a ** b`` replaced by ``numba_power(a, b)``, which does what
numba does; the trajectories of the two loads are then the same to the last bit (tests/test_warm_path.py). The
kernels' bindings of state and parameters (``m_11 = y[0]``) become Python floats: the same IEEE double arithmetic
as numpy scalars, several times faster; where the interpreter raises instead of returning inf or nan (a division by
zero, ``math.log`` of a negative number), ``numerics._integrate`` reruns the integration compiled.
"""
from __future__ import annotations

import math
import sys

__all__ = ["njit_for", "plain_module_name", "is_plain", "plain_code", "numba_power"]

#: Names of generated modules loaded in plain-Python mode.
_PLAIN: set[str] = set()

#: Suffix of the module name of a plain-Python load (distinct from the numba load of the same file).
PLAIN_SUFFIX = "_plain"


def plain_module_name(name: str) -> str:
    """The module name under which the generated file of module ``name`` loads in plain-Python mode (registered)."""
    plain = name + PLAIN_SUFFIX
    _PLAIN.add(plain)
    return plain


def is_plain(module_name: str) -> bool:
    return module_name in _PLAIN


def _mark(f):
    f.symvae_kernel = True  # what the numba load of the same file compiles (see codegen._compile.PlainFirstModule)
    return f


def _identity(*args, **options):
    """``@njit``, ``@njit(...)`` or ``njit(f, ...)`` without numba: the function itself (marked as a kernel)."""
    if args and callable(args[0]):
        return _mark(args[0])
    return _mark


def njit_for(module_name: str):
    """The decorator a generated module named ``module_name`` compiles its kernels with."""
    if module_name in _PLAIN:
        return _identity
    from numba import njit

    from ._llvm import wrap_njit

    return wrap_njit(njit)  # large straight-line kernels lowered without numba's type inference (see _llvm)


def _integer_literal(node):
    """The value of an integer literal exponent (``3``, ``-2``), else None (numba's literal-exponent case)."""
    import ast

    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


def numba_power(a, b, literal=None):
    """``a ** b`` as numba's compiled code computes it (float64): for an integer literal exponent ``literal``, the
    unrolled square-and-multiply of numba's ``static_power_impl`` (then ``1 / result`` if it is negative, raising
    ZeroDivisionError for a zero result as numba does); otherwise
    C ``pow`` with the numpy error model (inf or nan instead of an exception)."""
    if literal is not None and abs(literal) <= 0x10000:
        e = abs(literal)
        res = 1.0
        val = float(a)
        while e:
            if e & 1:
                res = res * val
            e >>= 1
            val = val * val if e else val
        # numba inverts with Python's division even under the numpy error model: 0 ** -k raises ZeroDivisionError
        return 1.0 / res if literal < 0 else res
    a, b = float(a), float(b)
    try:
        return math.pow(a, b)
    except OverflowError:
        odd = b == math.floor(b) and math.fmod(b, 2.0) != 0.0
        return -math.inf if (a < 0 and odd) else math.inf
    except ValueError:  # a negative base to a non-integer power, or 0 to a negative power
        if a == 0.0:
            odd = b == math.floor(b) and math.fmod(b, 2.0) != 0.0
            return math.copysign(math.inf, a) if odd else math.inf
        return math.nan


def plain_code(source: str, filename: str):
    """The code object of a generated module's ``source`` for the plain-Python load: every ``a ** b`` in a kernel
    (a function decorated with ``njit``) becomes ``_numba_power(a, b[, literal])`` (the module's namespace must bind ``_numba_power`` to ``numba_power``)."""
    import ast

    def is_kernel(node):
        return any(getattr(d.func if isinstance(d, ast.Call) else d, "id", None) == "njit"
                   for d in node.decorator_list)

    class Powers(ast.NodeTransformer):
        def visit_FunctionDef(self, node):  # only the kernels: the numpy and mpmath functions keep their **
            return self.generic_visit(node) if is_kernel(node) else node

        def visit_BinOp(self, node):
            self.generic_visit(node)
            if not isinstance(node.op, ast.Pow):
                return node
            args = [node.left, node.right]
            literal = _integer_literal(node.right)
            if literal is not None:
                args.append(ast.Constant(literal))
            return ast.copy_location(ast.Call(ast.Name("_numba_power", ast.Load()), args, []), node)

        def visit_Assign(self, node):  # ``m_11 = y[0]``: a Python float (the same IEEE arithmetic, faster)
            self.generic_visit(node)
            v = node.value
            if (len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and isinstance(v, ast.Subscript)
                    and isinstance(v.value, ast.Name) and v.value.id in ("y", "p")
                    and isinstance(v.slice, ast.Constant) and type(v.slice.value) is int):
                node.value = ast.copy_location(ast.Call(ast.Name("float", ast.Load()), [v], []), v)
            return node

        def visit_AugAssign(self, node):
            self.generic_visit(node)
            if isinstance(node.op, ast.Pow):
                raise ValueError("generated code uses **=")  # not produced by the generator
            return node

    # a long sum is a left-nested chain of BinOp nodes (hundreds deep at (M, M*) = (5, 5)): the recursive visit needs
    # more frames than the default limit allows
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 50_000))
    try:
        tree = ast.fix_missing_locations(Powers().visit(ast.parse(source, filename)))
        return compile(tree, filename, "exec")
    finally:
        sys.setrecursionlimit(limit)
