"""INT 10h for the Aero BIOS (a mixin of ``aero.firmware.bios.AeroBIOS``).

Modes 03h (80x25 text, 8x16 font), 12h (640x480, 16 colours, planar) and 13h (320x200, 256
colours, chain-4) are programmed through the VGA ports with ``vga.program_mode`` (IBM register
sets), the DAC loaded through 3C8h/3C9h; VBE modes through the Bochs DISPI registers (1CEh/1CFh)
with the linear framebuffer at E0000000h.  The BDA video fields (449h-466h, 484h-48Ah) hold the
state, as on a real BIOS, so guests that read or poke them see consistent values.

Character cells, glyphs and pixels are read and written in video memory at the places the mode
set put them (text: plane 0 = characters and plane 1 = attributes at the odd/even offset;
mode 12h: four planes, one bit per pixel; mode 13h: chain-4, pixel A in plane A mod 4 at offset
A with bits 1-0 cleared), which is what the CPU would reach through A0000h-BFFFFh in that mode.

Functions: AH=00h-03h, 05h-0Fh (AH=08h in graphics modes matches the cell against the font), 10h (00h-03h, 07h-09h, 10h, 12h, 13h, 15h, 17h-1Ah), 11h
(load fonts 00h-04h/10h-14h into plane 2 without changing the character height; 30h font
pointers), 12h (BL=10h EGA info, 30h-36h acknowledged), 13h, 1Ah, VBE 4F00h-4F09h (4F04h saves
the DISPI registers, the DAC and the BDA video fields; not the standard VGA registers: the
state size is reported for all requested parts), 4F0Ah returns the protected-mode interface
(32-bit code in the ROM driving the DISPI registers and the DAC).
"""

from __future__ import annotations

import struct

from ..devices.vga import EGA_PALETTE, program_mode, VRAM_SIZE

# mode -> (kind, columns, rows, char height, page size, memory segment, BDA mode control)
MODES = {
    0x03: ("text", 80, 25, 16, 0x1000, 0xB800, 0x29),
    0x12: ("planar", 80, 30, 16, 0xA000, 0xA000, 0x09),
    0x13: ("linear", 40, 25, 8, 0xFA00, 0xA000, 0x09),
}
GFX_SIZE = {0x12: (640, 480), 0x13: (320, 200)}

# VBE modes (keep in step with vbe_modes in firmware/aero-bios/aerobios.asm)
VBE_MODES = {}
for _bpp, _nums in ((8, (0x101, 0x103, 0x105)), (16, (0x111, 0x114, 0x117)),
                    (24, (0x112, 0x115, 0x118)), (32, (0x140, 0x141, 0x142))):
    for _n, (_x, _y) in zip(_nums, ((640, 480), (800, 600), (1024, 768))):
        VBE_MODES[_n] = (_x, _y, _bpp)

DISPI_INDEX, DISPI_DATA = 0x1CE, 0x1CF
LFB_BASE = 0xE0000000


