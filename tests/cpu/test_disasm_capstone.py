"""The decoder and the disassembly against capstone (a decoder we did not write).

* a fixed-seed run of `aero conformance capstone` over 200,000 random byte strings (the count the
  issue asks for; it takes a few seconds): zero unexplained length/mnemonic disagreements, and the
  operand text of every agreeing instruction matches capstone's after the documented
  normalisation;
* the allowlist explains only what it says: a length or mnemonic disagreement on an ordinary
  i686 instruction is never allowlisted;
* known instructions: disassembly text compared with capstone's, and the exact Intel-syntax
  conventions users see (sizes, segments, SIB, far pointers, branch targets, prefixes, (bad)).
"""

from __future__ import annotations

import dataclasses
import io
import random

import pytest

capstone = pytest.importorskip("capstone")

from aero.conformance import capstone_cmp as C  # noqa: E402
from aero.cpu import table as T  # noqa: E402
from aero.cpu.decoder import decode  # noqa: E402
from aero.cpu.disasm import disasm, disasm_bytes, format_bytes  # noqa: E402

MDS = {16: C._make_cs(16), 32: C._make_cs(32)}


def _case(hexbytes: str, mode: int, eip: int = 0x1000) -> C.Case:
    raw = bytes.fromhex(hexbytes.replace(" ", ""))
    raw = raw + bytes(C.STRING_LEN - len(raw))      # pad like the generator does
    return C.compare(raw, mode, MDS[mode], eip)


# ------------------------------------------------------------------------------------------------
# The fixed-seed conformance run
# ------------------------------------------------------------------------------------------------

def test_capstone_conformance_fixed_seed():
    out = io.StringIO()
    ok = C.run(200000, seed=1, out=out)
    text = out.getvalue()
    assert ok, text
    assert "passed 200000 of 200000" in text
    assert "unexplained disagreements: 0" in text


def test_operand_text_agrees_on_random_sample():
    """Every decoding on which Aero and capstone agree also has the same operand text."""
    rng = random.Random(20261126)
    compared = 0
    bad = []
    for i in range(60000):
        mode = 32 if i & 1 else 16
        c = C.compare(C._gen(rng, mode), mode, MDS[mode], eip=rng.choice((0, 0x1000, 0xFFF0)))
        if not C.agrees(c) or c.bad:
            continue
        compared += 1
        why = C.operand_mismatch(c)
        if why is not None and len(bad) < 10:
            bad.append(f"{C.describe(c)}: {why}")
    assert compared > 30000
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------------
# The allowlist is specific
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hexbytes,mode", [
    ("8b 44 b3 10", 32), ("66 b8 34 12", 32), ("0f 20 c0", 32), ("f3 a5", 16), ("c8 10 00 01", 16),
    ("0f b7 c0", 32), ("f0 0f c1 08", 32), ("9a 78 56 34 12", 16), ("0f 84 00 10", 16),
    ("d9 00", 32), ("62 00", 16), ("c4 00", 16), ("0f 1f 00", 32), ("f3 0f bc c0", 32),
])
def test_allowlist_never_explains_a_length_bug(hexbytes, mode):
    c = _case(hexbytes, mode)
    assert C.agrees(c) or C.classify(c), C.describe(c)   # (F3 0F BC is allowlisted: TZCNT)
    if c.cs is not None:
        for delta in (-1, 1):
            fake = dataclasses.replace(c, cs=(c.cs[0] + delta, c.cs[1], c.cs[2]))
            assert not C.agrees(fake)
            assert C.classify(fake) is None, (C.describe(fake), C.classify(fake))


@pytest.mark.parametrize("hexbytes,mode,wrong", [
    ("01 c0", 32, "sub"), ("0f af c0", 16, "mul"), ("a5", 32, "movsw"), ("0f 94 c0", 32, "setne"),
    ("d1 e0", 16, "sal"), ("0f b6 c0", 32, "movsx"),
])
def test_allowlist_never_explains_a_wrong_mnemonic(hexbytes, mode, wrong):
    c = _case(hexbytes, mode)
    assert C.agrees(c)
    fake = dataclasses.replace(c, cs=(c.cs[0], wrong, c.cs[2]), theirs=wrong)
    assert not C.agrees(fake)
    assert C.classify(fake) is None


