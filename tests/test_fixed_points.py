"""Fixed points: residuals, spectra against finite differences, symmetry images, kinds, closed forms, budgets,
and the published fixed-point picture (exchange of stability, the superfluous latent fitting noise)."""
import json

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import symvae
from symvae.cli import main
from symvae.errors import InvalidInputError
from symvae.numerics._fixed_points import KINDS, find_fixed_points, fixed_point, polish_fixed_point
from symvae.numerics._symmetry import symmetry_generators
from symvae.numerics._systems import as_compiled

BASE = dict(beta=0.5, eta=1.0, lam=0.0, rho=1.0, tau=0.01)


@pytest.fixture(scope="module")
def base():
    return as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=1, M_star=1)))


@pytest.fixture(scope="module")
def two_latents():
    return as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=2, M_star=1)))


@pytest.fixture(scope="module")
def found(base):
    return find_fixed_points(base, BASE)


def _residual(compiled, x, params):
    p = compiled.system.param_vector(params)
    return float(np.max(np.abs(compiled.rhs(0.0, x, p))))


def test_kinds_at_beta_below_eta(found):
    """Below beta = eta: two learned points (a sign pair), the collapsed point and a noise-fitting point."""
    kinds = sorted(p.kind for p in found.points)
    assert kinds == ["collapsed", "learned", "learned", "noise-fitting"], found.message
    assert [p.kind for p in found.points if p.stable] == ["learned", "learned"]
    learned = found.of_kind("learned")
    assert learned[0].orbit == learned[1].orbit and {p.image for p in learned} == {"identity", "flip latent 1"}
    assert np.allclose(learned[1].x, learned[0].x * np.array([-1, -1, 1, 1, 1, 1]))  # (m, m~) -> -(m, m~)


def test_residual_below_tolerance_float_and_mp(base, found):
    for point in found.points:
        assert point.residual <= 1e-15
        assert _residual(base, point.x, BASE) == point.residual
        polished = polish_fixed_point(point, 40)
        with mpmath.workdps(45):
            F = base.rhs_mp(0, polished.x_mp, [repr(float(v)) for v in base.system.param_vector(BASE)])
            assert max(abs(F[i]) for i in range(F.rows)) < mpmath.mpf(10) ** -38
        assert polished.residual_mp < mpmath.mpf(10) ** -38


def test_eigenvalues_match_finite_difference_jacobian(base, found):
    p = base.system.param_vector(BASE)
    n = len(base.system.state)
    for point in found.points:
        h = 1e-6
        J = np.empty((n, n))
        for j in range(n):
            e = np.zeros(n)
            e[j] = h * max(1.0, abs(point.x[j]))
            J[:, j] = (base.rhs(0, point.x + e, p) - base.rhs(0, point.x - e, p)) / (2 * e[j])
        fd = np.sort_complex(np.linalg.eigvals(J))
        assert np.allclose(np.sort_complex(point.eigenvalues), fd, atol=1e-9, rtol=1e-6)
        assert point.stable == bool(np.max(fd.real) < 0)


def test_symmetry_images_are_fixed_points_and_reported(two_latents):
    result = find_fixed_points(two_latents, BASE, starts=24, closed_forms=False)
    xs = [p.x for p in result.points]
    gens = symmetry_generators(two_latents.system)
    assert {g.label for g in gens} >= {"flip latent 1", "flip latent 2", "swap latents 1,2", "flip spike 1"}
    for point in result.points:
        for g in gens:
            image = g(point.x)
            assert _residual(two_latents, image, BASE) <= 1e-14
            assert any(np.max(np.abs(image - y)) < 1e-9 for y in xs), (point.kind, g.label)
    # every orbit lists its images once: no two reported points coincide
    for i, a in enumerate(xs):
        assert all(np.max(np.abs(a - b)) > 1e-6 for b in xs[i + 1:])


def test_superfluous_latent_fits_noise_below_the_noise_threshold_and_collapses_above(two_latents):
    """M = 2, M* = 1: the stable point has one learned latent; the other fits noise below beta_noise (~1.0025 at
    tau = 0.01) and is collapsed above it (published: superfluous latents fit the noise when beta < eta)."""
    below = find_fixed_points(two_latents, {**BASE, "beta": 0.8}, starts=24, closed_forms=False)
    above = find_fixed_points(two_latents, {**BASE, "beta": 1.3}, starts=24, closed_forms=False)
    assert {tuple(sorted(p.latent_kinds)) for p in below.stable} == {("learned", "noise-fitting")}
    assert {tuple(sorted(p.latent_kinds)) for p in above.stable} == {("collapsed", "learned")}
    assert all(p.kind == "noise-fitting" for p in below.stable)


