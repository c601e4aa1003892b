"""Differential check of the JIT against the interpreter: ``aero jit --check N``.

Random instruction sequences (the generator of ``aero conformance unicorn``: every sandboxed
entry of the instruction table, with prefixes, ModR/M and SIB forms, branches landing later in
the sequence, faults) run from the same random state twice:

* on a CPU with the interpreter only, once;
* on a CPU with the JIT at threshold 1, three times from the same state: the first run decodes
  and counts the blocks, the second promotes the entry block into a unit covering every block
  the first run decoded, the third runs the unit (``Unit``: registers in locals, dispatch
  between blocks, fault attribution from the traceback).

The third run must end exactly as the interpreter's: general registers, EIP, EFLAGS, the
exception taken (vector and the EIP it reports), the instruction count and every byte of RAM.
A third of the sequences run with a small instruction budget instead of to their end, so that
the unit's budget checks and the interpreter's partial blocks meet at the same boundary.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import sys
import time
from dataclasses import dataclass

from ..conformance import unicorn_diff as U
from ..cpu.cpu import CPU
from ..faults import EmulatorError
from ..mem.bus import Bus
from . import JIT

MEM = 2 << 20           # RAM each side (the generator's data areas lie below 256 KiB)


@dataclass
class End:
    regs: tuple
    eip: int
    flags: int
    exc: tuple | None
    retired: int
    why: str
    ram: str

    def differences(self, other: "End") -> list[str]:
        out = []
        for name in ("regs", "eip", "flags", "exc", "retired", "why", "ram"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                if name == "regs":
                    a = [f"{v:#x}" for v in a]
                    b = [f"{v:#x}" for v in b]
                elif isinstance(a, int):
                    a, b = f"{a:#x}", f"{b:#x}"
                out.append(f"{name}: interpreter {a}, jit {b}")
        return out


class _Side:
    def __init__(self, jit: bool):
        self.bus = Bus(MEM)
        self.cpu = CPU(self.bus)
        self.cpu.interrupt = self._interrupt
        self.jit = jit
        self.exc = None

    def _interrupt(self, vector, code, kind, return_eip):
        self.exc = (vector, return_eip)
        self.cpu.halted = True

    def start(self, mode: int, regs, flags: int, ram: bytes, fresh: bool) -> None:
        cpu, bus = self.cpu, self.bus
        if not fresh:
            # pages whose bytes the last run changed: their code is decoded again (only those,
            # so that the blocks of the sequence stay cached, counted and promoted)
            old = bus.ram
            changed = [p for p in range(0, len(ram), 4096) if old[p:p + 4096] != ram[p:p + 4096]]
        bus.ram[:] = ram
        if fresh:
            cpu.reset()
            if self.jit:
                cpu.cache.jit = JIT(cpu, 1)
            if mode == 32:
                cpu.write_cr0(cpu.cr0 | 1)
        else:
            for p in changed:
                bus.note_ram_write(p, 4096)
        if mode == 32:
            for s in range(6):
                attr = (U.A_P | U.A_S | U.A_RW | U.A_ACCESSED | U.A_DB | U.A_G |
                        (U.A_CODE if s == 1 else 0))
                cpu.set_seg_cache(s, 0, 0, 0xFFFFFFFF, attr)
        else:
            for s in range(6):
                cpu.load_seg_real(s, U.SEGS16[s])
        cpu.R[:] = regs
        cpu.flags = flags
        cpu.lf = None
        cpu.eip = U.CODE
        cpu.halted = False
        self.exc = None

    def run(self, budget: int) -> End:
        cpu = self.cpu
        before = cpu.icount
        why = cpu.run(budget)
        return End(tuple(cpu.R), cpu.eip, cpu.get_flags() & U.FLAGS_CMP, self.exc,
                   cpu.icount - before, why, hashlib.sha256(self.bus.ram).hexdigest())


class Checker:
    def __init__(self):
        self.interp = _Side(False)
        self.jit = _Side(True)
        self.pools = {}
        for m in (32, 16):
            pool = [e for e in U.eligible_entries() if not (m == 16 and e[3].name == "ARPL")]
            self.pools[m] = (pool, list(itertools.accumulate(U.UD_WEIGHT if e[3].ud else 1.0
                                                             for e in pool)))

    def one(self, rng, mode: int):
        """Run one random sequence; (code, budget, differences, units made)."""
        g = U.Gen(rng, mode == 32)
        code, _, _ = g.sequence(*self.pools[mode])
        regs, flags, fills = U.random_state(rng, mode)
        ram = bytearray(MEM)
        for base, data in fills:
            ram[base:base + len(data)] = data
        ram[U.CODE:U.CODE + len(code)] = code
        ram = bytes(ram)
        budget = rng.randrange(1, 24) if rng.random() < 0.33 else U.BUDGET
        try:
            self.interp.start(mode, regs, flags, ram, True)
            want = self.interp.run(budget)
            j = self.jit
            for k in range(3):
                j.start(mode, regs, flags, ram, k == 0)
                got = j.run(U.BUDGET if k < 2 else budget)
        except EmulatorError as e:
            msg = str(e).splitlines()[0]
            if msg.startswith("no semantics for"):
                return code, budget, [], 0          # not implemented either way: not compared
            return code, budget, [f"emulator error: {msg}"], 0
        units = sum(1 for u in self.jit.cpu.cache.jit.units if u.execs)
        return code, budget, want.differences(got), units


def run(count: int, seed: int, out=sys.stdout, max_shown: int = 10) -> bool:
    """Check ``count`` sequences (alternating 32- and 16-bit); True when none differs."""
    rng = random.Random(seed)
    checker = Checker()
    t0 = time.time()
    bad = 0
    units = 0
    for i in range(count):
        mode = (32, 16)[i % 2]
        srng = random.Random(rng.getrandbits(64))
        code, budget, diffs, n = checker.one(srng, mode)
        units += n > 0
        if diffs:
            bad += 1
            if bad <= max_shown:
                print(f"sequence {i} ({mode}-bit, budget {budget}): {code.hex()}", file=out)
                for d in diffs:
                    print(f"  {d}", file=out)
    dt = time.time() - t0
    print(f"jit check: seed {seed}, {count} sequences, {units} sequences ran translated code, {bad} differ from "
          f"the interpreter ({dt:.1f} s)", file=out)
    return bad == 0


def random_code(seed: int, instructions: int, mode: int, chunk: int = 997) -> list[str]:
    """Random bytes as code: 1 MiB of them, run for ``instructions`` from a random place in
    real (``mode`` 16) or flat protected mode (32) by the interpreter and by the JIT at threshold
    0, side by side in chunks of ``chunk`` instructions.  Exceptions are delivered through the
    (random) IVT or IDT as the CPU does; a shutdown restarts at another random place.  Returns
    the differences found (empty when both agree at every chunk's end), or the error a tier
    raised."""
    rng = random.Random(seed)
    ram = bytearray(rng.randbytes(1 << 20)) + bytearray(MEM - (1 << 20))
    sides = []
    for jit in (False, True):
        bus = Bus(MEM)
        cpu = CPU(bus)
        bus.ram[:] = ram
        if jit:
            cpu.cache.jit = JIT(cpu, 0)
        sides.append(cpu)
    # a few places to start from again and again, so that code runs often enough to be
    # translated and its units run (a restart keeps the code cache)
    places = random.Random(seed ^ 0x5EED)
    starts = [places.randrange(0x400, 0xF0000) for _ in range(12)]

    def restart():
        eip = places.choice(starts)
        for cpu in sides:
            cpu.halted = cpu.shadow = False
            cpu.flags = 0x2
            cpu.lf = None
            cpu.write_cr4(0)
            cpu.write_cr0(0x10 | (1 if mode == 32 else 0))
            if mode == 32:
                for s in range(6):
                    attr = (U.A_P | U.A_S | U.A_RW | U.A_ACCESSED | U.A_DB | U.A_G |
                            (U.A_CODE if s == 1 else 0))
                    cpu.set_seg_cache(s, 0, 0, 0xFFFFFFFF, attr)
                cpu.idtr = [0x800, 0x7FF]
            else:
                cpu.idtr = [0, 0x3FF]
                for s in range(6):
                    cpu.load_seg_real(s, 0)
            cpu.R[:] = [0x8000] * 8
            cpu.eip = eip
    restart()
    done = rounds = 0
    while done < instructions and rounds < instructions // 10:
        rounds += 1
        ends = []
        for cpu in sides:
            try:
                why = cpu.run(chunk)
            except EmulatorError as e:
                if str(e).startswith("no semantics for"):
                    why = "notimpl"
                else:
                    return [f"{'jit' if cpu.cache.jit else 'interpreter'}: {e}"]
            ends.append((why, cpu.icount, cpu.eip, tuple(cpu.R), cpu.get_flags(),
                         tuple(cpu.sel), cpu.cr0, None))
        if sides[0].bus.ram != sides[1].bus.ram:
            ends[1] = ends[1][:7] + ("differs",)
        if ends[0] != ends[1]:
            names = ("why", "icount", "eip", "regs", "flags", "selectors", "cr0", "ram")
            return [f"after {done} instructions: {n}: interpreter {a!r}, jit {b!r}"
                    for n, a, b in zip(names, ends[0], ends[1]) if a != b]
        done = sides[0].icount
        if ends[0][0] in ("shutdown", "halt", "notimpl"):
            restart()
    return []
