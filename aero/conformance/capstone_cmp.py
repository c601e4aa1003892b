"""`aero conformance capstone`: Aero's decoder against capstone on random byte strings.

Random 16-byte strings, half decoded in 16-bit mode and half in 32-bit mode, go through Aero's
decoder (``aero.cpu.decoder.decode``, with the disassembly of ``aero.cpu.disasm``) and through
capstone (pinned in the test dependencies; CS_ARCH_X86, CS_MODE_16/CS_MODE_32, one instruction).
The generator draws most strings from the table's opcode space (one-byte opcodes, 0F xx, 0F 38 xx,
0F 3A xx, VEX) behind random legacy prefixes and follows them with random bytes, so ModR/M, SIB,
displacement and immediate forms are all covered; a tenth are wholly random.

Two decodings agree when both reject the bytes, or both accept them with the same length and the
same mnemonic after the spelling normalisation below.  Everything else is a disagreement, explained
only by a category of ``ALLOWLIST``: a predicate over (bytes, mode, Aero's insn, capstone's insn)
describing a situation (never a list of byte strings) and the reason the two may differ there.
For every instruction the i686 integer ISA defines, lengths must agree: the categories that
accept a length difference are confined to encodings the i686 does not define (they raise #UD
whatever their length) and to capstone's own length bugs.

Spelling normalisation (capstone -> Aero's spelling, see :func:`cs_mnemonic`):

* prefix words: ``repz``/``repnz`` are ``repe``/``repne``; ``rep``-family words count only on
  string instructions (capstone writes ``repz ret``, Aero shows no prefix there); ``bnd``,
  ``notrack``, ``xacquire``, ``xrelease`` are hints an i686 ignores and are dropped;
* far transfers: ``ljmp``/``lcall``, and capstone's 32-bit ``jmp ptr [m]``/``call ptr [m]``
  (FF /5, FF /3), are Aero's ``jmp far``/``call far``;
* ``pushal``/``popal``/``pushaw``/``popaw`` are ``pushad``/``popad``/``pusha``/``popa``;
* ``pause`` (F3 90) is ``nop``: the i686 ignores the F3 there;
* ``fcompi``/``fucompi`` (LLVM's spelling) are the SDM's ``fcomip``/``fucomip``.

The operand text of every agreeing instruction is also compared with capstone's op_str (see
:func:`operand_mismatch` for the normalisation); the command prints that count for information
and the tests require it to be complete.

Cost: about 25-50 microseconds of CPU per string (200,000 strings in roughly 6-10 s on one core),
so CI runs the full 200,000 with a fixed seed (tests/cpu/test_disasm_capstone.py).
"""

from __future__ import annotations

import random
import re
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..cpu import table as T
from ..cpu.decoder import decode
from ..cpu.disasm import MEM_ONLY, disasm, is_bad, mnemonic, prefix_words
from ..faults import CPUFault

STRING_LEN = 16
REP_CANON = {"repz": "repe", "repnz": "repne", "rep": "rep", "repe": "repe", "repne": "repne"}
STRING_OPS = ("movs", "cmps", "scas", "lods", "stos", "ins", "outs")
RENAME = {"ljmp": "jmp far", "lcall": "call far", "pushal": "pushad", "popal": "popad",
          "pushaw": "pusha", "popaw": "popa", "pause": "nop", "fcompi": "fcomip",
          "fucompi": "fucomip"}


def cs_mnemonic(mnem: str, op_str: str) -> str:
    """Capstone's mnemonic in Aero's spelling (prefix words included)."""
    words = mnem.split()
    base = words[-1]
    base = RENAME.get(base, base)
    if base in ("jmp", "call") and (op_str.startswith("ptr ") or op_str.startswith("fword ptr")):
        base += " far"
    is_string = base.startswith(STRING_OPS) and base not in ("insertps", "insertq")
    out = []
    for w in words[:-1]:
        if w == "lock":
            out.append("lock")
        elif w in REP_CANON and is_string:
            out.append(REP_CANON[w])
    out.append(base)
    return " ".join(out)


