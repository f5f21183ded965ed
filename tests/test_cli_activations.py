"""Every verb that takes a model takes --encoder-activation / --decoder-activation: the dynamics studies (sweep,
n-scaling, anneal) run the activated model (its derived ODE and its finite-N simulation), and the statics verbs,
which are derived for linear encoder and decoder only, refuse an activation with one line (exit 2) instead of
answering for the linear model."""
import json

import pytest

import symvae
from helpers import run_cli
from symvae.derive import derive_dynamics


@pytest.mark.parametrize("argv", [
    ("statics", "--alpha", "2"),
    ("statics", "--alpha", "2", "--method", "closed-form"),
    ("phase-diagram", "--alpha-range", "0.5:2", "--beta-range", "0.5:2"),
    ("eg-curve", "--alpha-range", "0.5:2", "--betas", "1"),
    ("rd-curve", "--alpha", "2"),
    ("threshold", "collapse", "--alpha", "2"),
    ("threshold", "detection", "--alpha", "2"),
])
def test_statics_verbs_refuse_an_activation(capsys, argv):
    code, out, err = run_cli(capsys, *argv, "--decoder-activation", "erf")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "linear encoder and decoder only" in err, err


def _erf_ode_eg(t_max, beta):
    """eg at t_max of the erf-decoder ODE from the default start, integrated here (not through the sweep)."""
    from symvae.codegen import compile_system
    from symvae.numerics import integrate
    from symvae.simulate import default_initial_state
    system = derive_dynamics(symvae.make_model("base", decoder_activation="erf"))
    init = {k: v for k, v in default_initial_state(system.table).items() if k in system.blocks}
    traj = integrate(compile_system(system), init, dict(beta=beta, eta=1.0, lam=0.0, rho=1.0, tau=0.01), [t_max],
                     throw=True)
    return float(traj.observables()["eg"][-1])


def test_sweep_runs_the_activated_model(capsys):
    """sweep --decoder-activation erf: eg at t_max is the erf ODE's (it used to be the linear model's, 1.8097), and
    the finite-N mean (nonlinear simulator, eps sampled) lies within a few standard errors plus O(N^-1/2) of it."""
    code, out, err = run_cli(capsys, "sweep", "--param", "beta", "--values", "0.5", "--t-max", "5",
                             "--decoder-activation", "erf", "--finite-n", "200", "--seeds", "3", "--json")
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    assert row["eg_final"] == pytest.approx(_erf_ode_eg(5.0, 0.5), rel=1e-8)
    code, out, _ = run_cli(capsys, "sweep", "--param", "beta", "--values", "0.5", "--t-max", "5", "--json")
    assert abs(json.loads(out)["rows"][0]["eg_final"] - row["eg_final"]) > 0.05
    assert abs(row["eg_final_sim"] - row["eg_final"]) < 5 * row["eg_final_se"] + 0.02


def test_n_scaling_runs_the_activated_model(capsys):
    """n-scaling --decoder-activation erf compares the nonlinear simulation with the erf ODE: its ODE column is the
    erf ODE's eg and the simulated eg follows it."""
    code, out, err = run_cli(capsys, "n-scaling", "--decoder-activation", "erf", "--N", "50,100", "--seeds", "2",
                             "--t-max", "2", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert rows[-1]["eg_ode_final"] == pytest.approx(_erf_ode_eg(2.0, 1.0), rel=1e-6)
    assert all(abs(r["eg_sim_final"] - r["eg_ode_final"]) < 0.05 for r in rows)


def test_anneal_study_takes_the_activation():
    """The annealing study builds its schedule model and its constant-beta model with the activation."""
    from symvae.analysis._anneal import AnnealingStudy
    study = AnnealingStudy("tanh", dict(rho=1.0, eta=1.0, beta=1.0, lam=0.0, tau=0.1), decoder_activation="erf",
                           t_max=4000.0)
    assert study.model.vae.decoder_activation == "erf"
    assert study.base.system.model.vae.decoder_activation == "erf"
