"""Named model variants. Each is a model definition (a few keyword arguments), never a hand-written equation."""
from __future__ import annotations

import dataclasses
from ..errors import InvalidInputError

__all__ = ["VARIANTS", "make_model"]


@dataclasses.dataclass(frozen=True)
class _Variant:
    description: str
    data: dict = dataclasses.field(default_factory=dict)
    vae: dict = dataclasses.field(default_factory=dict)
    training: dict = dataclasses.field(default_factory=dict)


#: name -> (description, keyword arguments of SpikedCovariance / LinearVAE / OnlineSGD)
VARIANTS: dict[str, _Variant] = {
    "base": _Variant("The linear VAE of docs/model.md section 2: untied weights, learned D, sigma^2 = 1, lam on W and W~."),
    "tied": _Variant("Tied weights: the encoder is the decoder transposed (W~ = W^T).", vae={"tied": True}),
    "fixed_D": _Variant("Fixed encoder variance: D_1..D_M are parameters, not trained.",
                        vae={"encoder_variance": "fixed"}),
    "learned_sigma2": _Variant("Learned decoder variance sigma^2 (step tau/N^2).", vae={"decoder_variance": "learned"}),
    "fixed_sigma2": _Variant("Decoder variance sigma^2 as a fixed parameter.", vae={"decoder_variance": "fixed"}),
    "per_spike_rho": _Variant("One signal strength rho_k per spike.", data={"per_spike_rho": True}),
    "step_sizes": _Variant("Separate step sizes tau_W, tau_W_tilde, tau_D for W, W~ and D.",
                           training={"tau_W": "tau_W", "tau_W_tilde": "tau_W_tilde", "tau_D": "tau_D"}),
    "minibatch": _Variant("Mini-batch SGD with batch size b (second-order terms scale 1/b).", training={"batch": "b"}),
    "lam_W_only": _Variant("Weight decay on the decoder W only.", vae={"lam_W_tilde": 0}),
    "lam_W_tilde_only": _Variant("Weight decay on the encoder W~ only.", vae={"lam_W": 0}),
    "annealing": _Variant("KL annealing beta(t) = beta * tanh(gamma t).", vae={"beta": "beta*tanh(gamma*t)"}),
}


def make_model(variant: str = "base", M: int = 1, M_star: int = 1, *, beta_schedule: object = None,
               **overrides) -> Model:
    """Build the model of a named variant.

    Arguments:
        variant: a key of ``VARIANTS``.
        M, M_star: number of latents and of spikes.
        beta_schedule: optional expression for beta(t) (string in ``t`` or SymPy), replacing the variant's beta.
        **overrides: further keyword arguments for ``LinearVAE`` / ``SpikedCovariance`` / ``OnlineSGD``.

    Raises:
        InvalidInputError: unknown variant, bad M, or a schedule that does not parse.
    """
    from ._model import LinearVAE, Model, OnlineSGD, SpikedCovariance, _as_expr  # SymPy: only when a model is built

    if variant not in VARIANTS:
        raise InvalidInputError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    data_kw, vae_kw, train_kw = dict(v.data), dict(v.vae), dict(v.training)
    fields: dict[type, dict] = {SpikedCovariance: data_kw, LinearVAE: vae_kw, OnlineSGD: train_kw}
    for key, value in overrides.items():
        for cls, kw in fields.items():
            if key in {f.name for f in dataclasses.fields(cls)}:
                kw[key] = value
                break
        else:
            raise InvalidInputError(f"unknown model option {key!r}")
    if beta_schedule is not None:
        vae_kw["beta"] = _as_expr(beta_schedule, "beta schedule")
    return Model(SpikedCovariance(M_star=M_star, **data_kw), LinearVAE(M=M, **vae_kw), OnlineSGD(**train_kw),
                 name=variant)
