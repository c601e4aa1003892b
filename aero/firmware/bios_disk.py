"""INT 13h and the boot loaders of the Aero BIOS (a mixin of ``aero.firmware.bios.AeroBIOS``).

Drives are read and written through the ``DiskImage`` objects directly (high-level emulation:
no FDC/IDE port traffic), so the copy-on-write overlay applies: the user's file is written only
when the machine is configured writable.  Drive numbers: 00h/01h floppies A:/B:, 80h/81h the IDE
primary master/slave, E0h the CD-ROM (secondary master; 2048-byte sectors, EDD functions only).
After an El Torito boot in floppy emulation the image on the CD is drive 00h (A: becomes 01h);
in hard-disk emulation it is 80h (the hard disks move up by one).

CHS geometry: floppies from the image format; hard disks from the ATA IDENTIFY geometry
(``ATADisk.geometry``; AH=08h reports at most 1024 cylinders); El Torito hard-disk emulation
from the image's partition table.

Functions: 00h reset, 01h status, 02h read, 03h write, 04h verify, 05h format (floppy: fills
the track with F6h), 08h parameters (floppy: BL type and ES:DI the diskette parameter table),
0Ch/0Dh/10h/11h/14h/47h acknowledged, 15h type, 16h change line (never changed), 17h/18h,
41h-44h, 48h (EDD 3.0 result buffer, DPTE pointer FFFF:FFFFh), 4B00h/4B01h (El Torito
terminate/status).  Status codes (AH): 01h bad command, 03h write-protected, 04h sector not
found, 0Ch media type, 80h timeout/no media, AAh drive not ready; CF set on error; the last
status is kept in BDA 441h (floppy) / 474h (hard disk).

El Torito (Bootable CD-ROM Format Specification 1.0): the boot record volume descriptor at
sector 17, the boot catalog, the validation entry (header ID 01h, key 55h AAh, words summing to
zero), the initial/default entry (boot indicator 88h); media types 0 (no emulation: load the
virtual sector count (512-byte) at the load segment, default 07C0h, and enter it as SeaBIOS
does, with the segment canonicalised: 07C0h:0000 is entered as 0000:7C00),
1/2/3 (1.2/1.44/2.88 MB floppy emulation) and 4 (hard-disk emulation).
"""

from __future__ import annotations

import struct

ERR_BAD_CMD, ERR_WP, ERR_NOT_FOUND, ERR_MEDIA, ERR_TIMEOUT, ERR_NOT_READY = (
    0x01, 0x03, 0x04, 0x0C, 0x80, 0xAA)
FLOPPY_TYPE = {1: 0x01, 2: 0x02, 3: 0x03, 4: 0x04, 5: 0x06}     # CMOS type -> INT 13h BL


class Drive:
    """A BIOS drive: 512-byte (or 2048-byte for the CD) sectors over a DiskImage, with CHS."""

    def __init__(self, kind, image, cyls, heads, spt, sector_size=512, offset=0, count=None,
                 wp=False, fdc_drive=None):
        self.kind = kind                    # "floppy", "hd", "cd"
        self.image = image
        self.cyls, self.heads, self.spt = cyls, heads, spt
        self.sector_size = sector_size
        self.offset = offset                # emulated drives: byte offset in a CD image
        self.count = count if count is not None else image.sectors
        self.wp = wp
        self.fdc_drive = fdc_drive

    @property
    def emulated(self) -> bool:
        return self.image.sector_size != self.sector_size

    def read(self, lba: int, n: int) -> bytes:
        if self.emulated:
            ss = self.image.sector_size
            start = self.offset + lba * self.sector_size
            first, last = start // ss, (start + n * self.sector_size - 1) // ss
            data = self.image.read(first, last - first + 1)
            k = start - first * ss
            return data[k: k + n * self.sector_size]
        return self.image.read(lba, n)

    def write(self, lba: int, data: bytes) -> None:
        self.image.write(lba, data)


