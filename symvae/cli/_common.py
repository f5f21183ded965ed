"""Shared CLI pieces: model options, their validation, JSON output."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..model._variants import VARIANTS

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["add_model_options", "model_from_args", "param_values_from_args", "print_json", "parse_float_list",
           "jsonable", "check_value", "check_count", "check_work", "check_schedule", "check_schedule_program",
           "check_output_file",
           "check_output_folder", "atomic_output", "staged_folder"]


#: Every model parameter, continuation end point and search bound must lie in [-PARAM_MAX, PARAM_MAX]; those that
#: must be positive (eta, sigma2, b, D_k, alpha) in [POSITIVE_MIN, PARAM_MAX]. Beyond that the float64 numerics
#: overflow or lose all digits, so such values are rejected as input rather than reported as a numerical failure.
PARAM_MAX = 1e6
POSITIVE_MIN = 1e-6
#: Latents / spikes handled without --force (derivation time grows steeply with M and M*; 4 is the practical target).
M_MAX = 4
#: Counters of work (simulation seeds, Newton starts, curve points, ...) are at most this without --force.
COUNT_MAX = 10_000
#: Estimated scalar operations of a finite-N simulation (seeds x t-max x N^2 x (M + M* + 1)) without --force: about
#: half a minute on an idle core (9.6e10 took 170 s), a few minutes on a busy one.
SIMULATION_WORK_MAX = 2e10
#: Estimated memory of exact finite-N points (bytes) without --force.
MEMORY_MAX = 2 * 1024 ** 3

LIMITS_HELP = (f"Limits: parameters lie in [0, {PARAM_MAX:g}] (strictly positive ones such as eta, alpha, sigma2, b, "
               f"D_k in [{POSITIVE_MIN:g}, {PARAM_MAX:g}]); M and M* <= {M_MAX}, counts (seeds, starts, points) "
               f"<= {COUNT_MAX}, finite-N simulation work <= {SIMULATION_WORK_MAX:.0e} operations and finite-N "
               f"memory <= {MEMORY_MAX // 1024 ** 3} GiB unless --force is given.")

#: Names --set takes per variant, beyond the main options (for --help; checked against the derivation by the tests).
VARIANT_SET_NAMES = {
    "base": (), "tied": (), "fixed_D": ("D_1..D_M",), "learned_sigma2": (), "fixed_sigma2": ("sigma2",),
    "per_spike_rho": ("rho_1..rho_M*",), "step_sizes": ("tau_W", "tau_W_tilde", "tau_D"), "minibatch": ("b",),
    "lam_W_only": (), "lam_W_tilde_only": (), "annealing": ("gamma",),
}


def set_names_help() -> str:
    """Per variant, the parameter names --set takes."""
    parts = [f"{v}: {', '.join(n) if n else '-'}" for v, n in VARIANT_SET_NAMES.items() if v in VARIANTS]
    return ("every variant takes rho, eta, beta, lam (and tau for the dynamics) through their options or --set; "
            "further names per variant: " + "; ".join(parts))


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _finite_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _count(text: str, minimum: int) -> int:
    """An integer written as 1000 or 1e3 (an integral value), >= minimum."""
    try:
        value = int(text)
    except ValueError:
        value = _finite_float(text)
        if not float(value).is_integer() or abs(value) > 2 ** 62:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        value = int(value)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _count(text, 1)


def _nonnegative_int(text: str) -> int:
    return _count(text, 0)


def _integer(text: str) -> int:
    return _count(text, -(2 ** 62))


def check_value(name: str, value: float, flag: str | None = None) -> float:
    """``value`` of the model parameter ``name`` (given through ``flag``), checked against the parameter rules.

    Raises:
        InvalidInputError: not finite, outside [-PARAM_MAX, PARAM_MAX], negative where a parameter cannot be, or
            below POSITIVE_MIN where it must be positive.
    """
    flag = flag or name
    if not math.isfinite(value):
        raise InvalidInputError(f"{flag} must be finite, got {value}")
    if name in ("eta", "sigma2", "b", "alpha") or name.startswith("D_"):
        if not POSITIVE_MIN <= value <= PARAM_MAX:
            raise InvalidInputError(f"{flag} must lie in [{POSITIVE_MIN:g}, {PARAM_MAX:g}], got {value:g}")
    elif name in ("rho", "beta", "gamma") or name.startswith(("rho_", "lam", "tau")):
        if not 0 <= value <= PARAM_MAX:
            raise InvalidInputError(f"{flag} must lie in [0, {PARAM_MAX:g}], got {value:g}")
    elif abs(value) > PARAM_MAX:
        raise InvalidInputError(f"{flag} must lie in [-{PARAM_MAX:g}, {PARAM_MAX:g}], got {value:g}")
    return float(value)


def check_count(value: int, flag: str, force: bool, limit: int = COUNT_MAX) -> int:
    """A work counter within ``limit`` unless ``force``."""
    if value > limit and not force:
        raise InvalidInputError(f"{flag} {value} exceeds the limit {limit} (bounded work); pass --force to run "
                                f"anyway")
    return value


def check_work(what: str, estimate: float, limit: float, unit: str, force: bool) -> None:
    """Refuse work estimated beyond ``limit`` unless ``force``."""
    if estimate > limit and not force:
        raise InvalidInputError(f"{what} needs about {estimate:.2g} {unit}, above the limit {limit:.2g} "
                                f"{unit}; pass --force to run anyway")


def add_force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="run even if the estimated work exceeds the limits (see the limits below)")


def add_model_options(parser: argparse.ArgumentParser, *, dynamics: bool = True) -> None:
    """--rho --eta --beta --lam [--tau] --M --M-star --variant --beta-schedule --set NAME=VALUE --force."""
    g = parser.add_argument_group("model")
    g.add_argument("--rho", type=_finite_float, default=1.0, help="signal strength (default 1)")
    g.add_argument("--eta", type=_finite_float, default=1.0, help="noise variance (default 1)")
    g.add_argument("--beta", type=_finite_float, default=1.0, help="KL weight (default 1)")
    g.add_argument("--lam", type=_finite_float, default=0.0, help="weight decay (default 0)")
    if dynamics:
        g.add_argument("--tau", type=_finite_float, default=0.01, help="SGD step size (default 0.01)")
        g.add_argument("--beta-schedule", default=None, metavar="EXPR",
                       help="beta(t) as an expression in t, e.g. '1.5*tanh(0.01*t)'; must lie in [0, 1e6] for "
                            "t >= 0")
    g.add_argument("--M", type=_positive_int, default=1, help=f"number of latents (default 1; <= {M_MAX} without "
                                                              f"--force)")
    g.add_argument("--M-star", type=_positive_int, default=1, help=f"number of spikes (default 1; <= {M_MAX} "
                                                                   f"without --force)")
    g.add_argument("--variant", default="base", help=f"model variant (default base): {', '.join(VARIANTS)}")
    for part in ("encoder", "decoder"):
        g.add_argument(f"--{part}-activation", default="linear", metavar="{linear,erf,relu,EXPR}",
                       help=f"{part} activation: linear (default), erf (erf(x/sqrt(2))), relu or an expression in x")
    g.add_argument("--set", dest="param", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a parameter of the variant; " + set_names_help())
    if not any("--force" in a.option_strings for a in parser._actions):
        add_force_option(parser)
    if parser.epilog is None:
        parser.epilog = LIMITS_HELP


def model_from_args(args: argparse.Namespace) -> Model:
    force = getattr(args, "force", False)
    for flag, value in (("--M", args.M), ("--M-star", args.M_star)):
        if value > M_MAX and not force:
            raise InvalidInputError(f"{flag} {value} exceeds the limit {M_MAX} (derivation time grows steeply "
                                    f"with M and M*); pass --force to run anyway")
    activations = {f"{part}_activation": getattr(args, f"{part}_activation", "linear")
                   for part in ("encoder", "decoder")}
    from ..model import make_model

    return make_model(args.variant, M=args.M, M_star=args.M_star,
                      beta_schedule=getattr(args, "beta_schedule", None),
                      **{k: v for k, v in activations.items() if v != "linear"})


def check_schedule(model: Model, values: dict[str, float], t_max: float | None = None) -> None:
    """The model's beta(t) must be real and in [0, PARAM_MAX] on [0, t_max] ([0, 1e4] when no time range is given),
    checked on a grid of times (0, a linear and a geometric grid).

    Raises:
        InvalidInputError: a point where it is not, named.
    """
    from ..codegen._schedule import compile_program
    from ..model import t as t_symbol

    expr = model.vae.beta_expr
    free = sorted(expr.free_symbols - {t_symbol}, key=lambda s: s.name)
    if any(s.name not in values for s in free):
        return  # parameters the caller did not supply are reported by param_values_from_args
    # the program the integrator and the simulator run (symvae.codegen._schedule), on the grid of times
    program = compile_program(1, exprs=[(0, expr)], param_index={s.name: k for k, s in enumerate(free)},
                              labels=("it",))
    check_schedule_program(program, [s.name for s in free], t_symbol in expr.free_symbols, str(expr), values, t_max)


def check_schedule_program(program, free: list[str], has_t: bool, expr: str, values: dict[str, float],
                           t_max: float | None) -> None:
    """The check of ``check_schedule`` on a compiled schedule ``program`` of the parameters ``free`` (also run by the
    warm path on the program it stored): the same grid of times, the same messages."""
    from ..codegen._schedule import ScheduleError

    if has_t:
        t_hi = 1e4 if t_max is None else float(t_max)
        times = np.sort(np.concatenate([[0.0], np.linspace(0, t_hi, 201), np.geomspace(1e-9, t_hi, 201)]))
        times = times[np.concatenate([[True], np.diff(times) != 0])]  # np.unique's result (without numpy.ma)
    else:
        times = np.zeros(1)
    try:
        vals = np.broadcast_to(program.evaluate(times, np.array([float(values[n]) for n in free]))[0], times.shape)
    except ScheduleError as exc:
        raise InvalidInputError(f"beta(t) = {expr} must be real and in [0, {PARAM_MAX:g}] for t >= 0: {exc}") from None
    bad = (vals < 0) | (vals > PARAM_MAX)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise InvalidInputError(f"beta(t) = {expr} must be real and in [0, {PARAM_MAX:g}] for t >= 0; at "
                                f"t = {times[k]:g} it is {vals[k]:g}")


def param_values_from_args(args: argparse.Namespace, needed) -> dict[str, float]:
    """Parameter values for the symbols ``needed``, from --rho etc. and --set NAME=VALUE; validated.

    Every value, whichever option gave it, goes through ``check_value``; a --set name that is not a parameter of
    the model is an error listing the model's parameters.
    """
    names = [getattr(s, "name", s) for s in needed]
    values: dict[str, float] = {"rho": args.rho, "eta": args.eta, "beta": args.beta, "lam": args.lam}
    flags = {name: f"--{name}" for name in values}
    if hasattr(args, "tau"):
        values["tau"] = args.tau
        flags["tau"] = "--tau"
    for item in args.param:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"--set expects NAME=VALUE, got {item!r}")
        if name not in names:
            variant = getattr(args, "variant", "base")
            raise InvalidInputError(f"--set {name}: not a parameter of variant {variant!r} here; its parameters: "
                                    f"{', '.join(names) or 'none'}")
        try:
            value = float(text)
        except ValueError:
            raise InvalidInputError(f"--set {name}: not a number: {text!r}") from None
        values[name] = value
        flags[name] = f"--set {name}"
    # defaults for variant parameters that mirror a main option
    for name in names:
        if name.startswith("rho_") and name not in values:
            values[name], flags[name] = values["rho"], "--rho"
        if name.startswith("tau_") and name not in values and "tau" in values:
            values[name], flags[name] = values["tau"], "--tau"
        if name == "sigma2" and name not in values:
            values[name] = 1.0
        if name == "b" and name not in values:
            values[name] = 1.0
    missing = [n for n in names if n not in values]
    if missing:
        raise InvalidInputError(f"missing value for parameter(s) {', '.join(missing)}: pass --set NAME=VALUE")
    for n in set(names) | {"rho", "eta", "beta", "lam"} | ({"tau"} if "tau" in values else set()):
        check_value(n, values[n], flags.get(n))
    if "b" in names and values["b"] < 1:
        raise InvalidInputError(f"{flags.get('b', 'b')} (batch size) must be >= 1, got {values['b']:g}")
    return {n: values[n] for n in names}


#: help text of every --init option
INIT_HELP = ('initial order parameters: a JSON object, e.g. \'{"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1]], '
             '"Q_tilde": [[1]], "R": [[0]], "D": [1]}\', or random:N[:SEED], the overlaps of i.i.d. N(0,1) weights in '
             'dimension N (the papers\' initialisation; seed 0 by default). Default: Q = Q~ = I, R = 0, D = 1, '
             'm = m~ = 0.01 for M = M* = 1; for several latents a full-rank m of scale 0.2, above finite-N noise')


def initial_state_arg(text: str | None, table) -> dict | None:
    """The initial state an --init option names: None (the caller's default), ``random:N[:SEED]`` (drawn by
    ``symvae.simulate.random_initial_state``) or a JSON object of order parameters (not validated here)."""
    import re

    from ..model import parse_init_json

    if text is None:
        return None
    if text.strip().startswith("random"):
        match = re.fullmatch(r"\s*random:(\d{1,14})(?::(\d{1,19}))?\s*", text)
        if match is None:
            raise InvalidInputError(f"--init: expected random:N or random:N:SEED with integers N and SEED, got "
                                    f"{text[:40]!r}")
        from ..simulate import random_initial_state

        return random_initial_state(table, int(match.group(1)), int(match.group(2) or 0))
    return parse_init_json(text)


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


# ------------------------------------------------------------------------------------------------ output paths
#: The rule for every output option: the folder an output file goes into must already exist and be writable (symvae
#: creates no folders for output files); an output folder (demo --out, derive --all --out) is created if missing,
#: but its parent must exist. All checks run before any computation; files are written to a temporary name in the
#: same folder and renamed into place, so an interrupted run leaves no partial file.
OUTPUT_RULE = ("Output files go into an existing, writable folder (none is created); they are checked before any "
               "work starts and written atomically.")


def figure_formats() -> tuple[str, ...]:
    """File extensions matplotlib can write."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def _writable_folder(folder: pathlib.Path, option: str) -> None:
    if not folder.exists():
        raise InvalidInputError(f"{option}: folder {str(folder)!r} does not exist (create it first)")
    if not folder.is_dir():
        raise InvalidInputError(f"{option}: {str(folder)!r} is not a folder")
    try:  # the honest test of writability (os.access says yes to root on read-only file systems)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".symvae-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidInputError(f"{option}: cannot write into {str(folder)!r} ({exc.strerror or exc})") from None


