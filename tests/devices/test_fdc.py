"""82077AA floppy controller driven through its ports as a BIOS does, with the real 8237A on
DMA channel 2 and IRQ 6 recorded (Intel 82077AA data sheet); disk image access (disk.py)."""

import os

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.disk import DiskImage, floppy_geometry
from aero.devices.dma import DMA8237
from aero.devices.fdc import FDC82077AA
from aero.testing.fakecpu import FakeCPU

SRA, SRB, DOR, TDR, MSR, DSR, FIFO, DIR, CCR = (0x3F0, 0x3F1, 0x3F2, 0x3F3, 0x3F4, 0x3F4,
                                                 0x3F5, 0x3F7, 0x3F7)
DELAY = 100          # ticks: 100 us at 1 tick = 1 us


_CYCLE = bytes(range(256)) * 3


def sector_pattern(lba: int, size: int = 512) -> bytes:
    """LBA in the first 4 bytes, then (lba * 7 + i) & 0xFF."""
    start = (lba * 7) & 0xFF
    return lba.to_bytes(4, "little") + _CYCLE[start:start + size - 4]


def make_image(path, size):
    with open(path, "wb") as f:
        for lba in range(size // 512):
            f.write(sector_pattern(lba))
    return str(path)


class Rig:
    def __init__(self, tmp_path, size=1474560, writable=False, media=True, delay=True):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=1_000_000)
        self.edges = []
        self.irq = IRQLines(lambda line, level: self.edges.append((line, level)))
        self.mem = bytearray(1 << 20)
        self.dma = DMA8237(self.read_mem, self.write_mem)
        self.bus = IOBus()
        self.dma.register(self.bus)
        self.fdc = FDC82077AA(self.irq, self.dma, self.clock if delay else None)
        self.fdc.register(self.bus)
        self.path = make_image(tmp_path / f"fd{size}.img", size)
        self.image = None
        if media:
            self.image = DiskImage(self.path, kind="floppy", writable=writable)
            self.fdc.insert(0, self.image)
        self.w(0xD6, 0xC0)          # DMA2 channel 4 cascade, unmasked
        self.w(0xD4, 0x00)

    def read_mem(self, a, n):
        return bytes(self.mem[a:a + n])

    def write_mem(self, a, data):
        self.mem[a:a + len(data)] = data

    def w(self, p, v):
        self.bus.write(p, 1, v)

    def r(self, p):
        return self.bus.read(p, 1)

    def advance(self, t=DELAY):
        end = self.cpu.icount + t
        while True:
            nxt = self.clock.next_event()
            if nxt is None or nxt > end:
                break
            self.cpu.icount = max(self.cpu.icount, nxt)
            self.clock.run_due()
        self.cpu.icount = end

    def irq6(self):
        return self.irq.level[6]

    def command(self, *bytes_):
        for b in bytes_:
            assert self.r(MSR) & 0xC0 == 0x80, f"RQM/DIO before {b:02X}: {self.r(MSR):02X}"
            self.w(FIFO, b)

    def results(self, n=None):
        out = []
        while self.r(MSR) & 0xC0 == 0xC0:
            out.append(self.r(FIFO))
        if n is not None:
            assert len(out) == n, out
        return out

    def sense_interrupt(self):
        self.command(0x08)
        return self.results()

    def init(self):
        """What a BIOS does: leave reset with motor A on and DMA/IRQ enabled, then sense the
        four polling interrupts."""
        self.w(DOR, 0x1C)
        self.advance()
        assert self.irq6()
        res = [self.sense_interrupt() for _ in range(4)]
        assert res == [[0xC0, 0], [0xC1, 0], [0xC2, 0], [0xC3, 0]]
        self.w(CCR, 0)                              # 500 kbps
        self.command(0x03, 0xDF, 0x02)              # SPECIFY, DMA mode

    def seek(self, cyl, head=0, drive=0):
        self.command(0x0F, (head << 2) | drive, cyl)
        self.advance()
        assert self.irq6()
        assert self.sense_interrupt() == [0x20 | (head << 2) | drive, cyl]

    def program_dma(self, addr, length, to_memory=True):
        count = length - 1
        self.w(0x0A, 0x06)                          # mask channel 2
        self.w(0x0C, 0)
        self.w(0x04, addr & 0xFF)
        self.w(0x04, (addr >> 8) & 0xFF)
        self.w(0x81, addr >> 16)
        self.w(0x05, count & 0xFF)
        self.w(0x05, count >> 8)
        self.w(0x0B, 0x46 if to_memory else 0x4A)   # single mode, write/read transfer, ch 2
        self.w(0x0A, 0x02)                          # unmask

    def read_data(self, c, h, r, eot=18, mt=False, drive=0, head=None, n=2, op=0x46):
        head = h if head is None else head
        self.command(op | (0x80 if mt else 0), (head << 2) | drive, c, h, r, n, eot, 0x1B, 0xFF)
        assert self.r(MSR) & 0xF0 == 0x10 or self.fdc.clock is None   # execution: CB, no RQM
        self.advance()
        assert self.irq6()
        res = self.results(7)
        assert not self.irq6()                     # cleared by reading the result
        assert self.r(MSR) == 0x80
        return res


