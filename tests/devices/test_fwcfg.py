"""fw_cfg through its ports as SeaBIOS drives it: the traditional selector/data interface, the
file directory, and the DMA interface into a bytearray-backed guest memory."""

import struct

import pytest

from aero.devices.base import IOBus
from aero.devices import fwcfg as F
from aero.devices.fwcfg import FWCfg, e820_table, parse_e820
from aero.mem.bus import Bus


class Mem:
    def __init__(self, size=1 << 20):
        self.b = bytearray(size)

    def read(self, a, n):
        return bytes(self.b[a: a + n])

    def write(self, a, data):
        self.b[a: a + len(data)] = data


class Rig:
    def __init__(self, dma=True):
        self.mem = Mem()
        self.io = IOBus()
        self.fw = FWCfg(self.mem.read, self.mem.write, dma=dma)
        self.fw.register(self.io)

    def select(self, key):
        self.io.write(0x510, 2, key)                         # outw(f, PORT_QEMU_CFG_CTL)

    def read(self, n):
        return bytes(self.io.read(0x511, 1) for _ in range(n))   # insb

    def dma(self, control, length, address, at=0x1000):
        """SeaBIOS qemu_cfg_dma_transfer: build the access in memory, write its address
        big-endian to 518h, return the control word the device wrote back."""
        self.mem.write(at, struct.pack(">IIQ", control, length, address))
        be = int.from_bytes(at.to_bytes(4, "big"), "little")  # cpu_to_be32(addr) in a register
        self.io.write(0x518, 4, be)
        return struct.unpack(">I", self.mem.read(at, 4))[0]


@pytest.fixture
def rig():
    r = Rig()
    r.fw.pc_defaults(64 << 20)
    return r


def test_signature_and_id_through_the_data_port(rig):
    rig.select(F.SIGNATURE)
    assert rig.read(4) == b"QEMU"
    assert rig.read(2) == b"\0\0"                            # past the end: zeros
    rig.select(F.ID)
    assert struct.unpack("<I", rig.read(4))[0] == 3          # traditional + DMA
    assert rig.io.read(0x510, 1) == 0                        # 510h reads data too (ended)
    rig.select(F.SIGNATURE)
    assert rig.io.read(0x510, 1) == ord("Q")
    assert rig.io.read(0x510, 2) == ord("E") | ord("M") << 8    # split into 510h, 511h


def test_without_dma_the_id_says_so():
    r = Rig(dma=False)
    r.select(F.ID)
    assert struct.unpack("<I", r.read(4))[0] == 1
    assert r.io.owner.get(0x514) is None and r.io.read(0x514, 4) == 0xFFFFFFFF


def test_pc_default_items(rig):
    def item(key, fmt):
        rig.select(key)
        return struct.unpack(fmt, rig.read(struct.calcsize(fmt)))[0]
    assert item(F.RAM_SIZE, "<Q") == 64 << 20
    assert item(F.NB_CPUS, "<H") == 1 and item(F.MAX_CPUS, "<H") == 1
    assert item(F.BOOT_MENU, "<H") == 0 and item(F.NOGRAPHIC, "<H") == 0
    assert item(F.ACPI_TABLES, "<H") == 0 and item(F.SMBIOS_ENTRIES, "<H") == 0
    assert item(F.IRQ0_OVERRIDE, "<B") == 1 and item(F.E820_TABLE, "<I") == 0
    rig.select(F.NUMA)
    assert rig.read(16) == bytes(16)
    rig.select(F.UUID)
    assert rig.read(16) == bytes(16)
    rig.select(0x0123)                                       # nothing there
    assert rig.read(4) == bytes(4)
    rig.select(0x4000 | F.SIGNATURE)                         # the write-channel bit is ignored
    assert rig.read(4) == b"QEMU"


def read_dir(rig):
    rig.select(F.FILE_DIR)
    (count,) = struct.unpack(">I", rig.read(4))
    out = []
    for _ in range(count):
        size, sel, res = struct.unpack(">IHH", rig.read(8))
        name = rig.read(56).rstrip(b"\0").decode()
        out.append((name, size, sel, res))
    return out


