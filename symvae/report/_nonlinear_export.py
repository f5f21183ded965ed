"""Export of the derived ODEs of VAEs with activations (issue 11) as Markdown, and their files under derivations/.

The linear exporter expands every right-hand side before grouping it by powers of the step size; expanded, the nested
Gaussian-integral expressions of a non-linear model grow by orders of magnitude. Here the terms are grouped by their
power of the step size as derived, without expansion. Everything is printed from the derived SymPy expressions.
"""
from __future__ import annotations

import json
import pathlib
from collections import defaultdict

import sympy as sp

from ..derive import DerivedSystem, derive_dynamics
from ..derive._nonlinear_dynamics import NonlinearSymbolTable
from ..derive._half_space import HalfRule1, HalfRule2, QuadrantRule
from ..derive._nonlinear_gaussian import GaussRule2, NoiseMean
from ..model import make_model

__all__ = ["NONLINEAR_SHIPPED", "nonlinear_markdown", "render_nonlinear", "nonlinear_derivation_files",
           "write_nonlinear_derivations"]

#: (file stem, encoder activation, decoder activation, M, M*) written to derivations/nonlinear/.
NONLINEAR_SHIPPED = (("erf_decoder", "linear", "erf", 1, 1), ("erf_encoder", "erf", "linear", 1, 1),
                     ("erf_both", "erf", "erf", 1, 1), ("erf_both", "erf", "erf", 2, 2),
                     ("relu_encoder_erf_decoder", "relu", "erf", 1, 1),
                     ("erf_encoder_relu_decoder", "erf", "relu", 1, 1), ("relu_both", "relu", "relu", 1, 1))


def _grouped(system: DerivedSystem, expr: sp.Expr) -> sp.Expr:
    steps = sorted({s for w in ("W", "W_tilde", "D", "sigma2") for s in system.model.training.step(w).free_symbols},
                   key=lambda s: s.name)
    if not steps:
        return expr
    groups: dict[tuple, list] = defaultdict(list)
    for term in sp.Add.make_args(expr):
        powers = term.as_powers_dict()
        key = tuple(powers.get(s, 0) for s in steps)
        groups[key].append(term / sp.Mul(*[s ** k for s, k in zip(steps, key)]))
    return sp.Add(*[sp.Mul(*[s ** k for s, k in zip(steps, key)], sp.Add(*terms), evaluate=False)
                    for key, terms in sorted(groups.items())], evaluate=False)


def _command(system: DerivedSystem) -> str:
    m = system.model
    return (f"symvae derive --variant {m.name} --M {m.M} --M-star {m.M_star} --encoder-activation "
            f"{m.vae.encoder_activation} --decoder-activation {m.vae.decoder_activation}")


