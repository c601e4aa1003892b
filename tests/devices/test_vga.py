"""Standard VGA registers (IBM VGA Technical Reference / FreeVGA), memory write and read modes,
address decoding, Input Status 1 timing in virtual time, Bochs VBE DISPI, the LFB, PCI data
and snapshots."""

import pytest

from aero.clock import Clock
from aero.devices import vga as V
from aero.devices.base import IOBus
from aero.mem.bus import Bus, MMIO, UNMAPPED
from aero.testing.fakecpu import FakeCPU


class Rig:
    def __init__(self):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=1_000_000_000)       # 1 tick = 1 ns
        self.vga = V.VGA(self.clock)
        self.io = IOBus()
        self.vga.register(self.io)
        self.bus = Bus(1 << 20)
        self.bus.set_kind(0xA0000, 0x20000, UNMAPPED)
        self.vga.map_legacy(self.bus)

    def out(self, p, v):
        self.io.write(p, 1, v)

    def inp(self, p):
        return self.io.read(p, 1)

    def seq(self, i, v):
        self.out(0x3C4, i)
        self.out(0x3C5, v)

    def gr(self, i, v):
        self.out(0x3CE, i)
        self.out(0x3CF, v)

    def planes_at(self, off):
        return [self.vga.vram[off * 4 + p] for p in range(4)]

    def set_planes(self, off, vals):
        for p, v in enumerate(vals):
            self.vga.vram[off * 4 + p] = v


@pytest.fixture
def rig():
    return Rig()


def mode12(r):
    V.program_mode(r.out, 0x12, r.inp)
    return r


# ----------------------------------------------------------------------------------------------
# PCI identity
# ----------------------------------------------------------------------------------------------
def test_pci_identity(rig):
    v = rig.vga
    assert (v.PCI_VENDOR_ID, v.PCI_DEVICE_ID) == (0x1234, 0x1111)
    assert v.PCI_CLASS_CODE == 0x030000
    assert (v.PCI_SUBSYSTEM_VENDOR_ID, v.PCI_SUBSYSTEM_ID) == (0x1AF4, 0x1100)
    assert v.bar0_size == 16 << 20 and v.bar0_flags & 0x08
    assert v.rom_size == 0
    v.rom = bytes(36 * 1024)
    assert v.rom_size == 64 * 1024


# ----------------------------------------------------------------------------------------------
# general registers and port decoding
# ----------------------------------------------------------------------------------------------
def test_misc_output_selects_crtc_ports(rig):
    r = rig
    assert r.inp(0x3CC) == 0x00                              # power-on: monochrome decode
    r.out(0x3B4, 0x0E)
    r.out(0x3B5, 0x12)
    assert r.vga.CR[0x0E] == 0x12
    r.out(0x3D4, 0x0E)                                       # 3Dx ignored in mono
    r.out(0x3D5, 0x34)
    assert r.vga.CR[0x0E] == 0x12 and r.inp(0x3D5) == 0xFF
    r.out(0x3C2, 0x67)
    assert r.inp(0x3CC) == 0x67
    r.out(0x3D4, 0x0E)
    assert r.inp(0x3D4) == 0x0E and r.inp(0x3D5) == 0x12
    assert r.inp(0x3B5) == 0xFF


def test_register_write_masks(rig):
    r = rig
    r.seq(1, 0xFF)
    assert r.inp(0x3C5) == 0x3D
    r.seq(4, 0xFF)
    assert r.inp(0x3C5) == 0x0E
    r.gr(5, 0xFF)
    assert r.inp(0x3CF) == 0x7B
    r.gr(8, 0x5A)
    assert r.inp(0x3CF) == 0x5A
    # a 16-bit OUT to the index port writes index then data
    r.io.write(0x3C4, 2, 0x0702)
    assert r.vga.SR[2] == 0x07


