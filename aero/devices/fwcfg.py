"""QEMU firmware configuration interface (fw_cfg): selector 510h, data 511h, DMA 514h-51Bh.

References: QEMU docs/specs/fw_cfg.rst ("QEMU Firmware Configuration (fw_cfg) Device": the
selector register, the data register, the DMA address register and the ``FWCfgDmaAccess``
structure, the file directory, the feature bitmap) and QEMU hw/nvram/fw_cfg.c for behaviour
at the edges; SeaBIOS 1.16.3 src/fw/paravirt.c, src/fw/paravirt.h, src/boot.c,
src/fw/pciinit.c, src/optionroms.c, src/fw/acpi.c, src/fw/biostables.c (what the firmware reads).

Ports (x86 I/O mapping, as QEMU's pc machine):

* 510h - selector, 16-bit write (a word write to 511h selects too); selecting resets the offset.
  A byte read of 510h or 511h reads the next data byte of the selected item (items shorter than
  the offset, and keys with nothing behind them, read 0).  Byte writes of data are ignored (QEMU
  dropped the legacy write path in 2.4; writes go through DMA).
* 514h / 518h - the DMA address, high and low dword, big-endian: a dword write to 514h sets the
  high half (and clears the low), a dword write to 518h ORs in the low half and starts the
  transfer.  Reading them returns the signature "QEMU CFG".  The transfer runs at once (no
  virtual time passes): the guest's ``{be32 control; be32 length; be64 address}`` is read,
  control bit 3 SELECT (key in bits 31:16), bit 1 READ, bit 4 WRITE, bit 2 SKIP are carried
  out, and control is written back as 0 or 1 (ERROR).  Reads past the end of an item fill the
  guest buffer with zeros; writes need a writable item and must fit in it.  A structure or
  buffer beyond 4 GiB (the CPU's physical space) ends the transfer with ERROR.

Items: keys 0000h-001Fh and the arch-local 8000h+ keys hold fixed items (``add_item``); files
(``add_file``) get keys from 0020h up in name order, as QEMU assigns them, and the directory at
key 0019h is rebuilt: ``be32 count``, then per file ``be32 size, be16 select, be16 reserved,
char name[56]``.  Bit 14 of a selector (the old write channel) is ignored.

What SeaBIOS 1.16 reads, and what Aero provides (``pc_defaults``):

=========================  ======================================================  ==========
key / file                 SeaBIOS use                                             Aero
=========================  ======================================================  ==========
0000h SIGNATURE            "QEMU": fw_cfg present (qemu_cfg_detect)                 yes
0001h ID                   bit 1 = DMA interface (bit 0 traditional)                3
0002h UUID                 (SMBIOS type 1 when SeaBIOS builds SMBIOS itself: no)    16 bytes
0003h RAM_SIZE             not read by SeaBIOS (CMOS/e820 are)                      u64
0004h NOGRAPHIC            u16: nonzero adds etc/sercon-port = 3F8h                 u16
0005h NB_CPUS              u16: present CPUs                                        1
000Dh NUMA                 u64 node count, then max_cpus u64, then nodes u64         0, zeros
000Eh BOOT_MENU            "etc/show-boot-menu" (2 bytes; 0 skips the menu)          0
000Fh MAX_CPUS             "etc/max-cpus" (2 bytes)                                  1
0019h FILE_DIR             the file directory                                       yes
8000h ACPI_TABLES          u16 count of legacy -acpitable blobs                     0
8001h SMBIOS_ENTRIES       u16 count of legacy SMBIOS fields/tables                 0
8002h IRQ0_OVERRIDE        "etc/irq0-override" (1 byte, MADT/MP IRQ0->pin 2)         1
8003h E820_TABLE           u32 count + reservations, only without "etc/e820"         0
0007h-0018h kernel keys    not read by SeaBIOS itself (linuxboot option ROMs)       via add_item
000Ch BOOT_DEVICE          not read on x86 (the boot order comes from CMOS 38h/3Dh) via add_item
etc/e820                   le {u64 addr, u64 len, u32 type} x n (qemu_early_e820):  RAM 0..size
                           RAM (1) and reserved (2) ranges; RamSize = top below 4G
bootorder                  newline-separated OpenFirmware paths (boot priority)    machine
bios-geometry              "path cyls heads spt" lines (INT 13h LCHS)               machine
etc/boot-menu-wait         u16/u32 ms to wait for the menu key (default 2500)       machine
etc/boot-menu-message      text shown instead of "Press ESC for boot menu."         -
etc/boot-menu-key          scan code of the menu key (default 1 = ESC)              -
etc/boot-fail-wait         u32 ms before reboot when nothing boots (-1 = never)     machine
etc/table-loader           ACPI linker/loader script (if present, PM base 600h)     no: SeaBIOS
etc/acpi/rsdp, /tables     the loader's blobs                                       builds ACPI
etc/smbios/smbios-anchor,  SMBIOS entry point + tables (else SeaBIOS builds them)    -
  etc/smbios/smbios-tables
etc/system-states          6 bytes: S3/S4 enable+value for SeaBIOS's own SSDT       -
etc/reserved-memory-end    u64: start of the 64-bit PCI window                      -
etc/msr_feature_control    u64 for MSR 3Ah                                          -
etc/max-cpus, etc/irq0-override, etc/show-boot-menu: the legacy keys above (SeaBIOS names them)
etc/sercon-port            u16 serial console port (SeaBIOS's sercon)               -
etc/extra-pci-roots        u64 extra root buses                                     -
etc/pvpanic-port           u16 pvpanic port for SeaBIOS's SSDT                      -
etc/floppy0, etc/floppy1   u8 floppy type when no CMOS                              -
etc/ps2-keyboard-spinup,   u64 ms / count tweaks                                    -
  etc/usb-time-sigatt,
  etc/threads
etc/optionroms-checksum,   option ROM policy ints (defaults 1, QEMU, 2, 1)          -
  etc/s3-resume-vga-init,
  etc/pci-optionrom-exec,
  etc/screen-and-debug
etc/advertise-serial-debug-port  int                                                -
etc/igd-opregion, etc/igd-bdsm-size  Intel IGD passthrough                          -
genroms/*, vgaroms/*       option ROMs run at POST (vgaroms/sgabios.bin: serial VGA) -
bootsplash.jpg/.bmp        boot splash picture                                      -
links, img/*, floppyimg/*, etc/sdcard*  coreboot CBFS names (unused on QEMU)         -
=========================  ======================================================  ==========

"etc/ramfb" and "opt/..." files are not read by SeaBIOS (ramfb belongs to QEMU's VGA BIOS and
"opt/" is the namespace for user files); ``add_file`` takes any name of up to 55 bytes.
"""

