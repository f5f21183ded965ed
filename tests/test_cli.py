"""The CLI contract: JSON shapes, exit codes, one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import symvae
from helpers import run_cli as run


@pytest.mark.parametrize("fmt", ["markdown", "latex", "python", "json"])
def test_derive_formats(capsys, fmt):
    code, out, _ = run(capsys, "derive", "--variant", "tied", "--M", "2", "--format", fmt)
    assert code == 0 and out
    system = symvae.derive_dynamics(symvae.make_model("tied", M=2))
    if fmt == "json":
        data = json.loads(out)
        assert data["state"] == [s.name for s in system.state]
        for s, e in system.equations().items():
            assert sp.expand(sp.sympify(data["equations"][s.name], locals={x.name: x for x in e.free_symbols})
                             - e) == 0
    if fmt == "python":
        ns = {}
        exec(out, ns)
        for s, e in system.equations().items():
            assert sp.expand(ns["EQUATIONS"][s.name] - e) == 0


def test_dynamics_json_contract(capsys):
    init = {"m": [[0.1], [0.05]], "m_tilde": [[0.1], [0.0]], "Q": [[1, 0], [0, 1]], "Q_tilde": [[1, 0], [0, 1]],
            "R": [[0, 0], [0, 0]], "D": [1, 1]}
    code, out, err = run(capsys, "dynamics", "--rho", "1", "--eta", "1", "--beta", "1", "--lam", "0", "--tau",
                         "0.01", "--M", "2", "--M-star", "1", "--t-max", "100", "--t-eval", "0,50,100",
                         "--init", json.dumps(init), "--json")
    assert code == 0
    assert out.count("\n") == 1
    data = json.loads(out)
    assert data["status"] == "ok" and data["t"] == [0, 50, 100]
    for key, shape in {"m": (2, 1), "m_tilde": (2, 1), "Q": (2, 2), "Q_tilde": (2, 2), "R": (2, 2),
                       "D": (2,)}.items():
        assert np.asarray(data[key]).shape == (3,) + shape, key
    assert np.allclose(data["m"][0], init["m"])
    assert len(data["eg"]) == 3


def test_dynamics_divergence_exit_code_and_status(capsys):
    code, out, err = run(capsys, "dynamics", "--tau", "3", "--t-max", "50", "--json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "diverged" and "t_stop" in data
    assert all(np.isfinite(np.asarray(data["Q"], dtype=float)).ravel())
    assert "diverged at t =" in err


def test_dynamics_table_output(capsys):
    code, out, _ = run(capsys, "dynamics", "--t-max", "10")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["t", "eg"]


@pytest.mark.parametrize("argv", [
    ["dynamics", "--rho", "-1", "--t-max", "1"],
    ["dynamics", "--eta", "inf", "--t-max", "1"],
    ["dynamics", "--tau", "-0.1", "--t-max", "1"],
    ["dynamics", "--beta", "nan", "--t-max", "1"],
    ["dynamics", "--M", "0", "--t-max", "1"],
    ["dynamics", "--variant", "nope", "--t-max", "1"],
    ["dynamics", "--init", "{oops", "--t-max", "1"],
    ["dynamics", "--init", '{"m": [[0]], "m_tilde": [[0]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [0]}',
     "--t-max", "1"],
    ["dynamics", "--init", '{"m": [[3]], "m_tilde": [[0]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [1]}',
     "--t-max", "1"],
    ["dynamics", "--beta-schedule", "tanh(", "--t-max", "1"],
    ["dynamics", "--init", "random:2", "--t-max", "1"],
    ["dynamics", "--init", "random:1e4", "--t-max", "1"],
    ["dynamics", "--init", "random:100:1:2", "--t-max", "1"],
    ["sweep", "--param", "beta", "--values", "1", "--metric", "eg_final", "--init", "random:-5", "--t-max", "1"],
    ["dynamics", "--t-max", "1", "--t-eval", "0,a"],
    ["derive", "--variant", "nope"],
    ["derive", "--M", "0"],
])
def test_bad_input_one_line_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_dynamics_random_init_is_the_drawn_state(capsys):
    """--init random:N:SEED starts from the overlaps of i.i.d. Gaussian weights drawn by random_initial_state; the
    draw moves with the seed and is O(N^-1/2) off the default Q = I, m = 0."""
    from symvae.simulate import random_initial_state

    table = symvae.model.SymbolTable(symvae.make_model("base", M=2))
    starts = []
    for seed in (0, 5):
        code, out, _ = run(capsys, "dynamics", "--M", "2", "--t-max", "1", "--t-eval", "0,1", "--init",
                           f"random:400:{seed}", "--json")
        assert code == 0
        data = json.loads(out)
        drawn = random_initial_state(table, 400, seed)
        for key in ("m", "m_tilde", "Q", "Q_tilde", "R"):
            assert np.array_equal(np.asarray(data[key][0]), np.asarray(drawn[key])), key
        starts.append(np.asarray(data["Q"][0]))
    assert not np.array_equal(*starts)
    assert 0 < np.max(np.abs(starts[0] - np.eye(2))) < 6 / np.sqrt(400)


def test_console_script_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "symvae", "dynamics", "--rho", "-1", "--t-max", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_simulate_json_contract(capsys):
    code, out, err = run(capsys, "simulate", "--tau", "0.5", "--t-max", "4", "--t-eval", "0,2,4", "--N", "200",
                         "--seeds", "3", "--json", "--init",
                         '{"m": [[0.3]], "m_tilde": [[0.3]], "Q": [[1]], "Q_tilde": [[1]], "R": [[0]], "D": [1]}')
    assert code == 0 and out.count("\n") == 1
    data = json.loads(out)
    assert data["status"] == "ok" and data["t"] == [0, 2, 4]
    for key in ("m", "m_tilde", "Q", "Q_tilde", "R", "D"):
        assert np.asarray(data["mean"][key]).shape[0] == 3 and key in data["std"]
    assert data["mean"]["m"][0] == [[pytest.approx(0.3, abs=1e-12)]]
    assert data["std"]["Q"][0] == [[pytest.approx(0.0, abs=1e-12)]]


def test_simulate_bad_input(capsys):
    code, out, err = run(capsys, "simulate", "--t-max", "1", "--N", "1", "--seeds", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_command_table_names_every_command_and_its_module():
    """``symvae COMMAND`` registers only the module the table names: the table must list exactly the commands
    each module registers, and a one-module parser must accept what the full parser accepts."""
    import argparse
    import importlib

    from symvae.cli._main import _COMMAND_MODULES, COMMANDS, build_parser

    registered = {}
    for name in _COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        registered.update({command: name for command in sub.choices})
    assert registered == COMMANDS
    def options(parser, command):
        sub = parser._subparsers._group_actions[0].choices
        return sorted(o for a in sub[command]._actions for o in a.option_strings), sub[command].epilog

    full = build_parser()
    for command in COMMANDS:
        one = build_parser([command, "--help"])
        assert set(one._subparsers._group_actions[0].choices) == {c for c, m in COMMANDS.items()
                                                                  if m == COMMANDS[command]}
        assert options(one, command) == options(full, command)
    assert set(build_parser(["--help"])._subparsers._group_actions[0].choices) == set(COMMANDS)
