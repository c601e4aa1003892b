"""Recording a run: keyframes, host inputs, register checkpoints and events, into a timeline (in
memory) and optionally a recording file.

A machine is deterministic on its instruction count: the same state and the same inputs at the
same ticks give the same run.  So a recording holds only what came from the host:

* **keyframes**: the whole machine state (``Machine.get_state()``) every ``keyframe_every``
  instructions.  Successive states share their unchanged 4 KiB pages, so a keyframe costs what
  was dirtied since the last one; the file stores each page once.
* **inputs**: every event posted to the input queue after the recording started, with the tick it
  was posted at and the tick it takes effect at (keys, mouse, serial input; what a script, the
  display window or the TUI sent).  Input posted before (``--keys``) is in keyframe 0.
* **checkpoints**: the registers every ``checkpoint_every`` instructions, and each keyframe's
  state digest (``aero.trace.digest``), so that a replay can check itself and say where it
  went astray.
* **events**: interrupts, exceptions, mode switches, CR3 loads, BIOS calls, for the timeline.

The recorder runs on host timers (``Machine.at_icount``), so it works under any driver: the
run loop, the debugger, the TUI, gdb.  While time travel has taken the machine back into what is
already recorded, the recorder checks the checkpoints it passes instead of adding them; input
or an edit by the host there (a register or memory changed from the debugger) makes the run
take another course: the timeline is cut at that point and recording goes on from it.
"""

from __future__ import annotations

import datetime as _dt

from .. import __version__
from ..faults import NAMES as FAULT_NAMES
from ..inputs import event_to_json
from ..statefile import machine_identity
from .digest import StateDigest
from .timeline import Keyframe, Timeline, checkpoint_row

# Chosen by measurement (`aero bench --travel`, README "Time travel"): on a workload dirtying a
# page every 6,144 instructions, keyframes every 250k / 500k / 1M / 2M instructions made files of
# 1.3 / 0.70 / 0.39 / 0.23 bytes per instruction, cost nothing measurable while recording, and
# left the worst goto at 0.16 / 0.25 / 0.66 s and the worst reverse-continue at 0.28 / 0.51 /
# 1.17 s (a loaded 2-core machine).  500k keeps every operation well under a second.
KEYFRAME_EVERY = 500_000
CHECKPOINT_EVERY = 4096
_FLUSH_ROWS = 512


