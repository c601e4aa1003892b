"""`aero conformance unicorn`: differential testing of Aero's CPU against unicorn 2.1.4.

Random instruction sequences are generated from the instruction table (``aero.cpu.table``): every
entry that stays inside the sandbox gets encodings with random prefixes (66, 67, segment
overrides, REP on string instructions, LOCK), register and memory ModR/M forms, SIB bytes,
displacements and immediates.  Each sequence (1-8 instructions and the scaffolding some need, then
HLT) runs in Aero and in unicorn from the same state, in 32-bit flat protected mode and in 16-bit
real mode; the general registers, EIP, EFLAGS and every byte either side wrote are compared.

Flags the SDM leaves undefined are masked: the table's ``fu`` field plus per-instruction knowledge
(shift and rotate counts, SHLD/SHRD, BSF/BSR with a zero source, REP with a zero count).  A
sequence in which an instruction reads a flag that is undefined at that point, or whose result
the SDM leaves undefined, is skipped (counted).  Exceptions are compared by vector and the
EIP they report.  Differences the manuals decide in Aero's favour are unicorn deviations, each a
documented predicate in ``aero.conformance.unicorn_known``.

Branches (Jcc, JMP, CALL, LOOP, JCXZ, RET, JMP/CALL through registers and memory) are built so
they land on a later instruction of the sequence.  Far transfers, segment loads, I/O, system
instructions and INT n are not generated (their checks live in the NASM system tests).

The sandbox: 16 MiB of RAM on both sides; code at 1000h (CS base 0 in both modes); in 32-bit
mode flat 4 GiB segments with selector 0 (as unicorn has them) and a random-filled data area at
10000h that most registers (and ESP) point into; in real mode ES/SS/DS/FS/GS at 1800h/1400h/
1000h/2000h/0C00h with everything they reach random-filled.  Memory is compared over the first
256 KiB and over every page outside it that a traced memory operand, stack or string pointer
can reach or that Aero wrote.  Sequences unicorn stops on an unmapped access, or that write
into their own code, are skipped and counted.

Two unicorn 2.1.4 traps the harness avoids: a UC_HOOK_MEM_WRITE hook makes unicorn lose CF after
PUSHF (so writes are not hooked), and EFLAGS are never read from inside a code hook.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ..cpu import table as T
from ..cpu.cpu import CPU, A_P, A_S, A_RW, A_ACCESSED, A_DB, A_G, A_CODE
from ..cpu.decoder import decode
from ..cpu.disasm import disasm
from ..faults import EmulatorError
from ..mem.bus import Bus
from . import unicorn_known as known

MEM = 16 << 20                 # RAM on both sides (unicorn maps the same range)
CODE = 0x1000                  # the sequence's first instruction (CS base 0 in both modes)
CODE_WINDOW = 0x400
BUDGET = 100000
REGION = 0x40000               # compared whole; holds the code, the data areas, low memory
DATA32 = 0x10000               # 32-bit mode: the random data area pointers point into
DATA32_SIZE = 0x4000
FILL16 = (0xC000, 0x30000)     # 16-bit mode: the random-filled range covering all segments
SEGS16 = (0x1800, 0x0000, 0x1400, 0x1000, 0x2000, 0x0C00)    # ES CS SS DS FS GS
FLAG_BITS = {"C": 0x1, "P": 0x4, "A": 0x10, "Z": 0x40, "S": 0x80, "D": 0x400, "O": 0x800}
ARITH = 0x8D5
# EFLAGS bits compared: arithmetic, TF, IF, DF, IOPL, NT, AC, ID (bit 1 always 1).
FLAGS_CMP = 0x8D5 | 0x100 | 0x200 | 0x400 | 0x3000 | 0x4000 | 0x40000 | 0x200000 | 0x2
REG_NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")

# Instructions not generated: they leave the sandbox or are system instructions.
EXCLUDED = frozenset((
    "POP_SEG", "MOV_TO_SEG", "LFP", "CALLF", "JMPF", "CALLF_M", "JMPF_M", "RETF", "INT", "INT1",
    "IRET", "IN", "OUT", "INS", "OUTS", "HLT", "SLDT", "STR", "LLDT", "LTR", "VERR", "VERW",
    "SGDT", "SIDT", "LGDT", "LIDT", "SMSW", "LMSW", "INVLPG", "LAR", "LSL", "CLTS", "INVD",
    "WBINVD", "MOV_FROM_CR", "MOV_FROM_DR", "MOV_TO_CR", "MOV_TO_DR", "WRMSR", "RDTSC", "RDMSR",
    "SYSENTER", "SYSEXIT", "CPUID", "RDPMC"))
UD_WEIGHT = 0.25               # the invalid group slots are picked less often than real entries
SHIFTS = frozenset(("ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAR"))
STRINGS = frozenset(("MOVS", "CMPS", "SCAS", "LODS", "STOS"))
BRANCH_REL = frozenset(("JCC", "JMP", "CALL", "LOOP", "JCXZ"))


def _bits(letters: str) -> int:
    v = 0
    for ch in letters:
        v |= FLAG_BITS.get(ch, 0)
    return v


def eligible_entries():
    """(two, opcode, reg, entry) for every table entry the generator uses."""
    out = []
    for two, opcode, reg, e in T.all_entries():
        if e.x87 or e.name in EXCLUDED:
            continue
        if e.ud and (two or reg is None):
            continue            # only the invalid /reg slots of one-byte group opcodes
        out.append((two, opcode, reg, e))
    return out


# ------------------------------------------------------------------------------------------------
# Sequence generation
# ------------------------------------------------------------------------------------------------
@dataclass
class Item:
    code: bytearray
    test: bool = False              # the instruction under test (vs scaffolding)
    rel: tuple | None = None        # (offset, size): a relative branch field to patch
    absf: list = field(default_factory=list)   # (offset, size): absolute target fields
    addr: int = 0


@dataclass
class Bundle:
    items: list
    branch: bool = False            # has fields pointing at a later bundle
    addr: int = 0


def _le(v: int, n: int) -> bytes:
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


class Gen:
    def __init__(self, rng: random.Random, code32: bool):
        self.rng = rng
        self.code32 = code32

    # -- values ------------------------------------------------------------------------------
    def imm(self, n: int) -> int:
        rng = self.rng
        r = rng.random()
        bits = 8 * n
        if r < 0.15:
            return rng.choice((0, 1, 2, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1))
        if r < 0.3:
            return rng.randrange(0, 16)
        return rng.getrandbits(bits)

    def shift_count(self) -> int:
        rng = self.rng
        if rng.random() < 0.7:
            return rng.choice((0, 1, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33))
        return rng.getrandbits(8)

    def ptr32(self) -> int:
        return DATA32 + 0x800 + self.rng.randrange(0, DATA32_SIZE - 0x1000)

    def mov_reg(self, r: int, v: int) -> bytearray:
        """MOV r32, imm32 (with a 66 prefix in 16-bit code)."""
        return bytearray((b"" if self.code32 else b"\x66") + bytes((0xB8 + r,)) + _le(v, 4))

    # -- ModR/M ------------------------------------------------------------------------------
    def modrm(self, reg: int, mem: bool, adsize: int):
        """(bytes, base/index registers used) for a ModR/M with the given reg field."""
        rng = self.rng
        if not mem:
            return bytes((0xC0 | reg << 3 | rng.randrange(8),)), ()
        mod = rng.choice((0, 0, 1, 1, 2))
        rm = rng.randrange(8)
        if adsize == 16:
            out = bytearray((mod << 6 | reg << 3 | rm,))
            used = {0: (3, 6), 1: (3, 7), 2: (5, 6), 3: (5, 7), 4: (6,), 5: (7,), 6: (5,), 7: (3,)}[rm]
            if mod == 0 and rm == 6:
                out += _le(rng.getrandbits(16), 2)
                used = ()
            elif mod == 1:
                out.append(rng.getrandbits(8))
            elif mod == 2:
                out += _le(rng.getrandbits(16), 2)
            return bytes(out), used
        out = bytearray((mod << 6 | reg << 3 | rm,))
        used = [rm]
        nobase = False
        if rm == 4:
            scale, index, base = rng.randrange(4), rng.randrange(8), rng.randrange(8)
            if rng.random() < 0.5:
                scale = 0
            out.append(scale << 6 | index << 3 | base)
            used = [base] + ([index] if index != 4 else [])
            if mod == 0 and base == 5:
                used = used[1:]
                nobase = True
        elif rm == 5 and mod == 0:
            used = []
            nobase = True
        if nobase:
            v = self.ptr32() if self.code32 else rng.getrandbits(16)
            if rng.random() < 0.2:
                v = rng.choice((0, rng.getrandbits(32) & 0xFFFF, rng.randrange(0, 0x100)))
            out += _le(v, 4)
        elif mod == 1:
            out.append(rng.getrandbits(8))
        elif mod == 2:
            v = rng.randrange(-0x400, 0x400) if rng.random() < 0.8 else rng.getrandbits(32)
            out += _le(v, 4)
        return bytes(out), tuple(used)

    # -- one table entry ---------------------------------------------------------------------
    def bundle(self, two, opcode, reg, e) -> Bundle:
        rng = self.rng
        code32 = self.code32
        name = e.name
        ops = e.ops
        has_modrm = T.needs_modrm(ops) or reg is not None
        mem_only = any(s in ("M", "Mp", "Ma", "Mq", "Ms", "Mw") for s in ops)
        mem = has_modrm and (mem_only or rng.random() < 0.6)
        if e.ud:
            mem = rng.random() < 0.5
        string = name in STRINGS or name == "XLAT"
        memish = mem or string or any(s in ("Ob", "Ov") for s in ops)
        # prefixes
        pre = bytearray()
        osz, asz = (32, 32) if code32 else (16, 16)
        p66 = 0.3 if not all(s in ("Eb", "Gb", "AL", "Ib", "Zb") for s in ops) else 0.05
        if name == "BSWAP":             # BSWAP r16 is undefined: such sequences are skipped
            p66 = 0.03 if code32 else 0.97
        if rng.random() < p66:
            pre.append(0x66)
            osz = 48 - osz
        p67 = (0.25 if code32 else 0.15) if memish or name in ("LOOP", "JCXZ") else 0.02
        if rng.random() < p67:
            pre.append(0x67)
            asz = 48 - asz
        if memish and rng.random() < 0.2:
            pre.append(rng.choice((0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65)))
        if e.rep and rng.random() < 0.5:
            pre.append(rng.choice((0xF3, 0xF3, 0xF2)) if name in ("CMPS", "SCAS") else 0xF3)
        if (e.lock and mem and rng.random() < 0.2) or rng.random() < 0.004:
            pre.append(0xF0)
        rng.shuffle(pre)
        body = bytearray(pre)
        if two:
            body.append(0x0F)
        body.append(opcode)
        regfield = reg if reg is not None else rng.randrange(8)
        if "Sw" in ops and rng.random() < 0.9:
            regfield = rng.randrange(6)
        used = ()
        mbytes = b""
        if has_modrm:
            mbytes, used = self.modrm(regfield, mem, asz)
            body += mbytes
        item = Item(body, test=True)
        # immediates and branch fields
        for spec in ops:
            if spec == "Ib":
                if name in SHIFTS or name in ("SHLD", "SHRD"):
                    v = self.shift_count()
                elif name in ("AAM", "AAD"):
                    v = rng.choice((10, 10, 10, 0, 16, 7, rng.getrandbits(8)))
                elif name == "ENTER":
                    v = rng.choice((0, 0, 1, 2, 3, rng.randrange(32)))
                else:
                    v = self.imm(1)
                body += bytes((v & 0xFF,))
            elif spec == "sIb":
                body += _le(self.imm(1), 1)
            elif spec == "Iw":
                v = rng.randrange(0, 0x40) if name in ("ENTER", "RETN_IMM") else self.imm(2)
                body += _le(v, 2)
            elif spec in ("Iz", "Iv"):
                body += _le(self.imm(osz // 8), osz // 8)
            elif spec in ("Ob", "Ov"):
                v = self.ptr32() if asz == 32 and code32 else rng.getrandbits(16)
                body += _le(v, asz // 8)
            elif spec in ("Jb", "Jz"):
                n = 1 if spec == "Jb" else osz // 8
                item.rel = (len(body), n)
                body += bytes(n)
        b = Bundle([item])
        if item.rel:
            b.branch = True
        # scaffolding that makes the instruction meaningful
        opb = 0x66 if (osz == 32) != code32 else None
        if name in ("DIV", "IDIV") and rng.random() < 0.6:
            # make a quotient overflow (#DE) less likely: zero or sign-extend the high half
            if ops[0] == "Eb":
                pro = b"\x30\xe4" if name == "DIV" else (b"\x66\x98" if code32 else b"\x98")
            else:
                pro = (b"" if opb is None else b"\x66") + (b"\x31\xd2" if name == "DIV" else b"\x99")
            b.items.insert(0, Item(bytearray(pro)))
        if e.rep and any(p in (0xF2, 0xF3) for p in pre):
            b.items.insert(0, Item(self.mov_reg(1, rng.choice((0, 1, 2, 3, 5, 8, 13)))))
        if string and rng.random() < 0.5:
            for r in (6, 7):
                v = self.ptr32() if code32 else rng.getrandbits(16)
                b.items.insert(0, Item(self.mov_reg(r, v)))
        if name in SHIFTS or name in ("SHLD", "SHRD"):
            if "CL" in ops and rng.random() < 0.7:
                b.items.insert(0, Item(bytearray((0xB1, self.shift_count()))))
        if name in ("BT", "BTS", "BTR", "BTC") and ops[1] == "Gv" and mem and regfield not in used \
                and rng.random() < 0.85:
            b.items.insert(0, Item(self.mov_reg(regfield, rng.randrange(-96, 200))))
        if name in ("BSF", "BSR") and rng.random() < 0.3 and not mem:
            b.items.insert(0, Item(self.mov_reg(body[len(pre) + 2] & 7, rng.choice((0, 1, 0x80000000)))))
        if name in ("JMP_RM", "CALL_RM"):
            if mem:
                mov = bytearray(pre) + bytes((0xC7,)) + bytes((mbytes[0] & 0xC7,)) + mbytes[1:]
                fld = Item(mov)
                fld.absf.append((len(mov), osz // 8))
                mov += bytes(osz // 8)
                b.items.insert(0, fld)
            else:
                rm = mbytes[0] & 7
                fld = Item(bytearray((b"" if code32 else b"\x66") + bytes((0xB8 + rm,))))
                fld.absf.append((len(fld.code), 4))
                fld.code += bytes(4)
                b.items.insert(0, fld)
            b.branch = True
        if name in ("RETN", "RETN_IMM"):
            push = bytearray((b"" if opb is None else b"\x66") + b"\x68")
            fld = Item(push)
            fld.absf.append((len(push), osz // 8))
            push += bytes(osz // 8)
            b.items.insert(0, fld)
            b.branch = True
        if name in ("POPF",):
            v = rng.getrandbits(32) & ~0x100 & ~0x10000
            if rng.random() < 0.5:
                v &= 0xFFF
            push = bytearray((b"" if opb is None else b"\x66") + b"\x68") + _le(v, osz // 8)
            b.items.insert(0, Item(push))
        return b

    def sequence(self, pool, cum_weights=None):
        """A list of bundles (1-8 instructions under test) and the HLT address."""
        rng = self.rng
        bundles = []
        chosen = []
        for _ in range(rng.randint(1, 8)):
            ent = rng.choices(pool, cum_weights=cum_weights)[0]
            chosen.append(ent)
            bundles.append(self.bundle(*ent))
        addr = CODE
        for b in bundles:
            b.addr = addr
            for it in b.items:
                it.addr = addr
                addr += len(it.code)
        hlt = addr
        starts = [b.addr for b in bundles[1:]] + [hlt]
        for i, b in enumerate(bundles):
            if not b.branch:
                continue
            last = b.items[-1]
            nxt = last.addr + len(last.code)
            cands = starts[i:]
            if last.rel and last.rel[1] == 1:
                cands = [t for t in cands if t - nxt <= 127] or [starts[i]]
            t = rng.choice(cands)
            for it in b.items:
                if it.rel:
                    off, n = it.rel
                    it.code[off:off + n] = _le(t - (it.addr + len(it.code)), n)
                for off, n in it.absf:
                    it.code[off:off + n] = _le(t, n)
        code = b"".join(bytes(it.code) for b in bundles for it in b.items) + b"\xF4"
        return code, hlt, chosen


# ------------------------------------------------------------------------------------------------
# Per-instruction flag knowledge (SDM Vol. 2 "Flags Affected" sections)
# ------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One instruction unicorn started, with the state before it.  (EFLAGS are not read here:
    reading them from a code hook is not safe with unicorn's lazy flags.)"""
    ins: object
    regs: list
    ea: int | None = None
    off: int | None = None


