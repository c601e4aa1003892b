"""Disassembly text for decoded instructions: what users see in the debugger and in bug reports.

The text is Intel syntax in lower case, driven by the instruction table (``Entry.mnemonic`` and
``Entry.ops``) and the fields of a decoded :class:`aero.cpu.decoder.Insn`; it never looks at CPU
state, so the same bytes always read the same way.

Conventions (close to capstone's Intel output so the two can be compared, see
``aero.conformance.capstone_cmp``):

* registers by operand size (``al``/``ax``/``eax``), segment, control and debug registers by name;
* memory operands as ``dword ptr es:[ebx+esi*4+0x10]``: a size keyword from the operand size, the
  segment only when a prefix overrides it (string destinations always show ``es:``), the
  displacement signed when there is a base or an index and unsigned when it is the whole address;
  operands that only name an address (LEA, INVLPG, SGDT...) have no size keyword, far pointers in
  memory are ``dword ptr``/``fword ptr`` by operand size;
* immediates in hex (``0x10``); sign-extended byte immediates shown signed (``-0x1``);
* relative branch targets as absolute addresses: next EIP + displacement, masked by operand size;
* direct far pointers as ``0x1234:0x5678``; far JMP/CALL spelt ``jmp far``/``call far``;
* prefixes as words: ``lock``, and ``rep``/``repe``/``repne`` on string instructions;
* encodings the i686 does not define (the table's ``(bad)`` entries, VEX, memory-only operands
  with a register ModR/M, segment registers 6 and 7, LOCK on an instruction or operand that does
  not accept it) read ``(bad)``: they raise #UD whatever the CPU state.
"""

from __future__ import annotations

from ..faults import CPUFault
from .decoder import decode

R8 = ("al", "cl", "dl", "bl", "ah", "ch", "dh", "bh")
R16 = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")
R32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
SEGS = ("es", "cs", "ss", "ds", "fs", "gs")
SIZE_WORD = {8: "byte", 16: "word", 32: "dword", 48: "fword", 64: "qword", 80: "tbyte"}

# Memory-only operand specs: a register ModR/M (mod == 3) makes the instruction #UD.
MEM_ONLY = frozenset(("M", "Mp", "Ma", "Mq", "Ms", "Mw"))

