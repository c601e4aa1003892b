"""Differential testing of Aero's x87 against unicorn 2.1.4 on random instruction sequences.

Each program is 32-bit flat protected-mode code (CS base 0 and selectors 0 as unicorn's
UC_MODE_32 has them, CR0 = 11h on both sides: with CR0.NE = 0 a pending unmasked exception
never raises #MF; Aero asserts an unconnected FERR# and goes on, unicorn only checks at FWAIT,
which is never generated):

    FNINIT; MOV EBX, OPND; PUSH flags; POPFD              random ZF PF CF for FCMOVcc
    FLDCW [cw]                                             random RC, PC (also the reserved
                                                           01), masks: mostly all masked
    0-9 loads (FLD m32/m64/m80, FILD m16/m32/m64, FBLD, constants), sometimes an FFREE,
    FINCSTP or FDECSTP hole
    1-3 instructions under test: any form of CATALOGUE (arithmetic memory and register forms,
    comparisons, FCMOVcc, FXCH, loads, stores, the constants, FCHS ... FCOS, FINCSTP FDECSTP
    FFREE FFREEP FNOP FNCLEX FNSTSW AX and the undocumented aliases)
    FNSTSW [RES_SW]; MOV [RES_AX], EAX; PUSHFD; POP [RES_FL]; FNSAVE [SAVE]; HLT

(FNSTSW m16 rather than FNSTSW AX in the epilogue: unicorn's FNSTSW AX records FIP, U-fip.)
Operands come from every class of every format: zeros, denormals, pseudo-denormals, unnormals,
pseudo-NaNs and pseudo-infinities (m80 only), infinities, QNaNs, SNaNs, the indefinites, the
largest and smallest normals, small integers and random values; packed BCD with invalid digits.

Compared: the FNSAVE image field by field (CW, SW, TW, FIP, FCS, FOP, FDP, FDS, ST0..ST7, the
reserved upper halves excepted), the FNSTSW m16 value, EAX (FNSTSW AX under test), EFLAGS ZF
PF CF, every byte of the data area (stores to memory) and how the run ended.  Condition codes
are compared only where the SDM defines them at that point (``cc_effect``), FDP only when the
last non-control instruction has a memory operand (SDM Vol. 1 8.1.8: else undefined).  Aero's
FIP, FOP and FDP are also checked against the values this harness computes from the program.

unicorn 2.1.4 carries QEMU 5.0's x87 helpers (before the 2020 x87 fixes of QEMU 5.2/6.0).  Where
they deviate from the Intel SDM the deviation is an entry of ``DEVIATIONS`` (what, why, the SDM
reference).  ``GLOBAL`` entries are masks applied to every comparison; the others are
predicates over one instruction, the state before it and both states after it, as narrow as
possible (e.g. a stack fault with IE unmasked requires Aero to have changed nothing; a
transcendental with exactly representable operands requires the results to be close).  A
mismatching program is re-run prefix by prefix on both sides to find the first instruction
after which the states differ; the mismatch is *explained* when a deviation's predicate holds
for that instruction (the rest of the program is then not compared), else it is reported with
a readable diff and the disassembly.  tests/fpu/test_x87_unicorn.py pins every deviation with a
program that shows it.

Run:  python -m aero.conformance.x87_diff [count] [seed] [-v]
"""

from __future__ import annotations

import random
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass

from ..cpu.cpu import CPU, A_P, A_S, A_RW, A_ACCESSED, A_DB, A_G, A_CODE, CR0_PE
from ..cpu.disasm import disasm_bytes
from ..faults import EmulatorError
from ..fpu import float80 as F
from ..mem.bus import Bus

MEM = 0x10000                 # RAM on both sides
CODE = 0x1000
DATA = 0x4000                 # compared whole: DATA .. DATA_END
CW_ADDR = DATA
RES_SW, RES_FL, RES_AX = DATA + 4, DATA + 8, DATA + 12
OPND = DATA + 0x100           # 24 operand slots of 16 bytes (EBX points here)
STORE = DATA + 0x280          # 8 store slots of 16 bytes, pre-filled with random bytes
SAVE = DATA + 0x300           # the FNSAVE image (108 bytes)
DATA_END = DATA + 0x400
STACK = 0x8000
BUDGET = 200

IE, DE, ZE, OE, UE, PE, SF = F.IE, F.DE, F.ZE, F.OE, F.UE, F.PE, F.SF
C0, C1, C2, C3 = F.C0, F.C1, F.C2, F.C3
ZF_PF_CF = 0x45

# ------------------------------------------------------------------------------------------------
# operand values, per memory format
# ------------------------------------------------------------------------------------------------
M80 = "m80"
FORMATS = {"m32": 4, "m64": 8, M80: 10, "i16": 2, "i32": 4, "i64": 8, "bcd": 10}
_IEEE = {"m32": (8, 23), "m64": (11, 52)}


def _ieee(rng, ebits, fbits):
    emax = (1 << ebits) - 1
    s = rng.getrandbits(1) << (ebits + fbits)
    frac = rng.getrandbits(fbits)
    if rng.random() < 0.3:
        frac &= ~((1 << rng.randrange(1, fbits)) - 1)
    k = rng.randrange(20)
    if k == 0:
        return s                                             # zero
    if k < 3:
        return s | (frac >> rng.randrange(fbits)) or s | 1    # denormal
    if k == 3:
        return s | emax << fbits                             # infinity
    if k == 4:
        return s | emax << fbits | 1 << (fbits - 1) | frac   # QNaN
    if k == 5:
        return s | emax << fbits | (frac >> 1 or 1)          # SNaN
    if k == 6:
        return s | (emax - 1) << fbits | ((1 << fbits) - 1)  # largest normal
    if k == 7:
        return s | 1 << fbits | rng.choice((0, frac))        # smallest normals
    if k < 11:                                               # near 1
        bias = (1 << (ebits - 1)) - 1
        return s | (bias + rng.randrange(-20, 64)) << fbits | frac
    return s | rng.randrange(1, emax) << fbits | frac


