"""Exact x87 double-extended arithmetic on Python ints (Intel SDM Vol. 1 ch. 4 and 8).

A value is the 80-bit register image as one int: bit 79 the sign, bits 78..64 the biased exponent
(bias 16383), bits 63..0 the significand with its explicit integer bit J (bit 63).  Every operation
computes the exact result with big ints (a quotient or square root with a sticky bit) and rounds
once, as the x87 does, under the control word's precision control (PC, bits 9:8: 00 = 24 bits,
10 = 53 bits, 11 = 64 bits; the reserved 01 is treated as 64 bits) and rounding control (RC, bits
11:10: nearest-even, down, up, toward zero).  Precision control applies only to FADD, FSUB, FMUL,
FDIV and FSQRT (SDM 8.1.5.2); the exponent range stays 15-bit whatever the precision.

Calling convention: every operation takes the control word `cw` and returns `(value, sw)`.
`sw` holds status-word bits: the exception flags IE DE ZE OE UE PE (bits 0..5) the operation
raised, and C1 (round-up indicator, 0x0200) or the condition codes the instruction defines.
`value` is None when the instruction must not deliver a result because an unmasked exception
stops it: IE, DE or ZE unmasked (detected before the operation; SDM 8.5.1-8.5.3) and, for stores
to memory, OE or UE unmasked (SDM 8.5.4-8.5.5: memory is left unchanged).  With OE or UE unmasked
and a register destination the result is delivered with its exponent adjusted by 24576
(divided/multiplied by 2^24576, SDM 8.5.4, 8.5.5); a result still out of range after the
adjustment (only FSCALE can produce one) is delivered as infinity or zero (the SDM leaves it
open).  Stack overflow/underflow (IE with SF) is the
caller's business: it knows the tag word.  The caller sets ES and raises #MF later.

Exception precedence follows SDM Vol. 1 4.9.2: unsupported encodings and SNaN operands (IE), then
QNaN operands (propagated, no exception), then the other invalid operations and divide-by-zero,
then the denormal operand (DE; when masked, execution continues and later exceptions may be
added), then overflow/underflow, then precision.

Underflow (SDM 4.9.1.5): tininess is detected after rounding ("the result of rounding with
unbounded exponent, taking precision control into account, is non-zero and less than the smallest
normalised value"); with UE masked the result is denormalised and UE is set only if it is also
inexact; with UE unmasked UE is set for every tiny result.
"""

from fractions import Fraction as _Fraction
from math import isqrt as _isqrt

# status word bits
IE, DE, ZE, OE, UE, PE, SF, ES = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
C0, C1, C2, C3 = 0x0100, 0x0200, 0x0400, 0x4000
EXC_MASK = 0x3F

# control word fields
RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP = 0, 1, 2, 3
PC_24, PC_53, PC_64 = 0, 2, 3
CW_DEFAULT = 0x037F          # FNINIT: all exceptions masked, 64-bit precision, nearest

BIAS = 16383
EXP_MAX = 0x7FFF
EMIN = 1 - BIAS              # smallest normal exponent, -16382
EMAX = 0x7FFE - BIAS         # largest finite exponent, 16383
J_BIT = 1 << 63
QUIET_BIT = 1 << 62
SIG_MASK = (1 << 64) - 1
ADJUST = 24576               # bias adjust for unmasked overflow/underflow (SDM 8.5.4/8.5.5)

POS_ZERO = 0
NEG_ZERO = 1 << 79
POS_INF = (EXP_MAX << 64) | J_BIT
NEG_INF = NEG_ZERO | POS_INF
INDEFINITE = (1 << 79) | (EXP_MAX << 64) | 0xC000000000000000   # QNaN floating-point indefinite
ONE = (BIAS << 64) | J_BIT

