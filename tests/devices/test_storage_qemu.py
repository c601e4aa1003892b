"""Storage devices against QEMU (something we did not write).

One script of port I/O (the way a driver talks to the 82077AA, the IDE channels, the ATAPI
CD-ROM and the PIIX bus master, with the 8237A and 8259A alongside) is

* compiled into a real-mode guest (NASM) that QEMU boots from a floppy under SeaBIOS; every
  value it reads is written to the debug console (port E9h), and
* replayed here through Aero's device models on the same disk images.

The two logs must agree, item by item, except for the items marked with a reason (identity
strings, power-on conventions where QEMU departs from the data sheets).  QEMU's log is kept
below (GOLDEN) so the comparison runs without QEMU; with qemu-system-i386 and nasm installed the
guest is rebuilt and rerun and its log must still equal GOLDEN.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from aero.clock import Clock
from aero.devices.atapi import ATAPICDROM
from aero.devices.base import IOBus, IRQLines
from aero.devices.disk import DiskImage
from aero.devices.dma import DMA8237
from aero.devices.fdc import FDC82077AA
from aero.devices.ide import ATADisk, BusMaster, IDEChannel
from aero.devices.pic import PIC
from aero.testing.fakecpu import FakeCPU

_CYCLE = bytes(range(256)) * 9
HD_SECTORS = 2048
CD_SECTORS = 40
BOOT_SECTORS = 36                     # boot sector + 35 sectors of script (cylinder 0)
BUF = 0x50000                         # insbuf target
BM_BASE = 0xC000


def hd_sector(lba: int) -> bytes:
    s = (lba * 5) & 0xFF
    return lba.to_bytes(4, "little") + _CYCLE[s:s + 508]


def cd_sector(lba: int) -> bytes:
    s = (lba * 11) & 0xFF
    return lba.to_bytes(4, "big") + _CYCLE[s:s + 2044]


def fd_sector(lba: int) -> bytes:
    s = (lba * 3) & 0xFF
    return b"FD" + lba.to_bytes(2, "little") + _CYCLE[s:s + 508]


# -- the script ---------------------------------------------------------------------------------
class Script:
    def __init__(self):
        self.ops = []

    def out(self, port, value, size=1):
        self.ops.append(("out", port, value, size))

    def inp(self, label, port, size=1, differs=None):
        self.ops.append(("in", port, size, label, differs))

    def wait(self, port, mask, value):
        self.ops.append(("wait", port, mask, value))

    def ins(self, label, port, words, differs=None):
        """Read ``words`` words from ``port``; log their 32-bit sum (label None: drop)."""
        self.ops.append(("ins", port, words, label, differs))

    def insbuf(self, port, words=256):
        self.ops.append(("insbuf", port, words))

    def logbuf(self, label, index, differs=None):
        self.ops.append(("logbuf", index, label, differs))

    def outs(self, port, words, seed, step):
        self.ops.append(("outs", port, words, seed, step))

    def poke32(self, phys, value):
        self.ops.append(("poke32", phys, value))

    def fill32(self, phys, count, seed, step):
        """``count`` dwords at ``phys``: seed, seed + step, ... (mod 2^32)."""
        self.ops.append(("fill32", phys, count, seed, step))

    def memsum(self, label, phys, nbytes, differs=None):
        self.ops.append(("memsum", phys, nbytes, label, differs))

    def pci_write(self, dev, fn, reg, value):
        self.ops.append(("pci", dev, fn, reg, value))

    # helpers
    def pic_init(self):
        for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFF),
                        (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01), (0xA1, 0xFF)):
            self.out(port, v)

    def fdc_cmd(self, *bs):
        for b in bs:
            self.wait(0x3F4, 0xC0, 0x80)
            self.out(0x3F5, b)

    def fdc_result(self, label, n):
        for i in range(n):
            self.wait(0x3F4, 0xC0, 0xC0)
            self.inp(f"{label}[{i}]", 0x3F5)

    def packet(self, label, cdb, limit, blocks, base=0x170):
        """PACKET with ``cdb``; ``blocks``: the DRQ data blocks expected (their words are
        summed); then the final status, interrupt reason and error."""
        cdb = bytes(cdb).ljust(12, b"\0")
        self.out(base + 6, 0xA0)
        self.out(base + 1, 0)
        self.out(base + 4, limit & 0xFF)
        self.out(base + 5, limit >> 8)
        self.out(base + 7, 0xA0)
        self.wait(base + 7, 0x88, 0x08)
        self.inp(f"{label} packet ireason", base + 2)
        for i in range(0, 12, 2):
            self.out(base, cdb[i] | cdb[i + 1] << 8, 2)
        for n, words in enumerate(blocks):
            self.wait(base + 7, 0x80, 0x00)
            self.inp(f"{label} block{n} status", base + 7)
            self.inp(f"{label} block{n} ireason", base + 2)
            self.inp(f"{label} block{n} count lo", base + 4)
            self.inp(f"{label} block{n} count hi", base + 5)
            if words <= 16:                             # small replies: every word
                for i in range(words):
                    self.inp(f"{label} block{n} word {i}", base, 2)
            else:
                self.ins(f"{label} block{n} sum", base, words)
        self.wait(base + 7, 0x80, 0x00)
        self.inp(f"{label} status", base + 7)
        self.inp(f"{label} ireason", base + 2)
        self.inp(f"{label} error", base + 1)


QEMU_CFG = ("QEMU's CONFIGURE defaults have EIS (implied seek) set; the 82077AA data sheet "
            "resets it to 0")
QEMU_CACHED = ("QEMU builds its IDENTIFY data once: words 54-58 do not follow INITIALIZE "
               "DEVICE PARAMETERS (its CHS translation does)")
QEMU_MULT = ("QEMU enables 16-sector multiple mode at reset; Aero keeps it disabled until "
             "SET MULTIPLE MODE (ATA-6: the default is vendor specific)")


def build_script() -> Script:
    s = Script()
    # normalise: IDE interrupts off and cleared, PICs re-initialised (IRR edges cleared)
    s.out(0x3F6, 0x0A)
    s.out(0x376, 0x0A)
    s.inp("ide0 status at start", 0x1F7, differs="whatever SeaBIOS left")
    s.inp("ide1 status at start", 0x177, differs="whatever SeaBIOS left")
    s.pic_init()

    # ---- primary channel: ATA hard disk ----
    s.out(0x1F6, 0xA0)              # SeaBIOS left device 1 selected; QEMU keeps DEV over SRST
    s.out(0x3F6, 0x0C)                                # SRST
    s.out(0x3F6, 0x08)
    s.wait(0x1F7, 0x80, 0x00)
    for i, name in enumerate(("error", "count", "lba low", "lba mid", "lba high"), 1):
        s.inp(f"ata srst {name}", 0x1F0 + i)
    s.inp("ata srst status", 0x1F7)
    s.out(0x1F6, 0xA0)
    s.out(0x1F7, 0xEC)                                # IDENTIFY DEVICE
    s.wait(0x1F7, 0x80, 0x00)
    s.out(0xA0, 0x0A)
    s.inp("ata identify IRR2", 0xA0)
    s.inp("ata identify status", 0x1F7)
    s.insbuf(0x1F0)
    for w in (0, 1, 3, 6, 47, 49, 53, 54, 55, 56, 57, 58, 60, 61, 83, 86, 100, 101):
        s.logbuf(f"identify word {w}", w)
    s.logbuf("identify word 59", 59, differs=QEMU_MULT)
    s.inp("ata identify status after", 0x1F7)

    def lba28(lba, count, cmd):
        s.out(0x1F6, 0xE0 | (lba >> 24))
        s.out(0x1F2, count)
        s.out(0x1F3, lba & 0xFF)
        s.out(0x1F4, (lba >> 8) & 0xFF)
        s.out(0x1F5, (lba >> 16) & 0xFF)
        s.out(0x1F7, cmd)

    s.pic_init()
    lba28(5, 2, 0x20)                                 # READ SECTORS
    for n in range(2):
        s.wait(0x1F7, 0x80, 0x00)
        s.inp(f"read sectors status {n}", 0x1F7)
        s.ins(f"read sectors sum {n}", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("read sectors final status", 0x1F7)
    s.out(0xA0, 0x0A)
    s.inp("read sectors IRR2", 0xA0)
    s.inp("read sectors count after", 0x1F2)
    s.inp("read sectors lba low after", 0x1F3)

    lba28(7, 1, 0x30)                                 # WRITE SECTORS
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("write sectors DRQ status", 0x1F7)
    s.outs(0x1F0, 256, 0x1234, 0x0101)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("write sectors final status", 0x1F7)
    lba28(6, 3, 0x20)
    for n in range(3):
        s.wait(0x1F7, 0x80, 0x00)
        s.ins(f"read back sum {n}", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)

    lba28(HD_SECTORS - 1, 2, 0x20)                    # the last sector, then beyond the end
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("out of range first status", 0x1F7)
    s.ins("out of range first block", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("out of range status", 0x1F7)
    s.inp("out of range error", 0x1F1, differs="QEMU reports ABRT; Aero IDNF (ATA-6 allows "
                                                "either)")
    s.inp("out of range lba low", 0x1F3)
    s.out(0x1F7, 0x50)                                # not a command
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("bad command status", 0x1F7)
    s.inp("bad command error", 0x1F1)

    s.out(0x1F2, 3)
    s.out(0x1F7, 0xC6)                                # SET MULTIPLE 3: not a power of two
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("set multiple 3 status", 0x1F7)
    s.out(0x1F2, 4)
    s.out(0x1F7, 0xC6)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("set multiple 4 status", 0x1F7)
    lba28(10, 6, 0xC4)                                # READ MULTIPLE
    for n, words in enumerate((1024, 512)):
        s.wait(0x1F7, 0x80, 0x00)
        s.inp(f"read multiple status {n}", 0x1F7)
        s.ins(f"read multiple sum {n}", 0x1F0, words)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("read multiple final status", 0x1F7)

    # LBA48 READ SECTORS EXT and the HOB read-back
    s.out(0x1F6, 0x40)                                # count 1, LBA 1000: high bytes first
    s.out(0x1F2, 0)
    s.out(0x1F3, 0)
    s.out(0x1F4, 0)
    s.out(0x1F5, 0)
    s.out(0x1F2, 1)
    s.out(0x1F3, 1000 & 0xFF)
    s.out(0x1F4, 1000 >> 8)
    s.out(0x1F5, 0)
    s.out(0x1F7, 0x24)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("read ext status", 0x1F7)
    s.ins("read ext sum", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("read ext lba low after", 0x1F3)
    s.inp("read ext lba mid after", 0x1F4)

    # CHS addressing with the default translation, then INITIALIZE DEVICE PARAMETERS
    s.out(0x1F6, 0xA2)
    s.out(0x1F2, 1)
    s.out(0x1F3, 5)
    s.out(0x1F4, 1)
    s.out(0x1F5, 0)
    s.out(0x1F7, 0x20)
    s.wait(0x1F7, 0x80, 0x00)
    s.ins("chs read sum", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.out(0x1F6, 0xA3)
    s.out(0x1F2, 17)
    s.out(0x1F7, 0x91)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("init params status", 0x1F7)
    s.out(0x1F6, 0xA2)
    s.out(0x1F2, 1)
    s.out(0x1F3, 9)
    s.out(0x1F4, 3)
    s.out(0x1F5, 0)
    s.out(0x1F7, 0x20)
    s.wait(0x1F7, 0x80, 0x00)
    s.ins("chs 4x17 read sum", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.out(0x1F6, 0xA0)
    s.out(0x1F7, 0xEC)
    s.wait(0x1F7, 0x80, 0x00)
    s.insbuf(0x1F0)
    for w in (54, 55, 56, 57, 58):
        s.logbuf(f"identify after init word {w}", w, differs=QEMU_CACHED if w < 58 else None)
    s.inp("identify after init status", 0x1F7)

    # bus-master DMA (PIIX function 1, BAR4 at BM_BASE)
    s.pci_write(1, 1, 0x20, BM_BASE | 1)
    s.pci_write(1, 1, 0x04, 0x0005)
    s.poke32(0x30000, 0x40000)
    s.poke32(0x30004, 0x80000000 | 1024)
    s.out(BM_BASE + 4, 0x30000, 4)
    s.out(BM_BASE + 2, 0x06)
    s.pic_init()
    lba28(20, 2, 0xC8)                                # READ DMA
    s.out(BM_BASE, 0x09)
    s.wait(BM_BASE + 2, 0x04, 0x04)
    s.inp("dma BMISTA", BM_BASE + 2)
    s.out(BM_BASE, 0x08)
    s.inp("dma status", 0x1F7)
    s.out(0xA0, 0x0A)
    s.inp("dma IRR2", 0xA0)
    s.memsum("dma memory sum", 0x40000, 1024)
    s.fill32(0x41000, 128, 0x0BADF00D * 3 & 0xFFFFFFFF, 0x0BADF00D)   # WRITE DMA source
    s.poke32(0x30000, 0x41000)
    s.poke32(0x30004, 0x80000000 | 512)
    s.out(BM_BASE + 2, 0x06)
    lba28(30, 1, 0xCA)
    s.out(BM_BASE, 0x01)
    s.wait(BM_BASE + 2, 0x04, 0x04)
    s.inp("write dma BMISTA", BM_BASE + 2)
    s.out(BM_BASE, 0x00)
    s.inp("write dma status", 0x1F7)
    lba28(30, 1, 0x20)
    s.wait(0x1F7, 0x80, 0x00)
    s.ins("write dma read back", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)

    # HOB read-back of the 48-bit registers
    s.out(0x1F2, 0x12)
    s.out(0x1F2, 0x34)
    s.out(0x1F3, 0x56)
    s.out(0x1F3, 0x78)
    s.out(0x3F6, 0x88)
    s.inp("hob count", 0x1F2)
    s.inp("hob lba low", 0x1F3)
    s.out(0x3F6, 0x08)
    s.inp("count", 0x1F2)
    s.inp("lba low", 0x1F3)

    def nondata(label, cmd, regs=()):
        s.out(0x1F7, cmd)
        s.wait(0x1F7, 0x80, 0x00)
        s.inp(f"{label} status", 0x1F7)
        for name, port in regs:
            s.inp(f"{label} {name}", port)

    s.out(0x1F6, 0xE0)
    nondata("read native max", 0xF8, (("lba low", 0x1F3), ("lba mid", 0x1F4),
                                      ("lba high", 0x1F5), ("device", 0x1F6)))
    nondata("standby immediate", 0xE0)
    nondata("check power mode standby", 0xE5, (("count", 0x1F2),))
    nondata("idle immediate", 0xE1)
    lba28(5, 4, 0x40)                                 # READ VERIFY
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("read verify status", 0x1F7)
    s.out(0x1F6, 0xE0)
    nondata("check power mode active", 0xE5, (("count", 0x1F2),))
    nondata("flush cache", 0xE7)
    s.out(0x1F1, 0x03)
    s.out(0x1F2, 0x42)
    nondata("set features udma2", 0xEF)
    s.out(0x1F1, 0x99)
    nondata("set features bogus", 0xEF, (("error", 0x1F1),))
    s.out(0x1F6, 0xA0)
    s.out(0x1F7, 0xEC)
    s.wait(0x1F7, 0x80, 0x00)
    s.insbuf(0x1F0)
    s.logbuf("identify after udma2 word 63", 63)
    s.logbuf("identify after udma2 word 88", 88)
    s.inp("identify after udma2 status", 0x1F7)
    s.out(0x1F6, 0xB0)
    nondata("diagnostic", 0x90, (("error", 0x1F1), ("count", 0x1F2), ("lba low", 0x1F3),
                                 ("lba mid", 0x1F4), ("lba high", 0x1F5), ("device", 0x1F6)))

    # nIEN: no INTRQ while set
    s.out(0x1F6, 0xA0)
    s.out(0x3F6, 0x0A)
    s.pic_init()
    lba28(1, 1, 0x20)
    s.wait(0x1F7, 0x80, 0x00)
    s.out(0xA0, 0x0A)
    s.inp("nIEN IRR2", 0xA0)
    s.ins("nIEN read sum", 0x1F0, 256)
    s.wait(0x1F7, 0x80, 0x00)
    s.inp("nIEN status", 0x1F7)
    s.out(0x3F6, 0x08)
    s.inp("nIEN IRR2 after", 0xA0)

    # ---- secondary channel: ATAPI CD-ROM ----
    s.out(0x176, 0xA0)
    s.out(0x376, 0x0C)
    s.out(0x376, 0x08)
    s.wait(0x177, 0x80, 0x00)
    for i, name in enumerate(("error", "count", "lba low", "lba mid", "lba high"), 1):
        s.inp(f"atapi srst {name}", 0x170 + i)
    s.inp("atapi srst status", 0x177)
    s.out(0x176, 0xA0)
    s.out(0x177, 0xEC)                                # IDENTIFY DEVICE: aborted
    s.wait(0x177, 0x80, 0x00)
    s.inp("atapi identify device status", 0x177)
    s.inp("atapi identify device error", 0x171)
    s.inp("atapi identify device lba mid", 0x174)
    s.inp("atapi identify device lba high", 0x175)
    s.out(0x177, 0xA1)                                # IDENTIFY PACKET DEVICE
    s.wait(0x177, 0x80, 0x00)
    s.inp("identify packet status", 0x177)
    s.insbuf(0x170)
    s.logbuf("identify packet word 0", 0)
    s.logbuf("identify packet word 49", 49, differs="IORDY bits: Aero reports IORDY "
             "supported, as PIO modes 3-4 (word 64) require")
    s.wait(0x177, 0x80, 0x00)
    # the sense data left by power-on differs (QEMU: none; Aero: a unit attention)
    s.packet("request sense 0", [0x03, 0, 0, 0, 18], 18, [9])
    ua = {f"request sense 0 block0 word {i}" for i in (0, 1, 6)}   # 70h, key 6, ASC 28h
    s.ops = [op if not (op[0] == "in" and op[3] in ua)
             else op[:4] + ("power-on unit attention: Aero reports one (as drives do), "
                            "QEMU does not",)
             for op in s.ops]
    s.packet("test unit ready", [0x00], 0, [])
    s.packet("inquiry", [0x12, 0, 0, 0, 8], 8, [4])
    s.packet("read capacity", [0x25], 8, [4])
    s.packet("read(10)", [0x28, 0, 0, 0, 0, 3, 0, 0, 2], 2048, [1024, 1024])
    s.packet("read toc", [0x43, 0, 0, 0, 0, 0, 0, 0, 20], 20, [10])
    s.packet("read toc msf", [0x43, 2, 0, 0, 0, 0, 0, 0, 20], 20, [10])
    s.packet("read toc session", [0x43, 0, 1, 0, 0, 0, 0, 0, 12], 12, [6])
    s.packet("read capacity limit", [0x25], 4, [2, 2])
    s.packet("read beyond", [0x28, 0, 0, 0, 0, CD_SECTORS - 1, 0, 0, 2], 2048, [])
    s.packet("sense after read beyond", [0x03, 0, 0, 0, 18], 18, [9])
    s.packet("unknown opcode", [0xEE], 0, [])
    s.packet("sense after unknown opcode", [0x03, 0, 0, 0, 14], 14, [7])
    s.packet("get configuration", [0x46, 2, 0, 0, 0, 0, 0, 0, 8], 8, [4])
    s.packet("read(12)", [0xA8, 0, 0, 0, 0, 1, 0, 0, 0, 1], 2048, [1024])
    s.packet("odd byte count limit", [0x28, 0, 0, 0, 0, 2, 0, 0, 1], 1001, [500, 500, 24])
    s.packet("mode sense 2a", [0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 28], 28, [14])
    s.packet("mode sense 01", [0x5A, 0, 0x01, 0, 0, 0, 0, 0, 16], 16, [8])
    s.packet("event status", [0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8], 8, [4])
    s.packet("inquiry 36", [0x12, 0, 0, 0, 36], 36, [18])
    # ATAPI DMA through the secondary channel's bus master
    s.poke32(0x30100, 0x48000)
    s.poke32(0x30104, 0x80000000 | 2048)
    s.out(BM_BASE + 12, 0x30100, 4)
    s.out(BM_BASE + 10, 0x06)
    s.pic_init()
    cdb = bytes([0x28, 0, 0, 0, 0, 7, 0, 0, 1]).ljust(12, b"\0")
    s.out(0x176, 0xA0)
    s.out(0x171, 0x01)                                # DMA
    s.out(0x174, 0x00)
    s.out(0x175, 0x08)
    s.out(0x177, 0xA0)
    s.wait(0x177, 0x88, 0x08)
    for i in range(0, 12, 2):
        s.out(0x170, cdb[i] | cdb[i + 1] << 8, 2)
    s.out(BM_BASE + 8, 0x09)
    s.wait(BM_BASE + 10, 0x04, 0x04)
    s.inp("atapi dma BMISTA", BM_BASE + 10)
    s.out(BM_BASE + 8, 0x08)
    s.out(0xA0, 0x0A)
    s.inp("atapi dma IRR2", 0xA0)
    s.inp("atapi dma status", 0x177)
    s.inp("atapi dma ireason", 0x172)
    s.memsum("atapi dma memory", 0x48000, 2048)
    # removal: prevent, refused eject, allow, eject, not ready, load
    s.packet("prevent", [0x1E, 0, 0, 0, 1], 0, [])
    s.packet("eject while prevented", [0x1B, 0, 0, 0, 2], 0, [])
    s.packet("sense after refused eject", [0x03, 0, 0, 0, 14], 14, [7])
    s.packet("allow", [0x1E, 0, 0, 0, 0], 0, [])
    s.packet("eject", [0x1B, 0, 0, 0, 2], 0, [])
    s.packet("test unit ready ejected", [0x00], 0, [])
    s.packet("sense ejected", [0x03, 0, 0, 0, 14], 14, [7])
    s.packet("load", [0x1B, 0, 0, 0, 3], 0, [])

    # ---- floppy: 82077AA + 8237A channel 2 ----
    s.pic_init()
    s.out(0x3F2, 0x08)                                # reset with DMA gate on
    s.out(0x3F2, 0x1C)
    s.out(0x20, 0x0A)
    s.wait(0x20, 0x40, 0x40)                          # IRQ 6 latched in the master's IRR
    for d in range(4):
        s.fdc_cmd(0x08)
        s.fdc_result(f"reset sense {d}", 2)
    s.fdc_cmd(0x08)
    s.fdc_result("sense with nothing pending", 1)
    s.out(0x3F7, 0x00)
    s.fdc_cmd(0x03, 0xAF, 0x02)                       # SPECIFY
    s.fdc_cmd(0x10)
    s.fdc_result("version", 1)

    def fdc_wait_irq():
        s.out(0x20, 0x0A)
        s.wait(0x20, 0x40, 0x40)

    s.pic_init()
    s.fdc_cmd(0x07, 0x00)                             # RECALIBRATE
    fdc_wait_irq()
    s.fdc_cmd(0x08)
    s.fdc_result("recalibrate sense", 2)
    s.pic_init()
    s.fdc_cmd(0x0F, 0x00, 2)                          # SEEK 2
    fdc_wait_irq()
    s.fdc_cmd(0x08)
    s.fdc_result("seek sense", 2)
    s.inp("dir after seek", 0x3F7)
    s.fdc_cmd(0x04, 0x04)
    s.fdc_result("sense drive status", 1)

    def dma2(addr, length, mode):
        s.out(0xD6, 0xC0)
        s.out(0xD4, 0x00)
        s.out(0x0A, 0x06)
        s.out(0x0C, 0x00)
        s.out(0x04, addr & 0xFF)
        s.out(0x04, (addr >> 8) & 0xFF)
        s.out(0x81, addr >> 16)
        s.out(0x05, (length - 1) & 0xFF)
        s.out(0x05, (length - 1) >> 8)
        s.out(0x0B, mode)
        s.out(0x0A, 0x02)

    def fdc_rw(label, op, c, h, r, eot=18):
        s.pic_init()
        s.fdc_cmd(op, h << 2, c, h, r, 2, eot, 0x1B, 0xFF)
        fdc_wait_irq()
        s.fdc_result(label, 7)

    dma2(0x20000, 1024, 0x46)
    fdc_rw("read data", 0xE6, 2, 1, 3)
    s.memsum("read data memory", 0x20000, 1024)
    dma2(0x20000, 2048, 0x46)
    fdc_rw("read data multitrack", 0xE6, 2, 0, 17)
    s.memsum("read data multitrack memory", 0x20000, 2048)
    dma2(0x20000, 4096, 0x46)
    fdc_rw("read data to end of track", 0x46, 2, 0, 16)
    s.pic_init()
    s.fdc_cmd(0x0F, 0x00, 2)        # QEMU has stepped to cylinder 3 at the end of the track
    fdc_wait_irq()
    s.fdc_cmd(0x08)
    s.fdc_result("realign seek sense", 2)
    s.fdc_cmd(0x4A, 0x00)                             # READ ID
    fdc_wait_irq()
    s.fdc_result("read id", 7)
    s.fill32(0x21000, 128, 0x01020304, 0x01020304)
    dma2(0x21000, 512, 0x4A)
    fdc_rw("write data", 0xC5, 2, 0, 9)
    dma2(0x22000, 512, 0x46)
    fdc_rw("read back", 0xE6, 2, 0, 9)
    s.memsum("read back memory", 0x22000, 512)
    dma2(0x20000, 512, 0x46)
    fdc_rw("sector 19", 0xE6, 2, 0, 19)
    fdc_rw("wrong cylinder", 0xE6, 3, 0, 1)
    s.pic_init()
    s.fdc_cmd(0x0F, 0x00, 2)                          # QEMU seeks implicitly; come back
    fdc_wait_irq()
    s.fdc_cmd(0x08)
    s.fdc_result("realign seek sense 2", 2)
    s.out(0x3F7, 0x02)
    fdc_rw("wrong data rate", 0xE6, 2, 0, 1)
    s.out(0x3F7, 0x00)
    # FORMAT TRACK: cylinder 4 head 1, fill F6h, then read a sector back
    s.pic_init()
    s.fdc_cmd(0x0F, 0x04, 4)
    fdc_wait_irq()
    s.fdc_cmd(0x08)
    s.fdc_result("seek 4 sense", 2)
    s.fill32(0x23000, 18, 0x02010104, 0x00010000)    # IDs C=4 H=1 R=1..18 N=2
    dma2(0x23000, 72, 0x4A)
    s.pic_init()
    s.fdc_cmd(0x4D, 0x04, 2, 18, 0x54, 0xF6)
    fdc_wait_irq()
    s.fdc_result("format", 7)
    dma2(0x24000, 512, 0x46)
    fdc_rw("read formatted", 0xE6, 4, 1, 7)
    s.memsum("read formatted memory", 0x24000, 512)
    s.fdc_cmd(0x0E)
    s.fdc_result("dumpreg", 10)
    s.ops = [op if not (op[0] == "in" and op[3] == "dumpreg[8]")
             else op[:4] + (QEMU_CFG,) for op in s.ops]
    s.fdc_cmd(0x94)
    s.fdc_result("lock", 1)
    s.fdc_cmd(0x14)
    s.fdc_result("unlock", 1)
    return s


# -- replay through Aero's devices --------------------------------------------------------------


def images(tmp):
    hd = tmp / "hd.img"
    hd.write_bytes(b"".join(hd_sector(i) for i in range(HD_SECTORS)))
    cd = tmp / "cd.iso"
    cd.write_bytes(b"".join(cd_sector(i) for i in range(CD_SECTORS)))
    return hd, cd


def floppy_image(boot: bytes) -> bytes:
    data = bytearray(b"".join(fd_sector(i) for i in range(2880)))
    data[:len(boot)] = boot
    return bytes(data)


def replay(script: Script, tmp) -> list:
    hd, cd = images(tmp)
    fd = tmp / "fd.img"
    fd.write_bytes(floppy_image(b""))
    cpu = FakeCPU()
    clock = Clock(cpu, ips=10_000_000)
    bus = IOBus()
    mem = bytearray(1 << 20)

    def rd(a, n):
        return bytes(mem[a:a + n])

    def wr(a, d):
        mem[a:a + len(d)] = d

    pic = PIC(bus, None)
    irq = IRQLines(pic.set_irq)
    dma = DMA8237(rd, wr)
    dma.register(bus)
    fdc = FDC82077AA(irq, dma, clock)
    fdc.register(bus)
    fdc.insert(0, DiskImage.floppy(str(fd)))
    ch0 = IDEChannel(0, irq, master=ATADisk(DiskImage.hard_disk(str(hd))))
    ch1 = IDEChannel(1, irq, master=ATAPICDROM(DiskImage.cdrom(str(cd))))
    ch0.register(bus)
    ch1.register(bus)
    bm = BusMaster([ch0, ch1], rd, wr)
    bm.map(bus, BM_BASE)
    log = []
    buf = [0] * 256

    def tick(n=1):
        cpu.icount += n
        clock.run_due()

    for op in script.ops:
        kind = op[0]
        tick()
        if kind == "out":
            _, port, value, size = op
            bus.write(port, size, value)
        elif kind == "in":
            _, port, size, label, _ = op
            log.append((label, bus.read(port, size)))
        elif kind == "wait":
            _, port, mask, value = op
            for _ in range(1_000_000):
                if bus.read(port, 1) & mask == value:
                    break
                tick(10)
            else:
                raise AssertionError(f"wait on {port:#x} timed out")
        elif kind == "ins":
            _, port, words, label, _ = op
            total = sum(bus.read(port, 2) for _ in range(words)) & 0xFFFFFFFF
            if label is not None:
                log.append((label, total))
        elif kind == "insbuf":
            _, port, words = op
            buf = [bus.read(port, 2) for _ in range(words)]
        elif kind == "logbuf":
            _, index, label, _ = op
            log.append((label, buf[index]))
        elif kind == "outs":
            _, port, words, seed, step = op
            for i in range(words):
                bus.write(port, 2, (seed + i * step) & 0xFFFF)
        elif kind == "poke32":
            _, phys, value = op
            mem[phys:phys + 4] = value.to_bytes(4, "little")
        elif kind == "fill32":
            _, phys, count, seed, step = op
            for i in range(count):
                v = (seed + i * step) & 0xFFFFFFFF
                mem[phys + 4 * i:phys + 4 * i + 4] = v.to_bytes(4, "little")
        elif kind == "memsum":
            _, phys, n, label, _ = op
            log.append((label, sum(int.from_bytes(mem[a:a + 2], "little")
                                   for a in range(phys, phys + n, 2)) & 0xFFFFFFFF))
        elif kind == "pci":
            pass                                    # BAR4 is mapped at BM_BASE above
    return log


# -- the same script as a guest for QEMU ----------------------------------------------------------
def guest_asm(script: Script) -> str:
    out = ["[bits 16]", "[org 0x7c00]",
           "boot: cli", " xor ax, ax", " mov ds, ax", " mov es, ax", " mov ss, ax",
           " mov sp, 0x7c00", " sti",
           " mov ax, 0x0211", " mov cx, 0x0002", " mov dx, 0x0000", " mov bx, 0x7e00",
           " int 0x13", " jc fail",
           " mov ax, 0x0212", " mov cx, 0x0001", " mov dx, 0x0100", " mov bx, 0xa000",
           " int 0x13", " jc fail",
           " cli", " jmp script",
           "fail: mov al, 0xFF", " out 0xE9, al", " jmp quit",
           "times 510-($-$$) db 0", "dw 0xAA55",
           "log1: out 0xE9, al", " ret",
           "log2: out 0xE9, al", " mov al, ah", " out 0xE9, al", " ret",
           "log4: push eax", " out 0xE9, al", " shr eax, 8", " out 0xE9, al", " shr eax, 8",
           " out 0xE9, al", " shr eax, 8", " out 0xE9, al", " pop eax", " ret",
           "in1: in al, dx", " jmp log1", "in2: in ax, dx", " jmp log2",
           "in4: in eax, dx", " jmp log4",
           "waitio: mov ecx, 0x4000000",          # dx port, bl mask, bh value
           ".w: in al, dx", " and al, bl", " cmp al, bh", " je .k", " dec ecx", " jnz .w",
           " mov al, 0xEE", " call log1", " jmp quit", ".k: ret",
           "script:"]
    n = 0
    for op in script.ops:
        n += 1
        kind = op[0]
        if kind == "out":
            _, port, value, size = op
            reg = {1: "al", 2: "ax", 4: "eax"}[size]
            out += [f" mov dx, {port:#x}", f" mov {reg}, {value:#x}", f" out dx, {reg}"]
        elif kind == "in":
            _, port, size, _, _ = op
            out += [f" mov dx, {port:#x}", f" call in{size}"]
        elif kind == "wait":
            _, port, mask, value = op
            out += [f" mov dx, {port:#x}", f" mov bx, {mask | value << 8:#x}", " call waitio"]
        elif kind == "ins":
            _, port, words, label, _ = op
            out += [f" mov dx, {port:#x}", f" mov cx, {words}", " xor ebx, ebx",
                    f"l{n}: in ax, dx", " movzx eax, ax", " add ebx, eax", f" loop l{n}"]
            if label is not None:
                out += [" mov eax, ebx", " call log4"]
        elif kind == "insbuf":
            _, port, words = op
            out += [f" mov ax, {BUF >> 4:#x}", " mov es, ax", " xor di, di", " cld",
                    f" mov dx, {port:#x}", f" mov cx, {words}", " rep insw", " xor ax, ax",
                    " mov es, ax"]
        elif kind == "logbuf":
            _, index, _, _ = op
            out += [f" mov ax, {BUF >> 4:#x}", " mov es, ax", f" mov ax, [es:{2 * index}]",
                    " call log2", " xor bx, bx", " mov es, bx"]
        elif kind == "outs":
            _, port, words, seed, step = op
            out += [f" mov dx, {port:#x}", f" mov cx, {words}", f" mov ax, {seed:#x}",
                    f"o{n}: out dx, ax", f" add ax, {step:#x}", f" loop o{n}"]
        elif kind == "poke32":
            _, phys, value = op
            out += [f" mov ax, {phys >> 4:#x}", " mov es, ax",
                    f" mov dword [es:{phys & 15}], {value:#x}", " xor ax, ax", " mov es, ax"]
        elif kind == "fill32":
            _, phys, count, seed, step = op
            out += [f" mov ax, {phys >> 4:#x}", " mov es, ax", f" mov di, {phys & 15}",
                    f" mov cx, {count}", f" mov eax, {seed:#x}", f"f{n}: mov [es:di], eax",
                    " add di, 4", f" add eax, {step:#x}", f" loop f{n}", " xor ax, ax",
                    " mov es, ax"]
        elif kind == "memsum":
            _, phys, nbytes, _, _ = op
            out += [f" mov ax, {phys >> 4:#x}", " mov es, ax", " xor si, si",
                    f" mov cx, {nbytes // 2}", " xor ebx, ebx",
                    f"m{n}: movzx eax, word [es:si]", " add ebx, eax", " add si, 2",
                    f" loop m{n}", " mov eax, ebx", " call log4", " xor ax, ax", " mov es, ax"]
        elif kind == "pci":
            _, dev, fn, reg, value = op
            addr = 0x80000000 | (dev << 11) | (fn << 8) | reg
            out += [" mov dx, 0xcf8", f" mov eax, {addr:#x}", " out dx, eax",
                    " mov dx, 0xcfc", f" mov eax, {value:#x}", " out dx, eax"]
    out += ["quit: mov dx, 0x501", " mov al, 0", " out dx, al", " cli", " hlt", " jmp quit"]
    return "\n".join(out) + "\n"


def parse(script: Script, raw: bytes) -> list:
    log = []
    pos = 0
    for op in script.ops:
        kind = op[0]
        if kind == "in":
            size, label = op[2], op[3]
        elif kind in ("ins", "memsum"):
            size, label = 4, op[3]
            if label is None:
                continue
        elif kind == "logbuf":
            size, label = 2, op[2]
        else:
            continue
        if pos + size > len(raw):
            raise AssertionError(f"guest log ends before {label!r} ({raw[pos:]!r})")
        log.append((label, int.from_bytes(raw[pos:pos + size], "little")))
        pos += size
    assert pos == len(raw), f"extra guest output {raw[pos:]!r}"
    return log


def run_qemu(script: Script, tmp) -> list:
    src = tmp / "guest.asm"
    src.write_text(guest_asm(script))
    binp = tmp / "guest.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(binp), str(src)], check=True)
    boot = binp.read_bytes()
    assert len(boot) <= BOOT_SECTORS * 512, f"guest is {len(boot)} bytes"
    hd, cd = images(tmp)
    fd = tmp / "qfd.img"
    fd.write_bytes(floppy_image(boot))
    out = tmp / "debugcon.bin"
    subprocess.run(
        ["qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "16", "-display", "none",
         "-no-reboot", "-drive", f"file={fd},format=raw,if=floppy,index=0",
         "-drive", f"file={hd},format=raw,if=ide,index=0",
         "-drive", f"file={cd},format=raw,if=ide,index=2,media=cdrom", "-boot", "a",
         "-debugcon", f"file:{out}", "-device", "isa-debug-exit,iobase=0x501,iosize=1"],
        timeout=60, check=False)
    return parse(script, out.read_bytes())


DIAG = ("QEMU ignores EXECUTE DEVICE DIAGNOSTIC written while the absent device 1 is "
        "selected; ATA-6 has both devices execute it whatever DEV says")
REMOVAL = ("eject while removal is prevented: QEMU NOT READY 53h/00h, Aero ILLEGAL REQUEST "
           "53h/02h MEDIUM REMOVAL PREVENTED (MMC)")
QEMU_FORMAT = "QEMU's FORMAT TRACK is a stub (it neither reads the IDs nor fills sectors)"
QEMU_EOT = ("a transfer reaching EOT without TC: QEMU steps to the next cylinder and ends "
            "normally (ST0 SE); the 82077AA data sheet ends it abnormally with ST1 EN")
KNOWN = {
    "read toc block0 word 6": "lead-out ADR/control: QEMU 16h (copy permitted), Aero 14h as "
                              "the data track",
    "read toc msf block0 word 6": "lead-out ADR/control, as above",
    "read toc session block0 word 0": "QEMU's session-information TOC says 18 bytes follow; "
                                      "MMC: 10",
    "sense after read beyond block0 word 0": "QEMU sets VALID (F0h) with no INFORMATION; "
                                             "Aero 70h",
    "sense after unknown opcode block0 word 0": "as above",
    "get configuration block0 word 1": "QEMU's drive lists the DVD-ROM profile too",
    "read data to end of track[0]": QEMU_EOT,
    "read data to end of track[1]": QEMU_EOT,
    "read id[5]": "the sector passing under the head next is model specific",
    "sector 19[1]": "a sector number beyond the track: QEMU EC, the data sheet ND (no data)",
    "standby immediate status": "QEMU leaves DSC (obsolete) clear after STANDBY/IDLE",
    "idle immediate status": "as above",
    "check power mode standby count": "QEMU does not model power states (always FFh); "
                                      "ATA-6: 00h in Standby",
    "diagnostic status": DIAG, "diagnostic error": DIAG, "diagnostic count": DIAG,
    "diagnostic lba low": DIAG, "diagnostic device": DIAG,
    "mode sense 2a block0 word 1": "medium type code (obsolete): QEMU 70h, Aero 01h (CD-ROM "
                                   "data disc)",
    "mode sense 01 block0 word 1": "as above",
    "mode sense 2a block0 word 5": "QEMU's drive reads CD-R/RW and DVD media (3Bh)",
    "mode sense 2a block0 word 6": "QEMU reports CD-DA features (60h)",
    "mode sense 2a block0 word 9": "volume levels: QEMU 2, Aero 256",
    "event status block0 word 2": "no power-on NewMedia event in QEMU (see request sense 0)",
    "inquiry 36 block0 sum": "identity strings (vendor, product, revision)",
    "eject while prevented error": REMOVAL,
    "sense after refused eject block0 word 1": REMOVAL,
    "sense after refused eject block0 word 6": REMOVAL,
    "sense after refused eject block0 word 0": "VALID bit, as above",
    "sense ejected block0 word 0": "VALID bit, as above",
    "seek 4 sense[0]": "QEMU masks the HD bit in SENSE INTERRUPT STATUS; Aero reports the "
                       "head of the SEEK (uPD765/82077AA: head address at interrupt)",
    "format[0]": QEMU_FORMAT, "format[4]": QEMU_FORMAT, "format[5]": QEMU_FORMAT,
    "read formatted memory": QEMU_FORMAT,
    "dumpreg[4]": "QEMU's DUMPREG drops HUT (SRT/HUT byte)",
    "dumpreg[5]": "QEMU's DUMPREG reports the DOR DMA gate as ND",
}


def differs(script: Script) -> dict:
    reasons = dict(KNOWN)
    for op in script.ops:
        if op[0] in ("in", "ins", "memsum") and op[3] is not None and op[4]:
            reasons[op[3]] = op[4]
        elif op[0] == "logbuf" and op[3]:
            reasons[op[2]] = op[3]
    return reasons


# QEMU's log of the guest: qemu-system-i386 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) with its
# SeaBIOS; regenerate with `python -m tests.devices.test_storage_qemu`.
GOLDEN = [
    ('ide0 status at start', 0x0), ('ide1 status at start', 0x0), ('ata srst error', 0x1),
    ('ata srst count', 0x1), ('ata srst lba low', 0x1), ('ata srst lba mid', 0x0),
    ('ata srst lba high', 0x0), ('ata srst status', 0x50), ('ata identify IRR2', 0x40),
    ('ata identify status', 0x58), ('identify word 0', 0x40), ('identify word 1', 0x2),
    ('identify word 3', 0x10), ('identify word 6', 0x3f), ('identify word 47', 0x8010),
    ('identify word 49', 0xb00), ('identify word 53', 0x7), ('identify word 54', 0x2),
    ('identify word 55', 0x10), ('identify word 56', 0x3f), ('identify word 57', 0x7e0),
    ('identify word 58', 0x0), ('identify word 60', 0x800), ('identify word 61', 0x0),
    ('identify word 83', 0x7400), ('identify word 86', 0x3400), ('identify word 100', 0x800),
    ('identify word 101', 0x0), ('identify word 59', 0x110), ('ata identify status after', 0x50),
    ('read sectors status 0', 0x58), ('read sectors sum 0', 0x7f51d9),
    ('read sectors status 1', 0x58), ('read sectors sum 1', 0x8046d0),
    ('read sectors final status', 0x50), ('read sectors IRR2', 0x40),
    ('read sectors count after', 0x0), ('read sectors lba low after', 0x7),
    ('write sectors DRQ status', 0x58), ('write sectors final status', 0x50),
    ('read back sum 0', 0x8046d0), ('read back sum 1', 0x7f3380), ('read back sum 2', 0x8032be),
    ('out of range first status', 0x58), ('out of range first block', 0x7d940f),
    ('out of range status', 0x41), ('out of range error', 0x4), ('out of range lba low', 0x0),
    ('bad command status', 0x41), ('bad command error', 0x4), ('set multiple 3 status', 0x41),
    ('set multiple 4 status', 0x50), ('read multiple status 0', 0x58),
    ('read multiple sum 0', 0x1fe407a), ('read multiple status 1', 0x58),
    ('read multiple sum 1', 0xfee407), ('read multiple final status', 0x50),
    ('read ext status', 0x58), ('read ext sum', 0x7f75de), ('read ext lba low after', 0xe9),
    ('read ext lba mid after', 0x3), ('chs read sum', 0x801304), ('init params status', 0x50),
    ('chs 4x17 read sum', 0x7ee660), ('identify after init word 54', 0x2),
    ('identify after init word 55', 0x10), ('identify after init word 56', 0x3f),
    ('identify after init word 57', 0x7e0), ('identify after init word 58', 0x0),
    ('identify after init status', 0x50), ('dma BMISTA', 0x4), ('dma status', 0x50),
    ('dma IRR2', 0x40), ('dma memory sum', 0xfe6b9b), ('write dma BMISTA', 0x4),
    ('write dma status', 0x50), ('write dma read back', 0x7d0770), ('hob count', 0x12),
    ('hob lba low', 0x56), ('count', 0x34), ('lba low', 0x78), ('read native max status', 0x50),
    ('read native max lba low', 0xff), ('read native max lba mid', 0x7),
    ('read native max lba high', 0x0), ('read native max device', 0xe0),
    ('standby immediate status', 0x40), ('check power mode standby status', 0x50),
    ('check power mode standby count', 0xff), ('idle immediate status', 0x40),
    ('read verify status', 0x50), ('check power mode active status', 0x50),
    ('check power mode active count', 0xff), ('flush cache status', 0x50),
    ('set features udma2 status', 0x50), ('set features bogus status', 0x41),
    ('set features bogus error', 0x4), ('identify after udma2 word 63', 0x7),
    ('identify after udma2 word 88', 0x43f), ('identify after udma2 status', 0x50),
    ('diagnostic status', 0x0), ('diagnostic error', 0x0), ('diagnostic count', 0x42),
    ('diagnostic lba low', 0x5), ('diagnostic lba mid', 0x0), ('diagnostic lba high', 0x0),
    ('diagnostic device', 0xb0), ('nIEN IRR2', 0x0), ('nIEN read sum', 0x7f79fd),
    ('nIEN status', 0x50), ('nIEN IRR2 after', 0x0), ('atapi srst error', 0x1),
    ('atapi srst count', 0x1), ('atapi srst lba low', 0x1), ('atapi srst lba mid', 0x14),
    ('atapi srst lba high', 0xeb), ('atapi srst status', 0x0),
    ('atapi identify device status', 0x41), ('atapi identify device error', 0x4),
    ('atapi identify device lba mid', 0x14), ('atapi identify device lba high', 0xeb),
    ('identify packet status', 0x58), ('identify packet word 0', 0x85c0),
    ('identify packet word 49', 0x300), ('request sense 0 packet ireason', 0x1),
    ('request sense 0 block0 status', 0x58), ('request sense 0 block0 ireason', 0x2),
    ('request sense 0 block0 count lo', 0x12), ('request sense 0 block0 count hi', 0x0),
    ('request sense 0 block0 word 0', 0xf0), ('request sense 0 block0 word 1', 0x0),
    ('request sense 0 block0 word 2', 0x0), ('request sense 0 block0 word 3', 0xa00),
    ('request sense 0 block0 word 4', 0x0), ('request sense 0 block0 word 5', 0x0),
    ('request sense 0 block0 word 6', 0x0), ('request sense 0 block0 word 7', 0x0),
    ('request sense 0 block0 word 8', 0x0), ('request sense 0 status', 0x50),
    ('request sense 0 ireason', 0x3), ('request sense 0 error', 0x0),
    ('test unit ready packet ireason', 0x1), ('test unit ready status', 0x50),
    ('test unit ready ireason', 0x3), ('test unit ready error', 0x0),
    ('inquiry packet ireason', 0x1), ('inquiry block0 status', 0x58),
    ('inquiry block0 ireason', 0x2), ('inquiry block0 count lo', 0x8),
    ('inquiry block0 count hi', 0x0), ('inquiry block0 word 0', 0x8005),
    ('inquiry block0 word 1', 0x2100), ('inquiry block0 word 2', 0x1f),
    ('inquiry block0 word 3', 0x0), ('inquiry status', 0x50), ('inquiry ireason', 0x3),
    ('inquiry error', 0x0), ('read capacity packet ireason', 0x1),
    ('read capacity block0 status', 0x58), ('read capacity block0 ireason', 0x2),
    ('read capacity block0 count lo', 0x8), ('read capacity block0 count hi', 0x0),
    ('read capacity block0 word 0', 0x0), ('read capacity block0 word 1', 0x2700),
    ('read capacity block0 word 2', 0x0), ('read capacity block0 word 3', 0x8),
    ('read capacity status', 0x50), ('read capacity ireason', 0x3), ('read capacity error', 0x0),
    ('read(10) packet ireason', 0x1), ('read(10) block0 status', 0x58),
    ('read(10) block0 ireason', 0x2), ('read(10) block0 count lo', 0x0),
    ('read(10) block0 count hi', 0x8), ('read(10) block0 sum', 0x1fdc4c4),
    ('read(10) block1 status', 0x58), ('read(10) block1 ireason', 0x2),
    ('read(10) block1 count lo', 0x0), ('read(10) block1 count hi', 0x8),
    ('read(10) block1 sum', 0x201abae), ('read(10) status', 0x50), ('read(10) ireason', 0x3),
    ('read(10) error', 0x0), ('read toc packet ireason', 0x1), ('read toc block0 status', 0x58),
    ('read toc block0 ireason', 0x2), ('read toc block0 count lo', 0x14),
    ('read toc block0 count hi', 0x0), ('read toc block0 word 0', 0x1200),
    ('read toc block0 word 1', 0x101), ('read toc block0 word 2', 0x1400),
    ('read toc block0 word 3', 0x1), ('read toc block0 word 4', 0x0),
    ('read toc block0 word 5', 0x0), ('read toc block0 word 6', 0x1600),
    ('read toc block0 word 7', 0xaa), ('read toc block0 word 8', 0x0),
    ('read toc block0 word 9', 0x2800), ('read toc status', 0x50), ('read toc ireason', 0x3),
    ('read toc error', 0x0), ('read toc msf packet ireason', 0x1),
    ('read toc msf block0 status', 0x58), ('read toc msf block0 ireason', 0x2),
    ('read toc msf block0 count lo', 0x14), ('read toc msf block0 count hi', 0x0),
    ('read toc msf block0 word 0', 0x1200), ('read toc msf block0 word 1', 0x101),
    ('read toc msf block0 word 2', 0x1400), ('read toc msf block0 word 3', 0x1),
    ('read toc msf block0 word 4', 0x0), ('read toc msf block0 word 5', 0x2),
    ('read toc msf block0 word 6', 0x1600), ('read toc msf block0 word 7', 0xaa),
    ('read toc msf block0 word 8', 0x0), ('read toc msf block0 word 9', 0x2802),
    ('read toc msf status', 0x50), ('read toc msf ireason', 0x3), ('read toc msf error', 0x0),
    ('read toc session packet ireason', 0x1), ('read toc session block0 status', 0x58),
    ('read toc session block0 ireason', 0x2), ('read toc session block0 count lo', 0xc),
    ('read toc session block0 count hi', 0x0), ('read toc session block0 word 0', 0x1200),
    ('read toc session block0 word 1', 0x101), ('read toc session block0 word 2', 0x1400),
    ('read toc session block0 word 3', 0x1), ('read toc session block0 word 4', 0x0),
    ('read toc session block0 word 5', 0x0), ('read toc session status', 0x50),
    ('read toc session ireason', 0x3), ('read toc session error', 0x0),
    ('read capacity limit packet ireason', 0x1), ('read capacity limit block0 status', 0x58),
    ('read capacity limit block0 ireason', 0x2), ('read capacity limit block0 count lo', 0x4),
    ('read capacity limit block0 count hi', 0x0), ('read capacity limit block0 word 0', 0x0),
    ('read capacity limit block0 word 1', 0x2700), ('read capacity limit block1 status', 0x58),
    ('read capacity limit block1 ireason', 0x2), ('read capacity limit block1 count lo', 0x4),
    ('read capacity limit block1 count hi', 0x0), ('read capacity limit block1 word 0', 0x0),
    ('read capacity limit block1 word 1', 0x8), ('read capacity limit status', 0x50),
    ('read capacity limit ireason', 0x3), ('read capacity limit error', 0x0),
    ('read beyond packet ireason', 0x1), ('read beyond status', 0x41),
    ('read beyond ireason', 0x3), ('read beyond error', 0x50),
    ('sense after read beyond packet ireason', 0x1),
    ('sense after read beyond block0 status', 0x58),
    ('sense after read beyond block0 ireason', 0x2),
    ('sense after read beyond block0 count lo', 0x12),
    ('sense after read beyond block0 count hi', 0x0),
    ('sense after read beyond block0 word 0', 0xf0),
    ('sense after read beyond block0 word 1', 0x5), ('sense after read beyond block0 word 2', 0x0),
    ('sense after read beyond block0 word 3', 0xa00),
    ('sense after read beyond block0 word 4', 0x0), ('sense after read beyond block0 word 5', 0x0),
    ('sense after read beyond block0 word 6', 0x21),
    ('sense after read beyond block0 word 7', 0x0), ('sense after read beyond block0 word 8', 0x0),
    ('sense after read beyond status', 0x50), ('sense after read beyond ireason', 0x3),
    ('sense after read beyond error', 0x0), ('unknown opcode packet ireason', 0x1),
    ('unknown opcode status', 0x41), ('unknown opcode ireason', 0x3),
    ('unknown opcode error', 0x50), ('sense after unknown opcode packet ireason', 0x1),
    ('sense after unknown opcode block0 status', 0x58),
    ('sense after unknown opcode block0 ireason', 0x2),
    ('sense after unknown opcode block0 count lo', 0xe),
    ('sense after unknown opcode block0 count hi', 0x0),
    ('sense after unknown opcode block0 word 0', 0xf0),
    ('sense after unknown opcode block0 word 1', 0x5),
    ('sense after unknown opcode block0 word 2', 0x0),
    ('sense after unknown opcode block0 word 3', 0xa00),
    ('sense after unknown opcode block0 word 4', 0x0),
    ('sense after unknown opcode block0 word 5', 0x0),
    ('sense after unknown opcode block0 word 6', 0x20),
    ('sense after unknown opcode status', 0x50), ('sense after unknown opcode ireason', 0x3),
    ('sense after unknown opcode error', 0x0), ('get configuration packet ireason', 0x1),
    ('get configuration block0 status', 0x58), ('get configuration block0 ireason', 0x2),
    ('get configuration block0 count lo', 0x8), ('get configuration block0 count hi', 0x0),
    ('get configuration block0 word 0', 0x0), ('get configuration block0 word 1', 0x1000),
    ('get configuration block0 word 2', 0x0), ('get configuration block0 word 3', 0x800),
    ('get configuration status', 0x50), ('get configuration ireason', 0x3),
    ('get configuration error', 0x0), ('read(12) packet ireason', 0x1),
    ('read(12) block0 status', 0x58), ('read(12) block0 ireason', 0x2),
    ('read(12) block0 count lo', 0x0), ('read(12) block0 count hi', 0x8),
    ('read(12) block0 sum', 0x1fdeef0), ('read(12) status', 0x50), ('read(12) ireason', 0x3),
    ('read(12) error', 0x0), ('odd byte count limit packet ireason', 0x1),
    ('odd byte count limit block0 status', 0x58), ('odd byte count limit block0 ireason', 0x2),
    ('odd byte count limit block0 count lo', 0xe8), ('odd byte count limit block0 count hi', 0x3),
    ('odd byte count limit block0 sum', 0xfd8c9e), ('odd byte count limit block1 status', 0x58),
    ('odd byte count limit block1 ireason', 0x2), ('odd byte count limit block1 count lo', 0xe8),
    ('odd byte count limit block1 count hi', 0x3), ('odd byte count limit block1 sum', 0xf5cae4),
    ('odd byte count limit block2 status', 0x58), ('odd byte count limit block2 ireason', 0x2),
    ('odd byte count limit block2 count lo', 0x30), ('odd byte count limit block2 count hi', 0x0),
    ('odd byte count limit block2 sum', 0xe7e58), ('odd byte count limit status', 0x50),
    ('odd byte count limit ireason', 0x3), ('odd byte count limit error', 0x0),
    ('mode sense 2a packet ireason', 0x1), ('mode sense 2a block0 status', 0x58),
    ('mode sense 2a block0 ireason', 0x2), ('mode sense 2a block0 count lo', 0x1c),
    ('mode sense 2a block0 count hi', 0x0), ('mode sense 2a block0 word 0', 0x1c00),
    ('mode sense 2a block0 word 1', 0x70), ('mode sense 2a block0 word 2', 0x0),
    ('mode sense 2a block0 word 3', 0x0), ('mode sense 2a block0 word 4', 0x142a),
    ('mode sense 2a block0 word 5', 0x3b), ('mode sense 2a block0 word 6', 0x6071),
    ('mode sense 2a block0 word 7', 0x29), ('mode sense 2a block0 word 8', 0xc002),
    ('mode sense 2a block0 word 9', 0x200), ('mode sense 2a block0 word 10', 0x2),
    ('mode sense 2a block0 word 11', 0xc002), ('mode sense 2a block0 word 12', 0x0),
    ('mode sense 2a block0 word 13', 0x0), ('mode sense 2a status', 0x50),
    ('mode sense 2a ireason', 0x3), ('mode sense 2a error', 0x0),
    ('mode sense 01 packet ireason', 0x1), ('mode sense 01 block0 status', 0x58),
    ('mode sense 01 block0 ireason', 0x2), ('mode sense 01 block0 count lo', 0x10),
    ('mode sense 01 block0 count hi', 0x0), ('mode sense 01 block0 word 0', 0xe00),
    ('mode sense 01 block0 word 1', 0x70), ('mode sense 01 block0 word 2', 0x0),
    ('mode sense 01 block0 word 3', 0x0), ('mode sense 01 block0 word 4', 0x601),
    ('mode sense 01 block0 word 5', 0x500), ('mode sense 01 block0 word 6', 0x0),
    ('mode sense 01 block0 word 7', 0x0), ('mode sense 01 status', 0x50),
    ('mode sense 01 ireason', 0x3), ('mode sense 01 error', 0x0),
    ('event status packet ireason', 0x1), ('event status block0 status', 0x58),
    ('event status block0 ireason', 0x2), ('event status block0 count lo', 0x8),
    ('event status block0 count hi', 0x0), ('event status block0 word 0', 0x400),
    ('event status block0 word 1', 0x1004), ('event status block0 word 2', 0x200),
    ('event status block0 word 3', 0x0), ('event status status', 0x50),
    ('event status ireason', 0x3), ('event status error', 0x0), ('inquiry 36 packet ireason', 0x1),
    ('inquiry 36 block0 status', 0x58), ('inquiry 36 block0 ireason', 0x2),
    ('inquiry 36 block0 count lo', 0x24), ('inquiry 36 block0 count hi', 0x0),
    ('inquiry 36 block0 sum', 0x3d839), ('inquiry 36 status', 0x50), ('inquiry 36 ireason', 0x3),
    ('inquiry 36 error', 0x0), ('atapi dma BMISTA', 0x4), ('atapi dma IRR2', 0x80),
    ('atapi dma status', 0x50), ('atapi dma ireason', 0x3), ('atapi dma memory', 0x1fd706c),
    ('prevent packet ireason', 0x1), ('prevent status', 0x50), ('prevent ireason', 0x3),
    ('prevent error', 0x0), ('eject while prevented packet ireason', 0x1),
    ('eject while prevented status', 0x41), ('eject while prevented ireason', 0x3),
    ('eject while prevented error', 0x20), ('sense after refused eject packet ireason', 0x1),
    ('sense after refused eject block0 status', 0x58),
    ('sense after refused eject block0 ireason', 0x2),
    ('sense after refused eject block0 count lo', 0xe),
    ('sense after refused eject block0 count hi', 0x0),
    ('sense after refused eject block0 word 0', 0xf0),
    ('sense after refused eject block0 word 1', 0x2),
    ('sense after refused eject block0 word 2', 0x0),
    ('sense after refused eject block0 word 3', 0xa00),
    ('sense after refused eject block0 word 4', 0x0),
    ('sense after refused eject block0 word 5', 0x0),
    ('sense after refused eject block0 word 6', 0x53), ('sense after refused eject status', 0x50),
    ('sense after refused eject ireason', 0x3), ('sense after refused eject error', 0x0),
    ('allow packet ireason', 0x1), ('allow status', 0x50), ('allow ireason', 0x3),
    ('allow error', 0x0), ('eject packet ireason', 0x1), ('eject status', 0x50),
    ('eject ireason', 0x3), ('eject error', 0x0), ('test unit ready ejected packet ireason', 0x1),
    ('test unit ready ejected status', 0x41), ('test unit ready ejected ireason', 0x3),
    ('test unit ready ejected error', 0x20), ('sense ejected packet ireason', 0x1),
    ('sense ejected block0 status', 0x58), ('sense ejected block0 ireason', 0x2),
    ('sense ejected block0 count lo', 0xe), ('sense ejected block0 count hi', 0x0),
    ('sense ejected block0 word 0', 0xf0), ('sense ejected block0 word 1', 0x2),
    ('sense ejected block0 word 2', 0x0), ('sense ejected block0 word 3', 0xa00),
    ('sense ejected block0 word 4', 0x0), ('sense ejected block0 word 5', 0x0),
    ('sense ejected block0 word 6', 0x3a), ('sense ejected status', 0x50),
    ('sense ejected ireason', 0x3), ('sense ejected error', 0x0), ('load packet ireason', 0x1),
    ('load status', 0x50), ('load ireason', 0x3), ('load error', 0x0), ('reset sense 0[0]', 0xc0),
    ('reset sense 0[1]', 0x0), ('reset sense 1[0]', 0xc1), ('reset sense 1[1]', 0x0),
    ('reset sense 2[0]', 0xc2), ('reset sense 2[1]', 0x0), ('reset sense 3[0]', 0xc3),
    ('reset sense 3[1]', 0x0), ('sense with nothing pending[0]', 0x80), ('version[0]', 0x90),
    ('recalibrate sense[0]', 0x20), ('recalibrate sense[1]', 0x0), ('seek sense[0]', 0x20),
    ('seek sense[1]', 0x2), ('dir after seek', 0x0), ('sense drive status[0]', 0x2c),
    ('read data[0]', 0x4), ('read data[1]', 0x0), ('read data[2]', 0x0), ('read data[3]', 0x2),
    ('read data[4]', 0x1), ('read data[5]', 0x5), ('read data[6]', 0x2),
    ('read data memory', 0x10039fb), ('read data multitrack[0]', 0x4),
    ('read data multitrack[1]', 0x0), ('read data multitrack[2]', 0x0),
    ('read data multitrack[3]', 0x2), ('read data multitrack[4]', 0x1),
    ('read data multitrack[5]', 0x3), ('read data multitrack[6]', 0x2),
    ('read data multitrack memory', 0x200bc32), ('read data to end of track[0]', 0x20),
    ('read data to end of track[1]', 0x0), ('read data to end of track[2]', 0x0),
    ('read data to end of track[3]', 0x3), ('read data to end of track[4]', 0x0),
    ('read data to end of track[5]', 0x1), ('read data to end of track[6]', 0x2),
    ('realign seek sense[0]', 0x20), ('realign seek sense[1]', 0x2), ('read id[0]', 0x0),
    ('read id[1]', 0x0), ('read id[2]', 0x0), ('read id[3]', 0x2), ('read id[4]', 0x0),
    ('read id[5]', 0x2), ('read id[6]', 0x2), ('write data[0]', 0x0), ('write data[1]', 0x0),
    ('write data[2]', 0x0), ('write data[3]', 0x2), ('write data[4]', 0x0), ('write data[5]', 0xa),
    ('write data[6]', 0x2), ('read back[0]', 0x0), ('read back[1]', 0x0), ('read back[2]', 0x0),
    ('read back[3]', 0x2), ('read back[4]', 0x0), ('read back[5]', 0xa), ('read back[6]', 0x2),
    ('read back memory', 0x55c1ac), ('sector 19[0]', 0x40), ('sector 19[1]', 0x80),
    ('sector 19[2]', 0x0), ('sector 19[3]', 0x2), ('sector 19[4]', 0x0), ('sector 19[5]', 0x13),
    ('sector 19[6]', 0x2), ('wrong cylinder[0]', 0x20), ('wrong cylinder[1]', 0x0),
    ('wrong cylinder[2]', 0x0), ('wrong cylinder[3]', 0x3), ('wrong cylinder[4]', 0x0),
    ('wrong cylinder[5]', 0x2), ('wrong cylinder[6]', 0x2), ('realign seek sense 2[0]', 0x20),
    ('realign seek sense 2[1]', 0x2), ('wrong data rate[0]', 0x40), ('wrong data rate[1]', 0x1),
    ('wrong data rate[2]', 0x0), ('wrong data rate[3]', 0x2), ('wrong data rate[4]', 0x0),
    ('wrong data rate[5]', 0x1), ('wrong data rate[6]', 0x2), ('seek 4 sense[0]', 0x20),
    ('seek 4 sense[1]', 0x4), ('format[0]', 0x0), ('format[1]', 0x0), ('format[2]', 0x0),
    ('format[3]', 0x4), ('format[4]', 0x0), ('format[5]', 0x1), ('format[6]', 0x2),
    ('read formatted[0]', 0x4), ('read formatted[1]', 0x0), ('read formatted[2]', 0x0),
    ('read formatted[3]', 0x4), ('read formatted[4]', 0x1), ('read formatted[5]', 0x8),
    ('read formatted[6]', 0x2), ('read formatted memory', 0x7ed604), ('dumpreg[0]', 0x4),
    ('dumpreg[1]', 0x0), ('dumpreg[2]', 0x0), ('dumpreg[3]', 0x0), ('dumpreg[4]', 0xa),
    ('dumpreg[5]', 0x3), ('dumpreg[6]', 0x12), ('dumpreg[7]', 0x0), ('dumpreg[8]', 0x60),
    ('dumpreg[9]', 0x0), ('lock[0]', 0x10), ('unlock[0]', 0x0),
]


def test_replay_matches_qemu_golden(tmp_path):
    script = build_script()
    ours = replay(script, tmp_path)
    assert GOLDEN is not None
    assert [label for label, _ in ours] == [label for label, _ in GOLDEN]
    skip = differs(script)
    mismatches = [(label, f"aero {a:#x}", f"qemu {q:#x}")
                  for (label, a), (_, q) in zip(ours, GOLDEN)
                  if a != q and label not in skip]
    assert mismatches == []
    golden = dict(GOLDEN)
    stale = [label for label, a in ours
             if label in skip and not skip[label].startswith("whatever")
             and a == golden[label]]
    assert stale == [], "listed as differing from QEMU but now equal"


@pytest.mark.skipif(not (shutil.which("qemu-system-i386") and shutil.which("nasm")),
                    reason="needs qemu-system-i386 and nasm")
def test_golden_is_what_qemu_does(tmp_path):
    script = build_script()
    assert run_qemu(script, tmp_path) == GOLDEN


if __name__ == "__main__":                       # print a fresh GOLDEN from QEMU
    import pathlib
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        fresh = run_qemu(build_script(), pathlib.Path(d))
    print("GOLDEN = [")
    for label, value in fresh:
        print(f"    ({label!r}, {value:#x}),")
    print("]")
