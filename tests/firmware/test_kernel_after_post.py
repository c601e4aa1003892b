"""``--kernel`` boots after the BIOS's POST, as QEMU's ``-kernel`` does (issue 10, item 4).

QEMU loads a multiboot kernel with an option ROM (multiboot.bin) that SeaBIOS runs as its first
boot entry, after POST: the kernel finds the IVT and BDA, the 8259As programmed for vectors 08h
and 70h, the PIT at 18.2 Hz.  Aero's loader is the Aero BIOS's first boot entry
(``AeroBIOS.boot_first``, aero/firmware/multiboot.py ``load_after_post`` and ``boot_code``).

The guest is tests/firmware/guests/mb_low.asm: a multiboot kernel linked at 0x8000 (its module
list and command-line page is then at 0x9000, where QEMU keeps its MBI) that enables timer
interrupts in protected mode through its own IDT, goes back to real mode, enables them there
and calls INT 12h.  Its transcript under qemu-system-i386 7.2 + SeaBIOS is committed
(``mb_low.qemu.log``, recorded as in guests/README.md with ``-append "console=e9 low=1"``).
Aero prints the same but for the ``mbi`` line: QEMU copies the kernel's command-line page over
its own MBI at 0x9500 (the kernel sees flags 0), Aero moves its loader page out of the kernel's
way (to 0x9E000) and the kernel gets a valid MBI.

Under ``--bios seabios`` Aero does what QEMU does: SeaBIOS runs an option ROM from fw_cfg
(firmware/multiboot-rom/mbrom.asm, Aero's own) as its first boot entry; the ROM copies the
loader's plan into RAM with fw_cfg DMA, asks SeaBIOS for the memory map (E820) and INT 12h, and
enters the same entry code.  The kernels print the same as under the Aero BIOS, and the
multiboot test kernels print QEMU's transcript but for the documented differences.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from aero.build import build_machine
from aero.config import FIRMWARE, ConfigError, MachineConfig
from aero.cpu.cpu import REG32
from aero.firmware import multiboot as mb

GUESTS = Path(__file__).parent / "guests"
SCENARIO_KERNEL = Path(__file__).parents[2] / "scenarios" / "multiboot" / "kernel.bin"
NASM = shutil.which("nasm")
QEMU = shutil.which("qemu-system-i386")
CMDLINE = "console=e9 low=1"
PIT_HZ = 1193182 / 65536
SEABIOS = FIRMWARE["seabios"][0]
needs_seabios = pytest.mark.skipif(not Path(SEABIOS).exists(), reason="seabios not installed")


def run_low(jit="on", bios="aero", kernel="mb_low.bin", cmdline=CMDLINE, **kw):
    out = bytearray()
    m = build_machine(MachineConfig(bios=bios, kernel=kernel, cmdline=cmdline,
                                    debugcon=out.append, jit=jit, **kw))
    r = m.run(max_instructions=2_000_000 if bios != "seabios" else 300_000_000)
    return m, r, out.decode("latin-1")


@pytest.fixture
def low(tmp_path, monkeypatch):
    """mb_low.bin under the same relative name QEMU's run used (it is in the command line)."""
    shutil.copy(GUESTS / "mb_low.bin", tmp_path / "mb_low.bin")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def qemu_log() -> str:
    return (GUESTS / "mb_low.qemu.log").read_text("latin-1")


# ---------------------------------------------------------------------------------------------
# The guest
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(NASM is None, reason="nasm not installed")
def test_rebuild_identical(tmp_path):
    out = tmp_path / "mb_low.bin"
    subprocess.run([NASM, "-f", "bin", "-o", str(out), str(GUESTS / "mb_low.asm")], check=True)
    assert out.read_bytes() == (GUESTS / "mb_low.bin").read_bytes(), \
        "tests/firmware/guests/mb_low.bin is stale: rebuild it"


@pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
def test_qemu_transcript_is_current(low):
    log = low / "debugcon.log"
    p = subprocess.run(
        [QEMU, "-kernel", "mb_low.bin", "-append", CMDLINE, "-display", "none", "-nodefaults",
         "-m", "32", "-debugcon", f"file:{log}", "-device",
         "isa-debug-exit,iobase=0x501,iosize=2", "-no-reboot"],
        cwd=low, timeout=60, capture_output=True)
    assert p.returncode == 33, p.stderr
    assert log.read_text("latin-1") == qemu_log()


