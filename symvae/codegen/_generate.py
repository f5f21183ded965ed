"""Code generation: one SymPy source -> a Python module with numba, numpy and mpmath functions.

For a ``DerivedSystem`` with state y, parameters p and time t the generated module defines

* ``rhs_into(t, y, p, out)``, ``rhs(t, y, p)`` -- numba, scalar code after common-subexpression elimination;
* ``jac_into(t, y, p, out)`` (dF/dy) and ``dparams_into(t, y, p, out)`` (dF/dp) -- numba (for an ODE system in a
  second module of its own, generated on first use: ``CompiledSystem.derivatives``);
* ``rhs_numpy(t, y, p)``, ``jac_numpy``, ``observables_numpy`` -- numpy, vectorised over trailing axes of ``y``;
* ``rhs_mp``, ``jac_mp``, ``dparams_mp``, ``observables_mp`` -- mpmath, at the caller's ``mpmath.mp.dps``;
* ``integrate_start``/``integrate_piece`` -- the DOP853 template of ``templates/dop853.py``, compiled against
  ``rhs_into``, and ``program_eval`` (``templates/program.py``), which runs the parameter programs of time-dependent
  parameters (``symvae.codegen._schedule``) inside it.

Parameters are runtime arguments, so a new parameter value never triggers code generation or compilation.
"""
from __future__ import annotations

import keyword
import pathlib
from typing import Iterable, Sequence

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

from ..errors import DerivationError
from ..model import t as t_sym

__all__ = ["generate_source", "FunctionSpec"]

_TEMPLATES = pathlib.Path(__file__).with_name("templates")
#: printer settings: terms in SymPy's stored (canonical, deterministic) order -- sorting them for display was a
#: third of printing a large Jacobian
_SETTINGS = {"fully_qualified_modules": True, "order": "none"}


class FunctionSpec:
    """A function to generate: ``name(t, y, p[, out])`` returning/filling the given expressions.

    Arguments:
        name: function name.
        exprs: expressions (flat sequence, or a Matrix written row-major into ``out`` of that shape).
        backends: subset of ``("numba", "numpy", "mpmath")``.
        complex_input: the numpy and mpmath functions also accept complex ``y`` (numpy: a complex array is kept
            complex and so is the result; mpmath: ``mpmathify`` instead of ``mpf``), for complex-step derivatives of
            analytic expressions. Real input gives the same result as without it.
        repeated_only: eliminate repeated subexpressions only (SymPy's ``tree_cse``), without ``cse``'s search
            for common subsets of the arguments of sums and products (``opt_cse``), which was most of the code
            generation of a large Jacobian (45 of 57 s for linear/relu at M = 4).
    """

    def __init__(self, name: str, exprs, backends: Iterable[str] = ("numba", "numpy", "mpmath"), *,
                 complex_input: bool = False, repeated_only: bool = False):
        self.name = name
        self.complex_input = complex_input
        self.repeated_only = repeated_only
        if isinstance(exprs, sp.MatrixBase):
            self.shape = exprs.shape
            self.exprs = list(exprs)
        else:
            self.exprs = list(exprs)
            self.shape = (len(self.exprs),)
        self.backends = tuple(backends)
        self._cse = None
        self._rules = None

    def rule_groups(self):
        """The Gaussian rule nodes of the expressions, grouped by their arguments (``_rules.extract``)."""
        if self._rules is None:
            from ._rules import extract
            self._rules = extract(self.exprs)
        return self._rules[1]

    def cse(self):
        """Common-subexpression elimination of the non-zero expressions, once per function and shared by all
        backends: (replacements, [(index, reduced expression)])."""
        if self._cse is None:
            self.rule_groups()
            nonzero = [(k, e) for k, e in enumerate(self._rules[0]) if e != 0]
            exprs, symbols = [e for _, e in nonzero], sp.numbered_symbols("_c")
            if self.repeated_only:
                from sympy.simplify.cse_main import tree_cse
                replacements, reduced = tree_cse(exprs, symbols, opt_subs={}, order="none")
            else:
                replacements, reduced = sp.cse(exprs, symbols=symbols, order="none")
            self._cse = (replacements, [(k, r) for (k, _), r in zip(nonzero, reduced)])
        return self._cse


def _check_names(symbols: Sequence[sp.Symbol]) -> None:
    for s in symbols:
        if not s.name.isidentifier() or keyword.iskeyword(s.name) or s.name.startswith("_"):
            raise DerivationError(f"symbol name {s.name!r} cannot be used as a variable in generated code")


def _bindings(state, params, indent: str) -> list[str]:
    lines = [f"{indent}{s.name} = y[{i}]" for i, s in enumerate(state)]
    lines += [f"{indent}{s.name} = p[{i}]" for i, s in enumerate(params)]
    return lines


def _body(spec: FunctionSpec, printer, indent: str, assign, backend: str) -> list[str]:
    """Printing of the (shared) CSE of ``spec``, after the calls of its rule groups; ``assign(k, code)`` returns the
    line storing expression k."""
    from ._rules import call_line
    replacements, reduced = spec.cse()
    lines = [call_line(group, printer, backend, indent) for group in spec.rule_groups()]
    lines += [f"{indent}{s.name} = {printer.doprint(v)}" for s, v in replacements]
    lines += [f"{indent}{assign(k, printer.doprint(e))}" for k, e in reduced]
    return lines


