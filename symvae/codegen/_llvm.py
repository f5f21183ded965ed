"""Straight-line float kernels lowered to LLVM IR directly, without numba's type inference.

A generated kernel such as ``rhs_into`` is thousands of assignments of +, -, *, / and integer powers of state
components, parameters and earlier temporaries (20,900 operations at (M, M*) = (5, 5)). numba types every one of
these operations through its generic overload resolution (~3 ms each), which made its compilation most of a large
system's cold build (~60 s of CPU at (5, 5)). Such a kernel is compiled here instead as one numba ``intrinsic``
whose code generation walks the function's syntax tree and emits the LLVM instructions numba itself emits for the
same operations: ``fadd``/``fsub``/``fmul``/``fdiv`` on doubles (no fast-math flags, so no reassociation or fused
multiply-add), an integer constant converted to double where numba converts it, an integer-literal power multiplied
out as numba's ``static_power_impl`` does (``_jit.numba_power``). The kernel computes the same numbers to the last bit
(tests/test_llvm_kernels.py compares both compilations). A kernel using anything else (a function call, a
comparison, a negative power ...) is compiled by numba as before (``wrap_njit``).

The numba function that calls the intrinsic has the kernel's name, file and first line, so numba's cache (keyed by
them and by the bytecode, here that of the stub) works across processes as before.
"""
from __future__ import annotations

import ast
import linecache
import re

__all__ = ["wrap_njit", "straight_line_source", "straight_line_body"]

#: Kernels considered for the direct lowering (the generated ``<name>_into`` functions).
_KERNEL_NAME = re.compile(r"^[a-z][a-z0-9_]*_into$")
#: A line of a supported body: an assignment of arithmetic on names, numbers and constant subscripts, or the return.
_LINE = re.compile(r"^    (?:[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9:, ]+\])? = [A-Za-z0-9_.+\-*/() \[\]:,]+|return out)$")
#: What the line pattern lets through but the lowering does not take: a keyword (conditional expression ...), a call,
#: an attribute, a power other than a small positive integer literal.
_REJECT = re.compile(r"\b(?:if|else|and|or|not|in|is|lambda|for|await|yield)\b|[A-Za-z_][A-Za-z0-9_]*\s*\("
                     r"|[A-Za-z_][A-Za-z0-9_]*\.|\*\*(?![1-9][0-9]?(?![0-9.eE]))")
#: Below this many lines numba's own compilation is fast enough and is kept.
MIN_LINES = 200
#: Largest integer-literal exponent multiplied out (numba unrolls up to 0x10000; the generator writes small ones).
_MAX_POWER = 99


def straight_line_source(func) -> str | None:
    """The source of ``func`` (a generated kernel ``def name_into(t, y, p, out):``) if every line of its body is a
    plain assignment or ``return out`` and it has at least ``MIN_LINES`` lines; else None."""
    code = func.__code__
    if not _KERNEL_NAME.match(code.co_name) or code.co_argcount != 4 or code.co_varnames[:4] != ("t", "y", "p", "out"):
        return None
    lines = linecache.getlines(code.co_filename)
    start = code.co_firstlineno - 1
    while start < len(lines) and not lines[start].startswith("def "):
        start += 1  # past the decorator
    if start >= len(lines) or not lines[start].startswith(f"def {code.co_name}("):
        return None
    body = straight_line_body(lines[start + 1:])
    if body is None:
        return None
    return "".join(lines[start:start + 1]) + "\n".join(body) + "\n"


def straight_line_body(lines, min_lines: int = MIN_LINES) -> list[str] | None:
    """The body of a kernel (``lines``: its file's lines after the ``def`` line, to the end of the function) without
    blank lines, if every line is a plain assignment or the final ``return out`` and there are at least
    ``min_lines``; else None (numba compiles it with its own type inference)."""
    body = []
    for line in lines:
        if not line.startswith("    ") and line.strip():
            break
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if not _LINE.match(line) or _REJECT.search(line):
            return None
        body.append(line)
    if len(body) < min_lines or not body or body[-1] != "    return out":
        return None
    return body


class _Unsupported(Exception):
    pass


