"""PCI configuration mechanism #1, BARs, INTx routing, the i440FX PAM/SMRAM registers and the
PIIX3/PIIX4 functions, all driven through the I/O ports the way firmware drives them."""

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.i440fx import I440FXPCI
from aero.devices.pci import BAR_IO, BAR_MEM32, BAR_MEM64, PCIFunction, pirq_of
from aero.devices.sysports import ResetControl
from aero.mem.bus import Bus, MMIO, RAM, ROM, UNMAPPED
from aero.testing.fakecpu import FakeCPU


class FakeBusMaster:
    def __init__(self):
        self.calls = []

    def map_bus_master(self, io_base):
        self.calls.append(("map", io_base))

    def set_bus_master_enable(self, enabled):
        self.calls.append(("bme", enabled))


def make_rom(size=128 << 10):
    """A recognisable BIOS image: byte i = (i * 7 + 3) & 0xFF, "ROMSIG" at its start."""
    data = bytearray((i * 7 + 3) & 0xFF for i in range(size))
    data[:6] = b"ROMSIG"
    return bytes(data)


class Rig:
    def __init__(self, rom_first=True, ram=2 << 20):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=20_000_000)
        self.io = IOBus()
        self.mem = Bus(ram)
        self.mem.set_kind(0xA0000, 0x60000, UNMAPPED)
        self.rom = make_rom()
        if rom_first:
            self.load_rom()
        self.irq_log = []
        self.irq = IRQLines(lambda line, level: self.irq_log.append((line, level)))
        self.bm = FakeBusMaster()
        self.offs = []
        self.pc = I440FXPCI(self.io, self.mem, self.irq, self.clock, bus_master=self.bm,
                            power_off=lambda: self.offs.append(True))
        self.rcr = ResetControl()
        self.rcr.register(self.io)
        if not rom_first:
            self.load_rom()

    def load_rom(self):
        """As Machine.load_bios: the whole image at the top of 4 GiB, the last 128 KiB below
        1 MiB."""
        self.mem.map_rom((1 << 32) - len(self.rom), self.rom)
        self.mem.map_rom(0x100000 - len(self.rom), self.rom)

    # port I/O as the CPU does it
    def outl(self, port, v):
        self.io.write(port, 4, v)

    def outw(self, port, v):
        self.io.write(port, 2, v)

    def outb(self, port, v):
        self.io.write(port, 1, v)

    def inl(self, port):
        return self.io.read(port, 4)

    def inw(self, port):
        return self.io.read(port, 2)

    def inb(self, port):
        return self.io.read(port, 1)

    # configuration cycles, exactly as SeaBIOS's pci_config_read/write do them
    def addr(self, dev, fn, reg):
        self.outl(0xCF8, 0x80000000 | dev << 11 | fn << 8 | (reg & 0xFC))

    def cfg_readl(self, dev, fn, reg):
        self.addr(dev, fn, reg)
        return self.inl(0xCFC)

    def cfg_readw(self, dev, fn, reg):
        self.addr(dev, fn, reg)
        return self.inw(0xCFC + (reg & 2))

    def cfg_readb(self, dev, fn, reg):
        self.addr(dev, fn, reg)
        return self.inb(0xCFC + (reg & 3))

    def cfg_writel(self, dev, fn, reg, v):
        self.addr(dev, fn, reg)
        self.outl(0xCFC, v)

    def cfg_writew(self, dev, fn, reg, v):
        self.addr(dev, fn, reg)
        self.outw(0xCFC + (reg & 2), v)

    def cfg_writeb(self, dev, fn, reg, v):
        self.addr(dev, fn, reg)
        self.outb(0xCFC + (reg & 3), v)


@pytest.fixture
def rig():
    return Rig()


# ---------------------------------------------------------------------------------------------
# Configuration mechanism #1
# ---------------------------------------------------------------------------------------------

