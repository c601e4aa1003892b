"""Exec hooks compiled into the JIT's translations (``aero.jit.translate.hook_prefix``) behave
exactly as in the interpreter's closures: a callback before every instruction sees the same
address, EIP, instruction count, registers and flags, may change the registers, and stops the
machine on the same boundary, with the same state.

References: the interpreter (``jit="off"``), whose hooked closures ``aero.cpu.blocks.hooked``
are checked against single steps in tests/machine/test_hooks.py.
"""

import pytest

from aero import bench
from aero import scenarios as S
from aero.config import MachineConfig
from aero.cpu.presets import set_flat32
from aero.machine import Machine

TIERS = {"interpreter": {"jit": "off"}, "jit-at-once": {"jit_threshold": 0},
         "jit": {"jit_threshold": 2}}


def kernel_machine(name, tier, **extra):
    m = Machine(MachineConfig(bios=None, memory=4, **TIERS[tier], **extra))
    set_flat32(m.cpu)
    expect = bench._load(m.cpu, name)
    m.cpu.eip = bench.CODE
    return m, expect


def observe(m):
    seen = []

    def cb(mm, addr):
        c = mm.cpu
        seen.append((addr, c.eip, c.now(), tuple(c.R), c.get_flags()))
    m.hooks.exec(cb)
    return seen


@pytest.mark.parametrize("name", sorted(bench.KERNELS))
@pytest.mark.parametrize("variant", ["plain", "jit"])
def test_every_benchmark_kernel_checks_out(name, variant):
    """``aero bench``'s kernels end with the registers their Python models compute, in the
    interpreter and with the JIT (``run_once`` raises otherwise)."""
    cpu = bench.kernel_cpu(name, variant)
    bench.run_once(cpu, name, bench._load(cpu, name))
    if variant == "jit" and name not in ("rep-movs", "x87"):
        assert cpu.cache.jit.units


@pytest.mark.parametrize("name", ["alu", "branch", "branch-random", "memory", "memory-strided",
                                  "call"])
def test_every_instruction_callback_sees_the_interpreters_state(name):
    runs = {}
    for tier in TIERS:
        m, expect = kernel_machine(name, tier)
        seen = observe(m)
        # a slice of the kernel: long enough for hot loops to be translated
        r = m.run_until(icount=6000)
        assert r.status == "limit", r
        assert [h.hits for h in m.hooks.all] == [len(seen)]
        runs[tier] = (seen, m.state_hash())
        if tier != "interpreter":
            assert m.cpu.cache.jit.units, "nothing was translated"
    ref = runs["interpreter"]
    assert len(ref[0]) == 6000
    for tier, got in runs.items():
        assert got[0] == ref[0], tier
        assert got[1] == ref[1], tier


@pytest.mark.parametrize("name", ["alu", "call"])
def test_a_callback_changing_registers_and_stopping(name):
    """At every 97th instruction the callback adds to EBX (the kernels' checksums then
    differ, the same way in every tier); at the 4000th it stops the machine before the
    instruction; resuming runs it without calling again."""
    results = {}
    for tier in TIERS:
        m, _ = kernel_machine(name, tier)
        calls = [0]

        def cb(mm, addr, calls=calls):
            calls[0] += 1
            if calls[0] % 97 == 0:
                mm.cpu.R[3] = (mm.cpu.R[3] + calls[0]) & 0xFFFFFFFF
            return calls[0] == 4000
        h = m.hooks.exec(cb)
        r = m.run_until(icount=10000)
        assert r.status == "hook" and r.hook is h, (tier, r)
        stop = (m.cpu.icount, m.cpu.eip, tuple(m.cpu.R), m.state_hash())
        r = m.run_until(icount=10000)
        assert r.status == "limit"
        results[tier] = (stop, calls[0], tuple(m.cpu.R), m.state_hash())
    assert results["interpreter"][0][0] == 3999
    for tier, got in results.items():
        assert got == results["interpreter"], tier


def test_scenario_with_paging_faults_and_interrupts(tmp_path):
    """pmode: protected mode, paging, a page fault taken and handled; every instruction seen
    the same way with registers and flags, and the run ends the same."""
    runs = {}
    for tier, settings in TIERS.items():
        (tmp_path / tier).mkdir()
        m = S.build(S.load("pmode"), str(tmp_path / tier), **settings)
        seen = observe(m)
        r = m.run()
        runs[tier] = (r.status, r.exit_code, r.icount, m.state_hash(), seen)
    ref = runs["interpreter"]
    assert ref[0] == "debug-exit" and len(ref[4]) > 100_000     # (a REP is one call)
    for tier, got in runs.items():
        assert got[:4] == ref[:4], tier
        assert got[4] == ref[4], tier


def test_guest_instruction_breakpoint_in_translated_code():
    """The guest's DR0 execute breakpoint on an instruction of a hot loop: #DB on the same
    boundary with DR6 set, whether the loop is interpreted or translated."""
    outcome = {}
    for tier in TIERS:
        m, expect = kernel_machine("alu", tier, no_reboot=True)
        cpu = m.cpu
        # run the loop hot first, then arm DR0 on its second instruction
        assert m.run_until(icount=3000).status == "limit"
        seen = []
        h = m.hooks.exec(lambda mm, a: seen.append(a) or len(seen) >= 40)
        m.run_until(icount=10000)
        h.remove()
        target = seen[-5]                       # an instruction inside the loop
        cpu.dr[0] = target
        cpu.dr[7] = 0x400 | 0x1
        cpu.dr_changed()
        # the kernel machine has no IDT: the #DB escalates to a shutdown (the run ends there,
        # no_reboot), the same way and at the same count in every tier
        r = m.run_until(icount=20000)
        outcome[tier] = (r.status, m.cpu.icount, cpu.dr[6] & 0xF, m.state_hash())
    assert outcome["interpreter"][2] & 1
    for tier, got in outcome.items():
        assert got == outcome["interpreter"], tier


@pytest.mark.parametrize("name", ["alu", "memory", "call"])
def test_a_few_hooked_instructions_in_translated_loops(name):
    """Hooks on a few instructions of a hot loop (with a predicate: compiled into the middle
    of blocks, not starting blocks of their own; few enough that the other instructions keep
    their registers in locals): the callbacks see and change the registers as in the
    interpreter."""
    m, _ = kernel_machine(name, "interpreter")
    addrs = []
    h = m.hooks.exec(lambda mm, a: addrs.append(a) or len(addrs) >= 3000)
    m.run_until(icount=20000)
    h.remove()
    hot = sorted(set(addrs[-200:]))
    picks = hot[1::6]                               # every sixth instruction of the loop
    runs = {}
    for tier in TIERS:
        m, _ = kernel_machine(name, tier)
        seen = []

        def cb(mm, a, seen=seen):
            c = mm.cpu
            seen.append((a, c.eip, c.now(), tuple(c.R), c.get_flags()))
            if len(seen) % 7 == 0:
                c.R[3] = (c.R[3] ^ len(seen)) & 0xFFFFFFFF
        for a in picks:
            m.hooks.exec(cb, a, a + 1, match=lambda ins: True)
        r = m.run_until(icount=30000)
        assert r.status == "limit"
        if tier != "interpreter":                  # some unit keeps registers in locals
            assert any(u.tr.regs and any(b.hooked for b in u.blocks)
                       for u in m.cpu.cache.jit.live_units())
        runs[tier] = (seen, m.state_hash())
    assert len(runs["interpreter"][0]) > 1000
    for tier, got in runs.items():
        assert got == runs["interpreter"], tier
