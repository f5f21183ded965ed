"""Exchangeable latents whose activation is not odd: the symmetry-adapted parts of a shared signal block.

With a ReLU encoder the latents of the collapsed point keep their cross overlaps (Q_12, R_12 != 0), so their signal
overlaps form one block, and the modes of the latents against each other are one eigenvalue M - 1 times. At M = 3
that double zero did not change the block determinant's sign: the collapse went unlocated. The block's parts even
and odd under a swap of two latents (``symmetry_adapted_blocks``) carry that eigenvalue once (odd part) and once more
together with the symmetric mode (even part). Checked here against finite differences of the compiled right-hand
side, which the threshold solver does not use.
"""
import pathlib
import re

import numpy as np
import pytest

import symvae
from helpers import fd_jacobian, signal_indices
from symvae.codegen import compile_system
from symvae.derive import derive_dynamics
from symvae.numerics import integrate
from symvae.numerics._subspaces import invariant_subspace
from symvae.numerics._symmetry import symmetry_adapted_blocks
from symvae.numerics._thresholds import threshold

PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.1)
M = 3


@pytest.fixture(scope="module")
def relu3():
    return compile_system(derive_dynamics(symvae.make_model("base", M=M, M_star=1, encoder_activation="relu")))


@pytest.fixture(scope="module")
def collapsed(relu3):
    """The collapsed point at beta = 1.1."""
    return _collapsed(relu3, 1.1)


@pytest.fixture(scope="module")
def relu3_threshold(relu3):
    return threshold("collapse", relu3, PARAMS, digits=12)


def _collapsed(compiled, beta):
    """The collapsed point at ``beta``: the ODE integrated from exchangeable latents with m = m~ = 0 (the signal
    overlaps stay exactly zero: an invariant subspace)."""
    system = compiled.system
    start = system.pack(dict(m=np.zeros((M, 1)), m_tilde=np.zeros((M, 1)), Q=0.3 * np.eye(M) + 0.05,
                             Q_tilde=0.3 * np.eye(M) + 0.05, R=0.2 * np.eye(M) + 0.05, D=np.full(M, 0.8)))
    run = integrate(compiled, start, {**PARAMS, "beta": beta}, [3000.0], rtol=1e-11, atol=1e-13, throw=True)
    x = np.asarray(run.y)[-1]
    assert np.max(np.abs(compiled.rhs(0.0, x, compiled.system.param_vector({**PARAMS, "beta": beta})))) < 1e-9
    return x


def test_the_parts_hold_the_whole_spectrum_of_the_shared_block(relu3, collapsed):
    """At the collapsed point (beta = 1.1) the signal block is one block with non-zero cross overlaps; its parts even
    and odd under the swap of latents 1, 2 have together exactly its eigenvalues (finite differences, 1e-6), and the
    odd part's eigenvalues appear M - 1 = 2 times in the block's."""
    system, x = relu3.system, collapsed
    roles = {s.name: k for k, s in enumerate(system.state)}
    assert abs(x[roles["Q_12"]]) > 1e-5 and abs(x[roles["R_12"]]) > 1e-5  # coupled latents (measured -1.5e-4)
    sub = invariant_subspace(system, signal_indices(system))
    (shared,) = [b for b in sub.blocks if b.label == "signal"]
    assert shared.latent is None and sorted(shared.indices) == sorted(signal_indices(system))
    J = fd_jacobian(relu3, x, {**PARAMS, "beta": 1.1})
    parts = [b for b in symmetry_adapted_blocks(system, sub, x, J) if b.label == "signal"]
    assert [b.part for b in parts] == ["even under the swap of latents 1, 2", "odd under the swap of latents 1, 2"]
    idx = list(shared.indices)
    whole = np.sort_complex(np.linalg.eigvals(J[np.ix_(idx, idx)]))
    even, odd = (np.linalg.eigvals(b.restrict(J[np.ix_(idx, idx)]) / _norms(b)) for b in parts)
    assert len(even) + len(odd) == len(whole)
    assert np.max(np.abs(np.sort_complex(np.concatenate([even, odd])) - whole)) < 1e-6
    for lam in odd:
        assert np.sum(np.abs(whole - lam) < 1e-6) == M - 1


