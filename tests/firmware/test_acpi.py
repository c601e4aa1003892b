"""ACPI tables and the AML encoder (aero/firmware/aml.py, aero/firmware/acpi.py).

Byte encodings are derived by hand from ACPI 6.5 section 20 (AML grammar) and 6.4 (resource
descriptors).  The external references: ACPICA's ``iasl`` (disassembles our tables; its compiler,
fed the disassembly, must reproduce our DSDT byte for byte) and ``acpiexec`` (ACPICA's AML
interpreter runs our methods).  Both come with Debian's acpica-tools; those tests skip without it.
"""

import re
import shutil
import struct
import subprocess

import pytest

from aero.devices import acpi_pm
from aero.firmware import acpi, aml
from aero.firmware.aml import (
    DMA, IO, IRQ, And, Arg, Buffer, Call, DWordMemory, Device, EisaId, Else, EndTag, Field,
    FixedIO, If, IRQNoFlags, LEqual, LGreaterEqual, LLessEqual, LNotEqual, Local, Memory32Fixed,
    Method, Name, NameRef, One, Ones, OpRegion, Package, QWordMemory, ResourceTemplate, Return,
    Scope, Store, String, WordBusNumber, WordIO, Zero, BytePrefix, DWordPrefix, QWordPrefix,
    WordPrefix, eisa_id, encode, name_string, pkg_length)

IASL = shutil.which("iasl")
ACPIEXEC = shutil.which("acpiexec")
needs_iasl = pytest.mark.skipif(IASL is None, reason="iasl absent (apt-get install acpica-tools)")
needs_acpiexec = pytest.mark.skipif(ACPIEXEC is None,
                                    reason="acpiexec absent (apt-get install acpica-tools)")

BASE = 0x07FE0000
HOLE = (0x08000000, 0xFEBFFFFF)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# -- 20.2.4 package length ------------------------------------------------------------------------

def decode_pkg_length(data: bytes) -> tuple[int, int]:
    """Independent decoder per 20.2.4: returns (PkgLength value, bytes used)."""
    lead = data[0]
    n = lead >> 6
    if n == 0:
        return lead & 0x3F, 1
    value = lead & 0x0F
    for i in range(n):
        value |= data[1 + i] << (4 + 8 * i)
    return value, 1 + n


@pytest.mark.parametrize("content,expected", [
    (0, "01"), (5, "06"), (62, "3f"),              # one byte: the total (incl. itself) <= 63
    (63, "4104"),                                  # total 65 = 0x041: lead 0x41, then 0x04
    (4093, "4fff"),                                # total 4095, the largest two-byte length
    (4094, "810001"),                              # total 4097 = 0x1001
    (0xFFFFF - 3, "8fffff"),                       # total 0xFFFFF, the largest three-byte length
    (0xFFFFF - 2, "c1000001"),                     # total 0x100001: four bytes
])
def test_pkg_length_encodings(content, expected):
    enc = pkg_length(content)
    assert enc.hex() == expected
    value, used = decode_pkg_length(enc)
    assert used == len(enc) and value == content + len(enc)


def test_pkg_length_roundtrip_all_widths():
    for content in list(range(0, 300)) + [4090, 4095, 70000, 1 << 20, (1 << 28) - 10]:
        enc = pkg_length(content)
        value, used = decode_pkg_length(enc)
        assert value == content + used
        # the lead byte of a multi-byte encoding keeps bits 5:4 zero
        if used > 1:
            assert enc[0] & 0x30 == 0
    with pytest.raises(aml.AmlError):
        pkg_length(1 << 28)


# -- 20.2.2 names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path,expected", [
    ("_SB", b"_SB_"),
    ("PCI0", b"PCI0"),
    ("\\", b"\\\x00"),
    ("\\_SB", b"\\_SB_"),
    ("\\_SB.PCI0", b"\\\x2e_SB_PCI0"),
    ("\\_SB.PCI0.ISA", b"\\\x2f\x03_SB_PCI0ISA_"),
    ("^PCI0", b"^PCI0"),
    ("^^A.B", b"^^\x2eA___B___"),
    ("_SB.PCI0.ISA.PRQ0", b"\x2f\x04_SB_PCI0ISA_PRQ0"),
])
def test_name_strings(path, expected):
    assert name_string(path) == expected


