"""Continuation: round trips, evaluation budgets, detection of folds and branch points by sign changes (also when
two blocks go singular together), branch switching, and the generic F(x; p) = 0 interface (synthetic systems)."""
import json

import numpy as np
import pytest
import sympy as sp

import symvae
from hand_derivation import hand_norm_block_thresholds
from symvae.cli import main
from symvae.derive import DerivedSystem
from symvae.errors import InvalidInputError
from symvae.numerics._continuation import continue_branch, switch_branch
from symvae.numerics._fixed_points import collapsed_start, find_fixed_points
from symvae.numerics._systems import as_compiled
from symvae.numerics._thresholds import collapsed_branch, refine_special_point

BASE = dict(beta=0.5, eta=1.0, lam=0.0, rho=1.0, tau=0.01)


@pytest.fixture(scope="module")
def base():
    return as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=1, M_star=1)))


@pytest.fixture(scope="module")
def learned(base):
    found = find_fixed_points(base, BASE, closed_forms=False)
    return [p for p in found.of_kind("learned") if p.image == "identity"][0]


def _synthetic(rhs, state=("x",), params=("p",)):
    xs = sp.symbols(state, real=True)
    ps = sp.symbols(params, real=True)
    xs = xs if isinstance(xs, tuple) else (xs,)
    ps = ps if isinstance(ps, tuple) else (ps,)
    exprs = rhs(*xs, *ps)
    return DerivedSystem(kind="ode", model=symvae.make_model("base"), state=xs, rhs=tuple(exprs), params=ps,
                         observables={}, blocks={s.name: (s,) for s in xs})


def test_forward_then_backward_returns_to_start(base, learned):
    fwd = continue_branch(base, learned, BASE, "beta", 1.5)
    assert fwd.status == "ok" and fwd.p[-1] == 1.5
    back = continue_branch(base, fwd.x[-1], {**BASE, "beta": 1.5}, "beta", 0.5)
    assert back.status == "ok" and back.p[-1] == 0.5
    assert np.max(np.abs(back.x[-1] - learned.x)) < 1e-10
    for b in (fwd, back):  # budgets (scipy-style): steps, corrector iterations, evaluations
        assert b.counts["steps"] <= 40 and b.counts["rejected"] <= 3
        assert b.counts["newton_iterations"] <= 4 * b.counts["steps"] + 10
        assert b.counts["njev"] <= 10 * b.counts["steps"] + 20
    # every branch point is a fixed point
    p = base.system.param_vector(BASE)
    for x, beta in zip(fwd.x, fwd.p):
        p[0] = beta
        assert np.max(np.abs(base.rhs(0, x, p))) < 1e-12
    assert all(fwd.stable) and all(k == "learned" for k in fwd.kinds)


def test_collapsed_branch_detects_the_three_branch_points(base):
    b = collapsed_branch(base, {**BASE, "tau": 0.01})
    assert b.status == "ok" and b.counts["steps"] <= 200
    bps = [(s.block.label, s.stabilising, s.value) for s in b.special_points if s.kind == "BP"]
    assert [(label, stab) for label, stab, _ in bps] == [("norm", True), ("signal", True), ("norm", False)]
    noise, lr = (float(v) for v in hand_norm_block_thresholds(sp.Rational(1, 100))[1:])
    assert bps[0][2] == pytest.approx(noise, rel=1e-9)
    assert bps[1][2] == pytest.approx(2.0, rel=1e-12)  # beta_c = rho + eta
    assert bps[2][2] == pytest.approx(lr, rel=1e-9)


