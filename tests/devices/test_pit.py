"""8254 PIT and port 61h: counter sequences, OUT timing and IRQ 0 edges on virtual time.

Most tests run the clock at ips = 1193182 so that one tick is exactly one PIT CLK: a count
written at tick t is loaded into the CE at edge t+1 (datasheet: "loaded on the next CLK")."""

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.pit import PIT, PIT_HZ, PortB
from aero.testing.fakecpu import FakeCPU


class Rig:
    def __init__(self, ips=PIT_HZ):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=ips)
        self.bus = IOBus()
        self.log = []                                 # (tick, level) of IRQ 0
        self.irq = IRQLines(self._sink)
        self.pit = PIT(self.bus, self.irq, self.clock)
        self.portb = PortB(self.bus, self.pit, self.clock)
        self.log.clear()                              # reset raised OUT 0 (mode 3, as QEMU)

    def _sink(self, line, level):
        assert line == 0
        self.log.append((self.clock.now(), level))

    def rises(self):
        return [t for t, lv in self.log if lv]

    def advance(self, n):
        """Advance n ticks, firing every event at exactly its tick."""
        target = self.cpu.icount + n
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > target:
                break
            self.cpu.icount = max(self.cpu.icount, ne)
            self.clock.run_due()
        self.cpu.icount = target

    def out(self, port, v):
        self.bus.write(port, 1, v)

    def inb(self, port):
        return self.bus.read(port, 1)

    def program(self, ch, mode, count, rw=3, bcd=False):
        self.out(0x43, ch << 6 | rw << 4 | mode << 1 | bcd)
        if rw in (1, 3):
            self.out(0x40 + ch, count & 0xFF)
        if rw in (2, 3):
            self.out(0x40 + ch, count >> 8)

    def latch_read(self, ch):
        self.out(0x43, ch << 6)
        lo = self.inb(0x40 + ch)
        hi = self.inb(0x40 + ch)
        return lo | hi << 8

    def trace(self, ch, n):
        """(value, OUT) at n consecutive ticks, starting now."""
        res = []
        for _ in range(n):
            self.out(0x43, 0xE0 | 2 << ch)            # read-back: latch count and status
            st = self.inb(0x40 + ch)
            lo = self.inb(0x40 + ch)
            hi = self.inb(0x40 + ch)
            res.append((lo | hi << 8, st >> 7))
            self.advance(1)
        return res

    def pit_events(self):
        return [e for e in self.clock.pending() if e.name == "pit.irq0"]


def test_mode0_interrupt_on_terminal_count():
    r = Rig()
    r.advance(100)
    r.log.clear()
    r.program(0, 0, 5)                                # at tick 100
    assert r.irq.level[0] is False                    # OUT low after the mode write
    tr = r.trace(0, 10)
    # tick 100: not loaded yet; 101: CE = 5 ... 106: CE = 0 -> OUT high (N+1 CLKs)
    assert [v for v, _ in tr[1:]] == [5, 4, 3, 2, 1, 0, 0xFFFF, 0xFFFE, 0xFFFD]
    assert [o for _, o in tr] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert r.rises() == [106]
    r.advance(200000)
    assert r.rises() == [106]                         # mode 0 does not repeat
    assert not r.pit_events()


def test_mode0_two_byte_write_disables_counting_and_rewrite_restarts():
    r = Rig()
    r.program(0, 0, 1000)
    r.advance(10)
    assert r.latch_read(0) == 991
    r.out(0x40, 0x10)                                 # first byte: counting stops
    r.advance(5)
    assert r.latch_read(0) == 991
    r.out(0x40, 0x00)                                 # second byte: 0x0010 loads next CLK
    r.advance(1)
    assert r.latch_read(0) == 16
    r.advance(16)
    assert r.pit.out(0) is True
    # a new count written after terminal count takes OUT low again
    r.program(0, 0, 3, rw=1)
    assert r.pit.out(0) is False


def test_mode0_gate_suspends_counting_channel2():
    r = Rig()
    r.out(0x61, 0x01)                                 # gate 2 high
    r.program(2, 0, 100)
    r.advance(11)
    assert r.latch_read(2) == 90
    r.out(0x61, 0x00)                                 # gate low: hold
    r.advance(50)
    assert r.latch_read(2) == 90
    r.out(0x61, 0x01)
    r.advance(10)
    assert r.latch_read(2) == 80


