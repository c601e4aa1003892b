"""The hooks API (aero/hooks.py) and driving a machine (step, run_until, request_stop), on the
scenarios: every kind fires at the right instruction with the right values, ``remove`` works,
and a stop lands on the exact instruction boundary.

The reference for "the exact boundary" is the machine stepped one instruction at a time
(``Machine.step``), which runs instructions alone from their blocks, while hooks are compiled
into whole blocks: two mechanisms that must agree on the instruction count and the state hash.
Every test runs with the interpreter alone and with the JIT translating every block at once.
"""

import os
import threading
import time

import pytest

from aero import scenarios as S
from aero.config import FIRMWARE
from aero.faults import PF


@pytest.fixture(params=["interpreter", "jit-at-once"])
def scenario(tmp_path, request):
    """The scenario's machine, run by the interpreter alone or with the JIT translating every
    block on first sight (exec hooks are then compiled into the translations)."""
    tier = {"interpreter": {"jit": "off"}, "jit-at-once": {"jit_threshold": 0}}[request.param]

    def make(name, **settings):
        return S.build(S.load(name), str(tmp_path), **{**tier, **settings})
    return make


def lin_pc(m):
    return (m.cpu.base[1] + m.cpu.eip) & 0xFFFFFFFF


def step_until(m, cond, limit=2_000_000):
    """The reference: single steps until ``cond(m)`` holds before an instruction."""
    while not cond(m):
        r = m.step()
        assert r.status == "limit", r
        assert m.cpu.icount < limit


def test_exec_hook_stops_before_the_boot_sector_and_resumes(scenario):
    m = scenario("hello")
    seen = []
    h = m.hooks.exec(lambda mm, addr: seen.append((addr, mm.cpu.icount)) or True, 0x7C00)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h
    assert lin_pc(m) == 0x7C00 and (m.cpu.sel[1], m.cpu.eip) == (0, 0x7C00)
    assert seen == [(0x7C00, m.cpu.icount)]
    # the same point reached by single steps: same instruction count, same state
    ref = scenario("hello")
    step_until(ref, lambda mm: lin_pc(mm) == 0x7C00)
    assert ref.cpu.icount == m.cpu.icount and ref.state_hash() == m.state_hash()
    # resuming runs the instruction at the breakpoint instead of stopping again
    r = m.run_until()
    assert r.status == "debug-exit" and r.exit_code == 67
    assert h.hits == 1


def test_hooks_that_do_not_stop_change_nothing(scenario):
    plain = scenario("pmode")
    rp = plain.run()
    m = scenario("pmode")
    calls = []
    m.hooks.exec(lambda mm, a: calls.append(a), 0x7C00, 0x7E00)
    m.hooks.block(lambda mm, a: None)
    m.hooks.mem_access(lambda mm, acc: None, 0x30000, 0x31000, physical=True)
    m.hooks.io(lambda mm, acc: None, 0x3F8, 0x400)
    m.hooks.interrupt(lambda mm, ev: None)
    r = m.run()
    assert (r.status, r.exit_code, r.icount) == (rp.status, rp.exit_code, rp.icount)
    assert m.state_hash() == plain.state_hash()
    assert calls and all(0x7C00 <= a < 0x7E00 for a in calls)


def test_every_instruction_hook_sees_the_single_step_trace(scenario):
    m = scenario("hello")
    trace = []
    m.hooks.exec(lambda mm, a: trace.append((a, mm.cpu.eip)))
    r = m.run()
    assert r.status == "debug-exit"
    ref = scenario("hello")
    want = []
    while True:
        pc = (lin_pc(ref), ref.cpu.eip)
        if ref.step().status != "limit":
            break
        want.append(pc)
    want.append(pc)                                 # the OUT that ended the run
    # REP instructions resumed after an interrupt call the hook again; hello has none
    assert len(trace) == r.icount and trace == want


def test_remove_uninstalls(scenario):
    m = scenario("hello")
    calls = []
    h = m.hooks.exec(lambda mm, a: calls.append(a))
    m.run(max_instructions=100)
    n = len(calls)
    assert n == 100
    h.remove()
    h.remove()                                      # twice: nothing
    assert not h.installed and m.hooks.all == []
    m.run(max_instructions=200)
    assert len(calls) == n
    assert m.cpu.exec_points.count == 0