def test_file_directory_is_big_endian_and_sorted(rig):
    k1 = rig.fw.add_file("etc/boot-menu-wait", struct.pack("<H", 0))
    rig.fw.add_file("bootorder", b"/pci@i0cf8/isa@1/fdc@03f0/floppy@0\n")
    rig.fw.add_file("etc/show-boot-menu", b"\0\0")
    d = read_dir(rig)
    names = [n for n, *_ in d]
    assert names == ["bootorder", "etc/boot-menu-wait", "etc/e820", "etc/show-boot-menu"]
    assert [sel for _, _, sel, _ in d] == [0x20, 0x21, 0x22, 0x23]
    assert all(res == 0 for *_, res in d)
    assert dict((n, s) for n, s, *_ in d)["bootorder"] == 35
    assert rig.fw.file_keys["etc/boot-menu-wait"] == 0x21 and k1 == 0x20   # renumbered
    rig.select(0x20)
    assert rig.read(35) == b"/pci@i0cf8/isa@1/fdc@03f0/floppy@0\n"
    rig.select(0x22)
    assert parse_e820(rig.read(20)) == [(0, 64 << 20, 1)]
    with pytest.raises(ValueError):
        rig.fw.add_file("x" * 56, b"")
    with pytest.raises(ValueError):
        rig.fw.add_item(0x20, b"")


def test_e820_file_layout():
    t = e820_table([(0, 0x9FC00, F.E820_RAM), (0xFEFFC000, 0x4000, F.E820_RESERVED)])
    assert len(t) == 40
    assert t[:20] == bytes.fromhex("0000000000000000" "00fc090000000000" "01000000")
    assert parse_e820(t)[1] == (0xFEFFC000, 0x4000, 2)


def test_dma_signature_ports(rig):
    assert rig.io.read(0x514, 4).to_bytes(4, "little") == b"QEMU"
    assert rig.io.read(0x518, 4).to_bytes(4, "little") == b" CFG"


def test_dma_select_and_read(rig):
    ctl = rig.dma(F.FILE_DIR << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, 4, 0x2000)
    assert ctl == 0
    assert struct.unpack(">I", rig.mem.read(0x2000, 4))[0] == 1
    # without SELECT a read continues where the last one stopped (qemu_cfg_read)
    rig.dma(F.DMA_CTL_READ, 64, 0x2100)
    size, sel = struct.unpack(">IH", rig.mem.read(0x2100, 6))
    assert (size, sel) == (20, 0x20) and rig.mem.read(0x2108, 9) == b"etc/e820\0"
    # reading past the end of the item fills zeros
    rig.mem.write(0x3000, b"\xAA" * 16)
    assert rig.dma(F.SIGNATURE << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, 8, 0x3000) == 0
    assert rig.mem.read(0x3000, 9) == b"QEMU\0\0\0\0\xAA"
    # skip, then read
    rig.dma(F.SIGNATURE << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_SKIP, 2, 0)
    rig.dma(F.DMA_CTL_READ, 2, 0x3100)
    assert rig.mem.read(0x3100, 2) == b"MU"
    assert rig.fw.dma_transfers == 5 and rig.fw.dma_addr == 0


def test_dma_high_address_word_and_control_without_op(rig):
    rig.mem.write(0x1000, struct.pack(">IIQ", F.DMA_CTL_SELECT, 4, 0x2000))
    rig.io.write(0x514, 4, 0)                                # high half 0
    rig.io.write(0x518, 4, int.from_bytes((0x1000).to_bytes(4, "big"), "little"))
    assert rig.mem.read(0x1000, 4) == bytes(4)               # select only: done, no data
    assert rig.mem.read(0x2000, 4) == bytes(4)
    assert rig.fw.cur_key == F.SIGNATURE
    rig.select(F.SIGNATURE)