def test_mode2_rate_generator_period_and_irq_edges():
    r = Rig()
    r.program(0, 2, 4)                                # write at tick 0, load at edge 1
    r.log.clear()
    tr = r.trace(0, 10)
    assert [v for v, _ in tr[1:]] == [4, 3, 2, 1, 4, 3, 2, 1, 4]
    assert [o for _, o in tr[1:]] == [1, 1, 1, 0, 1, 1, 1, 0, 1]
    r.log.clear()
    r.advance(40)
    # each rising edge of OUT gives IRQ 0 a rising edge, at edges 1 + 4k
    assert r.rises() == [13, 17, 21, 25, 29, 33, 37, 41, 45, 49]
    assert len(r.pit_events()) == 1                   # never more than one pending


def test_mode2_new_count_takes_effect_at_end_of_period():
    r = Rig()
    r.program(0, 2, 10)
    r.advance(4)                                      # edge 4: CE = 7
    r.out(0x40, 3)
    r.out(0x40, 0)
    st = r.trace(0, 1)[0]
    r.out(0x43, 0xE2)
    assert r.inb(0x40) & 0x40                          # NULL COUNT until the reload
    vals = [v for v, _ in r.trace(0, 12)]
    # the current period finishes (6..1), then period 3
    assert vals == [6, 5, 4, 3, 2, 1, 3, 2, 1, 3, 2, 1]
    assert st[0] == 7
    r.out(0x43, 0xE2)
    assert not r.inb(0x40) & 0x40


def test_mode3_even_count_square_wave():
    r = Rig()
    r.program(0, 3, 6)
    r.advance(1)
    tr = r.trace(0, 12)
    assert [v for v, _ in tr] == [6, 4, 2] * 4
    assert [o for _, o in tr] == [1, 1, 1, 0, 0, 0] * 2
    r.log.clear()
    r.advance(60)
    assert r.rises() == [19 + 6 * k for k in range(10)]


def test_mode3_odd_count():
    r = Rig()
    r.program(0, 3, 5)
    r.advance(1)
    tr = r.trace(0, 10)
    # odd (8254 datasheet 231164, mode 3 "Odd counts"): N-1 loaded, counts down by two; high
    # (N+1)/2 CLKs (N-1 ... 0), low (N-1)/2 CLKs (N-1 ... 2)
    assert [v for v, _ in tr] == [4, 2, 0, 4, 2] * 2
    assert [o for _, o in tr] == [1, 1, 1, 0, 0] * 2
    r.program(0, 3, 9)
    r.advance(1)
    tr = r.trace(0, 9)
    assert [v for v, _ in tr] == [8, 6, 4, 2, 0, 8, 6, 4, 2]
    assert [o for _, o in tr] == [1, 1, 1, 1, 1, 0, 0, 0, 0]


def test_mode3_count_change_at_end_of_half_cycle():
    r = Rig()
    r.program(0, 3, 8)
    r.advance(2)                                      # high half: CE 8, now 6
    r.out(0x40, 4)
    r.out(0x40, 0)
    tr = r.trace(0, 10)
    # the high half of 8 finishes (6, 4, 2), then the new count starts its low half
    assert [v for v, _ in tr] == [6, 4, 2, 4, 2, 4, 2, 4, 2, 4]
    assert [o for _, o in tr] == [1, 1, 1, 0, 0, 1, 1, 0, 0, 1]


def test_mode3_gate_low_forces_out_high_and_rising_gate_reloads():
    r = Rig()
    r.out(0x61, 0x01)
    r.program(2, 3, 10)
    r.advance(7)                                      # edge 7: k = 6 -> low half
    assert r.pit.out(2) is False
    assert (r.inb(0x61) >> 5) & 1 == 0
    r.out(0x61, 0x00)
    assert r.pit.out(2) is True                       # forced high at once
    assert (r.inb(0x61) >> 5) & 1 == 1
    v = r.latch_read(2)
    r.advance(20)
    assert r.latch_read(2) == v                       # suspended
    r.out(0x61, 0x01)                                 # trigger: reload on next CLK
    r.advance(1)
    assert r.latch_read(2) == 10


