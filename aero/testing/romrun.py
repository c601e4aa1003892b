"""Run a raw ROM image ("BIOS" image started at the reset vector) on a bare Aero CPU.

The machine is the smallest one a reset-vector guest needs, laid out the way QEMU lays out
``qemu-system-i386 -bios IMAGE``:

* RAM (32 MiB by default) from physical 0;
* the image mapped read-only at the top of the 4 GiB space (``4 GiB - size``), and its last
  128 KiB (all of it if smaller) aliased just below 1 MiB (so a 64 KiB image appears at 0xF0000);
* port 0xE9: the debug console (bytes written are collected, like QEMU's ``-debugcon``);
* port 0xF4: QEMU's ``isa-debug-exit``: a write of ``v`` ends the run with exit status
  ``(v << 1) | 1``;
* port 0x92: the "fast A20" gate (bit 1), wired to the bus's A20 mask.

The run also ends on a triple fault (``shutdown``), on HLT with nothing able to wake the CPU
(``halt``), when the instruction limit is reached (``limit``), or on an emulator error
(``error``, with the report).  Every other port reads as all ones and ignores writes.

``run_qemu`` runs the same image under ``qemu-system-i386`` with the equivalent devices and returns
the same kind of result, so tests can compare verdicts.

Guests written for this harness (tests/guests/) print ``PASS name`` / ``FAIL name ...`` lines;
``RomResult.checks`` parses them.

Command line: ``python -m aero.testing.romrun [--qemu] [--limit N] IMAGE``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass

from ..cpu.cpu import CPU
from ..jit import JIT
from ..mem.bus import Bus

DEBUGCON_PORT = 0xE9
EXIT_PORT = 0xF4
A20_PORT = 0x92
RAM_SIZE = 32 << 20
LOW_ALIAS_MAX = 128 << 10

_CHECK = re.compile(r"^(PASS|FAIL) (\S+)(.*)$")


@dataclass
class RomResult:
    status: str                     # exit | shutdown | halt | limit | timeout | error
    exit_code: int | None = None    # QEMU-style process status: (v << 1) | 1 for a write of v
    console: str = ""
    icount: int = 0
    detail: str = ""
    runner: str = "aero"

    @property
    def checks(self) -> dict:
        """{check name: (passed, line)} from the PASS/FAIL lines, in order."""
        out = {}
        for line in self.console.splitlines():
            m = _CHECK.match(line.strip())
            if m:
                out[m.group(2)] = (m.group(1) == "PASS", line.strip())
        return out

    @property
    def failed(self) -> list:
        return [n for n, (ok, _) in self.checks.items() if not ok]

    @property
    def passed(self) -> bool:
        """The guest reported through isa-debug-exit that every check passed."""
        return self.status == "exit" and self.exit_code == 1 and not self.failed

    def verdict(self) -> str:
        if self.passed:
            return f"pass ({len(self.checks)} checks)"
        if self.status == "exit":
            return f"fail: {', '.join(self.failed) or 'exit code %d' % self.exit_code}"
        return f"{self.status} after {len(self.checks)} checks" + (
            f" ({self.detail.splitlines()[0]})" if self.detail else "")

    def first_failure(self) -> str | None:
        """The first failing check, or what stopped the run before it finished."""
        for name, (ok, line) in self.checks.items():
            if not ok:
                return line
        if self.passed:
            return None
        if self.status == "exit":
            return f"exit code {self.exit_code}"
        last = list(self.checks)[-1] if self.checks else "(none)"
        return f"{self.status} after check {last}" + (
            f": {self.detail.splitlines()[0]}" if self.detail else "")


class _Stop(Exception):
    pass


def build_machine(data: bytes, ram_size: int = RAM_SIZE):
    """A Bus with RAM and the ROM image mapped as QEMU maps a -bios image, and a CPU at reset."""
    size = len(data)
    if size == 0 or size % 4096 or size > (16 << 20):
        raise ValueError(f"ROM image size {size} is not a positive multiple of 4 KiB up to 16 MiB")
    bus = Bus(ram_size)
    bus.map_rom(0x100000000 - size, data)
    low = data[-LOW_ALIAS_MAX:]
    bus.map_rom(0x100000 - len(low), low)
    cpu = CPU(bus)
    return bus, cpu


def run_rom(image, limit: int = 5_000_000, ram_size: int = RAM_SIZE,
            chunk: int = 50_000, jit_threshold: int | None = None) -> RomResult:
    """Run a ROM image (bytes or a path) from the reset vector on a bare Aero CPU (with the JIT
    at ``jit_threshold`` when given: 0 translates every block the first time it has run)."""
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            image = f.read()
    bus, cpu = build_machine(bytes(image), ram_size)
    if jit_threshold is not None:
        cpu.cache.jit = JIT(cpu, jit_threshold)
    console = bytearray()
    state = {"exit": None, "shutdown": False}

    def port_out(port, size, value):
        if port == DEBUGCON_PORT:
            console.append(value & 0xFF)
        elif port == EXIT_PORT:
            if state["exit"] is None:
                state["exit"] = ((value & ((1 << (8 * size)) - 1)) << 1 | 1) & 0xFF
            cpu.request_stop()
        elif port == A20_PORT:
            bus.set_a20(bool(value & 2))

    def port_in(port, size):
        if port == A20_PORT:
            return 0x02 if bus.a20 else 0x00
        return (1 << (8 * size)) - 1

    def on_shutdown():
        state["shutdown"] = True

    cpu.port_out = port_out
    cpu.port_in = port_in
    cpu.on_shutdown = on_shutdown

    def where():
        return f"at {cpu.sel[1]:04x}:{cpu.eip:08x} (icount {cpu.icount}, mode {cpu.mode})"

    status, detail = "limit", ""
    try:
        while cpu.icount < limit:
            why = cpu.run(min(chunk, limit - cpu.icount))
            if state["exit"] is not None:
                status = "exit"
                break
            if why == "shutdown" or state["shutdown"]:
                status, detail = "shutdown", "triple fault " + where()
                break
            if why == "halt":
                status, detail = "halt", "HLT with nothing to wake the CPU " + where()
                break
        else:
            detail = f"instruction limit {limit} reached " + where()
    except Exception as e:           # an emulator bug (or a missing feature) stops the run
        if state["exit"] is not None:
            status = "exit"
        else:
            status = "error"
            report = getattr(e, "report", None)
            detail = report or "".join(traceback.format_exception_only(type(e), e)).strip()
            detail += "\n  " + where()
    return RomResult(status, state["exit"], console.decode("latin-1"), cpu.icount, detail)


# ------------------------------------------------------------------------------------------------
# QEMU, the reference
# ------------------------------------------------------------------------------------------------
QEMU = "qemu-system-i386"
QEMU_CPU = "qemu32,+nx,+pse,+pae,+pge,+sep"


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None


def qemu_command(path: str, log: str, cpu_model: str = QEMU_CPU, ram_mib: int = 32) -> list:
    return [QEMU, "-bios", path, "-display", "none", "-nodefaults", "-m", str(ram_mib),
            "-cpu", cpu_model, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-debugcon", f"file:{log}", "-no-reboot", "-accel", "tcg"]


def run_qemu(path, timeout: float = 20.0, cpu_model: str = QEMU_CPU) -> RomResult:
    """Run a ROM image under qemu-system-i386 (TCG).  A triple fault with ``-no-reboot`` makes
    QEMU exit with status 0, which is reported as ``shutdown``."""
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as td:
        log = os.path.join(td, "debugcon.log")
        try:
            p = subprocess.run(qemu_command(path, log, cpu_model), capture_output=True,
                               timeout=timeout)
            rc, err = p.returncode, p.stderr.decode(errors="replace").strip()
            status = "exit" if rc & 1 else ("shutdown" if rc == 0 else "error")
        except subprocess.TimeoutExpired:
            rc, err, status = None, f"no exit within {timeout} s", "timeout"
        console = ""
        if os.path.exists(log):
            with open(log, "rb") as f:
                console = f.read().decode("latin-1")
    return RomResult(status, rc if status == "exit" else None, console, 0,
                     "" if status == "exit" else err, runner="qemu")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aero.testing.romrun",
                                 description="Run a raw ROM image from the reset vector.")
    ap.add_argument("image")
    ap.add_argument("--qemu", action="store_true", help="run under qemu-system-i386 instead")
    ap.add_argument("--limit", type=int, default=5_000_000, help="instruction limit (Aero)")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.image):
        print(f"romrun: no such image: {a.image}", file=sys.stderr)
        return 2
    if a.qemu:
        if not qemu_available():
            print(f"romrun: {QEMU} not found", file=sys.stderr)
            return 2
        r = run_qemu(a.image)
    else:
        try:
            r = run_rom(a.image, limit=a.limit)
        except ValueError as e:
            print(f"romrun: {e}", file=sys.stderr)
            return 2
    sys.stdout.write(r.console)
    if r.console and not r.console.endswith("\n"):
        sys.stdout.write("\n")
    print(f"[{r.runner}] status={r.status} exit_code={r.exit_code} icount={r.icount} "
          f"verdict: {r.verdict()}")
    if r.detail and not r.passed:
        print(r.detail)
    return 0 if r.passed else 1


if __name__ == "__main__":
    sys.exit(main())
