"""Latents of finite-N runs aligned to the theory: the signed permutation that best maps a seed's latents onto the
ODE's, applied to every order parameter, so seeds that learned the same solution in a different labelling of the
latents (or with flipped signs) are averaged correctly.

For degenerate spikes (equal strengths) the learned solutions form a continuous rotation family: after the signed
permutation, ``spike_rotation`` removes the remaining rotation of the spikes (orthogonal Procrustes).
"""
from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np

__all__ = ["align_latents", "apply_alignment", "aligned_seeds", "spike_rotation", "SeedRuns", "per_seed_report"]


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


class SeedRuns:
    """Seeds of a finite-N simulation run one ``simulate`` call each (seed ``seed + 1000 k``), so that Ctrl-C, which
    cannot stop a compiled SGD loop, waits for one seed at most. Attributes as ``SimulationResult``: t, per_seed,
    observables, eg (stacked over seeds), seeds, ok, status, message."""

    def __init__(self, model, params, init, t_eval, *, N: int, seeds: int, seed: int = 0):
        from ..simulate import simulate

        runs = []
        for k in range(seeds):
            res = simulate(model, params, init, t_eval, N=N, seeds=1, seed=seed + 1000 * k)
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