def test_crtc_protect_bit(rig):
    r = rig
    r.out(0x3C2, 0x67)
    for i in range(8):
        r.out(0x3D4, i)
        r.out(0x3D5, 0x01)
    r.out(0x3D4, 0x11)
    r.out(0x3D5, 0x80)                                       # Protect
    r.out(0x3D4, 0x00)
    r.out(0x3D5, 0x5F)
    assert r.inp(0x3D5) == 0x01                              # CR00 protected
    r.out(0x3D4, 0x07)
    r.out(0x3D5, 0xFF)
    assert r.inp(0x3D5) == 0x01 | 0x10                       # only Line Compare bit 8
    r.out(0x3D5, 0x00)
    assert r.inp(0x3D5) == 0x01
    r.out(0x3D4, 0x09)
    r.out(0x3D5, 0x4F)
    assert r.inp(0x3D5) == 0x4F                              # CR08+ not protected
    r.out(0x3D4, 0x11)
    r.out(0x3D5, 0x00)
    r.out(0x3D4, 0x00)
    r.out(0x3D5, 0x5F)
    assert r.inp(0x3D5) == 0x5F


def test_attribute_flipflop_and_pas(rig):
    r = rig
    r.out(0x3C2, 0x01)
    r.inp(0x3DA)                                             # flip-flop -> index
    r.out(0x3C0, 0x05)
    r.out(0x3C0, 0xFF)                                       # palette 5 = 0x3F (6 bits)
    assert r.vga.AR[5] == 0x3F
    r.out(0x3C0, 0x33)                                       # index 0x13 with PAS
    assert r.inp(0x3C0) == 0x33
    r.out(0x3C0, 0x07)
    assert r.inp(0x3C1) == 0x07
    r.out(0x3C0, 0x30)                                       # index again (flip-flop toggled)
    r.out(0x3C0, 0x0C)
    assert r.vga.AR[0x10] == 0x0C
    r.out(0x3C0, 0x12)                                       # index write: leaves data pending
    r.inp(0x3DA)                                             # reset: the next write is an index
    r.out(0x3C0, 0x14)
    r.out(0x3C0, 0x03)
    assert r.vga.AR[0x14] == 0x03 and r.vga.AR[0x12] == 0x00
    assert r.vga.AR_index == 0x14                            # PAS cleared by that index write


def test_dac_read_write_autoincrement(rig):
    r = rig
    r.out(0x3C8, 5)
    for v in (0x3F, 0x20, 0x10, 0x01, 0x02, 0xFF):
        r.out(0x3C9, v)
    assert bytes(r.vga.DAC[15:21]) == bytes([0x3F, 0x20, 0x10, 0x01, 0x02, 0x3F])
    assert r.inp(0x3C8) == 7 and r.inp(0x3C7) == 0
    r.out(0x3C7, 5)
    assert r.inp(0x3C7) == 3
    got = [r.inp(0x3C9) for _ in range(6)]
    assert got == [0x3F, 0x20, 0x10, 0x01, 0x02, 0x3F]
    r.out(0x3C6, 0x0F)
    assert r.inp(0x3C6) == 0x0F
    # a write index set mid-triple restarts at red
    r.out(0x3C8, 9)
    r.out(0x3C9, 1)
    r.out(0x3C8, 9)
    for v in (4, 5, 6):
        r.out(0x3C9, v)
    assert bytes(r.vga.DAC[27:30]) == bytes([4, 5, 6])


def test_input_status_1_timing(rig):
    r = rig
    V.program_mode(r.out, 0x03, r.inp)                       # 70 Hz, 449 lines of 31.78 us
    line_ps, vtotal, vde, vrs, vr_len, hde_ps = r.vga.frame_timing()
    assert (vtotal, vde, vrs, vr_len) == (449, 400, 412, 2)
    assert abs(r.vga.refresh_hz() - 70.08) < 0.01

    def st(line, frac=0.1):
        r.cpu.icount = (line * line_ps + int(line_ps * frac)) // 1000
        return r.inp(0x3DA)

    assert st(0) & 0x09 == 0x00                              # active display
    assert st(10, 0.95) & 0x09 == 0x01                       # horizontal blank
    assert st(405) & 0x09 == 0x01                            # vertical blank, no retrace
    assert st(412) & 0x09 == 0x09                            # vertical retrace
    assert st(413) & 0x08 == 0x08
    assert st(414) & 0x08 == 0x00
    assert st(449 + 412) & 0x08 == 0x08                      # next frame
    assert r.inp(0x3BA) == 0xFF                              # mono port not decoded


