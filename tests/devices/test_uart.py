"""16550A UART: register access, FIFOs, interrupt priority, timing in virtual time, loopback
(PC16550D data sheet)."""

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.uart import UART16550A
from aero.testing.fakecpu import FakeCPU

B = 0x3F8
RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR = B, B + 1, B + 2, B + 3, B + 4, B + 5, B + 6, B + 7
FCR = IIR


class Rig:
    def __init__(self, n=1):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=1_000_000)          # 1 tick = 1 us
        self.edges = []
        self.irq = IRQLines(lambda l, v: self.edges.append((l, v)))
        self.out = bytearray()
        self.u = UART16550A.com(n, self.irq, self.clock, sink=self.out.append)
        self.bus = IOBus()
        self.u.register(self.bus)

    def r(self, p):
        return self.bus.read(p, 1)

    def w(self, p, v):
        self.bus.write(p, 1, v)

    def advance(self, t):
        """Run to now + t the way the machine's loop does: stop at every event on the way."""
        end = self.cpu.icount + t
        while True:
            nxt = self.clock.next_event()
            if nxt is None or nxt > end:
                break
            self.cpu.icount = max(self.cpu.icount, nxt)
            self.clock.run_due()
        self.cpu.icount = end
        self.clock.run_due()

    def setup(self, divisor=12, lcr=0x03):
        self.w(LCR, 0x80)
        self.w(B, divisor & 0xFF)
        self.w(B + 1, divisor >> 8)
        self.w(LCR, lcr)


@pytest.fixture
def rig():
    return Rig()


def test_reset_values(rig):
    assert [rig.r(p) for p in (IER, IIR, LCR, MCR, LSR, MSR)] == [0, 0x01, 0, 0, 0x60, 0xB0]


def test_dlab_and_divisor(rig):
    rig.setup(divisor=0x0180)
    rig.w(LCR, 0x83)
    assert rig.r(B) == 0x80 and rig.r(B + 1) == 0x01
    rig.w(LCR, 0x03)
    rig.w(IER, 0x05)
    assert rig.r(IER) == 0x05
    assert rig.u.divisor == 0x180 and rig.u.baud == 300
    rig.setup(divisor=12)
    assert rig.u.char_ticks() == 1042                     # 10 bits at 9600 baud


def test_scratch(rig):
    rig.w(SCR, 0xA5)
    assert rig.r(SCR) == 0xA5


