"""The header of a hand-derivation file: setting, model variant, M, M*, and the symbol map.

The header is a small YAML subset (no YAML library is needed, and none of YAML's escape rules apply, so
``"\\tilde{m}"`` means exactly the characters written)::

    setting: dynamics
    variant: base
    M: 1
    M_star: 1
    free_energy: f                            # statics: the name of your free-energy definition (default f)
    symbols: {"\\hat{m}": m_tilde, d: D}      # flow style, or block style:
    symbols:
      \\hat{m}: m_tilde
      d: D

It is found as YAML front matter (between two ``---`` lines at the top of a Markdown or .tex file), as a block of
leading ``%`` comment lines (.tex), as a ``HEADER`` dict or in the module docstring (Python files).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Mapping

from ._source import CheckInputError

__all__ = ["Header", "parse_header_lines", "header_from_mapping"]

_KEY_ALIASES = {"setting": "setting", "variant": "variant", "m": "M", "m_star": "M_star", "m*": "M_star",
                "mstar": "M_star", "m-star": "M_star", "symbols": "symbols", "beta_schedule": "beta_schedule",
                "beta-schedule": "beta_schedule", "free_energy": "free_energy", "free-energy": "free_energy"}
#: Keys a file may carry for its readers; the checker ignores them.
_DOC_KEYS = {"title", "description", "author", "authors", "date", "notes", "reference", "expected"}
_LINE = re.compile(r"^(\s*)(\"[^\"]*\"|'[^']*'|[^:#\s][^:]*?)\s*:(?:\s+(.*?))?\s*$")


@dataclasses.dataclass(frozen=True)
class Header:
    """What a hand-derivation file declares about itself.

    Attributes:
        setting: ``"dynamics"`` or ``"statics"`` (a key of ``symvae.check.SETTINGS``).
        variant: a key of ``symvae.model.VARIANTS``.
        M, M_star: numbers of latents and spikes.
        symbols: the user's symbol -> symvae name or expression (e.g. ``{"\\hat{m}": "m_tilde"}``).
        beta_schedule: optional beta(t) expression passed to ``make_model``.
        free_energy: statics: the name of the definition that is the user's free energy (``f`` if not given).
        lines: header key -> 1-based line in the file (for error messages).
    """

    setting: str
    variant: str
    M: int = 1
    M_star: int = 1
    symbols: Mapping[str, str] = dataclasses.field(default_factory=dict)
    beta_schedule: str | None = None
    lines: Mapping[str, int] = dataclasses.field(default_factory=dict)
    free_energy: str | None = None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _strip_comment(text: str) -> str:
    """Drop a trailing ``# comment`` that is outside quotes and braces (LaTeX keys may contain '#': rare)."""
    quote, depth = None, 0
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "#" and depth <= 0 and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside quotes and braces."""
    parts, quote, depth, start = [], None, 0, 0
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _flow_map(text: str, error) -> dict[str, str]:
    inner = text.strip()[1:-1]
    out: dict[str, str] = {}
    for item in _split_top(inner, ","):
        if not item.strip():
            continue
        key_value = _split_key(item)
        if key_value is None:
            raise error(f"expected 'symbol: name' in the symbol map, got {item.strip()!r}")
        out[key_value[0]] = key_value[1]
    return out


def _split_key(item: str) -> tuple[str, str] | None:
    """'key: value' with a possibly quoted key containing braces/backslashes; None if there is no ':'."""
    item = item.strip()
    if item[:1] in "\"'":
        end = item.find(item[0], 1)
        if end < 0:
            return None
        key, rest = item[1:end], item[end + 1:].lstrip()
        if not rest.startswith(":"):
            return None
        return key, _unquote(rest[1:])
    # unquoted key: the last ': ' (or ':' at the end) separates, LaTeX keys contain no colon
    idx = item.rfind(":")
    if idx <= 0:
        return None
    return item[:idx].strip(), _unquote(item[idx + 1:])


def parse_header_lines(lines: list[tuple[int, str]], path: str) -> Header:
    """Parse header lines (1-based line number, text) into a ``Header``.

    Arguments:
        lines: the header's lines with their line numbers in the file.
        path: the file name for error messages.

    Returns:
        The parsed header.

    Raises:
        CheckInputError: a malformed line, an unknown key, a missing ``setting``/``variant``, or a bad M.
    """
    raw: dict[str, object] = {}
    where: dict[str, int] = {}
    current_map: str | None = None
    for lineno, text in lines:
        text = _strip_comment(text.rstrip())
        if not text.strip():
            continue

        def error(message, _lineno=lineno):
            return CheckInputError(message, path, _lineno)

        indented = text[:1].isspace()
        if indented and current_map is not None:
            kv = _split_key(text)
            if kv is None or not kv[0]:
                raise error(f"expected 'symbol: name' under '{current_map}:', got {text.strip()!r}")
            raw[current_map][kv[0]] = kv[1]  # type: ignore[index]
            continue
        match = _LINE.match(text)
        if not match or indented:
            raise error(f"header lines are 'key: value', got {text.strip()!r}")
        key_text, value = _unquote(match.group(2)), (match.group(3) or "")
        key = _KEY_ALIASES.get(key_text.lower()) or _KEY_ALIASES.get(key_text)
        if key is None and key_text == "M":
            key = "M"
        if key is None:
            if key_text.lower() in _DOC_KEYS:
                current_map = None
                continue
            known = "setting, variant, M, M_star, symbols, beta_schedule, free_energy"
            raise error(f"unknown header key {key_text!r}; known keys: {known}")
        if key in raw:
            raise error(f"header key {key!r} given twice (first on line {where[key]})")
        where[key] = lineno
        current_map = None
        if key == "symbols":
            if not value:
                raw[key], current_map = {}, key
            elif value.startswith("{") and value.endswith("}"):
                raw[key] = _flow_map(value, error)
            else:
                raise error("symbols must be a map: 'symbols: {\"\\hat{m}\": m_tilde}' or indented 'x: name' lines")
        else:
            raw[key] = _unquote(value)
    return header_from_mapping(raw, path, where)


def header_from_mapping(raw: Mapping[str, object], path: str, lines: Mapping[str, int] | None = None) -> Header:
    """Validate a header given as a mapping (from a file's header block or a Python ``HEADER`` dict).

    Arguments:
        raw: key -> value; keys as in ``parse_header_lines`` (aliases such as ``M*`` accepted).
        path: the file name for error messages.
        lines: key -> line number, when known.

    Returns:
        The validated header.

    Raises:
        CheckInputError: unknown key, missing ``setting`` or ``variant``, or M / M_star not a positive integer.
    """
    lines = dict(lines or {})
    values: dict[str, object] = {}
    for key_text, value in raw.items():
        key = _KEY_ALIASES.get(str(key_text).lower()) or ("M" if key_text == "M" else None)
        if key is None:
            if str(key_text).lower() in _DOC_KEYS:
                continue
            raise CheckInputError(f"unknown header key {key_text!r}; known keys: setting, variant, M, M_star, "
                                  "symbols, beta_schedule, free_energy", path, lines.get(str(key_text)))
        values[key] = value

    def need(key):
        if key not in values or values[key] in ("", None):
            raise CheckInputError(f"the header must declare '{key}:' (e.g. '{key}: "
                                  f"{'dynamics' if key == 'setting' else 'base'}')", path)
        return str(values[key]).strip()

    setting, variant = need("setting"), need("variant")
    sizes = {}
    for key in ("M", "M_star"):
        value = values.get(key, 1)
        try:
            number = int(str(value).strip())
        except ValueError:
            number = 0
        if number < 1 or str(value).strip() not in (str(number), f"+{number}"):
            raise CheckInputError(f"{key} must be a positive integer, got {value!r}", path, lines.get(key))
        sizes[key] = number
    symbols = values.get("symbols", {}) or {}
    if not isinstance(symbols, Mapping):
        raise CheckInputError("symbols must be a map from your symbols to symvae names", path, lines.get("symbols"))
    symbols = {str(k).strip(): str(v).strip() for k, v in symbols.items()}
    schedule = values.get("beta_schedule")
    free = values.get("free_energy")
    return Header(setting=setting, variant=variant, M=sizes["M"], M_star=sizes["M_star"], symbols=symbols,
                  beta_schedule=None if schedule in (None, "") else str(schedule), lines=lines,
                  free_energy=None if free in (None, "") else str(free).strip())