@dataclass
class Case:
    """One compared byte string."""
    raw: bytes
    mode: int                       # 16 or 32
    ins: object                     # Aero's Insn, or None when the decoder raised (too long)
    bad: bool                       # Aero: not an i686 instruction (or too long)
    ours: str                       # Aero's prefix words + mnemonic ("(bad)" when bad)
    cs: tuple | None                # capstone (size, mnemonic, op_str) or None when rejected
    theirs: str                     # capstone's mnemonic normalised ("(bad)" when rejected)

    @property
    def ours_len(self):
        return self.ins.length if self.ins is not None else None

    @property
    def cs_len(self):
        return self.cs[0] if self.cs else None

    @property
    def same_len(self):
        return self.ins is not None and self.cs is not None and self.ins.length == self.cs[0]

    def opcode_bytes(self):
        """(two, opcode, after) with prefixes skipped: after is the byte following the opcode."""
        i = 0
        while i < len(self.raw) and self.raw[i] in T.PREFIXES:
            i += 1
        b = self.raw[i:]
        if not b:                                   # nothing but prefixes
            return False, None, b""
        if b[:1] == b"\x0f":
            return True, b[1], b[2:]
        return False, b[0], b[1:]

    def prefixes(self):
        i = 0
        while i < len(self.raw) and self.raw[i] in T.PREFIXES:
            i += 1
        return self.raw[:i]


@dataclass(frozen=True)
class Category:
    name: str
    reason: str
    applies: Callable[[Case], bool]


# ------------------------------------------------------------------------------------------------
# Allowlist predicates
# ------------------------------------------------------------------------------------------------

def _bad_reason(c: Case) -> str | None:
    """Why Aero rejects the bytes: "long", "lock", "vex", "table", "memreg", "sreg" (or None)."""
    ins = c.ins
    if ins is None:
        return "long"
    if not c.bad:
        return None
    e = ins.entry
    if ins.vex:
        return "vex"
    if e.ud and e.mnem == "(bad)":
        return "table"
    if ins.mod == 3 and not e.x87 and any(s in MEM_ONLY for s in e.ops):
        return "memreg"
    if "Sw" in e.ops and ins.reg > 5:
        return "sreg"
    if ins.lock:
        return "lock"
    return "table"                                  # x87 encodings with no instruction


def _op(c: Case):
    """(two-byte map?, opcode) of Aero's decoding, or None."""
    return None if c.ins is None else (c.ins.two, c.ins.opcode)


def _cs_base(c: Case) -> str:
    return c.cs[1].split()[-1] if c.cs else ""


def _i686_names() -> frozenset:
    """Every mnemonic the i686 table defines, in Aero's spelling."""
    out = {"jmp far", "call far", "jecxz", "xlatb"}
    for _two, _op, _reg, e in T.all_entries():
        if e.mnem != "(bad)":
            out.update(m.lower() for m in e.mnem.split("|"))
    return frozenset(out)


I686_NAMES = _i686_names()
# SSE2 instructions that share a name with an i686 string instruction (which is one-byte).
SSE_HOMONYMS = frozenset(("movsd", "cmpsd"))


def _later_isa(c: Case) -> bool:
    if not (_bad_reason(c) in ("table", "vex", "memreg") and c.cs is not None and c.same_len):
        return False
    name = c.theirs.split()[-1]
    # never explain away an instruction of the i686's own integer ISA
    return name not in I686_NAMES or (c.ins.two and name in SSE_HOMONYMS)


# The instructions LOCK may prefix when their destination is memory (SDM Vol. 2, LOCK), written
# out here rather than taken from the table so that a table error cannot hide behind "lock-ud".
SDM_LOCKABLE = frozenset(("add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "cmpxchg8b", "dec",
                          "inc", "neg", "not", "or", "sbb", "sub", "xor", "xadd", "xchg"))


def _lock_ud(c: Case) -> bool:
    if not (_bad_reason(c) == "lock" and c.cs is not None and c.same_len):
        return False
    ins = c.ins
    mem_dest = bool(ins.entry.ops) and ins.entry.ops[0][0] in "EM" and 0 <= ins.mod < 3
    return not (mem_dest and _cs_base(c) in SDM_LOCKABLE)


def _cs_drops_lock(c: Case) -> bool:
    return (not c.bad and c.ins.lock and c.same_len and c.ours.replace("lock ", "", 1) == c.theirs
            and _agrees_without(c, {0xF2, 0xF3}))


