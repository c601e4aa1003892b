"""Protected-mode segmentation: descriptors, segment loads, stacks (SDM Vol. 3, ch. 3, 5).

Descriptors are read with supervisor accesses (``mmu.read_sup``) whatever the CPL, and their
accessed bit is set when a segment register is loaded from them.  The segment caches keep bits
8-23 of the descriptor's high dword shifted down by 8 (see ``aero.cpu.cpu``), so the attribute of
a descriptor ``hi`` is ``(hi >> 8) & 0xF0FF``.

The CPL is computed by the CPU from the DPL held in the CS cache.  A conforming code segment
runs at the caller's CPL, so when one is loaded into CS its cached DPL field is set to the CPL
(the descriptor in memory is untouched; LAR/LSL/VERR read memory, not the cache).

Far JMP/CALL/RET live in ``aero.cpu.transfers`` (they reach task switches, which build on
this module).  Every check happens before anything changes: a far transfer that faults leaves the registers,
the stacks and the flags as they were, so the instruction restarts cleanly.  Stack frames that a
transfer pushes are checked slot by slot (limits, then pages) before the first byte is written.
"""

from __future__ import annotations

from ..faults import CPUFault, GP, NP, SS, TS

ES, CS, SS_, DS, FSEG, GSEG = range(6)
A_ACCESSED, A_RW, A_DC, A_CODE, A_S, A_P, A_DB, A_G = 0x1, 0x2, 0x4, 0x8, 0x10, 0x80, 0x4000, 0x8000

# System descriptor types (S = 0)
T_TSS16, T_LDT, T_TSS16_BUSY, T_CALL16, T_TASK, T_INT16, T_TRAP16 = 1, 2, 3, 4, 5, 6, 7
T_TSS32, T_TSS32_BUSY, T_CALL32, T_INT32, T_TRAP32 = 9, 0xB, 0xC, 0xE, 0xF


# ---------------------------------------------------------------------------------------------
# Descriptors
# ---------------------------------------------------------------------------------------------
def d_base(lo: int, hi: int) -> int:
    return (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000)


def d_limit(lo: int, hi: int) -> int:
    """The segment limit in bytes (granularity applied)."""
    lim = (lo & 0xFFFF) | (hi & 0xF0000)
    if hi & 0x800000:
        lim = (lim << 12) | 0xFFF
    return lim


def d_attr(hi: int) -> int:
    return (hi >> 8) & 0xF0FF


def desc_addr(cpu, sel: int, vec: int = GP, ext: int = 0) -> int:
    """Linear address of the descriptor ``sel`` names; ``vec(sel)`` if outside its table."""
    idx = sel & 0xFFF8
    if sel & 4:
        ldt = cpu.ldtr
        if not ldt[0] & 0xFFFC or not ldt[3] & A_P:
            raise CPUFault(vec, (sel & 0xFFFC) | ext)
        base, limit = ldt[1], ldt[2]
    else:
        base, limit = cpu.gdtr
    if idx + 7 > limit:
        raise CPUFault(vec, (sel & 0xFFFC) | ext)
    return (base + idx) & 0xFFFFFFFF


def read_desc(cpu, sel: int, vec: int = GP, ext: int = 0):
    """(address, low dword, high dword) of a descriptor."""
    addr = desc_addr(cpu, sel, vec, ext)
    rd = cpu.mmu.read_sup
    return addr, rd(addr, 4), rd((addr + 4) & 0xFFFFFFFF, 4)


def try_read_desc(cpu, sel: int):
    """For LAR/LSL/VERR/VERW: the descriptor, or None when the selector is null or outside its
    table (those instructions clear ZF instead of faulting)."""
    if not sel & 0xFFFC:
        return None
    idx = sel & 0xFFF8
    if sel & 4:
        ldt = cpu.ldtr
        if not ldt[0] & 0xFFFC or not ldt[3] & A_P:
            return None
        base, limit = ldt[1], ldt[2]
    else:
        base, limit = cpu.gdtr
    if idx + 7 > limit:
        return None
    addr = (base + idx) & 0xFFFFFFFF
    rd = cpu.mmu.read_sup
    return addr, rd(addr, 4), rd((addr + 4) & 0xFFFFFFFF, 4)


def set_accessed(cpu, addr: int, hi: int) -> None:
    if not hi & 0x100:
        cpu.mmu.write_sup((addr + 5) & 0xFFFFFFFF, 1, ((hi >> 8) & 0xFF) | 1)


