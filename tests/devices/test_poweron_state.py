"""No interrupt before the firmware programs the 8259A pair and the 8254 (issue 10, item 1).

The datasheets leave both chips undefined until they are initialised (8259A: until ICW1-ICW4;
8254: a counter until a count is written after its control word).  Aero powers on with every
PIC request masked (IMR = FFh, as Bochs) and every PIT counter idle with OUT high (Bochs's mode 4
never pulses either), so a ROM that sets EFLAGS.IF without programming them gets nothing -- not
a timer tick through vector 0, as a PIC unmasked with vector base 0 and a PIT ticking from reset
(QEMU's choice) would give.  Once programmed, the chips behave as before.
"""

from __future__ import annotations

import pytest

from aero.build import build_machine
from aero.clock import Clock
from aero.config import MachineConfig
from aero.devices.base import IOBus, IRQLines
from aero.devices.pic import PIC
from aero.devices.pit import PIT, PIT_HZ
from aero.testing.fakecpu import FakeCPU


# -- the chips on their own ----------------------------------------------------------------------
def test_pic_powers_on_masked_and_icw1_unmasks():
    bus = IOBus()
    intr = []
    pic = PIC(bus, intr.append)
    irq = IRQLines(pic.set_irq)
    assert pic.master.IMR == pic.slave.IMR == 0xFF
    assert bus.read(0x21, 1) == 0xFF and bus.read(0xA1, 1) == 0xFF
    for line in (0, 1, 8, 14):
        irq.set(line, True)
    assert not pic.INTR and intr == []
    for line in (0, 1, 8, 14):
        irq.set(line, False)
    # ICW1-ICW4 as a BIOS writes them: ICW1 clears IMR (8259A datasheet, "Initialization
    # Command Words", b.), so the initialised PIC delivers as it always did
    for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
                    (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01)):
        bus.write(port, 1, v)
    assert pic.master.IMR == pic.slave.IMR == 0
    irq.set(0, True)
    assert pic.INTR and pic.acknowledge() == 0x08


def test_pic_hardware_reset_masks_again():
    bus = IOBus()
    pic = PIC(bus, None)
    irq = IRQLines(pic.set_irq)
    bus.write(0x20, 1, 0x13)                          # ICW1 single, ICW4
    bus.write(0x21, 1, 0x20)
    bus.write(0x21, 1, 0x01)
    assert pic.master.IMR == 0
    pic.reset()
    assert pic.master.IMR == pic.slave.IMR == 0xFF and pic.master.vector_base == 0
    irq.set(3, True)
    assert not pic.INTR


class PitRig:
    def __init__(self):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=PIT_HZ)      # one tick per PIT CLK
        self.levels = []
        self.irq = IRQLines(lambda line, level: self.levels.append((self.clock.now(), level)))
        self.bus = IOBus()
        self.pit = PIT(self.bus, self.irq, self.clock)
        self.levels.clear()

    def advance(self, n):
        target = self.cpu.icount + n
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > target:
                break
            self.cpu.icount = max(self.cpu.icount, ne)
            self.clock.run_due()
        self.cpu.icount = target

    def rises(self):
        return [t for t, lv in self.levels if lv]


def test_pit_counters_idle_until_a_count_is_written():
    r = PitRig()
    assert r.clock.next_event() is None               # nothing scheduled: no IRQ 0 to come
    assert r.irq.level[0]                             # OUT 0 high, steady
    r.advance(10 * 65536)                             # ten 18.2 Hz periods of virtual time
    assert r.rises() == []
    assert r.pit.frequency(0) is None
    s = r.pit.summary()
    assert "idle" in s["ch0.flags"] and s["irq0"] == "-" and s["irq0_edges"] == 0
    # reading an idle counter: its power-on CE, LSB then MSB (the access mode it powers on in)
    assert (r.bus.read(0x40, 1), r.bus.read(0x40, 1)) == (0, 0)
    # channel 2's GATE (port 61h bit 0 on a PC) does not start a counter that has no count
    r.pit.set_gate(2, True)
    assert r.pit.channels[2].running is False and r.pit.out(2)


def test_pit_counts_once_programmed_and_reset_idles_it_again():
    r = PitRig()
    r.advance(1000)
    r.bus.write(0x43, 1, 0x34)                        # channel 0, LSB/MSB, mode 2
    r.bus.write(0x40, 1, 100)
    r.bus.write(0x40, 1, 0)
    r.advance(1000)
    # the count is loaded on the next CLK (edge 1001); OUT rises after each period of 100
    assert r.rises() == [1001 + 100 * k for k in range(1, 10)]
    assert r.pit.frequency(0) == pytest.approx(PIT_HZ / 100)
    # a count written with the power-on control (mode 3, LSB/MSB) also starts a counter
    r.bus.write(0x41, 1, 0x10)
    r.bus.write(0x41, 1, 0x00)
    assert r.pit.channels[1].running
    r.pit.reset()
    n = len(r.rises())
    r.advance(100_000)
    assert len(r.rises()) == n and r.clock.next_event() is None