from __future__ import annotations

import struct

from .base import Device

CTL_PORT, DATA_PORT, DMA_PORT = 0x510, 0x511, 0x514

SIGNATURE, ID, UUID, RAM_SIZE, NOGRAPHIC, NB_CPUS, MACHINE_ID = 0x00, 0x01, 0x02, 0x03, 0x04, \
    0x05, 0x06
KERNEL_ADDR, KERNEL_SIZE, KERNEL_CMDLINE, INITRD_ADDR, INITRD_SIZE, BOOT_DEVICE = 0x07, 0x08, \
    0x09, 0x0A, 0x0B, 0x0C
NUMA, BOOT_MENU, MAX_CPUS, KERNEL_ENTRY, KERNEL_DATA, INITRD_DATA = 0x0D, 0x0E, 0x0F, 0x10, \
    0x11, 0x12
CMDLINE_ADDR, CMDLINE_SIZE, CMDLINE_DATA, SETUP_ADDR, SETUP_SIZE, SETUP_DATA = 0x13, 0x14, \
    0x15, 0x16, 0x17, 0x18
FILE_DIR, FILE_FIRST = 0x19, 0x20
WRITE_CHANNEL, ARCH_LOCAL = 0x4000, 0x8000
ACPI_TABLES, SMBIOS_ENTRIES, IRQ0_OVERRIDE, E820_TABLE, HPET = 0x8000, 0x8001, 0x8002, \
    0x8003, 0x8004
