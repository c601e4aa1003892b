"""The Aero TUI application and ``main()`` (what ``aero tui`` runs).

Layout: a row of tabs over the panes (Code: disassembly, memory and stack on the left, the
registers on the right; Breakpoints; Tables; Paging; Devices; Serial; Events; Profile;
Timeline; x87), then the command line with its log, a status bar and the key footer.
``aero.tui.keys`` holds the key bindings; ``aero.tui.travel`` the time travel keys' jobs.

Refresh policy: when a run stops, the worker posts ``RunDone``; the app then refreshes every
visible pane at once, from a consistent state (the worker is idle).  Steps coming faster than
the screen can show them (F11 held down) refresh at most 20 times a second, and always after
the last one (within 1/20 s).  While the guest runs, a
timer refreshes the visible panes four times a second (the state may be torn for a moment;
panes that cost more, such as the descriptor tables, say how often with ``RUNNING_REFRESH``)
and drains the output sinks; while a time travel job re-executes the recording only the status
bar and the Timeline are refreshed (the machine passes through states that are not the
destination).  Switching tabs refreshes the newly visible panes; the profile pane's
``LiveProfile`` runs only while its tab is shown.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time

from textual.app import App
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Input, TabbedContent, TabPane

from ..build import build_from_settings, make_sink
from ..config import ConfigError
from ..debug.debugger import Debugger, DebugError, Stop
from . import keys
from .display import DisplayThread
from .help import HelpScreen
from .panes.breakpoints import BreakpointsPane
from .panes.command import CommandPane
from .panes.devices import DevicesPane
from .panes.disassembly import DisassemblyPane
from .panes.events import EventsPane
from .panes.memory import MemoryPane
from .panes.paging import PagingPane
from .panes.profile import ProfilePane
from .panes.registers import RegistersPane
from .panes.serial import SerialPane
from .panes.stack import StackPane
from .panes.status import StatusBar
from .panes.tables import TablesPane
from .panes.x87 import FpuPane
from .panes.timeline import TimelinePane
from .session import Session
from .sinks import ByteSink, TerminalBuffer

TICK = 0.25                 # seconds between refreshes while the guest runs
STEP_REFRESH = 1 / 20       # at most this often while steps come in quick succession
# what gets the focus when a tab opens (the Code tab keeps the command line)
TAB_FOCUS = {"breakpoints": "#breakpoints-table", "tables": "#gdt", "paging": "#tlb",
             "devices": "#devices-pane", "serial": "#serial-input", "events": "#events-log",
             "timeline": "#timeline-events"}
STEP_KINDS = ("step", "rstep", "scrub")     # jobs that come in quick succession (keys held)
IGNORED_RUN_SETTINGS = ("max_instructions", "timeout", "realtime", "screenshot", "headless",
                        "state_hash", "save_state", "at_instruction")


class RunDone(Message):
    """A job of the worker thread finished (posted from that thread)."""

    def __init__(self, job, result):
        super().__init__()
        self.job = job
        self.result = result


class AeroApp(App):
    """The TUI over a ``Session`` (see the module docstring)."""

    CSS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aero.tcss")
    TITLE = "Aero"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = keys.bindings()

    def __init__(self, session: Session, display: DisplayThread | None = None,
                 notes=(), tick: float = TICK):
        super().__init__()
        self.session = session
        self.display_thread = display
        self.notes = list(notes)
        self.tick = tick
        self.com1 = TerminalBuffer()
        self.debugcon = TerminalBuffer() if session.debugcon is not None else None
        self._display_noted = False
        self._tab = "code"
        self.jobs_done = 0              # worker results handled (tests and measurements)
        self._last_refresh = 0.0
        self._pending_refresh = None    # a timer for a refresh held back while stepping fast
        self._pane_times: dict = {}     # pane id -> when it was last refreshed
        session.on_done = self._from_worker

    # -- layout ------------------------------------------------------------------------------------
    def compose(self):
        with TabbedContent(id="tabs", initial="code"):
            with TabPane("Code", id="code"):
                with Horizontal(id="code-main"):
                    with Vertical(id="code-left"):
                        yield DisassemblyPane(id="disassembly")
                        with Horizontal(id="code-bottom"):
                            yield MemoryPane(id="memory")
                            yield StackPane(id="stack")
                    yield RegistersPane(id="registers")
            with TabPane("Breakpoints", id="breakpoints"):
                yield BreakpointsPane(id="breakpoints-pane")
            with TabPane("Tables", id="tables"):
                yield TablesPane(id="tables-pane")
            with TabPane("Paging", id="paging"):
                yield PagingPane(id="paging-pane")
            with TabPane("Devices", id="devices"):
                yield DevicesPane(id="devices-pane")
            with TabPane("Serial", id="serial"):
                yield SerialPane(self.com1, self.debugcon, id="serial-pane")
            with TabPane("Events", id="events"):
                yield EventsPane(id="events-pane")
            with TabPane("Profile", id="profile"):
                yield ProfilePane(id="profile-pane")
            with TabPane("Timeline", id="timeline"):
                yield TimelinePane(id="timeline-pane")
            with TabPane("x87", id="x87"):
                yield FpuPane(id="x87-pane")
        yield CommandPane(self.session.completions, id="command")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        if self.display_thread is not None and self.display_thread.opened:
            status.display_note = "display: window"
        self.query_one(CommandPane).input.focus()
        if self.is_headless:                # tests: a steady cursor keeps screenshots stable
            for inp in self.query(Input):
                inp.cursor_blink = False
        self.set_interval(self.tick, self._tick)
        self.call_after_refresh(self._first_refresh)

    def _first_refresh(self) -> None:
        """Once the layout is known: the greeting and notes, and every visible pane."""
        for note in self.notes:
            self.log_line(note, "yellow")
        dbg = self.session.dbg
        self.log_line(f"Aero TUI: paused at {dbg.format_addr(dbg.pc())}, "
                      f"{self.session.m.cpu.mode} mode. F1 lists the keys, help the commands.",
                      "bold")
        if self.session.travel.path is not None:
            self.log_line(f"Replaying {self.session.travel.path}: instructions "
                          f"{dbg.travel.start:,} to {dbg.travel.head:,}. F5 runs to its end, "
                          "F7/F8 go back; the Timeline tab: alt+9, or shift+F6 from Code.",
                          "bold")
        self.refresh_panes()

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_panes)

    # -- refreshing --------------------------------------------------------------------------------
    def visible_panes(self) -> list:
        """The panes of the tab shown now."""
        pane = self.query_one(TabbedContent).active_pane
        return list(pane.query(".pane")) if pane is not None else []

    def _drain(self) -> bool:
        s = self.session
        got = False
        if s.serial is not None:
            data = s.serial.take()
            if data:
                self.com1.feed(data)
                got = True
        if s.debugcon is not None:
            data = s.debugcon.take()
            if data:
                self.debugcon.feed(data)
                got = True
        return got

    def refresh_panes(self, running: bool | None = None) -> None:
        """Refresh the visible panes and the status bar (``running``: the guest may be
        running, so reads may be torn; default: whether a job runs)."""
        s = self.session
        if running is None:
            running = s.running
        if not running:
            self._last_refresh = time.monotonic()
        self._drain()
        try:
            panes = self.visible_panes()
            status = self.query_one(StatusBar)
        except NoMatches:
            return                      # the app is closing: its screen is gone
        now = time.monotonic()
        for pane in panes:
            every = getattr(pane, "RUNNING_REFRESH", 0.0)
            if running and every and now - self._pane_times.get(pane.id, 0.0) < every:
                continue                # a costly pane, refreshed less often while running
            self._pane_times[pane.id] = now
            pane.update_from(s, running)
        status.update_from(s, running)

    def _tick(self) -> None:
        try:
            self._refresh_tick()
        except NoMatches:
            pass                        # the app is closing: its screen is gone

    def _refresh_tick(self) -> None:
        s = self.session
        got = self._drain()
        if s.travel.busy_travelling:
            self._refresh_travelling()
        elif s.running:
            self.refresh_panes(True)
        elif got and self._tab == "serial":
            self.refresh_panes(False)
        d = self.display_thread
        if d is not None and d.closed and not self._display_noted:
            self._display_noted = True
            self.query_one(StatusBar).display_note = ""
            why = f" ({d.error})" if d.error else ""
            self.log_line(f"the display window was closed{why}", "yellow")

    def _refresh_travelling(self) -> None:
        """While time travel re-executes: the status bar and the Timeline (where it goes)."""
        self.query_one(StatusBar).update_from(self.session, True)
        if self._tab == "timeline":
            self.query_one(TimelinePane).update_from(self.session, True)

    # -- worker results ----------------------------------------------------------------------------
    def _from_worker(self, job, result) -> None:
        self.post_message(RunDone(job, result))

    def on_run_done(self, message: RunDone) -> None:
        try:
            self._run_done(message)
        except NoMatches:
            pass                        # the app is closing: its screen is gone

    def _run_done(self, message: RunDone) -> None:
        s = self.session
        job, result = message.job, message.result
        if job.kind != "point" and not (job.kind == "record" and s.running):
            s.stopped()
            self.query_one(DisassemblyPane).follow = True   # a stop shows where it stopped
        self.jobs_done += 1
        if isinstance(result, DebugError):
            self.log_line(f"error: {result}", "red")
        elif isinstance(result, Exception):
            self.log_line(f"internal error in {job.label!r}: {type(result).__name__}: "
                          f"{result}", "bold red")
        elif isinstance(result, Stop):
            self.log_line(s.describe(result, job.kind, job.extra.get("verbose", False)))
        elif isinstance(result, str):
            self.log_line(result)
        if s.running:
            return                      # more work queued: its result refreshes
        if job.kind in STEP_KINDS:
            self._refresh_soon()
        else:
            self.refresh_panes(False)

    @property
    def refresh_pending(self) -> bool:
        """Whether a refresh held back while stepping fast is still to come."""
        return self._pending_refresh is not None

    def _refresh_soon(self) -> None:
        """Refresh after a step: at once, unless the last refresh was less than STEP_REFRESH
        ago (steps arriving faster than the screen can show them); then at that time."""
        wait = self._last_refresh + STEP_REFRESH - time.monotonic()
        if wait <= 0:
            self.refresh_panes(False)
        elif self._pending_refresh is None:
            self._pending_refresh = self.set_timer(wait, self._held_refresh)

    def _held_refresh(self) -> None:
        self._pending_refresh = None
        if not self.session.running:    # else the run's own result refreshes
            self.refresh_panes(False)

    def log_line(self, text: str, style: str = "") -> None:
        """Write to the command log."""
        self.query_one(CommandPane).write(text, style)

    # -- commands ----------------------------------------------------------------------------------
    async def on_command_pane_submitted(self, message: CommandPane.Submitted) -> None:
        line = message.line.strip()
        word, _, rest = line.partition(" ")
        word = word.lower()
        s = self.session
        if word in ("view", "mem"):
            self._view(word, rest.strip())
            return
        out = s.execute(line)
        if out.quit:
            await self.action_quit()
            return
        if out.text:
            self.log_line(out.text, "red" if out.error else "")
        if word in ("help", "h", "?") and not rest:
            self.log_line("view ADDR   show ADDR in the disassembly\n"
                          "mem ADDR    show ADDR in the memory view (an expression: ds:esi "
                          "follows ESI)")
        if out.changed and not s.running:
            self.refresh_panes(False)
        elif not out.queued:
            self.query_one(StatusBar).update_from(s, s.running)

    def _view(self, word: str, rest: str) -> None:
        if not rest:
            self.log_line(f"{word} ADDR", "red")
            return
        if word == "mem":
            self.action_show_tab("code")
            self.query_one(MemoryPane).show(rest)
            return
        try:
            addr = self.session.dbg.address(rest)
        except DebugError as e:
            self.log_line(str(e), "red")
            return
        self.show_code(addr)

    def show_code(self, address: int) -> None:
        """Show ``address`` in the disassembly (the Code tab)."""
        self.action_show_tab("code")
        self.query_one(DisassemblyPane).show_address(address)

    def point_outcome(self, out) -> None:
        """Show what a breakpoint change did, and refresh when it is done."""
        if out.text:
            self.log_line(out.text, "red" if out.error else "")
        if not out.queued:
            self.refresh_panes()

    def travel_outcome(self, why) -> None:
        """Show why a time travel key did nothing (a string), or a command's outcome."""
        if isinstance(why, str):
            self.log_line(why, "red")
        elif why is not None:
            self.point_outcome(why)
        else:
            self.query_one(StatusBar).update_from(self.session, True)

    def set_event_log(self, on: bool) -> None:
        """Turn the event log on or off (the Events pane's switch)."""
        self.point_outcome(self.session.set_event_log(on))

    # -- actions -----------------------------------------------------------------------------------
    def _started(self, why: str | None) -> None:
        if why:
            self.log_line(why, "red")
        else:
            self.query_one(StatusBar).update_from(self.session, True)

    def action_cont(self) -> None:
        self._started(self.session.cont())

    def action_step_into(self) -> None:
        self._started(self.session.step())

    def action_step_over(self) -> None:
        self._started(self.session.next())

    def action_step_out(self) -> None:
        self._started(self.session.finish())

    def action_reverse_step(self) -> None:
        self._started(self.session.travel.reverse_step())

    def action_reverse_next(self) -> None:
        self._started(self.session.travel.reverse_next())

    def action_reverse_cont(self) -> None:
        self._started(self.session.travel.reverse_continue())

    def action_toggle_record(self) -> None:
        self.point_outcome(self.session.travel.toggle_recording())

    def _cursor(self) -> int:
        pane = self.query_one(DisassemblyPane)
        return pane.cursor if pane.cursor is not None else self.session.dbg.pc()

    def action_run_to_cursor(self) -> None:
        self._started(self.session.until(self._cursor()))

    def action_toggle_break(self) -> None:
        self.point_outcome(self.session.toggle_breakpoint(self._cursor()))

    def action_pause(self) -> None:
        why = self.session.pause_refused()
        if why:
            self.log_line(why, "yellow")
        elif not self.session.pause():
            self.log_line("(the guest is not running)", "grey50")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        target = TAB_FOCUS.get(tab)
        if tabs.active == tab and target is not None:
            self.query_one(target).focus()  # shown already (the focus was elsewhere)
            return
        # the focus leaves the old tab first: a focused widget in a hidden pane hands the
        # focus on within that pane, and a pane getting the focus is made the active tab
        self.action_focus_command()
        tabs.active = tab

    def _cycle(self, delta: int) -> None:
        ids = [t for t, _ in keys.TABS]
        now = self.query_one(TabbedContent).active
        i = ids.index(now) if now in ids else 0
        self.action_show_tab(ids[(i + delta) % len(ids)])

    def action_next_tab(self) -> None:
        self._cycle(1)

    def action_previous_tab(self) -> None:
        self._cycle(-1)

    def action_focus_command(self) -> None:
        self.query_one(CommandPane).input.focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        new = event.pane.id
        if new != self.query_one(TabbedContent).active:
            return                      # a later switch overtook this one (keys typed fast)
        old, self._tab = self._tab, new
        if old == "profile" and new != "profile":
            self.point_outcome(self.session.stop_profile())
        if new == "profile" and old != "profile":
            self.point_outcome(self.session.start_profile())
        target = TAB_FOCUS.get(new)
        if target is not None:
            self.query_one(target).focus()
        elif new == "code" and old != "code":
            self.action_focus_command()
        self.call_after_refresh(self.refresh_panes)

    async def action_quit(self) -> None:
        self.shutdown()
        self.exit(0)

    def shutdown(self) -> None:
        """Stop the guest, the worker and the display (idempotent)."""
        self.session.close()
        if self.display_thread is not None:
            self.display_thread.stop()

    def close(self) -> None:
        """``shutdown``, then release the machine and the host sinks."""
        self.shutdown()
        self.session.m.close()
        if self.session.serial is not None:
            self.session.serial.close()
        self.session.travel.close()


