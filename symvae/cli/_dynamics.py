"""``symvae dynamics`` (integrate the derived ODEs) and ``symvae simulate`` (finite-N online SGD)."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import InvalidInputError
from ._common import (COUNT_MAX, INIT_HELP, M_MAX, PARAM_MAX, SIMULATION_WORK_MAX, _finite_float, _integer,
                      _positive_float, _positive_int, add_model_options, check_count, check_output_file, check_schedule,
                      check_schedule_program, check_work, initial_state_arg, model_from_args, param_values_from_args,
                      parse_float_list, print_json)

#: Largest --t-max (t = steps / N): far beyond any relaxation time at admissible parameters.
T_MAX = 1e7

_KEYS = ("m", "m_tilde", "Q", "Q_tilde", "R", "D", "sigma2")


def _time_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--t-max", type=_finite_float, required=True, help=f"final time (t = steps / N), in (0, {T_MAX:g}]")
    p.add_argument("--t-eval", default=None, help="comma-separated output times in [0, t-max], non-decreasing "
                                                  "(default: 11 points up to t-max)")
    p.add_argument("--init", default=None, metavar="JSON|random:N[:SEED]", help=INIT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default=None, metavar="FILE", help="figure of eg(t) (.png/.pdf/.svg)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write t, observables and order parameters as CSV")
    p.add_argument("--plot-observable", default="eg", choices=("eg", "rate", "distortion"),
                   help="what --plot shows (default eg)")


def _plot_and_csv(args, t, named, obs, *, sim=None, ode=None) -> None:
    """--plot / --csv of dynamics and simulate (observables in ``obs``; ``sim`` = (mean, s.e.) of the plotted one)."""
    if not (args.plot or args.csv):
        return
    from ..analysis._figures import plot_time_series, write_csv
    from ._common import atomic_output

    if args.plot:
        if args.plot_observable not in obs:
            raise InvalidInputError(f"--plot-observable must be one of {', '.join(obs)}")
        y = obs[args.plot_observable]
        with atomic_output(check_output_file(args.plot, "--plot", figure=True)) as tmp:
            plot_time_series(tmp, ode=ode if sim else (t, y), ylabel=args.plot_observable,
                             sim=(t, sim[0], sim[1], f"N = {args.N}, {args.seeds} seeds (mean ± s.e.)")
                             if sim else None)
    if args.csv:
        flat = {}
        for key in _KEYS:
            if key in named:
                arr = np.asarray(named[key])
                for idx in np.ndindex(*arr.shape[1:]):
                    flat[key + "".join(f"_{i + 1}" for i in idx)] = arr[(slice(None),) + idx]
        cols = {"t": np.asarray(t), **{k: np.asarray(v) for k, v in obs.items()}, **flat}
        with atomic_output(check_output_file(args.csv, "--csv")) as tmp:
            write_csv(tmp, [{k: float(v[i]) for k, v in cols.items()} for i in range(len(t))])


def register(sub) -> None:
    p = sub.add_parser("dynamics", help="integrate the derived online-SGD ODEs",
                       description="Integrate the N -> infinity online-SGD ODEs of a model from an initial state.")
    add_model_options(p)
    _time_options(p)
    p.add_argument("--rtol", type=_positive_float, default=1e-10,
                   help="relative tolerance in [1e-14, 1e-2] (default 1e-10)")
    p.set_defaults(func=run_dynamics)

    s = sub.add_parser("simulate", help="finite-N online SGD of the same model (ground truth)",
                       description="Run finite-N online SGD of the model over several seeds.")
    add_model_options(s)
    _time_options(s)
    s.add_argument("--N", type=_positive_int, required=True,
                   help="input dimension (>= 2; 1e4-style integers accepted). The work, seeds x t-max x N^2 x "
                        f"(M + M* + 1), must stay below {SIMULATION_WORK_MAX:.0e} without --force")
    s.add_argument("--seeds", type=_positive_int, default=8,
                   help=f"number of independent runs (default 8; <= {COUNT_MAX} without --force)")
    s.add_argument("--seed", type=_integer, default=0, help="base random seed (default 0)")
    s.add_argument("--per-seed", action="store_true",
                   help="with --json: every seed, its latents aligned to the ODE by signed permutation")
    s.set_defaults(func=run_simulate)


def _check_times(args):
    """--t-max, --rtol, --t-eval and the output files, checked before any derivation."""
    check_output_file(args.plot, "--plot", figure=True)
    check_output_file(args.csv, "--csv")
    if args.t_max is None or not np.isfinite(args.t_max) or not 0 < args.t_max <= T_MAX:
        raise InvalidInputError(f"--t-max must lie in (0, {T_MAX:g}], got {args.t_max:g}")
    if hasattr(args, "rtol") and not 1e-14 <= args.rtol <= 1e-2:
        raise InvalidInputError(f"--rtol must lie in [1e-14, 1e-2], got {args.rtol:g}")
    t_eval = (np.linspace(0, args.t_max, 11) if args.t_eval is None
              else np.asarray(parse_float_list(args.t_eval, "--t-eval")))
    if np.any(t_eval < 0) or np.any(t_eval > args.t_max) or np.any(np.diff(t_eval) < 0):
        raise InvalidInputError("--t-eval times must be non-decreasing and lie in [0, t-max]")
    return t_eval


def _setup(args):
    from ..derive import derive_dynamics
    from ..model import validate_state
    from ..simulate import default_initial_state

    t_eval = _check_times(args)
    model = model_from_args(args)
    system = derive_dynamics(model)
    T = system.table
    init = default_initial_state(T) if args.init is None else initial_state_arg(args.init, T)
    _check_init_magnitude(init)
    state = validate_state(T, init)
    # a fixed encoder variance is a parameter: take it from the initial state unless given with --set
    if model.vae.encoder_variance == "fixed" and "D" in state:
        for k, d in enumerate(state["D"]):
            if not any(item.startswith(f"D_{k + 1}=") for item in args.param):
                args.param.append(f"D_{k + 1}={d}")
    params = param_values_from_args(args, system.params)
    check_schedule(model, params, args.t_max)
    return model, system, state, params, t_eval


def _check_init_magnitude(init) -> None:
    """Every number of --init finite and within [-PARAM_MAX, PARAM_MAX] (validate_state checks the rest)."""
    try:
        flat = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in dict(init).values()]) if init else []
    except (TypeError, ValueError):
        return  # validate_state reports the shape / type problem
    if len(flat) and not (np.all(np.isfinite(flat)) and np.max(np.abs(flat)) <= PARAM_MAX):
        raise InvalidInputError(f"--init: every entry must be finite with |x| <= {PARAM_MAX:g}")


def _entry_lists(named: dict, k: int) -> dict:
    return {key: [np.asarray(named[key][i]).tolist() for i in range(k)] for key in _KEYS if key in named}


def _table(t, named, extra) -> str:
    cols = ["t"] + list(extra)
    flat = {}
    for key in _KEYS:
        if key not in named:
            continue
        arr = np.asarray(named[key])
        for idx in np.ndindex(*arr.shape[1:]):
            flat[key + "".join(f"_{i + 1}" for i in idx)] = arr[(slice(None),) + idx]
    cols += list(flat)
    rows = ["  ".join(f"{c:>12}" for c in cols)]
    for i in range(len(t)):
        vals = [t[i]] + [extra[c][i] for c in extra] + [flat[c][i] for c in flat]
        rows.append("  ".join(f"{v:12.6g}" for v in vals))
    return "\n".join(rows) + "\n"


def _warm_key(args) -> str:
    """Key of the warm entry of ``symvae dynamics`` with these model options and the default initial state: the
    option texts verbatim (two spellings of one model only cost one cold run each), the package's code hash. Every
    --beta-schedule expression of a model shares one entry (the schedule is a runtime program of the base module);
    the entry holds the expressions by their text (``_warm.load_warm_schedule``)."""
    from ..codegen._warm import warm_key

    description = {"command": "dynamics", "variant": args.variant, "M": args.M, "M_star": args.M_star,
                   "beta_schedule": None if args.beta_schedule is None else "(runtime program)", "init": "default",
                   **{f"{part}_activation": getattr(args, f"{part}_activation", "linear")
                      for part in ("encoder", "decoder")}}
    return warm_key("ode", description)


def _read_schedule_check(data) -> tuple:
    """The stored ``_schedule_check_data``: (parameter names, depends on t, text, program).

    Raises:
        KeyError, TypeError, ValueError: the data is damaged (the caller takes the cold path).
    """
    from ..codegen._warm import program_from_data

    free = [str(n) for n in data["free"]]
    return free, bool(data["has_t"]), str(data["text"]), program_from_data(data["program"], len(free))


def _check_schedule_warm(check, values, t_max) -> None:
    """``check_schedule`` from the plain data the cold run stored (``_read_schedule_check``)."""
    free, has_t, expr, program = check
    if any(n not in values for n in free):
        return
    check_schedule_program(program, free, has_t, expr, values, t_max)


def _schedule_check_data(model) -> dict:
    """What ``check_schedule`` computes from the model's beta(t) with SymPy, as plain data for the warm path."""
    from ..codegen._schedule import compile_program
    from ..codegen._warm import _program_data
    from ..model import t as t_symbol

    expr = model.vae.beta_expr
    free = sorted(expr.free_symbols - {t_symbol}, key=lambda s: s.name)
    program = compile_program(1, exprs=[(0, expr)], param_index={s.name: k for k, s in enumerate(free)},
                              labels=("it",))
    return {"free": [s.name for s in free], "has_t": t_symbol in expr.free_symbols, "text": str(expr),
            "program": _program_data(program)}


