"""The report of ``symvae check``: one verdict per equation, shared by every setting's comparison."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import mpmath
import sympy as sp

from ._compare import readable

__all__ = ["EquationResult", "CheckReport", "VERDICTS", "witness_json"]

#: The verdicts, in report order of severity.
VERDICTS = ("equal", "different", "inconclusive", "missing", "extra")


@dataclasses.dataclass(frozen=True)
class EquationResult:
    """The verdict on one equation.

    Attributes:
        name: ``dQ/dt``, ``dQ_12/dt``, ...
        verdict: ``equal``, ``different``, ``inconclusive`` (the symbolic and numeric tests disagree), ``missing``
            (symvae derives it, the file lacks it) or ``extra`` (in the file, but not an unknown of the model).
        line: where the equation is in the file (None for missing ones).
        source: its left-hand side as written.
        message: one line for people, in the user's symbols.
        difference: symvae's minus the user's right-hand side, readable, in the user's symbols ("0" when equal).
        difference_latex: the same in LaTeX.
        in_terms_of_definitions: the difference using one of the user's definitions, when that is a monomial
            multiple of it (``tau^2 eta C``).
        variables: the user's names of the symbols the difference involves.
        terms: term-by-term changes of the expanded sides (missing / extra / changed terms).
        witness: a point where the sides differ, with both values.
        checks: the answers of the three tests (symbolic, float64, mpmath50).
        note: why an equation is extra or inconclusive, or a remark of the tests.
        yours, symvae: the right-hand sides, readable (symvae's only for missing equations).
    """

    name: str
    verdict: str
    line: int | None = None
    source: str | None = None
    message: str = ""
    difference: str | None = None
    difference_latex: str | None = None
    in_terms_of_definitions: str | None = None
    variables: tuple[str, ...] = ()
    terms: Mapping[str, Any] | None = None
    witness: Mapping[str, Any] | None = None
    checks: Mapping[str, str] | None = None
    note: str | None = None
    yours: str | None = None
    symvae: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (fields that are None are kept, as null)."""
        out = dataclasses.asdict(self)
        out["variables"] = list(self.variables)
        return out


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """All verdicts on one hand-derivation file.

    Attributes:
        path, setting, variant, M, M_star: what was checked.
        equations: one ``EquationResult`` per equation (file order), then the missing ones.
        allow_missing: whether missing equations count as a mismatch.
        points, seed: the numeric test's number of points and seed.
        notes: remarks on the whole file (e.g. statics: unknowns the file does not use).
    """

    path: str
    setting: str
    variant: str
    M: int
    M_star: int
    equations: tuple[EquationResult, ...]
    allow_missing: bool = False
    points: int = 8
    seed: int = 0
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``match`` if every equation is equal (missing ones tolerated with ``allow_missing``), else ``mismatch``."""
        ok = {"equal", "missing"} if self.allow_missing else {"equal"}
        return "match" if all(r.verdict in ok for r in self.equations) else "mismatch"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "match" else 1

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for r in self.equations:
            out[r.verdict] += 1
        return {k: v for k, v in out.items() if v}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: ``{"equations": [...], "status": "match|mismatch", ...}``."""
        return {"file": self.path, "setting": self.setting, "variant": self.variant, "M": self.M,
                "M_star": self.M_star, "points": self.points, "seed": self.seed,
                "equations": [r.to_json() for r in self.equations], "counts": self.counts(), "notes": list(self.notes),
                "status": self.status}

    def format_text(self, *, max_terms: int = 4) -> str:
        """A human-readable report (what ``symvae check`` prints)."""
        lines = [f"{self.path}: setting {self.setting}, variant {self.variant}, M={self.M}, M*={self.M_star}"]
        lines.extend(f"  note: {n}" for n in self.notes)
        width = max((len(r.name) for r in self.equations), default=8)
        for r in self.equations:
            where = f"line {r.line}" if r.line else ""
            lines.append(f"  {r.name:<{width}}  {r.verdict:<12} {where}".rstrip())
            if r.verdict == "equal":
                if r.note:
                    lines.append(f"      note: {r.note}")
                continue
            if r.verdict == "missing":
                if r.symvae and len(r.symvae) <= 100:
                    lines.append(f"      symvae derives {r.symvae}")
                continue
            if r.message:
                lines.append(f"      {r.message}")
            if r.in_terms_of_definitions:
                lines.append(f"      in your definitions: {r.in_terms_of_definitions}")
            if r.variables:
                lines.append(f"      involves: {', '.join(r.variables)}")
            if r.terms:
                for key, label in (("missing", "terms only in symvae's"), ("extra", "terms only in yours")):
                    items = r.terms.get(key) or []
                    if items:
                        more = f" (and {len(items) - max_terms} more)" if len(items) > max_terms else ""
                        lines.append(f"      {label}: {', '.join(items[:max_terms])}{more}")
                changed = r.terms.get("changed") or []
                if changed:
                    shown = [f"{c['term']}: yours {c['yours']}, symvae {c['symvae']}" for c in changed[:max_terms]]
                    more = f" (and {len(changed) - max_terms} more)" if len(changed) > max_terms else ""
                    lines.append(f"      coefficients that differ: {'; '.join(shown)}{more}")
            if r.witness:
                point = ", ".join(f"{k}={v:g}" for k, v in r.witness["point"].items())
                lines.append(f"      witness: at {point}: yours = {r.witness['yours']:.12g}, "
                             f"symvae = {r.witness['symvae']:.12g}")
            if r.note and r.verdict not in ("missing", "extra"):
                lines.append(f"      note: {r.note}")
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        lines.append(f"status: {self.status} ({counts})")
        return "\n".join(lines)


def witness_json(witness, plain: Mapping[sp.Symbol, sp.Symbol]) -> dict[str, Any]:
    shown = {s: readable(plain.get(s, s)) for s in witness.point}
    point = {shown[s]: float(v) for s, v in sorted(witness.point.items(), key=lambda kv: shown[kv[0]].lower())}
    return {"point": point, "yours": float(witness.yours), "symvae": float(witness.symvae),
            "difference": float(witness.difference),
            "yours_50_digits": mpmath.nstr(witness.yours, 50), "symvae_50_digits": mpmath.nstr(witness.symvae, 50)}