def test_block_hook_stops_before_a_block(scenario):
    m = scenario("hello")
    starts = []
    m.hooks.block(lambda mm, a: starts.append(a) or len(starts) == 50)
    r = m.run_until()
    assert r.status == "hook" and lin_pc(m) == starts[-1]
    r = m.run_until(instructions=1)                 # resumes: executes the instruction
    assert r.status == "limit" and len(starts) == 50


def test_physical_exec_hook(scenario):
    m = scenario("pmode")
    # pm32 code runs with paging on from identity-mapped pages: physical == linear here, and a
    # physical hook on the #PF handler's page catches it
    seen = []
    m.hooks.exec(lambda mm, a: seen.append(a) or True, 0x7E00, 0x8000, physical=True)
    r = m.run_until()
    assert r.status == "hook" and 0x7E00 <= seen[0] < 0x8000 and lin_pc(m) == seen[0]


def test_memory_write_hook_linear_stops_after_the_store(scenario):
    m = scenario("pmode")
    hits = []
    h = m.hooks.mem_write(lambda mm, acc: hits.append(acc) or True, 0x40000000, 0x40000004)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h
    (acc,) = hits
    assert (acc.address, acc.size, acc.value, acc.write, acc.physical) == \
        (0x40000000, 4, 0x12345678, True, False)
    assert m.bus.read32(0x30000) == 0x12345678      # the store happened
    # stopped after the storing instruction: EIP is the next one, and acc.eip the store
    assert m.cpu.eip != acc.eip and m.bus.read8(acc.eip) == 0xC7   # mov dword [...], imm32
    ref = scenario("pmode")
    step_until(ref, lambda mm: mm.bus.read32(0x30000) == 0x12345678)
    assert ref.cpu.icount == m.cpu.icount and ref.state_hash() == m.state_hash()


def test_memory_read_hook_physical_sees_the_alias(scenario):
    m = scenario("pmode")
    reads = []
    m.hooks.mem_read(lambda mm, acc: reads.append(acc), 0x30000, 0x30004, physical=True)
    m.run()
    # read through 0x40001000 (the alias) and at 0x30000 (identity): both reach 0x30000
    assert [a.value for a in reads][:2] == [0x12345678, 0x12345678]
    assert all(a.physical and a.address == 0x30000 and not a.write for a in reads)


def test_memory_write_hook_old_value(scenario):
    m = scenario("pmode")
    m.bus.write32(0x30000, 0xAAAAAAAA)
    got = []
    m.hooks.mem_write(lambda mm, acc: got.append((acc.old, acc.value)), 0x30000, 0x30004,
                      physical=True)
    m.run()
    assert got[0] == (0xAAAAAAAA, 0x12345678)


def test_interrupt_hook_catches_the_page_fault(scenario):
    m = scenario("pmode")
    evs = []
    h = m.hooks.interrupt(lambda mm, ev: evs.append(ev) or True, PF)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h
    (ev,) = evs
    assert (ev.vector, ev.kind, ev.error_code, ev.cr2) == (PF, "fault", 0x2, 0x80000010)
    # stopped at the handler's first instruction, with the error code on the stack
    idt_gate = m.bus.read32(m.cpu.idtr[0] + PF * 8)
    handler = (idt_gate & 0xFFFF) | (m.bus.read32(m.cpu.idtr[0] + PF * 8 + 4) & 0xFFFF0000)
    assert m.cpu.eip == handler
    assert m.bus.read32(m.cpu.R[4]) == 2
    assert m.bus.read32(m.cpu.R[4] + 4) == ev.eip                  # the faulting instruction
    r = m.run()
    assert r.exit_code == 33