_MDS: dict = {}


def _agrees_without(c: Case, drop: set) -> bool:
    """Capstone decodes the bytes again with the prefixes in ``drop`` taken out of the prefix
    run, and must then agree with Aero exactly: same mnemonic, length less the bytes taken out.
    This checks that a prefix is all the two disagree about."""
    pre = c.prefixes()
    kept = bytes(b for b in pre if b not in drop)
    removed = len(pre) - len(kept)
    if not removed or c.ins is None:
        return False
    md = _MDS.get(c.mode) or _MDS.setdefault(c.mode, _make_cs(c.mode))
    cs = next(iter(md.disasm_lite(kept + c.raw[len(pre):], 0x1000, 1)), None)
    if cs is None:
        return False
    return cs[1] == c.ins.length - removed and cs_mnemonic(cs[2], cs[3]) == c.ours


def _cs_mandatory_rep(c: Case) -> bool:
    return (not c.bad and c.cs is None and c.ins.two and not c.ins.entry.rep
            and _agrees_without(c, {0xF2, 0xF3}))


def _hint_nop(c: Case) -> bool:
    return (not c.bad and c.ins.two and c.ins.entry.name == "NOP"
            and (c.ins.opcode == 0x0D or 0x18 <= c.ins.opcode <= 0x1F)
            and (c.cs is None or c.same_len))


def _rep_repurposed(c: Case) -> bool:
    return (not c.bad and c.same_len and c.ins.two and not c.ins.entry.rep
            and _agrees_without(c, {0xF2, 0xF3}))


def _cs_cbw16(c: Case) -> bool:
    return (c.mode == 16 and _op(c) in ((False, 0x98), (False, 0x99)) and c.same_len
            and (c.ours, c.theirs) in (("cbw", "cwde"), ("cwd", "cdq")))


def _ud0_ud1(c: Case) -> bool:
    two, op, _ = c.opcode_bytes()
    return (_bad_reason(c) in ("table", "long") and two and op in (0xB9, 0xFF)
            and _cs_base(c) in ("ud0", "ud1") and (c.ins is None or c.cs[0] < c.ins.length))


def _vex_real(c: Case) -> bool:
    return (c.mode == 16 and _bad_reason(c) == "memreg" and _op(c) in ((False, 0xC4), (False, 0xC5))
            and c.cs is not None)


def _x87_alias(c: Case) -> bool:
    if c.bad or not c.ins.entry.x87 or c.ins.mod != 3:
        return False
    return c.cs is None or (c.same_len and c.ours in X87_ALIASES.get(_cs_base(c), ()))


# capstone's names for x87 alias register forms -> the names Aero shows
X87_ALIASES = {"fstpnce": ("fstp",), "fdisi8087_nop": ("fdisi",), "feni8087_nop": ("feni",),
               "fsetpm": ("fsetpm",)}


def _evex(c: Case) -> bool:
    return _bad_reason(c) == "memreg" and _op(c) == (False, 0x62) and c.cs is not None


def _cs_pause_prefix(c: Case) -> bool:
    return (not c.bad and _op(c) == (False, 0x90) and c.cs is None
            and bool({0x66, 0x67} & set(c.prefixes())) and _agrees_without(c, {0xF3}))


def _cs_movsd_f2(c: Case) -> bool:
    return (not c.bad and _op(c) == (False, 0xA5) and c.same_len and c.ins.rep == 0xF2
            and c.ours == "repne " + c.theirs)


def _tsx(c: Case) -> bool:
    return (_bad_reason(c) == "table" and _op(c) in ((False, 0xC6), (False, 0xC7))
            and c.ins.reg == 7 and _cs_base(c) in ("xabort", "xbegin"))


def _sse4a(c: Case) -> bool:
    return (_bad_reason(c) == "table" and _op(c) in ((True, 0x78), (True, 0x79))
            and _cs_base(c) in ("extrq", "insertq"))


def _padlock(c: Case) -> bool:
    return (_bad_reason(c) == "table" and _op(c) in ((True, 0xA6), (True, 0xA7))
            and _cs_base(c) in PADLOCK)


