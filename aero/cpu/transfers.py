"""Far control transfers: JMP, CALL and RET far, through code segments, call gates and task
gates or TSS descriptors (SDM Vol. 2 JMP/CALL/RET; Vol. 3, 5.8 and 7.3).

As everywhere in the CPU, every check happens before anything changes: a far transfer that faults
leaves the registers, the stacks and the flags as they were, so the instruction restarts cleanly.
"""

from __future__ import annotations

from ..faults import CPUFault, GP, NP, SS
from . import flags as F
from .segmentation import (A_ACCESSED, A_CODE, A_DC, A_P, A_S, CS, SS_, T_CALL16, T_CALL32, T_TASK, T_TSS16, T_TSS16_BUSY, T_TSS32, T_TSS32_BUSY, check_inner_ss, check_outer_ss, check_return_cs, d_attr, d_base, d_limit, load_cs, load_ss_desc, null_outer_data_segs, push_current, push_frame, read_desc, tss_stack)
from .tasks import switch_via


# ---------------------------------------------------------------------------------------------
# Far JMP / CALL / RET
# ---------------------------------------------------------------------------------------------
def _real_like(cpu) -> bool:
    return not cpu.cr0 & 1 or bool(cpu.flags & F.VM)


def _check_real_target(cpu, off: int) -> None:
    """A far transfer's target offset in real mode (the CS limit) or V86 mode (64 KiB)."""
    if off > (0xFFFF if cpu.flags & F.VM else cpu.limit[CS]):
        raise CPUFault(GP, 0)


def _check_direct_target(a, cpl, rpl, dpl, code, off, lo, hi) -> None:
    """The checks of a far JMP/CALL straight to a code segment (SDM JMP, CALL): a code
    segment, conforming (DPL <= CPL) or non-conforming (RPL <= CPL, DPL == CPL), present, and
    the offset within its limit."""
    if not a & A_CODE:
        raise CPUFault(GP, code)
    if a & A_DC:
        if dpl > cpl:
            raise CPUFault(GP, code)
    elif rpl > cpl or dpl != cpl:
        raise CPUFault(GP, code)
    if not a & A_P:
        raise CPUFault(NP, code)
    if off > d_limit(lo, hi):
        raise CPUFault(GP, 0)


def far_jump(cpu, sel: int, off: int, osz: int, next_eip: int) -> None:
    """JMP ptr16:16/32 and JMP m16:16/32 (SDM JMP)."""
    sel &= 0xFFFF
    if osz == 16:
        off &= 0xFFFF
    if _real_like(cpu):
        _check_real_target(cpu, off)
        cpu.load_seg_real(CS, sel)
        cpu.eip = off
        return
    if not sel & 0xFFFC:
        raise CPUFault(GP, 0)
    addr, lo, hi = read_desc(cpu, sel)
    a = d_attr(hi)
    cpl = cpu.cpl
    rpl = sel & 3
    dpl = (a >> 5) & 3
    code = sel & 0xFFFC
    if a & A_S:
        _check_direct_target(a, cpl, rpl, dpl, code, off, lo, hi)
        load_cs(cpu, sel, addr, lo, hi, cpl)
        cpu.eip = off
        return
    t = a & 0xF
    if t in (T_CALL16, T_CALL32):
        if dpl < cpl or dpl < rpl:
            raise CPUFault(GP, code)
        if not a & A_P:
            raise CPUFault(NP, code)
        csel, goff = lo >> 16, (lo & 0xFFFF) | ((hi & 0xFFFF0000) if t == T_CALL32 else 0)
        if not csel & 0xFFFC:
            raise CPUFault(GP, 0)
        caddr, clo, chi = read_desc(cpu, csel)
        ca = d_attr(chi)
        cdpl = (ca >> 5) & 3
        ccode = csel & 0xFFFC
        if (ca & (A_S | A_CODE)) != (A_S | A_CODE):
            raise CPUFault(GP, ccode)
        if (ca & A_DC and cdpl > cpl) or (not ca & A_DC and cdpl != cpl):
            raise CPUFault(GP, ccode)
        if not ca & A_P:
            raise CPUFault(NP, ccode)
        if goff > d_limit(clo, chi):
            raise CPUFault(GP, 0)
        load_cs(cpu, csel, caddr, clo, chi, cpl)
        cpu.eip = goff
        return
    if t == T_TASK or t in (T_TSS16, T_TSS32, T_TSS16_BUSY, T_TSS32_BUSY):
        switch_via(cpu, sel, addr, lo, hi, "jmp", next_eip)
        return
    raise CPUFault(GP, code)


