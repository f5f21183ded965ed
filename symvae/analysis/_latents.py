"""Latents of finite-N runs aligned to the theory: the signed permutation that best maps a seed's latents onto the
ODE's, applied to every order parameter, so seeds that learned the same solution in a different labelling of the
latents (or with flipped signs) are averaged correctly.

For degenerate spikes (equal strengths) the learned solutions form a continuous rotation family: after the signed
permutation, ``spike_rotation`` removes the remaining rotation of the spikes (orthogonal Procrustes).

``entangled_saddles`` and ``saddle_passage``: the fixed points with mixed overlaps (a latent overlapping several
spikes) and exactly one unstable direction, and how close, when and for how long a trajectory passes them.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping

import numpy as np

__all__ = ["align_latents", "apply_alignment", "aligned_seeds", "spike_rotation", "SeedRuns", "per_seed_report",
           "entangled_saddles", "saddle_passage", "SaddlePassage"]


def align_latents(m_seed: np.ndarray, m_theory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(perm, signs) maximising sum_i signs[i] <m_seed[perm[i]], m_theory[i]> (rows: latents, columns: spikes).

    Latent i of the theory corresponds to latent perm[i] of the seed, with sign signs[i]. Exhaustive over the M!
    permutations (M <= 6)."""
    m_seed, m_theory = np.asarray(m_seed, float), np.asarray(m_theory, float)
    M = m_seed.shape[0]
    best, best_perm = -np.inf, None
    for perm in itertools.permutations(range(M)):
        score = sum(abs(float(m_seed[perm[i]] @ m_theory[i])) for i in range(M))
        if score > best:
            best, best_perm = score, perm
    perm = np.array(best_perm)
    signs = np.array([1.0 if float(m_seed[perm[i]] @ m_theory[i]) >= 0 else -1.0 for i in range(M)])
    return perm, signs


def apply_alignment(named: Mapping[str, np.ndarray], perm: np.ndarray, signs: np.ndarray) -> dict[str, np.ndarray]:
    """Relabel latents in every order parameter (leading axes allowed: (..., M, ...)).

    A latent's sign flip changes the sign of both its decoder and encoder vectors (the loss is invariant), so m,
    m_tilde flip by row, Q, Q_tilde, R by s_i s_j; D and sigma2 are unchanged up to the permutation."""
    out = {}
    S = np.outer(signs, signs)
    for key, v in named.items():
        v = np.asarray(v, float)
        if key in ("m", "m_tilde"):
            out[key] = v[..., perm, :] * signs[:, None]
        elif key in ("Q", "Q_tilde", "R"):
            out[key] = v[..., perm, :][..., :, perm] * S
        elif key == "D":
            out[key] = v[..., perm]
        else:
            out[key] = v
    return out


def spike_rotation(m_seed: np.ndarray, m_theory: np.ndarray) -> np.ndarray:
    """The orthogonal O (M* x M*) minimising |m_seed O - m_theory| (orthogonal Procrustes: O = U V^T from the SVD of
    m_seed^T m_theory). With equal spike strengths, W* -> W* O leaves the data distribution unchanged, so seeds that
    converged to different members of the rotated family of fixed points are compared after m -> m O, m~ -> m~ O."""
    U, _, Vt = np.linalg.svd(np.asarray(m_seed, float).T @ np.asarray(m_theory, float))
    return U @ Vt


def aligned_seeds(per_seed: Mapping[str, np.ndarray], m_theory_final: np.ndarray, *,
                  rotate: bool = False) -> tuple[dict, list[dict]]:
    """Align every seed (arrays (seeds, k, ...)) by its final overlaps m to the theory's final m: signed permutation
    of the latents, then (``rotate``, for degenerate spikes) the best rotation of the spikes.

    Returns:
        (aligned per-seed arrays, [{"seed", "permutation", "signs"(, "rotation")} for each seed]).
    """
    seeds = np.asarray(per_seed["m"]).shape[0]
    parts, info = [], []
    for s in range(seeds):
        perm, signs = align_latents(np.asarray(per_seed["m"])[s, -1], m_theory_final)
        part = apply_alignment({k: np.asarray(v)[s] for k, v in per_seed.items()}, perm, signs)
        item = {"seed": s, "permutation": perm.tolist(), "signs": signs.tolist()}
        if rotate:
            O = spike_rotation(part["m"][-1], m_theory_final)
            part["m"], part["m_tilde"] = part["m"] @ O, part["m_tilde"] @ O
            item["rotation"] = O.tolist()
        parts.append(part)
        info.append(item)
    aligned = {k: np.stack([p[k] for p in parts]) for k in parts[0]}
    return aligned, info


