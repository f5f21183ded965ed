"""Tests of symvae.check (``symvae check`` / ``symvae diff``): verdicts, parse errors, symbol maps, perturbations."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hand_derivation import hand_rhs
from symvae.check import (CheckInputError, PointSampler, check_file, compare, diff_variants, get_setting,
                          read_hand_derivation)
from symvae.model import SymbolTable, make_model
from helpers import run_cli as run
from helpers import run_cli_json as run_json

HAND = Path(__file__).resolve().parents[1] / "derivations" / "hand"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = "---\nsetting: dynamics\nvariant: {variant}\nM: {M}\nM_star: {M_star}\n{extra}---\n\n"


def write(tmp_path: Path, body: str, *, variant="base", M=1, M_star=1, extra="", name="hand.md") -> Path:
    path = tmp_path / name
    path.write_text(HEADER.format(variant=variant, M=M, M_star=M_star, extra=extra) + body)
    return path


@functools.lru_cache(maxsize=None)
def base_system(M=1, M_star=1):
    return get_setting("dynamics").system(make_model("base", M, M_star))


@functools.lru_cache(maxsize=None)
def points(M=1, M_star=1):
    return tuple(PointSampler(base_system(M, M_star), seed=1).draw_many(24))


@functools.lru_cache(maxsize=None)
def hand_equations(M=1, M_star=1) -> dict[sp.Symbol, sp.Expr]:
    """docs/model.md's equations (tests/hand_derivation.py), one per state symbol."""
    T = SymbolTable(make_model("base", M, M_star))
    rhs = hand_rhs(T)
    out = {}
    for block, symbols in T.state_blocks.items():
        value = rhs[block]
        template = T.matrices()[block]
        for sym in symbols:
            if isinstance(template, tuple):
                out[sym] = value[template.index(sym)]
            else:
                i, j = next((i, j) for i in range(template.rows) for j in range(template.cols) if template[i, j] == sym)
                out[sym] = sp.expand(value[i, j])
    return out


# ---------------------------------------------------------------------------------------------------- shipped examples
def test_example_base_matches(capsys):
    code, report = run_json(capsys, "check", HAND / "base_dynamics.md")
    assert code == 0 and report["status"] == "match"
    assert [e["name"] for e in report["equations"]] == ["dm/dt", "dm_tilde/dt", "dQ/dt", "dQ_tilde/dt", "dR/dt",
                                                        "dD/dt"]
    assert all(e["verdict"] == "equal" for e in report["equations"])
    assert all(e["checks"] == {"symbolic": "equal", "float64": "equal", "mpmath50": "equal"}
               for e in report["equations"])


def test_example_base_matrix_notation_at_general_sizes(capsys):
    code, report = run_json(capsys, "check", HAND / "base_dynamics.md", "--M", "2", "--M-star", "2")
    assert code == 0 and (report["M"], report["M_star"]) == (2, 2)
    names = {e["name"] for e in report["equations"]}
    assert {"dm_12/dt", "dQ_12/dt", "dQ_21/dt", "dR_21/dt", "dD_2/dt"} <= names
    assert all(e["verdict"] == "equal" for e in report["equations"])


def test_example_without_tau2_is_reported_naming_the_terms(capsys):
    code, report = run_json(capsys, "check", HAND / "base_dynamics_no_tau2.md")
    assert code == 1 and report["status"] == "mismatch"
    verdicts = {e["name"]: e for e in report["equations"]}
    assert {n for n, e in verdicts.items() if e["verdict"] == "different"} == {"dQ/dt", "dQ_tilde/dt", "dR/dt"}
    assert {n for n, e in verdicts.items() if e["verdict"] == "equal"} == {"dm/dt", "dm_tilde/dt", "dD/dt"}
    dq = verdicts["dQ/dt"]
    assert dq["message"] == "dQ/dt: your right-hand side lacks + tau^2 eta (eta Q_tilde + rho m_tilde^2)"
    assert dq["in_terms_of_definitions"] == "tau^2 eta C"
    assert dq["variables"] == ["eta", "m_tilde", "Q_tilde", "rho", "tau"]
    assert sorted(dq["terms"]["missing"]) == ["tau^2 eta rho m_tilde^2", "tau^2 eta^2 Q_tilde"]
    witness = dq["witness"]
    assert witness["yours"] != witness["symvae"]
    assert witness["symvae"] - witness["yours"] == pytest.approx(witness["difference"])
    # every term of every difference is a tau^2 term
    for name in ("dQ/dt", "dQ_tilde/dt", "dR/dt"):
        assert all("tau^2" in term for term in verdicts[name]["terms"]["missing"])
    code, text, _ = run(capsys, "check", HAND / "base_dynamics_no_tau2.md")
    assert code == 1 and "lacks + tau^2 eta (eta Q_tilde + rho m_tilde^2)" in text and "status: mismatch" in text


