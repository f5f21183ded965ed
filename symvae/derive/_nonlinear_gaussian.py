"""Gaussian expectations of non-polynomial functions of jointly Gaussian, zero-mean local fields.

``nonlinear_expectation(expr, fields, covariance)`` evaluates E[expr] where ``expr`` is a sum of terms

    coefficient * prod_a (l_a . x) * prod_i g(k_i . x) * prod_j g'(q_j . x),     g(x) = erf(x / sqrt(2)),

x the fields (zero mean, covariance C) and l, k, q linear forms with field-free coefficients. Rewrite rules, in order:

1. linearity (term by term) and parity: a term odd in x (odd number of linear and g factors) has expectation 0;
2. Gaussian tilt: g'(q.x) = sqrt(2/pi) exp(-(q.x)^2/2) is absorbed into the measure,
   E_C[g'(q.x) F] = sqrt(2/pi) (1 + q'Cq)^(-1/2) E_C'[F],  C' = C - C q q' C / (1 + q'Cq)   (Sherman-Morrison);
3. Stein's lemma for a linear factor, E[(l.x) F] = sum_b (Cl)_b E[d_b F], with d g(k.x) = k g'(k.x) (then rule 2)
   and g'' = -x g' never needed because rule 2 removes g' before differentiation;
4. what is left is E_C[prod_i g(k_i.x)]: 1 for no factor, 0 for an odd number (rule 1), and for two factors
   I2 = (2/pi) arcsin( k1'Ck2 / sqrt((1 + k1'Ck1)(1 + k2'Ck2)) )  (Saad & Solla 1995). Four or more g factors have no
   closed form: ``NoClosedForm`` is raised (the numerical fallback, rule 6, takes over), except that with rule nodes
   four factors of more than two directions are integrated along a covariance path (``PATH_NOTE``): one ``GaussRule1``
   node of ``path_integrand("erf")``, whose integrand is closed form by Price's theorem.

5. ReLU: relu(u) = u theta(u) (theta^k = theta); Stein on a step, d theta(q.x) = q delta(q.x), conditions the measure
   on q.x = 0 with weight (2 pi q'Cq)^(-1/2) (C' = C - C q q' C / q'Cq); what is left, E[prod of <= 3 steps], is an
   orthant probability: 1/2, 1/4 + asin(r)/(2 pi), 1/8 + sum asin(r_ij)/(4 pi), and with rule nodes for four steps
   1/16 plus the path node of ``path_integrand("orthant")`` (Plackett's identity). erf and step factors together, and
   five or more steps, raise ``NoClosedForm``. (Parity zeros are not used when steps are present.)

6. numerical fallback (``quadrature=True``) for a smooth term without closed form: bare field factors are split into
   their regression on the functions' directions and independent remainders (Wick; ``_projected``; Stein's lemma where
   a function's argument is not linear), then a rule written out as an explicit expression of the covariance: the
   1-D trapezoidal rule for one Gaussian direction (``QUADRATURE_NOTE``), and for two directions the symbolic
   Cholesky whitening and a tensor-product trapezoidal rule (``QUADRATURE2_NOTE``; tanh at M = 2, erf on both sides
   of a VAE at M = 1). With rule nodes
   (``nodes=True``), a term of more directions whose extra fields are each independent of all other fields (the
   reparametrisation noise eps_k of a VAE with erf on both sides at M >= 2) is integrated in two levels: the factors
   of each independent field become its expectation over that field, a ``NoiseMean`` node inside the integrand of
   the outer one- or two-direction rule (``NOISE_NOTE``). Other terms of three or more directions raise
   ``NoClosedForm``.

Polynomial terms reduce to Wick's theorem (rule 3 alone). The closed forms of the literature (``closed_forms``) follow
from these rules (I3, I4, J_n = E[prod g'], E[u g(v)], E[g'(u) u v]); ReLU closed forms are given as a table.

References: D. Saad and S. A. Solla, Phys. Rev. E 52, 4225 (1995); S. Goldt et al., NeurIPS 2019, arXiv:1906.08632;
M. Refinetti and S. Goldt, ICML 2022, arXiv:2201.02115; Y. Cho and L. Saul, NeurIPS 2009 (arc-cosine kernels).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from ..errors import DerivationError
from ..model._activations import ErfAct, ErfActPrime, Relu, Step
from ._half_space import half_space_term, noise_kink_means
from ._rule_base import RULE_U, RULE_V, Integrand, NoClosedForm, finer, rule_parameter  # noqa: F401

__all__ = ["rule_node_types", "has_rule_nodes", "ErfAct", "ErfActPrime", "Relu", "Step", "NoClosedForm", "nonlinear_expectation", "closed_forms",
           "gauss_hermite_expectation", "numeric_function", "quadrature_expectation", "quadrature_rule",
           "quadrature_rule2", "rule_expectation", "GaussRule2", "Integrand", "rule_node",
           "rule_nodes_as_sums", "RULE_U", "RULE_V", "rule_parameter", "RULE2_COMPILED_NOTE", "GaussRule1", "QUADRATURE_NOTE",
           "QUADRATURE2_NOTE", "TWO_DIRECTIONS", "NoiseMean", "noise_rule", "NOISE_NOTE", "WITH_NOISE",
           "PATH_NOTE", "PRICE_PATH", "PATH_PAIRS", "path_integrand"]


# ---------------------------------------------------------------------------------------------------- engine
def _linear_form(expr: sp.Expr, index: dict, what: str) -> tuple:
    """Coefficient vector of a linear form in the fields (no constant term)."""
    gens = list(index.keys())
    coeffs = tuple(sp.expand(sp.diff(expr, f)) for f in gens)
    if any(c.free_symbols & index.keys() for c in coeffs) or \
            sp.expand(expr - sum(c * f for c, f in zip(coeffs, gens))) != 0:
        raise NoClosedForm(f"{what} of a non-linear or shifted combination of the fields: {expr}")
    return coeffs


class _Engine:
    def __init__(self, fields: Sequence[sp.Symbol], covariance: Callable[[int, int], sp.Expr], *,
                 quadrature: bool = False, deferred: dict | None = None, nodes: bool = False):
        self.quadrature = quadrature
        self.deferred = deferred
        self.nodes = nodes
        self.stein_depth = 0
        self.used: list[str] = []
        self.fields = list(fields)
        self.index = {f: i for i, f in enumerate(self.fields)}
        n = len(self.fields)
        self.C = [[covariance(min(i, j), max(i, j)) for j in range(n)] for i in range(n)]
        self.cov = functools.lru_cache(maxsize=None)(self._cov)
        self.expect = functools.lru_cache(maxsize=None)(self._expect)

    def _cov(self, a: tuple, b: tuple, tilts: tuple) -> sp.Expr:
        """a'C_t b under the measure changed by ``tilts``: (q, "tilt") a factor exp(-(q.x)^2/2), (q, "cond") the
        conditioning on q.x = 0 (a Dirac factor)."""
        if not tilts:
            return sp.Add(*[a[i] * b[j] * self.C[i][j] for i in range(len(a)) if a[i] != 0
                            for j in range(len(b)) if b[j] != 0])
        (q, kind), rest = tilts[-1], tilts[:-1]
        denominator = self.cov(q, q, rest) + (1 if kind == "tilt" else 0)
        return self.cov(a, b, rest) - self.cov(a, q, rest) * self.cov(q, b, rest) / denominator

    def _expect(self, lin: tuple, gs: tuple, steps: tuple, tilts: tuple) -> sp.Expr:
        """E over the changed measure of prod(lin) * prod g(gs) * prod theta(steps); the measure is normalised."""
        if not steps and (len(lin) + len(gs)) % 2:
            return sp.Integer(0)
        if lin:
            a, rest = lin[0], lin[1:]
            total = sp.Integer(0)
            for j, other in enumerate(rest):
                c = self.cov(a, other, tilts)
                if c != 0:
                    total += c * self.expect(rest[:j] + rest[j + 1:], gs, steps, tilts)
            for i, k in enumerate(gs):
                c = self.cov(a, k, tilts)
                if c != 0:
                    weight = sp.sqrt(2 / sp.pi) / sp.sqrt(1 + self.cov(k, k, tilts))
                    total += c * weight * self.expect(rest, gs[:i] + gs[i + 1:], steps, tilts + ((k, "tilt"),))
            for i, q in enumerate(steps):  # d theta(q.x) = q delta(q.x): condition on q.x = 0
                c = self.cov(a, q, tilts)
                if c != 0:
                    weight = 1 / sp.sqrt(2 * sp.pi * self.cov(q, q, tilts))
                    total += c * weight * self.expect(rest, gs, steps[:i] + steps[i + 1:], tilts + ((q, "cond"),))
            return total
        if gs and steps:
            raise NoClosedForm("E[erf factors times step factors] is not in the table")
        if steps:
            return self._orthant(steps, tilts)
        if not gs:
            return sp.Integer(1)
        if len(gs) == 2:
            k1, k2 = gs
            c12 = self.cov(k1, k2, tilts)
            if c12 == 0:
                return sp.Integer(0)
            c11, c22 = self.cov(k1, k1, tilts), self.cov(k2, k2, tilts)
            return 2 / sp.pi * sp.asin(c12 / sp.sqrt((1 + c11) * (1 + c22)))
        if len(gs) == 4 and self.nodes and len(set(gs)) > QUADRATURE_MAX_DIM:
            return self._price_path(gs, tilts)
        raise NoClosedForm(f"E[prod of {len(gs)} erf factors] has no closed form (use the numerical fallback)")

    def _price_path(self, gs: tuple, tilts: tuple) -> sp.Expr:
        """E[g(y_1) g(y_2) g(y_3) g(y_4)], y_i = k_i.x, as a ``GaussRule1`` node of ``path_integrand("erf")``
        (``PATH_NOTE``)."""
        A = {(i, j): self.cov(gs[i], gs[j], tilts) for i, j in PATH_PAIRS}
        self.used.append(f"E[{' '.join(f'g({_form_text(k, self.fields)})' for k in gs)}]" + PRICE_PATH)
        return GaussRule1(path_integrand("erf"), sp.Integer(1), *[A[p] for p in PATH_PAIRS])

    def _orthant(self, steps: tuple, tilts: tuple) -> sp.Expr:
        """P(q_i.x > 0 for all i) for up to three directions (Sheppard; the three-dimensional orthant formula), four
        on a covariance path."""
        corr = lambda a, b: self.cov(a, b, tilts) / sp.sqrt(self.cov(a, a, tilts) * self.cov(b, b, tilts))  # noqa
        if len(steps) == 1:
            return sp.Rational(1, 2)
        if len(steps) == 2:
            return sp.Rational(1, 4) + sp.asin(corr(*steps)) / (2 * sp.pi)
        if len(steps) == 3:
            a, b, c = steps
            return sp.Rational(1, 8) + (sp.asin(corr(a, b)) + sp.asin(corr(a, c)) + sp.asin(corr(b, c))) / (4 * sp.pi)
        if len(steps) == 4 and self.nodes:
            return self._orthant_path(steps, tilts)
        raise NoClosedForm(f"E[prod of {len(steps)} step factors] (an orthant probability) has no closed form")

    def _orthant_path(self, steps: tuple, tilts: tuple) -> sp.Expr:
        """P(q_i.x > 0, i = 1..4) as 1/16 plus a ``GaussRule1`` node of ``path_integrand("orthant")``
        (``PATH_NOTE``)."""
        A = {(i, j): self.cov(steps[i], steps[j], tilts) for i, j in PATH_PAIRS}
        r = [A[(i, j)] / sp.sqrt(A[(i, i)] * A[(j, j)]) for i, j in PATH_PAIRS if i < j]
        self.used.append(f"P({', '.join(f'{_form_text(q, self.fields)} > 0' for q in steps)})" + PRICE_PATH)
        return sp.Rational(1, 16) + GaussRule1(path_integrand("orthant"), sp.Integer(1), *r)

    def noise_means(self, F: sp.Expr) -> sp.Expr:
        """F with the factors of each field independent of all others replaced by their mean over it: an expression
        (``term``) where those factors hold no other field, else a ``NoiseMean`` node (``_noise_means``)."""
        n = len(self.C)
        factors = list(sp.Mul.make_args(F))
        for e, i in self.index.items():
            if self.C[i][i] == 0 or any(self.C[i][j] != 0 or self.C[j][i] != 0 for j in range(n) if j != i):
                continue
            mine = sp.Mul(*[f for f in factors if f.has(e)])
            if mine != 1 and not mine.free_symbols & (self.index.keys() - {e}):
                mean = sp.Add(*[self.term(t) for t in sp.Add.make_args(sp.expand(mine))])
                factors = [f for f in factors if not f.has(e)] + [mean]
        F = sp.Mul(*factors)
        inner = _noise_means(F, self) if self.nodes and F != 0 else None
        return F if inner is None else inner

    def term(self, term: sp.Expr) -> sp.Expr:
        try:
            return self._closed_term(term)
        except NoClosedForm as exc:
            if not self.quadrature:
                raise
            coeff = sp.Mul(*[f for f in sp.Mul.make_args(term) if not f.free_symbols & self.index.keys()])
            return coeff * _quadrature_term(term / coeff, self, str(exc))

    def _closed_term(self, term: sp.Expr) -> sp.Expr:
        coeff, lin, gs, primes, steps = [], [], [], [], []
        n = len(self.fields)
        for factor in sp.Mul.make_args(term):
            base, exp = factor.as_base_exp()
            if not factor.free_symbols & self.index.keys():
                coeff.append(factor)
                continue
            if not (exp.is_Integer and exp > 0):
                raise NoClosedForm(f"non-integer power of a function of the fields: {factor}")
            k = int(exp)
            if base in self.index:
                unit = tuple(sp.Integer(int(i == self.index[base])) for i in range(n))
                lin += [unit] * k
            elif isinstance(base, ErfAct):
                gs += [_linear_form(base.args[0], self.index, "erf")] * k
            elif isinstance(base, ErfActPrime):
                primes += [_linear_form(base.args[0], self.index, "erf'")] * k
            elif isinstance(base, Relu):  # relu(u) = u theta(u)
                form = _linear_form(base.args[0], self.index, "relu")
                lin += [form] * k
                steps.append(form)
            elif isinstance(base, Step):  # theta^k = theta
                steps.append(_linear_form(base.args[0], self.index, "step"))
            else:
                raise NoClosedForm(f"no rewrite rule for the factor {factor}")
        steps = sorted(set(steps), key=str)
        value = self._tilted(tuple(sorted(lin, key=str)), tuple(sorted(gs, key=str)), tuple(sorted(primes, key=str)),
                             tuple(steps))
        return sp.Mul(*coeff) * value

    def _tilted(self, lin, gs, primes, steps=()) -> sp.Expr:
        if not steps and (len(lin) + len(gs)) % 2:
            return sp.Integer(0)
        weight, tilts = sp.Integer(1), ()
        for q in primes:
            weight *= sp.sqrt(2 / sp.pi) / sp.sqrt(1 + self.cov(q, q, tilts))
            tilts += ((q, "tilt"),)
        return weight * self.expect(lin, gs, steps, tilts)


def nonlinear_expectation(expr: sp.Expr, fields: Sequence[sp.Symbol],
                          covariance: Callable[[int, int], sp.Expr], *, quadrature: bool = False,
                          used: list | None = None, deferred: dict | None = None, nodes: bool = False) -> sp.Expr:
    """E[expr] over zero-mean jointly Gaussian ``fields`` with E[f_i f_j] = covariance(i, j) (i <= j).

    ``expr`` may contain polynomials in the fields, ``ErfAct``, ``ErfActPrime``, ``Relu`` and ``Step`` of linear forms in
    the fields (see the module docstring for the rules). Polynomials reduce to Wick's theorem.

    ``quadrature``: False (default) raises ``NoClosedForm`` for a term without closed form; True replaces such a
    term, if it is smooth and depends on the fields through one direction, by the explicit sum of a numerical rule
    (``quadrature_expectation``), an expression of the covariance that codegen compiles like any other. Such terms
    are approximate (``QUADRATURE_NOTE``); callers must say so (``DerivedSystem.notes``): ``used``, if given, is
    extended by the expectations computed by the rule (as text). ``deferred``, if given (a dict), receives the
    two-direction terms as {(G, S): placeholder symbol} and the value holds the placeholders: SymPy's traversals of
    the 833-node sums (free_symbols, has, expand) would dominate a derivation; ``resolve_deferred`` puts them in.
    ``nodes``: a rule term becomes one ``GaussRule1`` / ``GaussRule2`` node instead (what derived systems use: codegen
    compiles it as a loop over the same 181 / 833 nodes, and its derivatives are nodes again, by Price's theorem).

    Raises:
        NoClosedForm: a term has no closed form under these rules (four or more erf factors or steps, erf times step,
            other functions) and no quadrature was asked for, or the term is not smooth or needs more than
            ``QUADRATURE_MAX_DIM`` Gaussian dimensions.
    """
    engine = _Engine(fields, covariance, quadrature=quadrature, deferred=deferred, nodes=nodes)
    value = sp.Add(*[engine.term(term) for term in sp.Add.make_args(sp.expand(expr))])
    if used is not None:
        used.extend(engine.used)
    return value


# ------------------------------------------------------------------------------ numerical fallback, as an explicit expression
#: at most this many Gaussian directions in one quadrature term (n**dim nodes)
QUADRATURE_MAX_DIM = 2
#: functions the rule cannot integrate reliably (not smooth: algebraic convergence at best)
#: Stein steps in a row before the rest goes to the rule as it is (a derivative may bring back field factors)
_MAX_STEIN = 6
_NOT_SMOOTH = (Relu, Step, sp.Heaviside, sp.Abs, sp.Max, sp.Min, sp.Piecewise, sp.sign, sp.floor, sp.ceiling,
               sp.DiracDelta)


def _quadrature_term(F: sp.Expr, engine: _Engine, why: str) -> sp.Expr:
    """E[F] for a product F of functions of the fields with no closed form: each bare-field factor of F is split into
    its regression on the functions' directions and an independent remainder (``_projected``), or, where a function's
    argument is not linear, Stein's lemma removes it (while F stays differentiable); then the numerical rule in the
    directions F depends on."""
    if F.has(Relu, Step):  # a kink: the noise's in closed form, then a split at the encoder's (``_half_space``)
        reduced = noise_kink_means(F, engine.index, engine.C)
        if reduced is not None:
            engine.used.append(f"E[{F}]" + NOISE_KINK)
            return sp.Add(*[engine.term(t) for t in sp.Add.make_args(sp.expand(reduced))])
        if not any(F.has(f) for f in _NOT_SMOOTH if f not in (Relu, Step)):
            return half_space_term(F, engine, why)
    if any(F.has(f) for f in _NOT_SMOOTH):
        raise NoClosedForm(f"{why}; it is not smooth, so no numerical fallback either")
    projected = _projected(F, engine)
    if projected is not None:
        directions, parts = projected
        return sp.Add(*[c * _rule_term(F, engine, why, directions, G) for c, G in parts])
    fields = engine.index
    calls = [c for c in F.atoms(sp.Function) if c.free_symbols & fields.keys()]
    inside = set().union(*[c.free_symbols & fields.keys() for c in calls])
    # a field inside a call with a non-linear argument (erf(erf(h) + eps)) is a direction of the rule anyway: a bare
    # factor of it stays in the integrand (Stein would only bring it back through g'' = -x g')
    kept = set().union(*[c.free_symbols & fields.keys() for c in calls if not _linear_arguments(c, fields)])
    factors = sorted(sp.Mul.make_args(F), key=lambda f: f.as_base_exp()[0] in inside)  # fields outside calls first
    for factor in factors:  # E[x_a G] = sum_b C_ab E[d_b G] (Stein), once per bare field factor
        base, exp = factor.as_base_exp()
        if base in fields and base not in kept and exp.is_Integer and exp > 0 and engine.stein_depth < _MAX_STEIN:
            rest = sp.expand(F / base)
            total = sp.Integer(0)
            engine.stein_depth += 1
            try:
                for f, i in fields.items():
                    c = engine.C[fields[base]][i]
                    if c != 0:
                        total += c * sp.Add(*[engine.term(t) for t in sp.Add.make_args(sp.expand(sp.diff(rest, f)))])
            finally:
                engine.stein_depth -= 1
            return total
    directions, G = _directions(F, engine)
    return _rule_term(F, engine, why, directions, G)


def _rule_term(F: sp.Expr, engine: _Engine, why: str, directions: list, G: sp.Expr) -> sp.Expr:
    """E[F] = E[G(u)], u_j = directions[j] . x, by the numerical rule (a node, a deferred placeholder or the explicit
    sum), with its independent fields integrated inside where there are more than two directions."""
    used = []
    if len(directions) > QUADRATURE_MAX_DIM and engine.nodes:  # integrate independent fields inside: NoiseMean
        inner = _noise_means(F, engine)
        if inner is not None:
            outer, G_outer = _directions(inner, engine)
            if 1 <= len(outer) <= QUADRATURE_MAX_DIM:
                directions, G = outer, G_outer
                used.append(f"E[{F}]" + WITH_NOISE)
    if len(directions) > QUADRATURE_MAX_DIM:
        raise NoClosedForm(f"{why}; the numerical fallback is limited to {QUADRATURE_MAX_DIM} Gaussian "
                           f"directions, this term needs {len(directions)}")
    S = tuple(tuple(engine.cov(a, b, ()) for b in directions) for a in directions)
    used.append(f"E[{F}]" + (TWO_DIRECTIONS if len(directions) == 2 else ""))
    if engine.nodes:  # one opaque node, compiled as a loop over the rule's nodes
        node = rule_node(G, S)
        if node != 0:  # zero by parity (``_parity_zero``): exact, not numerical
            engine.used.extend(used)
        return node
    engine.used.extend(used)
    if len(directions) == 2 and engine.deferred is not None:  # a placeholder now, the 833-node sum at the end
        return engine.deferred.setdefault((G, S), sp.Dummy(f"E2_{len(engine.deferred)}"))
    return quadrature_expectation(G, S)


_U = tuple(sp.Dummy(f"u{k}", real=True) for k in range(4))


def _projected(F: sp.Expr, engine: _Engine) -> tuple[list, list] | None:
    """(directions, [(c_1, G_1), ...]) with E[F] = sum_k c_k E[G_k(u)] when F is a product of bare field factors and
    functions whose field arguments are linear forms k_1 .. k_d (d <= 2) of the fields, every other field occurrence
    inside those functions; else None. Each bare field is split into its
    regression on u = (k_j . x) and a remainder independent of u: x_a = beta_a . u + r_a, beta_a = S^-1 Cov(u, x_a),
    Cov(r_a, r_b) = C_ab - Cov(x_a, u) S^-1 Cov(u, x_b); so E[prod_a x_a^n_a H(u)] = E_u[H(u) P(u)] with
    P(u) = E_r[prod_a (beta_a . u + r_a)^n_a] by Wick's theorem (``_regression_polynomial``, in symbols for beta and
    Cov(r)), and E[H P] = sum_alpha p_alpha E[u^alpha H(u)]: the coefficients p_alpha (expressions of the
    covariance) stay outside the rule's nodes, so a term that vanishes on a subspace (m = 0) vanishes there
    symbolically, as with Stein's lemma. Exact, and unlike Stein's lemma it differentiates nothing (the derivatives
    of x/(1 + exp(-x)) multiplied out for minutes)."""
    fields = engine.index
    calls = sorted([c for c in F.atoms(sp.Function) if c.free_symbols & fields.keys()], key=sp.default_sort_key)
    if not calls:
        return None
    forms: list[tuple] = []
    replaced = {}
    for call in calls:
        args = []
        for arg in call.args:
            if not arg.free_symbols & fields.keys():
                args.append(arg)
                continue
            if not _linear_arguments(call, fields):
                return None
            form = _linear_form(arg, fields, "argument")
            j, scale = _proportional(form, forms)
            if j is None:
                forms.append(form)
                j, scale = len(forms) - 1, sp.Integer(1)
            if len(forms) > QUADRATURE_MAX_DIM:
                return None
            args.append(scale * _U[j])
        replaced[call] = call.func(*args)
    bare: dict = {}
    rest = []
    for factor in sp.Mul.make_args(F):
        base, exp = factor.as_base_exp()
        if base in fields and exp.is_Integer and exp > 0:
            bare[base] = bare.get(base, 0) + int(exp)
        elif factor.xreplace({c: sp.Dummy() for c in calls}).free_symbols & fields.keys():
            return None  # a field outside the functions in a non-polynomial way
        else:
            rest.append(factor)
    H = sp.Mul(*rest).xreplace(replaced)
    if H.free_symbols & fields.keys():
        return None
    d = len(forms)
    if not bare:
        return forms, [(sp.Integer(1), H)]
    S = sp.Matrix(d, d, lambda i, j: engine.cov(forms[i], forms[j], ()))
    Sinv = S.inv() if d == 2 else sp.Matrix([[1 / S[0, 0]]])
    names = sorted(bare, key=lambda f: fields[f])
    unit = {f: tuple(sp.Integer(int(j == fields[f])) for j in range(len(fields))) for f in names}
    cross = {f: sp.Matrix([engine.cov(unit[f], k, ()) for k in forms]) for f in names}
    values = {}
    for a, f in enumerate(names):
        beta = Sinv * cross[f]
        values.update({_regression_symbol("b", a, j): beta[j] for j in range(d)})
        for b in range(a, len(names)):
            g = names[b]
            values[_regression_symbol("c", a, b)] = engine.cov(unit[f], unit[g], ()) - \
                (cross[f].T * Sinv * cross[g])[0, 0]
    P = _regression_polynomial(tuple(bare[f] for f in names), d)
    parts = []
    for monomial, coefficient in sp.Poly(P, *_U[:d]).terms():
        c = coefficient.xreplace(values)
        if c != 0:
            parts.append((c, sp.Mul(*[_U[j] ** k for j, k in enumerate(monomial)]) * H))
    return forms, parts


def _proportional(form: tuple, forms: list) -> tuple:
    """(j, c) with form = c forms[j] (exp(u) and exp(-u) are one direction: two would make S singular), else
    (None, None)."""
    for j, other in enumerate(forms):
        k = next(i for i, x in enumerate(other) if x != 0)
        c = sp.cancel(form[k] / other[k])
        if c != 0 and all(sp.expand(a - c * b) == 0 for a, b in zip(form, other)):
            return j, c
    return None, None


def _regression_symbol(kind: str, a: int, b: int) -> sp.Symbol:
    """``_b<a>_<j>``: beta_a,j; ``_c<a>_<b>``: Cov(r_a, r_b) (a <= b). Fixed names (never user names, which cannot
    start with ``_``), so integrands agree across processes."""
    return sp.Symbol(f"_{kind}{a}_{b}", real=True)


@functools.lru_cache(maxsize=1024)
def _regression_polynomial(powers: tuple, d: int) -> sp.Expr:
    """E_r[prod_a (sum_j b_aj u_j + r_a)^n_a] over Gaussian r with Cov(r_a, r_b) = c_ab, a polynomial in u_1..u_d
    (``_U``) with the symbols of ``_regression_symbol``, by Wick's theorem."""
    n = len(powers)
    r = [sp.Symbol(f"_r{a}", real=True) for a in range(n)]
    poly = sp.Mul(*[(sp.Add(*[_regression_symbol("b", a, j) * _U[j] for j in range(d)]) + r[a]) ** k
                    for a, k in enumerate(powers)])
    cov = lambda i, j: _regression_symbol("c", min(i, j), max(i, j))  # noqa: E731
    return sp.expand(nonlinear_expectation(poly, r, cov))