def _host_sinks(settings: dict, notes: list):
    """Replace host output that would write on the TUI's terminal with sinks it shows."""
    target = settings.get("serial")
    tee = None
    if callable(target):
        tee = target
    elif target not in (None, "none", "stdio"):
        tee = make_sink(target, "--serial")
    com1 = ByteSink(tee)
    settings["serial"] = com1
    debugcon = None
    for key in ("debugcon", "firmware_log"):
        if settings.get(key) == "stdio":
            debugcon = debugcon or ByteSink()
            settings[key] = debugcon
    for key in IGNORED_RUN_SETTINGS:
        if settings.pop(key, None) not in (None, False):
            notes.append(f"--{key.replace('_', '-')} does not apply to the TUI (ignored)")
    return com1, debugcon


class SetupError(ValueError):
    """Bad settings or symbols: one line, for ``aero: ...`` and exit status 2."""


HOST_SETTINGS = ("serial", "debugcon", "firmware_log")     # what --replay takes from the user


def _open_replay(path: str, settings: dict):
    """(machine, time travel, recording file) for ``--replay``: the recorded machine rebuilt,
    in its first keyframe, with the host output of ``settings`` (anything else: SetupError)."""
    from ..trace.replay import open_recording   # noqa: PLC0415 (only with --replay)
    other = [k for k in settings if k not in HOST_SETTINGS]
    if other:
        raise SetupError(f"--replay rebuilds the recorded machine: --"
                         f"{other[0].replace('_', '-')} does not go with it")
    try:
        m, rec, _tl, tt = open_recording(path, settings)
    except ConfigError as e:                    # RecordingError is one
        raise SetupError(str(e)) from None
    return m, tt, rec


