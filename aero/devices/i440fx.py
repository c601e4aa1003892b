"""Intel 82441FX PMC (i440FX host bridge) at 00:00.0, with PAM shadowing and SMRAM.

References: Intel 440FX PCIset data sheet (82441FX PMC / 82442FX DBX, order no. 290549),
section 3.2 "PMC Configuration Space Registers": PAM[6:0] "Programmable Attribute Map
Registers" (59h-5Fh), SMRAM "System Management RAM Control Register" (72h), DRB[7:0] "DRAM
Row Boundary" (60h-67h), PMCCFG (50h), DRAMC (57h), MTT/CLT (70h/71h), ERRCMD/ERRSTS (90h/91h);
section 4.1 "Memory Address Map" (the C0000h-FFFFFh segments).  PC conventions from QEMU
(hw/pci-host/i440fx.c, hw/pci-host/pam.c): vendor 8086h, device 1237h, revision 02h, class
060000h, subsystem 1AF4:1100 (SeaBIOS checks it to take its QEMU code paths: see
``qemu_detect`` in SeaBIOS src/fw/paravirt.c), SMRAM reset value 02h.

PAM: each register holds two 4-bit attribute fields (PAM0 only the high one, for the 64 KiB
segment F0000h-FFFFFh); bit 0 of a field is RE (read enable), bit 1 WE (write enable):

=====  ====================  ====================
reg    bits 1:0 (RE, WE)     bits 5:4 (RE, WE)
=====  ====================  ====================
59h    reserved              F0000h-FFFFFh
5Ah    C0000h-C3FFFh         C4000h-C7FFFh
5Bh    C8000h-CBFFFh         CC000h-CFFFFh
5Ch    D0000h-D3FFFh         D4000h-D7FFFh
5Dh    D8000h-DBFFFh         DC000h-DFFFFh
5Eh    E0000h-E3FFFh         E4000h-E7FFFh
5Fh    E8000h-EBFFFh         EC000h-EFFFFh
=====  ====================  ====================

RE=1: reads come from DRAM, RE=0: from PCI (the ROM side: the BIOS image for E0000h-FFFFFh,
whatever the machine put there for C0000h-DFFFFh, else all ones); WE=1: writes go to DRAM,
WE=0: to PCI (dropped).  All four combinations are exact, including "read ROM, write RAM"
(the mode firmware uses to copy itself under its own feet).  The bus does the work
(``aero.mem.bus.Bus.add_shadow`` / ``set_shadow``): the ROM image and the DRAM copy are kept
apart, and switching the read source invalidates translated code on those pages.

SMRAM (72h): bits 2:0 C_BASE_SEG hard-wired to 010b (A0000h), bit 3 G_SMRAME, bit 4 D_LCK,
bit 5 D_CLS, bit 6 D_OPEN.  Setting D_LCK clears D_OPEN and makes D_OPEN, G_SMRAME and D_LCK
read-only until reset (data sheet 3.2.20).  The value is stored and reported through
``on_smram(value)``; Aero has no SMM, so nothing is remapped (QEMU maps SMRAM only for SMM).
Every other register is stored as written.
"""

from __future__ import annotations

from .pci import PCIBus, PCIFunction
from .piix import PIIX3ISA, PIIX4PM, PIIXIDE

PAM0 = 0x59
SMRAM = 0x72
DRB0 = 0x60
PAM_BASE, PAM_END = 0xC0000, 0x100000

C_BASE_SEG, G_SMRAME, D_LCK, D_CLS, D_OPEN = 0x07, 0x08, 0x10, 0x20, 0x40


def pam_segments():
    """(register, shift, base, size) for the 13 PAM-controlled segments."""
    out = [(PAM0, 4, 0xF0000, 0x10000)]
    for i in range(6):
        base = 0xC0000 + i * 0x8000
        out.append((PAM0 + 1 + i, 0, base, 0x4000))
        out.append((PAM0 + 1 + i, 4, base + 0x4000, 0x4000))
    return out


SEGMENTS = pam_segments()