def per_seed_report(result, system, init: Mapping, params: Mapping[str, float]) -> dict:
    """JSON-ready per-seed view of a ``SimulationResult``: each seed aligned (signed permutation) to the ODE at the
    last recorded time, with its eg; the aligned mean and standard deviation; and the ODE at the same times."""
    from ..numerics import integrate

    traj = integrate(system, {k: v for k, v in init.items() if k in system.blocks}, params, np.asarray(result.t))
    theory = traj.order_parameters()
    T = system.table
    strengths = {float(params[r.name]) for r in T.rho}
    # equal spike strengths (one rho for every spike): the fixed points form a rotation family; align up to it
    degenerate = T.M_star >= 2 and len(strengths) == 1
    aligned, info = aligned_seeds(result.per_seed, theory["m"][-1], rotate=degenerate)
    eg = np.asarray(result.eg)
    seeds = []
    for s, item in enumerate(info):
        seeds.append({**item, "eg": eg[s].tolist(), **{k: v[s].tolist() for k, v in aligned.items()}})
    ddof = 1 if eg.shape[0] > 1 else 0
    return {"per_seed": seeds, "aligned_by": "signed permutation" + (" and spike rotation" if degenerate else ""),
            "aligned_mean": {k: v.mean(axis=0).tolist() for k, v in aligned.items()},
            "aligned_std": {k: v.std(axis=0, ddof=ddof).tolist() for k, v in aligned.items()},
            "ode": {"t": traj.t.tolist(), "eg": traj.observables()["eg"].tolist(),
                    **{k: np.asarray(v).tolist() for k, v in theory.items()}}}


def _activated_run(model, compiled, params, init, t_eval, N: int, seed: int):
    """One seed of a model with activations (``simulate_nonlinear``: eps sampled), with the observables of its derived
    system (``compiled``) on the simulated overlaps (as ``symvae simulate`` reports them); ``ok`` as
    ``SimulationResult``'s."""
    from ..simulate import simulate_nonlinear
    from ..simulate._nonlinear import with_observables

    res = simulate_nonlinear(model, params, {k: v for k, v in init.items() if k != "sigma2"}, t_eval, N=N, seeds=1,
                             seed=seed)
    return _Run(with_observables(res, compiled))


class _Run:
    """A ``NonlinearSimulation`` seen as a ``SimulationResult`` by ``SeedRuns`` (t, per_seed, observables, ok,
    message)."""

    def __init__(self, res):
        self.t, self.per_seed, self.observables, self.message = res.t, res.per_seed, res.observables, res.message
        self.ok = res.status == "ok"


class SeedRuns:
    """Seeds of a finite-N simulation run one ``simulate`` call each (seed ``seed + 1000 k``), so that Ctrl-C, which
    cannot stop a compiled SGD loop, waits for one seed at most. Attributes as ``SimulationResult``: t, per_seed,
    observables, eg (stacked over seeds), seeds, ok, status, message."""

    def __init__(self, model, params, init, t_eval, *, N: int, seeds: int, seed: int = 0):
        from ..codegen import compile_system
        from ..derive import derive_dynamics
        from ..derive._nonlinear_dynamics import is_nonlinear
        from ..simulate import simulate

        compiled = compile_system(derive_dynamics(model)) if is_nonlinear(model) else None  # once for all seeds
        runs = []
        for k in range(seeds):
            res = (_activated_run(model, compiled, params, init, t_eval, N, seed + 1000 * k) if compiled else
                   simulate(model, params, init, t_eval, N=N, seeds=1, seed=seed + 1000 * k))
            runs.append(res)
            if not res.ok:
                break
        self.seeds = len(runs)
        self.ok = all(r.ok for r in runs) and self.seeds == seeds
        self.status = "ok" if self.ok else "diverged"
        self.message = "; ".join(r.message for r in runs if not r.ok) or runs[-1].message
        k = min(len(r.t) for r in runs)
        self.t = np.asarray(runs[0].t)[:k]
        self.per_seed = {name: np.concatenate([np.asarray(r.per_seed[name])[:, :k] for r in runs])
                         for name in runs[0].per_seed}
        self.observables = {name: np.concatenate([np.asarray(r.observables[name])[:, :k] for r in runs])
                            for name in runs[0].observables}
        self.eg = self.observables["eg"]


