"""CLI contract of the statics commands, and derivations/statics/ in sync with the engine."""
import csv
import json
import pathlib

import numpy as np
import pytest

from symvae.statics import statics_derivation_files
from helpers import run_cli as run

ROOT = pathlib.Path(__file__).resolve().parents[1] / "derivations"
KEYS = {"m", "m_tilde", "Q", "Q_tilde", "R", "D", "eg", "rate", "distortion", "train_loss", "phase", "status",
        "saddles"}


def test_statics_json_contract(capsys):
    code, out, err = run(capsys, "statics", "--alpha", "3", "--beta", "0.5", "--rho", "1", "--eta", "1", "--lam", "0",
                         "--M", "1", "--M-star", "1", "--json")
    assert code == 0 and out.count("\n") == 1
    data = json.loads(out)
    assert set(data) == KEYS
    assert data["status"] == "ok" and data["phase"] == "learning"
    # every admissible saddle, lowest free energy first: the minimiser (stable), then the unstable ones
    assert [s["stable"] for s in data["saddles"]][:2] == [True, False] and data["saddles"][0]["phase"] == "learning"
    assert data["saddles"][0]["free_energy"] == data["train_loss"]
    assert any(s["phase"] == "collapsed" and abs(s["free_energy"] - 0.5) < 1e-14 for s in data["saddles"])
    for key, shape in {"m": (1, 1), "m_tilde": (1, 1), "Q": (1, 1), "Q_tilde": (1, 1), "R": (1, 1), "D": (1,)}.items():
        assert np.asarray(data[key]).shape == shape
    # lam = 0: Q = s_1 - beta with s_1 = (rho + eta)(1 + eta/(alpha rho)) = 8/3
    assert abs(data["Q"][0][0] - (8 / 3 - 0.5)) < 1e-12 and abs(data["D"][0] - 0.5 / (8 / 3)) < 1e-12


@pytest.mark.parametrize("argv, phase", [(("--alpha", "0.5"), "overlearning"), (("--alpha", "2", "--beta", "5"),
                                                                               "collapsed")])
def test_statics_phases(capsys, argv, phase):
    code, out, _ = run(capsys, "statics", *argv, "--json")
    assert code == 0 and json.loads(out)["phase"] == phase


def test_statics_more_latents(capsys):
    code, out, _ = run(capsys, "statics", "--alpha", "4", "--beta", "0.3", "--lam", "0.2", "--M", "2", "--M-star", "1",
                       "--json")
    data = json.loads(out)
    assert code == 0 and np.asarray(data["m"]).shape == (2, 1) and np.asarray(data["Q"]).shape == (2, 2)


@pytest.mark.parametrize("argv", [
    ("statics", "--alpha", "0"), ("statics", "--alpha", "-1"), ("statics", "--alpha", "nan"),
    ("statics", "--alpha", "inf"), ("statics", "--alpha", "2", "--rho", "-1"),
    ("statics", "--alpha", "2", "--eta", "0"),
    ("statics", "--alpha", "2", "--beta", "0"), ("statics", "--alpha", "2", "--lam", "-0.1"),
    ("statics", "--alpha", "2", "--beta", "nan"), ("statics", "--alpha", "2", "--variant", "annealing"),
    ("statics", "--alpha", "2", "--variant", "nope"), ("statics", "--alpha", "x"),
    ("phase-diagram", "--alpha-range", "5:1", "--beta-range", "0.1:1"),
    ("phase-diagram", "--alpha-range", "0:1", "--beta-range", "0.1:1"),
    ("phase-diagram", "--alpha-range", "0.1:1", "--beta-range", "a:b"),
    ("rd-curve", "--alpha", "1,-2"), ("rd-curve", "--alpha", "1,2", "--out", "/nonexistent/dir/x.png"),
    ("eg-curve", "--betas", "0.5", "--alpha-range", "1:0.5"),
])
def test_bad_input_is_a_one_line_error_with_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "error" in err


def test_phase_diagram_outputs(capsys, tmp_path):
    png = tmp_path / "pd.png"
    code, out, _ = run(capsys, "phase-diagram", "--alpha-range", "0.2:5", "--beta-range", "0.1:4", "--lam", "0.1",
                       "--n-alpha", "8", "--n-beta", "7", "--workers", "1", "--no-progress", "--out", str(png),
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "ok" and sum(data["counts"].values()) == 56 and data["shape"] == [7, 8]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(tmp_path / "pd.csv")))
    assert len(rows) == 56 and {r["phase"] for r in rows} <= {"collapsed", "learning", "overlearning"}


def test_rd_and_eg_curve_outputs(capsys, tmp_path):
    pdf = tmp_path / "rd.pdf"
    code, out, _ = run(capsys, "rd-curve", "--alpha", "1,2,5,10", "--n-beta", "12", "--out", str(pdf), "--json")
    assert code == 0 and pdf.read_bytes()[:4] == b"%PDF"
    data = json.loads(out)
    assert set(data["curves"]) == {"1.0", "2.0", "5.0", "10.0", "inf"}
    rows = list(csv.DictReader(open(tmp_path / "rd.csv")))
    assert len(rows) == 5 * 12
    png = tmp_path / "eg.png"
    code, out, _ = run(capsys, "eg-curve", "--betas", "0.5,1", "--alpha-range", "0.3:5", "--lam", "0.5", "--n-alpha",
                       "15", "--out", str(png), "--json")
    assert code == 0 and png.exists() and json.loads(out)["status"] == "ok"


def test_statics_derivations_in_sync():
    expected = statics_derivation_files()
    stale = [rel for rel, text in expected.items() if not (ROOT / rel).exists() or (ROOT / rel).read_text() != text]
    assert not stale, f"out of date (run `symvae derive --all --out derivations/`): {stale}"
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "statics").glob("*.md")}
    assert not on_disk - set(expected), f"files no longer generated: {sorted(on_disk - set(expected))}"