@pytest.mark.parametrize("beta_c_offset", [-1e-3, 1e-3])
def test_exchange_of_stability_collapsed_learned(base, beta_c_offset):
    """beta_c = rho + eta at lam = 0 (any tau): collapsed unstable and learned stable below, collapsed stable and no
    learned point above."""
    params = {**BASE, "tau": 0.2, "beta": 2.0 * (1 + beta_c_offset)}
    result = find_fixed_points(base, params, starts=24, closed_forms=False)
    collapsed = result.of_kind("collapsed")
    learned = result.of_kind("learned")
    assert len(collapsed) == 1
    if beta_c_offset < 0:
        assert not collapsed[0].stable and learned and all(p.stable for p in learned)
    else:
        assert collapsed[0].stable and not learned


def test_closed_forms(found):
    collapsed = found.of_kind("collapsed")[0]
    assert collapsed.closed_form["limit"] is None and collapsed.closed_form["state"]["D_1"] == 1
    learned = [p for p in found.of_kind("learned") if p.image == "identity"][0]
    cf = learned.closed_form
    assert cf["limit"] == "tau -> 0"
    rho, eta, beta = sp.symbols("rho eta beta", real=True)
    assert sp.simplify(cf["state"]["Q_11"] - (rho + eta - beta)) == 0
    assert sp.simplify(cf["state"]["m_11"] ** 2 - (rho + eta - beta)) == 0
    assert sp.simplify(cf["state"]["D_1"] - beta / (rho + eta)) == 0


def test_learned_point_tends_to_the_small_step_closed_form(base):
    """Q = m^2 = rho + eta - beta as tau -> 0: the distance to the closed form shrinks like tau."""
    dist = []
    for tau in (1e-2, 1e-3):
        result = find_fixed_points(base, {**BASE, "tau": tau}, starts=16)
        learned = [p for p in result.of_kind("learned") if p.image == "identity"][0]
        assert abs(learned.order_parameters()["Q"][0, 0] - 1.5) < 2 * tau
        dist.append(learned.closed_form["distance"])
    assert 5 < dist[0] / dist[1] < 20


def test_unphysical_roots_rejected_or_labelled(base):
    params = {**BASE, "beta": 1.5}
    strict = find_fixed_points(base, params, closed_forms=False)
    loose = find_fixed_points(base, params, closed_forms=False, include_unphysical=True)
    assert strict.n_unphysical >= 1 and all(p.physical for p in strict.points)
    extra = [p for p in loose.points if not p.physical]
    assert extra and all(p.kind == "other" for p in extra)


def test_newton_budgets(base, found):
    assert found.counts["newton_iterations"] <= 3500
    assert found.counts["nfev"] <= 20000
    learned = found.of_kind("learned")[0]
    from symvae.numerics._newton import Counter
    counter = Counter()
    point = fixed_point(base, learned.x * (1 + 1e-3), BASE, counter=counter)
    assert np.allclose(point.x, learned.x, atol=1e-12)
    assert counter.newton <= 5  # quadratic convergence from 1e-3


def test_input_errors(base):
    with pytest.raises(InvalidInputError):
        find_fixed_points(base, {"beta": 1.0})
    schedule = symvae.derive_dynamics(symvae.make_model("annealing"))
    with pytest.raises(InvalidInputError, match="depends on t"):
        find_fixed_points(schedule, dict(BASE, gamma=0.1))


@given(beta=st.floats(0.1, 3.0), lam=st.floats(0.0, 0.5), tau=st.floats(0.001, 0.3))
def test_property_fixed_points_are_roots_and_physical(base, beta, lam, tau):
    params = dict(BASE, beta=beta, lam=lam, tau=tau)
    result = find_fixed_points(base, params, starts=12, restarts=2, closed_forms=False)
    assert result.ok and result.of_kind("collapsed")
    for point in result.points:
        assert point.physical and point.residual <= 1e-12
    # one stable orbit (the collapsed point or the sign pair of learned points) unless beta sits on a threshold
    assert len({p.orbit for p in result.stable}) <= 1


def test_cli_fixed_points_contract(capsys):
    code = main(["fixed-points", "--beta", "0.5", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("\n") == 1
    data = json.loads(out)
    assert data["status"] == "ok"
    for fp in data["fixed_points"]:
        assert {"m", "m_tilde", "Q", "Q_tilde", "R", "D", "eigenvalues", "stable", "kind"} <= set(fp)
        assert np.asarray(fp["m"]).shape == (1, 1) and np.asarray(fp["D"]).shape == (1,)
        assert all(len(e) == 2 for e in fp["eigenvalues"]) and fp["kind"] in KINDS
    assert sorted(fp["kind"] for fp in data["fixed_points"]) == ["collapsed", "learned", "learned", "noise-fitting"]
