"""``symvae sweep``, ``symvae anneal``, ``symvae n-scaling`` and ``symvae reproduce``: the papers' questions."""
from __future__ import annotations

import argparse
import sys

from ..errors import InvalidInputError, SymvaeError
from ._common import (INIT_HELP, SIMULATION_WORK_MAX, add_model_options, atomic_output, check_output_file,
                      check_output_folder, check_value, check_work, initial_state_arg, model_from_args,
                      param_values_from_args, parse_float_list, print_json, staged_folder)


def _check_outputs(args) -> None:
    """--plot and --csv checked before any work (the rule every verb follows)."""
    check_output_file(args.plot, "--plot", figure=True)
    check_output_file(args.csv, "--csv")


def _positive(text: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value in (float("inf"),):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _positive(text, int)


def _progress(label: str):
    """Progress on stderr when it is a terminal (JSON consumers see a clean stderr otherwise)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r{label}: {done}/{total}" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return show


def _interruptible(run):
    """``run`` with a Ctrl-C inside compiled code reported as an interrupt (exit 130), not a traceback."""
    import functools

    @functools.wraps(run)
    def wrapped(args):
        from ..analysis._executor import interruptible

        with interruptible():
            return run(args)

    return wrapped


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--csv", default=None, metavar="FILE", help="write the rows as CSV")
    p.add_argument("--plot", default=None, metavar="FILE", help="write a figure (.png, .pdf or .svg)")


def _executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument("--executor", choices=("serial", "processes", "dask"), default="serial",
                   help="where points run (default serial; dask needs symvae[dask] and --scheduler)")
    g.add_argument("--workers", type=_positive_int, default=None, help="local processes (default: CPU count)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS", help="dask scheduler, e.g. tcp://host:8786")
    g.add_argument("--chunk-size", type=_positive_int, default=None, help="points per task (default: automatic)")


def register(sub) -> None:
    from ..analysis._sweep import METRICS

    p = sub.add_parser("sweep", help="metrics of the dynamics over a grid of parameter values (ODE and simulation)",
                       description="Sweep one or two parameters (model parameters, M, M_star, N, t_max) and report "
                                   f"metrics ({', '.join(METRICS)}) from the ODE and, with --finite-n, from "
                                   "simulation (mean and standard error over seeds).")
    add_model_options(p)
    p.add_argument("--param", dest="sweep_param", required=True, help="parameter to sweep (e.g. beta, tau, M)")
    p.add_argument("--values", required=True, help="comma-separated values of --param")
    p.add_argument("--param2", dest="sweep_param2", default=None, help="second parameter (Cartesian product)")
    p.add_argument("--values2", default=None, help="comma-separated values of --param2")
    p.add_argument("--metric", default="eg_final", help="comma-separated metrics (default eg_final)")
    p.add_argument("--t-max", type=_positive, default=2000.0, help="horizon (default 2000)")
    p.add_argument("--n-grid", type=_positive_int, default=4001, help="recorded times in [0, t-max] (default 4001)")
    p.add_argument("--target-delta", type=_positive, default=0.01,
                   help="convergence_time: band above the fixed-point eg (default 0.01)")
    p.add_argument("--disentangle-level", type=_positive, default=0.05,
                   help="disentangle_time: entanglement threshold (default 0.05)")
    p.add_argument("--init", default=None, metavar="JSON|random:N[:SEED]", help=INIT_HELP)
    p.add_argument("--finite-n", type=_positive_int, default=None, metavar="N", help="add simulation at dimension N")
    p.add_argument("--seeds", type=_positive_int, default=4, help="simulation seeds (default 4)")
    p.add_argument("--seed", type=int, default=0, help="base random seed")
    _executor_options(p)
    _output_options(p)
    p.set_defaults(func=_interruptible(run_sweep))

    a = sub.add_parser("anneal", help="KL annealing: convergence time T(gamma), optimal rate gamma*, speed-up",
                       description="Convergence time to eps* + delta under beta(t) = schedule with rate gamma; the "
                                   "optimal gamma from dT/dgamma (sensitivity equations), the speed-up over "
                                   "constant beta and the penalty of too slow annealing.")
    add_model_options(a)
    a.add_argument("--schedule", default="tanh", help="tanh, linear, exp or an expression in t, gamma, beta")
    a.add_argument("--gammas", default=None, help="comma-separated rates at which to report T(gamma)")
    a.add_argument("--taus", default=None, help="comma-separated step sizes: report gamma* at each (scaling)")
    a.add_argument("--target-delta", type=_positive, default=0.01, help="convergence band above eps* (default 0.01)")
    a.add_argument("--t-max", type=_positive, default=None, help="horizon (default max(2000, 200/tau))")
    _output_options(a)
    a.set_defaults(func=_interruptible(run_anneal))

    n = sub.add_parser("n-scaling", help="deviation of finite-N SGD from the ODE vs N, with the fitted exponent",
                       description="Simulate at several N; fit deviation ~ N^exponent (bootstrap CI over seeds).")
    add_model_options(n)
    n.add_argument("--N", default="250,500,1000,2000", help="comma-separated dimensions (default 250,500,1000,2000)")
    n.add_argument("--seeds", type=_positive_int, default=8, help="seeds per N (default 8)")
    n.add_argument("--seed", type=int, default=0, help="base random seed")
    n.add_argument("--t-max", type=_positive, default=200.0, help="horizon (default 200)")
    n.add_argument("--init", default=None, metavar="JSON|random:N[:SEED]", help=INIT_HELP)
    _output_options(n)
    n.set_defaults(func=_interruptible(run_nscaling))

    r = sub.add_parser("reproduce", help="reproduce the papers' claims: report.md, numbers.json, CSVs, figures",
                       description="Run every study of the two papers and write DIR/report.md (figures embedded, "
                                   "each with its command), DIR/numbers.json and CSVs.")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--quick", action="store_true", help="CI-sized run (about a minute)")
    r.set_defaults(func=_interruptible(run_reproduce))


def _point_from_args(args, metrics):
    from ..analysis._sweep import SweepPoint, model_for
    model = model_from_args(args)
    activations = (args.encoder_activation, args.decoder_activation)
    _, system, _ = model_for(args.variant, args.M, args.M_star, args.beta_schedule, *activations)
    params = param_values_from_args(args, system.params)
    init = initial_state_arg(args.init, system.table)
    return SweepPoint(variant=args.variant, M=args.M, M_star=args.M_star, beta_schedule=args.beta_schedule,
                      params=params, t_max=args.t_max, n_grid=args.n_grid, metrics=tuple(metrics),
                      target_delta=args.target_delta, disentangle_level=args.disentangle_level, init=init,
                      finite_n=args.finite_n, seeds=args.seeds, seed=args.seed,
                      encoder_activation=activations[0], decoder_activation=activations[1]), model


def run_sweep(args: argparse.Namespace) -> int:
    from ..analysis import make_executor, sweep
    from ..analysis._figures import plain, plot_sweep, write_csv
    from ..analysis._sweep import STRUCTURAL

    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    if not metrics:
        raise InvalidInputError("--metric needs at least one metric")
    if (args.sweep_param2 is None) != (args.values2 is None):
        raise InvalidInputError("--param2 and --values2 go together")
    _check_outputs(args)
    if args.finite_n is not None and args.seeds < 2:
        raise InvalidInputError("--finite-n needs --seeds >= 2 (standard errors)")
    grid = {args.sweep_param: parse_float_list(args.values, "--values")}
    if args.sweep_param2:
        if args.sweep_param2 == args.sweep_param:
            raise InvalidInputError("--param2 must differ from --param")
        grid[args.sweep_param2] = parse_float_list(args.values2, "--values2")
    given = {item.partition("=")[0].strip() for item in args.param}
    for name, values in grid.items():  # a swept parameter needs no --set value
        if name not in given and name not in ("rho", "eta", "beta", "lam", "tau") + STRUCTURAL:
            args.param.append(f"{name}={values[0]}")
    base, _ = _point_from_args(args, metrics)
    with make_executor(args.executor, workers=args.workers, scheduler=args.scheduler) as ex:
        result = sweep(base, grid, executor=ex, chunk_size=args.chunk_size, progress=_progress("sweep"))
    rows = [{k: plain(v) for k, v in r.items()} for r in result.rows]
    if args.csv:
        with atomic_output(check_output_file(args.csv, "--csv")) as tmp:
            write_csv(tmp, rows)
    if args.plot:
        with atomic_output(check_output_file(args.plot, "--plot", figure=True)) as tmp:
            plot_sweep(rows, result.names, metrics, tmp)
    if args.json:
        print_json({"rows": rows, "status": result.status})
    else:
        cols = list(rows[0]) if rows else []
        sys.stdout.write("  ".join(f"{c:>16}" for c in cols) + "\n")
        for r in rows:
            sys.stdout.write("  ".join(f"{r[c]:>16.8g}" if isinstance(r.get(c), (int, float)) else f"{str(r.get(c)):>16}"
                                       for c in cols) + "\n")
        sys.stdout.write(f"# status: {result.status}\n")
    return 0 if result.status == "ok" else 1


def run_anneal(args: argparse.Namespace) -> int:
    from ..analysis._anneal import anneal, optimal_rate_vs_tau
    from ..analysis._figures import plain, plot_anneal, write_csv

    if args.beta_schedule:
        raise InvalidInputError("anneal takes the schedule family with --schedule, not --beta-schedule")
    _check_outputs(args)
    values = {"rho": args.rho, "eta": args.eta, "beta": args.beta, "lam": args.lam, "tau": args.tau}
    for name in ("rho", "eta", "beta", "tau"):
        if not values[name] > 0:
            raise InvalidInputError(f"--{name} must be > 0 for annealing, got {values[name]}")
    for name, value in values.items():
        check_value(name, value)
    for item in args.param:
        name, _, text = item.partition("=")
        values[name.strip()] = check_value(name.strip(), float(parse_float_list(text, f"--set {name}")[0]),
                                           f"--set {name.strip()}")
    gammas = parse_float_list(args.gammas, "--gammas") if args.gammas else []
    if any(g <= 0 for g in gammas):
        raise InvalidInputError("--gammas must be positive")
    say = (lambda s: sys.stderr.write(s + "\n")) if sys.stderr.isatty() else None
    try:
        res = anneal(args.schedule, values, gammas=gammas, M=args.M, M_star=args.M_star,
                     target_delta=args.target_delta, t_max=args.t_max, progress=say,
                     encoder_activation=args.encoder_activation, decoder_activation=args.decoder_activation)
    except InvalidInputError:
        raise
    except SymvaeError as exc:  # a numerical failure (no optimum, horizon too short): status, exit 1
        if args.json:
            print_json({"status": "failed", "message": str(exc)})
        sys.stderr.write(f"symvae: anneal failed: {exc}\n")
        return 1
    out = res.as_dict()
    if args.taus:
        taus = parse_float_list(args.taus, "--taus")
        if any(t <= 0 for t in taus):
            raise InvalidInputError("--taus must be positive")
        out["gamma_opt_vs_tau"] = optimal_rate_vs_tau(args.schedule, values, taus, target_delta=args.target_delta)
    if args.csv:
        with atomic_output(check_output_file(args.csv, "--csv")) as tmp:
            write_csv(tmp, out["curve"] + [{"gamma": out["gamma_opt"], "time": out["time_opt"]}], ["gamma", "time"])
    if args.plot:
        with atomic_output(check_output_file(args.plot, "--plot", figure=True)) as tmp:
            plot_anneal(out["curve"] + [{"gamma": out["gamma_opt"], "time": out["time_opt"]}], out, tmp,
                        title=f"β(t) = {res.schedule}")
    if args.json:
        print_json({k: (plain(v) if not isinstance(v, (list, dict)) else v) for k, v in out.items()})
    else:
        sys.stdout.write(f"schedule beta(t) = {res.schedule}\n")
        for k in ("gamma_opt", "time_opt", "time_constant", "speedup", "time_saved_fraction", "eps_star"):
            sys.stdout.write(f"{k:>20} = {out[k]:.8g}\n")
        for c in out["curve"]:
            sys.stdout.write(f"{'T(' + format(c['gamma'], 'g') + ')':>20} = {c['time']:.8g}\n")
        for row in out.get("gamma_opt_vs_tau", []):
            sys.stdout.write(f"{'tau = ' + format(row['tau'], 'g'):>20}: gamma* = {row['gamma_opt']:.6g}, "
                             f"T* = {row['time_opt']:.6g}\n")
    return 0


def run_nscaling(args: argparse.Namespace) -> int:
    from ..analysis._figures import plot_nscaling, write_csv
    from ..analysis._nscaling import n_scaling
    from ..analysis._sweep import model_for
    _check_outputs(args)
    Ns = [int(v) for v in parse_float_list(args.N, "--N")]
    if any(n < 2 or n != v for n, v in zip(Ns, parse_float_list(args.N, "--N"))):
        raise InvalidInputError(f"--N must be integers >= 2, got {args.N!r}")
    check_work(f"n-scaling at N = {args.N} with {args.seeds} seeds to t = {args.t_max:g}",
               float(args.seeds) * args.t_max * sum(float(n) ** 2 for n in Ns) * (args.M + args.M_star + 1),
               SIMULATION_WORK_MAX, "operations", args.force)
    model_from_args(args)  # the model's limits and activations checked as everywhere
    activations = (args.encoder_activation, args.decoder_activation)
    _, system, _ = model_for(args.variant, args.M, args.M_star, args.beta_schedule, *activations)
    params = param_values_from_args(args, system.params)
    init = initial_state_arg(args.init, system.table)
    res = n_scaling(params, Ns, seeds=args.seeds, seed=args.seed, M=args.M, M_star=args.M_star,
                    variant=args.variant, beta_schedule=args.beta_schedule, init=init, t_max=args.t_max,
                    progress=_progress("n-scaling"), encoder_activation=activations[0],
                    decoder_activation=activations[1])
    if args.csv:
        with atomic_output(check_output_file(args.csv, "--csv")) as tmp:
            write_csv(tmp, res.rows)
    if args.plot and res.status == "ok":
        with atomic_output(check_output_file(args.plot, "--plot", figure=True)) as tmp:
            plot_nscaling(res.rows, res.exponent, tmp)
    if args.json:
        print_json(res.as_dict())
    else:
        for r in res.rows:
            sys.stdout.write(f"N = {r['N']:>7}: deviation {r['deviation']:.5g} ± {r['deviation_se']:.2g}\n")
        sys.stdout.write(f"exponent {res.exponent:.4f}, {100 * res.confidence:.0f}% CI "
                         f"[{res.exponent_ci[0]:.4f}, {res.exponent_ci[1]:.4f}]; status: {res.status}\n")
    return 0 if res.status == "ok" else 1


def run_reproduce(args: argparse.Namespace) -> int:
    from ..analysis._reproduce import reproduce

    out = check_output_folder(args.out, "--out")
    with staged_folder(out) as stage:  # an interrupted run leaves no half-written report
        summary = reproduce(stage, quick=args.quick, log=lambda s: sys.stderr.write(s + "\n"))
    sys.stdout.write(f"wrote {out / 'report.md'} ({summary['status']})\n")
    return 0 if summary["status"] == "ok" else 1
