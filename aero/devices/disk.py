"""Disk image access shared by the drives (floppy, ATA hard disk, ATAPI CD-ROM).

A ``DiskImage`` is a raw image of fixed-size sectors addressed by LBA.  The user's file is the
read-only *base*; guest writes land in a copy-on-write *overlay* held in memory (one entry per
written sector), so the user's file is never changed behind their back (design brief,
"Conventions").  Only a machine configured writable (``writable=True``, ``aero run
--writable``) writes through to the file instead.  The overlay is part of ``get_state()``, so
snapshots and the state hash see what the guest wrote.

Sizes are checked when an image is opened and every problem is a ``ValueError`` whose message
is one readable line naming the file (missing file, not a regular file, unreadable, empty,
not a whole number of sectors, not one of the floppy formats), fit for the CLI's "one clear
line, exit status 2" rule.

Floppy formats (IBM PC diskette formats; size -> cylinders, heads, sectors per track and the
82077AA data rate the controller must be programmed with to read them): 160/180/320/360 KB
(40 tracks, 250 kbps in a double-density drive, 300 kbps in a 1.2 MB drive), 720 KB (80/2/9,
250 kbps), 1.2 MB (80/2/15, 500 kbps), 1.44 MB (80/2/18, 500 kbps), 2.88 MB (80/2/36, 1 Mbps).
"""

from __future__ import annotations

import hashlib
import os

from .base import Device

# 82077AA data rate select codes (DSR/CCR bits 1-0)
RATE_500K, RATE_300K, RATE_250K, RATE_1M = 0, 1, 2, 3

# size -> (name, cylinders, heads, sectors per track, accepted data-rate codes, CMOS drive type)
FLOPPY_FORMATS = {
    163840: ("160K", 40, 1, 8, (RATE_250K, RATE_300K), 1),
    184320: ("180K", 40, 1, 9, (RATE_250K, RATE_300K), 1),
    327680: ("320K", 40, 2, 8, (RATE_250K, RATE_300K), 1),
    368640: ("360K", 40, 2, 9, (RATE_250K, RATE_300K), 1),
    737280: ("720K", 80, 2, 9, (RATE_250K,), 3),
    1228800: ("1.2M", 80, 2, 15, (RATE_500K,), 2),
    1474560: ("1.44M", 80, 2, 18, (RATE_500K,), 4),
    2949120: ("2.88M", 80, 2, 36, (RATE_1M,), 5),
}


class FloppyGeometry:
    """The physical layout of a diskette format."""

    __slots__ = ("name", "cylinders", "heads", "sectors", "rates", "cmos_type")

    def __init__(self, name, cylinders, heads, sectors, rates, cmos_type):
        self.name = name
        self.cylinders = cylinders
        self.heads = heads
        self.sectors = sectors
        self.rates = rates
        self.cmos_type = cmos_type

    def lba(self, c: int, h: int, s: int) -> int:
        return (c * self.heads + h) * self.sectors + (s - 1)

    def __repr__(self):
        return (f"FloppyGeometry({self.name}: {self.cylinders}/{self.heads}/{self.sectors})")


def floppy_geometry(size: int, label: str = "floppy image") -> FloppyGeometry:
    """The diskette format of an image of ``size`` bytes, or a one-line ValueError."""
    fmt = FLOPPY_FORMATS.get(size)
    if fmt is None:
        known = ", ".join(f"{v[0]} ({k})" for k, v in sorted(FLOPPY_FORMATS.items()))
        raise ValueError(f"{label}: size {size} bytes is not a floppy format "
                         f"(expected one of {known})")
    return FloppyGeometry(*fmt)