@pytest.mark.parametrize("hexbytes,mode", [
    ("0f a3 c0", 32), ("0f c8", 32), ("0f a2", 16), ("0f 00 d8", 32), ("0f c7 08", 32), ("d6", 16),
])
def test_an_i686_instruction_wrongly_marked_undefined_is_unexplained(hexbytes, mode):
    """If the table lost an i686 instruction (an entry turned into (bad)), the comparison fails."""
    c = _case(hexbytes, mode)
    assert C.agrees(c)
    ins = c.ins
    ins.entry = T.UD_MODRM if T.needs_modrm(ins.entry.ops) else T.UD
    fake = dataclasses.replace(c, ins=ins, bad=True, ours="(bad)")
    assert not C.agrees(fake)
    assert C.classify(fake) is None, C.classify(fake)


@pytest.mark.parametrize("hexbytes,mode", [
    ("f0 01 08", 32), ("f0 0f ab 08", 16), ("f0 0f c7 08", 32), ("f0 86 00", 16), ("f0 f6 18", 32),
])
def test_a_lockable_instruction_wrongly_marked_unlockable_is_unexplained(hexbytes, mode):
    c = _case(hexbytes, mode)
    assert C.agrees(c) and not c.bad
    ins = c.ins
    ins.entry = dataclasses.replace(ins.entry, lock=False)
    fake = dataclasses.replace(c, ins=ins, bad=True, ours="(bad)")
    assert C.classify(fake) is None, C.classify(fake)


CATEGORY_EXAMPLES = [
    ("0f 10 00", 32, "later-isa-ud"),                # MOVUPS
    ("c5 fc 58 c0", 32, "later-isa-ud"),             # VADDPS (VEX)
    ("0f 01 d0", 16, "later-isa-ud"),                # XGETBV
    ("f0 02 00", 32, "lock-ud"),                     # LOCK ADD reg, mem
    ("f0 f2 01 08", 32, "capstone-drops-lock"),
    ("f3 67 0f 23 c0", 32, "capstone-mandatory-rep"),  # MOV DR0, EAX
    ("0f 18 00", 32, "hint-nop"),                    # PREFETCHNTA
    ("0f 1a c0", 16, "hint-nop"),
    ("f3 0f bc c0", 32, "rep-repurposed"),           # TZCNT
    ("98", 16, "capstone-cbw-16"),
    ("0f b9 c0", 32, "capstone-ud0-ud1-length"),
    ("c5 f8 77", 16, "vex-in-16-bit"),
    ("d9 d9", 32, "x87-alias"),                      # FSTP1
    ("62 f1 7c 48 58 c0", 32, "evex"),               # VADDPS zmm
    ("f3 66 90", 32, "capstone-pause-prefix"),
    ("f2 a5", 32, "capstone-movsd-repne"),
    ("c7 f8 00 00 00 00", 32, "tsx"),                # XBEGIN
    ("66 0f 78 c0 01 02", 32, "amd-sse4a"),          # EXTRQ
    ("0f a7 c0", 32, "via-padlock"),                 # XSTORE
]


def test_every_category_is_exercised():
    assert {name for _, _, name in CATEGORY_EXAMPLES} == {cat.name for cat in C.ALLOWLIST}


@pytest.mark.parametrize("hexbytes,mode,name", CATEGORY_EXAMPLES)
def test_category_examples(hexbytes, mode, name):
    c = _case(hexbytes, mode)
    assert not C.agrees(c), C.describe(c)
    assert C.classify(c) == name, C.describe(c)


def test_capstone_rejecting_an_ordinary_instruction_is_unexplained():
    c = _case("8b 44 b3 10", 32)
    fake = dataclasses.replace(c, cs=None, theirs="(bad)")
    assert C.classify(fake) is None


# ------------------------------------------------------------------------------------------------
# Decoder regressions found by the comparison (lengths checked against capstone)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hexbytes,mode,length", [
    ("66 66 b8 34 12", 32, 5),           # repeated 66 still means 16-bit operands
    ("67 67 a1 34 12", 32, 5),           # repeated 67 still means 16-bit addresses
    ("66 66 68 34 12 00 00", 16, 7),
    ("0f 20 05", 32, 3),                 # MOV from CR: mod bits ignored, no displacement
    ("0f 23 84", 16, 3),
    ("0f 21 45", 32, 3),
    ("c5 f8 77", 32, 3),                 # VZEROUPPER has no ModR/M
    ("c5 fc 77", 32, 3),
])
def test_decoder_length_regressions(hexbytes, mode, length):
    c = _case(hexbytes, mode)
    assert c.ins.length == length
    assert c.cs is not None and c.cs[0] == length


