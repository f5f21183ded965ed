# --- integrator template (symvae.codegen): appended to every generated ODE module; uses its rhs_into and the
# program_eval of templates/program.py. p is the caller's parameter vector; a non-empty program (code, consts) maps
# (t, p) to the parameters of rhs_into before each evaluation (time-dependent parameters such as a beta(t) schedule);
# an empty one passes p through unchanged. ---
# Dormand-Prince 8(5,3) with the tableau of scipy.integrate.DOP853 and scipy's error norm and step control
# (Hairer, Norsett & Wanner, Solving ODEs I, sec. II.10). Steps are shortened to land exactly on each t_eval.
# The coefficients are written out (scipy's values, checked equal by tests/test_kernels.py) so that loading a
# generated module needs no scipy.
_A = numpy.array(
    [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.05260015195876773, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0], [0.0197250569845379, 0.0591751709536137, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0], [0.02958758547680685, 0.0, 0.08876275643042054, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.2413651341592667, 0.0, -0.8845494793282861, 0.924834003261792, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.037037037037037035, 0.0, 0.0, 0.17082860872947386, 0.12546768756682242, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.037109375, 0.0, 0.0, 0.17025221101954405, 0.06021653898045596, -0.017578125, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.03709200011850479, 0.0, 0.0, 0.17038392571223998, 0.10726203044637328, -0.015319437748624402,
    0.008273789163814023, 0.0, 0.0, 0.0, 0.0, 0.0], [0.6241109587160757, 0.0, 0.0, -3.3608926294469414,
    -0.868219346841726, 27.59209969944671, 20.154067550477894, -43.48988418106996, 0.0, 0.0, 0.0, 0.0],
    [0.47766253643826434, 0.0, 0.0, -2.4881146199716677, -0.590290826836843, 21.230051448181193, 15.279233632882423,
    -33.28821096898486, -0.020331201708508627, 0.0, 0.0, 0.0], [-0.9371424300859873, 0.0, 0.0, 5.186372428844064,
    1.0914373489967295, -8.149787010746927, -18.52006565999696, 22.739487099350505, 2.4936055526796523,
    -3.0467644718982196, 0.0, 0.0], [2.273310147516538, 0.0, 0.0, -10.53449546673725, -2.0008720582248625,
    -17.9589318631188, 27.94888452941996, -2.8589982771350235, -8.87285693353063, 12.360567175794303,
    0.6433927460157636, 0.0]])
_B = numpy.array(
    [0.054293734116568765, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
    0.3111643669578199, -0.1521609496625161, 0.20136540080403034, 0.04471061572777259])
_C = numpy.array(
    [0.0, 0.05260015195876773, 0.0789002279381516, 0.1183503419072274, 0.2816496580927726, 0.3333333333333333, 0.25,
    0.3076923076923077, 0.6512820512820513, 0.6, 0.8571428571428571, 1.0])
_E3 = numpy.array(
    [-0.18980075407240762, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
    -0.4226823213237919, -0.1521609496625161, 0.20136540080403034, 0.02265179219836082, 0.0])
_E5 = numpy.array(
    [0.01312004499419488, 0.0, 0.0, 0.0, 0.0, -1.2251564463762044, -0.4957589496572502, 1.6643771824549864,
    -0.35032884874997366, 0.3341791187130175, 0.08192320648511571, -0.022355307863886294, 0.0])

STATUS_OK, STATUS_DIVERGED, STATUS_STEP_TOO_SMALL, STATUS_MAX_STEPS, STATUS_RUNNING = 0, 1, 2, 3, 4
STATUS_PROGRAM = 5  # the program's parameters are not finite at the time reached (returned as t)


@njit(cache=True, error_model="numpy")
def _rhs_at(t, y, p, code, consts, pin, out):
    """F(t, y) into ``out`` with the parameters the program gives at t (``pin``: work array); False if one of them is
    not finite (``out`` is then not computed)."""
    if code.shape[0] == 0:
        rhs_into(t, y, p, out)
        return True
    if program_eval(code, consts, t, p, pin) >= 0:
        return False
    rhs_into(t, y, pin, out)
    return True


@njit(cache=True, error_model="numpy")
def _rms(x):
    # a sequential sum, as numba's numpy.sum: numpy's own (pairwise) sum would round differently in plain-Python mode
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] * x[i]
    return math.sqrt(acc / x.shape[0])


@njit(cache=True, error_model="numpy")
def _initial_step(t0, y0, f0, p, code, consts, pin, rtol, atol):
    n = y0.shape[0]
    scale = atol + numpy.abs(y0) * rtol
    d0 = _rms(y0 / scale)
    d1 = _rms(f0 / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    y1 = y0 + h0 * f0
    f1 = numpy.empty(n)
    if not _rhs_at(t0 + h0, y1, p, code, consts, pin, f1):
        return h0  # the program fails within h0 of t0: the first step reports where
    d2 = _rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / 8.0)
    return min(100.0 * h0, h1)