def test_dma_write_needs_a_writable_file(rig):
    got = []
    key = rig.fw.add_file("etc/scratch", bytes(8), writable=True,
                          write_cb=lambda off, n: got.append((off, n)))
    rig.mem.write(0x4000, b"ABCDEFGH")
    assert rig.dma(key << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_WRITE, 4, 0x4000) == 0
    assert rig.fw.file("etc/scratch") == b"ABCD" + bytes(4) and got == [(0, 4)]
    assert rig.dma(F.DMA_CTL_WRITE, 8, 0x4000) == F.DMA_CTL_ERROR   # does not fit (4 left)
    key_e820 = rig.fw.file_keys["etc/e820"]
    assert rig.dma(key_e820 << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_WRITE, 4, 0x4000) == \
        F.DMA_CTL_ERROR
    assert rig.fw.dma_errors == 2
    st = rig.fw.get_state()
    other = Rig()
    other.fw.pc_defaults(64 << 20)
    other.fw.add_file("etc/scratch", bytes(8), writable=True)
    other.fw.set_state(st)
    assert other.fw.file("etc/scratch") == b"ABCD" + bytes(4)


def test_seabios_early_e820_and_file_loading_into_a_real_bus():
    """qemu_cfg_detect + qemu_early_e820 + qemu_cfg_init's directory walk, with DMA into an
    aero.mem.bus.Bus."""
    bus = Bus(1 << 20)
    io = IOBus()
    fw = FWCfg(bus.read_bytes, bus.write_bytes)
    fw.register(io)
    fw.pc_defaults(512 << 20, e820=[(0, 512 << 20, F.E820_RAM),
                                    (0xFEFFC000, 0x4000, F.E820_RESERVED)])
    fw.add_file("etc/boot-fail-wait", struct.pack("<i", -1))

    io.write(0x510, 2, F.SIGNATURE)
    assert bytes(io.read(0x511, 1) for _ in range(4)) == b"QEMU"

    def dma(control, length, address):
        bus.write_bytes(0x7000, struct.pack(">IIQ", control, length, address))
        io.write(0x518, 4, int.from_bytes((0x7000).to_bytes(4, "big"), "little"))
        while struct.unpack(">I", bus.read_bytes(0x7000, 4))[0] & ~F.DMA_CTL_ERROR:
            raise AssertionError("transfer did not complete at once")

    dma(F.ID << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, 4, 0x8000)
    assert struct.unpack("<I", bus.read_bytes(0x8000, 4))[0] & 2
    dma(F.FILE_DIR << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, 4, 0x8000)
    count = struct.unpack(">I", bus.read_bytes(0x8000, 4))[0]
    found = {}
    for _ in range(count):
        dma(F.DMA_CTL_READ, 64, 0x8100)
        size, sel = struct.unpack(">IH", bus.read_bytes(0x8100, 6))
        found[bus.read_bytes(0x8108, 56).rstrip(b"\0").decode()] = (sel, size)
    sel, size = found["etc/e820"]
    assert size == 40
    dma(sel << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, size, 0x9000)
    entries = parse_e820(bus.read_bytes(0x9000, size))
    assert entries == [(0, 512 << 20, 1), (0xFEFFC000, 0x4000, 2)]
    sel, size = found["etc/boot-fail-wait"]
    dma(sel << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, size, 0x9100)
    assert struct.unpack("<i", bus.read_bytes(0x9100, 4))[0] == -1
    assert fw.summary()["DMA"] == "6 transfers, 0 errors"


def test_dma_beyond_4g_is_an_error_not_a_crash(rig):
    assert rig.dma(F.SIGNATURE << 16 | F.DMA_CTL_SELECT | F.DMA_CTL_READ, 4,
                   0xFFFFFFFE) == F.DMA_CTL_ERROR
    rig.io.write(0x514, 4, int.from_bytes((1).to_bytes(4, "big"), "little"))   # high half 1
    rig.io.write(0x518, 4, 0)
    assert rig.fw.dma_errors == 2 and rig.fw.dma_addr == 0
