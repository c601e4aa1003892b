"""The PC machine: wiring, virtual time with idle skipping, determinism, `aero run` input checks."""

import os
import shutil
import subprocess
import sys

import pytest

from aero.cli import main as aero_main
from aero.config import MachineConfig
from aero.machine import Machine

HERE = os.path.dirname(__file__)
TIMER = os.path.join(HERE, "timer_irq.bin")


def run_timer(max_instructions=None, split=None):
    out = []
    m = Machine(MachineConfig(bios=None, debugcon=out.append))
    m.load_bios(open(TIMER, "rb").read())
    if split:
        r = m.run(max_instructions=split)
        assert r.status == "limit"
    r = m.run(max_instructions=max_instructions)
    return m, r, bytes(out).decode()


def test_timer_interrupts_wake_the_halted_cpu_in_virtual_time():
    m, r, console = run_timer()
    assert (r.status, r.exit_code) == ("debug-exit", (0x10 << 1) | 1)
    assert console == "TICKS 100\n"
    # 100 PIT periods of 1193 input clocks: at least 99.9 ms of virtual time went by ...
    assert m.clock.ns() >= 99_900_000
    # ... almost all of it skipped while halted, not executed
    assert m.cpu.icount < 5000
    assert m.cpu.idle_time > 1_000_000


def test_same_inputs_same_state_hash_however_the_run_is_sliced():
    a, ra, _ = run_timer()
    b, rb, _ = run_timer(split=377)
    assert ra.icount == rb.icount
    assert a.state_hash() == b.state_hash()


@pytest.mark.skipif(shutil.which("qemu-system-i386") is None, reason="qemu-system-i386 absent")
def test_timer_guest_behaves_the_same_under_qemu():
    # QEMU's default CPU has a local APIC whose LINT0 is masked at reset; Aero's CPU (like a
    # CPU without an APIC) takes 8259 interrupts directly, so QEMU runs with -apic.
    p = subprocess.run(["qemu-system-i386", "-bios", TIMER, "-display", "none", "-nodefaults",
                        "-m", "32", "-cpu", "qemu32,-apic", "-device",
                        "isa-debug-exit,iobase=0x501,iosize=2", "-debugcon", "stdio",
                        "-no-reboot"], capture_output=True, timeout=60)
    assert p.returncode == (0x10 << 1) | 1
    assert p.stdout.decode() == "TICKS 100\n"


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_guest_rebuilds_identically(tmp_path):
    out = tmp_path / "t.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), os.path.join(HERE, "timer_irq.asm")],
                   check=True)
    assert out.read_bytes() == open(TIMER, "rb").read()


@pytest.mark.parametrize("argv, message", [
    (["run", "--bios", "/no/such/file"], "no such file"),
    (["run", "--bios", __file__], "expected 64, 128 or 256 KiB"),
    (["run", "--bios", TIMER, "--rtc", "yesterday"], "ISO 8601"),
    (["run", "--bios", TIMER, "--memory", "1"], "memory must be"),
    (["run", "--frobnicate"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        sys.exit(aero_main(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_run_command_exit_status_and_state_hash(capsys):
    code = aero_main(["run", "--bios", TIMER, "--debugcon", "stdio", "--state-hash",
                      "--headless"])
    cap = capsys.readouterr()
    assert code == 33
    assert "TICKS 100" in cap.out
    assert cap.err.startswith("state-hash icount=") and "sha256=" in cap.err


def test_run_multiboot_kernel_from_the_command_line(capsys):
    kernel = os.path.join(HERE, "..", "firmware", "guests", "mb_elf.bin")
    code = aero_main(["run", "--kernel", kernel, "--cmdline", "root=/dev/x quiet",
                      "--debugcon", "stdio"])
    out = capsys.readouterr().out
    assert code == 1                                   # the kernel wrote 0 to isa-debug-exit
    assert 'root=/dev/x quiet"' in out and "magic 2BADB002" in out


def test_kernel_options_need_a_kernel(capsys):
    assert aero_main(["run", "--bios", TIMER, "--cmdline", "x"]) == 2
    assert "--cmdline and --module need --kernel" in capsys.readouterr().err


def test_event_scheduled_by_the_guest_fires_at_its_tick(capsys):
    # Each byte's THRE event is scheduled by the guest's OUT while the CPU runs; if it waited
    # for the end of the run slice (500,000 ticks) this guest would take millions of ticks.
    guest = os.path.join(HERE, "thre_poll.bin")
    out = []
    m = Machine(MachineConfig(bios=None, serial=out.append))
    m.load_bios(open(guest, "rb").read())
    r = m.run(max_instructions=5_000_000)
    assert (r.status, r.exit_code) == ("debug-exit", 1)
    assert bytes(out) == b"polled THRE output\n"
    char_ticks = m.uarts[0].char_ticks()
    assert r.icount < 19 * char_ticks + 5000


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_thre_guest_rebuilds_identically(tmp_path):
    out = tmp_path / "t.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), os.path.join(HERE, "thre_poll.asm")],
                   check=True)
    assert out.read_bytes() == open(os.path.join(HERE, "thre_poll.bin"), "rb").read()


def test_realtime_paces_virtual_time_without_changing_the_run():
    import time
    plain, r1, _ = run_timer()
    out = []
    m = Machine(MachineConfig(bios=None, debugcon=out.append))
    m.load_bios(open(TIMER, "rb").read())
    t0 = time.monotonic()
    r2 = m.run(realtime=True)
    wall = time.monotonic() - t0
    assert wall >= 0.095                       # 100 virtual milliseconds took real ones
    assert (r2.status, r2.icount) == (r1.status, r1.icount)
    assert m.state_hash() == plain.state_hash()
