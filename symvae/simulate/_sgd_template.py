# --- online-SGD simulator template (symvae.simulate): appended to a generated module as text, never imported ---
# The generated part above defines grad_into(t, y, p, out) and the layout constants (slots of y, offsets of out).
# Rows of a vector array V (K x N): the M* teacher vectors W*_k, then the trainable vectors (W_i, then W~_i).
import math as _math

import mpmath as _mpmath
import numpy as _np
from numba import njit as _njit

STATUS_OK, STATUS_DIVERGED, STATUS_DOMAIN, STATUS_RUNNING = 0, 1, 2, 3
STATUS_PROGRAM = 4  # a time-dependent parameter (program_eval of templates/program.py) is not finite at the step

# reassociation lets LLVM vectorise the reductions; no nnan/ninf, so the isfinite checks survive
_FM = {"reassoc", "contract", "nsz"}


# ------------------------------------------------------------------ random numbers
# SFC64 (C. Doty-Humphrey), the same stream as numpy.random.SFC64 for the same state, and the 256-layer ziggurat of
# Marsaglia & Tsang (J. Stat. Softw. 5(8), 2000) in numpy's variant (52-bit uniforms, numpy.random.Generator).
def _ziggurat_tables():
    """Layer tables (ki, wi, fi) of the 256-layer normal ziggurat, computed in 40-digit arithmetic."""
    with _mpmath.workdps(40):
        r = _mpmath.mpf("3.6541528853610088")
        f = lambda x: _mpmath.exp(-x * x / 2)  # noqa: E731
        v = r * f(r) + _mpmath.sqrt(_mpmath.pi / 2) * _mpmath.erfc(r / _mpmath.sqrt(2))  # area of each layer
        m1 = _mpmath.mpf(2) ** 52
        ki = [0] * 256
        wi = [_mpmath.mpf(0)] * 256
        fi = [_mpmath.mpf(0)] * 256
        q = v / f(r)
        ki[0] = int(_mpmath.floor(r / q * m1))
        wi[0], wi[255] = q / m1, r / m1
        fi[0], fi[255] = _mpmath.mpf(1), f(r)
        dn = tn = r
        for i in range(254, 0, -1):
            dn = _mpmath.sqrt(-2 * _mpmath.log(v / dn + f(dn)))
            ki[i + 1] = int(_mpmath.floor(dn / tn * m1))
            tn = dn
            fi[i], wi[i] = f(dn), dn / m1
        return (_np.array(ki, dtype=_np.uint64), _np.array([float(w) for w in wi]),
                _np.array([float(x) for x in fi]), float(r), float(1 / r))


ZIG_KI, ZIG_WI, ZIG_FI, ZIG_R, ZIG_INV_R = _ziggurat_tables()
_U1, _U3, _U8, _U11, _U24, _U40 = (_np.uint64(k) for k in (1, 3, 8, 11, 24, 40))
_UFF = _np.uint64(0xFF)
_M52 = _np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 1.0 / 9007199254740992.0


@_njit(cache=True, inline="always")
def sfc64_next(st):
    """Next 64-bit output of the SFC64 state ``st`` (uint64[4], updated in place)."""
    a, b, c, w = st[0], st[1], st[2], st[3]
    tmp = a + b + w
    st[3] = w + _U1
    st[0] = b ^ (b >> _U11)
    st[1] = c + (c << _U3)
    st[2] = ((c << _U24) | (c >> _U40)) + tmp
    return tmp


@_njit(cache=True, inline="always")
def _next_double(st):
    return _np.float64(sfc64_next(st) >> _U11) * _TWO_M53


@_njit(cache=True)
def _normal_slow(st, idx, rabs, x):
    # the rare ziggurat branches (0.7 % of draws): wedges and the tail beyond r
    while True:
        if idx == 0:
            while True:
                xx = -ZIG_INV_R * _math.log1p(-_next_double(st))
                yy = -_math.log1p(-_next_double(st))
                if yy + yy > xx * xx:
                    return -(ZIG_R + xx) if ((rabs >> _U8) & _U1) == _U1 else ZIG_R + xx
        elif (ZIG_FI[idx - 1] - ZIG_FI[idx]) * _next_double(st) + ZIG_FI[idx] < _math.exp(-0.5 * x * x):
            return x
        r = sfc64_next(st)
        idx = _np.int64(r & _UFF)
        r = r >> _U8
        rabs = (r >> _U1) & _M52
        x = _np.float64(rabs) * ZIG_WI[idx]
        if (r & _U1) == _U1:
            x = -x
        if rabs < ZIG_KI[idx]:
            return x


@_njit(cache=True, inline="always")
def standard_normal(st):
    """One N(0, 1) draw from the SFC64 state ``st``."""
    r = sfc64_next(st)
    idx = _np.int64(r & _UFF)
    r = r >> _U8
    rabs = (r >> _U1) & _M52
    x = _np.float64(rabs) * ZIG_WI[idx]
    if (r & _U1) == _U1:
        x = -x
    if rabs < ZIG_KI[idx]:
        return x
    return _normal_slow(st, idx, rabs, x)


