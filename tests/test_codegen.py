"""Generated code: numba vs numpy vs mpmath, symbolic Jacobians vs finite differences, the on-disk cache."""
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symvae
from symvae._cache import content_key
from symvae.codegen import CacheEntry, compile_system, generator_fingerprint, system_key

from helpers import model, random_params, random_state

SYSTEMS = [("base", 1, 1), ("base", 2, 1), ("tied", 2, 1), ("learned_sigma2", 1, 1), ("annealing", 1, 1)]


@pytest.fixture(scope="module", params=SYSTEMS, ids=lambda v: f"{v[0]}-{v[1]}{v[2]}")
def compiled(request):
    variant, M, Ms = request.param
    return compile_system(symvae.derive_dynamics(model(variant, M=M, M_star=Ms)))


@given(seed=st.integers(0, 2 ** 32 - 1), t=st.floats(0, 100))
def test_backends_agree(compiled, seed, t):
    rng = np.random.default_rng(seed)
    system = compiled.system
    y, _ = random_state(system, rng)
    p = system.param_vector(random_params(system, rng))
    f_numba = compiled.rhs(t, y, p)
    f_numpy = compiled.rhs_numpy(t, y, p)
    with mpmath.workdps(50):
        f_mp = np.array([float(v) for v in compiled.rhs_mp(t, y, p)])
    scale = 1 + np.abs(f_mp)
    assert np.all(np.abs(f_numba - f_mp) <= 1e-12 * scale)
    assert np.all(np.abs(f_numpy - f_mp) <= 1e-12 * scale)


def test_numpy_backend_is_vectorised(compiled):
    rng = np.random.default_rng(1)
    system = compiled.system
    ys = np.stack([random_state(system, rng)[0] for _ in range(5)], axis=1)
    p = system.param_vector(random_params(system, rng))
    batch = compiled.rhs_numpy(0.5, ys, p[:, None])
    for k in range(5):
        assert np.allclose(batch[:, k], compiled.rhs(0.5, ys[:, k], p), rtol=1e-13, atol=1e-15)


@given(seed=st.integers(0, 2 ** 32 - 1))
def test_jacobians_match_finite_differences(compiled, seed):
    """dF/dy and dF/dp against central differences evaluated in mpmath at 40 digits (step 1e-15)."""
    rng = np.random.default_rng(seed)
    system = compiled.system
    y, _ = random_state(system, rng)
    p = system.param_vector(random_params(system, rng))
    J = compiled.jac(3.0, y, p)
    dP = compiled.dparams(3.0, y, p)
    h = mpmath.mpf("1e-15")
    with mpmath.workdps(40):
        for j in range(len(y)):
            yp = [mpmath.mpf(v) for v in y]
            ym = list(yp)
            yp[j] += h
            ym[j] -= h
            col = (compiled.rhs_mp(3, yp, p) - compiled.rhs_mp(3, ym, p)) / (2 * h)
            assert np.allclose(J[:, j], [float(v) for v in col], rtol=1e-10, atol=1e-12)
        for k in range(len(p)):
            pp = [mpmath.mpf(v) for v in p]
            pm = list(pp)
            pp[k] += h
            pm[k] -= h
            col = (compiled.rhs_mp(3, y, pp) - compiled.rhs_mp(3, y, pm)) / (2 * h)
            assert np.allclose(dP[:, k], [float(v) for v in col], rtol=1e-10, atol=1e-12)


def test_jacobian_check_detects_a_wrong_entry(compiled):
    """Negative control for the comparison above: a perturbed Jacobian entry is outside the tolerance."""
    rng = np.random.default_rng(2)
    system = compiled.system
    y, _ = random_state(system, rng)
    p = system.param_vector(random_params(system, rng))
    J = compiled.jac(0.0, y, p)
    eps = 1e-7
    fd = np.column_stack([(compiled.rhs(0, y + eps * e, p) - compiled.rhs(0, y - eps * e, p)) / (2 * eps)
                          for e in np.eye(len(y))])
    assert np.allclose(J, fd, rtol=1e-5, atol=1e-7)
    J[0, 0] += 1e-3
    assert not np.allclose(J, fd, rtol=1e-5, atol=1e-7)


def test_observables_closed_forms():
    """eg for M = M* = 1 is rho - 2 sqrt(rho)|m| + Q; the collapsed VAE has distortion rho M*/2."""
    compiled = compile_system(symvae.derive_dynamics(model(M=2, M_star=2)))
    system = compiled.system
    p = system.param_vector(dict(beta=1.0, eta=0.7, lam=0.0, rho=1.3, tau=0.1))
    zero = {"m": np.zeros((2, 2)), "m_tilde": np.zeros((2, 2)), "Q": np.zeros((2, 2)), "Q_tilde": np.zeros((2, 2)),
            "R": np.zeros((2, 2)), "D": np.ones(2)}
    obs = compiled.observables(0, system.pack(zero), p)
    assert obs["distortion"] == pytest.approx(1.3 * 2 / 2)
    assert obs["rate"] == pytest.approx(0.0)
    assert obs["eg"] == pytest.approx(2 * 1.3)
    # the best signed permutation: latent 2 carries spike 1 with a negative sign
    st_ = dict(zero, m=np.array([[0.0, 0.5], [-0.9, 0.0]]), Q=np.diag([0.3, 0.8]))
    obs = compiled.observables(0, system.pack(st_), p)
    expected = 2 * 1.3 + 1.1 - 2 * np.sqrt(1.3) * (0.9 + 0.5)
    assert obs["eg"] == pytest.approx(expected)


def test_generated_module_is_a_real_file_with_cse(compiled):
    text = compiled.path.read_text()
    assert compiled.path.exists() and '@njit(cache=True, error_model="numpy")' in text
    assert "_c0" in text  # common subexpressions were eliminated
    # the entry is named by the system's content hash and the generator's own fingerprint (a system with a beta(t)
    # schedule runs the module of its base system, the schedule being a runtime program)
    system = compiled.system.base or compiled.system
    assert compiled.path.parent.name == content_key("module", system_key(system), generator_fingerprint())


def test_cache_entry_detects_corruption(tmp_path):
    entry = CacheEntry("k", root=tmp_path)
    entry.write_bytes("a.txt", b"hello")
    assert entry.read_bytes("a.txt") == b"hello"
    (tmp_path / "k" / "a.txt").write_bytes(b"hellO")
    assert entry.read_bytes("a.txt") is None
    (tmp_path / "k" / "manifest.json").write_text("{not json")
    assert entry.read_bytes("a.txt") is None


_CHILD = """
import sys, time, symvae
from symvae.codegen import compile_system
c = compile_system(symvae.derive_dynamics(symvae.make_model(M=1, M_star=1)))
print(c.path.stat().st_mtime_ns)
"""


def test_second_process_reuses_and_corrupt_entry_is_rebuilt(tmp_path):
    env = dict(os.environ, SYMVAE_CACHE=str(tmp_path))
    run = lambda: subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,  # noqa
                                 check=True).stdout.split()[-1]
    first = run()
    assert run() == first  # reused, not rewritten
    gen = next(tmp_path.glob("*/generated.py"))
    gen.write_text("this is not python")
    third = run()
    assert third != first and "def rhs_into" in gen.read_text()
