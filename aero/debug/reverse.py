"""The debugger's side of time travel: recording in a session, and the reverse operations.

``Debugger`` takes these methods (a mixin).  A session travels in time over

* a recording it makes itself (``record_start``: from here on, the machine records keyframes,
  inputs, checkpoints and events in memory; ``record_save`` writes them to a file), or
* a recording file (``attach_recording``, as ``aero replay FILE --gdb`` and ``aero debug
  --replay FILE`` do): the machine then starts at the recording's first instruction and forward
  runs stop at its end.

Operations (each returns a ``Stop`` like the forward ones): ``goto(n)``, ``reverse_stepi(n)``,
``reverse_next()``, ``reverse_continue()`` (back to the previous stop of any enabled
breakpoint, watchpoint or catch: the machine is left exactly where going forward it would have
stopped), ``who_wrote(addr)`` (back to the instruction that last wrote an address).
"""

from __future__ import annotations

from ..trace.recorder import CHECKPOINT_EVERY, KEYFRAME_EVERY, Recorder
from ..trace.travel import HookScan, TimeTravel, TravelError


class _PointScan(HookScan):
    """The debugger's enabled points, counted by a backwards search."""

    def __init__(self, dbg):
        super().__init__(dbg.m)
        self.hooks = [h for p in dbg.points.values() if p.enabled for h in p.hooks]


class _WriteScan(HookScan):
    """Writes to a range (each hit carries its MemAccess)."""

    def __init__(self, m, addr: int, size: int, physical: bool):
        super().__init__(m)
        self.hooks = [m.hooks.mem_write(lambda m_, acc: self.hit(True, acc), addr, addr + size,
                                        physical=physical)]