# ----------------------------------------------------------------------------------------------
# memory: decoding, write and read modes
# ----------------------------------------------------------------------------------------------
def test_memory_map_select(rig):
    r = rig
    r.gr(6, 0x0C)                                            # B8000, 32 KiB
    r.seq(2, 0x0F)
    r.seq(4, 0x06)
    r.bus.write8(0xB8000 + 3, 0x77)
    assert r.planes_at(3) == [0x77] * 4
    assert r.bus.read8(0xA0000) == 0xFF                      # outside the window
    r.bus.write8(0xA0000, 0x11)
    assert r.planes_at(0) == [0] * 4
    r.gr(6, 0x08)                                            # B0000, 32 KiB
    assert r.bus.read8(0xB0000 + 3) == 0x77 and r.bus.read8(0xB8000) == 0xFF
    r.gr(6, 0x00)                                            # A0000, 128 KiB
    assert r.bus.read8(0xA0000 + 3) == 0x77
    assert r.bus.read16(0xA0002) == 0x7700


def test_odd_even_text_addressing(rig):
    r = rig
    V.program_mode(r.out, 0x03, r.inp)
    r.bus.write8(0xB8000 + 10, ord("X"))
    r.bus.write8(0xB8000 + 11, 0x1E)
    assert r.planes_at(10) == [ord("X"), 0x1E, 0, 0]
    assert r.bus.read8(0xB8000 + 10) == ord("X")
    assert r.bus.read8(0xB8000 + 11) == 0x1E
    r.bus.write16(0xB8000 + 20, 0x4F41)
    assert r.planes_at(20)[:2] == [0x41, 0x4F]


def test_chain4_addressing(rig):
    r = rig
    V.program_mode(r.out, 0x13, r.inp)
    r.bus.write8(0xA0000 + 5, 0xAB)
    assert r.planes_at(4) == [0, 0xAB, 0, 0]
    assert r.bus.read8(0xA0000 + 5) == 0xAB
    assert r.bus.read8(0xA0000 + 4) == 0
    r.seq(2, 0x0D)                                           # map mask without plane 1
    r.bus.write8(0xA0000 + 5, 0x11)
    assert r.planes_at(4)[1] == 0xAB


def test_write_mode_0_set_reset_rotate_function_bitmask(rig):
    r = mode12(rig)
    r.set_planes(0, [0x0F, 0x0F, 0x0F, 0x0F])
    r.bus.read8(0xA0000)                                     # latches = 0F x4
    r.gr(0, 0x05)                                            # set/reset colour 0101
    r.gr(1, 0x03)                                            # enable for planes 0 and 1
    r.gr(8, 0xF0)                                            # bit mask: high nibble
    r.bus.write8(0xA0000, 0xCC)                              # CPU data for planes 2 and 3
    assert r.planes_at(0) == [0xFF, 0x0F, 0xCF, 0xCF]
    # rotate 4 + XOR with the latches, all bits
    r.gr(1, 0x00)
    r.gr(8, 0xFF)
    r.gr(3, 0x18 | 4)
    r.bus.read8(0xA0000)                                     # latches FF 0F CF CF
    r.bus.write8(0xA0000, 0x0F)                              # rotated -> F0
    assert r.planes_at(0) == [0x0F, 0xFF, 0x3F, 0x3F]
    # AND, OR
    r.gr(3, 0x08)
    r.bus.read8(0xA0000)
    r.bus.write8(0xA0000, 0x3C)
    assert r.planes_at(0) == [0x0C, 0x3C, 0x3C, 0x3C]
    r.gr(3, 0x10)
    r.bus.read8(0xA0000)
    r.bus.write8(0xA0000, 0x81)
    assert r.planes_at(0) == [0x8D, 0xBD, 0xBD, 0xBD]


