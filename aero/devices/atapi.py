"""ATAPI CD-ROM drive (a PACKET device on an IDE channel) with an ISO image of 2048-byte
sectors.

References: ATA/ATAPI-6 (ANSI INCITS 361-2002) section 8.24 PACKET and 9.8-9.10 the PACKET
protocols (the Interrupt Reason register in Sector Count: CoD bit 0, IO bit 1; the byte count
limit and the byte count of each DRQ data block in LBA Mid/High; the status and Interrupt
Reason after the packet is requested (CoD=1 IO=0, no INTRQ), per data block (CoD=0 IO=1, INTRQ)
and at the end (CoD=1 IO=1, INTRQ, error register bits 7-4 = sense key)), 8.16 IDENTIFY PACKET
DEVICE (word 0: protocol type 10b, device type 05h, removable, DRQ type, packet size), 8.9
DEVICE RESET and 9.12 the signature 01h/01h/14h/EBh; SCSI Primary Commands (SPC-3) for TEST
UNIT READY, REQUEST SENSE (fixed format sense data, response code 70h), INQUIRY (peripheral
device type 05h, RMB); SCSI Multimedia Commands (MMC-3): READ CAPACITY, READ(10), READ(12),
READ TOC/PMA/ATIP (format 0000b with MSF = LBA + 150 frames and the lead-out track AAh, format
0001b session information), MODE SENSE(6)/(10) (mode page 01h read error recovery, 2Ah
capabilities and mechanical status), GET CONFIGURATION (profile 0008h CD-ROM, features
Profile List, Core, Removable Medium, Random Readable, CD Read), START STOP UNIT (LoEj/Start),
PREVENT ALLOW MEDIUM REMOVAL, GET EVENT STATUS NOTIFICATION (polled, media class; the event
data length counts the bytes after the 4-byte header, as QEMU and Linux read it), SEEK(10),
SET CD SPEED.  Sense codes (SPC-3 Annex D): NOT READY / 3Ah MEDIUM NOT PRESENT, UNIT
ATTENTION / 28h NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED, ILLEGAL REQUEST / 20h
INVALID COMMAND OPERATION CODE, 21h LOGICAL BLOCK ADDRESS OUT OF RANGE, 24h INVALID FIELD IN
CDB, 53h/02h MEDIUM REMOVAL PREVENTED.  Conventions as QEMU's hw/ide/atapi.c (error register =
sense key << 4; a unit attention is pending after a disc is inserted, including at power-on;
INQUIRY, REQUEST SENSE, GET CONFIGURATION and GET EVENT STATUS NOTIFICATION do not report it).

Data-in commands use PIO (DRQ blocks of at most the byte count limit, even unless last) or,
with Features bit 0 (DMA) set, the bus-master engine of ide.py.  Not modelled: READ
SUBCHANNEL, READ CD / READ CD MSF (raw sectors), audio play, READ DISC INFORMATION, MODE
SELECT, MECHANISM STATUS (all ILLEGAL REQUEST, invalid operation code); one data track only.
"""

from __future__ import annotations

from .ide import DRDY, DSC, ERR, IDEDevice, finish_identify, put_string

CD_SECTOR = 2048
# Interrupt Reason (Sector Count register)
CoD, IO, REL = 0x01, 0x02, 0x04
# sense keys
NO_SENSE, NOT_READY, ILLEGAL_REQUEST, UNIT_ATTENTION = 0x0, 0x2, 0x5, 0x6
# additional sense codes
ASC_INVALID_OPCODE, ASC_LBA_OUT_OF_RANGE, ASC_INVALID_FIELD = 0x20, 0x21, 0x24
ASC_MEDIUM_CHANGED, ASC_SAVING_NOT_SUPPORTED = 0x28, 0x39
ASC_MEDIUM_NOT_PRESENT, ASC_REMOVAL_PREVENTED = 0x3A, 0x53