def test_example_renamed_matches(capsys):
    code, report = run_json(capsys, "check", HAND / "base_dynamics_renamed.md")
    assert code == 0 and all(e["verdict"] == "equal" for e in report["equations"])
    assert len(report["equations"]) == 6


def test_example_python_matches(capsys):
    code, report = run_json(capsys, "check", HAND / "base_dynamics.py")
    assert code == 0 and report["status"] == "match" and (report["M"], report["M_star"]) == (2, 1)
    assert len(report["equations"]) == 18  # Q and Q~ are checked at (1, 2) and (2, 1)


def test_renamed_example_reports_in_the_users_symbols(tmp_path, capsys):
    text = (HAND / "base_dynamics_renamed.md").read_text()
    broken = text.replace(r"$$\dot{q} = 2\epsilon\,(v - a q) + \epsilon^2 \sigma_n^2 u$$",
                          r"$$\dot{q} = 2\epsilon\,(v - a q)$$")
    assert broken != text
    path = tmp_path / "renamed.md"
    path.write_text(broken)
    code, report = run_json(capsys, "check", path)
    assert code == 1
    (dq,) = [e for e in report["equations"] if e["verdict"] != "equal"]
    assert dq["name"] == "dQ/dt"
    assert dq["message"] == "dQ/dt: your right-hand side lacks + epsilon^2 sigma_n^2 (rho m_hat^2 + sigma_n^2 q_hat)"
    assert dq["in_terms_of_definitions"] == "epsilon^2 sigma_n^2 u"
    assert set(dq["witness"]["point"]) >= {"epsilon", "m_hat", "q_hat", "rho", "sigma_n^2"}
    assert r"\hat{m}" in dq["difference_latex"] and r"\epsilon" in dq["difference_latex"]


# ---------------------------------------------------------------------------------------------------- verdicts
def test_verdicts_missing_and_extra(tmp_path, capsys):
    path = write(tmp_path, "$$\\frac{dD}{dt} = -\\frac{\\tau}{2}\\left(Q + \\beta - \\frac{\\beta}{D}\\right)$$\n"
                           "$$\\frac{dx}{dt} = 1$$\n$$\\frac{d\\sigma^2}{dt} = 1$$\n$$\\frac{d\\rho}{dt} = y$$\n")
    code, report = run_json(capsys, "check", path)
    verdicts = {e["name"]: e["verdict"] for e in report["equations"]}
    assert verdicts == {"dD/dt": "equal", "dx/dt": "extra", "dsigma2/dt": "extra", "drho/dt": "extra",
                        "dm/dt": "missing", "dm_tilde/dt": "missing", "dQ/dt": "missing", "dQ_tilde/dt": "missing",
                        "dR/dt": "missing"}
    assert code == 1 and report["status"] == "mismatch"
    missing = [e for e in report["equations"] if e["verdict"] == "missing"]
    assert all(e["symvae"] for e in missing)
    # missing equations tolerated on request; extra ones are not
    code, report = run_json(capsys, "check", path, "--allow-missing")
    assert code == 1
    only = write(tmp_path, "$$\\frac{dD}{dt} = -\\frac{\\tau}{2}\\left(Q + \\beta - \\frac{\\beta}{D}\\right)$$\n",
                 name="only.md")
    assert run_json(capsys, "check", only, "--allow-missing")[0] == 0
    assert run_json(capsys, "check", only)[0] == 1


def test_extra_for_tied_aliases_and_fixed_parameters(tmp_path):
    tied = write(tmp_path, "$$\\frac{d\\tilde m}{dt} = 1$$\n", variant="tied", name="tied.md")
    (entry,) = [e for e in check_file(tied).equations if e.verdict == "extra"]
    assert "tied" in entry.note
    fixed = write(tmp_path, "$$\\frac{dD}{dt} = 1$$\n", variant="fixed_D", name="fixed.md")
    (entry,) = [e for e in check_file(fixed).equations if e.verdict == "extra"]
    assert "fixed" in entry.note


