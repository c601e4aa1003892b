"""The I/O APIC (aero/devices/ioapic.py) on an APIC machine: registers, ISA IRQ and PCI INTx
redirection, level-triggered entries with remote IRR and the local APIC's EOI, ExtINT from the
8259A through pin 0, the MADT, and state."""

import shutil
import struct
import subprocess

import pytest

from aero.config import MachineConfig
from aero.devices.ioapic import PINS, isa_pin
from aero.devices.pci import pirq_of
from aero.firmware.acpi import build_madt, checksum
from aero.machine import Machine

IOREGSEL, IOWIN = 0xFEC00000, 0xFEC00010
SVR, TPR, EOI = 0xF0, 0x80, 0xB0


def machine(**kw):
    m = Machine(MachineConfig(bios=None, apic=True, **kw))
    m.lapic.write_reg(SVR, 0x1FF)
    return m


def rd(m, index):
    m.bus.write32(IOREGSEL, index)
    return m.bus.read32(IOWIN)


def wr(m, index, value):
    m.bus.write32(IOREGSEL, index)
    m.bus.write32(IOWIN, value)


def program(m, pin, low, dest=0):
    wr(m, 0x11 + 2 * pin, dest << 24)
    wr(m, 0x10 + 2 * pin, low)


def irr(m, v):
    return bool(m.lapic.IRR >> v & 1)


def test_registers():
    m = machine()
    assert rd(m, 0) == 0                               # ID 0 (QEMU's; SeaBIOS assumes it)
    assert rd(m, 1) == 0x00170011                      # version 11h, 24 entries
    assert rd(m, 2) == 0                               # arbitration ID = ID
    wr(m, 0, 0xFFFFFFFF)
    assert rd(m, 0) == 0x0F000000
    for pin in range(PINS):
        assert rd(m, 0x10 + 2 * pin) == 0x10000 and rd(m, 0x11 + 2 * pin) == 0
    wr(m, 0x10, 0xFFFFFFFF)
    assert rd(m, 0x10) == 0x1AFFF                      # delivery status, remote IRR read-only
    wr(m, 0x11, 0xFFFFFFFF)
    assert rd(m, 0x11) == 0xFF000000
    m.bus.write32(IOREGSEL, 0x55)
    assert m.bus.read32(IOREGSEL) == 0x55
    m.ioapic.reset()
    assert rd(m, 0x10) == 0x10000


def test_isa_irq_wiring():
    assert isa_pin(0) == 2 and isa_pin(2) is None and isa_pin(1) == 1 and isa_pin(15) == 15


def test_isa_irq_edge_redirection():
    m = machine()
    program(m, 2, 0x31)                                # IRQ0 (pin 2), edge, fixed, dest 0
    program(m, 4, 0x34 | 0x10000)                      # IRQ4 masked
    m.irq.set(0, False)                                # (the PIT's OUT 0 is high from reset)
    m.irq.set(0, True)
    assert irr(m, 0x31)
    assert m.cpu.intr
    assert m.lapic.acknowledge() == 0x31
    m.lapic.write_reg(EOI, 0)
    m.irq.set(0, True)                                 # no new edge: nothing
    assert not irr(m, 0x31)
    m.irq.set(0, False)
    m.irq.set(0, True)
    assert irr(m, 0x31)
    m.irq.set(4, True)                                 # masked edge: ignored, not held
    program(m, 4, 0x34)
    assert not irr(m, 0x34)
    program(m, 5, 0x35, dest=3)                        # another destination: not for us
    m.irq.set(5, True)
    assert not irr(m, 0x35)


def test_pci_intx_to_pins_16_19():
    m = machine()
    pm = m.pci.pm
    pin = pm.config[0x3D] or 1
    pm.config[0x3D] = pin
    pirq = pirq_of(pm.slot, pin)
    program(m, 16 + pirq, 0x60 | 0x8000 | 0x2000)      # level, active low (as the tables say)
    pm.set_irq(True)
    assert m.ioapic.wire[16 + pirq]
    assert irr(m, 0x60)
    assert rd(m, 0x10 + 2 * (16 + pirq)) & 0x4000      # remote IRR
    assert m.lapic.acknowledge() == 0x60
    pm.set_irq(False)
    m.lapic.write_reg(EOI, 0)
    assert not rd(m, 0x10 + 2 * (16 + pirq)) & 0x4000
    assert not irr(m, 0x60)


def test_pirq_also_reaches_its_isa_irq():
    m = machine()
    m.pci.isa.config_write(0x60, 1, 11)                # PIRQA -> IRQ 11
    program(m, 11, 0x6B | 0x8000)
    program(m, 16, 0x70 | 0x8000)
    m.pci.bus.router.set_pirq(0, True)
    assert irr(m, 0x6B) and irr(m, 0x70)


