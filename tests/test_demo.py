"""The README's main job runs end to end (at a small N so that it is quick)."""
import json

from symvae.cli import main


def test_demo_writes_figure_and_consistent_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--N", "100", "--seeds", "2", "--digits", "12"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    png = (tmp_path / "eg_dynamics.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert summary["collapse_threshold"]["value"].startswith("2.0000000000")
    assert summary["collapse_threshold"]["digits"] >= 12
    # docs/model.md: late-time error floor ~ 0.004-0.005 at tau = 0.01
    assert 0.003 < summary["eg_final_ode"] < 0.006
    # the simulation (N = 100, 2 seeds) within 30 % of that value: measured 3 % off, seed spread 9 % of it; a 0.05
    # tolerance (ten times the value) could not fail
    assert summary["eg_final_simulation_std"] > 0
    assert abs(summary["eg_final_simulation_mean"] - summary["eg_final_ode"]) < 0.3 * summary["eg_final_ode"]


def test_demo_rejects_bad_options(capsys):
    assert main(["demo", "--N", "1"]) == 2