# classes (SDM Vol. 1 8.2.2, table 8-3; unsupported encodings: 8.2.2 and table 4-3 footnotes)
ZERO = "zero"
DENORMAL = "denormal"
PSEUDO_DENORMAL = "pseudo-denormal"      # exponent 0, J = 1: accepted, a denormal operand
NORMAL = "normal"
INFINITY = "infinity"
QNAN = "qnan"
SNAN = "snan"
PSEUDO_NAN = "pseudo-nan"                # exponent 7FFF, J = 0, fraction != 0: unsupported
PSEUDO_INF = "pseudo-infinity"           # exponent 7FFF, J = 0, fraction == 0: unsupported
UNNORMAL = "unnormal"                    # exponent 1..7FFE, J = 0: unsupported
UNSUPPORTED = (PSEUDO_NAN, PSEUDO_INF, UNNORMAL)
NANS = (QNAN, SNAN)
DENORMALS = (DENORMAL, PSEUDO_DENORMAL)


def pack(sign, exp, sig):
    return ((sign & 1) << 79) | ((exp & EXP_MAX) << 64) | (sig & SIG_MASK)


def unpack(v):
    """(sign, biased exponent, significand) of an 80-bit image."""
    return (v >> 79) & 1, (v >> 64) & EXP_MAX, v & SIG_MASK


def classify(v):
    exp = (v >> 64) & EXP_MAX
    sig = v & SIG_MASK
    if exp == 0:
        if sig == 0:
            return ZERO
        return PSEUDO_DENORMAL if sig & J_BIT else DENORMAL
    if exp == EXP_MAX:
        if not sig & J_BIT:
            return PSEUDO_INF if sig == 0 else PSEUDO_NAN
        if sig == J_BIT:
            return INFINITY
        return QNAN if sig & QUIET_BIT else SNAN
    return NORMAL if sig & J_BIT else UNNORMAL


def is_nan(v):
    return classify(v) in NANS


def quiet(v):
    return v | QUIET_BIT


def to_fraction(v):
    """Exact value of a finite operand (denormals and pseudo-denormals with exponent 1 - bias;
    unnormals by their bits) as a Fraction; raises ValueError for infinities and NaNs."""
    s, exp, sig = unpack(v)
    if exp == EXP_MAX:
        raise ValueError("not finite")
    e = (exp if exp else 1) - BIAS - 63
    f = _Fraction(sig) * (_Fraction(2) ** e)
    return -f if s else f


def _parts(v):
    """sign, integer m, exponent e with |value| = m * 2**e (finite operands)."""
    s = (v >> 79) & 1
    exp = (v >> 64) & EXP_MAX
    return s, v & SIG_MASK, (exp if exp else 1) - BIAS - 63


def _pc_bits(cw):
    pc = (cw >> 8) & 3
    return 24 if pc == 0 else 53 if pc == 2 else 64


# ----------------------------------------------------------------------------------------------
# rounding

def _shift_round(sign, m, shift, sticky, rc):
    """Round m / 2**shift to an integer under rc; sticky means the exact value lies strictly
    above m (below the next integer at this scale).  Returns (r, inexact, rounded_up)."""
    if shift <= 0:
        return m << -shift, False, False
    r = m >> shift
    rem = m & ((1 << shift) - 1)
    if not rem and not sticky:
        return r, False, False
    if rc == RC_NEAREST:
        half = 1 << (shift - 1)
        inc = rem > half or (rem == half and (sticky or (r & 1)))
    elif rc == RC_CHOP:
        inc = False
    elif rc == RC_UP:
        inc = not sign
    else:
        inc = bool(sign)
    return r + inc, True, inc


def _round(sign, m, e, sticky, p, rc, emin, emax, masks):
    """Round (-1)^sign * (m + sticky) * 2**e (m > 0) to p significant bits with exponent range
    [emin, emax].  Returns (kind, E, r, flags): kind 'fin' with value r * 2**(E - p + 1)
    (r < 2**(p-1) only for a denormal, then E == emin; r == 0 for a zero), or kind 'inf'.
    With OE/UE unmasked, E is left outside the range: the caller adjusts the bias."""
    E = e + m.bit_length() - 1
    r, inexact, up = _shift_round(sign, m, E - (p - 1) - e, sticky, rc)
    if r >> p:
        r >>= 1
        E += 1
    flags = 0
    if E > emax:
        if not masks & OE:
            flags = OE
            if inexact:
                flags |= PE | (C1 if up else 0)
            return "fin", E, r, flags
        flags = OE | PE
        if rc == RC_NEAREST or (rc == RC_UP and not sign) or (rc == RC_DOWN and sign):
            return "inf", 0, 0, flags | C1
        return "fin", emax, (1 << p) - 1, flags
    if E < emin:                              # tiny after rounding
        if not masks & UE:
            flags = UE
            if inexact:
                flags |= PE | (C1 if up else 0)
            return "fin", E, r, flags
        r, inexact, up = _shift_round(sign, m, emin - (p - 1) - e, sticky, rc)
        if inexact:
            flags = UE | PE | (C1 if up else 0)
        return "fin", emin, r, flags
    if inexact:
        flags = PE | (C1 if up else 0)
    return "fin", E, r, flags