# ------------------------------------------------------------------------------------------------ entangled saddles
def _mixed(m: np.ndarray, tol: float = 1e-6) -> bool:
    """Some latent overlaps two or more spikes (|m_ik| > tol for two k)."""
    m = np.asarray(m, dtype=float)
    return bool(np.any(np.sum(np.abs(m) > tol, axis=1) >= 2))


def _every_latent_mixed(m, tol: float = 1e-6) -> bool:
    return bool(np.all(np.sum(np.abs(np.asarray(m, dtype=float)) > tol, axis=1) >= 2))


def entangled_saddles(compiled, params: Mapping[str, float], *, seed: int = 0):
    """The entangled saddles at ``params``: fixed points with mixed overlaps (a latent overlapping several spikes) and
    exactly one eigenvalue with a real part above the zero-mode tolerance of ``stability_class`` (``unstable_count``).

    Newton runs from the structured starts of the fixed-point search whose latents are all mixtures of spikes (the
    full search, ``find_fixed_points``, finds the same points at many times the cost); every image of a saddle's
    symmetry orbit is returned, so that distances to a trajectory are taken to the nearest image.

    Returns:
        A list of ``FixedPoint`` (the orbit images of each saddle, orbit after orbit).
    """
    from ..numerics._fixed_points import _structured_starts, analyse_point, fixed_point, unstable_count
    from ..numerics._symmetry import orbit, symmetry_generators
    from ..numerics._systems import ParameterPoint

    system = compiled.system
    pp = ParameterPoint(system, params)
    starts = [x for x in _structured_starts(system, np.random.default_rng(seed), limit=10 ** 6)
              if _every_latent_mixed(system.unpack(x, params)["m"])]
    gens = symmetry_generators(system)

    def is_root(y):
        F = compiled.rhs(0.0, y, pp.vector)
        return bool(np.all(np.isfinite(F)) and np.max(np.abs(F)) <= 1e-10 * (1.0 + np.max(np.abs(y))))

    out: list = []
    for x0 in starts:
        q = fixed_point(compiled, x0, params, throw=False)
        if q is None or not q.physical or q.kind != "learned" or not _mixed(q.order_parameters()["m"]):
            continue
        if any(np.max(np.abs(q.x - r.x)) <= 1e-7 * (1.0 + np.max(np.abs(q.x))) for r in out):
            continue
        if unstable_count(q.eigenvalues) != 1:
            continue
        out += [analyse_point(compiled, z, pp, image=label) for label, z in orbit(q.x, gens, is_root)]
    return out


@dataclasses.dataclass(frozen=True)
class SaddlePassage:
    """A trajectory's passage near a saddle (the image of its orbit nearest to the trajectory).

    Attributes:
        saddle: the ``FixedPoint``. distance: the smallest Euclidean distance of the state to it, at ``t_closest``.
        time_near: the time the trajectory spends within ``radius`` of it (from the reported times, trapezoid).
        unstable_eigenvalue: its one eigenvalue with a positive real part; escape_time_scale: 1 / that eigenvalue.
    """

    saddle: object
    distance: float
    t_closest: float
    time_near: float
    radius: float

    @property
    def unstable_eigenvalue(self) -> float:
        return float(self.saddle.eigenvalues[0].real)

    @property
    def escape_time_scale(self) -> float:
        return 1.0 / self.unstable_eigenvalue

    def to_dict(self) -> dict:
        named = self.saddle.order_parameters()
        return {"distance": self.distance, "t_closest": self.t_closest, "time_near": self.time_near,
                "radius": self.radius, "unstable_eigenvalue": self.unstable_eigenvalue,
                "escape_time_scale": self.escape_time_scale, "image": self.saddle.image,
                "eigenvalues": [[float(e.real), float(e.imag)] for e in self.saddle.eigenvalues],
                **{k: np.asarray(v).tolist() for k, v in named.items()}}


def saddle_passage(saddles, t: np.ndarray, y: np.ndarray, *, radius: float = 0.05) -> SaddlePassage | None:
    """The closest passage of the trajectory (times ``t``, states ``y`` as rows) to any of ``saddles``; None if
    there is none."""
    if not saddles:
        return None
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    dists = [np.linalg.norm(y - q.x[None, :], axis=1) for q in saddles]
    j = int(np.argmin([d.min() for d in dists]))
    d = dists[j]
    i = int(np.argmin(d))
    near = (d <= radius).astype(float)
    time_near = float(np.sum(0.5 * (near[1:] + near[:-1]) * np.diff(t)))
    return SaddlePassage(saddle=saddles[j], distance=float(d[i]), t_closest=float(t[i]), time_near=time_near,
                         radius=float(radius))
