"""Export derived systems as Markdown (with LaTeX), LaTeX, Python or JSON, and regenerate ``derivations/``.

Everything here is printed from the derived SymPy expressions; nothing is typed in.
"""
from __future__ import annotations

import json
import pathlib
from typing import Iterable

import sympy as sp

from ..derive import DerivedSystem, derive_dynamics
from ..model import VARIANTS, make_model
from . import FORMATS

__all__ = ["to_markdown", "to_latex", "to_python", "to_json", "render", "write_derivations", "derivation_files",
           "FORMATS"]

#: (variant, M, M*) combinations written to derivations/dynamics/.
SHIPPED = tuple((v, 1, 1) for v in VARIANTS) + (("base", 2, 1), ("base", 1, 2), ("base", 2, 2), ("tied", 2, 1))


def _step_symbols(system: DerivedSystem) -> list[sp.Symbol]:
    steps = [system.model.training.step(w) for w in ("W", "W_tilde", "D", "sigma2")]
    return sorted({s for e in steps for s in e.free_symbols}, key=lambda s: s.name)


def _readable(system: DerivedSystem, expr: sp.Expr) -> sp.Expr:
    """Group a derived right-hand side by powers of the step sizes (tau [...] + tau^2 [...])."""
    steps = _step_symbols(system)
    return sp.collect(sp.expand(expr), steps) if steps else expr


def _latex_names(system: DerivedSystem) -> dict[sp.Symbol, str]:
    """LaTeX names in which every order-parameter symbol is spelled by its own name (a tied model's m_11 as m_{11})."""
    return system.table.latex_names(own_names=True)


def _latex(system: DerivedSystem, expr: sp.Expr) -> str:
    return sp.latex(expr, symbol_names=_latex_names(system), long_frac_ratio=2)


def _lhs(system: DerivedSystem, sym: sp.Symbol) -> str:
    name = _latex_names(system).get(sym, sp.latex(sym))
    return rf"\frac{{d{name}}}{{dt}}"


def _command(system: DerivedSystem, fmt: str) -> str:
    m = system.model
    return f"symvae derive --variant {m.name} --M {m.M} --M-star {m.M_star} --format {fmt}"


