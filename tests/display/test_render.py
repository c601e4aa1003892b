"""VGA scan-out to RGB frames: text with a guest-loaded font, cursor and blink; mode 13h, mode X,
12h planar, CGA mode 4, VBE through DISPI and the LFB; line compare; PNG output; the fonts."""

import os

import numpy as np
import pytest

from aero.clock import Clock
from aero.devices import vga as V
from aero.devices.base import IOBus
from aero.display import fonts
from aero.display.png import encode_png, read_png, write_png
from aero.display.render import geometry, render
from aero.mem.bus import Bus
from aero.testing.fakecpu import FakeCPU


def c6(v):
    return (v << 2) | (v >> 4)


class Rig:
    def __init__(self):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=1_000_000_000)        # 1 tick = 1 ns
        self.vga = V.VGA(self.clock)
        self.io = IOBus()
        self.vga.register(self.io)
        self.bus = Bus(1 << 20)
        self.bus.set_kind(0xA0000, 0x20000, 3)
        self.vga.map_legacy(self.bus)

    def out(self, port, v):
        self.io.write(port, 1, v)

    def inp(self, port):
        return self.io.read(port, 1)

    def outw(self, port, v):
        self.io.write(port, 2, v)

    def set_mode(self, mode):
        V.program_mode(self.out, mode, self.inp)

    def load_dac(self, start, colours):
        self.out(0x3C8, start)
        for r, g, b in colours:
            self.out(0x3C9, r)
            self.out(0x3C9, g)
            self.out(0x3C9, b)

    def seq(self, i, v):
        self.out(0x3C4, i)
        self.out(0x3C5, v)

    def gr(self, i, v):
        self.out(0x3CE, i)
        self.out(0x3CF, v)

    def crtc(self, i, v):
        self.out(0x3D4, i)
        self.out(0x3D5, v)

    def load_font(self, data, height):
        """As a BIOS does (INT 10h AX=1110h): planar access to plane 2 at A0000."""
        self.seq(2, 0x04)
        self.seq(4, 0x07)
        self.gr(4, 0x02)
        self.gr(5, 0x00)
        self.gr(6, 0x04)
        for code in range(256):
            for line in range(height):
                self.bus.write8(0xA0000 + code * 32 + line, data[code * height + line])
        self.seq(2, 0x03)
        self.seq(4, 0x02)
        self.gr(4, 0x00)
        self.gr(5, 0x10)
        self.gr(6, 0x0E)

    def text(self, row, col, s, attr):
        for i, ch in enumerate(s.encode("cp437")):
            a = 0xB8000 + 2 * (row * 80 + col + i)
            self.bus.write8(a, ch)
            self.bus.write8(a + 1, attr)

    def at_frame(self, n):
        line_ps, vtotal = self.vga.frame_timing()[:2]
        self.cpu.icount = (n * line_ps * vtotal) // 1000 + 1000


def glyph_bits(code, height=16):
    return [[(b >> (7 - x)) & 1 for x in range(8)] for b in fonts.glyph(code, height)]


@pytest.fixture
def text_rig():
    r = Rig()
    r.set_mode(0x03)
    r.load_dac(0, V.EGA_PALETTE)
    r.load_font(fonts.FONT16, 16)
    return r


# ----------------------------------------------------------------------------------------------
# text mode
# ----------------------------------------------------------------------------------------------
def test_mode3_geometry_and_glyph(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)                                     # cursor off for this test
    r.text(2, 5, "A", 0x1F)                                # bright white on blue
    img = render(r.vga)
    assert img.shape == (400, 720, 3)
    g = geometry(r.vga)
    assert (g["cols"], g["rows"], g["cell_w"], g["cell_h"]) == (80, 25, 9, 16)
    white = (255, 255, 255)
    blue = (0, 0, c6(0x2A))
    bits = glyph_bits(ord("A"))
    assert any(any(row) for row in bits)
    for line in range(16):
        for x in range(9):
            px = tuple(img[2 * 16 + line, 5 * 9 + x])
            want = white if x < 8 and bits[line][x] else blue
            assert px == want, (line, x, px)
    # an untouched cell is black on black (memory was zero)
    assert tuple(img[0, 0]) == (0, 0, 0)