def lba(c, h, s, heads=2, spt=18):
    return (c * heads + h) * spt + s - 1


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    r.init()
    return r


# -- reset, registers --------------------------------------------------------------------------
def test_power_on_held_in_reset_then_polling_interrupt(tmp_path):
    r = Rig(tmp_path)
    assert r.r(DOR) == 0x00 and r.r(MSR) == 0x00      # hardware reset: held in reset
    r.w(FIFO, 0x10)                                   # ignored while in reset
    r.w(DOR, 0x0C)
    assert r.r(MSR) == 0x80
    assert not r.irq6()                               # interrupt comes after the delay
    r.advance(DELAY - 1)
    assert not r.irq6()
    r.advance(1)
    assert r.irq6() and r.r(SRA) & 0x80
    assert r.sense_interrupt() == [0xC0, 0]
    assert not r.irq6()
    assert [r.sense_interrupt() for _ in range(3)] == [[0xC1, 0], [0xC2, 0], [0xC3, 0]]
    assert r.sense_interrupt() == [0x80]              # nothing pending: INVALID
    assert r.edges == [(6, True), (6, False)]


def test_unsensed_reset_statuses_give_way_to_the_next_interrupt(tmp_path):
    """The Bochs BIOS leaves reset, waits for the IRQ and recalibrates without sensing the
    four polling statuses: SENSE INTERRUPT STATUS then reports the RECALIBRATE."""
    r = Rig(tmp_path)
    r.w(DOR, 0x1C)
    r.advance()
    assert r.irq6()
    r.command(0x07, 0x00)
    r.advance()
    assert r.sense_interrupt() == [0x20, 0]
    assert r.sense_interrupt() == [0x80]


def test_irq_gated_by_dor_dma_gate(tmp_path):
    r = Rig(tmp_path)
    r.w(DOR, 0x04)                                    # out of reset, DMA GATE off
    r.advance()
    assert r.fdc.intpend and not r.irq6()
    r.w(DOR, 0x0C)
    assert r.irq6()
    r.w(DOR, 0x04)
    assert not r.irq6()


def test_dsr_software_reset(rig):
    rig.seek(5)
    rig.w(DSR, 0x80)
    assert rig.r(MSR) == 0x80
    rig.advance()
    assert rig.irq6()
    assert rig.sense_interrupt() == [0xC0, 0]


def test_version_and_phases(rig):
    assert rig.r(MSR) == 0x80
    rig.w(FIFO, 0x10)
    assert rig.r(MSR) == 0xD0                         # result phase: RQM DIO CB
    assert rig.r(FIFO) == 0x90
    assert rig.r(MSR) == 0x80
    rig.w(FIFO, 0x03)                                 # first byte of SPECIFY: CB set
    assert rig.r(MSR) == 0x90


def test_invalid_command(rig):
    rig.edges.clear()
    rig.command(0x1F)
    assert rig.results() == [0x80]
    assert rig.edges == []


