"""The local APIC (xAPIC, as in a Pentium 4: version 14h, six LVT entries) of Aero's one CPU.

References: Intel SDM Vol. 3A, chapter 10 (11 in later editions) "Advanced Programmable Interrupt
Controller (APIC)": 10.4.3 "Enabling or Disabling the Local APIC" (IA32_APIC_BASE), 10.4.4
"Local APIC Status and Location", 10.4.6 "Local APIC ID", 10.4.7 "Local APIC State" (after
power-up/INIT, software disabled), 10.4.8 "Local APIC Version Register", 10.5.1 "Local Vector
Table", 10.5.3 "Error Handling" (ESR), 10.5.4 "APIC Timer", 10.6.1 "Interrupt Command Register",
10.6.2 "Determining IPI Destination" (physical, logical flat/cluster, LDR/DFR), 10.8.3.1 "Task
and Processor Priorities" (TPR/PPR), 10.8.4 "Interrupt Acceptance for Fixed Interrupts"
(IRR/ISR/TMR), 10.8.5 "Signaling Interrupt Servicing Completion" (EOI), 10.9 "Spurious
Interrupt", Table 10-1 "Local APIC Register Address Map".  PC conventions follow QEMU
(hw/intc/apic.c, apic_common.c).

Wiring (``aero.machine``, ``MachineConfig(apic=True)``): the 8259A pair's INTR output drives
LINT0 (``set_lint0``), the APIC drives the CPU's INTR line (``cpu.set_intr``) and answers its
interrupt acknowledge (``cpu.iack = apic.acknowledge``); LINT1 is the NMI pin (nothing drives
it on the PC, ``set_lint1`` is there for completeness and tests); the I/O APIC sends messages
with ``message`` and receives EOIs for level-triggered vectors through ``on_eoi``.

Virtual wire (MP spec 3.6.2.2; PIC-only guests keep working): after power-on every LVT entry
is masked (SDM 10.4.7.1; QEMU 7.2 reads the same), and firmware sets up virtual wire mode before
it boots anything: SeaBIOS's ``smp_setup`` enables the APIC (SVR |= 100h) and writes LINT0 =
00008700h (ExtINT) and LINT1 = 00008400h (NMI).  The Aero BIOS's POST runs on the host side,
so the machine builds the APIC with ``firmware_setup=True`` under the Aero BIOS and the APIC
comes out of every power-on/reset in that post-POST state (a raw ROM or SeaBIOS sees the
hardware reset state and does its own setup).  With LINT0 unmasked in ExtINT mode the 8259A's
INTR passes to the CPU and the CPU's INTA goes to the 8259A; ExtINT requests ignore the task
priority and are served before fixed interrupts, as QEMU does.  While IA32_APIC_BASE.EN is 0
(hardware disabled) the APIC is bypassed altogether: LINT0 is the CPU's INTR, LINT1 its NMI.

IA32_APIC_BASE (MSR 1Bh): bits 35:12 base, bit 11 EN, bit 8 BSP (read-only, set), bits 7:0, 9
and 10 (x2APIC, not offered) and 63:36 reserved: #GP.  The 4 KiB register window follows the
base (only while EN = 1 and the base lies below 4 GiB; whatever the page held before comes
back when the window moves).  Clearing EN resets the APIC to its power-on state (base kept) and
hides the window; setting it again starts from that state (a Pentium 4 may be re-enabled
without a reset; a P6 needed one).  CPUID.1:EDX.APIC follows EN (``enabled``).

Registers (Table 10-1; 32-bit accesses; a narrower read returns the bytes of the dword, a
narrower write stores its bytes zero-extended into the dword): ID (bits 31:24, writable),
version 00050014h, TPR, APR (not on Pentium 4: reads 0), PPR, EOI, RRD (not on Pentium 4:
reads 0), LDR (31:24), DFR (31:28, the rest reads 1), SVR (vector 7:0, APIC software enable
bit 8, focus checking bit 9), ISR/TMR/IRR (256 bits each, read-only), ESR, ICR, LVT timer/
thermal/performance/LINT0/LINT1/error, initial and current count, divide configuration.
Reserved offsets read 0, and any access to them sets ESR bit 7 ("illegal register address",
Pentium 4).  ESR: errors accumulate internally; a write (any value) copies them into the
readable ESR and clears the accumulator (10.5.3: write before reading).  An error whose bit was
not yet accumulated raises the LVT error interrupt.  Vectors 0-15 are illegal: received ones set
ESR bit 6 and are dropped, sent ones (ICR) bit 5 and are not sent.  Delivery status bits read
0: messages are delivered at once.  The thermal and performance-counter LVTs are stored only
(no sources).

Priorities (10.8.3.1): PPR = TPR if TPR[7:4] >= ISRV[7:4] else ISRV[7:4]:0 (ISRV the highest
vector in service); a fixed interrupt is offered to the CPU when its class (vector[7:4]) is above
PPR[7:4], so a higher class preempts a handler, and TPR blocks classes at or below it.  EOI
clears the highest ISR bit; a level-triggered vector (TMR set) is then broadcast to the I/O
APIC.  With the APIC software-disabled (SVR bit 8 = 0) no fixed interrupt is offered, incoming
fixed and lowest-priority messages are dropped (QEMU keeps them, the SDM lets IRR/ISR hold
what was pending), writes to SVR with bit 8 clear mask every LVT, and LVT masks cannot be
cleared.  If the request the CPU saw goes away before the acknowledge, the CPU gets the
spurious vector (SVR 7:0), nothing in service.

ICR: fixed and lowest-priority messages (lowest priority is fixed for one CPU) and NMIs reach
this APIC when the destination matches (shorthand self (fixed only) or all-including-self, or
the destination field: physical ID or FFh, logical flat/cluster model against LDR/DFR); "all
excluding self" reaches nobody.  An INIT reaching this APIC (an IPI to itself, the I/O APIC, an
LVT entry in INIT mode) is the processor's INIT (``on_init``; ``aero.machine``: at the next
instruction boundary the CPU goes to its INIT state, SDM Vol. 3 Table 9-1, keeping its MSRs
and the time-stamp counter, the APIC to its INIT state keeping its ID, devices and memory
untouched; the bootstrap processor then runs from the reset vector).  Start-up IPIs are
ignored: only a processor waiting for SIPI (an application processor after INIT) acts on one,
and the one CPU is the BSP.  SMI is not performed (no SMM).  Both are dropped and counted
(``summary``: ``dropped IPIs``); so are INIT level de-asserts (a no-op on a Pentium 4).

Timer (10.5.4): the APIC bus clock is 1 GHz (``BUS_HZ``; QEMU's choice, so counts a guest
calibrates compare with QEMU's), derived from the instruction clock: at ``ips`` ticks per
virtual second, t ticks after the initial count was written the timer has seen
floor(t * BUS_HZ / ips) bus clocks, and counts once every ``divide`` (1-128) of them.  As in
QEMU, one period is initial + 1 counts: the current count reads initial - (d mod (initial+1))
in periodic mode, max(0, initial - d) in one-shot mode, and the interrupt is raised when d
reaches a multiple of initial + 1 (one-shot: the first).  The expiry is an ``aero.clock`` event
at the exact tick, so the interrupt is taken after exactly that many instructions.  Writing the
initial count restarts the timer (0 stops it); changing the divider carries on from the
current count at the new rate; a masked timer keeps counting but raises nothing.

State: everything above (including the LINT pin levels and the timer's reference point) is in
``get_state``; ``set_state`` re-creates the timer event at its saved tick.
"""

