"""Reverse execution (aero/trace/travel.py, aero/debug/reverse.py): going back lands on exactly
the states a forward run went through; reverse-continue, reverse-next and who-wrote on a guest
whose history is known; Debian's gdb driving reverse-stepi and reverse-continue over a
recording served by `aero replay --gdb`."""

import os
import random
import re
import shutil
import subprocess
import sys

import pytest

from aero import scenarios as S
from aero.build import build_machine
from aero.config import MachineConfig
from aero.debug.commands import Commands
from aero.debug.debugger import Debugger, DebugError

GUESTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "debug", "guests")
STEPPING = os.path.join(GUESTS, "stepping.bin")


def stepping_machine(tmp_path):
    img = tmp_path / "stepping.img"
    img.write_bytes(open(STEPPING, "rb").read().ljust(1474560, b"\0"))
    out = bytearray()
    m = build_machine(MachineConfig(fda=str(img), boot="a", serial=out.append))
    return m, out, str(img)


@pytest.fixture
def recorded(tmp_path):
    """The stepping guest recorded from reset to its exit, the debugger at its end."""
    m, out, img = stepping_machine(tmp_path)
    d = Debugger(m)
    d.load_symbols(os.path.join(GUESTS, "stepping.map"))
    d.record_start(keyframe_every=20_000, checkpoint_every=1024)
    stop = d.cont()
    assert stop.reason == "exit"
    d.img = img
    return d


def sym(d, name):
    return d.symbols.lookup(name)


def counter(d):
    return int.from_bytes(d.read(sym(d, "counter"), 2), "little")


def test_reverse_stepi_lands_on_the_states_of_a_forward_run(tmp_path):
    """At random points of a run with timer and keyboard interrupts, going to N and one
    instruction back give the state hashes a plain forward run had at N and N - 1."""
    ref = S.build(S.load("irq"), str(tmp_path))
    rnd = random.Random(11)
    points = sorted(rnd.sample(range(2, 53_000), 12))
    want = {}
    for p in points:
        ref.run_until(icount=p - 1)
        want[p - 1] = ref.state_hash()
        ref.run_until(icount=p)
        want[p] = ref.state_hash()
    m = S.build(S.load("irq"), str(tmp_path))
    d = Debugger(m)
    d.record_start(keyframe_every=5_000, checkpoint_every=512)
    assert d.cont().reason == "exit"
    rnd.shuffle(points)
    for p in points:
        d.goto(p)
        assert m.state_hash() == want[p], p
        d.reverse_stepi()
        assert m.cpu.icount == p - 1 and m.state_hash() == want[p - 1], p
    assert d.recorder.divergence is None          # every re-execution matched the checkpoints


def test_reverse_continue_to_breakpoints(recorded):
    d = recorded
    p = d.break_at("add_one")                   # entered with counter 0, 1, 2, 3
    for expect in (3, 2, 1, 0):
        s = d.reverse_continue()
        assert s.reason == "breakpoint" and s.point is p, s.message
        assert d.pc() == sym(d, "add_one") and counter(d) == expect
        assert s.message.startswith("(reverse) Breakpoint")
    s = d.reverse_continue()
    assert s.reason == "start" and d.cpu.icount == 0
    # and forward again from the start: the breakpoint stops the run as before
    s = d.cont()
    assert s.reason == "breakpoint" and counter(d) == 0


def test_reverse_continue_to_a_watchpoint_stops_before_the_write(recorded):
    d = recorded
    d.watch("counter", 2)
    s = d.reverse_continue()
    assert s.reason == "watchpoint", s.message
    ins = d.current_insn()
    assert ins.raw[:2] == b"\xc7\x06"                     # mov word [counter], 0x1234
    assert counter(d) == 4
    assert "0x4 -> 0x1234" in s.message
    s = d.reverse_continue()                              # the 4th increment: 3 -> 4
    assert d.pc() == sym(d, "add_one") and counter(d) == 3
    assert "0x3 -> 0x4" in s.message


def test_who_wrote_and_reverse_next(recorded):
    d = recorded
    buf = sym(d, "buffer")
    s = d.who_wrote(buf + 3)
    assert s.reason == "who-wrote"
    ins = d.current_insn()
    assert ins.entry.name.startswith("STOS") and ins.rep
    assert d.read(buf, 8) == b"\x5a\x5a\x5a\x00\x00\x00\x00\x00"   # 3 done, 4th next
    assert "0x0 -> 0x5a" in s.message
    with pytest.raises(DebugError, match="nothing wrote"):
        d.who_wrote(0x500)
    # reverse-next over a call: from the LOOP after the 4th call back to that CALL
    d.goto(0)
    d.until("again")                                      # the first CALL add_one
    for _ in range(3):
        d.cont(instructions=1)
        d.until("again")
    d.next()                                              # over the 4th call: at the LOOP
    assert counter(d) == 4
    here = d.cpu.icount
    s = d.reverse_next()
    assert d.pc() == sym(d, "again") and counter(d) == 3
    assert "back over the call" in s.message
    assert d.cpu.icount == here - 3                       # call, inc, ret went back too
    s = d.reverse_stepi()
    assert d.cpu.icount == here - 4


