"""The scenarios on the APIC generation (MachineConfig(apic=True): local APIC, I/O APIC, MADT,
MP table) under both firmwares: every guest boots and prints exactly what its manifest expects
(the COM1 text QEMU prints too: tests/scenarios/test_scenarios.py runs the same manifests under
qemu-system-i386, whose pc machine always has APICs), exits as expected, and its screen and
COM1 output are those of the same run without the APIC.

The Aero BIOS runs every scenario (under a second each); SeaBIOS, slower to POST, runs a fixed
sample (the timer and keyboard interrupts, a hard disk and its IRQ 14) unless AERO_FULL=1.
SeaBIOS's own log must differ only where it reports the APIC and where the MADT makes the ACPI
tables it keeps at the top of RAM longer."""

import os
import re

import pytest

from aero import scenarios as S
from aero.display.png import read_png
from tests.conftest import FULL

SEABIOS = os.path.exists("/usr/share/seabios/bios.bin")
SEABIOS_ALL = S.names()             # the --kernel one too: SeaBIOS runs the multiboot option ROM
SEABIOS_SAMPLE = ["irq", "hdd"]
# what SeaBIOS 1.16 logs differently with an APIC (src/fw/smp.c): the CPU count it found
SEABIOS_APIC_LINES = {False: "No apic - only the main cpu is present.",
                      True: "Found 1 cpu(s) max supported 1 cpu(s)"}


def _run(name, tmp_path, apic, bios=None):
    scn = S.load(name)
    scn.machine = {**scn.machine, "apic": apic}
    d = tmp_path / f"{bios or 'aero'}-{'apic' if apic else 'pic'}"
    d.mkdir()
    out = S.run_aero(scn, str(d), bios=bios)
    assert out.ok, f"{name} under Aero ({bios or 'aero'} BIOS, apic={apic}):\n" + \
        "\n".join(out.problems)
    return scn, out


def _same_screen(a, b, label):
    fa, fb = (read_png(open(o.screenshot, "rb").read()) for o in (a, b))
    msg = S.compare_frames(fa, fb, label)
    assert msg is None, msg


@pytest.mark.parametrize("name", S.names())
def test_aero_bios_with_apic(name, tmp_path):
    scn, on = _run(name, tmp_path, True)
    msg = S.check_screen(scn, on)                 # the golden screen, if the scenario has one
    assert msg is None, msg
    _, off = _run(name, tmp_path, False)
    assert on.serial == off.serial and on.exit == off.exit
    _same_screen(on, off, f"{name}: APIC vs 8259A-only")


@pytest.mark.skipif(not SEABIOS, reason="seabios absent")
@pytest.mark.parametrize("name", SEABIOS_ALL if FULL else SEABIOS_SAMPLE)
def test_seabios_with_apic(name, tmp_path):
    _, on = _run(name, tmp_path, True, "seabios")
    _, off = _run(name, tmp_path, False, "seabios")
    assert on.serial == off.serial and on.exit == off.exit
    _same_screen(on, off, f"{name} under SeaBIOS: APIC vs 8259A-only")
    logs, top = {}, {}
    for apic, o in ((True, on), (False, off)):
        lines = o.firmware_log.decode("latin-1").splitlines()
        assert SEABIOS_APIC_LINES[apic] in lines and SEABIOS_APIC_LINES[not apic] not in lines
        assert "Copying MPTABLE" in "\n".join(lines)
        logs[apic] = [_normalized(ln) for ln in lines if ln != SEABIOS_APIC_LINES[apic]]
        top[apic] = _reserved_top(lines)
    assert logs[True] == logs[False]
    # the MADT makes the ACPI tables SeaBIOS keeps at the top of RAM a little longer
    assert top[True] >= top[False]


E820_LINE = re.compile(r"  (\d+): ([0-9a-f]{16}) - ([0-9a-f]{16}) = (\d) (\w+)")


def _normalized(line):
    """A SeaBIOS log line without what depends on how much of its high memory zone the
    ACPI tables use: the zone returned, the boundary between RAM and the reserved top."""
    if line.startswith("Returned ") and line.endswith(" bytes of ZoneHigh"):
        return "Returned ... bytes of ZoneHigh"
    m = E820_LINE.fullmatch(line)
    if m and int(m.group(2), 16) >= 0x100000 and int(m.group(3), 16) < 0xE0000000:
        return f"  {m.group(1)}: (RAM top) = {m.group(4)} {m.group(5)}"
    return line


def _reserved_top(lines):
    """The size of the reserved range that ends at the top of RAM in SeaBIOS's E820 map."""
    ranges = [(int(m.group(2), 16), int(m.group(3), 16), m.group(5))
              for m in map(E820_LINE.fullmatch, lines) if m]
    ram_end = max(end for start, end, kind in ranges if kind == "RAM")
    return sum(end - start for start, end, kind in ranges
               if kind == "RESERVED" and start == ram_end)
