"""A compiled unit: a translated region (``aero.jit.translate``) behind the block interface
(``aero.cpu.blocks``).

A unit takes its entry block's place in the code cache and answers the run loop as a block
would:

* ``execute(cpu, limit)`` runs the region until it leaves it, the budget would be passed, or
  something asks it to stop, and returns how many instructions retired (when even the entry
  block does not fit the budget, the interpreter block runs the first ``limit`` instructions);
* after an exception, ``fault_index`` is the position of the faulting instruction in ``eips`` /
  ``insns`` (every block's instructions, the entry block's first) and ``fault_retired`` how many
  retired before it; both come from the traceback's line and the frame's locals, which also give
  back the registers held in locals;
* ``position()`` (instructions retired in this execution before the running one) and
  ``running_eip()`` read the executing frame's line and locals, costing nothing until asked.
"""

from __future__ import annotations

import struct
import sys
import time

from ..cpu import codegen
from ..cpu.blocks import _PARTIAL, JumpBlock
from .translate import translate

_BIG = 1 << 40
_GLOBALS: dict | None = None


def _setlf(cpu, lf) -> None:
    """Lazy flags a translation kept in locals, put where the interpreter has them before a
    slow path calls out (``aero.jit.translate.deferred_flag_stores``)."""
    cpu.lf = lf


def _seteip(cpu, eip, *lf) -> None:
    """The block's EIP (and lazy flags left in locals), put where the interpreter has them
    before a slow path calls out, in a block that stores neither itself."""
    cpu.eip = eip
    if lf:
        cpu.lf = lf[0]


def _globals() -> dict:
    """What translations see: the templates' namespace, and the bus's struct formats for RAM
    accessed in place (``aero.jit.memory.RAM_BINDINGS``)."""
    global _GLOBALS
    if _GLOBALS is None:
        _GLOBALS = {**codegen.namespace(), "_S16": struct.Struct("<H"),
                    "_S32": struct.Struct("<I"), "_setlf": _setlf,
                    "_seteip": _seteip}
    return _GLOBALS


class Unit:
    __slots__ = ("block", "blocks", "run", "code", "tr", "count", "eips", "insns", "offsets",
                 "end_eip", "rep", "check", "gen", "key", "lin", "lin_end", "max_off", "pages",
                 "iphys", "execs", "retired", "compile_s", "hits")

    def __init__(self, cpu, blocks):
        t0 = time.perf_counter()
        entry = blocks[0]
        self.block = entry
        self.blocks = blocks
        code32 = bool(entry.key[1] & 1)
        tr = translate(blocks, code32, entry.eips[0])
        local: dict = {}
        exec(compile(tr.source, f"<aero-jit {entry.lin:#010x}>", "exec"), _globals(), local)
        self.run = local["make"](cpu, cpu.R, *tr.consts)
        self.code = self.run.__code__
        for name, ih in tr.counters.items():     # Hook.hits reads the unit's counts
            ih.hook._count_in(self, self.run.__closure__[self.code.co_freevars.index(name)])
        self.tr = tr
        self.count = entry.count
        self.eips = [e for b in blocks for e in b.eips]
        self.insns = [i for b in blocks for i in b.insns]
        self.iphys = [p for b in blocks for p in b.iphys]
        self.offsets = []
        n = 0
        for b in blocks:
            self.offsets.append(n)
            n += b.count
        self.end_eip = entry.end_eip
        self.rep = False
        self.check = any(b.check for b in blocks)
        self.gen = entry.gen
        self.key = entry.key
        self.lin = min(b.lin for b in blocks)
        self.lin_end = max(b.lin_end for b in blocks)
        self.max_off = max(b.max_off for b in blocks)
        pages = {}
        for b in blocks:
            pages.update(b.pages)
        self.pages = list(pages.items())
        self.execs = 0
        self.retired = 0                        # instructions run as translated code
        self.hits = 0
        self.compile_s = time.perf_counter() - t0

    # -- the block interface -----------------------------------------------------------------------
    def execute(self, cpu, limit):
        if limit < self.count:
            return self.block._partial(cpu, limit)
        if cpu.hook_skip:                       # resuming at a hook's stop (one instruction):
            return self.block.execute(cpu, limit)   # translations never skip host hooks
        self.execs += 1
        try:
            n = self.run(limit)
        except BaseException as e:
            self._faulted(cpu, e.__traceback__)
            self.retired += cpu.fault_retired
            raise
        self.retired += n
        return n

    def _frame_of(self, tb):
        code = self.code
        while tb is not None:
            if tb.tb_frame.f_code is code:
                return tb.tb_frame, tb.tb_lineno
            tb = tb.tb_next
        return None, 0

    def _faulted(self, cpu, tb) -> None:
        frame, line = self._frame_of(tb)
        if frame is None:                       # not from the generated code: the entry
            cpu.fault_index = cpu.fault_retired = 0
            return
        bi, i = self.tr.locate(line)
        loc = frame.f_locals
        R = cpu.R
        # registers the faulting instruction had written back are as its helper left them
        at = self.tr.where.index((bi, i))
        fresh = self.tr.flushed[at]
        for r in self.tr.regs:
            v = loc.get(f"r{r}")
            if v is not None and r not in fresh:
                R[r] = v
        lazy = self.tr.lazy[at]
        if lazy is not None:                    # the flags an earlier instruction left in locals
            cpu.lf = eval(lazy, {}, dict(loc))
        cpu.fault_index = self.offsets[bi] + i
        cpu.fault_retired = loc.get("done", 0) + i

    def _running(self):
        """(frame, block index, instruction index) of the instruction running now, or None."""
        code = self.code
        f = sys._getframe(2)
        while f is not None:
            if f.f_code is code:
                bi, i = self.tr.locate(f.f_lineno)
                return f, bi, i
            if f.f_code is _PARTIAL:
                return None
            f = f.f_back
        return None

    def position(self) -> int:
        at = self._running()
        if at is None:
            return self.block.position()
        f, bi, i = at
        return f.f_locals.get("done", 0) + i

    def running_eip(self) -> int:
        at = self._running()
        if at is None:
            return self.block.running_eip()
        f, bi, i = at
        return self.blocks[bi].eips[i]

    def exit(self) -> None:
        """The translation checks ``cpu.exit_req`` itself; the entry block's operations are
        patched for when it runs a budget's last instructions (``execute``)."""
        self.block.exit()

    def restore(self) -> None:
        self.block.restore()

    def __len__(self) -> int:
        """As many as a run may ask of it (a region loops): a device pulling the end of the
        run in always asks it to stop."""
        return _BIG

    # -- inspection ----------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.tr.source

    @property
    def instructions(self) -> int:
        return len(self.insns)

    def __repr__(self):
        return (f"<Unit {self.block.lin:#x} {len(self.blocks)} blocks {len(self.insns)} insns"
                f"{' dead' if self.gen < 0 else ''}>")


def is_jump(blk) -> bool:
    return isinstance(blk, JumpBlock)
