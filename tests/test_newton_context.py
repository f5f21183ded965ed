"""One Newton family in two numeric contexts (float64 and mpmath): every result is compared with a closed form."""
import fractions

import mpmath
import numpy as np
import pytest

from symvae.numerics._context import FLOAT64, MpContext, SingularMatrix
from symvae.numerics._newton import newton, newton_float, newton_mp, refine_two_precisions


def _hyperbola(lam):
    """F(x, y) = (x^2 - lam, x y - 3): root (sqrt(lam), 3 / sqrt(lam)) from a positive start."""
    def F(z):
        return np.array([z[0] * z[0] - lam, z[0] * z[1] - 3])

    def J(z):
        return np.array([[2 * z[0], 0 * z[0]], [z[1], z[0]]])
    return F, J


@pytest.mark.parametrize("damping", ["none", "line", "lm"])
def test_same_problem_in_both_contexts_agrees_with_the_closed_form(damping):
    dps = 50
    ctx = MpContext(dps)
    with ctx.precision():
        F_mp, J_mp = _hyperbola(ctx.from_decimal("0.3"))
        tol = ctx.eps
    F_f, J_f = _hyperbola(FLOAT64.from_decimal("0.3"))
    opts = {"none": dict(xtol=1e-13), "line": dict(xtol=1e-13), "lm": dict(ftol=1e-15)}[damping]
    opts_mp = {"none": dict(xtol=tol), "line": dict(xtol=tol, ftol=1e-6), "lm": dict(ftol=tol ** 1.2)}[damping]
    rf = newton(FLOAT64, F_f, J_f, [1.0, 1.0], damping=damping, **opts)
    rm = newton(ctx, F_mp, J_mp, [1.0, 1.0], damping=damping, max_iter=60, **opts_mp)
    assert rf.converged and rm.converged
    with mpmath.workdps(dps + 20):
        root = mpmath.sqrt(mpmath.mpf(3) / 10)  # lam = 3/10 exactly
        exact = [root, 3 / root]
        for a, b in zip(rm.x, exact):  # mpmath: the requested digits
            assert abs(a - b) < mpmath.mpf(10) ** (-(dps - 2)) * abs(b)
        for a, b, c in zip(rf.x, exact, rm.x):  # float64: round-off, and the same root as in mpmath
            assert abs(a - b) < 1e-12 * abs(b) and abs(a - c) < 1e-12 * abs(c)


def test_parameters_reach_mpmath_as_the_typed_decimals():
    ctx = MpContext(40)
    with ctx.precision():
        tenth3 = mpmath.mpf(3) / 10
        for typed in (0.3, "0.3", " 0.3", fractions.Fraction(3, 10)):
            assert ctx.from_decimal(typed) == tenth3, typed
        assert ctx.from_decimal(0.3) != mpmath.mpf(0.3)  # not the nearest double 0.299999999999999988897...
        assert abs(ctx.from_decimal(0.3) - mpmath.mpf("0.29999999999999998889776975")) > mpmath.mpf(10) ** -18
        assert ctx.from_decimal(7) == 7 and ctx.from_decimal(1e-300) == mpmath.mpf(1) / mpmath.mpf(10) ** 300
        # a decimal string keeps every digit it has, beyond float64
        assert ctx.from_decimal("0.1234567890123456789012345") * 10 ** 25 == 1234567890123456789012345
    assert FLOAT64.from_decimal("0.3") == 0.3 and FLOAT64.from_decimal(fractions.Fraction(1, 4)) == 0.25
    # the solution follows: sqrt(0.3) to 38 digits only with the decimal parameter
    F, J = _hyperbola(None)
    with ctx.precision():
        exact = mpmath.sqrt(mpmath.mpf(3) / 10)
        for lam, ok in ((ctx.from_decimal(0.3), True), (mpmath.mpf(0.3), False)):
            r = newton(ctx, lambda z, lam=lam: np.array([z[0] ** 2 - lam]), lambda z: np.array([[2 * z[0]]]),
                       [0.5], xtol=ctx.eps)
            assert r.converged
            assert (abs(r.x[0] - exact) < mpmath.mpf(10) ** -38) is ok


def _nearly_singular(eps):
    """F = (r, r (1 + eps x)), r = x^2 + y^2 - 1: the two equations nearly coincide, det J = -2 eps y r, so the
    Jacobian is nearly singular off the unit circle and singular on it (every point of the circle is a root)."""
    def F(z):
        r = z[0] * z[0] + z[1] * z[1] - 1
        return np.array([r, r * (1 + eps * z[0])])

    def J(z):
        r = z[0] * z[0] + z[1] * z[1] - 1
        return np.array([[2 * z[0], 2 * z[1]], [2 * z[0] * (1 + eps * z[0]) + eps * r, 2 * z[1] * (1 + eps * z[0])]])
    return F, J


