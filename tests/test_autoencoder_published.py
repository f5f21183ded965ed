"""The derived ODEs of the shallow autoencoder against the published ODEs of Refinetti & Goldt (ICML 2022,
arXiv:2201.02115), term by term, through an exact map between the two descriptions (finitely many spikes).

Published formulation (code: github.com/mariaref/NonLinearShallowAE, commit 6803ac0454c6de41925ff05df9b5a8a9f0b32673,
``src/analytical_updates.py`` and ``src/analyticalUtils.py``, driven by ``train_autoencoder.py``): input x in R^D with
covariance Omega = sum_tau rho_tau psi_tau psi_tau^T / D (|psi_tau|^2 = D), encoder W (K x D), decoder V (K x D),
x_hat = V^T g(W x / sqrt(D)), loss (1/2D)|x - x_hat|^2, SGD step lr/D on W and lr on V, t = steps/D. Densities per
eigenvector, with w_k(tau) = W_k.psi_tau/sqrt(D), v_k(tau) = V_k.psi_tau/sqrt(D):
q^kl = w_k w_l, r^kl = v_k w_l/sqrt(D), t^kl = v_k v_l/D; Q1 = sum rho q/D = W Omega W^T/D, R1 = sum rho r/D =
V Omega W^T/D^1.5, T1 = sum rho t/D = V Omega V^T/D^2, T0 = V V^T/D. Only O(lr) terms are kept.

The map (exact at any finite N = D, no limit), with our decoder W (N x M) and encoder W~ (M x N): x_pub = sqrt(N) x,
encoder W_pub = W~/sqrt(N), decoder V_pub = W^T, lr = tau on both layers, same time. Then x_hat_pub = sqrt(N) x_hat,
the two per-sample losses are equal and the two SGD steps coincide (their lr/D on W_pub is our tau on W~).
The eigenvalues of Omega are N (rho_j + eta) (spikes) and N eta (the bulk, multiplicity N - M*), and
  spike j:  q_j = m~_j m~_j^T,  r_j = m_j m~_j^T,  t_j = m_j m_j^T   (m_j, m~_j: column j),
  bulk:     sum q = Q~ - m~ m~^T,  sum r = R - m m~^T,  sum t = Q - m m^T,   T0 = Q,
  Q1 = C = m~ diag(rho) m~^T + eta Q~,  R1 = H = m diag(rho) m~^T + eta R,  T1 = G = m diag(rho) m^T + eta Q.
Their equations are linear in the densities with coefficients depending on the eigenvalue only through rho_tau/D, so
summing the bulk eigenvectors (all with eigenvalue N eta) closes: finitely many classes. Their spike eigenvalues "prop.
to N" and O(1) bulk are the region eta = O(1/N), Q~ = O(N) of the same equations.

Compared: the tau-linear part of our derived RHS (exact coefficient extraction in SymPy), pushed forward to the class
densities, against an independent numpy transcription of their code, to 1e-10 relative, at random points, M = M* = 1,
M = M* = 2, M = 1 < M* = 2 (erf) and M = M* = 2 (linear); also encoder-only and decoder-only steps separately. Our
O(tau^2) part (absent there) is checked to be exactly eta times the second moments of the increments, i.e. O(1/D) in
their scaling.
"""
import functools
import math

import numpy as np
import pytest
import sympy as sp

from symvae.derive._autoencoder import derive_autoencoder
from symvae.model import LinearVAE, Model, OnlineSGD, SpikedCovariance
from symvae.model._autoencoder import shallow_autoencoder

RTOL = 1e-10

# ------------------------------------------------------------------------------------------------------------------
# Independent transcription of the published ODEs, following mariaref/NonLinearShallowAE@6803ac0 line by line:
#   src/analyticalUtils.py: I2_erf, I21_erf, I22_erf, J2_erf, I3_erf and the *_linear versions (Gaussian integrals);
#   src/analytical_updates.py: dq_comp/update_q, dt_comp/update_t, dr_dw_comp + dr_dv_comp/update_r,
#   dt0_comp/update_t0.
# These are the per-eigenvector ODEs of the paper (arXiv:2201.02115) for the densities q_tau, r_tau, t_tau and
# for T0; the transcription follows the code, not the typeset equations (their numbers were not checked). The code
# uses them unchanged in train_autoencoder.py when every eigenvalue is tracked (low_rank == D). Differences from the
# code, none of which changes a value: one K x K block per eigenvalue class instead of vectors over tau; no
# multiprocessing pool; I3_erf without its "lambda3 <= 0" fallback (not reached at the positive-definite points used
# here); the step split into lr_W (encoder terms: dq, dr_dw) and lr_V (decoder terms: dt, dr_dv, dt0) -- their code
# has lr_W = lr_V = lr.
# ------------------------------------------------------------------------------------------------------------------


