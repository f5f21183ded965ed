"""``symvae fixed-points``, ``symvae threshold`` and ``symvae continue``.

Input errors exit 2 with one line on stderr; a request that cannot be met (no threshold in range, precision not
reached, a continuation that fails) prints what was verified and exits 1.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

from ..errors import InvalidInputError
from ._statics import add_threshold_method_option, threshold_method
from ._common import (COUNT_MAX, _finite_float, _integer, _positive_float, _positive_int,
                      add_model_options, atomic_output, check_count, check_output_file, check_schedule, check_value,
                      jsonable, model_from_args, param_values_from_args, print_json, write_text_atomic)

_THRESHOLD_KINDS = ("collapse", "noise", "lr", "condition", "detection", "eg_peak", "optimal_beta")


def register(sub) -> None:
    f = sub.add_parser("fixed-points", help="all fixed points with spectrum, stability and kind",
                       description="Find the fixed points of the online-SGD ODEs at the given parameters (multi-start "
                                   "Newton with deflation from structured and random starts), with Jacobian "
                                   "eigenvalues, stability (stable / marginal: zero modes of a continuous symmetry / "
                                   "unstable), kind and closed forms where SymPy finds them.")
    add_model_options(f)
    f.add_argument("--starts", type=_positive_int, default=48,
                   help=f"number of random Newton starts, besides the structured ones (default 48; <= {COUNT_MAX} "
                        f"without --force)")
    f.add_argument("--seed", type=_integer, default=0, help="random seed of the starts (default 0)")
    f.add_argument("--include-unphysical", action="store_true",
                   help="also report roots with a non-PSD Gram matrix or D <= 0 (kind 'other')")
    f.add_argument("--digits", type=_positive_int, default=None,
                   help="also polish every fixed point to this many digits with mpmath and report its residual")
    f.add_argument("--no-closed-forms", action="store_true", help="skip the SymPy closed forms")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=run_fixed_points)

    t = sub.add_parser("threshold", help=f"a threshold ({', '.join(_THRESHOLD_KINDS)}) to any number of verified "
                                         f"digits",
                       description="Locate a threshold in float64 by continuation, refine it in mpmath on an augmented "
                                   "system with its symbolic Jacobian, verify it at a higher precision and compare "
                                   "with a SymPy closed form. 'condition' finds where --observable reaches --value "
                                   "on the branch of the stable fixed point.")
    t.add_argument("name", choices=("collapse", "noise", "lr", "condition") + _STATICS_ONLY,
                   help="which threshold; with --alpha, or for detection / eg_peak / optimal_beta, the statics "
                        "setting (global minimiser on n = alpha N samples)")
    add_model_options(t)
    t.add_argument("--alpha", type=_finite_float, default=None, help="sample ratio n/N: the statics setting")
    t.add_argument("--digits", type=_positive_int, default=30,
                   help="verified significant digits requested, 1..2000 (default 30)")
    t.add_argument("--parameter", default="beta",
                   help="the threshold parameter (default beta): any parameter of the model, i.e. rho, eta, beta, "
                        "lam, tau or a name --set takes for the variant")
    t.add_argument("--search", default=None, metavar="LO:HI",
                   help="parameter range searched (default 1e-3:1e6; for 'condition' from the model value to HI)")
    t.add_argument("--observable", default="eg", help="observable of 'condition' (default eg)")
    t.add_argument("--value", type=_finite_float, default=None, help="target value of 'condition' (finite)")
    t.add_argument("--no-closed-form", action="store_true", help="skip the SymPy closed form")
    add_threshold_method_option(t)
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=run_threshold)

    c = sub.add_parser("continue",
                       help="continue branches of fixed points (or a threshold) in a parameter",
                       description="Pseudo-arclength continuation of every fixed point found at --from up to --to, "
                                   "with stability and detected folds / branch points; with --second-param, the "
                                   "threshold curve in a second parameter.")
    add_model_options(c)
    c.add_argument("--param", dest="cont_param", required=True, help="the continuation parameter (e.g. beta)")
    c.add_argument("--from", dest="start", type=_finite_float, required=True,
                   help="start value (an admissible value of the parameter, |x| <= 1e6)")
    c.add_argument("--to", dest="stop", type=_finite_float, required=True, help="end value (same rules)")
    c.add_argument("--second-param", default=None, help="follow a threshold in this parameter instead")
    c.add_argument("--range", default=None, metavar="A:B", help="range of the second parameter")
    c.add_argument("--points", type=_positive_int, default=21,
                   help=f"points of the threshold curve (default 21; <= {COUNT_MAX} without --force)")
    c.add_argument("--threshold", default="collapse", choices=("collapse", "noise", "lr"),
                   help="threshold followed with --second-param (default collapse)")
    c.add_argument("--switch", action="store_true", help="also continue the branches born at branch points")
    c.add_argument("--max-step", type=_positive_float, default=None, help="largest arclength step (> 0)")
    c.add_argument("--out", default=None,
                   help="write the result: .csv (table) or anything else (JSON); the folder must exist")
    c.add_argument("--plot", default=None,
                   help="write a figure (any format matplotlib writes, e.g. branches.png); the folder must exist")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run_continue)


# ------------------------------------------------------------------------------------------------ helpers
def _system_and_params(args):
    from ..derive import derive_dynamics

    model = model_from_args(args)
    system = derive_dynamics(model)
    params = param_values_from_args(args, system.params)
    check_schedule(model, params)
    return system, params


def _digits(value, what="--digits") -> int:
    if value is None or value < 1 or value > 2000:
        raise InvalidInputError(f"{what} must be an integer in [1, 2000], got {value}")
    return int(value)


def _range(text: str, what: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        a, b = (float(v) for v in parts)
    except ValueError:
        raise InvalidInputError(f"{what} must be A:B with two numbers, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        raise InvalidInputError(f"{what} must be two different finite numbers, got {text!r}")
    return a, b


def _write(path: pathlib.Path, data: dict, csv_text: str | None) -> None:
    text = csv_text if path.suffix.lower() == ".csv" else json.dumps(jsonable(data), indent=1) + "\n"
    write_text_atomic(path, text)


def _continue_outputs(args):
    """--out and --plot checked before any work (one rule for every output option: see _common.OUTPUT_RULE)."""
    return (check_output_file(args.out, "--out"), check_output_file(args.plot, "--plot", figure=True))


# ------------------------------------------------------------------------------------------------ fixed-points
def run_fixed_points(args: argparse.Namespace) -> int:
    from ..numerics._fixed_points import find_fixed_points, polish_fixed_point

    check_count(args.starts, "--starts", args.force)
    if args.digits is not None:
        _digits(args.digits)
    system, params = _system_and_params(args)
    result = find_fixed_points(system, params, starts=args.starts, seed=args.seed,
                               include_unphysical=args.include_unphysical, closed_forms=not args.no_closed_forms)
    points = list(result.points)
    extra = [{} for _ in points]
    if args.digits is not None:
        digits = _digits(args.digits)
        import mpmath

        for i, pt in enumerate(points):
            polished = polish_fixed_point(pt, digits + 5, throw=False)
            extra[i]["residual_mp"] = mpmath.nstr(polished.residual_mp, 5) if polished.residual_mp is not None \
                else None
            extra[i]["state_mp"] = {s.name: mpmath.nstr(v, digits) for s, v in zip(system.state, polished.x_mp)} \
                if polished.x_mp is not None else None
    out = result.to_dict()
    for d, e in zip(out["fixed_points"], extra):
        d.update(e)
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(result.message + "\n")
        for pt in points:
            lead = pt.leading_eigenvalue
            named = pt.order_parameters()
            brief = ", ".join(f"{k}={np.round(np.asarray(v), 6).tolist()}" for k, v in named.items())
            zero = f" ({pt.n_marginal} zero mode{'s' if pt.n_marginal != 1 else ''})" if pt.n_marginal else ""
            sys.stdout.write(f"[orbit {pt.orbit}] {pt.kind:13s} {pt.stability or '-':8s} lead={lead.real:+.4e}"
                             f"{lead.imag:+.2e}i{zero}  {pt.image}\n    {brief}\n")
    return 0 if result.ok else 1


# ------------------------------------------------------------------------------------------------ threshold
_STATICS_ONLY = ("detection", "eg_peak", "optimal_beta")


def _run_statics_threshold(args: argparse.Namespace, model, digits: int) -> int:
    """Statics thresholds: collapse in beta (beta_c(alpha)), in the weight decay or in alpha; the detection threshold
    in alpha, the eg peak, the optimal beta. Exit 0 verified, 1 not found / not verified (best result printed)."""
    from ..statics import statics_param_names, statics_threshold, threshold_parameters

    if args.name not in ("collapse",) + _STATICS_ONLY:
        raise InvalidInputError(f"'{args.name}' is an online-SGD threshold: drop --alpha")
    valid = threshold_parameters(model, args.name)
    if args.parameter == "beta" and "beta" not in valid:  # the default --parameter: the threshold's own parameter
        args.parameter = valid[0]
    if args.parameter not in valid:
        raise InvalidInputError(f"the statics '{args.name}' threshold is located in {', '.join(valid)}; "
                                f"--parameter {args.parameter} is not one of them")
    if args.parameter == "alpha" and args.name == "collapse" and args.alpha is not None:
        raise InvalidInputError("--parameter alpha locates alpha: drop --alpha")
    if args.name == "collapse" and args.parameter != "alpha" and args.alpha is None:
        raise InvalidInputError(f"the statics collapse threshold in {args.parameter} needs --alpha")
    if args.alpha is not None:
        check_value("alpha", args.alpha, "--alpha")
    if digits > 200:
        raise InvalidInputError(f"--digits must be at most 200 for the statics thresholds, got {digits}")
    params = param_values_from_args(args, statics_param_names(model))
    method = threshold_method(args, True)
    result = statics_threshold(args.name, model, params, alpha=args.alpha, digits=digits, parameter=args.parameter,
                               method=method)
    out = {**result.as_dict(), "method": method}
    if args.json:
        print_json(out)
    else:
        shown = out["value"] if out["value"] is not None else "not located"
        sys.stdout.write(f"{result.name} threshold: {result.parameter} = {shown} ({result.digits} "
                         f"{'certified' if result.certified else 'agreeing'} digits, status {result.status})\n")
        if out.get("closed_form"):
            sys.stdout.write(f"closed form: {out['closed_form']}\n")
        sys.stdout.write(result.message + "\n")
    return 0 if result.status == "verified" else 1


def run_threshold(args: argparse.Namespace) -> int:
    from ..numerics._fixed_points import find_fixed_points
    from ..numerics._thresholds import locate_condition, threshold

    digits = _digits(args.digits)
    model = model_from_args(args)
    if args.alpha is not None or args.name in _STATICS_ONLY or args.parameter == "alpha":
        return _run_statics_threshold(args, model, digits)
    threshold_method(args, False)
    system, params = _system_and_params(args)
    if args.parameter not in params:
        raise InvalidInputError(f"--parameter {args.parameter!r} is not a parameter of the model "
                                f"({', '.join(params)})")
    if args.search is not None:
        for v in _range(args.search, "--search"):
            check_value(args.parameter, v, "--search")
    if args.name == "condition":
        if args.value is None or args.search is None:
            raise InvalidInputError("'condition' needs --value V and --search LO:HI (the branch is continued from "
                                    "the model's parameter value towards HI)")
        _, hi = _range(args.search, "--search")
        found = find_fixed_points(system, params, closed_forms=False)
        stable = [p for p in found.points if p.stable and p.image == "identity"]
        if not stable:
            raise InvalidInputError("no stable fixed point at the given parameters to start the branch from")
        result = locate_condition(system, stable[0], params, args.observable, args.value, args.parameter, hi,
                                  digits=digits)
    else:
        search = _range(args.search, "--search") if args.search else (1e-3, 1e6)
        if search[0] <= 0 or search[1] <= search[0]:
            raise InvalidInputError(f"--search must be LO:HI with 0 < LO < HI, got {args.search}")
        result = threshold(args.name, system, params, parameter=args.parameter, digits=digits, search=search,
                           closed_form=not args.no_closed_form)
    out = result.as_dict()
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(f"{result.name} threshold: {result.parameter} = {out['value']} ({result.digits} verified "
                         f"digits, status {result.status})\n")
        if out["closed_form"]:
            sys.stdout.write(f"closed form: {out['closed_form']}\n")
        sys.stdout.write(result.message + "\n")
    return 0 if result.status == "verified" else 1


# ------------------------------------------------------------------------------------------------ continue
def run_continue(args: argparse.Namespace) -> int:
    if args.second_param is None:
        check_value(args.cont_param, args.start, "--from")
        check_value(args.cont_param, args.stop, "--to")
    if not (math.isfinite(args.start) and math.isfinite(args.stop)) or args.start == args.stop:
        raise InvalidInputError("--from and --to must be two different finite numbers")
    check_count(args.points, "--points", args.force)
    args.out_path, args.plot_path = _continue_outputs(args)
    system, params = _system_and_params(args)
    name = args.cont_param
    if name not in params:
        raise InvalidInputError(f"--param {name!r} is not a parameter of the model ({', '.join(params)})")
    check_schedule(model_from_args(args), {**params, name: args.start})
    check_schedule(model_from_args(args), {**params, name: args.stop})
    if args.second_param is not None:
        return _run_curve(args, system, params, name)
    if args.range is not None:
        raise InvalidInputError("--range needs --second-param")
    from ..numerics._continuation import ContinuationError, continue_branch, switch_branch
    from ..numerics._fixed_points import find_fixed_points

    params = {**params, name: args.start}
    found = find_fixed_points(system, params, closed_forms=False)
    branches = []
    for pt in found.points:
        if pt.image != "identity" or not pt.physical:
            continue
        b = continue_branch(system, pt, params, name, args.stop, max_step=args.max_step, relative_step=0.1)
        branches.append(("fixed point", pt.kind, pt.orbit, b))
        if args.switch:
            for sp_ in b.special_points:
                if sp_.kind != "BP":
                    continue
                for side in (1, -1):  # the physical side (a pitchfork's other side is its symmetry image)
                    try:
                        nb = switch_branch(b, sp_, direction=side, max_step=args.max_step, relative_step=0.1)
                    except ContinuationError:
                        continue
                    if len(nb) > 1 and nb.physical[1]:
                        branches.append((sp_.describe(), nb.kinds[1], pt.orbit, nb))
                        break
    out_branches = []
    for origin, kind, orbit, b in branches:
        d = b.to_dict()
        d.update({"origin": origin, "start_kind": kind, "orbit": orbit})
        out_branches.append(d)
    failed = [b for *_, b in branches if b.status != "ok"]
    status = "ok" if branches and not failed else "failed"
    message = (f"{len(branches)} branch(es) continued in {name} from {args.start:g} to {args.stop:g}"
               + (f"; {len(failed)} did not reach the end: " + "; ".join(b.message for b in failed) if failed else ""))
    out = {"parameter": name, "from": args.start, "to": args.stop, "branches": out_branches,
           "special_points": [s.to_dict() for *_, b in branches for s in b.special_points],
           "status": status, "message": message}
    if args.out_path:
        _write(args.out_path, out, _branches_csv(branches, name))
    if args.plot_path:
        with atomic_output(args.plot_path) as tmp:
            _plot_branches(branches, name, tmp)
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(message + "\n")
        for origin, kind, orbit, b in branches:
            sys.stdout.write(f"- {kind} branch ({origin}): {len(b)} points, {b.message}\n")
            for s in b.special_points:
                sys.stdout.write(f"    {s.describe()}\n")
    return 0 if status == "ok" else 1


def _branches_csv(branches, name) -> str:
    lines = [f"branch,origin,{name},stable,physical,kind,eg,leading_re,leading_im"]
    for i, (origin, _, _, b) in enumerate(branches):
        eg = b.observables().get("eg", np.full(len(b), np.nan))
        for j in range(len(b)):
            lead = b.leading_eigenvalue[j]
            lines.append(f"{i},\"{origin}\",{b.p[j]!r},{b.stable[j]},{bool(b.physical[j])},{b.kinds[j]},"
                         f"{float(eg[j])!r},{float(lead.real)!r},{float(lead.imag)!r}")
    return "\n".join(lines) + "\n"


def _plot_branches(branches, name, path) -> None:
    """eg along every branch; one colour and one legend entry per kind of fixed point (with the number of branches
    of that kind), the legend below the axes so that it never covers a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(kind for _, kind, _, _ in branches))
    counts = {k: sum(1 for _, kind, _, _ in branches if kind == k) for k in kinds}
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    labelled = set()
    for origin, kind, _, b in branches:
        eg = b.observables().get("eg")
        if eg is None or len(b) < 2:
            continue
        stable = np.array([bool(s) for s in b.stable])
        color = f"C{kinds.index(kind) % 10}"
        for mask, style in ((stable, "-"), (~stable, "--")):
            y = np.where(mask & b.physical, eg, np.nan)
            label = None
            if kind not in labelled:
                label = f"{kind} ({counts[kind]} branch{'es' if counts[kind] > 1 else ''})"
                labelled.add(kind)
            ax.plot(b.p, y, style, color=color, lw=1.5, label=label)
        for s in b.special_points:
            if s.located:
                k = min(s.index, len(b) - 1)
                ax.plot([s.value], [eg[k]], "o", color="k", ms=4)
    ax.set_xlabel(name)
    ax.set_ylabel(r"$\varepsilon_g$")
    ax.set_title("branches: solid stable, dashed unstable, dots special points", fontsize=9)
    if labelled:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(3, len(labelled)),
                  frameon=False)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _run_curve(args, system, params, name) -> int:
    from ..numerics._thresholds import threshold_curve

    if args.range is None:
        raise InvalidInputError("--second-param needs --range A:B")
    if args.second_param not in params or args.second_param == name:
        raise InvalidInputError(f"--second-param {args.second_param!r} must be another parameter of the model "
                                f"({', '.join(params)})")
    if args.points < 2:
        raise InvalidInputError(f"--points must be >= 2, got {args.points}")
    a, b = _range(args.range, "--range")
    for v in (a, b):
        check_value(args.second_param, v, "--range")
    lo, hi = sorted((args.start, args.stop))
    if lo <= 0:
        raise InvalidInputError("with --second-param, --from/--to is the search range of the threshold: both > 0")
    for v in (lo, hi):
        check_value(name, v, "--from/--to")
    curve = threshold_curve(system, args.threshold, params, args.second_param, np.linspace(a, b, args.points),
                            parameter=name, search=(lo, hi))
    out = curve.to_dict()
    if args.out_path:
        _write(args.out_path, out, curve.to_csv())
    if args.plot_path:
        with atomic_output(args.plot_path) as tmp:
            curve.plot(tmp)
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(curve.message + "\n" + curve.to_csv())
    return 0 if curve.status == "ok" else 1