def test_write_modes_1_2_3(rig):
    r = mode12(rig)
    r.set_planes(7, [1, 2, 3, 4])
    r.gr(5, 0x01)                                            # write mode 1: copy latches
    r.bus.read8(0xA0000 + 7)
    r.bus.write8(0xA0000 + 100, 0x00)
    assert r.planes_at(100) == [1, 2, 3, 4]
    r.gr(5, 0x02)                                            # write mode 2: colour, bit mask
    r.gr(8, 0x81)
    r.bus.read8(0xA0000 + 100)
    r.bus.write8(0xA0000 + 100, 0x0A)                        # colour 1010
    assert r.planes_at(100) == [1 & 0x7E, 2 | 0x81, 3 & 0x7E, 4 | 0x81]
    r.gr(5, 0x03)                                            # write mode 3: S/R & data-mask
    r.gr(0, 0x06)                                            # colour 0110
    r.gr(8, 0xF0)
    r.set_planes(200, [0xFF, 0x00, 0xFF, 0x00])
    r.bus.read8(0xA0000 + 200)
    r.bus.write8(0xA0000 + 200, 0x3C)                        # bit mask F0 & 3C = 30
    assert r.planes_at(200) == [0xCF, 0x30, 0xFF, 0x00]
    r.seq(2, 0x01)                                           # map mask: plane 0 only
    r.bus.read8(0xA0000 + 200)
    r.gr(5, 0x02)
    r.gr(8, 0xFF)
    r.bus.write8(0xA0000 + 200, 0x0F)
    assert r.planes_at(200) == [0xFF, 0x30, 0xFF, 0x00]


def test_read_modes(rig):
    r = mode12(rig)
    r.set_planes(9, [0b11110000, 0b11001100, 0b10101010, 0b00000000])
    r.gr(4, 2)
    assert r.bus.read8(0xA0000 + 9) == 0b10101010            # read mode 0: plane 2
    r.gr(5, 0x08)                                            # read mode 1: colour compare
    r.gr(2, 0x07)                                            # colour 0111
    r.gr(7, 0x0F)
    assert r.bus.read8(0xA0000 + 9) == 0b10000000
    r.gr(7, 0x03)                                            # planes 2, 3: don't care
    assert r.bus.read8(0xA0000 + 9) == 0b11000000
    r.gr(7, 0x00)
    assert r.bus.read8(0xA0000 + 9) == 0xFF


# ----------------------------------------------------------------------------------------------
# Bochs VBE DISPI and the LFB
# ----------------------------------------------------------------------------------------------
def dispi(r, i, v=None):
    r.io.write(0x1CE, 2, i)
    if v is None:
        return r.io.read(0x1CF, 2)
    r.io.write(0x1CF, 2, v)


def test_dispi_registers(rig):
    r = rig
    assert dispi(r, V.VBE_DISPI_INDEX_ID) == 0xB0C5
    dispi(r, V.VBE_DISPI_INDEX_ID, 0xB0C2)
    assert dispi(r, V.VBE_DISPI_INDEX_ID) == 0xB0C2
    dispi(r, V.VBE_DISPI_INDEX_ID, 0x1234)                   # invalid ID ignored
    assert dispi(r, V.VBE_DISPI_INDEX_ID) == 0xB0C2
    assert dispi(r, V.VBE_DISPI_INDEX_VIDEO_MEMORY_64K) == 256
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_GETCAPS)
    assert dispi(r, V.VBE_DISPI_INDEX_XRES) == V.VBE_DISPI_MAX_XRES
    assert dispi(r, V.VBE_DISPI_INDEX_BPP) == 32
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, 0)
    dispi(r, V.VBE_DISPI_INDEX_XRES, 1024)
    dispi(r, V.VBE_DISPI_INDEX_YRES, 768)
    dispi(r, V.VBE_DISPI_INDEX_BPP, 16)
    dispi(r, V.VBE_DISPI_INDEX_BPP, 12)                      # invalid depth ignored
    assert dispi(r, V.VBE_DISPI_INDEX_BPP) == 16
    r.vga.vram[0:4] = b"\x01\x02\x03\x04"
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED | V.VBE_DISPI_NOCLEARMEM)
    assert r.vga.vram[0:4] == b"\x01\x02\x03\x04"            # NOCLEARMEM
    assert dispi(r, V.VBE_DISPI_INDEX_VIRT_WIDTH) == 1024
    assert dispi(r, V.VBE_DISPI_INDEX_VIRT_HEIGHT) == (16 << 20) // 2048
    dispi(r, V.VBE_DISPI_INDEX_XRES, 640)                    # ignored while enabled
    assert dispi(r, V.VBE_DISPI_INDEX_XRES) == 1024
    assert r.vga.mode_description() == "VBE 1024x768x16 banked"
    dispi(r, V.VBE_DISPI_INDEX_Y_OFFSET, 3)
    dispi(r, V.VBE_DISPI_INDEX_X_OFFSET, 8)
    assert r.vga.vbe_start == 3 * 2048 + 16
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, 0)
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED)
    assert r.vga.vram[0:4] == bytes(4)                       # cleared on enable


