"""Hostile and careless input through the real CLI entry point: one line, the right exit code, no traceback, no file
left behind, no hang; Ctrl-C ends any run within about a second with exit code 130.

Most runs are in-process (``symvae.cli.main``, fast); a handful are real ``python -m symvae`` processes, for what only a
process shows (start-up interrupts, worker pools, the console's stderr).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run_cli
from symvae.cli._common import PARAM_MAX, VARIANT_SET_NAMES, atomic_output
from symvae.cli._main import join_negative_values
from symvae.errors import InvalidInputError, SymvaeError

ROOT = Path(__file__).resolve().parents[1]

#: No in-process run may take longer than this (a hang becomes a failure, not a stuck suite).
IN_PROCESS_TIMEOUT = 120


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """Run ``symvae ARGV`` in-process in an empty folder; (exit code, stdout, stderr) and the files it created."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)

    def run(*argv):
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(IN_PROCESS_TIMEOUT)
        try:
            code, out, err = run_cli(capsys, *argv)
        except _Timeout:
            pytest.fail(f"symvae {' '.join(map(str, argv))} did not finish within {IN_PROCESS_TIMEOUT} s")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        return code, out, err, sorted(p.name for p in work.iterdir())

    return run


def _one_line(err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one stderr line: {err!r}"
    assert "Traceback" not in err and "Warning" not in err, err


# ------------------------------------------------------------------------------------------------ bad input: exit 2
BAD_INPUT = {
    # --set goes through the same validation as --eta/--beta/--tau, and names must exist
    "set eta<0": (["dynamics", "--set", "eta=-1", "--t-max", "1"], "eta"),
    "set beta<0": (["dynamics", "--set", "beta=-3", "--t-max", "1"], "beta"),
    "set tau<0": (["dynamics", "--set", "tau=-5", "--t-max", "1"], "tau"),
    "set unknown": (["dynamics", "--set", "zzz=1", "--t-max", "1"], "beta, eta, lam, rho, tau"),
    "set wrong case": (["dynamics", "--variant", "minibatch", "--set", "B=4", "--t-max", "1"], "b, beta"),
    "set statics tau": (["statics", "--alpha", "2", "--set", "tau=0.1"], "tau"),
    "constant negative schedule": (["dynamics", "--beta-schedule", "-5", "--t-max", "1"], "beta(t)"),
    "schedule log(t)": (["dynamics", "--beta-schedule", "log(t)", "--t-max", "1"], "beta(t)"),
    "schedule exp(t)": (["dynamics", "--beta-schedule", "exp(t)", "--t-max", "100"], "beta(t)"),
    "annealing gamma<0": (["dynamics", "--variant", "annealing", "--set", "gamma=-1", "--t-max", "1"], "gamma"),
    "continue from -1": (["continue", "--param", "beta", "--from", "-1", "--to", "1"], "--from"),
    "continue to 1e300": (["continue", "--param", "beta", "--from", "0.5", "--to", "1e300"], "--to"),
    "max-step -1": (["continue", "--param", "beta", "--from", "0.5", "--to", "1.5", "--max-step", "-1"],
                    "--max-step"),
    "max-step nan": (["continue", "--param", "beta", "--from", "0.5", "--to", "1.5", "--max-step", "nan"],
                     "--max-step"),
    "condition value nan": (["threshold", "condition", "--value", "nan", "--search", "0.1:2"], "--value"),
    "rho 1e308": (["dynamics", "--rho", "1e308", "--t-max", "1"], "--rho"),
    "rho 1e200": (["dynamics", "--rho", "1e200", "--t-max", "1"], "--rho"),
    "rtol nan": (["dynamics", "--t-max", "1", "--rtol", "nan"], "--rtol"),
    "t-max inf": (["dynamics", "--t-max", "inf"], "--t-max"),
    "init 1e300": (["dynamics", "--t-max", "1", "--init", '{"m": [[1e300]], "m_tilde": [[0]], "Q": [[1]], '
                                                          '"Q_tilde": [[1]], "R": [[0]], "D": [1]}'], "--init"),
    "statics alpha 1e-300": (["statics", "--alpha", "1e-300"], "--alpha"),
    "statics rho 1e308": (["statics", "--alpha", "2", "--rho", "1e308"], "--rho"),
    "statics lam 1e300": (["statics", "--alpha", "2", "--lam", "1e300"], "--lam"),
    "phase-diagram beta 1e300": (["phase-diagram", "--alpha-range", "0.1:1", "--beta-range", "0.05:1e300"],
                                 "--beta-range"),
    "rd-curve alpha 1e300": (["rd-curve", "--alpha", "1e300"], "--alpha"),
    "detection eta 1e300": (["threshold", "detection", "--eta", "1e300"], "--eta"),
    # negative values without '=' reach the validation (not argparse's "expected one argument")
    "t-eval negative": (["dynamics", "--t-max", "5", "--t-eval", "-1,5"], "--t-eval"),
    "range negative": (["continue", "--param", "beta", "--from", "0.5", "--to", "1.5", "--second-param", "eta",
                        "--range", "-5:-1"], "--range"),
    # bounded work
    "M 100": (["dynamics", "--M", "100", "--t-max", "1"], "--force"),
    "M 8 M* 4": (["dynamics", "--M", "8", "--M-star", "4", "--t-max", "1"], "--force"),
    "derive M 100": (["derive", "--M", "100"], "--force"),
    "simulate N 1e8": (["simulate", "--N", "1e8", "--t-max", "1"], "--force"),
    "simulate seeds 1e7": (["simulate", "--N", "100", "--seeds", "1e7", "--t-max", "1"], "--force"),
    "simulate N 1.5": (["simulate", "--N", "1.5", "--t-max", "1"], "integer"),
    "starts 1e8": (["fixed-points", "--starts", "1e8"], "--force"),
    "points 1e8": (["continue", "--param", "beta", "--from", "0.5", "--to", "1.5", "--second-param", "eta",
                    "--range", "0.5:1", "--points", "1e8"], "--force"),
    "rd finite-n 1e5": (["rd-curve", "--alpha", "1", "--finite-n", "100000"], "--force"),
    "eg finite-n 1e5": (["eg-curve", "--betas", "0.5", "--alpha-range", "1:2", "--finite-n", "100000"], "--force"),
    "demo digits 1e5": (["demo", "--digits", "100000"], "--digits"),
    "demo N 1e6": (["demo", "--N", "1000000"], "--force"),
    "phase-diagram 1000 x 1000": (["phase-diagram", "--alpha-range", "0.1:1", "--beta-range", "0.1:1", "--n-alpha",
                                   "1000", "--n-beta", "1000"], "--force"),
    "workers 1e6": (["phase-diagram", "--alpha-range", "0.1:1", "--beta-range", "0.1:1", "--workers", "1000000"],
                    "--workers"),
}


@pytest.mark.parametrize("argv, needle", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_exit_2(cli, argv, needle):
    code, out, err, created = cli(*argv)
    assert code == 2, (code, err)
    assert out == ""
    _one_line(err)
    assert needle in err
    assert "expected one argument" not in err
    assert created == [], f"files created by rejected input: {created}"


# ------------------------------------------------------------------------------------------------ output paths
def _output_cases(tmp: Path):
    missing = tmp / "no" / "such" / "folder"
    a_file = tmp / "a_file.txt"
    a_file.write_text("x")
    folder = tmp / "a_folder"
    folder.mkdir()
    cont = ["continue", "--param", "beta", "--from", "0.5", "--to", "1.5"]
    pd = ["phase-diagram", "--alpha-range", "0.1:1", "--beta-range", "0.1:1", "--n-alpha", "2", "--n-beta", "2",
          "--workers", "1"]
    eg = ["eg-curve", "--betas", "0.5", "--alpha-range", "1:2", "--n-alpha", "3"]
    rd = ["rd-curve", "--alpha", "1", "--n-beta", "3"]
    return {
        "continue --out missing parent": (cont + ["--out", missing / "x.json"], "does not exist"),
        "continue --out folder": (cont + ["--out", folder], "is a folder"),
        "continue --out under a file": (cont + ["--out", a_file / "x.json"], "not a folder"),
        "continue --out unwritable": (cont + ["--out", "/proc/x.json"], "cannot write"),
        "continue --plot extension": (cont + ["--plot", tmp / "x.xyz"], "figure format"),
        "continue --plot no extension": (cont + ["--plot", tmp / "x"], "figure format"),
        "phase-diagram --csv folder": (pd + ["--csv", folder], "is a folder"),
        "phase-diagram --out extension": (pd + ["--out", tmp / "pd.docx"], "figure format"),
        "phase-diagram --out missing": (pd + ["--out", missing / "pd.png"], "does not exist"),
        "eg-curve --out missing": (eg + ["--out", missing / "eg.png"], "does not exist"),
        "eg-curve --csv unwritable": (eg + ["--csv", "/proc/eg.csv"], "cannot write"),
        "rd-curve --out folder": (rd + ["--out", folder], "is a folder"),
        "demo --out missing parent": (["demo", "--out", missing / "demo"], "does not exist"),
        "demo --out a file": (["demo", "--out", a_file], "not a folder"),
        "derive --all --out missing parent": (["derive", "--all", "--out", missing / "d"], "does not exist"),
        "derive --all --out a file": (["derive", "--all", "--out", a_file], "not a folder"),
    }


@pytest.mark.parametrize("case", ["continue --out missing parent", "continue --out folder",
                                  "continue --out under a file", "continue --out unwritable",
                                  "continue --plot extension", "continue --plot no extension",
                                  "phase-diagram --csv folder", "phase-diagram --out extension",
                                  "phase-diagram --out missing", "eg-curve --out missing", "eg-curve --csv unwritable",
                                  "rd-curve --out folder", "demo --out missing parent", "demo --out a file",
                                  "derive --all --out missing parent", "derive --all --out a file"])
def test_output_paths_checked_before_work(cli, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    argv, needle = _output_cases(outside)[case]
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    t0 = time.perf_counter()
    code, out, err, created = cli(*argv)
    assert code == 2 and out == "", (code, err)
    _one_line(err)
    assert needle in err
    assert created == [] and sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
    assert time.perf_counter() - t0 < 30  # refused before the computation, not after it


def test_output_written_atomically(cli, tmp_path):
    """continue --out/--plot: the files appear complete, with an ordinary file mode, and nothing else."""
    out, plot = tmp_path / "b.json", tmp_path / "b.svg"
    code, _, err, _ = cli("continue", "--param", "beta", "--from", "0.5", "--to", "1.5", "--out", out, "--plot", plot)
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["status"] == "ok" and data["from"] == 0.5 and data["to"] == 1.5
    assert plot.read_text().rstrip().endswith("</svg>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.svg", "cwd"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_output_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "fig.png"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            assert tmp.suffix == ".png" and tmp.parent == tmp_path
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


# ------------------------------------------------------------------------------------------------ numerical outcomes
def test_numerical_failure_is_a_status_exit_1(cli, monkeypatch):
    """Where the replica solver finds no minimiser, that is exit 1 and one line naming the command, not a bad-input
    exit 2, no warning before it, and no NaN in the JSON: the unsolved points are counted and the status is
    'partial'. The solver's failure is injected (every third solve reported ``failed``): the point that once failed
    here for real (learned D, alpha = 40, lam = 1, small beta) is now solved."""
    import dataclasses

    from symvae.analysis import _diagrams

    solve, calls = _diagrams.solve_statics, [0]

    def failing_every_third(*args, **kwargs):
        r = solve(*args, **kwargs)
        calls[0] += 1
        return dataclasses.replace(r, status="failed", message="injected") if calls[0] % 3 == 0 else r

    monkeypatch.setattr(_diagrams, "solve_statics", failing_every_third)
    code, out, err, created = cli("rd-curve", "--alpha", "40", "--rho", "2", "--eta", "0.5", "--lam", "1",
                                  "--n-beta", "5", "--json")
    assert code == 1, err
    _one_line(err)
    assert err.startswith("symvae: rd-curve: ") and "without a minimiser" in err
    summary = json.loads(out)
    assert summary["status"] == "partial" and summary["unsolved"] >= 1 and "NaN" not in out
    assert created == []


def test_set_is_honoured(cli):
    """--set b=4 changes the run (it used to be ignored, b = 1): the minibatch noise terms scale like tau^2 / b, so
    the late-time error floor is lower with b = 4."""
    args = ["dynamics", "--variant", "minibatch", "--tau", "0.5", "--t-max", "200", "--t-eval", "0,200", "--json"]
    c1, out1, err1, _ = cli(*args)
    c4, out4, err4, _ = cli(*args, "--set", "b=4")
    assert c1 == c4 == 0, (err1, err4)
    assert json.loads(out4)["eg"][-1] < json.loads(out1)["eg"][-1]


def test_negative_values_are_joined_to_their_option():
    assert join_negative_values(["--t-eval", "-1,5", "--range", "-5:-1", "--from", "-.5", "--to", "-1e3"]) == [
        "--t-eval=-1,5", "--range=-5:-1", "--from=-.5", "--to=-1e3"]
    # options, '--', values that already carry '=' and non-numbers stay as they are
    assert join_negative_values(["--json", "--M", "2", "--x=-1", "-h", "--", "-1"]) == [
        "--json", "--M", "2", "--x=-1", "-h", "--", "-1"]


def test_negative_value_without_equals_is_accepted():
    from symvae.cli import build_parser

    args = build_parser().parse_args(["dynamics", "--t-max", "5", "--t-eval", "-1,5", "--beta-schedule", "-5+t",
                                      "--lam", "-1e-3"])
    assert (args.t_eval, args.beta_schedule, args.lam) == ("-1,5", "-5+t", -1e-3)
    args = build_parser().parse_args(["continue", "--param", "beta", "--from", "-.5", "--to", "-1e3", "--range",
                                      "-5:-1"])
    assert (args.start, args.stop, args.range) == (-0.5, -1000.0, "-5:-1")


# ------------------------------------------------------------------------------------------------ help texts
def test_help_lists_threshold_kinds_set_names_and_defaults(cli):
    code, out, _, _ = cli("--help")
    assert code == 0 and "threshold" in out
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("threshold "))
    summary = " ".join(lines[i:i + 3])
    for kind in ("collapse", "noise", "lr", "condition", "detection", "eg_peak", "optimal_beta"):
        assert kind in summary, kind
    code, out, _, _ = cli("dynamics", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "minibatch: b" in flat and "annealing: gamma" in flat and "step_sizes: tau_W" in flat
    assert "number of latents (default 1" in flat and "number of spikes (default 1" in flat and "--force" in flat
    code, out, _, _ = cli("threshold", "--help")
    assert code == 0 and "rho, eta, beta, lam, tau" in " ".join(out.split())


@pytest.mark.parametrize("variant", list(VARIANT_SET_NAMES))
def test_help_set_names_match_the_derivation(variant):
    """The names --help lists for --set are those the derived ODEs need beyond the main options (at M = M* = 1, where
    'D_1..D_M' is D_1)."""
    import symvae

    system = symvae.derive_dynamics(symvae.make_model(variant, M=1, M_star=1))
    extra = {p.name for p in system.params} - {"rho", "eta", "beta", "lam", "tau"}
    listed = {name.split("..")[0] for name in VARIANT_SET_NAMES[variant]}
    assert extra == listed


# ------------------------------------------------------------------------------------------------ cache verb
def test_cache_location_and_clear(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("SYMVAE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    code, out, _, _ = cli("cache", "info", "--json")
    assert code == 0 and json.loads(out) == {"path": str(tmp_path / "xdg" / "symvae"), "exists": False,
                                             "entries": 0, "bytes": 0, "format_version": json.loads(out)[
                                                 "format_version"]}
    root = tmp_path / "explicit"
    monkeypatch.setenv("SYMVAE_CACHE", str(root))
    entry = root / ("ab" * 12)
    entry.mkdir(parents=True)
    (entry / "manifest.json").write_text("{}")
    (root / "keep.txt").write_text("not a cache entry")
    code, out, _, _ = cli("cache", "info", "--json")
    info = json.loads(out)
    assert info["path"] == str(root) and info["entries"] == 1 and info["bytes"] == 2
    code, out, _, _ = cli("cache", "clear", "--json")
    assert code == 0 and json.loads(out)["removed"] == 1
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


# ------------------------------------------------------------------------------------------------ real processes
def _process(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "symvae", *map(str, argv)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _interrupt(proc, after: float) -> tuple[int, str, float]:
    time.sleep(after)
    assert proc.poll() is None, "finished before the interrupt"
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("not interrupted within 30 s")
    return proc.returncode, err, time.perf_counter() - t0


def test_process_bad_input_and_warnings(tmp_path):
    """The console: one line, exit 2, even where numpy would warn (log(0) in the schedule)."""
    proc = _process("dynamics", "--beta-schedule", "log(t)", "--t-max", "1", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == ""
    _one_line(err)


def _wait_until_loaded(proc, library: str, timeout: float = 60) -> None:
    """Wait until the process has mapped ``library`` (Linux /proc), i.e. symvae's own imports are under way."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if library in Path(f"/proc/{proc.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.01)
    pytest.fail(f"{library} not loaded within {timeout} s")


def test_process_interrupt_during_start_up(tmp_path):
    """Ctrl-C while the modules load: one line, exit 130. The interrupt is sent as soon as numpy's extension is
    mapped — numpy is first imported by symvae's CLI, inside its handler, long before sympy and numba are loaded.
    (The interpreter's own start-up, before any symvae code runs, is out of reach.)"""
    proc = _process("phase-diagram", "--alpha-range", "0.1:10", "--beta-range", "0.1:3", "--out", "pd.png",
                    cwd=tmp_path)
    _wait_until_loaded(proc, "_multiarray_umath")
    code, err, dt = _interrupt(proc, after=0.0)
    assert code == 130 and err == "symvae: interrupted\n" and dt < 5
    assert list(tmp_path.iterdir()) == []


def test_process_interrupt_stops_worker_pool(tmp_path):
    """Ctrl-C during a phase diagram computed by 2 worker processes: exit 130 within ~2 s, no figure or CSV, no
    worker left running."""
    proc = _process("phase-diagram", "--alpha-range", "0.1:10", "--beta-range", "0.1:3", "--n-alpha", "200",
                    "--n-beta", "200", "--workers", "2", "--out", "pd.png", cwd=tmp_path)
    code, err, dt = _interrupt(proc, after=6.0)
    assert code == 130 and err.endswith("symvae: interrupted\n") and "Traceback" not in err
    assert dt < 3, f"took {dt:.1f} s to stop"
    assert list(tmp_path.iterdir()) == []
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    assert ps.strip() == "", f"workers left: {ps}"


def test_process_interrupt_during_continuation_leaves_no_file(tmp_path):
    """Ctrl-C during a long continuation with --out and --plot: exit 130 within ~1 s, neither file exists."""
    proc = _process("continue", "--param", "beta", "--from", "0.5", "--to", "1e6", "--M", "2", "--switch",
                    "--out", "branches.json", "--plot", "branches.png", cwd=tmp_path)
    code, err, dt = _interrupt(proc, after=4.0)
    assert code == 130 and err == "symvae: interrupted\n"
    assert dt < 3, f"took {dt:.1f} s to stop"
    assert list(tmp_path.iterdir()) == []


def test_swallowed_interrupt_still_ends_the_run(monkeypatch, capsys):
    """A library that catches the KeyboardInterrupt (or turns it into an ImportError it then ignores) does not keep
    the run going: the interrupt is delivered again within about a second."""
    import symvae.cli._cache

    def swallowing_command(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        time.sleep(20)  # a long computation that would otherwise run to its end
        return 0

    monkeypatch.setattr(symvae.cli._cache, "run", swallowing_command)
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, "cache", "info")
    assert code == 130 and err == "symvae: interrupted\n" and out == ""
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("exc, code, needle", [
    (InvalidInputError("bad value"), 2, "symvae: error: bad value"),
    (SymvaeError("no saddle point"), 1, "symvae: cache: no saddle point"),
    (ZeroDivisionError("float division by zero"), 1, "numerical failure (ZeroDivisionError"),
    (OverflowError(34, "Numerical result out of range"), 1, "numerical failure (OverflowError"),
    (RuntimeError("line one\nline two"), 1, "failed (RuntimeError: line one line two)"),
])
def test_exceptions_become_one_line_with_their_exit_code(monkeypatch, capsys, exc, code, needle):
    """Bad input exits 2; a numerical failure, an arithmetic error deep in the numerics or an unexpected error exits 1
    -- always one line, never a traceback."""
    import symvae.cli._cache

    def failing(args):
        raise exc

    monkeypatch.setattr(symvae.cli._cache, "run", failing)
    got, out, err = run_cli(capsys, "cache", "info")
    assert got == code and out == ""
    _one_line(err)
    assert needle in err


def test_debug_variable_shows_the_traceback(monkeypatch):
    import symvae.cli._cache
    from symvae.cli import main

    def failing(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(symvae.cli._cache, "run", failing)
    monkeypatch.setenv("SYMVAE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["cache", "info"])


def test_staged_folder_moves_everything_or_nothing(tmp_path):
    from symvae.cli._common import staged_folder

    out = tmp_path / "derivations"
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(out) as stage:
            (stage / "a.md").write_text("a")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with staged_folder(out) as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "b.md").write_text("b")
        (stage / "a.md").write_text("a")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.md", "sub/b.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derivations"]


def test_cache_root_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    from symvae._cache import cache_root

    monkeypatch.delenv("SYMVAE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert cache_root() == tmp_path / ".cache" / "symvae"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_root() == tmp_path / ".cache" / "symvae"


def test_an_interrupt_inside_a_finaliser_prints_no_traceback(capsys):
    """A Ctrl-C that lands in a finaliser or weakref callback is 'unraisable' to Python, which would print
    "Exception ignored ..." with a traceback: while symvae runs, such a KeyboardInterrupt is dropped once the
    interrupt is recorded (it is delivered again), and every other unraisable exception still reaches the hook."""
    import sys
    import types

    from symvae.cli import _main
    from symvae.cli._interrupt import set_requested

    seen = []
    hook = _main._quiet_unraisable(seen.append)
    info = types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(), exc_traceback=None,
                                 err_msg=None, object=None)
    try:
        set_requested(True)
        hook(info)
        assert seen == []
        other = types.SimpleNamespace(exc_type=ValueError, exc_value=ValueError(), exc_traceback=None, err_msg=None,
                                      object=None)
        hook(other)
        assert seen == [other]
        set_requested(False)
        hook(info)  # not requested: not ours to drop
        assert seen == [other, info]
    finally:
        set_requested(False)
    before = sys.unraisablehook
    with pytest.raises(SystemExit):  # argparse's usage error: main restores the hook however it ends
        _main.main(["--no-such-option"])
    assert sys.unraisablehook is before
