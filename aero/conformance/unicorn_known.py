"""Known deviations of unicorn 2.1.4 (QEMU TCG) from the i686 that Aero models.

`aero conformance unicorn` runs random instruction sequences in Aero and in unicorn and compares
the results.  When they differ and the manuals (Intel SDM; the hardware-recorded 80286 vectors in
shared/testdata/singlestep-80286 where they apply) say Aero is right, the difference is a unicorn
deviation.  Each rule here is a predicate over the situation (the instructions that ran, their
operands and the CPU state before each one, and what each side did), never a list of byte strings
or hashes, with the reason unicorn differs.  The runner prints how many sequences each rule
explained.

The ``Situation`` a rule sees (built by ``aero.conformance.unicorn_diff``):

* ``mode``: 16 (real mode) or 32 (flat protected mode)
* ``trace``: the instructions unicorn started, in order: ``Step`` objects with ``ins`` (an
  ``aero.cpu.decoder.Insn``), ``regs`` (the eight GPRs before it), ``ea`` (the linear address
  of its ModR/M memory operand, or None) and ``off`` (that operand's offset in its segment)
* ``at(eip)``: the first step at an address (where a side took its exception)
* ``aero`` / ``uni``: ``Outcome`` objects: ``vector`` (the exception taken or None), ``eip``,
  ``regs``, ``flags``
* ``diffs``: the names of what differed ("eax".., "eip", "eflags", "mem", "vector", "timeout")

``HAZARDS`` (at the end) are encodings unicorn cannot run at all; sequences holding one are not
run, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str
    applies: Callable[[object], bool]


def _last(sit):
    """The instruction Aero took its exception on (or the last one unicorn started)."""
    if sit.aero.vector is not None:
        return sit.at(sit.aero.eip)
    return sit.trace[-1] if sit.trace else None


def _mem_size(ins) -> int:
    ops = ins.entry.ops
    for spec in ops:
        if spec in ("Eb", "Gb", "Ob"):
            return 1
    if ins.entry.name in ("BOUND",):
        return 2 * (ins.opsize // 8)
    if ins.entry.name == "CMPXCHG8B":
        return 8
    return ins.opsize // 8


def _real_mode_limit(sit) -> bool:
    """Real mode: an access past the 64 KiB segment limit (a word or dword at offset 0FFFFh or
    above, or a 32-bit address-size offset above 0FFFFh) raises #GP(0) (#SS(0) for SS) on a 386
    and later (SDM Vol. 3, 20.1.1 "Address Translation in Real-Address Mode"; the 80286 vectors
    record the same #GP for words at offset 0FFFFh).  QEMU TCG never checks segment limits in
    real mode: it performs the access at base + offset."""
    if sit.mode != 16 or sit.aero.vector not in (12, 13) or sit.uni.vector in (12, 13):
        return False
    st = _last(sit)
    if st is None:
        return False
    ins = st.ins
    if st.off is not None:
        off = st.off
        if ins.entry.name in ("BT", "BTS", "BTR", "BTC") and ins.entry.ops[1] == "Gv":
            # a register bit offset reaches (offset SAR log2(size)) * size/8 bytes further
            bits = ins.opsize
            bo = st.regs[ins.reg] & ((1 << bits) - 1)
            if bo >> (bits - 1):
                bo -= 1 << bits
            off += (bo >> (5 if bits == 32 else 4)) * (bits // 8)
        if off < 0 or off + _mem_size(ins) - 1 > 0xFFFF:
            return True
    # string instructions and XLAT: [E]SI / [E]DI / [E]BX+AL by address size
    name = ins.entry.name
    r = st.regs
    amask = 0xFFFFFFFF if ins.adsize == 32 else 0xFFFF
    if name == "XLAT":
        return ((r[3] & amask) + (r[0] & 0xFF)) & amask > 0xFFFF
    if name in ("MOVS", "CMPS", "SCAS", "LODS", "STOS"):
        size = 1 if ins.entry.ops[0] in ("Yb", "Xb", "AL") else ins.opsize // 8
        return (r[6] & amask) + size - 1 > 0xFFFF or (r[7] & amask) + size - 1 > 0xFFFF
    if name not in _STACK_USERS:
        return False
    # stack accesses straddling the 64 KiB wrap (a word at SP = 0FFFFh, PUSHA with SP = 7 ...)
    w = ins.opsize // 8
    if name == "ENTER":                 # nesting level > 1 copies frame pointers from [BP-w*i]
        bp = r[5] & 0xFFFF
        for i in range(1, ins.imm2 & 0x1F):
            if (bp - w * i) & 0xFFFF > 0x10000 - w:
                return True
    sp = (r[5] if name == "LEAVE" else r[4]) & 0xFFFF
    need = {"PUSHA": 8 * w, "POPA": 8 * w, "ENTER": w * (2 + ins.imm2) + ins.imm}.get(name, 2 * w)
    return sp < need or sp + need > 0x10000


_STACK_USERS = frozenset(("PUSH", "POP", "PUSH_SEG", "POP_RM", "PUSHA", "POPA", "PUSHF", "POPF",
                          "CALL", "CALL_RM", "RETN", "RETN_IMM", "ENTER", "LEAVE", "INT3",
                          "INTO"))


def _lock_not_checked(sit) -> bool:
    """LOCK on an instruction that cannot be locked (not in the SDM's list, or a register
    destination) raises #UD (SDM Vol. 2, "LOCK": "An undefined opcode exception will also be
    generated if the LOCK prefix is used with any instruction not in the above list").  QEMU
    checks LOCK only for some instructions and executes the rest as if it were absent."""
    if sit.aero.vector != 6:
        return False
    st = sit.at(sit.aero.eip)
    if st is None or not st.ins.lock:
        return False
    ins = st.ins
    ok = ins.entry.lock and 0 <= ins.mod < 3
    return not ok and (sit.uni.vector != 6 or sit.uni.eip != sit.aero.eip)


def _group_reg_ignored(sit) -> bool:
    """8F /1-7, C6 /1-7 and C7 /1-7 are undefined (SDM Vol. 2, Table A-6: only /0 is POP / MOV;
    the 80286 vectors' metadata lists the other slots as undefined) and raise #UD.  QEMU ignores
    the ModR/M reg field of these opcodes and executes POP / MOV."""
    if sit.aero.vector != 6:
        return False
    st = sit.at(sit.aero.eip)
    if st is None:
        return False
    ins = st.ins
    return (not ins.two and ins.opcode in (0x8F, 0xC6, 0xC7) and ins.reg != 0
            and (sit.uni.vector != 6 or sit.uni.eip != sit.aero.eip))


def _test_alias_ud(sit) -> bool:
    """F6 /1 and F7 /1 are aliases of TEST (F6 /0, F7 /0): the 80286 vectors record the CPU
    executing them as TEST (metadata status "alias"), and Intel and AMD CPUs since do the same.
    QEMU raises #UD for them."""
    if sit.uni.vector != 6 or sit.aero.vector == 6 and sit.aero.eip == sit.uni.eip:
        return False
    st = sit.at(sit.uni.eip)
    return (st is not None and not st.ins.two and st.ins.opcode in (0xF6, 0xF7)
            and st.ins.reg == 1)


def _hint_nop_reg_ud(sit) -> bool:
    """Hint NOPs (0F 18-0F 1F, "NOP Ev" in Aero's table) with a register operand.  The SDM's
    two-byte map (Vol. 2, Table A-3) makes 0F 19-0F 1E reserved NOPs, 0F 1F "NOP Ev" and 0F 18
    the PREFETCHh group; Aero's table executes the whole block as NOP Ev whatever the ModR/M
    form.  QEMU decodes 0F 18 as a prefetch of memory only and raises #UD when mod == 11b."""
    if sit.uni.vector != 6 or sit.aero.vector == 6 and sit.aero.eip == sit.uni.eip:
        return False
    st = sit.at(sit.uni.eip)
    return (st is not None and st.ins.two and st.ins.entry.name == "NOP" and not st.ins.entry.ud
            and st.ins.mod == 3)


def _flags_at_helper_fault(sit) -> bool:
    """At a fault (#DE from DIV/IDIV/AAM, #BR from BOUND, #SS/#GP from a segment or stack
    check) EFLAGS are those left by the previous instruction (SDM Vol. 3, 6.5 "Faults": the
    state is restored to before the faulting instruction).  QEMU raises these from helpers and
    EFLAGS read in the interrupt hook come from stale lazy-flag state (STC; ADC DL,DL; DIV ECX
    with a quotient overflow reads EFLAGS 0x2 in unicorn; with a PUSHF in between the flags
    are right).  Explains a mismatch only when both took the same fault at the same EIP and
    nothing but EFLAGS differs."""
    return (sit.aero.vector == sit.uni.vector and sit.aero.vector in (0, 5, 12, 13)
            and sit.aero.eip == sit.uni.eip and sit.diffs == ["eflags"])


def _bound_upper_wrap(sit) -> bool:
    """BOUND with a 16-bit address size where the upper bound's offset (EA + 2 or + 4) passes
    0FFFFh.  Aero reads the upper bound at (EA + size) AND 0FFFFh, wrapping at the address size
    as Bochs does (BOUND_GdMa: read at (eaddr + 4) & asize_mask); QEMU reads it linearly past
    the 64 KiB boundary.  The SDM does not say which, and the 80286 vectors cannot tell (a real
    mode access there faults on the limit first): reported as a difference to settle, not as a
    proven unicorn bug."""
    for st in sit.trace:
        ins = st.ins
        if ins.entry.name == "BOUND" and ins.adsize == 16 and st.off is not None and \
                st.off + ins.opsize // 8 > 0xFFFF:
            return True
    return False


def _enter_frame_pointer(sit) -> bool:
    """ENTER whose operand size differs from the stack size.  The frame pointer written is
    chosen by the operand size (SDM Vol. 2, ENTER, Operation: "IF OperandSize = 32 THEN EBP <-
    FrameTemp" / "OperandSize = 16: BP <- FrameTemp, bits 16 and above unchanged"; the 80386
    manual's pseudocode says the same: "IF OperandSize = 16 THEN BP := frame-ptr ELSE EBP :=
    frame-ptr").  QEMU chooses it by the stack size: 66 ENTER in a 32-bit segment sets all of
    EBP, and 66 ENTER in real mode keeps EBP's upper half.  Everything addressed through EBP
    afterwards differs too."""
    stack32 = sit.mode == 32
    return any(st.ins.entry.name == "ENTER" and (st.ins.opsize == 32) != stack32
               for st in _executed(sit))


def _cs_write(sit) -> bool:
    """Protected mode: a write through a CS override raises #GP(0) because code segments are
    never writable (SDM Vol. 3, 5.4.1 "Segment type checking": "writing into a code segment").
    QEMU TCG does not check segment types on data accesses."""
    if sit.mode != 32 or sit.aero.vector != 13:
        return False
    st = sit.at(sit.aero.eip)
    return st is not None and st.ins.seg == 1 and sit.uni.eip != sit.aero.eip


def _executed(sit):
    """The steps that completed (the faulting one, if any, excluded)."""
    steps = sit.trace
    for side in (sit.aero, sit.uni):
        if side.vector is not None and side.vector not in (3, 4):
            steps = [st for st in steps if st.ins.eip != side.eip] if steps and \
                steps[-1].ins.eip == side.eip else steps
    return steps


def _locked_neg(sit) -> bool:
    """LOCK NEG m: flags are those of 0 - m (SDM Vol. 2, NEG).  QEMU's atomic NEG computes SF,
    ZF and PF from the wrong value: LOCK NEG BYTE [mem] with 05h gives FBh and EFLAGS 0x17 in
    unicorn (SF clear, PF set) where the unlocked NEG gives the right 0x93."""
    return any(st.ins.lock and not st.ins.two and st.ins.opcode in (0xF6, 0xF7)
               and st.ins.reg == 3 and 0 <= st.ins.mod < 3 for st in _executed(sit))


def _writes_arith_flags(ins) -> bool:
    return bool(set(ins.entry.fw) & set("OSZAPC"))


_LAZY_ADD_SUB = frozenset(("ADD", "ADC", "SUB", "SBB", "CMP", "NEG"))


def _loopcc_loses_flags(sit) -> bool:
    """LOOPE/LOOPNE after ADD/ADC/SUB/SBB/CMP/NEG: LOOPcc changes no flags (SDM Vol. 2,
    LOOP/LOOPcc), so the flags stay as the arithmetic instruction set them.  QEMU computes
    them lazily from a translation-time temporary that does not survive the branch LOOPcc ends
    its block with, and AF (sometimes CF too) comes out wrong afterwards: NEG EBX (938Ch) then
    LOOPE reads EFLAGS 0x86 in unicorn instead of 0x97; ADD EAX,5 with 7FFFFFFFh then LOOPE
    loses AF; CMP DWORD [mem],imm then LOOPE loses CF and AF; a JB after them sees the wrong
    CF.  Without the LOOPcc, or with LOOP, the flags are right."""
    steps = _executed(sit)
    for i, st in enumerate(steps):
        ins = st.ins
        if ins.two or ins.opcode not in (0xE0, 0xE1):
            continue
        for prev in reversed(steps[:i]):
            if _writes_arith_flags(prev.ins):
                if prev.ins.entry.name in _LAZY_ADD_SUB:
                    return True
                break
    return False


_EXPLICIT_FLAG_WRITERS = frozenset(("STC", "CLC", "CMC", "SAHF", "POPF"))


def _cmpxchg8b_stale_flags(sit) -> bool:
    """CMPXCHG8B changes only ZF (SDM Vol. 2, CMPXCHG8B).  QEMU's helper recomputes the other
    flags from stale lazy-flag state when the previous flag-writing instruction left its flags
    pending (STC; SBB AL,AL; CMPXCHG8B [mem] reads EFLAGS 0x3 in unicorn instead of 0x97; with a
    PUSHF before CMPXCHG8B they are right)."""
    steps = _executed(sit)
    for i, st in enumerate(steps):
        if st.ins.two and st.ins.opcode == 0xC7 and st.ins.reg == 1:
            for prev in reversed(steps[:i]):
                e = prev.ins.entry
                if e.name == "PUSHF":
                    break
                if set(e.fw) & set("OSZAPC"):
                    if e.name not in _EXPLICIT_FLAG_WRITERS:
                        return True
                    break
    return False


RULES = [
    Rule("lock-not-checked",
         "QEMU executes LOCK-prefixed instructions that cannot be locked instead of raising #UD",
         _lock_not_checked),
    Rule("group-reg-field-ignored",
         "QEMU executes 8F/C6/C7 with ModR/M reg 1-7 as POP/MOV instead of raising #UD",
         _group_reg_ignored),
    Rule("test-alias-ud",
         "QEMU raises #UD for F6 /1, F7 /1, which hardware executes as TEST", _test_alias_ud),
    Rule("hint-nop-reg-ud",
         "QEMU raises #UD for 0F 18 (hint-NOP space) with a register operand",
         _hint_nop_reg_ud),
    Rule("flags-at-helper-fault",
         "unicorn reports stale EFLAGS when #DE/#BR/#SS/#GP is raised from a QEMU helper",
         _flags_at_helper_fault),
    Rule("locked-neg-flags",
         "QEMU's LOCK NEG m computes SF/ZF/PF from the wrong value", _locked_neg),
    Rule("cmpxchg8b-stale-flags",
         "QEMU's CMPXCHG8B recomputes OF/SF/AF/PF/CF from stale lazy-flag state",
         _cmpxchg8b_stale_flags),
    Rule("loopcc-loses-flags",
         "QEMU loses AF/CF of ADD/ADC/SUB/SBB/CMP/NEG when LOOPE/LOOPNE follows",
         _loopcc_loses_flags),
    Rule("bound-upper-wrap",
         "BOUND upper bound past offset 0FFFFh with 16-bit addressing: Aero wraps (as Bochs), "
         "QEMU does not", _bound_upper_wrap),
    Rule("enter-frame-pointer",
         "QEMU sets BP/EBP after ENTER by the stack size, not the operand size",
         _enter_frame_pointer),
    Rule("cs-write",
         "QEMU does not check segment types: writes through a CS override do not raise #GP",
         _cs_write),
    Rule("real-mode-segment-limit",
         "QEMU TCG does not check real-mode segment limits (a 386+ raises #GP/#SS for an access "
         "past offset 0FFFFh)", _real_mode_limit),
]


# ------------------------------------------------------------------------------------------------
# Hazards: encodings unicorn cannot run at all (the process dies), so sequences holding them are
# not run.  Predicates over one decoded instruction, each with its reason; counted when used.
# ------------------------------------------------------------------------------------------------
def _lock_bit_test_register(ins) -> bool:
    """LOCK BT/BTS/BTR/BTC with a register destination (0F A3/AB/B3/BB, 0F BA /4-7, mod ==
    11b).  The SDM says #UD (LOCK needs a memory destination); Aero raises #UD.  unicorn 2.1.4
    aborts the whole process on it (a failed assertion inside QEMU's TCG), so it cannot be
    compared."""
    if not ins.lock or not ins.two or ins.mod != 3:
        return False
    return ins.opcode in (0xA3, 0xAB, 0xB3, 0xBB) or (ins.opcode == 0xBA and ins.reg >= 4)


HAZARDS = [
    Rule("lock-bit-test-register",
         "unicorn aborts the process on LOCK BT/BTS/BTR/BTC with a register destination",
         _lock_bit_test_register),
]


def hazard(ins) -> str | None:
    """The name of the hazard a decoded instruction is, or None."""
    for h in HAZARDS:
        if h.applies(ins):
            return h.name
    return None


def explained_by(sit) -> str | None:
    """The name of the first rule that explains a mismatch, or None."""
    for rule in RULES:
        if rule.applies(sit):
            return rule.name
    return None
