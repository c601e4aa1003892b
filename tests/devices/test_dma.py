"""8237A DMA pair with PC page registers: programming through ports, transfers into and out of
physical memory, terminal count, autoinitialize, masks, cascade (Intel 8237A data sheet)."""

import pytest

from aero.devices.base import IOBus
from aero.devices.dma import DMA8237
from aero.mem.bus import Bus


class Rig:
    def __init__(self, cascade=True):
        self.mem = Bus(4 << 20)
        self.dma = DMA8237(self.mem.read_bytes, self.mem.write_bytes)
        self.bus = IOBus()
        self.dma.register(self.bus)
        if cascade:
            self.w(0xD6, 0xC0)          # DMA2 channel 4: cascade mode
            self.w(0xD4, 0x00)          # ... unmasked

    def w(self, p, v):
        self.bus.write(p, 1, v)

    def r(self, p):
        return self.bus.read(p, 1)

    def program8(self, ch, addr, count, mode, page):
        self.w(0x0A, 0x04 | ch)                      # mask
        self.w(0x0C, 0)                              # clear flip-flop
        self.w(2 * ch, addr & 0xFF)
        self.w(2 * ch, addr >> 8)
        self.w(2 * ch + 1, count & 0xFF)
        self.w(2 * ch + 1, count >> 8)
        self.w({0: 0x87, 1: 0x83, 2: 0x81, 3: 0x82}[ch], page)
        self.w(0x0B, mode | ch)
        self.w(0x0A, ch)                             # unmask

    def read_addr(self, ch):
        self.w(0x0C, 0)
        return self.r(2 * ch) | self.r(2 * ch) << 8

    def read_count(self, ch):
        self.w(0x0C, 0)
        return self.r(2 * ch + 1) | self.r(2 * ch + 1) << 8


@pytest.fixture
def rig():
    return Rig()


def test_power_on_all_masked(rig):
    d = DMA8237()
    assert not any(d.ready(c) for c in range(8))
    assert rig.r(0x0F) == 0xFF and rig.r(0xDE) == 0xFE     # only channel 4 unmasked


def test_floppy_style_write_to_memory_with_tc(rig):
    rig.program8(2, 0x2000, 511, 0x44, 0x01)         # single mode, write transfer
    data = bytes((i * 7) & 0xFF for i in range(512))
    assert rig.dma.transfer(2, data, "write") == 512
    assert rig.mem.read_bytes(0x12000, 512) == data
    assert rig.read_addr(2) == 0x2200 and rig.read_count(2) == 0xFFFF
    assert rig.r(0x08) == 0x04                       # TC on channel 2
    assert rig.r(0x08) == 0x00                       # cleared by the read
    assert rig.r(0x0F) & 0x04                        # no autoinit: channel masked at TC
    assert rig.dma.transfer(2, data, "write") == 0


def test_stops_at_terminal_count(rig):
    rig.program8(1, 0x0000, 9, 0x44, 0x00)
    assert rig.dma.transfer(1, b"\xAA" * 20, "write") == 10
    assert rig.dma.last_tc
    assert rig.mem.read_bytes(0, 11) == b"\xAA" * 10 + b"\x00"


def test_partial_transfers_continue(rig):
    rig.program8(3, 0x0100, 7, 0x44, 0x00)
    assert rig.dma.transfer(3, b"abc", "write") == 3
    assert not rig.dma.last_tc and rig.dma.remaining(3) == 5
    assert rig.r(0x08) & 0x08 == 0
    assert rig.dma.transfer(3, b"defgh", "write") == 5
    assert rig.mem.read_bytes(0x100, 8) == b"abcdefgh"
    assert rig.r(0x08) & 0x08


def test_read_from_memory(rig):
    rig.mem.write_bytes(0x30000, b"hello, dma")
    rig.program8(2, 0x0000, 9, 0x48, 0x03)           # read transfer
    assert rig.dma.transfer(2, 100, "read") == b"hello, dma"
    rig.program8(2, 0x0002, 3, 0x48, 0x03)
    buf = bytearray(4)
    assert rig.dma.transfer(2, buf, "read") == 4 and buf == b"llo,"


def test_autoinit_reloads_and_stays_unmasked(rig):
    rig.program8(2, 0x0400, 3, 0x54, 0x00)           # autoinit write
    assert rig.dma.transfer(2, b"1234", "write") == 4
    assert rig.read_addr(2) == 0x0400 and rig.read_count(2) == 3
    assert rig.r(0x0F) & 0x04 == 0
    assert rig.dma.transfer(2, b"56", "write") == 2
    assert rig.mem.read_bytes(0x400, 4) == b"5634"
    assert rig.r(0x08) & 0x04


def test_decrement_mode(rig):
    rig.program8(2, 0x0103, 3, 0x64, 0x00)           # decrement, write
    rig.dma.transfer(2, b"ABCD", "write")
    assert rig.mem.read_bytes(0x100, 4) == b"DCBA"
    assert rig.read_addr(2) == 0x00FF


