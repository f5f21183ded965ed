"""The linear VAE trained on the shipped digits: number of active latents against the predicted per-spike collapse
thresholds, by the exact finite-N solver and by gradient training (PyTorch autograd, part of symvae[real])."""
import numpy as np
import pytest

from symvae.data import fit_spiked, load_dataset
from symvae.data import active_predicted, thresholds
from symvae.data import KL_FLOOR, linear_exact, train_linear

M = 4


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def setting():
    d = load_dataset("digits")
    fit = fit_spiked(d.X, null_draws=0)
    lam = fit.eigenvalues
    # one beta above every threshold, one between each pair of consecutive thresholds, one below the M-th
    betas = [1.5 * lam[0]] + [float(np.sqrt(lam[i] * lam[i + 1])) for i in range(M)] + [0.5 * lam[M - 1]]
    beta_c = thresholds(fit, count=M + 1)["beta_c"]
    return d, fit, betas, beta_c


def test_predicted_thresholds_are_well_separated_at_these_betas(setting):
    _, _, betas, beta_c = setting
    # every beta is at least 3% away from every threshold, so a count is not decided by rounding
    gaps = np.abs(np.log(np.array(betas)[:, None] / np.array(beta_c)[None, :]))
    assert gaps.min() > 0.03
    assert list(active_predicted(beta_c, betas, M)) == [0, 1, 2, 3, 4, 4]


def test_exact_solver_counts_match_the_predicted_thresholds(setting):
    d, _, betas, beta_c = setting
    exact = linear_exact(d.X, M, betas)
    assert list(exact["active"]) == list(active_predicted(beta_c, betas, M))
    # and each active latent's Q_kk is s_k - beta (lam = 0 closed form, s_k the k-th eigenvalue)
    i = 3  # beta between the 3rd and 4th thresholds
    np.testing.assert_allclose(np.sort(exact["q"][i])[::-1][:3], np.array(beta_c[:3]) - betas[i], rtol=1e-8)


def test_gradient_training_counts_match_the_predicted_thresholds(setting):
    d, _, betas, beta_c = setting
    predicted = active_predicted(beta_c, betas, M)
    for j in (1, 3, 5):  # 1, 3 and all M latents active (the collapsed case is the exact solver's and the MLP's)
        b, p = betas[j], predicted[j]
        r = train_linear(d.X, M, b, seed=j)
        assert r["active"] == p, (b, r["kl"])
        # active latents sit well above the floor, collapsed ones at ~0 (no count decided by the floor itself)
        kl = np.sort(r["kl"])[::-1]
        assert np.all(kl[:p] > 2 * KL_FLOOR) and np.all(kl[p:] < KL_FLOOR / 10)
        # sum of Q_kk against the exact sum of (s_k - beta): close eigenvalues (s_1, s_2 differ by 9%) leave the
        # split between their latents slow to converge, the sum is not; within 2% after the 400-iteration budget
        # (measured: < 0.5%)
        assert np.sum(r["q"]) == pytest.approx(np.sum(np.array(beta_c[:p]) - b) if p else 0.0, rel=0.02, abs=1e-3)
