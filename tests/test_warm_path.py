"""The warm path of ``symvae dynamics``: a second run with the same model options loads the generated module from a
plain-data cache entry without SymPy, and prints exactly what the cold path printed; anything corrupt or partial in
that entry (or in the module) sends the run back to the cold path. The warm run integrates with the generated
module loaded as plain Python (no numba import) and switches to numba past a work budget.

The ground truth of every comparison is the cold path itself (derivation, code generation, ``DerivedSystem``), run
in a separate process or, for the layout, ``DerivedSystem.unpack``; for the plain-Python load, the numba load of
the same file (and, for powers, numba's own compiled ``**``).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import symvae
from symvae._cache import CacheEntry, cache_root
from symvae.cli._main import build_parser
from symvae.codegen import compile_system
from symvae.codegen._compile import CompiledSystem, PlainFirstModule, load_plain_first
from symvae.codegen._jit import numba_power
from symvae.codegen import _warm
from symvae.codegen._schedule import ScheduledSystem, compile_program
from symvae.codegen._warm import (PlainSystem, layout_of, load_warm, load_warm_schedule, program_from_data,
                                  store_warm_schedule, warm_key)
from symvae.derive._system import derivation_key
from symvae.model import parse_expression
from symvae.numerics import _integrate
from symvae.numerics._integrate import integrate
from symvae.simulate import default_initial_state

from helpers import model, random_params

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Runs ``symvae.cli.main(argv)`` and reports, as the last line of stderr, the exit code and whether SymPy and numba
#: were imported (the cold path derives with SymPy; the warm path must not touch it, nor numba on a short run).
PROBE = ("import json, sys\n"
         "import symvae.cli\n"
         "code = symvae.cli.main(json.loads(sys.argv[1]))\n"
         "sys.stderr.write(json.dumps({'code': code, 'sympy': 'sympy' in sys.modules,\n"
         "                             'numba': 'numba' in sys.modules}) + '\\n')\n")

BASE = ["dynamics", "--rho", "1.3", "--eta", "0.7", "--beta", "0.9", "--tau", "0.02", "--t-max", "300",
        "--t-eval", "0,1,10,100,250,300"]


def run(cache, argv):
    """``symvae ARGV`` in a fresh interpreter on ``cache``: (exit code, stdout, stderr without the probe line,
    SymPy imported?, numba imported?)."""
    env = dict(os.environ, SYMVAE_CACHE=str(cache),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, env=env,
                          timeout=900)
    lines = proc.stderr.splitlines()
    assert lines, proc.stderr
    info = json.loads(lines[-1])
    return info["code"], proc.stdout, "\n".join(lines[:-1]), info["sympy"], info["numba"]


def key_of(argv) -> str:
    from symvae.cli._dynamics import _warm_key

    return _warm_key(build_parser().parse_args(argv))


def drop_warm(cache: pathlib.Path) -> None:
    for entry in cache.iterdir():
        if (entry / "warm.json").exists():
            shutil.rmtree(entry)


@pytest.fixture()
def seeded_cache(tmp_path):
    """A fresh cache holding only the derivation and the generated module of the base model (copied, numba's own
    cache and the source's time stamp included, from the session's cache), so the cold path costs seconds."""
    m = model("base")
    compiled = compile_system(symvae.derive_dynamics(m))
    cache = tmp_path / "cache"
    cache.mkdir()
    for key in (derivation_key("dynamics", m), compiled.path.parent.name):
        shutil.copytree(cache_root() / key, cache / key)
    return cache


def test_second_run_is_warm_prints_what_the_cold_run_printed_and_survives_a_corrupt_entry(seeded_cache):
    argv = BASE + ["--json"]
    cold = run(seeded_cache, argv)
    warm = run(seeded_cache, argv)
    assert cold[0] == 0 and cold[3] is True  # derived with SymPy
    assert warm[3] is False  # no SymPy on the second run
    # nor numba, on either run: 482 evaluations stay within the plain-Python budget (the cold run's freshly loaded
    # module is plain-Python first too)
    assert cold[4] is False and warm[4] is False
    assert warm[:3] == cold[:3]  # exit code, stdout and stderr identical
    data = json.loads(cold[1])
    assert data["status"] == "ok" and data["t"] == [0, 1, 10, 100, 250, 300]
    # a damaged entry (bytes the manifest vouches for, but not JSON): the cold path again, then warm again
    _corruptions(seeded_cache, key_of(argv))["garbage"]()
    fallback = run(seeded_cache, argv)
    assert fallback[3] is True and fallback[:3] == cold[:3]
    again = run(seeded_cache, argv)
    assert again[3] is False and again[:3] == cold[:3]
    # an explicit --init takes the cold path; the default state written out gives the same numbers
    init = '{"m": [[0.01]], "m_tilde": [[0.01]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [1]}'
    explicit = run(seeded_cache, argv + ["--init", init])
    assert explicit[3] is True and explicit[1] == cold[1]


def test_warm_table_failure_status_and_bad_input_match_the_cold_path(seeded_cache):
    # the table output of a run that diverges: exit 1, the same table and status line
    diverging = ["dynamics", "--tau", "3", "--t-max", "2000"]
    cold, warm = run(seeded_cache, diverging), run(seeded_cache, diverging)
    assert cold[0] == 1 and "# status: diverged" in cold[1] and cold[3] is True
    assert warm[3] is False and warm[:3] == cold[:3]
    # bad input found after the warm entry is read: the same one-line error and exit code 2
    bad = diverging + ["--set", "nope=1"]
    warm_bad = run(seeded_cache, bad)
    drop_warm(seeded_cache)
    cold_bad = run(seeded_cache, bad)
    assert warm_bad[3] is False and cold_bad[3] is True
    assert warm_bad[0] == cold_bad[0] == 2 and warm_bad[1:3] == cold_bad[1:3]
    assert warm_bad[1] == "" and len(warm_bad[2].splitlines()) == 1 and "nope" in warm_bad[2]


def _corruptions(cache, key):
    """Ways a warm entry or its module can be damaged, each applied to a fresh copy of ``cache``."""
    entry = CacheEntry(key, cache)
    meta = json.loads(entry.read_bytes("warm.json"))
    module = CacheEntry(meta["module"], cache)

    def garbage():  # bytes that match the manifest but are not JSON
        entry.write_bytes("warm.json", b"\x00not json")

    def partial():  # valid JSON lacking a field
        entry.write_bytes("warm.json", json.dumps({k: v for k, v in meta.items() if k != "layout"}).encode())

    def truncated():  # a partial write the manifest does not vouch for
        data = (entry.dir / "warm.json").read_bytes()
        (entry.dir / "warm.json").write_bytes(data[: len(data) // 2])

    def wrong_names():  # an entry that disagrees with its module
        entry.write_bytes("warm.json", json.dumps(dict(meta, state=meta["state"][::-1])).encode())

    def bad_index():
        layout = {k: [shape, [["y", 99]] * len(refs)] for k, (shape, refs) in meta["layout"].items()}
        entry.write_bytes("warm.json", json.dumps(dict(meta, layout=layout)).encode())

    def module_truncated():
        data = (module.dir / "generated.py").read_bytes()
        (module.dir / "generated.py").write_bytes(data[: len(data) // 2])

    def module_missing():
        (module.dir / "generated.py").unlink()

    return {f.__name__: f for f in (garbage, partial, truncated, wrong_names, bad_index, module_truncated,
                                    module_missing)}


def test_a_corrupt_or_partial_warm_entry_or_module_is_a_miss(seeded_cache, tmp_path, monkeypatch):
    argv = BASE + ["--json"]
    run(seeded_cache, argv)  # writes the warm entry
    key = key_of(argv)
    for name in _corruptions(seeded_cache, key):
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(seeded_cache, copy)
        _corruptions(copy, key)[name]()
        monkeypatch.setenv("SYMVAE_CACHE", str(copy))
        assert load_warm(key) is None, name
    # the intact entry is a hit (so the checks above are not vacuous)
    monkeypatch.setenv("SYMVAE_CACHE", str(seeded_cache))
    hit = load_warm(key)
    assert hit is not None and hit[1].system.params[0].name == "beta"


@pytest.mark.slow
def test_the_command_line_regenerates_a_corrupt_module(seeded_cache):
    argv = BASE + ["--json"]
    reference = run(seeded_cache, argv)
    _corruptions(seeded_cache, key_of(argv))["module_truncated"]()
    fallback = run(seeded_cache, argv)
    assert fallback[3] is True and fallback[:3] == reference[:3]
    again = run(seeded_cache, argv)
    assert again[3] is False and again[:3] == reference[:3]


@pytest.mark.slow
@pytest.mark.parametrize("options", [["--variant", "base"], ["--variant", "fixed_D", "--M", "2"],
                                     ["--variant", "tied"], ["--variant", "learned_sigma2"]])
def test_fresh_cache_twice_same_output_second_without_sympy(tmp_path, options):
    argv = ["dynamics", "--t-max", "200", "--json"] + options
    cold = run(tmp_path / "fresh", argv)
    warm = run(tmp_path / "fresh", argv)
    assert cold[0] == 0 and cold[3] is True and warm[3] is False and warm[:3] == cold[:3]


@pytest.mark.parametrize("variant,M,M_star", [("base", 1, 1), ("tied", 1, 1), ("fixed_D", 1, 1),
                                               ("learned_sigma2", 1, 1), ("base", 2, 1)])
def test_plain_layout_unpacks_as_the_derived_system(variant, M, M_star):
    system = symvae.derive_dynamics(model(variant, M=M, M_star=M_star))
    plain = PlainSystem("ode", [s.name for s in system.state], [p.name for p in system.params],
                        list(system.observables), {k: tuple(v) for k, v in layout_of(system).items()})
    y = np.random.default_rng(0).normal(size=(len(system.state), 7))
    values = {p.name: 0.5 + k for k, p in enumerate(system.params)}
    expected, got = system.unpack(y, values), plain.unpack(y, values)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].shape == expected[name].shape and np.array_equal(got[name], expected[name]), name
    assert np.array_equal(plain.param_vector(values), system.param_vector(values))


def test_keys_distinguish_every_model_option():
    base = ["dynamics", "--t-max", "1"]
    variants = [[], ["--variant", "tied"], ["--M", "2"], ["--M-star", "2"], ["--encoder-activation", "erf"],
                ["--decoder-activation", "erf"], ["--beta-schedule", "1+t"],
                ["--variant", "tied", "--beta-schedule", "1+t"]]
    keys = [key_of(base + v) for v in variants]
    assert len(set(keys)) == len(keys)
    # every schedule of a model shares one entry, which holds the expressions by their text
    assert key_of(base + ["--beta-schedule", "1+2*t"]) == key_of(base + ["--beta-schedule", "1 + t"]) == keys[6]
    # runtime values are not part of the key
    assert key_of(base + ["--rho", "2", "--tau", "0.5", "--t-max", "9", "--set", "x=1"]) == keys[0]
    assert warm_key("ode", {"a": 1}) != warm_key("ode", {"a": 2})


# ------------------------------------------------------------------------------------ plain-Python load of the module

def _numba(compiled) -> CompiledSystem:
    """``compiled`` on its numba module alone (``compile_system`` loads an ODE module plain-Python first)."""
    module = compiled.module.compiled() if isinstance(compiled.module, PlainFirstModule) else compiled.module
    return CompiledSystem(compiled.system, module, compiled.path)


def _plain_first(compiled) -> CompiledSystem:
    """The module of ``compiled`` loaded anew as a ``PlainFirstModule`` (its numba load: ``_numba(compiled)``)."""
    numba_module = _numba(compiled).module
    module = load_plain_first(compiled.path, numba_module.__name__)
    assert module.plain is not numba_module and module._compiled is None
    return CompiledSystem(compiled.system, module, compiled.path)


def _same_run(got, expected):
    """Two trajectories identical to the last bit: outputs, every accepted step, counts, status and message."""
    assert (got.status, got.message, got.t_stop) == (expected.status, expected.message, expected.t_stop)
    assert (got.nfev, got.n_accepted, got.n_rejected) == (expected.nfev, expected.n_accepted, expected.n_rejected)
    for name in ("t", "y", "t_steps", "y_steps"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.shape == b.shape and np.array_equal(a, b), name


@pytest.mark.parametrize("variant,M,M_star,t_max", [("base", 1, 1, 1500), ("tied", 1, 1, 1500),
                                                    ("learned_sigma2", 1, 1, 600), ("base", 2, 1, 300)])
def test_plain_python_and_numba_give_the_same_trajectory_also_across_the_switch(variant, M, M_star, t_max,
                                                                              monkeypatch):
    system = symvae.derive_dynamics(model(variant, M=M, M_star=M_star))
    compiled = compile_system(system)
    y0 = system.pack({k: v for k, v in default_initial_state(system.table).items() if k in system.blocks})
    params = random_params(system, np.random.default_rng(M + 3 * M_star + len(variant)))
    params.update(tau=0.02, lam=0.0) if "tau" in params else None
    t_eval = np.linspace(0.0, t_max, 7)
    reference = integrate(_numba(compiled), y0, params, t_eval)  # numba only
    assert reference.ok and reference.n_accepted > 20, reference.message
    # everything in plain Python (the default budget is far above this run)
    plain = _plain_first(compiled)
    _same_run(integrate(plain, y0, params, t_eval), reference)
    assert plain.module._compiled is None  # numba never touched
    # a budget that runs out after about a third of the run: numba continues from the state reached
    work = reference.nfev * (plain.module.rhs_size + _integrate.PLAIN_STAGE_WORK * len(y0))
    monkeypatch.setattr(_integrate, "PLAIN_WORK_BUDGET", work // 3)
    switched = _plain_first(compiled)
    _same_run(integrate(switched, y0, params, t_eval), reference)
    assert switched.module._compiled is _numba(compiled).module  # the switch happened (to the one numba module)


@pytest.mark.parametrize("text", ["beta*tanh(gamma*t)", "Piecewise((t/50, t < 50), (beta + sin(t)**2, True))",
                                  "beta*(1 + t)**(-gamma) + sqrt(t)*exp(-t)/10"])
def test_a_scheduled_run_in_plain_python_and_numba_is_the_same_to_the_last_bit(text, monkeypatch):
    """The parameter program interpreted in plain Python (the warm path) and compiled: the same trajectory, also
    across the switch from one to the other (libm functions in both)."""
    scheduled = _scheduled_compiled(text)
    system = scheduled.system
    y0 = system.pack({k: v for k, v in default_initial_state(system.table).items() if k in system.blocks})
    params = {"beta": 0.8, "eta": 0.7, "lam": 0.0, "rho": 1.3, "tau": 0.05, "gamma": 0.3}
    params = {p.name: params[p.name] for p in system.params}
    t_eval = np.linspace(0.0, 400.0, 9)
    reference = integrate(ScheduledSystem(scheduled.system, _numba(scheduled.base)), y0, params, t_eval)  # numba
    assert reference.ok and reference.n_accepted > 20, reference.message
    for budget in (None, 3):
        plain = _warm.PlainScheduledSystem(scheduled.system, _plain_first(scheduled.base), scheduled.program)
        if budget:
            work = reference.nfev * (plain.module.rhs_size + _integrate.PLAIN_STAGE_WORK * len(y0))
            monkeypatch.setattr(_integrate, "PLAIN_WORK_BUDGET", work // budget)
        _same_run(integrate(plain, y0, params, t_eval), reference)
        assert (plain.module._compiled is None) == (budget is None)


def test_an_exception_in_the_plain_phase_reruns_the_integration_compiled():
    compiled = compile_system(symvae.derive_dynamics(model("base")))
    params = {"beta": 1.0, "eta": 1.0, "lam": 0.0, "rho": 1.0, "tau": 0.02}
    y0, t_eval = np.array([0.01, 0.01, 1.0, 1.0, 0.0, 1.0]), np.linspace(0.0, 800.0, 5)
    numba_only = _numba(compiled)
    reference = integrate(numba_only, y0, params, t_eval)
    real = load_plain_first(compiled.path, numba_only.module.__name__)
    calls = []

    def failing_piece(*args):  # a few good pieces, then what math.log(-1.0) raises in the interpreter
        calls.append(1)
        if len(calls) > 2:
            raise ValueError("math domain error")
        return real.plain.integrate_piece(*args[:13], 5, *args[14:])  # step_limit = 5

    plain = type("Plain", (), {k: v for k, v in vars(real.plain).items() if not k.startswith("__")})
    plain.integrate_piece = staticmethod(failing_piece)
    module = PlainFirstModule(plain, real.path, real.name, real.rhs_size)
    _same_run(integrate(CompiledSystem(compiled.system, module, compiled.path), y0, params, t_eval), reference)
    assert len(calls) == 3 and module._compiled is numba_only.module


def test_numba_power_is_numbas_power():
    from numba import njit

    rng = np.random.default_rng(5)
    bases = np.concatenate([rng.uniform(-3.0, 3.0, 4000), rng.lognormal(0.0, 3.0, 4000), [0.0, -0.0, 1e200, -1e200,
                                                                                           1e-200, np.inf, np.nan]])
    def outcome(f, x):  # the value, or the exception numba's compiled code raises (0 ** -k)
        try:
            return f(float(x))
        except ZeroDivisionError:
            return -12345.0

    for k in (-3, -2, -1, 0, 1, 2, 3, 4, 5, 7):
        compiled_power = njit(error_model="numpy")(eval(f"lambda x: x ** {k}"))  # a literal exponent, as generated
        expected = np.array([outcome(compiled_power, x) for x in bases])
        got = np.array([outcome(lambda v: numba_power(v, k, k), x) for x in bases])
        assert np.array_equal(got, expected, equal_nan=True), k
    general = njit(error_model="numpy")(lambda x, y: x ** y)
    for e in (-0.125, 0.5, 1.5, -2.5, 1.0 / 3.0, 2.0, -3.0):
        expected = np.array([general(float(x), e) for x in bases])
        got = np.array([numba_power(float(x), e) for x in bases])
        assert np.array_equal(got, expected, equal_nan=True), e
    # the difference this guards against: numpy's scalar power is not numba's for x ** 3
    x = bases[:4000]
    assert np.any(x ** 3 != np.array([numba_power(v, 3, 3) for v in x]))


def test_the_plain_load_never_imports_numba():
    compiled = compile_system(symvae.derive_dynamics(model("base")))
    code = ("import sys\n"
            "from symvae.codegen._compile import CompiledSystem, load_plain_first\n"
            "from symvae.codegen._warm import PlainSystem\n"
            "from symvae.numerics._integrate import integrate\n"
            f"module = load_plain_first({str(compiled.path)!r}, {_numba(compiled).module.__name__!r})\n"
            "system = PlainSystem('ode', module.plain.STATE_NAMES, module.plain.PARAM_NAMES, (), {})\n"
            "traj = integrate(CompiledSystem(system, module, module.path), [0.01, 0.01, 1, 1, 0, 1],\n"
            "                 [1.0, 1.0, 0.0, 1.0, 0.02], [0.0, 100.0, 400.0])\n"
            "print(traj.status, repr(float(traj.y[-1, 0])), 'numba' in sys.modules)\n")
    _numba_free_and_exact(compiled, code, [0.0, 100.0, 400.0])


def _numba_free_and_exact(compiled, code: str, t_eval) -> None:
    """``code`` run in a new process integrates the base model from the default state over ``t_eval`` and prints its
    status, y[-1, 0] and whether numba was imported: ok, numba's bits, and not imported."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.split()
    reference = integrate(_numba(compiled), np.array([0.01, 0.01, 1, 1, 0, 1.0]), [1.0, 1.0, 0.0, 1.0, 0.02], t_eval)
    assert out == ["ok", repr(float(reference.y[-1, 0])), "False"]


