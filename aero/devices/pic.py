"""Intel 8259A Programmable Interrupt Controller pair, wired as in a PC/AT.

References: Intel 8259A datasheet (order no. 231468): "Interrupt Sequence" (INTA cycles),
"Programming the 8259A" (ICW1-ICW4, OCW1-OCW3, Figures 6 and 8), "Fully Nested Mode",
"Automatic Rotation", "Specific Rotation", "Special Mask Mode", "Poll Command", "Reading the
8259A Status", "Edge and Level Triggered Modes" (default IR7 on a request that goes away before
INTA) and "The Cascade Buffer/Comparator"; Intel 82371SB (PIIX3) datasheet, ELCR1/ELCR2
(ports 04D0h/04D1h).  PC conventions follow QEMU's i8259.

Wiring: master at 20h-21h, slave at A0h-A1h, the slave's INT output on the master's IR2.
ISA IRQ n < 8 is master IRn, IRQ n >= 8 is slave IR(n-8).  ELCR bit n = 1 makes IRQ n
level-triggered (PIIX: IRQ 0, 1, 2, 8 and 13 cannot be level-triggered, those bits read 0);
ICW1.LTIM = 1 makes all eight lines of that chip level-triggered.

Supported: the full ICW1-ICW4 sequence (single/cascade, LTIM, IC4, vector base from ICW2, ICW3
stored, ICW4 AEOI and SFNM), OCW1 (IMR), OCW2 (non-specific EOI, specific EOI, rotate on
non-specific EOI, rotate in AEOI set/clear, set priority, rotate on specific EOI), OCW3 (read
IRR/ISR, poll, special mask mode), priority resolution with rotation, special fully nested mode
on the master (the cascade line's in-service bit does not block further slave requests), and
the spurious (default) IR7 when a request goes away between INTR and INTA: master spurious gives
vector base+7 with nothing put in service; a slave spurious gives the slave's base+7 (IRQ 15) and
leaves master IR2 in service, as on a real PC, so the handler must EOI the master only.
Power-on state: the datasheet leaves the chip undefined until it is initialised with ICW1-ICW4
("Programming the 8259A").  Aero powers on (and comes out of a hardware reset) with every request
masked (IMR = FFh), as Bochs does, vector base 0 and nothing pending or in service, so firmware
that never programs the PIC receives no interrupt even with EFLAGS.IF set.  (QEMU starts with
IMR = 00h: there a timer tick arrives through vector 0 as soon as IF is set.)  ICW1 clears IMR
("Initialization Command Words": "b. The Interrupt Mask Register is cleared"), so a PIC that was
initialised behaves as before; an OCW1 alone unmasks lines with the power-on vector base.
Not supported: the 8080/8085 mode (ICW4.uPM = 0: the three-byte CALL INTA sequence) - the
vector is always delivered as in 8086 mode, uPM is shown in summary(); buffered mode (ICW4.BUF,
M/S) only changes pin behaviour and is stored.
"""

from __future__ import annotations

from .base import Device


