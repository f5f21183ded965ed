"""Integration: accuracy against analytic and independent solutions, status reporting, events, published values."""
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

import symvae
from symvae.codegen import compile_system
from symvae.derive import DerivedSystem
from symvae.errors import InvalidInputError
from symvae.numerics import IntegrationError, integrate

from helpers import BASE_PARAMS, model

INIT = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}


def _oscillator():
    """dx/dt = v, dv/dt = -w^2 x: an analytic fixture for the integrator."""
    x, v, w = sp.symbols("x v w", real=True)
    base = symvae.make_model()
    return DerivedSystem(kind="ode", model=base, state=(x, v), rhs=(v, -w ** 2 * x), params=(w,),
                         observables={"energy": v ** 2 + w ** 2 * x ** 2}, blocks={})


@pytest.mark.parametrize("rtol", [1e-6, 1e-8, 1e-10])
def test_error_in_units_of_tolerance_and_evaluation_budget(rtol):
    w = 1.3
    t = np.linspace(0, 20, 9)
    traj = integrate(_oscillator(), [1.0, 0.0], [w], t, rtol=rtol, atol=rtol * 1e-2)
    assert traj.ok
    err = np.max(np.abs(traj.y[:, 0] - np.cos(w * t)))
    assert err < 50 * rtol  # global error over ~4 periods, in units of the local tolerance
    budget = {1e-6: 1500, 1e-8: 2500, 1e-10: 4500}[rtol]
    assert traj.nfev < budget


def test_base_trajectory_matches_independent_integrator():
    system = symvae.derive_dynamics(model())
    t = np.array([0, 50, 200, 800, 1500.0])
    traj = integrate(system, INIT, BASE_PARAMS, t, rtol=1e-10)
    compiled = compile_system(system)
    p = system.param_vector(BASE_PARAMS)
    ref = solve_ivp(lambda tt, y: compiled.rhs_numpy(tt, y, p), (0, 1500), system.pack(INIT), method="Radau",
                    t_eval=t, rtol=1e-12, atol=1e-14, jac=lambda tt, y: compiled.jac(tt, y, p))
    assert np.max(np.abs(traj.y - ref.y.T)) < 1e-8


def test_rtol_1e10_is_reached():
    system = symvae.derive_dynamics(model())
    t = np.linspace(0, 1500, 6)
    a = integrate(system, INIT, BASE_PARAMS, t, rtol=1e-10)
    b = integrate(system, INIT, BASE_PARAMS, t, rtol=1e-13, atol=1e-15)
    assert np.max(np.abs(a.y - b.y)) < 1e-8
    assert a.nfev < b.nfev


def test_late_time_error_floor_and_tau_to_zero_fixed_point():
    """docs/model.md: eg(1500) ~ 0.004 at tau = 0.01 for rho = eta = beta = 1; as tau -> 0 the learned point has
    Q = m^2 = rho + eta - beta and eg = (sqrt(rho) - sqrt(rho + eta - beta))^2 (closed form)."""
    system = symvae.derive_dynamics(model())
    traj = integrate(system, INIT, BASE_PARAMS, [1500.0])
    assert 0.003 < traj.observables()["eg"][-1] < 0.006
    rho, eta, beta = 1.0, 1.0, 0.5
    floors = []
    for tau in (0.04, 0.02, 0.01):
        params = dict(BASE_PARAMS, beta=beta, tau=tau)
        end = integrate(system, INIT, params, [60.0 / tau])
        op = end.order_parameters()
        floors.append((end.observables()["eg"][-1], op["Q"][-1, 0, 0], op["m"][-1, 0, 0] ** 2))
    floors = np.array(floors)
    # the O(tau) correction halves with tau: Richardson extrapolation to tau = 0
    extrapolated = 2 * floors[2] - floors[1]
    expected_eg = (np.sqrt(rho) - np.sqrt(rho + eta - beta)) ** 2
    assert extrapolated[0] == pytest.approx(expected_eg, abs=2e-4)
    assert extrapolated[1] == pytest.approx(rho + eta - beta, abs=2e-3)
    assert extrapolated[2] == pytest.approx(rho + eta - beta, abs=2e-3)


