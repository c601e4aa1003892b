"""What every device provides, and the buses it plugs into.

A device:

* registers its I/O ports on the ``IOBus`` (``bus.register(first, count, self, read, write)``)
  and, if it has any, MMIO ranges on the physical bus (``aero.mem.bus.Bus.map_mmio``);
* drives IRQ lines through an ``IRQLines`` object (``irq.set(n, level)``; edge-triggered lines
  are pulsed with ``irq.pulse(n)``), never touching the CPU directly;
* asks the clock (``aero.clock.Clock``) to call it back at a future tick instead of being polled;
* exposes ``summary()`` (a small dict of named fields: what the debugger's device pane shows),
  ``get_state()`` / ``set_state()`` (a versioned dict, what snapshots store) and ``reset()``.
"""

from __future__ import annotations


class Device:
    name = "device"
    STATE_VERSION = 1

    def reset(self) -> None:
        pass

    def summary(self) -> dict:
        return {}

    def get_state(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has no get_state")

    def set_state(self, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no set_state")

    def check_version(self, state: dict) -> None:
        v = state.get("version")
        if v != self.STATE_VERSION:
            raise ValueError(f"{self.name}: state version {v!r}, expected {self.STATE_VERSION}")


class IOBus:
    """Port I/O.  Handlers are registered per port; a read of a port nobody claims returns all
    ones (0xFF per byte), a write to it is dropped.  A 16/32-bit access to a port whose handler
    only takes bytes is split into byte accesses on consecutive ports (as the ISA bus does)."""

    def __init__(self):
        self.readers: dict[int, tuple] = {}
        self.writers: dict[int, tuple] = {}
        self.owner: dict[int, object] = {}
        self.unclaimed_reads = 0
        self.unclaimed_writes = 0

    def register(self, first: int, count: int, device, read=None, write=None,
                 widths=(1,)) -> None:
        """Claim ports first..first+count-1.  ``read(port, size) -> int`` and
        ``write(port, size, value)``; ``widths`` lists the access sizes the handler accepts."""
        for p in range(first, first + count):
            prev = self.owner.get(p)
            if prev is not None and prev is not device:
                raise ValueError(f"port {p:#x} already claimed by {getattr(prev, 'name', prev)}")
            self.owner[p] = device
            if read is not None:
                self.readers[p] = (read, widths)
            if write is not None:
                self.writers[p] = (write, widths)

    def unregister(self, first: int, count: int) -> None:
        for p in range(first, first + count):
            self.owner.pop(p, None)
            self.readers.pop(p, None)
            self.writers.pop(p, None)

    def read(self, port: int, size: int) -> int:
        h = self.readers.get(port)
        if h is not None and size in h[1]:
            return h[0](port, size) & ((1 << (8 * size)) - 1)
        if h is None and size == 1:
            self.unclaimed_reads += 1
            return 0xFF
        v = 0
        for i in range(size):
            p = (port + i) & 0xFFFF
            hb = self.readers.get(p)
            if hb is not None and 1 in hb[1]:
                b = hb[0](p, 1) & 0xFF
            else:
                self.unclaimed_reads += hb is None
                b = 0xFF
            v |= b << (8 * i)
        return v

    def write(self, port: int, size: int, value: int) -> None:
        h = self.writers.get(port)
        if h is not None and size in h[1]:
            h[0](port, size, value)
            return
        if h is None and size == 1:
            self.unclaimed_writes += 1
            return
        for i in range(size):
            p = (port + i) & 0xFFFF
            hb = self.writers.get(p)
            if hb is not None and 1 in hb[1]:
                hb[0](p, 1, (value >> (8 * i)) & 0xFF)
            else:
                self.unclaimed_writes += hb is None


class IRQLines:
    """The 16 ISA interrupt request lines, wired to an interrupt controller's ``set_irq``."""

    def __init__(self, sink=None):
        self.sink = sink            # callable(line, level)
        self.level = [False] * 16

    def set(self, line: int, level: bool) -> None:
        level = bool(level)
        if self.level[line] != level:
            self.level[line] = level
            if self.sink is not None:
                self.sink(line, level)

    def pulse(self, line: int) -> None:
        """An edge: raise then lower (an edge-triggered controller latches the rising edge)."""
        self.set(line, True)
        self.set(line, False)