PADLOCK = {"montmul", "xsha1", "xsha256", "xstore", "xcryptecb", "xcryptcbc", "xcryptctr",
           "xcryptcfb", "xcryptofb", "xstorerng"}


ALLOWLIST: list[Category] = [
    Category(
        "later-isa-ud",
        "an instruction of a later ISA extension (MMX, SSE..SSE4, SSSE3, AVX/VEX, VMX/SMX, "
        "MONITOR/MWAIT, XSAVE, RDRAND/RDSEED, SYSCALL/SYSRET, fences...) that Aero's CPUID "
        "does not claim, or RSM (valid only in SMM, not modelled): the table decodes it for length "
        "and raises #UD; the lengths agree, and capstone's name is not an i686 mnemonic",
        _later_isa),
    Category(
        "lock-ud",
        "LOCK on an instruction or a register operand that does not accept it: #UD on the 386 "
        "and later (SDM Vol. 2, LOCK: only ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B DEC INC NEG "
        "NOT OR SBB SUB XOR XADD XCHG with a memory destination), so Aero shows (bad); capstone "
        "decodes some of these; the lengths agree",
        _lock_ud),
    Category(
        "capstone-drops-lock",
        "LOCK followed by F2/F3: capstone reads F2/F3 as XACQUIRE/XRELEASE and drops the LOCK "
        "word; same instruction and length (checked: without the F2/F3 capstone agrees)",
        _cs_drops_lock),
    Category(
        "capstone-mandatory-rep",
        "F2/F3 before a two-byte integer opcode with other prefixes between (e.g. F3 67 0F 23): "
        "capstone takes F2/F3 as a mandatory SSE prefix and rejects the bytes; the i686 ignores "
        "F2/F3 on non-string instructions (checked: without the F2/F3 bytes capstone agrees on "
        "mnemonic and length)",
        _cs_mandatory_rep),
    Category(
        "hint-nop",
        "0F 0D and 0F 18-0F 1F are the reserved-NOP/hint space (NOP Ev in Aero's table); capstone "
        "names later uses of it (PREFETCHh, PREFETCHW, MPX BND*, CET ENDBR/RDSSP, CLDEMOTE) or "
        "rejects register and reserved forms; the ModR/M length is the same",
        _hint_nop),
    Category(
        "rep-repurposed",
        "F2/F3 before an integer two-byte opcode: later CPUs define new instructions there "
        "(F3 0F BC/BD TZCNT/LZCNT, F3 0F 09 WBNOINVD); the i686 ignores the prefix; the lengths "
        "agree, and without the F2/F3 bytes capstone agrees on the mnemonic",
        _rep_repurposed),
    Category(
        "capstone-cbw-16",
        "capstone bug: in 16-bit mode it names 98/99 CWDE/CDQ (the 32-bit forms) without an "
        "operand-size prefix; the SDM names them CBW/CWD at 16-bit operand size",
        _cs_cbw16),
    Category(
        "capstone-ud0-ud1-length",
        "capstone decodes UD0 (0F FF) and UD1 (0F B9) without their ModR/M byte; the SDM defines "
        "0F FF /r and 0F B9 /r; both raise #UD whatever their length",
        _ud0_ud1),
    Category(
        "vex-in-16-bit",
        "capstone's 16-bit mode decodes C4/C5 as VEX (as in 16-bit protected mode); Aero's "
        "16-bit decoding is real mode, where C4/C5 are LES/LDS and a register operand is #UD",
        _vex_real),
    Category(
        "x87-alias",
        "x87 register forms with undocumented aliases (FSTP1 D9 D8+i, FCOM2, FCOMP3, FXCH4, "
        "FCOMP5, FXCH7, FSTP8, FSTP9) and the 8087/287 FENI/FDISI/FSETPM: capstone spells them "
        "differently (fstpnce, fdisi8087_nop) or rejects them; all are 2 bytes",
        _x87_alias),
    Category(
        "evex",
        "62 with a register ModR/M is BOUND with a register operand (#UD on the i686); later CPUs "
        "use it as the EVEX (AVX-512) prefix, which capstone decodes",
        _evex),
    Category(
        "capstone-pause-prefix",
        "capstone rejects F3 90 (PAUSE) with an operand- or address-size prefix; the i686 "
        "executes NOP (checked: without the F3 capstone agrees)",
        _cs_pause_prefix),
    Category(
        "capstone-movsd-repne",
        "capstone drops the F2 prefix word from MOVSW/MOVSD (A5), whose name it shares with the "
        "SSE2 MOVSD; Aero shows repne, which MOVS executes as a plain REP; same length",
        _cs_movsd_f2),
    Category(
        "tsx",
        "C6 F8 / C7 F8 are XABORT/XBEGIN (TSX, later ISA, with imm8/rel): undefined on the i686, "
        "which raises #UD; capstone includes the immediate in the length",
        _tsx),
    Category(
        "amd-sse4a",
        "66/F2 0F 78/79 are AMD SSE4a EXTRQ/INSERTQ (with two immediate bytes) on AMD only: #UD on "
        "the i686; capstone includes the immediates in the length",
        _sse4a),
    Category(
        "via-padlock",
        "0F A6/0F A7 are VIA PadLock instructions (a ModR/M-like third byte): #UD on the i686",
        _padlock),
]


