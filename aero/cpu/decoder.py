"""Decoding x86 instruction bytes into `Insn` objects, driven by `aero.cpu.table`.

The decoder reads bytes through a ``fetch(i)`` callable returning the byte at offset ``i`` from the
instruction's start (which may raise a guest fault: a page fault or a CS limit violation happens
only for bytes the instruction really has).  An instruction longer than 15 bytes raises #GP(0)
(SDM Vol. 2, 2.3.11).
"""

from __future__ import annotations

from . import table as T
from ..faults import CPUFault, GP

MAX_LEN = 15

# 16-bit ModR/M addressing: (base, index) per r/m (SDM Vol. 2, Table 2-1).  -1 = none.
EA16 = ((3, 6), (3, 7), (5, 6), (5, 7), (6, -1), (7, -1), (5, -1), (3, -1))

IMM_SIZE_FIXED = {"Ib": 1, "sIb": 1, "Jb": 1, "Iw": 2}


class Insn:
    """A decoded instruction."""

    __slots__ = ("eip", "length", "raw", "entry", "two", "opcode", "opsize", "adsize", "seg",
                 "rep", "lock", "mod", "reg", "rm", "base", "index", "scale", "disp", "imm",
                 "imm2", "esc", "vex")

    def __init__(self):
        self.seg = -1          # segment override (0-5) or -1
        self.rep = 0           # 0, 0xF2 or 0xF3
        self.lock = False
        self.mod = self.reg = self.rm = -1
        self.base = self.index = -1
        self.scale = 0
        self.disp = 0
        self.imm = self.imm2 = 0
        self.esc = None        # "0F38" / "0F3A" for three-byte maps
        self.vex = False

    @property
    def has_mem(self) -> bool:
        return 0 <= self.mod < 3

    @property
    def default_seg(self) -> int:
        """The segment of the memory operand without an override: SS when based on [E]BP or
        ESP (BP in 16-bit addressing), DS otherwise."""
        if self.adsize == 16:
            return 2 if self.base == 5 else 3
        return 2 if self.base in (4, 5) else 3

    @property
    def mem_seg(self) -> int:
        return self.seg if self.seg >= 0 else self.default_seg

    @property
    def mnemonic(self) -> str:
        return self.entry.mnemonic(self.opsize)

    def __repr__(self) -> str:
        return f"<Insn {self.eip:#x} {self.raw.hex()} {self.mnemonic}>"