def _f80(rng):
    s = rng.getrandbits(1)
    sig = rng.getrandbits(64) | F.J_BIT
    if rng.random() < 0.3:
        sig &= ~((1 << rng.randrange(1, 64)) - 1)
        sig |= F.J_BIT
    k = rng.randrange(32)
    if k < 2:
        return F.pack(s, 0, 0)
    if k < 5:
        return F.pack(s, 0, (sig & ~F.J_BIT) >> rng.randrange(64) or 1)    # denormal
    if k == 5:
        return F.pack(s, 0, sig)                                            # pseudo-denormal
    if k == 6:
        return F.pack(s, rng.randrange(1, F.EXP_MAX), sig >> rng.randrange(1, 64))  # unnormal
    if k == 7:
        return F.pack(s, F.EXP_MAX, rng.choice((0, (sig & ~F.J_BIT) >> 2 | 1)))     # pseudo-inf/NaN
    if k < 10:
        return F.pack(s, F.EXP_MAX, F.J_BIT)                                # infinity
    if k == 10:
        return F.pack(s, F.EXP_MAX, sig | F.QUIET_BIT)                      # QNaN
    if k == 11:
        return F.pack(s, F.EXP_MAX, (sig & ~F.QUIET_BIT) | 1)               # SNaN
    if k == 12:
        return F.INDEFINITE
    if k == 13:
        return F.pack(s, rng.choice((1, 0x7FFE)), rng.choice((F.J_BIT, F.SIG_MASK)))
    if k < 16:
        return F.pack(s, rng.randrange(1, F.EXP_MAX), sig)
    if k < 19:
        return F.from_int(rng.randrange(-1000, 1000))
    if k < 21:                                                              # near the limits
        return F.pack(s, rng.choice((rng.randrange(1, 0x60), rng.randrange(0x7FA0, 0x7FFF))), sig)
    return F.pack(s, F.BIAS + rng.randrange(-70, 70), sig)


def _bcd(rng):
    k = rng.randrange(10)
    sign = rng.getrandbits(1) << 79
    if k == 0:
        return sign
    if k == 1:
        return F.BCD_INDEFINITE
    if k == 2:                                          # invalid digits or sign byte bits
        return rng.getrandbits(80)
    digits = str(rng.randrange(10 ** rng.randrange(1, 19)))
    return sign | int(digits, 16)


def value(rng, fmt):
    """A random operand image for a memory format."""
    if fmt in _IEEE:
        return _ieee(rng, *_IEEE[fmt])
    if fmt == M80:
        return _f80(rng)
    if fmt == "bcd":
        return _bcd(rng)
    bits = 8 * FORMATS[fmt]
    k = rng.randrange(6)
    if k == 0:
        return rng.choice((0, 1, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1))
    if k < 3:
        return rng.randrange(-1000, 1000) & ((1 << bits) - 1)
    return rng.getrandbits(rng.randrange(1, bits + 1))


def to80(fmt, raw):
    """The 80-bit value a memory operand stands for (SNaNs kept signalling)."""
    if fmt == "m32":
        return F.float32_operand(raw)[0]
    if fmt == "m64":
        return F.float64_operand(raw)[0]
    if fmt == M80:
        return raw
    if fmt == "bcd":
        return F.from_bcd(raw.to_bytes(10, "little"))
    bits = 8 * FORMATS[fmt]
    return F.from_int(raw - (1 << bits) if raw >> (bits - 1) else raw)


# ------------------------------------------------------------------------------------------------
# the instruction catalogue
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    name: str
    opcode: int               # D8..DF
    reg: int                  # ModR/M.reg
    rm: int | None = None     # register forms: fixed rm, or None for ST(i)
    fmt: str | None = None    # memory forms: the operand's format
    store: bool = False       # memory forms: a store (the slot is a STORE slot)
    weight: float = 1.0

    @property
    def mem(self):
        return self.fmt is not None


_ARITH = ("FADD", "FMUL", "FCOM", "FCOMP", "FSUB", "FSUBR", "FDIV", "FDIVR")
_ARITH_R = ("FADD", "FMUL", "FCOM2", "FCOMP3", "FSUBR", "FSUB", "FDIVR", "FDIV")   # DC/DE: reversed


def _catalogue():
    out = []
    for opc, fmt, pre in ((0xD8, "m32", ""), (0xDC, "m64", ""), (0xDA, "i32", "I"),
                          (0xDE, "i16", "I")):
        for r, n in enumerate(_ARITH):
            out.append(Form(f"{n[0]}{pre}{n[1:]} {fmt}", opc, r, fmt=fmt))
    for opc, r, fmt, n in ((0xD9, 0, "m32", "FLD"), (0xDD, 0, "m64", "FLD"), (0xDB, 5, M80, "FLD"),
                           (0xDF, 0, "i16", "FILD"), (0xDB, 0, "i32", "FILD"),
                           (0xDF, 5, "i64", "FILD"), (0xDF, 4, "bcd", "FBLD")):
        out.append(Form(f"{n} {fmt}", opc, r, fmt=fmt))
    for opc, r, fmt, n in ((0xD9, 2, "m32", "FST"), (0xD9, 3, "m32", "FSTP"),
                           (0xDD, 2, "m64", "FST"), (0xDD, 3, "m64", "FSTP"),
                           (0xDB, 7, M80, "FSTP"), (0xDF, 2, "i16", "FIST"),
                           (0xDF, 3, "i16", "FISTP"), (0xDB, 2, "i32", "FIST"),
                           (0xDB, 3, "i32", "FISTP"), (0xDF, 7, "i64", "FISTP"),
                           (0xDF, 6, "bcd", "FBSTP")):
        out.append(Form(f"{n} {fmt}", opc, r, fmt=fmt, store=True, weight=1.5))
    for r, n in enumerate(_ARITH):
        out.append(Form(f"{n} st,sti", 0xD8, r))
    for r, n in enumerate(_ARITH_R):
        out.append(Form(f"{n} sti,st", 0xDC, r, weight=0.4 if r in (2, 3) else 1))
        out.append(Form(f"{n}P sti,st" if r not in (2, 3) else ("FCOMP5" if r == 2 else
                                                                 "FCOMPP"),
                        0xDE, r, rm=1 if r == 3 else None, weight=0.4 if r == 2 else 1))
    for opc, r, n in ((0xDD, 4, "FUCOM"), (0xDD, 5, "FUCOMP"), (0xDB, 5, "FUCOMI"),
                      (0xDB, 6, "FCOMI"), (0xDF, 5, "FUCOMIP"), (0xDF, 6, "FCOMIP"),
                      (0xD9, 0, "FLD sti"), (0xD9, 1, "FXCH"), (0xDD, 2, "FST sti"),
                      (0xDD, 3, "FSTP sti"), (0xDD, 0, "FFREE")):
        out.append(Form(n, opc, r))
    out.append(Form("FUCOMPP", 0xDA, 5, rm=1))
    for c, n in enumerate(("B", "E", "BE", "U")):
        out.append(Form(f"FCMOV{n}", 0xDA, c, weight=0.5))
        out.append(Form(f"FCMOVN{n}", 0xDB, c, weight=0.5))
    for opc, r, n in ((0xD9, 3, "FSTP1"), (0xDD, 1, "FXCH4"), (0xDF, 1, "FXCH7"),
                      (0xDF, 2, "FSTP8"), (0xDF, 3, "FSTP9"), (0xDF, 0, "FFREEP")):
        out.append(Form(n, opc, r, weight=0.2))
    for rm, n in ((0, "FCHS"), (1, "FABS"), (4, "FTST"), (5, "FXAM")):
        out.append(Form(n, 0xD9, 4, rm=rm))
    for rm, n in enumerate(("FLD1", "FLDL2T", "FLDL2E", "FLDPI", "FLDLG2", "FLDLN2", "FLDZ")):
        out.append(Form(n, 0xD9, 5, rm=rm, weight=0.4))
    for rm, n in enumerate(("F2XM1", "FYL2X", "FPTAN", "FPATAN", "FXTRACT", "FPREM1",
                            "FDECSTP", "FINCSTP")):
        out.append(Form(n, 0xD9, 6, rm=rm))
    for rm, n in enumerate(("FPREM", "FYL2XP1", "FSQRT", "FSINCOS", "FRNDINT", "FSCALE",
                            "FSIN", "FCOS")):
        out.append(Form(n, 0xD9, 7, rm=rm, weight=1.5 if n in ("FPREM", "FSCALE") else 1))
    out.append(Form("FNOP", 0xD9, 2, rm=0, weight=0.2))
    out.append(Form("FNCLEX", 0xDB, 4, rm=2, weight=0.2))
    out.append(Form("FNSTSW AX", 0xDF, 4, rm=0, weight=0.2))
    return out


