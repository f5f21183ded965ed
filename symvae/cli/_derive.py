"""``symvae derive``: print the derived equations, or regenerate ``derivations/``."""
from __future__ import annotations

import argparse
import sys

from ..derive import derive_dynamics
from ..errors import InvalidInputError
from ..model import VARIANTS, make_model
from ..report import FORMATS, render, write_derivations


def register(sub) -> None:
    p = sub.add_parser("derive", help="derive and print the online-SGD ODEs of a model variant",
                       description="Derive the N -> infinity online-SGD ODEs of a model variant from its loss.")
    p.add_argument("--variant", default="base", help=f"model variant: {', '.join(VARIANTS)}")
    p.add_argument("--M", type=int, default=1, help="number of latents")
    p.add_argument("--M-star", type=int, default=1, help="number of spikes")
    p.add_argument("--beta-schedule", default=None, metavar="EXPR", help="beta(t) as an expression in t")
    for part in ("encoder", "decoder"):
        p.add_argument(f"--{part}-activation", default="linear", metavar="{linear,erf,relu,EXPR}",
                       help=f"{part} activation: linear (default), erf (erf(x/sqrt(2))), relu or an expression in x")
    p.add_argument("--model", choices=("vae", "committee"), default="vae",
                   help="vae (default) or committee: the soft committee machine, teacher-student (--K, --M-teacher)")
    p.add_argument("--K", type=int, default=2, help="committee: student hidden units (default 2)")
    p.add_argument("--M-teacher", type=int, default=2, help="committee: teacher hidden units (default 2)")
    p.add_argument("--both-layers", action="store_true", help="committee: train the second layer too")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default markdown)")
    p.add_argument("--all", action="store_true", help="regenerate the derivations folder (needs --out)")
    p.add_argument("--out", default=None, help="folder for --all")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.all:
        if not args.out:
            raise InvalidInputError("--all needs --out FOLDER")
        written = write_derivations(args.out)
        try:  # thresholds and statics add their own files when those stages are present
            from ..numerics import write_threshold_derivations
        except ImportError:
            write_threshold_derivations = None
        if write_threshold_derivations is not None:
            written += list(write_threshold_derivations(args.out))
        try:
            from ..statics import write_statics_derivations
        except ImportError:
            write_statics_derivations = None
        if write_statics_derivations is not None:
            written += list(write_statics_derivations(args.out))
        from ..report._nonlinear_export import write_nonlinear_derivations  # activations: issue 11
        written += write_nonlinear_derivations(args.out)
        sys.stderr.write(f"wrote {len(written)} files under {args.out}\n")
        return 0
    if args.model == "committee":  # issue 11: the Gaussian-expectation engine on a non-VAE model
        from ..derive._committee import derive_committee
        from ..model._committee import CommitteeMachine
        from ..report._nonlinear_export import committee_markdown
        if args.format != "markdown":
            raise InvalidInputError("--model committee prints markdown only")
        machine = CommitteeMachine(K=args.K, M_teacher=args.M_teacher, train_second_layer=args.both_layers)
        sys.stdout.write(committee_markdown(derive_committee(machine)))
        return 0
    if args.M < 1 or args.M_star < 1:
        raise InvalidInputError(f"--M and --M-star must be >= 1, got {args.M} and {args.M_star}")
    activations = {f"{part}_activation": getattr(args, f"{part}_activation") for part in ("encoder", "decoder")}
    model = make_model(args.variant, M=args.M, M_star=args.M_star, beta_schedule=args.beta_schedule,
                       **{k: v for k, v in activations.items() if v != "linear"})
    if model.vae.encoder_activation != "linear" or model.vae.decoder_activation != "linear":
        from ..report._nonlinear_export import render_nonlinear  # activations: issue 11
        sys.stdout.write(render_nonlinear(derive_dynamics(model), args.format))
        return 0
    sys.stdout.write(render(derive_dynamics(model), args.format))
    return 0
