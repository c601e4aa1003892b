"""The I/O APIC (Intel 82093AA) at FEC00000h, with 24 interrupt inputs.

References: Intel 82093AA I/O Advanced Programmable Interrupt Controller (IOAPIC) data sheet
(order no. 290566), 3.0 "Register Description": IOREGSEL (FEC00000h, 8 bits), IOWIN
(FEC00010h, 32 bits), IOAPICID (00h, bits 27:24), IOAPICVER (01h: 00170011h, version 11h,
maximum redirection entry 17h), IOAPICARB (02h, bits 27:24 arbitration ID, loaded from the ID),
IOREDTBL[0:23] (10h-3Fh, two registers each): bits 7:0 vector, 10:8 delivery mode (fixed,
lowest priority, SMI, NMI, INIT, ExtINT), 11 destination mode, 12 delivery status (RO), 13
interrupt input pin polarity (1 = active low), 14 remote IRR (RO), 15 trigger mode (1 = level),
16 mask, 63:56 destination.  After reset every entry is masked and the rest is 0.  Intel
MultiProcessor Specification 1.4, 3.6.2 / 5.3 for the PC wiring.

Wiring on the Aero PC (``aero.machine``, ``MachineConfig(apic=True)``):

* pin 0: the 8259A pair's INTR output (ExtINT through the I/O APIC: MP spec virtual wire mode
  via the I/O APIC);
* pin 2: ISA IRQ0 (the PIT), the usual override (the MADT says so: ISA IRQ 0 -> GSI 2);
* pins 1, 3-15: ISA IRQ 1, 3-15 (IRQ 2, the cascade, reaches no pin);
* pins 16-19: PIIX3's PIRQA#-PIRQD# directly (the PCI INTx# lines after the slot swizzle,
  before the PIRQRC routing to ISA IRQs, which goes on in parallel);
* pins 20-23: not connected (idle low).

Pins carry the *asserted* state of their source, whatever its electrical polarity (ISA lines
and the PIC's INTR are active high, PIRQx# active low; what reaches the pin logic here is
"asserted"), and the polarity bit (13) is stored and read back but does not invert the input.
That is QEMU's model (hw/intc/ioapic.c ignores the polarity), chosen because the firmware
tables of the PC disagree with the wires: the ACPI link devices say "active low" for PCI
interrupts routed to ISA IRQ 5/10/11 while QEMU's MADT (and Aero's) declares those GSIs active
high, and an inverting input would turn either reading into an interrupt storm.  Edge-triggered
entries deliver on a rising edge while unmasked (an edge on a masked pin is ignored, as the
data sheet says); level-triggered ones deliver while asserted, unmasked and remote IRR is 0,
setting remote IRR when a local APIC accepts; the local APIC's EOI of that vector (``eoi``)
clears remote IRR and delivers again if the pin is still asserted.  Unmasking or reprogramming
an asserted level entry delivers it then.

IOREGSEL takes byte or wider writes; IOWIN dword writes only (narrower ones are ignored, the
data sheet asks for dword accesses); reads of any width return the bytes addressed.

Messages go to the local APIC (``lapic.message``): delivery mode, destination mode and the
8-bit destination as written; with one CPU, lowest priority is fixed.  The version 11h part has
no EOI register (that came with version 20h), so EOIs only arrive from the local APIC.
"""

from __future__ import annotations

from ..mem.bus import MMIOHandler
from .apic import DM_EXTINT, DM_FIXED, DM_LOWEST
from .base import Device
from .pci import PCIIRQRouter

DEFAULT_BASE = 0xFEC00000
PINS = 24
VERSION = 0x00170011
RTE_MASKED = 1 << 16
RTE_LEVEL = 1 << 15
RTE_REMOTE_IRR = 1 << 14
RTE_ACTIVE_LOW = 1 << 13
RTE_WMASK = 0xFF000000_0001AFFF

PIN_PIC = 0                     # the 8259A's INTR
PIN_PIRQ = 16                   # PIRQA#..PIRQD# -> 16..19


