"""Runtime programs: a time-dependent parameter p(t) = expr(t, other parameters) as data, not code.

A ``Program`` maps (t, p_outer) to a parameter vector p_inner: each output is a copy of an outer parameter or an
expression (a beta(t) schedule, or a derivative of one) written as a stack-machine program -- an array of
(opcode, argument) rows and an array of constants. One numba function of every generated module
(``program_eval``, ``templates/program.py``) runs any program, so a new expression costs no code generation and no
compilation; ``Program.evaluate`` runs the same program with numpy (vectorised over t and trailing axes of p) or
mpmath. The expression is compiled from the SymPy tree the safe parser (``symvae.model._expr``) built, never from text.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError, SymvaeError
from ._compile import CompiledSystem
from ._compile import compile_system as _compile_plain

__all__ = ["Program", "EMPTY", "compile_program", "ScheduleError", "OPCODES", "ScheduledSystem", "compile_system",
           "program_module"]

#: opcode -> name (the numba interpreter in templates/program.py switches on these numbers)
OPCODES = {0: "const", 1: "t", 2: "param", 3: "store",
           10: "add", 11: "sub", 12: "mul", 13: "div", 14: "pow", 15: "min", 16: "max", 17: "lt", 18: "le", 19: "eq",
           20: "neg", 21: "exp", 22: "log", 23: "sqrt", 24: "tanh", 25: "sinh", 26: "cosh", 27: "sin", 28: "cos",
           29: "atan", 30: "abs", 31: "erf", 32: "not", 33: "heaviside", 40: "select"}
_OP = {name: code for code, name in OPCODES.items()}
_UNARY_FUNCS = {"exp": "exp", "log": "log", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "sin": "sin",
                "cos": "cos", "atan": "atan", "Abs": "abs", "erf": "erf"}


class ScheduleError(SymvaeError):
    """A runtime program produced a value that is not finite (numpy/mpmath evaluation)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """A compiled runtime program.

    Attributes:
        code: int64 array (n, 2) of (opcode, argument); consts: float64 constants; n_out: length of the output;
        exact: the constants exactly (SymPy numbers: 1/10 stays 1/10 for mpmath).
        labels: what each output is (for messages), e.g. ``"beta(t) = beta*tanh(gamma*t)"``.
    """

    code: np.ndarray
    consts: np.ndarray
    n_out: int
    labels: tuple[str, ...] = ()
    exact: tuple = ()  # the constants as SymPy numbers (mpmath evaluation at any precision)

    @property
    def empty(self) -> bool:
        return self.code.shape[0] == 0

    def label(self, k: int) -> str:
        return self.labels[k] if k < len(self.labels) and self.labels[k] else f"output {k}"

    def evaluate(self, t, p, *, backend: str = "numpy", strict: bool = True):
        """Run the program with numpy (``t`` and the trailing axes of ``p`` broadcast; returns shape
        (n_out,) + broadcast shape) or mpmath (scalars; returns a list of mpf). With ``strict=False`` (numpy only)
        a value that is not finite is returned as it is (nan, inf) instead of raising.

        Raises:
            ScheduleError: an output is not finite (where, and at which t, is named).
        """
        if backend == "mpmath":
            import mpmath

            lib = _mp_lib(mpmath)
            t = mpmath.mpf(t)
            p = [mpmath.mpf(v) for v in p]
            consts = [mpmath.mpf(str(c.evalf(mpmath.mp.dps + 10))) for c in self.exact] if self.exact \
                else [mpmath.mpf(float(c)) for c in self.consts]
        else:
            lib = _NUMPY_LIB
            t = np.asarray(t, dtype=float)
            p = np.asarray(p, dtype=float)
            consts = [float(c) for c in self.consts]
        outs: list = [lib["num"](0.0)] * self.n_out  # outputs the program does not store are 0
        stack: list = []
        with np.errstate(all="ignore"):
            for op, a in self.code.tolist():
                name = OPCODES[op]
                if name == "const":
                    stack.append(consts[a])
                elif name == "t":
                    stack.append(t)
                elif name == "param":
                    stack.append(p[a])
                elif name == "store":
                    outs[a] = stack.pop()
                elif op < 20:
                    y = stack.pop()
                    x = stack.pop()
                    stack.append(lib[name](x, y))
                elif op < 40:
                    stack.append(lib[name](stack.pop()))
                else:
                    b, a_, c = stack.pop(), stack.pop(), stack.pop()
                    stack.append(lib["select"](c, a_, b))
        if backend == "mpmath":
            for k, v in enumerate(outs):
                if not lib["finite"](v):
                    raise ScheduleError(f"{self.label(k)} is not finite at t = {float(t):g} (value {v})")
            return outs
        shape = np.broadcast_shapes(*(np.shape(v) for v in outs)) if outs else ()
        result = np.empty((self.n_out,) + shape)
        for k, v in enumerate(outs):
            result[k] = v
            bad = ~np.isfinite(result[k])
            if strict and np.any(bad):
                tt = np.broadcast_to(t, shape)[bad].ravel()[0] if np.ndim(t) else float(t)
                raise ScheduleError(f"{self.label(k)} is not finite at t = {float(tt):g} "
                                    "(division by zero or outside its domain)")
        return result


