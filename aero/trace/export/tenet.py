"""Tenet text traces (the trace explorer for IDA Pro and Binary Ninja).

The format (Tenet's tracers/README.md): one line per executed instruction, comma-separated
entries:

* ``REG=0xVALUE`` for each register that changed since the previous line (all of them on the
  first line): ``eax ebx ecx edx ebp esp esi edi``, then ``eip`` on every line, last;
* ``mr=0xADDR:HEXBYTES``, ``mw=0xADDR:HEXBYTES`` for each memory read and write, the bytes in
  memory order.

As in Tenet's reference tracers, a line holds the state *before* its instruction (``eip`` is the
instruction's address) and the memory accessed since the previous line: by the previous
instruction, and by an interrupt delivered in between.  ``eip`` is the linear address (CS base +
EIP), which is where a disassembler database of a real-mode image has the code.  Without
``--registers`` in the trace, lines carry only ``eip`` and memory.  The accesses of the last
instruction have no following line and are left out (as in the reference tracers).
"""

from __future__ import annotations

import numpy as np

from ..tracefile import TraceFile

TENET_REGS = ("eax", "ebx", "ecx", "edx", "ebp", "esp", "esi", "edi")


def _mem_entries(mic, maddr, msize, mval, mwrite, msys, i0, i1) -> list[str]:
    out = []
    for j in range(i0, i1):
        n = int(msize[j])
        data = int(mval[j]).to_bytes(4, "little")[:n].hex()
        out.append(f"{'mw' if mwrite[j] else 'mr'}={int(maddr[j]):#x}:{data}")
    return out


def write_tenet(tf: TraceFile, path: str, start: int | None = None,
                stop: int | None = None) -> int:
    """Write the instructions with ``start <= icount < stop`` as a Tenet trace; the number of
    lines."""
    lo = tf.first if start is None else max(start, tf.first)
    hi = tf.end if stop is None else min(stop, tf.end)
    regs = TENET_REGS if tf.has_registers else ()
    mem = tf.has_memory
    lines = 0
    prev = None
    with open(path, "w", encoding="ascii", newline="\n") as out:
        for c in tf.header["tables"]["instructions"]["chunks"]:
            if not c["rows"] or c["icount_max"] < lo or c["icount_min"] >= hi:
                continue
            a, b = max(lo, c["icount_min"]), min(hi, c["icount_max"] + 1)
            t = tf.arrays("instructions", ["icount", "pc", *regs], a, b)
            n = len(t["icount"])
            if not n:
                continue
            if mem:
                # line k carries what happened after the previous line: instruction k-1's own
                # accesses, and interrupt delivery before instruction k
                mt = tf.arrays("memory", None, max(lo, a - 1), b + 1)
                mic = mt["icount"].astype(np.int64)
                line_of = mic + np.where(mt["system"], 0, 1)
                keep = (line_of > lo) & (line_of >= a) & (line_of < b)
                mic = line_of[keep]
                cols = [mt[k][keep] for k in ("address", "size", "value", "write", "system")]
                bounds = np.searchsorted(mic, t["icount"].astype(np.int64), side="left")
                ends = np.searchsorted(mic, t["icount"].astype(np.int64), side="right")
            regcols = [t[r] for r in regs]
            pcs = t["pc"]
            buf = []
            for k in range(n):
                parts = []
                if regs:
                    cur = tuple(int(col[k]) for col in regcols)
                    for name, v, old in zip(regs, cur, prev or (None,) * len(regs)):
                        if v != old:
                            parts.append(f"{name}={v:#x}")
                    prev = cur
                parts.append(f"eip={int(pcs[k]):#x}")
                if mem and ends[k] > bounds[k]:
                    parts.extend(_mem_entries(mic, *cols, bounds[k], ends[k]))
                buf.append(",".join(parts))
            out.write("\n".join(buf))
            out.write("\n")
            lines += n
    return lines
