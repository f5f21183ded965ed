"""Numeric contexts: the arithmetic every Newton-type algorithm is written against, in float64 or in mpmath.

A context builds vectors and matrices (NumPy arrays: ``float`` for ``Float64``, ``object`` arrays of mpf for
``MpContext``), solves linear systems, takes norms and converts numbers. An algorithm written against a context runs
unchanged at any precision; inside ``ctx.precision()`` the mpmath working precision is the context's.

Parameters reach mpmath as the decimals that were typed: ``ctx.from_decimal(0.3)`` is mpf('0.3') at the working
precision (the shortest repr of the float is the text the user meant), not 0.299999999999999988897769753748...
"""
from __future__ import annotations

import contextlib
import fractions
import math
from typing import Sequence

import mpmath
import numpy as np

__all__ = ["Float64", "MpContext", "FLOAT64", "SingularMatrix", "decimal_text"]


class SingularMatrix(ArithmeticError):
    """The linear system of a Newton step is singular (or not solvable in the context)."""


def decimal_text(value) -> str:
    """The exact decimal text of a number: a float's shortest repr (what was typed), an int or a decimal string as
    given. mpf values are not accepted here (they are already mpmath numbers)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


_EYES: dict[int, np.ndarray] = {}


class Float64:
    """IEEE double precision with NumPy/LAPACK linear algebra."""

    name = "float64"
    dps = 15
    guard = 0
    eps = float(np.finfo(float).eps)
    inf = math.inf

    def precision(self, dps: int | None = None):
        """Working-precision block (nothing to set in float64)."""
        return contextlib.nullcontext()

    def vector(self, values: Sequence) -> np.ndarray:
        return np.array(values, dtype=float)

    def asvector(self, values) -> np.ndarray:
        """A callback's output as a 1-D array (no copy, no conversion of an array already in float64)."""
        return np.asarray(values).reshape(-1)

    def asmatrix(self, values) -> np.ndarray:
        return np.asarray(values)

    def eye(self, n: int) -> np.ndarray:
        """The identity (shared, read-only)."""
        eye = _EYES.get(n)
        if eye is None:
            eye = _EYES[n] = np.eye(n)
            eye.flags.writeable = False
        return eye

    def zeros(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def from_decimal(self, value) -> float:
        return float(decimal_text(value)) if not isinstance(value, fractions.Fraction) else float(value)

    def solve(self, A: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.solve(A, b)
        except np.linalg.LinAlgError as exc:
            raise SingularMatrix(str(exc)) from None

    def lstsq(self, A: np.ndarray, b: np.ndarray, rcond: float | None = None) -> np.ndarray:
        return np.linalg.lstsq(A, b, rcond=rcond)[0]

    def eigh(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric matrix."""
        return np.linalg.eigh(A)

    def svd(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A = U diag(s) Vt with square U, Vt and s descending."""
        return np.linalg.svd(A, full_matrices=True)

    def norm_inf(self, v) -> float:
        return float(np.abs(v).max()) if len(v) else 0.0

    def norm2(self, v) -> float:
        return float(np.linalg.norm(v))

    def rowdot(self, D: np.ndarray) -> np.ndarray:
        """Squared Euclidean length of each row."""
        return np.einsum("ij,ij->i", D, D)

    def sqrt(self, x):
        return math.sqrt(x)

    def log10(self, x) -> float:
        return math.log10(x)

    def scalar(self, x) -> float:
        return float(x)

    def isfinite(self, v) -> bool:
        return bool(np.isfinite(v).all())

    def __repr__(self) -> str:
        return "Float64()"


class MpContext:
    """mpmath at ``dps`` decimal digits, worked at ``dps + guard`` digits; vectors are object arrays of mpf."""

    name = "mpmath"
    inf = mpmath.inf

    def __init__(self, dps: int, guard: int = 5):
        if int(dps) < 1 or int(guard) < 0:
            raise ValueError(f"MpContext needs dps >= 1 and guard >= 0 (got {dps}, {guard})")
        self.dps = int(dps)
        self.guard = int(guard)

    @property
    def eps(self):
        return mpmath.mpf(10) ** (-self.dps)

    def precision(self, dps: int | None = None):
        """Working-precision block: ``dps`` digits (default: the context's dps + guard)."""
        return mpmath.workdps(self.dps + self.guard if dps is None else int(dps))

    def _mpf(self, v):
        if isinstance(v, mpmath.mpf):
            return v
        if isinstance(v, (str, fractions.Fraction)):
            return self.from_decimal(v)
        return mpmath.mpf(v)  # a float is taken exactly (a computed state, not a typed parameter)

    def vector(self, values: Sequence) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            out[i] = self._mpf(v)
        return out

    def asvector(self, values) -> np.ndarray:
        if isinstance(values, mpmath.matrix):
            values = [values[i] for i in range(values.rows * values.cols)]
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out

    def asmatrix(self, values) -> np.ndarray:
        if isinstance(values, mpmath.matrix):
            out = np.empty((values.rows, values.cols), dtype=object)
            for i in range(values.rows):
                for j in range(values.cols):
                    out[i, j] = values[i, j]
            return out
        return np.asarray(values, dtype=object)

    def eye(self, n: int) -> np.ndarray:
        out = self.zeros((n, n))
        for i in range(n):
            out[i, i] = mpmath.mpf(1)
        return out

    def zeros(self, shape) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(mpmath.mpf(0))
        return out

    def from_decimal(self, value):
        """The number as mpf at the current working precision, from its exact decimal text (0.3 -> 3/10)."""
        if isinstance(value, mpmath.mpf):
            return +value
        if isinstance(value, fractions.Fraction):
            return mpmath.mpf(value.numerator) / value.denominator
        return mpmath.mpf(decimal_text(value))

    def solve(self, A: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            x = mpmath.lu_solve(mpmath.matrix(np.asarray(A).tolist()), mpmath.matrix(list(b)))
        except ZeroDivisionError as exc:
            raise SingularMatrix(str(exc)) from None
        return self.asvector(x)

    def lstsq(self, A: np.ndarray, b: np.ndarray, rcond=None) -> np.ndarray:
        """Least-squares solution of a full-column-rank system (Householder QR)."""
        try:
            x, _ = mpmath.qr_solve(mpmath.matrix(np.asarray(A).tolist()), mpmath.matrix(list(b)))
        except ZeroDivisionError as exc:
            raise SingularMatrix(str(exc)) from None
        return self.asvector(x)

    def eigh(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric matrix (mpmath.eigsy)."""
        n = A.shape[0]
        if n == 0:
            return self.zeros(0), self.zeros((0, 0))
        w, V = mpmath.eigsy(mpmath.matrix(np.asarray(A).tolist()))
        order = sorted(range(n), key=lambda k: w[k])
        return self.asvector([w[k] for k in order]), self.asmatrix(V)[:, order]

    def svd(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A = U diag(s) Vt with square U, Vt and s descending (mpmath.svd_r)."""
        m, n = A.shape
        if m == 0 or n == 0:
            return self.eye(m), self.zeros(0), self.eye(n)
        U, s, Vt = mpmath.svd_r(mpmath.matrix(np.asarray(A).tolist()), full_matrices=True)
        order = sorted(range(len(s)), key=lambda k: -s[k])
        U, Vt = self.asmatrix(U), self.asmatrix(Vt)
        U[:, :len(s)], Vt[:len(s)] = U[:, order], Vt[order]
        return U, self.asvector([s[k] for k in order]), Vt

    def norm_inf(self, v):
        return max((abs(x) for x in v), default=mpmath.mpf(0))

    def norm2(self, v):
        return mpmath.sqrt(mpmath.fsum(x * x for x in v))

    def rowdot(self, D: np.ndarray) -> np.ndarray:
        out = np.empty(D.shape[0], dtype=object)
        for i in range(D.shape[0]):
            out[i] = mpmath.fsum(x * x for x in D[i])
        return out

    def sqrt(self, x):
        return mpmath.sqrt(x)

    def log10(self, x):
        return mpmath.log10(x)

    def scalar(self, x):
        return mpmath.mpf(x)

    def isfinite(self, v) -> bool:
        return all(mpmath.isfinite(x) for x in np.ravel(v))

    def __repr__(self) -> str:
        return f"MpContext(dps={self.dps}, guard={self.guard})"


#: the shared float64 context
FLOAT64 = Float64()