def _reg_val(regs, r, size):
    if size == 32:
        return regs[r]
    if size == 16:
        return regs[r] & 0xFFFF
    return (regs[r] >> 8) & 0xFF if r >= 4 else regs[r] & 0xFF


def ea_of(ins, regs, seg_bases):
    """(linear address, offset) of the ModR/M memory operand, or (None, None)."""
    if not (0 <= ins.mod < 3):
        return None, None
    off = ins.disp
    if ins.base >= 0:
        off += regs[ins.base]
    if ins.index >= 0:
        off += regs[ins.index] << ins.scale
    off &= 0xFFFFFFFF if ins.adsize == 32 else 0xFFFF
    return (seg_bases[ins.mem_seg] + off) & 0xFFFFFFFF, off


def flag_effects(step, read_mem):
    """(flags read, flags written, flags left undefined, taint reason or None) for one executed
    instruction given the state before it."""
    ins = step.ins
    e = ins.entry
    name = e.name
    regs = step.regs
    fr, fw, fu = _bits(e.fr), _bits(e.fw), _bits(e.fu)
    size = 8 if e.ops and e.ops[0] in ("Eb", "Gb", "AL", "Zb", "Ob", "Xb", "Yb") else ins.opsize
    if e.cc is not None:
        fr = _bits(T.CC_FLAGS[e.cc])
    if e.rep and ins.rep:
        cnt = regs[1] if ins.adsize == 32 else regs[1] & 0xFFFF
        if cnt == 0:
            return 0, 0, 0, None
    if name in SHIFTS:
        spec = e.ops[1]
        c = 1 if spec == "1" else (regs[1] & 0xFF if spec == "CL" else ins.imm & 0xFF)
        c &= 0x1F
        if c == 0:
            return 0, 0, 0, None
        fr = 0x1 if name in ("RCL", "RCR") else 0
        if name in ("ROL", "ROR", "RCL", "RCR"):
            return fr, 0x801, (0x800 if c != 1 else 0), None
        fu = 0x10 | (0x800 if c != 1 else 0)
        if name in ("SHL", "SHR") and c >= size:
            fu |= 0x1
        return fr, ARITH, fu, None
    if name in ("SHLD", "SHRD"):
        spec = e.ops[2]
        c = (regs[1] if spec == "CL" else ins.imm) & 0x1F
        if c == 0:
            return 0, 0, 0, None
        if c > ins.opsize:
            return 0, ARITH, ARITH, "SHLD/SHRD count above the operand size: result undefined"
        return 0, ARITH, 0x10 | (0x800 if c != 1 else 0), None
    if name in ("BSF", "BSR"):
        if ins.mod == 3:
            src = _reg_val(regs, ins.rm, ins.opsize)
        else:
            src = read_mem(step.ea, ins.opsize // 8)
        if src == 0:
            return 0, ARITH, ARITH & ~0x40, "BSF/BSR with a zero source: destination undefined"
    if name in ("BT", "BTS", "BTR", "BTC"):
        # SDM Vol. 2, BT: "The ZF flag is unaffected" (the table's fw lists all six).
        fw &= ~0x40
    if name == "BSWAP" and ins.opsize == 16:
        return 0, 0, 0, "BSWAP with a 16-bit operand: result undefined"
    if name == "PUSHF":
        fr = ARITH | 0x400
    return fr, fw, fu, None


# ------------------------------------------------------------------------------------------------
# The two machines
# ------------------------------------------------------------------------------------------------
class _LogBus(Bus):
    """A bus that remembers every address written (the memory comparison's Aero side)."""

    def __init__(self, size):
        super().__init__(size)
        self.wlog = []

    def write8(self, a, v):
        self.wlog.append((a, 1))
        Bus.write8(self, a, v)

    def write16(self, a, v):
        self.wlog.append((a, 2))
        Bus.write16(self, a, v)

    def write32(self, a, v):
        self.wlog.append((a, 4))
        Bus.write32(self, a, v)


@dataclass
class Outcome:
    vector: int | None = None
    eip: int = 0
    regs: list = field(default_factory=list)
    flags: int = 0
    status: str = "ok"          # ok, error, notimpl, sandbox, timeout
    detail: str = ""


class AeroSide:
    def __init__(self):
        self.bus = _LogBus(MEM)
        self.cpu = CPU(self.bus)
        self.cpu.interrupt = self._interrupt
        self.exc = None
        self.dirty = []           # pages outside REGION compared (cleared before the next run)

    def _interrupt(self, vector, code, kind, return_eip):
        self.exc = (vector, return_eip)
        self.cpu.halted = True

    def run(self, mode, regs, flags, image, code) -> Outcome:
        cpu, bus = self.cpu, self.bus
        ram = bus.ram
        for a, n in bus.wlog:
            if a >= REGION:
                ram[a:a + n] = bytes(n)
        for p in self.dirty:
            ram[p << 12:(p + 1) << 12] = bytes(4096)
        bus.wlog = []
        self.dirty = []
        cpu.reset()
        ram[0:REGION] = image
        if mode == 32:
            cpu.write_cr0(cpu.cr0 | 1)
            for s in range(6):
                attr = A_P | A_S | A_RW | A_ACCESSED | A_DB | A_G | (A_CODE if s == 1 else 0)
                cpu.set_seg_cache(s, 0, 0, 0xFFFFFFFF, attr)
        else:
            for s in range(6):
                cpu.load_seg_real(s, SEGS16[s])
        cpu.R[:] = regs
        cpu.flags = flags
        cpu.lf = None
        cpu.eip = CODE
        self.exc = None
        out = Outcome()
        try:
            why = cpu.run(BUDGET)
        except EmulatorError as e:
            msg = str(e)
            out.status = "notimpl" if msg.startswith("no semantics for") else "error"
            out.detail = msg.splitlines()[0]
            if out.status == "error":
                out.detail = msg
            return out
        except Exception as e:                  # noqa: BLE001 - an Aero bug, reported
            out.status = "error"
            out.detail = f"{type(e).__name__}: {e}"
            return out
        out.regs = list(cpu.R)
        out.flags = cpu.get_flags()
        if self.exc is not None:
            out.vector, out.eip = self.exc
        else:
            out.eip = cpu.eip
            if why != "halt":
                out.status = "timeout"
        return out


def _unicorn():
    import unicorn
    from unicorn import x86_const as X
    return unicorn, X


class UnicornSide:
    def __init__(self):
        self.uc_mod, X = _unicorn()
        self.X = X
        self.gpr = [X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
                    X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI]
        self.segs = [X.UC_X86_REG_ES, X.UC_X86_REG_CS, X.UC_X86_REG_SS, X.UC_X86_REG_DS,
                     X.UC_X86_REG_FS, X.UC_X86_REG_GS]

    def run(self, mode, regs, flags, image, hlt, decoded):
        U, X = self.uc_mod, self.X
        uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_32 if mode == 32 else U.UC_MODE_16)
        uc.mem_map(0, MEM)
        uc.mem_write(0, bytes(image))
        if mode == 16:
            for s, sel in zip(self.segs, SEGS16):
                uc.reg_write(s, sel)
            bases = [sel << 4 for sel in SEGS16]
        else:
            bases = [0] * 6
        for r, v in zip(self.gpr, regs):
            uc.reg_write(r, v)
        uc.reg_write(X.UC_X86_REG_EFLAGS, flags)
        trace = []
        exc = []
        gpr = self.gpr
        EFL = X.UC_X86_REG_EFLAGS

        def on_code(uc_, address, size, user):
            ins = decoded.get(address)
            if ins is None:
                return
            rv = [uc_.reg_read(r) for r in gpr]
            st = Step(ins, rv)
            if 0 <= ins.mod < 3:
                st.ea, st.off = ea_of(ins, rv, bases)
            trace.append(st)

        def on_intr(uc_, intno, user):
            exc.append((intno, uc_.reg_read(X.UC_X86_REG_EIP)))
            uc_.emu_stop()

        # No UC_HOOK_MEM_WRITE: with one installed, unicorn 2.1.4 loses CF after PUSHF
        # (later PUSHFs and the final EFLAGS read 0x96 where 0x97 was pushed).
        uc.hook_add(U.UC_HOOK_CODE, on_code)
        uc.hook_add(U.UC_HOOK_INTR, on_intr)
        out = Outcome()
        try:
            uc.emu_start(CODE, hlt, count=BUDGET)
        except U.UcError as e:
            if e.errno == U.UC_ERR_INSN_INVALID:
                exc.append((6, uc.reg_read(X.UC_X86_REG_EIP)))
            elif e.errno in (U.UC_ERR_READ_UNMAPPED, U.UC_ERR_WRITE_UNMAPPED,
                             U.UC_ERR_FETCH_UNMAPPED):
                out.status = "sandbox"
                out.eip = uc.reg_read(X.UC_X86_REG_EIP)
            else:
                out.status = "error"
                out.detail = f"unicorn: {e}"
        out.regs = [uc.reg_read(r) for r in gpr]
        out.flags = uc.reg_read(EFL)
        if exc:
            out.vector, out.eip = exc[0]
        else:
            out.eip = uc.reg_read(X.UC_X86_REG_EIP)
            if out.status == "ok" and out.eip != hlt:
                out.status = "timeout"
        return out, uc, trace, bases


