"""The symmetric plateau of the soft committee machine (Saad & Solla 1995: K = M, T = I, erf, first layer) from the
derived ODEs: its escape rate against the published small-tau closed form and against finite differences of the
published equations, the plateau length against 1/lambda, and eg(t) through the plateau against finite-N SGD."""
import math

import numpy as np
import pytest

from symvae.analysis._plateau import (committee_flow, escape_time, plateau_length, small_tau_escape_rate,
                                      symmetric_plateau, symmetric_start)
from symvae.errors import InvalidInputError
from symvae.model._committee import CommitteeMachine

SAAD_SOLLA = CommitteeMachine(K=2, M_teacher=2)


def _closed_form_eg(K):
    return K / math.pi * (math.pi / 6 - K * math.asin(1 / (2 * K)))


def test_small_tau_plateau_and_escape_rate_equal_the_published_closed_forms():
    """tau -> 0 (tau = 1e-6): q = c = 1/3 (q - c = O(tau)), r = 1/sqrt(6), eg = 0.0116108..., and the largest
    eigenvalue of the Jacobian of the derived flow there, divided by tau, equals (2/pi) K / (sqrt(2K - 1)
    (2K + 1)^(3/2)) = 0.0657498... (Saad & Solla 1995) up to the O(tau) correction."""
    tau = 1e-6
    p = symmetric_plateau(SAAD_SOLLA, tau)
    assert abs(p.q - 1 / 3) < 1e-5 and abs(p.c - 1 / 3) < 1e-5 and abs(p.r - 1 / math.sqrt(6)) < 1e-5
    assert abs(p.eg - _closed_form_eg(2)) < 1e-7
    assert abs(small_tau_escape_rate(2) - (2 / math.pi) * 2 / (math.sqrt(3) * 5 ** 1.5)) < 1e-15  # K = 2 by hand
    assert abs(p.escape_rate / tau / small_tau_escape_rate(2) - 1) < 1e-5
    # the escape direction breaks the permutation symmetry: R_11 = R_22 = -R_12 = -R_21, Q unchanged
    flow = committee_flow(SAAD_SOLLA)
    v = dict(zip(flow.names, p.escape_vector))
    assert abs(abs(v["R_11"]) - 0.5) < 1e-6 and abs(v["R_11"] - v["R_22"]) < 1e-6
    assert abs(v["R_11"] + v["R_12"]) < 1e-6 and max(abs(v[n]) for n in ("Q_11", "Q_12", "Q_22")) < 1e-6


def test_escape_rate_against_finite_differences_of_the_published_equations():
    """At tau = 0.5 the plateau of the derived flow is a fixed point of the published equations (written
    independently in test_committee), and the eigenvalues of the complex-step Jacobian of the generated right-hand
    side equal those of central finite differences of the published right-hand side."""
    from test_committee import published_rhs
    tau = 0.5
    p = symmetric_plateau(SAAD_SOLLA, tau)
    names = committee_flow(SAAD_SOLLA).names

    def F(y):
        s = dict(zip(names, y))
        Q = np.array([[s["Q_11"], s["Q_12"]], [s["Q_12"], s["Q_22"]]])
        R = np.array([[s["R_11"], s["R_12"]], [s["R_21"], s["R_22"]]])
        dQ, dR, _ = published_rhs(Q, R, np.eye(2), np.ones(2), np.ones(2), tau, 0.0, False)
        return np.array([dQ[0, 0], dQ[0, 1], dQ[1, 1], dR[0, 0], dR[0, 1], dR[1, 0], dR[1, 1]])

    assert names == ("Q_11", "Q_12", "Q_22", "R_11", "R_12", "R_21", "R_22")
    assert np.max(np.abs(F(p.state))) < 1e-12
    h = 1e-6
    J = np.stack([(F(p.state + h * e) - F(p.state - h * e)) / (2 * h) for e in np.eye(len(names))], axis=1)
    lam_fd = np.sort(np.linalg.eigvals(J).real)
    lam = np.sort(p.eigenvalues.real)
    assert np.max(np.abs(lam - lam_fd)) < 1e-7, (lam, lam_fd)
    assert abs(p.escape_rate - lam_fd.max()) < 1e-7  # the escape rate is the largest eigenvalue of the published flow
    assert p.unstable == 1 and np.sum(lam_fd > 1e-9) == 1  # the escape direction is the only unstable one
    assert p.eg > _closed_form_eg(2)  # finite tau raises the plateau