def test_interrupt_hook_sees_software_interrupts_and_irqs(scenario):
    m = scenario("irq")
    vecs = []
    m.hooks.interrupt(lambda mm, ev: vecs.append((ev.vector, ev.kind)))
    m.run()
    assert (0x08, "hw") in vecs and (0x09, "hw") in vecs              # IRQ0, IRQ1
    m = scenario("hello")
    evs = []
    m.hooks.interrupt(lambda mm, ev: evs.append(ev), 0x10)
    m.run()
    assert len(evs) == len("Hello from the boot sector\r\n")      # INT 10h per character
    assert all(ev.kind == "soft" and ev.cs == 0 and 0x7C00 < ev.eip < 0x7E00 for ev in evs)


def test_mode_and_cr3_hooks(scenario):
    m = scenario("pmode")
    modes, cr3s = [], []
    m.hooks.mode(lambda mm, ch: modes.append((ch.old, ch.new)))
    h = m.hooks.cr3(lambda mm, ld: cr3s.append((ld.old, ld.new)) or len(cr3s) == 1)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h and cr3s == [(0, 0x20000)]
    assert m.cpu.cr3 == 0x20000
    assert modes == [(("real", False), ("protected", False))]
    m.run()
    assert modes[-1] == (("protected", False), ("protected", True))
    assert cr3s[1:] == [(0x20000, 0x20000)]                          # the handler's flush


def test_io_hook(scenario):
    m = scenario("hello")
    out = []
    m.hooks.io(lambda mm, acc: out.append(acc.value) if acc.write else None, 0x3F8)
    m.run()
    assert bytes(out) == b"Hello from the boot sector\r\n"


def test_io_hook_stops_after_the_out(scenario):
    m = scenario("hello")
    h = m.hooks.io(lambda mm, acc: True, 0x501, read=False)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h
    # the OUT completed (debug-exit pending) and the next run reports it
    assert m.run_until().status == "debug-exit"


def test_bios_hook(scenario):
    m = scenario("hello")
    calls = []
    h = m.hooks.bios(lambda mm, c: calls.append(c) or len(calls) == 3, vector=0x10, function=0x0E)
    r = m.run_until()
    assert r.status == "hook" and r.hook is h
    assert [c.args["eax"] & 0xFF for c in calls] == [ord("H"), ord("e"), ord("l")]


@pytest.mark.skipif(not os.path.exists(FIRMWARE["seabios"][0]), reason="seabios not installed")
def test_bios_hook_needs_the_aero_bios(scenario):
    m = scenario("hello", bios="seabios")
    with pytest.raises(ValueError, match="Aero BIOS"):
        m.hooks.bios(lambda mm, c: None)


def test_callback_exception_stops_and_is_raised(scenario):
    m = scenario("hello")

    def bad(mm, a):
        raise RuntimeError("boom")
    m.hooks.exec(bad, 0x7C00)
    with pytest.raises(RuntimeError, match="boom"):
        m.run_until()
    assert lin_pc(m) == 0x7C00


def test_step_and_run_until_instructions(scenario):
    m = scenario("pmode")
    assert m.step().status == "limit" and m.cpu.icount == 1
    r = m.run_until(instructions=1000)
    assert r.status == "limit" and m.cpu.icount == 1001
    # many single steps give the same state as one run of the same length
    ref = scenario("pmode")
    ref.run_until(instructions=5000)
    while m.cpu.icount < 5000:
        m.step()
    assert m.state_hash() == ref.state_hash()


def test_request_stop_from_another_thread(scenario):
    m = scenario("irq", keys="")                    # waits for keys that never come
    t = threading.Timer(0.3, m.request_stop)
    t0 = time.monotonic()
    t.start()
    r = m.run_until()
    t.join()
    assert r.status == "stop"
    assert time.monotonic() - t0 < 5
    icount = m.cpu.icount
    assert m.run_until(instructions=10).status == "limit" and m.cpu.icount == icount + 10


def test_an_exec_hook_on_one_address_starts_a_block_there(scenario):
    def block_starts(with_exec_hook):
        m = scenario("hello")
        starts = []
        m.hooks.block(lambda mm, a: starts.append(a))
        if with_exec_hook:
            m.hooks.exec(lambda mm, a: None, 0x7C07)     # mid-block: mov al, 3
        m.run()
        return starts
    assert 0x7C07 not in block_starts(False)
    assert 0x7C07 in block_starts(True)