CATALOGUE = _catalogue()
LOAD_FORMS = [f for f in CATALOGUE if f.mem and not f.store and f.name.startswith(("FLD", "FILD",
                                                                                   "FBLD"))]
CONST_FORMS = [f for f in CATALOGUE if f.name.startswith("FLD") and f.rm is not None]
# the control instructions generated (SDM Vol. 1 8.1.8): they leave FIP, FDP and FOP alone
CONTROL = frozenset(("FNCLEX", "FNSTSW AX"))


@dataclass
class Ins:
    form: Form
    code: bytes
    i: int = 0                # ST(i) for register forms
    slot: int | None = None   # data address of the memory operand
    raw: int | None = None    # the operand image (loads and arithmetic), or the slot's fill


@dataclass
class Program:
    cw: int
    eflags: int
    setup: list               # Ins (loads, holes)
    tests: list               # Ins under test
    data: bytearray           # DATA .. DATA_END

    @property
    def body(self):
        return self.setup + self.tests

    def code(self, k=None, clex=False):
        """The program's bytes with the first k instructions of the body (all by default);
        clex: with FNCLEX before the last of them."""
        body = self.body if k is None else self.body[:k]
        if clex:
            body = body[:-1] + [Ins(FORMS["FNCLEX"], b"\xdb\xe2")] + body[-1:]
        out = bytearray(b"\xdb\xe3")                                    # FNINIT
        out += b"\xbb" + struct.pack("<I", OPND)                        # MOV EBX, OPND
        out += b"\x68" + struct.pack("<I", self.eflags) + b"\x9d"       # PUSH imm32; POPFD
        out += b"\xd9\x2d" + struct.pack("<I", CW_ADDR)                 # FLDCW [cw]
        for ins in body:
            out += ins.code
        out += b"\xdd\x3d" + struct.pack("<I", RES_SW)                 # FNSTSW [RES_SW]
        out += b"\xa3" + struct.pack("<I", RES_AX)                      # MOV [RES_AX], EAX
        out += b"\x9c\x8f\x05" + struct.pack("<I", RES_FL)              # PUSHFD; POP [RES_FL]
        out += b"\xdd\x35" + struct.pack("<I", SAVE)                    # FNSAVE [SAVE]
        out += b"\xf4"
        return bytes(out)

    def addresses(self, k=None):
        """The address of each instruction of body[:k] in code(k)."""
        a = CODE + 2 + 5 + 6 + 6
        out = []
        for ins in (self.body if k is None else self.body[:k]):
            out.append(a)
            a += len(ins.code)
        return out


def _modrm_mem(rng, reg, addr):
    """A memory ModR/M for `addr`: [disp32] or [EBX+disp8] / [EBX+disp32] (EBX = OPND)."""
    k = rng.randrange(4)
    if k == 0 and -128 <= addr - OPND < 128:
        return bytes((0x43 | reg << 3, (addr - OPND) & 0xFF))
    if k == 1:
        return bytes((0x83 | reg << 3,)) + struct.pack("<i", addr - OPND)
    return bytes((0x05 | reg << 3,)) + struct.pack("<I", addr)


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.weights = [f.weight for f in CATALOGUE]

    def ins(self, form, prog, slots, depth=8):
        """An encoding of `form`; ST(i) is mostly one of the `depth` loaded registers."""
        rng = self.rng
        if not form.mem:
            i = form.rm
            if i is None:
                i = rng.randrange(max(1, min(depth, 8)) if rng.random() < 0.85 else 8)
            return Ins(form, bytes((form.opcode, 0xC0 | form.reg << 3 | i)), i=i)
        n = FORMATS[form.fmt]
        if form.store:
            addr = STORE + 16 * slots[1]
            slots[1] = (slots[1] + 1) % 8
            raw = int.from_bytes(prog.data[addr - DATA:addr - DATA + n], "little")
        else:
            addr = OPND + 16 * slots[0]
            slots[0] += 1
            raw = value(rng, form.fmt)
            prog.data[addr - DATA:addr - DATA + n] = raw.to_bytes(n, "little")
        prefix = b"\x3e" if rng.random() < 0.05 else b""                 # a DS override
        return Ins(form, prefix + bytes((form.opcode,)) + _modrm_mem(rng, form.reg, addr),
                   slot=addr, raw=raw)

    def cw(self):
        rng = self.rng
        masks = 0x3F
        if rng.random() < 0.2:
            masks = rng.getrandbits(6) | rng.choice((0, 0x3E, 0x3D, 0x1F, 0x2F, 0x37, 0x3B))
        pc = rng.choice((0, 2, 3, 3, 3, 1))
        return masks | 0x40 | pc << 8 | rng.randrange(4) << 10 | (rng.random() < 0.05) << 12

    def program(self) -> Program:
        rng = self.rng
        data = bytearray(rng.getrandbits(8) for _ in range(DATA_END - DATA))
        data[SAVE - DATA:SAVE - DATA + 108] = bytes(108)
        prog = Program(self.cw(), 0x2 | (rng.getrandbits(8) & ZF_PF_CF), [], [], data)
        data[0:2] = struct.pack("<H", prog.cw)
        slots = [0, 0]
        nloads = rng.choice((0, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6, 7, 8, 9))
        for _ in range(nloads):
            if rng.random() < 0.04:
                form = rng.choice(CONST_FORMS)
            elif rng.random() < 0.6:
                form = FORMS["FLD m80"]                                  # all the classes
            else:
                form = rng.choice(LOAD_FORMS)
            prog.setup.append(self.ins(form, prog, slots))
        if rng.random() < 0.15:                                         # holes in the stack
            hole = FORMS[rng.choice(("FFREE", "FINCSTP", "FDECSTP"))]
            prog.setup.append(self.ins(hole, prog, slots, nloads))
        for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
            form = rng.choices(CATALOGUE, self.weights)[0]
            prog.tests.append(self.ins(form, prog, slots, nloads))
        return prog


