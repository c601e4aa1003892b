"""The flat-segment fast path of translated memory and stack accesses (``aero.jit.memory``):
taken only while the segment's base is 0 and its limits allow every offset (and, for the stack,
SS's B bit is set); any other segment, and any offset the limits refuse, goes the general way
and ends exactly as in the interpreter."""

import hashlib

import pytest

from aero.cpu.presets import FLAT_DATA
from aero.jit.memory import in_range


def test_only_offsets_surely_in_range_qualify():
    for expr in ("r6", "0x2000", "17", "(r6 + 4) & 0xFFFFFFFF", "(r3 + (r6 << 2) + 0x10) & 0xFFFF",
                 "r1 & 0xFFFF", "((r6 + 0x8) & 0xFFFFFFFF)", "(r6)"):
        assert in_range(expr), expr
    for expr in ("r6 + 4", "(r6) + (r7) & 0xFFFF", "a | (b) & 0xFFFF", "(r6 + 4)", "-4",
                 "0x100000000", "ea", "(r1) & 0xFFF", "((r6 + 4)"):
        assert not in_range(expr), expr


# A loop of loads and stores of each size through DS, pushes, pops and a call/ret through SS;
# ESI and ESP move up 4 a round, so later rounds (translated code) cross pages and limits.
_LOOP = (b"\xb9\x28\x00\x00\x00"      # mov ecx, 40
         b"\x8b\x06"                  # L: mov eax, [esi]
         b"\x01\xc8"                  # add eax, ecx
         b"\x89\x46\x04"              # mov [esi+4], eax
         b"\x8a\x5e\x01"              # mov bl, [esi+1]
         b"\x66\x89\x5e\x09"          # mov [esi+9], bx
         b"\x01\x1e"                  # add [esi], ebx
         b"\x83\xc6\x04"              # add esi, 4
         b"\x50"                      # push eax
         b"\x66\x53"                  # push bx
         b"\x66\x5a"                  # pop dx
         b"\x5f"                      # pop edi
         b"\x5d"                      # pop ebp
         b"\xe8\x03\x00\x00\x00"      # call F
         b"\x49"                      # dec ecx
         b"\xeb\x03"                  # jmp N
         b"\x01\xd7"                  # F: add edi, edx
         b"\xc3"                      # ret
         b"\x85\xc9"                  # N: test ecx, ecx
         b"\x75\xd7"                  # jnz L
         b"\xf4")                     # hlt


def _run(jit: dict, ds: tuple, ss: tuple, esi: int, esp: int, every: bool = False,
         change=None):
    """``change``: a function ``(machine, calls so far)`` the every-instruction callback calls
    after recording (to change the state under the running code)."""
    from aero.config import MachineConfig
    from aero.cpu.presets import set_flat32
    from aero.machine import Machine
    m = Machine(MachineConfig(bios=None, memory=4, no_reboot=True, **jit))
    cpu = set_flat32(m.cpu)
    cpu.bus.load(0x1000, _LOOP)
    cpu.bus.load(0x8000, bytes((i * 37 + 11) & 0xFF for i in range(0x10000)))
    cpu.set_seg_cache(3, 0x10, *ds)
    cpu.set_seg_cache(2, 0x18, *ss)
    cpu.mode_changed()
    cpu.R[6] = esi
    cpu.R[4] = esp
    cpu.eip = 0x1000
    seen = []
    # a write watch on the page after the stack's: a push crossing into it must be seen
    m.hooks.mem_write(lambda mm, acc: seen.append(("w", acc.address, acc.size, acc.value)),
                      0x20000, 0x20010)
    if every:
        # a callback before every instruction: translated code keeps the registers in cpu.R
        # and inlines the stack on ESP there
        def cb(mm, a):
            seen.append((a, mm.cpu.R[4], mm.cpu.now()))
            if change is not None:
                change(mm, len(seen))
        m.hooks.exec(cb)
    r = m.run_until(icount=20000)
    ram = hashlib.sha256(bytes(cpu.bus.ram[0x8000:0x20000])).hexdigest()
    return r.status, tuple(cpu.R), cpu.eip, cpu.get_flags(), cpu.icount, ram, seen


