"""Virtual clock, port I/O bus and IRQ lines."""

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.testing.fakecpu import FakeCPU


def test_clock_converts_and_orders_events():
    cpu = FakeCPU()
    clk = Clock(cpu, ips=1_000_000)
    assert clk.ticks_for_ns(1_000_000) == 1000          # 1 ms at 1 MIPS
    assert clk.ticks_for_ns(1) == 1                     # rounded up, never 0
    fired = []
    clk.schedule(50, lambda: fired.append("b"))
    clk.schedule(10, lambda: fired.append("a"))
    clk.schedule(50, lambda: fired.append("c"))          # same tick: scheduling order
    gone = clk.schedule(20, lambda: fired.append("x"))
    gone.cancel()
    assert clk.next_event() == 10
    cpu.icount = 49
    clk.run_due()
    assert fired == ["a"]
    cpu.icount = 40
    cpu.idle_time = 10                                   # idle time counts as time
    clk.run_due()
    assert fired == ["a", "b", "c"]
    assert clk.next_event() is None
    assert clk.ns() == 50_000


def test_iobus_unclaimed_and_split_accesses():
    bus = IOBus()
    regs = {}
    bus.register(0x70, 2, object(), read=lambda p, s: regs.get(p, 0),
                 write=lambda p, s, v: regs.__setitem__(p, v))
    assert bus.read(0x1234, 1) == 0xFF
    assert bus.read(0x1234, 4) == 0xFFFFFFFF
    bus.write(0x70, 2, 0xBBAA)                           # split into bytes
    assert regs == {0x70: 0xAA, 0x71: 0xBB}
    assert bus.read(0x70, 2) == 0xBBAA
    assert bus.read(0x71, 2) == 0xFFBB                   # 0x72 unclaimed
    try:
        bus.register(0x71, 1, object(), read=lambda p, s: 0)
    except ValueError:
        pass
    else:
        raise AssertionError("double claim accepted")


def test_irq_lines_report_changes_only():
    seen = []
    lines = IRQLines(lambda n, lvl: seen.append((n, lvl)))
    lines.set(4, True)
    lines.set(4, True)
    lines.pulse(0)
    lines.set(4, False)
    assert seen == [(4, True), (0, True), (0, False), (4, False)]
