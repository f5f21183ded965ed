"""The one-pass Jacobian (``symvae.derive._diff.jacobian``) against SymPy's ``diff`` entry by entry.

``DerivedSystem.jacobian`` and the augmented systems of the thresholds use it; the finite-difference tests of the
compiled Jacobians (test_codegen, test_nonlinear_relu_vae, test_nonlinear_rule2) check the same code from the other
side.
"""
import importlib.util

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symvae
from symvae.codegen._generate import FunctionSpec, generate_source
from symvae.derive import derive_dynamics, symbolic_jacobian

X = sp.symbols("x0:4", real=True)
#: a point away from every branch cut and kink of the grammar below (all leaves positive there)
POINT = {x: sp.Float(v, 40) for x, v in zip(X, ("0.3125", "0.71875", "0.4375", "0.5625"))}

_UNARY = [sp.exp, sp.erf, sp.atan, sp.tanh, lambda a: sp.sqrt(1 + a ** 2), lambda a: sp.log(2 + a ** 2),
          lambda a: sp.asin(a / (2 + sp.Abs(a))), sp.Abs]


def _expressions():
    leaves = st.one_of(st.sampled_from(X), st.integers(-3, 3).map(sp.Integer),
                       st.fractions(min_value=-2, max_value=2, max_denominator=4).map(sp.Rational))

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=2, max_size=4).map(lambda a: sp.Add(*a)),
            st.lists(children, min_size=2, max_size=4).map(lambda a: sp.Mul(*a)),
            st.tuples(children, st.integers(-3, 4)).map(lambda a: (1 + a[0] ** 2) ** a[1]),
            st.tuples(children, children).map(lambda a: (1 + a[0] ** 2) ** (a[1] / 3)),  # symbolic exponent
            st.tuples(st.sampled_from(_UNARY), children).map(lambda a: a[0](a[1])),
            st.tuples(children, children).map(lambda a: sp.Max(a[0], a[1] + sp.Rational(1, 7))),
        )
    return st.recursive(leaves, extend, max_leaves=14)


def _value(e) -> mpmath.mpf:
    with mpmath.workdps(40):
        return sp.N(e.xreplace(POINT), 35)


@settings(max_examples=60, deadline=None)
@given(st.lists(_expressions(), min_size=1, max_size=3))
def test_every_entry_equals_sympys_derivative(exprs):
    """Random trees of sums, products, integer and symbolic powers, elementary functions, ``Abs`` and ``Max`` (their
    own derivative rules) sharing subtrees: each entry equals ``sp.diff`` at a point, to 30 digits."""
    J = symbolic_jacobian(exprs, X)
    assert J.shape == (len(exprs), len(X))
    for i, e in enumerate(exprs):
        for j, x in enumerate(X):
            mine, theirs = J[i, j], sp.diff(e, x)
            if mine == theirs:
                continue
            a, b = _value(mine), _value(theirs)
            assert abs(a - b) <= sp.Float("1e-30") * max(1, abs(b)), (e, x, mine, theirs)


def test_shared_subtrees_are_differentiated_once():
    """Terms of a chain of functions, each of the one before: SymPy's ``diff`` of every entry walks the whole tree
    each time; the one pass gives the same entries."""
    e = X[0]
    chain = []
    for k in range(16):
        e = sp.erf(e / 2 + X[k % 4] / 3)
        chain.append(e)
    exprs = [sp.Add(*chain), sp.Mul(*chain[::5]), chain[-1] ** 2]
    J = symbolic_jacobian(exprs, X)
    for i, e in enumerate(exprs):
        for j, x in enumerate(X):
            assert abs(_value(J[i, j]) - _value(sp.diff(e, x))) < 1e-30


def test_rule_nodes_differentiate_as_in_sympy():
    """``GaussRule1`` (Price's theorem in its variance, parameters inside the integrand), ``NoiseMean`` and the half
    rule of a ReLU kink, nested in other functions: the same expression as ``sp.diff``."""
    from symvae.derive._half_space import HalfRule1
    from symvae.derive._nonlinear_gaussian import GaussRule1, NoiseMean
    from symvae.derive._rule_base import RULE_U, Integrand, rule_parameter
    q1, q2 = rule_parameter(1), rule_parameter(2)
    noise = NoiseMean(Integrand(sp.tanh(q1 * RULE_U + q2)), X[0] * X[1], X[2] + 1)
    gauss = GaussRule1(Integrand(sp.erf(RULE_U + q1) * q2), X[0] ** 2 + 1, X[1] * noise, X[2] * X[3])
    half = HalfRule1(Integrand(sp.exp(-q1 * RULE_U ** 2)), X[3] + 2, X[0] * gauss)
    exprs = [gauss ** 2 + sp.exp(noise) * X[3], sp.atan(gauss * noise) + half / X[1]]
    assert all(isinstance(n, (GaussRule1, NoiseMean, HalfRule1)) for n in (gauss, noise, half))
    J = symbolic_jacobian(exprs, X)
    for i, e in enumerate(exprs):
        for j, x in enumerate(X):
            assert sp.expand(J[i, j] - sp.diff(e, x)) == 0, (i, j)


def test_bad_variables_are_refused():
    with pytest.raises(ValueError, match="distinct symbols"):
        symbolic_jacobian([X[0]], [X[0], X[0]])
    with pytest.raises(ValueError, match="distinct symbols"):
        symbolic_jacobian([X[0]], [X[0] + 1])


def _module(specs, system, tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text(generate_source(specs, system.state, system.params))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("enc, dec, M", [("erf", "erf", 1), ("relu", "erf", 1), ("linear", "relu", 1),
                                         pytest.param("erf", "erf", 2, marks=pytest.mark.slow)])
def test_derived_systems_jacobian_is_sympys(enc, dec, M, tmp_path):
    """Derived systems with every kind of node (closed forms, ``GaussRule2``, the half rules of a ReLU kink,
    ``NoiseMean`` inside a rule, the ReLU decoder's kinks): [dF/dx | dF/dp] of ``DerivedSystem`` and SymPy's
    ``Matrix.jacobian`` of the same right-hand sides, both generated as numpy code, agree at random states to
    rounding."""
    acts = {k: v for k, v in (("encoder_activation", enc), ("decoder_activation", dec)) if v != "linear"}
    system = derive_dynamics(symvae.make_model("base", M=M, M_star=1, **acts))
    ours = system.jacobian.row_join(system.param_jacobian)
    F = sp.Matrix(system.rhs)
    theirs = F.jacobian(sp.Matrix(system.state)).row_join(F.jacobian(sp.Matrix(system.params)))
    module = _module([FunctionSpec("ours", ours, ("numpy",)), FunctionSpec("theirs", theirs, ("numpy",))], system,
                     tmp_path, f"jacobians_{enc}_{dec}_{M}")
    mats = system.table.matrices()
    diagonal = {s for name in ("Q", "Q_tilde") for s in np.diag(mats[name])} | set(system.blocks["D"])
    rng = np.random.default_rng(3)
    for _ in range(4):
        y = np.array([rng.uniform(0.8, 1.4) if s in diagonal else rng.uniform(-0.3, 0.3) for s in system.state])
        p = system.param_vector(dict(beta=rng.uniform(0.3, 1.5), eta=1.0, lam=0.1, rho=rng.uniform(0.5, 2),
                                     tau=0.05))
        a, b = module.ours_numpy(0.0, y, p), module.theirs_numpy(0.0, y, p)
        assert np.all(np.isfinite(b)) and np.max(np.abs(b)) > 0
        assert np.max(np.abs(a - b)) <= 1e-13 * np.max(np.abs(b))
