"""Differential test of aero.fpu.float80 against unicorn 2.1.4's x87 (QEMU's softfloat floatx80).

Each case is a tiny 32-bit sequence run under unicorn (UC_MODE_32, no setup needed: the x87 works
with unicorn's reset CR0):

    FNINIT; FLDCW [cw]; FLD tbyte [b]; FLD tbyte [a]; <op>; FSTP tbyte [r] (or a store); FNSTSW AX

with all exceptions masked, every precision control (24/53/64 bits) and every rounding control,
over random operands from every class: zeros, denormals, pseudo-denormals, normals (the whole
exponent range, near 1, near the overflow and underflow thresholds, small integers, near-equal
pairs for cancellation), infinities, QNaNs, SNaNs, unnormals, pseudo-NaNs and pseudo-infinities.
The ops: FADD FSUB FMUL FDIV FSQRT FRNDINT FSCALE FPREM FPREM1 FXTRACT FCOMPP FUCOMPP FXAM,
FST m32/m64, FIST m16/m32, FISTP m64, FBSTP, FLD m32/m64, FBLD and the seven constants.

The result bits must match, and the condition codes where the instruction defines them, or the
case must fall inside one of the documented unicorn deviations below (counted, per deviation).
Each deviation is pinned by a test that shows unicorn's behaviour next to the value the SDM
requires, computed in the test from the SDM's rule (not taken from aero), and checks aero gives
the SDM value.  unicorn 2.1.4 carries QEMU 5.0's target/i386 x87 helpers, older than the 2020
x87 fixes of QEMU 5.2/6.0; what it gets wrong:

U1  exception flags: softfloat's flags never reach the status word, so IE DE OE UE PE and C1 are
    never set (ZE is set by FDIV's own test of the divisor, also for 0/0, inf/0 and NaN/0, where
    the SDM says IE or nothing).  Flags are therefore compared for ZE only (FDIV with a finite
    non-zero dividend); aero's flags are checked from first principles in test_float80.py.
U2  pseudo-denormals (exponent 0, J = 1) are added, subtracted, compared, rounded to integer,
    scaled... with the wrong weight (SDM Vol. 1 8.2.2: a pseudo-denormal has exponent 1 - bias
    and is a denormal operand, value sig * 2^-16445).
U3  SNaNs are not quieted by FST m32/m64, FLD m32/m64 or FSCALE (SDM 4.8.3.4 / table 4-7: an
    SNaN with IE masked delivers the QNaN).
U4  the constants ignore RC (SDM FLD1/FLDL2T/...: "rounding control affects the result").
U5  FPREM/FPREM1 are computed in host double precision: wrong remainders and quotient bits for
    64-bit significands, a wrong partial-remainder point, and +QNaN (7FFF C000..0) for any NaN,
    infinite or zero-divisor operand, and +0 for a zero remainder of a negative ST0 (SDM FPREM:
    exact remainder; NaN propagation; indefinite; a zero remainder has the sign of ST0).
U6  FPREM1 leaves ST0 unchanged whenever exponent(ST0) < exponent(ST1), also when
    |ST0| > |ST1|/2 and the IEEE remainder is ST0 - ST1 (SDM FPREM1).
U7  FSCALE applies precision control (SDM 8.1.5.2: only FADD FSUB FMUL FDIV FSQRT), rounds
    ST0 * 2^+inf to the overflow response instead of giving infinity, and returns ST1 when ST1 is
    a NaN instead of propagating by the larger significand.
U8  FXTRACT of an infinity gives exponent 16384 (SDM: +inf), of a NaN gives exponent 16384 and
    leaves the NaN in ST0 only, of a denormal does not normalise (SDM: the true exponent and a
    normal significand).
U9  FXAM reports unnormals as normal and pseudo-NaNs/pseudo-infinities as NaNs (SDM FXAM:
    unsupported, C3 C2 C0 = 000).
U10 FBSTP: out-of-range values, NaNs and infinities store garbage instead of the packed BCD
    indefinite (FFFF C000 0000 0000 0000), and a negative value rounding to zero loses its sign.
U11 unsupported encodings (unnormal, pseudo-NaN, pseudo-infinity) are treated as numbers by
    FSCALE, FXTRACT, FPREM/FPREM1 and FBSTP (SDM 8.2.2: invalid operation, QNaN indefinite).
U12 the transcendentals (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1) are computed in host
    double precision, so results carry 53 significant bits and are off by thousands of 64-bit
    ulps (SDM 8.3.10: at most 1 ulp).  They are therefore not in the random differential;
    aero.fpu.transcendental is checked against mpmath in test_float80.py.
"""