def _noise_means(F: sp.Expr, engine: _Engine) -> sp.Expr | None:
    """F with, for each field e independent of all others (the reparametrisation noise of a VAE), the product of the
    factors that contain e replaced by its expectation over e, a ``NoiseMean`` node whose parameters are the other
    symbols of those factors (fields included); None if no field is independent or two independent fields share a
    factor. E[F] = E_outer[prod_e E_e[F_e]] because the e are independent of each other and of the outer fields."""
    C, index = engine.C, engine.index
    n = len(C)
    independent = [f for f, i in index.items() if F.has(f) and C[i][i] != 0
                   and all(C[i][j] == 0 and C[j][i] == 0 for j in range(n) if j != i)]
    if not independent:
        return None
    factors = list(sp.Mul.make_args(F))
    means, taken = [], set()
    for e in independent:
        mine = [k for k, f in enumerate(factors) if f.has(e)]
        if any(factors[k].has(o) for k in mine for o in independent if o != e):
            return None
        taken.update(mine)
        H = sp.Mul(*[factors[k] for k in mine])
        others = sorted(H.free_symbols - {e}, key=sp.default_sort_key)
        scale = sp.sqrt(C[index[e]][index[e]])
        H = H.xreplace({e: scale * RULE_U, **{x: rule_parameter(k + 1) for k, x in enumerate(others)}})
        means.append(NoiseMean(Integrand(H), *others))
    return sp.Mul(*[f for k, f in enumerate(factors) if k not in taken], *means)


