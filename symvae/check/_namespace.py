"""Resolution of the names in a hand derivation to symvae's symbols, and back (for reporting in the user's symbols).

Order of lookup for a name such as ``\\hat{m}_{12}`` (normalised to base ``m_hat``, index ``12``):

1. the header's symbol map, for the full name (``m_hat_12``);
2. the symbol map for the base, if it maps to an order parameter (``m_hat -> m_tilde`` gives ``m_tilde_12``);
3. symvae's names: order parameters as blocks (``Q``: a matrix, or the scalar ``Q_11`` when M = M* = 1), their
   entries (``Q_12``; ``Q_21`` is ``Q_12`` by symmetry; ``m_2`` is ``m_21`` when M* = 1; ``D_1``), the parameters
   of the derived system and ``t``;
4. conventional spellings: ``\\lambda`` -> ``lam``, ``\\sigma`` -> sqrt(``sigma2``), ``I`` -> identity, ``e``, ``\\pi``.

(The user's own definitions, e.g. ``C = ...``, are looked up before all of these by the evaluator.)
"""
from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import sympy as sp

from ..model._model import parse_expression
from ..errors import InvalidInputError
from ._latex import parse_name_text
from ._settings import TargetSystem
from ._source import CheckInputError

__all__ = ["Namespace", "Resolved", "NameResolutionError"]

_BLOCK_ORDER = ("m", "m_tilde", "Q", "Q_tilde", "R", "D", "sigma2", "K", "H")


class NameResolutionError(Exception):
    """A name that looks like an order-parameter entry but is out of range (the caller adds the position)."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What a name stands for: ``value`` (a SymPy scalar or matrix in symvae's symbols); ``block`` and ``index``
    when it is an order parameter (``("Q", None)`` for the whole block, ``("Q", "12")`` for an entry)."""

    value: object
    block: str | None = None
    index: str | None = None


def _scalar(value):
    if isinstance(value, sp.MatrixBase) and value.shape == (1, 1):
        return value[0, 0]
    return value


