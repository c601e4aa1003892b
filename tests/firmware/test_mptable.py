"""The MP table (aero/firmware/mptable.py) of an APIC machine (MachineConfig(apic=True)): read
back from guest memory after the POST of the Aero BIOS, checked against the spec's rules
(signatures, checksums, entry order), against the hardware it describes (the local APIC's and
the I/O APIC's ID and version registers, CPUID, the PCI interrupt lines as POST leaves them,
the I/O APIC's wiring), against the ACPI MADT the same firmware installs, and entry for entry
against the tables SeaBIOS builds, on Aero (--apic --bios seabios) and under qemu-system-i386."""

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from aero.build import build_machine
from aero.config import FIRMWARE, MachineConfig
from aero.cpu.sem.system import CPUID_APIC, sys_cpuid_values
from aero.devices import ioapic as IO
from aero.devices.pci import INTERRUPT_LINE, INTERRUPT_PIN, pirq_of
from aero.firmware import acpi
from aero.firmware import mptable as MP
from aero.firmware.bios import EBDA_SEG, ROM_BASE

SEABIOS = os.path.exists(FIRMWARE["seabios"][0])
QEMU = shutil.which("qemu-system-i386")
BIOSDECODE = shutil.which("biosdecode") or next(
    (p for p in ("/usr/sbin/biosdecode", "/sbin/biosdecode") if os.path.exists(p)), None)


def _aero_posted(**kw):
    """An APIC machine after the Aero BIOS's POST (no drive: it stops at "No bootable
    device")."""
    m = build_machine(MachineConfig(apic=True, boot="a", **kw))
    m.run(max_instructions=10_000)
    return m


@pytest.fixture(scope="module")
def aero_machine():
    m = _aero_posted()
    yield m
    m.close()


@pytest.fixture(scope="module")
def seabios_machine():
    """An APIC machine with SeaBIOS, stopped when its POST is over (its port-402h log says
    "enter handle_19")."""
    if not SEABIOS:
        pytest.skip("seabios absent")
    log = bytearray()
    box = []

    def sink(b):
        log.append(b)
        if log.endswith(b"enter handle_19:\n"):
            box[0].request_stop()
    m = build_machine(MachineConfig(apic=True, bios="seabios", firmware_log=sink))
    box.append(m)
    r = m.run(max_instructions=40_000_000)
    assert r.status == "stop", (r.status, bytes(log[-400:]))
    m.firmware_log_text = log.decode("latin-1")
    yield m
    m.close()


def _read(m):
    return m.bus.read_bytes


def _ioapic_reg(m, index):
    m.bus.write32(IO.DEFAULT_BASE, index)
    return m.bus.read32(IO.DEFAULT_BASE + 0x10)


def _without_extint_pin0(d):
    d = dict(d)
    d["io_interrupts"] = [e for e in d["io_interrupts"] if e[0] != "ExtINT"]
    return d


# ----------------------------------------------------------------------------------------------
# building and parsing
# ----------------------------------------------------------------------------------------------
def test_floating_pointer_and_header_layout():
    c = MP.MPConfig(cpu_signature=0x663, cpu_features=0x201, pci_interrupts=[(1, 1, 9)])
    blob = MP.build(0xF1230, c)
    fps, table = blob[:16], blob[16:]
    assert fps[:4] == b"_MP_" and struct.unpack_from("<I", fps, 4)[0] == 0xF1240
    assert fps[8] == 1 and fps[9] == 4 and sum(fps) & 0xFF == 0 and fps[11:] == bytes(5)
    sig, length, rev, _, oem, product, oemptr, oemsize, count, lapic, xlen, xsum, _ = \
        struct.unpack_from("<4sHBB8s12sIHHIHBB", table)
    assert (sig, length, rev) == (b"PCMP", len(table), 4) and sum(table) & 0xFF == 0
    assert (oem, product, oemptr, oemsize, lapic, xlen, xsum) == (
        b"AERO    ", b"AERO PC     ", 0, 0, 0xFEE00000, 0, 0)
    # 1 processor, 2 buses, 1 I/O APIC, ExtINT + 1 PCI + 13 ISA (16 less IRQ 2, 5, 9, 10, 11)
    # I/O interrupts, 2 local interrupts
    assert count == 1 + 2 + 1 + (1 + 1 + 11) + 2
    assert length == 44 + 20 + 8 * (count - 1)
    with pytest.raises(ValueError):
        MP.build(0xF1238, c)