@pytest.mark.parametrize("bad", ["", "TOOLONG", "1ABC", "a.b", "\\_SB..X", "AB-C", "^\\X"])
def test_bad_names_rejected(bad):
    with pytest.raises(aml.AmlError):
        name_string(bad)


# -- 20.2.3 data objects --------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    (0, "00"), (1, "01"), (2, "0a02"), (0xFF, "0aff"), (0x100, "0b0001"), (0xFFFF, "0bffff"),
    (0x10000, "0c00000100"), (0x030AD041, "0c41d00a03"), (0xFFFFFFFF, "0cffffffff"),
    (0x100000000, "0e0000000001000000"), (0xFFFFFFFFFFFFFFFF, "ff"),
])
def test_integer_encodings(value, expected):
    assert encode(value).hex() == expected


def test_explicit_integer_prefixes_and_constants():
    assert bytes(BytePrefix(1)) == h("0a01")
    assert bytes(WordPrefix(0x12)) == h("0b1200")
    assert bytes(DWordPrefix(0)) == h("0c00000000")
    assert bytes(QWordPrefix(0x0102030405060708)) == h("0e0807060504030201")
    assert (bytes(Zero), bytes(One), bytes(Ones)) == (b"\x00", b"\x01", b"\xff")
    with pytest.raises(aml.AmlError):
        bytes(BytePrefix(0x100))
    with pytest.raises(aml.AmlError):
        encode(1 << 64)


@pytest.mark.parametrize("text,value", [
    ("PNP0A03", 0x030AD041), ("PNP0000", 0x0000D041), ("PNP0501", 0x0105D041),
    ("PNP0303", 0x0303D041), ("PNP0C0F", 0x0F0CD041), ("PNP0B00", 0x000BD041),
])
def test_eisa_id(text, value):
    # P=10h N=0Eh P=10h: 0 10000 01110 10000 = 41D0h, then the digits, stored big-endian.
    assert eisa_id(text) == value


def test_eisa_id_encoding_and_errors():
    assert bytes(EisaId("PNP0A03")) == h("0c 41d00a03")
    assert bytes(EisaId("PNP0000")) == h("0b 41d0")          # shortest, as iasl compiles it
    for bad in ("PNP0A0", "pnp0A03", "PNP0G03"):
        with pytest.raises(aml.AmlError):
            eisa_id(bad)


def test_string_buffer_package():
    assert bytes(String("Aero")) == h("0d 4165726f 00")
    assert bytes(Buffer(b"\x01\x02\x03")) == h("11 06 0a03 010203")
    assert bytes(Package([0, 0, 0, 0])) == h("12 06 04 00000000")
    assert bytes(Package([1, "A", [2]])) == h("12 0b 03 01 0d4100 12 04 01 0a02")
    assert bytes(Package([NameRef("LNKA"), 0x0001FFFF])) == h("12 0b 02 4c4e4b41 0cffff0100")
    big = bytes(Package(list(range(2, 40))))                 # 38 byte-prefixed elements
    # NumElements + 76 bytes = 77, plus a two-byte PkgLength = 79 = 0x04F: lead 0x4F, then 0x04
    assert big[:4] == h("12 4f 04 26") and len(big) == 80


# -- 20.2.5 named objects, statements, expressions ------------------------------------------------

def test_name_scope_device_method():
    assert bytes(Name("_S5", Package([0, 0, 0, 0]))) == h("08 5f53355f 12 06 04 00000000")
    assert bytes(Scope("\\_SB", [])) == h("10 06 5c5f53425f")
    assert bytes(Device("PCI0", [Name("_HID", EisaId("PNP0A03"))])) == \
        h("5b82 0f 50434930 08 5f484944 0c41d00a03")
    assert bytes(Method("_STA", 0, [Return(0x0F)])) == h("14 09 5f535441 00 a4 0a0f")
    assert bytes(Method("_SRS", 1, [], serialized=True)) == h("14 06 5f535253 09")
    assert bytes(Method("MTHD", 7, [], sync_level=15)) == h("14 06 4d544844 f7")
    with pytest.raises(aml.AmlError):
        Method("BAD", 8)