def test_ids_of_the_i440fx_pc(rig):
    assert rig.cfg_readl(0, 0, 0x00) == 0x12378086
    assert rig.cfg_readl(0, 0, 0x08) == 0x06000002          # class 060000, rev 02
    assert rig.cfg_readw(0, 0, 0x2C) == 0x1AF4               # what SeaBIOS's qemu_detect wants
    assert rig.cfg_readw(0, 0, 0x2E) == 0x1100
    assert rig.cfg_readl(1, 0, 0x00) == 0x70008086
    assert rig.cfg_readb(1, 0, 0x0E) == 0x80                 # multi-function
    assert rig.cfg_readl(1, 0, 0x08) >> 8 == 0x060100
    assert rig.cfg_readl(1, 1, 0x00) == 0x70108086
    assert rig.cfg_readl(1, 1, 0x08) == 0x01018000           # IDE, prog-if 80h, rev 0
    assert rig.cfg_readb(1, 1, 0x0E) == 0x00
    assert rig.cfg_readl(1, 3, 0x00) == 0x71138086
    assert rig.cfg_readl(1, 3, 0x08) == 0x06800003
    assert rig.cfg_readb(1, 3, 0x3D) == 1                    # INTA#


def test_absent_functions_and_disabled_mechanism_read_all_ones(rig):
    assert rig.cfg_readl(5, 0, 0) == 0xFFFFFFFF
    assert rig.cfg_readw(1, 2, 0) == 0xFFFF
    assert rig.cfg_readb(0, 7, 0) == 0xFF
    rig.outl(0xCF8, 0x00010000)                              # bus 1: nothing there
    rig.outl(0xCF8, 0x80010000)
    assert rig.inl(0xCFC) == 0xFFFFFFFF
    rig.outl(0xCF8, 0x00000000)                              # enable bit clear
    assert rig.inl(0xCFC) == 0xFFFFFFFF
    rig.outl(0xCFC, 0x12345678)                              # ignored
    assert rig.cfg_readl(0, 0, 0) == 0x12378086


def test_config_address_register(rig):
    rig.outl(0xCF8, 0xFFFFFFFF)
    assert rig.inl(0xCF8) == 0x80FFFFFC                      # reserved 30:24 and 1:0 read 0
    rig.outl(0xCF8, 0x80000000)
    assert rig.inl(0xCF8) == 0x80000000                      # the classic "PCI present" probe
    rig.outb(0xCF8, 0x12)                                    # only dword writes load it
    rig.outw(0xCF8, 0x3456)
    assert rig.inl(0xCF8) == 0x80000000
    # 0CF9h stays with the reset control register
    assert rig.io.owner[0xCF9] is rig.rcr
    assert rig.io.owner[0xCF8] is rig.pc.bus
    assert all(rig.io.owner[p] is rig.pc.bus for p in range(0xCFC, 0xD00))
    rig.outb(0xCF9, 0x02)
    assert rig.inb(0xCF9) == 0x02 and rig.inl(0xCF8) == 0x80000000


def test_byte_and_word_offsets_in_config_data(rig):
    rig.addr(0, 0, 0)
    assert [rig.inb(0xCFC + i) for i in range(4)] == [0x86, 0x80, 0x37, 0x12]
    assert rig.inw(0xCFC) == 0x8086 and rig.inw(0xCFE) == 0x1237
    rig.addr(1, 1, 0x40)
    rig.outw(0xCFE, 0x8000)                                  # IDETIM secondary at 42h
    rig.outb(0xCFD, 0x80)                                    # IDETIM primary high byte, 41h
    assert rig.cfg_readl(1, 1, 0x40) == 0x80008000
    assert rig.pc.ide.channel_decode_enabled(0) and rig.pc.ide.channel_decode_enabled(1)


def test_read_only_header_and_write_one_to_clear_status(rig):
    rig.cfg_writel(0, 0, 0x00, 0)
    assert rig.cfg_readl(0, 0, 0x00) == 0x12378086
    rig.cfg_writeb(0, 0, 0x3C, 0x0B)                         # Interrupt Line is writable
    assert rig.cfg_readb(0, 0, 0x3C) == 0x0B
    f = rig.pc.ide
    f.put16(0x06, 0x0280 | 0x2000 | 0x0100)                  # master abort + parity seen
    rig.cfg_writew(1, 1, 0x06, 0x2000)
    assert rig.cfg_readw(1, 1, 0x06) == 0x0380
    rig.cfg_writew(1, 1, 0x06, 0xFFFF)
    assert rig.cfg_readw(1, 1, 0x06) == 0x0280               # DEVSEL/FBB are read-only