# ------------------------------------------------------------------------------------------------
# One sequence
# ------------------------------------------------------------------------------------------------
@dataclass
class Situation:
    mode: int
    trace: list
    aero: Outcome
    uni: Outcome
    diffs: list
    code: bytes = b""

    def at(self, eip):
        """The first traced step at ``eip`` (where a side took its exception), or None."""
        for st in self.trace:
            if st.ins.eip == eip:
                return st
        return None


def _disasm(ins) -> str:
    try:
        return disasm(ins)
    except Exception:                           # noqa: BLE001 - a fallback for display only
        return ins.raw.hex(" ")


def decode_all(code: bytes, code32: bool) -> dict:
    """Decode the sequence linearly (every instruction, including scaffolding) by address."""
    out = {}
    pos = 0
    while pos < len(code) - 1:
        ins = decode(lambda i, p=pos: code[p + i] if p + i < len(code) else 0x90, CODE + pos, code32)
        out[CODE + pos] = ins
        pos += ins.length
    return out


def random_state(rng, mode):
    regs = []
    for r in range(8):
        x = rng.random()
        if mode == 32:
            if r == 4:
                v = DATA32 + 0x1800 + 4 * rng.randrange(0x200)
            elif x < 0.7:
                v = DATA32 + 0x800 + rng.randrange(DATA32_SIZE - 0x1000)
            elif x < 0.88:
                v = rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(0x100)))
            else:
                v = rng.choice((0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.getrandbits(32)))
        else:
            if r == 4:
                v = 0x100 + 2 * rng.randrange(0x7F00)
            elif x < 0.85:
                v = rng.getrandbits(16)
            else:
                v = rng.getrandbits(32)
        regs.append(v)
    flags = 0x2 | (rng.getrandbits(12) & ARITH)
    if rng.random() < 0.25:
        flags |= 0x400
    if rng.random() < 0.5:
        flags |= 0x200
    if mode == 32:
        fills = [(DATA32, rng.randbytes(DATA32_SIZE))]
    else:
        fills = [(FILL16[0], rng.randbytes(FILL16[1] - FILL16[0]))]
    return regs, flags, fills


