"""The shallow non-linear autoencoder of Refinetti & Goldt (ICML 2022, arXiv:2201.02115) as an instance of the
model definition, not as new equations (issue 11, section 3).

x_hat = W g(W~ x/sqrt(N))/sqrt(N) trained by online SGD on (1/2)||x - x_hat||^2 is the ``LinearVAE`` with encoder
activation g, no KL term (beta = 0), no weight decay and a fixed encoder variance D = 0 (z = mu exactly); its D_k are
parameters of the derived system and are set to 0 (``derive._autoencoder``). Data: the spiked covariance model with
per-spike strengths rho_k and an isotropic bulk eta, i.e. finitely many spikes; the bulk of the paper's spiked Wishart
data is one eigenvalue here (a general bulk spectral density is not covered). Untied weights, no bias.
"""
from __future__ import annotations

from ._model import LinearVAE, Model, OnlineSGD, SpikedCovariance

__all__ = ["shallow_autoencoder"]


def shallow_autoencoder(M: int = 2, M_star: int = 2, activation: str = "erf") -> Model:
    """The model of an untied shallow autoencoder with M hidden units on data with M_star spikes."""
    return Model(data=SpikedCovariance(M_star=M_star, per_spike_rho=True),
                 vae=LinearVAE(M=M, encoder_activation=activation, encoder_variance="fixed", beta=0, lam_W=0,
                               lam_W_tilde=0),
                 training=OnlineSGD())