SCSI_NAMES = {0x00: "TEST UNIT READY", 0x03: "REQUEST SENSE", 0x12: "INQUIRY",
              0x1A: "MODE SENSE(6)", 0x1B: "START STOP UNIT", 0x1E: "PREVENT ALLOW MEDIUM REMOVAL",
              0x25: "READ CAPACITY", 0x28: "READ(10)", 0x2B: "SEEK(10)", 0x43: "READ TOC",
              0x46: "GET CONFIGURATION", 0x4A: "GET EVENT STATUS NOTIFICATION",
              0x5A: "MODE SENSE(10)", 0xA8: "READ(12)", 0xBB: "SET CD SPEED"}

# commands that neither report a pending unit attention nor need it cleared
NO_UA = (0x03, 0x12, 0x46, 0x4A)


def be16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def be32(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 4], "big")


def lba_to_msf(lba: int) -> tuple[int, int, int]:
    f = lba + 150
    return f // (75 * 60), (f // 75) % 60, f % 75


class ATAPICDROM(IDEDevice):
    kind = "atapi"
    SIGNATURE = (0x14, 0xEB)
    RESET_STATUS = 0                      # DRDY is not set after a reset (as QEMU)

    COMMANDS = {0x00: "nop", 0xA0: "packet", 0xA1: "identify_packet", 0x08: "device_reset",
                0xEC: "identify_device", 0x20: "identify_device", 0x21: "identify_device",
                0xEF: "set_features", 0xE5: "check_power", 0xE0: "power", 0xE1: "power",
                0xE2: "power", 0xE3: "power", 0xE6: "power"}

    def __init__(self, image=None, model: str = "AERO CD-ROM", serial: str = "AERO-CD-0001",
                 firmware: str = "1.0", vendor: str = "AERO", product: str = "CD-ROM"):
        if image is not None and image.sector_size != CD_SECTOR:
            raise ValueError(f"{image.label}: a CD-ROM image needs 2048-byte sectors")
        super().__init__(model, serial, firmware)
        self.vendor = vendor
        self.product = product
        self.image = image                # the disc in the drive (None: no disc)
        self.tray_image = image           # the disc on the tray (ejected discs stay there)
        self.tray_open = False
        self.prevent = False
        self.sense = (NO_SENSE, 0, 0)
        self.unit_attention = image is not None
        self.media_event = 2 if image is not None else 0    # NewMedia
        self.power = "active"
        self._reset_packet()
        self.power_on()

    def _reset_packet(self) -> None:
        self.packet_dma = False
        self.byte_limit = 0
        self.cdb = b""
        self.reply_data = b""
        self.reply_pos = 0

    def _stop_transfers(self) -> None:
        super()._stop_transfers()
        if hasattr(self, "reply_data"):
            self.reply_data = b""
            self.reply_pos = 0

    # -- host side: media ----------------------------------------------------------------------
    def insert(self, image) -> None:
        """Put a disc in the drive (the tray closes): the guest sees a unit attention and a
        NewMedia event."""
        if image is not None and image.sector_size != CD_SECTOR:
            raise ValueError(f"{image.label}: a CD-ROM image needs 2048-byte sectors")
        self.image = self.tray_image = image
        self.tray_open = False
        if image is not None:
            self.unit_attention = True
            self.media_event = 2

    def eject(self) -> bool:
        """Open the tray (refused while the guest prevents medium removal)."""
        if self.prevent:
            self.media_event = 1                        # EjectRequest
            return False
        had = self.image is not None
        self.image = None
        self.tray_open = True
        if had:
            self.media_event = 3                        # MediaRemoval
        return True

    @property
    def sectors(self) -> int:
        return 0 if self.image is None else self.image.sectors

    # -- ATA commands --------------------------------------------------------------------------
    def _cmd_identify_device(self, cmd: int) -> None:
        # a PACKET device aborts IDENTIFY DEVICE and READ SECTORS with its signature in place
        self.set_signature()
        self.abort()

    def _cmd_device_reset(self, cmd: int) -> None:
        self.soft_reset()               # no INTRQ

    def _cmd_set_features(self, cmd: int) -> None:
        if self.feature in (0x03, 0x02, 0x82, 0x66, 0xCC, 0xAA, 0x55):
            self.complete()
        else:
            self.abort()

    def _cmd_power(self, cmd: int) -> None:
        self.power = "standby" if cmd in (0xE0, 0xE2, 0xE6) else "idle"
        self.complete()

    def _cmd_check_power(self, cmd: int) -> None:
        self.nsector = {"standby": 0x00, "idle": 0x80}.get(self.power, 0xFF)
        self.complete()

    def _cmd_identify_packet(self, cmd: int) -> None:
        self.pio_in(self.identify_data(), "done")
        self.raise_irq()

    def identify_data(self) -> bytes:
        """The 512-byte IDENTIFY PACKET DEVICE block (ATA/ATAPI-6 Table 29)."""
        w = [0] * 256
        w[0] = 0x85C0       # ATAPI, CD-ROM (05h), removable, accelerated DRQ, 12-byte packets
        put_string(w, 10, self.serial, 20)
        put_string(w, 23, self.firmware, 8)
        put_string(w, 27, self.model, 40)
        w[49] = 0x0B00      # IORDY supported, LBA, DMA
        w[50] = 0x4000
        w[53] = 0x0006      # words 64-70 and 88 valid
        w[62] = 0x0007
        w[63] = 0x0007
        w[64] = 0x0003
        w[65], w[66], w[67], w[68] = 120, 120, 120, 120
        w[71], w[72] = 30, 30
        w[80] = 0x001E      # ATA/ATAPI-1 to -4
        w[82] = 0x4214      # NOP, DEVICE RESET, PACKET, removable media
        w[83] = 0x4000
        w[84] = 0x4000
        w[85] = 0x4214
        w[86] = 0x0000
        w[87] = 0x4000
        w[88] = 0x003F
        w[93] = self.reset_result()
        return finish_identify(w)

    # -- the PACKET protocol -------------------------------------------------------------------
    def _cmd_packet(self, cmd: int) -> None:
        self.packet_dma = bool(self.feature & 1)
        self.byte_limit = self.lbam | (self.lbah << 8)
        self.nsector = (self.nsector & 0xF8) | CoD
        self.pio_out(12, "packet")

    def _after_packet(self) -> None:
        self.cdb = bytes(self.buf)
        self.scsi(self.cdb)

    def _ireason(self, bits: int) -> None:
        self.nsector = (self.nsector & 0xF8) | bits

    def good(self) -> None:
        self.error = 0
        self._ireason(IO | CoD)
        self.complete(DRDY | DSC)

    def check_condition(self, key: int, asc: int, ascq: int = 0) -> None:
        self.sense = (key, asc, ascq)
        self._stop_transfers()
        self.error = key << 4
        self.status = DRDY | ERR
        self._ireason(IO | CoD)
        self.raise_irq()

    def reply(self, data: bytes, alloc: int | None = None) -> None:
        """Send ``data`` (cut to the allocation length) to the host in the data-in phase."""
        if alloc is not None:
            data = data[:alloc]
        data = bytes(data)
        if not data:
            self.good()
            return
        if self.packet_dma:
            self.start_dma({"write": False}, data)
            return
        self.reply_data = data
        self.reply_pos = 0
        self._send_chunk()

    def _send_chunk(self) -> None:
        left = len(self.reply_data) - self.reply_pos
        limit = self.byte_limit
        if limit == 0 or limit == 0xFFFF:
            limit = 0xFFFE
        n = min(left, limit)
        if n < left and n & 1:
            n -= 1                                      # only the last block may be odd
        p = self.reply_pos
        chunk = self.reply_data[p:p + n]
        self.reply_pos = p + n
        self.lbam, self.lbah = n & 0xFF, (n >> 8) & 0xFF
        self._ireason(IO)
        self.pio_in(chunk, "chunk")
        self.raise_irq()

    def _after_chunk(self) -> None:
        if self.reply_pos < len(self.reply_data):
            self._send_chunk()
        else:
            self.reply_data = b""
            self.reply_pos = 0
            self.good()

    def dma_complete(self) -> None:
        self.dma = None
        self.dma_buf = bytearray()
        self.dma_done = 0
        self.good()

    # -- SCSI / MMC commands -------------------------------------------------------------------
    def scsi(self, cdb: bytes) -> None:
        op = cdb[0]
        self.power = "active"
        if op != 0x03:
            self.sense = (NO_SENSE, 0, 0)
        if op not in NO_UA and self.unit_attention:
            self.unit_attention = False
            self.check_condition(UNIT_ATTENTION, ASC_MEDIUM_CHANGED)
            return
        handler = getattr(self, "_scsi_%02x" % op, None)
        if handler is None:
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_OPCODE)
            return
        handler(cdb)

    def _need_medium(self) -> bool:
        if self.image is None:
            self.check_condition(NOT_READY, ASC_MEDIUM_NOT_PRESENT)
            return False
        return True

    def _scsi_00(self, cdb):                            # TEST UNIT READY
        if self._need_medium():
            self.good()

    def _scsi_03(self, cdb):                            # REQUEST SENSE
        key, asc, ascq = self.sense
        if key == NO_SENSE and self.unit_attention:
            key, asc, ascq = UNIT_ATTENTION, ASC_MEDIUM_CHANGED, 0
            self.unit_attention = False
        data = bytearray(18)
        data[0] = 0x70
        data[2] = key
        data[7] = 10
        data[12] = asc
        data[13] = ascq
        self.sense = (NO_SENSE, 0, 0)
        self.reply(data, cdb[4])

    def _scsi_12(self, cdb):                            # INQUIRY
        if cdb[1] & 1 or cdb[2]:
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            return
        data = bytearray(36)
        data[0] = 0x05                                  # CD/DVD device
        data[1] = 0x80                                  # removable medium
        data[2] = 0x00
        data[3] = 0x21                                  # ATAPI, response data format 1
        data[4] = 31
        data[8:16] = self.vendor.encode()[:8].ljust(8)
        data[16:32] = self.product.encode()[:16].ljust(16)
        data[32:36] = self.firmware.encode()[:4].ljust(4)
        self.reply(data, be16(cdb, 3))

    def _scsi_1b(self, cdb):                            # START STOP UNIT
        loej, start = cdb[4] & 2, cdb[4] & 1
        if loej:
            if start:
                if self.tray_open:
                    self.tray_open = False
                    self.image = self.tray_image
                    if self.image is not None:
                        self.media_event = 2
                        self.unit_attention = True      # not ready to ready change
            else:
                if self.prevent:
                    self.check_condition(ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED, 0x02)
                    return
                if self.image is not None:
                    self.media_event = 3
                self.image = None
                self.tray_open = True
        self.good()

    def _scsi_1e(self, cdb):                            # PREVENT ALLOW MEDIUM REMOVAL
        self.prevent = bool(cdb[4] & 1)
        self.good()

    def _scsi_25(self, cdb):                            # READ CAPACITY
        if not self._need_medium():
            return
        self.reply((self.sectors - 1).to_bytes(4, "big") + CD_SECTOR.to_bytes(4, "big"))

    def _read(self, lba: int, count: int) -> None:
        if not self._need_medium():
            return
        if lba + count > self.sectors:
            self.check_condition(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
            return
        if count == 0:
            self.good()
            return
        self.reply(self.image.read(lba, count))

    def _scsi_28(self, cdb):                            # READ(10)
        self._read(be32(cdb, 2), be16(cdb, 7))

    def _scsi_a8(self, cdb):                            # READ(12)
        self._read(be32(cdb, 2), be32(cdb, 6))

    def _scsi_2b(self, cdb):                            # SEEK(10)
        if not self._need_medium():
            return
        if be32(cdb, 2) >= self.sectors:
            self.check_condition(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
            return
        self.good()

    def _scsi_bb(self, cdb):                            # SET CD SPEED
        self.good()

    def _toc_address(self, lba: int, msf: bool) -> bytes:
        if msf:
            m, s, f = lba_to_msf(lba)
            return bytes([0, m, s, f])
        return lba.to_bytes(4, "big")

    def _scsi_43(self, cdb):                            # READ TOC/PMA/ATIP
        if not self._need_medium():
            return
        msf = bool(cdb[1] & 2)
        fmt = cdb[2] & 0x0F
        if fmt == 0 and cdb[9] >> 6:
            fmt = cdb[9] >> 6                           # SFF-8020i format field
        start = cdb[6]
        alloc = be16(cdb, 7)
        if fmt == 0:
            if start > 1 and start != 0xAA:
                self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
                return
            body = bytearray([1, 1])                    # first and last track
            if start <= 1:
                body += bytes([0, 0x14, 1, 0]) + self._toc_address(0, msf)
            body += bytes([0, 0x14, 0xAA, 0]) + self._toc_address(self.sectors, msf)
        elif fmt == 1:
            body = bytearray([1, 1]) + bytes([0, 0x14, 1, 0]) + self._toc_address(0, msf)
        else:
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            return
        self.reply(len(body).to_bytes(2, "big") + bytes(body), alloc)

    def _mode_pages(self, page: int, pc: int) -> bytes | None:
        def page01():
            p = bytearray([0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0])
            return p
        def page2a():
            p = bytearray(22)
            p[0], p[1] = 0x2A, 0x14                     # MMC-2 layout (as QEMU)
            p[2] = 0x00                 # reads CD-ROM media only (no CD-R/RW, DVD)
            p[3] = 0x00                 # writes nothing
            p[4] = 0x71                 # audio play, mode 2 form 1/2, multi-session
            p[5] = 0x00
            p[6] = 0x29 | (0x02 if self.prevent else 0)   # tray, eject, lock (+ state)
            p[7] = 0x00
            p[8:10] = (704).to_bytes(2, "big")          # 4x, KB/s
            p[10:12] = (256).to_bytes(2, "big")         # volume levels
            p[12:14] = (512).to_bytes(2, "big")         # buffer, KB
            p[14:16] = (704).to_bytes(2, "big")
            return p
        pages = {0x01: page01, 0x2A: page2a}
        if page == 0x3F:
            chosen = [pages[k]() for k in sorted(pages)]
        elif page in pages:
            chosen = [pages[page]()]
        else:
            return None
        if pc == 1:                                     # changeable values: none
            chosen = [bytes(p[:2]) + bytes(len(p) - 2) for p in chosen]
        return b"".join(bytes(p) for p in chosen)

    def _medium_type(self) -> int:
        if self.tray_open:
            return 0x71
        return 0x70 if self.image is None else 0x01

    def _mode_sense(self, cdb, ten: bool) -> None:
        pc, page = cdb[2] >> 6, cdb[2] & 0x3F
        if pc == 3:
            self.check_condition(ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED)
            return
        body = self._mode_pages(page, pc)
        if body is None:
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            return
        if ten:
            hdr = (len(body) + 6).to_bytes(2, "big") + bytes([self._medium_type(), 0, 0, 0,
                                                              0, 0])
            self.reply(hdr + body, be16(cdb, 7))
        else:
            hdr = bytes([len(body) + 3, self._medium_type(), 0, 0])
            self.reply(hdr + body, cdb[4])

    def _scsi_5a(self, cdb):                            # MODE SENSE(10)
        self._mode_sense(cdb, True)

    def _scsi_1a(self, cdb):                            # MODE SENSE(6)
        self._mode_sense(cdb, False)

    def _features(self):
        """(feature code, flags byte without 'current', additional data, current)."""
        media = self.image is not None
        return [
            (0x0000, 0x02, bytes([0x00, 0x08, 0x01 if media else 0x00, 0]), True),
            (0x0001, 0x06, (2).to_bytes(4, "big") + bytes(4), True),        # ATAPI interface
            (0x0002, 0x06, bytes([0x02, 0, 0, 0]), True),                   # Morphing (async)
            (0x0003, 0x02, bytes([0x29, 0, 0, 0]), True),                   # Removable Medium
            (0x0010, 0x00, CD_SECTOR.to_bytes(4, "big") + bytes([0, 1, 0, 0]), media),
            (0x001E, 0x08, bytes([0, 0, 0, 0]), media),                     # CD Read
        ]

    def _scsi_46(self, cdb):                            # GET CONFIGURATION
        rt = cdb[1] & 3
        first = be16(cdb, 2)
        alloc = be16(cdb, 7)
        if rt == 3:
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            return
        out = bytearray()
        for code, flags, data, current in self._features():
            if rt == 2 and code != first:
                continue
            if code < first or (rt == 1 and not current):
                continue
            out += code.to_bytes(2, "big") + bytes([flags | (1 if current else 0), len(data)])
            out += data
        profile = 0x0008 if self.image is not None else 0x0000
        hdr = (len(out) + 4).to_bytes(4, "big") + bytes(2) + profile.to_bytes(2, "big")
        self.reply(hdr + out, alloc)

    def _scsi_4a(self, cdb):                            # GET EVENT STATUS NOTIFICATION
        if not cdb[1] & 1:                              # only polled operation
            self.check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            return
        alloc = be16(cdb, 7)
        if cdb[4] & 0x10:                               # media class requested
            event = self.media_event
            self.media_event = 0
            status = (0x02 if self.image is not None else 0) | (0x01 if self.tray_open else 0)
            data = bytes([0, 4, 0x04, 0x10, event, status, 0, 0])
        else:
            data = bytes([0, 0, 0x80, 0x10])            # NEA: no supported class requested
        self.reply(data, alloc)

    # -- inspection and snapshots --------------------------------------------------------------
    def summary(self) -> dict:
        key, asc, ascq = self.sense
        disc = "tray open" if self.tray_open else (
            "no disc" if self.image is None else
            f"{self.image.label}, {self.image.sectors} x 2048")
        return {
            "device": f"ATAPI CD-ROM {self.model!r}: {disc}"
                      f"{', removal prevented' if self.prevent else ''}",
            "registers": self.regs_summary(),
            "last packet": (" ".join(f"{b:02X}" for b in self.cdb) +
                            f" ({SCSI_NAMES.get(self.cdb[0], 'unsupported')})"
                            if self.cdb else "none"),
            "sense": f"key {key:X} ASC {asc:02X} ASCQ {ascq:02X}"
                     f"{', unit attention pending' if self.unit_attention else ''}",
            "transfer": (f"PIO {self.reply_pos}/{len(self.reply_data)} bytes"
                         if self.reply_data else "DMA pending" if self.dma else "idle"),
        }

    _SETTINGS = ("packet_dma", "byte_limit", "reply_pos", "tray_open", "prevent",
                 "unit_attention", "media_event", "power")

    def get_state(self) -> dict:
        st = super().get_state()
        st.update({k: getattr(self, k) for k in self._SETTINGS})
        st["sense"] = list(self.sense)
        st["cdb"] = self.cdb.hex()
        st["reply_data"] = self.reply_data.hex()
        st["disc"] = None if self.image is None else self.image.get_state()
        st["disc_in_drive"] = self.image is not None
        return st

    def set_state(self, st: dict) -> None:
        super().set_state(st)
        for k in self._SETTINGS:
            setattr(self, k, st[k])
        self.sense = tuple(st["sense"])
        self.cdb = bytes.fromhex(st["cdb"])
        self.reply_data = bytes.fromhex(st["reply_data"])
        if st["disc_in_drive"]:
            if self.tray_image is None:
                raise ValueError("cdrom: snapshot has a disc, this drive has none")
            self.image = self.tray_image
            self.image.set_state(st["disc"])
        else:
            self.image = None