def _I2_erf(C):  # <g(x1) g(x2)>
    return 2 / math.pi * math.asin(C[0, 1] / math.sqrt((1 + C[0, 0]) * (1 + C[1, 1])))


def _I21_erf(C):  # <g'(x1) x1 x2>
    return math.sqrt(2 / math.pi) * C[0, 1] / (1 + C[0, 0]) ** 1.5


def _I22_erf(C):  # <g'(x1) x2^2>
    return math.sqrt(2 / math.pi) * (C[1, 1] + C[0, 0] * C[1, 1] - C[0, 1] ** 2) / (1 + C[0, 0]) ** 1.5


def _J2_erf(C):  # <x1 g(x2)>
    return C[0, 1] * math.sqrt(2) / math.sqrt(math.pi * (1 + C[1, 1]))


def _I3_erf(C):  # <g'(x1) x2 g(x3)>
    lambda3 = (1 + C[0, 0]) * (1 + C[2, 2]) - C[0, 2] ** 2
    return 2 / math.pi / math.sqrt(lambda3) * (C[1, 2] * (1 + C[0, 0]) - C[0, 1] * C[0, 2]) / (1 + C[0, 0])


INTEGRALS = {
    "erf": dict(J2=_J2_erf, I2=_I2_erf, I21=_I21_erf, I22=_I22_erf, I3=_I3_erf),
    "linear": dict(J2=lambda C: C[0, 1], I2=lambda C: C[0, 1], I21=lambda C: C[0, 1], I22=lambda C: C[1, 1],
                   I3=lambda C: C[1, 2]),
}


def _C2(a, b, c):
    return np.array([[a, b], [b, c]])


def _C3(Q1, i, j, k):
    """Covariance of (lambda_i, lambda_j, lambda_k)."""
    idx = (i, j, k)
    return np.array([[Q1[p, q] for q in idx] for p in idx])


def _dq_comp(k, l, q, r, rho, D, T0, Q1, R1, T1, I):
    C2 = _C2(Q1[k, k], R1[k, k], T1[k, k])
    det = Q1[k, k] * T1[k, k] - R1[k, k] ** 2
    C = I["I21"](C2) * (T1[k, k] * q[k, l] - R1[k, k] * r[k, l])
    C += I["I22"](C2) * (Q1[k, k] * r[k, l] - R1[k, k] * q[k, l])
    C /= det
    A = 0.0
    for a in range(Q1.shape[0]):
        if a == k:
            continue
        det = Q1[k, k] * Q1[a, a] - Q1[k, a] ** 2
        Aa = I["I3"](_C3(Q1, k, k, a)) * (Q1[a, a] * q[k, l] - Q1[k, a] * q[a, l])
        Aa += I["I3"](_C3(Q1, k, a, a)) * (Q1[k, k] * q[a, l] - Q1[k, a] * q[k, l])
        A -= Aa * T0[k, a] / det
    B = -T0[k, k] / Q1[k, k] * I["I3"](_C3(Q1, k, k, k)) * q[k, l]
    return (A + B + C) * rho


def _dt_comp(k, l, r, t, rho, D, T0, Q1, R1, T1, I):
    dd = I["J2"](_C2(Q1[k, k], Q1[k, k], Q1[k, k])) / Q1[k, k] * rho * r[l, k]
    dd -= sum(I["I2"](_C2(Q1[k, k], Q1[k, a], Q1[a, a])) * t[a, l] * D for a in range(Q1.shape[0]))
    return dd


def _dr_dv_comp(k, l, q, r, rho, D, T0, Q1, R1, T1, I):
    dd = I["J2"](_C2(Q1[k, k], Q1[k, k], Q1[k, k])) / Q1[k, k] * q[k, l] * rho / D
    dd -= sum(I["I2"](_C2(Q1[k, k], Q1[k, a], Q1[a, a])) * r[a, l] for a in range(Q1.shape[0]))
    return dd


