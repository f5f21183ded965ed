"""``derivations/statics/``: the statics derivation, with every equation printed from the SymPy source.

``write_statics_derivations(out)`` writes ``<out>/statics/README.md`` (the derivation: replica free energy, why the
minimiser lives on the top eigenvectors of S, the random-matrix closed form, thresholds) and one file per shipped model
with its assembled free energy, saddle-point equations and eigen-solution. ``symvae derive --all --out derivations/``
calls it.
"""
from __future__ import annotations

import pathlib
from typing import Iterable

import sympy as sp

from ..derive._spectral import Q_NORM, S_EIG, U_NORM, UT_NORM, derive_spectral
from ..derive._statics import derive_statics, replica_free_energy
from ..model import VARIANTS, Model, make_model

__all__ = ["statics_markdown", "statics_derivation_files", "write_statics_derivations", "SHIPPED"]

#: (variant, M, M*, with the full saddle-point equations) written to derivations/statics/.
SHIPPED = (("base", 1, 1, True), ("tied", 1, 1, True), ("fixed_D", 1, 1, True), ("learned_sigma2", 1, 1, True),
           ("fixed_sigma2", 1, 1, True), ("per_spike_rho", 1, 1, True), ("lam_W_only", 1, 1, True),
           ("lam_W_tilde_only", 1, 1, True), ("base", 2, 1, False), ("base", 2, 2, False))


def _names(model: Model, fe) -> dict:
    T = fe.table
    names = dict(T.latex_names(own_names=True))
    for s in fe.blocks["K"]:
        names[s] = f"K_{{{s.name[2:]}}}"
    for s in fe.blocks["H"]:
        names[s] = f"H_{{{s.name[2:]}}}"
    names.update({sp.Symbol("lam", real=True): r"\lambda", S_EIG: "s", Q_NORM: "q", U_NORM: "u",
                  UT_NORM: r"\tilde{u}"})
    for k, r in enumerate(T.rho):
        if r.name != "rho":
            names[r] = rf"\rho_{{{k + 1}}}"
    return names


def _tex(expr, names) -> str:
    return sp.latex(expr, symbol_names=names, long_frac_ratio=2)


def statics_markdown(model: Model, *, equations: bool = True) -> str:
    """The statics of one model as Markdown with LaTeX: free energy (by parts), saddle-point equations (if
    ``equations``), and the per-latent eigen-solution with its collapse condition."""
    fe = replica_free_energy(model)
    names = _names(model, fe)
    desc = VARIANTS[model.name].description if model.name in VARIANTS else "Custom model."
    cmd = "symvae derive --all --out derivations/"
    lines = [f"# Replica statics — variant `{model.name}`, M = {model.M}, M* = {model.M_star}", "",
             f"Written by `{cmd}`; do not edit. Derivation and notation: [README.md](README.md).", "", desc, "",
             "Unknowns: " + ", ".join(f"`{s.name}`" for s in fe.unknowns) + ".", "",
             "Per-sample data loss (noise floor removed, $\\|x\\|^2 \\to \\sum_k \\rho_k$):", "",
             "$$", _tex(fe.data_loss, names), "$$", "", "Regulariser per input dimension (applied once):", "",
             "$$", _tex(fe.reg, names), "$$", "", "## Free energy per sample", "",
             "Entropic term:", "", "$$", _tex(fe.entropic, names), "$$", "",
             "Regulariser:", "", "$$", _tex(fe.regulariser, names), "$$", ""]
    if model.M == 1:
        lines += ["Energetic term:", "", "$$", _tex(fe.energetic, names), "$$", ""]
    else:
        lines += [f"Energetic term: {sp.count_ops(fe.energetic)} operations (printed for M = 1 only); it is "
                  "$E_\\omega[\\ell(H\\omega) + \\tfrac12 (H\\omega-\\omega)^T K (H\\omega-\\omega)]$ with "
                  "$\\omega \\sim N(0, \\Sigma)$, $\\Sigma$ the population covariance of the local fields.", ""]
    if equations:
        system = derive_statics(model)
        lines += ["## Saddle-point equations", "", "Each is $\\partial f / \\partial x = 0$ for an unknown $x$:", ""]
        for s, e in system.equations().items():
            lines += ["$$", rf"\frac{{\partial f}}{{\partial {names.get(s, sp.latex(s))}}} = "
                      + _tex(e, names) + " = 0", "$$", ""]
    sp_problem = derive_spectral(model)
    lp = sp_problem.latents[0]
    lines += ["## Eigen-solution (random-matrix closed form)", "",
              "Latent on an eigenvector of $S$ with eigenvalue $s$; decoder norm $u$ ($Q_{kk} = u^2 = q$), encoder "
              "norm $\\tilde u$; weight decay per sample $\\lambda/\\alpha$ (written $\\lambda$ here):", "",
              "$$", "g = " + _tex(lp.objective, names), "$$", ""]
    if lp.u_tilde is not None:
        lines += ["$$", r"\tilde u^* = " + _tex(lp.u_tilde, names), "$$", ""]
    if lp.D is not None:
        lines += ["$$", f"{names[lp.D_symbol]}^* = " + _tex(lp.D, names), "$$", ""]
    lines += ["Reduced objective:", "", "$$", "G(q) = " + _tex(lp.reduced, names), "$$", "",
              "Stationary points $q > 0$ are roots of", "", "$$", _tex(sp.factor(lp.stationarity.as_expr()), names)
              + " = 0", "$$", "", "Collapse (the latent's $q = 0$ is locally stable iff $G'(0) > 0$):", "",
              "$$", "G'(0) = " + _tex(lp.slope0, names), "$$", "", "$$", "G''(0) = " + _tex(lp.curvature0, names),
              "$$", "", f"Training loss of the collapsed solution: ${_tex(sp_problem.constant, names)}$.", ""]
    return "\n".join(lines).rstrip() + "\n"