def check_output_file(path: str | None, option: str, *, figure: bool = False,
                      suffixes: tuple[str, ...] | None = None) -> pathlib.Path | None:
    """The output file ``path`` of ``option``, checked before any work: not a folder, in an existing writable
    folder, with a figure format matplotlib writes (``figure``) or one of ``suffixes``.

    Raises:
        InvalidInputError: one line naming the option and the problem.
    """
    if path is None:
        return None
    if not str(path).strip():
        raise InvalidInputError(f"{option}: empty file name")
    p = pathlib.Path(path).expanduser()
    if p.is_dir() or str(path).endswith(os.sep):
        raise InvalidInputError(f"{option}: {str(path)!r} is a folder; give a file name")
    if figure:
        formats = figure_formats()
        ext = p.suffix.lower().lstrip(".")
        if ext not in formats:
            raise InvalidInputError(f"{option}: unknown figure format {p.suffix or '(none)'!r}; use one of "
                                    f"{', '.join('.' + f for f in formats)}")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise InvalidInputError(f"{option}: must end in {' or '.join(suffixes)}, got {str(path)!r}")
    if p.exists() and not os.access(p, os.W_OK):
        raise InvalidInputError(f"{option}: {str(path)!r} is not writable")
    _writable_folder(p.parent, option)
    return p