def test_plateau_length_grows_like_log_inverse_asymmetry_over_lambda():
    """Started at the plateau plus delta0 along the escape direction, the time for eg to halve is
    ln(1/delta0)/lambda + c: the fitted slope equals 1/lambda (16.91 at tau = 1) to 1e-3."""
    L = plateau_length(SAAD_SOLLA, 1.0, [1e-2, 1e-3, 1e-4, 1e-5], points=2001)
    assert abs(L.slope * L.plateau.escape_rate - 1) < 1e-3, (L.slope, L.predicted_slope)
    assert np.all(np.diff(L.lengths) > 0)
    # the eg(t) curve sits on the plateau eg before it escapes
    mid = (L.t > 0.3 * L.lengths[-1]) & (L.t < 0.6 * L.lengths[-1])
    assert np.max(np.abs(L.eg[mid] / L.plateau.eg - 1)) < 1e-3


def test_bad_settings_are_refused():
    with pytest.raises(InvalidInputError):
        symmetric_plateau(CommitteeMachine(K=2, M_teacher=1), 0.5)
    with pytest.raises(InvalidInputError):
        symmetric_plateau(SAAD_SOLLA, -1.0)
    with pytest.raises(InvalidInputError):
        plateau_length(SAAD_SOLLA, 0.5, [1e-3])


def _through_the_plateau(N, seeds, t_max):
    """Finite-N SGD (hand-written gradients) and the derived ODE from the same exactly realised start near the
    plateau: Q_ii = q*, Q_12 = c*, R_ii = r* + 0.03, R_in = r* - 0.03 (tau = 1, plateau eg 0.02066)."""
    from symvae.simulate._committee_seeds import simulate_committee_seeds
    tau = 1.0
    p = symmetric_plateau(SAAD_SOLLA, tau)
    flow = committee_flow(SAAD_SOLLA)
    d = 0.03
    y0 = symmetric_start(SAAD_SOLLA, p.q, p.c, p.r + d, p.r - d)
    times = np.arange(0.0, t_max + 1e-9, 1.0)
    _, Y = flow.solve(y0, {"T_11": 1, "T_12": 0, "T_22": 1, "tau": tau}, times)
    eg = np.array([flow.eg(y, {"T_11": 1, "T_12": 0, "T_22": 1, "tau": tau}) for y in Y])
    G = np.array([[p.q, p.c, p.r + d, p.r - d], [p.c, p.q, p.r - d, p.r + d],
                  [p.r + d, p.r - d, 1, 0], [p.r - d, p.r + d, 0, 1]])
    w, V = np.linalg.eigh(G)
    assert w.min() > 0
    F = V * np.sqrt(w)
    rng = np.random.default_rng(N)
    vecs = np.stack([F @ (np.linalg.qr(rng.normal(size=(N, 4)))[0].T * math.sqrt(N)) for _ in range(seeds)])
    sim = simulate_committee_seeds(vecs[:, :2], vecs[:, 2:], tau, times, seed=N + 1)
    assert np.allclose(sim["eg"][:, 0], eg[0], atol=1e-12)  # the start is realised exactly
    T_ode = escape_time(times, eg, 0.5 * p.eg)
    T_sim = np.array([escape_time(times, e, 0.5 * p.eg) for e in sim["eg"]])
    return eg, sim["eg"], T_ode, T_sim, p


def _check_through_the_plateau(N, seeds, t_max):
    eg, eg_sim, T_ode, T_sim, p = _through_the_plateau(N, seeds, t_max)
    assert eg.max() > 0.95 * p.eg  # the ODE does pass the plateau
    se = T_sim.std(ddof=1) / math.sqrt(seeds)
    assert abs(T_sim.mean() - T_ode) < 3 * se + 0.3, (T_sim.mean(), se, T_ode)
    se_t = eg_sim[:, 1:].std(axis=0, ddof=1) / math.sqrt(seeds)
    z = (eg_sim[:, 1:].mean(axis=0) - eg[1:]) / se_t
    assert np.sqrt(np.mean(z ** 2)) < 2, z  # about 1 if the ODE is the mean of SGD


