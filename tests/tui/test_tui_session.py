"""The TUI's parts that need no Textual: output sinks and the terminal buffer, the worker
(pauses, stale stop requests, injections), the session's command routing, and the
disassembly's backward decoding."""

from __future__ import annotations

import threading

from aero.debug.debugger import Stop
from aero.tui.codeview import CodeView
from aero.tui.runner import Job
from aero.tui.session import BUSY, Session
from aero.tui.sinks import ByteSink, TerminalBuffer
from tui_helpers import scenario_settings, spin_settings

from aero.build import build_from_settings


def make_session(settings, **kw):
    m, _ = build_from_settings(settings)
    done = []
    cond = threading.Condition()

    def on_done(job, result):
        with cond:
            done.append((job, result))
            cond.notify_all()
    s = Session(m, on_done=on_done, **kw)

    def wait(n, timeout=20.0, idle=True):
        with cond:
            assert cond.wait_for(lambda: len(done) >= n and not (idle and s.running),
                                 timeout), done
        return done[n - 1][1]
    return s, wait


# -- sinks ---------------------------------------------------------------------------------------
def test_terminal_buffer_is_a_plain_terminal():
    t = TerminalBuffer(max_lines=3)
    t.feed(b"abc\rX\n\tT\x08Y\n\x1b[1;31mred\x1b[0m \xb0\n")
    assert t.lines == ["        Y", "red \u2591", ""]
    assert t.dropped == 1
    t.feed(b"\x07\x00ok")
    assert t.lines[-1] == "ok"


def test_byte_sink_from_another_thread_and_tee():
    seen = []
    sink = ByteSink(tee=seen.append)
    data = bytes(range(256)) * 40
    th = threading.Thread(target=lambda: [sink(b) for b in data])
    th.start()
    got = bytearray()
    while th.is_alive():
        got += sink.take()
    th.join()
    got += sink.take()
    assert bytes(got) == data and bytes(seen) == data and sink.count == len(data)
    assert sink.take() == b""


# -- the worker ----------------------------------------------------------------------------------
def test_pause_stops_a_running_guest_and_steps_go_on(tmp_path):
    s, wait = make_session(spin_settings(tmp_path))
    assert s.cont() is None
    assert s.cont() == BUSY
    import time
    time.sleep(0.2)
    assert s.running and s.pause()
    stop = wait(1)
    assert stop.reason == "pause" and stop.icount > 0
    before = s.m.cpu.icount
    assert s.step() is None
    assert wait(2).reason == "step" and s.m.cpu.icount == before + 1
    assert not s.pause()                            # nothing runs: no stale request either
    s.step()
    assert wait(3).reason == "step" and s.m.cpu.icount == before + 2
    s.close()


def test_a_pause_arriving_as_a_run_ends_is_not_left_for_the_next_step(tmp_path):
    s, wait = make_session(spin_settings(tmp_path))
    runner = s.runner

    def ends_for_another_reason():
        runner.pause()                              # the request lands ...
        return Stop("breakpoint", "Breakpoint 9")   # ... as the run ends otherwise
    runner.submit(Job("cont", ends_for_another_reason))
    assert wait(1).reason == "breakpoint"
    before = s.m.cpu.icount
    s.step()
    stop = wait(2)
    assert stop.reason == "step" and s.m.cpu.icount == before + 1
    s.close()


def test_point_commands_are_injected_into_a_continue(tmp_path):
    s, wait = make_session(spin_settings(tmp_path))
    s.cont()
    import time
    time.sleep(0.1)
    out = s.execute("b 0x7c10")
    assert out.queued and not out.error
    result = wait(1, idle=False)                    # the injected command's output
    assert result == "Breakpoint 1 at linear 0x00007c10"
    assert s.running                                # the run went on
    out = s.execute("info break")                   # read-only: at once, even while running
    assert "linear 0x00007c10" in out.text
    assert s.execute("set eax = 1").text == BUSY     # changes state: refused while running
    assert s.execute("si").text == BUSY
    assert s.execute("pause").text is None
    assert wait(2).reason == "pause"
    assert s.execute("quit").quit
    assert s.execute("pause").text == "the guest is not running"
    s.close()


def test_session_commands_breakpoints_and_events(tmp_path):
    s, wait = make_session(scenario_settings("hello", tmp_path))
    out = s.toggle_breakpoint(0x7C00)
    assert out.text == "Breakpoint 1 at linear 0x00007c00" and not out.queued
    assert [(r.id, r.address, r.enabled) for r in s.breakpoints()] == [(1, 0x7C00, True)]
    assert s.set_event_log(True).text == "event log on" and s.events_on
    assert s.execute("c").queued
    stop = wait(1)
    assert stop.reason == "breakpoint" and s.dbg.pc() == 0x7C00
    assert "Breakpoint 1, 0000:7c00" in s.describe(stop)
    assert s.toggle_breakpoint(0x7C00).text.startswith("Deleted breakpoint 1")
    assert s.breakpoints() == []
    s.execute("si 3")
    assert "=> 0000:7c07" in wait(2)                 # a run command's output (text)
    s.cont()
    assert wait(3).reason == "exit"
    assert any(text.startswith("BIOS INT 10h") for _, text in s.dbg.events), s.dbg.events
    assert "error" not in s.execute("help").text and "pause" in s.execute("help").text
    out = s.execute("x/2xb nowhere")
    assert out.error and "unknown symbol" in out.text
    assert s.completions("disas") == ["disassemble", "disas"] or \
        s.completions("disas")[0].startswith("disas")
    s.close()