def _nan_guard(f):
    def g(*args):
        out = f(*args)
        isnan = functools.reduce(np.logical_or, (np.isnan(a) for a in args))
        return np.where(isnan, np.nan, out)
    return g


def _np_div(x, y):
    return np.true_divide(x, y)


_NUMPY_LIB = {
    "num": float, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _np_div,
    "pow": lambda x, y: np.power(np.asarray(x, dtype=float), y),
    "min": np.minimum, "max": np.maximum,
    "lt": _nan_guard(lambda x, y: np.less(x, y).astype(float)),
    "le": _nan_guard(lambda x, y: np.less_equal(x, y).astype(float)),
    "eq": _nan_guard(lambda x, y: np.equal(x, y).astype(float)),
    "neg": np.negative, "exp": np.exp, "log": lambda x: np.log(np.where(np.asarray(x) >= 0, x, np.nan)),
    "sqrt": lambda x: np.sqrt(np.where(np.asarray(x) >= 0, x, np.nan)), "tanh": np.tanh, "sinh": np.sinh,
    "cosh": np.cosh, "sin": np.sin, "cos": np.cos, "atan": np.arctan, "abs": np.abs,
    "erf": lambda x: _erf_numpy(x), "not": lambda x: 1.0 - np.asarray(x, dtype=float),
    "heaviside": lambda x: np.where(np.isnan(x), np.nan, np.heaviside(x, 0.5)),
    "select": lambda c, a, b: np.where(np.isnan(c), np.nan, np.where(np.asarray(c) != 0, a, b)),
}


def _erf_numpy(x):
    from scipy.special import erf

    return erf(x)


@functools.cache
def _mp_lib_cached(mpmath):
    nan = mpmath.mpf("nan")

    def isnan(*xs):
        return any(mpmath.isnan(x) for x in xs)

    def cmp(f):
        return lambda x, y: nan if isnan(x, y) else mpmath.mpf(1 if f(x, y) else 0)

    def div(x, y):
        if y == 0:
            return nan if (x == 0 or isnan(x)) else mpmath.inf
        return x / y

    def power(x, y):
        try:
            v = mpmath.power(x, y)
        except ZeroDivisionError:
            return mpmath.inf
        return v if not isinstance(v, mpmath.mpc) else (v.real if v.imag == 0 else nan)

    return {
        "num": mpmath.mpf, "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": div, "pow": power,
        "min": lambda x, y: nan if isnan(x, y) else min(x, y), "max": lambda x, y: nan if isnan(x, y) else max(x, y),
        "lt": cmp(lambda x, y: x < y), "le": cmp(lambda x, y: x <= y), "eq": cmp(lambda x, y: x == y),
        "neg": lambda x: -x, "exp": mpmath.exp,
        "log": lambda x: nan if (isnan(x) or x < 0) else (-mpmath.inf if x == 0 else mpmath.log(x)),
        "sqrt": lambda x: nan if (isnan(x) or x < 0) else mpmath.sqrt(x), "tanh": mpmath.tanh, "sinh": mpmath.sinh,
        "cosh": mpmath.cosh, "sin": mpmath.sin, "cos": mpmath.cos, "atan": mpmath.atan, "abs": abs,
        "erf": mpmath.erf, "not": lambda x: x if isnan(x) else 1 - x,
        "heaviside": lambda x: x if isnan(x) else mpmath.mpf(1 if x > 0 else (0 if x < 0 else 0.5)),
        "select": lambda c, a, b: nan if isnan(c) else (a if c != 0 else b),
        "finite": lambda v: mpmath.isfinite(v),
    }