def test_parse_rejects_broken_tables():
    c = MP.MPConfig()
    mem = bytearray(0x100000)
    mem[0xF0000:0xF0000 + 16 + len(MP.build_config_table(c))] = MP.build(0xF0000, c)
    read = lambda a, n: bytes(mem[a:a + n])
    assert MP.find(read) == 0xF0000 and len(MP.parse(read).entries) == 18
    mem[0xF0000 + 16 + 7] ^= 1                      # configuration table checksum
    with pytest.raises(MP.MPTableError, match="checksum"):
        MP.parse(read)
    mem[0xF0000 + 16 + 7] ^= 1
    mem[0xF0000 + 10] ^= 1                          # floating pointer checksum: not found
    assert MP.find(read) is None
    with pytest.raises(MP.MPTableError, match="no MP floating pointer"):
        MP.parse(read)
    mem[0xF0000 + 10] ^= 1
    # an I/O APIC entry before the buses: out of order
    t = bytearray(MP.build_config_table(c))
    bus, ioapic = 44 + 20, 44 + 20 + 16
    t[bus:bus + 8], t[ioapic:ioapic + 8] = t[ioapic:ioapic + 8], t[bus:bus + 8]
    t[7] = 0
    t[7] = MP.checksum_byte(t)
    mem[0xF0010:0xF0010 + len(t)] = t
    with pytest.raises(MP.MPTableError, match="ascending"):
        MP.parse(read)


def test_pci_source_irq_encoding():
    # MP spec D.3: device in bits 6:2, INTA#-INTD# as 0-3
    assert MP.pci_source_irq(1, 1) == 0x04 and MP.pci_source_irq(31, 4) == 0x7F


# ----------------------------------------------------------------------------------------------
# the Aero BIOS
# ----------------------------------------------------------------------------------------------
def test_aero_bios_installs_the_table_in_its_rom(aero_machine):
    m = aero_machine
    read = _read(m)
    t = MP.parse(read)
    assert t.address == m.aero_bios.mptable_address == MP.find(read)
    assert 0xF0000 <= t.address < 0x100000 and t.address % 16 == 0
    assert t.config_address == t.address + 16 and t.spec_rev == 4
    # the ROM image at the top of 4 GiB holds the same bytes
    top = (1 << 32) - 0x10000
    length = struct.unpack_from("<H", read(t.config_address, 6), 4)[0]
    assert read(top + (t.address - ROM_BASE), 16 + length) == read(t.address, 16 + length)
    # in the reserved BIOS range of the E820 map
    assert any(base <= t.address and t.config_address + length <= base + size and kind == 2
               for base, size, kind in m.aero_bios.memory_map())
    assert read(EBDA_SEG << 4, 1) == b"\x01"        # the EBDA is as before


def test_processor_and_apic_entries_describe_the_hardware(aero_machine):
    m = aero_machine
    t = MP.parse(_read(m))
    procs = [e for e in t.entries if e[0] == "processor"]
    lapic_id = m.bus.read32(0xFEE00020) >> 24
    lapic_ver = m.bus.read32(0xFEE00030) & 0xFF
    eax, _, _, edx = sys_cpuid_values(1)
    assert procs == [("processor", lapic_id, lapic_ver, MP.CPU_EN | MP.CPU_BP, eax,
                      edx | CPUID_APIC)]
    assert (lapic_id, lapic_ver, eax) == (0, 0x14, 0x663)
    assert t.lapic_address == 0xFEE00000
    assert [e for e in t.entries if e[0] == "bus"] == [("bus", 0, "PCI"), ("bus", 1, "ISA")]
    ioapic_id = _ioapic_reg(m, 0) >> 24
    ioapic_ver = _ioapic_reg(m, 1) & 0xFF
    assert [e for e in t.entries if e[0] == "ioapic"] == [
        ("ioapic", ioapic_id, ioapic_ver, MP.IOAPIC_EN, 0xFEC00000)]
    assert ioapic_id == m.ioapic.initial_id and ioapic_ver == 0x11
    # every I/O interrupt names that I/O APIC
    assert {e[5] for e in t.entries if e[0] == "io-int"} == {ioapic_id}


