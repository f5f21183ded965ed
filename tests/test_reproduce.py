"""``symvae reproduce --quick``: the report's numbers against published values, closed forms and simulation."""
import csv
import json
import math

import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from symvae.cli import main

    out = tmp_path_factory.mktemp("reproduce")
    code = main(["reproduce", "--out", str(out), "--quick"])
    return code, out, json.loads((out / "numbers.json").read_text())


def test_report_files(report):
    code, out, numbers = report
    assert code == 0 and numbers["status"] == "ok", numbers["sections"]
    text = (out / "report.md").read_text()
    for name in ("collapse", "notebook", "anneal", "superfluous", "disentangle", "n_scaling", "statics_eg",
                 "statics_rd", "statics_optimal_beta", "statics_beta_vs_lambda"):
        assert f"]({name}.png)" in text
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / f"{name}.csv").exists()
    assert text.count("Regenerate:") >= 10


def test_annealing_numbers_are_the_published_ones(report):
    _, _, numbers = report
    a = numbers["anneal"]["tau_0.1"]
    assert a["time_constant"] == pytest.approx(146.3, abs=0.05)
    published = {0.001: (1378, 0.5), 0.003: (478, 0.5), 0.01: (152.8, 0.05), 0.03: (139.5, 0.05),
                 0.1: (144.2, 0.05), 1.0: (146.0, 0.05)}
    times = {row["gamma"]: row["time"] for row in a["curve"]}
    for gamma, (value, tol) in published.items():
        assert times[gamma] == pytest.approx(value, abs=tol)
    assert a["gamma_opt"] == pytest.approx(0.016, abs=0.0005)
    assert a["time_saved_fraction"] == pytest.approx(0.077, abs=0.0006)
    tau01 = [r for r in numbers["anneal"]["gamma_opt_vs_tau"] if r["tau"] == 0.01][0]
    assert tau01["gamma_opt"] == pytest.approx(0.0013, abs=0.00006)  # published gamma* ~ 0.0013 at tau = 0.01


def test_collapse_against_closed_form(report):
    _, _, numbers = report
    rows = numbers["collapse"]["rows"]
    assert {r["beta"] > 2 for r in rows} == {True, False}
    for r in rows:
        assert r["fp_stable"] == 1.0
        if r["beta"] > 2.0:  # beta_c = rho + eta: collapsed, eg = rho
            assert r["eg_fp"] == pytest.approx(1.0, abs=1e-9)
        else:  # (sqrt(rho) - sqrt(rho + eta - beta))^2 up to the O(tau) floor at tau = 0.01
            assert r["eg_fp"] == pytest.approx((1 - math.sqrt(2 - r["beta"])) ** 2, abs=0.02)


def test_superfluous_latent(report):
    _, _, numbers = report
    s = numbers["superfluous"]
    assert s["convergence_time_beta1"]["M1"] == pytest.approx(169, abs=0.6)  # published
    assert s["convergence_time_beta1"]["M2"] > 5 * s["convergence_time_beta1"]["M1"]
    # the published M = 2 time (1391) is one draw of the random initial weights: it lies within the draws' range,
    # which is narrow against the M = 1 time (an O(1) change of the dynamics would move the whole range)
    spread = s["convergence_time_beta1_random_init"]
    assert spread["draws"] == len(spread["times"]) >= 8 and spread["N"] == 10_000
    assert spread["min"] <= 1391 <= spread["max"] and spread["max"] < 1.5 * spread["min"]
    spare = {r["beta"]: r["superfluous_norm"] for r in s["rows"] if r["M"] == 2}
    assert spare[0.5] == pytest.approx(1.0 - 0.5, abs=0.1)  # fits noise: eta - beta as tau -> 0
    assert spare[1.5] < 1e-8  # above the noise threshold it collapses


def test_notebook_setting_matches_simulation(report):
    _, _, numbers = report
    nb = numbers["notebook"]
    assert nb["N"] == 200 and nb["seeds"] == 5
    z = [(r["eg_sim"] - r["eg_ode"]) / r["eg_sim_se"] for r in nb["rows"][1:]]
    assert sum(abs(v) > 3 for v in z) <= 1, z


def test_concentration_exponent(report):
    _, _, numbers = report
    lo, hi = numbers["n_scaling"]["exponent_ci"]
    assert lo < -0.5 < hi and hi < 0


