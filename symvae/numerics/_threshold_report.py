"""``derivations/thresholds.md``: the closed-form thresholds symvae finds, with the commands that reproduce them.

Everything in the file is computed here: the formulas are the closed forms returned by the threshold solver
(``_thresholds``), their limits and expansions are taken by SymPy, and every number is a verified value.
"""
from __future__ import annotations

import pathlib

import sympy as sp

from ..derive import derive_dynamics
from ..model import make_model
from ._systems import as_compiled
from ._thresholds import threshold

__all__ = ["threshold_derivation_files", "write_threshold_derivations"]

_DIGITS = 40
_REFERENCE = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)
#: Variants of docs/model.md section 5 listed (variant, extra parameter values), at lam = 0.1, tau = 0.05.
_VARIANTS = [("tied", {}), ("fixed_D", {"D_1": 0.5}), ("fixed_sigma2", {"sigma2": 0.7}),
             ("learned_sigma2", {}), ("per_spike_rho", {"rho_1": 1.5}),
             ("step_sizes", {"tau_W": 0.05, "tau_W_tilde": 0.02, "tau_D": 0.1}), ("minibatch", {"b": 4}),
             ("lam_W_only", {}), ("lam_W_tilde_only", {})]
_CASES = [  # (threshold, M, parameter overrides)
    ("collapse", 1, {}), ("collapse", 1, {"tau": 0.5}), ("collapse", 1, {"lam": 0.1, "tau": 0.2}),
    ("collapse", 1, {"rho": 2.0, "eta": 0.5, "lam": 0.3}), ("collapse", 2, {}),
    ("noise", 1, {}), ("noise", 1, {"tau": 0.1}), ("noise", 1, {"tau": 0.001}), ("noise", 1, {"lam": 0.1}),
    ("noise", 2, {}),
    ("lr", 1, {}), ("lr", 1, {"tau": 0.5}), ("lr", 1, {"tau": 0.5, "lam": 0.1}),
]


#: Activated models listed (encoder activation, decoder activation, parameter overrides), collapse threshold only.
_ACTIVATED = [("linear", "erf", {"tau": 0.1}), ("linear", "erf", {"rho": 2.0, "eta": 0.5, "lam": 0.1, "tau": 0.05}),
              ("erf", "erf", {"tau": 0.1})]
_ACTIVATED_DIGITS = 30


def activated_rows() -> list[str]:
    """The rows of the activated-model table of ``thresholds.md`` (two lines each: values, then the command)."""
    rows = []
    for enc, dec, over in _ACTIVATED:
        acts = {k: v for k, v in (("encoder_activation", enc), ("decoder_activation", dec)) if v != "linear"}
        system = as_compiled(derive_dynamics(make_model("base", **acts)))
        params = dict(_REFERENCE, **over)
        r = threshold("collapse", system, params, digits=_ACTIVATED_DIGITS)
        opts = " ".join([f"--{k.replace('_', '-')} {v}" for k, v in acts.items()] +
                        [f"--{k} {v:g}" for k, v in params.items() if _REFERENCE.get(k) != v])
        shown = ", ".join(f"{k} = {v:g}" for k, v in params.items() if k != "beta")
        interval = f"[{r.interval[0]}, {r.interval[1]}]" if r.interval else "-"
        rows.append(f"| {enc} | {dec} | {shown} | `{r.text}` | {r.digits} | {r.status} | "
                    f"{'yes' if r.certified else 'no'} | `{interval}` |\n"
                    f"|  |  | `symvae threshold collapse {opts} --digits {_ACTIVATED_DIGITS} --json` |  |  |  |  |  |")
    return rows


def _command(name: str, M: int, params: dict) -> str:
    opts = " ".join(f"--{k} {v:g}" for k, v in params.items() if _REFERENCE.get(k) != v)
    m = f" --M {M}" if M != 1 else ""
    return f"symvae threshold {name}{m} {opts} --digits {_DIGITS} --json".replace("  ", " ")


def _plain(expr: sp.Expr) -> sp.Expr:
    """The expression with plain symbols (no assumptions), for stable printing."""
    return expr.subs({s: sp.Symbol(s.name) for s in expr.free_symbols})


def _latex(expr) -> str:
    names = {sp.Symbol("lam"): r"\lambda", sp.Symbol("sigma2"): r"\sigma^{2}"}
    return sp.latex(_plain(sp.sympify(expr, strict=True)), symbol_names=names)  # strict: never parses text