from __future__ import annotations

from ..mem.bus import MMIO, PAGE, MMIOHandler
from .base import Device

MSR_APIC_BASE = 0x1B
DEFAULT_BASE = 0xFEE00000
BASE_BSP, BASE_EN = 1 << 8, 1 << 11
BASE_RESERVED = ~((0xFFFFFF << 12) | BASE_EN | BASE_BSP) & 0xFFFFFFFFFFFFFFFF

VERSION = 0x00050014              # xAPIC version 14h, max LVT entry 5 (six entries)
BUS_HZ = 1_000_000_000            # APIC bus / timer input clock

# LVT indices, in register order 320h-370h
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = range(6)
LVT_NAMES = ("timer", "thermal", "perf", "LINT0", "LINT1", "error")
LVT_MASKED = 1 << 16
LVT_LEVEL = 1 << 15
LVT_REMOTE_IRR = 1 << 14
LVT_PERIODIC = 1 << 17
LVT_WMASK = (0x300FF, 0x107FF, 0x107FF, 0x1A7FF, 0x1A7FF, 0x100FF)

# delivery modes (LVT, ICR, I/O APIC redirection entries)
DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI, DM_INIT, DM_SIPI, DM_EXTINT = 0, 1, 2, 4, 5, 6, 7
DM_NAMES = {0: "fixed", 1: "lowest", 2: "SMI", 4: "NMI", 5: "INIT", 6: "SIPI", 7: "ExtINT"}