def build_app(settings: dict, symbols=(), display: bool = True,
              app_class: type = AeroApp, replay: str | None = None) -> AeroApp:
    """The app (an ``app_class``) over the machine the settings describe (the built-in demo
    when they name no guest), paused at its first instruction; not yet running.  ``replay``:
    a recording file instead (``aero tui --replay FILE``), the machine at its first
    instruction (only host output settings apply).  ``SetupError`` for bad settings, symbols
    or recording."""
    settings = dict(settings)
    notes: list[str] = []
    holder: dict = {}
    if settings.get("post_codes") is True:
        def post(v, holder=holder):
            dbg = holder.get("dbg")
            if dbg is not None:
                dbg.events.append((dbg.cpu.icount, f"POST {v:02x}"))
        settings["post_codes"] = post
    tt = recording = None
    try:
        com1, debugcon = _host_sinks(settings, notes)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            if replay is not None:
                m, tt, recording = _open_replay(replay, settings)
            else:
                m, _run = build_from_settings(settings)
    except ConfigError as e:
        raise SetupError(str(e)) from None
    notes += [ln for ln in err.getvalue().splitlines() if ln.strip()]
    dbg = Debugger(m)
    holder["dbg"] = dbg
    if tt is not None:
        dbg.attach_recording(tt)
    try:
        for spec in symbols:
            path, _, bias = spec.partition("@")
            n = dbg.load_symbols(path, int(bias, 0) if bias else 0)
            notes.append(f"{n} symbols from {path}")
    except (DebugError, ValueError) as e:
        m.close()
        if recording is not None:
            recording.close()
        raise SetupError(f"--symbols: {e}") from None
    session = Session(m, dbg, serial=com1, debugcon=debugcon, recording_path=replay)
    session.travel.file = recording
    disp = None
    if display:
        disp = DisplayThread(m, title="Aero TUI", input_gate=session.travel.input_gate)
        disp.start()
        if disp.reason:
            notes.append(disp.reason.removeprefix("aero: "))
    else:
        notes.append("no display window (--no-display)")
    return app_class(session, display=disp, notes=notes)


def main(settings: dict, symbols=(), display: bool = True, replay: str | None = None) -> int:
    """Run the TUI (``build_app``) until the user quits; the exit status: 0, or 2 for bad
    settings, symbols or recording (one line on stderr, before the TUI starts)."""
    try:
        app = build_app(settings, symbols, display, replay=replay)
    except SetupError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    try:
        app.run()
    finally:
        app.close()
    return 0
