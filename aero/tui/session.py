"""A debugging session for the TUI: the machine, its ``Debugger`` and ``Commands``, the worker
that runs it, and the policy of where each command runs.  No Textual here: the app calls these
methods from its UI thread and receives finished runs through ``on_done`` (called from the
worker thread; the app turns it into a message).

Where a command line runs (``execute``):

* **run commands** (``stepi``, ``nexti``, ``finish``, ``until``, ``continue``) and **time
  travel** (``reverse-stepi``, ``reverse-nexti``, ``reverse-continue``, ``goto``,
  ``who-wrote``, ``record start|stop|save``; see ``aero.tui.travel``): in the worker thread,
  queued; ``continue`` without a count is *resumable* (see ``aero.tui.runner``);
* **read-only commands** (``print``, ``x``, ``info``, ``registers``, ``disassemble``,
  ``backtrace``, ``help``, ``events N``): at once on the UI thread, even while the guest runs
  (then the state they show may be torn for a moment, as the panes' may);
* **point commands** (``break``, ``watch``, ``catch``, ``delete``, ``enable``, ``condition``,
  ``ignore``, ``magic``, ``sym``, ``events on|off``): at once when the machine is stopped;
  during a continue they are injected (the run pauses, they run in the worker, the run goes
  on); during other runs (``finish``, ``until``, ``c N``, searches backwards) they are
  refused; ``record start|stop`` (Ctrl+R) are injected the same way, but always run in the
  worker;
* everything else (``set``, ``snapshot``/``restore``/``state``): only while stopped, at once.

``pause`` is the TUI's own command (as F12 and Ctrl+C; time travel jobs cannot be paused);
``quit`` is left to the app, and so are ``view ADDR`` and ``mem ADDR``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..debug.commands import Commands
from ..debug.debugger import Debugger, DebugError, Stop
from ..inputs import SerialInput
from ..profile.live import LiveProfile
from .codeview import CodeView
from .runner import Job, Runner
from .travel import RECORD_WORDS, TRAVEL_WORDS, TimeTravelControl

RUN_WORDS = {"stepi": "step", "si": "step", "s": "step", "step": "step", "nexti": "next",
             "ni": "next", "n": "next", "next": "next", "finish": "finish", "until": "until",
             "advance": "until", "continue": "cont", "c": "cont", "cont": "cont"}
READ_WORDS = frozenset(("print", "p", "x", "xp", "info", "registers", "regs", "r",
                        "disassemble", "disas", "u", "backtrace", "bt", "help", "h", "?"))
POINT_WORDS = frozenset(("break", "b", "tbreak", "tb", "watch", "rwatch", "awatch", "catch",
                         "delete", "d", "enable", "disable", "condition", "ignore", "magic", "sym",
                         "symbols", "events"))
STATE_WORDS = frozenset(("set", "snapshot", "restore", "state"))
QUIT_WORDS = frozenset(("quit", "q", "exit"))
PAUSE_WORDS = frozenset(("pause", "interrupt"))
TUI_HELP = "pause   pause the running guest (F12 or Ctrl+C)"   # the app adds view and mem
BUSY = "the guest is running: pause it first (F12 or Ctrl+C)"
TRAVELLING = "time travel cannot be paused: it ends by itself"
TRAVEL_BUSY = "time travel is re-executing the recording: wait for it to end (it cannot be paused)"
# jobs that end by themselves at once (time travel moves re-execute one keyframe interval)
QUICK_KINDS = frozenset(("step", "point", "rstep", "scrub", "goto", "record"))
QUIET = {"step": ("step",), "next": ("step",), "": ("step",), "rstep": ("step",),
         "scrub": ("step", "goto")}    # job kind -> stop reasons the log leaves out
ENDED = ("exit", "shutdown", "halted", "error", "timeout")
_POINT_WHAT = re.compile(r"^(linear|physical) (0x[0-9a-fA-F]+)")


@dataclass
class Outcome:
    """What a command line did: ``text`` to show now (None: nothing yet), ``error`` (the
    text is an error), ``queued`` (a job will report later), ``quit`` (the user asked)."""
    text: str | None = None
    error: bool = False
    queued: bool = False
    quit: bool = False
    changed: bool = False           # the machine's state may have changed (refresh the panes)


@dataclass
class BreakpointRow:
    """A debugger point as the TUI lists it."""
    id: int
    kind: str
    enabled: bool
    what: str
    condition: str | None
    hits: int
    ignore: int
    temporary: bool
    address: int | None             # breakpoints: their address
    physical: bool


class Session:
    def __init__(self, machine, debugger: Debugger | None = None, on_done=None,
                 serial=None, debugcon=None, recording_path: str | None = None):
        self.m = machine
        self.dbg = debugger if debugger is not None else Debugger(machine)
        self.cmds = Commands(self.dbg)
        self.code = CodeView(self.dbg)
        self.code.note(self.dbg.pc())
        self.serial = serial            # ByteSink of COM1 (or None)
        self.debugcon = debugcon        # ByteSink of port E9h / 402h shown in the TUI (or None)
        self.on_done = on_done          # callable(job, result), from the worker thread
        self.events_on = False
        self.epoch = 0                  # bumped at every stop (and state change): see panes
        self.last_stop: Stop | None = None
        self.ended: Stop | None = None  # the last stop, when it ended the guest's run
        self.profile = None             # the LiveProfile while the profile pane is shown
        self.runner = Runner(self.dbg, self._finished)
        self.travel = TimeTravelControl(self, recording_path)

    # -- state -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a job runs or waits in the worker."""
        return self.runner.busy

    def _finished(self, job: Job, result) -> None:
        if isinstance(result, Stop):
            self.last_stop = result
            self.ended = result if result.reason in ENDED else None
        if self.on_done is not None:
            self.on_done(job, result)

    def stopped(self) -> None:
        """The app saw a run end (UI thread): later pane refreshes compare with this stop."""
        self.epoch += 1

    # -- running ---------------------------------------------------------------------------------
    def _job(self, kind: str, go, label: str, resumable: bool = False) -> Job:
        code, dbg = self.code, self.dbg

        def fn():
            code.note(dbg.pc())
            try:
                return go()
            finally:
                code.note(dbg.pc())
        return Job(kind, fn, label, resumable)

    def busy_reason(self) -> str:
        """Why a job cannot start now: a run to pause first, or time travel to wait for."""
        return TRAVEL_BUSY if self.travel.busy_travelling else BUSY

    def _submit(self, kind: str, go, label: str, verbose: bool = False) -> str | None:
        """Queue a run; None, or why not (one line).  ``verbose``: the log shows where it
        stopped even when such jobs are quiet (a typed command, not a key)."""
        if any(k not in QUICK_KINDS for k in self.runner.kinds()):
            return self.busy_reason()
        job = self._job(kind, go, label)
        job.extra["verbose"] = verbose
        self.runner.submit(job)
        return None

    def cont(self) -> str | None:
        """Continue (F5): runs until a point, the guest's end or a pause."""
        if self.running:
            return self.busy_reason()
        runner, dbg = self.runner, self.dbg
        self.runner.submit(self._job("cont", lambda: runner.continue_until_stopped(dbg.cont),
                                     "continue", resumable=True))
        return None

    def step(self) -> str | None:
        """Step one instruction (F11)."""
        return self._submit("step", self.dbg.step, "step")

    def next(self) -> str | None:
        """Step over (F10)."""
        return self._submit("next", self.dbg.next, "next")

    def finish(self) -> str | None:
        """Step out (shift+F11)."""
        return self._submit("finish", self.dbg.finish, "finish")

    def until(self, address: int) -> str | None:
        """Run to an address (F4 at the disassembly cursor)."""
        return self._submit("until", lambda: self.dbg.until(address), f"until {address:#x}")

    def pause(self) -> bool:
        """Pause a run in progress (F12, Ctrl+C); False when nothing runs, or when time travel
        does (``pause_refused``: a stop would cut a re-execution short)."""
        if self.pause_refused():
            return False
        return self.runner.pause()

    def pause_refused(self) -> str | None:
        """Why the job running now cannot be paused (time travel), or None."""
        return TRAVELLING if self.travel.busy_travelling else None

    # -- points ----------------------------------------------------------------------------------
    def _point_op(self, fn, label: str, kind: str = "point", now: bool = True) -> Outcome:
        """Run ``fn() -> str`` now when stopped (unless not ``now``: then in the worker),
        else injected into the run."""
        if not self.running and now:
            try:
                return Outcome(fn() or None, changed=True)
            except DebugError as e:
                return Outcome(str(e), error=True)
        job = self._job(kind, fn, label) if kind != "point" else Job(kind, fn, label)
        if all(k in QUICK_KINDS for k in self.runner.kinds()):
            self.runner.submit(job)         # behind quick jobs: wait for them, in order
            return Outcome(queued=True)
        if self.runner.inject(job):
            return Outcome(queued=True)
        return Outcome(self.busy_reason(), error=True)

    def breakpoints(self) -> list[BreakpointRow]:
        """The debugger's points, in id order."""
        rows = []
        for p in list(self.dbg.points.values()):
            m = _POINT_WHAT.match(p.what) if p.kind == "break" else None
            rows.append(BreakpointRow(p.id, p.kind, p.enabled, p.what, p.condition, p.hits,
                                      p.ignore, p.temporary, int(m.group(2), 16) if m else None,
                                      bool(m and m.group(1) == "physical")))
        return rows

    def breakpoint_at(self, address: int) -> BreakpointRow | None:
        """The linear breakpoint at ``address``, if there is one."""
        for row in self.breakpoints():
            if row.address == address and not row.physical:
                return row
        return None

    def toggle_breakpoint(self, address: int) -> Outcome:
        """F9: delete the breakpoint at a linear address, or set one there."""
        dbg = self.dbg

        def fn():
            row = self.breakpoint_at(address)
            if row is not None:
                dbg.delete(row.id)
                return f"Deleted breakpoint {row.id} at {dbg.format_addr(address)}"
            p = dbg.break_at(address)
            return f"Breakpoint {p.id} at {p.what}"
        return self._point_op(fn, f"toggle breakpoint {address:#x}")

    def enable_point(self, pid: int, on: bool) -> Outcome:
        return self._point_op(lambda: self.dbg.enable(pid, on), f"enable {pid} {on}")

    def delete_point(self, pid: int) -> Outcome:
        return self._point_op(lambda: self.dbg.delete(pid), f"delete {pid}")

    def set_event_log(self, on: bool) -> Outcome:
        """Record interrupts, exceptions, mode switches and BIOS calls (``Debugger.events``)."""
        def fn():
            self.dbg.log_events(on)
            self.events_on = on
            return f"event log {'on' if on else 'off'}"
        return self._point_op(fn, f"events {'on' if on else 'off'}")

    def start_profile(self) -> Outcome:
        """Start a ``LiveProfile`` (its hooks are added while the CPU thread is stopped)."""
        def fn():
            if self.profile is None:
                p = LiveProfile(self.m, symbols=self.dbg.symbols)
                p.start()
                self.profile = p
            return ""
        return self._point_op(fn, "profile on")

    def stop_profile(self) -> Outcome:
        """Stop the ``LiveProfile`` (removing its hooks while the CPU thread is stopped)."""
        def fn():
            p, self.profile = self.profile, None
            if p is not None:
                p.stop()
            return ""
        return self._point_op(fn, "profile off")

    # -- the command line ------------------------------------------------------------------------
    def execute(self, line: str) -> Outcome:
        """Run one command line (see the module docstring for where)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return Outcome()
        m = re.match(r"([A-Za-z?][A-Za-z?-]*)(/\S*)?\s*(.*)$", line)
        word = m.group(1).lower() if m else ""
        rest = m.group(3).strip() if m else ""
        if word in QUIT_WORDS:
            return Outcome(quit=True)
        if word in PAUSE_WORDS:
            why = self.pause_refused()
            if why:
                return Outcome(why, error=True)
            return Outcome(None if self.pause() else "the guest is not running")
        if word in RUN_WORDS:
            if RUN_WORDS[word] == "cont" and not rest:
                why = self.cont()
            else:
                why = self._submit(RUN_WORDS[word], lambda: self.cmds.execute(line), line)
            return Outcome(why, error=True) if why else Outcome(queued=True)
        if word in TRAVEL_WORDS:
            why = self.travel.command(line, word)
            return Outcome(why, error=True) if why else Outcome(queued=True)
        if word in RECORD_WORDS:
            return self.travel.record_command(line, rest)
        if word == "events" and rest.lower() in ("on", "off"):
            return self.set_event_log(rest.lower() == "on")
        if word in READ_WORDS or word == "events":
            return self._now(line, word)
        if word in POINT_WORDS:
            return self._point_op(lambda: self.cmds.execute(line), line)
        if self.running:
            return Outcome(self.busy_reason(), error=True)
        out = self._now(line, word)
        if word in STATE_WORDS and not out.error:
            self.epoch += 1
            self.ended = None               # a restored state may run again
            out.changed = True
        return out

    def _now(self, line: str, word: str) -> Outcome:
        try:
            text = self.cmds.execute(line)
        except DebugError as e:
            return Outcome(str(e), error=True)
        if word in ("help", "h", "?") and not line.split()[1:]:
            text = f"{text}\n{TUI_HELP}"
        return Outcome(text or None, changed=word not in READ_WORDS)

    def describe(self, stop: Stop, kind: str = "", verbose: bool = False) -> str:
        """A stop as the command log shows it; quiet when a step or a step over (job
        ``kind``) ended as steps do, unless ``verbose`` (a typed command)."""
        if not verbose and stop.reason in QUIET.get(kind, ()):
            return ""
        lines = [stop.message] if stop.message else []
        if stop.reason not in ENDED:
            pc = self.dbg.pc()
            lines.append(f"=> {self.dbg.format_addr(pc)}:  {self.code.decode(pc).text}")
        return "\n".join(lines)

    # -- input and completion ----------------------------------------------------------------------
    def send_serial(self, data: bytes) -> str | None:
        """Bytes typed for COM1's receive line (thread-safe; taken at the next boundary).
        None, or why they were not sent: a recording file replays its own input, and input
        taken while time travel re-executes would land somewhere in the past."""
        why = self.travel.input_refused()
        if why:
            return why
        if data:
            self.m.inputs.submit(SerialInput(bytes(data)))
        return None

    def completions(self, prefix: str) -> list[str]:
        """Command words and symbol names starting with ``prefix``."""
        from ..debug.commands import ALIASES, HELP
        words = sorted(set(HELP) | set(ALIASES) | PAUSE_WORDS | {"view", "mem"})
        out = [w for w in words if w.startswith(prefix)] if prefix else []
        return out + self.dbg.symbols.names(prefix)[:200]

    def close(self) -> None:
        """Stop the worker (pausing a run in progress) and the profile."""
        self.runner.close()
        if self.profile is not None:
            self.profile.stop()
            self.profile = None