class Recorder:
    def __init__(self, machine, path: str | None = None, settings: dict | None = None,
                 keyframe_every: int = KEYFRAME_EVERY, checkpoint_every: int = CHECKPOINT_EVERY,
                 keep_states: bool = True, events: bool = True):
        """Record ``machine`` into ``self.timeline`` (keyframe states kept in memory unless
        ``keep_states`` is False) and, with ``path``, into a recording file.  ``settings``: the
        machine settings that rebuild it (default: its configuration's hardware settings)."""
        if checkpoint_every <= 0 or keyframe_every <= 0:
            raise ValueError("the keyframe and checkpoint intervals must be positive")
        self.m = machine
        self.keyframe_every = keyframe_every
        self.checkpoint_every = checkpoint_every
        self.keep_states = keep_states
        self.want_events = events
        self.header = {
            "producer": f"aero {__version__}",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_identity(machine),
            "config": settings if settings is not None else machine.config.hardware(),
            "keyframe_every": keyframe_every,
            "checkpoint_every": checkpoint_every,
        }
        self.timeline = Timeline(self.header)
        self.path = path
        self.writer = None
        self.digest = StateDigest()
        self.active = False
        self.behind = False             # time travel took the machine back into the recording
        self.injecting = False          # time travel is posting a recorded input
        self.divergence = None          # (icount, recorded row, row now): a failed self-check
        self._hooks: list = []
        self._next = 0
        self._pending = {"I": [], "C": [], "V": []}

    # ------------------------------------------------------------------------------------------
    def start(self) -> "Recorder":
        """Take keyframe 0 now and record from here."""
        from .recording import Writer           # noqa: PLC0415 (keeps the import graph flat)
        m = self.m
        if m.cpu.cur_block is not None:
            raise RuntimeError("a recording starts between instructions")
        if self.path is not None:
            self.writer = Writer(self.path, self.header)
        self.active = True
        self.timeline.head = m.cpu.icount
        self._keyframe(edit=False)
        m.inputs.listeners.append(self._on_input)
        m.edit_listeners.append(self._on_edit)
        if self.want_events:
            self._install_event_hooks()
        self._arm()
        return self

    def stop(self, result=None) -> Timeline:
        """Stop recording (``result``: the machine's last RunResult, for the end record); the
        file, if any, is completed."""
        if not self.active:
            return self.timeline
        m = self.m
        self.sync()
        self.active = False
        m.cancel_timers(self._tick)
        if self._on_input in m.inputs.listeners:
            m.inputs.listeners.remove(self._on_input)
        if self._on_edit in m.edit_listeners:
            m.edit_listeners.remove(self._on_edit)
        for h in self._hooks:
            h.remove()
        self._hooks = []
        cpu = m.cpu
        tl = self.timeline
        digest = self.digest(m.get_state()) if cpu.icount == tl.head else None
        tl.end = {"icount": tl.head, "tick": cpu.icount + cpu.idle_time if digest else None,
                  "digest": digest,
                  "status": result.status if result is not None else None,
                  "exit_code": result.exit_code if result is not None else None}
        if self.writer is not None:
            self._flush()
            self.writer.close(tl.end)
            self.writer = None
        return tl

    def abandon(self) -> None:
        """Stop without completing the file (it is removed)."""
        w, self.writer = self.writer, None
        self.stop()
        if w is not None:
            w.abandon()

    # ------------------------------------------------------------------------------------------
    def sync(self) -> None:
        """Bring the timeline's head up to the machine (it moves only at checkpoints while
        running): call before time travel looks at it."""
        if not self.active:
            return
        icount = self.m.cpu.icount
        tl = self.timeline
        if self.behind and icount >= tl.head:
            self.behind = False
        if not self.behind and icount > tl.head:
            tl.head = icount

    def went_back(self) -> None:
        """Time travel moved the machine into the recorded past: re-check from there."""
        self.sync()
        if self.m.cpu.icount < self.timeline.head:
            self.behind = True
        self._arm()

    def _arm(self) -> None:
        m = self.m
        m.cancel_timers(self._tick)
        every = self.checkpoint_every
        self._next = (m.cpu.icount // every + 1) * every
        m.at_icount(self._next, self._tick)

    def _tick(self) -> None:
        """Every checkpoint interval (a host timer): a checkpoint, sometimes a keyframe; behind
        the head, a check against what was recorded."""
        m = self.m
        cpu = m.cpu
        icount = cpu.icount
        tl = self.timeline
        if self.behind and icount >= tl.head:
            self.behind = False
        if self.behind:
            rec = tl.checkpoint_at(icount)
            if rec is not None and self.divergence is None:
                row = checkpoint_row(cpu)
                if row != rec:
                    self.divergence = (icount, rec, row)
        elif not tl.checkpoints or icount > tl.checkpoints[-1][0]:
            tl.head = max(tl.head, icount)
            row = checkpoint_row(cpu)
            tl.checkpoints.append(row)
            self._queue("C", row)
            if icount - tl.keyframes[-1].icount >= self.keyframe_every:
                self._keyframe(edit=False)
        every = self.checkpoint_every
        self._next = (icount // every + 1) * every
        m.at_icount(self._next, self._tick)

    # ------------------------------------------------------------------------------------------
    def _keyframe(self, edit: bool) -> None:
        m = self.m
        cpu = m.cpu
        state = m.get_state()
        kf = Keyframe(cpu.icount, cpu.icount + cpu.idle_time, m.inputs.count,
                      self.digest(state), state if self.keep_states else None, edit)
        tl = self.timeline
        tl.keyframes.append(kf)
        if self.writer is not None:
            self._flush()
            self.writer.keyframe(kf, state)

    def _queue(self, kind: str, row) -> None:
        if self.writer is None:
            return
        rows = self._pending[kind]
        rows.append(row)
        if len(rows) >= _FLUSH_ROWS:
            self.writer.rows(kind, rows)
            self._pending[kind] = []

    def _flush(self) -> None:
        for kind, rows in self._pending.items():
            if rows:
                self.writer.rows(kind, rows)
                self._pending[kind] = []

    def _branch(self, icount: int, inputs: int) -> None:
        """The host changed the course of a run replaying the recorded past: forget the
        recorded future from here."""
        if self.writer is not None:
            raise RuntimeError("cannot change the past of a recording being written to a file")
        self.timeline.truncate(icount, inputs)
        self.behind = False

    def _exact_icount(self) -> int:
        cpu = self.m.cpu
        return cpu.now() - cpu.idle_time

    def _on_input(self, tick: int, event) -> None:
        if self.injecting or not self.active:
            return
        m = self.m
        icount = self._exact_icount()
        n = m.inputs.count - 1
        if self.behind and icount < self.timeline.head:
            self._branch(icount, n)
        row = [n, m.clock.now(), tick, event_to_json(event)]
        self.timeline.inputs.append(row)
        self.timeline.head = max(self.timeline.head, icount)
        self._queue("I", row)

    def _on_edit(self, what: str) -> None:
        """The host changed the machine (a register, memory, a restored state): a keyframe of
        the state as it is now, so that time travel and replay go on from it."""
        if not self.active:
            return
        cpu = self.m.cpu
        tl = self.timeline
        icount = cpu.icount
        if self.behind and icount < tl.head:
            self._branch(icount, self.m.inputs.count)
        tl.checkpoints = [r for r in tl.checkpoints if r[0] < icount]
        tl.head = max(tl.head, icount)
        self._keyframe(edit=True)
        tl.events.append([icount, "edit", what])
        self._queue("V", [icount, "edit", what])

    # ------------------------------------------------------------------------------------------
    def _install_event_hooks(self) -> None:
        hooks = self.m.hooks
        cpu = self.m.cpu
        tl = self.timeline

        def add(kind, text):
            icount = cpu.now() - cpu.idle_time
            if self.behind and icount <= tl.head:
                return
            row = [icount, kind, text]
            tl.events.append(row)
            self._queue("V", row)

        def irq(m, e):
            if e.kind == "shutdown":
                add("shutdown", "triple fault")
                return
            if e.kind == "fault":
                name = FAULT_NAMES.get(e.vector, f"vector {e.vector:#x}")
                extra = f" error {e.error_code:#x}" if e.error_code is not None else ""
                if e.vector == 14:
                    extra += f" cr2={e.cr2:#x}"
                add("exception", f"{name}{extra} at {e.cs:04x}:{e.eip:08x}")
            else:
                add("interrupt" if e.kind == "hw" else "int",
                    f"{'IRQ vector' if e.kind == 'hw' else 'INT'} {e.vector:#04x} at "
                    f"{e.cs:04x}:{e.eip:08x}")

        def mode(m, ch):
            add("mode", f"{_mode(ch.old)} -> {_mode(ch.new)}")
        self._hooks = [hooks.interrupt(irq), hooks.mode(mode),
                       hooks.cr3(lambda m, ld: add("cr3", f"CR3 <- {ld.new:#010x}"))]
        if self.m.aero_bios is not None:
            self._hooks.append(hooks.bios(lambda m, c: add("bios", str(c))))


def _mode(m) -> str:
    mode, paging = m
    return mode + (" + paging" if paging else "")