class Runner:
    def __init__(self, strict: bool = True):
        self.aero = AeroSide()
        self.uni = UnicornSide()
        self.strict = strict

    def one(self, rng, mode, pool, cum_weights=None):
        """Run one sequence; returns (status, info dict)."""
        g = Gen(rng, mode == 32)
        code, hlt, chosen = g.sequence(pool, cum_weights)
        regs, flags, fills = random_state(rng, mode)
        return self.check(mode, code, regs, flags, fills, chosen)

    def check(self, mode, code, regs, flags, fills=(), chosen=()):
        """Run ``code`` (ending with HLT) from the given state on both sides and compare."""
        hlt = CODE + len(code) - 1
        image = bytearray(REGION)
        for base, data in fills:
            image[base:base + len(data)] = data
        image[CODE:CODE + len(code)] = code
        decoded = decode_all(code, mode == 32)
        for ins in decoded.values():
            h = known.hazard(ins)
            if h:
                return "hazard", {"hazard": h, "code": code, "mode": mode, "trace": []}
        uo, uc, trace, bases = self.uni.run(mode, regs, flags, image, hlt, decoded)
        info = {"code": code, "regs": regs, "flags": flags, "trace": trace, "mode": mode,
                "chosen": chosen, "decoded": decoded}
        if uo.status == "sandbox":
            info["uni"] = uo
            return "sandbox", info
        if bytes(uc.mem_read(CODE, len(code))) != code:
            # The sequence wrote into its own code.  Not comparable: unicorn re-executes a
            # read-modify-write that hits the page of the block it is running (SBB [code], imm
            # applied twice), and an overwritten HLT no longer ends the run in Aero while
            # unicorn still stops at its address.
            info["uni"] = uo
            return "smc", info
        ao = self.aero.run(mode, regs, flags, image, code)
        info["aero"], info["uni"] = ao, uo
        if ao.status == "notimpl":
            return "notimpl", info
        if uo.status == "error":
            return "uerror", info
        # The instructions both sides completed: the trace up to the first exception either side
        # took (a fault's instruction did not complete; INT3/INTO traps did).
        steps = trace
        if uo.vector is not None and steps and steps[-1].ins.eip == uo.eip and \
                uo.vector not in (3, 4):
            steps = steps[:-1]
        if ao.vector is not None and (ao.vector, ao.eip) != (uo.vector, uo.eip):
            for i, st in enumerate(steps):
                if st.ins.eip == ao.eip or (ao.vector in (3, 4) and
                                            (st.ins.eip + st.ins.length) & 0xFFFFFFFF == ao.eip):
                    steps = steps[:i + (1 if ao.vector in (3, 4) else 0)]
                    break

        def read_mem(a, n):
            return int.from_bytes(uc.mem_read(a, n), "little")
        undef = 0
        for st in steps:
            fr, fw, fu, taint = flag_effects(st, read_mem)
            if taint:
                info["taint"] = taint
                return "undefined", info
            if fr & undef:
                info["taint"] = f"{st.ins.mnemonic} reads undefined flags {fr & undef:#x}"
                return "undefined", info
            undef = (undef & ~fw) | fu
        info["undef"] = undef
        if ao.status == "error":
            info["diffs"] = ["aero error"]
            return "mismatch", info
        diffs = []
        if ao.status != uo.status:
            diffs.append("timeout")
        if ao.vector != uo.vector:
            diffs.append("vector")
        aeip = ao.eip if ao.vector is not None else (ao.eip - 1) & 0xFFFFFFFF
        if aeip != uo.eip:
            diffs.append("eip")
        for i in range(8):
            if ao.regs[i] != uo.regs[i]:
                diffs.append(REG_NAMES[i])
        fm = FLAGS_CMP & ~undef
        if (ao.flags ^ uo.flags) & fm:
            diffs.append("eflags")
        ram = self.aero.bus.ram
        memdiff = []
        ubytes = bytes(uc.mem_read(0, REGION))
        if ram[0:REGION] != ubytes:
            for p in range(0, REGION, 4096):
                if ram[p:p + 4096] != ubytes[p:p + 4096]:
                    memdiff += [(a, ram[a], ubytes[a]) for a in range(p, p + 4096)
                                if ram[a] != ubytes[a]]
        # outside REGION: the pages any traced access, stack or string pointer can reach, and
        # the pages Aero wrote
        pages = set()
        for st in trace:
            if st.ea is not None:
                pages.update((st.ea >> 12, (st.ea + 7) >> 12))
            for r in (4, 5, 6, 7):
                pg = st.regs[r] >> 12
                pages.update((pg - 1, pg, pg + 1))
        for a, n in self.aero.bus.wlog:
            pages.update((a >> 12, (a + n - 1) >> 12))
        pages = sorted(pg for pg in pages if REGION >> 12 <= pg < MEM >> 12)
        self.aero.dirty = pages
        for pg in pages:
            a0 = pg << 12
            ub = bytes(uc.mem_read(a0, 4096))
            if ram[a0:a0 + 4096] != ub:
                memdiff += [(a, ram[a], ub[a - a0]) for a in range(a0, a0 + 4096)
                            if ram[a] != ub[a - a0]]
        if memdiff:
            diffs.append("mem")
            info["memdiff"] = memdiff
        info["diffs"] = diffs
        if not diffs:
            return "pass", info
        sit = Situation(mode, trace, ao, uo, diffs, code)
        rule = known.explained_by(sit)
        if rule:
            info["rule"] = rule
            return "known", info
        return "mismatch", info


