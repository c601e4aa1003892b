"""Multiboot (version 1, spec 0.6.96) kernel loader: what ``aero run --kernel`` does.

Reference: the Multiboot Specification 0.6.96 (GNU GRUB), sections 3.1 "OS image format" (the
header: magic 0x1BADB002, flags, checksum, and the a.out-kludge address fields), 3.2 "Machine
state" (EAX = 0x2BADB002, EBX = the information structure, flat 32-bit CS/DS/ES/FS/GS/SS,
A20 on, CR0.PG = 0, CR0.PE = 1, EFLAGS.VM = EFLAGS.IF = 0) and 3.3 "Boot information format".
Conventions follow QEMU's ``-kernel`` for multiboot images (hw/i386/multiboot.c and its option
ROM pc-bios/optionrom/multiboot.S), so a kernel sees the same thing under both:

* The header is searched at 4-byte steps in the first 8192 bytes.  Without flag bit 16 the
  image must be an ELF32 (EM_386) file; its PT_LOAD segments are loaded at their *physical*
  addresses (``p_paddr``), ``p_filesz`` bytes copied and the rest up to ``p_memsz`` zeroed; the
  entry point is ``e_entry``, translated from virtual to physical when it lies in an executable
  segment whose ``p_vaddr`` differs from its ``p_paddr`` (QEMU's load_elf does the same).  With
  flag bit 16 (the "a.out kludge") the header's header_addr, load_addr, load_end_addr,
  bss_end_addr and entry_addr decide, whatever the file format.
* Layout (as QEMU): the kernel image [low, high) is rounded up to a page; after it come the
  module list (16 bytes a module), the command lines (kernel's last), the boot loader name,
  rounded up to a page again; then each module, each starting on a page boundary.  The memory
  map is at 0x9000 and the information structure at 0x9500 (QEMU's ADDR_E820_MAP/ADDR_MBI)
  when the kernel leaves that page free (see below when it does not).
* The kernel command line is ``"<kernel path> <cmdline>"`` and a module's is
  ``"<module path> <args>"`` (just the path when it has no arguments), as QEMU (and GRUB)
  pass them.
* mem_lower is the size in KiB of the available RAM at address 0 (at most 640); mem_upper is
  computed from the memory map exactly as QEMU's option ROM does: the amount of contiguous
  available RAM starting at 1 MiB, in KiB.

When it runs (``aero.build``): as under QEMU, after the BIOS's POST.  QEMU's loader is an
option ROM (multiboot.bin) that SeaBIOS runs as its first boot entry, so the kernel finds what
POST left: the IVT and BDA, the 8259As at vectors 08h and 70h, the PIT at 18.2 Hz, the BIOS's
interrupt handlers (a kernel may go back to real mode, or run BIOS code in v86 mode, and enable
interrupts).  Aero's is the Aero BIOS's first boot entry (``AeroBIOS.boot_first``, set by
``aero.build`` for --kernel): at the end of every POST (a reset boots the kernel again, as
QEMU does) ``load_after_post`` writes the plan into RAM, with the BIOS's E820 map, and the BIOS
jumps in real mode to ``boot_code``, a few instructions in the loader's page that switch to
protected mode and jump to the kernel in the spec's machine state.  Under SeaBIOS Aero does
what QEMU does (``add_to_fw_cfg``): SeaBIOS runs an option ROM from fw_cfg
(firmware/multiboot-rom/mbrom.asm, Aero's own) as its first boot entry; the ROM copies the
plan into RAM with fw_cfg DMA, replaces the memory map, mem_lower and mem_upper with what
SeaBIOS reports (E820, INT 12h) and enters the same entry code.  With no firmware
(``MachineConfig(bios=None)``) ``apply`` puts the CPU straight into that state instead, on a
machine nothing has set up (the PIC is not programmed: IRQ 0 would arrive at vector 0).

Where Aero differs from QEMU (each on purpose, see tests/firmware/test_multiboot.py and
tests/firmware/test_kernel_after_post.py):

* QEMU's option ROM asks the BIOS for the memory map (E820) and mem_lower (INT 12h); Aero's
  loader takes the map from the Aero BIOS on the host side (the map INT 15h E820 returns;
  mem_lower follows from it, as INT 12h's 639 KiB), or from the caller
  (``default_memory_map`` builds the usual PC one).
* The boot loader name is "Aero" (QEMU's is "qemu").
* QEMU always sets MBI flag bit 1 with boot_device 0x8000FFFF; Aero sets it only when the
  caller gives a boot device.
* QEMU's GDT lives in its option ROM; Aero places the same five descriptors (null, 0x08 flat
  32-bit code, 0x10 flat 32-bit data, 0x18 16-bit code, 0x20 16-bit data) at 0x9600 so that a
  kernel reloading its segment registers finds the descriptors it was started with.  ESP =
  0x9000 (the loader's page; the spec leaves ESP undefined: the kernel must set up its own
  stack).
* The loader's page (memory map, MBI, GDT, entry code) moves when the kernel or its modules
  (with the module list and command lines after the kernel) use 0x9000-0x9FFF, e.g. a kernel
  linked at 0x8000: to the highest free page of available RAM below 640 KiB (0x9E000 on the
  usual map, just under the EBDA); EBX, mmap_addr, the GDTR and ESP follow it.  QEMU keeps
  0x9000 and copies the kernel over it: such a kernel boots there with an MBI overwritten by
  its own command-line page (flags 0).
* Aero refuses images QEMU would load into the wrong place: a kernel or module outside the
  available RAM of the memory map is a ValueError.
* Header flag bits 3-15 are "required" features this loader (and the specification) does not
  define: such an image is refused, as section 3.1.2 demands.  Bit 2 (video mode) is accepted
  the way QEMU accepts it: the kernel is started in the current (text) mode and the MBI carries
  no video information (flags bits 11 and 12 clear), which the kernel can see; a warning is
  recorded in ``plan.warnings``.

Usage (independent of the CPU)::

    plan = load("kernel.elf", ram_size, cmdline="console=e9",
                modules=[("initrd.img", "root")], memory_map=default_memory_map(ram_size))
    apply(machine.cpu, machine.bus, plan)
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from ..cpu.cpu import REG32

HEADER_MAGIC = 0x1BADB002
BOOTLOADER_MAGIC = 0x2BADB002
SEARCH_LIMIT = 8192

# Header flags (spec 3.1.2)
HF_PAGE_ALIGN = 1 << 0          # modules page aligned
HF_MEMORY_INFO = 1 << 1         # mem_* fields (and the memory map) wanted
HF_VIDEO_MODE = 1 << 2          # video mode table wanted
HF_AOUT_KLUDGE = 1 << 16        # the address fields of the header are valid
HF_SUPPORTED_REQUIRED = HF_PAGE_ALIGN | HF_MEMORY_INFO | HF_VIDEO_MODE

# Information-structure flags (spec 3.3)
MBI_MEM = 1 << 0
MBI_BOOT_DEVICE = 1 << 1
MBI_CMDLINE = 1 << 2
MBI_MODS = 1 << 3
MBI_MMAP = 1 << 6
MBI_BOOT_LOADER_NAME = 1 << 9

MBI_SIZE = 88                   # up to and including the VBE fields, as QEMU
MOD_SIZE = 16

# The loader's page: the memory map, the information structure, the GDT and (after a BIOS's
# POST) the code that enters protected mode.  QEMU's page (0x9000) unless the kernel or its
# modules use it; then the highest free page below 640 KiB (``_loader_page``).
MMAP_ADDR = 0x9000              # QEMU's ADDR_E820_MAP
MMAP_MAX = 0x500                # room up to the information structure
MBI_ADDR = 0x9500               # QEMU's ADDR_MBI
GDT_ADDR = 0x9600
LOADER_AREA = (0x9000, 0xA000)  # the default page holding the map, the MBI and the GDT
INITIAL_ESP = 0x9000
MBI_OFF, GDT_OFF = MBI_ADDR - MMAP_ADDR, GDT_ADDR - MMAP_ADDR      # offsets in the page
GDTR_OFF = GDT_OFF + 0x30       # the LGDT operand (limit, base) for the entry code
BOOT_CODE_OFF = GDT_OFF + 0x40  # the real-mode entry code (``boot_code``)
FLAGS_STACK_OFF = 0x800         # a scratch stack for the entry code's PUSH/POPFD
LOW_MEMORY_TOP = 0xA0000        # the entry code runs in real mode: the page is below 640 KiB
BOOTLOADER_NAME = b"Aero"
PAGE = 4096

E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE = 1, 2, 3, 4, 5

# Flat descriptors as QEMU's multiboot option ROM defines them, with the accessed bit set (as
# the loads that put them in the segment registers leave it).
GDT = [
    0x0000000000000000,
    0x00CF9B000000FFFF,         # 0x08: base 0, limit 4 GiB, 32-bit code, execute/read, DPL 0
    0x00CF93000000FFFF,         # 0x10: base 0, limit 4 GiB, 32-bit data, read/write, DPL 0
    0x00009F000000FFFF,         # 0x18: base 0, limit 64 KiB, 16-bit code, conforming
    0x000093000000FFFF,         # 0x20: base 0, limit 64 KiB, 16-bit data
]
CODE_SEL, DATA_SEL = 0x08, 0x10

# Segment-cache attributes (bits 8-23 of a descriptor's high dword shifted down by 8, the layout
# aero.cpu.cpu keeps): type, S, DPL, P, AVL, D/B, G.
_A_ACCESSED, _A_RW, _A_CODE, _A_S, _A_P, _A_DB, _A_G = 0x1, 0x2, 0x8, 0x10, 0x80, 0x4000, 0x8000
FLAT_DATA_ATTR = _A_P | _A_S | _A_RW | _A_ACCESSED | _A_DB | _A_G          # 0xC093
FLAT_CODE_ATTR = FLAT_DATA_ATTR | _A_CODE                                   # 0xC09B

SEG_ORDER = ("es", "cs", "ss", "ds", "fs", "gs")     # aero.cpu.cpu segment indices


def _align(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


@dataclass
class Module:
    start: int
    end: int
    cmdline: str
    path: str


@dataclass
class MultibootPlan:
    """What to put in RAM and how to start the CPU.

    ``writes``: list of (physical address, bytes); ``state``: the initial CPU state (register
    names as keys; ``segs`` maps a segment name to (selector, base, limit, attr));
    the other fields describe the load for reports and tests."""
    writes: list
    state: dict
    entry: int
    kernel_range: tuple
    modules: list
    mbi_addr: int
    mbi_flags: int
    mem_lower: int
    mem_upper: int
    header_flags: int
    header_offset: int
    kind: str                   # "elf" or "aout-kludge"
    warnings: list = field(default_factory=list)
    loader_base: int = MMAP_ADDR    # the loader's page: map, MBI, GDT, entry code

    def __iter__(self):         # writes, state = load(...)
        return iter((self.writes, self.state))


def default_memory_map(ram_size: int) -> list:
    """The PC memory map a BIOS reports by E820 for ``ram_size`` bytes of RAM: 639 KiB of
    conventional memory, a 1 KiB EBDA, the BIOS area F0000-FFFFF, and RAM from 1 MiB on."""
    m = [(0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED),
         (0xF0000, 0x10000, E820_RESERVED)]
    if ram_size > 0x100000:
        m.append((0x100000, ram_size - 0x100000, E820_RAM))
    return m


def parse_module_spec(spec: str) -> tuple:
    """``FILE[,ARGS]`` (the --module syntax) -> (FILE, ARGS or None)."""
    path, sep, args = spec.partition(",")
    return path, (args if sep else None)


# --------------------------------------------------------------------------------------------
# Header and image parsing
# --------------------------------------------------------------------------------------------
def find_header(data: bytes):
    """The offset and (flags, checksum) of the multiboot header, or None."""
    limit = min(len(data), SEARCH_LIMIT) - 12
    for i in range(0, limit + 1, 4):
        magic, flags, checksum = struct.unpack_from("<III", data, i)
        if magic == HEADER_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            return i, flags
    return None


def _header(data: bytes, name: str):
    found = find_header(data)
    if found is None:
        for i in range(0, min(len(data), SEARCH_LIMIT) - 11, 4):
            if struct.unpack_from("<I", data, i)[0] == HEADER_MAGIC:
                magic, flags, checksum = struct.unpack_from("<III", data, i)
                raise ValueError(
                    f"{name}: multiboot header at offset {i:#x} has a bad checksum "
                    f"({checksum:#010x}; magic + flags + checksum must be 0 mod 2^32, "
                    f"expected {(-(magic + flags)) & 0xFFFFFFFF:#010x})")
        if len(data) < 12:
            raise ValueError(f"{name}: file too short ({len(data)} bytes) to hold a multiboot "
                             f"header")
        raise ValueError(f"{name}: no multiboot header (magic 0x1BADB002) in the first "
                         f"{SEARCH_LIMIT} bytes: not a multiboot kernel")
    off, flags = found
    unsupported = flags & 0xFFFF & ~HF_SUPPORTED_REQUIRED
    if unsupported:
        bits = ", ".join(str(b) for b in range(16) if unsupported >> b & 1)
        raise ValueError(f"{name}: multiboot header flags {flags:#010x} require feature bit(s) "
                         f"{bits} that this loader does not support")
    return off, flags


def _load_elf(data: bytes, name: str, ram_size: int):
    """PT_LOAD segments of an ELF32 i386 executable -> (low, image bytes, entry)."""
    if len(data) < 52:
        raise ValueError(f"{name}: truncated ELF header ({len(data)} bytes, need 52)")
    if data[4] == 2:
        raise ValueError(f"{name}: 64-bit ELF; a multiboot kernel must be ELF32 "
                         f"(or set header flag bit 16 with load addresses)")
    if data[4] != 1 or data[5] != 1:
        raise ValueError(f"{name}: not a little-endian ELF32 file (class {data[4]}, "
                         f"data {data[5]})")
    (e_type, e_machine, _ver, e_entry, e_phoff, _shoff, _flags, _ehsize, e_phentsize,
     e_phnum) = struct.unpack_from("<HHIIIIIHHH", data, 16)
    if e_machine != 3:
        raise ValueError(f"{name}: ELF machine {e_machine} is not EM_386 (3)")
    if e_type != 2:
        raise ValueError(f"{name}: ELF type {e_type} is not an executable (ET_EXEC)")
    if e_phnum == 0:
        raise ValueError(f"{name}: ELF file has no program headers")
    if e_phentsize < 32:
        raise ValueError(f"{name}: ELF program header size {e_phentsize} < 32")
    if e_phoff + e_phnum * e_phentsize > len(data):
        raise ValueError(f"{name}: truncated file: program headers end at "
                         f"{e_phoff + e_phnum * e_phentsize:#x}, file is {len(data):#x} bytes")
    segs = []
    entry = e_entry
    for n in range(e_phnum):
        (p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags,
         _align_) = struct.unpack_from("<8I", data, e_phoff + n * e_phentsize)
        if p_type != 1:                                   # PT_LOAD
            continue
        if p_filesz > p_memsz:
            raise ValueError(f"{name}: program header {n}: p_filesz {p_filesz:#x} > "
                             f"p_memsz {p_memsz:#x}")
        if p_offset + p_filesz > len(data):
            raise ValueError(f"{name}: truncated file: segment {n} needs bytes up to "
                             f"{p_offset + p_filesz:#x}, file is {len(data):#x} bytes")
        if p_paddr + p_memsz > 1 << 32:
            raise ValueError(f"{name}: segment {n} ({p_paddr:#x} + {p_memsz:#x}) goes beyond "
                             f"4 GiB")
        if (p_flags & 1 and p_vaddr != p_paddr and p_vaddr <= e_entry < p_vaddr + p_filesz):
            entry = e_entry - p_vaddr + p_paddr           # virtual entry -> physical
        if p_memsz:
            segs.append((p_paddr, data[p_offset:p_offset + p_filesz], p_memsz))
    if not segs:
        raise ValueError(f"{name}: ELF file has no loadable (PT_LOAD) segment")
    low = min(s[0] for s in segs)
    high = max(s[0] + s[2] for s in segs)
    if high > ram_size:
        raise ValueError(f"{name}: the kernel's segments ({low:#x}-{high - 1:#x}) are outside "
                         f"RAM ({ram_size >> 20} MiB)")
    image = bytearray(high - low)
    for paddr, body, _memsz in segs:
        image[paddr - low: paddr - low + len(body)] = body
    return low, bytes(image), entry


def _load_aout(data: bytes, name: str, off: int, ram_size: int):
    """The a.out kludge: the header's address fields -> (low, image bytes, entry)."""
    if off + 32 > len(data):
        raise ValueError(f"{name}: truncated multiboot header (flag bit 16 needs 32 bytes at "
                         f"offset {off:#x})")
    header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr = struct.unpack_from(
        "<5I", data, off + 12)
    if header_addr < load_addr:
        raise ValueError(f"{name}: header_addr {header_addr:#x} < load_addr {load_addr:#x}")
    if header_addr - load_addr > off:
        raise ValueError(f"{name}: header_addr - load_addr = {header_addr - load_addr:#x} "
                         f"is beyond the header's file offset {off:#x}")
    text_off = off - (header_addr - load_addr)
    if load_end_addr:
        if load_end_addr < load_addr:
            raise ValueError(f"{name}: load_end_addr {load_end_addr:#x} < load_addr "
                             f"{load_addr:#x}")
        load_size = load_end_addr - load_addr
        if text_off + load_size > len(data):
            raise ValueError(f"{name}: truncated file: load_end_addr {load_end_addr:#x} needs "
                             f"{text_off + load_size:#x} bytes, file is {len(data):#x}")
    else:
        load_size = len(data) - text_off
    if bss_end_addr:
        if bss_end_addr < load_addr + load_size:
            raise ValueError(f"{name}: bss_end_addr {bss_end_addr:#x} < end of the loaded "
                             f"image {load_addr + load_size:#x}")
        size = bss_end_addr - load_addr
    else:
        size = load_size
    if load_addr + size > 1 << 32:
        raise ValueError(f"{name}: kernel ({load_addr:#x} + {size:#x}) goes beyond 4 GiB")
    if load_addr + size > ram_size:
        raise ValueError(f"{name}: the kernel ({load_addr:#x}-{load_addr + size - 1:#x}) is "
                         f"outside RAM ({ram_size >> 20} MiB)")
    image = data[text_off:text_off + load_size] + bytes(size - load_size)
    return load_addr, image, entry_addr


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------
def _merged_available(memory_map, ram_size):
    rngs = sorted((b, min(b + n, ram_size)) for b, n, t in memory_map
                  if t == E820_RAM and n > 0 and b < ram_size)
    out = []
    for a, b in rngs:
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _check_ram(avail, start, end, what, name):
    if end <= start:
        return
    for a, b in avail:
        if a <= start and end <= b:
            return
    raise ValueError(f"{name}: {what} at {start:#x}-{end - 1:#x} is outside the available RAM "
                     f"of the memory map")


