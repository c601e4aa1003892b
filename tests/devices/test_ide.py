"""ATA/IDE channels and hard disks driven through the task-file ports as a BIOS or driver does
(ATA/ATAPI-6), and the PIIX bus-master DMA engine (82371SB data sheet section 2.7)."""

import pytest

from aero.devices.atapi import ATAPICDROM
from aero.devices.base import IOBus, IRQLines
from aero.devices.disk import DiskImage
from aero.devices.ide import ATADisk, BusMaster, IDEChannel, prd_entries

DATA, ERROR, FEAT, COUNT, LBAL, LBAM, LBAH, DEVICE, STATUS, CMD = (
    0x1F0, 0x1F1, 0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5, 0x1F6, 0x1F7, 0x1F7)
ALT = DEVCTL = 0x3F6
BM = 0xC000
SECTORS = 2016 + 16            # 2 cylinders of 16 x 63, plus a few

_CYCLE = bytes(range(256)) * 3


def sector_pattern(lba: int) -> bytes:
    start = (lba * 5) & 0xFF
    return lba.to_bytes(4, "little") + _CYCLE[start:start + 508]


def make_disk(path, sectors=SECTORS):
    path.write_bytes(b"".join(sector_pattern(i) for i in range(sectors)))
    return str(path)


class Rig:
    def __init__(self, tmp_path, writable=False, slave=False, cdrom=True):
        self.edges = []
        self.irq = IRQLines(lambda line, level: self.edges.append((line, level)))
        self.path = make_disk(tmp_path / "hd.img")
        self.image = DiskImage(self.path, writable=writable)
        self.disk = ATADisk(self.image)
        self.slave = None
        if slave:
            self.slave = ATADisk(DiskImage(data=bytes(512 * 4096)), serial="SLAVE")
        self.ch0 = IDEChannel(0, self.irq, master=self.disk, slave=self.slave)
        self.cd = ATAPICDROM(None) if cdrom else None
        self.ch1 = IDEChannel(1, self.irq, master=self.cd)
        self.bus = IOBus()
        self.ch0.register(self.bus)
        self.ch1.register(self.bus)
        self.mem = bytearray(1 << 20)
        self.bm = BusMaster([self.ch0, self.ch1], self.read_mem, self.write_mem)
        self.bm.map(self.bus, BM)

    def read_mem(self, a, n):
        return bytes(self.mem[a:a + n])

    def write_mem(self, a, data):
        self.mem[a:a + len(data)] = data

    def w(self, p, v, size=1):
        self.bus.write(p, size, v)

    def r(self, p, size=1):
        return self.bus.read(p, size)

    def irq14(self):
        return self.irq.level[14]

    def lba28(self, lba, count, cmd, dev=0):
        self.w(DEVICE, 0xE0 | (dev << 4) | (lba >> 24))
        self.w(COUNT, count & 0xFF)
        self.w(LBAL, lba & 0xFF)
        self.w(LBAM, (lba >> 8) & 0xFF)
        self.w(LBAH, (lba >> 16) & 0xFF)
        self.w(CMD, cmd)

    def lba48(self, lba, count, cmd):
        self.w(DEVICE, 0x40)
        self.w(COUNT, count >> 8)
        self.w(LBAL, (lba >> 24) & 0xFF)
        self.w(LBAM, (lba >> 32) & 0xFF)
        self.w(LBAH, (lba >> 40) & 0xFF)
        self.w(COUNT, count & 0xFF)
        self.w(LBAL, lba & 0xFF)
        self.w(LBAM, (lba >> 8) & 0xFF)
        self.w(LBAH, (lba >> 16) & 0xFF)
        self.w(CMD, cmd)

    def read_block(self, words=256):
        return b"".join(self.r(DATA, 2).to_bytes(2, "little") for _ in range(words))

    def write_block(self, data):
        for i in range(0, len(data), 2):
            self.w(DATA, int.from_bytes(data[i:i + 2], "little"), 2)

    def pio_read(self, sectors, per_irq=1):
        """The PIO data-in protocol: wait for INTRQ, read status, read the block."""
        out = b""
        while sectors:
            assert self.irq14(), "INTRQ before each data block"
            st = self.r(STATUS)
            assert st == 0x58, f"status {st:02X}"
            assert not self.irq14()
            n = min(per_irq, sectors)
            out += self.read_block(256 * n)
            sectors -= n
        assert self.r(STATUS) == 0x50
        return out

    def identify(self):
        self.w(DEVICE, 0xA0)
        self.w(CMD, 0xEC)
        assert self.irq14() and self.r(STATUS) == 0x58
        raw = self.read_block()
        return raw, [int.from_bytes(raw[2 * i:2 * i + 2], "little") for i in range(256)]


