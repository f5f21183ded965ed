"""The two-direction rule as one node (``GaussRule2``) through derivation, hashing, code generation and numerics
(issue 11): erf on both sides of a VAE at M = 1, whose terms in (mu, eps) through erf(erf(mu) + sqrt(D) eps) have no
closed form. Every check is against something the node machinery does not compute: the explicit 833-node sums of
``quadrature_expectation`` (what systems held before), finite differences, mpmath, finite-N simulation."""
import math
import pickle

import numpy as np
import pytest
import sympy as sp

import symvae
from symvae.derive import derive_dynamics
from symvae.derive._nonlinear_gaussian import (RULE_U, RULE_V, GaussRule2, Integrand, rule_node, rule_nodes_as_sums,
                                               rule_parameter)
from symvae.errors import DerivationError
from symvae.model._activations import ErfAct, ErfActPrime

BOTH = dict(encoder_activation="erf", decoder_activation="erf")
PARAMS = dict(beta=0.5, eta=1.0, lam=0.1, rho=1.0, tau=0.1)


@pytest.fixture(scope="module")
def system():
    return derive_dynamics(symvae.make_model("base", **BOTH))


@pytest.fixture(scope="module")
def compiled(system):
    from symvae.codegen import compile_system
    return compile_system(system)


@pytest.fixture(scope="module")
def plain(system, tmp_path_factory):
    """The system's generated module (rhs, jac, dparams, observables; as ``compile_system`` writes it) loaded as plain
    Python: its numba kernels interpreted (the same code and, by ``codegen._jit``, the same bits as compiled) without
    numba compilation, which would cost the default suite half a minute per function."""
    from symvae.codegen._compile import _specs
    return plain_module(_specs(system), system, tmp_path_factory.mktemp("rule2"))


def random_states(system, count, seed=1):
    """Random states with the variance of mu, S11 = Q_tilde eta + m_tilde^2 rho, at most 0.95 (at PARAMS): where the
    rule is accurate to about 1e-9 for these integrands (measured against a rule of step 1/20: 7e-9 at S11 = 2, 2e-6
    at S11 = 4 for E[g(g(u) + sqrt(D) v)^2], and larger for the second-derivative integrands of the Jacobian)."""
    rng = np.random.default_rng(seed)
    return [system.pack(dict(m=[[rng.uniform(-1, 1)]], m_tilde=[[rng.uniform(-0.5, 0.5)]], Q=[[rng.uniform(0.5, 1.5)]],
                             Q_tilde=[[rng.uniform(0.3, 0.7)]], R=[[rng.uniform(-0.5, 0.5)]],
                             D=[rng.uniform(0.2, 1.5)])) for _ in range(count)]


from helpers import node_walk, ode_simulation_rms  # noqa: E402


def plain_module(specs, system, tmp_path):
    """The generated module of ``specs`` loaded as plain Python (see the fixture ``plain``)."""
    from symvae.codegen._compile import load_plain_first
    from symvae.codegen._generate import generate_source
    path = tmp_path / "generated.py"
    path.write_text(generate_source(specs, system.state, system.params))
    return load_plain_first(path, f"rule2_test_{abs(hash(str(tmp_path)))}").plain


def test_erf_both_sides_is_a_small_system_of_rule_nodes(system):
    """The derivation keeps each two-direction expectation as one node (no 833-node sum): its free symbols are the
    state and parameters, its hash and pickle are quick and carry the integrands, and the system says how its
    nodes are computed and how accurate they are."""
    nodes = set().union(*(e.atoms(GaussRule2) for e in system.rhs))
    assert len(nodes) >= 10 and all(isinstance(n.args[0], Integrand) for n in nodes)
    assert not any(e.atoms(sp.Float) for e in system.rhs)  # no rule weight in the expressions
    free = set().union(*(e.free_symbols for e in system.rhs), *(e.free_symbols for e in system.observables.values()))
    assert free <= set(system.state) | set(system.params)
    assert [p.name for p in system.params] == ["beta", "eta", "lam", "rho", "tau"]
    note = next(n for n in system.notes if "two Gaussian directions" in n)
    assert "Cholesky" in note and "833 nodes" in note and "whatever the precision" in note
    again = pickle.loads(pickle.dumps(system))
    assert again.rhs == system.rhs and again.key == system.key
    assert "Integrand(" in sp.srepr(system.rhs) and "q_rule_1" in sp.srepr(system.rhs)


