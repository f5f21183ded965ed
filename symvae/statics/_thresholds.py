"""Thresholds of the statics, to any precision: collapse beta_c(alpha) (also located in the weight decay or in alpha),
BBP detection alpha_c, the eg peak in alpha, and the optimal beta(alpha).

All are located on the random-matrix closed form (which the replica saddle point reproduces to ~1e-13, see the tests):
first in float64 (``mpmath.fp``), then polished with ``mpmath.findroot`` at two precisions; the digits on which the two
agree are the agreeing digits, and the Krawczyk interval test (``numerics._certify``) on the threshold's scalar
condition, written out in SymPy, proves an enclosure (``statics_threshold``, which returns the ``Threshold`` of the
online setting).

Collapse: the top latent (largest eigenvalue s_1) is the last to collapse. q = 0 is locally stable iff G'(0) > 0
(``LatentProblem.slope0``); at G'(0) = 0 the transition is continuous if G''(0) > 0 there, and then beta_c solves
G'(0; beta) = 0. Otherwise (strong weight decay) it is first order: beta_c solves G(q) = G(0), G'(q) = 0 with q > 0.
The same conditions in the weight decay (at fixed beta) or in alpha (s_1 and lam/alpha vary) give ``collapse_in``.

A second route for a continuous collapse uses only the derived replica saddle-point equations
(``collapse_threshold_saddle``): the learned saddle blown up at its branch point with the collapsed one. Detection,
the eg peak and the optimal beta have one too (``_saddle_thresholds``; ``statics_threshold(..., method="saddle")``),
and the interior eg peak and the optimal beta of the closed form are certified on its augmented systems.
"""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Callable, Mapping

import mpmath
import numpy as np
import scipy.optimize
import sympy as sp

from ..derive._spectral import Q_NORM, S_EIG
from ..errors import InvalidInputError
from ..model import Model
from ..numerics import Threshold
from ..numerics._context import FLOAT64, MpContext, decimal_text
from ..numerics._newton import newton
from ._closed_form import _functions, closed_form
from ._params import check_alpha, check_params
from ._saddle_thresholds import TIE, StaticsThresholdError, _decimal, freeze_null_directions
from ._spectrum import spectrum_slots

__all__ = ["collapse_threshold", "collapse_in", "detection_threshold", "eg_peak", "optimal_beta",
           "statics_threshold", "threshold_parameters", "collapse_threshold_saddle", "StaticsThresholdError",
           "THRESHOLDS"]

THRESHOLDS = ("collapse", "detection", "eg_peak", "optimal_beta")
METHODS = ("closed-form", "saddle")


def _typed(value, ctx):
    """A parameter value for ``ctx``: in mpmath (``mpmath.mp``) a float or int as the decimal typed (its shortest
    repr: 0.3 is 3/10, not 0.29999999999999998889...), mpmath numbers and anything else as given; float64: as given."""
    if ctx is not mpmath.mp or isinstance(value, (bool, mpmath.mpf)) or not isinstance(value, (int, float, np.number)):
        return value
    return mpmath.mpf(decimal_text(value)) if math.isfinite(value) else mpmath.mpf(value)


def _typed_params(params: Mapping[str, object], ctx) -> dict:
    return {k: _typed(v, ctx) for k, v in params.items()}


def _beta_name(model: Model) -> str:
    beta = model.vae.beta_expr
    if not isinstance(beta, sp.Symbol):
        raise InvalidInputError("thresholds in beta need beta to be a parameter of the model")
    return beta.name


class _Latent:
    """Latent ``index``'s problem (the top latent by default) on the eigenvalue of rank ``slot`` (default ``index``;
    0 the largest) as functions of beta at that fixed eigenvalue, in one mpmath context."""

    def __init__(self, model: Model, params: Mapping[str, float], alpha, ctx, index: int = 0, slot: int | None = None):
        fns = _functions(model)
        self.fns, self.ctx = fns, ctx
        self.beta_name = _beta_name(model)
        names = [n for n in fns.param_names if n != self.beta_name]
        pv = check_params(params, names)
        inv_alpha = ctx.zero if ctx.isinf(alpha) else 1 / ctx.convert(alpha)
        self.spec = [(s.name, ctx.convert(pv[s.name]) * (inv_alpha if s.name in fns.decay else 1))
                     for s in fns.spec_params if s.name != self.beta_name]
        rhos = [pv[n] for n in fns.rho_names]
        self.index = index
        slot = index if slot is None else slot
        self.s = spectrum_slots(rhos, pv["eta"], alpha, slot + 1, ctx)[slot].s
        lp = fns.problem.latents[index]
        args = [Q_NORM, S_EIG] + list(fns.spec_params)
        module = "mpmath" if ctx is mpmath.mp else "math"
        self._G, self._dG, self._slope0 = _top_latent_functions(model, module, index)
        key = (model.key, module, "curvature0", index)  # lambdified once per model, like the three above
        if key not in _LAMBDIFIED:
            _LAMBDIFIED[key] = sp.lambdify(args, lp.curvature0, modules=module)
        self._curv0 = _LAMBDIFIED[key]
        self.order = [s.name for s in fns.spec_params]

    def _args(self, q, beta):
        values = dict(self.spec)
        values[self.beta_name] = beta
        return [q, self.s] + [values[n] for n in self.order]

    def G(self, q, beta):
        return self._G(*self._args(q, beta))

    def dG(self, q, beta):
        return self._dG(*self._args(q, beta))

    def slope0(self, beta):
        return self._slope0(*self._args(self.ctx.zero, beta))

    def curvature0(self, beta):
        return self._curv0(*self._args(self.ctx.zero, beta))


