"""``symvae statics``, ``phase-diagram``, ``eg-curve``, ``rd-curve``: replica statics of the global minimiser.

(The ``threshold collapse`` / ``threshold detection`` sub-commands live with the thresholds CLI; they call
``symvae.statics.statics_threshold``.)
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys

from ..errors import InvalidInputError
from ._common import (MEMORY_MAX, _finite_float, _positive_int, add_model_options, atomic_output, check_output_file,
                      check_value, check_work, model_from_args, param_values_from_args, parse_float_list, print_json)

#: Estimated floating-point operations of the exact finite-N points without --force (a few minutes).
FINITE_N_WORK_MAX = 2e11
#: Replica phase diagrams: about 0.04 s per grid point and worker (900 points took 36 s on one busy core); more
#: than an hour of estimated work needs --force.
_REPLICA_SECONDS_PER_POINT = 0.04
PHASE_DIAGRAM_SECONDS_MAX = 3600.0

_METHODS = ("replica", "closed-form")


#: Methods of the statics thresholds (``symvae threshold ... --method``): the random-matrix closed form (default) or
#: the replica saddle-point system alone.
THRESHOLD_METHODS = ("closed-form", "saddle")


def add_threshold_method_option(parser) -> None:
    """``--method`` of ``symvae threshold`` (statics setting only)."""
    parser.add_argument("--method", choices=THRESHOLD_METHODS, default=None,
                        help="statics thresholds: located on the random-matrix closed form (closed-form, default) "
                             "or on the replica saddle-point system alone (saddle: detection, eg_peak, optimal_beta, "
                             "a continuous collapse in beta; the top latent on the strongest spike)")


def threshold_method(args, statics: bool) -> str | None:
    """The --method of a threshold command: only in the statics setting (default closed-form)."""
    method = getattr(args, "method", None)
    if not statics:
        if method is not None:
            raise InvalidInputError("--method is an option of the statics thresholds (give --alpha, or detection / "
                                    "eg_peak / optimal_beta)")
        return None
    return method or "closed-form"


def _range(text: str, what: str) -> tuple[float, float]:
    parts = text.split(":")
    if len(parts) != 2:
        raise InvalidInputError(f"{what} must be a:b, got {text!r}")
    try:
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidInputError(f"{what} must be two numbers a:b, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or not a < b:
        raise InvalidInputError(f"{what} must satisfy 0 < a < b (finite), got {text!r}")
    for v in (a, b):
        check_value("alpha" if "alpha" in what else "beta", v, what)
    return a, b


def _alpha(text: str) -> float:
    return _finite_float(text)


def _setup(args):
    from ..statics import statics_param_names
    model = model_from_args(args)
    names = statics_param_names(model)
    params = param_values_from_args(args, names)
    return model, params


def _outputs(out: str | None, csv: str | None) -> tuple[pathlib.Path | None, pathlib.Path | None]:
    """--out (a figure) and --csv (default: --out with suffix .csv), checked before any work (_common.OUTPUT_RULE)."""
    path = check_output_file(out, "--out", figure=True)
    if csv is None and path is not None:
        csv = str(path.with_suffix(".csv"))
    return path, check_output_file(csv, "--csv")


def _check_finite_n(N, alphas, points: int, force: bool) -> None:
    """Memory and time of the exact finite-N points: data n x N (n = alpha N), sample covariance, eigensolver."""
    if N is None:
        return
    if N < 10:
        raise InvalidInputError(f"--finite-n must be >= 10, got {N}")
    a = max(alphas)
    check_work(f"--finite-n {N} at alpha up to {a:g}", (a + 3) * 8.0 * float(N) ** 2, MEMORY_MAX, "bytes of memory",
               force)
    check_work(f"--finite-n {N} ({points} points)", points * (a + 10) * float(N) ** 3, FINITE_N_WORK_MAX,
               "floating-point operations", force)


def register(sub) -> None:
    p = sub.add_parser("statics", help="replica statics: the global minimiser on n = alpha N samples",
                       description="Solve the replica saddle-point equations of the global minimiser of the beta-VAE "
                                   "loss on n = alpha N samples (N -> infinity).")
    add_model_options(p, dynamics=False)
    p.add_argument("--alpha", type=_alpha, required=True, help="sample ratio n / N (> 0)")
    p.add_argument("--method", choices=_METHODS, default="replica",
                   help="replica saddle point (default) or the random-matrix closed form")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_statics)

    d = sub.add_parser("phase-diagram", help="the (alpha, beta) phase diagram of the statics",
                       description="Phases collapsed / learning / overlearning on an (alpha, beta) grid.")
    add_model_options(d, dynamics=False)
    d.add_argument("--alpha-range", required=True, metavar="A:B", help="alpha interval (geometric grid)")
    d.add_argument("--beta-range", required=True, metavar="A:B", help="beta interval")
    d.add_argument("--n-alpha", type=_positive_int, default=100, help="alpha grid points (default 100)")
    d.add_argument("--n-beta", type=_positive_int, default=100,
                   help="beta grid points (default 100; n-alpha x n-beta <= 10^6, and a replica grid estimated "
                        "above an hour needs --force)")
    d.add_argument("--linear-alpha", action="store_true", help="linear instead of geometric alpha grid")
    d.add_argument("--method", choices=_METHODS, default="replica", help="replica (default) or closed-form")
    d.add_argument("--workers", type=_positive_int, default=2, help="processes, 1..64 (default 2)")
    d.add_argument("--out", default=None, help="figure file (.png/.pdf/.svg); the data go to the .csv beside it")
    d.add_argument("--csv", default=None, help="data file (default: --out with suffix .csv)")
    d.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (there is none when stderr is not a terminal)")
    d.add_argument("--json", action="store_true", help="print a JSON summary")
    d.set_defaults(func=run_phase_diagram)

    e = sub.add_parser("eg-curve", help="generalisation error eg(alpha) at several beta",
                       description="eg(alpha) of the global minimiser at several beta, optionally with finite-N "
                                   "points (exact minimisers).")
    add_model_options(e, dynamics=False)
    e.add_argument("--betas", required=True, help="comma-separated beta values")
    e.add_argument("--alpha-range", required=True, metavar="A:B", help="alpha interval (geometric grid)")
    e.add_argument("--n-alpha", type=_positive_int, default=120, help="alpha grid points, 2..10^5 (default 120)")
    e.add_argument("--finite-n", type=_positive_int, default=None, metavar="N",
                   help="add exact finite-N points at this N (memory and time bounded unless --force)")
    e.add_argument("--method", choices=_METHODS, default="replica", help="replica (default) or closed-form")
    e.add_argument("--out", default=None, help="figure file (.png/.pdf/.svg); the data go to the .csv beside it")
    e.add_argument("--csv", default=None, help="data file (default: --out with suffix .csv)")
    e.add_argument("--json", action="store_true", help="print a JSON summary")
    e.set_defaults(func=run_eg_curve)

    r = sub.add_parser("rd-curve", help="rate-distortion curves at several alpha (and alpha -> infinity)",
                       description="Rate-distortion curves traced by beta at fixed alpha, with the alpha -> infinity "
                                   "curve.")
    add_model_options(r, dynamics=False)
    r.add_argument("--alpha", required=True, help="comma-separated alpha values, e.g. 1,2,5,10")
    r.add_argument("--n-beta", type=_positive_int, default=150, help="beta points per curve, 2..10^5 (default 150)")
    r.add_argument("--no-infinity", action="store_true", help="omit the alpha -> infinity curve")
    r.add_argument("--finite-n", type=_positive_int, default=None, metavar="N",
                   help="add exact finite-N points at this N (memory and time bounded unless --force)")
    r.add_argument("--method", choices=_METHODS, default="replica", help="replica (default) or closed-form")
    r.add_argument("--out", default=None, help="figure file (.png/.pdf/.svg); the data go to the .csv beside it")
    r.add_argument("--csv", default=None, help="data file (default: --out with suffix .csv)")
    r.add_argument("--json", action="store_true", help="print a JSON summary")
    r.set_defaults(func=run_rd_curve)


def _write_outputs(result, out, csv) -> dict:
    """Write the figure and the CSV of a diagram/curves result where asked; its summary with their paths."""
    if out is not None:
        with atomic_output(out) as tmp:
            result.plot(tmp)
    if csv is not None:
        with atomic_output(csv) as tmp:
            result.to_csv(tmp)
    summary = result.summary()
    summary.update(figure=None if out is None else str(out), csv=None if csv is None else str(csv))
    return summary


def run_statics(args: argparse.Namespace) -> int:
    from ..statics import closed_form, solve_statics
    from ..simulate._params import check_alpha

    alpha = check_value("alpha", check_alpha(args.alpha), "--alpha")
    model, params = _setup(args)
    if args.method == "closed-form":
        cf = closed_form(model, params, alpha)
        out = {k: cf.order[k].tolist() for k in ("m", "m_tilde", "Q", "Q_tilde", "R", "D")}
        out.update(eg=float(cf.observables["eg"]), rate=float(cf.observables["rate"]),
                   distortion=float(cf.observables["distortion"]), train_loss=float(cf.train_loss),
                   phase=cf.phase, status="ok")
        message = "random-matrix closed form"
    else:
        result = solve_statics(model, params, alpha, throw=False)
        out = result.to_json()
        message = result.message
    if args.json:
        print_json(out)
    else:
        for key, value in out.items():
            sys.stdout.write(f"{key:>11}: {value}\n")
        sys.stdout.write(f"# {message}\n")
    if out["status"] != "ok":
        sys.stderr.write(f"symvae: {message}\n")
        return 1
    return 0


def run_phase_diagram(args: argparse.Namespace) -> int:
    from ..analysis import phase_diagram

    a = _range(args.alpha_range, "--alpha-range")
    b = _range(args.beta_range, "--beta-range")
    if args.n_alpha < 2 or args.n_beta < 2 or args.n_alpha * args.n_beta > 10 ** 6:
        raise InvalidInputError("--n-alpha and --n-beta must be >= 2 (and their product <= 10^6)")
    if not 1 <= args.workers <= 64:
        raise InvalidInputError(f"--workers must lie in [1, 64], got {args.workers}")
    if args.method == "replica":
        check_work(f"a {args.n_alpha} x {args.n_beta} replica phase diagram on {args.workers} worker(s)",
                   args.n_alpha * args.n_beta * _REPLICA_SECONDS_PER_POINT / args.workers, PHASE_DIAGRAM_SECONDS_MAX,
                   "seconds", args.force)
    out, csv = _outputs(args.out, args.csv)
    model, params = _setup(args)
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        diagram = phase_diagram(model, params, a, b, n_alpha=args.n_alpha, n_beta=args.n_beta,
                                log_alpha=not args.linear_alpha, method=args.method, workers=args.workers,
                                progress=progress)
    except BaseException:
        if progress:  # end the progress bar's line, so the message that follows starts on its own
            sys.stderr.write("\n")
        raise
    summary = _write_outputs(diagram, out, csv)
    if args.json:
        print_json(summary)
    else:
        sys.stdout.write(f"phases on {summary['shape'][0]} x {summary['shape'][1]} grid: {summary['counts']} "
                         f"({diagram.seconds:.2f} s); figure {summary['figure']}, data {summary['csv']}\n")
    if summary["status"] != "ok":  # a numerical outcome: exit 1 with everything that was solved
        sys.stderr.write(f"symvae: {summary['counts'].get('unsolved', 0)} grid points without a minimiser "
                         f"(blank in the figure, 'unsolved' in the CSV)\n")
        return 1
    return 0


def _unsolved_status(command: str, summary: dict) -> int:
    """Exit 1 with one line when some points have no minimiser (a numerical outcome), else 0."""
    if summary.get("unsolved"):
        sys.stderr.write(f"symvae: {command}: {summary['unsolved']} points without a minimiser of the replica free "
                         f"energy (blank in the figure, empty in the CSV)\n")
        return 1
    return 0


def run_eg_curve(args: argparse.Namespace) -> int:
    from ..analysis import eg_curves

    betas = parse_float_list(args.betas, "--betas")
    a = _range(args.alpha_range, "--alpha-range")
    if not 2 <= args.n_alpha <= 10 ** 5:
        raise InvalidInputError(f"--n-alpha must lie in [2, 10^5], got {args.n_alpha}")
    _check_finite_n(args.finite_n, a, 8 * 3 * len(betas), args.force)
    out, csv = _outputs(args.out, args.csv)
    model, params = _setup(args)
    for b in betas:
        check_value("beta", b, "--betas")
    curves = eg_curves(model, params, betas, a, n_alpha=args.n_alpha, method=args.method, finite_n=args.finite_n)
    summary = _write_outputs(curves, out, csv)
    if args.json:
        print_json(summary)
    else:
        sys.stdout.write(f"eg(alpha) for beta = {betas}: maxima at alpha = {summary['argmax_alpha']}\n")
    return _unsolved_status("eg-curve", summary)


def run_rd_curve(args: argparse.Namespace) -> int:
    from ..analysis import rd_curves
    from ..simulate._params import check_alpha

    alphas = [check_value("alpha", check_alpha(v), "--alpha") for v in parse_float_list(args.alpha, "--alpha")]
    if not 2 <= args.n_beta <= 10 ** 5:
        raise InvalidInputError(f"--n-beta must lie in [2, 10^5], got {args.n_beta}")
    _check_finite_n(args.finite_n, alphas, 6 * 3 * len(alphas), args.force)
    out, csv = _outputs(args.out, args.csv)
    model, params = _setup(args)
    curves = rd_curves(model, params, alphas, n_beta=args.n_beta, include_infinity=not args.no_infinity,
                       method=args.method, finite_n=args.finite_n)
    summary = _write_outputs(curves, out, csv)
    if args.json:
        print_json(summary)
    else:
        for key, c in summary["curves"].items():
            if c["max_rate"] is None:
                sys.stdout.write(f"alpha = {key}: no point solved\n")
            else:
                sys.stdout.write(f"alpha = {key}: max rate {c['max_rate']:.4g}, min distortion "
                                 f"{c['min_distortion']:.4g}\n")
    return _unsolved_status("rd-curve", summary)
