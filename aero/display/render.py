"""Scan-out of the standard VGA to an RGB frame: ``render(vga) -> numpy (H, W, 3) uint8``.

The frame is produced the way the VGA's display pipeline produces it (IBM VGA Technical
Reference, "CRT Controller", "Attribute Controller", "Video DAC"; FreeVGA's register pages):

1. **Address generation (CRTC).**  For every displayed scan line (CR12 + overflow, plus one)
   the row scan counter runs 0..Maximum Scan Line (CR09 bits 4-0; every scan line counts twice
   with Scan Doubling, CR09 bit 7); at the end of a character row the row start address
   advances by twice the Offset register (CR13).  The first row starts at the Start Address
   (CR0C/CR0D); after the scan line equal to Line Compare (CR18 + CR07 bit 4 + CR09 bit 6) the
   address and the row scan counter restart at 0 (split screen).  The memory address of a
   character clock is MA (byte mode, CR17 bit 6 = 1), MA << 1 with MA13 or MA15 in bit 0 (word
   mode, CR17 bit 5), or MA << 2 (doubleword mode, CR14 bit 6); with CR17 bit 0 (resp. 1)
   clear, address bit 13 (resp. 14) is replaced by row scan counter bit 0 (resp. 1): the CGA
   interleave.
2. **Serialisation.**  Text: plane 0 = character code, plane 1 = attribute, the glyph row is
   plane 2 at the character map block (SR03: map A for attribute bit 3 = 1, map B for 0) +
   32 * code + row scan; 8- or 9-dot cells (SR01 bit 0), the 9th dot repeats the 8th for codes
   C0-DF when AR10 bit 2 (Line Graphics Enable) is set; underline on the CR14 scan line for
   attributes whose colour bits are x000x001; blink (AR10 bit 3: attribute bit 7 blinks the
   character, the background has 3 bits) or 16 background colours; the cursor (CR0A/CR0B
   start/end/disable/skew, CR0E/CR0F location).  Graphics: GR05 bits 6-5 select planar
   (8 pixels from bit k of the four planes), shift-register interleave (CGA 2 bits per pixel,
   planes 0/1 low bits, 2/3 high bits) or 256-colour (4 pixels per character clock, one byte
   from each plane).  Horizontal pixel panning (AR13), reset below the split when AR10 bit 5.
3. **Attribute controller.**  4-bit colours are masked by Color Plane Enable (AR12), looked
   up in the palette AR00-AR0F and completed with Color Select (AR14; bits 5-4 from it when
   AR10 bit 7).  256-colour pixels go to the DAC directly (AR10 bit 6).  With the Palette
   Address Source bit (3C0 bit 5) clear, or the screen off (SR01 bit 5), the frame is black.
4. **DAC.**  The index is ANDed with the PEL mask (3C6) and looked up in the 256-entry palette
   (6 bits per primary, scaled to 8; 8 bits with VBE_DISPI_8BIT_DAC).

Frames are given at the mode's logical resolution: scan doubling and rows of identical scan
lines in graphics modes (mode 13h's two lines per row) are folded, so mode 13h is 320x200,
mode 0Dh 320x200, 12h 640x480, 10h 640x350; a dot clock halved by SR01 bit 3 doubles text cells
to 16/18 pixels (as QEMU shows 40-column text) but keeps graphics at their logical width.

VBE (DISPI enabled): 8 bpp through the DAC and PEL mask, 15/16 bpp RGB555/565, 24 bpp
B,G,R bytes and 32 bpp B,G,R,X, from the start given by the X/Y offsets with the virtual width
as the line pitch.  4 bpp VBE modes render black (not supported).

Blink phases come from virtual time (``vga.frame_number()``): the cursor toggles every 8
frames, blinking characters every 16 frames.  Byte panning (CR08) is not modelled.
"""

from __future__ import annotations

import numpy as np

from ..devices import vga as V