def test_specify_configure_dumpreg_lock(rig):
    rig.command(0x03, 0xA5, 0x0C)                     # SRT A HUT 5 HLT 6 DMA
    rig.command(0x13, 0x00, 0x57, 0x03)               # EIS EFIFO=0 POLL FIFOTHR 7, PRETRK 3
    rig.command(0x12, 0x80 | 0x04 | 0x02)             # PERPENDICULAR: OW, D0, GAP
    rig.seek(7)
    rig.command(0x0E)
    d = rig.results(10)
    assert d[0] == 7 and d[1:4] == [0, 0, 0]
    assert d[4] == 0xA5 and d[5] == 0x0C
    assert d[7] == 0x06                               # no LOCK, D0 + GAP
    assert d[8] == 0x57 and d[9] == 0x03
    rig.command(0x94)
    assert rig.results() == [0x10]
    rig.w(DOR, 0x18)
    rig.w(DOR, 0x1C)                                  # reset: CONFIGURE survives while LOCKed
    rig.command(0x0E)
    d = rig.results(10)
    assert d[8] == 0x57 and d[0] == 0 and d[7] & 0x80
    rig.command(0x14)
    assert rig.results() == [0x00]
    rig.w(DSR, 0x80)
    rig.command(0x0E)
    assert rig.results(10)[8] == 0x20                 # defaults: EFIFO set, polling enabled


def test_sra_srb_dir_tdr(rig):
    assert rig.r(SRB) == 0xC0 | 0x01                  # motor 0 on, drive 0 selected
    assert rig.r(DIR) == 0x80                         # disk changed since power-on
    rig.seek(1)
    assert rig.r(DIR) == 0x00                         # cleared by a step with a diskette
    assert rig.r(SRA) & 0x10                          # not at track 0
    rig.fdc.eject(0)
    assert rig.r(DIR) == 0x80
    rig.w(TDR, 0xFE)
    assert rig.r(TDR) == 0x02


# -- seeking --------------------------------------------------------------------------------------
def test_recalibrate_and_drive_busy(rig):
    rig.seek(30)
    rig.command(0x07, 0x00)
    assert rig.r(MSR) == 0x81                         # RQM + drive 0 busy
    assert not rig.irq6()
    rig.advance()
    assert rig.irq6()
    assert rig.r(MSR) == 0x81                         # busy until sensed
    assert rig.sense_interrupt() == [0x20, 0]
    assert rig.r(MSR) == 0x80


def test_relative_seek_and_sense_drive_status(rig):
    rig.seek(10)
    rig.command(0x8F, 0x00, 3)                        # relative, step out
    rig.advance()
    assert rig.sense_interrupt() == [0x20, 7]
    rig.command(0xCF, 0x04, 5)                        # relative, step in, head 1
    rig.advance()
    assert rig.sense_interrupt() == [0x24, 12]
    rig.command(0x04, 0x04)
    assert rig.results() == [0x2C]                    # RDY, two-sided, head 1, not T0
    rig.seek(0)
    rig.command(0x04, 0x00)
    assert rig.results() == [0x38]                    # T0


def test_recalibrate_absent_drive(rig):
    rig.command(0x07, 0x02)
    rig.advance()
    assert rig.sense_interrupt() == [0x70 | 0x02, 0]  # abnormal, SE, EC


# -- reading --------------------------------------------------------------------------------------
def test_read_data_two_sectors_tc(rig):
    rig.seek(1)
    rig.program_dma(0x1000, 1024)
    before = bytes(rig.mem[0x1000:0x1400])
    rig.command(0x46, 0x04, 1, 1, 3, 2, 18, 0x1B, 0xFF)
    assert rig.r(MSR) == 0x10
    assert bytes(rig.mem[0x1000:0x1400]) == before    # nothing moved before execution ends
    rig.advance()
    assert rig.irq6()
    assert rig.results(7) == [0x04, 0, 0, 1, 1, 5, 2]
    base = lba(1, 1, 3)
    assert rig.mem[0x1000:0x1200] == sector_pattern(base)
    assert rig.mem[0x1200:0x1400] == sector_pattern(base + 1)
    assert rig.r(0x08) & 0x04                         # DMA TC on channel 2


