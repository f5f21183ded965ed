"""The finite-N online-SGD simulator: its gradient against the literal loss of docs/model.md, exact initial overlaps,
the random stream, input validation, divergence reporting and result shapes."""
import math

import numpy as np
import pytest

import symvae
from symvae.errors import InvalidInputError
from symvae.simulate import build_simulator, gram_factor, initial_vectors, simulate

INIT = {"m": [[0.3]], "m_tilde": [[0.3]], "Q": [[1.0]], "Q_tilde": [[1.0]], "R": [[0.0]], "D": [1.0]}
PARAMS = dict(rho=1.5, eta=0.5, beta=0.6, lam=0.05, tau=0.3)


# ------------------------------------------------------------------ the literal loss of docs/model.md section 2, in numpy
def literal_loss(W, W_tilde, D, x, *, beta, lam_W, lam_W_tilde, sigma2=1.0, learned_sigma2=False):
    """l(x) = 1/2|x|^2 - x^T W mu/sqrt(N) + 1/2 mu^T Q mu + 1/2 sum_k Q_kk D_k (over sigma^2)
    + beta/2 sum_k (mu_k^2 + D_k - log D_k - 1) + (lam/2N)(|W|^2 + |W~|^2) [+ N/2 log sigma^2]."""
    N = x.shape[0]
    mu = W_tilde @ x / math.sqrt(N)
    Q = W.T @ W / N
    recon = 0.5 * x @ x - x @ W @ mu / math.sqrt(N) + 0.5 * mu @ Q @ mu + 0.5 * np.sum(np.diag(Q) * D)
    kl = 0.5 * np.sum(mu ** 2 + D - np.log(D) - 1)
    reg = lam_W / (2 * N) * np.sum(W ** 2) + lam_W_tilde / (2 * N) * np.sum(W_tilde ** 2)
    loss = recon / sigma2 + beta * kl + reg
    if learned_sigma2:
        loss += N / 2 * math.log(sigma2)
    return loss