# -- a ROM started at the reset vector --------------------------------------------------------
PIC_INIT = bytes([
    0xB0, 0x11, 0xE6, 0x20, 0xE6, 0xA0,               # ICW1: edge, cascade, ICW4
    0xB0, 0x08, 0xE6, 0x21,                           # ICW2: master 08h-0Fh
    0xB0, 0x70, 0xE6, 0xA1,                           #       slave 70h-77h
    0xB0, 0x04, 0xE6, 0x21,                           # ICW3
    0xB0, 0x02, 0xE6, 0xA1,
    0xB0, 0x01, 0xE6, 0x21, 0xE6, 0xA1,               # ICW4: 8086 mode
    0xB0, 0xFE, 0xE6, 0x21,                           # OCW1: IRQ 0 only
    0xB0, 0xFF, 0xE6, 0xA1,
])
PIT_INIT = bytes([
    0xB0, 0x34, 0xE6, 0x43,                           # channel 0, LSB/MSB, mode 2
    0xB0, 0xA9, 0xE6, 0x40, 0xB0, 0x04, 0xE6, 0x40,   # count 04A9h = 1193: 1 kHz
])


def rom(setup: bytes) -> bytes:
    """A 64 KiB ROM: every IVT vector -> a handler that writes 'I' to port E9h and exits
    through isa-debug-exit with 11h; ``setup``; then STI and HLT forever."""
    code = bytearray([
        0xFA,                                         # cli
        0x31, 0xC0,                                   # xor ax, ax
        0x8E, 0xD8, 0x8E, 0xD0, 0x8E, 0xC0,           # mov ds/ss/es, ax
        0xBC, 0x00, 0x70,                             # mov sp, 7000h
        0x31, 0xFF,                                   # xor di, di
        0xB9, 0x00, 0x01,                             # mov cx, 256
        0xB8, 0x00, 0x00,                             # .fill: mov ax, handler (patched)
        0xAB,                                         # stosw
        0xB8, 0x00, 0xF0,                             # mov ax, F000h
        0xAB,                                         # stosw
        0xE2, 0xF6,                                   # loop .fill
    ])
    patch = 18
    code += setup
    code += bytes([0xFB, 0xF4, 0xEB, 0xFD])           # sti; .h: hlt; jmp .h
    handler = len(code)
    code[patch:patch + 2] = handler.to_bytes(2, "little")
    code += bytes([0xB0, 0x49, 0xE6, 0xE9,            # mov al, 'I'; out E9h, al
                   0xBA, 0x01, 0x05, 0xB0, 0x11, 0xEE,  # mov dx, 501h; mov al, 11h; out dx, al
                   0xF4])                             # hlt
    image = bytearray(b"\xFF" * 0x10000)
    image[:len(code)] = code
    image[0xFFF0:0xFFF5] = bytes([0xEA, 0x00, 0x00, 0x00, 0xF0])   # jmp F000:0000
    return bytes(image)


SECONDS = 5                                           # of virtual time


def boot(setup: bytes):
    out = bytearray()
    m = build_machine(MachineConfig(bios=rom(setup), debugcon=out.append, serial=None))
    seen = []
    m.hooks.interrupt(lambda m, ev: seen.append((ev.vector, ev.kind)))
    # stop after SECONDS of virtual time (halted time is skipped, so this is quick)
    m.clock.schedule(SECONDS * m.clock.ips, m.request_stop, "test.stop")
    r = m.run(max_instructions=2_000_000, timeout=120)
    return m, r, seen, bytes(out)


@pytest.mark.parametrize("setup", [b"", PIT_INIT, PIC_INIT],
                         ids=["nothing-programmed", "pit-only", "pic-only"])
def test_sti_without_programming_gets_no_interrupt(setup):
    m, r, seen, out = boot(setup)
    assert r.status == "stop", r                      # halted with IF set, SECONDS later
    assert m.clock.ns() >= SECONDS * 1_000_000_000
    assert m.cpu.halted and m.cpu.flags & 0x200
    assert seen == [] and out == b""


def test_after_programming_the_timer_interrupt_arrives_through_irq0():
    m, r, seen, out = boot(PIC_INIT + PIT_INIT)
    assert (r.status, r.exit_code) == ("debug-exit", (0x11 << 1) | 1)
    assert out == b"I"
    assert seen == [(0x08, "hw")]
    assert m.clock.ns() >= 1_000_000 - 1_000           # one 1 kHz period after the STI