def _warm_setup(args):
    """``_setup`` without SymPy, from the warm entry a cold run with the same model options stored: (compiled system
    over plain data, initial state vector, parameter values, output times), or None (then take the cold path).

    Only runs with the default initial state within the M limits are served; a --beta-schedule expression only if
    a cold run stored it (by its text); every check they pass through is the cold path's, in the same order."""
    if args.init is not None or ((args.M > M_MAX or args.M_star > M_MAX) and not getattr(args, "force", False)):
        return None
    t_eval = _check_times(args)
    from ..codegen._warm import load_warm, load_warm_schedule

    if args.beta_schedule is None:
        hit = load_warm(_warm_key(args))
    else:
        hit = load_warm_schedule(_warm_key(args), args.beta_schedule)
    if hit is None:
        return None
    extra, compiled = hit
    try:
        y0 = np.asarray(extra["y0"], dtype=float)
        fixed = [(str(prefix), str(item)) for prefix, item in extra["fixed_parameters"]]
        notes = tuple(str(note) for note in extra.get("notes", ()))
        check = _read_schedule_check(extra["schedule_check"]) if args.beta_schedule is not None else None
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if y0.shape != (len(compiled.system.state),):
        return None
    for prefix, item in fixed:  # as _setup: a fixed encoder variance is taken from the initial state
        if not any(a.startswith(prefix) for a in args.param):
            args.param.append(item)
    params = param_values_from_args(args, [p.name for p in compiled.system.params])
    if check is not None:
        _check_schedule_warm(check, params, args.t_max)
    return compiled, y0, params, t_eval, notes


