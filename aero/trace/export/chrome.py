"""Chrome trace / Perfetto JSON (the Trace Event Format: chrome://tracing, ui.perfetto.dev).

What a trace shows as spans ("X" complete events, properly nested on one track, "CPU"):

* interrupt and exception handlers: from the handler's first instruction to the end of the IRET
  that leaves it (each IRET closes the innermost open handler), or to the first return to where
  it interrupted (the interrupted instruction, the faulting one for a fault, the one after
  INT n) if that comes first; a handler that never returns lasts to the end of the trace;
* BIOS calls are the handlers of software interrupts (``INT 10h AH=0Eh``); under the Aero BIOS
  each carries the service's own description (arguments and results).

Mode switches, CR3 loads and triple faults are instant events.  Time: one microsecond in the
viewer is one instruction (``ts`` is the instruction count), so a span's duration reads as the
number of instructions it took, and ``aero trace query TRACE range A B`` shows what ran there.
"""

from __future__ import annotations

import json

import numpy as np

from ...cpu.decoder import decode
from ...faults import NAMES as FAULT_NAMES
from ..tracefile import TraceFile

CALLS = frozenset(("CALL", "CALL_RM", "CALLF", "CALLF_M"))
RETS = frozenset(("RETN", "RETN_IMM", "RETF"))


def returns_to(tf: TraceFile, pcs, lo: int, hi: int) -> dict:
    """{pc: sorted array of the instruction counts at which the PC was at pc} for the given
    addresses, within [lo, hi)."""
    want = np.array(sorted(set(int(p) for p in pcs)), dtype=np.uint32)
    hits: dict[int, list] = {int(p): [] for p in want}
    if not len(want):
        return {}
    for t in tf.iter_chunks("instructions", ["icount", "pc"]):
        pc = t.column("pc").to_numpy()
        ic = t.column("icount").to_numpy()
        m = np.isin(pc, want) & (ic >= lo) & (ic < hi)
        if m.any():
            for p, i in zip(pc[m].tolist(), ic[m].tolist()):
                hits[p].append(i)
    return {p: np.array(v, dtype=np.int64) for p, v in hits.items()}


def span_name(e: dict) -> tuple[str, str]:
    """(name, category) for an interrupt event."""
    k, v = e["kind"], e["vector"]
    if k == "soft":
        cat = "bios" if 0x10 <= v <= 0x1F else "int"
        return f"INT {v:02X}h AH={(e['eax'] >> 8) & 0xFF:02X}h", cat
    if k == "fault":
        return FAULT_NAMES.get(v, f"exception {v:02X}h"), "exception"
    return f"interrupt {v:02X}h", "interrupt"


def classify(tf: TraceFile) -> tuple[set, set, set]:
    """(call, ret, iret) instruction addresses, from the bytes the trace ran."""
    code = tf.arrays("code")
    calls, rets, irets = set(), set(), set()
    for pc, c32, raw in zip(code.get("pc", ()), code.get("code32", ()), code.get("bytes", ())):
        raw = bytes(raw)
        try:
            ins = decode(lambda i, raw=raw: raw[i] if i < len(raw) else 0, int(pc), bool(c32))
        except Exception:       # noqa: BLE001 (bytes that do not decode: not a call or return)
            continue
        name = ins.entry.name
        if name in CALLS:
            calls.add(int(pc))
        elif name in RETS:
            rets.add(int(pc))
        elif name == "IRET":
            irets.add(int(pc))
    return calls, rets, irets


