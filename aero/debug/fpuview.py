"""The x87 as the debugger shows it (``info float``, like gdb's): the eight physical registers
R7..R0 with their tags, raw images and values, the status, control and tag words decoded, and
the last instruction and operand pointers.  Side-effect free: reads ``cpu.fpu`` only."""

from __future__ import annotations

from decimal import Decimal, localcontext

from ..fpu import float80 as F
from ..fpu.x87 import TAG_EMPTY, TAG_SPECIAL, TAG_VALID, TAG_ZERO

_TAGS = {TAG_VALID: "Valid", TAG_ZERO: "Zero", TAG_SPECIAL: "Special", TAG_EMPTY: "Empty"}
_EXC = ("IE", "DE", "ZE", "OE", "UE", "PE")
_MASKS = ("IM", "DM", "ZM", "OM", "UM", "PM")
_PC = {0: "Single (24 bits)", 1: "Reserved", 2: "Double (53 bits)", 3: "Extended (64 bits)"}
_RC = ("Round to nearest", "Round down", "Round up", "Round toward zero")


def value_text(v: int) -> str:
    """An 80-bit image as a number (19 significant digits) or its class."""
    c = F.classify(v)
    neg = "-" if v >> 79 & 1 else "+"
    if c == F.INFINITY:
        return f"{neg}Inf"
    if c in (F.QNAN, F.SNAN):
        return f"{neg}{'QNaN' if c == F.QNAN else 'SNaN'}"
    if c in F.UNSUPPORTED:
        return f"({c})"
    if c == F.ZERO:
        return f"{neg}0"
    q = F.to_fraction(v)
    with localcontext() as ctx:
        ctx.prec = 19
        d = Decimal(q.numerator) / Decimal(q.denominator)
    text = f"{d:+}"
    if c in F.DENORMALS:
        text += f" ({c})"
    return text


def fpu_state(cpu) -> dict:
    fpu = cpu.fpu
    regs = []
    for p in range(7, -1, -1):
        regs.append({"phys": p, "st": (p - fpu.top) & 7, "tag": _TAGS[fpu.tag(p)],
                     "raw": fpu.regs[p], "top": p == fpu.top})
    return {"sw": fpu.sw, "cw": fpu.cw, "tw": fpu.tw, "top": fpu.top, "regs": regs,
            "fip": fpu.fip, "fcs": fpu.fcs, "fdp": fpu.fdp, "fds": fpu.fds, "fop": fpu.fop,
            "pending": fpu.pending_unmasked(), "cr0": cpu.cr0, "ignne": cpu.ignne}


def format_fpu(st: dict) -> str:
    lines = []
    for r in st["regs"]:
        mark = "=>" if r["top"] else "  "
        val = "" if r["tag"] == "Empty" else value_text(r["raw"])
        lines.append(f"{mark}R{r['phys']}: {r['tag']:8} {r['raw']:#022x} {val}".rstrip())
    sw, cw = st["sw"], st["cw"]
    flags = [n for i, n in enumerate(_EXC) if sw >> i & 1]
    flags += [n for b, n in ((0x40, "SF"), (0x80, "ES"), (0x8000, "B")) if sw & b]
    cc = " ".join(f"C{i}" for i, b in ((0, 0x100), (1, 0x200), (2, 0x400), (3, 0x4000))
                  if sw & b)
    lines.append("")
    lines.append(f"Status Word:         {sw:#06x}   {' '.join(flags) or '-'}   "
                 f"{cc or 'no condition codes'}   TOP: {st['top']}")
    masks = [n for i, n in enumerate(_MASKS) if cw >> i & 1]
    lines.append(f"Control Word:        {cw:#06x}   {' '.join(masks) or 'no masks'}   "
                 f"PC: {_PC[cw >> 8 & 3]}   RC: {_RC[cw >> 10 & 3]}")
    lines.append(f"Tag Word:            {st['tw']:#06x}")
    lines.append(f"Instruction Pointer: {st['fcs']:#06x}:{st['fip']:#010x}")
    lines.append(f"Operand Pointer:     {st['fds']:#06x}:{st['fdp']:#010x}")
    lines.append(f"Opcode:              {0xD800 | st['fop']:#06x}")
    cr0 = st["cr0"]
    bits = [n for b, n in ((2, "MP"), (4, "EM"), (8, "TS"), (0x20, "NE")) if cr0 & b]
    state = f"CR0: {' '.join(bits) or '-'}"
    if st["pending"]:
        state += "   an unmasked exception is pending (#MF or FERR# at the next waiting insn)"
    if st["ignne"]:
        state += "   IGNNE# asserted"
    lines.append(state)
    return "\n".join(lines)
