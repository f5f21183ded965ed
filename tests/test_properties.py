"""Property tests of the derived right-hand sides: finiteness, symmetries, input validation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symvae
from symvae.codegen import compile_system
from symvae.errors import InvalidInputError
from symvae.model import validate_state

from helpers import model, random_params, random_state

SYSTEMS = [("base", 2, 1), ("base", 2, 2), ("tied", 2, 1), ("learned_sigma2", 2, 1), ("minibatch", 3, 1)]


@pytest.fixture(scope="module", params=SYSTEMS, ids=lambda v: f"{v[0]}-{v[1]}{v[2]}")
def compiled(request):
    variant, M, Ms = request.param
    return compile_system(symvae.derive_dynamics(model(variant, M=M, M_star=Ms)))


def _transform(named, perm=None, flip=None):
    """Order parameters after permuting latents and flipping the sign of (W_i, W~_i) for i in flip."""
    M = named["Q"].shape[0]
    P = np.eye(M)[perm] if perm is not None else np.eye(M)
    S = np.diag([-1.0 if (flip is not None and i in flip) else 1.0 for i in range(M)])
    A = S @ P
    out = dict(named)
    out["m"] = A @ named["m"]
    out["m_tilde"] = A @ named["m_tilde"]
    for k in ("Q", "Q_tilde", "R"):
        out[k] = A @ named[k] @ A.T
    out["D"] = P @ named["D"]
    return out


def _named(system, y):
    return {k: np.asarray(v, dtype=float) for k, v in system.unpack(y).items()}


@given(seed=st.integers(0, 2 ** 32 - 1))
def test_rhs_finite_at_admissible_points(compiled, seed):
    rng = np.random.default_rng(seed)
    y, _ = random_state(compiled.system, rng, scale=rng.uniform(0.1, 3))
    p = compiled.system.param_vector(random_params(compiled.system, rng))
    assert np.all(np.isfinite(compiled.rhs(rng.uniform(0, 10), y, p)))


@given(seed=st.integers(0, 2 ** 32 - 1), data=st.data())
def test_rhs_equivariant_under_sign_flips_and_permutations(compiled, seed, data):
    system = compiled.system
    rng = np.random.default_rng(seed)
    y, _ = random_state(system, rng)
    p = system.param_vector(random_params(system, rng))
    M = system.table.M
    perm = data.draw(st.permutations(range(M)))
    flip = data.draw(st.sets(st.integers(0, M - 1)))
    named = _named(system, y)
    if "sigma2" in named:
        named["sigma2"] = float(named["sigma2"])
    moved = _transform(named, perm=list(perm), flip=flip)
    F = _named(system, compiled.rhs(0.0, y, p))
    F_moved = _named(system, compiled.rhs(0.0, system.pack(moved), p))
    expected = _transform(F, perm=list(perm), flip=flip)
    for key in system.blocks:
        assert np.allclose(F_moved[key], expected[key], rtol=1e-11, atol=1e-12), key


def test_equivariance_check_is_sensitive():
    """Negative control: a transformation that is not a symmetry (scaling W alone) changes the RHS."""
    compiled = compile_system(symvae.derive_dynamics(model(M=2)))
    system = compiled.system
    rng = np.random.default_rng(3)
    y, _ = random_state(system, rng)
    p = system.param_vector(random_params(system, rng))
    named = _named(system, y)
    named["m"] = 1.1 * named["m"]
    assert not np.allclose(compiled.rhs(0, system.pack(named), p), compiled.rhs(0, y, p))


@given(seed=st.integers(0, 2 ** 32 - 1))
def test_non_psd_states_rejected(seed):
    rng = np.random.default_rng(seed)
    system = symvae.derive_dynamics(model(M=2))
    _, named = random_state(system, rng)
    bad = dict(named)
    bad["m"] = named["m"] + 10 * np.sqrt(np.diag(named["Q"]))[:, None] + 10  # |m| > sqrt(Q): impossible overlaps
    with pytest.raises(InvalidInputError, match="positive semi-definite"):
        validate_state(system.table, bad)
    validate_state(system.table, {k: v for k, v in named.items() if k != "sigma2"})


def test_invalid_states_and_parameters_raise_clear_errors():
    system = symvae.derive_dynamics(model())
    T = system.table
    good = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [1]}
    for bad, msg in [({**good, "D": [0]}, "D must be > 0"), ({**good, "D": [-1]}, "D must be > 0"),
                     ({**good, "m": [[0.1, 0.2]]}, "shape"), ({**good, "Q": [[float("nan")]]}, "non-finite"),
                     ({k: v for k, v in good.items() if k != "R"}, "lacks 'R'"), ({**good, "x": 1}, "unknown key")]:
        with pytest.raises(InvalidInputError, match=msg):
            validate_state(T, bad)
    with pytest.raises(InvalidInputError, match="missing parameter"):
        system.param_vector({"beta": 1.0})
    with pytest.raises(InvalidInputError, match="symmetric"):
        validate_state(symvae.derive_dynamics(model(M=2)).table,
                       {"m": [[0], [0]], "m_tilde": [[0], [0]], "Q": [[1, 0.1], [0.2, 1]], "Q_tilde": np.eye(2),
                        "R": np.zeros((2, 2)), "D": [1, 1]})
