"""Non-linear VAEs (issue 11): model definition, derivation, and agreement with finite-N simulation."""
import numpy as np
import pytest
import sympy as sp

import symvae
from symvae.derive import derive_dynamics
from symvae.errors import DerivationError, InvalidInputError


def test_default_activation_keeps_linear_description():
    """Linear models keep their description (hence cache key and derivations); a non-default activation enters it."""
    base = symvae.make_model("base", M=2)
    assert not any("activation" in k for k in base.describe())
    erf = symvae.make_model("base", M=2, decoder_activation="erf")
    assert erf.describe()["LinearVAE.decoder_activation"] == "'erf'"
    assert erf.key != base.key
    assert symvae.make_model("base", M=2, decoder_activation="linear").key == base.key


@pytest.mark.parametrize("bad", ["", "y*x", "foo(x)", "x +", 3, "t*x"])
def test_bad_activation_is_invalid_input(bad):
    with pytest.raises(InvalidInputError):
        symvae.make_model("base", encoder_activation=bad)


@pytest.mark.parametrize("M", [1, 2])
def test_identity_activation_matches_linear_model_at_first_order(M):
    """With g(x) = x written as an expression the model samples eps: its O(tau) drift equals the linear model's (whose
    loss averages eps analytically, derivation checked against the hand derivation), and the O(tau^2) terms differ
    by the eps-noise only: for dQ_kk/dt the extra tau^2 eta E[(sqrt(D_k) eps_k)^2] = tau^2 eta D_k."""
    lin = derive_dynamics(symvae.make_model("base", M=M), cache=False)
    ident = derive_dynamics(symvae.make_model("base", M=M, encoder_activation="x", decoder_activation="x"),
                            cache=False)
    tau, eta = sp.Symbol("tau", real=True), sp.Symbol("eta", real=True)
    assert lin.state == ident.state
    for s, a, b in zip(lin.state, lin.rhs, ident.rhs):
        diff = sp.expand(b - a)
        assert diff.coeff(tau, 1) == 0, s
        assert sp.expand(diff - tau ** 2 * diff.coeff(tau, 2)) == 0, s
        if s.name.startswith("Q_") and s.name[2] == s.name[3]:
            k = int(s.name[2]) - 1
            assert sp.expand(diff - tau ** 2 * eta * lin.table.D[k]) == 0


@pytest.mark.parametrize("enc, dec", [("relu", "linear"), ("erf", "erf"), ("tanh(x)", "linear")])
def test_no_closed_form_is_a_derivation_error(enc, dec):
    with pytest.raises(DerivationError):
        derive_dynamics(symvae.make_model("base", encoder_activation=enc, decoder_activation=dec), cache=False)


def test_user_erf_expression_is_the_named_erf_rescaled():
    """'erf(x/sqrt(2))' typed by a user derives the same system as the named activation erf."""
    a = derive_dynamics(symvae.make_model("base", decoder_activation="erf"), cache=False)
    b = derive_dynamics(symvae.make_model("base", decoder_activation="erf(x/sqrt(2))"), cache=False)
    rng = np.random.default_rng(0)
    subs = {s: rng.uniform(0.2, 1.0) for e in a.rhs for s in e.free_symbols}
    for ea, eb in zip(a.rhs, b.rhs):
        assert abs(float(ea.subs(subs)) - float(eb.subs(subs))) < 1e-12
