"""Structured starts of the fixed-point search and the marginal classification, for M = M* = 2.

With equal spike strengths the learned point is a continuous family (the rotation of the spike plane); random starts
miss it, the structured (identity-like) starts find it, and its one zero mode makes it ``marginal``. Every claim is
checked against something the search does not compute: a long ODE integration from a generic start, the compiled
right-hand side along the rotation, and a finite-difference Jacobian.
"""
import numpy as np
import pytest

import symvae
from symvae.cli import main
from symvae.numerics import integrate
from symvae.numerics._fixed_points import MARGINAL_TOL, find_fixed_points, stability_class
from symvae.numerics._systems import as_compiled

PARAMS = dict(rho_2=1.0, eta=1.0, beta=0.5, lam=0.0, tau=0.01)


@pytest.fixture(scope="module")
def two_spikes():
    return as_compiled(symvae.derive_dynamics(symvae.make_model("per_spike_rho", M=2, M_star=2)))


@pytest.fixture(scope="module")
def equal(two_spikes):
    return find_fixed_points(two_spikes, dict(PARAMS, rho_1=1.0), closed_forms=False)


def _generic_end_state(compiled, params, t_max):
    rng = np.random.default_rng(3)
    init = dict(m=0.1 * rng.normal(size=(2, 2)), m_tilde=0.1 * rng.normal(size=(2, 2)), Q=np.eye(2),
                Q_tilde=np.eye(2), R=np.zeros((2, 2)), D=np.ones(2))
    traj = integrate(compiled, init, params, [t_max])
    assert traj.ok, traj.message
    return traj.y[-1]


def _invariants(compiled, x, params):
    """Quantities unchanged by a rotation of the spike plane: Q, Q~, R, D, m m^T, m~ m~^T, m m~^T."""
    n = {k: np.asarray(v, dtype=float) for k, v in compiled.system.unpack(x, params).items()}
    m, mt = n["m"], n["m_tilde"]
    return np.concatenate([n["Q"].ravel(), n["Q_tilde"].ravel(), n["R"].ravel(), n["D"].ravel(),
                           (m @ m.T).ravel(), (mt @ mt.T).ravel(), (m @ mt.T).ravel()])


def _fd_jacobian(compiled, x, p, h=1e-6):
    n = len(x)
    J = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h * max(1.0, abs(x[j]))
        J[:, j] = (compiled.rhs(0.0, x + e, p) - compiled.rhs(0.0, x - e, p)) / (2 * e[j])
    return J


def test_stability_class_is_the_sweep_definition():
    assert stability_class([-1.0, -0.5]) == ("stable", 0)
    assert stability_class([0.0, -0.5]) == ("marginal", 1)
    assert stability_class([1e-3, 0.0, -0.5]) == ("unstable", 1)
    assert stability_class([0.5 * MARGINAL_TOL, -1.0]) == ("marginal", 1)
    # relative to the spectral radius: a spectrum scaled by a small step size keeps its class
    assert stability_class([-1e-12, -3e-12]) == ("stable", 0)
    assert stability_class([1e-12, -3e-12]) == ("unstable", 0)


