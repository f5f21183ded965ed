"""User expressions are read without running code; a .py derivation runs behind a process boundary.

Covers ``symvae.model._expr.parse_expression`` (whitelist, bounds, fuzz), the paths that reach it (``--beta-schedule``,
Markdown headers, symbol maps), and ``symvae check FILE.py`` (child process, exits, time limit, no pickle).
"""
from __future__ import annotations

import builtins
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import parse_expr

from helpers import run_cli
from symvae.errors import InvalidInputError
from symvae.model import N, make_model, t
from symvae.model._expr import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, parse_expression

EXPLOIT = "(t.subs.__globals__['__builtins__']['__import__']('os').system)('touch pwned')"
HEADER = "HEADER = {'setting': 'dynamics', 'variant': 'base'}\n"


@contextlib.contextmanager
def finishes_within(seconds: float):
    """Guard against a hang (not a timing assertion): SIGALRM turns a stuck call into a test failure."""
    def stuck(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------------- accepted
def _reference(text: str) -> sp.Expr:
    """SymPy's own parser on the test's fixed, trusted strings: the behaviour the safe parser must keep."""
    names = {"t": t, "N": N, "pi": sp.pi, "E": sp.E, **FUNCTIONS}
    for word in ("beta", "gamma", "eta", "x", "beta_0", "beta_1", "tau_W"):
        names[word] = sp.Symbol(word, real=True)
    return parse_expr(text, local_dict=names, global_dict={"Integer": sp.Integer, "Float": sp.Float,
                                                           "Rational": sp.Rational, "Symbol": sp.Symbol})


@pytest.mark.parametrize("text", [
    "1.5*tanh(0.01*t)", "beta*tanh(gamma*t)", "2*(1 - exp(-t/50))", "-0.01*t", "0.1", "1e-3", "1/3", "2**0.5",
    "10**-2", "-t**2", "2**-t", "beta_0 + (beta_1 - beta_0)*t/N", "Max(0.5, 1 - exp(-t))", "Min(1, t/10)",
    "Heaviside(t - 3)", "erf(t/10)*pi + E", "Abs(-t)", "atan(t)*cos(t)*sin(t)*sinh(t)*cosh(t)", "3.0e+2*t",
    "sqrt(eta)", "log(1 + t)", "0.30000000000000000001", "+t", "Piecewise((1, t < 5), (2 + t, True))",
    "Piecewise((beta, t >= 10), (0.5*beta, True))", "tau_W*x**8 + x**64", "  1 + t  ",
])
def test_accepted_expressions_build_what_sympy_builds(text):
    got = parse_expression(text, "test")
    assert sp.srepr(got) == sp.srepr(_reference(text))


def test_names_constants_and_allowed_names():
    assert parse_expression("t*N") == t * N and parse_expression("t").is_nonnegative
    assert parse_expression("gamma") == sp.Symbol("gamma", real=True)  # not the gamma function
    assert parse_expression("pi") is sp.pi
    assert parse_expression("beta*t", allowed_names={"beta", "t"}) == sp.Symbol("beta", real=True) * t
    with pytest.raises(InvalidInputError, match=r"unknown name 'gamma'; allowed: beta, t \(column 6\)"):
        parse_expression("beta*gamma", "x", allowed_names={"beta", "t"})


def test_float_literals_keep_the_typed_decimal():
    assert parse_expression("0.1") == sp.Float("0.1") != sp.Float(0.1, 30)
    assert str(parse_expression("0.30000000000000000001")) == str(sp.Float("0.30000000000000000001"))


def test_schedules_build_the_same_model_as_before():
    model = make_model(beta_schedule="1.5*tanh(0.01*t)")
    assert model.vae.beta == sp.Float("1.5") * sp.tanh(sp.Float("0.01") * t)


# ---------------------------------------------------------------------------------------------------- rejected
@pytest.mark.parametrize("text, fragment, column", [
    (EXPLOIT, "only the listed functions can be called", 2),
    ("t.subs", "attribute access is not allowed", 1),
    ("t[0]", "subscript is not allowed", 1),
    ("lambda: 1", "lambda is not allowed", 1),
    ("[x for x in t]", "comprehension is not allowed", 1),
    ("(x for x in t)", "generator expression is not allowed", 1),
    ("f'{t}'", "f-string is not allowed", 1),
    ("'abc'", "string is not allowed", 1),
    ("b'abc'", "bytes is not allowed", 1),
    ("2j", "complex number is not allowed", 1),
    ("True", "boolean is not allowed", 1),
    ("None", "None is not allowed", 1),
    ("__import__('os')", "unknown function '__import__'", 1),
    ("__class__", "names may not start with '_'", 1),
    ("_x + 1", "names may not start with '_'", 1),
    ("eval('1')", "unknown function 'eval'", 1),
    ("exp(x=1)", "keyword arguments are not allowed", 7),
    ("exp(*t)", "starred argument is not allowed", 5),
    ("exp", "function 'exp' needs an argument list", 1),
    ("pi(2)", "unknown function 'pi'", 1),
    ("t ^ 2", "'^' (write powers as '**')", 3),
    ("t // 2", "operator '//' is not allowed", 3),
    ("t < 2", "comparison is not allowed", 1),
    ("t if t else 1", "conditional expression is not allowed", 1),
    ("(t, 1)", "tuple is not allowed", 1),
    ("{t: 1}", "dict is not allowed", 1),
    ("Piecewise((1, 1 < t < 2))", "a Piecewise condition is True or one comparison", 15),
    ("Piecewise(1)", "Piecewise takes pairs", 11),
    ("1/0", "not finite", None),
    ("log(0)", "not finite", None),
    ("tanh(", "syntax error", 5),
    ("t;1", "syntax error", 2),
    ("t\n+1", "printable ASCII only", 2),
    ("β*t", "printable ASCII only", 1),
    ("", "empty", None),
])
def test_rejected_constructs_name_the_construct_and_column(text, fragment, column):
    with pytest.raises(InvalidInputError) as info:
        parse_expression(text, "beta schedule")
    message = str(info.value)
    assert "\n" not in message and message.startswith("beta schedule ")
    assert fragment in message
    if column is not None:
        assert message.endswith(f"(column {column})")


@pytest.mark.parametrize("text, fragment", [
    ("9**9**9**9", "exponent 387420489 is larger than 64"),
    ("2**(2**6*2)", "exponent 128 is larger than 64"),
    ("2**65", "exponent 65 is larger than 64"),
    ("t**65", "multiply out to degree 65"),
    ("(9**64)**64", "digits"),
    ("1e400", "outside the float64 range"),
    ("1e308*10", "outside the float64 range"),
    ("exp(1001)", "argument of exp is larger than 1000"),
    ("exp(exp(exp(5.0)))", "argument of exp is larger than 1000"),
    ("Max(Max(a, b, c, d), Max(e, f, g, h, i))", "at most 8 arguments in all"),
    ("sqrt(" + "9" * 999 + ")", "a root of an exact number of more than 100 digits"),
    ("(" * 7 + "t" + "+1)**2" * 7, "multiply out to degree 128 or more (at most 64)"),
    ("(x+y*" * 6 + "t" + ")**2" * 6, "multiply out to degree"),
    ("Abs(" * 17 + "t" + "-1)" * 17, "calls and denominators nested more than 16 deep"),
    ("1/(1+" * 17 + "t" + ")" * 17, "calls and denominators nested more than 16 deep"),
    ("exp(0*(1/0))", "not finite"),
    ("Abs((" + "9" * 101 + ")**(1/3) - 1)", "a root of an exact number of more than 100 digits"),
])
def test_bounds_reject_instantly(text, fragment):
    with finishes_within(5), pytest.raises(InvalidInputError, match=None) as info:
        parse_expression(text)
    assert fragment in str(info.value)


def test_cpu_budget_stops_sympy_and_restores_the_signal(monkeypatch):
    """The backstop behind the structural bounds: SymPy's own simplification is stopped after a CPU-time budget."""
    import symvae.model._expr as expr_module

    nested = "Abs(" * 16 + "t" + "-1)" * 16  # within every structural bound, ~0.3 s of SymPy work
    before = signal.getsignal(signal.SIGVTALRM)
    monkeypatch.setattr(expr_module, "MAX_BUILD_SECONDS", 0.002)
    sp.core.cache.clear_cache()  # the build must do its work, not find it in SymPy's cache
    with pytest.raises(InvalidInputError, match="SymPy needs more than 0.002 s of CPU time"):
        parse_expression(nested, "beta schedule")
    assert signal.getsignal(signal.SIGVTALRM) is before and signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)
    assert parse_expression("1.5*tanh(0.01*t)") == sp.Float("1.5") * sp.tanh(sp.Float("0.01") * t)


