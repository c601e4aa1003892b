"""The MP table (Intel MultiProcessor Specification, version 1.4) of an Aero APIC machine.

An operating system that does not read ACPI (or is told not to: Linux ``acpi=off``, older
kernels, hobby systems) finds its local and I/O APICs and the interrupt wiring here.  The Aero
BIOS puts both structures into its ROM image when the machine has APICs
(``MachineConfig(apic=True)``; ``aero.firmware.bios.install_aero_bios``); SeaBIOS builds its own
(``src/fw/mptable.c``) from what it finds, and ``parse`` reads either back.

References: MP spec 1.4 (May 1997), 4.1 "MP Floating Pointer Structure" (16 bytes on a 16-byte
boundary: the first KiB of the EBDA, else the last KiB of base memory, or the BIOS ROM at
F0000h-FFFFFh; all bytes sum to 0), 4.2 "MP Configuration Table Header" (44 bytes, base table
checksum over ``length`` bytes), 4.3 "Base MP Configuration Table Entries" (in ascending entry
type: processor 20 bytes, bus 8, I/O APIC 8, I/O interrupt assignment 8, local interrupt
assignment 8), 4.3.1 Table 4-5 (bus type strings), 4.3.4 Tables 4-9/4-10 (interrupt type,
PO/EL flags), D.3 (the PCI source bus IRQ: device number in bits 6:2, INTA#-INTD# as 0-3 in
bits 1:0), 3.6.2.2 "Virtual Wire Mode" (IMCRP clear in feature byte 2: no IMCR, the 8259A's
INTR reaches LINT0 of the BSP and the I/O APIC's pin 0).

What the table says about the Aero PC (``aero.devices.apic``, ``aero.devices.ioapic``, the MADT
of ``aero.firmware.acpi.build_madt``), laid out as SeaBIOS lays out its table on QEMU's pc
machine so the two compare entry for entry:

* one processor per CPU: APIC ID n, local APIC version 14h, enabled, CPU 0 the BSP; CPU
  signature and feature flags as CPUID leaf 1 reports them (``aero.cpu.sem.system``, with the
  APIC bit 9 the enabled local APIC sets);
* bus 0 "PCI", bus 1 "ISA";
* the I/O APIC: ID 0 (QEMU's, as SeaBIOS writes it), version 11h (the 82093AA's IOAPICVER), enabled, at FEC00000h;
* I/O interrupts: the 8259A's INTR on pin 0 (ExtINT, ISA IRQ 0 as its source: MP spec 5.1
  default configurations list it so; SeaBIOS omits it); every PCI function on bus 0 with an
  interrupt pin, once per device and pin, INTx# -> the pin of the ISA IRQ the firmware routes
  it to (the PCI interrupt line), active high, level as the bus conforms (the MADT's overrides
  for those IRQs say the same: level, active high); the ISA IRQs other than the PCI ones (5, 9,
  10, 11: ``acpi.LINK_IRQS`` and the SCI) with bus-conforming flags, IRQ 0 on pin 2 (the
  override) and IRQ 2 (the cascade) left out, others on their own pin;
* local interrupts: ExtINT on LINT0 of the BSP (APIC 0), NMI on LINT1 of every local APIC (FFh).

No extended entries (the extended table length is 0), no OEM table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..cpu.sem.system import CPUID_APIC, sys_cpuid_values
from ..devices.apic import DEFAULT_BASE as LAPIC_BASE, VERSION as LAPIC_VERSION_REG
from ..devices.ioapic import DEFAULT_BASE as IOAPIC_BASE, VERSION as IOAPIC_VERSION_REG
from ..devices.pci import INTERRUPT_PIN, pirq_of
from ..devices.piix import PIIX4PM
from .acpi import LINK_IRQS, SCI_INT

FPS_SIGNATURE = b"_MP_"
CONFIG_SIGNATURE = b"PCMP"
SPEC_REV = 4                        # MP spec 1.4
FPS_LENGTH = 16
HEADER_LENGTH = 44

# 4.3 entry types and lengths
PROCESSOR, BUS, IOAPIC, IO_INTERRUPT, LOCAL_INTERRUPT = range(5)
ENTRY_LENGTH = {PROCESSOR: 20, BUS: 8, IOAPIC: 8, IO_INTERRUPT: 8, LOCAL_INTERRUPT: 8}
ENTRY_NAMES = {PROCESSOR: "processor", BUS: "bus", IOAPIC: "I/O APIC",
               IO_INTERRUPT: "I/O interrupt", LOCAL_INTERRUPT: "local interrupt"}

CPU_EN, CPU_BP = 0x01, 0x02          # processor entry CPU flags (4.3.1 Table 4-4)
IOAPIC_EN = 0x01
# interrupt types (Table 4-9) and the PO/EL flag fields (Table 4-10)
INT, NMI, SMI, EXTINT = range(4)
INT_TYPE_NAMES = ("INT", "NMI", "SMI", "ExtINT")
PO_CONFORMS, PO_ACTIVE_HIGH, PO_ACTIVE_LOW = 0, 1, 3
EL_CONFORMS, EL_EDGE, EL_LEVEL = 0 << 2, 1 << 2, 3 << 2
ALL_LOCAL_APICS = 0xFF

OEM_ID = b"AERO    "                # 8 bytes, space padded
PRODUCT_ID = b"AERO PC     "        # 12 bytes

# The Aero PC (aero.devices.apic / ioapic, aero.firmware.acpi)
LAPIC_ADDRESS = LAPIC_BASE
LAPIC_VERSION = LAPIC_VERSION_REG & 0xFF            # 14h
IOAPIC_ADDRESS = IOAPIC_BASE
IOAPIC_ID = 1
IOAPIC_VERSION = IOAPIC_VERSION_REG & 0xFF          # 11h
PCI_BUS_ID, ISA_BUS_ID = 0, 1
# the ISA IRQs PCI interrupts use (level-triggered, active high in the MADT): the SCI and the
# IRQs the PCI interrupt links offer
PCI_IRQS = tuple(sorted({SCI_INT, *LINK_IRQS}))
# what the Aero BIOS's POST routes (bios.AeroBIOS._init_pci): PIRQA-D -> IRQ 10, 10, 11, 11;
# the PIIX4 PM function's interrupt line is the SCI's IRQ 9.  tests/firmware/test_mptable.py
# checks the table against the registers as POST leaves them.
AERO_PIRQ_ROUTE = (10, 10, 11, 11)


class MPTableError(ValueError):
    pass


def checksum_byte(data: bytes) -> int:
    """The byte that makes ``data`` (with 0 in its checksum field) sum to 0 modulo 256."""
    return -sum(data) & 0xFF


# -- entries --------------------------------------------------------------------------------------
def processor_entry(apic_id: int, apic_version: int, flags: int, signature: int,
                    features: int) -> bytes:
    """4.3.1: type 0, local APIC ID and version, CPU flags (EN, BP), CPU signature (CPUID.1:EAX
    stepping/model/family), feature flags (CPUID.1:EDX), 8 reserved bytes."""
    return struct.pack("<BBBBII8x", PROCESSOR, apic_id, apic_version, flags, signature,
                       features)


def bus_entry(bus_id: int, bus_type: bytes) -> bytes:
    """4.3.2: type 1, bus ID, the bus type string padded with blanks to 6 bytes."""
    return struct.pack("<BB6s", BUS, bus_id, bus_type.ljust(6))


def ioapic_entry(apic_id: int, version: int, flags: int, address: int) -> bytes:
    """4.3.3: type 2, I/O APIC ID, version, flags (EN), address."""
    return struct.pack("<BBBBI", IOAPIC, apic_id, version, flags, address)


def interrupt_entry(kind: int, int_type: int, flags: int, src_bus: int, src_irq: int,
                    dst_apic: int, dst_pin: int) -> bytes:
    """4.3.4 (type 3: destination I/O APIC ID and INTINn) and 4.3.5 (type 4: destination local
    APIC ID and LINTINn): interrupt type, PO/EL flags (16 bits), source bus ID and IRQ."""
    return struct.pack("<BBHBBBB", kind, int_type, flags, src_bus, src_irq, dst_apic, dst_pin)


def pci_source_irq(device: int, pin: int) -> int:
    """D.3: the source bus IRQ of a PCI interrupt: device number in bits 6:2, INTA#-INTD#
    (``pin`` 1-4 as the Interrupt Pin register says) in bits 1:0."""
    return (device << 2) | ((pin - 1) & 3)


# -- the tables -----------------------------------------------------------------------------------
@dataclass
class MPConfig:
    """What the configuration table describes; the defaults are the Aero PC."""
    cpus: int = 1
    cpu_signature: int = 0
    cpu_features: int = 0
    lapic_address: int = LAPIC_ADDRESS
    lapic_version: int = LAPIC_VERSION
    ioapic_id: int = IOAPIC_ID
    ioapic_version: int = IOAPIC_VERSION
    ioapic_address: int = IOAPIC_ADDRESS
    # PCI interrupts: (device, pin 1-4, I/O APIC pin) of bus-0 functions, in bus order; a
    # device's pin is listed once whatever functions share it
    pci_interrupts: list = field(default_factory=list)
    # ISA IRQs that PCI interrupts may use: not described as ISA interrupts
    pci_irqs: tuple = PCI_IRQS
    irq0_override: bool = True      # ISA IRQ 0 on pin 2 (IRQ 2 listed nowhere)
    extint_pin0: bool = True        # the 8259A's INTR on I/O APIC pin 0


def build_config_table(c: MPConfig) -> bytes:
    """4.2 + 4.3: the header and the base entries, in ascending entry type."""
    entries = []
    for n in range(c.cpus):
        entries.append(processor_entry(n, c.lapic_version, CPU_EN | (CPU_BP if n == 0 else 0),
                                       c.cpu_signature, c.cpu_features))
    entries.append(bus_entry(PCI_BUS_ID, b"PCI"))
    entries.append(bus_entry(ISA_BUS_ID, b"ISA"))
    entries.append(ioapic_entry(c.ioapic_id, c.ioapic_version, IOAPIC_EN, c.ioapic_address))
    if c.extint_pin0:
        entries.append(interrupt_entry(IO_INTERRUPT, EXTINT, PO_CONFORMS | EL_CONFORMS,
                                       ISA_BUS_ID, 0, c.ioapic_id, 0))
    seen = set()
    for device, pin, dst in c.pci_interrupts:
        if (device, pin) in seen or not 1 <= pin <= 4:
            continue
        seen.add((device, pin))
        entries.append(interrupt_entry(IO_INTERRUPT, INT, PO_ACTIVE_HIGH | EL_CONFORMS,
                                       PCI_BUS_ID, pci_source_irq(device, pin), c.ioapic_id,
                                       dst))
    for irq in range(16):
        if irq in c.pci_irqs or (irq == 2 and c.irq0_override):
            continue
        pin = 2 if irq == 0 and c.irq0_override else irq
        entries.append(interrupt_entry(IO_INTERRUPT, INT, PO_CONFORMS | EL_CONFORMS,
                                       ISA_BUS_ID, irq, c.ioapic_id, pin))
    entries.append(interrupt_entry(LOCAL_INTERRUPT, EXTINT, PO_CONFORMS | EL_CONFORMS,
                                   ISA_BUS_ID, 0, 0, 0))
    entries.append(interrupt_entry(LOCAL_INTERRUPT, NMI, PO_CONFORMS | EL_CONFORMS,
                                   ISA_BUS_ID, 0, ALL_LOCAL_APICS, 1))
    body = b"".join(entries)
    length = HEADER_LENGTH + len(body)
    hdr = bytearray(struct.pack("<4sHBB8s12sIHHIHBB", CONFIG_SIGNATURE, length, SPEC_REV, 0,
                                OEM_ID, PRODUCT_ID, 0, 0, len(entries), c.lapic_address,
                                0, 0, 0))
    table = hdr + body
    table[7] = checksum_byte(table)
    return bytes(table)


def build_floating_pointer(config_address: int) -> bytes:
    """4.1: "_MP_", the configuration table's address, length 1 (paragraphs), spec revision 4,
    checksum, feature byte 1 = 0 (a configuration table is present, no default configuration),
    feature byte 2 = 0 (IMCRP clear: virtual wire mode), 3 reserved feature bytes."""
    fps = bytearray(struct.pack("<4sIBBBB4x", FPS_SIGNATURE, config_address, 1, SPEC_REV, 0, 0))
    fps[10] = checksum_byte(fps)
    return bytes(fps)


def build(address: int, c: MPConfig) -> bytes:
    """The floating pointer at ``address`` (16-byte aligned) followed by the configuration
    table at ``address + 16``: one block to copy to ``address``."""
    if address & 15:
        raise ValueError("the MP floating pointer needs a 16-byte boundary")
    return build_floating_pointer(address + FPS_LENGTH) + build_config_table(c)


def aero_config(machine) -> MPConfig:
    """The MPConfig of an Aero APIC machine as the Aero BIOS sets it up: the CPU's CPUID leaf 1
    (with the APIC bit), the PCI functions' interrupt pins as the POST routes them (PIIX4 PM:
    the SCI's IRQ 9; others: PIRQA-D -> ``AERO_PIRQ_ROUTE``), the I/O APIC's ID and address."""
    eax, _, _, edx = sys_cpuid_values(1)
    pci = []
    for (slot, fn), f in sorted(machine.pci.bus.functions.items()):
        pin = f.config[INTERRUPT_PIN]
        if not pin:
            continue
        dst = SCI_INT if isinstance(f, PIIX4PM) else AERO_PIRQ_ROUTE[pirq_of(slot, pin)]
        pci.append((slot, pin, dst))
    io = machine.ioapic
    return MPConfig(cpus=1, cpu_signature=eax, cpu_features=edx | CPUID_APIC,
                    ioapic_id=io.initial_id, ioapic_address=io.base, pci_interrupts=pci)


def place_in_rom(image: bytes, rom_base: int, end: int, c: MPConfig) -> tuple[bytes, int]:
    """Write the MP tables into a ROM ``image`` mapped at ``rom_base``: the 16-byte aligned
    block that ends at or below offset ``end``, which must be unused (zero) in the image.
    Returns the new image and the floating pointer's physical address."""
    size = FPS_LENGTH + len(build_config_table(c))
    off = ((end & ~15) - size) & ~15
    if off < 0 or any(image[off:off + size]):
        raise MPTableError(f"no free {size} bytes below ROM offset {end:#x} for the MP table")
    block = build(rom_base + off, c)
    img = bytearray(image)
    img[off:off + len(block)] = block
    return bytes(img), rom_base + off