def test_inconclusive_when_symbolic_and_numeric_tests_disagree():
    system = base_system()
    Q, tau = sp.Symbol("Q_11", real=True), sp.Symbol("tau", real=True)
    derived = system.equations[Q]
    rewritten = derived + tau * (sp.cosh(Q) ** 2 - sp.sinh(Q) ** 2 - 1)  # an identity rational algebra cannot see
    weak = lambda e: sp.cancel(sp.together(sp.expand(e)))  # noqa: E731
    result = compare(rewritten, derived, points(), canonicalize=weak)
    assert result.verdict == "inconclusive"
    assert result.checks == {"symbolic": "different", "float64": "equal", "mpmath50": "equal"}
    assert "simplification may have failed" in result.note
    assert compare(rewritten, derived, points()).verdict == "equal"  # the default canonicaliser's simplify sees it


def test_float64_cannot_resolve_but_the_verdict_stands():
    system = base_system()
    Q = sp.Symbol("Q_11", real=True)
    derived = system.equations[Q]
    result = compare(derived + sp.Rational(1, 10 ** 15), derived, points())
    assert result.verdict == "different"
    assert result.checks["float64"] == "equal" and result.checks["mpmath50"] == "different"
    assert "float64" in result.note


def test_witness_values_are_the_sides_at_the_point():
    system = base_system()
    Q = sp.Symbol("Q_11", real=True)
    derived = system.equations[Q]
    yours = derived - sp.Symbol("tau", real=True) ** 2 * sp.Symbol("eta", real=True)
    result = compare(yours, derived, points())
    w = result.witness
    assert result.verdict == "different"
    assert float(w.yours) == pytest.approx(float(yours.subs(w.point)))
    assert float(w.symvae) == pytest.approx(float(derived.subs(w.point)))


def test_admissible_points():
    system = base_system(2, 1)
    T = system.table
    for point in points(2, 1)[:5]:
        Q = T.Q.subs(point)
        Qt = T.Q_tilde.subs(point)
        assert all(ev >= 0 for ev in Q.eigenvals()) and all(ev >= 0 for ev in Qt.eigenvals())
        assert all(point[d] > 0 for d in T.D)
        assert point[sp.Symbol("tau", real=True)] > 0 and point[sp.Symbol("eta", real=True)] > 0


# ---------------------------------------------------------------------------------------------------- perturbations
_TERM_SYMBOLS = ("m_11", "m_tilde_11", "Q_11", "Q_tilde_11", "R_11", "rho", "eta", "beta", "lam", "tau")


def _symbol(name):
    return sp.Symbol(name, real=True)


@st.composite
def perturbation(draw):
    """(unknown, perturbed right-hand side): a correct docs/model.md equation with one small change."""
    eqs = hand_equations()
    target = draw(st.sampled_from(sorted(eqs, key=lambda s: s.name)))
    rhs = sp.expand(eqs[target])
    terms = list(sp.Add.make_args(rhs))
    kind = draw(st.sampled_from(["add", "flip", "coefficient"]))
    if kind == "add":
        names = draw(st.lists(st.sampled_from(_TERM_SYMBOLS), min_size=1, max_size=3))
        numerator = draw(st.integers(1, 9)) * draw(st.sampled_from([1, -1]))
        coefficient = sp.Rational(numerator, draw(st.sampled_from([10, 100, 1000, 10 ** 6])))
        return target, rhs + coefficient * sp.Mul(*[_symbol(n) for n in names]), kind
    index = draw(st.integers(0, len(terms) - 1))
    if kind == "flip":
        terms[index] = -terms[index]
    else:
        factor = sp.Rational(draw(st.sampled_from([-3, -1, 1, 2, 3, 5])), draw(st.sampled_from([2, 3, 4, 7])))
        terms[index] = terms[index] * factor if factor != 1 else 2 * terms[index]
    return target, sp.Add(*terms), kind


@PROPERTY
@given(perturbation())
def test_every_perturbation_is_detected(case):
    target, perturbed, kind = case
    result = compare(perturbed, base_system().equations[target], points())
    assert result.verdict == "different", (kind, target)
    assert result.checks["symbolic"] == result.checks["mpmath50"] == "different"
    assert result.witness is not None


