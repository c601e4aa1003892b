"""The JIT tier: hot blocks translated into Python functions (``aero.jit.translate``), run
behind the same block interface as the interpreter (``aero.jit.unit``).

With a ``JIT`` attached to the code cache (``CodeCache.jit``), new blocks count their executions;
at ``threshold`` a block is translated and its ``Unit`` takes its place in the cache (the jump
cache, the physical index, the per-page sets that invalidation uses), so everything that
invalidates blocks invalidates units the same way.  Blocks that end in a REP string instruction
and blocks whose operations a transform rewrote (``hooked is True``: an execution tracer) stay
interpreted; exec points (hooks, guest instruction breakpoints) are compiled into the
translation as into the interpreter's closures.
"""

from __future__ import annotations

from ..cpu.blocks import Block, JumpBlock
from .region import form
from .unit import Unit

DEFAULT_THRESHOLD = 800


class CountingBlock(Block):
    """An interpreter block counting its executions until the JIT takes it."""

    __slots__ = ()

    def execute(self, cpu, limit):
        n = Block.execute(self, cpu, limit)
        self.hits += 1
        jit = cpu.cache.jit
        if jit is not None and self.hits > jit.threshold:
            jit.promote(self)                   # the unit runs from the next lookup on
        return n


class CountingJumpBlock(JumpBlock):
    __slots__ = ()

    def execute(self, cpu, limit):
        n = JumpBlock.execute(self, cpu, limit)
        self.hits += 1
        jit = cpu.cache.jit
        if jit is not None and self.hits > jit.threshold:
            jit.promote(self)
        return n


class JIT:
    def __init__(self, cpu, threshold: int = DEFAULT_THRESHOLD):
        self.cpu = cpu
        self.threshold = threshold
        self.units: list[Unit] = []         # every unit made (live and invalidated)
        self.compiles = 0
        self.failures: list[str] = []       # why a block could not be translated
        self.compile_s = 0.0

    def adopt(self, blk) -> None:
        """A block the code cache just decoded: count it, if it may be translated."""
        if blk.rep or blk.hooked is True:
            return
        blk.hits = 0
        blk.__class__ = CountingJumpBlock if isinstance(blk, JumpBlock) else CountingBlock

    def promote(self, blk):
        """Translate ``blk`` and put its unit in its place; None if it cannot be.  Called when
        ``blk`` has just run to its end (never while it runs: a block replaced while running
        would no longer be found by the self-modifying-code detector)."""
        base = JumpBlock if isinstance(blk, JumpBlock) else Block
        blk.__class__ = base                    # counted enough, whatever happens
        cpu = self.cpu
        gen = cpu.mmu.gen
        if blk.gen != gen:
            return None
        try:
            blocks = form(cpu.cache, blk, lambda b: not b.rep and getattr(b, "hooked", False) is not True
                          and b.gen == gen)
            unit = Unit(cpu, blocks)
        except Exception as e:                  # noqa: BLE001 (the interpreter goes on with it)
            self.failures.append(f"{blk.lin:#x}: {type(e).__name__}: {e}")
            return None
        self.compiles += 1
        self.compile_s += unit.compile_s
        self.units.append(unit)
        self.cpu.cache.replace(blk, unit)
        return unit

    def live_units(self) -> list[Unit]:
        return [u for u in self.units if u.gen >= 0]