# -- reading a table back -------------------------------------------------------------------------
@dataclass
class MPTable:
    """A parsed MP table: the floating pointer's address and fields, the header, the entries
    as tuples (type name first)."""
    address: int
    config_address: int
    spec_rev: int
    features: bytes
    oem_id: bytes
    product_id: bytes
    lapic_address: int
    entries: list


def _entry_tuple(e: bytes) -> tuple:
    t = e[0]
    if t == PROCESSOR:
        _, apic_id, ver, flags, sig, feat = struct.unpack_from("<BBBBII", e)
        return ("processor", apic_id, ver, flags, sig, feat)
    if t == BUS:
        return ("bus", e[1], e[2:8].rstrip(b" \0").decode("latin-1"))
    if t == IOAPIC:
        _, apic_id, ver, flags, addr = struct.unpack_from("<BBBBI", e)
        return ("ioapic", apic_id, ver, flags, addr)
    _, itype, flags, sbus, sirq, dapic, dpin = struct.unpack_from("<BBHBBBB", e)
    return ("io-int" if t == IO_INTERRUPT else "local-int", INT_TYPE_NAMES[itype & 3], flags,
            sbus, sirq, dapic, dpin)


def search_areas(read) -> list[tuple[int, int]]:
    """4.1: where an OS looks for the floating pointer: the first KiB of the EBDA (segment at
    40:0Eh), the last KiB of base memory (KiB count at 40:13h), the BIOS ROM F0000h-FFFFFh."""
    ebda = struct.unpack("<H", read(0x40E, 2))[0] << 4
    base_kib = struct.unpack("<H", read(0x413, 2))[0]
    areas = []
    if ebda:
        areas.append((ebda, 1024))
    if base_kib:
        areas.append(((base_kib - 1) << 10, 1024))
    areas.append((0xF0000, 0x10000))
    return areas


