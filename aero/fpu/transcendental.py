"""x87 transcendental instructions on 80-bit images: F2XM1, FYL2X, FYL2XP1, FPTAN, FSIN, FCOS,
FSINCOS, FPATAN (SDM Vol. 1 8.3.9-8.3.10 and the instruction pages' special-case tables).

Results are computed from the exact operand with big-int fixed point to a working precision
that is raised until the rounding is certain (Ziv's strategy), so they are correctly rounded
(SDM: the x87 guarantees at most 1 ulp; correct rounding is within that) under RC, at 64 bits
whatever PC says (PC applies only to FADD/FSUB/FMUL/FDIV/FSQRT).  C1 is the round-up indicator,
PE is set for every inexact result.

FSIN, FCOS, FSINCOS and FPTAN reduce their argument as the x87 does, by multiples of pi/2 using
the 66-bit approximation of pi (SDM Vol. 1 8.3.10): the result is the correctly rounded value of
the function of (x - k * P/2), P = pi rounded to 66 bits, k = round(x / (P/2)).  Operands of
magnitude 2^63 or more are out of range: C2 is set and ST0 is unchanged.  FPATAN's results use
the exact pi.
"""

from fractions import Fraction

from . import float80 as F
from .float80 import (C1, C2, DE, IE, ZE, DENORMALS, INFINITY, UNSUPPORTED, ZERO,
                      classify, pack, round_to_80)

# pi to 66 significant bits (pi = 11.0010..., so 2 integer bits and 64 fraction bits)
P66 = Fraction((0xC90FDAA22168C234 << 2) | 3, 1 << 64)


def _pi_fixed(W):
    one = 1 << (W + 16)

    def atan_inv(n):
        total, power, k, n2 = 0, one // n, 0, n * n
        while power:
            term = power // (2 * k + 1)
            total += -term if k & 1 else term
            power //= n2
            k += 1
        return total
    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 16


def _ln2_fixed(W):
    one = 1 << (W + 16)
    total, power, k = 0, one // 3, 0
    while power:
        total += power // (2 * k + 1)
        power //= 9
        k += 1
    return (2 * total) >> 16


def _fix(q, W):
    """floor(q * 2**W) for a Fraction q."""
    return (q.numerator << W) // q.denominator


def _ilog2(q):
    """floor(log2 |q|) for a non-zero Fraction."""
    q = abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    elif Fraction(2) ** (e + 1) <= q:
        e += 1
    return e


def _value(v):
    s, m, e = F._parts(v)
    x = Fraction(m) * Fraction(2) ** e
    return -x if s else x


def _ziv(fn, cw, flags, W):
    """fn(W) -> (A, err, scale): the exact result lies strictly inside
    ((A - err) * 2**scale, (A + err) * 2**scale).  Raise W until both ends round alike (callers
    handle the exactly representable results first, so this ends; a bound on the rounds keeps a
    mistake from hanging the CPU: then the midpoint is rounded)."""
    for _ in range(12):
        A, err, sc = fn(W)
        lo, hi = A - err, A + err
        if lo > 0 or hi < 0:
            s = 1 if A < 0 else 0
            a, b = (lo, hi) if not s else (-hi, -lo)
            r1 = round_to_80(s, a, sc, True, cw, 64, flags)
            if r1 == round_to_80(s, b, sc, True, cw, 64, flags):
                return r1
        W += W // 2 + 64
    s = 1 if A < 0 else 0
    return round_to_80(s, abs(A), sc, True, cw, 64, flags)


# fixed-point series, all at scale 2**-W, truncating toward zero (so that every series ends);
# each returns (value, number of terms)

def _tz(x, d):
    """x / d truncated toward zero (d > 0)."""
    return x // d if x >= 0 else -((-x) // d)


def _expm1(t, W):
    """e**t - 1 for |t| <= 0.75."""
    total, term, k, one = 0, t, 1, 1 << W
    while term:
        total += term
        k += 1
        term = _tz(term * t, one * k)
    return total, k


def _atanh(z, W):
    if z < 0:
        a, n = _atanh(-z, W)
        return -a, n
    total, p, k, z2 = 0, z, 0, z * z >> W
    while p:
        total += p // (2 * k + 1)
        p = p * z2 >> W
        k += 1
    return total, k


