"""User exec hooks compiled into the JIT's units (``aero.jit.translate.inline_hooks``): the unit
calls the callback itself, tests its result, counts the call and catches what it raises, in
place of the hook's ``fire`` function.  Every outcome must match the interpreter's hooked
closures (which call ``fire``): stopping before or after the instruction, an exception, muted
hooks, the hit count at every moment, physical addresses, a run resumed at a stop.

References: the interpreter (``jit="off"``); tests/machine/test_hooks.py checks its hooks
against single steps.
"""

import hashlib
import os
import sys

import pytest

from aero.build import build_machine
from aero.config import FIRMWARE, MachineConfig
from aero.hooks import AFTER
from tests.jit.test_jit_hooks import TIERS, kernel_machine

HELLO = os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "hello", "hello.bin")


def _state(m):
    c = m.cpu
    return c.icount, c.eip, tuple(c.R), c.get_flags(), m.state_hash()


def test_the_unit_calls_the_callback_itself():
    """One Python frame between the unit and the callback: none (the unit's ``run`` is the
    caller), and the unit counts the calls."""
    m, _ = kernel_machine("call", "jit-at-once")
    callers = []
    h = m.hooks.exec(lambda mm, a: callers.append(sys._getframe(1).f_code.co_name))
    assert m.run_until(icount=3000).status == "limit"
    # the hook's fire function calls it where the interpreter runs (the first instructions,
    # the budget's last ones); the unit itself everywhere in between
    assert set(callers[100:2900]) == {"run"}
    assert set(callers) == {"run", "fire"}
    units = [u for u in m.cpu.cache.jit.live_units() if u.tr.counters]
    assert units and all(h.fn in u.tr.consts for u in units)
    assert h.hits == 3000


@pytest.mark.parametrize("name", ["alu", "call"])
def test_after_stops_right_after_the_instruction(name):
    runs = {}
    for tier in TIERS:
        m, _ = kernel_machine(name, tier)
        calls = []
        h = m.hooks.exec(lambda mm, a: calls.append(a) or (AFTER if len(calls) == 2500 else None))
        r = m.run_until(icount=10000)
        assert r.status == "hook" and r.hook is h, (tier, r)
        first = _state(m), len(calls), h.hits
        r = m.run_until(icount=10000)
        assert r.status == "limit"
        runs[tier] = first, _state(m), len(calls), h.hits
    ref = runs["interpreter"]
    assert ref[0][0][0] == 2500 and ref[0][1] == 2500 and ref[2] == ref[3] == 10000
    for tier, got in runs.items():
        assert got == ref, tier


# the call kernel's loop is five instructions (DEC, JNZ; CALL, a block of its own; ADD, RET):
# a stop at each, so that a run resumes at the start of a one-instruction unit too
@pytest.mark.parametrize("name,at", [("alu", 3001)] + [("call", 3001 + k) for k in range(5)])
def test_a_raising_callback_stops_before_its_instruction(name, at):
    runs = {}
    for tier in TIERS:
        m, _ = kernel_machine(name, tier)
        calls = [0]

        def cb(mm, a, calls=calls):
            calls[0] += 1
            if calls[0] == at:
                raise KeyError("from the callback")
        h = m.hooks.exec(cb)
        with pytest.raises(KeyError, match="from the callback"):
            m.run_until(icount=10000)
        stop = _state(m), calls[0], h.hits
        r = m.run_until(icount=10000)             # resumes with the instruction, not the hook
        assert r.status == "limit", (tier, r)
        runs[tier] = stop, _state(m), calls[0], h.hits
    ref = runs["interpreter"]
    assert ref[0][0][0] == at - 1 and ref[0][1:] == (at, at)
    for tier, got in runs.items():
        assert got == ref, tier


def test_muted_hooks_are_not_called_and_not_counted():
    """Time travel mutes hooks while it re-runs the past, except the ones it asks for."""
    runs = {}
    for tier in TIERS:
        m, _ = kernel_machine("call", tier)
        a_calls, b_calls = [], []
        ha = m.hooks.exec(lambda mm, a: a_calls.append(a))
        hb = m.hooks.exec(lambda mm, a: b_calls.append(a))
        assert m.run_until(icount=2000).status == "limit"
        m.hooks.muted = True
        assert m.run_until(icount=4000).status == "limit"
        m.hooks.unmuted = frozenset((hb,))
        assert m.run_until(icount=6000).status == "limit"
        m.hooks.muted, m.hooks.unmuted = False, frozenset()
        assert m.run_until(icount=8000).status == "limit"
        runs[tier] = a_calls, b_calls, ha.hits, hb.hits, _state(m)
    ref = runs["interpreter"]
    assert (len(ref[0]), len(ref[1]), ref[2], ref[3]) == (4000, 6000, 4000, 6000)
    for tier, got in runs.items():
        assert got == ref, tier


