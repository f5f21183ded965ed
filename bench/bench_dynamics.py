"""Speed of the dynamics engine, as ratios against baselines measured in the same run.

1. RHS call: generated numba vs ``sympy.lambdify`` (numpy) vs a plain hand-written numpy RHS (target <= 0.5 us/call).
2. Full trajectory, M = M* = 1, t in [0, 1500], tau = 0.01, rtol 1e-10: symvae vs scipy solve_ivp (DOP853) +
   lambdified RHS (target >= 10x faster).
3. Derivation time, cold (no cache) and cached, for (M, M*) = (1,1), (2,1), (4,2) (targets 3 s / 0.1 s / 60 s).
4. Whole process, warm cache: ``symvae dynamics --rho 1 --eta 1 --beta 1 --tau 0.01 --t-max 1500 --json`` vs a plain
   script integrating a hand-written numpy RHS with scipy ``solve_ivp`` (DOP853, same tolerances and times), run
   alternately in the same session (target: <= 0.5 s and >= 3x faster than the plain script, wall time; CPU time
   printed too, since the machine is shared); also what numba alone costs (the generated module loaded by numba and
   run) and interpreter / numpy / numba imports, for where the time goes. The warm run integrates in plain Python
   and imports numba only past a work budget (numerics._integrate.PLAIN_WORK_BUDGET); this run stays below it.

Run: python bench/bench_dynamics.py       (everything)
     python bench/bench_dynamics.py --cli (only 4)
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

import plain_baseline  # bench/plain_baseline.py, beside this script
import symvae
from symvae.codegen import compile_system
from symvae.numerics import integrate

PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)
INIT = {"m": [[0.1]], "m_tilde": [[0.1]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}


def per_call(f, n=20000, repeats=5):
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best.append((time.perf_counter() - t0) / n)
    return min(best)


def hand_numpy_rhs(t, y, p):
    """The M = M* = 1 base RHS of docs/model.md, written by hand in plain numpy (baseline only)."""
    return plain_baseline.rhs(t, y, *p)  # p in the order beta, eta, lam, rho, tau


def bench_rhs(system, compiled):
    y = system.pack(INIT)
    p = system.param_vector(PARAMS)
    out = np.empty_like(y)
    compiled.module.rhs_into(0.0, y, p, out)
    lam = sp.lambdify([sp.Symbol("t")] + list(system.state) + list(system.params), list(system.rhs), "numpy")
    args = [0.0] + list(y) + list(p)
    t_numba = per_call(lambda: compiled.module.rhs_into(0.0, y, p, out))
    t_lambdify = per_call(lambda: lam(*args))
    t_hand = per_call(lambda: hand_numpy_rhs(0.0, y, p))
    assert np.allclose(hand_numpy_rhs(0.0, y, p), out)
    print("RHS call (M = M* = 1):")
    print(f"  generated numba, Python call (dispatch)  : {t_numba * 1e6:8.3f} us")
    print(f"  sympy.lambdify numpy                    : {t_lambdify * 1e6:8.3f} us   ratio {t_lambdify / t_numba:6.1f}x")
    print(f"  hand-written numpy                      : {t_hand * 1e6:8.3f} us   ratio {t_hand / t_numba:6.1f}x")
    # inside compiled code (what the integrator sees) there is no Python dispatch
    from numba import njit

    @njit
    def loop(f, y, p, out, n):
        acc = 0.0
        for i in range(n):
            y[0] += 1e-12  # defeat hoisting of the loop-invariant call
            f(0.0, y, p, out)
            acc += out[0]
        return acc

    loop(compiled.module.rhs_into, y.copy(), p, out, 10)
    n = 2_000_000
    t0 = time.perf_counter()
    loop(compiled.module.rhs_into, y.copy(), p, out, n)
    t_inner = (time.perf_counter() - t0) / n
    print(f"  generated numba, called from compiled code: {t_inner * 1e6:8.3f} us   target <= 0.5 us")
    def whole_run():
        t_eval, y_eval, counts = np.array([1500.0]), np.full((1, len(y)), np.nan), np.zeros(3, dtype=np.int64)
        _, y1, f1, h1, k1 = compiled.module.integrate_start(0.0, y, p, t_eval, 1e-10, 1e-12, 0.0, y_eval, counts)
        compiled.module.integrate_piece(0.0, y1, f1, h1, p, t_eval, y_eval, k1, 1e-10, 1e-12, 10 ** 7, 10 ** 9, 1e8,
                                        counts)
        return int(counts[0])

    n_inner = whole_run()
    t0 = time.perf_counter()
    whole_run()
    per_eval = (time.perf_counter() - t0) / n_inner
    print(f"  whole integrator step cost per RHS evaluation (compiled, incl. stage arithmetic): "
          f"{per_eval * 1e6:.3f} us")
    return lam


def bench_trajectory(system, compiled, lam):
    y0 = system.pack(INIT)
    p = system.param_vector(PARAMS)
    integrate(compiled, y0, p, [1500.0])  # warm
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        traj = integrate(compiled, y0, p, [1500.0], rtol=1e-10)
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times)
    pl = list(p)
    t0 = time.perf_counter()
    ref = solve_ivp(lambda t, y: lam(t, *y, *pl), (0, 1500), y0, method="DOP853", rtol=1e-10, atol=1e-12)
    theirs = time.perf_counter() - t0
    diff = np.max(np.abs(ref.y[:, -1] - traj.y[-1]))
    print("Trajectory M = M* = 1, t in [0, 1500], tau = 0.01, rtol 1e-10:")
    print(f"  symvae (compiled DOP853)        : {ours * 1e3:9.3f} ms ({traj.nfev} evaluations)")
    print(f"  solve_ivp DOP853 + lambdify     : {theirs * 1e3:9.3f} ms ({ref.nfev} evaluations)")
    print(f"  speed-up {theirs / ours:7.1f}x   target >= 10x   (max state difference {diff:.1e})")


_CHILD = """
import sys, time
t0 = time.perf_counter()
import symvae
M, Ms, cache = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
t1 = time.perf_counter()
symvae.derive_dynamics(symvae.make_model(M=M, M_star=Ms), cache=cache)
print(time.perf_counter() - t1)
"""


def bench_derivation():
    print("Derivation time (fresh process, excluding the import):")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SYMVAE_CACHE=tmp)
        for (M, Ms), target in (((1, 1), 3), ((2, 1), None), ((4, 2), 60)):
            run = lambda cache: float(subprocess.run(  # noqa: E731
                [sys.executable, "-c", _CHILD, str(M), str(Ms), cache], env=env, capture_output=True, text=True,
                check=True).stdout)
            cold = run("1")
            cached = run("1")
            tgt = f"target cold <= {target} s" + (", cached <= 0.1 s" if (M, Ms) == (1, 1) else "") if target else ""
            print(f"  (M, M*) = ({M}, {Ms}): cold {cold:7.3f} s, cached {cached:7.3f} s   {tgt}")


#: The generated module of M = M* = 1 loaded by numba and its compiled integrator run on the same problem, nothing else
#: (numpy, numba and numba's cache loading only): what the warm command line cost before it ran plain Python first.
NUMBA_SCRIPT = """
import importlib.util, sys
import numpy as np
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("symvae_generated_" + path.split("/")[-2], path)  # numba's cache names it
m = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = m
spec.loader.exec_module(m)
y0, p = np.array([0.01, 0.01, 1.0, 1.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0, 0.01])
t_eval, y_eval, counts = np.linspace(0.0, 1500.0, 11), np.full((11, 6), np.nan), np.zeros(3, dtype=np.int64)
pc, pk = np.zeros((0, 2), dtype=np.int64), np.zeros(0)  # no parameter program
code, y, f, h, k = m.integrate_start(0.0, y0, p, pc, pk, t_eval, 1e-10, 1e-12, 0.0, y_eval, counts)
m.integrate_piece(0.0, y, f, h, p, pc, pk, t_eval, y_eval, k, 1e-10, 1e-12, 5000000, 10 ** 9, 1e8, counts)
print(y_eval[-1, 0])
"""

CLI_ARGS = ["dynamics", "--rho", "1", "--eta", "1", "--beta", "1", "--tau", "0.01", "--t-max", "1500", "--json"]


def _timed(argv, env):
    """Wall-clock and CPU (user + system) seconds of one child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def _compare(cli, plain, others, env, repeats, title):
    """Alternate runs of the warm command line, the plain script and ``others``; print medians, ratio, verdict."""
    runs = {"warm symvae dynamics": [], "plain solve_ivp script": [], **{k: [] for k in others}}
    for _ in range(repeats):  # alternate, so that all see the same load
        runs["warm symvae dynamics"].append(_timed(cli, env)[:2])
        runs["plain solve_ivp script"].append(_timed(plain, env)[:2])
        for name, argv in others.items():
            runs[name].append(_timed(argv, env)[:2])
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    print(f"{title} (median of {repeats}; wall / CPU seconds):")
    for name, (wall, cpu) in med.items():
        print(f"  {name:34s}: {wall:6.3f} s wall  {cpu:6.3f} s CPU")
    warm, base = med["warm symvae dynamics"], med["plain solve_ivp script"]
    ratio_wall, ratio_cpu = base[0] / warm[0], base[1] / warm[1]
    met_wall = warm[0] <= 0.5 and ratio_wall >= 3
    met_cpu = warm[1] <= 0.5 and ratio_cpu >= 3
    print(f"  warm {warm[0]:.3f} s wall, plain / warm {ratio_wall:.2f}x wall   target: warm <= 0.5 s and >= 3x faster "
          f"-> {'MET' if met_wall else 'MISSED'}")
    print(f"  warm {warm[1]:.3f} s CPU,  plain / warm {ratio_cpu:.2f}x CPU    same target in CPU time "
          f"-> {'MET' if met_cpu else 'MISSED'}   (wall > CPU: the machine is shared)")
    if "python -c 'import numpy'" in med:
        floor = med["python -c 'import numpy'"]
        print(f"  symvae's own share of the warm run: {warm[0] - floor[0]:+.3f} s wall, {warm[1] - floor[1]:+.3f} s CPU "
              f"above starting Python and importing numpy")
    return met_wall


