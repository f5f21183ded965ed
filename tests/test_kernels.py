"""Compiled kernels: resumable pieces (interrupts), self-healing numba cache, extreme inputs, hash-once keys, naming."""
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import symvae
import symvae.simulate._simulate as simulate_module
from symvae._cache import content_key
from symvae.codegen import compile_system, discard_corrupt_numba_cache
from symvae.derive._system import derivation_key
from symvae.report import render
from symvae.simulate import simulate

from helpers import BASE_PARAMS, model

ROOT = pathlib.Path(__file__).resolve().parents[1]
INIT = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}


# ------------------------------------------------------------------ simulator pieces
def _run(monkeypatch, first_piece, piece_seconds, parallel, variant="base", seeds=3):
    monkeypatch.setattr(simulate_module, "_first_piece", lambda K, N, b: first_piece)
    monkeypatch.setattr(simulate_module, "PIECE_SECONDS", piece_seconds)
    return simulate(model(variant), dict(BASE_PARAMS, tau=0.2), INIT, [0, 0.5, 2, 3], N=60, seeds=seeds,
                    parallel=parallel, check_every=7)


@pytest.mark.parametrize("variant", ["base"])
def test_simulation_in_pieces_is_bit_identical(monkeypatch, variant):
    """One uninterrupted kernel call vs one call per SGD step (RNG state, vectors and scalars carried across calls),
    on one thread and on two: the same numbers, bit for bit."""
    whole = _run(monkeypatch, 10 ** 12, 1e9, False, variant)
    for parallel in (False, True):
        pieces = _run(monkeypatch, 1, 1e-12, parallel, variant)
        assert whole.ok and pieces.ok
        for name, value in whole.per_seed.items():
            assert np.array_equal(value, pieces.per_seed[name]), name
        assert np.array_equal(whole.seed_t_stop, pieces.seed_t_stop)
    assert not np.array_equal(whole.per_seed["m"][0], whole.per_seed["m"][1])  # the seeds differ


def test_divergence_found_in_pieces_at_the_same_step(monkeypatch):
    def run(first, secs):
        monkeypatch.setattr(simulate_module, "_first_piece", lambda K, N, b: first)
        monkeypatch.setattr(simulate_module, "PIECE_SECONDS", secs)
        return simulate(model(), dict(BASE_PARAMS, tau=5.0), INIT, [0, 5], N=60, seeds=2, check_every=3)

    whole, pieces = run(10 ** 12, 1e9), run(1, 1e-12)
    assert whole.status == pieces.status == "diverged"
    assert np.array_equal(whole.seed_t_stop, pieces.seed_t_stop)
    assert whole.message == pieces.message


def test_interrupt_is_honoured_between_pieces(monkeypatch):
    """A KeyboardInterrupt raised while the compiled work is under way stops the run after the current piece."""
    calls = []
    real = simulate_module._run_in_pieces

    class Interrupting:
        def __init__(self, module):
            self.module = module
            self.STATUS_RUNNING = module.STATUS_RUNNING

        def run_seeds(self, *args):
            calls.append(args[-1])
            self.module.run_seeds(*args)
            if len(calls) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(simulate_module, "_run_in_pieces",
                        lambda module, args, workers, first_piece: real(Interrupting(module), args, 1, first_piece=5))
    monkeypatch.setattr(simulate_module, "PIECE_SECONDS", 1e-12)
    with pytest.raises(KeyboardInterrupt):
        simulate(model(), BASE_PARAMS, INIT, [0, 100], N=60, seeds=2)
    assert len(calls) == 3 and calls[-1] < 100 * 60  # stopped long before the end


