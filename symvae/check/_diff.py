"""``diff``: how the derived equations change from one model variant to another, term by term.

Terms are grouped by their monomial in the order parameters both variants share; everything else (parameters, and
order parameters of only one variant, such as a learned sigma^2) is the coefficient. So ``minibatch`` vs ``base``
shows the second-order coefficients gaining 1/b, and ``learned_sigma2`` vs ``base`` the 1/sigma^2 factors.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import sympy as sp

from ..model import make_model
from ._compare import _is_step, format_sum, readable
from ._settings import TargetSystem, get_setting

__all__ = ["EquationDiff", "VariantDiff", "diff_variants"]


@dataclasses.dataclass(frozen=True)
class EquationDiff:
    """The change of one equation from variant A to variant B.

    Attributes:
        name: ``dQ/dt``, ...
        change: ``unchanged``, ``changed``, ``only_in_a`` or ``only_in_b``.
        removed: (monomial, coefficient) of A whose monomial B lacks; ``added``: the converse.
        changed: (monomial, coefficient in A, coefficient in B) for shared monomials whose coefficient differs.
        unchanged: number of shared monomials with equal coefficients.
        difference: B's minus A's right-hand side (expanded), readable.
        rhs_a, rhs_b: the right-hand sides, readable (None where absent).
    """

    name: str
    change: str
    removed: tuple[tuple[str, str], ...] = ()
    added: tuple[tuple[str, str], ...] = ()
    changed: tuple[tuple[str, str, str], ...] = ()
    unchanged: int = 0
    difference: str | None = None
    rhs_a: str | None = None
    rhs_b: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["removed"] = [{"term": m, "coefficient": c} for m, c in self.removed]
        out["added"] = [{"term": m, "coefficient": c} for m, c in self.added]
        out["changed"] = [{"term": m, "a": a, "b": b} for m, a, b in self.changed]
        return out


@dataclasses.dataclass(frozen=True)
class VariantDiff:
    """All equation changes between two variants.

    Attributes:
        a, b: the variants' names; ``setting``, ``M``, ``M_star``: where they were compared.
        equations: one ``EquationDiff`` per unknown (A's order, then B's new ones).
        params_only_in_a, params_only_in_b: parameters that appear in one variant's equations only.
    """

    a: str
    b: str
    setting: str
    M: int
    M_star: int
    equations: tuple[EquationDiff, ...]
    params_only_in_a: tuple[str, ...]
    params_only_in_b: tuple[str, ...]

    @property
    def status(self) -> str:
        """``same`` if no equation changed, else ``different``."""
        return "same" if all(e.change == "unchanged" for e in self.equations) else "different"

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "setting": self.setting, "M": self.M, "M_star": self.M_star,
                "parameters": {"only_in_a": list(self.params_only_in_a), "only_in_b": list(self.params_only_in_b)},
                "equations": [e.to_json() for e in self.equations], "status": self.status}

    def format_text(self) -> str:
        """What ``symvae diff`` prints."""
        lines = [f"{self.a} -> {self.b}: setting {self.setting}, M={self.M}, M*={self.M_star}"]
        if self.params_only_in_a or self.params_only_in_b:
            lines.append(f"  parameters only in {self.a}: {', '.join(self.params_only_in_a) or '-'}; only in "
                         f"{self.b}: {', '.join(self.params_only_in_b) or '-'}")
        for e in self.equations:
            if e.change == "only_in_a":
                lines.append(f"  {e.name}: only in {self.a}: {e.name} = {e.rhs_a}")
            elif e.change == "only_in_b":
                lines.append(f"  {e.name}: only in {self.b}: {e.name} = {e.rhs_b}")
            elif e.change == "unchanged":
                lines.append(f"  {e.name}: unchanged")
            else:
                counts = [f"{len(e.changed)} changed" if e.changed else "", f"{len(e.added)} added" if e.added else "",
                          f"{len(e.removed)} removed" if e.removed else "", f"{e.unchanged} unchanged"]
                lines.append(f"  {e.name}: terms {', '.join(c for c in counts if c)}")
                width = max((len(m) for m, *_ in e.changed + e.removed + e.added), default=0)
                for m, a, b in e.changed:
                    lines.append(f"      {m:<{width}} : {a}  ->  {b}")
                for m, c in e.removed:
                    lines.append(f"    - {m:<{width}} : {c}")
                for m, c in e.added:
                    lines.append(f"    + {m:<{width}} : {c}")
        lines.append(f"status: {self.status}")
        return "\n".join(lines)


def _grouped(expr: sp.Expr, shared: set) -> dict[sp.Expr, sp.Expr]:
    """{monomial in the shared order parameters: coefficient} of the expanded expression."""
    out: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        mono, coeff = [], []
        for factor in sp.Mul.make_args(term):
            symbols = factor.free_symbols
            (mono if symbols and symbols <= shared else coeff).append(factor)
        key = sp.Mul(*mono)
        out[key] = out.get(key, sp.Integer(0)) + sp.Mul(*coeff)
    return {k: v for k, v in out.items() if sp.expand(v) != 0}


def _display(systems: tuple[TargetSystem, TargetSystem]) -> dict[sp.Symbol, sp.Symbol]:
    out = {}
    for system in systems:
        for sym in system.element_of:
            out.setdefault(sym, sp.Symbol(system.display_name(sym)))
    return out


def diff_variants(variant_a: str, variant_b: str, *, M: int = 1, M_star: int = 1,
                  setting: str = "dynamics") -> VariantDiff:
    """Compare the equations symvae derives for two model variants, term by term.

    Arguments:
        variant_a, variant_b: keys of ``symvae.model.VARIANTS``.
        M, M_star: sizes.
        setting: a registered setting (``dynamics``).

    Returns:
        The ``VariantDiff``.

    Raises:
        InvalidInputError: unknown variant or setting, bad sizes, or a setting that cannot derive yet (statics).
    """
    chosen = get_setting(setting)
    sys_a = chosen.system(make_model(variant_a, M=M, M_star=M_star))
    sys_b = chosen.system(make_model(variant_b, M=M, M_star=M_star))
    plain = _display((sys_a, sys_b))
    shared = set(sys_a.equations) & set(sys_b.equations)
    late = frozenset(p.name for p in plain.values())
    show = lambda e: readable(e.xreplace(plain), late)  # noqa: E731
    coeff = lambda e: format_sum(e.xreplace(plain), late, steps={s for s in e.free_symbols if _is_step(s)})  # noqa
    out: list[EquationDiff] = []
    for sym in list(sys_a.equations) + [s for s in sys_b.equations if s not in sys_a.equations]:
        name = (sys_a if sym in sys_a.equations else sys_b).equation_name(sym)
        if sym not in sys_b.equations:
            out.append(EquationDiff(name, "only_in_a", rhs_a=show(sys_a.equations[sym])))
            continue
        if sym not in sys_a.equations:
            out.append(EquationDiff(name, "only_in_b", rhs_b=show(sys_b.equations[sym])))
            continue
        rhs_a, rhs_b = sys_a.equations[sym], sys_b.equations[sym]
        ga, gb = _grouped(rhs_a, shared), _grouped(rhs_b, shared)
        removed = tuple((show(m), coeff(c)) for m, c in ga.items() if m not in gb)
        added = tuple((show(m), coeff(c)) for m, c in gb.items() if m not in ga)
        changed, unchanged = [], 0
        for m in ga:
            if m in gb:
                if sp.simplify(ga[m] - gb[m]) != 0:
                    changed.append((show(m), coeff(ga[m]), coeff(gb[m])))
                else:
                    unchanged += 1
        difference = sp.expand(rhs_b - rhs_a)
        kind = "unchanged" if not (removed or added or changed) else "changed"
        out.append(EquationDiff(name, kind, removed, added, tuple(changed), unchanged, show(difference),
                                show(rhs_a), show(rhs_b)))
    pa = {p.name for p in sys_a.params} - {s.name for s in sys_b.equations}
    pb = {p.name for p in sys_b.params} - {s.name for s in sys_a.equations}
    return VariantDiff(variant_a, variant_b, setting, M, M_star, tuple(out), tuple(sorted(pa - pb)),
                       tuple(sorted(pb - pa)))