def test_dispi_bank_window(rig):
    r = rig
    dispi(r, V.VBE_DISPI_INDEX_XRES, 800)
    dispi(r, V.VBE_DISPI_INDEX_YRES, 600)
    dispi(r, V.VBE_DISPI_INDEX_BPP, 8)
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED)
    dispi(r, V.VBE_DISPI_INDEX_BANK, 3)
    r.bus.write8(0xA0000 + 0x10, 0x5A)
    assert r.vga.vram[3 * 65536 + 0x10] == 0x5A
    assert r.bus.read8(0xA0000 + 0x10) == 0x5A
    assert r.bus.read8(0xB0000) == 0xFF                      # the window is 64 KiB
    dispi(r, V.VBE_DISPI_INDEX_BANK, 0x1FF)                  # masked to the 256 banks
    assert dispi(r, V.VBE_DISPI_INDEX_BANK) == 0xFF


def test_lfb_mapping_and_access():
    r = Rig()
    bus = Bus(1 << 20)
    base = 0xFD000000
    r.vga.map_lfb(bus, base)
    assert bus.kind[base >> 12] == MMIO and bus.kind[(base + (16 << 20) - 1) >> 12] == MMIO
    bus.write32(base + 0x100, 0x11223344)
    bus.write16(base + 0x104, 0xBEEF)
    bus.write8(base + (16 << 20) - 1, 0x99)
    assert r.vga.vram[0x100:0x106] == bytes.fromhex("44332211efbe")
    assert bus.read32(base + 0x100) == 0x11223344
    assert bus.read8(base + (16 << 20) - 1) == 0x99
    bus.write32(base + 0xFFE, 0xAABBCCDD)                     # crosses a page: split by the bus
    assert bus.read32(base + 0xFFE) == 0xAABBCCDD
    r.vga.map_lfb(bus, 0xE0000000)                            # BAR moved
    assert bus.kind[base >> 12] == UNMAPPED
    assert bus.read32(0xE0000100) == 0x11223344
    r.vga.unmap_lfb()
    assert bus.read32(0xE0000100) == 0xFFFFFFFF


def test_bar2_mmio_registers():
    r = Rig()
    bus = Bus(1 << 20)
    r.vga.map_bar2(bus, 0xFEBF0000)
    bus.write16(0xFEBF0500 + 2 * V.VBE_DISPI_INDEX_XRES, 800)
    assert r.vga.vbe[V.VBE_DISPI_INDEX_XRES] == 800
    assert bus.read16(0xFEBF0500) == 0xB0C5
    bus.write8(0xFEBF0400 + 0x02, 0x67)                       # 3C2 MISC
    assert r.vga.MISC == 0x67 and bus.read8(0xFEBF0400 + 0x0C) == 0x67