# ---------------------------------------------------------------------------------------------
# BARs
# ---------------------------------------------------------------------------------------------

class TestDevice(PCIFunction):
    __test__ = False
    name = "testdev"
    VENDOR, DEVICE = 0x1234, 0x1111
    CLASS = 0x030000
    PIN = 1

    def __init__(self):
        super().__init__()
        self.add_bar(0, 0x1000, BAR_MEM32)
        self.add_bar(1, 0x20, BAR_IO)
        self.add_bar(2, 0x100000, BAR_MEM64, prefetch=True)
        self.add_rom_bar(0x10000)
        self.events = []
        self.on_bar(lambda fn, i, old, new: self.events.append((i, old, new)))


def add_test_device(rig, slot=3):
    d = TestDevice()
    rig.pc.bus.add(d, slot)
    return d


def size_bar(rig, dev, reg, allones=0xFFFFFFFF):
    old = rig.cfg_readl(dev, 0, reg)
    rig.cfg_writel(dev, 0, reg, allones)
    v = rig.cfg_readl(dev, 0, reg)
    rig.cfg_writel(dev, 0, reg, old)
    return v


def test_bar_sizing(rig):
    add_test_device(rig)
    assert size_bar(rig, 3, 0x10) == 0xFFFFF000              # 4 KiB memory, 32-bit
    assert size_bar(rig, 3, 0x14) == 0xFFFFFFE1              # 32 ports of I/O
    assert size_bar(rig, 3, 0x18) == 0xFFF0000C              # 1 MiB, 64-bit, prefetchable
    assert size_bar(rig, 3, 0x1C) == 0xFFFFFFFF              # its upper half
    assert size_bar(rig, 3, 0x30, 0xFFFFF800) == 0xFFFF0000  # SeaBIOS's ROM sizing write
    assert size_bar(rig, 3, 0x30) == 0xFFFF0001              # enable bit is writable
    assert size_bar(rig, 3, 0x24) == 0                       # unimplemented BAR5
    # IDE: BAR4 is the 16-byte bus-master block; BAR0-3 are absent (legacy mode)
    rig.cfg_writel(1, 1, 0x20, 0xFFFFFFFF)
    assert rig.cfg_readl(1, 1, 0x20) == 0xFFFFFFF1
    rig.cfg_writel(1, 1, 0x10, 0xFFFFFFFF)
    assert rig.cfg_readl(1, 1, 0x10) == 0


def test_bar_decoding_follows_command_and_address(rig):
    d = add_test_device(rig)
    rig.cfg_writel(3, 0, 0x10, 0xFEBF1234)                   # low bits below the size drop
    rig.cfg_writel(3, 0, 0x14, 0xC041)
    assert rig.cfg_readl(3, 0, 0x10) == 0xFEBF1000
    assert rig.cfg_readl(3, 0, 0x14) == 0xC041 & ~0x1F | 1
    assert d.events == []                                    # Command still 0: nothing decodes
    rig.cfg_writew(3, 0, 0x04, 0x0001)                       # IOSE
    assert d.events == [(1, None, 0xC040)]
    rig.cfg_writew(3, 0, 0x04, 0x0003)                       # + MSE
    assert d.events[-1] == (0, None, 0xFEBF1000)
    rig.cfg_writel(3, 0, 0x18, 0xFD000000)
    assert d.events[-1] == (2, None, 0xFD000000)
    # sizing while decoding: all ones is not a place, the BAR goes away and comes back
    rig.cfg_writel(3, 0, 0x10, 0xFFFFFFFF)
    assert d.events[-1] == (0, 0xFEBF1000, None)
    rig.cfg_writel(3, 0, 0x10, 0xFEBF0000)
    assert d.events[-1] == (0, None, 0xFEBF0000)
    # the ROM needs its enable bit as well as MSE
    rig.cfg_writel(3, 0, 0x30, 0xFEB00000)
    assert d.mapped[6] is None
    rig.cfg_writel(3, 0, 0x30, 0xFEB00001)
    assert d.events[-1] == (6, None, 0xFEB00000) and d.bar_address(6) == 0xFEB00000
    rig.cfg_writew(3, 0, 0x04, 0x0000)
    assert d.mapped == [None] * 7
    assert set(e for e in d.events[-4:]) == {(0, 0xFEBF0000, None), (1, 0xC040, None),
                                             (2, 0xFD000000, None), (6, 0xFEB00000, None)}