import os
from fractions import Fraction
import random
import struct

import pytest

unicorn = pytest.importorskip("unicorn")
from unicorn import x86_const as UX                         # noqa: E402

from aero.fpu import float80 as F                           # noqa: E402
from aero.conformance.x87_diff import double_exact_prem, norm_exp     # noqa: E402

FULL = os.environ.get("AERO_FULL") == "1"
SEED = 87
COUNT = 40000 if not FULL else 400000

CODE, DATA = 0x1000, 0x2000
A_OFF, B_OFF, R_OFF, R2_OFF = 0x10, 0x20, 0x30, 0x40


def _m(opc, off):
    """An instruction with a [disp32] memory operand: opcode bytes + ModR/M(mod 00, rm 101)."""
    *pre, modrm = opc
    return bytes(pre) + bytes([modrm]) + struct.pack("<I", DATA + off)


FNINIT = bytes.fromhex("dbe3")
FLDCW = _m((0xD9, 0x2D), 0)                 # D9 /5
FLD_A = _m((0xDB, 0x2D), A_OFF)             # DB /5 FLD m80
FLD_B = _m((0xDB, 0x2D), B_OFF)
FSTP_R = _m((0xDB, 0x3D), R_OFF)            # DB /7 FSTP m80
FSTP_R2 = _m((0xDB, 0x3D), R2_OFF)
FNSTSW_AX = bytes.fromhex("dfe0")

# op name -> (operands used, code after the loads, store code, result kind)
# ST0 = a, ST1 = b after the loads.
OPS = {
    "fadd": (2, bytes.fromhex("d8c1"), FSTP_R, "r80"),
    "fsub": (2, bytes.fromhex("d8e1"), FSTP_R, "r80"),
    "fmul": (2, bytes.fromhex("d8c9"), FSTP_R, "r80"),
    "fdiv": (2, bytes.fromhex("d8f1"), FSTP_R, "r80"),
    "fsqrt": (1, bytes.fromhex("d9fa"), FSTP_R, "r80"),
    "frndint": (1, bytes.fromhex("d9fc"), FSTP_R, "r80"),
    "fscale": (2, bytes.fromhex("d9fd"), FSTP_R, "r80"),
    "fprem": (2, bytes.fromhex("d9f8"), FSTP_R, "r80cc"),
    "fprem1": (2, bytes.fromhex("d9f5"), FSTP_R, "r80cc"),
    "fxtract": (1, bytes.fromhex("d9f4"), FSTP_R + FSTP_R2, "r80x2"),
    "fcom": (2, bytes.fromhex("ded9"), b"", "cc"),           # FCOMPP
    "fucom": (2, bytes.fromhex("dae9"), b"", "cc"),          # FUCOMPP
    "fxam": (1, bytes.fromhex("d9e5"), b"", "cc1"),
    "fst32": (1, _m((0xD9, 0x15), R_OFF), b"", "m32"),      # FST m32fp
    "fst64": (1, _m((0xDD, 0x15), R_OFF), b"", "m64"),      # FST m64fp
    "fist16": (1, _m((0xDF, 0x15), R_OFF), b"", "m16"),     # FIST m16int
    "fist32": (1, _m((0xDB, 0x15), R_OFF), b"", "m32"),     # FIST m32int
    "fist64": (1, _m((0xDF, 0x3D), R_OFF), b"", "m64"),     # FISTP m64int
    "fbstp": (1, _m((0xDF, 0x35), R_OFF), b"", "m80"),      # FBSTP m80bcd
}
# loads from memory formats: the operand image is placed at A_OFF
LOADS = {
    "fld32": _m((0xD9, 0x05), A_OFF),
    "fld64": _m((0xDD, 0x05), A_OFF),
    "fbld": _m((0xDF, 0x25), A_OFF),
}
CONST_OPS = {"1": "d9e8", "l2t": "d9e9", "l2e": "d9ea", "pi": "d9eb", "lg2": "d9ec",
             "ln2": "d9ed", "z": "d9ee"}


