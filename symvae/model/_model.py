"""Model definition: data model (spiked covariance) + linear VAE + training protocol.

A model variant is a different instance of these classes, never new equations. The per-sample loss is built here, as a
SymPy expression in the local fields, the overlaps and the scalar parameters; everything downstream is derived from it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from typing import Mapping

import sympy as sp

from ..errors import InvalidInputError
from ._expr import N, parse_expression, t

__all__ = ["SpikedCovariance", "LinearVAE", "OnlineSGD", "Model", "t", "N", "parse_expression"]

# t, N and parse_expression live in _expr.py (the safe reader of user expressions); re-exported here.


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _as_expr(value, what: str) -> sp.Expr:
    """Turn a number, SymPy expression or string into a SymPy expression, with a clear error if that fails."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a number or an expression, not a boolean")
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{what} must be finite, got {value}")
        return sp.nsimplify(value)
    if isinstance(value, str):
        return parse_expression(value, what)
    raise InvalidInputError(f"{what} must be a number, a SymPy expression or a string, not {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class SpikedCovariance:
    """Spiked covariance data model x = sqrt(rho/N) W* c + sqrt(eta) n, with W*^T W*/N = I.

    Arguments:
        M_star: number of spikes M*.
        per_spike_rho: if True each spike k has its own strength ``rho_k``; otherwise all share ``rho``.
    """

    M_star: int = 1
    per_spike_rho: bool = False

    def __post_init__(self):
        if not isinstance(self.M_star, int) or self.M_star < 1:
            raise InvalidInputError(f"M_star must be an integer >= 1, got {self.M_star!r}")

    @property
    def rho(self) -> tuple[sp.Symbol, ...]:
        """Signal strength of each spike (symbols)."""
        if self.per_spike_rho:
            return tuple(_sym(f"rho_{k + 1}") for k in range(self.M_star))
        return (_sym("rho"),) * self.M_star

    @property
    def eta(self) -> sp.Symbol:
        return _sym("eta")


@dataclasses.dataclass(frozen=True)
class LinearVAE:
    """Linear VAE: encoder mu = W~ x / sqrt(N), diagonal variance D; decoder W z / sqrt(N), variance sigma^2.

    Arguments:
        M: number of latents.
        tied: if True the encoder weights are the decoder weights transposed (W~ = W^T).
        encoder_variance: ``"learned"`` (D is trained, step tau_D/N) or ``"fixed"`` (parameters ``D_1..D_M``).
        decoder_variance: ``"unit"`` (sigma^2 = 1), ``"fixed"`` (parameter ``sigma2``) or ``"learned"`` (state
            ``sigma2``, trained with step tau_sigma2/N^2, the scaling at which it evolves on the O(1) time scale).
        beta: KL weight; a number, a symbol, or an expression in ``t`` (a schedule). Default: the parameter ``beta``.
        lam_W, lam_W_tilde: weight-decay coefficients (regulariser (lam/2N)||W||^2 per sample). Default: ``lam`` on both.
        encoder_activation, decoder_activation: g in mu = g(W~ x/sqrt(N)) and in the decoder mean W g(z)/sqrt(N):
            ``"linear"`` (default), ``"erf"`` (g(x) = erf(x/sqrt(2))), ``"relu"``, or an expression in ``x``. A
            non-linear model samples z = mu + sqrt(D) eps (reparametrisation), see ``symvae.model.activation``.
    """

    M: int = 1
    tied: bool = False
    encoder_variance: str = "learned"
    decoder_variance: str = "unit"
    beta: object = None
    lam_W: object = None
    lam_W_tilde: object = None
    encoder_activation: str = "linear"
    decoder_activation: str = "linear"

    def __post_init__(self):
        from ._activations import validate_activation
        validate_activation(self.encoder_activation, "encoder_activation")
        validate_activation(self.decoder_activation, "decoder_activation")
        if not isinstance(self.M, int) or self.M < 1:
            raise InvalidInputError(f"M must be an integer >= 1, got {self.M!r}")
        if self.encoder_variance not in ("learned", "fixed"):
            raise InvalidInputError(f"encoder_variance must be 'learned' or 'fixed', got {self.encoder_variance!r}")
        if self.decoder_variance not in ("unit", "fixed", "learned"):
            raise InvalidInputError(
                f"decoder_variance must be 'unit', 'fixed' or 'learned', got {self.decoder_variance!r}")

    @property
    def beta_expr(self) -> sp.Expr:
        return _sym("beta") if self.beta is None else _as_expr(self.beta, "beta")

    @property
    def lam_W_expr(self) -> sp.Expr:
        return _sym("lam") if self.lam_W is None else _as_expr(self.lam_W, "lam_W")

    @property
    def lam_W_tilde_expr(self) -> sp.Expr:
        return _sym("lam") if self.lam_W_tilde is None else _as_expr(self.lam_W_tilde, "lam_W_tilde")


@dataclasses.dataclass(frozen=True)
class OnlineSGD:
    """Online SGD protocol: one fresh mini-batch of ``batch`` samples per step, time t = step / N.

    Step sizes are tau_W for W, tau_W_tilde for W~, tau_D / N for D and tau_sigma2 / N^2 for a learned sigma^2.
    Each defaults to the parameter ``tau``. ``batch`` may be an integer or a symbol (e.g. ``"b"``).
    """

    tau_W: object = None
    tau_W_tilde: object = None
    tau_D: object = None
    tau_sigma2: object = None
    batch: object = 1

    def __post_init__(self):
        self.batch_expr  # validates
        for which in ("W", "W_tilde", "D", "sigma2"):
            self.step(which)

    def step(self, which: str) -> sp.Expr:
        value = getattr(self, f"tau_{which}")
        return _sym("tau") if value is None else _as_expr(value, f"tau_{which}")

    @property
    def batch_expr(self) -> sp.Expr:
        b = _as_expr(self.batch, "batch")
        if b.is_number and (not b.is_integer or b < 1):
            raise InvalidInputError(f"batch size must be a positive integer, got {self.batch!r}")
        return b


@dataclasses.dataclass(frozen=True)
class Model:
    """A complete model: data, VAE and training protocol. Immutable and hashable by content (``model.key``)."""

    data: SpikedCovariance = dataclasses.field(default_factory=SpikedCovariance)
    vae: LinearVAE = dataclasses.field(default_factory=LinearVAE)
    training: OnlineSGD = dataclasses.field(default_factory=OnlineSGD)
    name: str = "custom"

    @property
    def M(self) -> int:
        return self.vae.M

    @property
    def M_star(self) -> int:
        return self.data.M_star

    def describe(self) -> Mapping[str, object]:
        """A canonical, JSON-able description (used for the content hash and in exported derivations)."""
        out: dict[str, object] = {"name": self.name}
        for part in (self.data, self.vae, self.training):
            for f in dataclasses.fields(part):
                value = getattr(part, f.name)
                if f.name.endswith("_activation") and value == "linear":
                    continue  # the default keeps the content hash of the linear models
                out[f"{type(part).__name__}.{f.name}"] = sp.srepr(value) if isinstance(value, sp.Basic) else repr(value)
        return out

    def split_schedules(self) -> tuple["Model", tuple[tuple[sp.Symbol, sp.Expr], ...]]:
        """The time-dependent parameters (schedules) of the model, kept out of its derivation.

        Returns ``(base, schedules)``: ``base`` is this model with every field whose expression depends on ``t``
        (beta, lam_W, lam_W_tilde, the step sizes) replaced by a plain parameter symbol -- ``beta`` for beta (so
        every beta(t) of a variant shares the variant's own derivation), the field's name otherwise -- and
        ``schedules`` pairs each such symbol with the expression it stands for. Substituting the expressions into
        the base model's drifts is exact: the online-SGD increment at step t only uses the parameter's value at t.
        ``schedules`` is empty for a model without time-dependent parameters (``base`` is then the model itself).
        """
        vae_kw: dict[str, object] = {}
        train_kw: dict[str, object] = {}
        schedules: list[tuple[sp.Symbol, sp.Expr]] = []
        fields = [(vae_kw, "beta", self.vae.beta_expr, None), (vae_kw, "lam_W", self.vae.lam_W_expr, "lam_W"),
                  (vae_kw, "lam_W_tilde", self.vae.lam_W_tilde_expr, "lam_W_tilde")]
        fields += [(train_kw, f"tau_{w}", self.training.step(w), f"tau_{w}") for w in ("W", "W_tilde", "D", "sigma2")]
        for kw, name, expr, replacement in fields:
            if t in expr.free_symbols:
                kw[name] = replacement
                schedules.append((_sym(replacement or name), expr))
        if not schedules:
            return self, ()
        # the annealing variant is the base variant with a beta(t): its un-scheduled model is the base model
        base = Model(self.data, dataclasses.replace(self.vae, **vae_kw),
                     dataclasses.replace(self.training, **train_kw),
                     name="base" if self.name == "annealing" else self.name)
        return base, tuple(schedules)

    @functools.cached_property
    def key(self) -> str:
        """Content hash of the model definition (computed once per object: the definition is frozen)."""
        desc = {k: v for k, v in self.describe().items() if k != "name"}
        text = repr(sorted(desc.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:20]
