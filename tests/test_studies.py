"""Studies (the published values are asserted on ``symvae reproduce --quick`` in test_reproduce.py): annealing
optimum and sensitivity derivative, sweeps against simulation and closed forms, the
disentanglement metric on hand-made overlaps, the CLI contracts."""
import json
import math

import numpy as np
import pytest

from helpers import run_cli, run_cli_json
from symvae.analysis import AnnealingStudy, SweepPoint, entanglement, evaluate_point, signed_matching

PAPER = dict(rho=1.0, eta=1.0, beta=1.0, lam=0.0, tau=0.1)


@pytest.fixture(scope="module")
def tanh_study():
    return AnnealingStudy("tanh", PAPER, t_max=3000.0)


def test_sensitivity_derivative_matches_finite_differences(tanh_study):
    T, dT = tanh_study.derivative(0.03)
    h = 1e-5
    fd = (tanh_study.time(0.03 + h) - tanh_study.time(0.03 - h)) / (2 * h)
    assert T == pytest.approx(tanh_study.time(0.03), rel=1e-12)
    assert dT == pytest.approx(fd, rel=1e-4)


def test_optimal_rate_published(tanh_study):
    opt = tanh_study.optimal_rate()
    assert opt["gamma_opt"] == pytest.approx(0.016, abs=0.0005)  # published gamma* ~ 0.016
    assert opt["time_saved_fraction"] == pytest.approx(0.077, abs=0.0006)  # ~7.7% faster
    assert opt["evaluations"] < 25  # Brent on dT/dgamma, not a grid
    # the optimum is a minimum: T is larger a little to either side
    g = opt["gamma_opt"]
    assert tanh_study.time(0.9 * g) > opt["time_opt"] < tanh_study.time(1.1 * g)


def test_sweep_cli_matches_simulation_within_standard_errors(capsys):
    code, out = run_cli_json(capsys, "sweep", "--param", "beta", "--values", "0.5,3", "--tau", "0.1",
                             "--metric", "eg_final,escape_time", "--t-max", "100", "--n-grid", "101",
                             "--finite-n", "300", "--seeds", "6")
    assert code == 0 and out["status"] == "ok"
    assert [r["beta"] for r in out["rows"]] == [0.5, 3.0]
    for row in out["rows"]:
        assert set(row) >= {"beta", "eg_final", "eg_final_sim", "eg_final_se", "escape_time", "escape_time_sim"}
        assert abs(row["eg_final_sim"] - row["eg_final"]) < 4 * row["eg_final_se"] + 2e-3
    learned, collapsed = out["rows"]
    assert abs(learned["escape_time_sim"] - learned["escape_time"]) < 4 * learned["escape_time_se"] + 1.0
    assert collapsed["eg_final"] == pytest.approx(1.0, abs=1e-3)  # beta > rho + eta: collapse, eg -> rho


def test_sweep_cli_writes_csv_and_figure(capsys, tmp_path):
    csv_path, png = tmp_path / "s.csv", tmp_path / "s.png"
    code, out, err = run_cli(capsys, "sweep", "--param", "beta", "--values", "0.5,2.5", "--param2", "tau",
                             "--values2", "0.1", "--metric", "eg_fp", "--t-max", "600", "--csv", csv_path,
                             "--plot", png)
    assert code == 0, err
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["beta", "tau", "status"]
    values = [float(x) for x in lines[1].split(",")[3:]]
    assert values[0] == pytest.approx((1 - math.sqrt(1.5)) ** 2, abs=0.1)  # O(tau) above the tau -> 0 closed form
    assert float(lines[2].split(",")[3]) == pytest.approx(1.0, abs=1e-9)  # collapsed: eg = rho
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv", [
    ("sweep", "--param", "beta", "--values", "1,x"),
    ("sweep", "--param", "nope", "--values", "1"),
    ("sweep", "--param", "beta", "--values", "1", "--metric", "nope"),
    ("sweep", "--param", "beta", "--values", "1", "--plot", "out.txt"),
    ("sweep", "--param", "beta", "--values", "1", "--executor", "dask"),
    ("anneal", "--schedule", "beta*t"),
    ("anneal", "--schedule", "import os"),
    ("n-scaling", "--N", "100"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_entanglement_metric_on_hand_made_overlaps():
    Q = np.eye(2)
    assert entanglement(np.diag([0.8, 0.5]), Q) == 0.0
    # a latent permutation with signs is still disentangled
    assert entanglement(np.array([[0.0, -0.5], [0.8, 0.0]]), Q) == 0.0
    perm, signs = signed_matching(np.array([[0.0, -0.5], [0.8, 0.0]]))
    assert perm.tolist() == [1, 0] and signs.tolist() == [1.0, -1.0]
    # 45-degree rotation: every latent equally on both spikes -> (M*-1)/M* = 1/2
    c = 0.6 / math.sqrt(2)
    assert entanglement(np.array([[c, c], [-c, c]]), Q) == pytest.approx(0.5)
    # normalisation by the latent norms: scaling a latent's norm changes nothing
    m = np.array([[0.6, 0.2], [0.1, 0.7]])
    assert entanglement(m * np.array([[2.0], [1.0]]), np.diag([4.0, 1.0])) == pytest.approx(entanglement(m, Q))
    assert entanglement(m, Q) == pytest.approx((0.2**2 + 0.1**2) / (0.6**2 + 0.2**2 + 0.1**2 + 0.7**2))
