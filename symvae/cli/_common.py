"""Shared CLI pieces: model options, their validation, JSON output."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..model import VARIANTS, Model, make_model

__all__ = ["add_model_options", "model_from_args", "param_values_from_args", "print_json", "parse_float_list",
           "jsonable"]


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_model_options(parser: argparse.ArgumentParser, *, dynamics: bool = True) -> None:
    """--rho --eta --beta --lam [--tau] --M --M-star --variant --beta-schedule --set NAME=VALUE."""
    g = parser.add_argument_group("model")
    g.add_argument("--rho", type=_finite_float, default=1.0, help="signal strength (default 1)")
    g.add_argument("--eta", type=_finite_float, default=1.0, help="noise variance (default 1)")
    g.add_argument("--beta", type=_finite_float, default=1.0, help="KL weight (default 1)")
    g.add_argument("--lam", type=_finite_float, default=0.0, help="weight decay (default 0)")
    if dynamics:
        g.add_argument("--tau", type=_finite_float, default=0.01, help="SGD step size (default 0.01)")
        g.add_argument("--beta-schedule", default=None, metavar="EXPR",
                       help="beta(t) as an expression in t, e.g. '1.5*tanh(0.01*t)'")
    g.add_argument("--M", type=_positive_int, default=1, help="number of latents")
    g.add_argument("--M-star", type=_positive_int, default=1, help="number of spikes")
    g.add_argument("--variant", default="base", help=f"model variant: {', '.join(VARIANTS)}")
    for part in ("encoder", "decoder"):
        g.add_argument(f"--{part}-activation", default="linear", metavar="{linear,erf,relu,EXPR}",
                       help=f"{part} activation: linear (default), erf (erf(x/sqrt(2))), relu or an expression in x")
    g.add_argument("--set", dest="param", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a further parameter of the variant (e.g. gamma=0.01, b=4, tau_W=0.02)")


def model_from_args(args: argparse.Namespace) -> Model:
    activations = {f"{part}_activation": getattr(args, f"{part}_activation", "linear")
                   for part in ("encoder", "decoder")}
    return make_model(args.variant, M=args.M, M_star=args.M_star,
                      beta_schedule=getattr(args, "beta_schedule", None),
                      **{k: v for k, v in activations.items() if v != "linear"})


def param_values_from_args(args: argparse.Namespace, needed) -> dict[str, float]:
    """Parameter values for the symbols ``needed``, from --rho etc. and --set NAME=VALUE; validated."""
    values: dict[str, float] = {"rho": args.rho, "eta": args.eta, "beta": args.beta, "lam": args.lam}
    if hasattr(args, "tau"):
        values["tau"] = args.tau
    for name in ("rho", "eta", "beta", "lam", "tau"):
        if name in values and values[name] < 0:
            raise InvalidInputError(f"--{name} must be >= 0, got {values[name]}")
    if values["eta"] <= 0:
        raise InvalidInputError(f"--eta must be > 0, got {values['eta']}")
    for item in args.param:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            value = float(text)
        except ValueError:
            raise InvalidInputError(f"--set {name}: not a number: {text!r}") from None
        if not math.isfinite(value):
            raise InvalidInputError(f"--set {name}: must be finite, got {text!r}")
        values[name.strip()] = value
    names = [getattr(s, "name", s) for s in needed]
    # defaults for variant parameters that mirror a main option
    for name in names:
        if name.startswith("rho_") and name not in values:
            values[name] = values["rho"]
        if name.startswith("tau_") and name not in values and "tau" in values:
            values[name] = values["tau"]
        if name == "sigma2" and name not in values:
            values[name] = 1.0
        if name == "b" and name not in values:
            values[name] = 1.0
    missing = [n for n in names if n not in values]
    if missing:
        raise InvalidInputError(f"missing value for parameter(s) {', '.join(missing)}: pass --set NAME=VALUE")
    for n in names:
        if (n.startswith(("rho_", "tau_")) or n in ("sigma2", "b")) and values[n] < 0:
            raise InvalidInputError(f"parameter {n} must be >= 0, got {values[n]}")
        if n in ("sigma2", "b") and values[n] <= 0:
            raise InvalidInputError(f"parameter {n} must be > 0, got {values[n]}")
        if n.startswith("D_") and values[n] <= 0:
            raise InvalidInputError(f"parameter {n} must be > 0, got {values[n]}")
    return {n: values[n] for n in names}


def parse_float_list(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"{what} must be a comma-separated list of numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(f"{what} must be a non-empty list of finite numbers, got {text!r}")
    return values


def jsonable(obj: Any) -> Any:
    """numpy arrays / scalars -> lists / floats, recursively; non-finite floats -> None."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(obj)) + "\n")
