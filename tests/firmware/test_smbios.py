"""SMBIOS 2.8 tables (aero/firmware/smbios.py), checked against DSP0134 2.8.0 layouts and, as the
external reference, decoded by Debian's dmidecode (``dmidecode --from-dump``; the dump format, per
dmidecode(8): the entry point at offset 0 with the table address hard-coded to 0x20, the table at
offset 0x20).  Install dmidecode with ``apt-get install -y dmidecode``; that test skips without it.
"""

import os
import shutil
import struct
import subprocess
import uuid

import pytest

from aero.firmware import smbios

DMIDECODE = shutil.which("dmidecode") or next(
    (p for p in ("/usr/sbin/dmidecode", "/sbin/dmidecode") if os.path.exists(p)), None)

MiB, GiB = 1 << 20, 1 << 30
UUID = "12345678-9abc-def0-1122-334455667788"
# CPUID.01h:EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 MMX FXSR
EDX = 0x0183FBFF


def parse(table: bytes):
    """Walk the structure table per DSP0134 6.1: [(type, length, handle, fields, strings)]."""
    out, off = [], 0
    while off < len(table):
        t, length, handle = struct.unpack_from("<BBH", table, off)
        assert length >= 4
        fields = table[off:off + length]
        end = table.index(b"\0\0", off + length)       # the string-set ends with a double NUL
        raw = table[off + length:end]
        strings = [s.decode("latin-1") for s in raw.split(b"\0")] if raw else []
        assert all(strings), "no empty strings inside a string-set"
        out.append((t, length, handle, fields, strings))
        off = end + 2
        if t == 127:
            break
    assert off == len(table), "nothing after the end-of-table structure"
    return out


def string(s, fields, offset):
    n = fields[offset]
    return None if n == 0 else s[4][n - 1]


@pytest.fixture(scope="module")
def tables():
    return smbios.build_smbios(0x000F1000, 3 * GiB, 1 * GiB, uuid=UUID, cpuid_features=EDX,
                               cpu_speed_mhz=400)


@pytest.fixture(scope="module")
def structs(tables):
    return parse(tables.table)


def by_type(structs, t):
    return [s for s in structs if s[0] == t]


def test_entry_point(tables):
    ep, table = tables
    assert len(ep) == 0x1F and ep[:4] == b"_SM_" and ep[0x10:0x15] == b"_DMI_"
    assert sum(ep) & 0xFF == 0, "entry point structure checksum"
    assert sum(ep[0x10:0x1F]) & 0xFF == 0, "intermediate checksum"
    assert ep[5] == 0x1F and (ep[6], ep[7]) == (2, 8) and ep[0x1E] == 0x28
    assert ep[0x0A] == 0 and ep[0x0B:0x10] == bytes(5)
    max_size, = struct.unpack_from("<H", ep, 8)
    length, address, count = struct.unpack_from("<HIH", ep, 0x16)
    assert length == len(table) and address == 0x000F1000
    structs = parse(table)
    assert count == len(structs) == 10
    # Maximum Structure Size: the largest formatted area + string-set
    sizes, off = [], 0
    for _ in structs:
        end = table.index(b"\0\0", off + table[off + 1]) + 2
        sizes.append(end - off)
        off = end
    assert max_size == max(sizes)


def test_structure_set_and_lengths(structs):
    assert [(s[0], s[1], s[2]) for s in structs] == [
        (0, 0x18, 0x0000), (1, 0x1B, 0x0100), (3, 0x16, 0x0300), (4, 0x2A, 0x0400),
        (16, 0x17, 0x1000), (17, 0x28, 0x1100), (19, 0x1F, 0x1300), (19, 0x1F, 0x1301),
        (32, 0x0B, 0x2000), (127, 4, 0x7F00)]
    handles = [s[2] for s in structs]
    assert len(set(handles)) == len(handles)
    end = structs[-1]
    assert end[4] == []


def test_bios_information(structs):
    s = by_type(structs, 0)[0]
    f = s[3]
    assert string(s, f, 4) == "Aero"
    assert string(s, f, 5).startswith("Aero ")
    assert struct.unpack_from("<H", f, 6)[0] == 0xF000
    assert string(s, f, 8) == "01/01/2026"
    assert f[9] == 0                                   # 64 KiB ROM: 64K * (n + 1)
    chars, = struct.unpack_from("<Q", f, 0x0A)
    assert chars & (1 << 7) and chars & (1 << 15) and chars & (1 << 19) and not chars & (1 << 3)
    assert f[0x12] & 1 and f[0x13] & 0x11 == 0x11      # ACPI; BBS, virtual machine
    assert (f[0x16], f[0x17]) == (0xFF, 0xFF)          # no embedded controller firmware


def test_system_information_uuid_byte_order(structs):
    s = by_type(structs, 1)[0]
    f = s[3]
    assert string(s, f, 4) == "Aero Workbench"
    assert string(s, f, 7) is None                     # serial number not given
    # DSP0134 7.2.1: time_low, time_mid, time_hi_and_version little-endian, the rest as is
    assert f[8:24] == bytes.fromhex("78563412bc9af0de1122334455667788")
    assert f[8:24] == uuid.UUID(UUID).bytes_le
    assert f[0x18] == 0x06                             # wake-up: power switch


def test_chassis(structs):
    f = by_type(structs, 3)[0][3]
    assert f[5] == 0x03 and f[9:13] == bytes([3, 3, 3, 3])
    assert f[0x13] == 0 and f[0x14] == 0               # no contained elements


