"""The debugger core (aero/debug/debugger.py) on real guests: every breakpoint, watchpoint,
catch and step kind.  tests/debug/guests/stepping.asm is a boot sector made for this (calls, a
loop, a REP string, an INT, the magic breakpoint, a write, a port); its NASM map gives the
addresses, so the tests also exercise symbols."""

import os
import shutil
import subprocess

import pytest

from aero import scenarios as S
from aero.build import build_machine
from aero.config import MachineConfig
from aero.debug.debugger import Debugger, DebugError

GUESTS = os.path.join(os.path.dirname(__file__), "guests")
STEPPING = os.path.join(GUESTS, "stepping.bin")


@pytest.fixture
def stepping(tmp_path):
    """A debugger on the stepping guest, its symbols loaded, stopped at its first instruction
    (0x7c00): the BIOS part is run through."""
    img = tmp_path / "stepping.img"
    img.write_bytes(open(STEPPING, "rb").read().ljust(1474560, b"\0"))
    out = bytearray()
    m = build_machine(MachineConfig(fda=str(img), boot="a", serial=out.append))
    d = Debugger(m)
    d.load_symbols(os.path.join(GUESTS, "stepping.map"))
    d.until("start")
    assert d.pc() == 0x7C00
    d.out = out
    return d


def sym(d, name):
    return d.symbols.lookup(name)


def scenario(tmp_path, name, **kw):
    return Debugger(S.build(S.load(name), str(tmp_path), **kw))


# -- breakpoints --------------------------------------------------------------------------------
def test_breakpoint_with_condition_hit_count_and_ignore(stepping):
    d = stepping
    p = d.break_at("add_one", condition="word [counter] >= 1")     # entered with 0, 1, 2, 3
    s = d.cont()
    assert s.reason == "breakpoint" and s.point is p and d.pc() == sym(d, "add_one")
    assert d.read(sym(d, "counter"), 2) == b"\x01\x00" and p.hits == 1
    p.ignore = 1
    s = d.cont()                        # counter 2: counted, ignored; counter 3: stops
    assert s.point is p and d.read(sym(d, "counter"), 2) == b"\x03\x00" and p.hits == 3
    assert d.cont().reason == "exit" and p.hits == 3


def test_breakpoint_disable_enable_delete(stepping):
    d = stepping
    p = d.break_at("add_one")
    d.enable(p.id, False)
    q = d.break_at("outer")
    assert d.cont().point is q
    d.enable(p.id, True)
    d.delete(q.id)
    assert d.cont().reason == "exit" and p.hits == 0   # add_one already done: no more hits
    with pytest.raises(DebugError, match="no breakpoint"):
        d.delete(99)


def test_temporary_and_segoff_and_physical_breakpoints(stepping):
    d = stepping
    t = d.break_at("0000:7c0e", temporary=True)         # 'again', written seg:off
    assert d.cont().point is t and t.id not in d.points
    p = d.break_at(sym(d, "inner"), physical=True)
    s = d.cont()
    assert s.point is p and d.pc() == sym(d, "inner")


def test_breakpoint_on_code_loaded_later(tmp_path):
    # set before the BIOS has loaded the boot sector: it still fires (linear, not bytes)
    d = scenario(tmp_path, "hello")
    p = d.break_at(0x7C00)
    assert d.cont().point is p and d.cpu.icount > 0


def test_magic_breakpoint_stops_after_xchg_bx_bx(stepping):
    d = stepping
    d.set_magic(True)
    s = d.cont()
    assert s.reason == "breakpoint" and s.point is d.magic
    code = d.read(d.pc() - 2, 2)
    assert code == b"\x87\xdb"                          # stopped right after it
    d.set_magic(False)
    assert d.magic is None and d.cont().reason == "exit"


# -- watchpoints ---------------------------------------------------------------------------------
def test_write_watchpoint_reports_old_and_new(stepping):
    d = stepping
    p = d.watch("counter", 2)
    s = d.cont()
    assert s.reason == "watchpoint" and s.point is p
    assert "Old value = 0x0000" in s.message and "New value = 0x0001" in s.message
    acc = s.details["access"]
    assert acc.write and acc.address == sym(d, "counter")
    assert d.read(acc.eip, 1) == b"\xff"                # inc word [counter] (FF /0)
    assert d.pc() == acc.eip + 4                        # stopped after it
    for _ in range(3):
        d.cont()
    s = d.cont()                                        # mov word [counter], 0x1234
    assert "Old value = 0x0004" in s.message and "New value = 0x1234" in s.message