def _loader_page(avail, low: int, end: int) -> int | None:
    """The loader's page: QEMU's (0x9000) if the kernel and modules [low, end) leave it free,
    else the highest page of available RAM below 640 KiB that they leave free (the page just
    under the EBDA on a PC: where a BIOS keeps its own data, and where kernels linked low do
    not go), never the first page (IVT and BDA).  None if there is no such page."""
    def free(a):
        return (not (low < a + PAGE and end > a)
                and any(s <= a and a + PAGE <= e for s, e in avail))
    if free(MMAP_ADDR):
        return MMAP_ADDR
    for a in range(LOW_MEMORY_TOP - PAGE, 0, -PAGE):
        if free(a):
            return a
    return None


def mem_upper_kib(memory_map) -> int:
    """QEMU's option ROM rule: contiguous available RAM (type 1, below 4 GiB) from 1 MiB on,
    in KiB; the map need not be ordered."""
    edx = 0x100000
    changed = True
    while changed:
        changed = False
        for base, length, typ in memory_map:
            if typ != E820_RAM or base >> 32:
                continue
            end = (base + length) & 0xFFFFFFFF
            if base <= edx < end:
                edx = end
                changed = True
                break
    return (edx - 0x100000) >> 10


def mem_lower_kib(memory_map) -> int:
    """Available RAM at address 0, in KiB, at most 640 (what INT 12h reports)."""
    end = 0
    changed = True
    while changed:
        changed = False
        for base, length, typ in memory_map:
            if typ == E820_RAM and base <= end < base + length:
                end = base + length
                changed = True
    return min(end, 0xA0000) >> 10