def _atan_small(t, W):
    if t < 0:
        a, n = _atan_small(-t, W)
        return -a, n
    total, p, k, t2 = 0, t, 0, t * t >> W
    while p:
        term = p // (2 * k + 1)
        total += -term if k & 1 else term
        p = p * t2 >> W
        k += 1
    return total, k


def _sincos(r, W):
    """(sin r, cos r) for |r| <= pi/4 (fixed point)."""
    one = 1 << W
    r2 = r * r >> W
    s, term, k = 0, r, 1
    while term:
        s += term
        term = -_tz(term * r2, one * (k + 1) * (k + 2))
        k += 2
    c, term, j = 0, one, 0
    while term:
        c += term
        term = -_tz(term * r2, one * (j + 1) * (j + 2))
        j += 2
    return s, c, k + j


def _ln_fixed(q, W):
    """(ln q, error) at scale 2**-W for a positive Fraction q."""
    k = 0
    if not Fraction(1, 2) <= q <= 2:
        k = _ilog2(q)
        q = q / Fraction(2) ** k
    z = (q - 1) / (q + 1)
    a, n = _atanh(_fix(z, W), W)
    return 2 * a + k * _ln2_fixed(W), 2 * n + abs(k) + 8


def _lead(q):
    """How many bits below 1 the magnitude of q starts (>= 0)."""
    return max(0, -_ilog2(q)) + 2 if q else 0


# ----------------------------------------------------------------------------------------------

def _prologue(a, cw):
    """Shared special handling of one operand: (result tuple or None, class, flags)."""
    c = classify(a)
    if c in UNSUPPORTED:
        return F._invalid(cw), c, 0
    if c == F.SNAN:
        return ((F.quiet(a) if cw & IE else None), IE), c, 0
    if c == F.QNAN:
        return (a, 0), c, 0
    flags = DE if c in DENORMALS else 0
    if flags and not cw & DE:
        return (None, DE), c, flags
    return None, c, flags


def f2xm1(a, cw):
    """ST0 = 2**ST0 - 1 (defined by the SDM for -1 <= ST0 <= 1; computed for any value)."""
    r, c, flags = _prologue(a, cw)
    if r is not None:
        return r
    if c == ZERO:
        return a, flags
    if c == INFINITY:
        return (pack(1, F.BIAS, F.J_BIT) if a >> 79 else a), flags
    x = _value(a)
    if x == 1 or x == -1:
        return (F.ONE if x == 1 else pack(1, F.BIAS - 1, F.J_BIT)), flags
    if x > 16500:
        return round_to_80(0, 1, 16500, False, cw, 64, flags)
    x = max(x, Fraction(-400))
    n = round(x)
    f = x - n

    def fn(W):
        t = _fix(f, W) * _ln2_fixed(W) >> W
        e, terms = _expm1(t, W)
        one = 1 << W
        if n == 0:
            return e, 2 * terms + 8, -W
        v = e + one
        v = (v << n) if n > 0 else (v >> -n)
        return v - one, (2 * terms + 8) << max(n, 0), -W
    return _ziv(fn, cw, flags, 128 + _lead(x) + (2 if n else 0))


def _log2_times(y, q, cw, flags):
    """round(y * log2(q)) for Fractions y != 0 and q > 0, q != 1."""
    n, d = q.numerator, q.denominator
    if (n == 1 and d & (d - 1) == 0) or (d == 1 and n & (n - 1) == 0):
        exact = y * _ilog2(q)                 # log2 of a power of two: an exact product
        sign = 1 if exact < 0 else 0
        exact = abs(exact)
        k = exact.denominator.bit_length() - 1
        return round_to_80(sign, exact.numerator, -k, False, cw, 64, flags)
    lead = _lead(q - 1) if Fraction(1, 2) <= q <= 2 else 0

    def fn(W):
        ln, err = _ln_fixed(q, W)
        ln2 = _ln2_fixed(W)
        L = (ln << W) // ln2
        errL = err * 2 + 4
        # y * L: y = num / 2**k exactly (a binary value)
        num, den = y.numerator, y.denominator
        k = den.bit_length() - 1
        return L * num, errL * abs(num), -W - k
    return _ziv(fn, cw, flags, 128 + lead)


