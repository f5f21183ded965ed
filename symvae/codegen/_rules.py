"""Code generation of the Gaussian rule nodes (``GaussRule1``, ``GaussRule2``, ``symvae.derive._nonlinear_gaussian``).

A derived system keeps each two-direction expectation E[G(u, v)], (u, v) ~ N(0, S), as one node
``GaussRule2(Integrand(G), S11, S12, S22, p...)``. Before common-subexpression elimination, the nodes of a generated
function are replaced by symbols ``_r0, _r1 ...`` (``extract``); the nodes with the same arguments (the same S and
parameters: in a VAE with erf on both sides all of them) form a group, evaluated by one generated function that runs
the rule once for all its integrands:

    a = sqrt(S11), b = S12 / a (0 if S11 = S12 = 0: then u = 0), c = sqrt(S22 - b^2);
    for each node (y1, y2) with weight w of ``quadrature_rule2``:
    u = a y1, v = b y1 + c y2,  r_i += w G_i(u, v; p)

(one direction, ``GaussRule1(Integrand(G), S11, p...)``: u = sqrt(S11) y over the 181 node pairs +-y of
``quadrature_rule``), with the integrands' common subexpressions shared and their loop-invariant parts hoisted. The group function exists
in three versions: numba (the nodes and weights as float64 arrays; the sum in node order), numpy (vectorised over the
trailing axes of its arguments, the nodes on one more axis) and mpmath (nodes and weights at the working precision;
the accuracy stays that of the rule, see ``RULE2_COMPILED_NOTE``). A ``NoiseMean`` node inside an integrand (the noise of
one latent, erf on both sides at M >= 2) becomes a symbol ``_n<i>`` computed at every node of the outer rule by an inner
loop over the 53 nodes of ``noise_rule`` (nodes with the same arguments share the loop; numpy: one more axis). The call line carries ``# work N``, the statements
the call executes, which ``_compile.rhs_size`` counts (the plain-Python phase's work budget).

The ReLU nodes of ``symvae.derive._half_space`` use the same groups with other node tables: ``HalfRule1/2`` the same
loop over y1 = psi(k h) > 0 (the half-line rule) [times y2 = j h]; ``QuadrantRule`` a loop over (radius, angle) pairs
of the polar rule, its angles placed in the sector between the rays v = 0 and u = 0 at run time. ``rule_level(2)``
writes every table at half its step (the finer check of a threshold that cannot be certified).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib

import sympy as sp

__all__ = ["RuleGroup", "extract", "rules_source", "call_line", "rule_statements"]

#: statements per node and integrand-free loop overhead (for ``# work``)
_LOOP_OVERHEAD = 6


class RuleGroup:
    """The nodes of one function that share their arguments: ``symbols[i]`` stands for E[``integrands[i]``]."""

    def __init__(self, dim: int, args: tuple, integrands: list, symbols: list, flavour: str = ""):
        self.dim = dim
        self.flavour = flavour
        self.args = args
        self.integrands = integrands
        self.symbols = symbols
        text = "\0".join(sp.srepr(g.G) for g in integrands) + f"\0{len(args)}"
        self.name = f"_rule{self.key}_" + hashlib.sha256(text.encode()).hexdigest()[:16]
        self._body = None

    @property
    def key(self) -> str:
        """The rule: ``1``, ``2`` (full plane), ``h1``, ``h2`` (the half space u > 0 of ``HalfRule1/2``), ``q2`` (the
        quadrant u, v > 0 of ``QuadrantRule``)."""
        return f"{self.flavour}{self.dim}"

    @property
    def n_params(self) -> int:
        return len(self.args) - (1 if self.dim == 1 else 3)

    def body(self):
        """(invariant replacements, per-node replacements, reduced integrands): the CSE of the integrands (ErfAct and
        ErfActPrime written with erf and exp), the replacements not depending on (u, v) hoisted out of the loop.
        ``NoiseMean`` nodes inside the integrands become symbols ``_n<i>``, computed per node by ``inner()``."""
        if self._body is None:
            from ..derive._nonlinear_gaussian import RULE_U, RULE_V, NoiseMean
            integrands = [g.G for g in self.integrands]
            means = sorted(set().union(*[G.atoms(NoiseMean) for G in integrands]), key=sp.default_sort_key)
            by_args: dict[tuple, list] = {}
            for node in means:
                by_args.setdefault(node.args[1:], []).append(node)
            rep, self._inner = {}, []
            for j, (args, members) in enumerate(by_args.items()):
                symbols = [sp.Symbol(f"_n{len(rep) + k}") for k in range(len(members))]
                rep.update(zip(members, symbols))
                self._inner.append(_InnerGroup(j, args, [n.args[0].G for n in members], symbols))
            exprs = _numeric([G.xreplace(rep) for G in integrands])
            replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), order="none")
            replacements, reduced = _lift_power_bases(replacements, reduced)
            variant = {RULE_U, RULE_V, *rep.values()}
            inside, outside = [], []
            for s, v in replacements:
                if v.free_symbols & variant:
                    variant.add(s)
                    inside.append((s, v))
                else:
                    outside.append((s, v))
            self._body = (outside, inside, reduced)
        return self._body

    def inner(self) -> list:
        """The ``_InnerGroup`` s of the ``NoiseMean`` nodes in the integrands (computed at every node of the rule)."""
        self.body()
        return self._inner

    def work(self) -> int:
        """Statements executed by one call (interpreted: the plain-Python phase's measure)."""
        outside, inside, reduced = self.body()
        per_node = _LOOP_OVERHEAD + len(inside) + len(reduced) + sum(g.work() for g in self.inner())
        return len(outside) + len(_nodes(self.key)[2]) * per_node


def _numeric(exprs: list) -> list:
    """ErfAct and ErfActPrime written with erf and exp, numeric constants (sqrt(2/pi), pi^(3/2) ...) as floats: no
    constant work per node."""
    from ..derive._nonlinear_gaussian import ErfAct, ErfActPrime
    exprs = [e.replace(ErfAct, lambda x: sp.erf(x / sp.sqrt(2)))
             .replace(ErfActPrime, lambda x: sp.sqrt(2) * sp.exp(-x ** 2 / 2) / sp.sqrt(sp.pi)) for e in exprs]
    return [e.xreplace({c: c.evalf(17) for c in e.atoms(sp.Pow, sp.Mul, sp.NumberSymbol)
                        if c.is_number and not c.is_Rational}) for e in exprs]


class _InnerGroup:
    """The ``NoiseMean`` nodes of one rule group with the same parameters ``args`` (expressions of u, v and the
    group's parameter slots): ``symbols[i]`` = E_e[``H[i]``], all computed by one loop over ``noise_rule``'s nodes.
    Names: the arguments ``_i<j>_<k>``, the noise ``_e``, the replacements ``_y<j>_<n>``."""

    def __init__(self, j: int, args: tuple, H: list, symbols: list):
        from ..derive._nonlinear_gaussian import RULE_U, rule_parameter
        self.args = args
        self.symbols = symbols
        self.arg_symbols = [sp.Symbol(f"_i{j}_{k}") for k in range(len(args))]
        e = sp.Symbol("_e")
        exprs = _numeric([h.xreplace({RULE_U: e, **{rule_parameter(k + 1): a for k, a in
                                                    enumerate(self.arg_symbols)}}) for h in H])
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(f"_y{j}_"), order="none")
        replacements, reduced = _lift_power_bases(replacements, reduced, prefix=f"_q{j}_")
        variant, self.outside, self.inside = {e}, [], []
        for s, v in replacements:
            if v.free_symbols & variant:
                variant.add(s)
                self.inside.append((s, v))
            else:
                self.outside.append((s, v))
        self.reduced = reduced

    def work(self) -> int:
        return len(self.args) + len(self.outside) + len(_noise_nodes()[0]) * (
            _LOOP_OVERHEAD + len(self.inside) + len(self.reduced))