@st.composite
def rewrite(draw):
    """(unknown, equivalent right-hand side): a correct equation rearranged."""
    eqs = hand_equations()
    target = draw(st.sampled_from(sorted(eqs, key=lambda s: s.name)))
    rhs = eqs[target]
    kind = draw(st.sampled_from(["expand", "factor", "collect", "together", "multiply_divide", "substitute"]))
    if kind == "expand":
        return target, sp.expand(rhs), kind
    if kind == "factor":
        return target, sp.factor(rhs), kind
    if kind == "collect":
        return target, sp.collect(sp.expand(rhs), _symbol(draw(st.sampled_from(_TERM_SYMBOLS)))), kind
    if kind == "together":
        return target, sp.together(rhs), kind
    if kind == "multiply_divide":
        extra = 1 + _symbol(draw(st.sampled_from(_TERM_SYMBOLS))) ** 2
        return target, sp.Mul(sp.expand(rhs * extra), 1 / extra, evaluate=False), kind
    # substitute a definition: write C = rho m~^2 + eta Q~ as a fresh symbol and put it back
    C = sp.Symbol("C")
    rho, eta = _symbol("rho"), _symbol("eta")
    mt, Qt = _symbol("m_tilde_11"), _symbol("Q_tilde_11")
    folded = sp.expand(rhs).subs(eta * Qt, C - rho * mt ** 2)
    return target, folded.subs(C, rho * mt ** 2 + eta * Qt), kind


@PROPERTY
@given(rewrite())
def test_every_equivalent_rewrite_is_accepted(case):
    target, rewritten, kind = case
    result = compare(rewritten, base_system().equations[target], points())
    assert result.verdict == "equal", (kind, target, result.note)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(perturbation())
def test_perturbations_through_latex_files(tmp_path_factory, capsys, case):
    """The same perturbations, written in LaTeX by SymPy's printer, through the CLI."""
    target, perturbed, _ = case
    T = base_system().table
    names = {s: v.split("_{")[0] for s, v in T.latex_names().items()}
    names.update({_symbol("lam"): r"\lambda"})
    lhs = {"m": "m", "m_tilde": r"\tilde{m}", "Q": "Q", "Q_tilde": r"\tilde{Q}", "R": "R", "D": "D"}
    block = base_system().element_of[target][0]
    body = f"$$\\frac{{d{lhs[block]}}}{{dt}} = {sp.latex(perturbed, symbol_names=names)}$$\n"
    path = write(tmp_path_factory.mktemp("perturbed"), body)
    code, report = run_json(capsys, "check", path, "--allow-missing")
    assert code == 1
    (entry,) = [e for e in report["equations"] if e["verdict"] != "missing"]
    assert entry["verdict"] == "different"


# ---------------------------------------------------------------------------------------------------- notation
def test_elementwise_notation_for_general_M(tmp_path, capsys):
    """Every derived equation of the M=2, M*=1 base model, written element-wise by SymPy's LaTeX printer."""
    system = base_system(2, 1)
    T = system.table
    names = dict(T.latex_names())
    names[_symbol("lam")] = r"\lambda"
    blocks = []
    for sym, rhs in system.equations.items():
        blocks.append(f"$$\\frac{{d{names[sym]}}}{{dt}} = {sp.latex(rhs, symbol_names=names)}$$")
    path = write(tmp_path, "\n\n".join(blocks) + "\n", M=2, M_star=1)
    code, report = run_json(capsys, "check", path)
    assert code == 0, [e for e in report["equations"] if e["verdict"] != "equal"]
    assert len(report["equations"]) == len(system.equations)


def test_elementwise_symmetric_entry_and_vector_index(tmp_path):
    """Q_{21} is Q_{12}; with M*=1, m_{2} is m_{21}; an element-wise equation may use a matrix definition."""
    system = base_system(2, 1)
    T = system.table
    path = write(tmp_path, "$$C = \\rho \\tilde{m}\\tilde{m}^T + \\eta\\tilde{Q}$$\n\n"
                           "$$\\frac{dm_{2}}{dt} = \\tau\\left[(\\rho + \\eta)\\tilde{m}_{2} - (C_{21} m_{1} + "
                           "(C_{22} + D_2 + \\lambda) m_{2})\\right]$$\n\n"
                           "$$\\frac{dQ_{21}}{dt} = 0$$\n", M=2, M_star=1)
    report = check_file(path, allow_missing=True)
    verdicts = {e.name: e.verdict for e in report.equations if e.verdict != "missing"}
    assert verdicts == {"dm_21/dt": "equal", "dQ_21/dt": "different"}
    assert system.equations[T.Q[0, 1]] != 0


