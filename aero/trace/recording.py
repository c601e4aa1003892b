"""The recording file: one file per recorded run (``aero record``), read by replay and by time
travel.

Layout: the magic ``AEROREC\\n``, then chunks, then a trailer::

    chunk   := kind (1 byte) length (u32 LE) payload crc32(payload) (u32 LE)
    trailer := "AEROEND\\n" offset of the index chunk (u64 LE)

Chunk kinds (JSON payloads unless said otherwise):

=====  ================================================================================
``H``  header: format, producer, creation time, the machine's identity (memory, ips,
       firmware and VGA BIOS digests, devices, disk images by SHA-256) and the settings
       that rebuild it, the recording's parameters (checkpoint and keyframe intervals)
``P``  pages (binary): u32 count, then count times (u32 page id, 4096 bytes)
``K``  keyframe (binary): u32 n, n bytes of JSON (the ``Machine.get_state()`` value with
       every memory page replaced by its page id, 0 = the zero page, and other byte strings
       by references), then those byte strings.  Pages a keyframe shares with the previous
       one are not written again: keyframes are incremental snapshots
``I``  inputs: rows [n, posted at tick, takes effect at tick, event]
``C``  checkpoints: rows [icount, tick, eax..edi, eip, eflags, es, cs, ss, ds, fs, gs]
``V``  events: rows [icount, kind, text]
``E``  end: the run's status, exit code, instruction count, tick and final digest
``X``  index: per keyframe [icount, tick, inputs, digest, edit, offset of its K chunk]
=====  ================================================================================

A file cut short (no trailer, a partial chunk) or damaged (a CRC mismatch) or of another format
version is refused with one line (``RecordingError``, exit status 2 on the command line).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import zlib

from .. import statefile
from ..config import ConfigError
from ..mem.pages import PAGE, ZERO_PAGE

MAGIC = b"AEROREC\n"
TRAILER = b"AEROEND\n"
FORMAT = 1
_HDR = struct.Struct("<BI")


class RecordingError(ConfigError):
    """A recording that cannot be used: one line."""


def _encode_state(state: dict, page_ids) -> bytes:
    """A keyframe chunk's payload: u32 n, n bytes of JSON (the state, memory as page ids, other
    byte strings as references), then those byte strings."""
    blobs: list[bytes] = []
    rest = {k: v for k, v in state.items() if k not in ("ram", "vram")}
    skel = {"state": statefile.encode(rest, blobs),
            "ram": [page_ids(p) for p in state["ram"]],
            "vram": [page_ids(p) for p in state["vram"]]}
    offsets, pos = [], 0
    for b in blobs:
        offsets.append([pos, len(b)])
        pos += len(b)
    skel["blobs"] = offsets
    js = json.dumps(skel, separators=(",", ":")).encode()
    return struct.pack("<I", len(js)) + js + b"".join(blobs)


class Writer:
    """Appends chunks to a new recording file (written as ``PATH.partial``, renamed when
    closed, so that an interrupted recording never looks complete)."""

    def __init__(self, path: str, header: dict):
        if os.path.exists(path) and not os.path.isfile(path):
            raise RecordingError(f"{path} is not a regular file (a recording would replace it)")
        self.path = path
        self.tmp = path + ".partial"
        self.f = open(self.tmp, "wb")
        self.f.write(MAGIC)
        self.index: list[list] = []
        self._page_ids: dict[int, tuple] = {}       # id(page) -> (page, page id), last keyframe
        self._next_page = 1
        self.chunk("H", {**header, "format": FORMAT})

    def chunk(self, kind: str, payload) -> int:
        data = payload if isinstance(payload, (bytes, bytearray)) else \
            json.dumps(payload, separators=(",", ":")).encode()
        off = self.f.tell()
        self.f.write(_HDR.pack(ord(kind), len(data)))
        self.f.write(data)
        self.f.write(struct.pack("<I", zlib.crc32(data)))
        return off

    def keyframe(self, kf, state: dict) -> None:
        """Write a keyframe (``aero.trace.timeline.Keyframe`` and its state): the pages it does
        not share with the previous keyframe, then the state with its memory as page ids."""
        old = self._page_ids
        new: dict[int, tuple] = {}
        fresh = []

        def page_id(p):
            if p is ZERO_PAGE:
                return 0
            e = new.get(id(p)) or old.get(id(p))
            if e is None or e[0] is not p:
                e = (p, self._next_page)
                self._next_page += 1
                fresh.append(e)
            new[id(p)] = e
            return e[1]
        payload = _encode_state(state, page_id)
        for i in range(0, len(fresh), 1024):
            part = fresh[i:i + 1024]
            self.chunk("P", struct.pack("<I", len(part)) + b"".join(
                struct.pack("<I", pid) + p for p, pid in part))
        self._page_ids = new
        off = self.chunk("K", payload)
        self.index.append([kf.icount, kf.tick, kf.inputs, kf.digest, kf.edit, off])

    def rows(self, kind: str, rows: list) -> None:
        """Inputs (I), checkpoints (C) or events (V)."""
        if rows:
            self.chunk(kind, rows)

    def close(self, end: dict) -> None:
        self.chunk("E", end)
        off = self.chunk("X", {"keyframes": self.index})
        self.f.write(TRAILER + struct.pack("<Q", off))
        self.f.close()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        """Drop the partial file (a recording that could not start)."""
        self.f.close()
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


class Recording:
    """A recording opened for reading (memory-mapped): header, inputs, checkpoints, events,
    the end record, and keyframes materialised on demand."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._f = open(path, "rb")
        except FileNotFoundError:
            raise RecordingError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise RecordingError(f"{path}: is a directory") from None
        except OSError as e:
            raise RecordingError(f"{path}: cannot read: {e.strerror}") from None
        size = os.fstat(self._f.fileno()).st_size
        if size < len(MAGIC) or self._f.read(len(MAGIC)) != MAGIC:
            self._f.close()
            raise RecordingError(f"{path}: not an Aero recording")
        self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
        if size < len(MAGIC) + 16 or self._mm[size - 16: size - 8] != TRAILER:
            self.close()
            raise RecordingError(f"{path}: truncated recording (it has no end: the recording "
                                 "was interrupted or the file cut short)")
        self.header = None
        self.inputs: list[list] = []
        self.checkpoints: list[list] = []
        self.events: list[list] = []
        self.end = None
        self.index = None
        self._pages: dict[int, int] = {}            # page id -> offset of its bytes
        pos = len(MAGIC)
        end = size - 16
        while pos < end:
            if pos + 5 > end:
                self._bad("truncated chunk")
            kind, n = _HDR.unpack_from(self._mm, pos)
            start = pos + 5
            if start + n + 4 > end:
                self._bad("truncated chunk")
            data = self._mm[start: start + n]
            (crc,) = struct.unpack_from("<I", self._mm, start + n)
            if zlib.crc32(data) != crc:
                self._bad(f"damaged chunk at offset {pos} (CRC mismatch)")
            self._chunk(chr(kind), data, start, pos)
            pos = start + n + 4
        if self.header is None or self.end is None or self.index is None:
            self._bad("incomplete recording")
        rows = self.index.get("keyframes") if isinstance(self.index, dict) else None
        if not rows or not all(isinstance(r, list) and len(r) == 6 for r in rows):
            self._bad("damaged index")
        for r in rows:
            off = r[5]
            if not (isinstance(off, int) and 0 < off < end - 5 and self._mm[off] == ord("K")):
                self._bad("damaged index")

    def _bad(self, what: str):
        self.close()
        raise RecordingError(f"{self.path}: {what}")

    def _chunk(self, kind: str, data: bytes, start: int, pos: int) -> None:
        if kind == "P":
            (count,) = struct.unpack_from("<I", data, 0) if len(data) >= 4 else (-1,)
            if len(data) != 4 + count * (4 + PAGE):
                self._bad(f"damaged page chunk at offset {pos}")
            for i in range(count):
                o = 4 + i * (4 + PAGE)
                (pid,) = struct.unpack_from("<I", data, o)
                self._pages[pid] = start + o + 4
            return
        if kind == "K":
            return
        try:
            obj = json.loads(data)
        except ValueError:
            self._bad(f"damaged {kind} chunk at offset {pos}")
        if kind == "H":
            if obj.get("format") != FORMAT:
                self._bad(f"recording format {obj.get('format')!r}; this Aero reads format "
                          f"{FORMAT}")
            self.header = obj
        elif kind == "I":
            self.inputs.extend(obj)
        elif kind == "C":
            self.checkpoints.extend(obj)
        elif kind == "V":
            self.events.extend(obj)
        elif kind == "E":
            self.end = obj
        elif kind == "X":
            self.index = obj

    # -- keyframes --------------------------------------------------------------------------------
    @property
    def keyframe_rows(self) -> list[list]:
        """[icount, tick, inputs, digest, edit, offset] of each keyframe, in order."""
        return self.index["keyframes"]

    def page(self, pid: int) -> bytes:
        if pid == 0:
            return ZERO_PAGE
        off = self._pages.get(pid)
        if off is None:
            raise RecordingError(f"{self.path}: page {pid} is missing")
        return self._mm[off: off + PAGE]

    def keyframe(self, i: int, cache: dict | None = None) -> dict:
        """Keyframe ``i`` as a ``Machine.get_state()`` value.  ``cache`` (page id -> bytes)
        lets successive keyframes share their page objects."""
        off = self.keyframe_rows[i][5]
        kind, n = _HDR.unpack_from(self._mm, off)
        data = self._mm[off + 5: off + 5 + n]
        (jn,) = struct.unpack_from("<I", data, 0)
        skel = json.loads(data[4: 4 + jn])
        area = 4 + jn
        blobs = [bytes(data[area + o: area + o + ln]) for o, ln in skel["blobs"]]
        cache = {} if cache is None else cache

        def page(pid):
            p = cache.get(pid)
            if p is None:
                p = cache[pid] = self.page(pid)
            return p
        state = statefile.decode(skel["state"], blobs)
        state["ram"] = tuple(page(pid) for pid in skel["ram"])
        state["vram"] = tuple(page(pid) for pid in skel["vram"])
        return state

    def close(self) -> None:
        try:
            self._mm.close()
        except (AttributeError, ValueError):
            pass
        self._f.close()


def save_timeline(tl, path: str, end: dict) -> int:
    """Write an in-memory timeline (``aero.trace.timeline.Timeline`` with its keyframe states)
    to a recording file; returns its size."""
    w = Writer(path, tl.header)
    try:
        for kf in tl.keyframes:
            w.keyframe(kf, kf.state)
        w.rows("I", tl.inputs)
        w.rows("C", tl.checkpoints)
        w.rows("V", tl.events)
        w.close(end)
    except BaseException:
        w.abandon()
        raise
    return os.path.getsize(path)
