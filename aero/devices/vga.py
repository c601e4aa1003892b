"""The Bochs/QEMU standard VGA (PCI 1234:1111): an IBM VGA register set plus the Bochs VBE
DISPI interface and a 16 MiB linear framebuffer in BAR0.

References: IBM "VGA and XGA Technical Reference" / IBM PS/2 Hardware Interface Technical
Reference, "Video Graphics Array" chapter (General Registers: Miscellaneous Output 3C2/3CC,
Input Status 0 3C2, Input Status 1 3BA/3DA, Feature Control; Sequencer 3C4/3C5 SR00-SR04;
CRT Controller 3B4/3B5 or 3D4/3D5 CR00-CR18; Graphics Controller 3CE/3CF GR00-GR08; Attribute
Controller 3C0/3C1 AR00-AR14 with its address/data flip-flop; Video DAC 3C6-3C9), as also laid
out register by register in FreeVGA ("VGA/SVGA Video Programming"); the Bochs VBE extensions
(vbe_display_api.txt: DISPI index 0x1CE / data 0x1CF, VBE_DISPI_INDEX_ID..VIDEO_MEMORY_64K).
PC conventions follow QEMU's hw/display/vga.c and vga-pci.c (stdvga): PCI 1234:1111 class
0300, revision 2, subsystem 1af4:1100, BAR0 = 16 MiB prefetchable framebuffer, BAR2 = 4 KiB
MMIO with the VGA ports at 0x400 and the DISPI registers at 0x500, expansion ROM = VGA BIOS.

Video memory: 256 KiB as four 64 KiB planes, stored interleaved (byte ``4*offset + plane`` of
``vram``), which makes the four latches one 32-bit word; the same 16 MiB ``vram`` is the VBE
linear framebuffer (QEMU shares it the same way).  CPU accesses through the legacy window
(A0000-BFFFF, decoded by GR06 Memory Map Select) follow the hardware's addressing modes:

* chain-4 (SR04 bit 3): plane = A[1:0], plane offset = A with A[1:0] cleared;
* odd/even (writes: SR04 bit 2 = 0; reads: GR05 bit 4): A0 selects even planes (0, 2) or odd
  planes (1, 3), plane offset = A with A0 cleared; reads use plane (GR04 & 2) | A0;
* planar: plane offset = A, written planes = SR02 Map Mask, read plane = GR04 Read Map Select.

Writes go through the write modes 0-3 (rotate, set/reset, enable set/reset, logical function
with the latches, bit mask: GR00-GR03, GR08); reads load the four latches and return either
the selected plane (read mode 0) or the colour-compare result (read mode 1: GR02, GR07).
While VBE is enabled the A0000 window is a 64 KiB bank of the linear framebuffer (DISPI BANK).

The display side (scan-out) lives in ``aero.display.render``; this module exposes what it
needs: the CRTC address generator parameters (start address, offset, byte/word/dword
addressing, CGA row-scan substitution, line compare, max scan line, double scan) and the
frame timing.

Input Status 1 (3DA/3BA) derives the vertical retrace (bit 3) and display-disabled (bit 0)
bits from virtual time: the frame timing comes from the CRTC totals and the dot clock chosen
by Miscellaneous Output bits 3-2 (25.175 / 28.322 MHz), or 60 Hz for VBE modes.  No events
are scheduled: nothing here raises an interrupt (the VGA's IRQ 2 is not wired on PCI boards).

Wiring: ``register(iobus)`` claims 3B4/3B5, 3BA, 3C0-3CF, 3D4/3D5, 3DA and 1CE/1CF (the 3Bx
and 3Dx ports answer only when Miscellaneous Output bit 0 selects them, else read FFh);
``map_legacy(bus)`` maps A0000-BFFFF to this object; the PCI code calls ``map_lfb(bus, base)``
(and ``map_bar2``) when the BARs are programmed; ``rom`` holds the VGA BIOS for the expansion
ROM BAR (``rom_size``).  ``STD_MODES``/``program_mode`` give the IBM register sets of modes
03h, 04h, 12h and 13h for a BIOS to program through the ports; ``EGA_PALETTE`` the 64-colour
DAC table of the 16-colour modes.

Not modelled: the sequencer's reset (SR00) and GR06 bit 1 (chain odd/even: A0 replaced by a
high address bit) are stored and shown but do not change behaviour; the horizontal timing
beyond the display-enable window (horizontal retrace is not separate from blanking in
Input Status 1 bit 0); light pen; the Feature Control outputs; DAC sense and the CRT
interrupt (Input Status 0 reads 0, as in QEMU); VBE 4 bpp planar modes on the display side.
"""

from __future__ import annotations

import struct

from .base import Device

VRAM_SIZE = 16 << 20                  # the stdvga's default vgamem_mb = 16
PLANE_SIZE = 64 << 10
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

# Write masks of the sequencer and graphics controller registers (unimplemented bits read 0).
SR_MASK = (0x03, 0x3D, 0x0F, 0x3F, 0x0E)
GR_MASK = (0x0F, 0x0F, 0x0F, 0x1F, 0x07, 0x7B, 0x0F, 0x0F, 0xFF)
N_CR = 0x19

# Bochs VBE DISPI
VBE_DISPI_INDEX_ID = 0x0
VBE_DISPI_INDEX_XRES = 0x1
VBE_DISPI_INDEX_YRES = 0x2
VBE_DISPI_INDEX_BPP = 0x3
VBE_DISPI_INDEX_ENABLE = 0x4
VBE_DISPI_INDEX_BANK = 0x5
VBE_DISPI_INDEX_VIRT_WIDTH = 0x6
VBE_DISPI_INDEX_VIRT_HEIGHT = 0x7
VBE_DISPI_INDEX_X_OFFSET = 0x8
VBE_DISPI_INDEX_Y_OFFSET = 0x9
VBE_DISPI_INDEX_VIDEO_MEMORY_64K = 0xA
VBE_DISPI_NUM_REGS = 0xB
VBE_DISPI_ID0, VBE_DISPI_ID5 = 0xB0C0, 0xB0C5
VBE_DISPI_DISABLED = 0x00
VBE_DISPI_ENABLED = 0x01
VBE_DISPI_GETCAPS = 0x02
VBE_DISPI_8BIT_DAC = 0x20
VBE_DISPI_LFB_ENABLED = 0x40
VBE_DISPI_NOCLEARMEM = 0x80
VBE_DISPI_MAX_XRES = 16000
VBE_DISPI_MAX_YRES = 12000
VBE_DISPI_MAX_BPP = 32
VBE_BPPS = (4, 8, 15, 16, 24, 32)

