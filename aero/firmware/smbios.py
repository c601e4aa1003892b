"""SMBIOS 2.8 tables for the Aero PC.

Reference: DMTF DSP0134 "System Management BIOS (SMBIOS) Reference Specification" 2.8.0:
5.2.1 "SMBIOS 2.1 (32-bit) Entry Point" (anchor "_SM_", Entry Point Structure Checksum over
Entry Point Length bytes, intermediate anchor "_DMI_" and Intermediate Checksum over offsets
10h-1Eh), 6.1.2 "Structure header format", 6.1.3 "Text strings" (a string-set after the formatted
area, each string NUL-terminated, the set ended by an extra NUL; two NULs when there is none),
7.1 BIOS Information (Type 0), 7.2 System Information (Type 1; 7.2.1 UUID byte order: the first
three fields little-endian), 7.4 System Enclosure (Type 3), 7.5 Processor Information (Type 4;
7.5.2 Processor Family), 7.17 Physical Memory Array (Type 16), 7.18 Memory Device (Type 17),
7.20 Memory Array Mapped Address (Type 19), 7.33 System Boot Information (Type 32),
7.45 End-of-Table (Type 127).

``build_smbios(table_address, ...)`` returns ``SmbiosTables(entry_point, table)``: the 31-byte
entry point goes on a 16-byte boundary in F0000h-FFFFFh, the structure table at
``table_address`` (any address below 4 GiB; reserve it in E820).  Handles follow QEMU's
numbering (type << 8 plus an instance number).
"""

from __future__ import annotations

import struct
import uuid as uuidlib
from typing import NamedTuple

from .. import __version__

SMBIOS_MAJOR, SMBIOS_MINOR = 2, 8
EPS_LENGTH = 0x1F
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# 7.1.1 BIOS Characteristics (QWORD) and 7.1.2 extension bytes
BIOS_CHAR_PCI = 1 << 7
BIOS_CHAR_BOOT_FROM_CD = 1 << 15
BIOS_CHAR_SELECTABLE_BOOT = 1 << 16
BIOS_CHAR_EDD = 1 << 19
BIOS_CHAR_FLOPPY_720K = 1 << 24           # INT 13h 3.5"/720 KB floppy services
BIOS_CHAR_PRINT_SCREEN = 1 << 26          # INT 5h
BIOS_CHAR_KEYBOARD_8042 = 1 << 27         # INT 9h 8042 keyboard services
BIOS_CHAR_SERIAL = 1 << 28                # INT 14h
BIOS_CHAR_PRINTER = 1 << 29               # INT 17h
BIOS_CHAR_CGA_MONO = 1 << 30              # INT 10h CGA/mono video
AERO_BIOS_CHARACTERISTICS = (BIOS_CHAR_PCI | BIOS_CHAR_BOOT_FROM_CD | BIOS_CHAR_SELECTABLE_BOOT
                             | BIOS_CHAR_EDD | BIOS_CHAR_FLOPPY_720K | BIOS_CHAR_KEYBOARD_8042
                             | BIOS_CHAR_SERIAL | BIOS_CHAR_PRINTER | BIOS_CHAR_CGA_MONO)
BIOS_EXT1_ACPI = 1 << 0
BIOS_EXT2_BBS = 1 << 0                    # BIOS Boot Specification
BIOS_EXT2_VM = 1 << 4                     # SMBIOS table describes a virtual machine

# 7.5.2 processor families
PROC_FAMILY_OTHER, PROC_FAMILY_UNKNOWN = 0x01, 0x02
PROC_FAMILY_386, PROC_FAMILY_486 = 0x05, 0x06
PROC_FAMILY_PENTIUM, PROC_FAMILY_PENTIUM_PRO, PROC_FAMILY_PENTIUM_II = 0x0B, 0x0C, 0x0D
PROC_FAMILY_PENTIUM_III = 0x11

END_OF_TABLE = 127


class SmbiosTables(NamedTuple):
    entry_point: bytes
    table: bytes


class Structure:
    """One SMBIOS structure: formatted area (header + fields) and its string-set (6.1.3)."""

    def __init__(self, type_: int, handle: int):
        self.type, self.handle = type_, handle
        self.fields = bytearray()
        self.strings: list[str] = []

    def string(self, text: str | None) -> int:
        """Add ``text`` to the string-set; returns its number (0 = no string)."""
        if not text:
            return 0
        if "\0" in text:
            raise ValueError("NUL inside an SMBIOS string")
        self.strings.append(text)
        return len(self.strings)

    def add(self, fmt: str, *values) -> "Structure":
        self.fields += struct.pack("<" + fmt, *values)
        return self

    def encode(self) -> bytes:
        length = 4 + len(self.fields)
        if length > 0xFF:
            raise ValueError("formatted area too long")
        out = struct.pack("<BBH", self.type, length, self.handle) + bytes(self.fields)
        if self.strings:
            out += b"".join(s.encode("latin-1") + b"\0" for s in self.strings) + b"\0"
        else:
            out += b"\0\0"
        return out