def _lift_power_bases(replacements, reduced, prefix: str = "_p"):
    """A non-symbol base of a small integer power becomes a replacement of its own (the loop printer writes such a
    power as a product of its base, which must then be a name)."""
    names = iter(sp.numbered_symbols(prefix))
    lifted: dict = {}
    out = []

    def lift(e):
        def visit(x):
            if isinstance(x, sp.Pow) and x.exp.is_Integer and 2 <= abs(int(x.exp)) <= 8 and not x.base.is_Symbol:
                if x.base not in lifted:
                    lifted[x.base] = next(names)
                    out.append((lifted[x.base], x.base))
                return sp.Pow(lifted[x.base], x.exp, evaluate=False)
            return None
        return e.replace(lambda x: visit(x) is not None, visit)

    new_replacements = []
    for sym, value in replacements:
        value = lift(value)
        new_replacements += out
        out.clear()
        new_replacements.append((sym, value))
    new_reduced = []
    for e in reduced:
        e = lift(e)
        new_replacements += out
        out.clear()
        new_reduced.append(e)
    return new_replacements, new_reduced


def extract(exprs) -> tuple[list, list[RuleGroup]]:
    """``exprs`` with each rule node (``GaussRule1/2``, ``HalfRule1/2``, ``QuadrantRule``) replaced by a symbol
    ``_r<i>``, and the groups of those nodes."""
    from ..derive._half_space import HalfRule1, HalfRule2, QuadrantRule
    from ..derive._nonlinear_gaussian import GaussRule1, GaussRule2
    kinds = {GaussRule1: (1, ""), GaussRule2: (2, ""), HalfRule1: (1, "h"), HalfRule2: (2, "h"), QuadrantRule: (2, "q")}
    nodes = _dag_nodes([e for e in exprs if isinstance(e, sp.Basic)], tuple(kinds))
    if not nodes:
        return list(exprs), []
    by_args: dict[tuple, list] = {}
    for node in sorted(nodes, key=sp.default_sort_key):
        by_args.setdefault((kinds[type(node)], node.args[1:]), []).append(node)
    groups, rep = [], {}
    for ((dim, flavour), args), members in by_args.items():
        symbols = [sp.Symbol(f"_r{len(rep) + k}") for k in range(len(members))]
        rep.update(zip(members, symbols))
        groups.append(RuleGroup(dim, args, [n.args[0] for n in members], symbols, flavour))
    return _dag_replace(exprs, rep), groups