def test_branch_point_inside_the_subspace_is_located_accurately(base):
    """The noise-fitting branch (m = 0) crosses the collapsed one transcritically (in Q) at beta_noise: a sign change
    of the bordered determinant, located to float64 accuracy even after long steps; beyond it Q < 0 (unphysical)."""
    noise = find_fixed_points(base, BASE, closed_forms=False).of_kind("noise-fitting")[0]
    b = continue_branch(base, noise, BASE, "beta", 2.5)
    (bp,) = [s for s in b.special_points if s.kind == "BP"]
    noise = float(hand_norm_block_thresholds(sp.Rational(str(BASE["tau"])))[1])
    assert bp.test == "bordered" and bp.value == pytest.approx(noise, rel=1e-10)
    assert all(b.physical[b.p < bp.value]) and not any(b.physical[b.p > bp.value + 1e-6])


def test_two_blocks_singular_together_are_both_detected():
    """M = 2 collapsed point: both latents' signal blocks go singular at beta_c; det J keeps its sign there, the
    per-block test functions do not."""
    two = as_compiled(symvae.derive_dynamics(symvae.make_model("base", M=2, M_star=1)))
    b = collapsed_branch(two, BASE, lo=1.5, hi=2.5)
    signal = [s for s in b.special_points if s.block is not None and s.block.label == "signal"]
    assert sorted(s.block.latent for s in signal) == [0, 1]
    assert all(abs(s.value - 2.0) < 1e-10 for s in signal)
    i = int(np.searchsorted(b.p, 2.0))
    p = two.system.param_vector(BASE)
    dets = []
    for k in (i - 1, i):
        p[0] = b.p[k]
        dets.append(np.linalg.det(two.jac(0, b.x[k], p)))
    assert np.sign(dets[0]) == np.sign(dets[1])  # the full determinant misses it


def test_branch_switching_at_the_collapse_point(base, learned):
    b = collapsed_branch(base, BASE, lo=1.0, hi=3.0)
    bp = [s for s in b.special_points if s.block.label == "signal"][0]
    new = switch_branch(b, bp, 0.5)
    assert new.status == "ok" and new.p[0] == bp.value and new.p[-1] == 0.5
    assert all(k == "learned" for k in new.kinds[1:]) and all(new.stable[1:])
    # it is the branch of the independently found learned point (up to the sign image)
    assert np.allclose(np.abs(new.x[-1]), np.abs(learned.x), atol=1e-9)
    with pytest.raises(symvae.SymvaeError, match="exists only below"):
        switch_branch(b, bp, 3.0)


def test_stability_flips_exactly_at_the_branch_point(base):
    b = collapsed_branch(base, BASE, lo=1.0, hi=3.0)
    bp = [s for s in b.special_points if s.block.label == "signal"][0]
    p = base.system.param_vector(BASE)
    lead = []
    for beta in (bp.value * (1 - 1e-8), bp.value * (1 + 1e-8)):
        p[0] = beta
        lead.append(np.max(np.linalg.eigvals(base.jac(0, collapsed_start(base.system), p)).real))
    assert lead[0] > 0 > lead[1]


def test_fold_of_a_synthetic_system_to_40_digits():
    """A fold of x' = p - 1/3 - (x - 1)^2 at p = 1/3: detected by the tangent, refined on the extended system."""
    system = _synthetic(lambda x, p: [p - sp.Rational(1, 3) - (x - 1) ** 2])
    b = continue_branch(system, np.array([2.0]), {"p": 4 / 3}, "p", -1.0)
    folds = [s for s in b.special_points if s.kind == "LP"]
    assert len(folds) == 1 and abs(folds[0].value - 1 / 3) < 1e-10
    assert "turned back" in b.message
    r = refine_special_point(folds[0], {"p": 0.0}, 40)
    assert r.status == "verified" and r.text == "0." + "3" * 40


def test_transcritical_branch_point_and_switch():
    """x' = x (p - 1) - x^2: the bordered determinant changes sign at p = 1; switching lands on the other branch."""
    system = _synthetic(lambda x, p: [x * (p - 1) - x ** 2])
    b = continue_branch(system, np.array([-0.5]), {"p": 0.5}, "p", 2.0)
    bps = [s for s in b.special_points if s.kind == "BP"]
    assert len(bps) == 1 and bps[0].test == "bordered" and abs(bps[0].value - 1) < 1e-10
    new = switch_branch(b, bps[0])
    assert np.max(np.abs(new.x[1:, 0])) < 1e-12  # the other branch is x = 0
    assert np.allclose(b.x[:, 0], b.p - 1, atol=1e-12)


