"""Finite-N online SGD of the VAEs with non-linear activations (issue 11), the ground truth of their derived ODEs.

One fresh sample x = sqrt(rho/N) W* c + sqrt(eta) n and one fresh reparametrisation noise eps ~ N(0, I_M) per step
(the eps-expectation of the reconstruction of a non-linear decoder has no closed form, so eps is *sampled*, exactly as
the derivation assumes; the KL term is in closed form). With h~ = W~ x/sqrt(N), l = W^T x/sqrt(N), mu = g_e(h~),
z = mu + sqrt(D) eps, d = g_d(z), r = Q d - l (Q = W^T W/N), the per-sample gradients are

    grad_{W_k}  = x (-d_k)/sqrt(N) + sum_l W_l d_l d_k / N + lam_W W_k / N,
    grad_{W~_k} = [r_k g_d'(z_k) + beta mu_k] g_e'(h~_k) x/sqrt(N) + lam_W~ W~_k / N,
    dL/dD_k     = r_k g_d'(z_k) eps_k / (2 sqrt(D_k)) + (beta/2)(1 - 1/D_k),

applied with steps tau (W, W~) and tau/N (D). Vectorised over seeds with numpy. Written independently of the symbolic
derivation (the gradients above are by hand), so agreement with the ODEs is a test of both.

Supported: untied weights, learned D, sigma^2 = 1, batch 1, one step size tau, constant beta; M, M* any.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import InvalidInputError
from ..model import Model, SymbolTable, validate_state
from ..model._activations import _X, activation
from ._initial import gram_factor, initial_vectors

__all__ = ["NonlinearSimulation", "simulate_nonlinear", "simulate_committee", "with_observables"]


@dataclasses.dataclass(frozen=True)
class NonlinearSimulation:
    """Result of ``simulate_nonlinear``: ``per_seed[name]`` has shape (seeds, len(t), ...) with the shapes of
    ``DerivedSystem.unpack`` (m, m_tilde: M x M*; Q, Q_tilde, R: M x M; D: M); ``mean``/``std`` over seeds.
    ``observables`` (eg, rate, distortion, neg_elbo, each (seeds, len(t))) once ``with_observables`` has evaluated
    the derived system's observables on the simulated overlaps; ``eg`` is its entry."""

    model: Model
    params: Mapping[str, float]
    N: int
    seeds: int
    t: np.ndarray
    per_seed: Mapping[str, np.ndarray]
    status: str
    message: str
    observables: Mapping[str, np.ndarray] | None = None

    @property
    def eg(self) -> np.ndarray:
        if self.observables is None:
            raise AttributeError("eg: call with_observables first")
        return self.observables["eg"]

    @property
    def mean(self) -> dict[str, np.ndarray]:
        return {k: v.mean(axis=0) for k, v in self.per_seed.items()}

    @property
    def std(self) -> dict[str, np.ndarray]:
        return {k: (v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(v.shape[1:])) for k, v in
                self.per_seed.items()}


def _numeric_activation(spec: str):
    """g and g' of an activation as numpy functions."""
    from ..derive._nonlinear_gaussian import numeric_function
    expr = activation(spec)(_X)
    return numeric_function(expr, [_X]), numeric_function(sp.diff(expr, _X), [_X])


def _check_supported(model: Model, params: Mapping[str, float]) -> dict[str, float]:
    vae, tr = model.vae, model.training
    if vae.tied or vae.encoder_variance != "learned" or vae.decoder_variance != "unit":
        raise InvalidInputError("the non-linear simulator supports untied weights, learned D and sigma^2 = 1 only")
    if tr.batch_expr != 1:
        raise InvalidInputError("the non-linear simulator supports batch size 1 only")
    T = SymbolTable(model)
    exprs = {"beta": vae.beta_expr, "lam_W": vae.lam_W_expr, "lam_W_tilde": vae.lam_W_tilde_expr,
             "tau_W": tr.step("W"), "tau_W_tilde": tr.step("W_tilde"), "tau_D": tr.step("D"),
             "rho": T.rho[0], "eta": T.eta}
    if len(set(T.rho)) != 1:
        raise InvalidInputError("the non-linear simulator supports one common rho only")
    out = {}
    for name, e in exprs.items():
        free = {s.name for s in e.free_symbols}
        if "t" in free:
            raise InvalidInputError(f"the non-linear simulator needs a constant {name}")
        missing = free - set(params)
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(sorted(missing))}")
        out[name] = float(e.subs({s: params[s.name] for s in e.free_symbols}))
    return out


