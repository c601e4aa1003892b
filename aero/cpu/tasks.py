"""Hardware task switching (SDM Vol. 3, chapter 7) with 32-bit and 16-bit TSSs.

Sources of a task switch: JMP or CALL to a TSS descriptor or a task gate, an interrupt or
exception through a task gate in the IDT, and IRET with EFLAGS.NT set (back to the task named by
the back link of the current TSS).

Order (SDM 7.3): every check that can fail in the context of the *old* task (privilege, present,
busy, TSS limits, the pages of both TSSs) happens first.  Then the switch commits: busy bits,
the old task's state saved into its TSS, the back link and NT for nesting sources, TR, CR0.TS,
CR3 (32-bit TSS, paging on), EFLAGS, EIP, the general registers and the segment selectors.
Faults found while loading LDTR and the segment descriptors afterwards (#TS with the selector,
#NP, #SS) belong to the *new* task: they are delivered here, with the new task's EIP as the
return address.

Not implemented (documented gap): the T bit of the TSS (debug trap on entry to the task).
"""

from __future__ import annotations

from ..faults import CPUFault, GP, NP, SS, TS
from . import flags as F
from .segmentation import (CS, SS_, DS, ES, FSEG, GSEG, A_S, A_CODE, A_DC, A_P, A_ACCESSED,
                           d_attr, d_base, d_limit, read_desc, set_accessed, cs_attr,
                           check_data_seg, set_null, push_frame)

CR0_TS = 8

# 32-bit TSS layout
T32_EIP, T32_EFLAGS, T32_REGS, T32_SEGS, T32_LDT, T32_CR3, T32_TBIT = 0x20, 0x24, 0x28, 0x48, 0x60, 0x1C, 0x64
# 16-bit TSS layout
T16_IP, T16_FLAGS, T16_REGS, T16_SEGS, T16_LDT = 0x0E, 0x10, 0x12, 0x22, 0x2A


def _gdt_only(sel, vec, ext=0):
    if sel & 4:
        raise CPUFault(vec, (sel & 0xFFFC) | ext)


def switch_via(cpu, sel: int, addr: int, lo: int, hi: int, source: str, next_eip: int) -> None:
    """JMP/CALL to a TSS descriptor or a task gate (descriptor already read)."""
    a = d_attr(hi)
    t = a & 0xF
    cpl = cpu.cpl
    dpl = (a >> 5) & 3
    code = sel & 0xFFFC
    if dpl < cpl or dpl < (sel & 3):
        raise CPUFault(GP, code)
    if t == 5:                                               # task gate
        if not a & A_P:
            raise CPUFault(NP, code)
        tsel = lo >> 16
        _gdt_only(tsel, GP)
        taddr, tlo, thi = read_desc(cpu, tsel)
        ta = d_attr(thi)
        if ta & A_S or (ta & 0xF) not in (1, 9):
            raise CPUFault(GP, tsel & 0xFFFC)
        if not ta & A_P:
            raise CPUFault(NP, tsel & 0xFFFC)
        task_switch(cpu, tsel, taddr, tlo, thi, source, next_eip)
        return
    _gdt_only(sel, GP)
    if t not in (1, 9):                                      # busy TSS
        raise CPUFault(GP, code)
    if not a & A_P:
        raise CPUFault(NP, code)
    task_switch(cpu, sel, addr, lo, hi, source, next_eip)


def switch_via_int_gate(cpu, tsel: int, ret_eip: int, ext: int, errc) -> None:
    """An interrupt or exception through a task gate; pushes the error code (if any) on the new
    task's stack."""
    _gdt_only(tsel, GP, ext)
    taddr, tlo, thi = read_desc(cpu, tsel, GP, ext)
    ta = d_attr(thi)
    if ta & A_S or (ta & 0xF) not in (1, 9):
        raise CPUFault(GP, (tsel & 0xFFFC) | ext)
    if not ta & A_P:
        raise CPUFault(NP, (tsel & 0xFFFC) | ext)
    if not task_switch(cpu, tsel, taddr, tlo, thi, "int", ret_eip, ext):
        return
    if errc is not None:
        size = 4 if ta & 8 else 2
        try:
            cpu.R[4] = push_frame(cpu, cpu.base[SS_], cpu.limit[SS_], cpu.attr[SS_], cpu.R[4],
                                  (errc,), size, cpu.cpl == 3, SS, ext)
        except CPUFault as e:
            cpu._deliver(e.vector, e.error_code, "fault")