def test_the_library_path_runs_a_short_first_integration_without_numba():
    """``compile_system`` loads an ODE module plain-Python first: a short first ``integrate`` in a new process needs
    neither numba's import nor its cache load (0.5 s of a 1.2 s warm process at (5, 5)), and gives numba's bits."""
    compiled = compile_system(symvae.derive_dynamics(model("base")))
    code = ("import sys, symvae\n"
            "from symvae.codegen import compile_system\n"
            "compiled = compile_system(symvae.derive_dynamics(symvae.make_model('base')))\n"
            "traj = symvae.integrate(compiled, [0.01, 0.01, 1, 1, 0, 1], [1.0, 1.0, 0.0, 1.0, 0.02], [0.0, 100.0])\n"
            "print(traj.status, repr(float(traj.y[-1, 0])), 'numba' in sys.modules)\n")
    _numba_free_and_exact(compiled, code, [0.0, 100.0])


def test_the_plain_python_budget_is_spent_once_per_module(monkeypatch):
    """A sweep of short runs: the plain-Python phase is one budget per module over all calls (a budget per call made
    every run of a long sweep interpreted); once spent, every run is compiled from its start. Same bits throughout."""
    compiled = compile_system(symvae.derive_dynamics(model("base")))
    y0, params, t_eval = np.array([0.01, 0.01, 1, 1, 0, 1.0]), [1.0, 1.0, 0.0, 1.0, 0.02], [0.0, 20.0]
    reference = integrate(_numba(compiled), y0, params, t_eval)
    plain = _plain_first(compiled)
    work = reference.nfev * (plain.module.rhs_size + _integrate.PLAIN_STAGE_WORK * len(y0))
    monkeypatch.setattr(_integrate, "PLAIN_WORK_BUDGET", int(2.5 * work))
    for k in range(5):
        _same_run(integrate(plain, y0, params, t_eval), reference)
        assert plain.module.is_compiled == (k >= 2), k  # runs 1, 2 plain; run 3 switches inside; then compiled
    assert plain.module.plain_work >= int(2.5 * work)