def test_equal_spikes_learned_point_found_and_marginal(two_spikes, equal):
    """rho = (1, 1): the learned point is found with the default starts, it is marginal with one zero mode, and it
    is the end state of a long integration from a generic start up to the rotation of the spike plane."""
    params = dict(PARAMS, rho_1=1.0)
    p = two_spikes.system.param_vector(params)
    learned = [q for q in equal.points if q.kind == "learned" and q.stability != "unstable"]
    assert learned, equal.message
    point = learned[0]
    assert point.stability == "marginal" and not point.stable and point.n_marginal == 1
    assert equal.points[0].stability == "marginal"  # nothing is stable; the marginal family comes first
    end = _generic_end_state(two_spikes, params, 20000.0)
    assert np.max(np.abs(two_spikes.rhs(0.0, end, p))) < 1e-10
    assert np.max(np.abs(_invariants(two_spikes, end, params) - _invariants(two_spikes, point.x, params))) < 1e-8
    # the zero mode is the orbit of the rotation (dimension 1): every rotated state is a fixed point ...
    n = {k: np.asarray(v, dtype=float) for k, v in point.order_parameters().items()}
    for theta in (0.3, 1.1, 2.5):
        O = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        y = two_spikes.system.pack(dict(n, m=n["m"] @ O, m_tilde=n["m_tilde"] @ O))
        assert np.max(np.abs(two_spikes.rhs(0.0, y, p))) < 1e-12
    # ... and the finite-difference Jacobian has exactly one zero eigenvalue, the rest clearly negative
    fd = np.linalg.eigvals(_fd_jacobian(two_spikes, point.x, p))
    assert np.sum(np.abs(fd.real) < 1e-8) == 1 and np.max(fd.real[np.abs(fd.real) >= 1e-8]) < -1e-3
    # the published picture: eg is not rotation invariant, it is measured on the aligned member of the family
    eg = float(two_spikes.observables(0.0, point.x, p)["eg"])
    assert eg < float(two_spikes.observables(0.0, end, p)["eg"]) or np.allclose(end, point.x, atol=1e-6)


def test_unequal_spikes_learned_point_is_the_ode_end_state(two_spikes):
    """rho = (2, 1): one stable learned point, eg equal to the end state of a long integration to 1e-8."""
    params = dict(PARAMS, rho_1=2.0, tau=0.1)
    p = two_spikes.system.param_vector(params)
    found = find_fixed_points(two_spikes, params, closed_forms=False)
    stable = [q for q in found.points if q.stability == "stable"]
    assert stable and {q.kind for q in stable} == {"learned"} and stable[0].n_marginal == 0
    end = _generic_end_state(two_spikes, params, 30000.0)
    eg_end = float(two_spikes.observables(0.0, end, p)["eg"])
    assert abs(float(two_spikes.observables(0.0, stable[0].x, p)["eg"]) - eg_end) < 1e-8
    fd = np.linalg.eigvals(_fd_jacobian(two_spikes, stable[0].x, p))
    assert np.max(fd.real) < -1e-5


def test_small_step_learned_point_matches_the_published_closed_form(two_spikes):
    """tau -> 0 (docs/model.md 3.2): each aligned latent has Q_kk = m_kk^2 = rho_k + eta - beta and
    eg = sum_k (sqrt(rho_k) - sqrt(rho_k + eta - beta))^2; at tau = 1e-4 the O(tau) corrections are below 1e-3."""
    for rho1 in (1.0, 2.0):
        params = dict(PARAMS, rho_1=rho1, tau=1e-4)
        p = two_spikes.system.param_vector(params)
        found = find_fixed_points(two_spikes, params, closed_forms=False, starts=8)
        point = [q for q in found.points if q.kind == "learned" and q.stability != "unstable"][0]
        rho = np.array([rho1, 1.0])
        closed = float(np.sum((np.sqrt(rho) - np.sqrt(rho + 1.0 - 0.5)) ** 2))
        assert abs(float(two_spikes.observables(0.0, point.x, p)["eg"]) - closed) < 1e-3
        n = point.order_parameters()
        assert np.allclose(np.sort(np.diag(n["Q"])), np.sort(rho + 0.5), atol=1e-3)


def test_cli_reports_stability_and_zero_modes(capsys):
    import json

    code = main(["fixed-points", "--variant", "per_spike_rho", "--M", "2", "--M-star", "2", "--set", "rho_1=1",
                 "--set", "rho_2=1", "--beta", "0.5", "--tau", "0.01", "--no-closed-forms", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    first = out["fixed_points"][0]
    assert first["kind"] == "learned" and first["stability"] == "marginal" and first["n_marginal"] == 1
    assert first["stable"] is False
    assert all(d["stability"] in ("stable", "marginal", "unstable") for d in out["fixed_points"])