def test_interrupt_entries_follow_the_wiring(aero_machine):
    m = aero_machine
    t = MP.parse(_read(m))
    ioints = [e for e in t.entries if e[0] == "io-int"]
    isa = {e[4]: e[6] for e in ioints if e[3] == MP.ISA_BUS_ID and e[1] == "INT"}
    # the ISA IRQs reach the pins aero.devices.ioapic wires them to; the PCI ones (the SCI and
    # what the links offer) and the cascade are not ISA interrupts here
    pci_irqs = {acpi.SCI_INT, *acpi.LINK_IRQS}
    assert set(isa) == set(range(16)) - pci_irqs - {2}
    assert all(pin == IO.isa_pin(irq) for irq, pin in isa.items()) and isa[0] == 2
    assert all(e[2] == 0 for e in ioints if e[3] == MP.ISA_BUS_ID)       # conforming
    # the 8259A's INTR on pin 0
    assert [e for e in ioints if e[1] == "ExtINT"] == [
        ("io-int", "ExtINT", 0, MP.ISA_BUS_ID, 0, acpi.IOAPIC_ID, IO.PIN_PIC)]
    # PCI: each function with an interrupt pin, to the ISA IRQ POST put in its interrupt line
    # (the PIIX4 PM function: the SCI, IRQ 9) or routed its PIRQ to; active high, level
    pci = {e[4]: e[6] for e in ioints if e[3] == MP.PCI_BUS_ID}
    want = {}
    for (slot, fn), f in sorted(m.pci.bus.functions.items()):
        pin = f.config[INTERRUPT_PIN]
        if pin:
            line = f.config[INTERRUPT_LINE]
            if line in (0, 0xFF):
                line = m.pci.bus.router.route[pirq_of(slot, pin)]
            want.setdefault(MP.pci_source_irq(slot, pin), line)
    assert pci == want and want == {MP.pci_source_irq(1, 1): 9}
    assert all(e[2] == MP.PO_ACTIVE_HIGH for e in ioints if e[3] == MP.PCI_BUS_ID)
    assert [e for e in t.entries if e[0] == "local-int"] == [
        ("local-int", "ExtINT", 0, MP.ISA_BUS_ID, 0, 0, 0),
        ("local-int", "NMI", 0, MP.ISA_BUS_ID, 0, 0xFF, 1)]


def _rsdt_tables(read):
    """{signature: table bytes} through the RSDP (E0000h-FFFFFh) and the RSDT."""
    rom = read(0xE0000, 0x20000)
    off = next(o for o in range(0, len(rom), 16) if rom[o:o + 8] == b"RSD PTR "
               and sum(rom[o:o + 20]) & 0xFF == 0)
    rsdt = struct.unpack_from("<I", rom, off + 16)[0]
    n = struct.unpack("<I", read(rsdt + 4, 4))[0]
    out = {}
    for a in struct.unpack_from(f"<{(n - 36) // 4}I", read(rsdt, n), 36):
        size = struct.unpack("<I", read(a + 4, 4))[0]
        t = read(a, size)
        assert sum(t) & 0xFF == 0, t[:4]
        out[t[:4]] = t
    return out


def _madt(t):
    """(local APIC address, [(type, fields...)]) of a MADT."""
    lapic = struct.unpack_from("<I", t, 36)[0]
    out, off = [], 44
    while off < len(t):
        kind, length = t[off], t[off + 1]
        e = t[off:off + length]
        if kind == 0:
            out.append(("lapic",) + struct.unpack_from("<BBI", e, 2))
        elif kind == 1:
            out.append(("ioapic",) + struct.unpack_from("<BxII", e, 2))
        elif kind == 2:
            out.append(("override",) + struct.unpack_from("<BBIH", e, 2))
        elif kind == 4:
            out.append(("nmi",) + struct.unpack_from("<BHB", e, 2))
        off += length
    return lapic, out


def _check_mp_against_madt(mp, madt):
    """The two tables agree: local APIC address and IDs, the I/O APIC (ID, address), IRQ 0 on
    the override's GSI, level-triggered IRQs (overrides with flags 0Dh) not ISA interrupts,
    PCI interrupts on level GSIs, NMI on LINT1."""
    lapic, ents = madt
    assert lapic == mp.lapic_address
    assert sorted(e[2] for e in ents if e[0] == "lapic") == \
        sorted(e[1] for e in mp.entries if e[0] == "processor")
    mp_io = [e for e in mp.entries if e[0] == "ioapic"]
    assert [(e[1], e[2]) for e in ents if e[0] == "ioapic"] == [(e[1], e[4]) for e in mp_io]
    overrides = {e[2]: (e[3], e[4]) for e in ents if e[0] == "override"}
    isa = {e[4]: e[6] for e in mp.entries if e[0] == "io-int" and e[1] == "INT"
           and e[3] == MP.ISA_BUS_ID}
    assert isa[0] == overrides[0][0] == 2
    level = {irq for irq, (gsi, flags) in overrides.items() if flags & 0xC == 0xC}
    assert level and not level & set(isa)
    pci_pins = {e[6] for e in mp.entries if e[0] == "io-int" and e[3] == MP.PCI_BUS_ID}
    assert pci_pins <= {overrides[i][0] for i in level}
    assert ("nmi", 0xFF, 5, 1) in ents and ("local-int", "NMI", 0, MP.ISA_BUS_ID, 0, 0xFF, 1) \
        in mp.entries


