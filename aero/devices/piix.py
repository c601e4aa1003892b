"""PIIX3 PCI-to-ISA bridge (00:01.0), PIIX3 IDE (00:01.1) and a PIIX4-style PM function (00:01.3).

References: Intel 82371FB/82371SB PIIX/PIIX3 data sheet (order no. 290550), 2.2 "PCI to ISA
Bridge Configuration Registers" (PCICMD, PCISTS, IORT 4Ch, XBCS 4Eh, PIRQRC[A:D] 60h-63h, TOM
69h, MSTAT 6Ah, MBIRQ0/1 70h-71h, MBDMA 76h-77h, PCSC 78h, APMC A0h, DLC 82h, SMI/clock
registers A0h-ABh) and 2.3 "IDE Interface Configuration Registers" (class 010180h: legacy ports,
bus master capable; IDETIM 40h-43h with IDE decode enable bit 15, SIDETIM 44h, BMIBA at 20h =
BAR4, a 16-byte I/O block); Intel 82371AB PIIX4 data sheet (order no. 290562), 3.x "Power
Management Function (Function 3)": PMBA 40h (bits 15:6 base, bit 0 hard-wired 1), CNTA/CNTB
44h/48h, GPICTL 4Ch, DEVRESD-J 50h-6Bh with DEVACTB 58h (APMC_EN = bit 25), PMREGMISC 80h
(bit 0 PMIOSE: the PM I/O space is decoded), SMBBA 90h (bit 0 hard-wired 1), SMBHSTCFG D2h.
IDs and reset values follow QEMU (hw/isa/piix.c, hw/ide/piix.c, hw/acpi/piix4.c): 8086:7000,
8086:7010 and 8086:7113 rev 03h (class 068000h), all with subsystem 1AF4:1100; the PM function
starts with DEVACTB.APMC_EN set, QEMU's mark for "SMM already initialised" when the machine has
no SMM, so that SeaBIOS's ``smm_setup`` does not wait for an SMI that will never come.

PIRQ routing: PIRQRCx bit 7 = 1 disables routing, bits 3:0 name the ISA IRQ (3-7, 9-12, 14,
15; 0-2, 8 and 13 are reserved and route nowhere); bits 6:4 are reserved and read 0.  Every
write updates the bus's ``PCIIRQRouter``.  The ELCR (4D0h/4D1h) belongs to the PIC module.

IDE function and the bus-master contract.  The function takes ``bus_master``: any object with

* ``map_bus_master(io_base)`` - called with the base of the 16-port bus-master block whenever
  where it decodes changes: ``BAR4 & FFF0h`` while PCICMD.IOSE (bit 0) is set and the BAR is
  non-zero, else ``None`` (the block must not be decoded).  The object registers its own
  ports (BMICOM, BMISTA, BMIDTP for each channel) there.
* ``set_bus_master_enable(enabled)`` (optional) - PCICMD.BME (bit 2): while clear, the
  controller must not master the bus (a DMA command stays pending).

The legacy command/control blocks (1F0h-1F7h/3F6h, 170h-177h/376h) and IRQ 14/15 are the IDE
module's own (programming interface 80h: both channels in compatibility mode, not
switchable).  IDETIM's IDE decode enable bits are stored; ``channel_decode_enabled(ch)``
reports them (QEMU decodes the legacy ports regardless, and so does Aero).

PM function: PMBA/PMREGMISC/PCICMD changes move the ``aero.devices.acpi_pm.ACPIPM`` block
(decoded while PMREGMISC.PMIOSE = 1 and PMBA is non-zero; QEMU does not look at PCICMD.IOSE for
it, and neither does Aero).  SMBus (SMBBA, SMBHSTCFG) is stored only: no SMBus controller.
"""

from __future__ import annotations

from .acpi_pm import ACPIPM, PM_SIZE, SCI_IRQ
from .pci import BAR_IO, CMD_MASTER, PIIX_RESERVED_IRQS, PCIFunction