def _store_warm(args, model, compiled, state) -> None:
    """After a cold setup with the default initial state: what ``_warm_setup`` needs, as plain data."""
    import sympy as sp

    from ..codegen._warm import store_warm, store_warm_schedule

    system = compiled.system
    beta = model.vae.beta_expr
    if args.init is not None:
        return  # only the default state
    scheduled = args.beta_schedule is not None
    if scheduled != (not (isinstance(beta, sp.Symbol) and beta.name == "beta")) or scheduled != hasattr(compiled,
                                                                                                          "program"):
        return  # a model whose beta does not follow --beta-schedule as expected: nothing to remember
    fixed = []
    if model.vae.encoder_variance == "fixed" and "D" in state:
        fixed = [(f"D_{k + 1}=", f"D_{k + 1}={d}") for k, d in enumerate(state["D"])]
    try:
        y0 = system.pack({k: v for k, v in state.items() if k in system.blocks})
    except Exception:  # noqa: BLE001 - nothing to remember; the integration reports the problem
        return
    extra = {"y0": y0.tolist(), "fixed_parameters": fixed, "notes": list(system.notes)}
    if scheduled:
        try:
            extra["schedule_check"] = _schedule_check_data(model)
        except Exception:  # noqa: BLE001 - not representable as a program: the cold path stays the only path
            return
        store_warm_schedule(_warm_key(args), compiled, args.beta_schedule, extra)
    else:
        store_warm(_warm_key(args), compiled, extra)