# x87 escape mnemonics (SDM Vol. 2, Appendix A.5), shown for ESC opcodes D8-DF (their semantics:
# aero.fpu.insns, which tests/fpu/test_insns.py keeps in step with these tables).
# Memory forms: [opcode - 0xD8][reg] -> (mnemonic, operand size in bits or 0 for no keyword).
_X87_MEM = (
    (("fadd", 32), ("fmul", 32), ("fcom", 32), ("fcomp", 32), ("fsub", 32), ("fsubr", 32),
     ("fdiv", 32), ("fdivr", 32)),
    (("fld", 32), None, ("fst", 32), ("fstp", 32), ("fldenv", 0), ("fldcw", 16), ("fnstenv", 0),
     ("fnstcw", 16)),
    (("fiadd", 32), ("fimul", 32), ("ficom", 32), ("ficomp", 32), ("fisub", 32), ("fisubr", 32),
     ("fidiv", 32), ("fidivr", 32)),
    (("fild", 32), ("fisttp", 32), ("fist", 32), ("fistp", 32), None, ("fld", 80), None,
     ("fstp", 80)),
    (("fadd", 64), ("fmul", 64), ("fcom", 64), ("fcomp", 64), ("fsub", 64), ("fsubr", 64),
     ("fdiv", 64), ("fdivr", 64)),
    (("fld", 64), ("fisttp", 64), ("fst", 64), ("fstp", 64), ("frstor", 0), None, ("fnsave", 0),
     ("fnstsw", 16)),
    (("fiadd", 16), ("fimul", 16), ("ficom", 16), ("ficomp", 16), ("fisub", 16), ("fisubr", 16),
     ("fidiv", 16), ("fidivr", 16)),
    (("fild", 16), ("fisttp", 16), ("fist", 16), ("fistp", 16), ("fbld", 80), ("fild", 64),
     ("fbstp", 80), ("fistp", 64)),
)
# Register forms: [opcode - 0xD8][reg] -> (mnemonic, operand pattern) with "st(i)" operands, or a
# dict {rm: mnemonic} for the D9/DA/DB/DE/DF rows whose rm picks an operand-less instruction.
_X87_REG = (
    ("fadd 0i", "fmul 0i", "fcom i", "fcomp i", "fsub 0i", "fsubr 0i", "fdiv 0i", "fdivr 0i"),
    ("fld i", "fxch i", {0: "fnop"}, "fstp i",
     {0: "fchs", 1: "fabs", 4: "ftst", 5: "fxam"},
     {0: "fld1", 1: "fldl2t", 2: "fldl2e", 3: "fldpi", 4: "fldlg2", 5: "fldln2", 6: "fldz"},
     {0: "f2xm1", 1: "fyl2x", 2: "fptan", 3: "fpatan", 4: "fxtract", 5: "fprem1", 6: "fdecstp",
      7: "fincstp"},
     {0: "fprem", 1: "fyl2xp1", 2: "fsqrt", 3: "fsincos", 4: "frndint", 5: "fscale", 6: "fsin",
      7: "fcos"}),
    ("fcmovb 0i", "fcmove 0i", "fcmovbe 0i", "fcmovu 0i", None, {1: "fucompp"}, None, None),
    ("fcmovnb 0i", "fcmovne 0i", "fcmovnbe 0i", "fcmovnu 0i",
     {0: "feni", 1: "fdisi", 2: "fnclex", 3: "fninit", 4: "fsetpm"}, "fucomi 0i", "fcomi 0i",
     None),
    ("fadd i0", "fmul i0", "fcom i", "fcomp i", "fsubr i0", "fsub i0", "fdivr i0", "fdiv i0"),
    ("ffree i", "fxch i", "fst i", "fstp i", "fucom i", "fucomp i", None, None),
    ("faddp i0", "fmulp i0", "fcomp i", {1: "fcompp"}, "fsubrp i0", "fsubp i0", "fdivrp i0",
     "fdivp i0"),
    ("ffreep i", "fxch i", "fstp i", "fstp i", {0: "fnstsw ax"}, "fucomip 0i", "fcomip 0i", None),
)
# The register forms in the D9 /3, DC /2 /3, DD /1, DE /2, DF /0-/3 slots are the undocumented
# aliases every 387-compatible FPU executes (FSTP1, FCOM2, FCOMP3, FXCH4, FCOMP5, FFREEP, FXCH7,
# FSTP8, FSTP9); DB E0/E1/E4 are the 8087/287 FENI/FDISI/FSETPM, no-ops since the 387.

BAD = "(bad)"


