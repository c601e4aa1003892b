"""The multiboot (v1) loader, aero/firmware/multiboot.py.

The external reference is QEMU's ``-kernel`` (hw/i386/multiboot.c + its multiboot option ROM,
after SeaBIOS): the two test kernels in tests/firmware/guests/ print what they were handed (EAX,
the information structure, modules, memory map, segment state, the GDT) on port 0xE9.  Their
transcripts under qemu-system-i386 7.2 are committed (``*.qemu.log``) so the comparison runs
without QEMU; with QEMU installed a test checks the transcripts are still what QEMU prints.

Aero given QEMU's memory map (the E820 map SeaBIOS reports, read back from the transcript) and
QEMU's boot device prints exactly QEMU's transcript except one line: the boot loader name
("Aero" instead of "qemu").  With Aero's defaults the differences are, by rule:

* ``flags``: QEMU 0x24F, Aero 0x24D: QEMU always sets MBI bit 1 (boot_device 0x8000FFFF, a
  placeholder: "XXX: use the -boot switch?"), Aero only when given a boot device; so the
  ``boot_device`` line is absent too.
* ``mem_upper``: QEMU 31616 KiB (SeaBIOS keeps the top 128 KiB of the 32 MiB for itself),
  Aero 31744 KiB (no BIOS: all RAM from 1 MiB up is free); both follow the same rule,
  contiguous free RAM from 1 MiB in the map, which the test recomputes from the printed map.
* ``mmap``: SeaBIOS's six entries vs Aero's four (no BIOS reservation at the top of RAM, no
  BIOS ROM at 4 GiB - 256 KiB); both have the same first three (conventional memory, EBDA, the
  F0000 BIOS area).
* Module addresses and lengths, the information structure's address (0x9500), the command
  lines, module contents, segment selectors, CR0, EFLAGS.IF/DF/VM and the GDT descriptors are
  identical.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from aero.firmware import multiboot as mb
from aero.config import MachineConfig
from aero.machine import Machine

GUESTS = Path(__file__).parent / "guests"
KERNELS = ("mb_elf", "mb_aout")
NASM = shutil.which("nasm")
QEMU = shutil.which("qemu-system-i386")
RAM = 32 << 20

CMDLINE = "console=e9 foo=bar"
MOD1 = b"hello module one\n"
MOD2 = bytes(range(256)) * 20
MODULES = ["m1.txt,arg1 arg2", "m2.bin"]          # Aero's --module FILE[,ARGS]
QEMU_INITRD = "m1.txt arg1 arg2,m2.bin"           # QEMU's -initrd equivalent


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory holding the kernels and modules under the names both runs use."""
    for k in KERNELS:
        shutil.copy(GUESTS / f"{k}.bin", tmp_path / f"{k}.bin")
    (tmp_path / "m1.txt").write_bytes(MOD1)
    (tmp_path / "m2.bin").write_bytes(MOD2)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_aero(kernel: str, memory_map=None, boot_device=None, prefill=None,
             cmdline=CMDLINE, modules=MODULES):
    out = bytearray()
    m = Machine(MachineConfig(bios=None, memory=RAM >> 20, debugcon=out.append))
    if prefill is not None:
        m.bus.ram[:] = bytes([prefill]) * len(m.bus.ram)
    plan = mb.load(kernel, RAM, cmdline, modules, memory_map, boot_device)
    mb.apply(m.cpu, m.bus, plan)
    r = m.run(max_instructions=3_000_000)
    return out.decode("latin-1"), r, plan


def golden(kernel: str) -> str:
    return (GUESTS / f"{kernel}.qemu.log").read_text("latin-1")


def parse_mmap(text: str) -> list:
    return [(int(b, 16), int(n, 16), int(t)) for b, n, t in
            re.findall(r"^mmap size 20 base ([0-9A-F]{16}) length ([0-9A-F]{16}) type (\d+)$",
                       text, re.M)]


def field(text: str, name: str) -> str:
    m = re.search(rf"^{name} (.*)$", text, re.M)
    assert m, f"no {name!r} line in:\n{text}"
    return m.group(1)


def header(flags: int, extra: bytes = b"") -> bytes:
    return struct.pack("<III", mb.HEADER_MAGIC, flags, -(mb.HEADER_MAGIC + flags) & 0xFFFFFFFF) \
        + extra