class Unicorn:
    def __init__(self):
        self.mu = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
        self.mu.mem_map(0, 0x10000)

    def run(self, code, data):
        mu = self.mu
        mu.mem_write(DATA, bytes(0x80))
        mu.mem_write(DATA, data)
        mu.mem_write(CODE, code)
        mu.emu_start(CODE, CODE + len(code))
        return mu.mem_read(DATA + R_OFF, 10), mu.mem_read(DATA + R2_OFF, 10), \
            mu.reg_read(UX.UC_X86_REG_EAX) & 0xFFFF

    def op(self, name, a, b, cw):
        nops, body, store, kind = OPS[name]
        code = FNINIT + FLDCW + (FLD_B if nops == 2 else b"") + FLD_A + body + store + FNSTSW_AX
        data = bytearray(0x50)
        data[0:2] = struct.pack("<H", cw)
        data[A_OFF:A_OFF + 10] = a.to_bytes(10, "little")
        data[B_OFF:B_OFF + 10] = b.to_bytes(10, "little")
        r, r2, sw = self.run(code, bytes(data))
        return _decode(kind, r, r2, sw)

    def load(self, name, image, cw):
        code = FNINIT + FLDCW + LOADS[name] + FSTP_R + FNSTSW_AX
        data = bytearray(0x50)
        data[0:2] = struct.pack("<H", cw)
        data[A_OFF:A_OFF + 10] = image.to_bytes(10, "little")
        r, _, sw = self.run(code, bytes(data))
        return int.from_bytes(r, "little"), sw

    def const(self, name, cw):
        code = FNINIT + FLDCW + bytes.fromhex(CONST_OPS[name]) + FSTP_R + FNSTSW_AX
        r, _, sw = self.run(code, struct.pack("<H", cw))
        return int.from_bytes(r, "little")


def _decode(kind, r, r2, sw):
    cc = sw & (F.C3 | F.C2 | F.C1 | F.C0)
    if kind == "r80":
        return int.from_bytes(r, "little"), sw
    if kind == "r80cc":
        return (int.from_bytes(r, "little"), cc), sw
    if kind == "r80x2":
        return (int.from_bytes(r2, "little"), int.from_bytes(r, "little")), sw
    if kind in ("cc", "cc1"):
        return cc, sw
    n = {"m16": 2, "m32": 4, "m64": 8, "m80": 10}[kind]
    return int.from_bytes(r[:n], "little"), sw


def aero_op(name, a, b, cw):
    """aero's answer in the same shape as Unicorn.op (all exceptions masked)."""
    if name in ("fadd", "fsub", "fmul", "fdiv", "fscale"):
        return getattr(F, name)(a, b, cw)
    if name in ("fsqrt", "frndint"):
        return getattr(F, name)(a, cw)
    if name in ("fprem", "fprem1"):
        v, sw = getattr(F, name)(a, b, cw)
        return (v, sw & (F.C3 | F.C2 | F.C1 | F.C0)), sw
    if name == "fxtract":
        e, s, sw = F.fxtract(a, cw)
        return (e, s), sw
    if name in ("fcom", "fucom"):
        cc, sw = F.fcom(a, b, cw, unordered=(name == "fucom"))
        return cc, sw
    if name == "fxam":
        return F.fxam(a), 0
    if name == "fst32":
        return F.to_float32(a, cw)
    if name == "fst64":
        return F.to_float64(a, cw)
    if name.startswith("fist"):
        return F.to_int(a, int(name[4:]), cw)
    if name == "fbstp":
        v, sw = F.to_bcd(a, cw)
        return int.from_bytes(v, "little"), sw
    raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# operand generation

def rand_operand(rng):
    k = rng.randrange(100)
    s = rng.getrandbits(1)
    sig = rng.getrandbits(64) | F.J_BIT
    if rng.randrange(3) == 0:                 # short significands make exact and tie cases
        sig &= ~((1 << rng.randrange(1, 64)) - 1)
        sig |= F.J_BIT
    if k < 4:
        return F.pack(s, 0, 0)
    if k < 12:                                # denormal
        return F.pack(s, 0, (sig & ~F.J_BIT) >> rng.randrange(0, 64) or 1)
    if k < 15:
        return F.pack(s, 0, sig)              # pseudo-denormal
    if k < 19:
        return F.pack(s, F.EXP_MAX, F.J_BIT)  # infinity
    if k < 22:
        return F.pack(s, F.EXP_MAX, sig | F.QUIET_BIT)
    if k < 25:
        return F.pack(s, F.EXP_MAX, (sig & ~F.QUIET_BIT) | 1)
    if k < 28:                                # unnormal
        return F.pack(s, rng.randrange(1, F.EXP_MAX), sig >> rng.randrange(1, 64))
    if k < 29:
        return F.pack(s, F.EXP_MAX, (sig & ~F.J_BIT) | 1)          # pseudo-NaN
    if k < 30:
        return F.pack(s, F.EXP_MAX, 0)                            # pseudo-infinity
    if k < 40:                                # near the overflow threshold
        return F.pack(s, rng.randrange(0x7FF0, 0x7FFF), sig)
    if k < 50:                                # near the underflow threshold
        return F.pack(s, rng.randrange(1, 0x50), sig)
    if k < 60:
        return F.pack(s, rng.randrange(1, 0x7FFF), sig)
    if k < 70:                                # small integers
        return F.from_int(rng.randrange(-1000, 1000))
    return F.pack(s, F.BIAS + rng.randrange(-70, 70), sig)