def _dag_nodes(exprs, kinds: tuple) -> set:
    """The subexpressions of ``exprs`` that are instances of ``kinds``, each distinct subexpression visited once
    (``atoms`` walks a tree: the shared subtrees of a large Jacobian would be walked again at every use)."""
    found, seen, stack = set(), set(), list(exprs)
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, kinds):
            found.add(e)
        stack.extend(e.args)
    return found


def _dag_replace(exprs, rep: dict) -> list:
    """``[e.xreplace(rep) for e in exprs]``, each distinct subexpression rebuilt once (as ``_dag_nodes``); entries
    that are not SymPy objects are kept."""
    memo: dict = {}

    def walk(e):
        if e in rep:
            return rep[e]
        if not e.args:
            return e
        hit = memo.get(e)
        if hit is None:
            args = tuple(walk(a) for a in e.args)
            hit = memo[e] = e if args == e.args else e.func(*args)
        return hit
    return [walk(e) if isinstance(e, sp.Basic) else e for e in exprs]


def rule_statements(exprs) -> int:
    """Statements the rule loops of ``exprs`` execute per evaluation (``RuleGroup.work``; 0 without rule nodes): the
    cost of the mpmath version, where each costs a few microseconds."""
    return sum(group.work() for group in extract(exprs)[1])


_SUFFIX = {"numba": "", "numpy": "_np", "mpmath": "_mp"}


def call_line(group: RuleGroup, printer, backend: str, indent: str) -> str:
    """The statement assigning the group's symbols, with its ``# work`` count."""
    targets = ", ".join(s.name for s in group.symbols) + ("," if len(group.symbols) == 1 else "")
    args = ", ".join(printer.doprint(a) for a in group.args)
    return f"{indent}{targets} = {group.name}{_SUFFIX[backend]}({args})  # work {group.work()}"


#: the refinement level of the rules written by ``rules_source`` (1: the rules themselves; ``rule_level``)
_LEVEL = [1]


@contextlib.contextmanager
def rule_level(level: int):
    """Generate the rule loops at refinement ``level`` inside this block (``_nonlinear_gaussian.finer``: level 2
    halves every step and moves the cuts out), for the finer check of a threshold that cannot be certified."""
    _LEVEL.append(int(level))
    try:
        yield
    finally:
        _LEVEL.pop()


def _nodes(key: str):
    return _nodes_at(key, _LEVEL[-1])


@functools.lru_cache(maxsize=16)
def _nodes_at(key: str, level: int):
    """(index of y1, index of y2 or None, weights, step) of the rule ``key`` (``RuleGroup.key``), every node listed
    (the one-direction rule's pairs +-y as two nodes). The half rules: y1 = psi(k h1) (``_half_space.half_rule``) and,
    for ``h2``, y2 = j h on the trapezoidal rule of step HALF2_STEP, |y2| <= HALF2_CUT (``half_steps``); ``step`` is
    then (h1, h). ``level``: ``rule_level``."""
    from ..derive._half_space import half_rule, half_steps
    from ..derive._nonlinear_gaussian import (QUADRATURE2_CUT, QUADRATURE2_STEP, QUADRATURE_STEP, finer,
                                              quadrature_rule, quadrature_rule2)
    if key == "q2":  # (radial index, angle index, their weight products, (h1, angles)) -- the angle weights are
        # multiplied by the sector's width at run time
        from ..derive._half_space import quadrant_angles
        h1, (k0, k1), _, _ = half_steps(level)
        _, w1 = half_rule(level)
        xs, xw = quadrant_angles(level)
        ks = list(range(k0, k1 + 1))
        pairs = [(k, j, float(wk) * float(wj)) for j, wj in enumerate(xw) for k, wk in zip(ks, w1)]
        return [k for k, _, _ in pairs], [j for _, j, _ in pairs], [w for _, _, w in pairs], (h1, xs)
    if key.startswith("h"):
        h1, (k0, k1), h, cut2 = half_steps(level)
        ks = list(range(k0, k1 + 1))
        _, w1 = half_rule(level)
        if key == "h1":
            return ks, None, list(w1), (h1, None)
        count = int(cut2 / h)
        import mpmath
        with mpmath.workdps(40):
            w2 = {j: mpmath.mpf(h.p) / h.q * mpmath.npdf(j * mpmath.mpf(h.p) / h.q) for j in range(-count, count + 1)}
            pairs = [(k, j, sp.Float(mpmath.nstr(mpmath.mpf(str(wk)) * w2[j], 30), 30))
                     for k, wk in zip(ks, w1) for j in range(-count, count + 1)]
        return [k for k, _, _ in pairs], [j for _, j, _ in pairs], [w for _, _, w in pairs], (h1, h)
    dim = int(key)
    if dim == 1:
        nodes, weights = quadrature_rule(level)
        h = QUADRATURE_STEP / level
        idx = [int(y / h) for y in nodes]
        full = sorted({-i for i in idx} | set(idx))
        w = dict(zip(idx, weights))
        return full, None, [w[abs(i)] for i in full], h
    nodes, weights = quadrature_rule2(level)
    h, _ = finer(QUADRATURE2_STEP, QUADRATURE2_CUT, level)
    return [int(y1 / h) for y1, _ in nodes], [int(y2 / h) for _, y2 in nodes], list(weights), h