# ------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------

_ONE_OPS = [b for b in range(256) if b not in T.PREFIXES and b != 0x0F]
_PREFIX_LIST = sorted(T.PREFIXES)


def _gen(rng: random.Random, mode: int) -> bytes:
    r = rng.random()
    tail = rng.randbytes(STRING_LEN)
    if r < 0.10:
        return tail
    head = bytearray()
    p = rng.random()
    if p < 0.02:
        n = rng.randint(4, 15)                       # long prefix runs: the 15-byte limit
    elif p < 0.45:
        n = rng.choice((1, 1, 1, 2, 2, 3))
    else:
        n = 0
    for _ in range(n):
        head.append(rng.choice(_PREFIX_LIST))
    if r < 0.48:
        head.append(rng.choice(_ONE_OPS))
    elif r < 0.88:
        head += bytes((0x0F, rng.randrange(256)))
    elif r < 0.94:
        head += bytes((0x0F, rng.choice((0x38, 0x3A)), rng.randrange(256)))
    else:
        # VEX: C4/C5 followed by a byte with mod == 11b (what makes it VEX outside real mode)
        head += bytes((rng.choice((0xC4, 0xC5)), 0xC0 | rng.randrange(64)))
    return bytes(head + tail)[:STRING_LEN]


# ------------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------------

def _make_cs(mode: int):
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86,
                     capstone.CS_MODE_32 if mode == 32 else capstone.CS_MODE_16)
    md.detail = False
    return md


def compare(raw: bytes, mode: int, md, eip: int = 0x1000) -> Case:
    try:
        ins = decode(raw.__getitem__, eip, mode == 32)
    except CPUFault:
        ins = None
    if ins is None:
        bad, ours = True, "(bad)"
    else:
        bad = is_bad(ins)
        if bad:
            ours = "(bad)"
        elif ins.entry.x87:                     # x87: the mnemonic the disassembly names
            ours = _x87_mnem(ins)
            bad = ours == "(bad)"
        else:
            ours = prefix_words(ins) + mnemonic(ins)
    cs = None
    for cs in md.disasm_lite(raw, eip, 1):
        break
    if cs is not None:
        cs = cs[1:]
        theirs = cs_mnemonic(cs[1], cs[2])
    else:
        theirs = "(bad)"
    return Case(raw, mode, ins, bad, ours, cs, theirs)


def _x87_mnem(ins) -> str:
    text = disasm(ins)
    if text == "(bad)":
        return text
    pw = prefix_words(ins)
    return pw + text[len(pw):].split(" ", 1)[0]


def agrees(c: Case) -> bool:
    if c.bad and c.cs is None:
        return True
    if c.bad or c.cs is None:
        return False
    return c.ins.length == c.cs[0] and c.ours == c.theirs


def classify(c: Case) -> str | None:
    """The allowlist category explaining a disagreement, or None."""
    for cat in ALLOWLIST:
        if cat.applies(c):
            return cat.name
    return None