def rand_pair(rng):
    a = rand_operand(rng)
    k = rng.randrange(10)
    if k == 0:                                # near cancellation
        b = a ^ (rng.getrandbits(1) << 79)
        b ^= rng.getrandbits(rng.randrange(1, 8))
    elif k == 1:                              # close exponents
        e = (a >> 64) & F.EXP_MAX
        b = F.pack(rng.getrandbits(1), max(1, min(0x7FFE, e + rng.randrange(-70, 70))),
                   rng.getrandbits(64) | F.J_BIT)
    else:
        b = rand_operand(rng)
    return a, b


def rand_cw(rng):
    return 0x007F | (rng.choice((0, 2, 3)) << 8) | (rng.randrange(4) << 10)


# ----------------------------------------------------------------------------------------------
# deviation domains: where a mismatch is explained by a documented unicorn deviation

def _cls(v):
    return F.classify(v)


def deviations(name, a, b, cw):
    """The ids of the documented deviations whose domain contains this case."""
    ops = (a,) if OPS.get(name, (1,))[0] == 1 else (a, b)
    cls = [_cls(v) for v in ops]
    out = []
    if F.PSEUDO_DENORMAL in cls:
        out.append("U2")
    if F.SNAN in cls and name in ("fst32", "fst64", "fscale"):
        out.append("U3")
    if name in ("fprem", "fprem1") and (not double_exact_prem(a, b) or (
            a >> 79 and getattr(F, name)(a, b, cw)[0] == F.NEG_ZERO)):
        out.append("U5")
    if name == "fprem1" and all(c in (F.NORMAL, F.DENORMAL) for c in cls) \
            and norm_exp(a) < norm_exp(b):
        out.append("U6")
    if name == "fscale" and ((cw >> 8) & 3 != 3 or _cls(b) in (F.INFINITY, F.QNAN, F.SNAN)):
        out.append("U7")
    if name == "fxtract" and cls[0] in (F.INFINITY, F.QNAN, F.SNAN, F.DENORMAL):
        out.append("U8")
    if name == "fxam" and cls[0] in F.UNSUPPORTED:
        out.append("U9")
    if name == "fbstp":
        r, sw = F.to_bcd(a, cw)
        if sw & F.IE or (a >> 79 and int.from_bytes(r[:9], "little") == 0):
            out.append("U10")
    if name in ("fscale", "fxtract", "fprem", "fprem1", "fbstp") and \
            any(c in F.UNSUPPORTED for c in cls):
        out.append("U11")
    return out


CC_COMPARED = {"fcom": F.C3 | F.C2 | F.C0, "fucom": F.C3 | F.C2 | F.C0,
               "fxam": F.C3 | F.C2 | F.C1 | F.C0}


def compare(U, name, a, b, cw):
    """'pass', ('explained', ids) or ('mismatch', text)."""
    u, usw = U.op(name, a, b, cw)
    o, osw = aero_op(name, a, b, cw)
    if name in CC_COMPARED:
        u &= CC_COMPARED[name]
        o &= CC_COMPARED[name]
    same = u == o
    if name == "fdiv" and _cls(a) in (F.NORMAL, F.DENORMAL) and _cls(b) == F.ZERO:
        same = same and (usw & F.ZE) == (osw & F.ZE)       # U1: only ZE is reported
    if same:
        return "pass"
    ids = deviations(name, a, b, cw)
    if ids:
        return "explained", ids
    fmt = (lambda x: tuple(hex(i) for i in x) if isinstance(x, tuple) else hex(x))
    return "mismatch", (f"{name} a={a:#x} b={b:#x} cw={cw:#x}: unicorn {fmt(u)} sw={usw:#x}, "
                        f"aero {fmt(o)} sw={osw:#x}")


