"""The tracer (aero.trace.capture) against independent references built from the hooks API:

* instructions: an exec hook on every instruction (linear PC, CS, exact count from
  ``cpu.now()``) sees the same instructions at the same counts; the trace has exactly one row
  per count, REP iterations included, and the fetches that faulted as rows of length 0;
* registers (``registers=True``): the registers an exec hook reads before each instruction;
* memory: a memory hook over the whole address space sees every access the trace has, at the
  same count (the hook also sees descriptor-table reads, which the trace leaves out);
* the guest runs the same traced and untraced (same final state hash).

The guests are the system-architecture ROMs of tests/guests (protected mode, exceptions with
faulting fetches and a TF single-step trap, paging, PAE, task switches, V86)."""

import os

import numpy as np
import pytest

from aero.build import build_machine
from aero.config import MachineConfig
from aero.trace.capture import Capture, MemorySink, may_access_memory

FULL = os.environ.get("AERO_FULL") == "1"
GUESTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "guests"))
LIMIT = 3_000_000


def machine(guest):
    return build_machine(MachineConfig(bios=os.path.join(GUESTS, guest + ".bin"),
                                       debug_exit_port=0xF4))


def traced(guest, **kw):
    m = machine(guest)
    sink = MemorySink()
    cap = Capture(m, sink, **kw).start()
    r = m.run_until(icount=LIMIT)
    totals = cap.stop()
    assert r.status == "debug-exit" and r.exit_code == 1, r
    return m, sink, totals


@pytest.mark.parametrize("guest", ["exceptions", "pae", "paging32", "v86"])
def test_instructions_match_an_exec_hook(guest):
    m, sink, totals = traced(guest, registers=True)
    ins = sink.table("instructions")
    n = len(ins["icount"])
    assert n == m.cpu.icount and totals["instructions"] == n
    assert (ins["icount"] == np.arange(n)).all()             # one row per count
    assert totals["unattributed"] == 0

    ref_m = machine(guest)
    ref = []
    regs = []

    def on_insn(mm, addr):
        c = mm.cpu
        ic = c.now() - c.idle_time
        ref.append((ic, addr, c.sel[1]))
        regs.append((ic, *c.R, c.get_flags(), c.eip, c.sel[0], c.sel[2], c.sel[3], c.cr0,
                     c.cr3))
    ref_m.hooks.exec(on_insn)
    r = ref_m.run_until(icount=LIMIT)
    assert r.icount == n and ref_m.state_hash() == m.state_hash()

    got = {int(i): (int(p), int(c)) for i, p, c in zip(ins["icount"], ins["pc"], ins["cs"])}
    for ic, pc, cs in ref:
        assert got[ic] == (pc, cs), ic
    # rows the hook did not see: later REP iterations (same PC as the row before) and fetches
    # that faulted (length 0, at the address the exception reports)
    seen = {ic for ic, _, _ in ref}
    for i in range(n):
        if i not in seen:
            assert ins["length"][i] == 0 or (i and ins["pc"][i] == ins["pc"][i - 1]), i
    if guest in ("exceptions", "pae"):
        assert totals["fetch_faults"] >= 1
        ev = sink.table("events")
        faults = {ic for ic, k in zip(ev["icount"], ev["kind"]) if k == "fault"}
        for i in np.nonzero(ins["length"] == 0)[0]:
            assert int(i) + 1 in faults              # the handler follows the faulting fetch

    names = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eflags", "eip", "es",
             "ss", "ds", "cr0", "cr3")
    for r_ in regs:
        i = r_[0]
        assert tuple(int(ins[k][i]) for k in names) == tuple(r_[1:]), i


# the reference (a Python callback per access) is slow: one guest unless AERO_FULL=1
MEMORY_GUESTS = ["exceptions", "task_switch", "pae", "v86"] if FULL else ["exceptions"]


@pytest.mark.parametrize("guest", MEMORY_GUESTS)
def test_memory_matches_a_memory_hook(guest):
    m, sink, totals = traced(guest)
    mem = sink.table("memory")
    got = list(zip(mem["icount"].tolist(), mem["address"].tolist(), mem["size"].tolist(),
                   mem["value"].tolist(), mem["write"].tolist()))
    assert totals["memory"] == len(got) > 1000

    ref_m = machine(guest)
    ref = []

    def on_access(mm, a):
        c = mm.cpu
        ref.append((c.now() - c.idle_time, a.address, a.size, a.value, a.write))
    ref_m.hooks.mem_access(on_access, 0, 1 << 32)
    ref_m.run_until(icount=LIMIT)
    G, R = set(got), set(ref)
    assert G <= R, sorted(G - R)[:5]
    # what only the hook sees: reads of system structures (descriptors and the IDT byte by
    # byte, the TSS, PAE's PDPTEs at a CR3 load) and writes of descriptors' accessed/busy bits
    for ic, addr, size, value, write in R - G:
        assert not write or size == 1, (ic, hex(addr), size, write)
    # icounts never go backwards; system accesses (interrupt frames) are flagged
    assert (np.diff(mem["icount"].astype(np.int64)) >= 0).all()
    if guest == "exceptions":
        assert mem["system"].any()


def test_the_guest_runs_the_same_traced_and_untraced():
    plain = machine("paging32")
    plain.run_until(icount=LIMIT)
    m, _, _ = traced("paging32", registers=True)
    assert m.cpu.icount == plain.cpu.icount
    assert m.state_hash() == plain.state_hash()
    m, _, _ = traced("paging32")
    assert m.state_hash() == plain.state_hash()


def test_capture_removes_itself():
    m = machine("pm_entry")
    sink = MemorySink()
    cap = Capture(m, sink).start()
    m.run_until(icount=2000)
    with pytest.raises(RuntimeError):
        Capture(m, MemorySink()).start()                  # one tracer at a time
    cap.stop()
    assert m.cpu.cache.transform is None and m.cpu.mmu.access_wrapper is None
    assert not m.hooks.all and not m._timers
    n = len(sink.table("instructions")["icount"])
    m.run_until(icount=4000)                              # untraced from here
    assert len(sink.table("instructions")["icount"]) == n == 2000
    cap2 = Capture(m, MemorySink()).start()               # and traceable again
    m.run_until(icount=5000)
    assert cap2.stop()["instructions"] == 1000


def test_memory_position_whitelist_is_conservative():
    """Instructions left without a position note never access memory: every instruction the
    guests run that the whitelist calls register-only makes no access in the trace."""
    m, sink, _ = traced("exceptions")
    ins = sink.table("instructions")
    mem = sink.table("memory")
    from aero.cpu.decoder import decode
    code = sink.table("code")
    pure = set()
    for pc, c32, raw in zip(code["pc"], code["code32"], code["bytes"]):
        ins_ = decode(lambda i, raw=raw: raw[i] if i < len(raw) else 0, int(pc), bool(c32))
        if not may_access_memory(ins_):
            pure.add(int(pc))
    own = mem["icount"][~mem["system"]]
    pcs = ins["pc"][own.astype(np.int64)]
    assert not set(pcs.tolist()) & pure