INVALID = 0xFFFF

ID_TRADITIONAL, ID_DMA = 0x01, 0x02
DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SKIP, DMA_CTL_SELECT, DMA_CTL_WRITE = 0x01, 0x02, 0x04, \
    0x08, 0x10
DMA_SIGNATURE = b"QEMU CFG"
FILE_NAME_LEN = 56

E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE = 1, 2, 3, 4, 5
_E820 = struct.Struct("<QQI")


def e820_table(entries) -> bytes:
    """The "etc/e820" file: little-endian {u64 address, u64 length, u32 type} per entry."""
    return b"".join(_E820.pack(a, n, t) for a, n, t in entries)


def parse_e820(data: bytes) -> list[tuple[int, int, int]]:
    return [_E820.unpack_from(data, i) for i in range(0, len(data) - 19, 20)]


class _Item:
    __slots__ = ("data", "writable", "write_cb")

    def __init__(self, data, writable=False, write_cb=None):
        self.data = bytearray(data)
        self.writable = writable
        self.write_cb = write_cb


class FWCfg(Device):
    name = "fw_cfg"
    STATE_VERSION = 1

    def __init__(self, mem_read=None, mem_write=None, dma: bool = True):
        self.mem_read = mem_read            # callable(addr, n) -> bytes (guest physical)
        self.mem_write = mem_write          # callable(addr, data)
        self.dma_enabled = dma and mem_read is not None and mem_write is not None
        self.items: dict[int, _Item] = {}
        self.files: dict[str, _Item] = {}
        self.file_keys: dict[str, int] = {}
        self.cur_key = INVALID
        self.cur_offset = 0
        self.dma_addr = 0
        self.dma_transfers = 0
        self.dma_errors = 0
        self.selects = 0
        self.add_item(SIGNATURE, b"QEMU")
        self.add_item(ID, struct.pack("<I", ID_TRADITIONAL | (ID_DMA if self.dma_enabled
                                                              else 0)))
        self._rebuild_dir()

    # -- configuration --------------------------------------------------------------------------
    def register(self, iobus) -> None:
        iobus.register(CTL_PORT, 2, self, self._data_read, None, widths=(1,))
        iobus.register(CTL_PORT, 2, self, None, self._ctl_write, widths=(1, 2))
        if self.dma_enabled:
            iobus.register(DMA_PORT, 8, self, self._dma_read, self._dma_write, widths=(4,))

    def add_item(self, key: int, data: bytes, writable: bool = False, write_cb=None) -> None:
        """A fixed item (keys below 20h other than 19h, or arch-local 8000h+)."""
        key &= ~WRITE_CHANNEL
        if FILE_FIRST <= (key & 0x3FFF) and not key & ARCH_LOCAL or key == FILE_DIR:
            raise ValueError(f"key {key:#06x} belongs to the file directory")
        self.items[key] = _Item(data, writable, write_cb)

    def add_i16(self, key: int, v: int) -> None:
        self.add_item(key, struct.pack("<H", v))

    def add_i32(self, key: int, v: int) -> None:
        self.add_item(key, struct.pack("<I", v))

    def add_i64(self, key: int, v: int) -> None:
        self.add_item(key, struct.pack("<Q", v))

    def add_file(self, name: str, data: bytes, writable: bool = False, write_cb=None) -> int:
        """Add (or replace) a named file; returns its selector key (keys follow name order, so
        adding a file renumbers the ones after it: add files before the firmware runs)."""
        raw = name.encode()
        if not raw or len(raw) >= FILE_NAME_LEN:
            raise ValueError(f"fw_cfg file name must be 1-{FILE_NAME_LEN - 1} bytes: {name!r}")
        if len(self.files) >= 0x3FFF - FILE_FIRST and name not in self.files:
            raise ValueError("fw_cfg: too many files")
        self.files[name] = _Item(data, writable, write_cb)
        self._rebuild_dir()
        return self.file_keys[name]

    def file(self, name: str) -> bytes:
        return bytes(self.files[name].data)

    def item(self, key: int) -> bytes | None:
        it = self._lookup(key)
        return None if it is None else bytes(it.data)

    def _rebuild_dir(self) -> None:
        names = sorted(self.files, key=lambda n: n.encode())
        self.file_keys = {n: FILE_FIRST + i for i, n in enumerate(names)}
        d = bytearray(struct.pack(">I", len(names)))
        for n in names:
            d += struct.pack(">IHH", len(self.files[n].data), self.file_keys[n], 0)
            d += n.encode().ljust(FILE_NAME_LEN, b"\0")
        self.items[FILE_DIR] = _Item(d)
        self._by_key = {self.file_keys[n]: self.files[n] for n in names}

    def _lookup(self, key: int):
        if key == INVALID:
            return None
        key &= ~WRITE_CHANNEL
        it = self.items.get(key)
        if it is None and not key & ARCH_LOCAL:
            it = self._by_key.get(key)
        return it

    def pc_defaults(self, ram_size: int, cpus: int = 1, uuid: bytes = bytes(16),
                    nographic: bool = False, boot_menu: bool = False,
                    e820: list | None = None) -> None:
        """The items QEMU's pc machine provides, for an Aero PC with ``ram_size`` bytes below
        4 GiB: RAM size, CPU counts, NUMA (none), boot menu flag, UUID, the legacy x86 keys
        (no ACPI/SMBIOS blobs, IRQ0 override on, no legacy e820 reservations) and "etc/e820"
        (default: one RAM entry 0..ram_size, as QEMU writes it; SeaBIOS carves the 640 KiB hole
        and the BIOS areas itself)."""
        if len(uuid) != 16:
            raise ValueError("UUID must be 16 bytes")
        self.add_item(UUID, uuid)
        self.add_i64(RAM_SIZE, ram_size)
        self.add_i16(NOGRAPHIC, 1 if nographic else 0)
        self.add_i16(NB_CPUS, cpus)
        self.add_i16(MAX_CPUS, cpus)
        self.add_i16(BOOT_MENU, 1 if boot_menu else 0)
        self.add_item(NUMA, bytes(8 * (1 + cpus)))
        self.add_i16(ACPI_TABLES, 0)
        self.add_i16(SMBIOS_ENTRIES, 0)
        self.add_i32(IRQ0_OVERRIDE, 1)
        self.add_i32(E820_TABLE, 0)
        self.add_file("etc/e820", e820_table(e820 if e820 is not None
                                             else [(0, ram_size, E820_RAM)]))

    # -- the traditional interface --------------------------------------------------------------
    def select(self, key: int) -> None:
        self.selects += 1
        self.cur_offset = 0
        key &= 0xFFFF
        self.cur_key = key if self._lookup(key) is not None else INVALID

    def _ctl_write(self, port: int, size: int, value: int) -> None:
        if size == 2:
            self.select(value)
        # byte writes (the legacy data write path) are ignored, as in QEMU >= 2.4

    def _data_read(self, port: int, size: int) -> int:
        it = self._lookup(self.cur_key)
        if it is None or self.cur_offset >= len(it.data):
            return 0
        b = it.data[self.cur_offset]
        self.cur_offset += 1
        return b

    # -- DMA ------------------------------------------------------------------------------------
    def _dma_read(self, port: int, size: int) -> int:
        off = port - DMA_PORT
        return int.from_bytes(DMA_SIGNATURE[off: off + 4], "little")

    def _dma_write(self, port: int, size: int, value: int) -> None:
        v = int.from_bytes((value & 0xFFFFFFFF).to_bytes(4, "little"), "big")
        if port == DMA_PORT:
            self.dma_addr = v << 32
        elif port == DMA_PORT + 4:
            self.dma_addr |= v
            self.dma_transfer()

    def dma_transfer(self) -> None:
        addr, self.dma_addr = self.dma_addr, 0
        self.dma_transfers += 1
        if addr + 16 > 1 << 32:                 # beyond the 32-bit physical space: no access
            self.dma_errors += 1
            return
        control, length, address = struct.unpack(">IIQ", self.mem_read(addr, 16))
        if length and address + length > 1 << 32:
            self.dma_errors += 1
            self.mem_write(addr, struct.pack(">I", DMA_CTL_ERROR))
            return
        if control & DMA_CTL_SELECT:
            self.select(control >> 16)
        it = self._lookup(self.cur_key)
        if control & DMA_CTL_READ:
            op = "read"
        elif control & DMA_CTL_WRITE:
            op = "write"
        elif control & DMA_CTL_SKIP:
            op = "skip"
        else:
            op, length = None, 0
        status = 0
        while length > 0 and not status:
            if it is None or self.cur_offset >= len(it.data):
                n = min(length, 0x10000)             # zero-fill in bounded chunks
                if op == "read":
                    self.mem_write(address, bytes(n))
                elif op == "write":
                    status = DMA_CTL_ERROR
            else:
                n = min(length, len(it.data) - self.cur_offset)
                o = self.cur_offset
                if op == "read":
                    self.mem_write(address, bytes(it.data[o: o + n]))
                elif op == "write":
                    if not it.writable or n != length:
                        status = DMA_CTL_ERROR
                    else:
                        it.data[o: o + n] = self.mem_read(address, n)
                        if it.write_cb is not None:
                            it.write_cb(o, n)
                self.cur_offset += n
            address = (address + n) & 0xFFFFFFFFFFFFFFFF
            length -= n
        if status:
            self.dma_errors += 1
        self.mem_write(addr, struct.pack(">I", status))

    # -- Device ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self.cur_key = INVALID
        self.cur_offset = 0
        self.dma_addr = 0

    def _key_name(self, key: int) -> str:
        for n, k in self.file_keys.items():
            if k == key:
                return n
        return ""

    def summary(self) -> dict:
        key = self.cur_key
        sel = "-" if key == INVALID else f"{key:04X}"
        name = self._key_name(key) if key != INVALID else ""
        return {"selected": sel + (f" {name}" if name else ""), "offset": self.cur_offset,
                "items": len(self.items), "files": len(self.files),
                "DMA": (f"{self.dma_transfers} transfers, {self.dma_errors} errors"
                        if self.dma_enabled else "off"),
                "selects": self.selects}

    def get_state(self) -> dict:
        """Position and the contents of writable items (the rest is configuration)."""
        writable = {f"k{k:04x}": it.data.hex() for k, it in sorted(self.items.items())
                    if it.writable}
        writable.update({f"f:{n}": it.data.hex() for n, it in sorted(self.files.items())
                         if it.writable})
        return {"version": self.STATE_VERSION, "cur_key": self.cur_key,
                "cur_offset": self.cur_offset, "dma_addr": self.dma_addr,
                "counts": [self.dma_transfers, self.dma_errors, self.selects],
                "writable": writable}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.cur_key = st["cur_key"]
        self.cur_offset = st["cur_offset"]
        self.dma_addr = st["dma_addr"]
        self.dma_transfers, self.dma_errors, self.selects = st["counts"]
        for k, hx in st["writable"].items():
            it = self.items.get(int(k[1:], 16)) if k[0] == "k" else self.files.get(k[2:])
            if it is not None:
                it.data[:] = bytes.fromhex(hx)
