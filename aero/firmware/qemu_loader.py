"""QEMU's ACPI "linker/loader" interface: our ACPI tables served to SeaBIOS through fw_cfg.

SeaBIOS looks for the fw_cfg file ``etc/table-loader``.  When it exists, SeaBIOS installs the
tables the machine provides (``etc/acpi/tables``, ``etc/acpi/rsdp``) instead of building its
own, and uses QEMU's layout for the PIIX4 PM block (I/O base 600h), which the FADT and DSDT of
``aero.firmware.acpi`` describe.  The loader script is a list of 128-byte commands (QEMU
hw/acpi/bios-linker-loader.c documents the format):

* ALLOCATE (1): file name, alignment, zone (1 = high memory, 2 = the F-segment);
* ADD_POINTER (2): add the address where the source file was placed to a little-endian pointer
  of 1, 2, 4 or 8 bytes at an offset in the destination file;
* ADD_CHECKSUM (3): fix the checksum byte at an offset so that a byte range sums to zero.

The tables are built at base address 0, so every pointer in them is an offset into the tables
file, which ADD_POINTER turns into an address.
"""

from __future__ import annotations

import struct

from .acpi import AcpiTables

ALLOCATE, ADD_POINTER, ADD_CHECKSUM = 1, 2, 3
ZONE_HIGH, ZONE_FSEG = 1, 2
TABLES, RSDP = "etc/acpi/tables", "etc/acpi/rsdp"
ENTRY = 128


def _name(s: str) -> bytes:
    return s.encode().ljust(56, b"\0")


def _entry(data: bytes) -> bytes:
    return data.ljust(ENTRY, b"\0")


def allocate(file: str, align: int, zone: int) -> bytes:
    return _entry(struct.pack("<I56sIB", ALLOCATE, _name(file), align, zone))


def add_pointer(dest: str, src: str, offset: int, size: int) -> bytes:
    return _entry(struct.pack("<I56s56sIB", ADD_POINTER, _name(dest), _name(src), offset, size))


def add_checksum(file: str, offset: int, start: int, length: int) -> bytes:
    return _entry(struct.pack("<I56sIII", ADD_CHECKSUM, _name(file), offset, start, length))


def table_loader_files(tables: AcpiTables) -> dict[str, bytes]:
    """The fw_cfg files for tables built at base address 0: {name: bytes}."""
    blob, off = tables.blob, tables.offsets
    script = [allocate(RSDP, 16, ZONE_FSEG), allocate(TABLES, 64, ZONE_HIGH),
              add_pointer(RSDP, TABLES, 16, 4),                 # RsdtAddress
              add_pointer(RSDP, TABLES, 24, 8)]                 # XsdtAddress

    def length(name):
        return struct.unpack_from("<I", blob, off[name] + 4)[0]

    fadt = off["FACP"]
    # FIRMWARE_CTRL, DSDT, X_FIRMWARE_CTRL, X_DSDT: aero.firmware.acpi fills all four
    for field, size in ((36, 4), (40, 4), (132, 8), (140, 8)):
        script.append(add_pointer(TABLES, TABLES, fadt + field, size))
    for name, size in (("RSDT", 4), ("XSDT", 8)):
        start = off[name]
        for p in range(start + 36, start + length(name), size):
            script.append(add_pointer(TABLES, TABLES, p, size))
    for name in ("FACP", "RSDT", "XSDT"):
        script.append(add_checksum(TABLES, off[name] + 9, off[name], length(name)))
    script.append(add_checksum(RSDP, 8, 0, 20))                 # ACPI 1.0 checksum
    script.append(add_checksum(RSDP, 32, 0, 36))                # extended checksum
    return {RSDP: tables.rsdp, TABLES: blob, "etc/table-loader": b"".join(script)}
