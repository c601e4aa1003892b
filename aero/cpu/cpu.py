"""The CPU: architectural state, memory access through segments, and the run loop.

Execution model (see README "How the CPU runs"): code is decoded once into *blocks* of
instructions, each instruction compiled from its semantic template (``aero.cpu.sem``) into a
small Python closure.  ``run(budget)`` executes blocks until the retired-instruction budget is
spent, the CPU halts, or something asks it to stop.  Interrupts are recognised at instruction
boundaries: every instruction that can change whether one is deliverable ends its block, so
checking between blocks is the same as checking after every instruction.  There are no debugger
checks in this loop.
"""

from __future__ import annotations

from .faults import (CPUFault, TripleFault, BlockExit, EmulatorError, HAS_ERROR_CODE,
                     CONTRIBUTORY, DF, PF, GP, SS, DB, AC)
from . import flags as F
from .decoder import decode

ES, CS, SS_, DS, FSEG, GSEG = range(6)
SEG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")
REG32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")

# Descriptor attribute bits as kept in the segment caches (bits 8-23 of a descriptor's high
# dword, shifted down by 8): type 0-3, S 4, DPL 5-6, P 7, AVL 12, D/B 14, G 15.
A_ACCESSED, A_RW, A_DC, A_CODE, A_S, A_P, A_DB, A_G = 0x1, 0x2, 0x4, 0x8, 0x10, 0x80, 0x4000, 0x8000

CR0_PE, CR0_MP, CR0_EM, CR0_TS, CR0_ET, CR0_NE, CR0_WP, CR0_AM, CR0_NW, CR0_CD, CR0_PG = (
    1, 2, 4, 8, 0x10, 0x20, 0x10000, 0x40000, 0x20000000, 0x40000000, 0x80000000)

MAX_BLOCK = 64           # instructions per block at most
# Control transfers after which the run loop must re-check mode, interrupts and TF.
FAR_OR_SYS = frozenset(("CALLF", "CALLF_M", "JMPF", "JMPF_M", "RETF", "IRET", "INT", "INT3",
                        "INTO", "INT1", "SYSENTER", "SYSEXIT", "UD2", "BOUND"))


class Block:
    __slots__ = ("ops", "orig", "eips", "end_eip", "sets_eip", "rep", "phys", "pend", "key",
                 "insns", "check", "gen")


def _stop_op():
    raise BlockExit()


def _aligned(read, mask):
    def checked(lin):
        if lin & mask:
            raise CPUFault(AC, 0)
        return read(lin)
    return checked


def _aligned_w(write, mask):
    def checked(lin, v):
        if lin & mask:
            raise CPUFault(AC, 0)
        write(lin, v)
    return checked