def test_level_remote_irr_and_eoi():
    m = machine()
    program(m, 9, 0x49 | 0x8000)                       # IRQ 9 level
    m.irq.set(9, True)
    assert irr(m, 0x49)
    assert rd(m, 0x10 + 18) & 0x4000
    assert m.lapic.TMR >> 0x49 & 1
    assert m.lapic.acknowledge() == 0x49
    m.lapic.write_reg(EOI, 0)                          # still asserted: delivered again
    assert irr(m, 0x49) and rd(m, 0x10 + 18) & 0x4000
    assert m.lapic.acknowledge() == 0x49
    m.irq.set(9, False)
    m.lapic.write_reg(EOI, 0)
    assert not irr(m, 0x49) and not rd(m, 0x10 + 18) & 0x4000
    # masked while asserted, unmasked later: delivered then
    program(m, 9, 0x49 | 0x8000 | 0x10000)
    m.irq.set(9, True)
    assert not irr(m, 0x49)
    program(m, 9, 0x49 | 0x8000)
    assert irr(m, 0x49)


def test_level_interrupt_taken_by_cpu_and_eoi_from_handler():
    """A full round trip on the CPU: IRQ 10 level -> vector 5Ah in real mode; the hook plays
    the handler's EOI; the device drops its line in between."""
    m = machine()
    m.bus.load(0x1000, bytes([0xFB, 0x90, 0xEB, 0xFD]))
    m.bus.load(0x2000, bytes([0xCF]))
    m.bus.load(0x5A * 4, bytes([0x00, 0x20, 0x00, 0x00]))
    m.cpu.load_seg_real(1, 0)
    m.cpu.eip = 0x1000
    program(m, 10, 0x5A | 0x8000)
    hits = []

    def handler(mm, ev):
        hits.append(mm.cpu.icount)
        if len(hits) == 2:
            mm.irq.set(10, False)
        mm.lapic.write_reg(EOI, 0)
    m.hooks.interrupt(handler, 0x5A)
    m.run_until(instructions=5)
    m.irq.set(10, True)
    m.run_until(instructions=20)
    assert len(hits) == 2 and hits[0] == 5


def test_extint_through_pin0():
    """Virtual wire through the I/O APIC: LINT0 masked, pin 0 in ExtINT mode (edge)."""
    m = machine()
    m.lapic.write_reg(0x350, 0x10700)                  # LINT0 masked
    program(m, 0, 0x700)                               # pin 0: ExtINT
    # 8259A master in AEOI mode, IRQ 0 and 1 unmasked
    for port, v in ((0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x03), (0x21, 0xFC)):
        m.io.write(port, 1, v)
    m.irq.set(0, False)                                # (the PIT's OUT 0 is high from reset)
    m.irq.set(0, True)
    m.irq.set(1, True)
    assert m.cpu.intr
    assert m.lapic.acknowledge() == 0x20               # vector from the PIC
    # the PIC's INTR stayed up (IRQ 1 pending): the INTA gave pin 0 a fresh edge
    assert m.cpu.intr
    assert m.lapic.acknowledge() == 0x21
    assert not m.cpu.intr


def test_state_round_trip():
    m = machine()
    program(m, 9, 0x49 | 0x8000)
    m.irq.set(9, True)
    st = m.get_state()
    h = m.state_hash()
    m2 = machine()
    m2.set_state(st)
    assert m2.state_hash() == h
    assert rd(m2, 0x10 + 18) & 0x4000 and m2.cpu.intr


def test_madt():
    t = build_madt()
    assert t[:4] == b"APIC" and struct.unpack_from("<I", t, 4)[0] == len(t)
    assert checksum(t) == 0
    assert struct.unpack_from("<II", t, 36) == (0xFEE00000, 1)
    entries, off = [], 44
    while off < len(t):
        entries.append(bytes(t[off:off + t[off + 1]]))
        off += t[off + 1]
    assert entries[0] == bytes([0, 8, 0, 0, 1, 0, 0, 0])
    assert entries[1] == struct.pack("<BBBBII", 1, 12, 0, 0, 0xFEC00000, 0)
    assert entries[2] == struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0)        # IRQ0 -> GSI 2
    assert struct.pack("<BBBBIH", 2, 10, 0, 9, 9, 0xD) in entries         # SCI level high
    assert entries[-1] == struct.pack("<BBBHB", 4, 6, 0xFF, 5, 1)


@pytest.mark.skipif(shutil.which("iasl") is None, reason="iasl (acpica-tools) not installed")
def test_madt_iasl(tmp_path):
    p = tmp_path / "apic.dat"
    p.write_bytes(build_madt())
    r = subprocess.run(["iasl", "-d", str(p)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    dsl = (tmp_path / "apic.dsl").read_text()
    assert "Multiple APIC Description Table" in dsl
    assert "Interrupt Source Override" in dsl and "Interrupt : 00000002" in dsl
    assert "I/O APIC" in dsl and "FEC00000" in dsl


def test_fw_cfg_acpi_has_madt_only_with_apic():
    on = Machine(MachineConfig(bios=None, apic=True))
    off = Machine(MachineConfig(bios=None))
    assert b"APIC" in on.fw_cfg.file("etc/acpi/tables")
    assert b"APIC" not in off.fw_cfg.file("etc/acpi/tables")
    assert off.acpi_extra_tables == () and len(on.acpi_extra_tables) == 1
