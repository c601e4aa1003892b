"""ACPI tables for the Aero PC (i440FX host bridge, PIIX3 ISA bridge, PIIX4-style PM function).

References: ACPI Specification 6.5, 5.2.5 Root System Description Pointer (RSDP), 5.2.6 System
Description Table Header, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.9 Fixed ACPI Description Table (FADT;
Table 5.9 FADT Format, Table 5.10 Fixed ACPI Description Table Fixed Feature Flags, 5.2.9.3
IA-PC Boot Architecture Flags), 5.2.10 Firmware ACPI Control Structure (FACS), 5.2.11.1 DSDT,
5.2.3.2 Generic Address Structure, 7.4.2 \\_Sx system states; Intel 82371AB PIIX4 datasheet
7.2 "Power Management Registers" for the I/O blocks. Conventions follow QEMU's ``pc`` machine
(hw/i386/acpi-build.c): PM block at PMBA 0600h, GPE0 block at AFE0h (4 bytes), SCI on IRQ 9,
SMI command port B2h with ACPI_ENABLE F1h / ACPI_DISABLE F0h, reset register 0CF9h value 06h,
\\_S5 SLP_TYP 0 (aero/devices/acpi_pm.py decodes the same values).

The DSDT holds \\_SB.PCI0 (PNP0A03, bus 0, _CRS with the bus range, the I/O ranges around
CF8h-CFFh, the VGA window and the PCI holes), its PIIX3 ISA bridge (00:01.0) with the legacy PNP
devices, a PIC-mode _PRT through four interrupt links LNKA-LNKD (PNP0C0F) whose _STA/_CRS/_SRS/_DIS
read and write PIIX3 PIRQRC[A:D] through a PCI_Config operation region, \\_S0 and \\_S5.
PCI0 carries _HID and no _ADR (ACPI 6.5 section 6.1: one or the other; iasl warns on both).

The FADT is revision 3 (ACPI 2.0 layout, 244 bytes) as QEMU's pc machine emits, with both the
32-bit and the 64-bit (X_) pointers and register blocks.  The DSDT is revision 2 (64-bit AML
integers) and is written with :mod:`aero.firmware.aml`.

``build_tables(base_address, ...)`` returns ``AcpiTables(blob, rsdp, offsets)``: ``blob`` is to be
copied to ``base_address`` (an ACPI-reclaim range in the E820 map; 64-byte aligned because the FACS
comes first: its 64 bytes at ``offsets["FACS"]`` may be reported as ACPI NVS, the rest as ACPI
reclaimable), ``rsdp`` is the 36-byte RSDP for a 16-byte boundary in E0000h-FFFFFh (or the first
KiB of the EBDA), and ``offsets`` maps each table signature to its offset within ``blob``.  Extra
tables (the MADT of an APIC machine: ``build_madt``) are passed as ``extra_tables`` and listed in
the RSDT and XSDT.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from . import aml
from .aml import (DMA, IO, IRQ, And, CreateWordField, Decrement, Device, DWordMemory, EisaId,
                  Else, FindSetRightBit, If, IRQNoFlags, LLess, Method, Name, NameRef, Or,
                  OpRegion, Field, Package, QWordMemory, ResourceTemplate, Return, Scope,
                  ShiftLeft, Store, WordBusNumber, WordIO, Local, Arg, One)

OEM_ID = b"AERO  "
OEM_TABLE_ID = b"AEROPC  "
CREATOR_ID = b"AERO"

# PIIX4 PM I/O (aero/devices/acpi_pm.py)
PMBA = 0x600
PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN = 4, 2, 4
GPE0_BLK, GPE0_BLK_LEN = 0xAFE0, 4
SCI_INT = 9
SMI_CMD = 0xB2
ACPI_ENABLE, ACPI_DISABLE = 0xF1, 0xF0
RESET_PORT, RESET_VALUE = 0xCF9, 0x06
RTC_CENTURY = 0x32
SLP_TYP_S5 = 0

# Table 5.10 FADT fixed feature flags
FADT_WBINVD = 1 << 0
FADT_PROC_C1 = 1 << 2
FADT_SLP_BUTTON = 1 << 5
FADT_TMR_VAL_EXT = 1 << 8
FADT_RESET_REG_SUP = 1 << 10
FADT_FLAGS = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP  # 24-bit PM timer
# 5.2.9.3 IA-PC boot architecture flags
IAPC_LEGACY_DEVICES, IAPC_8042 = 1 << 0, 1 << 1

FADT_REVISION, FADT_LENGTH = 3, 244
FACS_LENGTH = 64
RSDP_LENGTH = 36

# 5.2.3.2 Generic Address Structure address space IDs
GAS_SYSTEM_MEMORY, GAS_SYSTEM_IO = 0, 1

PCI_IO_HOLE = (0x0CF8, 0x0CFF)     # configuration mechanism #1, consumed by the host bridge
VGA_WINDOW = (0xA0000, 0xBFFFF)
DEFAULT_SERIAL = ((0x3F8, 4),)
LINK_IRQS = (5, 10, 11)            # what the PCI interrupt links offer (QEMU offers the same)


class AcpiTables(NamedTuple):
    blob: bytes
    rsdp: bytes
    offsets: dict


def checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def gas(space: int, bit_width: int, address: int, bit_offset: int = 0,
        access_size: int = 0) -> bytes:
    """5.2.3.2 Generic Address Structure (12 bytes).  Access size 0 ("undefined, legacy") as the
    revision 3 FADT, whose byte 3 was still reserved, requires."""
    return struct.pack("<BBBBQ", space, bit_width, bit_offset, access_size, address)


def _header(signature: bytes, length: int, revision: int) -> bytearray:
    return bytearray(signature + struct.pack("<IBB", length, revision, 0) + OEM_ID + OEM_TABLE_ID
                     + struct.pack("<I", 1) + CREATOR_ID + struct.pack("<I", 1))


def _finish(table: bytearray) -> bytes:
    struct.pack_into("<I", table, 4, len(table))
    table[9] = 0
    table[9] = checksum(table)
    return bytes(table)


# -- DSDT -----------------------------------------------------------------------------------------

def _isa_device(name: str, hid: str, descriptors, uid: int | None = None, cks: bool = True):
    terms = [Name("_HID", EisaId(hid))]
    if uid is not None:
        terms.append(Name("_UID", uid))
    terms.append(Method("_STA", 0, [Return(0x0F)]))
    terms.append(Name("_CRS", ResourceTemplate(descriptors, checksum=cks)))
    return Device(name, terms)


def _link_device(index: int, cks: bool = True) -> Device:
    """\\_SB.LNKx: a PCI interrupt link (PNP0C0F, 6.2.13) steering PIIX3 PIRQRC[A-D] (60h-63h)."""
    prq = f"\\_SB.PCI0.ISA.PRQ{index}"
    level_irq = dict(edge=False, active_low=True, shared=True)
    return Device(f"LNK{'ABCD'[index]}", [
        Name("_HID", EisaId("PNP0C0F")),
        Name("_UID", index + 1),
        Name("_PRS", ResourceTemplate([IRQ(LINK_IRQS, **level_irq)], checksum=cks)),
        # _STA: routing disabled (bit 7) -> present, disabled, functioning (09h) else 0Bh.
        Method("_STA", 0, [If(And(prq, 0x80), [Return(0x09)]), Else([Return(0x0B)])]),
        Method("_DIS", 0, [Or(prq, 0x80, prq)]),
        # The template is patched at run time, so its end tag carries the "always valid" zero.
        Method("_CRS", 0, [
            Name("PRR0", ResourceTemplate([IRQ([], **level_irq)], checksum=False)),
            CreateWordField("PRR0", One, "IRQW"),
            If(LLess(prq, 0x80), [ShiftLeft(One, And(prq, 0x0F), "IRQW")]),
            Return("PRR0"),
        ], serialized=True),
        Method("_SRS", 1, [
            CreateWordField(Arg(0), One, "IRQW"),
            FindSetRightBit("IRQW", Local(0)),
            Decrement(Local(0)),
            Store(Local(0), prq),
        ], serialized=True),
    ])


def _prt() -> Name:
    """6.2.13 _PRT: every slot's INTA#-INTD# to LNKA-LNKD with the PIIX swizzle
    (aero/devices/pci.py ``pirq_of``: PIRQ = (slot + pin - 1) & 3 for pin 0 = INTA#)."""
    entries = []
    for slot in range(1, 32):
        for pin in range(4):
            link = "LNK" + "ABCD"[(slot + pin - 1) & 3]
            entries.append(Package([(slot << 16) | 0xFFFF, pin, NameRef(link), 0]))
    return Name("_PRT", Package(entries))


def build_dsdt(pci_hole_start: int, pci_hole_end: int, pci_hole64: tuple[int, int] | None = None,
               serial_ports=DEFAULT_SERIAL, resource_checksums: bool = True) -> bytes:
    """The DSDT: \\_SB.PCI0 (host bridge), its ISA bridge with the legacy PNP devices, the PCI
    interrupt links, \\_S0 and \\_S5.  ``pci_hole_*`` give the 32-bit PCI MMIO window (inclusive)
    and ``pci_hole64`` an optional 64-bit one; ``serial_ports`` lists (base, irq) of the UARTs.
    ``resource_checksums=False`` leaves every End Tag checksum 0, as iasl compiles templates."""
    cks = resource_checksums

    def dev(*args, **kwargs):
        return _isa_device(*args, cks=cks, **kwargs)

    if not pci_hole_start <= pci_hole_end <= 0xFFFFFFFF:
        raise ValueError("bad 32-bit PCI hole")
    windows = [
        WordBusNumber(0x00, 0xFF, 0x100),
        IO(PCI_IO_HOLE[0], PCI_IO_HOLE[0], 0x01, 0x08),
        WordIO(0x0000, 0x0CF7),
        WordIO(0x0D00, 0xFFFF),
        DWordMemory(VGA_WINDOW[0], VGA_WINDOW[1], cacheable=1),
        DWordMemory(pci_hole_start, pci_hole_end, cacheable=0),
    ]
    if pci_hole64 is not None:
        windows.append(QWordMemory(pci_hole64[0], pci_hole64[1], cacheable=0))

    isa_devices = [
        OpRegion("P40C", "PCI_Config", 0x60, 0x04),
        Field("P40C", [("PRQ0", 8), ("PRQ1", 8), ("PRQ2", 8), ("PRQ3", 8)], access="ByteAcc"),
        dev("PIC", "PNP0000", [IO(0x20, 0x20, 0x01, 0x02), IO(0xA0, 0xA0, 0x01, 0x02),
                               IRQNoFlags([2])]),
        dev("DMA", "PNP0200", [DMA([4], size=1), IO(0x00, 0x00, 0x01, 0x10),
                               IO(0x81, 0x81, 0x01, 0x03), IO(0x87, 0x87, 0x01, 0x01),
                               IO(0x89, 0x89, 0x01, 0x03), IO(0x8F, 0x8F, 0x01, 0x01),
                               IO(0xC0, 0xC0, 0x01, 0x20)]),
        dev("TMR", "PNP0100", [IO(0x40, 0x40, 0x01, 0x04), IRQNoFlags([0])]),
        dev("RTC", "PNP0B00", [IO(0x70, 0x70, 0x01, 0x02), IRQNoFlags([8])]),
        dev("KBD", "PNP0303", [IO(0x60, 0x60, 0x01, 0x01), IO(0x64, 0x64, 0x01, 0x01),
                               IRQNoFlags([1])]),
        dev("MOU", "PNP0F13", [IRQNoFlags([12])]),
        dev("FDC0", "PNP0700", [IO(0x3F0, 0x3F0, 0x01, 0x06), IO(0x3F7, 0x3F7, 0x01, 0x01),
                                IRQNoFlags([6]), DMA([2])]),
    ]
    for i, (base, irq) in enumerate(serial_ports):
        isa_devices.append(dev(f"COM{i + 1}", "PNP0501",
                               [IO(base, base, 0x01, 0x08), IRQNoFlags([irq])], uid=i + 1))

    pci0 = Device("PCI0", [
        # No _ADR beside the _HID: ACPI 6.5 6.1 says a device has one or the other (iasl warns).
        Name("_HID", EisaId("PNP0A03")),
        Name("_UID", 0),
        Name("_BBN", 0),
        Name("_CRS", ResourceTemplate(windows, checksum=cks)),
        _prt(),
        Device("ISA", [Name("_ADR", 0x00010000)] + isa_devices),
    ])
    terms = [
        Scope("\\_SB", [pci0] + [_link_device(i, cks) for i in range(4)]),
        # 7.4.2: Package {PM1a_CNT.SLP_TYP, PM1b_CNT.SLP_TYP, reserved, reserved}
        Name("\\_S0", Package([0, 0, 0, 0])),
        Name("\\_S5", Package([SLP_TYP_S5, SLP_TYP_S5, 0, 0])),
    ]
    return aml.definition_block(b"DSDT", terms, revision=2, oem_id=OEM_ID,
                                oem_table_id=OEM_TABLE_ID, creator_id=CREATOR_ID)


# -- fixed tables ---------------------------------------------------------------------------------

def build_facs() -> bytes:
    """5.2.10 FACS: 64 bytes, no checksum; version 1 (ACPI 2.0 layout, with the 64-bit
    X_Firmware_Waking_Vector)."""
    t = bytearray(FACS_LENGTH)
    t[0:4] = b"FACS"
    struct.pack_into("<I", t, 4, FACS_LENGTH)
    # 8: hardware signature, 12: firmware waking vector, 16: global lock, 20: flags,
    # 24: X_Firmware_Waking_Vector, 32: version.
    t[32] = 1
    return bytes(t)


def build_fadt(facs_address: int, dsdt_address: int, pmba: int = PMBA) -> bytes:
    """5.2.9 FADT revision 3 (Table 5.9 offsets in the comments)."""
    t = _header(b"FACP", FADT_LENGTH, FADT_REVISION) + bytearray(FADT_LENGTH - 36)
    pm1a_evt, pm1a_cnt, pm_tmr = pmba, pmba + 0x04, pmba + 0x08
    struct.pack_into("<II", t, 36, facs_address, dsdt_address)          # FIRMWARE_CTRL, DSDT
    t[45] = 0                                                           # Preferred_PM_Profile
    struct.pack_into("<H", t, 46, SCI_INT)                              # SCI_INT
    struct.pack_into("<I", t, 48, SMI_CMD)                              # SMI_CMD
    t[52], t[53], t[54], t[55] = ACPI_ENABLE, ACPI_DISABLE, 0, 0        # S4BIOS_REQ, PSTATE_CNT
    struct.pack_into("<IIIIIIII", t, 56, pm1a_evt, 0, pm1a_cnt, 0, 0, pm_tmr, GPE0_BLK, 0)
    t[88:94] = bytes([PM1_EVT_LEN, PM1_CNT_LEN, 0, PM_TMR_LEN, GPE0_BLK_LEN, 0])
    t[94], t[95] = 0, 0                                                 # GPE1_BASE, CST_CNT
    struct.pack_into("<HH", t, 96, 0x0FFF, 0x0FFF)                      # P_LVL2/3_LAT: no C2/C3
    struct.pack_into("<HH", t, 100, 0, 0)                               # FLUSH_SIZE/STRIDE
    t[104:109] = bytes([0, 0, 0, 0, RTC_CENTURY])                       # DUTY_*, alarms, CENTURY
    struct.pack_into("<H", t, 109, IAPC_LEGACY_DEVICES | IAPC_8042)     # IAPC_BOOT_ARCH
    struct.pack_into("<I", t, 112, FADT_FLAGS)                          # Flags
    t[116:128] = gas(GAS_SYSTEM_IO, 8, RESET_PORT)                      # RESET_REG
    t[128] = RESET_VALUE                                                # RESET_VALUE
    # X_FIRMWARE_CTRL stays 0: "If the FIRMWARE_CTRL field contains a non zero value then this
    # field must be zero" (ACPI 6.4, 5.2.9; Linux reported the FACS twice); X_DSDT
    struct.pack_into("<QQ", t, 132, 0, dsdt_address)
    t[148:160] = gas(GAS_SYSTEM_IO, PM1_EVT_LEN * 8, pm1a_evt)          # X_PM1a_EVT_BLK
    t[160:172] = gas(0, 0, 0)                                           # X_PM1b_EVT_BLK
    t[172:184] = gas(GAS_SYSTEM_IO, PM1_CNT_LEN * 8, pm1a_cnt)          # X_PM1a_CNT_BLK
    t[184:196] = gas(0, 0, 0)                                           # X_PM1b_CNT_BLK
    t[196:208] = gas(0, 0, 0)                                           # X_PM2_CNT_BLK
    t[208:220] = gas(GAS_SYSTEM_IO, PM_TMR_LEN * 8, pm_tmr)             # X_PM_TMR_BLK
    t[220:232] = gas(GAS_SYSTEM_IO, GPE0_BLK_LEN * 8, GPE0_BLK)         # X_GPE0_BLK
    t[232:244] = gas(0, 0, 0)                                           # X_GPE1_BLK
    return _finish(t)


# -- MADT (APIC machines) -------------------------------------------------------------------------

MADT_REVISION = 1                   # ACPI 1.0/2.0 MADT, as QEMU's pc machine emits
MADT_PCAT_COMPAT = 1                # 5.2.12 Table 5.20: a dual 8259 setup is also installed
# the I/O APIC's ID is QEMU's, 0: SeaBIOS writes 0 into its MP table without asking the device
LAPIC_ADDRESS, IOAPIC_ADDRESS, IOAPIC_ID = 0xFEE00000, 0xFEC00000, 0
# 5.2.12.5 MPS INTI flags: polarity bits 1:0 (01 active high), trigger mode bits 3:2 (11 level)
MPS_INTI_CONFORMS, MPS_INTI_LEVEL_HIGH = 0x0000, 0x000D


def build_madt(cpus: int = 1, sci_irq: int = SCI_INT, level_irqs=LINK_IRQS) -> bytes:
    """5.2.12 Multiple APIC Description Table for the Aero PC with ``aero.devices.apic`` /
    ``ioapic``: the local APIC address (FEE00000h) with PCAT_COMPAT; one Processor Local APIC
    structure per CPU (5.2.12.2: processor UID = APIC ID = n, enabled); the I/O APIC (5.2.12.3:
    ID 0 at FEC00000h, GSI base 0); interrupt source overrides (5.2.12.5): ISA IRQ 0 -> GSI 2
    (the PIT reaches I/O APIC pin 2), the SCI (IRQ 9) level-triggered active high, and the ISA
    IRQs the PCI interrupt links offer (5, 10, 11) level-triggered active high, as QEMU's pc
    machine declares them (hw/i386/acpi-common.c); a Local APIC NMI structure (5.2.12.7) for
    LINT1 of all processors (FFh), edge, active high."""
    t = _header(b"APIC", 0, MADT_REVISION) + struct.pack("<II", LAPIC_ADDRESS, MADT_PCAT_COMPAT)
    for n in range(cpus):
        t += struct.pack("<BBBBI", 0, 8, n, n, 1)
    t += struct.pack("<BBBBII", 1, 12, IOAPIC_ID, 0, IOAPIC_ADDRESS, 0)
    t += struct.pack("<BBBBIH", 2, 10, 0, 0, 2, MPS_INTI_CONFORMS)
    for irq in sorted({sci_irq, *level_irqs}):
        t += struct.pack("<BBBBIH", 2, 10, 0, irq, irq, MPS_INTI_LEVEL_HIGH)
    t += struct.pack("<BBBHB", 4, 6, 0xFF, 0x0005, 1)
    return _finish(t)


def build_rsdt(addresses) -> bytes:
    """5.2.7 RSDT: header + 32-bit table addresses (revision 1)."""
    t = _header(b"RSDT", 0, 1) + b"".join(struct.pack("<I", a) for a in addresses)
    return _finish(t)


def build_xsdt(addresses) -> bytes:
    """5.2.8 XSDT: header + 64-bit table addresses (revision 1)."""
    t = _header(b"XSDT", 0, 1) + b"".join(struct.pack("<Q", a) for a in addresses)
    return _finish(t)


def build_rsdp(rsdt_address: int, xsdt_address: int) -> bytes:
    """5.2.5.3 RSDP revision 2: Checksum over bytes 0-19, Extended Checksum over all 36."""
    r = bytearray(b"RSD PTR " + b"\0" + OEM_ID + bytes([2]) + struct.pack("<I", rsdt_address)
                  + struct.pack("<IQ", RSDP_LENGTH, xsdt_address) + b"\0\0\0\0")
    assert len(r) == RSDP_LENGTH
    r[8] = checksum(r[:20])
    r[32] = checksum(r)
    return bytes(r)


def _align(n: int, a: int) -> int:
    return (n + a - 1) & -a


def build_tables(base_address: int, pci_hole_start: int = 0xE0000000,
                 pci_hole_end: int = 0xFEBFFFFF, pci_hole64: tuple[int, int] | None = None,
                 serial_ports=DEFAULT_SERIAL, extra_tables=(), pmba: int = PMBA) -> AcpiTables:
    """Lay the tables out from ``base_address``: FACS (64-byte aligned), DSDT, FADT, the extra
    tables (e.g. a MADT, each a complete table with its header), RSDT, XSDT (16-byte aligned).

    ``pci_hole_start``/``pci_hole_end`` (inclusive) are the PCI MMIO window below 4 GiB, normally
    from the top of RAM below 4 GiB to FEBFFFFFh (below the IOAPIC); ``pci_hole64`` an optional
    window above 4 GiB.  Returns ``AcpiTables(blob, rsdp, offsets)``."""
    if base_address % 64:
        raise ValueError("the ACPI blob must start 64-byte aligned (the FACS comes first)")
    blob = bytearray()
    offsets: dict[str, int] = {}

    def place(name: str, data: bytes, align: int = 16) -> int:
        blob.extend(b"\0" * (_align(len(blob), align) - len(blob)))
        offsets[name] = len(blob)
        blob.extend(data)
        return base_address + offsets[name]

    facs = place("FACS", build_facs(), 64)
    dsdt = place("DSDT", build_dsdt(pci_hole_start, pci_hole_end, pci_hole64, serial_ports))
    listed = [place("FACP", build_fadt(facs, dsdt, pmba))]
    for t in extra_tables:
        sig = bytes(t[:4]).decode("ascii")
        name, n = sig, 2
        while name in offsets:
            name, n = f"{sig}{n}", n + 1
        listed.append(place(name, bytes(t)))
    rsdt = place("RSDT", build_rsdt(listed))
    xsdt = place("XSDT", build_xsdt(listed))
    if base_address + len(blob) > 0xFFFFFFFF:
        raise ValueError("ACPI tables must lie below 4 GiB (32-bit RSDT and FADT pointers)")
    blob.extend(b"\0" * (_align(len(blob), 16) - len(blob)))
    return AcpiTables(bytes(blob), build_rsdp(rsdt, xsdt), offsets)
