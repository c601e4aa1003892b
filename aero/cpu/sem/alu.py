"""Integer arithmetic beyond the basic ALU: carries, multiply/divide, BCD adjusts, shifts and
rotates, double shifts, bit tests and scans, exchange-and-add/compare, conversions, SETcc/CMOVcc,
LAHF/SAHF.

Templates only, plus the helpers they call (all named ``alu_*``); see the package docstring for
the conventions.  Flags follow the Intel SDM Vol. 2 instruction pages.  Where the SDM calls a flag
undefined we reproduce what hardware shows in the recorded 80286 vectors when they show it, and
otherwise a fixed, documented choice (noted at each helper).

Lazy flags (``cpu.lf``) are used where a lazy kind is exact on every defined flag (NEG = SUB from
0, CMPXCHG = CMP, XADD = ADD, ADC/SBB with a clear carry = ADD/SUB, SHL = ADD of a value to
itself, AAM = LOGIC, AAD = ADD) and for the kinds ``aero.cpu.flags`` has for them (SHR, SAR,
IMUL2/IMUL3); everything else computes its flags eagerly.
"""

from ...faults import CPUFault
from ..flags import ARITH, CF, AF, ZF, SF, OF, PARITY, SUB_K, arith, carry

TEMPLATES = {}

_NOT_ARITH = ~ARITH & 0xFFFFFFFF


def alu_szp(r, bits):
    """SF, ZF and PF of a result of ``bits`` bits."""
    f = PARITY[r & 0xFF]
    if r == 0:
        f |= ZF
    if r >> (bits - 1):
        f |= SF
    return f


def alu_put(cpu, f):
    """Replace all six arithmetic flags with ``f`` (no need to materialise the lazy ones)."""
    cpu.lf = None
    cpu.flags = (cpu.flags & _NOT_ARITH) | f


def alu_cf(cpu):
    """The current CF as 0/1."""
    lf = cpu.lf
    return cpu.flags & 1 if lf is None else carry(lf)


# ---------------------------------------------------------------------------------------------
# ADC / SBB: a clear carry is exactly ADD / SUB (lazy); a set carry is computed here.  With a
# carry-in, AF/OF/SF/ZF/PF still follow the ADD/SUB formulas on the original operands; only CF
# differs (r <= a for ADC, a <= b for SBB).
# ---------------------------------------------------------------------------------------------
def alu_adc_flags(cpu, kind, a, b, r):
    f = arith((kind, a, b, r)) & ~CF
    if kind < SUB_K:
        if r <= a:
            f |= CF
    elif a <= b:
        f |= CF
    cpu.lf = None
    cpu.flags = (cpu.flags & _NOT_ARITH) | f


TEMPLATES["ADC"] = """
a = $A
b = $B
lf = cpu.lf
c = (cpu.flags & 1) if lf is None else carry(lf)
r = (a + b + c) & $MASK
$A = r
if c:
    alu_adc_flags(cpu, %ADD, a, b, r)
else:
    cpu.lf = (%ADD, a, b, r)
"""

TEMPLATES["SBB"] = """
a = $A
b = $B
lf = cpu.lf
c = (cpu.flags & 1) if lf is None else carry(lf)
r = (a - b - c) & $MASK
$A = r
if c:
    alu_adc_flags(cpu, %SUB, a, b, r)
else:
    cpu.lf = (%SUB, a, b, r)
"""

TEMPLATES["NEG"] = """
a = $A
r = -a & $MASK
$A = r
cpu.lf = (%SUB, 0, a, r)
"""

TEMPLATES["NOT"] = """
$A = $A ^ $MASK
"""


