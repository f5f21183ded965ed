"""Online-SGD ODEs of VAEs with non-linear encoder / decoder activations (issue 11), by the same steps as the linear
derivation with the Gaussian-expectation engine of ``_nonlinear_gaussian`` in place of Wick's theorem.

Model (``LinearVAE.encoder_activation`` g_e, ``decoder_activation`` g_d): mu = g_e(h~) with h~ = W~ x/sqrt(N);
z = mu + sqrt(D) eps with eps ~ N(0, I_M) sampled afresh with every sample (the reparametrisation trick; the
eps-expectation of the reconstruction has no closed form once g_d is non-linear, so SGD uses one eps per sample);
decoder mean W g_d(z)/sqrt(N). Per-sample loss, with the KL of q(z|x) = N(mu, diag D) to N(0, I) in closed form:

    L = (1/2)||x||^2 - l.g_d(z) + (1/2) g_d(z)^T Q g_d(z) [/ sigma^2]
        + (beta/2) sum_k (mu_k^2 + D_k - log D_k - 1) + reg.

eps is one more Gaussian field, independent of x (E[eps eps^T] = I), so the expectations over (x, eps) of the gradient
products are Gaussian expectations over the fields (l, h~, s, eps). With linear activations the O(tau) terms equal those
of the linear model (whose loss averages eps analytically); the O(tau^2) terms then carry the extra eps noise of
sampling.
"""
from __future__ import annotations

import functools

import sympy as sp

from ..errors import DerivationError
from ..model import Model, SymbolTable
from ..model import N as N_sym
from ..model._activations import activation
from ._dynamics import assemble_system, gradient_coefficients, observables, overlap_drifts
from ._half_space import HALF_NOTE, HALF_SPACE, KINK_NOTE, QUADRANT, QUADRANT_NOTE
from ._nonlinear_gaussian import (NOISE_KINK, NOISE_NOTE, PATH_NOTE, PRICE_PATH, QUADRATURE2_NOTE, QUADRATURE_NOTE,
                                  RULE2_COMPILED_NOTE, TWO_DIRECTIONS, WITH_NOISE, NoClosedForm, nonlinear_expectation)
from ._system import DerivedSystem

__all__ = ["is_nonlinear", "NonlinearSymbolTable", "derive_nonlinear_dynamics"]


def is_nonlinear(model: Model) -> bool:
    """True if the model has a non-default activation (and so is derived here)."""
    return model.vae.encoder_activation != "linear" or model.vae.decoder_activation != "linear"


#: which activated models derive, for the one-line refusal of the others (measured at M* = 1 and 2)
COVERAGE = ("derived systems take erf, relu and polynomial activations exactly and other smooth terms of one or "
            "two Gaussian directions by numerical rules; with one side linear, erf and relu derive at M <= 4 (the "
            "largest checked) and an expression (tanh) up to M = 2; with non-linear activations on both sides "
            "(erf/erf, erf/relu, relu/erf, relu/relu) up to M = 2: at M >= 3 a term couples three latents' encoder "
            "fields through the decoder's non-linearity of the encoder's, which would need a rule of three Gaussian "
            "directions")


