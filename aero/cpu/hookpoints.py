"""Execution points: what must run before particular instructions, compiled into the blocks that
hold them and nowhere else.

A point covers a range of linear or physical addresses (or every instruction), or the first
instruction of every block (``entry``).  A point on a single address (a breakpoint) also ends
the block before its instruction, so the instruction starts a block of its own.  When a block is decoded, each instruction whose address
a point covers gets its closure wrapped (``aero.cpu.blocks.hooked``) so that
``point.fire(cpu, lin, phys)`` runs before it, with ``cpu.eip`` pointing at it (``lin`` and
``phys`` are its linear and physical addresses); adding or removing a point invalidates only the blocks it concerns
(``CPU.add_exec_point``).  With no point installed nothing is wrapped and nothing is checked.

``fire`` may

* return: the instruction runs;
* raise ``BlockExit`` after setting ``cpu.hook_stop``: the machine stops *before* the
  instruction (a host breakpoint; ``aero.hooks``);
* raise ``CPUFault``: the instruction faults before it runs (the guest's own DR0-DR3
  instruction breakpoints, ``aero.cpu.debugregs``).

Host points (``guest=False``) fire before guest points at the same instruction, and are skipped
for the first instruction of a run resumed where one of them stopped it (``cpu.hook_skip``), so
that continuing from a breakpoint executes the instruction instead of stopping again.
"""

from __future__ import annotations

EVERY = (0, 1 << 32)


class ExecPoint:
    __slots__ = ("lo", "hi", "physical", "entry", "guest", "fire", "match")

    def __init__(self, fire, lo: int = 0, hi: int = 1 << 32, physical: bool = False,
                 entry: bool = False, guest: bool = False, match=None):
        """``match``: a predicate on the decoded instruction (``aero.cpu.decoder.Insn``);
        the point then covers only the instructions in its range it accepts (all RETs, the
        magic breakpoint ``xchg bx, bx``)."""
        if not 0 <= lo < hi <= 1 << 32:
            raise ValueError(f"bad address range {lo:#x}-{hi:#x}")
        self.fire = fire
        self.lo, self.hi = lo, hi
        self.physical = physical
        self.entry = entry
        self.guest = guest
        self.match = match

    @property
    def everywhere(self) -> bool:
        return self.entry or (self.lo, self.hi) == EVERY

    def __repr__(self):
        where = "block entry" if self.entry else \
            f"{'phys' if self.physical else 'lin'} {self.lo:#x}-{self.hi:#x}"
        return f"ExecPoint({where}{', guest' if self.guest else ''})"


class ExecPoints:
    """The installed points, indexed for the decoder's per-instruction question ``at``."""

    def __init__(self):
        self.count = 0
        self._single: dict[tuple[bool, int], list] = {}    # (physical, address) -> points
        self._ranges: list[ExecPoint] = []                 # wider ranges and block entries

    def add(self, pt: ExecPoint) -> None:
        if pt.hi - pt.lo == 1 and not pt.entry and pt.match is None:
            self._single.setdefault((pt.physical, pt.lo), []).append(pt)
        else:
            self._ranges.append(pt)
        self.count += 1

    def remove(self, pt: ExecPoint) -> bool:
        if pt.hi - pt.lo == 1 and not pt.entry and pt.match is None:
            lst = self._single.get((pt.physical, pt.lo), [])
            if pt not in lst:
                return False
            lst.remove(pt)
            if not lst:
                del self._single[(pt.physical, pt.lo)]
        else:
            if pt not in self._ranges:
                return False
            self._ranges.remove(pt)
        self.count -= 1
        return True

    def breakpoint_at(self, lin: int, phys: int) -> bool:
        """Whether a single-address point is on this instruction: blocks end before it, so
        that a breakpoint always stops at a block boundary (wider ranges, such as a tracer's
        every-instruction point, are compiled into the middle of blocks instead)."""
        return (False, lin) in self._single or (True, phys) in self._single

    def at(self, lin: int, phys: int, first: bool, ins=None) -> list:
        """The points that fire before the instruction ``ins`` at ``lin`` (physical ``phys``),
        host points first; ``first``: it starts a block."""
        out = list(self._single.get((False, lin), ())) + list(self._single.get((True, phys), ()))
        for pt in self._ranges:
            if pt.entry:
                if first:
                    out.append(pt)
            elif pt.lo <= (phys if pt.physical else lin) < pt.hi and \
                    (pt.match is None or pt.match(ins)):
                out.append(pt)
        if len(out) > 1:
            out.sort(key=lambda p: p.guest)
        return out