# ------------------------------------------------------------------------------------------ scheduled runs (beta(t))
SCHEDULED = BASE + ["--json", "--beta-schedule", "beta*tanh(gamma*t)", "--set", "gamma=0.05"]


def test_a_repeated_schedule_expression_is_warm_and_prints_what_the_cold_run_printed(seeded_cache):
    cold = run(seeded_cache, SCHEDULED)
    warm = run(seeded_cache, SCHEDULED)
    assert cold[0] == 0 and cold[3] is True
    assert warm[3] is False and warm[4] is False  # no SymPy, no numba
    assert warm[:3] == cold[:3]  # byte-identical output
    data = json.loads(cold[1])
    assert data["status"] == "ok" and data["t"] == [0, 1, 10, 100, 250, 300]
    # a runtime value (gamma) is not part of the entry: warm again, and the same output as a cold run with it
    other = SCHEDULED[:-1] + ["gamma=0.2"]
    warm_other = run(seeded_cache, other)
    assert warm_other[3] is False and warm_other[0] == 0 and warm_other[1] != warm[1]
    # a new expression: the cold path once, then warm; the first expression stays warm
    new = BASE + ["--json", "--beta-schedule", "1 - t/400"]
    new_cold, new_warm = run(seeded_cache, new), run(seeded_cache, new)
    assert new_cold[3] is True and new_warm[3] is False and new_warm[:3] == new_cold[:3]
    assert run(seeded_cache, SCHEDULED)[:4] == warm[:4]
    # the schedule check on the warm path: beta(t) = 1 - t/400 < 0 beyond t = 400 (a longer --t-max); the first
    # point of its grid past 400 is 402.5 (steps of 500/200)
    bad = new + ["--t-max", "500", "--t-eval", "0,500"]
    warm_bad = run(seeded_cache, bad)
    drop_warm(seeded_cache)
    cold_bad = run(seeded_cache, bad)
    assert warm_bad[3] is False and cold_bad[3] is True and warm_bad[0] == 2 and warm_bad[:3] == cold_bad[:3]
    assert "at t = 402.5 it is -0.00625" in warm_bad[2] and len(warm_bad[2].splitlines()) == 1
    # the other runtime value, cold: what the warm path printed
    assert run(seeded_cache, other)[:4] == warm_other[:3] + (True,)