FORMS = {f.name: f for f in CATALOGUE}


def build(body, cw=F.CW_DEFAULT, eflags=0x2, tests=1) -> Program:
    """A fixed program (for tests): body is a list of (form name, operand), the operand being
    the image for a memory load or arithmetic form, ST(i) for a register form taking one, and
    ignored otherwise; the last `tests` instructions are the ones under test.  Store slots are
    filled with CCh."""
    data = bytearray(b"\xcc" * (DATA_END - DATA))
    data[0:16] = bytes(16)
    data[0:2] = struct.pack("<H", cw)
    data[SAVE - DATA:SAVE - DATA + 108] = bytes(108)
    prog = Program(cw, eflags, [], [], data)
    slots = [0, 0]
    for name, operand in body:
        form = FORMS[name]
        if form.mem:
            n = FORMATS[form.fmt]
            if form.store:
                addr = STORE + 16 * slots[1]
                slots[1] += 1
                raw = int.from_bytes(data[addr - DATA:addr - DATA + n], "little")
            else:
                addr = OPND + 16 * slots[0]
                slots[0] += 1
                raw = operand
                data[addr - DATA:addr - DATA + n] = raw.to_bytes(n, "little")
            code = bytes((form.opcode, 0x05 | form.reg << 3)) + struct.pack("<I", addr)
            ins = Ins(form, code, slot=addr, raw=raw)
        else:
            i = form.rm if form.rm is not None else (operand or 0)
            ins = Ins(form, bytes((form.opcode, 0xC0 | form.reg << 3 | i)), i=i)
        prog.setup.append(ins)
    prog.tests = prog.setup[len(prog.setup) - tests:]
    prog.setup = prog.setup[:len(prog.setup) - tests]
    return prog


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------
@dataclass
class Result:
    status: str = "ok"        # ok, exception, error, timeout
    vector: int | None = None
    eip: int = 0
    data: bytes = b""         # DATA .. DATA_END after the run
    detail: str = ""


class AeroSide:
    def __init__(self):
        self.cpu = CPU(Bus(MEM))
        self.cpu.interrupt = self._interrupt
        self.exc = None

    def _interrupt(self, vector, code, kind, return_eip):
        self.exc = vector
        self.cpu.halted = True

    def run(self, code: bytes, data: bytes) -> Result:
        cpu = self.cpu
        cpu.reset()
        ram = cpu.bus.ram
        ram[:] = bytes(MEM)
        ram[CODE:CODE + len(code)] = code
        ram[DATA:DATA_END] = data
        cpu.write_cr0(cpu.cr0 | CR0_PE)          # unicorn's UC_MODE_32: CR0 = 11h (PE, ET)
        for s in range(6):
            attr = A_P | A_S | A_RW | A_ACCESSED | A_DB | A_G | (A_CODE if s == 1 else 0)
            cpu.set_seg_cache(s, 0, 0, 0xFFFFFFFF, attr)
        cpu.R[4] = STACK
        cpu.eip = CODE
        self.exc = None
        out = Result()
        try:
            why = cpu.run(BUDGET)
        except EmulatorError as e:
            return Result("error", detail=str(e).splitlines()[0])
        except Exception as e:                    # noqa: BLE001 - an Aero bug, reported
            return Result("error", detail=f"{type(e).__name__}: {e}")
        out.eip = cpu.eip
        out.data = bytes(ram[DATA:DATA_END])
        if self.exc is not None:
            out.status, out.vector = "exception", self.exc
        elif why != "halt":
            out.status = "timeout"
        return out


class UnicornSide:
    def __init__(self):
        import unicorn
        from unicorn import x86_const
        self.U, self.X = unicorn, x86_const

    def run(self, code: bytes, data: bytes) -> Result:
        U, X = self.U, self.X
        uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_32)
        uc.mem_map(0, MEM)
        uc.mem_write(CODE, code)
        uc.mem_write(DATA, bytes(data))
        uc.reg_write(X.UC_X86_REG_ESP, STACK)
        exc = []

        def on_intr(uc_, intno, user):
            exc.append(intno)
            uc_.emu_stop()
        uc.hook_add(U.UC_HOOK_INTR, on_intr)
        out = Result()
        hlt = CODE + len(code) - 1
        try:
            uc.emu_start(CODE, hlt, count=BUDGET)
        except U.UcError as e:
            if e.errno == U.UC_ERR_INSN_INVALID:
                exc.append(6)
            else:
                return Result("error", detail=f"unicorn: {e}")
        out.eip = uc.reg_read(X.UC_X86_REG_EIP)
        out.data = bytes(uc.mem_read(DATA, DATA_END - DATA))
        if exc:
            out.status, out.vector = "exception", exc[0]
        elif out.eip != hlt:
            out.status = "timeout"
        return out


# ------------------------------------------------------------------------------------------------
# comparing
# ------------------------------------------------------------------------------------------------
@dataclass
class State:
    """The FNSAVE image decoded (32-bit protected-mode layout), the FNSTSW m16 word, EAX and
    EFLAGS."""
    cw: int
    sw: int
    tw: int
    fip: int
    fcs: int
    fop: int
    fdp: int
    fds: int
    st: list                  # ST(0)..ST(7) contents
    sw_m16: int               # FNSTSW m16 before the FNSAVE
    eax: int                  # EAX (FNSTSW AX under test)
    eflags: int

    @classmethod
    def of(cls, data: bytes):
        img = data[SAVE - DATA:SAVE - DATA + 108]
        w = lambda o: struct.unpack_from("<H", img, o)[0]           # noqa: E731
        d = lambda o: struct.unpack_from("<I", img, o)[0]           # noqa: E731
        return cls(w(0), w(4), w(8), d(12), w(16), w(18) & 0x7FF, d(20), w(24),
                   [F.from_bytes80(img[28 + 10 * i:38 + 10 * i]) for i in range(8)],
                   struct.unpack_from("<H", data, RES_SW - DATA)[0],
                   struct.unpack_from("<I", data, RES_AX - DATA)[0],
                   struct.unpack_from("<I", data, RES_FL - DATA)[0])

    @property
    def top(self):
        return (self.sw >> 11) & 7

    def empty(self, i):
        """Whether ST(i) is empty."""
        return (self.tw >> (2 * ((self.top + i) & 7))) & 3 == 3

    def value(self, i):
        return None if self.empty(i) else self.st[i]


WORDS = ("cw", "sw", "tw", "fip", "fcs", "fop", "fdp", "fds", "sw_m16", "eax")


