"""The derivation engine: exact identities against the hand derivation and between model definitions."""
import itertools

import numpy as np
import pytest
import sympy as sp

import symvae
from symvae.derive import gaussian_expectation
from symvae.derive._dynamics import _leading_order
from symvae.errors import DerivationError, InvalidInputError
from symvae.model import N as N_sym

from hand_derivation import hand_rhs
from helpers import model


def _hand_equations(system):
    T = system.table
    ref = hand_rhs(T)
    out = {}
    for name, symbols in system.blocks.items():
        template = T.matrices()[name]
        for sym in symbols:
            if name == "D":
                out[sym] = ref["D"][T.D.index(sym)]
            else:
                i, j = next((i, j) for i in range(template.shape[0]) for j in range(template.shape[1])
                            if template[i, j] == sym)
                out[sym] = ref[name][i, j]
    return out


@pytest.mark.parametrize("M,M_star", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_base_model_equals_hand_derivation(M, M_star):
    system = symvae.derive_dynamics(model(M=M, M_star=M_star), cache=False)
    hand = _hand_equations(system)
    assert set(hand) == set(system.state)
    for sym, rhs in system.equations().items():
        assert sp.expand(rhs - hand[sym]) == 0, f"d{sym}/dt differs from docs/model.md"


def test_hand_comparison_can_fail():
    """Negative control: dropping the tau^2 terms of one equation is detected."""
    system = symvae.derive_dynamics(model())
    hand = _hand_equations(system)
    tau = sp.Symbol("tau", real=True)
    Q = system.table.Q[0, 0]
    truncated = sp.expand(hand[Q]).subs(tau ** 2, 0)
    assert sp.expand(system.equations()[Q] - truncated) != 0


def _substituted(system, subs):
    return {s: sp.expand(e.subs(subs)) for s, e in system.equations().items()}


def test_variants_reduce_to_base_when_their_extra_parameters_take_base_values():
    base = symvae.derive_dynamics(model(M=2)).equations()
    sym = lambda n: sp.Symbol(n, real=True)  # noqa: E731
    tau = sym("tau")
    cases = {
        "minibatch": {sym("b"): 1},
        "step_sizes": {sym("tau_W"): tau, sym("tau_W_tilde"): tau, sym("tau_D"): tau},
        "per_spike_rho": {sym("rho_1"): sym("rho")},
        "fixed_sigma2": {sp.Symbol("sigma2", positive=True): 1},
    }
    for variant, subs in cases.items():
        eqs = _substituted(symvae.derive_dynamics(model(variant, M=2)), subs)
        for s, e in base.items():
            assert sp.expand(eqs[s] - e) == 0, (variant, s)


def test_learned_sigma2_at_unit_variance_equals_base_and_relaxes_to_eta():
    base = symvae.derive_dynamics(model()).equations()
    system = symvae.derive_dynamics(model("learned_sigma2"))
    s2 = system.table.sigma2
    eqs = system.equations()
    for s, e in base.items():
        assert sp.expand(eqs[s].subs(s2, 1) - e) == 0
    eta, tau = sp.symbols("eta tau", real=True)
    # d sigma^2/dt = -tau (sigma^2 - eta) / (2 sigma^4): the O(N) noise floor fixes sigma^2 -> eta
    assert sp.simplify(eqs[s2] + tau * (s2 - eta) / (2 * s2 ** 2)) == 0


def test_minibatch_scales_only_second_order_terms():
    system = symvae.derive_dynamics(model("minibatch"))
    b, tau = sp.Symbol("b", real=True), sp.Symbol("tau", real=True)
    for s, e in system.equations().items():
        e = sp.expand(e)
        first = e.coeff(tau, 1)
        second = e.coeff(tau, 2)
        assert not first.has(b)
        assert sp.expand(second * b).has(b) is False


def test_lam_on_one_side_only():
    lam = sp.Symbol("lam", real=True)
    only_W = symvae.derive_dynamics(model("lam_W_only"))
    T = only_W.table
    eqs = only_W.equations()
    assert eqs[T.m_tilde[0, 0]].coeff(lam) == 0
    assert eqs[T.m[0, 0]].coeff(lam) != 0


def test_every_variant_derives_for_M_up_to_4():
    for variant in symvae.VARIANTS:
        system = symvae.derive_dynamics(model(variant, M=2, M_star=1))
        assert len(system.rhs) == len(system.state)
    system = symvae.derive_dynamics(model(M=4, M_star=2))
    assert len(system.state) == 8 + 8 + 10 + 10 + 16 + 4


def test_tied_state_and_aliases():
    system = symvae.derive_dynamics(model("tied", M=2))
    assert set(system.blocks) == {"m", "Q", "D"}
    T = system.table
    assert T.m_tilde is T.m and T.R is T.Q


def test_annealing_schedule_makes_rhs_time_dependent():
    system = symvae.derive_dynamics(model("annealing"))
    assert system.time_dependent
    assert "gamma" in {p.name for p in system.params}
    custom = symvae.derive_dynamics(symvae.make_model(beta_schedule="2*(1 - exp(-t/50))"))
    assert custom.time_dependent


def test_invalid_model_definitions():
    with pytest.raises(InvalidInputError):
        symvae.make_model(M=0)
    with pytest.raises(InvalidInputError):
        symvae.make_model("nope")
    with pytest.raises(InvalidInputError):
        symvae.make_model(beta_schedule="foo(t)")
    with pytest.raises(InvalidInputError):
        symvae.make_model(beta_schedule="1/0")
    with pytest.raises(InvalidInputError):
        symvae.make_model(batch=0)
    with pytest.raises(InvalidInputError):
        symvae.make_model(tau_W="1+")


def test_leading_order_rejects_growing_drift():
    x = sp.Symbol("x")
    assert _leading_order(3 * x + x / N_sym, "x") == 3 * x
    with pytest.raises(DerivationError):
        _leading_order(N_sym * x + 1, "x")


def test_wick_expectations_against_closed_forms_and_monte_carlo():
    a, b, c, d = fields = sp.symbols("a b c d", real=True)
    C = sp.Matrix(4, 4, lambda i, j: sp.Symbol(f"c{min(i, j)}{max(i, j)}"))
    E = lambda e: gaussian_expectation(e, fields, lambda i, j: C[i, j])  # noqa: E731
    assert sp.expand(E(a ** 4) - 3 * C[0, 0] ** 2) == 0
    assert sp.expand(E(a * b * c * d) - (C[0, 1] * C[2, 3] + C[0, 2] * C[1, 3] + C[0, 3] * C[1, 2])) == 0
    assert E(a ** 3) == 0 and E(a * b * c) == 0
    assert sp.expand(E(a ** 2 * b ** 2) - (C[0, 0] * C[1, 1] + 2 * C[0, 1] ** 2)) == 0
    # Monte Carlo on a degree-4 polynomial with a random covariance
    rng = np.random.default_rng(0)
    L = rng.normal(size=(4, 4))
    cov = L @ L.T / 4
    poly = 2 * a ** 2 * b * c - a * d + 3 * b ** 2 * d ** 2 - 1
    exact = float(E(poly).subs({C[i, j]: cov[i, j] for i, j in itertools.product(range(4), repeat=2)}))
    x = rng.multivariate_normal(np.zeros(4), cov, size=400_000)
    f = sp.lambdify(fields, poly)
    samples = f(*x.T)
    assert abs(samples.mean() - exact) < 5 * samples.std() / np.sqrt(len(samples))


def test_derivation_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMVAE_CACHE", str(tmp_path))
    from symvae.derive import _system
    monkeypatch.setattr(_system, "_MEMO", {})
    m = model(M=2)
    first = symvae.derive_dynamics(m)
    _system._MEMO.clear()
    second = symvae.derive_dynamics(m)
    assert first is not second and second.rhs == first.rhs
    # a corrupt entry is rebuilt
    entry = next(tmp_path.iterdir())
    (entry / "system.pickle").write_bytes(b"garbage")
    _system._MEMO.clear()
    third = symvae.derive_dynamics(m)
    assert third.rhs == first.rhs
