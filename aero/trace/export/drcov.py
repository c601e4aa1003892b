"""drcov coverage files (DynamoRIO's drcov format, read by Lighthouse for IDA Pro, Binary Ninja
and Ghidra plugins).

Layout (version 2, the one Lighthouse's parser reads)::

    DRCOV VERSION: 2
    DRCOV FLAVOR: drcov
    Module Table: version 2, count N
    Columns: id, base, end, entry, checksum, timestamp, path
      0, 0x0000000000007c00, 0x0000000000007e00, 0x0000000000007c00, 0x00000000, 0x00000000, boot
    BB Table: M bbs
    <M binary records, little-endian: uint32 start (offset from the module's base),
     uint16 size (bytes), uint16 module id>

The basic blocks are the distinct straight-line runs the trace executed (a run ends where the
next instruction is not the one after it in memory: a taken jump, a call, an interrupt), each
split where it leaves a module and at 65,535 bytes.  Modules are given as ``NAME@BASE[-END]``
(``boot.bin@0x7c00-0x7e00``: Lighthouse matches NAME to the database's file name, and offsets are
from BASE); without any, one module named ``memory`` covers the whole 4 GiB address space.
"""

from __future__ import annotations

import struct

import numpy as np

from ..tracefile import TraceFile

MAX_BB = 0xFFFF


def parse_module(spec: str) -> tuple[str, int, int]:
    """NAME@BASE[-END] -> (name, base, end); ValueError with a readable message."""
    name, at, rng = spec.rpartition("@")
    if not at or not name:
        raise ValueError(f"--module {spec}: expected NAME@BASE[-END]")
    lo, _, hi = rng.partition("-")
    try:
        base = int(lo, 0)
        end = int(hi, 0) if hi else 1 << 32
    except ValueError:
        raise ValueError(f"--module {spec}: BASE and END must be numbers") from None
    if not 0 <= base < end <= 1 << 32:
        raise ValueError(f"--module {spec}: the range is empty or beyond 4 GiB")
    return name, base, end


def basic_blocks(tf: TraceFile, start: int | None = None, stop: int | None = None):
    """The distinct executed runs: sorted array of (start address, size in bytes)."""
    seen: set = set()
    state = None            # the run open at the end of the previous chunk: start, pc, len, cs
    lo = tf.first if start is None else max(start, tf.first)
    hi = tf.end if stop is None else min(stop, tf.end)
    for c in tf.header["tables"]["instructions"]["chunks"]:
        if not c["rows"] or c["icount_max"] < lo or c["icount_min"] >= hi:
            continue
        t = tf.arrays("instructions", ["pc", "length", "cs"], max(lo, c["icount_min"]),
                      min(hi, c["icount_max"] + 1))
        pc = t["pc"].astype(np.int64)
        ln = t["length"].astype(np.int64)
        cs = t["cs"].astype(np.int64)
        if not len(pc):
            continue
        brk = np.ones(len(pc), dtype=bool)
        brk[1:] = (pc[1:] != pc[:-1] + ln[:-1]) | (cs[1:] != cs[:-1]) | (ln[:-1] == 0)
        if state is not None:
            s0, p0, l0, c0 = state
            brk[0] = not (pc[0] == p0 + l0 and cs[0] == c0 and l0)
            if brk[0]:
                seen.add((s0, p0 + l0 - s0))
        starts = np.nonzero(brk)[0]
        seg = starts if brk[0] else np.concatenate(([0], starts))
        begin = pc[seg]
        if not brk[0]:
            begin[0] = state[0]
        last = np.append(seg[1:], len(pc)) - 1
        end = pc[last] + ln[last]
        seen.update(zip(begin[:-1].tolist(), (end[:-1] - begin[:-1]).tolist()))
        state = (int(begin[-1]), int(pc[-1]), int(ln[-1]), int(cs[-1]))
    if state is not None:
        seen.add((state[0], state[1] + state[2] - state[0]))
    return np.array(sorted((s, n) for s, n in seen if n > 0), dtype=np.int64).reshape(-1, 2)


def write_drcov(tf: TraceFile, path: str, modules=None, start: int | None = None,
                stop: int | None = None) -> int:
    """Write the trace's coverage as a drcov file; the number of basic-block records."""
    mods = modules or [("memory", 0, 1 << 32)]
    bbs = basic_blocks(tf, start, stop)
    records = []
    for mid, (name, base, end) in enumerate(mods):
        for s, n in bbs.tolist():
            a, b = max(s, base), min(s + n, end)
            while a < b:
                size = min(b - a, MAX_BB)
                records.append(struct.pack("<IHH", a - base, size, mid))
                a += size
    head = ["DRCOV VERSION: 2", "DRCOV FLAVOR: drcov",
            f"Module Table: version 2, count {len(mods)}",
            "Columns: id, base, end, entry, checksum, timestamp, path"]
    for mid, (name, base, end) in enumerate(mods):
        head.append(f"{mid:3}, {base:#018x}, {end:#018x}, {base:#018x}, {0:#010x}, {0:#010x}, "
                    f"{name}")
    head.append(f"BB Table: {len(records)} bbs")
    with open(path, "wb") as f:
        f.write(("\n".join(head) + "\n").encode("utf-8"))
        f.write(b"".join(records))
    return len(records)