def test_mode4_software_strobe():
    r = Rig()
    r.program(0, 4, 3)
    tr = r.trace(0, 7)
    assert [v for v, _ in tr[1:]] == [3, 2, 1, 0, 0xFFFF, 0xFFFE]
    assert [o for _, o in tr] == [1, 1, 1, 1, 0, 1, 1]   # low for one CLK at count 0
    assert r.rises() == [5]


def test_mode1_retriggerable_one_shot_on_gate():
    r = Rig()
    r.program(2, 1, 5)
    r.advance(10)
    assert r.pit.out(2) is True                       # waits for a trigger
    r.out(0x43, 0xE8)
    assert r.inb(0x42) & 0x40                          # NULL COUNT: CR not yet in the CE
    r.out(0x61, 0x01)                                 # gate rising edge at tick 10
    tr = r.trace(2, 8)
    assert [o for _, o in tr] == [1, 0, 0, 0, 0, 0, 1, 1]
    assert [v for v, _ in tr[1:]] == [5, 4, 3, 2, 1, 0, 0xFFFF]
    # retrigger in the middle of a pulse extends it
    r.out(0x61, 0x00)
    r.out(0x61, 0x01)
    r.advance(3)
    r.out(0x61, 0x00)
    r.out(0x61, 0x01)                                 # retrigger at k = 2
    tr = r.trace(2, 7)
    assert [o for _, o in tr] == [0, 0, 0, 0, 0, 0, 1]


def test_mode5_hardware_strobe():
    r = Rig()
    r.program(2, 5, 3)
    r.advance(5)
    assert r.pit.out(2) is True
    r.out(0x61, 0x01)
    tr = r.trace(2, 6)
    assert [o for _, o in tr] == [1, 1, 1, 1, 0, 1]


def test_gates_of_channel0_tied_high_so_mode1_never_fires():
    r = Rig()
    r.program(0, 1, 5)
    r.log.clear()
    r.advance(1000)
    assert r.pit.out(0) is True and r.rises() == []


def test_bcd_counting():
    r = Rig()
    r.program(0, 0, 0x0012, bcd=True)
    r.advance(1)
    tr = r.trace(0, 4)
    assert [v for v, _ in tr] == [0x12, 0x11, 0x10, 0x09]
    r.program(0, 0, 0x0000, bcd=True)                 # 0 = 10000 in BCD
    r.advance(2)
    assert r.latch_read(0) == 0x9999
    r.program(0, 2, 0x0010, bcd=True)
    r.advance(1)
    assert [v for v, _ in r.trace(0, 11)] == [0x10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0x10]


def test_lsb_only_and_msb_only_access():
    r = Rig()
    r.program(0, 2, 0x40, rw=1)
    r.advance(11)
    r.out(0x43, 0x00)                                  # latch: one byte in LSB mode
    assert r.inb(0x40) == 0x40 - 10
    assert r.inb(0x40) == 0x40 - 10                    # unlatched read follows
    r.program(1, 2, 0x0200, rw=2)
    r.advance(0x101)
    r.out(0x43, 0x40)
    assert r.inb(0x41) == 0x01                         # MSB of 0x0100
    r.out(0x43, 0xE4)                                  # read-back: status of ch1
    assert r.inb(0x41) == 0b1010_0100                  # OUT, RW = MSB, mode 2


def test_unlatched_two_byte_reads_alternate():
    r = Rig()
    r.program(0, 2, 0x1234)
    r.advance(1)
    assert r.inb(0x40) == 0x34
    assert r.inb(0x40) == 0x12


def test_counter_latch_holds_until_read_and_ignores_second_latch():
    r = Rig()
    r.program(0, 2, 1000)
    r.advance(101)
    r.out(0x43, 0x00)
    r.advance(50)
    r.out(0x43, 0x00)                                 # ignored: already latched
    assert r.inb(0x40) == (900 & 0xFF)
    r.advance(50)
    assert r.inb(0x40) == 900 >> 8
    r.out(0x43, 0x00)
    assert r.inb(0x40) | r.inb(0x40) << 8 == 800


