"""The Aero BIOS (aero/firmware/bios.py, firmware/aero-bios/): boot from floppy, hard disk and an
El Torito CD, the services the test guests in bios_guests/ call, and the HLE mechanism itself.
Where QEMU (SeaBIOS) is installed, the same images run there and the COM1 output must match."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from aero.config import MachineConfig
from aero.inputs import KeyInput, SerialInput
from aero.machine import Machine
from aero.firmware import bios as B
from aero.firmware.bios import install_aero_bios, parse_rom, SVC_PORT
from aero.firmware.bios_video import VBE_MODES

HERE = os.path.dirname(__file__)
GUESTS = os.path.join(HERE, "bios_guests")
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ROM_SRC = os.path.join(ROOT, "firmware", "aero-bios", "aerobios.asm")
NASM = shutil.which("nasm")
QEMU = shutil.which("qemu-system-i386")
IPS = MachineConfig().ips


def guest(name: str) -> bytes:
    with open(os.path.join(GUESTS, name), "rb") as f:
        return f.read()


def floppy(tmp_path, data: bytes, name="fd.img") -> str:
    img = bytearray(1474560)
    img[:len(data)] = data
    p = tmp_path / name
    p.write_bytes(bytes(img))
    return str(p)


def hard_disk(tmp_path, data: bytes, size=1 << 20, name="hd.img") -> str:
    img = bytearray(size)
    img[:len(data)] = data
    p = tmp_path / name
    p.write_bytes(bytes(img))
    return str(p)


def make_iso(tmp_path, boot: bytes, data_text: bytes, media=0, load_count=4) -> str:
    """A minimal El Torito image: PVD (16), boot record (17), terminator (18), catalog (19),
    boot image (20), data (21)."""
    s = 2048
    img = bytearray(s * 24)
    pvd = bytearray(s)
    pvd[0], pvd[1:6], pvd[6] = 1, b"CD001", 1
    struct.pack_into("<I", pvd, 80, 24)
    struct.pack_into(">I", pvd, 84, 24)
    img[16 * s:17 * s] = pvd
    br = bytearray(s)
    br[0], br[1:6], br[6] = 0, b"CD001", 1
    br[7:30] = b"EL TORITO SPECIFICATION"
    struct.pack_into("<I", br, 0x47, 19)
    img[17 * s:18 * s] = br
    term = bytearray(s)
    term[0], term[1:6], term[6] = 255, b"CD001", 1
    img[18 * s:19 * s] = term
    val = bytearray(32)
    val[0] = 1
    val[4:4 + 8] = b"AERO TST"
    val[0x1E:0x20] = b"\x55\xAA"
    csum = (-sum(struct.unpack("<16H", bytes(val)))) & 0xFFFF
    struct.pack_into("<H", val, 0x1C, csum)
    ent = bytearray(32)
    ent[0], ent[1] = 0x88, media
    struct.pack_into("<HBBHI", ent, 2, 0, 0, 0, load_count, 20)
    img[19 * s:19 * s + 64] = val + ent
    img[20 * s:20 * s + len(boot)] = boot
    img[21 * s:21 * s + len(data_text)] = data_text
    p = tmp_path / "cd.iso"
    p.write_bytes(bytes(img))
    return str(p)


def machine(**kw):
    out = []
    cfg = MachineConfig(bios=None, serial=out.append, **kw)
    m = Machine(cfg)
    bios = install_aero_bios(m)
    return m, bios, out


def drain(m, seconds=0.1):
    """Let the UART finish sending what the guest handed it before exiting."""
    end = m.clock.now() + int(seconds * IPS)
    while True:
        nxt = m.clock.next_event()
        if nxt is None or nxt > end:
            break
        m.cpu.idle_time += max(0, nxt - m.clock.now())
        m.clock.run_due()


def screen_text(m, rows=25, cols=80) -> list[str]:
    v = m.vga.vram
    return [bytes(v[8 * (r * cols + c)] for c in range(cols)).decode("latin-1").rstrip()
            for r in range(rows)]


def qemu_serial(args: list[str]) -> bytes:
    cmd = [QEMU, *args, "-serial", "stdio", "-display", "none", "-nodefaults", "-m", "32",
           "-device", "isa-debug-exit,iobase=0x501,iosize=2"]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert r.returncode == 3, r
    return r.stdout


needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
needs_nasm = pytest.mark.skipif(NASM is None, reason="nasm not installed")

HELLO_SERIAL = b"Hello from the boot sector\r\nSector 2 says hi\r\nBye\r\n"
HD_SERIAL = (b"MBR: booted from drive 80\r\nStage 2 running\r\nLBA 3 read through CHS\r\n")
CD_TEXT = b"Read from CD sector 21\r\n"
CD_SERIAL = b"CD boot from drive E0\r\n" + CD_TEXT


# ---------------------------------------------------------------------------------------------
# ROM and images
# ---------------------------------------------------------------------------------------------
@needs_nasm
@pytest.mark.parametrize("src", ["ROM", "hello_floppy", "hd_mbr", "cd_boot", "services"])
def test_committed_images_rebuild_identically(tmp_path, src):
    if src == "ROM":
        asm, binary = ROM_SRC, ROM_SRC[:-4] + ".bin"
    else:
        asm, binary = (os.path.join(GUESTS, src + ".asm"), os.path.join(GUESTS, src + ".bin"))
    out = tmp_path / "out.bin"
    subprocess.run([NASM, "-f", "bin", "-I", os.path.dirname(asm) + "/", "-o", str(out), asm],
                   check=True)
    with open(binary, "rb") as f:
        assert out.read_bytes() == f.read()


def test_rom_layout():
    with open(B.ROM_PATH, "rb") as f:
        rom = f.read()
    assert len(rom) == 64 << 10
    entries, off = parse_rom(rom)
    ids = {sid for sid, _ in entries.values()}
    assert {0x08, 0x09, 0x10, 0x13, 0x15, 0x16, 0x19, 0x1A, 0x70, B.POST_ID} <= ids
    for o in entries:                                   # every entry is an OUT imm8, EBh
        assert rom[o] == 0xE6 and rom[o + 1] == SVC_PORT
    assert rom[0xFFF0] == 0xEA                          # reset vector: JMP FAR F000:post
    assert off["diskette_params"] == 0xEFC7 and off["config_table"] == 0xE6F5
    modes = struct.unpack_from("<13H", rom, off["vbe_modes"])
    assert modes[-1] == 0xFFFF and set(modes[:-1]) == set(VBE_MODES)


def test_svc_port_is_free_on_the_machine():
    m = Machine(MachineConfig(bios=None))
    assert SVC_PORT not in m.io.owner
    install_aero_bios(m)
    assert m.io.owner[SVC_PORT].name == "aero-bios"


# ---------------------------------------------------------------------------------------------
# Boot: floppy, hard disk, CD
# ---------------------------------------------------------------------------------------------
def test_floppy_boot_teletype_serial_and_int13(tmp_path):
    m, bios, out = machine(fda=floppy(tmp_path, guest("hello_floppy.bin")), boot="a")
    r = m.run(max_instructions=2_000_000)
    assert r.status == "debug-exit" and r.exit_code == 3
    drain(m)
    assert bytes(out) == HELLO_SERIAL
    text = screen_text(m)
    assert text[:4] == ["Hello from the boot sector", "Sector 2 says hi", "Bye", ""]
    # attributes of the written cells: light grey on black (the cleared screen's 07h)
    assert m.vga.vram[1] == 0x07
    # cursor: row 3, column 0 in the BDA and in CRTC registers 0Eh/0Fh
    assert m.bus.read16(0x450) == 0x0300
    assert m.vga.cursor_location() == 3 * 80
    assert bios.boot_drive == 0x00
    assert "Booting from Floppy..." in bios.log


def test_floppy_boot_screen_renders(tmp_path):
    render = pytest.importorskip("aero.display.render")
    from aero.display.fonts import FONT16
    m, bios, out = machine(fda=floppy(tmp_path, guest("hello_floppy.bin")), boot="a")
    m.run(max_instructions=2_000_000)
    img = render.render(m.vga)
    assert img.shape[:2] == (400, 720) or img.shape[:2] == (400, 640)
    cw = img.shape[1] // 80
    # the 'H' at row 0, column 0: its glyph's lit dots are light grey, the rest black
    g = FONT16[ord("H") * 16:(ord("H") + 1) * 16]
    for y in range(16):
        for x in range(8):
            lit = bool(g[y] & (0x80 >> x))
            px = tuple(int(v) for v in img[y, x][:3])
            assert (px != (0, 0, 0)) == lit, (y, x, px)
    assert cw in (8, 9)


def test_hard_disk_mbr_edd_and_chs(tmp_path):
    m, bios, out = machine(hda=hard_disk(tmp_path, guest("hd_mbr.bin")), boot="c")
    r = m.run(max_instructions=2_000_000)
    assert r.status == "debug-exit" and r.exit_code == 3
    drain(m)
    assert bytes(out) == HD_SERIAL
    assert screen_text(m)[:3] == ["MBR: booted from drive 80", "Stage 2 running",
                                  "LBA 3 read through CHS"]
    calls = [(c.vector, c.function) for c in bios.history if c.vector == 0x13]
    assert calls == [(0x13, 0x41), (0x13, 0x42), (0x13, 0x02)]


def test_hard_disk_without_signature_is_not_booted(tmp_path):
    data = bytearray(guest("hd_mbr.bin"))
    data[510:512] = b"\0\0"
    m, bios, out = machine(hda=hard_disk(tmp_path, bytes(data)), boot="c")
    r = m.run(max_instructions=1_000_000)
    assert r.status == "halted"
    assert screen_text(m)[0] == "No bootable device."


def test_boot_order_falls_through(tmp_path):
    """boot="ac" with no floppy: the hard disk boots."""
    m, bios, out = machine(hda=hard_disk(tmp_path, guest("hd_mbr.bin")), boot="ac")
    r = m.run(max_instructions=2_000_000)
    assert r.exit_code == 3 and bios.boot_drive == 0x80


def test_no_bootable_device():
    m, bios, out = machine(boot="acd")
    r = m.run(max_instructions=1_000_000)
    assert r.status == "halted"
    assert screen_text(m)[0] == "No bootable device."
    assert "No bootable device." in bios.log


def test_eltorito_no_emulation(tmp_path):
    iso = make_iso(tmp_path, guest("cd_boot.bin"), CD_TEXT + b"\0")
    m, bios, out = machine(cdrom=iso, boot="d")
    r = m.run(max_instructions=2_000_000)
    assert r.status == "debug-exit" and r.exit_code == 3
    drain(m)
    assert bytes(out) == CD_SERIAL
    assert bios.cd_boot == {"media": 0, "load_segment": 0x7C0, "count": 4, "lba": 20,
                            "drive": 0xE0}


def test_eltorito_floppy_emulation(tmp_path):
    """Media type 2 (1.44 MB): the image on the CD becomes drive 00h; the hello floppy's
    INT 13h CHS read of sector 2 comes from the CD."""
    fl = bytearray(1474560)
    fl[:1024] = guest("hello_floppy.bin")
    iso_path = make_iso(tmp_path, b"", b"", media=2, load_count=1)
    iso = bytearray(open(iso_path, "rb").read())
    iso[20 * 2048:] = fl
    with open(iso_path, "wb") as f:
        f.write(bytes(iso))
    m, bios, out = machine(cdrom=iso_path, boot="d")
    r = m.run(max_instructions=2_000_000)
    assert r.exit_code == 3
    drain(m)
    assert bytes(out) == HELLO_SERIAL
    assert bios.boot_drive == 0x00


XORRISO = shutil.which("xorriso")


@pytest.mark.skipif(XORRISO is None, reason="xorriso not installed")
def test_eltorito_iso_from_xorriso(tmp_path):
    """A real ISO 9660 image made by xorriso (-no-emul-boot, 4 virtual sectors); where QEMU is
    installed, SeaBIOS must print the same (sector 21 is whatever xorriso put there)."""
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "boot.bin").write_bytes(guest("cd_boot.bin"))
    (root / "readme.txt").write_bytes(b"hello\n")
    iso = tmp_path / "x.iso"
    subprocess.run([XORRISO, "-as", "mkisofs", "-quiet", "-o", str(iso), "-b", "boot/boot.bin",
                    "-no-emul-boot", "-boot-load-size", "4", str(root)], check=True,
                   capture_output=True)
    m, bios, out = machine(cdrom=str(iso), boot="d")
    r = m.run(max_instructions=5_000_000)
    assert r.status == "debug-exit" and r.exit_code == 3
    drain(m)
    assert bytes(out).startswith(b"CD boot from drive E0\r\n")
    assert bios.cd_boot["media"] == 0 and bios.cd_boot["count"] == 4
    if QEMU is not None:
        assert qemu_serial(["-cdrom", str(iso), "-boot", "d"]) == bytes(out)


def test_bad_eltorito_checksum_is_refused(tmp_path):
    iso_path = make_iso(tmp_path, guest("cd_boot.bin"), CD_TEXT + b"\0")
    iso = bytearray(open(iso_path, "rb").read())
    iso[19 * 2048 + 0x1C] ^= 1
    with open(iso_path, "wb") as f:
        f.write(bytes(iso))
    m, bios, out = machine(cdrom=iso_path, boot="d")
    assert m.run(max_instructions=1_000_000).status == "halted"


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------
def run_services(tmp_path, **kw):
    m, bios, out = machine(fda=floppy(tmp_path, guest("services.bin")), boot="a", **kw)

    for name, down in (("LeftShift", True), ("a", True), ("a", False), ("LeftShift", False)):
        m.inputs.post(2 * IPS, KeyInput(name, down))
    for down in (True, False):
        m.inputs.post(2 * IPS + IPS // 10, KeyInput("Up", down))
    r = m.run(max_instructions=50_000_000)
    assert r.status == "debug-exit" and r.exit_code == 3
    ram = m.bus.ram
    return m, bios, (lambda a: struct.unpack_from("<H", ram, a)[0]), ram


def test_services_time_and_keyboard(tmp_path):
    m, bios, w, ram = run_services(tmp_path)
    before, after = struct.unpack_from("<II", ram, 0xF00)
    assert before == 43200 * 1193182 // 65536       # 12:00:00 from the RTC at POST
    assert after - before in (9, 10)                 # 0.5 s of 18.2065 Hz ticks
    assert w(0xF24) == 0x1E41                        # Shift+A: 'A' with scancode 1Eh
    assert w(0xF26) == 0x48E0                        # AH=10h: grey Up keeps the E0h
    assert ram[0xF28] == 0                           # shifts released
    assert m.clock.now() >= 2 * IPS                  # the wait for the key ran in virtual time
    waits = [c for c in bios.history if c.vector == 0x16 and c.function == 0x00]
    assert waits and waits[0].waited > IPS
    assert ram[0x41A] != 0 or True


def test_services_memory_and_rtc(tmp_path):
    m, bios, w, ram = run_services(tmp_path, memory=32)
    assert w(0xF08) == 639                           # INT 12h: 640 KiB minus the 1 KiB EBDA
    eq = w(0xF0A)
    assert eq & 1 and (eq >> 6) & 3 == 0 and (eq >> 4) & 3 == 2 and (eq >> 9) & 7 == 4
    assert w(0xF10) == 31 * 1024                     # INT 15h AH=88h: KiB above 1 MiB
    assert w(0xF0C) == 15 * 1024                     # E801: 1-16 MiB
    assert w(0xF0E) == (32 - 16) * 16 - 1            # 64 KiB blocks above 16 MiB minus ACPI
    assert (w(0xF12), w(0xF14)) == (0x1200, 0x0000)  # 12:00:00 (MachineConfig.rtc)
    assert (w(0xF16), w(0xF18)) == (0x2026, 0x0101)  # 2026-01-01
    assert ram[0xF1A] == 0xFC
    assert (w(0xF1E), w(0xF1C)) == (0xF000, bios.off["FONT16"])
    from aero.display.fonts import FONT16
    assert m.bus.read_bytes(0xF0000 + bios.off["FONT16"], 4096) == FONT16
    assert w(0xF2C) == 0x0002                        # cursor after "AB": row 0, column 2


def test_e820_map(tmp_path):
    m, bios, w, ram = run_services(tmp_path, memory=32)
    n = w(0xF2A)
    ents = [struct.unpack_from("<QQII", ram, 0x1000 + 24 * i) for i in range(n)]
    assert ents[0][:3] == (0, 0x9FC00, 1)
    assert ents[1][:3] == (0x9FC00, 0x400, 2)
    assert (0xF0000, 0x10000, 2) in [e[:3] for e in ents]
    usable = [e for e in ents if e[2] == 1]
    assert usable[-1][0] == 0x100000
    acpi = [e for e in ents if e[2] == 3]
    assert len(acpi) == 1
    assert usable[-1][0] + usable[-1][1] == acpi[0][0]
    smb = acpi[0][0] + acpi[0][1]
    assert (smb, (32 << 20) - smb, 2) in [e[:3] for e in ents]      # SMBIOS table, reserved
    assert ents[-1][:3] == ((1 << 32) - 0x10000, 0x10000, 2)
    assert all(e[3] == 1 for e in ents)
    # the ACPI tables are there and the RSDP (in F0000-FFFFF) points at them
    base = acpi[0][0]
    rom = m.bus.read_bytes(0xF0000, 0x10000)
    k = rom.find(b"RSD PTR ")
    assert k >= 0 and k % 16 == 0
    rsdp = rom[k:k + 36]
    assert sum(rsdp[:20]) & 0xFF == 0
    rsdt = struct.unpack_from("<I", rsdp, 16)[0]
    assert base <= rsdt < base + acpi[0][1]
    assert m.bus.read_bytes(rsdt, 4) == b"RSDT"
    k = rom.find(b"_SM_")
    assert k >= 0 and k % 16 == 0
    eps = rom[k:k + 31]
    assert sum(eps) & 0xFF == 0
    table = struct.unpack_from("<I", eps, 0x18)[0]
    assert table == smb and m.bus.read8(table) == 0           # type 0 (BIOS information) first


def test_vbe_info_blocks(tmp_path):
    m, bios, w, ram = run_services(tmp_path)
    assert w(0xF20) == 0x004F and w(0xF22) == 0x004F
    info = bytes(ram[0x2000:0x2200])
    assert info[:4] == b"VESA" and struct.unpack_from("<H", info, 4)[0] == 0x0300
    off, seg = struct.unpack_from("<HH", info, 14)
    lst = m.bus.read_bytes(seg * 16 + off, 26)
    assert set(struct.unpack("<13H", lst)[:-1]) == set(VBE_MODES)
    assert struct.unpack_from("<H", info, 18)[0] == 256      # 16 MiB in 64 KiB blocks
    mi = bytes(ram[0x2200:0x2300])
    x, y = struct.unpack_from("<HH", mi, 18)
    assert (x, y, mi[25]) == (640, 480, 24)
    assert struct.unpack_from("<I", mi, 40)[0] == 0xE0000000
    assert struct.unpack_from("<H", mi, 16)[0] == 640 * 3
    assert mi[0] & 0x80                                       # linear framebuffer available


# ---------------------------------------------------------------------------------------------
# Calling services directly (guest code assembled in the test) and the HLE mechanism
# ---------------------------------------------------------------------------------------------
def call(m, bios, vector: int, **regs):
    """Run `INT vector; out 0x501 (exit)` at 0:0600 with the given registers after POST."""
    code = bytes([0xCD, vector, 0xBA, 0x01, 0x05, 0xB0, 0x00, 0xEE, 0xF4])
    m.bus.write_bytes(0x600, code)
    from aero.cpu.state import set_reg
    cpu = m.cpu
    for s in ("cs", "ds", "es", "ss"):
        set_reg(cpu, s, 0)
    for k, v in regs.items():
        set_reg(cpu, k, v)
    set_reg(cpu, "esp", 0x7000)
    set_reg(cpu, "eip", 0x600)
    cpu.halted = False
    m.exit_status = None
    r = m.run(max_instructions=cpu.icount + 5_000_000)
    assert r.status == "debug-exit", r
    return bios.history[-1]


def returned_zf(m) -> bool:
    """ZF as the last call returned it (the flags image is still on the stack below SP)."""
    return bool(m.bus.read16(0x7000 - 2) & 0x40)


def idle(m, seconds: float) -> None:
    """Let the guest sit in STI/HLT for ``seconds`` of virtual time (interrupts served)."""
    from aero.cpu.state import set_reg
    m.bus.write_bytes(0x680, bytes([0xFB, 0xF4, 0xEB, 0xFC]))
    set_reg(m.cpu, "eip", 0x680)
    set_reg(m.cpu, "cs", 0)
    set_reg(m.cpu, "esp", 0x7000)
    m.cpu.halted = False
    m.exit_status = None
    m.clock.schedule(m.clock.now() + int(seconds * IPS), lambda: m._debug_exit(0))
    assert m.run(max_instructions=m.cpu.icount + 10_000_000).status == "debug-exit"


def booted(tmp_path, **kw):
    """POST with a floppy whose boot sector halts at once (so the services can be called)."""
    sector = bytearray(512)
    sector[0:3] = b"\xFA\xF4\xEB"           # cli; hlt; jmp $-? (never reached)
    sector[510:512] = b"\x55\xAA"
    m, bios, out = machine(fda=floppy(tmp_path, bytes(sector)), boot="a", **kw)
    m.run(max_instructions=100_000)
    return m, bios, out


def test_stub_eip_is_the_out_instruction(tmp_path):
    """The claim the dispatch relies on: while a stub's OUT executes, CS base + EIP is the OUT's
    own address (the stub is entered by INT, so the OUT starts its translated block)."""
    m, bios, out = booted(tmp_path)
    seen = []
    orig = bios._svc_out

    def spy(port, size, value):
        seen.append((m.cpu.base[1] + m.cpu.eip, m.cpu.eip))
        orig(port, size, value)
    m.io.writers[SVC_PORT] = (spy, (1,))
    call(m, bios, 0x11)
    call(m, bios, 0x12)
    stubs = {0xF0000 + bios.stub(0x11), 0xF0000 + bios.stub(0x12)}
    assert {s for s, _ in seen} == stubs
    # an OUT to the port from anywhere else is ignored (an I/O delay)
    n = len(bios.history)
    m.bus.write_bytes(0x600, bytes([0xE6, SVC_PORT, 0xBA, 0x01, 0x05, 0xEE, 0xF4]))
    from aero.cpu.state import set_reg
    set_reg(m.cpu, "eip", 0x600)
    m.exit_status = None
    m.run(max_instructions=m.cpu.icount + 1000)
    assert len(bios.history) == n


def test_listener_gets_structured_events(tmp_path):
    m, bios, out = booted(tmp_path)
    got = []
    bios.listener = got.append
    ev = call(m, bios, 0x1A, eax=0x0000)
    assert got == [ev]
    assert ev.vector == 0x1A and ev.function == 0x00 and ev.cf == 0
    assert ev.result["edx"] & 0xFFFF == m.bus.read16(0x46C)
    ev = call(m, bios, 0x13, eax=0x0201, ecx=0x0001, edx=0x0085, ebx=0x8000)
    assert ev.cf == 1 and (ev.result["eax"] >> 8) & 0xFF == 0x01     # no such drive
    assert "INT 13h AH=02h" in str(ev)


def test_int13_write_goes_to_overlay_only(tmp_path):
    m, bios, out = booted(tmp_path)
    path = m.config.fda
    before = open(path, "rb").read()
    m.bus.write_bytes(0x8000, b"\xA5" * 512)
    ev = call(m, bios, 0x13, eax=0x0301, ecx=0x0005, edx=0x0100, ebx=0x8000)
    assert ev.cf == 0 and ev.result["eax"] & 0xFF == 1
    assert open(path, "rb").read() == before
    m.bus.write_bytes(0x9000, bytes(512))
    ev = call(m, bios, 0x13, eax=0x0201, ecx=0x0005, edx=0x0100, ebx=0x9000)
    assert m.bus.read_bytes(0x9000, 512) == b"\xA5" * 512
    # sector 0 / past the end of a track: sector not found
    ev = call(m, bios, 0x13, eax=0x0201, ecx=0x0013, edx=0x0000, ebx=0x9000)
    assert ev.cf == 1 and (ev.result["eax"] >> 8) == 0x04


def test_int13_floppy_parameters(tmp_path):
    m, bios, out = booted(tmp_path)
    ev = call(m, bios, 0x13, eax=0x0800, edx=0x0000)
    r = ev.result
    assert ev.cf == 0
    assert (r["ecx"] & 0xFFFF) == (79 << 8) | 18
    assert (r["edx"] & 0xFFFF) == 0x0101            # DH = 1 (heads - 1), DL = 1 drive
    assert r["ebx"] & 0xFF == 0x04                  # 1.44 MB
    assert (r["es"], r["edi"] & 0xFFFF) == (0xF000, 0xEFC7)


def test_int13_hard_disk_parameters_match_identify(tmp_path):
    m, bios, out = machine(hda=hard_disk(tmp_path, guest("hd_mbr.bin"), size=64 << 20),
                           boot="c")
    m.run(max_instructions=100)   # POST only
    c, h, s = m.ide[0].devices[0].geometry
    ev = call(m, bios, 0x13, eax=0x0800, edx=0x0080)
    r = ev.result
    cyl = ((r["ecx"] >> 8) & 0xFF) | ((r["ecx"] & 0xC0) << 2)
    assert (cyl + 1, ((r["edx"] >> 8) & 0xFF) + 1, r["ecx"] & 0x3F) == (min(c, 1024), h, s)
    m.bus.write_bytes(0x500, struct.pack("<H", 0x1E) + bytes(0x1C))
    ev = call(m, bios, 0x13, eax=0x4800, edx=0x0080, esi=0x500)
    size, flags, cc, hh, ss, total, bps = struct.unpack_from("<HHIIIQH",
                                                            m.bus.read_bytes(0x500, 0x1A))
    assert (cc, hh, ss, total, bps) == (c, h, s, (64 << 20) // 512, 512)


def test_int15_wait_uses_virtual_time(tmp_path):
    m, bios, out = booted(tmp_path)
    t0 = m.clock.now()
    ev = call(m, bios, 0x15, eax=0x8600, ecx=0x0000, edx=10_000)   # 10 ms
    assert ev.cf == 0
    dt = m.clock.now() - t0
    assert m.clock.ticks_for_ns(10_000_000) <= dt < m.clock.ticks_for_ns(11_000_000)


def test_int15_a20_and_block_move(tmp_path):
    m, bios, out = booted(tmp_path)
    assert call(m, bios, 0x15, eax=0x2400).cf == 0 and not m.bus.a20
    assert call(m, bios, 0x15, eax=0x2402).result["eax"] & 0xFF == 0
    call(m, bios, 0x15, eax=0x2401)
    assert m.bus.a20
    # move 16 bytes from 0x8000 to 0x200000 through a GDT at 0x500
    m.bus.write_bytes(0x8000, bytes(range(16)))
    gdt = bytearray(48)
    gdt[0x10:0x18] = bytes([0xFF, 0xFF, 0x00, 0x80, 0x00, 0x93, 0, 0x00])
    gdt[0x18:0x20] = bytes([0xFF, 0xFF, 0x00, 0x00, 0x20, 0x93, 0, 0x00])
    m.bus.write_bytes(0x500, bytes(gdt))
    ev = call(m, bios, 0x15, eax=0x8700, ecx=8, esi=0x500)
    assert ev.cf == 0
    assert m.bus.read_bytes(0x200000, 16) == bytes(range(16))


def test_int1a_ticks_follow_the_pit(tmp_path):
    m, bios, out = booted(tmp_path)
    t0 = m.bus.read32(0x46C)
    m.cpu.halted = False
    # let one virtual second pass with the guest halted (interrupts on)
    m.bus.write_bytes(0x600, bytes([0xFB, 0xF4, 0xEB, 0xFD]))
    from aero.cpu.state import set_reg
    set_reg(m.cpu, "eip", 0x600)
    start = m.clock.now()
    m.exit_status = None
    m.clock.schedule(start + IPS, lambda: m._debug_exit(0))
    r = m.run(max_instructions=m.cpu.icount + 1_000_000)
    assert r.status == "debug-exit"
    assert m.clock.now() - start < IPS + 100
    t1 = m.bus.read32(0x46C)
    assert t1 - t0 in (18, 19)                      # 18.2065 Hz
    ev = call(m, bios, 0x1A, eax=0)
    assert ((ev.result["ecx"] & 0xFFFF) << 16 | ev.result["edx"] & 0xFFFF) == t1


def test_int10_modes_and_pixels(tmp_path):
    m, bios, out = booted(tmp_path)
    call(m, bios, 0x10, eax=0x0013)
    assert m.bus.read8(0x449) == 0x13 and m.vga.graphics_mode()
    call(m, bios, 0x10, eax=0x0C2A, ecx=10, edx=20)
    assert m.bus.read8(0xA0000 + 20 * 320 + 10) == 0x2A
    assert call(m, bios, 0x10, eax=0x0D00, ecx=10, edx=20).result["eax"] & 0xFF == 0x2A
    ev = call(m, bios, 0x10, eax=0x0F00)
    assert ev.result["eax"] & 0xFFFF == (40 << 8) | 0x13
    # teletype in mode 13h draws the 8x8 glyph in colour BL
    call(m, bios, 0x10, eax=0x0E41, ebx=0x000E)
    from aero.display.fonts import FONT8
    g = FONT8[0x41 * 8: 0x42 * 8]
    for y in range(8):
        row = m.bus.read_bytes(0xA0000 + y * 320, 8)
        assert row == bytes(0x0E if g[y] & (0x80 >> x) else 0 for x in range(8))
    call(m, bios, 0x10, eax=0x0200, ebx=0, edx=0)
    assert call(m, bios, 0x10, eax=0x0800, ebx=0).result["eax"] & 0xFF == 0x41
    # mode 12h: planar pixel write and read back
    call(m, bios, 0x10, eax=0x0012)
    call(m, bios, 0x10, eax=0x0C05, ecx=100, edx=50)
    assert call(m, bios, 0x10, eax=0x0D00, ecx=100, edx=50).result["eax"] & 0xFF == 5
    assert call(m, bios, 0x10, eax=0x0D00, ecx=101, edx=50).result["eax"] & 0xFF == 0
    # back to text: cleared, 80 columns
    call(m, bios, 0x10, eax=0x0003)
    assert screen_text(m)[0] == "" and m.bus.read16(0x44A) == 80


def test_int10_scroll_and_write_string(tmp_path):
    m, bios, out = booted(tmp_path)
    m.bus.write_bytes(0x700, b"Line")
    for row in range(25):
        call(m, bios, 0x10, eax=0x1301, ebx=0x001F, ecx=4, edx=row << 8, ebp=0x700)
        m.bus.write8(0x700 + 3, 0x30 + row % 10)
    assert screen_text(m)[24] == "Lin3"
    call(m, bios, 0x10, eax=0x0602, ebx=0x4E00, ecx=0x0000, edx=(24 << 8) | 79)
    t = screen_text(m)
    assert t[0] == "Lin1" and t[22] == "Lin3" and t[23] == "" and t[24] == ""
    v = m.vga.vram
    assert v[8 * (24 * 80) + 1] == 0x4E and v[8 * (0 * 80) + 1] == 0x1F
    # read character and attribute at the cursor
    call(m, bios, 0x10, eax=0x0200, ebx=0, edx=0x0001)
    assert call(m, bios, 0x10, eax=0x0800, ebx=0).result["eax"] & 0xFFFF == 0x1F69   # 'i'


def test_vbe_set_mode_and_lfb(tmp_path):
    m, bios, out = booted(tmp_path)
    ev = call(m, bios, 0x10, eax=0x4F02, ebx=0x4000 | 0x112)
    assert ev.result["eax"] & 0xFFFF == 0x004F
    assert m.vga.vbe_enabled
    assert (m.vga.dispi_read(1), m.vga.dispi_read(2), m.vga.dispi_read(3)) == (640, 480, 24)
    m.bus.write8(0xE0000000 + 3 * 641, 0x77)
    assert m.vga.vram[3 * 641] == 0x77
    assert call(m, bios, 0x10, eax=0x4F03).result["ebx"] & 0xFFFF == 0x4112
    ev = call(m, bios, 0x10, eax=0x4F04, edx=0x0000, ecx=0x000F)
    assert ev.result["eax"] & 0xFFFF == 0x004F and ev.result["ebx"] & 0xFFFF >= 1
    call(m, bios, 0x10, eax=0x0003)
    assert not m.vga.vbe_enabled


def run_pmi(m, table: bytes, entry: int, **regs):
    """Copy the VBE protected-mode table to 0x20000 and near-call one of its functions from
    flat 32-bit code, as an OS driver does; return when it RETs to a HLT."""
    from aero.cpu.presets import FLAT_CODE, FLAT_DATA
    cpu = m.cpu
    m.bus.ram[0x20000: 0x20000 + len(table)] = table
    m.bus.ram[0x1F000] = 0xF4                                   # the return address: hlt
    cpu.cr0 |= 1
    for s in range(6):
        cpu.set_seg_cache(s, 0x08 if s == 1 else 0x10, 0, 0xFFFFFFFF,
                          FLAT_CODE if s == 1 else FLAT_DATA)
    cpu.mode_changed()
    cpu.flags &= ~0x200
    cpu.R[4] = 0x1E000
    cpu.push32(0x1F000)
    for name, value in regs.items():
        cpu.R[("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi").index(name)] = value
    cpu.eip = 0x20000 + entry
    cpu.halted = False
    assert cpu.run(100000) == "halt" and cpu.eip == 0x1F001


def test_vbe_protected_mode_interface(tmp_path):
    m, bios, out = booted(tmp_path)
    ev = call(m, bios, 0x10, eax=0x4F0A, ebx=0)
    r = ev.result
    assert r["eax"] & 0xFFFF == 0x004F
    length = r["ecx"] & 0xFFFF
    table = m.bus.read_bytes(r["es"] * 16 + (r["edi"] & 0xFFFF), length)
    win, start, pal, ports = struct.unpack_from("<4H", table)
    assert 8 <= min(win, start, pal, ports) and max(win, start, pal) < length
    port_list = struct.unpack_from("<6H", table, ports)
    assert port_list == (0x1CE, 0x1CF, 0x3C8, 0x3C9, 0xFFFF, 0xFFFF)
    call(m, bios, 0x10, eax=0x4F02, ebx=0x4000 | 0x112)            # 640x480x24
    run_pmi(m, table, win, ebx=0, edx=3)                          # function 05h: bank 3
    assert m.vga.dispi_read(5) == 3
    # function 07h: the start address in dwords of pixel (12, 20): (20 * 640 * 3 + 36) / 4
    addr = (20 * 640 * 3 + 12 * 3) // 4
    run_pmi(m, table, start, ebx=0, ecx=addr & 0xFFFF, edx=addr >> 16)
    assert (m.vga.dispi_read(8), m.vga.dispi_read(9)) == (12, 20)
    # function 09h: two palette entries from DS:EDI, (blue, green, red, 0) each
    m.bus.ram[0x30000:0x30008] = bytes((1, 2, 3, 0, 4, 5, 6, 0))
    run_pmi(m, table, pal, ebx=0, ecx=2, edx=0x10, edi=0x30000)
    assert m.vga.DAC[0x10 * 3: 0x12 * 3] == bytes((3, 2, 1, 6, 5, 4))


def test_int16_check_and_store(tmp_path):
    m, bios, out = booted(tmp_path)
    ev = call(m, bios, 0x16, eax=0x0100)
    assert returned_zf(m)                                   # empty buffer: ZF=1
    ev = call(m, bios, 0x16, eax=0x0500, ecx=0x2C7A)        # store 'z'
    assert ev.result["eax"] & 0xFF == 0
    ev = call(m, bios, 0x16, eax=0x0100)
    assert ev.result["eax"] & 0xFFFF == 0x2C7A and not returned_zf(m)
    ev = call(m, bios, 0x16, eax=0x0000)
    assert ev.result["eax"] & 0xFFFF == 0x2C7A and ev.waited < 100


def type_keys(m, *seq):
    t = m.clock.now() + 1000
    for name, down in seq:
        m.inputs.post(t, KeyInput(name, down))
        t += IPS // 100
    idle(m, len(seq) / 100 + 0.05)


def press(name):
    return [(name, True), (name, False)]


def test_int09_translation_and_shift_states(tmp_path):
    m, bios, out = booted(tmp_path)
    keys = []

    def drain_keys():
        while True:
            call(m, bios, 0x16, eax=0x1100)
            if returned_zf(m):
                return
            keys.append(call(m, bios, 0x16, eax=0x1000).result["eax"] & 0xFFFF)
    type_keys(m, ("LeftCtrl", True), *press("c"), ("LeftCtrl", False))
    type_keys(m, *press("CapsLock"), *press("q"), ("LeftShift", True), *press("q"),
              ("LeftShift", False), *press("CapsLock"))
    type_keys(m, ("LeftAlt", True), *press("x"), ("LeftAlt", False))
    type_keys(m, *press("F1"), *press("Enter"), *press("Backspace"), *press("Escape"))
    type_keys(m, *press("NumLock"), *press("KP7"), *press("NumLock"), *press("KP7"))
    drain_keys()
    assert keys == [0x2E03, 0x1051, 0x1071, 0x2D00, 0x3B00, 0x1C0D, 0x0E08, 0x011B,
                    0x4737, 0x4700]
    assert m.bus.read8(0x417) == 0x00 and m.bus.read8(0x418) == 0x00
    type_keys(m, ("RightShift", True))
    assert call(m, bios, 0x16, eax=0x0200).result["eax"] & 0xFF == 0x01
    type_keys(m, ("RightShift", False), *press("ScrollLock"))
    assert call(m, bios, 0x16, eax=0x0200).result["eax"] & 0xFF == 0x10


def test_int14_receive_and_status(tmp_path):
    m, bios, out = booted(tmp_path)
    ev = call(m, bios, 0x14, eax=0x00E3, edx=0)             # 9600 8N1
    assert ev.cf == 0 and (ev.result["eax"] >> 8) & 0x60 == 0x60   # THRE, TEMT
    assert m.uarts[0].divisor == 12 and m.uarts[0].lcr == 0x03
    m.inputs.post(m.clock.now() + IPS // 100, SerialInput(b"Z"))
    ev = call(m, bios, 0x14, eax=0x0200, edx=0)
    assert ev.result["eax"] & 0xFF == ord("Z") and ev.waited >= IPS // 100 - 100
    ev = call(m, bios, 0x14, eax=0x0100 | ord("k"), edx=0)
    assert ev.cf == 0
    drain(m)
    assert bytes(out) == b"k"
    ev = call(m, bios, 0x14, eax=0x0300, edx=5)             # no such port
    assert ev.cf == 1


def test_vbe_state_save_restore(tmp_path):
    m, bios, out = booted(tmp_path)
    call(m, bios, 0x10, eax=0x4F02, ebx=0x4000 | 0x101)
    ev = call(m, bios, 0x10, eax=0x4F04, edx=0x0001, ecx=0x000F, ebx=0x3000)
    assert ev.result["eax"] & 0xFFFF == 0x004F
    call(m, bios, 0x10, eax=0x0003)
    assert not m.vga.vbe_enabled
    ev = call(m, bios, 0x10, eax=0x4F04, edx=0x0002, ecx=0x000F, ebx=0x3000)
    assert m.vga.vbe_enabled and m.vga.dispi_read(1) == 640 and m.vga.dispi_read(3) == 8
    assert call(m, bios, 0x10, eax=0x4F03).result["ebx"] & 0xFFFF == 0x4101


def test_int10_palette_and_font(tmp_path):
    m, bios, out = booted(tmp_path)
    call(m, bios, 0x10, eax=0x1010, ebx=0x0005, edx=0x1100, ecx=0x2233)
    ev = call(m, bios, 0x10, eax=0x1015, ebx=0x0005)
    assert (ev.result["edx"] >> 8 & 0xFF, ev.result["ecx"] & 0xFFFF) == (0x11, 0x2233)
    call(m, bios, 0x10, eax=0x1000, ebx=0x2A03)             # palette register 3 := 2Ah
    assert call(m, bios, 0x10, eax=0x1007, ebx=0x0003).result["ebx"] >> 8 & 0xFF == 0x2A
    assert m.vga.AR[3] == 0x2A
    # load a user glyph for 'A' into plane 2
    m.bus.write_bytes(0x900, bytes(range(1, 17)))
    call(m, bios, 0x10, eax=0x1100, ebx=0x1000, ecx=1, edx=0x41, ebp=0x900)
    assert m.vga.plane(2)[0x41 * 32: 0x41 * 32 + 17] == bytes(range(1, 17)) + b"\0"
    ev = call(m, bios, 0x10, eax=0x1A00)
    assert ev.result["eax"] & 0xFF == 0x1A and ev.result["ebx"] & 0xFF == 0x08
    ev = call(m, bios, 0x10, eax=0x1200, ebx=0x0010)
    assert ev.result["ebx"] & 0xFFFF == 0x0003


def test_int15_4f_intercept_can_swallow_keys(tmp_path):
    """A guest INT 15h handler that clears CF for AH=4Fh consumes the scancode."""
    m, bios, out = booted(tmp_path)
    old = m.bus.read32(0x15 * 4)
    # handler at 0:0700: cmp ah,4Fh; jne old; clc; retf 2   (then chain to the BIOS otherwise)
    code = bytes([0x80, 0xFC, 0x4F, 0x75, 0x04, 0xF8, 0xCA, 0x02, 0x00,
                  0xEA]) + struct.pack("<I", old)
    m.bus.write_bytes(0x700, code)
    m.bus.write32(0x15 * 4, 0x00000700)
    type_keys(m, *press("x"))
    call(m, bios, 0x16, eax=0x0100)
    assert returned_zf(m)
    m.bus.write32(0x15 * 4, old)
    type_keys(m, *press("x"))
    assert call(m, bios, 0x16, eax=0x0000).result["eax"] & 0xFFFF == 0x2D78


def test_ctrl_alt_del_resets(tmp_path):
    m, bios, out = booted(tmp_path)
    resets = m.resets
    posts = bios.log.count("Aero BIOS: POST")
    t = m.clock.now() + 1000
    for i, name in enumerate(("LeftCtrl", "LeftAlt", "Delete")):
        m.inputs.post(t + i * IPS // 100, KeyInput(name, True))
    from aero.cpu.state import set_reg
    m.bus.write_bytes(0x680, bytes([0xFB, 0xF4, 0xEB, 0xFC]))
    set_reg(m.cpu, "eip", 0x680)
    m.cpu.halted = False
    r = m.run(max_instructions=m.cpu.icount + 10_000_000)
    # the machine reset, POSTed again and booted the floppy, whose sector halts
    assert r.status == "halted"
    assert m.resets == resets + 1 and bios.log.count("Aero BIOS: POST") == posts + 1


def test_int19_boots_again(tmp_path):
    m, bios, out = machine(fda=floppy(tmp_path, guest("hello_floppy.bin")), boot="a")
    assert m.run(max_instructions=2_000_000).exit_code == 3
    call_boot = bytes([0xCD, 0x19])
    m.bus.write_bytes(0x600, call_boot)
    from aero.cpu.state import set_reg
    set_reg(m.cpu, "eip", 0x600)
    set_reg(m.cpu, "cs", 0)
    m.cpu.halted = False
    m.exit_status = None
    assert m.run(max_instructions=m.cpu.icount + 2_000_000).exit_code == 3
    drain(m)
    assert bytes(out) == HELLO_SERIAL * 2


def test_eltorito_hard_disk_emulation(tmp_path):
    hd = bytearray(1 << 20)
    hd[:2048] = guest("hd_mbr.bin")
    iso_path = make_iso(tmp_path, b"", b"", media=4, load_count=1)
    iso = bytearray(open(iso_path, "rb").read())
    iso[20 * 2048:] = hd
    with open(iso_path, "wb") as f:
        f.write(bytes(iso))
    m, bios, out = machine(cdrom=iso_path, boot="d")
    r = m.run(max_instructions=2_000_000)
    assert r.exit_code == 3
    drain(m)
    assert bytes(out) == HD_SERIAL
    d = bios.drives[0x80]
    assert (d.heads, d.spt) == (16, 63)
    # 4B01h: the specification packet
    ev = call(m, bios, 0x13, eax=0x4B01, edx=0x80, esi=0x500)
    pkt = m.bus.read_bytes(0x500, 0x13)
    assert ev.cf == 0 and pkt[0] == 0x13 and pkt[1] == 4 and pkt[2] == 0x80
    assert struct.unpack_from("<I", pkt, 4)[0] == 20


def test_post_programs_pci_resources(tmp_path):
    m, bios, out = booted(tmp_path)
    if not hasattr(m, "pci"):
        pytest.skip("no PCI host bridge on this machine")
    assert m.vga.lfb_base == 0xE0000000
    assert bios.pci_read(2, 0, 0x10, 4) & ~0xF == 0xE0000000
    assert bios.pci_read(1, 3, 0x40, 4) & 0xFFC0 == 0x600
    assert bios.pci_read(1, 3, 0x80, 1) & 1
    # the PM timer answers at PMBA + 8 (what the FADT says)
    t0 = m.io.read(0x608, 4)
    idle(m, 0.01)
    assert m.io.read(0x608, 4) != t0
    # the PIC pair was initialised: vectors 08h/70h, IRQ 0, 1, 2 unmasked
    assert m.io.read(0x21, 1) & 0x07 == 0


def test_boot_is_deterministic(tmp_path):
    hashes = []
    for _ in range(2):
        m, bios, w, ram = run_services(tmp_path)
        hashes.append((m.state_hash(), m.clock.now(), len(bios.history)))
    assert hashes[0] == hashes[1]


def test_state_roundtrip(tmp_path):
    m, bios, out = booted(tmp_path)
    st = bios.get_state()
    bios.set_state(st)
    assert bios.get_state() == st
    assert bios.summary()["service port"] == "0xeb"


# ---------------------------------------------------------------------------------------------
# The same images under QEMU's SeaBIOS
# ---------------------------------------------------------------------------------------------
@needs_qemu
def test_qemu_floppy_same_serial(tmp_path):
    path = floppy(tmp_path, guest("hello_floppy.bin"))
    assert qemu_serial(["-drive", f"file={path},format=raw,if=floppy"]) == HELLO_SERIAL


@needs_qemu
def test_qemu_hard_disk_same_serial(tmp_path):
    path = hard_disk(tmp_path, guest("hd_mbr.bin"))
    assert qemu_serial(["-drive", f"file={path},format=raw,if=ide"]) == HD_SERIAL


@needs_qemu
def test_qemu_cd_same_serial(tmp_path):
    iso = make_iso(tmp_path, guest("cd_boot.bin"), CD_TEXT + b"\0")
    assert qemu_serial(["-cdrom", iso, "-boot", "d"]) == CD_SERIAL
