"""The execution tracer: every retired instruction, data access, port access and interrupt of a
running machine, captured at block granularity and written as trace columns.

How it stays cheap (a Python callback per instruction would cost more than the instruction):

* **Instructions.**  The code cache lets a tracer rewrite each block as it is decoded
  (``CodeCache.set_transform``).  The capture numbers the block, remembers the linear address,
  EIP and length of each of its instructions in flat tables, and wraps the block's *first*
  operation only: on entry it appends ``(block number, instruction count, CS)`` to a list.  How
  many of the block's instructions retired is the difference between two consecutive entries'
  counts (a fault, a hook stop or the run's budget can end a block early; a REP string
  instruction counts each iteration, so a REP block's last instruction repeats).  Every 64 Ki
  instructions (a host timer, ``Machine.at_icount``) the entries are expanded into per-instruction
  columns with numpy and handed to the sink: the per-instruction work happens in C.
* **Memory.**  The MMU lets a tracer wrap its access functions (``MMU.set_access_wrapper``;
  while it does, REP strings move element by element).  Each access appends ``(instruction
  count, linear address, value, size/kind)``.  The instruction count of an access inside a block
  is the block's entry count plus the position of the instruction: instructions that may touch
  memory (a memory operand, a stack, string or far-transfer instruction: anything not on a list
  of register-only instructions) get a wrapper that notes their position; REP iterations add
  ``cpu.rep_done``.  Accesses made outside any block (pushing an interrupt frame) are marked
  ``system``.  Descriptor-table, TSS and page-table accesses go around these functions and are
  not recorded.
* **Registers** (optional, ``registers=True``): every operation gets a wrapper that appends the
  registers before it runs; REP instructions then run one iteration per block, so that each
  iteration has its own state (as QEMU's ``-singlestep`` logs them).  Several times slower; for
  ``aero trace diff``.
* **Port I/O, interrupts, exceptions, mode switches, CR3 loads, BIOS calls**: the hooks API
  (``aero.hooks``); they are rare, and cost what a hook costs.

An instruction whose fetch faults (a #PF or #GP before it is decoded) counts one in Aero's
instruction count but belongs to no block: the exception hook notices that no block entry
covers it and adds it with length 0.

The instruction count runs on across machine resets (``Machine.reset``), so the trace's count
is the CPU's; each reset is an event (the capture wraps ``Machine.reset`` while it runs).

The sink receives ``add(table, columns)`` with numpy columns (``aero.trace.tracefile``'s
tables); ``TraceWriter`` is one.  ``Capture.stop()`` returns the totals for the trace's header.
"""

from __future__ import annotations

import numpy as np

from ..cpu import flags as F
from ..faults import NAMES as FAULT_NAMES

FLUSH_EVERY = 1 << 16
M32 = 0xFFFFFFFF

# Instructions that never make a data access through the MMU's access functions when their
# operands are registers or immediates (no ModR/M memory operand): they need no position note.
PURE = frozenset((
    "ADD", "ADC", "SUB", "SBB", "AND", "OR", "XOR", "CMP", "TEST", "INC", "DEC", "NEG", "NOT",
    "MUL", "IMUL", "IMUL2", "IMUL3", "DIV", "IDIV", "ROL", "ROR", "RCL", "RCR", "SHL", "SHR",
    "SAR", "SHLD", "SHRD", "BT", "BTS", "BTR", "BTC", "BSF", "BSR", "BSWAP", "MOV", "MOVSX",
    "MOVZX", "XCHG", "XADD", "CMPXCHG", "CMOVCC", "SETCC", "LEA", "NOP", "CBW", "CWD", "CLC",
    "STC", "CMC", "CLD", "STD", "CLI", "STI", "LAHF", "SAHF", "SALC", "AAA", "AAS", "AAD", "AAM",
    "DAA", "DAS", "JCC", "JMP", "JCXZ", "LOOP", "JMP_RM", "HLT", "IN", "OUT", "CPUID", "RDTSC",
    "RDMSR", "WRMSR", "MOV_FROM_CR", "MOV_FROM_DR", "MOV_TO_DR", "MOV_FROM_SEG", "CLTS", "WAIT",
    "INVD", "WBINVD", "SMSW", "SLDT", "STR",
))
_MEM_SPECS = ("Ob", "Ov", "Xb", "Xv", "Yb", "Yv")

