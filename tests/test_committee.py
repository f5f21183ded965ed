"""The soft committee machine derived by the Gaussian-expectation engine from its model definition (issue 11, sec. 3),
against the published ODEs and against finite-N simulation."""
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
            dv[i] = tau_v * (sum(A[n] * I2(sub(i, t(n))) for n in range(M)) - sum(v[k] * I2(sub(i, k)) for k in range(K)))
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


@pytest.mark.parametrize("machine", [CommitteeMachine(K=2, M_teacher=2),
                                     CommitteeMachine(K=2, M_teacher=1, train_second_layer=True,
                                                      teacher_second_layer="free")],
                         ids=["saad_solla_K2_M2", "goldt_both_layers_K2_M1"])
def test_derived_equals_published(machine):
    """The derived right-hand sides equal the published ones at random points (to round-off)."""
    system = derive_committee(machine)
    rng = np.random.default_rng(1)
    K, M = machine.K, machine.M_teacher
    for _ in range(3):
        Q, R, T, v, A, tau, tau_v = _values(machine, rng)
        dQ, dR, dv = published_rhs(Q, R, T, v, A, tau, tau_v, machine.train_second_layer)
        derived = dict(zip(system.state, [float(e.subs(_subs(machine, Q, R, T, v, A, tau, tau_v)))
                                          for e in system.rhs]))
        for i in range(K):
            for k in range(i, K):
                assert abs(derived[machine.Q(i, k)] - dQ[i, k]) < 1e-12 * (1 + abs(dQ[i, k]))
            for n in range(M):
                assert abs(derived[machine.R(i, n)] - dR[i, n]) < 1e-12 * (1 + abs(dR[i, n]))
            if machine.train_second_layer:
                assert abs(derived[machine.v[i]] - dv[i]) < 1e-12 * (1 + abs(dv[i]))