def task_return(cpu, next_eip: int) -> None:
    """IRET with NT = 1: return to the task in the back link (SDM IRET, TASK-RETURN)."""
    tsel = cpu.mmu.read_sup(cpu.tr[1], 2)
    if tsel & 4:
        raise CPUFault(TS, tsel & 0xFFFC)
    taddr, tlo, thi = read_desc(cpu, tsel, TS)
    ta = d_attr(thi)
    if ta & A_S or (ta & 0xF) not in (3, 0xB):
        raise CPUFault(TS, tsel & 0xFFFC)
    if not ta & A_P:
        raise CPUFault(NP, tsel & 0xFFFC)
    task_switch(cpu, tsel, taddr, tlo, thi, "iret", next_eip)


def _probe(cpu, base: int, start: int, end: int, write: bool) -> None:
    """Make sure the pages of TSS bytes [start, end] are present (and writable)."""
    tr = cpu.mmu.translate_sup
    lin = (base + start) & ~0xFFF
    last = (base + end) & 0xFFFFFFFF
    while True:
        tr(lin & 0xFFFFFFFF, write)
        if lin >= (last & ~0xFFF):
            break
        lin += 0x1000


def task_switch(cpu, sel: int, addr: int, lo: int, hi: int, source: str, next_eip: int,
                ext: int = 0) -> bool:
    """Switch to the task whose TSS descriptor (checked: present, type) is at ``addr``.
    ``source`` is "jmp", "call", "int" or "iret".  Returns False when a fault in the new task's
    context was delivered during the switch."""
    mmu = cpu.mmu
    rd, wr = mmu.read_sup, mmu.write_sup
    a = d_attr(hi)
    new32 = bool(a & 8)
    nbase, nlimit = d_base(lo, hi), d_limit(lo, hi)
    code = (sel & 0xFFFC) | ext
    if nlimit < (0x67 if new32 else 0x2B):
        raise CPUFault(TS, code)
    osel, obase, olimit, oattr = cpu.tr
    old32 = bool(oattr & 8)
    if olimit < (0x5F if old32 else 0x29):
        raise CPUFault(TS, (osel & 0xFFFC) | ext)
    # pages of both TSSs must be present before anything changes
    _probe(cpu, obase, 0, 0x5F if old32 else 0x29, True)
    _probe(cpu, nbase, 0, 0x67 if new32 else 0x2B, source in ("call", "int"))

    # read the new task's state
    if new32:
        n_cr3 = rd((nbase + T32_CR3) & 0xFFFFFFFF, 4)
        n_eip = rd((nbase + T32_EIP) & 0xFFFFFFFF, 4)
        n_fl = rd((nbase + T32_EFLAGS) & 0xFFFFFFFF, 4)
        n_regs = [rd((nbase + T32_REGS + 4 * i) & 0xFFFFFFFF, 4) for i in range(8)]
        n_segs = [rd((nbase + T32_SEGS + 4 * i) & 0xFFFFFFFF, 2) for i in range(6)]
        n_ldt = rd((nbase + T32_LDT) & 0xFFFFFFFF, 2)
    else:
        n_cr3 = None
        n_eip = rd((nbase + T16_IP) & 0xFFFFFFFF, 2)
        n_fl = rd((nbase + T16_FLAGS) & 0xFFFFFFFF, 2)
        n_regs = [rd((nbase + T16_REGS + 2 * i) & 0xFFFFFFFF, 2) for i in range(8)]
        n_segs = [rd((nbase + T16_SEGS + 2 * i) & 0xFFFFFFFF, 2) for i in range(4)] + [0, 0]
        n_ldt = rd((nbase + T16_LDT) & 0xFFFFFFFF, 2)

    # ---- commit ----
    fl = cpu.get_flags()
    if source == "iret":
        fl &= ~F.NT
    gdt_base = cpu.gdtr[0]
    if source in ("jmp", "iret"):                           # old task no longer busy
        oaddr = (gdt_base + (osel & 0xFFF8) + 5) & 0xFFFFFFFF
        if osel & 0xFFFC and (osel & 0xFFF8) + 7 <= cpu.gdtr[1]:
            wr(oaddr, 1, rd(oaddr, 1) & ~2)
    R = cpu.R
    if old32:
        wr((obase + T32_EIP) & 0xFFFFFFFF, 4, next_eip)
        wr((obase + T32_EFLAGS) & 0xFFFFFFFF, 4, fl)
        for i in range(8):
            wr((obase + T32_REGS + 4 * i) & 0xFFFFFFFF, 4, R[i])
        for i in range(6):
            wr((obase + T32_SEGS + 4 * i) & 0xFFFFFFFF, 2, cpu.sel[i])
    else:
        wr((obase + T16_IP) & 0xFFFFFFFF, 2, next_eip & 0xFFFF)
        wr((obase + T16_FLAGS) & 0xFFFFFFFF, 2, fl & 0xFFFF)
        for i in range(8):
            wr((obase + T16_REGS + 2 * i) & 0xFFFFFFFF, 2, R[i] & 0xFFFF)
        for i in range(4):
            wr((obase + T16_SEGS + 2 * i) & 0xFFFFFFFF, 2, cpu.sel[i])
    if source in ("call", "int"):
        wr(nbase, 2, osel)
        n_fl |= F.NT
    if source != "iret":
        wr((addr + 5) & 0xFFFFFFFF, 1, ((hi >> 8) & 0xFF) | 2)
    cpu.tr = [sel & 0xFFFF, nbase, nlimit, a | 2]
    cpu.cr0 |= CR0_TS
    # the local breakpoint enables L0-L3 belong to the old task (SDM Vol. 3, 17.2.4: cleared on
    # every task switch; QEMU's switch_tss does the same)
    if cpu.dr[7] & 0x55:
        cpu.dr[7] &= ~0x55
        cpu.dr_changed()
    if n_cr3 is not None and cpu.cr0 & 0x80000000:
        cpu.write_cr3(n_cr3)
    cpu.lf = None
    if new32:
        cpu.flags = (n_fl & F.WRITABLE) | F.FIXED1
        R[:] = n_regs
    else:
        cpu.flags = (n_fl & F.WRITABLE & 0xFFFF) | F.FIXED1
        for i in range(8):                       # the upper halves read as FFFFh (as on
            R[i] = 0xFFFF0000 | n_regs[i]            # hardware, Bochs and QEMU)
    cpu.eip = n_eip
    # selectors are loaded first with unusable caches, then their descriptors
    for s in range(6):
        cpu.sel[s] = n_segs[s]
        cpu.attr[s] &= ~A_P if s != CS else 0xFFFF
    cpu.ldtr = [n_ldt, 0, 0, 0]
    try:
        _load_task_segments(cpu, n_segs, n_ldt, ext)
        if cpu.eip > cpu.limit[CS]:
            raise CPUFault(GP, ext)
    except CPUFault as e:
        cpu.mode_changed()
        cpu._deliver(e.vector, e.error_code, "fault")
        return False
    return True