def test_the_integrand_is_part_of_the_content_hash():
    """Two nodes that differ only in their integrand differ in srepr, hash and equality (the cache key)."""
    a, b, c = sp.symbols("a b c", positive=True)
    n1 = GaussRule2(Integrand(ErfAct(RULE_U) * ErfAct(RULE_V) ** 3), a, b, c)
    n2 = GaussRule2(Integrand(ErfAct(RULE_U) ** 3 * ErfAct(RULE_V)), a, b, c)
    assert n1 != n2 and sp.srepr(n1) != sp.srepr(n2) and n1.args[0].tag != n2.args[0].tag
    assert n1 == GaussRule2(Integrand(ErfAct(RULE_U) * ErfAct(RULE_V) ** 3), a, b, c)
    with pytest.raises(DerivationError):
        Integrand(ErfAct(RULE_U) * a)  # a system symbol must be a parameter slot, passed as an argument
    with pytest.raises(DerivationError):
        GaussRule2(Integrand(ErfAct(RULE_U) * rule_parameter(1)), a, b, c)  # its argument is missing
    assert GaussRule2(Integrand(sp.Integer(0)), a, b, c) == 0
    assert GaussRule2(Integrand(2 * rule_parameter(1)), a, b, c, b) == 2 * b


def test_compiled_nodes_equal_the_explicit_sums(system, tmp_path):
    """Each node, compiled (numba kernel run as plain Python: the same bits), vectorised numpy and mpmath, equals
    the explicit 833-node sum it stands for (evaluated node by node in float64) to 1e-12 relative, at random states;
    the nodes' Price derivatives, compiled, equal central differences of the explicit sums to the rule's error (Price's
    theorem holds for the integral; for the rule, up to the rule's error on the derivative integrands, which carry
    more factors g'(u) and powers of u: measured up to 4e-7 at these states, 3e-6 at S11 = 1.5)."""
    from symvae.codegen._generate import FunctionSpec
    nodes = sorted(set().union(*(e.atoms(GaussRule2) for e in system.rhs)),
                   key=lambda n: (sp.count_ops(n), sp.default_sort_key(n)))[:4]
    Q11 = system.state[[s.name for s in system.state].index("Q_tilde_11")]
    derivs = [sp.diff(n, Q11) for n in nodes[:2]]
    assert all(d.has(GaussRule2) for d in derivs)
    module = plain_module([FunctionSpec("nodes", nodes + derivs)], system, tmp_path)
    symbols = list(system.state) + list(system.params)
    explicit = node_walk([rule_nodes_as_sums(n) for n in nodes], symbols)
    p = system.param_vector(PARAMS)
    k = system.state.index(Q11)
    for y in random_states(system, 2):
        got = module.nodes(0.0, y, p)
        want = explicit(list(y) + list(p))
        assert np.allclose(got[:4], want, rtol=1e-12, atol=1e-15), (got, want)
        assert np.allclose(module.nodes_numpy(0.0, y, p)[:4], want, rtol=1e-12, atol=1e-15)
        import mpmath
        with mpmath.workdps(30):
            mp = module.nodes_mp(0.0, y, p)
        assert np.allclose([float(mp[i]) for i in range(4)], want, rtol=1e-12, atol=1e-15)
        h = 1e-5
        up, down = y.copy(), y.copy()
        up[k] += h
        down[k] -= h
        fd = (explicit(list(up) + list(p))[:2] - explicit(list(down) + list(p))[:2]) / (2 * h)
        assert np.allclose(got[4:], fd, rtol=1e-5, atol=2e-6), (got[4:], fd)  # the rule's error (see below)