def _noise_nodes():
    """(nodes, weights, step) of ``noise_rule`` (every node listed)."""
    from ..derive._nonlinear_gaussian import NOISE_STEP, noise_rule
    level = _LEVEL[-1]
    nodes, weights = noise_rule(level)
    h = NOISE_STEP / level
    return [int(y / h) for y in nodes], list(weights), h


def _noise_source() -> list[str]:
    idx, weights, h = _noise_nodes()
    return ["# the rule of NoiseMean (symvae.derive._nonlinear_gaussian.noise_rule): nodes h i, h = "
            f"{h}, weights h phi(e)",
            f"_NOISE_Y = numpy.array({idx!r}, dtype=numpy.int64) * {float(h)!r}",
            f"_NOISE_W = numpy.array([{', '.join(repr(float(w)) for w in weights)}])", "_NOISE_MP = {}", "", "",
            "def _noise_mp_nodes():",
            '    """The nodes and weights as mpmath numbers at the working precision (kept per precision)."""',
            "    import mpmath",
            "    prec = mpmath.mp.prec",
            "    if prec not in _NOISE_MP:",
            f"        h = mpmath.mpf({h.p}) / {h.q}",
            f"        _NOISE_MP[prec] = [(k * h, h * mpmath.npdf(k * h)) for k in {idx!r}]",
            "    return _NOISE_MP[prec]", "", ""]


def _hoisted(g, group: RuleGroup) -> bool:
    """An inner group of a two-direction rule whose arguments do not involve v: it is computed once per row y1 of
    the rule (the nodes come row by row), not at every node."""
    from ..derive._nonlinear_gaussian import RULE_V
    return group.dim == 2 and group.flavour != "q" and not any(sp.sympify(a).has(RULE_V) for a in g.args)


def _inner_lines(group: RuleGroup, backend: str, printer, indent: str) -> list[str]:
    """The statements computing the group's ``NoiseMean`` symbols at one node of the outer rule (numpy: at all nodes,
    the noise on one more, last axis). numba and mpmath compute the groups that depend on u alone only when y1
    changes (same values, in the same order: the same bits)."""
    hoisted = [g for g in group.inner() if backend != "numpy" and _hoisted(g, group)]
    lines = []
    if hoisted:
        row = f"_RULE{group.key}_I1[_k]" if backend == "numba" else "_y1"
        lines += [f"{indent}if {row} != _row:", f"{indent}    _row = {row}"]
        lines += _inner_group_lines(hoisted, backend, printer, indent + "    ")
    return lines + _inner_group_lines([g for g in group.inner() if g not in hoisted], backend, printer, indent)


def _row_start(group: RuleGroup, backend: str) -> list[str]:
    """Before the loop: the sentinel of the current row and the hoisted symbols defined (numba types them)."""
    hoisted = [g for g in group.inner() if backend != "numpy" and _hoisted(g, group)]
    if not hoisted:
        return []
    zero = "0.0" if backend == "numba" else "mpmath.mpf(0)"
    first = "1 << 30" if backend == "numba" else "None"
    return [f"    _row = {first}"] + [f"    {n.name} = {zero}" for g in hoisted for n in g.symbols]


def _inner_group_lines(groups, backend: str, printer, indent: str) -> list[str]:
    lines = []
    for g in groups:
        if backend == "numpy":
            lines += [f"{indent}{a.name} = numpy.asarray({printer.doprint(v)}, dtype=float)[..., None]"
                      for a, v in zip(g.arg_symbols, g.args)]
            lines += [f"{indent}_e = _NOISE_Y"]
            lines += [f"{indent}{x.name} = {printer.doprint(v)}" for x, v in g.outside + g.inside]
            lines += [f"{indent}{n.name} = numpy.sum(_NOISE_W * ({printer.doprint(e)}), axis=-1)"
                      for n, e in zip(g.symbols, g.reduced)]
            continue
        zero = "0.0" if backend == "numba" else "mpmath.mpf(0)"
        lines += [f"{indent}{a.name} = {printer.doprint(v)}" for a, v in zip(g.arg_symbols, g.args)]
        lines += [f"{indent}{x.name} = {printer.doprint(v)}" for x, v in g.outside]
        lines += [f"{indent}{n.name} = {zero}" for n in g.symbols]
        if backend == "numba":
            lines += [f"{indent}for _l in range(_NOISE_W.shape[0]):", f"{indent}    _e = _NOISE_Y[_l]",
                      f"{indent}    _we = _NOISE_W[_l]"]
        else:
            lines += [f"{indent}for _e, _we in _noise_mp_nodes():"]
        lines += [f"{indent}    {x.name} = {printer.doprint(v)}" for x, v in g.inside]
        lines += [f"{indent}    {n.name} += _we * ({printer.doprint(e)})" for n, e in zip(g.symbols, g.reduced)]
    return lines