def ata_text(words, first, n):
    return b"".join(words[first + i].to_bytes(2, "big") for i in range(n)).decode().strip()


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


# -- registers, reset ---------------------------------------------------------------------------
def test_power_on_signature_and_status(rig):
    assert [rig.r(p) for p in (ERROR, COUNT, LBAL, LBAM, LBAH)] == [1, 1, 1, 0, 0]
    assert rig.r(STATUS) == 0x50 and rig.r(ALT) == 0x50
    assert [rig.r(0x170 + i) for i in (1, 2, 3, 4, 5)] == [1, 1, 1, 0x14, 0xEB]
    assert rig.r(0x177) == 0x00                       # ATAPI: DRDY not set after reset


def test_absent_slave_and_empty_channel(tmp_path):
    rig = Rig(tmp_path, cdrom=False)
    rig.w(DEVICE, 0xB0)
    assert rig.r(STATUS) == 0 and rig.r(ALT) == 0 and rig.r(COUNT) == 0
    rig.w(CMD, 0xEC)                                  # nobody answers
    assert rig.r(STATUS) == 0 and not rig.irq14()
    rig.w(DEVICE, 0xA0)
    assert rig.r(STATUS) == 0x50
    assert [rig.r(0x170 + i) for i in range(1, 8)] == [0] * 7      # no devices at all


def test_task_file_latched_by_both_devices_and_hob(tmp_path):
    rig = Rig(tmp_path, slave=True)
    rig.w(COUNT, 0x12)
    rig.w(COUNT, 0x34)
    rig.w(LBAL, 0x56)
    rig.w(DEVICE, 0xB0)
    assert rig.r(COUNT) == 0x34 and rig.r(LBAL) == 0x56 and rig.r(DEVICE) == 0xB0
    rig.w(DEVCTL, 0x80)                               # HOB: the previous values
    assert rig.r(COUNT) == 0x12 and rig.r(LBAL) == 0x01
    rig.w(LBAM, 0x77)                                 # any command block write clears HOB
    assert rig.r(COUNT) == 0x34


def test_srst_signatures(rig):
    rig.lba28(5, 1, 0x20)
    rig.w(DEVCTL, 0x04)
    assert rig.r(ALT) & 0x80                          # BSY while SRST is held
    rig.w(CMD, 0xEC)                                  # ignored while BSY
    rig.w(DEVCTL, 0x00)
    assert rig.r(STATUS) == 0x50 and rig.r(ERROR) == 0x01
    assert [rig.r(p) for p in (COUNT, LBAL, LBAM, LBAH)] == [1, 1, 0, 0]
    assert rig.r(DATA, 2) == 0                        # the read was abandoned
    rig.w(0x376, 0x04)
    rig.w(0x376, 0x00)
    assert [rig.r(0x170 + i) for i in (1, 2, 3, 4, 5, 7)] == [1, 1, 1, 0x14, 0xEB, 0x00]


def test_execute_device_diagnostic(tmp_path):
    rig = Rig(tmp_path, slave=True)
    rig.w(DEVICE, 0xB0)
    rig.w(CMD, 0x90)
    assert rig.r(DEVICE) & 0x10 == 0                  # device 0 reports
    assert rig.irq14() and rig.r(STATUS) == 0x50
    assert rig.r(ERROR) == 0x01 and rig.r(COUNT) == 1 and rig.r(LBAL) == 1


