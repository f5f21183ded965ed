"""The soft committee machine (two-layer network) in the teacher-student setup: a model definition for the derivation
engine outside the VAE family (issue 11, section 3).

Data x ~ N(0, I_N); teacher y = sum_n A_n g(nu_n), nu_n = w*_n.x/sqrt(N), teacher overlaps T = W* W*^T/N; student
yhat = sum_k v_k g(lambda_k), lambda_k = w_k.x/sqrt(N). Per-sample loss L = (1/2)(yhat - y)^2. Online SGD with step tau
on the first layer (w_k <- w_k - tau grad_{w_k} L, N steps per unit time) and tau_v/N on the second layer v (if
trained).
g(x) = erf(x/sqrt(2)) by default. Order parameters: Q = W W^T/N (K x K), R = W W*^T/N (K x M), v (K).

References: D. Saad and S. A. Solla, Phys. Rev. E 52, 4225 (1995) (first layer, v = A = 1); S. Goldt, M. S. Advani,
A. M. Saxe, F. Krzakala and L. Zdeborova, NeurIPS 2019, arXiv:1906.08632 (both layers).
"""
from __future__ import annotations

import dataclasses
import functools

import sympy as sp

from ..errors import InvalidInputError
from ._activations import activation, validate_activation

__all__ = ["CommitteeMachine"]


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


@dataclasses.dataclass(frozen=True)
class CommitteeMachine:
    """Soft committee machine, teacher-student (see the module docstring).

    Arguments:
        K: student hidden units. M_teacher: teacher hidden units.
        train_second_layer: train v (Goldt et al. 2019) or keep v = 1 (Saad & Solla 1995).
        teacher_second_layer: ``"ones"`` (A_n = 1) or ``"free"`` (parameters ``A_1..A_M``).
        activation: of teacher and student (``erf`` = erf(x/sqrt 2), ``linear`` or an expression in x).
    """

    K: int = 2
    M_teacher: int = 2
    train_second_layer: bool = False
    teacher_second_layer: str = "ones"
    activation: str = "erf"

    def __post_init__(self):
        for name in ("K", "M_teacher"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
        if self.teacher_second_layer not in ("ones", "free"):
            raise InvalidInputError(f"teacher_second_layer must be 'ones' or 'free', got {self.teacher_second_layer!r}")
        validate_activation(self.activation, "activation")

    # ------------------------------------------------------------------ symbols
    @functools.cached_property
    def lam(self) -> tuple[sp.Symbol, ...]:
        return tuple(_sym(f"lambda_{k + 1}") for k in range(self.K))

    @functools.cached_property
    def nu(self) -> tuple[sp.Symbol, ...]:
        return tuple(_sym(f"nu_{n + 1}") for n in range(self.M_teacher))

    def Q(self, i: int, k: int) -> sp.Symbol:
        i, k = min(i, k), max(i, k)
        return _sym(f"Q_{i + 1}{k + 1}")

    def R(self, i: int, n: int) -> sp.Symbol:
        return _sym(f"R_{i + 1}{n + 1}")

    def T(self, n: int, m: int) -> sp.Symbol:
        n, m = min(n, m), max(n, m)
        return _sym(f"T_{n + 1}{m + 1}")

    @functools.cached_property
    def v(self) -> tuple[sp.Expr, ...]:
        if self.train_second_layer:
            return tuple(_sym(f"v_{k + 1}") for k in range(self.K))
        return (sp.Integer(1),) * self.K

    @functools.cached_property
    def A(self) -> tuple[sp.Expr, ...]:
        if self.teacher_second_layer == "free":
            return tuple(_sym(f"A_{n + 1}") for n in range(self.M_teacher))
        return (sp.Integer(1),) * self.M_teacher

    @property
    def fields(self) -> tuple[sp.Symbol, ...]:
        return self.lam + self.nu

    def covariance(self, a: int, b: int) -> sp.Expr:
        """E[f_a f_b] for the fields (lambda_1..lambda_K, nu_1..nu_M) with x ~ N(0, I)."""
        K = self.K
        a, b = min(a, b), max(a, b)
        if b < K:
            return self.Q(a, b)
        if a < K:
            return self.R(a, b - K)
        return self.T(a - K, b - K)

    @functools.cached_property
    def state(self) -> tuple[sp.Symbol, ...]:
        K, M = self.K, self.M_teacher
        out = [self.Q(i, k) for i in range(K) for k in range(i, K)] + [self.R(i, n) for i in range(K) for n in range(M)]
        if self.train_second_layer:
            out += list(self.v)
        return tuple(out)

    @functools.cached_property
    def loss(self) -> sp.Expr:
        """(1/2)(yhat - y)^2 in the fields and v."""
        g = activation(self.activation)
        yhat = sum((vk * g(lk) for vk, lk in zip(self.v, self.lam)), sp.Integer(0))
        y = sum((an * g(nn) for an, nn in zip(self.A, self.nu)), sp.Integer(0))
        return (yhat - y) ** 2 / 2