def test_longer_than_15_bytes_is_rejected_by_both():
    c = C.compare(bytes([0x66] * 15) + b"\x90", 32, MDS[32])
    assert c.ins is None and c.cs is None and C.agrees(c)


# ------------------------------------------------------------------------------------------------
# Known instructions: text against capstone's op_str, and the exact conventions
# ------------------------------------------------------------------------------------------------

KNOWN = [
    ("26 89 44 b3 10", 32), ("8b 84 8e 10 00 00 00", 32), ("8b 04 24", 32), ("8b 45 f0", 32),
    ("8b 46 f0", 16), ("8b 00", 16), ("8b 06 34 12", 16), ("a1 78 56 34 12", 32),
    ("64 a0 34 12", 16), ("66 b8 34 12", 32), ("b8 78 56 34 12", 32), ("6a 80", 32),
    ("83 c0 ff", 32), ("81 c0 f0 ff ff ff", 32), ("c8 10 00 01", 32), ("c2 08 00", 16),
    ("ca 04 00", 32), ("cd 21", 16), ("e4 60", 16), ("ef", 32), ("e9 00 00 00 00", 32),
    ("eb fe", 16), ("74 10", 32), ("0f 84 00 01 00 00", 32), ("e2 fe", 16), ("e3 fe", 32),
    ("67 e3 fe", 32), ("e8 fd ff", 16), ("ea 78 56 34 12", 16), ("ea 78 56 34 12 22 11", 32),
    ("ff 28", 16), ("ff 18", 16), ("ff 10", 32), ("ff e0", 32), ("c4 06 00 10", 16),
    ("0f b2 00", 32), ("f3 a4", 16), ("f3 a5", 32), ("f2 ae", 32), ("f3 a6", 16), ("2e ac", 32),
    ("66 ab", 32), ("6c", 16), ("6f", 32), ("d7", 32), ("f0 01 0b", 32), ("f0 0f c7 08", 32),
    ("f0 0f b1 0a", 16), ("86 c4", 16), ("8c d8", 32), ("8e d0", 16), ("8c 00", 32),
    ("0f 20 c0", 32), ("0f 22 d8", 32), ("0f 21 f8", 32), ("0f 00 c3", 32), ("0f 01 10", 32),
    ("0f 01 38", 32), ("0f 02 c1", 32), ("0f a4 c1 04", 32), ("0f ad d0", 16), ("0f ba e0 05", 32),
    ("0f a3 c8", 16), ("0f b6 c0", 32), ("0f bf 06 00 10", 32), ("0f 94 c0", 32), ("0f 4c c1", 16),
    ("0f c8", 32), ("0f c1 08", 32), ("d0 e0", 16), ("d3 f8", 32), ("c1 e8 04", 32),
    ("f6 c4 01", 16), ("f7 d8", 32), ("69 c0 00 01 00 00", 32), ("6b c0 fe", 16), ("62 00", 32),
    ("63 c8", 16), ("8d 44 24 04", 32), ("0f a0", 32), ("17", 16), ("60", 32), ("61", 16),
    ("9c", 32), ("cf", 16), ("d9 00", 32), ("dd 45 08", 32), ("de c1", 32), ("d9 e8", 16),
    ("df e0", 16), ("db 28", 32), ("0f 31", 32), ("0f a2", 16), ("90", 32), ("0f 1f 44 00 00", 32),
    ("ea 02 00 e3 26", 16),
]


@pytest.mark.parametrize("hexbytes,mode", KNOWN)
def test_known_instruction_text_matches_capstone(hexbytes, mode):
    c = _case(hexbytes, mode)
    assert not c.bad and c.cs is not None, C.describe(c)
    assert c.ins.length == c.cs[0], C.describe(c)
    assert c.ours == c.theirs, C.describe(c)
    why = C.operand_mismatch(c)
    assert why is None, f"{C.describe(c)}: {why}"