# ---------------------------------------------------------------------------------------------
# After POST: what the kernel finds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jit", ["off", "on"])
def test_low_kernel_finds_the_bios_state(low, jit):
    m, r, out = run_low(jit)
    assert (r.status, r.exit_code) == ("debug-exit", 33), out
    ref = qemu_log()
    # identical to QEMU's transcript but for the MBI line (see the module docstring)
    assert "mbi flags 00000000\n" in ref
    assert out == ref.replace("mbi flags 00000000\n",
                              f"mbi flags 0000024D mem_lower 639 cmdline [{CMDLINE}]\n")
    # the timer really ran at 18.2 Hz: 3 ticks in protected mode, then 3 BDA ticks in real
    # mode (the first of each wait may come at once): between 5 and 7 periods of virtual time
    seconds = m.clock.ns() / 1e9
    assert 4.5 / PIT_HZ < seconds <= 7 / PIT_HZ, seconds
    m.close()


def test_without_firmware_irq0_arrives_at_vector_0(low):
    """What --kernel did before: no POST, the PIC not programmed (IRQ 0 does not arrive at
    vector 08h: at vector 0 with a PIC that powers up with ICW2 = 0), an empty IVT.  Still
    available with bios=None, for loader tests."""
    m, r, out = run_low(bios=None)
    assert "ivt 08 segment 0000\n" in out
    assert "pm irq0 via vector 08" not in out and r.exit_code != 33
    m.close()


def test_entry_state_follows_the_spec_after_post():
    """Stepping from the reset vector: POST, the BIOS's jump to the loader's entry code, then
    the kernel's entry in exactly the plan's state (spec 3.2), with POST's work in place."""
    m = build_machine(MachineConfig(kernel=str(SCENARIO_KERNEL), cmdline="a b", jit="off"))
    bios = m.aero_bios
    plan = mb.load(str(SCENARIO_KERNEL), m.bus.ram_size, "a b", [],
                   memory_map=bios.memory_map())
    cpu = m.cpu
    assert cpu.cr0 & 1 == 0 and cpu.base[1] == 0xFFFF0000       # the reset vector
    for _ in range(500):
        m.run(max_instructions=cpu.icount + 1)
        if cpu.eip == plan.entry and cpu.cr0 & 1:
            break
    else:
        raise AssertionError("the kernel's entry was not reached")
    st = plan.state
    assert [cpu.R[i] for i in range(8)] == [st[r] for r in REG32]
    assert cpu.R[0] == mb.BOOTLOADER_MAGIC and cpu.R[3] == plan.mbi_addr == mb.MBI_ADDR
    assert cpu.get_flags() == 0x2                              # IF = DF = VM = 0
    assert cpu.cr0 == 0x11                                     # PE, ET; PG = 0
    assert cpu.gdtr == [mb.GDT_ADDR, 39]
    for i, s in enumerate(mb.SEG_ORDER):
        assert (cpu.sel[i], cpu.base[i], cpu.limit[i], cpu.attr[i]) == st["segs"][s], s
    assert m.bus.a20
    # POST's work: the timer vector points into the BIOS, the BDA says 639 KiB
    ivt8 = struct.unpack("<HH", m.bus.read_bytes(0x20, 4))
    assert ivt8[1] == 0xF000 and ivt8[0] == bios.stub(0x08)
    assert struct.unpack("<H", m.bus.read_bytes(0x413, 2))[0] == 639
    # the kernel's image and the MBI are in RAM
    low = plan.kernel_range[0]
    assert m.bus.read_bytes(low, 16) == SCENARIO_KERNEL.read_bytes()[:16]
    assert struct.unpack("<I", m.bus.read_bytes(plan.mbi_addr, 4))[0] == plan.mbi_flags
    m.close()


def test_mbi_uses_the_bios_memory_map():
    m = build_machine(MachineConfig(kernel=str(SCENARIO_KERNEL), jit="off"))
    m.run(max_instructions=200)
    flags, lower, upper = struct.unpack("<III", m.bus.read_bytes(mb.MBI_ADDR, 12))
    mmap_len, mmap_addr = struct.unpack("<II", m.bus.read_bytes(mb.MBI_ADDR + 44, 8))
    emap = m.aero_bios.memory_map()
    assert (mmap_len, mmap_addr) == (24 * len(emap), mb.MMAP_ADDR)
    got = [struct.unpack_from("<IQQI", m.bus.read_bytes(mmap_addr + 24 * i, 24))
           for i in range(len(emap))]
    assert [(b, n, t) for _s, b, n, t in got] == emap
    assert lower == 639 and upper == mb.mem_upper_kib(emap)
    assert upper < (m.bus.ram_size - (1 << 20)) >> 10          # the ACPI/SMBIOS tables
    m.close()