class NonlinearSymbolTable(SymbolTable):
    """The symbols of a non-linear VAE: those of the linear one plus the reparametrisation noise ``eps``."""

    def __init__(self, model: Model):
        super().__init__(model)
        self.eps = tuple(sp.Symbol(f"eps_{k + 1}", real=True) for k in range(self.M))
        self.g_enc = activation(model.vae.encoder_activation)
        self.g_dec = activation(model.vae.decoder_activation)

    @functools.cached_property
    def latent(self) -> tuple[sp.Expr, ...]:
        """z_k = g_e(h~_k) + sqrt(D_k) eps_k."""
        return tuple(self.g_enc(self.mu[k]) + sp.sqrt(self.D[k]) * self.eps[k] for k in range(self.M))

    @functools.cached_property
    def loss_parts(self) -> dict[str, sp.Expr]:
        vae, M, half = self.model.vae, self.M, sp.Rational(1, 2)
        dec = [self.g_dec(z) for z in self.latent]
        recon_sq = half * (self.x_sq - 2 * sum(self.ell[k] * dec[k] for k in range(M))
                           + sum(dec[k] * self.Q[k, l] * dec[l] for k in range(M) for l in range(M)))
        kl = half * sum(self.g_enc(self.mu[k]) ** 2 + self.D[k] - sp.log(self.D[k]) - 1 for k in range(M))
        reg = half * vae.lam_W_expr * self.Q.trace() + half * vae.lam_W_tilde_expr * self.Q_tilde.trace()
        loss = recon_sq / self.sigma2 + vae.beta_expr * kl + reg
        if vae.decoder_variance == "learned":
            loss += N_sym / 2 * sp.log(self.sigma2)
        return {"recon_sq": recon_sq, "kl": kl, "reg": reg, "loss": loss}

    def expectation(self):
        """E over the fields (l, h~, s, eps) as a function of an expression (the engine, with this covariance)."""
        fields = list(dict.fromkeys(self.fields))
        rep = {f: next(v for v in self.all_vectors if self.field(v) == f) for f in fields}
        n = len(fields)

        def covariance(i, j):
            if i < n and j < n:
                return self.covariance(rep[fields[i]], rep[fields[j]])
            return sp.Integer(int(i == j))

        def E(expr):
            try:
                return nonlinear_expectation(expr, fields + list(self.eps), covariance, quadrature=True,
                                             used=self.numerical, nodes=True)
            except NoClosedForm as exc:
                raise DerivationError(
                    f"activations encoder={self.model.vae.encoder_activation!r}, decoder="
                    f"{self.model.vae.decoder_activation!r}: an expectation has no closed form ({exc}); {COVERAGE}"
                    ) from None
        return E

    @functools.cached_property
    def numerical(self) -> list[str]:
        """Expectations computed by the numerical rule so far (filled by ``expectation``)."""
        return []

    def notes(self) -> tuple[str, ...]:
        """The derivation's approximations, for ``DerivedSystem.notes``."""
        notes = []
        half = sorted({e.removesuffix(HALF_SPACE) for e in self.numerical if e.endswith(HALF_SPACE)},
                      key=lambda e: (len(e), e))
        kinks = sorted({e.removesuffix(NOISE_KINK) for e in self.numerical if e.endswith(NOISE_KINK)},
                       key=lambda e: (len(e), e))
        quadrant = sorted({e.removesuffix(QUADRANT) for e in self.numerical if e.endswith(QUADRANT)},
                          key=lambda e: (len(e), e))
        path = sorted({e.removesuffix(PRICE_PATH) for e in self.numerical if e.endswith(PRICE_PATH)},
                      key=lambda e: (len(e), e))
        numerical = [e for e in self.numerical
                     if not e.endswith((WITH_NOISE, HALF_SPACE, NOISE_KINK, QUADRANT, PRICE_PATH))]
        for two, note in ((False, QUADRATURE_NOTE), (True, QUADRATURE2_NOTE)):
            unique = sorted({e.removesuffix(TWO_DIRECTIONS) for e in numerical
                             if e.endswith(TWO_DIRECTIONS) == two}, key=lambda e: (len(e), e))
            if unique:
                where = "of two Gaussian directions " if two else ""
                notes.append(f"{len(unique)} expectation(s) {where}with no closed form, e.g. {unique[0]}, are {note}; "
                             f"{RULE2_COMPILED_NOTE}")
        inside = sorted({e.removesuffix(WITH_NOISE) for e in self.numerical if e.endswith(WITH_NOISE)},
                        key=lambda e: (len(e), e))
        if inside:
            notes.append(f"in {len(inside)} of them, e.g. {inside[0]}, {NOISE_NOTE}")
        if kinks:
            notes.append(f"{len(kinks)} expectation(s) with a ReLU kink in the reparametrisation noise, e.g. "
                         f"{kinks[0]}, are averaged over that noise exactly (truncated-normal moments: {KINK_NOTE})")
        if half:
            notes.append(f"{len(half)} expectation(s) over one side of a ReLU encoder's kink, e.g. {half[0]}, are "
                         f"{HALF_NOTE}; {RULE2_COMPILED_NOTE}")
        if path:
            notes.append(f"{len(path)} expectation(s) of four erf or four step factors of more than two directions, "
                         f"e.g. {path[0]}, are {PATH_NOTE}; {RULE2_COMPILED_NOTE}")
        if quadrant:
            notes.append(f"{len(quadrant)} expectation(s) over a quadrant of two ReLU encoder kinks, e.g. "
                         f"{quadrant[0]}, are {QUADRANT_NOTE}; {RULE2_COMPILED_NOTE}")
        return tuple(notes)


def derive_nonlinear_dynamics(model: Model) -> DerivedSystem:
    """The online-SGD ODE system of a VAE with activations (see the module docstring); ``derive_dynamics`` calls it.

    Raises:
        DerivationError: an expectation without closed form (e.g. tanh, or non-linear encoder and decoder).
    """
    T = NonlinearSymbolTable(model)
    a, c, scalars = gradient_coefficients(T)
    rhs = overlap_drifts(T, a, c, scalars, T.expectation(), expand=False)
    obs = nonlinear_observables(T)
    return assemble_system(model, T, rhs, obs, set(T.fields) | set(T.eps), notes=T.notes())


def nonlinear_observables(T: NonlinearSymbolTable) -> dict[str, sp.Expr]:
    """As ``observables`` (``eg`` is the same weight-space distance); rate and distortion averaged over x and eps."""
    E = T.expectation()
    parts = T.loss_parts
    x_sq_mean = N_sym * T.eta + sum(T.rho, sp.Integer(0))
    distortion = sp.expand(E(parts["recon_sq"].subs(T.x_sq, x_sq_mean)) - N_sym * T.eta / 2)
    rate = E(parts["kl"])
    eg = observables(SymbolTable(T.model))["eg"]
    return {"eg": eg, "rate": rate, "distortion": distortion,
            "neg_elbo": distortion / T.sigma2 + T.model.vae.beta_expr * rate}