def test_opregion_and_field():
    assert bytes(OpRegion("P40C", "PCI_Config", 0x60, 4)) == h("5b80 50343043 02 0a60 0a04")
    assert bytes(OpRegion("PMIO", "SystemIO", 0x600, 0x40)) == h("5b80 504d494f 01 0b0006 0a40")
    assert bytes(OpRegion("SHAD", "SystemMemory", 0xE0000, 0x10000)) == \
        h("5b80 53484144 00 0c00000e00 0c00000100")
    f = Field("P40C", [("PRQ0", 8), (None, 8), ("PRQ2", 8)], access="ByteAcc")
    assert bytes(f) == h("5b81 12 50343043 01 5052513008 0008 5052513208")
    f = Field("REGN", [("WIDE", 64)], access="DWordAcc", lock=True, update="WriteAsZeros")
    assert bytes(f) == h("5b81 0c 5245474e 53 57494445 4004")   # 64 bits: two-byte length


def test_control_flow_and_operators():
    assert bytes(If(LEqual(Arg(0), 1), [Return(One)])) == h("a0 06 93 68 01 a4 01")
    assert bytes(Else([Return(Zero)])) == h("a1 03 a4 00")
    assert bytes(LNotEqual(Local(0), 2)) == h("92 93 60 0a02")
    assert bytes(LLessEqual(Local(1), 2)) == h("92 94 61 0a02")
    assert bytes(LGreaterEqual(Local(7), 2)) == h("92 95 67 0a02")
    assert bytes(Store(Local(0), "PRQ0")) == h("70 60 50525130")
    assert bytes(And("PRQ0", 0x80)) == h("7b 50525130 0a80 00")      # Target NullName
    assert bytes(And("PRQ0", 0x80, Local(2))) == h("7b 50525130 0a80 62")
    assert bytes(Call("\\_SB.LNKA._SRS", Arg(6))) == h("5c 2f 03 5f53425f 4c4e4b41 5f535253 6e")
    assert bytes(Return()) == h("a4 00")
    for bad in (lambda: Local(8), lambda: Arg(7)):
        with pytest.raises(aml.AmlError):
            bad()


# -- 6.4 resource descriptors ---------------------------------------------------------------------

def test_small_resource_descriptors():
    assert IO(0x3F8, 0x3F8, 1, 8) == h("47 01 f803 f803 01 08")
    assert IO(0x60, 0x60, 0, 1, decode16=False) == h("47 00 6000 6000 00 01")
    assert FixedIO(0x60, 1) == h("4b 6000 01")
    assert IRQNoFlags([4]) == h("22 1000")
    assert IRQNoFlags([2, 8]) == h("22 0401")
    assert IRQ([5, 10, 11], edge=False, active_low=True, shared=True) == h("23 200c 18")
    assert IRQ([1]) == h("23 0200 01")
    assert DMA([2]) == h("2a 04 00")
    assert DMA([4], size=1, bus_master=True, type_=3) == h("2a 10 65")
    with pytest.raises(aml.AmlError):
        IRQNoFlags([16])
    with pytest.raises(aml.AmlError):
        FixedIO(0x400, 1)


def test_large_resource_descriptors():
    assert Memory32Fixed(0xFEC00000, 0x1000) == h("86 0900 01 0000c0fe 00100000")
    assert WordBusNumber(0, 0xFF, 0x100) == h("88 0d00 02 0c 00 0000 0000 ff00 0000 0001")
    assert WordIO(0xD00, 0xFFFF) == h("88 0d00 01 0c 03 0000 000d ffff 0000 00f3")
    assert DWordMemory(0xA0000, 0xBFFFF) == \
        h("87 1700 00 0c 03 00000000 00000a00 ffff0b00 00000000 00000200")
    assert DWordMemory(0x80000000, 0xFEBFFFFF, cacheable=0)[5] == 0x01
    q = QWordMemory(1 << 32, (1 << 33) - 1, cacheable=0)
    assert q[:6] == h("8a 2b00 00 0c 01") and len(q) == 3 + 43
    assert struct.unpack_from("<5Q", q, 6) == (0, 1 << 32, (1 << 33) - 1, 0, 1 << 32)


def test_end_tag_checksum_and_template():
    body = IRQNoFlags([1])
    assert EndTag(body) == h("79 63")               # 22+02+00+79 = 9Dh; 9Dh + 63h = 100h
    assert EndTag(body, checksum=False) == h("79 00")
    assert bytes(ResourceTemplate([body])) == h("11 08 0a05 220200 7963")
    data = bytes(ResourceTemplate([IO(0x70, 0x70, 1, 2), IRQNoFlags([8])]))[4:]
    assert sum(data) & 0xFF == 0


