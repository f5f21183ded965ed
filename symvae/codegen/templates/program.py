# --- runtime programs (symvae.codegen._schedule): appended to generated modules; no model-specific code ---
# A program maps (t, p) to a parameter vector ``out``: a stack machine over rows (op, argument) of ``code`` with the
# numbers in ``consts``. A time-dependent parameter (a beta(t) schedule) is such a program, so a new schedule expression
# is new data for the same compiled functions, never new code. Opcodes: see symvae/codegen/_schedule.py.
# The math functions are ``math``'s (libm, as numba's ``numpy.*`` on scalars): the plain-Python load of a module
# then computes the same bits as its numba load (numpy's own tanh, sin ... may differ in the last bit).
@njit(cache=True, error_model="numpy")
def program_eval(code, consts, t, p, out):
    """Run the program; returns -1, or the index of the first output it stored that is not finite (division by
    zero, log or sqrt of a negative number, an uncovered Piecewise ...)."""
    stack = numpy.empty(code.shape[0] + 1)
    n = 0
    bad = -1
    for k in range(code.shape[0]):
        op = code[k, 0]
        a = code[k, 1]
        if op == 0:
            stack[n] = consts[a]
            n += 1
        elif op == 1:
            stack[n] = t
            n += 1
        elif op == 2:
            stack[n] = p[a]
            n += 1
        elif op == 3:
            n -= 1
            out[a] = stack[n]
            if bad < 0 and not math.isfinite(stack[n]):
                bad = a
        elif op < 20:  # binary
            n -= 1
            x = stack[n - 1]
            y = stack[n]
            if op == 10:
                r = x + y
            elif op == 11:
                r = x - y
            elif op == 12:
                r = x * y
            elif op == 13:
                r = x / y if y != 0.0 else (numpy.nan if x == 0.0 or x != x else numpy.inf)
            elif op == 14:
                r = x ** y  # C pow in numba; the plain-Python load rewrites it to the same (codegen._jit)
            elif op == 15:
                r = min(x, y) if (x == x and y == y) else numpy.nan
            elif op == 16:
                r = max(x, y) if (x == x and y == y) else numpy.nan
            elif x != x or y != y:  # comparisons: nan stays nan
                r = numpy.nan
            elif op == 17:
                r = 1.0 if x < y else 0.0
            elif op == 18:
                r = 1.0 if x <= y else 0.0
            else:
                r = 1.0 if x == y else 0.0
            stack[n - 1] = r
        elif op < 40:  # unary
            x = stack[n - 1]
            if op == 20:
                r = -x
            elif op == 21:
                r = math.exp(x)
            elif op == 22:
                r = math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else numpy.nan)
            elif op == 23:
                r = math.sqrt(x) if x >= 0.0 else numpy.nan
            elif op == 24:
                r = math.tanh(x)
            elif op == 25:
                r = math.sinh(x)
            elif op == 26:
                r = math.cosh(x)
            elif op == 27:
                r = math.sin(x)
            elif op == 28:
                r = math.cos(x)
            elif op == 29:
                r = math.atan(x)
            elif op == 30:
                r = abs(x)
            elif op == 31:
                r = math.erf(x)
            elif op == 32:  # not (of a 0/1 truth value)
                r = x if x != x else 1.0 - x
            else:  # 33: Heaviside with H(0) = 1/2 (SymPy's)
                r = x if x != x else (1.0 if x > 0.0 else (0.0 if x < 0.0 else 0.5))
            stack[n - 1] = r
        else:  # 40: select(condition, then, else); a nan condition is nan
            n -= 2
            c = stack[n - 1]
            stack[n - 1] = numpy.nan if c != c else (stack[n] if c != 0.0 else stack[n + 1])
    return bad