@_njit(cache=True)
def fill_standard_normal(st, out):
    """Fill ``out`` with N(0, 1) draws; the same stream as repeated ``standard_normal(st)``, about twice as fast."""
    # the state lives in registers here: through the array, each draw would wait on a store-to-load round trip
    a, b, c, w = st[0], st[1], st[2], st[3]
    for i in range(out.shape[0]):
        r = a + b + w
        w = w + _U1
        a = b ^ (b >> _U11)
        b = c + (c << _U3)
        c = ((c << _U24) | (c >> _U40)) + r
        idx = _np.int64(r & _UFF)
        r = r >> _U8
        rabs = (r >> _U1) & _M52
        x = _np.float64(rabs) * ZIG_WI[idx]
        if (r & _U1) == _U1:
            x = -x
        if rabs < ZIG_KI[idx]:
            out[i] = x
        else:
            st[0], st[1], st[2], st[3] = a, b, c, w
            out[i] = _normal_slow(st, idx, rabs, x)
            a, b, c, w = st[0], st[1], st[2], st[3]
    st[0], st[1], st[2], st[3] = a, b, c, w


# ------------------------------------------------------------------ linear algebra on rows
@_njit(cache=True, fastmath=_FM)
def _dot(a, b):
    acc = 0.0
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@_njit(cache=True)
def _axpy(alpha, x, y):
    for i in range(y.shape[0]):
        y[i] += alpha * x[i]


@_njit(cache=True)
def gram(V, out):
    """out = V V^T / N for a (K, N) array of vectors."""
    K, N = V.shape
    for i in range(K):
        for j in range(i, K):
            out[i, j] = out[j, i] = _dot(V[i], V[j]) / N


@_njit(cache=True)
def refresh_overlaps(V, z, all_pairs):
    """Write the overlaps the gradient needs (or all of them) into their input slots; False if one is not finite."""
    N = V.shape[1]
    for k in range(OVL_SLOT.shape[0]):
        if all_pairs or OVL_NEEDED[k]:
            value = _dot(V[OVL_ROW_U[k]], V[OVL_ROW_V[k]]) / N
            z[OVL_SLOT[k]] = value
            if not _math.isfinite(value):
                return False
    return True


# ------------------------------------------------------------------ one SGD step
@_njit(cache=True)
def sgd_step(t, V, V_new, X, z, p, out, A, C, G):
    """One SGD step on the mini-batch ``X`` (b, N): writes the trained rows of ``V_new`` and updates the scalar slots.

    The gradient of the per-sample loss w.r.t. trainable vector v is a_v x/sqrt(N) + sum_w c_vw w/N (a, c from the
    generated ``grad_into``), averaged over the b samples; v <- v - step_v * gradient, scalar s <- s - step_s * dL/ds.
    Expects the needed overlap slots of ``z`` to hold the overlaps of ``V``. Returns a status code.
    """
    b, N = X.shape
    inv_sqrt_N = 1.0 / _math.sqrt(N)
    z[N_SLOT] = N
    C[:, :] = 0.0
    G[:] = 0.0
    for s in range(b):
        x = X[s]
        for f in range(FIELD_SLOT.shape[0]):
            z[FIELD_SLOT[f]] = _dot(V[FIELD_ROW[f]], x) * inv_sqrt_N
        if XSQ_SLOT >= 0:
            z[XSQ_SLOT] = _dot(x, x)
        grad_into(t, z, p, out)
        for k in range(N_OUT):
            if not _math.isfinite(out[k]):
                return STATUS_DIVERGED
        for v in range(N_TRAIN):
            A[s, v] = out[OFF_A + v]
            for w in range(N_TRAIN):
                C[v, w] += out[OFF_C + v * N_TRAIN + w]
        for k in range(N_SCAL):
            G[k] += out[OFF_G + k]
    for v in range(N_TRAIN):
        row = M_STAR + v
        step = out[OFF_STEP_V + v]
        dst = V_new[row]
        src = V[row]
        for i in range(N):
            dst[i] = src[i]
        for s in range(b):
            coef = -step * A[s, v] * inv_sqrt_N / b
            if coef != 0.0:
                _axpy(coef, X[s], dst)
        for w in range(N_TRAIN):
            coef = -step * C[v, w] / (b * N)
            if coef != 0.0:
                _axpy(coef, V[M_STAR + w], dst)
    for k in range(N_SCAL):
        z[SCAL_SLOT[k]] -= out[OFF_STEP_S + k] * G[k] / b
        if not _math.isfinite(z[SCAL_SLOT[k]]):
            return STATUS_DIVERGED
        if SCAL_POSITIVE[k] and z[SCAL_SLOT[k]] <= 0.0:
            return STATUS_DOMAIN
    return STATUS_OK


