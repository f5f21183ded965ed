"""The shallow non-linear autoencoder of Refinetti & Goldt 2022 (x_hat = W erf(W~ x/sqrt(2N))/sqrt(N), untied, online
SGD on spiked data with finitely many spikes and an isotropic bulk), derived from the VAE model definition at
D = 0, beta = 0, against finite-N SGD with hand-written gradients; and the sequential learning of the spikes."""
import functools
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from symvae.derive._autoencoder import derive_autoencoder
from symvae.errors import DerivationError
from symvae.model import LinearVAE, Model
from symvae.model._autoencoder import shallow_autoencoder
from symvae.simulate._autoencoder import simulate_autoencoder

RHO, ETA, TAU = (3.0, 1.5), 1.0, 0.2
INIT = dict(m_11=0.05, m_22=0.05, m_tilde_11=0.05, m_tilde_22=0.05, Q_11=0.1, Q_22=0.1, Q_tilde_11=0.1,
            Q_tilde_22=0.1)


@functools.lru_cache(maxsize=None)
def _system():
    return derive_autoencoder(shallow_autoencoder(M=2, M_star=2, activation="erf"))


def _ode(times):
    s = _system()
    names = [x.name for x in s.state]
    f = s.numpy_rhs()
    p = [dict(eta=ETA, rho_1=RHO[0], rho_2=RHO[1], tau=TAU)[q.name] for q in s.params]
    sol = solve_ivp(lambda t, y: f(y, p), (0, times[-1]), [INIT.get(n, 0.0) for n in names], t_eval=times,
                    rtol=1e-10, atol=1e-12)
    assert sol.status == 0
    return dict(zip(names, sol.y))


def _start_vectors(N, seeds, rng):
    """Rows [w*_1, w*_2, W_1, W_2, W~_1, W~_2] with exactly the Gram matrix of INIT (T = I)."""
    G = np.eye(6)
    for k in range(2):
        for l in range(2):
            G[2 + k, l] = G[l, 2 + k] = INIT.get(f"m_{k + 1}{l + 1}", 0.0)
            G[4 + k, l] = G[l, 4 + k] = INIT.get(f"m_tilde_{k + 1}{l + 1}", 0.0)
        G[2 + k, 2 + k] = INIT[f"Q_{k + 1}{k + 1}"]
        G[4 + k, 4 + k] = INIT[f"Q_tilde_{k + 1}{k + 1}"]
    w, V = np.linalg.eigh(G)
    assert w.min() > 0
    F = V * np.sqrt(w)
    return np.stack([F @ (np.linalg.qr(rng.normal(size=(N, 6)))[0].T * math.sqrt(N)) for _ in range(seeds)])


def _cosine_time(m_tilde, Q_tilde, level=0.5):
    """First time the cosine m~_kk/sqrt(Q~_kk) of encoder unit k with spike k reaches ``level`` (grid index)."""
    c = m_tilde / np.sqrt(Q_tilde)
    return int(np.argmax(c >= level)) if np.any(c >= level) else None


def test_the_model_definition_expresses_the_autoencoder():
    s = _system()
    assert [p.name for p in s.params] == ["eta", "rho_1", "rho_2", "tau"]  # D = 0 removed, no beta, no lam
    assert len(s.state) == 18
    with pytest.raises(DerivationError):
        derive_autoencoder(Model(vae=LinearVAE(M=1, encoder_activation="erf")))


def test_derived_odes_against_sgd_and_sequential_learning():
    """N = 500, 6 seeds, t <= 30: every diagonal overlap (m_kk, m~_kk, Q_kk, Q~_kk, R_kk) of SGD follows the derived
    ODE (root mean square of (mean - ODE)/s.e. over times and overlaps below 2; measured 1.29); the strong spike
    (rho = 3) is learned before the weak one (rho = 1.5) -- in the ODE the encoder cosine with spike 1 reaches 0.5
    at t = 3, with spike 2 at t = 6 -- and the mean of SGD does so at the same times (measured 3 and 6)."""
    times = np.arange(0.0, 30.0 + 1e-9, 1.0)
    Y = _ode(times)
    N, seeds = 500, 6
    V = _start_vectors(N, seeds, np.random.default_rng(7))
    sim = simulate_autoencoder(V[:, :2], V[:, 2:4], V[:, 4:], RHO, ETA, TAU, times, seed=8)
    zs = []
    for key in ("m", "m_tilde", "Q", "Q_tilde", "R"):
        for k in range(2):
            x = sim[key][:, :, k, k]
            se = x[:, 1:].std(axis=0, ddof=1) / math.sqrt(seeds)
            zs.append((x[:, 1:].mean(axis=0) - Y[f"{key}_{k + 1}{k + 1}"][1:]) / se)
    rms = float(np.sqrt(np.mean(np.concatenate(zs) ** 2)))
    assert rms < 2, rms
    t1 = _cosine_time(Y["m_tilde_11"], Y["Q_tilde_11"])
    t2 = _cosine_time(Y["m_tilde_22"], Y["Q_tilde_22"])
    assert t1 is not None and t2 is not None and t2 >= 1.5 * t1, (t1, t2)
    mean = {k: sim[k].mean(axis=0) for k in ("m_tilde", "Q_tilde")}
    s1 = _cosine_time(mean["m_tilde"][:, 0, 0], mean["Q_tilde"][:, 0, 0])
    s2 = _cosine_time(mean["m_tilde"][:, 1, 1], mean["Q_tilde"][:, 1, 1])
    assert s1 is not None and s2 is not None and abs(s1 - t1) <= 1 and abs(s2 - t2) <= 1, (s1, s2, t1, t2)


def test_sigmoidal_untied_autoencoder_moves_to_the_linear_regime():
    """Long times (ODE, t = 200): after learning the spikes the encoder norms Q~_kk shrink while the decoder norms
    Q_kk keep growing (the erf is driven into its linear region, its output rescaled by the decoder)."""
    times = np.array([0.0, 20.0, 60.0, 200.0])
    Y = _ode(times)
    for k in (1, 2):
        assert Y[f"Q_tilde_{k}{k}"][3] < Y[f"Q_tilde_{k}{k}"][2] < Y[f"Q_tilde_{k}{k}"][1]
        assert Y[f"Q_{k}{k}"][3] > Y[f"Q_{k}{k}"][2] > Y[f"Q_{k}{k}"][1]
