"""`aero bench --trace`: what execution tracing costs, in speed and on disk.

Each workload runs three ways from the same start: plain (no tracer; the JIT on, as by
default), traced with instructions only (``aero trace record --no-memory --no-io``), and traced
in full (instructions, memory accesses, port accesses, interrupts and exceptions), the trace
written to a temporary directory exactly as ``aero trace record`` writes it (traced blocks run in
the interpreter: the JIT leaves them alone).  Printed per workload: guest instructions per CPU
second of the process (the best of two rounds, modes interleaved: on a shared host the wall clock
of a run stretches with whatever else runs; the JSON keeps wall-clock figures too), and the
trace's size per instruction.  Targets: a full trace at least 1 M instructions/s and at most 8
bytes per instruction (Bochs's text trace: 75 k instructions/s and 92 bytes each; QEMU
``-d exec``: about 1 M/s and 35 bytes each).

Workloads:

* the five ``aero bench`` kernels (ALU, branches, memory, calls, REP MOVSD), 32-bit flat mode,
  back to back on one machine;
* ``travel``: ``aero/benchdata/travel.bin`` under the Aero BIOS (fills memory a word at a time,
  a call per page, a 1 kHz timer interrupt), 3 M instructions;
* ``seabios``: Debian's SeaBIOS POST booting the hello floppy (real firmware: 6.2 M instructions
  of irregular code), when SeaBIOS is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from ..bench import CODE, DATA, KERNELS
from ..build import ROOT, build_machine
from ..config import FIRMWARE, MachineConfig
from ..cpu.presets import set_flat32
from ..machine import Machine
from .capture import Capture
from .tracefile import TraceWriter

TARGET_IPS = 1_000_000
TARGET_BYTES = 8.0
MODES = ("plain", "instructions", "full")
# kernel iterations: about 1-2 M instructions each
_KERNEL_N = {"alu": 200_000, "branch": 150_000, "memory": 12_000, "call": 300_000,
             "rep-movs": 5_000}


def _kernels_machine():
    m = Machine(MachineConfig(bios=None, memory=4))
    set_flat32(m.cpu)
    return m


def _run_kernels(m) -> int:
    """Run every kernel on ``m`` (a flat-mode machine); the instructions executed."""
    total = 0
    cpu = m.cpu
    for name, (make, _) in KERNELS.items():
        built = make(_KERNEL_N[name])
        code, expect = built[0], built[1]
        cpu.bus.load(CODE, code)
        if len(built) > 3:
            cpu.bus.load(DATA, built[3])
        cpu.eip = CODE
        cpu.halted = False
        start = cpu.icount
        r = m.run_until(instructions=expect * 2 + 100)
        done = cpu.icount - start
        if r.status != "halted" or done != expect:
            raise AssertionError(f"kernel {name}: {r.status} after {done} instructions, "
                                 f"expected HLT after {expect}")
        total += done
    return total


def _workloads(workdir: str):
    """(name, make machine, run it -> instructions) for each workload."""
    yield "kernels", _kernels_machine, _run_kernels

    img = os.path.join(workdir, "travel.img")
    with open(os.path.join(ROOT, "aero", "benchdata", "travel.bin"), "rb") as f, \
            open(img, "wb") as out:
        out.write(f.read().ljust(1474560, b"\0"))
    yield ("travel", lambda: build_machine(MachineConfig(fda=img, boot="a")),
           lambda m: m.run_until(icount=3_000_000).icount)

    if os.path.exists(FIRMWARE["seabios"][0]):
        hello = os.path.join(workdir, "hello.img")
        with open(os.path.join(ROOT, "scenarios", "hello", "hello.bin"), "rb") as f, \
                open(hello, "wb") as out:
            out.write(f.read().ljust(1474560, b"\0"))
        yield ("seabios", lambda: build_machine(MachineConfig(bios="seabios", fda=hello)),
               lambda m: m.run(timeout=600).icount)


def _dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def _once(make, run, mode: str, path: str) -> dict:
    m = make()
    writer = cap = None
    if mode != "plain":
        writer = TraceWriter(path, {"producer": "aero bench"})
        cap = Capture(m, writer, memory=mode == "full", io=mode == "full",
                      events=mode == "full")
    t0, c0 = time.perf_counter(), time.process_time()
    if cap is not None:
        cap.start()
    n = run(m)
    if cap is not None:
        totals = cap.stop()
        writer.close({"first": cap.first, "end": cap.end, "totals": totals})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    m.close()
    # instructions per CPU second of this process: on a shared host, other processes stretch
    # the wall clock (both are kept)
    f = {"instructions": n, "seconds": wall, "cpu_seconds": cpu, "ips": n / max(cpu, 1e-9),
         "wall_ips": n / wall}
    if mode != "plain":
        size = _dir_size(path)
        f.update(bytes=size, bytes_per_instruction=size / max(n, 1),
                 memory_accesses=totals["memory"], unattributed=totals["unattributed"])
        shutil.rmtree(path, ignore_errors=True)
    return f


def measure(name, make, run, workdir: str, progress=print, rounds: int = 2) -> dict:
    """The best of ``rounds`` runs of each mode, the modes interleaved (a shared, noisy host)."""
    out: dict = {}
    for _ in range(rounds):
        for mode in MODES:
            f = _once(make, run, mode, os.path.join(workdir, f"{name}-{mode}.trace"))
            if mode not in out or f["ips"] > out[mode]["ips"]:
                out[mode] = f
    p, i, fu = out["plain"], out["instructions"], out["full"]
    progress(f"  {name:9} {p['instructions'] / 1e6:6.2f} M insns  plain {p['ips'] / 1e6:5.2f} M/s"
             f"   instructions {i['ips'] / 1e6:5.2f} M/s {i['bytes_per_instruction']:5.2f} B"
             f"   full {fu['ips'] / 1e6:5.2f} M/s {fu['bytes_per_instruction']:5.2f} B "
             f"({fu['memory_accesses'] / max(fu['instructions'], 1):.2f} accesses/insn)")
    return out


def run_trace_bench(json_path: str | None = None, workloads=None, progress=print,
                    rounds: int = 2) -> int:
    """Measure every workload (or those named); print the figures; 0 if both targets are met
    on every workload, 1 otherwise."""
    progress(f"aero bench --trace: CPython {sys.version.split()[0]}; guest instructions per "
             "CPU second of the process (M/s; the best of each mode, modes interleaved) and "
             "bytes per instruction on disk (B)")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as d:
        for name, make, run in _workloads(d):
            if workloads and name not in workloads:
                continue
            figures[name] = measure(name, make, run, d, progress, rounds)
    ok = True
    for name, f in figures.items():
        fu = f["full"]
        if fu["ips"] < TARGET_IPS or fu["bytes_per_instruction"] > TARGET_BYTES:
            ok = False
            progress(f"  target missed on {name}: full trace {fu['ips'] / 1e6:.2f} M/s, "
                     f"{fu['bytes_per_instruction']:.2f} bytes per instruction (targets: "
                     f"{TARGET_IPS / 1e6:.0f} M/s, {TARGET_BYTES:.0f} bytes)")
    if ok:
        progress(f"  targets met: full traces at least {TARGET_IPS / 1e6:.0f} M instructions/s "
                 f"and at most {TARGET_BYTES:.0f} bytes per instruction")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"trace": figures}, f, indent=1)
            f.write("\n")
    return 0 if ok else 1