def test_symbol_map_with_indices_and_expressions(tmp_path):
    body = ("$$\\frac{dd_{1}}{dt} = -\\frac{s}{2}\\left(Q_{11} + \\beta - \\frac{\\beta}{d_1}\\right)$$\n\n"
            "$$\\dot{d}_{2} = -\\frac{s}{2}\\left(Q_{22} + \\beta - \\frac{\\beta}{d_2}\\right)$$\n")
    path = write(tmp_path, body, M=2, M_star=2, extra='symbols: {d: D, "s": "2*tau/2"}\n')
    report = check_file(path, allow_missing=True)
    assert {e.name: e.verdict for e in report.equations if e.verdict != "missing"} == {"dD_1/dt": "equal",
                                                                                      "dD_2/dt": "equal"}


def test_symbol_map_block_style_and_unknown_target(tmp_path):
    good = write(tmp_path, "$$\\dot x = -\\frac{\\tau}{2}\\left(Q + \\beta - \\frac{\\beta}{x}\\right)$$\n",
                 extra="symbols:\n  x: D   # the encoder variance\n")
    assert [e.verdict for e in check_file(good, allow_missing=True).equations][0] == "equal"
    bad = write(tmp_path, "$$\\dot x = 1$$\n", extra="symbols: {x: nothing_here}\n", name="bad.md")
    with pytest.raises(CheckInputError, match="nothing_here"):
        read_hand_derivation(bad)


def test_python_file_forms(tmp_path, capsys):
    path = tmp_path / "forms.py"
    path.write_text(
        "import sympy as sp\n"
        "HEADER = {'setting': 'dynamics', 'variant': 'base', 'M': 2, 'M_star': 1, 'symbols': {'d': 'D'}}\n"
        "t = sp.Symbol('t')\n"
        "Q11, Q22, beta, tau, d1, d2 = sp.symbols('Q_11 Q_22 beta tau d_1 d_2')\n"
        "EQUATIONS = [\n"
        "    sp.Eq(sp.Derivative(sp.Function('d_1')(t), t), -tau / 2 * (Q11 + beta - beta / d1)),\n"
        "    sp.Eq(sp.Symbol('d_2'), -0.5 * tau * (Q22 + beta - beta / d2)),\n"
        "]\n")
    code, report = run_json(capsys, "check", path, "--allow-missing")
    assert code == 0
    assert [e["name"] for e in report["equations"] if e["verdict"] == "equal"] == ["dD_1/dt", "dD_2/dt"]


def test_latex_features(tmp_path):
    body = ("Prose with inline $x = 1$ math and a code block:\n```\n$$ not an equation $$\n```\n"
            "<!-- $$ \\frac{dQ}{dt} = 0 $$ -->\n"
            "\\begin{align*}\n"
            "  \\kappa &= \\rho + \\eta, \\\\\n"
            "  \\frac{\\mathrm{d}m}{\\mathrm{d}t} &= \\tau\\Bigl[\\kappa\\tilde m - (\\rho\\tilde m^{2} + "
            "\\eta\\tilde{Q} + D + \\lambda)\\cdot m\\Bigr] \\label{eq:m}\n"
            "\\end{align*}\n"
            "\\[ \\frac{d}{dt}D = \\frac12\\tau\\left(\\frac{\\beta}{D} - \\beta - Q\\right). \\]\n")
    report = check_file(write(tmp_path, body), allow_missing=True)
    assert {e.name: e.verdict for e in report.equations if e.verdict != "missing"} == {"dm/dt": "equal",
                                                                                      "dD/dt": "equal"}


def test_signed_exponents_without_braces(tmp_path):
    """x^-1 and x^-1.5 are read as x^{-1} and x^{-1.5} (the digits are kept, not dropped)."""
    body = ("$$\\frac{dD}{dt} = \\frac{\\tau}{2}\\left(\\beta D^-1 - \\beta - Q\\right)$$\n"
            "$$\\frac{dQ}{dt} = \\tau Q^-1.5 D^{-2}$$\n")
    hand = read_hand_derivation(write(tmp_path, body))
    D, Q, tau = (sp.Symbol(n, real=True) for n in ("D_1", "Q_11", "tau"))
    by_name = {e.name: e.rhs.xreplace({s: sp.Symbol(s.name, real=True) for s in e.rhs.free_symbols})
               for e in hand.equations}
    assert sp.simplify(by_name["dQ/dt"] - tau * Q ** sp.Rational(-3, 2) * D ** -2) == 0
    beta = sp.Symbol("beta", real=True)
    assert sp.simplify(by_name["dD/dt"] - tau / 2 * (beta / D - beta - Q)) == 0
    assert check_file(write(tmp_path, body), allow_missing=True).equations[0].verdict == "equal"


