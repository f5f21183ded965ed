"""Tests of ``symvae check`` in the statics setting: saddle-point equations (residuals) and free energies."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import sympy as sp

from symvae.check import CheckInputError, PointSampler, check_file, get_setting, read_hand_derivation
from symvae.check._residual import compare_residuals
from symvae.cli import main
from symvae.model import make_model
from helpers import run_cli_json as run_json

HAND = Path(__file__).resolve().parents[1] / "derivations" / "hand"
HEADER = "---\nsetting: statics\nvariant: base\nM: 1\nM_star: 1\n{extra}---\n\n"


def write(tmp_path: Path, body: str, *, extra="", name="statics.md") -> Path:
    path = tmp_path / name
    path.write_text(HEADER.format(extra=extra) + body)
    return path


@functools.lru_cache(maxsize=None)
def system():
    return get_setting("statics").system(make_model("base", 1, 1))


@functools.lru_cache(maxsize=None)
def points():
    return tuple(PointSampler(system(), seed=5).draw_many(24))


def sym(name: str) -> sp.Symbol:
    """The model's own symbol of that name (assumptions included)."""
    S = system()
    names = {s.name: s for e in S.equations.values() for s in e.free_symbols} | {s.name: s for s in S.equations}
    return names[name]


# ---------------------------------------------------------------------------------------------------- shipped examples
def test_free_energy_example_matches(capsys):
    code, report = run_json(capsys, "check", HAND / "base_statics.md")
    assert code == 0 and report["status"] == "match" and report["setting"] == "statics"
    names = [e["name"] for e in report["equations"]]
    assert names[0] == "f" and len(names) == 14
    assert {"df/dQ", "df/dD", "df/dK_12", "df/dH_21"} <= set(names)
    assert all(e["verdict"] == "equal" for e in report["equations"])
    assert all(e["checks"]["symbolic"] == e["checks"]["mpmath50"] == "equal" for e in report["equations"])


@functools.lru_cache(maxsize=None)
def error_report():
    return check_file(HAND / "base_statics_lambda_error.md")


def test_saddle_point_example_with_error_names_the_equation():
    report = json.loads(json.dumps(error_report().to_json()))  # exactly what --json prints
    assert error_report().exit_code == 1 and report["status"] == "mismatch"
    by_name = {e["name"]: e for e in report["equations"]}
    assert [n for n, e in by_name.items() if e["verdict"] != "equal"] == ["df/dQ"]
    dq = by_name["df/dQ"]
    assert dq["verdict"] == "different" and dq["line"] == 71
    assert set(dq["variables"]) == {"alpha", "lambda"}
    assert dq["terms"]["missing"] == ["lambda/(2 alpha)"] and dq["terms"]["extra"] == ["lambda/2"]
    assert dq["witness"]["symvae"] == 0 and dq["witness"]["yours"] != 0  # symvae's equation holds there, yours not
    assert dq["checks"] == {"symbolic": "different", "float64": "different", "mpmath50": "different"}
    # the other forms: fixed point D = ..., a residual scaled by 2 with \tag, an untagged residual matched
    assert "2 D/(Q + beta)" in by_name["df/dD"]["note"]
    assert "= 2 x" in by_name["df/dK_11"]["note"]
    assert "matched automatically" in by_name["df/dK_12"]["note"]


def test_text_output_of_the_error():
    text = error_report().format_text()
    assert "df/dQ: your residual lacks - lambda (alpha - 1)/(2 alpha)" in text
    assert text.strip().endswith("status: mismatch (12 equal, 1 different)")


# ---------------------------------------------------------------------------------------------------- residuals
@pytest.mark.parametrize("unknown, factor", [("m_11", "2"), ("Q_11", "-3"), ("D_1", "beta + Q_11"),
                                             ("K_12", "D_1"), ("H_21", "1 + H_11**2"), ("R_11", "2*(beta + Q_11)")])
def test_rescaled_residual_is_accepted(unknown, factor):
    derived = system().equations[sym(unknown)]
    g = sp.sympify(factor, locals={n: sym(n) for n in ("beta", "Q_11", "D_1", "H_11")})
    result = compare_residuals(sp.expand(g * derived), derived, system(), points())
    assert result.verdict == "equal", result.note
    assert result.checks == {"symbolic": "equal", "float64": "equal", "mpmath50": "equal"}
    assert result.roots_checked > 0


@pytest.mark.parametrize("unknown, change", [
    ("m_tilde_11", "add"), ("Q_tilde_11", "flip"), ("D_1", "coefficient"), ("K_11", "sign_changing_factor"),
    ("H_12", "add"), ("R_11", "flip"), ("K_22", "coefficient"), ("D_1", "add")])
def test_perturbed_residual_is_rejected(unknown, change):
    derived = sp.expand(system().equations[sym(unknown)])
    terms = list(sp.Add.make_args(derived))
    if change == "add":
        perturbed = derived + sp.Rational(1, 1000) * sym("eta") * sym("rho")
    elif change == "flip":
        perturbed = derived - 2 * terms[-1]
    elif change == "coefficient":
        perturbed = derived + terms[0] / 7
    else:  # H_11 changes sign on the domain: your equation has solutions symvae's lacks
        perturbed = sym("H_11") * derived
    result = compare_residuals(perturbed, derived, system(), points())
    assert result.verdict == "different"
    assert result.checks["symbolic"] == result.checks["mpmath50"] == "different"
    assert result.witness is not None