def test_readback_status_and_multiple_counters():
    r = Rig()
    r.program(0, 3, 100)
    r.program(1, 2, 50, rw=1)
    r.program(2, 0, 0x3000, rw=2, bcd=True)
    # just written: NULL COUNT set
    r.out(0x43, 0xEE)                                 # status of all three
    s0, s1, s2 = r.inb(0x40), r.inb(0x41), r.inb(0x42)
    assert s0 == 0b1111_0110
    assert s1 == 0b1101_0100
    assert s2 == 0b0110_0001                           # mode 0: OUT low
    r.advance(5)
    r.out(0x43, 0xCE)                                 # count + status of all three at once
    assert r.inb(0x40) == 0b1011_0110                  # status first, NULL COUNT clear
    assert r.inb(0x40) | r.inb(0x40) << 8 == 100 - 2 * 4
    r.advance(7)
    assert r.inb(0x41) == 0b1001_0100
    assert r.inb(0x41) == 50 - 4                       # latched at the read-back
    assert r.inb(0x42) == 0b0010_0001                  # channel 2 gate low: no counting...
    assert r.inb(0x42) == 0x30                         # ...loaded (MSB of 3000) but held
    # status latched twice: the second is ignored until read
    r.out(0x43, 0xE2)
    r.advance(1000)
    r.out(0x43, 0xE2)
    assert r.inb(0x40) == 0b1011_0110


def test_mode6_and_7_are_2_and_3_status_shows_written_bits():
    r = Rig()
    r.program(0, 6, 4)
    r.advance(1)
    assert [v for v, _ in r.trace(0, 5)] == [4, 3, 2, 1, 4]
    r.out(0x43, 0xE2)
    assert (r.inb(0x40) >> 1) & 7 == 6
    r.program(0, 7, 4)
    r.advance(1)
    assert [v for v, _ in r.trace(0, 4)] == [4, 2, 4, 2]


