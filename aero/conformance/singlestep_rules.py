"""Divergence rules for the 80286 vectors: behaviour of the 286 that an i686 must not copy.

Each rule is a predicate over one test (its bytes, registers, RAM and recorded outcome), with the
reason it is 286-only.  Rules never name instruction forms or test hashes: they describe the
situation in which a 286 and an i686 differ.  `aero conformance singlestep` prints how many tests
each rule excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..cpu.decoder import decode
from ..faults import CPUFault


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str
    applies: Callable[[dict], bool]


def _decoded(test):
    b = bytes(test["bytes"])
    try:
        return decode(lambda i: b[i] if i < len(b) else 0x90, 0, False)
    except (CPUFault, IndexError):
        return None


def _prefixes(test):
    out = []
    for b in test["bytes"]:
        if b in (0x26, 0x2E, 0x36, 0x3E, 0xF0, 0xF2, 0xF3, 0x64, 0x65, 0x66, 0x67):
            out.append(b)
        else:
            break
    return out


def _lock_invalid_on_386(test) -> bool:
    """LOCK on an instruction that cannot be locked: a 386+ raises #UD (SDM Vol. 2, LOCK)."""
    if 0xF0 not in _prefixes(test):
        return False
    ins = _decoded(test)
    return ins is not None and not (ins.entry.lock and 0 <= ins.mod < 3)


def _popped_iopl_nt(test) -> bool:
    """POPF/IRET popping IOPL or NT bits in real mode: a 286 keeps them clear, a 386+ loads
    them (the classic 286-vs-386 detection)."""
    ins = _decoded(test)
    if ins is None or ins.two or ins.opcode not in (0x9D, 0xCF):
        return False
    regs = test["initial"]["regs"]
    ram = dict(test["initial"]["ram"])
    ss, sp = regs["ss"] << 4, regs["sp"]
    off = 4 if ins.opcode == 0xCF else 0
    lo = ram.get(ss + ((sp + off) & 0xFFFF), 0)
    hi = ram.get(ss + ((sp + off + 1) & 0xFFFF), 0)
    return bool(((hi << 8) | lo) & 0x7000)


def _longer_than_10(test) -> bool:
    """Instructions over 10 bytes: a 286 raises #GP, a 386+ allows up to 15."""
    return len(test["bytes"]) - 1 > 10


def _seg_reg_fs_gs(test) -> bool:
    """8C/8E with ModR/M reg 4-7: FS/GS on a 386+ (4, 5), #UD for 6, 7; a 286 aliases them."""
    ins = _decoded(test)
    return ins is not None and not ins.two and ins.opcode in (0x8C, 0x8E) and ins.reg >= 4


def _stack_overrun(test) -> bool:
    """A stack or SS-relative access that runs past offset FFFFh: the 286 recorded #GP (13);
    a 386+ raises #SS (12) for SS accesses (SDM Vol. 3, 20.1.? real-mode exceptions)."""
    exc = test.get("exception")
    if not exc or exc["number"] != 13:
        return False
    sp = test["initial"]["regs"]["sp"]
    ins = _decoded(test)
    if ins is None:
        return False
    if sp in (0xFFFF, 0xFFFE, 0xFFFD, 0, 1, 2, 3) or sp >= 0xFFF0 or sp < 0x10:
        return True
    if not ins.two and ins.opcode == 0xC9:              # LEAVE reads the word at SS:BP
        return test["initial"]["regs"]["bp"] == 0xFFFF
    return 0 <= ins.mod < 3 and ins.mem_seg == 2


_STRING_REGS = {0xA5: ("si", "di"), 0xA7: ("si", "di"), 0xAB: ("di",), 0xAD: ("si",),
                0xAF: ("di",), 0x6D: ("di",), 0x6F: ("si",)}


def _word_string_overrun(test) -> bool:
    """A word string operation reaching offset FFFFh, where the 286 recorded #GP: the 286 has
    already advanced SI/DI (and CX under REP) when it faults; a 386+ faults with nothing changed
    (and raises #SS for an SS-overridden source).  The predicate walks the iterations, since
    SI or DI can reach FFFFh part-way through a REP."""
    exc = test.get("exception")
    if not exc or exc["number"] != 13:
        return False
    ins = _decoded(test)
    if ins is None or ins.two or ins.opcode not in _STRING_REGS:
        return False
    r = test["initial"]["regs"]
    n = r["cx"] if ins.rep else 1
    step = -2 if r["flags"] & 0x400 else 2
    for reg in _STRING_REGS[ins.opcode]:
        v = r[reg]
        for _ in range(min(n, 0x10000)):
            if v == 0xFFFF:
                return True
            v = (v + step) & 0xFFFF
    return False


def _esc_without_fpu(test) -> bool:
    """ESC (x87) opcodes: a 286 with no coprocessor treats them as no-ops; an i686 without an
    FPU (CR0.EM=1, CPUID.FPU=0) raises #NM."""
    ins = _decoded(test)
    return ins is not None and not ins.two and 0xD8 <= ins.opcode <= 0xDF


def _register_for_memory_operand(test) -> bool:
    """A memory-only operand (LEA, LES, LDS, BOUND, far CALL/JMP through memory) encoded with a
    register (mod = 11b): a 286 uses a leftover address; a 386+ raises #UD."""
    ins = _decoded(test)
    if ins is None or ins.mod != 3 or not any(s[0] == "M" for s in ins.entry.ops):
        return False
    exc = test.get("exception")
    return not (exc and exc["number"] == 6)


RULES = [
    Rule("memory-operand-as-register", "mod=11b on a memory-only operand is #UD on a 386+",
         _register_for_memory_operand),
    Rule("lock-not-lockable", "LOCK on a non-lockable instruction raises #UD on a 386+", _lock_invalid_on_386),
    Rule("popf-iret-iopl-nt", "a 386+ loads IOPL/NT from POPF/IRET in real mode", _popped_iopl_nt),
    Rule("longer-than-10-bytes", "the 286 limit is 10 bytes, a 386+ allows 15", _longer_than_10),
    Rule("mov-sreg-fs-gs", "8C/8E reg 4-7 are FS/GS or #UD on a 386+", _seg_reg_fs_gs),
    Rule("stack-overrun-gp", "a 386+ raises #SS, not #GP, for SS accesses past FFFFh", _stack_overrun),
    Rule("word-string-overrun", "a 386+ faults at offset FFFFh before updating SI/DI/CX",
         _word_string_overrun),
    Rule("esc-without-fpu", "ESC opcodes raise #NM on an i686 without FPU", _esc_without_fpu),
]


def excluded_by(test) -> str | None:
    for rule in RULES:
        if rule.applies(test):
            return rule.name
    return None
