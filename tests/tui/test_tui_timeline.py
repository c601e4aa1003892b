"""Time travel in the TUI, driven by key presses (Textual's pilot): recording on and off
(ctrl+r), stepping back (F7, shift+F7) to exactly the state a forward run had, going back to a
breakpoint's previous hit (F8), the Timeline tab (its bar, its event list and its keys), held
keys folded into one move, and ``aero tui --replay FILE`` over a recording file.

The guest is the pmode scenario (137,576 instructions: real mode, INT 13h, protected mode,
paging, a #PF and its handler, then the exit); addresses are from its listing (``nasm -l``):
``call puts`` at 7E48h returns to 7E4Dh, ``putc`` is at 7FB4h.  Every position asserted is an
exact instruction count, and a state reached backwards is compared with the state the forward
run had there (``Machine.state_hash``)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aero.build import build_from_settings
from aero.trace.recorder import Recorder
from aero.tui.app import build_app, main as tui_main
from aero.tui.display import DisplayThread
from aero.tui.panes.command import CommandPane
from aero.tui.panes.status import StatusBar
from aero.tui.panes.timeline import LABEL, TimelinePane, column
from aero.tui.runner import Job
from aero.tui.session import Session
from aero.tui.travel import NO_RECORDING, REPLAY_INPUT, TRAVEL_INPUT
from tui_helpers import SIZE, log_text, make_app, plain, scenario_settings

END = 137_576                   # pmode's last instruction count (it exits there)
EVENTS = [20, 21, 34, 31_583, 31_586, 64_619, 118_467]     # int, bios, mode, cr3, mode, #PF, cr3
CALL_PUTS, AFTER_PUTS, PUTC = 0x7E48, 0x7E4D, 0x7FB4
STEP = END // 100               # the Timeline's left / right


async def idle(pilot, app, jobs: int, timeout: float = 30.0) -> None:
    """Wait until at least ``jobs`` worker results are handled, nothing runs or waits, and
    no refresh is held back."""
    t0 = time.monotonic()
    while app.jobs_done < jobs or app.session.running or app.refresh_pending:
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"the worker did not finish ({app.jobs_done} of {jobs} jobs; "
                                 f"the log:\n{log_text(app)}")
        await asyncio.sleep(0.005)
        await pilot.pause()
    await pilot.pause()


async def press(pilot, app, *keys: str, jobs: int = 1) -> None:
    """Press keys that start ``jobs`` worker jobs (at least), and wait for them."""
    done = app.jobs_done
    await pilot.press(*keys)
    await idle(pilot, app, done + jobs)


async def enter(pilot, app, line: str) -> None:
    """A command line: put in the command field and Enter pressed (typing it key by key, as
    the other TUI tests do, costs some 90 ms a key)."""
    await pilot.press("escape")
    app.query_one(CommandPane).input.value = line
    await pilot.press("enter")
    await pilot.pause()


async def typed(pilot, app, line: str, jobs: int = 1) -> None:
    """Run a command line that starts ``jobs`` worker jobs, and wait for them."""
    done = app.jobs_done
    await enter(pilot, app, line)
    await idle(pilot, app, done + jobs)


def hold_worker(app) -> threading.Event:
    """Keep the worker busy until the event returned is set: keys pressed meanwhile queue up,
    as they do behind a move that takes a while to re-execute."""
    gate = threading.Event()
    app.session.runner.submit(Job("step", lambda: gate.wait(20), "held"))
    return gate


def status(app) -> str:
    return plain(app.query_one(StatusBar))


def icount(app) -> int:
    return app.session.m.cpu.icount


@pytest.fixture
def pmode(tmp_path):
    return scenario_settings("pmode", tmp_path)


def test_f7_steps_back_to_the_states_of_the_forward_run(pmode):
    app = make_app(pmode)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            m = app.session.m
            await enter(pilot, app, f"b {PUTC:#x}")
            await press(pilot, app, "f5")
            start = icount(app)
            assert app.session.dbg.pc() == PUTC
            await pilot.press("f7")                     # nothing recorded yet: says so
            await pilot.pause()
            assert NO_RECORDING in log_text(app) and icount(app) == start
            await press(pilot, app, "ctrl+r")
            assert f"REC  rec {start:,} / {start:,}" in status(app)
            assert f"recording from instruction {start}, a keyframe every 100,000" in \
                log_text(app)
            hashes = {}
            for n in range(6):                          # forward, one instruction at a time
                hashes[icount(app)] = (m.state_hash(), app.session.dbg.pc())
                await press(pilot, app, "f11")
            end = icount(app)
            assert end == start + 6
            hashes[end] = (m.state_hash(), app.session.dbg.pc())

            await press(pilot, app, "f7")
            assert icount(app) == end - 1
            assert (m.state_hash(), app.session.dbg.pc()) == hashes[end - 1]
            assert f" REC  rec {end - 1:,} / {end:,}" in status(app)
            assert f"EIP {hashes[end - 1][1]:08x}" in plain(app.query_one("#registers"))

            done = app.jobs_done                        # held down: one job goes back 3
            gate = hold_worker(app)
            await pilot.press("f7", "f7", "f7")
            assert app.session.runner.kinds() == ["step", "rstep"]
            assert app.session.runner.last.label == "reverse-stepi 3"
            gate.set()
            await idle(pilot, app, done + 2)
            assert app.jobs_done == done + 2
            assert icount(app) == end - 4
            assert (m.state_hash(), app.session.dbg.pc()) == hashes[end - 4]

            await typed(pilot, app, "rsi 2")            # typed: says where it landed
            assert icount(app) == start and m.state_hash() == hashes[start][0]
            assert f"the start of the recording: instruction {start}" in log_text(app)
            assert "START OF RECORDING" in status(app)
            await press(pilot, app, "f7")               # nothing before the start
            assert icount(app) == start
            assert f"at the start of the recording (instruction {start})" in log_text(app)

            await press(pilot, app, "f5")               # forward again: the same run
            assert icount(app) > end and app.session.dbg.pc() == PUTC
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_shift_f7_steps_back_over_a_call(pmode):
    app = make_app(pmode)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            m = app.session.m
            await press(pilot, app, "ctrl+r")           # from the reset vector
            await enter(pilot, app, f"b {CALL_PUTS:#x}")
            await enter(pilot, app, f"b {AFTER_PUTS:#x}")
            await press(pilot, app, "f5")
            at_call = icount(app)
            assert app.session.dbg.pc() == CALL_PUTS
            before = m.state_hash()
            await press(pilot, app, "f5")               # puts prints a line, calling putc
            assert app.session.dbg.pc() == AFTER_PUTS and icount(app) > at_call + 100
            await press(pilot, app, "shift+f7")
            assert icount(app) == at_call and app.session.dbg.pc() == CALL_PUTS
            assert m.state_hash() == before
            assert "(back over the call)" in log_text(app)
            await press(pilot, app, "shift+f7")         # no call returned here: one back
            assert icount(app) == at_call - 1
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_f8_goes_back_to_the_previous_hits_of_a_breakpoint(pmode):
    app = make_app(pmode)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            m = app.session.m
            await press(pilot, app, "ctrl+r")
            await enter(pilot, app, f"b {PUTC:#x}")
            hits = []
            for n in range(3):                          # putc: once for every character
                await press(pilot, app, "f5")
                assert app.session.dbg.pc() == PUTC
                hits.append((icount(app), m.state_hash()))
            assert hits[0][0] < hits[1][0] < hits[2][0]
            await press(pilot, app, "f8")
            assert (icount(app), m.state_hash()) == hits[1]
            assert "(reverse) Breakpoint 1" in log_text(app)
            assert "Breakpoint 1" in status(app)
            await press(pilot, app, "f8")
            assert (icount(app), m.state_hash()) == hits[0]
            await press(pilot, app, "f8")               # none before: the recording's start
            assert icount(app) == 0 and app.session.dbg.pc() == 0xFFFFFFF0
            assert "START OF RECORDING" in status(app)
            assert "no earlier stop: at the start of the recording" in log_text(app)
            await press(pilot, app, "f5")               # and forward: the first hit again
            assert (icount(app), m.state_hash()) == hits[0]
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_ctrl_r_toggles_recording_and_record_save(pmode, tmp_path):
    app = make_app(pmode)
    path = tmp_path / "saved.aerorec"

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            dbg = app.session.dbg
            assert "REC" not in status(app) and "icount 0" in status(app)
            await press(pilot, app, "ctrl+r")
            assert dbg.recorder is not None and " REC  rec 0 / 0" in status(app)
            await typed(pilot, app, "si 10")
            assert " REC  rec 10 / 10" in status(app)
            await press(pilot, app, "ctrl+r")           # stop
            assert dbg.recorder is None and dbg.travel is None
            assert "recording stopped: instructions 0 to 10, 1 keyframes" in log_text(app)
            assert "REC" not in status(app) and "icount 10" in status(app)
            await pilot.press("alt+9")
            await pilot.pause()
            pane = app.query_one(TimelinePane)
            assert "STOPPED  the recording of this session covered instructions 0 to 10" in \
                plain(pane.query_one("#timeline-summary"))
            await typed(pilot, app, f"record save {path}")
            assert f"saved the recording (0 to 10) to {path}" in log_text(app)
            assert path.stat().st_size > 0
            await pilot.press("f7")
            await pilot.pause()
            assert NO_RECORDING in log_text(app) and app.session.m.cpu.icount == 10
            await press(pilot, app, "ctrl+r")           # again: a new recording from here
            assert dbg.recorder is not None and " REC  rec 10 / 10" in status(app)
            await enter(pilot, app, "timeline")
            assert "recording: instructions 10 to 10 (recording now); now at 10" in \
                log_text(app)
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_a_restore_fires_no_hooks(pmode):
    """Going back across a mode switch restores an earlier mode: that is not the guest
    switching modes, so it adds no event to the recording and stops no catch."""
    app = make_app(pmode)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await typed(pilot, app, "record start 20000")
            await press(pilot, app, "f5")               # to the end, in paging mode
            assert icount(app) == END
            await enter(pilot, app, "catch mode")
            await typed(pilot, app, "goto 100")         # from keyframe 0: real mode
            assert icount(app) == 100
            events = app.session.dbg.recorder.timeline.events
            assert [e[0] for e in events] == EVENTS
            await press(pilot, app, "f5")
            assert "Catch 1: mode protected -> protected + paging" in log_text(app)
            assert icount(app) == 31_587                # after the MOV CR0 that did it
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_timeline_pane_bar_events_and_keys(pmode):
    app = make_app(pmode)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("alt+9")
            await pilot.pause()
            pane = app.query_one(TimelinePane)
            summary = pane.query_one("#timeline-summary")
            bar = pane.query_one("#timeline-bar")
            assert "NO RECORDING" in plain(summary) and "ctrl+r" in plain(bar)
            await typed(pilot, app, "record start 20000")
            await press(pilot, app, "f5")
            assert icount(app) == END
            await pilot.press("alt+9")
            await pilot.pause()
            assert app.focused.id == "timeline-events"
            text = plain(summary)
            assert "REC  recording now   instructions 0 to 137,576   at 137,576 (100.0%)" in text
            assert "7 keyframes, 7 events" in text
            rows = plain(bar).splitlines()
            width = bar.content_size.width - LABEL
            keyframes = [0, 20_480, 40_960, 61_440, 81_920, 102_400, 122_880]
            assert [k.icount for k in app.session.dbg.recorder.timeline.keyframes] == keyframes
            marks = rows[2][LABEL:]
            assert {i for i, ch in enumerate(marks) if ch == "▲"} == \
                {column(k, 0, END, width) for k in keyframes}
            expect = {}                                 # a shared column: the higher rank
            for n, mark in ((21, "b"), (20, "s"), (31_583, "c"), (118_467, "c"), (34, "m"),
                            (31_586, "m"), (64_619, "x")):
                expect[column(n, 0, END, width)] = mark
            assert {i: ch for i, ch in enumerate(rows[0][LABEL:]) if ch != " "} == expect
            assert rows[1][LABEL:].index("●") == width - 1
            table = pane.query_one("#timeline-events")
            assert table.row_count == 7

            async def key(name, where):
                await press(pilot, app, name)
                assert icount(app) == where, (name, icount(app), where)

            await key("home", 0)
            assert "START OF RECORDING" in status(app)
            await key("right", STEP)
            await key("right", 2 * STEP)
            assert rows != plain(bar).splitlines()      # the position moved on the bar
            assert plain(bar).splitlines()[1][LABEL:].index("●") == \
                column(2 * STEP, 0, END, width)
            await key("shift+right", 31_583)            # the next events: CR3, then paging
            await key("shift+right", 31_586)
            await key("shift+left", 31_583)
            assert f"at {31_583:,} (23.0%)" in plain(summary)
            assert table.cursor_row == 3                # the current event (the CR3 load)
            marked = [i for i in range(table.row_count) if str(table.get_row_at(i)[0])]
            assert marked == [3] and str(table.get_row_at(3)[0]) == "▶"
            await key("end", END)
            await key("left", END - STEP)
            done = app.jobs_done                        # held down: one move, retargeted
            gate = hold_worker(app)
            await pilot.press("left", "left", "left", "left")
            assert app.session.runner.kinds() == ["step", "scrub"]
            assert app.session.runner.last.label == f"goto {END - 5 * STEP}"
            await pilot.pause(0.3)                      # a running refresh: where it goes
            assert f"going to {END - 5 * STEP:,}" in plain(summary)
            gate.set()
            await idle(pilot, app, done + 2)
            assert icount(app) == END - 5 * STEP and app.jobs_done == done + 2
            await press(pilot, app, "g", *"64619", "enter")  # type a count
            assert icount(app) == 64_619 and app.focused is table
            assert "at instruction 64619: 0x00007f52" in log_text(app)
            assert table.cursor_row == 5                # the #PF
            await press(pilot, app, "up", "up", "enter")  # enter: to the event under the cursor
            assert icount(app) == 31_583
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def record_file(settings: dict, path) -> None:
    """A recording of the whole pmode run (keyframes every 20,000 instructions)."""
    m, _ = build_from_settings(settings)
    try:
        rec = Recorder(m, path=str(path), keyframe_every=20_000).start()
        rec.stop(m.run_until())
    finally:
        m.close()


def test_replay_opens_a_recording_file(pmode, tmp_path):
    path = tmp_path / "pmode.aerorec"
    record_file(pmode, path)
    ref, _ = build_from_settings(pmode)                 # a plain forward run, to compare
    ref.run_until(icount=64_619)
    at_pf = ref.state_hash()
    ref.close()
    app = build_app({}, display=False, replay=str(path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            m = app.session.m
            assert f"Replaying {path}: instructions 0 to 137,576" in log_text(app)
            assert " REPLAY  rec 0 / 137,576" in status(app)
            assert app.session.send_serial(b"x\r") == REPLAY_INPUT
            await typed(pilot, app, "goto 64619")
            assert icount(app) == 64_619 and m.state_hash() == at_pf
            assert "at instruction 64619: 0x00007f52" in log_text(app)
            await typed(pilot, app, "goto 200000")
            assert "instruction 200000 is outside the recording (0 to 137576)" in log_text(app)
            assert icount(app) == 64_619
            await press(pilot, app, "f5")               # forward: to the recording's end
            assert icount(app) == END and "END OF RECORDING" in status(app)
            await press(pilot, app, "f5")
            assert icount(app) == END and "at the end of the recording" in log_text(app)
            await press(pilot, app, "f7")
            assert icount(app) == END - 1
            await pilot.press("alt+9")
            await pilot.pause()
            summary = plain(app.query_one("#timeline-summary"))
            assert f"REPLAY  {path}" in summary and "7 keyframes, 7 events" in summary
            await press(pilot, app, "home")
            assert icount(app) == 0
            await typed(pilot, app, "record start")     # a file is replayed, not recorded
            assert "this session replays a recording file; it cannot record" in log_text(app)
            await pilot.press("ctrl+q")
    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_replay_refuses_what_it_cannot_open(tmp_path, capsys, pmode):
    missing = tmp_path / "none.aerorec"
    assert tui_main({}, display=False, replay=str(missing)) == 2
    assert capsys.readouterr().err == f"aero: {missing}: no such file\n"
    path = tmp_path / "pmode.aerorec"
    record_file(pmode, path)
    assert tui_main({"fda": pmode["fda"]}, display=False, replay=str(path)) == 2
    assert capsys.readouterr().err == \
        "aero: --replay rebuilds the recorded machine: --fda does not go with it\n"


def test_while_travelling_input_waits_and_the_position_is_where_it_started(pmode):
    """Host input must not land in the past: while a time travel job re-executes, a line typed
    for COM1 is refused and the guest window's input is held back until it is done
    (``TimeTravelControl.input_gate``); a recording file refuses input.  Meanwhile the status
    bar and the Timeline show the position the job started from, not the states it passes."""
    m, _ = build_from_settings(pmode)
    s = Session(m)
    try:
        assert s.travel.input_gate() == "pass" and s.send_serial(b"") is None
        assert s.travel.recording() is None
        s.dbg.record_start()
        s.dbg.cont(instructions=1000)
        gate = threading.Event()
        s.runner.submit(s._job("rcont", s.travel._run(lambda: gate.wait(20), True),
                               "reverse-continue"))
        t0 = time.monotonic()
        while s.runner.current is None and time.monotonic() - t0 < 10:
            time.sleep(0.005)
        r = s.travel.recording()
        assert (r.kind, r.at, r.head, r.searching, r.moving) == \
            ("live", 1000, 1000, "reverse-continue", False)
        assert s.travel.busy_travelling and s.pause_refused() and not s.pause()
        assert s.travel.input_gate() == "hold" and s.send_serial(b"x") == TRAVEL_INPUT
        disp = DisplayThread(m, input_gate=s.travel.input_gate)
        sent = []
        disp.submit("key-1", sent.append)
        disp.submit("key-2", sent.append)
        assert sent == [] and list(disp.held) == ["key-1", "key-2"]
        gate.set()
        t0 = time.monotonic()
        while s.running and time.monotonic() - t0 < 10:
            time.sleep(0.005)
        assert s.travel.recording().searching is None
        disp.submit(None, sent.append)                  # the display loop's next turn
        assert sent == ["key-1", "key-2"] and not disp.held
        drop = DisplayThread(m, input_gate=lambda: "drop")
        drop.submit("key-3", sent.append)
        assert sent == ["key-1", "key-2"] and drop.dropped == 1
    finally:
        s.close()
        m.close()


def test_timeline_tab_snapshot(snap_compare, pmode):
    """The Timeline tab over pmode recorded to its end, at the #PF: the bar (events, position,
    keyframes), the event list with the current event marked, the status bar's REC."""
    pytest.importorskip("pytest_textual_snapshot")
    app = make_app(pmode)

    async def run_before(pilot):
        await pilot.pause()
        await typed(pilot, app, "record start 20000")
        await press(pilot, app, "f5")
        await typed(pilot, app, "goto 64619")
        await pilot.press("alt+9")
        await pilot.pause()
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        app.close()
