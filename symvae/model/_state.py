"""Order-parameter states given by users: validation and the default initial condition."""
from __future__ import annotations

import json
import math
from typing import Mapping

import numpy as np

from ..errors import InvalidInputError
from ._symbols import SymbolTable

__all__ = ["validate_state", "default_init", "parse_init_json", "gram_matrix"]


def _array(named: Mapping, key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(named[key], dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{key} must be a nested list of numbers of shape {list(shape)}") from None
    if arr.shape != shape:
        raise InvalidInputError(f"{key} must have shape {list(shape)}, got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{key} contains a non-finite value")
    return arr


def gram_matrix(M: int, M_star: int, named: Mapping[str, np.ndarray]) -> np.ndarray:
    """Gram matrix (divided by N) of the vectors [W*_1..W*_M*, W_1..W_M, W~_1..W~_M]."""
    m, mt, Q, Qt, R = (np.asarray(named[k], dtype=float) for k in ("m", "m_tilde", "Q", "Q_tilde", "R"))
    return np.block([[np.eye(M_star), m.T, mt.T], [m, Q, R], [mt, R.T, Qt]])


def validate_state(table: SymbolTable, named: Mapping[str, object], *, tol: float = 1e-9) -> dict[str, np.ndarray]:
    """Check a user state and return it as arrays (tied weights: m_tilde, Q_tilde, R filled in from m, Q).

    Raises:
        InvalidInputError: wrong keys or shapes, non-finite entries, D <= 0, sigma2 <= 0, asymmetric Q or Q_tilde,
            or a Gram matrix of [W*, W, W~] that is not positive semi-definite.
    """
    if not isinstance(named, Mapping):
        raise InvalidInputError("the initial state must be a JSON object with keys m, m_tilde, Q, Q_tilde, R, D")
    M, Ms = table.M, table.M_star
    known = {"m", "m_tilde", "Q", "Q_tilde", "R", "D", "sigma2"}
    unknown = set(named) - known
    if unknown:
        raise InvalidInputError(f"unknown key(s) in the initial state: {', '.join(sorted(unknown))}")
    out: dict[str, np.ndarray] = {}
    shapes = {"m": (M, Ms), "m_tilde": (M, Ms), "Q": (M, M), "Q_tilde": (M, M), "R": (M, M)}
    required = ["m", "Q"] + ([] if table.tied else ["m_tilde", "Q_tilde", "R"])
    for key in required:
        if key not in named:
            raise InvalidInputError(f"the initial state lacks {key!r}")
    for key, shape in shapes.items():
        if key in named:
            out[key] = _array(named, key, shape)
    if table.tied:
        for key, src in (("m_tilde", "m"), ("Q_tilde", "Q"), ("R", "Q")):
            if key in out and not np.allclose(out[key], out[src], rtol=0, atol=tol):
                raise InvalidInputError(f"tied weights: {key} must equal {src}")
            out[key] = out[src]
    for key in ("Q", "Q_tilde"):
        if not np.allclose(out[key], out[key].T, rtol=0, atol=tol):
            raise InvalidInputError(f"{key} must be symmetric")
    if table.model.vae.encoder_variance == "learned" or "D" in named:
        if "D" not in named:
            raise InvalidInputError("the initial state lacks 'D'")
        out["D"] = _array(named, "D", (M,))
        if np.any(out["D"] <= 0):
            raise InvalidInputError(f"D must be > 0, got {out['D'].tolist()}")
    if "sigma2" in named:
        s2 = named["sigma2"]
        if not isinstance(s2, (int, float)) or isinstance(s2, bool) or not math.isfinite(s2) or s2 <= 0:
            raise InvalidInputError(f"sigma2 must be a number > 0, got {s2!r}")
        out["sigma2"] = np.asarray(float(s2))
    elif table.model.vae.decoder_variance == "learned":
        raise InvalidInputError("the initial state lacks 'sigma2' (learned decoder variance)")
    G = gram_matrix(M, Ms, out)
    lowest = float(np.linalg.eigvalsh(G)[0])
    if lowest < -tol * max(1.0, float(np.max(np.abs(G)))):
        raise InvalidInputError(f"the Gram matrix of [W*, W, W~] built from m, m_tilde, Q, Q_tilde, R is not positive "
                                f"semi-definite (lowest eigenvalue {lowest:.3g}): no weights have these overlaps")
    return out


def default_init(table: SymbolTable) -> dict[str, object]:
    """The papers' initial condition at large N: Q = Q_tilde = I, R = 0, D = 1 (sigma2 = 1), and small signal
    overlaps m = m_tilde of order N^-1/2 (0.01 times distinct factors, so latents start distinguishable)."""
    M, Ms = table.M, table.M_star
    m = [[0.01 * (1 + 0.5 * i) * (1 - 0.3 * k) for k in range(Ms)] for i in range(M)]
    init: dict[str, object] = {"m": m, "m_tilde": m, "Q": np.eye(M).tolist(), "Q_tilde": np.eye(M).tolist(),
                               "R": np.zeros((M, M)).tolist(), "D": [1.0] * M}
    if table.tied:
        init["Q_tilde"], init["R"] = init["Q"], init["Q"]
    if table.model.vae.decoder_variance == "learned":
        init["sigma2"] = 1.0
    return init


def parse_init_json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--init is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None
    if not isinstance(value, dict):
        raise InvalidInputError("--init must be a JSON object")
    return value
