"""Real data: from a dataset's sample-covariance spectrum to the theory's predictions, checked against trained VAEs.

Pipeline: ``load_dataset`` (digits, IDX, .npy/.npz -> centred samples in the theory's units) -> ``fit_spiked``
(Marchenko--Pastur bulk eta_hat, BBP-inverted spikes rho_hat_k, bootstrap, spike-plus-bulk test) -> ``predict``
(per-latent collapse thresholds, detection, eg / rate--distortion, optimal beta, dataset-size dependence, through
``symvae.statics``) -> checks against training (``linear_exact``, ``train_linear``; ``train_nonlinear`` with the
optional ``symvae[real]`` extra) -> ``realdata_study`` / ``write_report``.
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
from ._predict import active_predicted as active_predicted
from ._predict import active_predicted_with_bulk as active_predicted_with_bulk
from ._predict import eg_alpha_curves as eg_alpha_curves
from ._predict import optimal_beta_total as optimal_beta_total
from ._predict import predict as predict
from ._predict import rd_curves_total as rd_curves_total
from ._predict import spike_observables as spike_observables
from ._predict import thresholds as thresholds
from ._study import fit_summary as fit_summary
from ._study import realdata_study as realdata_study
from ._study import write_report as write_report
from ._train import KL_FLOOR as KL_FLOOR
from ._train import linear_distortion_gain as linear_distortion_gain
from ._train import linear_exact as linear_exact
from ._train import train_linear as train_linear
from ._train import train_nonlinear as train_nonlinear
