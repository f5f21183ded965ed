"""Thresholds of the statics, to any precision: collapse beta_c(alpha), BBP detection alpha_c, the eg peak in alpha,
and the optimal beta(alpha).

All are located on the random-matrix closed form (which the replica saddle point reproduces to ~1e-13, see the tests):
first in float64 (``mpmath.fp``), then polished with ``mpmath.findroot`` at two precisions; the digits on which the two
agree are the verified digits (``statics_threshold``).

Collapse: the top latent (largest eigenvalue s_1) is the last to collapse. q = 0 is locally stable iff G'(0) > 0
(``LatentProblem.slope0``); at G'(0) = 0 the transition is continuous if G''(0) > 0 there, and then beta_c solves
G'(0; beta) = 0. Otherwise (strong weight decay) it is first order: beta_c solves G(q) = G(0), G'(q) = 0 with q > 0.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import mpmath
import numpy as np
import scipy.optimize
import sympy as sp

from ..derive._spectral import Q_NORM, S_EIG
from ..errors import InvalidInputError
from ..model import Model
from ._closed_form import _functions, closed_form
from ._params import check_alpha, check_params
from ._spectrum import spectrum_slots

__all__ = ["collapse_threshold", "detection_threshold", "eg_peak", "optimal_beta", "statics_threshold",
           "StaticsThresholdError", "THRESHOLDS"]

THRESHOLDS = ("collapse", "detection", "eg_peak", "optimal_beta")


class StaticsThresholdError(InvalidInputError):
    """The threshold does not exist at these parameters (e.g. no learning phase at any beta)."""


def _beta_name(model: Model) -> str:
    beta = model.vae.beta_expr
    if not isinstance(beta, sp.Symbol):
        raise InvalidInputError("thresholds in beta need beta to be a parameter of the model")
    return beta.name


class _Latent:
    """The top latent's problem as functions of beta at a fixed eigenvalue, in one mpmath context."""

    def __init__(self, model: Model, params: Mapping[str, float], alpha, ctx):
        fns = _functions(model)
        self.fns, self.ctx = fns, ctx
        self.beta_name = _beta_name(model)
        names = [n for n in fns.param_names if n != self.beta_name]
        pv = check_params(params, names)
        inv_alpha = ctx.zero if ctx.isinf(alpha) else 1 / ctx.convert(alpha)
        self.spec = [(s.name, ctx.convert(pv[s.name]) * (inv_alpha if s.name in fns.decay else 1))
                     for s in fns.spec_params if s.name != self.beta_name]
        rhos = [pv[n] for n in fns.rho_names]
        self.s = spectrum_slots(rhos, pv["eta"], alpha, 1, ctx)[0].s
        lp = fns.problem.latents[0]
        args = [Q_NORM, S_EIG] + list(fns.spec_params)
        module = "mpmath" if ctx is mpmath.mp else "math"
        self._G = sp.lambdify(args, lp.reduced, modules=module)
        self._dG = sp.lambdify(args, sp.diff(lp.reduced, Q_NORM), modules=module)
        self._slope0 = sp.lambdify(args, lp.slope0, modules=module)
        self._curv0 = sp.lambdify(args, lp.curvature0, modules=module)
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


