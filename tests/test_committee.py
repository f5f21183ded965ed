"""The soft committee machine derived by the Gaussian-expectation engine from its model definition (issue 11, sec. 3),
against the published ODEs and against finite-N simulation."""
import functools

import numpy as np
import pytest
import sympy as sp

from symvae.derive._committee import derive_committee
from symvae.model._committee import CommitteeMachine


# The published integrals (Saad & Solla 1995; Goldt et al. 2019, eqs. (13)-(15) and appendix), g(x) = erf(x/sqrt 2),
# written here from the papers' formulas; C is the covariance of the fields they are taken over.
def I2(C):
    return 2 / np.pi * np.arcsin(C[0, 1] / np.sqrt((1 + C[0, 0]) * (1 + C[1, 1])))


def I3(C):
    lam3 = (1 + C[0, 0]) * (1 + C[2, 2]) - C[0, 2] ** 2
    return 2 / np.pi / np.sqrt(lam3) * (C[1, 2] * (1 + C[0, 0]) - C[0, 1] * C[0, 2]) / (1 + C[0, 0])


def I4(C):
    lam4 = (1 + C[0, 0]) * (1 + C[1, 1]) - C[0, 1] ** 2
    lam0 = (lam4 * C[2, 3] - C[1, 2] * C[1, 3] * (1 + C[0, 0]) - C[0, 2] * C[0, 3] * (1 + C[1, 1])
            + C[0, 1] * C[0, 2] * C[1, 3] + C[0, 1] * C[0, 3] * C[1, 2])
    lam1 = (lam4 * (1 + C[2, 2]) - C[1, 2] ** 2 * (1 + C[0, 0]) - C[0, 2] ** 2 * (1 + C[1, 1])
            + 2 * C[0, 1] * C[0, 2] * C[1, 2])
    lam2 = (lam4 * (1 + C[3, 3]) - C[1, 3] ** 2 * (1 + C[0, 0]) - C[0, 3] ** 2 * (1 + C[1, 1])
            + 2 * C[0, 1] * C[0, 3] * C[1, 3])
    return 4 / np.pi ** 2 / np.sqrt(lam4) * np.arcsin(lam0 / np.sqrt(lam1 * lam2))


@functools.lru_cache(maxsize=None)
def derived(machine):
    return derive_committee(machine)


SAAD_SOLLA = CommitteeMachine(K=2, M_teacher=2)
GOLDT = CommitteeMachine(K=2, M_teacher=1, train_second_layer=True, teacher_second_layer="free")


def published_rhs(Q, R, T, v, A, tau, tau_v, both):
    """dQ/dt, dR/dt, dv/dt of Goldt et al. 2019 (no noise, no weight decay); v = A = 1 gives Saad & Solla 1995."""
    K, M = R.shape
    C = np.block([[Q, R], [R.T, T]])
    sub = lambda *idx: C[np.ix_(idx, idx)]  # noqa: E731
    t = lambda n: K + n  # noqa: E731
    dR = np.zeros((K, M))
    for i in range(K):
        for n in range(M):
            dR[i, n] = tau * v[i] * (sum(A[m] * I3(sub(i, t(n), t(m))) for m in range(M))
                                     - sum(v[j] * I3(sub(i, t(n), j)) for j in range(K)))
    dQ = np.zeros((K, K))
    for i in range(K):
        for k in range(K):
            first = 0.0
            for a, b in ((i, k), (k, i)):
                first += v[a] * (sum(A[m] * I3(sub(a, b, t(m))) for m in range(M))
                                 - sum(v[j] * I3(sub(a, b, j)) for j in range(K)))
            second = (sum(A[n] * A[m] * I4(sub(i, k, t(n), t(m))) for n in range(M) for m in range(M))
                      - 2 * sum(v[j] * A[n] * I4(sub(i, k, j, t(n))) for j in range(K) for n in range(M))
                      + sum(v[j] * v[l] * I4(sub(i, k, j, l)) for j in range(K) for l in range(K)))
            dQ[i, k] = tau * first + tau ** 2 * v[i] * v[k] * second
    dv = np.zeros(K)
    if both:
        for i in range(K):
            dv[i] = tau_v * (sum(A[n] * I2(sub(i, t(n))) for n in range(M))
                             - sum(v[k] * I2(sub(i, k)) for k in range(K)))
    return dQ, dR, dv


def _values(machine, rng):
    K, M = machine.K, machine.M_teacher
    V = rng.normal(size=(K + M, K + M + 2)) / np.sqrt(K + M + 2)
    G = V @ V.T
    G[K:, K:] += np.eye(M)
    Q, R, T = G[:K, :K], G[:K, K:], G[K:, K:]
    v = rng.uniform(0.3, 1.5, size=K) if machine.train_second_layer else np.ones(K)
    A = rng.uniform(0.5, 1.5, size=M) if machine.teacher_second_layer == "free" else np.ones(M)
    return Q, R, T, v, A, rng.uniform(0.1, 1.0), rng.uniform(0.1, 1.0)