def _variant_rows() -> list[str]:
    rows = []
    for variant, extra in _VARIANTS:
        system = as_compiled(derive_dynamics(make_model(variant)))
        values = dict(_REFERENCE, lam=0.1, tau=0.05, **extra)
        params = {p.name: values[p.name] for p in system.system.params}
        cells = []
        for name in ("collapse", "noise", "lr"):
            r = threshold(name, system, params, digits=20)
            if r.closed_form is None:
                form = "-"
            elif isinstance(r.closed_form, sp.Eq):
                form = f"root of a polynomial of degree {sp.degree(r.closed_form.lhs, sp.Symbol('beta', real=True))}"
            else:
                form = f"${_latex(r.closed_form)}$"
            cells.append(f"{form}<br>`{r.text}`")
        sets = " ".join(f"--set {k}={v:g}" for k, v in extra.items())
        command = f"symvae threshold collapse --variant {variant} --lam 0.1 --tau 0.05 {sets} --digits 20 --json"
        rows.append(f"| `{variant}` | {' | '.join(cells)} | `{command.replace('  ', ' ')}` |")
    return rows


_ACTIVATED_HEADER = ("| encoder | decoder | parameters | beta_c (certified digits) | digits | status | certified | "
                     "interval |")


def activated_rows_in(text: str) -> list[str]:
    """The activated-model rows of a ``thresholds.md`` text, as ``activated_rows`` gives them (empty if absent)."""
    lines = text.split("\n")
    if _ACTIVATED_HEADER not in lines:
        return []
    body = lines[lines.index(_ACTIVATED_HEADER) + 2:]
    body = body[:body.index("")] if "" in body else body
    return ["\n".join(body[i:i + 2]) for i in range(0, len(body), 2)]


