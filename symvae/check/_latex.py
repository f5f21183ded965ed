"""A parser for the LaTeX in which theorists write their equations, with exact error positions.

SymPy's own ``parse_latex`` needs an ANTLR runtime pinned to 4.11 or the optional ``lark`` package, cannot do matrix
algebra (its symbols commute) and reports no line numbers; this parser covers the notation of hand derivations and
turns it into a small syntax tree that ``_evaluate`` maps to SymPy scalars or matrices.

Supported (anything else is a parse error with its line and column):

- numbers ``2``, ``0.5`` (exact rationals); letters and Greek letters; accents ``\\tilde{m}``, ``\\hat{Q}``,
  ``\\bar{x}`` (the name becomes ``m_tilde``, ``Q_hat``, ``x_bar``); font wrappers ``\\mathbf{Q}``, ``\\mathrm{diag}``
  (multi-letter names); subscripts as part of a name (``Q_{12}``, ``\\tilde{Q}_{12}``, ``\\tau_{W}``, ``D_1``);
- ``+ - * / \\cdot \\times``, implicit multiplication, ``\\frac{a}{b}`` (also ``\\dfrac``, ``\\tfrac``, ``\\frac12``),
  ``\\sqrt{x}``, ``\\sqrt[n]{x}``, powers ``x^2``, ``x^{-1}``, transposes ``H^T``, ``H^\\top``, ``H^{\\mathsf{T}}``;
- brackets ``( ) [ ] { } \\{ \\}`` with optional ``\\left \\right \\big ...``; spacing commands, ``&``, ``\\label``
  and trailing punctuation are ignored;
- functions ``\\exp \\log \\ln \\sqrt \\tanh \\sinh \\cosh \\sin \\cos`` and ``\\operatorname{diag}``,
  ``\\operatorname{tr}`` (also via ``\\mathrm``/``\\text``), with or without parentheses, ``\\cosh^2 x``;
- left-hand sides ``\\frac{dQ}{dt}``, ``\\frac{\\mathrm{d}Q}{\\mathrm{d}t}``, ``\\frac{d}{dt}Q``, ``\\dot{Q}``,
  ``\\partial_t Q`` (time derivatives), ``\\frac{\\partial f}{\\partial Q}``, ``\\partial_{Q} f`` (partial derivatives,
  saddle-point equations), ``0`` (a residual ``0 = ...``), or a plain name (a definition such as
  ``C = \\rho m^2 + \\eta Q``, or a fixed-point equation ``D = ...`` in the statics setting);
- ``\\tag{Q}`` names the unknown whose equation a residual ``0 = ...`` is (``\\label`` is ignored).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Union

import sympy as sp

from ._source import Source

__all__ = ["Num", "Name", "Unary", "Binary", "Power", "Transpose", "Call", "Lhs", "ParsedEquation",
           "parse_block", "parse_name_text", "FUNCTIONS"]

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
         "kappa", "lambda", "mu", "nu", "xi", "pi", "varpi", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon",
         "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon",
         "Phi", "Psi", "Omega", "ell"}
ACCENTS = {"tilde": "tilde", "widetilde": "tilde", "hat": "hat", "widehat": "hat", "bar": "bar", "overline": "bar",
           "check": "check", "breve": "breve", "vec": "vec", "underline": "under", "mathring": "ring"}
FONTS = {"mathrm", "mathit", "mathbf", "boldsymbol", "bm", "mathsf", "mathcal", "mathbb", "mathnormal", "text",
         "textrm", "textit", "operatorname", "mathtt", "rm", "bf"}
#: Function names (written ``\\exp`` or ``\\operatorname{diag}``); ``diag``/``tr`` act on matrices.
FUNCTIONS = {"exp", "log", "ln", "tanh", "sinh", "cosh", "sin", "cos", "sqrt", "diag", "tr", "Tr", "trace"}
_SKIP = {"\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "\\left", "\\right", "\\big", "\\Big", "\\bigg",
         "\\Bigg", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr", "\\displaystyle",
         "\\textstyle", "\\nonumber", "\\notag", "\\middle", "\\limits"}
_TRANSPOSE = {"T", "\\top", "\\intercal", "\\mathsf{T}", "\\mathrm{T}", "\\rm T", "\\mathbf{T}", "\\mathit{T}",
              "\\textsf{T}", "\\mathtt{T}", "\\sf T"}
_TOKEN = re.compile(r"(?P<space>\s+)|(?P<comment>(?<!\\)%[^\n]*)|(?P<cmd>\\(?:[A-Za-z]+|.))"
                    r"|(?P<number>\d+(?:\.\d+)?|\.\d+)|(?P<letter>[A-Za-z])|(?P<op>[-+*/=()\[\]{}^_,.;:&|!'<>])",
                    re.S)


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # cmd, number, letter, op, end
    text: str
    offset: int  # absolute offset in the file


# ---------------------------------------------------------------------------------------------------- syntax tree
@dataclasses.dataclass(frozen=True)
class Num:
    value: sp.Rational
    offset: int


@dataclasses.dataclass(frozen=True)
class Name:
    """A symbol reference: ``base`` (e.g. ``m_tilde``), optional subscript ``sub`` (``12``), its LaTeX text."""

    base: str
    sub: str | None
    offset: int
    text: str

    @property
    def full(self) -> str:
        return self.base if self.sub is None else f"{self.base}_{self.sub}"


@dataclasses.dataclass(frozen=True)
class Unary:
    op: str  # "-"
    arg: "Node"
    offset: int


@dataclasses.dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/"
    left: "Node"
    right: "Node"
    offset: int


@dataclasses.dataclass(frozen=True)
class Power:
    base: "Node"
    exponent: "Node"
    offset: int


@dataclasses.dataclass(frozen=True)
class Transpose:
    arg: "Node"
    offset: int


@dataclasses.dataclass(frozen=True)
class Call:
    func: str
    arg: "Node"
    offset: int
    power: "Node | None" = None  # \cosh^2 x


Node = Union[Num, Name, Unary, Binary, Power, Transpose, Call]


@dataclasses.dataclass(frozen=True)
class Lhs:
    """A left-hand side: ``kind`` is ``"derivative"`` (d name/dt), ``"partial"`` (d of / d name, ``of`` is the
    differentiated function), ``"zero"`` (a residual ``0 = ...``) or ``"name"`` (a definition / value equation)."""

    kind: str
    name: Name
    offset: int
    text: str
    of: Name | None = None


@dataclasses.dataclass(frozen=True)
class ParsedEquation:
    lhs: Lhs
    rhs: Node
    offset: int
    text: str  # the equation's source text
    tag: str | None = None  # the text of \tag{...}, if any
    tag_offset: int | None = None


# ---------------------------------------------------------------------------------------------------- tokens
def _tokenize(source: Source, start: int, end: int) -> list[Token]:
    text = source.text
    tokens: list[Token] = []
    pos = start
    while pos < end:
        match = _TOKEN.match(text, pos, end)
        if not match:
            raise source.error(pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        value = match.group()
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, value, match.start()))
        pos = match.end()
    # drop spacing / sizing commands, \label{...}, alignment '&', and the '.' of \left. \right.
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "cmd" and tok.text == "\\tag" and i + 1 < len(tokens) and tokens[i + 1].text == "{":
            depth, j = 0, i + 1
            while j < len(tokens):
                depth += {"{": 1, "}": -1}.get(tokens[j].text, 0)
                if depth == 0:
                    break
                j += 1
            if j < len(tokens):
                inner_start = tokens[i + 1].offset + 1
                out.append(Token("tag", text[inner_start:tokens[j].offset].strip(), inner_start))
                i = j + 1
                continue
        if tok.kind == "cmd" and tok.text in ("\\label", "\\tag"):
            i += 1
            if i < len(tokens) and tokens[i].text == "{":
                depth = 0
                while i < len(tokens):
                    depth += {"{": 1, "}": -1}.get(tokens[i].text, 0)
                    i += 1
                    if depth == 0:
                        break
            continue
        if tok.kind == "cmd" and tok.text in _SKIP:
            if tok.text in ("\\left", "\\right", "\\middle") and i + 1 < len(tokens) and tokens[i + 1].text == ".":
                i += 1
            i += 1
            continue
        if tok.kind == "cmd" and tok.text in ("\\begin", "\\end"):  # \begin{aligned} inside a display block
            i += 1
            if i < len(tokens) and tokens[i].text == "{":
                while i < len(tokens) and tokens[i].text != "}":
                    i += 1
                i += 1
            continue
        if tok.text == "&":
            i += 1
            continue
        out.append(tok)
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, source: Source, tokens: list[Token], end: int):
        self.source = source
        tags = [t for t in tokens if t.kind == "tag"]
        self.tag = tags[0] if tags else None
        if len(tags) > 1:
            raise source.error(tags[1].offset, "one \\tag per equation")
        self.tokens = [t for t in tokens if t.kind != "tag"] + [Token("end", "", end)]
        self.i = 0

    # -- helpers
    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, tok: Token, message: str):
        return self.source.error(tok.offset, message)

    def describe(self, tok: Token) -> str:
        return "the end of the equation" if tok.kind == "end" else f"'{tok.text}'"

    def expect(self, text: str, what: str = "") -> Token:
        tok = self.peek()
        if tok.text != text or tok.kind == "end":
            raise self.error(tok, f"expected {text!r}{' ' + what if what else ''}, found {self.describe(tok)}")
        return self.next()

    def text_between(self, start: int, tok_end_index: int) -> str:
        last = self.tokens[max(tok_end_index - 1, 0)]
        return self.source.text[start:last.offset + len(last.text)]

    # -- equations
    def equation(self) -> ParsedEquation:
        first = self.peek()
        self._reject_slash_derivative()
        lhs = self.lhs()
        eq = self.peek()
        if eq.text != "=":
            raise self.error(eq, f"expected '=' after the left-hand side, found {self.describe(eq)}")
        self.next()
        rhs = self.expression()
        while self.peek().text in (",", ".", ";") and self.peek().kind == "op":
            self.next()
        tok = self.peek()
        if tok.kind != "end":
            if tok.text == "=":
                raise self.error(tok, "one equation per display block (or per line of an align block, split by \\\\)")
            raise self.error(tok, f"unexpected {self.describe(tok)}")
        return ParsedEquation(lhs, rhs, first.offset, self.text_between(first.offset, self.i),
                              self.tag.text if self.tag else None, self.tag.offset if self.tag else None)

    def _reject_slash_derivative(self) -> None:
        """``dQ/dt = ...`` or ``\\mathrm{d}Q/\\mathrm{d}t = ...``: say which forms a time derivative takes."""
        start = self.i
        if not self._differential():
            return
        j = self.i
        self.i = start
        while j < len(self.tokens) and self.tokens[j].kind != "end" and self.tokens[j].text != "=":
            tok = self.tokens[j]
            if tok.kind == "op" and tok.text == "/":
                raise self.error(tok, "the slash form dQ/dt is not accepted on the left-hand side; write "
                                      "\\frac{dQ}{dt}, \\frac{\\mathrm{d}Q}{\\mathrm{d}t}, \\frac{d}{dt}Q, "
                                      "\\dot{Q} or \\partial_t Q (statics: \\frac{\\partial f}{\\partial Q} "
                                      "or \\partial_{Q} f)")
            j += 1

    def _differential(self) -> bool:
        """Consume 'd', '\\mathrm{d}', '\\mathrm d', '\\text{d}', '\\operatorname{d}' or '\\partial'."""
        tok = self.peek()
        if tok.kind == "letter" and tok.text == "d":
            self.next()
            return True
        if tok.text == "\\partial":
            self.next()
            return True
        if tok.kind == "cmd" and tok.text[1:] in FONTS:
            if self.peek(1).text == "{" and self.peek(2).text == "d" and self.peek(3).text == "}":
                self.i += 4
                return True
            if self.peek(1).text == "d":
                self.i += 2
                return True
        return False

    def lhs(self) -> Lhs:
        start = self.peek()
        if start.text in ("\\frac", "\\dfrac", "\\tfrac"):
            self.next()
            self.expect("{", "after \\frac")
            if not self._differential():
                raise self.error(self.peek(), "a left-hand side must be a time derivative such as \\frac{dQ}{dt}, "
                                              "or a name being defined")
            name = None
            if self.peek().text != "}":
                name = self.quantity()
            self.expect("}", "closing the numerator of d/dt")
            self.expect("{", "opening the denominator of d/dt")
            partial = self.peek().text == "\\partial"
            if not self._differential():
                raise self.error(self.peek(), "the denominator of a time derivative must be dt")
            if partial and not (self.peek().kind == "letter" and self.peek().text == "t"
                                and self.peek(1).text == "}"):
                variable = self.quantity()
                self.expect("}", "closing the denominator of a partial derivative")
                of = name
                if of is None:
                    of = self.quantity()
                return Lhs("partial", variable, start.offset, self.text_between(start.offset, self.i), of)
            if not (self.peek().kind == "letter" and self.peek().text == "t"):
                raise self.error(self.peek(), "the denominator of a time derivative must be dt")
            self.next()
            self.expect("}", "closing dt")
            if name is None:
                if self.peek().text in ("(", "["):
                    close = {"(": ")", "[": "]"}[self.next().text]
                    name = self.quantity()
                    self.expect(close)
                else:
                    name = self.quantity()
            return Lhs("derivative", name, start.offset, self.text_between(start.offset, self.i))
        if start.text == "\\dot":
            self.next()
            if self.peek().text == "{":
                self.next()
                name = self.name()
                self.expect("}", "closing \\dot{...}")
            else:
                name = self.name(allow_sub=False)
            if self.peek().text == "_" and name.sub is None:
                name = dataclasses.replace(name, sub=self.subscript(name))
            return Lhs("derivative", name, start.offset, self.text_between(start.offset, self.i))
        if start.text == "\\partial":
            self.next()
            self.expect("_", "in \\partial_t")
            if self.peek().text == "{":
                self.next()
                if self.peek().text == "t" and self.peek(1).text == "}":
                    self.i += 2
                else:  # \partial_{Q} f: a partial derivative
                    variable = self.quantity()
                    self.expect("}", "closing the subscript of \\partial")
                    of = self.quantity()
                    return Lhs("partial", variable, start.offset, self.text_between(start.offset, self.i), of)
            elif self.peek().text == "t":
                self.next()
            elif self._starts_name(self.peek()):
                variable = self.name(allow_sub=False)
                of = self.quantity()
                return Lhs("partial", variable, start.offset, self.text_between(start.offset, self.i), of)
            else:
                self.expect("t", "in \\partial_t")
            name = self.quantity()
            return Lhs("derivative", name, start.offset, self.text_between(start.offset, self.i))
        if start.kind == "number" and start.text in ("0", "0.0") and self.peek(1).text == "=":
            self.next()
            return Lhs("zero", Name("0", None, start.offset, "0"), start.offset, "0")
        if self._starts_name(start):
            name = self.name()
            if name.base in FUNCTIONS and name.text.startswith("\\"):
                raise self.error(start, f"cannot define the function name {name.base!r}")
            return Lhs("name", name, start.offset, self.text_between(start.offset, self.i))
        raise self.error(start, f"a left-hand side must be a time derivative (\\frac{{dQ}}{{dt}}, \\dot{{Q}}) or a "
                                f"name being defined, found {self.describe(start)}")

    # -- names
    def quantity(self) -> Name:
        """The differentiated quantity: a name, optionally with an integer power (``\\sigma^2`` names sigma2)."""
        start = self.peek()
        name = self.name()
        if self.peek().text == "^":
            self.next()
            tok = self.peek()
            power = self.superscript()
            if not isinstance(power, Num) or not power.value.is_Integer:
                raise self.error(tok, "only an integer power of a symbol can be differentiated (\\sigma^2 names "
                                      "sigma2)")
            text = self.text_between(start.offset, self.i)
            base = f"{name.base}{power.value}" if name.sub is None else name.base
            sub = name.sub if name.sub is None else f"{name.sub}{power.value}"
            name = Name(base, sub, name.offset, text)
        return name

    def _starts_name(self, tok: Token) -> bool:
        if tok.kind == "letter":
            return True
        if tok.kind != "cmd":
            return False
        word = tok.text[1:]
        return word in GREEK or word in ACCENTS or word in FONTS

    def _name_base(self) -> str:
        """The base of a name: a letter, a Greek letter, an accented or font-wrapped name."""
        tok = self.next()
        if tok.kind == "letter":
            return tok.text
        word = tok.text[1:] if tok.kind == "cmd" else ""
        if word in GREEK:
            return word
        if word in ACCENTS:
            if self.peek().text == "{":
                self.next()
                inner = self.name()
                self.expect("}", f"closing \\{word}{{...}}")
            else:
                inner = self.name(allow_sub=False)
            if inner.sub is not None:
                return f"{inner.base}_{ACCENTS[word]}_{inner.sub}"
            return f"{inner.base}_{ACCENTS[word]}"
        if word in FONTS:
            if self.peek().text != "{":  # \mathrm d, \rm Q: the next symbol
                return self._name_base()
            self.next()
            parts = []
            while self.peek().text != "}":
                t = self.peek()
                if t.kind in ("letter", "number"):
                    parts.append(self.next().text)
                elif t.text == "\\_":
                    self.next()
                    parts.append("_")
                elif self._starts_name(t):
                    parts.append(self.name().full)
                elif t.kind == "end":
                    raise self.error(t, f"unclosed \\{word}{{")
                else:
                    raise self.error(t, f"unexpected {self.describe(t)} inside \\{word}{{...}}")
            self.next()
            if not parts:
                raise self.error(tok, f"empty \\{word}{{}}")
            return "".join(parts)
        raise self.error(tok, f"expected a symbol, found {self.describe(tok)}")

    def subscript(self, name_for_error: Name | None = None) -> str:
        """The subscript after '_': '{12}' -> '12', '{1,2}' -> '12', '{\\tilde W}' -> 'W_tilde', '1' -> '1'."""
        self.expect("_")
        tok = self.peek()
        if tok.text == "{":
            self.next()
            parts: list[str] = []
            plain = False  # whether the last part is a run of letters/digits that the next one extends
            while self.peek().text != "}":
                t = self.peek()
                if t.kind in ("letter", "number"):
                    if plain:
                        parts[-1] += self.next().text
                    else:
                        parts.append(self.next().text)
                    plain = True
                elif t.text == ",":
                    self.next()  # Q_{1,2} is Q_{12}
                elif self._starts_name(t) and t.kind == "cmd":
                    parts.append(self.name().full)
                    plain = False
                elif t.kind == "end":
                    raise self.error(t, "unclosed subscript '{'")
                else:
                    raise self.error(t, f"unexpected {self.describe(t)} in a subscript")
            self.next()
            sub = "_".join(parts)
            if not sub:
                raise self.error(tok, "empty subscript")
            return sub
        if tok.kind == "number":
            if len(tok.text) > 1:
                raise self.error(tok, f"write _{{{tok.text}}}: in LaTeX _{tok.text} subscripts only {tok.text[0]!r}")
            return self.next().text
        if tok.kind == "letter":
            return self.next().text
        if self._starts_name(tok):
            return self.name(allow_sub=False).full
        raise self.error(tok, f"expected a subscript, found {self.describe(tok)}")

    def name(self, allow_sub: bool = True) -> Name:
        start = self.peek()
        base = self._name_base()
        sub = None
        if allow_sub and self.peek().text == "_":
            sub = self.subscript()
        return Name(base, sub, start.offset, self.text_between(start.offset, self.i))

    # -- expressions
    def expression(self) -> Node:
        node = self.product()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.next()
            node = Binary(op.text, node, self.product(), op.offset)
        return node

    def product(self) -> Node:
        node = self.unary()
        return self._product_tail(node)

    def _product_tail(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok.text in ("*", "\\cdot", "\\times", "\\ast"):
                self.next()
                node = Binary("*", node, self.unary(), tok.offset)
            elif tok.text == "/" and tok.kind == "op":
                self.next()
                node = Binary("/", node, self.unary(), tok.offset)
            elif self._starts_atom(tok):
                node = Binary("*", node, self.postfix(), tok.offset)
            else:
                return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-":
            self.next()
            return Unary("-", self.unary(), tok.offset)
        if tok.kind == "op" and tok.text == "+":
            self.next()
            return self.unary()
        return self.postfix()

    def _starts_atom(self, tok: Token) -> bool:
        if tok.kind in ("letter", "number"):
            return True
        if tok.kind == "op":
            return tok.text in ("(", "[", "{")
        if tok.kind == "cmd":
            word = tok.text[1:]
            return (self._starts_name(tok) or word in FUNCTIONS or tok.text in ("\\frac", "\\dfrac", "\\tfrac",
                                                                                  "\\sqrt", "\\{", "\\lbrack"))
        return False

    def postfix(self) -> Node:
        start = self.peek()
        node = self.atom()
        sups: list[tuple[Token, object]] = []
        while self.peek().text in ("^", "_") and self.peek().kind == "op":
            tok = self.peek()
            if tok.text == "_":
                if not isinstance(node, Name) or node.sub is not None or sups:
                    raise self.error(tok, "a subscript is only allowed as part of a symbol's name (Q_{12})")
                node = Name(node.base, self.subscript(node), node.offset, "")
                node = dataclasses.replace(node, text=self.text_between(start.offset, self.i))
            else:
                self.next()
                sups.append((tok, self.superscript()))
        for tok, sup in sups:
            node = Transpose(node, tok.offset) if sup == "T" else Power(node, sup, tok.offset)  # type: ignore
        return node

    def superscript(self):
        """'T' for a transpose, else the exponent node."""
        tok = self.peek()
        if tok.text == "{":
            # transposition markers: {T}, {\top}, {\mathsf{T}}, ...
            j = self.i + 1
            depth, text = 0, ""
            while j < len(self.tokens) and not (self.tokens[j].text == "}" and depth == 0):
                t = self.tokens[j]
                depth += {"{": 1, "}": -1}.get(t.text, 0)
                text += t.text
                j += 1
            if text.replace(" ", "") in {s.replace(" ", "") for s in _TRANSPOSE}:
                self.i = j + 1
                return "T"
            self.next()
            node = self.expression()
            self.expect("}", "closing the exponent")
            return node
        if tok.text in ("T", "\\top", "\\intercal") and tok.kind in ("letter", "cmd"):
            self.next()
            return "T"
        if tok.kind == "number":
            return self._superscript_number("")
        if tok.kind == "op" and tok.text == "-":
            self.next()
            if self.peek().kind == "number":  # x^-1, x^-1.5 (the same rule as x^1, x^1.5; x^-12 needs braces)
                return Unary("-", self._superscript_number("-"), tok.offset)
            return Unary("-", self.superscript_atom(), tok.offset)
        return self.superscript_atom()

    def _superscript_number(self, sign: str) -> Node:
        """A number right after ``^`` (or ``^-``): one digit, or a decimal such as 1.5, taken whole."""
        tok = self.next()
        if len(tok.text) > 1 and "." not in tok.text:
            shown = repr(sign or tok.text[0])
            raise self.error(tok, f"write ^{{{sign}{tok.text}}}: in LaTeX ^{sign}{tok.text} puts only {shown} in the "
                                  f"exponent")
        return Num(sp.Rational(tok.text), tok.offset)

    def superscript_atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            return Num(sp.Rational(tok.text[0]), tok.offset)
        if tok.kind == "letter" or self._starts_name(tok):
            return self.name(allow_sub=False)
        raise self.error(tok, f"expected an exponent, found {self.describe(tok)}")

    def _argument(self, what: str) -> Node:
        """A command argument: '{expr}' or a single token (\\frac12)."""
        tok = self.peek()
        if tok.text == "{":
            self.next()
            node = self.expression()
            self.expect("}", f"closing the argument of {what}")
            return node
        if tok.kind == "number":
            self.next()
            if len(tok.text) > 1:  # \frac12: one digit per argument
                rest = Token("number", tok.text[1:], tok.offset + 1)
                self.tokens.insert(self.i, rest)
            return Num(sp.Rational(tok.text[0]), tok.offset)
        if tok.kind == "letter" or self._starts_name(tok):
            return self.name(allow_sub=False)
        raise self.error(tok, f"expected the argument of {what}, found {self.describe(tok)}")

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            return Num(sp.Rational(tok.text), tok.offset)
        if tok.kind == "op" and tok.text in ("(", "[", "{"):
            self.next()
            node = self.expression()
            self.expect({"(": ")", "[": "]", "{": "}"}[tok.text], f"matching the {tok.text!r} opened at line "
                        f"{self.source.location(tok.offset)[0]}, column {self.source.location(tok.offset)[1]}")
            return node
        if tok.text in ("\\{", "\\lbrack"):
            self.next()
            node = self.expression()
            self.expect({"\\{": "\\}", "\\lbrack": "\\rbrack"}[tok.text])
            return node
        if tok.text in ("\\frac", "\\dfrac", "\\tfrac"):
            self.next()
            num = self._argument(tok.text)
            den = self._argument(tok.text)
            return Binary("/", num, den, tok.offset)
        if tok.text == "\\sqrt":
            self.next()
            index: Node = Num(sp.Integer(2), tok.offset)
            if self.peek().text == "[":
                self.next()
                index = self.expression()
                self.expect("]", "closing the root index")
            arg = self._argument("\\sqrt")
            return Power(arg, Binary("/", Num(sp.Integer(1), tok.offset), index, tok.offset), tok.offset)
        if tok.kind == "cmd" and tok.text[1:] in FUNCTIONS:
            self.next()
            return self._call(tok.text[1:], tok)
        if self._starts_name(tok):
            name = self.name(allow_sub=False)
            if name.base in FUNCTIONS and tok.kind == "cmd" and tok.text[1:] in FONTS and name.sub is None:
                return self._call(name.base, tok)
            return name
        if tok.kind == "end":
            raise self.error(tok, "the equation ends where an expression was expected")
        raise self.error(tok, f"unexpected {self.describe(tok)}")

    def _call(self, func: str, tok: Token) -> Call:
        power = None
        if self.peek().text == "^":
            self.next()
            power = self.superscript()
            if power == "T":
                raise self.error(tok, f"cannot transpose the function {func}")
        if self.peek().text in ("(", "[", "\\{"):
            arg = self.atom()
        elif self._starts_atom(self.peek()):
            arg = self.postfix()
        else:
            raise self.error(self.peek(), f"expected the argument of {func}, found {self.describe(self.peek())}")
        return Call(func, arg, tok.offset, power)  # type: ignore[arg-type]


def parse_block(source: Source, start: int, end: int) -> list[ParsedEquation]:
    """Parse the display block ``source.text[start:end]`` into equations (one, or one per ``\\\\``-separated line).

    Arguments:
        source: the file.
        start, end: character offsets of the block's content (without its delimiters).

    Returns:
        The equations, in order (empty lines of an align block are skipped).

    Raises:
        CheckInputError: a syntax error, located at its line and column.
    """
    tokens = _tokenize(source, start, end)
    pieces: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind == "cmd" and tok.text in ("\\\\", "\\cr"):
            pieces.append([])
        else:
            pieces[-1].append(tok)
    out = []
    for piece in pieces:
        if not [t for t in piece if t.kind != "tag"]:
            continue
        last = [t for t in piece if t.kind != "tag"][-1]
        parser = _Parser(source, piece, last.offset + len(last.text))
        out.append(parser.equation())
    return out


def parse_name_text(text: str, path: str = "<symbols>") -> str:
    """The normalised name of a symbol written in LaTeX: ``\\hat{m}`` -> ``m_hat``, ``d_{1}`` -> ``d_1``.

    Arguments:
        text: a LaTeX symbol (a key of the header's symbol map).
        path: used in error messages.

    Returns:
        The normalised name used to look the symbol up.

    Raises:
        CheckInputError: if ``text`` is not a single symbol.
    """
    source = Source(text, path)
    tokens = _tokenize(source, 0, len(text))
    if not tokens:
        raise source.error(0, "empty symbol in the symbol map")
    parser = _Parser(source, tokens, len(text))
    if not parser._starts_name(parser.peek()):
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text.strip()):
            return text.strip()
        raise source.error(0, f"{text!r} is not a symbol")
    name = parser.name()
    if parser.peek().kind != "end":
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text.strip()):  # a plain multi-letter name, e.g. m_hat
            return text.strip()
        raise source.error(parser.peek().offset, f"{text!r} is not a single symbol")
    return name.full