def _load_task_segments(cpu, segs, ldt: int, ext: int) -> None:
    # LDTR
    if ldt & 0xFFFC:
        if ldt & 4:
            raise CPUFault(TS, (ldt & 0xFFFC) | ext)
        laddr, llo, lhi = read_desc(cpu, ldt, TS, ext)
        la = d_attr(lhi)
        if la & A_S or (la & 0xF) != 2 or not la & A_P:
            raise CPUFault(TS, (ldt & 0xFFFC) | ext)
        cpu.ldtr = [ldt, d_base(llo, lhi), d_limit(llo, lhi), la]
    else:
        cpu.ldtr = [ldt, 0, 0, 0]
    if cpu.flags & F.VM:                                    # a virtual-8086 task
        for s in range(6):
            cpu.load_seg_real(s, segs[s])
        cpu.mode_changed()
        return
    # CS (the new CPL is its RPL)
    csel = segs[CS]
    cpl = csel & 3
    if not csel & 0xFFFC:
        raise CPUFault(TS, ext)
    caddr, clo, chi = read_desc(cpu, csel, TS, ext)
    ca = d_attr(chi)
    cdpl = (ca >> 5) & 3
    ccode = (csel & 0xFFFC) | ext
    if (ca & (A_S | A_CODE)) != (A_S | A_CODE):
        raise CPUFault(TS, ccode)
    if (ca & A_DC and cdpl > cpl) or (not ca & A_DC and cdpl != cpl):
        raise CPUFault(TS, ccode)
    if not ca & A_P:
        raise CPUFault(NP, ccode)
    set_accessed(cpu, caddr, chi)
    cpu.set_seg_cache(CS, csel, d_base(clo, chi), d_limit(clo, chi), cs_attr(ca, cpl))
    for s in (SS_, DS, ES, FSEG, GSEG):
        sel = segs[s]
        try:
            d = check_data_seg(cpu, s, sel, cpl, TS)
        except CPUFault as e:
            if e.error_code is not None:
                e.error_code |= ext
            raise
        if d is None:
            set_null(cpu, s, sel)
            continue
        addr, lo, hi = d
        set_accessed(cpu, addr, hi)
        cpu.set_seg_cache(s, sel, d_base(lo, hi), d_limit(lo, hi), d_attr(hi) | A_ACCESSED)