SVR_ENABLE = 1 << 8
SVR_WMASK = 0x3FF

# ESR bits (10.5.3)
ESR_SEND_ILLEGAL, ESR_RECV_ILLEGAL, ESR_ILLEGAL_REG = 1 << 5, 1 << 6, 1 << 7

ICR_LO_WMASK = 0xCCFFF
DIVIDERS = (2, 4, 8, 16, 32, 64, 128, 1)      # by DCR bits 3,1,0


def _divide(dcr: int) -> int:
    return DIVIDERS[((dcr >> 1) & 4) | (dcr & 3)]


def _highest(bits: int) -> int:
    return bits.bit_length() - 1          # -1 when none


class LocalAPIC(Device, MMIOHandler):
    name = "lapic"
    STATE_VERSION = 1

    def __init__(self, bus, clock, cpu=None, apic_id: int = 0, bsp: bool = True,
                 firmware_setup: bool = False):
        self.bus = bus
        self.firmware_setup = firmware_setup       # reset leaves the post-POST state
        self.clock = clock
        self.cpu = cpu
        self.on_intr = cpu.set_intr if cpu is not None else None   # the CPU's INTR line
        self.on_nmi = cpu.raise_nmi if cpu is not None else None
        self.on_init = None                # callable(): an INIT for this CPU (aero.machine)
        self.pic_ack = None                # the 8259A's INTA (ExtINT)
        self.on_eoi = None                 # callable(vector): EOI of a level-triggered vector
        self.initial_id = apic_id
        self.bsp = bsp
        self.base_msr = DEFAULT_BASE | BASE_EN | (BASE_BSP if bsp else 0)
        self._mapped = None                # (page, previous kind, previous handler)
        self._event = None
        self.lint0 = False                 # pin levels
        self.lint1 = False
        self.INTR = False                  # our output to the CPU
        self.extint_msg = False            # an ExtINT message (I/O APIC) awaits its INTA
        self.dropped_ipis = 0
        self.spurious = 0
        self._power_on()
        self._post()
        self._remap()

    def init_signal(self) -> None:
        """INIT (10.4.7.3): the APIC as after power-up, except its ID (and IA32_APIC_BASE,
        kept apart) are unchanged; under the Aero BIOS its POST's virtual wire setup again."""
        apic_id = self.ID
        self._power_on()
        self.ID = apic_id
        self._post()
        self._update()

    # -- power-on / INIT state (10.4.7.1) ------------------------------------------------------
    def _power_on(self) -> None:
        self.ID = self.initial_id << 24
        self.TPR = 0
        self.LDR = 0
        self.DFR = 0xFFFFFFFF
        self.SVR = 0xFF
        self.IRR = self.ISR = self.TMR = 0
        self.ESR = 0
        self.esr_pending = 0
        self.ICR = 0                       # 64 bits: high dword destination
        self.LVT = [LVT_MASKED] * 6
        self.initial_count = 0
        self.DCR = 0
        self.timer_start = 0               # tick at which d = timer_d0
        self.timer_d0 = 0
        self.timer_target = None           # the d at which the pending expiry fires
        self.extint_msg = False
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def _post(self) -> None:
        """What the Aero BIOS's POST leaves (``firmware_setup``): SeaBIOS's virtual wire setup
        (src/fw/smp.c ``smp_setup``): software enabled, LINT0 ExtINT, LINT1 NMI."""
        if self.firmware_setup and self.bsp:
            self.SVR |= SVR_ENABLE
            self.LVT[LVT_LINT0] = 0x8700
            self.LVT[LVT_LINT1] = 0x8400

    @property
    def enabled(self) -> bool:
        """IA32_APIC_BASE.EN: the APIC is there (CPUID.1:EDX.APIC reads 1)."""
        return bool(self.base_msr & BASE_EN)

    @property
    def sw_enabled(self) -> bool:
        return self.enabled and bool(self.SVR & SVR_ENABLE)

    @property
    def base(self) -> int:
        return self.base_msr & 0xFFFFFF000

    # -- IA32_APIC_BASE --------------------------------------------------------------------------
    def read_base_msr(self) -> int:
        return self.base_msr

    def write_base_msr(self, value: int) -> bool:
        """WRMSR 1Bh; False if the value sets reserved bits (the caller raises #GP(0))."""
        if value & BASE_RESERVED:
            return False
        was = self.enabled
        self.base_msr = (value & ~BASE_BSP) | (self.base_msr & BASE_BSP)
        if was and not self.enabled:
            self._power_on()                 # hardware disabled: power-on state
        elif not was and self.enabled:
            self._power_on()
        self._remap()
        self._update()
        return True

    def _remap(self) -> None:
        bus = self.bus
        if bus is None:
            return
        if self._mapped is not None:
            page, kind, handler = self._mapped
            self._mapped = None
            if bus.mmio.get(page) is self:
                if handler is not None:
                    bus.mmio[page] = handler
                else:
                    del bus.mmio[page]
                bus.set_kind(page * PAGE, PAGE, kind)
        if self.enabled and self.base < (1 << 32):
            page = self.base // PAGE
            self._mapped = (page, bus.kind[page], bus.mmio.get(page))
            bus.map_mmio(self.base, PAGE, self)

    # -- MMIO --------------------------------------------------------------------------------------
    def mmio_read(self, addr: int, size: int) -> int:
        off = addr & 0xFFF
        v = self.read_reg(off & 0xFF0)
        return (v >> (8 * (off & 3))) & ((1 << (8 * size)) - 1)

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        off = addr & 0xFFF
        self.write_reg(off & 0xFF0, (value << (8 * (off & 3))) & 0xFFFFFFFF)

    def read_reg(self, off: int) -> int:
        """The 32-bit register at ``off`` (a multiple of 10h)."""
        if off == 0x20:
            return self.ID
        if off == 0x30:
            return VERSION
        if off == 0x80:
            return self.TPR
        if off in (0x90, 0xB0, 0xC0):        # APR, EOI (write-only), RRD
            return 0
        if off == 0xA0:
            return self.ppr()
        if off == 0xD0:
            return self.LDR
        if off == 0xE0:
            return self.DFR | 0x0FFFFFFF
        if off == 0xF0:
            return self.SVR
        if 0x100 <= off < 0x280:
            bits = (self.ISR, self.TMR, self.IRR)[(off - 0x100) >> 7]
            return (bits >> (32 * ((off >> 4) & 7))) & 0xFFFFFFFF
        if off == 0x280:
            return self.ESR
        if off == 0x300:
            return self.ICR & 0xFFFFFFFF
        if off == 0x310:
            return self.ICR >> 32
        if 0x320 <= off <= 0x370:
            return self.LVT[(off - 0x320) >> 4]
        if off == 0x380:
            return self.initial_count
        if off == 0x390:
            return self.current_count()
        if off == 0x3E0:
            return self.DCR
        self._error(ESR_ILLEGAL_REG)
        return 0

    def write_reg(self, off: int, v: int) -> None:
        if off == 0x20:
            self.ID = v & 0xFF000000
        elif off == 0x80:
            self.TPR = v & 0xFF
            self._update()
        elif off == 0xB0:
            self.eoi()
        elif off == 0xD0:
            self.LDR = v & 0xFF000000
        elif off == 0xE0:
            self.DFR = (v & 0xF0000000) | 0x0FFFFFFF
        elif off == 0xF0:
            self.SVR = v & SVR_WMASK
            if not v & SVR_ENABLE:
                self.LVT = [x | LVT_MASKED for x in self.LVT]
                self._timer_schedule()
            self._update()
        elif off == 0x280:
            self.ESR = self.esr_pending
            self.esr_pending = 0
        elif off == 0x300:
            self.ICR = (self.ICR & ~0xFFFFFFFF) | (v & ICR_LO_WMASK)
            self._send_ipi()
        elif off == 0x310:
            self.ICR = (self.ICR & 0xFFFFFFFF) | ((v & 0xFF000000) << 32)
        elif 0x320 <= off <= 0x370:
            self._write_lvt((off - 0x320) >> 4, v)
        elif off == 0x380:
            self.initial_count = v
            self.timer_start = self.clock.now()
            self.timer_d0 = 0
            self._timer_schedule()
        elif off == 0x3E0:
            d = self._counts()
            self.timer_start = self.clock.now()
            self.timer_d0 = d
            self.DCR = v & 0xB
            self._timer_schedule()
        elif off in (0x30, 0x90, 0xA0, 0xC0, 0x390) or 0x100 <= off < 0x280:
            pass                              # read-only
        else:
            self._error(ESR_ILLEGAL_REG)

    def _write_lvt(self, i: int, v: int) -> None:
        old = self.LVT[i]
        v = (v & LVT_WMASK[i]) | (old & LVT_REMOTE_IRR if i in (LVT_LINT0, LVT_LINT1) else 0)
        if not self.sw_enabled:
            v |= LVT_MASKED
        self.LVT[i] = v
        if i == LVT_TIMER:
            self._timer_schedule()
        elif i == LVT_LINT0:
            # a level-asserted LINT0 unmasked now: fixed level mode requests again
            if self.lint0 and (old & LVT_MASKED) and not (v & LVT_MASKED):
                self._lint_assert(LVT_LINT0)
        self._update()

    # -- priorities and the CPU side ---------------------------------------------------------------
    def ppr(self) -> int:
        isrv = _highest(self.ISR)
        isrv = isrv if isrv > 0 else 0
        if (self.TPR >> 4) >= (isrv >> 4):
            return self.TPR
        return isrv & 0xF0

    def _fixed_pending(self) -> int:
        """The vector a fixed interrupt would be offered for now, or -1."""
        if not self.sw_enabled:
            return -1
        v = _highest(self.IRR)
        if v < 0 or (v >> 4) <= (self.ppr() >> 4):
            return -1
        return v

    def _extint_pending(self) -> bool:
        if self.extint_msg:
            return True
        lvt = self.LVT[LVT_LINT0]
        return self.lint0 and not lvt & LVT_MASKED and (lvt >> 8) & 7 == DM_EXTINT

    def _update(self) -> None:
        """Recompute our INTR output to the CPU."""
        if not self.enabled:
            out = self.lint0
        else:
            out = self._extint_pending() or self._fixed_pending() >= 0
        if out != self.INTR:
            self.INTR = out
            if self.on_intr is not None:
                self.on_intr(out)

    def acknowledge(self) -> int:
        """The CPU's interrupt acknowledge: the vector to deliver (IRR -> ISR for a fixed one)."""
        if not self.enabled:
            return self.pic_ack() if self.pic_ack is not None else 0xFF
        if self._extint_pending():
            self.extint_msg = False
            v = self.pic_ack() if self.pic_ack is not None else 0xFF
            self._update()
            return v
        v = self._fixed_pending()
        if v < 0:
            self.spurious += 1
            self._update()
            return self.SVR & 0xFF
        bit = 1 << v
        self.IRR &= ~bit
        self.ISR |= bit
        for i in (LVT_LINT0, LVT_LINT1):
            lvt = self.LVT[i]
            if lvt & LVT_LEVEL and (lvt & 0xFF) == v and (lvt >> 8) & 7 == DM_FIXED:
                self.LVT[i] = lvt | LVT_REMOTE_IRR
        self._update()
        return v

    def eoi(self) -> None:
        v = _highest(self.ISR)
        if v < 0:
            return
        bit = 1 << v
        self.ISR &= ~bit
        level = bool(self.TMR & bit)
        for i in (LVT_LINT0, LVT_LINT1):
            lvt = self.LVT[i]
            if lvt & LVT_REMOTE_IRR and (lvt & 0xFF) == v:
                self.LVT[i] = lvt & ~LVT_REMOTE_IRR
                if i == LVT_LINT0 and self.lint0 or i == LVT_LINT1 and self.lint1:
                    self._lint_assert(i)
        if level and self.on_eoi is not None:
            self.on_eoi(v)
        self._update()

    # -- accepting interrupts ------------------------------------------------------------------------
    def _accept(self, vector: int, level: bool) -> None:
        """A fixed interrupt for this APIC (10.8.4)."""
        if vector < 16:
            self._error(ESR_RECV_ILLEGAL)
            return
        bit = 1 << vector
        self.IRR |= bit
        if level:
            self.TMR |= bit
        else:
            self.TMR &= ~bit
        self._update()

    def _error(self, bits: int) -> None:
        new = bits & ~self.esr_pending
        self.esr_pending |= bits
        lvt = self.LVT[LVT_ERROR]
        if new and not lvt & LVT_MASKED and self.enabled:
            v = lvt & 0xFF
            if v < 16:
                self.esr_pending |= ESR_RECV_ILLEGAL
            else:
                self._accept(v, False)

    def _local(self, i: int, level: bool = False) -> None:
        """LVT entry ``i`` fires (10.5.1)."""
        lvt = self.LVT[i]
        if lvt & LVT_MASKED or not self.enabled:
            return
        dm = (lvt >> 8) & 7
        if dm == DM_FIXED:
            self._accept(lvt & 0xFF, level)
        elif dm == DM_NMI:
            if self.on_nmi is not None:
                self.on_nmi()
        elif dm == DM_EXTINT:
            self._update()
        elif dm == DM_INIT and self.on_init is not None:
            self.on_init()
        else:                                 # SMI and reserved modes: not performed
            self.dropped_ipis += 1

    def _lint_assert(self, i: int) -> None:
        lvt = self.LVT[i]
        level = bool(lvt & LVT_LEVEL) and (lvt >> 8) & 7 == DM_FIXED
        if level and lvt & LVT_REMOTE_IRR:
            return
        self._local(i, level)

    def set_lint0(self, level: bool) -> None:
        """The LINT0 pin (the 8259A's INTR).  Polarity bit 13 is taken as stored: the PC drives
        the pin active high."""
        level = bool(level)
        if level == self.lint0:
            return
        self.lint0 = level
        if not self.enabled:
            self._update()
            return
        lvt = self.LVT[LVT_LINT0]
        if level:
            self._lint_assert(LVT_LINT0)
        elif (lvt >> 8) & 7 == DM_FIXED and lvt & LVT_LEVEL and not lvt & LVT_REMOTE_IRR:
            self.IRR &= ~(1 << (lvt & 0xFF))     # a level request withdrawn before acceptance
        self._update()

    def set_lint1(self, level: bool) -> None:
        """The LINT1 pin (NMI on a PC).  Rising edges count."""
        level = bool(level)
        if level == self.lint1:
            return
        self.lint1 = level
        if level:
            if not self.enabled:
                if self.on_nmi is not None:
                    self.on_nmi()
            else:
                self._lint_assert(LVT_LINT1)

    def matches(self, dest: int, logical: bool) -> bool:
        """10.6.2: does an 8-bit destination address this APIC?"""
        if not logical:
            return dest == 0xFF or dest == self.ID >> 24
        if dest == 0xFF:
            return True
        ldr = self.LDR >> 24
        if self.DFR >> 28 == 0xF:                      # flat model
            return bool(ldr & dest)
        return (dest >> 4) == (ldr >> 4) and bool(dest & ldr & 0xF)     # cluster model

    def message(self, vector: int, mode: int, logical: bool, dest: int, level: bool) -> bool:
        """A message from the I/O APIC; True if this APIC accepted it."""
        if not self.enabled or not self.matches(dest, logical):
            return False
        return self._receive(vector, mode, level)

    def _receive(self, vector: int, mode: int, level: bool) -> bool:
        if mode in (DM_FIXED, DM_LOWEST):
            if not self.sw_enabled:
                return False
            self._accept(vector, level)
            return True
        if mode == DM_NMI:
            if self.on_nmi is not None:
                self.on_nmi()
            return True
        if mode == DM_EXTINT:
            self.extint_msg = True
            self._update()
            return True
        if mode == DM_INIT and self.on_init is not None:
            self.on_init()                          # the CPU's INIT, at the next boundary
            return True
        self.dropped_ipis += 1                      # SMI, SIPI: see the docstring
        return False

    def _send_ipi(self) -> None:
        icr = self.ICR
        vector = icr & 0xFF
        mode = (icr >> 8) & 7
        shorthand = (icr >> 18) & 3
        if mode == DM_INIT and not icr & (1 << 14):
            self.dropped_ipis += 1                  # INIT level de-assert: no-op
            return
        if mode in (DM_FIXED, DM_LOWEST) and vector < 16:
            self._error(ESR_SEND_ILLEGAL)
            return
        if shorthand == 1:
            to_self = mode == DM_FIXED
            if not to_self:
                self.dropped_ipis += 1
                return
        elif shorthand == 2:
            to_self = True
        elif shorthand == 3:
            to_self = False
        else:
            to_self = self.matches(icr >> 56, bool(icr & (1 << 11)))
        if to_self:
            self._receive(vector, mode, bool(icr & (1 << 15)) and mode in (DM_FIXED,
                                                                          DM_LOWEST))

    # -- timer ---------------------------------------------------------------------------------------
    def _counts(self, now: int | None = None) -> int:
        """d: timer counts since the initial count was written."""
        if now is None:
            now = self.clock.now()
        bus_clocks = (now - self.timer_start) * BUS_HZ // self.clock.ips
        return self.timer_d0 + bus_clocks // _divide(self.DCR)

    def current_count(self) -> int:
        init = self.initial_count
        if not init:
            return 0
        d = self._counts()
        if self.LVT[LVT_TIMER] & LVT_PERIODIC:
            return init - d % (init + 1)
        return 0 if d >= init else init - d

    def _tick_of(self, d: int) -> int:
        """The first tick at which the count reaches ``d``."""
        need = (d - self.timer_d0) * _divide(self.DCR)           # bus clocks
        return self.timer_start + max(0, -(-need * self.clock.ips // BUS_HZ))

    def _timer_schedule(self) -> None:
        """(Re)plan the next expiry from the current count."""
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self.timer_target = None
        lvt = self.LVT[LVT_TIMER]
        init = self.initial_count
        if not init or lvt & LVT_MASKED or not self.enabled:
            return
        period = init + 1
        d = self._counts()
        if lvt & LVT_PERIODIC:
            target = (d // period + 1) * period
        elif d < period:
            target = period
        else:
            return
        self._arm(target)

    def _arm(self, target: int) -> None:
        self.timer_target = target
        self._event = self.clock.schedule(self._tick_of(target), self._timer_fire, "apic-timer")

    def _timer_fire(self) -> None:
        self._event = None
        target = self.timer_target
        self.timer_target = None
        self._local(LVT_TIMER)
        if self.LVT[LVT_TIMER] & LVT_PERIODIC and self.initial_count:
            self._arm(target + self.initial_count + 1)

    # -- Device API ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.base_msr = DEFAULT_BASE | BASE_EN | (BASE_BSP if self.bsp else 0)
        self._power_on()
        self._post()
        self.dropped_ipis = 0
        self.spurious = 0
        self._remap()
        self._update()

    def summary(self) -> dict:
        def vecs(bits):
            return " ".join(f"{v:02X}" for v in range(256) if bits >> v & 1) or "-"
        out = {"IA32_APIC_BASE": f"{self.base_msr:016X}" + ("" if self.enabled else " (off)"),
               "ID": f"{self.ID >> 24:02X}", "SVR": f"{self.SVR:03X}" +
               (" enabled" if self.SVR & SVR_ENABLE else " disabled"),
               "TPR": f"{self.TPR:02X}", "PPR": f"{self.ppr():02X}",
               "IRR": vecs(self.IRR), "ISR": vecs(self.ISR), "TMR": vecs(self.TMR),
               "ESR": f"{self.ESR:02X} (pending {self.esr_pending:02X})",
               "LDR/DFR": f"{self.LDR:08X}/{self.DFR:08X}", "ICR": f"{self.ICR:016X}"}
        for i, n in enumerate(LVT_NAMES):
            lvt = self.LVT[i]
            out[f"LVT {n}"] = f"{lvt:05X} {DM_NAMES.get((lvt >> 8) & 7, '?')}" + \
                (" masked" if lvt & LVT_MASKED else "")
        out["timer"] = (f"{'periodic' if self.LVT[LVT_TIMER] & LVT_PERIODIC else 'one-shot'} "
                        f"initial {self.initial_count:08X} current {self.current_count():08X} "
                        f"/{_divide(self.DCR)}")
        out["LINT0/LINT1"] = f"{int(self.lint0)}/{int(self.lint1)}"
        out["INTR"] = self.INTR
        out["dropped IPIs"] = self.dropped_ipis
        out["spurious"] = self.spurious
        return out

    _FIELDS = ("base_msr", "ID", "TPR", "LDR", "DFR", "SVR", "IRR", "ISR", "TMR", "ESR",
               "esr_pending", "ICR", "initial_count", "DCR", "timer_start", "timer_d0",
               "timer_target", "lint0", "lint1", "INTR", "extint_msg", "dropped_ipis",
               "spurious")

    def get_state(self) -> dict:
        st = {"version": self.STATE_VERSION, "LVT": list(self.LVT)}
        for k in self._FIELDS:
            v = getattr(self, k)
            st[k] = f"{v:x}" if k in ("IRR", "ISR", "TMR") else v   # 256-bit: as hex
        return st

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        if self._event is not None:
            self._event.cancel()
            self._event = None
        for k in self._FIELDS:
            v = st[k]
            setattr(self, k, int(v, 16) if k in ("IRR", "ISR", "TMR") else v)
        self.LVT = list(st["LVT"])
        self._remap()
        if self.timer_target is not None:
            self._arm(self.timer_target)
        # the CPU's INTR line is not CPU state: drive it again
        if self.on_intr is not None:
            self.on_intr(self.INTR)
