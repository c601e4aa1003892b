"""Saved machine states as files: QEMU's savevm/loadvm, as one self-describing file.

Layout::

    AEROSTATE\\n                       magic (10 bytes)
    <u32 little-endian n>             length of the header
    <n bytes of JSON>                 the header: format, producer, time, the machine's identity
                                      and configuration, and the state itself with every byte
                                      string replaced by a reference into the body
    <body>                            the byte strings, one after another
    <32 bytes>                        SHA-256 of everything before it

The header is readable on its own (``head -c 4000 FILE``).  Memory (RAM, VRAM) is stored as its
non-zero pages.  A file with another magic, another format version, a wrong checksum, or cut short
is refused with one line (``StateFileError``), as is a state of a machine configured differently
(``check_identity``).  Files are written to a temporary name and renamed, so an existing file is
never left half written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct

from . import __version__
from .config import ConfigError
from .mem.pages import PAGE, ZERO_PAGE

MAGIC = b"AEROSTATE\n"
FORMAT = 1


class StateFileError(ConfigError):
    """A state file that cannot be used: one line, fit for `aero: ...` and exit status 2."""


# ---------------------------------------------------------------------------------------------
# Plain data <-> JSON with references to byte strings
# ---------------------------------------------------------------------------------------------
def check_plain(obj, where: str = "state") -> None:
    """Raise TypeError unless ``obj`` is plain data: dicts, lists, tuples, str, int, float,
    bool, None and bytes (what a state may hold)."""
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            check_plain(v, f"{where}.{k}")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not plain data")


def _is_pages(t) -> bool:
    return isinstance(t, tuple) and len(t) > 0 and all(
        type(p) is bytes and len(p) == PAGE for p in t)


def encode(obj, blobs: list):
    if isinstance(obj, (bytes, bytearray)):
        blobs.append(bytes(obj))
        return {"$b": len(blobs) - 1}
    if _is_pages(obj):
        nonzero = []
        for i, p in enumerate(obj):
            if p is not ZERO_PAGE and p != ZERO_PAGE:
                blobs.append(p)
                nonzero.append([i, len(blobs) - 1])
        return {"$pages": len(obj), "nonzero": nonzero}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: encode(v, blobs) for k, v in obj.items()}
        return {"$dict": [[encode(k, blobs), encode(v, blobs)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [encode(v, blobs) for v in obj]
    return obj


def decode(obj, blobs: list):
    if isinstance(obj, dict):
        if "$b" in obj:
            return blobs[obj["$b"]]
        if "$pages" in obj:
            pages = [ZERO_PAGE] * obj["$pages"]
            for i, b in obj["nonzero"]:
                pages[i] = blobs[b]
            return tuple(pages)
        if "$dict" in obj:
            return {decode(k, blobs): decode(v, blobs) for k, v in obj["$dict"]}
        return {k: decode(v, blobs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v, blobs) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------
# Machine identity: what a state must match to be loaded
# ---------------------------------------------------------------------------------------------
def machine_identity(m) -> dict:
    """The machine's hardware, firmware and disks: a state only fits a machine with the same."""
    def digest(data):
        return hashlib.sha256(data).hexdigest() if data else None
    cfg = m.config
    return {
        "memory_mib": cfg.memory,
        "ips": cfg.ips,
        "firmware": cfg.firmware_name,
        "bios_sha256": digest(m.bios_image),
        "vga_rom_sha256": digest(m.vga.rom),
        "devices": [k for k, _ in m._keyed_devices()],
        "images": [{"kind": img.kind, "size": img.size, "sha256": img.base_hash()}
                   for img in m.images],
    }


def check_identity(saved: dict, m) -> None:
    """A StateFileError naming the first difference between the saved machine and ``m``."""
    mine = machine_identity(m)
    names = {"memory_mib": "memory (MiB)", "ips": "instructions per second",
             "firmware": "firmware", "bios_sha256": "firmware image",
             "vga_rom_sha256": "VGA BIOS image", "devices": "devices", "images": "disk images"}
    for key, label in names.items():
        if saved.get(key) != mine.get(key):
            if key == "images":
                for i, (a, b) in enumerate(zip(saved.get(key, []), mine[key])):
                    if a != b:
                        what = "size" if a.get("size") != b.get("size") else "contents"
                        raise StateFileError(f"the state is of a machine whose disk image "
                                             f"{i + 1} ({a.get('kind')}) differs in {what}")
                raise StateFileError(f"the state is of a machine with "
                                     f"{len(saved.get(key, []))} disk images, this one has "
                                     f"{len(mine[key])}")
            if key in ("memory_mib", "ips", "firmware"):
                raise StateFileError(f"the state is of a machine with {label} "
                                     f"{saved.get(key)}, this one has {mine.get(key)}")
            raise StateFileError(f"the state is of a machine with a different {label}")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def save(path: str, m, state: dict | None = None, settings: dict | None = None) -> int:
    """Write machine ``m``'s state (``state``, default: taken now) to ``path``; returns the
    file's size.  ``settings``: the configuration to record (what `aero run --load-state`
    rebuilds the machine from when given no options)."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise StateFileError(f"{path} is not a regular file (saving would replace it)")
    if state is None:
        state = m.get_state()
    blobs: list[bytes] = []
    skeleton = encode(state, blobs)
    offsets, pos = [], 0
    for b in blobs:
        offsets.append([pos, len(b)])
        pos += len(b)
    header = {
        "format": FORMAT,
        "producer": f"aero {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "icount": state["cpu"]["icount"],
        "machine": machine_identity(m),
        "config": settings if settings is not None else m.config.settings(),
        "blobs": offsets,
        "state": skeleton,
    }
    hdr = json.dumps(header, separators=(",", ":")).encode()
    h = hashlib.sha256()
    d, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(d, f".{base}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in (MAGIC, struct.pack("<I", len(hdr)), hdr, *blobs):
                f.write(chunk)
                h.update(chunk)
            f.write(h.digest())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return os.path.getsize(path)


def load(path: str) -> tuple[dict, dict]:
    """(header without the state, machine state) from a state file; StateFileError with one
    line if the file is not a usable state."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise StateFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StateFileError(f"{path}: is a directory") from None
    except OSError as e:
        raise StateFileError(f"{path}: cannot read: {e.strerror}") from None
    if not data.startswith(MAGIC):
        raise StateFileError(f"{path}: not an Aero state file")
    if len(data) < len(MAGIC) + 4 + 32:
        raise StateFileError(f"{path}: truncated state file")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise StateFileError(f"{path}: truncated or corrupt state file (checksum mismatch)")
    (n,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start: start + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StateFileError(f"{path}: corrupt state file header") from None
    if header.get("format") != FORMAT:
        raise StateFileError(f"{path}: state file format {header.get('format')!r}; this Aero "
                             f"reads format {FORMAT}")
    body = start + n
    blobs = [data[body + off: body + off + ln] for off, ln in header["blobs"]]
    state = decode(header.pop("state"), blobs)
    return header, state