@pytest.mark.parametrize("mp", [False, True])
def test_levenberg_marquardt_converges_where_plain_newton_fails(mp):
    ctx = MpContext(30) if mp else FLOAT64
    with ctx.precision():
        F, J = _nearly_singular(ctx.from_decimal("1e-9"))
        tol = mpmath.mpf(10) ** -25 if mp else 1e-12
        plain = newton(ctx, F, J, [2.0, 0.5], xtol=tol, max_iter=50)
        lm = newton(ctx, F, J, [2.0, 0.5], damping="lm", ftol=tol, max_iter=50)
        assert not plain.converged  # steps of size 1/eps along the nearly null direction never settle
        assert lm.converged and lm.residual <= tol and lm.iterations < 20
        assert abs(lm.x[0] ** 2 + lm.x[1] ** 2 - 1) <= tol  # on the unit circle


@pytest.mark.parametrize("mp", [False, True])
def test_deflation_finds_the_distinct_roots_in_both_contexts(mp):
    """F = (x^3 - x, y - x^2): roots (-1, 1), (0, 0), (1, 1). From one start, deflating the roots already found
    gives a new one each time, then nothing."""
    ctx = MpContext(40) if mp else FLOAT64

    def F(z):
        return np.array([z[0] ** 3 - z[0], z[1] - z[0] ** 2])

    def J(z):
        return np.array([[3 * z[0] ** 2 - 1, 0 * z[0]], [-2 * z[0], 1 + 0 * z[0]]])
    xtol = mpmath.mpf(10) ** -37 if mp else 1e-12
    found = []
    with ctx.precision():
        for _ in range(4):
            r = newton(ctx, F, J, [-0.2, 0.3], damping="line", deflate=found, xtol=xtol, max_iter=100)
            if not r.converged:
                break
            found.append(r.x)
    assert len(found) == 3
    got = sorted(found, key=lambda z: float(z[0]))
    for z, (x, y) in zip(got, [(-1, 1), (0, 0), (1, 1)]):
        assert abs(z[0] - x) < 10 * xtol and abs(z[1] - y) < 10 * xtol


def test_deflated_float_wrapper_is_the_line_mode():
    F = lambda z: np.array([z[0] ** 3 - z[0], z[1] - z[0] ** 2])  # noqa: E731
    J = lambda z: np.array([[3 * z[0] ** 2 - 1, 0.0], [-2 * z[0], 1.0]])  # noqa: E731
    x, ok, _ = newton_float(F, J, np.array([0.6, 0.2]), [0, 1], roots=np.array([[1.0, 1.0]]))
    r = newton(FLOAT64, F, J, [0.6, 0.2], damping="line", deflate=[[1.0, 1.0]])
    assert ok and np.array_equal(x, r.x)
    assert abs(x[0]) < 1e-12 or abs(x[0] + 1) < 1e-12  # a root other than the deflated (1, 1)


def test_newton_on_a_subspace_keeps_the_other_coordinates():
    F = lambda z: np.array([z[0] ** 2 - 2, z[1] - 5.0, z[2] ** 2 - 9])  # noqa: E731
    J = lambda z: np.diag([2 * z[0], 1.0, 2 * z[2]])  # noqa: E731
    r = newton(FLOAT64, F, J, [1.0, 7.0, 2.0], free=[0, 2], xtol=1e-14)
    assert r.converged and r.x[1] == 7.0
    assert abs(r.x[0] - np.sqrt(2)) < 1e-15 and abs(r.x[2] - 3) < 1e-15


def test_two_precision_refinement_agrees_with_the_closed_form():
    fun = lambda y: mpmath.matrix([y[0] ** 2 - 2, y[0] * y[1] - 1])  # noqa: E731
    jac = lambda y: mpmath.matrix([[2 * y[0], 0], [y[1], y[0]]])  # noqa: E731
    r1, r2, agree = refine_two_precisions(fun, jac, [1.4, 0.7], 30, 60, 1)
    assert r1.converged and r2.converged and 28 <= agree
    with mpmath.workdps(80):
        assert abs(r1.y[1] - 1 / mpmath.sqrt(2)) < mpmath.mpf(10) ** -28
        assert abs(r2.y[1] - 1 / mpmath.sqrt(2)) < mpmath.mpf(10) ** -58


def test_a_start_carried_at_high_precision_is_not_rounded():
    """One Newton step from a 45-digit start gives about 90 correct digits, if the start keeps its digits (rounded to
    the caller's 15 digits, one step would give about 30)."""
    ctx = MpContext(80)
    with mpmath.workdps(100):
        start = mpmath.sqrt(2) + mpmath.mpf(10) ** -45
        exact = mpmath.sqrt(2)
    r = newton(ctx, lambda z: np.array([z[0] ** 2 - 2]), lambda z: np.array([[2 * z[0]]]), [start], max_iter=1)
    assert r.iterations == 1
    with mpmath.workdps(100):
        assert abs(r.x[0] - exact) < mpmath.mpf(10) ** -78
    # newton_mp, second stage of a refinement: starting from 45 digits, few steps to 80
    res = newton_mp(lambda y: mpmath.matrix([y[0] ** 2 - 2]), lambda y: mpmath.matrix([[2 * y[0]]]), [start], 80,
                    start_digits=40)
    assert res.converged and res.iterations <= 3
    with mpmath.workdps(100):
        assert abs(res.y[0] - exact) < mpmath.mpf(10) ** -78


