"""A recorded run as time travel sees it: keyframes, host inputs, register checkpoints and events
along the instruction count.

Two kinds share one interface: ``Timeline`` lives in memory (a recording in progress, in the
debugger, the TUI or ``aero record``), ``FileTimeline`` reads a recording file
(``aero.trace.recording``).  Time travel (``aero.trace.travel``) needs only:

* ``keyframes``: ``Keyframe`` values in instruction-count order; ``state(i)`` gives keyframe
  ``i`` as a ``Machine.get_state()`` value;
* ``inputs``: ``[n, posted_at, tick, event]`` rows, ``n`` the input's number in the machine's
  input queue (a keyframe's state holds the inputs numbered below its ``inputs``), ``posted_at``
  the tick at which it was posted, ``tick`` the tick at which it takes effect, ``event`` its data
  (``aero.inputs.event_to_data``);
* ``checkpoints``: rows ``[icount, tick, eax..edi, eip, eflags, es, cs, ss, ds, fs, gs]``;
* ``events``: ``[icount, kind, text]`` (interrupts, exceptions, mode switches, CR3 loads, BIOS
  calls) for timelines and navigation;
* ``start`` and ``head``: the first and the last instruction count the timeline covers.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# checkpoint row layout
CP_FIELDS = ("icount", "tick", "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip",
             "eflags", "es", "cs", "ss", "ds", "fs", "gs")


def checkpoint_row(cpu) -> list:
    """The registers time travel and replay compare, as a checkpoint row."""
    return [cpu.icount, cpu.icount + cpu.idle_time, *cpu.R, cpu.eip, cpu.get_flags(), *cpu.sel]


@dataclass
class Keyframe:
    icount: int
    tick: int
    inputs: int                 # the input queue's count in the state
    digest: str                 # aero.trace.digest of the state
    state: dict | None = None   # the state itself (None: read it from the file)
    edit: bool = False          # taken because the host changed the machine (not on schedule)


class Timeline:
    """A recording held in memory."""

    def __init__(self, header: dict | None = None):
        self.header = header or {}
        self.keyframes: list[Keyframe] = []
        self.inputs: list[list] = []
        self.checkpoints: list[list] = []
        self.events: list[list] = []
        self.head = 0
        self.end: dict | None = None

    @property
    def start(self) -> int:
        return self.keyframes[0].icount if self.keyframes else 0

    def state(self, i: int) -> dict:
        st = self.keyframes[i].state
        if st is None:
            raise KeyError(f"keyframe {i} is not held in memory")
        return st

    def keyframe_before(self, icount: int) -> int:
        """Index of the last keyframe at or before ``icount`` (the latest one taken there, if
        several share it: an edit's keyframe comes after the scheduled one)."""
        keys = [k.icount for k in self.keyframes]
        i = bisect.bisect_right(keys, icount) - 1
        return max(0, i)

    def inputs_from(self, n: int) -> list:
        """The recorded inputs numbered ``n`` and on, in order."""
        return [row for row in self.inputs if row[0] >= n]

    def checkpoint_at(self, icount: int):
        """The checkpoint row at exactly ``icount``, or None."""
        cps = self.checkpoints
        i = bisect.bisect_left(cps, [icount])
        if i < len(cps) and cps[i][0] == icount:
            return cps[i]
        return None

    def events_between(self, lo: int, hi: int) -> list:
        """Events with lo <= icount < hi."""
        ev = self.events
        i = bisect.bisect_left(ev, [lo])
        j = bisect.bisect_left(ev, [hi])
        return ev[i:j]

    def truncate(self, icount: int, inputs: int) -> None:
        """Forget everything after ``icount`` (the host changed the course of the run there:
        new input or an edit while in the past).  Inputs numbered ``inputs`` and on go too."""
        self.keyframes = [k for k in self.keyframes if k.icount <= icount or k is
                          self.keyframes[0]]
        self.inputs = [row for row in self.inputs if row[0] < inputs]
        self.checkpoints = [row for row in self.checkpoints if row[0] <= icount]
        self.events = [row for row in self.events if row[0] <= icount]
        self.head = icount
        self.end = None


class FileTimeline:
    """A recording file as a timeline (keyframe states read on demand, pages shared)."""

    def __init__(self, recording):
        self.rec = recording
        self.header = recording.header
        self.keyframes = [Keyframe(ic, tick, n, digest, None, edit)
                          for ic, tick, n, digest, edit, _ in recording.keyframe_rows]
        self.inputs = recording.inputs
        self.checkpoints = recording.checkpoints
        self.events = recording.events
        self.end = recording.end
        self.head = recording.end["icount"] if recording.end else \
            max(k.icount for k in self.keyframes)
        self._pages: dict = {}

    start = Timeline.start
    keyframe_before = Timeline.keyframe_before
    inputs_from = Timeline.inputs_from
    checkpoint_at = Timeline.checkpoint_at
    events_between = Timeline.events_between

    def state(self, i: int) -> dict:
        return self.rec.keyframe(i, self._pages)
