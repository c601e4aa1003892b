"""Real firmware nobody here wrote: Debian's SeaBIOS and Bochs BIOS POST on Aero's PC and boot
a floppy."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from aero.cli import main as aero_main

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
HELLO = os.path.join(ROOT, "scenarios", "hello", "hello.bin")
SEABIOS = "/usr/share/seabios/bios.bin"
needs_seabios = pytest.mark.skipif(not os.path.exists(SEABIOS), reason="seabios not installed")


@pytest.fixture
def floppy(tmp_path):
    img = tmp_path / "hello.img"
    img.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    return img


@needs_seabios
def test_seabios_boots_the_hello_floppy(floppy, tmp_path, capsys):
    log, shot = tmp_path / "fw.log", tmp_path / "screen.png"
    before = floppy.read_bytes()
    code = aero_main(["run", "--bios", "seabios", "--fda", str(floppy), "--firmware-log",
                      str(log), "--screenshot", str(shot), "--timeout", "300"])
    assert code == (0x21 << 1) | 1
    assert capsys.readouterr().out == "Hello from the boot sector\r\n"
    text = log.read_text(errors="replace")
    for line in ("SeaBIOS (version 1.16", "Running on QEMU (i440fx)", "Found QEMU fw_cfg",
                 "Booting from Floppy...", "Booting from 0000:7c00"):
        assert line in text, line
    # the VGA BIOS came through the ROM BAR and drew text: the top rows are not blank
    from aero.display.png import read_png
    frame = read_png(shot.read_bytes())
    assert frame.shape[1] == 720 and np.count_nonzero(frame[:48]) > 1000
    assert floppy.read_bytes() == before                   # the user's image is untouched


@needs_seabios
def test_seabios_installs_our_acpi_tables_and_the_demo_powers_off(tmp_path, capsys):
    # With fw_cfg etc/table-loader present SeaBIOS installs the machine's ACPI tables and puts
    # the PIIX4 PM block at 600h (QEMU's layout), where the demo's S5 write powers off.
    demo = tmp_path / "demo.img"
    demo.write_bytes(open(os.path.join(ROOT, "scenarios", "demo", "demo.bin"), "rb").read()
                     .ljust(1474560, b"\0"))
    log = tmp_path / "fw.log"
    code = aero_main(["run", "--bios", "seabios", "--fda", str(demo), "--firmware-log",
                      str(log), "--timeout", "300"])
    assert code == 0
    assert "Powering off." in capsys.readouterr().out
    assert "Using pmtimer, ioport 0x608" in log.read_text(errors="replace")


@pytest.mark.skipif(shutil.which("qemu-system-i386") is None, reason="qemu-system-i386 absent")
def test_same_serial_output_under_qemu(floppy):
    p = subprocess.run(["qemu-system-i386", "-drive", f"file={floppy},if=floppy,format=raw",
                        "-serial", "stdio", "-display", "none", "-nodefaults", "-m", "32",
                        "-device", "isa-debug-exit,iobase=0x501,iosize=2", "-no-reboot"],
                       capture_output=True, timeout=120)
    assert p.returncode == (0x21 << 1) | 1
    assert p.stdout == b"Hello from the boot sector\r\n"


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_boot_sector_rebuilds_identically(tmp_path):
    out = tmp_path / "h.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out),
                    os.path.join(ROOT, "scenarios", "hello", "hello.asm")], check=True)
    assert out.read_bytes() == open(HELLO, "rb").read()


@pytest.mark.skipif(not os.path.exists("/usr/share/bochs/BIOS-bochs-latest"),
                    reason="bochsbios not installed")
def test_bochs_bios_boots_the_hello_floppy(floppy, tmp_path, capsys):
    log, shot = tmp_path / "fw.log", tmp_path / "screen.png"
    code = aero_main(["run", "--bios", "bochs", "--fda", str(floppy), "--firmware-log",
                      str(log), "--screenshot", str(shot), "--timeout", "300"])
    assert code == (0x21 << 1) | 1
    assert capsys.readouterr().out == "Hello from the boot sector\r\n"
    text = log.read_text(errors="replace")
    assert "Starting rombios32" in text and "Booting from 0000:7c00" in text
    # the LGPL VGA BIOS (package vgabios) ran from C0000h and set up the text screen
    from aero.display.png import read_png
    frame = read_png(shot.read_bytes())
    assert frame.shape == (400, 720, 3) and np.count_nonzero(frame[:32]) > 1000
