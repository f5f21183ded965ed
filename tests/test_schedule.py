"""Time-dependent parameters (beta(t) schedules) as runtime programs (symvae.codegen._schedule).

References, each independent of the program under test: SymPy's own lambdify / evalf of the same parsed expression;
the derivation with the schedule inside the equations (``derive_dynamics(..., inline_schedules=True)``: its generated
numpy, mpmath and numba code, its own symbolic parameter Jacobian); central finite differences in gamma.
"""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import symvae
from symvae.codegen import compile_system
from symvae.codegen._schedule import ScheduledSystem, ScheduleError, compile_program, program_module
from symvae.errors import InvalidInputError
from symvae.model import parse_expression
from symvae.model import t as t_sym
from symvae.numerics import integrate
from symvae.simulate import default_initial_state

from helpers import random_state

EXPRESSIONS = [
    "beta*tanh(gamma*t)", "beta*Min(1, gamma*t)", "beta*(1 - exp(-gamma*t))", "sqrt(t)*log(1 + t)/(1 + gamma)",
    "Piecewise((t/10, t < 10), (1, True))", "Max(0.1, sin(gamma*t)**2)", "Abs(cos(gamma*t))*atan(t)",
    "erf(t/3)*Heaviside(t - 1)", "sinh(0.1*t)/cosh(0.1*t)", "t**1.5 + 2**(-t) - beta**3", "E**(-t/beta) + pi",
    "Piecewise((0, t <= 1), (beta, t < 5), (2*beta, True))", "(1 + t)**(-gamma)", "Max(t, 2, beta)*Min(t, 3)",
]
# name -> position in the parameter vector (gamma before beta: positions are not alphabetical)
INDEX = {"gamma": 0, "beta": 1}


def _sample(rng, n=60):
    t = np.concatenate([[0.0, 1.0, 5.0, 10.0], rng.uniform(0, 30, n)])
    p = np.stack([rng.uniform(0.01, 2.0, len(t)), rng.uniform(0.05, 3.0, len(t))])
    return t, p


def _reference(expr, t, p):
    """SymPy's lambdify of the same expression (numpy), nan where it is not a finite real."""
    gamma, beta = sp.Symbol("gamma", real=True), sp.Symbol("beta", real=True)
    f = sp.lambdify([t_sym, gamma, beta], expr, modules=["numpy", "scipy"])
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(f(t, p[0], p[1]), dtype=complex), t.shape)
    return np.where(np.isfinite(v) & (v.imag == 0), v.real, np.nan)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_program_matches_lambdify_in_numba_numpy_and_mpmath(text):
    import mpmath

    expr = parse_expression(text, "beta schedule")
    prog = compile_program(1, exprs=[(0, expr)], param_index=INDEX, labels=("beta(t)",))
    rng = np.random.default_rng(len(text))
    t, p = _sample(rng)
    ref = _reference(expr, t, p)
    assert np.all(np.isfinite(ref))  # these expressions are defined on the sample
    mod = program_module()
    out = np.empty(1)
    fast = np.empty(len(t))
    for k in range(len(t)):
        assert mod.program_eval(prog.code, prog.consts, t[k], np.ascontiguousarray(p[:, k]), out) == -1
        fast[k] = out[0]
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(prog.evaluate(t, p)[0], ref, rtol=1e-12, atol=1e-14)
    # mpmath at 30 digits against SymPy's evalf at 30 digits
    with mpmath.workdps(30):
        for k in range(0, len(t), 12):
            got = prog.evaluate(t[k], p[:, k], backend="mpmath")[0]
            want = expr.subs({t_sym: sp.Float(t[k], 30), sp.Symbol("gamma", real=True): sp.Float(p[0, k], 30),
                              sp.Symbol("beta", real=True): sp.Float(p[1, k], 30)}).evalf(30)
            assert abs(got - mpmath.mpf(str(want))) <= mpmath.mpf(10) ** -25 * max(1, abs(got))


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_the_plain_python_interpreter_computes_numbas_bits(text):
    """``program_eval`` of a generated module loaded as plain Python (the warm command line) and compiled by numba:
    the same float64 results, bit for bit, on the sample (the plain load is the same source, numba's ``**`` and
    libm's functions)."""
    from symvae.codegen._compile import load_plain_first

    compiled = compile_system(symvae.derive_dynamics(symvae.make_model("base")))
    plain = load_plain_first(compiled.path, compiled.module.__name__ + "_bits").plain
    expr = parse_expression(text, "beta schedule")
    prog = compile_program(1, exprs=[(0, expr)], param_index=INDEX, labels=("beta(t)",))
    t, p = _sample(np.random.default_rng(len(text) + 1), n=200)
    a, b = np.empty(1), np.empty(1)
    for k in range(len(t)):
        pk = np.ascontiguousarray(p[:, k])
        assert compiled.module.program_eval(prog.code, prog.consts, t[k], pk, a) == -1
        assert plain.program_eval(prog.code, prog.consts, t[k], pk, b) == -1
        assert a.tobytes() == b.tobytes(), (t[k], pk, a[0], b[0])


