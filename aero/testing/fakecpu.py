"""The part of the CPU that the clock and the devices use, for device tests without a CPU."""

from __future__ import annotations


class FakeCPU:
    """Virtual time is whatever the test sets ``icount`` (and ``idle_time``) to."""

    def __init__(self):
        self.icount = 0
        self.idle_time = 0
        self.cur_block = None
        self.target = 0

    def now(self) -> int:
        return self.icount + self.idle_time

    def pull_target(self, stop: int) -> None:
        """A device scheduled an event (``Clock.schedule``): nothing runs here to stop."""
