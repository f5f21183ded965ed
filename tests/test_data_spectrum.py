"""Spectrum fit of real data: MP law, BBP inversion, recovery of a known spiked model, bootstrap stability on the
shipped digits, and the predictions built on it."""
import math

import numpy as np
import pytest
import scipy.integrate

from symvae.data import MarchenkoPastur, fit_spiked, invert_bbp, load_dataset
from symvae.data import spike_observables, thresholds
from symvae.model import make_model
from symvae.statics import closed_form, outlier, sample_dataset


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pytest.fail("threadpoolctl (with scikit-learn) is missing: pip install -e '.[test,real]' -c constraints.txt")
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("eta,gamma", [(0.7, 0.2), (2.0, 0.03), (1.0, 2.5)])
def test_marchenko_pastur_against_quadrature(eta, gamma):
    law = MarchenkoPastur(eta, gamma)
    mass, _ = scipy.integrate.quad(law.pdf, law.lower, law.upper, limit=200)
    assert mass + law.atom == pytest.approx(1.0, abs=1e-7)
    mean, _ = scipy.integrate.quad(lambda x: x * law.pdf(x), law.lower, law.upper, limit=200)
    assert mean == pytest.approx(eta, rel=1e-7)  # MP mean eta, variance eta^2 gamma (also with the atom at 0)
    second, _ = scipy.integrate.quad(lambda x: x * x * law.pdf(x), law.lower, law.upper, limit=200)
    assert second - eta ** 2 == pytest.approx(eta ** 2 * gamma, rel=1e-6)
    for x in np.linspace(law.lower, law.upper, 7)[1:-1]:
        part, _ = scipy.integrate.quad(law.pdf, law.lower, x, limit=200)
        assert law.cdf(x) == pytest.approx(law.atom + part, abs=1e-6)


def test_bbp_inversion_inverts_the_statics_outlier_map():
    rng = np.random.default_rng(5)
    for _ in range(50):
        eta, alpha = rng.uniform(0.1, 3.0), 10 ** rng.uniform(-1, 2)
        rho = eta * math.sqrt(1 / alpha) * rng.uniform(1.05, 30)  # above BBP: rho/eta > sqrt(gamma)
        s, _ = outlier(rho, eta, alpha)
        assert invert_bbp(float(s), eta, 1 / alpha) == pytest.approx(rho, rel=1e-10)
    assert math.isnan(invert_bbp(0.9 * 0.5 * (1 + math.sqrt(0.3)) ** 2, 0.5, 0.3))  # inside the bulk


RHOS, ETA = (6.0, 3.0, 1.5), 0.7


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_recovers_a_known_spiked_model(seed):
    model = make_model("per_spike_rho", M=1, M_star=3)
    data = sample_dataset(model, {"rho_1": 6.0, "rho_2": 3.0, "rho_3": 1.5, "eta": ETA}, 200, 5.0, seed=seed)
    fit = fit_spiked(data.X, bootstrap_draws=30, null_draws=30, seed=seed)
    assert fit.K == 3
    # median matching: K/N = 1.5% of the eigenvalues are spikes, which shifts the median by < 1%
    assert fit.eta_hat == pytest.approx(ETA, rel=0.02)
    ci = fit.boot["rho_ci"]
    for k, rho in enumerate(RHOS):
        assert ci[k, 0] <= rho <= ci[k, 1]
        assert fit.boot["detected_fraction"][k] == 1.0
    # the BBP inversion removes the finite-alpha bias of the weakest spike: lam - eta overestimates rho by
    # eta (1 + ell) gamma / ell ~ 0.2 here
    naive = fit.eigenvalues[2] - fit.eta_hat
    assert abs(fit.rho_hat[2] - 1.5) < abs(naive - 1.5)
    # spike-plus-bulk data: bulk variance as MP's, refit self-consistent
    assert 0.8 < fit.gof["bulk_variance_ratio"] < 1.2 and fit.gof["self_consistent"]