def test_the_past_can_be_changed_and_the_recording_goes_on_from_there(recorded):
    d = recorded
    end = d.cpu.icount
    d.goto(end - 20)
    c = Commands(d)
    c.execute("set eax = 0x1234")                         # an edit in the past: a new course
    assert d.travel.head == end - 20
    assert any(k.edit for k in d.recorder.timeline.keyframes)
    assert d.cpu.R[0] == 0x1234
    d.cont()
    d.goto(end - 20)
    assert d.cpu.R[0] == 0x1234                           # the edited past is the recording
    out = c.execute("record info")
    assert "keyframes" in out


def test_commands_and_a_saved_recording(recorded, tmp_path):
    d = recorded
    c = Commands(d)
    assert "back at instruction" in c.execute("rsi 10")
    assert "back at instruction" in c.execute("reverse-stepi")
    assert "at instruction 40" in c.execute("goto 40")
    c.execute("break add_one")
    assert "(reverse) Breakpoint 1" in c.execute("rc")
    assert "watchpoint" in c.execute("watch counter 2").lower()
    assert "was last written by" in c.execute("who-wrote counter 2")
    path = tmp_path / "s.aerorec"
    assert "saved the recording" in c.execute(f"record save {path}")
    assert "recording stopped" in c.execute("record stop")
    with pytest.raises(DebugError, match="no recording"):
        c.execute("rsi")
    # the saved recording replays equal and can be debugged from the command line
    from aero.cli import main
    assert main(["replay", str(path), "--serial", "none"]) == 0
    r = subprocess.run([sys.executable, "-m", "aero", "debug", "--replay", str(path),
                        "--serial", "none", "-ex", "break 0x7c3c", "-ex", "continue",
                        "-ex", "continue", "-ex", "reverse-continue", "-ex", "x/1xh 0x7c48",
                        "--batch"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(reverse) Breakpoint 1" in r.stdout
    assert "0x0000" in r.stdout.split("x/1xh")[-1]          # counter back to 0


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb absent (apt-get install gdb)")
def test_gdb_drives_reverse_execution_over_a_recording(tmp_path):
    m, out, img = stepping_machine(tmp_path)
    path = tmp_path / "s.aerorec"
    d = Debugger(m)
    d.record_start(keyframe_every=20_000)
    assert d.cont().reason == "exit"
    d.record_save(str(path))
    aero = subprocess.Popen([sys.executable, "-m", "aero", "replay", str(path), "--gdb", "0",
                             "--serial", "none"], stderr=subprocess.PIPE, text=True)
    try:
        line = aero.stderr.readline()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert port, line
        g = subprocess.run(
            ["gdb", "-nx", "-batch", "-ex", "set architecture i8086",
             "-ex", f"target remote 127.0.0.1:{port.group(1)}",
             "-ex", "break *0x7c3c", "-ex", "continue", "-ex", "continue",
             "-ex", "x/1xh 0x7c48",                            # counter: 1 on the 2nd entry
             "-ex", "reverse-continue", "-ex", "x/1xh 0x7c48",  # back to the 1st: 0
             "-ex", "stepi", "-ex", "stepi", "-ex", "info registers eip",
             "-ex", "reverse-stepi", "-ex", "info registers eip",
             "-ex", "delete", "-ex", "watch *(short *)0x7c48", "-ex", "continue",
             "-ex", "reverse-continue", "-ex", "info registers eip",
             "-ex", "delete", "-ex", "reverse-continue", "-ex", "info registers eip",
             "-ex", "kill"],
            capture_output=True, text=True, timeout=120)
        text = g.stdout
        assert text.count("Breakpoint 1, 0x00007c3c") == 3, text + g.stderr
        xs = re.findall(r"0x7c48:\s+(0x[0-9a-f]+)", text)
        assert xs[:2] == ["0x0001", "0x0000"], text
        eips = re.findall(r"eip\s+(0x[0-9a-f]+)", text)
        # two steps from add_one (inc, ret) reach the LOOP; one back is the ret again; a
        # reverse-continue to the watchpoint stops before the inc that wrote it (gdb shows
        # the write undone: 2 -> 1); with nothing left, back to the start of the recording
        assert eips == ["0x7c11", "0x7c40", "0x7c3c", "0xfffffff0"], text
        assert re.search(r"Old value = 1\s+New value = 2", text)
        assert re.search(r"Old value = 2\s+New value = 1", text)
        assert "No more reverse-execution history" in text
    finally:
        aero.kill()
        aero.wait()


def test_going_back_fires_no_hooks(tmp_path):
    """Restoring a keyframe (real mode) from the end of a run (protected mode) is not a mode
    switch: hooks see only what the guest does, not what time travel does."""
    scn = S.load("pmode")
    m = S.build(scn, str(tmp_path))
    d = Debugger(m)
    seen = []
    m.hooks.mode(lambda mm, ch: seen.append((mm.cpu.icount, ch.new)))
    d.record_start(keyframe_every=50, checkpoint_every=16)
    d.cont(instructions=400)
    end = d.cpu.icount
    forward = list(seen)
    assert forward and forward[0][1][0] == "protected"
    d.goto(1)
    assert d.cpu.icount == 1
    d.goto(end)
    assert seen == forward