PLANES = V.PLANE_SIZE * 4
# font block offsets in plane 2 for the 3-bit character map numbers of SR03
FONT_BLOCK = tuple(((n & 3) * 2 + (n >> 2)) * 0x2000 for n in range(8))


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _dac_rgb(vga) -> np.ndarray:
    pal = np.frombuffer(bytes(vga.DAC), dtype=np.uint8).reshape(256, 3)
    if vga.dac_8bit:
        return pal.copy()
    pal = pal & 0x3F
    return ((pal << 2) | (pal >> 4)).astype(np.uint8)


def _attr_lut(vga) -> np.ndarray:
    """4-bit colour -> 8-bit DAC index (Color Plane Enable, palette, Color Select)."""
    ar = vga.AR
    out = np.zeros(16, dtype=np.uint8)
    cs = ar[0x14]
    for c in range(16):
        p = ar[c & ar[0x12] & 0x0F]
        if ar[0x10] & 0x80:
            idx = (p & 0x0F) | ((cs & 0x03) << 4)
        else:
            idx = p & 0x3F
        out[c] = idx | ((cs & 0x0C) << 4)
    return out


def _planes(vga) -> np.ndarray:
    """The four planes as a (65536, 4) view of video memory."""
    return np.frombuffer(vga.vram, dtype=np.uint8, count=PLANES).reshape(V.PLANE_SIZE, 4)


def geometry(vga) -> dict:
    """What the display shows: kind ('text', 'planar', 'cga2', 'vga256', 'vbe') and sizes
    (``VGA.display_geometry``)."""
    return vga.display_geometry()


def _fit(img: np.ndarray, h: int) -> np.ndarray:
    """Crop or pad (black) an index image to the frame height (a split screen can change the
    number of folded lines by one)."""
    if img.shape[0] == h:
        return img
    if img.shape[0] > h:
        return img[:h]
    pad = np.zeros((h - img.shape[0],) + img.shape[1:], dtype=img.dtype)
    return np.concatenate([img, pad])


def _scan_lines(vga):
    """Per output scan line: (row start MA, row scan counter, below-split flag), after
    folding scan doubling and (in graphics modes with no CGA substitution) repeated lines."""
    cr = vga.CR
    vde = vga.vertical_display_end()
    msl = cr[0x09] & 0x1F
    dscan = bool(cr[0x09] & 0x80)
    lc = vga.line_compare()
    step = 2 * cr[0x13]
    graphics = vga.graphics_mode()
    fold_rows = graphics and (cr[0x17] & 3) == 3
    ma = vga.start_address()
    sc = 0
    half = 0
    mas, scs, split = [], [], []
    below = False
    for y in range(vde):
        keep = not (dscan and half) and not (fold_rows and sc != 0)
        if keep:
            mas.append(ma)
            scs.append(sc)
            split.append(below)
        # advance the row scan counter (every other line with scan doubling)
        if dscan and not half:
            half = 1
        else:
            half = 0
            if sc >= msl:
                sc = 0
                ma = (ma + step) & 0xFFFF
            else:
                sc += 1
        if y == lc:
            ma = 0
            sc = 0
            half = 0
            below = True
    return (np.array(mas, dtype=np.int64), np.array(scs, dtype=np.int64),
            np.array(split, dtype=bool))


