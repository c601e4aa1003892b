"""PIIX4 ACPI PM I/O block through its ports: PM timer at 3.579545 MHz on virtual time, TMR_STS
and the SCI on IRQ 9, PM1 status/enable/control, sleep types, GPE0 and the APM ports."""

import pytest

from aero.clock import Clock
from aero.devices.acpi_pm import PM_FREQ
from aero.devices.base import IOBus, IRQLines
from aero.devices.pci import PCIBus
from aero.devices.piix import PIIX4PM
from aero.testing.fakecpu import FakeCPU

BASE = 0x600
PM1_STS, PM1_EN, PM1_CNT, PM_TMR = BASE, BASE + 2, BASE + 4, BASE + 8


class Rig:
    def __init__(self, ips=20_000_000):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=ips)
        self.io = IOBus()
        self.log = []
        self.irq = IRQLines(lambda line, level: self.log.append((self.clock.now(), line, level)))
        self.pci = PCIBus(self.irq)
        self.pci.register(self.io)
        self.off = 0
        self.s3 = []
        self.fn = self.pci.add(PIIX4PM(self.io, self.clock, power_off=self._off,
                                       sleep_cb=self.s3.append), 1, 3)
        self.fn.register()
        self.pm = self.fn.pm
        # SeaBIOS piix4_pm_config_setup with QEMU's base
        self.cfg_write(0x3C, 1, 9)
        self.cfg_write(0x40, 4, BASE | 1)
        self.cfg_write(0x80, 1, 0x01)

    def _off(self):
        self.off += 1

    def cfg_write(self, reg, size, v):
        self.io.write(0xCF8, 4, 0x80000000 | 1 << 11 | 3 << 8 | (reg & 0xFC))
        self.io.write(0xCFC + (reg & 3), size, v)

    def at(self, tick):
        """Advance virtual time to ``tick``, firing due events at their own ticks."""
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > tick:
                break
            self.cpu.icount = max(self.cpu.icount, ne)
            self.clock.run_due()
        self.cpu.icount = tick

    def tick_of(self, count):
        """First tick at which the PM timer has reached ``count``."""
        return -(-count * self.clock.ips // PM_FREQ)

    def inl(self, p):
        return self.io.read(p, 4)

    def inw(self, p):
        return self.io.read(p, 2)

    def inb(self, p):
        return self.io.read(p, 1)

    def outw(self, p, v):
        self.io.write(p, 2, v)

    def outb(self, p, v):
        self.io.write(p, 1, v)


@pytest.fixture
def rig():
    return Rig()


def test_pm_timer_counts_at_3579545_hz_of_virtual_time(rig):
    assert rig.inl(PM_TMR) == 0
    rig.at(20_000_000)                                       # one virtual second
    assert rig.inl(PM_TMR) == PM_FREQ                        # 3579545 = 0x369E99
    rig.at(20_000_000 + 20_000)                              # +1 ms
    assert rig.inl(PM_TMR) == PM_FREQ + 3579                 # floor(3579.545) more counts
    rig.at(123_456_789)
    assert rig.inl(PM_TMR) == (123_456_789 * PM_FREQ // 20_000_000) & 0xFFFFFF   # wrapped
    # bytes and words read the same counter
    rig.at(5 * 20_000_000)
    v = rig.inl(PM_TMR)
    assert [rig.inb(PM_TMR + i) for i in range(4)] == list(v.to_bytes(4, "little"))
    assert rig.inw(PM_TMR) == v & 0xFFFF


def test_pm_timer_is_24_bits_and_wraps(rig):
    t = rig.tick_of(1 << 24)
    rig.at(t - 1)
    assert rig.inl(PM_TMR) == 0xFFFFFF
    rig.at(t)
    assert rig.inl(PM_TMR) == 0                              # upper byte always reads 0
    rig.at(rig.tick_of((1 << 24) + 0x1234))
    assert rig.inl(PM_TMR) == 0x1234


def test_pm_timer_with_other_rates():
    r = Rig(ips=PM_FREQ)                                     # one tick per PM clock
    r.at(1000)
    assert r.inl(PM_TMR) == 1000
    r = Rig(ips=4_000_000)                                   # Bochs-like rate
    r.at(4_000_000 * 3)
    assert r.inl(PM_TMR) == 3 * PM_FREQ


def test_tmr_sts_follows_bit_23(rig):
    t23 = rig.tick_of(1 << 23)
    rig.at(t23 - 1)
    assert rig.inw(PM1_STS) & 1 == 0
    rig.at(t23)
    assert rig.inw(PM1_STS) & 1 == 1                         # bit 23 went 0 -> 1
    rig.outw(PM1_STS, 0x0000)                                # writing 0 clears nothing
    assert rig.inw(PM1_STS) & 1
    rig.outw(PM1_STS, 0x0001)                                # write 1 to clear
    assert rig.inw(PM1_STS) & 1 == 0
    rig.at(rig.tick_of(1 << 24) - 1)
    assert rig.inw(PM1_STS) & 1 == 0
    rig.at(rig.tick_of(1 << 24))
    assert rig.inw(PM1_STS) & 1                              # bit 23 went 1 -> 0


def test_acpi_enable_through_smi_cmd(rig):
    assert rig.inw(PM1_CNT) & 1 == 0
    rig.outb(0xB2, 0xF1)                                     # ACPI_ENABLE
    assert rig.inw(PM1_CNT) & 1 == 1 and rig.inb(0xB2) == 0xF1
    rig.outb(0xB2, 0xF0)                                     # ACPI_DISABLE
    assert rig.inw(PM1_CNT) & 1 == 0
    rig.outb(0xB3, 0x5A)                                     # APMS: scratch
    assert rig.inb(0xB3) == 0x5A
    rig.outb(0xB2, 0x00)                                     # an SMI request: no SMM here
    assert rig.fn.smi_dropped == 1 and rig.pm.smi_requests == 1


def test_timer_sci_on_irq9_level_triggered(rig):
    rig.outb(0xB2, 0xF1)
    rig.outw(PM1_EN, 0x0001)                                 # TMR_EN
    t23 = rig.tick_of(1 << 23)
    assert rig.clock.next_event() == t23                     # one event, at the toggle
    rig.at(t23 - 1)
    assert rig.log == []
    rig.at(t23)
    assert rig.log == [(t23, 9, True)]
    rig.at(t23 + 5000)
    assert rig.irq.level[9]                                  # level: stays until cleared
    assert rig.clock.next_event() is None                    # nothing to do while TMR_STS
    rig.outw(PM1_STS, 0x0001)
    assert rig.log[-1] == (t23 + 5000, 9, False)
    t24 = rig.tick_of(1 << 24)
    assert rig.clock.next_event() == t24
    rig.at(t24)
    assert rig.log[-1] == (t24, 9, True)
    rig.outw(PM1_EN, 0x0000)                                 # disabling the event drops SCI
    assert not rig.irq.level[9]
    assert rig.inw(PM1_STS) & 1                              # status stays


def test_no_sci_while_sci_en_is_clear(rig):
    rig.outw(PM1_EN, 0x0001)
    rig.at(rig.tick_of(1 << 23) + 10)
    assert rig.inw(PM1_STS) & 1 and rig.log == []
    rig.outb(0xB2, 0xF1)                                     # enabling ACPI raises it now
    assert rig.irq.level[9]


def test_power_button_event(rig):
    rig.outb(0xB2, 0xF1)
    rig.pm.press_power_button()
    assert rig.inw(PM1_STS) & 0x0100 and not rig.irq.level[9]
    rig.outw(PM1_EN, 0x0100)                                 # PWRBTN_EN
    assert rig.irq.level[9]
    rig.outb(PM1_STS + 1, 0x01)                              # byte write clears PWRBTN_STS
    assert rig.inw(PM1_STS) & 0x0100 == 0 and not rig.irq.level[9]
    rig.outw(PM1_EN, 0xFFFF)
    assert rig.inw(PM1_EN) == 0x0521                         # TMR, GBL, PWRBTN, RTC enables


def test_s5_powers_off_and_slp_en_reads_zero(rig):
    rig.outw(PM1_CNT, (1 << 10) | 1)                         # SLP_TYP=1 without SLP_EN
    assert rig.off == 0 and rig.s3 == []
    assert rig.inw(PM1_CNT) == (1 << 10) | 1
    rig.outw(PM1_CNT, (0 << 10) | 0x2000 | 1)                # S5: SLP_TYP 0 + SLP_EN
    assert rig.off == 1
    assert rig.inw(PM1_CNT) & 0x2000 == 0                    # SLP_EN is write-only
    rig.outw(PM1_CNT, (2 << 10) | 0x2000)                    # S4 powers off too (QEMU)
    assert rig.off == 2
    rig.outw(PM1_CNT, (1 << 10) | 0x2000)                    # S3: reported, no power-off
    assert rig.off == 2 and rig.s3 == [1]
    rig.outw(PM1_CNT, (5 << 10) | 0x2000)                    # others: nothing
    assert rig.off == 2 and rig.pm.sleeps == [0, 2, 1, 5]


def test_gpe0_block(rig):
    assert rig.io.owner[0xAFE0] is rig.pm
    rig.outb(0xB2, 0xF1)
    rig.pm.set_gpe(1)
    assert rig.inb(0xAFE0) == 0x02 and not rig.irq.level[9]
    rig.outb(0xAFE2, 0x02)                                   # GPE0_EN bit 1
    assert rig.inb(0xAFE2) == 0x02 and rig.irq.level[9]
    assert rig.io.read(0xAFE0, 4) == 0x00020002
    rig.outb(0xAFE0, 0x02)                                   # write 1 to clear
    assert rig.inb(0xAFE0) == 0 and not rig.irq.level[9]


def test_other_piix4_registers_are_stored(rig):
    rig.io.write(BASE + 0x28, 4, 0x00000001)                 # GLBCTL (SeaBIOS's SMI_EN)
    assert rig.inl(BASE + 0x28) == 1
    rig.io.write(BASE + 0x34, 4, 0xA5A5A5A5)                 # GPOREG
    assert rig.inl(BASE + 0x34) == 0xA5A5A5A5
    rig.io.write(BASE + 0x14, 1, 0xFF)                       # P_LVL2 is read-only
    assert rig.inb(BASE + 0x14) == 0


def test_reset_and_state_round_trip(rig):
    rig.outb(0xB2, 0xF1)
    rig.outw(PM1_EN, 0x0001)
    t23 = rig.tick_of(1 << 23)
    rig.at(t23 - 100)
    st = rig.fn.get_state()
    rig.at(t23)
    assert rig.irq.level[9]

    other = Rig()
    other.cpu.icount = t23 - 100
    other.fn.set_state(st)
    assert other.clock.next_event() == t23
    other.at(t23)
    assert other.irq.level[9] and other.inw(PM1_STS) & 1
    s = other.fn.summary()
    assert s["PM SCI"] == "asserted" and s["PMBA"].endswith("(decoded)")

    rig.fn.reset()
    assert rig.inl(PM_TMR) == 0xFFFFFFFF                     # PMREGMISC cleared: not decoded
    assert not rig.irq.level[9]
    rig.cfg_write(0x40, 4, BASE | 1)
    rig.cfg_write(0x80, 1, 1)
    assert rig.inw(PM1_EN) == 0 and rig.inw(PM1_CNT) == 0
    assert rig.inl(PM_TMR) == t23 * PM_FREQ // 20_000_000 & 0xFFFFFF   # keeps counting