def elf32(segs, entry, hflags=3, cls=1, machine=3, etype=2, phentsize=32, truncate=None):
    """An ELF32 image: segs = [(paddr, vaddr, data, memsz, p_flags)]; the multiboot header
    right after the program headers; each segment's data at a 16-byte aligned offset."""
    n = len(segs)
    phoff = 52
    mbh_off = phoff + n * phentsize
    body_off = mbh_off + 12
    offs = []
    pos = body_off
    for _p, _v, d, _m, _f in segs:
        pos = (pos + 15) & ~15
        offs.append(pos)
        pos += len(d)
    ident = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)
    eh = ident + struct.pack("<HHIIIIIHHHHHH", etype, machine, 1, entry, phoff, 0, 0, 52,
                             phentsize, n, 40, 0, 0)
    img = bytearray(pos)
    img[0:52] = eh
    for i, ((paddr, vaddr, d, memsz, pf), off) in enumerate(zip(segs, offs)):
        ph = struct.pack("<8I", 1, off, vaddr, paddr, len(d), memsz, pf, 0x1000)
        img[phoff + i * phentsize: phoff + i * phentsize + 32] = ph
        img[off:off + len(d)] = d
    img[mbh_off:mbh_off + 12] = header(hflags)
    img = bytes(img)
    return img[:truncate] if truncate is not None else img


def aout(load_addr=0x100000, prefix=16, hflags=0x10003, body=b"\xF4" * 64, load_end=None,
         bss_end=None, entry=None, header_addr=None):
    """A flat a.out-kludge image: `prefix` bytes, the 32-byte header, then `body`."""
    hdr_addr = load_addr + prefix if header_addr is None else header_addr
    total = prefix + 32 + len(body)
    le = load_addr + total if load_end is None else load_end
    be = 0 if bss_end is None else bss_end
    ent = load_addr + prefix + 32 if entry is None else entry
    extra = struct.pack("<5I", hdr_addr, load_addr, le, be, ent)
    return b"\x90" * prefix + header(hflags, extra) + body


def plan_bytes(plan, addr: int, n: int) -> bytes:
    """Read n bytes at addr from the plan's writes."""
    for a, d in plan.writes:
        if a <= addr and addr + n <= a + len(d):
            return d[addr - a: addr - a + n]
    raise AssertionError(f"{addr:#x} not written")


def cstr(plan, addr: int) -> bytes:
    for a, d in plan.writes:
        if a <= addr < a + len(d):
            s = d[addr - a:]
            return s[:s.index(b"\0")]
    raise AssertionError(f"{addr:#x} not written")


# ---------------------------------------------------------------------------------------------
# The test kernels: rebuild, QEMU transcripts, Aero vs QEMU
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(NASM is None, reason="nasm not installed")
@pytest.mark.parametrize("kernel", KERNELS)
def test_rebuild_identical(kernel, tmp_path):
    out = tmp_path / f"{kernel}.bin"
    subprocess.run([NASM, "-f", "bin", "-I", f"{GUESTS}/", "-o", str(out),
                    str(GUESTS / f"{kernel}.asm")], check=True, cwd=GUESTS)
    assert out.read_bytes() == (GUESTS / f"{kernel}.bin").read_bytes(), \
        f"tests/firmware/guests/{kernel}.bin is stale: rebuild it (see README.md there)"


@pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
@pytest.mark.parametrize("kernel", KERNELS)
def test_qemu_transcript_is_current(kernel, workdir):
    log = workdir / "debugcon.log"
    p = subprocess.run(
        [QEMU, "-kernel", f"{kernel}.bin", "-append", CMDLINE, "-initrd", QEMU_INITRD,
         "-display", "none", "-nodefaults", "-m", "32", "-debugcon", f"file:{log}",
         "-device", "isa-debug-exit,iobase=0x501,iosize=2", "-no-reboot"],
        cwd=workdir, timeout=30, capture_output=True)
    assert p.returncode == 1, p.stderr
    text = log.read_text("latin-1")
    text = text[text.index("MB begin"):]
    assert text == golden(kernel)


@pytest.mark.parametrize("kernel", KERNELS)
def test_aero_equals_qemu_given_qemus_map(kernel, workdir):
    """With the same memory map and boot device as QEMU/SeaBIOS, Aero's kernel sees exactly
    what QEMU's sees, but for the boot loader's name."""
    ref = golden(kernel)
    qmap = parse_mmap(ref)
    assert len(qmap) == 6
    out, r, plan = run_aero(f"{kernel}.bin", memory_map=qmap, boot_device=0x8000FFFF)
    assert (r.status, r.exit_code) == ("debug-exit", 1)
    assert out == ref.replace('loader "qemu"', 'loader "Aero"')