def _norms(block):
    """E^T E (diagonal: 2 for a pair of swapped coordinates, 1 for a fixed one): E^T J E = (E^T E) K."""
    E = np.array(block.basis, dtype=float).T
    return np.diag(E.T @ E)[:, None]


def test_a_point_no_swap_fixes_is_not_split(relu3, collapsed):
    """Three latents with different D keep their block whole; with latents 2 and 3 alike it splits under their
    swap."""
    system = relu3.system
    roles = {s.name: k for k, s in enumerate(system.state)}
    x = collapsed.copy()
    x[roles["D_1"]] += 0.1
    sub = invariant_subspace(system, signal_indices(system))
    J = fd_jacobian(relu3, x, {**PARAMS, "beta": 1.1})
    assert [b.part for b in symmetry_adapted_blocks(system, sub, x, J) if b.label == "signal"] == [
        "even under the swap of latents 2, 3", "odd under the swap of latents 2, 3"]
    x[roles["D_3"]] += 0.1
    sub = invariant_subspace(system, signal_indices(system))
    J = fd_jacobian(relu3, x, {**PARAMS, "beta": 1.1})
    assert symmetry_adapted_blocks(system, sub, x, J) == sub.blocks


@pytest.mark.parametrize("acts", [{"encoder_activation": "relu"},
                                  pytest.param({"decoder_activation": "relu"}, marks=pytest.mark.slow)],
                         ids=["relu-encoder", "relu-decoder"])
def test_the_double_mode_of_three_relu_latents_is_located_and_certified(acts, request):
    """The collapse at M = 3 of a ReLU encoder (before: an unlocated loss of stability) and of a ReLU decoder (before:
    a certified but wrong 0.588887204445, where the symmetric mode crosses, the collapsed point being unstable there
    already) is found on the odd part and certified; at the collapsed point the finite-difference signal block has
    two eigenvalues within 1e-7 of zero at beta_c, none unstable at beta_c (1 + 1e-3) and two at beta_c (1 - 1e-3).
    The ReLU decoder's case is slow (40 s); CI runs the encoder's and the decoder's refusal without the parts
    (below), which continues the same branch."""
    if "encoder_activation" in acts:
        compiled, t = request.getfixturevalue("relu3"), request.getfixturevalue("relu3_threshold")
    else:
        compiled = compile_system(derive_dynamics(symvae.make_model("base", M=M, M_star=1, **acts)))
        t = threshold("collapse", compiled, PARAMS, digits=12)
    assert t.status == "verified" and t.certified, t.message
    assert "odd under the swap of latents 1, 2" in t.special_point.block.describe()
    beta_c = float(t.value)
    sig = signal_indices(compiled.system)
    unstable = {}
    for factor in (1 - 1e-3, 1.0, 1 + 1e-3):
        x = _collapsed(compiled, beta_c * factor)
        lam = np.linalg.eigvals(fd_jacobian(compiled, x, {**PARAMS, "beta": beta_c * factor})[np.ix_(sig, sig)])
        if factor == 1.0:
            assert np.sum(np.abs(lam) < 1e-7) == 2, lam
        unstable[factor] = int(np.sum(lam.real > 1e-9))
    assert unstable[1 + 1e-3] == 0 and unstable[1 - 1e-3] == 2, unstable
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"β_c = {t.text} at M = 3" in readme  # the value the README states is the engine's


def test_without_the_parts_the_unseen_double_crossing_is_reported_not_a_lower_branch_point(monkeypatch):
    """The ReLU decoder at M = 3 with the whole block's determinant as the only test function (the parts switched
    off): the double crossing at 1.451 goes unseen and a simple one is located at 0.589, where the collapsed point is
    already unstable; that point is not returned as the threshold: the failure says where stability was lost."""
    import symvae.numerics._continuation as continuation
    monkeypatch.setattr(continuation, "symmetry_adapted_blocks", lambda system, subspace, x, J: subspace.blocks)
    compiled = compile_system(derive_dynamics(symvae.make_model("base", M=M, M_star=1, decoder_activation="relu")))
    t = threshold("collapse", compiled, PARAMS, digits=12)
    assert t.value is None and t.status != "verified", t.message
    lo, hi = (float(v) for v in re.search(r"between beta = ([0-9.]+) and ([0-9.]+)", t.message).groups())
    assert lo < 1.4512 < hi and "in pairs" in t.message, t.message