def cs_attr(a: int, cpl: int) -> int:
    """The CS cache attribute for code descriptor attribute ``a`` entered at ``cpl``."""
    if a & A_DC:                                     # conforming: runs at the caller's CPL
        a = (a & ~0x60) | (cpl << 5)
    return a | A_ACCESSED


def load_cs(cpu, sel: int, addr: int, lo: int, hi: int, cpl: int) -> None:
    """Commit a checked code descriptor to CS at privilege ``cpl`` (RPL := CPL)."""
    set_accessed(cpu, addr, hi)
    cpu.set_seg_cache(CS, (sel & 0xFFFC) | cpl, d_base(lo, hi), d_limit(lo, hi),
                      cs_attr(d_attr(hi), cpl))


def load_ss_desc(cpu, sel: int, addr: int, lo: int, hi: int) -> None:
    set_accessed(cpu, addr, hi)
    cpu.set_seg_cache(SS_, sel, d_base(lo, hi), d_limit(lo, hi), d_attr(hi) | A_ACCESSED)


def set_null(cpu, s: int, sel: int = 0) -> None:
    """Load a null selector: the register becomes unusable."""
    cpu.set_seg_cache(s, sel & 0xFFFF, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Data and stack segment loads (MOV/POP/LxS, task switches)
# ---------------------------------------------------------------------------------------------
def check_data_seg(cpu, s: int, sel: int, cpl: int, inv: int = GP):
    """Run the SDM checks for loading ``sel`` into data/stack register ``s`` at ``cpl``.
    Returns the descriptor (addr, lo, hi), or None for a (legal) null selector.  ``inv`` is the
    vector for invalid selectors: #GP for MOV/POP/LxS, #TS during a task switch."""
    code = sel & 0xFFFC
    if not code:
        if s == SS_:
            raise CPUFault(inv, 0)
        return None
    addr, lo, hi = read_desc(cpu, sel, inv)
    a = d_attr(hi)
    dpl = (a >> 5) & 3
    rpl = sel & 3
    if s == SS_:
        if rpl != cpl or (a & (A_S | A_CODE | A_RW)) != (A_S | A_RW) or dpl != cpl:
            raise CPUFault(inv, code)
        if not a & A_P:
            raise CPUFault(SS, code)
    else:
        if not a & A_S or (a & A_CODE and not a & A_RW):
            raise CPUFault(inv, code)
        if not (a & A_CODE and a & A_DC) and (rpl > dpl or cpl > dpl):
            raise CPUFault(inv, code)
        if not a & A_P:
            raise CPUFault(NP, code)
    return addr, lo, hi


def load_data_seg(cpu, s: int, sel: int, inv: int = GP, cpl: int | None = None) -> None:
    """MOV/POP/LxS to DS/ES/FS/GS/SS in protected mode, with every check (SDM MOV, POP)."""
    sel &= 0xFFFF
    d = check_data_seg(cpu, s, sel, cpu.cpl if cpl is None else cpl, inv)
    if d is None:
        set_null(cpu, s, sel)
        return
    addr, lo, hi = d
    set_accessed(cpu, addr, hi)
    cpu.set_seg_cache(s, sel, d_base(lo, hi), d_limit(lo, hi), d_attr(hi) | A_ACCESSED)


def null_outer_data_segs(cpu, cpl: int) -> None:
    """After a return to an outer level: data segment registers (and non-conforming code) whose
    DPL is below the new CPL are loaded with the null selector (SDM RET, IRET)."""
    for s in (ES, DS, FSEG, GSEG):
        a = cpu.attr[s]
        if not a & A_P and not cpu.sel[s] & 0xFFFC:
            continue
        dpl = (a >> 5) & 3
        if (not a & A_CODE or not a & A_DC) and dpl < cpl:
            set_null(cpu, s, 0)


# ---------------------------------------------------------------------------------------------
# Stacks
# ---------------------------------------------------------------------------------------------
def stack_bounds(limit: int, attr: int):
    """Valid offsets (lo, hi) of a stack (data) segment."""
    if not attr & A_CODE and attr & A_DC:               # expand-down
        return limit + 1, (0xFFFFFFFF if attr & A_DB else 0xFFFF)
    return 0, limit


def push_frame(cpu, base: int, limit: int, attr: int, esp: int, values, size: int,
               user: bool, vec: int = SS, code: int = 0) -> int:
    """Push ``values`` (first value pushed first) of ``size`` bytes each onto the stack segment
    described by base/limit/attr below ``esp``.  Every slot's limit and page are checked before
    anything is written (``vec(code)`` on a limit violation).  Returns the new ESP."""
    big = attr & A_DB
    mask = 0xFFFFFFFF if big else 0xFFFF
    lo, hi = stack_bounds(limit, attr)
    sp = esp & mask
    offs = []
    for _ in values:
        sp = (sp - size) & mask
        if sp < lo or sp + size - 1 > hi:
            raise CPUFault(vec, code)
        offs.append(sp)
    mmu = cpu.mmu
    saved = mmu.user
    mmu.user = user
    try:
        for off in offs:
            mmu.probe_write((base + off) & 0xFFFFFFFF, size)
        if size == 4:
            for off, v in zip(offs, values):
                mmu.write32((base + off) & 0xFFFFFFFF, v & 0xFFFFFFFF)
        else:
            for off, v in zip(offs, values):
                mmu.write16((base + off) & 0xFFFFFFFF, v & 0xFFFF)
    finally:
        mmu.user = saved
    return (esp & ~mask & 0xFFFFFFFF) | sp


def push_current(cpu, values, size: int, vec: int = SS, code: int = 0) -> None:
    """Push onto the current stack with all-or-nothing checks."""
    s = SS_
    cpu.R[4] = push_frame(cpu, cpu.base[s], cpu.limit[s], cpu.attr[s], cpu.R[4], values, size,
                          cpu.cpl == 3, vec, code)


def tss_stack(cpu, level: int, ext: int = 0):
    """(SS, ESP) for privilege ``level`` from the current TSS (#TS(TR) past its limit)."""
    tsel, tbase, tlimit, tattr = cpu.tr
    rd = cpu.mmu.read_sup
    if tattr & 8:                                       # 32-bit TSS
        off = 8 * level + 4
        if off + 7 > tlimit:
            raise CPUFault(TS, (tsel & 0xFFFC) | ext)
        return rd((tbase + off + 4) & 0xFFFFFFFF, 2), rd((tbase + off) & 0xFFFFFFFF, 4)
    off = 4 * level + 2
    if off + 3 > tlimit:
        raise CPUFault(TS, (tsel & 0xFFFC) | ext)
    return rd((tbase + off + 2) & 0xFFFFFFFF, 2), rd((tbase + off) & 0xFFFFFFFF, 2)


def check_inner_ss(cpu, ss_sel: int, level: int, ext: int = 0):
    """Checks on the stack segment taken from the TSS for an inner-level transfer."""
    if not ss_sel & 0xFFFC:
        raise CPUFault(TS, ext)
    addr, lo, hi = read_desc(cpu, ss_sel, TS, ext)
    a = d_attr(hi)
    if (ss_sel & 3) != level or ((a >> 5) & 3) != level or \
            (a & (A_S | A_CODE | A_RW)) != (A_S | A_RW):
        raise CPUFault(TS, (ss_sel & 0xFFFC) | ext)
    if not a & A_P:
        raise CPUFault(SS, (ss_sel & 0xFFFC) | ext)
    return addr, lo, hi


# ---------------------------------------------------------------------------------------------
# Checks shared by far RET and IRET
# ---------------------------------------------------------------------------------------------
def check_return_cs(cpu, sel: int, cpl: int):
    """Checks on the CS popped by RETF / IRET (SDM RET, IRET)."""
    if not sel & 0xFFFC:
        raise CPUFault(GP, 0)
    addr, lo, hi = read_desc(cpu, sel)
    a = d_attr(hi)
    rpl = sel & 3
    dpl = (a >> 5) & 3
    code = sel & 0xFFFC
    if (a & (A_S | A_CODE)) != (A_S | A_CODE) or rpl < cpl:
        raise CPUFault(GP, code)
    if (a & A_DC and dpl > rpl) or (not a & A_DC and dpl != rpl):
        raise CPUFault(GP, code)
    if not a & A_P:
        raise CPUFault(NP, code)
    return addr, lo, hi, rpl


def check_outer_ss(cpu, ss_sel: int, rpl: int):
    if not ss_sel & 0xFFFC:
        raise CPUFault(GP, 0)
    addr, lo, hi = read_desc(cpu, ss_sel)
    a = d_attr(hi)
    code = ss_sel & 0xFFFC
    if (ss_sel & 3) != rpl or (a & (A_S | A_CODE | A_RW)) != (A_S | A_RW) or \
            ((a >> 5) & 3) != rpl:
        raise CPUFault(GP, code)
    if not a & A_P:
        raise CPUFault(SS, code)
    return addr, lo, hi
