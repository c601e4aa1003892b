"""Protected-mode interrupts and exceptions, IRET, and the EFLAGS privilege rules.

``interrupt_protected`` delivers a vector through the IDT (SDM Vol. 3, 6.10-6.14, and the
operation section of INT n): interrupt and trap gates (16- and 32-bit) to the same level or, with
a stack switch from the TSS, to an inner level; from virtual-8086 mode to ring 0 (pushing
GS FS DS ES first and nulling them); task gates (a task switch).

``kind`` is "hw" (external interrupt, NMI, INT1), "fault" (an exception raised by the CPU) or
"soft" (INT n, INT3, INTO).  Error codes raised while delivering carry the EXT bit unless the
event is a software interrupt; software interrupts check the gate DPL against the CPL.  An
exception pushes its error code (vectors in ``HAS_ERROR_CODE``) only when ``kind == "fault"``.

Deliberate simplifications (documented): the RF flag is not set in the EFLAGS image pushed for
faults (QEMU does not set it either; Aero has no instruction breakpoints yet).

NMI blocking (SDM Vol. 3, 6.7.1 "Handling Multiple NMIs"): delivering an NMI blocks further
NMIs until the next IRET completes (in any mode, whatever it returns to); one NMI arriving
meanwhile is held and taken after that IRET (``CPU.raise_nmi``, ``CPU.nmi_unblock``).
"""

from __future__ import annotations

from ..faults import CPUFault, GP, NP, SS, HAS_ERROR_CODE
from . import flags as F
from .tasks import switch_via_int_gate, task_return
from .segmentation import (CS, SS_, ES, DS, FSEG, GSEG, A_S, A_CODE, A_DC, A_P, A_ACCESSED,
                           d_attr, d_base, d_limit, read_desc, load_cs, load_ss_desc, set_null,
                           push_frame, tss_stack, check_inner_ss, check_return_cs, check_outer_ss,
                           null_outer_data_segs)

GATE_TYPES = (5, 6, 7, 0xE, 0xF)


def interrupt_protected(cpu, vector: int, code, kind: str, ret_eip: int) -> None:
    ext = 0 if kind == "soft" else 1
    vm = cpu.flags & F.VM
    cpl = cpu.cpl
    ibase, ilimit = cpu.idtr
    gate_code = vector * 8 + 2 + ext
    if vector * 8 + 7 > ilimit:
        raise CPUFault(GP, gate_code)
    rd = cpu.mmu.read_sup
    glin = (ibase + vector * 8) & 0xFFFFFFFF
    lo = rd(glin, 4)
    hi = rd((glin + 4) & 0xFFFFFFFF, 4)
    a = (hi >> 8) & 0xFF
    t = a & 0x1F
    if t not in GATE_TYPES:
        raise CPUFault(GP, gate_code)
    if kind == "soft" and ((a >> 5) & 3) < cpl:
        raise CPUFault(GP, vector * 8 + 2)
    if not a & A_P:
        raise CPUFault(NP, gate_code)
    push_code = kind == "fault" and vector in HAS_ERROR_CODE
    errc = (code or 0) if push_code else None

    if t == 5:                                            # task gate
        switch_via_int_gate(cpu, lo >> 16, ret_eip, ext, errc)
        return

    gate32 = bool(t & 8)
    size = 4 if gate32 else 2
    off = (lo & 0xFFFF) | ((hi & 0xFFFF0000) if gate32 else 0)
    csel = lo >> 16
    if not csel & 0xFFFC:
        raise CPUFault(GP, ext)
    caddr, clo, chi = read_desc(cpu, csel, GP, ext)
    ca = d_attr(chi)
    cdpl = (ca >> 5) & 3
    ccode = (csel & 0xFFFC) | ext
    if (ca & (A_S | A_CODE)) != (A_S | A_CODE) or cdpl > cpl:
        raise CPUFault(GP, ccode)
    if not ca & A_P:
        raise CPUFault(NP, ccode)
    climit = d_limit(clo, chi)
    flags = cpu.get_flags()
    newflags = flags & ~(F.TF | F.NT | F.RF | F.VM)
    if not t & 1:                                         # interrupt gate (not trap gate)
        newflags &= ~F.IF
    R = cpu.R

    if not ca & A_DC and cdpl < cpl:
        if vm and cdpl != 0:
            raise CPUFault(GP, ccode)
        # inter-privilege: new stack from the TSS
        ss_sel, nesp = tss_stack(cpu, cdpl, ext)
        saddr, slo, shi = check_inner_ss(cpu, ss_sel, cdpl, ext)
        values = []
        if vm:
            values += [cpu.sel[GSEG], cpu.sel[FSEG], cpu.sel[DS], cpu.sel[ES]]
        values += [cpu.sel[SS_], R[4], flags, cpu.sel[CS], ret_eip]
        if push_code:
            values.append(errc)
        sa = d_attr(shi) | A_ACCESSED
        new_esp = push_frame(cpu, d_base(slo, shi), d_limit(slo, shi), sa, nesp, values, size,
                             False, SS, (ss_sel & 0xFFFC) | ext)
        if off > climit:
            raise CPUFault(GP, ext)
        cpu.flags = newflags
        cpu.lf = None
        if vm:
            for s in (ES, DS, FSEG, GSEG):
                set_null(cpu, s, 0)
        load_ss_desc(cpu, ss_sel, saddr, slo, shi)
        R[4] = new_esp
        load_cs(cpu, csel, caddr, clo, chi, cdpl)
        cpu.eip = off
        return

    if vm:
        raise CPUFault(GP, ccode)
    # same privilege level
    values = [flags, cpu.sel[CS], ret_eip]
    if push_code:
        values.append(errc)
    new_esp = push_frame(cpu, cpu.base[SS_], cpu.limit[SS_], cpu.attr[SS_], R[4], values, size,
                         cpl == 3, SS, ext)
    if off > climit:
        raise CPUFault(GP, ext)
    cpu.flags = newflags
    cpu.lf = None
    R[4] = new_esp
    load_cs(cpu, csel, caddr, clo, chi, cpl)
    cpu.eip = off