def test_read_multitrack_crosses_to_side_1(rig):
    rig.seek(2)
    rig.program_dma(0x2000, 4 * 512)
    res = rig.read_data(2, 0, 17, mt=True)
    assert res == [0x04, 0, 0, 2, 1, 3, 2]            # ends on head 1 sector 2: next R 3
    got = [int.from_bytes(rig.mem[0x2000 + i * 512:0x2004 + i * 512], "little")
           for i in range(4)]
    assert got == [lba(2, 0, 17), lba(2, 0, 18), lba(2, 1, 1), lba(2, 1, 2)]


def test_tc_at_eot_gives_next_cylinder(rig):
    rig.program_dma(0x3000, 2 * 512)
    assert rig.read_data(0, 0, 17) == [0x00, 0, 0, 1, 0, 1, 2]
    rig.program_dma(0x3000, 2 * 512)
    assert rig.read_data(0, 1, 17, mt=True) == [0x04, 0, 0, 1, 0, 1, 2]


def test_end_of_track_without_tc(rig):
    rig.program_dma(0x3000, 8 * 512)
    res = rig.read_data(0, 0, 16)
    assert res == [0x40, 0x80, 0, 1, 0, 1, 2]         # abnormal, EN
    assert rig.dma.remaining(2) == 5 * 512


def test_read_errors(rig):
    rig.program_dma(0x3000, 512)
    # another cylinder: an implied seek (as QEMU and Bochs, whatever EIS says), ST0 SE
    assert rig.read_data(3, 0, 1) == [0x20, 0, 0, 3, 0, 2, 2]
    rig.program_dma(0x3000, 512)
    # a cylinder beyond the medium: the seek happens, no address mark is found there
    assert rig.read_data(0xFF, 0, 1) == [0x60, 0x01, 0, 0xFF, 0, 1, 2]
    assert rig.read_data(0, 0, 19) == [0x60, 0x04, 0, 0, 0, 19, 2]   # seek back; no sector 19
    assert rig.read_data(0, 0, 19) == [0x40, 0x04, 0, 0, 0, 19, 2]   # no seek: SE clear
    assert rig.read_data(0, 0, 1, n=3) == [0x40, 0x04, 0, 0, 0, 1, 3]  # wrong size code
    assert rig.read_data(0, 1, 1, head=0)[:2] == [0x40, 0x04]         # H ID != head
    assert rig.read_data(0, 0, 1, op=0x06)[:3] == [0x40, 0x01, 0x00]  # FM: missing AM
    rig.w(CCR, 2)                                                     # 250 kbps
    assert rig.read_data(0, 0, 1)[:3] == [0x40, 0x01, 0x00]
    rig.w(CCR, 0)
    rig.seek(80)
    assert rig.read_data(80, 0, 1)[:2] == [0x40, 0x01]                # unformatted track
    rig.seek(0)
    rig.fdc.eject(0)
    assert rig.read_data(0, 0, 1)[:2] == [0x40, 0x01]                 # no diskette
    assert rig.dma.remaining(2) == 512                                # nothing was moved


def test_dma_not_serviced_is_overrun(rig):
    rig.program_dma(0x3000, 512)
    rig.w(0x0A, 0x06)                                 # mask channel 2
    assert rig.read_data(0, 0, 1)[:2] == [0x40, 0x10]
    rig.w(0x0A, 0x02)
    rig.command(0x03, 0xDF, 0x03)                     # SPECIFY ND: non-DMA is not modelled
    assert rig.read_data(0, 0, 1)[:2] == [0x40, 0x10]