# ------------------------------------------------------------------ data and one run
@_njit(cache=True)
def sample_batch(V, st, signal_scale, sqrt_eta, X, c):
    """Fill the rows of X with fresh samples x = sum_k sqrt(rho_k/N) W*_k c_k + sqrt(eta) n (W*_k = V[k])."""
    N = X.shape[1]
    for s in range(X.shape[0]):
        for k in range(M_STAR):
            c[k] = signal_scale[k] * standard_normal(st)
        x = X[s]
        fill_standard_normal(st, x)
        for i in range(N):
            x[i] *= sqrt_eta
        for k in range(M_STAR):
            _axpy(c[k], V[k], x)


@_njit(cache=True, nogil=True)
def run_seed(V, z, p, st, signal_scale, sqrt_eta, b, record_steps, check_every, blowup, gram_out, scal_out,
             step, k_rec, step_limit, pcode, pconsts):
    """Online SGD of one seed from the vectors ``V`` (K, N) and scalar slots of ``z``, fresh samples from ``st``,
    resumable: runs from ``step`` (with ``k_rec`` records already written) until every record is written or
    ``step_limit`` is reached. ``V``, ``z`` and ``st`` are updated in place, so a run cut into pieces at any steps
    is the same computation as one uninterrupted run, bit for bit.

    Records V V^T/N and the learned scalars at the steps ``record_steps`` (non-decreasing) into ``gram_out`` and
    ``scal_out``. Returns (status, step reached, number of records written); status ``STATUS_RUNNING`` means the
    step limit was reached first. ``signal_scale[k]`` = sqrt(rho_k/N). A non-empty program (``pcode``,
    ``pconsts``) gives the parameters of each step from ``p`` and the step's time t = step / N (a beta(t) schedule);
    an empty one uses ``p`` as it is.
    """
    K, N = V.shape
    n_rec = record_steps.shape[0]
    # private copies of the small per-seed arrays written at every step: neighbouring seeds' rows share cache lines,
    # and seeds run on different threads would otherwise contend for them (false sharing)
    z_caller, st_caller = z, st
    z = z_caller.copy()
    st = st_caller.copy()
    V_cur = V
    V_new = V.copy()
    X = _np.empty((b, N))
    A = _np.empty((b, N_TRAIN))
    C = _np.empty((N_TRAIN, N_TRAIN))
    G = _np.empty(max(N_SCAL, 1))
    out = _np.empty(N_OUT)
    c = _np.empty(M_STAR)
    g = _np.empty((K, K))
    scheduled = pcode.shape[0] > 0
    p_step = _np.empty(N_PARAM) if scheduled else p
    z[N_SLOT] = N
    if step == 0:
        refresh_overlaps(V_cur, z, True)  # later pieces find the overlaps left in z by the previous step
    step0 = step
    status = STATUS_RUNNING
    while True:
        if step % check_every == 0 or (k_rec < n_rec and record_steps[k_rec] == step):
            gram(V_cur, g)
            diverged = False
            for i in range(K):
                if not (g[i, i] < blowup):  # also catches NaN
                    diverged = True
            if diverged:
                status = STATUS_DIVERGED
                break
            while k_rec < n_rec and record_steps[k_rec] == step:
                gram_out[k_rec] = g
                for k in range(N_SCAL):
                    scal_out[k_rec, k] = z[SCAL_SLOT[k]]
                k_rec += 1
        if k_rec == n_rec:
            status = STATUS_OK
            break
        if step >= step_limit:
            break
        if scheduled and program_eval(pcode, pconsts, step / N, p, p_step) >= 0:
            status = STATUS_PROGRAM
            break
        sample_batch(V_cur, st, signal_scale, sqrt_eta, X, c)
        status = sgd_step(step / N, V_cur, V_new, X, z, p_step, out, A, C, G)
        if status != STATUS_OK:
            break
        V_cur, V_new = V_new, V_cur
        step += 1
        status = STATUS_RUNNING
        if not refresh_overlaps(V_cur, z, False):
            status = STATUS_DIVERGED
            break
    if (step - step0) % 2 == 1:  # the current vectors live in the scratch array: hand them back in V
        V[:, :] = V_cur
    z_caller[:] = z
    st_caller[:] = st
    return status, step, k_rec


@_njit(cache=True, nogil=True)
def run_seeds(Vs, zs, p, states, signal_scale, sqrt_eta, b, record_steps, check_every, blowup, gram_out, scal_out,
              status, stop, written, pcode, pconsts, step_limit):
    """``run_seed`` for each seed still ``STATUS_RUNNING``, up to ``step_limit`` (arrays with a leading seed axis;
    ``status``, ``stop`` (step reached) and ``written`` (records) are read and updated). Releases the GIL, so
    disjoint slices of seeds run on several threads at once."""
    for s in range(Vs.shape[0]):
        if status[s] == STATUS_RUNNING:
            status[s], stop[s], written[s] = run_seed(Vs[s], zs[s], p, states[s], signal_scale, sqrt_eta, b,
                                                      record_steps, check_every, blowup, gram_out[s], scal_out[s],
                                                      stop[s], written[s], step_limit, pcode, pconsts)