def diff_states(a: State, u: State, sw_mask=0xFFFF, skip=()):
    """[(field, aero, unicorn)] for the fields that differ (the status words and AX under
    sw_mask), except those in skip."""
    out = []
    for name in WORDS:
        if name in skip:
            continue
        x, y = getattr(a, name), getattr(u, name)
        if name in ("sw", "sw_m16", "eax"):
            keep = sw_mask | (0xFFFF0000 if name == "eax" else 0)
            x, y = x & keep, y & keep
        if x != y:
            out.append((name, x, y))
    if (a.eflags ^ u.eflags) & ZF_PF_CF:
        out.append(("eflags", a.eflags & ZF_PF_CF, u.eflags & ZF_PF_CF))
    for i in range(8):
        if a.st[i] != u.st[i]:
            out.append((f"st{i}", a.st[i], u.st[i]))
    return out


def diff_memory(a: bytes, u: bytes):
    """[(field, aero, unicorn)] for the store slots and the rest of the data area (not the
    FNSAVE image and the result words, compared as fields)."""
    out = []
    for off in range(0, DATA_END - DATA, 16):
        addr = DATA + off
        if SAVE <= addr < SAVE + 112 or addr == DATA:
            continue
        if a[off:off + 16] != u[off:off + 16]:
            out.append((f"mem {addr:#x}", a[off:off + 16].hex(), u[off:off + 16].hex()))
    return out


def expected_pointers(prog: Program, k=None):
    """(fip, fop, fdp) the SDM gives for code(k): those of the last non-control x87
    instruction (FOP = low 3 bits of the opcode : ModR/M); fdp is None (undefined) when that
    instruction has no memory operand (SDM Vol. 1 8.1.8, 8.1.9; the FLDCW of the prologue is a
    control instruction, FNINIT clears all three)."""
    fip = fop = fdp = 0
    for ins, addr in zip(prog.body if k is None else prog.body[:k], prog.addresses(k)):
        if ins.form.name in CONTROL:
            continue
        body = ins.code[1:] if ins.code[0] == 0x3E else ins.code
        fip, fop = addr, (body[0] & 7) << 8 | body[1]
        fdp = ins.slot
    return fip, fop, fdp


# ------------------------------------------------------------------------------------------------
# unicorn's deviations from the SDM
# ------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One instruction under test and what surrounds it: the state before (decoded from Aero's
    FNSAVE of the program cut before it, identical on both sides up to the global masks), the
    two states after, and their differences."""
    ins: Ins
    pre: State
    aero: State
    uc: State
    diffs: list
    data: bytes = b""         # Aero's data area after the instruction
    pre_data: bytes = b""     # and before it
    raised: int = 0           # the flags Aero raised in this instruction (run after FNCLEX)

    @property
    def name(self):
        return self.ins.form.name

    def op(self, i):
        return self.pre.value(i)

    def cls(self, i):
        v = self.op(i)
        return "empty" if v is None else F.classify(v)

    @property
    def mem80(self):
        f = self.ins.form
        return to80(f.fmt, self.ins.raw) if f.mem and not f.store else None

    def reads(self):
        """The ST(i) the instruction reads (an empty one is stack underflow)."""
        f = self.ins.form
        op = f.name.split()[0]
        if op in _NO_READ or (f.mem and not f.store and op in ("FLD", "FILD", "FBLD")):
            return []
        if f.name in ("FST sti", "FSTP sti", "FSTP1", "FSTP8", "FSTP9") or f.store:
            return [0]
        if f.name == "FLD sti":
            return [self.ins.i]
        regs = [0]
        if not f.mem and f.rm is None:
            regs.append(self.ins.i)
        if op in ("FYL2X", "FYL2XP1", "FPATAN", "FSCALE", "FPREM", "FPREM1", "FCOMPP",
                  "FUCOMPP"):
            regs.append(1)
        return regs

    def pushes(self):
        f = self.ins.form
        return f.name in _CONSTS or f.name in ("FLD sti", "FPTAN", "FSINCOS", "FXTRACT") or (
            f.mem and not f.store and f.name.split()[0] in ("FLD", "FILD", "FBLD"))

    def stack_fault(self):
        """Stack underflow or overflow (SDM Vol. 1 8.5.1.1), from the state before."""
        return any(self.pre.empty(i) for i in self.reads()) or (
            self.pushes() and not self.pre.empty(7))

    def operands(self):
        """The classes of the instruction's operands (registers read and the memory operand)."""
        out = [self.cls(i) for i in self.reads()]
        if self.mem80 is not None:
            out.append(F.classify(self.mem80))
        return out

    @property
    def unmasked(self):
        """The unmasked exceptions Aero raised in this instruction."""
        return self.raised & ~self.aero.cw & 0x3F

    def only(self, *prefixes):
        return all(d[0].startswith(prefixes) for d in self.diffs)

    def st_diffs(self):
        """[(aero value, unicorn value)] of the registers that differ."""
        return [(x, y) for name, x, y in self.diffs if name.startswith("st")]

    def aero_bytes(self, addr, n):
        """Aero's memory after the instruction."""
        return self.data[addr - DATA:addr - DATA + n]

    def aero_unchanged(self):
        """Aero's registers, TOP, tags and memory are as before the instruction (the SDM's
        response to an unmasked IE/DE/ZE, or to a stack fault with IE unmasked)."""
        a, p = self.aero, self.pre
        skip = slice(SAVE - DATA, DATA_END - DATA)          # the FNSAVE image
        return (a.st, a.top, a.tw) == (p.st, p.top, p.tw) and \
            self.data[16:skip.start] == self.pre_data[16:skip.start]


@dataclass
class Deviation:
    key: str
    what: str
    sdm: str
    applies: object = None    # Case -> bool (None: a global mask)


_NO_READ = ("FFREE", "FFREEP", "FINCSTP", "FDECSTP", "FNOP", "FNCLEX", "FNSTSW", "FXAM",
            "FLD1", "FLDL2T", "FLDL2E", "FLDPI", "FLDLG2", "FLDLN2", "FLDZ")
_TRANS = ("F2XM1", "FYL2X", "FYL2XP1", "FPTAN", "FPATAN", "FSIN", "FCOS", "FSINCOS")
_CONSTS = ("FLD1", "FLDL2T", "FLDL2E", "FLDPI", "FLDLG2", "FLDLN2", "FLDZ")


def norm_exp(v):
    s, m, e = F._parts(v)
    return e + m.bit_length() - 1


def double_exact_prem(a, b):
    """FPREM operands QEMU 5.0's double arithmetic handles exactly: normal, at most 26
    significant bits, inside the double exponent range, exponent difference below 21."""
    for v in (a, b):
        if F.classify(v) != F.NORMAL or not -1000 < norm_exp(v) < 1000:
            return False
        m = v & F.SIG_MASK
        if (m & -m).bit_length() < 64 - 25:
            return False
    return norm_exp(a) - norm_exp(b) < 21


