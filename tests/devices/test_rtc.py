"""MC146818 RTC/CMOS on virtual time: formats, update cycle, interrupts, CMOS fields."""

import datetime as dt

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.rtc import RTC
from aero.testing.fakecpu import FakeCPU

IPS = 1_000_000                      # 1 tick = 1 us: easy arithmetic


class Rig:
    def __init__(self, start=dt.datetime(2024, 2, 28, 23, 59, 58), ips=IPS):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=ips)
        self.bus = IOBus()
        self.log = []
        self.irq = IRQLines(lambda line, level: self.log.append((self.clock.now(), line,
                                                                  level)))
        self.rtc = RTC(self.bus, self.irq, self.clock, start)

    def advance(self, n):
        target = self.cpu.icount + n
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > target:
                break
            self.cpu.icount = max(self.cpu.icount, ne)
            self.clock.run_due()
        self.cpu.icount = target

    def rd(self, reg):
        self.bus.write(0x70, 1, reg)
        return self.bus.read(0x71, 1)

    def wr(self, reg, v):
        self.bus.write(0x70, 1, reg)
        self.bus.write(0x71, 1, v)

    def time_regs(self):
        return [self.rd(r) for r in (0, 2, 4, 6, 7, 8, 9, 0x32)]

    def rises(self):
        return [t for t, line, lv in self.log if lv and line == 8]

    def events(self):
        return [e for e in self.clock.pending() if e.name == "rtc.irq8"]


def test_bcd_time_and_advance_across_leap_day():
    r = Rig()
    # sec, min, hour, day of week (Wed = 4), date, month, year, century
    assert r.time_regs() == [0x58, 0x59, 0x23, 0x04, 0x28, 0x02, 0x24, 0x20]
    r.advance(2 * IPS)
    assert r.time_regs() == [0x00, 0x00, 0x00, 0x05, 0x29, 0x02, 0x24, 0x20]
    r.advance(86400 * IPS)
    assert r.time_regs() == [0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20]
    assert r.rtc.now() == dt.datetime(2024, 3, 1, 0, 0, 0)


def test_century_rollover():
    r = Rig(dt.datetime(1999, 12, 31, 23, 59, 59))
    assert r.rd(9) == 0x99 and r.rd(0x32) == 0x19
    r.advance(IPS)
    assert r.time_regs() == [0, 0, 0, 0x07, 0x01, 0x01, 0x00, 0x20]   # Saturday


def test_updates_on_whole_virtual_seconds_only():
    r = Rig(dt.datetime(2024, 1, 1, 12, 0, 0))
    r.advance(IPS - 1)
    assert r.rd(0) == 0x00
    r.advance(1)
    assert r.rd(0) == 0x01


def test_binary_mode_and_12_hour_mode():
    r = Rig(dt.datetime(2024, 7, 4, 15, 45, 30))
    r.wr(0x0B, 0x02 | 0x04)                           # DM = binary, 24 h
    assert [r.rd(0), r.rd(2), r.rd(4), r.rd(9)] == [30, 45, 15, 24]
    r.wr(0x0B, 0x04)                                  # binary, 12 h
    assert r.rd(4) == 0x80 | 3                        # 3 PM
    r.wr(0x0B, 0x00)                                  # BCD, 12 h
    assert r.rd(4) == 0x83
    r.wr(0x04, 0x12)                                  # 12 AM = midnight
    r.wr(0x0B, 0x02)
    assert r.rd(4) == 0x00
    r.wr(0x0B, 0x00)
    r.wr(0x04, 0x92)                                  # 12 PM = noon
    r.wr(0x0B, 0x02)
    assert r.rd(4) == 0x12


def test_12_hour_rollover_am_to_pm():
    r = Rig(dt.datetime(2024, 1, 1, 11, 59, 59))
    r.wr(0x0B, 0x00)                                  # BCD 12 h
    assert r.rd(4) == 0x11
    r.advance(IPS)
    assert r.rd(4) == 0x92 and r.rd(2) == 0 and r.rd(0) == 0


def test_uip_set_244us_before_update():
    r = Rig(ips=32768 * 100)                          # 100 ticks per time-base cycle
    r.advance(32768 * 100 - 8 * 100 - 1)
    assert not r.rd(0x0A) & 0x80
    r.advance(1)
    assert r.rd(0x0A) & 0x80                          # 8 cycles = 244.1 us before
    s = r.rd(0)
    r.advance(8 * 100 - 1)
    assert r.rd(0x0A) & 0x80 and r.rd(0) == s         # time still the old one
    r.advance(1)
    assert not r.rd(0x0A) & 0x80 and r.rd(0) == s + 1