def test_read_and_access_watchpoints_physical(tmp_path):
    d = scenario(tmp_path, "pmode")
    r = d.watch(0x30000, 4, "r", physical=True)
    s = d.cont()
    assert s.point is r and s.details["access"].value == 0x12345678 and "(read)" in s.message
    d.delete(r.id)
    a = d.watch(0x31010, 4, "rw", physical=True)        # the page the #PF handler maps
    s = d.cont()
    assert s.point is a and s.details["access"].write


def test_watchpoint_in_a_rep_string_stops_after_that_element(stepping):
    d = stepping
    buf = sym(d, "buffer")
    d.watch(buf + 3, 1)
    s = d.cont()
    assert s.reason == "watchpoint" and d.read(buf, 8) == b"\x5a" * 4 + b"\0" * 4
    assert d.reg("cx") == 4                             # the REP resumes afterwards
    d.delete(s.point.id)
    d.next()
    assert d.read(buf, 8) == b"\x5a" * 8


# -- catches ---------------------------------------------------------------------------------------
def test_catch_io_out(stepping):
    d = stepping
    p = d.catch_io(0x3F8, direction="out")
    s = d.cont()
    io = s.details["io"]
    assert s.point is p and (io.port, io.value, io.write) == (0x3F8, ord("!"), True)
    assert "OUT port 0x03f8" in s.message


def test_catch_page_fault_with_cr2_and_error_code(tmp_path):
    d = scenario(tmp_path, "pmode")
    p = d.catch_interrupt([14], ("fault",))
    s = d.cont()
    ev = s.details["interrupt"]
    assert s.point is p and (ev.vector, ev.error_code, ev.cr2) == (14, 2, 0x80000010)
    assert "#PF" in s.message and "CR2=0x80000010" in s.message


def test_catch_software_interrupt_and_bios_call(stepping):
    d = stepping
    p = d.catch_interrupt([0x10], ("soft",))
    s = d.cont()
    assert s.point is p and s.details["interrupt"].kind == "soft"
    d.delete(p.id)
    b = d.catch_bios(0x10, 0x0E)
    s = d.cont()
    assert s.point is b and s.details["bios"].args["eax"] & 0xFF == ord("*")


def test_catch_mode_switch_and_cr3(tmp_path):
    d = scenario(tmp_path, "pmode")
    m = d.catch_mode()
    s = d.cont()
    assert s.point is m and "real -> protected" in s.message
    c = d.catch_cr3()
    s = d.cont()
    assert s.point is c and "0x00020000" in s.message


def test_catch_triple_fault(tmp_path):
    # a boot sector that loads an empty IDT and executes INT3: #GP, #DF, shutdown
    code = bytes.fromhex("0f011e107c") + b"\xcc" + bytes(10)   # lidt [0x7c10]; int3
    img = tmp_path / "triple.img"
    img.write_bytes((code + bytes(16)).ljust(510, b"\0") + b"\x55\xaa" + bytes(1474560 - 512))
    d = Debugger(build_machine(MachineConfig(fda=str(img), boot="a", no_reboot=True)))
    p = d.catch_interrupt(None, ("shutdown",))
    s = d.cont()
    assert s.point is p and "triple fault" in s.message


# -- stepping ----------------------------------------------------------------------------------------
def test_step_into_and_over_call(stepping):
    d = stepping
    d.until("again")
    assert d.pc() == sym(d, "again")
    s = d.step()
    assert s.reason == "step" and d.pc() == sym(d, "add_one")     # into the call
    d.until("again")
    s = d.next()                                                  # over it
    assert s.reason == "step" and d.pc() == sym(d, "again") + 3
    assert d.read(sym(d, "counter"), 2) == b"\x02\x00"