def _fip(c):
    return c.name in ("FNSTSW AX", "FNOP") and c.only("fip")


def _ze(c):
    div = c.name.split()[0] in ("FDIV", "FDIVR", "FDIVP", "FDIVRP", "FIDIV", "FIDIVR")
    return (div or c.name == "FXTRACT") and F.ZERO in c.operands() and \
        c.only("sw", "sw_m16", "eax")


def _fst_tag(c):
    return c.name in ("FST sti", "FSTP sti", "FSTP1", "FSTP8", "FSTP9") and \
        c.op(c.ins.i) is None and c.only("tw")


def _pseudo_denormal(c):
    return F.PSEUDO_DENORMAL in c.operands()


def _snan(c):
    """The registers that differ hold Aero's QNaN and unicorn's SNaN with the same payload."""
    if not all(x == y | F.QUIET_BIT and F.classify(y) == F.SNAN for x, y in c.st_diffs()):
        return False
    if c.name in ("FLD m32", "FLD m64"):
        return F.classify(c.mem80) == F.SNAN
    if c.name.split()[0] in ("FST", "FSTP") and c.ins.form.fmt in ("m32", "m64"):
        return c.cls(0) == F.SNAN
    return c.name == "FSCALE" and F.SNAN in c.operands()


def _const_rc(c):
    """Only ST(0) differs, by one unit in the last place."""
    return c.name in _CONSTS and (c.pre.cw >> 10) & 3 != F.RC_NEAREST and c.only("st0") and \
        abs(c.aero.st[0] - c.uc.st[0]) == 1


def _fprem(c):
    if c.name not in ("FPREM", "FPREM1"):
        return False
    a, b = c.op(0), c.op(1)
    if a is None or b is None:
        return False
    if not double_exact_prem(a, b) or c.aero.st[0] == F.NEG_ZERO:
        return True
    return c.name == "FPREM1" and norm_exp(a) < norm_exp(b)


def _fscale(c):
    return c.name == "FSCALE" and ((c.pre.cw >> 8) & 3 != 3 or c.cls(1) in (
        F.INFINITY, F.QNAN, F.SNAN))


def _fxtract(c):
    return c.name == "FXTRACT" and c.cls(0) in (F.INFINITY, F.QNAN, F.SNAN, F.DENORMAL)


def _fxam(c):
    return c.name == "FXAM" and c.cls(0) in F.UNSUPPORTED


def _fbstp(c):
    if c.name != "FBSTP bcd" or c.op(0) is None:
        return False
    r, sw = F.to_bcd(c.op(0), c.pre.cw | IE)
    return bool(sw & IE) or (c.op(0) >> 79 and int.from_bytes(r[:9], "little") == 0)


def _unsupported(c):
    return c.name in ("FSCALE", "FXTRACT", "FPREM", "FPREM1", "FBSTP bcd") and any(
        k in F.UNSUPPORTED for k in c.operands())


def _double_safe(v):
    """A normal operand unicorn's double arithmetic takes exactly."""
    return v is not None and F.classify(v) == F.NORMAL and not v & 0x7FF and \
        -1000 < norm_exp(v) < 1000


def _close(x, y, tol):
    """Both finite and within tol (a Fraction) of each other."""
    if F.classify(x) not in (F.NORMAL, F.ZERO) or F.classify(y) not in (F.NORMAL, F.ZERO):
        return False
    return abs(F.to_fraction(x) - F.to_fraction(y)) <= tol


def _transcendental(c):
    """With operands double arithmetic represents exactly, only the low bits of the results
    differ, and nothing else (TOP, tags, C2): within 2^-40 * max(1, |result|); plus, for the
    trigonometric functions, the effect of reducing with the exact pi instead of the x87's
    66-bit one (about |x| * 2^-66 on the reduced argument; SDM Vol. 1 8.3.10), and for FYL2XP1
    the cancellation in log(1 + x) (2^-53 / |x| relative).  FSIN FCOS FSINCOS FPTAN of
    +-2^63 exactly: unicorn computes a result (its range check is |x| > 2^63)."""
    if c.name not in _TRANS:
        return False
    if not all(_double_safe(c.op(i)) for i in c.reads()):
        return True
    if c.name == "FYL2X" and c.op(0) >> 79:
        return False                                     # U13
    x = abs(F.to_fraction(c.op(0)))
    trig = c.name in ("FSIN", "FCOS", "FSINCOS", "FPTAN")
    if trig and x >= 1 << 63:
        return x == 1 << 63 and c.aero.sw & C2 and not c.uc.sw & C2
    for a, u in c.st_diffs():
        r = abs(F.to_fraction(a)) if F.classify(a) == F.NORMAL else 1
        tol = max(1, r) / (1 << 40)
        if trig:
            tol += x * (1 + r * r) / (1 << 62)
        if c.name == "FYL2XP1":
            tol += r / (x * (1 << 50))
        if not _close(a, u, tol):
            return False
    return c.only("st", "tw")                            # a tag follows its value's class


def _fyl2x_domain(c):
    """FYL2X with ST(0) negative or zero, both finite: unicorn sets C2 and neither pops nor
    writes ST(1)."""
    return c.name == "FYL2X" and c.cls(0) in (F.NORMAL, F.ZERO) and c.cls(1) in (
        F.NORMAL, F.ZERO) and (c.op(0) >> 79 or c.cls(0) == F.ZERO) and c.uc.top == c.pre.top


def _undefined(c):
    """Results the SDM leaves undefined: F2XM1 outside -1..+1, FYL2XP1 outside
    +-(1 - sqrt(2)/2), FBLD of invalid BCD digits."""
    if c.name == "F2XM1" and c.cls(0) == F.NORMAL:
        return abs(F.to_fraction(c.op(0))) > 1
    if c.name == "FYL2XP1" and c.cls(0) == F.NORMAL:
        x = abs(F.to_fraction(c.op(0)))
        return x >= 1 or 2 * (1 - x) ** 2 <= 1              # |x| >= 1 - sqrt(2)/2
    if c.name == "FBLD bcd":
        return any((c.ins.raw >> (4 * i)) & 0xF > 9 for i in range(18))
    return False


INDEFINITES = {"m32": 0xFFC00000, "m64": 0xFFF8 << 48, M80: F.INDEFINITE, "i16": 1 << 15,
               "i32": 1 << 31, "i64": 1 << 63, "bcd": F.BCD_INDEFINITE}