def test_io_bar_outside_64k_is_not_decoded(rig):
    d = add_test_device(rig)
    rig.cfg_writew(3, 0, 0x04, 0x0001)
    rig.cfg_writel(3, 0, 0x14, 0x12340001)
    assert d.mapped[1] is None
    rig.cfg_writel(3, 0, 0x14, 0xFFE1)
    assert d.mapped[1] == 0xFFE0


def test_ide_bus_master_contract(rig):
    bm = rig.bm
    assert bm.calls == [("bme", False)]                      # PCICMD.BME is 0 at power-on
    rig.cfg_writel(1, 1, 0x20, 0xC001)
    assert bm.calls == [("bme", False)]
    rig.cfg_writew(1, 1, 0x04, 0x0005)                       # IOSE + BME (what SeaBIOS does)
    assert ("map", 0xC000) in bm.calls and ("bme", True) in bm.calls
    assert rig.pc.ide.bus_master_base == 0xC000
    rig.cfg_writel(1, 1, 0x20, 0xD001)
    assert bm.calls[-1] == ("map", 0xD000)
    rig.cfg_writew(1, 1, 0x04, 0x0000)
    assert ("map", None) in bm.calls[-2:] and ("bme", False) in bm.calls[-2:]
    rig.pc.ide.reset()
    assert rig.cfg_readl(1, 1, 0x20) == 0x00000001


# ---------------------------------------------------------------------------------------------
# INTx routing
# ---------------------------------------------------------------------------------------------

def test_swizzle_matches_qemu_and_seabios():
    # SeaBIOS piix_pci_slot_get_irq: pci_irqs[(pin - 1 + slot - 1) & 3]
    for slot in range(32):
        for pin in range(1, 5):
            assert pirq_of(slot, pin) == (pin - 1 + slot - 1) & 3
    assert pirq_of(1, 1) == 0 and pirq_of(0, 1) == 3 and pirq_of(3, 1) == 2


def test_pirq_routing_is_level_and_wire_ored(rig):
    d = add_test_device(rig, slot=3)                         # INTA# -> PIRQC
    assert [rig.cfg_readb(1, 0, 0x60 + i) for i in range(4)] == [0x80] * 4
    d.set_irq(True)
    assert rig.irq_log == []                                 # PIRQC routing disabled
    rig.cfg_writeb(1, 0, 0x62, 11)
    assert rig.irq_log == [(11, True)] and rig.irq.level[11]
    assert rig.cfg_readw(3, 0, 0x06) & 0x0008                # Status.Interrupt Status
    d2 = TestDevice()
    rig.pc.bus.add(d2, 7)                                    # slot 7 INTA# -> PIRQC too
    d2.set_irq(True)
    d.set_irq(False)
    assert rig.irq.level[11]                                 # still held by the other one
    d2.set_irq(False)
    assert not rig.irq.level[11]
    d.set_irq(True)
    assert rig.irq.level[11]
    rig.cfg_writew(3, 0, 0x04, 0x0400)                       # Interrupt Disable
    assert not rig.irq.level[11]
    rig.cfg_writew(3, 0, 0x04, 0x0000)
    assert rig.irq.level[11]
    rig.cfg_writeb(1, 0, 0x62, 10)                           # re-route: 11 drops, 10 rises
    assert rig.irq_log[-2:] == [(11, False), (10, True)]
    rig.cfg_writeb(1, 0, 0x62, 0x8A)                         # bit 7: disabled
    assert not rig.irq.level[10]
    rig.cfg_writeb(1, 0, 0x62, 13)                           # IRQ 13 is reserved
    assert not any(rig.irq.level)
    rig.cfg_writeb(1, 0, 0x62, 0xFF)
    assert rig.cfg_readb(1, 0, 0x62) == 0x8F                 # bits 6:4 reserved


