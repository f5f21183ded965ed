"""Evaluation of parsed LaTeX into SymPy: scalars, or matrices for matrix notation (general M, M*).

Matrix semantics: products are matrix products (``A Q``), ``X^T`` transposes, ``I`` is the M x M identity, ``X^{-1}``
inverts, ``\\operatorname{diag}`` maps a vector to a diagonal matrix and a square matrix to the vector of its diagonal,
``\\operatorname{tr}`` is the trace. A scalar adds to a vector entry-wise (``1 - 1/D``) but not to a square matrix
(write ``\\lambda I``); dividing by a vector is entry-wise. 1 x 1 matrices are scalars.
"""
from __future__ import annotations

import sympy as sp

from ._latex import Binary, Call, Name, Node, Num, ParsedEquation, Power, Transpose, Unary
from ._namespace import NameResolutionError, Namespace
from ._source import Source

__all__ = ["Evaluator"]

_SCALAR_FUNCTIONS = {"exp": sp.exp, "log": sp.log, "ln": sp.log, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
                     "sin": sp.sin, "cos": sp.cos, "sqrt": sp.sqrt}


def _is_matrix(x) -> bool:
    return isinstance(x, sp.MatrixBase)


def _shape(x) -> str:
    return f"{x.rows}x{x.cols} matrix" if _is_matrix(x) else "scalar"


def _is_vector(x) -> bool:
    return _is_matrix(x) and (x.cols == 1 or x.rows == 1)


def _norm(x):
    if _is_matrix(x):
        if x.shape == (1, 1):
            return x[0, 0]
        return sp.ImmutableMatrix(x)
    return x