def _stack_fault(c):
    """Unmasked, Aero must have changed nothing; masked, a store must have written the
    indefinite of its format and TOP must still agree (the indefinite replaces the value and
    the instruction completes; unicorn does not tag an arithmetic destination ST(i), so an
    empty one stays empty there)."""
    if not c.stack_fault():
        return False
    if not c.pre.cw & IE:
        return c.aero_unchanged()
    f = c.ins.form
    if f.store:
        n = FORMATS[f.fmt]
        if c.aero_bytes(c.ins.slot, n) != INDEFINITES[f.fmt].to_bytes(n, "little"):
            return False
    if c.name in ("FPTAN", "FSINCOS") and c.uc.top == c.pre.top and c.cls(0) == F.NORMAL:
        return (c.op(0) >> 64) & F.EXP_MAX >= F.BIAS + 63    # out of range for unicorn
    return c.aero.top == c.uc.top


def _unmasked(c):
    """An unmasked IE DE ZE OE or UE (PE changes no result); for IE, DE or ZE Aero must have
    changed nothing."""
    if not c.unmasked & (IE | DE | ZE | OE | UE):
        return False
    return not c.unmasked & (IE | DE | ZE) or c.aero_unchanged()


GLOBAL = [
    Deviation("X1", "unicorn never sets IE DE OE UE PE, SF or C1 as a rounding indicator "
              "(softfloat's flags never reach the status word), so ES and B follow only ZE: "
              "those status bits are not compared (C1 is, after FXAM FPREM FPREM1)",
              "SDM Vol. 1 8.1.3.4, 8.5; Aero's flags are checked in tests/fpu/test_float80.py"),
    Deviation("X2", "unicorn's FNSAVE does not store FOP (the opcode field is always 0): Aero's "
              "FOP is compared with the harness's own expectation instead",
              "SDM Vol. 1 8.1.9 (last instruction opcode), figure 8-9"),
    Deviation("X3", "the reserved upper halves of the CW/SW/TW/FCS+FOP/FDS dwords of the 32-bit "
              "image: unicorn writes 0, Aero FFFFh as Intel processors do; not compared",
              "SDM Vol. 1 figure 8-9 (reserved)"),
]

DEVIATIONS = GLOBAL + [
    Deviation("S-undefined", "not a deviation: results the SDM leaves undefined (F2XM1 outside "
              "-1..+1, FYL2XP1 outside +-(1 - sqrt(2)/2), FBLD with invalid digits)",
              "SDM F2XM1, FYL2XP1, FBLD", _undefined),
    Deviation("U-fip", "FNSTSW AX records FIP (it is a control instruction) and FNOP does not "
              "(it is not one)", "SDM Vol. 1 8.1.8", _fip),
    Deviation("U1-ZE", "ZE comes from FDIV's own test of the divisor, not from softfloat: it is "
              "set for every zero divisor, also 0/0 (the SDM: IE), infinity/0 and NaN/0 (no "
              "exception), and not for FXTRACT of a zero", "SDM FDIV/FDIVR (table of results), "
              "FXTRACT ('#Z: ST(0) operand is +-0'), 8.5.3", _ze),
    Deviation("U-fst-tag", "FST/FSTP ST(i) into an empty register leaves it tagged empty",
              "SDM FST/FSTP (the destination register receives the value), 8.1.7", _fst_tag),
    Deviation("U-stack", "no stack faults: unicorn pushes onto a full stack and reads empty "
              "registers (their stale contents) instead of signalling IE|SF and delivering the "
              "QNaN indefinite (masked) or leaving the state unchanged (unmasked)",
              "SDM Vol. 1 8.5.1.1", _stack_fault),
    Deviation("U-unmasked", "no unmasked exceptions: unicorn always delivers the masked response "
              "(a result, a pop, a store) where an unmasked IE/DE/ZE/OE/UE leaves the "
              "destination, TOP or memory unchanged (or, for OE/UE to a register, the result "
              "with its exponent adjusted by 24576)",
              "SDM Vol. 1 4.7, 8.5.1-8.5.5", _unmasked),
    Deviation("U2", "pseudo-denormal operands (exponent 0, J = 1) are given the wrong weight",
              "SDM Vol. 1 8.2.2 (value sig * 2^-16445, a denormal operand)", _pseudo_denormal),
    Deviation("U3", "SNaNs are not quieted by FLD m32/m64, FST(P) m32/m64 and FSCALE",
              "SDM Vol. 1 4.8.3.4, table 4-7 (masked IE: the QNaN)", _snan),
    Deviation("U4", "the constants ignore RC (always rounded to nearest)",
              "SDM FLD1/FLDL2T/...: 'rounding control affects the result'", _const_rc),
    Deviation("U5", "FPREM/FPREM1 in host double precision (wrong remainders, quotient bits, "
              "C2; +QNaN for NaN/infinite/zero-divisor operands; +0 for a zero remainder of a "
              "negative ST0) and FPREM1's exponent shortcut",
              "SDM FPREM, FPREM1 (exact remainder; table 4-7; sign of ST0)", _fprem),
    Deviation("U7", "FSCALE applies precision control, gives the overflow response for "
              "ST0 * 2^+inf and returns a NaN ST1 unchanged",
              "SDM Vol. 1 8.1.5.2; FSCALE table; table 4-7", _fscale),
    Deviation("U8", "FXTRACT of an infinity or NaN gives exponent 16384; of a denormal does not "
              "normalise", "SDM FXTRACT", _fxtract),
    Deviation("U9", "FXAM reports unnormals as normal, pseudo-NaN/-infinity as NaN",
              "SDM FXAM (unsupported: C3 C2 C0 = 000)", _fxam),
    Deviation("U10", "FBSTP of NaN, infinity or out-of-range values stores garbage, and a "
              "negative value rounding to zero loses its sign",
              "SDM FBSTP (packed BCD indefinite; -0)", _fbstp),
    Deviation("U11", "unsupported encodings are used as numbers by FSCALE FXTRACT FPREM FPREM1 "
              "FBSTP", "SDM Vol. 1 8.2.2 (invalid operation)", _unsupported),
    Deviation("U13", "FYL2X of a negative or zero ST(0) sets C2 and leaves the stack "
              "unchanged (no pop, ST(1) kept)",
              "SDM FYL2X (negative: #IA, the indefinite; zero: #Z, -inf; then pop)",
              _fyl2x_domain),
    Deviation("U12", "transcendentals are computed in host double precision (53-bit results, "
              "errors of thousands of ulps, cancellation in F2XM1 and FYL2XP1, reduction with "
              "the exact pi instead of the 66-bit one; FSIN FCOS FSINCOS FPTAN accept "
              "|x| = 2^63); Aero's results are checked against mpmath in "
              "tests/fpu/test_float80.py",
              "SDM Vol. 1 8.3.10 (at most 1 ulp, 66-bit pi); FSIN/FCOS/FPTAN ('|x| < 2^63')",
              _transcendental),
]
DEV_BY_KEY = {d.key: d for d in DEVIATIONS}


def classify_case(c: Case):
    """The key of the first deviation explaining the case, or None."""
    for d in DEVIATIONS:
        if d.applies is not None and d.applies(c):
            return d.key
    return None