def prem_pair(rng):
    """Operands for FPREM on which unicorn's double arithmetic is exact (half of them), or any."""
    if rng.randrange(2):
        return rand_pair(rng)
    ea = F.BIAS + rng.randrange(-100, 100)
    eb = ea - rng.randrange(-5, 21)
    a = F.pack(rng.getrandbits(1), ea, (rng.getrandbits(25) | 1 << 25) << 38)
    b = F.pack(rng.getrandbits(1), eb, (rng.getrandbits(25) | 1 << 25) << 38)
    return a, b


def scale_pair(rng):
    a, b = rand_pair(rng)
    if rng.randrange(2):
        b = F.from_int(rng.randrange(-20000, 20000))
    elif rng.randrange(2):
        b = F.from_int(rng.randrange(-70, 70))
    return a, b


def bcd_operand(rng):
    k = rng.randrange(3)
    if k == 0:
        return F.from_int(rng.randrange(-10 ** 18 + 1, 10 ** 18)), 0
    if k == 1:
        a = F.from_int(rng.randrange(-10 ** 18 + 1, 10 ** 18))
        return F.fdiv(a, F.from_int(rng.randrange(1, 1000)), F.CW_DEFAULT)[0], 0
    return rand_operand(rng), 0


GENERATORS = {"fprem": prem_pair, "fprem1": prem_pair, "fscale": scale_pair,
              "fbstp": bcd_operand}


@pytest.fixture(scope="module")
def uc():
    return Unicorn()


def test_differential_random_sequences(uc):
    rng = random.Random(SEED)
    names = list(OPS)
    passed, explained, bad = 0, {}, []
    per_op = COUNT // len(names) + 1
    for name in names:
        gen = GENERATORS.get(name, rand_pair)
        for _ in range(per_op):
            a, b = gen(rng)
            cw = rand_cw(rng)
            st = compare(uc, name, a, b, cw)
            if st == "pass":
                passed += 1
            elif st[0] == "explained":
                for i in st[1]:
                    explained[i] = explained.get(i, 0) + 1
            else:
                bad.append(st[1])
    total = per_op * len(names)
    print(f"x87 differential: {total} cases, {passed} identical, explained {explained}, "
          f"{len(bad)} unexplained")
    assert not bad, "\n".join(bad[:20])
    assert passed >= 0.85 * total


def test_differential_loads_and_constants(uc):
    rng = random.Random(SEED + 1)
    n = COUNT // 4
    bad = []
    u3 = 0
    for _ in range(n):
        cw = rand_cw(rng)
        k = rng.randrange(3)
        if k == 0:
            img = rng.getrandbits(32)
            if rng.randrange(3) == 0:
                img &= 0x807FFFFF                         # zeros and denormals
            if rng.randrange(4) == 0:
                img |= 0x7F800000                         # infinities and NaNs
            want = F.from_float32(img, cw)[0]
            snan = (img >> 23) & 0xFF == 0xFF and img & 0x7FFFFF and not img >> 22 & 1
            name = "fld32"
        elif k == 1:
            img = rng.getrandbits(64)
            if rng.randrange(3) == 0:
                img &= 0x800FFFFFFFFFFFFF
            if rng.randrange(4) == 0:
                img |= 0x7FF0000000000000
            want = F.from_float64(img, cw)[0]
            snan = (img >> 52) & 0x7FF == 0x7FF and img & ((1 << 52) - 1) and not img >> 51 & 1
            name = "fld64"
        else:
            img = int("".join(str(rng.randrange(10)) for _ in range(18)), 16)
            img |= rng.getrandbits(1) << 79
            want = F.from_bcd(img.to_bytes(10, "little"))
            snan = False
            name = "fbld"
        got, _ = uc.load(name, img, cw)
        if got != want:
            if snan and got | F.QUIET_BIT == want:
                u3 += 1                                   # U3: not quieted
            else:
                bad.append(f"{name} {img:#x} cw={cw:#x}: unicorn {got:#x} aero {want:#x}")
    u4 = 0
    for name in CONST_OPS:
        for rc in range(4):
            cw = 0x037F | (rc << 10)
            got, want = uc.const(name, cw), F.const(name, cw)
            if got != want:
                if rc != F.RC_NEAREST and got == F.const(name, F.CW_DEFAULT):
                    u4 += 1                               # U4: RC ignored
                else:
                    bad.append(f"const {name} rc={rc}: unicorn {got:#x} aero {want:#x}")
    print(f"loads: {n} cases, U3 {u3}; constants: 28 cases, U4 {u4}")
    assert not bad, "\n".join(bad[:20])
    assert u4 == 9          # l2t up; l2e, pi, lg2, ln2 down and chop