class DiskImage(Device):
    """A raw sector image: read-only base file + in-memory copy-on-write overlay (or
    write-through when ``writable``)."""

    name = "disk"
    STATE_VERSION = 2

    def __init__(self, path: str | None = None, sector_size: int = 512, writable: bool = False,
                 data: bytes | None = None, kind: str = "disk", label: str | None = None):
        """Open ``path`` (or use the bytes ``data`` as an in-memory base, for built-in images
        and tests).  ``kind`` is "disk", "cdrom" or "floppy" (floppy sizes are checked against
        the known formats).  Raises ValueError with one readable line on bad input."""
        self.sector_size = sector_size
        self.kind = kind
        self.path = path
        self.label = label or (path if path is not None else f"<memory {kind} image>")
        self.writable = bool(writable)
        self._file = None
        self._data = None
        if data is not None:
            self._data = bytearray(data) if writable else bytes(data)
            size = len(data)
        else:
            if path is None:
                raise ValueError(f"{kind} image: no file given")
            size = self._open(path)
        if size == 0:
            self.close()
            raise ValueError(f"{self.label}: the image is empty")
        if size % sector_size:
            self.close()
            raise ValueError(f"{self.label}: size {size} bytes is not a whole number of "
                             f"{sector_size}-byte sectors")
        self.geometry = None
        if kind == "floppy":
            try:
                self.geometry = floppy_geometry(size, self.label)
            except ValueError:
                self.close()
                raise
        self.size = size
        self.sectors = size // sector_size
        self.overlay: dict[int, bytes] = {}
        self._base_hash = None
        self.reads = 0                  # sectors read / written by the guest (statistics)
        self.writes = 0

    @classmethod
    def floppy(cls, path: str, writable: bool = False) -> "DiskImage":
        """A diskette image (its size must be one of FLOPPY_FORMATS)."""
        return cls(path, 512, writable, kind="floppy")

    @classmethod
    def hard_disk(cls, path: str, writable: bool = False) -> "DiskImage":
        """A raw hard-disk image of 512-byte sectors."""
        return cls(path, 512, writable, kind="disk")

    @classmethod
    def cdrom(cls, path: str) -> "DiskImage":
        """An ISO 9660 image of 2048-byte sectors (never written)."""
        return cls(path, 2048, False, kind="cdrom")

    def _open(self, path: str) -> int:
        if not os.path.exists(path):
            raise ValueError(f"{path}: no such file")
        if os.path.isdir(path) or not os.path.isfile(path):
            raise ValueError(f"{path}: not a regular file")
        try:
            self._file = open(path, "r+b" if self.writable else "rb")
        except PermissionError:
            if self.writable:
                raise ValueError(f"{path}: cannot open for writing (permission denied)") \
                    from None
            raise ValueError(f"{path}: cannot read the file (permission denied)") from None
        except OSError as e:
            raise ValueError(f"{path}: cannot open the file ({e.strerror or e})") from None
        try:
            self._file.seek(0, os.SEEK_END)
            size = self._file.tell()
            self._file.seek(0)
            if size:
                self._file.read(1)      # unreadable media / special files fail here
        except OSError as e:
            self.close()
            raise ValueError(f"{path}: cannot read the file ({e.strerror or e})") from None
        return size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- sector access -------------------------------------------------------------------------
    def _base_read(self, lba: int, count: int) -> bytes:
        ss = self.sector_size
        if self._data is not None:
            return bytes(self._data[lba * ss:(lba + count) * ss])
        self._file.seek(lba * ss)
        data = self._file.read(count * ss)
        if len(data) < count * ss:      # the file shrank under us: read as zeros
            data += bytes(count * ss - len(data))
        return data

    def check_range(self, lba: int, count: int) -> bool:
        return 0 <= lba and count >= 0 and lba + count <= self.sectors

    def read(self, lba: int, count: int = 1) -> bytes:
        """``count`` sectors from ``lba``; IndexError if out of range (drives check first)."""
        if not self.check_range(lba, count):
            raise IndexError(f"{self.label}: sectors {lba}+{count} out of range "
                             f"({self.sectors} sectors)")
        self.reads += count
        if not self.overlay:
            return self._base_read(lba, count)
        ss = self.sector_size
        out = bytearray(self._base_read(lba, count))
        ov = self.overlay
        for i in range(count):
            s = ov.get(lba + i)
            if s is not None:
                out[i * ss:(i + 1) * ss] = s
        return bytes(out)

    def write(self, lba: int, data: bytes) -> None:
        """Write whole sectors at ``lba`` (to the overlay, or through to the file)."""
        ss = self.sector_size
        if len(data) % ss:
            raise ValueError(f"{self.label}: write of {len(data)} bytes is not whole sectors")
        count = len(data) // ss
        if not self.check_range(lba, count):
            raise IndexError(f"{self.label}: sectors {lba}+{count} out of range "
                             f"({self.sectors} sectors)")
        self.writes += count
        if self.writable:
            if self._data is not None:
                self._data[lba * ss:(lba + count) * ss] = data
            else:
                self._file.seek(lba * ss)
                self._file.write(data)
                self._file.flush()
            return
        for i in range(count):
            self.overlay[lba + i] = bytes(data[i * ss:(i + 1) * ss])

    def flush(self) -> None:
        if self._file is not None and self.writable:
            self._file.flush()

    @property
    def dirty(self) -> int:
        """Sectors held in the overlay (written by the guest, not in the user's file)."""
        return len(self.overlay)

    # -- Device API ----------------------------------------------------------------------------
    def summary(self) -> dict:
        mode = ("read-only" if self.kind == "cdrom" else
                "write-through" if self.writable else "copy-on-write overlay")
        out = {"image": self.label,
               "size": f"{self.size} bytes, {self.sectors} x {self.sector_size}",
               "mode": mode, "dirty sectors": self.dirty,
               "read": self.reads, "written": self.writes}
        if self.geometry is not None:
            g = self.geometry
            out["format"] = f"{g.name} {g.cylinders}/{g.heads}/{g.sectors}"
        return out

    def get_state(self) -> dict:
        """The overlay travels as raw sectors; the dict is a copy, the sectors (immutable
        bytes) are shared with the image, so a snapshot costs one entry per written sector."""
        return {"version": self.STATE_VERSION, "label": self.label, "size": self.size,
                "sector_size": self.sector_size, "writable": self.writable,
                "overlay": dict(sorted(self.overlay.items())),
                "reads": self.reads, "writes": self.writes}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        if st["size"] != self.size or st["sector_size"] != self.sector_size:
            raise ValueError(f"{self.label}: snapshot is of a {st['size']}-byte image "
                             f"({st['label']}), this one has {self.size} bytes")
        self.overlay = {int(k): bytes(v) for k, v in st["overlay"].items()}
        self.reads = st["reads"]
        self.writes = st["writes"]

    def base_hash(self) -> str:
        """SHA-256 of the image file (the base, without the overlay): what a saved state
        records to recognise the image.  Computed once (the base never changes under Aero unless
        the machine is writable, and then it is read again)."""
        if self._base_hash is None or self.writable:
            h = hashlib.sha256()
            step = max(1, (1 << 20) // self.sector_size)
            for lba in range(0, self.sectors, step):
                h.update(self._base_read(lba, min(step, self.sectors - lba)))
            self._base_hash = h.hexdigest()
        return self._base_hash
