"""The symbols of a model: weight vectors, their overlaps (order parameters), local fields and parameters.

Names follow ``docs/model.md``: m = W^T W*/N, m_tilde = W~ W*/N, Q = W^T W/N, Q_tilde = W~ W~^T/N, R = W^T W~^T/N, D.
Indices in symbol names are 1-based (``Q_12``); array positions are 0-based.
"""
from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import sympy as sp

from ._model import Model, N, _sym

__all__ = ["Vector", "SymbolTable", "ORDER_PARAMETERS"]

#: Order-parameter names in state-vector order.
ORDER_PARAMETERS = ("m", "m_tilde", "Q", "Q_tilde", "R", "D", "sigma2")

_LATEX = {"m": "m", "m_tilde": r"\tilde{m}", "Q": "Q", "Q_tilde": r"\tilde{Q}", "R": "R", "D": "D",
          "ell": r"\ell", "mu": r"\mu", "s": "s", "rho": r"\rho", "tau": r"\tau", "lam": r"\lambda"}


class Vector(NamedTuple):
    """One N-dimensional weight vector: column ``index`` of W or W*, or row ``index`` of W~ (family ``W_tilde``)."""

    family: str  # "W", "W_tilde" or "W_star"
    index: int


class SymbolTable:
    """All symbols of one model, and the map between vector pairs and overlap symbols."""

    def __init__(self, model: Model):
        self.model = model
        M, Ms = model.M, model.M_star
        self.M, self.M_star = M, Ms
        self.tied = model.vae.tied
        self.x_sq = sp.Symbol("x_sq", positive=True)  # ||x||^2 (of order N)
        self.N = N

        mk = lambda base, i, j: _sym(f"{base}_{i + 1}{j + 1}")  # noqa: E731
        self.m = sp.Matrix(M, Ms, lambda i, k: mk("m", i, k))
        self.Q = sp.Matrix(M, M, lambda i, j: mk("Q", min(i, j), max(i, j)))
        if self.tied:
            self.m_tilde, self.Q_tilde, self.R = self.m, self.Q, self.Q
        else:
            self.m_tilde = sp.Matrix(M, Ms, lambda i, k: mk("m_tilde", i, k))
            self.Q_tilde = sp.Matrix(M, M, lambda i, j: mk("Q_tilde", min(i, j), max(i, j)))
            self.R = sp.Matrix(M, M, lambda i, j: mk("R", i, j))

        self.D = tuple(sp.Symbol(f"D_{k + 1}", positive=True) for k in range(M))
        dv = model.vae.decoder_variance
        self.sigma2 = sp.Integer(1) if dv == "unit" else sp.Symbol("sigma2", positive=True)

        # local fields: ell = W^T x/sqrt(N), mu = W~ x/sqrt(N), s = W*^T x/sqrt(N)
        self.ell = sp.Matrix(M, 1, lambda i, _: _sym(f"ell_{i + 1}"))
        self.mu = self.ell if self.tied else sp.Matrix(M, 1, lambda i, _: _sym(f"mu_{i + 1}"))
        self.s = sp.Matrix(Ms, 1, lambda k, _: _sym(f"s_{k + 1}"))

        self.rho = model.data.rho
        self.eta = model.data.eta

    # ---------------------------------------------------------------- vectors
    def canonical(self, v: Vector) -> Vector:
        return Vector("W", v.index) if (self.tied and v.family == "W_tilde") else v

    @functools.cached_property
    def trainable(self) -> tuple[Vector, ...]:
        fams = ("W",) if self.tied else ("W", "W_tilde")
        return tuple(Vector(f, i) for f in fams for i in range(self.M))

    @functools.cached_property
    def teacher(self) -> tuple[Vector, ...]:
        return tuple(Vector("W_star", k) for k in range(self.M_star))

    @functools.cached_property
    def all_vectors(self) -> tuple[Vector, ...]:
        return self.trainable + self.teacher

    def field(self, v: Vector) -> sp.Symbol:
        v = self.canonical(v)
        return {"W": self.ell, "W_tilde": self.mu, "W_star": self.s}[v.family][v.index]

    @functools.cached_property
    def fields(self) -> tuple[sp.Symbol, ...]:
        return tuple(self.field(v) for v in self.all_vectors)

    def overlap(self, u: Vector, v: Vector) -> sp.Expr:
        """u.v/N as a symbol (or 0/1 for the orthonormal teacher)."""
        u, v = self.canonical(u), self.canonical(v)
        order = {"W": 0, "W_tilde": 1, "W_star": 2}
        if (order[u.family], u.index) > (order[v.family], v.index):
            u, v = v, u
        fu, fv = u.family, v.family
        if fu == "W_star":
            return sp.Integer(int(u.index == v.index))
        if fv == "W_star":
            return (self.m if fu == "W" else self.m_tilde)[u.index, v.index]
        if fu == fv:
            return (self.Q if fu == "W" else self.Q_tilde)[u.index, v.index]
        return self.R[u.index, v.index]  # u in W, v in W_tilde

    @functools.cached_property
    def overlap_pairs(self) -> dict[sp.Symbol, tuple[Vector, Vector]]:
        """Each overlap symbol -> the (canonical) vector pair it is the overlap of."""
        out: dict[sp.Symbol, tuple[Vector, Vector]] = {}
        for u, v in itertools.combinations_with_replacement(self.all_vectors, 2):
            o = self.overlap(u, v)
            if isinstance(o, sp.Symbol) and o not in out:
                out[o] = (self.canonical(u), self.canonical(v))
        return out

    def covariance(self, u: Vector, v: Vector) -> sp.Expr:
        """E[h_u h_v] of the local fields: sum_k rho_k O(u,W*_k) O(v,W*_k) + eta O(u,v)."""
        signal = sum((r * self.overlap(u, w) * self.overlap(v, w) for r, w in zip(self.rho, self.teacher)),
                     sp.Integer(0))
        return signal + self.eta * self.overlap(u, v)

    # ---------------------------------------------------------------- loss
    @functools.cached_property
    def loss_parts(self) -> dict[str, sp.Expr]:
        """The per-sample loss, in named parts (see docs/model.md section 2).

        ``recon_sq``: 1/2 E_q ||x - W z/sqrt(N)||^2; ``kl``: KL(q(z|x) || p(z)); ``reg``: the per-sample share of the
        weight decay; ``loss``: recon_sq / sigma^2 + (N/2) log sigma^2 [learned sigma^2 only] + beta kl + reg.
        """
        vae = self.model.vae
        ell, mu, Q = self.ell, self.mu, self.Q
        half = sp.Rational(1, 2)
        recon_sq = half * (self.x_sq - 2 * (ell.T * mu)[0] + (mu.T * Q * mu)[0]
                           + sum(Q[k, k] * self.D[k] for k in range(self.M)))
        kl = half * sum(mu[k] ** 2 + self.D[k] - sp.log(self.D[k]) - 1 for k in range(self.M))
        reg = half * vae.lam_W_expr * self.Q.trace() + half * vae.lam_W_tilde_expr * self.Q_tilde.trace()
        loss = recon_sq / self.sigma2 + vae.beta_expr * kl + reg
        if vae.decoder_variance == "learned":
            loss += N / 2 * sp.log(self.sigma2)
        return {"recon_sq": recon_sq, "kl": kl, "reg": reg, "loss": loss}

    # ---------------------------------------------------------------- state
    @functools.cached_property
    def state_blocks(self) -> dict[str, list[sp.Symbol]]:
        """The independent state symbols of each order parameter, in state-vector order."""
        M, Ms = self.M, self.M_star
        blocks: dict[str, list[sp.Symbol]] = {"m": [self.m[i, k] for i in range(M) for k in range(Ms)]}
        if not self.tied:
            blocks["m_tilde"] = [self.m_tilde[i, k] for i in range(M) for k in range(Ms)]
        blocks["Q"] = [self.Q[i, j] for i in range(M) for j in range(i, M)]
        if not self.tied:
            blocks["Q_tilde"] = [self.Q_tilde[i, j] for i in range(M) for j in range(i, M)]
            blocks["R"] = [self.R[i, j] for i in range(M) for j in range(M)]
        if self.model.vae.encoder_variance == "learned":
            blocks["D"] = list(self.D)
        if self.model.vae.decoder_variance == "learned":
            blocks["sigma2"] = [self.sigma2]
        return blocks

    @functools.cached_property
    def state(self) -> tuple[sp.Symbol, ...]:
        return tuple(s for block in self.state_blocks.values() for s in block)

    def matrices(self) -> dict[str, object]:
        """Every order parameter as a SymPy matrix / tuple of symbols (aliases included for tied weights)."""
        return {"m": self.m, "m_tilde": self.m_tilde, "Q": self.Q, "Q_tilde": self.Q_tilde, "R": self.R,
                "D": self.D, "sigma2": self.sigma2}

    def latex_names(self, *, own_names: bool = False) -> dict[sp.Symbol, str]:
        """LaTeX spelling of every symbol (``m_tilde_12`` -> ``\\tilde{m}_{12}``).

        Arguments:
            own_names: spell every order-parameter symbol by its own name. A tied model's m_11 is also its
                m_tilde_11 (and Q_11 its R_11, Q_tilde_11); by default it prints as the last alias, with
                ``own_names`` as m_{11} -- the naming of the state list and of the json and python exports.
        """
        out: dict[sp.Symbol, str] = {}
        for name in ("m", "m_tilde", "Q", "Q_tilde", "R"):
            for s in getattr(self, name):
                out[s] = f"{_LATEX[name]}_{{{s.name.rsplit('_', 1)[1]}}}"
        for k, s in enumerate(self.D):
            out[s] = f"D_{{{k + 1}}}"
        for name, seq in (("ell", self.ell), ("mu", self.mu), ("s", self.s)):
            for k, s in enumerate(seq):
                out.setdefault(s, f"{_LATEX[name]}_{{{k + 1}}}")
        params = {"lam": r"\lambda", "lam_W": r"\lambda_{W}", "lam_W_tilde": r"\lambda_{\tilde{W}}",
                  "tau_W": r"\tau_{W}", "tau_W_tilde": r"\tau_{\tilde{W}}", "tau_D": r"\tau_{D}",
                  "tau_sigma2": r"\tau_{\sigma^2}", "sigma2": r"\sigma^{2}", "x_sq": r"\|x\|^{2}"}
        out.update({_sym(k) if k != "sigma2" else self.sigma2: v for k, v in params.items()
                    if k != "sigma2" or isinstance(self.sigma2, sp.Symbol)})
        out[self.x_sq] = params["x_sq"]
        if own_names:
            for s in list(out):
                block, sep, index = s.name.rpartition("_")
                if sep and block in ("m", "m_tilde", "Q", "Q_tilde", "R") and index.isdigit():
                    out[s] = f"{_LATEX[block]}_{{{index}}}"
        return out