def load(path, ram_size: int, cmdline: str = "", modules=(), memory_map=None,
         boot_device: int | None = None) -> MultibootPlan:
    """Read a multiboot kernel and its modules from files and plan the boot.

    ``modules``: items ``(path, args_or_None)`` or ``"FILE[,ARGS]"`` strings."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{name}: cannot read kernel: {e.strerror}") from None
    mods = []
    for m in modules:
        mpath, args = parse_module_spec(m) if isinstance(m, str) else m
        mpath = os.fspath(mpath)
        try:
            with open(mpath, "rb") as f:
                body = f.read()
        except OSError as e:
            raise ValueError(f"{mpath}: cannot read module: {e.strerror}") from None
        mods.append((mpath, args, body))
    return load_image(data, name, ram_size, cmdline, mods, memory_map, boot_device)


def load_image(data: bytes, name: str, ram_size: int, cmdline: str = "", modules=(),
               memory_map=None, boot_device: int | None = None) -> MultibootPlan:
    """As ``load`` with the kernel's bytes and modules as (path, args_or_None, bytes)."""
    if memory_map is None:
        memory_map = default_memory_map(ram_size)
    memory_map = [(int(b), int(n), int(t)) for b, n, t in memory_map]
    modules = list(modules)
    off, hflags = _header(data, name)
    warnings = []
    if hflags & HF_VIDEO_MODE:
        warnings.append("the kernel asks for a video mode (header flag bit 2); it starts in "
                        "the current mode and gets no video information (as under QEMU)")
    if hflags & HF_AOUT_KLUDGE:
        kind = "aout-kludge"
        low, image, entry = _load_aout(data, name, off, ram_size)
    else:
        if data[:4] != b"\x7fELF":
            raise ValueError(f"{name}: not an ELF file and the multiboot header does not set "
                             f"flag bit 16 (load addresses): cannot load it")
        kind = "elf"
        low, image, entry = _load_elf(data, name, ram_size)
    high = low + len(image)
    if not low <= entry < high:
        raise ValueError(f"{name}: entry point {entry:#x} is outside the loaded kernel "
                         f"({low:#x}-{high - 1:#x})")

    # Layout, as QEMU's load_multiboot: [kernel | module list, cmdlines, loader name | mods]
    enc = os.fsencode
    kname = enc(name)
    kcmd = enc(cmdline) if isinstance(cmdline, str) else bytes(cmdline)
    mod_cmds = []
    for mpath, args, _body in modules:
        s = enc(mpath) if args is None else enc(mpath) + b" " + enc(args)
        if b"\0" in s:
            raise ValueError(f"{mpath}: module command line contains a NUL byte")
        mod_cmds.append(s)
    if b"\0" in kcmd:
        raise ValueError(f"{name}: command line contains a NUL byte")
    buf_size = _align(len(image))
    off_mbinfo = buf_size
    cmdline_len = len(kname) + 1 + len(kcmd) + 1
    if modules:        # QEMU counts the -initrd string: the commands joined by ',' (',' -> ',,')
        cmdline_len += len(b",".join(c.replace(b",", b",,") for c in mod_cmds)) + 1
    buf_size += cmdline_len + MOD_SIZE * len(modules) + len(BOOTLOADER_NAME) + 1
    buf_size = _align(buf_size)
    off_cmdlines = off_mbinfo + len(modules) * MOD_SIZE
    off_loader = off_cmdlines + cmdline_len
    meta_end = buf_size
    if low + buf_size > 1 << 32:
        raise ValueError(f"{name}: kernel and boot information go beyond 4 GiB")

    info = bytearray()
    strings = bytearray()

    def add_cmdline(s: bytes) -> int:
        addr = low + off_cmdlines + len(strings)
        strings.extend(s + b"\0")
        return addr

    mod_list = []
    mod_writes = []
    for (mpath, _args, body), cmd in zip(modules, mod_cmds):
        c = add_cmdline(cmd)
        start = low + buf_size
        buf_size = _align(buf_size + len(body))
        if low + buf_size > 1 << 32:
            raise ValueError(f"{mpath}: module does not fit below 4 GiB")
        info += struct.pack("<IIII", start, start + len(body), c, 0)
        mod_list.append(Module(start, start + len(body), cmd.decode("utf-8", "replace"),
                               mpath))
        if body:
            mod_writes.append((start, bytes(body)))
    kcmd_addr = add_cmdline(kname + b" " + kcmd)
    loader_addr = low + off_loader
    meta = bytearray(meta_end - off_mbinfo)
    meta[0:len(info)] = info
    meta[off_cmdlines - off_mbinfo: off_cmdlines - off_mbinfo + len(strings)] = strings
    meta[off_loader - off_mbinfo: off_loader - off_mbinfo + len(BOOTLOADER_NAME) + 1] = \
        BOOTLOADER_NAME + b"\0"

    # Memory checks: everything we write must land in available RAM, away from our page.
    avail = _merged_available(memory_map, ram_size)
    _check_ram(avail, low, low + _align(len(image)) + len(meta), "the kernel", name)
    for m in mod_list:
        _check_ram(avail, m.start, _align(m.end) if m.end > m.start else m.start,
                   f"module {m.path!r}", name)
    end_all = low + buf_size
    base = _loader_page(avail, low, end_all)
    if base is None:
        raise ValueError(f"{name}: no free 4 KiB page of available RAM below "
                         f"{LOW_MEMORY_TOP >> 10} KiB for the loader's data (memory map, boot "
                         f"information, GDT): the kernel and its modules use "
                         f"{low:#x}-{end_all - 1:#x}")
    mmap_addr, mbi_addr, gdt_addr = base, base + MBI_OFF, base + GDT_OFF

    # Memory map and information structure
    if len(memory_map) * 24 > MMAP_MAX:
        raise ValueError(f"memory map has {len(memory_map)} entries; at most {MMAP_MAX // 24} "
                         f"fit")
    mmap = b"".join(struct.pack("<IQQI", 20, b & (2**64 - 1), n & (2**64 - 1), t)
                    for b, n, t in memory_map)
    mem_lower = mem_lower_kib(memory_map)
    mem_upper = mem_upper_kib(memory_map)
    flags = MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_BOOT_LOADER_NAME
    mbi = bytearray(MBI_SIZE)
    struct.pack_into("<III", mbi, 4, mem_lower, mem_upper,
                     boot_device & 0xFFFFFFFF if boot_device is not None else 0)
    if boot_device is not None:
        flags |= MBI_BOOT_DEVICE
    struct.pack_into("<I", mbi, 0, flags)
    struct.pack_into("<III", mbi, 16, kcmd_addr, len(mod_list), low + off_mbinfo)
    struct.pack_into("<II", mbi, 44, len(mmap), mmap_addr)
    struct.pack_into("<I", mbi, 64, loader_addr)
    gdt = b"".join(struct.pack("<Q", d) for d in GDT)

    writes = [(low, image + bytes(_align(len(image)) - len(image)) + bytes(meta))]
    writes += mod_writes
    writes += [(mmap_addr, mmap), (mbi_addr, bytes(mbi)), (gdt_addr, gdt)]

    segs = {s: (DATA_SEL, 0, 0xFFFFFFFF, FLAT_DATA_ATTR) for s in SEG_ORDER}
    segs["cs"] = (CODE_SEL, 0, 0xFFFFFFFF, FLAT_CODE_ATTR)
    state = {
        "eax": BOOTLOADER_MAGIC, "ebx": mbi_addr, "ecx": entry, "edx": 0,
        "esp": base, "ebp": 0, "esi": 0, "edi": 0,
        "eip": entry, "eflags": 0x2,            # IF = 0, DF = 0, VM = 0
        "cr0": 0x11,                            # PE | ET; PG = 0 (QEMU's option ROM: CR0 = 1)
        "gdtr": (gdt_addr, len(gdt) - 1),
        "idtr": (0, 0x3FF),
        "segs": segs,
        "a20": True,
    }
    return MultibootPlan(writes=writes, state=state, entry=entry, kernel_range=(low, high),
                         modules=mod_list, mbi_addr=mbi_addr, mbi_flags=flags,
                         mem_lower=mem_lower, mem_upper=mem_upper, header_flags=hflags,
                         header_offset=off, kind=kind, warnings=warnings, loader_base=base)