# ------------------------------------------------------------------ compiled integrator
def test_integration_in_pieces_is_bit_identical(monkeypatch):
    """One accepted step per compiled call vs one call for everything: the same steps, states and counts."""
    import symvae.numerics._integrate as integrate_module

    system = symvae.derive_dynamics(model("annealing"))
    params = dict(BASE_PARAMS, tau=0.1, gamma=0.05)
    whole = symvae.integrate(system, INIT, params, [0, 3, 40, 200])
    monkeypatch.setattr(integrate_module, "FIRST_PIECE", 1)
    monkeypatch.setattr(integrate_module, "PIECE_SECONDS", 1e-12)
    pieces = symvae.integrate(system, INIT, params, [0, 3, 40, 200])
    assert whole.ok and pieces.ok and whole.n_accepted > 20
    assert np.array_equal(whole.t_steps, pieces.t_steps) and np.array_equal(whole.y_steps, pieces.y_steps)
    assert np.array_equal(whole.y, pieces.y)
    assert (whole.nfev, whole.n_accepted, whole.n_rejected) == (pieces.nfev, pieces.n_accepted, pieces.n_rejected)
    # a budget of accepted steps still ends as "failed" at the same place, whatever the pieces
    short = symvae.integrate(system, INIT, params, [0, 200], max_steps=7)
    assert short.status == "failed" and short.n_accepted == 7 and len(short.t_steps) == 8


@pytest.mark.parametrize("rho", [1e200, 1e308])
def test_extreme_parameters_give_a_status_not_an_exception(rho):
    system = symvae.derive_dynamics(model())
    traj = symvae.integrate(system, INIT, dict(BASE_PARAMS, rho=rho), [0, 10])
    assert traj.status in ("diverged", "failed")
    assert "t = 0" in traj.message and traj.t_stop == 0.0
    assert np.all(np.isfinite(traj.y))


def test_dop853_tableau_is_scipys():
    import scipy.integrate as si

    module = compile_system(symvae.derive_dynamics(model())).module
    D = si.DOP853
    for ours, theirs in ((module._A, D.A[:12, :12]), (module._B, D.B), (module._C, D.C[:12]), (module._E3, D.E3),
                         (module._E5, D.E5)):
        assert np.array_equal(ours, theirs)
    assert "import scipy" not in compile_system(symvae.derive_dynamics(model())).path.read_text()


def test_system_is_hashed_once(monkeypatch):
    """integrate(derived system) finds its compiled module by a key computed once and kept (pickled) with it."""
    system = symvae.derive_dynamics(model())
    assert "key" in vars(system)  # stored by the derivation cache
    assert system.key == content_key("system", sp.srepr((system.kind, system.state, system.rhs, system.params,
                                                         tuple(sorted(system.observables.items())))))

    def forbidden(*args, **kwargs):
        raise AssertionError("the system was re-serialised")

    monkeypatch.setattr(sp, "srepr", forbidden)
    a = symvae.integrate(system, INIT, BASE_PARAMS, [0, 5])
    b = symvae.integrate(compile_system(system), INIT, BASE_PARAMS, [0, 5])
    assert np.array_equal(a.y, b.y)


# ------------------------------------------------------------------ corrupt numba cache
_SCRIPT = """
import json, symvae
compiled = symvae.compile_system(symvae.derive_dynamics(symvae.make_model("base")))
print(json.dumps(compiled.rhs(0.5, [0.1, 0.2, 1.1, 0.9, 0.05, 1.2], [1.0, 0.8, 0.1, 1.3, 0.02]).tolist()))
"""