def test_seabios_pirq_setup(rig):
    """piix_isa_bridge_setup writes 10, 10, 11, 11 to 60h-63h."""
    for i, irq in enumerate((10, 10, 11, 11)):
        rig.cfg_writeb(1, 0, 0x60 + i, irq)
    assert rig.pc.bus.router.route == [10, 10, 11, 11]
    assert rig.cfg_readl(1, 0, 0x60) == 0x0B0B0A0A
    d = add_test_device(rig, slot=2)                         # INTA# -> PIRQB -> IRQ 10
    d.set_irq(True)
    assert rig.irq.level[10] and not rig.irq.level[11]


def test_piix3_reset_values(rig):
    assert rig.cfg_readw(1, 0, 0x04) == 0x0007
    assert rig.cfg_readb(1, 0, 0x4C) == 0x4D
    assert rig.cfg_readb(1, 0, 0x4E) == 0x03
    assert rig.cfg_readb(1, 0, 0x69) == 0x02
    rig.cfg_writeb(1, 0, 0x69, 0x20)                         # TOM: stored as written
    assert rig.cfg_readb(1, 0, 0x69) == 0x20


# ---------------------------------------------------------------------------------------------
# i440FX PAM
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rom_first", [True, False])
def test_pam0_switches_f0000_between_rom_and_ram(rom_first):
    rig = Rig(rom_first=rom_first)
    m = rig.mem
    rom_f0000 = rig.rom[0x10000:]                            # image offset of F0000h
    assert rig.cfg_readb(0, 0, 0x59) == 0x00
    assert m.read_bytes(0xF0000, 16) == rom_f0000[:16]
    assert m.read32(0xFFFF0) == int.from_bytes(rom_f0000[0xFFF0:0xFFF4], "little")
    m.write32(0xF0000, 0xDEADBEEF)                           # PAM 00: writes go nowhere
    assert m.read_bytes(0xF0000, 4) == rom_f0000[:4]
    assert m.shadow_dram(0xF0000, 4) == bytes(4)

    rig.cfg_writeb(0, 0, 0x59, 0x20)                         # WE only: read ROM, write RAM
    assert m.kind[0xF0] == MMIO
    m.write32(0xF0000, 0xDEADBEEF)
    m.write8(0xFFFFF, 0x5A)
    assert m.read_bytes(0xF0000, 4) == rom_f0000[:4]
    assert m.read8(0xFFFFF) == rom_f0000[0xFFFF]
    assert m.shadow_dram(0xF0000, 4) == bytes.fromhex("EFBEADDE")

    rig.cfg_writeb(0, 0, 0x59, 0x10)                         # RE only: read RAM, writes dropped
    assert m.kind[0xF0] == ROM
    assert m.read32(0xF0000) == 0xDEADBEEF and m.read8(0xFFFFF) == 0x5A
    m.write32(0xF0000, 0x11111111)
    assert m.read32(0xF0000) == 0xDEADBEEF

    rig.cfg_writeb(0, 0, 0x59, 0x30)                         # RE + WE: plain RAM
    assert m.kind[0xF0] == RAM
    m.write32(0xF0004, 0x01020304)
    assert m.read32(0xF0004) == 0x01020304

    rig.cfg_writeb(0, 0, 0x59, 0x00)                         # back to the ROM, DRAM kept
    assert m.read_bytes(0xF0000, 8) == rom_f0000[:8]
    assert m.shadow_dram(0xF0000, 8) == bytes.fromhex("EFBEADDE04030201")
    rig.cfg_writeb(0, 0, 0x59, 0x10)
    assert m.read_bytes(0xF0000, 8) == bytes.fromhex("EFBEADDE04030201")
    # the high alias never changes
    assert m.read_bytes(0xFFFF0000, 16) == rom_f0000[:16]