# -- IDENTIFY -------------------------------------------------------------------------------------
def test_identify_device(rig):
    rig.edges.clear()
    raw, w = rig.identify()
    assert rig.edges == [(14, True), (14, False)]     # raised, cleared by the status read
    assert ata_text(w, 27, 20) == "AERO HARDDISK"
    assert ata_text(w, 10, 10) == "AERO-HD-0001" and ata_text(w, 23, 4) == "1.0"
    assert w[0] == 0x0040
    assert (w[1], w[3], w[6]) == (2, 16, 63)          # min(16383, sectors / (16*63)) = 2
    assert (w[54], w[55], w[56]) == (2, 16, 63)
    assert w[57] | w[58] << 16 == 2 * 16 * 63
    assert w[60] | w[61] << 16 == SECTORS
    assert w[100] | w[101] << 16 | w[102] << 32 | w[103] << 48 == SECTORS
    assert w[83] & 0x0400 and w[86] & 0x0400 and w[83] & 0x4000
    assert w[47] == 0x8010 and w[59] == 0
    assert w[49] & 0x0300 == 0x0300 and w[53] & 7 == 7
    assert w[63] & 7 == 7 and w[88] & 0x3F == 0x3F
    assert w[255] & 0xFF == 0xA5 and sum(raw) % 256 == 0
    assert rig.r(STATUS) == 0x50 and not rig.r(ALT) & 0x08


def test_identify_reset_result_word_93(tmp_path):
    rig = Rig(tmp_path, slave=True)
    _, w = rig.identify()
    assert w[93] == 0x603B                            # device 1 seen (PDIAG-, DASP-)
    rig.w(DEVICE, 0xB0)
    rig.w(CMD, 0xEC)
    rig.r(STATUS)
    w1 = [rig.r(DATA, 2) for _ in range(256)]
    assert w1[93] == 0x6B00 and w1[10] != w[10]      # the slave's own serial
    alone = Rig(tmp_path / ".." / tmp_path.name)
    assert alone.identify()[1][93] & 0xDF61 == 0x4001  # SeaBIOS still probes device 1


def test_big_sparse_disk_geometry_and_lba48(tmp_path):
    """A 200 GiB sparse image: CHS words saturate at 16383/16/63, LBA28 capacity at
    0FFFFFFFh, and LBA48 reaches sectors beyond 2^28."""
    path = tmp_path / "big.img"
    sectors = 200 * (1 << 30) // 512
    try:
        with open(path, "wb") as f:
            f.truncate(sectors * 512)
    except OSError:
        pytest.skip("no sparse files here")
    disk = ATADisk(DiskImage(str(path)))
    assert disk.geometry == (16383, 16, 63)
    ch = IDEChannel(0, None, master=disk)
    bus = IOBus()
    ch.register(bus)
    bus.write(CMD, 1, 0xEC)
    bus.read(STATUS, 1)
    w = [bus.read(DATA, 2) for _ in range(256)]
    assert (w[1], w[3], w[6]) == (16383, 16, 63)
    assert w[57] | w[58] << 16 == 16383 * 16 * 63
    assert w[60] | w[61] << 16 == 0x0FFFFFFF
    assert w[100] | w[101] << 16 | w[102] << 32 == sectors
    lba = (1 << 28) + 5
    disk.image.write(lba, b"\x42" * 512)
    rig = Rig.__new__(Rig)
    rig.bus = bus
    rig.lba48(lba, 1, 0x24)
    assert bus.read(STATUS, 1) == 0x58
    assert b"".join(bus.read(DATA, 2).to_bytes(2, "little") for _ in range(256)) == \
        b"\x42" * 512
    rig.lba28(lba & 0x0FFFFFFF, 1, 0x20)             # LBA28 wraps at 2^28: sector 5
    bus.read(STATUS, 1)
    assert bus.read(DATA, 2) == 0


# -- PIO reads and writes -------------------------------------------------------------------------
def test_read_sectors_lba28(rig):
    rig.edges.clear()
    rig.lba28(100, 3, 0x20)
    data = rig.pio_read(3)
    assert data == b"".join(sector_pattern(i) for i in (100, 101, 102))
    assert rig.edges.count((14, True)) == 3           # one INTRQ per DRQ block
    assert (rig.r(LBAL), rig.r(LBAM), rig.r(COUNT)) == (103, 0, 0)


def test_read_sectors_chs(rig):
    rig.w(DEVICE, 0xA0 | 2)                           # CHS, head 2
    rig.w(COUNT, 1)
    rig.w(LBAL, 5)                                    # sector 5
    rig.w(LBAM, 1)                                    # cylinder 1
    rig.w(LBAH, 0)
    rig.w(CMD, 0x20)
    assert rig.pio_read(1) == sector_pattern((1 * 16 + 2) * 63 + 4)


