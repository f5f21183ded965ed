"""The entangled saddle of M = M* = 2 with rho = (2, 1): a fixed point with mixed overlaps and one unstable direction,
checked against finite differences of the compiled right-hand side and against ODE integrations that pass it."""
import numpy as np
import pytest

from symvae.analysis._latents import entangled_saddles, saddle_passage
from symvae.analysis._reproduce import SADDLE_PARAMS, SADDLE_RADIUS, _spread_start
from symvae.analysis._sweep import model_for
from symvae.numerics import integrate
from symvae.simulate import default_initial_state


@pytest.fixture(scope="module")
def setting():
    _, system, compiled = model_for("per_spike_rho", 2, 2, None)
    saddles = entangled_saddles(compiled, SADDLE_PARAMS)
    base = {k: v for k, v in default_initial_state(system.table).items() if k in system.blocks}
    return system, compiled, saddles, base


def test_saddle_is_a_mixed_fixed_point_with_one_unstable_direction(setting):
    system, compiled, saddles, _ = setting
    assert len(saddles) == 8  # one orbit: latent flips, the latent swap and the spike flips
    p = system.param_vector(SADDLE_PARAMS)
    q = saddles[0]
    x = q.x
    assert np.max(np.abs(compiled.rhs(0.0, x, p))) < 1e-12
    m = q.order_parameters()["m"]
    assert np.all(np.abs(m) > 0.5)  # every latent overlaps both spikes
    n = len(x)
    J = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1e-6 * max(1.0, abs(x[j]))
        J[:, j] = (compiled.rhs(0.0, x + e, p) - compiled.rhs(0.0, x - e, p)) / (2 * e[j])
    fd = np.linalg.eigvals(J)
    assert np.sum(fd.real > 1e-7) == 1 and np.min(np.abs(fd.real)) > 1e-5  # one unstable, no zero mode
    assert np.max(fd.real) == pytest.approx(q.eigenvalues[0].real, rel=1e-4)


def test_trajectories_from_spread_starts_pass_the_saddle(setting):
    """Spread starts (latents on the two diagonals of the spike plane, symmetry broken by eps) pass within ~2 eps of
    the saddle, and the time spent near it grows by log(10) / lambda_+ per decade of eps (the linearisation)."""
    system, compiled, saddles, base = setting
    t = np.linspace(0.0, 12000.0, 60001)
    passages = {}
    for eps in (1e-2, 1e-3):
        traj = integrate(compiled, _spread_start(base, eps), SADDLE_PARAMS, t)
        assert traj.ok, traj.message
        p = saddle_passage(saddles, traj.t, traj.y, radius=SADDLE_RADIUS)
        assert p.distance < 3 * eps
        assert np.linalg.norm(traj.y[-1] - p.saddle.x) > SADDLE_RADIUS  # it has left again by t = 12000
        passages[eps] = p
    lam = saddles[0].eigenvalues[0].real
    delay = passages[1e-3].time_near - passages[1e-2].time_near
    assert delay == pytest.approx(np.log(10.0) / lam, rel=0.05)


def test_default_start_stays_far_from_the_saddle(setting):
    """What the report says about the study's default start (latents already leaning to their own spikes)."""
    _, compiled, saddles, base = setting
    traj = integrate(compiled, base, SADDLE_PARAMS, np.linspace(0.0, 4000.0, 20001))
    p = saddle_passage(saddles, traj.t, traj.y, radius=SADDLE_RADIUS)
    assert p.distance > 0.5 and p.time_near == 0.0