def _addresses(vga, ma: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """CRTC memory addresses (plane offsets) for MA values (any shape), row scan ``sc``
    broadcastable to it."""
    cr = vga.CR
    if cr[0x14] & 0x40:                       # doubleword mode
        a = ma << 2
    elif not cr[0x17] & 0x40:                 # word mode
        bit0 = (ma >> 15) & 1 if cr[0x17] & 0x20 else (ma >> 13) & 1
        a = (ma << 1) | bit0
    else:
        a = ma
    if not cr[0x17] & 0x01:                   # CGA: A13 <- row scan bit 0
        a = (a & ~(1 << 13)) | ((sc & 1) << 13)
    if not cr[0x17] & 0x02:                   # Hercules: A14 <- row scan bit 1
        a = (a & ~(1 << 14)) | (((sc >> 1) & 1) << 14)
    return a & 0xFFFF


def _pan(vga, kind: str) -> int:
    p = vga.AR[0x13] & 0x0F
    if kind == "text" and vga.char_width() == 9:
        return 0 if p >= 8 else p + 1
    if kind == "vga256":
        return (p >> 1) & 3
    return p & 7


def _apply_pan(img: np.ndarray, split: np.ndarray, pan: int, width: int,
               reset_below: bool) -> np.ndarray:
    if pan == 0:
        return img[:, :width]
    out = img[:, pan: pan + width]
    if reset_below and split.any():
        out = out.copy()
        out[split] = img[split, :width]
    return out


# ----------------------------------------------------------------------------------------------
# the renderer
# ----------------------------------------------------------------------------------------------
def render(vga) -> np.ndarray:
    """The current screen as an (H, W, 3) uint8 RGB array."""
    g = geometry(vga)
    w, h = max(1, g["width"]), max(1, g["height"])
    if g["kind"] == "vbe":
        return _render_vbe(vga, g)
    if not vga.AR_index & 0x20 or vga.SR[1] & 0x20:
        return np.zeros((h, w, 3), dtype=np.uint8)        # palette being loaded / screen off
    if g["kind"] == "text":
        idx = _render_text(vga, g)
    else:
        idx = _render_graphics(vga, g)
    idx = _fit(idx, h) & np.uint8(vga.PEL_mask)
    return _dac_rgb(vga)[idx]


def _render_graphics(vga, g) -> np.ndarray:
    kind = g["kind"]
    mas, scs, split = _scan_lines(vga)
    clocks = vga.CR[0x01] + 1
    pan = _pan(vga, kind)
    n = clocks + (1 if pan else 0)
    ma = (mas[:, None] + np.arange(n, dtype=np.int64)[None, :]) & 0xFFFF
    addr = _addresses(vga, ma, scs[:, None])
    planes = _planes(vga)
    b = planes[addr]                                       # (H, n, 4)
    H = len(mas)
    if kind == "vga256":
        img = b.reshape(H, n * 4)
        img = _apply_pan(img, split, pan, g["width"], bool(vga.AR[0x10] & 0x20))
        return np.ascontiguousarray(img)
    if kind == "planar":
        bits = np.unpackbits(b[..., None], axis=-1)        # (H, n, 4, 8): bit 7 first
        pix = (bits[:, :, 0, :] | (bits[:, :, 1, :] << 1) | (bits[:, :, 2, :] << 2)
               | (bits[:, :, 3, :] << 3))                  # (H, n, 8)
    else:                                                  # CGA interleave: 2 bits per pixel
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8)
        lo0 = (b[:, :, 0, None] >> shifts) & 3
        lo1 = (b[:, :, 1, None] >> shifts) & 3
        hi0 = (b[:, :, 2, None] >> shifts) & 3
        hi1 = (b[:, :, 3, None] >> shifts) & 3
        pix = np.concatenate([lo0 | (hi0 << 2), lo1 | (hi1 << 2)], axis=-1)
    img = pix.reshape(H, n * 8).astype(np.uint8)
    img = _apply_pan(img, split, pan, g["width"], bool(vga.AR[0x10] & 0x20))
    return _attr_lut(vga)[img]