def find(read) -> int | None:
    """The floating pointer's address (signature and checksum valid), or None."""
    for base, size in search_areas(read):
        data = read(base, size)
        for off in range(0, size - FPS_LENGTH + 1, 16):
            if data[off:off + 4] == FPS_SIGNATURE and data[off + 8] == 1 and \
                    sum(data[off:off + FPS_LENGTH]) & 0xFF == 0:
                return base + off
    return None


def parse(read, address: int | None = None) -> MPTable:
    """Read the MP tables through ``read(address, size) -> bytes`` (guest physical memory),
    checking the signatures, lengths, checksums and entry order; MPTableError if anything is
    wrong."""
    if address is None:
        address = find(read)
        if address is None:
            raise MPTableError("no MP floating pointer structure")
    fps = read(address, FPS_LENGTH)
    if fps[:4] != FPS_SIGNATURE or sum(fps) & 0xFF:
        raise MPTableError(f"bad floating pointer at {address:#x}")
    config_address, length, spec_rev = struct.unpack_from("<IBB", fps, 4)
    features = bytes(fps[11:16])
    if features[0]:
        raise MPTableError(f"default configuration {features[0]} (no table)")
    hdr = read(config_address, HEADER_LENGTH)
    (sig, tlen, rev, _, oem, product, _, _, count, lapic, ext_len, ext_sum,
     _) = struct.unpack("<4sHBB8s12sIHHIHBB", hdr)
    if sig != CONFIG_SIGNATURE:
        raise MPTableError(f"no PCMP signature at {config_address:#x}")
    table = read(config_address, tlen)
    if sum(table) & 0xFF:
        raise MPTableError("configuration table checksum")
    if ext_len and (sum(read(config_address + tlen, ext_len)) + ext_sum) & 0xFF:
        raise MPTableError("extended table checksum")
    entries, off, last = [], HEADER_LENGTH, -1
    for _ in range(count):
        t = table[off]
        if t not in ENTRY_LENGTH:
            raise MPTableError(f"unknown entry type {t} at offset {off}")
        if t < last:
            raise MPTableError("entries not in ascending type order")
        last = t
        entries.append(_entry_tuple(table[off:off + ENTRY_LENGTH[t]]))
        off += ENTRY_LENGTH[t]
    if off != tlen:
        raise MPTableError(f"{count} entries end at {off}, the table is {tlen} bytes")
    return MPTable(address, config_address, spec_rev, features, oem, product, lapic, entries)