def _dr_dw_comp(k, l, r, t, rho, D, T0, Q1, R1, T1, I):
    C2 = _C2(Q1[l, l], R1[l, l], T1[l, l])
    det = Q1[l, l] * T1[l, l] - R1[l, l] ** 2
    C = I["I21"](C2) * (T1[l, l] * r[k, l] - R1[l, l] * t[k, l])
    C += I["I22"](C2) * (Q1[l, l] * t[k, l] - R1[l, l] * r[k, l])
    C /= det
    A = 0.0
    for a in range(Q1.shape[0]):
        if a == l:
            continue
        det = Q1[l, l] * Q1[a, a] - Q1[l, a] ** 2
        Aa = I["I3"](_C3(Q1, l, l, a)) * (Q1[a, a] * r[k, l] - Q1[l, a] * r[k, a])
        Aa += I["I3"](_C3(Q1, l, a, a)) * (Q1[l, l] * r[k, a] - Q1[l, a] * r[k, l])
        A -= Aa * T0[l, a] / det
    B = -T0[l, l] / Q1[l, l] * I["I3"](_C3(Q1, l, l, l)) * r[k, l]
    return (A + B + C) * rho / D


def _dt0_comp(k, l, T0, Q1, R1, T1, I):
    dd = I["J2"](_C2(Q1[k, k], Q1[k, k], Q1[k, k])) / Q1[k, k] * R1[l, k]
    dd -= sum(I["I2"](_C2(Q1[k, k], Q1[k, a], Q1[a, a])) * T0[a, l] for a in range(Q1.shape[0]))
    return dd


def published_rates(classes, T0, D, lr_W, lr_V, activation="erf", comp=None):
    """d/dt (t = steps/D) of each class's (q, r, t) and of T0. ``classes``: [(eigenvalue rho_tau, q, r, t)], the
    densities summed over the eigenvectors of that class. ``comp`` replaces component functions (negative checks)."""
    I = INTEGRALS[activation]
    f = {"dq": _dq_comp, "dt": _dt_comp, "dr_dv": _dr_dv_comp, "dr_dw": _dr_dw_comp, **(comp or {})}
    K = T0.shape[0]
    Q1 = sum(lam * q for lam, q, r, t in classes) / D
    R1 = sum(lam * r for lam, q, r, t in classes) / D
    T1 = sum(lam * t for lam, q, r, t in classes) / D
    out = []
    for lam, q, r, t in classes:
        dq, dr, dt = np.zeros((K, K)), np.zeros((K, K)), np.zeros((K, K))
        for k in range(K):
            for l in range(K):
                args = (lam, D, T0, Q1, R1, T1, I)
                dq[k, l] = lr_W * (f["dq"](k, l, q, r, *args) + f["dq"](l, k, q, r, *args)) / D  # update_q
                dt[k, l] = lr_V * (f["dt"](k, l, r, t, *args) + f["dt"](l, k, r, t, *args)) / D  # update_t
                dr[k, l] = lr_W * f["dr_dw"](k, l, r, t, *args) + lr_V * f["dr_dv"](k, l, q, r, *args)  # update_r
        out.append((dq, dr, dt))
    dT0 = np.array([[lr_V * (_dt0_comp(k, l, T0, Q1, R1, T1, I) + _dt0_comp(l, k, T0, Q1, R1, T1, I))
                     for l in range(K)] for k in range(K)])  # update_t0
    return out, dT0