HOSTILE = [("1/(t - 1)", 1.0), ("log(t - 2)", 0.0), ("sqrt(1 - t)", 2.0), ("Piecewise((1, t < 1))", 2.0),
           ("t**(-2)", 0.0), ("log(t)", 0.0), ("(t - 3)**0.5", 1.0), ("exp(gamma*t)", 1e4)]


@pytest.mark.parametrize("text,t_bad", HOSTILE)
def test_a_value_that_is_not_finite_is_reported_never_returned(text, t_bad):
    expr = parse_expression(text, "beta schedule")
    prog = compile_program(2, copies=[(1, 0)], exprs=[(0, expr)], param_index=INDEX, labels=("beta(t)", "gamma"))
    p = np.array([0.5, 1.0])
    out = np.empty(2)
    assert program_module().program_eval(prog.code, prog.consts, t_bad, p, out) == 0  # the failing output's index
    with pytest.raises(ScheduleError, match=r"beta\(t\) is not finite at t = "):
        prog.evaluate(np.array([t_bad, 3.0]), p)
    import mpmath
    if text == "exp(gamma*t)":  # a float64 overflow only: mpmath has the (finite) value
        assert prog.evaluate(t_bad, p, backend="mpmath")[0] == mpmath.exp(5000)
    else:
        with pytest.raises(ScheduleError):
            prog.evaluate(t_bad, p, backend="mpmath")
    # the reference agrees that there is no finite real value there
    assert np.isnan(_reference(expr, np.array([t_bad]), p[:, None]))[0]


def test_unsupported_and_unknown_names_are_one_line_errors():
    with pytest.raises(InvalidInputError, match="not a parameter"):
        compile_program(1, exprs=[(0, parse_expression("beta*tanh(kappa*t)", "s"))], param_index=INDEX)
    with pytest.raises(InvalidInputError, match="not supported"):
        compile_program(1, exprs=[(0, sp.gamma(t_sym))], param_index=INDEX)


def test_conditions_the_parser_does_not_build_compile_too():
    """And, Or, Not, equalities (SymPy builds them; the text parser only allows one comparison per piece)."""
    gamma, beta = sp.Symbol("gamma", real=True), sp.Symbol("beta", real=True)
    expr = sp.Piecewise((beta, sp.And(t_sym > 1, t_sym < 5)), (gamma, sp.Or(sp.Eq(t_sym, 7), t_sym >= 9)),
                        (2, sp.Not(sp.Ne(t_sym, 8))), (t_sym, True))
    prog = compile_program(1, exprs=[(0, expr)], param_index=INDEX)
    t = np.array([0.0, 1.0, 3.0, 5.0, 7.0, 8.0, 8.5, 9.0, 12.0])
    p = np.array([0.25, 0.75])
    np.testing.assert_array_equal(prog.evaluate(t, p)[0], [0, 1, 0.75, 5, 0.25, 2, 8.5, 0.25, 0.25])
    np.testing.assert_allclose(prog.evaluate(t, p)[0], _reference(expr, t, p[:, None] + 0 * t))