def test_digits_fit_is_stable_under_bootstrap_and_not_spike_plus_bulk(digits):
    fit = fit_spiked(digits.X, bootstrap_draws=30, null_draws=40, seed=0)
    assert fit.K >= 10
    lo, hi = fit.boot["eta_ci"]
    assert (hi - lo) / 2 < 0.1 * fit.eta_hat
    for k in range(5):
        assert fit.boot["detected_fraction"][k] == 1.0
        assert (fit.boot["rho_ci"][k, 1] - fit.boot["rho_ci"][k, 0]) / 2 < 0.1 * fit.rho_hat[k]
    # calibration: disjoint halves a, b estimate rho with sd sqrt(2) sd(full), so sd(a - b)/2 = sd(full); over 20
    # random splits it should agree with the bootstrap's sd (sampling error of an sd from 20 draws ~ 16%)
    diffs = []
    for split in range(20):
        rows = np.random.default_rng(100 + split).permutation(digits.n)
        a = fit_spiked(digits.X[rows[: digits.n // 2]], null_draws=0)
        b = fit_spiked(digits.X[rows[digits.n // 2:]], null_draws=0)
        diffs.append(a.rho_hat[:4] - b.rho_hat[:4])
    ratio = np.std(diffs, axis=0, ddof=1) / 2 / fit.boot["rho_sd"][:4]
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    # the stated test: a power-law-like spectrum, not spikes on a Marchenko-Pastur bulk
    g = fit.gof
    assert g["p_value"] < 0.05 and not g["self_consistent"] and g["bulk_variance_ratio"] > 3
    assert g["spike_plus_bulk"] is False


def test_thresholds_follow_the_bbp_map_in_alpha(digits):
    fit = fit_spiked(digits.X, null_draws=0)
    for alpha in (3.0, math.inf):
        th = thresholds(fit, alpha, count=2, count_inf=0)
        g = 0.0 if math.isinf(alpha) else 1 / alpha
        for k in range(2):
            ell = fit.rho_hat[k] / fit.eta_hat
            # lam = 0: beta_c,k is the limiting k-th eigenvalue eta (1 + ell)(1 + gamma/ell) (BBP, hand-written here)
            assert th["beta_c"][k] == pytest.approx(fit.eta_hat * (1 + ell) * (1 + g / ell), rel=1e-9)
    # at the dataset's own alpha that is the sample eigenvalue the spike was inverted from
    np.testing.assert_allclose(thresholds(fit, count=3)["beta_c"], fit.eigenvalues[:3], rtol=1e-9)


def test_single_spike_closed_forms_add_up_to_the_two_latent_model():
    rho1, rho2, eta, alpha = 3.0, 1.2, 0.6, 4.0
    two = make_model("per_spike_rho", M=2, M_star=2)

    class Fit:  # the two spikes as a fit result
        rho_hat = np.array([rho1, rho2])
        eta_hat = eta

    for beta in (0.4, 2.0, 5.0):  # both latents active, one active, both collapsed
        joint = closed_form(two, {"rho_1": rho1, "rho_2": rho2, "eta": eta, "lam": 0.0, "beta": beta}, alpha)
        parts = spike_observables(Fit, beta, alpha, 2).sum(axis=0)
        obs = joint.observables
        np.testing.assert_allclose(parts, [obs["eg"], obs["rate"], obs["distortion"]], rtol=1e-9, atol=1e-12)


def test_bulk_latents_switch_on_below_the_mp_edge():
    from symvae.data import active_predicted_with_bulk
    model = make_model("per_spike_rho", M=1, M_star=1)
    data = sample_dataset(model, {"rho_1": 4.0, "eta": 1.0}, 200, 4.0, seed=3)
    fit = fit_spiked(data.X, null_draws=0)
    assert fit.K == 1
    law = fit.bulk_law()
    M = 200
    beta_c = thresholds(fit, count=1)["beta_c"]
    betas = [1.2 * law.upper, law.ppf(0.9), law.ppf(0.5), law.ppf(0.1), 0.5 * law.lower]
    predicted = active_predicted_with_bulk(fit, beta_c, betas, M)
    # lam = 0: latent k is active iff beta < lam_k, the k-th sample eigenvalue (exact solver, test_data_linear)
    measured = np.array([min(M, int(np.sum(fit.eigenvalues > b))) for b in betas])
    assert predicted[0] == measured[0] == 1 and predicted[-1] == measured[-1] == M
    # inside the bulk the MP law counts the eigenvalues above beta up to finite-N fluctuations: over seeds 0-5 of
    # this setting the difference was at most 2 (tolerance twice that)
    assert np.all(np.abs(predicted - measured) <= 4), (predicted, measured)


def test_more_coordinates_than_samples():
    # gamma = N/n = 2: half of the eigenvalues are 0 (the MP atom); eta and the spike are still recovered
    model = make_model("per_spike_rho", M=1, M_star=1)
    data = sample_dataset(model, {"rho_1": 6.0, "eta": 1.0}, 400, 0.5, seed=1)
    fit = fit_spiked(data.X, null_draws=0)
    assert fit.K == 1
    assert fit.eta_hat == pytest.approx(1.0, rel=0.03)
    assert fit.rho_hat[0] == pytest.approx(6.0, rel=0.25)  # 2.5 sd: the half-sample bootstrap's sd here is 0.61
    assert fit.gof["ks"] < 0.05 and 0.8 < fit.gof["bulk_variance_ratio"] < 1.2