def test_seabios_make_bios_writable_sequence(rig):
    """SeaBIOS __make_bios_writable_intel: dword reads of 58h/5Ch, PAM1-6 = 33h, PAM0 = 30h,
    dword writes back, then memcpy from the 4 GiB alias into F0000h-FFFFFh."""
    m = rig.mem
    lo = rig.cfg_readl(0, 0, 0x58)
    hi = rig.cfg_readl(0, 0, 0x5C)
    pam = bytearray(lo.to_bytes(4, "little") + hi.to_bytes(4, "little"))
    for i in range(6):
        pam[2 + i] = 0x33
    pam[1] = 0x30
    rig.cfg_writel(0, 0, 0x58, int.from_bytes(pam[:4], "little"))
    rig.cfg_writel(0, 0, 0x5C, int.from_bytes(pam[4:], "little"))
    assert rig.pc.host.attribute(0xF0000) == (True, True)
    assert rig.pc.host.attribute(0xC0000) == (True, True)
    assert m.read_bytes(0xF0000, 6) == bytes(6)               # fresh DRAM
    top = (1 << 32) - len(rig.rom)
    m.write_bytes(0xE0000, m.read_bytes(top, len(rig.rom)))
    assert m.read_bytes(0xE0000, len(rig.rom)) == rig.rom
    # make_bios_readonly: F0000 read-only RAM
    rig.cfg_writeb(0, 0, 0x59, 0x10)
    m.write8(0xF0000, 0)
    assert m.read_bytes(0xE0000, len(rig.rom)) == rig.rom


def test_pam_segment_granularity(rig):
    m = rig.mem
    assert m.kind[0xC0] == UNMAPPED and m.read8(0xC0000) == 0xFF   # no option ROM there
    rig.cfg_writeb(0, 0, 0x5A, 0x03)                         # PAM1 low: C0000-C3FFF only
    m.write8(0xC0000, 0x11)
    m.write8(0xC3FFF, 0x22)
    m.write8(0xC4000, 0x33)
    assert (m.read8(0xC0000), m.read8(0xC3FFF), m.read8(0xC4000)) == (0x11, 0x22, 0xFF)
    rig.cfg_writeb(0, 0, 0x5A, 0x33)
    m.write8(0xC4000, 0x33)
    assert m.read8(0xC4000) == 0x33
    # each of the 12 16 KiB segments answers to its own nibble
    for i, base in enumerate(range(0xC0000, 0xF0000, 0x4000)):
        reg, shift = 0x5A + i // 2, 4 * (i % 2)
        rig.cfg_writeb(0, 0, reg, 0x00)
        rig.cfg_writeb(0, 0, reg, 0x3 << shift)
        assert rig.pc.host.attribute(base) == (True, True)
        assert rig.pc.host.attribute(base + 0x4000 - 1) == (True, True)
        other = base ^ 0x4000
        assert rig.pc.host.attribute(other) == (False, False)
        rig.cfg_writeb(0, 0, reg, 0x00)


def test_pam_switch_invalidates_translated_code(rig):
    m = rig.mem
    seen = []
    m.on_code_write = lambda a, n: seen.append((a, n))
    m.set_code(0xF5, True)
    rig.cfg_writeb(0, 0, 0x59, 0x20)                         # read source unchanged: nothing
    assert seen == []
    rig.cfg_writeb(0, 0, 0x59, 0x30)                         # reads now come from DRAM
    assert (0xF5000, 0x1000) in seen