def bench_cli_process(repeats: int = 7):
    """Section 4 (see the module docstring); the cache is $SYMVAE_CACHE (warmed by one untimed run). With
    PYTHONDONTWRITEBYTECODE set, symvae's own modules are compiled from source in every process (the plain script's
    numpy and scipy have their bytecode in site-packages): the comparison is then also made under Python's default."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    cli = [sys.executable, "-m", "symvae", *CLI_ARGS]
    plain = [sys.executable, plain_baseline.__file__]  # numpy and scipy.integrate only
    module = compile_system(symvae.derive_dynamics(symvae.make_model())).path
    others = {"numba load + run of the module": [sys.executable, "-c", NUMBA_SCRIPT, str(module)],
              "python -c pass": [sys.executable, "-c", "pass"],
              "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
              "python -c 'import numba'": [sys.executable, "-c", "import numba"]}
    _, _, out = _timed(cli, env)  # cold or warm: fills the cache
    _, _, ref = _timed(plain, env)
    _, _, heavy = _timed([sys.executable, "-c", "import contextlib, io, sys, symvae.cli\n"
                          f"with contextlib.redirect_stdout(io.StringIO()): symvae.cli.main({CLI_ARGS!r})\n"
                          "print([m for m in ('numba', 'scipy', 'sympy', 'mpmath', 'matplotlib') if m in sys.modules])"],
                         env)
    ours, theirs = json.loads(out), json.loads(ref)
    agree = max(abs(a - b[0][0]) for a, b in zip(theirs["m"], ours["m"]))
    print(f"Whole process, warm cache, t in [0, 1500]: {ours['message']}; m(t) of symvae and the script agree to "
          f"{agree:.1e}; heavy modules the warm run imports: {heavy.strip()}")
    met = _compare(cli, plain, others, env, repeats, "  environment as given"
                   + (" (PYTHONDONTWRITEBYTECODE set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""))
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        default = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        _timed(cli, default)  # writes symvae's bytecode once
        met = _compare(cli, plain, {}, default, repeats, "  Python's default (bytecode cached)")
    return met


if __name__ == "__main__" and sys.argv[1:] == ["--cli"]:
    bench_cli_process()
elif __name__ == "__main__":
    system = symvae.derive_dynamics(symvae.make_model())
    compiled = compile_system(system)
    lam = bench_rhs(system, compiled)
    bench_trajectory(system, compiled, lam)
    bench_derivation()
    bench_cli_process()
