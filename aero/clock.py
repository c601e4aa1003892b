"""Virtual time: the machine's clock, driven by retired guest instructions.

One tick = one retired instruction (REP iterations count one each).  While the CPU is halted with
nothing pending, the machine skips ahead to the next timer event and accounts the skipped ticks
as idle time, so ``now = cpu.icount + cpu.idle_time (+ the position inside the running block)``.
Devices convert between ticks and nanoseconds with the configured instructions-per-virtual-second
rate (``ips``).  Nothing from the host reaches this clock.

Events are callbacks scheduled at a tick; ties fire in scheduling order, so two runs with the same
inputs fire the same events in the same order.

State (``get_state`` / ``set_state``): callbacks are not data, so a snapshot keeps each pending
event's tick, sequence number and name, and every device re-creates its own events from its own
state when restored.  ``set_state`` then gives the re-created events their saved sequence
numbers (matching them by name and tick: ties keep firing in the saved order) and checks that
exactly the saved events came back.  Event names must therefore be unique among pending events
that share a tick.
"""

from __future__ import annotations

import heapq

NS = 1_000_000_000


class Event:
    __slots__ = ("when", "seq", "callback", "name", "cancelled")

    def __init__(self, when, seq, callback, name):
        self.when = when
        self.seq = seq
        self.callback = callback
        self.name = name
        self.cancelled = False

    def __lt__(self, other):
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self, cpu, ips: int = 20_000_000):
        if ips <= 0:
            raise ValueError("instructions per second must be positive")
        self.cpu = cpu
        self.ips = ips
        self._heap: list[Event] = []
        self._seq = 0

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> int:
        """Current virtual time in ticks, exact inside a block too (``CPU.now``)."""
        return self.cpu.now()

    def ns(self, ticks: int | None = None) -> int:
        """Ticks (default: now) as virtual nanoseconds."""
        if ticks is None:
            ticks = self.now()
        return ticks * NS // self.ips

    def ticks_for_ns(self, ns: int) -> int:
        """The number of ticks covering ``ns`` nanoseconds (rounded up, at least 1)."""
        return max(1, -(-ns * self.ips // NS))

    def ticks_for_hz(self, hz: float) -> float:
        return self.ips / hz

    # -- events --------------------------------------------------------------------------------
    def schedule(self, when: int, callback, name: str = "") -> Event:
        """Call ``callback()`` once virtual time reaches ``when`` (ticks)."""
        ev = Event(when, self._seq, callback, name)
        self._seq += 1
        heapq.heappush(self._heap, ev)
        # An event scheduled while the CPU runs (a guest's OUT started a timer) must not wait
        # for the end of the current run: pull the run's end in to the event's tick.
        cpu = self.cpu
        cpu.pull_target(when - cpu.idle_time)
        return ev

    def schedule_in(self, delta: int, callback, name: str = "") -> Event:
        return self.schedule(self.now() + max(1, delta), callback, name)

    def next_event(self) -> int | None:
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        return heap[0].when if heap else None

    def run_due(self) -> int:
        """Fire every event whose time has come; return how many fired."""
        n = 0
        heap = self._heap
        now = self.now()
        while heap and (heap[0].cancelled or heap[0].when <= now):
            ev = heapq.heappop(heap)
            if not ev.cancelled:
                ev.callback()
                n += 1
        return n

    def pending(self):
        """The scheduled events, soonest first (for inspection)."""
        return sorted(e for e in self._heap if not e.cancelled)

    # -- state ---------------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every pending event (before the devices of a machine being restored reschedule
        theirs)."""
        for e in self._heap:
            e.cancelled = True
        self._heap = []

    def get_state(self) -> dict:
        return {"version": 1, "seq": self._seq,
                "events": [[e.when, e.seq, e.name] for e in self.pending()]}

    def set_state(self, st: dict) -> None:
        """Give the events the restored devices scheduled their saved sequence numbers; a
        ValueError if they are not exactly the saved ones."""
        if st.get("version") != 1:
            raise ValueError("unsupported clock state version")
        saved: dict[tuple, list] = {}
        for when, seq, name in st["events"]:
            saved.setdefault((name, when), []).append(seq)
        live = self.pending()
        for e in live:
            seqs = saved.get((e.name, e.when))
            if not seqs:
                raise ValueError(f"restored devices scheduled {e.name!r} at tick {e.when}, "
                                 "which the snapshot does not have")
            e.seq = seqs.pop(0)
        missing = [(n, w) for (n, w), seqs in saved.items() if seqs]
        if missing:
            n, w = missing[0]
            raise ValueError(f"the snapshot's event {n!r} at tick {w} was not re-created")
        self._heap = live
        heapq.heapify(self._heap)
        self._seq = st["seq"]