def test_the_tangent_exactly_at_a_branch_point_is_a_kernel_vector():
    """At (x, p) = (0, 1) of x' = x (p - 1) - x^2 the bordered matrix is exactly singular for the border (0, 1): the
    tangent is then the kernel vector of [F_x F_p] closest to the border, not a LinAlgError."""
    from symvae.codegen import compile_system
    from symvae.numerics._continuation import _Problem
    from symvae.numerics._newton import Counter
    from symvae.numerics._subspaces import invariant_subspace
    from symvae.numerics._systems import ParameterPoint
    system = _synthetic(lambda x, p: [x * (p - 1) - x ** 2])
    compiled = compile_system(system)
    prob = _Problem(compiled, ParameterPoint(system, {"p": 1.0}), "p", invariant_subspace(system, []), Counter())
    t, A, _ = prob.tangent(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert np.allclose(A, 0) and np.allclose(np.abs(t), [0.0, 1.0])


def test_pitchfork_on_an_invariant_subspace():
    system = _synthetic(lambda x, y, p: [x * (p - x ** 2 - y), -y + x ** 2], state=("x", "y"))
    b = continue_branch(system, np.zeros(2), {"p": -1.0}, "p", 2.0)
    assert b.subspace.zero == (0, 1)
    (bp,) = b.special_points
    assert bp.block is not None and abs(bp.value) < 1e-12 and bp.stabilising is False
    new = switch_branch(b, bp)
    assert new.status == "ok" and all(new.stable[1:])
    assert np.allclose(new.x[1:, 0] ** 2, new.p[1:] / 2, rtol=1e-8)  # x^2 = p/2 on the bifurcating branch


def test_user_condition_is_detected(base, learned):
    b = continue_branch(base, learned, BASE, "beta", 1.9, conditions={"eg": 0.3})
    (point,) = [s for s in b.special_points if s.kind == "USER"]
    p = base.system.param_vector({**BASE, "beta": point.value})
    eg = base.observables(0.0, point.x, p)["eg"]
    assert abs(float(eg) - 0.3) < 1e-10


def test_bad_input(base, learned):
    with pytest.raises(InvalidInputError):
        continue_branch(base, learned, BASE, "nope", 1.0)
    with pytest.raises(InvalidInputError):
        continue_branch(base, learned, BASE, "beta", 0.5)
    with pytest.raises(InvalidInputError, match="not .near. a fixed point"):
        continue_branch(base, learned.x + 0.3, BASE, "beta", 1.0)


def test_cli_continue(capsys, tmp_path):
    out_csv = tmp_path / "branches.csv"
    plot = tmp_path / "branches.png"
    code = main(["continue", "--param", "beta", "--from", "0.5", "--to", "2.5", "--json", "--out", str(out_csv),
                 "--plot", str(plot)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["status"] == "ok"
    kinds = {b["start_kind"] for b in data["branches"]}
    assert kinds == {"learned", "collapsed", "noise-fitting"}
    collapsed = [b for b in data["branches"] if b["start_kind"] == "collapsed"][0]
    assert {"type", "beta", "block"} <= set(collapsed["special_points"][0])
    assert [s["type"] for s in collapsed["special_points"]] == ["BP", "BP"]
    assert len(collapsed["beta"]) == len(collapsed["stable"]) == len(collapsed["eg"])
    assert out_csv.read_text().startswith("branch,origin,beta,stable") and plot.stat().st_size > 1000
    code = main(["continue", "--param", "nope", "--from", "0.5", "--to", "2.5"])
    assert code == 2
