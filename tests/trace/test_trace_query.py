"""`aero trace query` on the diff guest (tests/trace/guests/diffguest.asm), whose behaviour is
known from its source: who wrote an address and when, when the PC reached an address, what ran
between two counts, coverage and hottest code with symbols, events, port I/O."""

import json
import os

import pytest

from aero.cli import main
from aero.debug.symbols import SymbolTable

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guests", "diffguest.bin")
MAP = os.path.join(HERE, "guests", "diffguest.map")
BUF = 0x2000


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    p = str(tmp_path_factory.mktemp("q") / "g.trace")
    assert main(["trace", "record", p, "--bios", GUEST, "--headless", "--serial", "none"]) == 1
    return p


@pytest.fixture(scope="module")
def syms():
    st = SymbolTable()
    st.load(MAP)
    return st


def q(trace, capsys, *args):
    assert main(["trace", "query", trace, *args]) == 0
    return capsys.readouterr().out


def qj(trace, capsys, *args):
    return json.loads(q(trace, capsys, *args, "--json"))


def test_who_wrote(trace, syms, capsys):
    # sum16 adds CX (8, 7, ... 1) into the word at BUF+0x200, once per call
    rows = qj(trace, capsys, "who-wrote", hex(BUF + 0x200), "--size", "2")
    assert [r["value"] for r in rows] == [8, 15, 21, 26, 30, 33, 35, 36]
    assert {r["pc"] for r in rows} == {syms.lookup("sum16")}
    assert all(r["write"] and r["size"] == 2 and "add" in r["by"] for r in rows)
    assert [r["icount"] for r in rows] == sorted(r["icount"] for r in rows)
    # the last write before a count, most recent first
    before = qj(trace, capsys, "who-wrote", hex(BUF + 0x200), "--size", "2", "--before",
                str(rows[3]["icount"]), "--limit", "1")
    assert before == [rows[2]]
    text = q(trace, capsys, "who-wrote", "0200:0200", "--size", "2", "--symbols", MAP)
    assert text.count("write 2 bytes at 0x00002200") == 8 and "<sum16>" in text
    # reads and writes of the word: each ADD reads it first
    acc = qj(trace, capsys, "accesses", hex(BUF + 0x200), "--size", "2", "--limit", "0")
    assert [r["write"] for r in acc] == [False, True] * 8


def test_interrupt_frames_are_system_writes(trace, capsys):
    # INT 40h pushes FLAGS, CS, IP below SP=0x7000: made by the INT instruction itself
    rows = qj(trace, capsys, "who-wrote", "0x6ffa", "--size", "6", "--limit", "0")
    ints = [r for r in rows if "int 0x40" in r["by"]]
    assert len(ints) == 6 and not any(r["system"] for r in ints)      # 2 INTs, 3 words each
    assert {r["address"] for r in ints} == {0x6FFA, 0x6FFC, 0x6FFE}
    # the #UD in protected mode: the CPU pushes the frame while delivering it
    rows = qj(trace, capsys, "who-wrote", hex(0x9000 - 12), "--size", "12", "--limit", "0")
    assert any(r["system"] and r["by"] == "interrupt delivery" for r in rows)


def test_pc(trace, syms, capsys):
    r = qj(trace, capsys, "pc", "planted", "--symbols", MAP)
    assert r["count"] == 1 and r["icounts"] == [r["first"]]
    r = qj(trace, capsys, "pc", hex(syms.lookup("pde")), "--limit", "3")
    assert r["count"] == 1024 and len(r["icounts"]) == 3
    assert "reached 1,024 times" in q(trace, capsys, "pc", hex(syms.lookup("pde")))
    assert "never reached" in q(trace, capsys, "pc", "0x12345")


def test_range(trace, syms, capsys):
    first = qj(trace, capsys, "pc", "planted", "--symbols", MAP)["first"]
    r = qj(trace, capsys, "range", str(first - 3), str(first + 3))
    dis = [i["disasm"] for i in r["instructions"]]
    assert dis == ["mov ax, 0x1200", "add ax, 0x34", "mov bx, ax", "cmp ax, bx", "pushf",
                   "pop dx"]
    # the INT 40h handler, with its event
    hit = qj(trace, capsys, "pc", "int40", "--symbols", MAP)["first"]
    text = q(trace, capsys, "range", str(hit - 1), str(hit + 2), "--symbols", MAP)
    lines = text.splitlines()
    assert "int 0x40" in lines[0] and "INT 0x40 AH=11h" in lines[1]
    assert "<int40>" in lines[2] and "iret" in lines[3]
    assert "more instructions" in q(trace, capsys, "range", "0", "6000", "--limit", "5")


def test_coverage_and_hot(trace, syms, capsys):
    c = qj(trace, capsys, "coverage", "--symbols", MAP)
    names = {s["symbol"] for s in c["by_symbol"]}
    assert {"start", "arith", "sum16", "int40", "pm32", "twiddle", "ud_handler",
            "pde"} <= names
    assert c["bytes_covered"] > 200 and c["distinct_instructions"] > 100
    assert c["instructions_executed"] == sum(s["executed"] for s in c["by_symbol"])
    hot = qj(trace, capsys, "hot", "--top", "4")
    assert all(syms.lookup("pde") <= h["pc"] < syms.lookup("paged") for h in hot)
    assert all(h["count"] == 1024 for h in hot)
    by = qj(trace, capsys, "hot", "--symbols", MAP, "--top", "1")
    assert by[0]["symbol"] == "pde" and by[0]["count"] >= 4 * 1024
    text = q(trace, capsys, "hot", "--symbols", MAP, "--by", "instruction", "--top", "2")
    assert "<pde" in text and "%" in text


def test_events_and_io(trace, capsys):
    ev = qj(trace, capsys, "events", "--limit", "0")
    kinds = [e["kind"] for e in ev]
    assert kinds.count("soft") == 2 and kinds.count("fault") == 1
    assert [e["text"] for e in ev if e["kind"] == "mode"] == \
        ["real -> protected", "protected -> protected + paging"]
    ud = next(e for e in ev if e["kind"] == "fault")
    assert ud["vector"] == 6 and ud["text"] == "#UD"
    text = q(trace, capsys, "events", "--kind", "fault")
    assert "exception 0x06 #UD" in text
    io = qj(trace, capsys, "io")
    assert [(r["port"], r["write"], r["value"]) for r in io] == [(0x501, True, 0)]
    assert qj(trace, capsys, "io", "--port", "0x60-0x64") == []


def test_bad_queries(trace, capsys):
    for args in (["who-wrote", "nowhere"], ["pc", "nosuchsymbol", "--symbols", MAP],
                 ["range", "10", "5"], ["who-wrote", "0x10", "--size", "0"],
                 ["hot", "--by", "symbol"], ["io", "--port", "x"],
                 ["pc", "1", "--symbols", "/nonexistent.map"]):
        assert main(["trace", "query", trace, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("aero: ") and err.count("\n") == 1, (args, err)


def test_no_memory_trace(tmp_path, capsys):
    p = str(tmp_path / "nm.trace")
    assert main(["trace", "record", p, "--bios", GUEST, "--headless", "--serial", "none",
                 "--no-memory"]) == 1
    assert main(["trace", "query", p, "who-wrote", "0x2200"]) == 2
    assert "no memory accesses" in capsys.readouterr().err
