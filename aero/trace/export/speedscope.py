"""speedscope profiles (https://www.speedscope.app; its file format is specified in speedscope's
``src/lib/file-format-spec.ts``).

The trace becomes one *evented* profile whose values are instruction counts (unit ``none``):
a frame opens when a CALL's target starts (the instruction after the CALL) or a handler starts
(an interrupt or exception event), and closes after the RET or IRET that leaves it.  A RET closes
the innermost call frame (and any handler frames above it that never returned); an IRET the
innermost handler frame.  Frames are named by symbol (``--symbols``) or by address, handlers as
in the Chrome export (``INT 10h AH=0Eh``, ``#PF``, ``interrupt 08h``).  The whole trace is a root
frame, so the flame graph shows where the instructions went, inclusive of callees.
"""

from __future__ import annotations

import json

import numpy as np

from ..tracefile import TraceFile
from .chrome import classify, span_name

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
MAX_DEPTH = 512


def profile_events(tf: TraceFile, symbols=None, start: int | None = None,
                   stop: int | None = None):
    """(frames, events, start value, end value) of the evented profile."""
    lo = tf.first if start is None else max(start, tf.first)
    hi = tf.end if stop is None else min(stop, tf.end)
    calls, rets, irets = classify(tf)
    special = np.array(sorted(calls | rets | irets), dtype=np.uint32)
    frames: list[dict] = []
    index: dict = {}

    def frame(name: str) -> int:
        i = index.get(name)
        if i is None:
            i = index[name] = len(frames)
            frames.append({"name": name})
        return i

    def code_name(pc: int) -> str:
        if symbols is not None:
            n = symbols.describe(pc)
            if n:
                return n
        return f"{pc:#010x}"

    # interrupt and exception deliveries, by the count of the handler's first instruction
    handlers: dict[int, list] = {}
    for e in tf.read("events", None, lo, hi).to_pylist():
        if e["kind"] in ("hw", "fault", "soft"):
            handlers.setdefault(e["icount"], []).append(e)

    events: list[dict] = []
    stack: list[tuple[int, str]] = []           # (frame, "call" | "int" | "root")

    def open_(at, f, kind):
        if len(stack) >= MAX_DEPTH:
            return
        stack.append((f, kind))
        events.append({"type": "O", "at": at, "frame": f})

    def close_until(at, kind):
        if not any(k == kind for _, k in stack):
            return
        while stack:
            f, k = stack.pop()
            events.append({"type": "C", "at": at, "frame": f})
            if k == kind:
                return

    root = frame(f"{tf.path.rstrip('/').split('/')[-1]} (all)")
    open_(lo, root, "root")
    pending_call = None                         # a CALL at the last row of a chunk
    hcounts = sorted(handlers)
    hpos = 0

    def deliver_until(ic):
        """Open handler frames for deliveries before instruction ``ic`` (inclusive)."""
        nonlocal hpos
        while hpos < len(hcounts) and hcounts[hpos] <= ic:
            at = hcounts[hpos]
            for e in handlers[at]:
                open_(at, frame(span_name(e)[0]), "int")
            hpos += 1

    for c in tf.header["tables"]["instructions"]["chunks"]:
        if not c["rows"] or c["icount_max"] < lo or c["icount_min"] >= hi:
            continue
        t = tf.arrays("instructions", ["icount", "pc"], max(lo, c["icount_min"]),
                      min(hi, c["icount_max"] + 1))
        ic, pc = t["icount"].astype(np.int64), t["pc"].astype(np.int64)
        if not len(ic):
            continue
        if pending_call is not None:
            cic, cpc = pending_call
            pending_call = None
            if ic[0] == cic + 1:
                _after_call(cic, cpc, int(pc[0]), handlers, open_, frame, code_name)
        idx = np.nonzero(np.isin(pc.astype(np.uint32), special))[0]
        for i in idx.tolist():
            at, p = int(ic[i]), int(pc[i])
            deliver_until(at)
            if p in calls:
                if i + 1 < len(pc):
                    _after_call(at, p, int(pc[i + 1]), handlers, open_, frame, code_name)
                else:
                    pending_call = (at, p)
            elif p in rets:
                if at + 1 not in handlers or not _faulted(handlers[at + 1], p):
                    close_until(at + 1, "call")
            else:
                if at + 1 not in handlers or not _faulted(handlers[at + 1], p):
                    close_until(at + 1, "int")
    deliver_until(hi - 1)
    while stack:
        f, _ = stack.pop()
        events.append({"type": "C", "at": hi, "frame": f})
    return frames, events, lo, hi


def _faulted(evs, pc) -> bool:
    """The instruction at ``pc`` faulted (the delivery after it returns to it)."""
    return any(e["kind"] == "fault" and e["return_pc"] == pc for e in evs)


def _after_call(cic, call_pc, next_pc, handlers, open_, frame, code_name) -> None:
    """A CALL at count ``cic``: its target's frame opens at cic + 1, unless the CALL faulted; an
    interrupt taken right after it returns to the target."""
    evs = handlers.get(cic + 1, ())
    target = next_pc
    for e in evs:
        if _faulted((e,), call_pc):
            return
        if e["kind"] in ("hw", "fault"):
            target = e["return_pc"]
    open_(cic + 1, frame(code_name(target)), "call")


def write_speedscope(tf: TraceFile, path: str, symbols=None, start: int | None = None,
                     stop: int | None = None) -> int:
    """Write the speedscope JSON file; the number of frame events."""
    frames, events, lo, hi = profile_events(tf, symbols, start, stop)
    doc = {"$schema": SCHEMA, "version": "0.0.1", "name": tf.path,
           "exporter": tf.header.get("producer", "aero"), "activeProfileIndex": 0,
           "shared": {"frames": frames},
           "profiles": [{"type": "evented", "name": "instructions", "unit": "none",
                         "startValue": lo, "endValue": hi, "events": events}]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    return len(events)