def test_unprovable_factor_is_inconclusive():
    """Q - m^2 + 1 >= 1 on the admissible domain (Cauchy-Schwarz), which SymPy cannot see: the tests disagree."""
    derived = system().equations[sym("R_11")]
    result = compare_residuals((sym("Q_11") - sym("m_11") ** 2 + 1) * derived, derived, system(), points())
    assert result.verdict == "inconclusive"
    assert result.checks == {"symbolic": "different", "float64": "equal", "mpmath50": "equal"}
    assert "Q_11 - m_11^2 + 1" in result.note or "cannot show" in result.note


def test_fixed_point_forms_and_their_differences(tmp_path):
    path = write(tmp_path, "$$D = \\frac{\\beta}{\\beta + Q}$$\n\n$$0 = 2 D (Q + \\beta) - 2\\beta \\tag{D}$$\n",
                 name="d1.md")
    with pytest.raises(CheckInputError, match="two equations for df/dD"):
        read_hand_derivation(path)
    good = write(tmp_path, "$$0 = D (Q + \\beta) - \\beta \\tag{D}$$\n", name="d2.md")
    report = check_file(good, allow_missing=True)
    assert [(e.name, e.verdict) for e in report.equations if e.verdict != "missing"] == [("df/dD", "equal")]
    wrong = write(tmp_path, "$$D = \\frac{\\beta}{\\beta + 2Q}$$\n", name="d3.md")
    (entry,) = [e for e in check_file(wrong, allow_missing=True).equations if e.verdict != "missing"]
    assert entry.verdict == "different" and entry.name == "df/dD"
    assert entry.message == "df/dD: your right-hand side lacks + beta Q/((Q + beta) (2 Q + beta))"


def test_free_energy_up_to_a_constant_and_with_an_error(tmp_path, capsys):
    text = (HAND / "base_statics.md").read_text()
    shifted = tmp_path / "shifted.md"
    shifted.write_text(text.replace("$$f_{\\rm en} = \\frac{\\rho}{2} - S_{12}", "$$f_{\\rm en} = 3\\beta - S_{12}"))
    code, report = run_json(capsys, "check", shifted)
    assert code == 0
    assert report["equations"][0]["name"] == "f" and "constant" in report["equations"][0]["note"]
    wrong = tmp_path / "wrong.md"
    wrong.write_text(text.replace("$$f_{\\rm reg} = \\frac{\\lambda}{2\\alpha}", "$$f_{\\rm reg} = \\frac{\\lambda}{2}"))
    code, report = run_json(capsys, "check", wrong)
    assert code == 1
    different = {e["name"] for e in report["equations"] if e["verdict"] != "equal"}
    assert different == {"f", "df/dQ", "df/dQ_tilde"}


def test_free_energy_without_the_conjugates_says_so(tmp_path):
    path = write(tmp_path, "$$f = \\frac{\\rho}{2} - \\frac{Q}{2} + \\frac{\\beta}{2}(D - \\log D - 1) + \\frac{Q D}{2}$$\n")
    report = check_file(path)
    assert report.exit_code == 1
    assert any("comparison requires them" in n for n in report.notes)
    assert {e.name: e.verdict for e in report.equations}["df/dK_11"] == "different"
    assert "comparison requires them" in report.format_text()


def test_python_statics_file(tmp_path, capsys):
    path = tmp_path / "statics.py"
    path.write_text("import sympy as sp\n"
                    "HEADER = {'setting': 'statics', 'variant': 'base'}\n"
                    "beta, Q, D = sp.symbols('beta Q D')\n"
                    "EQUATIONS = {'df/dD': (Q + beta) / 2 - beta / (2 * D)}\n")
    code, report = run_json(capsys, "check", path, "--allow-missing")
    assert code == 0 and [e["name"] for e in report["equations"] if e["verdict"] == "equal"] == ["df/dD"]


@pytest.mark.parametrize("body, fragment", [
    ("$$\\frac{dQ}{dt} = 1$$\n", "is a time derivative, but the setting is statics"),
    ("$$\\frac{\\partial f}{\\partial Q} = 1 \\tag{Q}$$\n", "names the unknown of a residual"),
    ("$$0 = 1 \\tag{x}$$\n", "names no unknown"),
])
def test_statics_input_errors(tmp_path, capsys, body, fragment):
    path = write(tmp_path, body)
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and f"{path}:8:" in err


def test_partial_derivative_in_a_dynamics_file_is_an_error(tmp_path, capsys):
    path = tmp_path / "dyn.md"
    path.write_text("---\nsetting: dynamics\nvariant: base\n---\n\n$$\\frac{\\partial f}{\\partial Q} = 1$$\n")
    assert main(["check", str(path)]) == 2
    assert "declare 'setting: statics'" in capsys.readouterr().err
