"""Port 0x92, POST codes, debug console and firmware log, isa-debug-exit, reset control."""

import pytest

from aero.devices.base import IOBus
from aero.devices.sysports import (DebugCon, DebugExit, FirmwareLog, Port92, PostCode,
                                   ResetControl)


@pytest.fixture
def bus():
    return IOBus()


def test_port92_a20_and_fast_reset(bus):
    a20, resets = [], []
    p = Port92(a20.append, lambda: resets.append(1))
    p.register(bus)
    assert bus.read(0x92, 1) == 0x00
    bus.write(0x92, 1, 0x02)
    assert a20 == [True] and bus.read(0x92, 1) == 0x02 and not resets
    bus.write(0x92, 1, 0x03)                     # 0 -> 1 on bit 0: reset
    assert resets == [1]
    bus.write(0x92, 1, 0x03)                     # no new edge
    assert resets == [1]
    bus.write(0x92, 1, 0x00)
    assert a20[-1] is False
    bus.write(0x92, 1, 0x01)
    assert resets == [1, 1] and p.resets == 2
    p.reset()
    assert bus.read(0x92, 1) == 0


def test_port92_reads_live_a20(bus):
    live = {"a20": True}
    p = Port92(a20_state=lambda: live["a20"])
    p.register(bus)
    assert bus.read(0x92, 1) == 0x02
    live["a20"] = False
    assert bus.read(0x92, 1) == 0x00


def test_post_codes(bus):
    seen = []
    p = PostCode(seen.append, history=4)
    p.register(bus)
    assert bus.read(0x80, 1) == 0xFF
    for v in (0x01, 0x02, 0x03, 0x04, 0x55):
        bus.write(0x80, 1, v)
    assert p.last == 0x55 and bus.read(0x80, 1) == 0x55
    assert p.history == [0x02, 0x03, 0x04, 0x55] and seen == [1, 2, 3, 4, 0x55]
    st = p.get_state()
    q = PostCode()
    q.set_state(st)
    assert q.last == 0x55 and q.summary()["last"] == "55"


def test_debugcon_and_firmware_log(bus):
    out_e9, out_402 = bytearray(), bytearray()
    d = DebugCon(out_e9.append)
    f = FirmwareLog(out_402.append)
    d.register(bus)
    f.register(bus)
    assert bus.read(0xE9, 1) == 0xE9 and bus.read(0x402, 1) == 0xE9
    for c in b"hi\n":
        bus.write(0xE9, 1, c)
    for c in b"Booting from Floppy...\n":
        bus.write(0x402, 1, c)
    assert out_e9 == b"hi\n" and out_402 == b"Booting from Floppy...\n"
    assert f.count == 23 and "Booting" in f.summary()["last line"]
    g = FirmwareLog()
    g.set_state(f.get_state())
    assert g.tail == bytearray(b"Booting from Floppy...\n")


def test_debug_exit(bus):
    codes = []
    e = DebugExit(codes.append)
    e.register(bus)
    bus.write(0x501, 1, 0x00)
    bus.write(0x501, 1, 0x10)
    bus.write(0x501, 2, 0x0102)
    bus.write(0x501, 4, 0x7)
    assert codes == [1, 0x21, 0x205, 0x0F]
    assert e.exit_status == 0x0F
    assert bus.read(0x501, 1) == 0xFF            # write-only


def test_reset_control(bus):
    kinds = []
    r = ResetControl(kinds.append)
    r.register(bus)
    bus.write(0xCF9, 1, 0x02)                    # select hard reset, no reset yet
    assert kinds == [] and bus.read(0xCF9, 1) == 0x02
    bus.write(0xCF9, 1, 0x06)
    assert kinds == [True]
    bus.write(0xCF9, 1, 0x04)
    assert kinds == [True, False] and r.last_kind == "soft"
    bus.write(0xCF9, 1, 0x0E)
    assert kinds == [True, False, True] and bus.read(0xCF9, 1) == 0x0A
    st = r.get_state()
    r2 = ResetControl()
    r2.set_state(st)
    assert r2.resets == 3
    with pytest.raises(ValueError):
        r2.set_state({**st, "version": 7})