def test_harness_catches_a_rounding_bug(uc, monkeypatch):
    real = F._shift_round

    def bad(sign, m, shift, sticky, rc):
        r, inexact, up = real(sign, m, shift, sticky, rc)
        if inexact and rc == F.RC_NEAREST and not up and r & 1:
            return r + 1, inexact, True
        return r, inexact, up
    monkeypatch.setattr(F, "_shift_round", bad)
    third = F.pack(0, F.BIAS - 2, 0xAAAAAAAAAAAAAAAA)    # 1/3 truncated: * 3 needs rounding
    st = compare(uc, "fmul", third, F.from_int(3), 0x037F)
    assert st == "pass" or st[0] == "mismatch"
    rng = random.Random(1)
    results = [compare(uc, "fdiv", *rand_pair(rng), 0x037F) for _ in range(200)]
    assert any(r != "pass" and r[0] == "mismatch" for r in results)


# ----------------------------------------------------------------------------------------------
# the pinned deviations: unicorn's behaviour, the SDM's value (computed here), aero's value

DEF = F.CW_DEFAULT
ONE = 0x3FFF8000000000000000
THREE = 0x4000C000000000000000


def test_u1_no_exception_flags(uc):
    third, sw = uc.op("fdiv", ONE, THREE, DEF)           # 1/3: inexact (3 does not divide 2^k)
    assert sw & 0x3F == 0 and not sw & F.C1
    assert F.fdiv(ONE, THREE, DEF)[1] & F.PE
    snan = 0x7FFF8000000000000001
    _, sw = uc.op("fadd", snan, ONE, DEF)                # SDM 4.8.3.4: SNaN operand -> IE
    assert sw & 0x3F == 0 and F.fadd(snan, ONE, DEF)[1] == F.IE
    _, sw = uc.op("fmul", 0x00018000000000000000, 0x3FFE8000000000000001, DEF)   # tiny, inexact
    assert sw & 0x3F == 0 and F.fmul(0x00018000000000000000, 0x3FFE8000000000000001,
                                     DEF)[1] & 0x3F == F.UE | F.PE
    _, sw = uc.op("fdiv", 0, 0, DEF)                     # 0/0: SDM FDIV: #IA, not #Z
    assert sw & 0x3F == F.ZE and F.fdiv(0, 0, DEF)[1] == F.IE
    _, sw = uc.op("fdiv", F.POS_INF, 0, DEF)             # inf/0: SDM FDIV table: inf, no flag
    assert sw & 0x3F == F.ZE and F.fdiv(F.POS_INF, 0, DEF) == (F.POS_INF, 0)


def test_u2_pseudo_denormals(uc):
    a, b = 0x8000AE6AC89A8BB3835B, 0x0001A1D3FF8211180CD9   # -pseudo-denormal + normal
    exact = (-0xAE6AC89A8BB3835B + 0xA1D3FF8211180CD9)     # both weigh 2^-16445
    assert exact < 0 and -exact < 1 << 63                  # an exact negative denormal
    want = (1 << 79) | -exact
    got, _ = uc.op("fadd", a, b, DEF)
    assert got == 0x1F36936E78564897E != want
    assert F.fadd(a, b, DEF) == (want, F.DE)
    # compare: the pseudo-denormal's significand is larger, so it is greater (SDM 8.2.2)
    a, b = 0xFADBDFA301DAF7DD, 0x0001DCCA9140A0451DDA
    assert uc.op("fucom", a, b, DEF)[0] & (F.C3 | F.C2 | F.C0) == F.C0     # unicorn: less
    assert F.fcom(a, b, DEF, unordered=True) == (0, F.DE)


def test_u3_snan_not_quieted(uc):
    snan = 0x7FFF8000000000000001 | (0x123456 << 40)
    got, _ = uc.op("fst32", snan, 0, DEF)
    # SDM: the SNaN is converted to a QNaN (quiet bit 22 set), fraction from the top bits
    want = 0x7F800000 | (1 << 22) | ((snan >> 40) & 0x7FFFFF)
    assert got == want & ~(1 << 22) and F.to_float32(snan, DEF) == (want, F.IE)
    got, _ = uc.load("fld32", 0x7F800001, DEF)
    want = F.pack(0, 0x7FFF, F.J_BIT | F.QUIET_BIT | (1 << 40))
    assert got == want & ~F.QUIET_BIT and F.from_float32(0x7F800001, DEF) == (want, F.IE)
    got, _ = uc.op("fscale", THREE, 0x7FFF8000000000000001, DEF)
    assert got == 0x7FFF8000000000000001
    assert F.fscale(THREE, 0x7FFF8000000000000001, DEF) == (0x7FFFC000000000000001, F.IE)