def test_hits_are_exact_inside_callbacks_and_across_recompiles():
    """``Hook.hits`` read by the callback itself counts that call; translations thrown away
    (here: the whole code cache, 40 times) keep their counts."""
    for tier in TIERS:
        m, _ = kernel_machine("call", tier)
        seen = []
        h = m.hooks.exec(lambda mm, a: seen.append(h.hits))
        for k in range(1, 41):
            assert m.run_until(icount=500 * k).status == "limit"
            m.cpu.cache.flush()
        assert seen == list(range(1, 20001)), tier
        assert h.hits == 20000, tier
        if tier != "interpreter":
            assert 0 < len(h._cells) < 40           # dead units' counts folded in
        h.remove()                                  # all folded in, the units let go
        assert h.hits == 20000 and not h._cells, tier


def test_counts_of_units_thrown_away_are_kept_once():
    """``Hook._count_in``: as units die, their final counts move into the hook's own; live
    units keep counting in their cells."""
    m, _ = kernel_machine("call", "jit")
    h = m.hooks.exec(lambda mm, a: None)

    class FakeUnit:
        gen = 1

    def cell(value):
        return (lambda: value).__closure__[0]
    units, cells = [], []
    for k in range(100):
        u, c = FakeUnit(), cell(k)
        if units and k % 3:
            units[-1].gen = -1                      # the one before dies
        units.append(u)
        cells.append(c)
        h._count_in(u, c)
        assert h.hits == sum(range(k + 1)), k
    assert len(h._cells) < 64
    for u, c in zip(units, cells):                  # the live ones go on counting
        if u.gen != -1:
            c.cell_contents += 1000
    assert h.hits == sum(range(100)) + 1000 * sum(u.gen != -1 for u in units)


def test_a_physical_hook_gets_physical_addresses():
    """The kernel runs at a linear alias 4 MiB above its physical page (paging on): a
    physical hook gets the physical address, a linear one the linear address."""
    runs = {}
    for tier in TIERS:
        m, _ = kernel_machine("call", tier)
        c = m.cpu
        pd, pt = 0x200000, 0x201000
        for i in range(1024):                      # 4 MiB identity, seen twice
            c.bus.load(pt + 4 * i, ((i << 12) | 3).to_bytes(4, "little"))
        c.bus.load(pd, (pt | 3).to_bytes(4, "little"))
        c.bus.load(pd + 4, (pt | 3).to_bytes(4, "little"))
        c.write_cr3(pd)
        c.write_cr0(c.cr0 | 0x80000001)
        c.eip += 0x400000
        lin, phys = [], []
        m.hooks.exec(lambda mm, a: lin.append(a), 0x400000, 0x800000)
        m.hooks.exec(lambda mm, a: phys.append(a), 0, 0x400000, physical=True)
        assert m.run_until(icount=5000).status == "limit"
        runs[tier] = lin, phys, _state(m)
    ref = runs["interpreter"]
    assert len(ref[0]) == 5000 and ref[1] == [a - 0x400000 for a in ref[0]]
    for tier, got in runs.items():
        assert got == ref, tier


@pytest.mark.skipif(not os.path.exists(FIRMWARE["bochs"][0]), reason="bochsbios not installed")
def test_a_callback_through_a_real_bios_boot(tmp_path):
    """The Bochs BIOS POSTs and boots the hello floppy (870,000 instructions, interrupts,
    REP strings, mode switches) with a callback on every instruction: the callback sees the same
    addresses, EIP, counts and registers in both tiers, and the boot ends in the same state."""
    img = tmp_path / "hello.img"
    img.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    runs = {}
    for tier in ("interpreter", "jit"):
        out = tmp_path / f"{tier}.serial"
        m = build_machine(MachineConfig(bios="bochs", fda=str(img), serial=str(out),
                                        **TIERS[tier]))
        digest, calls = hashlib.sha256(), [0]

        def cb(mm, a, digest=digest, calls=calls):
            c = mm.cpu
            calls[0] += 1
            if calls[0] % 7 == 0:
                digest.update(repr((a, c.eip, c.now(), tuple(c.R), c.get_flags())).encode())
        h = m.hooks.exec(cb)
        r = m.run(timeout=300)
        m.close()
        runs[tier] = (r.status, r.exit_code, r.icount, calls[0], h.hits, digest.hexdigest(),
                      out.read_bytes(), m.state_hash())
        if tier == "jit":
            assert sum(u.retired for u in m.cpu.cache.jit.units) > 100_000
    ref = runs["interpreter"]
    assert ref[6] == b"Hello from the boot sector\r\n"
    assert ref[:2] == ("debug-exit", (0x21 << 1) | 1) and ref[3] == ref[4] > 800_000
    assert runs["jit"] == ref