def _nodes_source(keys) -> list[str]:
    lines = []
    for key in sorted(keys):
        if key == "q2":
            lines += _quadrant_nodes_source()
            continue
        if key.startswith("h"):
            lines += _half_nodes_source(key)
            continue
        dim = int(key)
        i1, i2, weights, h = _nodes(key)
        R = f"_RULE{dim}"
        lines += [f"# the rule of {dim} direction(s) (symvae.derive._nonlinear_gaussian.quadrature_rule"
                  f"{dim if dim == 2 else ''}): nodes h i, h = {h}, weights h^{dim} phi(y)",
                  f"{R}_I1 = numpy.array({i1!r}, dtype=numpy.int64)", f"{R}_Y1 = {R}_I1 * {float(h)!r}"]
        if i2 is not None:
            lines += [f"{R}_I2 = numpy.array({i2!r}, dtype=numpy.int64)", f"{R}_Y2 = {R}_I2 * {float(h)!r}"]
        lines += [f"{R}_W = numpy.array([{', '.join(repr(float(w)) for w in weights)}])", f"{R}_MP = {{}}", "", "",
                  f"def _rule{dim}_mp_nodes():",
                  '    """The nodes and weights as mpmath numbers at the working precision (kept per precision)."""',
                  "    import mpmath",
                  "    prec = mpmath.mp.prec",
                  f"    if prec not in {R}_MP:",
                  f"        h = mpmath.mpf({h.p}) / {h.q}",
                  f"        pdf = {{k: h * mpmath.npdf(k * h)",
                  f"               for k in range(int({R}_I1.min()), int({R}_I1.max()) + 1)}}"]
        if i2 is not None:
            lines += [f"        {R}_MP[prec] = [(int(i) * h, int(j) * h, pdf[int(i)] * pdf[int(j)])",
                      f"                           for i, j in zip({R}_I1, {R}_I2)]"]
        else:
            lines += [f"        {R}_MP[prec] = [(int(i) * h, pdf[int(i)]) for i in {R}_I1]"]
        lines += [f"    return {R}_MP[prec]", "", ""]
    return lines


def _half_nodes_source(key: str) -> list[str]:
    """The node tables of a half rule: y1 = psi(k h1) as floats (numba, numpy) and at the working precision
    (mpmath), weights h1 phi(y1) psi'(t) [times h phi(y2)]."""
    i1, i2, weights, (h1, h) = _nodes(key)
    R = f"_RULE{key}"
    from ..derive._half_space import psi
    lines = [f"# the half rule {key} (symvae.derive._half_space.half_rule): y1 = exp(t - exp(-t)), t = k {h1}"
             + (f"; y2 = j {h}" if i2 is not None else ""),
             f"{R}_I1 = numpy.array({i1!r}, dtype=numpy.int64)",
             f"{R}_Y1 = numpy.array([{', '.join(repr(psi(k * float(h1))) for k in i1)}])"]
    if i2 is not None:
        lines += [f"{R}_I2 = numpy.array({i2!r}, dtype=numpy.int64)", f"{R}_Y2 = {R}_I2 * {float(h)!r}"]
    lines += [f"{R}_W = numpy.array([{', '.join(repr(float(w)) for w in weights)}])", f"{R}_MP = {{}}", "", "",
              f"def _rule{key}_mp_nodes():",
              '    """The nodes and weights as mpmath numbers at the working precision (kept per precision)."""',
              "    import mpmath",
              "    prec = mpmath.mp.prec",
              f"    if prec not in {R}_MP:",
              f"        h1 = mpmath.mpf({h1.p}) / {h1.q}",
              "        half = {}",
              f"        for k in sorted(set(int(i) for i in {R}_I1)):",
              "            t = k * h1",
              "            y = mpmath.exp(t - mpmath.exp(-t))",
              "            half[k] = (y, h1 * mpmath.npdf(y) * y * (1 + mpmath.exp(-t)))"]
    if i2 is not None:
        lines += [f"        h = mpmath.mpf({h.p}) / {h.q}",
                  f"        {R}_MP[prec] = [(half[int(i)][0], int(j) * h,",
                  "                         half[int(i)][1] * h * mpmath.npdf(int(j) * h))",
                  f"                        for i, j in zip({R}_I1, {R}_I2)]"]
    else:
        lines += [f"        {R}_MP[prec] = [half[int(i)] for i in {R}_I1]"]
    lines += [f"    return {R}_MP[prec]", "", ""]
    return lines