@pytest.mark.parametrize("kernel", KERNELS)
def test_aero_defaults_vs_qemu_by_rule(kernel, workdir):
    ref = golden(kernel)
    out, r, plan = run_aero(f"{kernel}.bin")
    assert (r.status, r.exit_code) == ("debug-exit", 1)
    # Identical lines
    for name in ("magic", "info", "mem_lower", "cmdline", "mods", "segs", "cr0", "eflags",
                 "gdt", "bss", "MB", "mod 0", "mod 1"):
        assert field(out, name) == field(ref, name), name
    assert field(out, "magic") == "2BADB002"
    assert field(out, "cmdline") == f'"{kernel}.bin {CMDLINE}"'
    assert field(out, "segs") == "cs 0008 ds 0010 es 0010 fs 0010 gs 0010 ss 0010"
    assert field(out, "cr0") == "00000011"
    assert field(out, "eflags") == "if 0 df 0 vm 0"
    assert "reload ok" in out and field(out, "bss").startswith("zero")
    # Documented differences
    assert int(field(ref, "flags"), 16) == 0x24F
    assert int(field(out, "flags"), 16) == 0x24F & ~mb.MBI_BOOT_DEVICE
    assert "boot_device" not in out and field(ref, "boot_device") == "8000FFFF"
    assert field(out, "loader") == '"Aero"' and field(ref, "loader") == '"qemu"'
    for text in (out, ref):            # mem_upper follows one rule from the printed map
        assert int(field(text, "mem_upper")) == mb.mem_upper_kib(parse_mmap(text))
    assert int(field(out, "mem_upper")) == (RAM - (1 << 20)) >> 10
    assert int(field(ref, "mem_upper")) == (RAM - (1 << 20) - (128 << 10)) >> 10
    amap, qmap = parse_mmap(out), parse_mmap(ref)
    assert amap == mb.default_memory_map(RAM)
    assert amap[:3] == qmap[:3]
    # Modules: page aligned, above the kernel and each other, contents intact (kernel checks)
    for line in re.findall(r"^mod \d .*$", out, re.M):
        assert " aligned 1 above 1 " in line
    assert [(m.start, m.end) for m in plan.modules] == [
        tuple(int(x, 16) for x in re.search(r"start (\w+) end (\w+)", field(ref, f"mod {i}"))
              .groups()) for i in range(2)]


def _hash(data: bytes) -> int:
    h = 0
    for b in data:
        h = (h * 31 + b) & 0xFFFFFFFF
    return h


def test_kernel_report_values(workdir):
    """The kernels' report checked against independent expectations, not just QEMU."""
    out, r, plan = run_aero("mb_elf.bin")
    m0, m1 = field(out, "mod 0"), field(out, "mod 1")
    assert f'cmd "m1.txt arg1 arg2" hash {_hash(MOD1):08X} head {MOD1[:16].hex().upper()}' in m0
    assert f"size {len(MOD1)} " in m0
    assert f'cmd "m2.bin" hash {_hash(MOD2):08X} head {MOD2[:16].hex().upper()}' in m1
    assert f"size {len(MOD2)} " in m1
    assert field(out, "mem_lower") == "639"
    assert field(out, "mmap") == f"length {4 * 24} at 00009000"
    assert field(out, "gdt") == "limit 0027 08 00CF9A000000FFFF 10 00CF92000000FFFF"
    assert field(out, "bss") == "zero data 600DDA7A"


@pytest.mark.parametrize("kernel", KERNELS)
def test_bss_zeroed_over_dirty_ram(kernel, workdir):
    out, r, plan = run_aero(f"{kernel}.bin", prefill=0xFF)
    assert r.exit_code == 1
    assert field(out, "bss").startswith("zero"), out


def test_no_modules_no_cmdline(workdir):
    out, r, plan = run_aero("mb_aout.bin", cmdline="", modules=[])
    assert r.exit_code == 1
    assert field(out, "cmdline") == '"mb_aout.bin "'        # QEMU: "%s %s" of path and ""
    assert field(out, "mods") == "0"


