"""Large straight-line kernels compiled through ``symvae.codegen._llvm`` (one numba intrinsic emitting the LLVM IR
directly) against the same source compiled by numba's own pipeline: the results must be identical to the last bit,
on random inputs and where IEEE arithmetic gives inf and nan (division by zero, overflow). A kernel with anything the
lowering does not take (a call) goes to numba unchanged.
"""
import importlib.util
import random
import sys

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from symvae.codegen import _llvm  # noqa: E402


def _expr(rng: random.Random, names: list[str], depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        choice = rng.random()
        if choice < 0.6:
            return rng.choice(names)
        if choice < 0.8:
            return str(rng.randint(1, 9))  # an integer constant (converted to double where numba converts it)
        return repr(rng.choice([0.5, 1.25, -3.0, 1e-300, 7.3e5]))
    kind = rng.random()
    a, b = _expr(rng, names, depth - 1), _expr(rng, names, depth - 1)
    if kind < 0.08:
        return f"({a} + {rng.choice(names)})**{rng.choice([2, 3, 5, 7, 12])}"  # a float base
    if kind < 0.14:
        return f"-({a})"
    if kind < 0.18:
        return f"{rng.randint(1, 9)}/{rng.randint(1, 9)}*({a})"  # int / int, then a float product
    op = rng.choice(["+", "-", "*", "*", "/"])
    return f"({a}) {op} ({b})"


def _kernel_source(seed: int, n_state: int = 6, n_param: int = 3, n_temp: int = 260, two_d: bool = False) -> str:
    rng = random.Random(seed)
    lines = ["import math  # noqa: F401", "from symvae.codegen._jit import njit_for", "njit = njit_for(__name__)", "",
             "", '@njit(cache=True, error_model="numpy")', "def rhs_into(t, y, p, out):"]
    names = ["t"]
    for i in range(n_state):
        lines.append(f"    x_{i} = y[{i}]")
        names.append(f"x_{i}")
    for i in range(n_param):
        lines.append(f"    q_{i} = p[{i}]")
        names.append(f"q_{i}")
    lines.append("    out[:, :] = 0.0" if two_d else "    out[:] = 0.0")
    for k in range(n_temp):
        lines.append(f"    _c{k} = {_expr(rng, names, 3)}")
        names.append(f"_c{k}")
    for i in range(n_state):
        if i == 2:
            continue  # an entry left at the zero fill
        target = f"out[{i // 2}, {i % 2}]" if two_d else f"out[{i}]"
        lines.append(f"    {target} = {_expr(rng, names[-40:], 2)} + y[{i}]*p[0]")
    lines.append("    return out")
    return "\n".join(lines) + "\n"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _both(tmp_path, source, tag):
    """The kernel compiled through the intrinsic (the generated-module path) and by numba directly."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "kern.py").write_text(source)
    (tmp_path / "b" / "kern.py").write_text(source.replace("njit = njit_for(__name__)", "from numba import njit"))
    fast = _load(tmp_path / "a" / "kern.py", f"lowered_fast_{tag}")
    plain = _load(tmp_path / "b" / "kern.py", f"lowered_numba_{tag}")
    return fast, plain


@pytest.mark.parametrize("seed, two_d", [(1, False), (2, True)])
def test_intrinsic_kernel_is_bit_identical_to_numba(tmp_path, seed, two_d):
    source = _kernel_source(seed, two_d=two_d)
    fast, plain = _both(tmp_path, source, f"{seed}")
    assert "_symvae_rhs_into_kernel" in vars(fast)  # compiled through the intrinsic
    assert "_symvae_rhs_into_kernel" not in vars(plain)
    rng = np.random.default_rng(seed)
    shape = (3, 2) if two_d else (6,)
    inputs = [(rng.normal(size=6) * scale, rng.normal(size=3), float(rng.normal())) for scale in (1e-3, 1.0, 50.0)]
    inputs.append((np.zeros(6), np.zeros(3), 0.0))  # divisions by zero: inf and nan under the numpy error model
    inputs.append((np.full(6, 1e200), np.full(3, -1e200), 1e300))  # overflow
    for y, p, t in inputs:
        a = np.full(shape, 7.0)
        b = np.full(shape, 7.0)
        fast.rhs_into(t, y, p, a)
        plain.rhs_into(t, y, p, b)
        assert a.tobytes() == b.tobytes(), (y, p, t)
        assert a.flat[2] == 0.0  # the zero fill
    # a strided (non-contiguous) state vector reads the same elements
    y = np.arange(12.0)[::2] / 7
    a, b = np.empty(shape), np.empty(shape)
    fast.rhs_into(0.25, y, np.ones(3), a)
    plain.rhs_into(0.25, np.ascontiguousarray(y), np.ones(3), b)
    assert a.tobytes() == b.tobytes()


def test_kernel_with_a_call_goes_to_numba(tmp_path):
    source = _kernel_source(3).replace("    _c5 = ", "    _c5 = math.exp(x_1) + ", 1)
    fast, plain = _both(tmp_path, source, "call")
    assert "_symvae_rhs_into_kernel" not in vars(fast)
    y, p = np.linspace(0.1, 0.6, 6), np.array([0.3, -0.2, 1.1])
    a, b = np.empty(6), np.empty(6)
    fast.rhs_into(0.5, y, p, a)
    plain.rhs_into(0.5, y, p, b)
    assert a.tobytes() == b.tobytes()


def test_line_filter():
    ok = ["    _c1 = x**2", "    _c1 = 2*(x + 1)", "    out[3] = -x*1.0e-5", "    out[:] = 0.0", "    out[1, 2] = x/3"]
    bad = ["    _c1 = math.exp(x)", "    _c1 = x**2.5", "    _c1 = x**(1/2)", "    _c1 = x**y", "    _c1 = x**-2",
           "    _c1 = x**120", "    _c1 = f(x)", "    _c1 = x if y else z"]
    for line in ok:
        assert _llvm._LINE.match(line) and not _llvm._REJECT.search(line), line
    for line in bad:
        assert not _llvm._LINE.match(line) or _llvm._REJECT.search(line), line


def test_plain_code_takes_a_long_sum():
    """The plain-Python rewrite (``_jit.plain_code``) of a kernel with a sum of thousands of terms, as the generated
    right-hand side has at (M, M*) = (5, 5): the recursive visit used to exceed Python's recursion limit."""
    from symvae.codegen._jit import numba_power, plain_code

    n = 3000
    source = ("def njit(f):\n    return f\n\n\n@njit\ndef k(y):\n    return " +
              " + ".join(f"y[{i % 7}]*{i}**2" for i in range(n)) + "\n")
    namespace = {"_numba_power": numba_power}
    exec(plain_code(source, "<long sum>"), namespace)  # noqa: S102 - a test's own text
    y = np.linspace(0.5, 2.0, 7)
    expected = 0.0
    for i in range(n):  # the same left-to-right order of the same products
        expected = expected + y[i % 7] * float(i * i) if i else y[0] * 0.0
    assert namespace["k"](y) == expected