# -- disassembly ---------------------------------------------------------------------------------
def test_codeview_backwards_from_known_boundaries_and_guesses(tmp_path):
    s, wait = make_session(scenario_settings("hello", tmp_path))
    code = s.code
    s.dbg.break_at(0x7C00)
    s.cont()
    wait(1)
    for _ in range(3):
        s.step()
    wait(4)
    assert s.dbg.pc() == 0x7C07
    before = code.before(0x7C07, 3)                 # seen executed: certain
    assert [(ln.address, ln.text, ln.sure) for ln in before] == [
        (0x7C00, "xor ax, ax", True), (0x7C02, "mov ds, ax", True),
        (0x7C04, "mov dx, 0x3fb", True)]
    guess = code.before(0x7C00, 2)                  # nothing known before the boot sector
    assert guess and all(not ln.sure for ln in guess)
    assert guess[-1].address + guess[-1].length == 0x7C00
    s.dbg.symbols.add("print_loop", 0x7C0D)
    lines = code.forward(0x7C0D, 4)
    assert lines[0].label == "print_loop"
    assert lines[2].text == "je 0x7c1f <print_loop+0x12>"
    s.dbg.symbols.add("done", 0x7C1F)
    code._cache.clear()
    assert code.forward(0x7C10, 1)[0].text == "je 0x7c1f <done>"
    s.close()


def test_codeview_wraps_at_64k_in_16_bit_code(tmp_path):
    s, _ = make_session({})
    lines = s.code.forward(s.dbg.pc(), 4)            # the reset vector: F000:FFF0
    assert lines[0].text == "ljmp 0xf000:0x187" or lines[0].text.startswith("ljmp")
    offsets = [(ln.address - 0xFFFF0000) & 0xFFFFFFFF for ln in lines]
    assert all(o <= 0xFFFF for o in offsets)        # never past the segment's end
    s.close()


def test_codeview_32_bit(tmp_path):
    s, wait = make_session(scenario_settings("pmode", tmp_path))
    s.execute("catch exception pf")
    s.cont()
    stop = wait(1)
    assert stop.reason == "catch" and s.m.cpu.code32
    line = s.code.decode(s.dbg.pc())
    assert line.length > 0 and not line.text.startswith("(bad)")
    assert isinstance(s.code, CodeView)
    s.close()


# -- host input and the display ----------------------------------------------------------------
def test_serial_input_goes_through_the_input_queue(tmp_path):
    from aero.inputs import SerialInput
    s, _ = make_session(scenario_settings("hello", tmp_path))
    s.send_serial(b"hi\r")
    assert list(s.m.inputs.submitted) == [SerialInput(b"hi\r")]
    s.close()


def test_display_thread_under_sdl_dummy_driver(monkeypatch):
    from aero.tui.display import DisplayThread
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    m, _ = build_from_settings({})
    d = DisplayThread(m, fps=60)
    assert d.start() and d.reason is None
    import time
    time.sleep(0.1)
    d.stop()
    assert d.closed and d.error is None
    m.close()


def test_display_thread_says_why_there_is_no_window(monkeypatch):
    from aero.tui.display import DisplayThread
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    m, _ = build_from_settings({})
    d = DisplayThread(m)
    assert not d.start()
    assert d.reason == "aero: no display (no DISPLAY or WAYLAND_DISPLAY); running headless"
    d.stop()
    m.close()


def test_bad_settings_and_symbols_exit_2_before_the_tui_starts():
    import subprocess
    import sys
    for args, msg in ((["--fda", "/nonexistent.img"], "no such file"),
                      (["--symbols", "/nonexistent.map"], "--symbols")):
        r = subprocess.run([sys.executable, "-m", "aero.tui", "--no-display", *args],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("aero: ") and msg in r.stderr and r.stderr.count("\n") == 1


def test_host_output_never_reaches_the_terminal(tmp_path):
    from aero.tui.app import _host_sinks
    out = tmp_path / "com1.txt"
    notes = []
    settings = {"serial": str(out), "debugcon": "stdio", "firmware_log": "stdio",
                "max_instructions": 5, "timeout": 2.0}
    com1, debugcon = _host_sinks(settings, notes)
    assert settings["serial"] is com1 and settings["debugcon"] is debugcon
    assert settings["firmware_log"] is debugcon and "max_instructions" not in settings
    assert notes == ["--max-instructions does not apply to the TUI (ignored)",
                     "--timeout does not apply to the TUI (ignored)"]
    for b in b"ok\n":
        com1(b)
    com1.close()
    assert out.read_bytes() == b"ok\n" and com1.take() == b"ok\n"
    settings = {"serial": "stdio"}
    com1, debugcon = _host_sinks(settings, [])
    assert com1.tee is None and debugcon is None