# ------------------------------------------------------------------------------------------------------------------
# Our side: the derived system, its exact tau-coefficients, random points and the map.
# ------------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _derived(M, M_star, activation="erf", split=False):
    """(system, step symbols, {order: [coefficient expressions]}) with rhs = sum_order coefficient * step^order, exact.

    split=False: the model ``shallow_autoencoder`` (one step tau); split=True: the same model with a step tau_dec on
    the decoder W and tau_enc on the encoder W~ (linear coefficients keyed "dec" and "enc")."""
    if split:
        tV, tW = sp.Symbol("tau_dec", positive=True), sp.Symbol("tau_enc", positive=True)
        model = Model(data=SpikedCovariance(M_star=M_star, per_spike_rho=True),
                      vae=LinearVAE(M=M, encoder_activation=activation, encoder_variance="fixed", beta=0, lam_W=0,
                                    lam_W_tilde=0),
                      training=OnlineSGD(tau_W=tV, tau_W_tilde=tW))
        s = derive_autoencoder(model)
        zero = {tV: 0, tW: 0}
        coeffs = {"dec": [sp.diff(e, tV).subs(zero) for e in s.rhs], "enc": [sp.diff(e, tW).subs(zero) for e in s.rhs]}
        return s, (tV, tW), coeffs
    s = derive_autoencoder(shallow_autoencoder(M, M_star, activation))
    tau = next(p for p in s.params if p.name == "tau")
    coeffs = {0: [], 1: [], 2: [], 3: []}
    for e in s.rhs:
        d1 = sp.diff(e, tau)
        d2 = sp.diff(d1, tau)
        coeffs[0].append(e.subs(tau, 0))
        coeffs[1].append(d1.subs(tau, 0))
        coeffs[2].append(d2.subs(tau, 0) / 2)
        coeffs[3].append(sp.diff(d2, tau))  # identically 0 <=> polynomial of degree <= 2 in tau
    return s, (tau,), coeffs


@functools.lru_cache(maxsize=None)
def _numeric(M, M_star, activation, split, key):
    s, steps, coeffs = _derived(M, M_star, activation, split)
    f = sp.lambdify(list(s.state) + list(s.params), coeffs[key], modules="numpy", cse=True)
    return lambda y, p: np.asarray(f(*y, *[p[q.name] for q in s.params]), dtype=float)


def random_state(M, M_star, rng):
    """(m, m~, Q, Q~, R) of a random positive-definite Gram matrix of [w*_j, W_k, W~_k]/N with w*^T w*/N = I."""
    n = M_star + 2 * M
    B = rng.normal(size=(n, n + 2))
    G = B @ B.T / (n + 2)
    T = np.eye(n)
    T[:M_star, :M_star] = np.linalg.inv(np.linalg.cholesky(G[:M_star, :M_star]))
    G = T @ G @ T.T
    a, b = M_star, M_star + M
    return G[a:b, :a], G[b:, :a], G[a:b, a:b], G[b:, b:], G[a:b, b:]


def _pack(s, m, mt, Q, Qt, R):
    M, Ms = m.shape
    v = {}
    for k in range(M):
        for j in range(Ms):
            v[f"m_{k + 1}{j + 1}"], v[f"m_tilde_{k + 1}{j + 1}"] = m[k, j], mt[k, j]
        for l in range(M):
            v[f"Q_{k + 1}{l + 1}"], v[f"Q_tilde_{k + 1}{l + 1}"], v[f"R_{k + 1}{l + 1}"] = Q[k, l], Qt[k, l], R[k, l]
    return np.array([v[x.name] for x in s.state])


def _unpack(s, y, M, Ms):
    d = dict(zip((x.name for x in s.state), y))
    m = np.array([[d[f"m_{k + 1}{j + 1}"] for j in range(Ms)] for k in range(M)])
    mt = np.array([[d[f"m_tilde_{k + 1}{j + 1}"] for j in range(Ms)] for k in range(M)])

    def sym(p):
        return np.array([[d[f"{p}_{min(k, l) + 1}{max(k, l) + 1}"] for l in range(M)] for k in range(M)])

    R = np.array([[d[f"R_{k + 1}{l + 1}"] for l in range(M)] for k in range(M)])
    return m, mt, sym("Q"), sym("Q_tilde"), R


def classes_of(m, mt, Q, Qt, R, rho, eta, D, spike_eigenvalue=None):
    """The map: our state -> the published densities, one class per spike and one for the bulk."""
    lam = [D * (r + eta) if spike_eigenvalue is None else spike_eigenvalue(r, eta, D) for r in rho]
    out = [(lam[j], np.outer(mt[:, j], mt[:, j]), np.outer(m[:, j], mt[:, j]), np.outer(m[:, j], m[:, j]))
           for j in range(len(rho))]
    out.append((D * eta, Qt - mt @ mt.T, R - m @ mt.T, Q - m @ m.T))
    return out