def simulate_nonlinear(model: Model, params: Mapping[str, float], init: Mapping[str, object],
                       t_eval: Sequence[float], *, N: int, seeds: int = 8, seed: int = 0) -> NonlinearSimulation:
    """Finite-N online SGD of a (non-)linear VAE with sampled eps; see the module docstring.

    Arguments:
        model: the model (activations from ``model.vae``); params: parameter values (rho, eta, beta, lam, tau, ...).
        init: initial order parameters (m, m_tilde, Q, Q_tilde, R, D), realised exactly by the initial weights.
        t_eval: non-decreasing times (steps / N) at which the overlaps are recorded.

    Other arguments:
        N: dimension; seeds: independent runs (independent initial bases, data and eps); seed: master seed.

    Returns:
        A ``NonlinearSimulation``; ``status`` is ``"diverged"`` (with the time) if any overlap became non-finite.

    Raises:
        InvalidInputError: unsupported model, bad sizes, times or state.
    """
    if not isinstance(N, int) or N < 2 or not isinstance(seeds, int) or seeds < 1:
        raise InvalidInputError(f"N must be an integer >= 2 and seeds >= 1, got N={N!r}, seeds={seeds!r}")
    p = _check_supported(model, params)
    t_eval = np.asarray(t_eval, dtype=float).reshape(-1)
    if len(t_eval) == 0 or not np.all(np.isfinite(t_eval)) or t_eval[0] < 0 or np.any(np.diff(t_eval) < 0):
        raise InvalidInputError("t_eval must be a non-empty, non-decreasing list of finite times >= 0")
    steps = np.rint(t_eval * N).astype(np.int64)
    T = SymbolTable(model)
    M, Ms = T.M, T.M_star
    state = validate_state(T, init)
    L = gram_factor(T, state)
    g_e, dg_e = _numeric_activation(model.vae.encoder_activation)
    g_d, dg_d = _numeric_activation(model.vae.decoder_activation)

    rng = np.random.default_rng(seed)
    V = np.stack([initial_vectors(L, N, rng) for _ in range(seeds)])  # (S, K, N): W*, W, W~
    Ws, W, Wt = V[:, :Ms].copy(), V[:, Ms:Ms + M].copy(), V[:, Ms + M:].copy()
    D = np.tile(np.asarray(state["D"], dtype=float), (seeds, 1))
    sqN = math.sqrt(N)
    records = {k: [] for k in ("m", "m_tilde", "Q", "Q_tilde", "R", "D")}
    status, message = "ok", "finished"

    def record():
        records["m"].append(W @ Ws.transpose(0, 2, 1) / N)
        records["m_tilde"].append(Wt @ Ws.transpose(0, 2, 1) / N)
        records["Q"].append(W @ W.transpose(0, 2, 1) / N)
        records["Q_tilde"].append(Wt @ Wt.transpose(0, 2, 1) / N)
        records["R"].append(W @ Wt.transpose(0, 2, 1) / N)
        records["D"].append(D.copy())

    step = 0
    for target in steps:
        while step < target:
            c = rng.standard_normal((seeds, Ms))
            x = math.sqrt(p["rho"] / N) * np.einsum("sk,skn->sn", c, Ws) \
                + math.sqrt(p["eta"]) * rng.standard_normal((seeds, N))
            eps = rng.standard_normal((seeds, M))
            ell = np.einsum("skn,sn->sk", W, x) / sqN
            h = np.einsum("skn,sn->sk", Wt, x) / sqN
            mu = g_e(h)
            sqD = np.sqrt(D)
            z = mu + sqD * eps
            d = g_d(z)
            Q = W @ W.transpose(0, 2, 1) / N
            r = np.einsum("skl,sl->sk", Q, d) - ell
            dgz = dg_d(z)
            a_t = (r * dgz + p["beta"] * mu) * dg_e(h)
            grad_W = -d[:, :, None] * x[:, None, :] / sqN + np.einsum("sl,sln->sn", d, W)[:, None, :] \
                * d[:, :, None] / N + p["lam_W"] * W / N
            grad_Wt = a_t[:, :, None] * x[:, None, :] / sqN + p["lam_W_tilde"] * Wt / N
            dD = r * dgz * eps / (2 * sqD) + 0.5 * p["beta"] * (1 - 1 / D)
            W -= p["tau_W"] * grad_W
            Wt -= p["tau_W_tilde"] * grad_Wt
            D -= p["tau_D"] / N * dD
            step += 1
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(Wt)) and np.all(D > 0)):
            status, message = "diverged", f"a weight or D became non-finite or D <= 0 by t = {step / N:g}"
            break
        record()
    per_seed = {k: np.stack(v, axis=1) for k, v in records.items()}
    return NonlinearSimulation(model=model, params=dict(params), N=N, seeds=seeds, t=steps[:len(records["D"])] / N,
                               per_seed=per_seed, status=status, message=message)