def _linear_arguments(call: sp.Expr, fields: dict) -> bool:
    try:
        for arg in call.args:
            if arg.free_symbols & fields.keys():
                _linear_form(arg, fields, "argument")
    except NoClosedForm:
        return False
    return True


def _directions(F: sp.Expr, engine: _Engine) -> tuple[list[tuple], sp.Expr]:
    """The linear forms k_1 .. k_r of the fields that F depends on, and F as a function of u_j = k_j . x.

    The forms are the (linear) arguments of F's functions when every field occurrence is inside one; otherwise the
    fields themselves."""
    fields = engine.index
    forms: list[tuple] = []
    replaced = {}
    linear = True
    for call in sorted(F.atoms(sp.Function), key=sp.default_sort_key):
        if not call.free_symbols & fields.keys() or call in replaced:
            continue
        args = []
        for arg in call.args:
            if not arg.free_symbols & fields.keys():
                args.append(arg)
                continue
            try:
                form = _linear_form(arg, fields, "argument")
            except NoClosedForm:
                linear = False
                break
            if form not in forms:
                if len(forms) == len(_U):  # more directions than any rule takes (the caller says so)
                    linear = False
                    break
                forms.append(form)
            args.append(_U[forms.index(form)])
        if not linear:
            break
        replaced[call] = call.func(*args)
    if linear and len(forms) <= QUADRATURE_MAX_DIM:
        G = F.xreplace(replaced)
        if not G.free_symbols & fields.keys():
            return forms, G
    present = [f for f in engine.fields if F.has(f)]
    units = [tuple(sp.Integer(int(j == fields[f])) for j in range(len(engine.fields))) for f in present]
    return units, F.xreplace({f: _U[k] for k, f in enumerate(present)}) if len(present) <= len(_U) else F