def _quadrant_nodes_source() -> list[str]:
    """The tables of the quadrant rule: radii r = psi(k h1) with weights h1 phi(r) psi'(t) r / sqrt(2 pi) (the half
    rule's times r / sqrt(2 pi): the radial measure r e^(-r^2/2) dr over the angle's 2 pi), Gauss-Legendre angles
    x_j on (0, 1) with weights summing to one, and the flattened (radius, angle) pairs; mpmath at the working
    precision."""
    import math as _math
    from ..derive._half_space import QUADRANT_DEGREE, psi
    ks, js, _, (h1, xs) = _nodes("q2")
    from ..derive._half_space import half_rule
    level = _LEVEL[-1]
    _, w1 = half_rule(level)
    from ..derive._half_space import quadrant_angles
    _, xw = quadrant_angles(level)
    k0 = min(ks)
    radii = [psi(k * float(h1)) for k in sorted(set(ks))]
    rw = [float(w) * r / _math.sqrt(2 * _math.pi) for w, r in zip(w1, radii)]
    R = "_RULEq2"
    return [f"# the quadrant rule (symvae.derive._half_space.QuadrantRule): radii exp(t - exp(-t)), t = k {h1}; "
            f"{len(xs)} Gauss-Legendre angles",
            f"{R}_R = numpy.array([{', '.join(repr(r) for r in radii)}])",
            f"{R}_RW = numpy.array([{', '.join(repr(w) for w in rw)}])",
            f"{R}_X = numpy.array([{', '.join(repr(float(x)) for x in xs)}])",
            f"{R}_XW = numpy.array([{', '.join(repr(float(w)) for w in xw)}])",
            f"{R}_I = numpy.array({[k - k0 for k in ks]!r}, dtype=numpy.int64)",
            f"{R}_J = numpy.array({js!r}, dtype=numpy.int64)",
            f"{R}_W = {R}_I  # the node count (the weights are formed at run time)",
            f"{R}_MP = {{}}", "", "",
            "def _ruleq2_mp_nodes():",
            '    """(angles, radii) as mpmath (node, weight) pairs at the working precision (kept per precision)."""',
            "    import mpmath",
            "    from mpmath.calculus.quadrature import GaussLegendre",
            "    prec = mpmath.mp.prec",
            f"    if prec not in {R}_MP:",
            f"        h1 = mpmath.mpf({h1.p}) / {h1.q}",
            "        radii = []",
            f"        for k in range({min(ks)}, {max(ks) + 1}):",
            "            t = k * h1",
            "            y = mpmath.exp(t - mpmath.exp(-t))",
            "            w = h1 * mpmath.npdf(y) * y * (1 + mpmath.exp(-t))",
            "            radii.append((y, w * y / mpmath.sqrt(2 * mpmath.pi)))",
            f"        angles = [((x + 1) / 2, w / 2) for x, w in GaussLegendre(mpmath.mp).calc_nodes("
            f"{QUADRANT_DEGREE + level - 1}, prec)]",
            f"        {R}_MP[prec] = (angles, radii)",
            f"    return {R}_MP[prec]", "", ""]


def _printers():
    from sympy.printing.numpy import SciPyPrinter
    from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

    class LoopPrinter(PythonCodePrinter):
        """Small integer powers as the products numba computes for them (``_jit.numba_power``: square and
        multiply), so the plain-Python load of the loop needs no ``numba_power`` call per node and stays bitwise
        equal to the compiled one."""

        def _print_Pow(self, expr, rational=False):
            base, exp = expr.as_base_exp()
            if exp.is_Integer and 2 <= abs(int(exp)) <= 8:
                e, res, val = abs(int(exp)), None, f"({self._print(base)})"
                while e:
                    if e & 1:
                        res = val if res is None else f"({res} * {val})"
                    e >>= 1
                    val = f"({val} * {val})" if e else val
                return f"(1.0 / {res})" if int(exp) < 0 else res
            return super()._print_Pow(expr, rational=rational)

    options = {"fully_qualified_modules": True}
    return {"numba": LoopPrinter(options), "numpy": SciPyPrinter(options), "mpmath": MpmathPrinter(options)}