def test_collapse_beyond_rho_plus_eta():
    system = symvae.derive_dynamics(model())
    traj = integrate(system, INIT, dict(BASE_PARAMS, beta=2.5, tau=0.05), [4000.0])
    op = traj.order_parameters()
    assert abs(op["m"][-1, 0, 0]) < 1e-6 and op["Q"][-1, 0, 0] < 1e-6
    assert op["D"][-1, 0] == pytest.approx(1.0, abs=1e-6)  # D = beta/(beta + Q) -> 1


def test_divergence_reported_with_time_and_no_nan():
    system = symvae.derive_dynamics(model())
    traj = integrate(system, INIT, dict(BASE_PARAMS, tau=3.0), np.linspace(0, 100, 11))
    assert traj.status == "diverged"
    assert 0 < traj.t_stop < 100
    assert f"{traj.t_stop:.6g}" in traj.message
    assert np.all(np.isfinite(traj.y)) and len(traj.t) < 11
    with pytest.raises(IntegrationError, match="diverged"):
        integrate(system, INIT, dict(BASE_PARAMS, tau=3.0), [100.0], throw=True)


def test_max_steps_is_a_failure_status():
    traj = integrate(symvae.derive_dynamics(model()), INIT, BASE_PARAMS, [1500.0], max_steps=3)
    assert traj.status == "failed" and "steps" in traj.message


def test_events_convergence_and_plateau_escape():
    system = symvae.derive_dynamics(model())
    small = dict(INIT, m=[[1e-3]], m_tilde=[[1e-3]])
    traj = integrate(system, small, BASE_PARAMS, [3000.0])
    tc = traj.convergence_time(1e-3)
    te = traj.plateau_escape_time()
    assert 0 < te < tc < 3000
    dense = integrate(system, small, BASE_PARAMS, np.linspace(0, 3000, 3001))
    eg = dense.observables()["eg"]
    final = eg[-1]
    after = dense.t >= tc + 1
    assert np.all(np.abs(eg[after] - final) <= 1e-3 + 1e-9)
    assert np.abs(eg[dense.t <= tc - 1] - final).max() > 1e-3
    # a smaller initial overlap stays longer on the plateau
    smaller = integrate(system, dict(INIT, m=[[1e-5]], m_tilde=[[1e-5]]), BASE_PARAMS, [3000.0])
    assert smaller.plateau_escape_time() > te


def test_annealing_schedule_changes_trajectory():
    annealed = symvae.derive_dynamics(model("annealing"))
    plain = symvae.derive_dynamics(model())
    params = dict(BASE_PARAMS, gamma=1e6)  # tanh(gamma t) = 1 after the first instant: same as constant beta
    a = integrate(annealed, INIT, params, [100.0, 500.0])
    b = integrate(plain, INIT, BASE_PARAMS, [100.0, 500.0])
    assert np.allclose(a.y, b.y, rtol=1e-6, atol=1e-8)
    slow = integrate(annealed, INIT, dict(BASE_PARAMS, gamma=0.01), [100.0])
    assert not np.allclose(slow.y[-1], b.y[0], rtol=1e-3)


def test_bad_arguments():
    system = symvae.derive_dynamics(model())
    with pytest.raises(InvalidInputError):
        integrate(system, INIT, BASE_PARAMS, [10.0, 5.0])
    with pytest.raises(InvalidInputError):
        integrate(system, INIT, BASE_PARAMS, [float("nan")])
    with pytest.raises(InvalidInputError):
        integrate(system, INIT, dict(BASE_PARAMS, beta=float("inf")), [1.0])
    with pytest.raises(InvalidInputError):
        integrate(system, INIT, BASE_PARAMS, [1.0], rtol=0)