# ---------------------------------------------------------------------------------------------
# The plan: layout and information structure
# ---------------------------------------------------------------------------------------------
def test_elf_layout_and_mbi(tmp_path):
    code = b"\xF4" * 0x20
    data = b"\x11\x22\x33\x44"
    img = elf32([(0x100000, 0xC0100000, code, 0x20, 5), (0x102000, 0x102000, data, 0x1800, 6)],
                entry=0xC0100010)
    mods = [("m/a", None, b"A" * 5000), ("b", "x=1,y", b""), ("c,d", "z", b"C" * 4096)]
    plan = mb.load_image(img, "k.elf", RAM, "quiet", mods, boot_device=0x8001FFFF)
    assert plan.kind == "elf"
    assert plan.entry == 0x100010                       # virtual entry translated
    assert plan.kernel_range == (0x100000, 0x103800)
    st = plan.state
    assert (st["eax"], st["ebx"], st["eip"]) == (0x2BADB002, 0x9500, 0x100010)
    assert st["eflags"] & 0x200 == 0 and st["cr0"] & 0x80000001 == 1
    assert st["segs"]["cs"] == (0x08, 0, 0xFFFFFFFF, 0xC09B)
    assert all(st["segs"][s] == (0x10, 0, 0xFFFFFFFF, 0xC093) for s in ("ds", "es", "ss", "fs",
                                                                         "gs"))
    # kernel bytes: code, gap zero, data, bss zero
    assert plan_bytes(plan, 0x100000, 0x20) == code
    assert plan_bytes(plan, 0x100020, 0x1FE0) == bytes(0x1FE0)
    assert plan_bytes(plan, 0x102000, 4) == data
    assert plan_bytes(plan, 0x102004, 0x17FC) == bytes(0x17FC)
    # the MBI
    mbi = plan_bytes(plan, 0x9500, 88)
    flags, lower, upper, bootdev, cmdl, count, addr = struct.unpack_from("<7I", mbi)
    assert flags == 0x24F and (lower, upper) == (639, 31744) and bootdev == 0x8001FFFF
    assert cstr(plan, cmdl) == b"k.elf quiet"
    assert cstr(plan, struct.unpack_from("<I", mbi, 64)[0]) == b"Aero"
    mmap_len, mmap_addr = struct.unpack_from("<II", mbi, 44)
    assert (mmap_len, mmap_addr) == (96, 0x9000)
    assert plan_bytes(plan, 0x9000, 24) == struct.pack("<IQQI", 20, 0, 0x9FC00, 1)
    # module list right after the page-aligned kernel (QEMU's layout)
    assert count == 3 and addr == 0x104000
    starts = []
    for i, (path, args, body) in enumerate(mods):
        s, e, c, pad = struct.unpack_from("<4I", plan_bytes(plan, addr + 16 * i, 16))
        assert s % 4096 == 0 and e - s == len(body) and pad == 0
        assert cstr(plan, c) == (path if args is None else f"{path} {args}").encode()
        assert plan_bytes(plan, s, len(body)) == body if body else True
        starts.append(s)
    assert starts == [0x105000, 0x107000, 0x107000]     # empty module takes no page
    assert [(m.start, m.end) for m in plan.modules] == [(0x105000, 0x106388),
                                                        (0x107000, 0x107000),
                                                        (0x107000, 0x108000)]
    # the GDT
    gdt = plan_bytes(plan, st["gdtr"][0], st["gdtr"][1] + 1)
    assert struct.unpack("<5Q", gdt)[1:3] == (0x00CF9B000000FFFF, 0x00CF93000000FFFF)


def test_aout_layout(tmp_path):
    body = bytes(range(100))
    img = aout(load_addr=0x200000, prefix=40, body=body, bss_end=0x200000 + 40 + 32 + 100 + 0x50)
    plan = mb.load_image(img, "k", RAM)
    assert plan.kind == "aout-kludge" and plan.header_offset == 40
    assert plan.entry == 0x200000 + 72
    assert plan.kernel_range == (0x200000, 0x200000 + 172 + 0x50)
    assert plan_bytes(plan, 0x200000, 172) == img
    assert plan_bytes(plan, 0x200000 + 172, 0x50) == bytes(0x50)


def test_aout_load_end_zero_loads_to_eof_and_header_offset():
    # header_addr - load_addr = 8 while the header sits at file offset 40: the image starts at
    # file offset 32 (bytes before it are not loaded).
    img = aout(load_addr=0x300000, prefix=40, header_addr=0x300008, load_end=0,
               entry=0x300008 + 32)
    plan = mb.load_image(img, "k", RAM)
    assert plan_bytes(plan, 0x300000, len(img) - 32) == img[32:]
    assert plan.kernel_range == (0x300000, 0x300000 + len(img) - 32)


