"""Blocks of decoded code, the one interface the run loop executes them through, and the code
cache.

**The block interface.**  The run loop (``CPU.run``) knows blocks only through this contract, so
the closure interpreter (``Block`` here) and the JIT's compiled units are interchangeable:

* ``execute(cpu, limit) -> retired``: run instructions from the block's start, at most ``limit``
  of them (REP iterations count one each), leave ``cpu.eip`` at the next instruction and return
  how many retired.
* If an exception escapes ``execute``, the block has set ``cpu.fault_index`` to the position
  (index into ``eips`` / ``insns``) of the instruction it came from and ``cpu.fault_retired`` to
  the number of instructions that retired before it.  The run loop does the rest, once for
  every kind of block: a ``CPUFault`` is attributed to that instruction (EIP points at it, it
  counts one, and so do the REP iterations it completed, ``cpu.rep_done``) and delivered; a
  ``BlockExit`` (the early stop, below) leaves EIP at it without counting it; anything else is
  an emulator bug, reported with that instruction's bytes and disassembly.
* **Early stop.**  ``cpu.request_exit()`` asks the running block to stop before its next
  instruction starts (self-modifying code, an interrupt line raised from inside an instruction,
  a hook asking to stop).  It calls ``exit()`` on ``cpu.cur_block``; the closure interpreter
  swaps its remaining operations for ones raising ``BlockExit``; a compiled unit tests
  ``cpu.exit_req`` where it can be set (after slow-path calls, at loop heads).  Either way the
  run loop's slow path runs next (``cpu.attn``) and ``restore()`` undoes the swap.
* ``position()``: the position of the instruction running now, for reading virtual time exactly
  inside a block (``CPU.now``; MMIO and port accesses).  Costs nothing until asked.
* Attributes the run loop reads: ``gen`` (valid while equal to ``mmu.gen``; -1 once
  invalidated), ``check`` (re-check interrupts, mode and TF after it), ``eips``, ``insns``,
  ``rep`` (its last instruction is a REP string instruction).

**The code cache** holds blocks by what determines their meaning: the physical address of their
first byte together with the CS base, EIP and code size they were decoded for (EIP enters
relative branch targets; the base, the linear addresses hooks are bound to).  A *jump cache*
keyed by CS base, code size and EIP finds the block for the next instruction without
translating; an entry is trusted while the MMU generation is unchanged, and otherwise every page
the block was decoded from is translated again (paging, CR3, INVLPG and the A20 gate all bump
the generation) and must give the same physical pages, else the block for the new physical code
is looked up or decoded.  Writes to bytes a block was decoded from (any page, including the
second half of a straddling instruction) invalidate it at once (``code_written``).
"""

from __future__ import annotations

import sys

from ..faults import BlockExit, CPUFault
from .codegen import compile_insn
from .decoder import decode

MAX_BLOCK = 64           # instructions per block at most
# Control transfers after which the run loop must re-check mode, interrupts and TF.
FAR_OR_SYS = frozenset(("CALLF", "CALLF_M", "JMPF", "JMPF_M", "RETF", "IRET", "INT", "INT3",
                        "INTO", "INT1", "SYSENTER", "SYSEXIT", "UD2", "BOUND"))
CS = 1


def _stop_op():
    raise BlockExit()