def apply(cpu, bus, plan) -> None:
    """Write the plan into memory and put the CPU in the multiboot machine state."""
    writes, st = (plan.writes, plan.state) if isinstance(plan, MultibootPlan) else plan
    for addr, data in writes:
        bus.write_bytes(addr, data)
    cpu.cache.flush()
    if st.get("a20", True):
        bus.set_a20(True)
    cpu.R[:] = [st[r] & 0xFFFFFFFF for r in REG32]
    cpu.lf = None
    cpu.flags = st["eflags"]
    cpu.halted = False
    cpu.shadow = False
    cpu.write_cr0(st["cr0"])
    cpu.gdtr = list(st["gdtr"])
    cpu.idtr = list(st["idtr"])
    for i, s in enumerate(SEG_ORDER):
        sel, base, limit, attr = st["segs"][s]
        cpu.set_seg_cache(i, sel, base, limit, attr)
    cpu.eip = st["eip"]
    cpu.mode_changed()


# --------------------------------------------------------------------------------------------
# Booting after a BIOS's POST
# --------------------------------------------------------------------------------------------
def boot_code(plan) -> tuple[int, bytes]:
    """The guest code that starts the kernel from real mode, as QEMU's multiboot option ROM
    does after SeaBIOS's POST (Aero's own encoding, not QEMU's code): (physical address,
    bytes), to be placed in the loader's page after the GDT.  It is entered at CS:IP =
    (page + GDT_OFF) >> 4 : BOOT_CODE_OFF - GDT_OFF and runs::

        cli / cld / o32 lgdt [cs:GDTR]           the plan's GDT (flat 08h code, 10h data)
        mov eax, CR0-VALUE / mov cr0, eax        PE (and ET); PG stays 0
        jmp dword 08h:pm                         32-bit flat code
      pm:
        mov eax, 10h / mov ds, es, fs, gs, ss    flat data
        mov esp, SCRATCH / push 2 / popfd        EFLAGS = 2 (IF = DF = VM = 0), the push lands
                                                 in the loader's page, never in the kernel
        mov esp, eax, ebx, ecx, edx, esi, edi, ebp   the plan's values (EAX = 2BADB002h,
        jmp ecx                                      EBX = the MBI, ECX = the entry point)

    so the kernel starts in exactly the plan's state (``plan.state``)."""
    st = plan.state
    base = plan.loader_base
    pm = base + BOOT_CODE_OFF + 26                      # after the 16-bit part below
    gdtr = struct.pack("<HI", st["gdtr"][1], st["gdtr"][0])
    code = bytearray()
    code += b"\xFA\xFC"                                  # cli; cld
    code += b"\x66\x2E\x0F\x01\x16" + struct.pack("<H", GDTR_OFF - GDT_OFF)  # o32 lgdt cs:[]
    code += b"\x66\xB8" + struct.pack("<I", st["cr0"])  # mov eax, imm32
    code += b"\x0F\x22\xC0"                              # mov cr0, eax
    code += b"\x66\xEA" + struct.pack("<IH", pm, st["segs"]["cs"][0])       # jmp dword sel:pm
    assert base + BOOT_CODE_OFF + len(code) == pm
    code += b"\xB8" + struct.pack("<I", st["segs"]["ds"][0])                # mov eax, sel
    for modrm in (0xD8, 0xC0, 0xE0, 0xE8, 0xD0):         # mov ds/es/fs/gs/ss, ax
        code += bytes((0x8E, modrm))
    code += b"\xBC" + struct.pack("<I", base + FLAGS_STACK_OFF)             # mov esp, imm32
    code += b"\x6A" + bytes((st["eflags"] & 0x7F,)) + b"\x9D"              # push imm8; popfd
    for opcode, reg in ((0xBC, "esp"), (0xB8, "eax"), (0xBB, "ebx"), (0xB9, "ecx"),
                        (0xBA, "edx"), (0xBE, "esi"), (0xBF, "edi"), (0xBD, "ebp")):
        code += bytes((opcode,)) + struct.pack("<I", st[reg] & 0xFFFFFFFF)
    code += b"\xFF\xE1"                                  # jmp ecx
    assert st["ecx"] == st["eip"] and st["eflags"] & ~0x7F == 0
    assert st["segs"]["cs"][0] == CODE_SEL and all(st["segs"][s][0] == DATA_SEL
                                                      for s in SEG_ORDER if s != "cs")
    blob = gdtr.ljust(BOOT_CODE_OFF - GDTR_OFF, b"\0") + bytes(code)
    return base + GDTR_OFF, blob