def test_aout_kludge_wins_over_elf():
    """Flag bit 16 in an ELF file: the header's addresses are used, not the ELF's."""
    elf = elf32([(0x100000, 0x100000, b"\x90" * 64, 64, 5)], entry=0x100000, hflags=0x10003)
    # rewrite the header with the address fields (header at elf offset 84)
    off = 52 + 32
    fields = struct.pack("<5I", 0x400000 + off, 0x400000, 0x400000 + len(elf) + 20, 0,
                         0x400000 + off)
    img = elf[:off + 12] + fields + elf[off + 12:]
    plan = mb.load_image(img, "k", RAM)
    assert plan.kind == "aout-kludge" and plan.entry == 0x400000 + off
    assert plan.kernel_range[0] == 0x400000


def test_header_search():
    img = elf32([(0x100000, 0x100000, b"\x90" * 16, 16, 5)], entry=0x100000)
    assert mb.find_header(img) == (84, 3)
    # at the last possible place: within the first 8192 bytes, 4-byte aligned
    moved = bytes(8192 - 12) + header(0x3)
    assert mb.find_header(moved) == (8192 - 12, 3)
    assert mb.find_header(bytes(8192 - 8) + header(0x3)) is None      # crosses 8192
    assert mb.find_header(bytes(2) + header(0x3)) is None              # misaligned


def test_mem_upper_rule_matches_qemu_option_rom():
    # unordered, touching ranges are followed; a hole stops it; >4 GiB ignored
    m = [(0x200000, 0x100000, 1), (0x100000, 0x100000, 1), (0x400000, 0x100000, 1),
         (0, 0x9FC00, 1), (0x100000000, 0x1000000, 1)]
    assert mb.mem_upper_kib(m) == 2048
    assert mb.mem_upper_kib([(0, 0xA0000, 1)]) == 0
    assert mb.mem_lower_kib([(0, 0x9FC00, 1), (0x9FC00, 0x400, 2)]) == 639
    assert mb.mem_lower_kib([(0, 0x100000, 1)]) == 640
    assert mb.mem_lower_kib([(0x1000, 0x1000, 1)]) == 0


def test_parse_module_spec():
    assert mb.parse_module_spec("initrd.img") == ("initrd.img", None)
    assert mb.parse_module_spec("a.bin,root=/dev/x,ro") == ("a.bin", "root=/dev/x,ro")
    assert mb.parse_module_spec("a.bin,") == ("a.bin", "")


def test_video_flag_is_a_warning():
    img = elf32([(0x100000, 0x100000, b"\x90" * 16, 16, 5)], entry=0x100000, hflags=0x7)
    plan = mb.load_image(img, "k", RAM)
    assert plan.warnings and "video" in plan.warnings[0]
    assert plan.mbi_flags & (1 << 11 | 1 << 12) == 0


def test_plan_unpacks_as_writes_and_state():
    img = elf32([(0x100000, 0x100000, b"\x90" * 16, 16, 5)], entry=0x100000)
    writes, state = mb.load_image(img, "k", RAM)
    assert state["eip"] == 0x100000 and writes[0][0] == 0x100000


def test_apply_sets_machine_state():
    img = elf32([(0x100000, 0x100000, b"\xF4" * 16, 16, 5)], entry=0x100004)
    m = Machine(MachineConfig(bios=None, memory=32))
    m.bus.set_a20(False)
    plan = mb.load_image(img, "k", RAM)
    mb.apply(m.cpu, m.bus, plan)
    cpu = m.cpu
    assert cpu.R[0] == 0x2BADB002 and cpu.R[3] == 0x9500 and cpu.eip == 0x100004
    assert cpu.cr0 & 0x80000001 == 1 and cpu.cr0 & 0x60000000 == 0
    assert cpu.code32 and cpu.cpl == 0 and cpu.cr0 & 1
    assert cpu.sel[1] == 0x08 and cpu.limit[1] == 0xFFFFFFFF and cpu.base[1] == 0
    assert all(cpu.sel[s] == 0x10 and cpu.limit[s] == 0xFFFFFFFF for s in (0, 2, 3, 4, 5))
    assert cpu.gdtr == [0x9600, 39] and not cpu.flags & 0x200
    assert m.bus.a20
    assert bytes(m.bus.ram[0x100000:0x100010]) == b"\xF4" * 16
    r = m.run(max_instructions=100)
    assert r.status == "halted" and cpu.eip == 0x100005


# ---------------------------------------------------------------------------------------------
# Bad images: one clear ValueError each
# ---------------------------------------------------------------------------------------------
GOOD = [(0x100000, 0x100000, b"\x90" * 16, 16, 5)]