# ---------------------------------------------------------------------------------------------
# MUL / IMUL / DIV / IDIV.  SDM: MUL/IMUL set CF = OF = "the upper half is significant"; SF, ZF,
# AF, PF are undefined: we set SF/ZF/PF from the low half of the result and clear AF.  DIV/IDIV
# leave all six flags undefined: we leave them unchanged.
# ---------------------------------------------------------------------------------------------
def alu_mul(cpu, v, bits, signed):
    """One-operand MUL/IMUL: AX = AL * v, DX:AX = AX * v, EDX:EAX = EAX * v."""
    R = cpu.R
    mask = (1 << bits) - 1
    a = R[0] & mask
    if signed:
        sign = 1 << (bits - 1)
        if a & sign:
            a -= sign << 1
        if v & sign:
            v -= sign << 1
        p = a * v
        lo = p & mask
        big = p != (lo - (sign << 1) if lo & sign else lo)
        p &= (1 << (2 * bits)) - 1
    else:
        p = a * v
        lo = p & mask
        big = p > mask
    if bits == 8:
        R[0] = (R[0] & 0xFFFF0000) | p
    elif bits == 16:
        R[0] = (R[0] & 0xFFFF0000) | lo
        R[2] = (R[2] & 0xFFFF0000) | (p >> 16)
    else:
        R[0] = lo
        R[2] = p >> 32
    f = alu_szp(lo, bits)
    if big:
        f |= CF | OF
    cpu.lf = None
    cpu.flags = (cpu.flags & _NOT_ARITH) | f


def alu_div(cpu, v, bits):
    """DIV: #DE on a zero divisor or a quotient that does not fit (before any change)."""
    R = cpu.R
    if bits == 8:
        n = R[0] & 0xFFFF
    elif bits == 16:
        n = ((R[2] & 0xFFFF) << 16) | (R[0] & 0xFFFF)
    else:
        n = (R[2] << 32) | R[0]
    if v == 0:
        raise CPUFault(0)
    q, rem = divmod(n, v)
    if q >> bits:
        raise CPUFault(0)
    alu_div_store(R, q, rem, bits)


def alu_idiv(cpu, v, bits):
    """IDIV: truncating signed division; #DE on a zero divisor or a quotient outside the signed
    range.  An i686 accepts the most negative quotient (-128/-32768/-2^31); the 8086 did not."""
    R = cpu.R
    sign = 1 << (bits - 1)
    if bits == 8:
        n = R[0] & 0xFFFF
    elif bits == 16:
        n = ((R[2] & 0xFFFF) << 16) | (R[0] & 0xFFFF)
    else:
        n = (R[2] << 32) | R[0]
    if v == 0:
        raise CPUFault(0)
    if n >> (2 * bits - 1):
        n -= 1 << (2 * bits)
    if v & sign:
        v -= sign << 1
    q = abs(n) // abs(v)
    if (n < 0) != (v < 0):
        q = -q
    rem = n - q * v
    if q >= sign or q < -sign:
        raise CPUFault(0)
    mask = (sign << 1) - 1
    alu_div_store(R, q & mask, rem & mask, bits)


def alu_div_store(R, q, rem, bits):
    if bits == 8:
        R[0] = (R[0] & 0xFFFF0000) | (rem << 8) | q
    elif bits == 16:
        R[0] = (R[0] & 0xFFFF0000) | q
        R[2] = (R[2] & 0xFFFF0000) | rem
    else:
        R[0] = q
        R[2] = rem


TEMPLATES["MUL"] = """
v = $A
alu_mul(cpu, v, $BITS, False)
"""

TEMPLATES["IMUL"] = """
v = $A
alu_mul(cpu, v, $BITS, True)
"""

# Two- and three-operand IMUL, inline, with lazy flags (flags.py): CF = OF = the product does not
# fit, SF/ZF/PF of the result, AF 0.
# the low half is the same whatever the signs; OF/CF say whether the signed product (the
# operands sign-extended: (x ^ SIGN) - SIGN) leaves the destination's range.  Written so that a
# translation whose flags are dead keeps a single multiplication (aero.jit.translate).
_IMUL_N = """
r = (a * b) & $MASK
$A = r
o = 0 if -$SIGN <= ((a ^ $SIGN) - $SIGN) * ((b ^ $SIGN) - $SIGN) < $SIGN else 1
cpu.lf = (%MUL, 0, o, r)
"""

TEMPLATES["IMUL2"] = """
a = $A
b = $B
""" + _IMUL_N

TEMPLATES["IMUL3"] = """
a = $B
b = $C
""" + _IMUL_N

TEMPLATES["DIV"] = """
v = $A
alu_div(cpu, v, $BITS)
"""

TEMPLATES["IDIV"] = """
v = $A
alu_idiv(cpu, v, $BITS)
"""


