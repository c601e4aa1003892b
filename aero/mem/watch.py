"""Memory watches: callbacks on reads and writes of linear or physical ranges, at no cost
elsewhere.

A watch marks only the pages it covers, so every other access keeps its fast path:

* a physical watch sets SLOW_WATCH on its physical pages (``Bus.set_watch``); the bus's slow path
  calls ``on_watch`` after the access;
* a linear watch, while paging is on, keeps its linear pages out of the MMU's fast maps
  (``MMU.nofast_r`` / ``nofast_w``); the MMU's slow path calls ``on_linear`` after the access.
  While paging is off, a linear address reaches physical address ``lin & A20 mask``, so the
  watch marks those physical pages and is matched there.  (With A20 disabled two linear
  addresses 1 MiB apart reach the same byte; a watch then fires for both aliases, where the
  guest's own DR0-DR3 would match only the address written in them.)

Callbacks are ``fn(watch, addr, size, old, new, write)``: ``addr`` is the address in the watch's
own space (linear or physical), ``old`` the value before a write (None where it cannot be read
without side effects, e.g. MMIO), ``new`` the value written or read.  They run after the access
completed, inside the instruction; what they do about it (note a hit, ask the CPU to stop after
the instruction) is theirs to decide.
"""

from __future__ import annotations

from .bus import SLOW_WATCH, CLEAR_BIT

ONE_MIB = 1 << 20


class Watch:
    __slots__ = ("lo", "hi", "read", "write", "linear", "fn")

    def __init__(self, lo: int, hi: int, read: bool, write: bool, linear: bool, fn):
        if not 0 <= lo < hi <= 1 << 32:
            raise ValueError(f"bad watch range {lo:#x}-{hi:#x}")
        self.lo, self.hi = lo, hi
        self.read, self.write, self.linear = read, write, linear
        self.fn = fn

    def __repr__(self):
        kind = "rw" if self.read and self.write else "r" if self.read else "w"
        return f"Watch({'lin' if self.linear else 'phys'} {self.lo:#x}-{self.hi:#x} {kind})"


class Watches:
    """The watches of one machine: installs page flags, dispatches accesses."""

    def __init__(self, bus, mmu):
        self.bus = bus
        self.mmu = mmu
        self.phys: list[Watch] = []
        self.linear: list[Watch] = []
        self._flat: list[tuple] = []      # paging off: (phys lo, phys hi, linear lo, watch)
        bus.on_watch = self._on_bus
        mmu.watches = self

    def __bool__(self) -> bool:
        return bool(self.phys or self.linear)

    def add(self, w: Watch) -> Watch:
        (self.linear if w.linear else self.phys).append(w)
        self.refresh()
        return w

    def remove(self, w: Watch) -> None:
        lst = self.linear if w.linear else self.phys
        if w in lst:
            lst.remove(w)
            self.refresh()

    # -- page marking ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute which pages are watched (after a watch change, or when paging or the A20
        gate changed how linear addresses map)."""
        bus, mmu = self.bus, self.mmu
        bus.rslow[:] = bus.rslow.translate(CLEAR_BIT[SLOW_WATCH])
        bus.wslow[:] = bus.wslow.translate(CLEAR_BIT[SLOW_WATCH])
        marks: dict[int, list] = {}

        def mark(lo, hi, w):
            for p in range(lo >> 12, ((hi - 1) >> 12) + 1):
                m = marks.setdefault(p, [False, False])
                m[0] |= w.read
                m[1] |= w.write

        for w in self.phys:
            mark(w.lo, w.hi, w)
        self._flat = []
        nofast_r, nofast_w = set(), set()
        if mmu.paging:
            for w in self.linear:
                for vpn in range(w.lo >> 12, ((w.hi - 1) >> 12) + 1):
                    if w.read:
                        nofast_r.add(vpn)
                    if w.write:
                        nofast_w.add(vpn)
        else:
            mask = bus.a20_mask
            for w in self.linear:
                for lo, hi in _split_mib(w.lo, w.hi):
                    plo = lo & mask
                    self._flat.append((plo, plo + (hi - lo), lo, w))
                    mark(plo, plo + (hi - lo), w)
        for p, (r, wr) in marks.items():
            bus.set_watch(p, r, wr)
        mmu.set_nofast(nofast_r, nofast_w)

    # -- dispatch --------------------------------------------------------------------------------
    def _on_bus(self, a: int, size: int, old, new, write: bool) -> None:
        end = a + size
        for w in self.phys:
            if a < w.hi and end > w.lo and (w.write if write else w.read):
                w.fn(w, a, size, old, new, write)
        for plo, phi, llo, w in self._flat:
            if a < phi and end > plo and (w.write if write else w.read):
                w.fn(w, llo + (a - plo), size, old, new, write)

    def on_linear(self, lin: int, size: int, old, new, write: bool) -> None:
        end = lin + size
        for w in self.linear:
            if lin < w.hi and end > w.lo and (w.write if write else w.read):
                w.fn(w, lin, size, old, new, write)


def _split_mib(lo: int, hi: int):
    """[lo, hi) cut at 1 MiB boundaries (the A20 mask maps each piece contiguously)."""
    while lo < hi:
        nxt = min(hi, (lo // ONE_MIB + 1) * ONE_MIB)
        yield lo, nxt
        lo = nxt