def describe(t: MPTable) -> dict:
    """The structure of a table, to compare firmware by (not bytes, not addresses, not the order
    within a type): processors as (APIC ID, version, flags, signature, features), bus types,
    I/O APICs as (version, flags, address) with their IDs apart ("ioapic_ids"), and the
    interrupt assignments as (type, flags, source bus type, source IRQ, destination, pin) where
    an I/O APIC destination is ("ioapic", its index in the table) rather than its ID."""
    bus_type = {e[1]: e[2] for e in t.entries if e[0] == "bus"}
    ioapics = [e for e in t.entries if e[0] == "ioapic"]
    index = {e[1]: n for n, e in enumerate(ioapics)}

    def interrupt(e):
        dst = ("ioapic", index.get(e[5], e[5])) if e[0] == "io-int" else e[5]
        return (e[1], e[2], bus_type.get(e[3], e[3]), e[4], dst, e[6])
    return {"processors": [e[1:] for e in t.entries if e[0] == "processor"],
            "buses": sorted(bus_type.values()),
            "ioapics": [e[2:] for e in ioapics],
            "ioapic_ids": [e[1] for e in ioapics],
            "io_interrupts": sorted(interrupt(e) for e in t.entries if e[0] == "io-int"),
            "local_interrupts": sorted(interrupt(e) for e in t.entries if e[0] == "local-int"),
            "lapic_address": t.lapic_address, "spec_rev": t.spec_rev}


def format_table(t: MPTable) -> str:
    """A readable listing, one line per entry."""
    lines = [f"MP floating pointer at {t.address:08X}: table at {t.config_address:08X}, spec "
             f"1.{t.spec_rev}, features {t.features.hex()}",
             f"OEM {t.oem_id.decode('latin-1')!r} product {t.product_id.decode('latin-1')!r}, "
             f"local APIC at {t.lapic_address:08X}, {len(t.entries)} entries"]
    for e in t.entries:
        if e[0] == "processor":
            lines.append(f"  processor  APIC {e[1]} version {e[2]:02X}h flags {e[3]:02X}h "
                         f"signature {e[4]:08X} features {e[5]:08X}")
        elif e[0] == "bus":
            lines.append(f"  bus        {e[1]} {e[2]}")
        elif e[0] == "ioapic":
            lines.append(f"  I/O APIC   {e[1]} version {e[2]:02X}h flags {e[3]:02X}h at "
                         f"{e[4]:08X}")
        else:
            lines.append(f"  {e[0]:<10} {e[1]:<6} flags {e[2]:04X} bus {e[3]} IRQ "
                         f"{e[4]:#04x} -> APIC {e[5]:#04x} pin {e[6]}")
    return "\n".join(lines)
