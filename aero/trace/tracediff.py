"""``aero trace diff A B``: the first divergence between two executions.

Each side is an Aero trace (``aero trace record``; with ``--registers`` for register state) or a
QEMU log (``qemu-system-i386 -accel tcg -singlestep -d exec,cpu,nochain -D LOG``,
``aero.trace.qemulog``).  The two are lined up instruction by instruction (step 0 is each side's
first instruction, or its first at ``--from-pc``, after ``--skip-a/--skip-b``) and compared:

* the PC of every step;
* the registers before every step, those both sides have (``--ignore`` some; ``--eflags-mask``
  keeps only some EFLAGS bits);
* with two Aero traces that hold memory: every memory access (address, size, value, direction).

The first step where anything differs is reported with both states side by side and the
instruction before it, the one that produced the difference (a wrong result shows in the state
before the *next* instruction; a wrong branch in the next PC).  Instructions whose fetch faulted
count in Aero's instruction count but never reach QEMU's log; against a QEMU log they are left
out of the comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .qemulog import looks_like_qemu_log, read_qemu_log
from .tracefile import REGISTERS, TraceError, TraceFile, is_trace

COMPARED = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags",
            "es", "cs", "ss", "ds", "fs", "gs", "cr0", "cr2", "cr3", "cr4")


@dataclass
class DiffOptions:
    from_pc: int | None = None
    skip_a: int = 0
    skip_b: int = 0
    max_steps: int | None = None
    ignore: set = field(default_factory=set)
    eflags_mask: int | None = None
    memory: bool = True
    context: int = 3


class Side:
    """One execution: ``cols`` (pc, icount and the registers it has, numpy arrays), its kind
    ("aero" or "qemu"), and for an Aero trace the trace itself (memory, disassembly)."""

    def __init__(self, path: str, kind: str, cols: dict, trace: TraceFile | None = None):
        self.path = path
        self.kind = kind
        self.cols = cols
        self.trace = trace
        self.code = trace.code() if trace is not None else None
        self.offset = 0                 # index of step 0

    @property
    def n(self) -> int:
        return len(self.cols["pc"]) - self.offset

    def regs(self) -> set:
        return {k for k in self.cols if k in COMPARED}

    def label(self, i: int) -> str:
        """How this side names its step ``i``: the instruction count, or the log record."""
        j = self.offset + i
        if self.kind == "aero":
            return f"icount {int(self.cols['icount'][j])}"
        return f"record {j}"

    def describe(self, i: int) -> str:
        j = self.offset + i
        if j < 0 or j >= len(self.cols["pc"]):
            return "(none)"
        pc = int(self.cols["pc"][j])
        text = ""
        if self.code is not None:
            eip = int(self.cols["eip"][j]) if "eip" in self.cols else None
            ic = int(self.cols["icount"][j]) if "icount" in self.cols else None
            text = "  " + self.code.disasm(pc, eip, ic)
        return f"{pc:#010x}{text}"


def load_side(path: str, drop_fetch_faults: bool = False) -> Side:
    if is_trace(path):
        tf = TraceFile(path)
        names = ["icount", "pc", "cs", "length"] + (list(REGISTERS) if tf.has_registers else [])
        cols = tf.arrays("instructions", names)
        if drop_fetch_faults:
            keep = cols["length"] != 0
            if not keep.all():
                cols = {k: v[keep] for k, v in cols.items()}
        return Side(path, "aero", cols, tf)
    if os.path.isdir(path):
        raise TraceError(f"{path} is a directory but not an Aero trace (no trace.json)")
    if not os.path.exists(path):
        raise TraceError(f"no such trace or log: {path}")
    if not looks_like_qemu_log(path):
        raise TraceError(f"{path} is neither an Aero trace nor a QEMU log with 'Trace' lines "
                         "(qemu-system-i386 -singlestep -d exec,cpu,nochain -D FILE)")
    q = read_qemu_log(path)
    return Side(path, "qemu", q.columns)


@dataclass
class DiffResult:
    a: Side
    b: Side
    steps: int                          # instructions compared
    same: bool
    step: int | None = None             # the first step that differs
    what: str = ""                      # "pc", "registers", "memory", "length"
    registers: list = field(default_factory=list)
    compared_registers: list = field(default_factory=list)
    memory: dict | None = None
    opts: DiffOptions | None = None

    def as_dict(self) -> dict:
        d = {"a": self.a.path, "b": self.b.path, "a_kind": self.a.kind, "b_kind": self.b.kind,
             "steps_compared": self.steps, "same": self.same,
             "a_start": self.a.label(0) if self.a.n > 0 else None,
             "b_start": self.b.label(0) if self.b.n > 0 else None,
             "compared_registers": self.compared_registers}
        if not self.same:
            s = self.step
            d.update({"step": s, "what": self.what, "registers": self.registers,
                      "a_at": self.a.label(s) if s < self.a.n else None,
                      "b_at": self.b.label(s) if s < self.b.n else None,
                      "a_pc": _pc(self.a, s), "b_pc": _pc(self.b, s),
                      "producer_step": s - 1 if s > 0 else None,
                      "producer_pc": _pc(self.a, s - 1) if s > 0 else None,
                      "producer_a_at": self.a.label(s - 1) if s > 0 else None,
                      "memory": self.memory})
            if s > 0 and self.a.code is not None:
                d["producer"] = self.a.describe(s - 1)
            elif s > 0 and self.b.code is not None:
                d["producer"] = self.b.describe(s - 1)
        return d

    def report(self) -> str:
        a, b = self.a, self.b
        lines = [f"A: {a.path} ({'Aero trace' if a.kind == 'aero' else 'QEMU log'}, "
                 f"{a.n:,} instructions from {a.label(0) if a.n > 0 else '-'})",
                 f"B: {b.path} ({'Aero trace' if b.kind == 'aero' else 'QEMU log'}, "
                 f"{b.n:,} instructions from {b.label(0) if b.n > 0 else '-'})"]
        regs = ", ".join(self.compared_registers) or "none (PCs only)"
        lines.append(f"compared {self.steps:,} instructions: PC, registers ({regs})"
                     + (", memory accesses" if self.memory is not None or
                        (a.kind == b.kind == "aero" and self.opts and self.opts.memory
                         and a.trace.has_memory and b.trace.has_memory) else ""))
        if self.same:
            lines.append("no divergence")
            return "\n".join(lines)
        s = self.step
        if self.what == "length":
            short, long_ = (a, b) if a.n < b.n else (b, a)
            lines.append(f"no divergence in the {self.steps:,} instructions both have; "
                         f"{'A' if short is a else 'B'} ends there, "
                         f"{'B' if short is a else 'A'} goes on with {long_.n - self.steps:,} "
                         f"more (next: {long_.describe(self.steps)})")
            return "\n".join(lines)
        lines.append(f"first divergence at step {s:,} (A {a.label(s)}, B {b.label(s)}): "
                     + {"pc": "the PC differs",
                        "registers": "the state before this instruction differs in "
                                     + ", ".join(self.registers),
                        "memory": "the instruction's memory accesses differ"}[self.what])
        if s > 0 and self.what != "memory":
            side = a if a.code is not None else b
            lines.append(f"produced by the instruction before it, step {s - 1:,} "
                         f"(A {a.label(s - 1)}, B {b.label(s - 1)}): {side.describe(s - 1)}")
        if self.opts is not None and self.opts.context and s > 0:
            lines.append("context:")
            for i in range(max(0, s - self.opts.context), s + 1):
                mark = ">" if i == s else " "
                lines.append(f" {mark} step {i:>9,}  A {a.describe(i)}"
                             + ("" if b.describe(i) == a.describe(i) else
                                f"  |  B {b.describe(i)}"))
        lines.append(f"{'':10} {'A':>10}   {'B':>10}")
        lines.append(_row("pc", _pc(a, s), _pc(b, s)))
        for r in self.compared_registers:
            va, vb = _val(a, r, s), _val(b, r, s)
            lines.append(_row(r, va, vb, r in self.registers))
        if self.memory is not None:
            m = self.memory
            lines.append(f"memory accesses of the instruction at step {s:,}:")
            lines.append(f"  A: {m['a'] or 'none'}")
            lines.append(f"  B: {m['b'] or 'none'}")
        return "\n".join(lines)


def _pc(side: Side, i: int):
    j = side.offset + i
    if 0 <= j < len(side.cols["pc"]):
        return int(side.cols["pc"][j])
    return None


def _val(side: Side, name: str, i: int):
    j = side.offset + i
    col = side.cols.get(name)
    if col is None or not 0 <= j < len(col):
        return None
    return int(col[j])


def _row(name, va, vb, differs=None) -> str:
    fa = "-" if va is None else f"{va:08x}"
    fb = "-" if vb is None else f"{vb:08x}"
    if differs is None:
        differs = va != vb
    return f"{name:10} {fa:>10}   {fb:>10}" + ("   *" if differs else "")


def _align(side: Side, from_pc: int | None, skip: int) -> None:
    off = 0
    if from_pc is not None:
        hits = np.nonzero(side.cols["pc"] == np.uint32(from_pc & 0xFFFFFFFF))[0]
        if not len(hits):
            raise TraceError(f"{side.path}: the PC never reaches {from_pc:#x} (--from-pc)")
        off = int(hits[0])
    side.offset = off + skip
    if side.offset > len(side.cols["pc"]):
        side.offset = len(side.cols["pc"])


def diff_sides(a: Side, b: Side, opts: DiffOptions) -> DiffResult:
    _align(a, opts.from_pc, opts.skip_a)
    _align(b, opts.from_pc, opts.skip_b)
    n = min(a.n, b.n)
    if opts.max_steps is not None:
        n = min(n, opts.max_steps)
    regs = sorted(a.regs() & b.regs() - set(opts.ignore), key=COMPARED.index)
    first = None
    what = ""

    def col(side, name):
        c = side.cols[name][side.offset: side.offset + n].astype(np.uint64)
        if name == "eflags" and opts.eflags_mask is not None:
            c = c & np.uint64(opts.eflags_mask)
        return c

    bad = np.nonzero(col(a, "pc") != col(b, "pc"))[0]
    if len(bad):
        first, what = int(bad[0]), "pc"
    reg_first = None
    for r in regs:
        d = np.nonzero(col(a, r) != col(b, r))[0]
        if len(d) and (reg_first is None or d[0] < reg_first):
            reg_first = int(d[0])
    differing: list = []
    if reg_first is not None and (first is None or reg_first < first):
        first, what = reg_first, "registers"
        differing = [r for r in regs if col(a, r)[first] != col(b, r)[first]]
    mem = None
    if opts.memory and a.kind == b.kind == "aero" and a.trace.has_memory and \
            b.trace.has_memory and n:
        m = _memory_divergence(a, b, n if first is None else first + 1)
        if m is not None and (first is None or m[0] < first):
            first, what, differing = m[0], "memory", []
            mem = m[1]
    res = DiffResult(a, b, n if first is None else first, first is None, first, what,
                     differing, regs, mem, opts)
    limit = opts.max_steps if opts.max_steps is not None else max(a.n, b.n) + 1
    if first is None and a.n != b.n and n < limit:
        res.same = False
        res.step = n
        res.what = "length"
    return res


def _mem_rows(side: Side, n: int):
    """The memory accesses of the side's steps [0, n): (step, address, size, value, write,
    system) rows, sorted as they happened."""
    ic = side.cols["icount"]
    lo = int(ic[side.offset])
    hi = int(ic[side.offset + n - 1]) + 1
    t = side.trace.arrays("memory", None, lo, hi + 1)
    mic = t["icount"].astype(np.int64)
    # system accesses (interrupt delivery) belong before the step of their icount: count them
    # with the step before it, the instruction that was interrupted or faulted
    steps = np.searchsorted(ic[side.offset: side.offset + n].astype(np.int64), mic, side="left")
    steps = steps - t["system"].astype(np.int64)
    keep = (steps >= 0) & (steps < n)
    return np.stack([steps[keep], t["address"][keep].astype(np.int64),
                     t["size"][keep].astype(np.int64), t["value"][keep].astype(np.int64),
                     t["write"][keep].astype(np.int64), t["system"][keep].astype(np.int64)],
                    axis=1)


def _memory_divergence(a: Side, b: Side, n: int):
    ra, rb = _mem_rows(a, n), _mem_rows(b, n)
    k = min(len(ra), len(rb))
    diff = np.nonzero((ra[:k] != rb[:k]).any(axis=1))[0]
    if len(diff):
        i = int(diff[0])
        step = int(min(ra[i, 0], rb[i, 0]))
    elif len(ra) != len(rb):
        longer = ra if len(ra) > len(rb) else rb
        step = int(longer[k, 0])
    else:
        return None

    def fmt(rows):
        out = []
        for s, addr, size, val, w, sys_ in rows.tolist():
            if s == step:
                out.append(f"{'write' if w else 'read'} {size}@{addr:#x}={val:#x}"
                           + (" (delivery)" if sys_ else ""))
        return ", ".join(out)
    return step, {"a": fmt(ra), "b": fmt(rb)}


def diff_paths(path_a: str, path_b: str, opts: DiffOptions | None = None) -> DiffResult:
    """Load both sides (traces or QEMU logs) and diff them."""
    opts = opts or DiffOptions()
    kinds = ["aero" if is_trace(p) else "other" for p in (path_a, path_b)]
    vs_qemu = kinds[0] != kinds[1] or kinds == ["other", "other"]
    a = load_side(path_a, drop_fetch_faults=vs_qemu)
    b = load_side(path_b, drop_fetch_faults=vs_qemu)
    return diff_sides(a, b, opts)
