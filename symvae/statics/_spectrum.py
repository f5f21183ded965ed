"""Limits of the top of the spectrum of a spiked sample covariance (Baik--Ben Arous--Peche transition).

Population covariance eta I + sum_j rho_j w*_j w*_j^T / N, n = alpha N samples, aspect ratio gamma = 1/alpha. With
ell_j = rho_j / eta, a spike above the BBP threshold ell_j > sqrt(gamma) produces an outlier eigenvalue

    s_j = eta (1 + ell_j)(1 + gamma / ell_j)

whose eigenvector has squared overlap phi_j = (1 - gamma/ell_j^2) / (1 + gamma/ell_j) with w*_j/sqrt(N); below it the
eigenvalue sticks to the bulk edge eta (1 + sqrt(gamma))^2 and the overlap vanishes (Baik, Ben Arous, Peche,
Ann. Probab. 33 (2005) 1643; Paul, Stat. Sinica 17 (2007) 1617; Benaych-Georges, Nadakuditi, Adv. Math. 227 (2011) 494). The
eigenvalues after the outliers also converge to the bulk edge. alpha = inf gives the population values (s = rho + eta,
phi = 1, edge eta). Every function takes an mpmath context (``mpmath.fp`` for float64, ``mpmath.mp`` at its precision).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import mpmath

__all__ = ["Slot", "spectrum_slots", "bulk_edge", "outlier", "detection_threshold_alpha"]


@dataclasses.dataclass(frozen=True)
class Slot:
    """One of the top eigenvalues of S in the limit.

    Attributes:
        s: the eigenvalue.
        spike: index of the spike whose direction the eigenvector carries (None for a bulk-edge eigenvalue).
        overlap: squared overlap phi of the eigenvector with that spike direction (0 for the bulk edge).
    """

    s: object
    spike: int | None
    overlap: object


def _gamma(alpha, ctx):
    return ctx.zero if ctx.isinf(alpha) else 1 / ctx.convert(alpha)


def bulk_edge(eta, alpha, ctx=mpmath.fp):
    """Upper edge eta (1 + sqrt(gamma))^2 of the Marchenko--Pastur bulk."""
    return ctx.convert(eta) * (1 + ctx.sqrt(_gamma(alpha, ctx))) ** 2


def outlier(rho, eta, alpha, ctx=mpmath.fp):
    """(s, phi) of one spike: the outlier eigenvalue and squared eigenvector overlap, or (bulk edge, 0) below BBP."""
    gamma = _gamma(alpha, ctx)
    rho, eta = ctx.convert(rho), ctx.convert(eta)
    ell = rho / eta
    if ell > 0 and ell * ell > gamma:
        return eta * (1 + ell) * (1 + gamma / ell), (1 - gamma / ell ** 2) / (1 + gamma / ell)
    return bulk_edge(eta, alpha, ctx), ctx.zero


def spectrum_slots(rhos: Sequence, eta, alpha, count: int, ctx=mpmath.fp) -> list[Slot]:
    """The ``count`` largest eigenvalues of S in the limit, largest first (outliers, then the bulk edge).

    Arguments:
        rhos: spike strengths rho_j. eta: noise variance. alpha: n / N (``inf`` allowed). count: how many.
        ctx: mpmath context.

    Returns:
        A list of ``Slot``; ties keep the spike order.
    """
    slots = []
    for j, rho in enumerate(rhos):
        s, phi = outlier(rho, eta, alpha, ctx)
        slots.append(Slot(s, j, phi) if phi > 0 else Slot(s, None, ctx.zero))
    order = sorted(range(len(slots)), key=lambda j: -slots[j].s)
    ranked = [slots[j] for j in order]
    edge = bulk_edge(eta, alpha, ctx)
    while len(ranked) < count:
        ranked.append(Slot(edge, None, ctx.zero))
    return ranked[:count]


def detection_threshold_alpha(rho, eta) -> float:
    """BBP detection threshold alpha_c = (eta / rho)^2 of one spike (float)."""
    return math.inf if rho == 0 else (eta / rho) ** 2