def vga_256_palette() -> list:
    """The VGA BIOS default 256-colour DAC table (6-bit): 16 CGA colours, 16 greys, then nine
    24-entry hue wheels (3 intensities x 3 saturations), then 8 blacks."""
    pal = []
    for i in range(16):
        r = ((i >> 2) & 1) * 0x2A + ((i >> 3) & 1) * 0x15
        g = ((i >> 1) & 1) * 0x2A + ((i >> 3) & 1) * 0x15
        b = (i & 1) * 0x2A + ((i >> 3) & 1) * 0x15
        if i == 6:
            g = 0x15                                           # brown
        pal.append((r, g, b))
    for v in (0, 5, 8, 11, 14, 17, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63):
        pal.append((v, v, v))
    for hi, los in ((63, (0, 31, 45)), (28, (0, 14, 20)), (16, (0, 8, 11))):
        for lo in los:
            s = [lo + (hi - lo) * k // 4 for k in range(5)]
            s = [lo, round(lo + (hi - lo) / 4), round(lo + (hi - lo) / 2),
                 round(lo + 3 * (hi - lo) / 4), hi]
            wheel = []
            for k in range(4):
                wheel.append((s[k], lo, hi))                   # blue -> magenta
            for k in range(4):
                wheel.append((hi, lo, s[4 - k]))               # magenta -> red
            for k in range(4):
                wheel.append((hi, s[k], lo))                   # red -> yellow
            for k in range(4):
                wheel.append((s[4 - k], hi, lo))               # yellow -> green
            for k in range(4):
                wheel.append((lo, hi, s[k]))                   # green -> cyan
            for k in range(4):
                wheel.append((lo, s[4 - k], hi))               # cyan -> blue
            pal.extend(wheel)
    pal.extend([(0, 0, 0)] * 8)
    return pal


class VideoServices:
    # ------------------------------------------------------------------------------------------
    # state from the BDA
    # ------------------------------------------------------------------------------------------
    def _mode(self) -> int:
        return self.bda_b(0x49)

    def _minfo(self):
        return MODES.get(self._mode(), MODES[0x03])

    def _cols(self) -> int:
        return self.bda_w(0x4A) or 80

    def _rows(self) -> int:
        return self.bda_b(0x84) + 1

    def _page(self) -> int:
        return self.bda_b(0x62)

    def _cursor(self, page: int) -> tuple[int, int]:
        v = self.bda_w(0x50 + 2 * (page & 7))
        return v >> 8, v & 0xFF

    def _dispi(self, index: int, value: int | None = None) -> int:
        self.io.write(DISPI_INDEX, 2, index)
        if value is None:
            return self.io.read(DISPI_DATA, 2)
        self.io.write(DISPI_DATA, 2, value)
        return value

    # ------------------------------------------------------------------------------------------
    # mode set
    # ------------------------------------------------------------------------------------------
    def set_video_mode(self, mode: int) -> bool:
        noclear = bool(mode & 0x80)
        mode &= 0x7F
        if mode not in MODES:
            return False
        vga = self.m.vga
        if vga.vbe_enabled:
            self._dispi(4, 0)
        self.vbe_mode = None
        program_mode(self.outb, mode, self.inb)
        kind, cols, rows, ch, psize, seg, ctl = MODES[mode]
        self.outb(0x3C6, 0xFF)
        self.outb(0x3C8, 0)
        pal = list(EGA_PALETTE) if mode != 0x13 else vga_256_palette()
        if mode != 0x13:
            pal += [(0, 0, 0)] * (256 - len(pal))
        for r, g, b in pal:
            self.outb(0x3C9, r)
            self.outb(0x3C9, g)
            self.outb(0x3C9, b)
        vram = vga.vram
        if kind == "text":
            self.load_font(self._font_bytes(16), 16, 0, 256, 0)
            if not noclear:
                n = 0x8000
                vram[0: 4 * n: 8] = b"\x20" * (n // 2)
                vram[1: 4 * n: 8] = b"\x07" * (n // 2)
                vga.vram_written(0, 4 * n)
        elif not noclear:
            vram[0: 4 * 0x10000] = bytes(4 * 0x10000)
            vga.vram_written(0, 4 * 0x10000)
        self.set_bda_b(0x49, mode)
        self.set_bda_w(0x4A, cols)
        self.set_bda_w(0x4C, psize)
        self.set_bda_w(0x4E, 0)
        for p in range(8):
            self.set_bda_w(0x50 + 2 * p, 0)
        self.set_bda_b(0x62, 0)
        self.set_bda_w(0x63, 0x3D4)
        self.set_bda_b(0x65, ctl)
        self.set_bda_b(0x66, 0x30 if mode != 0x12 else 0x3F)
        self.set_bda_b(0x84, rows - 1)
        self.set_bda_w(0x85, ch)
        self.set_bda_b(0x87, 0x60 | (0x80 if noclear else 0))
        self.set_bda_b(0x88, 0xF9)
        self.set_bda_b(0x89, 0x51)
        self.set_bda_b(0x8A, 0x08)
        if kind == "text":
            self._set_cursor_shape(0x0607)
        self._update_hw_cursor()
        self.vec(0x43, 0xF000, self.off["FONT8"] if mode == 0x13 else self.off["FONT16"])
        return True

    def _font_bytes(self, height: int) -> bytes:
        o = self.off["FONT8" if height == 8 else "FONT14" if height == 14 else "FONT16"]
        return self.rom[o: o + 256 * height]

    def load_font(self, data: bytes, height: int, first: int, count: int, block: int) -> None:
        """Glyphs into plane 2 (32 bytes per character, block b at 8 KiB * (b&3)*2 + 16 KiB * b>>2
        as the VGA's character map select lays them out)."""
        vram = self.m.vga.vram
        base = ((block & 3) << 14) | ((block & 4) << 11)
        for i in range(count):
            off = base + (first + i) * 32
            g = data[i * height:(i + 1) * height]
            for r in range(32):
                vram[4 * (off + r) + 2] = g[r] if r < len(g) else 0
        self.m.vga.vram_written(4 * (base + first * 32), 4 * (base + (first + count) * 32))

    def _set_cursor_shape(self, cx: int) -> None:
        self.set_bda_w(0x60, cx)
        start, end = (cx >> 8) & 0x3F, cx & 0x1F
        chh = self.bda_w(0x85) or 16
        if cx & 0x2000:
            start, end = 0x20, 0                               # hidden
        elif chh > 8 and end < 8 and start < 0x20:
            if end != start + 1:
                start = ((start + 1) * chh // 8) - 1
            else:
                start = ((end + 1) * chh // 8) - 2
            end = ((end + 1) * chh // 8) - 1
        self.outb(0x3D4, 0x0A)
        self.outb(0x3D5, start)
        self.outb(0x3D4, 0x0B)
        self.outb(0x3D5, end)

    def _update_hw_cursor(self) -> None:
        page = self._page()
        row, col = self._cursor(page)
        pos = self.bda_w(0x4E) // 2 + row * self._cols() + col
        self.outb(0x3D4, 0x0E)
        self.outb(0x3D5, pos >> 8)
        self.outb(0x3D4, 0x0F)
        self.outb(0x3D5, pos & 0xFF)

    def _set_cursor(self, page: int, row: int, col: int) -> None:
        self.set_bda_w(0x50 + 2 * (page & 7), (row << 8) | col)
        if page == self._page():
            self._update_hw_cursor()

    # ------------------------------------------------------------------------------------------
    # cells and pixels
    # ------------------------------------------------------------------------------------------
    def _cell_addr(self, page: int, row: int, col: int) -> int:
        return (page * self.bda_w(0x4C) + (row * self._cols() + col) * 2) & 0xFFFF

    def _put_pixel(self, x: int, y: int, color: int) -> None:
        mode = self._mode()
        vram = self.m.vga.vram
        if mode == 0x13:
            if 0 <= x < 320 and 0 <= y < 200:
                a = y * 320 + x
                i = 4 * (a & ~3) + (a & 3)
                vram[i] = color & 0xFF
                self.m.vga.vram_written(i, i + 1)
        elif mode == 0x12:
            if 0 <= x < 640 and 0 <= y < 480:
                o = 4 * (y * 80 + (x >> 3))
                bit = 0x80 >> (x & 7)
                for p in range(4):
                    v = vram[o + p]
                    if color & 0x80:
                        v ^= bit if color >> p & 1 else 0
                    else:
                        v = (v | bit) if color >> p & 1 else (v & ~bit)
                    vram[o + p] = v & 0xFF
                self.m.vga.vram_written(o, o + 4)

    def _get_pixel(self, x: int, y: int) -> int:
        mode = self._mode()
        vram = self.m.vga.vram
        if mode == 0x13 and 0 <= x < 320 and 0 <= y < 200:
            a = y * 320 + x
            return vram[4 * (a & ~3) + (a & 3)]
        if mode == 0x12 and 0 <= x < 640 and 0 <= y < 480:
            o = 4 * (y * 80 + (x >> 3))
            bit = 0x80 >> (x & 7)
            return sum(1 << p for p in range(4) if vram[o + p] & bit)
        return 0

    def _draw_glyph(self, row: int, col: int, ch: int, color: int) -> None:
        chh = self.bda_w(0x85) or 8
        font = self._font_bytes(16 if chh >= 16 else 14 if chh == 14 else 8)
        g = font[ch * chh:(ch + 1) * chh]
        mode = self._mode()
        vram = self.m.vga.vram
        x0, y0 = col * 8, row * chh
        if mode == 0x12 and not color & 0x80:
            for r, bits in enumerate(g):
                o = 4 * ((y0 + r) * 80 + col)
                for p in range(4):
                    vram[o + p] = bits if color >> p & 1 else 0
                self.m.vga.vram_written(o, o + 4)
            return
        for r, bits in enumerate(g):
            for c in range(8):
                if color & 0x80:
                    if bits & (0x80 >> c):
                        self._put_pixel(x0 + c, y0 + r, color)
                else:
                    self._put_pixel(x0 + c, y0 + r, color if bits & (0x80 >> c) else 0)

    def write_cell(self, page: int, row: int, col: int, ch: int, attr: int | None) -> None:
        kind = self._minfo()[0]
        if kind == "text":
            a = self._cell_addr(page, row, col)
            vram = self.m.vga.vram
            vram[4 * a] = ch & 0xFF
            if attr is not None:
                vram[4 * a + 1] = attr & 0xFF
            self.m.vga.vram_written(4 * a, 4 * a + 2)
        else:
            self._draw_glyph(row, col, ch, 0x0F if attr is None else attr)

    def read_cell(self, page: int, row: int, col: int) -> tuple[int, int]:
        if self._minfo()[0] == "text":
            a = self._cell_addr(page, row, col)
            vram = self.m.vga.vram
            return vram[4 * a], vram[4 * a + 1]
        # graphics: match the cell's lit dots against the font (any non-zero colour is lit)
        chh = self.bda_w(0x85) or 8
        font = self._font_bytes(16 if chh >= 16 else 14 if chh == 14 else 8)
        cell = bytes(sum(0x80 >> x for x in range(8)
                         if self._get_pixel(col * 8 + x, row * chh + y))
                     for y in range(chh))
        for ch in range(256):
            if font[ch * chh:(ch + 1) * chh] == cell:
                return ch, 0
        return 0, 0

    def scroll(self, n: int, attr: int, r0: int, c0: int, r1: int, c1: int, up: bool,
               page: int | None = None) -> None:
        rows, cols = self._rows(), self._cols()
        r1, c1 = min(r1, rows - 1), min(c1, cols - 1)
        if r0 > r1 or c0 > c1:
            return
        height = r1 - r0 + 1
        if n == 0 or n > height:
            n = height
        kind = self._minfo()[0]
        vram = self.m.vga.vram
        page = self._page() if page is None else page
        w = c1 - c0 + 1
        order = range(r0, r1 + 1) if up else range(r1, r0 - 1, -1)
        if kind == "text":
            for r in order:
                src = r + n if up else r - n
                d = self._cell_addr(page, r, c0)
                if r0 <= src <= r1:
                    s = self._cell_addr(page, src, c0)
                    vram[4 * d: 4 * d + 8 * w: 8] = vram[4 * s: 4 * s + 8 * w: 8]
                    vram[4 * d + 1: 4 * d + 1 + 8 * w: 8] = vram[4 * s + 1: 4 * s + 1 + 8 * w: 8]
                else:
                    vram[4 * d: 4 * d + 8 * w: 8] = b"\x20" * w
                    vram[4 * d + 1: 4 * d + 1 + 8 * w: 8] = bytes([attr]) * w
            return
        chh = self.bda_w(0x85) or 8
        mode = self._mode()
        for r in order:
            src = r + n if up else r - n
            for line in range(chh):
                if mode == 0x13:
                    d = (r * chh + line) * 320 + c0 * 8
                    span = 8 * w
                    if r0 <= src <= r1:
                        s = (src * chh + line) * 320 + c0 * 8
                        vram[4 * d: 4 * (d + span)] = vram[4 * s: 4 * (s + span)]
                    else:
                        for x in range(span):
                            a = d + x
                            vram[4 * (a & ~3) + (a & 3)] = attr
                else:
                    d = (r * chh + line) * 80 + c0
                    if r0 <= src <= r1:
                        s = (src * chh + line) * 80 + c0
                        vram[4 * d: 4 * (d + w)] = vram[4 * s: 4 * (s + w)]
                    else:
                        vram[4 * d: 4 * (d + w)] = bytes(
                            (0xFF if attr >> p & 1 else 0) for _ in range(w) for p in range(4))

    def teletype(self, ch: int, page: int | None = None, color: int | None = None) -> None:
        page = self._page() if page is None else page
        row, col = self._cursor(page)
        cols, rows = self._cols(), self._rows()
        if ch == 0x07:
            return
        if ch == 0x08:
            if col > 0:
                col -= 1
        elif ch == 0x0D:
            col = 0
        elif ch == 0x0A:
            row += 1
        else:
            if self._minfo()[0] == "text":
                self.write_cell(page, row, col, ch, None)
            else:
                self.write_cell(page, row, col, ch, color if color is not None else 0x0F)
            col += 1
        if col >= cols:
            col = 0
            row += 1
        if row >= rows:
            attr = 0
            if self._minfo()[0] == "text":
                attr = self.read_cell(page, rows - 1, 0)[1]
            self.scroll(1, attr, 0, 0, rows - 1, cols - 1, True, page)
            row = rows - 1
        self._set_cursor(page, row, col)

    def teletype_string(self, text: str) -> None:
        for ch in text.encode("latin-1", "replace"):
            self.teletype(ch)

    # ------------------------------------------------------------------------------------------
    # attribute controller and DAC through the ports
    # ------------------------------------------------------------------------------------------
    def _ar_write(self, index: int, value: int) -> None:
        self.inb(0x3DA)
        self.outb(0x3C0, index & 0x1F)
        self.outb(0x3C0, value)
        self.outb(0x3C0, 0x20)

    def _ar_read(self, index: int) -> int:
        self.inb(0x3DA)
        self.outb(0x3C0, index & 0x1F)
        v = self.inb(0x3C1)
        self.inb(0x3DA)
        self.outb(0x3C0, 0x20)
        return v

    def _dac_write(self, index: int, rgb) -> None:
        self.outb(0x3C8, index)
        for v in rgb:
            self.outb(0x3C9, v)

    def _dac_read(self, index: int) -> tuple:
        self.outb(0x3C7, index)
        return self.inb(0x3C9), self.inb(0x3C9), self.inb(0x3C9)

    # ------------------------------------------------------------------------------------------
    # INT 10h
    # ------------------------------------------------------------------------------------------
    def int10(self, retry=False) -> bool:
        ah, al = self.ah, self.al
        bh, bl = self.reg("bh"), self.reg("bl")
        cx, dx = self.reg("cx"), self.reg("dx")
        if ah == 0x00:
            if self.set_video_mode(al):
                mode = al & 0x7F
                self.set_al(0x30 if mode <= 7 and mode != 6 else 0x20)
        elif ah == 0x01:
            self._set_cursor_shape(cx)
        elif ah == 0x02:
            self._set_cursor(bh, dx >> 8, dx & 0xFF)
        elif ah == 0x03:
            row, col = self._cursor(bh)
            self.setreg("dx", (row << 8) | col)
            self.setreg("cx", self.bda_w(0x60))
        elif ah == 0x04:
            self.setreg("ah", 0)                              # no light pen
        elif ah == 0x05:
            if al < 8 and self._minfo()[0] == "text":
                self.set_bda_b(0x62, al)
                start = al * self.bda_w(0x4C)
                self.set_bda_w(0x4E, start)
                self.outb(0x3D4, 0x0C)
                self.outb(0x3D5, (start // 2) >> 8)
                self.outb(0x3D4, 0x0D)
                self.outb(0x3D5, (start // 2) & 0xFF)
                self._update_hw_cursor()
        elif ah in (0x06, 0x07):
            self.scroll(al, bh, cx >> 8, cx & 0xFF, dx >> 8, dx & 0xFF, ah == 0x06)
        elif ah == 0x08:
            row, col = self._cursor(bh)
            ch, attr = self.read_cell(bh, row, col)
            self.setreg("ax", (attr << 8) | ch)
        elif ah in (0x09, 0x0A):
            row, col = self._cursor(bh)
            cols, rows = self._cols(), self._rows()
            text = self._minfo()[0] == "text"
            for i in range(cx):
                r, c = divmod(col + i, cols)
                if row + r >= rows:
                    break
                if text:
                    self.write_cell(bh, row + r, c, al, bl if ah == 0x09 else None)
                else:
                    self.write_cell(bh, row + r, c, al, bl)
        elif ah == 0x0B:
            if bh == 0x00:
                self.set_bda_b(0x66, (self.bda_b(0x66) & 0xE0) | (bl & 0x1F))
                self._ar_write(0x11, bl & 0x0F)
            else:
                self.set_bda_b(0x66, (self.bda_b(0x66) & 0xDF) | ((bl & 1) << 5))
        elif ah == 0x0C:
            self._put_pixel(cx, dx, al)
        elif ah == 0x0D:
            self.set_al(self._get_pixel(cx, dx))
        elif ah == 0x0E:
            self.teletype(al, self._page(), bl)
        elif ah == 0x0F:
            self.setreg("ax", (self._cols() << 8) | self._mode() | (self.bda_b(0x87) & 0x80))
            self.setreg("bh", self._page())
        elif ah == 0x10:
            self._int10_palette(al, bh, bl, cx, dx)
        elif ah == 0x11:
            self._int10_font(al, bh, bl, cx, dx)
        elif ah == 0x12:
            if bl == 0x10:
                self.setreg("bx", 0x0003)                     # colour, 256 KiB
                self.setreg("cx", 0x0009)                     # feature bits 0, switches 9
            elif 0x30 <= bl <= 0x36:
                self.set_al(0x12)
        elif ah == 0x13:
            self._write_string(al, bh, bl, cx, dx)
        elif ah == 0x1A:
            if al == 0x00:
                self.setreg("bx", 0x0008)                     # VGA with colour display
                self.set_al(0x1A)
            elif al == 0x01:
                self.set_al(0x1A)
        elif ah == 0x4F:
            self._vbe(al)
        return False

    def _write_string(self, al, bh, bl, cx, dx) -> None:
        a = self.lin(self.reg("es"), self.reg("bp"))
        saved = self._cursor(bh)
        self._set_cursor(bh, dx >> 8, dx & 0xFF)
        attr = bl
        for i in range(cx):
            if al & 2:
                ch, attr = self.rb(a + 2 * i), self.rb(a + 2 * i + 1)
            else:
                ch = self.rb(a + i)
            if ch in (0x07, 0x08, 0x0A, 0x0D):
                self.teletype(ch, bh)
                continue
            row, col = self._cursor(bh)
            self.write_cell(bh, row, col, ch, attr)
            # advance like the teletype, without rewriting the cell
            col += 1
            if col >= self._cols():
                col = 0
                row += 1
            if row >= self._rows():
                fill = self.read_cell(bh, self._rows() - 1, 0)[1] \
                    if self._minfo()[0] == "text" else 0
                self.scroll(1, fill, 0, 0, self._rows() - 1, self._cols() - 1, True, bh)
                row = self._rows() - 1
            self._set_cursor(bh, row, col)
        if not al & 1:
            self._set_cursor(bh, *saved)

    def _int10_palette(self, al, bh, bl, cx, dx) -> None:
        es = self.reg("es")
        if al == 0x00:
            self._ar_write(bl, bh)
        elif al == 0x01:
            self._ar_write(0x11, bh)
        elif al == 0x02:
            a = self.lin(es, dx)
            for i in range(16):
                self._ar_write(i, self.rb(a + i))
            self._ar_write(0x11, self.rb(a + 16))
        elif al == 0x03:
            v = self._ar_read(0x10)
            self._ar_write(0x10, (v & ~0x08) | (0x08 if bl & 1 else 0))
        elif al == 0x07:
            self.setreg("bh", self._ar_read(bl))
        elif al == 0x08:
            self.setreg("bh", self._ar_read(0x11))
        elif al == 0x09:
            a = self.lin(es, dx)
            for i in range(16):
                self.wb(a + i, self._ar_read(i))
            self.wb(a + 16, self._ar_read(0x11))
        elif al == 0x10:
            self._dac_write(self.reg("bx") & 0xFF, (dx >> 8, cx >> 8, cx & 0xFF))
        elif al == 0x12:
            a = self.lin(es, dx)
            first = self.reg("bx")
            for i in range(cx):
                self._dac_write((first + i) & 0xFF, self.read_mem(a + 3 * i, 3))
        elif al == 0x13:
            v = self._ar_read(0x10)
            if bl == 0:
                self._ar_write(0x10, (v & 0x7F) | ((bh & 1) << 7))
            else:
                self._ar_write(0x14, bh)
        elif al == 0x15:
            r, g, b = self._dac_read(self.reg("bx") & 0xFF)
            self.setreg("dh", r)
            self.setreg("ch", g)
            self.setreg("cl", b)
        elif al == 0x17:
            a = self.lin(es, dx)
            first = self.reg("bx")
            for i in range(cx):
                self.write_mem(a + 3 * i, bytes(self._dac_read((first + i) & 0xFF)))
        elif al == 0x18:
            self.outb(0x3C6, bl)
        elif al == 0x19:
            self.setreg("bl", self.inb(0x3C6))
        elif al == 0x1A:
            self.setreg("bl", self._ar_read(0x10) >> 7)
            self.setreg("bh", self._ar_read(0x14) & 0x0F)

    def _int10_font(self, al, bh, bl, cx, dx) -> None:
        if al in (0x00, 0x10):
            a = self.lin(self.reg("es"), self.reg("bp"))
            self.load_font(self.read_mem(a, cx * bh), bh, dx, cx, bl)
        elif al in (0x01, 0x11):
            self.load_font(self._font_bytes(14), 14, 0, 256, bl)
        elif al in (0x02, 0x12):
            self.load_font(self._font_bytes(8), 8, 0, 256, bl)
        elif al in (0x04, 0x14):
            self.load_font(self._font_bytes(16), 16, 0, 256, bl)
        elif al == 0x30:
            o = self.off
            table = {0: (self.rw(0x1F * 4 + 2), self.rw(0x1F * 4)),
                     1: (self.rw(0x43 * 4 + 2), self.rw(0x43 * 4)),
                     2: (0xF000, o["FONT14"]), 3: (0xF000, o["FONT8"]),
                     4: (0xF000, o["FONT8"] + 1024), 5: (0xF000, o["FONT14"]),
                     6: (0xF000, o["FONT16"]), 7: (0xF000, o["FONT16"])}
            seg, off = table.get(bh, (0xF000, o["FONT16"]))
            self.setreg("es", seg)
            self.setreg("bp", off)
            self.setreg("cx", self.bda_w(0x85))
            self.setreg("dl", self.bda_b(0x84))

    # ------------------------------------------------------------------------------------------
    # VBE
    # ------------------------------------------------------------------------------------------
    def _vbe(self, al) -> None:
        ok = lambda: self.setreg("ax", 0x004F)
        fail = lambda: self.setreg("ax", 0x014F)
        es, di = self.reg("es"), self.reg("di")
        bx, cx, dx = self.reg("bx"), self.reg("cx"), self.reg("dx")
        if al == 0x00:
            a = self.lin(es, di)
            o = self.off
            vbe2 = self.read_mem(a, 4) == b"VBE2"
            info = bytearray(512 if vbe2 else 256)
            info[0:4] = b"VESA"
            struct.pack_into("<HHHI", info, 4, 0x0300, o["vbe_oem"], 0xF000, 0x00000001)
            struct.pack_into("<HHH", info, 14, o["vbe_modes"], 0xF000, VRAM_SIZE >> 16)
            struct.pack_into("<HHHHHHH", info, 20, 0x0100, o["vbe_vendor"], 0xF000,
                             o["vbe_product"], 0xF000, o["vbe_revision"], 0xF000)
            self.write_mem(a, bytes(info))
            ok()
        elif al == 0x01:
            mode = cx & 0x1FF
            if mode not in VBE_MODES:
                fail()
                return
            x, y, bpp = VBE_MODES[mode]
            self.write_mem(self.lin(es, di), self.vbe_mode_info(x, y, bpp))
            ok()
        elif al == 0x02:
            mode = bx & 0x1FF
            if mode < 0x100:
                if self.set_video_mode(mode | (0x80 if bx & 0x8000 else 0)):
                    ok()
                else:
                    fail()
                return
            if mode not in VBE_MODES:
                fail()
                return
            x, y, bpp = VBE_MODES[mode]
            self._dispi(4, 0)
            self._dispi(1, x)
            self._dispi(2, y)
            self._dispi(3, bpp)
            self._dispi(5, 0)
            en = 0x01 | (0x40 if bx & 0x4000 else 0) | (0x80 if bx & 0x8000 else 0)
            self._dispi(4, en)
            self.vbe_mode = mode | (bx & 0x4000)
            ok()
        elif al == 0x03:
            self.setreg("bx", self.vbe_mode if self.vbe_mode else self._mode())
            ok()
        elif al == 0x04:
            dl = dx & 0xFF
            if dl == 0x00:
                size = 0
                if cx & 1:
                    size += 64
                if cx & 2:
                    size += 128
                if cx & 4:
                    size += 772
                if cx & 8:
                    size += 32
                self.setreg("bx", (size + 63) // 64)
                ok()
            elif dl in (0x01, 0x02):
                a = self.lin(es, bx)
                if dl == 0x01:
                    blob = bytearray()
                    blob += struct.pack("<12H", *[self._dispi(i) for i in range(10)],
                                        self.vbe_mode or 0, 0)
                    blob += bytes(v for i in range(256) for v in self._dac_read(i))
                    blob += self.read_mem(0x449, 0x1E) + self.read_mem(0x484, 7)
                    self.write_mem(a, bytes(blob))
                else:
                    raw = self.read_mem(a, 24 + 768 + 0x1E + 7)
                    regs = struct.unpack_from("<12H", raw, 0)
                    self._dispi(4, 0)
                    for i in (1, 2, 3, 6, 8, 9, 5):
                        self._dispi(i, regs[i])
                    self._dispi(4, regs[4])
                    self.vbe_mode = regs[10] or None
                    for i in range(256):
                        self._dac_write(i, raw[24 + 3 * i: 27 + 3 * i])
                    self.write_mem(0x449, raw[792: 792 + 0x1E])
                    self.write_mem(0x484, raw[792 + 0x1E:])
                ok()
            else:
                fail()
        elif al == 0x05:
            if bx & 0xFF00 == 0x0100:
                self.setreg("dx", self._dispi(5))
            else:
                self._dispi(5, dx)
            ok()
        elif al == 0x06:
            sub = bx & 0xFF
            bpp = self._dispi(3)
            bpb = 1 if bpp <= 8 else (bpp + 7) // 8
            if sub == 0x00:
                self._dispi(6, cx)
            elif sub == 0x02:
                self._dispi(6, cx // bpb)
            if sub == 0x03:
                width = (VRAM_SIZE // (self._dispi(2) or 1)) // bpb
                self.setreg("bx", min(0xFFFF, width * bpb))
                self.setreg("cx", min(0xFFFF, width))
            else:
                vw = self._dispi(6)
                self.setreg("bx", vw * bpb)
                self.setreg("cx", vw)
            self.setreg("dx", self._dispi(7))
            ok()
        elif al == 0x07:
            sub = bx & 0xFF
            if sub in (0x00, 0x80):
                self._dispi(8, cx)
                self._dispi(9, dx)
            elif sub == 0x01:
                self.setreg("bh", 0)
                self.setreg("cx", self._dispi(8))
                self.setreg("dx", self._dispi(9))
            else:
                fail()
                return
            ok()
        elif al == 0x08:
            if bx & 0xFF == 0x00:
                en = self._dispi(4)
                want8 = (bx >> 8) >= 8
                self._dispi(4, (en | 0x20) if want8 else (en & ~0x20))
                self.setreg("bh", 8 if want8 else 6)
            else:
                self.setreg("bh", 8 if self._dispi(4) & 0x20 else 6)
            ok()
        elif al == 0x09:
            sub = bx & 0xFF
            a = self.lin(es, di)
            if sub in (0x00, 0x80):
                for i in range(cx):
                    b, g, r, _ = self.read_mem(a + 4 * i, 4)
                    self._dac_write((dx + i) & 0xFF, (r, g, b))
            elif sub == 0x01:
                for i in range(cx):
                    r, g, b = self._dac_read((dx + i) & 0xFF)
                    self.write_mem(a + 4 * i, bytes((b, g, r, 0)))
            else:
                fail()
                return
            ok()
        elif al == 0x0A:
            # protected-mode interface: ES:DI -> the table in the ROM, CX = its length
            if bx & 0xFF:
                fail()
                return
            start, end = self.off["vbe_pmi"], self.off["vbe_pmi_end"]
            self.setreg("es", 0xF000)
            self.setreg("di", start)
            self.setreg("cx", end - start)
            ok()
        else:
            self.setreg("ax", 0x0100)                         # other functions: unsupported

    def vbe_mode_info(self, x: int, y: int, bpp: int) -> bytes:
        """The 256-byte ModeInfoBlock (VBE 3.0, 4.4)."""
        bpb = 1 if bpp <= 8 else (bpp + 7) // 8
        pitch = x * bpb
        pages = max(0, min(255, VRAM_SIZE // (pitch * y) - 1))
        b = bytearray(256)
        model = 4 if bpp == 8 else 6
        struct.pack_into("<HBBHHHHIH", b, 0, 0x9B, 0x07, 0x00, 64, 64, 0xA000, 0, 0, pitch)
        struct.pack_into("<HHBBBBBBBBB", b, 18, x, y, 8, 16, 1, bpp, 1, model, 0, pages, 1)
        if bpp == 16:
            masks = (5, 11, 6, 5, 5, 0, 0, 0)
        elif bpp in (24, 32):
            masks = (8, 16, 8, 8, 8, 0, 8 if bpp == 32 else 0, 24 if bpp == 32 else 0)
        else:
            masks = (0,) * 8
        struct.pack_into("<8BB", b, 31, *masks, 0)
        struct.pack_into("<IIH", b, 40, LFB_BASE, 0, 0)
        struct.pack_into("<HBB8BI", b, 50, pitch, pages, pages, *masks, 0)
        return bytes(b)
