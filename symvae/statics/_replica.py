"""Solving the replica saddle-point equations of ``derive_statics``: order parameters, observables, phase.

The saddle point is degenerate along directions of H (and K) that only act on the null space of the population field
covariance Sigma: at the minimiser each encoder row is parallel to its decoder column, so Sigma has rank <= M < 2M.
Those directions change neither the order parameters nor the free energy. Float64 solves therefore use equilibrated
Levenberg--Marquardt steps (damping proportional to |F|); the mpmath refinement freezes as many K/H coordinates as the
null space has dimensions and runs Newton on a square, non-singular subsystem chosen by column/row pivoting.

Initial guesses come from the random-matrix closed form (``closed_form``): its order parameters,
H = I + sum_k c_k v_k v_k^T with v_k spanning latent k's rank-one field covariance and
c_k^2 = (eta/alpha) v_k^T (Omega - m m^T) v_k / v_k^T Sigma v_k (the K-equation on that block), and K from the
equations, which are affine in K at fixed H (exact linear least squares). From there the solver only uses the derived
equations; the tests also start from perturbed points. Only admissible saddle points (PSD Gram matrix, D > 0) are
accepted, and among several the lowest free energy wins.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Mapping

import mpmath
import numpy as np
import scipy.linalg
import sympy as sp

from ..codegen import FunctionSpec, compile_system, generate_source, load_cached_module, system_key
from ..derive._statics import derive_statics
from ..errors import SymvaeError
from ..model import Model, SymbolTable, gram_matrix
from ._closed_form import ClosedForm, classify_phase, closed_form, statics_param_names
from ._params import check_alpha, check_params

__all__ = ["StaticsResult", "StaticsError", "solve_statics", "statics_system", "polish"]

ORDER_KEYS = ("m", "m_tilde", "Q", "Q_tilde", "R", "D")


class StaticsError(SymvaeError):
    """The saddle-point iteration did not converge (raised by ``solve_statics(..., throw=True)``)."""


class _Statics:
    """A model's compiled saddle-point system with the index maps used by the solver."""

    def __init__(self, model: Model):
        self.model = model
        self.system = derive_statics(model)
        self.module = _compile(self.system)
        self.table = SymbolTable(model)
        sysd = self.system
        self.index = {s: i for i, s in enumerate(sysd.state)}
        self.n = len(sysd.state)
        self.param_names = tuple(p.name for p in sysd.params)
        self.kh = np.array([self.index[s] for b in ("K", "H") for s in sysd.blocks[b]], dtype=int)
        self.k_idx = np.array([self.index[s] for s in sysd.blocks["K"]], dtype=int)
        self.d_idx = np.array([self.index[s] for s in sysd.blocks.get("D", ())], dtype=int)
        T = self.table
        vectors = list(dict.fromkeys(T.canonical(v) for v in T.trainable))
        self.vectors = vectors
        self.P = len(vectors)
        self.latent_of_field = [v.index for v in vectors]
        self.obs_names = tuple(sysd.observables)
        if hasattr(self.module, "rhs"):
            rhs, jac = self.module.rhs, self.module.jac
        else:
            rhs, jac = self.module.rhs_numpy, self.module.jac_numpy
        self.F = lambda y, p: rhs(0.0, y, p)
        self.J = lambda y, p: jac(0.0, y, p)

    # ---------------------------------------------------------------- packing
    @functools.cached_property
    def _positions(self):
        """(i, j) of each K symbol (upper triangle, row-major) and H symbol (row-major) in the P x P matrices."""
        P = self.P
        K = [(i, j) for i in range(P) for j in range(i, P)]
        H = [(i, j) for i in range(P) for j in range(P)]
        return dict(zip(self.system.blocks["K"], K)), dict(zip(self.system.blocks["H"], H))

    def _order_matrices(self):
        T = self.table
        return {"m": T.m, "m_tilde": T.m_tilde, "Q": T.Q, "Q_tilde": T.Q_tilde, "R": T.R}

    def pack(self, order: Mapping[str, np.ndarray], K: np.ndarray, H: np.ndarray) -> np.ndarray:
        """State vector from order parameters (m ... R, D) and the P x P matrices K, H."""
        y = np.zeros(self.n)
        for name, mat in self._order_matrices().items():
            arr = np.asarray(order[name], dtype=float)
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    if mat[i, j] in self.index:
                        y[self.index[mat[i, j]]] = arr[i, j]
        for k, s in enumerate(self.table.D):
            if s in self.index:
                y[self.index[s]] = float(order["D"][k])
        K_pos, H_pos = self._positions
        for s, (i, j) in K_pos.items():
            y[self.index[s]] = K[i, j]
        for s, (i, j) in H_pos.items():
            y[self.index[s]] = H[i, j]
        return y

    @functools.cached_property
    def _unpack_maps(self):
        """For each order parameter: state indices (-1: a number or a parameter) and the fallbacks."""
        maps = {}
        mats = dict(self._order_matrices())
        mats["D"] = sp.Matrix([list(self.table.D)])
        for name, mat in mats.items():
            idx = np.full(mat.shape, -1, dtype=int)
            other = {}
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    e = mat[i, j]
                    if e in self.index:
                        idx[i, j] = self.index[e]
                    else:
                        other[(i, j)] = e.name if isinstance(e, sp.Symbol) else float(e)
            maps[name] = (idx, other)
        K_pos, H_pos = self._positions
        k_rows = np.array([self.index[s] for s in K_pos])
        k_ij = np.array(list(K_pos.values()))
        h_rows = np.array([self.index[s] for s in H_pos])
        h_ij = np.array(list(H_pos.values()))
        return maps, (k_rows, k_ij), (h_rows, h_ij)

    def unpack(self, y, params: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Order parameters (tied aliases and fixed D filled in) and K, H from a state vector (float or mpf)."""
        y = np.asarray(y)
        dtype = object if y.dtype == object else float
        maps, (k_rows, k_ij), (h_rows, h_ij) = self._unpack_maps
        out = {}
        for name, (idx, other) in maps.items():
            arr = np.where(idx >= 0, y[np.maximum(idx, 0)], 0).astype(dtype)
            for (i, j), v in other.items():
                arr[i, j] = params[v] if isinstance(v, str) else v
            out[name] = arr[0] if name == "D" else arr
        P = self.P
        K = np.zeros((P, P), dtype=dtype)
        H = np.zeros((P, P), dtype=dtype)
        K[k_ij[:, 0], k_ij[:, 1]] = y[k_rows]
        K[k_ij[:, 1], k_ij[:, 0]] = y[k_rows]
        H[h_ij[:, 0], h_ij[:, 1]] = y[h_rows]
        out["K"], out["H"] = K, H
        return out

    def param_vector(self, params: Mapping[str, float], alpha: float) -> np.ndarray:
        values = dict(params)
        values["alpha"] = alpha
        return np.array([float(values[n]) for n in self.param_names])

    def observables(self, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        vals = self.module.observables_numpy(0.0, y, p)
        return {k: float(v) for k, v in zip(self.obs_names, vals)}


#: Above this many unknowns the generated functions are not JIT-compiled: numba needs minutes for the M = 3 Jacobian
#: (~10^4 entries), while the generated numpy code evaluates it in milliseconds.
NUMBA_MAX_UNKNOWNS = 60


def _compile(system):
    """The generated module of a saddle-point system: ``compile_system`` (numba) for small systems, a numpy/mpmath
    module (same generator, same cache) for large ones."""
    if len(system.state) <= NUMBA_MAX_UNKNOWNS:
        return compile_system(system).module
    key = system_key(system) + "-numpy"
    header = f"kind: {system.kind} (numpy/mpmath only)\nmodel: {dict(system.model.describe())}\nkey: {key}"

    def specs():  # only on a cache miss: differentiating the Jacobian is most of the cold cost
        return [FunctionSpec("rhs", system.rhs, backends=("numpy", "mpmath")),
                FunctionSpec("jac", system.jacobian, backends=("numpy", "mpmath")),
                FunctionSpec("observables", list(system.observables.values()), backends=("numpy", "mpmath"))]

    module, _ = load_cached_module(key, lambda: generate_source(specs(), system.state, system.params, header=header))
    return module


_SYSTEMS: dict[str, _Statics] = {}
_BY_ID: dict[int, tuple[Model, _Statics]] = {}


def statics_system(model: Model) -> _Statics:
    """The compiled saddle-point system of ``model`` (derived and compiled on first use, then cached)."""
    hit = _BY_ID.get(id(model))
    if hit is not None and hit[0] is model:  # hashing the model definition costs more than a Newton step
        return hit[1]
    key = model.key
    if key not in _SYSTEMS:
        _SYSTEMS[key] = _Statics(model)
    _BY_ID[id(model)] = (model, _SYSTEMS[key])
    return _SYSTEMS[key]


@dataclasses.dataclass(frozen=True, eq=False)
class StaticsResult:
    """A solved replica saddle point.

    Attributes:
        model, alpha, params: the problem (``params`` without alpha).
        y: the state vector of the saddle-point system (order parameters, D, K, H).
        order: ``m``, ``m_tilde``, ``Q``, ``Q_tilde``, ``R``, ``D`` as arrays (``sigma2`` = eta for a learned decoder
            variance). K, H: the conjugate matrices (see ``derive_statics``).
        observables: ``eg``, ``rate``, ``distortion``, ``neg_elbo`` (population, fresh data) and ``free_energy``.
        train_loss: the free energy at the saddle point = training loss per sample (noise floor removed).
        collapsed_free_energy: the free energy of the collapsed saddle point (W = W~ = 0, D = 1).
        phase, latent_phases: see ``classify_phase`` (from Q_kk and the rows of m).
        residual: max |F| at y. iterations: Levenberg--Marquardt iterations. status: ``"ok"`` or ``"failed"``; message.
        closed_form: the random-matrix closed form at the same point (None if not computed) and
        closed_form_difference: max |difference| of the order parameters and train loss to it.
    """

    model: Model
    alpha: float
    params: Mapping[str, float]
    y: np.ndarray
    order: Mapping[str, np.ndarray]
    K: np.ndarray
    H: np.ndarray
    observables: Mapping[str, float]
    train_loss: float
    collapsed_free_energy: float
    phase: str
    latent_phases: tuple[str, ...]
    residual: float
    iterations: int
    status: str
    message: str
    closed_form: ClosedForm | None = None
    closed_form_difference: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        """The CLI contract: m, m_tilde, Q, Q_tilde, R, D, eg, rate, distortion, train_loss, phase, status."""
        out = {k: np.asarray(self.order[k], dtype=float).tolist() for k in ORDER_KEYS}
        out.update(eg=float(self.observables["eg"]), rate=float(self.observables["rate"]),
                   distortion=float(self.observables["distortion"]), train_loss=float(self.train_loss),
                   phase=self.phase, status=self.status)
        return out


def _phase_from_order(order: Mapping[str, np.ndarray], tol: float = 1e-9):
    Q = np.asarray(order["Q"], dtype=float)
    m = np.asarray(order["m"], dtype=float)
    q = np.diag(Q)
    signal = np.sum(m * m, axis=1)
    return classify_phase(list(q), list(signal), tol=tol)


def _gauss_newton(S: _Statics, y: np.ndarray, p: np.ndarray, *, tol: float, max_iter: int, extra: int = 2):
    """Levenberg--Marquardt on F(y) = 0, equilibrated (unknowns scaled by max(|y_i|, 1), equations by their largest
    scaled Jacobian entry: K grows like alpha while H - I shrinks like 1/alpha), with damping mu = theta |F|
    (Fan--Yuan), which keeps fast local convergence to a non-isolated solution set. Once max|F| <= tol, up to
    ``extra`` more steps are taken while each still halves the residual (near a transition the Jacobian is nearly
    singular, and the state error is the residual over its smallest singular value). Returns (y, max|F|, iterations).
    """
    F = S.F(y, p)
    res = float(np.max(np.abs(F)))
    theta = 1e-4
    it = 0
    eye = np.eye(S.n)
    while it < max_iter:
        if res <= tol:
            if extra <= 0 or res == 0.0:
                break
            extra -= 1
        it += 1
        C = np.maximum(np.abs(y), 1.0)
        Jc = S.J(y, p) * C
        Rw = 1.0 / np.maximum(np.max(np.abs(Jc), axis=1), 1e-300)
        Js = Jc * Rw[:, None]
        Fs = F * Rw
        g = Js.T @ Fs
        A = Js.T @ Js
        f2 = float(Fs @ Fs)
        accepted = False
        while theta <= 1e12:
            mu = theta * math.sqrt(f2)
            try:
                step = C * np.linalg.solve(A + mu * eye, -g)
            except np.linalg.LinAlgError:
                theta *= 10
                continue
            if len(S.d_idx) and np.any(y[S.d_idx] + step[S.d_idx] <= 0):  # keep D > 0 (log D)
                theta *= 10
                continue
            y_new = y + step
            F_new = S.F(y_new, p)
            predicted = f2 - float(np.sum((Fs + Js @ (step / C)) ** 2))
            actual = f2 - float(np.sum((F_new * Rw) ** 2)) if np.all(np.isfinite(F_new)) else -np.inf
            if predicted > 0 and actual > 1e-4 * predicted:
                if actual > 0.75 * predicted:
                    theta = max(theta / 8, 1e-12)
                accepted = True
                break
            theta *= 4
        if not accepted:
            break
        res_new = float(np.max(np.abs(F_new)))
        gain = res_new < 0.5 * res
        y, F, res = y_new, F_new, res_new
        if res <= tol and not gain:
            break
    return y, res, it


def _initial_states(S: _Statics, cf: ClosedForm, p: np.ndarray) -> list[np.ndarray]:
    """Initial states from the closed form: order parameters, H = I + sum_k c_k v_k v_k^T (v_k spans the rank-one
    field covariance of latent k, c_k^2 = (eta/alpha) v_k^T (Omega - m m^T) v_k / (v_k^T Sigma v_k), c_k > 0 first),
    and K by exact linear least squares (the equations are affine in K at fixed H). Best-first list of states."""
    order = {k: np.asarray(cf.order[k], dtype=float) for k in ORDER_KEYS}
    T = S.table
    P = S.P
    eta = float(p[S.param_names.index("eta")])
    alpha = float(p[S.param_names.index("alpha")])
    gram = {"W": order["Q"], "W_tilde": order["Q_tilde"]}
    mvec = {"W": order["m"], "W_tilde": order["m_tilde"]}
    rhos = np.array([cf.params.get(r.name, 0.0) for r in T.rho])
    Omega = np.zeros((P, P))
    mm = np.zeros((P, T.M_star))
    for a, u in enumerate(S.vectors):
        mm[a] = mvec[u.family][u.index]
        for b, v in enumerate(S.vectors):
            if u.family == v.family:
                Omega[a, b] = gram[u.family][u.index, v.index]
            else:
                Omega[a, b] = order["R"][u.index, v.index] if u.family == "W" else order["R"][v.index, u.index]
    Sigma = (mm * rhos) @ mm.T + eta * Omega
    perp = Omega - mm @ mm.T
    directions = []
    for k in range(T.M):
        idx = [a for a in range(P) if S.latent_of_field[a] == k]
        w, V = np.linalg.eigh(Sigma[np.ix_(idx, idx)])
        if w[-1] <= 1e-14:
            continue
        v = np.zeros(P)
        v[idx] = V[:, -1]
        c = math.sqrt(max(eta / alpha * float(v @ perp @ v) / float(w[-1]), 0.0))
        directions.append((c, v))
    states = []
    for signs in itertools.product((1.0, -1.0), repeat=len(directions)):
        H = np.eye(P) + sum((sgn * c * np.outer(v, v) for sgn, (c, v) in zip(signs, directions)), np.zeros((P, P)))
        y = S.pack(order, np.zeros((P, P)), H)
        F = S.F(y, p)
        JK = S.J(y, p)[:, S.k_idx]
        y[S.k_idx] += np.linalg.lstsq(JK, -F, rcond=1e-13)[0]
        res = float(np.max(np.abs(S.F(y, p))))
        states.append((res, y))
        if res < 1e-10:
            break
    states.sort(key=lambda item: item[0])
    return [y for _, y in states]


def _distance(S: _Statics, y: np.ndarray, cf: ClosedForm, params) -> float:
    order = S.unpack(y, params)
    return max(float(np.max(np.abs(np.asarray(cf.order[k], dtype=float) - order[k]))) for k in ORDER_KEYS)


def _admissible(S: _Statics, y: np.ndarray, params) -> bool:
    """Physical saddle points only: the Gram matrix of [W*, W, W~] is PSD and D > 0 (the equations continue
    analytically to Q < 0 across a collapse transition)."""
    order = S.unpack(y, params)
    T = S.table
    G = gram_matrix(T.M, T.M_star, order)
    scale = max(1.0, float(np.max(np.abs(G))))
    return bool(np.linalg.eigvalsh(G)[0] >= -1e-9 * scale and np.all(order["D"] > 0))


def _collapsed_state(S: _Statics, params: Mapping[str, float]) -> np.ndarray:
    T = S.table
    M, Ms, P = T.M, T.M_star, S.P
    order = {"m": np.zeros((M, Ms)), "m_tilde": np.zeros((M, Ms)), "Q": np.zeros((M, M)),
             "Q_tilde": np.zeros((M, M)), "R": np.zeros((M, M)),
             "D": np.array([params.get(d.name, 1.0) for d in T.D])}
    return S.pack(order, np.zeros((P, P)), np.eye(P))


def solve_statics(model: Model, params: Mapping[str, float], alpha: float, *, guess: "StaticsResult | None" = None,
                  compare: bool = True, tol: float = 1e-12, max_iter: int = 40,
                  throw: bool = True) -> StaticsResult:
    """Solve the replica saddle-point equations at (params, alpha) and report the global minimiser.

    Arguments:
        model: the model definition.
        params: parameter values by name (``statics_param_names(model)``).
        alpha: n / N (> 0, finite).

    Other arguments:
        guess: a previous result at nearby parameters (warm start). Without ``compare`` its saddle point is accepted
            if admissible (it may then be a local branch, not the global minimiser, across a phase boundary).
        compare: also compute the random-matrix closed form, start from it when the warm start lands elsewhere, keep
            the lowest free energy among the admissible saddle points found, and report the difference to it.
        tol: residual tolerance, max|F| <= tol * max(1, max|y|); max_iter: Levenberg--Marquardt iteration budget.
        throw: raise ``StaticsError`` instead of returning a failed result.

    Returns:
        A ``StaticsResult``.

    Raises:
        InvalidInputError: invalid alpha or parameters. StaticsError: no convergence (with ``throw``).
    """
    alpha = check_alpha(alpha)
    S = statics_system(model)
    names = statics_param_names(model)
    pv = check_params(params, names)
    p = S.param_vector(pv, alpha)
    cf = closed_form(model, pv, alpha) if (compare or guess is None) else None
    y_collapsed = _collapsed_state(S, pv)
    f_collapsed = S.observables(y_collapsed, p)["free_energy"]

    def attempt(starts):
        found, best_failed, its = [], None, 0
        for y0 in starts:
            y, res, it = _gauss_newton(S, y0, p, tol=tol * max(1.0, float(np.max(np.abs(y0)))), max_iter=max_iter)
            its += it
            if res <= tol * max(1.0, float(np.max(np.abs(y)))) and _admissible(S, y, pv):
                found.append((S.observables(y, p)["free_energy"], y, res))
                break
            if best_failed is None or res < best_failed[2]:
                best_failed = (np.inf, y, res)
        return found, best_failed, its

    total_it = 0
    candidates, failed = [], None
    if guess is not None:
        candidates, failed, total_it = attempt([np.array(guess.y, dtype=float)])
    if not candidates and cf is None:  # the warm start left the admissible region: start from the closed form
        cf = closed_form(model, pv, alpha)
    near_cf = bool(candidates) and cf is not None and _distance(S, candidates[0][1], cf, pv) < 1e-8
    if cf is not None and not near_cf:
        # another saddle point than the closed form's: the global minimiser has the lowest free energy
        more, failed_cf, its = attempt(_initial_states(S, cf, p))
        total_it += its
        candidates += more
        failed = failed if failed_cf is None or (failed is not None and failed[2] < failed_cf[2]) else failed_cf
    if candidates:
        _, y, res = min(candidates, key=lambda c: c[0])
    else:
        _, y, res = failed
    tol = tol * max(1.0, float(np.max(np.abs(y))))
    ok = res <= tol
    obs = S.observables(y, p)
    order = S.unpack(y, pv)
    named = {k: order[k] for k in ORDER_KEYS}
    if model.vae.decoder_variance == "learned":
        named["sigma2"] = np.asarray(pv["eta"])
    phase, per = _phase_from_order(named)
    diff = None
    if cf is not None:
        diff = max(float(np.max(np.abs(np.asarray(cf.order[k], dtype=float) - named[k]))) for k in ORDER_KEYS)
        diff = max(diff, abs(float(cf.train_loss) - obs["free_energy"]))
    message = (f"saddle point found: max|F| = {res:.2e} after {total_it} Levenberg-Marquardt iterations" if ok else
               f"no saddle point within tolerance {tol:g}: max|F| = {res:.2e} after {total_it} iterations")
    result = StaticsResult(model=model, alpha=alpha, params=pv, y=y, order=named, K=order["K"], H=order["H"],
                           observables=obs, train_loss=obs["free_energy"], collapsed_free_energy=f_collapsed,
                           phase=phase, latent_phases=per, residual=res, iterations=total_it,
                           status="ok" if ok else "failed", message=message, closed_form=cf,
                           closed_form_difference=diff)
    if throw and not ok:
        raise StaticsError(message)
    return result


def polish(result: StaticsResult, dps: int = 30, *, max_iter: int = 30) -> dict[str, object]:
    """Refine a float64 saddle point in mpmath at ``dps`` digits (Newton on a square non-singular subsystem).

    The null directions of the Jacobian (K/H acting on the null space of Sigma) are removed by freezing as many K/H
    coordinates as there are null directions (chosen by pivoted QR of the null basis) and keeping as many equations as
    the rank (pivoted QR of the rows). The full residual is checked at the end.

    Arguments:
        result: a converged ``StaticsResult``. dps: decimal digits.

    Returns:
        {"order": {name: object array of mpf}, "train_loss": mpf, "residual": mpf (max|F| of the full system),
        "dps": dps, "null_dimension": int}.

    Raises:
        StaticsError: the refinement does not reach a residual of 10^(3 - dps).
    """
    S = statics_system(result.model)
    p_f = S.param_vector(result.params, result.alpha)
    y = np.array(result.y, dtype=float)
    J = S.J(y, p_f)
    _, sv, Vt = np.linalg.svd(J)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    null = Vt[rank:].T
    free = np.arange(S.n)
    if null.shape[1]:
        _, _, piv = scipy.linalg.qr(null[S.kh].T, pivoting=True)
        frozen = S.kh[piv[:null.shape[1]]]
        free = np.array([i for i in range(S.n) if i not in set(frozen.tolist())])
    _, _, rows = scipy.linalg.qr(J[:, free].T, pivoting=True)
    rows = np.sort(rows[:len(free)])
    mod = S.module
    with mpmath.workdps(dps + 10):
        values = {**result.params, "alpha": result.alpha}
        p = [mpmath.mpf(values[name]) for name in S.param_names]
        x = [mpmath.mpf(v) for v in y]
        target = mpmath.mpf(10) ** (-(dps + 5))
        for _ in range(max_iter):
            F = mod.rhs_mp(0, x, p)
            Fr = mpmath.matrix([F[int(i), 0] for i in rows])
            if mpmath.norm(Fr, mpmath.inf) < target:
                break
            Jm = mod.jac_mp(0, x, p)
            Jr = mpmath.matrix(len(rows), len(free))
            for a, i in enumerate(rows):
                for b, j in enumerate(free):
                    Jr[a, b] = Jm[int(i), int(j)]
            dx = mpmath.lu_solve(Jr, -Fr)
            for b, j in enumerate(free):
                x[int(j)] += dx[b]
        F = mod.rhs_mp(0, x, p)
        residual = max(abs(F[i, 0]) for i in range(S.n))
        obs = mod.observables_mp(0, x, p)
        f_idx = S.obs_names.index("free_energy")
        train_loss = obs[f_idx, 0]
        order = S.unpack(np.array(x, dtype=object), {k: mpmath.mpf(v) for k, v in result.params.items()})
    if residual > mpmath.mpf(10) ** (3 - dps):
        raise StaticsError(f"mpmath refinement reached max|F| = {mpmath.nstr(residual, 3)} only, at {dps} digits")
    return {"order": {k: order[k] for k in ORDER_KEYS}, "train_loss": train_loss, "residual": residual, "dps": dps,
            "null_dimension": int(null.shape[1])}