# -- tables ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tables():
    return acpi.build_tables(BASE, *HOLE)


def table_at(blob: bytes, address: int) -> bytes:
    off = address - BASE
    assert 0 <= off < len(blob)
    length = struct.unpack_from("<I", blob, off + 4)[0]
    return blob[off:off + length]


def fadt_of(tables) -> bytes:
    return table_at(tables.blob, BASE + tables.offsets["FACP"])


def test_rsdp(tables):
    r = tables.rsdp
    assert len(r) == 36 and r[:8] == b"RSD PTR "
    assert sum(r[:20]) & 0xFF == 0, "RSDP checksum (first 20 bytes)"
    assert sum(r) & 0xFF == 0, "RSDP extended checksum"
    assert r[15] == 2, "revision 2: ACPI 2.0+ with XSDT"
    rsdt, length, xsdt = struct.unpack_from("<IIQ", r, 16)
    assert length == 36
    assert rsdt == BASE + tables.offsets["RSDT"] and xsdt == BASE + tables.offsets["XSDT"]


def test_pointer_chain_and_checksums(tables):
    blob = tables.blob
    rsdt_addr, _, xsdt_addr = struct.unpack_from("<IIQ", tables.rsdp, 16)
    rsdt, xsdt = table_at(blob, rsdt_addr), table_at(blob, xsdt_addr)
    assert rsdt[:4] == b"RSDT" and xsdt[:4] == b"XSDT"
    rsdt_entries = struct.unpack_from(f"<{(len(rsdt) - 36) // 4}I", rsdt, 36)
    xsdt_entries = struct.unpack_from(f"<{(len(xsdt) - 36) // 8}Q", xsdt, 36)
    assert list(rsdt_entries) == list(xsdt_entries) and len(rsdt_entries) == 1
    fadt = table_at(blob, rsdt_entries[0])
    assert fadt[:4] == b"FACP" and len(fadt) == 244 and fadt[8] == 3
    facs32, dsdt32 = struct.unpack_from("<II", fadt, 36)
    facs64, dsdt64 = struct.unpack_from("<QQ", fadt, 132)
    # X_FIRMWARE_CTRL must be 0 when FIRMWARE_CTRL is set (ACPI 6.4, 5.2.9); X_DSDT repeats DSDT
    assert facs64 == 0 and dsdt32 == dsdt64
    dsdt = table_at(blob, dsdt32)
    assert dsdt[:4] == b"DSDT" and dsdt[8] == 2
    facs = blob[facs32 - BASE:facs32 - BASE + 64]
    assert facs[:4] == b"FACS" and struct.unpack_from("<I", facs, 4)[0] == 64
    assert facs32 % 64 == 0, "FACS must be 64-byte aligned"
    for t in (rsdt, xsdt, fadt, dsdt):
        assert sum(t) & 0xFF == 0, t[:4]
        assert t[10:16] == acpi.OEM_ID
    assert len(blob) % 16 == 0
    for name, off in tables.offsets.items():
        assert off % (64 if name == "FACS" else 16) == 0