#: the rule: E[G(sigma y)], y ~ N(0, 1), by the trapezoidal rule of step QUADRATURE_STEP on |y| <= QUADRATURE_CUT
QUADRATURE_STEP = sp.Rational(1, 10)
QUADRATURE_CUT = 9
#: what derived systems say of a term computed by the rule
QUADRATURE_NOTE = ("numerical: E[G(u)], u ~ N(0, s^2), by the trapezoidal rule y = k/10, |y| <= 9 (181 nodes, "
                   "weights (1/10) phi(y)); for G analytic within distance d of the real axis the error falls like "
                   "exp(-2 pi d / (0.1 s)) (tanh, d = pi/2: measured below 1e-12 while s <= 2, 1e-10 at s = 3, 1e-7 "
                   "at s = 4, 1e-5 at s = 5), plus exp(-81/2) from the cut")


@functools.lru_cache(maxsize=4)
def quadrature_rule(level: int = 1) -> tuple[tuple[sp.Rational, ...], tuple[sp.Float, ...]]:
    """Nodes y_k = k h (k = 0 .. cut/h) and weights h phi(y_k) at 30 digits of the symmetric trapezoidal rule for
    the standard normal density (a node y > 0 stands for the pair +-y). For a function analytic in a strip around
    the real axis the trapezoidal rule converges geometrically in 1/h (far faster than Gauss-Hermite, whose error
    falls only like exp(-c sqrt(n)) there). ``level`` 2: the finer check rule (``finer``)."""
    import mpmath
    h, cut = finer(QUADRATURE_STEP, sp.Integer(QUADRATURE_CUT), level, sp.Integer(1))
    count = int(cut / h)
    with mpmath.workdps(40):
        hm = mpmath.mpf(h.p) / h.q
        weights = tuple(sp.Float(mpmath.nstr(hm * mpmath.npdf(k * hm), 30), 30) for k in range(count + 1))
    return tuple(k * h for k in range(count + 1)), weights