def test_transmit_timing_and_sink(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(B, ord("A"))
    assert rig.out == b"A"                                # the host sees it at once (QEMU)
    assert rig.r(LSR) == 0x20                             # THR empty, TSR busy
    rig.advance(T - 1)
    assert rig.r(LSR) == 0x20
    rig.advance(1)
    assert rig.r(LSR) == 0x60                             # the guest sees the line rate


def test_non_fifo_holding_register(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(B, ord("A"))
    rig.w(B, ord("B"))
    assert rig.r(LSR) == 0x00
    rig.advance(T)
    assert rig.r(LSR) == 0x20
    rig.advance(T)
    assert rig.out == b"AB" and rig.r(LSR) == 0x60


def test_thr_overrun_loses_nothing_on_the_host_side(rig):
    rig.setup()
    for b in b"XYZ":                                      # no FIFO, no THRE polling
        rig.w(B, b)
    assert rig.out == b"XYZ"                              # as QEMU's backends get it
    assert rig.r(LSR) == 0x00                             # the chip is still busy


def test_fifo_transmit_sixteen_bytes_at_line_rate(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(FCR, 0x07)
    msg = bytes(range(0x41, 0x51)) + b"!"                 # 17 bytes: 1 TSR + 16 FIFO
    for b in msg:
        rig.w(B, b)
    assert rig.out == msg
    for k in range(1, 17):
        rig.advance(T)
        assert rig.r(LSR) & 0x60 == (0x20 if k == 16 else 0x00)
    rig.advance(T)
    assert rig.r(LSR) == 0x60


def test_word_length_and_char_time(rig):
    rig.setup(lcr=0x02)                                   # 7N1: 9 bits
    assert rig.u.char_ticks() == 938
    rig.w(B, 0xFF)
    rig.advance(938)
    assert rig.out == b"\xff"                             # the host gets 8 bits (QEMU)
    rig.setup(lcr=0x0F)                                   # 8 data, parity, 2 stop: 12 bits
    assert rig.u.char_ticks() == 1250


def test_thre_interrupt_and_out2_gating(rig):
    rig.setup()
    rig.w(IER, 0x02)
    assert rig.r(IIR) == 0x02                             # pending at once, cleared by reading
    assert rig.r(IIR) == 0x01
    assert not rig.irq.level[4]
    rig.w(IER, 0x00)
    rig.w(MCR, 0x08)                                      # OUT2
    rig.w(IER, 0x02)
    assert rig.irq.level[4]
    rig.w(B, 0x31)                                        # THR write clears, TSR takes the byte
    assert rig.irq.level[4]                               # ... and THR is empty again
    assert rig.r(IIR) == 0x02
    assert not rig.irq.level[4]
    rig.w(B, 0x32)
    rig.w(B, 0x33)                                        # THR now holds a byte
    assert rig.r(IIR) == 0x01
    rig.advance(rig.u.char_ticks())
    assert rig.r(IIR) == 0x02
    rig.w(MCR, 0x00)
    assert not rig.irq.level[4] and rig.r(IIR) == 0x01


def test_receive_non_fifo_paced_without_overrun(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(MCR, 0x08)
    rig.w(IER, 0x01)
    rig.u.feed(b"hi")
    rig.advance(T - 1)
    assert rig.r(LSR) & 1 == 0
    rig.advance(1)
    assert rig.r(LSR) == 0x61 and rig.r(IIR) == 0x04 and rig.irq.level[4]
    rig.advance(5 * T)                                    # not read: "i" waits, no overrun
    assert rig.r(LSR) == 0x61
    assert rig.r(RBR) == ord("h")
    assert not rig.irq.level[4] and rig.r(IIR) == 0x01
    rig.advance(T)
    assert rig.r(RBR) == ord("i") and rig.r(LSR) == 0x60


def test_fifo_trigger_and_character_timeout(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(MCR, 0x08)
    rig.w(IER, 0x01)
    rig.w(FCR, 0x41)                                      # FIFO on, trigger 4
    assert rig.r(IIR) == 0xC1
    rig.u.feed(b"abc")
    rig.advance(3 * T)
    assert rig.u.rx_count == 3
    rig.advance(4 * T - 1)
    assert rig.r(IIR) == 0xC1 and not rig.irq.level[4]
    rig.advance(1)
    assert rig.r(IIR) == 0xCC and rig.irq.level[4]        # character time-out
    assert rig.r(RBR) == ord("a")                         # reading restarts the timer
    assert rig.r(IIR) == 0xC1 and not rig.irq.level[4]
    rig.advance(4 * T)
    assert rig.r(IIR) == 0xCC
    rig.r(RBR)
    rig.r(RBR)
    rig.u.feed(b"wxyz")
    rig.advance(3 * T)
    assert rig.r(IIR) == 0xC1
    rig.advance(T)
    assert rig.r(IIR) == 0xC4                             # trigger level reached
    assert rig.r(RBR) == ord("w")
    assert rig.r(IIR) == 0xC1


def test_fifo_receive_holds_host_input_when_full(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(FCR, 0xC1)
    rig.u.feed(bytes(range(20)))
    rig.advance(30 * T)
    assert len(rig.u.rx) == 16 and rig.r(LSR) & 0x02 == 0
    got = bytes(rig.r(RBR) for _ in range(16))
    rig.advance(10 * T)
    got += bytes(rig.r(RBR) for _ in range(4))
    assert got == bytes(range(20))


def test_fcr_resets(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(FCR, 0x01)
    rig.u.feed(b"xy")
    rig.advance(2 * T)
    assert rig.r(LSR) & 1
    rig.w(FCR, 0x03)
    assert rig.r(LSR) & 1 == 0
    rig.w(FCR, 0x00)
    assert rig.r(IIR) & 0xC0 == 0


def test_loopback_data_and_modem_lines(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(MCR, 0x10 | 0x0F)                               # LOOP, DTR, RTS, OUT1, OUT2
    assert rig.r(MSR) == 0xF0                             # CTS DSR DCD were already high
    rig.w(MCR, 0x10)
    m = rig.r(MSR)                                        # all four inputs dropped
    assert m == 0x00 | 0x01 | 0x02 | 0x04 | 0x08
    rig.w(MCR, 0x10 | 0x02)                               # RTS -> CTS
    assert rig.r(MSR) == 0x10 | 0x01
    rig.w(MCR, 0x10 | 0x04)                               # OUT1 -> RI (RTS dropped)
    assert rig.r(MSR) == 0x40 | 0x01
    rig.w(MCR, 0x10)                                      # RI trailing edge
    assert rig.r(MSR) == 0x04
    rig.w(MCR, 0x10 | 0x08)
    rig.w(IER, 0x01)
    rig.w(B, 0x55)
    rig.advance(T)
    assert rig.out == b"" and rig.r(LSR) == 0x61 and rig.r(IIR) == 0x04
    assert not rig.irq.level[4]                           # OUT2 pin forced off in loopback
    assert rig.r(RBR) == 0x55


def test_loopback_msr_exact(rig):
    rig.setup()
    rig.w(MCR, 0x10)
    assert rig.r(MSR) == 0x0B                             # CTS DSR DCD fell: DCTS DDSR DDCD
    rig.w(MCR, 0x10 | 0x0F)
    assert rig.r(MSR) == 0xF0 | 0x0B                      # all high; RI rising sets no TERI
    assert rig.r(MSR) == 0xF0


def test_loopback_overrun_and_line_status_priority(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(MCR, 0x10)
    rig.w(IER, 0x05)
    rig.w(B, 1)
    rig.w(B, 2)
    rig.advance(2 * T)
    assert rig.r(IIR) == 0x06                             # OE outranks data available
    assert rig.r(LSR) == 0x63
    assert rig.r(IIR) == 0x04
    assert rig.r(RBR) == 2                                # the newer byte overwrote RBR


def test_host_input_waits_during_loopback(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(MCR, 0x10)
    rig.u.feed(b"q")
    rig.advance(3 * T)
    assert rig.r(LSR) & 1 == 0
    rig.w(MCR, 0x00)
    rig.advance(T)
    assert rig.r(RBR) == ord("q")


def test_modem_status_interrupt(rig):
    rig.w(MCR, 0x08)
    rig.w(IER, 0x08)
    assert rig.r(IIR) == 0x01
    rig.u.set_modem_lines(cts=False)
    assert rig.r(IIR) == 0x00 and rig.irq.level[4]
    assert rig.r(MSR) == 0xA0 | 0x01
    assert rig.r(IIR) == 0x01 and not rig.irq.level[4]
    rig.u.set_modem_lines(ri=True)
    rig.u.set_modem_lines(ri=False)
    assert rig.r(MSR) == 0xA0 | 0x04


def test_com_ports_and_shared_irq():
    r1 = Rig(1)
    r3 = Rig(3)
    assert (r1.u.base, r1.u.irq_line) == (0x3F8, 4)
    assert (r3.u.base, r3.u.irq_line) == (0x3E8, 4)
    c2 = UART16550A.com(2, clock=r1.clock)
    c4 = UART16550A.com(4, clock=r1.clock)
    assert (c2.base, c2.irq_line, c4.base, c4.irq_line) == (0x2F8, 3, 0x2E8, 3)
    # COM3 on the same IRQLines as COM1, idle: it never touches the line
    com3 = UART16550A.com(3, r1.irq, r1.clock)
    com3.register(r1.bus)
    r1.w(MCR, 0x08)
    r1.w(IER, 0x02)
    assert r1.irq.level[4]
    r1.bus.write(0x3EC, 1, 0x00)
    r1.bus.read(0x3EA, 1)
    assert r1.irq.level[4]


def test_state_round_trip_mid_character(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(FCR, 0x01)
    rig.w(B, ord("x"))
    rig.w(B, ord("y"))
    rig.u.feed(b"k")
    rig.advance(T // 2)
    st = rig.u.get_state()
    r2 = Rig()
    r2.cpu.icount = rig.cpu.icount
    r2.u.set_state(st)
    assert rig.out == b"xy"
    for r in (rig, r2):
        r.advance(T - T // 2)
        assert r.r(RBR) == ord("k") and r.r(LSR) & 0x60 == 0x20
        r.advance(T)
        assert r.r(LSR) & 0x60 == 0x60
    assert r2.u.summary()["line"] == "9600 8N1"
    with pytest.raises(ValueError):
        r2.u.set_state({**st, "version": 0})


def test_no_timeout_without_fifo_and_etbei_with_full_thr(rig):
    rig.setup()
    T = rig.u.char_ticks()
    rig.w(IER, 0x01)
    rig.u.feed(b"z")
    rig.advance(10 * T)
    assert rig.r(IIR) == 0x04                             # data available, never 0x0C
    rig.w(IER, 0x00)
    rig.w(B, 1)
    rig.w(B, 2)                                           # THR full
    rig.w(IER, 0x02)
    assert rig.r(IIR) == 0x01
    rig.advance(T)
    assert rig.r(IIR) == 0x02


def test_master_reset_keeps_divisor(rig):
    rig.setup(divisor=6, lcr=0x1B)
    rig.w(MCR, 0x0B)
    rig.w(FCR, 0x07)
    rig.w(IER, 0x0F)
    rig.u.reset()
    assert [rig.r(p) for p in (IER, IIR, LCR, MCR, LSR)] == [0, 0x01, 0, 0, 0x60]
    assert rig.u.divisor == 6