def _numba_function(spec: FunctionSpec, state, params) -> str:
    printer = PythonCodePrinter(_SETTINGS)
    # numpy's error model: a division by zero gives inf/nan (caught as divergence) instead of raising in the kernel
    head = ['@njit(cache=True, error_model="numpy")', f"def {spec.name}_into(t, y, p, out):"]
    body = _bindings(state, params, "    ")
    if len(spec.shape) == 2:
        ncol = spec.shape[1]
        body.append("    out[:, :] = 0.0")
        body += _body(spec, printer, "    ", lambda k, c: f"out[{k // ncol}, {k % ncol}] = {c}", "numba")
    else:
        body.append("    out[:] = 0.0")
        body += _body(spec, printer, "    ", lambda k, c: f"out[{k}] = {c}", "numba")
    shape = ", ".join(str(d) for d in spec.shape)
    wrapper = ['@njit(cache=True, error_model="numpy")', f"def {spec.name}(t, y, p):", f"    out = numpy.empty(({shape},))",
               f"    {spec.name}_into(t, y, p, out)", "    return out"]
    return "\n".join(head + body + ["    return out", "", ""] + wrapper)


def _numpy_function(spec: FunctionSpec, state, params) -> str:
    printer = NumPyPrinter(_SETTINGS)
    shape = ", ".join(str(d) for d in spec.shape)
    lines = [f"def {spec.name}_numpy(t, y, p):",
             f'    """Vectorised over trailing axes of y (and of p): returns shape ({shape},) + y.shape[1:]."""']
    if spec.complex_input:  # complex y stays complex (complex-step derivatives); anything else becomes float
        lines += ["    y = numpy.asarray(y)", '    y = y if y.dtype.kind == "c" else y.astype(float)',
                  "    p = numpy.asarray(p, dtype=float)",
                  f"    out = numpy.zeros(({shape},) + numpy.broadcast_shapes(y.shape[1:], p.shape[1:]), "
                  "dtype=y.dtype)"]
    else:
        lines += ["    y = numpy.asarray(y, dtype=float)", "    p = numpy.asarray(p, dtype=float)",
                  f"    out = numpy.zeros(({shape},) + numpy.broadcast_shapes(y.shape[1:], p.shape[1:]))"]
    lines += _bindings(state, params, "    ")
    if len(spec.shape) == 2:
        ncol = spec.shape[1]
        lines += _body(spec, printer, "    ", lambda k, c: f"out[{k // ncol}, {k % ncol}] = {c}", "numpy")
    else:
        lines += _body(spec, printer, "    ", lambda k, c: f"out[{k}] = {c}", "numpy")
    return "\n".join(lines + ["    return out"])


def _mpmath_function(spec: FunctionSpec, state, params) -> str:
    printer = MpmathPrinter(_SETTINGS)
    shape = spec.shape
    lines = [f"def {spec.name}_mp(t, y, p):",
             '    """mpmath evaluation at the current mpmath.mp precision; returns an mpmath.matrix."""',
             "    import mpmath  # here, not at the top: loading the module for float64 work never imports it",
             f"    y = [mpmath.{'mpmathify' if spec.complex_input else 'mpf'}(v) for v in y]",
             "    p = [mpmath.mpf(v) for v in p]", "    t = mpmath.mpf(t)",
             f"    out = mpmath.matrix({shape[0]}, {shape[1] if len(shape) == 2 else 1})"]
    lines += _bindings(state, params, "    ")
    ncol = shape[1] if len(shape) == 2 else 1
    lines += _body(spec, printer, "    ", lambda k, c: f"out[{k // ncol}, {k % ncol}] = {c}", "mpmath")
    return "\n".join(lines + ["    return out"])


def generate_source(specs: Sequence[FunctionSpec], state, params, *, header: str = "",
                    templates: Sequence[str] = ()) -> str:
    """The text of a self-contained module computing ``specs`` (see the module docstring)."""
    _check_names(list(state) + list(params))
    for e in (e for spec in specs for e in spec.exprs):
        extra = e.free_symbols - set(state) - set(params) - {t_sym}
        if extra:
            raise DerivationError(f"expression depends on undeclared symbols {sorted(map(str, extra))}")
    parts = [f'"""Generated by symvae.codegen -- do not edit.\n\n{header}\n"""',
             "import functools  # noqa: F401", "import math  # noqa: F401", "",
             "import numpy", "from symvae.codegen._jit import njit_for", "",
             "njit = njit_for(__name__)  # numba's njit, or the identity in plain-Python mode (symvae.codegen._jit)", "",
             f"N_STATE = {len(state)}", f"N_PARAM = {len(params)}",
             f"STATE_NAMES = {tuple(s.name for s in state)!r}", f"PARAM_NAMES = {tuple(s.name for s in params)!r}",
             "", ""]
    from ._rules import rules_source
    parts += rules_source(specs)  # the loops of the Gaussian rule nodes (none for most systems)
    for spec in specs:
        if "numba" in spec.backends:
            parts += [_numba_function(spec, state, params), "", ""]
        if "numpy" in spec.backends:
            parts += [_numpy_function(spec, state, params), "", ""]
        if "mpmath" in spec.backends:
            parts += [_mpmath_function(spec, state, params), "", ""]
    if "dop853" in templates and "program" not in templates:  # the integrator runs parameter programs
        templates = ("program", *templates)
    for name in templates:
        parts.append((_TEMPLATES / f"{name}.py").read_text())
    return "\n".join(parts).rstrip() + "\n"