DOT_CLOCKS = (25_175_000, 28_322_000, 25_175_000, 25_175_000)

# Byte-lane expansion of a 4-bit plane mask: bit p -> 0xFF in byte p.
EXPAND4 = tuple(sum(0xFF << (8 * p) for p in range(4) if n >> p & 1) for n in range(16))

WINDOWS = ((0xA0000, 0x20000), (0xA0000, 0x10000), (0xB0000, 0x8000), (0xB8000, 0x8000))


class _LFB:
    """The linear framebuffer as an MMIO handler: bytes straight in and out of ``vram``."""

    __slots__ = ("vram", "base", "dirty")

    def __init__(self, vram, base, dirty):
        self.vram = vram
        self.base = base
        self.dirty = dirty

    def mmio_read(self, addr, size):
        o = addr - self.base
        if size == 1:
            return self.vram[o]
        if size == 4:
            return _U32.unpack_from(self.vram, o)[0]
        return _U16.unpack_from(self.vram, o)[0]

    def mmio_write(self, addr, size, value):
        o = addr - self.base
        self.dirty.add(o >> 12)
        self.dirty.add((o + size - 1) >> 12)
        if size == 1:
            self.vram[o] = value & 0xFF
        elif size == 4:
            _U32.pack_into(self.vram, o, value & 0xFFFFFFFF)
        else:
            _U16.pack_into(self.vram, o, value & 0xFFFF)


class _MMIOBar:
    """BAR2 (QEMU stdvga "mmio"): 0x400-0x41F = ports 3C0-3DF, 0x500-0x515 = DISPI registers
    (16 bits each), 0x600 = QEMU extended registers (size, endianness)."""

    __slots__ = ("vga", "base")

    def __init__(self, vga, base):
        self.vga = vga
        self.base = base

    def mmio_read(self, addr, size):
        o = addr - self.base
        vga = self.vga
        if 0x400 <= o < 0x420:
            v = 0
            for i in range(size):
                v |= vga.io_read(0x3C0 + o - 0x400 + i, 1) << (8 * i)
            return v
        if 0x500 <= o < 0x500 + 2 * VBE_DISPI_NUM_REGS:
            return vga.dispi_read((o - 0x500) >> 1)
        if o == 0x600:
            return 8                    # QEMU ext: register block size
        if o == 0x604:
            return 0x1E1E1E1E           # little-endian framebuffer
        return 0

    def mmio_write(self, addr, size, value):
        o = addr - self.base
        vga = self.vga
        if 0x400 <= o < 0x420:
            for i in range(size):
                vga.io_write(0x3C0 + o - 0x400 + i, 1, (value >> (8 * i)) & 0xFF)
        elif 0x500 <= o < 0x500 + 2 * VBE_DISPI_NUM_REGS:
            vga.dispi_write((o - 0x500) >> 1, value & 0xFFFF)


