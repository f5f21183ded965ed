"""``symvae derive``: print the derived equations, or regenerate ``derivations/``."""
from __future__ import annotations

import argparse
import sys

from ..errors import InvalidInputError
from ..model._variants import VARIANTS
from ..report import FORMATS
from ._common import M_MAX, _positive_int, add_force_option, check_output_folder, staged_folder


def register(sub) -> None:
    p = sub.add_parser("derive", help="derive and print the online-SGD ODEs of a model variant",
                       description="Derive the N -> infinity online-SGD ODEs of a model variant from its loss.")
    p.add_argument("--variant", default="base", help=f"model variant: {', '.join(VARIANTS)}")
    p.add_argument("--M", type=_positive_int, default=1,
                   help=f"number of latents (default 1; <= {M_MAX} without --force)")
    p.add_argument("--M-star", type=_positive_int, default=1,
                   help=f"number of spikes (default 1; <= {M_MAX} without --force)")
    p.add_argument("--beta-schedule", default=None, metavar="EXPR", help="beta(t) as an expression in t")
    for part in ("encoder", "decoder"):
        p.add_argument(f"--{part}-activation", default="linear", metavar="{linear,erf,relu,EXPR}",
                       help=f"{part} activation: linear (default), erf (erf(x/sqrt(2))), relu or an expression in x")
    p.add_argument("--model", choices=("vae", "committee"), default="vae",
                   help="vae (default) or committee: the soft committee machine, teacher-student (--K, --M-teacher)")
    p.add_argument("--K", type=_positive_int, default=2,
                   help=f"committee: student hidden units (default 2; <= {M_MAX} without --force)")
    p.add_argument("--M-teacher", type=_positive_int, default=2,
                   help=f"committee: teacher hidden units (default 2; <= {M_MAX} without --force)")
    p.add_argument("--both-layers", action="store_true", help="committee: train the second layer too")
    p.add_argument("--plateau", type=float, default=None, metavar="TAU",
                   help="committee, K = M, first layer: print the symmetric plateau at step TAU and its escape rate "
                        "instead of the equations")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default markdown)")
    p.add_argument("--all", action="store_true", help="regenerate the derivations folder (needs --out)")
    p.add_argument("--out", default=None,
                   help="folder for --all (created if missing, its parent must exist; files are replaced only "
                        "once all are written)")
    add_force_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..derive import derive_dynamics
    from ..model import make_model
    from ..report import render

    if args.all:
        if not args.out:
            raise InvalidInputError("--all needs --out FOLDER")
        out = check_output_folder(args.out, "--out")
        with staged_folder(out) as stage:
            written = _write_all(stage)
        sys.stderr.write(f"wrote {len(written)} files under {args.out}\n")
        return 0
    if args.model == "committee":  # issue 11: the Gaussian-expectation engine on a non-VAE model
        from ..derive._committee import derive_committee
        from ..model._committee import CommitteeMachine
        from ..report._nonlinear_export import render_committee
        for flag, value in (("--K", args.K), ("--M-teacher", args.M_teacher)):
            if value > M_MAX and not args.force:
                raise InvalidInputError(f"{flag} {value} exceeds the limit {M_MAX}; pass --force to run anyway")
        machine = CommitteeMachine(K=args.K, M_teacher=args.M_teacher, train_second_layer=args.both_layers)
        if args.plateau is not None:
            sys.stdout.write(_plateau_text(machine, args.plateau, args.format))
            return 0
        sys.stdout.write(render_committee(derive_committee(machine), args.format))
        return 0
    if args.plateau is not None:
        raise InvalidInputError("--plateau needs --model committee")
    if args.M < 1 or args.M_star < 1:
        raise InvalidInputError(f"--M and --M-star must be >= 1, got {args.M} and {args.M_star}")
    for flag, value in (("--M", args.M), ("--M-star", args.M_star)):
        if value > M_MAX and not args.force:
            raise InvalidInputError(f"{flag} {value} exceeds the limit {M_MAX} (derivation time grows steeply with "
                                    f"M and M*); pass --force to run anyway")
    activations = {f"{part}_activation": getattr(args, f"{part}_activation") for part in ("encoder", "decoder")}
    model = make_model(args.variant, M=args.M, M_star=args.M_star, beta_schedule=args.beta_schedule,
                       **{k: v for k, v in activations.items() if v != "linear"})
    if model.vae.encoder_activation != "linear" or model.vae.decoder_activation != "linear":
        from ..report._nonlinear_export import render_nonlinear  # activations: issue 11
        sys.stdout.write(render_nonlinear(derive_dynamics(model), args.format))
        return 0
    sys.stdout.write(render(derive_dynamics(model), args.format))
    return 0


def _plateau_text(machine, tau: float, fmt: str) -> str:
    """The symmetric plateau of a committee machine (``symvae.analysis._plateau``) as Markdown or JSON."""
    import json
    import math

    from ..analysis._plateau import small_tau_escape_rate, symmetric_plateau
    if fmt not in ("markdown", "json"):
        raise InvalidInputError(f"--plateau prints markdown or json, not {fmt}")
    if not (math.isfinite(tau) and tau > 0):
        raise InvalidInputError(f"--plateau must be a finite step > 0, got {tau!r}")
    p = symmetric_plateau(machine, tau)
    K = machine.K
    if fmt == "json":
        return json.dumps({"model": "committee", "K": K, "M_teacher": machine.M_teacher, "tau": tau, "Q_ii": p.q,
                           "Q_ik": p.c, "R_in": p.r, "eg": p.eg, "escape_rate": p.escape_rate,
                           "unstable_directions": p.unstable,
                           "plateau_length_per_decade": math.log(10) / p.escape_rate,
                           "small_tau_escape_rate_over_tau": small_tau_escape_rate(K)}, indent=1) + "\n"
    return (f"# Symmetric plateau — soft committee machine, K = M = {K}, T = I, tau = {tau:g}\n\n"
            f"| quantity | value |\n|---|---|\n"
            f"| Q_ii | {p.q:.12g} |\n| Q_ik (i != k) | {p.c:.12g} |\n| R_in | {p.r:.12g} |\n"
            f"| eg | {p.eg:.12g} |\n| escape rate lambda | {p.escape_rate:.12g} |\n"
            f"| unstable directions | {p.unstable} |\n"
            f"| plateau length per decade of initial asymmetry, ln(10)/lambda | {math.log(10) / p.escape_rate:.6g} |\n"
            f"| small-tau lambda/tau, (2/pi) K/(sqrt(2K-1)(2K+1)^(3/2)) | {small_tau_escape_rate(K):.12g} |\n")


def _write_all(out) -> list:
    """Every file of the derivations folder, written under ``out``."""
    from ..report import write_derivations
    from ..numerics import write_threshold_derivations
    from ..report._nonlinear_export import write_nonlinear_derivations
    from ..statics import write_statics_derivations

    written = list(write_derivations(out))
    written += list(write_threshold_derivations(out))
    written += list(write_statics_derivations(out))
    written += list(write_nonlinear_derivations(out))
    return written