def collapse_threshold(model: Model, params: Mapping[str, float], alpha, *, ctx=mpmath.fp) -> dict[str, object]:
    """The collapse threshold beta_c(alpha): above it the global minimiser is collapsed (W = 0, D = 1).

    Arguments:
        model: the model (beta a parameter). params: every parameter but beta (and alpha). alpha: n/N (inf allowed).

    Other arguments:
        ctx: ``mpmath.fp`` or ``mpmath.mp`` (at its current precision).

    Returns:
        {"value": beta_c, "kind": "continuous" | "first-order", "s": the top eigenvalue, "q_jump": q at beta_c^-}.

    Raises:
        StaticsThresholdError: no learning/overlearning phase at any beta > 0 (the weight decay alone collapses).
    """
    alpha = check_alpha(alpha, allow_inf=True) if ctx is not mpmath.mp else mpmath.mpf(alpha)
    lat_fp = _Latent(model, params, alpha if ctx is not mpmath.mp else float(alpha), mpmath.fp)

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
    lat = lat_fp if ctx is not mpmath.mp else _Latent(model, params, alpha, ctx)
    if continuous:
        bracket = (ctx.convert(lo) * (1 - ctx.convert(1e-6)), ctx.convert(hi) * (1 + ctx.convert(1e-6)))
        value = ctx.findroot(lat.slope0, bracket, solver="anderson")
        return {"value": value, "kind": "continuous", "s": lat.s, "q_jump": ctx.zero}
    q0, b0 = ctx.convert(q_jump), ctx.convert(0.5 * (lo + hi))
    sol = ctx.findroot([lambda q, b: lat.G(q, b) - lat.G(ctx.zero, b), lambda q, b: lat.dG(q, b)], (q0, b0))
    return {"value": sol[1], "kind": "first-order", "s": lat.s, "q_jump": sol[0]}


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
    for r in _real_roots(lat_fns[0]["coeffs"](float(lat.s), *spec), mpmath.fp):
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
    pv = check_params(params, list(fns.rho_names) + ["eta"])
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
    it) or an interior stationary point (then polished with ``findroot`` on d eg / d alpha).

    Returns:
        {"alpha": location, "eg": eg there, "at_detection": bool}.
    """
    a = np.geomspace(alpha_range[0], alpha_range[1], points)
    values = np.array([float(_eg(model, params, x, mpmath.fp)) for x in a])
    k = int(np.argmax(values))
    try:
        a_c = float(detection_threshold(model, params))
    except StaticsThresholdError:
        a_c = math.inf
    lo, hi = a[max(k - 1, 0)], a[min(k + 1, points - 1)]
    if lo <= a_c <= hi or (k + 1 < points and a[k] <= a_c <= a[k + 1]):
        left = float(_eg(model, params, a_c * (1 - 1e-6), mpmath.fp))
        if left <= float(_eg(model, params, a_c, mpmath.fp)):
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
    """The beta minimising eg at fixed alpha (and lam): a float scan over (0, beta_c), then a bounded minimisation
    (float64, ~1e-8 accurate: eg is quadratic there) or ``findroot`` on d eg / d beta (mpmath).

    Returns:
        {"beta": location, "eg": eg there}.

    Raises:
        StaticsThresholdError: eg has no interior minimum in beta (e.g. no learning phase).
    """
    name = _beta_name(model)
    bc = float(collapse_threshold(model, params, alpha)["value"])
    betas = np.linspace(bc * 1e-3, bc * (1 - 1e-6), points)
    vals = np.array([float(_eg(model, {**params, name: b}, alpha, mpmath.fp)) for b in betas])
    k = int(np.argmin(vals))
    if k in (0, points - 1):
        raise StaticsThresholdError("eg(beta) has no interior minimum below the collapse threshold")

    if ctx is not mpmath.mp:  # float64: a derivative-free bracketed minimisation (numerical slopes are too noisy)
        opt = scipy.optimize.minimize_scalar(lambda b: float(_eg(model, {**params, name: b}, alpha, ctx)),
                                             bounds=(betas[k - 1], betas[k + 1]), method="bounded",
                                             options={"xatol": 1e-13})
        return {"beta": float(opt.x), "eg": float(opt.fun)}

    def slope(b):
        return ctx.diff(lambda x: _eg(model, {**params, name: x}, alpha, ctx), b)

    value = ctx.findroot(slope, (ctx.convert(betas[k - 1]), ctx.convert(betas[k + 1])), solver="anderson")
    return {"beta": value, "eg": _eg(model, {**params, name: value}, alpha, ctx)}


# ---------------------------------------------------------------------------------------------- public entry point
def _closed_form_text(name: str, model: Model, params: Mapping[str, float], alpha, kind: str | None) -> str:
    """A closed-form expression of the threshold where one exists (printed by SymPy), else a description."""
    fns = _functions(model)
    if name == "detection":
        return "alpha_c = (eta/rho)**2  [BBP: largest spike strength rho]"
    if name == "collapse":
        lp = fns.problem.latents[0]
        beta = sp.Symbol(_beta_name(model), real=True)
        beta_syms = [s for s in fns.spec_params if s.name == beta.name]
        roots = sp.solve(lp.slope0, beta_syms[0]) if beta_syms else []
        top = "s_1 = eta*(1 + rho/eta)*(1 + eta/(alpha*rho)) above BBP, eta*(1 + 1/sqrt(alpha))**2 below"
        decay = ", ".join(f"{d} -> {d}/alpha" for d in fns.decay)
        if kind == "continuous" and len(roots) == 1:
            return f"beta_c = {sp.sstr(sp.simplify(roots[0].subs(S_EIG, sp.Symbol('s_1'))))}; {top}" + \
                (f"; {decay}" if decay else "")
        return "first-order collapse: G(q) = G(0), G'(q) = 0 (G the top latent's derived objective); " + top
    if name == "optimal_beta":
        return "argmin_beta eg (numerical; for lam = 0 and M = M* = 1: beta_opt = s_1 - rho*phi_1)"
    return "argmax_alpha eg (the BBP threshold when the maximum is the cusp there)"


def _evaluate(name: str, model: Model, params: Mapping[str, float], alpha, ctx):
    if name == "collapse":
        out = collapse_threshold(model, params, alpha, ctx=ctx)
        return out["value"], "beta", out["kind"]
    if name == "detection":
        return detection_threshold(model, params, ctx=ctx), "alpha", None
    if name == "eg_peak":
        return eg_peak(model, params, ctx=ctx)["alpha"], "alpha", None
    if name == "optimal_beta":
        return optimal_beta(model, params, alpha, ctx=ctx)["beta"], "beta", None
    raise InvalidInputError(f"unknown statics threshold {name!r}; known: {', '.join(THRESHOLDS)}")


def statics_threshold(name: str, model: Model, params: Mapping[str, float], alpha=None, digits: int = 15) -> dict:
    """A statics threshold to ``digits`` verified digits, in the format of the thresholds machinery.

    Arguments:
        name: ``"collapse"`` (beta_c at ``alpha``), ``"detection"`` (BBP alpha_c), ``"eg_peak"`` (argmax_alpha eg at
            the given beta) or ``"optimal_beta"`` (argmin_beta eg at ``alpha``).
        model: the model. params: parameter values by name (beta is ignored for collapse / optimal_beta).
        alpha: n / N (needed by collapse and optimal_beta; ``inf`` allowed for collapse). digits: requested digits.

    Returns:
        {"name", "parameter" ("beta" or "alpha"), "value" (decimal string of the verified digits), "digits",
        "closed_form" (text), "status": "verified"}.

    Raises:
        InvalidInputError: unknown name, missing alpha, digits < 1 or > 200, invalid parameters.
        StaticsThresholdError: the threshold does not exist here, or two precisions do not agree to ``digits``.
    """
    if name not in THRESHOLDS:
        raise InvalidInputError(f"unknown statics threshold {name!r}; known: {', '.join(THRESHOLDS)}")
    if not isinstance(digits, int) or not 1 <= digits <= 200:
        raise InvalidInputError(f"digits must be an integer in [1, 200], got {digits!r}")
    if name in ("collapse", "optimal_beta"):
        if alpha is None:
            raise InvalidInputError(f"the {name} threshold needs alpha")
        check_alpha(alpha, allow_inf=(name == "collapse"))
    params = {k: v for k, v in params.items() if not (name in ("collapse", "optimal_beta") and k == "beta")}
    values = []
    kind = None
    for dps in (digits + 10, 2 * digits + 20):
        with mpmath.workdps(dps):
            a = None if alpha is None else (mpmath.inf if math.isinf(float(alpha)) else mpmath.mpf(alpha))
            v, parameter, kind = _evaluate(name, model, params, a, mpmath.mp)
            values.append(+v)
    with mpmath.workdps(2 * digits + 20):
        v1, v2 = values
        err = abs(v1 - v2)
        agree = math.inf if err == 0 else float(-mpmath.log10(err / max(abs(v2), mpmath.mpf(10) ** -300)))
        text = mpmath.nstr(v2, digits, strip_zeros=False, min_fixed=-6, max_fixed=digits + 6)
    if agree < digits:
        raise StaticsThresholdError(f"{name} threshold: the two precisions agree on {agree:.1f} digits only, "
                                    f"fewer than the {digits} requested")
    return {"name": name, "parameter": parameter, "value": text, "digits": digits,
            "closed_form": _closed_form_text(name, model, params, alpha, kind), "status": "verified"}