def _quadrant_function(group: RuleGroup, backend: str, printer) -> list[str]:
    """The loop of a quadrant group: the sector between the rays v = 0 (angle t0 = -atan(b/c) in the whitened plane)
    and u = 0 (angle pi/2), of width om; node (r_i, x_j): u = r_i a cos(t), v = r_i (b cos(t) + c sin(t)),
    t = t0 + om x_j, weight om xw_j rw_i."""
    from ..derive._nonlinear_gaussian import rule_parameter
    outside, inside, reduced = group.body()
    params = [rule_parameter(k + 1).name for k in range(group.n_params)]
    args = ", ".join(["s11", "s12", "s22", *params])
    R = "_RULEq2"
    acc = [f"_acc{i}" for i in range(len(group.integrands))]
    ret = ", ".join(acc) + ("," if len(acc) == 1 else "")
    if backend == "numba":
        lines = ['@njit(cache=True, error_model="numpy")', f"def {group.name}({args}):",
                 "    _a = math.sqrt(s11)",
                 "    _b = s12 / _a if _a != 0.0 else (0.0 if s12 == 0.0 else math.nan)",
                 "    _c = math.sqrt(s22 - _b * _b)",
                 "    _t0 = -math.atan2(_b, _c)",
                 "    _om = 0.5 * math.pi - _t0",
                 f"    _du = numpy.empty({R}_X.shape[0])", f"    _dv = numpy.empty({R}_X.shape[0])",
                 f"    _wj = numpy.empty({R}_X.shape[0])",
                 f"    for _j in range({R}_X.shape[0]):",
                 f"        _th = _t0 + _om * {R}_X[_j]",
                 "        _du[_j] = _a * math.cos(_th)",
                 "        _dv[_j] = _b * math.cos(_th) + _c * math.sin(_th)",
                 f"        _wj[_j] = _om * {R}_XW[_j]"]
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
        lines += [f"    {a} = 0.0" for a in acc]
        lines += [f"    for _k in range({R}_I.shape[0]):", f"        _i = {R}_I[_k]", f"        _j = {R}_J[_k]",
                  f"        u_rule = {R}_R[_i] * _du[_j]", f"        v_rule = {R}_R[_i] * _dv[_j]",
                  f"        _w = _wj[_j] * {R}_RW[_i]"]
        lines += _inner_lines(group, backend, printer, "        ")
        lines += [f"        {s.name} = {printer.doprint(v)}" for s, v in inside]
        lines += [f"        {a} += _w * ({printer.doprint(e)})" for a, e in zip(acc, reduced)]
        return lines + [f"    return {ret}", "", ""]
    if backend == "numpy":
        lines = [f"def {group.name}_np({args}):",
                 '    """Vectorised over the trailing axes of the arguments (the nodes on one more, last axis)."""',
                 "    import scipy.special  # noqa: F401",
                 *[f"    {x} = numpy.asarray({x}, dtype=float)[..., None]" for x in ["s11", "s12", "s22", *params]],
                 "    _a = numpy.sqrt(s11)",
                 "    with numpy.errstate(divide='ignore', invalid='ignore'):",
                 "        _b = numpy.where(_a != 0.0, s12 / _a, numpy.where(s12 == 0.0, 0.0, numpy.nan))",
                 "    _c = numpy.sqrt(s22 - _b * _b)",
                 "    _t0 = -numpy.arctan2(_b, _c)",
                 "    _om = 0.5 * numpy.pi - _t0",
                 f"    _th = _t0 + _om * {R}_X",
                 "    _du = _a * numpy.cos(_th)",
                 "    _dv = _b * numpy.cos(_th) + _c * numpy.sin(_th)",
                 f"    _wj = _om * {R}_XW",
                 f"    u_rule = {R}_R[{R}_I] * _du[..., {R}_J]",
                 f"    v_rule = {R}_R[{R}_I] * _dv[..., {R}_J]",
                 f"    _w = _wj[..., {R}_J] * {R}_RW[{R}_I]"]
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
        lines += _inner_lines(group, backend, printer, "    ")
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in inside]
        lines += [f"    {a} = numpy.sum(_w * ({printer.doprint(e)}), axis=-1)" for a, e in zip(acc, reduced)]
        return lines + [f"    return {ret}", "", ""]
    lines = [f"def {group.name}_mp({args}):",
             '    """At the working precision; the accuracy is that of the rule, whatever the precision."""',
             "    import mpmath",
             "    _a = mpmath.sqrt(s11)",
             "    _b = s12 / _a if _a != 0 else (mpmath.mpf(0) if s12 == 0 else mpmath.nan)",
             "    _c = mpmath.sqrt(s22 - _b * _b)",
             "    _t0 = -mpmath.atan2(_b, _c)",
             "    _om = mpmath.pi / 2 - _t0"]
    lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
    lines += [f"    {a} = mpmath.mpf(0)" for a in acc]
    lines += ["    _angles, _radii = _ruleq2_mp_nodes()",
              "    for _x, _xw in _angles:",
              "        _th = _t0 + _om * _x",
              "        _cu = _a * mpmath.cos(_th)",
              "        _cv = _b * mpmath.cos(_th) + _c * mpmath.sin(_th)",
              "        _wj = _om * _xw",
              "        for _r, _rw in _radii:",
              "            u_rule = _r * _cu",
              "            v_rule = _r * _cv",
              "            _w = _wj * _rw"]
    lines += _inner_lines(group, backend, printer, "            ")
    lines += [f"            {s.name} = {printer.doprint(v)}" for s, v in inside]
    lines += [f"            {a} += _w * ({printer.doprint(e)})" for a, e in zip(acc, reduced)]
    return lines + [f"    return {ret}", "", ""]


