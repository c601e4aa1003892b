"""Virtual time: the machine's clock, driven by retired guest instructions.

One tick = one retired instruction (REP iterations count one each).  While the CPU is halted with
nothing pending, the machine skips ahead to the next timer event and accounts the skipped ticks
as idle time, so ``now = cpu.icount + cpu.idle_time (+ the position inside the running block)``.
Devices convert between ticks and nanoseconds with the configured instructions-per-virtual-second
rate (``ips``).  Nothing from the host reaches this clock.

Events are callbacks scheduled at a tick; ties fire in scheduling order, so two runs with the same
inputs fire the same events in the same order.
"""

from __future__ import annotations

import heapq
import itertools

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
        self._seq = itertools.count()

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
        ev = Event(when, next(self._seq), callback, name)
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