def _subs(machine, Q, R, T, v, A, tau, tau_v):
    K, M = machine.K, machine.M_teacher
    s = {sp.Symbol("tau", real=True): tau, sp.Symbol("tau_v", real=True): tau_v}
    s.update({machine.Q(i, k): Q[i, k] for i in range(K) for k in range(K)})
    s.update({machine.R(i, n): R[i, n] for i in range(K) for n in range(M)})
    s.update({machine.T(n, m): T[n, m] for n in range(M) for m in range(M)})
    if machine.train_second_layer:
        s.update({machine.v[k]: v[k] for k in range(K)})
    if machine.teacher_second_layer == "free":
        s.update({machine.A[n]: A[n] for n in range(M)})
    return s


@pytest.mark.parametrize("machine", [SAAD_SOLLA, GOLDT], ids=["saad_solla_K2_M2", "goldt_both_layers_K2_M1"])
def test_derived_equals_published(machine):
    """The derived right-hand sides equal the published ones at random points (to round-off)."""
    system = derived(machine)
    f = sp.lambdify(list(system.state) + list(system.params), list(system.rhs), modules="numpy")
    rng = np.random.default_rng(1)
    K, M = machine.K, machine.M_teacher
    for _ in range(3):
        Q, R, T, v, A, tau, tau_v = _values(machine, rng)
        dQ, dR, dv = published_rhs(Q, R, T, v, A, tau, tau_v, machine.train_second_layer)
        values = _subs(machine, Q, R, T, v, A, tau, tau_v)
        got = dict(zip(system.state, f(*[values[s] for s in system.state + system.params])))
        for i in range(K):
            for k in range(i, K):
                assert abs(got[machine.Q(i, k)] - dQ[i, k]) < 1e-12 * (1 + abs(dQ[i, k]))
            for n in range(M):
                assert abs(got[machine.R(i, n)] - dR[i, n]) < 1e-12 * (1 + abs(dR[i, n]))
            if machine.train_second_layer:
                assert abs(got[machine.v[i]] - dv[i]) < 1e-12 * (1 + abs(dv[i]))


def test_simulation_agrees_with_the_derived_odes():
    """Goldt et al. setting (both layers, K = 2, M = 1, A = 1.3, tau = tau_v = 0.5): the largest deviation of the
    simulated Q, R, v from the ODE up to t = 10 falls with N like N^-1/2 (measured with 3 seeds: about 0.035 at
    N = 250 and 0.013 at N = 1000 for a K = M = 2 machine; a wrong ODE gives an N-independent deviation)."""
    from scipy.integrate import solve_ivp

    from symvae.simulate._nonlinear import simulate_committee
    machine = GOLDT
    system = derived(machine)
    f, eg = system.numpy_functions()
    params = dict(tau=0.5, tau_v=0.5, A_1=1.3)
    times = [2.0, 5.0, 10.0]
    rms = []
    for N in (200, 800):
        devs = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            Ws = np.linalg.qr(rng.normal(size=(N, 1)))[0].T * np.sqrt(N)
            W0 = rng.normal(size=(2, N)) * 0.7
            v0 = np.array([0.6, 0.4])
            sim = simulate_committee(machine, params, W0, Ws, v0, times, seed=seed)
            Q0, R0, T = W0 @ W0.T / N, W0 @ Ws.T / N, Ws @ Ws.T / N
            y0 = [Q0[0, 0], Q0[0, 1], Q0[1, 1], R0[0, 0], R0[1, 0], v0[0], v0[1]]
            assert [s.name for s in system.state] == ["Q_11", "Q_12", "Q_22", "R_11", "R_21", "v_1", "v_2"]
            lookup = {"A_1": params["A_1"], "T_11": T[0, 0], "tau": params["tau"], "tau_v": params["tau_v"]}
            pv = [lookup[p.name] for p in system.params]
            sol = solve_ivp(lambda t, y: f(y, pv), (0, times[-1]), y0, t_eval=times, rtol=1e-10, atol=1e-12)
            simv = np.array([[q[0, 0], q[0, 1], q[1, 1], r[0, 0], r[1, 0], v[0], v[1]]
                             for q, r, v in zip(sim["Q"], sim["R"], sim["v"])])
            devs.append(np.abs(simv - sol.y.T).max())
        rms.append(float(np.sqrt(np.mean(np.square(devs)))))
    assert rms[0] / rms[1] > 1.4, rms  # sqrt(4) = 2 expected; no convergence would give about 1
    assert rms[1] * np.sqrt(800) < 1.0, rms


def test_cli_derive_committee(capsys):
    from helpers import run_cli
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--K", "1", "--M-teacher", "1")
    assert code == 0 and "dR_{11}" in out and "dQ_{11}" in out
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--K", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--plateau", "0.5", "--format", "latex")
    assert code == 2 and err.strip().splitlines() == ["symvae: error: --plateau prints markdown or json, not latex"]