def test_mp_table_agrees_with_the_madt_of_the_aero_bios(aero_machine):
    read = _read(aero_machine)
    tables = _rsdt_tables(read)
    assert b"APIC" in tables
    _check_mp_against_madt(MP.parse(read), _madt(tables[b"APIC"]))


def test_default_machine_has_no_mp_table_and_the_same_rom():
    """Without the APIC nothing changes: no floating pointer anywhere an OS looks, and the ROM
    image differs from an APIC machine's only in the MP block and the RSDP (whose RSDT/XSDT
    list the MADT)."""
    m = build_machine(MachineConfig(boot="a"))
    m.run(max_instructions=10_000)
    assert MP.find(m.bus.read_bytes) is None and m.aero_bios.mptable_address is None
    a = _aero_posted()
    fps = a.aero_bios.mptable_address - ROM_BASE
    size = 16 + len(MP.build_config_table(MP.aero_config(a)))
    rsdp = m.aero_bios.off["rsdp_slot"]
    old, new = m.bios_image, a.bios_image
    assert len(old) == len(new) == 0x10000
    diff = {i for i in range(len(old)) if old[i] != new[i]}
    assert diff and diff <= set(range(fps, fps + size)) | set(range(rsdp, rsdp + 36))
    assert old[fps:fps + size] == bytes(size)
    a.close()
    m.close()


@pytest.mark.skipif(not BIOSDECODE, reason="biosdecode (package dmidecode) absent")
@pytest.mark.parametrize("apic", [True, False])
def test_biosdecode_reads_the_floating_pointer(apic, tmp_path):
    """dmidecode's biosdecode, reading a dump of the first MiB, finds the floating pointer of
    an APIC machine (with its checksum), and none on the default machine."""
    m = _aero_posted() if apic else build_machine(MachineConfig(boot="a"))
    m.run(max_instructions=10_000)
    dump = tmp_path / "low.bin"
    dump.write_bytes(m.bus.read_bytes(0, 0x100000))
    out = subprocess.run([BIOSDECODE, "-d", str(dump)], capture_output=True,
                         text=True).stdout
    assert "ACPI 2.0 present." in out and "SMBIOS" in out
    if apic:
        t = MP.parse(m.bus.read_bytes)
        assert "Intel Multiprocessor present.\n\tSpecification Revision: 1.4\n\t" \
            f"Configuration Table Address: 0x{t.config_address:08X}\n\tMode: Virtual Wire" \
            in out, out
    else:
        assert "Multiprocessor" not in out, out
    m.close()


def test_table_follows_the_ioapic_id():
    """The table names the I/O APIC by the ID it comes out of reset with."""
    m = build_machine(MachineConfig(apic=True, boot="a"))
    m.ioapic.initial_id = 5
    c = MP.aero_config(m)
    t = MP.parse(lambda a, n: MP.build(0xF0000, c)[a - 0xF0000:a - 0xF0000 + n], 0xF0000)
    assert {e[5] for e in t.entries if e[0] == "io-int"} == {5}
    assert [e[1] for e in t.entries if e[0] == "ioapic"] == [5]
    m.close()


# ----------------------------------------------------------------------------------------------
# SeaBIOS's tables on Aero, and under QEMU
# ----------------------------------------------------------------------------------------------
def test_seabios_builds_its_mp_table_on_aero(seabios_machine, aero_machine):
    m = seabios_machine
    log = m.firmware_log_text
    assert "Found 1 cpu(s) max supported 1 cpu(s)" in log and "No apic" not in log
    assert "Copying MPTABLE" in log
    sb = MP.parse(_read(m))
    assert sb.oem_id == b"BOCHSCPU"
    ours = MP.describe(MP.parse(_read(aero_machine)))
    theirs = MP.describe(sb)
    # entry for entry the same, but for the 8259A's ExtINT on I/O APIC pin 0, which only the
    # Aero BIOS lists (MP spec 5.1 lists it in the default configurations; SeaBIOS omits it),
    # and the I/O APIC's ID (test_seabios_names_the_ioapic_by_its_id)
    assert _without_extint_pin0(ours) == {**theirs, "ioapic_ids": ours["ioapic_ids"]}
    assert [e for e in ours["io_interrupts"] if e[0] == "ExtINT"] == [
        ("ExtINT", 0, "ISA", 0, ("ioapic", 0), 0)]


def test_seabios_names_the_ioapic_by_its_id(seabios_machine):
    """SeaBIOS writes BUILD_IOAPIC_ID (0, QEMU's I/O APIC ID) into its MP table without asking
    the device: Aero's I/O APIC (and MADT) use ID 0 too, so the table is right."""
    m = seabios_machine
    sb = MP.parse(_read(m))
    assert [e[1] for e in sb.entries if e[0] == "ioapic"] == [_ioapic_reg(m, 0) >> 24]