def load_after_post(bus, plan) -> tuple[int, int, int, int]:
    """The multiboot boot entry of a BIOS (aero.firmware.bios: ``AeroBIOS.boot_first``), run
    in its boot phase after POST, as QEMU runs its multiboot option ROM after SeaBIOS's POST:
    write the kernel, modules, memory map, information structure, GDT and the entry code
    (``boot_code``) into RAM, turn the A20 gate on, and return (CS, IP, SS, SP): where the
    BIOS jumps in real mode (a RETF frame pushed at SS:SP, inside the loader's page).  The
    IVT, BDA, PIC, PIT, and everything else POST set up stay as POST left them."""
    if not bus.a20:
        bus.set_a20(True)
    addr, code = boot_code(plan)
    for a, data in list(plan.writes) + [(addr, code)]:
        bus.write_bytes(a, data)
    seg = (plan.loader_base + GDT_OFF) >> 4
    return seg, BOOT_CODE_OFF - GDT_OFF, plan.loader_base >> 4, FLAGS_STACK_OFF - 4


# --------------------------------------------------------------------------------------------
# Booting under SeaBIOS: an option ROM fed through fw_cfg
# --------------------------------------------------------------------------------------------
OPTION_ROM_PATH = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..",
                                                "firmware", "multiboot-rom", "mbrom.bin"))