@pytest.mark.parametrize("img, message", [
    (b"\x7fELF" + bytes(8000), "no multiboot header"),
    (b"", "too short"),
    (struct.pack("<III", mb.HEADER_MAGIC, 3, 0x12345678), "bad checksum"),
    (header(0x3 | 1 << 3), "feature bit(s) 3"),
    (header(0x3 | 1 << 15 | 1 << 8), "bit(s) 8, 15"),
    (b"\x90" * 16 + header(0x3), "not an ELF file"),
    (elf32(GOOD, 0x100000, cls=2), "64-bit ELF"),
    (elf32(GOOD, 0x100000, machine=62), "not EM_386"),
    (elf32(GOOD, 0x100000, etype=3), "not an executable"),
    (elf32(GOOD, 0x100000, phentsize=16), "program header size"),
    (elf32([(0x100000, 0x100000, b"\x90" * 64, 64, 5)], 0x100000, truncate=120),
     "truncated file: segment 0"),
    (elf32([(0x100000, 0x100000, b"\x90" * 64, 32, 5)], 0x100000), "p_filesz"),
    (elf32([(0x100000, 0x100000, b"\x90" * 16, 16, 5)], 0x200000), "entry point"),
    (elf32([(0x3000000, 0x3000000, b"\x90" * 16, 16, 5)], 0x3000000), "outside RAM"),
    (elf32([(0xFFFFFFF0, 0xFFFFFFF0, b"\x90" * 16, 32, 5)], 0xFFFFFFF0), "beyond 4 GiB"),
    (elf32([(0xA0000, 0xA0000, b"\x90" * 16, 16, 5)], 0xA0000), "outside the available RAM"),
    (aout(header_addr=0xFFFF0), "header_addr"),
    (aout(prefix=16, header_addr=0x100000 + 32), "beyond the header's file offset"),
    (aout(load_end=0xFFFF0), "load_end_addr"),
    (aout(load_end=0x100000 + 4096), "truncated file: load_end_addr"),
    (aout(bss_end=0x100010), "bss_end_addr"),
    (aout(entry=0x500000), "entry point"),
    (aout(load_addr=0x2000000), "outside RAM"),
    (aout()[:30], "truncated multiboot header"),
])
def test_bad_images(img, message):
    with pytest.raises(ValueError) as e:
        mb.load_image(img, "bad.elf", RAM)
    assert message in str(e.value)
    assert str(e.value).startswith("bad.elf: ")


def test_truncated_program_headers():
    img = elf32(GOOD, 0x100000)
    bad = bytearray(img)
    struct.pack_into("<H", bad, 44, 200)              # e_phnum = 200
    with pytest.raises(ValueError, match="truncated file: program headers"):
        mb.load_image(bytes(bad), "k", RAM)


def test_module_outside_ram():
    img = elf32(GOOD, 0x100000)
    with pytest.raises(ValueError, match="module 'big' .* outside the available RAM"):
        mb.load_image(img, "k", 4 << 20, "", [("big", None, bytes(4 << 20))])


def test_memory_map_decides_available_ram():
    img = elf32([(0x800000, 0x800000, b"\x90" * 16, 16, 5)], 0x800000)
    hole = [(0, 0x9FC00, 1), (0x100000, 0x700000, 1), (0x800000, 0x100000, 2),
            (0x900000, RAM - 0x900000, 1)]
    with pytest.raises(ValueError, match="outside the available RAM"):
        mb.load_image(img, "k", RAM, memory_map=hole)
    plan = mb.load_image(img, "k", RAM, memory_map=[(0, 0x9FC00, 1), (0x100000, RAM, 1)])
    assert plan.mem_upper == RAM >> 10                    # the map is used as given


def test_too_many_map_entries():
    img = elf32(GOOD, 0x100000)
    m = mb.default_memory_map(RAM) + [(0x10000000 + i * 0x1000, 0x1000, 2) for i in range(60)]
    with pytest.raises(ValueError, match="memory map has 64 entries"):
        mb.load_image(img, "k", RAM, memory_map=m)


def test_missing_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read kernel"):
        mb.load(tmp_path / "nope.elf", RAM)
    k = tmp_path / "k.elf"
    k.write_bytes(elf32(GOOD, 0x100000))
    with pytest.raises(ValueError, match="nope.mod: cannot read module"):
        mb.load(k, RAM, modules=[str(tmp_path / "nope.mod")])