def test_fadt_fields(tables):
    f = fadt_of(tables)
    u8 = lambda o: f[o]                                   # noqa: E731
    u16 = lambda o: struct.unpack_from("<H", f, o)[0]     # noqa: E731
    u32 = lambda o: struct.unpack_from("<I", f, o)[0]     # noqa: E731
    assert u16(46) == 9                                   # SCI_INT
    assert u32(48) == acpi_pm.APM_CNT_PORT == 0xB2        # SMI_CMD
    assert (u8(52), u8(53)) == (acpi_pm.ACPI_ENABLE, acpi_pm.ACPI_DISABLE) == (0xF1, 0xF0)
    assert u32(56) == 0x600 and u32(64) == 0x604 and u32(76) == 0x608
    assert u32(60) == u32(68) == u32(72) == u32(84) == 0  # no PM1b, PM2, GPE1
    assert u32(80) == acpi_pm.GPE0_BASE == 0xAFE0
    assert (u8(88), u8(89), u8(90), u8(91), u8(92), u8(93)) == (4, 2, 0, 4, acpi_pm.GPE0_LEN, 0)
    assert u16(96) > 100 and u16(98) > 1000               # C2/C3 not supported
    assert u8(108) == 0x32                                # RTC CENTURY index
    assert u16(109) == 0x0003                             # legacy devices, 8042
    flags = u32(112)
    assert flags & (1 << 0) and flags & (1 << 2) and flags & (1 << 5) and flags & (1 << 10)
    assert not flags & (1 << 8), "TMR_VAL_EXT: the PIIX4 PM timer is 24 bits"
    assert f[116:128] == struct.pack("<BBBBQ", 1, 8, 0, 0, 0xCF9)   # RESET_REG: SystemIO 0xCF9
    assert u8(128) == 0x06
    gas = lambda o: struct.unpack_from("<BBBBQ", f, o)    # noqa: E731
    assert gas(148) == (1, 32, 0, 0, 0x600)               # X_PM1a_EVT_BLK
    assert gas(172) == (1, 16, 0, 0, 0x604)               # X_PM1a_CNT_BLK
    assert gas(208) == (1, 32, 0, 0, 0x608)               # X_PM_TMR_BLK
    assert gas(220) == (1, 32, 0, 0, 0xAFE0)              # X_GPE0_BLK
    assert gas(160) == gas(184) == gas(196) == gas(232) == (0, 0, 0, 0, 0)


def test_pm_blocks_match_the_device_model(tables):
    """The FADT describes what aero/devices/acpi_pm.py decodes: PM1_CNT.SLP_TYP of \\_S5."""
    assert acpi.SLP_TYP_S5 == acpi_pm.SLP_TYP_S5
    dsdt = table_at(tables.blob, BASE + tables.offsets["DSDT"])
    assert h("08 5c5f53355f 12 06 04") + bytes([acpi_pm.SLP_TYP_S5] * 2) + b"\0\0" in dsdt
    assert h("08 5c5f53305f 12 06 04 00000000") in dsdt


def test_dsdt_contents(tables):
    dsdt = table_at(tables.blob, BASE + tables.offsets["DSDT"])
    for hid in ("PNP0A03", "PNP0000", "PNP0200", "PNP0100", "PNP0B00", "PNP0303", "PNP0F13",
                "PNP0501", "PNP0700", "PNP0C0F"):
        assert b"\x08_HID" + bytes(EisaId(hid)) in dsdt, hid
    assert WordBusNumber(0, 0xFF, 0x100) in dsdt
    assert WordIO(0, 0xCF7) in dsdt and WordIO(0xD00, 0xFFFF) in dsdt
    assert DWordMemory(0xA0000, 0xBFFFF) in dsdt
    assert DWordMemory(*HOLE, cacheable=0) in dsdt
    assert IO(0x3F8, 0x3F8, 1, 8) + IRQNoFlags([4]) in dsdt
    assert IO(0x3F0, 0x3F0, 1, 6) + IO(0x3F7, 0x3F7, 1, 1) + IRQNoFlags([6]) + DMA([2]) in dsdt
    assert IO(0x60, 0x60, 1, 1) + IO(0x64, 0x64, 1, 1) + IRQNoFlags([1]) in dsdt
    assert IO(0x70, 0x70, 1, 2) + IRQNoFlags([8]) in dsdt
    assert IRQNoFlags([12]) + b"\x79" in dsdt


def test_extra_tables_are_listed():
    madt = aml.table(b"APIC", struct.pack("<II", 0xFEE00000, 1), revision=1)
    t = acpi.build_tables(BASE, *HOLE, extra_tables=[madt], pci_hole64=(1 << 32, (1 << 36) - 1),
                          serial_ports=((0x3F8, 4), (0x2F8, 3)))
    rsdt = table_at(t.blob, BASE + t.offsets["RSDT"])
    xsdt = table_at(t.blob, BASE + t.offsets["XSDT"])
    apic = BASE + t.offsets["APIC"]
    assert struct.unpack_from("<2I", rsdt, 36) == (BASE + t.offsets["FACP"], apic)
    assert struct.unpack_from("<2Q", xsdt, 36) == (BASE + t.offsets["FACP"], apic)
    assert table_at(t.blob, apic) == madt
    dsdt = table_at(t.blob, BASE + t.offsets["DSDT"])
    assert QWordMemory(1 << 32, (1 << 36) - 1, cacheable=0) in dsdt
    assert b"COM2" in dsdt and IO(0x2F8, 0x2F8, 1, 8) + IRQNoFlags([3]) in dsdt