def test_symmetric_plateau_of_saad_and_solla():
    """The published symmetric (plateau) fixed point for K = M, T = I, small tau (Saad & Solla 1995):
    Q_ik = 1/(2K - 1) for all i, k, R_in = 1/sqrt(K(2K - 1)), with eg = (K/pi)[pi/6 - K arcsin(1/(2K))]
    (0.011610840... for K = 2): the O(tau) drift of the derived ODEs vanishes there and their eg has that value."""
    machine = SAAD_SOLLA
    system = derived(machine)
    K = machine.K
    tau = sp.Symbol("tau", real=True)
    point = {machine.Q(i, k): sp.Rational(1, 2 * K - 1) for i in range(K) for k in range(K)}
    point.update({machine.R(i, n): 1 / sp.sqrt(K * (2 * K - 1)) for i in range(K) for n in range(K)})
    point.update({machine.T(n, m): int(n == m) for n in range(K) for m in range(K)})
    for e in system.rhs:
        assert abs(float(sp.diff(e, tau).subs(tau, 0).subs(point))) < 1e-14
    eg = float(system.observables["eg"].subs(point))
    assert abs(eg - K / np.pi * (np.pi / 6 - K * np.arcsin(1 / (2 * K)))) < 1e-14


@pytest.mark.parametrize("flags,machine", [((), SAAD_SOLLA),
                                           (("--M-teacher", "1", "--both-layers"),
                                            CommitteeMachine(K=2, M_teacher=1, train_second_layer=True))],
                         ids=["first_layer_K2_M2", "both_layers_K2_M1"])
def test_cli_json_equations_are_the_published_odes(capsys, flags, machine):
    """`symvae derive --model committee --format json`: its equation texts, read back by SymPy here, equal the
    published right-hand sides at random points; `--format python` carries the same texts."""
    import json

    from helpers import run_cli
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--K", "2", "--M-teacher", "2", *flags,
                             "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "committee" and data["K"] == 2 and data["train_second_layer"] == machine.train_second_layer
    names = data["state"] + data["params"]
    local = {n: sp.Symbol(n, real=True) for n in names}
    exprs = {k: sp.parse_expr(v, local_dict=local) for k, v in data["equations"].items()}
    f = sp.lambdify([local[n] for n in names], [exprs[s] for s in data["state"]], modules="numpy")
    rng = np.random.default_rng(7)
    K, M = machine.K, machine.M_teacher
    for _ in range(3):
        Q, R, T, v, A, tau, tau_v = _values(machine, rng)
        dQ, dR, dv = published_rhs(Q, R, T, v, A, tau, tau_v, machine.train_second_layer)
        values = {s.name: x for s, x in _subs(machine, Q, R, T, v, A, tau, tau_v).items()}
        got = dict(zip(data["state"], f(*[values[n] for n in names])))
        want = {machine.Q(i, k).name: dQ[i, k] for i in range(K) for k in range(i, K)}
        want.update({machine.R(i, n).name: dR[i, n] for i in range(K) for n in range(M)})
        if machine.train_second_layer:
            want.update({machine.v[i].name: dv[i] for i in range(K)})
        assert set(got) == set(want)
        for name, value in want.items():
            assert abs(got[name] - value) < 1e-12 * (1 + abs(value)), name
    code, py, err = run_cli(capsys, "derive", "--model", "committee", "--K", "2", "--M-teacher", "2", *flags,
                            "--format", "python")
    assert code == 0 and all(repr(text) in py for text in data["equations"].values())


def test_cli_plateau_json(capsys):
    """`--plateau TAU --format json`: at small tau the plateau is the published symmetric point (Q_ik = 1/(2K - 1),
    R_in = 1/sqrt(K(2K - 1)), eg as in test_symmetric_plateau_of_saad_and_solla) and lambda/tau approaches
    (2/pi) K / (sqrt(2K - 1)(2K + 1)^(3/2))."""
    import json

    from helpers import run_cli
    code, out, err = run_cli(capsys, "derive", "--model", "committee", "--K", "2", "--M-teacher", "2", "--plateau",
                             "1e-4", "--format", "json")
    assert code == 0, err
    p = json.loads(out)
    K = 2
    assert p["Q_ii"] == pytest.approx(1 / (2 * K - 1), abs=1e-3) and p["Q_ik"] == pytest.approx(1 / 3, abs=1e-3)
    assert p["R_in"] == pytest.approx(1 / np.sqrt(K * (2 * K - 1)), abs=1e-3)
    assert p["eg"] == pytest.approx(K / np.pi * (np.pi / 6 - K * np.arcsin(1 / (2 * K))), abs=1e-5)
    published = 2 / np.pi * K / (np.sqrt(2 * K - 1) * (2 * K + 1) ** 1.5)
    assert p["escape_rate"] / 1e-4 == pytest.approx(published, rel=1e-2)
    assert p["plateau_length_per_decade"] == pytest.approx(np.log(10) / p["escape_rate"], rel=1e-12)
    assert p["unstable_directions"] == 1
