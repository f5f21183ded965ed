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


def test_anneal_cli_optimum_is_the_published_one(capsys, tmp_path):
    code, out = run_cli_json(capsys, "anneal", "--schedule", "tanh", "--tau", "0.1", "--gammas", "0.03",
                             "--t-max", "3000", "--plot", tmp_path / "a.png")
    assert code == 0 and out["status"] == "ok"
    assert out["gamma_opt"] == pytest.approx(0.016, abs=0.0005)  # published gamma* ~ 0.016
    assert out["time_saved_fraction"] == pytest.approx(0.077, abs=0.0006)  # ~7.7% faster
    assert out["speedup"] == pytest.approx(out["time_constant"] / out["time_opt"])
    assert out["evaluations"] < 25  # Brent on dT/dgamma, not a grid
    assert out["curve"] == [{"gamma": 0.03, "time": pytest.approx(139.5, abs=0.05)}]  # published T(0.03)
    assert (tmp_path / "a.png").exists()


#: start off the m ~ 0 plateau, whose escape time shifts with N (finite-N noise acts as extra initial overlap)
OFF_PLATEAU = json.dumps({"m": [[0.2]], "m_tilde": [[0.2]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]],
                          "D": [1.0]})


def test_sweep_cli_matches_simulation_within_standard_errors(capsys):
    code, out = run_cli_json(capsys, "sweep", "--param", "beta", "--values", "0.5,3", "--tau", "0.1",
                             "--metric", "eg_final,eg_fp,escape_time", "--t-max", "100", "--n-grid", "101",
                             "--finite-n", "300", "--seeds", "6", "--init", OFF_PLATEAU)
    assert code == 0 and out["status"] == "ok"
    assert [r["beta"] for r in out["rows"]] == [0.5, 3.0]
    for row in out["rows"]:
        assert set(row) >= {"beta", "eg_final", "eg_final_sim", "eg_final_se", "escape_time", "escape_time_sim"}
        assert abs(row["eg_final_sim"] - row["eg_final"]) < 4 * row["eg_final_se"] + 2e-3
    learned, collapsed = out["rows"]
    assert abs(learned["escape_time_sim"] - learned["escape_time"]) < 4 * learned["escape_time_se"] + 1.0
    assert collapsed["eg_fp"] == pytest.approx(1.0, abs=1e-9)  # beta > rho + eta: collapse, eg -> rho


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


def test_alignment_undoes_a_signed_permutation():
    from symvae.analysis._latents import align_latents, apply_alignment

    rng = np.random.default_rng(3)
    V = rng.normal(size=(7, 9))  # rows: 2 spikes, 3 decoder vectors, 2 more encoder... (Gram of real vectors)
    W, Wt, Ws = V[:3], V[3:6], np.linalg.qr(rng.normal(size=(9, 2)))[0].T
    named = {"m": W @ Ws.T, "m_tilde": Wt @ Ws.T, "Q": W @ W.T, "Q_tilde": Wt @ Wt.T, "R": W @ Wt.T,
             "D": np.array([0.3, 0.6, 0.9])}
    perm, signs = np.array([2, 0, 1]), np.array([1.0, -1.0, -1.0])
    # the same vectors relabelled: seed latent perm[i] = signs[i] * theory latent i
    inv = np.argsort(perm)
    Ws_seed = (signs[:, None] * W)[inv], (signs[:, None] * Wt)[inv]
    seed = {"m": Ws_seed[0] @ Ws.T, "m_tilde": Ws_seed[1] @ Ws.T, "Q": Ws_seed[0] @ Ws_seed[0].T,
            "Q_tilde": Ws_seed[1] @ Ws_seed[1].T, "R": Ws_seed[0] @ Ws_seed[1].T, "D": named["D"][inv]}
    p, s = align_latents(seed["m"], named["m"])
    assert p.tolist() == perm.tolist() and s.tolist() == signs.tolist()
    back = apply_alignment(seed, p, s)
    for key in named:
        np.testing.assert_allclose(back[key], named[key], atol=1e-12)


def test_simulate_per_seed_aligned_mean_matches_the_ode(capsys):
    code, out = run_cli_json(capsys, "simulate", "--M", "2", "--N", "400", "--seeds", "4", "--tau", "0.1",
                             "--beta", "0.5", "--t-max", "40", "--t-eval", "0,20,40", "--per-seed")
    assert code == 0 and len(out["per_seed"]) == 4
    for s in out["per_seed"]:
        assert sorted(s["permutation"]) == [0, 1] and set(s["signs"]) <= {1.0, -1.0}
    ode_m = np.array(out["ode"]["m"])[-1]
    mean = np.array(out["aligned_mean"]["m"])[-1]
    std = np.array(out["aligned_std"]["m"])[-1]
    assert np.all(np.abs(mean - ode_m) < 4 * std / 2 + 0.02)  # 4 s.e. (4 seeds) plus an O(1/N) allowance
    # the default start for several latents is well above the N^-1/2 noise
    assert np.min(np.abs(np.array(out["ode"]["m"])[0])) >= 0.1


