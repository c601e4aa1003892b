"""PNG writer for RGB frames (``--screenshot``): zlib + struct, no imaging library.

PNG (ISO/IEC 15948 / RFC 2083): signature, IHDR (width, height, bit depth 8, colour type 2 =
truecolour, compression 0, filter 0, interlace 0), IDAT (zlib stream of scan lines, each
preceded by its filter type byte; filter 0 = None here), IEND; every chunk carries a CRC-32
over its type and data.  Output is deterministic: the same frame gives the same bytes.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(frame: np.ndarray, level: int = 6) -> bytes:
    """An (H, W, 3) uint8 RGB array as PNG file bytes."""
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("empty frame")
    raw = np.zeros((h, 1 + 3 * w), dtype=np.uint8)     # filter byte 0 then RGB
    raw[:, 1:] = a.reshape(h, 3 * w)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _chunk(b"IEND", b""))


def write_png(path, frame: np.ndarray) -> None:
    """Write an RGB frame to ``path`` as PNG."""
    data = encode_png(frame)
    with open(path, "wb") as f:
        f.write(data)


def read_png(data: bytes) -> np.ndarray:
    """Decode a PNG written by ``encode_png`` (8-bit RGB, any filter) back to an array: for
    tests and golden-screen comparisons."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG file")
    pos = 8
    idat = b""
    w = h = None
    while pos < len(data):
        n, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8: pos + 8 + n]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != struct.unpack_from(">I", data,
                                                                        pos + 8 + n)[0]:
            raise ValueError(f"bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, ctype, interlace) != (8, 2, 0):
                raise ValueError("only 8-bit RGB non-interlaced PNGs are supported")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, 3 * w), dtype=np.int32)
    prev = np.zeros(3 * w, dtype=np.int32)
    for y in range(h):
        f = raw[y, 0]
        line = raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        else:                                   # filters 1, 3, 4 need a left-to-right pass
            cur = np.zeros_like(line)
            for x in range(3 * w):
                a = cur[x - 3] if x >= 3 else 0
                b = prev[x]
                c = prev[x - 3] if x >= 3 else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.astype(np.uint8).reshape(h, w, 3)