@pytest.mark.slow
def test_compiled_rhs_equals_the_explicit_sum_system(system, compiled):
    """The whole compiled right-hand side equals the system with every node replaced by its explicit 833-node sum
    (what derivation produced before the node; about 10 s to build, 1 s per evaluation node by node) to 1e-12
    relative at random states (measured 2e-15)."""
    explicit = node_walk([rule_nodes_as_sums(e) for e in system.rhs], list(system.state) + list(system.params))
    p = compiled.param_vector(PARAMS)
    for y in random_states(system, 3, seed=2):
        want = explicit(list(y) + list(p))
        assert np.allclose(compiled.rhs(0.0, y, p), want, rtol=1e-12, atol=1e-15)


def rule_numpy(G, s11, s12, s22, d):
    """The 833-node rule written out here with numpy (nodes and weights of ``quadrature_rule2``), for a G in
    (RULE_U, RULE_V, q_rule_1)."""
    from symvae.derive._nonlinear_gaussian import quadrature_rule2
    nodes, weights = quadrature_rule2()
    y = np.array(nodes, dtype=float)
    w = np.array(weights, dtype=float)
    f = sp.lambdify([RULE_U, RULE_V, rule_parameter(1)], G, modules=[{
        "ErfAct": lambda x: _erf(x / math.sqrt(2)),
        "ErfActPrime": lambda x: math.sqrt(2 / math.pi) * np.exp(-x * x / 2)}, "numpy"])
    a = math.sqrt(s11)
    b = s12 / a
    c = math.sqrt(s22 - b * b)
    return float(np.sum(w * f(a * y[:, 0], b * y[:, 0] + c * y[:, 1], d)))


def _erf(x):
    from scipy.special import erf
    return erf(x)


def test_price_derivatives_against_finite_differences_of_the_rule():
    """dE/dS11 = E[G_uu]/2, dE/dS12 = E[G_uv], dE/dS22 = E[G_vv]/2 and dE/dp = E[dG/dq], the nodes' derivatives,
    against central differences of the rule (written out with numpy here) for a generic integrand with a parameter,
    to the rule's error (S of standard deviations about 1)."""
    s11, s12, s22, d = sp.symbols("s11 s12 s22 d", real=True)
    from symvae.derive._nonlinear_gaussian import _U
    G = ErfAct(ErfAct(_U[0]) + sp.sqrt(d) * _U[1]) ** 2 * ErfActPrime(_U[0]) + sp.tanh(_U[0] - _U[1]) * _U[1]
    node = rule_node(G, ((s11, s12), (s12, s22)))
    assert isinstance(node, GaussRule2) and node.args[4] == d
    at = {s11: 0.8, s12: -0.3, s22: 1.1, d: 0.7}
    order = [s11, s12, s22, d]
    G = node.args[0].G
    for x in order:
        deriv = sp.diff(node, x)
        assert isinstance(deriv, GaussRule2) and deriv.args[1:] == node.args[1:]
        exact = rule_numpy(deriv.args[0].G, *(at[v] for v in order))
        h = 1e-4
        fd = (rule_numpy(G, *({**at, x: at[x] + h}[v] for v in order))
              - rule_numpy(G, *({**at, x: at[x] - h}[v] for v in order))) / (2 * h)
        assert exact == pytest.approx(fd, rel=1e-6, abs=1e-7), x
    # and the rule written out here is the explicit sum of the derivation
    explicit = node_walk([rule_nodes_as_sums(node.xreplace({k: sp.Float(v) for k, v in at.items()}))], [])([])[0]
    assert explicit == pytest.approx(rule_numpy(G, *(at[v] for v in order)), rel=1e-13)