def _function(group: RuleGroup, backend: str, printer) -> list[str]:
    from ..derive._nonlinear_gaussian import rule_parameter
    if group.flavour == "q":
        return _quadrant_function(group, backend, printer)
    outside, inside, reduced = group.body()
    params = [rule_parameter(k + 1).name for k in range(group.n_params)]
    cov = ["s11", "s12", "s22"] if group.dim == 2 else ["s11"]
    args = ", ".join([*cov, *params])
    R = f"_RULE{group.key}"
    n = len(group.integrands)
    acc = [f"_acc{i}" for i in range(n)]
    ret = ", ".join(acc) + ("," if n == 1 else "")
    lines = []
    if backend == "numba":
        lines += ['@njit(cache=True, error_model="numpy")', f"def {group.name}({args}):",
                  "    _a = math.sqrt(s11)"]
        if group.dim == 2:
            lines += ["    _b = s12 / _a if _a != 0.0 else (0.0 if s12 == 0.0 else math.nan)  # u = 0 when S11 = 0",
                      "    _c = math.sqrt(s22 - _b * _b)"]
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
        lines += [f"    {a} = 0.0" for a in acc]
        lines += _row_start(group, backend)
        lines += [f"    for _k in range({R}_W.shape[0]):", f"        _y1 = {R}_Y1[_k]", "        u_rule = _a * _y1"]
        if group.dim == 2:
            lines += [f"        v_rule = _b * _y1 + _c * {R}_Y2[_k]"]
        lines += [f"        _w = {R}_W[_k]"]
        lines += _inner_lines(group, backend, printer, "        ")
        lines += [f"        {s.name} = {printer.doprint(v)}" for s, v in inside]
        lines += [f"        {a} += _w * ({printer.doprint(e)})" for a, e in zip(acc, reduced)]
        lines += [f"    return {ret}"]
    elif backend == "numpy":
        lines += [f"def {group.name}_np({args}):",
                  '    """Vectorised over the trailing axes of the arguments (the nodes on one more, last axis)."""',
                  "    import scipy.special  # noqa: F401",
                  *[f"    {x} = numpy.asarray({x}, dtype=float)[..., None]" for x in [*cov, *params]],
                  "    _a = numpy.sqrt(s11)", f"    u_rule = _a * {R}_Y1"]
        if group.dim == 2:
            lines += ["    with numpy.errstate(divide='ignore', invalid='ignore'):",
                      "        _b = numpy.where(_a != 0.0, s12 / _a, numpy.where(s12 == 0.0, 0.0, numpy.nan))",
                      "    _c = numpy.sqrt(s22 - _b * _b)", f"    v_rule = _b * {R}_Y1 + _c * {R}_Y2"]
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
        lines += _inner_lines(group, backend, printer, "    ")
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in inside]
        lines += [f"    {a} = numpy.sum({R}_W * ({printer.doprint(e)}), axis=-1)" for a, e in zip(acc, reduced)]
        lines += [f"    return {ret}"]
    else:
        lines += [f"def {group.name}_mp({args}):",
                  '    """At the working precision; the accuracy is that of the rule, whatever the precision."""',
                  "    import mpmath",
                  "    _a = mpmath.sqrt(s11)"]
        if group.dim == 2:
            lines += ["    _b = s12 / _a if _a != 0 else (mpmath.mpf(0) if s12 == 0 else mpmath.nan)",
                      "    _c = mpmath.sqrt(s22 - _b * _b)"]
        lines += [f"    {s.name} = {printer.doprint(v)}" for s, v in outside]
        lines += [f"    {a} = mpmath.mpf(0)" for a in acc]
        lines += _row_start(group, backend)
        if group.dim == 2:
            lines += [f"    for _y1, _y2, _w in _rule{group.key}_mp_nodes():", "        u_rule = _a * _y1",
                      "        v_rule = _b * _y1 + _c * _y2"]
        else:
            lines += [f"    for _y1, _w in _rule{group.key}_mp_nodes():", "        u_rule = _a * _y1"]
        lines += _inner_lines(group, backend, printer, "        ")
        lines += [f"        {s.name} = {printer.doprint(v)}" for s, v in inside]
        lines += [f"        {a} += _w * ({printer.doprint(e)})" for a, e in zip(acc, reduced)]
        lines += [f"    return {ret}"]
    return lines + ["", ""]


def rules_source(specs) -> list[str]:
    """Module-level source of the rule groups of ``specs`` (each ``FunctionSpec`` has ``rule_groups``), for the
    backends each spec asks for; empty if no spec has a rule node."""
    wanted: dict[str, tuple[RuleGroup, set]] = {}
    for spec in specs:
        for group in spec.rule_groups():
            wanted.setdefault(group.name, (group, set()))[1].update(spec.backends)
    if not wanted:
        return []
    printers = _printers()
    lines = _nodes_source({group.key for group, _ in wanted.values()})
    if any(group.inner() for group, _ in wanted.values()):
        lines += _noise_source()
    for group, backends in wanted.values():
        for backend in ("numba", "numpy", "mpmath"):
            if backend in backends:
                lines += _function(group, backend, printers[backend])
    return lines