#: suffix of the ``used`` entries (listed in addition) whose noise kinks were averaged in closed form
NOISE_KINK = " (noise kink in closed form)"
#: suffix of the ``used`` entries computed by the two-direction rule
TWO_DIRECTIONS = " (two directions)"
#: suffix of the ``used`` entries (listed in addition) whose independent fields were integrated inside (``NoiseMean``)
WITH_NOISE = " (independent fields inside)"
#: the two-direction rule: the tensor product of trapezoidal rules of step QUADRATURE2_STEP on the standardised axes,
#: nodes inside the disc |y| <= QUADRATURE2_CUT (the rest of the plane has Gaussian mass exp(-cut^2/2) = 6.7e-10)
QUADRATURE2_STEP = sp.Rational(2, 5)
QUADRATURE2_CUT = sp.Rational(13, 2)
QUADRATURE2_NOTE = ("numerical: E[G(u, v)], (u, v) ~ N(0, S), by whitening u = a y1, v = b y1 + c y2 with the symbolic "
                    "Cholesky factor of S and the tensor-product trapezoidal rule of step 2/5 on (y1, y2), nodes in the "
                    "disc |y| <= 13/2 (833 nodes); for G analytic within distance d of the real axes the error falls "
                    "like exp(-2 pi d / (0.4 s)), s the largest standard deviation (measured against a rule of step "
                    "1/25 and the closed forms: tanh below 1e-8 while s <= 1, 1e-5 at s = 1.5, 2e-4 at s = 2; erf "
                    "products I2 below 3e-9 and I4 below 2e-8 while s <= 1.5), plus 7e-10 from the cut")


#: what derived systems add for the rule terms they hold as ``GaussRule1`` / ``GaussRule2`` nodes
RULE2_COMPILED_NOTE = ("each is one node E_S[G] compiled as a loop over the same nodes (float64, and mpmath with "
                       "nodes and weights at the working precision); its accuracy is that of the rule (above), "
                       "whatever the precision, so digits beyond it are digits of the rule, not of the expectation "
                       "(a certified threshold encloses the model's root: its certificate bounds the rule's error)")


@functools.lru_cache(maxsize=4)
def quadrature_rule2(level: int = 1) -> tuple[tuple[tuple[sp.Rational, sp.Rational], ...], tuple[sp.Float, ...]]:
    """Nodes (y1, y2) = h (i, j) with y1^2 + y2^2 <= cut^2 and weights h^2 phi(y1) phi(y2) at 30 digits (``level``:
    ``finer``)."""
    import mpmath
    h, cut = finer(QUADRATURE2_STEP, QUADRATURE2_CUT, level)
    count = int(cut / h)
    nodes, weights = [], []
    with mpmath.workdps(40):
        hm = mpmath.mpf(h.p) / h.q
        w1 = {k: hm * mpmath.npdf(k * hm) for k in range(-count, count + 1)}
        for i in range(-count, count + 1):
            for j in range(-count, count + 1):
                if (i * i + j * j) * h ** 2 <= cut ** 2:
                    nodes.append((i * h, j * h))
                    weights.append(sp.Float(mpmath.nstr(w1[i] * w1[j], 30), 30))
    return tuple(nodes), tuple(weights)