def to_markdown(system: DerivedSystem) -> str:
    """The derived equations as Markdown with LaTeX display blocks."""
    m = system.model
    T = system.table
    lines = [f"# Online-SGD ODEs — variant `{m.name}`, M = {m.M}, M* = {m.M_star}", "",
             f"Written by `{_command(system, 'markdown')}`; do not edit (a test checks it is in sync).", "",
             f"{VARIANTS[m.name].description if m.name in VARIANTS else 'Custom model.'}", "",
             *[line for note in system.notes for line in (f"**Approximate:** {note}.", "")],
             "Parameters: " + ", ".join(f"${sp.latex(p, symbol_names=_latex_names(system))}$" for p in system.params)
             + ". State: " + ", ".join(f"`{s.name}`" for s in system.state) + ".", "",
             "Per-sample loss (fields $\\ell = W^T x/\\sqrt{N}$, $\\mu = \\tilde W x/\\sqrt{N}$; "
             "$\\|x\\|^2$ the squared norm of the sample):", "", "$$", _latex(system, T.loss_parts["loss"]), "$$", "",
             "## Equations", ""]
    for sym, rhs in system.equations().items():
        lines += ["$$", f"{_lhs(system, sym)} = {_latex(system, _readable(system, rhs))}", "$$", ""]
    lines += ["## Observables", ""]
    for name, expr in system.observables.items():
        lines += [f"- `{name}`:", "", "$$", f"{_latex(system, expr)}", "$$", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_latex(system: DerivedSystem) -> str:
    """The derived equations as a LaTeX ``align`` environment."""
    rows = [f"  {_lhs(system, s)} &= {_latex(system, _readable(system, e))}" for s, e in system.equations().items()]
    m = system.model
    notes = "".join(f"% approximate: {note}\n" for note in system.notes)
    return (f"% {_command(system, 'latex')}\n{notes}\\begin{{align}}\n" + " \\\\\n".join(rows) + "\n\\end{align}\n"
            f"% variant {m.name}, M = {m.M}, M* = {m.M_star}\n")


def to_python(system: DerivedSystem) -> str:
    """The derived equations as a Python module (SymPy) defining ``EQUATIONS``: state name -> right-hand side."""
    syms = sorted(set(system.state) | set(system.params) | {s for e in system.rhs for s in e.free_symbols},
                  key=lambda s: s.name)
    m = system.model
    lines = [f"# {_command(system, 'python')}", "import sympy as sp", "",
             f'HEADER = {{"setting": "dynamics", "variant": "{m.name}", "M": {m.M}, "M_star": {m.M_star}}}', ""]
    for s in syms:
        assumptions = "positive=True" if s.is_positive else "real=True"
        lines.append(f"{s.name} = sp.Symbol({s.name!r}, {assumptions})")
    lines += ["", "EQUATIONS = {"]
    lines += [f"    {s.name!r}: {sp.sstr(e)}," for s, e in system.equations().items()]
    lines += ["}"]
    if system.notes:
        lines += ["", f"NOTES = {list(system.notes)!r}  # what is approximate"]
    return "\n".join(lines) + "\n"


def to_json(system: DerivedSystem) -> dict:
    """The derived equations as a JSON-able dict (SymPy text and LaTeX of each right-hand side)."""
    m = system.model
    return {"setting": "dynamics", "variant": m.name, "M": m.M, "M_star": m.M_star,
            "state": [s.name for s in system.state], "params": [p.name for p in system.params],
            "blocks": {k: [s.name for s in v] for k, v in system.blocks.items()},
            "equations": {s.name: sp.sstr(e) for s, e in system.equations().items()},
            "latex": {s.name: _latex(system, _readable(system, e)) for s, e in system.equations().items()},
            "observables": {k: sp.sstr(v) for k, v in system.observables.items()},
            "notes": list(system.notes)}


def render(system: DerivedSystem, fmt: str) -> str:
    if fmt == "markdown":
        return to_markdown(system)
    if fmt == "latex":
        return to_latex(system)
    if fmt == "python":
        return to_python(system)
    if fmt == "json":
        return json.dumps(to_json(system), indent=1) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def derivation_files(shipped: Iterable[tuple[str, int, int]] = SHIPPED) -> dict[str, str]:
    """Relative path -> content of every file ``write_derivations`` writes."""
    files: dict[str, str] = {}
    index = ["# Derived equations", "", "Written by `symvae derive --all --out derivations/`; do not edit.", "",
             "## Online-SGD dynamics", "", "| variant | M | M* | file |", "|---|---|---|---|"]
    for variant, M, Ms in shipped:
        system = derive_dynamics(make_model(variant, M=M, M_star=Ms))
        path = f"dynamics/{variant}_M{M}_Mstar{Ms}.md"
        files[path] = to_markdown(system)
        index.append(f"| `{variant}` | {M} | {Ms} | [{path}]({path}) |")
    index += ["", "## Replica statics", "",
              "[statics/](statics/README.md): the replica-symmetric free energy and saddle-point equations of the "
              "global minimiser on n = alpha N samples, the spectral (random-matrix) closed form, thresholds.",
              "", "## Non-linear VAEs", "",
              "[nonlinear/](nonlinear/README.md): the online-SGD equations of VAEs with an erf encoder or decoder, "
              "derived by the Gaussian-expectation engine (eps sampled).",
              "", "## Thresholds", "",
              "[thresholds.md](thresholds.md): closed-form and verified high-precision thresholds (collapse, noise, lr) "
              "of the online-SGD fixed points, with the commands that reproduce them.", "",
              "## Hand derivations", "",
              "[hand/](hand/README.md): worked examples for `symvae check` (not generated).", ""]
    files["README.md"] = "\n".join(index).rstrip() + "\n"
    return files


def write_derivations(out: str | pathlib.Path) -> list[pathlib.Path]:
    """Regenerate the derivations folder; returns the files written."""
    out = pathlib.Path(out)
    written = []
    for rel, text in derivation_files().items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