def describe(c: Case) -> str:
    ours = "rejected (too long)" if c.ins is None else (
        f"len {c.ins.length} {c.ours!r}" + (f" [{disasm(c.ins)}]" if not c.bad else ""))
    theirs = "rejected" if c.cs is None else f"len {c.cs[0]} {c.cs[1]} {c.cs[2]}".rstrip()
    return f"{c.mode}-bit {c.raw.hex(' ')}: aero {ours} | capstone {theirs}"


# ------------------------------------------------------------------------------------------------
# Operand text (informational in the CLI; the tests require it to agree)
# ------------------------------------------------------------------------------------------------

_MEM_RE = re.compile(r"^(?:(\w+) )?(?:(ptr) )?(?:(\w\w):)?\[(.*)\]$")
_TERM_RE = re.compile(r"([+-]?)([^+-]+)")


def _num(t: str) -> int | None:
    try:
        return int(t, 0)
    except ValueError:
        return None


def _split_ops(text: str) -> list[str]:
    return [o.strip() for o in text.split(",")] if text.strip() else []


def _mem_parts(op: str, bits: int):
    """(size keyword or None, segment or None, registers, displacement mod 2**bits) or None."""
    m = _MEM_RE.match(op.replace(" + ", "+").replace(" - ", "-"))
    if m is None:
        return None
    size, ptr, seg, inner = m.groups()
    if size == "ptr":
        size = None
    regs, disp = [], 0
    for sign, term in _TERM_RE.findall(inner.replace(" ", "")):
        v = _num(term)
        if v is None:
            regs.append(term.replace("*1", "") if term.endswith("*1") else term)
        else:
            disp += -v if sign == "-" else v
    return size, seg, regs, disp & ((1 << bits) - 1)


def operand_mismatch(c: Case) -> str | None:
    """Compare Aero's operand text with capstone's op_str for an agreeing, valid decoding, after
    the normalisation of capstone's spelling and display quirks listed here; return a description
    of the first difference, or None.

    * spacing and number bases are ignored; numbers are compared modulo the width of the field
      (byte/word immediates, operand size for sign-extended immediates and branch targets,
      address size for displacements);
    * capstone prints no size keyword (``ptr [m]``) for far pointers and address-only operands,
      so a keyword is compared only when both sides print one;
    * capstone omits the implicit ``1`` of D0-D3 shifts, the ``st(0)`` of two-operand x87 register
      forms, and prints a second operand for the hint NOPs 0F 19-0F 1F (only the first is
      compared); direct far pointers of CALL are printed ``seg, off`` in 16-bit mode; 80-bit
      memory is ``xword`` where Aero says ``tbyte``;
    * capstone display bugs: with F2/F3 before a two-byte opcode, and for the hint NOPs, it sizes
      memory operands by the other operand size (keywords not compared there); with an
      address-size prefix it prints absolute addresses of the other width, and in 16-bit mode or
      with an address-size prefix it computes branch targets from a 16-bit displacement (both
      compared modulo 2**16); ENTER's and TEST Eb,Ib's immediates are printed sign-extended
      (compared by field width).
    """
    ins = c.ins
    text = disasm(ins)
    pw = prefix_words(ins)
    e = ins.entry
    if e.x87:
        name = text[len(pw):].split(" ", 1)[0]
    else:
        name = mnemonic(ins)
    ours = _split_ops(text[len(pw) + len(name):])
    theirs = _split_ops(c.cs[2])
    specs = list(e.ops)
    p = set(c.prefixes())
    has67 = 0x67 in p
    rep_quirk = ins.two and bool({0xF2, 0xF3} & p)
    if e.x87:
        if ins.mod == 3:
            ours = [o for o in ours if o != "st(0)"]
            theirs = [o for o in theirs if o != "st(0)"]
        specs = ["M"] * len(ours)
    if "Ap" in specs:
        theirs = [":".join(theirs)] if len(theirs) == 2 else theirs
    if specs and specs[-1] == "1" and len(ours) == len(theirs) + 1:
        ours, specs = ours[:-1], specs[:-1]
    if e.name == "NOP" and ins.two and len(theirs) == 2:
        theirs = theirs[:1]
    if len(ours) != len(theirs):
        return f"operand count: {ours} vs {theirs}"
    osz = ins.opsize
    for spec, a, b in zip(specs, ours, theirs):
        if a == b.replace(" ", ""):
            continue
        if spec == "Ap":
            pa, pb = a.split(":"), b.replace(" ", "").split(":")
            if len(pb) != 2 or [_num(x) for x in pa] != [_num(x) for x in pb]:
                return f"{a!r} vs {b!r}"
            continue
        ma = _mem_parts(a, ins.adsize)
        if ma is not None:
            absolute = not ma[2]
            bits = 16 if (absolute and has67) else ins.adsize
            ma = _mem_parts(a, bits)
            mb = _mem_parts(b, bits)
            if mb is None:
                return f"{a!r} vs {b!r}"
            sa, sb = ma[0], mb[0]
            sb = "tbyte" if sb == "xword" else sb
            if sa and sb and sa != sb and not rep_quirk and e.name != "NOP":
                return f"size {a!r} vs {b!r}"
            if ma[1:] != mb[1:]:
                return f"{a!r} vs {b!r}"
            continue
        va, vb = _num(a), _num(b.replace(" ", ""))
        if va is not None and vb is not None:
            if spec == "Ib":
                bits = 8
            elif spec == "Iw":
                bits = 16
            elif spec in ("Jb", "Jz"):
                bits = 16 if (has67 or c.mode == 16) else osz
            else:
                bits = osz
            if e.mnem == "ENTER":
                bits = 16 if spec == "Iw" else 8
            if (va - vb) % (1 << bits):
                return f"{a!r} vs {b!r}"
            continue
        return f"{a!r} vs {b!r}"
    return None


