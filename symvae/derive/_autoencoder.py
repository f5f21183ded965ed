"""Online-SGD ODEs of the shallow autoencoder (``model._autoencoder.shallow_autoencoder``): the derived system of the
VAE model with the fixed encoder variances D_k set to 0 (the KL term is absent, beta = 0, so D enters only through
z = mu + sqrt(D) eps)."""
from __future__ import annotations

import dataclasses

import sympy as sp

from ..errors import DerivationError
from ._derive import derive_dynamics

__all__ = ["AutoencoderSystem", "derive_autoencoder"]


@dataclasses.dataclass(frozen=True, eq=False)
class AutoencoderSystem:
    """``state``, ``rhs`` (D = 0), ``params`` (eta, rho_k, tau; sorted) and the underlying ``DerivedSystem``."""

    system: object
    state: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...]

    def numpy_rhs(self):
        """rhs(y, p) -> array, lambdified with numpy (p in the order of ``params``)."""
        import numpy as np
        f = sp.lambdify(list(self.state) + list(self.params), list(self.rhs), modules="numpy", cse=True)
        return lambda y, p: np.asarray(f(*y, *p), dtype=float)


def derive_autoencoder(model) -> AutoencoderSystem:
    """Derive ``model`` (fixed encoder variance, beta = 0) and set D_k = 0.

    Raises:
        DerivationError: the model has a learned encoder variance or a non-zero beta.
    """
    vae = model.vae
    if vae.encoder_variance != "fixed" or vae.beta_expr != 0:
        raise DerivationError("the autoencoder limit needs encoder_variance='fixed' and beta=0")
    system = derive_dynamics(model)
    zero = {p: 0 for p in system.params if p.name.startswith("D_")}
    rhs = tuple(sp.sympify(e, strict=True).subs(zero) for e in system.rhs)  # strict: SymPy objects only
    free = set().union(*(e.free_symbols for e in rhs)) - set(system.state)
    params = tuple(sorted(free, key=lambda s: s.name))
    return AutoencoderSystem(system=system, state=tuple(system.state), rhs=rhs, params=params)