# ------------------------------------------------------------------------------------------------
# one program
# ------------------------------------------------------------------------------------------------
_CC = C0 | C1 | C2 | C3


def cc_effect(name):
    """(condition-code bits the instruction defines, bits it leaves unchanged) per its SDM page
    ("FPU Flags Affected"); the others become undefined.  C1 counts as defined only where
    unicorn computes it (X1): FXAM, FPREM, FPREM1."""
    op = name.split()[0]
    if op in ("FXAM", "FPREM", "FPREM1"):
        return _CC, 0
    if op in ("FCOM", "FCOMP", "FCOMPP", "FUCOM", "FUCOMP", "FUCOMPP", "FICOM", "FICOMP",
              "FTST", "FCOM2", "FCOMP3", "FCOMP5"):
        return C0 | C2 | C3, 0
    if op in ("FCOMI", "FCOMIP", "FUCOMI", "FUCOMIP"):
        return 0, C0 | C2 | C3
    if op in ("FSIN", "FCOS", "FSINCOS", "FPTAN"):
        return C2, 0
    return 0, 0


def sw_mask_for(prog: Program, k=None) -> int:
    """The status-word bits compared: TOP, ZE (X1) and the condition codes the SDM defines at
    that point (see cc_effect; FNINIT clears them all, the prologue's FLDCW is taken to keep
    them, as both sides do)."""
    defined = C0 | C2 | C3
    for ins in (prog.body if k is None else prog.body[:k]):
        sets, keeps = cc_effect(ins.form.name)
        defined = sets | (defined & keeps)
    return 0x3800 | ZE | defined


class Runner:
    def __init__(self):
        self.aero = AeroSide()
        self.uc = UnicornSide()

    def compare(self, prog: Program, k=None):
        """(diffs, aero result, unicorn result) for code(k)."""
        code = prog.code(k)
        a = self.aero.run(code, prog.data)
        u = self.uc.run(code, prog.data)
        if a.status != "ok" or u.status != "ok":
            if (a.status, a.vector, a.eip) == (u.status, u.vector, u.eip):
                return [], a, u
            return [("run", f"{a.status} {a.vector} {a.eip:#x} {a.detail}",
                     f"{u.status} {u.vector} {u.eip:#x} {u.detail}")], a, u
        sa, su = State.of(a.data), State.of(u.data)
        fip, fop, fdp = expected_pointers(prog, k)
        skip = ("fop",) if fdp is not None else ("fop", "fdp")
        diffs = diff_states(sa, su, sw_mask_for(prog, k), skip)
        for name, want in (("fip", fip), ("fop", fop), ("fdp", fdp)):
            if want is not None and getattr(sa, name) != want:
                diffs.append((f"{name} (expected)", getattr(sa, name), want))
        diffs += diff_memory(a.data, u.data)
        return diffs, a, u

    def check(self, prog: Program):
        """('pass', None) / ('explained', key) / ('mismatch', text)."""
        diffs, a, u = self.compare(prog)
        if not diffs:
            return "pass", None
        if any(d[0] == "run" or d[0].endswith("(expected)") for d in diffs):
            return "mismatch", describe(prog, diffs)
        # find the first instruction after which the states differ
        pre = pre_data = None
        for k in range(0, len(prog.body) + 1):
            dk, ak, uk = self.compare(prog, k)
            if dk and k == 0:
                return "mismatch", describe(prog, dk, 0)
            if dk:
                if any(d[0] == "run" for d in dk):
                    return "mismatch", describe(prog, dk, k)
                fresh = self.aero.run(prog.code(k, clex=True), prog.data)
                raised = State.of(fresh.data).sw & 0x7F if fresh.status == "ok" else 0
                case = Case(prog.body[k - 1], pre, State.of(ak.data), State.of(uk.data), dk,
                            ak.data, pre_data, raised)
                key = classify_case(case)
                if key is None:
                    return "mismatch", describe(prog, dk, k)
                return "explained", key
            pre, pre_data = State.of(ak.data), ak.data
        return "mismatch", describe(prog, diffs) + "\n(prefixes agree: order-dependent?)"


def _fmt(name, v):
    if isinstance(v, int) and name.startswith("st"):
        return f"{v >> 64:04x}:{v & F.SIG_MASK:016x} ({F.classify(v)})"
    if isinstance(v, int):
        return f"{v:#06x}"
    return str(v)


def describe(prog: Program, diffs, k=None) -> str:
    """The program's disassembly (> marks the instructions under test, . the scaffolding;
    memory operands are shown decoded) and the differences."""
    code = prog.code(k)
    lines = [f"cw={prog.cw:#06x} eflags={prog.eflags:#x}" +
             ("" if k is None else f"  (cut after instruction {k} of the body)")]
    body = prog.body if k is None else prog.body[:k]
    at = dict(zip(prog.addresses(k), body))
    i = 0
    while i < len(code):
        n, text = disasm_bytes(code[i:], CODE + i)
        if n == 0:
            break
        ins = at.get(CODE + i)
        mark = "." if ins is None else (">" if ins in prog.tests else " ")
        if ins is not None and ins.slot is not None and not ins.form.store:
            text += f"   ; {ins.form.fmt} {ins.raw:#x} = {_fmt('st', to80(ins.form.fmt, ins.raw))}"
        lines.append(f"{mark} {CODE + i:05x}  {code[i:i + n].hex():<24} {text}")
        i += n
    for name, x, y in diffs:
        lines.append(f"    {name:<16} aero {_fmt(name, x)}\n    {'':<16} uc   {_fmt(name, y)}")
    return "\n".join(lines)


def run(count: int, seed: int, verbose: bool = False, out=sys.stdout, limit: int = 20) -> dict:
    """Run `count` random programs; print mismatches (up to `limit`) and a summary."""
    rng = random.Random(seed)
    gen = Gen(rng)
    runner = Runner()
    stats = Counter()
    t0 = time.time()
    shown = 0
    for n in range(count):
        prog = gen.program()
        st, info = runner.check(prog)
        stats[st] += 1
        if st == "explained":
            stats["dev " + info] += 1
        elif st == "mismatch":
            if shown < limit or verbose:
                print(f"--- mismatch in program {n} (seed {seed})\n{info}", file=out)
            shown += 1
    stats["seconds"] = round(time.time() - t0, 1)
    print(f"x87 differential: {count} programs, seed {seed}: " +
          ", ".join(f"{k} {v}" for k, v in sorted(stats.items())), file=out)
    return dict(stats)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    count = int(args[0]) if args else 1000
    seed = int(args[1]) if len(args) > 1 else 1
    stats = run(count, seed, verbose)
    return 0 if not stats.get("mismatch") else 1


if __name__ == "__main__":
    sys.exit(main())
