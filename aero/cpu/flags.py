"""EFLAGS bits and lazy arithmetic flags.

Arithmetic instructions do not compute OF/SF/ZF/AF/PF/CF.  They leave a tuple in ``cpu.lf``:
``(kind, a, b, r)`` with the operands and the (masked) result, and the flags are computed only
when something reads them.  ``cpu.lf is None`` means ``cpu.flags`` holds every bit.  ``kind``
is ``op * 3 + size_index`` (8, 16, 32 bits -> 0, 1, 2).

SHR and SAR by a count of 1..31 leave ``(kind, a, count, r)``: CF is the last bit shifted out,
OF the original sign for SHR by 1 (0 otherwise), AF 0.  Two- and three-operand IMUL leave
``(MUL, 0, big, r)``: CF = OF = ``big`` (the product did not fit), AF 0.

INC and DEC keep CF: their ``b`` slot holds the CF source (an int 0/1, or the older lazy tuple,
which is never itself an INC/DEC tuple, so a chain is at most one hop long).  They are the last
kinds (``kind >= INC_K``).
"""

from __future__ import annotations

CF, PF, AF, ZF, SF, TF, IF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800
IOPL, NT, RF, VM, AC, VIF, VIP, ID = 0x3000, 0x4000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000
ARITH = CF | PF | AF | ZF | SF | OF            # 0x8D5
FIXED1 = 0x2                                    # bit 1 always reads 1
# Bits an i686 lets software change (bits 3, 5, 15, 22+ are reserved and read 0).
WRITABLE = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID

SIZES = (8, 16, 32)
MASK = (0xFF, 0xFFFF, 0xFFFFFFFF)
SIGN = (0x80, 0x8000, 0x80000000)

OPS = ("ADD", "SUB", "LOGIC", "SHR", "SAR", "MUL", "INC", "DEC")
KIND = {name: i * 3 for i, name in enumerate(OPS)}
ADD_K, SUB_K, LOGIC_K, SHR_K, SAR_K, MUL_K, INC_K, DEC_K = (KIND[n] for n in OPS)

PARITY = bytes(0 if bin(i).count("1") & 1 else PF for i in range(256))


def arith(lf) -> int:
    """The OSZAPC bits described by a lazy tuple."""
    kind, a, b, r = lf
    op, si = divmod(kind, 3)
    sign = SIGN[si]
    f = PARITY[r & 0xFF]
    if r == 0:
        f |= ZF
    if r & sign:
        f |= SF
    if op == 0:                                 # ADD: r = a + b
        if r < a:
            f |= CF
        f |= (a ^ b ^ r) & AF
        if (a ^ r) & (b ^ r) & sign:
            f |= OF
    elif op == 1:                               # SUB / CMP / NEG: r = a - b
        if a < b:
            f |= CF
        f |= (a ^ b ^ r) & AF
        if (a ^ b) & (a ^ r) & sign:
            f |= OF
    elif op == 2:                               # LOGIC: CF = OF = 0, AF undefined (0)
        pass
    elif op == 3:                               # SHR by b: OF = the old sign for a count of 1
        f |= (a >> (b - 1)) & 1
        if b == 1 and a & sign:
            f |= OF
    elif op == 4:                               # SAR by b: OF = 0
        f |= ((a - (sign << 1) if a & sign else a) >> (b - 1)) & 1
    elif op == 5:                               # IMUL: CF = OF = the product did not fit
        if b:
            f |= CF | OF
    else:                                       # INC / DEC: CF from b
        f |= b if type(b) is int else (arith(b) & CF)
        if op == 6:
            if r == sign:
                f |= OF
            if r & 0xF == 0:
                f |= AF
        else:
            if r == sign - 1:
                f |= OF
            if r & 0xF == 0xF:
                f |= AF
    return f


def carry(lf) -> int:
    """CF alone, without building the other flags."""
    kind, a, b, r = lf
    op = kind // 3
    if op == 0:
        return 1 if r < a else 0
    if op == 1:
        return 1 if a < b else 0
    if op == 2:
        return 0
    if op == 3:
        return (a >> (b - 1)) & 1
    if op == 4:
        sign = SIGN[kind - SAR_K]
        return ((a - (sign << 1) if a & sign else a) >> (b - 1)) & 1
    if op == 5:
        return b
    return b if type(b) is int else carry(b)


def cf_source(cpu):
    """What an INC/DEC stores as its CF source (see the module docstring)."""
    lf = cpu.lf
    if lf is None:
        return cpu.flags & CF
    if lf[0] >= INC_K:
        return lf[2]
    return lf


def cond(cpu, cc: int) -> bool:
    """Evaluate condition code ``cc`` (Jcc/SETcc/CMOVcc low nibble) on the current flags."""
    lf = cpu.lf
    if lf is not None:
        kind = lf[0]
        if kind >= SUB_K and kind < LOGIC_K:     # after CMP/SUB: compare the operands directly
            a, b = lf[1], lf[2]
            inv = cc & 1
            c = cc >> 1
            if c == 1:
                res = a < b
            elif c == 2:
                res = lf[3] == 0
            elif c == 3:
                res = a <= b
            elif c == 6 or c == 7:
                sign = SIGN[kind - SUB_K]
                sa = a - (sign << 1) if a & sign else a
                sb = b - (sign << 1) if b & sign else b
                res = sa < sb if c == 6 else sa <= sb
            else:
                return _cond_flags(arith(lf), cc)
            return res != bool(inv)
        return _cond_flags(arith(lf), cc)
    return _cond_flags(cpu.flags, cc)


def _cond_flags(f: int, cc: int) -> bool:
    c = cc >> 1
    if c == 0:
        res = f & OF
    elif c == 1:
        res = f & CF
    elif c == 2:
        res = f & ZF
    elif c == 3:
        res = f & (CF | ZF)
    elif c == 4:
        res = f & SF
    elif c == 5:
        res = f & PF
    elif c == 6:
        res = bool(f & SF) != bool(f & OF)
    else:
        res = (f & ZF) or (bool(f & SF) != bool(f & OF))
    return bool(res) != bool(cc & 1)