def fyl2x(a, b, cw):
    """ST1 * log2(ST0) with a = ST0, b = ST1; the caller pops and stores into ST1."""
    ca, cb = classify(a), classify(b)
    r = F._nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sa, sb = (a >> 79) & 1, (b >> 79) & 1
    if sa and ca != ZERO:
        return F._invalid(cw)
    xa = None if ca in (ZERO, INFINITY) else _value(a)
    if ca == ZERO and cb == ZERO:
        return F._invalid(cw)
    if xa == 1 and cb == INFINITY:
        return F._invalid(cw)
    if ca == INFINITY and cb == ZERO:
        return F._invalid(cw)
    if ca == ZERO and cb != INFINITY:
        if not cw & ZE:
            return None, ZE
        flags = ZE | (DE if cb in DENORMALS else 0)
        return pack(1 - sb, F.EXP_MAX, F.J_BIT), flags
    flags = F._denormal_check(cw, ca, cb)
    if flags and not cw & DE:
        return None, flags
    if ca == ZERO:                       # y = +-inf
        return pack(1 - sb, F.EXP_MAX, F.J_BIT), flags
    if ca == INFINITY:
        return pack(sb, F.EXP_MAX, F.J_BIT), flags
    if cb == INFINITY:
        return pack(sb ^ (xa < 1), F.EXP_MAX, F.J_BIT), flags
    if xa == 1:
        return pack(sb, 0, 0), flags
    if cb == ZERO:
        return pack(sb ^ (xa < 1), 0, 0), flags
    return _log2_times(_value(b), xa, cw, flags)


def fyl2xp1(a, b, cw):
    """ST1 * log2(ST0 + 1) with a = ST0, b = ST1 (defined for |ST0| < 1 - sqrt(2)/2)."""
    ca, cb = classify(a), classify(b)
    r = F._nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sa, sb = (a >> 79) & 1, (b >> 79) & 1
    if (ca == ZERO and cb == INFINITY) or (ca == INFINITY and cb == ZERO):
        return F._invalid(cw)
    if ca == INFINITY and sa:
        return F._invalid(cw)
    x = None if ca in (ZERO, INFINITY) else _value(a)
    if x is not None and x < -1:
        return F._invalid(cw)
    if x == -1:
        if cb == ZERO:
            return F._invalid(cw)
        if not cw & ZE:
            return None, ZE
        return pack(1 - sb, F.EXP_MAX, F.J_BIT), ZE
    flags = F._denormal_check(cw, ca, cb)
    if flags and not cw & DE:
        return None, flags
    if ca == INFINITY or cb == INFINITY:
        return pack(sa ^ sb, F.EXP_MAX, F.J_BIT), flags
    if ca == ZERO or cb == ZERO:
        return pack(sa ^ sb, 0, 0), flags
    return _log2_times(_value(b), 1 + x, cw, flags)


def _trig_prologue(a, cw):
    r, c, flags = _prologue(a, cw)
    if r is not None:
        return r, c, flags
    if c == INFINITY:
        return F._invalid(cw), c, flags
    if c != ZERO and ((a >> 64) & F.EXP_MAX) >= F.BIAS + 63:
        return (a, C2), c, flags           # out of range: C2 = 1, ST0 unchanged
    return None, c, flags


def _reduce(x):
    k = round(x / (P66 / 2))
    return x - k * (P66 / 2), k & 3