# ---------------------------------------------------------------------------------------------
# Decimal adjusts (SDM Vol. 2 pseudocode).  Undefined flags: DAA/DAS OF, AAA/AAS OF/SF/ZF/PF,
# AAM/AAD OF/AF/CF -- see each helper.
# ---------------------------------------------------------------------------------------------
def alu_daa(cpu, sub):
    f = cpu.get_flags()
    R = cpu.R
    al = old = R[0] & 0xFF
    cf = f & CF
    af = f & AF
    ncf = 0
    if (al & 0x0F) > 9 or af:
        al = (al - 6) if sub else (al + 6)
        ncf = cf | (1 if al < 0 or al > 0xFF else 0)
        al &= 0xFF
        naf = AF
    else:
        naf = 0
    if old > 0x99 or cf:
        al = ((al - 0x60) if sub else (al + 0x60)) & 0xFF
        ncf = 1
    elif not sub:
        ncf = 0
    # OF (undefined): set as the 286 does, when the adjusted AL's sign bit changed from the
    # direction of the adjustment (add: 0 -> 1, subtract: 1 -> 0).
    of = 0
    if sub:
        if old & 0x80 and not al & 0x80:
            of = OF
    elif not old & 0x80 and al & 0x80:
        of = OF
    R[0] = (R[0] & 0xFFFFFF00) | al
    cpu.flags = (f & _NOT_ARITH) | alu_szp(al, 8) | naf | ncf | of


def alu_aaa(cpu, sub):
    f = cpu.get_flags()
    R = cpu.R
    ax = R[0] & 0xFFFF
    al = ax & 0xFF
    if (al & 0x0F) > 9 or f & AF:
        ax = (ax - 0x106) if sub else (ax + 0x106)
        ax &= 0xFFFF
        adj = AF | CF
    else:
        adj = 0
    ax &= 0xFF0F
    R[0] = (R[0] & 0xFFFF0000) | ax
    # OF, SF, ZF, PF undefined: SF/ZF/PF from the final AL, OF clear.
    cpu.flags = (f & _NOT_ARITH) | alu_szp(ax & 0xFF, 8) | adj


TEMPLATES["DAA"] = "alu_daa(cpu, False)\n"
TEMPLATES["DAS"] = "alu_daa(cpu, True)\n"
TEMPLATES["AAA"] = "alu_aaa(cpu, False)\n"
TEMPLATES["AAS"] = "alu_aaa(cpu, True)\n"

# AAM: #DE for a zero base.  OF/AF/CF undefined: cleared (a LOGIC result on AL).
TEMPLATES["AAM"] = """
b = $IMM & 0xFF
if b == 0:
    raise CPUFault(0)
al = R[0] & 0xFF
r = al % b
R[0] = (R[0] & 0xFFFF0000) | ((al // b) << 8) | r
cpu.lf = (LOGIC_K, 0, 0, r)
"""

# AAD: AL = AL + AH * imm8, AH = 0.  OF/AF/CF undefined: those of the 8-bit addition.
TEMPLATES["AAD"] = """
a = R[0] & 0xFF
b = (((R[0] >> 8) & 0xFF) * ($IMM & 0xFF)) & 0xFF
r = (a + b) & 0xFF
R[0] = (R[0] & 0xFFFF0000) | r
cpu.lf = (ADD_K, a, b, r)
"""

TEMPLATES["SALC"] = """
R[0] = (R[0] & 0xFFFFFF00) | (0xFF if alu_cf(cpu) else 0)
"""


# ---------------------------------------------------------------------------------------------
# Shifts and rotates.  The count is masked to 5 bits (386+); a masked count of 0 changes nothing
# (the operand is still read, so a bad memory operand still faults).  The result is written
# before the flags, so a faulting write leaves the flags alone.
# ---------------------------------------------------------------------------------------------
# SHL/SAL by c is ADD of a' = a << (c - 1) to itself: CF = the last bit shifted out, OF = MSB(result)
# ^ CF (defined for c = 1; the same formula for larger counts, as the 286 vectors show), SF/ZF/PF
# from the result; AF (undefined) = bit 4 of the result.  So it stays lazy.
TEMPLATES["SHL"] = """
a = $A
c = $B & 31
if c:
    a = (a << (c - 1)) & $MASK
    r = (a << 1) & $MASK
    $A = r
    cpu.lf = (%ADD, a, a, r)
"""