@njit(cache=True, error_model="numpy")
def integrate_start(t0, y0, p, code, consts, t_eval, rtol, atol, h0, y_eval, counts):
    """First part of an integration: F(t0, y0), the output times already reached, the initial step size.

    Fills ``y_eval`` rows reached; ``counts`` (int64[3]: evaluations, accepted, rejected steps) is updated.
    Returns (status, y, f, h, k_eval): status STATUS_RUNNING, or STATUS_OK if every output time is t0, or
    STATUS_DIVERGED if y0 or F(t0, y0) is not finite, or STATUS_PROGRAM if the program fails at t0.
    """
    n = y0.shape[0]
    n_eval = t_eval.shape[0]
    y = y0.copy()
    f = numpy.empty(n)
    pin = numpy.empty(N_PARAM)
    if not _rhs_at(t0, y, p, code, consts, pin, f):
        return STATUS_PROGRAM, y, f, 0.0, 0
    counts[0] += 1
    k_eval = 0
    while k_eval < n_eval and t_eval[k_eval] <= t0:
        y_eval[k_eval] = y
        k_eval += 1
    if k_eval == n_eval:
        return STATUS_OK, y, f, 0.0, k_eval
    for i in range(n):
        if not math.isfinite(y[i]) or not math.isfinite(f[i]):
            return STATUS_DIVERGED, y, f, 0.0, k_eval
    h = h0
    if not h0 > 0:
        h = _initial_step(t0, y, f, p, code, consts, pin, rtol, atol)
        counts[0] += 1
    return STATUS_RUNNING, y, f, h, k_eval


@njit(cache=True, error_model="numpy")
def integrate_piece(t, y, f, h, p, code, consts, t_eval, y_eval, k_eval, rtol, atol, max_steps, step_limit, blowup,
                    counts):
    """Continue an integration from (t, y) with F = ``f`` and proposed step ``h`` (``y`` and ``f`` updated in place)
    until the last output time, a failure, ``max_steps`` accepted steps in all, or ``step_limit`` accepted steps in
    this call. Pieces resumed with the returned state compute exactly what one uninterrupted call computes.

    Returns (status, t, h, k_eval, t_steps, y_steps): the accepted steps of this piece, ``y_eval`` rows filled up to
    ``k_eval``; status STATUS_RUNNING when the piece ended at ``step_limit``, STATUS_PROGRAM (t: where) when the
    program's parameters are not finite at a stage.
    """
    n = y.shape[0]
    n_eval = t_eval.shape[0]
    cap = 256
    t_rec = numpy.empty(cap)
    y_rec = numpy.empty((cap, n))
    K = numpy.empty((13, n))
    ytmp = numpy.empty(n)
    pin = numpy.empty(N_PARAM)
    n_rec = 0
    taken = 0
    while True:
        if counts[1] >= max_steps:
            return STATUS_MAX_STEPS, t, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
        if taken >= step_limit:
            return STATUS_RUNNING, t, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
        min_step = 10.0 * (numpy.nextafter(t, numpy.inf) - t)
        if not h >= min_step:
            return STATUS_STEP_TOO_SMALL, t, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
        t_target = t_eval[k_eval]
        landing = t + h >= t_target
        hh = t_target - t if landing else h
        # stages
        K[0] = f
        for s in range(1, 12):
            for i in range(n):
                acc = 0.0
                for j in range(s):
                    acc += _A[s, j] * K[j, i]
                ytmp[i] = y[i] + hh * acc
            if not _rhs_at(t + _C[s] * hh, ytmp, p, code, consts, pin, K[s]):
                return STATUS_PROGRAM, t + _C[s] * hh, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
        y_new = numpy.empty(n)
        for i in range(n):
            acc = 0.0
            for j in range(12):
                acc += _B[j] * K[j, i]
            y_new[i] = y[i] + hh * acc
        if not _rhs_at(t + hh, y_new, p, code, consts, pin, K[12]):
            return STATUS_PROGRAM, t + hh, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
        counts[0] += 12
        err5 = 0.0
        err3 = 0.0
        for i in range(n):
            scale = atol + max(abs(y[i]), abs(y_new[i])) * rtol
            e5 = 0.0
            e3 = 0.0
            for j in range(13):
                e5 += _E5[j] * K[j, i]
                e3 += _E3[j] * K[j, i]
            err5 += (e5 / scale) ** 2
            err3 += (e3 / scale) ** 2
        if err5 == 0.0 and err3 == 0.0:
            err = 0.0
        else:
            err = hh * err5 / math.sqrt((err5 + 0.01 * err3) * n)
        if not math.isfinite(err):
            counts[2] += 1
            h = 0.2 * hh
            continue
        if err < 1.0:
            factor = 10.0 if err == 0.0 else min(10.0, 0.9 * err ** (-1.0 / 8.0))
            t = t_target if landing else t + hh
            for i in range(n):
                y[i] = y_new[i]
                f[i] = K[12, i]
            counts[1] += 1
            taken += 1
            if n_rec == cap:
                cap *= 2
                t_new_rec = numpy.empty(cap)
                y_new_rec = numpy.empty((cap, n))
                t_new_rec[:n_rec] = t_rec[:n_rec]
                y_new_rec[:n_rec] = y_rec[:n_rec]
                t_rec = t_new_rec
                y_rec = y_new_rec
            t_rec[n_rec] = t
            y_rec[n_rec] = y
            n_rec += 1
            for i in range(n):
                if not math.isfinite(y[i]) or abs(y[i]) > blowup or not math.isfinite(f[i]):
                    return STATUS_DIVERGED, t, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
            while k_eval < n_eval and t_eval[k_eval] <= t:
                y_eval[k_eval] = y
                k_eval += 1
            if k_eval == n_eval:
                return STATUS_OK, t, h, k_eval, t_rec[:n_rec], y_rec[:n_rec]
            # after a step shortened to land on t_eval, resume with the step size proposed before it
            if not (landing and hh < h):
                h = hh * factor
        else:
            counts[2] += 1
            h = hh * max(0.2, 0.9 * err ** (-1.0 / 8.0))