def test_symbolic_jacobian_matches_finite_differences(system, plain):
    """The compiled Jacobian (Price's theorem through the nodes) against central differences of the compiled RHS, to
    the rule's error on the derivative integrands (see above)."""
    compiled = plain
    p = system.param_vector(PARAMS)
    for y in random_states(system, 2, seed=3):
        J = compiled.jac(0.0, y, p)
        fd = np.empty_like(J)
        for k in range(len(y)):
            h = 1e-6 * max(1.0, abs(y[k]))
            up, down = y.copy(), y.copy()
            up[k] += h
            down[k] -= h
            fd[:, k] = (compiled.rhs(0.0, up, p) - compiled.rhs(0.0, down, p)) / (2 * h)
        assert np.allclose(J, fd, rtol=1e-5, atol=2e-6), np.max(np.abs(J - fd))  # up to the rule's error
        dp = compiled.dparams(0.0, y, p)
        k = [q.name for q in system.params].index("tau")
        up, down = p.copy(), p.copy()
        up[k] += 1e-6
        down[k] -= 1e-6
        assert np.allclose(dp[:, k], (compiled.rhs(0.0, y, up) - compiled.rhs(0.0, y, down)) / 2e-6, atol=1e-8)


def test_mpmath_backend_equals_float64_to_the_rule(system, plain):
    """rhs_mp at 30 digits (nodes and weights at 30 digits) equals the float64 RHS to rounding: the same rule; so do
    the vectorised numpy RHS and observables (over a trailing axis of states)."""
    import mpmath
    p = system.param_vector(PARAMS)
    ys = random_states(system, 3, seed=4)
    y = ys[0]
    with mpmath.workdps(30):
        mp = plain.rhs_mp(0.0, y, p)
    assert np.allclose([float(mp[i]) for i in range(len(y))], plain.rhs(0.0, y, p), rtol=1e-12, atol=1e-15)
    stacked = np.stack(ys, axis=1)
    assert np.allclose(plain.rhs_numpy(0.0, stacked, p), np.stack([plain.rhs(0.0, v, p) for v in ys], axis=1),
                       rtol=1e-12, atol=1e-15)
    obs = plain.observables_numpy(0.0, stacked, p)
    with mpmath.workdps(20):
        obs_mp = plain.observables_mp(0.0, y, p)
    assert np.allclose(np.asarray(obs, dtype=float)[:, 0], [float(obs_mp[i]) for i in range(len(obs))], rtol=1e-12)


def _rms(system, rhs, sim, params):
    return ode_simulation_rms(system, rhs, sim, params, SIM_INIT, SIM_TIMES)


SIM_INIT = dict(m=[[0.3]], m_tilde=[[0.2]], Q=[[1.0]], Q_tilde=[[1.0]], R=[[0.1]], D=[1.0])
SIM_PARAMS = dict(beta=0.5, eta=1.0, lam=0.1, rho=2.0, tau=0.3)
SIM_TIMES = [1.0, 2.0, 3.0]


def test_erf_both_sides_ode_follows_simulation(system, plain, tmp_path):
    """The generated erf-both-sides ODE against finite-N online SGD (sampled eps, hand-written gradients): at
    N = 400 the RMS deviation x sqrt(N) is of order 0.3 (as for the closed-form models), while the erf-decoder-only
    ODE (a wrong model for this simulation) stays farther away."""
    from symvae.codegen._generate import FunctionSpec
    from symvae.simulate._nonlinear import simulate_nonlinear
    sim = simulate_nonlinear(symvae.make_model("base", **BOTH), SIM_PARAMS, SIM_INIT, SIM_TIMES, N=400, seeds=16,
                             seed=7)
    assert sim.status == "ok"
    right = _rms(system, plain.rhs, sim, SIM_PARAMS)
    other = derive_dynamics(symvae.make_model("base", decoder_activation="erf"))
    wrong = _rms(other, plain_module([FunctionSpec("rhs", other.rhs, ("numba",))], other, tmp_path).rhs, sim,
                 SIM_PARAMS)
    assert right * math.sqrt(400) < 0.6, right
    assert wrong > 2 * right, (wrong, right)