README = r"""# Replica statics of the linear beta-VAE — derivation

Written by `symvae derive --all --out derivations/`; do not edit. The per-model files below print, from the SymPy
source, the assembled free energy, the saddle-point equations and the eigen-solution; this page gives the reasoning.

Setting (docs/model.md section 4): $L(W, \tilde W, D) = \sum_{\mu=1}^{n} \ell(x^\mu) + N\,\mathrm{reg}$ with
$\mathrm{reg} = \tfrac{\lambda}{2}(\mathrm{tr}\,Q + \mathrm{tr}\,\tilde Q)$, $n = \alpha N$, $N \to \infty$. All per-sample
quantities drop the $O(N)$ noise floor: $\|x\|^2 \to \sum_k \rho_k$.

## 1. Replica free energy (zero temperature, replica symmetric)

$Z = \int dW\,d\tilde W\, e^{-\beta_T L}$. Stack the trainable vectors coordinate-wise, $w_i \in \mathbb{R}^P$
($P = 2M$, or $M$ for tied weights), with overlaps $\Omega = \frac1N\sum_i w_i w_i^T$ (the blocks $Q, R, \tilde Q$) and
teacher overlaps $\mathbb m = \frac1N \sum_i w_i w^*_i{}^T$ (the blocks $m, \tilde m$). For a sample
$x = \sqrt{\rho/N} W^* c + \sqrt\eta z$ the local fields are $h = \sqrt\rho\, \mathbb m\, c + \sqrt\eta\, \omega$ with
$\omega = [W, \tilde W^T]^T z / \sqrt N \sim N(0, \Omega)$ given the weights.

* Entropy: the volume of weights with given overlaps is $\exp\{\frac N2 \log\det(\Omega_{\rm full} - \mathbb m \mathbb m^T)\}$
  (over all replicas). With the RS ansatz $\Omega^{ab} = \Omega + \delta_{ab}\,\chi/\beta_T$ and $n_r \to 0$,
  $\beta_T \to \infty$, it contributes $-\frac12 \mathrm{tr}[\chi^{-1}(\Omega - \mathbb m \mathbb m^T)]$ per $N$.
* Energy: each replica's fields fluctuate around the shared cavity field with covariance $\eta\chi/\beta_T$; at zero
  temperature the replica average becomes the Moreau envelope
  $E_\omega \min_h [\ell(h) + \frac12 (h-\omega)^T K (h - \omega)]$, $K = (\eta\chi)^{-1}$, $\omega \sim N(0, \Sigma)$,
  $\Sigma = \rho\, \mathbb m \mathbb m^T + \eta\, \Omega$ (``SymbolTable.covariance``). The loss is quadratic in $h$,
  so the minimiser is linear, $h = H\omega$: symvae keeps $H$ as an unknown (the minimisation becomes one more
  stationarity condition) and evaluates $E_\omega$ by Wick's theorem on the per-sample loss. Every unknown except $D$
  then enters polynomially.
* Per sample: $f = -\frac{\eta}{2\alpha}\mathrm{tr}[K(\Omega - \mathbb m\mathbb m^T)] + \mathrm{reg}/\alpha
  + E_\omega[\ell(H\omega) + \frac12 (H\omega - \omega)^T K (H\omega-\omega)]$, extremised over
  $(m, \tilde m, Q, \tilde Q, R, D, K, H)$. Its value at the saddle point is the training loss per sample.

The check that the formalism is right: for PCA ($\ell = -\frac12 h^2$ on the sphere) the same free energy gives the
BBP overlap and top eigenvalue exactly; for the VAE, with one spike, the $\mathbb m$-equation forces
$(H - I)v = c\,v$ with $c = \eta/(\alpha\rho)$ on the field direction $v$ of the learning latent, and the $K$-equation
$(H-I)\Sigma(H-I)^T = \frac\eta\alpha(\Omega - \mathbb m\mathbb m^T)$ then gives
$\phi = m^2/Q = (1 - \gamma/\ell^2)/(1 + \gamma/\ell)$ ($\gamma = 1/\alpha$, $\ell = \rho/\eta$): the BBP overlap.

**Degeneracy.** At the minimiser each encoder row is parallel to its decoder column, so $\Sigma$ has rank $\le M < 2M$;
$H$ acting on the null space of $\Sigma$ (and a matching family of $K$) is undetermined. These directions change neither
the order parameters nor $f$. The solver uses Levenberg–Marquardt steps (float64) and, for mpmath refinement, freezes as
many $K/H$ coordinates as the null space has dimensions. Since $f$ is linear in $K$,
$f = \mathrm{reg}/\alpha + E_\omega[\ell(H\omega)] + \frac12\mathrm{tr}\,K[(H-I)\Sigma(H-I)^T - \frac\eta\alpha(\Omega
- \mathbb m\mathbb m^T)]$: $K$ is the multiplier of the constraint that fixes the covariance of the training fields'
deviation from the cavity fields. Given the order parameters, $H$ follows from that constraint on each latent's field
direction and $K$ from the remaining equations, which are affine in $K$: the solver's starts need nothing but the
order parameters.

**Search without a closed form.** `solve_statics` starts from the collapsed point and from structured weights (each
encoder row parallel to its decoder column, orthogonal latents, $D$ from its own equation) with informed (aligned with
the spike) and uninformed directions on a ladder of norms, plus random admissible starts; a few-parameter least-squares
problem on the derived residual brings each start close, Levenberg–Marquardt finishes on the full system, and the
convergence test is on the undamped residual. Stability of a saddle: the Hessian of $f$ in the order parameters with
$K, H$ eliminated (Schur complement), restricted to the directions in which the conjugate equations stay solvable.
The minimiser is the lowest admissible saddle that is a local minimum there; a collapsed latent sits on the boundary
$Q_{kk} = 0$, where $f$ changes at first order, so a collapsed minimiser is accepted only after a search for a
learned saddle below it: the full search, or, warm-started from a neighbouring point, escape starts on the learned side.

**Admissibility.** The equations continue analytically across a collapse transition to $Q_{kk} < 0$; only saddle
points whose Gram matrix of $[W^*, W, \tilde W]$ is PSD (and $D > 0$) are physical; among those the global minimiser
has the lowest $f$.

## 2. Why the minimiser lives on the top eigenvectors of $S = \frac1n\sum_\mu x^\mu x^{\mu T}$

With $U = W/\sqrt N$, $\tilde U = \tilde W^T/\sqrt N$, $B = Q + \beta I$, $\lambda' = \lambda/\alpha$:
$L/n = \frac12\mathrm{tr}S - \mathrm{tr}(\tilde U^T S U) + \frac12\mathrm{tr}(\tilde U^T S \tilde U B)
 + \frac12\sum_k Q_{kk}D_k + \frac\beta2\sum_k(D_k - \log D_k - 1) + \frac{\lambda'}2(\mathrm{tr}Q + \mathrm{tr}\tilde Q)$.

1. In the eigenbasis $S = \sum_i s_i v_i v_i^T$ write $a_i = U^T v_i$, $\tilde a_i = \tilde U^T v_i$. For fixed $U$ the
   loss is a convex quadratic in each $\tilde a_i$: $\tilde a_i = s_i (s_i B + \lambda')^{-1} a_i$, leaving
   $-\frac12 \sum_i s_i^2\, a_i^T (s_i B + \lambda')^{-1} a_i$ + (terms in $Q$ and $D$).
2. That remainder is invariant under latent rotations $a_i \to O a_i$ (with $Q \to O Q O^T$), while the $D$/KL terms are
   not: for learned $D$ they reduce to $\frac\beta2\sum_k \log(1 + Q_{kk}/\beta)$, Schur-concave in the diagonal of $Q$,
   hence minimal when $Q$ is diagonal (the diagonal of a symmetric matrix is majorised by its spectrum); for fixed $D$,
   $\mathrm{tr}(Q\,\mathrm{diag}D)$ is minimal for a diagonal $Q$ (rearrangement). So $Q = \mathrm{diag}(q_k)$.
3. With $Q$ diagonal the data term is $-\frac12\sum_k q_k \sum_i g_k(s_i) P_{ik}$, $g_k(s) = s^2/(s(q_k+\beta)+\lambda')$
   increasing in $s$, $P_{ik} = (v_i\cdot u_k)^2$ for orthonormal $u_k$: $P$ is doubly substochastic, the objective is
   linear in $P$, so its minimum is at a vertex — each latent on one eigenvector — and, $g_k$ being increasing, on the
   largest eigenvalues. (Tied weights: $\mathrm{tr}Y$ and $\mathrm{tr}(S(UU^T)^2)$ depend on the frame only through a
   weighted Ky Fan sum, same conclusion.)

Each latent then solves a scalar problem at its eigenvalue $s$; symvae derives it from the per-sample loss by Wick's
theorem with the *sample* covariance of the fields ($E[\ell^2] = s u^2$, $E[\ell\mu] = s u\tilde u$,
$E[\mu^2] = s\tilde u^2$ — exact, the loss being quadratic), eliminates $\tilde u$ and $D$, and reduces the stationarity
in $q = u^2$ to a polynomial (per-model files). At finite $N$ this is the exact solver `erm_exact`.

## 3. The limit $N\to\infty$: spiked sample covariance (BBP)

Population covariance $\eta I + \rho\, w^* w^{*T}/N$, aspect ratio $\gamma = N/n = 1/\alpha$, $\ell = \rho/\eta$
(Baik, Ben Arous, Péché 2005; Paul 2007; Benaych-Georges, Nadakuditi 2011):

* $\ell > \sqrt\gamma$: outlier $s_1 = \eta(1+\ell)(1+\gamma/\ell)$, eigenvector overlap
  $\phi = (v_1\cdot w^*)^2/N = (1-\gamma/\ell^2)/(1+\gamma/\ell)$;
* otherwise $s_1 \to \eta(1+\sqrt\gamma)^2$ (the bulk edge) and $\phi \to 0$; further eigenvalues (more latents than
  spikes) sit at the bulk edge with $\phi = 0$.

Closed form (`closed_form`): $Q_{kk} = q_k$, $\tilde Q_{kk} = \tilde u_k^2$, $R_{kk} = u_k\tilde u_k$,
$m_{kj} = u_k\sqrt{\phi}$, $\tilde m_{kj} = \tilde u_k\sqrt\phi$ for the spike $j$ of latent $k$, $D_k = D^*(q_k)$.
Base model, $\lambda = 0$: $q = (s-\beta)_+$, $D = \beta/(\beta+q)$, $\tilde u = u/(q+\beta)$.

## 4. Phases and thresholds

* Phases: a latent is *collapsed* ($q_k = 0$), *learning* ($q_k > 0$ on a spike direction, $\phi > 0$) or
  *overlearning* ($q_k > 0$ with $\phi = 0$: it fits the noise). The solution is collapsed if all latents are,
  learning if one learns, overlearning otherwise.
* Collapse $\beta_c(\alpha)$: the top latent's $G'(0; \beta) = 0$ (continuous transition when $G''(0) > 0$ there, else
  first order: $G(q) = G(0)$, $G'(q) = 0$). Base model: $\beta_c = s_1/(1+\lambda') - \lambda'/s_1$, so
  $\beta_c \to \rho + \eta$ as $\alpha \to \infty$ for every $\lambda$ (the decay enters as $\lambda/\alpha$):
  collapse beyond $\rho+\eta$ is inevitable whatever the dataset size.
* Detection: no latent overlaps the signal below the BBP threshold $\alpha_c = (\eta/\rho)^2$, whatever $\beta$.
* Optimal $\beta$ (base, $\lambda = 0$, $M = M^* = 1$): $\epsilon_g = \rho - 2\sqrt{\rho\phi q} + q$ is minimal at
  $q = \rho\phi$, i.e. $\beta_{\rm opt} = s_1 - \rho\phi \to \eta$ as $\alpha \to \infty$, with $\epsilon_g = \rho(1-\phi)$.
* $\epsilon_g$ peak in $\alpha$: with $\lambda > 0$ the overlearning branch rises as $\alpha \uparrow \alpha_c$ and eg
  drops like $-\sqrt{\alpha-\alpha_c}$ above it: the maximum is the cusp at $\alpha_c$ (`eg_peak` checks which case).

## 5. Learned decoder variance

Minimising over $\sigma^2$ gives $\sigma^2 = \eta + O(1/N)$; expanding $\frac{N\eta + c}{2\sigma^2} + \frac N2\log\sigma^2$
around it, the $O(1)$ problem is the fixed-$\sigma^2 = \eta$ problem. Statics substitutes $\sigma^2 = \eta$.

## 6. Verification (tests/test_statics*.py)

* Replica saddle point, found without the closed form, vs closed form: order parameters and training loss agree to
  $10^{-10}$ (relative to $\max(1, |Q|)$) at $10^{-3}$ (relative) on both sides of $\beta_c(\alpha)$ and of
  $\alpha_c$, for every variant above and $M = 2 > M^* = 1$ (all variants with `--runslow`), along warm-started sweeps
  across the boundaries, and from warm starts 20-100% away; hypothesis checks random
  $(\alpha, \beta, \rho, \eta, \lambda)$. Where no saddle found is a local minimum the solver says `failed`.
* mpmath: the refined saddle point at 40 digits agrees with the mpmath closed form to 30 digits; thresholds are
  reported with the digits on which two precisions agree.
* Finite $N$: the eigen-solver and L-BFGS on the literal loss agree (training loss to $10^{-9}$); means over datasets
  at $N = 100 \dots 2000$ lie within 4 standard errors of the limit, the sample-to-sample spread shrinks like
  $N^{-1/2}$ (the $O(1/N)$ mean correction is below the statistical resolution of these runs).

## Files

"""


def statics_derivation_files(shipped: Iterable[tuple] = SHIPPED) -> dict[str, str]:
    """Relative path (under the derivations folder) -> content of every statics file."""
    files: dict[str, str] = {}
    index = ["| variant | M | M* | file |", "|---|---|---|---|"]
    for variant, M, Ms, equations in shipped:
        model = make_model(variant, M=M, M_star=Ms)
        path = f"statics/{variant}_M{M}_Mstar{Ms}.md"
        files[path] = statics_markdown(model, equations=equations)
        index.append(f"| `{variant}` | {M} | {Ms} | [{path[8:]}]({path[8:]}) |")
    files["statics/README.md"] = README + "\n".join(index) + "\n"
    return files


def write_statics_derivations(out) -> list[pathlib.Path]:
    """Write ``<out>/statics/``; returns the files written."""
    out = pathlib.Path(out)
    written = []
    for rel, text in statics_derivation_files().items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