def test_720k_media_needs_250kbps(tmp_path):
    r = Rig(tmp_path, size=737280)
    r.init()                                          # leaves CCR at 500 kbps
    r.program_dma(0, 512)
    assert r.read_data(0, 0, 1, eot=9)[:2] == [0x40, 0x01]
    r.w(CCR, 2)
    assert r.read_data(0, 1, 9, eot=9) == [0x04, 0, 0, 1, 1, 1, 2]
    assert r.mem[0:512] == sector_pattern(lba(0, 1, 9, spt=9))
    assert r.fdc.cmos_type(0) == 3


def test_read_id(rig):
    rig.seek(4)
    rig.command(0x4A, 0x04)
    rig.advance()
    assert rig.irq6()
    assert rig.results(7) == [0x04, 0, 0, 4, 1, 1, 2]
    rig.command(0x4A, 0x04)
    rig.advance()
    assert rig.results(7) == [0x04, 0, 0, 4, 1, 2, 2]
    rig.w(CCR, 3)
    rig.command(0x4A, 0x00)
    rig.advance()
    assert rig.results(7)[:2] == [0x40, 0x01]


# -- writing --------------------------------------------------------------------------------------
def test_write_data_goes_to_overlay(rig):
    data = bytes((i * 13) & 0xFF for i in range(1024))
    rig.mem[0x4000:0x4400] = data
    rig.seek(5)
    rig.program_dma(0x4000, 1024, to_memory=False)
    rig.command(0x45, 0x00, 5, 0, 7, 2, 18, 0x1B, 0xFF)
    rig.advance()
    assert rig.results(7) == [0x00, 0, 0, 5, 0, 9, 2]
    assert rig.image.dirty == 2
    assert rig.image.read(lba(5, 0, 7), 2) == data
    with open(rig.path, "rb") as f:                   # the user's file is untouched
        f.seek(lba(5, 0, 7) * 512)
        assert f.read(512) == sector_pattern(lba(5, 0, 7))
    rig.program_dma(0x8000, 1024)
    rig.read_data(5, 0, 7)
    assert rig.mem[0x8000:0x8400] == data


def test_write_through_when_writable(tmp_path):
    r = Rig(tmp_path, writable=True)
    r.init()
    r.mem[0:512] = b"\xAB" * 512
    r.program_dma(0, 512, to_memory=False)
    r.command(0xC5, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF)
    r.advance()
    assert r.results(7)[:3] == [0, 0, 0]
    r.image.close()
    with open(r.path, "rb") as f:
        assert f.read(512) == b"\xAB" * 512


def test_write_protected(rig):
    rig.fdc.drives[0].write_protected = True
    rig.command(0x04, 0x00)
    assert rig.results()[0] & 0x40                    # ST3 WP
    rig.program_dma(0, 512, to_memory=False)
    rig.command(0x45, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF)
    rig.advance()
    assert rig.results(7)[:2] == [0x40, 0x02]         # NW
    assert rig.image.dirty == 0


def test_format_track(rig):
    rig.seek(3)
    ids = b"".join(bytes([3, 1, s, 2]) for s in range(1, 19))
    rig.mem[0x5000:0x5000 + len(ids)] = ids
    rig.program_dma(0x5000, len(ids), to_memory=False)
    rig.command(0x4D, 0x04, 2, 18, 0x54, 0xE5)
    rig.advance()
    assert rig.irq6()
    res = rig.results(7)
    assert res[:3] == [0x04, 0, 0]
    for s in (1, 9, 18):
        assert rig.image.read(lba(3, 1, s)) == b"\xE5" * 512
    assert rig.image.read(lba(3, 0, 1)) == sector_pattern(lba(3, 0, 1))


# -- timing, snapshots ----------------------------------------------------------------------------
def test_instant_mode_without_clock(tmp_path):
    r = Rig(tmp_path, delay=False)
    r.w(DOR, 0x1C)
    assert r.irq6()                                   # polling interrupt at once
    for _ in range(4):
        r.sense_interrupt()
    r.w(CCR, 0)
    r.command(0x03, 0xDF, 0x02)
    r.program_dma(0, 512)
    r.command(0x46, 0x00, 0, 0, 2, 2, 18, 0x1B, 0xFF)
    assert r.irq6() and r.results(7) == [0, 0, 0, 0, 0, 3, 2]
    assert r.mem[0:512] == sector_pattern(1)