@pytest.mark.slow
def test_erf_both_sides_ode_deviation_falls_like_n_to_the_minus_half(system, compiled):
    """The same with the numba-compiled system at N = 100, 200, 400 and 32 seeds: the RMS deviation falls like
    N^-1/2."""
    from symvae.simulate._nonlinear import simulate_nonlinear
    model = symvae.make_model("base", **BOTH)
    rms = [_rms(system, compiled.rhs, simulate_nonlinear(model, SIM_PARAMS, SIM_INIT, SIM_TIMES, N=N, seeds=32,
                                                         seed=N), SIM_PARAMS) for N in (100, 200, 400)]
    exponent = np.polyfit(np.log([100, 200, 400]), np.log(rms), 1)[0]
    assert -0.8 <= exponent <= -0.3 and rms[-1] * 20 < 0.6, (exponent, rms)


def test_latex_prints_the_node_as_an_expectation():
    a, b, c, d = sp.symbols("a b c d", positive=True)
    node = GaussRule2(Integrand(ErfAct(ErfAct(RULE_U) + sp.sqrt(rule_parameter(1)) * RULE_V) ** 2), a, b, c, d)
    text = sp.latex(node)
    assert text.startswith(r"\mathbb{E}_{\left(\begin{smallmatrix} a & b \\ b & c \end{smallmatrix}\right)}")
    assert r"\sqrt{d} v" in text and "u_rule" not in text and "q_rule" not in text


def test_three_directions_still_raise():
    """A term of three Gaussian directions has no rule: a DerivationError naming the limit, never a number."""
    from symvae.derive._nonlinear_gaussian import NoClosedForm, nonlinear_expectation
    x, y, z = sp.symbols("x y z", real=True)
    with pytest.raises(NoClosedForm, match="limited to 2 Gaussian directions"):
        nonlinear_expectation(sp.tanh(x) * sp.tanh(y) * sp.tanh(z), [x, y, z], lambda i, j: sp.Integer(int(i == j)),
                              quadrature=True, nodes=True)


def test_one_direction_rule_nodes_equal_the_explicit_sums(tmp_path):
    """tanh decoder, M = 1: the one-direction terms are ``GaussRule1`` nodes; the generated right-hand side (numba
    kernel run as plain Python, numpy, mpmath) and its Jacobian equal the system with each node replaced by its
    explicit 181-node sum (evaluated node by node) and central differences of it."""
    from symvae.codegen._compile import _specs
    from symvae.derive._nonlinear_gaussian import GaussRule1
    system = derive_dynamics(symvae.make_model("base", decoder_activation="tanh(x)"))
    assert any(e.has(GaussRule1) for e in system.rhs) and not any(e.atoms(sp.Float) for e in system.rhs)
    module = plain_module(_specs(system), system, tmp_path)
    explicit = node_walk([rule_nodes_as_sums(e) for e in system.rhs], list(system.state) + list(system.params))
    p = system.param_vector(PARAMS)
    import mpmath
    for y in random_states(system, 2, seed=5):
        want = explicit(list(y) + list(p))
        assert np.allclose(module.rhs(0.0, y, p), want, rtol=1e-12, atol=1e-15)
        assert np.allclose(module.rhs_numpy(0.0, y, p), want, rtol=1e-12, atol=1e-15)
        with mpmath.workdps(25):
            mp = module.rhs_mp(0.0, y, p)
        assert np.allclose([float(mp[i]) for i in range(len(y))], want, rtol=1e-12, atol=1e-15)
        J = module.jac(0.0, y, p)
        for k in range(len(y)):
            up, down = y.copy(), y.copy()
            up[k] += 1e-6
            down[k] -= 1e-6
            fd = (explicit(list(up) + list(p)) - explicit(list(down) + list(p))) / 2e-6
            assert np.allclose(J[:, k], fd, rtol=1e-6, atol=1e-8), (k, J[:, k], fd)