def run_dynamics(args: argparse.Namespace) -> int:
    from ..numerics._integrate import integrate

    warm = _warm_setup(args)
    if warm is not None:
        compiled, y0, params, t_eval, notes = warm
    else:
        from ..codegen import compile_system

        model, system, state, params, t_eval = _setup(args)
        y0 = {k: v for k, v in state.items() if k in system.blocks}
        compiled = compile_system(system)
        _store_warm(args, model, compiled, state)
        notes = system.notes
    traj = integrate(compiled, y0, params, t_eval, rtol=args.rtol)
    named = traj.order_parameters()
    obs = traj.observables()
    k = len(traj.t)
    _plot_and_csv(args, traj.t, named, {n: obs[n] for n in ("eg", "rate", "distortion")})
    if args.json:
        out = {"t": traj.t.tolist(), **_entry_lists(named, k), "eg": obs["eg"].tolist(),
               "rate": obs["rate"].tolist(), "distortion": obs["distortion"].tolist(),
               "status": traj.status, "message": traj.message}
        if traj.status != "ok":
            out["t_stop"] = traj.t_stop
        if notes:  # what is approximate in the derived equations (a numerical rule)
            out["notes"] = list(notes)
        print_json(out)
    else:
        sys.stdout.write(_table(traj.t, named, {"eg": obs["eg"], "rate": obs["rate"],
                                                "distortion": obs["distortion"]}))
        sys.stdout.write("".join(f"# approximate: {note}\n" for note in notes))
        sys.stdout.write(f"# status: {traj.status} ({traj.message})\n")
    if traj.status != "ok":
        sys.stderr.write(f"symvae: {traj.message}\n")
        return 1
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from ..numerics import integrate
    from ..simulate import simulate

    _check_times(args)
    if args.N < 2:
        raise InvalidInputError(f"--N must be >= 2, got {args.N}")
    check_count(args.seeds, "--seeds", args.force)
    check_work(f"simulate at N = {args.N} with {args.seeds} seeds to t = {args.t_max:g}",
               float(args.seeds) * args.t_max * float(args.N) ** 2 * (args.M + args.M_star + 1),
               SIMULATION_WORK_MAX, "operations", args.force)
    model, system, state, params, t_eval = _setup(args)
    init = {k: np.asarray(v).tolist() for k, v in state.items()}
    if model.vae.encoder_activation != "linear" or model.vae.decoder_activation != "linear":
        from ..codegen import compile_system
        from ..simulate import simulate_nonlinear  # activations: eps sampled, numpy
        from ..simulate._nonlinear import with_observables

        res = simulate_nonlinear(model, params, init, t_eval, N=args.N, seeds=args.seeds, seed=args.seed)
        res = with_observables(res, compile_system(system))  # eg, rate, distortion of the derived system per seed
    else:
        res = simulate(model, params, init, t_eval, N=args.N, seeds=args.seeds, seed=args.seed)
    k = len(res.t)
    if args.plot or args.csv:
        means = {n: np.asarray(v).mean(axis=0) for n, v in res.observables.items() if n != "neg_elbo"}
        ses = {n: np.asarray(v).std(axis=0, ddof=1) / np.sqrt(args.seeds) if args.seeds > 1
               else np.zeros(k) for n, v in res.observables.items()}
        chosen = args.plot_observable if args.plot_observable in means else "eg"
        ode = None
        if args.plot:  # the theory line under the finite-N markers
            t_line = np.linspace(0.0, float(t_eval[-1]), 401)
            traj = integrate(system, {k_: v for k_, v in state.items() if k_ in system.blocks}, params, t_line)
            ode = (traj.t, traj.observables().get(chosen, traj.observables()["eg"]))
        _plot_and_csv(args, np.asarray(res.t), res.mean, means, sim=(means[chosen], ses[chosen]), ode=ode)
    if args.json:
        out = {"t": np.asarray(res.t).tolist(), "mean": _entry_lists(res.mean, k), "std": _entry_lists(res.std, k),
               "status": res.status, "message": res.message}
        if hasattr(res, "eg"):
            eg = np.asarray(res.eg)
            out["mean"]["eg"] = eg.mean(axis=0).tolist()
            out["std"]["eg"] = eg.std(axis=0).tolist()
        if args.per_seed:
            from ..analysis._latents import per_seed_report

            out.update(per_seed_report(res, system, state, params))
        print_json(out)
    else:
        extra = {"eg": np.asarray(res.eg).mean(axis=0)} if hasattr(res, "eg") else {}
        sys.stdout.write(_table(np.asarray(res.t), res.mean, extra))
        sys.stdout.write(f"# mean over {args.seeds} seeds at N = {args.N}; status: {res.status} ({res.message})\n")
    if res.status != "ok":
        sys.stderr.write(f"symvae: simulate: {' '.join(str(res.message).split())}\n")
        return 1
    return 0
