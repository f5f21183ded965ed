"""``symvae fit-data`` and ``symvae realdata`` end to end."""
import json
import struct

import numpy as np
import pytest

from helpers import run_cli, run_cli_json
from symvae.data import fit_spiked, load_dataset
from symvae.model import make_model
from symvae.statics import sample_dataset

KEYS = {"N", "n", "alpha", "eta_hat", "spikes", "beta_c", "optimal_beta", "status"}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_fit_data_digits_json(capsys):
    code, out = run_cli_json(capsys, "fit-data", "--dataset", "digits", "--bootstrap", "4")
    assert code == 0 and KEYS <= set(out)
    assert (out["N"], out["n"]) == (61, 1797) and out["alpha"] == pytest.approx(1797 / 61, rel=1e-12)
    assert out["status"] == "ok" and len(out["spikes"]) == len(out["beta_c"]) == out["K"] >= 10
    for k, (s, bc) in enumerate(zip(out["spikes"], out["beta_c"])):
        assert set(s) >= {"rho_hat", "rho_ci", "sample_eigenvalue"}
        if k < 10:  # strong spikes: every replicate detects them (weak ones may have no interval: null in JSON)
            assert s["rho_ci"][0] < s["rho_hat"] < s["rho_ci"][1]
        # lam = 0: the threshold at the dataset's own alpha is the sample eigenvalue the spike was inverted from
        assert bc == pytest.approx(s["sample_eigenvalue"], rel=1e-9)
    # the statics' claim, on real data: the optimal beta sits near the noise level (measured 0.247 vs 0.231)
    assert out["optimal_beta"] == pytest.approx(out["eta_hat"], rel=0.15)


def _idx_float(path, X):
    path.write_bytes(bytes([0, 0, 0x0D, 2]) + struct.pack(">2I", *X.shape) + X.astype(">f4").tobytes())


def test_fit_data_on_an_idx_file_recovers_the_planted_model(tmp_path, capsys):
    model = make_model("per_spike_rho", M=1, M_star=2)
    data = sample_dataset(model, {"rho_1": 5.0, "rho_2": 2.0, "eta": 1.0}, 60, 10.0, seed=4)
    _idx_float(tmp_path / "spiked-idx2-float", data.X)
    code, out = run_cli_json(capsys, "fit-data", "--dataset", tmp_path / "spiked-idx2-float")
    assert code == 0 and out["K"] == 2
    # prepare() divides by the root mean per-coordinate variance s; the theory's rho, eta scale by 1/s^2
    s2 = np.sum((data.X - data.X.mean(0)) ** 2) / data.X.size
    assert out["eta_hat"] * s2 == pytest.approx(1.0, rel=0.05)
    assert out["spikes"][0]["rho_hat"] * s2 == pytest.approx(5.0, rel=0.25)


def test_realdata_writes_the_report(tmp_path, capsys):
    model = make_model("per_spike_rho", M=1, M_star=2)
    data = sample_dataset(model, {"rho_1": 6.0, "rho_2": 2.5, "eta": 1.0}, 12, 15.0, seed=2)
    np.save(tmp_path / "x.npy", data.X)
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "realdata", "--dataset", tmp_path / "x.npy", "--out", out, "--quick",
                                "--M", "1")
    assert code == 0, err
    for name in ("report.md", "numbers.json", "spectrum.png", "active.png", "rd.png", "eg_alpha.png",
                 "subsample.png", "spikes.csv", "linear_active.csv", "nonlinear.csv", "switch_off.csv"):
        assert (out / name).stat().st_size > 0, name
    numbers = json.loads((out / "numbers.json").read_text())
    fit = fit_spiked(load_dataset(str(tmp_path / "x.npy")).X, null_draws=0)
    assert numbers["fit"]["eta_hat"] == pytest.approx(fit.eta_hat, rel=1e-12)
    assert numbers["fit"]["K"] == fit.K == 2
    # a strong spike: the linear VAE's active counts follow the threshold
    assert numbers["linear"]["verdict"] == "holds"
    rows = numbers["nonlinear"]["rows"]
    assert {r["n_train"] for r in rows} == set(numbers["nonlinear"]["sizes"]) and len(rows) >= 6
    text = (out / "report.md").read_text()
    for section in ("## Spectrum", "## Linear VAE", "## Dataset-size", "## Nonlinear VAE"):
        assert section in text


def test_realdata_refuses_a_file_as_out_folder(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, out, err = run_cli(capsys, "realdata", "--dataset", "digits", "--out", tmp_path / "f", "--quick")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_fit_data_on_pure_noise_finds_no_spike(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", np.random.default_rng(0).normal(size=(300, 10)) * 3.0 + 1.0)
    code, out = run_cli_json(capsys, "fit-data", "--dataset", tmp_path / "noise.npy")
    assert code == 0 and out["K"] == 0 and out["status"] == "no-spikes" and out["optimal_beta"] is None
    # white noise in theory units (mean per-coordinate variance 1) has eta = 1; the median-matching error at
    # N = 10, n = 300 is a few percent
    assert out["eta_hat"] == pytest.approx(1.0, rel=0.1)


def test_without_the_extra_the_commands_say_what_to_install(monkeypatch, capsys, tmp_path):
    # an import of a module set to None in sys.modules raises ImportError, as if it were not installed
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    code, out, err = run_cli(capsys, "realdata", "--dataset", "digits", "--out", tmp_path / "r", "--quick")
    assert code == 2 and "symvae[real]" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setitem(__import__("sys").modules, "sklearn.datasets", None)
    code, out, err = run_cli(capsys, "fit-data", "--dataset", "digits", "--json")
    assert code == 2 and "symvae[real]" in err and len(err.strip().splitlines()) == 1
