"""The TUI's side of time travel (``aero.debug.reverse``): the reverse keys and commands as
worker jobs, moves coalesced while a key is held, recording on and off, and the recording as the
Timeline pane and the status bar show it.  No Textual here.

Every time travel operation runs the machine (it restores a keyframe and re-executes), so each
is a job of the worker thread, as the run commands are:

* **quick** jobs (``rstep``: F7, ``reverse-stepi``; ``scrub``: the Timeline pane's keys;
  ``goto``; ``record``) re-execute at most one keyframe interval and queue behind steps;
* **searches** (``rnext``: shift+F7; ``rcont``: F8; ``search``: ``who-wrote``) re-execute the
  recording backwards window by window and, like ``finish`` or ``until``, refuse other jobs
  while they run.

A time travel job cannot be paused: a stop request would cut one window of a search short and
the search would go on with a wrong count (see ``Session.pause_refused``).

Coalescing.  A key held down repeats some 30 times a second, faster than a move re-executes.
While the last job queued is a move of the same kind that has not started, another press
changes that job instead of queueing one more: F7 adds one to its count (N presses go back N
instructions, in one re-execution), the Timeline's keys move its target.  Keys that move
relative to the position (scrub, previous/next event) start from that pending target.

Hooks.  A job runs with the machine's hooks muted as a whole (the operations mute them while
they re-execute, but not while they restore a keyframe): restoring a state is not the guest
switching modes or loading CR3, and must neither add events to the recording nor leave a
``catch mode`` stop pending for the next run.

Input.  Host input taken while a job re-executes would be posted somewhere in the past, and a
recording file replays the input it recorded: ``input_refused`` and ``input_gate`` tell the
Serial pane (the line is refused) and the guest window (its input is held back until the job is
done, or dropped over a file).  While a job without a known target runs (a step back, a search),
the status bar and the Timeline show where it started, not the states it passes through.

Recording.  Ctrl+R starts a recording in memory from the current instruction (keyframes every
``KEYFRAME_EVERY`` instructions, denser than ``aero record``'s, so that a step back re-executes
little) or stops it; ``record start|stop|save`` do the same from the command line.  During a
continue, starting or stopping is injected into the run (it pauses, records, goes on).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from dataclasses import dataclass

from ..debug.debugger import DebugError, Stop

# A step back restores the keyframe before it and re-executes up to it.  Measured on the built-in
# demo: with a keyframe every 100,000 instructions a step back takes 40-90 ms, and up to 0.9 s in
# the window of the BIOS's POST (its code translated afresh after the restore); with aero
# record's 500,000 (aero.trace.recorder.KEYFRAME_EVERY) the worst is 2.3 s.  Keyframes share
# their unchanged pages, so the denser ones cost little memory.
KEYFRAME_EVERY = 100_000
SCRUB_STEPS = 100           # left / right in the Timeline pane move 1/100 of the recording

TRAVEL_WORDS = {"reverse-stepi": "rstep", "rsi": "rstep", "rs": "rstep",
                "reverse-step": "rstep", "reverse-nexti": "rnext", "rni": "rnext",
                "rn": "rnext", "reverse-next": "rnext", "reverse-continue": "rcont",
                "rc": "rcont", "goto": "goto", "who-wrote": "search", "ww": "search"}
RECORD_WORDS = frozenset(("record", "rec", "timeline"))
MOVE_KINDS = frozenset(("rstep", "scrub", "goto"))
TRAVEL_KINDS = MOVE_KINDS | frozenset(("rnext", "rcont", "search"))
BACKWARDS = frozenset(("rstep", "rnext", "rcont"))
NO_RECORDING = ("no recording: ctrl+r (or record start) records from here on; aero tui --replay "
                "FILE opens a recording file")
REPLAY_INPUT = ("a recording file replays the input it recorded: input typed now would not be "
                "replayed with it (not sent)")
TRAVEL_INPUT = "time travel is re-executing the recording: input now would land in the past " \
    "(not sent; send it again when it is done)"


@dataclass
class Recording:
    """The recording as the panes show it (read on the UI thread, without side effects)."""
    kind: str                   # "live" (recording now), "file" (aero tui --replay), "stopped"
    start: int
    head: int
    at: int                     # the machine's instruction count, or where a move goes
    moving: bool                # a time travel job is on its way to ``at``
    keyframes: list             # their instruction counts
    events: list                # the timeline's [icount, kind, text] rows (shared: read only)
    path: str | None = None
    searching: str | None = None    # a job going back from ``at`` to a place it searches for

    def current_event(self) -> int:
        """Index of the last event at or before the position (-1: none)."""
        return bisect.bisect_right(self.events, [self.at, "\uffff"]) - 1


class _Move:
    """A coalescable move: its ``value`` (a count or a target) may change until it starts."""

    def __init__(self, kind: str, value: int):
        self.kind = kind
        self.value = value
        self.job = None
        self.started = False
        self.done = False


class TimeTravelControl:
    """Time travel for a ``Session`` (see the module docstring)."""

    def __init__(self, session, path: str | None = None):
        self.s = session
        self.dbg = session.dbg
        self.path = path                # the recording file the session replays, if any
        self.file = None                # ... open (aero.trace.recording.Recording)
        self._lock = threading.Lock()
        self._move: _Move | None = None
        self._from: int | None = None   # where the time travel job running now started

    def close(self) -> None:
        """Close the recording file (when the app closes)."""
        f, self.file = self.file, None
        if f is not None:
            f.close()

    # -- what there is -----------------------------------------------------------------------
    def recording(self) -> Recording | None:
        """The recording now (None: none, and none stopped in this session)."""
        dbg = self.dbg
        icount = dbg.cpu.icount
        tt, rec = dbg.travel, dbg.recorder
        if tt is not None:
            tl = tt.tl
            head = tl.head
            if rec is not None and not (rec.behind and icount < head):
                head = max(head, icount)            # what Recorder.sync would make it
            kind = "live" if rec is not None else "file"
        else:
            tl = getattr(dbg, "_stopped_recording", None)
            if tl is None:
                return None
            head, kind = tl.head, "stopped"
        at, moving, searching = icount, False, None
        target = self.pending_target()
        cur = self.s.runner.current
        if target is not None and self.s.running:
            at, moving = target, True
        elif self._from is not None and cur is not None and cur.kind in TRAVEL_KINDS:
            at, searching = self._from, cur.label   # the machine is somewhere in between
        kfs = list(tl.keyframes)
        return Recording(kind, kfs[0].icount if kfs else head, head, at, moving,
                         [k.icount for k in kfs], tl.events,
                         self.path if kind == "file" else None, searching)

    def pending_target(self) -> int | None:
        """Where the last Timeline move queued goes, while it is not done."""
        with self._lock:
            mv = self._move
            if mv is not None and mv.kind in ("scrub", "goto") and not mv.done:
                return mv.value
        return None

    @property
    def busy_travelling(self) -> bool:
        """Whether the worker runs a time travel job now."""
        cur = self.s.runner.current
        return cur is not None and cur.kind in TRAVEL_KINDS

    def input_refused(self) -> str | None:
        """Why host input (a line typed for COM1, keys in the guest window) must not reach the
        machine now, or None: a recording file replays the input it recorded (and the machine
        stays on it), and input taken while a time travel job re-executes, or before one queued
        runs, would be posted somewhere in the past."""
        dbg = self.dbg
        if dbg.travel is not None and dbg.recorder is None:
            return REPLAY_INPUT
        if any(k in TRAVEL_KINDS for k in self.s.runner.kinds()):
            return TRAVEL_INPUT
        return None

    def input_gate(self) -> str:
        """For the guest window (``DisplayThread``): "pass" its input on, "hold" it until time
        travel is done, or "drop" it (a recording file: see ``input_refused``)."""
        why = self.input_refused()
        return "pass" if why is None else "drop" if why is REPLAY_INPUT else "hold"

    # -- results -------------------------------------------------------------------------------
    def _at_start(self) -> Stop | None:
        """Going back from the start of the recording: a "start" stop (no job needed)."""
        tt = self.dbg.travel
        n = self.dbg.cpu.icount
        if tt is not None and n <= tt.start:
            return Stop("start", f"at the start of the recording (instruction {n}): there is "
                                 "nothing before it", icount=n)
        return None

    def _landed(self, stop):
        """Mark a landing on the first (or a recording file's last) instruction as such."""
        tt = self.dbg.travel
        if tt is None or not isinstance(stop, Stop) or stop.reason not in ("step", "goto"):
            return stop
        dbg = self.dbg
        n = dbg.cpu.icount
        where = dbg.format_addr(dbg.pc())
        if n == tt.start:
            stop.reason = "start"
            stop.message = f"the start of the recording: instruction {n}, {where}"
        elif tt.rec is None and n >= tt.tl.head:
            stop.reason = "end"
            stop.message = f"the end of the recording: instruction {n}, {where}"
        return stop

    @contextlib.contextmanager
    def _hooks_muted(self):
        """The machine's hooks muted (see the module docstring; the worker thread only)."""
        hooks = self.dbg.m.hooks
        was = hooks.muted
        hooks.muted = True
        try:
            yield
        finally:
            hooks.muted = was

    def _run(self, op, backwards: bool):
        """A job's body: ``op()`` returning a Stop, or text when it made none."""
        def go():
            if backwards:
                first = self._at_start()
                if first is not None:
                    return first
            before = self.dbg.last
            self._from = self.dbg.cpu.icount
            try:
                with self._hooks_muted():
                    out = op()
            finally:
                self._from = None
            if isinstance(out, Stop):
                return self._landed(out)
            last = self.dbg.last
            return self._landed(last) if last is not before and last is not None else out
        return go

    # -- moves ---------------------------------------------------------------------------------
    def _coalesce(self, kind: str, value: int, merge, run, label) -> str | None:
        """Submit a move, or fold it into the same kind of move queued last and not started
        (``merge(old value) -> new value``; ``label(value)``: what the status bar says while
        it runs)."""
        s = self.s
        with self._lock:
            mv = self._move
            if mv is not None and mv.kind == kind and not mv.started and \
                    s.runner.last is mv.job:
                mv.value = merge(mv.value)
                mv.job.label = label(mv.value)
                return None
        mv = _Move(kind, value)

        def go():
            with self._lock:
                mv.started = True
                value = mv.value
            try:
                return self._run(lambda: run(value), kind in BACKWARDS)()
            finally:
                with self._lock:
                    mv.done = True
        why = s._submit(kind, go, label(value))
        if why is None:
            with self._lock:
                mv.job = s.runner.last
                self._move = mv
        return why

    def _needs_recording(self) -> str | None:
        if self.dbg.travel is None and not self.s.running:
            return NO_RECORDING
        return None

    def reverse_step(self) -> str | None:
        """F7: one instruction back (held down: as many as pressed, in one job)."""
        return self._needs_recording() or self._coalesce(
            "rstep", 1, lambda n: n + 1, self.dbg.reverse_stepi,
            lambda n: "reverse-stepi" + (f" {n}" if n > 1 else ""))

    def reverse_next(self) -> str | None:
        """Shift+F7: back over a call or interrupt that returned here."""
        return self._needs_recording() or self.s._submit(
            "rnext", self._run(self.dbg.reverse_next, True), "reverse-nexti")

    def reverse_continue(self) -> str | None:
        """F8: back to the previous stop of a breakpoint, watchpoint or catch."""
        return self._needs_recording() or self.s._submit(
            "rcont", self._run(self.dbg.reverse_continue, True), "reverse-continue")

    def base(self) -> int:
        """Where relative moves start: the pending target, else the position."""
        target = self.pending_target()
        return target if target is not None else self.dbg.cpu.icount

    def move_to(self, target: int, kind: str = "scrub", clamp: bool = True) -> str | None:
        """Go to instruction ``target`` (``clamp``: kept within the recording): ``scrub``
        moves are quiet, ``goto`` ones say where they landed."""
        why = self._needs_recording()
        if why:
            return why
        r = self.recording()
        if clamp and r is not None and r.kind != "stopped":
            target = max(r.start, min(r.head, target))
        return self._coalesce(kind, target, lambda _old: target, self.dbg.goto,
                              lambda n: f"goto {n}")

    def scrub(self, direction: int) -> str | None:
        """Left / right in the Timeline: 1/SCRUB_STEPS of the recording."""
        r = self.recording()
        if r is None or r.kind == "stopped":
            return self._needs_recording() or NO_RECORDING
        step = max(1, (r.head - r.start) // SCRUB_STEPS)
        return self.move_to(self.base() + direction * step)

    def to_event(self, direction: int) -> str | None:
        """Shift+left / right: the previous / next event of the recording."""
        r = self.recording()
        if r is None or r.kind == "stopped":
            return self._needs_recording() or NO_RECORDING
        at = self.base()
        ev = r.events
        if direction < 0:
            i = bisect.bisect_left(ev, [at]) - 1
            if i < 0:
                return "no earlier event in the recording"
        else:
            i = bisect.bisect_right(ev, [at, "\uffff"])
            if i >= len(ev):
                return "no later event in the recording"
        return self.move_to(ev[i][0])

    def to_edge(self, end: bool) -> str | None:
        """Home / End: the start or the end (head) of the recording."""
        r = self.recording()
        if r is None or r.kind == "stopped":
            return self._needs_recording() or NO_RECORDING
        return self.move_to(r.head if end else r.start)

    # -- recording -----------------------------------------------------------------------------
    def _record_start(self, keyframe_every: int = KEYFRAME_EVERY) -> str:
        text = self.dbg.record_start(keyframe_every=keyframe_every)
        return f"{text}, a keyframe every {keyframe_every:,} (F7/F8 go back; ctrl+r stops)"

    def _record_stop(self) -> str:
        with self._hooks_muted():               # it may go back to the recording's head
            text = self.dbg.record_stop()
        return text + " (record save FILE writes it)"

    def toggle_recording(self):
        """Ctrl+R: start recording here, or stop (decided when the job runs, so that quick
        presses alternate)."""
        def fn():
            return self._record_stop() if self.dbg.recorder is not None else \
                self._record_start()
        return self.s._point_op(fn, "record on/off", kind="record", now=False)

    def record_command(self, line: str, rest: str):
        """``record start [N] | stop | save FILE | info`` and ``timeline``."""
        from .session import Outcome             # noqa: PLC0415 (the session imports us)
        args = rest.split()
        s = self.s
        if not args or args[0] == "info" or line.split()[0].lower() == "timeline":
            if s.running:                       # the recorder moves its head as it runs
                return Outcome(s.busy_reason(), error=True)
            return s._now(line, "record")
        if args[0] == "start":
            if len(args) > 2:
                return Outcome("record start [KEYFRAME_EVERY]", error=True)

            def fn():
                every = max(1, self.dbg.eval(args[1])) if len(args) > 1 else KEYFRAME_EVERY
                return self._record_start(every)
        elif args[0] == "stop":
            fn = self._record_stop
        else:
            def fn():
                return s.cmds.execute(line)
        return s._point_op(fn, line, kind="record", now=False)

    def command(self, line: str, word: str) -> str | None:
        """A typed time travel command (``TRAVEL_WORDS``) as a job; None, or why not."""
        kind = TRAVEL_WORDS[word]
        if kind == "goto":
            arg = line.split(None, 1)[1:] or [""]
            if not arg[0].strip():
                return "goto N   to instruction count N of the recording"
            try:
                target = self.dbg.eval(arg[0])
            except DebugError as e:
                return str(e)
            return self.move_to(target, "goto", clamp=False)
        op = self._run(lambda: self.s.cmds.execute(line), kind in BACKWARDS)
        return self.s._submit(kind, op, line, verbose=True)