# SHR: CF = the last bit shifted out; OF = MSB(original) for a count of 1 and 0 for larger ones
# (the top two result bits XORed, as the 286 vectors show); AF undefined: 0.  Lazy (flags.py).
TEMPLATES["SHR"] = """
a = $A
c = $B & 31
if c:
    r = a >> c
    $A = r
    cpu.lf = (%SHR, a, c, r)
"""

# SAR: CF = the last bit shifted out; OF = 0; AF undefined: 0.  Lazy (flags.py).
TEMPLATES["SAR"] = """
a = $A
c = $B & 31
if c:
    r = ((a - ($SIGN << 1) if a & $SIGN else a) >> c) & $MASK
    $A = r
    cpu.lf = (%SAR, a, c, r)
"""

# ROL/ROR by c mod size (the masked count is a multiple of the size: the value is unchanged but
# CF and OF are still set).  ROL: CF = LSB(result), OF = MSB(result) ^ CF.  ROR: CF = MSB(result),
# OF = the two top bits of the result differ.  OF is defined for 1 only; the same formula holds
# for larger counts in the 286 vectors.
TEMPLATES["ROL"] = """
a = $A
c = $B & 31
if c:
    n = c & ($BITS - 1)
    r = ((a << n) | (a >> ($BITS - n))) & $MASK
    $A = r
    if cpu.lf is not None:
        cpu.get_flags()
    cpu.flags = (cpu.flags & 0xFFFFF7FE) | (r & 1) | ((((r >> ($BITS - 1)) ^ r) & 1) << 11)
"""

TEMPLATES["ROR"] = """
a = $A
c = $B & 31
if c:
    n = c & ($BITS - 1)
    r = ((a >> n) | (a << ($BITS - n))) & $MASK
    $A = r
    if cpu.lf is not None:
        cpu.get_flags()
    cpu.flags = ((cpu.flags & 0xFFFFF7FE) | (r >> ($BITS - 1))
                 | ((((r >> ($BITS - 1)) ^ (r >> ($BITS - 2))) & 1) << 11))
"""


def alu_rcl(a, c, bits, cf):
    """RCL through CF: (bits + 1)-bit rotate; OF = MSB(result) ^ CF for every count."""
    n = c % (bits + 1)
    if n:
        t = (cf << bits) | a
        t = ((t << n) | (t >> (bits + 1 - n))) & ((2 << bits) - 1)
        a = t & ((1 << bits) - 1)
        cf = t >> bits
    return a, cf | (OF if ((a >> (bits - 1)) ^ cf) & 1 else 0)


def alu_rcr(a, c, bits, cf):
    """RCR through CF; OF = the two top bits of the result differ, for every count."""
    n = c % (bits + 1)
    if n:
        t = (cf << bits) | a
        t = ((t >> n) | (t << (bits + 1 - n))) & ((2 << bits) - 1)
        a = t & ((1 << bits) - 1)
        cf = t >> bits
    return a, cf | (OF if ((a >> (bits - 1)) ^ (a >> (bits - 2))) & 1 else 0)


for _n, _fn in (("RCL", "alu_rcl"), ("RCR", "alu_rcr")):
    TEMPLATES[_n] = f"""
a = $A
c = $B & 31
if c:
    r, f = {_fn}(a, c, $BITS, alu_cf(cpu))
    $A = r
    cpu.set_arith(f, 0x801)
"""


# SHLD / SHRD.  A 16-bit operand with a count of 17..31 is undefined in the SDM; we shift the
# 48-bit value dest:src:dest as P6-class parts do.  OF (defined for 1) = the sign changed, for
# every count; AF undefined: 0.
def alu_shld(a, b, c, bits):
    if bits == 16:
        t = ((a << 32) | (b << 16) | a) << c
        r = (t >> 32) & 0xFFFF
        cf = (t >> 48) & 1
    else:
        r = ((a << c) | (b >> (32 - c))) & 0xFFFFFFFF
        cf = (a >> (32 - c)) & 1
    f = alu_szp(r, bits) | cf
    if (r ^ a) >> (bits - 1):
        f |= OF
    return r, f


def alu_shrd(a, b, c, bits):
    if bits == 16:
        t = (a << 32) | (b << 16) | a
        r = (t >> c) & 0xFFFF
        cf = (t >> (c - 1)) & 1
    else:
        r = ((a >> c) | (b << (32 - c))) & 0xFFFFFFFF
        cf = (a >> (c - 1)) & 1
    f = alu_szp(r, bits) | cf
    if (r ^ a) >> (bits - 1):
        f |= OF
    return r, f