def _mp_lib(mpmath):
    return _mp_lib_cached(mpmath)


EMPTY = Program(np.zeros((0, 2), dtype=np.int64), np.zeros(0), 0)


class _Writer:
    def __init__(self, param_index: Mapping[str, int]):
        import sympy as sp

        from ..model import t as t_sym

        self.sp = sp
        self.t = t_sym
        self.index = dict(param_index)
        self.code: list[tuple[int, int]] = []
        self.consts: list = []  # SymPy numbers

    def emit(self, name: str, arg: int = 0):
        self.code.append((_OP[name], arg))

    def const(self, value):
        value = value if isinstance(value, self.sp.Basic) else self.sp.Float(value)  # numbers only, never text
        if not (value.is_finite and value.is_real) or not np.isfinite(float(value)):
            raise InvalidInputError(f"the expression has a non-finite or complex constant ({value})")
        if value not in self.consts:
            self.consts.append(value)
        self.emit("const", self.consts.index(value))

    def fold(self, args, name):
        self.expr(args[0])
        for a in args[1:]:
            self.expr(a)
            self.emit(name)

    def expr(self, e):  # noqa: C901 -- one case per SymPy node kind
        sp = self.sp
        if e == self.t:
            self.emit("t")
        elif isinstance(e, sp.Symbol):
            if e.name not in self.index:
                raise InvalidInputError(f"the expression depends on {e.name!r}, which is not a parameter here")
            self.emit("param", self.index[e.name])
        elif e in (sp.true, sp.false):
            self.const(1.0 if e == sp.true else 0.0)
        elif e.is_Number or isinstance(e, sp.NumberSymbol):
            self.const(e)
        elif isinstance(e, sp.Add):
            self.fold(e.args, "add")
        elif isinstance(e, sp.Mul):
            num = [a for a in e.args if not (a.is_Pow and a.exp.is_Number and a.exp < 0)]
            den = [a.base ** (-a.exp) for a in e.args if a.is_Pow and a.exp.is_Number and a.exp < 0]
            if num:
                self.fold(num, "mul")
            else:
                self.const(1.0)
            if den:
                self.fold(den, "mul")
                self.emit("div")
        elif isinstance(e, sp.Pow):
            if e.exp == sp.Rational(1, 2):
                self.expr(e.base)
                self.emit("sqrt")
            elif e.exp.is_Number and e.exp < 0:
                self.const(1.0)
                self.expr(e.base ** (-e.exp))
                self.emit("div")
            elif e.base == sp.E:
                self.expr(e.exp)
                self.emit("exp")
            else:
                self.expr(e.base)
                self.expr(e.exp)
                self.emit("pow")
        elif isinstance(e, sp.exp):
            self.expr(e.args[0])
            self.emit("exp")
        elif type(e).__name__ in _UNARY_FUNCS and len(e.args) == 1:
            self.expr(e.args[0])
            self.emit(_UNARY_FUNCS[type(e).__name__])
        elif isinstance(e, sp.Heaviside):
            if len(e.args) > 1 and e.args[1] != sp.Rational(1, 2):
                raise InvalidInputError("Heaviside with a value at 0 other than 1/2 is not supported in schedules")
            self.expr(e.args[0])
            self.emit("heaviside")
        elif isinstance(e, (sp.Min, sp.Max)) or type(e).__name__ == "MatchingMax":
            self.fold(e.args, "min" if isinstance(e, sp.Min) else "max")
        elif isinstance(e, sp.Piecewise):
            self.piecewise(list(e.args))
        elif isinstance(e, sp.core.relational.Relational) or isinstance(e, sp.logic.boolalg.Boolean):
            self.cond(e)
        else:
            raise InvalidInputError(f"{type(e).__name__} is not supported in a runtime schedule expression")

    def piecewise(self, pieces):
        """select(c1, e1, select(c2, e2, ...)): emitted as c1, e1, <rest>, select; no piece left is nan (0/0)."""
        if not pieces:
            self.consts_nan()
            return
        value, cond = pieces[0]
        if cond == self.sp.true:
            self.expr(value)
            return
        self.cond(cond)
        self.expr(value)
        self.piecewise(pieces[1:])
        self.emit("select")

    def consts_nan(self):
        """Push nan (a Piecewise without a default piece, outside all its conditions): 0/0."""
        self.const(0.0)
        self.const(0.0)
        self.emit("div")

    def cond(self, c):
        sp = self.sp
        if c in (sp.true, sp.false):
            self.const(1.0 if c == sp.true else 0.0)
        elif isinstance(c, sp.StrictLessThan):
            self.expr(c.lhs), self.expr(c.rhs), self.emit("lt")
        elif isinstance(c, sp.LessThan):
            self.expr(c.lhs), self.expr(c.rhs), self.emit("le")
        elif isinstance(c, sp.StrictGreaterThan):
            self.expr(c.rhs), self.expr(c.lhs), self.emit("lt")
        elif isinstance(c, sp.GreaterThan):
            self.expr(c.rhs), self.expr(c.lhs), self.emit("le")
        elif isinstance(c, sp.Equality):
            self.expr(c.lhs), self.expr(c.rhs), self.emit("eq")
        elif isinstance(c, sp.Unequality):
            self.expr(c.lhs), self.expr(c.rhs), self.emit("eq"), self.emit("not")
        elif isinstance(c, sp.And):
            for k, a in enumerate(c.args):
                self.cond(a)
                if k:
                    self.emit("mul")
        elif isinstance(c, sp.Or):
            for k, a in enumerate(c.args):
                self.cond(a)
                if k:
                    self.emit("max")
        elif isinstance(c, sp.Not):
            self.cond(c.args[0])
            self.emit("not")
        else:
            raise InvalidInputError(f"condition {c} is not supported in a runtime schedule expression")