def test_state_round_trip_mid_execution(tmp_path, rig):
    rig.seek(2)
    rig.image.write(lba(2, 0, 1), b"\x77" * 512)      # overlay content is part of the state
    rig.program_dma(0x1000, 512)
    rig.command(0x46, 0x00, 2, 0, 1, 2, 18, 0x1B, 0xFF)
    st = rig.fdc.get_state()
    dst = rig.dma.get_state()
    assert st["timers"] == {"exec": rig.cpu.icount + DELAY}
    assert st["drives"][0]["image"]["overlay"]

    other = Rig(tmp_path)
    other.cpu.icount = rig.cpu.icount
    other.dma.set_state(dst)
    other.fdc.set_state(st)
    assert other.r(MSR) == 0x10
    other.advance()
    assert other.irq6() and other.results(7) == [0, 0, 0, 2, 0, 2, 2]
    assert other.mem[0x1000:0x1200] == b"\x77" * 512
    assert other.fdc.summary()["phase"] == "idle"


def test_summary_fields(rig):
    s = rig.fdc.summary()
    assert s["DOR"].startswith("1C") and "1.44M" in s["drive 0"]
    assert s["data rate"] == "500 kbps"


# -- disk images ----------------------------------------------------------------------------------
def test_disk_image_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        DiskImage(str(tmp_path / "missing.img"))
    with pytest.raises(ValueError, match="not a regular file"):
        DiskImage(str(tmp_path))
    p = tmp_path / "odd.img"
    p.write_bytes(b"\0" * 1000)
    with pytest.raises(ValueError, match="whole number of 512-byte sectors"):
        DiskImage(str(p))
    p.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        DiskImage(str(p))
    p.write_bytes(b"\0" * 512 * 100)
    with pytest.raises(ValueError, match="not a floppy format") as e:
        DiskImage(str(p), kind="floppy")
    assert "\n" not in str(e.value) and "1.44M (1474560)" in str(e.value)
    if os.getuid() != 0:
        p.chmod(0)
        with pytest.raises(ValueError, match="permission denied"):
            DiskImage(str(p))
    assert floppy_geometry(1474560).sectors == 18


def test_disk_image_overlay_and_state(tmp_path):
    path = make_image(tmp_path / "hd.img", 64 * 512)
    img = DiskImage(path)
    img.write(3, b"\x11" * 1024)
    assert img.read(2, 3) == sector_pattern(2) + b"\x11" * 1024
    assert img.dirty == 2 and img.summary()["dirty sectors"] == 2
    with pytest.raises(IndexError):
        img.read(63, 2)
    st = img.get_state()
    fresh = DiskImage(path)
    assert fresh.read(3) == sector_pattern(3)
    fresh.set_state(st)
    assert fresh.read(4) == b"\x11" * 512
    with open(path, "rb") as f:
        assert f.read() == b"".join(sector_pattern(i) for i in range(64))
    small = DiskImage(data=bytes(512 * 8))
    with pytest.raises(ValueError, match="snapshot"):
        small.set_state(st)


def test_288m_media_at_1mbps_and_cmos_types(tmp_path):
    r = Rig(tmp_path, size=2949120)
    r.init()
    r.program_dma(0, 512)
    assert r.read_data(0, 0, 36, eot=36)[:2] == [0x40, 0x01]     # 500 kbps: no IDs found
    r.w(CCR, 3)
    r.program_dma(0, 512)
    assert r.read_data(0, 1, 36, eot=36) == [0x04, 0, 0, 1, 1, 1, 2]
    assert r.mem[0:512] == sector_pattern(lba(0, 1, 36, spt=36))
    assert r.fdc.cmos_type(0) == 5 and r.fdc.cmos_type(1) == 4 and r.fdc.cmos_type(2) == 0


def test_hardware_reset(rig):
    rig.seek(9)
    rig.fdc.reset()
    assert rig.r(DOR) == 0 and rig.r(MSR) == 0 and rig.r(DIR) == 0x80
    assert not rig.irq6()