EXACT = [
    ("26 89 44 b3 10", 32, 0, "mov dword ptr es:[ebx+esi*4+0x10], eax"),
    ("8b 46 f0", 16, 0, "mov ax, word ptr [bp-0x10]"),
    ("8b 85 10 ff ff ff", 32, 0, "mov eax, dword ptr [ebp-0xf0]"),
    ("a1 78 56 34 12", 32, 0, "mov eax, dword ptr [0x12345678]"),
    ("2e a0 34 12", 16, 0, "mov al, byte ptr cs:[0x1234]"),
    ("66 b8 34 12", 32, 0, "mov ax, 0x1234"),
    ("81 c0 f0 ff ff ff", 32, 0, "add eax, 0xfffffff0"),
    ("6a 80", 32, 0, "push -0x80"),
    ("ea 78 56 34 12", 16, 0, "jmp far 0x1234:0x5678"),
    ("9a 78 56 34 12 22 11", 32, 0, "call far 0x1122:0x12345678"),
    ("ff 2f", 32, 0, "jmp far fword ptr [edi]"),
    ("66 ff 1f", 32, 0, "call far dword ptr [edi]"),
    ("e9 fd ef", 16, 0x1000, "jmp 0x0"),                # 0x1003 - 0x1003
    ("eb 20", 16, 0xFFF0, "jmp 0x12"),                  # IP wraps at 64 KiB
    ("66 eb 20", 16, 0xFFF0, "jmp 0x10013"),            # 32-bit operand size: no wrap
    ("e8 fb ff ff ff", 32, 0x400000, "call 0x400000"),
    ("67 e3 fe", 32, 0x1000, "jcxz 0x1001"),
    ("f3 a4", 16, 0, "rep movsb byte ptr es:[di], byte ptr [si]"),
    ("f3 a6", 32, 0, "repe cmpsb byte ptr [esi], byte ptr es:[edi]"),
    ("f2 ae", 32, 0, "repne scasb al, byte ptr es:[edi]"),
    ("26 ad", 32, 0, "lodsd eax, dword ptr es:[esi]"),
    ("f0 01 0b", 32, 0, "lock add dword ptr [ebx], ecx"),
    ("0f 22 d8", 32, 0, "mov cr3, eax"),
    ("8c 00", 32, 0, "mov word ptr [eax], es"),
    ("8d 04 24", 32, 0, "lea eax, [esp]"),
    ("c8 10 00 01", 32, 0, "enter 0x10, 0x1"),
    ("d9 00", 32, 0, "fld dword ptr [eax]"),
    ("de f9", 32, 0, "fdivp st(1), st(0)"),
    ("f0 90", 32, 0, "(bad)"),                          # LOCK NOP: #UD
    ("8d c0", 32, 0, "(bad)"),                          # LEA with a register operand
    ("0f 04", 32, 0, "(bad)"),                          # undefined two-byte opcode
    ("8e f8", 16, 0, "(bad)"),                          # segment register 7
    ("0f 10 00", 32, 0, "(bad)"),                       # SSE: not an i686 instruction
]


@pytest.mark.parametrize("hexbytes,mode,eip,text", EXACT)
def test_exact_text(hexbytes, mode, eip, text):
    raw = bytes.fromhex(hexbytes.replace(" ", "")) + bytes(8)
    n, got = disasm_bytes(raw, eip, mode == 32)
    assert got == text


def test_disasm_is_independent_of_cpu_state_and_format_bytes():
    raw = bytes.fromhex("f3a5") + bytes(14)
    ins = decode(raw.__getitem__, 0x7C00, False)
    assert disasm(ins) == disasm(ins) == "rep movsw word ptr es:[di], word ptr [si]"
    assert format_bytes(ins) == "f3 a5"
    assert format_bytes(b"\x0f\x20\xc0") == "0f 20 c0"
    assert format_bytes(b"\x90", width=6) == "90    "
    assert format_bytes(bytes(8), width=11) == "00 00 00.. "      # cut at a byte, padded
    assert disasm_bytes(bytes([0x66] * 16)) == (0, "(bad)")


def test_disasm_never_raises_on_random_bytes():
    """Whatever the bytes, the debugger gets text (never a Python exception)."""
    rng = random.Random(99)
    for i in range(20000):
        code32 = bool(i & 1)
        raw = rng.randbytes(16) if i % 3 == 0 else C._gen(rng, 32 if code32 else 16)
        eip = rng.randrange(1 << 32) if code32 else rng.randrange(1 << 16)
        n, text = disasm_bytes(raw, eip, code32)
        assert text and (n > 0 or text == "(bad)")