def _bisect(f: Callable[[float], bool], lo: float, hi: float, steps: int = 60) -> tuple[float, float]:
    """Shrink [lo, hi] with f(lo) True, f(hi) False."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if f(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi


def collapse_threshold(model: Model, params: Mapping[str, float], alpha, *, ctx=mpmath.fp,
                       latent: int = 0, slot: int | None = None) -> dict[str, object]:
    """The collapse threshold beta_c(alpha): above it the global minimiser is collapsed (W = 0, D = 1).

    Arguments:
        model: the model (beta a parameter). params: every parameter but beta (and alpha). alpha: n/N (inf allowed).

    Other arguments:
        ctx: ``mpmath.fp`` or ``mpmath.mp`` (at its current precision).
        latent: which latent's collapse (0: the top one, the model's beta_c; k: the latent on the (k+1)-th largest
            eigenvalue, e.g. a superfluous latent fitting the bulk edge). slot: the rank of its eigenvalue if not
            ``latent`` (latents with different parameters, e.g. fixed D_k, may sit on any eigenvalue).

    Returns:
        {"value": beta_c, "kind": "continuous" | "first-order", "s": the top eigenvalue, "q_jump": q at beta_c^-,
        "latent": the index of the latent whose collapse it is}.

    Raises:
        StaticsThresholdError: no learning/overlearning phase at any beta > 0 (the weight decay alone collapses).
    """
    if latent == 0 and slot is None and model.M > 1:
        # the model's beta_c: its last latent to collapse, the one whose threshold on the top eigenvalue is largest
        # (latents with their own parameters, e.g. fixed D_k, differ: with D_1 = 0.715, D_2 = 0.6233 latent 2 on
        # top collapses at 2.209, latent 1 at 2.105, and the model learns in between)
        outs, why = [], None
        for k in range(model.M):
            try:
                outs.append(collapse_threshold(model, params, alpha, ctx=ctx, latent=k, slot=0))
            except StaticsThresholdError as exc:
                why = exc
        if not outs:
            raise why
        return max(outs, key=lambda o: float(o["value"]))
    params = _typed_params(params, ctx)
    alpha = check_alpha(alpha, allow_inf=True) if ctx is not mpmath.mp else mpmath.mpf(_typed(alpha, ctx))
    lat_fp = _Latent(model, params, alpha if ctx is not mpmath.mp else float(alpha), mpmath.fp, latent, slot)

    def active(beta: float) -> bool:  # some q > 0 beats the collapsed latent
        return _best_q(lat_fp, beta)[0] > 0

    lo = 1e-12 * (1 + float(lat_fp.s))
    if not active(lo):
        raise StaticsThresholdError("no beta > 0 gives a non-collapsed minimiser here (weight decay too strong)")
    hi = 2.0 * float(lat_fp.s) + 1.0
    while active(hi):
        hi *= 2
        if hi > 1e12:
            raise StaticsThresholdError("no collapse threshold found below beta = 1e12")
    lo, hi = _bisect(active, lo, hi)
    q_jump = _best_q(lat_fp, lo)[0]
    continuous = q_jump < 1e-5 * (1 + float(lat_fp.s))
    lat = lat_fp if ctx is not mpmath.mp else _Latent(model, params, alpha, ctx, latent, slot)
    if continuous:
        bracket = (ctx.convert(lo) * (1 - ctx.convert(1e-6)), ctx.convert(hi) * (1 + ctx.convert(1e-6)))
        value = ctx.findroot(lat.slope0, bracket, solver="anderson")
        return {"value": value, "kind": "continuous", "s": lat.s, "q_jump": ctx.zero, "latent": latent}
    q0, b0 = ctx.convert(q_jump), ctx.convert(0.5 * (lo + hi))
    sol = ctx.findroot([lambda q, b: lat.G(q, b) - lat.G(ctx.zero, b), lambda q, b: lat.dG(q, b)], (q0, b0))
    return {"value": sol[1], "kind": "first-order", "s": lat.s, "q_jump": sol[0], "latent": latent}


def _best_q(lat: _Latent, beta: float) -> tuple[float, float]:
    """(q*, G(q*) - G(0)) of the top latent at beta (float64; q* = 0 if collapsed)."""
    from ._closed_form import _real_roots
    fns = lat.fns
    lat_fns, _, _ = fns.backend(mpmath.fp)
    values = dict(lat.spec)
    values[lat.beta_name] = beta
    spec = [values[n] for n in lat.order]
    g0 = lat.G(0.0, beta)
    best = (0.0, 0.0)
    for r in _real_roots(lat_fns[lat.index]["coeffs"](float(lat.s), *spec), mpmath.fp):
        if r > 0:
            try:
                d = lat.G(r, beta) - g0
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            if d < best[1] - 1e-15 * (1 + abs(g0)):
                best = (r, d)
    return best


def detection_threshold(model: Model, params: Mapping[str, float], *, ctx=mpmath.fp):
    """The BBP detection threshold alpha_c = (eta / rho_max)^2: below it no eigenvector of S (hence no latent of the
    minimiser, whatever beta) has an O(1) overlap with any spike. Located as the root of the largest spike's
    eigenvector overlap phi(alpha) (``outlier``) with ``findroot``, bracketed in float64.

    Raises:
        StaticsThresholdError: every rho is 0.
    """
    fns = _functions(model)
    pv = check_params(_typed_params(params, ctx), list(fns.rho_names) + ["eta"])
    rho = max(pv[n] for n in fns.rho_names)
    if rho <= 0:
        raise StaticsThresholdError("no spike (rho = 0): the signal is never detectable")
    eta = pv["eta"]
    rho_c, eta_c = ctx.convert(rho), ctx.convert(eta)

    def phi_numerator(a):  # phi = (1 - gamma/ell^2)/(1 + gamma/ell): its sign change
        return 1 - eta_c ** 2 / (a * rho_c ** 2)

    lo, hi = 1e-300, 1.0
    while phi_numerator(hi) <= 0:
        hi *= 2
    lo = hi / 2
    while phi_numerator(lo) > 0:
        lo /= 2
    return ctx.findroot(phi_numerator, (ctx.convert(lo), ctx.convert(hi)), solver="anderson")


def _eg(model, params, alpha, ctx):
    return closed_form(model, params, alpha, ctx=ctx).observables["eg"]


def eg_peak(model: Model, params: Mapping[str, float], *, alpha_range=(1e-3, 1e3), ctx=mpmath.fp,
            points: int = 400) -> dict[str, object]:
    """Location of the maximum of eg(alpha) at fixed beta (and lam) on ``alpha_range``.

    The maximum is either the cusp at the BBP threshold alpha_c (eg decreases like -sqrt(alpha - alpha_c) just above
    it) or an interior stationary point (then polished with ``findroot`` on d eg / d alpha). The scan covers the whole
    range, above alpha_c too; in the shipped models an interior maximum lies below alpha_c (eg has none above it,
    see tests/test_statics_thresholds_eg_peak.py), and with lam = 0 there is none (eg grows as alpha -> 0).

    Returns:
        {"alpha": location, "eg": eg there, "at_detection": bool}.
    """
    params = _typed_params(params, ctx)
    a = np.geomspace(alpha_range[0], alpha_range[1], points)
    values = np.array([float(_eg(model, params, x, mpmath.fp)) for x in a])
    k = int(np.argmax(values))
    try:
        a_c = float(detection_threshold(model, params))
    except StaticsThresholdError:
        a_c = math.inf
    lo, hi = a[max(k - 1, 0)], a[min(k + 1, points - 1)]
    if lo <= a_c <= hi or (k + 1 < points and a[k] <= a_c <= a[k + 1]):
        # eg rises into alpha_c: compared at two points below it (at the float64 alpha_c itself eg can already be
        # on the informed side, where it falls like -sqrt(alpha - alpha_c): rho/eta = 17 was refused as a cusp and
        # then findroot failed on the kink)
        if float(_eg(model, params, a_c * (1 - 2e-6), mpmath.fp)) <= float(_eg(model, params, a_c * (1 - 1e-6),
                                                                                  mpmath.fp)):
            value = detection_threshold(model, params, ctx=ctx)
            return {"alpha": value, "eg": _eg(model, params, value, ctx), "at_detection": True}
    if k in (0, points - 1):
        raise StaticsThresholdError(f"eg(alpha) has no interior maximum on {alpha_range}")

    if ctx is not mpmath.mp:  # float64: a derivative-free bracketed maximisation
        opt = scipy.optimize.minimize_scalar(lambda x: -float(_eg(model, params, x, ctx)), bounds=(lo, hi),
                                             method="bounded", options={"xatol": 1e-13})
        return {"alpha": float(opt.x), "eg": -float(opt.fun), "at_detection": False}

    def slope(x):
        return ctx.diff(lambda y: _eg(model, params, y, ctx), x)

    value = ctx.findroot(slope, (ctx.convert(lo), ctx.convert(hi)), solver="anderson")
    return {"alpha": value, "eg": _eg(model, params, value, ctx), "at_detection": False}


def optimal_beta(model: Model, params: Mapping[str, float], alpha, *, ctx=mpmath.fp, points: int = 200):
    """The beta minimising eg at fixed alpha (and lam): a float scan over (0, beta_c), then, at every interior local
    minimum of the scan, a bounded minimisation (float64, ~1e-8 accurate: eg is quadratic there) or ``findroot`` on
    d eg / d beta (mpmath). eg at the learned point depends on beta only through the decoder norm q, and is smallest
    where q reaches one value; with weight decay q(beta) can pass it twice, so the minimum is attained at two betas
    with equal eg (to rounding). Minima within ``TIE`` of the lowest are that one optimum: the smallest beta is
    reported, the others in ``also``.

    With more latents than spikes, a superfluous latent fits the noise below its own collapse threshold, and eg
    falls as beta approaches it: eg then has a corner there, its minimum when the top latent's eg rises beyond it
    (d eg/d beta jumps from < 0 to > 0 and has no root). A scan minimum whose bracket holds the continuous collapse
    of a latent on a lower eigenvalue with eg larger on both sides of it is that corner: located as that latent's
    collapse threshold (``collapse_threshold(latent=k, slot=j)``: latents with their own parameters, e.g. fixed D_k,
    may sit on any eigenvalue, so every latent on every lower eigenvalue is a candidate), reported with ``corner``
    = (k + 1, j) (the latent's number, the eigenvalue's rank).

    Returns:
        {"beta": location, "eg": eg there, "also": the other betas of the same minimum (ascending), "corner":
        (number of the latent whose collapse is the minimum, rank of its eigenvalue) or None}.

    Raises:
        StaticsThresholdError: eg has no interior minimum in beta (e.g. no learning phase).
    """
    name = _beta_name(model)
    params, alpha = _typed_params(params, ctx), _typed(alpha, ctx)
    bc = float(collapse_threshold(model, params, alpha)["value"])
    # uniform in beta up to beta_c, and geometric down to 1e-6 beta_c: with fixed D the smaller of two equal minima
    # sat at 6e-4 beta_c, below a uniform scan from 1e-3 beta_c, while the saddle route's scan reached it
    betas = np.unique(np.concatenate([np.linspace(bc * 1e-3, bc * (1 - 1e-6), points),
                                      np.geomspace(bc * 1e-6, bc * 1e-3, points // 2)]))
    points = len(betas)
    def egf(b):
        return float(_eg(model, {**params, name: b}, alpha, mpmath.fp))

    vals = np.array([egf(b) for b in betas])
    if int(np.argmin(vals)) in (0, points - 1):
        raise StaticsThresholdError("eg(beta) has no interior minimum below the collapse threshold")
    dips = [k for k in range(1, points - 1) if vals[k] <= vals[k - 1] and vals[k] <= vals[k + 1]]
    lower = {}  # continuous collapse thresholds of every latent on every lower eigenvalue (float64)
    pairs = [(j, j) for j in range(1, model.M)] + [(k, j) for k in range(model.M) for j in range(1, model.M) if k != j]
    for k, j in pairs:  # latent j on eigenvalue j first: with identical latents that is the one to name
        try:
            c = collapse_threshold(model, params, alpha, latent=k, slot=j)
        except StaticsThresholdError:
            continue
        if c["kind"] == "continuous":
            lower[(k, j)] = float(c["value"])

    def corner(k):
        for j, b in lower.items():
            if betas[k - 1] < b < betas[k + 1] and min(egf(b * (1 - 1e-7)), egf(b * (1 + 1e-7))) > egf(b):
                return j
        return None

    def refine(k):
        c = corner(k)
        if c is not None:
            value = collapse_threshold(model, params, alpha, ctx=ctx, latent=c[0], slot=c[1])["value"]
            return value, _eg(model, {**params, name: value}, alpha, ctx), (c[0] + 1, c[1])
        if ctx is not mpmath.mp:  # float64: a derivative-free bracketed minimisation (numerical slopes are too noisy)
            opt = scipy.optimize.minimize_scalar(lambda b: float(_eg(model, {**params, name: b}, alpha, ctx)),
                                                 bounds=(betas[k - 1], betas[k + 1]), method="bounded",
                                                 options={"xatol": 1e-13})
            return float(opt.x), float(opt.fun), None

        def slope(b):
            return ctx.diff(lambda x: _eg(model, {**params, name: x}, alpha, ctx), b)

        value = ctx.findroot(slope, (ctx.convert(betas[k - 1]), ctx.convert(betas[k + 1])), solver="anderson")
        return value, _eg(model, {**params, name: value}, alpha, ctx), None

    found = [refine(k) for k in dips]
    low = min(e for _, e, _ in found)
    ties = sorted((b, c) for b, e, c in found if e - low <= TIE * max(1.0, abs(float(low))))
    return {"beta": ties[0][0], "eg": _eg(model, {**params, name: ties[0][0]}, alpha, ctx),
            "also": [b for b, _ in ties[1:]], "corner": ties[0][1]}


# ------------------------------------------------------------------------- collapse in the weight decay or in alpha
_LAMBDIFIED: dict[tuple, tuple] = {}


def _top_latent_functions(model: Model, module: str, index: int = 0):
    """(G, dG/dq, slope0) of the top latent (or latent ``index``) as functions of (q, s, *spec_params), lambdified
    once per model."""
    key = (model.key, module, index)
    if key not in _LAMBDIFIED:
        fns = _functions(model)
        lp = fns.problem.latents[index]
        args = [Q_NORM, S_EIG] + list(fns.spec_params)
        _LAMBDIFIED[key] = (sp.lambdify(args, lp.reduced, modules=module),
                            sp.lambdify(args, sp.diff(lp.reduced, Q_NORM), modules=module),
                            sp.lambdify(args, lp.slope0, modules=module))
    return _LAMBDIFIED[key]


class _Family:
    """The top latent along a one-parameter family: every parameter fixed but ``parameter`` (a weight decay or
    ``alpha``), in one mpmath context. ``values`` holds every other parameter (beta included)."""

    def __init__(self, model: Model, values: Mapping[str, object], alpha, parameter: str, ctx):
        self.fns, self.ctx, self.parameter = _functions(model), ctx, parameter
        self.values, self.alpha = dict(values), alpha
        module = "mpmath" if ctx is mpmath.mp else "math"
        self._G, self._dG, self._slope0 = _top_latent_functions(model, module)

    def point(self, x):
        """(s, spec values in the order of ``spec_params``) at parameter value x."""
        ctx, fns = self.ctx, self.fns
        values = dict(self.values)
        alpha = self.alpha
        if self.parameter == "alpha":
            alpha = x
        else:
            values[self.parameter] = x
        inv_alpha = ctx.zero if ctx.isinf(alpha) else 1 / ctx.convert(alpha)
        spec = [ctx.convert(values[p.name]) * (inv_alpha if p.name in fns.decay else 1) for p in fns.spec_params]
        s = spectrum_slots([values[n] for n in fns.rho_names], values["eta"], alpha, 1, ctx)[0].s
        return s, spec

    def G(self, q, x):
        s, spec = self.point(x)
        return self._G(q, s, *spec)

    def dG(self, q, x):
        s, spec = self.point(x)
        return self._dG(q, s, *spec)

    def slope0(self, x):
        s, spec = self.point(x)
        return self._slope0(self.ctx.zero, s, *spec)

    def best_q(self, x) -> float:
        """q* of the top latent at x (float64; 0 if collapsed)."""
        from ._closed_form import _real_roots
        s, spec = self.point(x)
        lat_fns, _, _ = self.fns.backend(mpmath.fp)
        g0 = self._G(0.0, s, *spec)
        best = (0.0, 0.0)
        for r in _real_roots(lat_fns[0]["coeffs"](float(s), *spec), mpmath.fp):
            if r > 0:
                try:
                    d = self._G(r, s, *spec) - g0
                except (ValueError, ZeroDivisionError, OverflowError):
                    continue
                if d < best[1] - 1e-15 * (1 + abs(g0)):
                    best = (r, d)
        return best[0]


def collapse_in(model: Model, params: Mapping[str, float], alpha, parameter: str, *, ctx=mpmath.fp) -> dict:
    """The collapse of the top latent located in a weight decay (``parameter`` one of the model's decay names; beta
    and ``alpha`` fixed) or in ``alpha`` (``parameter == "alpha"``; beta and the decays fixed).

    In a weight decay: the lam_c above which the learned (or noise-fitting) top latent disappears at fixed beta,
    i.e. beta_c(alpha; lam_c) = beta. In alpha: the alpha_c at which, as alpha grows, the collapsed plateau ends
    (the top latent turns active), i.e. beta_c(alpha_c) = beta; the largest such alpha in [1e-6, 1e8].
    Bracketed in float64 (activity of the top latent, ``best_q``), then ``findroot`` in ``ctx``: on slope0 = 0 for
    a continuous transition, on G(q) = G(0), G'(q) = 0 for a first-order one.

    Returns:
        {"value", "kind": "continuous" | "first-order", "q_jump", "float64"}.

    Raises:
        StaticsThresholdError: no such point (with the reason).
    """
    fns = _functions(model)
    names = [n for n in fns.param_names if n != parameter]
    values = check_params(_typed_params(params, ctx), names)
    alpha = _typed(alpha, ctx)
    fam_fp = _Family(model, {k: float(v) for k, v in values.items()}, float(alpha) if alpha is not None else None,
                     parameter, mpmath.fp)

    def active(x: float) -> bool:
        return fam_fp.best_q(x) > 0

    if parameter == "alpha":
        grid = np.geomspace(1e-6, 1e8, 15 * 14 + 1)
        flags = [active(float(a)) for a in grid]
        ups = [i for i in range(len(grid) - 1) if not flags[i] and flags[i + 1]]
        if not ups:
            bc_inf = collapse_threshold(model, values, math.inf)
            reason = (f"beta = {float(values[_beta_name(model)]):g} >= beta_c(alpha = inf) = "
                      f"{float(bc_inf['value']):.12g}: the top latent is collapsed at large alpha"
                      if not flags[-1] else
                      "the top latent is active at every alpha in [1e-6, 1e8]")
            raise StaticsThresholdError(f"no alpha at which the collapsed plateau ends: {reason}")
        i = ups[-1]
        llo, lhi = _bisect(lambda la: not active(math.exp(la)), math.log(grid[i]), math.log(grid[i + 1]))
        lo, hi = math.exp(llo), math.exp(lhi)
        x_active = hi
    else:
        if alpha is not None and math.isinf(float(alpha)):
            raise StaticsThresholdError(f"at alpha = inf the weight decay {parameter} has no effect (it enters as "
                                        f"{parameter}/alpha): no collapse in {parameter}")
        if not active(0.0):
            raise StaticsThresholdError(f"the top latent is collapsed already at {parameter} = 0 (beta >= beta_c)")
        hi = 1.0
        while active(hi):
            hi *= 2
            if hi > 1e12:
                raise StaticsThresholdError(f"no collapse in {parameter} below 1e12")
        lo, hi = _bisect(active, 0.0, hi, steps=80)
        x_active = lo
    q_jump = fam_fp.best_q(x_active)
    s_top = float(fam_fp.point(x_active)[0])
    continuous = q_jump < 1e-5 * (1 + s_top)
    f64 = 0.5 * (lo + hi)
    fam = fam_fp if ctx is not mpmath.mp else _Family(model, values, alpha, parameter, ctx)
    if continuous:
        width = ctx.convert(1e-6) * (1 + abs(ctx.convert(f64)))
        bracket = (ctx.convert(lo) - width, ctx.convert(hi) + width)
        if parameter != "alpha" and bracket[0] < 0:
            bracket = (ctx.zero, bracket[1])
        value = ctx.findroot(fam.slope0, bracket, solver="anderson")
        return {"value": value, "kind": "continuous", "q_jump": ctx.zero, "float64": f64}
    sol = ctx.findroot([lambda q, x: fam.G(q, x) - fam.G(ctx.zero, x), lambda q, x: fam.dG(q, x)],
                       (ctx.convert(q_jump), ctx.convert(f64)))
    return {"value": sol[1], "kind": "first-order", "q_jump": sol[0], "float64": f64}


# ---------------------------------------------------------------------------------------------- certification
def _collapse_equations(model: Model, values: Mapping[str, object], alpha, parameter: str, kind: str, x,
                        latent: int = 0, slot: int | None = None):
    """The interval system of the collapse condition in ``parameter`` (``_collapse_system``) of the top latent (or
    latent ``latent`` on the eigenvalue of rank ``slot``, default ``latent``), for the branch of that eigenvalue (BBP
    outlier or bulk edge) that holds at the located point x."""
    slot = latent if slot is None else slot
    fns = _functions(model)
    a_val = x if parameter == "alpha" else alpha
    with mpmath.workdps(30):
        rhos = [mpmath.mpf(values[n]) for n in fns.rho_names]
        a_mp = mpmath.inf if mpmath.isinf(a_val) else mpmath.mpf(a_val)
        spike = spectrum_slots(rhos, mpmath.mpf(values["eta"]), a_mp, slot + 1, mpmath.mp)[slot].spike
    return _collapse_system(model, parameter, kind, spike, bool(mpmath.isinf(a_mp)), latent)


#: Interval systems of the closed-form certificates, built once per model and structure: (unknowns, equations,
#: rest symbols, interval G, interval J, shape) -- no SymPy work on a repeated call.
_SYSTEMS: dict[tuple, tuple] = {}


def _interval_system(key: tuple, build: Callable[[], tuple]):
    """``_SYSTEMS[key]``, built by ``build() -> (unknowns, equations, rest)`` and ``interval_functions`` on a miss.

    Raises:
        ValueError: an expression has no rigorous interval evaluation here.
    """
    if key not in _SYSTEMS:
        from ..numerics._certify import interval_functions
        unknowns, eqs, rest = build()
        text = "|".join([str(key)] + [s.name for s in rest] + [sp.srepr(e) for e in eqs])
        name = "statics-" + hashlib.sha1(text.encode()).hexdigest()
        G, J, shape = interval_functions(name, unknowns, rest, eqs, sp.Matrix(eqs).jacobian(unknowns))
        _SYSTEMS[key] = (unknowns, eqs, rest, G, J, shape)
    return _SYSTEMS[key]


def _collapse_system(model: Model, parameter: str, kind: str, spike, infinite: bool, latent: int = 0):
    """SymPy (unknowns, equations, rest) of the collapse condition in ``parameter`` of the top latent (or latent
    ``latent``) with its eigenvalue written out (the outlier of spike ``spike``, or the bulk edge if None), decays
    divided by alpha, as an ``_interval_system``."""

    def build():
        fns = _functions(model)
        lp = fns.problem.latents[latent]
        sym = {s.name: s for s in fns.spec_params}

        def get(name):
            if name not in sym:
                sym[name] = sp.Symbol(name, real=True)
            return sym[name]

        eta, alpha_s = get("eta"), get("alpha")
        if spike is None:
            s_expr = eta if infinite else eta * (1 + 1 / sp.sqrt(alpha_s)) ** 2
        else:
            rho = get(fns.rho_names[spike])
            ell = rho / eta
            s_expr = rho + eta if infinite else eta * (1 + ell) * (1 + 1 / (alpha_s * ell))
        subs = {S_EIG: s_expr}
        for d in fns.decay:
            subs[get(d)] = 0 if infinite else get(d) / alpha_s
        X = get(parameter)
        if kind == "continuous":
            unknowns, eqs = [X], [lp.slope0.xreplace(subs)]
        else:
            G = lp.reduced
            unknowns = [Q_NORM, X]
            eqs = [(G - G.subs(Q_NORM, 0)).xreplace(subs), sp.diff(G, Q_NORM).xreplace(subs)]
        free = set().union(*(e.free_symbols for e in eqs)) - set(unknowns)
        return unknowns, eqs, sorted(free, key=lambda s: s.name)

    return _interval_system((model.key, "collapse", parameter, kind, spike, infinite, latent), build)


def _detection_system(model: Model, top: str):
    """The BBP condition 1 - eta^2/(alpha rho^2) = 0 in alpha (rho the largest spike strength ``top``)."""

    def build():
        a, rho, eta = sp.Symbol("alpha", real=True), sp.Symbol(top, real=True), sp.Symbol("eta", real=True)
        return [a], [1 - eta ** 2 / (a * rho ** 2)], [eta, rho]

    return _interval_system((model.key, "detection", top), build)


@functools.lru_cache(maxsize=256)
def _texts(values: tuple, dps: int) -> list[str]:
    """The exact decimal texts of (type name, value) pairs at ``dps`` digits (``_decimal``), cached: a repeated
    threshold does not print its parameters again."""
    with mpmath.workdps(dps):
        return [_decimal(v) for _, v in values]


def _certify(system, rest_values: Mapping[str, object], center, k: int, digits: int):
    """(interval of unknown k as decimal strings, certified, why): the Krawczyk test (``numerics._certify``) on the
    interval ``system`` (``_interval_system``) around ``center``, box half-width 10^-(digits + 5) relative, the
    parameters enclosed exactly."""
    from ..numerics._certify import krawczyk
    _, _, rest, G, J, shape = system
    texts = _texts(tuple((type(v).__name__, v) for v in (rest_values[s.name] for s in rest)), mpmath.mp.dps)
    with mpmath.workdps(digits + 25):
        cert = krawczyk(G, J, shape, [mpmath.mpf(c) for c in center], texts, radius_digits=digits + 5)
        if not cert.certified:
            return None, False, cert.message
        lo, hi = cert.enclosure[k]
        # printed ends rounded outwards: padded by 10^-(digits + 11) relative, twice the largest rounding error of
        # a (digits + 12)-digit text
        pad = mpmath.mpf(10) ** -(digits + 11)
        lo_t = mpmath.nstr(lo - abs(lo) * pad, digits + 12, strip_zeros=False)
        hi_t = mpmath.nstr(hi + abs(hi) * pad, digits + 12, strip_zeros=False)
    return (lo_t, hi_t), True, cert.message


# ---------------------------------------------------------------------------------------------- public entry point
def _closed_form_text(name: str, model: Model, params: Mapping[str, float], alpha, kind: str | None,
                      parameter: str = "beta") -> str:
    """A closed-form expression of the threshold where one exists (printed by SymPy), else a description."""
    fns = _functions(model)
    top = "s_1 = eta*(1 + rho/eta)*(1 + eta/(alpha*rho)) above BBP, eta*(1 + 1/sqrt(alpha))**2 below"
    decay = ", ".join(f"{d} -> {d}/alpha" for d in fns.decay)
    if name == "collapse" and parameter != "beta":
        lp = fns.problem.latents[0]
        if kind == "continuous":
            return (f"root in {parameter} of slope0 = {sp.sstr(sp.factor(lp.slope0).subs(S_EIG, sp.Symbol('s_1')))}"
                    f" = 0; {top}; {decay}")
        if kind == "first-order":
            return f"first-order collapse in {parameter}: G(q) = G(0), G'(q) = 0; {top}; {decay}"
        return (f"collapse in {parameter}: slope0 = 0 (continuous) or G(q) = G(0), G'(q) = 0 (first order); {top}; "
                f"{decay}")
    if name == "detection":
        return "alpha_c = (eta/rho)**2  [BBP: largest spike strength rho]"
    if name == "collapse":
        lp = fns.problem.latents[0]
        beta = sp.Symbol(_beta_name(model), real=True)
        beta_syms = [s for s in fns.spec_params if s.name == beta.name]
        roots = sp.solve(lp.slope0, beta_syms[0]) if beta_syms else []
        if kind == "continuous" and len(roots) == 1:
            return f"beta_c = {sp.sstr(sp.simplify(roots[0].subs(S_EIG, sp.Symbol('s_1'))))}; {top}" + \
                (f"; {decay}" if decay else "")
        return "first-order collapse: G(q) = G(0), G'(q) = 0 (G the top latent's derived objective); " + top
    if name == "optimal_beta" and kind == "corner":
        return ("the continuous collapse of a superfluous latent (slope0 = 0 at its eigenvalue, the bulk edge "
                "eta*(1 + 1/sqrt(alpha))**2): a corner minimum of eg")
    if name == "optimal_beta":
        return "argmin_beta eg (numerical; for lam = 0 and M = M* = 1: beta_opt = s_1 - rho*phi_1)"
    return "argmax_alpha eg (the BBP threshold when the maximum is the cusp there)"


def _evaluate(name: str, model: Model, params: Mapping[str, object], alpha, parameter: str, ctx) -> dict:
    """One location in ``ctx``: {"value", "kind", "q_jump", "float64"?} (kind None where it does not apply)."""
    if name == "collapse" and parameter == "beta":
        return collapse_threshold(model, params, alpha, ctx=ctx)
    if name == "collapse":
        return collapse_in(model, params, alpha, parameter, ctx=ctx)
    if name == "detection":
        return {"value": detection_threshold(model, params, ctx=ctx), "kind": None}
    if name == "eg_peak":
        out = eg_peak(model, params, ctx=ctx)
        return {"value": out["alpha"], "kind": "detection" if out["at_detection"] else None}
    if name == "optimal_beta":
        out = optimal_beta(model, params, alpha, ctx=ctx)
        return {"value": out["beta"], "kind": None if out["corner"] is None else "corner", "corner": out["corner"],
                "also": out["also"]}  # corner: (the latent's number, the rank of its eigenvalue)
    raise InvalidInputError(f"unknown statics threshold {name!r}; known: {', '.join(THRESHOLDS)}")


def threshold_parameters(model: Model, name: str) -> tuple[str, ...]:
    """The parameters a statics threshold can be located in: collapse in beta, any weight decay of the model or
    alpha; detection and eg_peak in alpha; optimal_beta in beta."""
    if name == "collapse":
        return ("beta",) + tuple(_functions(model).decay) + ("alpha",)
    return ("alpha",) if name in ("detection", "eg_peak") else ("beta",)


def _certificate(name: str, model: Model, params: Mapping[str, object], alpha, parameter: str, out: dict,
                 digits: int):
    """(interval, certified, why) for a located threshold (``out`` from ``_evaluate`` at the higher precision)."""
    values = dict(params)
    if alpha is not None and not mpmath.isinf(alpha):
        values["alpha"] = alpha
    if name == "collapse":
        if parameter == "beta":
            values.pop(_beta_name(model), None)
        kind = out["kind"]
        try:
            system = _collapse_equations(model, values, alpha, parameter, kind, out["value"], out.get("latent", 0), 0)
        except ValueError as exc:
            return None, False, str(exc)
        center = [out["value"]] if kind == "continuous" else [out["q_jump"], out["value"]]
        k = len(system[0]) - 1
    elif name == "detection" or (name == "eg_peak" and out["kind"] == "detection"):
        fns = _functions(model)
        top = max(fns.rho_names, key=lambda n: float(values[n]))
        system, center, k = _detection_system(model, top), [out["value"]], 0
    elif out.get("kind") == "corner":  # the minimum is a lower latent's continuous collapse
        values.pop(_beta_name(model), None)
        try:
            system = _collapse_equations(model, values, alpha, "beta", "continuous", out["value"], out["corner"][0] - 1,
                                         out["corner"][1])
        except ValueError as exc:
            return None, False, str(exc)
        return _certify(system, values, [out["value"]], 0, digits)
    else:  # eg peak in the interior, optimal beta: the stationarity condition on the saddle system
        from ._saddle_thresholds import certify_extremum
        try:
            interval, certified, why = certify_extremum(name, model, params, alpha, out["value"], digits)
        except InvalidInputError as exc:
            return None, False, f"no interval form here ({exc})"
        if certified and not mpmath.mpf(interval[0]) <= out["value"] <= mpmath.mpf(interval[1]):
            return None, False, ("the closed-form value lies outside the Krawczyk enclosure of d eg/d"
                                 f"{parameter} = 0 on the saddle system")
        return interval, certified, why
    return _certify(system, values, center, k, digits)


def statics_threshold(name: str, model: Model, params: Mapping[str, float], alpha=None, digits: int = 15, *,
                      parameter: str | None = None, certify: bool = True, method: str = "closed-form") -> Threshold:
    """A statics threshold to ``digits`` digits, as the ``Threshold`` of the online setting (``symvae.numerics``).

    Located in float64, refined with ``findroot`` at two precisions (digits + 10 and 2 digits + 20; the digits on
    which both agree are the "agreeing" digits), then proven by the Krawczyk interval test (``numerics._certify``)
    on the threshold's scalar condition written out in SymPy: ``interval`` is an enclosure of the unique root,
    ``certified`` true and ``digits`` the digits every number of the enclosure rounds to. eg_peak in the interior
    and optimal_beta (d eg/dx = 0 has no explicit closed form) are proven on the augmented replica saddle system
    instead (``_saddle_thresholds.certify_extremum``); the closed-form value must lie in that enclosure. Where no
    proof is made ``certified`` is false, the message says why, and ``digits`` are the agreeing digits.

    Arguments:
        name: ``"collapse"``, ``"detection"`` (BBP alpha_c), ``"eg_peak"`` (argmax_alpha eg at the given beta) or
            ``"optimal_beta"`` (argmin_beta eg at ``alpha``).
        model: the model. params: parameter values by name (the located parameter's own value is ignored).
        alpha: n / N (collapse and optimal_beta; ``inf`` allowed for collapse in beta or a decay; not used when
            the parameter is alpha). digits: requested digits (1..200).
        parameter: the located parameter (``threshold_parameters``): collapse in ``beta`` (default; beta_c(alpha)),
            in a weight decay (``lam``: the decay at which the top latent collapses at fixed beta) or in
            ``alpha`` (where the collapsed plateau at fixed beta ends). certify: run the interval test.
        method: ``"closed-form"`` (default: the random-matrix closed form) or ``"saddle"``: the replica saddle-point
            system alone (``_saddle_thresholds``: detection, eg_peak and optimal_beta on square augmented systems,
            Krawczyk-certified; a continuous collapse in beta by ``collapse_threshold_saddle``, certified on the
            square blown-up system by ``certify_collapse_saddle``). With several latents or spikes the top
            latent's threshold on the strongest spike, checked against the whole model's global minimiser.

    Returns:
        A ``Threshold``: status ``verified`` (digits >= requested), ``partial`` (fewer; ``value`` holds those),
        ``not_found`` (no such point; the message says why) or ``failed`` (the refinement did not converge).

    Raises:
        InvalidInputError: unknown name or parameter, missing alpha, digits outside [1, 200], invalid parameters.
    """
    if name not in THRESHOLDS:
        raise InvalidInputError(f"unknown statics threshold {name!r}; known: {', '.join(THRESHOLDS)}")
    if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= 200:
        raise InvalidInputError(f"digits must be an integer in [1, 200], got {digits!r}")
    valid = threshold_parameters(model, name)
    parameter = valid[0] if parameter is None else parameter
    if parameter not in valid:
        raise InvalidInputError(f"the statics {name} threshold is located in {', '.join(valid)}; "
                                f"not in {parameter!r}")
    if method not in METHODS:
        raise InvalidInputError(f"unknown threshold method {method!r}; known: {', '.join(METHODS)}")
    if method == "saddle" and name == "collapse" and parameter != "beta":
        raise InvalidInputError("the saddle-system method locates the collapse in beta only")
    if method == "saddle" and alpha is not None and math.isinf(float(alpha)):
        raise InvalidInputError("the saddle-system method needs a finite alpha")
    if name == "collapse" and parameter != "beta":
        _beta_name(model)
    needs_alpha = name == "optimal_beta" or (name == "collapse" and parameter != "alpha")
    if needs_alpha:
        if alpha is None:
            raise InvalidInputError(f"the {name} threshold in {parameter} needs alpha")
        check_alpha(alpha, allow_inf=(name == "collapse"))
    else:
        alpha = None
    drop = {parameter} | ({"beta"} if name == "optimal_beta" or (name, parameter) == ("collapse", "beta") else set())
    params = {k: v for k, v in params.items() if k not in drop}
    fns = _functions(model)
    check_params(params, [n for n in fns.param_names if n not in drop and (name != "detection" or
                                                                            n in fns.rho_names or n == "eta")])
    base = dict(name=name, parameter=parameter, requested_digits=digits,
                params={k: float(v) for k, v in params.items()} | ({} if alpha is None else {"alpha": float(alpha)}))

    def not_found(why: str) -> Threshold:
        return Threshold(value=None, digits=0, status="not_found", message=why,
                         closed_form_text=_closed_form_text(name, model, params, alpha, None, parameter), **base)

    if method == "saddle":
        return _saddle_statics_threshold(name, model, params, alpha, digits, parameter, certify, base, not_found)
    results, kind = [], None
    for dps in (digits + 10, 2 * digits + 20):
        with mpmath.workdps(dps):
            p_mp = {k: mpmath.mpf(_decimal(v)) for k, v in params.items()}
            a = None if alpha is None else (mpmath.inf if math.isinf(float(alpha)) else mpmath.mpf(_decimal(alpha)))
            try:
                out = _evaluate(name, model, p_mp, a, parameter, mpmath.mp)
            except StaticsThresholdError as exc:
                return not_found(str(exc))
            except (ValueError, ZeroDivisionError) as exc:  # findroot did not converge
                return Threshold(value=None, digits=0, status="failed",
                                 message=f"findroot at {dps} digits did not converge ({exc})",
                                 closed_form_text=_closed_form_text(name, model, params, alpha, None, parameter),
                                 **base)
            out = {k: (+v if isinstance(v, mpmath.mpf) else v) for k, v in out.items()}
            results.append((out, a, p_mp))
            kind = out.get("kind")
    (o1, _, _), (o2, a2, p2) = results
    with mpmath.workdps(2 * digits + 20):
        v1, v2 = o1["value"], o2["value"]
        agree = digits
        while agree > 0 and mpmath.nstr(v1, agree, strip_zeros=False) != mpmath.nstr(v2, agree, strip_zeros=False):
            agree -= 1
        value = +v2
        interval, certified, why = (_certificate(name, model, p2, a2, parameter, o2, digits) if certify else
                                    (None, False, "certification not requested"))
    verified = agree
    if certified:
        from ..numerics._certify import enclosure_digits
        with mpmath.workdps(2 * digits + 20):
            verified = enclosure_digits(mpmath.mpf(interval[0]), mpmath.mpf(interval[1]), digits)
    what = {"continuous": "continuous collapse (slope of the top latent's objective at q = 0 vanishes)",
            "first-order": f"first-order collapse (G(q) = G(0), G'(q) = 0, q = {mpmath.nstr(o2.get('q_jump'), 8)})",
            "detection": "the cusp at the BBP detection threshold",
            "corner": f"a corner of eg at the continuous collapse of latent {(o2.get('corner') or (0,))[0]} (a "
                      f"superfluous latent fitting the noise below it; d eg/d{parameter} jumps from < 0 to > 0 "
                      f"there)"}.get(kind, "")
    message = (f"{name} in {parameter}" + (f": {what}" if what else "") + f"; findroot at {digits + 10} and "
               f"{2 * digits + 20} digits agree on {agree} digits; "
               + (f"{verified} digits certified ({why})" if certified else f"not certified: {why}")
               + _also(o2.get("also"), parameter))
    status = "verified" if verified >= digits else ("partial" if verified > 0 else "failed")
    f64 = o2.get("float64")
    state = {"q_jump": o2["q_jump"]} if "q_jump" in o2 else None
    return Threshold(value=value if verified > 0 else None, digits=verified, status=status, message=message,
                     closed_form_text=_closed_form_text(name, model, params, alpha, kind, parameter),
                     float64=None if f64 is None else float(f64), state=state, interval=interval,
                     certified=certified, **base)


def _also(others, parameter: str) -> str:
    """The message's note on an extremum of eg attained at several values of the parameter."""
    if not others:
        return ""
    where = ", ".join(f"{float(v):.8g}" for v in others)
    return (f"; eg takes the same extreme value (to {TIE:g} relative) also at {parameter} = {where} (located to "
            f"float64 accuracy, not certified): the smallest {parameter} is reported")


def _saddle_statics_threshold(name, model, params, alpha, digits, parameter, certify, base, not_found) -> Threshold:
    """``statics_threshold(..., method="saddle")``: the threshold on the replica saddle-point system alone."""
    from ..numerics._certify import enclosure_digits
    from ._saddle_thresholds import (_check_collapse, collapse_start, first_order_collapse, saddle_threshold,
                                     top_latent_model)

    def text(kind=None):  # the closed-form text (SymPy solve for a collapse): only for the Threshold returned
        return _closed_form_text(name, full, full_params, alpha, kind, parameter)

    full, full_params = model, params
    try:
        if name == "collapse":
            model, params, _ = top_latent_model(full, full_params)
            start = collapse_start(model, params, alpha, _beta_name(model))
            start_names = [u.name for u in _blown_up_system(model)[0]]
            full_values = {**{k: float(v) for k, v in full_params.items()}, "alpha": float(alpha)}
            try:
                lo, hi = (collapse_threshold_saddle(start, dps) for dps in (digits + 10, 2 * digits + 20))
            except StaticsThresholdError as exc:  # no branch point: a first-order collapse (equal free energies)?
                try:
                    out = first_order_collapse(model, params, alpha, digits, certify=certify, learned=start.learned)
                except StaticsThresholdError as exc2:
                    raise StaticsThresholdError(f"no continuous collapse on the saddle system ({exc}) and no "
                                                f"first-order one ({exc2})") from None
                out["note"] = _check_collapse(full, full_values, _beta_name(model), out.pop("below"),
                                              float(out["values"][1]))
            else:
                interval, certified, why = (certify_collapse_saddle(hi, model, params, alpha, digits) if certify
                                            else (None, False, "certification not requested"))
                note = _check_collapse(full, full_values, _beta_name(model), float(start.params[_beta_name(model)]),
                                       float(hi["value"]))
                out = {"values": (lo["value"], hi["value"]), "interval": interval, "certified": certified,
                       "kind": "continuous", "why": why, "frozen": [start_names[i] for i in hi["frozen"]],
                       "float64": float(start.params[_beta_name(model)]), "state": None, "note": note}
        else:
            out = saddle_threshold(name, model, params, alpha, digits, certify=certify)
    except StaticsThresholdError as exc:
        return not_found(str(exc))
    except InvalidInputError:
        raise
    except (ValueError, ZeroDivisionError) as exc:
        return Threshold(value=None, digits=0, status="failed", message=f"saddle system: {exc}",
                         closed_form_text=text(), **base)
    v1, v2 = out["values"]
    with mpmath.workdps(2 * digits + 20):
        agree = digits
        while agree > 0 and mpmath.nstr(v1, agree, strip_zeros=False) != mpmath.nstr(v2, agree, strip_zeros=False):
            agree -= 1
        verified = agree
        if out["certified"]:
            lo_i, hi_i = (mpmath.mpf(v) for v in out["interval"])
            verified = enclosure_digits(lo_i, hi_i, digits)
            if not lo_i <= v2 <= hi_i:
                return Threshold(value=None, digits=0, status="failed", closed_form_text=text(), **base,
                                 message="saddle system: the Newton root lies outside its Krawczyk enclosure")
    what = {"detection": "pitchfork of the informed branch from m = 0 (odd block singular)",
            "interior": "d eg/d{p} = 0 on the informed branch (implicit differentiation)",
            "uninformed-interior": "d eg/d{p} = 0 on the uninformed branch m = 0 (implicit differentiation)",
            "continuous": "branch point of the learned saddle with the collapsed one (blown-up system)",
            "first-order": "first-order collapse: the learned saddle's free energy equals the collapsed one's"}
    frozen = f"; degenerate coordinates fixed: {', '.join(out['frozen'])}" if out.get("frozen") else ""
    message = (f"{name} in {parameter} on the replica saddle-point system (no closed form): "
               f"{what[out['kind']].format(p=parameter)}{frozen}; Newton at {digits + 10} and {2 * digits + 20} "
               f"digits agrees on {agree} digits; "
               + (f"{verified} digits certified ({out['why']}, on the square augmented system)" if out["certified"]
                  else f"not certified: {out['why']}") + _also(out.get("also"), parameter) + out.get("note", ""))
    status = "verified" if verified >= digits else ("partial" if verified > 0 else "failed")
    state = None if not out.get("state") else dict(out["state"])
    # the text of the kind found (None printed "first-order collapse" for a continuous one)
    kind = out["kind"] if out["kind"] in ("continuous", "first-order", "detection") else None
    return Threshold(value=v2 if verified > 0 else None, digits=verified, status=status, message=message,
                     closed_form_text=text(kind), float64=float(out["float64"]), state=state,
                     interval=out["interval"], certified=out["certified"], **base)


# ------------------------------------------------------------------------- second route: the replica saddle system
_BLOWUP: dict[str, tuple] = {}


def _blown_up_system(model: Model):
    """The replica saddle-point equations blown up at the collapse of the (single) latent: with m, m~ = a m^, and
    Q, Q~, R = a^2 Q^ ..., the m-equations divided by a, the K- and H-equations by a^2, at a = 0. A continuous collapse
    is a branch point a -> 0 of the learned saddle; there the blown-up system has a solution (m^, Q^, ..., D, K, H)
    with Q^ = 1 (the scale of the hats is free), and beta is one of its unknowns. Returns (unknowns, equations incl.
    the normalisation, parameter symbols, index of beta) -- cached per model."""
    if model.key in _BLOWUP:
        return _BLOWUP[model.key]
    from ._replica import statics_system
    S = statics_system(model)
    sysd = S.system
    if S.table.M != 1:
        raise InvalidInputError("the saddle-system route to the collapse threshold handles one latent (M = 1)")
    beta = [p for p in sysd.params if p.name == _beta_name(model)][0]
    a = sp.Symbol("a_blowup")
    first = set(sysd.blocks.get("m", ())) | set(sysd.blocks.get("m_tilde", ()))
    second = set(sysd.blocks.get("Q", ())) | set(sysd.blocks.get("Q_tilde", ())) | set(sysd.blocks.get("R", ()))
    conj = set(sysd.blocks["K"]) | set(sysd.blocks["H"])
    sub = {s: (a * s if s in first else a ** 2 * s if s in second else s) for s in sysd.state}
    eqs = []
    for s, e in zip(sysd.state, sysd.rhs):
        power = 1 if s in first else 2 if s in conj else 0
        e = sp.expand(sp.expand(e.xreplace(sub)) / a ** power)
        eqs.append(sp.numer(sp.together(e.subs(a, 0))))
    q_sym = sysd.blocks["Q"][0]
    eqs.append(q_sym - 1)
    unknowns = list(sysd.state) + [beta]
    params = [p for p in sysd.params if p != beta]
    out = (unknowns, eqs, params, len(unknowns) - 1,
           sp.lambdify(unknowns + params, eqs, modules="mpmath"),
           sp.lambdify(unknowns + params, sp.Matrix(eqs).jacobian(unknowns), modules="mpmath"), S)
    _BLOWUP[model.key] = out
    return out


def collapse_threshold_saddle(result, dps: int = 40, *, max_iter: int = 60) -> dict[str, object]:
    """beta_c of a continuous collapse from the replica saddle-point equations alone (``derive_statics``), a route
    independent of the random-matrix closed form.

    Starting from a learned saddle point ``result`` (``solve_statics`` just below beta_c), the order parameters are
    rescaled by a = sqrt(Q_11) and Newton is run in mpmath on the blown-up system (``_blown_up_system``) with beta
    as an unknown. The degenerate conjugate directions (K/H acting on the null space of the field covariance, and
    the free scale of the hats) are removed as in ``polish``: as many K/H coordinates frozen as the Jacobian has null
    directions (pivoted QR of its null basis), and as many equations kept as its rank (pivoted QR of the rows); the
    residual of the full system is checked at the end.

    Returns:
        {"value": beta_c (mpf), "residual": max|F| of the whole blown-up system, "null_dimension": int, "dps"}.

    Raises:
        StaticsThresholdError: Newton does not reach a residual of 10^(5 - dps), or the branch point it reaches lies
            below the beta of ``result`` (a first-order collapse: the learned branch ends at a fold, and the blown-up
            system's solution is the subcritical branch point of the collapsed saddle, its spinodal).
    """
    import scipy.linalg

    model = result.model
    unknowns, eqs, params, k_beta, F, J, S = _blown_up_system(model)
    values = {**result.params, "alpha": result.alpha}
    y = np.array(result.y, dtype=float)
    sysd = S.system
    names = [s.name for s in sysd.state]
    scale = math.sqrt(float(y[names.index(sysd.blocks["Q"][0].name)]))
    first = {s.name for b in ("m", "m_tilde") for s in sysd.blocks.get(b, ())}
    second = {s.name for b in ("Q", "Q_tilde", "R") for s in sysd.blocks.get(b, ())}
    x0 = [v / scale if n in first else v / scale ** 2 if n in second else v for n, v in zip(names, y)]
    x0.append(float(values[_beta_name(model)]))
    p_f = [float(values[p.name]) for p in params]

    def fun_float(x):
        return np.array([float(v) for v in F(*x, *p_f)])

    def jac_float(x):
        return np.array(mpmath.fp.matrix(J(*x, *p_f)).tolist(), dtype=float)

    # float64 Levenberg--Marquardt onto the solution manifold of the whole blown-up system first (its Jacobian is
    # singular there, the damping keeps the steps bounded): the start (a > 0) is off it by O(a^2), and frozen
    # coordinates must be those of a point on it
    x0 = list(newton(FLOAT64, fun_float, jac_float, x0, damping="lm", ftol=1e-13, max_iter=50).x)
    Jf = jac_float(x0)
    _, sv, Vt = np.linalg.svd(Jf)
    rank = int(np.sum(sv > 1e-11 * sv[0]))
    null = Vt[rank:].T
    kh = np.array([names.index(s.name) for b in ("K", "H") for s in sysd.blocks[b]], dtype=int)
    frozen = set(freeze_null_directions(null, kh, np.array([i for i in range(len(unknowns)) if i != k_beta])))
    free = np.array([i for i in range(len(unknowns)) if i not in frozen])
    _, _, rows = scipy.linalg.qr(Jf[:, free].T, pivoting=True)
    rows = np.sort(rows[:len(free)])
    # Newton in mpmath on the square non-singular subsystem (free coordinates, kept equations), parameters at the
    # decimals typed
    ctx = MpContext(dps, guard=10)
    with ctx.precision():
        p = [ctx.from_decimal(values[q.name]) for q in params]
        target = mpmath.mpf(10) ** (-(dps + 5))
        x = list(newton(ctx, lambda z: F(*z, *p), lambda z: J(*z, *p), x0, free=free, rows=rows, damping="none",
                        ftol=target, max_iter=max_iter).x)
        residual = max(abs(v) for v in F(*x, *p))
        value = +x[k_beta]
    if not residual < mpmath.mpf(10) ** (5 - dps):
        raise StaticsThresholdError(f"Newton on the blown-up saddle system reached max|F| = "
                                    f"{mpmath.nstr(residual, 3)} only, at {dps} digits")
    beta_start = float(values[_beta_name(model)])
    if not value > beta_start and not _start_overshot(model, values, float(value), beta_start):
        # a subcritical branch point (the spinodal of the collapsed saddle), not where the learned branch ends: a
        # continuous collapse lies above every learned saddle point of its branch
        raise StaticsThresholdError(f"the branch point of the blown-up system, beta = {mpmath.nstr(value, 8)}, "
                                    f"lies below the learned saddle point it was started from (beta = "
                                    f"{beta_start:.8g}): the learned branch does not end there")
    return {"value": value, "residual": residual, "null_dimension": int(null.shape[1]), "dps": dps,
            "start": [float(v) for v in x0], "frozen": sorted(int(i) for i in set(range(len(unknowns))) - set(
                free.tolist())), "rows": [int(i) for i in rows]}


def _start_overshot(model: Model, values: Mapping[str, float], beta_star: float, beta_start: float) -> bool:
    """True if a branch point beta_star just below the float64 start (within 1e-5 relative) is a continuous collapse
    the start went past, not a spinodal: the global minimiser (saddle system, no closed form) is learned at
    beta_star (1 - 1e-4) and collapsed at beta_star (1 + 1e-4). (Decay on W only, rho/eta = 17.6, alpha = 3.8: the
    float64 branch reached beta = 2.8266405 with Q = 1e-4 of its start, past beta_c = 2.8266402, and the collapse was
    refused as a spinodal.) At a spinodal the learned minimiser persists above beta_star, up to beta_c."""
    if not beta_start - beta_star < 1e-5 * beta_start:
        return False
    from ._replica import solve_statics
    name = _beta_name(model)
    point = {k: v for k, v in values.items() if k != "alpha"}
    phases = []
    for factor in (1 - 1e-4, 1 + 1e-4):
        r = solve_statics(model, {**point, name: beta_star * factor}, values["alpha"], compare=False, throw=False)
        if not r.ok:
            return False
        phases.append(r.phase)
    return phases[0] != "collapsed" and phases[1] == "collapsed"


def certify_collapse_saddle(result: dict, model: Model, params: Mapping[str, object], alpha, digits: int):
    """(interval, certified, why) for beta_c of ``collapse_threshold_saddle`` (its ``result``): the blown-up system
    made square as there (the same frozen K/H coordinates, fixed at the exact decimals of their float64 values, and
    the same equations), re-solved in mpmath and proven by the Krawczyk test (``_saddle_thresholds.certify_square``)."""
    from ._saddle_thresholds import certify_square
    unknowns, eqs, params_syms, k_beta, _, _, _ = _blown_up_system(model)
    texts = {**{k: _decimal(v) for k, v in params.items()}, "alpha": _decimal(alpha)}
    frozen = {i: _decimal(result["start"][i]) for i in result["frozen"]}
    key = "blowup|" + model.key + "|" + ",".join(map(str, frozen)) + "|" + ",".join(map(str, result["rows"]))
    return certify_square(key, unknowns, eqs, params_syms, texts, frozen, result["rows"], result["start"], k_beta,
                          digits)
