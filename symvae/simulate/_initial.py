"""Initial weights with prescribed overlaps: factor the Gram matrix of [W*, W, W~] and place it in a random basis."""
from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..model import SymbolTable, gram_matrix

__all__ = ["gram_factor", "initial_vectors"]


def gram_factor(table: SymbolTable, state, *, tol: float = 1e-9) -> np.ndarray:
    """A (K, K) matrix L with L L^T = the Gram matrix (divided by N) of the simulated vectors.

    Vectors in simulator row order: W*_1..W*_M*, W_1..W_M and, untied, W~_1..W~_M. L = [[I, 0], [B, F]] with B the
    overlaps with W* (m, m_tilde) and F F^T = S = C - B B^T the part orthogonal to W* (eigendecomposition, tiny negative
    eigenvalues clipped), so the teacher vectors are exactly the first basis vectors and stay orthonormal.

    Arguments:
        table: the model's ``SymbolTable``; state: validated order parameters (``symvae.model.validate_state``).

    Raises:
        InvalidInputError: the overlaps are not those of any set of vectors (S has a clearly negative eigenvalue).
    """
    M, Ms = table.M, table.M_star
    G = gram_matrix(M, Ms, state)
    if table.tied:
        G = G[:Ms + M, :Ms + M]
    G = 0.5 * (G + G.T)
    B, C = G[Ms:, :Ms], G[Ms:, Ms:]
    S = C - B @ B.T
    lam, U = np.linalg.eigh(S)
    scale = max(1.0, float(np.max(np.abs(G))))
    if lam[0] < -tol * scale:
        raise InvalidInputError(f"the Gram matrix of [W*, W, W~] is not positive semi-definite: its part orthogonal to "
                                f"W* has eigenvalue {lam[0]:.3g}; no weights have these overlaps")
    F = U * np.sqrt(np.clip(lam, 0.0, None))
    K = G.shape[0]
    L = np.zeros((K, K))
    L[:Ms, :Ms] = np.eye(Ms)
    L[Ms:, :Ms] = B
    L[Ms:, Ms:] = F
    return L


def initial_vectors(L: np.ndarray, N: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors (rows, shape (K, N)) with Gram matrix N L L^T: sqrt(N) L E^T for a Haar-random orthonormal N x K basis
    E (QR of a Gaussian matrix, signs fixed by the diagonal of R)."""
    K = L.shape[0]
    E, Rq = np.linalg.qr(rng.standard_normal((N, K)))
    E = E * np.where(np.diag(Rq) < 0, -1.0, 1.0)
    return np.ascontiguousarray(np.sqrt(N) * (L @ E.T))