for _n, _fn in (("SHLD", "alu_shld"), ("SHRD", "alu_shrd")):
    TEMPLATES[_n] = f"""
a = $A
b = $B
c = $C & 31
if c:
    r, f = {_fn}(a, b, c, $BITS)
    $A = r
    cpu.lf = None
    cpu.flags = (cpu.flags & 0xFFFFF72A) | f
"""


# ---------------------------------------------------------------------------------------------
# Bit test and scan.  BT*: CF = the bit; ZF unchanged (SDM); OF/SF/AF/PF undefined: unchanged.
# With a register bit offset and a memory operand the offset is signed and selects memory
# beyond the operand (SDM Vol. 2, BT: "bit string" addressing); an immediate offset is taken
# modulo the operand size.
# ---------------------------------------------------------------------------------------------
def alu_bt_locate(ins, ea, off, bits, amask):
    """(address, bit number) of the bit a memory-form BT* addresses."""
    if ins.two and ins.opcode == 0xBA:                   # immediate bit offset
        return ea, off & (bits - 1)
    sign = 1 << (bits - 1)
    s = off - (sign << 1) if off & sign else off
    return (ea + (s >> (3 if bits == 8 else 4 if bits == 16 else 5)) * (bits >> 3)) & amask, \
        off & (bits - 1)


def alu_set_cf(cpu, cf):
    if cpu.lf is not None:
        cpu.get_flags()
    cpu.flags = (cpu.flags & ~CF) | cf


TEMPLATES["BT@r"] = """
alu_set_cf(cpu, ($A >> ($B & ($BITS - 1))) & 1)
"""

TEMPLATES["BT@m"] = """
ea, n = alu_bt_locate($INS, $EA, $B, $BITS, $AMASK)
v = rd$BITS($SEG, ea)
alu_set_cf(cpu, (v >> n) & 1)
"""

for _n, _op in (("BTS", "v | (1 << n)"), ("BTR", "v & ~(1 << n) & $MASK"), ("BTC", "v ^ (1 << n)")):
    TEMPLATES[_n + "@r"] = f"""
v = $A
n = $B & ($BITS - 1)
$A = {_op}
alu_set_cf(cpu, (v >> n) & 1)
"""
    TEMPLATES[_n + "@m"] = f"""
ea, n = alu_bt_locate($INS, $EA, $B, $BITS, $AMASK)
v = rd$BITS($SEG, ea)
wr$BITS($SEG, ea, {_op})
alu_set_cf(cpu, (v >> n) & 1)
"""


def alu_set_zf(cpu, zf):
    if cpu.lf is not None:
        cpu.get_flags()
    cpu.flags = (cpu.flags & ~ZF) | zf


# BSF/BSR: a zero source sets ZF and leaves the destination unchanged (as hardware does);
# CF/OF/SF/AF/PF undefined: unchanged.
TEMPLATES["BSF"] = """
v = $B
if v:
    $A = (v & -v).bit_length() - 1
    alu_set_zf(cpu, 0)
else:
    alu_set_zf(cpu, ZF)
"""

TEMPLATES["BSR"] = """
v = $B
if v:
    $A = v.bit_length() - 1
    alu_set_zf(cpu, 0)
else:
    alu_set_zf(cpu, ZF)
"""


# ---------------------------------------------------------------------------------------------
# XADD, CMPXCHG, CMPXCHG8B, BSWAP
# ---------------------------------------------------------------------------------------------
# XADD: TEMP = SRC + DEST; SRC = DEST; DEST = TEMP.  Register form: the source is written first,
# so XADD r, r leaves the sum.  Memory form: memory first, so a faulting write changes nothing.
TEMPLATES["XADD@r"] = """
a = $A
b = $B
r = (a + b) & $MASK
$B = a
$A = r
cpu.lf = (%ADD, a, b, r)
"""

TEMPLATES["XADD@m"] = """
a = $A
b = $B
r = (a + b) & $MASK
$A = r
$B = a
cpu.lf = (%ADD, a, b, r)
"""