def far_call(cpu, sel: int, off: int, osz: int, next_eip: int) -> None:
    """CALL ptr16:16/32 and CALL m16:16/32 (SDM CALL)."""
    sel &= 0xFFFF
    size = osz // 8
    if osz == 16:
        off &= 0xFFFF
    if _real_like(cpu):
        _check_real_target(cpu, off)
        push_current(cpu, (cpu.sel[CS], next_eip), size)
        cpu.load_seg_real(CS, sel)
        cpu.eip = off
        return
    if not sel & 0xFFFC:
        raise CPUFault(GP, 0)
    addr, lo, hi = read_desc(cpu, sel)
    a = d_attr(hi)
    cpl = cpu.cpl
    rpl = sel & 3
    dpl = (a >> 5) & 3
    code = sel & 0xFFFC
    if a & A_S:
        _check_direct_target(a, cpl, rpl, dpl, code, off, lo, hi)
        ss = SS_
        new_esp = push_frame(cpu, cpu.base[ss], cpu.limit[ss], cpu.attr[ss], cpu.R[4],
                             (cpu.sel[CS], next_eip), size, cpl == 3)
        cpu.R[4] = new_esp
        load_cs(cpu, sel, addr, lo, hi, cpl)
        cpu.eip = off
        return
    t = a & 0xF
    if t in (T_CALL16, T_CALL32):
        _call_gate(cpu, sel, lo, hi, a, next_eip)
        return
    if t == T_TASK or t in (T_TSS16, T_TSS32, T_TSS16_BUSY, T_TSS32_BUSY):
        switch_via(cpu, sel, addr, lo, hi, "call", next_eip)
        return
    raise CPUFault(GP, code)


def _call_gate(cpu, sel, lo, hi, a, next_eip) -> None:
    cpl = cpu.cpl
    rpl = sel & 3
    dpl = (a >> 5) & 3
    code = sel & 0xFFFC
    if dpl < cpl or dpl < rpl:
        raise CPUFault(GP, code)
    if not a & A_P:
        raise CPUFault(NP, code)
    gate32 = (a & 0xF) == T_CALL32
    size = 4 if gate32 else 2
    csel = lo >> 16
    goff = (lo & 0xFFFF) | ((hi & 0xFFFF0000) if gate32 else 0)
    count = hi & 0x1F
    if not csel & 0xFFFC:
        raise CPUFault(GP, 0)
    caddr, clo, chi = read_desc(cpu, csel)
    ca = d_attr(chi)
    cdpl = (ca >> 5) & 3
    ccode = csel & 0xFFFC
    if (ca & (A_S | A_CODE)) != (A_S | A_CODE) or cdpl > cpl:
        raise CPUFault(GP, ccode)
    if not ca & A_P:
        raise CPUFault(NP, ccode)
    climit = d_limit(clo, chi)
    R = cpu.R
    if not ca & A_DC and cdpl < cpl:
        # more privileged: stack switch from the TSS (SDM Vol. 3, 5.8.5)
        ss_sel, nesp = tss_stack(cpu, cdpl)
        saddr, slo, shi = check_inner_ss(cpu, ss_sel, cdpl)
        params = [cpu.stack_read(i * size, size * 8) for i in range(count)]
        if goff > climit:
            raise CPUFault(GP, 0)
        values = [cpu.sel[SS_], R[4]] + params[::-1] + [cpu.sel[CS], next_eip]
        sa = d_attr(shi) | A_ACCESSED
        new_esp = push_frame(cpu, d_base(slo, shi), d_limit(slo, shi), sa, nesp, values, size,
                             False, SS, ss_sel & 0xFFFC)
        load_ss_desc(cpu, ss_sel, saddr, slo, shi)
        R[4] = new_esp
        load_cs(cpu, csel, caddr, clo, chi, cdpl)
        cpu.eip = goff
        return
    if goff > climit:
        raise CPUFault(GP, 0)
    push_current(cpu, (cpu.sel[CS], next_eip), size)
    load_cs(cpu, csel, caddr, clo, chi, cpl)
    cpu.eip = goff


def far_ret(cpu, osz: int, imm: int) -> None:
    """RETF / RETF imm16 (SDM RET)."""
    size = osz // 8
    if _real_like(cpu):
        off = cpu.stack_read(0, osz)
        sel = cpu.stack_read(size, osz) & 0xFFFF
        _check_real_target(cpu, off)
        cpu.load_seg_real(CS, sel)
        cpu.stack_add(2 * size + imm)
        cpu.eip = off
        return
    off = cpu.stack_read(0, osz)
    sel = cpu.stack_read(size, osz) & 0xFFFF
    cpl = cpu.cpl
    addr, lo, hi, rpl = check_return_cs(cpu, sel, cpl)
    if rpl == cpl:
        if off > d_limit(lo, hi):
            raise CPUFault(GP, 0)
        cpu.stack_add(2 * size + imm)
        load_cs(cpu, sel, addr, lo, hi, cpl)
        cpu.eip = off
        return
    # return to an outer level: the caller's SS:ESP follow the parameters
    nesp = cpu.stack_read(2 * size + imm, osz)
    ss_sel = cpu.stack_read(3 * size + imm, osz) & 0xFFFF
    saddr, slo, shi = check_outer_ss(cpu, ss_sel, rpl)
    if off > d_limit(lo, hi):
        raise CPUFault(GP, 0)
    load_cs(cpu, sel, addr, lo, hi, rpl)
    load_ss_desc(cpu, ss_sel, saddr, slo, shi)
    R = cpu.R
    if shi & 0x400000:
        R[4] = (nesp + imm) & 0xFFFFFFFF
    else:
        R[4] = (R[4] & 0xFFFF0000) | ((nesp + imm) & 0xFFFF)
    cpu.eip = off
    null_outer_data_segs(cpu, rpl)
