"""ATAPI CD-ROM on the secondary IDE channel driven through the PACKET protocol as a BIOS or
driver does (ATA/ATAPI-6 section 9.8-9.10, SPC-3, MMC-3)."""

import pytest

from aero.devices.atapi import ATAPICDROM
from aero.devices.base import IOBus, IRQLines
from aero.devices.disk import DiskImage
from aero.devices.ide import BusMaster, IDEChannel

B = 0x170
DATA, ERROR, FEAT, COUNT, LBAL, LBAM, LBAH, DEVICE, STATUS, CMD = (
    B, B + 1, B + 1, B + 2, B + 3, B + 4, B + 5, B + 6, B + 7, B + 7)
ALT = DEVCTL = 0x376
BM = 0xC000
CD_SECTORS = 40

_CYCLE = bytes(range(256)) * 9


def cd_pattern(lba):
    start = (lba * 11) & 0xFF
    return lba.to_bytes(4, "big") + _CYCLE[start:start + 2044]


def make_iso(path, sectors=CD_SECTORS):
    path.write_bytes(b"".join(cd_pattern(i) for i in range(sectors)))
    return str(path)


class Rig:
    def __init__(self, tmp_path, media=True):
        self.edges = []
        self.irq = IRQLines(lambda line, level: self.edges.append((line, level)))
        self.path = make_iso(tmp_path / "cd.iso")
        self.image = DiskImage(self.path, sector_size=2048, kind="cdrom") if media else None
        self.cd = ATAPICDROM(self.image)
        self.ch = IDEChannel(1, self.irq, master=self.cd)
        self.bus = IOBus()
        self.ch.register(self.bus)
        self.mem = bytearray(1 << 20)
        self.bm = BusMaster([None, self.ch], self.read_mem, self.write_mem)
        self.bm.map(self.bus, BM)

    def read_mem(self, a, n):
        return bytes(self.mem[a:a + n])

    def write_mem(self, a, data):
        self.mem[a:a + len(data)] = data

    def w(self, p, v, size=1):
        self.bus.write(p, size, v)

    def r(self, p, size=1):
        return self.bus.read(p, size)

    def irq15(self):
        return self.irq.level[15]

    def packet(self, cdb, limit=0xFFFE, dma=False):
        """Issue PACKET and send the 12-byte command packet; returns (data, status, error)
        after the data-in phases and the final status."""
        cdb = bytes(cdb).ljust(12, b"\0")
        self.w(DEVICE, 0xA0)
        self.w(FEAT, 1 if dma else 0)
        self.w(LBAM, limit & 0xFF)
        self.w(LBAH, limit >> 8)
        self.w(CMD, 0xA0)
        assert self.r(ALT) & 0x88 == 0x08, "DRQ for the packet"
        assert self.r(COUNT) & 3 == 1, "CoD=1 IO=0"
        assert not self.irq15(), "no INTRQ before the packet"
        for i in range(0, 12, 2):
            self.w(DATA, cdb[i] | cdb[i + 1] << 8, 2)
        data = b""
        self.blocks = []
        while True:
            if dma and self.r(ALT) & 0x08:
                self.w(BM + 8, 0x09)
                self.w(BM + 8, 0x08)
            assert self.irq15(), "INTRQ for each phase"
            st = self.r(STATUS)
            assert not self.irq15()
            reason = self.r(COUNT) & 3
            if not st & 0x08:
                assert reason == 3, f"final CoD/IO {reason}"
                return data, st, self.r(ERROR)
            assert reason == 2, "data-in: IO=1 CoD=0"
            n = self.r(LBAM) | self.r(LBAH) << 8
            self.blocks.append(n)
            for _ in range((n + 1) // 2):
                data += self.r(DATA, 2).to_bytes(2, "little")
            data = data[:len(data) - (n & 1)]

    def ok(self, cdb, **kw):
        data, st, err = self.packet(cdb, **kw)
        assert st == 0x50 and err == 0, f"status {st:02X} error {err:02X}"
        return data

    def sense(self):
        data = self.ok([0x03, 0, 0, 0, 18, 0])
        return data[2] & 0x0F, data[12], data[13]

    def check(self, cdb):
        data, st, err = self.packet(cdb)
        assert st & 0x01, f"expected CHECK CONDITION, status {st:02X}"
        return err >> 4, self.sense()

    def settle(self):
        """Clear the power-on unit attention."""
        key, _ = self.check([0x00])
        assert key == 6


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    r.settle()
    return r


def test_signature_and_identify(tmp_path):
    rig = Rig(tmp_path)
    assert [rig.r(p) for p in (ERROR, COUNT, LBAL, LBAM, LBAH, STATUS)] == [1, 1, 1, 0x14,
                                                                          0xEB, 0]
    rig.w(LBAM, 0)
    rig.w(CMD, 0xEC)                                  # IDENTIFY DEVICE: aborted, signature
    assert rig.irq15() and rig.r(STATUS) & 0x01 and rig.r(ERROR) & 0x04
    assert (rig.r(LBAM), rig.r(LBAH)) == (0x14, 0xEB)
    rig.w(CMD, 0xA1)                                  # IDENTIFY PACKET DEVICE
    assert rig.irq15() and rig.r(STATUS) == 0x58
    raw = b"".join(rig.r(DATA, 2).to_bytes(2, "little") for _ in range(256))
    w = [int.from_bytes(raw[2 * i:2 * i + 2], "little") for i in range(256)]
    assert w[0] == 0x85C0
    assert b"".join(w[27 + i].to_bytes(2, "big") for i in range(20)).strip() == b"AERO CD-ROM"
    assert w[49] & 0x0200 and sum(raw) % 256 == 0
    assert rig.r(STATUS) == 0x50


def test_device_reset(rig):
    rig.w(LBAM, 0x55)
    rig.edges.clear()
    rig.w(CMD, 0x08)
    assert rig.edges == []
    assert (rig.r(COUNT), rig.r(LBAL), rig.r(LBAM), rig.r(LBAH)) == (1, 1, 0x14, 0xEB)
    assert rig.r(ERROR) == 0x01 and rig.r(STATUS) == 0x00


def test_unit_attention_then_ready(tmp_path):
    rig = Rig(tmp_path)
    assert rig.ok([0x12, 0, 0, 0, 36, 0])[0] == 0x05  # INQUIRY does not report it
    key, sense = rig.check([0x00])
    assert key == 6 and sense == (6, 0x28, 0)
    rig.ok([0x00])
    assert rig.sense() == (0, 0, 0)


def test_request_sense_reports_pending_unit_attention(tmp_path):
    rig = Rig(tmp_path)
    assert rig.sense() == (6, 0x28, 0)
    rig.ok([0x00])


def test_no_medium(tmp_path):
    rig = Rig(tmp_path, media=False)
    key, sense = rig.check([0x00])
    assert key == 2 and sense == (2, 0x3A, 0)
    assert rig.check([0x25])[1] == (2, 0x3A, 0)
    assert rig.check([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0])[1] == (2, 0x3A, 0)
    cfg = rig.ok([0x46, 0, 0, 0, 0, 0, 0, 0, 64, 0])
    assert cfg[6:8] == b"\x00\x00"                    # no current profile


def test_inquiry(rig):
    d = rig.ok([0x12, 0, 0, 0, 36, 0])
    assert len(d) == 36 and d[0] == 0x05 and d[1] == 0x80
    assert d[8:16] == b"AERO    " and d[16:32] == b"CD-ROM          "
    assert rig.ok([0x12, 0, 0, 0, 5, 0]) == d[:5]     # allocation length


def test_read_capacity(rig):
    d = rig.ok([0x25])
    assert d == (CD_SECTORS - 1).to_bytes(4, "big") + (2048).to_bytes(4, "big")


def test_read10_in_byte_count_limited_blocks(rig):
    rig.edges.clear()
    d = rig.ok([0x28, 0, 0, 0, 0, 5, 0, 0, 2, 0], limit=2048)
    assert d == cd_pattern(5) + cd_pattern(6)
    assert rig.blocks == [2048, 2048]
    assert rig.edges.count((15, True)) == 3           # two data blocks and the status
    d = rig.ok([0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0], limit=1001)
    assert rig.blocks == [1000, 1000, 48]             # even, except the last
    assert d == cd_pattern(5)


def test_read12_and_out_of_range(rig):
    d = rig.ok([0xA8, 0, 0, 0, 0, 38, 0, 0, 0, 2, 0, 0])
    assert d == cd_pattern(38) + cd_pattern(39)
    key, sense = rig.check([0x28, 0, 0, 0, 0, 39, 0, 0, 2, 0])
    assert key == 5 and sense == (5, 0x21, 0)
    assert rig.ok([0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == b""    # zero blocks: no data


def test_read_toc(rig):
    d = rig.ok([0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0])
    assert d == bytes([0, 18, 1, 1,
                       0, 0x14, 1, 0, 0, 0, 0, 0,
                       0, 0x14, 0xAA, 0, 0, 0, 0, CD_SECTORS])
    d = rig.ok([0x43, 2, 0, 0, 0, 0, 0, 0, 100, 0])   # MSF
    assert d[8:12] == bytes([0, 0, 2, 0])             # LBA 0 = 00:02:00
    m, s, f = (CD_SECTORS + 150) // 4500, (CD_SECTORS + 150) // 75 % 60, (CD_SECTORS + 150) % 75
    assert d[16:20] == bytes([0, m, s, f])
    d = rig.ok([0x43, 0, 0, 0, 0, 0, 0xAA, 0, 100, 0])  # from the lead-out
    assert d[:4] == bytes([0, 10, 1, 1]) and d[6] == 0xAA
    assert rig.check([0x43, 0, 0, 0, 0, 0, 2, 0, 100, 0])[1] == (5, 0x24, 0)
    d = rig.ok([0x43, 0, 1, 0, 0, 0, 0, 0, 100, 0])   # session information
    assert d == bytes([0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0])
    assert rig.ok([0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0]) == bytes([0, 18, 1, 1])


def test_mode_sense(rig):
    d = rig.ok([0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 255, 0])
    assert int.from_bytes(d[0:2], "big") == len(d) - 2
    assert d[6:8] == b"\0\0"                          # no block descriptors
    assert d[8] == 0x2A and d[9] == 0x14 and len(d) == 30
    assert d[14] & 0x29 == 0x29 and not d[14] & 0x02  # tray, eject, lock; not locked
    rig.ok([0x1E, 0, 0, 0, 1, 0])                     # PREVENT
    assert rig.ok([0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 255, 0])[14] & 0x02
    d = rig.ok([0x5A, 0, 0x01, 0, 0, 0, 0, 0, 255, 0])
    assert d[8:10] == b"\x01\x06"
    d = rig.ok([0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 255, 0])
    assert d[8] == 0x01 and d[16] == 0x2A
    assert rig.check([0x5A, 0, 0x05, 0, 0, 0, 0, 0, 255, 0])[1] == (5, 0x24, 0)
    assert rig.check([0x5A, 0, 0xEA, 0, 0, 0, 0, 0, 255, 0])[1] == (5, 0x39, 0)
    d6 = rig.ok([0x1A, 0, 0x2A, 0, 255, 0])           # MODE SENSE(6)
    assert d6[0] == len(d6) - 1 and d6[4] == 0x2A


def test_get_configuration(rig):
    d = rig.ok([0x46, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    assert int.from_bytes(d[0:4], "big") == len(d) - 4
    assert d[6:8] == b"\x00\x08"                      # current profile: CD-ROM
    assert d[8:10] == b"\x00\x00" and d[12:14] == b"\x00\x08" and d[14] & 1
    codes = []
    i = 8
    while i < len(d):
        codes.append(int.from_bytes(d[i:i + 2], "big"))
        i += 4 + d[i + 3]
    assert codes == [0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001E]
    d = rig.ok([0x46, 2, 0, 0x1E, 0, 0, 0, 0, 64, 0])  # RT=2: one feature
    assert len(d) == 16 and d[8:10] == b"\x00\x1E" and d[10] & 1 and d[11] == 4


def test_eject_load_prevent_and_events(rig):
    ev = rig.ok([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0])
    assert ev == bytes([0, 4, 4, 0x10, 2, 0x02, 0, 0])          # NewMedia, present
    assert rig.ok([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0])[4] == 0  # reported once
    assert rig.check([0x4A, 0, 0, 0, 0x10, 0, 0, 0, 8, 0])[1] == (5, 0x24, 0)  # not polled
    assert rig.ok([0x4A, 1, 0, 0, 0x02, 0, 0, 0, 8, 0]) == bytes([0, 0, 0x80, 0x10])
    rig.ok([0x1E, 0, 0, 0, 1, 0])                     # PREVENT
    assert rig.check([0x1B, 0, 0, 0, 0x02, 0])[1] == (5, 0x53, 0x02)
    assert not rig.cd.eject()                         # the host's eject is refused too
    rig.ok([0x1E, 0, 0, 0, 0, 0])                     # ALLOW
    rig.ok([0x1B, 0, 0, 0, 0x02, 0])                  # eject
    assert rig.ok([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0])[4:6] == bytes([3, 0x01])
    assert rig.check([0x00])[1] == (2, 0x3A, 0)
    rig.ok([0x1B, 0, 0, 0, 0x03, 0])                  # load
    assert rig.ok([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0])[4:6] == bytes([2, 0x02])
    assert rig.check([0x00])[1] == (6, 0x28, 0)       # not ready to ready change
    rig.ok([0x00])


def test_host_media_change_gives_unit_attention(rig, tmp_path):
    rig.cd.eject()
    assert rig.check([0x00])[1] == (2, 0x3A, 0)
    other = DiskImage(make_iso(tmp_path / "b.iso", 4), sector_size=2048, kind="cdrom")
    rig.cd.insert(other)
    assert rig.check([0x25])[1] == (6, 0x28, 0)
    assert rig.ok([0x25])[:4] == (3).to_bytes(4, "big")


def test_unknown_opcode(rig):
    data, st, err = rig.packet([0xBE])
    assert st == 0x41 and err == 0x50                 # sense key ILLEGAL REQUEST << 4
    assert rig.sense() == (5, 0x20, 0)
    assert rig.sense() == (0, 0, 0)                   # reported once


def test_packet_dma(rig):
    prd = bytearray(8)
    prd[0:4] = (0x10000).to_bytes(4, "little")
    prd[4:6] = (4096).to_bytes(2, "little")
    prd[7] = 0x80
    rig.mem[0x800:0x808] = prd
    rig.w(BM + 12, 0x800, 4)
    d = rig.ok([0x28, 0, 0, 0, 0, 9, 0, 0, 2, 0], dma=True)
    assert d == b""
    assert rig.mem[0x10000:0x11000] == cd_pattern(9) + cd_pattern(10)
    assert rig.r(BM + 10) & 0x04                      # secondary channel's interrupt bit


def test_state_round_trip_mid_packet(tmp_path, rig):
    rig.w(LBAM, 0x00)
    rig.w(LBAH, 0x08)
    rig.w(CMD, 0xA0)
    cdb = bytes([0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0, 0, 0])
    for i in range(0, 12, 2):
        rig.w(DATA, cdb[i] | cdb[i + 1] << 8, 2)
    rig.r(STATUS)
    head = b"".join(rig.r(DATA, 2).to_bytes(2, "little") for _ in range(10))
    st = rig.ch.get_state()
    other = Rig(tmp_path)
    other.ch.set_state(st)
    rest = b"".join(other.r(DATA, 2).to_bytes(2, "little") for _ in range(1014))
    assert other.irq15() and other.r(STATUS) == 0x58
    rest += b"".join(other.r(DATA, 2).to_bytes(2, "little") for _ in range(1024))
    assert head + rest == cd_pattern(3) + cd_pattern(4)
    assert other.r(STATUS) == 0x50 and other.r(COUNT) & 3 == 3
    assert "READ(10)" in other.cd.summary()["last packet"]


def test_iso_size_check(tmp_path):
    p = tmp_path / "bad.iso"
    p.write_bytes(bytes(3000))
    with pytest.raises(ValueError, match="2048-byte sectors"):
        DiskImage(str(p), sector_size=2048, kind="cdrom")
    with pytest.raises(ValueError, match="2048-byte"):
        ATAPICDROM(DiskImage(data=bytes(4096)))