# ---------------------------------------------------------------------------------------------
# EFLAGS privilege rules (POPF, IRET)
# ---------------------------------------------------------------------------------------------
def popf_mask(cpu, osz: int) -> int:
    """The EFLAGS bits POPF may change (SDM POPF).  V86 with IOPL < 3 is #GP(0) (checked by the
    caller).  32-bit POPF never changes VM, VIP, VIF; RF is cleared."""
    fl = cpu.flags
    mask = F.ARITH | F.TF | F.DF | F.NT
    if osz == 32:
        mask |= F.AC | F.ID
    if not cpu.cr0 & 1:                                   # real mode: CPL 0
        return mask | F.IF | F.IOPL
    if fl & F.VM:                                         # V86, IOPL 3
        return mask | F.IF
    cpl = cpu.cpl
    if cpl == 0:
        mask |= F.IOPL
    if cpl <= (fl & F.IOPL) >> 12:
        mask |= F.IF
    return mask


def sys_popf(cpu, osz: int) -> None:
    fl = cpu.flags
    if fl & F.VM and (fl & F.IOPL) != F.IOPL:
        raise CPUFault(GP, 0)
    v = cpu.stack_read(0, osz)
    mask = popf_mask(cpu, osz)
    cpu.stack_add(osz // 8)
    if osz == 32:
        mask |= F.RF                                       # RF is cleared
        v &= ~F.RF
    cpu.write_flags(v, mask)


def iret(cpu, osz: int, next_eip: int) -> None:
    """IRET / IRETD in every mode (SDM IRET); a completed IRET ends NMI blocking."""
    _iret(cpu, osz, next_eip)
    if cpu.nmi_blocked:
        cpu.nmi_unblock()


def _iret(cpu, osz: int, next_eip: int) -> None:
    size = osz // 8
    fl = cpu.get_flags()
    if not cpu.cr0 & 1:                                   # real-address mode
        eip = cpu.stack_read(0, osz)
        cs = cpu.stack_read(size, osz) & 0xFFFF
        nf = cpu.stack_read(2 * size, osz)
        if eip > cpu.limit[CS]:
            raise CPUFault(GP, 0)
        cpu.stack_add(3 * size)
        cpu.load_seg_real(CS, cs)
        cpu.eip = eip
        if osz == 32:
            cpu.write_flags(nf, 0x257FD5)
        else:
            cpu.write_flags(nf, 0xFFFF)
        return
    if fl & F.VM:                                         # virtual-8086 mode
        if (fl & F.IOPL) != F.IOPL:
            raise CPUFault(GP, 0)
        eip = cpu.stack_read(0, osz)
        cs = cpu.stack_read(size, osz) & 0xFFFF
        nf = cpu.stack_read(2 * size, osz)
        if eip > 0xFFFF:
            raise CPUFault(GP, 0)
        cpu.stack_add(3 * size)
        cpu.load_seg_real(CS, cs)
        cpu.eip = eip
        mask = (F.WRITABLE & ~(F.IOPL | F.VM | F.VIP | F.VIF)) if osz == 32 else \
            (0xFFFF & ~F.IOPL)
        cpu.write_flags(nf, mask)
        return
    if fl & F.NT:
        task_return(cpu, next_eip)
        return
    eip = cpu.stack_read(0, osz)
    cs = cpu.stack_read(size, osz) & 0xFFFF
    nf = cpu.stack_read(2 * size, osz)
    cpl = cpu.cpl
    if osz == 32 and nf & F.VM and cpl == 0:
        _iret_to_v86(cpu, eip, cs, nf)
        return
    addr, lo, hi, rpl = check_return_cs(cpu, cs, cpl)
    mask = F.ARITH | F.TF | F.DF | F.NT
    if osz == 32:
        mask |= F.RF | F.AC | F.ID
    if cpl <= (fl & F.IOPL) >> 12:
        mask |= F.IF
    if cpl == 0:
        mask |= F.IOPL
        if osz == 32:
            mask |= F.VIF | F.VIP
    R = cpu.R
    if rpl == cpl:
        if eip > d_limit(lo, hi):
            raise CPUFault(GP, 0)
        cpu.stack_add(3 * size)
        load_cs(cpu, cs, addr, lo, hi, cpl)
        cpu.eip = eip
        cpu.write_flags(nf, mask)
        return
    nesp = cpu.stack_read(3 * size, osz)
    ss_sel = cpu.stack_read(4 * size, osz) & 0xFFFF
    saddr, slo, shi = check_outer_ss(cpu, ss_sel, rpl)
    if eip > d_limit(lo, hi):
        raise CPUFault(GP, 0)
    cpu.write_flags(nf, mask)
    load_cs(cpu, cs, addr, lo, hi, rpl)
    load_ss_desc(cpu, ss_sel, saddr, slo, shi)
    if shi & 0x400000:
        R[4] = nesp & 0xFFFFFFFF
    else:
        R[4] = (R[4] & 0xFFFF0000) | (nesp & 0xFFFF)
    cpu.eip = eip
    null_outer_data_segs(cpu, rpl)


def _iret_to_v86(cpu, eip: int, cs: int, nf: int) -> None:
    """IRETD at CPL 0 with VM set in the popped EFLAGS image (SDM IRET,
    RETURN-TO-VIRTUAL-8086-MODE)."""
    rd = cpu.stack_read
    nesp = rd(12, 32)
    ss = rd(16, 32) & 0xFFFF
    es = rd(20, 32) & 0xFFFF
    ds = rd(24, 32) & 0xFFFF
    fs = rd(28, 32) & 0xFFFF
    gs = rd(32, 32) & 0xFFFF
    cpu.lf = None
    cpu.flags = (nf & F.WRITABLE) | F.FIXED1
    for s, v in ((CS, cs), (SS_, ss), (ES, es), (DS, ds), (FSEG, fs), (GSEG, gs)):
        cpu.load_seg_real(s, v)
    cpu.R[4] = nesp & 0xFFFFFFFF
    cpu.eip = eip & 0xFFFF
    cpu.mode_changed()