@pytest.mark.slow
def test_a_warm_schedule_with_parameters_making_it_negative_is_the_cold_paths_error(seeded_cache):
    run(seeded_cache, SCHEDULED)
    bad = SCHEDULED[:-1] + ["gamma=-1"]
    warm_bad = run(seeded_cache, bad)
    drop_warm(seeded_cache)
    cold_bad = run(seeded_cache, bad)
    assert warm_bad[3] is False and cold_bad[3] is True and warm_bad[0] == 2 and warm_bad[:3] == cold_bad[:3]


def _scheduled_compiled(text):
    return compile_system(symvae.derive_dynamics(model("base", beta_schedule=text)))


def test_the_scheduled_entry_keeps_the_last_expressions_and_a_damaged_one_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setattr(_warm, "MAX_SCHEDULES", 3)
    compiled = {text: _scheduled_compiled(text) for text in ("1+t", "2+t", "beta*(1+t)", "3+t", "4+t")}
    monkeypatch.setenv("SYMVAE_CACHE", str(cache_root()))  # the modules live in the session's cache
    key = warm_key("ode", {"test": str(tmp_path)})  # an entry of this test alone
    for text, c in compiled.items():
        store_warm_schedule(key, c, text, {"y0": [0.0]})
    store_warm_schedule(key, compiled["3+t"], "3+t", {"y0": [1.0]})  # refreshed: now the most recent
    kept = {text: load_warm_schedule(key, text) for text in compiled}
    assert [t for t, hit in kept.items() if hit is not None] == ["beta*(1+t)", "3+t", "4+t"]
    assert kept["3+t"][0] == {"y0": [1.0]}
    meta = json.loads(CacheEntry(key).read_bytes("warm.json"))
    assert [item[0] for item in meta["schedules"]] == ["beta*(1+t)", "4+t", "3+t"]
    # the plain system and program are the scheduled system's (names, program code and constants)
    extra, plain = kept["beta*(1+t)"]
    ref = compiled["beta*(1+t)"]
    assert [p.name for p in plain.system.params] == [p.name for p in ref.system.params]
    assert np.array_equal(plain.program.code, ref.program.code)
    assert np.array_equal(plain.program.consts, ref.program.consts)
    assert plain.module.plain.PARAM_NAMES == tuple(p.name for p in ref.base.system.params)
    # a damaged program in the entry is a miss
    record = meta["schedules"][0][1]
    for bad in ([[99, 0]], [[0, 5], [3, 0]], [[10, 0], [3, 0]], [[2, 0]]):
        damaged = json.loads(json.dumps(meta))
        damaged["schedules"][0][1]["program"] = dict(record["program"], code=bad)
        CacheEntry(key).write_bytes("warm.json", json.dumps(damaged).encode())
        assert load_warm_schedule(key, "beta*(1+t)") is None, bad
    shutil.rmtree(CacheEntry(key).dir)


def test_a_program_through_plain_data_evaluates_as_the_original():
    index = {"gamma": 0, "beta": 1}
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 30, 50)
    p = np.stack([rng.uniform(0.01, 2.0, 50), rng.uniform(0.05, 3.0, 50)])
    for text in ("beta*tanh(gamma*t)", "Piecewise((t/10, t < 10), (beta, True))", "(1 + t)**(-gamma) + pi"):
        expr = parse_expression(text)
        program = compile_program(1, exprs=[(0, expr)], param_index=index, labels=("x",))
        data = json.loads(json.dumps(_warm._program_data(program)))
        again = program_from_data(data, 2)
        assert np.array_equal(again.evaluate(t, p), program.evaluate(t, p))
        with pytest.raises(ValueError):
            program_from_data(data, 0)  # a parameter index out of range