def test_pam_reset_and_state_round_trip(rig):
    m = rig.mem
    rig.cfg_writeb(0, 0, 0x59, 0x30)
    m.write32(0xF0000, 0xCAFEF00D)
    rig.cfg_writeb(0, 0, 0x59, 0x00)
    st = rig.pc.host.get_state()
    ram = bytes(m.ram)
    other = Rig()
    other.mem.ram[:] = ram
    other.pc.host.set_state(st)
    assert other.cfg_readb(0, 0, 0x59) == 0x00
    other.cfg_writeb(0, 0, 0x59, 0x10)
    assert other.mem.read32(0xF0000) == 0xCAFEF00D
    # a system reset returns to PAM 0 (ROM) and keeps DRAM
    rig.cfg_writeb(0, 0, 0x59, 0x10)
    rig.pc.host.reset()
    assert rig.cfg_readb(0, 0, 0x59) == 0
    assert m.read_bytes(0xF0000, 6) == rig.rom[0x10000:0x10006]
    assert m.shadow_dram(0xF0000, 4) == (0xCAFEF00D).to_bytes(4, "little")


def test_smram_register(rig):
    assert rig.cfg_readb(0, 0, 0x72) == 0x02
    rig.cfg_writeb(0, 0, 0x72, 0x4A)                         # D_OPEN | G_SMRAME (SeaBIOS)
    assert rig.cfg_readb(0, 0, 0x72) == 0x4A
    rig.cfg_writeb(0, 0, 0x72, 0x07)                         # C_BASE_SEG is hard-wired 010b
    assert rig.cfg_readb(0, 0, 0x72) == 0x02
    rig.cfg_writeb(0, 0, 0x72, 0x5A)                         # D_LCK: D_OPEN drops
    assert rig.cfg_readb(0, 0, 0x72) == 0x1A
    rig.cfg_writeb(0, 0, 0x72, 0x62)                         # locked: only D_CLS moves
    assert rig.cfg_readb(0, 0, 0x72) == 0x3A
    rig.pc.host.reset()
    assert rig.cfg_readb(0, 0, 0x72) == 0x02
    rig.cfg_writeb(0, 0, 0x72, 0x4A)
    assert rig.cfg_readb(0, 0, 0x72) == 0x4A


def test_other_host_registers_are_stored(rig):
    assert rig.cfg_readl(0, 0, 0x60) == 0x01010101           # DRB0-3
    rig.cfg_writel(0, 0, 0x60, 0x08040201)
    assert rig.cfg_readl(0, 0, 0x60) == 0x08040201
    rig.cfg_writeb(0, 0, 0x50, 0x80)
    assert rig.cfg_readb(0, 0, 0x50) == 0x80


# ---------------------------------------------------------------------------------------------
# PIIX4 PM function (configuration side)
# ---------------------------------------------------------------------------------------------

def test_pm_function_maps_its_io_block(rig):
    io = rig.io
    assert rig.cfg_readl(1, 3, 0x40) == 0x00000001           # PMBA: I/O indicator bit
    assert rig.cfg_readl(1, 3, 0x58) & (1 << 25)              # DEVACTB.APMC_EN (no SMM)
    # SeaBIOS piix4_pm_config_setup
    rig.cfg_writeb(1, 3, 0x3C, 9)
    rig.cfg_writel(1, 3, 0x40, 0xB000 | 1)
    assert io.owner.get(0xB008) is None                      # PMREGMISC still 0
    rig.cfg_writeb(1, 3, 0x80, 0x01)
    assert io.owner[0xB000] is rig.pc.pm.pm and io.owner[0xB03F] is rig.pc.pm.pm
    rig.cfg_writel(1, 3, 0x90, (0xB000 + 0x100) | 1)
    rig.cfg_writeb(1, 3, 0xD2, 0x09)
    assert rig.cfg_readl(1, 3, 0x90) == 0xB101 and rig.cfg_readb(1, 3, 0xD2) == 0x09
    rig.cfg_writel(1, 3, 0x40, 0xFFFFFFFF)
    assert rig.cfg_readl(1, 3, 0x40) == 0x0000FFC1
    rig.cfg_writel(1, 3, 0x40, 0x0601)                       # move to QEMU's 600h
    assert io.owner.get(0xB000) is None and io.owner[0x608] is rig.pc.pm.pm
    t = rig.inl(0x608)
    assert t == 0                                            # virtual time 0
    rig.cfg_writeb(1, 3, 0x80, 0x00)
    assert io.owner.get(0x608) is None
    assert rig.inl(0x608) == 0xFFFFFFFF


