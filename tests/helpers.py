"""Shared helpers for the tests: random admissible states and parameters."""
import numpy as np

import symvae
from symvae.model import gram_matrix

BASE_PARAMS = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)


def random_state(system, rng, scale=1.0):
    """A state whose Gram matrix is PSD: overlaps of random vectors (plus random D > 0, sigma2 > 0)."""
    T = system.table
    M, Ms = T.M, T.M_star
    K = Ms + 2 * M
    V = rng.normal(size=(K, K + 3)) * scale
    V[:Ms] = np.linalg.qr(rng.normal(size=(K + 3, Ms)))[0].T  # orthonormal teacher
    if T.tied:
        V[Ms + M:] = V[Ms:Ms + M]
    G = V @ V.T
    named = {"m": G[Ms:Ms + M, :Ms], "m_tilde": G[Ms + M:, :Ms], "Q": G[Ms:Ms + M, Ms:Ms + M],
             "Q_tilde": G[Ms + M:, Ms + M:], "R": G[Ms:Ms + M, Ms + M:], "D": rng.uniform(0.2, 2.0, size=M),
             "sigma2": rng.uniform(0.5, 2.0)}
    assert np.linalg.eigvalsh(gram_matrix(M, Ms, named))[0] > -1e-9
    return system.pack(named), named


def random_params(system, rng):
    values = {}
    for p in system.params:
        values[p.name] = rng.uniform(0.05, 2.0) if not p.name.startswith("tau") else rng.uniform(0.01, 0.5)
        if p.name == "b":
            values[p.name] = float(rng.integers(1, 6))
    return values


def model(variant="base", M=1, M_star=1, **kw):
    return symvae.make_model(variant, M=M, M_star=M_star, **kw)


def run_cli(capsys, *argv):
    """Run ``symvae ARGV`` in-process; (exit code, stdout, stderr), argparse's SystemExit included."""
    from symvae.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_json(capsys, *argv):
    """``run_cli`` with ``--json``: stderr must be empty and stdout exactly one JSON object."""
    import json

    code, out, err = run_cli(capsys, *argv, "--json")
    assert err == ""
    assert len(out.strip().splitlines()) == 1
    return code, json.loads(out)


def node_walk(exprs, symbols):
    """float64 values of ``exprs`` (explicit rule sums, no rule node) at given values of ``symbols``, node by node
    with one memo per call (printing and lambdify of the 833-node sums take minutes; this walk about a second).
    Returns f(values) -> array; independent of the generated code it is compared with."""
    import math

    import sympy as sp

    from symvae.model._activations import ErfAct, ErfActPrime
    functions = {sp.exp: math.exp, sp.log: math.log, sp.tanh: math.tanh, sp.erf: math.erf, sp.asin: math.asin,
                 sp.sqrt: math.sqrt, ErfAct: lambda x: math.erf(x / math.sqrt(2)),
                 ErfActPrime: lambda x: math.sqrt(2 / math.pi) * math.exp(-x * x / 2)}

    def f(values):
        memo = dict(zip(symbols, values))

        def walk(e):
            if e not in memo:
                if e.is_Number or e in (sp.pi, sp.E):
                    memo[e] = float(e)
                else:
                    a = [walk(x) for x in e.args]
                    memo[e] = (math.fsum(a) if e.is_Add else math.prod(a) if e.is_Mul else a[0] ** a[1] if e.is_Pow
                               else functions[e.func](*a))
            return memo[e]
        return np.array([walk(e) for e in exprs])
    return f


def ode_simulation_rms(system, rhs, sim, params, init, times):
    """RMS over seeds, times and entries of a finite-N simulation minus the ODE ``rhs(t, y, p)`` integrated by SciPy
    from ``init`` (m, m_tilde, Q, Q_tilde, R, D)."""
    from scipy.integrate import solve_ivp
    p = system.param_vector(params)
    sol = solve_ivp(lambda t, y: rhs(t, y, p), (0.0, times[-1]), system.pack(init), t_eval=times,
                    method="DOP853", rtol=1e-9, atol=1e-11)
    assert sol.status == 0
    ode = system.unpack(sol.y)
    squares = [((sim.per_seed[k] - np.moveaxis(ode[k], -1, 0)[None]) ** 2).reshape(sim.seeds, -1)
               for k in ("m", "m_tilde", "Q", "Q_tilde", "R", "D")]
    return float(np.sqrt(np.mean(np.concatenate(squares, axis=1))))


def signal_indices(system):
    """State indices of the signal overlaps (m, m_tilde)."""
    return [i for i, s in enumerate(system.state) if s.name.startswith(("m_", "m_tilde_"))]


def fd_jacobian(compiled, x, params, h=1e-6):
    """Central differences of the compiled right-hand side (not the generated Jacobian); ``params`` by name."""
    import numpy as np
    p = compiled.system.param_vector(params)
    J = np.empty((len(x), len(x)))
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = h
        J[:, j] = (compiled.rhs(0.0, x + e, p) - compiled.rhs(0.0, x - e, p)) / (2 * h)
    return J