def test_corrupt_numba_cache_is_discarded_and_rebuilt(tmp_path):
    compiled = compile_system(symvae.derive_dynamics(model()))
    assert [s.name for s in compiled.system.params] == ["beta", "eta", "lam", "rho", "tau"]
    expected = compiled.rhs(0.5, [0.1, 0.2, 1.1, 0.9, 0.05, 1.2], [1.0, 0.8, 0.1, 1.3, 0.02])  # numba caches rhs
    # a private copy of this module's cache entry (generated file, manifest, numba's files), then corrupt numba's files
    entry = tmp_path / compiled.path.parent.name
    shutil.copytree(compiled.path.parent, entry)
    derivation = derivation_key("dynamics", compiled.system.model)
    shutil.copytree(compiled.path.parent.parent / derivation, tmp_path / derivation)
    corrupted = [f for f in (entry / "__pycache__").iterdir() if f.suffix in (".nbi", ".nbc")]
    assert any(".rhs-" in f.name and f.suffix == ".nbc" for f in corrupted)
    for f in corrupted:
        f.write_bytes(b"\x80\x05not a pickle" + f.read_bytes()[:40][::-1])
    env = dict(os.environ, SYMVAE_CACHE=str(tmp_path), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert np.array_equal(np.array(json.loads(run.stdout)), expected)
    # numba wrote fresh files, and they are readable: nothing left to discard
    assert any(".rhs-" in f.name for f in (entry / "__pycache__").iterdir())
    assert not discard_corrupt_numba_cache(entry)


# ------------------------------------------------------------------ one naming in every format
def test_tied_model_uses_one_naming_in_every_format():
    system = symvae.derive_dynamics(model("tied"))
    names = [s.name for s in system.state]
    assert names == ["m_11", "Q_11", "D_1"]
    as_json = json.loads(render(system, "json"))
    assert list(as_json["equations"]) == names
    python = render(system, "python")
    for text in (render(system, "markdown"), render(system, "latex"), *as_json["latex"].values()):
        equations = text.split("## Equations")[-1]
        assert r"\tilde{m}" not in equations and "R_{" not in equations and r"\tilde{Q}" not in equations
    assert r"\frac{dm_{11}}{dt}" in render(system, "latex") and r"\frac{dQ_{11}}{dt}" in render(system, "latex")
    assert "m_tilde" not in python and "R_11" not in python


# ------------------------------------------------------------------ build-time pieces
def test_matching_max_stays_unevaluated_and_prints_as_max():
    from sympy.printing.numpy import NumPyPrinter
    from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

    from symvae.derive._dynamics import MatchingMax
    from symvae.model import SymbolTable

    T = SymbolTable(model(M=3, M_star=2))
    eg = symvae.derive.observables(T)["eg"]
    (best,) = [a for a in sp.Mul.make_args(next(t for t in sp.Add.make_args(eg) if t.has(MatchingMax)))
               if isinstance(a, MatchingMax)]
    assert len(best.args) == 6  # 3!/1! matchings, none dropped or compared symbolically
    rng = np.random.default_rng(3)
    m = rng.normal(size=(3, 2))
    values = {T.m[i, k]: m[i, k] for i in range(3) for k in range(2)} | {T.rho[0]: 1.7}
    brute = max(np.sqrt(1.7) * (abs(m[p[0], 0]) + abs(m[p[1], 1])) for p in itertools.permutations(range(3), 2))
    assert float(best.subs(values)) == pytest.approx(brute, rel=1e-14)
    assert pickle_roundtrip(best) == best
    for printer in (PythonCodePrinter(), MpmathPrinter()):
        assert printer.doprint(best).startswith("max(")
    assert NumPyPrinter().doprint(best).startswith("functools.reduce(numpy.maximum")
    assert sp.latex(best).startswith(r"\max") and sp.sstr(best).startswith("Max(")


def pickle_roundtrip(obj):
    import pickle

    return pickle.loads(pickle.dumps(obj))


def test_spectral_derivation_is_cached_on_disk():
    from symvae.derive import derive_spectral
    from symvae.derive._system import _MEMO

    m = model()
    first = derive_spectral(m)
    _MEMO.pop(derivation_key("spectral", m))  # the next call reads the pickle
    again = derive_spectral(m)
    fresh = derive_spectral(m, cache=False)
    assert again is not first and again.params == fresh.params and again.constant == fresh.constant
    assert [lp.stationarity for lp in again.latents] == [lp.stationarity for lp in fresh.latents]


def _fresh_python(code: str) -> str:
    """stdout of ``code`` run by a new interpreter on this checkout (which must exit 0)."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_import_symvae_does_not_import_sympy_numba_or_scipy():
    code = ("import sys, symvae; heavy = [m for m in ('sympy', 'numba', 'scipy') if m in sys.modules]; "
            "print(heavy); assert symvae.make_model('base').M == 1 and 'sympy' in sys.modules")
    assert _fresh_python(code).strip() == "[]"


def test_subpackages_are_reachable_as_attributes_after_a_bare_import():
    code = ("import symvae; t = symvae.model.SymbolTable(symvae.make_model('tied')); "
            "print(symvae.numerics.integrate is symvae.integrate, t.tied)")
    assert _fresh_python(code).split() == ["True", "True"]