def _check(tree: ast.FunctionDef) -> None:
    """Raise _Unsupported unless the body is made of what ``_Emitter`` lowers."""
    for stmt in tree.body[:-1]:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            raise _Unsupported(ast.dump(stmt)[:80])
        target = stmt.targets[0]
        if isinstance(target, ast.Subscript):
            if not (isinstance(target.value, ast.Name) and target.value.id == "out"):
                raise _Unsupported("store into something other than out")
            _out_index(target.slice, allow_slice=True)
        elif not isinstance(target, ast.Name) or target.id in ("t", "y", "p", "out"):
            raise _Unsupported("assignment target")
        for node in ast.walk(stmt.value):
            if isinstance(node, ast.BinOp):
                if isinstance(node.op, ast.Pow):
                    e = _power_literal(node.right)
                    if e is None:
                        raise _Unsupported("power")
                elif not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                    raise _Unsupported("operator")
            elif isinstance(node, ast.UnaryOp):
                if not isinstance(node.op, (ast.USub, ast.UAdd)):
                    raise _Unsupported("unary operator")
            elif isinstance(node, ast.Subscript):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("y", "p")
                        and isinstance(node.slice, ast.Constant) and type(node.slice.value) is int
                        and node.slice.value >= 0):
                    raise _Unsupported("subscript")
            elif isinstance(node, ast.Constant):
                if type(node.value) not in (int, float):
                    raise _Unsupported("constant")
            elif isinstance(node, ast.Name):
                if node.id in ("y", "p", "out"):
                    if not any(isinstance(s, ast.Subscript) and s.value is node for s in ast.walk(stmt.value)):
                        raise _Unsupported("array used as a value")
            elif not isinstance(node, (ast.Load, ast.operator, ast.unaryop, ast.expr_context)):
                raise _Unsupported(type(node).__name__)
    last = tree.body[-1]
    if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Name) and last.value.id == "out"):
        raise _Unsupported("return")


def _power_literal(node):
    if isinstance(node, ast.Constant) and type(node.value) is int and 1 <= node.value <= _MAX_POWER:
        return node.value
    return None


def _out_index(node, allow_slice=False):
    """The constant index of a store into ``out`` (a tuple for 2-d), or "all" for ``out[:]``/``out[:, :]``."""
    parts = node.elts if isinstance(node, ast.Tuple) else [node]
    if all(isinstance(q, ast.Slice) and q.lower is None and q.upper is None and q.step is None for q in parts):
        if not allow_slice:
            raise _Unsupported("slice")
        return "all", len(parts)
    if all(isinstance(q, ast.Constant) and type(q.value) is int and q.value >= 0 for q in parts):
        return tuple(q.value for q in parts), len(parts)
    raise _Unsupported("index of out")


def _parse(source: str) -> ast.FunctionDef:
    tree = ast.parse(source).body[0]
    if not isinstance(tree, ast.FunctionDef):
        raise _Unsupported("not a function")
    _check(tree)
    return tree