class I8259:
    """One 8259A chip."""

    __slots__ = ("name", "IRR", "ISR", "IMR", "lines", "priority_add", "vector_base",
                 "read_ISR", "poll", "special_mask", "init_state", "IC4", "SNGL", "LTIM",
                 "ADI", "ICW3", "AEOI", "rotate_on_AEOI", "SFNM", "uPM", "BUF_MS", "ELCR",
                 "elcr_mask", "is_master")

    def __init__(self, name, is_master, elcr_mask):
        self.name = name
        self.is_master = is_master
        self.elcr_mask = elcr_mask
        self.ELCR = 0
        self.IRR = 0
        self.lines = 0                 # the IR input pins as driven now
        self.hardware_reset()

    def hardware_reset(self):
        """Power-on / RESET: the ICW1 defaults with every request masked (see the module
        docstring: the datasheet leaves this state undefined)."""
        self.icw1_defaults()
        self.IMR = 0xFF

    def icw1_defaults(self):
        # The state ICW1 sets up: the edge-sense latches are cleared (an edge line needs a fresh
        # low-to-high transition), IMR cleared; level-triggered requests stay visible.
        self.IRR = self.lines & self.ELCR
        self.ISR = 0
        self.IMR = 0
        self.priority_add = 0          # the line with the highest priority (IR0 until rotated)
        self.vector_base = 0
        self.read_ISR = False
        self.poll = False
        self.special_mask = False
        self.init_state = 0            # 0 ready, 1 expects ICW2, 2 ICW3, 3 ICW4
        self.IC4 = False
        self.SNGL = False
        self.LTIM = False
        self.ADI = False
        self.ICW3 = 0
        self.AEOI = False
        self.rotate_on_AEOI = False
        self.SFNM = False
        self.uPM = True
        self.BUF_MS = 0

    # -- the priority resolver -----------------------------------------------------------------
    def level_mask(self) -> int:
        return 0xFF if self.LTIM else self.ELCR

    def priority_of(self, mask: int) -> int:
        """Rank (0 = highest) of the highest-priority bit set in mask, 8 if none."""
        if not mask:
            return 8
        p = 0
        pa = self.priority_add
        while not mask & (1 << ((p + pa) & 7)):
            p += 1
        return p

    def pending(self) -> int:
        """The IR line the chip would interrupt for now, or -1."""
        p = self.priority_of(self.IRR & ~self.IMR)
        if p == 8:
            return -1
        isr = self.ISR
        if self.special_mask:
            isr &= ~self.IMR                    # masked in-service levels do not block
        if self.SFNM and self.is_master:
            isr &= ~(1 << 2)                    # SFNM: the slave may nest within itself
        if p < self.priority_of(isr):
            return (p + self.priority_add) & 7
        return -1

    def set_level(self, ir: int, level: bool) -> None:
        bit = 1 << ir
        was = self.lines & bit
        if level:
            self.lines |= bit
            if not was or self.level_mask() & bit:   # rising edge sets the edge-sense latch
                self.IRR |= bit
        else:
            self.lines &= ~bit
            if self.level_mask() & bit:              # level: IRR follows the line
                self.IRR &= ~bit

    def intack(self, ir: int) -> None:
        bit = 1 << ir
        if self.AEOI:
            if self.rotate_on_AEOI:
                self.priority_add = (ir + 1) & 7
        else:
            self.ISR |= bit
        if not self.level_mask() & bit:
            self.IRR &= ~bit                  # edge: the latch is cleared by INTA

    # -- register file -------------------------------------------------------------------------
    def write(self, a0: int, value: int) -> None:
        if a0 == 0:
            if value & 0x10:                  # ICW1
                self.icw1_defaults()
                self.init_state = 1
                self.IC4 = bool(value & 0x01)
                self.SNGL = bool(value & 0x02)
                self.ADI = bool(value & 0x04)
                self.LTIM = bool(value & 0x08)
                self.IRR = self.lines & self.level_mask()
            elif value & 0x08:                # OCW3
                if value & 0x04:
                    self.poll = True
                if value & 0x02:
                    self.read_ISR = bool(value & 0x01)
                if value & 0x40:
                    self.special_mask = bool(value & 0x20)
            else:                             # OCW2
                cmd = value >> 5
                if cmd in (0, 4):             # rotate in AEOI clear / set
                    self.rotate_on_AEOI = cmd == 4
                elif cmd in (1, 5):           # non-specific EOI / rotate on non-specific EOI
                    p = self.priority_of(self.ISR)
                    if p != 8:
                        ir = (p + self.priority_add) & 7
                        self.ISR &= ~(1 << ir)
                        if cmd == 5:
                            self.priority_add = (ir + 1) & 7
                elif cmd == 3:                # specific EOI
                    self.ISR &= ~(1 << (value & 7))
                elif cmd == 6:                # set priority: L2-L0 becomes the lowest
                    self.priority_add = ((value & 7) + 1) & 7
                elif cmd == 7:                # rotate on specific EOI
                    ir = value & 7
                    self.ISR &= ~(1 << ir)
                    self.priority_add = (ir + 1) & 7
                # cmd 2: no operation
        else:
            st = self.init_state
            if st == 0:                       # OCW1
                self.IMR = value
            elif st == 1:                     # ICW2
                self.vector_base = value & 0xF8
                self.init_state = 2 if not self.SNGL else (3 if self.IC4 else 0)
            elif st == 2:                     # ICW3
                self.ICW3 = value
                self.init_state = 3 if self.IC4 else 0
            else:                             # ICW4
                self.uPM = bool(value & 0x01)
                self.AEOI = bool(value & 0x02)
                self.BUF_MS = (value >> 2) & 3
                self.SFNM = bool(value & 0x10)
                self.init_state = 0

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__
                if k not in ("name", "is_master", "elcr_mask")}

    def load(self, d: dict) -> None:
        for k, v in d.items():
            setattr(self, k, v)