def _trig(x, which, cw, flags):
    """Correctly rounded sin/cos/tan of the 66-bit-pi-reduced argument."""
    r, q = _reduce(x)
    # which function of r gives the result, and its sign
    if which == "sin":
        fun, neg = (("s", False), ("c", False), ("s", True), ("c", True))[q]
    elif which == "cos":
        fun, neg = (("c", False), ("s", True), ("c", True), ("s", False))[q]
    else:
        fun, neg = (("t", False), ("k", True), ("t", False), ("k", True))[q]
    if r == 0:
        if fun in ("s", "t"):
            return pack(1 if neg else 0, 0, 0), flags
        if fun == "c":
            return pack(1 if neg else 0, F.BIAS, F.J_BIT), flags
    lead = _lead(r)

    def fn(W):
        s, c, terms = _sincos(_fix(r, W), W)
        err = 2 * terms + 8
        if fun == "s":
            v = s
        elif fun == "c":
            v = c
        elif fun == "t":
            v = (s << W) // c
            err = 4 * err
        else:
            v = (c << W) // s
            err = err * ((1 << W) // max(1, abs(s)) + 2) ** 2 * 4 + 4
        return (-v if neg else v), err, -W
    return _ziv(fn, cw, flags, 128 + 2 * lead)


def fsin(a, cw):
    r, c, flags = _trig_prologue(a, cw)
    if r is not None:
        return r
    if c == ZERO:
        return a, flags
    return _trig(_value(a), "sin", cw, flags)


def fcos(a, cw):
    r, c, flags = _trig_prologue(a, cw)
    if r is not None:
        return r
    if c == ZERO:
        return F.ONE, flags
    return _trig(_value(a), "cos", cw, flags)


def fsincos(a, cw):
    """Returns (sin, cos, sw): the CPU replaces ST0 by the sine and pushes the cosine.  When
    out of range (C2) or stopped by an unmasked exception both are None except as fsin says."""
    r, c, flags = _trig_prologue(a, cw)
    if r is not None:
        v, sw = r
        if sw & C2:
            return a, None, sw
        return v, v, sw
    if c == ZERO:
        return a, F.ONE, flags
    x = _value(a)
    s, f1 = _trig(x, "sin", cw, flags)
    co, f2 = _trig(x, "cos", cw, flags)
    return s, co, (f1 | f2) & ~C1 | (f2 & C1)


def fptan(a, cw):
    """ST0 = tan(ST0); the CPU then pushes 1.0 (unless C2 or an unmasked exception)."""
    r, c, flags = _trig_prologue(a, cw)
    if r is not None:
        return r
    if c == ZERO:
        return a, flags
    return _trig(_value(a), "tan", cw, flags)


def _pi_multiple(num, den, sign, cw, flags):
    """round(sign * num/den * pi)."""
    def fn(W):
        v = _pi_fixed(W) * num // den
        return (-v if sign else v), 4, -W
    return _ziv(fn, cw, flags, 128)


def fpatan(a, b, cw):
    """arctan(ST1 / ST0) in (-pi, pi] with a = ST0 (x), b = ST1 (y); the caller pops and
    stores into ST1 (SDM FPATAN table)."""
    cx, cy = classify(a), classify(b)
    r = F._nan_check(a, cx, b, cy, cw)
    if r is not None:
        return r
    flags = F._denormal_check(cw, cx, cy)
    if flags and not cw & DE:
        return None, flags
    sx, sy = (a >> 79) & 1, (b >> 79) & 1
    if cy == INFINITY:
        if cx == INFINITY:
            return _pi_multiple(3 if sx else 1, 4, sy, cw, flags)
        return _pi_multiple(1, 2, sy, cw, flags)
    if cx == INFINITY:
        return (_pi_multiple(1, 1, sy, cw, flags) if sx else (pack(sy, 0, 0), flags))
    if cy == ZERO:
        return (_pi_multiple(1, 1, sy, cw, flags) if sx else (pack(sy, 0, 0), flags))
    if cx == ZERO:
        return _pi_multiple(1, 2, sy, cw, flags)
    x, y = abs(_value(a)), abs(_value(b))
    t = y / x
    inv = t > 1
    u = 1 / t if inv else t
    lead = _lead(u) if not inv and not sx else 0

    def fn(W):
        U = _fix(u, W)
        one = 1 << W
        # three argument halvings: atan(u) = 2 atan(u / (1 + sqrt(1 + u^2)))
        halvings = 3
        for _ in range(halvings):
            U = (U << W) // (one + F._isqrt((one + (U * U >> W)) << W))
        at, terms = _atan_small(U, W)
        at <<= halvings
        err = (2 * terms + 16) << halvings
        pi = _pi_fixed(W)
        v = at
        if inv:
            v = (pi >> 1) - v
        if sx:
            v = pi - v
        return (-v if sy else v), err + 4, -W
    return _ziv(fn, cw, flags, 128 + lead)