def nonlinear_markdown(system: DerivedSystem) -> str:
    """The derived equations of a VAE with activations as Markdown with LaTeX display blocks."""
    m = system.model
    T = NonlinearSymbolTable(m)
    names = {**T.latex_names(), **{e: rf"\epsilon_{{{k + 1}}}" for k, e in enumerate(T.eps)}}
    latex = lambda e: sp.latex(e, symbol_names=names, long_frac_ratio=2)  # noqa: E731
    lines = [f"# Online-SGD ODEs — VAE with encoder activation `{m.vae.encoder_activation}`, decoder activation "
             f"`{m.vae.decoder_activation}`, M = {m.M}, M* = {m.M_star}", "",
             f"Written by `{_command(system)} --format markdown`; do not edit.", "",
             "Activation `erf` is g(x) = erf(x/√2); `ErfAct` below is g and `ErfActPrime` its derivative. The "
             "latent z = g_e(μ) + √D ε is sampled (ε ~ N(0, I) a Gaussian field independent of x), so the "
             "expectations are over the fields (ℓ, μ, s, ε); μ here is the pre-activation W̃x/√N.", "",
             *(["A term $\\mathbb{E}_{S}[G(u, v)]$ is the expectation over $(u, v) \\sim \\mathcal{N}(0, S)$ of a "
                "function without closed form, computed by the two-direction numerical rule (see the note).", ""]
               if any(e.has(GaussRule2) for e in system.rhs) else []),
             *(["Inside it, $\\mathbb{E}_{\\epsilon}[H(\\epsilon)]$ is the expectation over one latent's noise "
                "$\\epsilon \\sim \\mathcal{N}(0, 1)$ at the outer rule's (u, v), by a one-direction rule (see the "
                "note).", ""] if any(n.args[0].G.has(NoiseMean) for e in system.rhs for n in e.atoms(GaussRule2))
               else []),
             *(["A term $\\mathbb{E}_{S}[\\theta(u)\\, G(u, v)]$ is the expectation over one side $u > 0$ of a ReLU "
                "encoder's kink (the other side is the same with $u \\to -u$), computed by the half-space rule (see "
                "the note).", ""] if any(e.has(HalfRule1, HalfRule2) for e in system.rhs) else []),
             *(["A term $\\mathbb{E}_{S}[\\theta(u)\\,\\theta(v)\\, G(u, v)]$ is the expectation over the quadrant "
                "$u, v > 0$ of two ReLU encoder kinks, computed by the quadrant rule (see the note).", ""]
               if any(e.has(QuadrantRule) for e in system.rhs) else []),
             *[line for note in system.notes
               for line in (f"**{'Exact' if 'exactly' in note else 'Approximate'}:** {note}.", "")],
             "Parameters: " + ", ".join(f"${sp.latex(p, symbol_names=names)}$" for p in system.params)
             + ". State: " + ", ".join(f"`{s.name}`" for s in system.state) + ".", "",
             "Per-sample loss:", "", "$$", latex(T.loss_parts["loss"]), "$$", "", "## Equations", ""]
    for sym, rhs in system.equations().items():
        lhs = rf"\frac{{d{names.get(sym, sp.latex(sym))}}}{{dt}}"
        lines += ["$$", f"{lhs} = {latex(_grouped(system, rhs))}", "$$", ""]
    lines += ["## Observables", ""]
    for name, expr in system.observables.items():
        lines += [f"- `{name}`:", "", "$$", latex(expr), "$$", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_nonlinear(system: DerivedSystem, fmt: str) -> str:
    """``markdown`` (grouped, unexpanded), ``python`` (SymPy text) or ``json``; LaTeX is the markdown's."""
    if fmt == "markdown" or fmt == "latex":
        return nonlinear_markdown(system)
    equations = {s.name: sp.sstr(e) for s, e in system.equations().items()}
    if fmt == "json":
        m = system.model
        return json.dumps({"setting": "dynamics", "variant": m.name, "M": m.M, "M_star": m.M_star,
                           "encoder_activation": m.vae.encoder_activation,
                           "decoder_activation": m.vae.decoder_activation,
                           "state": [s.name for s in system.state], "params": [p.name for p in system.params],
                           "equations": equations,
                           "observables": {k: sp.sstr(v) for k, v in system.observables.items()},
                           "notes": list(system.notes)}, indent=1) + "\n"
    notes = [f"NOTES = {list(system.notes)!r}  # what is approximate"] if system.notes else []
    return _python_text(_command(system), equations, notes)


def _python_text(command: str, equations: dict, extra: list = ()) -> str:
    """``--format python``: the command line as a comment and the equations as SymPy text in a dict."""
    return "\n".join(["# " + command + " --format python", "EQUATIONS = {"]
                     + [f"    {k!r}: {v!r}," for k, v in equations.items()] + ["}", *extra]) + "\n"


def nonlinear_derivation_files() -> dict[str, str]:
    """Relative path -> content of the files of derivations/nonlinear/."""
    files: dict[str, str] = {}
    index = ["# Non-linear VAEs: derived online-SGD ODEs", "",
             "Written by `symvae derive --all --out derivations/`; do not edit.", "",
             "| encoder | decoder | M | M* | file |", "|---|---|---|---|---|"]
    for stem, enc, dec, M, Ms in NONLINEAR_SHIPPED:
        system = derive_dynamics(make_model("base", M=M, M_star=Ms, encoder_activation=enc, decoder_activation=dec))
        path = f"{stem}_M{M}_Mstar{Ms}.md"
        files[f"nonlinear/{path}"] = nonlinear_markdown(system)
        index.append(f"| `{enc}` | `{dec}` | {M} | {Ms} | [{path}]({path}) |")
    files["nonlinear/README.md"] = "\n".join(index) + "\n"
    return files


def write_nonlinear_derivations(out) -> list[pathlib.Path]:
    """Write derivations/nonlinear/ under ``out``; returns the files written."""
    written = []
    for rel, text in nonlinear_derivation_files().items():
        path = pathlib.Path(out) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def committee_markdown(system) -> str:
    """The derived ODEs of a soft committee machine (``symvae.derive._committee.CommitteeSystem``) as Markdown."""
    mach = system.machine
    latex = lambda e: sp.latex(e, long_frac_ratio=2)  # noqa: E731
    lines = [f"# Online-SGD ODEs — soft committee machine, K = {mach.K}, M = {mach.M_teacher}, "
             f"{'both layers' if mach.train_second_layer else 'first layer'} trained, activation "
             f"`{mach.activation}`", "",
             "Fields lambda_k = w_k.x/sqrt(N), nu_n = w*_n.x/sqrt(N), x ~ N(0, I); Q = W W^T/N, R = W W*^T/N, "
             "T = W* W*^T/N; step tau (first layer), tau_v/N (second layer). ErfAct(x) = erf(x/sqrt(2)).", "",
             "Per-sample loss:", "", "$$", latex(mach.loss), "$$", "", "## Equations", ""]
    for sym, rhs in zip(system.state, system.rhs):
        lines += ["$$", rf"\frac{{d{sp.latex(sym)}}}{{dt}} = {latex(rhs)}", "$$", ""]
    lines += ["## Generalisation error", "", "$$", latex(system.observables["eg"]), "$$", ""]
    return "\n".join(lines).rstrip() + "\n"


def _committee_command(mach) -> str:
    return (f"symvae derive --model committee --K {mach.K} --M-teacher {mach.M_teacher}"
            + (" --both-layers" if mach.train_second_layer else ""))


def render_committee(system, fmt: str) -> str:
    """A committee machine's derived ODEs: ``markdown`` (LaTeX display blocks; ``latex`` is the same), ``python``
    (SymPy text) or ``json`` (state, parameters, equations and the generalisation error as SymPy text)."""
    if fmt == "markdown" or fmt == "latex":
        return committee_markdown(system)
    mach = system.machine
    equations = {s.name: sp.sstr(e) for s, e in zip(system.state, system.rhs)}
    if fmt == "json":
        return json.dumps({"setting": "dynamics", "model": "committee", "K": mach.K, "M_teacher": mach.M_teacher,
                           "train_second_layer": mach.train_second_layer,
                           "teacher_second_layer": mach.teacher_second_layer, "activation": mach.activation,
                           "state": [s.name for s in system.state], "params": [p.name for p in system.params],
                           "equations": equations,
                           "observables": {k: sp.sstr(v) for k, v in system.observables.items()}}, indent=1) + "\n"
    return _python_text(_committee_command(mach), equations)