def test_simulation_through_the_plateau():
    """N = 500, 8 seeds: the escape time of finite-N SGD (measured 41.43 +- 0.54) equals the ODE's (41.47) within
    3 s.e., and the mean eg(t) follows the ODE curve: the root mean square over t = 1..50 of (mean - ODE)/s.e. is
    below 2 (measured 1.03)."""
    _check_through_the_plateau(500, 8, 50.0)


@pytest.mark.slow
def test_simulation_through_the_plateau_large_n():
    """N = 2000, 8 seeds (measured at N = 1000: escape 41.20 +- 0.33 against 41.47, rms z 0.89)."""
    _check_through_the_plateau(2000, 8, 60.0)


@pytest.mark.parametrize("tau", [1.0, 2.0, 3.0])
def test_the_plateau_is_where_the_symmetric_flow_goes(tau):
    """Integrated inside the symmetric subspace (Q_11 = Q_22 = q, Q_12 = c, all R_in = r: invariant) from a generic
    start, the derived flow settles on the plateau that Newton's method finds (q > c); the identical-students point
    q = c, a fixed point of the same subspace, repels it there. At tau = 3 Newton's method from the small-tau closed
    form used to return q = c = 0.293, r = 0.396 with eg = -0.0088: no Gram matrix (the plateau is now followed in
    tau and such a root is refused)."""
    from scipy.integrate import solve_ivp

    p = symmetric_plateau(SAAD_SOLLA, tau)
    flow = committee_flow(SAAD_SOLLA)
    params = {"T_11": 1, "T_12": 0, "T_22": 1, "tau": tau}
    rows = [flow.index(n) for n in ("Q_11", "Q_12", "R_11")]
    sol = solve_ivp(lambda t, u: flow.rhs(symmetric_start(SAAD_SOLLA, u[0], u[1], u[2], u[2]), params)[rows],
                    (0.0, 4000.0), [0.2, 0.0, 0.1], rtol=1e-11, atol=1e-13, method="DOP853")
    assert sol.status == 0
    assert np.max(np.abs(sol.y[:, -1] - [p.q, p.c, p.r])) < 1e-6, (sol.y[:, -1], p.q, p.c, p.r)
    assert p.q - p.c > 0.1 and p.eg > 0 and p.unstable == 1


def test_the_end_of_the_plateau_branch_is_reported(capsys):
    """Near tau = 3.6 the plateau (K = 2) runs off to Q_ii -> infinity (Q_ii = 129 at tau = 3.59 on a continuation
    of step 0.01): beyond, a numerical failure (exit 1) saying where, not a number."""
    from helpers import run_cli

    from symvae.errors import SymvaeError
    with pytest.raises(SymvaeError, match=r"could not be followed in tau beyond 3\.[5-9]\d*, where Q_ii = \d{2}"):
        symmetric_plateau(SAAD_SOLLA, 10.0)
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--plateau", "10", "--format", "json")
    assert code == 1 and out == "" and "could not be followed" in err


@pytest.mark.slow
def test_small_tau_escape_rate_k3():
    """K = M = 3: lambda/tau at tau = 1e-6 equals (2/pi) 3/(sqrt 5 7^(3/2)) = 0.0461179 (measured 2e-7 apart)."""
    machine = CommitteeMachine(K=3, M_teacher=3)
    p = symmetric_plateau(machine, 1e-6)
    assert abs(p.escape_rate / 1e-6 / small_tau_escape_rate(3) - 1) < 1e-5
    assert abs(p.q - 0.2) < 1e-5 and abs(p.r - 1 / math.sqrt(15)) < 1e-5 and abs(p.eg - _closed_form_eg(3)) < 1e-7


def test_cli_plateau(capsys):
    from helpers import run_cli
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--plateau", "0.5")
    p = symmetric_plateau(SAAD_SOLLA, 0.5)  # checked against the published equations above
    assert code == 0 and f"| escape rate lambda | {p.escape_rate:.12g} |" in out and f"| eg | {p.eg:.12g} |" in out
    for bad in (("--plateau", "0"), ("--plateau", "nan"), ("--plateau", "0.5", "--both-layers"),
                ("--plateau", "0.5", "--K", "2", "--M-teacher", "1")):
        code, out, err = run_cli(capsys, "derive", "--model", "committee", *bad)
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)
    code, out, err = run_cli(capsys, "derive", "--plateau", "0.5")
    assert code == 2 and len(err.strip().splitlines()) == 1
