"""`aero bench`: speed figures, printed (and written with ``--json``).

Kernels: small 32-bit flat-mode loops (hand-assembled below, bytes annotated) that run a fixed
number of iterations and halt; each run is timed, its retired guest instructions counted (REP
iterations count one each) and its final registers checked against a checksum computed
independently in Python, so a fast-but-wrong engine fails the benchmark instead of looking good.

Sections:

* kernels: guest MIPS of the interpreter on each kernel;
* overheads: the same kernels with an exec breakpoint and a write watchpoint installed through
  the hooks API, and with the guest's own DR0 (exec) and DR1 (write) breakpoints enabled, all
  on addresses the kernel never touches, as ratios to the plain run (rounds interleaved, best
  of each, to tame a noisy host);
* machine: ``Machine.step`` rate, snapshot and restore times (``--machine``);
* boots: SeaBIOS and Aero BIOS boots of the hello floppy (``--boot``);
* host instructions per guest instruction under callgrind, against the figures recorded before
  the engine-seams work (``--callgrind``; deterministic where wall time is not).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

from . import scenarios
from .build import ROOT, build_machine
from .config import FIRMWARE, JIT_THRESHOLD, MachineConfig
from .cpu.presets import flat32, set_flat32
from .debug.debugger import Debugger
from .jit import JIT
from .machine import Machine

CODE = 0x1000
DATA = 0x100000
M32 = 0xFFFFFFFF


def _d(v):
    return struct.pack("<I", v & M32)


def _alu_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\xbb" + _d(0x12345) +      # mov ebx, 0x12345
        b"\x31\xd2"                  # xor edx, edx
        b"\x31\xf6"                  # xor esi, esi
        b"\x31\xff"                  # xor edi, edi
        # loop:
        b"\x01\xd8"                  # add eax, ebx
        b"\x31\xc2"                  # xor edx, eax
        b"\x83\xee\x03"              # sub esi, 3
        b"\x47"                      # inc edi
        b"\x49"                      # dec ecx
        b"\x75\xf5"                  # jnz loop
        b"\xf4")                     # hlt
    eax = edx = esi = edi = 0
    for _ in range(n):
        eax = (eax + 0x12345) & M32
        edx ^= eax
        esi = (esi - 3) & M32
        edi = (edi + 1) & M32
    return code, 6 + 6 * n + 1, {0: eax, 2: edx, 6: esi, 7: edi, 1: 0}


def _branch_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\x31\xdb"                  # xor ebx, ebx
        # loop:
        b"\xf6\xc1\x01"              # test cl, 1
        b"\x74\x03"                  # jz even
        b"\x40"                      # inc eax
        b"\xeb\x01"                  # jmp next
        # even:
        b"\x43"                      # inc ebx
        # next:
        b"\x83\xf9\x10"              # cmp ecx, 16
        b"\x77\x02"                  # ja skip
        b"\x01\xc3"                  # add ebx, eax
        # skip:
        b"\x49"                      # dec ecx
        b"\x75\xed"                  # jnz loop
        b"\xf4")
    eax = ebx = 0
    count = 3
    for c in range(n, 0, -1):
        count += 2
        if c & 1:
            eax += 1
            count += 2
        else:
            ebx += 1
            count += 1
        count += 2
        if not c > 16:
            ebx += eax
            count += 1
        count += 2
    return code, count + 1, {0: eax & M32, 3: ebx & M32}


def _branch_random_kernel(n):
    # branches on a bit of a linear congruential sequence: taken or not at random
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\xbb" + _d(0x2545F491) +   # mov ebx, seed
        # loop:
        b"\x69\xdb" + _d(1103515245) +   # imul ebx, ebx, 1103515245
        b"\x81\xc3" + _d(12345) +   # add ebx, 12345
        b"\xf7\xc3" + _d(0x10000) + # test ebx, 0x10000
        b"\x74\x01"                  # jz skip
        b"\x40"                      # inc eax
        # skip:
        b"\x49"                      # dec ecx
        b"\x75\xe8"                  # jnz loop
        b"\xf4")
    eax, ebx, count = 0, 0x2545F491, 3
    for _ in range(n):
        ebx = (ebx * 1103515245 + 12345) & M32
        count += 6
        if ebx & 0x10000:
            eax += 1
            count += 1
    return code, count + 1, {0: eax, 3: ebx, 1: 0}


def _mem_kernel(n):
    # sums a 64-dword table into a running total and writes prefix sums back
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        # outer:
        b"\xbe" + _d(DATA) +         # mov esi, DATA
        b"\xbf" + _d(DATA + 0x1000) +  # mov edi, DATA+0x1000
        b"\xba" + _d(16) +           # mov edx, 16
        # inner:
        b"\x8b\x1e"                  # mov ebx, [esi]
        b"\x01\xd8"                  # add eax, ebx
        b"\x89\x07"                  # mov [edi], eax
        b"\x83\xc6\x04"              # add esi, 4
        b"\x83\xc7\x04"              # add edi, 4
        b"\x4a"                      # dec edx
        b"\x75\xf1"                  # jnz inner
        b"\x49"                      # dec ecx
        b"\x75\xdf"                  # jnz outer
        b"\xf4")
    table = [(i * 2654435761) & M32 for i in range(16)]
    eax = 0
    for _ in range(n):
        for v in table:
            eax = (eax + v) & M32
    data = b"".join(_d(v) for v in table)
    return code, 2 + n * (3 + 16 * 7 + 2) + 1, {0: eax}, data


def _mem_strided_kernel(n):
    # reads 16 dwords a page and 4 bytes apart, each into a running sum, and stores the sum
    # 8 bytes after each: every access on another page
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        # outer:
        b"\xbe" + _d(DATA) +         # mov esi, DATA
        b"\xba" + _d(16) +           # mov edx, 16
        # inner:
        b"\x8b\x1e"                  # mov ebx, [esi]
        b"\x01\xd8"                  # add eax, ebx
        b"\x89\x46\x08"              # mov [esi+8], eax
        b"\x81\xc6" + _d(0x1004) +  # add esi, 0x1004
        b"\x4a"                      # dec edx
        b"\x75\xf0"                  # jnz inner
        b"\x49"                      # dec ecx
        b"\x75\xe3"                  # jnz outer
        b"\xf4")
    data = bytes((i * 7 + 3) & 0xFF for i in range(16 * 0x1004))
    table = [struct.unpack_from("<I", data, k * 0x1004)[0] for k in range(16)]
    eax = 0
    for _ in range(n):
        for v in table:
            eax = (eax + v) & M32
    return code, 2 + n * (2 + 16 * 6 + 2) + 1, {0: eax, 6: DATA + 16 * 0x1004}, data


def _call_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\xbc" + _d(DATA + 0x8000) +  # mov esp, DATA+0x8000
        # loop:
        b"\xe8\x04\x00\x00\x00"      # call f
        b"\x49"                      # dec ecx
        b"\x75\xf8"                  # jnz loop
        b"\xf4"                      # hlt
        # f:
        b"\x83\xc0\x07"              # add eax, 7
        b"\xc3")                     # ret
    return code, 3 + n * 5 + 1, {0: (7 * n) & M32, 4: DATA + 0x8000}


def _rep_kernel(n):
    code = (
        b"\xbb" + _d(n) +            # mov ebx, n
        b"\xfc"                      # cld
        # loop:
        b"\xbe" + _d(DATA) +         # mov esi, DATA
        b"\xbf" + _d(DATA + 0x2000) +  # mov edi, DATA+0x2000
        b"\xb9" + _d(256) +          # mov ecx, 256
        b"\xf3\xa5"                  # rep movsd
        b"\x4b"                      # dec ebx
        b"\x75\xec"                  # jnz loop
        b"\xf4")
    data = bytes((i * 7 + 3) & 0xFF for i in range(1024))
    return code, 2 + n * (3 + 256 + 2) + 1, {1: 0, 6: DATA + 1024, 7: DATA + 0x2000 + 1024}, data


def _x87_kernel(n):
    # x87 arithmetic on both operand kinds: FILD m32, FMUL/FSQRT/FDIVP/FADDP on the stack, FADD
    # m64; the sum of 1 + 0.5 per round, stored with FISTP (round to nearest even) and checked
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\xdb\xe3"                  # fninit
        b"\xd9\xee"                  # fldz
        # loop:
        b"\x89\x0d" + _d(DATA) +     # mov [DATA], ecx
        b"\xdb\x05" + _d(DATA) +     # fild dword [DATA]
        b"\xd9\xc0"                  # fld st0
        b"\xd8\xc8"                  # fmul st0, st0
        b"\xd9\xfa"                  # fsqrt
        b"\xde\xf9"                  # fdivp st1, st0         (x / x = 1)
        b"\xdc\x05" + _d(DATA + 8) + # fadd qword [DATA+8]    (+ 0.5)
        b"\xde\xc1"                  # faddp st1, st0
        b"\x49"                      # dec ecx
        b"\x75\xe2"                  # jnz loop
        b"\xdb\x1d" + _d(DATA + 16) +  # fistp dword [DATA+16]
        b"\xa1" + _d(DATA + 16) +     # mov eax, [DATA+16]
        b"\xf4")
    total = round(n * 1.5)                       # Python rounds half to even, as FISTP does
    return code, 3 + n * 10 + 3, {0: total, 1: 0}, bytes(8) + struct.pack("<d", 0.5)


KERNELS = {
    "alu": (_alu_kernel, 20000),
    "branch": (_branch_kernel, 20000),
    "branch-random": (_branch_random_kernel, 20000),
    "memory": (_mem_kernel, 1000),
    "memory-strided": (_mem_strided_kernel, 1000),
    "call": (_call_kernel, 20000),
    "rep-movs": (_rep_kernel, 400),
    "x87": (_x87_kernel, 2000),
}


# Host instructions per guest instruction (callgrind, 2N minus N guest instructions) before the
# engine-seams work (commit c39c2d2), CPython 3.11.7: the reference the ratios are printed to.
BASELINE_IR = {"alu": 2508, "branch": 3381, "memory": 3219, "call": 6333, "rep-movs": 206}

UNTOUCHED = 0x3F0000            # an address no kernel reads, writes or executes


def _load(cpu, name: str):
    make, n = KERNELS[name]
    built = make(n)
    code, expect_count, expect_regs = built[:3]
    data = built[3] if len(built) > 3 else b""
    cpu.bus.load(CODE, code)
    if data:
        cpu.bus.load(DATA, data)
    return expect_count, expect_regs


def kernel_cpu(name: str, variant: str = "plain"):
    """A CPU with kernel ``name`` loaded: "plain" (a bare CPU, the interpreter), "jit" (the
    same with the JIT tier at its default threshold), "hooks" (a machine's CPU with
    an exec hook and a write hook, through ``aero.hooks``), "dr" (the guest's DR0 execute and
    DR1 write breakpoints enabled), "callback" / "callback-interp" (an exec hook calling a
    Python function before every instruction, JIT on / off).  The hooks and breakpoints are on
    untouched addresses."""
    if variant == "hooks":
        m = Machine(MachineConfig(bios=None, memory=4, jit="off"))
        cpu = set_flat32(m.cpu)
        m.hooks.exec(lambda mm, a: True, UNTOUCHED)
        m.hooks.mem_write(lambda mm, acc: True, UNTOUCHED + 0x800, UNTOUCHED + 0x804)
    elif variant in ("callback", "callback-interp"):
        # a Python callback before every instruction (a tracer, a profiler), JIT on or off
        m = Machine(MachineConfig(bios=None, memory=4,
                                  jit="on" if variant == "callback" else "off",
                                  jit_threshold=JIT_THRESHOLD))
        cpu = set_flat32(m.cpu)
        calls = [0]

        def every(mm, a):
            calls[0] += 1
        m.hooks.exec(every)
    else:
        cpu = flat32(4 << 20)
        if variant == "jit":
            cpu.cache.jit = JIT(cpu, JIT_THRESHOLD)
        if variant == "dr":
            cpu.dr[0] = UNTOUCHED
            cpu.dr[1] = UNTOUCHED + 0x800
            cpu.dr[7] = 0x400 | 0x1 | 0x4 | (0b1101 << 20)      # L0 exec, L1 write 4 bytes
            cpu.dr_changed()
    return cpu


def run_once(cpu, name: str, expect) -> float:
    """One validated run of the kernel; its wall time."""
    expect_count, expect_regs = expect
    cpu.eip = CODE
    cpu.halted = False
    start = cpu.icount
    t0 = time.perf_counter()
    why = cpu.run(expect_count * 2 + 100)
    wall = time.perf_counter() - t0
    executed = cpu.icount - start
    if why != "halt" or executed != expect_count:
        raise AssertionError(f"kernel {name}: stopped with {why!r} after {executed} "
                             f"instructions, expected HLT after {expect_count}")
    for r, v in expect_regs.items():
        if cpu.R[r] != v:
            raise AssertionError(f"kernel {name}: checksum register {r} = {cpu.R[r]:#x}, "
                                 f"expected {v:#x}")
    return wall


def run_kernel(name: str, seconds: float = 2.0, variant: str = "plain"):
    """Run one kernel repeatedly for about ``seconds``; return (MIPS, instructions, wall)."""
    cpu = kernel_cpu(name, variant)
    expect = _load(cpu, name)
    total = wall = 0.0
    while wall < seconds or total == 0:
        wall += run_once(cpu, name, expect)
        total += expect[0]
    return total / wall / 1e6, int(total), wall


def compare_variants(name: str, variants, seconds: float, rounds: int = 8) -> dict:
    """Best MIPS of each variant over ``rounds`` interleaved rounds."""
    cpus = {v: kernel_cpu(name, v) for v in variants}
    expects = {v: _load(c, name) for v, c in cpus.items()}
    best = {v: 0.0 for v in variants}
    per = seconds / rounds
    for _ in range(rounds):
        for v in variants:
            total = wall = 0.0
            while wall < per or total == 0:
                wall += run_once(cpus[v], name, expects[v])
                total += expects[v][0]
            best[v] = max(best[v], total / wall / 1e6)
    return best


# ---------------------------------------------------------------------------------------------
# Machine: stepping and snapshots
# ---------------------------------------------------------------------------------------------
def _scenario_machine(name: str, workdir: str):
    return scenarios.build(scenarios.load(name), workdir)


def machine_figures() -> dict:
    """Machine.step rate and snapshot/restore times (milliseconds), on the scenarios."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        m = _scenario_machine("pmode", d)
        m.run(max_instructions=2000)
        n, t0 = 0, time.perf_counter()
        while n < 20000:
            m.step()
            n += 1
        out["step_per_s"] = n / (time.perf_counter() - t0)

        dbg = Debugger(_scenario_machine("pmode", d))
        dbg.m.run(max_instructions=2000)
        n, t0 = 0, time.perf_counter()
        while n < 20000:
            dbg.step()
            n += 1
        out["debugger_step_per_s"] = n / (time.perf_counter() - t0)
        out["pause_latency_ms"] = _pause_latency(d)

        m = _scenario_machine("demo", d)
        m.run(max_instructions=300_000)
        t0 = time.perf_counter()
        s1 = m.get_state()
        out["snapshot_first_ms"] = (time.perf_counter() - t0) * 1e3
        m.run(max_instructions=400_000)
        t0 = time.perf_counter()
        m.get_state()
        out["snapshot_after_100k_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        m.set_state(s1)
        out["restore_100k_back_ms"] = (time.perf_counter() - t0) * 1e3
        fresh = _scenario_machine("demo", d)
        t0 = time.perf_counter()
        fresh.set_state(s1)
        out["restore_into_fresh_ms"] = (time.perf_counter() - t0) * 1e3
        # the worst case: all 32 MiB written since the last snapshot
        m.bus.ram[:] = bytes(range(256)) * (len(m.bus.ram) // 256)
        m.bus.note_ram_write(0, len(m.bus.ram))
        t0 = time.perf_counter()
        s2 = m.get_state()
        out["snapshot_all_32mib_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        m.set_state(s1)
        out["restore_all_32mib_ms"] = (time.perf_counter() - t0) * 1e3
        del s2
    return out


def _pause_latency(workdir: str, trials: int = 10) -> float:
    """The worst time (ms) from Debugger.pause() in another thread to the run returning, with
    the guest busy (the mode13h scenario drawing) or waiting for timer interrupts (irq)."""
    worst = 0.0
    for i in range(trials):
        dbg = Debugger(_scenario_machine("mode13h" if i % 2 else "irq", workdir))
        done = threading.Event()
        box = {}

        def run():
            box["stop"] = dbg.cont()
            box["t"] = time.perf_counter()
            done.set()
        th = threading.Thread(target=run, daemon=True)
        th.start()
        time.sleep(0.05 + 0.013 * i)
        t0 = time.perf_counter()
        dbg.pause()
        done.wait(5)
        th.join()
        if box["stop"].reason != "pause":
            continue                                    # the guest ended first
        worst = max(worst, (box["t"] - t0) * 1e3)
    return worst


# ---------------------------------------------------------------------------------------------
# Boots
# ---------------------------------------------------------------------------------------------
def boot_times():
    """Wall time of whole boots of scenarios/hello/hello.bin from a floppy: under Debian's
    SeaBIOS (when installed) and under the Aero BIOS.  Yields (name, instructions, seconds)."""
    boot = open(os.path.join(ROOT, "scenarios", "hello", "hello.bin"), "rb").read()
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "hello.img")
        with open(img, "wb") as f:
            f.write(boot.ljust(1474560, b"\0"))
        for name in ("seabios", "aero"):
            if name == "seabios" and not os.path.exists(FIRMWARE["seabios"][0]):
                continue
            m = build_machine(MachineConfig(bios=name, fda=img))
            t0 = time.perf_counter()
            r = m.run(timeout=300)
            wall = time.perf_counter() - t0
            m.close()
            if r.exit_code != (0x21 << 1) | 1:
                raise AssertionError(f"boot under {name} ended with {r.status} {r.exit_code}")
            yield name, r.icount, wall


# ---------------------------------------------------------------------------------------------
# Callgrind: host instructions per guest instruction
# ---------------------------------------------------------------------------------------------
_CG_PROGRAM = """
import sys
sys.path.insert(0, {root!r})
from aero.bench import kernel_cpu, _load, CODE
cpu = kernel_cpu({name!r})
_load(cpu, {name!r})
cpu.eip = CODE
cpu.run({n})
"""


def callgrind_ir(name: str, n: int = 30000) -> float:
    """Host instructions per guest instruction of kernel ``name`` (valgrind's callgrind counts
    instructions, not time: the same figure on a busy or an idle machine)."""
    def ir(count):
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                            sys.executable, "-c", _CG_PROGRAM.format(root=ROOT, name=name,
                                                                     n=count)],
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": "0"})
        m = re.search(r"Collected : (\d+)", p.stderr)
        if not m:
            raise RuntimeError(f"callgrind failed: {p.stderr.strip()[-200:]}")
        return int(m.group(1))
    return (ir(2 * n) - ir(n)) / n


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def main(seconds: float = 2.0, kernels=None, boot: bool = False, machine: bool = False,
         callgrind: bool = False, json_path: str | None = None, travel: bool = False,
         instructions: int = 100_000_000, keyframe_every: int | None = None) -> int:
    names = kernels or list(KERNELS)
    for n in names:
        if n not in KERNELS:
            print(f"aero: unknown kernel {n!r} (choose from {', '.join(KERNELS)})", file=sys.stderr)
            return 2
    if callgrind and not shutil.which("valgrind"):
        print("aero: --callgrind needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    figures: dict = {"python": sys.version.split()[0]}
    try:
        if boot:
            print("aero bench --boot: firmware POST + hello boot sector from a floppy")
            figures["boot"] = {}
            for name, n, wall in boot_times():
                figures["boot"][name] = {"seconds": wall, "instructions": n}
                print(f"  {name:8} {wall:6.2f} s   ({n:,} instructions, "
                      f"{n / wall / 1e6:.2f} MIPS)")
        elif callgrind:
            print("aero bench --callgrind: host instructions per guest instruction "
                  "(lower is better; ratio to before the engine seams)")
            figures["callgrind"] = {}
            for n in names:
                v = callgrind_ir(n)
                figures["callgrind"][n] = v
                base = BASELINE_IR.get(n)
                print(f"  {n:14} {v:7.0f}   ratio {v / base:.3f}" if base else f"  {n:14} {v:7.0f}")
        elif travel:
            from .trace.bench import travel_figures
            from .trace.recorder import KEYFRAME_EVERY
            kf = keyframe_every or KEYFRAME_EVERY
            print(f"aero bench --travel: a recording of {instructions:,} instructions "
                  f"(aero/benchdata/travel.asm), a keyframe every {kf:,}")
            figures["travel"] = travel_figures(instructions, kf)
        elif machine:
            print("aero bench --machine: driving a machine and snapshots")
            f = figures["machine"] = machine_figures()
            print(f"  Machine.step()                         {f['step_per_s']:10,.0f} steps/s")
            print(f"  Debugger.step()                        "
                  f"{f['debugger_step_per_s']:10,.0f} steps/s")
            print(f"  pause latency (worst of 10)            {f['pause_latency_ms']:8.1f} ms")
            print(f"  snapshot, demo at 300k (first)         {f['snapshot_first_ms']:8.1f} ms")
            print(f"  snapshot after 100k more instructions  "
                  f"{f['snapshot_after_100k_ms']:8.1f} ms")
            print(f"  restore, 100k instructions back        {f['restore_100k_back_ms']:8.1f} ms")
            print(f"  restore into a fresh machine           {f['restore_into_fresh_ms']:8.1f} ms")
            print(f"  snapshot, all 32 MiB written           {f['snapshot_all_32mib_ms']:8.1f} ms")
            print(f"  restore, all 32 MiB differ             {f['restore_all_32mib_ms']:8.1f} ms")
        else:
            print(f"aero bench: guest MIPS per tier, CPython {figures['python']}, {seconds:g} s "
                  "per kernel and variant (best of interleaved rounds)")
            print(f"  {'kernel':14} {'interp':>7} {'jit':>7} {'jit/int':>8} {'hooks':>7} "
                  f"{'guest DR':>9} {'cb int':>7} {'cb jit':>7}   (hooks, DR: interpreter, "
                  "ratio to plain; cb: MIPS with a callback on every instruction)")
            figures["kernels"] = {}
            for n in names:
                best = compare_variants(n, ("plain", "jit", "hooks", "dr", "callback-interp",
                                            "callback"), seconds)
                figures["kernels"][n] = best
                print(f"  {n:14} {best['plain']:7.2f} {best['jit']:7.2f} "
                      f"{best['jit'] / best['plain']:8.2f} {best['hooks'] / best['plain']:7.3f} "
                      f"{best['dr'] / best['plain']:9.3f} {best['callback-interp']:7.2f} "
                      f"{best['callback']:7.2f}")
    except AssertionError as e:
        print(f"  FAILED: {e}")
        return 1
    if json_path:
        with open(json_path, "w") as f:
            json.dump(figures, f, indent=1)
            f.write("\n")
    return 0