def test_processor(structs):
    s = by_type(structs, 4)[0]
    f = s[3]
    assert f[5] == 0x03                                # central processor
    assert f[6] == smbios.PROC_FAMILY_PENTIUM_II       # CPUID 0663h: family 6 model 6, a P6
    assert struct.unpack_from("<H", f, 0x28)[0] == f[6]
    assert struct.unpack_from("<II", f, 8) == (0x663, EDX)
    assert struct.unpack_from("<HH", f, 0x14) == (400, 400)
    assert f[0x18] == 0x41                             # populated, enabled
    assert struct.unpack_from("<3H", f, 0x1A) == (0xFFFF,) * 3
    assert (f[0x23], f[0x24], f[0x25]) == (1, 1, 1)
    assert "family 6 model 6 stepping 3" in string(s, f, 0x10)


@pytest.mark.parametrize("sig,family", [
    (0x0435, smbios.PROC_FAMILY_486), (0x0543, smbios.PROC_FAMILY_PENTIUM),
    (0x0612, smbios.PROC_FAMILY_PENTIUM_PRO), (0x0633, smbios.PROC_FAMILY_PENTIUM_II),
    (0x0686, smbios.PROC_FAMILY_PENTIUM_III), (0x0308, smbios.PROC_FAMILY_386),
    (0x206A7, smbios.PROC_FAMILY_PENTIUM_PRO), (0x0F41, smbios.PROC_FAMILY_OTHER),
])
def test_processor_family_from_signature(sig, family):
    assert smbios.processor_family(sig) == family


def test_memory_array_device_and_mapped_addresses(structs):
    f16 = by_type(structs, 16)[0][3]
    assert (f16[4], f16[5], f16[6]) == (3, 3, 3)
    assert struct.unpack_from("<IHH", f16, 7) == (4 * GiB // 1024, 0xFFFE, 1)
    f17 = by_type(structs, 17)[0][3]
    assert struct.unpack_from("<HHHHH", f17, 4) == (0x1000, 0xFFFE, 64, 64, 4096)   # 4096 MB
    assert f17[0x0E] == 0x09 and f17[0x12] == 0x07
    t19 = by_type(structs, 19)
    assert struct.unpack_from("<IIHB", t19[0][3], 4) == (0, 3 * GiB // 1024 - 1, 0x1000, 1)
    assert struct.unpack_from("<IIHB", t19[1][3], 4) == (4 * GiB // 1024, 5 * GiB // 1024 - 1,
                                                         0x1000, 1)


def test_memory_size_encodings():
    small = parse(smbios.build_smbios(0, 640 * 1024).table)
    f17 = by_type(small, 17)[0][3]
    assert struct.unpack_from("<H", f17, 0x0C)[0] == 0x8000 | 640       # KB granularity
    assert len(by_type(small, 19)) == 1
    huge = parse(smbios.build_smbios(0, 3 * GiB, 61 * GiB).table)
    f17 = by_type(huge, 17)[0][3]
    assert struct.unpack_from("<H", f17, 0x0C)[0] == 0x7FFF                # see Extended Size
    assert struct.unpack_from("<I", f17, 0x1C)[0] == 64 * 1024             # in MB
    f16 = by_type(huge, 16)[0][3]
    assert struct.unpack_from("<I", f16, 7)[0] == 64 * GiB // 1024
    assert smbios.build_smbios(0, 32 * MiB).table == smbios.build_smbios(0, 32 * MiB).table


def test_bad_input():
    with pytest.raises(ValueError):
        smbios.build_smbios(0, 0)
    with pytest.raises(ValueError):
        smbios.build_smbios(0, 16 * MiB, bios_rom_size=96 * 1024)
    with pytest.raises(ValueError):
        smbios.build_smbios(0, 16 * MiB, uuid=b"short")


@pytest.mark.skipif(DMIDECODE is None, reason="dmidecode absent (apt-get install -y dmidecode)")
def test_dmidecode_reads_a_dump(tmp_path):
    ep, table = smbios.build_smbios(0x20, 3 * GiB, 1 * GiB, uuid=UUID, cpuid_features=EDX,
                                    cpu_speed_mhz=400)
    dump = tmp_path / "dmi.bin"
    dump.write_bytes(ep + bytes(0x20 - len(ep)) + table)
    r = subprocess.run([DMIDECODE, "--from-dump", str(dump)], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Invalid" not in out + r.stderr and "wrong" not in out + r.stderr
    assert "SMBIOS 2.8 present." in out
    assert f"10 structures occupying {len(table)} bytes." in out
    for line in ("Vendor: Aero", "Release Date: 01/01/2026", "ROM Size: 64 kB",
                 "ACPI is supported", "EDD is supported", "System is a virtual machine",
                 "Manufacturer: Aero Workbench", f"UUID: {UUID}", "Wake-up Type: Power Switch",
                 "Type: Desktop", "Family: Pentium II", "ID: 63 06 00 00 FF FB 83 01",
                 "Signature: Type 0, Family 6, Model 6, Stepping 3", "FXSR (FXSAVE and FXSTOR",
                 "Max Speed: 400 MHz", "Status: Populated, Enabled", "Core Count: 1",
                 "Maximum Capacity: 4 GB", "Number Of Devices: 1", "Size: 4 GB",
                 "Form Factor: DIMM", "Locator: DIMM 0", "Type: RAM",
                 "Starting Address: 0x00000000000", "Ending Address: 0x000BFFFFFFF",
                 "Starting Address: 0x00100000000", "Ending Address: 0x0013FFFFFFF",
                 "Status: No errors detected", "End Of Table"):
        assert line in out, line
    # a corrupted entry point checksum must be refused
    bad = bytearray(dump.read_bytes())
    bad[4] ^= 0xFF
    dump.write_bytes(bytes(bad))
    r = subprocess.run([DMIDECODE, "--from-dump", str(dump)], capture_output=True, text=True,
                       timeout=30)
    assert "SMBIOS 2.8 present." not in r.stdout