def check_output_folder(path: str, option: str) -> pathlib.Path:
    """An output folder: an existing writable folder, or a new one whose parent exists and is writable."""
    if not str(path).strip():
        raise InvalidInputError(f"{option}: empty folder name")
    p = pathlib.Path(path).expanduser()
    if p.exists():
        _writable_folder(p, option)
    else:
        _writable_folder(p.parent, option)
    return p


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: pathlib.Path):
    """Yield a temporary path beside ``path`` (same suffix, so writers infer the format); on success it replaces
    ``path``, on any exception (an interrupt included) it is removed."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        # mkstemp makes the file private (0600): give it the mode an ordinary new file would have
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        from ._interrupt import check_interrupt

        check_interrupt()  # an interrupted run puts no file in place, even if a library swallowed the interrupt
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: pathlib.Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staged_folder(path: pathlib.Path):
    """Yield a temporary folder beside ``path``; on success its files are moved into ``path`` (created if missing,
    existing files replaced one by one with ``os.replace``); on any exception it is removed and ``path`` untouched."""
    path = pathlib.Path(path)
    stage = pathlib.Path(tempfile.mkdtemp(dir=path.parent if not path.exists() else path,
                                          prefix=f".{path.name or 'out'}.part-"))
    try:
        yield stage
        from ._interrupt import check_interrupt

        check_interrupt()
        created = not path.exists()
        path.mkdir(exist_ok=True)
        try:
            for src in sorted(p for p in stage.rglob("*") if p.is_file()):
                dest = path / src.relative_to(stage)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
        except BaseException:
            if created:
                shutil.rmtree(path, ignore_errors=True)
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