def processor_family(signature: int) -> int:
    """7.5.2 Processor Family for a CPUID.01h:EAX signature (family/model per the SDM's rules)."""
    family = (signature >> 8) & 0xF
    model = (signature >> 4) & 0xF
    if family in (6, 0xF):
        model |= ((signature >> 16) & 0xF) << 4
    if family == 3:
        return PROC_FAMILY_386
    if family == 4:
        return PROC_FAMILY_486
    if family == 5:
        return PROC_FAMILY_PENTIUM
    if family == 6:
        if model in (3, 5, 6):
            return PROC_FAMILY_PENTIUM_II
        if model in (7, 8, 0xA, 0xB):
            return PROC_FAMILY_PENTIUM_III
        return PROC_FAMILY_PENTIUM_PRO      # the P6 class
    return PROC_FAMILY_OTHER


def _uuid_bytes(value) -> bytes:
    """7.2.1: the UUID as stored (time_low, time_mid, time_hi_and_version little-endian)."""
    if value is None:
        return bytes(16)                    # all zero: "not present"
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            raise ValueError("a UUID has 16 bytes")
        value = uuidlib.UUID(bytes=bytes(value))
    elif isinstance(value, str):
        value = uuidlib.UUID(value)
    return value.bytes_le


def _memory_size_fields(size: int) -> tuple[int, int]:
    """7.18 Type 17 Size (bit 15 = 1: KB granularity) and Extended Size (MB, when Size = 7FFFh)."""
    if size % MIB == 0 or size >= 32767 * KIB:
        mb = size // MIB
        if mb < 0x7FFF:
            return mb, 0
        return 0x7FFF, mb
    return 0x8000 | (size // KIB), 0


def build_smbios(table_address: int, ram_below_4g: int, ram_above_4g: int = 0, uuid=None,
                 cpuid_signature: int = 0x00000663, cpuid_features: int = 0,
                 cpu_speed_mhz: int = 0, bios_version: str = f"Aero {__version__}",
                 bios_release_date: str = "01/01/2026", bios_release: tuple[int, int] = (0, 1),
                 bios_segment: int = 0xF000, bios_rom_size: int = 64 * KIB,
                 product: str = "Aero PC (i440FX + PIIX, 1996)",
                 system_version: str = __version__, serial_number: str | None = None,
                 cpu_vendor: str = "Aero Workbench") -> SmbiosTables:
    """Build the entry point and the structure table.

    ``ram_below_4g`` / ``ram_above_4g``: guest RAM in bytes mapped from 0 and from 4 GiB (as in
    the E820 map); ``uuid``: a ``uuid.UUID``, its string form or 16 bytes (None: not present);
    ``cpuid_signature`` / ``cpuid_features``: CPUID.01h EAX and EDX (the Processor ID field)."""
    if ram_below_4g <= 0 or ram_below_4g > 4 * GIB or ram_above_4g < 0:
        raise ValueError("bad RAM layout")
    if not 0 < bios_rom_size <= 16 * MIB or bios_rom_size % (64 * KIB):
        raise ValueError("BIOS ROM size is a multiple of 64 KiB (7.1 'BIOS ROM Size')")
    structs: list[Structure] = []

    # Type 0: BIOS Information (2.4+ layout, 18h bytes)
    s = Structure(0, 0x0000)
    vendor, version = s.string("Aero"), s.string(bios_version)
    s.add("BBH", vendor, version, bios_segment)
    s.add("BB", s.string(bios_release_date), bios_rom_size // (64 * KIB) - 1)
    s.add("Q", AERO_BIOS_CHARACTERISTICS)
    s.add("BB", BIOS_EXT1_ACPI, BIOS_EXT2_BBS | BIOS_EXT2_VM)
    s.add("BBBB", bios_release[0], bios_release[1], 0xFF, 0xFF)  # FFh FFh: no EC firmware
    structs.append(s)

    # Type 1: System Information (2.4+ layout, 1Bh bytes)
    s = Structure(1, 0x0100)
    s.add("BBBB", s.string("Aero Workbench"), s.string(product), s.string(system_version),
          s.string(serial_number))
    s.fields += _uuid_bytes(uuid)
    # wake-up type 06h (power switch), SKU number, family
    s.add("BBB", 0x06, 0, s.string("Aero"))
    structs.append(s)

    # Type 3: System Enclosure (2.7+ layout with SKU, 16h bytes, no contained elements)
    s = Structure(3, 0x0300)
    s.add("BB", s.string("Aero Workbench"), 0x03)                # manufacturer; type: Desktop
    s.add("BBB", s.string(system_version), 0, 0)                  # version, serial, asset tag
    # boot-up, power supply and thermal states 03h (Safe), security status 03h (None)
    s.add("BBBB", 0x03, 0x03, 0x03, 0x03)
    # OEM-defined, height, power cords, contained element count and record length, SKU
    s.add("IBBBBB", 0, 0, 0, 0, 0, 0)
    structs.append(s)

    # Type 4: Processor Information (2.6+ layout, 2Ah bytes)
    family = processor_family(cpuid_signature)
    fam = (cpuid_signature >> 8) & 0xF
    model = (cpuid_signature >> 4) & 0xF
    if fam in (6, 0xF):
        model |= ((cpuid_signature >> 16) & 0xF) << 4
    stepping = cpuid_signature & 0xF
    s = Structure(4, 0x0400)
    s.add("BBB", s.string("CPU 0"), 0x03, family)                 # socket; Central Processor
    s.add("B", s.string(cpu_vendor))
    s.add("II", cpuid_signature, cpuid_features)                  # Processor ID: CPUID.01h EAX, EDX
    version = f"Aero x86 family {fam} model {model} stepping {stepping}"
    s.add("BB", s.string(version), 0)                             # version; voltage unknown
    s.add("HHH", 0, cpu_speed_mhz, cpu_speed_mhz)                 # external clock, max, current
    s.add("BB", 0x41, 0x01)                                       # populated+enabled; upgrade Other
    s.add("HHH", 0xFFFF, 0xFFFF, 0xFFFF)                          # no cache information
    s.add("BBB", 0, 0, 0)                                         # serial, asset tag, part number
    s.add("BBB", 1, 1, 1)                                         # cores, enabled, threads
    s.add("HH", 0x0002, family)                                   # characteristics; family 2
    structs.append(s)

    # Type 16: Physical Memory Array (2.7+ layout, 17h bytes)
    total = ram_below_4g + ram_above_4g
    total_kb = -(-total // KIB)
    s = Structure(16, 0x1000)
    s.add("BBB", 0x03, 0x03, 0x03)                                # board; system memory; no ECC
    if total_kb < 0x80000000:
        s.add("IHHQ", total_kb, 0xFFFE, 1, 0)
    else:
        s.add("IHHQ", 0x80000000, 0xFFFE, 1, total)
    structs.append(s)

    # Type 17: Memory Device (2.8 layout, 28h bytes)
    size, ext_size = _memory_size_fields(total)
    s = Structure(17, 0x1100)
    # array handle, no error information, total and data width, size
    s.add("HHHHH", 0x1000, 0xFFFE, 64, 64, size)
    s.add("BB", 0x09, 0)                                          # form factor DIMM; no set
    s.add("BB", s.string("DIMM 0"), 0)                            # device and bank locators
    s.add("BHH", 0x07, 0x0002, 0)                                 # RAM; detail Other; speed ?
    # manufacturer, serial number, asset tag, part number
    s.add("BBBB", s.string("Aero Workbench"), 0, 0, 0)
    s.add("BIH", 0, ext_size, 0)                                  # attributes, ext. size, clock
    s.add("HHH", 0, 0, 0)                                         # min, max, configured voltage
    structs.append(s)

    # Type 19: Memory Array Mapped Address, one per RAM range (2.7+ layout, 1Fh bytes)
    ranges = [(0, ram_below_4g)]
    if ram_above_4g:
        ranges.append((4 * GIB, ram_above_4g))
    for i, (start, length) in enumerate(ranges):
        s = Structure(19, 0x1300 + i)
        end = start + length - 1
        if end < 4 * 1024 * GIB:                                  # fits the 32-bit KB fields
            s.add("IIHBQQ", start // KIB, end // KIB, 0x1000, 1, 0, 0)
        else:
            s.add("IIHBQQ", 0xFFFFFFFF, 0xFFFFFFFF, 0x1000, 1, start, end)
        structs.append(s)

    # Type 32: System Boot Information (0Bh bytes): no errors detected
    s = Structure(32, 0x2000)
    s.fields += bytes(6) + b"\0"
    structs.append(s)

    structs.append(Structure(END_OF_TABLE, 0x7F00))

    encoded = [st.encode() for st in structs]
    table = b"".join(encoded)
    if len(table) > 0xFFFF:
        raise ValueError("SMBIOS 2.x structure table exceeds 64 KiB")
    return SmbiosTables(build_entry_point(table_address, len(table), len(encoded),
                                          max(len(e) for e in encoded)), table)


def build_entry_point(table_address: int, table_length: int, count: int,
                      max_structure_size: int) -> bytes:
    """5.2.1 SMBIOS 2.1 (32-bit) entry point, 1Fh bytes, both checksums filled in."""
    ep = bytearray(b"_SM_" + bytes([0, EPS_LENGTH, SMBIOS_MAJOR, SMBIOS_MINOR])
                   + struct.pack("<HB", max_structure_size, 0) + bytes(5)
                   + b"_DMI_" + b"\0" + struct.pack("<HIHB", table_length, table_address, count,
                                                    (SMBIOS_MAJOR << 4) | SMBIOS_MINOR))
    assert len(ep) == EPS_LENGTH
    ep[0x15] = (-sum(ep[0x10:0x1F])) & 0xFF                       # intermediate checksum
    ep[0x04] = (-sum(ep)) & 0xFF                                  # entry point checksum
    return bytes(ep)