class ReverseMixin:
    # -- recordings ------------------------------------------------------------------------------
    def record_start(self, keyframe_every: int = KEYFRAME_EVERY,
                     checkpoint_every: int = CHECKPOINT_EVERY) -> str:
        from .debugger import DebugError
        if self.recorder is not None:
            raise DebugError("already recording (record stop first)")
        if self.travel is not None:
            raise DebugError("this session replays a recording file; it cannot record")
        rec = Recorder(self.m, keyframe_every=keyframe_every,
                       checkpoint_every=checkpoint_every).start()
        self.recorder = rec
        self.travel = TimeTravel(self.m, rec.timeline, rec)
        return f"recording from instruction {self.cpu.icount}"

    def record_stop(self) -> str:
        from .debugger import DebugError
        rec = self.recorder
        if rec is None:
            raise DebugError("not recording")
        rec.sync()
        if rec.behind:
            # leave the recorded past for the head, so the recording ends where it ends
            self.travel.goto(rec.timeline.head)
        rec.stop(self.last.result if self.last is not None else None)
        self.travel.close()
        self.travel = None
        self.recorder = None
        tl = rec.timeline
        self._stopped_recording = tl
        return (f"recording stopped: instructions {tl.start} to {tl.head}, "
                f"{len(tl.keyframes)} keyframes, {len(tl.inputs)} inputs")

    def record_save(self, path: str) -> str:
        """Write the recording (in progress or just stopped) to a file."""
        from ..trace.recording import save_timeline
        from .debugger import DebugError
        rec = self.recorder
        tl = rec.timeline if rec is not None else getattr(self, "_stopped_recording", None)
        if tl is None:
            raise DebugError("no recording in this session (record start)")
        if rec is not None:
            rec.sync()
            if tl.end is None:
                tl_end = {"icount": tl.head, "tick": None, "digest": None, "status": None,
                          "exit_code": None}
            else:
                tl_end = tl.end
        else:
            tl_end = tl.end
        try:
            size = save_timeline(tl, path, tl_end)
        except OSError as e:
            raise DebugError(f"cannot write {path}: {e.strerror}") from None
        except ValueError as e:                 # RecordingError: not a regular file
            raise DebugError(str(e)) from None
        return f"saved the recording ({tl.start} to {tl.head}) to {path}: {size} bytes"

    def attach_recording(self, tt: TimeTravel) -> None:
        """Travel over a recording file (``aero.trace.replay.open_recording``)."""
        self.travel = tt

    def _travel(self) -> TimeTravel:
        from .debugger import DebugError
        if self.travel is None:
            raise DebugError("no recording: 'record start' first (or aero replay / aero debug "
                             "--replay a recording file)")
        return self.travel

    # -- operations ------------------------------------------------------------------------------
    def _landed(self, reason: str, message: str):
        from .debugger import Stop
        where = self.format_addr(self.pc())
        return self._stopped(Stop(reason, message.format(where=where, icount=self.cpu.icount),
                                  icount=self.cpu.icount))

    def _guard(self, fn):
        from .debugger import DebugError
        try:
            return fn()
        except TravelError as e:
            raise DebugError(str(e)) from None

    def goto(self, n: int):
        tt = self._travel()
        self._guard(lambda: tt.goto(n))
        return self._landed("goto", "at instruction {icount}: {where}")

    def reverse_stepi(self, n: int = 1):
        tt = self._travel()
        self._guard(lambda: tt.reverse_stepi(n))
        return self._landed("step", "back at instruction {icount}: {where}")

    def reverse_next(self):
        tt = self._travel()
        how = self._guard(tt.reverse_next)
        what = {"call": " (back over the call)", "interrupt": " (back over the interrupt)"}
        return self._landed("step", "back at instruction {icount}: {where}" + what.get(how, ""))

    def reverse_continue(self):
        """Back to the previous stop of an enabled point (the start of the recording if there
        is none).  A breakpoint or an interrupt catch leaves the machine where going forward
        it stopped; a watchpoint or another catch that stops after its instruction leaves it
        before that instruction (the write not yet done), as gdb's reverse execution does."""
        from .debugger import Stop
        tt = self._travel()
        scan = _PointScan(self)
        self.scan = scan
        self._hit = {}
        try:
            hit = self._guard(lambda: tt.last_hit(scan))
            if hit is not None and not hit.after:
                r = self._guard(lambda: tt.reproduce(scan))
        finally:
            self.scan = None
        if hit is None:
            self._guard(lambda: tt.goto(tt.start))
            return self._landed("start", "no earlier stop: at the start of the recording "
                                         "(instruction {icount}): {where}")
        if not hit.after:
            stop = self._interpret(r, False, None)
            stop.message = "(reverse) " + stop.message
            return self._stopped(stop)
        self._guard(lambda: tt.goto(hit.icount))
        p, info = hit.what
        where = self.format_addr(self.pc())
        details = {}
        if p.kind == "watch":
            details["access"] = info
            kind = "watchpoint"
            old = f"{info.old:#x}" if info.old is not None else "?"
            who = "delivering the interrupt due here" if hit.between else \
                "the instruction here"
            line = (f"(reverse) Watchpoint {p.id}: {p.what}\n{who} "
                    f"{'writes' if info.write else 'reads'} {info.size} byte"
                    f"{'s' if info.size > 1 else ''} at {info.address:#x}"
                    + (f": {old} -> {info.value:#x}" if info.write else
                       f" (value {info.value:#x})") + f"; at {where}")
        else:
            kind = "breakpoint" if p.kind == "break" else "catch"
            line = f"(reverse) {p.kind} {p.id} ({p.what}): by the instruction at {where}"
        return self._stopped(Stop(kind, line, point=p, details=details,
                                  icount=self.cpu.icount))

    def who_wrote(self, addr: int, size: int = 1, physical: bool = False):
        """Back to the instruction that last wrote any of ``size`` bytes at ``addr``: the
        machine stops before it; the message says what it wrote."""
        from .debugger import DebugError
        tt = self._travel()
        back = self.cpu.icount
        scan = _WriteScan(self.m, addr, size, physical)
        try:
            hit = self._guard(lambda: tt.last_hit(scan))
        finally:
            scan.remove()
        space = "physical" if physical else "linear"
        if hit is None:
            self._guard(lambda: tt.goto(back))
            raise DebugError(f"nothing wrote {space} {addr:#x} between the start of the "
                             f"recording (instruction {tt.start}) and here")
        acc = hit.what
        self._guard(lambda: tt.goto(hit.icount))
        old = f"{acc.old:#x}" if acc.old is not None else "?"
        what = f" ({acc.size} byte{'s' if acc.size > 1 else ''} at {acc.address:#x}: " \
               f"{old} -> {acc.value:#x})"
        who = "delivering an interrupt before the instruction at {where}" if hit.between \
            else "the instruction at {where}"
        return self._landed("who-wrote", f"{space} {addr:#x} was last written by {who}, "
                            "instruction {icount}" + what)

    def timeline_info(self) -> str:
        tt = self._travel()
        tl = tt.tl
        lines = [f"recording: instructions {tt.start} to {tt.head}"
                 f"{' (recording now)' if self.recorder is not None else ''}; "
                 f"now at {self.cpu.icount}",
                 f"{len(tl.keyframes)} keyframes, {len(tl.inputs)} inputs, "
                 f"{len(tl.checkpoints)} checkpoints, {len(tl.events)} events"]
        if self.recorder is not None and self.recorder.divergence is not None:
            ic, _, _ = self.recorder.divergence
            lines.append(f"warning: re-execution differed from the recording at instruction "
                         f"{ic}")
        return "\n".join(lines)