def pushforward(m, mt, dm, dmt, dQ, dQt, dR):
    """Our rates mapped to d/dt of the class densities (same order as ``classes_of``) and of T0 = Q."""
    Ms = m.shape[1]
    sp_ = [(np.outer(dmt[:, j], mt[:, j]) + np.outer(mt[:, j], dmt[:, j]),
            np.outer(dm[:, j], mt[:, j]) + np.outer(m[:, j], dmt[:, j]),
            np.outer(dm[:, j], m[:, j]) + np.outer(m[:, j], dm[:, j])) for j in range(Ms)]
    bulk = tuple(total - sum(x[i] for x in sp_) for i, total in enumerate((dQt, dR, dQ)))
    return sp_ + [bulk], dQ


def _point(M, Ms, rng):
    m, mt, Q, Qt, R = random_state(M, Ms, rng)
    rho, eta, D = rng.uniform(0.3, 4.0, Ms), rng.uniform(0.2, 2.0), rng.uniform(30.0, 1e5)
    p = {"eta": eta, "tau": 0.0, "tau_dec": 0.0, "tau_enc": 0.0, **{f"rho_{j + 1}": rho[j] for j in range(Ms)}}
    return (m, mt, Q, Qt, R), rho, eta, D, p


def _worst(ours, theirs):
    """Largest per-block relative difference between two ([(dq, dr, dt)], dT0) results."""
    (c1, t1), (c2, t2) = ours, theirs
    blocks = [(a, b) for x, y in zip(c1, c2) for a, b in zip(x, y)] + [(t1, t2)]
    scale = max(np.abs(b).max() for a, b in blocks)
    return max(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12 * scale) for a, b in blocks)


def _compare(M, Ms, activation, seed, *, split=None, spike_eigenvalue=None, comp=None):
    """Worst relative difference over random points between our tau-linear part (or one layer's part) and theirs."""
    s = _derived(M, Ms, activation, split is not None)[0]
    f = _numeric(M, Ms, activation, split is not None, 1 if split is None else split)
    lr_W, lr_V = {None: (1.0, 1.0), "enc": (1.0, 0.0), "dec": (0.0, 1.0)}[split]
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(5):
        state, rho, eta, D, p = _point(M, Ms, rng)
        m, mt, Q, Qt, R = state
        dm, dmt, dQ, dQt, dR = _unpack(s, f(_pack(s, *state), p), M, Ms)
        ours = pushforward(m, mt, dm, dmt, dQ, dQt, dR)
        theirs = published_rates(classes_of(*state, rho, eta, D, spike_eigenvalue), Q, D, lr_W, lr_V, activation,
                                 comp)
        worst = max(worst, _worst(ours, theirs))
    return worst


# ------------------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("M, Ms", [(1, 1), (2, 2)])
def test_derived_rhs_is_exactly_linear_plus_quadratic_in_tau(M, Ms):
    """Exact (symbolic): rhs = tau c1 + tau^2 c2, no constant and no higher term; m and m~ have no tau^2 term."""
    s, _, coeffs = _derived(M, Ms, "erf", False)
    assert all(c == 0 for c in coeffs[0]) and all(c == 0 for c in coeffs[3])
    for x, c in zip(s.state, coeffs[2]):
        assert (c == 0) == x.name.startswith("m"), x


@pytest.mark.parametrize("M, Ms, activation", [(1, 1, "erf"), (2, 2, "erf"), (1, 2, "erf"), (2, 2, "linear")])
def test_tau_linear_part_equals_the_published_odes(M, Ms, activation):
    """At 5 random points (random PD Gram matrix, rho_j in [0.3, 4], eta in [0.2, 2], D in [30, 1e5]) every density
    rate of every class and dT0/dt agree to 1e-10 relative (measured: below 1e-14). D cancels, as the map says."""
    assert _compare(M, Ms, activation, seed=10 * M + Ms) < RTOL


@pytest.mark.parametrize("layer", ["enc", "dec"])
def test_encoder_and_decoder_terms_agree_separately(layer):
    """Step tau_enc (encoder W~ only) or tau_dec (decoder W only) against their encoder terms (dq, dr_dw; lr_V = 0)
    or decoder terms (dt, dr_dv, dt0; lr_W = 0): no compensation between the two layers (measured: below 1e-14)."""
    assert _compare(2, 2, "erf", seed=7, split=layer) < RTOL