def test_scenario_kernel_output_and_reset_boots_it_again():
    """A reset runs POST again and the kernel is loaded again (QEMU re-runs its option ROM)."""
    out = bytearray()
    m = build_machine(MachineConfig(kernel=str(SCENARIO_KERNEL), cmdline="console=ttyS0",
                                    serial=out.append))
    r = m.run(max_instructions=2_000_000)
    assert (r.status, r.exit_code) == ("debug-exit", 33)
    first = bytes(out)
    assert b"magic 2BADB002 ok" in first and b"cmdline [console=ttyS0]" in first
    m.bus.write_bytes(0x100000, bytes(64))                     # the kernel's code is gone
    m.reset()
    m.exit_status = None
    r = m.run(max_instructions=2_000_000)
    assert r.exit_code == 33 and bytes(out) == first * 2
    m.close()


@pytest.mark.parametrize("cut", [5, 30, 40, 1500])
def test_state_saved_around_the_boot_restores_exactly(low, cut):
    """The loader keeps no state of its own: a state saved during POST, in the entry code or
    in the kernel, restored into a machine built from the same configuration, ends the same."""
    def make(out):
        return build_machine(MachineConfig(kernel="mb_low.bin", cmdline=CMDLINE,
                                           debugcon=out.append))
    whole = bytearray()
    m = make(whole)
    m.run(max_instructions=2_000_000)
    end = (m.cpu.icount, m.state_hash())
    before, after = bytearray(), bytearray()
    m1 = make(before)
    m1.run(max_instructions=cut)
    m2 = make(after)
    m2.set_state(m1.get_state())
    r = m2.run(max_instructions=2_000_000)
    assert r.exit_code == 33 and (m2.cpu.icount, m2.state_hash()) == end
    assert before + after == whole
    for x in (m, m1, m2):
        x.close()


# ---------------------------------------------------------------------------------------------
# The loader's page
# ---------------------------------------------------------------------------------------------
def _overlaps(a, n, lo, hi):
    return a < hi and a + n > lo


@pytest.mark.parametrize("load_addr, size", [
    (0x8000, 0x800),            # mb_low: its module list / command-line page is 0x9000
    (0x9000, 0x100),            # right on QEMU's page
    (0x2000, 0x7800),           # up to 0x97FF
])
def test_low_kernels_move_the_loader_page(load_addr, size):
    body = b"\xF4" * (size - 48)
    img = (struct.pack("<III", mb.HEADER_MAGIC, 0x10003, -(mb.HEADER_MAGIC + 0x10003) & 0xFFFFFFFF)
           + struct.pack("<5I", load_addr, load_addr, load_addr + size, 0, load_addr + 32)
           + bytes(16) + body)
    mods = [("m", None, b"M" * 5000)]
    plan = mb.load_image(img, "k", 32 << 20, "x", mods)
    base = plan.loader_base
    assert base == 0x9E000                          # the top free page below the EBDA
    assert plan.mbi_addr == base + 0x500 and plan.state["ebx"] == plan.mbi_addr
    assert plan.state["gdtr"] == (base + 0x600, 39) and plan.state["esp"] == base
    assert struct.unpack_from("<I", [d for a, d in plan.writes if a == plan.mbi_addr][0],
                              48)[0] == base       # mmap_addr
    kernel_and_mods = (load_addr, plan.modules[-1].end)
    for a, d in plan.writes:
        if a >= base:
            assert a + len(d) <= base + 0x1000
            assert not _overlaps(a, len(d), *kernel_and_mods)
    addr, code = mb.boot_code(plan)
    assert base <= addr and addr + len(code) <= base + mb.FLAGS_STACK_OFF - 4
    assert plan.state["eip"] == load_addr + 32


def test_low_kernel_plan_in_a_machine(low):
    m, r, out = run_low(jit="off")
    plan = mb.load("mb_low.bin", m.bus.ram_size, CMDLINE, [],
                   memory_map=m.aero_bios.memory_map())
    assert plan.kernel_range == (0x8000, 0x8BA8) and plan.loader_base == 0x9E000
    assert struct.unpack("<I", m.bus.read_bytes(0x9E500, 4))[0] == 0x24D
    m.close()


def test_no_free_page_is_a_clear_error():
    size = 0x9E000 - 0x1000                 # + its command-line page: RAM up to 0x9F000
    img = (struct.pack("<III", mb.HEADER_MAGIC, 0x10003, -(mb.HEADER_MAGIC + 0x10003) & 0xFFFFFFFF)
           + struct.pack("<5I", 0x1000, 0x1000, 0x1000 + 64, 0x1000 + size, 0x1000 + 32)
           + bytes(32))
    with pytest.raises(ValueError, match="no free 4 KiB page .* for the loader's data"):
        mb.load_image(img, "k", 32 << 20)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bios", ["bochs", "some.rom"])
def test_kernel_needs_the_aero_bios_or_seabios(bios):
    with pytest.raises(ConfigError, match=f"--kernel boots after the POST of the Aero BIOS or "
                                          f"SeaBIOS; it cannot be used with --bios {bios}"):
        MachineConfig(kernel="k.bin", bios=bios)
    MachineConfig(kernel="k.bin")                  # the default: the Aero BIOS
    MachineConfig(kernel="k.bin", bios="seabios")  # SeaBIOS runs the option ROM
    MachineConfig(kernel="k.bin", bios=None)       # no firmware: started at once