def _pack80(sign, kind, E, r, p):
    if kind == "inf":
        return pack(sign, EXP_MAX, J_BIT)
    if r == 0:
        return pack(sign, 0, 0)
    sig = r << (64 - p)
    if r >> (p - 1):
        return pack(sign, E + BIAS, sig)
    return pack(sign, 0, sig)


def round_to_80(sign, m, e, sticky, cw, p=64, flags=0):
    """Round an exact value to a register result (with unmasked OE/UE bias adjust)."""
    if m == 0:
        return pack(sign, 0, 0), flags
    kind, E, r, f = _round(sign, m, e, sticky, p, (cw >> 10) & 3, EMIN, EMAX, cw)
    if f & OE and not cw & OE:
        E -= ADJUST
        if E > EMAX:            # still out of range (only FSCALE gets here): infinity
            return pack(sign, EXP_MAX, J_BIT), flags | f
    elif f & UE and not cw & UE:
        E += ADJUST
        if E < EMIN:            # still out of range (only FSCALE): a zero of the sign
            return pack(sign, 0, 0), flags | f
    return _pack80(sign, kind, E, r, p), flags | f


def _invalid(cw, flags=0):
    return (INDEFINITE if cw & IE else None), flags | IE


def _propagate(a, ca, b, cb):
    """x87 NaN result (SDM Vol. 1 table 4-7); ties of the significand go to the positive NaN."""
    a_nan = ca in NANS
    b_nan = cb in NANS
    if a_nan and b_nan:
        if ca != cb:
            return quiet(a) if ca == QNAN else quiet(b)
        qa, qb = quiet(a), quiet(b)
        sa, sb = qa & SIG_MASK, qb & SIG_MASK
        if sa != sb:
            return qa if sa > sb else qb
        return qa if not qa >> 79 else qb
    return quiet(a) if a_nan else quiet(b)


def _nan_check(a, ca, b, cb, cw):
    """Unsupported or NaN operands: the finished (value, sw), or None to go on."""
    if ca in UNSUPPORTED or cb in UNSUPPORTED:
        return _invalid(cw)
    if ca in NANS or cb in NANS:
        if ca == SNAN or cb == SNAN:
            if not cw & IE:
                return None, IE
            return _propagate(a, ca, b, cb), IE
        return _propagate(a, ca, b, cb), 0
    return None


def _denormal_check(cw, *classes):
    for c in classes:
        if c in DENORMALS:
            return DE
    return 0


# ----------------------------------------------------------------------------------------------
# arithmetic (precision control applies)

def _addsub(a, b, negate_b, cw, b_denormal=False):
    ca, cb = classify(a), classify(b)
    r = _nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sa = (a >> 79) & 1
    sb = ((b >> 79) & 1) ^ negate_b
    if ca == INFINITY or cb == INFINITY:
        if ca == INFINITY and cb == INFINITY and sa != sb:
            return _invalid(cw)
    flags = _denormal_check(cw, ca, cb) | (DE if b_denormal else 0)
    if flags and not cw & DE:
        return None, flags
    if ca == INFINITY:
        return pack(sa, EXP_MAX, J_BIT), flags
    if cb == INFINITY:
        return pack(sb, EXP_MAX, J_BIT), flags
    _, ma, ea = _parts(a)
    _, mb, eb = _parts(b)
    e = min(ea, eb)
    x = ma << (ea - e)
    y = mb << (eb - e)
    s = (-x if sa else x) + (-y if sb else y)
    if s == 0:
        if ca == ZERO and cb == ZERO and sa == sb:
            sign = sa
        else:
            sign = 1 if ((cw >> 10) & 3) == RC_DOWN else 0
        return pack(sign, 0, 0), flags
    sign = 1 if s < 0 else 0
    return round_to_80(sign, abs(s), e, False, cw, _pc_bits(cw), flags)