def test_statics_collapse_threshold_is_top_sample_eigenvalue(report):
    _, _, numbers = report
    for row in numbers["statics"]["beta_c"]:
        a = row["alpha"]
        if a is None or a == "inf" or (isinstance(a, float) and math.isinf(a)):
            expected = 2.0  # rho + eta
        elif a > 1.0:  # above the BBP point alpha = (eta / rho)^2: outlier (rho + eta)(1 + eta / (alpha rho))
            expected = 2.0 * (1.0 + 1.0 / a)
        else:  # bulk edge eta (1 + alpha^-1/2)^2
            expected = (1.0 + 1.0 / math.sqrt(a)) ** 2
        assert row["beta_c"] == pytest.approx(expected, rel=1e-9)


def test_statics_optimal_beta_tends_to_eta(report):
    _, _, numbers = report
    rows = sorted(numbers["statics"]["optimal_beta"], key=lambda r: r["alpha"])
    assert abs(rows[-1]["beta_opt"] - 1.0) < 0.01  # published: optimal beta close to eta at large alpha
    gaps = [abs(r["beta_opt"] - 1.0) for r in rows]
    assert gaps == sorted(gaps, reverse=True)


def test_statics_beta_versus_lambda_plateaus(report):
    _, out, numbers = report
    b = numbers["statics"]["beta_vs_lambda"]["beta_induced"]
    lam = numbers["statics"]["beta_vs_lambda"]["lam_induced"]
    # beta = 2.5 > rho + eta: collapsed from beta_c(alpha) = 2 (1 + 1/alpha) = 2.5, i.e. alpha = 4, for ever
    assert b["plateau_edge_alpha"] == pytest.approx(4.0, rel=1e-8)
    assert b["phase_at_largest_alpha"] == "collapsed" and b["eg_at_largest_alpha"] == pytest.approx(1.0)
    # lam-induced: collapsed at small alpha, learning at large alpha; the edge sits where the curve's phase changes
    assert lam["phase_at_smallest_alpha"] == "collapsed" and lam["phase_at_largest_alpha"] == "learning"
    with open(out / "statics_beta_vs_lambda.csv", newline="") as fh:
        lam_rows = [(float(r["alpha"]), r["phase"]) for r in csv.DictReader(fh) if "λ = 2" in r["case"]]
    last_collapsed = max(a for a, ph in lam_rows if ph == "collapsed")
    first_other = min(a for a, ph in lam_rows if ph != "collapsed")
    assert last_collapsed < lam["plateau_edge_alpha"] < first_other


def test_disentanglement(report):
    _, _, numbers = report
    d = numbers["disentangle"]
    assert d["entanglement_initial"] > 0.2 and d["entanglement_final"] < 0.05
    assert 0 < d["disentangle_time"] < 200


def test_entangled_saddle(report):
    """One unstable eigenvalue; spread starts pass within ~2 eps and stay log(10)/lambda_+ longer per decade of eps
    (the linearisation at the saddle); the default start stays away."""
    _, out, numbers = report
    s = numbers["disentangle"]["entangled_saddle"]
    eig = [re for re, _ in s["eigenvalues"]]
    assert sum(v > 1e-7 for v in eig) == 1 and s["unstable_eigenvalue"] == max(eig)
    assert all(abs(v) > 0.5 for row in s["m"] for v in row)  # mixed overlaps
    p = s["passages"]
    near = {eps: p[f"spread start, eps = {eps:g}"] for eps in (1e-2, 1e-3)}
    for eps, q in near.items():
        assert q["distance"] < 3 * eps and q["left_by_t_max"]
    delay = near[1e-3]["time_near"] - near[1e-2]["time_near"]
    assert delay == pytest.approx(math.log(10) / s["unstable_eigenvalue"], rel=0.05)
    assert p["default start"]["distance"] > 0.5
    assert (out / "entangled_saddle.csv").exists()


def test_training_set_rd(report):
    _, out, numbers = report
    t = numbers["statics"]["rd_train"]
    assert (out / "statics_rd_train.png").read_bytes()[:4] == b"\x89PNG"
    for c in t["erm"]:
        for q in ("train_rate", "train_distortion"):
            assert abs(c[f"{q}_erm"] - c[f"{q}_theory"]) < 4 * c[f"{q}_se"], c
    for r in t["curves"]:
        if r["status"] == "ok" and r["train_rate"] > 1e-6:
            assert r["train_distortion"] < r["distortion"]  # the training samples are fitted better


def test_reproduce_needs_out(capsys):
    code, out, err = run_cli(capsys, "reproduce")
    assert code == 2 and len(err.strip().splitlines()) == 1