def test_bad_kernel_is_reported_before_anything_runs(tmp_path):
    k = tmp_path / "k.bin"
    k.write_bytes(b"not a kernel" * 10)
    with pytest.raises(ConfigError, match="no multiboot header"):
        build_machine(MachineConfig(kernel=str(k)))


# ---------------------------------------------------------------------------------------------
# SeaBIOS: the option ROM
# ---------------------------------------------------------------------------------------------
ROM_DIR = Path(mb.OPTION_ROM_PATH).parent


@pytest.mark.skipif(NASM is None, reason="nasm not installed")
def test_option_rom_rebuilds_identically(tmp_path):
    out = tmp_path / "mbrom.bin"
    subprocess.run([NASM, "-f", "bin", "-o", str(out), str(ROM_DIR / "mbrom.asm")], check=True)
    assert out.read_bytes() == (ROM_DIR / "mbrom.bin").read_bytes(), \
        "firmware/multiboot-rom/mbrom.bin is stale: rebuild it"


def test_option_rom_header_and_checksum():
    rom = mb.option_rom()
    assert rom[:2] == b"\x55\xAA" and rom[2] * 512 == len(rom)
    assert sum(rom) & 0xFF == 0
    pnp = struct.unpack_from("<H", rom, 0x1A)[0]
    assert rom[pnp:pnp + 4] == b"$PnP"
    bev = struct.unpack_from("<H", rom, pnp + 0x1A)[0]
    name = struct.unpack_from("<H", rom, pnp + 0x10)[0]
    assert 0 < bev < len(rom) and rom[name:rom.index(b"\0", name)] == b"Aero multiboot loader"


def test_rom_blob_layout(low):
    plan = mb.load("mb_low.bin", 32 << 20, CMDLINE)
    blob = mb.rom_blob(plan)
    ip, cs, mbi, mmap, count = struct.unpack_from("<HHIII", blob)
    assert (cs << 4) + ip == plan.loader_base + mb.BOOT_CODE_OFF
    assert (mbi, mmap) == (plan.mbi_addr, plan.loader_base)
    pos, parts = 16, []
    for _ in range(count):
        a, n = struct.unpack_from("<II", blob, pos)
        parts.append((a, blob[pos + 8: pos + 8 + n]))
        pos += 8 + n
    assert pos == len(blob)
    assert parts == list(plan.writes) + [mb.boot_code(plan)]


@needs_seabios
def test_low_kernel_under_seabios(low):
    m, r, out = run_low(bios="seabios")
    assert (r.status, r.exit_code) == ("debug-exit", 33), out
    assert out == qemu_log().replace("mbi flags 00000000\n",
                                     f"mbi flags 0000024D mem_lower 639 cmdline [{CMDLINE}]\n")
    m.close()


@needs_seabios
def test_multiboot_kernel_under_seabios_vs_qemu(tmp_path, monkeypatch):
    """tests/firmware/guests/mb_elf with two modules: QEMU's transcript but for the loader's
    name, the boot device (QEMU always sets one), and what depends on the top of RAM that
    SeaBIOS reserves on each machine (mem_upper, the map's last RAM and reserved entries)."""
    shutil.copy(GUESTS / "mb_elf.bin", tmp_path / "mb_elf.bin")
    (tmp_path / "m1.txt").write_bytes(b"hello module one\n")
    (tmp_path / "m2.bin").write_bytes(bytes(range(256)) * 20)
    monkeypatch.chdir(tmp_path)
    m, r, out = run_low(bios="seabios", kernel="mb_elf.bin", cmdline="console=e9 foo=bar",
                        module=["m1.txt,arg1 arg2", "m2.bin"])
    assert r.exit_code == 1, out
    ref = (GUESTS / "mb_elf.qemu.log").read_text("latin-1")
    got = out[out.index("MB begin"):].splitlines()
    want = [ln for ln in ref.splitlines() if not ln.startswith("boot_device")]
    assert len(got) == len(want)
    differ = []
    for g, w in zip(got, want):
        if g != w:
            differ.append(w.split(" ")[0] + (" " + w.split(" ")[4] if w.startswith("mmap")
                                              else ""))
    assert differ == ["flags", "mem_upper", "loader", "mmap 0000000000100000",
                      "mmap 0000000001FE0000"], differ
    assert "flags 0000024D" in got and 'loader "Aero"' in got
    emap = [ln for ln in got if ln.startswith("mmap size")]
    assert len(emap) == 6                           # SeaBIOS's E820 map, as under QEMU
    m.close()