def test_ninth_column_line_graphics(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    r.text(0, 0, "─A", 0x07)                                # C4 (box drawing) then 'A'
    img = render(r.vga)
    grey = (c6(0x2A),) * 3
    bits = glyph_bits(0xC4)
    line = next(i for i, row in enumerate(bits) if row[7])
    assert tuple(img[line, 8]) == grey                       # 9th dot repeats the 8th
    r.inp(0x3DA)
    r.out(0x3C0, 0x30)                                       # AR10 with PAS
    r.out(0x3C0, 0x08)                                       # line graphics off
    img = render(r.vga)
    assert tuple(img[line, 8]) == (0, 0, 0)
    # 'A' never extends into the 9th column
    assert all(tuple(img[y, 9 + 8]) == (0, 0, 0) for y in range(16))


def test_cursor_shape_position_and_blink(text_rig):
    r = text_rig
    r.text(3, 10, " ", 0x07)
    loc = 3 * 80 + 10
    r.crtc(0x0E, loc >> 8)
    r.crtc(0x0F, loc & 0xFF)
    r.crtc(0x0A, 0x0D)
    r.crtc(0x0B, 0x0E)
    r.at_frame(0)
    img = render(r.vga)
    grey = (c6(0x2A),) * 3
    y0 = 3 * 16
    x0 = 10 * 9
    for line in range(16):
        want = grey if 13 <= line <= 14 else (0, 0, 0)
        assert tuple(img[y0 + line, x0 + 3]) == want, line
    assert tuple(img[y0 + 13, x0 + 8]) == (0, 0, 0)          # not the 9th column (C0-DF only)
    r.at_frame(8)                                            # cursor blink: off for 8 frames
    img = render(r.vga)
    assert tuple(img[y0 + 13, x0 + 3]) == (0, 0, 0)
    r.at_frame(16)
    assert tuple(render(r.vga)[y0 + 13, x0 + 3]) == grey
    r.crtc(0x0A, 0x2D)                                       # cursor disable bit
    assert tuple(render(r.vga)[y0 + 13, x0 + 3]) == (0, 0, 0)


def test_blink_and_bright_background(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    r.text(0, 0, "\u2588", 0xCE)                            # full block, yellow on blink+red
    yellow = (c6(0x3F), c6(0x3F), c6(0x15))
    red = (c6(0x2A), 0, 0)
    r.at_frame(0)
    assert tuple(render(r.vga)[4, 3]) == yellow
    r.at_frame(16)                                           # blink phase off: background
    assert tuple(render(r.vga)[4, 3]) == red
    r.inp(0x3DA)
    r.out(0x3C0, 0x30)
    r.out(0x3C0, 0x04)                                       # blink off: bright background
    r.text(0, 1, " ", 0xCE)
    img = render(r.vga)
    assert tuple(img[4, 3]) == yellow
    assert tuple(img[4, 9 + 3]) == (c6(0x3F), c6(0x15), c6(0x15))   # light red (12)


def test_start_address_and_rows_50(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    r.load_font(fonts.FONT8, 8)
    r.crtc(0x09, 0x47)                                       # 8-line cells: 80x50
    r.text(1, 0, "\u2588", 0x0F)
    g = geometry(r.vga)
    assert (g["rows"], g["cell_h"]) == (50, 8)
    img = render(r.vga)
    assert tuple(img[8 + 2, 2]) == (255, 255, 255)
    r.crtc(0x0C, 0)
    r.crtc(0x0D, 80)                                         # scroll by one row
    img = render(r.vga)
    assert tuple(img[2, 2]) == (255, 255, 255)


def test_pel_mask_and_palette(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    r.text(0, 0, "\u2588", 0x0F)
    r.load_dac(0x3F, [(1, 2, 3)])
    assert tuple(render(r.vga)[1, 1]) == (c6(1), c6(2), c6(3))
    r.out(0x3C6, 0x0F)                                       # PEL mask: 0x3F -> 0x0F
    r.load_dac(0x0F, [(0x3F, 0, 0)])
    assert tuple(render(r.vga)[1, 1]) == (255, 0, 0)


def test_pas_clear_blanks(text_rig):
    r = text_rig
    r.text(0, 0, "\u2588", 0x0F)
    r.inp(0x3DA)
    r.out(0x3C0, 0x00)                                       # PAS = 0
    assert not render(r.vga).any()


# ----------------------------------------------------------------------------------------------
# graphics
# ----------------------------------------------------------------------------------------------
def test_mode13h():
    r = Rig()
    r.set_mode(0x13)
    r.load_dac(0, [(0, 0, 0), (0x3F, 0, 0), (0, 0x3F, 0), (0, 0, 0x3F)])
    r.load_dac(200, [(0x10, 0x20, 0x30)])
    for x in range(320):
        r.bus.write8(0xA0000 + 10 * 320 + x, 1 + x % 3)
    r.bus.write8(0xA0000 + 199 * 320 + 319, 200)
    img = render(r.vga)
    assert img.shape == (200, 320, 3)
    assert geometry(r.vga)["kind"] == "vga256"
    assert tuple(img[10, 0]) == (255, 0, 0)
    assert tuple(img[10, 1]) == (0, 255, 0)
    assert tuple(img[10, 2]) == (0, 0, 255)
    assert tuple(img[10, 3]) == (255, 0, 0)
    assert tuple(img[9, 0]) == (0, 0, 0)
    assert tuple(img[199, 319]) == (c6(0x10), c6(0x20), c6(0x30))
    # chain-4 layout in the planes: pixel n in plane n & 3 at offset n & ~3
    assert r.vga.plane(1)[10 * 320 + 0] == 2 and r.vga.plane(0)[10 * 320] == 1


def test_mode13h_line_compare_split():
    r = Rig()
    r.set_mode(0x13)
    r.load_dac(0, [(0, 0, 0), (0x3F, 0x3F, 0x3F)])
    r.bus.write8(0xA0000 + 0, 1)                             # top-left pixel of memory
    r.crtc(0x0C, 0x00)
    r.crtc(0x0D, 80)                                         # start 80 dwords = 1 row down
    assert tuple(render(r.vga)[0, 0]) == (0, 0, 0)
    # split after scan line 199 (row 100 of the doubled 13h lines)
    r.crtc(0x18, 199)
    r.crtc(0x07, r.vga.CR[7] & ~0x10)
    r.crtc(0x09, r.vga.CR[9] & ~0x40)
    img = render(r.vga)
    assert tuple(img[100, 0]) == (255, 255, 255)
    assert tuple(img[99, 0]) == (0, 0, 0)


def test_mode_x_unchained():
    r = Rig()
    r.set_mode(0x13)
    r.seq(4, 0x06)                                           # chain-4 off
    r.crtc(0x14, 0x00)                                       # doubleword off
    r.crtc(0x17, 0xE3)                                       # byte mode
    r.load_dac(0, [(0, 0, 0), (0x3F, 0, 0), (0, 0x3F, 0)])
    r.seq(2, 1 << (5 & 3))                                   # pixel x=5 is in plane 1
    r.bus.write8(0xA0000 + 3 * 80 + 5 // 4, 1)
    r.seq(2, 1 << (6 & 3))
    r.bus.write8(0xA0000 + 3 * 80 + 6 // 4, 2)
    img = render(r.vga)
    assert img.shape == (200, 320, 3)
    assert tuple(img[3, 5]) == (255, 0, 0)
    assert tuple(img[3, 6]) == (0, 255, 0)
    assert tuple(img[3, 4]) == (0, 0, 0)


def test_mode12h_write_modes():
    r = Rig()
    r.set_mode(0x12)
    r.load_dac(0, V.EGA_PALETTE)
    # write mode 2: colour 14 (yellow -> AR 0x3E) on pixels 0 and 7 of byte 0, row 5
    r.gr(5, 0x02)
    r.gr(8, 0x81)
    a = 0xA0000 + 5 * 80
    r.bus.read8(a)                                           # load the latches
    r.bus.write8(a, 14)
    # write mode 0 with set/reset: colour 4 (red) in the middle four pixels of byte 1
    r.gr(5, 0x00)
    r.gr(0, 0x04)
    r.gr(1, 0x0F)
    r.gr(8, 0x3C)
    r.bus.read8(a + 1)
    r.bus.write8(a + 1, 0xFF)
    img = render(r.vga)
    assert img.shape == (480, 640, 3)
    yellow = (c6(0x3F), c6(0x3F), c6(0x15))
    red = (c6(0x2A), 0, 0)
    assert tuple(img[5, 0]) == yellow and tuple(img[5, 7]) == yellow
    assert tuple(img[5, 1]) == (0, 0, 0)
    assert [tuple(img[5, 8 + i]) for i in range(8)] == \
        [(0, 0, 0)] * 2 + [red] * 4 + [(0, 0, 0)] * 2
    assert tuple(img[4, 0]) == (0, 0, 0)
    # colour plane enable masks planes out of the attribute index: 14 & 0x3 -> 2 (green)
    r.inp(0x3DA)
    r.out(0x3C0, 0x32)
    r.out(0x3C0, 0x03)
    assert tuple(render(r.vga)[5, 0]) == (0, c6(0x2A), 0)


def test_cga_mode4():
    r = Rig()
    r.set_mode(0x04)
    r.load_dac(0, V.EGA_PALETTE)
    # pixel (x=1, y=3): odd line -> second 8 KiB bank; value 3 -> AR3 = 0x17 (light grey)
    r.bus.write8(0xB8000 + 0x2000 + (3 >> 1) * 80 + 0, 0b00110000)
    # pixel (x=6, y=2): even line; value 1 -> AR1 = 0x13 (cyan-ish)
    r.bus.write8(0xB8000 + (2 >> 1) * 80 + 1, 0b00000100)
    img = render(r.vga)
    assert img.shape == (200, 320, 3)
    assert tuple(img[3, 1]) == tuple(c6(v) for v in V.EGA_PALETTE[0x17])
    assert tuple(img[2, 6]) == tuple(c6(v) for v in V.EGA_PALETTE[0x13])
    assert tuple(img[3, 0]) == (0, 0, 0) and tuple(img[2, 1]) == (0, 0, 0)


# ----------------------------------------------------------------------------------------------
# VBE
# ----------------------------------------------------------------------------------------------
def dispi(r, index, value):
    r.outw(0x1CE, index)
    r.outw(0x1CF, value)


def vbe_rig(xres, yres, bpp):
    r = Rig()
    bus = Bus(2 << 20)
    r.vga.map_lfb(bus, 0xE0000000)
    r.lbus = bus
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, 0)
    dispi(r, V.VBE_DISPI_INDEX_XRES, xres)
    dispi(r, V.VBE_DISPI_INDEX_YRES, yres)
    dispi(r, V.VBE_DISPI_INDEX_BPP, bpp)
    dispi(r, V.VBE_DISPI_INDEX_ENABLE, V.VBE_DISPI_ENABLED | V.VBE_DISPI_LFB_ENABLED)
    return r


def test_vbe_640x480x32_lfb():
    r = vbe_rig(640, 480, 32)
    base = 0xE0000000
    r.lbus.write32(base + (10 * 640 + 20) * 4, 0x00FF8040)          # X R G B
    r.lbus.write32(base + (479 * 640 + 639) * 4, 0x00010203)
    img = render(r.vga)
    assert img.shape == (480, 640, 3)
    assert tuple(img[10, 20]) == (0xFF, 0x80, 0x40)
    assert tuple(img[479, 639]) == (1, 2, 3)
    assert tuple(img[0, 0]) == (0, 0, 0)
    # virtual width and offsets: a 1024-pixel pitch, scrolled to y=10, x=20
    dispi(r, V.VBE_DISPI_INDEX_VIRT_WIDTH, 1024)
    r.lbus.write32(base + (10 * 1024 + 20) * 4, 0x00123456)
    dispi(r, V.VBE_DISPI_INDEX_X_OFFSET, 20)
    dispi(r, V.VBE_DISPI_INDEX_Y_OFFSET, 10)
    assert tuple(render(r.vga)[0, 0]) == (0x12, 0x34, 0x56)


@pytest.mark.parametrize("bpp,pixel,want", [
    (16, (0xF800 | (0x20 << 5)).to_bytes(2, "little"), (255, 0x80 | 0x02, 0)),
    (15, (0x7C00 | 0x001F).to_bytes(2, "little"), (255, 0, 255)),
    (24, bytes([0x30, 0x20, 0x10]), (0x10, 0x20, 0x30)),
])
def test_vbe_other_depths(bpp, pixel, want):
    r = vbe_rig(320, 200, bpp)
    bypp = (bpp + 7) // 8
    for i, b in enumerate(pixel):
        r.lbus.write8(0xE0000000 + (5 * 320 + 7) * bypp + i, b)
    img = render(r.vga)
    assert img.shape == (200, 320, 3)
    assert tuple(img[5, 7]) == want


def test_vbe_8bpp_through_dac_and_banked_window():
    r = vbe_rig(640, 480, 8)
    r.load_dac(9, [(0x3F, 0x20, 0x00)])
    # pixel 70000 lies in bank 1 of the A0000 window
    dispi(r, V.VBE_DISPI_INDEX_BANK, 1)
    r.bus.write8(0xA0000 + 70000 - 65536, 9)
    img = render(r.vga)
    y, x = divmod(70000, 640)
    assert tuple(img[y, x]) == (255, c6(0x20), 0)
    r.out(0x3C6, 0x01)                                       # PEL mask applies: 9 -> 1
    assert tuple(render(r.vga)[y, x]) == (0, 0, 0)


# ----------------------------------------------------------------------------------------------
# PNG and fonts
# ----------------------------------------------------------------------------------------------
def test_png_roundtrip(tmp_path, text_rig):
    r = text_rig
    r.text(0, 0, "Hello", 0x1E)
    img = render(r.vga)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR" and int.from_bytes(data[16:20], "big") == 720
    assert np.array_equal(read_png(data), img)
    p = tmp_path / "shot.png"
    write_png(p, img)
    assert p.read_bytes() == data                            # deterministic
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), dtype=np.uint8))


def test_fonts_shape_and_known_glyphs():
    for h, f in ((8, fonts.FONT8), (14, fonts.FONT14), (16, fonts.FONT16)):
        assert len(f) == 256 * h
        assert fonts.glyph(0x00, h) == bytes(h) and fonts.glyph(0x20, h) == bytes(h)
        assert fonts.glyph(0xDB, h) == b"\xff" * h          # full block
        assert all(fonts.glyph(c, h).strip(b"\0") for c in range(0x21, 0x7F))
        assert all(fonts.glyph(c, h).strip(b"\0") for c in range(0x01, 0x20))
        # box drawing: the vertical line reaches the cell's top and bottom rows
        g = fonts.glyph(0xB3, h)
        assert g[0] and g[-1]
    # a guard against shifted tables: the VGA 8x8 'A' and the smiley
    assert fonts.glyph(ord("A"), 8) == bytes.fromhex("386cc6fec6c6c600")
    assert fonts.glyph(0x01, 8) == bytes.fromhex("7e81a581bd99817e")


@pytest.mark.skipif(not os.path.exists("/usr/share/consolefonts/Uni2-VGA16.psf.gz"),
                    reason="console-setup-linux fonts not installed")
def test_font_data_matches_regeneration():
    built, prov = fonts.generate()
    assert built[8] == fonts.FONT8
    assert built[14] == fonts.FONT14
    assert built[16] == fonts.FONT16
    with open(fonts.MODULE_PATH) as f:
        assert f.read() == fonts.render_module(built, prov)


def test_double_scan_and_40_columns(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    r.text(0, 0, "\u2588", 0x0F)
    r.seq(1, 0x08)                                           # dot clock / 2 (40-column timing)
    r.crtc(0x11, 0x0E)                                       # unprotect
    r.crtc(0x01, 0x27)
    r.crtc(0x13, 0x14)
    g = geometry(r.vga)
    assert (g["cols"], g["cell_w"], g["width"]) == (40, 18, 720)
    img = render(r.vga)
    assert img.shape == (400, 720, 3)
    assert tuple(img[0, 15]) == (255, 255, 255)              # 8th dot doubled
    assert tuple(img[0, 17]) == (255, 255, 255)              # DB is in C0-DF: 9th = 8th
    r.inp(0x3DA)
    r.out(0x3C0, 0x30)
    r.out(0x3C0, 0x00)                                       # line graphics off
    assert tuple(render(r.vga)[0, 17]) == (0, 0, 0)


def test_planar_double_scan_folds_lines():
    r = Rig()
    r.set_mode(0x12)
    r.load_dac(0, V.EGA_PALETTE)
    r.gr(5, 0x02)
    r.bus.read8(0xA0000 + 80)
    r.bus.write8(0xA0000 + 80, 15)                           # row 1, pixels 0-7 white
    r.crtc(0x09, 0x80)                                       # scan doubling
    img = render(r.vga)
    assert img.shape == (240, 640, 3)
    assert tuple(img[1, 0]) == (255, 255, 255) and tuple(img[0, 0]) == (0, 0, 0)
    assert tuple(img[2, 0]) == (0, 0, 0)


def test_png_decodes_with_pygame(tmp_path):
    """Cross-check the encoder against a decoder we did not write (SDL_image via pygame)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame = pytest.importorskip("pygame")
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    p = tmp_path / "rand.png"
    write_png(p, img)
    surf = pygame.image.load(str(p))
    got = pygame.surfarray.array3d(surf).transpose(1, 0, 2)
    assert np.array_equal(got, img)


def test_character_map_select_512_chars(text_rig):
    r = text_rig
    r.crtc(0x0A, 0x20)
    # a second font in block 1 (plane 2 offset 16 KiB): every glyph a solid block
    r.seq(2, 0x04)
    r.seq(4, 0x07)
    r.gr(4, 0x02)
    r.gr(5, 0x00)
    r.gr(6, 0x04)
    for code in range(256):
        for line in range(16):
            r.bus.write8(0xA0000 + 0x4000 + code * 32 + line, 0xFF)
    r.seq(2, 0x03)
    r.seq(4, 0x02)
    r.gr(4, 0x00)
    r.gr(5, 0x10)
    r.gr(6, 0x0E)
    r.text(0, 0, " ", 0x07)                                  # attribute bit 3 clear
    r.text(0, 1, " ", 0x0F)                                  # attribute bit 3 set
    assert tuple(render(r.vga)[5, 9 + 3]) == (0, 0, 0)        # A == B == block 0: blank
    r.seq(3, 0x04)                                           # map A = block 1, map B = 0
    img = render(r.vga)
    assert tuple(img[5, 3]) == (0, 0, 0)
    assert tuple(img[5, 9 + 3]) == (255, 255, 255)
    r.seq(3, 0x01)                                           # map B = block 1, map A = 0
    img = render(r.vga)
    assert tuple(img[5, 3]) == (c6(0x2A),) * 3
    assert tuple(img[5, 9 + 3]) == (0, 0, 0)


def test_pixel_panning_planar():
    r = Rig()
    r.set_mode(0x12)
    r.load_dac(0, V.EGA_PALETTE)
    r.gr(5, 0x02)
    r.gr(8, 0x01)                                            # pixel 7 of byte 1
    r.bus.read8(0xA0001)
    r.bus.write8(0xA0001, 15)
    assert tuple(render(r.vga)[0, 15]) == (255, 255, 255)
    r.inp(0x3DA)
    r.out(0x3C0, 0x33)
    r.out(0x3C0, 0x03)                                       # pan left by 3 pixels
    img = render(r.vga)
    assert tuple(img[0, 12]) == (255, 255, 255) and tuple(img[0, 15]) == (0, 0, 0)
