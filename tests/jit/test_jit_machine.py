"""The JIT inside a whole machine: self-modifying code in translated loops, hooks and breakpoints
added after code was translated, a stop from another thread, time read inside a unit.  Each
guest's result is also computed here independently, so that a test fails if both tiers are wrong
the same way."""

import shutil
import subprocess
import threading
import time

import pytest

from aero.build import build_machine
from aero.config import MachineConfig
from aero.jit.unit import Unit
from aero.machine import Machine

pytestmark = pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm is not installed")

# A 64 KiB ROM: the reset vector jumps to `start`, which copies `routine` to 0000:1000 and
# runs it there (ROM cannot be written: self-modifying code needs RAM).
ROM = """
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov es, ax
    push cs
    pop ds
    mov si, routine
    mov di, 0x1000
    mov cx, routine_end - routine
    cld
    rep movsb
    xor ax, ax
    mov ds, ax
    jmp 0:0x1000
routine:
%s
routine_end:
    times 0xFFF0 - ($ - $$) db 0
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0
"""

# The immediate of the ADD in the loop is incremented by the loop itself every iteration
# (its low byte: 1, 2, ... 255, 0, 1, ...).
SMC_LOOP = """
    mov cx, 3000
    xor bx, bx
.l: add bx, strict word 1
    inc byte [0x1000 + (.l - routine) + 2]
    loop .l
    cli
    hlt
"""

# Each iteration patches the immediate of the very next instruction (effective at once).
SMC_NEXT = """
    mov cx, 2000
    xor bx, bx
    xor dx, dx
.l: mov [0x1000 + (.m - routine) + 1], dl
.m: mov al, 0
    xor ah, ah
    add bx, ax
    add dl, 7
    loop .l
    cli
    hlt
"""

# An endless loop (for a stop from another thread).
SPIN = """
.l: inc ax
    add bx, ax
    jmp .l
"""


# A loop storing a counter.
STORE = """
    xor ax, ax
.l: inc ax
    mov [0x2000], ax
    jmp .l
"""


def rom(tmp_path, body: str) -> bytes:
    src = tmp_path / "rom.asm"
    src.write_text(ROM % body)
    out = tmp_path / "rom.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def machine(image: bytes, **settings):
    return build_machine(MachineConfig(bios=image, **settings))


TIERS = [{"jit": "off"}, {"jit": "on", "jit_threshold": 0}, {"jit": "on", "jit_threshold": 1},
         {"jit": "on"}]


def run_all(image):
    out = []
    for tier in TIERS:
        m = machine(image, **tier)
        r = m.run(max_instructions=2_000_000)
        out.append((tier, r.status, m.cpu.icount, m.cpu.R[3] & 0xFFFF, m.state_hash(), m))
    return out


def test_code_patching_its_own_loop(tmp_path):
    want = sum((1 + i) & 0xFF for i in range(3000)) & 0xFFFF
    runs = run_all(rom(tmp_path, SMC_LOOP))
    for tier, status, icount, bx, h, m in runs:
        assert status == "halted", tier
        assert bx == want, tier
        assert (icount, h) == (runs[0][2], runs[0][4]), tier
    jit = runs[1][5].cpu.cache.jit
    assert jit.units, "the loop was never translated"
    assert runs[1][5].cpu.cache.invalidations >= 2000


def test_code_patching_the_next_instruction(tmp_path):
    want = sum((7 * i) & 0xFF for i in range(2000)) & 0xFFFF
    runs = run_all(rom(tmp_path, SMC_NEXT))
    for tier, status, icount, bx, h, m in runs:
        assert status == "halted", tier
        assert bx == want, tier
        assert (icount, h) == (runs[0][2], runs[0][4]), tier


def hot_unit(m):
    units = [u for u in m.cpu.cache.jit.live_units() if u.execs]
    assert units, "nothing was translated"
    return max(units, key=lambda u: u.execs)