def format_bytes(raw, width: int | None = None) -> str:
    """Instruction bytes as ``f3 a4``; ``raw`` may be bytes or an Insn.  With ``width``, the text
    is padded (or cut with a trailing ``..``) to that many characters for aligned listings."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raw = raw.raw
    s = bytes(raw).hex(" ")
    if width is not None:
        if len(s) > width:
            s = s[:max(width - 2, 0)].rstrip() + ".."
        s = s.ljust(width)
    return s


def is_bad(ins) -> bool:
    """True when the bytes name no i686 instruction: they raise #UD whatever the CPU state.
    (A table entry that names an instruction but is decoded for length only, like RDPMC, is
    shown by name.)"""
    e = ins.entry
    if e is None or getattr(ins, "vex", False) or (e.ud and e.mnem == BAD):
        return True
    if ins.mod == 3 and not e.x87:
        for spec in e.ops:
            if spec in MEM_ONLY:
                return True
    if "Sw" in e.ops and ins.reg > 5:
        return True
    if ins.lock and not (e.lock and 0 <= ins.mod < 3):
        return True                               # LOCK where it is not allowed: #UD (386+)
    return False


def _reg(n: int, bits: int) -> str:
    return (R32 if bits == 32 else R16 if bits == 16 else R8)[n]


def _hex(v: int) -> str:
    return f"-{-v:#x}" if v < 0 else f"{v:#x}"


def _mem(ins, size: int, seg: int | None = None) -> str:
    """A ModR/M (or moffs) memory operand with a size keyword (size 0: none)."""
    parts = []
    if ins.adsize == 16:
        regs, dbits = R16, 16
    else:
        regs, dbits = R32, 32
    if ins.base >= 0:
        parts.append(regs[ins.base])
    if ins.index >= 0:
        idx = regs[ins.index]
        if ins.adsize == 32 and ins.scale:
            idx += f"*{1 << ins.scale}"
        parts.append(idx)
    disp = ins.disp & ((1 << dbits) - 1)
    if parts:
        if disp >> (dbits - 1):
            disp -= 1 << dbits
        s = "+".join(parts)
        if disp:
            s += _hex(disp) if disp < 0 else "+" + _hex(disp)
    else:
        s = _hex(disp)
    if seg is None:
        seg = ins.seg
    pre = (SEGS[seg] + ":") if seg >= 0 else ""
    kw = (SIZE_WORD[size] + " ptr ") if size else ""
    return f"{kw}{pre}[{s}]"


def _string_mem(ins, size: int, dest: bool) -> str:
    regs = R16 if ins.adsize == 16 else R32
    if dest:
        return f"{SIZE_WORD[size]} ptr es:[{regs[7]}]"
    pre = (SEGS[ins.seg] + ":") if ins.seg >= 0 else ""
    return f"{SIZE_WORD[size]} ptr {pre}[{regs[6]}]"


# Ew operands whose register form the SDM names by operand size (SLDT r32, STR r32, SMSW r32,
# LAR/LSL r32 r32, MOV Sreg r32): the instruction reads or writes only the low word.
_EW_REG_OSZ = frozenset(("SLDT", "STR", "SMSW", "LAR", "LSL", "MOV_TO_SEG"))

_FIXED = {"AL": "al", "CL": "cl", "DX": "dx", "1": "1",
          "ES": "es", "CS": "cs", "SS": "ss", "DS": "ds", "FS": "fs", "GS": "gs"}


def _operand(ins, spec: str) -> str:
    osz = ins.opsize
    if spec in _FIXED:
        return _FIXED[spec]
    c = spec[0]
    if c == "E":
        bits = {"b": 8, "w": 16, "d": 32}.get(spec[1], osz)
        if ins.mod == 3:
            if spec == "Ew" and ins.entry.name in _EW_REG_OSZ:
                bits = osz
            return _reg(ins.rm, bits)
        if ins.entry.name == "MOV_FROM_SEG":
            bits = 16                             # MOV r/m16, Sreg: memory is always a word
        return _mem(ins, bits)
    if c == "G":
        return _reg(ins.reg, {"b": 8, "w": 16, "d": 32}.get(spec[1], osz))
    if c == "Z":
        if spec == "Zd" and osz == 16:            # BSWAP r16 (undefined result; SDM names it so)
            return _reg(ins.opcode & 7, 16)
        return _reg(ins.opcode & 7, {"b": 8, "d": 32}.get(spec[1], osz))
    if spec == "eAX":
        return "eax" if osz == 32 else "ax"
    if spec == "Sw":
        return SEGS[ins.reg]
    if spec == "Cd":
        return f"cr{ins.reg}"
    if spec == "Dd":
        return f"dr{ins.reg}"
    if spec == "Rd":
        return R32[ins.rm]
    if c == "M":
        size = {"M": 0, "Mp": osz + 16, "Ma": osz * 2, "Mq": 64, "Ms": 0, "Mw": 16}[spec]
        return _mem(ins, size)
    if spec in ("Ob", "Ov"):
        return _mem(ins, 8 if spec == "Ob" else osz)
    if spec in ("Xb", "Xv", "Yb", "Yv"):
        return _string_mem(ins, 8 if spec[1] == "b" else osz, spec[0] == "Y")
    if spec == "Ib":
        return _hex(ins.imm & 0xFF)
    if spec == "sIb":
        v = ins.imm
        return _hex(v)
    if spec == "Iw":
        return _hex(ins.imm & 0xFFFF)
    if spec in ("Iz", "Iv"):
        return _hex(ins.imm & ((1 << osz) - 1))
    if spec in ("Jb", "Jz"):
        return _hex((ins.eip + ins.length + ins.imm) & ((1 << osz) - 1))
    if spec == "Ap":
        return f"{ins.imm2:#x}:{ins.imm:#x}"
    return spec.lower()


def _x87(ins) -> str:
    row = ins.opcode - 0xD8
    if ins.mod != 3:
        form = _X87_MEM[row][ins.reg]
        if form is None:
            return BAD
        return f"{form[0]} {_mem(ins, form[1])}"
    form = _X87_REG[row][ins.reg]
    if isinstance(form, dict):
        form = form.get(ins.rm)
    if form is None:
        return BAD
    name, _, pattern = form.partition(" ")
    if pattern == "ax":
        return form
    st = f"st({ins.rm})"
    if pattern == "0i":
        return f"{name} st(0), {st}"
    if pattern == "i0":
        return f"{name} {st}, st(0)"
    if pattern == "i":
        return f"{name} {st}"
    return name


def mnemonic(ins) -> str:
    """The mnemonic users see, without prefixes (``jmp far``, ``jecxz``, ``xlatb``...)."""
    e = ins.entry
    m = e.mnemonic(ins.opsize).lower()
    if m == "jmpf":
        return "jmp far"
    if m == "callf":
        return "call far"
    if m == "jcxz":
        return "jecxz" if ins.adsize == 32 else "jcxz"
    if m == "xlat":
        return "xlatb"
    return m


def prefix_words(ins) -> str:
    """``lock``/``rep``/``repe``/``repne`` as shown before the mnemonic (with a trailing space)."""
    out = ""
    if ins.lock:
        out = "lock "
    if ins.rep and ins.entry.rep:
        if ins.entry.name in ("CMPS", "SCAS"):
            out += "repe " if ins.rep == 0xF3 else "repne "
        else:
            out += "rep " if ins.rep == 0xF3 else "repne "
    return out


def disasm(ins) -> str:
    """Intel-syntax text of a decoded instruction, e.g. ``rep movsd dword ptr es:[edi], ...``."""
    if is_bad(ins):
        return BAD
    e = ins.entry
    if e.x87:
        text = _x87(ins)
        return text if text == BAD else prefix_words(ins) + text
    ops = []
    for spec in e.ops:
        if spec == "Ib" and e.mnem == "ENTER":   # ENTER Iw, Ib: the level is imm2
            ops.append(_hex(ins.imm2 & 0xFF))
            continue
        ops.append(_operand(ins, spec))
    text = prefix_words(ins) + mnemonic(ins)
    if ops:
        text += " " + ", ".join(ops)
    return text


def disasm_bytes(code: bytes, eip: int = 0, code32: bool = True) -> tuple[int, str]:
    """Decode and disassemble the first instruction of ``code``: (length, text).  Bytes that do
    not form an instruction (too long, or cut short) read ``(bad)`` with length 0."""

    def fetch(i):
        return code[i]

    try:
        ins = decode(fetch, eip, code32)
    except (CPUFault, IndexError):
        return 0, BAD
    return ins.length, disasm(ins)