def isa_pin(irq: int) -> int | None:
    """The I/O APIC pin ISA IRQ ``irq`` reaches (None for IRQ 2, the cascade)."""
    if irq == 0:
        return 2
    if irq == 2:
        return None
    return irq


class IOAPIC(Device, MMIOHandler):
    name = "ioapic"
    STATE_VERSION = 1

    def __init__(self, bus=None, lapic=None, base: int = DEFAULT_BASE, apic_id: int = 0):
        self.lapic = lapic
        self.base = base
        self.initial_id = apic_id
        self.wire = [False] * PINS          # the inputs: asserted or not
        self._power_on()
        if bus is not None:
            bus.map_mmio(base, 0x1000, self)

    def _power_on(self) -> None:
        self.IOREGSEL = 0
        self.ID = self.initial_id << 24
        self.RTE = [RTE_MASKED] * PINS
        self.delivered = 0                  # messages sent (summary)

    # -- pins ------------------------------------------------------------------------------------
    def asserted(self, pin: int) -> bool:
        return self.wire[pin]

    def set_pin(self, pin: int, level: bool) -> None:
        """Input ``pin`` is now asserted (``level`` true) or not."""
        level = bool(level)
        if self.wire[pin] == level:
            return
        self.wire[pin] = level
        rte = self.RTE[pin]
        if rte & RTE_MASKED or not level:
            return
        if rte & RTE_LEVEL:
            self._service(pin)
        else:
            self._deliver(pin)

    def set_isa_irq(self, irq: int, level: bool) -> None:
        pin = isa_pin(irq)
        if pin is not None:
            self.set_pin(pin, level)

    def set_pic_intr(self, level: bool) -> None:
        self.set_pin(PIN_PIC, level)

    def extint_acknowledge(self, pic) -> int:
        """The 8259A's INTA cycle as the local APIC runs it for an ExtINT (its ``pic_ack``): the
        PIC's INTR output drops during the cycle and rises again if another request is pending,
        which pin 0 sees as a fresh edge (else a second request would wait for INTR to toggle)."""
        self.set_pic_intr(False)
        vector = pic.acknowledge()
        self.set_pic_intr(pic.INTR)
        return vector

    def set_pirq(self, n: int, asserted: bool) -> None:
        self.set_pin(PIN_PIRQ + n, asserted)

    # -- delivery --------------------------------------------------------------------------------
    def _deliver(self, pin: int) -> bool:
        rte = self.RTE[pin]
        mode = (rte >> 8) & 7
        level = bool(rte & RTE_LEVEL) and mode in (DM_FIXED, DM_LOWEST)
        self.delivered += 1
        if self.lapic is None:
            return False
        return self.lapic.message(rte & 0xFF, mode, bool(rte & (1 << 11)), rte >> 56, level)

    def _service(self, pin: int) -> None:
        """A level entry: deliver if asserted, unmasked and not awaiting an EOI."""
        rte = self.RTE[pin]
        if rte & (RTE_MASKED | RTE_REMOTE_IRR) or not self.asserted(pin):
            return
        mode = (rte >> 8) & 7
        if self._deliver(pin) and mode in (DM_FIXED, DM_LOWEST):
            self.RTE[pin] |= RTE_REMOTE_IRR

    def eoi(self, vector: int) -> None:
        """The local APIC's EOI of a level-triggered ``vector``."""
        for pin in range(PINS):
            rte = self.RTE[pin]
            if rte & RTE_REMOTE_IRR and (rte & 0xFF) == vector:
                self.RTE[pin] = rte & ~RTE_REMOTE_IRR
                if rte & RTE_LEVEL:
                    self._service(pin)

    # -- registers -------------------------------------------------------------------------------
    def read_reg(self, index: int) -> int:
        if index == 0x00:
            return self.ID
        if index == 0x01:
            return VERSION
        if index == 0x02:
            return self.ID                  # arbitration ID = ID (loaded at reset)
        if 0x10 <= index < 0x10 + 2 * PINS:
            rte = self.RTE[(index - 0x10) >> 1]
            return (rte >> 32) if index & 1 else rte & 0xFFFFFFFF
        return 0

    def write_reg(self, index: int, value: int) -> None:
        if index == 0x00:
            self.ID = value & 0x0F000000
        elif 0x10 <= index < 0x10 + 2 * PINS:
            pin = (index - 0x10) >> 1
            old = self.RTE[pin]
            if index & 1:
                new = (old & 0xFFFFFFFF) | (value << 32)
            else:
                new = (old & ~0xFFFFFFFF) | value
            new = (new & RTE_WMASK) | (old & RTE_REMOTE_IRR)
            if not new & RTE_LEVEL:
                new &= ~RTE_REMOTE_IRR       # remote IRR is undefined for edge: keep it 0
            self.RTE[pin] = new
            if new & RTE_LEVEL:
                self._service(pin)

    def mmio_read(self, addr: int, size: int) -> int:
        off = addr & 0xFFF
        if off < 0x10:
            v = self.IOREGSEL if off == 0 else 0
            return v & ((1 << (8 * size)) - 1)
        if 0x10 <= off < 0x14:
            v = self.read_reg(self.IOREGSEL)
            return (v >> (8 * (off & 3))) & ((1 << (8 * size)) - 1)
        return 0

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        off = addr & 0xFFF
        if off == 0:
            self.IOREGSEL = value & 0xFF
        elif 0x10 <= off < 0x14 and size == 4:
            self.write_reg(self.IOREGSEL, value & 0xFFFFFFFF)

    # -- Device API ------------------------------------------------------------------------------
    def reset(self) -> None:
        self._power_on()

    def summary(self) -> dict:
        out = {"ID": f"{self.ID >> 24:X}", "IOREGSEL": f"{self.IOREGSEL:02X}",
               "messages": self.delivered}
        for pin in range(PINS):
            rte = self.RTE[pin]
            if rte & RTE_MASKED and not self.wire[pin]:
                continue
            out[f"pin {pin}"] = (f"{rte:016X} vec {rte & 0xFF:02X} "
                                 f"{'level' if rte & RTE_LEVEL else 'edge'}"
                                 f"{' low' if rte & RTE_ACTIVE_LOW else ''}"
                                 f"{' masked' if rte & RTE_MASKED else ''}"
                                 f"{' rIRR' if rte & RTE_REMOTE_IRR else ''}"
                                 f"{' asserted' if self.asserted(pin) else ''}")
        return out

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "IOREGSEL": self.IOREGSEL, "ID": self.ID,
                "RTE": [f"{r:x}" for r in self.RTE], "wire": list(self.wire),
                "delivered": self.delivered}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.IOREGSEL = st["IOREGSEL"]
        self.ID = st["ID"]
        self.RTE = [int(r, 16) for r in st["RTE"]]
        self.wire = list(st["wire"])
        self.delivered = st["delivered"]


class IOAPICPIRQRouter(PCIIRQRouter):
    """PIIX3's PIRQ router with PIRQA#-PIRQD# also wired to I/O APIC pins 16-19.  Replaces the
    bus's router (``aero.machine`` does it when the machine has APICs); state and ISA routing
    are the base class's."""

    def __init__(self, irq, ioapic: IOAPIC):
        super().__init__(irq)
        self.ioapic = ioapic

    def set_pirq(self, n: int, level: bool) -> None:
        super().set_pirq(n, level)
        self.ioapic.set_pirq(n, level)


class ISAIRQFanout:
    """The ISA IRQ lines' sink on an APIC machine: each line goes to the 8259A pair and to
    the I/O APIC (``isa_pin``)."""

    def __init__(self, pic_set_irq, ioapic: IOAPIC):
        self.pic_set_irq = pic_set_irq
        self.ioapic = ioapic

    def __call__(self, line: int, level: bool) -> None:
        self.pic_set_irq(line, level)
        self.ioapic.set_isa_irq(line, level)