def test_next_over_loop_rep_and_int(stepping):
    d = stepping
    d.until("again")
    d.next()                                    # call
    s = d.next()                                # loop: runs the remaining iterations
    assert s.reason == "step" and d.reg("cx") == 0
    assert d.read(sym(d, "counter"), 2) == b"\x04\x00"
    while d.current_insn().entry.name != "STOS":
        d.step()
    d.next()                                    # rep stosb: all 8
    assert d.read(sym(d, "buffer"), 8) == b"\x5a" * 8 and d.reg("cx") == 0
    while d.current_insn().entry.name != "INT":
        d.step()
    at = d.pc()
    d.next()                                    # int 0x10 through the BIOS and back
    assert d.pc() == at + 2 and bytes(d.m.vga.vram[0:1])  # still in the guest


def test_finish_returns_to_the_caller(stepping):
    d = stepping
    d.until("inner")
    s = d.finish()
    assert s.reason == "step" and "Run till exit" in s.message
    assert d.pc() == sym(d, "outer") + 3        # after 'call inner'
    d.finish()
    assert d.read(d.pc(), 3) == b"\xba\x01\x05"  # mov dx, 0x501 after 'call outer'


def test_finish_out_of_an_interrupt_handler(stepping):
    d = stepping
    while d.current_insn().entry.name != "INT":
        d.step()
    back = d.pc() + 2
    d.step()                                     # into the BIOS's INT 10h handler
    assert d.cpu.sel[1] == 0xF000
    d.finish()                                   # its IRET
    assert d.pc() == back


def test_step_count_stops_at_breakpoints(stepping):
    d = stepping
    p = d.break_at("add_one")
    s = d.step(1000)
    assert s.reason == "breakpoint" and s.point is p


def test_pause_from_another_thread(tmp_path):
    import threading
    d = scenario(tmp_path, "irq", keys="")       # waits for keys forever
    threading.Timer(0.2, d.pause).start()
    s = d.cont()
    assert s.reason == "pause"


def test_registers_memory_and_expressions(stepping):
    d = stepping
    d.set_reg("eax", 0x1234)
    assert d.eval("ax + 1") == 0x1235 and d.eval("ah") == 0x12
    d.write(0x600, b"\x78\x56\x34\x12")
    assert d.eval("[0x600]") == 0x12345678 and d.eval("byte [0000:0601]") == 0x56
    assert d.format_addr(sym(d, "again") + 3) == "0000:7c11 (0x00007c11) <again+0x3>"
    with pytest.raises(DebugError, match="no register"):
        d.reg("xyz")
    with pytest.raises(DebugError, match="unknown symbol"):
        d.eval("nosuchlabel")


def test_a_debugger_left_idle_costs_nothing(tmp_path):
    # no points: the run is the plain run (same state hash at the end)
    plain = S.build(S.load("pmode"), str(tmp_path))
    plain.run()
    d = scenario(tmp_path, "pmode")
    p = d.break_at(0x12345678)
    d.delete(p.id)
    d.cont()
    assert d.m.state_hash() == plain.state_hash() and d.m.hooks.all == []


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_guest_rebuilds_identically(tmp_path):
    src = os.path.join(GUESTS, "stepping.asm")
    subprocess.run(["nasm", "-f", "bin", "-o", str(tmp_path / "s.bin"), src], check=True,
                   cwd=tmp_path)
    assert (tmp_path / "s.bin").read_bytes() == open(STEPPING, "rb").read()
    assert (tmp_path / "stepping.map").read_text().split("-- Symbols")[1] == \
        open(os.path.join(GUESTS, "stepping.map")).read().split("-- Symbols")[1]


def test_a_watchpoint_hit_while_stepping_is_reported_by_that_step(stepping):
    # found by the gdb stub's tests: a watch hit in an instruction run alone (a step, or the
    # first one after a breakpoint) broke the time lookup, and a stop asked for by the last
    # instruction of a step was reported by the next run instead
    d = stepping
    d.break_at("add_one")
    d.cont()                                    # at 'inc word [counter]'
    p = d.watch("counter", 2)
    s = d.step()
    assert s.reason == "watchpoint" and s.point is p and "New value = 0x0001" in s.message
    s = d.step()
    assert s.reason == "step"                   # nothing left over
    c = d.catch_io(0x3F8, direction="out")
    d.delete(p.id)
    while d.current_insn().entry.name != "OUT":
        d.next()                                # (over INT 10h: the BIOS does OUTs too)
    s = d.step()
    assert s.reason == "catch" and s.point is c


def test_pause_when_nothing_runs_does_not_stop_the_next_run(stepping):
    d = stepping
    d.pause()
    assert d.step().reason == "step"