def decode(fetch, eip: int, code32: bool) -> Insn:
    """Decode one instruction at ``eip``; ``fetch(i)`` gives the byte at offset i."""
    ins = Insn()
    ins.eip = eip
    opsize = adsize = 32 if code32 else 16
    pos = 0
    raw = bytearray()

    def byte():
        nonlocal pos
        if pos >= MAX_LEN:
            raise CPUFault(GP, 0)
        b = fetch(pos)
        raw.append(b)
        pos += 1
        return b

    b = byte()
    while b in T.PREFIXES:
        if b == 0x66:                             # repeats do not toggle back
            opsize = 16 if code32 else 32
        elif b == 0x67:
            adsize = 16 if code32 else 32
        elif b == 0xF0:
            ins.lock = True
        elif b in (0xF2, 0xF3):
            ins.rep = b
        else:
            ins.seg = T.SEG_PREFIX[b]
        b = byte()
    ins.opsize, ins.adsize = opsize, adsize

    two = False
    if b == 0x0F:
        two = True
        b = byte()
    elif b in (0xC4, 0xC5) and code32:
        # VEX (AVX) in protected mode when the next byte has mod == 11b: decoded for length only.
        nb = fetch(pos)
        if nb >> 6 == 3:
            return _decode_vex(ins, b, byte, raw)
    ins.two, ins.opcode = two, b

    entry = T.lookup(two, b, None)
    if entry == "0F38" or entry == "0F3A":
        ins.esc = entry
        byte()                                    # the third opcode byte
        entry = T.UD_MODRM_IB if entry == "0F3A" else T.UD_MODRM
    elif entry is None:
        entry = T.UD
    if isinstance(entry, list) or T.needs_modrm(entry.ops):
        if not isinstance(entry, list) and "Rd" in entry.ops:
            # MOV CRn/DRn: r/m names a register whatever mod says (no SIB, no displacement)
            m = byte()
            ins.mod, ins.reg, ins.rm = 3, (m >> 3) & 7, m & 7
        else:
            _modrm(ins, byte)
        if isinstance(entry, list):
            entry = entry[ins.reg]
    ins.entry = entry
    for spec in entry.ops:
        n = IMM_SIZE_FIXED.get(spec)
        if n is None:
            if spec in ("Iz", "Iv", "Jz"):
                n = opsize // 8
            elif spec == "Ap":
                ins.imm = _le(byte, opsize // 8)
                ins.imm2 = _le(byte, 2)
                continue
            elif spec in ("Ob", "Ov"):
                ins.disp = _le(byte, adsize // 8)
                ins.mod = 0                       # a memory operand with no base or index
                continue
            else:
                continue
        v = _le(byte, n)
        if spec in ("sIb", "Jb"):
            v = v - 0x100 if v & 0x80 else v
        elif spec == "Jz" and v >> (n * 8 - 1):
            v -= 1 << (n * 8)
        if entry.mnem == "ENTER" and spec == "Ib":
            ins.imm2 = v
        else:
            ins.imm = v
    ins.length = pos
    ins.raw = bytes(raw)
    return ins


def _le(byte, n):
    v = 0
    for i in range(n):
        v |= byte() << (8 * i)
    return v


def _modrm(ins: Insn, byte) -> None:
    m = byte()
    mod, reg, rm = m >> 6, (m >> 3) & 7, m & 7
    ins.mod, ins.reg, ins.rm = mod, reg, rm
    if mod == 3:
        return
    if ins.adsize == 16:
        if mod == 0 and rm == 6:
            ins.disp = _le(byte, 2)
            return
        ins.base, ins.index = EA16[rm]
        if mod == 1:
            d = byte()
            ins.disp = d - 0x100 if d & 0x80 else d
        elif mod == 2:
            ins.disp = _le(byte, 2)
        return
    if rm == 4:
        sib = byte()
        ins.scale, idx, base = sib >> 6, (sib >> 3) & 7, sib & 7
        ins.index = -1 if idx == 4 else idx
        if base == 5 and mod == 0:
            ins.disp = _le(byte, 4)
        else:
            ins.base = base
    elif rm == 5 and mod == 0:
        ins.disp = _le(byte, 4)
        return
    else:
        ins.base = rm
    if mod == 1:
        d = byte()
        ins.disp = (d - 0x100 if d & 0x80 else d) & 0xFFFFFFFF
    elif mod == 2:
        ins.disp = _le(byte, 4)


def _decode_vex(ins: Insn, first: int, byte, raw) -> Insn:
    """Length-decode a VEX instruction (SDM Vol. 2, 2.3.5) and mark it #UD."""
    ins.vex = True
    if first == 0xC5:
        byte()
        mmmmm = 1
    else:
        mmmmm = byte() & 0x1F
        byte()
    ins.opcode = byte()
    if mmmmm == 1 and ins.opcode == 0x77:         # VZEROUPPER/VZEROALL: no ModR/M
        return _vex_done(ins, raw)
    _modrm(ins, byte)
    if mmmmm == 3 or (mmmmm == 1 and ins.opcode in (0x70, 0x71, 0x72, 0x73, 0xC2, 0xC4, 0xC5, 0xC6)):
        byte()
    return _vex_done(ins, raw)


def _vex_done(ins: Insn, raw) -> Insn:
    ins.two = True
    ins.entry = T.Entry("(bad)", ("M",), ud=True)
    ins.length = len(raw)
    ins.raw = bytes(raw)
    return ins