# flags of an access record: size in bits 0-2, write 8, system 16
_W, _SYS = 8, 16


def may_access_memory(ins) -> bool:
    """Whether an instruction can read or write data memory through the MMU's access
    functions (conservative: anything not known to be register-only)."""
    if 0 <= ins.mod < 3:
        return True
    e = ins.entry
    if any(o in _MEM_SPECS for o in e.ops):
        return True
    return e.name not in PURE


class Capture:
    """Traces ``machine`` into ``sink`` between ``start()`` and ``stop()``.

    ``memory``, ``io``, ``events``: what to capture besides instructions (all by default);
    ``registers``: the registers before every instruction too."""

    def __init__(self, machine, sink, memory: bool = True, io: bool = True, events: bool = True,
                 registers: bool = False, flush_every: int = FLUSH_EVERY):
        self.m = machine
        self.cpu = machine.cpu
        self.sink = sink
        self.want_memory = memory
        self.want_io = io
        self.want_events = events
        self.registers = registers
        self.flush_every = flush_every
        self.active = False
        self.first = self.end = None
        # block tables: block number -> first index into the flat instruction tables, count, REP
        self._pc: list[int] = []
        self._len: list[int] = []
        self._eip: list[int] = []
        self._bstart: list[int] = []
        self._bn: list[int] = []
        self._brep: list[int] = []
        self._np = None                  # numpy views of the tables, rebuilt when they grow
        self._np_sizes = (0, 0)
        self._pseudo: dict[int, int] = {}   # linear pc -> block number of a fetch-fault entry
        self._code_seen: set = set()
        self._code_rows: list = []
        self._entries: list[int] = []    # block, icount, cs; block, icount, cs; ...
        self._acc: list[int] = []        # icount, address, value, flags; ...
        self._regs: list[int] = []       # icount, 8 GPRs, eflags, es ss ds fs gs, cr0 cr2 cr3 cr4
        self._io: list = []
        self._events: list = []
        self._cur = [0]                  # position of the running instruction in its block
        self._last = None                # the last block entry flushed (bid, icount, cs)
        self._resets = 0
        self._hooks: list = []
        self._tick_fn = self._tick          # one bound method, so that cancel_timers finds it
        self.totals = {"instructions": 0, "memory": 0, "io": 0, "events": 0, "blocks": 0,
                       "unattributed": 0, "fetch_faults": 0}

    # ------------------------------------------------------------------------------------------
    def start(self) -> "Capture":
        cpu = self.cpu
        if cpu.cur_block is not None:
            raise RuntimeError("a trace starts between instructions")
        if cpu.cache.transform is not None:
            raise RuntimeError("another tracer is already installed")
        if self.want_memory and cpu.mmu.access_wrapper is not None:
            raise RuntimeError("another memory tracer is already installed")
        self.active = True
        self.first = cpu.icount
        m = self.m
        reset = m.reset

        def traced_reset():
            self._on_reset()
            reset()
        m.reset = traced_reset               # an instance attribute: removed by stop()
        cpu.cache.set_transform(self._transform)
        if self.want_memory:
            cpu.mmu.set_access_wrapper(self._wrap_access)
        hooks = self.m.hooks
        # exceptions are watched in any case: a faulting fetch is an instruction of its own
        self._hooks.append(hooks.interrupt(self._on_interrupt))
        if self.want_events:
            self._hooks.append(hooks.mode(self._on_mode))
            self._hooks.append(hooks.cr3(self._on_cr3))
            if self.m.aero_bios is not None:
                self._hooks.append(hooks.bios(self._on_bios))
        if self.want_io:
            self._hooks.append(hooks.io(self._on_io, 0, 0x10000))
        self._arm()
        return self

    def stop(self) -> dict:
        """Stop tracing (between instructions); everything captured reaches the sink."""
        if not self.active:
            return self.totals
        cpu = self.cpu
        self._flush()
        self.active = False
        self.m.cancel_timers(self._tick_fn)
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self.want_memory and cpu.mmu.access_wrapper == self._wrap_access:
            cpu.mmu.set_access_wrapper(None)
        if cpu.cache.transform == self._transform:
            cpu.cache.set_transform(None)
        self.m.__dict__.pop("reset", None)
        self.end = cpu.icount
        self.totals["resets"] = self._resets
        self.totals["blocks"] = len(self._bstart)
        return self.totals

    def _arm(self) -> None:
        m = self.m
        m.cancel_timers(self._tick_fn)
        m.at_icount(m.cpu.icount + self.flush_every, self._tick_fn)

    def _tick(self) -> None:
        if self.active:
            self._flush()
            self._arm()

    # ------------------------------------------------------------------------------------------
    # Blocks
    # ------------------------------------------------------------------------------------------
    def _transform(self, blk) -> None:
        cpu = self.cpu
        bid = len(self._bstart)
        start = len(self._pc)
        base = (blk.lin - blk.eips[0]) & M32
        code32 = bool(cpu.code32)
        icount = cpu.icount
        seen = self._code_seen
        for ins, eip in zip(blk.insns, blk.eips):
            pc = (base + eip) & M32
            self._pc.append(pc)
            self._len.append(ins.length)
            self._eip.append(eip)
            key = (pc, ins.raw, code32)
            if key not in seen:
                seen.add(key)
                self._code_rows.append((pc, code32, bytes(ins.raw), icount))
        n = len(blk.insns)
        self._bstart.append(start)
        self._bn.append(n)
        self._brep.append(1 if blk.rep else 0)
        ops = blk.ops
        mem = [k for k in range(n) if may_access_memory(blk.insns[k])] \
            if self.want_memory else []
        for k in range(n):
            ops[k] = self._wrap_op(ops[k], k, bid, mem, n - 1 if blk.rep else -1)
        blk.orig = list(ops)
        blk.hooked = True

    def _wrap_op(self, op, k, bid, mem, rep_at):
        """The operation of instruction ``k`` of block ``bid`` wrapped as the capture needs:
        the first records the block entry; with memory capture, the position of the running
        instruction is noted for the accesses (``_cur``) where it changes: the first operation
        notes the block's first instruction that may access memory (``mem``: their positions),
        each later one that may notes itself.  The REP instruction (at ``rep_at``) is noted as
        -(k + 1): its iterations add ``cpu.rep_done``."""
        cpu = self.cpu
        cur = self._cur
        ent = self._entries.extend
        rep = k == rep_at
        if k == 0:
            note = bool(mem)
            j = mem[0] if mem else 0
        else:
            note = k in mem[1:]
            j = k
        pos = -(j + 1) if j == rep_at else j
        if self.registers:
            note = True                     # every operation is wrapped anyway
            pos = -(k + 1) if rep else k
        if self.registers:
            reg = self._regs.extend
            R = cpu.R
            ARITH = ~F.ARITH
            arith = F.arith

            if k == 0:
                def run():
                    ic = cpu.icount
                    ent((bid, ic, cpu.sel[1]))
                    lf = cpu.lf
                    s = cpu.sel
                    reg((ic, *R, cpu.flags if lf is None else (cpu.flags & ARITH) | arith(lf),
                         s[0], s[2], s[3], s[4], s[5], cpu.cr0, cpu.cr2, cpu.cr3, cpu.cr4))
                    cur[0] = pos
                    if rep:
                        cpu.rep_budget = 1
                    op()
            else:
                def run():
                    lf = cpu.lf
                    s = cpu.sel
                    reg((cpu.icount + k, *R,
                         cpu.flags if lf is None else (cpu.flags & ARITH) | arith(lf),
                         s[0], s[2], s[3], s[4], s[5], cpu.cr0, cpu.cr2, cpu.cr3, cpu.cr4))
                    cur[0] = pos
                    if rep:
                        cpu.rep_budget = 1
                    op()
            return run
        if k == 0:
            if note:
                def run():
                    ent((bid, cpu.icount, cpu.sel[1]))
                    cur[0] = pos
                    op()
            else:
                def run():
                    ent((bid, cpu.icount, cpu.sel[1]))
                    op()
            return run
        if note:
            def run():
                cur[0] = pos
                op()
            return run
        return op

    # ------------------------------------------------------------------------------------------
    # Memory
    # ------------------------------------------------------------------------------------------
    def _wrap_access(self, mmu) -> None:
        mmu.read8 = self._reader(mmu.read8, 1)
        mmu.read16 = self._reader(mmu.read16, 2)
        mmu.read32 = self._reader(mmu.read32, 4)
        mmu.rmw8 = self._reader(mmu.rmw8, 1)
        mmu.rmw16 = self._reader(mmu.rmw16, 2)
        mmu.rmw32 = self._reader(mmu.rmw32, 4)
        mmu.write8 = self._writer(mmu.write8, 1)
        mmu.write16 = self._writer(mmu.write16, 2)
        mmu.write32 = self._writer(mmu.write32, 4)

    def _reader(self, read, size):
        cpu = self.cpu
        cur = self._cur
        ext = self._acc.extend
        sysf = size | _SYS

        def rd(lin):
            v = read(lin)
            if cpu.cur_block is None:
                ext((cpu.icount, lin, v, sysf))
            else:
                p = cur[0]
                if p < 0:
                    p = cpu.rep_done - p - 1
                ext((cpu.icount + p, lin, v, size))
            return v
        return rd

    def _writer(self, write, size):
        cpu = self.cpu
        cur = self._cur
        ext = self._acc.extend
        wf = size | _W
        sysf = size | _W | _SYS

        def wr(lin, v):
            write(lin, v)
            if cpu.cur_block is None:
                ext((cpu.icount, lin, v, sysf))
            else:
                p = cur[0]
                if p < 0:
                    p = cpu.rep_done - p - 1
                ext((cpu.icount + p, lin, v, wf))
        return wr

    # ------------------------------------------------------------------------------------------
    # Events
    # ------------------------------------------------------------------------------------------
    def _after(self) -> int:
        """The instruction count of the first instruction after what is happening now."""
        cpu = self.cpu
        if cpu.cur_block is None:
            return cpu.icount
        return cpu.now() - cpu.idle_time + 1

    def _on_interrupt(self, m, e) -> None:
        cpu = self.cpu
        ic = self._after()
        base = cpu.base[1]
        if e.kind == "fault" and e.vector != 1 and cpu.cur_block is None:
            self._check_fetch_fault((base + e.eip) & M32, e.eip)
        if not self.want_events:
            return
        ret = None if e.vector is None else (base + e.eip) & M32
        self._events.append((ic, e.kind, e.vector, e.error_code, e.cs, e.eip, ret, cpu.R[0],
                             cpu.cr2 if e.vector == 14 else None,
                             None if e.vector is None or e.kind != "fault" else
                             FAULT_NAMES.get(e.vector)))

    def _check_fetch_fault(self, pc: int, eip: int) -> None:
        """A fault delivered between blocks: if no block entry covers the faulting instruction,
        its fetch faulted; it counts one instruction of its own (length 0).  (Debug traps,
        vector 1, come after an instruction that did run: the caller leaves them out.)"""
        cpu = self.cpu
        x = cpu.icount - 1
        last = (tuple(self._entries[-3:]) if self._entries else self._last)
        if last is not None and last[0] >= 0:
            bid, ic0, _ = last
            k = x - ic0
            s, n = self._bstart[bid], self._bn[bid]
            if self._brep[bid]:
                if 0 <= k < n - 1 or (k >= n - 1 and self._pc[s + n - 1] == pc):
                    return
            elif 0 <= k < n:
                return
        if x < self.first:
            return
        pbid = self._pseudo.get(pc)
        if pbid is None:
            pbid = self._pseudo[pc] = len(self._bstart)
            self._bstart.append(len(self._pc))
            self._bn.append(1)
            self._brep.append(0)
            self._pc.append(pc)
            self._len.append(0)
            self._eip.append(eip)
        self._entries.extend((pbid, x, cpu.sel[1]))
        self.totals["fetch_faults"] += 1
        if self.registers:
            s = cpu.sel
            self._regs.extend((x, *cpu.R, cpu.get_flags(), s[0], s[2], s[3], s[4], s[5],
                               cpu.cr0, cpu.cr2, cpu.cr3, cpu.cr4))

    def _on_reset(self) -> None:
        """A machine reset (a triple fault, port 64h/92h/CF9h): an event at the count of the
        first instruction after it (the count runs on across resets)."""
        self._resets += 1
        self._events.append((self.cpu.icount, "reset", None, None, 0, 0xFFF0, None, None, None,
                             f"machine reset (the {_ordinal(self.m.resets + 1)} since power-on)"))

    def _on_mode(self, m, ch) -> None:
        self._event("mode", text=f"{_mode(ch.old)} -> {_mode(ch.new)}")

    def _on_cr3(self, m, ld) -> None:
        self._event("cr3", text=f"CR3 <- {ld.new:#010x}")

    def _on_bios(self, m, call) -> None:
        self._event("bios", vector=call.vector, text=str(call))

    def _event(self, kind, vector=None, text=None) -> None:
        cpu = self.cpu
        self._events.append((self._after(), kind, vector, None, cpu.sel[1], cpu.insn_eip(), None,
                             cpu.R[0], None, text))

    def _on_io(self, m, acc) -> None:
        cpu = self.cpu
        self._io.append((cpu.now() - cpu.idle_time, acc.port, acc.size, acc.value, acc.write))

    # ------------------------------------------------------------------------------------------
    # Flushing: expand block entries into instructions, hand the columns to the sink
    # ------------------------------------------------------------------------------------------
    def _tables(self):
        sizes = (len(self._pc), len(self._bstart))
        if self._np is None or self._np_sizes != sizes:
            self._np = (np.array(self._pc, dtype=np.uint32), np.array(self._len, dtype=np.uint8),
                        np.array(self._eip, dtype=np.uint32),
                        np.array(self._bstart, dtype=np.int64), np.array(self._bn, dtype=np.int64))
            self._np_sizes = sizes
        return self._np

    def _flush(self) -> None:
        cpu = self.cpu
        sink = self.sink
        if self._code_rows:
            rows = self._code_rows
            self._code_rows = []
            sink.add("code", {"pc": np.array([r[0] for r in rows], dtype=np.uint32),
                              "code32": np.array([r[1] for r in rows], dtype=bool),
                              "bytes": [r[2] for r in rows],
                              "icount": np.array([r[3] for r in rows], dtype=np.uint64)})
        if self._entries:
            e = np.array(self._entries, dtype=np.int64).reshape(-1, 3)
            self._entries.clear()               # in place: the wrappers hold its extend
            ic = e[:, 1]
            if len(e):
                self._last = tuple(int(v) for v in e[-1])
            bid, cs = e[:, 0], e[:, 2]
            # entries are in execution order; a later entry at the same count (a block stopped
            # before its first instruction, then entered again) replaces an earlier one
            d = np.diff(ic, append=cpu.icount)
            keep = d > 0
            if not keep.all():
                bid, ic, cs, d = bid[keep], ic[keep], cs[keep], d[keep]
            if len(d):
                self._expand(bid, ic, cs, d)
        elif self.registers:
            self._regs.clear()
        if self._acc:
            a = np.array(self._acc, dtype=np.int64).reshape(-1, 4)
            self._acc.clear()
            ic = a[:, 0]
            f = a[:, 3]
            sink.add("memory", {"icount": ic.astype(np.uint64),
                                "address": (a[:, 1] & M32).astype(np.uint32),
                                "size": (f & 7).astype(np.uint8),
                                "value": (a[:, 2] & M32).astype(np.uint32),
                                "write": (f & _W) != 0, "system": (f & _SYS) != 0})
            self.totals["memory"] += len(a)
        if self._io:
            rows = self._io
            self._io = []
            if rows:
                sink.add("io", {"icount": np.array([r[0] for r in rows], dtype=np.uint64),
                                "port": np.array([r[1] for r in rows], dtype=np.uint16),
                                "size": np.array([r[2] for r in rows], dtype=np.uint8),
                                "value": np.array([r[3] & M32 for r in rows], dtype=np.uint32),
                                "write": np.array([r[4] for r in rows], dtype=bool)})
                self.totals["io"] += len(rows)
        if self._events:
            rows = self._events
            self._events = []
            names = ("icount", "kind", "vector", "error_code", "cs", "eip", "return_pc", "eax",
                     "cr2", "text")
            sink.add("events", {n: [r[i] for r in rows] for i, n in enumerate(names)})
            self.totals["events"] += len(rows)

    def _expand(self, bid, ic, cs, d) -> None:
        """Block entries (number, trace count, CS, instructions retired) -> instruction rows."""
        pc_t, len_t, eip_t, bstart, bn = self._tables()
        n = bn[bid]
        over = (d > n) & (np.array(self._brep, dtype=bool)[bid] == 0)
        if over.any():
            self.totals["unattributed"] += int((d[over] - n[over]).sum())
        total = int(d.sum())
        which = np.repeat(np.arange(len(d)), d)
        j = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(d) - d, d)
        flat = bstart[bid][which] + np.minimum(j, n[which] - 1)
        icounts = (ic[which] + j).astype(np.uint64)
        cols = {"icount": icounts, "pc": pc_t[flat], "cs": cs[which].astype(np.uint16),
                "length": len_t[flat]}
        if self.registers:
            cols.update(self._register_columns(int(ic[0]), int(ic[0]) + total, eip_t[flat]))
        self.sink.add("instructions", cols)
        self.totals["instructions"] += total

    def _register_columns(self, lo: int, hi: int, eips) -> dict:
        r = np.array(self._regs, dtype=np.int64).reshape(-1, 19) if self._regs else \
            np.zeros((0, 19), dtype=np.int64)
        self._regs.clear()
        ic = r[:, 0]
        r = r[(ic >= lo) & (ic < hi)]
        # the last capture at a count wins (an instruction a hook stopped before ran later)
        rev = r[::-1]
        _, idx = np.unique(rev[:, 0], return_index=True)
        r = rev[idx]
        out = np.zeros((hi - lo, 19), dtype=np.int64)
        have = np.zeros(hi - lo, dtype=bool)
        pos = r[:, 0] - lo
        out[pos] = r
        have[pos] = True
        if not have.all():
            self.totals["unattributed"] += int((~have).sum())
        names = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eflags", "es", "ss",
                 "ds", "fs", "gs", "cr0", "cr2", "cr3", "cr4")
        cols = {"eip": eips}
        for i, name in enumerate(names):
            col = out[:, i + 1] & M32
            cols[name] = col.astype(np.uint16 if name in ("es", "ss", "ds", "fs", "gs")
                                    else np.uint32)
        return cols


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _mode(m) -> str:
    mode, paging = m
    return mode + (" + paging" if paging else "")


class MemorySink:
    """A sink keeping every column in memory (tests, small traces): ``table(name)`` joins them."""

    def __init__(self):
        self.parts: dict[str, list] = {}

    def add(self, table: str, cols: dict) -> None:
        self.parts.setdefault(table, []).append(cols)

    def table(self, name: str) -> dict:
        parts = self.parts.get(name, [])
        if not parts:
            return {}
        out = {}
        for k in parts[0]:
            vals = [p[k] for p in parts]
            if isinstance(vals[0], np.ndarray):
                out[k] = np.concatenate(vals)
            else:
                out[k] = [v for lst in vals for v in lst]
        return out