class VGA(Device):
    """Bochs/QEMU standard VGA."""

    name = "vga"
    STATE_VERSION = 2

    # PCI identity (the PCI bus helper builds configuration space from these)
    PCI_VENDOR_ID = 0x1234
    PCI_DEVICE_ID = 0x1111
    PCI_REVISION_ID = 0x02
    PCI_CLASS_CODE = 0x030000            # display controller, VGA-compatible
    PCI_SUBSYSTEM_VENDOR_ID = 0x1AF4
    PCI_SUBSYSTEM_ID = 0x1100
    PCI_INTERRUPT_PIN = 0                # no interrupt
    bar0_size = VRAM_SIZE                # BAR0: prefetchable 32-bit memory (flags 0x8)
    bar0_flags = 0x08
    bar2_size = 0x1000                   # BAR2: non-prefetchable MMIO registers
    bar2_flags = 0x00

    def __init__(self, clock=None, rom: bytes | None = None):
        self.clock = clock
        self.rom = rom                   # expansion ROM bytes (the VGA BIOS), set by the machine
        self.vram = bytearray(VRAM_SIZE)
        self.vram_dirty: set[int] = set()     # VRAM pages written (snapshots; Machine.get_state)
        self.lfb = _LFB(self.vram, 0, self.vram_dirty)
        self.mmio_bar = _MMIOBar(self, 0)
        self._lfb_bus = None
        self._bar2_bus = None
        self.lfb_base = None
        self.bar2_base = None
        self._init_regs()

    # ------------------------------------------------------------------------------------------
    # wiring
    # ------------------------------------------------------------------------------------------
    def register(self, iobus) -> None:
        """Claim the VGA ports QEMU's VGA claims (3B4/3B5, 3BA, 3C0-3CF, 3D4/3D5, 3DA; the
        rest of 3B0-3DF stays free, e.g. for a parallel port at 3BC) and DISPI 1CE/1CF."""
        for first, count in ((0x3B4, 2), (0x3BA, 1), (0x3C0, 16), (0x3D4, 2), (0x3DA, 1)):
            iobus.register(first, count, self, self.io_read, self.io_write, widths=(1, 2))
        iobus.register(0x1CE, 2, self, self.dispi_io_read, self.dispi_io_write, widths=(1, 2))

    def map_legacy(self, bus) -> None:
        """Map the legacy window A0000-BFFFF (decoded by GR06 inside)."""
        bus.map_mmio(0xA0000, 0x20000, self)

    def map_lfb(self, bus, base: int) -> None:
        """Map BAR0 (the linear framebuffer) at physical ``base`` (moving it if mapped)."""
        self.unmap_lfb()
        self.lfb.base = base
        self.lfb_base = base
        self._lfb_bus = bus
        bus.map_mmio(base, VRAM_SIZE, self.lfb)

    def unmap_lfb(self) -> None:
        if self._lfb_bus is not None and self.lfb_base is not None:
            self._lfb_bus.unmap_mmio(self.lfb_base, VRAM_SIZE, self.lfb)
        self._lfb_bus = None
        self.lfb_base = None

    def map_bar2(self, bus, base: int) -> None:
        self.unmap_bar2()
        self.mmio_bar.base = base
        self.bar2_base = base
        self._bar2_bus = bus
        bus.map_mmio(base, self.bar2_size, self.mmio_bar)

    def unmap_bar2(self) -> None:
        if self._bar2_bus is not None and self.bar2_base is not None:
            self._bar2_bus.unmap_mmio(self.bar2_base, self.bar2_size, self.mmio_bar)
        self._bar2_bus = None
        self.bar2_base = None

    def pci_bar_moved(self, bus, index: int, new_base: int | None) -> None:
        """For the PCI function's BAR listener: BAR0 (LFB) or BAR2 (MMIO registers) now
        decodes at ``new_base`` (``None``: not decoded).  The ROM BAR is the PCI code's."""
        if index == 0:
            if new_base is None:
                self.unmap_lfb()
            else:
                self.map_lfb(bus, new_base)
        elif index == 2:
            if new_base is None:
                self.unmap_bar2()
            else:
                self.map_bar2(bus, new_base)

    @property
    def rom_size(self) -> int:
        """Size of the expansion ROM BAR: the ROM rounded up to a power of two (0: none)."""
        if not self.rom:
            return 0
        n = 2048
        while n < len(self.rom):
            n <<= 1
        return n

    # ------------------------------------------------------------------------------------------
    # registers
    # ------------------------------------------------------------------------------------------
    def _init_regs(self) -> None:
        self.MISC = 0x00                 # Miscellaneous Output (power-on: I/OAS = 0, mono)
        self.FCR = 0x00                  # Feature Control
        self.SR = [0] * 5
        self.SR_index = 0
        self.CR = [0] * N_CR
        self.CR_index = 0
        self.GR = [0] * 9
        self.GR[8] = 0xFF
        self.GR_index = 0
        self.AR = [0] * 0x15
        self.AR_index = 0                # bits 0-4 index, bit 5 PAS
        self.AR_flipflop = 0             # 0: next 3C0 write is an index, 1: data
        self.latch = 0
        self.PEL_mask = 0xFF
        self.DAC = bytearray(768)        # 256 x (R, G, B), 6 bits each (8 with VBE 8BIT_DAC)
        self.DAC_read_index = 0
        self.DAC_write_index = 0
        self.DAC_sub = 0                 # which of R, G, B comes next
        self.DAC_state = 0               # 0: write mode (3C8 last), 3: read mode (3C7 last)
        self.DAC_cache = [0, 0, 0]
        self.vbe_index = 0
        self.vbe = [0] * VBE_DISPI_NUM_REGS
        self.vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5
        self.vbe[VBE_DISPI_INDEX_XRES] = 640
        self.vbe[VBE_DISPI_INDEX_YRES] = 480
        self.vbe[VBE_DISPI_INDEX_BPP] = 8
        self.vbe[VBE_DISPI_INDEX_VIRT_WIDTH] = 640
        self.vbe[VBE_DISPI_INDEX_VIRT_HEIGHT] = VRAM_SIZE // 640
        self.vbe[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = VRAM_SIZE >> 16
        self.vbe_line_offset = 640
        self.vbe_start = 0
        self.bank_offset = 0
        self._update_decode()

    def reset(self) -> None:
        self._init_regs()

    # -- derived ----------------------------------------------------------------------------------
    @property
    def color(self) -> bool:
        """Miscellaneous Output bit 0 (I/OAS): CRTC and Input Status 1 at 3Dx (else 3Bx)."""
        return bool(self.MISC & 1)

    @property
    def vbe_enabled(self) -> bool:
        return bool(self.vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED)

    @property
    def dac_8bit(self) -> bool:
        return bool(self.vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC)

    def start_address(self) -> int:
        return (self.CR[0x0C] << 8) | self.CR[0x0D]

    def cursor_location(self) -> int:
        return (self.CR[0x0E] << 8) | self.CR[0x0F]

    def line_compare(self) -> int:
        cr = self.CR
        return cr[0x18] | ((cr[0x07] & 0x10) << 4) | ((cr[0x09] & 0x40) << 3)

    def vertical_display_end(self) -> int:
        """Number of displayed scan lines (CR12 + overflow bits, plus one)."""
        cr = self.CR
        return (cr[0x12] | ((cr[0x07] & 0x02) << 7) | ((cr[0x07] & 0x40) << 3)) + 1

    def vertical_total(self) -> int:
        cr = self.CR
        return (cr[0x06] | ((cr[0x07] & 0x01) << 8) | ((cr[0x07] & 0x20) << 4)) + 2

    def vertical_retrace_start(self) -> int:
        cr = self.CR
        return cr[0x10] | ((cr[0x07] & 0x04) << 6) | ((cr[0x07] & 0x80) << 2)

    def char_width(self) -> int:
        """Dots per character clock: 8 (SR01 bit 0 set) or 9."""
        return 8 if self.SR[1] & 1 else 9

    def graphics_mode(self) -> bool:
        """AR10 bit 0: the attribute controller's graphics/alphanumeric mode select."""
        return bool(self.AR[0x10] & 1)

    def frame_timing(self) -> tuple[int, int, int, int, int, int]:
        """(line_ps, vtotal, vde, vrs, vr_len, hde_ps): the scan line period in picoseconds,
        total and displayed lines per frame, the first vertical retrace line and the retrace
        length in lines, and the displayed part of a line in picoseconds."""
        if self.vbe_enabled:
            yres = max(1, self.vbe[VBE_DISPI_INDEX_YRES])
            vtotal = yres + max(3, yres // 20)
            frame_ps = 10 ** 12 // 60
            line_ps = max(1, frame_ps // vtotal)
            return line_ps, vtotal, yres, yres + 1, 2, line_ps * 4 // 5
        cr = self.CR
        htotal = cr[0x00] + 5
        hde = cr[0x01] + 1
        vtotal = self.vertical_total()
        vde = self.vertical_display_end()
        if htotal <= hde or vtotal <= vde or htotal < 8:
            htotal, hde, vtotal, vde = 100, 80, 449, 400     # unprogrammed: mode 3 timing
            vrs, vr_len = 412, 2
            dots = 9
            clk = DOT_CLOCKS[1]
        else:
            vrs = self.vertical_retrace_start()
            vr_len = ((cr[0x11] & 0x0F) - (vrs & 0x0F)) & 0x0F or 16
            dots = self.char_width() * (2 if self.SR[1] & 0x08 else 1)
            clk = DOT_CLOCKS[(self.MISC >> 2) & 3]
        line_ps = htotal * dots * 10 ** 12 // clk
        return line_ps, vtotal, vde, vrs, vr_len, hde * dots * 10 ** 12 // clk

    def refresh_hz(self) -> float:
        line_ps, vtotal = self.frame_timing()[:2]
        return 10 ** 12 / (line_ps * vtotal)

    def _now_ps(self) -> int:
        if self.clock is None:
            return 0
        return self.clock.ns() * 1000

    def frame_number(self) -> int:
        """Frames since power-on in virtual time (drives text blink and the cursor blink)."""
        line_ps, vtotal = self.frame_timing()[:2]
        return self._now_ps() // (line_ps * vtotal)

    def input_status_1(self) -> int:
        line_ps, vtotal, vde, vrs, vr_len, hde_ps = self.frame_timing()
        t = self._now_ps() % (line_ps * vtotal)
        line, pos = divmod(t, line_ps)
        v = 0
        if line >= vde or pos >= hde_ps:
            v |= 0x01                    # Display Enable NOT: in horizontal or vertical blank
        if vrs <= line < vrs + vr_len:
            v |= 0x08                    # Vertical Retrace
        return v

    # -- port I/O --------------------------------------------------------------------------------
    def _port_ok(self, port: int) -> bool:
        """3Bx ports answer only in monochrome addressing, 3Dx only in colour (QEMU)."""
        if 0x3B0 <= port <= 0x3BF:
            return not self.MISC & 1
        if 0x3D0 <= port <= 0x3DF:
            return bool(self.MISC & 1)
        return True

    def io_read(self, port: int, size: int) -> int:
        if size == 2:
            return self.io_read(port, 1) | (self.io_read(port + 1, 1) << 8)
        if not self._port_ok(port):
            return 0xFF
        if port == 0x3C0:
            return self.AR_index
        if port == 0x3C1:
            i = self.AR_index & 0x1F
            return self.AR[i] if i < 0x15 else 0
        if port == 0x3C2:
            return 0x00                  # Input Status 0 (as QEMU: no sense, no CRT int.)
        if port == 0x3C4:
            return self.SR_index
        if port == 0x3C5:
            i = self.SR_index
            return self.SR[i] if i < 5 else 0
        if port == 0x3C6:
            return self.PEL_mask
        if port == 0x3C7:
            return self.DAC_state
        if port == 0x3C8:
            return self.DAC_write_index
        if port == 0x3C9:
            v = self.DAC[self.DAC_read_index * 3 + self.DAC_sub]
            self.DAC_sub += 1
            if self.DAC_sub == 3:
                self.DAC_sub = 0
                self.DAC_read_index = (self.DAC_read_index + 1) & 0xFF
            return v
        if port == 0x3CA:
            return self.FCR
        if port == 0x3CC:
            return self.MISC
        if port == 0x3CE:
            return self.GR_index
        if port == 0x3CF:
            i = self.GR_index
            return self.GR[i] if i < 9 else 0
        if port in (0x3B4, 0x3D4):
            return self.CR_index
        if port in (0x3B5, 0x3D5):
            i = self.CR_index
            return self.CR[i] if i < N_CR else 0xFF
        if port in (0x3BA, 0x3DA):
            self.AR_flipflop = 0         # reading Input Status 1 resets the flip-flop
            return self.input_status_1()
        return 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        if size == 2:
            self.io_write(port, 1, value & 0xFF)
            self.io_write(port + 1, 1, (value >> 8) & 0xFF)
            return
        value &= 0xFF
        if not self._port_ok(port):
            return
        if port == 0x3C0:
            if self.AR_flipflop == 0:
                self.AR_index = value & 0x3F
            else:
                self._write_ar(self.AR_index & 0x1F, value)
            self.AR_flipflop ^= 1
        elif port == 0x3C2:
            self.MISC = value
        elif port == 0x3C4:
            self.SR_index = value & 0x07
        elif port == 0x3C5:
            i = self.SR_index
            if i < 5:
                self.SR[i] = value & SR_MASK[i]
                self._update_decode()
        elif port == 0x3C6:
            self.PEL_mask = value
        elif port == 0x3C7:
            self.DAC_read_index = value
            self.DAC_sub = 0
            self.DAC_state = 3
        elif port == 0x3C8:
            self.DAC_write_index = value
            self.DAC_sub = 0
            self.DAC_state = 0
        elif port == 0x3C9:
            if not self.dac_8bit:
                value &= 0x3F
            self.DAC_cache[self.DAC_sub] = value
            self.DAC_sub += 1
            if self.DAC_sub == 3:
                i = self.DAC_write_index * 3
                self.DAC[i: i + 3] = bytes(self.DAC_cache)
                self.DAC_sub = 0
                self.DAC_write_index = (self.DAC_write_index + 1) & 0xFF
        elif port == 0x3CE:
            self.GR_index = value & 0x0F
        elif port == 0x3CF:
            i = self.GR_index
            if i < 9:
                self.GR[i] = value & GR_MASK[i]
                self._update_decode()
        elif port in (0x3B4, 0x3D4):
            self.CR_index = value
        elif port in (0x3B5, 0x3D5):
            self._write_cr(self.CR_index, value)
        elif port in (0x3BA, 0x3DA):
            self.FCR = value & 0x03

    def _write_ar(self, i: int, value: int) -> None:
        if i < 0x10:
            self.AR[i] = value & 0x3F
        elif i == 0x10:
            self.AR[i] = value & 0xEF
        elif i == 0x11:
            self.AR[i] = value
        elif i == 0x12:
            self.AR[i] = value & 0x3F
        elif i == 0x13:
            self.AR[i] = value & 0x0F
        elif i == 0x14:
            self.AR[i] = value & 0x0F

    def _write_cr(self, i: int, value: int) -> None:
        if i >= N_CR:
            return
        if self.CR[0x11] & 0x80 and i <= 7:
            # CR11 bit 7 (Protect): CR00-CR07 are read-only, except CR07 bit 4 (Line Compare
            # bit 8)
            if i == 7:
                self.CR[7] = (self.CR[7] & ~0x10) | (value & 0x10)
            return
        self.CR[i] = value

    # -- the legacy memory window -----------------------------------------------------------------
    # The decoding state (window, addressing mode, whether writes are "plain") is recomputed
    # whenever a register it depends on is written, so a CPU access does only the work its
    # mode needs.
    DEC_VBE, DEC_CHAIN4, DEC_ODDEVEN, DEC_PLANAR = 0, 1, 2, 3

    def _update_decode(self) -> None:
        gr, sr = self.GR, self.SR
        if self.vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED:
            self._win_base, self._win_size = 0xA0000, 0x10000
            self._wdec = self._rdec = self.DEC_VBE
        else:
            self._win_base, self._win_size = WINDOWS[(gr[6] >> 2) & 3]
            if sr[4] & 0x08:
                self._wdec = self._rdec = self.DEC_CHAIN4
            else:
                self._wdec = self.DEC_PLANAR if sr[4] & 0x04 else self.DEC_ODDEVEN
                self._rdec = self.DEC_ODDEVEN if gr[5] & 0x10 else self.DEC_PLANAR
        # plain: write mode 0, no rotate / logical function, no set/reset, all bits
        self._plain = (gr[5] & 3) == 0 and gr[3] == 0 and gr[1] & 0x0F == 0 and gr[8] == 0xFF
        self._read_mode1 = bool(gr[5] & 0x08)
        # byte writes that need no ALU: chain-4, or odd/even with the text map mask (planes 0+1)
        mm = sr[2] & 0x0F
        if self._plain and self._wdec == self.DEC_CHAIN4:
            self._fastw = mm                              # plane-enable bits
        elif self._plain and self._wdec == self.DEC_ODDEVEN and mm == 3:
            self._fastw = 0x10
        else:
            self._fastw = 0

    # MMIO handler for A0000-BFFFF (byte accesses inline the common cases)
    def mmio_read(self, addr: int, size: int) -> int:
        if size == 1:
            return self.mem_readb(addr)
        v = 0
        for i in range(size):
            v |= self.mem_readb(addr + i) << (8 * i)
        return v

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        if size == 1:
            fast = self._fastw
            off = addr - self._win_base
            if fast and 0 <= off < self._win_size:
                if fast == 0x10:                          # odd/even, planes 0/1
                    self.vram[((off & 0xFFFE) << 2) | (off & 1)] = value & 0xFF
                    self.vram_dirty.add(off >> 10)
                elif fast >> (off & 3) & 1:               # chain-4
                    self.vram[((off & 0xFFFC) << 2) | (off & 3)] = value & 0xFF
                    self.vram_dirty.add(off >> 10)
                return
            self.mem_writeb(addr, value & 0xFF)
        elif size == 2:
            self.mem_writew(addr, value & 0xFFFF)
        else:
            for i in range(size):
                self.mem_writeb(addr + i, (value >> (8 * i)) & 0xFF)

    def mem_readb(self, addr: int) -> int:
        off = addr - self._win_base
        if off < 0 or off >= self._win_size:
            return 0xFF
        dec = self._rdec
        if dec == 1:                                      # chain-4
            plane = off & 3
            o = off & 0xFFFC
        elif dec == 2:                                    # odd/even
            plane = (self.GR[4] & 2) | (off & 1)
            o = off & 0xFFFE
        elif dec == 3:
            plane = self.GR[4] & 3
            o = off & 0xFFFF
        else:                                             # VBE bank
            return self.vram[(self.bank_offset + off) % VRAM_SIZE]
        latch = self.latch = _U32.unpack_from(self.vram, o << 2)[0]
        if self._read_mode1:                              # read mode 1: colour compare
            gr = self.GR
            x = (latch ^ EXPAND4[gr[2] & 0x0F]) & EXPAND4[gr[7] & 0x0F]
            return ~(x | (x >> 8) | (x >> 16) | (x >> 24)) & 0xFF
        return (latch >> (plane << 3)) & 0xFF

    def mem_writeb(self, addr: int, val: int) -> None:
        off = addr - self._win_base
        if off < 0 or off >= self._win_size:
            return
        dec = self._wdec
        mm = self.SR[2] & 0x0F
        if dec == 1:                                      # chain-4
            planes = mm & (1 << (off & 3))
            o = off & 0xFFFC
            if self._plain:
                if planes:
                    self.vram[(o << 2) | (off & 3)] = val
                    self.vram_dirty.add(o >> 10)
                return
        elif dec == 2:                                    # odd/even
            planes = mm & (0x0A if off & 1 else 0x05)
            o = off & 0xFFFE
            if self._plain and (planes == 1 or planes == 2):
                self.vram[(o << 2) | (off & 1)] = val
                self.vram_dirty.add(o >> 10)
                return
        elif dec == 3:
            planes = mm
            o = off & 0xFFFF
        else:                                             # VBE bank
            a = (self.bank_offset + off) % VRAM_SIZE
            self.vram[a] = val
            self.vram_dirty.add(a >> 12)
            return
        if not planes:
            return
        gr = self.GR
        wm = gr[5] & 3
        latch = self.latch
        if wm == 1:                                       # write mode 1: the latches
            v = latch
        else:
            rot = gr[3] & 7
            if wm == 0:
                if rot:
                    val = ((val >> rot) | (val << (8 - rot))) & 0xFF
                v = val * 0x01010101
                esr = EXPAND4[gr[1] & 0x0F]
                v = (v & ~esr) | (EXPAND4[gr[0] & 0x0F] & esr)
                bm = gr[8]
            elif wm == 2:
                v = EXPAND4[val & 0x0F]
                bm = gr[8]
            else:                                         # write mode 3
                if rot:
                    val = ((val >> rot) | (val << (8 - rot))) & 0xFF
                bm = gr[8] & val
                v = EXPAND4[gr[0] & 0x0F]
            func = gr[3] & 0x18
            if func == 0x08:
                v &= latch
            elif func == 0x10:
                v |= latch
            elif func == 0x18:
                v ^= latch
            bm *= 0x01010101
            v = ((v & bm) | (latch & ~bm)) & 0xFFFFFFFF
        vram = self.vram
        o <<= 2
        self.vram_dirty.add(o >> 12)
        if planes == 0x0F:
            _U32.pack_into(vram, o, v)
        else:
            for p in range(4):
                if planes >> p & 1:
                    vram[o + p] = (v >> (p << 3)) & 0xFF

    def mem_writew(self, addr: int, val: int) -> None:
        """A 16-bit CPU write: one step for text cells (character + attribute)."""
        off = addr - self._win_base
        if (self._wdec == 2 and self._plain and not off & 1 and 0 <= off < self._win_size - 1
                and self.SR[2] & 0x0F == 3):
            o = off << 2
            self.vram[o] = val & 0xFF
            self.vram[o + 1] = (val >> 8) & 0xFF
            self.vram_dirty.add(o >> 12)
            return
        self.mem_writeb(addr, val & 0xFF)
        self.mem_writeb(addr + 1, (val >> 8) & 0xFF)

    def plane(self, p: int) -> bytes:
        """Plane ``p`` (64 KiB) as bytes (for inspection and tests)."""
        return bytes(self.vram[p: PLANE_SIZE * 4: 4])

    # -- Bochs VBE DISPI ----------------------------------------------------------------------
    def dispi_io_read(self, port: int, size: int) -> int:
        if port == 0x1CE:
            return self.vbe_index
        return self.dispi_read(self.vbe_index)

    def dispi_io_write(self, port: int, size: int, value: int) -> None:
        if port == 0x1CE:
            self.vbe_index = value & 0xFFFF
        else:
            self.dispi_write(self.vbe_index, value & 0xFFFF)

    def dispi_read(self, index: int) -> int:
        if index >= VBE_DISPI_NUM_REGS:
            return 0
        if self.vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS:
            if index == VBE_DISPI_INDEX_XRES:
                return VBE_DISPI_MAX_XRES
            if index == VBE_DISPI_INDEX_YRES:
                return VBE_DISPI_MAX_YRES
            if index == VBE_DISPI_INDEX_BPP:
                return VBE_DISPI_MAX_BPP
        return self.vbe[index]

    def _bytes_pp(self) -> int:
        bpp = self.vbe[VBE_DISPI_INDEX_BPP]
        return 1 if bpp <= 8 else (bpp + 7) // 8

    def _vbe_fixup(self) -> None:
        """Recompute the derived VBE values as QEMU's vbe_fixup_regs does: line offset from
        the virtual width, virtual height from video memory, YRES clamped to what fits, and
        offsets reset when the visible frame would run past the end of video memory."""
        r = self.vbe
        bpp = r[VBE_DISPI_INDEX_BPP]
        if r[VBE_DISPI_INDEX_VIRT_WIDTH] < r[VBE_DISPI_INDEX_XRES]:
            r[VBE_DISPI_INDEX_VIRT_WIDTH] = r[VBE_DISPI_INDEX_XRES]
        if bpp == 4:
            line = r[VBE_DISPI_INDEX_VIRT_WIDTH] >> 1
        else:
            line = r[VBE_DISPI_INDEX_VIRT_WIDTH] * self._bytes_pp()
        line = max(1, line)
        self.vbe_line_offset = line
        maxy = VRAM_SIZE // line
        r[VBE_DISPI_INDEX_VIRT_HEIGHT] = min(0xFFFF, maxy)
        if r[VBE_DISPI_INDEX_YRES] == 0:
            r[VBE_DISPI_INDEX_YRES] = 1
        if r[VBE_DISPI_INDEX_YRES] > maxy:
            r[VBE_DISPI_INDEX_YRES] = maxy
        if r[VBE_DISPI_INDEX_X_OFFSET] > VBE_DISPI_MAX_XRES:
            r[VBE_DISPI_INDEX_X_OFFSET] = 0
        if r[VBE_DISPI_INDEX_Y_OFFSET] > VBE_DISPI_MAX_YRES:
            r[VBE_DISPI_INDEX_Y_OFFSET] = 0

        def start():
            if bpp == 4:
                return r[VBE_DISPI_INDEX_Y_OFFSET] * line + (r[VBE_DISPI_INDEX_X_OFFSET] >> 3)
            return (r[VBE_DISPI_INDEX_Y_OFFSET] * line
                    + r[VBE_DISPI_INDEX_X_OFFSET] * self._bytes_pp())

        frame = r[VBE_DISPI_INDEX_YRES] * line
        if start() + frame > VRAM_SIZE:
            r[VBE_DISPI_INDEX_Y_OFFSET] = 0
            if start() + frame > VRAM_SIZE:
                r[VBE_DISPI_INDEX_X_OFFSET] = 0
        self.vbe_start = start()

    def dispi_write(self, index: int, value: int) -> None:
        r = self.vbe
        enabled = self.vbe_enabled
        if index == VBE_DISPI_INDEX_ID:
            if VBE_DISPI_ID0 <= value <= VBE_DISPI_ID5:
                r[0] = value
        elif index in (VBE_DISPI_INDEX_XRES, VBE_DISPI_INDEX_YRES, VBE_DISPI_INDEX_BPP):
            if enabled:
                return                   # geometry is fixed while the mode is enabled
            if index == VBE_DISPI_INDEX_XRES:
                if value <= VBE_DISPI_MAX_XRES and value & 7 == 0:
                    r[index] = value
            elif index == VBE_DISPI_INDEX_YRES:
                if value <= VBE_DISPI_MAX_YRES:
                    r[index] = value
            else:
                if value == 0:
                    value = 8
                if value in VBE_BPPS:
                    r[index] = value
        elif index == VBE_DISPI_INDEX_BANK:
            value &= (VRAM_SIZE >> 16) - 1
            r[index] = value
            self.bank_offset = value << 16
        elif index == VBE_DISPI_INDEX_ENABLE:
            if value & VBE_DISPI_ENABLED and not enabled:
                r[VBE_DISPI_INDEX_VIRT_WIDTH] = r[VBE_DISPI_INDEX_XRES]
                r[VBE_DISPI_INDEX_X_OFFSET] = 0
                r[VBE_DISPI_INDEX_Y_OFFSET] = 0
                self._vbe_fixup()
                if not value & VBE_DISPI_NOCLEARMEM:
                    n = min(r[VBE_DISPI_INDEX_YRES] * self.vbe_line_offset, VRAM_SIZE)
                    self.vram[:n] = bytes(n)
                    self.vram_dirty.update(range((n + 0xFFF) >> 12))
                # the VGA side follows: graphics mode, A0000 64 KiB window, chain-4
                self.GR[6] = (self.GR[6] & ~0x0C) | 0x05
                self.GR[5] = (self.GR[5] & ~0x70) | 0x40
                self.SR[4] |= 0x08
                self.AR[0x10] |= 0x01
            elif not value & VBE_DISPI_ENABLED and enabled:
                r[VBE_DISPI_INDEX_BANK] = 0
                self.bank_offset = 0
            r[index] = value & (VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC |
                                VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM)
            self._update_decode()
        elif index == VBE_DISPI_INDEX_VIRT_WIDTH:
            if value >= r[VBE_DISPI_INDEX_XRES]:
                r[index] = value
                self._vbe_fixup()
        elif index in (VBE_DISPI_INDEX_X_OFFSET, VBE_DISPI_INDEX_Y_OFFSET):
            r[index] = value
            self._vbe_fixup()
        # VIRT_HEIGHT and VIDEO_MEMORY_64K are read-only

    # -- description ------------------------------------------------------------------------
    def display_geometry(self) -> dict:
        """What the display shows (the one definition the renderer uses too): ``kind`` is
        'vbe', 'text', 'planar' (16-colour), 'cga2' (shift-register interleave, CGA 4-colour)
        or 'vga256'; sizes are the logical frame size (scan doubling folded; in graphics
        modes without CGA row-scan substitution, the repeated lines of a row folded too)."""
        if self.vbe_enabled:
            r = self.vbe
            return {"kind": "vbe", "width": r[VBE_DISPI_INDEX_XRES],
                    "height": r[VBE_DISPI_INDEX_YRES], "bpp": r[VBE_DISPI_INDEX_BPP]}
        cr = self.CR
        clocks = cr[0x01] + 1
        lines = self.vertical_display_end()
        if cr[0x09] & 0x80:
            lines = (lines + 1) // 2
        msl = cr[0x09] & 0x1F
        if not self.graphics_mode():
            cw = self.char_width() * (2 if self.SR[1] & 0x08 else 1)
            return {"kind": "text", "cols": clocks, "rows": -(-lines // (msl + 1)),
                    "cell_w": cw, "cell_h": msl + 1, "width": clocks * cw, "height": lines}
        if cr[0x17] & 3 == 3:
            lines = -(-lines // (msl + 1))
        shift = (self.GR[5] >> 5) & 3
        if shift >= 2:
            return {"kind": "vga256", "width": clocks * 4, "height": lines}
        return {"kind": "cga2" if shift == 1 else "planar", "width": clocks * 8,
                "height": lines}

    def mode_description(self) -> str:
        g = self.display_geometry()
        if g["kind"] == "vbe":
            r = self.vbe
            return (f"VBE {g['width']}x{g['height']}x{g['bpp']}"
                    + (" LFB" if r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_LFB_ENABLED else
                       " banked"))
        if g["kind"] == "text":
            return f"text {g['cols']}x{g['rows']} ({g['cell_w']}x{g['cell_h']} cells)"
        kinds = {"planar": "16-colour planar", "cga2": "4-colour CGA",
                 "vga256": "256-colour" + (" chain-4" if self.SR[4] & 8 else " unchained")}
        return f"graphics {g['width']}x{g['height']} {kinds[g['kind']]}"

    def summary(self) -> dict:
        mode = self.mode_description()
        cur = self.cursor_location()
        start = self.start_address()
        cols = max(1, self.CR[0x13] * 2)
        out = {
            "mode": mode,
            "MISC": f"{self.MISC:02X} ({'colour 3Dx' if self.color else 'mono 3Bx'})",
            "SR": " ".join(f"{v:02X}" for v in self.SR),
            "CR": " ".join(f"{v:02X}" for v in self.CR),
            "GR": " ".join(f"{v:02X}" for v in self.GR),
            "AR": " ".join(f"{v:02X}" for v in self.AR),
            "AR index": f"{self.AR_index:02X} (PAS={self.AR_index >> 5 & 1}, "
                        f"{'data' if self.AR_flipflop else 'index'} next)",
            "start address": f"{start:04X}",
            "offset": f"{self.CR[0x13]:02X}",
            "line compare": self.line_compare(),
            "cursor": f"{cur:04X} (row {(cur - start) // cols}, col {(cur - start) % cols})"
                      + (" off" if self.CR[0x0A] & 0x20 else
                         f" lines {self.CR[0x0A] & 0x1F}-{self.CR[0x0B] & 0x1F}"),
            "memory map": ("A0000 128K", "A0000 64K", "B0000 32K", "B8000 32K")
                          [(self.GR[6] >> 2) & 3],
            "write/read mode": f"{self.GR[5] & 3}/{self.GR[5] >> 3 & 1}",
            "map mask": f"{self.SR[2]:X}",
            "DAC": f"mask {self.PEL_mask:02X} read {self.DAC_read_index} write "
                   f"{self.DAC_write_index}.{self.DAC_sub} ({'8' if self.dac_8bit else '6'}-bit)",
            "refresh": f"{self.refresh_hz():.2f} Hz",
            "VBE": " ".join(f"{v:04X}" for v in self.vbe) + f" (index {self.vbe_index:X})",
        }
        if self.lfb_base is not None:
            out["LFB"] = f"{self.lfb_base:#010x}"
        return out

    # -- snapshots ----------------------------------------------------------------------------
    _FIELDS = ("MISC", "FCR", "SR_index", "CR_index", "GR_index", "AR_index", "AR_flipflop",
               "latch", "PEL_mask", "DAC_read_index", "DAC_write_index", "DAC_sub",
               "DAC_state", "vbe_index", "vbe_line_offset", "vbe_start", "bank_offset")

    def vram_written(self, lo: int, hi: int) -> None:
        """VRAM bytes [lo, hi) were changed directly (the Aero BIOS's video services): record the
        pages for snapshots."""
        self.vram_dirty.update(range(lo >> 12, ((hi - 1) >> 12) + 1))

    def get_state(self, vram: bool = True) -> dict:
        """The registers and (``vram``) the video memory as raw bytes.  The machine saves VRAM
        itself, page by page (``Machine.get_state``), and asks for ``vram=False``."""
        st = {k: getattr(self, k) for k in self._FIELDS}
        st.update(version=self.STATE_VERSION, SR=list(self.SR), CR=list(self.CR),
                  GR=list(self.GR), AR=list(self.AR), DAC=self.DAC.hex(),
                  DAC_cache=list(self.DAC_cache), vbe=list(self.vbe))
        if vram:
            st["vram"] = bytes(self.vram)
        return st

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        for k in self._FIELDS:
            setattr(self, k, st[k])
        self.SR = list(st["SR"])
        self.CR = list(st["CR"])
        self.GR = list(st["GR"])
        self.AR = list(st["AR"])
        self.DAC[:] = bytes.fromhex(st["DAC"])
        self.DAC_cache = list(st["DAC_cache"])
        self.vbe = list(st["vbe"])
        if "vram" in st:
            self.vram[:] = st["vram"]
            self.vram_dirty.update(range(VRAM_SIZE >> 12))
        self._update_decode()


# ----------------------------------------------------------------------------------------------
# Standard register sets (IBM VGA BIOS parameter table values) for the modes the Aero BIOS
# sets, and a helper that programs them through the ports the way a BIOS does.  Each entry:
# MISC, SR01-SR04, CR00-CR18, AR00-AR14, GR00-GR08.
# ----------------------------------------------------------------------------------------------
STD_MODES = {
    0x03: dict(
        MISC=0x67, SR=(0x00, 0x03, 0x00, 0x02),
        CR=(0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00,
            0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF),
        AR=(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D,
            0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00),
        GR=(0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF)),
    0x04: dict(
        MISC=0x63, SR=(0x09, 0x03, 0x00, 0x02),
        CR=(0x2D, 0x27, 0x28, 0x90, 0x2B, 0x80, 0xBF, 0x1F, 0x00, 0xC1, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x14, 0x00, 0x96, 0xB9, 0xA2, 0xFF),
        AR=(0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
            0x16, 0x17, 0x01, 0x00, 0x03, 0x00, 0x00),
        GR=(0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0F, 0x00, 0xFF)),
    0x12: dict(
        MISC=0xE3, SR=(0x01, 0x0F, 0x00, 0x06),
        CR=(0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0x0B, 0x3E, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xEA, 0x8C, 0xDF, 0x28, 0x00, 0xE7, 0x04, 0xE3, 0xFF),
        AR=(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D,
            0x3E, 0x3F, 0x01, 0x00, 0x0F, 0x00, 0x00),
        GR=(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0F, 0xFF)),
    0x13: dict(
        MISC=0x63, SR=(0x01, 0x0F, 0x00, 0x0E),
        CR=(0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF),
        AR=(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D,
            0x0E, 0x0F, 0x41, 0x00, 0x0F, 0x00, 0x00),
        GR=(0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF)),
}

# The EGA-compatible 64-colour DAC palette (index bits: r g b R G B, secondary bits 0x15,
# primary 0x2A) that 16-colour modes load into DAC 0-63.
EGA_PALETTE = tuple(
    (((i >> 2) & 1) * 0x2A + ((i >> 5) & 1) * 0x15,
     ((i >> 1) & 1) * 0x2A + ((i >> 4) & 1) * 0x15,
     (i & 1) * 0x2A + ((i >> 3) & 1) * 0x15) for i in range(64))


def program_mode(out, mode: int, inp=None) -> None:
    """Program standard mode ``mode``'s registers through ``out(port, value)`` (byte writes),
    in the order a VGA BIOS uses: sequencer reset, MISC, sequencer, CRTC (Protect cleared
    first), attribute controller (after an Input Status 1 read through ``inp(port)`` resets
    its flip-flop, when ``inp`` is given), graphics controller, then PAS set to enable the
    display.  The DAC and the font are left alone."""
    t = STD_MODES[mode]
    out(0x3C4, 0x00)
    out(0x3C5, 0x01)                      # synchronous reset
    out(0x3C2, t["MISC"])
    for i, v in enumerate(t["SR"], 1):
        out(0x3C4, i)
        out(0x3C5, v)
    out(0x3C4, 0x00)
    out(0x3C5, 0x03)                      # end reset
    crtc = 0x3D4 if t["MISC"] & 1 else 0x3B4
    out(crtc, 0x11)
    out(crtc + 1, t["CR"][0x11] & 0x7F)   # clear Protect first
    for i, v in enumerate(t["CR"]):
        out(crtc, i)
        out(crtc + 1, v)
    if inp is not None:
        inp(crtc + 6)                     # Input Status 1: attribute flip-flop to index
    for i, v in enumerate(t["AR"]):
        out(0x3C0, i)
        out(0x3C0, v)
    for i, v in enumerate(t["GR"]):
        out(0x3CE, i)
        out(0x3CF, v)
    out(0x3C0, 0x20)                      # PAS: the attribute controller drives the display