def test_chs_errors_and_out_of_range(rig):
    rig.w(DEVICE, 0xA0)
    rig.w(COUNT, 1)
    rig.w(LBAL, 0)                                    # sector 0 does not exist
    rig.w(LBAM, 0)
    rig.w(CMD, 0x20)
    assert rig.irq14() and rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10
    rig.lba28(SECTORS - 1, 2, 0x20)                   # runs past the end: the sector on
    assert rig.r(STATUS) == 0x58                      # the disk comes first...
    assert rig.read_block() == sector_pattern(SECTORS - 1)
    assert rig.irq14()
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10   # ...then IDNF, at its address
    assert rig.r(LBAL) | rig.r(LBAM) << 8 == SECTORS and rig.r(COUNT) == 1
    assert rig.r(DATA, 2) == 0
    rig.lba28(SECTORS, 1, 0x30)                       # a write starting beyond: no DRQ
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10
    rig.w(COUNT, 2)
    rig.w(CMD, 0xC6)                                  # multiple mode 2
    rig.lba28(SECTORS - 3, 4, 0xC5)                   # WRITE MULTIPLE: second block is out
    rig.write_block(b"\x99" * 1024)
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10
    assert rig.image.read(SECTORS - 3, 2) == b"\x99" * 1024
    rig.lba28(SECTORS - 1, 1, 0x20)
    assert rig.pio_read(1) == sector_pattern(SECTORS - 1)


def test_command_ignored_while_drq(rig):
    rig.lba28(0, 1, 0x20)
    rig.r(STATUS)
    rig.w(CMD, 0xEC)                                  # ignored: DRQ is set
    assert rig.read_block() == sector_pattern(0)
    assert rig.r(STATUS) == 0x50 and not rig.irq14()


def test_unknown_command_aborts(rig):
    for cmd in (0x00, 0x08, 0xA0, 0xA1, 0x50):        # NOP, DEVICE RESET/PACKET: not ATA
        rig.w(CMD, cmd)
        assert rig.irq14()
        assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x04
        assert not rig.irq14()


def test_write_sectors_overlay(rig):
    payload = bytes((i * 3) & 0xFF for i in range(1024))
    rig.edges.clear()
    rig.lba28(7, 2, 0x30)
    assert rig.r(ALT) == 0x58 and not rig.irq14()     # DRQ for the first block, no INTRQ
    rig.write_block(payload[:512])
    assert rig.irq14() and rig.r(STATUS) == 0x58      # next block requested
    rig.write_block(payload[512:])
    assert rig.irq14() and rig.r(STATUS) == 0x50      # done
    assert rig.image.dirty == 2
    rig.lba28(6, 3, 0x20)
    assert rig.pio_read(3) == sector_pattern(6) + payload
    with open(rig.path, "rb") as f:
        f.seek(7 * 512)
        assert f.read(512) == sector_pattern(7)


def test_write_through(tmp_path):
    rig = Rig(tmp_path, writable=True)
    rig.lba28(1, 1, 0x30)
    rig.write_block(b"\x5A" * 512)
    assert rig.r(STATUS) == 0x50 and rig.image.dirty == 0
    rig.image.close()
    with open(rig.path, "rb") as f:
        f.seek(512)
        assert f.read(512) == b"\x5A" * 512


def test_read_write_ext(rig):
    rig.lba48(2000, 2, 0x24)
    assert rig.pio_read(2) == sector_pattern(2000) + sector_pattern(2001)
    assert rig.r(LBAL) == 2002 & 0xFF and rig.r(LBAM) == 2002 >> 8
    rig.lba48(3, 1, 0x34)
    rig.write_block(b"\xEE" * 512)
    assert rig.r(STATUS) == 0x50
    assert rig.image.read(3) == b"\xEE" * 512
    rig.lba48(1 << 32, 1, 0x24)                       # beyond the disk: IDNF
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10
    rig.lba48(SECTORS - 2, 0, 0x24)                   # count 0 = 65536 sectors
    for lba in (SECTORS - 2, SECTORS - 1):
        assert rig.irq14() and rig.r(STATUS) == 0x58
        assert rig.read_block() == sector_pattern(lba)
    assert rig.irq14()
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10     # IDNF after the last sector
    assert rig.r(COUNT) == 0xFE and rig.r(LBAL) == SECTORS & 0xFF
    rig.w(DEVCTL, 0x80)
    assert rig.r(COUNT) == 0xFF                       # 65534 sectors left: FFFEh