class DiskServices:
    # ------------------------------------------------------------------------------------------
    # drive map
    # ------------------------------------------------------------------------------------------
    def build_drive_map(self, emulation=None) -> None:
        m = self.m
        drives = {}
        floppies = []
        for unit, d in enumerate(m.fdc.drives[:2]):
            if d.image is not None:
                g = d.image.geometry
                floppies.append(Drive("floppy", d.image, g.cylinders, g.heads, g.sectors,
                                      wp=d.write_protected, fdc_drive=d))
        hds = []
        for dev in m.ide[0].devices:
            if dev is not None and hasattr(dev, "geometry") and dev.image is not None:
                c, h, s = dev.geometry
                hds.append(Drive("hd", dev.image, c, h, s))
        if emulation is not None:
            if emulation.kind == "floppy":
                floppies.insert(0, emulation)
            else:
                hds.insert(0, emulation)
        for i, d in enumerate(floppies[:2]):
            drives[i] = d
        for i, d in enumerate(hds[:4]):
            drives[0x80 + i] = d
        cd = m.ide[1].devices[0] if m.ide[1].devices else None
        if cd is not None and getattr(cd, "image", None) is not None:
            img = cd.image
            drives[0xE0] = Drive("cd", img, 0, 0, 0, sector_size=img.sector_size)
        self.drives = drives
        self.set_bda_b(0x75, len(hds[:4]))
        eq = self.bda_w(0x10) & ~0x00C1
        if floppies:
            eq |= 0x0001 | ((min(2, len(floppies)) - 1) << 6)
        self.set_bda_w(0x10, eq)

    def _status(self, drive: int, code: int) -> None:
        self.disk_status[drive] = code
        self.set_bda_b(0x41 if drive < 0x80 else 0x74, code)
        self.set_ah(code)
        self.set_cf(code != 0)

    # ------------------------------------------------------------------------------------------
    # boot loaders
    # ------------------------------------------------------------------------------------------
    def load_floppy_boot(self):
        d = self.drives.get(0x00)
        if d is None or d.kind != "floppy":
            return None
        sector = d.read(0, 1)
        self.write_mem(0x7C00, sector)
        self.message("Booting from Floppy...")
        return 0x0000, 0x7C00, 0x00

    def load_hd_boot(self):
        d = self.drives.get(0x80)
        if d is None or d.kind != "hd":
            return None
        sector = d.read(0, 1)
        if sector[510:512] != b"\x55\xAA":
            self.message("Boot failed: not a bootable disk")
            return None
        self.write_mem(0x7C00, sector)
        self.message("Booting from Hard Disk...")
        return 0x0000, 0x7C00, 0x80

    def load_cd_boot(self):
        """El Torito: returns (segment, offset, drive) or None."""
        cd = self.drives.get(0xE0)
        if cd is None:
            return None
        img = cd.image
        try:
            brvd = img.read(17, 1)
        except (IndexError, OSError):
            return None
        if brvd[0] != 0 or brvd[1:6] != b"CD001" or brvd[7:30] != b"EL TORITO SPECIFICATION":
            self.message("Boot failed: could not read from CDROM (no boot record)")
            return None
        cat_lba = struct.unpack_from("<I", brvd, 0x47)[0]
        try:
            cat = img.read(cat_lba, 1)
        except IndexError:
            return None
        val = cat[:32]
        if val[0] != 0x01 or val[0x1E:0x20] != b"\x55\xAA" or sum(
                struct.unpack("<16H", val)) & 0xFFFF:
            self.message("Boot failed: bad El Torito validation entry")
            return None
        ent = cat[32:64]
        if ent[0] != 0x88:
            self.message("Boot failed: the default entry is not bootable")
            return None
        media = ent[1] & 0x0F
        load_seg = struct.unpack_from("<H", ent, 2)[0] or 0x07C0
        count = struct.unpack_from("<H", ent, 6)[0]
        rba = struct.unpack_from("<I", ent, 8)[0]
        info = {"media": media, "load_segment": load_seg, "count": count, "lba": rba,
                "drive": 0xE0}
        if media == 0:
            n = max(1, count)
            data = cd.read(rba, (n * 512 + 2047) // 2048)[: n * 512]
            self.write_mem(load_seg << 4, data)
            self.cd_boot = info
            self.message("Booting from DVD/CD...")
            return self._canonical(load_seg, 0xE0)
        sizes = {1: (80, 2, 15), 2: (80, 2, 18), 3: (80, 2, 36)}
        if media in sizes:
            c, h, s = sizes[media]
            emu = Drive("floppy", img, c, h, s, offset=rba * 2048, count=c * h * s, wp=True)
            info["drive"] = 0x00
        elif media == 4:
            mbr = Drive("hd", img, 1, 1, 1, offset=rba * 2048, count=1).read(0, 1)
            end_h, end_s = mbr[0x1BE + 5], mbr[0x1BE + 6] & 0x3F
            heads, spt = (end_h + 1) or 1, end_s or 63
            total = (img.sectors * 2048 - rba * 2048) // 512
            emu = Drive("hd", img, max(1, total // (heads * spt)), heads, spt,
                        offset=rba * 2048, count=total, wp=True)
            info["drive"] = 0x80
        else:
            return None
        self.build_drive_map(emu)
        sector = emu.read(0, 1)
        self.write_mem(load_seg << 4, sector)
        self.cd_boot = info
        self.message("Booting from DVD/CD (emulation)...")
        return self._canonical(load_seg, info["drive"])

    @staticmethod
    def _canonical(seg: int, drive: int):
        """The entry point seg:0 as SeaBIOS enters it: 07C0h:0 becomes 0000:7C00."""
        return seg & 0xF000, (seg & 0x0FFF) << 4, drive

    # ------------------------------------------------------------------------------------------
    # INT 13h
    # ------------------------------------------------------------------------------------------
    def int13(self, retry=False) -> bool:
        ah, dl = self.ah, self.reg("dl")
        d = self.drives.get(dl)
        if ah == 0x4B:
            return self._eltorito_status()
        if d is None:
            if ah == 0x15 and dl < 0x80:
                self.set_ah(0)                                 # no such drive
                self.set_cf(False)
                return False
            if ah == 0x08 and dl >= 0x80 and not any(k >= 0x80 and k < 0xE0
                                                     for k in self.drives):
                self._status(dl, ERR_BAD_CMD)
                return False
            self._status(dl, ERR_BAD_CMD if dl >= 0x80 else ERR_TIMEOUT)
            return False
        if ah == 0x00 or ah == 0x0D:
            self._status(dl, 0)
        elif ah == 0x01:
            st = self.disk_status.get(dl, 0)
            self.set_ah(st)
            self.set_cf(st != 0)
        elif ah in (0x02, 0x03, 0x04):
            self._chs_io(d, dl, ah)
        elif ah == 0x05:
            if d.kind != "floppy":
                self._status(dl, ERR_BAD_CMD)
            elif d.wp or d.emulated:
                self._status(dl, ERR_WP)
            else:
                c, h = self.reg("ch"), self.reg("dh")
                first = (c * d.heads + h) * d.spt
                d.write(first, b"\xF6" * (512 * d.spt))
                self._status(dl, 0)
        elif ah == 0x08:
            self._params(d, dl)
        elif ah in (0x0C, 0x10, 0x11, 0x14, 0x47):
            self._status(dl, 0)
        elif ah == 0x15:
            if d.kind == "floppy":
                self.set_ah(0x02)
            else:
                total = d.count
                self.setreg("cx", (total >> 16) & 0xFFFF)
                self.setreg("dx", total & 0xFFFF)
                self.set_ah(0x03)
            self.set_cf(False)
        elif ah == 0x16:
            self._status(dl, 0)
        elif ah in (0x17, 0x18):
            if d.kind != "floppy":
                self._status(dl, ERR_BAD_CMD)
            else:
                if ah == 0x18:
                    self.setreg("es", 0xF000)
                    self.setreg("di", self.off["diskette_params"])
                self._status(dl, 0)
        elif ah == 0x41:
            if self.reg("bx") != 0x55AA or d.kind == "floppy":
                self._status(dl, ERR_BAD_CMD)
            else:
                self.setreg("bx", 0xAA55)
                self.setreg("cx", 0x0007)
                self.set_ah(0x30)
                self.set_cf(False)
        elif ah in (0x42, 0x43, 0x44):
            self._edd_io(d, dl, ah)
        elif ah == 0x48:
            self._edd_params(d, dl)
        else:
            self._status(dl, ERR_BAD_CMD)
        return False

    def _chs_io(self, d: Drive, dl: int, ah: int) -> None:
        if d.kind == "cd":
            self._status(dl, ERR_BAD_CMD)
            return
        n = self.al
        cx = self.reg("cx")
        cyl = (cx >> 8) | ((cx & 0xC0) << 2)
        sec = cx & 0x3F
        head = self.reg("dh")
        if n == 0 or sec == 0 or sec > d.spt or head >= d.heads:
            self.set_al(0)
            self._status(dl, ERR_NOT_FOUND if n else ERR_BAD_CMD)
            return
        lba = (cyl * d.heads + head) * d.spt + sec - 1
        avail = max(0, d.count - lba)
        todo = min(n, avail)
        if ah == 0x03 and (d.wp or d.emulated):
            self.set_al(0)
            self._status(dl, ERR_WP)
            return
        addr = self.lin(self.reg("es"), self.reg("bx"))
        if todo:
            if ah == 0x02:
                self.write_mem(addr, d.read(lba, todo))
            elif ah == 0x03:
                d.write(lba, self.read_mem(addr, todo * 512))
        self.set_al(todo)
        self._status(dl, 0 if todo == n else ERR_NOT_FOUND)

    def _params(self, d: Drive, dl: int) -> None:
        if d.kind == "cd":
            self._status(dl, ERR_BAD_CMD)
            return
        cyl = min(d.cyls, 1024) - 1
        self.setreg("ch", cyl & 0xFF)
        self.setreg("cl", (d.spt & 0x3F) | ((cyl >> 2) & 0xC0))
        self.setreg("dh", d.heads - 1)
        if d.kind == "floppy":
            self.setreg("dl", sum(1 for k in self.drives if k < 0x80))
            g = getattr(d.image, "geometry", None)
            cmos = g.cmos_type if g is not None else {15: 2, 18: 4, 36: 5}.get(d.spt, 4)
            self.setreg("bl", FLOPPY_TYPE.get(cmos, 0x04))
            self.setreg("es", 0xF000)
            self.setreg("di", self.off["diskette_params"])
        else:
            self.setreg("dl", sum(1 for k in self.drives if 0x80 <= k < 0xE0))
        self.set_al(0)
        self._status(dl, 0)

    def _packet(self):
        a = self.lin(self.reg("ds"), self.reg("si"))
        size = self.rb(a)
        count = self.rw(a + 2)
        off, seg = self.rw(a + 4), self.rw(a + 6)
        lba = self.rd(a + 8) | (self.rd(a + 12) << 32)
        if off == 0xFFFF and seg == 0xFFFF and size >= 0x18:
            buf = self.rd(a + 0x10) | (self.rd(a + 0x14) << 32)
        else:
            buf = self.lin(seg, off)
        return a, size, count, buf, lba

    def _edd_io(self, d: Drive, dl: int, ah: int) -> None:
        a, size, count, buf, lba = self._packet()
        if size < 0x10:
            self._status(dl, ERR_BAD_CMD)
            return
        if ah == 0x43 and (d.wp or d.emulated or d.kind == "cd"):
            self.ww(a + 2, 0)
            self._status(dl, ERR_WP)
            return
        avail = max(0, d.count - lba)
        todo = min(count, avail)
        ss = d.sector_size
        if todo:
            if ah == 0x42:
                data = d.read(lba, todo)
                if buf + len(data) <= 0x100000 or self.bus.a20:
                    self.write_mem(buf, data)
                else:
                    self.bus.write_bytes(buf, data)
            elif ah == 0x43:
                d.write(lba, self.bus.read_bytes(buf, todo * ss))
        self.ww(a + 2, todo)
        self._status(dl, 0 if todo == count else ERR_NOT_FOUND)

    def _edd_params(self, d: Drive, dl: int) -> None:
        a = self.lin(self.reg("ds"), self.reg("si"))
        bufsize = self.rw(a)
        if bufsize < 0x1A:
            self._status(dl, ERR_BAD_CMD)
            return
        if d.kind == "cd":
            flags, c, h, s = 0x0074, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
        else:
            flags, c, h, s = 0x0002, d.cyls, d.heads, d.spt
            if d.kind == "floppy":
                flags |= 0x0004
        out = struct.pack("<HHIIIQH", 0x1A, flags, c, h, s, d.count, d.sector_size)
        if bufsize >= 0x1E:
            out = struct.pack("<H", 0x1E) + out[2:] + struct.pack("<I", 0xFFFFFFFF)
        self.write_mem(a, out)
        self._status(dl, 0)

    def _eltorito_status(self) -> bool:
        al = self.al
        info = self.cd_boot
        if al not in (0x00, 0x01) or info is None:
            self.set_ah(ERR_BAD_CMD)
            self.set_cf(True)
            return False
        a = self.lin(self.reg("ds"), self.reg("si"))
        pkt = struct.pack("<BBBBIHHHHBBB", 0x13, info["media"], info["drive"], 0,
                          info["lba"], 0, 0, info["load_segment"], info["count"], 0, 0, 0)
        self.write_mem(a, pkt)
        self.set_ah(0)
        self.set_cf(False)
        return False
