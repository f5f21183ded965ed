"""``simulate``: finite-N online SGD of a model over independent seeds, reported as order-parameter trajectories."""
from __future__ import annotations

import dataclasses
import math
import operator
import os
import threading
import time
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from ..derive import observables as _observable_exprs
from ..errors import InvalidInputError
from ..model import Model, validate_state
from ..model import t as t_sym
from ._build import Simulator, build_simulator
from ._initial import gram_factor, initial_vectors

__all__ = ["SimulationResult", "simulate"]

_ORDER = ("m", "m_tilde", "Q", "Q_tilde", "R", "D", "sigma2")


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """Result of ``simulate``.

    Attributes:
        t: the requested times reached by every seed, rounded to whole steps (t = step / N), shape (k,).
        steps: the corresponding step counts.
        per_seed: order parameter name -> array (seeds, k, ...) with the shapes of ``DerivedSystem.unpack``
            (m, m_tilde: M x M*; Q, Q_tilde, R: M x M with R_ij = W_i.W~_j/N; D: (M,); sigma2: () if the model has it).
        mean, std: name -> array (k, ...), over seeds (std with ddof = 1; 0 for one seed).
        eg: generalisation error per seed, (seeds, k), the definition of ``symvae.derive`` (best signed matching).
        observables: ``eg``, ``rate``, ``distortion``, ``neg_elbo`` per seed, each (seeds, k).
        status: ``"ok"``, ``"diverged"`` or ``"failed"`` (a time-dependent parameter not finite); message: what
            happened; t_stop: the earliest divergence (or failure) time, or the last time reached.
        seed_status: ``"ok"`` / ``"diverged"`` / ``"failed"`` of each seed; seed_t_stop: the time each seed stopped.
        N, seeds, seed, batch: the run's size; elapsed: wall time of the SGD kernel; steps_per_second: SGD steps
            (all seeds) per second of ``elapsed``.
    """

    model: Model
    param_values: Mapping[str, float]
    N: int
    seeds: int
    seed: int
    batch: int
    t: np.ndarray
    steps: np.ndarray
    per_seed: Mapping[str, np.ndarray]
    mean: Mapping[str, np.ndarray]
    std: Mapping[str, np.ndarray]
    eg: np.ndarray
    observables: Mapping[str, np.ndarray]
    status: str
    message: str
    t_stop: float
    seed_status: tuple[str, ...]
    seed_t_stop: np.ndarray
    elapsed: float
    steps_per_second: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _int(value, what: str, minimum: int) -> int:
    try:
        out = operator.index(value)
    except TypeError:
        raise InvalidInputError(f"{what} must be an integer, got {value!r}") from None
    if out < minimum:
        raise InvalidInputError(f"{what} must be >= {minimum}, got {out}")
    return out