def test_build_is_deterministic_and_validates_input(tables):
    assert acpi.build_tables(BASE, *HOLE) == tables
    with pytest.raises(ValueError):
        acpi.build_tables(BASE + 16, *HOLE)
    with pytest.raises(ValueError):
        acpi.build_tables(BASE, 0xF0000000, 0xE0000000)


# -- external references: ACPICA ------------------------------------------------------------------

def run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_iasl
def test_iasl_disassembles_dsdt(tables, tmp_path):
    (tmp_path / "dsdt.dat").write_bytes(table_at(tables.blob, BASE + tables.offsets["DSDT"]))
    r = run([IASL, "-d", "dsdt.dat"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Error" not in r.stdout + r.stderr
    dsl = (tmp_path / "dsdt.dsl").read_text()
    assert 'DefinitionBlock ("", "DSDT", 2, "AERO  ", "AEROPC  ", 0x00000001)' in dsl
    for dev in ("Scope (\\_SB)", "Device (PCI0)", "Device (ISA)", "Device (PIC)", "Device (DMA)",
                "Device (TMR)", "Device (RTC)", "Device (KBD)", "Device (MOU)", "Device (FDC0)",
                "Device (COM1)", "Device (LNKA)", "Device (LNKD)", "Name (\\_S5, Package (0x04)",
                "Name (\\_S0, Package (0x04)", "Name (_BBN, Zero)",
                "OperationRegion (P40C, PCI_Config, 0x60, 0x04)",
                "Field (P40C, ByteAcc, NoLock, Preserve)",
                "Method (_SRS, 1, Serialized)", "FindSetRightBit (IRQW, Local0)",
                "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,",
                "DMA (Compatibility, NotBusMaster, Transfer8, )",
                "IRQ (Level, ActiveLow, Shared, )"):
        assert dev in dsl, dev
    for hid in ("PNP0A03", "PNP0000", "PNP0200", "PNP0100", "PNP0B00", "PNP0303", "PNP0F13",
                "PNP0501", "PNP0700", "PNP0C0F"):
        assert f'Name (_HID, EisaId ("{hid}")' in dsl, hid
    irq_lists = re.findall(r"IRQNoFlags \(\)\s*\{(\d+)\}", dsl)
    assert sorted(map(int, irq_lists)) == [0, 1, 2, 4, 6, 8, 12]
    assert re.search(r"0x08000000,\s*// Range Minimum\s*0xFEBFFFFF,\s*// Range Maximum", dsl)


@needs_iasl
def test_iasl_recompiles_dsdt_to_the_same_bytes(tmp_path):
    """Round trip through ACPICA: disassemble, compile without optimizations (-oa), compare the
    AML. iasl writes zero End Tag checksums, so the DSDT is built the same way for this test."""
    ours = acpi.build_dsdt(*HOLE, pci_hole64=(1 << 32, (1 << 36) - 1),
                           serial_ports=((0x3F8, 4), (0x2F8, 3)), resource_checksums=False)
    (tmp_path / "ours.dat").write_bytes(ours)
    assert run([IASL, "-d", "ours.dat"], tmp_path).returncode == 0
    r = run([IASL, "-oa", "-p", "again", "ours.dsl"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"0 Errors, 0 Warnings", r.stdout + r.stderr), r.stdout
    again = (tmp_path / "again.aml").read_bytes()
    assert len(again) == len(ours)
    assert again[36:] == ours[36:]                     # header differs only in the compiler id
    assert again[:9] == ours[:9]


@needs_iasl
def test_iasl_decodes_fadt_facs_rsdt_xsdt(tables, tmp_path):
    blob = tables.blob
    for name in ("FACP", "RSDT", "XSDT"):
        (tmp_path / f"{name}.dat").write_bytes(table_at(blob, BASE + tables.offsets[name]))
    (tmp_path / "FACS.dat").write_bytes(blob[tables.offsets["FACS"]:tables.offsets["FACS"] + 64])
    text = {}
    for name in ("FACP", "FACS", "RSDT", "XSDT"):
        r = run([IASL, "-d", f"{name}.dat"], tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Error" not in r.stdout + r.stderr and "Invalid" not in r.stdout + r.stderr
        text[name] = (tmp_path / f"{name}.dsl").read_text()
    f = text["FACP"]

    def field(label):
        m = re.search(r"\]\s+" + re.escape(label) + r" : (\S+)", f)
        assert m, label
        return m.group(1)
    assert field("PM1A Event Block Address") == "00000600"
    assert field("PM1A Control Block Address") == "00000604"
    assert field("PM Timer Block Address") == "00000608"
    assert field("GPE0 Block Address") == "0000AFE0"
    assert field("GPE0 Block Length") == "04"
    assert field("SCI Interrupt") == "0009"
    assert field("SMI Command Port") == "000000B2"
    assert field("ACPI Enable Value") == "F1" and field("ACPI Disable Value") == "F0"
    assert field("Value to cause reset") == "06"
    assert field("DSDT Address") == f"{BASE + tables.offsets['DSDT']:08X}"
    assert field("FACS Address") == f"{BASE + tables.offsets['FACS']:08X}"
    assert re.search(r"Reset Register Supported \(V2\) : 1", f)
    assert re.search(r"32-bit PM Timer \(V1\) : 0", f)
    assert re.search(r"Address : 0000000000000CF9", f)
    assert "[SystemIO]" in f
    assert 'Signature : "FACS"' in text["FACS"]
    assert f"ACPI Table Address   0 : {BASE + tables.offsets['FACP']:08X}" in text["RSDT"]
    assert f"ACPI Table Address   0 : {BASE + tables.offsets['FACP']:016X}" in text["XSDT"]


def acpiexec(tmp_path, commands, *tables):
    names = []
    for i, t in enumerate(tables):
        (tmp_path / f"t{i}.dat").write_bytes(t)
        names.append(f"t{i}.dat")
    r = run([ACPIEXEC, "-b", "; ".join(commands), *names], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "AE_" not in out.replace("AE_OK", ""), out          # no ACPICA exception codes
    return out


@needs_acpiexec
def test_acpiexec_runs_the_dsdt_methods(tmp_path):
    """ACPICA's interpreter evaluates our objects: _S5, PCI0._CRS, and the interrupt links'
    _STA/_CRS/_SRS/_DIS against the PIIX3 PIRQRC registers (a simulated PCI_Config region)."""
    dsdt = acpi.build_dsdt(*HOLE)
    lnk = "\\_SB.LNKB"
    ssdt = aml.definition_block(b"SSDT", [
        Method("TSRS", 0, [Call(lnk + "._SRS", ResourceTemplate([IRQ([11], edge=False,
                                                                     active_low=True,
                                                                     shared=True)])),
                           Return("\\_SB.PCI0.ISA.PRQ1")]),
        Method("TDIS", 0, [Call("\\_SB.LNKC._DIS"), Return(Call("\\_SB.LNKC._STA"))]),
    ], oem_table_id=b"AEROTEST")
    out = acpiexec(tmp_path, [
        "evaluate \\_S5", "evaluate \\_SB.PCI0._HID", "evaluate \\_SB.PCI0.ISA._ADR",
        "evaluate \\_SB.LNKB._STA", "evaluate \\TSRS", "evaluate \\_SB.LNKB._CRS",
        "evaluate \\TDIS", "evaluate \\_SB.PCI0.ISA.COM1._CRS",
    ], dsdt, ssdt)
    results = re.findall(r"Evaluation of (\S+) returned object.*?\n(.*?)(?=\nEvaluat|\Z)", out,
                         re.S)
    res = {name: body for name, body in results}
    assert re.findall(r"\[Integer\] = (\w+)", res["\\_S5"]) == ["0" * 16] * 4
    assert "[Integer] = 00000000030AD041" in res["\\_SB.PCI0._HID"]
    assert "[Integer] = 0000000000010000" in res["\\_SB.PCI0.ISA._ADR"]
    assert "[Integer] = 000000000000000B" in res["\\_SB.LNKB._STA"]     # routed, enabled
    assert "[Integer] = 000000000000000B" in res["\\TSRS"]              # PIRQRCB := IRQ 11
    assert "23 00 08 18 79 00" in res["\\_SB.LNKB._CRS"]                 # IRQ mask 1 << 11
    assert "[Integer] = 0000000000000009" in res["\\TDIS"]              # disabled after _DIS
    assert "47 01 F8 03 F8 03 01 08 22 10 00 79" in res["\\_SB.PCI0.ISA.COM1._CRS"]