def test_singular_steps_and_bad_modes():
    with pytest.raises(SingularMatrix):
        FLOAT64.solve(np.zeros((2, 2)), np.ones(2))
    with pytest.raises(SingularMatrix):
        MpContext(20).solve(np.zeros((2, 2), dtype=object), np.ones(2, dtype=object))
    F = lambda z: np.array([z[0] ** 2 + 1.0])  # noqa: E731  no real root, J = 0 at the start
    J = lambda z: np.array([[2 * z[0]]])  # noqa: E731
    assert not newton(FLOAT64, F, J, [0.0], xtol=1e-12).converged
    with pytest.raises(ValueError):
        newton(FLOAT64, F, J, [0.0], damping="trust")
    with pytest.raises(ValueError):
        newton(FLOAT64, F, J, [0.0], deflate=[[1.0]])


def test_levenberg_marquardt_keeps_positive_coordinates_positive():
    """F = ((x + 1)(x - 3), y - 2) from x = 0.5: the Newton direction in x points to the root -1 (F_x < 0 and F < 0
    there). Unconstrained LM reaches x = -1; with x kept positive every step crossing 0 is rejected, so x stays
    positive (and the iteration stalls before 0 instead of jumping to the other root). Mask and indices agree, and
    solving on the subspace {x} leaves y untouched (and x still positive)."""
    F = lambda z: np.array([(z[0] + 1) * (z[0] - 3), z[1] - 2])  # noqa: E731
    J = lambda z: np.array([[2 * z[0] - 2, 0.0], [0.0, 1.0]])  # noqa: E731
    free_run = newton(FLOAT64, F, J, [0.5, 0.0], damping="lm", ftol=1e-14)
    assert free_run.converged and abs(free_run.x[0] + 1) < 1e-14 and abs(free_run.x[1] - 2) < 1e-14
    by_index = newton(FLOAT64, F, J, [0.5, 0.0], damping="lm", ftol=1e-14, positive=[0])
    by_mask = newton(FLOAT64, F, J, [0.5, 0.0], damping="lm", ftol=1e-14, positive=np.array([True, False]))
    assert np.array_equal(by_index.x, by_mask.x) and by_index.x[0] > 0 and not by_index.converged
    on_x = newton(FLOAT64, F, J, [0.5, 7.0], damping="lm", ftol=1e-14, free=[0], positive=[0])
    assert on_x.x[1] == 7.0 and 0 < on_x.x[0] < 0.5


@pytest.mark.parametrize("ctx", [FLOAT64, MpContext(40)], ids=["float64", "mpmath"])
def test_symmetric_eigendecomposition_and_full_svd_reconstruct_their_matrix(ctx):
    """eigh: ascending eigenvalues, orthonormal eigenvectors, A V = V diag(w); svd: square U, Vt, s descending,
    U diag(s) Vt = A (a 3 x 5 matrix, so Vt has rows beyond the rank)."""
    rng = np.random.default_rng(4)
    S = rng.normal(size=(4, 4))
    A = S + S.T
    B = rng.normal(size=(3, 5))
    with ctx.precision():
        A_c, B_c = ctx.asmatrix([[ctx.scalar(v) for v in row] for row in A]), \
            ctx.asmatrix([[ctx.scalar(v) for v in row] for row in B])
        w, V = ctx.eigh(A_c)
        U, s, Vt = ctx.svd(B_c)
        tol = 1e-12 if ctx is FLOAT64 else mpmath.mpf(10) ** -35
        assert all(w[k] <= w[k + 1] for k in range(3))
        assert np.max(np.abs(A_c @ V - V * w)) < tol
        assert np.max(np.abs(V.T @ V - ctx.eye(4))) < tol
        assert U.shape == (3, 3) and Vt.shape == (5, 5) and all(s[k] >= s[k + 1] for k in range(2))
        Sigma = ctx.zeros((3, 5))
        for k in range(3):
            Sigma[k, k] = s[k]
        assert np.max(np.abs(U @ Sigma @ Vt - B_c)) < tol
        assert np.max(np.abs(Vt @ Vt.T - ctx.eye(5))) < tol
    np.testing.assert_allclose(np.asarray(w, float), np.linalg.eigvalsh(A), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(s, float), np.linalg.svd(B, compute_uv=False), rtol=1e-12)
