"""Real data: from a dataset's sample-covariance spectrum to the theory's predictions, checked against trained VAEs.

Pipeline: ``load_dataset`` (digits, IDX, .npy/.npz -> centred samples in the theory's units) -> ``fit_spiked``
(Marchenko--Pastur bulk eta_hat, BBP-inverted spikes rho_hat_k, bootstrap, spike-plus-bulk test) -> ``predict``
(per-latent collapse thresholds, detection, eg / rate--distortion, optimal beta, dataset-size dependence, through
``symvae.statics``) -> checks against training (``linear_vae_study``; ``nonlinear_vae_study`` with the optional
``symvae[real]`` extra) -> ``realdata_report``.
"""
from ._load import MAX_ENTRIES as MAX_ENTRIES
from ._load import MAX_FEATURES as MAX_FEATURES
from ._load import RealData as RealData
from ._load import load_array as load_array
from ._load import load_dataset as load_dataset
from ._load import load_digits as load_digits
from ._load import load_idx as load_idx
from ._load import prepare as prepare
from ._load import subsample as subsample
from ._spectrum import FitResult as FitResult
from ._spectrum import MarchenkoPastur as MarchenkoPastur
from ._spectrum import bootstrap as bootstrap
from ._spectrum import eigenvalues as eigenvalues
from ._spectrum import fit_eigenvalues as fit_eigenvalues
from ._spectrum import fit_spiked as fit_spiked
from ._spectrum import invert_bbp as invert_bbp
from ._spectrum import tracy_widom_edge as tracy_widom_edge
