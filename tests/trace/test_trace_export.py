"""`aero trace export`: each file read back as its format's documentation describes it.

* Tenet: the text format of Tenet's tracers/README.md (comma-separated REG=0xVALUE deltas, eip
  last of the registers, mr=/mw=ADDR:HEXBYTES); replaying the deltas gives the trace's registers
  before every instruction, and each line's memory entries are the previous instruction's
  accesses;
* drcov: the version-2 layout Lighthouse's parser reads (header lines, module table, "BB Table:
  N bbs", then N little-endian {uint32 start, uint16 size, uint16 module id} records);
* Chrome trace: the Trace Event Format (traceEvents with name/ph/ts/pid/tid; complete events
  with a duration, properly nested on a thread);
* speedscope: validated against a JSON schema transcribed from speedscope's file-format-spec.ts,
  plus the rules the spec states in prose (events in non-decreasing order, balanced frames)."""

import json
import os
import re
import struct

import jsonschema
import numpy as np
import pytest

from aero.cli import main
from aero.debug.symbols import SymbolTable
from aero.trace.tracefile import TraceFile

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guests", "diffguest.bin")
MAP = os.path.join(HERE, "guests", "diffguest.map")


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    p = str(tmp_path_factory.mktemp("x") / "g.trace")
    assert main(["trace", "record", p, "--bios", GUEST, "--registers", "--headless",
                 "--serial", "none", "--chunk-rows", "2000"]) == 1
    return p


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The built-in demo under the Aero BIOS: BIOS calls (INT 10h, 14h, 15h) and a timer."""
    p = str(tmp_path_factory.mktemp("d") / "demo.trace")
    assert main(["trace", "record", p, "--headless", "--serial", "none",
                 "--max-instructions", "150000"]) == 0
    return p


def export(trace, fmt, out, *extra):
    assert main(["trace", "export", trace, fmt, "-o", str(out), *extra]) == 0
    return str(out)


# ---------------------------------------------------------------------------------------------
_ENTRY = re.compile(r"^(?:(eax|ebx|ecx|edx|ebp|esp|esi|edi|eip)=0x([0-9a-f]+)|"
                    r"(mr|mw|mrw)=0x([0-9a-f]+):((?:[0-9a-f]{2})+))$")


def parse_tenet(path):
    lines = []
    for text in open(path).read().splitlines():
        regs, mem = {}, []
        entries = text.split(",")
        for e in entries:
            m = _ENTRY.match(e)
            assert m, f"not a Tenet entry: {e!r} in {text!r}"
            if m.group(1):
                assert not mem, "registers come before memory entries"
                regs[m.group(1)] = int(m.group(2), 16)
            else:
                mem.append((m.group(3), int(m.group(4), 16), bytes.fromhex(m.group(5))))
        assert "eip" in regs and list(regs)[-1] == "eip", text
        lines.append((regs, mem))
    return lines


def test_tenet(trace, tmp_path):
    lines = parse_tenet(export(trace, "tenet", tmp_path / "g.tenet"))
    tf = TraceFile(trace)
    ins = tf.arrays("instructions")
    assert len(lines) == len(ins["icount"])
    assert set(lines[0][0]) == {"eax", "ebx", "ecx", "edx", "ebp", "esp", "esi", "edi", "eip"}
    state = {}
    for k, (regs, _) in enumerate(lines):
        state.update(regs)
        assert state["eip"] == ins["pc"][k]
        for r in ("eax", "ebx", "ecx", "edx", "ebp", "esp", "esi", "edi"):
            assert state[r] == ins[r][k], (k, r)
    mem = tf.arrays("memory")
    own = ~np.asarray(mem["system"])
    for k in (100, 500, 1000, 2000):
        want = [("mw" if w else "mr", int(a), int(v).to_bytes(4, "little")[:s])
                for ic, a, s, v, w in zip(mem["icount"][own], mem["address"][own],
                                          mem["size"][own], mem["value"][own],
                                          mem["write"][own]) if ic == k - 1]
        got = [e for e in lines[k][1]]
        assert [g for g in got if g in want] == want, k
    assert sum(len(m) for _, m in lines) > 1000


def test_drcov(trace, tmp_path):
    path = export(trace, "drcov", tmp_path / "g.drcov", "--module", "diffguest.bin@0xf0000",
                  "--module", "low@0-0x100000")
    data = open(path, "rb").read()
    head, rest = [], data
    for _ in range(7):
        line, rest = rest.split(b"\n", 1)
        head.append(line.decode())
    assert head[0] == "DRCOV VERSION: 2" and head[1] == "DRCOV FLAVOR: drcov"
    assert head[2] == "Module Table: version 2, count 2"
    assert head[3] == "Columns: id, base, end, entry, checksum, timestamp, path"
    mods = [[f.strip() for f in h.split(", ")] for h in head[4:6]]
    assert [(int(m[0]), int(m[1], 16), int(m[2], 16), m[6]) for m in mods] == \
        [(0, 0xF0000, 1 << 32, "diffguest.bin"), (1, 0, 0x100000, "low")]
    n = int(re.fullmatch(r"BB Table: (\d+) bbs", head[6]).group(1))
    table = data[len(b"\n".join(l.encode() for l in head[:7])) + 1:]
    assert len(table) == 8 * n
    bbs = [struct.unpack_from("<IHH", table, 8 * i) for i in range(n)]
    covered = {0: set(), 1: set()}
    for start, size, mod in bbs:
        assert size > 0 and mod in (0, 1)
        base = (0xF0000, 0)[mod]
        covered[mod].update(range(base + start, base + start + size))
    ins = TraceFile(trace).arrays("instructions", ["pc", "length"])
    for pc, ln in set(zip(ins["pc"].tolist(), ins["length"].tolist())):
        if pc >= 0xF0000:
            assert set(range(pc, pc + ln)) <= covered[0], hex(pc)
        if pc < 0x100000:
            assert set(range(pc, pc + ln)) <= covered[1], hex(pc)
    # the default module covers all memory
    data = open(export(trace, "drcov", tmp_path / "all.drcov"), "rb").read()
    assert b"memory\nBB Table: " in data


def _check_chrome(doc):
    assert isinstance(doc["traceEvents"], list)
    spans = []
    for e in doc["traceEvents"]:
        assert {"name", "ph", "pid", "tid"} <= set(e), e
        assert e["ph"] in ("X", "i", "M"), e
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
            spans.append((e["tid"], e["ts"], e["ts"] + e["dur"], e["name"]))
    # complete events on one thread nest: each starts and ends inside the one open around it
    for tid in {s[0] for s in spans}:
        stack = []
        for _, a, b, name in sorted((s for s in spans if s[0] == tid),
                                    key=lambda s: (s[1], -s[2])):
            while stack and stack[-1][1] <= a:
                stack.pop()
            if stack:
                assert b <= stack[-1][1], (name, a, b, stack[-1])
            stack.append((a, b))
    return spans


def test_chrome(trace, demo, tmp_path):
    doc = json.load(open(export(trace, "chrome", tmp_path / "g.json")))
    spans = _check_chrome(doc)
    names = [s[3] for s in spans]
    assert names.count("INT 40h AH=11h") == 2 and names.count("#UD") == 1
    for _, a, b, name in spans:
        assert b - a == 2                      # add + iret; add [esp], 2 + iret
    inst = [e["name"] for e in doc["traceEvents"] if e["ph"] == "i"]
    assert "real -> protected" in inst and "CR3 <- 0x00003000" in inst
    # BIOS calls under the Aero BIOS carry the service's description
    doc = json.load(open(export(demo, "chrome", tmp_path / "demo.json")))
    _check_chrome(doc)
    bios = [e for e in doc["traceEvents"] if e.get("cat") == "bios"]
    assert any(e["name"] == "INT 10h AH=0Eh" and "INT 10h AH=0Eh" in e["args"].get("bios", "")
               for e in bios)


# A JSON schema transcribed from speedscope's src/lib/file-format-spec.ts (FileFormat.File).
SPEEDSCOPE_SCHEMA = {
    "type": "object",
    "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {"const": "https://www.speedscope.app/file-format-schema.json"},
        "version": {"type": "string"},
        "name": {"type": "string"},
        "activeProfileIndex": {"type": "number"},
        "exporter": {"type": "string"},
        "shared": {"type": "object", "required": ["frames"], "properties": {
            "frames": {"type": "array", "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "file": {"type": "string"},
                    "line": {"type": "number"}, "col": {"type": "number"}}}}}},
        "profiles": {"type": "array", "items": {"oneOf": [
            {"type": "object",
             "required": ["type", "name", "unit", "startValue", "endValue", "events"],
             "properties": {
                 "type": {"const": "evented"}, "name": {"type": "string"},
                 "unit": {"enum": ["none", "nanoseconds", "microseconds", "milliseconds",
                                   "seconds", "bytes"]},
                 "startValue": {"type": "number"}, "endValue": {"type": "number"},
                 "events": {"type": "array", "items": {
                     "type": "object", "required": ["type", "at", "frame"], "properties": {
                         "type": {"enum": ["O", "C"]}, "at": {"type": "number"},
                         "frame": {"type": "integer", "minimum": 0}}}}}},
            {"type": "object",
             "required": ["type", "name", "unit", "startValue", "endValue", "samples",
                          "weights"],
             "properties": {"type": {"const": "sampled"}}}]}},
    },
}


def test_speedscope(trace, demo, tmp_path):
    for t, extra in ((trace, ("--symbols", MAP)), (demo, ())):
        doc = json.load(open(export(t, "speedscope", tmp_path / "p.json", *extra)))
        jsonschema.validate(doc, SPEEDSCOPE_SCHEMA)
        frames = doc["shared"]["frames"]
        prof = doc["profiles"][0]
        ats = [e["at"] for e in prof["events"]]
        assert ats == sorted(ats)
        assert prof["startValue"] <= ats[0] and ats[-1] <= prof["endValue"]
        stack = []
        for e in prof["events"]:
            assert e["frame"] < len(frames)
            if e["type"] == "O":
                stack.append(e["frame"])
            else:
                assert stack and stack.pop() == e["frame"]
        assert not stack
    # the guest's calls and handlers, by symbol
    doc = json.load(open(export(trace, "speedscope", tmp_path / "g.json", "--symbols", MAP)))
    names = [f["name"] for f in doc["shared"]["frames"]]
    assert {"sum16", "twiddle", "INT 40h AH=11h", "#UD"} <= set(names)
    ev = doc["profiles"][0]["events"]
    st = SymbolTable()
    st.load(MAP)
    twiddle = names.index("twiddle")
    opens = [e["at"] for e in ev if e["frame"] == twiddle and e["type"] == "O"]
    closes = [e["at"] for e in ev if e["frame"] == twiddle and e["type"] == "C"]
    assert len(opens) == len(closes) == 64
    assert all(c - o == 3 for o, c in zip(opens, closes))     # xor, add, ret


def test_bad_exports(trace, tmp_path, capsys):
    for args in (["tenet", "-o", str(tmp_path / "no" / "x")],
                 ["drcov", "-o", str(tmp_path / "x"), "--module", "bad"],
                 ["drcov", "-o", str(tmp_path / "x"), "--module", "m@0x10-0x5"],
                 ["speedscope", "-o", str(tmp_path)],
                 ["chrome", "-o", str(tmp_path / "x"), "--symbols", str(tmp_path / "none")]):
        assert main(["trace", "export", trace, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("aero: ") and err.count("\n") == 1, (args, err)