def test_multiple_mode(rig):
    rig.lba28(0, 6, 0xC4)
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x04     # multiple mode disabled
    rig.w(COUNT, 3)
    rig.w(CMD, 0xC6)
    assert rig.r(STATUS) == 0x41                      # not a power of two
    rig.w(COUNT, 4)
    rig.w(CMD, 0xC6)
    assert rig.irq14() and rig.r(STATUS) == 0x50
    rig.edges.clear()
    rig.lba28(10, 6, 0xC4)
    assert rig.pio_read(6, per_irq=4) == b"".join(sector_pattern(i) for i in range(10, 16))
    assert rig.edges.count((14, True)) == 2           # a 4-sector block, then 2
    _, w = rig.identify()
    assert w[59] == 0x0104
    payload = bytes(range(256)) * 2 * 5
    rig.lba28(20, 5, 0xC5)
    rig.write_block(payload[:2048])
    assert rig.r(STATUS) == 0x58
    rig.write_block(payload[2048:])
    assert rig.r(STATUS) == 0x50
    assert rig.image.read(20, 5) == payload
    rig.lba48(30, 2, 0x29)
    assert rig.pio_read(2, per_irq=4) == sector_pattern(30) + sector_pattern(31)


def test_nien_masks_intrq(rig):
    rig.w(DEVCTL, 0x02)
    rig.edges.clear()
    rig.lba28(0, 1, 0x20)
    assert rig.edges == [] and rig.r(ALT) == 0x58
    rig.w(DEVCTL, 0x00)                               # the pending interrupt shows now
    assert rig.irq14()
    assert rig.r(STATUS) == 0x58 and not rig.irq14()


def test_32bit_data_port(rig):
    rig.lba28(9, 1, 0x20)
    rig.r(STATUS)
    data = b"".join(rig.r(DATA, 4).to_bytes(4, "little") for _ in range(128))
    assert data == sector_pattern(9)
    assert rig.r(STATUS) == 0x50