def test_a_wrong_map_or_a_wrong_term_is_detected():
    """The comparison can fail: spike eigenvalue D rho_j instead of D (rho_j + eta), or a factor 2 on the
    rho/D term of dr_dv_comp, or on the I22 term of dq_comp (measured worst relative differences: 3.1, 0.56, 0.82)."""
    assert _compare(2, 2, "erf", seed=3, spike_eigenvalue=lambda rho, eta, D: D * rho) > 1e-3

    def dr_dv_doubled(k, l, q, r, rho, D, T0, Q1, R1, T1, I):
        return _dr_dv_comp(k, l, q, r, rho, D, T0, Q1, R1, T1, I) + \
            I["J2"](_C2(Q1[k, k], Q1[k, k], Q1[k, k])) / Q1[k, k] * q[k, l] * rho / D

    assert _compare(2, 2, "erf", seed=3, comp=dict(dr_dv=dr_dv_doubled)) > 1e-3

    def dq_I22_doubled(k, l, q, r, rho, D, T0, Q1, R1, T1, I):
        I2x = dict(I, I22=lambda C: 2 * I["I22"](C))
        return _dq_comp(k, l, q, r, rho, D, T0, Q1, R1, T1, I2x)

    assert _compare(2, 2, "erf", seed=3, comp=dict(dq=dq_I22_doubled)) > 1e-3


# The O(tau^2) part: second moments of the increments, computed independently in closed form. With
# a_k = l_k - sum_b Q_kb g(h_b) (h = W~x/sqrt(N), l = W^T x/sqrt(N)), |x|^2/N -> eta and e.x/N -> eta give
#   dQ_kl: eta <g_k g_l>,  dR_kl: eta <g_k a_l g'_l>,  dQ~_kl: eta <a_k a_l g'_k g'_l>,  dm = dm~ = 0.
# For erf, g'(x) = sqrt(2/pi) exp(-x^2/2): each g' factor is a Gaussian reweighting of the fields' covariance.
_SQ = math.sqrt(2 / math.pi)


def _moment(Sig, M, reweight, kind, a, b):
    """< prod_{i in reweight} g'(h_i) * X >, X = l_a l_b ("ll"), l_a g(h_b) ("lg") or g(h_a) g(h_b) ("gg");
    fields z = (h_1..h_M, l_1..l_M) with covariance Sig, g = erf(./sqrt 2)."""
    P = np.zeros(2 * M)
    for i in reweight:
        P[i] += 1
    A = np.eye(2 * M) + P[:, None] * Sig
    factor = _SQ ** len(reweight) / math.sqrt(np.linalg.det(A))
    S = Sig @ np.linalg.inv(A)
    S = (S + S.T) / 2
    if kind == "ll":
        return factor * S[M + a, M + b]
    if kind == "lg":
        return factor * S[M + a, b] * _SQ / math.sqrt(1 + S[b, b])
    return factor * 2 / math.pi * math.asin(S[a, b] / math.sqrt((1 + S[a, a]) * (1 + S[b, b])))


@pytest.mark.parametrize("M, Ms", [(1, 1), (2, 2)])
def test_tau_squared_part_is_eta_times_the_second_moments(M, Ms):
    """Our tau^2 coefficients equal eta times the second moments above (1e-10 relative; measured below 1e-15).
    Under the map eta = (bulk eigenvalue)/D, so in the published scaling (bulk eigenvalue O(1)) they are O(1/D)."""
    s = _derived(M, Ms, "erf", False)[0]
    f = _numeric(M, Ms, "erf", False, 2)
    rng = np.random.default_rng(20 + M)
    for _ in range(4):
        (m, mt, Q, Qt, R), rho, eta, D, p = _point(M, Ms, rng)
        dm, dmt, dQ, dQt, dR = _unpack(s, f(_pack(s, m, mt, Q, Qt, R), p), M, Ms)
        C = mt @ np.diag(rho) @ mt.T + eta * Qt
        H = m @ np.diag(rho) @ mt.T + eta * R
        G = m @ np.diag(rho) @ m.T + eta * Q
        Sig = np.block([[C, H.T], [H, G]])
        rng_M = range(M)
        eQ = np.array([[eta * _moment(Sig, M, [], "gg", k, l) for l in rng_M] for k in rng_M])
        eR = np.array([[eta * (_moment(Sig, M, [l], "lg", l, k)
                               - sum(Q[l, b] * _moment(Sig, M, [l], "gg", k, b) for b in rng_M))
                        for l in rng_M] for k in rng_M])
        eQt = np.array([[eta * (_moment(Sig, M, [k, l], "ll", k, l)
                                - sum(Q[l, b] * _moment(Sig, M, [k, l], "lg", k, b)
                                      + Q[k, b] * _moment(Sig, M, [k, l], "lg", l, b) for b in rng_M)
                                + sum(Q[k, b] * Q[l, c] * _moment(Sig, M, [k, l], "gg", b, c)
                                      for b in rng_M for c in rng_M))
                         for l in rng_M] for k in rng_M])
        assert not dm.any() and not dmt.any()
        for ours, ref in ((dQ, eQ), (dR, eR), (dQt, eQt)):
            np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


