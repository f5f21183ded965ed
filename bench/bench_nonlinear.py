"""Cost of the non-linear (erf-decoder) VAE against the linear one, measured in the same run.

1. Derivation time (cold: no cache) of the erf VAE and of the linear VAE, (M, M*) = (1, 1) and (2, 2).
2. Code generation + numba compilation time (cold: empty cache directory) of both.
3. RHS cost per call (generated numba, ``rhs_into``), erf vs linear.
4. The same for one model whose terms need the two-direction numerical rule (tanh decoder, M = M* = 2: 833-node
   sums written into the system), with a time limit: a run that does not finish in time is reported as such.

Each (model, M, M*) runs in a fresh subprocess with its own empty cache directory, so nothing is reused.
Run: python bench/bench_nonlinear.py          (prints one table; takes a few minutes on one core)
"""
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
import numpy as np
import symvae
from symvae.codegen import compile_system
from symvae.derive import derive_dynamics
act, M, Ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kw = {} if act == "linear" else {"decoder_activation": act}
model = symvae.make_model("base", M=M, M_star=Ms, **kw)
t0 = time.perf_counter(); system = derive_dynamics(model, cache=False); t1 = time.perf_counter()
compiled = compile_system(system); t2 = time.perf_counter()
rng = np.random.default_rng(0)
y = system.pack({"m": 0.1 * np.ones((M, Ms)), "m_tilde": 0.1 * np.ones((M, Ms)), "Q": np.eye(M), "Q_tilde": np.eye(M),
                 "R": np.zeros((M, M)), "D": np.ones(M)})
p = compiled.param_vector(dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01))
out = np.empty_like(y)
f = compiled.module.rhs_into
f(0.0, y, p, out)
best = []
for _ in range(5):
    n = 20000
    s = time.perf_counter()
    for _ in range(n):
        f(0.0, y, p, out)
    best.append((time.perf_counter() - s) / n)
print(json.dumps({"derive_s": t1 - t0, "codegen_compile_s": t2 - t1, "rhs_us": 1e6 * min(best),
                  "state": len(system.state)}))
"""


#: seconds allowed for the two-direction model (derivation + code generation + numba compilation)
TWO_D_LIMIT = 3600


def run(act, M, Ms, timeout=None):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMVAE_CACHE=cache, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", CHILD, act, str(M), str(Ms)], env=env, capture_output=True,
                             text=True, check=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    print(f"{'model':8} {'M':>2} {'M*':>2} {'state':>5} {'derive s':>9} {'codegen+jit s':>14} {'RHS us/call':>12}")
    for M, Ms in ((1, 1), (2, 2)):
        rows = {act: run(act, M, Ms) for act in ("linear", "erf")}
        for act, r in rows.items():
            print(f"{act:8} {M:>2} {Ms:>2} {r['state']:>5} {r['derive_s']:>9.2f} {r['codegen_compile_s']:>14.2f} "
                  f"{r['rhs_us']:>12.3f}")
        print(f"{'erf/lin':8} {M:>2} {Ms:>2} {'':>5} {rows['erf']['derive_s'] / rows['linear']['derive_s']:>9.1f} "
              f"{rows['erf']['codegen_compile_s'] / rows['linear']['codegen_compile_s']:>14.1f} "
              f"{rows['erf']['rhs_us'] / rows['linear']['rhs_us']:>12.1f}")
    try:  # two-direction numerical rule
        r = run("tanh(x)", 2, 2, timeout=TWO_D_LIMIT)
        print(f"{'tanh 2-D':8} {2:>2} {2:>2} {r['state']:>5} {r['derive_s']:>9.2f} {r['codegen_compile_s']:>14.2f} "
              f"{r['rhs_us']:>12.3f}")
    except subprocess.TimeoutExpired:
        print(f"{'tanh 2-D':8} {2:>2} {2:>2}  derivation + codegen + compile did not finish in {TWO_D_LIMIT} s")


if __name__ == "__main__":
    main()