class Namespace:
    """Names of one model in one setting, with the user's symbol map.

    Arguments:
        system: the derived system (gives the model, its symbol table and parameters).
        symbol_map: the header's ``symbols`` (user spelling -> symvae name or expression).
        path: file name for error messages; ``symbols_line``: the header line of the map.

    Raises:
        CheckInputError: a symbol-map entry whose key is not a symbol or whose value names nothing in the model.
    """

    def __init__(self, system: TargetSystem, symbol_map: Mapping[str, str], path: str,
                 symbols_line: int | None = None):
        self.system = system
        T = system.table
        self.M, self.M_star = system.model.M, system.model.M_star
        self.tied = T.tied
        self.blocks: dict[str, object] = {}
        self.elements: dict[str, tuple[str, str, sp.Expr]] = {}  # name -> (block, index, symbol)
        for block, value in system.matrices().items():
            if isinstance(value, tuple):
                value = sp.Matrix(len(value), 1, list(value))
            self.blocks[block] = _scalar(value)
            if isinstance(value, sp.MatrixBase):
                for i in range(value.rows):
                    for j in range(value.cols):
                        idx = f"{i + 1}" if block == "D" else f"{i + 1}{j + 1}"
                        self.elements.setdefault(f"{block}_{idx}", (block, idx, value[i, j]))
                        if value.cols == 1 and block != "D":
                            self.elements.setdefault(f"{block}_{i + 1}", (block, idx, value[i, j]))
        self.params: dict[str, sp.Symbol] = {p.name: p for p in system.params}
        self.display: dict[sp.Symbol, tuple[str, str]] = {}
        self.symbol_map: dict[str, Resolved] = {}
        self._map_blocks: dict[str, str] = {}
        for key, target in symbol_map.items():
            try:
                name = parse_name_text(key, path)
            except CheckInputError as exc:
                raise CheckInputError(f"symbol map: {exc.reason}", path, symbols_line) from None
            resolved = self._model_name(target) if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", target) else None
            if resolved is None:
                try:
                    expr = parse_expression(target, f"symbol map value for {key!r}")
                except InvalidInputError as exc:
                    raise CheckInputError(str(exc), path, symbols_line) from None
                subs = {}
                for sym in expr.free_symbols:
                    r = self._model_name(sym.name) or self._builtin(sym.name)
                    if r is None or isinstance(r.value, sp.MatrixBase):
                        raise CheckInputError(f"symbol map: {key!r} -> {target!r}: {sym.name!r} is not a scalar "
                                              f"symbol of the model ({self.known_names()})", path, symbols_line)
                    subs[sym] = r.value
                resolved = Resolved(expr.xreplace(subs))
            elif resolved.block is not None and resolved.index is None:
                self._map_blocks[name] = resolved.block
            self.symbol_map[name] = resolved

    # ------------------------------------------------------------------ lookup
    def _model_name(self, name: str) -> Resolved | None:
        if name in self.blocks:
            value = self.blocks[name]
            index = None
            if not isinstance(value, sp.MatrixBase) and name != "sigma2":
                index = "1" if name == "D" else "11"
            return Resolved(value, name, index)
        if name in self.elements:
            block, idx, sym = self.elements[name]
            return Resolved(sym, block, idx)
        if name in self.params:
            return Resolved(self.params[name])
        return None

    def _builtin(self, name: str) -> Resolved | None:
        if name == "lambda" and "lam" in self.params:
            return Resolved(self.params["lam"])
        if name == "sigma":
            return Resolved(sp.sqrt(self.blocks["sigma2"]))
        if name == "I":
            return Resolved(sp.Integer(1) if self.M == 1 else sp.eye(self.M))
        if name == "e":
            return Resolved(sp.E)
        if name == "pi":
            return Resolved(sp.pi)
        return None

    def resolve(self, base: str, sub: str | None, *, builtins: bool = True) -> Resolved | None:
        """What the user's name ``base`` (with index ``sub``) stands for, or None if it is unknown.

        Arguments:
            base, sub: the normalised name and its index (None if none).
            builtins: whether to fall back on conventional spellings (``\\lambda``, ``I``, ...).

        Raises:
            NameResolutionError: an order-parameter entry out of range (e.g. ``Q_{13}`` for M = 2).
        """
        full = base if sub is None else f"{base}_{sub}"
        if full in self.symbol_map:
            return self.symbol_map[full]
        if sub is not None and base in self._map_blocks:
            return self._entry(self._map_blocks[base], sub, shown=base)
        found = self._model_name(full)
        if found is not None:
            return found
        if sub is not None and base in self.blocks and re.fullmatch(r"\d+", sub):
            return self._entry(base, sub, shown=base)
        if sub is None and builtins:
            return self._builtin(full)
        return None

    def resolve_plain(self, name: str, *, builtins: bool = True) -> Resolved | None:
        """``resolve`` for a plain name such as ``Q_12`` or ``m_hat_12`` (the index split off if needed)."""
        found = self.resolve(name, None, builtins=builtins)
        match = re.fullmatch(r"(.+?)_(\d+)", name)
        if found is None and match:
            found = self.resolve(match.group(1), match.group(2), builtins=builtins)
        return found

    def _entry(self, block: str, sub: str, shown: str) -> Resolved:
        name = f"{block}_{sub}"
        if name in self.elements:
            b, idx, sym = self.elements[name]
            return Resolved(sym, b, idx)
        value = self.blocks[block]
        shape = value.shape if isinstance(value, sp.MatrixBase) else (1, 1)
        raise NameResolutionError(f"{shown} has no entry {sub!r}: {block} is {shape[0]}x{shape[1]} for M={self.M}, "
                                  f"M*={self.M_star} (indices start at 1)")

    def known_names(self) -> str:
        """A one-line list of the names symvae knows here (for error messages)."""
        names = [b for b in _BLOCK_ORDER if b in self.blocks and not (self.tied and b in ("m_tilde", "Q_tilde", "R"))
                 and not (b == "sigma2" and self.blocks[b] == 1)]
        return "known: " + ", ".join(names + sorted(self.params))

    # ------------------------------------------------------------------ display in the user's symbols
    def record(self, resolved: Resolved, plain: str, latex: str) -> None:
        """Remember how the user spells the symbols behind ``resolved`` (first spelling wins).

        A symbol-map entry such as ``\\sigma_n -> sqrt(eta)`` (a power of one symbol) is inverted, so that ``eta``
        is shown as ``sigma_n^2``.
        """
        value = resolved.value
        if self.tied and resolved.block in ("m_tilde", "Q_tilde", "R"):
            return  # an alias (m_tilde is m): the symbol keeps the name of what it really is
        if isinstance(value, sp.MatrixBase):
            for i in range(value.rows):
                for j in range(value.cols):
                    sym = value[i, j]
                    if isinstance(sym, sp.Symbol):
                        idx = f"{i + 1}" if resolved.block == "D" else f"{i + 1}{j + 1}"
                        self.display.setdefault(sym, (f"{plain}_{idx}", f"{latex}_{{{idx}}}"))
        elif isinstance(value, sp.Symbol):
            self.display.setdefault(value, (plain, latex))
        elif isinstance(value, sp.Expr) and len(value.free_symbols) == 1:
            (sym,) = value.free_symbols
            coeff, rest = value.as_coeff_Mul()
            base, exp = rest.as_base_exp()
            if base == sym and exp.is_Rational and exp != 0 and coeff.is_Rational and coeff != 0:
                self.display.setdefault(sym, ((sp.Symbol(plain) / coeff) ** (1 / exp), latex))

    def plain_symbols(self) -> dict[sp.Symbol, sp.Expr]:
        """symvae symbol -> its spelling in the user's symbols: a plain Symbol named as the user writes it, or an
        expression in one (``eta -> sigma_n**2``); defaults are symvae's display names."""
        out: dict[sp.Symbol, sp.Expr] = {}
        for sym in list(self.system.element_of) + list(self.system.params):
            shown = self.display.get(sym, (self.system.display_name(sym), None))[0]
            out[sym] = sp.Symbol(shown) if isinstance(shown, str) else shown
        return out

    def latex_symbols(self) -> dict[sp.Symbol, str]:
        """User Symbol -> its LaTeX spelling (for ``sp.latex(..., symbol_names=...)``)."""
        defaults = self.system.latex_names()
        special = {"lam": r"\lambda", "sigma2": r"\sigma^{2}"}
        out = {}
        for sym, shown in self.plain_symbols().items():
            for user in shown.free_symbols:
                if sym in self.display:
                    out[user] = self.display[sym][1]
                elif (self.system.scalar_notation and sym in self.system.element_of
                      and self.system.is_scalar_block(self.system.element_of[sym][0])):
                    out[user] = defaults.get(sym, sym.name).split("_{")[0]
                else:
                    out[user] = defaults.get(sym) or special.get(sym.name) or sp.latex(sp.Symbol(sym.name))
        return out