FLAT = (0, 0xFFFFFFFF, FLAT_DATA)
B16 = FLAT_DATA & ~0x4000                    # SS's B bit clear: a 16-bit stack


@pytest.mark.parametrize("ds, ss, esi, esp", [
    (FLAT, FLAT, 0x9000, 0x18000),                       # both flat: the fast path
    (FLAT, FLAT, 0x9F82, 0x1FF82),                       # accesses crossing pages
    ((0x1000, 0xFFFFFFFF, FLAT_DATA), FLAT, 0x9000, 0x18000),   # a base: not flat
    ((0, 0xFFFFF, FLAT_DATA), FLAT, 0x9000, 0x18000),    # a limit (never reached)
    ((0, 0x9050, FLAT_DATA), FLAT, 0x9000, 0x18000),     # a limit a later round passes: #GP
    (FLAT, FLAT, 0xFFFFFF82, 0x18000),                   # the 4 GiB limit: #GP at round 30
    (FLAT, FLAT, 0xFFFFFF80, 0x18000),                   # offsets wrapping past 4 GiB
    (FLAT, (0, 0xFFFFFFFF, B16), 0x9000, 0x1234FFB0),    # a 16-bit stack: SP wraps
    (FLAT, (0x100, 0xFFFFFFFF, FLAT_DATA), 0x9000, 0x18000),    # a stack with a base
    (FLAT, (0, 0x18050, FLAT_DATA), 0x9000, 0x18000),    # a stack limit a later round passes
], ids=["flat", "page-cross", "ds-base", "ds-limit", "ds-limit-gp", "4g-gp", "4g-wrap",
        "ss-16bit", "ss-base", "ss-limit"])
def test_translated_accesses_agree_with_the_interpreter(ds, ss, esi, esp):
    want = _run({"jit": "off"}, ds, ss, esi, esp)
    assert _run({"jit_threshold": 0}, ds, ss, esi, esp) == want
    assert _run({"jit_threshold": 2}, ds, ss, esi, esp) == want


@pytest.mark.parametrize("ss, esp", [(FLAT, 0x18000), ((0, 0xFFFFFFFF, B16), 0x1234FFB0),
                                     ((0, 0x18050, FLAT_DATA), 0x18000), (FLAT, 0x1FF82),
                                     ((0x100, 0xFFFFFFFF, FLAT_DATA), 0x18000), (FLAT, 0x20)],
                         ids=["flat", "ss-16bit", "ss-limit", "ss-page-cross", "ss-base",
                              "esp-wraps-4g"])
def test_with_a_callback_on_every_instruction(ss, esp):
    want = _run({"jit": "off"}, FLAT, ss, 0x9000, esp, every=True)
    assert len(want[-1]) > 300
    assert _run({"jit_threshold": 0}, FLAT, ss, 0x9000, esp, every=True) == want
    assert _run({"jit_threshold": 2}, FLAT, ss, 0x9000, esp, every=True) == want


@pytest.mark.parametrize("new_ss", [(0x100, 0xFFFFFFFF, FLAT_DATA), (0, 0xFFFFFFFF, B16),
                                    (0, 0x18100, FLAT_DATA)],
                         ids=["base", "16bit", "limit"])
def test_a_callback_changing_ss_under_translated_code(new_ss):
    """At its 400th call (inside a translated loop) the callback loads another SS cache: the
    stack instructions after it use the new one, as in the interpreter."""
    def change(mm, n):
        if n == 400:
            mm.cpu.set_seg_cache(2, 0x18, *new_ss)
    want = _run({"jit": "off"}, FLAT, FLAT, 0x9000, 0x18000, every=True, change=change)
    assert len(want[-1]) > 400
    assert _run({"jit_threshold": 0}, FLAT, FLAT, 0x9000, 0x18000, every=True,
                change=change) == want
    assert _run({"jit_threshold": 2}, FLAT, FLAT, 0x9000, 0x18000, every=True,
                change=change) == want