def _cholesky2(S) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(a, b, c) with [[a, 0], [b, c]] [[a, b], [0, c]] = S, symbolically (S positive definite)."""
    a = sp.sqrt(S[0][0])
    b = S[0][1] / a
    c2 = sp.together(S[1][1] - S[0][1] ** 2 / S[0][0])
    return a, b, sp.sqrt(c2)


def _substitute(G: sp.Expr, values: dict) -> sp.Expr:
    """G with the dummies replaced by ``values``, the tree rebuilt without SymPy's automatic evaluation (833 copies of
    G per two-direction term: evaluating each node's functions and products symbolically would dominate the
    derivation; the generated code evaluates them numerically)."""
    memo: dict = {}

    def walk(e):
        if e in values:
            return values[e]
        if not e.args or not e.free_symbols & values.keys():
            return e
        if e not in memo:
            memo[e] = e.func(*[walk(x) for x in e.args], evaluate=False)
        return memo[e]
    return walk(G)


@functools.lru_cache(maxsize=4096)
def quadrature_expectation(G: sp.Expr, S: tuple[tuple[sp.Expr, ...], ...]) -> sp.Expr:
    """E[G(u)], u ~ N(0, S), S symbolic of size 1 or 2, as the explicit sum of a numerical rule: an expression codegen
    compiles like any other. Size 1: ``quadrature_rule`` over u = s y (accuracy ``QUADRATURE_NOTE``); size 2: the
    Cholesky whitening and ``quadrature_rule2`` (``QUADRATURE2_NOTE``). Tested against Monte Carlo."""
    terms = []
    if len(S) == 1:
        nodes, weights = quadrature_rule()
        s = sp.sqrt(S[0][0])
        for y, w in zip(nodes, weights):
            terms.append(w * (G.xreplace({_U[0]: s * y}) + (G.xreplace({_U[0]: -s * y}) if y != 0 else 0)))
        return sp.Add(*terms)
    if len(S) == 2:
        a, b, c = _cholesky2(S)
        nodes, weights = quadrature_rule2()
        for (y1, y2), w in zip(nodes, weights):
            u1 = sp.Mul(a, y1, evaluate=False) if y1 != 0 else sp.Integer(0)
            u2 = sp.Add(*[sp.Mul(x, y, evaluate=False) for x, y in ((b, y1), (c, y2)) if y != 0 and x != 0],
                        evaluate=False)
            terms.append(sp.Mul(w, _substitute(G, {_U[0]: u1, _U[1]: u2}), evaluate=False))
        return sp.Add(*terms, evaluate=False)
    raise NoClosedForm(f"the numerical rules take one or two Gaussian directions, this term needs {len(S)}")


def resolve_deferred(deferred: dict) -> dict:
    """{placeholder: the explicit rule} for the placeholders of ``nonlinear_expectation(..., deferred=...)``."""
    return {d: quadrature_expectation(G, S) for (G, S), d in deferred.items()}


# ----------------------------------------------------------- four erf or step factors: Price's theorem on a path
#: the covariance entries (i <= j) of the four factors, in the order of the path integrand's parameter slots
PATH_PAIRS = tuple((i, j) for i in range(4) for j in range(i, 4))
#: suffix of the ``used`` entries computed on the covariance path
PRICE_PATH = " (covariance path)"
PATH_NOTE = ("numerical in one dimension: E[g(y1) g(y2) g(y3) g(y4)] and the orthant probability P(y1..4 > 0), "
             "y ~ N(0, A), for which no closed form exists, are integrated along the covariance path A(s) = diag(A) "
             "+ s (A - diag(A)) from independent factors (s = 0: zero, and 1/16) by Price's theorem, dE/ds = "
             "sum_(i<j) A_ij E_s[d_i d_j F], each term in closed form (g: two tilts, then the arcsine I2; steps: two "
             "conditionings, then Sheppard's quadrant, Plackett's identity); the s-integral is E_u[h(Phi(u))], "
             "u ~ N(0, 1), by the 181-node trapezoidal rule of GaussRule1 (A(s) stays positive definite on [0, 1], so "
             "h is analytic near [0, 1]; measured against 25-digit adaptive quadrature of the same path integral: "
             "below 1e-16 for g at covariances of scale 0.4 to 15 and for steps at correlations up to 0.99; "
             "and against Monte Carlo in the tests)")


def _form_text(k: tuple, fields: list) -> str:
    return str(sp.Add(*[c * f for c, f in zip(k, fields)]))


@functools.lru_cache(maxsize=2)
def path_integrand(kind: str) -> Integrand:
    """The integrand h(Phi(u); A) of ``PATH_NOTE``, one for every occurrence, derived by the engine under A(s):

    - ``"erf"``: E[g g g g]; parameters the ten entries of A (``PATH_PAIRS``); h = sum_(i<j) A_ij E_s[g'_i g'_j g_k
      g_l] (the tilts of g'(y_i), g'(y_j), then I2);
    - ``"orthant"``: P(y_1..4 > 0) - 1/16; parameters the six correlations r_ij (i < j); h = sum_(i<j) r_ij
      E_s[delta(y_i) delta(y_j) theta(y_k) theta(y_l)] (the conditionings on y_i = y_j = 0, then Sheppard's
      quadrant probability; Plackett's identity)."""
    pairs = PATH_PAIRS if kind == "erf" else tuple((i, j) for i, j in PATH_PAIRS if i < j)
    a = {p: rule_parameter(k + 1) for k, p in enumerate(pairs)}
    if kind == "orthant":
        a.update({(i, i): sp.Integer(1) for i in range(4)})
    s = (1 + ErfAct(RULE_U)) / 2
    y = [sp.Dummy(f"y{i}", real=True) for i in range(4)]
    path = _Engine(y, lambda i, j: a[(i, j)] if i == j else s * a[(i, j)])
    unit = [tuple(sp.Integer(int(k == i)) for k in range(4)) for i in range(4)]
    h = sp.Integer(0)
    for i, j in PATH_PAIRS:
        if i < j:
            k, l = (m for m in range(4) if m not in (i, j))
            if kind == "erf":
                h += a[(i, j)] * path._tilted((), (unit[k], unit[l]), (unit[i], unit[j]))
            else:  # d theta = delta: the weights (2 pi var)^(-1/2) of the two conditionings, then the quadrant
                first = ((unit[i], "cond"),)
                weight = 1 / sp.sqrt(2 * sp.pi * path.cov(unit[i], unit[i], ()))
                weight /= sp.sqrt(2 * sp.pi * path.cov(unit[j], unit[j], first))
                h += a[(i, j)] * weight * path.expect((), (), (unit[k], unit[l]), first + ((unit[j], "cond"),))
    return Integrand(h)


# ------------------------------------------------------------- the two-direction rule as one node (compiled as a loop)
def _constant_expectation(g: Integrand, params) -> sp.Expr | None:
    """The value of a rule node whose integrand does not depend on the integration variables (0, or the integrand
    with its parameters filled in), else None (the node stays unevaluated)."""
    if g.G == 0:
        return sp.Integer(0)
    if not g.G.has(RULE_U, RULE_V):
        return g.G.xreplace({rule_parameter(k + 1): p for k, p in enumerate(params)})
    return None


@functools.lru_cache(maxsize=65536)
def odd_in(g: Integrand, var: sp.Symbol) -> bool:
    """Whether G(..., -var, ...) = -G(..., var, ...) holds symbolically, the parameter slots held fixed (nested
    ``NoiseMean`` nodes re-evaluate, which folds a negated argument out of them when their noise's reflection allows
    it). Structural after SymPy's automatic evaluation: no expansion, so False means "not shown", never "even"."""
    G = g.G
    return G.has(var) and (G + G.xreplace({var: -var})) == 0


def _parity_zero(g: Integrand, independent: bool) -> bool:
    """Whether a rule node is zero by parity: its integrand is odd in a direction that is independent of the other
    (``independent``: S12 = 0 for ``GaussRule2``, always for ``GaussRule1``), so the reflection of that direction
    alone maps the Gaussian measure to itself. The symmetric rules give this zero only up to rounding; symbolically
    it makes coordinate subspaces fixed by a reflection symmetry (a latent's sign flip with odd activations) visible
    as invariant."""
    return independent and any(odd_in(g, var) for var in (RULE_U, RULE_V))


@functools.lru_cache(maxsize=65536)
def _price_integrand(g: Integrand, dim: int, argindex: int) -> Integrand:
    """The integrand of the derivative of a ``GaussRule<dim>`` node in its argument ``argindex`` (2 .. 4: the
    covariance entries by Price's theorem; then the parameters), cached: the same integrand recurs in the nodes of
    many arguments, and differentiating it (with nested ``NoiseMean`` nodes) dominates a Jacobian."""
    G = g.G
    if argindex == 2:
        dG = sp.diff(G, RULE_U, 2) / 2
    elif dim == 2 and argindex == 3:
        dG = sp.diff(G, RULE_U, RULE_V)
    elif dim == 2 and argindex == 4:
        dG = sp.diff(G, RULE_V, 2) / 2
    else:
        dG = sp.diff(G, rule_parameter(argindex - (4 if dim == 2 else 2)))
    return Integrand(dG)


class GaussRule2(sp.Function):
    """``GaussRule2(Integrand(G), S11, S12, S22, p_1 .. p_k)`` = E[G(u, v; p)], (u, v) ~ N(0, S), by the 833-node rule
    of ``quadrature_rule2`` after the whitening u = a y1, v = b y1 + c y2 (a = sqrt(S11), b = S12 / a,
    c = sqrt(S22 - b^2)): the value of ``quadrature_expectation(G, S)``, kept as one node. Its derivatives are nodes
    again: by Price's theorem dE/dS11 = E[G_uu] / 2, dE/dS12 = E[G_uv] (S symmetric, S12 one argument),
    dE/dS22 = E[G_vv] / 2, and dE/dp_j = E[dG/dq_j] -- exact for the rule up to its quadrature error.
    Codegen (``symvae.codegen._rules``) compiles each integrand as a loop over the nodes."""

    @classmethod
    def eval(cls, g, *args):
        if not isinstance(g, Integrand) or len(args) < 3 + g.n_params:
            raise DerivationError(f"GaussRule2 takes an Integrand, S11, S12, S22 and its {getattr(g, 'n_params', 0)} "
                                  f"parameter(s); got {g}, {args}")
        if _parity_zero(g, args[1] == 0):
            return sp.Integer(0)
        return _constant_expectation(g, args[3:])

    @property
    def integrand(self) -> Integrand:
        return self.args[0]

    def fdiff(self, argindex=1):
        if argindex == 1:
            return sp.Integer(0)  # the integrand is not a variable
        if argindex > len(self.args):
            raise sp.ArgumentIndexError(self, argindex)
        return GaussRule2(_price_integrand(self.args[0], 2, argindex), *self.args[1:])

    def _latex(self, printer):
        G = self.args[0].G.xreplace({rule_parameter(k + 1): p for k, p in enumerate(self.args[4:])})
        S11, S12, S22 = (printer._print(x) for x in self.args[1:4])
        S = rf"\left(\begin{{smallmatrix}} {S11} & {S12} \\ {S12} & {S22} \end{{smallmatrix}}\right)"
        G = printer._print(G.xreplace({RULE_U: sp.Symbol("u"), RULE_V: sp.Symbol("v")}))
        return rf"\mathbb{{E}}_{{{S}}}\left[{G}\right]"


class GaussRule1(sp.Function):
    """``GaussRule1(Integrand(G), S11, p_1 .. p_k)`` = E[G(u; p)], u ~ N(0, S11), by the 181-node rule of
    ``quadrature_rule`` (u = sqrt(S11) y): the value of ``quadrature_expectation(G, ((S11,),))``, kept as one node.
    dE/dS11 = E[G_uu] / 2 (Price), dE/dp_j = E[dG/dq_j]; codegen compiles it as a loop (``symvae.codegen._rules``)."""

    @classmethod
    def eval(cls, g, *args):
        if not isinstance(g, Integrand) or len(args) < 1 + g.n_params or g.G.has(RULE_V):
            raise DerivationError(f"GaussRule1 takes an Integrand of u, S11 and its {getattr(g, 'n_params', 0)} "
                                  f"parameter(s); got {g}, {args}")
        if _parity_zero(g, True):
            return sp.Integer(0)
        return _constant_expectation(g, args[1:])

    def fdiff(self, argindex=1):
        if argindex == 1:
            return sp.Integer(0)
        if argindex > len(self.args):
            raise sp.ArgumentIndexError(self, argindex)
        return GaussRule1(_price_integrand(self.args[0], 1, argindex), *self.args[1:])

    def _latex(self, printer):
        path = _path_latex(self, printer)
        if path is not None:
            return path
        G = self.args[0].G.xreplace({rule_parameter(k + 1): p for k, p in enumerate(self.args[2:])})
        G = printer._print(G.xreplace({RULE_U: sp.Symbol("u")}))
        return rf"\mathbb{{E}}_{{{printer._print(self.args[1])}}}\left[{G}\right]"


def _path_latex(node, printer) -> str | None:
    """A path node (``path_integrand``) in LaTeX as what it computes, its matrix written out, not as its integrand
    (a thousand operations per occurrence): E_A[g(y_1) g(y_2) g(y_3) g(y_4)], or P_R(y_1..4 > 0) - 1/16."""
    g = node.args[0]
    if g not in (path_integrand("erf"), path_integrand("orthant")):
        return None
    erf = g == path_integrand("erf")
    entries = dict(zip(PATH_PAIRS if erf else [p for p in PATH_PAIRS if p[0] < p[1]], node.args[2:]))
    if not erf:
        entries.update({(i, i): sp.Integer(1) for i in range(4)})
    rows = r" \\ ".join(" & ".join(printer._print(entries[(min(i, j), max(i, j))]) for j in range(4))
                         for i in range(4))
    M = rf"\left(\begin{{smallmatrix}} {rows} \end{{smallmatrix}}\right)"
    if erf:
        return rf"\mathbb{{E}}_{{{M}}}\left[g(y_1)\,g(y_2)\,g(y_3)\,g(y_4)\right]"
    return rf"\left(P_{{{M}}}\left[y_1, y_2, y_3, y_4 > 0\right] - \tfrac{{1}}{{16}}\right)"


#: the rule of ``NoiseMean``: E[H(e)], e ~ N(0, 1), by the trapezoidal rule of step NOISE_STEP on |e| <= NOISE_CUT
NOISE_STEP = sp.Rational(1, 4)
NOISE_CUT = sp.Rational(13, 2)
NOISE_NOTE = ("an independent noise field inside a rule's integrand (the reparametrisation noise eps_k of a latent, at "
              "M >= 2 with non-linear encoder and decoder) is integrated first, at each node of the outer rule, by the "
              "trapezoidal rule of step 1/4 on |e| <= 13/2 (53 nodes; error like exp(-2 pi d / (s / 4)) for an "
              "integrand analytic within d of the real axis, s = sqrt(D_k), plus 7e-10 from the cut)")


@functools.lru_cache(maxsize=65536)
def _parameter_integrand(g: Integrand, k: int) -> Integrand:
    """The integrand dH/dq_k of a ``NoiseMean`` derivative (cached: each latent's few H recur in every outer
    integrand)."""
    return Integrand(sp.diff(g.G, rule_parameter(k)))


class NoiseMean(sp.Function):
    """``NoiseMean(Integrand(H), p_1 .. p_k)`` = E[H(e; p)], e ~ N(0, 1): the expectation over a field independent of
    everything else, inside the integrand of an outer ``GaussRule1`` / ``GaussRule2`` node (its parameters may be the
    outer rule's u, v). H is an expression in ``RULE_U`` (standing for e) and parameter slots. Computed by the 53-node
    trapezoidal rule of ``noise_rule`` at each node of the outer rule (``symvae.codegen._rules``); dE/dp_j =
    E[dH/dq_j], a node again."""

    @classmethod
    def eval(cls, g, *args):
        if not isinstance(g, Integrand) or len(args) < g.n_params or g.G.has(RULE_V):
            raise DerivationError(f"NoiseMean takes an Integrand of u and its {getattr(g, 'n_params', 0)} "
                                  f"parameter(s); got {g}, {args}")
        folded = _fold_negated_arguments(g, args)
        if folded is not None:
            return folded
        return _constant_expectation(g, args)

    def fdiff(self, argindex=1):
        if argindex == 1:
            return sp.Integer(0)
        if argindex > len(self.args):
            raise sp.ArgumentIndexError(self, argindex)
        return NoiseMean(_parameter_integrand(self.args[0], argindex - 1), *self.args[1:])

    def _latex(self, printer):
        H = self.args[0].G.xreplace({rule_parameter(k + 1): p for k, p in enumerate(self.args[1:])})
        e = sp.Symbol(r"\epsilon")
        return rf"\mathbb{{E}}_{{\epsilon}}\left[{printer._print(H.xreplace({RULE_U: e}))}\right]"


def _noise_body(g: Integrand, args, e: sp.Symbol) -> sp.Expr:
    """H(e; args): the integrand of a ``NoiseMean`` with its slots filled (its noise variable renamed to ``e``, since
    the arguments may hold the outer rule's variables, which share the names)."""
    return g.G.xreplace({RULE_U: e, **{rule_parameter(k + 1): a for k, a in enumerate(args)}})


def _fold_negated_arguments(g: Integrand, args) -> sp.Expr | None:
    """``NoiseMean(g, args)`` as +-``NoiseMean(g, args')``, args' = args with their negated entries made positive, when
    the noise's reflection e -> -e shows it: E[H(e; args)] = E[H(-e; args)] = +-E[H(e; args')] if H(-e; args') =
    +-H(e; args) symbolically (else None). With odd activations this makes E_e[g(a e + g(-u))] = -E_e[g(a e + g(u))],
    so the parity of an outer integrand in u is visible (``odd_in``)."""
    if not any(a.could_extract_minus_sign() for a in args):
        return None
    flipped = tuple(-a if a.could_extract_minus_sign() else a for a in args)
    e = sp.Dummy("e", real=True)
    body = _noise_body(g, args, e)
    mirrored = _noise_body(g, flipped, -e)
    if body + mirrored == 0:
        return -NoiseMean(g, *flipped)
    if body - mirrored == 0:
        return NoiseMean(g, *flipped)
    return None


@functools.lru_cache(maxsize=4)
def noise_rule(level: int = 1) -> tuple[tuple[sp.Rational, ...], tuple[sp.Float, ...]]:
    """Nodes e_k = k h, |e_k| <= cut, and weights h phi(e_k) at 30 digits (every node listed, both signs; ``level``:
    ``finer``)."""
    import mpmath
    h, cut = finer(NOISE_STEP, NOISE_CUT, level)
    count = int(cut / h)
    with mpmath.workdps(40):
        hm = mpmath.mpf(h.p) / h.q
        weights = tuple(sp.Float(mpmath.nstr(hm * mpmath.npdf(k * hm), 30), 30) for k in range(-count, count + 1))
    return tuple(k * h for k in range(-count, count + 1)), weights


def rule_node(G: sp.Expr, S: tuple[tuple[sp.Expr, ...], ...]) -> sp.Expr:
    """E[G(u)] over one or two directions u ~ N(0, S) as a ``GaussRule1`` / ``GaussRule2`` node: G (in the dummies of
    ``_directions``) is registered with its other symbols moved to parameter slots, which become arguments of the
    node."""
    extra = sorted(G.free_symbols - {_U[0], _U[1]}, key=lambda x: x.name)
    G = G.xreplace({_U[0]: RULE_U, _U[1]: RULE_V, **{x: rule_parameter(k + 1) for k, x in enumerate(extra)}})
    if len(S) == 1:
        return GaussRule1(Integrand(G), S[0][0], *extra)
    return GaussRule2(Integrand(G), S[0][0], S[0][1], S[1][1], *extra)


def rule_nodes_as_sums(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``GaussRule1`` / ``GaussRule2`` node replaced by the explicit 181- / 833-node sum of
    ``quadrature_expectation`` (what derived systems held before the node; for checking the compiled rule against
    it)."""
    def explicit(node):
        g = node.args[0]
        if isinstance(node, GaussRule1):
            G = g.G.xreplace({RULE_U: _U[0], **{rule_parameter(k + 1): p for k, p in enumerate(node.args[2:])}})
            return quadrature_expectation(G, ((node.args[1],),))
        G = g.G.xreplace({RULE_U: _U[0], RULE_V: _U[1],
                          **{rule_parameter(k + 1): p for k, p in enumerate(node.args[4:])}})
        S11, S12, S22 = node.args[1:4]
        return quadrature_expectation(G, ((S11, S12), (S12, S22)))
    return expr.replace(lambda e: isinstance(e, (GaussRule1, GaussRule2)), explicit)


def rule_expectation(expr: sp.Expr, fields: Sequence[sp.Symbol], covariance: Callable[[int, int], sp.Expr]) -> sp.Expr:
    """E[expr] over one or two zero-mean Gaussian ``fields`` by the numerical rule alone (no closed form, no Stein
    step): what derived systems use for such a term. For checking the rules against closed forms and sampling."""
    fields = list(fields)
    if not 1 <= len(fields) <= QUADRATURE_MAX_DIM:
        raise NoClosedForm(f"the numerical rules take one or two Gaussian directions, got {len(fields)}")
    S = tuple(tuple(covariance(min(i, j), max(i, j)) for j in range(len(fields))) for i in range(len(fields)))
    return quadrature_expectation(sp.sympify(expr, strict=True).xreplace(dict(zip(fields, _U))), S)


# ------------------------------------------------------------------------------------------ table of closed forms
def closed_forms() -> dict[str, Callable]:
    """The literature closed forms, functions of covariance entries (numbers or SymPy expressions), g = erf(x/sqrt 2).

    Keys: ``I2(C11, C12, C22)``, ``J(C)`` = E[prod_i g'(u_i)] for a covariance matrix C, ``I3(C)`` = E[g'(u) v g(w)],
    ``I4(C)`` = E[g'(u) g'(v) g(w) g(z)], ``u_g(Cuv, Cvv)`` = E[u g(v)], ``gp_u_v(Cuu, Cuv)`` = E[g'(u) u v],
    ``relu_relu(C11, C12, C22)`` = E[relu(u) relu(v)], ``step_step(C11, C12, C22)`` = E[theta(u) theta(v)],
    ``relu_v(Cuv)`` = E[relu(u) v], ``step_v(Cuu, Cuv)`` = E[theta(u) v]. C is 1-based in the formulas of issue 11.
    """
    pi = sp.pi

    def I2(C11, C12, C22):
        return 2 / pi * sp.asin(C12 / sp.sqrt((1 + C11) * (1 + C22)))

    def J(C):
        C = sp.Matrix(C)
        n = C.shape[0]
        return (2 / pi) ** sp.Rational(n, 2) / sp.sqrt((sp.eye(n) + C).det())

    def I3(C):
        C = sp.Matrix(C)
        lam3 = (1 + C[0, 0]) * (1 + C[2, 2]) - C[0, 2] ** 2
        return 2 / pi * (C[1, 2] * (1 + C[0, 0]) - C[0, 1] * C[0, 2]) / ((1 + C[0, 0]) * sp.sqrt(lam3))

    def I4(C):
        C = sp.Matrix(C)
        c = lambda i, j: C[i - 1, j - 1]  # noqa: E731
        lam4 = (1 + c(1, 1)) * (1 + c(2, 2)) - c(1, 2) ** 2
        lam0 = (lam4 * c(3, 4) - c(2, 3) * c(2, 4) * (1 + c(1, 1)) - c(1, 3) * c(1, 4) * (1 + c(2, 2))
                + c(1, 2) * c(1, 3) * c(2, 4) + c(1, 2) * c(1, 4) * c(2, 3))
        lam1 = lam4 * (1 + c(3, 3)) - c(2, 3) ** 2 * (1 + c(1, 1)) - c(1, 3) ** 2 * (1 + c(2, 2)) \
            + 2 * c(1, 2) * c(1, 3) * c(2, 3)
        lam2 = lam4 * (1 + c(4, 4)) - c(2, 4) ** 2 * (1 + c(1, 1)) - c(1, 4) ** 2 * (1 + c(2, 2)) \
            + 2 * c(1, 2) * c(1, 4) * c(2, 4)
        return 4 / pi ** 2 / sp.sqrt(lam4) * sp.asin(lam0 / sp.sqrt(lam1 * lam2))

    def u_g(Cuv, Cvv):
        return sp.sqrt(2 / pi) * Cuv / sp.sqrt(1 + Cvv)

    def gp_u_v(Cuu, Cuv):
        return sp.sqrt(2 / pi) * Cuv / (1 + Cuu) ** sp.Rational(3, 2)

    def relu_relu(C11, C12, C22):
        det = C11 * C22 - C12 ** 2
        return (sp.sqrt(det) + C12 * (pi / 2 + sp.atan(C12 / sp.sqrt(det)))) / (2 * pi)

    def step_step(C11, C12, C22):
        return sp.Rational(1, 4) + sp.asin(C12 / sp.sqrt(C11 * C22)) / (2 * pi)

    def relu_v(Cuv):
        return Cuv / 2

    def step_v(Cuu, Cuv):
        return Cuv / sp.sqrt(2 * pi * Cuu)

    return {"I2": I2, "J": J, "I3": I3, "I4": I4, "u_g": u_g, "gp_u_v": gp_u_v, "relu_relu": relu_relu,
            "step_step": step_step, "relu_v": relu_v, "step_v": step_v}


# ----------------------------------------------------------------------------------------------- numerical fallback
def _np_erfact(x):
    from scipy.special import erf
    return erf(x / math.sqrt(2.0))


_NUMPY_FUNCTIONS = {"ErfAct": _np_erfact,
                    "ErfActPrime": lambda x: math.sqrt(2.0 / math.pi) * np.exp(-0.5 * np.asarray(x) ** 2),
                    "Relu": lambda x: np.maximum(x, 0.0),
                    "Step": lambda x: (np.asarray(x) > 0).astype(float)}


def numeric_function(expr: sp.Expr, fields: Sequence[sp.Symbol]) -> Callable:
    """``expr`` as a numpy function of the field values (arrays broadcast), with the activations above."""
    from scipy import special
    return sp.lambdify(list(fields), expr, modules=[_NUMPY_FUNCTIONS, {"erf": special.erf}, "numpy"])


def gauss_hermite_expectation(f: Callable, C: np.ndarray, *, order: int = 40) -> tuple[float, float]:
    """Numerical E[f(x)], x ~ N(0, C) (C positive semi-definite, dimension d <= 4), by a tensor Gauss-Hermite rule.

    The fields are x = L y with L L^T = C (eigen-factorisation, so singular C is allowed) and y standard normal; the
    rule of ``order`` nodes per axis is exact for polynomials of degree < 2 order. The stated accuracy is the difference
    with the rule of half the order (an over-estimate for smooth f; a non-smooth f such as ReLU converges only
    algebraically, so the estimate is what to trust).

    Returns:
        (value, error estimate).
    """
    C = np.atleast_2d(np.asarray(C, dtype=float))
    d = C.shape[0]
    if d > 4:
        raise DerivationError(f"the tensor Gauss-Hermite fallback is limited to 4 fields, got {d}")
    lam, U = np.linalg.eigh(0.5 * (C + C.T))
    L = U * np.sqrt(np.clip(lam, 0.0, None))

    def rule(n):
        y, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / math.sqrt(2 * math.pi)
        grids = np.meshgrid(*([y] * d), indexing="ij")
        weights = functools.reduce(np.multiply.outer, [w] * d)
        Y = np.stack([g.ravel() for g in grids])
        X = L @ Y
        return float(np.sum(weights.ravel() * np.broadcast_to(f(*X), weights.size)))

    value = rule(order)
    return value, abs(value - rule(max(order // 2, 2)))


def rule_node_types() -> tuple:
    """Every kind of numerical-rule node a derived system may hold (``GaussRule1/2``, ``NoiseMean`` only inside them,
    and the ReLU nodes of ``_half_space``)."""
    from ._half_space import HalfRule1, HalfRule2, QuadrantRule
    return GaussRule1, GaussRule2, HalfRule1, HalfRule2, QuadrantRule


def has_rule_nodes(exprs) -> bool:
    """Whether any of ``exprs`` holds a numerical-rule node (``rule_node_types``)."""
    nodes = rule_node_types()
    return any(isinstance(e, sp.Basic) and e.has(*nodes) for e in exprs)