def test_the_empty_program_and_copies():
    prog = compile_program(3, copies=[(0, 1), (2, 0)], exprs=[(1, parse_expression("2*t", "s"))], param_index=INDEX)
    np.testing.assert_array_equal(prog.evaluate(4.0, np.array([0.3, 0.7])), [0.7, 8.0, 0.3])


# ---------------------------------------------------------------------------------------------- ODE systems
# exact constants only: SymPy keeps a decimal such as 0.05 as a 53-bit Float, which rounds products in mpmath code
SCHEDULE = "beta*tanh(gamma*t) + Min(1, t/7)/20"


@pytest.fixture(scope="module")
def pair():
    """(runtime-schedule compiled system, the derivation with the schedule inside the equations: its module)."""
    model = symvae.make_model("base", beta_schedule=SCHEDULE)
    runtime = compile_system(symvae.derive_dynamics(model))
    inline = symvae.derive_dynamics(model, inline_schedules=True)
    from symvae.codegen._compile import _specs
    from symvae.codegen._generate import generate_source
    from symvae.codegen._compile import load_cached_module

    # the inlined system's own generated code (numpy and mpmath functions need no numba compilation)
    module, _ = load_cached_module("test-inline-" + inline.key, lambda: generate_source(
        _specs(inline), inline.state, inline.params))
    return runtime, inline, module


def test_runtime_schedule_reuses_the_base_module(pair):
    runtime, inline, _ = pair
    base = compile_system(symvae.derive_dynamics(symvae.make_model("base")))
    assert isinstance(runtime, ScheduledSystem)
    assert runtime.module is base.module and runtime.path == base.path
    assert [s.name for s in runtime.system.params] == [s.name for s in inline.params]
    # the exported equations still show beta(t) substituted, equal to the inlined derivation's
    for a, b in zip(runtime.system.rhs, inline.rhs):
        assert sp.simplify(a - b) == 0