def describe(info) -> str:
    lines = []
    mode = info["mode"]
    lines.append(f"  mode {mode}, code {info['code'].hex()}")
    for a, ins in sorted(info["decoded"].items()):
        lines.append(f"    {a:08x}  {ins.raw.hex():<24} {_disasm(ins)}")
    lines.append("    initial: " + " ".join(f"{n}={v:08x}" for n, v in zip(REG_NAMES, info["regs"]))
                 + f" eflags={info['flags']:08x}")
    ao, uo = info.get("aero"), info.get("uni")
    if ao is not None and ao.status in ("error", "notimpl"):
        lines.append("    aero: " + ao.detail.replace("\n", "\n          "))
        return "\n".join(lines)
    if ao is not None and uo is not None:
        for who, o in (("aero", ao), ("unicorn", uo)):
            v = "" if o.vector is None else f" exception {o.vector}"
            lines.append(f"    {who:8} eip={o.eip:08x}{v} status={o.status} " +
                         " ".join(f"{n}={x:08x}" for n, x in zip(REG_NAMES, o.regs)) +
                         f" eflags={o.flags:08x}")
        lines.append(f"    differ: {', '.join(info.get('diffs', []))}"
                     f"  (undefined flags masked: {info.get('undef', 0):#x})")
        for a, x, y in info.get("memdiff", [])[:8]:
            lines.append(f"    mem[{a:08x}]: aero {x:02x} unicorn {y:02x}")
    return "\n".join(lines)


