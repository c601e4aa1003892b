"""ATA/IDE channels with hard disks, and the PIIX IDE bus-master DMA engine.

References: ANSI INCITS 361-2002 AT Attachment with Packet Interface - 6 (ATA/ATAPI-6):
section 7 "Register descriptions" (Data, Error, Features, Sector Count, LBA Low/Mid/High,
Device (bit 6 LBA, bit 4 DEV), Status (BSY DRDY DF DSC (obsolete "device seek complete")
DRQ ERR), Alternate Status, Device Control (nIEN, SRST, HOB), the HOB read-back of the 48-bit
registers), section 8 "Command descriptions" (8.15 IDENTIFY DEVICE with Table 27's words,
8.16 IDENTIFY PACKET DEVICE, 8.9 DEVICE RESET, 8.11 EXECUTE DEVICE DIAGNOSTIC (Table 26
diagnostic codes), 8.12/8.13 FLUSH CACHE (EXT), 8.17-8.20 IDLE (IMMEDIATE), 8.21 INITIALIZE
DEVICE PARAMETERS, 8.23 NOP, 8.24 PACKET, 8.25-8.35 READ DMA/MULTIPLE/SECTORS/VERIFY (EXT),
8.38 SET FEATURES, 8.39 SET MULTIPLE MODE, 8.43-8.45 STANDBY, 8.45 CHECK POWER MODE, 8.48-8.58
WRITE DMA/MULTIPLE/SECTORS (EXT)), section 9 "Protocol" (PIO data-in/out: INTRQ per DRQ
data block, none after the last data-in block; non-data; DMA; 9.2 the software reset protocol
and 9.12 the signatures: ATA 01h/01h/00h/00h, PACKET 01h/01h/14h/EBh).  CHS translation:
LBA = (C x heads + H) x sectors + S - 1 with the current geometry of INITIALIZE DEVICE
PARAMETERS (identify words 54-58).  Intel 82371SB PIIX3 data sheet, section 2.7 "Bus master IDE
I/O registers" (BMICOM: bit 0 SSBM start/stop, bit 3 RWCON (1 = bus master writes memory);
BMISTA: bit 0 active, bit 1 error, bit 2 interrupt (write 1 to clear), bits 5-6 drive 0/1
DMA capable, bit 7 simplex; BMIDTP: the physical region descriptor table pointer) and section
3.3 "Physical region descriptor format" (dword base address, 16-bit byte count with 0 = 64 KiB,
EOT in bit 31 of the second dword).  PC conventions as QEMU's hw/ide: primary 1F0h-1F7h + 3F6h
IRQ 14, secondary 170h-177h + 376h IRQ 15; on a channel with no devices every register reads
0, on a channel whose selected device 1 is absent the registers read 0; a command written while
BSY or DRQ is set is ignored (ATA-6 leaves it indeterminate) except DEVICE RESET to a PACKET
device; an error ends a command with status DRDY|ERR (no DSC).  Out-of-range addresses: PIO
commands transfer the blocks that lie on the disk and end with IDNF at the first that does not
(the task file then holds its address); DMA and VERIFY commands are refused whole with IDNF
(ATA-6 allows IDNF or ABRT here; QEMU reports ABRT).  After SRST the DEV bit is 0 (device 0
selected; QEMU keeps the previous selection).  Section tests/devices/test_storage_qemu.py
compares these devices with QEMU 7.2 port access by port access.

Timing: commands complete during the write of the command register (the device is never seen
BSY except while SRST is held); INTRQ follows the protocol (per data-in block, after each
data-out block, at the end of non-data and DMA commands).  Geometry default (as QEMU guesses
for a disk without a partition table): 16 heads, 63 sectors, cylinders = size / (16 x 63)
clamped to 2..16383.  Multiple mode is disabled after power-on (SET MULTIPLE MODE enables it,
up to 16 sectors per block).  Bus-master transfers move all the data the PRD table and the
device allow at once, in the BMICOM write that starts the engine (or in the command register
write if the engine was started first); the direction is the device's (RWCON is stored, not
checked).  Not modelled: overlapped/queued commands, SMART, security, HPA (SET MAX), 8-bit
data transfers (a byte access to the data port moves a word), Ultra DMA CRC errors.
"""

from __future__ import annotations

from .base import Device

# Status register
BSY, DRDY, DF, DSC, DRQ, CORR, IDX, ERR = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
# Error register
ICRC, UNC, MC, IDNF, MCR, ABRT, TK0NF, AMNF = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
# Device Control register
nIEN, SRST, HOB = 0x02, 0x04, 0x80
# Device register
DEV_LBA, DEV_DEV = 0x40, 0x10
# BMICOM / BMISTA
BM_START, BM_RWCON = 0x01, 0x08
BM_ACTIVE, BM_ERROR, BM_INTR, BM_DMA0, BM_DMA1 = 0x01, 0x02, 0x04, 0x20, 0x40

SECTOR = 512
MAX_MULTIPLE = 16
CHANNELS = {0: (0x1F0, 0x3F6, 14), 1: (0x170, 0x376, 15)}


def ata_string(text: str, length: int) -> bytes:
    """An IDENTIFY string field: space padded, two characters per word, first in the high
    byte (so the bytes of each word are swapped in memory)."""
    raw = text.encode("ascii")[:length].ljust(length, b" ")
    out = bytearray(length)
    out[0::2] = raw[1::2]
    out[1::2] = raw[0::2]
    return bytes(out)


def identify_words_to_bytes(words: list[int]) -> bytes:
    return b"".join((w & 0xFFFF).to_bytes(2, "little") for w in words)


