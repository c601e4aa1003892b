"""The CPU: architectural state, memory access through segments, and the run loop.

Execution model (see README "How the CPU runs"): code is decoded into *blocks* of instructions,
each instruction compiled from its semantic template (``aero.cpu.sem``) into a small Python
closure, and cached by the physical code they came from (``aero.cpu.blocks``).  ``run(budget)``
executes blocks through the one block interface until the retired-instruction budget is spent,
the CPU halts, a hook or the host asks it to stop.  Interrupts are recognised at instruction
boundaries: every instruction that can change whether one is deliverable ends its block, so
checking between blocks is the same as checking after every instruction.

There are no debugger checks in this loop.  Breakpoints, hooks and the guest's own DR0-DR3 are
compiled into the blocks that hold their addresses (``aero.cpu.hookpoints``), memory watches mark
only the pages they cover (``aero.mem.watch``), and interrupt, mode and CR3 observers are called
where those events happen (``on_interrupt``, ``on_mode``, ``on_cr3``; None when nobody listens).
"""

from __future__ import annotations

from ..fpu.x87 import X87
from ..faults import CPUFault, BlockExit, EmulatorError, CONTRIBUTORY, DF, PF, GP, SS, DB, AC
from ..mem.mmu import MMU
from ..mem.watch import Watches
from . import flags as F
from .blocks import CodeCache
from .debugregs import GuestBreakpoints
from .disasm import disasm
from .hookpoints import ExecPoints
from .interrupts import interrupt_protected
from .segmentation import load_data_seg

ES, CS, SS_, DS, FSEG, GSEG = range(6)
SEG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")
REG32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")

# Descriptor attribute bits as kept in the segment caches (bits 8-23 of a descriptor's high
# dword, shifted down by 8): type 0-3, S 4, DPL 5-6, P 7, AVL 12, D/B 14, G 15.
A_ACCESSED, A_RW, A_DC, A_CODE, A_S, A_P, A_DB, A_G = 0x1, 0x2, 0x4, 0x8, 0x10, 0x80, 0x4000, 0x8000

CR0_PE, CR0_MP, CR0_EM, CR0_TS, CR0_ET, CR0_NE, CR0_WP, CR0_AM, CR0_NW, CR0_CD, CR0_PG = (
    1, 2, 4, 8, 0x10, 0x20, 0x10000, 0x40000, 0x20000000, 0x40000000, 0x80000000)