def central_difference(f, x0, h=1e-5):
    x0 = np.array(x0, dtype=float)
    g = np.zeros_like(x0)
    for idx in np.ndindex(*x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


# variant, M, M*, loss options given the parameter values p, extra parameters, time
GRADIENT_CASES = {
    "base": ("base", 2, 2, lambda p: dict(beta=p["beta"], lam_W=p["lam"], lam_W_tilde=p["lam"]), {}, 0.0),
    "learned_sigma2": ("learned_sigma2", 2, 1, lambda p: dict(beta=p["beta"], lam_W=p["lam"],
                                                                  lam_W_tilde=p["lam"], learned_sigma2=True), {}, 0.0),
    "tied": ("tied", 2, 2, lambda p: dict(beta=p["beta"], lam_W=p["lam"], lam_W_tilde=p["lam"]), {}, 0.0),
    "lam_W_only": ("lam_W_only", 1, 2, lambda p: dict(beta=p["beta"], lam_W=p["lam"], lam_W_tilde=0.0), {}, 0.0),
    "annealing": ("annealing", 1, 1, lambda p: dict(beta=p["beta"] * math.tanh(p["gamma"] * 0.7), lam_W=p["lam"],
                                                    lam_W_tilde=p["lam"]), {"gamma": 0.9}, 0.7),
    "fixed_sigma2_fixed_D": (("fixed_sigma2", {"encoder_variance": "fixed"}), 2, 1,
                             lambda p: dict(beta=p["beta"], lam_W=p["lam"], lam_W_tilde=p["lam"]),
                             {"sigma2": 1.7, "D_1": 0.6, "D_2": 1.3}, 0.0),
}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", list(GRADIENT_CASES))
def test_gradient_is_that_of_the_literal_loss(case, batch):
    """The step the simulator takes is -step * (gradient of the docs/model.md loss averaged over the mini-batch)."""
    variant, M, Ms, loss_options, extra, t = GRADIENT_CASES[case]
    variant, overrides = variant if isinstance(variant, tuple) else (variant, {})
    model = symvae.make_model(variant, M=M, M_star=Ms, **overrides)
    sim = build_simulator(model)
    tied = model.vae.tied
    learned_D = model.vae.encoder_variance == "learned"
    rng = np.random.default_rng(7)
    N = 12
    values = dict(rho=1.3, eta=0.7, beta=0.8, lam=0.3, tau=1.0, **extra)
    W_star = math.sqrt(N) * np.linalg.qr(rng.standard_normal((N, Ms)))[0]
    W = rng.standard_normal((N, M))
    W_tilde = W.T.copy() if tied else rng.standard_normal((M, N))
    D = rng.uniform(0.3, 1.5, size=M) if learned_D else np.array([values[f"D_{k + 1}"] for k in range(M)])
    sigma2 = {"learned": 1.4, "fixed": values.get("sigma2"), "unit": 1.0}[model.vae.decoder_variance]
    X = rng.standard_normal((batch, N)) * 1.3
    rows = [W_star.T, W.T] + ([] if tied else [W_tilde])
    scalars = {f"D_{k + 1}": D[k] for k in range(M)} | {"sigma2": sigma2}
    grad = sim.gradient(np.vstack(rows), X, scalars, values, t=t)

    def loss(W_, Wt_, D_, s2_, options):
        return np.mean([literal_loss(W_, W_.T if tied else Wt_, D_, x, sigma2=s2_, **options) for x in X])

    def finite_differences(options):
        fd = {"W": central_difference(lambda w: loss(w, W_tilde, D, sigma2, options), W)}
        if learned_D:
            fd["D"] = central_difference(lambda d: loss(W, W_tilde, d, sigma2, options), D)
        if not tied:
            fd["W_tilde"] = central_difference(lambda w: loss(W, w, D, sigma2, options), W_tilde)
        if model.vae.decoder_variance == "learned":
            fd["sigma2"] = central_difference(lambda s: loss(W, W_tilde, D, s[0], options), [sigma2])[0]
        return fd

    options = loss_options(values)
    fd = finite_differences(options)
    assert set(grad) == set(fd)
    for name in fd:
        assert np.allclose(grad[name], fd[name], rtol=1e-6, atol=1e-7), name
        assert np.max(np.abs(fd[name])) > 1e-2  # not a vacuous comparison

    # the check can fail: the same comparison against a slightly different loss (beta off by 5 %) does
    fd_wrong = finite_differences(dict(options, beta=options["beta"] * 1.05))
    assert not all(np.allclose(grad[name], fd_wrong[name], rtol=1e-6, atol=1e-7) for name in fd)


def test_random_stream_is_numpys_sfc64_normal():
    """The kernel's normals are numpy.random.Generator(SFC64(seed)).standard_normal, up to the last bits of the
    ziggurat tables (computed here in 40-digit arithmetic; numpy's differ by ~1e-14 relative)."""
    mod = build_simulator(symvae.make_model("base")).module
    seq = np.random.SeedSequence(11)
    st = np.random.SFC64(seq).state["state"]["state"].copy()
    out = np.empty(200_000)
    mod.fill_standard_normal(st, out)
    ref = np.random.Generator(np.random.SFC64(seq)).standard_normal(len(out))
    assert np.max(np.abs(out - ref)) < 1e-13
    assert abs(out.mean()) < 0.01 and abs(out.var() - 1) < 0.01
    # the one-draw function (used for the spike coefficients c_k) continues the same stream
    single = np.array([mod.standard_normal(st) for _ in range(2000)])
    assert np.max(np.abs(single - np.random.Generator(np.random.SFC64(seq)).standard_normal(len(out) + 2000)[
        len(out):])) < 1e-13


# ------------------------------------------------------------------ initial state
def _random_init(rng, M, Ms, tied=False):
    K = Ms + 2 * M
    V = rng.normal(size=(K, K + 2))
    V[:Ms] = np.linalg.qr(rng.normal(size=(K + 2, Ms)))[0].T
    if tied:
        V[Ms + M:] = V[Ms:Ms + M]
    G = V @ V.T
    return {"m": G[Ms:Ms + M, :Ms].tolist(), "m_tilde": G[Ms + M:, :Ms].tolist(), "Q": G[Ms:Ms + M, Ms:Ms + M].tolist(),
            "Q_tilde": G[Ms + M:, Ms + M:].tolist(), "R": G[Ms:Ms + M, Ms + M:].tolist(),
            "D": rng.uniform(0.5, 2, size=M).tolist()}


@pytest.mark.parametrize("variant,M,Ms", [("base", 2, 3), ("tied", 2, 1), ("base", 1, 1)])
def test_initial_vectors_have_the_initial_overlaps(variant, M, Ms):
    table = symvae.model.SymbolTable(symvae.make_model(variant, M=M, M_star=Ms))
    init = _random_init(np.random.default_rng(3), M, Ms, tied=table.tied)
    state = symvae.model.validate_state(table, init)
    V = initial_vectors(gram_factor(table, state), 40, np.random.default_rng(0))
    G = symvae.model.gram_matrix(M, Ms, state)[:len(V), :len(V)]
    assert np.max(np.abs(V @ V.T / 40 - G)) < 1e-12


@pytest.mark.parametrize("variant,M,Ms", [("base", 2, 1), ("tied", 2, 2), ("learned_sigma2", 1, 1)])
def test_random_initial_state_has_the_moments_of_gaussian_weights(variant, M, Ms):
    """The papers' initialisation, sampled in O(1): its overlaps have the moments of explicit i.i.d. N(0, 1) weights
    (closed forms: E Q = I, Var Q_ii = 2/N, Var Q_ij = Var R_ij = Var m = 1/N, R = Q when tied) and every draw is
    realisable (validate_state accepts it, the Gram matrix is PSD)."""
    from symvae.simulate import random_initial_state

    table = symvae.model.SymbolTable(symvae.make_model(variant, M=M, M_star=Ms))
    N, draws = 30, 6000
    states = [random_initial_state(table, N, seed=s) for s in range(draws)]
    for s in states[:50]:
        symvae.model.validate_state(table, s)
    get = {k: np.array([s[k] for s in states]) for k in ("m", "m_tilde", "Q", "Q_tilde", "R")}
    se = lambda var: 5 * math.sqrt(var / draws)  # noqa: E731 - five standard errors of a sample mean
    assert np.all(np.abs(get["Q"].mean(0) - np.eye(M)) < se(2 / N))
    assert np.all(np.abs(get["m"].mean(0)) < se(1 / N))
    assert np.all(np.abs(get["Q"][:, 0, 0].var() - 2 / N) < 0.1 * 2 / N)
    assert np.all(np.abs(get["m"].var(0) - 1 / N) < 0.1 / N)
    if table.tied:
        assert np.array_equal(get["R"], get["Q"]) and np.array_equal(get["m_tilde"], get["m"])
    else:
        assert np.all(np.abs(get["R"].var(0) - 1 / N) < 0.1 / N)
        assert np.all(np.abs(get["Q_tilde"][:, 0, 0].var() - 2 / N) < 0.1 * 2 / N)
    if M > 1:
        assert abs(get["Q"][:, 0, 1].var() - 1 / N) < 0.1 / N
    if table.model.vae.decoder_variance == "learned":
        assert states[0]["sigma2"] == 1.0
    # the same law as explicit vectors (Kolmogorov-Smirnov on Q_11 and m_11 against direct sampling)
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(1)
    W = rng.standard_normal((draws, N, M))
    assert ks_2samp(get["Q"][:, 0, 0], (W[:, :, 0] ** 2).sum(1) / N).pvalue > 1e-3
    assert ks_2samp(get["m"][:, 0, 0], W[:, 0, 0] / math.sqrt(N)).pvalue > 1e-3


def test_random_initial_state_rejects_bad_arguments():
    from symvae.simulate import random_initial_state

    table = symvae.model.SymbolTable(symvae.make_model("base", M=2))
    for bad in (4, 1.5e4, True, 10 ** 14, -1):
        with pytest.raises(InvalidInputError, match="dimension"):
            random_initial_state(table, bad)
    with pytest.raises(InvalidInputError, match="seed"):
        random_initial_state(table, 100, seed=-1)
    assert random_initial_state(table, 100, seed=3) == random_initial_state(table, 100, seed=3)


def test_recorded_initial_order_parameters_are_exact():
    model = symvae.make_model("learned_sigma2", M=2, M_star=3)
    init = dict(_random_init(np.random.default_rng(3), 2, 3), sigma2=0.8)
    res = simulate(model, PARAMS, init, [0.0], N=40, seeds=3)
    assert res.ok and res.t.tolist() == [0.0]
    for name, value in init.items():
        got = res.per_seed[name][:, 0]
        assert np.max(np.abs(got - np.asarray(value)[None])) < 1e-12, name
    init.pop("sigma2")  # optional: defaults to 1
    assert np.all(simulate(model, PARAMS, init, [0.0], N=40, seeds=1).per_seed["sigma2"] == 1.0)


def test_singular_gram_and_independent_seeds():
    """W~ = W^T in the untied model (a singular Gram matrix) is realisable; every seed gets its own weights."""
    table = symvae.model.SymbolTable(symvae.make_model("base"))
    state = symvae.model.validate_state(table, {"m": [[0.5]], "m_tilde": [[0.5]], "Q": [[1.0]], "Q_tilde": [[1.0]],
                                                "R": [[1.0]], "D": [1.0]})
    L = gram_factor(table, state)
    V1 = initial_vectors(L, 30, np.random.default_rng(1))
    V2 = initial_vectors(L, 30, np.random.default_rng(2))
    assert np.allclose(V1[1], V1[2], atol=1e-12)  # W = W~
    assert np.allclose(V1 @ V1.T / 30, V2 @ V2.T / 30, atol=1e-12)
    assert np.max(np.abs(V1 - V2)) > 0.5


@pytest.mark.parametrize("bad,match", [
    ({"m": [[1.2]]}, "positive semi-definite"),            # |m| > sqrt(Q): no vector has these overlaps
    ({"R": [[1.5]]}, "positive semi-definite"),            # |R| > sqrt(Q Q~)
    ({"D": [0.0]}, "D must be > 0"),
    ({"Q": [[1.0, 0.0]]}, "shape"),
    ({"Qtilde": [[1.0]]}, "unknown key"),
])
def test_invalid_initial_states_are_rejected(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        simulate(symvae.make_model("base"), PARAMS, {**INIT, **bad}, [0, 1], N=50, seeds=1)


def test_invalid_arguments_are_rejected():
    model = symvae.make_model("base")
    with pytest.raises(InvalidInputError, match="N must be >="):
        simulate(model, PARAMS, INIT, [0, 1], N=2, seeds=1)
    with pytest.raises(InvalidInputError, match="missing parameter"):
        simulate(model, {"rho": 1.0}, INIT, [0, 1], N=50, seeds=1)
    with pytest.raises(InvalidInputError, match="non-decreasing"):
        simulate(model, PARAMS, INIT, [1, 0], N=50, seeds=1)
    with pytest.raises(InvalidInputError, match="seeds"):
        simulate(model, PARAMS, INIT, [0, 1], N=50, seeds=0)
    with pytest.raises(InvalidInputError, match="batch size"):
        simulate(symvae.make_model("minibatch"), dict(PARAMS, b=2.5), INIT, [0, 1], N=50, seeds=1)
    with pytest.raises(InvalidInputError, match="tied weights"):
        simulate(symvae.make_model("tied"), PARAMS, INIT, [0, 1], N=50, seeds=1)  # R = 0 != Q


def test_divergence_is_reported_with_its_time():
    res = simulate(symvae.make_model("base"), dict(PARAMS, tau=4.0), INIT, np.linspace(0, 20, 21), N=100, seeds=2)
    assert res.status == "diverged" and "diverged at t =" in res.message
    assert 0 < res.t_stop < 20
    assert len(res.t) < 21 and res.t[-1] <= res.t_stop
    assert all(np.all(np.isfinite(v)) for v in res.per_seed.values())


def test_shapes_reproducibility_and_seed_prefix():
    model = symvae.make_model("learned_sigma2", M=2, M_star=3)
    init = _random_init(np.random.default_rng(5), 2, 3)
    t = [0.0, 0.25, 0.5, 0.5]
    a = simulate(model, PARAMS, init, t, N=60, seeds=3, seed=4)
    b = simulate(model, PARAMS, init, t, N=60, seeds=2, seed=4)
    shapes = {"m": (2, 3), "m_tilde": (2, 3), "Q": (2, 2), "Q_tilde": (2, 2), "R": (2, 2), "D": (2,), "sigma2": ()}
    assert set(a.per_seed) == set(shapes)
    for name, shape in shapes.items():
        assert a.per_seed[name].shape == (3, 4) + shape
        assert a.mean[name].shape == a.std[name].shape == (4,) + shape
        assert np.array_equal(a.per_seed[name][:2], b.per_seed[name])  # seed k does not depend on the seed count
    assert a.eg.shape == (3, 4) and a.steps.tolist() == [0, 15, 30, 30]
    assert not np.array_equal(a.per_seed["m"][0, 1], a.per_seed["m"][1, 1])


def test_eg_is_the_derived_observable_and_fixed_parameters_are_reported():
    model = symvae.make_model("fixed_D")
    values = dict(PARAMS, D_1=0.4)
    res = simulate(model, values, {k: v for k, v in INIT.items() if k != "D"}, [0, 2], N=80, seeds=2)
    assert np.all(res.per_seed["D"] == 0.4) and "sigma2" not in res.per_seed
    m, Q, rho = res.per_seed["m"][..., 0, 0], res.per_seed["Q"][..., 0, 0], values["rho"]
    assert np.allclose(res.eg, rho - 2 * math.sqrt(rho) * np.abs(m) + Q, atol=1e-12)


def test_samples_follow_the_per_spike_model():
    """x = sum_k sqrt(rho_k/N) W*_k c_k + sqrt(eta) n: the teacher fields s_k = W*_k.x/sqrt(N) have variance
    rho_k + eta and are uncorrelated, a direction orthogonal to W* sees eta (the kernel's own sampler)."""
    model = symvae.make_model("per_spike_rho", M=1, M_star=2)
    mod = build_simulator(model).module
    N, n, rho, eta = 20, 40_000, np.array([2.0, 0.5]), 0.7
    E = np.linalg.qr(np.random.default_rng(0).standard_normal((N, 3)))[0]
    V = np.ascontiguousarray(math.sqrt(N) * E.T)  # rows W*_1, W*_2 and a third orthogonal vector
    st = np.random.SFC64(1).state["state"]["state"].copy()
    X = np.empty((n, N))
    mod.sample_batch(V, st, np.sqrt(rho / N), math.sqrt(eta), X, np.empty(2))
    fields = X @ V.T / math.sqrt(N)
    cov = fields.T @ fields / n
    expected = np.diag([rho[0] + eta, rho[1] + eta, eta])
    assert np.allclose(cov, expected, atol=0.05 * 2.7)  # ~5 standard errors of a variance from 40 000 samples
    assert np.allclose(fields.mean(axis=0), 0, atol=0.05)


def test_trajectory_is_replayed_by_a_plain_numpy_loop():
    """End to end: the same random stream (SeedSequence(seed).spawn(seeds)[k].spawn(2) -> initial basis, samples),
    fed to per-step numpy SGD on the closed-form gradient of the base loss, gives the same order parameters."""
    N, seeds, p = 30, 2, dict(PARAMS, lam=0.2)
    model = symvae.make_model("base")
    res = simulate(model, p, INIT, [0, 1, 2, 3], N=N, seeds=seeds, seed=5)
    table = symvae.model.SymbolTable(model)
    L = gram_factor(table, symvae.model.validate_state(table, INIT))
    for k, child in enumerate(np.random.SeedSequence(5).spawn(seeds)):
        init_seq, sgd_seq = child.spawn(2)
        w_star, w, w_tilde = initial_vectors(L, N, np.random.Generator(np.random.SFC64(init_seq)))
        D = 1.0
        rng = np.random.Generator(np.random.SFC64(sgd_seq))
        for step in range(3 * N + 1):
            if step % N == 0:
                i = step // N
                assert abs(w @ w_star / N - res.per_seed["m"][k, i, 0, 0]) < 1e-10
                assert abs(w @ w_tilde / N - res.per_seed["R"][k, i, 0, 0]) < 1e-10
                assert abs(w_tilde @ w_tilde / N - res.per_seed["Q_tilde"][k, i, 0, 0]) < 1e-10
                assert abs(D - res.per_seed["D"][k, i, 0]) < 1e-12
                if i == 3:
                    break
            c = math.sqrt(p["rho"] / N) * rng.standard_normal()
            x = math.sqrt(p["eta"]) * rng.standard_normal(N) + c * w_star
            mu, ell, Q = w_tilde @ x / math.sqrt(N), w @ x / math.sqrt(N), w @ w / N
            g_w = -mu * x / math.sqrt(N) + (mu * mu + D + p["lam"]) * w / N
            g_w_tilde = (-ell + Q * mu + p["beta"] * mu) * x / math.sqrt(N) + p["lam"] * w_tilde / N
            g_D = 0.5 * Q + 0.5 * p["beta"] * (1 - 1 / D)
            w, w_tilde, D = w - p["tau"] * g_w, w_tilde - p["tau"] * g_w_tilde, D - p["tau"] / N * g_D


def test_parallel_run_equals_serial_run():
    model = symvae.make_model("base")
    a = simulate(model, PARAMS, INIT, [0, 1, 3], N=60, seeds=3, parallel=True)
    b = simulate(model, PARAMS, INIT, [0, 1, 3], N=60, seeds=3)
    assert all(np.array_equal(a.per_seed[k], b.per_seed[k]) for k in a.per_seed)
