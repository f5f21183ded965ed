"""Speed of fixed points, continuation and thresholds (medians of repeated runs, after compilation).

1. A threshold to 50 digits (target <= 0.5 s) and to 100 digits (target <= 2 s), base model M = M* = 1, collapse
   (lam = 0.1, tau = 0.2) and noise (tau = 0.01): detection by continuation + mpmath refinement + verification at a
   higher precision (+ the SymPy closed form, cached after the first call).
2. A 200-point float64 continuation of the learned branch (target <= 0.5 s).
3. Precision per second: symvae's verified digits per second against bisection on the sign of the leading
   eigenvalue in float64 (each bisection step: Newton onto the branch, then the spectrum), digits counted against
   the 100-digit value.

4. Statics thresholds (base model, 30 digits): the cost of certification per threshold and method, i.e. the time
   with the Krawczyk test against the uncertified time (target <= 2x), MET/MISSED; the load average is printed.
   Methods: closed-form (the random-matrix closed form; the interior eg peak and the optimal beta are certified on
   the augmented saddle system) and saddle (the replica saddle-point system alone).

Run: python bench/bench_thresholds.py          (all sections)
     python bench/bench_thresholds.py statics  (section 4 only)
"""
import os
import statistics
import sys
import time

import mpmath
import numpy as np

import symvae
from symvae.numerics._continuation import continue_branch
from symvae.numerics._fixed_points import collapsed_start, find_fixed_points, fixed_point
from symvae.numerics._systems import as_compiled
from symvae.numerics._thresholds import threshold

BASE = dict(beta=1.0, eta=1.0, lam=0.0, rho=1.0, tau=0.01)
CASES = {"collapse": dict(BASE, lam=0.1, tau=0.2), "noise": dict(BASE)}