# ----------------------------------------------------------------------------------------------
# inspection and snapshots
# ----------------------------------------------------------------------------------------------
def test_summary_and_state_roundtrip(rig):
    r = rig
    V.program_mode(r.out, 0x03, r.inp)
    r.bus.write8(0xB8000, ord("H"))
    r.out(0x3D4, 0x0F)
    r.out(0x3D5, 81)
    s = r.vga.summary()
    assert s["mode"] == "text 80x25 (9x16 cells)"
    assert s["cursor"].startswith("0051 (row 1, col 1)")
    assert s["memory map"] == "B8000 32K"
    st = r.vga.get_state()
    v2 = V.VGA(r.clock)
    v2.set_state(st)
    assert v2.get_state() == st
    assert v2.vram == r.vga.vram
    assert v2.summary()["mode"] == s["mode"]
    st["version"] = 99
    with pytest.raises(ValueError):
        v2.set_state(st)
    V.program_mode(r.out, 0x13, r.inp)
    assert r.vga.summary()["mode"] == "graphics 320x200 256-colour chain-4"
    V.program_mode(r.out, 0x12, r.inp)
    assert r.vga.summary()["mode"] == "graphics 640x480 16-colour planar"


def test_reset(rig):
    r = rig
    V.program_mode(r.out, 0x13, r.inp)
    r.vga.reset()
    assert r.vga.MISC == 0 and r.vga.SR == [0] * 5 and r.vga.GR[8] == 0xFF
    assert not r.vga.vbe_enabled


def test_odd_even_word_write_all_planes(rig):
    r = rig
    V.program_mode(r.out, 0x03, r.inp)
    r.seq(2, 0x0F)                                           # even -> planes 0, 2; odd -> 1, 3
    r.bus.write16(0xB8000 + 4, 0x2211)
    assert r.planes_at(4) == [0x11, 0x22, 0x11, 0x22]
    r.seq(2, 0x03)
    r.gr(8, 0x0F)                                            # bit mask: the ALU path
    r.bus.read8(0xB8000 + 4)
    r.bus.write8(0xB8000 + 4, 0xFF)
    assert r.planes_at(4) == [0x1F, 0x22, 0x11, 0x22]


def test_dac_8bit_with_vbe(rig):
    r = rig
    r.out(0x3C8, 1)
    r.out(0x3C9, 0xFF)
    r.out(0x3C9, 0xFF)
    assert r.vga.DAC[3] == 0                                 # committed after blue only
    r.out(0x3C9, 0xFF)
    assert r.vga.DAC[3:6] == b"\x3f\x3f\x3f"                 # 6-bit DAC
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED | V.VBE_DISPI_8BIT_DAC)
    r.out(0x3C8, 1)
    for _ in range(3):
        r.out(0x3C9, 0xFF)
    assert r.vga.DAC[3:6] == b"\xff\xff\xff"


def test_dispi_clamps_to_video_memory(rig):
    r = rig
    dispi(r, V.VBE_DISPI_INDEX_XRES, 16000)
    dispi(r, V.VBE_DISPI_INDEX_YRES, 12000)
    dispi(r, V.VBE_DISPI_INDEX_BPP, 32)
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED | V.VBE_DISPI_NOCLEARMEM)
    assert dispi(r, V.VBE_DISPI_INDEX_YRES) == (16 << 20) // 64000
    dispi(r, V.VBE_DISPI_INDEX_Y_OFFSET, 100)                # would run past the end: reset
    assert dispi(r, V.VBE_DISPI_INDEX_Y_OFFSET) == 0 and r.vga.vbe_start == 0


def test_pci_bar_moved():
    r = Rig()
    bus = Bus(1 << 20)
    r.vga.pci_bar_moved(bus, 0, 0xF0000000)
    r.vga.pci_bar_moved(bus, 2, 0xF1000000)
    bus.write8(0xF0000010, 0x42)
    assert r.vga.vram[0x10] == 0x42
    assert bus.read16(0xF1000500) == 0xB0C5
    r.vga.pci_bar_moved(bus, 0, None)
    r.vga.pci_bar_moved(bus, 2, None)
    assert bus.read8(0xF0000010) == 0xFF and bus.read16(0xF1000500) == 0xFFFF