# after these, a TF single-step trap is not taken (they clear TF on the way to their handler)
_NO_TF_TRAP = frozenset(("INT", "INT3", "INTO", "INT1"))


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
    """An i686-class CPU: the integer unit and the x87 FPU (``fpu``, ``aero.fpu``)."""

    def __init__(self, bus):
        self.bus = bus
        self.cur_block = None             # the block running now (aero.cpu.blocks)
        self.cache = CodeCache(self)
        bus.on_code_write = self.cache.code_written
        self.mmu = MMU(self, bus)
        bus.on_a20_change = self.mmu.a20_changed
        self.watches = Watches(bus, self.mmu)
        self.exec_points = ExecPoints()
        self.ac_on = False
        self.dbg = GuestBreakpoints(self)   # the guest's DR0-DR3, as hooks
        self.dbg_hits = 0                 # data breakpoint hits of the current instruction
        self.mem_rebind()
        self.R = [0] * 8
        self.fpu = X87()                  # the x87 (aero.fpu.x87; instructions: aero.fpu.insns)
        # FERR# (an unmasked x87 exception met by a waiting instruction with CR0.NE = 0): the
        # chipset's IRQ13 logic (aero.devices.sysports.CoprocessorError) listens here, and sets
        # ``ignne`` (IGNNE#) when the handler writes port F0h, until ES clears
        self.on_ferr = None
        self.ignne = False
        self.msr: dict[int, int] = {}
        self.intr = False                 # the INTR line (from the PIC)
        self.nmi_pending = False          # an NMI to take at the next boundary
        self.nmi_blocked = False          # an NMI handler runs: NMIs wait for its IRET
        self.nmi_latched = False          # ... and one arrived meanwhile
        self.iack = None                  # callback: acknowledge INTR, return the vector
        # the local APIC (aero.devices.apic.LocalAPIC) when the machine has one: IA32_APIC_BASE
        # and CPUID.1:EDX.APIC (aero.cpu.sem.system); it drives ``intr`` and answers ``iack``
        self.apic = None
        self.port_in = lambda port, size: (1 << (8 * size)) - 1
        self.port_out = lambda port, size, value: None
        self.on_shutdown = None           # called on triple fault
        # observers (None: nobody listens; aero.hooks installs them)
        self.on_interrupt = None          # (vector, error code, kind, eip) at every delivery
        self.on_mode = None               # (old, new) when real/protected/V86 or paging changes
        self.on_cr3 = None                # (old, new) at every CR3 load
        self.stop_requested = False       # the host asked run() to return "stop"
        self.hook_stop = None             # the hook that asked run() to stop (returns "hook")
        self.stopped_by = None            # ... handed over when run() returned "hook"
        self.hook_before = False          # ... before an instruction (exec / block-entry hooks)
        self.hook_skip = False            # host exec points are skipped (resuming at one)
        self._resume_at = None            # where a before-stop left the CPU
        self.target = 0                   # the instruction count the current run() stops at
        self.attn = False                 # set by the outside world: re-check before next block
        self.exit_req = False             # the running block is asked to stop (request_exit)
        self.rep_break = False            # ... and a REP string instruction after this element
        self._patched = None              # the block request_exit patched (restored later)
        self.fault_index = self.fault_retired = 0   # where an exception left a block
        self.icount = 0                   # instructions retired since power-on (not reset)
        self.idle_time = 0                # virtual instructions skipped while halted
        self.reset()

    # ------------------------------------------------------------------------------------------
    # Reset and state
    # ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / RESET state (SDM Vol. 3, Table 9-1).  Virtual time (``icount`` and
        ``idle_time``) runs on across a RESET: it is the machine's clock, not the processor's
        state.  The time-stamp counter, which RESET clears (SDM Vol. 3, "Time-Stamp
        Counter"), starts again from 0 through ``tsc_offset``."""
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
        self.fpu.reset()
        self.ignne = False
        self.cr2 = self.cr3 = self.cr4 = 0
        self.dr = [0, 0, 0, 0, 0xFFFF0FF0, 0x400, 0xFFFF0FF0, 0x400]
        self.efer = 0
        self.gdtr = [0, 0xFFFF]           # base, limit
        self.idtr = [0, 0x3FF]
        self.ldtr = [0, 0, 0xFFFF, 0x82 | A_P]   # selector, base, limit, attr
        self.tr = [0, 0, 0xFFFF, 0x8B]
        self.cpl = 0
        self.halted = False
        self.nmi_blocked = self.nmi_latched = False
        self.shadow = False               # interrupt shadow after STI / MOV SS / POP SS
        self.tsc_offset = -(self.icount + self.idle_time)
        self.rep_budget = 1
        self.rep_done = 1
        self.sysenter = [0, 0, 0]         # CS, ESP, EIP MSRs
        self.msr.clear()
        self.cache.flush()
        self.mmu.reset()
        for s in range(6):
            self._refresh_seg(s)
        self.dbg.update()
        self._mode_key = self._mode_now()

    # Modes --------------------------------------------------------------------------------------
    @property
    def code32(self) -> bool:
        # The cached CS.D decides, in real mode too (a real-mode CS load clears it; code left
        # running in a 32-bit segment after clearing CR0.PE still decodes as 32-bit).
        return not (self.flags & F.VM) and bool(self.attr[CS] & A_DB)

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
        if self.on_mode is not None:
            self._report_mode()

    def _mode_now(self) -> tuple:
        """(operating mode, paging): "real", "protected" or "v86", and CR0.PG."""
        mode = "real" if not self.cr0 & CR0_PE else "v86" if self.flags & F.VM else "protected"
        return mode, bool(self.cr0 & CR0_PG)

    def _report_mode(self) -> None:
        new = self._mode_now()
        old = self._mode_key
        if new != old:
            self._mode_key = new
            self.on_mode(old, new)

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
        # the access functions are the bus's own (linear = physical, nothing wrapped): the JIT's
        # translations then read and write plain RAM pages themselves (aero.jit.memory)
        self.flat_ram = (not m.paging and m.access_wrapper is None and not self.ac_on and
                         m.bus.a20_mask == 0xFFFFFFFF)
        # paging on, nothing wrapped: the functions are the MMU's fast maps then the bus's, which
        # translations inline the same way (``mmu.rmap``/``wmap``, then the page flags)
        self.paged_ram = bool(m.paging and m.access_wrapper is None and not self.ac_on)

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
    # Code fetch, the running block, stopping it
    # ------------------------------------------------------------------------------------------
    def fetch_phys(self, off: int) -> int:
        """Physical address of the code byte at CS:off (segment limit and paging checked)."""
        if off > self.limit[CS]:
            raise CPUFault(GP, 0)
        return self.mmu.translate_fetch((self.base[CS] + off) & 0xFFFFFFFF)

    def set_intr(self, level: bool) -> None:
        """The INTR line (driven by the interrupt controller)."""
        self.intr = level
        if level:
            self.request_exit()

    def raise_nmi(self) -> None:
        """The NMI line: taken at the next instruction boundary, or, while an NMI handler runs
        (until its IRET), held (one at most) and taken after that IRET (SDM Vol. 3, 6.7.1)."""
        if self.nmi_blocked:
            self.nmi_latched = True
            return
        self.nmi_pending = True
        self.request_exit()

    def nmi_unblock(self) -> None:
        """An IRET completed: NMIs are no longer blocked; a held one is taken next."""
        self.nmi_blocked = False
        if self.nmi_latched:
            self.nmi_latched = False
            self.nmi_pending = True
            self.request_exit()

    def request_stop(self) -> None:
        """Ask run() to return "stop" at the next instruction boundary.  Safe to call from
        another thread (it only sets flags and swaps the running block's operations, each a
        single step under the interpreter lock; ``_block_raised`` and the slow path undo the
        swap whatever the interleaving)."""
        self.stop_requested = True
        self.request_exit()

    def request_exit(self) -> None:
        """Stop the running block before its next instruction (see ``aero.cpu.blocks``) and
        have the run loop look at the world again."""
        self.attn = True
        self.exit_req = True
        blk = self.cur_block
        if blk is not None:
            blk.exit()
            self._patched = blk

    def pull_target(self, stop: int) -> None:
        """End the current run() at instruction count ``stop`` if that is earlier (a device
        scheduled an event from inside an instruction; ``Clock.schedule``)."""
        if stop < self.target:
            self.target = stop
            blk = self.cur_block
            if blk is not None and self.icount + len(blk) > stop:
                self.request_exit()

    # ------------------------------------------------------------------------------------------
    # Execution points (hooks compiled into blocks) and the guest's debug registers
    # ------------------------------------------------------------------------------------------
    def add_exec_point(self, pt) -> None:
        """Install an ``aero.cpu.hookpoints.ExecPoint``; the blocks it concerns are decoded
        again with it compiled in."""
        self.exec_points.add(pt)
        self._points_changed(pt)

    def remove_exec_point(self, pt) -> None:
        if self.exec_points.remove(pt):
            self._points_changed(pt)

    def _points_changed(self, pt) -> None:
        if pt.everywhere or pt.match is not None:
            self.cache.flush()
        elif pt.physical:
            self.cache.invalidate_physical(pt.lo, pt.hi)
        else:
            self.cache.invalidate_linear(pt.lo, pt.hi)

    def dr_changed(self) -> None:
        """DR0-DR3 or DR7 changed (MOV DRn, a task switch, the debugger): reinstall the guest's
        breakpoints (``aero.cpu.debugregs``)."""
        self.dbg.update()

    # ------------------------------------------------------------------------------------------
    # The run loop
    # ------------------------------------------------------------------------------------------
    def run(self, budget: int) -> str:
        """Execute until ``budget`` instructions have retired.  Returns why it stopped:
        "budget"; "halt" (HLT with nothing to wake it); "shutdown" (triple fault); "stop"
        (``request_stop``); "hook" (a hook asked to stop: ``stopped_by``).

        After a block whose last instruction can change interrupt deliverability, the mode, CS
        or EFLAGS.TF (``blk.check``), after an exception, and whenever ``attn`` is set (an
        interrupt line raised, a stop requested), the slow checks run (``_between``); otherwise
        the loop goes straight from block to block.  While EFLAGS.TF or RF is set, after an
        interrupt shadow, and for the first instruction of a run resumed at a hook that stopped
        before it, instructions run one at a time (``_single``), from the same blocks."""
        self.target = self.icount + budget       # a device may pull it in (pull_target)
        jump = self.cache.jump
        lookup = self.cache.lookup
        mmu = self.mmu
        check = True
        cs_key = 0
        if self._resume_at is not None:
            if self._resume_at == (self.icount, self.base[CS], self.eip):
                self.hook_skip = True
            self._resume_at = None
        while True:
            icount = self.icount
            remaining = self.target - icount
            if remaining <= 0:
                self.hook_skip = False
                if self.hook_stop is not None:        # asked by the budget's last instruction
                    return self._hook_stopped()
                return "budget"
            if check or self.attn:
                why = self._between()
                if why is not None:
                    return why
                f = self.flags
                code32 = self.attr[CS] & A_DB and not f & F.VM
                cs_key = (self.base[CS] << 33) | (1 if code32 else 0)
                if self.ac_on or self.cr0 & CR0_AM:
                    self._update_alignment_check()
                if self.shadow or f & (F.TF | F.RF) or self.hook_skip:
                    if self._single(cs_key):
                        return "shutdown"
                    continue
                check = False
            key = cs_key | (self.eip << 1)
            blk = jump.get(key)
            if blk is None or blk.gen != mmu.gen:
                try:
                    blk = lookup(key, blk)
                except CPUFault as e:             # the first instruction cannot be fetched
                    self.icount = icount + 1
                    check = True
                    if self._deliver_fault(e):
                        return "shutdown"
                    continue
            self.cur_block = blk
            try:
                n = blk.execute(self, remaining)
            except BaseException as e:
                self.cur_block = None
                check = True
                if self._block_raised(blk, e, icount):
                    return "shutdown"
                continue
            self.cur_block = None
            self.icount = icount + n
            check = blk.check

    def _single(self, cs_key: int) -> bool:
        """Run one instruction alone (the first of its block): after an interrupt shadow, with
        TF or RF set, or resuming at a hook.  RF lasts one instruction; with TF set a #DB trap
        follows (with any data breakpoint hits, DR6.BS).  True on shutdown."""
        f = self.flags
        shadow = self.shadow
        self.shadow = False
        icount = self.icount
        try:
            blk = self.cache.jump.get(cs_key | (self.eip << 1))
            if blk is None or blk.gen != self.mmu.gen:
                blk = self.cache.lookup(cs_key | (self.eip << 1), blk)
        except CPUFault as e:
            self.hook_skip = False
            self.icount = icount + 1
            return self._deliver_fault(e)
        self.cur_block = blk
        try:
            n = blk.execute(self, 1)
        except BaseException as e:
            self.cur_block = None
            self.hook_skip = False
            return self._block_raised(blk, e, icount)
        self.cur_block = None
        self.icount = icount + n
        self.hook_skip = False
        if f & F.RF and self.flags & F.RF:
            self.flags &= ~F.RF
        if f & F.TF and not shadow and blk.insns[0].entry.name not in _NO_TF_TRAP:
            self.dr[6] = (self.dr[6] & ~0xF) | self.dbg_hits | 0x4000
            self.dbg_hits = 0
            return self._deliver(DB, None, "fault")
        return False

    def _between(self):
        """The slow checks between blocks; a reason to return from run(), or None."""
        self.attn = False
        self.exit_req = False
        self.rep_break = False
        if self._patched is not None:
            self._patched.restore()
            self._patched = None
        if self.hook_stop is not None:
            return self._hook_stopped()
        if self.stop_requested:
            self.stop_requested = False
            return "stop"
        if self.dbg_hits:                         # data breakpoints: a #DB trap after the access
            self.dr[6] = (self.dr[6] & ~0xF) | self.dbg_hits
            self.dbg_hits = 0
            self.hook_skip = False
            if self._deliver(DB, None, "fault"):
                return "shutdown"
        if self.shadow:
            return None
        if self.intr and self.flags & F.IF or self.nmi_pending:
            self.hook_skip = False
            if self._take_interrupt():
                return "shutdown"
            if self.hook_stop is not None:        # an interrupt hook asked to stop
                return self._hook_stopped()
        if self.halted:
            return "halt"
        return None

    def take_hook_stop(self) -> bool:
        """Hand over a hook's stop request that ``run`` could not report itself (it returned
        "shutdown" on the way); True if there was one."""
        if self.hook_stop is None:
            return False
        self._hook_stopped()
        return True

    def _hook_stopped(self) -> str:
        """A hook asked to stop: hand it over (``stopped_by``) and remember where a stop
        before an instruction left the CPU, so that resuming there runs that instruction."""
        self.stopped_by = self.hook_stop
        self.hook_stop = None
        if self.hook_before:
            self.hook_before = False
            self._resume_at = (self.icount, self.base[CS], self.eip)
        return "hook"

    def _block_raised(self, blk, e: BaseException, icount: int) -> bool:
        """An exception left a block (``aero.cpu.blocks``: ``fault_index``/``fault_retired``
        say where).  Guest faults are delivered, early exits just stop there, anything else is
        an emulator bug.  True on shutdown."""
        idx = self.fault_index
        self.eip = blk.eips[idx]
        done = icount + self.fault_retired
        if isinstance(e, CPUFault):
            # the faulting instruction counts one; REP iterations completed before it too
            self.icount = done + 1 + (self.rep_done if blk.rep and idx == len(blk) - 1 else 0)
            self.dbg_hits = 0                 # it did not complete: no data breakpoint trap
            return self._deliver_fault(e)
        self.icount = done
        if isinstance(e, BlockExit):
            blk.restore()
            return False
        if isinstance(e, (EmulatorError, KeyboardInterrupt)):
            raise e
        raise EmulatorError(self.bug_report(e, blk.insns[idx])) from e

    # ------------------------------------------------------------------------------------------
    # Interrupts and exceptions
    # ------------------------------------------------------------------------------------------
    def _take_interrupt(self) -> bool:
        if self.nmi_pending:
            self.nmi_pending = False
            self.nmi_blocked = True
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
        if self.on_interrupt is not None:
            self.on_interrupt(None, None, "shutdown", self.eip)
        if self.on_shutdown:
            self.on_shutdown()
        return True

    def interrupt(self, vector: int, code, kind: str, return_eip: int) -> None:
        """Transfer control to the handler for ``vector``.  ``kind`` is "hw" (external),
        "fault" (exception; return to the faulting instruction, i.e. ``return_eip``),
        "soft" (INT n / INT3 / INTO: ``return_eip`` is the next instruction)."""
        if self.on_interrupt is not None:
            self.on_interrupt(vector, code, kind, return_eip)
        self.halted = False
        if not self.cr0 & CR0_PE:
            self._interrupt_real(vector, return_eip)
        else:
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
        elif (old ^ v) & CR0_PG and self.on_mode is not None:
            self._report_mode()

    def write_cr3(self, v: int) -> None:
        """Load CR3 (MOV CR3, a task switch).  Atomic: if the PAE PDPTEs it points at are
        invalid, CR3 keeps its old value and the #GP propagates."""
        old = self.cr3
        self.cr3 = v & 0xFFFFFFFF
        try:
            self.mmu.cr3_written()
        except CPUFault:
            self.cr3 = old
            raise
        if self.on_cr3 is not None:
            self.on_cr3(old, self.cr3)

    def write_cr4(self, v: int) -> None:
        old = self.cr4
        self.cr4 = v & 0xFFFFFFFF
        try:
            self.mmu.control_changed(old_cr4=old)
        except CPUFault:
            self.cr4 = old
            self.mmu.control_changed(old_cr4=v)
            raise

    def now(self) -> int:
        """Virtual time in ticks (retired instructions + idle time), exact while an instruction
        executes: the running block knows which of its instructions is running."""
        t = self.icount + self.idle_time
        blk = self.cur_block
        if blk is not None:
            k = blk.position()
            t += k
            if blk.rep and k == blk.count - 1:      # a REP iteration: each counts one
                t += self.rep_done
        return t

    def insn_eip(self) -> int:
        """EIP of the instruction running now (inside a block ``eip`` is brought up to date only
        at its end); between instructions, ``eip``."""
        blk = self.cur_block
        return self.eip if blk is None else blk.running_eip()

    def tsc(self) -> int:
        """The time-stamp counter: one count per tick, plus the offset WRMSR(0x10) set."""
        return (self.now() + self.tsc_offset) & 0xFFFFFFFFFFFFFFFF

    # ------------------------------------------------------------------------------------------
    # Inspection
    # ------------------------------------------------------------------------------------------
    def bug_report(self, exc: BaseException, ins=None) -> str:
        lines = [f"Aero internal error: {type(exc).__name__}: {exc}",
                 f"  at icount={self.icount} {self.sel[CS]:04x}:{self.eip:08x} mode={self.mode}"]
        if ins is not None:
            lines.append(f"  bytes {ins.raw.hex(' ')}  {disasm(ins)}")
        lines.append("  " + " ".join(f"{n}={v:08x}" for n, v in zip(REG32, self.R)))
        lines.append(f"  eflags={self.get_flags():08x} " +
                     " ".join(f"{n}={self.sel[i]:04x}" for i, n in enumerate(SEG_NAMES)))
        return "\n".join(lines)