def test_rhs_jacobian_dparams_observables_match_the_inlined_derivation(pair):
    import mpmath

    runtime, inline, module = pair
    rng = np.random.default_rng(3)
    names = [s.name for s in inline.params]
    for _ in range(6):
        y, _ = random_state(inline, rng)
        values = {"rho": rng.uniform(0.5, 2), "eta": rng.uniform(0.5, 2), "beta": rng.uniform(0.1, 2),
                  "lam": rng.uniform(0, 0.3), "tau": rng.uniform(0.01, 0.5), "gamma": rng.uniform(0.01, 1)}
        p = np.array([values[n] for n in names])
        t = rng.uniform(0, 20)
        np.testing.assert_allclose(runtime.rhs(t, y, p), module.rhs_numpy(t, y, p), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(runtime.jac(t, y, p), module.jac_numpy(t, y, p), rtol=1e-12, atol=1e-13)
        # dF/dgamma, dF/dbeta through the chain rule vs the inlined derivation's own symbolic dF/dp
        np.testing.assert_allclose(runtime.dparams(t, y, p), module.dparams_numpy(t, y, p), rtol=1e-11, atol=1e-12)
        got = runtime.observables(t, y, p)
        want = module.observables_numpy(t, y, p)
        for k, name in enumerate(runtime.observable_names):
            assert got[name] == pytest.approx(float(want[k]), rel=1e-12, abs=1e-13)
        with mpmath.workdps(30):
            a, b = runtime.rhs_mp(t, y, p), module.rhs_mp(t, y, p)
            assert max(abs(a[i] - b[i]) for i in range(len(y))) < mpmath.mpf(10) ** -25


def test_dparams_matches_finite_differences_in_gamma(pair):
    runtime, inline, _ = pair
    rng = np.random.default_rng(5)
    y, _ = random_state(inline, rng)
    names = [s.name for s in runtime.system.params]
    p = np.array([dict(rho=1.3, eta=0.8, beta=0.9, lam=0.1, tau=0.2, gamma=0.3)[n] for n in names])
    k = names.index("gamma")
    h = 1e-6
    e = np.zeros_like(p)
    e[k] = h
    fd = (runtime.rhs(4.0, y, p + e) - runtime.rhs(4.0, y, p - e)) / (2 * h)
    np.testing.assert_allclose(runtime.dparams(4.0, y, p)[:, k], fd, rtol=1e-7, atol=1e-9)


def test_integration_with_runtime_schedule_matches_the_inlined_equations(pair):
    """The compiled integrator running the program against SciPy's DOP853 on the inlined derivation's numpy RHS."""
    from scipy.integrate import solve_ivp

    runtime, inline, module = pair
    y0 = inline.pack(default_initial_state(inline.table))
    values = dict(rho=1.5, eta=0.7, beta=0.8, lam=0.05, tau=0.3, gamma=0.15)
    p = inline.param_vector(values)
    t_eval = np.linspace(0, 25, 11)
    traj = integrate(runtime, y0, values, t_eval, rtol=1e-12, atol=1e-14, throw=True)
    ref = solve_ivp(lambda t, y: module.rhs_numpy(t, y, p), (0, 25), y0, method="DOP853", t_eval=t_eval,
                    rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(traj.y - ref.y.T)) < 1e-10
    assert np.max(np.abs(traj.y[-1] - traj.y[0])) > 0.1  # something happened


@pytest.mark.slow
def test_compiled_integrations_runtime_vs_inlined_module():
    """The same, both compiled: the inlined derivation's own numba module (a compile of its own: slow)."""
    model = symvae.make_model("base", beta_schedule=SCHEDULE)
    runtime = compile_system(symvae.derive_dynamics(model))
    inline = compile_system(symvae.derive_dynamics(model, inline_schedules=True))
    assert not isinstance(inline, ScheduledSystem)
    y0 = inline.system.pack(default_initial_state(inline.system.table))
    values = dict(rho=1.5, eta=0.7, beta=0.8, lam=0.05, tau=0.3, gamma=0.15)
    t_eval = np.linspace(0, 200, 21)
    a = integrate(runtime, y0, values, t_eval, rtol=1e-12, atol=1e-14, throw=True)
    b = integrate(inline, y0, values, t_eval, rtol=1e-12, atol=1e-14, throw=True)
    assert np.max(np.abs(a.y - b.y)) < 1e-10


def test_a_schedule_failing_mid_run_stops_the_integration_with_a_status():
    model = symvae.make_model("base", beta_schedule="sqrt(3 - t)")
    system = symvae.derive_dynamics(model)
    y0 = system.pack(default_initial_state(system.table))
    traj = integrate(system, y0, dict(rho=1.5, eta=0.7, lam=0.05, tau=0.3), np.linspace(0, 6, 7))
    assert traj.status == "failed"
    assert 3.0 < traj.t_stop <= 6.0
    assert "beta(t) = sqrt(3 - t) is not finite at t = " in traj.message
    assert np.all(traj.t <= 3.0) and np.all(np.isfinite(traj.y))
    traj = integrate(compile_system(symvae.derive_dynamics(symvae.make_model("base", beta_schedule="log(t - 1)"))),
                     y0, dict(rho=1.5, eta=0.7, lam=0.05, tau=0.3), [0.0, 1.0])
    assert traj.status == "failed" and traj.t_stop == 0.0 and len(traj.t) == 0


def test_other_time_dependent_parameters_use_the_same_mechanism():
    """A step size tau_W(t): one module for every tau_W schedule (the model with tau_W as a parameter)."""
    m1 = symvae.make_model("step_sizes", tau_W="0.3*exp(-t/10)")
    m2 = symvae.make_model("step_sizes", tau_W="tau*(1 + t)**(-1/2)")
    c1, c2 = (compile_system(symvae.derive_dynamics(m)) for m in (m1, m2))
    assert c1.module is c2.module
    inline = symvae.derive_dynamics(m1, inline_schedules=True)
    rng = np.random.default_rng(1)
    y, _ = random_state(inline, rng)
    values = dict(rho=1.1, eta=0.9, beta=0.7, lam=0.1, tau_W_tilde=0.2, tau_D=0.4)
    p = c1.system.param_vector(values)
    f = sp.lambdify([t_sym, inline.state, inline.params], list(inline.rhs), modules="numpy")
    np.testing.assert_allclose(c1.rhs(2.5, y, p), f(2.5, y, inline.param_vector(values)), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------------------------------------- fresh processes
_NEW_EXPRESSION_SCRIPT = """
import sys, numpy as np
import symvae
from symvae.numerics import integrate
from symvae.simulate import default_initial_state, simulate
model = symvae.make_model("base", beta_schedule=sys.argv[1])
system = symvae.derive_dynamics(model)
values = dict(rho=1.5, eta=0.7, lam=0.05, tau=0.3, gamma=0.2)
init = default_initial_state(system.table)
traj = integrate(system, init, values, [0.0, 5.0], throw=True)
res = simulate(model, values, init, [0.0, 0.5], N=50, seeds=1)
assert res.ok, res.message
print(traj.y[-1][0])
"""


def _generated(root: pathlib.Path) -> set:
    return {str(p.relative_to(root)) for pattern in ("*/generated.py", "*/__pycache__/*.nb*") for p in root.glob(pattern)}


def test_a_new_expression_in_a_fresh_process_generates_and_compiles_nothing(tmp_path):
    env = dict(os.environ, SYMVAE_CACHE=str(tmp_path), PYTHONPATH=str(pathlib.Path(symvae.__file__).parents[1]))

    def run(expr):
        out = subprocess.run([sys.executable, "-c", _NEW_EXPRESSION_SCRIPT, expr], env=env, capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr
        return float(out.stdout.strip().splitlines()[-1])

    run("0.5*tanh(gamma*t)")  # the base model's modules, generated and compiled once
    before = _generated(tmp_path)
    texts = [(tmp_path / p).read_text() for p in before if p.endswith("generated.py")]
    assert any("def integrate_piece" in x for x in texts) and any("def run_seeds" in x for x in texts)
    assert any(p.endswith(".nbi") for p in before)
    run("0.3 + 0.2*Piecewise((t/4, t < 4), (1, True))")
    run("0.5*(1 - exp(-gamma*t))")
    assert _generated(tmp_path) == before  # no new module, no new numba cache file


# ------------------------------------------------------------------------------------------------------ simulator
def test_simulator_observables_with_a_schedule_are_the_base_observables_at_beta_of_t():
    """neg_elbo = distortion / sigma^2 + beta(t) rate (docs/model.md), with beta(t) written out here in numpy; eg, rate
    and distortion do not involve beta. A schedule that is not finite at t = 0: status failed with the program's
    message, nan observables there, no numpy warning."""
    import warnings

    from symvae.simulate import simulate

    init = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [1]}
    values = dict(rho=1.3, eta=0.7, beta=0.9, lam=0.0, tau=0.05, gamma=0.4)
    t_eval = [0.0, 0.5, 1.0, 2.0, 3.0]
    model = symvae.make_model("base", beta_schedule="beta*tanh(gamma*t)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = simulate(model, values, init, t_eval, N=60, seeds=2)
    assert res.ok, res.message
    obs = res.observables
    beta_t = 0.9 * np.tanh(0.4 * np.asarray(res.t))
    assert np.all(np.isfinite(obs["rate"])) and np.all(obs["rate"] > 0)
    np.testing.assert_allclose(obs["neg_elbo"], obs["distortion"] + beta_t * obs["rate"], rtol=1e-12, atol=1e-12)
    # eg from the simulated overlaps by hand (M = M* = 1: rho - 2 sqrt(rho)|m| + Q)
    m, Q = res.per_seed["m"][..., 0, 0], res.per_seed["Q"][..., 0, 0]
    np.testing.assert_allclose(obs["eg"], 1.3 - 2 * np.sqrt(1.3) * np.abs(m) + Q, rtol=1e-12, atol=1e-12)
    for text, t_bad in (("1/t", 0.0), ("log(t)", 0.0), ("beta/(t - 1)", 1.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = simulate(symvae.make_model("base", beta_schedule=text), values, init, [0.0, 0.5, 1.0, 2.0], N=60,
                           seeds=2)
        assert res.status == "failed" and res.t_stop == t_bad
        assert f"is not finite at t = {t_bad:g}" in res.message and "beta(t) = " in res.message
        assert res.t[-1] == t_bad and np.all(np.isnan(res.observables["neg_elbo"][:, -1]))
        assert np.all(np.isfinite(res.observables["eg"]))