def interrupt_spans(tf: TraceFile, lo: int, hi: int) -> list[dict]:
    """Handler spans (start, end, name, category, event), nested.  A handler ends after the
    IRET that leaves it (each IRET closes the innermost open handler), or when the PC reaches
    the address it interrupted, whichever comes first; the one that never ends lasts to ``hi``."""
    evs = [e for e in tf.read("events", None, lo, hi).to_pylist()
           if e["kind"] in ("hw", "fault", "soft") and e["return_pc"] is not None]
    bios = [e for e in tf.read("events", None, lo, hi + 1).to_pylist() if e["kind"] == "bios"]
    rets = returns_to(tf, [e["return_pc"] for e in evs], lo, hi)
    _, _, iret_pcs = classify(tf)
    irets = returns_to(tf, iret_pcs, lo, hi) if iret_pcs else {}
    iret_ends = sorted(int(i) + 1 for arr in irets.values() for i in arr.tolist())
    spans = []
    timeline = []
    for e in evs:
        start = e["icount"]
        arr = rets.get(e["return_pc"])
        end1 = hi
        if arr is not None and len(arr):
            i = np.searchsorted(arr, start, side="left")
            if i < len(arr):
                end1 = int(arr[i])
        name, cat = span_name(e)
        s = {"start": start, "end": hi, "name": name, "cat": cat, "event": e, "open": False}
        spans.append(s)
        timeline.append((start, 2, len(spans) - 1))
        timeline.append((end1, 1, len(spans) - 1))
    timeline.extend((t, 0, -1) for t in iret_ends)
    timeline.sort()
    stack: list[dict] = []
    for t, kind, i in timeline:
        if kind == 0:                                   # an IRET: the innermost handler ends
            if stack:
                s = stack.pop()
                s["end"], s["open"] = t, False
        elif kind == 1:                                 # back where it interrupted
            s = spans[i]
            if s["open"]:
                while stack:
                    top = stack.pop()
                    top["end"], top["open"] = t, False
                    if top is s:
                        break
        else:
            s = spans[i]
            s["open"] = True
            stack.append(s)
    for s in spans:
        s.pop("open", None)
        s["end"] = max(s["end"], s["start"])
    spans.sort(key=lambda s: (s["start"], -s["end"]))
    # BIOS service descriptions (Aero BIOS): the innermost soft-interrupt span holding them
    for b in bios:
        best = None
        for s in spans:
            if s["event"]["kind"] == "soft" and s["event"]["vector"] == b["vector"] and \
                    s["start"] <= b["icount"] <= s["end"]:
                if best is None or s["start"] >= best["start"]:
                    best = s
        if best is not None:
            best["bios"] = b["text"]
    return spans


def chrome_events(tf: TraceFile, symbols=None, start: int | None = None,
                  stop: int | None = None) -> list[dict]:
    lo = tf.first if start is None else max(start, tf.first)
    hi = tf.end if stop is None else min(stop, tf.end)
    mach = tf.header.get("machine", {})
    label = next((str(mach[k]) for k in ("kernel", "cdrom", "hda", "fda", "bios") if mach.get(k)),
                 "machine")
    out = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 1,
            "args": {"name": f"aero {label}"}},
           {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "CPU"}}]
    for s in interrupt_spans(tf, lo, hi):
        e = s["event"]
        args = {"icount": s["start"], "instructions": s["end"] - s["start"],
                "from": f"{e['cs']:04x}:{e['eip']:08x}", "return_pc": f"{e['return_pc']:#x}"}
        if e.get("error_code") is not None:
            args["error_code"] = f"{e['error_code']:#x}"
        if e.get("cr2") is not None:
            args["cr2"] = f"{e['cr2']:#x}"
        if s.get("bios"):
            args["bios"] = s["bios"]
        if symbols is not None:
            n = symbols.describe(e["return_pc"])
            if n:
                args["return_to"] = n
        out.append({"name": s["name"], "cat": s["cat"], "ph": "X", "ts": s["start"],
                    "dur": s["end"] - s["start"], "pid": 1, "tid": 1, "args": args})
    for e in tf.read("events", None, lo, hi + 1).to_pylist():
        if e["kind"] in ("mode", "cr3", "shutdown"):
            out.append({"name": e["text"] or e["kind"], "cat": e["kind"], "ph": "i", "s": "t",
                        "ts": e["icount"], "pid": 1, "tid": 1, "args": {"icount": e["icount"]}})
    return out


def write_chrome(tf: TraceFile, path: str, symbols=None, start: int | None = None,
                 stop: int | None = None) -> int:
    """Write the Chrome trace JSON; the number of trace events."""
    events = chrome_events(tf, symbols, start, stop)
    doc = {"traceEvents": events,
           "otherData": {"producer": tf.header.get("producer"), "time": "1 us = 1 instruction",
                         "first": tf.first, "end": tf.end}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    return len(events)