def test_u4_constants_ignore_rounding_control(uc):
    getcontext_pi = Fraction(
        314159265358979323846264338327950288419716939937510582097494459230781640628,
        10 ** 74)
    cw_down = DEF | (F.RC_DOWN << 10)
    got = uc.const("pi", cw_down)
    assert got == 0x4000C90FDAA22168C235
    value = lambda v: Fraction(v & F.SIG_MASK, 1 << 62)      # exponent 0x4000: weight 2^1
    assert value(got) > getcontext_pi                       # rounded up in round-down mode
    assert F.const("pi", cw_down) == 0x4000C90FDAA22168C234
    assert value(F.const("pi", cw_down)) < getcontext_pi < value(F.const("pi", cw_down) + 1)


def test_u5_fprem_in_double_precision(uc):
    a = 0x403EFFFFFFFFFFFFFFFF                           # 2^64 - 1, divisible by 3
    (r, cc), _ = uc.op("fprem", a, THREE, DEF)
    assert r == 0 and cc & F.C2                           # unicorn: "incomplete"
    q = ((1 << 64) - 1) // 3                              # SDM: complete, Q2 Q1 Q0 = q mod 8
    assert ((1 << 64) - 1) % 3 == 0 and q % 8 == 5
    v, sw = F.fprem(a, THREE, DEF)
    assert v == 0 and sw & (F.C0 | F.C1 | F.C2 | F.C3) == F.C0 | F.C1
    qnan = 0x7FFFC000000000000001
    (r, cc), _ = uc.op("fprem", qnan, THREE, DEF)
    assert r == 0x7FFFC000000000000000                    # SDM table 4-7: the QNaN operand
    assert F.fprem(qnan, THREE, DEF)[0] == qnan
    (r, cc), _ = uc.op("fprem", THREE, 0, DEF)
    assert r == 0x7FFFC000000000000000                    # SDM FPREM: #IA, indefinite
    assert F.fprem(THREE, 0, DEF) == (F.INDEFINITE, F.IE)
    (r, cc), _ = uc.op("fprem", F.fchs(THREE), THREE, DEF)
    assert r == 0                                          # SDM FPREM table: -F rem F = -0
    assert F.fprem(F.fchs(THREE), THREE, DEF) == (F.NEG_ZERO, F.C1)


def test_u6_fprem1_exponent_shortcut(uc):
    a, b = F.from_int(-3), F.from_int(-4)                 # -3 rem -4: q = round(0.75) = 1
    (r, cc), _ = uc.op("fprem1", a, b, DEF)
    assert r == a and cc == 0
    v, sw = F.fprem1(a, b, DEF)                            # SDM: -3 - (-4) = 1, Q0 = 1
    assert v == ONE and sw & (F.C0 | F.C1 | F.C3) == F.C1


def test_u7_fscale(uc):
    x = 0x3FFFFFFFFFFFFFFFFFFF                           # 2 - 2^-63: 64 significant bits
    got, _ = uc.op("fscale", x, 0, 0x007F)                # PC = 24 bits, scale by 2^0
    assert got == 0x40008000000000000000                  # rounded to 24 bits
    assert F.fscale(x, 0, 0x007F) == (x, 0)               # SDM 8.1.5.2: PC does not apply
    got, _ = uc.op("fscale", F.from_int(-3), F.POS_INF, 0x0F7F)
    assert got == 0xFFFEFFFFFFFFFFFFFFFF                  # SDM FSCALE table: -F * 2^+inf = -inf
    assert F.fscale(F.from_int(-3), F.POS_INF, 0x0F7F) == (F.NEG_INF, 0)
    a, b = 0x7FFFF180000000000000, 0x7FFFDAD2224C5D66369A
    got, _ = uc.op("fscale", a, b, DEF)                   # two QNaNs: the larger significand
    assert got == b and (a & F.SIG_MASK) > (b & F.SIG_MASK)
    assert F.fscale(a, b, DEF) == (a, 0)


