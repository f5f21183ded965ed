"""Reading a hand-derivation file (LaTeX in Markdown/.tex, or Python with SymPy) into symvae's symbols.

LaTeX files: a header (YAML front matter between ``---`` lines, or leading ``%`` comment lines), then display blocks
(``$$ ... $$``, ``\\[ ... \\]``, ``\\begin{equation}``, ``align``, ``gather``, ``multline``, starred or not), one
equation per block or per ``\\\\``-separated line. Prose, inline ``$...$`` math, code blocks and HTML comments are
ignored.

Python files: a ``HEADER`` dict (or the header lines in the module docstring, starting at ``setting:``) and
``EQUATIONS``: a dict from an unknown (``"Q"``, ``"dQ/dt"``, ``"Q_12"``, a Symbol, ``Derivative(Q, t)``) to its
right-hand side (expression, ``sp.Matrix`` or list for a whole block), or a list of ``sp.Eq``. Symbols are matched by
name (their assumptions do not matter). Module-level SymPy expressions (e.g. ``C = rho*mt**2 + eta*Qt``) are used
to express differences in the user's terms. A Python file is code: it runs in a separate, isolated interpreter with a
time limit (``_pyfile``), and only its values come back, as a whitelisted node table. LaTeX files are only read;
their header expressions (``beta_schedule:``, symbol-map values) go through the ``ast``-whitelist parser.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Mapping

import sympy as sp

from ..errors import InvalidInputError
from ..model import Model, make_model, t
from ..model._expr import parse_expression
from ._evaluate import Evaluator
from ._header import Header, header_from_mapping, parse_header_lines
from ._latex import ParsedEquation, parse_block, parse_name_text
from ._namespace import NameResolutionError, Namespace, Resolved
from ._pyfile import PythonValues, Unreadable, run_python_derivation
from ._settings import Setting, TargetSystem, get_setting
from ._source import CheckInputError, Source

__all__ = ["HandEquation", "HandDerivation", "read_hand_derivation", "LATEX_SUFFIXES", "PYTHON_SUFFIXES"]

LATEX_SUFFIXES = (".md", ".markdown", ".tex", ".latex")
PYTHON_SUFFIXES = (".py",)
_ENVIRONMENTS = r"equation\*?|align\*?|gather\*?|multline\*?|displaymath|eqnarray\*?|flalign\*?"


@dataclasses.dataclass(frozen=True)
class HandEquation:
    """One equation of a hand derivation for one unknown (a matrix equation gives one per entry).

    Attributes:
        name: report name (``dQ/dt``, ``dQ_12/dt``; for an extra equation, the user's quantity).
        target: symvae's unknown it states the right-hand side of; None for an extra equation.
        rhs: the user's right-hand side in symvae's symbols (None for an extra equation that could not be read).
        line, column: where its left-hand side starts in the file (None if unknown).
        source: the left-hand side as written.
        note: why an equation is extra.
        form: how the equation is written: ``"rhs"`` (dynamics: the unknown's right-hand side), or, in the statics
            setting, ``"partial"`` (df/dx = rhs), ``"value"`` (x = rhs, residual x - rhs) or ``"residual"``
            (0 = rhs; ``target`` is None when no ``\\tag`` names its unknown: it is matched automatically).
    """

    name: str
    target: sp.Symbol | None
    rhs: sp.Expr | None
    line: int | None
    column: int | None
    source: str
    note: str | None = None
    form: str = "rhs"


@dataclasses.dataclass(frozen=True, eq=False)
class HandDerivation:
    """A hand-derivation file, read and resolved against the model it declares.

    Attributes:
        path: the file.
        header: its header (after command-line overrides of M, M*).
        setting, model, system: the setting, the model and symvae's equations for it.
        namespace: the name resolution used (and the user's spelling of each symbol, for reports).
        equations: the user's equations, one per unknown entry, in file order.
        definitions: the user's intermediate symbols that are scalars, name -> value in symvae's symbols.
        free_energy: statics: the user's free energy (the definition named ``f`` or the header's ``free_energy``),
            in symvae's symbols; None if the file gives none.
        free_energy_name, free_energy_line: its name and line.
    """

    path: str
    header: Header
    setting: Setting
    model: Model
    system: TargetSystem
    namespace: Namespace
    equations: tuple[HandEquation, ...]
    definitions: Mapping[str, sp.Expr]
    free_energy: sp.Expr | None = None
    free_energy_name: str = "f"
    free_energy_line: int | None = None


# ---------------------------------------------------------------------------------------------------- common steps
def _resolve_setup(header: Header, path: str) -> tuple[Setting, Model, TargetSystem]:
    try:
        setting = get_setting(header.setting)
    except InvalidInputError as exc:
        raise CheckInputError(str(exc), path, header.lines.get("setting")) from None
    schedule = header.beta_schedule
    if schedule is not None:  # exact decimals, as the file's own numbers are read (1.5 is 3/2 on both sides)
        try:
            schedule = _rationalize(parse_expression(schedule, "beta_schedule"))
        except InvalidInputError as exc:
            raise CheckInputError(str(exc), path, header.lines.get("beta_schedule")) from None
    try:
        model = make_model(header.variant, M=header.M, M_star=header.M_star, beta_schedule=schedule)
    except InvalidInputError as exc:
        key = "beta_schedule" if "schedule" in str(exc) else "variant"
        raise CheckInputError(str(exc), path, header.lines.get(key)) from None
    try:
        system = setting.system(model)
    except InvalidInputError as exc:
        raise CheckInputError(str(exc), path, header.lines.get("setting")) from None
    return setting, model, system


def _alias_note(namespace: Namespace, block: str) -> str | None:
    if namespace.tied and block in ("m_tilde", "Q_tilde", "R"):
        original = {"m_tilde": "m", "Q_tilde": "Q", "R": "Q"}[block]
        return f"{block} is {original} in a tied model (W~ = W^T): it has no equation of its own"
    return None


def _entries(system: TargetSystem, namespace: Namespace, resolved: Resolved | None, label: str,
             value, where, make) -> list[HandEquation]:
    """Split a left-hand side and right-hand side into per-unknown ``HandEquation``s (``make`` builds one)."""
    setting = system.setting
    if resolved is None:
        return [make(setting.equation_name(label), None, value, f"{label} is not an order parameter of the model "
                                                                  f"({namespace.known_names()})")]
    if resolved.block is None:
        return [make(setting.equation_name(label), None, value, f"{label} is a parameter of the model, not an order "
                                                                  f"parameter")]
    note = _alias_note(namespace, resolved.block)
    if note is not None:
        return [make(setting.equation_name(label), None, value, note)]
    target = resolved.value
    if isinstance(value, sp.MatrixBase) and not isinstance(target, sp.MatrixBase):
        raise where(f"the right-hand side is a {value.rows}x{value.cols} matrix, but {label} is a scalar")
    if isinstance(target, sp.MatrixBase):
        if not isinstance(value, sp.MatrixBase):
            raise where(f"the right-hand side is a scalar, but {label} is a {target.rows}x{target.cols} matrix "
                        f"(M={namespace.M}, M*={namespace.M_star})")
        if value.shape != target.shape and value.T.shape == target.shape and 1 in target.shape:
            value = value.T
        if value.shape != target.shape:
            raise where(f"the right-hand side is a {value.rows}x{value.cols} matrix, but {label} is "
                        f"{target.rows}x{target.cols} (M={namespace.M}, M*={namespace.M_star})")
        out = []
        for i in range(target.rows):
            for j in range(target.cols):
                idx = f"{i + 1}" if resolved.block == "D" else f"{i + 1}{j + 1}"
                out.extend(_entries(system, namespace, Resolved(target[i, j], resolved.block, idx),
                                    f"{resolved.block}_{idx}", value[i, j], where, make))
        return out
    if not isinstance(target, sp.Symbol) or target not in system.equations:
        what = f"{label} = {target}" if not isinstance(target, sp.Symbol) else f"{target.name}"
        return [make(setting.equation_name(label), None, value,
                     f"{what} is fixed in variant {system.model.name!r}: it is not an unknown of the model")]
    if system.scalar_notation and system.is_scalar_block(resolved.block):
        name = setting.equation_name(resolved.block)
    else:
        name = setting.equation_name(f"{resolved.block}_{resolved.index}" if resolved.index else resolved.block)
    return [make(name, target, value, None)]


def _rationalize(expr):
    if isinstance(expr, sp.Basic) and expr.has(sp.Float):
        return expr.xreplace({f: sp.Rational(str(f)) for f in expr.atoms(sp.Float)})
    return expr


def _check_duplicates(equations: list[HandEquation], path: str) -> None:
    seen: dict[str, HandEquation] = {}
    for eq in equations:
        if eq.name in seen:
            first = seen[eq.name]
            raise CheckInputError(f"two equations for {eq.name} (the first on line {first.line})", path, eq.line,
                                  eq.column)
        seen[eq.name] = eq


# ---------------------------------------------------------------------------------------------------- LaTeX
def _front_matter(source: Source) -> tuple[list[tuple[int, str]], int]:
    """Header lines (line number, text) and the offset where the body starts."""
    lines = source.text.split("\n")
    if lines and lines[0].strip() == "---":
        for k in range(1, len(lines)):
            if lines[k].strip() in ("---", "..."):
                body = sum(len(x) + 1 for x in lines[:k + 1])
                return [(n + 1, lines[n]) for n in range(1, k)], body
        raise source.error(0, "the header's front matter opened by '---' is never closed by a second '---'")
    header, offset = [], 0
    for n, line in enumerate(lines):
        if line.strip().startswith("%"):
            header.append((n + 1, line.strip()[1:].lstrip(" ") if line.strip() != "%" else ""))
            offset += len(line) + 1
        elif not line.strip() and not header:
            offset += len(line) + 1
        else:
            break
    return header, offset


def _display_blocks(source: Source, start: int, markdown: bool) -> list[tuple[int, int]]:
    """(start, end) offsets of the contents of display-math blocks after ``start``."""
    text = source.text
    openers = [r"(?P<dollar>\$\$)", r"(?P<bracket>\\\[)", rf"(?P<env>\\begin\{{(?P<name>{_ENVIRONMENTS})\}})"]
    if markdown:
        openers += [r"(?P<fence>^[ \t]*(?:```|~~~))", r"(?P<html><!--)"]
    else:
        openers += [r"(?P<comment>(?<!\\)%)"]
    pattern = re.compile("|".join(openers), re.M)
    blocks = []
    pos = start
    while True:
        match = pattern.search(text, pos)
        if not match:
            return blocks
        kind = "env" if match.group("env") else match.lastgroup
        if kind == "comment":
            end = text.find("\n", match.end())
            pos = len(text) if end < 0 else end
            continue
        closer = {"dollar": "$$", "bracket": "\\]", "fence": match.group().strip()[:3], "html": "-->"}.get(kind)
        if kind == "env":
            closer = f"\\end{{{match.group('name')}}}"
        end = text.find(closer, match.end())
        if end < 0:
            what = {"fence": "code block", "html": "HTML comment"}.get(kind, "display block")
            raise source.error(match.start(), f"{what} opened by {match.group().strip()!r} is never closed "
                                              f"(expected {closer!r})")
        if kind in ("dollar", "bracket", "env"):
            blocks.append((match.end(), end))
        pos = end + len(closer)


def _read_latex(path: str, text: str, M: int | None, M_star: int | None) -> HandDerivation:
    source = Source(text, path)
    header_lines, body = _front_matter(source)
    if not header_lines:
        raise CheckInputError("no header: start the file with front matter ('---', 'setting: dynamics', "
                              "'variant: base', 'M: 1', 'M_star: 1', '---') or '%' comment lines", path, 1)
    header = _override(parse_header_lines(header_lines, path), M, M_star)
    setting, model, system = _resolve_setup(header, path)
    namespace = Namespace(system, header.symbols, path, header.lines.get("symbols"))

    parsed: list[ParsedEquation] = []
    markdown = Path(path).suffix.lower() in (".md", ".markdown")
    for start, end in _display_blocks(source, body, markdown):
        parsed.extend(parse_block(source, start, end))
    if not parsed:
        raise CheckInputError("no equations found: write each in a display block ($$ ... $$, \\[ ... \\] or "
                              "\\begin{equation} ... \\end{equation})", path)

    definitions: dict[str, ParsedEquation] = {}
    statements: list[ParsedEquation] = []
    statics = setting.compares == "residual"
    for eq in parsed:
        name = eq.lhs.name
        if eq.lhs.kind in ("partial", "zero") and not statics:
            raise source.error(eq.lhs.offset, f"{eq.lhs.text} = ... is a saddle-point equation: declare "
                                              f"'setting: statics' to check one")
        if eq.lhs.kind == "derivative" and statics:
            raise source.error(eq.lhs.offset, f"{eq.lhs.text} is a time derivative, but the setting is statics: "
                                              f"write saddle-point equations as \\frac{{\\partial f}}{{\\partial Q}} = ..., "
                                              f"Q = ... or 0 = ...")
        if eq.tag is not None and eq.lhs.kind != "zero":
            raise source.error(eq.tag_offset, "\\tag{...} names the unknown of a residual '0 = ...' only")
        is_equation = eq.lhs.kind in ("derivative", "partial", "zero")
        if eq.lhs.kind == "name":
            try:
                taken = namespace.resolve(name.base, name.sub, builtins=False)
            except NameResolutionError as exc:
                raise source.error(eq.lhs.offset, str(exc)) from None
            if taken is not None and setting.lhs_kind == "value" and taken.block is not None:
                is_equation = True
            elif taken is not None and taken.block is not None:
                hint = (f": its equation is written \\frac{{d{name.text}}}{{dt}} = ...; "
                        if setting.lhs_kind == "derivative" else ": ")
                raise source.error(eq.lhs.offset, f"{name.text} is an order parameter of the model{hint}choose "
                                                  f"another name for a definition")
            elif taken is not None:
                raise source.error(eq.lhs.offset, f"{name.text} is already {taken.value} in this model and cannot be "
                                                  f"redefined")
        if is_equation:
            statements.append(eq)
        elif name.full in definitions:
            first = source.location(definitions[name.full].offset)[0]
            raise source.error(eq.lhs.offset, f"{name.text} is defined twice (first on line {first})")
        else:
            definitions[name.full] = eq

    evaluator = Evaluator(source, namespace, definitions)
    equations: list[HandEquation] = []
    for eq in statements:
        name = eq.lhs.name
        line, col = source.location(eq.lhs.offset)
        form = {"derivative": "rhs", "partial": "partial", "zero": "residual"}.get(eq.lhs.kind, "value")
        if eq.lhs.kind == "zero":
            value = evaluator.value(eq.rhs)
            if eq.tag is None:  # matched to one of symvae's equations by the checker
                if isinstance(value, sp.MatrixBase):
                    raise source.error(eq.offset, "a matrix residual '0 = ...' needs \\tag{X} naming its unknown")
                equations.append(HandEquation(f"0 = ... (line {line})", None, value, line, col, "0", None,
                                              "residual"))
                continue
            try:
                tag_name = parse_name_text(eq.tag, path)
                resolved = namespace.resolve_plain(tag_name, builtins=False)
            except (CheckInputError, NameResolutionError) as exc:
                raise source.error(eq.tag_offset, f"\\tag{{{eq.tag}}}: {getattr(exc, 'reason', exc)}") from None
            if resolved is None:
                raise source.error(eq.tag_offset, f"\\tag{{{eq.tag}}} names no unknown of the model "
                                                  f"({namespace.known_names()})")
            namespace.record(resolved, tag_name, eq.tag)

            def make_tagged(nm, target, rhs, note, _line=line, _col=col):
                return HandEquation(nm, target, rhs, _line, _col, "0", note, "residual")

            def where_tagged(message, _eq=eq):
                return source.error(_eq.offset, f"0 = ... \\tag{{{_eq.tag}}}: {message}")

            equations.extend(_entries(system, namespace, resolved, tag_name, value, where_tagged, make_tagged))
            continue
        try:
            resolved = namespace.resolve(name.base, name.sub, builtins=False)
        except NameResolutionError as exc:
            raise source.error(name.offset, str(exc)) from None
        if resolved is not None and resolved.block is not None and _alias_note(namespace, resolved.block) is None:
            value = evaluator.value(eq.rhs)
        else:  # an extra equation: its right-hand side may use symbols this model does not have
            try:
                value = evaluator.value(eq.rhs)
            except CheckInputError:
                value = None
        if resolved is not None:
            namespace.record(resolved, name.full, name.text)

        def make(nm, target, rhs, note, _line=line, _col=col, _src=eq.lhs.text, _form=form):
            return HandEquation(nm, target, rhs, _line, _col, _src, note, _form)

        def where(message, _eq=eq):
            return source.error(_eq.offset, f"{_eq.lhs.text}: {message}")

        equations.extend(_entries(system, namespace, resolved, name.full, value, where, make))
    _check_duplicates(equations, path)
    scalars = {}
    for name in definitions:
        value = evaluator.definition(name)
        if not isinstance(value, sp.MatrixBase):
            scalars[name] = value
    free = free_line = None
    free_name = _free_energy_name(header, path)
    if statics and free_name in definitions:
        free = evaluator.definition(free_name)
        free_line = source.location(definitions[free_name].offset)[0]
        if isinstance(free, sp.MatrixBase):
            raise source.error(definitions[free_name].offset, f"the free energy {free_name} must be a scalar")
    elif statics and header.free_energy is not None:
        raise CheckInputError(f"the header names the free energy {header.free_energy!r}, but the file does not "
                              f"define it", path, header.lines.get("free_energy"))
    return HandDerivation(path, header, setting, model, system, namespace, tuple(equations), scalars, free,
                          free_name, free_line)


def _free_energy_name(header: Header, path: str) -> str:
    if header.free_energy is None:
        return "f"
    try:
        return parse_name_text(header.free_energy, path)
    except CheckInputError as exc:
        raise CheckInputError(f"free_energy: {exc.reason}", path, header.lines.get("free_energy")) from None


def _override(header: Header, M: int | None, M_star: int | None) -> Header:
    changes = {}
    if M is not None:
        changes["M"] = M
    if M_star is not None:
        changes["M_star"] = M_star
    return dataclasses.replace(header, **changes) if changes else header


# ---------------------------------------------------------------------------------------------------- Python
def _python_header(values: PythonValues, text: str, path: str) -> Header:
    if values.header is not None:
        if not isinstance(values.header, Mapping):
            raise CheckInputError("HEADER must be a dict", path, _line_of(text, "HEADER"))
        return header_from_mapping(values.header, path, {})
    doc = values.doc or ""
    lines = doc.split("\n")
    for k, line in enumerate(lines):
        if line.strip().startswith("setting:"):
            block = []
            indent = len(line) - len(line.lstrip())
            for later in lines[k:]:
                if not later.strip():
                    break
                block.append(later[indent:] if later[:indent].isspace() or not later[:indent] else later.lstrip())
            file_lines = text.split("\n")
            numbered = []
            for entry in block:
                number = next((n + 1 for n, fl in enumerate(file_lines) if fl.strip() == entry.strip()), None)
                numbered.append((number or 1, entry))
            return parse_header_lines(numbered, path)
    raise CheckInputError("no header: define HEADER = {'setting': 'dynamics', 'variant': 'base', 'M': 1, "
                          "'M_star': 1} or put 'setting: ...' lines in the module docstring", path, 1)


def _line_of(text: str, needle: str) -> int | None:
    for n, line in enumerate(text.split("\n")):
        if needle in line:
            return n + 1
    return None


_DERIVATIVE_KEY = re.compile(r"^\s*d\s*(.+?)\s*/\s*dt\s*$")
_PARTIAL_KEY = re.compile(r"^\s*(?:d|∂|\\partial)\s*[A-Za-z_][A-Za-z_0-9]*\s*/\s*(?:d|∂|\\partial)\s*(.+?)\s*$")


def _unreadable(value) -> Unreadable | None:
    """The first value the parent could not rebuild, inside lists and tuples too."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, Unreadable):
            return item
        if isinstance(item, (list, tuple)) and id(item) not in seen:  # lists may be shared: visit each once
            seen.add(id(item))
            stack.extend(item)
    return None


def _python_lhs_name(key) -> str | None:
    if isinstance(key, str):
        match = _DERIVATIVE_KEY.match(key)
        return (match.group(1) if match else key).strip()
    if isinstance(key, sp.Derivative) and len(key.variables) == 1:
        return _python_lhs_name(key.expr)
    if isinstance(key, sp.Symbol):
        return _python_lhs_name(key.name)
    if isinstance(key, sp.core.function.AppliedUndef):
        return key.func.__name__
    return None


def _read_python(path: str, text: str, M: int | None, M_star: int | None, time_limit: float | None
                 ) -> HandDerivation:
    values = run_python_derivation(path, time_limit=time_limit)  # the file is code: it runs in a child process
    header = _override(_python_header(values, text, path), M, M_star)
    setting, model, system = _resolve_setup(header, path)
    namespace = Namespace(system, header.symbols, path, header.lines.get("symbols"))
    if values.equations is None:
        raise CheckInputError("a Python hand derivation defines EQUATIONS: a dict {'dQ/dt': expression, ...} or a "
                              "list of sp.Eq", path)
    if isinstance(values.equations, Unreadable):
        raise CheckInputError("EQUATIONS must be a dict or a list of sp.Eq", path, _line_of(text, "EQUATIONS"))
    items = values.equations

    def to_canonical(value, where_text, line):
        def fail(message):
            return CheckInputError(f"EQUATIONS[{where_text!r}]: {message}", path, line)

        if isinstance(value, str):
            try:
                value = parse_expression(value, "the string")
            except InvalidInputError as exc:
                raise fail(str(exc)) from None
        unreadable = _unreadable(value)
        if unreadable is not None:
            raise fail(f"not a SymPy expression symvae can read: {unreadable.what}")
        try:
            if isinstance(value, (list, tuple)):
                value = sp.Matrix(value)
            value = sp.sympify(value, strict=True)  # strict: SymPy objects and numbers only, never text
        except (sp.SympifyError, TypeError, ValueError):
            raise fail(f"not a SymPy expression: {value!r}"[:300]) from None
        value = _rationalize(value)
        if isinstance(value, sp.MatrixBase):
            return sp.ImmutableMatrix(value.applyfunc(lambda e: to_canonical(e, where_text, line)))
        undef = {f: sp.Symbol(f.func.__name__) for f in value.atoms(sp.core.function.AppliedUndef)}
        value = value.xreplace(undef)
        subs = {}
        for sym in value.free_symbols:
            if sym.name == "t":
                subs[sym] = t
                continue
            try:
                resolved = namespace.resolve_plain(sym.name)
            except NameResolutionError as exc:
                raise fail(str(exc)) from None
            if resolved is None:
                raise fail(f"unknown symbol {sym.name!r}: map it in HEADER['symbols'] ({namespace.known_names()})")
            if isinstance(resolved.value, sp.MatrixBase):
                raise fail(f"{sym.name!r} is a {resolved.value.rows}x{resolved.value.cols} matrix for M={namespace.M}, "
                           f"M*={namespace.M_star}: use its entries ({sym.name}_12) or an sp.Matrix")
            namespace.record(resolved, sym.name, sp.latex(sp.Symbol(sym.name)))
            subs[sym] = resolved.value
        return value.xreplace(subs)

    equations: list[HandEquation] = []
    statics = setting.compares == "residual"
    free_name = _free_energy_name(header, path)
    free = free_line = None
    for key, value in items:
        shown = key if isinstance(key, str) else str(key)
        line = _line_of(text, repr(key)[1:-1] if isinstance(key, str) else shown) or _line_of(text, "EQUATIONS")
        form, label = ("value" if statics else "rhs"), None
        if statics:
            if isinstance(key, (int, sp.Integer)) and not isinstance(key, bool) and key == 0:
                equations.append(HandEquation(f"0 = ... (#{len(equations) + 1})", None,
                                              to_canonical(value, "0", line), line, None, "0", None, "residual"))
                continue
            partial = _PARTIAL_KEY.match(key) if isinstance(key, str) else None
            if partial:
                form, label = "partial", partial.group(1)
            elif (key.strip() if isinstance(key, str) else getattr(key, "name", None)) == free_name:
                free, free_line = to_canonical(value, shown, line), line
                continue
        if label is None:
            label = _python_lhs_name(key)
        if label is None:
            raise CheckInputError(f"EQUATIONS key {shown!r}: expected an unknown such as 'dQ/dt', 'Q' or 'Q_12'",
                                  path, line)
        try:
            resolved = namespace.resolve_plain(label, builtins=False)
        except NameResolutionError as exc:
            raise CheckInputError(f"EQUATIONS[{shown!r}]: {exc}", path, line) from None
        extra = resolved is None or resolved.block is None or _alias_note(namespace, resolved.block) is not None
        try:
            rhs = to_canonical(value, shown, line)
        except CheckInputError:
            if not extra:
                raise
            rhs = None
        if resolved is not None:
            namespace.record(resolved, label, sp.latex(sp.Symbol(label)))

        def make(nm, target, r, note, _line=line, _src=shown, _form=form):
            return HandEquation(nm, target, r, _line, None, _src, note, _form)

        def where(message, _shown=shown, _line=line):
            return CheckInputError(f"EQUATIONS[{_shown!r}]: {message}", path, _line)

        equations.extend(_entries(system, namespace, resolved, label, rhs, where, make))
    _check_duplicates(equations, path)

    definitions = {}
    for name, value in values.definitions.items():  # the child sent the module-level expressions with symbols
        if not isinstance(value, sp.Expr):
            continue
        try:
            definitions[name] = to_canonical(value, name, None)
        except CheckInputError:
            continue
    if statics and free is None and free_name in definitions:
        free, free_line = definitions[free_name], _line_of(text, f"{free_name} =")
    return HandDerivation(path, header, setting, model, system, namespace, tuple(equations), definitions, free,
                          free_name, free_line)


# ---------------------------------------------------------------------------------------------------- entry point
def read_hand_derivation(path: str | os.PathLike, *, M: int | None = None, M_star: int | None = None,
                         time_limit: float | None = None) -> HandDerivation:
    """Read a hand-derivation file and resolve it against the model its header declares.

    Arguments:
        path: a ``.md``/``.markdown``/``.tex`` (LaTeX) or ``.py`` (SymPy) file.
        M, M_star: override the header's sizes (to check a matrix-notation derivation at several sizes).
        time_limit: seconds a ``.py`` file may run (it runs in a child process; default
            ``SYMVAE_CHECK_TIME_LIMIT`` or 60). LaTeX files are read, never run.

    Returns:
        The ``HandDerivation``: header, model, symvae's system and the user's equations in symvae's symbols.

    Raises:
        CheckInputError: the file is unusable: missing/unreadable, unknown file type, parse error (with line and
            column), unknown symbol, undeclared or unknown variant or setting, shape mismatch, duplicate equation.
    """
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckInputError(f"cannot read the file: {exc.strerror if isinstance(exc, OSError) else exc}",
                              path) from None
    suffix = Path(path).suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        return _read_python(path, text, M, M_star, time_limit)
    if suffix in LATEX_SUFFIXES:
        return _read_latex(path, text, M, M_star)
    raise CheckInputError(f"unknown file type {suffix or '(none)'!r}: use .md, .tex (LaTeX) or .py (SymPy)", path)
