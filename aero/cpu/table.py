"""The instruction table: one declarative definition of every opcode Aero decodes.

This table drives the decoder (which bytes follow an opcode), the disassembly text shown to users,
the flags an instruction reads and writes, whether it ends a basic block, and which semantic
template (``aero.cpu.sem``) the interpreter and the JIT compile for it.

Operand specifications follow the Intel SDM Vol. 2, Appendix A notation:

=========  ===============================================================================
E?         ModR/M r/m operand: Eb byte, Ew word, Ed dword, Ev word/dword by operand size;
           Ex: an x87 operand (register ST(i) or memory of the instruction's format)
G?         ModR/M reg field as a general register (Gb, Gw, Gd, Gv)
Sw         ModR/M reg field as a segment register
Cd, Dd     ModR/M reg field as a control / debug register
Rd         ModR/M r/m field as a 32-bit register whatever the mod bits say (MOV CRn/DRn)
M, Mp ...  memory-only r/m: M (address only), Mp (far pointer), Ma (BOUND pair), Mq (8 bytes),
           Ms (6-byte pseudo-descriptor), Mw (word)
Ib Iw Iz   immediates: byte, word, word/dword by operand size; sIb: byte sign-extended
Jb Jz      relative branch targets
Ap         direct far pointer (16:16 or 16:32)
Ob Ov      moffs: an address-size offset with no ModR/M
Zb Zv Zd   register from the low three opcode bits
AL CL DX   fixed registers; eAX is AX or EAX by operand size; 1 is the constant one
ES..GS     fixed segment registers
Xb Xv      DS:[e]SI (string source); Yb Yv: ES:[e]DI (string destination)
=========  ===============================================================================

Mnemonics written ``A|B`` pick A for 16-bit and B for 32-bit operand size (``CBW|CWDE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Block-ending kinds.  A block ends after any instruction whose ``ends`` is not None.
JUMP = "jump"        # unconditional transfer (JMP, CALL, RET, IRET, INT ...)
COND = "cond"        # conditional transfer (Jcc, LOOP, JCXZ)
SYNC = "sync"        # falls through but may change what the next instruction sees
                     # (mode, interrupt state, I/O side effects, HLT, REP strings)

ARITH = "OSZAPC"


@dataclass(frozen=True)
class Entry:
    """One opcode (or one /reg slot of a group opcode)."""

    mnem: str                       # "ADD", or "CBW|CWDE" by operand size
    ops: tuple = ()                 # operand specs, destination first
    sem: str = ""                   # semantic template name (default: the mnemonic)
    fr: str = ""                    # flags read
    fw: str = ""                    # flags written (defined or undefined)
    fu: str = ""                    # flags left undefined (subset of fw)
    ends: str | None = None         # block-ending kind
    lock: bool = False              # LOCK allowed (when the destination is memory)
    cc: int | None = None           # condition code for Jcc/SETcc/CMOVcc
    ud: bool = False                # decoded for length only: raises #UD
    x87: bool = False               # x87 escape (D8-DF): aero.fpu.insns by ModR/M
    rep: bool = False               # honours REP/REPE/REPNE
    arg: int | None = None          # a constant the template needs (e.g. segment number)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.sem or self.mnem.split("|")[0]

    def mnemonic(self, opsize: int) -> str:
        if "|" in self.mnem:
            a, b = self.mnem.split("|")
            return b if opsize == 32 else a
        return self.mnem


MODRM_SPECS = ("Eb", "Ew", "Ed", "Ev", "Ex", "Gb", "Gw", "Gd", "Gv", "Sw", "Cd", "Dd", "Rd",
               "M", "Mp", "Ma", "Mq", "Ms", "Mw")


def needs_modrm(ops) -> bool:
    return any(o in MODRM_SPECS for o in ops)


def E(mnem, ops="", **kw) -> Entry:
    return Entry(mnem, tuple(o for o in ops.split(",") if o), **kw)


UD = E("(bad)", ud=True)
UD_MODRM = E("(bad)", "M", ud=True)
UD_MODRM_IB = E("(bad)", "M,Ib", ud=True)

CC_NAMES = ("O", "NO", "B", "AE", "E", "NE", "BE", "A", "S", "NS", "P", "NP", "L", "GE", "LE", "G")
# The flags each condition code reads (SDM Vol. 1, Appendix B).
CC_FLAGS = ("O", "O", "C", "C", "Z", "Z", "CZ", "CZ", "S", "S", "P", "P", "SO", "SO", "ZSO", "ZSO")

# ---------------------------------------------------------------------------------------------
# The one-byte opcode map
# ---------------------------------------------------------------------------------------------
ONE: dict[int, Entry | list] = {}

_ALU = ("ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP")
for i, m in enumerate(_ALU):
    fr = "C" if m in ("ADC", "SBB") else ""
    fu = "A" if m in ("AND", "OR", "XOR") else ""
    lk = m != "CMP"
    base = i * 8
    ONE[base + 0] = E(m, "Eb,Gb", fr=fr, fw=ARITH, fu=fu, lock=lk)
    ONE[base + 1] = E(m, "Ev,Gv", fr=fr, fw=ARITH, fu=fu, lock=lk)
    ONE[base + 2] = E(m, "Gb,Eb", fr=fr, fw=ARITH, fu=fu)
    ONE[base + 3] = E(m, "Gv,Ev", fr=fr, fw=ARITH, fu=fu)
    ONE[base + 4] = E(m, "AL,Ib", fr=fr, fw=ARITH, fu=fu)
    ONE[base + 5] = E(m, "eAX,Iz", fr=fr, fw=ARITH, fu=fu)

for seg, (push, pop) in {0: (0x06, 0x07), 1: (0x0E, None), 2: (0x16, 0x17), 3: (0x1E, 0x1F)}.items():
    sname = ("ES", "CS", "SS", "DS")[seg]
    ONE[push] = E("PUSH", sname, sem="PUSH_SEG", arg=seg)
    if pop is not None:
        # POP SS inhibits interrupts for one instruction: end the block (SYNC).
        ONE[pop] = E("POP", sname, sem="POP_SEG", arg=seg, ends=SYNC)

ONE[0x27] = E("DAA", fr="AC", fw=ARITH, fu="O")
ONE[0x2F] = E("DAS", fr="AC", fw=ARITH, fu="O")
ONE[0x37] = E("AAA", fr="A", fw=ARITH, fu="OSZP")
ONE[0x3F] = E("AAS", fr="A", fw=ARITH, fu="OSZP")
for r in range(8):
    ONE[0x40 + r] = E("INC", "Zv", fw="OSZAP")
    ONE[0x48 + r] = E("DEC", "Zv", fw="OSZAP")
    ONE[0x50 + r] = E("PUSH", "Zv")
    ONE[0x58 + r] = E("POP", "Zv")
ONE[0x60] = E("PUSHA|PUSHAD")
ONE[0x61] = E("POPA|POPAD")
ONE[0x62] = E("BOUND", "Gv,Ma")
ONE[0x63] = E("ARPL", "Ew,Gw", fw="Z")
ONE[0x68] = E("PUSH", "Iz")
ONE[0x69] = E("IMUL", "Gv,Ev,Iz", sem="IMUL3", fw=ARITH, fu="SZAP")
ONE[0x6A] = E("PUSH", "sIb")
ONE[0x6B] = E("IMUL", "Gv,Ev,sIb", sem="IMUL3", fw=ARITH, fu="SZAP")
ONE[0x6C] = E("INSB", "Yb,DX", sem="INS", rep=True, fr="D", ends=SYNC)
ONE[0x6D] = E("INSW|INSD", "Yv,DX", sem="INS", rep=True, fr="D", ends=SYNC)
ONE[0x6E] = E("OUTSB", "DX,Xb", sem="OUTS", rep=True, fr="D", ends=SYNC)
ONE[0x6F] = E("OUTSW|OUTSD", "DX,Xv", sem="OUTS", rep=True, fr="D", ends=SYNC)
for cc in range(16):
    ONE[0x70 + cc] = E("J" + CC_NAMES[cc], "Jb", sem="JCC", cc=cc, fr=CC_FLAGS[cc], ends=COND)


def _grp1(ops):
    out = []
    for m in _ALU:
        out.append(E(m, ops, fr="C" if m in ("ADC", "SBB") else "", fw=ARITH,
                     fu="A" if m in ("AND", "OR", "XOR") else "", lock=m != "CMP"))
    return out


ONE[0x80] = _grp1("Eb,Ib")
ONE[0x81] = _grp1("Ev,Iz")
ONE[0x82] = _grp1("Eb,Ib")
ONE[0x83] = _grp1("Ev,sIb")
ONE[0x84] = E("TEST", "Eb,Gb", fw=ARITH, fu="A")
ONE[0x85] = E("TEST", "Ev,Gv", fw=ARITH, fu="A")
ONE[0x86] = E("XCHG", "Eb,Gb", lock=True)
ONE[0x87] = E("XCHG", "Ev,Gv", lock=True)
ONE[0x88] = E("MOV", "Eb,Gb")
ONE[0x89] = E("MOV", "Ev,Gv")
ONE[0x8A] = E("MOV", "Gb,Eb")
ONE[0x8B] = E("MOV", "Gv,Ev")
ONE[0x8C] = E("MOV", "Ev,Sw", sem="MOV_FROM_SEG")
# MOV SS inhibits interrupts for one instruction; loading CS is #UD (checked by the template).
ONE[0x8D] = E("LEA", "Gv,M")
ONE[0x8E] = E("MOV", "Sw,Ew", sem="MOV_TO_SEG", ends=SYNC)
ONE[0x8F] = [E("POP", "Ev", sem="POP_RM")] + [UD_MODRM] * 7
ONE[0x90] = E("NOP")
for r in range(1, 8):
    ONE[0x90 + r] = E("XCHG", "Zv,eAX")
ONE[0x98] = E("CBW|CWDE")
ONE[0x99] = E("CWD|CDQ")
ONE[0x9A] = E("CALLF", "Ap", ends=JUMP)
ONE[0x9B] = E("WAIT")
ONE[0x9C] = E("PUSHF|PUSHFD", fr=ARITH + "D")
ONE[0x9D] = E("POPF|POPFD", fw=ARITH + "D", ends=SYNC)
ONE[0x9E] = E("SAHF", fw="SZAPC")
ONE[0x9F] = E("LAHF", fr="SZAPC")
ONE[0xA0] = E("MOV", "AL,Ob")
ONE[0xA1] = E("MOV", "eAX,Ov")
ONE[0xA2] = E("MOV", "Ob,AL")
ONE[0xA3] = E("MOV", "Ov,eAX")
ONE[0xA4] = E("MOVSB", "Yb,Xb", sem="MOVS", rep=True, fr="D")
ONE[0xA5] = E("MOVSW|MOVSD", "Yv,Xv", sem="MOVS", rep=True, fr="D")
ONE[0xA6] = E("CMPSB", "Xb,Yb", sem="CMPS", rep=True, fr="D", fw=ARITH)
ONE[0xA7] = E("CMPSW|CMPSD", "Xv,Yv", sem="CMPS", rep=True, fr="D", fw=ARITH)
ONE[0xA8] = E("TEST", "AL,Ib", fw=ARITH, fu="A")
ONE[0xA9] = E("TEST", "eAX,Iz", fw=ARITH, fu="A")
ONE[0xAA] = E("STOSB", "Yb,AL", sem="STOS", rep=True, fr="D")
ONE[0xAB] = E("STOSW|STOSD", "Yv,eAX", sem="STOS", rep=True, fr="D")
ONE[0xAC] = E("LODSB", "AL,Xb", sem="LODS", rep=True, fr="D")
ONE[0xAD] = E("LODSW|LODSD", "eAX,Xv", sem="LODS", rep=True, fr="D")
ONE[0xAE] = E("SCASB", "AL,Yb", sem="SCAS", rep=True, fr="D", fw=ARITH)
ONE[0xAF] = E("SCASW|SCASD", "eAX,Yv", sem="SCAS", rep=True, fr="D", fw=ARITH)
for r in range(8):
    ONE[0xB0 + r] = E("MOV", "Zb,Ib")
    ONE[0xB8 + r] = E("MOV", "Zv,Iv")

_GRP2 = ("ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAL", "SAR")


def _grp2(ops):
    out = []
    for m in _GRP2:
        fr = "C" if m in ("RCL", "RCR") else ""
        fw = "OC" if m in ("ROL", "ROR", "RCL", "RCR") else ARITH
        fu = "" if fw == "OC" else "A"
        out.append(E(m, ops, sem="SHL" if m == "SAL" else m, fr=fr, fw=fw, fu=fu))
    return out


ONE[0xC0] = _grp2("Eb,Ib")
ONE[0xC1] = _grp2("Ev,Ib")
ONE[0xC2] = E("RET", "Iw", sem="RETN_IMM", ends=JUMP)
ONE[0xC3] = E("RET", sem="RETN", ends=JUMP)
ONE[0xC4] = E("LES", "Gv,Mp", sem="LFP", arg=0)
ONE[0xC5] = E("LDS", "Gv,Mp", sem="LFP", arg=3)
ONE[0xC6] = [E("MOV", "Eb,Ib")] + [UD_MODRM] * 7
ONE[0xC7] = [E("MOV", "Ev,Iz")] + [UD_MODRM] * 7
ONE[0xC8] = E("ENTER", "Iw,Ib")
ONE[0xC9] = E("LEAVE")
ONE[0xCA] = E("RETF", "Iw", ends=JUMP)
ONE[0xCB] = E("RETF", ends=JUMP)
ONE[0xCC] = E("INT3", ends=JUMP)
ONE[0xCD] = E("INT", "Ib", ends=JUMP)
ONE[0xCE] = E("INTO", fr="O", ends=JUMP)
ONE[0xCF] = E("IRET|IRETD", fw=ARITH + "D", ends=JUMP)
ONE[0xD0] = _grp2("Eb,1")
ONE[0xD1] = _grp2("Ev,1")
ONE[0xD2] = _grp2("Eb,CL")
ONE[0xD3] = _grp2("Ev,CL")
ONE[0xD4] = E("AAM", "Ib", fw=ARITH, fu="OAC")
ONE[0xD5] = E("AAD", "Ib", fw=ARITH, fu="OAC")
ONE[0xD6] = E("SALC", fr="C")
ONE[0xD7] = E("XLAT", sem="XLAT")
# x87 escapes: one entry per ModR/M.reg; arg = (opcode - D8h) * 8 + reg.  aero.fpu.insns
# defines every encoding (memory forms by reg, register forms by reg and rm); the mnemonics
# users see come from aero.cpu.disasm.
for i in range(8):
    ONE[0xD8 + i] = [E("ESC", "Ex", sem="X87", arg=i * 8 + r, x87=True) for r in range(8)]
ONE[0xE0] = E("LOOPNE", "Jb", sem="LOOP", cc=0, fr="Z", ends=COND)
ONE[0xE1] = E("LOOPE", "Jb", sem="LOOP", cc=1, fr="Z", ends=COND)
ONE[0xE2] = E("LOOP", "Jb", sem="LOOP", cc=2, ends=COND)
ONE[0xE3] = E("JCXZ", "Jb", sem="JCXZ", ends=COND)
ONE[0xE4] = E("IN", "AL,Ib", ends=SYNC)
ONE[0xE5] = E("IN", "eAX,Ib", ends=SYNC)
ONE[0xE6] = E("OUT", "Ib,AL", ends=SYNC)
ONE[0xE7] = E("OUT", "Ib,eAX", ends=SYNC)
ONE[0xE8] = E("CALL", "Jz", ends=JUMP)
ONE[0xE9] = E("JMP", "Jz", ends=JUMP)
ONE[0xEA] = E("JMPF", "Ap", ends=JUMP)
ONE[0xEB] = E("JMP", "Jb", ends=JUMP)
ONE[0xEC] = E("IN", "AL,DX", ends=SYNC)
ONE[0xED] = E("IN", "eAX,DX", ends=SYNC)
ONE[0xEE] = E("OUT", "DX,AL", ends=SYNC)
ONE[0xEF] = E("OUT", "DX,eAX", ends=SYNC)
ONE[0xF1] = E("INT1", ends=JUMP)
ONE[0xF4] = E("HLT", ends=SYNC)
ONE[0xF5] = E("CMC", fr="C", fw="C")
ONE[0xF6] = [E("TEST", "Eb,Ib", fw=ARITH, fu="A"), E("TEST", "Eb,Ib", fw=ARITH, fu="A"),
             E("NOT", "Eb", lock=True), E("NEG", "Eb", fw=ARITH, lock=True),
             E("MUL", "Eb", fw=ARITH, fu="SZAP"), E("IMUL", "Eb", fw=ARITH, fu="SZAP"),
             E("DIV", "Eb", fw=ARITH, fu=ARITH), E("IDIV", "Eb", fw=ARITH, fu=ARITH)]
ONE[0xF7] = [E("TEST", "Ev,Iz", fw=ARITH, fu="A"), E("TEST", "Ev,Iz", fw=ARITH, fu="A"),
             E("NOT", "Ev", lock=True), E("NEG", "Ev", fw=ARITH, lock=True),
             E("MUL", "Ev", fw=ARITH, fu="SZAP"), E("IMUL", "Ev", fw=ARITH, fu="SZAP"),
             E("DIV", "Ev", fw=ARITH, fu=ARITH), E("IDIV", "Ev", fw=ARITH, fu=ARITH)]
ONE[0xF8] = E("CLC", fw="C")
ONE[0xF9] = E("STC", fw="C")
ONE[0xFA] = E("CLI")
ONE[0xFB] = E("STI", ends=SYNC)
ONE[0xFC] = E("CLD", fw="D")
ONE[0xFD] = E("STD", fw="D")
ONE[0xFE] = [E("INC", "Eb", fw="OSZAP", lock=True), E("DEC", "Eb", fw="OSZAP", lock=True)] + [UD_MODRM] * 6
ONE[0xFF] = [E("INC", "Ev", fw="OSZAP", lock=True), E("DEC", "Ev", fw="OSZAP", lock=True),
             E("CALL", "Ev", sem="CALL_RM", ends=JUMP), E("CALLF", "Mp", sem="CALLF_M", ends=JUMP),
             E("JMP", "Ev", sem="JMP_RM", ends=JUMP), E("JMPF", "Mp", sem="JMPF_M", ends=JUMP),
             E("PUSH", "Ev", sem="PUSH"), UD_MODRM]

# Prefix bytes (not entries): segment overrides, operand/address size, LOCK, REPNE/REP.
SEG_PREFIX = {0x26: 0, 0x2E: 1, 0x36: 2, 0x3E: 3, 0x64: 4, 0x65: 5}
PREFIXES = frozenset((0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3))

# ---------------------------------------------------------------------------------------------
# The two-byte (0F) opcode map: the i686 integer and system instructions
# ---------------------------------------------------------------------------------------------
TWO: dict[int, Entry | list] = {}

TWO[0x00] = [E("SLDT", "Ew"), E("STR", "Ew"), E("LLDT", "Ew", ends=SYNC), E("LTR", "Ew", ends=SYNC),
             E("VERR", "Ew", fw="Z"), E("VERW", "Ew", fw="Z"), UD_MODRM, UD_MODRM]
TWO[0x01] = [E("SGDT", "Ms"), E("SIDT", "Ms"), E("LGDT", "Ms", ends=SYNC), E("LIDT", "Ms", ends=SYNC),
             E("SMSW", "Ew"), UD_MODRM, E("LMSW", "Ew", ends=SYNC), E("INVLPG", "M", ends=SYNC)]
TWO[0x02] = E("LAR", "Gv,Ew", fw="Z")
TWO[0x03] = E("LSL", "Gv,Ew", fw="Z")
TWO[0x06] = E("CLTS", ends=SYNC)
TWO[0x08] = E("INVD")
TWO[0x09] = E("WBINVD")
TWO[0x0B] = E("UD2", sem="UD2")
TWO[0x0D] = UD_MODRM                    # PREFETCH/PREFETCHW: 3DNow!/later parts, #UD on a P6
TWO[0x0F] = UD_MODRM_IB                 # 3DNow! (suffix byte)
for i in range(0x10, 0x18):
    TWO[i] = UD_MODRM                   # SSE moves
for i in range(0x18, 0x20):
    TWO[i] = E("NOP", "Ev", sem="NOP")  # hint NOPs (PREFETCHh, multi-byte NOP 0F 1F /0)
TWO[0x20] = E("MOV", "Rd,Cd", sem="MOV_FROM_CR")
TWO[0x21] = E("MOV", "Rd,Dd", sem="MOV_FROM_DR")
TWO[0x22] = E("MOV", "Cd,Rd", sem="MOV_TO_CR", ends=SYNC)
TWO[0x23] = E("MOV", "Dd,Rd", sem="MOV_TO_DR", ends=SYNC)
for i in range(0x28, 0x30):
    TWO[i] = UD_MODRM
TWO[0x30] = E("WRMSR", ends=SYNC)
# RDTSC/RDMSR end their block so that the time they read is exact (see CPU.tsc).
TWO[0x31] = E("RDTSC", ends=SYNC)
TWO[0x32] = E("RDMSR", ends=SYNC)
TWO[0x33] = E("RDPMC", sem="UD2", ud=True)
TWO[0x34] = E("SYSENTER", ends=JUMP)
TWO[0x35] = E("SYSEXIT", ends=JUMP)
TWO[0x38] = "0F38"                       # three-byte escapes: decoded for length, #UD
TWO[0x3A] = "0F3A"
for cc in range(16):
    TWO[0x40 + cc] = E("CMOV" + CC_NAMES[cc], "Gv,Ev", sem="CMOVCC", cc=cc, fr=CC_FLAGS[cc])
    TWO[0x80 + cc] = E("J" + CC_NAMES[cc], "Jz", sem="JCC", cc=cc, fr=CC_FLAGS[cc], ends=COND)
    TWO[0x90 + cc] = E("SET" + CC_NAMES[cc], "Eb", sem="SETCC", cc=cc, fr=CC_FLAGS[cc])
for i in range(0x50, 0x80):
    TWO[i] = UD_MODRM                   # MMX / SSE
for i in (0x70, 0x71, 0x72, 0x73):
    TWO[i] = UD_MODRM_IB
TWO[0x77] = UD                          # EMMS
TWO[0xA0] = E("PUSH", "FS", sem="PUSH_SEG", arg=4)
TWO[0xA1] = E("POP", "FS", sem="POP_SEG", arg=4)
TWO[0xA2] = E("CPUID")
TWO[0xA3] = E("BT", "Ev,Gv", fw="OSAPC", fu="OSAP")
TWO[0xA4] = E("SHLD", "Ev,Gv,Ib", fw=ARITH, fu="A")
TWO[0xA5] = E("SHLD", "Ev,Gv,CL", fw=ARITH, fu="A")
TWO[0xA8] = E("PUSH", "GS", sem="PUSH_SEG", arg=5)
TWO[0xA9] = E("POP", "GS", sem="POP_SEG", arg=5)
TWO[0xAB] = E("BTS", "Ev,Gv", fw="OSAPC", fu="OSAP", lock=True)
TWO[0xAC] = E("SHRD", "Ev,Gv,Ib", fw=ARITH, fu="A")
TWO[0xAD] = E("SHRD", "Ev,Gv,CL", fw=ARITH, fu="A")
TWO[0xAE] = UD_MODRM                    # FXSAVE/LDMXCSR/fences: not claimed by CPUID
TWO[0xAF] = E("IMUL", "Gv,Ev", sem="IMUL2", fw=ARITH, fu="SZAP")
TWO[0xB0] = E("CMPXCHG", "Eb,Gb", fw=ARITH, lock=True)
TWO[0xB1] = E("CMPXCHG", "Ev,Gv", fw=ARITH, lock=True)
TWO[0xB2] = E("LSS", "Gv,Mp", sem="LFP", arg=2, ends=SYNC)
TWO[0xB3] = E("BTR", "Ev,Gv", fw="OSAPC", fu="OSAP", lock=True)
TWO[0xB4] = E("LFS", "Gv,Mp", sem="LFP", arg=4)
TWO[0xB5] = E("LGS", "Gv,Mp", sem="LFP", arg=5)
TWO[0xB6] = E("MOVZX", "Gv,Eb")
TWO[0xB7] = E("MOVZX", "Gv,Ew")
TWO[0xB8] = UD_MODRM                    # POPCNT (F3) / JMPE
TWO[0xB9] = UD_MODRM                    # UD1
TWO[0xBA] = [UD_MODRM_IB] * 4 + [
    E("BT", "Ev,Ib", fw="OSAPC", fu="OSAP"), E("BTS", "Ev,Ib", fw="OSAPC", fu="OSAP", lock=True),
    E("BTR", "Ev,Ib", fw="OSAPC", fu="OSAP", lock=True), E("BTC", "Ev,Ib", fw="OSAPC", fu="OSAP", lock=True)]
TWO[0xBB] = E("BTC", "Ev,Gv", fw="OSAPC", fu="OSAP", lock=True)
TWO[0xBC] = E("BSF", "Gv,Ev", fw=ARITH, fu="OSAPC")
TWO[0xBD] = E("BSR", "Gv,Ev", fw=ARITH, fu="OSAPC")
TWO[0xBE] = E("MOVSX", "Gv,Eb")
TWO[0xBF] = E("MOVSX", "Gv,Ew")
TWO[0xC0] = E("XADD", "Eb,Gb", fw=ARITH, lock=True)
TWO[0xC1] = E("XADD", "Ev,Gv", fw=ARITH, lock=True)
for i in (0xC2, 0xC4, 0xC5, 0xC6):
    TWO[i] = UD_MODRM_IB                # SSE with imm8
TWO[0xC3] = UD_MODRM                    # MOVNTI
TWO[0xC7] = [UD_MODRM, E("CMPXCHG8B", "Mq", fw="Z", lock=True)] + [UD_MODRM] * 6
for r in range(8):
    TWO[0xC8 + r] = E("BSWAP", "Zd")
for i in range(0xD0, 0x100):
    TWO[i] = UD_MODRM                   # MMX / SSE
TWO[0xFF] = UD_MODRM                    # UD0


def lookup(two: bool, opcode: int, reg: int | None):
    """The entry for an opcode; group opcodes need the ModR/M reg field."""
    e = (TWO if two else ONE).get(opcode)
    if isinstance(e, list):
        return e[reg] if reg is not None else e
    return e


def is_group(two: bool, opcode: int) -> bool:
    return isinstance((TWO if two else ONE).get(opcode), list)


def all_entries():
    """Every entry, for tools that walk the table (test generators, docs)."""
    for two, table in ((False, ONE), (True, TWO)):
        for opcode, e in sorted(table.items()):
            if isinstance(e, list):
                for reg, sub in enumerate(e):
                    yield two, opcode, reg, sub
            elif isinstance(e, Entry):
                yield two, opcode, None, e