class I440FX(PCIFunction):
    name = "i440fx"
    VENDOR, DEVICE, REVISION = 0x8086, 0x1237, 0x02
    CLASS = 0x060000
    COMMAND_RESET = 0x0006          # data sheet PCICMD default: MAE and BME set
    STATUS_RESET = 0x0280           # fast back-to-back capable, DEVSEL# medium

    def __init__(self, membus=None, on_smram=None):
        self.membus = membus        # aero.mem.bus.Bus (None: registers only)
        self.on_smram = on_smram    # callable(value) after SMRAM changes
        super().__init__()
        if membus is not None:
            membus.add_shadow(PAM_BASE, PAM_END - PAM_BASE)
        self.apply_pam()

    def init_config(self) -> None:
        c = self.config
        for i in range(8):
            c[DRB0 + i] = 0x01      # DRB default (8 MB rows in the data sheet's units)
        c[0x57] = 0x01              # DRAMC
        c[0x70] = 0x20              # MTT
        c[0x71] = 0x10              # CLT
        c[SMRAM] = 0x02
        self.wmask[SMRAM] = D_OPEN | D_CLS | D_LCK | G_SMRAME

    # -- PAM ------------------------------------------------------------------------------------
    def attribute(self, base: int) -> tuple[bool, bool]:
        """(RE, WE) of the PAM segment holding ``base``."""
        for reg, shift, b, size in SEGMENTS:
            if b <= base < b + size:
                f = self.config[reg] >> shift
                return bool(f & 1), bool(f & 2)
        raise ValueError(f"{base:#x} is not PAM-controlled")

    def apply_pam(self) -> None:
        if self.membus is None:
            return
        for reg, shift, base, size in SEGMENTS:
            f = self.config[reg] >> shift
            self.membus.set_shadow(base, size, bool(f & 1), bool(f & 2))

    def load_rom(self, base: int, data: bytes) -> None:
        """Set the ROM side of PAM segments (what reads return while RE=0)."""
        self.membus.set_shadow_rom(base, data)

    def config_write(self, off: int, size: int, value: int) -> None:
        if off <= SMRAM < off + size and self.config[SMRAM] & D_LCK:
            # D_LCK: D_OPEN, G_SMRAME and D_LCK become read-only (D_CLS stays writable)
            self.wmask[SMRAM] = D_CLS
        super().config_write(off, size, value)

    def config_changed(self, off: int, size: int) -> None:
        end = off + size
        if off <= 0x5F and end > PAM0:
            self.apply_pam()
        if off <= SMRAM < end:
            if self.config[SMRAM] & D_LCK:
                self.config[SMRAM] &= ~D_OPEN
                self.wmask[SMRAM] = D_CLS
            if self.on_smram is not None:
                self.on_smram(self.config[SMRAM])

    def reset(self) -> None:
        super().reset()
        self.apply_pam()

    def state_loaded(self) -> None:
        if self.config[SMRAM] & D_LCK:
            self.wmask[SMRAM] = D_CLS

    # -- Device ---------------------------------------------------------------------------------
    def summary(self) -> dict:
        d = super().summary()
        segs = []
        for reg, shift, base, size in SEGMENTS:
            f = (self.config[reg] >> shift) & 3
            segs.append(f"{base >> 12:02X}:{('--', 'R-', '-W', 'RW')[f]}")
        d["PAM"] = " ".join(f"{self.config[PAM0 + i]:02X}" for i in range(7))
        d["segments"] = " ".join(sorted(segs))
        s = self.config[SMRAM]
        d["SMRAM"] = f"{s:02X}" + "".join(f" {n}" for bit, n in ((D_OPEN, "D_OPEN"),
                                                                  (D_CLS, "D_CLS"),
                                                                  (D_LCK, "D_LCK"),
                                                                  (G_SMRAME, "G_SMRAME"))
                                          if s & bit)
        return d

    def get_state(self) -> dict:
        st = super().get_state()
        if self.membus is not None:
            st["shadow"] = self.membus.shadow_get_state()
        return st

    def set_state(self, st: dict) -> None:
        super().set_state(st)
        if self.membus is not None and "shadow" in st:
            self.membus.shadow_set_state(st["shadow"])


class I440FXPCI:
    """The PCI side of an i440FX PC, wired: bus 0 with configuration mechanism #1, the host
    bridge at 00:00.0, PIIX3 at 00:01.0 (ISA bridge), 00:01.1 (IDE) and 00:01.3 (PIIX4-style
    PM), the PIRQ router on ``irq`` and the SCI on IRQ 9.  ``devices`` lists what a machine
    should reset and snapshot (the bus first)."""

    def __init__(self, iobus, membus, irq, clock, bus_master=None, power_off=None,
                 sleep_cb=None, on_smram=None):
        self.bus = PCIBus(irq)
        self.bus.register(iobus)
        self.host = self.bus.add(I440FX(membus, on_smram), 0, 0)
        self.isa = self.bus.add(PIIX3ISA(), 1, 0)
        self.ide = self.bus.add(PIIXIDE(bus_master), 1, 1)
        self.pm = self.bus.add(PIIX4PM(iobus, clock, power_off, sleep_cb), 1, 3)
        self.pm.register()
        self.devices = [self.bus, self.host, self.isa, self.ide, self.pm]