def fadd(a, b, cw, b_denormal=False):
    """a + b (FADD/FADDP/FIADD).  b_denormal: b came from a denormal m32/m64 operand."""
    return _addsub(a, b, 0, cw, b_denormal)


def fsub(a, b, cw, b_denormal=False):
    """a - b (FSUB/FSUBR with the operands in the order the instruction subtracts them)."""
    return _addsub(a, b, 1, cw, b_denormal)


def fmul(a, b, cw, b_denormal=False):
    ca, cb = classify(a), classify(b)
    r = _nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sign = ((a ^ b) >> 79) & 1
    if (ca == INFINITY and cb == ZERO) or (ca == ZERO and cb == INFINITY):
        return _invalid(cw)
    flags = _denormal_check(cw, ca, cb) | (DE if b_denormal else 0)
    if flags and not cw & DE:
        return None, flags
    if ca == INFINITY or cb == INFINITY:
        return pack(sign, EXP_MAX, J_BIT), flags
    if ca == ZERO or cb == ZERO:
        return pack(sign, 0, 0), flags
    _, ma, ea = _parts(a)
    _, mb, eb = _parts(b)
    return round_to_80(sign, ma * mb, ea + eb, False, cw, _pc_bits(cw), flags)


def fdiv(a, b, cw, b_denormal=False):
    """a / b (FDIV/FDIVR with the operands in the order the instruction divides them)."""
    ca, cb = classify(a), classify(b)
    r = _nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sign = ((a ^ b) >> 79) & 1
    if (ca == INFINITY and cb == INFINITY) or (ca == ZERO and cb == ZERO):
        return _invalid(cw)
    if cb == ZERO and ca != INFINITY:
        if not cw & ZE:
            return None, ZE
        return pack(sign, EXP_MAX, J_BIT), ZE
    flags = _denormal_check(cw, ca, cb) | (DE if b_denormal else 0)
    if flags and not cw & DE:
        return None, flags
    if ca == INFINITY:
        return pack(sign, EXP_MAX, J_BIT), flags
    if cb == INFINITY or ca == ZERO:
        return pack(sign, 0, 0), flags
    _, ma, ea = _parts(a)
    _, mb, eb = _parts(b)
    k = max(0, 68 + mb.bit_length() - ma.bit_length())
    q, rem = divmod(ma << k, mb)
    return round_to_80(sign, q, ea - eb - k, rem != 0, cw, _pc_bits(cw), flags)