# CMPXCHG: compare the accumulator with the destination (flags as CMP).  Equal: DEST = SRC.
# Otherwise: the accumulator = DEST, and a memory destination is written back unchanged (the
# processor always writes; SDM Vol. 2, CMPXCHG).
TEMPLATES["CMPXCHG@r"] = """
d = $A
acc = R[0] & $MASK
if acc == d:
    $A = $B
else:
    R[0] = (R[0] & (0xFFFFFFFF ^ $MASK)) | d
cpu.lf = (%SUB, acc, d, (acc - d) & $MASK)
"""

TEMPLATES["CMPXCHG@m"] = """
d = $A
acc = R[0] & $MASK
if acc == d:
    $A = $B
else:
    $A = d
    R[0] = (R[0] & (0xFFFFFFFF ^ $MASK)) | d
cpu.lf = (%SUB, acc, d, (acc - d) & $MASK)
"""


def alu_cmpxchg8b(cpu, s, ea):
    """The 8 bytes are always written (back unchanged on a mismatch), so they must be writable
    whatever the outcome: probe the write before touching anything."""
    R = cpu.R
    cpu.check_write(s, ea, 8)
    lo = cpu.rd32(s, ea)
    hi = cpu.rd32(s, (ea + 4) & 0xFFFFFFFF)
    if lo == R[0] and hi == R[2]:
        cpu.wr32(s, ea, R[3])
        cpu.wr32(s, (ea + 4) & 0xFFFFFFFF, R[1])
        alu_set_zf(cpu, ZF)
    else:
        cpu.wr32(s, ea, lo)
        cpu.wr32(s, (ea + 4) & 0xFFFFFFFF, hi)
        R[0] = lo
        R[2] = hi
        alu_set_zf(cpu, 0)


TEMPLATES["CMPXCHG8B"] = """
alu_cmpxchg8b(cpu, $SEG, $EA)
"""

# BSWAP with a 16-bit operand size is undefined: the low word becomes 0 (as hardware does).
TEMPLATES["BSWAP"] = """
v = $A
if $OSZ == 32:
    $A = int.from_bytes(v.to_bytes(4, "little"), "big")
else:
    $A = v & 0xFFFF0000
"""


# ---------------------------------------------------------------------------------------------
# Conversions, SETcc, CMOVcc, LAHF/SAHF
# ---------------------------------------------------------------------------------------------
# CBW / CWDE: sign-extend the low half of the accumulator (operand size $BITS) into all of it.
TEMPLATES["CBW"] = """
v = R[0] & ((1 << ($BITS >> 1)) - 1)
if v & (1 << (($BITS >> 1) - 1)):
    v |= $MASK ^ ((1 << ($BITS >> 1)) - 1)
R[0] = (R[0] & (0xFFFFFFFF ^ $MASK)) | v
"""

# CWD / CDQ: DX/EDX = the sign of AX/EAX.
TEMPLATES["CWD"] = """
R[2] = (R[2] & (0xFFFFFFFF ^ $MASK)) | ($MASK if R[0] & $SIGN else 0)
"""

TEMPLATES["SETCC"] = """
$A = 1 if cond(cpu, $CC) else 0
"""

# SETE/SETNE, CMOVE/CMOVNE: ZF straight from a lazy result (every lazy kind's ZF is r == 0).
TEMPLATES["SETCC.4"] = """
lf = cpu.lf
$A = 1 if ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)) else 0
"""

TEMPLATES["SETCC.5"] = """
lf = cpu.lf
$A = 0 if ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)) else 1
"""

# CMOVcc: the source is always read (a memory source can fault even when the condition is
# false); on an i686 nothing is written when the condition is false.
TEMPLATES["CMOVCC"] = """
v = $B
if cond(cpu, $CC):
    $A = v
"""

TEMPLATES["CMOVCC.4"] = """
v = $B
lf = cpu.lf
if (lf[3] == 0) if lf is not None else (cpu.flags & 0x40):
    $A = v
"""

TEMPLATES["CMOVCC.5"] = """
v = $B
lf = cpu.lf
if not ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)):
    $A = v
"""

# LAHF: AH = SF:ZF:0:AF:0:PF:1:CF.  SAHF: SF, ZF, AF, PF, CF from AH.
TEMPLATES["LAHF"] = """
R[0] = (R[0] & 0xFFFF00FF) | (((cpu.get_flags() & 0xD5) | 2) << 8)
"""

TEMPLATES["SAHF"] = """
cpu.set_arith((R[0] >> 8) & 0xD5, 0xD5)
"""