PIRQRC = 0x60
PIRQ_DISABLE = 0x80


class PIIX3ISA(PCIFunction):
    """Function 0: the PCI-to-ISA bridge (multi-function header)."""

    name = "piix3"
    VENDOR, DEVICE, REVISION = 0x8086, 0x7000, 0x00
    CLASS = 0x060100
    MULTIFUNCTION = True
    COMMAND_RESET = 0x0007
    STATUS_RESET = 0x0200

    def init_config(self) -> None:
        c, w = self.config, self.wmask
        c[0x4C] = 0x4D                  # IORT
        c[0x4E] = 0x03                  # XBCS: RTC and keyboard controller decode
        for i in range(4):
            c[PIRQRC + i] = PIRQ_DISABLE
            w[PIRQRC + i] = 0x8F
        c[0x69] = 0x02                  # TOM
        c[0x70] = 0x80                  # MBIRQ0: disabled
        c[0x71] = 0x80                  # MBIRQ1
        c[0x76] = c[0x77] = 0x0C        # MBDMA0/1
        c[0x78] = 0x02                  # PCSC
        c[0xA0] = 0x08                  # SMICNTL
        c[0xA8] = 0x0F                  # SMIREQ... (QEMU's reset value)

    def pirq_route(self, n: int) -> int | None:
        v = self.config[PIRQRC + n]
        if v & PIRQ_DISABLE:
            return None
        irq = v & 0x0F
        return None if irq in PIIX_RESERVED_IRQS else irq

    def _apply_routes(self) -> None:
        if self.bus is not None:
            for n in range(4):
                self.bus.router.set_route(n, self.pirq_route(n))

    def config_changed(self, off: int, size: int) -> None:
        if off < PIRQRC + 4 and off + size > PIRQRC:
            self._apply_routes()

    def reset(self) -> None:
        super().reset()
        self._apply_routes()

    def state_loaded(self) -> None:
        self._apply_routes()

    def summary(self) -> dict:
        d = super().summary()
        d["PIRQRC"] = " ".join(f"{'ABCD'[n]}={self.config[PIRQRC + n]:02X}" for n in range(4))
        d["TOM"] = f"{self.config[0x69]:02X}"
        return d


class PIIXIDE(PCIFunction):
    """Function 1: the IDE controller (legacy ports, bus-master block in BAR4)."""

    name = "piix3-ide"
    VENDOR, DEVICE, REVISION = 0x8086, 0x7010, 0x00
    CLASS = 0x010180
    COMMAND_RESET = 0x0000
    STATUS_RESET = 0x0280
    BMIBA_SIZE = 16

    def __init__(self, bus_master=None):
        self.bus_master = bus_master
        self._bme = None
        super().__init__()
        self.add_bar(4, self.BMIBA_SIZE, BAR_IO)
        self._tell_bme()                    # PCICMD.BME is 0 at power-on: no bus mastering yet

    def init_config(self) -> None:
        # IDETIM (40h-43h) and SIDETIM (44h) reset to 0; the rest of 40h-FFh is stored.
        pass

    def channel_decode_enabled(self, channel: int) -> bool:
        return bool(self.config[0x41 + 2 * channel] & 0x80)

    @property
    def bus_master_base(self) -> int | None:
        return self.mapped[4]

    def bar_changed(self, index: int, old, new) -> None:
        if index == 4 and self.bus_master is not None:
            self.bus_master.map_bus_master(new)

    def command_changed(self, old: int, new: int) -> None:
        self._tell_bme()

    def _tell_bme(self) -> None:
        bme = bool(self.command & CMD_MASTER)
        if bme != self._bme:
            self._bme = bme
            fn = getattr(self.bus_master, "set_bus_master_enable", None)
            if fn is not None:
                fn(bme)

    def reset(self) -> None:
        super().reset()
        self._tell_bme()

    def state_loaded(self) -> None:
        self._tell_bme()

    def summary(self) -> dict:
        d = super().summary()
        d["IDETIM"] = f"{self.get(0x40, 2):04X} {self.get(0x42, 2):04X}"
        return d


