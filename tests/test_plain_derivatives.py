"""The Jacobian module of an ODE system with calls (an activation) runs in plain Python until its work reaches the
estimated cost of compiling it (``CompiledSystem._derivative``), then compiled; a function numba compiled in an
earlier run, or one of arithmetic only (the linear model), runs compiled from the start."""
import importlib
import sys

import numpy as np
import pytest

import symvae
from symvae.codegen import compile_system
from symvae.derive import derive_dynamics

compile_module = importlib.import_module("symvae.codegen._compile")


def _fresh(tmp_path, monkeypatch, **acts):
    """A compiled system whose modules live in an empty cache (nothing compiled by numba yet)."""
    monkeypatch.setenv("SYMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compile_module, "_LOADED", {})
    system = derive_dynamics(symvae.make_model("base", M=2, M_star=1, **acts), cache=False)
    compiled = compile_system(system)
    # the numba load of this file, if another test of this process has one, would stand in for compiling it here
    monkeypatch.delitem(sys.modules, compiled.derivatives.name, raising=False)
    return compiled


@pytest.fixture()
def fresh(tmp_path, monkeypatch):
    return _fresh(tmp_path, monkeypatch, encoder_activation="erf")


def _point(compiled):
    system = compiled.system
    y = system.pack(dict(m=[[0.3], [0.1]], m_tilde=[[0.2], [-0.1]], Q=[[0.5, 0.1], [0.1, 0.4]],
                         Q_tilde=[[0.3, 0.05], [0.05, 0.2]], R=[[0.2, 0.0], [0.1, 0.3]], D=[0.9, 0.8]))
    p = compiled.param_vector(dict(beta=0.7, eta=1.0, lam=0.1, rho=1.5, tau=0.05))
    return y, p


def test_plain_python_first_then_numba_with_the_same_numbers(fresh):
    y, p = _point(fresh)
    J, D = fresh.jac(0.0, y, p), fresh.dparams(0.0, y, p)
    module = fresh.derivatives
    assert isinstance(module, compile_module.PlainFirstModule) and not module.is_compiled
    assert module.spent["jac"] > 0 and module.spent["dparams"] > 0
    numba = module.compiled()
    np.testing.assert_allclose(J, numba.jac(0.0, y, p), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(D, numba.dparams(0.0, y, p), rtol=1e-14, atol=1e-15)
    # central differences of the right-hand side: the plain Jacobian is the system's
    h = 1e-6
    for j in range(len(y)):
        e = np.zeros(len(y))
        e[j] = h
        fd = (fresh.rhs(0.0, y + e, p) - fresh.rhs(0.0, y - e, p)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, atol=1e-7)


def test_the_budget_is_the_estimated_compile_cost_then_numba_and_its_cache(fresh):
    y, p = _point(fresh)
    module = fresh.derivatives
    work, budget = module.derivative_work("jac")
    _, lines = compile_module.function_size(module.path.read_text(), "jac_into")
    assert budget == compile_module.COMPILE_WORK_PER_LINE * lines and work >= lines > 10
    module.spent["jac"] = budget - work + 1  # one call short of the budget: the next call compiles
    fresh.jac(0.0, y, p)
    assert module.is_compiled
    assert compile_module._numba_cache_exists(module.path, "jac_into")
    again = compile_module.load_plain_first(module.path, module.name + "_again")
    assert again.derivative_work("jac")[1] is None  # compiled by an earlier run: compiled from the start


def test_arithmetic_only_derivatives_are_compiled_from_the_start(tmp_path, monkeypatch):
    """The linear model's Jacobian has no calls: numba compiles it fast (``_llvm``), so no plain-Python phase."""
    linear = _fresh(tmp_path, monkeypatch)
    assert linear.derivatives.derivative_work("jac")[1] is None
    y, p = _point(linear)
    linear.jac(0.0, y, p)
    assert linear.derivatives.is_compiled