def run(count: int, seed: int, mode: str = "both", verbose: bool = False, strict: bool = True,
        out=sys.stdout, max_shown: int = 20) -> bool:
    """Run ``count`` sequences; True when there is no unexplained mismatch (and, when
    ``strict``, no instruction without semantics)."""
    try:
        _unicorn()
    except ImportError:
        print("aero: unicorn is not installed (pip install unicorn==2.1.4)", file=out)
        return False
    modes = {"both": (32, 16), "32": (32,), "16": (16,)}[str(mode)]
    pools = {}
    for m in modes:
        pool = [ent for ent in eligible_entries() if not (m == 16 and ent[3].name == "ARPL")]
        pools[m] = (pool, list(itertools.accumulate(UD_WEIGHT if ent[3].ud else 1.0
                                                    for ent in pool)))
    rng = random.Random(seed)
    runner = Runner(strict)
    t0 = time.time()
    stats = defaultdict(int)
    per_mnem = defaultdict(lambda: [0, 0])     # mnemonic -> [sequences, executions]
    rules = defaultdict(int)
    notimpl = defaultdict(int)
    undefined = defaultdict(int)
    hazards = defaultdict(int)
    shown = 0
    mismatches = []
    for i in range(count):
        m = modes[i % len(modes)]
        srng = random.Random(rng.getrandbits(64))
        status, info = runner.one(srng, m, *pools[m])
        stats[status] += 1
        if status == "notimpl":
            d = info["aero"].detail
            key = d.split(" at ")[0].replace("no semantics for ", "")
            notimpl[key] += 1
        elif status == "undefined":
            t = info["taint"]
            undefined[t.split(" reads ")[0] + " reads undefined flags" if " reads " in t else t] += 1
        elif status == "known":
            rules[info["rule"]] += 1
        elif status == "hazard":
            hazards[info["hazard"]] += 1
        elif status == "mismatch":
            mismatches.append(info)
        if status in ("pass", "known", "mismatch"):
            seen = set()
            for st in info["trace"]:
                mn = f"{st.ins.mnemonic} ({'32' if m == 32 else '16'})"
                per_mnem[mn][1] += 1
                seen.add(mn)
            for mn in seen:
                per_mnem[mn][0] += 1
    elapsed = time.time() - t0
    if verbose:
        print("instruction (mode)          sequences  executed", file=out)
        for mn in sorted(per_mnem):
            s, n = per_mnem[mn]
            print(f"  {mn:26} {s:9} {n:9}", file=out)
    else:
        print(f"{len(per_mnem)} instruction mnemonics exercised (-v lists counts per mnemonic)",
              file=out)
    for info in mismatches[:max_shown if not verbose else len(mismatches)]:
        print("MISMATCH", file=out)
        print(describe(info), file=out)
        shown += 1
    if len(mismatches) > shown:
        print(f"... and {len(mismatches) - shown} more mismatches", file=out)
    if notimpl:
        print(f"not implemented yet ({sum(notimpl.values())} sequences):", file=out)
        for k, v in sorted(notimpl.items(), key=lambda kv: -kv[1]):
            print(f"  {v:6}  {k}", file=out)
    for rule in known.RULES:
        print(f"known unicorn deviation {rule.name}: {rules.get(rule.name, 0)}  ({rule.reason})",
              file=out)
    for h in known.HAZARDS:
        print(f"not run (unicorn hazard) {h.name}: {hazards.get(h.name, 0)}  ({h.reason})",
              file=out)
    print(f"skipped: {stats['sandbox']} left the sandbox (unmapped in unicorn), "
          f"{stats['undefined']} depend on undefined results, {stats['smc']} modified their own "
          f"code, {stats['uerror']} unicorn errors", file=out)
    if verbose and undefined:
        for k, v in sorted(undefined.items(), key=lambda kv: -kv[1]):
            print(f"  {v:6}  {k}", file=out)
    compared = stats["pass"] + stats["mismatch"] + (stats["notimpl"] if strict else 0)
    print(f"{count} sequences in {elapsed:.1f} s; {stats['known']} explained by known deviations"
          + ("" if strict else f"; {stats['notimpl']} not implemented (not counted: strict off)"),
          file=out)
    print(f"passed {stats['pass']} of {compared}", file=out)
    return stats["pass"] == compared