class Block:
    """The closure interpreter's block: one compiled closure per instruction."""

    __slots__ = ("ops", "orig", "count", "eips", "insns", "end_eip", "rep", "check", "gen",
                 "key", "lin", "lin_end", "max_off", "pages", "iphys", "hooked", "hits")

    def execute(self, cpu, limit):
        ops = self.ops
        n = self.count
        if limit >= n:
            # no counter in the loop: the list iterator knows how far it got
            it = iter(ops)
            try:
                for f in it:
                    f()
            except BaseException:
                cpu.fault_index = cpu.fault_retired = n - it.__length_hint__() - 1
                raise
            cpu.eip = self.end_eip
            return n
        return self._partial(cpu, limit)

    def _partial(self, cpu, limit):
        """The first ``limit`` instructions only (a budget boundary, or one instruction)."""
        ops = self.ops
        k = 0
        try:
            while k < limit:
                ops[k]()
                k += 1
        except BaseException:
            cpu.fault_index = cpu.fault_retired = k
            raise
        cpu.eip = self.eips[k]
        return k

    def position(self) -> int:
        """The index of the instruction running now, read from the ``execute`` frame below
        (its list iterator, or the counter of ``_partial``)."""
        f = sys._getframe(1)
        while f is not None:
            code = f.f_code
            if code is _PARTIAL:
                return f.f_locals["k"]
            if code in _WHOLE:
                return len(self.ops) - f.f_locals["it"].__length_hint__() - 1
            f = f.f_back
        return len(self.ops) - 1

    def running_eip(self) -> int:
        """EIP of the instruction running now."""
        return self.eips[self.position()]

    def exit(self) -> None:
        self.ops[:] = [_stop_op] * len(self.ops)

    def restore(self) -> None:
        self.ops[:] = self.orig

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self):
        return (f"<Block {self.lin:#x} {len(self.ops)} insns"
                f"{' dead' if self.gen < 0 else ''}>")


class JumpBlock(Block):
    """A block whose last instruction sets EIP itself (a jump, branch, call, return...)."""

    __slots__ = ()

    def execute(self, cpu, limit):
        ops = self.ops
        n = self.count
        if limit >= n:
            it = iter(ops)
            try:
                for f in it:
                    f()
            except BaseException:
                cpu.fault_index = cpu.fault_retired = n - it.__length_hint__() - 1
                raise
            return n
        return self._partial(cpu, limit)


class RepBlock(Block):
    """A block whose last instruction is a REP string instruction: it runs at most as many
    iterations as the budget leaves (``cpu.rep_budget``), counts each, and sets EIP itself
    (back to itself while iterations remain)."""

    __slots__ = ()

    def execute(self, cpu, limit):
        ops = self.ops
        n = self.count
        if limit >= n:
            cpu.rep_budget = limit - n + 1
            cpu.rep_done = 0
            it = iter(ops)
            try:
                for f in it:
                    f()
            except BaseException:
                cpu.fault_index = cpu.fault_retired = n - it.__length_hint__() - 1
                raise
            return n + cpu.rep_done - 1
        return self._partial(cpu, limit)


_WHOLE = (Block.execute.__code__, JumpBlock.execute.__code__, RepBlock.execute.__code__)
_PARTIAL = Block._partial.__code__


def hooked(op, points, cpu, eip, lin, phys):
    """Wrap an instruction's closure so that ``points`` (exec hooks, block-entry hooks, guest
    instruction breakpoints; ``aero.cpu.hookpoints``) fire before it runs, with EIP pointing at
    it (inside a block EIP is otherwise only brought up to date at the end)."""
    def run():
        cpu.eip = eip
        for p in points:
            p.fire(cpu, lin, phys)
        op()
    return run