OPTION_ROM_FILE = "genroms/multiboot.bin"        # the fw_cfg name (SeaBIOS runs genroms/*)
FW_CFG_KERNEL_DATA = 0x11                        # the item the ROM reads


def option_rom(path: str = OPTION_ROM_PATH) -> bytes:
    """firmware/multiboot-rom/mbrom.bin with its checksum byte set (all bytes sum to 0)."""
    try:
        with open(path, "rb") as f:
            rom = bytearray(f.read())
    except OSError as e:
        raise ValueError(f"the multiboot option ROM {path} cannot be read ({e.strerror}): "
                         f"install Aero from its checkout") from None
    rom[-1] = (-sum(rom[:-1])) & 0xFF
    return bytes(rom)


def rom_blob(plan) -> bytes:
    """What the option ROM reads from fw_cfg item 11h (see mbrom.asm): the entry code's
    real-mode CS:IP, the MBI and memory-map addresses, then every part to copy (the plan's
    writes and the entry code) as address, length, bytes."""
    addr, code = boot_code(plan)
    parts = list(plan.writes) + [(addr, code)]
    base = plan.loader_base
    out = bytearray(struct.pack("<HHIII", BOOT_CODE_OFF - GDT_OFF, (base + GDT_OFF) >> 4,
                                plan.mbi_addr, base, len(parts)))
    for a, data in parts:
        out += struct.pack("<II", a, len(data)) + bytes(data)
    return bytes(out)


def add_to_fw_cfg(fw_cfg, plan) -> None:
    """Hand the kernel to SeaBIOS as QEMU does: the option ROM as fw_cfg file
    genroms/multiboot.bin, first in "bootorder" (SeaBIOS boots it before any drive), and the
    data it loads as item 11h.  Call before the firmware runs."""
    fw_cfg.add_item(FW_CFG_KERNEL_DATA, rom_blob(plan))
    fw_cfg.add_file(OPTION_ROM_FILE, option_rom())
    fw_cfg.add_file("bootorder", f"/rom@{OPTION_ROM_FILE}\n".encode())