def compile_program(n_out: int, *, copies: Sequence[tuple[int, int]] = (), exprs: Sequence[tuple[int, object]] = (),
                    param_index: Mapping[str, int], labels: Sequence[str] = ()) -> Program:
    """A program writing outer parameter ``i`` to output ``j`` for each (j, i) of ``copies`` and the value of the
    SymPy expression ``e`` (in ``t`` and the parameters of ``param_index``: name -> position in p) to output ``j``
    for each (j, e) of ``exprs``.

    Raises:
        InvalidInputError: an expression uses a function the programs do not have, or an unknown symbol.
    """
    w = _Writer(param_index)
    for j, i in copies:
        w.emit("param", int(i))
        w.emit("store", int(j))
    for j, e in exprs:
        w.expr(e)
        w.emit("store", int(j))
    code = np.array(w.code, dtype=np.int64).reshape(-1, 2)
    return Program(code, np.array([float(c) for c in w.consts], dtype=float), int(n_out), tuple(labels),
                   tuple(w.consts))


class ScheduledSystem(CompiledSystem):
    """The compiled system of a ``DerivedSystem`` with schedules: the compiled base system (the derivation without
    them, shared by every schedule) and two programs -- its parameters from the caller's at time t, and their
    derivatives in the caller's parameters (the schedule expressions differentiated by SymPy), so that
    dF/dq = sum_j dF/dp_j dp_j/dq (e.g. dF/dgamma = dF/dbeta dbeta/dgamma). Same interface as ``CompiledSystem``;
    ``integrate`` passes ``program`` to the compiled integrator.
    """

    def __init__(self, system, base):
        import sympy as sp

        from ..errors import DerivationError

        rep = dict(system.schedules)
        if (tuple(e.xreplace(rep) for e in base.system.rhs) != tuple(system.rhs)
                or {k: e.xreplace(rep) for k, e in base.system.observables.items()} != dict(system.observables)):
            raise DerivationError("the system's equations are not its base system's with the schedules substituted "
                                  "(changed after DerivedSystem.with_schedules?)")
        self.system = system
        self.base = base
        self.module = base.module
        self.path = base.path
        self.observable_names = tuple(system.observables)
        outer = list(system.params)
        index = {s.name: i for i, s in enumerate(outer)}
        inner = list(base.system.params)
        scheduled = dict(system.schedules)
        copies, exprs, labels = [], [], []
        for j, s in enumerate(inner):
            if s in scheduled:
                exprs.append((j, scheduled[s]))
                labels.append(f"{s.name}(t) = {scheduled[s]}")
            elif s.name in index:
                copies.append((j, index[s.name]))
                labels.append(s.name)
            else:
                raise DerivationError(f"parameter {s.name} of the base system is neither scheduled nor a parameter")
        self.program = compile_program(len(inner), copies=copies, exprs=exprs, param_index=index,
                                       labels=tuple(labels))
        n_out = len(outer)
        dexprs = [(j * n_out + index[s.name], sp.Integer(1)) for j, s in enumerate(inner) if s not in scheduled]
        for j, s in enumerate(inner):
            if s in scheduled:
                for i, q in enumerate(outer):
                    d = sp.diff(scheduled[s], q)
                    if d != 0:
                        dexprs.append((j * n_out + i, d))
        self.dprogram = compile_program(len(inner) * n_out, exprs=dexprs, param_index=index)

    def inner_params(self, t: float, p: np.ndarray) -> np.ndarray:
        """The base system's parameter vector at time t (compiled program).

        Raises:
            ScheduleError: a scheduled value is not finite at t.
        """
        out = np.empty(self.program.n_out)
        bad = self.module.program_eval(self.program.code, self.program.consts, float(t),
                                       np.ascontiguousarray(p, dtype=float), out)
        if bad >= 0:
            raise ScheduleError(f"{self.program.label(bad)} is not finite at t = {float(t):g} "
                                "(division by zero or outside its domain)")
        return out

    def inner_jacobian(self, t: float, p: np.ndarray) -> np.ndarray:
        """d(base parameters)/d(parameters) at time t, shape (n_base_params, n_params)."""
        out = np.zeros(self.dprogram.n_out)
        bad = self.module.program_eval(self.dprogram.code, self.dprogram.consts, float(t),
                                       np.ascontiguousarray(p, dtype=float), out)
        if bad >= 0:
            raise ScheduleError(f"a parameter derivative of the schedule is not finite at t = {float(t):g}")
        return out.reshape(self.program.n_out, len(self.system.params))

    def rhs(self, t, y, p):
        return self.base.rhs(t, y, self.inner_params(t, p))

    def jac(self, t, y, p):
        return self.base.jac(t, y, self.inner_params(t, p))

    def dparams(self, t, y, p):
        if not self.system.params:
            return np.zeros((len(self.system.state), 0))
        return self.base.dparams(t, y, self.inner_params(t, p)) @ self.inner_jacobian(t, p)

    def rhs_numpy(self, t, y, p):
        return self.base.rhs_numpy(t, y, self.program.evaluate(t, p))

    def observables(self, t, y, p):
        return self.base.observables(t, y, self.program.evaluate(t, p))

    def rhs_mp(self, t, y, p):
        return self.base.rhs_mp(t, y, self.program.evaluate(t, p, backend="mpmath"))

    def jac_mp(self, t, y, p):
        return self.base.jac_mp(t, y, self.program.evaluate(t, p, backend="mpmath"))

    def observables_mp(self, t, y, p):
        return self.base.observables_mp(t, y, self.program.evaluate(t, p, backend="mpmath"))

    def param_vector(self, values):
        return self.system.param_vector(values)


_SCHEDULED: dict[str, ScheduledSystem] = {}


def compile_system(system) -> CompiledSystem:
    """``symvae.codegen.compile_system``: the generated, cached module of a derived system (``_compile``), or for a
    system with schedules the ``ScheduledSystem`` running its base system's module (one per system within a
    process)."""
    if not system.schedules:
        return _compile_plain(system)
    key = system.key
    if key not in _SCHEDULED or _SCHEDULED[key].system is not system:
        _SCHEDULED[key] = ScheduledSystem(system, _compile_plain(system.base))
    return _SCHEDULED[key]


@functools.cache
def program_module():
    """A module holding only the compiled program interpreter (``program_eval``), generated and compiled once into
    the cache: for running programs outside a system's module."""
    import pathlib

    from ._compile import load_cached_module

    template = pathlib.Path(__file__).with_name("templates") / "program.py"
    source = "import math\n\nimport numpy\nfrom numba import njit\n\n\n" + template.read_text()
    module, _ = load_cached_module("program-interpreter", lambda: source, prefix="symvae_program")
    return module