class CodeCache:
    def __init__(self, cpu):
        self.cpu = cpu
        self.jump: dict[int, Block] = {}          # CS base | code size | EIP -> block
        self.blocks: dict[tuple, Block] = {}      # (physical start, jump key) -> block
        self.pages: dict[int, set] = {}           # physical page -> blocks decoded from it
        self.code_bytes: dict[int, bytearray] = {}  # physical page -> bytes that are code
        self.compiles = 0
        self.invalidations = 0
        self.jit = None                           # aero.jit.JIT, when the JIT tier is on
        # fn(block) called on every block as it is decoded, before it first runs, to rewrite its
        # ``ops`` and ``orig`` (an execution tracer, ``aero.trace.capture``; it marks the block
        # ``hooked``, so the JIT leaves it interpreted); None: nothing
        self.transform = None

    def set_transform(self, fn) -> None:
        """Install (or with None remove) ``transform``; every block is decoded again."""
        self.transform = fn
        self.flush()

    # -- lookup ------------------------------------------------------------------------------------
    def lookup(self, key: int, stale: Block | None) -> Block:
        """The block for CS:EIP (``key`` = the jump-cache key) when the jump cache has none or a
        stale one.  Raises CPUFault when the first instruction cannot be fetched."""
        cpu = self.cpu
        gen = cpu.mmu.gen
        if stale is not None and stale.gen >= 0 and self._still_valid(stale):
            stale.gen = gen
            return stale
        phys = cpu.fetch_phys(cpu.eip)
        pkey = (phys, key)
        blk = self.blocks.get(pkey)
        if blk is None or not self._still_valid(blk):
            if blk is not None:
                self.kill(blk)
            blk = self._compile(key, pkey)
        blk.gen = gen
        self.jump[key] = blk
        return blk

    def _still_valid(self, blk: Block) -> bool:
        """Every page the block was decoded from still translates to the same physical page
        (and its bytes still lie inside the CS limit)."""
        cpu = self.cpu
        if blk.max_off > cpu.limit[CS]:
            return False
        fetch = cpu.mmu.translate_fetch
        try:
            for lin_page, phys_page in blk.pages:
                if fetch(lin_page) != phys_page:
                    return False
        except CPUFault:
            return False
        return True

    # -- decoding ------------------------------------------------------------------------------------
    def _compile(self, key: int, pkey: tuple) -> Block:
        cpu = self.cpu
        bus = cpu.bus
        peek = bus.peek8
        code32 = cpu.code32
        emask = 0xFFFFFFFF if code32 else 0xFFFF
        base = cpu.base[CS]
        eip = cpu.eip
        points = cpu.exec_points if cpu.exec_points.count else None
        ops, eips, insns, iphys = [], [], [], []
        code_bytes = []                             # physical address of every byte decoded
        pages = {}                                  # linear page -> physical page
        start_page = (base + eip) >> 12
        max_off = eip
        ends = None
        hookpts = {}                                # instruction index -> (points, lin, phys)
        while True:
            phys_of = []

            def fetch(i, _eip=eip):
                off = (_eip + i) & emask
                p = cpu.fetch_phys(off)
                phys_of.append((off, p))
                return peek(p)
            try:
                ins = decode(fetch, eip, code32)
            except CPUFault:
                if not ops:
                    raise
                break                   # the fault belongs to the next block's first instruction
            if points is not None and ops and \
                    points.breakpoint_at((base + eip) & 0xFFFFFFFF, phys_of[0][1]):
                break                   # a breakpoint's instruction starts a block of its own
            for off, p in phys_of:
                pages[((base + off) & 0xFFFFFFFF) & ~0xFFF] = p & ~0xFFF
                if off > max_off:
                    max_off = off
            code_bytes.extend(p for _, p in phys_of)
            op, ends = compile_insn(cpu, ins, code32)
            if points is not None:
                lin = (base + eip) & 0xFFFFFFFF
                hit = points.at(lin, phys_of[0][1], first=not ops, ins=ins)
                if hit:
                    op = hooked(op, hit, cpu, eip, lin, phys_of[0][1])
                    hookpts[len(ops)] = (tuple(hit), lin, phys_of[0][1])
            insns.append(ins)
            eips.append(eip)
            iphys.append(phys_of[0][1])
            ops.append(op)
            eip = (eip + ins.length) & emask
            if ends is not None or len(ops) >= MAX_BLOCK:
                break
            if (base + eip) >> 12 != start_page:
                break
        blk = RepBlock() if ends == "rep" else JumpBlock() if ends in ("jump", "cond") else \
            Block()
        blk.key = pkey
        blk.rep = ends == "rep"
        # after this block the run loop re-checks interrupts, mode and TF
        blk.check = ends in ("sync", "rep") or (ends == "jump" and ins.entry.name in FAR_OR_SYS)
        blk.gen = cpu.mmu.gen
        blk.ops = ops
        blk.orig = list(ops)
        blk.eips = eips
        blk.insns = insns
        blk.iphys = iphys
        blk.end_eip = eip
        blk.count = len(ops)
        blk.lin = (base + eips[0]) & 0xFFFFFFFF
        blk.lin_end = blk.lin + sum(i.length for i in insns)
        blk.max_off = max_off
        blk.pages = list(pages.items())
        # register the code bytes for self-modifying-code detection
        for a in code_bytes:
            self._mark_byte(a, blk)
        # the exec points compiled into it (the JIT compiles them into its translation too), or
        # False; a transform that rewrites ``ops`` sets True (the block then stays interpreted)
        blk.hooked = hookpts or False
        if self.transform is not None:
            self.transform(blk)
        self.blocks[pkey] = blk
        self.compiles += 1
        if self.jit is not None:
            self.jit.adopt(blk)
        return blk

    def replace(self, blk, new) -> None:
        """Put ``new`` (the JIT's unit for ``blk``, same code and keys) in ``blk``'s place."""
        if self.blocks.get(blk.key) is blk:
            self.blocks[blk.key] = new
        jkey = blk.key[1]
        if self.jump.get(jkey) is blk:
            self.jump[jkey] = new
        for _, phys_page in blk.pages:
            s = self.pages.get(phys_page >> 12)
            if s is not None:
                s.discard(blk)
        for _, phys_page in new.pages:          # a unit covers its other blocks' pages too
            self.pages.setdefault(phys_page >> 12, set()).add(new)
        blk.gen = -1

    def _mark_byte(self, a: int, blk: Block) -> None:
        page = a >> 12
        cb = self.code_bytes.get(page)
        if cb is None:
            cb = self.code_bytes[page] = bytearray(4096)
            self.cpu.bus.set_code(page, True)
        cb[a & 0xFFF] = 1
        self.pages.setdefault(page, set()).add(blk)

    # -- invalidation --------------------------------------------------------------------------------
    def code_written(self, addr: int, size: int) -> None:
        """Bytes [addr, addr+size) were written (the bus saw a write to a code page)."""
        page = addr >> 12
        cb = self.code_bytes.get(page)
        if cb is None:
            self.cpu.bus.set_code(page, False)
            return
        off = addr & 0xFFF
        if not any(cb[off: off + size]):
            return
        for blk in list(self.pages.get(page, ())):
            self.kill(blk)

    def kill(self, blk: Block) -> None:
        """Invalidate one block: it is never run again, and stops before its next instruction if
        it is running now."""
        if blk.gen == -1:
            return
        blk.gen = -1
        if self.blocks.get(blk.key) is blk:
            del self.blocks[blk.key]
        for _, phys_page in blk.pages:
            page = phys_page >> 12
            s = self.pages.get(page)
            if s is not None:
                s.discard(blk)
                if not s:
                    del self.pages[page]
                    self.code_bytes.pop(page, None)
                    self.cpu.bus.set_code(page, False)
        self.invalidations += 1
        if self.cpu.cur_block is blk:
            self.cpu.request_exit()

    def flush(self) -> None:
        """Invalidate every block."""
        running = self.cpu.cur_block
        for blk in self.blocks.values():
            blk.gen = -1
        self.blocks.clear()
        self.jump.clear()
        set_code = self.cpu.bus.set_code
        for page in self.code_bytes:
            set_code(page, False)
        self.pages.clear()
        self.code_bytes.clear()
        if running is not None:
            self.cpu.request_exit()

    def restored(self, changed_pages, ram_pages: int) -> None:
        """The machine was put back in a saved state whose RAM differs from what it held in
        ``changed_pages`` (4 KiB page numbers): the blocks decoded from those pages, or from
        anything that is not RAM, go; the others decode the same bytes as before and stay
        (a restore would otherwise re-translate all the code it runs next)."""
        doomed = set()
        pages = self.pages
        for p in changed_pages:
            doomed.update(pages.get(p, ()))
        for p, blks in pages.items():
            if p >= ram_pages:
                doomed.update(blks)
        for blk in doomed:
            self.kill(blk)
        self.jump.clear()

    def invalidate_linear(self, lo: int, hi: int) -> None:
        """Invalidate the blocks holding instructions at linear addresses in [lo, hi) (hooks on
        those addresses changed)."""
        for blk in [b for b in self.blocks.values() if b.lin < hi and b.lin_end > lo]:
            self.kill(blk)

    def invalidate_physical(self, lo: int, hi: int) -> None:
        for page in range(lo >> 12, ((hi - 1) >> 12) + 1):
            for blk in list(self.pages.get(page, ())):
                self.kill(blk)

    # -- inspection ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.blocks)