def test_count_zero_is_65536_and_bios_rate_irq():
    ips = 20_000_000
    r = Rig(ips=ips)
    r.program(0, 3, 0)
    t0 = r.clock.now()
    r.log.clear()
    r.advance(ips)                                    # one virtual second
    rises = r.rises()
    e0 = t0 * PIT_HZ // ips + 1                       # load edge
    expect = [-(-(e0 + 65536 * k) * ips // PIT_HZ) for k in range(1, 40)]
    expect = [t for t in expect if t <= t0 + ips]
    assert rises == expect and len(rises) == 18       # 18.2 Hz
    assert len(r.pit_events()) == 1


def test_1khz_rate_costs_one_event_per_period():
    ips = 5_000_000
    r = Rig(ips=ips)
    r.program(0, 2, 1193)
    r.log.clear()
    fired = []
    orig = r.clock.run_due

    def counting():
        n = orig()
        fired.append(n)
        return n
    r.clock.run_due = counting
    r.advance(ips // 10)                              # 0.1 s
    assert len(r.rises()) == 100
    assert sum(fired) == 100


def test_irq0_level_mirrors_out_and_edges_come_from_the_event():
    r = Rig()
    r.program(0, 3, 10)
    r.log.clear()
    r.advance(7)                                      # low half
    r.inb(0x40)                                       # an access syncs the line low
    assert r.irq.level[0] is False
    r.advance(10)
    assert r.rises() == [11]                          # one rising edge only
    r.inb(0x40)
    r.advance(10)
    assert r.rises() == [11, 21]


def test_control_word_to_mode2_gives_out_a_rising_edge():
    r = Rig()
    r.program(0, 0, 1000)
    r.advance(5)
    r.log.clear()
    r.out(0x43, 0x34)                                 # OUT goes high at once
    assert r.rises() == [5]


def test_portb_bits_refresh_toggle_and_speaker():
    ips = 10_000_000
    r = Rig(ips=ips)
    r.out(0x61, 0x03)
    assert r.inb(0x61) & 0x0F == 0x03
    assert r.portb.speaker_on
    r.program(2, 3, 1193)                             # ~1 kHz tone
    assert r.portb.speaker_frequency() == pytest.approx(1000.15, abs=0.01)
    toggles = []
    for _ in range(400):                              # 40 us in steps of 0.1 us
        toggles.append((r.inb(0x61) >> 4) & 1)
        r.advance(1)
    flips = [i for i in range(1, 400) if toggles[i] != toggles[i - 1]]
    # flips every 15.085 us of virtual time = 150.85 ticks at 10 MIPS
    assert flips == [151, 302]
    r.out(0x61, 0x02)                                 # gate off: no tone
    assert not r.portb.speaker_on and r.portb.speaker_frequency() is None
    assert r.portb.summary()["speaker"] == "off"


def test_portb_out2_follows_channel2():
    r = Rig()
    r.out(0x61, 0x01)
    r.program(2, 2, 3)
    bits = []
    for _ in range(7):
        bits.append((r.inb(0x61) >> 5) & 1)
        r.advance(1)
    assert bits == [1, 1, 1, 0, 1, 1, 0]


def test_state_roundtrip_continues_identically():
    a = Rig()
    a.program(0, 2, 7)
    a.out(0x61, 0x01)
    a.program(2, 3, 9)
    a.advance(20)
    a.out(0x43, 0x00)                                 # a latch in flight
    st = a.pit.get_state()
    b = Rig()
    b.cpu.icount = a.cpu.icount
    b.pit.set_state(st)
    b.portb.set_state(a.portb.get_state())
    assert b.pit.get_state() == st
    a.log.clear()
    b.log.clear()
    a.advance(50)
    b.advance(50)
    assert a.rises() == b.rises() and len(a.rises()) == 7
    assert a.trace(2, 5) == b.trace(2, 5)
    assert a.inb(0x40) == b.inb(0x40)
    with pytest.raises(ValueError):
        b.pit.set_state(dict(st, version=0))


def test_summary_and_reset_state():
    r = Rig()
    s = r.pit.summary()
    assert s["ch0.mode"].startswith("3") and s["ch0.GATE"] == 1 and s["ch2.GATE"] == 0
    assert s["irq0"] == "-"                          # idle until a count is written
    r.program(0, 3, 65536 & 0xFFFF)
    assert r.pit.summary()["irq0"].startswith("18.2")
    r.program(0, 2, 100)
    assert "NULL" in r.pit.summary()["ch0.flags"]
    r.pit.reset()
    assert r.pit.channels[0].mode == 3 and r.pit.summary()["irq0"] == "-"


def test_non_integer_tick_ratio_edges_are_exact():
    ips = 3_000_000                                   # 2.514... ticks per CLK
    r = Rig(ips=ips)
    r.advance(1234)
    r.program(0, 2, 100)
    e0 = 1234 * PIT_HZ // ips + 1                     # the load edge
    r.log.clear()
    r.advance(3000)
    expect = [-(-(e0 + 100 * k) * ips // PIT_HZ) for k in range(1, 20)]
    assert r.rises() == [t for t in expect if t <= 1234 + 3000]
    # the value read at any tick is the count at that tick's edge
    e = r.cpu.icount * PIT_HZ // ips
    assert r.latch_read(0) == 100 - (e - e0) % 100


def test_looking_does_not_change_what_the_guest_sees():
    """summary()/get_state() must not deliver IRQ 0 edges early (debugger transparency)."""
    a, b = Rig(), Rig()
    for r in (a, b):
        r.program(0, 2, 50)
        r.log.clear()
    # move both past a rise without running the due event, then look at one of them
    a.cpu.icount = b.cpu.icount = 60
    a.pit.summary()
    a.pit.get_state()
    a.portb.summary()
    assert a.log == b.log == []
    a.clock.run_due()
    b.clock.run_due()
    assert a.log == b.log and a.rises() == [60]


def test_states_are_json_serialisable():
    import json
    r = Rig()
    r.program(1, 1, 5)
    r.out(0x43, 0xC2)
    assert json.loads(json.dumps(r.pit.get_state())) == r.pit.get_state()
    assert json.loads(json.dumps(r.portb.get_state())) == r.portb.get_state()


def test_irq0_through_the_pic():
    from aero.devices.pic import PIC
    cpu = FakeCPU()
    clock = Clock(cpu, ips=PIT_HZ)
    bus = IOBus()
    intr = []
    pic = PIC(bus, intr.append)
    irq = IRQLines(pic.set_irq)
    PIT(bus, irq, clock)
    for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE)):
        bus.write(port, 1, v)                          # ICW1 clears the power-on edge
    assert not pic.INTR
    bus.write(0x43, 1, 0x34)                            # mode 2, count 1000
    bus.write(0x40, 1, 1000 & 0xFF)
    bus.write(0x40, 1, 1000 >> 8)
    got = []
    for _ in range(3):
        cpu.icount = clock.next_event()
        clock.run_due()
        assert pic.INTR
        got.append((clock.now(), pic.acknowledge()))
        bus.write(0x20, 1, 0x20)                        # EOI
        assert not pic.INTR
    assert got == [(1001, 0x08), (2001, 0x08), (3001, 0x08)]
