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
import os
from typing import Mapping

import mpmath
import numpy as np
import scipy.linalg
import scipy.optimize
import sympy as sp

from ..codegen import FunctionSpec, compile_system, generate_source, load_cached_module, system_key
from ..derive._statics import derive_statics
from ..errors import SymvaeError
from ..model import Model, SymbolTable, gram_matrix
from ..numerics._context import FLOAT64, MpContext, SingularMatrix
from ..numerics._newton import newton
from ._closed_form import ClosedForm, classify_phase, closed_form, kl_gap_float, stable_kl, statics_param_names
from ._params import check_alpha, check_params
from ._spectrum import bulk_edge, outlier

__all__ = ["StaticsResult", "StaticsError", "Saddle", "solve_statics", "statics_system", "polish", "physical_hessian"]

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
        if isinstance(self.module, _ComplexStepModule):
            rhs, jac = self.module.rhs_float, self.module.jac_numpy
        elif hasattr(self.module, "rhs"):
            rhs, jac = self.module.rhs, self.module.jac
        else:
            rhs, jac = self.module.rhs_numpy, self.module.jac_numpy
        self.F = lambda y, p: rhs(0.0, y, p)
        self.J = lambda y, p: jac(0.0, y, p)
        if isinstance(self.module, _ComplexStepModule):  # only the columns asked for are computed
            self.J_cols = functools.partial(self.module.jac_columns, 0.0)
            # dF/dK, F(y) known: F is affine in K (a test checks it symbolically), so differences are exact
            self.J_K = lambda y, p, F: self.module.affine_columns(0.0, y, p, self.k_idx, F)
        else:
            self.J_cols = lambda y, p, columns: jac(0.0, y, p)[:, columns]
            self.J_K = lambda y, p, F: jac(0.0, y, p)[:, self.k_idx]
        self.eye = np.eye(self.n)
        self.zero_pp = np.zeros((self.P, self.P))  # read only
        # order-parameter / conjugate index sets of the physical Hessian, fixed per system
        self.o_idx = np.setdiff1d(np.arange(self.n), self.kh)
        self.fe_index = self.obs_names.index("free_energy")
        obs_fn = getattr(self.module, "observables", None)
        self._obs = obs_fn if obs_fn is not None else self.module.observables_numpy

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

    @functools.cached_property
    def _pack_maps(self):
        """(state index, order name, flat position) of every order-parameter symbol, and the K/H positions."""
        rows = []
        for name, mat in self._order_matrices().items():
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    if mat[i, j] in self.index:
                        rows.append((self.index[mat[i, j]], name, i * mat.shape[1] + j))
        for k, s in enumerate(self.table.D):
            if s in self.index:
                rows.append((self.index[s], "D", k))
        K_pos, H_pos = self._positions
        k_rows = np.array([self.index[s] for s in K_pos], dtype=int)
        k_flat = np.array([i * self.P + j for i, j in K_pos.values()], dtype=int)
        h_rows = np.array([self.index[s] for s in H_pos], dtype=int)
        h_flat = np.array([i * self.P + j for i, j in H_pos.values()], dtype=int)
        return rows, (k_rows, k_flat), (h_rows, h_flat)

    def pack(self, order: Mapping[str, np.ndarray], K: np.ndarray, H: np.ndarray) -> np.ndarray:
        """State vector from order parameters (m ... R, D) and the P x P matrices K, H."""
        _, (k_rows, k_flat), (h_rows, h_flat) = self._pack_maps
        y = np.zeros(self.n)
        for name, (idx, pos) in self._pack_arrays.items():
            y[idx] = np.asarray(order[name], dtype=float).ravel()[pos]
        y[k_rows] = np.asarray(K, dtype=float).ravel()[k_flat]
        y[h_rows] = np.asarray(H, dtype=float).ravel()[h_flat]
        return y

    @functools.cached_property
    def _pack_arrays(self):
        """Per order parameter: (state indices, flat positions) of ``_pack_maps``' rows, for vectorised packing."""
        rows = self._pack_maps[0]
        out = {}
        for name in ORDER_KEYS:
            sel = [(i, pos) for i, n, pos in rows if n == name]
            if sel:
                out[name] = (np.array([i for i, _ in sel], dtype=int), np.array([q for _, q in sel], dtype=int))
        return out

    @functools.cached_property
    def field_maps(self):
        """Index arrays building the field overlap matrix Omega (P x P) and the teacher overlaps (P x M*) from the
        order parameters (used by ``_complete``), and the fields of each latent."""
        src = {"W": ("Q", "m"), "W_tilde": ("Q_tilde", "m_tilde")}
        names, ii, jj = [], [], []
        for u in self.vectors:
            for v in self.vectors:
                if u.family == v.family:
                    names.append(src[u.family][0]); ii.append(u.index); jj.append(v.index)
                elif u.family == "W":
                    names.append("R"); ii.append(u.index); jj.append(v.index)
                else:
                    names.append("R"); ii.append(v.index); jj.append(u.index)
        omega = {}
        for k, (n, i, j) in enumerate(zip(names, ii, jj)):
            omega.setdefault(n, ([], [], []))
            omega[n][0].append(k); omega[n][1].append(i); omega[n][2].append(j)
        omega = {n: tuple(np.array(x, dtype=int) for x in v) for n, v in omega.items()}
        teacher = {}
        for a, u in enumerate(self.vectors):
            teacher.setdefault(src[u.family][1], ([], []))
            teacher[src[u.family][1]][0].append(a); teacher[src[u.family][1]][1].append(u.index)
        teacher = {n: tuple(np.array(x, dtype=int) for x in v) for n, v in teacher.items()}
        latents = [np.array([a for a in range(self.P) if self.latent_of_field[a] == k], dtype=int)
                   for k in range(self.table.M)]
        return omega, teacher, latents

    @functools.cached_property
    def completion_maps(self):
        """What ``_complete`` needs per call, computed once: positions of eta and alpha in the parameter vector,
        ``field_maps`` and the (row, column) index grids of each latent's block of Sigma."""
        omega, teacher, latents = self.field_maps
        grids = [np.ix_(idx, idx) for idx in latents]
        return (self.param_names.index("eta"), self.param_names.index("alpha"), omega, teacher, latents, grids)

    @functools.cached_property
    def completion_gather(self):
        """Index arrays into the concatenation of the order parameters (``ORDER_KEYS`` order, each raveled) giving
        Omega (P*P), the teacher overlaps (P x M*) and the order-parameter entries of the state (state rows, sources):
        ``_plus_completer`` reads every order parameter with one gather."""
        T, P, Ms = self.table, self.P, self.table.M_star
        omega_map, teacher_map = self.completion_maps[2:4]
        shapes = {"m": (T.M, Ms), "m_tilde": (T.M, Ms), "Q": (T.M, T.M), "Q_tilde": (T.M, T.M), "R": (T.M, T.M),
                  "D": (T.M,)}
        offset, start = {}, 0
        for name in ORDER_KEYS:
            offset[name] = start
            start += int(np.prod(shapes[name]))
        omega_src = np.zeros(P * P, dtype=int)
        for name, (flat, i, j) in omega_map.items():
            omega_src[flat] = offset[name] + i * shapes[name][1] + j
        mm_src = np.zeros((P, Ms), dtype=int)
        for name, (a, i) in teacher_map.items():
            mm_src[a] = offset[name] + i[:, None] * Ms + np.arange(Ms)
        order_rows = np.concatenate([idx for idx, _ in self._pack_arrays.values()])
        order_src = np.concatenate([offset[name] + pos for name, (_, pos) in self._pack_arrays.items()])
        return omega_src, mm_src, order_rows, order_src

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

    @functools.cached_property
    def _unpack_gather(self):
        """``_unpack_maps`` as (shape, flat positions, state indices, fallbacks) per order parameter."""
        out = {}
        for name, (idx, other) in self._unpack_maps[0].items():
            flat = np.flatnonzero(idx.ravel() >= 0)
            out[name] = (idx.shape, flat, idx.ravel()[flat], other)
        return out

    def gram(self, order: Mapping[str, np.ndarray]) -> np.ndarray:
        """``gram_matrix`` of the order parameters (the same blocks, filled in place instead of ``np.block``)."""
        M, Ms = self.table.M, self.table.M_star
        G = np.empty((Ms + 2 * M, Ms + 2 * M))
        a, b = Ms, Ms + M
        m, mt, R = order["m"], order["m_tilde"], order["R"]
        G[:a, :a] = np.eye(Ms)
        G[:a, a:b], G[:a, b:] = m.T, mt.T
        G[a:b, :a], G[a:b, a:b], G[a:b, b:] = m, order["Q"], R
        G[b:, :a], G[b:, a:b], G[b:, b:] = mt, R.T, order["Q_tilde"]
        return G

    def unpack(self, y, params: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Order parameters (tied aliases and fixed D filled in) and K, H from a state vector (float or mpf)."""
        y = np.asarray(y)
        dtype = object if y.dtype == object else float
        maps, (k_rows, k_ij), (h_rows, h_ij) = self._unpack_maps
        out = {}
        for name, (shape, flat, rows, other) in self._unpack_gather.items():
            arr = np.zeros(shape, dtype=dtype)
            arr.flat[flat] = y[rows]
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

    @functools.cached_property
    def _stable_rate(self):
        """The rate with its KL term D - log D - 1 evaluated without cancellation (``stable_kl``)."""
        expr = stable_kl(self.system.observables["rate"], self.table.D)
        return sp.lambdify([list(self.system.state), list(self.system.params)], expr,
                           modules=[{"kl_gap": _kl_gap}, "numpy"])

    def free_energy(self, y: np.ndarray, p: np.ndarray) -> float:
        """The free energy alone (the same generated expression as ``observables()['free_energy']``)."""
        return float(self._obs(0.0, y, p)[self.fe_index])

    def observables(self, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        vals = self._obs(0.0, y, p)
        out = {k: float(v) for k, v in zip(self.obs_names, vals)}
        if "rate" in out:
            out["rate"] = float(self._stable_rate(list(y), list(p)))
        return out


#: D - log D - 1 of the rate observable (``kl_gap_float``: a scalar fast path with the series' operations in order).
_kl_gap = kl_gap_float


#: Above this many unknowns the generated functions are not JIT-compiled and the Jacobian is not generated: numba
#: needs minutes for the M = 3 Jacobian (~10^4 entries), and differentiating and printing it was most of the cold
#: build. The Jacobian is then taken by complex steps of the generated residual (``_ComplexStepModule``); the residual
#: itself is compiled (about 4 s at (3, 3): a straight-line kernel, lowered to LLVM directly by ``codegen/_llvm.py``).
NUMBA_MAX_UNKNOWNS = 60

#: Imaginary step of the float64 complex-step Jacobian: F(y + i h e_j) = F + i h dF/dy_j + O(h^2), with no
#: subtraction, so any tiny h gives dF/dy_j to rounding (relative truncation error ~ h^2).
COMPLEX_STEP = 1e-40


class _ComplexStepModule:
    """The generated functions of a large saddle-point system: the residual compiled (``rhs``, numba: a straight-line
    kernel, lowered directly) and in numpy and mpmath, ``observables`` (numpy and mpmath), and ``jac_numpy``/``jac_mp``
    as complex-step derivatives of the generated residual, exact to rounding because the residual is a rational
    function of the state (no branch, no absolute value): Im F(y + i h e_j) / h = dF/dy_j + O(h^2). The numpy Jacobian
    is one vectorised evaluation over the n columns."""

    def __init__(self, module):
        self.module = module
        self.rhs_numpy, self.rhs_mp = module.rhs_numpy, module.rhs_mp
        self.rhs_float = module.rhs  # the same numbers as rhs_numpy on float input (tests/test_statics_large.py)
        self.observables_numpy, self.observables_mp = module.observables_numpy, module.observables_mp

    def jac_numpy(self, t, y, p):
        return self.jac_columns(t, y, p, np.arange(np.shape(y)[0]))

    def jac_columns(self, t, y, p, columns):
        """dF/dy[:, columns] (float64): one vectorised complex evaluation over the chosen columns only."""
        y = np.asarray(y, dtype=float)
        columns = np.asarray(columns, dtype=int)
        Y = np.repeat(y[:, None], len(columns), axis=1).astype(complex)
        Y[columns, np.arange(len(columns))] += 1j * COMPLEX_STEP  # column k: y + i h e_columns[k]
        return self.module.rhs_numpy(t, Y, p).imag / COMPLEX_STEP

    def affine_columns(self, t, y, p, columns, F):
        """dF/dy[:, columns] for coordinates in which F is affine (the conjugates K): exact differences
        (F(y + h_j e_j) - F)/h_j, h_j = max(1, |y_j|) (the step actually represented), one call of the compiled
        residual per column (at (3, 3) 21 calls of 4 us, against 8.5 ms for the complex-step columns in numpy). No
        truncation error; rounding eps (|F| + the size of F's terms)/h_j. ``F``: F(y)."""
        y = np.asarray(y, dtype=float)
        F = np.asarray(F, dtype=float)
        out = np.empty((len(F), len(columns)))
        z = y.copy()
        for k, j in enumerate(columns):
            z[j] = y[j] + max(1.0, abs(y[j]))
            out[:, k] = (self.rhs_float(t, z, p) - F) / (z[j] - y[j])
            z[j] = y[j]
        return out

    def jac_mp(self, t, y, p):
        """dF/dy at the current mpmath precision (one complex evaluation per column; h = 2^-(prec + 20), so the
        O(h^2) truncation is far below the working precision)."""
        y = [mpmath.mpf(v) for v in y]
        n = len(y)
        h = mpmath.ldexp(1, -(mpmath.mp.prec + 20))
        out = mpmath.matrix(n, n)
        for j in range(n):
            z = list(y)
            z[j] = mpmath.mpc(y[j], h)
            F = self.module.rhs_mp(t, z, p)
            for i in range(n):
                out[i, j] = mpmath.im(F[i, 0]) / h
        return out


#: Functions that are not complex-analytic: a residual containing one is differentiated symbolically instead.
_NON_ANALYTIC = (sp.Abs, sp.sign, sp.re, sp.im, sp.conjugate, sp.Max, sp.Min, sp.Piecewise, sp.Heaviside, sp.floor,
                 sp.ceiling)


def _compile(system, *, large: bool | None = None):
    """The generated module of a saddle-point system: ``compile_system`` (numba) for small systems; for large ones
    the residual (numba, numpy, mpmath) and observables (numpy, mpmath) only, same generator and cache, differentiated
    by complex steps (``_ComplexStepModule``), or, should the residual contain a non-analytic function, with the
    symbolic Hessian (numpy and mpmath only).
    ``large``: force either path (default: more than NUMBA_MAX_UNKNOWNS unknowns)."""
    if not (len(system.state) > NUMBA_MAX_UNKNOWNS if large is None else large):
        return compile_system(system).module
    analytic = not any(e.has(*_NON_ANALYTIC) for e in system.rhs)
    key = system_key(system) + ("-numba-residual-complex-step" if analytic else "-numpy-hessian")
    what = "residual compiled, complex-step Jacobian" if analytic else "numpy/mpmath only"
    header = (f"kind: {system.kind} ({what})\n"
              f"model: {dict(system.model.describe())}\nkey: {key}")

    def specs():  # only on a cache miss
        # the residual compiled too (a straight-line kernel, lowered to LLVM directly: codegen/_llvm.py): the
        # structured fits evaluate it, and dF/dK, hundreds of times
        backends = ("numba", "numpy", "mpmath") if analytic else ("numpy", "mpmath")
        rhs = FunctionSpec("rhs", system.rhs, backends=backends, complex_input=analytic)
        obs = FunctionSpec("observables", list(system.observables.values()), backends=("numpy", "mpmath"))
        if analytic:
            return [rhs, obs]
        return [rhs, FunctionSpec("jac", _hessian(system), backends=("numpy", "mpmath")), obs]

    module, _ = load_cached_module(key, lambda: generate_source(specs(), system.state, system.params, header=header))
    return _ComplexStepModule(module) if analytic else module


def _hessian(system) -> sp.Matrix:
    """dF_i/dx_j of a saddle-point system, F = grad f: the Hessian of f, symmetric, so only j >= i is differentiated
    (half of ``system.jacobian``'s work; each entry mirrored)."""
    n = len(system.state)
    J = sp.zeros(n, n)
    for i in range(n):
        for j in range(i, n):
            J[i, j] = J[j, i] = sp.diff(system.rhs[i], system.state[j])
    return J


_SYSTEMS: dict[str, _Statics] = {}
def statics_system(model: Model) -> _Statics:
    """The compiled saddle-point system of ``model`` (derived and compiled on first use, then cached)."""
    key = model.key  # hashed once per model object
    if key not in _SYSTEMS:
        _SYSTEMS[key] = _Statics(model)
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
        saddles: every admissible saddle point found (``Saddle``: free energy, stability, phase), lowest f first.
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
    saddles: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        """The CLI contract: m, m_tilde, Q, Q_tilde, R, D, eg, rate, distortion, train_loss, phase, status."""
        out = {k: np.asarray(self.order[k], dtype=float).tolist() for k in ORDER_KEYS}
        out.update(eg=float(self.observables["eg"]), rate=float(self.observables["rate"]),
                   distortion=float(self.observables["distortion"]), train_loss=float(self.train_loss),
                   phase=self.phase, status=self.status)
        out["saddles"] = [s.to_json() for s in self.saddles]
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
    with np.errstate(all="ignore"):  # a trial step that overflows is rejected (non-finite F), not an error
        r = newton(FLOAT64, lambda z: S.F(z, p), lambda z: S.J(z, p), y, damping="lm", positive=S.d_idx, ftol=tol,
                   max_iter=max_iter, extra=extra)
    return r.x, r.residual, r.iterations


def _top_eigenpair(A: np.ndarray) -> tuple[float, np.ndarray]:
    """The largest eigenvalue of a symmetric matrix and a unit eigenvector: in closed form for 1 x 1 and 2 x 2 (a
    latent's block of the field covariance; LAPACK's call overhead was a third of a completion), else ``eigh``. The
    2 x 2 vector is formed from the larger of its two exact expressions (no cancellation); a multiple eigenvalue
    (b = 0, a = c) goes to ``eigh``."""
    if A.shape[0] == 1:
        return float(A[0, 0]), np.ones(1)
    if A.shape[0] == 2:
        a, b, c = float(A[0, 0]), float(A[0, 1]), float(A[1, 1])
        h = 0.5 * (a - c)
        r = math.hypot(h, b)
        if r > 0.0:
            v = np.array([h + r, b]) if h >= 0.0 else np.array([b, r - h])
            return 0.5 * (a + c) + r, v / math.hypot(v[0], v[1])
    w, V = np.linalg.eigh(A)
    return float(w[-1]), V[:, -1]


def _complete(S: _Statics, order: Mapping[str, np.ndarray], p: np.ndarray, rhos: np.ndarray, *,
              signs: str = "all") -> list[np.ndarray]:
    """States (best first) completing order parameters with conjugates: H = I + sum_k c_k v_k v_k^T (v_k spans the
    rank-one field covariance of latent k, c_k^2 = (eta/alpha) v_k^T (Omega - m m^T) v_k / (v_k^T Sigma v_k), both
    signs tried) and K by exact linear least squares (the equations are affine in K at fixed H). Uses nothing but
    the order parameters and the derived equations."""
    order = {k: np.asarray(order[k], dtype=float) for k in ORDER_KEYS}
    if signs != "all":  # one candidate, the positive sign on every latent: nothing to rank
        y = _plus_completer(S, p, rhos)(order)
        return [] if y is None else [y]
    T = S.table
    P = S.P
    eta_i, alpha_i, omega_map, teacher_map, latents, _ = S.completion_maps
    eta, alpha = float(p[eta_i]), float(p[alpha_i])
    Omega = np.zeros(P * P)
    for name, (flat, i, j) in omega_map.items():
        Omega[flat] = order[name][i, j]
    Omega = Omega.reshape(P, P)
    mm = np.zeros((P, T.M_star))
    for name, (a, i) in teacher_map.items():
        mm[a] = order[name][i]
    Sigma = (mm * rhos) @ mm.T + eta * Omega
    perp = Omega - mm @ mm.T
    directions = []
    for k in range(T.M):
        idx = latents[k]
        w, top = _top_eigenpair(Sigma[idx][:, idx])
        if not w > 1e-14:
            continue
        v = np.zeros(P)
        v[idx] = top
        c = math.sqrt(max(eta / alpha * float(v @ perp @ v) / w, 0.0))
        directions.append((c, v))
    states = []
    choices = itertools.product((1.0, -1.0), repeat=len(directions)) if signs == "all" else [(1.0,) * len(directions)]
    for chosen in choices:
        H = np.eye(P) + sum((sgn * c * np.outer(v, v) for sgn, (c, v) in zip(chosen, directions)), np.zeros((P, P)))
        y = S.pack(order, np.zeros((P, P)), H)
        F = S.F(y, p)
        if not np.all(np.isfinite(F)):
            continue
        JK = S.J_K(y, p, F)
        y[S.k_idx] += np.linalg.lstsq(JK, -F, rcond=1e-13)[0]
        if signs != "all":  # one candidate: nothing to rank
            return [y]
        res = float(np.abs(S.F(y, p)).max())
        states.append((res, y))
        if res < 1e-10:
            break
    states.sort(key=lambda item: item[0])
    return [y for _, y in states]


def _plus_completer(S: _Statics, p: np.ndarray, rhos: np.ndarray):
    """``_complete(S, ., p, rhos, signs="plus")`` as a function of float order parameters, with every index map and
    parameter read once: the structured fits (``_reduced_solve``) complete a state per evaluation of their residual,
    so the per-call work is only the arithmetic (the same operations in the same order as ``_complete``).

    Returns complete(order, residual=False) -> state, or (state, F at the state) with ``residual``; None where F is
    not finite. F is affine in K, so F at the completed state is F + dF/dK dK, without a further evaluation."""
    eta_i, alpha_i, omega_map, teacher_map, _, grids = S.completion_maps
    eta, alpha = float(p[eta_i]), float(p[alpha_i])
    P, Ms = S.P, S.table.M_star
    _, _, (h_rows, h_flat) = S._pack_maps
    k_idx, F_of, J_K, n = S.k_idx, S.F, S.J_K, S.n
    omega_src, mm_src, order_rows, order_src = S.completion_gather

    ratio = eta / alpha

    def complete(order, residual=False):
        v = np.concatenate([np.ravel(order[name]) for name in ORDER_KEYS])
        Omega = v[omega_src].reshape(P, P)
        mm = v[mm_src]
        Sigma = (mm * rhos) @ mm.T + eta * Omega
        perp = Omega - mm @ mm.T
        H = np.eye(P)
        for grid in grids:
            w, top = _top_eigenpair(Sigma[grid])
            if not w > 1e-14:
                continue
            c = math.sqrt(max(ratio * float(top @ perp[grid] @ top) / w, 0.0))
            H[grid] += c * np.outer(top, top)
        y = np.zeros(n)
        y[order_rows] = v[order_src]
        y[h_rows] = H.ravel()[h_flat]
        F = F_of(y, p)
        if not np.isfinite(F).all():
            return None
        JK = J_K(y, p, F)
        dK = np.linalg.lstsq(JK, -F, rcond=1e-13)[0]
        y[k_idx] += dK
        return (y, F + JK @ dK) if residual else y

    return complete


def _initial_states(S: _Statics, cf: ClosedForm, p: np.ndarray) -> list[np.ndarray]:
    """States completed from the closed form's order parameters (``closed_form_start=True`` only)."""
    rhos = np.array([cf.params.get(r.name, 0.0) for r in S.table.rho])
    return _complete(S, cf.order, p, rhos)


def _order_guess(S: _Statics, pv: Mapping[str, float], q, cos, ratio) -> dict[str, np.ndarray]:
    """Order parameters of weights with latent k of squared decoder norm q[k], cosine cos[k] with spike k (none for
    k >= M*), encoder row = ratio[k] x decoder column (the structure of every minimiser, see derivations/statics),
    mutually orthogonal latents and D_k = beta/(beta + q_k) (the minimiser over D of the KL term at given Q_kk)."""
    T = S.table
    M, Ms = T.M, T.M_star
    tied = S.P == M
    m, mt = np.zeros((M, Ms)), np.zeros((M, Ms))
    Q, Qt, R = np.zeros((M, M)), np.zeros((M, M)), np.zeros((M, M))
    beta = float(pv.get("beta", 1.0))
    D = np.zeros(M)
    for k in range(M):
        r = 1.0 if tied else ratio[k]
        Q[k, k], Qt[k, k], R[k, k] = q[k], r * r * q[k], r * q[k]
        if k < Ms:
            m[k, k] = cos[k] * math.sqrt(q[k])
            mt[k, k] = r * m[k, k]
        D[k] = float(pv[T.D[k].name]) if T.D[k].name in pv else beta / (beta + q[k])
    return {"m": m, "m_tilde": mt, "Q": Q, "Q_tilde": Qt, "R": R, "D": D}


#: largest norm (times the data variance) of a latent in the structured fits
_FIT_NORM_CAP = 1e3


def _reduced_solve(S: _Statics, pv: Mapping[str, float], p: np.ndarray, rhos: np.ndarray, q, cos, ratio,
                   max_nfev: int = 20, deflate: bool = False, active=None, aligned: bool = False) -> np.ndarray | None:
    """Least squares on the derived residual over the structured weights of ``_order_guess`` (per latent: log q, the
    cosine in [0, 1] -- or log(1 - cosine) <= 0 with ``aligned`` --, log encoder/decoder ratio; D from its own
    equations), with the conjugates completed by ``_complete`` (positive branch, continuous in the order
    parameters). A handful of unknowns instead of all of (m, ..., K, H): its basin is wide where Newton/LM on the
    full system is not. log(1 - cosine) keeps the fit well conditioned for strongly informed data, where the
    minimiser's cosine is 1 - O(eta/rho) and the signal equations are steep in it; at moderate cosines it takes the
    fits away (with equal spikes at M = M* = 3 every informed fit ran off to a large norm), so it is the second pass
    of the search. The collapsed root is deflated (P. E. Farrell, A. Birkisson, S. W. Funke, SIAM J. Sci. Comput. 37
    (2015) A2026) with ``deflate``, by the factor 1 + kappa/q (power one: the deflated residual stays finite as q ->
    0, so a learned root of small norm keeps its basin; power two pushed the fits past it): the collapsed point is a
    start of its own. Returns the completed state (None if it is not finite).

    ``max_nfev`` = 20: in these coordinates a fit that reaches a root does so well within 20 evaluations (random
    points of eight variants, 2,300 in all, gave the same results as with 40, at 0.6 of the cost; 12 was too few)."""
    M_all = S.table.M
    on = np.ones(M_all, bool) if active is None else np.asarray(active, bool)  # the others stay collapsed (q = 0)
    M = int(np.sum(on))
    d = S.d_idx
    q, cos, ratio = np.asarray(q)[on], np.asarray(cos)[on], np.asarray(ratio)[on]

    complete = _plus_completer(S, p, rhos)
    F_of = S.F

    def d_columns(x):  # Newton on D reads only the D columns of dF/dy: no full Jacobian (complex steps when large)
        J = np.zeros((S.n, S.n))
        J[:, d] = S.J_cols(x, p, d)
        return J

    def state(z):
        qa, ca, ra = np.zeros(M_all), np.zeros(M_all), np.ones(M_all)
        cosine = -np.expm1(z[M:2 * M]) if aligned else z[M:2 * M]
        qa[on], ca[on], ra[on] = np.exp(z[:M]), cosine, np.exp(z[2 * M:3 * M])
        guess = _order_guess(S, pv, qa, ca, ra)
        done = complete(guess, residual=True)
        if done is None:
            raise ValueError("F is not finite at the completed state")
        y, F = done
        if len(d) and np.abs(F[d]).max() > 1e-15 * max(1.0, float(np.abs(F).max())):
            # D from its own equations: along the flat valley W -> cW, W~ -> W~/c, D -> D/c^2 of small beta the
            # residual stays small, so D is not left as a free unknown of the least squares. A few damped Newton
            # steps on the D equations alone (D kept positive), unless D solves them to rounding already
            y = newton(FLOAT64, lambda x: F_of(x, p), d_columns, y, free=d, damping="line",
                       positive=d, xtol=1e-15, ftol=math.inf, max_iter=8).x
            # then the conjugates again, for the new D (they were completed for the guessed one: with learned
            # sigma^2 the guess beta/(beta + q) can be 0.47 where D = 0.028, and K, H left at the old D kept every
            # fit away from the minimiser)
            guess["D"] = y[d].copy()
            done = complete(guess, residual=True)
            if done is None:
                raise ValueError("F is not finite at the completed state")
            y, F = done
        return y, F

    kappa = float(np.sum(rhos)) + float(pv["eta"])

    def residual(z):
        try:
            with np.errstate(all="ignore"):
                F = state(z)[1]
        except (np.linalg.LinAlgError, IndexError, ZeroDivisionError, ValueError):
            return np.full(S.n, 1e6)
        # Farrell deflation of the collapsed root (q -> 0 is a root approached continuously; without it a start
        # near a small-norm minimiser slides into the collapsed point)
        deflation = 1.0 + kappa / max(float(np.sum(np.exp(z[:M]))), 1e-300) if deflate else 1.0
        return F * deflation if np.all(np.isfinite(F)) else np.full(S.n, 1e6)

    # the fits stay below 1e3 times the data variance in each norm: learned sigma^2 has a valley D -> 0,
    # Q -> infinity along which |F| decreases slowly without a root (from cosine 0.998 at the sample cosine, fits
    # reached Q = 2e4 there); Levenberg--Marquardt on the full system, which follows the fit, is not bounded
    log_cap = math.log(_FIT_NORM_CAP * kappa)
    if not (np.all(q > 0) and np.all(ratio > 0)):  # no start in the log coordinates (least squares would refuse it)
        return None
    if aligned:  # log(1 - cosine) <= 0
        z0 = [np.log(q), np.log1p(-np.clip(np.asarray(cos, float), 0.0, 1.0 - 1e-12)), np.log(ratio)]
        lo, hi = [-np.inf] * (3 * M), [log_cap] * M + [0.0] * M + [np.inf] * M
    else:  # the cosine in [0, 1]
        z0 = [np.log(q), np.clip(cos, 0.0, 1.0), np.log(ratio)]
        lo, hi = [-np.inf] * M + [0.0] * M + [-np.inf] * M, [log_cap] * M + [1.0] * M + [np.inf] * M
    try:
        with np.errstate(all="ignore"):  # trial steps that overflow are rejected by the method itself
            sol = scipy.optimize.least_squares(residual, np.concatenate(z0), bounds=(lo, hi), x_scale="jac",
                                               xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=max_nfev)
        y = state(sol.x)[0]
    except (ValueError, np.linalg.LinAlgError, IndexError, ZeroDivisionError):
        return None
    return y if np.all(np.isfinite(y)) else None


def _is_root(S: _Statics, y: np.ndarray, p: np.ndarray, res: float, tol: float) -> bool:
    """max|F| <= tol max(1, max|y|), and every equation's residual within tol of the size of its terms,
    |F_i| <= tol (1 + sum_j |dF_i/dy_j| |y_j|). The second test tells a root from a point far out on a flat valley
    (learned sigma^2: D -> 0, Q -> infinity, K -> infinity) where |F| stalls at a non-zero minimum, 1.2e-6 at
    K = 3e6 (7.6e-7 of its terms), which the first alone took for a root; at the roots it is 1e-13 or less."""
    if not res <= tol * max(1.0, float(np.max(np.abs(y)))):
        return False
    return bool(np.all(np.abs(S.F(y, p)) <= tol * _terms(S, y, p)))


def _terms(S: _Statics, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The size of each equation's terms, 1 + sum_j |dF_i/dy_j| |y_j| (``_is_root``)."""
    return 1.0 + np.abs(S.J(y, p)) @ np.abs(y)


def _total_norm(S: _Statics, y: np.ndarray, pv) -> float:
    return float(np.trace(np.asarray(S.unpack(y, pv)["Q"], dtype=float)))


def _search_starts(S: _Statics, pv: Mapping[str, float], p: np.ndarray, rhos: np.ndarray, n_random: int,
                   seed: int, scales=(1.0, 0.3, 3.0, 1e-2, 1e-3, 1e-4), collapsed: bool = True,
                   retry_deflated: bool = True, aligned: bool = False):
    """Labelled starting states, lazily: the collapsed point; informed (every latent aligned with its spike) and
    uninformed (no signal overlap) structured starts on a ladder of norms around the data variance, each first
    brought close by ``_reduced_solve`` (norms from 3 times the data variance down to 1e-4 of it); then ``n_random``
    random admissible starts (log-uniform norms, uniform cosines, log-uniform encoder/decoder ratios). With
    ``aligned``: the informed structured starts only, their fits in log(1 - cosine) (see ``_reduced_solve``),
    started at the cosine of the sample's top principal components with the spikes (``_sample_cosines``)."""
    M = S.table.M
    kappa = float(np.sum(rhos)) + float(pv["eta"])
    beta = float(pv.get("beta", 1.0))
    if collapsed:
        yield "collapsed", _collapsed_root(S, pv, p, rhos)
    ratio0 = np.full(M, 1.0 / (kappa + beta))
    # all latents at one norm; with M > 1 also the first alone (the rest collapsed) and the rest at 1 % of its norm
    # (a superfluous latent fitting the noise just below the bulk edge)
    profiles = [(None, np.ones(M))] if M == 1 else \
        [(None, np.ones(M)), (np.arange(M) == 0, np.ones(M)), (None, np.where(np.arange(M) == 0, 1.0, 1e-2))]
    # small norms last: just below a continuous transition the minimiser's norm is proportional to the distance
    # informed: the first latent aligned with its spike; with M, M* > 1 also every latent with its own spike first
    # (with equal spike strengths the single-latent starts keep the other latents in the invariant subspace of no
    # signal overlap, m_k = 0, and never reach the minimiser where every latent learns its spike)
    informed = _sample_cosines(S, pv, p, rhos) if aligned else np.full(M, 0.9)
    first_only = np.where(np.arange(M) == 0, informed, 0.0)
    every = np.where(np.arange(M) < S.table.M_star, informed, 0.0)
    starts = [("informed", every, None, np.ones(M))] if min(M, S.table.M_star) > 1 else []
    starts += [("informed", first_only, a, prof) for a, prof in profiles]
    starts += [("uninformed", np.zeros(M), a, prof) for a, prof in profiles]
    if aligned:
        starts = [s for s in starts if s[0] == "informed"]
    for scale in scales:
        for label, cos, active, profile in starts:
            q = scale * kappa * profile
            y = _reduced_solve(S, pv, p, rhos, q, cos, ratio0, deflate=scale < 0.1, active=active, aligned=aligned)
            if retry_deflated and y is not None and scale >= 0.1 and _total_norm(S, y, pv) < 1e-8 * kappa:
                # it slid into the collapsed root
                y = _reduced_solve(S, pv, p, rhos, q, cos, ratio0, deflate=True, active=active, aligned=aligned)
            if y is not None:
                yield label, y
    if aligned:
        return
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        q = kappa * np.exp(rng.uniform(math.log(1e-2), math.log(4.0), M))
        y = _reduced_solve(S, pv, p, rhos, q, rng.uniform(0.0, 1.0, M), np.exp(rng.uniform(-3.0, 1.0, M)))
        if y is not None:
            yield "random", y


def _swaps(S: _Statics, pv: Mapping[str, float]) -> list:
    """[(kind, permutation, parameters)] exchanging latent 1 with each latent k > 1 when the latents have their own
    fixed encoder variances D_k and these differ, and spike 1 with each spike j > 1 when the spikes have their own
    unequal strengths rho_j (else []). The structured starts align latent 1 with spike 1, so the search can miss a
    minimiser in which another latent, or another spike, is the one learnt: with D_1 = 0.715, D_2 = 0.6233 (rho =
    3.9682, eta = 0.4626, lam = 0.9439, alpha = 0.6375) latent 2 alone learns for beta in (2.105, 2.209); with M = 1,
    rho = (3.765, 5.1949) (eta = 1.9418, lam = 0.6935, alpha = 2.5094) the latent learns spike 2 up to beta_c =
    6.3906. In both the search returned the collapsed saddle as ok. With the parameters exchanged, it finds them as
    latent 1 on spike 1."""
    out = []
    for kind, symbols, count in (("latents", S.table.D, S.table.M), ("spikes", S.table.rho, S.table.M_star)):
        names = [d.name for d in symbols]
        if len(set(names)) < len(names) or not all(n in pv for n in names) or \
                len({float(pv[n]) for n in names}) < 2:
            continue
        for k in range(1, count):
            perm = np.arange(count)
            perm[[0, k]] = perm[[k, 0]]
            out.append((kind, perm, {**pv, names[0]: pv[names[k]], names[k]: pv[names[0]]}))
    return out


def _permuted(S: _Statics, y: np.ndarray, pv_from: Mapping[str, float], p: np.ndarray, rhos: np.ndarray,
              perm: np.ndarray, kind: str = "latents"):
    """The state y (a saddle at the parameters ``pv_from``) with its latents (or spikes: the columns of m and m~)
    permuted by ``perm`` and its conjugates completed at the parameter vector ``p`` (``_complete``); None if the
    completion fails."""
    o = S.unpack(y, pv_from)
    order = {}
    for key in ORDER_KEYS:
        a = np.asarray(o[key], dtype=float)
        if kind == "spikes":
            order[key] = a[:, perm] if key in ("m", "m_tilde") else a
        else:
            order[key] = a[perm] if key in ("D", "m", "m_tilde") else a[np.ix_(perm, perm)]
    done = _complete(S, order, p, rhos, signs="plus")
    return done[0] if done else None


def _sample_cosines(S: _Statics, pv: Mapping[str, float], p: np.ndarray, rhos: np.ndarray,
                    default: float = 0.9) -> np.ndarray:
    """Per latent k < M*, the cosine of the sample covariance's k-th principal component with spike k at aspect ratio
    alpha (Baik-Ben Arous-Peche; F. Benaych-Georges, R. R. Nadakuditi, Adv. Math. 227 (2011) 494):
    cos^2 = (1 - eta^2/(alpha rho_k^2)) / (1 + eta/(alpha rho_k)) above the detection threshold alpha rho_k^2 > eta^2,
    ``default`` below it and for the other latents. A property of the data, not of the VAE: an informed start for strongly
    informed data, where the minimiser's cosine is within 1e-3 of it and a start at 0.9 can slide along the flat
    direction of learned sigma^2 (D -> 0, Q -> infinity) instead."""
    M, Ms = S.table.M, S.table.M_star
    alpha = float(p[S.param_names.index("alpha")])
    out = np.full(M, float(default))
    for k in range(min(M, Ms)):
        phi = float(outlier(float(rhos[k]), float(pv["eta"]), alpha)[1])
        if phi > 0:
            out[k] = math.sqrt(phi)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Saddle:
    """One admissible saddle point of the replica free energy.

    Attributes:
        y: the state vector. order: m ... D. free_energy: f at the saddle (training loss per sample).
        phase, latent_phases: see ``classify_phase``. residual: max|F|.
        stable: the Hessian of f on the physical manifold (order parameters, the conjugates K, H eliminated, restricted
            to the directions in which the conjugate equations stay solvable) is positive semi-definite;
        hessian_min: its smallest eigenvalue. start: the start that reached it (``warm``, ``collapsed``,
            ``informed``, ``uninformed``, ``random``, ``revived latent``, ``homotopy`` or ``closed form``).
    """

    y: np.ndarray
    order: Mapping[str, np.ndarray]
    free_energy: float
    phase: str
    latent_phases: tuple[str, ...]
    residual: float
    stable: bool
    hessian_min: float
    start: str

    def to_json(self) -> dict:
        out = {k: np.asarray(self.order[k], dtype=float).tolist() for k in ORDER_KEYS}
        out.update(free_energy=self.free_energy, phase=self.phase, stable=self.stable,
                   hessian_min=self.hessian_min, residual=self.residual, start=self.start)
        return out


def _schur_hessian(ctx, J: np.ndarray, o: np.ndarray, c: np.ndarray, rtol) -> tuple[np.ndarray, float]:
    """The Hessian of f on the physical manifold from the Hessian ``J`` of f (order-parameter indices ``o``,
    conjugate indices ``c``), in the context's arithmetic: the Schur complement A - B C^+ B^T of the conjugate block C
    (eigenvalues below ``rtol`` max(1, max|J|) taken as its null space), restricted to the order-parameter directions
    along which the linearised conjugate equations remain solvable (orthogonal to null(C)^T B^T).

    Returns (hessian, rounding): ``rounding`` estimates the float64 error of the Schur complement, |B|^2 delta / w^2
    for the smallest inverted eigenvalue w of C and an error delta = 10 eps max|J| in it (inverting an eigenvalue
    of 1e-6 beside one of 1e3 loses about 8 digits); 0 in mpmath."""
    J = (J + J.T) / 2
    A, B, C = J[o][:, o], J[o][:, c], J[c][:, c]
    scale = max(1.0, float(np.max(np.abs(np.asarray(J, dtype=float))))) if J.size else 1.0
    rounding = 0.0
    schur, T = A, ctx.eye(len(o))
    if len(c):
        w, V = ctx.eigh(C)
        keep = np.array([abs(v) > rtol * scale for v in w], dtype=bool)
        if keep.any():
            BV = B @ V[:, keep]
            schur = A - (BV / w[keep]) @ BV.T
            if ctx is FLOAT64:
                w_min = float(np.min(np.abs(w[keep])))
                rounding = float(np.linalg.norm(B, 2)) ** 2 * 10 * FLOAT64.eps * scale / w_min ** 2
        null = V[:, ~keep]
        if null.shape[1]:
            _, sv, vt = ctx.svd((B @ null).T)
            top = max(float(sv[0]), 1.0) if len(sv) else 1.0
            rk = sum(1 for v in sv if float(v) > rtol * top)
            T = vt[rk:].T
    return T.T @ schur @ T, rounding


def physical_hessian(S: _Statics, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The Hessian of f in the order parameters with K, H eliminated (Schur complement of the conjugate block of
    dF/dy = the Hessian of f), restricted to the order-parameter directions along which the linearised conjugate
    equations remain solvable (orthogonal to the null space of the conjugate block) -- the physical manifold.
    float64; ``_hessian_min`` decides doubtful signs at 30 digits."""
    return _schur_hessian(FLOAT64, S.J(y, p), S.o_idx, S.kh, 1e-9)[0]


#: digits of the mpmath Hessian that decides a stability the float64 Schur complement cannot
_HESSIAN_DPS = 30


def _equilibrated_min(h) -> tuple[float, float]:
    """(smallest eigenvalue, largest |entry|) of E h E with E > 0 diagonal (symmetric Ruiz scaling: every row's
    largest entry near 1). By Sylvester's law of inertia it has the signs of h's eigenvalues; on it a tolerance
    relative to the largest entry means the same in every direction, which on h it does not (at (M, M*) = (2, 1),
    alpha = 1.1e-3, rho/eta = 30, h has entries of 9e5 and its one negative eigenvalue, the informed direction
    just above alpha_c, is -4.8e-4: below 1e-8 of the largest entry, so the uninformed saddle passed as stable and
    was reported `ok`, m = 0 where the minimiser has m = 0.18)."""
    he = np.array(h, dtype=float)
    for _ in range(8):
        r = np.sqrt(np.max(np.abs(he), axis=1))
        r[r == 0] = 1.0
        if np.all(np.abs(r - 1.0) < 1e-3):
            break
        he = he / r[:, None] / r[None, :]
    return float(np.linalg.eigvalsh((he + he.T) / 2)[0]), max(1e-300, float(np.max(np.abs(he))))


def _hessian_min(S: _Statics, y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(smallest eigenvalue, tolerance) of the physical Hessian: the saddle is stable iff smallest >= -tolerance.
    The tolerance is 1e-8 of the largest entry of the equilibrated Hessian (``_equilibrated_min``), carried over to
    h's own scale; the sign is h's (the inertia of both is the same). In float64 unless the rounding estimate of
    the Schur complement exceeds both |smallest eigenvalue| and that tolerance: the conjugate block can have
    genuine eigenvalues of 1e-6 beside ones of 1e3 (strongly informed data, small beta), whose inversion leaves no
    correct digit of an O(1) eigenvalue; then the saddle is refined and the Hessian evaluated again at 30 digits (a
    refinement that does not converge keeps the float64 value)."""
    h, rounding = _schur_hessian(FLOAT64, S.J(y, p), S.o_idx, S.kh, 1e-9)
    if not h.size:
        return 0.0, 1e-8
    hmin = float(np.linalg.eigvalsh(h)[0])
    tol = _tolerance(h, hmin)
    if rounding <= max(abs(hmin), tol):
        return hmin, tol
    ctx = MpContext(_HESSIAN_DPS, guard=10)
    with ctx.precision():
        pm = [ctx.from_decimal(v) for v in p]
        try:
            x, converged, _ = _refine_mp(S, y, pm, ctx, max_iter=20)
        except SingularMatrix:
            converged = False
        if not converged:
            return hmin, tol
        Jm = ctx.asmatrix(S.module.jac_mp(0, x, pm))
        hm, _ = _schur_hessian(ctx, Jm, S.o_idx, S.kh, mpmath.mpf(10) ** (-_HESSIAN_DPS // 2))
        if not hm.size:
            return 0.0, tol
        hmin = float(ctx.eigh(hm)[0][0])
        return hmin, _tolerance(np.array(hm.tolist(), dtype=float), hmin)


def _tolerance(h, hmin: float) -> float:
    """The stability tolerance on h's scale: 1e-8 of the equilibrated Hessian's largest entry, times the ratio of
    h's smallest eigenvalue to the equilibrated one's (same sign); 1e-8 max(1, max|h|) where that ratio is
    undefined (both zero)."""
    if hmin >= 0.0:  # stable whatever the tolerance: no equilibration (the warm path's usual case)
        return 1e-8 * max(1.0, float(np.max(np.abs(h))))
    he_min, he_scale = _equilibrated_min(h)
    if he_min >= 0.0:
        return 1e-8 * max(1.0, float(np.max(np.abs(h))))
    return 1e-8 * he_scale * abs(hmin / he_min)


def _snap_collapsed(order: Mapping[str, np.ndarray], latent_phases) -> dict[str, np.ndarray]:
    """The order parameters with every overlap of each collapsed latent (its rows of m, m~ and its rows and columns
    of Q, Q~, R) set to zero; D is kept."""
    out = {k: np.array(order[k], dtype=float) for k in ORDER_KEYS}
    for k, phase in enumerate(latent_phases):
        if phase == "collapsed":
            out["m"][k], out["m_tilde"][k] = 0.0, 0.0
            for name in ("Q", "Q_tilde", "R"):
                out[name][k, :], out[name][:, k] = 0.0, 0.0
    return out


def _saddle(S: _Statics, y: np.ndarray, p: np.ndarray, pv, residual: float, start: str, rhos,
            order=None) -> Saddle:
    order = S.unpack(y, pv) if order is None else order
    named = {k: order[k] for k in ORDER_KEYS}
    phase, per = _phase_from_order(named)
    # K, H are undetermined on collapsed latents (their fields vanish): evaluate the Hessian at the canonical
    # completion (H = I there, K by least squares) when it is as good a saddle point, first with the collapsed
    # latents' overlaps set to exactly zero (a root reached from a random start can sit on the boundary with
    # round-off overlaps, m ~ 1e-7 at Q ~ 1e-19, and conjugates of its own, at which the Hessian can look positive
    # while the collapsed saddle itself is unstable)
    y_h = y
    if "collapsed" in per:
        for candidate in (_snap_collapsed(named, per), named):
            done = _complete(S, candidate, p, rhos, signs="plus")
            if done and float(np.max(np.abs(S.F(done[0], p)))) <= max(10 * residual, 1e-10):
                y_h = done[0]
                break
    hmin, tol = _hessian_min(S, y_h, p)
    if hmin < -tol and "collapsed" not in per:
        # the conjugates can sit far out along their degenerate directions (K, H acting on the null space of the field
        # covariance: a warm start from a distant neighbour reached H with eigenvalues -0.94 and 2.41, not symmetric,
        # where the minimiser's own completion has 1 and 2.41); the Schur complement there is not the Hessian of f on
        # the physical manifold (it was -8.98 at the minimiser). Judged again at the canonical completion of the same
        # order parameters (H = I + c v v^T, c >= 0; K by least squares), refined to a root; if that is stable the
        # saddle is reported there
        done = _complete(S, named, p, rhos, signs="plus")
        if done:
            y_c, res_c, _ = _gauss_newton(S, done[0], p, tol=1e-12 * max(1.0, float(np.max(np.abs(done[0])))),
                                          max_iter=8)
            if _is_root(S, y_c, p, res_c, 1e-12) and _same(y_c, y, S, pv, None, order):
                h_c, tol_c = _hessian_min(S, y_c, p)
                if h_c >= -tol_c:
                    y, residual, hmin, tol = y_c, res_c, h_c, tol_c
    return Saddle(y=y, order=named, free_energy=S.free_energy(y, p), phase=phase,
                  latent_phases=per, residual=residual, stable=hmin >= -tol, hessian_min=hmin, start=start)


def _same(a: np.ndarray, b: np.ndarray, S: _Statics, pv, oa=None, ob=None) -> bool:
    oa = S.unpack(a, pv) if oa is None else oa
    ob = S.unpack(b, pv) if ob is None else ob
    return all(np.allclose(oa[k], ob[k], rtol=1e-7, atol=1e-8) for k in ORDER_KEYS)


def _tilt_starts(S: _Statics, pv: Mapping[str, float], p: np.ndarray, rhos: np.ndarray, saddle: "Saddle"):
    """Starts from an unstable saddle: its active latents k < M* given the cosine of the sample's k-th principal
    component with spike k (``_sample_cosines``; only above that spike's detection threshold), its norms and
    encoder/decoder ratios kept, fitted by ``_reduced_solve`` with the cosine as it is and in log(1 - cosine)."""
    Q = np.diag(np.asarray(saddle.order["Q"], dtype=float))
    R = np.diag(np.asarray(saddle.order["R"], dtype=float))
    active = Q > 1e-12 * max(1.0, float(np.max(np.abs(Q))))
    cos = np.where(active, _sample_cosines(S, pv, p, rhos, default=0.0), 0.0)
    if not np.any(cos > 0):
        return
    ratio = np.where(active, R / np.where(active, Q, 1.0), 1.0)
    if not np.all(ratio[active] > 0):
        return
    for aligned in (False, True):
        y = _reduced_solve(S, pv, p, rhos, np.where(active, Q, 1.0), cos, ratio, active=active, aligned=aligned)
        if y is not None:
            yield y


def _revive_starts(S: _Statics, pv: Mapping[str, float], p: np.ndarray, rhos: np.ndarray, saddle: "Saddle"):
    """Starts from a saddle with collapsed latents: the other latents as they are, one collapsed latent (by its
    phase; its round-off overlaps give no encoder/decoder ratio, the default one is used) revived at a small norm
    (0.1, 1e-2 and 1e-3 of the data variance with its ratio, then 1, 0.1 and 1e-2 of the bulk edge
    eta (1 + 1/sqrt(alpha))^2 with the edge's ratio; no signal overlap) -- a superfluous latent that fits the noise just
    below the bulk edge has a small norm while the learning latent's is O(1) (rho = 1.16, eta = 0.167, beta = 0.243,
    alpha = 5.37: 0.074 of the data variance, which the fits from 1e-2 and 1e-3 did not reach)."""
    o = saddle.order
    Q = np.diag(np.asarray(o["Q"], dtype=float)).copy()
    kappa = float(np.sum(rhos)) + float(pv["eta"])
    Ms = S.table.M_star
    m = np.asarray(o["m"], dtype=float)
    cos = np.array([m[k, k] / math.sqrt(Q[k]) if k < Ms and Q[k] > 0 else 0.0 for k in range(S.table.M)])
    R = np.diag(np.asarray(o["R"], dtype=float))
    ratio = np.where(Q > 0, R / np.where(Q > 0, Q, 1.0), 1.0 / (kappa + float(pv.get("beta", 1.0))))
    beta = float(pv.get("beta", 1.0))
    alpha = float(p[S.param_names.index("alpha")])
    edge = float(bulk_edge(float(pv["eta"]), alpha))  # top of the noise bulk of the sample covariance
    for k in [k for k, phase in enumerate(saddle.latent_phases) if phase == "collapsed"]:
        # norms and encoder/decoder ratio on the scale of the data variance, then of the bulk edge: a latent fitting
        # the noise of strongly informed data (rho/eta = 55, alpha = 0.25, beta = 0.03) has Q = 0.15 and ratio 5.5,
        # near the edge (0.18) and 1/(edge + beta) = 4.7, not 1/(kappa + beta) = 0.86
        for scale, rungs in ((kappa, (0.1, 1e-2, 1e-3)), (edge, (1.0, 0.1, 1e-2))):
            for small in rungs:
                q = Q.copy()
                q[k] = small * scale
                c = cos.copy()
                c[k] = 0.0
                r = ratio.copy()
                r[k] = 1.0 / (scale + beta)
                y = _reduced_solve(S, pv, p, rhos, np.maximum(q, 1e-300), c, r)
                if y is not None:
                    yield y


def _homotopy(S: _Statics, pv: Mapping[str, float], alpha: float, rhos: np.ndarray, start: Mapping[str, float],
              random_starts: int, seed: int, steps: int = 8, geometric: tuple[str, ...] = ()):
    """States reached by continuation in the parameters: the search at ``start`` (parameter values where the
    structured starts converge reliably), then the parameters moved to their values ``pv`` along t in [0, 1]
    (linearly; geometrically for the names in ``geometric``), one branch per saddle found at ``start``, in
    warm-started steps of 1/``steps`` at first, grown by 1.5 after a converged step and halved after a refused one
    (down to 1/(64 ``steps``)). Yields the end state of each branch that converged all the way."""
    p0 = S.param_vector(start, alpha)
    found = []
    for label, y0 in _search_starts(S, start, p0, rhos, random_starts, seed):
        y, res, _ = _gauss_newton(S, y0, p0, tol=1e-12 * max(1.0, float(np.max(np.abs(y0)))), max_iter=40)
        if res <= 1e-10 * max(1.0, float(np.max(np.abs(y)))) and _admissible(S, y, start) and \
                not any(_same(y, f, S, start) for f in found):
            found.append(y)
    moving = [n for n in pv if float(start[n]) != float(pv[n])]

    def at(t):
        return {**pv, **{n: float(start[n]) * (float(pv[n]) / float(start[n])) ** t if n in geometric
                         else float(start[n]) + t * (float(pv[n]) - float(start[n])) for n in moving}}

    for y in found:
        # adaptive steps in t with a secant predictor: a step is refused (and halved) when Newton does not converge
        # or when a branch of non-zero norm lands on the collapsed point (a small-norm branch lies close to it)
        t, dt, prev = 0.0, 1.0 / steps, None
        while t < 1.0 and dt >= 1.0 / (64 * steps):
            t1 = min(1.0, t + dt)
            y0 = y if prev is None else y + (y - prev[1]) * (t1 - t) / (t - prev[0])
            y1, res, _ = _gauss_newton(S, y0, S.param_vector(at(t1), alpha),
                                       tol=1e-12 * max(1.0, float(np.max(np.abs(y0)))), max_iter=40)
            norm, norm1 = _total_norm(S, y, pv), _total_norm(S, y1, pv)
            if res <= 1e-10 * max(1.0, float(np.max(np.abs(y1)))) and not (norm > 0 and norm1 < 1e-6 * norm):
                prev, y, t, dt = (t, y), y1, t1, 1.5 * dt
            else:
                dt *= 0.5
        if t >= 1.0:
            yield y


def _homotopy_starts(pv: Mapping[str, float]):
    """(start parameters, names moved geometrically) of the continuations tried when the search finds no local
    minimum: from zero weight decay (where the structured starts converge reliably), and from three and nine times
    the KL weight (at small beta without weight decay the weights have an almost flat direction W -> cW,
    W~ -> W~/c, along which the structured fits slide past the minimiser; at a larger beta it is curved)."""
    decays = [n for n in pv if n.startswith("lam")]
    if decays and any(float(pv[n]) != 0.0 for n in decays):
        yield {**pv, **{n: 0.0 for n in decays}}, ()
    if float(pv.get("beta", 0.0)) > 0.0:
        for factor in (3.0, 9.0):
            yield {**pv, "beta": factor * float(pv["beta"])}, ("beta",)


def no_closed_form_start() -> bool:
    """True when the environment forbids the closed form as a start (``SYMVAE_STATICS_NO_CLOSED_FORM=1``)."""
    return os.environ.get("SYMVAE_STATICS_NO_CLOSED_FORM", "") not in ("", "0")


def _distance(S: _Statics, y: np.ndarray, cf: ClosedForm, params) -> float:
    order = S.unpack(y, params)
    return max(float(np.max(np.abs(np.asarray(cf.order[k], dtype=float) - order[k]))) for k in ORDER_KEYS)


def _admissible(S: _Statics, y: np.ndarray, params, order=None) -> bool:
    """Physical saddle points only: the Gram matrix of [W*, W, W~] is PSD and D > 0 (the equations continue
    analytically to Q < 0 across a collapse transition)."""
    order = S.unpack(y, params) if order is None else order
    G = S.gram(order) if order["m"].dtype == float else gram_matrix(S.table.M, S.table.M_star, order)
    scale = max(1.0, float(np.max(np.abs(G))))
    return bool(np.linalg.eigvalsh(G)[0] >= -1e-9 * scale and np.all(order["D"] > 0))


def _crossed_boundary(order: Mapping[str, np.ndarray], guess) -> bool:
    """True when a converged root continued from ``guess`` has Q_kk < 0 on every latent with Q_kk > 0 in the guess
    (and D > 0): the guess's branch crossed the collapsed boundary, every learned latent at once."""
    if getattr(guess, "order", None) is None:
        return False
    q_new = np.diag(np.asarray(order["Q"], dtype=float))
    q_old = np.diag(np.asarray(guess.order["Q"], dtype=float))
    learned = q_old > 0
    return bool(np.any(learned) and np.all(q_new[learned] < 0) and np.all(np.asarray(order["D"], dtype=float) > 0))


def _collapsed_state(S: _Statics, params: Mapping[str, float]) -> np.ndarray:
    T = S.table
    M, Ms, P = T.M, T.M_star, S.P
    order = {"m": np.zeros((M, Ms)), "m_tilde": np.zeros((M, Ms)), "Q": np.zeros((M, M)),
             "Q_tilde": np.zeros((M, M)), "R": np.zeros((M, M)),
             "D": np.array([params.get(d.name, 1.0) for d in T.D])}
    return S.pack(order, np.zeros((P, P)), np.eye(P))


def _collapsed_root(S: _Statics, params: Mapping[str, float], p: np.ndarray, rhos: np.ndarray) -> np.ndarray:
    """The collapsed point with its conjugates completed (K = 0, H = I is not a root when the weight decay acts on
    one of the two matrices only; from there Levenberg--Marquardt can wander off)."""
    y = _collapsed_state(S, params)
    done = _complete(S, S.unpack(y, params), p, rhos, signs="plus")
    return done[0] if done else y


def solve_statics(model: Model, params: Mapping[str, float], alpha: float, *, guess: "StaticsResult | None" = None,
                  compare: bool = True, closed_form_start: bool = False, random_starts: int = 2, seed: int = 0,
                  tol: float = 1e-12, max_iter: int = 40, throw: bool = True, _exchange: bool = True) -> StaticsResult:
    """Solve the replica saddle-point equations at (params, alpha) and report the global minimiser.

    Nothing but the derived equations is needed: starts are the collapsed point, informed and uninformed structured
    starts on a ladder of norms, and random admissible starts (``_search_starts``); each is solved by
    Levenberg--Marquardt whose convergence test is on the undamped residual max|F| (a rejected, non-finite or
    D <= 0 trial step is rolled back). Among the admissible saddle points found (PSD Gram matrix, D > 0) the
    lowest free energy wins; all of them are reported in ``saddles`` with free energy, stability and phase.

    Arguments:
        model: the model definition.
        params: parameter values by name (``statics_param_names(model)``).
        alpha: n / N (> 0, finite).

    Other arguments:
        guess: a previous result at nearby parameters (warm start). Its saddle point is kept when admissible; the
            full search runs as well when there is no guess, when the warm start fails, or when ``compare`` finds
            the warm saddle away from the closed form (the closed form is then a check that asks for more search,
            never a start). A warm start that lands on the collapsed boundary, or whose branch went through it (a
            root with Q_kk < 0 on every latent the guess had learned; the collapsed saddle then replaces it), adds
            escape starts instead of the full search.
        compare: also compute the random-matrix closed form and report the difference to it.
        closed_form_start: also start from the closed form (faster; off by default and always off when the
            environment sets ``SYMVAE_STATICS_NO_CLOSED_FORM=1``).
        random_starts, seed: random admissible starts of the search.
        tol: residual tolerance, max|F| <= tol * max(1, max|y|) and each |F_i| <= tol times the size of its terms
            (``_is_root``); max_iter: Levenberg--Marquardt iteration budget.
        throw: raise ``StaticsError`` instead of returning a failed result.

    Latents with their own, unequal fixed encoder variances D_k are not interchangeable, nor are spikes of unequal
    strengths rho_j, and the structured starts align latent 1 with spike 1: when the lowest saddle has a collapsed
    latent or is not stable, the problem is also solved with latent 1 and each latent k (spike 1 and each spike j)
    exchanged, and its learned saddles, exchanged back, are candidates too (``_swaps``).

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
    rhos = np.array([float(pv.get(r.name, 0.0)) for r in S.table.rho])
    cf = closed_form(model, pv, alpha) if compare else None
    # (K enters f only multiplied by overlaps, which vanish here, and the completion keeps H = I: no completion needed)
    f_collapsed = S.free_energy(_collapsed_state(S, pv), p)
    use_cf = closed_form_start and not no_closed_form_start()

    saddles: list[Saddle] = []
    failed = None
    total_it = 0
    crossed = False  # the warm start's branch went through the collapsed boundary (see below)

    def run(label, y0):
        nonlocal failed, total_it, crossed
        y, res, it = _gauss_newton(S, y0, p, tol=tol * max(1.0, float(np.max(np.abs(y0)))), max_iter=max_iter)
        total_it += it
        root = _is_root(S, y, p, res, tol)
        if not root and res <= tol * max(1.0, float(np.max(np.abs(y)))):
            # converged by the scaled test, not by the per-equation one: Levenberg--Marquardt stopped at
            # tol max|y|, which at a collapsed point with large undetermined K (|K| ~ 20) leaves an equation at
            # 1.3 tol times its terms; a few more steps at the per-equation tolerance
            y2, res2, it2 = _gauss_newton(S, y, p, tol=tol * float(np.min(_terms(S, y, p))), max_iter=8)
            total_it += it2
            if res2 < res:
                y, res = y2, res2
                root = _is_root(S, y, p, res, tol)
        if root:
            order = S.unpack(y, pv)
            if _admissible(S, y, pv, order):
                if not any(_same(y, s.y, S, pv, order, s.order) for s in saddles):
                    saddles.append(_saddle(S, y, p, pv, res, label, rhos, order))
                return True
            if label == "warm":
                crossed = _crossed_boundary(order, guess)
        if failed is None or res < failed[1]:
            failed = (y, res)
        return False

    warm_ok = guess is not None and run("warm", np.array(guess.y, dtype=float))
    if crossed:
        # the neighbour's branch, continued, is a root with Q_kk < 0 on every latent it had learned: it went through
        # the collapsed boundary Q = 0 between the two points (a continuous collapse; the equations continue
        # analytically to Q < 0). The boundary point it crossed, the collapsed saddle, then takes the place of the
        # warm start, and only escape starts are added below, as when the warm start lands on the boundary itself
        warm_ok = run("collapsed", _collapsed_root(S, pv, p, rhos))
    if use_cf:
        for y0 in _initial_states(S, cf if cf is not None else closed_form(model, pv, alpha), p)[:1]:
            run("closed form", y0)

    def settled() -> bool:  # the lowest admissible saddle is a local minimum on the physical manifold
        return bool(saddles) and min(saddles, key=lambda s: s.free_energy).stable

    def conclusive() -> bool:
        # a collapsed latent sits on the boundary Q_kk = 0 of the physical region, where leaving it changes f at
        # first order in Q_kk (not second): its Hessian says nothing about a nearby learned branch, so a collapsed
        # minimiser is only accepted after a search for a learned saddle (the full search, or the escape starts below)
        best = min(saddles, key=lambda s: s.free_energy) if saddles else None
        return settled() and "collapsed" not in best.latent_phases

    warm_best = min(saddles, key=lambda s: s.free_energy) if saddles else None
    deeper = (getattr(guess, "alpha", None) == alpha and all(
        v == getattr(guess, "params", {}).get(k) for k, v in pv.items() if k != "beta")
        and float(pv.get("beta", 0.0)) >= float(getattr(guess, "params", {}).get("beta", np.inf)))
    if warm_ok and settled() and warm_best.phase == "collapsed" and getattr(guess, "phase", None) == "collapsed" \
            and deeper:
        search = False  # a larger beta than a collapsed neighbour's, all else equal: the KL weight only grew
    elif warm_ok and settled() and "collapsed" in warm_best.latent_phases:
        # warm-started onto the collapsed boundary: the neighbour's own branch was the warm start, so only escape
        # starts are added: structured starts at 0.3 of the data variance (just below a continuous transition the
        # learned branch has a small norm, 1e-3 of the data variance at 1e-3 from beta_c, which the deflated
        # small-norm starts can overshoot while these reach it; one that slides into the collapsed root is not
        # repeated deflated, the small-norm start is) and a deflated small-norm one at 1e-2 (a learned branch born
        # at a continuous transition starts at small norm; the deflation 1 + kappa/q lets that fit go down to the
        # branch: warm starts from beta_c (1 + 1e-3) reach the learned minimiser at beta_c (1 - 1e-5) in five
        # variants, and a third rung at 1e-3 only cost time), until one is conclusive; the full search runs if one
        # of them finds a lower saddle that is not itself conclusive
        for label, y0 in _search_starts(S, pv, p, rhos, 0, seed, scales=(0.3, 1e-2), collapsed=False,
                                        retry_deflated=False):
            run(label, y0)
            if conclusive():
                break
        search = min(saddles, key=lambda s: s.free_energy) is not warm_best and not conclusive()
    else:
        search = not warm_ok or not conclusive()
    if not search and cf is not None:
        search = _distance(S, min(saddles, key=lambda s: s.free_energy).y, cf, pv) > 1e-8
    if search:
        for k, (label, y0) in enumerate(_search_starts(S, pv, p, rhos, random_starts, seed)):
            run(label, y0)
            if k >= 2 and conclusive():
                break  # the first rung (collapsed, informed, uninformed) found a local minimum below every other
    revived = []

    def revive():
        # the lowest saddle with a collapsed latent (M > 1): each such latent revived (a superfluous latent fitting
        # the noise); again whenever a later pass finds a new lowest saddle with a collapsed latent (with rho/eta = 55
        # and beta = 0.03 the learning latent was found only by the aligned pass, after the all-collapsed saddle had
        # been revived in vain, and the minimiser, whose second latent fits the noise, was never tried)
        while saddles and S.table.M > 1:
            low = min(saddles, key=lambda s: s.free_energy)
            if "collapsed" not in low.latent_phases or any(low is s for s in revived):
                return
            revived.append(low)
            for y0 in _revive_starts(S, pv, p, rhos, low):
                run("revived latent", y0)

    revive()
    if not settled():
        # strongly informed data: the informed fits again, in log(1 - cosine)
        for label, y0 in _search_starts(S, pv, p, rhos, 0, seed, collapsed=False, aligned=True):
            run(label, y0)
            if conclusive():
                break
        revive()
    if not settled():
        for start, geometric in _homotopy_starts(pv):
            for y0 in _homotopy(S, pv, alpha, rhos, start, random_starts, seed, geometric=geometric):
                run("homotopy", y0)
            if settled():
                break
        revive()
    if not settled() and S.table.M > 1:
        # the lowest saddle is unstable and has no collapsed latent to revive (at (2, 1), just above alpha_c with
        # alpha << 1: both latents on the bulk edge, the informed direction unstable), while a higher saddle has the
        # informed latent with the other one collapsed: revive the collapsed latents of the others too, lowest first
        # (rho/eta = 6.4, alpha = 0.025: the minimiser, informed plus bulk edge, was never tried; `failed`)
        for other in sorted(saddles, key=lambda s: s.free_energy):
            if settled():
                break
            if "collapsed" in other.latent_phases and other.phase != "collapsed" and not any(
                    other is s for s in revived):
                revived.append(other)
                for y0 in _revive_starts(S, pv, p, rhos, other):
                    run("revived latent", y0)
    if not settled():
        # the lowest saddle is unstable: its latents tilted towards their spikes, at its own norms and encoder/decoder
        # ratios, by the sample's principal-component cosines ((2, 1), rho/eta = 30, alpha = 1.001 .. 1.1 alpha_c =
        # 1.1e-3: every latent sits on the bulk edge at Q = 876-960, 28 times the data variance, beyond the norms
        # of the structured starts, and the minimiser's informed latent has the sample cosine 0.006-0.057)
        low = min(saddles, key=lambda s: s.free_energy)
        if not low.stable and low.phase != "collapsed":
            for y0 in _tilt_starts(S, pv, p, rhos, low):
                run("tilted", y0)
                if settled():
                    break
    low = min(saddles, key=lambda s: s.free_energy) if saddles else None
    if _exchange and (low is None or not low.stable or "collapsed" in low.latent_phases):
        for kind, perm, pv_k in _swaps(S, pv):
            other = solve_statics(model, pv_k, alpha, compare=False, random_starts=random_starts, seed=seed, tol=tol,
                                  max_iter=max_iter, throw=False, _exchange=False)
            for s_k in other.saddles:
                if s_k.phase != "collapsed":
                    y0 = _permuted(S, s_k.y, pv_k, p, rhos, perm, kind)
                    if y0 is not None:
                        run(f"{kind} exchanged", y0)
    if saddles:
        best = min(saddles, key=lambda s: s.free_energy)
        y, res = best.y, best.residual
    else:
        y, res = failed
    scale_tol = tol * max(1.0, float(np.max(np.abs(y))))
    # W = 0 is always a configuration: a minimiser above the collapsed point's free energy cannot be the global one
    # (a pseudo-root far out on a flat valley, or a search that never reached the collapsed saddle)
    above = bool(saddles) and best.free_energy > f_collapsed + 1e-10 * max(1.0, abs(f_collapsed))
    ok = settled() and not above
    obs = S.observables(y, p)
    order = S.unpack(y, pv)
    named = {k: order[k] for k in ORDER_KEYS}
    if model.vae.decoder_variance == "learned":
        named["sigma2"] = np.asarray(pv["eta"])
    phase, per = (best.phase, best.latent_phases) if saddles else _phase_from_order(named)
    diff = None
    if cf is not None:
        diff = max(float(np.max(np.abs(np.asarray(cf.order[k], dtype=float) - named[k]))) for k in ORDER_KEYS)
        diff = max(diff, abs(float(cf.train_loss) - obs["free_energy"]))
    if ok:
        message = (f"{len(saddles)} admissible saddle point(s); the global minimiser (start: {best.start}) has "
                   f"max|F| = {res:.2e}; {total_it} Levenberg-Marquardt iterations")
    elif above:
        message = (f"{len(saddles)} admissible saddle point(s), the lowest (f = {best.free_energy:.6g}) above the "
                   f"collapsed point's free energy {f_collapsed:.6g}: the global minimiser was not found; "
                   f"{total_it} iterations")
    elif saddles:
        message = (f"{len(saddles)} admissible saddle point(s), none of them a local minimum of the free energy on "
                   f"the physical manifold (reported: the lowest, f = {best.free_energy:.6g}); {total_it} iterations")
    else:
        message = (f"no admissible saddle point within tolerance {scale_tol:g}: best max|F| = {res:.2e} after "
                   f"{total_it} iterations")
    result = StaticsResult(model=model, alpha=alpha, params=pv, y=y, order=named, K=order["K"], H=order["H"],
                           observables=obs, train_loss=obs["free_energy"], collapsed_free_energy=f_collapsed,
                           phase=phase, latent_phases=per, residual=res, iterations=total_it,
                           status="ok" if ok else "failed", message=message, closed_form=cf,
                           closed_form_difference=diff, saddles=tuple(sorted(saddles, key=lambda s: s.free_energy)))
    if throw and not ok:
        raise StaticsError(message)
    return result


def polish(result: StaticsResult, dps: int = 30, *, max_iter: int = 30) -> dict[str, object]:
    """Refine a float64 saddle point in mpmath at ``dps`` digits (Newton on a square non-singular subsystem).

    The null directions of the Jacobian (K/H acting on the null space of Sigma) are removed by freezing as many K/H
    coordinates as there are null directions (chosen by pivoted QR of the null basis) and keeping as many equations as
    the rank (pivoted QR of the rows). The full residual is checked at the end.

    The parameters (and alpha) enter mpmath as the decimals that were typed, the shortest repr of each float
    (``MpContext.from_decimal``: lam = 0.3 is 3/10, not its nearest double 0.29999999999999998889...).

    Arguments:
        result: a converged ``StaticsResult``. dps: decimal digits.

    Returns:
        {"order": {name: object array of mpf}, "train_loss": mpf, "residual": mpf (max|F| of the full system),
        "dps": dps, "null_dimension": int}.

    Raises:
        StaticsError: the refinement does not reach a residual of 10^(3 - dps).
    """
    S = statics_system(result.model)
    ctx = MpContext(dps, guard=10)
    with ctx.precision():
        values = {**result.params, "alpha": result.alpha}
        p = [ctx.from_decimal(values[name]) for name in S.param_names]  # the decimals typed: 0.3 is 3/10
        x, _, null_dimension = _refine_mp(S, np.array(result.y, dtype=float), p, ctx, max_iter=max_iter)
        F = S.module.rhs_mp(0, x, p)
        residual = max(abs(F[i, 0]) for i in range(S.n))
        obs = S.module.observables_mp(0, x, p)
        train_loss = obs[S.obs_names.index("free_energy"), 0]
        order = S.unpack(np.array(x, dtype=object), {k: ctx.from_decimal(v) for k, v in result.params.items()})
    if residual > mpmath.mpf(10) ** (3 - dps):
        raise StaticsError(f"mpmath refinement reached max|F| = {mpmath.nstr(residual, 3)} only, at {dps} digits")
    return {"order": {k: order[k] for k in ORDER_KEYS}, "train_loss": train_loss, "residual": residual, "dps": dps,
            "null_dimension": null_dimension}


def _refine_mp(S: _Statics, y: np.ndarray, p: list, ctx: MpContext, *, max_iter: int) -> tuple[list, bool, int]:
    """Newton at the context's precision from the float64 saddle ``y`` (parameters ``p``: mpf, in S.param_names
    order), on a square non-singular subsystem: as many K/H coordinates frozen as the Jacobian has null directions
    (chosen by pivoted QR of the null basis), as many equations kept as its rank (pivoted QR of the rows).
    Call inside ``ctx.precision()``. Returns (x, converged: max|F| <= 10^-(dps + 5) on the kept equations, null
    dimension)."""
    p_f = np.array([float(v) for v in p])
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
    target = mpmath.mpf(10) ** (-(ctx.dps + 5))
    r = newton(ctx, lambda z: mod.rhs_mp(0, list(z), p), lambda z: mod.jac_mp(0, list(z), p), y, free=free,
               rows=rows, ftol=target, max_iter=max_iter)
    return list(r.x), bool(r.converged), int(null.shape[1])