def _make_intrinsic(source: str):
    """A numba intrinsic ``kernel(t, y, p, out)`` computing the body of ``source`` (checked by ``_parse``)."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    double = ir.DoubleType()
    parsed: list = []  # the syntax tree, parsed at the first compilation (never on a numba-cache load)

    @intrinsic
    def kernel(typingctx, t, y, p, out):
        if not parsed:
            parsed.append(_parse(source))
        tree = parsed[0]
        for name, ty in (("y", y), ("p", p), ("out", out)):
            if not isinstance(ty, types.Array) or not isinstance(ty.dtype, (types.Float, types.Integer)):
                return None
        if not isinstance(out.dtype, types.Float) or not out.mutable:
            return None
        if not isinstance(t, (types.Float, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            tt, ty_, tp, tout = signature.args
            vt, vy, vp, vout = args
            intp = context.get_value_type(types.intp)
            arrays = {"y": (ty_, context.make_array(ty_)(context, builder, vy)),
                      "p": (tp, context.make_array(tp)(context, builder, vp))}
            out_ary = context.make_array(tout)(context, builder, vout)
            env: dict[str, object] = {}
            loads: dict[tuple, object] = {}
            t_double = []

            def as_double(value):
                return ir.Constant(double, float(value)) if isinstance(value, int) else value

            def load(name, index):
                key = (name, index)
                if key not in loads:
                    aty, ary = arrays[name]
                    ptr = cgutils.get_item_pointer(context, builder, aty, ary, [ir.Constant(intp, index)],
                                                   wraparound=False)
                    loads[key] = context.cast(builder, builder.load(ptr), aty.dtype, types.float64)
                return loads[key]

            def emit(node):
                if isinstance(node, ast.Constant):
                    return node.value if type(node.value) is int else ir.Constant(double, node.value)
                if isinstance(node, ast.Name):
                    if node.id == "t":
                        if not t_double:
                            t_double.append(context.cast(builder, vt, tt, types.float64))
                        return t_double[0]
                    return env[node.id]
                if isinstance(node, ast.Subscript):
                    return load(node.value.id, node.slice.value)
                if isinstance(node, ast.UnaryOp):
                    v = emit(node.operand)
                    if isinstance(node.op, ast.UAdd):
                        return v
                    return -v if isinstance(v, int) else builder.fneg(v)
                a = emit(node.left)
                if isinstance(node.op, ast.Pow):  # numba's static_power_impl: square and multiply
                    e = node.right.value
                    if isinstance(a, int):  # an integer to an integer literal: exact, as numba's int64 power
                        if not -2**63 <= a ** e < 2**63:
                            raise _Unsupported("integer overflow")
                        return a ** e
                    res, val = ir.Constant(double, 1.0), a
                    while e:
                        if e & 1:
                            res = builder.fmul(res, val)
                        e >>= 1
                        if e:
                            val = builder.fmul(val, val)
                    return res
                b = emit(node.right)
                if isinstance(a, int) and isinstance(b, int) and not isinstance(node.op, ast.Div):
                    value = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[type(node.op)]
                    if not -2**63 <= value < 2**63:
                        raise _Unsupported("integer overflow")
                    return value
                a, b = as_double(a), as_double(b)
                op = {ast.Add: builder.fadd, ast.Sub: builder.fsub, ast.Mult: builder.fmul,
                      ast.Div: builder.fdiv}[type(node.op)]
                return op(a, b)

            def store(index, value):
                ptr = cgutils.get_item_pointer(context, builder, tout, out_ary,
                                               [ir.Constant(intp, i) for i in index], wraparound=False)
                builder.store(context.cast(builder, value, types.float64, tout.dtype), ptr)

            for stmt in tree.body[:-1]:
                target = stmt.targets[0]
                value = as_double(emit(stmt.value))
                if isinstance(target, ast.Name):
                    env[target.id] = value
                    continue
                index, ndim = _out_index(target.slice, allow_slice=True)
                if ndim != tout.ndim:
                    raise _Unsupported("dimension of out")
                if index == "all":
                    shape = cgutils.unpack_tuple(builder, out_ary.shape, tout.ndim)
                    with cgutils.loop_nest(builder, shape, intp) as indices:
                        ptr = cgutils.get_item_pointer(context, builder, tout, out_ary, list(indices),
                                                       wraparound=False)
                        builder.store(context.cast(builder, value, types.float64, tout.dtype), ptr)
                else:
                    store(index, value)
            return context.get_dummy_value()

        return types.none(t, y, p, out), codegen

    return kernel


def wrap_njit(njit):
    """numba's ``njit`` for a generated module: a kernel that ``straight_line_source`` accepts becomes a numba
    function of the same name, file and first line that calls its ``_make_intrinsic`` (the function's own globals
    get the intrinsic as ``_symvae_<name>_kernel``); every other function goes to ``njit`` unchanged."""

    def decorate(func, options):
        source = straight_line_source(func)
        if source is None:
            return njit(func, **options)
        kernel = _make_intrinsic(source)
        code = func.__code__
        name = code.co_name
        holder = f"_symvae_{name}_kernel"
        func.__globals__[holder] = kernel
        stub_source = ("\n" * (code.co_firstlineno - 1)
                       + f"def {name}(t, y, p, out):\n    {holder}(t, y, p, out)\n    return out\n")
        namespace: dict = {}
        exec(compile(stub_source, code.co_filename, "exec"), func.__globals__, namespace)  # noqa: S102 - our text
        stub = namespace[name]
        stub.__qualname__ = func.__qualname__
        stub.__module__ = func.__module__
        stub.__doc__ = func.__doc__
        return njit(stub, **options)

    def njit_straight(*args, **options):
        if args and callable(args[0]):
            return decorate(args[0], options)
        return lambda func: decorate(func, options)

    return njit_straight