def test_sweep_over_the_annealing_rate(capsys):
    # gamma is a runtime parameter of the compiled annealing variant; the target is eps* of the final beta (the
    # schedule's limit, not its value at t_max); published T(0.001) = 1378, T(0.01) = 152.8, T(0.03) = 139.5
    code, out = run_cli_json(capsys, "sweep", "--variant", "annealing", "--param", "gamma", "--values",
                             "0.001,0.01,0.03", "--tau", "0.1", "--metric", "convergence_time", "--t-max", "3000")
    assert code == 0
    assert [r["convergence_time"] for r in out["rows"]] == [pytest.approx(1378, abs=0.5),
                                                            pytest.approx(152.8, abs=0.05),
                                                            pytest.approx(139.5, abs=0.05)]


def test_dynamics_and_simulate_plot_and_csv(capsys, tmp_path):
    code, out, err = run_cli(capsys, "dynamics", "--tau", "0.1", "--t-max", "50", "--csv", tmp_path / "d.csv",
                             "--plot", tmp_path / "d.png")
    assert code == 0, err
    header, first = (tmp_path / "d.csv").read_text().splitlines()[:2]
    row = dict(zip(header.split(","), map(float, first.split(","))))
    assert row["eg"] == pytest.approx(1.0 - 2 * 0.01 + 1.0)  # eg(0) = rho - 2 sqrt(rho) m + Q at the default start
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = run_cli(capsys, "simulate", "--tau", "0.1", "--t-max", "20", "--N", "100", "--seeds", "2",
                             "--plot", tmp_path / "s.pdf")
    assert code == 0, err
    assert (tmp_path / "s.pdf").read_bytes()[:4] == b"%PDF"


def test_equal_spikes_give_a_marginal_fixed_point_along_the_rotation():
    from symvae.analysis._sweep import model_for
    from symvae.numerics import integrate

    params = dict(rho=1.0, eta=1.0, beta=0.5, lam=0.0, tau=0.1)
    r = evaluate_point(SweepPoint(M=2, M_star=2, params=params, t_max=3000, n_grid=301,
                                  metrics=("fp_stable", "fp_leading_eig")))
    assert r["fp_stable"] == 0.0 and abs(r["fp_leading_eig"]) < 1e-9  # marginal, not unstable
    # the zero mode is the rotation of the two equal spikes: m -> m O, m_tilde -> m_tilde O
    _, system, compiled = model_for("base", 2, 2, None)
    from symvae.simulate import default_initial_state

    init = {k: v for k, v in default_initial_state(system.table).items() if k in system.blocks}
    traj = integrate(compiled, init, params, [3000.0])
    named = traj.order_parameters()
    G = np.array([[0.0, 1.0], [-1.0, 0.0]])
    zero = {k: np.zeros_like(np.asarray(v[-1])) for k, v in named.items() if k in system.blocks}
    tangent = system.pack({**zero, "m": named["m"][-1] @ G, "m_tilde": named["m_tilde"][-1] @ G})
    J = compiled.jac(0.0, traj.y[-1], system.param_vector(params))
    assert np.linalg.norm(J @ tangent) < 1e-8 * np.linalg.norm(tangent)
    assert np.linalg.norm(tangent) > 0.1


def test_n_scaling_cli_contract(capsys, tmp_path):
    code, out = run_cli_json(capsys, "n-scaling", "--N", "100,200", "--seeds", "3", "--tau", "0.1", "--t-max", "10",
                             "--plot", tmp_path / "n.png", "--csv", tmp_path / "n.csv")
    assert code == 0 and out["status"] == "ok"
    lo, hi = out["exponent_ci"]
    assert lo <= out["exponent"] <= hi
    assert [r["N"] for r in out["rows"]] == [100, 200] and all(r["deviation"] > 0 for r in out["rows"])
    assert (tmp_path / "n.png").exists() and (tmp_path / "n.csv").read_text().startswith("N,deviation")


def test_spike_rotation_undoes_a_rotation_of_degenerate_spikes():
    from symvae.analysis._latents import spike_rotation

    m = np.array([[0.9, 0.1], [0.05, 0.7]])
    a = 0.4
    O = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    R = spike_rotation(m @ O, m)
    np.testing.assert_allclose(R @ R.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(m @ O @ R, m, atol=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_the_default_initial_state_has_weights_up_to_six_latents(tied):
    """The default overlaps must be those of some weights (PSD Gram matrix) at every (M, M*) <= (6, 6); they stay the
    formula's where it already is (m_11 = 0.2, m_12 = 0.12 at (2, 2)) and are scaled down only beyond."""
    import types

    from symvae.model import gram_matrix
    from symvae.simulate._initial import default_initial_state
    for M in range(1, 7):
        for Ms in range(1, 7):
            vae = types.SimpleNamespace(decoder_variance="fixed")
            table = types.SimpleNamespace(M=M, M_star=Ms, tied=tied, model=types.SimpleNamespace(vae=vae))
            init = {k: np.array(v, dtype=float) for k, v in default_initial_state(table).items()}
            assert np.linalg.eigvalsh(gram_matrix(M, Ms, init))[0] >= -1e-12, (M, Ms)
            if (M, Ms) == (2, 2):
                assert np.allclose(init["m"], [[0.2, 0.12], [0.156, 0.26]])