def test_check_modules_import_no_cycle():
    """Each setting's comparison stands alone: the modules of symvae.check import each other without a cycle."""
    import ast

    package = Path(__file__).resolve().parents[1] / "symvae" / "check"
    graph = {}
    for path in package.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = deps & {p.stem for p in package.glob("*.py")}
    assert graph["_check"] >= {"_rhs", "_residual"}  # the graph is real: the dispatcher imports both comparisons
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"import cycle: {' -> '.join(trail + [name])}"
        state[name] = "open"
        for dep in sorted(graph[name]):
            visit(dep, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


# ---------------------------------------------------------------------------------------------------- unusable input
@pytest.mark.parametrize("body, line, column, fragment", [
    ("$$\\frac{dQ}{dt} = \\tau(2 R \\eta\n$$\n", 8, 32, "expected ')'"),
    ("$$\\frac{dQ}{dt} = \\tau x$$\n", 8, 24, "unknown symbol x"),
    ("$$\\frac{dQ}{dt} = Q_12$$\n", 8, 21, "write _{12}"),
    ("$$\\frac{dQ}{dx} = 1$$\n", 8, 14, "must be dt"),
    ("$$\\frac{dQ}{dt} = 1 = 2$$\n", 8, 21, "one equation per display block"),
    ("$$\\frac{dQ}{dt} = a \\foo b$$\n", 8, 21, "unexpected '\\foo'"),
    ("$$\\frac{dQ}{dt} = \\tau\n", 8, 1, "never closed"),
    ("$$A = B$$\n$$B = A$$\n$$\\frac{dQ}{dt} = A$$\n", 8, 3, "circular definition"),
    ("$$\\frac{dQ}{dt} = 1$$\n$$\\dot Q = 2$$\n", 9, 3, "two equations for dQ/dt"),
    ("$$Q = \\tau$$\n", 8, 3, "Q is an order parameter"),
    ("$$\\frac{dQ}{dt} = \\tau Q_{13}$$\n", 8, 24, "Q has no entry '13'"),
    ("$$\\frac{dQ}{dt} = \\tau Q^-12$$\n", 8, 27, "write ^{-12}"),
    ("$$\\frac{dQ}{dt} = \\tau Q^12$$\n", 8, 26, "write ^{12}"),
    ("$$\\mathrm{d}D/\\mathrm{d}t = \\tau$$\n", 8, 14, "the slash form dQ/dt is not accepted"),
    ("$$dQ/dt = \\tau$$\n", 8, 5, "\\frac{dQ}{dt}, \\frac{\\mathrm{d}Q}{\\mathrm{d}t}, \\frac{d}{dt}Q, \\dot{Q}"),
])
def test_parse_errors_with_line_and_column(tmp_path, capsys, body, line, column, fragment):
    path = write(tmp_path, body, M=2 if "13" in body else 1)
    code, out, err = run(capsys, "check", path)
    assert code == 2 and out == ""
    assert err.startswith(f"symvae: error: {path}:{line}:{column}: ")
    assert fragment in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("header, line, fragment", [
    ("---\nsetting: dynamics\nM: 1\n---\n", None, "must declare 'variant:'"),
    ("---\nsetting: dynamics\nvariant: bogus\n---\n", 3, "unknown variant 'bogus'"),
    ("---\nsetting: bogus\nvariant: base\n---\n", 2, "unknown setting 'bogus'"),
    ("---\nsetting: dynamics\nvariant: base\nvarient: x\n---\n", 4, "unknown header key 'varient'"),
    ("---\nsetting: dynamics\nvariant: base\nM: two\n---\n", 4, "M must be a positive integer"),
    ("no header\n", 1, "no header"),
])
def test_header_errors(tmp_path, capsys, header, line, fragment):
    path = tmp_path / "h.md"
    path.write_text(header + "\n$$\\frac{dQ}{dt} = \\tau$$\n")
    code, out, err = run(capsys, "check", path)
    assert code == 2 and out == ""
    where = f"{path}:{line}: " if line else f"{path}: "
    assert err.startswith(f"symvae: error: {where}") and fragment in err


def test_python_errors(tmp_path, capsys):
    cases = {
        "syntax.py": ("HEADER = {'setting': 'dynamics', 'variant': 'base'}\nEQUATIONS = {'dQ/dt': (1\n",
                      ":2:", "syntax error"),
        "unknown.py": ("import sympy as sp\nHEADER = {'setting': 'dynamics', 'variant': 'base'}\n"
                       "EQUATIONS = {'dQ/dt': sp.Symbol('x')}\n", ":3:", "unknown symbol 'x'"),
        "crash.py": ("HEADER = {'setting': 'dynamics', 'variant': 'base'}\nEQUATIONS = {'dQ/dt': 1/0}\n", ":2:",
                     "ZeroDivisionError"),
        "matrix.py": ("import sympy as sp\nHEADER = {'setting': 'dynamics', 'variant': 'base', 'M': 2}\n"
                      "EQUATIONS = {'dD_1/dt': sp.Symbol('Q')}\n", ":3:", "2x2 matrix"),
    }
    for name, (text, where, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        code, out, err = run(capsys, "check", path)
        assert code == 2 and out == "", name
        assert f"{path}{where}" in err and fragment in err, (name, err)


def test_unusable_paths(tmp_path, capsys):
    code, _, err = run(capsys, "check", tmp_path / "absent.md")
    assert code == 2 and "cannot read" in err
    other = tmp_path / "notes.txt"
    other.write_text("x")
    code, _, err = run(capsys, "check", other)
    assert code == 2 and "unknown file type" in err


# ---------------------------------------------------------------------------------------------------- diff
def test_diff_learned_sigma2(capsys):
    code, result = run_json(capsys, "diff", "base", "learned_sigma2")
    assert code == 1 and result["status"] == "different"
    by_name = {e["name"]: e for e in result["equations"]}
    assert by_name["dsigma2/dt"]["change"] == "only_in_b"
    dm = by_name["dm/dt"]
    assert dm["change"] == "changed" and not dm["added"] and not dm["removed"]
    assert {"term": "D m", "a": "-tau", "b": "-tau/sigma2"} in dm["changed"]
    # the lam term of dm/dt does not involve sigma^2
    assert dm["unchanged"] == 1


def test_diff_minibatch_and_text(capsys):
    code, text, _ = run(capsys, "diff", "base", "minibatch")
    assert code == 1
    assert "only in minibatch: b" in text
    assert "Q_tilde   : tau^2 eta^2  ->  tau^2 eta^2/b" in text
    assert "dm/dt: unchanged" in text and text.strip().endswith("status: different")


def test_diff_tied_lists_equations_of_one_variant_only():
    result = diff_variants("base", "tied")
    only = {e.name for e in result.equations if e.change == "only_in_a"}
    assert only == {"dm_tilde/dt", "dQ_tilde/dt", "dR/dt"}


def test_diff_same_and_errors(capsys):
    code, result = run_json(capsys, "diff", "base", "base", "--M", "2")
    assert code == 0 and result["status"] == "same" and result["M"] == 2
    code, _, err = run(capsys, "diff", "base", "bogus")
    assert code == 2 and "unknown variant 'bogus'" in err
    code, _, err = run(capsys, "diff", "base", "tied", "--setting", "bogus")
    assert code == 2 and "unknown setting 'bogus'" in err
    code, result = run_json(capsys, "diff", "base", "tied", "--setting", "statics")
    assert code == 1 and result["status"] == "different"


# ---------------------------------------------------------------------------------------------------- hand derivation
@PROPERTY
@given(seed=st.integers(0, 2 ** 32 - 1), sizes=st.sampled_from([(1, 1), (2, 1)]), pick=st.randoms())
def test_hand_derivation_equals_engine_at_hypothesis_points(seed, sizes, pick):
    """tests/hand_derivation.py and the engine agree at admissible points drawn from hypothesis-chosen seeds."""
    eqs = hand_equations(*sizes)
    system = base_system(*sizes)
    sym = pick.choice(sorted(eqs, key=lambda s: s.name))
    candidates = PointSampler(system, seed=seed).draw_many(4)
    result = compare(eqs[sym], system.equations[sym], candidates, needed=4)
    assert result.verdict == "equal" and result.points_used == 4
    assert result.checks == {"symbolic": "equal", "float64": "equal", "mpmath50": "equal"}