def test_set_bit_freezes_and_loads_time_uie_cleared():
    r = Rig()
    r.wr(0x0B, 0x12)                                  # UIE
    r.wr(0x0B, 0x82 | 0x10)                           # SET (and UIE: cleared by SET)
    assert r.rd(0x0B) == 0x82
    r.wr(0x00, 0x30)
    r.wr(0x02, 0x15)
    r.wr(0x04, 0x10)
    r.wr(0x07, 0x31)                                  # day 31 while month is still 2...
    r.wr(0x08, 0x03)                                  # ...then March: 31 March
    r.wr(0x09, 0x25)
    r.advance(5 * IPS)
    assert r.time_regs()[:7] == [0x30, 0x15, 0x10, 0x04, 0x31, 0x03, 0x25]
    assert not r.rd(0x0A) & 0x80                      # no update cycles under SET
    r.advance(IPS // 2)
    r.wr(0x0B, 0x02)
    r.advance(IPS // 2)                               # the divider phase continues
    assert r.rd(0) == 0x31 and r.rd(7) == 0x31
    assert r.rtc.now() == dt.datetime(2025, 3, 31, 10, 15, 31)


def test_update_interrupt_every_second_and_register_c():
    r = Rig(dt.datetime(2024, 1, 1, 12, 0, 0))        # (not midnight: alarm regs are 0)
    assert r.events() == []                           # nothing enabled: nothing scheduled
    r.advance(IPS // 4)
    assert r.rd(0x0C) == 0x40                         # PF only (1024 Hz, PIE off)
    r.wr(0x0B, 0x12)                                  # UIE
    r.advance(2 * IPS)
    assert r.rises() == [IPS]                         # asserted at the first update
    assert r.events() == []                           # held until C is read
    c = r.rd(0x0C)
    assert c == 0x80 | 0x40 | 0x10                    # IRQF, PF (1024 Hz, not enabled), UF
    assert r.irq.level[8] is False
    assert r.rd(0x0C) == 0                            # cleared by reading
    r.advance(IPS)
    assert r.rises() == [IPS, 3 * IPS]
    assert len(r.events()) == 0
    r.rd(0x0C)
    assert len(r.events()) == 1


def test_periodic_interrupt_rate():
    r = Rig(ips=1 << 20)                              # 32 ticks per 32.768 kHz cycle
    r.wr(0x0A, 0x26)                                  # 1024 Hz
    r.wr(0x0B, 0x42)                                  # PIE
    for _ in range(5):
        r.advance(1 << 15)                            # 1/32 s
        assert r.rd(0x0C) == 0xC0
    r.log.clear()
    t0 = r.cpu.icount
    for _ in range(64):
        r.advance(1 << 10)                            # one period: 32 cycles = 1024 ticks
        assert r.rd(0x0C) & 0xC0 == 0xC0
    assert [t - t0 for t in r.rises()] == [1024 * k for k in range(1, 65)]
    r.wr(0x0A, 0x2F)                                  # 2 Hz
    r.rd(0x0C)
    r.log.clear()
    r.advance(1 << 20)                                # one second: edges at the 0.5 s taps
    assert len(r.rises()) == 1
    r.rd(0x0C)
    r.advance(1 << 20)
    assert len(r.rises()) == 2


def test_pf_set_without_pie_but_no_interrupt_and_rs0_off():
    r = Rig()
    r.advance(IPS // 100)
    assert r.rd(0x0C) == 0x40
    assert r.rises() == []
    r.wr(0x0A, 0x20)                                  # RS = 0: no periodic
    r.advance(IPS // 10)
    assert r.rd(0x0C) == 0x00


def test_enabling_an_interrupt_with_flag_pending_asserts_at_once():
    r = Rig()
    r.advance(1000)
    r.wr(0x0B, 0x42)
    assert r.rises() == [1000]


def test_alarm_exact_and_dont_care():
    r = Rig(dt.datetime(2024, 1, 1, 8, 0, 0))
    r.wr(0x05, 0x08)                                  # alarm 08:00:05
    r.wr(0x03, 0x00)
    r.wr(0x01, 0x05)
    r.wr(0x0B, 0x22)                                  # AIE
    r.advance(10 * IPS)
    assert r.rises() == [5 * IPS]
    assert r.rd(0x0C) & 0xA0 == 0xA0
    # hours and minutes don't care: every minute at :30
    r.wr(0x05, 0xC0)
    r.wr(0x03, 0xFF)
    r.wr(0x01, 0x30)
    r.log.clear()
    r.advance(150 * IPS)
    assert r.rises() == [30 * IPS]                    # held until C is read
    r.rd(0x0C)                                        # at 08:02:40
    r.advance(150 * IPS)
    assert r.rises() == [30 * IPS, 210 * IPS]
    r.rd(0x0C)                                        # at 08:05:10
    assert [e.when for e in r.events()] == [330 * IPS]


def test_alarm_in_12_hour_mode_with_pm_bit():
    r = Rig(dt.datetime(2024, 1, 1, 13, 59, 58))
    r.wr(0x0B, 0x20)                                  # BCD, 12 h, AIE
    r.wr(0x05, 0x82)                                  # 2 PM
    r.wr(0x03, 0x00)
    r.wr(0x01, 0x00)
    r.advance(3 * IPS)
    assert r.rises() == [2 * IPS]


def test_alarm_every_second_when_all_dont_care():
    r = Rig()
    r.wr(0x05, 0xFF)
    r.wr(0x03, 0xFF)
    r.wr(0x01, 0xFF)
    r.wr(0x0B, 0x22)
    for k in range(1, 4):
        r.advance(IPS)
        assert r.rd(0x0C) == 0xA0 | 0x40 | 0x10
    assert r.rises() == [IPS, 2 * IPS, 3 * IPS]


def test_register_d_and_readonly_c_d():
    r = Rig()
    assert r.rd(0x0D) == 0x80
    r.wr(0x0D, 0x00)
    r.wr(0x0C, 0xFF)
    assert r.rd(0x0D) == 0x80 and r.rd(0x0C) == 0x00
    r.wr(0x0A, 0xA6)                                  # UIP bit is read-only
    assert r.rd(0x0A) & 0x7F == 0x26


def test_divider_reset_holds_time_and_first_update_half_second_after_release():
    r = Rig(dt.datetime(2024, 1, 1, 0, 0, 0))
    r.advance(IPS // 3)
    r.wr(0x0A, 0x66)                                  # DV = 110: divider reset
    r.advance(10 * IPS)
    assert r.rd(0) == 0x00
    r.wr(0x0B, 0x12)                                  # UIE
    assert r.events() == []                           # nothing can happen in reset
    t = r.cpu.icount
    r.wr(0x0A, 0x26)
    r.advance(IPS)
    assert r.rises() == [t + IPS // 2]
    assert r.rd(0) == 0x01


def test_nmi_mask_and_index():
    r = Rig()
    r.bus.write(0x70, 1, 0x8F)
    assert r.rtc.nmi_masked and r.rtc.index == 0x0F
    r.bus.write(0x71, 1, 0x5A)
    assert r.bus.read(0x71, 1) == 0x5A
    r.bus.write(0x70, 1, 0x0F)
    assert not r.rtc.nmi_masked
    assert r.bus.read(0x70, 1) == 0xFF                # index port is write-only
    assert r.rtc.summary()["NMI"] == "enabled"


def test_cmos_memory_size_fields_and_checksum():
    r = Rig()
    r.rtc.set_memory(64 << 20)
    c = [r.rd(i) for i in range(128)]
    assert c[0x15] | c[0x16] << 8 == 640
    assert c[0x17] | c[0x18] << 8 == 63 * 1024
    assert c[0x30] | c[0x31] << 8 == 63 * 1024
    assert c[0x34] | c[0x35] << 8 == (48 << 20) // 65536
    assert c[0x5B] == c[0x5C] == c[0x5D] == 0
    s = sum(c[0x10:0x2E])
    assert c[0x2E] << 8 | c[0x2F] == s
    r.rtc.set_memory(6 << 30)                         # 6 GiB: 3 GiB low, 3 GiB high
    c = [r.rd(i) for i in range(128)]
    assert c[0x17] | c[0x18] << 8 == 0xFFFF
    assert c[0x34] | c[0x35] << 8 == ((3 << 30) - (16 << 20)) // 65536
    assert c[0x5B] | c[0x5C] << 8 | c[0x5D] << 16 == (3 << 30) // 65536


def test_cmos_equipment_floppy_boot_order_cpus():
    r = Rig()
    r.rtc.configure(memory=32 << 20, floppies=["1.44M"], boot="cda", cpus=2)
    assert r.rd(0x10) == 0x40
    assert r.rd(0x14) == 0x07                         # floppy, FPU, PS/2 mouse, VGA, 1 drive
    assert r.rd(0x3D) == 0x32 and r.rd(0x38) == 0x10
    # SeaBIOS: bootorder = 3Dh | (38h & F0h) << 4, one device per nibble
    order = r.rd(0x3D) | (r.rd(0x38) & 0xF0) << 4
    assert [(order >> (4 * i)) & 15 for i in range(3)] == [2, 3, 1]
    assert r.rd(0x5F) == 1
    r.rtc.set_equipment(floppies=2)
    assert r.rd(0x14) >> 6 == 1 and r.rd(0x14) & 1
    r.rtc.set_boot_order("c", check_floppy_signature=False)
    assert r.rd(0x3D) == 0x02 and r.rd(0x38) == 0x01
    r.rtc.set_hard_disk(0, cylinders=1024, heads=16, sectors=63)
    assert r.rd(0x12) == 0xF0 and r.rd(0x19) == 47
    assert [r.rd(0x1B + i) for i in range(9)] == [0x00, 0x04, 16, 0xFF, 0xFF, 0xC8, 0x00,
                                                  0x04, 63]
    assert r.rd(0x39) & 3 == 1
    r.rtc.set_hard_disk(2, cylinders=100, heads=4, sectors=17, translation=2)
    assert r.rd(0x39) == 0x21 and r.rd(0x12) == 0xF0    # device 2: bits 5-4 of 39h
    assert r.rd(0x2E) << 8 | r.rd(0x2F) == sum(r.rd(i) for i in range(0x10, 0x2E))


def test_reset_clears_enables_and_flags_keeps_time():
    r = Rig()
    r.wr(0x0B, 0x7A)
    r.advance(IPS)
    assert r.irq.level[8]
    r.rtc.reset()
    assert r.rd(0x0B) == 0x02 and not r.irq.level[8]
    assert r.rd(0) == 0x59


def test_state_roundtrip_and_determinism():
    a = Rig()
    a.wr(0x0B, 0x72)
    a.wr(0x01, 0xFF)
    a.wr(0x03, 0xFF)
    a.wr(0x05, 0xFF)
    a.advance(IPS + 123)
    st = a.rtc.get_state()
    b = Rig(start=dt.datetime(1980, 1, 1))
    b.cpu.icount = a.cpu.icount
    b.rtc.set_state(st)
    assert b.rtc.get_state() == st
    a.log.clear()
    b.log.clear()
    for rig in (a, b):
        for _ in range(5):
            rig.rd(0x0C)
            rig.advance(IPS // 7)
    assert a.rises() == b.rises() and a.time_regs() == b.time_regs()
    with pytest.raises(ValueError):
        b.rtc.set_state(dict(st, version=7))


def test_summary():
    r = Rig()
    s = r.rtc.summary()
    assert s["time"] == "2024-02-28 23:59:58 dow=4"
    assert s["periodic"] == "1024 Hz" and s["divider"] == "running"


def test_states_are_json_serialisable():
    import json
    r = Rig()
    r.rtc.configure(memory=16 << 20)
    st = r.rtc.get_state()
    assert json.loads(json.dumps(st)) == st


def test_looking_does_not_change_state():
    a, b = Rig(), Rig()
    for r in (a, b):
        r.wr(0x0B, 0x12)
    for _ in range(10):
        a.rtc.summary()
        a.advance(IPS // 3)
        b.advance(IPS // 3)
    assert a.rtc.get_state() == b.rtc.get_state() and a.log == b.log


def test_irq8_through_the_pic():
    from aero.devices.pic import PIC
    cpu = FakeCPU()
    clock = Clock(cpu, ips=IPS)
    bus = IOBus()
    pic = PIC(bus, None)
    irq = IRQLines(pic.set_irq)
    rtc = RTC(bus, irq, clock, dt.datetime(2024, 1, 1, 12, 0, 0))
    for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0x00),
                    (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01), (0xA1, 0x00)):
        bus.write(port, 1, v)
    bus.write(0x70, 1, 0x0B)
    bus.write(0x71, 1, 0x42)                            # PIE at 1024 Hz
    vectors = []
    for _ in range(4):
        cpu.icount = clock.next_event()
        clock.run_due()
        assert pic.INTR
        vectors.append((clock.now(), pic.acknowledge()))
        bus.write(0x70, 1, 0x0C)
        assert bus.read(0x71, 1) == 0xC0                 # IRQF | PF; IRQ 8 drops
        bus.write(0xA0, 1, 0x20)
        bus.write(0x20, 1, 0x20)
    # 1024 Hz at 1 MIPS: periodic taps at ceil(k * 1e6 / 1024) ticks
    assert vectors == [(-(-k * IPS // 1024), 0x70) for k in range(1, 5)]
    assert rtc.summary()["IRQ8"] is False