def test_seabios_installs_the_madt_on_aero(seabios_machine):
    """SeaBIOS loads the ACPI tables from fw_cfg (etc/table-loader): the MADT is listed in its
    RSDT with the content aero.firmware.acpi.build_madt made."""
    read = _read(seabios_machine)
    tables = _rsdt_tables(read)
    madt = tables[b"APIC"]
    want = acpi.build_madt()
    assert madt[36:] == want[36:] and madt[:9] == want[:9]
    lapic, ents = _madt(madt)
    assert [e for e in ents if e[0] == "ioapic"] == [("ioapic", acpi.IOAPIC_ID, 0xFEC00000, 0)]


def _qemu_low_memory(tmp):
    """The first MiB of a qemu-system-i386 pc machine (SeaBIOS, no drives) once its POST is
    over, through QMP's pmemsave."""
    sock, log, dump = (os.path.join(tmp, n) for n in ("qmp.sock", "fw.log", "low.bin"))
    p = subprocess.Popen([QEMU, "-nodefaults", "-display", "none", "-vga", "std", "-m", "32",
                          "-qmp", f"unix:{sock},server=on,wait=off",
                          "-chardev", f"file,id=fw,path={log}",
                          "-device", "isa-debugcon,iobase=0x402,chardev=fw"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if os.path.exists(log) and b"No bootable device" in open(log, "rb").read():
                break
            time.sleep(0.1)
        else:
            pytest.fail("QEMU's SeaBIOS did not finish its POST")
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            f = s.makefile("rwb")

            def qmp(obj):
                f.write(json.dumps(obj).encode() + b"\n")
                f.flush()
                while True:
                    r = json.loads(f.readline())
                    if "return" in r or "error" in r:
                        return r
            f.readline()                                # the greeting
            qmp({"execute": "qmp_capabilities"})
            r = qmp({"execute": "pmemsave",
                     "arguments": {"val": 0, "size": 0x100000, "filename": dump}})
            assert "return" in r, r
            qmp({"execute": "quit"})
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return open(dump, "rb").read()


@pytest.mark.skipif(not QEMU, reason="qemu-system-i386 absent")
def test_same_structure_as_seabios_under_qemu(aero_machine):
    """The table SeaBIOS builds on QEMU's pc machine (always with APICs) and the Aero BIOS's
    describe the same machine: the same buses, I/O APIC (version, address), interrupt
    assignments and local interrupts; the processor differs only in its CPUID feature flags
    (QEMU's qemu32 CPU has an FPU, MMX, SSE...)."""
    with tempfile.TemporaryDirectory() as d:
        mem = _qemu_low_memory(d)
    q = MP.describe(MP.parse(lambda a, n: mem[a:a + n]))
    ours = MP.describe(MP.parse(_read(aero_machine)))
    strip = lambda d: {**d, "processors": [p[:4] for p in d["processors"]], "ioapic_ids": None}
    assert strip(_without_extint_pin0(ours)) == strip(q)
    assert q["ioapic_ids"] == [0] and ours["ioapic_ids"] == [IO.IOAPIC().initial_id]
    assert q["processors"][0][4] & CPUID_APIC


# ----------------------------------------------------------------------------------------------
# a guest that uses the table: the same report and interrupts under both firmwares and QEMU
# ----------------------------------------------------------------------------------------------
# A multiboot kernel (assembled here with nasm: the test needs nasm) started after the POST
# (Aero's --kernel with either firmware, QEMU's -kernel).  Its report names everything but the
# I/O APIC's ID (0 under QEMU) and the ExtINT entry for I/O APIC pin 0 (only the Aero BIOS
# lists it); then the PIT interrupts through the I/O APIC pin the table gives for ISA IRQ 0.
MP_GUEST = r"""
; mpguest: a multiboot (v1, a.out kludge) kernel that finds the MP table as an OS does (MP
; spec 1.4, 4: the first KiB of the EBDA, the last KiB of base memory, F0000h-FFFFFh), checks both
; checksums, reports its entries on COM1, then routes the PIT through the I/O APIC: the 8259As
; masked, the local APIC software-enabled, the redirection entry of the pin the table gives
; for ISA IRQ 0 set to vector 30h (fixed, edge, to the local APIC's own ID), PIT channel 0 at
; 100 Hz; it counts 10 interrupts (EOI to the local APIC) and exits via isa-debug-exit (10h:
; exit status 33; a failure 11h: 35).  The 8259A's ExtINT on I/O APIC pin 0 is not reported
; (only the Aero BIOS lists it), nor the I/O APIC's ID (0 under QEMU, 1 on Aero).
bits 32
LOAD equ 0x100000
org LOAD
MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010000
header:
    dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
    dd header, LOAD, load_end, bss_end, entry
entry:
    cli
    mov esp, stack_top
    lgdt [gdtr]
    jmp 0x08:.cs
.cs:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov dx, 0x3FB                       ; COM1 8N1, 115200
    mov al, 0x83
    out dx, al
    mov dx, 0x3F8
    mov al, 1
    out dx, al
    inc dx
    xor al, al
    out dx, al
    mov dx, 0x3FB
    mov al, 3
    out dx, al
    mov al, 0xFF                        ; mask every 8259A input
    out 0x21, al
    out 0xA1, al
    ; the IDT: every vector to bad_int, 30h to tick, FFh (spurious) to a bare IRET
    mov edi, idt
    mov ecx, 256
.g: mov eax, bad_int
    call gate
    loop .g
    mov edi, idt + 8 * 0x30
    mov eax, tick
    call gate
    mov edi, idt + 8 * 0xFF
    mov eax, spurious
    call gate
    lidt [idtr]
    ; the floating pointer
    movzx esi, word [0x40E]
    shl esi, 4
    jz .noebda
    mov ecx, 1024
    call scan
    jnc found
.noebda:
    movzx esi, word [0x413]
    dec esi
    shl esi, 10
    mov ecx, 1024
    call scan
    jnc found
    mov esi, 0xF0000
    mov ecx, 0x10000
    call scan
    jnc found
    mov esi, m_nofps
    jmp fail
found:
    mov esi, m_fps
    call puts
    movzx eax, byte [ebx + 9]
    call putdec
    mov ebx, [ebx + 4]                  ; the configuration table
    cmp dword [ebx], 'PCMP'
    mov esi, m_nopcmp
    jne fail
    movzx ecx, word [ebx + 4]
    mov esi, ebx
    call sum
    mov esi, m_cks
    jnz fail
    mov eax, [ebx + 36]
    mov [lapic], eax
    mov esi, m_lapic
    call puts
    call puthex
    movzx eax, word [ebx + 34]
    mov [count], eax
    mov esi, m_crlf
    call puts
    lea ebp, [ebx + 44]                 ; walk the entries
.entry:
    cmp dword [count], 0
    je .done
    dec dword [count]
    movzx eax, byte [ebp]
    cmp al, 0
    je .cpu
    cmp al, 1
    je .bus
    cmp al, 2
    je .ioapic
    cmp al, 3
    je .ioint
    cmp al, 4
    je .lint
    mov esi, m_badtype
    jmp fail
.cpu:
    mov esi, m_cpu
    call puts
    movzx eax, byte [ebp + 1]
    call putdec
    mov esi, m_ver
    call puts
    movzx eax, byte [ebp + 2]
    call puthex2
    mov esi, m_flags
    call puts
    movzx eax, byte [ebp + 3]
    call puthex2
    mov esi, m_crlf
    call puts
    add ebp, 20
    jmp .entry
.bus:
    mov esi, m_bus
    call puts
    movzx eax, byte [ebp + 1]
    call putdec
    mov al, ' '
    call putc
    mov ecx, 6
    lea esi, [ebp + 2]
.bc:lodsb
    cmp al, ' '
    je .bd
    call putc
    loop .bc
.bd:mov eax, [ebp + 2]
    cmp eax, 'ISA '
    jne .bn
    mov al, [ebp + 1]
    mov [isa_bus], al
.bn:cmp eax, 'PCI '
    jne .bp
    mov al, [ebp + 1]
    mov [pci_bus], al
.bp:mov esi, m_crlf
    call puts
    add ebp, 8
    jmp .entry
.ioapic:
    mov al, [ebp + 1]
    mov [ioapic_id], al
    mov eax, [ebp + 4]
    mov [ioapic], eax
    mov esi, m_ioapic
    call puts
    movzx eax, byte [ebp + 2]
    call puthex2
    mov esi, m_flags
    call puts
    movzx eax, byte [ebp + 3]
    call puthex2
    mov esi, m_at
    call puts
    mov eax, [ebp + 4]
    call puthex
    mov esi, m_crlf
    call puts
    add ebp, 8
    jmp .entry
.ioint:
    cmp byte [ebp + 1], 0               ; INT only: ExtINT/NMI/SMI are not listed here
    jne .next8
    mov al, [ebp + 6]
    cmp al, [ioapic_id]
    mov esi, m_dst
    jne fail
    mov al, [ebp + 4]
    cmp al, [isa_bus]
    jne .pci
    mov esi, m_isa
    call puts
    movzx eax, byte [ebp + 5]
    call putdec
    test eax, eax
    jnz .pinout
    movzx eax, byte [ebp + 7]
    mov [irq0_pin], eax
    mov byte [have_irq0], 1
    jmp .pinout
.pci:
    cmp al, [pci_bus]
    mov esi, m_srcbus
    jne fail
    mov esi, m_pci
    call puts
    movzx eax, byte [ebp + 5]
    shr eax, 2
    call putdec
    mov al, ' '
    call putc
    movzx eax, byte [ebp + 5]
    and al, 3
    add al, 'A'
    call putc
.pinout:
    mov esi, m_flags
    call puts
    movzx eax, word [ebp + 2]
    call puthex2
    mov esi, m_pin
    call puts
    movzx eax, byte [ebp + 7]
    call putdec
    mov esi, m_crlf
    call puts
.next8:
    add ebp, 8
    jmp .entry
.lint:
    mov esi, m_lint
    call puts
    movzx eax, byte [ebp + 1]
    mov esi, [int_names + 4 * eax]
    call puts
    mov esi, m_toapic
    call puts
    movzx eax, byte [ebp + 6]
    call puthex2
    mov esi, m_lintin
    call puts
    movzx eax, byte [ebp + 7]
    call putdec
    mov esi, m_crlf
    call puts
    add ebp, 8
    jmp .entry
.done:
    ; the PIT through the I/O APIC pin the table gives for ISA IRQ 0
    cmp byte [have_irq0], 0
    mov esi, m_noirq0
    je fail
    mov ebx, [lapic]
    mov dword [ebx + 0x80], 0           ; TPR
    mov dword [ebx + 0xF0], 0x1FF       ; SVR: enabled, spurious vector FFh
    mov edx, [ebx + 0x20]               ; our APIC ID in bits 31:24
    mov edi, [ioapic]
    mov eax, [irq0_pin]
    lea ecx, [0x10 + 2 * eax]
    lea eax, [ecx + 1]
    mov [edi], eax
    mov [edi + 0x10], edx               ; destination
    mov [edi], ecx
    mov dword [edi + 0x10], 0x30        ; vector 30h, fixed, physical, high, edge, unmasked
    mov al, 0x34                        ; PIT channel 0, mode 2, 11932 (100 Hz)
    out 0x43, al
    mov ax, 11932
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
.wait:
    hlt
    cmp dword [ticks], 10
    jb .wait
    cli
    mov edi, [ioapic]                   ; mask the entry again
    mov eax, [irq0_pin]
    lea ecx, [0x10 + 2 * eax]
    mov [edi], ecx
    mov dword [edi + 0x10], 0x10030
    mov esi, m_ticks
    call puts
    mov eax, [irq0_pin]
    call putdec
    mov esi, m_ticks2
    call puts
    mov al, 0x10
    jmp exit
fail:
    call puts
    mov esi, m_fail
    call puts
    mov al, 0x11
exit:
    mov dx, 0x501
    out dx, al
    cli
    hlt
    jmp exit
tick:
    push eax
    inc dword [ticks]
    mov eax, [lapic]
    mov dword [eax + 0xB0], 0           ; EOI
    pop eax
    iret
spurious:
    iret
bad_int:
    mov esi, m_badint
    jmp fail
; EDI: the gate to write, EAX: the handler (32-bit interrupt gate, selector 08h); EDI += 8
gate:
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8E00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    ret
; ESI, ECX bytes: a valid floating pointer on a 16-byte boundary -> EBX, CF clear; else CF set
scan:
    cmp dword [esi], '_MP_'
    jne .n
    cmp byte [esi + 8], 1
    jne .n
    push ecx
    push esi
    mov ecx, 16
    call sum
    pop esi
    pop ecx
    jnz .n
    mov ebx, esi
    clc
    ret
.n: add esi, 16
    sub ecx, 16
    ja scan
    stc
    ret
; the byte sum of ECX bytes at ESI -> AL, ZF set when 0
sum:
    xor edx, edx
.s: add dl, [esi]
    inc esi
    loop .s
    test dl, dl
    ret
puts:
    lodsb
    test al, al
    jz .r
    call putc
    jmp puts
.r: ret
putc:
    push edx
    push eax
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    pop eax
    mov dx, 0x3F8
    out dx, al
    pop edx
    ret
putdec:
    pushad
    mov ebx, 10
    xor ecx, ecx
.d: xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .d
.o: pop eax
    add al, '0'
    call putc
    loop .o
    popad
    ret
puthex2:
    pushad
    mov ecx, 2
    shl eax, 24
    jmp puthex.l
puthex:
    pushad
    mov ecx, 8
.l: rol eax, 4
    push eax
    and al, 15
    add al, '0'
    cmp al, '9'
    jbe .p
    add al, 7
.p: call putc
    pop eax
    loop .l
    popad
    ret
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr: dw gdtr - gdt - 1
    dd gdt
idtr: dw 256 * 8 - 1
    dd idt
int_names: dd n_int, n_nmi, n_smi, n_extint
n_int: db "INT", 0
n_nmi: db "NMI", 0
n_smi: db "SMI", 0
n_extint: db "ExtINT", 0
m_fps: db "MP floating pointer ok, spec 1.", 0
m_lapic: db ", table ok, local APIC at ", 0
m_crlf: db 13, 10, 0
m_cpu: db "processor APIC ", 0
m_ver: db " version ", 0
m_flags: db " flags ", 0
m_bus: db "bus ", 0
m_ioapic: db "I/O APIC version ", 0
m_at: db " at ", 0
m_isa: db "ISA IRQ ", 0
m_pci: db "PCI device ", 0
m_pin: db " -> pin ", 0
m_lint: db "local ", 0
m_toapic: db " -> APIC ", 0
m_lintin: db " LINTIN", 0
m_ticks: db "PIT through I/O APIC pin ", 0
m_ticks2: db ": 10 interrupts", 13, 10, 0
m_nofps: db "no MP floating pointer", 0
m_nopcmp: db "no PCMP table", 0
m_cks: db "table checksum wrong", 0
m_badtype: db "unknown entry type", 0
m_dst: db "I/O interrupt to another I/O APIC", 0
m_srcbus: db "I/O interrupt from an unknown bus", 0
m_noirq0: db "no ISA IRQ 0 entry", 0
m_badint: db "unexpected interrupt", 0
m_fail: db 13, 10, "FAILED", 13, 10, 0
load_end:
section .bss follows=.text nobits
alignb 8
idt: resb 256 * 8
lapic: resd 1
ioapic: resd 1
count: resd 1
ticks: resd 1
irq0_pin: resd 1
ioapic_id: resb 1
isa_bus: resb 1
pci_bus: resb 1
have_irq0: resb 1
stack: resb 4096
stack_top:
bss_end:
"""

MP_GUEST_OUTPUT = (
    "MP floating pointer ok, spec 1.4, table ok, local APIC at FEE00000\r\n"
    "processor APIC 0 version 14 flags 03\r\n"
    "bus 0 PCI\r\n"
    "bus 1 ISA\r\n"
    "I/O APIC version 11 flags 01 at FEC00000\r\n"
    "PCI device 1 A flags 01 -> pin 9\r\n"
    + "".join(f"ISA IRQ {irq} flags 00 -> pin {2 if irq == 0 else irq}\r\n"
              for irq in (0, 1, 3, 4, 6, 7, 8, 12, 13, 14, 15))
    + "local ExtINT -> APIC 00 LINTIN0\r\n"
    "local NMI -> APIC FF LINTIN1\r\n"
    "PIT through I/O APIC pin 2: 10 interrupts\r\n")


@pytest.fixture(scope="module")
def mp_guest(tmp_path_factory):
    if not shutil.which("nasm"):
        pytest.skip("nasm absent")
    d = tmp_path_factory.mktemp("mpguest")
    (d / "mpguest.asm").write_text(MP_GUEST)
    subprocess.run(["nasm", "-f", "bin", "-o", str(d / "mpguest.bin"), str(d / "mpguest.asm")],
                   check=True)
    return str(d / "mpguest.bin")


@pytest.mark.parametrize("bios", ["aero", "seabios"])
def test_guest_uses_the_table(mp_guest, bios):
    if bios == "seabios" and not SEABIOS:
        pytest.skip("seabios absent")
    out = bytearray()
    m = build_machine(MachineConfig(apic=True, bios=bios, kernel=mp_guest, serial=out.append))
    r = m.run(max_instructions=100_000_000)
    m.close()
    assert out.decode("latin-1") == MP_GUEST_OUTPUT
    assert (r.status, r.exit_code) == ("debug-exit", 33)


@pytest.mark.skipif(not QEMU, reason="qemu-system-i386 absent")
def test_guest_uses_the_table_under_qemu(mp_guest):
    p = subprocess.run([QEMU, "-nodefaults", "-display", "none", "-vga", "std", "-m", "32",
                        "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x501,iosize=2",
                        "-no-reboot", "-kernel", mp_guest], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert p.stdout.decode("latin-1") == MP_GUEST_OUTPUT
    assert p.returncode == 33