class CPU:
    """An i686-class CPU (integer unit; no FPU, no APIC yet)."""

    def __init__(self, bus, mmu_factory=None):
        from ..mem.mmu import MMU
        self.bus = bus
        bus.on_code_write = self._code_written
        self.mmu = (mmu_factory or MMU)(self, bus)
        bus.on_a20_change = self.mmu.a20_changed
        self.ac_on = False
        self.dbg_bps = []                 # enabled DR0-DR3 breakpoints (see debugregs.py)
        self.dbg_hits = 0
        self.mem_rebind()
        self.R = [0] * 8
        self.blocks: dict[int, Block] = {}
        self.page_blocks: dict[int, list] = {}
        self.code_bytes: dict[int, bytearray] = {}
        self.cur_block = None
        self.msr: dict[int, int] = {}
        self.tsc_offset = 0
        self.intr = False                 # the INTR line (from the PIC)
        self.nmi_pending = False
        self.iack = None                  # callback: acknowledge INTR, return the vector
        self.port_in = lambda port, size: (1 << (8 * size)) - 1
        self.port_out = lambda port, size, value: None
        self.on_shutdown = None           # called on triple fault
        self.stop_requested = False
        self.target = 0                   # the instruction count the current run() stops at
        self.attn = False                 # set by the outside world: re-check before next block
        self.idle_time = 0                # virtual instructions skipped while halted
        self.reset()

    # ------------------------------------------------------------------------------------------
    # Reset and state
    # ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / RESET state (SDM Vol. 3, Table 9-1)."""
        R = self.R
        R[:] = [0] * 8
        R[2] = 0x00000663                 # EDX: family 6, model 6, stepping 3 (matches CPUID)
        self.eip = 0xFFF0
        self.flags = F.FIXED1
        self.lf = None
        self.sel = [0] * 6
        self.base = [0] * 6
        self.limit = [0xFFFF] * 6
        self.attr = [A_P | A_S | A_RW | A_ACCESSED] * 6
        self.attr[CS] = A_P | A_S | A_CODE | A_RW | A_ACCESSED
        self.sel[CS] = 0xF000
        self.base[CS] = 0xFFFF0000
        self.rlo = [0] * 6
        self.rhi = [0xFFFF] * 6
        self.wlo = [0] * 6
        self.whi = [0xFFFF] * 6
        self.cr0 = CR0_ET | CR0_CD | CR0_NW
        self.cr2 = self.cr3 = self.cr4 = 0
        self.dr = [0, 0, 0, 0, 0xFFFF0FF0, 0x400, 0xFFFF0FF0, 0x400]
        self.efer = 0
        self.gdtr = [0, 0xFFFF]           # base, limit
        self.idtr = [0, 0x3FF]
        self.ldtr = [0, 0, 0xFFFF, 0x82 | A_P]   # selector, base, limit, attr
        self.tr = [0, 0, 0xFFFF, 0x8B]
        self.cpl = 0
        self.halted = False
        self.shadow = False               # interrupt shadow after STI / MOV SS / POP SS
        self.icount = 0
        self.rep_budget = 1
        self.rep_done = 1
        self.sysenter = [0, 0, 0]         # CS, ESP, EIP MSRs
        self.msr.clear()
        self.flush_blocks()
        self.mmu.reset()
        for s in range(6):
            self._refresh_seg(s)

    # Modes --------------------------------------------------------------------------------------
    @property
    def pe(self) -> bool:
        return bool(self.cr0 & CR0_PE)

    @property
    def vm86(self) -> bool:
        return bool(self.flags & F.VM)

    @property
    def code32(self) -> bool:
        # The cached CS.D decides, in real mode too (a real-mode CS load clears it; code left
        # running in a 32-bit segment after clearing CR0.PE still decodes as 32-bit).
        return not (self.flags & F.VM) and bool(self.attr[CS] & A_DB)

    @property
    def stack32(self) -> bool:
        return bool(self.attr[SS_] & A_DB)

    @property
    def mode(self) -> str:
        if not self.cr0 & CR0_PE:
            return "real"
        if self.flags & F.VM:
            return "v86"
        return "protected32" if self.attr[CS] & A_DB else "protected16"

    # ------------------------------------------------------------------------------------------
    # Flags
    # ------------------------------------------------------------------------------------------
    def get_flags(self) -> int:
        """The whole EFLAGS value (materialises lazy arithmetic flags)."""
        lf = self.lf
        if lf is not None:
            self.flags = (self.flags & ~F.ARITH) | F.arith(lf)
            self.lf = None
        return self.flags

    def set_arith(self, bits: int, mask: int = F.ARITH) -> None:
        """Set the arithmetic flags in ``mask`` to ``bits``, keeping the others."""
        f = self.get_flags()
        self.flags = (f & ~mask) | (bits & mask)

    def write_flags(self, value: int, mask: int) -> None:
        """Write EFLAGS bits in ``mask`` (already restricted by the caller's privilege rules)."""
        f = self.get_flags()
        new = ((f & ~mask) | (value & mask)) & F.WRITABLE | F.FIXED1
        old = self.flags
        self.flags = new
        if (old ^ new) & F.VM:
            self.mode_changed()

    # ------------------------------------------------------------------------------------------
    # Segments
    # ------------------------------------------------------------------------------------------
    def _refresh_seg(self, s: int) -> None:
        """Recompute the offset ranges allowed for reads and writes through segment ``s``."""
        a = self.attr[s]
        lim = self.limit[s]
        pm = self.cr0 & CR0_PE and not self.flags & F.VM
        if pm and not (self.sel[s] & 0xFFFC) and s != CS and not (a & A_P):
            self.rlo[s], self.rhi[s], self.wlo[s], self.whi[s] = 1, -1, 1, -1   # null: unusable
            return
        top = 0xFFFFFFFF if a & A_DB else 0xFFFF
        if not (a & A_CODE) and a & A_DC:                    # expand-down data
            lo, hi = lim + 1, top
        else:
            lo, hi = 0, lim
        self.rlo[s], self.rhi[s] = (lo, hi) if (not a & A_CODE or a & A_RW) else (1, -1)
        self.wlo[s], self.whi[s] = (lo, hi) if (not a & A_CODE and a & A_RW) else (1, -1)
        if not pm:                                           # real / V86: attributes not checked
            self.rlo[s], self.rhi[s] = lo, hi
            self.wlo[s], self.whi[s] = lo, hi

    def load_seg_real(self, s: int, sel: int) -> None:
        """A segment load in real or V86 mode: base = selector * 16.  The limit and attributes
        stay as the cache holds them in real mode ("unreal" mode); V86 forces 64 KiB, DPL 3."""
        sel &= 0xFFFF
        self.sel[s] = sel
        self.base[s] = sel << 4
        if self.flags & F.VM:
            self.limit[s] = 0xFFFF
            self.attr[s] = (A_P | A_S | A_RW | A_ACCESSED | 0x60) | (A_CODE if s == CS else 0)
        elif s == CS:
            self.attr[s] = (self.attr[s] | A_P | A_S | A_CODE | A_RW) & ~A_DB & 0xFFFF
        self._refresh_seg(s)
        if s == CS:
            self.mode_changed()

    def load_seg(self, s: int, sel: int) -> None:
        """MOV/POP/LxS to a data or stack segment register, in any mode."""
        if not self.cr0 & CR0_PE or self.flags & F.VM:
            self.load_seg_real(s, sel)
            if s == SS_:
                self.mode_changed()
            return
        from .segmentation import load_data_seg
        load_data_seg(self, s, sel)

    def set_seg_cache(self, s: int, sel: int, base: int, limit: int, attr: int) -> None:
        self.sel[s] = sel
        self.base[s] = base
        self.limit[s] = limit
        self.attr[s] = attr
        self._refresh_seg(s)
        if s in (CS, SS_):
            self.mode_changed()

    def seg_fault(self, s: int, off: int, size: int, write: bool):
        """A segment limit/type violation: #SS(0) for SS, #GP(0) otherwise."""
        raise CPUFault(SS if s == SS_ else GP, 0)

    def mode_changed(self) -> None:
        """CR0, EFLAGS.VM, CS or SS changed: cached decisions may differ now."""
        self.cpl = self._compute_cpl()
        for s in range(6):
            self._refresh_seg(s)
        self.mmu.user = self.cpl == 3

    def _compute_cpl(self) -> int:
        if not self.cr0 & CR0_PE:
            return 0
        if self.flags & F.VM:
            return 3
        return (self.attr[CS] >> 5) & 3

    # ------------------------------------------------------------------------------------------
    # Memory through segments (the templates call these)
    # ------------------------------------------------------------------------------------------
    def mem_rebind(self) -> None:
        """The MMU changed its access functions (paging or A20 toggled): cache them."""
        m = self.mmu
        self._r8, self._r16, self._r32 = m.read8, m.read16, m.read32
        self._w8, self._w16, self._w32 = m.write8, m.write16, m.write32
        self._m8, self._m16, self._m32 = m.rmw8, m.rmw16, m.rmw32
        if self.ac_on:
            self._r16, self._r32 = _aligned(m.read16, 1), _aligned(m.read32, 3)
            self._w16, self._w32 = _aligned_w(m.write16, 1), _aligned_w(m.write32, 3)
            self._m16, self._m32 = _aligned(m.rmw16, 1), _aligned(m.rmw32, 3)
        if self.dbg_bps:
            from .debugregs import watch
            self._r8, self._r16, self._r32 = (watch(self, self._r8, 1, False),
                                              watch(self, self._r16, 2, False),
                                              watch(self, self._r32, 4, False))
            self._m8, self._m16, self._m32 = (watch(self, self._m8, 1, False),
                                              watch(self, self._m16, 2, False),
                                              watch(self, self._m32, 4, False))
            self._w8, self._w16, self._w32 = (watch(self, self._w8, 1, True),
                                              watch(self, self._w16, 2, True),
                                              watch(self, self._w32, 4, True))

    def _update_alignment_check(self) -> None:
        """#AC checking is on when CR0.AM, EFLAGS.AC and CPL 3 (SDM Vol. 3, 6.15 #AC).  It can
        only change in instructions that end a checked block, so the run loop calls this there."""
        ac = bool(self.cr0 & CR0_AM and self.flags & F.AC and self.cpl == 3)
        if ac != self.ac_on:
            self.ac_on = ac
            self.mem_rebind()

    def rd8(self, s: int, off: int) -> int:
        if off < self.rlo[s] or off > self.rhi[s]:
            self.seg_fault(s, off, 1, False)
        return self._r8((self.base[s] + off) & 0xFFFFFFFF)

    def rd16(self, s: int, off: int) -> int:
        if off < self.rlo[s] or off + 1 > self.rhi[s]:
            self.seg_fault(s, off, 2, False)
        return self._r16((self.base[s] + off) & 0xFFFFFFFF)

    def rd32(self, s: int, off: int) -> int:
        if off < self.rlo[s] or off + 3 > self.rhi[s]:
            self.seg_fault(s, off, 4, False)
        return self._r32((self.base[s] + off) & 0xFFFFFFFF)

    def wr8(self, s: int, off: int, v: int) -> None:
        if off < self.wlo[s] or off > self.whi[s]:
            self.seg_fault(s, off, 1, True)
        self._w8((self.base[s] + off) & 0xFFFFFFFF, v)

    def wr16(self, s: int, off: int, v: int) -> None:
        if off < self.wlo[s] or off + 1 > self.whi[s]:
            self.seg_fault(s, off, 2, True)
        self._w16((self.base[s] + off) & 0xFFFFFFFF, v)

    def wr32(self, s: int, off: int, v: int) -> None:
        if off < self.wlo[s] or off + 3 > self.whi[s]:
            self.seg_fault(s, off, 4, True)
        self._w32((self.base[s] + off) & 0xFFFFFFFF, v)

    def rmw8(self, s: int, off: int) -> int:
        """Read the destination of a read-modify-write: checked as a write."""
        if off < self.wlo[s] or off > self.whi[s]:
            self.seg_fault(s, off, 1, True)
        return self._m8((self.base[s] + off) & 0xFFFFFFFF)

    def rmw16(self, s: int, off: int) -> int:
        if off < self.wlo[s] or off + 1 > self.whi[s]:
            self.seg_fault(s, off, 2, True)
        return self._m16((self.base[s] + off) & 0xFFFFFFFF)

    def rmw32(self, s: int, off: int) -> int:
        if off < self.wlo[s] or off + 3 > self.whi[s]:
            self.seg_fault(s, off, 4, True)
        return self._m32((self.base[s] + off) & 0xFFFFFFFF)

    def check_write(self, s: int, off: int, size: int) -> None:
        """Probe that a write would succeed (segment and page), without writing: used before
        multi-part updates so that a fault leaves no partial state."""
        if off < self.wlo[s] or off + size - 1 > self.whi[s]:
            self.seg_fault(s, off, size, True)
        self.mmu.probe_write((self.base[s] + off) & 0xFFFFFFFF, size)

    # Stack ----------------------------------------------------------------------------------------
    def push16(self, v: int) -> None:
        R = self.R
        if self.attr[SS_] & A_DB:
            sp = (R[4] - 2) & 0xFFFFFFFF
        else:
            sp = (R[4] - 2) & 0xFFFF
        if sp < self.wlo[SS_] or sp + 1 > self.whi[SS_]:
            self.seg_fault(SS_, sp, 2, True)
        self._w16((self.base[SS_] + sp) & 0xFFFFFFFF, v)
        R[4] = sp if self.attr[SS_] & A_DB else (R[4] & 0xFFFF0000) | sp

    def push32(self, v: int) -> None:
        R = self.R
        if self.attr[SS_] & A_DB:
            sp = (R[4] - 4) & 0xFFFFFFFF
        else:
            sp = (R[4] - 4) & 0xFFFF
        if sp < self.wlo[SS_] or sp + 3 > self.whi[SS_]:
            self.seg_fault(SS_, sp, 4, True)
        self._w32((self.base[SS_] + sp) & 0xFFFFFFFF, v)
        R[4] = sp if self.attr[SS_] & A_DB else (R[4] & 0xFFFF0000) | sp

    def push(self, v: int, size: int) -> None:
        if size == 32:
            self.push32(v)
        else:
            self.push16(v)

    def pop16(self) -> int:
        R = self.R
        big = self.attr[SS_] & A_DB
        sp = R[4] if big else R[4] & 0xFFFF
        if sp < self.rlo[SS_] or sp + 1 > self.rhi[SS_]:
            self.seg_fault(SS_, sp, 2, False)
        v = self._r16((self.base[SS_] + sp) & 0xFFFFFFFF)
        R[4] = (sp + 2) & 0xFFFFFFFF if big else (R[4] & 0xFFFF0000) | ((sp + 2) & 0xFFFF)
        return v

    def pop32(self) -> int:
        R = self.R
        big = self.attr[SS_] & A_DB
        sp = R[4] if big else R[4] & 0xFFFF
        if sp < self.rlo[SS_] or sp + 3 > self.rhi[SS_]:
            self.seg_fault(SS_, sp, 4, False)
        v = self._r32((self.base[SS_] + sp) & 0xFFFFFFFF)
        R[4] = (sp + 4) & 0xFFFFFFFF if big else (R[4] & 0xFFFF0000) | ((sp + 4) & 0xFFFF)
        return v

    def pop(self, size: int) -> int:
        return self.pop32() if size == 32 else self.pop16()

    def stack_read(self, offset: int, size: int) -> int:
        """Read ``size`` bits at [ESP + offset] without popping (for multi-pop instructions that
        must not change ESP until every read has succeeded)."""
        sp = self.R[4] + offset
        sp &= 0xFFFFFFFF if self.attr[SS_] & A_DB else 0xFFFF
        n = size >> 3
        if sp < self.rlo[SS_] or sp + n - 1 > self.rhi[SS_]:
            self.seg_fault(SS_, sp, n, False)
        lin = (self.base[SS_] + sp) & 0xFFFFFFFF
        return self._r32(lin) if size == 32 else self._r16(lin)

    def stack_add(self, n: int) -> None:
        R = self.R
        if self.attr[SS_] & A_DB:
            R[4] = (R[4] + n) & 0xFFFFFFFF
        else:
            R[4] = (R[4] & 0xFFFF0000) | ((R[4] + n) & 0xFFFF)

    # ------------------------------------------------------------------------------------------
    # Blocks: decode, compile, cache, invalidate
    # ------------------------------------------------------------------------------------------
    def flush_blocks(self) -> None:
        for blk in self.blocks.values():
            blk.ops[:] = [_stop_op] * len(blk.ops)
        self.blocks.clear()
        for p in self.page_blocks:
            self.bus.code[p] = 0
        self.page_blocks.clear()
        self.code_bytes.clear()

    def fetch_phys(self, off: int) -> int:
        """Physical address of the code byte at CS:off (segment limit and paging checked)."""
        if off > self.limit[CS]:
            raise CPUFault(GP, 0)
        return self.mmu.translate_fetch((self.base[CS] + off) & 0xFFFFFFFF)

    def _compile_block(self, key: int) -> Block:
        from .codegen import compile_insn
        code32 = self.code32
        emask = 0xFFFFFFFF if code32 else 0xFFFF
        eip = self.eip
        bus = self.bus
        blk = Block()
        blk.key = key
        ops, eips, insns = [], [], []
        pages = set()
        start_lin_page = (self.base[CS] + eip) >> 12

        ends = None
        while True:
            phys_of = {}

            def fetch(i, _eip=eip):
                p = self.fetch_phys((_eip + i) & emask)
                phys_of[i] = p
                return bus.read8(p)
            try:
                ins = decode(fetch, eip, code32)
            except CPUFault:
                if not ops:
                    raise
                break                       # the fault belongs to the next block's first insn
            if not ops:
                blk.phys = phys_of[0]
            pages.update(phys_of.values())
            op, ends = compile_insn(self, ins, code32)
            insns.append(ins)
            eips.append(eip)
            ops.append(op)
            eip = (eip + ins.length) & emask
            if ends is not None or len(ops) >= MAX_BLOCK:
                break
            if (self.base[CS] + eip) >> 12 != start_lin_page:
                break
        blk.sets_eip = ends in ("jump", "cond", "rep")
        blk.rep = ends == "rep"
        # after this block the run loop re-checks interrupts, mode and TF
        blk.check = ends in ("sync", "rep") or (ends == "jump" and ins.entry.name in FAR_OR_SYS)
        blk.gen = self.mmu.gen
        blk.ops = ops
        blk.orig = list(ops)
        blk.eips = eips
        blk.insns = insns
        blk.end_eip = eip
        # register the code bytes for self-modifying-code detection
        for p in pages:
            page = p >> 12
            bus.code[page] = 1
            self.page_blocks.setdefault(page, []).append(blk)
            cb = self.code_bytes.get(page)
            if cb is None:
                cb = self.code_bytes[page] = bytearray(4096)
            cb[p & 0xFFF] = 1
        blk.pend = pages
        self.blocks[key] = blk
        return blk

    def _code_written(self, addr: int, size: int) -> None:
        page = addr >> 12
        cb = self.code_bytes.get(page)
        if cb is None:
            return
        off = addr & 0xFFF
        if not any(cb[off: off + size]):
            return
        blocks = self.page_blocks.pop(page, [])
        self.bus.code[page] = 0
        del self.code_bytes[page]
        for blk in blocks:
            if self.blocks.get(blk.key) is blk:
                del self.blocks[blk.key]
            blk.ops[:] = [_stop_op] * len(blk.ops)
            for p in blk.pend:
                other = p >> 12
                if other != page and other in self.page_blocks:
                    lst = self.page_blocks[other]
                    if blk in lst:
                        lst.remove(blk)

    def set_intr(self, level: bool) -> None:
        """The INTR line (driven by the interrupt controller)."""
        self.intr = level
        if level:
            self.attn = True
            if self.cur_block is not None:
                self.request_exit()

    def raise_nmi(self) -> None:
        self.nmi_pending = True
        self.attn = True
        if self.cur_block is not None:
            self.request_exit()

    def request_stop(self) -> None:
        """Ask run() to return "stop" at the next instruction boundary (host side)."""
        self.stop_requested = True
        self.attn = True
        if self.cur_block is not None:
            self.request_exit()

    def request_exit(self) -> None:
        """Stop the running block at the next instruction boundary (a device raised an
        interrupt line from inside an instruction, or the host wants control)."""
        blk = self.cur_block
        if blk is not None:
            blk.ops[:] = [_stop_op] * len(blk.ops)

    # ------------------------------------------------------------------------------------------
    # The run loop
    # ------------------------------------------------------------------------------------------
    def run(self, budget: int) -> str:
        """Execute until ``budget`` instructions have retired.  Returns why it stopped:
        "budget", "halt" (HLT with nothing to wake it), "shutdown" (triple fault), "stop".

        After a block whose last instruction can change interrupt deliverability, the mode, CS
        or EFLAGS.TF (``blk.check``), after an exception, and whenever ``attn`` is set by the
        outside world (an interrupt line raised, a stop requested), the slow checks run;
        otherwise the loop goes straight from block to block."""
        self.target = self.icount + budget       # a device may pull it in (Clock.schedule)
        blocks = self.blocks
        mmu = self.mmu
        self.stop_requested = False
        check = True
        cs_key = 0
        while True:
            icount = self.icount
            remaining = self.target - icount
            if remaining <= 0:
                return "budget"
            if check or self.attn:
                self.attn = False
                if self.stop_requested:
                    return "stop"
                if self.shadow:                   # one instruction with interrupts inhibited
                    self.shadow = False
                    if self._step_one(remaining):
                        return "shutdown"
                    continue
                if self.intr and self.flags & F.IF or self.nmi_pending:
                    if self._take_interrupt():
                        return "shutdown"
                if self.halted:
                    return "halt"
                if self.dr[7] & 0xFF or self.dbg_bps:
                    self._update_breakpoints()
                if self.flags & F.TF or self.dbg_bps:
                    if self._step_one(remaining, trap=True):
                        return "shutdown"
                    continue
                code32 = self.attr[CS] & A_DB and not self.flags & F.VM
                cs_key = (self.base[CS] << 33) | (1 if code32 else 0)
                if self.ac_on or self.cr0 & CR0_AM:
                    self._update_alignment_check()
                check = False
            eip = self.eip
            key = cs_key | (eip << 1)
            blk = blocks.get(key)
            if blk is None or (blk.gen != mmu.gen and mmu.paging):
                try:
                    if blk is None:
                        blk = self._compile_block(key)
                    elif mmu.translate_fetch((self.base[CS] + eip) & 0xFFFFFFFF) != blk.phys:
                        del blocks[key]
                        blk = self._compile_block(key)
                    else:
                        blk.gen = mmu.gen
                except CPUFault as e:
                    self.icount = icount + 1
                    check = True
                    if self._deliver_fault(e):
                        return "shutdown"
                    continue
            ops = blk.ops
            if len(ops) > remaining:
                check = True
                if self._run_partial(blk, remaining):
                    return "shutdown"
                continue
            if blk.rep:
                self.rep_budget = remaining - len(ops) + 1
                self.rep_done = 0
            self.cur_block = blk
            n = 0
            try:
                for f in ops:
                    f()
                    n += 1
            except CPUFault as e:
                self.cur_block = None
                self.eip = blk.eips[n]
                # the fault counts one; REP iterations completed before it count too
                self.icount = icount + n + 1 + (self.rep_done if blk.rep else 0)
                check = True
                if self._deliver_fault(e):
                    return "shutdown"
                continue
            except BlockExit:
                self.cur_block = None
                self.eip = blk.eips[n]
                self.icount = icount + n
                check = True
                if blk.ops is not blk.orig and blocks.get(blk.key) is blk:
                    blk.ops[:] = blk.orig
                continue
            except (TripleFault, EmulatorError, KeyboardInterrupt):
                self.cur_block = None
                self.eip = blk.eips[n]
                self.icount = icount + n
                raise
            except Exception as e:
                self.cur_block = None
                self.eip = blk.eips[n]
                self.icount = icount + n
                raise EmulatorError(self.bug_report(e, blk.insns[n])) from e
            self.cur_block = None
            if blk.rep:
                n += self.rep_done - 1
            elif not blk.sets_eip:
                self.eip = blk.end_eip
            self.icount = icount + n
            check = blk.check

    def _run_partial(self, blk: Block, k: int) -> bool:
        """Execute the first ``k`` instructions of a block (budget boundary)."""
        n = 0
        ops = blk.ops
        if k == len(ops) and blk.rep:
            self.rep_budget = 1
            self.rep_done = 0
        self.cur_block = blk if k == len(ops) else None
        try:
            for i in range(k):
                ops[i]()
                n += 1
        except CPUFault as e:
            self.cur_block = None
            self.eip = blk.eips[n]
            self.icount += n + 1 + (self.rep_done if blk.rep and k == len(ops) else 0)
            return self._deliver_fault(e)
        except BlockExit:
            self.cur_block = None
            self.eip = blk.eips[n]
            self.icount += n
            if self.blocks.get(blk.key) is blk:
                blk.ops[:] = blk.orig
            return False
        except (TripleFault, EmulatorError, KeyboardInterrupt):
            self.cur_block = None
            self.eip = blk.eips[n]
            self.icount += n
            raise
        except Exception as e:
            self.cur_block = None
            self.eip = blk.eips[n]
            self.icount += n
            raise EmulatorError(self.bug_report(e, blk.insns[n])) from e
        self.cur_block = None
        if k < len(ops) or not blk.sets_eip:
            self.eip = blk.end_eip if k == len(ops) else blk.eips[k]
        if k == len(ops) and blk.rep:
            n += self.rep_done - 1
        self.icount += n
        return False

    def _update_breakpoints(self) -> None:
        """DR7 can only change in instructions that end a checked block (MOV DR7, task
        switches), so the run loop calls this in its slow path."""
        from .debugregs import breakpoints
        bps = breakpoints(self.dr[7], self.dr)
        if bps != self.dbg_bps:
            self.dbg_bps = bps
            self.mem_rebind()

    def _step_one(self, remaining: int, trap: bool = False) -> bool:
        """Execute exactly one instruction (interrupt shadow, TF single-step, guest debug
        registers)."""
        eip = self.eip
        rf = self.flags & F.RF
        if self.dbg_bps and not rf:
            from .debugregs import exec_hits
            hits = exec_hits(self.dbg_bps, (self.base[CS] + eip) & 0xFFFFFFFF)
            if hits:                                      # instruction breakpoint: a fault
                self.dr[6] = (self.dr[6] & ~0xF) | hits
                self.icount += 1
                return self._deliver_fault(CPUFault(DB))
        self.dbg_hits = 0
        try:
            from .codegen import compile_insn
            code32 = self.code32
            emask = 0xFFFFFFFF if code32 else 0xFFFF
            ins = decode(lambda i: self.bus.read8(self.fetch_phys((eip + i) & emask)), eip, code32)
            op, ends = compile_insn(self, ins, code32)
        except CPUFault as e:
            self.icount += 1
            return self._deliver_fault(e)
        self.rep_budget = 1
        self.rep_done = 0
        tf = self.flags & F.TF
        try:
            op()
        except CPUFault as e:
            self.eip = eip
            self.icount += 1 + (self.rep_done if ends == "rep" else 0)
            return self._deliver_fault(e)
        except BlockExit:
            self.eip = eip
            return False
        except (TripleFault, EmulatorError, KeyboardInterrupt):
            self.eip = eip
            raise
        except Exception as e:
            self.eip = eip
            raise EmulatorError(self.bug_report(e, ins)) from e
        if ends not in ("jump", "cond", "rep"):
            self.eip = (eip + ins.length) & emask
        self.icount += max(1, self.rep_done) if ends == "rep" else 1
        if rf and self.flags & F.RF:
            self.flags &= ~F.RF                           # RF lasts one instruction
        single = trap and tf and ins.entry.name not in ("INT", "INT3", "INTO", "INT1")
        hits = self.dbg_hits
        if single or hits:                                # data breakpoints / TF: a trap
            self.dbg_hits = 0
            self.dr[6] = (self.dr[6] & ~0xF) | hits | (0x4000 if single else 0)
            return self._deliver_fault(CPUFault(DB))
        return False

    # ------------------------------------------------------------------------------------------
    # Interrupts and exceptions
    # ------------------------------------------------------------------------------------------
    def _take_interrupt(self) -> bool:
        if self.nmi_pending:
            self.nmi_pending = False
            self.halted = False
            return self._deliver(2, None, "hw")
        vector = self.iack() if self.iack else 8
        self.halted = False
        return self._deliver(vector, None, "hw")

    def _deliver_fault(self, e: CPUFault) -> bool:
        """Deliver a fault raised by an instruction at self.eip; True on shutdown."""
        return self._deliver(e.vector, e.error_code, "fault")

    def _deliver(self, vector: int, code, kind: str) -> bool:
        """Deliver an interrupt or exception, escalating to #DF and shutdown as the SDM
        (Vol. 3, 6.15, Table 6-5) says.  Returns True if the CPU shut down."""
        first = vector
        while True:
            try:
                self.interrupt(vector, code, kind, self.eip)
                return False
            except CPUFault as e2:
                second = e2.vector
                if first == DF:
                    return self._shutdown()
                if (first in CONTRIBUTORY and second in CONTRIBUTORY) or \
                        (first == PF and (second in CONTRIBUTORY or second == PF)):
                    vector, code, kind, first = DF, 0, "fault", DF
                else:                                   # benign pairs: deliver serially
                    vector, code, kind, first = second, e2.error_code, "fault", second

    def _shutdown(self) -> bool:
        self.halted = True
        if self.on_shutdown:
            self.on_shutdown()
        return True

    def interrupt(self, vector: int, code, kind: str, return_eip: int) -> None:
        """Transfer control to the handler for ``vector``.  ``kind`` is "hw" (external),
        "fault" (exception; return to the faulting instruction, i.e. ``return_eip``),
        "soft" (INT n / INT3 / INTO: ``return_eip`` is the next instruction)."""
        self.halted = False
        if not self.cr0 & CR0_PE:
            self._interrupt_real(vector, return_eip)
        else:
            from .interrupts import interrupt_protected
            interrupt_protected(self, vector, code, kind, return_eip)

    def _interrupt_real(self, vector: int, return_eip: int) -> None:
        """Real-mode interrupt through the IVT (SDM Vol. 3, 20.1.4)."""
        off = vector * 4
        if off + 3 > self.idtr[1]:
            raise CPUFault(GP, vector * 8 + 2)
        base = self.idtr[0]
        mmu = self.mmu
        ip = mmu.read16((base + off) & 0xFFFFFFFF)
        cs = mmu.read16((base + off + 2) & 0xFFFFFFFF)
        for i in (2, 4, 6):                       # all three pushes must fit: no partial frame
            sp = (self.R[4] - i) & (0xFFFFFFFF if self.attr[SS_] & A_DB else 0xFFFF)
            if sp < self.wlo[SS_] or sp + 1 > self.whi[SS_]:
                raise CPUFault(SS, 0)
        fl = self.get_flags()
        self.push16(fl & 0xFFFF)
        self.push16(self.sel[CS])
        self.push16(return_eip & 0xFFFF)
        self.flags = fl & ~(F.IF | F.TF | F.AC | F.RF)
        self.load_seg_real(CS, cs)
        self.eip = ip

    # ------------------------------------------------------------------------------------------
    # Control registers
    # ------------------------------------------------------------------------------------------
    def write_cr0(self, v: int) -> None:
        """Write CR0 (validity checks are the caller's).  Atomic: if enabling PAE paging faults
        on the PDPTEs, CR0 keeps its old value."""
        v = (v | CR0_ET) & 0xE005003F
        old = self.cr0
        self.cr0 = v
        if (old ^ v) & (CR0_PG | CR0_WP | CR0_PE):
            try:
                self.mmu.control_changed(old_cr0=old)
            except CPUFault:
                self.cr0 = old
                self.mmu.control_changed(old_cr0=v)
                raise
        if (old ^ v) & CR0_PE:
            self.mode_changed()

    def now(self) -> int:
        """Virtual time in ticks (retired instructions + idle time), exact while an instruction
        executes: instructions that read time or do I/O end their block, so they are the
        running block's last instruction."""
        t = self.icount + self.idle_time
        blk = self.cur_block
        if blk is not None:
            t += len(blk.ops) - 1
        return t

    def tsc(self) -> int:
        """The time-stamp counter: one count per tick, plus the offset WRMSR(0x10) set."""
        return (self.now() + self.tsc_offset) & 0xFFFFFFFFFFFFFFFF

    # ------------------------------------------------------------------------------------------
    # Inspection
    # ------------------------------------------------------------------------------------------
    def bug_report(self, exc: BaseException, ins=None) -> str:
        from .disasm import disasm
        lines = [f"Aero internal error: {type(exc).__name__}: {exc}",
                 f"  at icount={self.icount} {self.sel[CS]:04x}:{self.eip:08x} mode={self.mode}"]
        if ins is not None:
            lines.append(f"  bytes {ins.raw.hex(' ')}  {disasm(ins)}")
        lines.append("  " + " ".join(f"{n}={v:08x}" for n, v in zip(REG32, self.R)))
        lines.append(f"  eflags={self.get_flags():08x} " +
                     " ".join(f"{n}={self.sel[i]:04x}" for i, n in enumerate(SEG_NAMES)))
        return "\n".join(lines)