def median_time(f, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_thresholds(compiled):
    print("1. thresholds (median of 5, after one warm-up call); certification = Krawczyk enclosure (target <= 2x)")
    print(f"   {'threshold':9s} {'digits':>6s} {'total s':>8s} {'no closed form s':>17s} {'uncertified s':>14s} "
          f"{'cert. ratio':>11s} {'target s':>8s}  value")
    results = {}
    for name, params in CASES.items():
        for digits, target in ((50, 0.5), (100, 2.0)):
            threshold(name, compiled, params, digits=digits)  # warm-up: augmented module, closed-form cache
            t_all, r = median_time(lambda: threshold(name, compiled, params, digits=digits))
            t_num, _ = median_time(lambda: threshold(name, compiled, params, digits=digits, closed_form=False))
            t_unc, _ = median_time(lambda: threshold(name, compiled, params, digits=digits, closed_form=False,
                                                     certify=False))
            assert r.status == "verified" and r.certified, r.message
            results[(name, digits)] = (t_all, r)
            flag = "ok" if t_all <= target else "SLOW"
            cert = "ok" if t_num <= 2 * t_unc else "COSTLY"
            print(f"   {name:9s} {digits:6d} {t_all:8.3f} {t_num:17.3f} {t_unc:14.3f} {t_num / t_unc:8.2f} {cert:>2s} "
                  f"{target:8.1f}  {r.text[:24]}...  {flag}")
    return results


def bench_continuation(compiled):
    params = dict(BASE, beta=0.05)
    found = find_fixed_points(compiled, params, closed_forms=False)
    start = [p for p in found.of_kind("learned") if p.image == "identity"][0]
    run = lambda: continue_branch(compiled, start, params, "beta", 1.95, max_step=0.0125)  # noqa: E731
    run()
    t, branch = median_time(run, repeats=7)
    per_point = t / len(branch)
    print(f"2. continuation of the learned branch beta 0.05 -> 1.95: {len(branch)} points, {t:.3f} s "
          f"({per_point * 1e6:.0f} us/point; 200 points -> {200 * per_point:.3f} s, target 0.5 s)  "
          f"{'ok' if 200 * per_point <= 0.5 else 'SLOW'}; counts {dict(branch.counts)}")


def bench_precision_per_second(compiled, reference):
    """Bisection on the sign of the leading eigenvalue of the collapsed point, float64."""
    params = CASES["collapse"]
    p = compiled.system.param_vector(params)
    x = collapsed_start(compiled.system)

    def leading(beta):
        nonlocal x
        q = p.copy()
        q[0] = beta
        point = fixed_point(compiled, x, dict(params, beta=beta))  # Newton onto the branch, as for any branch
        x = point.x
        return point.leading_eigenvalue.real

    def bisect():
        lo, hi = 1.0, 3.0
        f_lo = leading(lo)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            f_mid = leading(mid)
            if np.sign(f_mid) == np.sign(f_lo):
                lo, f_lo = mid, f_mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    t_bis, value = median_time(bisect, repeats=3)
    with mpmath.workdps(110):
        rel = abs(mpmath.mpf(value) - reference.value) / reference.value
        digits_bis = float(-mpmath.log10(rel)) if rel > 0 else 16.0
    print("3. precision per second (collapse threshold, lam = 0.1, tau = 0.2)")
    print(f"   float64 bisection on the sign of the leading eigenvalue: {digits_bis:.1f} digits in {t_bis:.3f} s "
          f"= {digits_bis / t_bis:.0f} digits/s (cannot go beyond float64)")
    return digits_bis / t_bis


STATICS_CASES = (("collapse", dict(rho=1.0, eta=1.0, lam=0.3), 2.0),
                 ("detection", dict(rho=2.0, eta=3.0), None),
                 ("eg_peak", dict(rho=1.0, eta=1.0, lam=0.3, beta=1.0), None),
                 ("optimal_beta", dict(rho=1.0, eta=1.0, lam=0.0), 4.0))


def _batched(f, n):
    t0 = time.perf_counter()
    for _ in range(n):
        out = f()
    return (time.perf_counter() - t0) / n, out


def bench_statics_certification(digits=30, repeats=5, min_batch=0.1):
    """Certified and uncertified runs alternate (batches of at least ``min_batch`` s, so that sub-millisecond
    thresholds are timed over many calls), and the ratio is that of the two medians."""
    from symvae.statics import statics_threshold
    model = symvae.make_model("base")
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"4. statics thresholds to {digits} digits: certified vs uncertified time per call (median of {repeats} "
          f"alternating batches of >= {min_batch} s, after one warm-up call; target ratio <= 2x; load average "
          f"{load})")
    print(f"   {'threshold':13s} {'method':12s} {'certified s':>11s} {'uncertified s':>13s} {'ratio':>6s}  "
          f"{'digits':>6s}  verdict")
    missed = 0
    for name, params, alpha in STATICS_CASES:
        for method in ("closed-form", "saddle"):
            def run(certify):
                return statics_threshold(name, model, params, alpha, digits, certify=certify, method=method)
            t0 = time.perf_counter()
            warm = run(True)
            run(False)
            n = max(1, int(min_batch / max(time.perf_counter() - t0, 1e-9) * 2))
            certified, uncertified = [], []
            for _ in range(repeats):
                t_c, r = _batched(lambda: run(True), n)
                t_u, _ = _batched(lambda: run(False), n)
                certified.append(t_c)
                uncertified.append(t_u)
            t_c, t_u = statistics.median(certified), statistics.median(uncertified)
            ratio = t_c / t_u
            ok = ratio <= 2.0 and r.certified
            missed += not ok
            note = "" if r.certified else f"  (not certified: {r.message[-80:]})"
            print(f"   {name:13s} {method:12s} {t_c:11.5f} {t_u:13.5f} {ratio:6.2f}  {r.digits:6d}  "
                  f"{'MET' if ok else 'MISSED'}{note}")
            assert warm.status == "verified", warm.message
    return missed


def main():
    if sys.argv[1:] == ["statics"]:
        bench_statics_certification()
        return
    base = symvae.derive_dynamics(symvae.make_model("base"))
    t0 = time.perf_counter()
    compiled = as_compiled(base)
    compiled.jac(0.0, collapsed_start(base), base.param_vector(BASE))
    print(f"(compilation / cache load: {time.perf_counter() - t0:.2f} s, not counted below)")
    results = bench_thresholds(compiled)
    bench_continuation(compiled)
    rate_bis = bench_precision_per_second(compiled, results[("collapse", 100)][1])
    for digits in (50, 100):
        t, r = results[("collapse", digits)]
        rate = r.digits / t
        print(f"   symvae threshold to {digits} verified digits: {rate:.0f} digits/s = {rate / rate_bis:.1f}x the "
              f"bisection rate, and {r.digits / 16:.1f}x its attainable precision")
    bench_statics_certification()


if __name__ == "__main__":
    main()