def test_exec_hook_added_after_translation_fires(tmp_path):
    image = rom(tmp_path, SPIN)
    m = machine(image, jit="on", jit_threshold=0)
    m.run_until(instructions=50_000)
    u = hot_unit(m)
    target = u.eips[1]                      # an instruction inside the translated loop
    hits = []
    m.hooks.exec(lambda mm, addr: hits.append(mm.cpu.icount) or True, target)
    r = m.run_until(instructions=100)
    assert r.status == "hook"
    assert m.cpu.eip == target and hits
    ref = machine(image, jit="off")
    ref.run_until(instructions=50_000)
    ref.hooks.exec(lambda mm, addr: True, target)
    ref.run_until(instructions=100)
    assert (ref.cpu.icount, ref.state_hash()) == (m.cpu.icount, m.state_hash())


def test_write_watch_added_after_translation_fires(tmp_path):
    """A loop storing a counter is translated; a write hook added then stops right after the
    store, at the same instruction and state as without the JIT, with the value written."""
    image = rom(tmp_path, STORE)
    stops = []
    for tier in ({"jit": "off"}, {"jit": "on", "jit_threshold": 0}):
        m = machine(image, **tier)
        m.run_until(instructions=30_001)
        seen = []
        m.hooks.mem_write(lambda mm, acc: seen.append(acc.value) or True, 0x2000, 0x2002)
        r = m.run_until(instructions=1000)
        assert r.status == "hook", tier
        stops.append((m.cpu.icount, m.cpu.eip, seen, m.state_hash()))
    assert stops[0] == stops[1]
    # 25 instructions before the loop: the reset jump, 14 of `start`, 8 REP MOVSB iterations
    # (the routine's 8 bytes), XOR AX,AX; then 3 per iteration, and the hook sees the next store
    assert stops[0][2] == [(30_001 - 25) // 3 + 1]


def test_stop_from_another_thread_ends_a_translated_loop(tmp_path):
    m = machine(rom(tmp_path, SPIN), jit="on", jit_threshold=0)
    threading.Timer(0.3, m.request_stop).start()
    t0 = time.monotonic()
    r = m.run(timeout=20)
    assert r.status == "stop"
    assert time.monotonic() - t0 < 5
    assert any(u.execs for u in m.cpu.cache.jit.units)


def test_units_take_the_place_of_blocks():
    m = build_machine(MachineConfig(demo=True, jit="on", jit_threshold=0))
    m.run()
    live = m.cpu.cache.jit.live_units()
    assert live
    assert any(isinstance(b, Unit) for b in m.cpu.cache.blocks.values())
    u = hot_unit(m)
    assert "def run(limit)" in u.source
    assert u.instructions >= u.count


# A loop adding an immediate to BX forever; the immediate (a word at a known address) is what the
# host rewrites.
ADDER = """
    xor bx, bx
.l: add bx, strict word 1
    jmp .l
"""
IMM = 0x1000 + 2 + 2            # routine: XOR BX,BX (2 bytes), then ADD BX,imm16 = 81 C3 lo hi


def _bx_after(m, n):
    before = m.cpu.R[3] & 0xFFFF
    m.run_until(instructions=n)
    return (m.cpu.R[3] - before) & 0xFFFF


@pytest.mark.parametrize("how", ["dma", "debugger", "restore"])
def test_host_writes_to_translated_code_take_effect(tmp_path, how):
    """Code rewritten from outside the CPU (a DMA transfer's bus write, the debugger's memory
    edit, a restored snapshot) runs at once, translated or not."""
    from aero.debug.debugger import Debugger
    image = rom(tmp_path, ADDER)
    seen = []
    for tier in ({"jit": "off"}, {"jit": "on", "jit_threshold": 0}):
        m = machine(image, **tier)
        m.run_until(instructions=20_001)              # deep in the loop, translated
        assert m.bus.read_bytes(IMM - 2, 2) == b"\x81\xc3"
        snap = m.get_state()
        if how == "dma":
            m.bus.write_bytes(IMM, (5).to_bytes(2, "little"))
        elif how == "debugger":
            Debugger(m).write(IMM, (5).to_bytes(2, "little"), physical=True)
        else:
            m.bus.write_bytes(IMM, (5).to_bytes(2, "little"))
            m.run_until(instructions=1000)
            m.set_state(snap)                          # the old code (adding 1) is back
        gained = _bx_after(m, 1000)
        seen.append((gained, m.cpu.icount, m.state_hash()))
        if tier["jit"] == "on":
            assert any(u.execs for u in m.cpu.cache.jit.units)
    step = 1 if how == "restore" else 5
    # 1000 instructions from the middle of the loop: 500 ADDs, whichever comes first
    assert seen[0][0] == (500 * step) & 0xFFFF
    assert seen[0] == seen[1]


def _paged_loop(second: int, jit: dict):
    """Paging on (8 MiB identity-mapped); a loop that reads one new page per round, so that the
    TLB fills up and is flushed (a new MMU generation) in the middle of a block, and whose
    second block is at ``second`` (on the first block's page, or the next one)."""
    from aero.cpu.presets import set_flat32
    m = Machine(MachineConfig(bios=None, memory=8, **jit))
    cpu = set_flat32(m.cpu)
    ram = cpu.bus.ram
    for t in range(2):
        ram[0x100000 + 4 * t:0x100004 + 4 * t] = (0x101000 + 0x1000 * t | 7).to_bytes(4, "little")
    for i in range(2048):
        ram[0x101000 + 4 * i:0x101004 + 4 * i] = (i << 12 | 7).to_bytes(4, "little")
    cpu.write_cr3(0x100000)
    cpu.write_cr0(cpu.cr0 | 0x80000000)
    jmp = (second - 0x1017).to_bytes(4, "little", signed=True)
    back = (0x100a - (second + 7)).to_bytes(4, "little", signed=True)
    cpu.bus.load(0x1000, b"\xb9\xdc\x05\x00\x00"          # mov ecx, 1500
                         b"\xbe\x00\x00\x20\x00"          # mov esi, 0x200000
                         b"\x8b\x16"                      # L: mov edx, [esi]
                         b"\x81\xc6\x00\x10\x00\x00"      # add esi, 0x1000
                         b"\xe9" + jmp)                    # jmp second
    cpu.bus.load(second, b"\x49"                          # dec ecx
                         b"\x0f\x85" + back +             # jnz L
                         b"\xf4")                         # hlt
    cpu.eip = 0x1000
    # the TLB every 12 rounds, at the loop's head (where a unit's budget ends it exactly), not
    # just at the end: a difference would not last (the next lookup translates the code again)
    m.run_until(icount=2)
    tlbs = []
    while (r := m.run_until(icount=cpu.icount + 60)).status == "limit":
        tlbs.append(sorted(cpu.mmu.tlb.items()))
    return r.status, cpu.icount, m.state_hash(), tlbs


@pytest.mark.parametrize("second", (0x1800, 0x2000))
def test_translated_code_fills_the_tlb_as_the_interpreter_does(second):
    """Both tiers translate code addresses for instruction fetch at the same instructions, so
    the TLB (in the state hash) ends the same: a new MMU generation (here a full TLB flushed by
    a data access) stops the running block in either tier, and a unit never runs a block of
    another page (the interpreter checks that block's page, the unit would not)."""
    want = _paged_loop(second, {"jit": "off"})
    assert want[0] == "halted" and want[1] == 2 + 1500 * 5 + 1, want
    assert _paged_loop(second, {"jit_threshold": 0}) == want
    assert _paged_loop(second, {"jit_threshold": 3}) == want


def test_a_region_stays_on_its_entry_blocks_pages():
    """A stale unit is checked against the page tables as its entry block is: its other blocks
    must lie on the same pages, or the check would translate pages the interpreter has not
    reached yet.  The loop above with its second block on the next page: two units."""
    from aero.jit import region
    m = Machine(MachineConfig(bios=None, memory=8, jit_threshold=0))
    from aero.cpu.presets import set_flat32
    cpu = set_flat32(m.cpu)
    cpu.bus.load(0x1000, b"\x40\xe9\xfa\x0f\x00\x00")      # L: inc eax; jmp 0x2000
    cpu.bus.load(0x2000, b"\x49\x0f\x85\xf9\xef\xff\xff\xf4")  # dec ecx; jnz L; hlt
    cpu.R[1] = 10
    cpu.eip = 0x1000
    assert m.run_until(icount=1000).status == "halted"
    units = cpu.cache.jit.live_units()
    assert units and all(len(u.blocks) == 1 for u in units)
    # forming its region again leaves the block on the other page out
    blk = units[0].block
    assert region.form(cpu.cache, blk, lambda b: True) == [blk]
