"""Initial weights with prescribed overlaps: factor the Gram matrix of [W*, W, W~] and place it in a random basis."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..model import SymbolTable, gram_matrix

__all__ = ["gram_factor", "initial_vectors", "default_initial_state", "random_initial_state", "DEFAULT_OVERLAP"]


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


#: scale of the signal overlaps of the default initial state: 0.01 ~ N^-1/2 at N = 10^4 for one latent and one spike
#: (the papers' setting), 0.2 (well above the N^-1/2 fluctuations at N >= 200) when latents must be told apart.
DEFAULT_OVERLAP = {"single": 0.01, "several": 0.2}


def default_initial_state(table) -> dict[str, object]:
    """The default initial order parameters of studies and simulations: Q = Q~ = I, R = 0, D = 1 (sigma2 = 1),
    m = m~ small.

    One latent and one spike: m = m~ = 0.01 (the papers' small random overlap). Several latents or spikes:
    m_ik = 0.2 (1 + 0.3 i) (delta_ik + 0.6 (1 - delta_ik)), a full-rank, entangled and row-distinct overlap matrix, so
    the latents start distinguishable from the N^-1/2 fluctuations of a finite-N run (a rank-deficient m would leave
    a spike direction invariant, never learned) and every seed ends in the same permutation of latents; scaled down
    (largest singular value 0.5) where no weights would have these overlaps (M = M* = 4 and larger).
    """
    M, Ms = table.M, table.M_star
    if M == 1 and Ms == 1:
        m = np.array([[DEFAULT_OVERLAP["single"]]])
    else:
        i = np.arange(M)[:, None]
        k = np.arange(Ms)[None, :]
        m = DEFAULT_OVERLAP["several"] * (1 + 0.3 * i) * np.where(i == k, 1.0, 0.6)
        # weights with these overlaps exist only while the largest singular value s of m is at most 1/sqrt(2)
        # (Q = Q~ = I, R = 0: the Gram matrix's Schur complement is I - 2 m m^T) or 1 (tied); beyond (M = M* = 4 and
        # larger) m is scaled down to s = 0.5
        s = float(np.linalg.svd(m, compute_uv=False)[0])
        if s > (1.0 if table.tied else math.sqrt(0.5)):
            m = m * (0.5 / s)
    init: dict[str, object] = {"m": m.tolist(), "m_tilde": m.tolist(), "Q": np.eye(M).tolist(),
                               "Q_tilde": np.eye(M).tolist(), "R": np.zeros((M, M)).tolist(), "D": [1.0] * M}
    if table.tied:
        init["Q_tilde"], init["R"] = init["Q"], init["Q"]
    if table.model.vae.decoder_variance == "learned":
        init["sigma2"] = 1.0
    return init


#: largest N of ``random_initial_state`` (its cost does not grow with N; beyond this the overlaps are ~1e-6.5 anyway)
RANDOM_INIT_N_MAX = 10 ** 13


def random_initial_state(table, N: int, seed: int = 0) -> dict[str, object]:
    """The papers' initialisation: the order parameters of i.i.d. N(0, 1) weights W, W~ in dimension N (teacher W*
    with W*^T W* / N = I); D = 1 (sigma2 = 1).

    Q = Q~ = I, R = 0, m = m~ = 0 hold only up to O(N^-1/2) fluctuations, and where the dynamics leave these values
    slowly (a superfluous latent at its noise threshold, the escape from the m = 0 plateau) the fluctuations set the
    times. Sampled exactly, at a cost independent of N: a weight vector's coordinates on the spike directions are
    i.i.d. N(0, 1) (m = c / sqrt(N)), and the Gram matrix of the parts orthogonal to them is Wishart with N - M* degrees
    of freedom (Bartlett's decomposition).

    Arguments:
        table: the model's ``SymbolTable``; N: the dimension (an integer in [M* + 2M, 1e13]); seed: of the draw.

    Raises:
        InvalidInputError: N or seed out of range.
    """
    M, Ms = table.M, table.M_star
    K = M if table.tied else 2 * M
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or not Ms + K <= N <= RANDOM_INIT_N_MAX:
        raise InvalidInputError(f"the dimension of a random initialisation must be an integer in "
                                f"[{Ms + K}, {RANDOM_INIT_N_MAX:.0e}], got {N!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise InvalidInputError(f"the seed of a random initialisation must be an integer in [0, 2^63), got {seed!r}")
    rng = np.random.default_rng(int(seed))
    c = rng.standard_normal((K, Ms))  # coordinates on the spike directions
    A = np.tril(rng.standard_normal((K, K)), -1)  # Bartlett: Wishart(n, I) = A A^T
    n = int(N) - Ms
    A[np.diag_indices(K)] = np.sqrt(rng.chisquare(n - np.arange(K)))
    G = (c @ c.T + A @ A.T) / N  # Gram matrix / N of the weight vectors (W rows first, then W~)
    overlaps = c / math.sqrt(N)
    m, Q = overlaps[:M], G[:M, :M]
    init: dict[str, object] = {"m": m.tolist(), "Q": Q.tolist(), "D": [1.0] * M}
    if table.tied:
        init.update(m_tilde=m.tolist(), Q_tilde=Q.tolist(), R=Q.tolist())
    else:
        init.update(m_tilde=overlaps[M:].tolist(), Q_tilde=G[M:, M:].tolist(), R=G[:M, M:].tolist())
    if table.model.vae.decoder_variance == "learned":
        init["sigma2"] = 1.0
    return init