def run(count: int = 200000, seed: int = 1, verbose: bool = False, out=None,
        show: int = 20) -> bool:
    """Compare ``count`` random strings; print the summary; True when nothing is unexplained."""
    out = out or sys.stdout
    rng = random.Random(seed)
    mds = {16: _make_cs(16), 32: _make_cs(32)}
    cats = Counter()
    agree = 0
    unexplained = []
    n_unexplained = 0
    ops_compared = ops_differ = 0
    ops_examples = []
    covered = set()
    t0 = time.perf_counter()
    for i in range(count):
        mode = 32 if i & 1 else 16
        c = compare(_gen(rng, mode), mode, mds[mode])
        if agrees(c):
            agree += 1
            if not c.bad:
                grp = T.is_group(c.ins.two, c.ins.opcode)
                covered.add((c.ins.two, c.ins.opcode, c.ins.reg if grp else None))
                ops_compared += 1
                why = operand_mismatch(c)
                if why is not None:
                    ops_differ += 1
                    if len(ops_examples) < show:
                        ops_examples.append(f"{describe(c)}: {why}")
            continue
        name = classify(c)
        if name is not None:
            cats[name] += 1
            if verbose and cats[name] <= 3:
                print(f"  [{name}] {describe(c)}", file=out)
            continue
        n_unexplained += 1
        if len(unexplained) < show:
            unexplained.append(c)
    dt = time.perf_counter() - t0
    n_entries = len({(two, op, reg) for two, op, reg, e in T.all_entries() if not e.ud})
    print(f"capstone {_cs_version()}: {count} strings (seed {seed}, half 16-bit, half 32-bit) "
          f"in {dt:.1f} s", file=out)
    print(f"  agree: {agree} (covering {len(covered)} of {n_entries} defined table entries)",
          file=out)
    for cat in ALLOWLIST:
        print(f"  allowlisted {cat.name}: {cats[cat.name]}", file=out)
        for line in textwrap.wrap(cat.reason, 92):
            print(f"      {line}", file=out)
    print(f"  operand text (informational): {ops_compared - ops_differ} of {ops_compared} agree",
          file=out)
    if verbose:
        for line in ops_examples:
            print(f"    {line}", file=out)
    print(f"  unexplained disagreements: {n_unexplained}", file=out)
    for c in unexplained:
        print(f"    {describe(c)}", file=out)
    passed = count - n_unexplained
    print(f"passed {passed} of {count}", file=out)
    return n_unexplained == 0


def _cs_version() -> str:
    try:
        from importlib.metadata import version
        return version("capstone")
    except Exception:                              # not installed as a distribution
        import capstone
        return getattr(capstone, "__version__", "?")