def test_u8_fxtract(uc):
    (e, s), _ = uc.op("fxtract", F.NEG_INF, 0, DEF)
    assert e == 0x400D8000000000000000                    # 16384.0
    assert F.fxtract(F.NEG_INF, DEF) == (F.POS_INF, F.NEG_INF, 0)   # SDM FXTRACT: +inf, -inf
    (e, s), _ = uc.op("fxtract", 1, 0, DEF)               # the smallest denormal, 2^-16445
    assert s == 0x3FFF0000000000000001                    # an unnormal significand
    e2, s2, sw = F.fxtract(1, DEF)
    assert s2 == ONE and F.to_fraction(e2) == -16445 and sw == F.DE


def test_u9_fxam_unsupported(uc):
    unnormal = 0x40004000000000000000
    assert uc.op("fxam", unnormal, 0, DEF)[0] & 0x4700 == F.C2      # "normal"
    assert uc.op("fxam", 0x7FFF0000000000000000, 0, DEF)[0] & 0x4700 == F.C0   # "NaN"
    assert F.fxam(unnormal) == 0 and F.fxam(0x7FFF0000000000000000) == 0    # SDM: unsupported


def test_u10_fbstp(uc):
    assert uc.op("fbstp", F.NEG_ZERO, 0, DEF)[0] == 0      # SDM FBSTP table: -0 stores -0
    assert F.to_bcd(F.NEG_ZERO, DEF) == (bytes(9) + b"\x80", 0)
    big = F.from_int(10 ** 18)                             # 19 digits: invalid
    assert uc.op("fbstp", big, 0, DEF)[0] == 0
    indef = (0xFFFF << 64 | 0xC000000000000000).to_bytes(10, "little")
    assert F.to_bcd(big, DEF) == (indef, F.IE)
    assert uc.op("fbstp", F.POS_INF, 0, DEF)[0] == 0x223372036854775807


def test_u11_unsupported_operands(uc):
    unnormal = 0x40004000000000000000
    (e, s), _ = uc.op("fxtract", unnormal, 0, DEF)
    assert (e, s) == (ONE, 0x3FFF4000000000000000)
    assert F.fxtract(unnormal, DEF) == (F.INDEFINITE, F.INDEFINITE, F.IE)
    (r, _), _ = uc.op("fprem", unnormal, ONE, DEF)
    assert r == 0x7FFFC000000000000000 and F.fprem(unnormal, ONE, DEF) == (F.INDEFINITE, F.IE)
    got, _ = uc.op("fscale", 0x3FFFFFFFFFFFFFFFFFFF, unnormal, DEF)
    assert got == 0 and F.fscale(0x3FFFFFFFFFFFFFFFFFFF, unnormal, DEF) == (F.INDEFINITE, F.IE)


TRANS_OPS = {"fsin": "d9fe", "f2xm1": "d9f0", "fpatan": "d9f3"}


def test_u12_transcendentals_in_double_precision(uc):
    mpmath = pytest.importorskip("mpmath")
    from aero.fpu import transcendental as TR
    third = 0x3FFDAAAAAAAAAAAAAAAB                        # 1/3 rounded to 64 bits
    x = Fraction(0xAAAAAAAAAAAAAAAB, 1 << 65)
    mpmath.mp.prec = 300
    xm = mpmath.mpf(x.numerator) / x.denominator
    exact = {"fsin": mpmath.sin(xm), "f2xm1": mpmath.powm1(2, xm), "fpatan": mpmath.atan(xm)}
    for name, opc in TRANS_OPS.items():
        OPS[name] = (2 if name == "fpatan" else 1, bytes.fromhex(opc), FSTP_R, "r80")
        try:
            got, _ = uc.op(name, ONE if name == "fpatan" else third, third, DEF)
        finally:
            del OPS[name]
        ours = (TR.fpatan(ONE, third, DEF) if name == "fpatan"
                else getattr(TR, name)(third, DEF))[0]
        e = ((got >> 64) & 0x7FFF) - F.BIAS - 63
        ulp = mpmath.mpf(2) ** e
        ulps = abs(mpmath.mpf(got & F.SIG_MASK) * ulp - exact[name]) / ulp
        assert got & 0x7FF == 0 and ulps > 100              # 53 bits, far beyond 1 ulp
        e = ((ours >> 64) & 0x7FFF) - F.BIAS - 63
        assert abs(mpmath.mpf(ours & F.SIG_MASK) * mpmath.mpf(2) ** e - exact[name]) <= \
            mpmath.mpf(2) ** e / 2                         # aero: correctly rounded