class PIIX4PM(PCIFunction):
    """Function 3: power management (ACPI PM I/O block, APM ports, SCI on IRQ 9)."""

    name = "piix4-pm"
    VENDOR, DEVICE, REVISION = 0x8086, 0x7113, 0x03
    CLASS = 0x068000
    PIN = 1                         # QEMU: INTA#; the SCI itself is wired to IRQ 9
    STATUS_RESET = 0x0280
    PMBA, PMREGMISC, SMBBA, SMBHSTCFG, DEVACTB = 0x40, 0x80, 0x90, 0xD2, 0x58
    APMC_EN = 1 << 25

    def __init__(self, iobus, clock, power_off=None, sleep_cb=None, gpe_base=0xAFE0,
                 smm=False):
        self.smm = smm
        self.smi_dropped = 0
        self.pm = ACPIPM(iobus, clock, sci_cb=self._sci, power_off=power_off,
                         sleep_cb=sleep_cb, smi_cb=self._smi, gpe_base=gpe_base)
        super().__init__()

    def register(self) -> None:
        """Claim the fixed ports (APMC/APMS B2h-B3h, GPE0 at AFE0h)."""
        self.pm.register_fixed()

    def init_config(self) -> None:
        c, w = self.config, self.wmask
        self.put32(self.PMBA, 0x00000001)
        self._put_mask(self.PMBA, 0x0000FFC0)
        self.put32(self.SMBBA, 0x00000001)
        self._put_mask(self.SMBBA, 0x0000FFF0)
        if not self.smm:
            c[self.DEVACTB + 3] = 0x02          # APMC_EN: "SMM already set up" (QEMU)
        c[self.PMREGMISC] = 0x00
        w[self.PMREGMISC] = 0x01

    def pm_base(self) -> int | None:
        """Where the PM block decodes: PMBA & FFC0h while PMREGMISC.PMIOSE (bit 0) is set."""
        if not self.config[self.PMREGMISC] & 1:
            return None
        base = self.get(self.PMBA, 4) & 0xFFC0
        return base or None

    def _remap(self) -> None:
        self.pm.map(self.pm_base())

    def config_changed(self, off: int, size: int) -> None:
        end = off + size
        if off < self.PMBA + 4 and end > self.PMBA or off <= self.PMREGMISC < end:
            self._remap()

    def _sci(self, level: bool) -> None:
        if self.bus is not None:
            self.bus.router.set_fixed("sci", SCI_IRQ, level)

    def _smi(self, value: int) -> None:
        if self.get(self.DEVACTB, 4) & self.APMC_EN:
            self.smi_dropped += 1               # no SMM in Aero: the SMI goes nowhere

    def reset(self) -> None:
        super().reset()
        self.pm.reset()
        self._remap()

    def state_loaded(self) -> None:
        self._remap()

    def summary(self) -> dict:
        d = super().summary()
        base = self.pm_base()
        d["PMBA"] = f"{self.get(self.PMBA, 4):08X}" + (" (decoded)" if base else "")
        d["SMBBA"] = f"{self.get(self.SMBBA, 4):08X}"
        d.update({f"PM {k}": v for k, v in self.pm.summary().items()})
        if self.pm.conflict is not None:
            d["PM conflict"] = f"{self.pm.conflict:#x} overlaps other ports: not decoded"
        return d

    def get_state(self) -> dict:
        st = super().get_state()
        st["pm"] = self.pm.get_state()
        st["smi_dropped"] = self.smi_dropped
        return st

    def set_state(self, st: dict) -> None:
        super().set_state(st)
        self.pm.set_state(st["pm"])
        self.smi_dropped = st["smi_dropped"]


__all__ = ["PIIX3ISA", "PIIXIDE", "PIIX4PM", "PM_SIZE"]