def _times(t_eval, N: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        t_eval = np.asarray(t_eval, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError("t_eval must be a list of numbers") from None
    if len(t_eval) == 0 or not np.all(np.isfinite(t_eval)):
        raise InvalidInputError("t_eval must be a non-empty list of finite times")
    if t_eval[0] < 0 or np.any(np.diff(t_eval) < 0):
        raise InvalidInputError("t_eval must be non-decreasing and >= 0")
    steps = np.rint(t_eval * N).astype(np.int64)
    return steps / N, steps


def _named(sim: Simulator, gram: np.ndarray, scal: np.ndarray, values: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Order parameters from Gram matrices (..., K, K) and learned scalars (..., n_scal)."""
    T = sim.table
    M, Ms = T.M, T.M_star
    W = np.arange(Ms, Ms + M)
    Wt = W if T.tied else np.arange(Ms + M, Ms + 2 * M)
    Ws = np.arange(Ms)
    pick = lambda rows, cols: gram[..., rows[:, None], cols[None, :]]  # noqa: E731
    out = {"m": pick(W, Ws), "m_tilde": pick(Wt, Ws), "Q": pick(W, W), "Q_tilde": pick(Wt, Wt), "R": pick(W, Wt)}
    learned = {s.name: scal[..., k] for k, (s, _) in enumerate(sim.layout.scalars)}
    shape = gram.shape[:-2]
    const = lambda name: np.full(shape, float(values[name]))  # noqa: E731
    out["D"] = np.stack([learned[d.name] if d.name in learned else const(d.name) for d in T.D], axis=-1)
    if isinstance(T.sigma2, sp.Symbol):
        out["sigma2"] = learned["sigma2"] if "sigma2" in learned else const("sigma2")
    return out


def _observables(sim: Simulator, named: Mapping[str, np.ndarray], times: np.ndarray,
                 values: Mapping[str, float]) -> dict[str, np.ndarray]:
    """The observables of ``symvae.derive`` (eg, rate, distortion, neg_elbo) evaluated on the simulated overlaps.

    With schedules, the base simulator's observables (beta a parameter) at the parameters the schedule program gives
    at each time (nan where a schedule is not finite: the run has failed there, see ``simulate``)."""
    if sim.program is not None and sim.base is not None:
        inner = sim.program.evaluate(np.asarray(times, dtype=float), sim.param_vector(values)[:, None],
                                     strict=False)
        inner = np.where(np.isfinite(inner), inner, np.nan)  # nan propagates without numpy's warnings (inf would not)
        at = dict(values)
        at.update({name: inner[j] for j, name in enumerate(sim.base.param_names)})
        return _observables(sim.base, named, times, at)
    fn = sim._observables_fn
    T = sim.table
    if fn is None:
        exprs = _observable_exprs(T)
        free = sorted(set().union(*(e.free_symbols for e in exprs.values())), key=lambda s: s.name)
        fn = (tuple(exprs), free, sp.lambdify(free, list(exprs.values()), modules="numpy"))
        sim._observables_fn = fn
    names, free, f = fn
    lookup: dict[sp.Symbol, np.ndarray] = {}
    for name, template in T.matrices().items():
        if name == "sigma2":
            if isinstance(template, sp.Symbol):
                lookup[template] = named["sigma2"]
        elif isinstance(template, tuple):
            for k, s in enumerate(template):
                lookup[s] = named[name][..., k]
        else:
            for i in range(template.shape[0]):
                for j in range(template.shape[1]):
                    lookup.setdefault(template[i, j], named[name][..., i, j])
    shape = named["Q"].shape[:-2]
    args = []
    for s in free:
        if s in lookup:
            args.append(lookup[s])
        elif s == t_sym:
            args.append(np.broadcast_to(times, shape))
        elif s.name in values:
            args.append(np.broadcast_to(np.asarray(values[s.name], dtype=float), shape))
        else:
            raise InvalidInputError(f"missing parameter value: {s.name}")
    return {name: np.broadcast_to(np.asarray(v, dtype=float), shape).copy() for name, v in zip(names, f(*args))}


#: Positions of the per-seed arrays among the arguments of ``run_seeds`` (sliced to split seeds over threads).
_PER_SEED = frozenset((0, 1, 3, 10, 11, 12, 13, 14))
#: Wall time of one piece of compiled work: an interrupt (Ctrl-C) is honoured between pieces.
PIECE_SECONDS = 0.2


def _workers(parallel: bool | None, seeds: int) -> int:
    """Threads to spread the seeds over: all usable cores by default (``parallel=None``) or if ``parallel``."""
    if parallel is False or seeds == 1:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(seeds, cores))


def _first_piece(K: int, N: int, b: int) -> int:
    """Steps in the first piece: about 10^7 flops per seed (a step costs ~ 10 K N b), then sized by its timing."""
    return max(1, int(1e7 / (10 * K * N * b)))


def _run_in_pieces(module, args, workers: int, *, first_piece: int) -> None:
    """Call the resumable kernel ``module.run_seeds(*args, step_limit)`` with growing step limits until no seed is
    running, each call sized to take about ``PIECE_SECONDS``; the seeds are split into ``workers`` contiguous slices
    run on as many threads (the kernel releases the GIL). Splitting changes neither the work nor its order within a
    seed, so the result is the same bit for bit for every piece size and number of workers."""
    status, stop = args[12], args[13]
    seeds = status.shape[0]
    bounds = [round(seeds * k / workers) for k in range(workers + 1)]
    slices = [tuple(a[lo:hi] if k in _PER_SEED else a for k, a in enumerate(args))
              for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    piece = first_piece
    run_seeds, RUNNING = module.run_seeds, module.STATUS_RUNNING
    while np.any(status == RUNNING):
        limit = int(stop[status == RUNNING].min()) + piece
        start = time.perf_counter()
        failures: list[BaseException] = []

        def work(sl):
            try:
                run_seeds(*sl, limit)
            except BaseException as exc:  # re-raised in the calling thread below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(sl,), daemon=True) for sl in slices[1:]]
        for th in threads:
            th.start()
        run_seeds(*slices[0], limit)
        for th in threads:
            th.join()
        if failures:
            raise failures[0]
        spent = time.perf_counter() - start
        # aim at PIECE_SECONDS; never grow more than 4x at once (the first pieces may include page faults)
        piece = max(1, int(piece * min(4.0, PIECE_SECONDS / max(spent, 1e-6))))


def _program_failure(sim: Simulator, t: float, p: np.ndarray) -> str:
    """What the parameter program of ``sim`` says at t (the kernel stopped there)."""
    from ..codegen._schedule import ScheduleError

    try:
        sim.program.evaluate(t, p)
    except ScheduleError as exc:
        return str(exc)
    return "a time-dependent parameter is not finite there"


def simulate(model: Model, param_values: Mapping[str, float], init: Mapping[str, object], t_eval: Sequence[float],
             *, N: int, seeds: int = 8, seed: int = 0, parallel: bool | None = None, blowup: float = 1e8,
             check_every: int | None = None) -> SimulationResult:
    """Run finite-N online SGD of ``model`` from the order parameters ``init``, over independent seeds.

    Each step draws b fresh samples x = sum_k sqrt(rho_k/N) W*_k c_k + sqrt(eta) n (W*^T W*/N = I, c, n standard
    normal) and moves every trained quantity against the gradient of the model's per-sample loss averaged over them:
    W, W~ with steps tau_W, tau_W_tilde; D with tau_D/N; sigma^2 with tau_sigma2/N^2 (as ``OnlineSGD.step``). Time is
    t = step / N. Each seed has its own random stream (SFC64) and its own initial weights, built so that their overlaps
    equal ``init`` exactly (up to round-off).

    Arguments:
        model: the model definition (``symvae.make_model``).
        param_values: parameter values by name (rho or rho_k, eta, beta, lam, tau..., b, gamma ...); extras ignored.
        init: initial order parameters as in the CLI ``--init`` JSON: m, m_tilde (M x M*), Q, Q_tilde, R (M x M),
            D (M); for tied weights m_tilde, Q_tilde, R may be omitted; sigma2 optional (default 1).
        t_eval: non-decreasing times >= 0 at which to record (rounded to the nearest step).
        N: input dimension (>= the number of simulated vectors).

    Other arguments:
        seeds: number of independent runs; seed: base seed (seed k uses ``SeedSequence(seed).spawn(seeds)[k]``, so a
            run with fewer seeds is a prefix of one with more).
        parallel: spread the seeds over threads, one per usable core (default: whenever there are several seeds;
            ``False``: one thread). The compiled work runs in pieces of ~0.2 s, so Ctrl-C is honoured promptly; the
            result does not depend on the number of threads or the piece size.
        blowup: |w|^2/N beyond which a run is declared divergent; check_every: steps between such checks of all
            norms (default N/10; non-finite values are caught at every step).

    Returns:
        A ``SimulationResult``. If a seed diverges, ``status`` is ``"diverged"`` and only the times reached by every
        seed are reported.

    Raises:
        InvalidInputError: malformed or unrealisable initial state, missing parameters, bad N, seeds or times.
    """
    sim = build_simulator(model)
    T = sim.table
    K = sim.n_vectors
    N = _int(N, "N", 2)
    if N < K:
        raise InvalidInputError(f"N must be >= the number of simulated vectors ({K}), got {N}")
    seeds = _int(seeds, "seeds", 1)
    seed = _int(seed, "seed", 0)
    if not isinstance(param_values, Mapping):
        raise InvalidInputError("param_values must be a mapping of parameter names to numbers")
    values = dict(param_values)
    p = sim.param_vector(values)
    b = sim.batch_size(values)
    rho = [float(values[r.name]) for r in T.rho]
    eta = float(values[T.eta.name])
    if min(rho) < 0 or eta < 0:
        raise InvalidInputError(f"rho and eta must be >= 0, got rho = {rho}, eta = {eta}")
    if not (blowup > 0):
        raise InvalidInputError(f"blowup must be > 0, got {blowup}")
    check_every = max(1, N // 10) if check_every is None else _int(check_every, "check_every", 1)

    if not isinstance(init, Mapping):
        raise InvalidInputError("init must be a mapping with keys m, m_tilde, Q, Q_tilde, R, D (sigma2)")
    init = dict(init)
    if T.model.vae.decoder_variance == "learned":
        init.setdefault("sigma2", 1.0)
    state = validate_state(T, init)
    L = gram_factor(T, state)
    scalars = {}
    for s, _ in sim.layout.scalars:
        scalars[s.name] = float(state["sigma2"]) if s.name == "sigma2" else float(state["D"][int(s.name[2:]) - 1])
    times, steps = _times(t_eval, N)

    children = np.random.SeedSequence(seed).spawn(seeds)
    Vs = np.empty((seeds, K, N))
    rng_states = np.empty((seeds, 4), dtype=np.uint64)
    for k, child in enumerate(children):
        init_seq, sgd_seq = child.spawn(2)
        Vs[k] = initial_vectors(L, N, np.random.Generator(np.random.SFC64(init_seq)))
        rng_states[k] = np.random.SFC64(sgd_seq).state["state"]["state"]
    z0 = sim.input_vector(scalars)
    zs = np.tile(z0, (seeds, 1))
    n_rec, n_scal = len(steps), len(sim.layout.scalars)
    gram_out = np.full((seeds, n_rec, K, K), np.nan)
    scal_out = np.full((seeds, n_rec, max(n_scal, 1)), np.nan)
    status = np.zeros(seeds, dtype=np.int64)
    stop = np.zeros(seeds, dtype=np.int64)
    written = np.zeros(seeds, dtype=np.int64)
    signal_scale = np.sqrt(np.asarray(rho) / N)
    mod = sim.module
    status[:] = mod.STATUS_RUNNING
    program = sim.program
    pcode, pconsts = (program.code, program.consts) if program is not None else (np.zeros((0, 2), np.int64),
                                                                                 np.zeros(0))
    args = (Vs, zs, p, rng_states, signal_scale, math.sqrt(eta), b, steps, check_every, float(blowup), gram_out,
            scal_out, status, stop, written, pcode, pconsts)
    # compile (or load from numba's cache) on a zero-step call, so that ``elapsed`` times the SGD alone
    mod.run_seeds(*(a[:1].copy() if k in _PER_SEED else a for k, a in enumerate(args)), 0)
    start = time.perf_counter()
    _run_in_pieces(mod, args, _workers(parallel, seeds), first_piece=_first_piece(K, N, b))
    elapsed = time.perf_counter() - start

    k = int(written.min())
    named = _named(sim, gram_out[:, :k], scal_out[:, :k, :n_scal], values)
    per_seed = {name: np.asarray(named[name], dtype=float) for name in _ORDER if name in named}
    ddof = 1 if seeds > 1 else 0
    mean = {name: v.mean(axis=0) for name, v in per_seed.items()}
    std = {name: v.std(axis=0, ddof=ddof) for name, v in per_seed.items()}
    obs = _observables(sim, per_seed, times[:k], values)

    seed_t_stop = stop / N
    seed_status = tuple("ok" if c == 0 else "failed" if c == mod.STATUS_PROGRAM else "diverged" for c in status)
    if np.all(status == 0):
        status_text = "ok"
        t_stop = float(times[k - 1]) if k else 0.0
        message = f"reached t = {t_stop:g} ({seeds} seeds x {int(steps[-1])} steps of batch {b} at N = {N})"
    elif np.any(status == mod.STATUS_PROGRAM):  # the same schedule for every seed: it fails at the same step
        status_text = "failed"
        t_stop = float(seed_t_stop[int(np.argmax(status == mod.STATUS_PROGRAM))])
        message = f"failed at t = {t_stop:.6g}: {_program_failure(sim, t_stop, p)}"
    else:
        status_text = "diverged"
        bad = np.nonzero(status != 0)[0]
        first = int(bad[np.argmin(stop[bad])])
        t_stop = float(seed_t_stop[first])
        why = ("a learned variance (D or sigma2) left (0, inf)" if status[first] == 2
               else f"the weights became non-finite or |w|^2/N exceeded {blowup:g}")
        message = (f"diverged at t = {t_stop:.6g} in seed {first} ({len(bad)} of {seeds} seeds diverged): {why}")
    total_steps = float(np.sum(stop))
    return SimulationResult(model=model, param_values=values, N=N, seeds=seeds, seed=seed, batch=b, t=times[:k],
                            steps=steps[:k], per_seed=per_seed, mean=mean, std=std, eg=obs["eg"], observables=obs,
                            status=status_text, message=message, t_stop=t_stop, seed_status=seed_status,
                            seed_t_stop=seed_t_stop, elapsed=elapsed,
                            steps_per_second=total_steps / elapsed if elapsed > 0 else float("inf"))
