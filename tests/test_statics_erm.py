"""Finite-N ground truth for the statics: BBP spectrum, the two ERM solvers, and convergence to the replica limit."""
import math

import numpy as np
import pytest
import scipy.linalg

from symvae.model import make_model
from symvae.statics import (erm_exact, erm_gradient, finite_size_study, literal_loss, outlier, sample_dataset,
                            solve_statics, spectrum_slots)

PARAMS = dict(rho=1.5, eta=1.0, beta=0.5, lam=0.3)


def test_bbp_outlier_and_overlap_against_sampled_spectra():
    rho, eta, alpha, N = 2.0, 1.0, 2.0, 500
    s, phi = outlier(rho, eta, alpha)
    assert abs(s - eta * (1 + rho / eta) * (1 + eta / (alpha * rho))) < 1e-14
    model = make_model("base")
    tops, overlaps, seconds = [], [], []
    for seed in range(6):
        data = sample_dataset(model, dict(rho=rho, eta=eta), N, alpha, seed=seed)
        w, V = scipy.linalg.eigh(data.S, subset_by_index=[N - 2, N - 1])
        tops.append(w[-1])
        seconds.append(w[-2])
        overlaps.append((V[:, -1] @ data.W_star[:, 0]) ** 2 / N)
    assert abs(np.mean(tops) - s) < 4 * np.std(tops) / math.sqrt(6) + 0.02
    assert abs(np.mean(overlaps) - phi) < 4 * np.std(overlaps) / math.sqrt(6) + 0.02
    edge = spectrum_slots([rho], eta, alpha, 2)[1].s
    assert abs(np.mean(seconds) - edge) < 0.1  # the second eigenvalue at the bulk edge (N^-2/3 corrections)


@pytest.mark.parametrize("variant, extra", [("base", {}), ("tied", {}), ("fixed_D", {"D_1": 0.4}),
                                            ("fixed_sigma2", {"sigma2": 0.7}), ("lam_W_only", {}),
                                            ("lam_W_tilde_only", {})])
def test_exact_and_gradient_solvers_agree_at_finite_N(variant, extra):
    model = make_model(variant)
    params = {**PARAMS, **extra}
    data = sample_dataset(model, params, 80, 2.0, seed=3)
    a = erm_exact(model, params, data)
    b = erm_gradient(model, params, data, starts=2, seed=1)
    assert abs(a.train_loss - b.train_loss) < 1e-9
    assert b.train_loss >= a.train_loss - 1e-12  # the exact solver is the global minimum
    for key in ("Q", "Q_tilde", "D"):
        assert np.allclose(a.order[key], b.order[key], rtol=0, atol=1e-5), key
    for key in ("m", "m_tilde", "R"):  # up to the sign symmetry of each latent
        assert np.allclose(np.abs(a.order[key]), np.abs(b.order[key]), rtol=0, atol=1e-5), key


def test_exact_and_gradient_solvers_agree_with_two_latents():
    model = make_model("base", M=2, M_star=1)
    data = sample_dataset(model, PARAMS, 60, 3.0, seed=5)
    a = erm_exact(model, PARAMS, data)
    b = erm_gradient(model, PARAMS, data, starts=3, seed=2)
    assert abs(a.train_loss - b.train_loss) < 1e-9
    assert np.allclose(np.sort(np.diag(a.order["Q"])), np.sort(np.diag(b.order["Q"])), atol=1e-5)


def test_literal_loss_gradient_and_stationarity_of_the_exact_solution():
    model = make_model("base", M=2, M_star=1)
    data = sample_dataset(model, PARAMS, 50, 2.0, seed=0)
    L = literal_loss(model, PARAMS, data)
    exact = erm_exact(model, PARAMS, data)
    theta = L.join(exact.W, exact.W_tilde, exact.D)
    value, grad = L.value_and_grad(theta)
    assert abs(value - exact.train_loss) < 1e-12  # the literal loss equals the derived eigen-solution's value
    assert np.max(np.abs(grad)) < 1e-10
    rng = np.random.default_rng(1)
    theta = rng.normal(size=theta.shape)
    _, grad = L.value_and_grad(theta)
    for _ in range(3):
        d = rng.normal(size=theta.shape)
        h = 1e-6
        fd = (L.value_and_grad(theta + h * d)[0] - L.value_and_grad(theta - h * d)[0]) / (2 * h)
        assert abs(fd - grad @ d) < 1e-6 * (1 + abs(fd))


def test_finite_N_minimisers_approach_the_replica_prediction():
    """Means over 16 datasets at N = 100, 200, 400 lie within 4 standard errors of the N -> infinity replica values,
    and the sample-to-sample spread shrinks like N^-1/2 (the slow test goes to N = 2000)."""
    model = make_model("base")
    alpha = 2.0
    limit = solve_statics(model, PARAMS, alpha)
    spreads = []
    for N in (100, 200, 400):
        eg, Q = [], []
        for seed in range(16):
            r = erm_exact(model, PARAMS, sample_dataset(model, PARAMS, N, alpha, seed=seed + 31 * N))
            eg.append(r.observables["eg"])
            Q.append(r.order["Q"][0, 0])
        for vals, target in ((eg, limit.observables["eg"]), (Q, limit.order["Q"][0, 0])):
            sem = np.std(vals, ddof=1) / 4
            assert abs(np.mean(vals) - target) < 4 * sem
        spreads.append(np.std(Q, ddof=1))
    slope = np.polyfit(np.log([100, 200, 400]), np.log(spreads), 1)[0]
    assert -0.9 < slope < -0.2


@pytest.mark.slow
def test_finite_size_fit_up_to_N_2000():
    model = make_model("base")
    alpha = 2.0
    limit = solve_statics(model, PARAMS, alpha)
    study = finite_size_study(model, PARAMS, alpha, [250, 500, 1000, 2000], seeds=12)
    assert abs(study["fit"]["limit"] - limit.observables["eg"]) < 4 * study["sem"][-1]
    assert abs(study["mean"][-1] - limit.observables["eg"]) < 4 * study["sem"][-1]


@pytest.mark.slow
def test_gradient_solver_agrees_with_exact_at_N_400():
    model = make_model("base")
    data = sample_dataset(model, PARAMS, 400, 2.0, seed=11)
    a = erm_exact(model, PARAMS, data)
    b = erm_gradient(model, PARAMS, data, starts=2, seed=3)
    assert abs(a.train_loss - b.train_loss) < 1e-8
    assert np.allclose(a.order["Q"], b.order["Q"], atol=1e-4)