def put_string(words: list[int], first: int, text: str, length: int) -> None:
    raw = ata_string(text, length)
    for i in range(length // 2):
        words[first + i] = raw[2 * i] | (raw[2 * i + 1] << 8)


def finish_identify(words: list[int]) -> bytes:
    """Word 255: signature A5h and the checksum making the 512 bytes sum to 0 (mod 256)."""
    words[255] = 0x00A5
    data = bytearray(identify_words_to_bytes(words))
    data[511] = (-sum(data[:511])) & 0xFF
    return bytes(data)


def prd_entries(read_memory, table: int, limit: int = 8192):
    """Walk a physical region descriptor table: yields (address, byte count, EOT) per entry.
    The table pointer wraps inside its 64 KiB region (the PIIX increments only A2-A15); a table
    without EOT ends after ``limit`` entries."""
    addr = table & 0xFFFFFFFC
    for _ in range(limit):
        raw = bytes(read_memory(addr, 8))
        base = int.from_bytes(raw[0:4], "little") & 0xFFFFFFFE
        count = int.from_bytes(raw[4:6], "little") & 0xFFFE
        eot = bool(raw[7] & 0x80)
        yield base, (count or 0x10000), eot
        if eot:
            return
        addr = (addr & ~0xFFFF) | ((addr + 8) & 0xFFFF)


class IDEDevice:
    """What an ATA device on a channel shares: its copy of the task file, status, INTRQ and
    the PIO / DMA data engines.  Subclasses: ATADisk (here) and ATAPICDROM (atapi.py)."""

    kind = "none"
    COMMANDS: dict[int, str] = {}

    def __init__(self, model: str, serial: str, firmware: str):
        self.model = model
        self.serial = serial
        self.firmware = firmware
        self.channel = None
        self.unit = 0
        self.commands = 0
        self.last_command = None
        self._init_regs()

    # -- registers -------------------------------------------------------------------------------
    def _init_regs(self) -> None:
        self.feature = self.hob_feature = 0
        self.nsector = self.hob_nsector = 0
        self.lbal = self.hob_lbal = 0
        self.lbam = self.hob_lbam = 0
        self.lbah = self.hob_lbah = 0
        self.select = 0xA0
        self.status = 0
        self.error = 0
        self.irq_pending = False
        self._stop_transfers()

    def _stop_transfers(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.pio_dir = None          # "in" (device -> host), "out" or None
        self.then = None             # what to do when the host has moved the block
        self.xfer = None             # a multi-block PIO command's progress
        self.dma = None              # a pending DMA command: {"write": bool, ...}
        self.dma_buf = bytearray()
        self.dma_done = 0

    def set_signature(self) -> None:
        self.nsector = self.lbal = 1
        self.lbam, self.lbah = self.SIGNATURE
        self.hob_nsector = self.hob_lbal = self.hob_lbam = self.hob_lbah = 0
        self.select = 0xA0 | (self.select & DEV_DEV)

    SIGNATURE = (0x00, 0x00)

    def power_on(self) -> None:
        self._init_regs()
        self.set_signature()
        self.select = 0xA0
        self.error = 0x01
        self.status = self.RESET_STATUS

    RESET_STATUS = DRDY | DSC

    def soft_reset(self) -> None:
        """The device's part of the software reset (SRST released) and EXECUTE DEVICE
        DIAGNOSTIC: signature, diagnostic code 01h (passed), status."""
        self._stop_transfers()
        self.irq_pending = False
        self.set_signature()
        self.select = 0xA0
        self.error = 0x01
        self.status = self.RESET_STATUS

    # -- interrupt ---------------------------------------------------------------------------------
    def raise_irq(self) -> None:
        self.irq_pending = True
        if self.channel is not None:
            self.channel.update_irq()

    def complete(self, status: int = DRDY | DSC) -> None:
        self.status = status
        self.raise_irq()

    def abort(self, error: int = ABRT) -> None:
        self._stop_transfers()
        self.error = error
        self.status = DRDY | ERR                # as QEMU: DSC is not reported with an error
        self.raise_irq()

    # -- PIO engine --------------------------------------------------------------------------------
    def pio_in(self, data: bytes, then: str, status: int = DRDY | DSC) -> None:
        """Offer ``data`` to the host through the data port (DRQ set)."""
        self.buf = bytearray(data)
        self.pos = 0
        self.pio_dir = "in"
        self.then = then
        self.status = status | DRQ

    def pio_out(self, length: int, then: str, status: int = DRDY | DSC) -> None:
        """Ask the host for ``length`` bytes through the data port (DRQ set)."""
        self.buf = bytearray(length)
        self.pos = 0
        self.pio_dir = "out"
        self.then = then
        self.status = status | DRQ

    def data_read(self) -> int:
        if self.pio_dir != "in" or not self.status & DRQ:
            return 0
        p = self.pos
        chunk = self.buf[p:p + 2]
        self.pos = p + 2
        if self.pos >= len(self.buf):
            self._block_done()
        return int.from_bytes(bytes(chunk).ljust(2, b"\0"), "little")

    def data_write(self, value: int) -> None:
        if self.pio_dir != "out" or not self.status & DRQ:
            return
        p = self.pos
        n = min(2, len(self.buf) - p)
        self.buf[p:p + n] = (value & 0xFFFF).to_bytes(2, "little")[:n]
        self.pos = p + 2
        if self.pos >= len(self.buf):
            self._block_done()

    def _block_done(self) -> None:
        then = self.then
        self.then = None
        self.pio_dir = None
        self.status &= ~DRQ
        getattr(self, "_after_" + then)()

    def _after_done(self) -> None:
        self.status = DRDY | DSC

    def reset_result(self) -> int:
        """IDENTIFY word 93, hardware reset result: 80-conductor cable (bit 13); device 0:
        number by jumper, diagnostics passed, PDIAG-/DASP- seen if device 1 is present;
        device 1: number by jumper, PDIAG- asserted."""
        if self.unit == 1:
            return 0x6B00
        other = self.channel is not None and self.channel.devices[1] is not None
        return 0x600B | (0x0030 if other else 0)

    # -- DMA engine (driven by IDEChannel.dma_transfer) ------------------------------------------
    def dma_left(self) -> int:
        return len(self.dma_buf) - self.dma_done if self.dma is not None else 0

    def dma_in(self, n: int) -> bytes:
        d = self.dma_done
        self.dma_done = d + n
        return bytes(self.dma_buf[d:d + n])

    def dma_out(self, data: bytes) -> None:
        d = self.dma_done
        self.dma_buf[d:d + len(data)] = data
        self.dma_done = d + len(data)

    def dma_complete(self) -> None:
        self.dma = None
        self.dma_buf = bytearray()
        self.dma_done = 0
        self.complete()

    def start_dma(self, dma: dict, buf: bytes | bytearray = b"") -> None:
        self.dma = dma
        self.dma_buf = bytearray(buf)
        self.dma_done = 0
        self.status = DRDY | DSC | DRQ
        if self.channel is not None:
            self.channel.dma_request()

    # -- commands ----------------------------------------------------------------------------------
    def execute(self, cmd: int) -> None:
        self.irq_pending = False
        self.commands += 1
        self.last_command = cmd
        name = self.COMMANDS.get(cmd)
        self.error = 0
        if name is None:
            self.abort()
            return
        self._stop_transfers()
        getattr(self, "_cmd_" + name)(cmd)

    def _cmd_nop(self, cmd: int) -> None:
        self.abort()            # NOP (subcommand 00h) always ends with ABRT (ATA-6 8.23)

    # -- inspection and snapshots ------------------------------------------------------------------
    def regs_summary(self) -> str:
        return (f"status {self.status:02X} error {self.error:02X} features {self.feature:02X} "
                f"count {self.nsector:02X} LBA {self.lbah:02X}{self.lbam:02X}{self.lbal:02X} "
                f"device {self.select:02X}")

    _REGS = ("feature", "hob_feature", "nsector", "hob_nsector", "lbal", "hob_lbal", "lbam",
             "hob_lbam", "lbah", "hob_lbah", "select", "status", "error", "irq_pending", "pos",
             "pio_dir", "then", "xfer", "dma", "dma_done", "commands", "last_command")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._REGS}
        st["xfer"] = None if self.xfer is None else dict(self.xfer)
        st["dma"] = None if self.dma is None else dict(self.dma)
        st["buf"] = bytes(self.buf).hex()
        st["dma_buf"] = bytes(self.dma_buf).hex()
        return st

    def set_state(self, st: dict) -> None:
        for k in self._REGS:
            setattr(self, k, st[k])
        self.xfer = None if st["xfer"] is None else dict(st["xfer"])
        self.dma = None if st["dma"] is None else dict(st["dma"])
        self.buf = bytearray(bytes.fromhex(st["buf"]))
        self.dma_buf = bytearray(bytes.fromhex(st["dma_buf"]))


class ATADisk(IDEDevice):
    """An ATA hard disk on a raw image (``aero.devices.disk.DiskImage``, 512-byte sectors)."""

    kind = "ata"
    SIGNATURE = (0x00, 0x00)
    RESET_STATUS = DRDY | DSC

    COMMANDS = {
        0x00: "nop", 0x08: "abort", 0x20: "read", 0x21: "read", 0x24: "read", 0x29: "read",
        0xC4: "read", 0x30: "write", 0x31: "write", 0x34: "write", 0x39: "write",
        0xC5: "write", 0xC8: "dma", 0xC9: "dma", 0x25: "dma", 0xCA: "dma", 0xCB: "dma",
        0x35: "dma", 0x40: "verify", 0x41: "verify", 0x42: "verify", 0x70: "seek",
        0x90: "diagnostic", 0x91: "init_params", 0xC6: "set_multiple", 0xEC: "identify",
        0xEF: "set_features", 0xE0: "power", 0xE1: "power", 0xE2: "power", 0xE3: "power",
        0xE5: "check_power", 0xE6: "power", 0xE4: "read_buffer", 0xE8: "write_buffer",
        0xE7: "flush", 0xEA: "flush", 0xF8: "native_max", 0x27: "native_max",
        **{c: "recalibrate" for c in range(0x10, 0x20)},
    }

    def __init__(self, image, model: str = "AERO HARDDISK", serial: str = "AERO-HD-0001",
                 firmware: str = "1.0", chs: tuple[int, int, int] | None = None):
        if image.sector_size != SECTOR:
            raise ValueError(f"{image.label}: a hard disk needs 512-byte sectors")
        self.image = image
        self.sectors = image.sectors
        if chs is None:
            cyl = min(16383, max(2, self.sectors // (16 * 63)))
            chs = (cyl, 16, 63)
        self.cylinders, self.heads, self.spt = chs
        super().__init__(model, serial, firmware)
        self._power_on_settings()
        self.power_on()

    def _power_on_settings(self) -> None:
        self.cur_heads = self.heads
        self.cur_spt = self.spt
        self.cur_cyl = self._cylinders_for(self.heads, self.spt)
        self.mult_count = 0
        self.write_cache = True
        self.look_ahead = True
        self.pio_mode = -1
        self.mdma_mode = -1
        self.udma_mode = -1
        self.power = "active"
        self.buffer = bytearray(SECTOR)

    @property
    def geometry(self) -> tuple[int, int, int]:
        """(cylinders, heads, sectors) of IDENTIFY words 1/3/6: what INT 13h reports too."""
        return self.cylinders, self.heads, self.spt

    def _cylinders_for(self, heads: int, spt: int) -> int:
        chs_max = min(self.sectors, 16383 * 16 * 63)
        return min(65535, chs_max // (heads * spt))

    # -- addressing --------------------------------------------------------------------------------
    def _address(self, ext: bool):
        """(lba, count) from the task file; lba None if the CHS address is invalid."""
        if ext:
            lba = ((self.hob_lbah << 40) | (self.hob_lbam << 32) | (self.hob_lbal << 24) |
                   (self.lbah << 16) | (self.lbam << 8) | self.lbal)
            count = ((self.hob_nsector << 8) | self.nsector) or 65536
            return lba, count
        count = self.nsector or 256
        if self.select & DEV_LBA:
            return ((self.select & 0x0F) << 24) | (self.lbah << 16) | (self.lbam << 8) | \
                self.lbal, count
        c = self.lbam | (self.lbah << 8)
        h = self.select & 0x0F
        s = self.lbal
        if s == 0 or s > self.cur_spt or h >= self.cur_heads or c >= self.cur_cyl:
            return None, count
        return (c * self.cur_heads + h) * self.cur_spt + s - 1, count

    def _set_address(self, lba: int, ext: bool) -> None:
        """The task file after a transfer: the next sector's address (as QEMU's drives)."""
        if ext:
            self.lbal, self.lbam, self.lbah = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            self.hob_lbal = (lba >> 24) & 0xFF
            self.hob_lbam = (lba >> 32) & 0xFF
            self.hob_lbah = (lba >> 40) & 0xFF
        elif self.select & DEV_LBA:
            self.lbal, self.lbam, self.lbah = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            self.select = (self.select & 0xF0) | ((lba >> 24) & 0x0F)
        else:
            track, s = divmod(lba, self.cur_spt)
            c, h = divmod(track, self.cur_heads)
            self.lbal = s + 1
            self.lbam, self.lbah = c & 0xFF, (c >> 8) & 0xFF
            self.select = (self.select & 0xF0) | (h & 0x0F)

    def _check(self, ext: bool, whole: bool = True):
        """(lba, count) of the command, or (None, None) after an IDNF error: an invalid CHS
        address, a start beyond the disk, or (``whole``: DMA and VERIFY) any sector beyond
        it.  PIO commands check each block as they reach it instead (``_block_ok``), so the
        blocks before a bad address are transferred, as on a drive."""
        lba, count = self._address(ext)
        if lba is None or lba >= self.sectors or (whole and lba + count > self.sectors):
            self.abort(IDNF)
            return None, None
        self.power = "active"
        return lba, count

    def _block_ok(self) -> bool:
        """The next PIO block lies on the disk; otherwise end the command with IDNF, the
        task file pointing at the block's first sector."""
        x = self.xfer
        if x["lba"] + min(x["block"], x["left"]) <= self.sectors:
            return True
        self.xfer = None
        self.abort(IDNF)
        return False

    # -- data commands -----------------------------------------------------------------------------
    def _cmd_abort(self, cmd: int) -> None:
        self.abort()

    def _cmd_read(self, cmd: int) -> None:
        ext = cmd in (0x24, 0x29)
        multiple = cmd in (0xC4, 0x29)
        if multiple and not self.mult_count:
            self.abort()
            return
        lba, count = self._check(ext, whole=False)
        if lba is None:
            return
        self.xfer = {"lba": lba, "left": count, "block": self.mult_count if multiple else 1,
                     "ext": ext}
        self._read_block()

    def _read_block(self) -> None:
        if not self._block_ok():
            return
        x = self.xfer
        n = min(x["block"], x["left"])
        data = self.image.read(x["lba"], n)
        x["lba"] += n
        x["left"] -= n
        self._set_address(x["lba"], x["ext"])
        self.nsector = x["left"] & 0xFF
        if x["ext"]:
            self.hob_nsector = (x["left"] >> 8) & 0xFF
        self.pio_in(data, "read_block")
        self.raise_irq()

    def _after_read_block(self) -> None:
        if self.xfer is not None and self.xfer["left"]:
            self._read_block()
        else:
            self.xfer = None
            self.status = DRDY | DSC

    def _cmd_write(self, cmd: int) -> None:
        ext = cmd in (0x34, 0x39)
        multiple = cmd in (0xC5, 0x39)
        if multiple and not self.mult_count:
            self.abort()
            return
        lba, count = self._check(ext, whole=False)
        if lba is None:
            return
        self.xfer = {"lba": lba, "left": count, "block": self.mult_count if multiple else 1,
                     "ext": ext}
        if self._block_ok():
            self.pio_out(SECTOR * min(self.xfer["block"], count), "write_block")

    def _after_write_block(self) -> None:
        x = self.xfer
        n = len(self.buf) // SECTOR
        self.image.write(x["lba"], bytes(self.buf))
        x["lba"] += n
        x["left"] -= n
        self._set_address(x["lba"], x["ext"])
        self.nsector = x["left"] & 0xFF
        if x["ext"]:
            self.hob_nsector = (x["left"] >> 8) & 0xFF
        if x["left"]:
            if not self._block_ok():
                return
            self.pio_out(SECTOR * min(x["block"], x["left"]), "write_block")
        else:
            self.xfer = None
            self.status = DRDY | DSC
        self.raise_irq()

    def _cmd_dma(self, cmd: int) -> None:
        ext = cmd in (0x25, 0x35)
        write = cmd in (0xCA, 0xCB, 0x35)
        lba, count = self._check(ext)
        if lba is None:
            return
        self.start_dma({"write": write, "lba": lba, "count": count, "ext": ext})

    def dma_left(self) -> int:
        if self.dma is None:
            return 0
        return self.dma["count"] * SECTOR - self.dma_done

    def dma_in(self, n: int) -> bytes:
        d = self.dma_done
        first = d // SECTOR
        last = (d + n + SECTOR - 1) // SECTOR
        data = self.image.read(self.dma["lba"] + first, last - first)
        off = d - first * SECTOR
        self.dma_done = d + n
        return data[off:off + n]

    def dma_out(self, data: bytes) -> None:
        self.dma_buf += data
        self.dma_done += len(data)
        whole = len(self.dma_buf) // SECTOR
        if whole:
            first = (self.dma_done - len(self.dma_buf)) // SECTOR
            self.image.write(self.dma["lba"] + first, bytes(self.dma_buf[:whole * SECTOR]))
            del self.dma_buf[:whole * SECTOR]

    def dma_complete(self) -> None:
        d = self.dma
        self._set_address(d["lba"] + d["count"], d["ext"])
        self.nsector = 0
        if d["ext"]:
            self.hob_nsector = 0
        self.dma = None
        self.dma_buf = bytearray()
        self.dma_done = 0
        self.complete()

    def _cmd_verify(self, cmd: int) -> None:
        lba, count = self._check(cmd == 0x42)
        if lba is None:
            return
        self._set_address(lba + count, cmd == 0x42)
        self.nsector = 0
        self.complete()

    def _cmd_seek(self, cmd: int) -> None:
        lba, _ = self._address(False)
        if lba is None or lba >= self.sectors:
            self.abort(IDNF)
            return
        self.complete()

    def _cmd_recalibrate(self, cmd: int) -> None:
        self.complete()

    def _cmd_native_max(self, cmd: int) -> None:
        top = self.sectors - 1
        if cmd == 0x27:
            self._set_address(top, True)
        else:
            top = min(top, 0x0FFFFFFF)
            self.select |= DEV_LBA
            self._set_address(top, False)
        self.complete()

    # -- configuration commands --------------------------------------------------------------------
    def _cmd_diagnostic(self, cmd: int) -> None:
        self.channel.diagnostic()

    def _cmd_init_params(self, cmd: int) -> None:
        heads = (self.select & 0x0F) + 1
        spt = self.nsector
        if spt == 0:
            self.abort()
            return
        self.cur_heads, self.cur_spt = heads, spt
        self.cur_cyl = self._cylinders_for(heads, spt)
        self.complete()

    def _cmd_set_multiple(self, cmd: int) -> None:
        n = self.nsector
        if n > MAX_MULTIPLE or (n & (n - 1)):
            self.abort()
            return
        self.mult_count = n
        self.complete()

    def _cmd_set_features(self, cmd: int) -> None:
        f = self.feature
        if f == 0x03:                                   # set transfer mode
            mode, n = self.nsector >> 3, self.nsector & 7
            if mode == 0 and n <= 1:
                self.pio_mode = -1
            elif mode == 1 and n <= 4:
                self.pio_mode = n
            elif mode == 4 and n <= 2:
                self.mdma_mode, self.udma_mode = n, -1
            elif mode == 8 and n <= 5:
                self.udma_mode, self.mdma_mode = n, -1
            else:
                self.abort()
                return
        elif f in (0x02, 0x82):
            self.write_cache = f == 0x02
        elif f in (0xAA, 0x55):
            self.look_ahead = f == 0xAA
        elif f in (0x66, 0xCC):
            pass                                        # revert to power-on defaults: stored
        else:
            self.abort()
            return
        self.complete()

    def _cmd_power(self, cmd: int) -> None:
        self.power = "standby" if cmd in (0xE0, 0xE2, 0xE6) else "idle"
        self.complete()

    def _cmd_check_power(self, cmd: int) -> None:
        self.nsector = {"standby": 0x00, "idle": 0x80}.get(self.power, 0xFF)
        self.complete()

    def _cmd_flush(self, cmd: int) -> None:
        self.image.flush()
        self.complete()

    def _cmd_read_buffer(self, cmd: int) -> None:
        self.pio_in(self.buffer, "done")
        self.raise_irq()

    def _cmd_write_buffer(self, cmd: int) -> None:
        self.pio_out(SECTOR, "write_buffer")

    def _after_write_buffer(self) -> None:
        self.buffer = bytearray(self.buf)
        self.complete()

    def _cmd_identify(self, cmd: int) -> None:
        self.pio_in(self.identify_data(), "done")
        self.raise_irq()

    def identify_data(self) -> bytes:
        """The 512-byte IDENTIFY DEVICE block (ATA/ATAPI-6 Table 27)."""
        w = [0] * 256
        w[0] = 0x0040                                   # fixed device, not removable
        w[1] = self.cylinders
        w[3] = self.heads
        w[4] = SECTOR * self.spt                        # obsolete, as drives report
        w[5] = SECTOR
        w[6] = self.spt
        put_string(w, 10, self.serial, 20)
        w[20], w[21], w[22] = 3, SECTOR, 4              # obsolete buffer type/size, ECC bytes
        put_string(w, 23, self.firmware, 8)
        put_string(w, 27, self.model, 40)
        w[47] = 0x8000 | MAX_MULTIPLE
        w[49] = 0x0B00                                  # IORDY supported, LBA, DMA
        w[50] = 0x4000
        w[51] = w[52] = 0x0200                          # obsolete PIO/DMA timing mode 2
        w[53] = 0x0007                                  # words 54-58, 64-70 and 88 valid
        cap = self.cur_cyl * self.cur_heads * self.cur_spt
        w[54], w[55], w[56] = self.cur_cyl, self.cur_heads, self.cur_spt
        w[57], w[58] = cap & 0xFFFF, cap >> 16
        w[59] = (0x0100 | self.mult_count) if self.mult_count else 0
        lba28 = min(self.sectors, 0x0FFFFFFF)
        w[60], w[61] = lba28 & 0xFFFF, lba28 >> 16
        w[62] = 0x0007
        w[63] = 0x0007 | ((1 << (8 + self.mdma_mode)) if self.mdma_mode >= 0 else 0)
        w[64] = 0x0003                                  # PIO modes 3 and 4
        w[65] = w[66] = w[67] = w[68] = 120
        w[80] = 0x00F0                                  # ATA/ATAPI-4 to -7
        w[82] = 0x4028                                  # NOP, write cache, power management
        w[83] = 0x7400                                  # FLUSH CACHE EXT, FLUSH CACHE, LBA48
        w[84] = 0x4000
        w[85] = 0x4008 | (0x0020 if self.write_cache else 0)
        w[86] = 0x3400
        w[87] = 0x4000
        w[88] = 0x003F | ((1 << (8 + self.udma_mode)) if self.udma_mode >= 0 else 0)
        w[93] = self.reset_result()
        w[100] = self.sectors & 0xFFFF
        w[101] = (self.sectors >> 16) & 0xFFFF
        w[102] = (self.sectors >> 32) & 0xFFFF
        w[103] = (self.sectors >> 48) & 0xFFFF
        return finish_identify(w)

    # -- inspection and snapshots ------------------------------------------------------------------
    def summary(self) -> dict:
        return {
            "device": f"ATA disk {self.model!r}, {self.sectors} sectors, CHS "
                      f"{self.cylinders}/{self.heads}/{self.spt} (current "
                      f"{self.cur_cyl}/{self.cur_heads}/{self.cur_spt})",
            "registers": self.regs_summary(),
            "multiple": self.mult_count, "power": self.power,
            "transfer": ("DMA pending" if self.dma else f"PIO {self.pio_dir}" if self.pio_dir
                         else "idle"),
            "image": f"{self.image.label}, dirty {self.image.dirty}",
        }

    _SETTINGS = ("cur_heads", "cur_spt", "cur_cyl", "mult_count", "write_cache", "look_ahead",
                 "pio_mode", "mdma_mode", "udma_mode", "power")

    def get_state(self) -> dict:
        st = super().get_state()
        st.update({k: getattr(self, k) for k in self._SETTINGS})
        st["buffer"] = bytes(self.buffer).hex()
        st["image"] = self.image.get_state()
        return st

    def set_state(self, st: dict) -> None:
        super().set_state(st)
        for k in self._SETTINGS:
            setattr(self, k, st[k])
        self.buffer = bytearray(bytes.fromhex(st["buffer"]))
        self.image.set_state(st["image"])


class IDEChannel(Device):
    """One ATA channel: the command block (8 ports), the control block (Device Control /
    Alternate Status), device 0 and device 1, and INTRQ wired to an ISA IRQ line."""

    STATE_VERSION = 1

    def __init__(self, index: int = 0, irq=None, master: IDEDevice | None = None,
                 slave: IDEDevice | None = None, base: int | None = None,
                 ctl: int | None = None, irq_line: int | None = None):
        b, c, line = CHANNELS.get(index, (None, None, None))
        self.index = index
        self.name = f"ide{index}"
        self.base = b if base is None else base
        self.ctl = c if ctl is None else ctl
        self.irq_line = line if irq_line is None else irq_line
        self.irq = irq
        self.devices: list[IDEDevice | None] = [None, None]
        self.bus_master = None
        self.bm_index = index
        self.DC = 0                  # Device Control
        self.unit = 0                # DEV of the Device register
        self.irq_level = False
        self.attach(0, master)
        self.attach(1, slave)

    def attach(self, unit: int, device: IDEDevice | None) -> None:
        self.devices[unit] = device
        if device is not None:
            device.channel = self
            device.unit = unit

    def register(self, iobus) -> None:
        iobus.register(self.base, 1, self, self.io_read, self.io_write, widths=(1, 2, 4))
        iobus.register(self.base + 1, 7, self, self.io_read, self.io_write)
        iobus.register(self.ctl, 1, self, self.io_read, self.io_write)

    def unregister(self, iobus) -> None:
        """Stop decoding the channel's ports (PIIX IDETIM decode enable cleared)."""
        iobus.unregister(self.base, 8)
        iobus.unregister(self.ctl, 1)

    @property
    def selected(self) -> IDEDevice | None:
        return self.devices[self.unit]

    def reset(self) -> None:
        """Hardware reset (RESET-): both devices to their power-on state."""
        self.DC = 0
        self.unit = 0
        for d in self.devices:
            if d is not None:
                if hasattr(d, "_power_on_settings"):
                    d._power_on_settings()
                d.power_on()
        self.update_irq()

    # -- interrupt -------------------------------------------------------------------------
    def update_irq(self) -> None:
        d = self.selected
        level = d is not None and d.irq_pending and not self.DC & nIEN
        if level != self.irq_level:
            self.irq_level = level
            if level and self.bus_master is not None:
                self.bus_master.interrupt(self.bm_index)
            if self.irq is not None:
                self.irq.set(self.irq_line, level)

    # -- ports -----------------------------------------------------------------------------
    def _absent(self) -> bool:
        return self.selected is None

    def io_read(self, port: int, size: int) -> int:
        if port == self.ctl:                            # Alternate Status
            return 0 if self._absent() else self.selected.status
        reg = port - self.base
        d = self.selected
        if reg == 0:
            if d is None:
                return 0
            if size == 4:
                lo = d.data_read()
                return lo | (d.data_read() << 16)
            v = d.data_read()
            return v & 0xFF if size == 1 else v
        if d is None:
            if reg == 6 and any(self.devices):
                return 0xA0 | (self.unit << 4)
            return 0
        hob = self.DC & HOB
        if reg == 1:
            return d.error
        if reg == 2:
            return d.hob_nsector if hob else d.nsector
        if reg == 3:
            return d.hob_lbal if hob else d.lbal
        if reg == 4:
            return d.hob_lbam if hob else d.lbam
        if reg == 5:
            return d.hob_lbah if hob else d.lbah
        if reg == 6:
            return d.select
        # reg 7: Status; reading it clears the device's pending interrupt
        v = d.status
        if d.irq_pending:
            d.irq_pending = False
            self.update_irq()
        return v

    def io_write(self, port: int, size: int, value: int) -> None:
        if port == self.ctl:
            self._write_control(value & 0xFF)
            return
        reg = port - self.base
        if reg == 0:
            d = self.selected
            if d is None:
                return
            if size == 4:
                d.data_write(value & 0xFFFF)
                d.data_write((value >> 16) & 0xFFFF)
            else:
                d.data_write(value & 0xFFFF)
            return
        v = value & 0xFF
        if reg == 7:
            self.DC &= ~HOB
            self._command(v)
            return
        self.DC &= ~HOB                             # HOB is cleared by a command block write
        for d in self.devices:
            if d is None:
                continue
            if reg == 1:
                d.hob_feature, d.feature = d.feature, v
            elif reg == 2:
                d.hob_nsector, d.nsector = d.nsector, v
            elif reg == 3:
                d.hob_lbal, d.lbal = d.lbal, v
            elif reg == 4:
                d.hob_lbam, d.lbam = d.lbam, v
            elif reg == 5:
                d.hob_lbah, d.lbah = d.lbah, v
            elif reg == 6:
                d.select = v
        if reg == 6:
            self.unit = (v >> 4) & 1
            self.update_irq()

    def _write_control(self, v: int) -> None:
        old = self.DC
        self.DC = v
        if v & SRST and not old & SRST:
            for d in self.devices:
                if d is not None:
                    d._stop_transfers()
                    d.irq_pending = False
                    d.status = BSY | DSC
        elif old & SRST and not v & SRST:
            for d in self.devices:
                if d is not None:
                    d.soft_reset()
            self.unit = 0
        self.update_irq()

    def _command(self, cmd: int) -> None:
        d = self.selected
        if cmd == 0x90 and any(self.devices):           # EXECUTE DEVICE DIAGNOSTIC: both
            self.diagnostic()
            return
        if d is None:
            return
        if d.status & (BSY | DRQ) and not (cmd == 0x08 and d.kind == "atapi"):
            return          # only DEVICE RESET to a PACKET device is taken while BSY/DRQ
        d.execute(cmd)
        self.update_irq()

    def diagnostic(self) -> None:
        """EXECUTE DEVICE DIAGNOSTIC: both devices reset to their signatures; device 0 reports
        the code (01h: device 0 passed, device 1 passed or absent) and interrupts."""
        for d in self.devices:
            if d is not None:
                d.soft_reset()
                d.commands += 1
                d.last_command = 0x90
        self.unit = 0
        first = self.devices[0] or self.devices[1]
        first.raise_irq()
        self.update_irq()

    # -- bus-master DMA ----------------------------------------------------------------------------
    def dma_request(self) -> None:
        """The selected device has a DMA command ready: run it if the engine is started."""
        if self.bus_master is not None:
            self.bus_master.run(self.bm_index)

    def dma_transfer(self, prd, read_memory, write_memory) -> tuple[int, bool, bool]:
        """Move data between the selected device and memory through the regions of ``prd``
        (an iterable of (address, count, eot), e.g. ``prd_entries(...)``).  Returns (bytes
        moved, the device finished its command, the PRD table was used up)."""
        d = self.selected
        if d is None or d.dma is None:
            return 0, False, False
        moved = 0
        exhausted = False
        write = d.dma["write"]
        for addr, count, eot in prd:
            left = d.dma_left()
            if left <= 0:
                break
            n = min(count, left)
            if write:
                d.dma_out(bytes(read_memory(addr, n)))
            else:
                write_memory(addr, d.dma_in(n))
            moved += n
            if eot:
                exhausted = n == count
                if n == count:
                    break
        done = d.dma_left() <= 0
        if not done:
            exhausted = True
        if done:
            d.dma_complete()
            self.update_irq()
        return moved, done, exhausted

    # -- inspection and snapshots ------------------------------------------------------------------
    def summary(self) -> dict:
        out = {"ports": f"{self.base:#x}-{self.base + 7:#x}, {self.ctl:#x}, IRQ {self.irq_line}",
               "device control": f"{self.DC:02X}" + (" nIEN" if self.DC & nIEN else "") +
                                 (" SRST" if self.DC & SRST else ""),
               "selected": f"device {self.unit}", "INTRQ": self.irq_level}
        for i, d in enumerate(self.devices):
            if d is None:
                out[f"device {i}"] = "none"
                continue
            for k, v in d.summary().items():
                out[f"device {i} {k}"] = v
        return out

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "DC": self.DC, "unit": self.unit,
                "irq_level": self.irq_level,
                "devices": [None if d is None else d.get_state() for d in self.devices]}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        for d, ds in zip(self.devices, st["devices"]):
            if (d is None) != (ds is None):
                raise ValueError(f"{self.name}: snapshot's devices differ from this machine's")
            if d is not None:
                d.set_state(ds)
        self.DC = st["DC"]
        self.unit = st["unit"]
        self.irq_level = st["irq_level"]
        if self.irq is not None:
            self.irq.set(self.irq_line, self.irq_level)


class BusMaster(Device):
    """The PIIX IDE bus-master function's I/O registers (BAR4): 8 ports per channel,
    BMICOM at +0, BMISTA at +2, BMIDTP at +4..+7; the secondary channel at +8."""

    name = "ide-busmaster"
    STATE_VERSION = 1

    def __init__(self, channels, read_memory=None, write_memory=None, iobus=None):
        """``read_memory(addr, n) -> bytes`` and ``write_memory(addr, data)`` reach physical
        memory; ``iobus`` is where ``map_bus_master`` places the registers."""
        self.channels = list(channels)
        for i, ch in enumerate(self.channels):
            if ch is not None:
                ch.bus_master = self
                ch.bm_index = i
        self.read_memory = read_memory
        self.write_memory = write_memory
        self.base = None
        self._iobus = iobus
        self.bytes_moved = [0, 0]
        self.BME = True             # PCI command register bit 2 (Bus Master Enable)
        self.reset()

    def reset(self) -> None:
        self.BMICOM = [0, 0]
        self.BMISTA = [0, 0]
        self.BMIDTP = [0, 0]

    def map(self, iobus, base: int | None) -> None:
        """Place the 16 ports at ``base`` (the BAR4 value; None unmaps), as the PCI function
        does when the BAR or its I/O enable changes."""
        if self._iobus is not None and self.base is not None:
            self._iobus.unregister(self.base, 16)
        self._iobus = iobus
        self.base = base
        if base is not None and iobus is not None:
            iobus.register(base, 16, self, self.io_read, self.io_write, widths=(1, 2, 4))

    def map_bus_master(self, base: int | None) -> None:
        """The PCI function's BAR4 changed (None: unmapped or I/O decode off)."""
        self.map(self._iobus, base)

    def set_bus_master_enable(self, enabled: bool) -> None:
        """PCI command register BME: without it the engine cannot reach memory (a started
        transfer waits, and proceeds when bus mastering is enabled)."""
        self.BME = bool(enabled)
        if self.BME:
            for ch in range(2):
                self.run(ch)

    def _regs(self, ch: int) -> bytes:
        return (bytes([self.BMICOM[ch], 0, self.BMISTA[ch], 0]) +
                self.BMIDTP[ch].to_bytes(4, "little"))

    def io_read(self, port: int, size: int) -> int:
        off = port - self.base
        ch, reg = off >> 3, off & 7
        raw = self._regs(ch) + b"\0\0\0"
        return int.from_bytes(raw[reg:reg + size], "little")

    def io_write(self, port: int, size: int, value: int) -> None:
        off = port - self.base
        ch, reg = off >> 3, off & 7
        for i in range(size):
            r = reg + i
            if r > 7:
                break
            self._write_byte(ch, r, (value >> (8 * i)) & 0xFF)

    def _write_byte(self, ch: int, reg: int, v: int) -> None:
        if reg == 0:                                    # BMICOM
            old = self.BMICOM[ch]
            self.BMICOM[ch] = v & (BM_START | BM_RWCON)
            if v & BM_START and not old & BM_START:
                self.BMISTA[ch] |= BM_ACTIVE
                self.run(ch)
            elif old & BM_START and not v & BM_START:
                self.BMISTA[ch] &= ~BM_ACTIVE           # stop: the transfer is abandoned
        elif reg == 2:                                  # BMISTA
            s = self.BMISTA[ch]
            s = (s & ~(BM_DMA0 | BM_DMA1)) | (v & (BM_DMA0 | BM_DMA1))
            s &= ~(v & (BM_ERROR | BM_INTR))            # write 1 to clear
            self.BMISTA[ch] = s
        elif 4 <= reg <= 7:                             # BMIDTP, dword aligned
            sh = 8 * (reg - 4)
            p = (self.BMIDTP[ch] & ~(0xFF << sh)) | (v << sh)
            self.BMIDTP[ch] = p & 0xFFFFFFFC

    def interrupt(self, ch: int) -> None:
        """The channel's IDE interrupt line went active."""
        self.BMISTA[ch] |= BM_INTR

    def run(self, ch: int) -> None:
        """Transfer what the device and the PRD table allow (engine started and active)."""
        if not (self.BME and self.BMICOM[ch] & BM_START and self.BMISTA[ch] & BM_ACTIVE):
            return
        channel = self.channels[ch]
        if channel is None:
            return
        moved, done, exhausted = channel.dma_transfer(
            prd_entries(self.read_memory, self.BMIDTP[ch]), self.read_memory,
            self.write_memory)
        self.bytes_moved[ch] += moved
        if exhausted:
            self.BMISTA[ch] &= ~BM_ACTIVE

    def summary(self) -> dict:
        out = {"base": "unmapped" if self.base is None else f"{self.base:#x}",
               "bus mastering": "enabled" if self.BME else "disabled (PCI command BME)"}
        for ch in range(2):
            c, s = self.BMICOM[ch], self.BMISTA[ch]
            out[("primary", "secondary")[ch]] = (
                f"BMICOM {c:02X} ({'started' if c & BM_START else 'stopped'}, "
                f"{'to memory' if c & BM_RWCON else 'from memory'}) BMISTA {s:02X}"
                f"{' active' if s & BM_ACTIVE else ''}{' error' if s & BM_ERROR else ''}"
                f"{' interrupt' if s & BM_INTR else ''} BMIDTP {self.BMIDTP[ch]:08X} "
                f"moved {self.bytes_moved[ch]}")
        return out

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "BMICOM": list(self.BMICOM),
                "BMISTA": list(self.BMISTA), "BMIDTP": list(self.BMIDTP), "base": self.base,
                "BME": self.BME, "bytes_moved": list(self.bytes_moved)}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.BMICOM = list(st["BMICOM"])
        self.BMISTA = list(st["BMISTA"])
        self.BMIDTP = list(st["BMIDTP"])
        self.bytes_moved = list(st["bytes_moved"])
        self.BME = st["BME"]
        if st["base"] != self.base and self._iobus is not None:
            self.map(self._iobus, st["base"])