def test_address_wraps_inside_the_page(rig):
    rig.program8(2, 0xFFFE, 3, 0x44, 0x01)
    rig.dma.transfer(2, b"wxyz", "write")
    assert rig.mem.read_bytes(0x1FFFE, 2) == b"wx"
    assert rig.mem.read_bytes(0x10000, 2) == b"yz"
    assert rig.mem.read_bytes(0x20000, 2) == b"\x00\x00"


def test_verify_and_mode_mismatch(rig):
    rig.program8(2, 0x0000, 7, 0x40, 0x00)           # verify
    assert rig.dma.transfer(2, b"\x11" * 8, "write") == 8
    assert rig.mem.read_bytes(0, 8) == bytes(8) and rig.read_count(2) == 0xFFFF
    rig.program8(2, 0x0000, 7, 0x48, 0x00)           # programmed read, device writes
    assert rig.dma.transfer(2, b"\x22" * 8, "write") == 8
    assert rig.mem.read_bytes(0, 8) == bytes(8)


def test_sixteen_bit_channel(rig):
    w = rig.w
    w(0xD4, 0x05)                                    # mask ch5
    w(0xD8, 0)                                       # clear flip-flop
    w(0xC4, 0x00)
    w(0xC4, 0x80)                                    # word address 0x8000
    w(0xC6, 0x03)
    w(0xC6, 0x00)                                    # 4 words
    w(0x8B, 0x03)                                    # page (bit 0 ignored)
    w(0xD6, 0x45)                                    # single, write, channel 5
    w(0xD4, 0x01)                                    # unmask ch5
    assert rig.dma.address(5) == (0x02 << 16) | (0x8000 << 1) == 0x30000
    assert rig.dma.transfer(5, bytes(range(10)), "write") == 8
    assert rig.mem.read_bytes(0x30000, 9) == bytes(range(8)) + b"\x00"
    w(0xD8, 0)
    assert rig.r(0xC4) | rig.r(0xC4) << 8 == 0x8004
    assert rig.r(0xD0) == 0x02                       # DMA2 status: TC channel 5
    w(0xD9, 0)                                       # odd ports alias the even ones
    assert rig.r(0xC5) | rig.r(0xC5) << 8 == 0x8004


def test_dma1_needs_cascade_channel_unmasked():
    r = Rig(cascade=False)
    r.program8(2, 0, 15, 0x44, 0)
    assert not r.dma.ready(2) and r.dma.transfer(2, b"x" * 4, "write") == 0
    r.w(0xD4, 0x00)
    assert r.dma.transfer(2, b"x" * 4, "write") == 4


def test_cascade_mode_and_disable(rig):
    rig.program8(2, 0, 15, 0xC4, 0)                  # cascade mode: no transfers
    assert rig.dma.transfer(2, b"x", "write") == 0
    rig.program8(2, 0, 15, 0x44, 0)
    rig.w(0x08, 0x04)                                # command: controller disable
    assert rig.dma.transfer(2, b"x", "write") == 0
    rig.w(0x08, 0x00)
    assert rig.dma.transfer(2, b"x", "write") == 1


def test_flip_flop_and_registers(rig):
    rig.w(0x0C, 0)
    rig.w(0x00, 0x34)
    rig.w(0x00, 0x12)
    rig.w(0x0C, 0)
    assert rig.r(0x00) == 0x34 and rig.r(0x00) == 0x12
    assert rig.r(0x00) == 0x34                       # toggles on every access
    rig.w(0x0C, 0)
    rig.w(0x0F, 0x0A)
    assert rig.r(0x0F) == 0xFA
    rig.w(0x0E, 0)
    assert rig.r(0x0F) == 0xF0
    rig.w(0x0D, 0)                                   # master clear
    assert rig.r(0x0F) == 0xFF


def test_status_request_bits(rig):
    rig.dma.set_dreq(2, True)
    rig.w(0x09, 0x05)                                # software request, channel 1
    assert rig.r(0x08) == 0x40 | 0x20
    rig.w(0x09, 0x01)
    rig.dma.set_dreq(2, False)
    assert rig.r(0x08) == 0x00
    rig.dma.set_dreq(6, True)
    assert rig.r(0xD0) == 0x40


def test_page_registers_and_port_80_unclaimed(rig):
    for p in range(0x81, 0x90):
        rig.w(p, p ^ 0x5A)
    assert [rig.r(p) for p in range(0x81, 0x90)] == [p ^ 0x5A for p in range(0x81, 0x90)]
    assert rig.dma.page(2) == 0x81 ^ 0x5A and rig.dma.page(7) == 0x8A ^ 0x5A
    assert 0x80 not in rig.bus.owner


def test_state_round_trip(rig):
    rig.program8(2, 0x0500, 99, 0x54, 0x02)
    rig.dma.transfer(2, b"q" * 10, "write")
    st = rig.dma.get_state()
    r2 = Rig(cascade=False)
    r2.dma.set_state(st)
    assert r2.dma.transfer(2, b"r" * 200, "write") == 90
    assert r2.mem.read_bytes(0x20500 + 10, 90) == b"r" * 90
    assert r2.read_addr(2) == 0x0500 and r2.r(0x08) & 0x04
    assert "ch2" in r2.dma.summary()
    with pytest.raises(ValueError):
        r2.dma.set_state({**st, "version": 2})