def _render_text(vga, g) -> np.ndarray:
    cr = vga.CR
    ar = vga.AR
    mas, scs, split = _scan_lines(vga)
    cols = g["cols"]
    pan = _pan(vga, "text")
    n = cols + (1 if pan else 0)
    H = len(mas)
    ma = (mas[:, None] + np.arange(n, dtype=np.int64)[None, :]) & 0xFFFF
    addr = _addresses(vga, ma, scs[:, None])
    planes = _planes(vga)
    code = planes[addr, 0].astype(np.int64)                # (H, n)
    attr = planes[addr, 1]
    # glyph rows from plane 2: map A for attribute bit 3 = 1, map B for 0
    sr3 = vga.SR[3]
    map_a = ((sr3 >> 5) & 1) << 2 | ((sr3 >> 2) & 3)
    map_b = ((sr3 >> 4) & 1) << 2 | (sr3 & 3)
    base = np.where(attr & 0x08, FONT_BLOCK[map_a], FONT_BLOCK[map_b])
    glyph = planes[(base + code * 32 + scs[:, None]) & 0xFFFF, 2]
    # colours
    fg = (attr & 0x0F).astype(np.uint8)
    bg = (attr >> 4).astype(np.uint8)
    frame = vga.frame_number()
    if ar[0x10] & 0x08:                                    # blink enable
        bg &= 7
        if frame & 16:                                     # blink phase "off"
            fg = np.where(attr & 0x80, bg, fg)
    # underline: colour bits x000x001 on the underline scan line
    ul = cr[0x14] & 0x1F
    under = ((attr & 0x77) == 0x01) & (scs[:, None] == ul)
    glyph = np.where(under, 0xFF, glyph).astype(np.uint8)
    # cursor
    if not cr[0x0A] & 0x20 and not frame & 8:
        cs, ce = cr[0x0A] & 0x1F, cr[0x0B] & 0x1F
        skew = (cr[0x0B] >> 5) & 3
        loc = (vga.cursor_location() + skew) & 0xFFFF
        on_line = (scs >= cs) & (scs <= ce)
        cur = (ma == loc) & on_line[:, None]
        glyph = np.where(cur, 0xFF, glyph).astype(np.uint8)
    bits = np.unpackbits(glyph[..., None], axis=-1)        # (H, n, 8)
    if vga.char_width() == 9:
        if ar[0x10] & 0x04:
            ninth = np.where((code >= 0xC0) & (code <= 0xDF), bits[:, :, 7], 0)
        else:
            ninth = np.zeros((H, n), dtype=np.uint8)
        bits = np.concatenate([bits, ninth[:, :, None].astype(np.uint8)], axis=-1)
    pix = np.where(bits.astype(bool), fg[:, :, None], bg[:, :, None])
    cw = bits.shape[2]
    img = pix.reshape(H, n * cw)
    img = _apply_pan(img, split, pan, cols * cw, bool(ar[0x10] & 0x20))
    if vga.SR[1] & 0x08:                                   # dot clock / 2: wide cells
        img = np.repeat(img, 2, axis=1)
    return _attr_lut(vga)[img]


def _render_vbe(vga, g) -> np.ndarray:
    w, h, bpp = g["width"], g["height"], g["bpp"]
    if w == 0 or h == 0:
        return np.zeros((max(1, h), max(1, w), 3), dtype=np.uint8)
    if bpp == 4:
        return np.zeros((h, w, 3), dtype=np.uint8)
    bypp = 1 if bpp == 8 else (bpp + 7) // 8
    line = vga.vbe_line_offset
    start = vga.vbe_start
    mem = np.frombuffer(vga.vram, dtype=np.uint8)
    need = start + (h - 1) * line + w * bypp
    if need > len(mem):                                   # clip at the end of video memory
        h = max(1, (len(mem) - start - w * bypp) // line + 1)
    rows = np.lib.stride_tricks.as_strided(mem[start:], shape=(h, w * bypp),
                                           strides=(line, 1))
    rows = np.ascontiguousarray(rows)
    if bpp == 8:
        out = _dac_rgb(vga)[rows & np.uint8(vga.PEL_mask)]
    elif bpp in (15, 16):
        v = rows.view("<u2").astype(np.uint32)
        if bpp == 15:
            r, gg, b = (v >> 10) & 31, (v >> 5) & 31, v & 31
            gg = (gg << 3) | (gg >> 2)
        else:
            r, gg, b = (v >> 11) & 31, (v >> 5) & 63, v & 31
            gg = (gg << 2) | (gg >> 4)
        r = (r << 3) | (r >> 2)
        b = (b << 3) | (b >> 2)
        out = np.stack([r, gg, b], axis=-1).astype(np.uint8)
    else:
        px = rows.reshape(h, w, bypp)
        out = np.ascontiguousarray(px[:, :, 2::-1])
    if out.shape[0] < g["height"]:
        pad = np.zeros((g["height"] - out.shape[0], w, 3), dtype=np.uint8)
        out = np.concatenate([out, pad])
    return out