class PIC(Device):
    """The master/slave 8259A pair with the PIIX ELCR."""

    name = "pic"
    STATE_VERSION = 1

    def __init__(self, iobus, on_intr):
        self.on_intr = on_intr
        self.master = I8259("master", True, 0xF8)
        self.slave = I8259("slave", False, 0xDE)
        self.INTR = False
        self.spurious = 0                       # count of spurious (default IR7) INTAs
        if iobus is not None:
            self.register(iobus)

    def register(self, iobus) -> None:
        iobus.register(0x20, 2, self, self.io_read, self.io_write)
        iobus.register(0xA0, 2, self, self.io_read, self.io_write)
        iobus.register(0x4D0, 2, self, self.io_read, self.io_write)

    # -- outputs -------------------------------------------------------------------------------
    def _update(self) -> None:
        # The slave's INT pin drives master IR2 (edge or level per the master's mode).
        self.master.set_level(2, self.slave.pending() >= 0)
        intr = self.master.pending() >= 0
        if intr != self.INTR:
            self.INTR = intr
            if self.on_intr is not None:
                self.on_intr(intr)

    # -- inputs --------------------------------------------------------------------------------
    def set_irq(self, line: int, level: bool) -> None:
        """Sink for IRQLines: ISA IRQ ``line`` (0-15) is now at ``level``."""
        if line < 8:
            self.master.set_level(line, bool(level))
        else:
            self.slave.set_level(line - 8, bool(level))
        self._update()

    def acknowledge(self) -> int:
        """The INTA cycle: resolve priority, put the winner in service, return the vector."""
        m = self.master
        ir = m.pending()
        if ir >= 0:
            if ir == 2 and not m.SNGL:
                s = self.slave
                ir2 = s.pending()
                if ir2 >= 0:
                    s.intack(ir2)
                    # the slave's INT pin drops during INTA: another pending slave request
                    # then gives master IR2 a fresh edge (see _update)
                    m.intack(2)
                    m.set_level(2, False)
                    self._update()
                    return s.vector_base + ir2
                else:
                    ir2 = 7                     # spurious IRQ 15: slave's default IR7
                    self.spurious += 1
                vector = s.vector_base + ir2
            else:
                vector = m.vector_base + ir
            m.intack(ir)
        else:
            vector = m.vector_base + 7          # spurious IRQ 7: nothing goes in service
            self.spurious += 1
        self._update()
        return vector

    # -- ports ---------------------------------------------------------------------------------
    def io_read(self, port: int, size: int) -> int:
        if port == 0x4D0:
            return self.master.ELCR
        if port == 0x4D1:
            return self.slave.ELCR
        chip = self.master if port < 0xA0 else self.slave
        if chip.poll:                           # poll: this read is the INTA
            chip.poll = False
            ir = chip.pending()
            if ir >= 0:
                chip.intack(ir)
                if chip is self.slave:
                    self.master.set_level(2, False)   # INT drops during the poll read
                self._update()
                return 0x80 | ir
            self._update()
            return 0
        if port & 1:
            return chip.IMR
        return chip.ISR if chip.read_ISR else chip.IRR

    def io_write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        if port in (0x4D0, 0x4D1):
            chip = self.master if port == 0x4D0 else self.slave
            chip.ELCR = value & chip.elcr_mask
            # IRR of lines that became level-triggered follows the line level now
            lm = chip.level_mask()
            chip.IRR = (chip.IRR & ~lm) | (chip.lines & lm)
        else:
            chip = self.master if port < 0xA0 else self.slave
            chip.write(port & 1, value)
        self._update()

    # -- Device API ----------------------------------------------------------------------------
    def reset(self) -> None:
        for c in (self.master, self.slave):
            c.ELCR = 0
            c.hardware_reset()
        self.spurious = 0
        self._update()

    def summary(self) -> dict:
        out = {}
        for c in (self.master, self.slave):
            n = c.name
            out[f"{n}.IRR"] = f"{c.IRR:08b}"
            out[f"{n}.ISR"] = f"{c.ISR:08b}"
            out[f"{n}.IMR"] = f"{c.IMR:08b}"
            out[f"{n}.ELCR"] = f"{c.ELCR:08b}"
            out[f"{n}.base"] = f"{c.vector_base:#04x}"
            modes = []
            modes.append("LTIM" if c.LTIM else "edge")
            if c.SNGL:
                modes.append("single")
            if c.AEOI:
                modes.append("AEOI")
            if c.rotate_on_AEOI:
                modes.append("rotAEOI")
            if c.SFNM:
                modes.append("SFNM")
            if c.special_mask:
                modes.append("SMM")
            if not c.uPM:
                modes.append("8080")
            if c.init_state:
                modes.append(f"awaiting ICW{c.init_state + 1}")
            out[f"{n}.mode"] = " ".join(modes)
            out[f"{n}.lowest"] = f"IR{(c.priority_add - 1) & 7}"
            out[f"{n}.read"] = "poll" if c.poll else ("ISR" if c.read_ISR else "IRR")
        out["INTR"] = self.INTR
        out["spurious"] = self.spurious
        return out

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "master": self.master.state(),
                "slave": self.slave.state(), "INTR": self.INTR, "spurious": self.spurious}

    def set_state(self, state: dict) -> None:
        self.check_version(state)
        self.master.load(state["master"])
        self.slave.load(state["slave"])
        self.spurious = state["spurious"]
        self.INTR = state["INTR"]
        intr = self.master.pending() >= 0
        if intr != self.INTR:
            self.INTR = intr
        if self.on_intr is not None:
            self.on_intr(self.INTR)