# -- other commands -------------------------------------------------------------------------------
def test_initialize_device_parameters_changes_chs(rig):
    rig.w(DEVICE, 0xA0 | 3)                           # 4 heads
    rig.w(COUNT, 17)                                  # 17 sectors per track
    rig.w(CMD, 0x91)
    assert rig.r(STATUS) == 0x50
    _, w = rig.identify()
    assert (w[54], w[55], w[56]) == (SECTORS // (4 * 17), 4, 17)
    assert (w[1], w[3], w[6]) == (2, 16, 63)          # default geometry unchanged
    rig.w(DEVICE, 0xA0 | 2)
    rig.w(COUNT, 1)
    rig.w(LBAL, 9)
    rig.w(LBAM, 3)
    rig.w(LBAH, 0)
    rig.w(CMD, 0x20)
    assert rig.pio_read(1) == sector_pattern((3 * 4 + 2) * 17 + 8)
    rig.w(COUNT, 0)
    rig.w(CMD, 0x91)
    assert rig.r(STATUS) == 0x41


def test_set_features_transfer_mode(rig):
    rig.w(FEAT, 0x03)
    rig.w(COUNT, 0x42)                                # UDMA 2
    rig.w(CMD, 0xEF)
    assert rig.r(STATUS) == 0x50
    _, w = rig.identify()
    assert w[88] == 0x043F and w[63] == 0x0007
    rig.w(FEAT, 0x03)
    rig.w(COUNT, 0x22)                                # MWDMA 2
    rig.w(CMD, 0xEF)
    _, w = rig.identify()
    assert w[63] == 0x0407 and w[88] == 0x003F
    rig.w(FEAT, 0x03)
    rig.w(COUNT, 0x47)                                # UDMA 7: not supported
    rig.w(CMD, 0xEF)
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x04
    rig.w(FEAT, 0x82)                                 # write cache off
    rig.w(CMD, 0xEF)
    _, w = rig.identify()
    assert not w[85] & 0x20
    rig.w(FEAT, 0x99)
    rig.w(CMD, 0xEF)
    assert rig.r(ERROR) == 0x04


def test_power_verify_flush(rig):
    rig.w(CMD, 0xE0)                                  # STANDBY IMMEDIATE
    assert rig.irq14() and rig.r(STATUS) == 0x50
    rig.w(CMD, 0xE5)
    assert rig.r(STATUS) == 0x50 and rig.r(COUNT) == 0x00
    rig.w(CMD, 0xE1)                                  # IDLE IMMEDIATE
    rig.w(CMD, 0xE5)
    assert rig.r(COUNT) == 0x80
    rig.lba28(0, 1, 0x40)                             # READ VERIFY wakes the drive
    assert rig.irq14() and rig.r(STATUS) == 0x50
    rig.w(CMD, 0xE5)
    assert rig.r(COUNT) == 0xFF
    rig.lba28(SECTORS, 1, 0x40)
    assert rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10
    for cmd in (0xE7, 0xEA, 0x10, 0x70):
        rig.lba28(0, 1, cmd)
        assert rig.irq14() and rig.r(STATUS) == 0x50, hex(cmd)
    rig.w(CMD, 0xF8)                                  # READ NATIVE MAX ADDRESS
    assert rig.r(LBAL) | rig.r(LBAM) << 8 == SECTORS - 1


def test_write_and_read_buffer(rig):
    rig.w(CMD, 0xE8)
    rig.write_block(bytes(range(256)) * 2)
    assert rig.irq14() and rig.r(STATUS) == 0x50
    rig.w(CMD, 0xE4)
    assert rig.pio_read(1) == bytes(range(256)) * 2


# -- bus-master DMA -------------------------------------------------------------------------------
def prd(mem, table, entries):
    for i, (addr, count, eot) in enumerate(entries):
        mem[table + 8 * i:table + 8 * i + 4] = addr.to_bytes(4, "little")
        mem[table + 8 * i + 4:table + 8 * i + 6] = (count & 0xFFFF).to_bytes(2, "little")
        mem[table + 8 * i + 6:table + 8 * i + 8] = (0x8000 if eot else 0).to_bytes(2, "little")


def test_prd_walker(rig):
    prd(rig.mem, 0x100, [(0x2001, 0x1000, False), (0x8000, 0, True)])
    assert list(prd_entries(rig.read_mem, 0x103)) == [(0x2000, 0x1000, False),
                                                      (0x8000, 0x10000, True)]


def test_read_dma_scatter(rig):
    prd(rig.mem, 0x1000, [(0x20000, 512, False), (0x30000, 1024, True)])
    rig.w(BM + 4, 0x1000, 4)
    rig.lba28(50, 3, 0xC8)
    assert rig.r(ALT) == 0x58 and not rig.irq14()     # waiting for the engine
    rig.w(BM, 0x09)                                   # start, write to memory
    assert rig.irq14()
    assert rig.r(BM + 2) & 0x07 == 0x04               # interrupt, not active, no error
    assert rig.r(STATUS) == 0x50
    assert rig.mem[0x20000:0x20200] == sector_pattern(50)
    assert rig.mem[0x30000:0x30400] == sector_pattern(51) + sector_pattern(52)
    rig.w(BM, 0x08)
    rig.w(BM + 2, 0x04)                               # write 1 to clear
    assert rig.r(BM + 2) & 0x04 == 0
    assert rig.bm.bytes_moved[0] == 1536


def test_write_dma_engine_started_first_and_prd_larger(rig):
    rig.mem[0x40000:0x40400] = b"\xC3" * 1024
    prd(rig.mem, 0x1000, [(0x40000, 0x1000, True)])
    rig.w(BM + 4, 0x1000, 4)
    rig.w(BM + 2, 0x60)                               # drive 0/1 DMA capable (r/w bits)
    rig.w(BM, 0x01)                                   # start first, read from memory
    assert rig.r(BM + 2) & 0x01
    rig.lba48(40, 2, 0x35)                            # WRITE DMA EXT runs at once
    assert rig.irq14() and rig.r(STATUS) == 0x50
    assert rig.r(BM + 2) == 0x60 | 0x04 | 0x01        # PRD larger than the transfer: active
    assert rig.image.read(40, 2) == b"\xC3" * 1024
    assert rig.image.read(42) == sector_pattern(42)


def test_dma_prd_too_small_leaves_device_waiting(rig):
    prd(rig.mem, 0x1000, [(0x20000, 512, True)])
    rig.w(BM + 4, 0x1000, 4)
    rig.lba28(0, 2, 0xC8)
    rig.w(BM, 0x09)
    assert not rig.irq14()
    assert rig.r(BM + 2) & 0x07 == 0                  # not active, no interrupt
    assert rig.r(ALT) == 0x58                         # device still wants to transfer
    assert rig.mem[0x20000:0x20200] == sector_pattern(0)
    prd(rig.mem, 0x1000, [(0x21000, 512, True)])      # the host continues with a new table
    rig.w(BM, 0x08)
    rig.w(BM, 0x09)
    assert rig.irq14() and rig.r(STATUS) == 0x50
    assert rig.mem[0x21000:0x21200] == sector_pattern(1)


def test_dma_out_of_range(rig):
    rig.lba28(SECTORS, 1, 0xC8)
    assert rig.irq14() and rig.r(STATUS) == 0x41 and rig.r(ERROR) == 0x10


# -- snapshots, summary ---------------------------------------------------------------------------
def test_state_round_trip_mid_transfer(tmp_path, rig):
    rig.lba28(200, 2, 0x20)
    rig.r(STATUS)
    first = rig.read_block(100)
    st = rig.ch0.get_state()
    bst = rig.bm.get_state()
    rest = rig.read_block(156 + 256)

    other = Rig(tmp_path)
    other.ch0.set_state(st)
    other.bm.set_state(bst)
    assert other.read_block(156) + other.pio_read(1) == rest
    assert first + rest == sector_pattern(200) + sector_pattern(201)


def test_summary(rig):
    s = rig.ch0.summary()
    assert "AERO HARDDISK" in s["device 0 device"] and s["device 1"] == "none"
    assert "2/16/63" in s["device 0 device"]
    assert rig.bm.summary()["base"] == hex(BM)


def test_bus_master_enable_and_remap(rig):
    """The PIIX function gates the engine with PCI BME and moves BAR4 (map_bus_master)."""
    prd(rig.mem, 0x1000, [(0x20000, 512, True)])
    rig.bm.set_bus_master_enable(False)
    rig.w(BM + 4, 0x1000, 4)
    rig.lba28(3, 1, 0xC8)
    rig.w(BM, 0x09)
    assert not rig.irq14() and rig.r(BM + 2) & 0x01   # started, but no bus access yet
    rig.bm.set_bus_master_enable(True)
    assert rig.irq14() and rig.mem[0x20000:0x20200] == sector_pattern(3)
    rig.bm._iobus = rig.bus
    rig.bm.map_bus_master(0xD000)
    assert rig.r(BM + 4, 4) == 0xFFFFFFFF and rig.r(0xD004, 4) == 0x1000
    rig.ch0.unregister(rig.bus)
    assert rig.r(STATUS) == 0xFF                      # legacy decode off


def test_hardware_reset_restores_power_on_settings(rig):
    rig.w(COUNT, 8)
    rig.w(CMD, 0xC6)
    rig.w(DEVICE, 0xA3)
    rig.w(COUNT, 17)
    rig.w(CMD, 0x91)
    rig.lba28(0, 1, 0x20)                             # a transfer in progress
    rig.ch0.reset()
    assert not rig.irq14() and rig.r(STATUS) == 0x50 and rig.r(ERROR) == 0x01
    _, w = rig.identify()
    assert w[59] == 0 and (w[54], w[55], w[56]) == (2, 16, 63)


def test_states_are_plain_data(rig):
    from aero.statefile import check_plain
    rig.lba28(3, 2, 0x30)
    rig.write_block(b"\x01" * 512)                    # mid-command, one sector in the overlay
    for dev in (rig.ch0, rig.ch1, rig.bm):
        check_plain(dev.get_state())
    assert rig.ch0.get_state()["devices"][0]["image"]["overlay"] == {3: b"\x01" * 512}