def with_observables(sim: NonlinearSimulation, compiled) -> NonlinearSimulation:
    """``sim`` with the observables of the derived system (``compiled``: its ``CompiledSystem``) evaluated on every
    seed's overlaps at every recorded time (rate and distortion are population averages over x and eps given the
    overlaps, as in the ODE)."""
    system = compiled.system
    seeds, k = sim.per_seed["D"].shape[:2]
    Y = np.empty((len(system.state), seeds, k))
    for s_ in range(seeds):
        for i in range(k):
            Y[:, s_, i] = system.pack({name: v[s_, i] for name, v in sim.per_seed.items() if name in system.blocks})
    p = compiled.param_vector(sim.params).reshape(-1, 1, 1)
    obs = compiled.observables(np.broadcast_to(np.asarray(sim.t, dtype=float), (seeds, k)), Y, p)
    return dataclasses.replace(sim, observables={n: np.broadcast_to(np.asarray(v, dtype=float), (seeds, k)).copy()
                                                 for n, v in obs.items()})


def simulate_committee(machine, params: Mapping[str, float], W0: np.ndarray, Wstar: np.ndarray, v0, t_eval,
                       *, seed: int = 0) -> dict[str, np.ndarray]:
    """Finite-N online SGD of a soft committee machine (``symvae.model.CommitteeMachine``), one run.

    x ~ N(0, I_N), y = sum_n A_n g(w*_n.x/sqrt N); w_k <- w_k - tau v_k g'(lambda_k) (yhat - y) x/sqrt(N);
    v_k <- v_k - (tau_v/N) g(lambda_k)(yhat - y) if the second layer is trained. Gradients written by hand.

    Arguments:
        W0: (K, N) initial student weights; Wstar: (M, N) teacher weights; v0: (K,) initial second layer.
        params: tau, tau_v (if trained), A_n (if free). t_eval: times (steps/N) at which to record.

    Returns:
        {"t", "Q" (k, K, K), "R" (k, K, M), "v" (k, K), "T" (M, M)}.
    """
    g, dg = _numeric_activation(machine.activation)
    rng = np.random.default_rng(seed)
    W, Ws = np.array(W0, dtype=float), np.asarray(Wstar, dtype=float)
    K, N = W.shape
    v = np.array(v0, dtype=float).reshape(K)
    A = np.array([float(params[f"A_{n + 1}"]) if machine.teacher_second_layer == "free" else 1.0
                  for n in range(Ws.shape[0])])
    tau, tau_v = float(params["tau"]), float(params.get("tau_v", 0.0))
    sqN = math.sqrt(N)
    steps = np.rint(np.asarray(t_eval, dtype=float) * N).astype(np.int64)
    out = {"Q": [], "R": [], "v": []}
    step = 0
    for target in steps:
        while step < target:
            x = rng.standard_normal(N)
            lam, nu = W @ x / sqN, Ws @ x / sqN
            delta = float(v @ g(lam) - A @ g(nu))
            W -= tau * (v * dg(lam) * delta)[:, None] * x[None, :] / sqN
            if machine.train_second_layer:
                v -= tau_v / N * g(lam) * delta
            step += 1
        out["Q"].append(W @ W.T / N)
        out["R"].append(W @ Ws.T / N)
        out["v"].append(v.copy())
    return {"t": steps / N, "T": Ws @ Ws.T / N, **{k: np.array(val) for k, val in out.items()}}