def test_pm_block_over_other_ports_is_refused(rig):
    rig.cfg_writel(1, 3, 0x40, 0x0CC0 | 1)                   # would cover 0CF8h-0CFFh
    rig.cfg_writeb(1, 3, 0x80, 0x01)
    assert rig.io.owner[0xCF8] is rig.pc.bus
    assert rig.pc.pm.pm.base is None and rig.pc.pm.pm.conflict == 0xCC0
    assert rig.cfg_readl(0, 0, 0) == 0x12378086


def test_function_state_round_trip(rig):
    rig.cfg_writel(1, 1, 0x20, 0xC001)
    rig.cfg_writew(1, 1, 0x04, 0x0005)
    st = {f.name: f.get_state() for f in rig.pc.devices}
    other = Rig()
    for f in other.pc.devices:
        f.set_state(st[f.name])
    assert other.cfg_readl(1, 1, 0x20) == 0xC001
    assert ("map", 0xC000) in other.bm.calls and ("bme", True) in other.bm.calls
    assert other.pc.bus.summary()["functions"].startswith("00:00.0=8086:1237")
    for f in rig.pc.devices:
        assert isinstance(f.summary(), dict)


def test_write_bytes_fast_path_still_reports_code_writes():
    m = Bus(1 << 20)
    seen = []
    m.on_code_write = lambda a, n: seen.append((a, n))
    m.write_bytes(0x5000, b"abcd")                           # plain RAM: one slice copy
    assert m.read_bytes(0x5000, 4) == b"abcd" and seen == []
    m.set_code(0x6, True)
    m.write_bytes(0x5FFE, b"wxyz")                           # touches a code page
    assert m.read_bytes(0x5FFE, 4) == b"wxyz" and seen == [(0x6000, 2)]


# ---------------------------------------------------------------------------------------------
# Real firmware: Debian's SeaBIOS on this PCI side (skipped where the package is missing)
# ---------------------------------------------------------------------------------------------

SEABIOS = "/usr/share/seabios/bios.bin"


@pytest.mark.skipif(not __import__("os").path.exists(SEABIOS), reason="seabios not installed")
def test_seabios_posts_through_pci_pam_fwcfg_and_pm_timer():
    from aero.config import MachineConfig
    from aero.machine import Machine
    log = bytearray()
    m = Machine(MachineConfig(bios=None, memory=32, firmware_log=log.append))
    pc = m.pci                                  # the machine's i440FX/PIIX side and fw_cfg
    m.load_bios(open(SEABIOS, "rb").read())
    m.cpu.reset()
    n = 2_000_000
    while b"Booting from" not in log and n <= 8_000_000:
        m.run(max_instructions=n)
        n += 500_000
    text = log.decode("latin-1")
    for line in ("Running on QEMU (i440fx)", "Found QEMU fw_cfg",
                 "QEMU fw_cfg DMA interface supported",
                 "qemu/e820: addr 0x0000000000000000 len 0x0000000002000000 [RAM]",
                 "Found 5 PCI devices", "PCI: init bdf=00:01.3 id=8086:7113",
                 "PCI: init bdf=00:02.0 id=1234:1111",
                 "PIIX3/PIIX4 init: elcr=00 0c", "Using pmtimer, ioport 0x608",
                 "e820 map has"):
        assert line in text, line
    assert "Relocating init" in text                         # ran from its shadow copy
    host = pc.host
    assert host.attribute(0xF0000) == (True, False)          # make_bios_readonly: F0000 RO
    assert pc.isa.pirq_route(0) == 10 and pc.isa.pirq_route(3) == 11
    assert pc.ide.bus_master_base == 0xC000
    assert pc.pm.pm.base == 0x600          # QEMU's layout: etc/table-loader is present