def threshold_derivation_files(activated: list[str] | None = None) -> dict[str, str]:
    """Relative path -> content of the files ``write_threshold_derivations`` writes (``thresholds.md``).
    ``activated``: the activated-model rows to use instead of computing them (``activated_rows``; the sync test
    checks them separately, so that the two halves can run in parallel)."""
    systems = {M: as_compiled(derive_dynamics(make_model("base", M=M, M_star=1))) for M in (1, 2)}
    rows = []
    results = {}
    for name, M, over in _CASES:
        params = dict(_REFERENCE, **over)
        r = threshold(name, systems[M], params, digits=_DIGITS)
        results[(name, M, tuple(sorted(over.items())))] = r
        shown = ", ".join(f"{k} = {v:g}" for k, v in params.items() if k != "beta")
        rows.append(f"| {name} | {M} | {shown} | `{r.text}` | {r.digits} | {r.status} | "
                    f"{r.closed_form_digits if r.closed_form_digits is not None else '-'} |\n"
                    f"|  |  | `{_command(name, M, params)}` |  |  |  |  |")
    collapse = results[("collapse", 1, ())].closed_form
    cubic = results[("noise", 1, ())].closed_form.lhs
    syms = {s.name: s for s in cubic.free_symbols | collapse.free_symbols}
    beta, eta, lam, tau, rho = (syms.get(n, sp.Symbol(n, real=True)) for n in ("beta", "eta", "lam", "tau", "rho"))
    tau_in_collapse = tau in collapse.free_symbols
    at_lam0 = sp.factor(collapse.subs(lam, 0))
    small_tau = sp.factor(cubic.subs(tau, 0))
    noise0 = [r for r in sp.solve(cubic.subs(tau, 0), beta) if sp.simplify(r.subs(lam, 0) - eta) == 0][0]
    slope = sp.factor(sp.simplify(-sp.diff(cubic, tau).subs(tau, 0).subs(beta, noise0)
                                  / sp.diff(cubic, beta).subs(tau, 0).subs(beta, noise0)))
    b, c = sp.symbols("b c")
    leading = sp.factor(sp.limit(sp.expand(cubic.subs(beta, b / tau) * tau ** 2), tau, 0))
    b0 = [r for r in sp.solve(leading, b) if r != 0][0]
    # next order: beta = b0/tau + c; the O(tau^-1) coefficient of tau^2 P must vanish
    series = sp.expand(cubic.subs(beta, b0 / tau + c) * tau ** 2)
    c0 = sp.factor(sp.solve(sp.expand(series.coeff(tau, 1)), c)[0]) if series.coeff(tau, 1) != 0 else sp.Integer(0)
    lr_expansion = b0 / tau + c0

    text = f"""# Thresholds of the online-SGD dynamics

Written by `symvae derive --all --out derivations/` (`symvae.numerics.write_threshold_derivations`); do not edit.
Each formula is the closed form SymPy returned inside symvae's threshold solver (the augmented system of the branch
point: fixed-point equations on the invariant subspace + the determinant of the critical Jacobian block; see
`symvae/numerics/_thresholds.py`); limits and expansions are SymPy's. Each number is verified: computed at two
precisions that agree on every digit shown, and compared with the closed form. Model: the `base` variant (docs/model.md
sections 2-3), parameters rho, eta, beta, lam, tau; M = M* = 1 unless stated.

## Collapse threshold

The collapsed point m = m~ = Q = Q~ = R = 0, D = 1 loses stability, and the branch of learned points (a pitchfork:
m = +-sqrt(...)) meets it, where the determinant of its signal block (m_11, m~_11) vanishes:

$$\\beta_c = {_latex(collapse)}$$

- It does {'' if tau_in_collapse else 'not '}depend on tau: the signal block has no O(tau^2) terms, so the collapse
  threshold is the same for every step size.
- At lam = 0: beta_c = ${_latex(at_lam0)}$, the largest eigenvalue of the data covariance (published, for any tau).
- With M = 2 latents both signal blocks go singular at the same beta (found with one test function per block).

## Noise threshold (a superfluous latent fits the noise)

A latent with zero signal overlap starts fitting the background noise where the determinant of its norm block
(Q_kk, Q~_kk, R_kk) at the collapsed point vanishes. The O(tau^2) terms make it a cubic in beta:

$$P(\\beta) = {_latex(cubic)} = 0,$$

whose middle real root is beta_noise and whose largest is the step-size edge below.

- tau -> 0: $P \\to {_latex(small_tau)}$, so $\\beta_{{noise}} \\to {_latex(noise0)}$ (= eta at lam = 0: the published
  "fits the noise when beta < eta").
- First order in tau: $\\beta_{{noise}} = {_latex(noise0)} + \\tau\\,{_latex(slope)} + O(\\tau^2)$.
- With M = 2, M* = 1 the same value is found on the branch where latent 1 has learned the signal (branch switching at
  the collapse threshold): the norm block of the superfluous latent does not couple to the learned one at linear
  order.

## Step-size edge (lr)

Above the largest real root of the same cubic the collapsed point is unstable again, through its norm block: the
encoder step is too large for the curvature beta eta of its loss (tau beta eta -> 2 as tau -> 0, the stability edge
of gradient descent), and the encoder norm Q~ grows along the bifurcating branch. The collapsed point is stable for
beta_c < beta < beta_lr:

$$\\beta_{{lr}} = {_latex(lr_expansion)} + O(\\tau).$$

## Variants

The same solver on the variants of docs/model.md section 5 (M = M* = 1; rho = eta = 1, lam = 0.1, tau = 0.05 and the
parameters shown in the command; `noise` and `lr` likewise with their own name). Closed forms as SymPy returns them;
below each, the verified value (20 digits).

| variant | collapse | noise | lr | command |
|---|---|---|---|---|
""" + "\n".join(_variant_rows()) + """

## Activated models: collapse threshold

With an activation (docs/model.md: erf(x/sqrt(2)) or ReLU on the encoder mean or the decoder input) the sampled eps
keeps Q, Q~, R at O(tau) values on the collapsed branch. The solver finds a stable collapsed point by Newton on a
geometric grid going up in beta (the collapsed point is stable only between beta_c and the step-size edge, which is
near 2/(tau eta)), continues it down in the subspace m = m~ = 0 and refines the signal branch point on the null-vector
augmented system (fixed-point equations + J_signal v = 0 + a normalisation of v). The right-hand side has arcsines
of the covariances, so there is no polynomial closed form; each value is certified by the Krawczyk test (interval
column: an enclosure proven to contain the root). With erf on both sides the expectations have no closed form and the
system holds numerical-rule nodes; the certificate encloses each with a proven bound of its quadrature error, so the
interval holds the root of the model, not of the rule (whose own root, 1.89813615289 here, is 3.5e-9 away). With
erf on both sides at M = M* = 2 (equal spikes) one mpmath right-hand side is too slow to refine in: the threshold is
refined in float64 with the rules at 1, 1/2 and 1/3 of their steps, which gives 1.89813614943 (12 digits, an estimate,
not certified) -- the M = 1 value above, since the cross-latent overlaps vanish at the collapsed point (slow test in
tests/test_nonlinear_noise_mean.py; `symvae threshold collapse --encoder-activation erf --decoder-activation erf --M 2
--M-star 2 --tau 0.1 --digits 12`). As
tau -> 0, an erf decoder collapses at
beta_c = kappa/(pi (1/3 + lam)) - lam/kappa with kappa = rho + eta (3 kappa/pi at lam = 0, earlier than the linear
rho + eta; hand derivation, tests/test_nonlinear_threshold.py).

""" + _ACTIVATED_HEADER + """
|---|---|---|---|---|---|---|---|
""" + "\n".join(activated_rows() if activated is None else activated) + """

## Verified values

| threshold | M | parameters | value (verified digits) | digits | status | closed form agrees to |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    return {"thresholds.md": text}


def write_threshold_derivations(out: str | pathlib.Path) -> list[pathlib.Path]:
    """Write ``thresholds.md`` into the folder ``out`` (the derivations folder); returns the paths written."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, text in threshold_derivation_files().items():
        path = out / rel
        path.write_text(text)
        written.append(path)
    return written