class Evaluator:
    """Evaluates syntax trees of one file, with its definitions, in a model's namespace.

    Arguments:
        source: the file (for error positions).
        namespace: the model's names and the user's symbol map.
        definitions: the user's intermediate symbols, full name -> defining equation (any order; no cycles).
    """

    def __init__(self, source: Source, namespace: Namespace, definitions: dict[str, ParsedEquation]):
        self.source, self.namespace, self.definitions = source, namespace, definitions
        self._memo: dict[str, object] = {}
        self._active: list[str] = []

    def error(self, offset: int, message: str):
        return self.source.error(offset, message)

    # ------------------------------------------------------------------ definitions
    def definition(self, name: str) -> object:
        """The value of the user's definition ``name`` (evaluated once).

        Raises:
            CheckInputError: a circular definition, or any error inside it.
        """
        if name in self._memo:
            return self._memo[name]
        eq = self.definitions[name]
        if name in self._active:
            chain = " -> ".join(self._active[self._active.index(name):] + [name])
            raise self.error(eq.offset, f"circular definition: {chain}")
        self._active.append(name)
        try:
            value = self.value(eq.rhs)
        finally:
            self._active.pop()
        self._memo[name] = value
        return value

    # ------------------------------------------------------------------ expressions
    def value(self, node: Node) -> object:
        """SymPy value (scalar expression or immutable matrix) of a syntax tree.

        Raises:
            CheckInputError: unknown symbol, incompatible shapes, ... located at the offending token.
        """
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Name):
            return self._name(node)
        if isinstance(node, Unary):
            return _norm(-self.value(node.arg))
        if isinstance(node, Transpose):
            arg = self.value(node.arg)
            return _norm(arg.T) if _is_matrix(arg) else arg
        if isinstance(node, Power):
            return self._power(self.value(node.base), self.value(node.exponent), node.offset)
        if isinstance(node, Call):
            out = self._call(node.func, self.value(node.arg), node.offset)
            if node.power is not None:
                out = self._power(out, self.value(node.power), node.offset)
            return out
        if isinstance(node, Binary):
            left, right = self.value(node.left), self.value(node.right)
            if node.op == "+":
                return self._add(left, right, node.offset)
            if node.op == "-":
                return self._add(left, _norm(-right), node.offset)
            if node.op == "*":
                return self._mul(left, right, node.offset)
            return self._div(left, right, node.offset)
        raise TypeError(f"unknown node {node!r}")  # pragma: no cover

    def _name(self, node: Name) -> object:
        if node.full in self.definitions:
            return self.definition(node.full)
        if node.sub is not None and node.base in self.definitions and node.sub.isdigit():
            value = self.definition(node.base)
            if not _is_matrix(value):
                raise self.error(node.offset, f"{node.base} is a scalar; it has no entry {node.sub}")
            idx = [int(c) - 1 for c in node.sub]
            if len(idx) == 1 and value.cols == 1:
                idx.append(0)
            if len(idx) != 2 or not (0 <= idx[0] < value.rows and 0 <= idx[1] < value.cols):
                raise self.error(node.offset, f"{node.base} is a {_shape(value)}; it has no entry {node.sub}")
            return value[idx[0], idx[1]]
        try:
            resolved = self.namespace.resolve(node.base, node.sub)
        except NameResolutionError as exc:
            raise self.error(node.offset, str(exc)) from None
        if resolved is None:
            shown = node.text or node.full
            if shown != node.full:
                shown += f" (read as {node.full!r})"
            raise self.error(node.offset, f"unknown symbol {shown}: define it in a display "
                                          f"block ({node.full} = ...) or map it in the header's 'symbols:'; "
                                          f"{self.namespace.known_names()}")
        self.namespace.record(resolved, node.full, node.text or node.full)
        return resolved.value

    def _add(self, a, b, offset):
        if not _is_matrix(a) and not _is_matrix(b):
            return a + b
        if _is_matrix(a) and _is_matrix(b):
            if a.shape != b.shape:
                raise self.error(offset, f"cannot add a {_shape(a)} and a {_shape(b)}")
            return _norm(a + b)
        mat, scal = (a, b) if _is_matrix(a) else (b, a)
        if _is_vector(mat):
            return _norm(mat.applyfunc(lambda x: x + scal))
        raise self.error(offset, f"cannot add a scalar and a {_shape(mat)}; write a multiple of the identity as "
                                 f"c I (e.g. \\lambda I)")

    def _mul(self, a, b, offset):
        if not _is_matrix(a) or not _is_matrix(b):
            return _norm(a * b)
        if a.cols != b.rows:
            hint = " (did you mean x^T y or x y^T?)" if a.shape == b.shape and _is_vector(a) else ""
            raise self.error(offset, f"cannot multiply a {_shape(a)} by a {_shape(b)}{hint}")
        return _norm(a * b)

    def _div(self, a, b, offset):
        if not _is_matrix(b):
            if b == 0:
                raise self.error(offset, "division by zero")
            return _norm(a / b)
        if _is_vector(b) and (not _is_matrix(a) or a.shape == b.shape):
            return _norm(sp.Matrix(b.rows, b.cols, lambda i, j: (a[i, j] if _is_matrix(a) else a) / b[i, j]))
        raise self.error(offset, f"cannot divide a {_shape(a)} by a {_shape(b)} (use X^{{-1}} for an inverse)")

    def _power(self, base, exponent, offset):
        if _is_matrix(exponent):
            raise self.error(offset, f"an exponent must be a scalar, not a {_shape(exponent)}")
        if not _is_matrix(base):
            return base ** exponent
        if base.rows != base.cols:
            raise self.error(offset, f"cannot raise a {_shape(base)} to a power (entry-wise powers are not "
                                     f"supported; write x^T x or x x^T)")
        if not (exponent.is_Integer):
            raise self.error(offset, "a matrix power must be an integer")
        if exponent < 0:
            return _norm(base.inv() ** (-exponent))
        return _norm(base ** exponent)

    def _call(self, func, arg, offset):
        if func in ("diag",):
            if not _is_matrix(arg):
                return arg
            if _is_vector(arg):
                return _norm(sp.diag(*list(arg)))
            if arg.rows == arg.cols:
                return _norm(sp.Matrix([arg[i, i] for i in range(arg.rows)]))
            raise self.error(offset, f"diag of a {_shape(arg)}")
        if func in ("tr", "Tr", "trace"):
            if not _is_matrix(arg):
                return arg
            if arg.rows != arg.cols:
                raise self.error(offset, f"trace of a {_shape(arg)}")
            return arg.trace()
        if _is_matrix(arg):
            raise self.error(offset, f"{func} of a {_shape(arg)} is not supported")
        return _SCALAR_FUNCTIONS[func](arg)
