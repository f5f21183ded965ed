"""The Jacobian module of a large ODE system with calls (an activation) runs in plain Python until its work reaches
the estimated cost of compiling it (``CompiledSystem._derivative``), then compiled; a function numba compiled in an
earlier run, or one of arithmetic only (the linear model), runs compiled from the start; a module below
``PLAIN_FIRST_MIN_LINES`` is compiled at its first call."""
import importlib
import sys

import numpy as np

import symvae
from symvae.codegen import compile_system
from symvae.derive import derive_dynamics

compile_module = importlib.import_module("symvae.codegen._compile")


def _fresh(tmp_path, monkeypatch, **acts):
    """A compiled system (M = 1) whose modules live in an empty cache (nothing compiled by numba yet)."""
    monkeypatch.setenv("SYMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compile_module, "_LOADED", {})
    monkeypatch.setattr(compile_module, "PLAIN_FIRST_MIN_LINES", 0)  # plain first at any size (small and fast here)
    system = derive_dynamics(symvae.make_model("base", **acts), cache=False)
    compiled = compile_system(system)
    # the numba load of this file, if another test of this process has one, would stand in for compiling it here
    monkeypatch.delitem(sys.modules, compiled.derivatives.name, raising=False)
    return compiled


def _point(compiled):
    y = compiled.system.pack(dict(m=[[0.3]], m_tilde=[[0.2]], Q=[[0.5]], Q_tilde=[[0.3]], R=[[0.2]], D=[0.9]))
    p = compiled.param_vector(dict(beta=0.7, eta=1.0, lam=0.1, rho=1.5, tau=0.05))
    return y, p


def test_plain_python_first_then_numba_at_the_compile_cost_with_the_same_numbers(tmp_path, monkeypatch):
    """An erf encoder: jac and dparams run plain (the module is not compiled) and agree with central differences
    of the right-hand side and with the numpy backend; one call short of the budget the next call compiles, and
    gives the plain numbers (1e-14); a later load sees numba's cache and runs compiled from the start."""
    erf = _fresh(tmp_path, monkeypatch, encoder_activation="erf")
    y, p = _point(erf)
    J, D = erf.jac(0.0, y, p), erf.dparams(0.0, y, p)
    module = erf.derivatives
    assert isinstance(module, compile_module.PlainFirstModule) and not module.is_compiled
    assert module.spent["jac"] > 0 and module.spent["dparams"] > 0
    np.testing.assert_allclose(D, module.plain.dparams_numpy(0.0, y, p), rtol=1e-13, atol=1e-15)
    h = 1e-6
    for j in range(len(y)):
        e = np.zeros(len(y))
        e[j] = h
        np.testing.assert_allclose(J[:, j], (erf.rhs(0.0, y + e, p) - erf.rhs(0.0, y - e, p)) / (2 * h), atol=1e-7)

    work, budget = module.derivative_work("jac")
    _, lines = compile_module.function_size(module.path.read_text(), "jac_into")
    assert budget == compile_module.COMPILE_WORK_PER_LINE * lines and work >= lines > 10
    module.spent["jac"] = budget - work + 1  # one call short of the budget: the next call compiles
    compiled_J = erf.jac(0.0, y, p)
    assert module.is_compiled
    np.testing.assert_allclose(compiled_J, J, rtol=1e-14, atol=1e-15)
    assert compile_module._numba_cache_exists(module.path, "jac_into")
    again = compile_module.load_plain_first(module.path, module.name + "_again")
    assert again.derivative_work("jac")[1] is None


def test_arithmetic_only_derivatives_are_compiled_from_the_start(tmp_path, monkeypatch):
    """The linear model's Jacobian has no calls: numba compiles it fast (``_llvm``), so no plain-Python phase."""
    linear = _fresh(tmp_path, monkeypatch)
    assert linear.derivatives.derivative_work("jac")[1] is None
    y, p = _point(linear)
    linear.jac(0.0, y, p)
    assert linear.derivatives.is_compiled


def test_a_small_derivative_module_is_compiled_at_its_first_call(tmp_path, monkeypatch):
    """Below ``PLAIN_FIRST_MIN_LINES`` statements (an erf encoder at M = 1) there is no plain-Python phase."""
    small = _fresh(tmp_path, monkeypatch, encoder_activation="erf")
    monkeypatch.setattr(compile_module, "PLAIN_FIRST_MIN_LINES", 1000)
    small._derivatives = None
    assert not isinstance(small.derivatives, compile_module.PlainFirstModule)