def fsqrt(a, cw):
    ca = classify(a)
    r = _nan_check(a, ca, a, ca, cw)
    if r is not None:
        return r
    sign = (a >> 79) & 1
    if sign and ca != ZERO:
        return _invalid(cw)
    flags = _denormal_check(cw, ca)
    if flags and not cw & DE:
        return None, flags
    if ca in (ZERO, INFINITY):
        return a, flags
    _, m, e = _parts(a)
    k = max(0, 140 - m.bit_length())
    if (e - k) & 1:
        k += 1
    m <<= k
    root = _isqrt(m)
    return round_to_80(0, root, (e - k) // 2, root * root != m, cw, _pc_bits(cw), flags)


def fabs(a):
    return a & ~NEG_ZERO


def fchs(a):
    return a ^ NEG_ZERO


# ----------------------------------------------------------------------------------------------
# comparisons and classification

CC_GT, CC_LT, CC_EQ, CC_UNORDERED = 0, C0, C3, C3 | C2 | C0


def fcom(a, b, cw, unordered=False):
    """FCOM (unordered=False: any NaN is invalid) or FUCOM (unordered=True: only SNaN).
    Returns (condition codes as C3|C2|C0 status bits, sw exception flags); the codes are None
    when an unmasked exception stops the instruction (SDM: codes not set)."""
    ca, cb = classify(a), classify(b)
    if ca in UNSUPPORTED or cb in UNSUPPORTED:
        return (CC_UNORDERED if cw & IE else None), IE
    if ca in NANS or cb in NANS:
        if not unordered or ca == SNAN or cb == SNAN:
            return (CC_UNORDERED if cw & IE else None), IE
        return CC_UNORDERED, 0
    flags = _denormal_check(cw, ca, cb)
    if flags and not cw & DE:
        return None, flags
    x = _order_key(a, ca)
    y = _order_key(b, cb)
    return (CC_GT if x > y else CC_LT if x < y else CC_EQ), flags


def _order_key(v, c):
    """A tuple that orders finite values and infinities numerically (zeros of both signs equal;
    denormals and pseudo-denormals by their value)."""
    if c == ZERO:
        return (0,)
    neg = (v >> 79) & 1
    if c == INFINITY:
        return (-2,) if neg else (2,)
    _, m, e = _parts(v)
    n = m.bit_length()
    key = (e + n - 1, m << (64 - n))                    # normalised exponent, significand
    return (-1, -key[0], -key[1]) if neg else (1,) + key


def ftst(a, cw):
    return fcom(a, POS_ZERO, cw)


FXAM_UNSUPPORTED, FXAM_NAN, FXAM_NORMAL, FXAM_INFINITY = 0, C0, C2, C2 | C0
FXAM_ZERO, FXAM_EMPTY, FXAM_DENORMAL = C3, C3 | C0, C3 | C2


def fxam(a, empty=False):
    """FXAM condition codes C3 C2 C1 C0 (C1 = sign); no exceptions."""
    c1 = C1 if a >> 79 & 1 else 0
    if empty:
        return FXAM_EMPTY | c1
    c = classify(a)
    code = {ZERO: FXAM_ZERO, DENORMAL: FXAM_DENORMAL, PSEUDO_DENORMAL: FXAM_DENORMAL,
            NORMAL: FXAM_NORMAL, INFINITY: FXAM_INFINITY, QNAN: FXAM_NAN,
            SNAN: FXAM_NAN}.get(c, FXAM_UNSUPPORTED)
    return code | c1


# ----------------------------------------------------------------------------------------------
# FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1 (full 64-bit precision, PC ignored)

def _unary_special(a, ca, cw):
    if ca in UNSUPPORTED:
        return _invalid(cw)
    if ca == SNAN:
        return (quiet(a) if cw & IE else None), IE
    if ca == QNAN:
        return a, 0
    return None


def frndint(a, cw):
    ca = classify(a)
    r = _unary_special(a, ca, cw)
    if r is not None:
        return r
    flags = _denormal_check(cw, ca)
    if flags and not cw & DE:
        return None, flags
    if ca in (ZERO, INFINITY):
        return a, flags
    s, m, e = _parts(a)
    if e >= 0:
        return a, flags
    q, inexact, up = _shift_round(s, m, -e, False, (cw >> 10) & 3)
    if inexact:
        flags |= PE | (C1 if up else 0)
    if q == 0:
        return pack(s, 0, 0), flags
    return round_to_80(s, q, 0, False, cw, 64, flags)


def fscale(a, b, cw):
    """ST0 * 2**trunc(ST1) (a = ST0, b = ST1)."""
    ca, cb = classify(a), classify(b)
    r = _nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    sa = (a >> 79) & 1
    sb = (b >> 79) & 1
    if cb == INFINITY:
        if (ca == ZERO and not sb) or (ca == INFINITY and sb):
            return _invalid(cw)
    flags = _denormal_check(cw, ca, cb)
    if flags and not cw & DE:
        return None, flags
    if cb == INFINITY:
        if ca in (ZERO, INFINITY):
            return a, flags
        return (pack(sa, 0, 0) if sb else pack(sa, EXP_MAX, J_BIT)), flags
    if ca in (ZERO, INFINITY):
        return a, flags
    n = 0
    if cb != ZERO:
        _, mb, eb = _parts(b)
        n = mb >> -eb if eb < 0 else min(mb << eb, 1 << 20)
        n = min(n, 1 << 20)
        if sb:
            n = -n
    _, m, e = _parts(a)
    return round_to_80(sa, m, e + n, False, cw, 64, flags)


def fxtract(a, cw):
    """Returns (exponent, significand, sw): the CPU stores the exponent in ST0's place and
    pushes the significand.  Both are None when an unmasked exception stops it."""
    ca = classify(a)
    if ca in UNSUPPORTED:
        v, f = _invalid(cw)
        return v, v, f
    if ca in NANS:
        if ca == SNAN and not cw & IE:
            return None, None, IE
        return quiet(a), quiet(a), (IE if ca == SNAN else 0)
    s = (a >> 79) & 1
    if ca == ZERO:
        if not cw & ZE:
            return None, None, ZE
        return NEG_INF, a, ZE
    if ca == INFINITY:
        return POS_INF, a, 0
    flags = _denormal_check(cw, ca)
    if flags and not cw & DE:
        return None, None, flags
    _, m, e = _parts(a)
    n = m.bit_length()
    E = e + n - 1
    sig = pack(s, BIAS, m << (64 - n))
    expv = from_int(E)
    return expv, sig, flags


def _prem(a, b, cw, nearest):
    ca, cb = classify(a), classify(b)
    r = _nan_check(a, ca, b, cb, cw)
    if r is not None:
        return r
    if ca == INFINITY or cb == ZERO:
        return _invalid(cw)
    flags = _denormal_check(cw, ca, cb)
    if flags and not cw & DE:
        return None, flags
    if cb == INFINITY or ca == ZERO:
        return a, flags
    sa, ma, ea = _parts(a)
    _, mb, eb = _parts(b)
    d = (ea + ma.bit_length()) - (eb + mb.bit_length())
    if d < 64:
        # exact quotient and remainder on a common scale
        e = min(ea, eb)
        x = ma << (ea - e)
        y = mb << (eb - e)
        q, rem = divmod(x, y)
        if nearest and (2 * rem > y or (2 * rem == y and q & 1)):
            q += 1
            rem -= y
        cc = (C0 if q & 4 else 0) | (C3 if q & 2 else 0) | (C1 if q & 1 else 0)
        rsign = sa ^ (1 if rem < 0 else 0)
        if rem == 0:
            return pack(sa, 0, 0), flags | cc
        v, f = round_to_80(rsign, abs(rem), e, False, cw, 64, flags)
        return v, f | cc
    # partial remainder: reduce the exponent difference by d - n, n = 32 + d mod 32 (the AMD
    # manuals' choice, which Intel processors follow), chopped quotient; C2 = 1, C0 C3 C1 = 0
    n = 32 + d % 32
    e = min(ea, eb + d - n)
    x = ma << (ea - e)
    y = mb << (eb + d - n - e)
    rem = x % y
    if rem == 0:
        return pack(sa, 0, 0), flags | C2
    v, f = round_to_80(sa, rem, e, False, cw, 64, flags)
    return v, f | C2


def fprem(a, b, cw):
    """FPREM: ST0 = partial remainder of ST0 / ST1, quotient truncated.  sw carries
    C2 (incomplete) and C0 C3 C1 = quotient bits Q2 Q1 Q0."""
    return _prem(a, b, cw, False)


def fprem1(a, b, cw):
    """FPREM1: IEEE remainder (quotient rounded to nearest even)."""
    return _prem(a, b, cw, True)


# ----------------------------------------------------------------------------------------------
# conversions

def from_int(i):
    """Exact conversion of any integer of at most 64 bits (FILD)."""
    if i == 0:
        return POS_ZERO
    s = 1 if i < 0 else 0
    m = -i if s else i
    n = m.bit_length()
    return pack(s, BIAS + n - 1, m << (64 - n))


def to_int(a, bits, cw, truncate=False):
    """FIST/FISTP (truncate=True: FISTTP).  Returns (two's complement pattern of `bits`, sw);
    invalid gives the integer indefinite 1 << (bits - 1)."""
    indef = 1 << (bits - 1)
    ca = classify(a)
    if ca in UNSUPPORTED or ca in NANS or ca == INFINITY:
        return (indef if cw & IE else None), IE
    if ca == ZERO:
        return 0, 0
    s, m, e = _parts(a)
    rc = RC_CHOP if truncate else (cw >> 10) & 3
    if e >= 0:
        q, inexact, up = m << e, False, False
    else:
        q, inexact, up = _shift_round(s, m, -e, False, rc)
    if (s and q > indef) or (not s and q >= indef):
        return (indef if cw & IE else None), IE
    flags = (PE | (C1 if up else 0)) if inexact else 0
    v = -q if s else q
    return v & ((1 << bits) - 1), flags


class _Fmt:
    def __init__(self, p, ebits):
        self.p = p
        self.ebits = ebits
        self.bias = (1 << (ebits - 1)) - 1
        self.emax_field = (1 << ebits) - 1
        self.emin = 1 - self.bias
        self.emax = self.bias
        self.fbits = p - 1
        self.adjust = 3 << (ebits - 2)     # 192 for single, 1536 for double


F32 = _Fmt(24, 8)
F64 = _Fmt(53, 11)


def _load_ieee(bits, fmt, cw):
    """Exact conversion of a float32/float64 image to the 80-bit format.  Returns
    (value, sw) with IE for a SNaN (quieted) and DE for a denormal (normalised)."""
    sign = (bits >> (fmt.ebits + fmt.fbits)) & 1
    exp = (bits >> fmt.fbits) & fmt.emax_field
    frac = bits & ((1 << fmt.fbits) - 1)
    shift = 64 - fmt.p
    if exp == fmt.emax_field:
        if frac == 0:
            return pack(sign, EXP_MAX, J_BIT), 0
        v = pack(sign, EXP_MAX, J_BIT | (frac << shift))
        if not frac >> (fmt.fbits - 1):
            return (quiet(v) if cw & IE else None), IE
        return v, 0
    if exp == 0:
        if frac == 0:
            return pack(sign, 0, 0), 0
        if not cw & DE:
            return None, DE
        n = frac.bit_length()
        E = fmt.emin - fmt.fbits + n - 1
        return pack(sign, E + BIAS, frac << (64 - n)), DE
    return pack(sign, exp - fmt.bias + BIAS, (J_BIT | (frac << shift)) & SIG_MASK), 0


def _raw_ieee(bits, fmt):
    """Exact conversion with no exceptions and SNaNs kept signalling (an arithmetic
    instruction's memory operand); returns (value, was_denormal)."""
    v, f = _load_ieee(bits, fmt, CW_DEFAULT)
    exp = (bits >> fmt.fbits) & fmt.emax_field
    frac = bits & ((1 << fmt.fbits) - 1)
    if exp == fmt.emax_field and frac and not frac >> (fmt.fbits - 1):
        v &= ~QUIET_BIT
    return v, bool(f & DE)


def from_float32(bits, cw):
    """FLD m32fp."""
    return _load_ieee(bits, F32, cw)


def from_float64(bits, cw):
    """FLD m64fp."""
    return _load_ieee(bits, F64, cw)


def float32_operand(bits):
    """m32fp arithmetic operand: (80-bit value, denormal flag to pass as b_denormal)."""
    return _raw_ieee(bits, F32)


def float64_operand(bits):
    return _raw_ieee(bits, F64)


def _store_ieee(a, fmt, cw):
    ca = classify(a)
    sign = (a >> 79) & 1
    top = sign << (fmt.ebits + fmt.fbits)
    inf = top | (fmt.emax_field << fmt.fbits)
    if ca in UNSUPPORTED:
        return ((inf | (1 << (fmt.fbits - 1)) | (1 << (fmt.ebits + fmt.fbits))) if cw & IE
                else None), IE
    if ca in NANS:
        frac = ((a & SIG_MASK) >> (64 - fmt.p)) & ((1 << fmt.fbits) - 1)
        frac |= 1 << (fmt.fbits - 1)
        if ca == SNAN:
            return ((inf | frac) if cw & IE else None), IE
        return inf | frac, 0
    if ca == INFINITY:
        return inf, 0
    if ca == ZERO:
        return top, 0
    _, m, e = _parts(a)
    kind, E, r, f = _round(sign, m, e, False, fmt.p, (cw >> 10) & 3, fmt.emin, fmt.emax, cw)
    if f & OE and not cw & OE:
        return None, OE
    if f & UE and not cw & UE:
        return None, UE
    if kind == "inf":
        return inf, f
    if r >> (fmt.p - 1):
        return top | ((E + fmt.bias) << fmt.fbits) | (r & ((1 << fmt.fbits) - 1)), f
    return top | r, f


def to_float32(a, cw):
    """FST/FSTP m32fp: (32-bit image or None, sw)."""
    return _store_ieee(a, F32, cw)


def to_float64(a, cw):
    """FST/FSTP m64fp: (64-bit image or None, sw)."""
    return _store_ieee(a, F64, cw)


def to_bytes80(a):
    return a.to_bytes(10, "little")


def from_bytes80(b):
    return int.from_bytes(bytes(b[:10]), "little")


BCD_INDEFINITE = 0xFFFF << 64 | 0xC000000000000000


def from_bcd(b):
    """FBLD: 10 bytes, 18 packed digits and the sign in bit 79; exact.  Invalid digits give
    an undefined result (SDM FBLD): here each nibble is used at face value."""
    x = int.from_bytes(bytes(b[:10]), "little")
    n = 0
    for i in range(17, -1, -1):
        n = n * 10 + ((x >> (4 * i)) & 0xF)
    v = from_int(n)
    if x >> 79:
        v |= NEG_ZERO
    return v


def to_bcd(a, cw):
    """FBSTP: (10 bytes or None, sw); invalid gives the packed BCD indefinite."""
    ca = classify(a)
    indef = BCD_INDEFINITE.to_bytes(10, "little")
    if ca in UNSUPPORTED or ca in NANS or ca == INFINITY:
        return (indef if cw & IE else None), IE
    sign = (a >> 79) & 1
    flags = 0
    q = 0
    if ca != ZERO:
        _, m, e = _parts(a)
        if e >= 0:
            q = m << e
        else:
            q, inexact, up = _shift_round(sign, m, -e, False, (cw >> 10) & 3)
            if inexact:
                flags = PE | (C1 if up else 0)
    if q >= 10 ** 18:
        return (indef if cw & IE else None), IE
    digits = 0
    for i, ch in enumerate(reversed(str(q))):
        digits |= int(ch) << (4 * i)
    return (digits | (sign << 79)).to_bytes(10, "little"), flags


# ----------------------------------------------------------------------------------------------
# constants (SDM Vol. 1 8.3.8 and the FLD1/FLDL2T/... page: the value delivered depends on RC)

def _fixed_constants(bits=256):
    one = 1 << bits

    def atan_inv(n):        # atan(1/n) in fixed point
        total = 0
        power = one // n
        k = 0
        n2 = n * n
        while power:
            term = power // (2 * k + 1)
            total += -term if k & 1 else term
            power //= n2
            k += 1
        return total

    def atanh_inv(n):       # atanh(1/n)
        total = 0
        power = one // n
        k = 0
        n2 = n * n
        while power:
            total += power // (2 * k + 1)
            power //= n2
            k += 1
        return total

    pi = 16 * atan_inv(5) - 4 * atan_inv(239)
    ln2 = 2 * atanh_inv(3)                 # ln 2 = 2 atanh(1/3)
    ln10 = 3 * ln2 + 2 * atanh_inv(9)      # ln 10 = 3 ln 2 + ln(5/4), ln(5/4) = 2 atanh(1/9)
    return {"pi": pi, "ln2": ln2, "l2e": (one * one) // ln2, "l2t": (ln10 * one) // ln2,
            "lg2": (ln2 * one) // ln10}, bits


_FIXED, _FIXED_BITS = _fixed_constants()


def _const80(name, rc):
    """The constant correctly rounded from its exact value under RC.  (The x87 keeps 66 bits
    internally; for these five constants the two extra bits are never 00, so rounding up from
    66 bits and from the exact value agree, and nearest matches the documented FLDLG2 ...F799,
    which a round-half-even of the 66-bit value would get wrong.)"""
    x = _FIXED[name]
    n = x.bit_length()
    e = n - 1 - _FIXED_BITS                 # unbiased exponent
    m, _, _ = _shift_round(0, x, n - 64, True, rc)
    if m >> 64:
        m >>= 1
        e += 1
    return pack(0, e + BIAS, m)


CONSTANTS = ("1", "l2t", "l2e", "pi", "lg2", "ln2", "z")


def const(name, cw):
    """FLD1 ("1"), FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ ("z"): no exceptions (PE is not
    raised), the last bit follows RC."""
    if name == "1":
        return ONE
    if name == "z":
        return POS_ZERO
    return _const80(name, (cw >> 10) & 3)