def test_length_and_depth_bounds():
    with pytest.raises(InvalidInputError, match=f"longer than {MAX_LENGTH} characters"):
        parse_expression("t+" * (MAX_LENGTH // 2) + "t")
    with pytest.raises(InvalidInputError, match=f"nested more than {MAX_DEPTH} deep"):
        parse_expression("-" * (MAX_DEPTH + 5) + "t")
    with pytest.raises(InvalidInputError, match="syntax error"):  # Python's own parser limit, one line too
        parse_expression("(" * 300 + "t" + ")" * 300)
    assert parse_expression("+".join(f"x{k}" for k in range(150))).is_Add  # a long sum stays readable
    assert parse_expression("sqrt(" + "9" * 100 + ")") == 3 * sp.sqrt(int("1" * 100))  # 100 digits are fine


# ---------------------------------------------------------------------------------------------------- fuzz
_PIECES = st.sampled_from([
    "t", "x", "beta", "exp", "log", "Piecewise", "Min", "pi", "E", "N", "os", "system", "eval", "exec", "open",
    "__import__", "__class__", "__globals__", "__builtins__", "__subclasses__", "_x", "subs", "func", "mro",
    "lambda", "for", "in", "if", "else", "not", "and", "or", "yield", "await", "True", "None", "import",
    ".", ",", ":", ";", "=", "==", "<", ">=", "**", "*", "/", "+", "-", "^", "@", "~", "|", "&", "%", "!", "?",
    "(", ")", "[", "]", "{", "}", "'", '"', "'touch x'", "\\", "#", "`", " ", "\t", "\n",
    "0", "1", "9", "0.01", "1e308", "1e400", "1e-400", "1j", "0x1f", "1_0", "10" * 20, "9**9", "**64", "**65",
])


@st.composite
def hostile(draw):
    text = "".join(draw(st.lists(_PIECES, max_size=40)))
    depth = draw(st.integers(0, 3)) ** 3
    opener, closer = draw(st.sampled_from([("(", ")"), ("exp(", ")"), ("-", ""), ("t**", ""), ("[", "]")]))
    return opener * depth + text + closer * depth


_LEAVES = st.sampled_from(["t", "x", "beta", "N", "pi", "E", "os", "__import__", "__class__", "_x", "exp", "Min",
                           "0", "1", "2", "64", "65", "9", "0.01", "1e308", "1e-320", "10**100", "1j", "'s'", "b'b'",
                           "True", "None", "..."])
_FUNCTION_NAMES = st.sampled_from(["exp", "log", "sqrt", "Abs", "Min", "Max", "Heaviside", "Piecewise", "erf", "tanh",
                                   "eval", "getattr", "open", "__import__", "type", "t"])


def _grow(inner):
    pair = st.tuples(inner, inner)
    return st.one_of(
        st.builds(lambda a, name: f"({a}).{name}", inner, st.sampled_from(["subs", "__globals__", "func", "real"])),
        st.builds(lambda a: f"({a[0]})[{a[1]}]", pair),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", _FUNCTION_NAMES, st.lists(inner, max_size=3)),
        st.builds(lambda a, op: f"({a[0]}) {op} ({a[1]})", pair,
                  st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "^", "@", "<", "==", "and", "or"])),
        st.builds(lambda a: f"-({a})", inner),
        st.builds(lambda a: f"lambda: {a}", inner),
        st.builds(lambda a: f"[{a[0]} for x in {a[1]}]", pair),
        st.builds(lambda a: f"({a[0]}) if ({a[1]}) else 1", pair),
        st.builds(lambda a: f"Piecewise(({a[0]}, {a[1]} < 1), ({a[0]}, True))", pair),
        st.builds(lambda a: f"f'{{{a}}}'", inner),
        st.builds(lambda a: f"({a}, {a})", inner),
    )