def test_full_rhs_reduces_to_the_published_odes_in_their_scaling():
    """Their regime mapped into ours: bulk eigenvalue O(1), i.e. eta = eta_pub/D, encoder bulk norm Q~ - m~m~^T = D q0,
    decoder-encoder bulk overlap sqrt(D) r0 (the largest a positive Gram matrix allows), rho_j, m, m~, Q of order 1.
    With the whole derived RHS at tau = lr (O(tau^2) kept) the rates of T0, Q1, R1, T1 and of the spike densities
    differ from theirs by a relative amount c/D: measured 1.1e-4 at D = 1e3 and 1.1e-6 at D = 1e5, all from the
    tau^2 eta <g g> term of dT0/dt (Q1, R1, T1: 2e-7 -> 2e-11, i.e. 1/D^2; spike densities: rounding). The bulk part
    eta (Q~ - m~m~^T) of Q1, frozen in their spike+bulk code, moves at a relative rate O(1/D)."""
    M = Ms = 2
    s = _derived(M, Ms, "erf", False)[0]
    rhs = s.numpy_rhs()
    rng = np.random.default_rng(5)
    n = Ms + 2 * M
    B = rng.normal(size=(n, n + 2))
    G0 = B @ B.T / (n + 2)
    G0[:Ms, :] = G0[:, :Ms] = 0
    G0[:Ms, :Ms] = np.eye(Ms)
    m, mt = 0.8 * rng.uniform(-1, 1, (M, Ms)), 0.8 * rng.uniform(-1, 1, (M, Ms))
    t0, r0, q0 = G0[Ms:Ms + M, Ms:Ms + M], G0[Ms:Ms + M, Ms + M:], G0[Ms + M:, Ms + M:]  # bulk Gram, PD
    rho, eta_pub, lr = np.array([3.0, 1.5]), 1.0, 0.3
    diffs, bulk_rate = [], []
    for D in (1e3, 1e5):
        eta = eta_pub / D
        Q, Qt, R = m @ m.T + t0, mt @ mt.T + D * q0, m @ mt.T + math.sqrt(D) * r0
        p = {"eta": eta, "tau": lr, **{f"rho_{j + 1}": rho[j] for j in range(Ms)}}
        dy = rhs(_pack(s, m, mt, Q, Qt, R), [p[q.name] for q in s.params])  # the whole derived RHS
        dm, dmt, dQ, dQt, dR = _unpack(s, dy, M, Ms)
        ours_c, ours_T0 = pushforward(m, mt, dm, dmt, dQ, dQt, dR)
        classes = classes_of(m, mt, Q, Qt, R, rho, eta, D)
        th_c, th_T0 = published_rates(classes, Q, D, lr, lr)

        def macro(c, dT0):  # rates of Q1, R1, T1 (eigenvalue-weighted class sums), T0 and the spike densities
            w = [lam / D for lam, *_ in classes]
            sums = [sum(wi * ci[i] for wi, ci in zip(w, c)) for i in range(3)]
            return [*sums, dT0] + [x for ci in c[:-1] for x in ci]

        a, b = macro(ours_c, ours_T0), macro(th_c, th_T0)
        diffs.append(max(np.abs(x - y_).max() / np.abs(y_).max() for x, y_ in zip(a, b)))
        Q1_bulk = eta * classes[-1][1]
        bulk_rate.append(np.abs(eta * ours_c[-1][0]).max() / np.abs(Q1_bulk).max())
    assert 1e-5 < diffs[0] < 1e-2 and 95 < diffs[0] / diffs[1] < 105, diffs
    assert bulk_rate[0] < 1e-2 and 95 < bulk_rate[0] / bulk_rate[1] < 105, bulk_rate