#: Syntactically valid Python built from hostile constructs: exercises the whitelist walk, not only the parser.
valid_python = st.recursive(_LEAVES, _grow, max_leaves=12)


def _never_executes_or_hangs(text):
    """parse_expression returns a finite expression or one line of InvalidInputError, fast, and calls nothing."""
    calls = []

    def tripwire(name):
        def trip(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return trip

    def on_text(name, real):  # the import system execs compiled modules (sympy imports lazily): only text trips
        def run(source, *args, **kwargs):
            if isinstance(source, (str, bytes)):
                calls.append(f"{name}({source!r})")
                raise AssertionError(f"{name} was called on text")
            return real(source, *args, **kwargs)
        return run

    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] in ("os", "subprocess", "shutil", "socket", "ctypes", "pty"):
            calls.append(f"import {name}")
        return real_import(name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, finishes_within(5):
        patch.setattr(os, "system", tripwire("os.system"))
        patch.setattr(os, "popen", tripwire("os.popen"))
        patch.setattr(subprocess, "Popen", tripwire("subprocess.Popen"))
        patch.setattr(builtins, "eval", on_text("eval", builtins.eval))
        patch.setattr(builtins, "exec", on_text("exec", builtins.exec))
        patch.setattr(builtins, "__import__", guarded_import)
        try:
            result = parse_expression(text, "fuzz")
        except InvalidInputError as exc:
            message = str(exc)
            assert message.startswith("fuzz ") and "\n" not in message and "\r" not in message
        else:
            assert isinstance(result, sp.Expr)
            assert not result.has(sp.zoo, sp.oo, -sp.oo, sp.nan)
    assert calls == []


@settings(max_examples=200, deadline=None)
@given(hostile())
@example(EXPLOIT)
@example("().__class__.__base__.__subclasses__()")
@example("exp.__globals__")
@example("9**9**9**9")
@example("Min(*[1])")
def test_fuzz_hostile_strings_never_execute_or_hang(text):
    _never_executes_or_hangs(text)


@settings(max_examples=200, deadline=None)
@given(valid_python)
def test_fuzz_hostile_python_expressions_never_execute_or_hang(text):
    _never_executes_or_hangs(text)


# ---------------------------------------------------------------------------------------------------- CLI paths
@pytest.mark.parametrize("argv", [
    ["derive", "--beta-schedule", EXPLOIT],
    ["dynamics", "--beta-schedule", EXPLOIT, "--t-max", "1"],
    ["simulate", "--beta-schedule", EXPLOIT, "--t-max", "1", "--N", "50"],
    ["derive", "--beta-schedule", "9**9**9**9"],
])
def test_the_exploit_creates_no_file(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    with finishes_within(5):
        code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert line.startswith("symvae: error: beta schedule") or line.startswith("symvae: error: beta_schedule")
    assert list(tmp_path.iterdir()) == []


def _markdown(tmp_path: Path, header_lines: str) -> Path:
    path = tmp_path / "hostile.md"
    path.write_text("---\nsetting: dynamics\nvariant: base\n" + header_lines + "---\n\n"
                    "$$\\frac{dD}{dt} = \\frac{\\tau}{2}\\left(\\frac{\\beta}{D} - \\beta - Q\\right)$$\n")
    return path


@pytest.mark.parametrize("header_lines, line", [
    (f'beta_schedule: "{EXPLOIT}"\n', 4),
    (f"symbols:\n  q: {EXPLOIT}\n", 4),
    ("symbols: {q: __import__('os').system('touch pwned')}\n", 4),
])
def test_markdown_header_expressions_execute_nothing(tmp_path, monkeypatch, capsys, header_lines, line):
    path = _markdown(tmp_path, header_lines)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "check", path.name)
    assert code == 2 and out == ""
    assert one_line_error(err).startswith(f"symvae: error: {path.name}:{line}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.md"]


def test_markdown_schedule_still_works(tmp_path, capsys):
    path = tmp_path / "schedule.md"
    path.write_text('---\nsetting: dynamics\nvariant: base\nbeta_schedule: "1.5*tanh(0.01*t)"\n---\n\n'
                    "$$b = 1.5 \\tanh(0.01 t)$$\n"
                    "$$\\frac{dD}{dt} = \\frac{\\tau}{2}\\left(\\frac{b}{D} - b - Q\\right)$$\n")
    code, out, err = run_cli(capsys, "check", path, "--allow-missing")
    assert code == 0 and err == "" and "dD/dt        equal" in out


# ---------------------------------------------------------------------------------------------------- .py files
def _python(tmp_path: Path, body: str, name: str = "derivation.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_python_derivation_runs_in_another_process(tmp_path, capsys):
    path = _python(tmp_path, HEADER + textwrap.dedent("""\
        import os
        import sympy as sp
        open('pid.txt', 'w').write(str(os.getpid()))  # relative: the file's folder is the working directory
        tau, beta, Q, D = sp.symbols('tau beta Q D')
        EQUATIONS = {'dD/dt': tau / 2 * (beta / D - beta - Q)}
        """))
    code, out, err = run_cli(capsys, "check", path, "--allow-missing")
    assert code == 0 and err == "" and "dD/dt        equal" in out
    child = int((tmp_path / "pid.txt").read_text())
    assert child != os.getpid()


@pytest.mark.parametrize("body, fragment, where", [
    ("raise SystemExit(0)\n", "raised SystemExit(0)", ":2: "),
    ("import sys\nsys.exit()\n", "raised SystemExit(None)", ":3: "),
    ("import os\nos._exit(0)\n", "ended the Python process", ": "),
    ("import os\nos._exit(3)\n", "failed (exit code 3)", ": "),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "stopped by SIGKILL", ": "),
    ("while True:\n    pass\n", "took longer than 2 s", ": "),
    ("import sympy as sp\nEQUATIONS = {'dQ/dt': sp.Integral(sp.Symbol('Q'), sp.Symbol('x'))}\n",
     "not a SymPy expression symvae can read: Integral", ":3: "),
    ("EQUATIONS = {'dQ/dt': object()}\n", "not a SymPy expression symvae can read: object", ":2: "),
    ("EQUATIONS = 3\n", "EQUATIONS must be a dict", ":2: "),
    ("EQUATIONS = {'dQ/dt': '__import__(\"os\").system(\"touch pwned\")'}\n",
     "only the listed functions can be called", ":2: "),
])
def test_python_derivation_that_exits_crashes_or_hangs_is_an_error(tmp_path, monkeypatch, capsys, body, fragment,
                                                                   where):
    path = _python(tmp_path, HEADER + body)
    monkeypatch.chdir(tmp_path)
    limit = "2" if "while True" in body else "60"  # only the endless loop should meet the limit
    with finishes_within(60):
        code, out, err = run_cli(capsys, "check", path.name, "--time-limit", limit)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert line.startswith(f"symvae: error: {path.name}{where}") and fragment in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_time_limit_from_the_environment_and_bad_values(tmp_path, monkeypatch, capsys):
    path = _python(tmp_path, HEADER + "import time\ntime.sleep(30)\n")
    monkeypatch.setenv("SYMVAE_CHECK_TIME_LIMIT", "1")
    with finishes_within(20):
        code, _, err = run_cli(capsys, "check", path)
    assert code == 2 and "took longer than 1 s" in one_line_error(err)
    for bad in ("0", "-1", "nan", "x"):
        code, _, err = run_cli(capsys, "check", path, "--time-limit", bad)
        assert code == 2 and "--time-limit" in one_line_error(err)


def test_check_help_says_a_python_file_is_run(capsys):
    code, out, _ = run_cli(capsys, "check", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "A .py derivation is code: check runs it" in text and "never run" in text


# ---------------------------------------------------------------------------------------------------- result reader
@pytest.mark.parametrize("node", [
    ["Op", "__import__", [0]],
    ["Op", "Function", [0]],
    ["Float", "__import__('os').system('x')", 53, []],
    ["Const", "oo", []],
    ["Matrix", 2, 2, [0]],
    ["Derivative", [1000], [0, 0]],
    ["whatever", []],
    ["Op", "Pow", [1, 1]],
    ["Rational", "1", "0", []],
    ["Op", "Add", [0, 2]],
])
def test_result_nodes_outside_the_whitelist_are_not_rebuilt(node):
    from symvae.check._pyfile import Unreadable, _rebuild

    nodes = [["Symbol", "Q", []], ["Integer", "10" * 3, []], ["Matrix", 1, 1, [0]], node]
    built = _rebuild(nodes, "f.py")
    assert built[0] == sp.Symbol("Q") and built[1] == 101010
    assert built[2] == sp.ImmutableMatrix([[sp.Symbol("Q")]])
    assert isinstance(built[3], Unreadable), built[3]


def test_result_nodes_rebuild_unevaluated_sympy():
    from symvae.check._pyfile import _rebuild

    x = sp.Symbol("x")
    nodes = [["Symbol", "x", []], ["Integer", "2", []], ["Op", "Pow", [0, 1]], ["Op", "exp", [2]],
             ["Float", "0.5", 53, []], ["Op", "Mul", [4, 3]], ["Undef", "Q", [0]], ["Derivative", [1], [6, 0]]]
    built = _rebuild(nodes, "f.py")
    assert built[5] == sp.Float("0.5") * sp.exp(x ** 2)
    assert built[7] == sp.Derivative(sp.Function("Q")(x), x)


def test_memory_limit_applies_to_the_file(tmp_path, monkeypatch, capsys):
    path = _python(tmp_path, HEADER + "block = bytearray(3 * 1024 ** 3)\n")
    monkeypatch.setenv("SYMVAE_CHECK_MEMORY_MB", "1024")
    code, _, err = run_cli(capsys, "check", path)
    assert code == 2 and "running the file failed: MemoryError" in one_line_error(err)


def test_interrupt_stops_the_child(tmp_path):
    """Ctrl-C while a .py file runs: KeyboardInterrupt reaches the caller promptly and the child is gone."""
    from symvae.check._pyfile import run_python_derivation

    path = _python(tmp_path, HEADER + "import os\nopen('pid.txt', 'w').write(str(os.getpid()))\nwhile True:\n"
                                      "    pass\n")

    def interrupt(*_):  # once the file is running (it wrote its pid), as a user pressing Ctrl-C would
        if (tmp_path / "pid.txt").exists():
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.2)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:  # if the interrupt were not honoured, the 10 s limit would end the call with CheckInputError instead
        with pytest.raises(KeyboardInterrupt):
            run_python_derivation(str(path), time_limit=10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pid = int((tmp_path / "pid.txt").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_orphaned_child_ends_at_its_cpu_limit(tmp_path):
    """A child whose parent was killed outright (no cleanup runs) is in its own session: its CPU limit (the time
    limit + 2 s) ends it. Found as a hostile file's endless loop still running 24 min after its test was killed."""
    from symvae.check._pyfile import _CHILD

    path = _python(tmp_path, HEADER + "while True:\n    pass\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-I", str(_CHILD), str(path), str(tmp_path / "result.json"), "1024", "1.0"],
                          capture_output=True, timeout=60, start_new_session=True)
    assert proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL), proc
    assert time.monotonic() - start < 30


def test_a_file_cannot_plant_a_fake_result(tmp_path, monkeypatch, capsys):
    """The result path replaced by a link or a FIFO (which would block a naive reader) counts as no result."""
    body = HEADER + textwrap.dedent("""\
        import os, sys
        result = sys.argv[2]
        os.mkfifo(result) if sys.argv[-1] == 'fifo' else os.symlink('/dev/zero', result)
        os._exit(0)
        """)
    for kind in ("fifo", "link"):
        path = _python(tmp_path, body.replace("sys.argv[-1] == 'fifo'", repr(kind == "fifo")), f"{kind}.py")
        with finishes_within(30):
            code, _, err = run_cli(capsys, "check", path)
        assert code == 2 and "ended the Python process" in one_line_error(err)
