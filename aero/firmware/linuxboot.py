"""The Linux/x86 boot protocol (16-bit entry): how ``aero run --kernel bzImage`` boots Linux.

Reference: the kernel's Documentation/arch/x86/boot.rst ("The Linux/x86 Boot Protocol"):
"The Real-Mode Kernel Header" (the field table and offsets), "Details of Header Fields",
"Loading the Rest of the Kernel", "Running the Kernel" and the memory layout it suggests for
protocol 2.02 and up.  QEMU's ``-kernel`` follows the same layout (real-mode code at
X = 0x10000, its stack/heap up to X+0x10000, the command line at X+0x10000, the protected-mode
kernel at 0x100000), so a kernel sees the same thing under both; the figures here come from the
spec, Aero's code is its own.

What ``load_image`` plans (``LinuxPlan``):

* The image is recognised by "HdrS" at 0x202 (``kernel_kind``: else a multiboot kernel, else
  "not a kernel").  It must be a bzImage
  (loadflags LOADED_HIGH) of protocol 2.02 or later (``MIN_PROTOCOL``: a 32-bit command-line
  pointer; zImages and older protocols are refused with one line).  setup_sects 0 means 4.
  The real-mode part is (setup_sects + 1) * 512 bytes, the rest is the protected-mode kernel;
  with protocol 2.04+ a file ending more than a paragraph short of syssize * 16 bytes after the
  setup is truncated (syssize counts whole 16-byte paragraphs, rounded up: memtest86+'s image
  ends 8 bytes into its last one, and QEMU loads it as it is).
* Real-mode code at X = ``SETUP_ADDR`` (0x10000, segment 0x1000), at most 0x8000 bytes; its
  heap and stack up to X+0x10000 (heap_end_ptr = 0xFE00, loadflags CAN_USE_HEAP); the command
  line at X+0x10000 = ``CMDLINE_ADDR`` (cmd_line_ptr), at most cmdline_size bytes (protocol
  2.06+; 255 before) plus its NUL.
* The protected-mode kernel at 0x100000 (``KERNEL_ADDR``): a bzImage's code32_start.
* The initrd at the highest 4 KiB-aligned address where it lies in available RAM of the BIOS's
  E820 map, its last byte at or below initrd_addr_max (protocol 2.03+; 0x37FFFFFF before) and
  above the protected-mode kernel; ramdisk_image/ramdisk_size say where.
* type_of_loader 0xFF ("no assigned id", as the spec asks of such a loader: QEMU writes its
  own id 0xB0), vid_mode from a "vga=" option of the command line (normal, ext, ask or a
  number; 0xFFFF "normal" without one), as QEMU reads it.
* Protocol 2.10+: a kernel whose init_size (from pref_address) goes beyond the available RAM
  starting at 1 MiB, or whose initrd lies in that range, gets a warning (it may not
  decompress); QEMU says nothing.

Entering (``entry_code``, ``load_after_post``): the spec's "Running the Kernel": interrupts
off, DS = ES = FS = GS = SS = X >> 4, SP at the top of the heap/stack (0xFFF0, 16 bytes below
X+0x10000 as QEMU's linuxboot ROM leaves it), then a far jump to (X >> 4) + 0x20 : 0.  Under
the Aero BIOS this is the BIOS's first boot entry (``AeroBIOS.boot_first``, as for multiboot):
after every POST the plan is written into RAM and the BIOS jumps to a few bytes of entry code
at 0xFF00 (below X: the spec's "boot loader" area) that set those registers.  The other
general registers are zero (the BIOS's boot jump clears them).  The kernel's own setup asks
the BIOS for the memory map (INT 15h E820), so the E820 table of boot_params is left for it
to fill, as with every 16-bit boot loader.

Under SeaBIOS (``add_to_fw_cfg``): QEMU's way, QEMU's ROM.  The plan goes into fw_cfg's
Linux items (setup, kernel, initrd, command line: address, size, data) and QEMU's option ROM
linuxboot_dma.bin, read at run time from Debian's qemu-system-data package
(/usr/share/qemu/linuxboot_dma.bin, never part of Aero), is offered to SeaBIOS as
genroms/linuxboot_dma.bin, first in the boot order.  That ROM re-places the initrd below the
top of RAM SeaBIOS reports (INT 15h E801) when it would not end at initrd_addr_max.

Every problem with the image, the initrd or the command line is a ValueError with one line
("--kernel: FILE: ...", "--initrd: FILE: ...", "--append: ..."), which ``aero.build`` reports
as a ConfigError (``aero: ...``, exit status 2) before anything runs.

Checked (tests/firmware/test_linuxboot.py) against qemu-system-i386 7.2: a synthetic setup's
report of its registers, header fields, command line, initrd and kernel bytes is QEMU's line
for line but for type_of_loader and the E820 map; Debian 12's 686 kernel shows QEMU's screen
("... not present on the CPU: fpu", ``-cpu qemu32,-fpu``) under both BIOSes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

HDRS = b"HdrS"
HDRS_OFFSET = 0x202
MIN_PROTOCOL = 0x0202            # cmd_line_ptr (2.02): the oldest protocol Aero loads

SETUP_ADDR = 0x10000             # X: the real-mode code (the spec's layout, QEMU's address)
SETUP_MAX = 0x8000               # the setup may use X .. X+0x8000
HEAP_END = 0x10000               # the heap/stack ends at X+0x10000 (offset from X)
HEAP_END_PTR = HEAP_END - 0x200  # the field's value: 0xFE00
STACK_POINTER = HEAP_END - 0x10  # SP at entry (QEMU's linuxboot ROM: cmdline - X - 16)
CMDLINE_ADDR = SETUP_ADDR + HEAP_END        # 0x20000
KERNEL_ADDR = 0x100000
ENTRY_CODE_ADDR = 0xFF00         # the entry code, in the boot loader's area below X
ENTRY_FRAME_SP = 0xFC            # the BIOS's RETF frame: 0FF0:00FC (after the code)
LOW_MEMORY_TOP = 0xA0000
PAGE = 4096

LOADER_TYPE = 0xFF               # "no assigned id"
VID_NORMAL, VID_EXT, VID_ASK = 0xFFFF, 0xFFFE, 0xFFFD

# loadflags
LOADED_HIGH = 0x01
QUIET_FLAG = 0x20
KEEP_SEGMENTS = 0x40
CAN_USE_HEAP = 0x80

E820_RAM = 1

# setup header fields (offset in the image, struct format, first protocol that has it)
FIELDS = {
    "setup_sects": (0x1F1, "B", 0),
    "root_flags": (0x1F2, "H", 0),
    "syssize": (0x1F4, "I", 0x0204),
    "vid_mode": (0x1FA, "H", 0),
    "boot_flag": (0x1FE, "H", 0),
    "jump": (0x200, "H", 0x0200),
    "version": (0x206, "H", 0x0200),
    "type_of_loader": (0x210, "B", 0x0200),
    "loadflags": (0x211, "B", 0x0200),
    "code32_start": (0x214, "I", 0x0200),
    "ramdisk_image": (0x218, "I", 0x0200),
    "ramdisk_size": (0x21C, "I", 0x0200),
    "heap_end_ptr": (0x224, "H", 0x0201),
    "cmd_line_ptr": (0x228, "I", 0x0202),
    "initrd_addr_max": (0x22C, "I", 0x0203),
    "kernel_alignment": (0x230, "I", 0x0205),
    "relocatable_kernel": (0x234, "B", 0x0205),
    "xloadflags": (0x236, "H", 0x020C),
    "cmdline_size": (0x238, "I", 0x0206),
    "pref_address": (0x258, "Q", 0x020A),
    "init_size": (0x260, "I", 0x020A),
}


def is_bzimage(data: bytes) -> bool:
    """A Linux/x86 kernel image (bzImage or zImage): "HdrS" at 0x202."""
    return data[HDRS_OFFSET:HDRS_OFFSET + 4] == HDRS


def kernel_kind(path) -> str:
    """What ``--kernel FILE`` is: "linux" (a setup header, "HdrS" at 0x202) or "multiboot"
    (the multiboot magic somewhere the loader searches, or a file that cannot be read: the
    multiboot loader says why).  Anything else is a ValueError: not a kernel."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            head = f.read(8192)
    except OSError:
        return "multiboot"
    if is_bzimage(head):
        return "linux"
    if any(head[i:i + 4] == b"\x02\xb0\xad\x1b" for i in range(0, len(head) - 3, 4)):
        return "multiboot"
    raise ValueError(f"--kernel: {name}: not a kernel: no Linux setup header (\"HdrS\" at "
                     f"0x202) and no multiboot header (magic 0x1BADB002) in the first 8192 "
                     f"bytes")


def parse_header(data: bytes, name: str = "kernel") -> dict:
    """The setup header's fields (those the image's protocol version defines), checked."""
    if len(data) < 0x1F1 + 1:
        raise ValueError(f"--kernel: {name}: file too short ({len(data)} bytes) to be a kernel")
    if not is_bzimage(data):
        raise ValueError(f"--kernel: {name}: not a Linux kernel (no \"HdrS\" at 0x202) and "
                         f"not a multiboot kernel")
    version = struct.unpack_from("<H", data, 0x206)[0]
    hdr_end = 0x202 + data[0x201] if data[0x200] == 0xEB else 0x268   # the jump's target
    hdr = {"version": version, "header_end": hdr_end}
    for key, (off, fmt, since) in FIELDS.items():
        if version >= since and off + struct.calcsize(fmt) <= len(data):
            hdr[key] = struct.unpack_from("<" + fmt, data, off)[0]
    if version < MIN_PROTOCOL:
        raise ValueError(f"--kernel: {name}: boot protocol {version >> 8}.{version & 0xFF:02d} "
                         f"is too old (Aero loads {MIN_PROTOCOL >> 8}.{MIN_PROTOCOL & 0xFF:02d} "
                         f"and later)")
    if not hdr["loadflags"] & LOADED_HIGH:
        raise ValueError(f"--kernel: {name}: a zImage (loadflags LOADED_HIGH clear): only "
                         f"bzImages are loaded")
    if hdr.get("boot_flag") != 0xAA55:
        raise ValueError(f"--kernel: {name}: boot_flag at 0x1FE is "
                         f"{hdr.get('boot_flag', 0):#06x}, not 0xAA55: not a Linux kernel")
    return hdr


@dataclass
class LinuxPlan:
    """What to put in RAM and where to enter.  ``writes``: (physical address, bytes)."""
    writes: list
    protocol: int
    setup_addr: int
    setup_size: int             # bytes of real-mode code (setup_sects + 1) * 512
    setup: bytes                # the real-mode code with the header filled in
    kernel_addr: int
    kernel: bytes               # the protected-mode kernel
    cmdline_addr: int
    cmdline: bytes              # with its NUL
    initrd_addr: int
    initrd: bytes
    heap_end_ptr: int
    stack_pointer: int
    vid_mode: int
    loadflags: int
    header: dict
    kind: str = "bzImage"
    warnings: list = field(default_factory=list)

    @property
    def setup_seg(self) -> int:
        return self.setup_addr >> 4

    @property
    def entry(self) -> tuple[int, int]:
        """The kernel's real-mode entry (CS, IP)."""
        return self.setup_seg + 0x20, 0


def _available(memory_map, ram_size: int) -> list:
    """Available (type 1) RAM as merged [start, end) ranges within the RAM size."""
    rng = sorted((b, min(b + n, ram_size)) for b, n, t in memory_map
                 if t == E820_RAM and b < ram_size)
    out = []
    for s, e in rng:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(r) for r in out if r[1] > r[0]]


def _default_map(ram_size: int) -> list:
    m = [(0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2)]
    if ram_size > 0x100000:
        m.append((0x100000, ram_size - 0x100000, E820_RAM))
    return m


def vid_mode_from_cmdline(cmdline: bytes) -> int:
    """The "vga=" option (the last one wins, as the kernel reads it): normal, ext, ask or a
    number (C syntax); 0xFFFF (normal) without one or for a value that is none of those."""
    mode = VID_NORMAL
    for word in cmdline.split():
        if word.startswith(b"vga="):
            v = word[4:].decode("latin-1")
            if v == "normal":
                mode = VID_NORMAL
            elif v == "ext":
                mode = VID_EXT
            elif v == "ask":
                mode = VID_ASK
            else:
                try:
                    mode = int(v, 0) & 0xFFFF
                except ValueError:
                    mode = VID_NORMAL
    return mode


def _fmt_size(n: int) -> str:
    return f"{n} bytes"


def load(path, ram_size: int, cmdline: str = "", initrd=None, memory_map=None) -> LinuxPlan:
    """Read a bzImage (and an initrd file) and plan the boot (see the module docstring)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"--kernel: {name}: cannot read it: {e.strerror}") from None
    rd, rd_name = None, None
    if initrd is not None:
        rd_name = os.fspath(initrd)
        try:
            with open(rd_name, "rb") as f:
                rd = f.read()
        except OSError as e:
            raise ValueError(f"--initrd: {rd_name}: cannot read it: {e.strerror}") from None
    return load_image(data, name, ram_size, cmdline, rd, rd_name, memory_map)


def load_image(data: bytes, name: str, ram_size: int, cmdline="", initrd: bytes | None = None,
               initrd_name: str | None = None, memory_map=None) -> LinuxPlan:
    """As ``load`` with the kernel's and the initrd's bytes."""
    hdr = parse_header(data, name)
    version = hdr["version"]
    warnings = []
    setup_sects = hdr["setup_sects"] or 4
    setup_size = (setup_sects + 1) * 512
    if len(data) < setup_size:
        raise ValueError(f"--kernel: {name}: truncated: {len(data)} bytes, its real-mode setup "
                         f"alone is {setup_size} ({setup_sects} setup sectors)")
    if setup_size > SETUP_MAX:
        raise ValueError(f"--kernel: {name}: real-mode setup of {setup_size} bytes "
                         f"({setup_sects} sectors): at most {SETUP_MAX} fit below its heap")
    kernel = data[setup_size:]
    if "syssize" in hdr and len(kernel) <= (hdr["syssize"] - 1) * 16:
        raise ValueError(f"--kernel: {name}: truncated: the protected-mode kernel is "
                         f"{len(kernel)} bytes, the header says {hdr['syssize'] * 16}")
    if not kernel:
        raise ValueError(f"--kernel: {name}: truncated: no protected-mode kernel after the "
                         f"setup")

    if memory_map is None:
        memory_map = _default_map(ram_size)
    avail = _available(memory_map, ram_size)
    high = next(((s, e) for s, e in avail if s <= KERNEL_ADDR < e), None)
    kernel_end = KERNEL_ADDR + len(kernel)
    if high is None or kernel_end > high[1]:
        top = high[1] if high else KERNEL_ADDR
        raise ValueError(f"--kernel: {name}: the protected-mode kernel "
                         f"({_fmt_size(len(kernel))}) does not fit in the RAM from 1 MiB "
                         f"(available up to {top:#x}): give more --memory")
    low_end = next((e for s, e in avail if s <= SETUP_ADDR < e), 0)
    if low_end < CMDLINE_ADDR + PAGE:
        raise ValueError(f"--kernel: {name}: no available RAM at {SETUP_ADDR:#x}-"
                         f"{CMDLINE_ADDR + PAGE - 1:#x} for the real-mode code and command line")

    # command line
    cmd = os.fsencode(cmdline) if isinstance(cmdline, str) else bytes(cmdline or b"")
    if b"\0" in cmd:
        raise ValueError("--append: the command line contains a NUL byte")
    cmd_max = hdr.get("cmdline_size", 255)
    if len(cmd) > cmd_max:
        raise ValueError(f"--append: the command line is {len(cmd)} bytes; this kernel takes "
                         f"at most {cmd_max}")
    cmd += b"\0"

    # initrd: the highest page in available RAM above the kernel, below initrd_addr_max
    initrd_addr, rd = 0, b""
    if initrd is not None:
        rd = bytes(initrd)
        rd_name = initrd_name or "initrd"
        limit = hdr.get("initrd_addr_max", 0x37FFFFFF) + 1
        best = None
        for s, e in avail:
            e = min(e, limit)
            s = max(s, (kernel_end + PAGE - 1) & ~(PAGE - 1))
            a = (e - len(rd)) & ~(PAGE - 1)
            if e > s and a >= s:
                best = a if best is None else max(best, a)
        if best is None:
            room = max((min(e, limit) - max(s, kernel_end) for s, e in avail), default=0)
            raise ValueError(f"--initrd: {rd_name}: the initrd ({_fmt_size(len(rd))}) does not "
                             f"fit in available RAM between the kernel's end "
                             f"({kernel_end:#x}) and {min(limit, high[1]):#x} (at most "
                             f"{_fmt_size(max(room, 0))}): " + (
                                 "give more --memory" if limit >= high[1] else
                                 f"the kernel's initrd_addr_max is {limit - 1:#x}"))
        initrd_addr = best

    if version >= 0x020A and "init_size" in hdr:
        start = max(KERNEL_ADDR, hdr.get("pref_address", 0))
        need_end = start + hdr["init_size"]
        if need_end > high[1]:
            warnings.append(f"the kernel needs {hdr['init_size']:#x} bytes of RAM from "
                            f"{start:#x} to decompress (init_size), up to {need_end:#x}; RAM "
                            f"from 1 MiB ends at {high[1]:#x}: it may fail (give more "
                            f"--memory)")
        elif rd and initrd_addr < need_end:
            warnings.append(f"the initrd at {initrd_addr:#x} lies where the kernel "
                            f"decompresses ({start:#x}-{need_end - 1:#x}): it may be "
                            f"overwritten (give more --memory)")

    # the setup header
    setup = bytearray(data[:setup_size])
    loadflags = (hdr["loadflags"] | CAN_USE_HEAP) & ~KEEP_SEGMENTS
    vid = vid_mode_from_cmdline(cmd[:-1])
    struct.pack_into("<H", setup, 0x1FA, vid)
    setup[0x210] = LOADER_TYPE
    setup[0x211] = loadflags
    struct.pack_into("<II", setup, 0x218, initrd_addr, len(rd))
    struct.pack_into("<H", setup, 0x224, HEAP_END_PTR)
    struct.pack_into("<I", setup, 0x228, CMDLINE_ADDR)

    writes = [(SETUP_ADDR, bytes(setup)), (CMDLINE_ADDR, cmd), (KERNEL_ADDR, kernel)]
    if rd:
        writes.append((initrd_addr, rd))
    return LinuxPlan(writes=writes, protocol=version, setup_addr=SETUP_ADDR,
                     setup_size=setup_size, setup=bytes(setup), kernel_addr=KERNEL_ADDR,
                     kernel=kernel, cmdline_addr=CMDLINE_ADDR, cmdline=cmd,
                     initrd_addr=initrd_addr, initrd=rd, heap_end_ptr=HEAP_END_PTR,
                     stack_pointer=STACK_POINTER, vid_mode=vid, loadflags=loadflags,
                     header=hdr, warnings=warnings)


# --------------------------------------------------------------------------------------------
# Booting after a BIOS's POST
# --------------------------------------------------------------------------------------------
def entry_code(plan: LinuxPlan) -> tuple[int, bytes]:
    """The real-mode code that enters the kernel as "Running the Kernel" requires (Aero's own
    encoding): (physical address, bytes), entered at CS:IP = ENTRY_CODE_ADDR >> 4 : 0::

        cli
        mov ax, X >> 4 / mov ds, es, fs, gs, ss    the real-mode code's segment
        mov sp, SP                                 the top of its heap/stack
        jmp (X >> 4) + 20h : 0                     the setup's entry (offset 200h)
    """
    seg = plan.setup_seg
    code = bytearray(b"\xFA")                            # cli
    code += b"\xB8" + struct.pack("<H", seg)             # mov ax, seg
    for modrm in (0xD8, 0xC0, 0xE0, 0xE8, 0xD0):         # mov ds/es/fs/gs/ss, ax
        code += bytes((0x8E, modrm))
    code += b"\xBC" + struct.pack("<H", plan.stack_pointer)          # mov sp, imm16
    code += b"\xEA" + struct.pack("<HH", 0, seg + 0x20)             # jmp far seg+20h:0
    assert len(code) <= ENTRY_FRAME_SP
    return ENTRY_CODE_ADDR, bytes(code)


def load_after_post(bus, plan: LinuxPlan) -> tuple[int, int, int, int]:
    """The Linux boot entry of the Aero BIOS (``AeroBIOS.boot_first``), run after every POST:
    write the setup, command line, kernel, initrd and the entry code into RAM and return
    (CS, IP, SS, SP) for the BIOS's real-mode jump (its RETF frame at SS:SP, after the entry
    code).  What POST set up stays as it left it."""
    addr, code = entry_code(plan)
    for a, data in list(plan.writes) + [(addr, code)]:
        bus.write_bytes(a, data)
    return ENTRY_CODE_ADDR >> 4, 0, ENTRY_CODE_ADDR >> 4, ENTRY_FRAME_SP


# --------------------------------------------------------------------------------------------
# Booting under SeaBIOS: QEMU's linuxboot_dma option ROM fed through fw_cfg
# --------------------------------------------------------------------------------------------
QEMU_LINUXBOOT_ROM = "/usr/share/qemu/linuxboot_dma.bin"     # Debian: qemu-system-data
OPTION_ROM_FILE = "genroms/linuxboot_dma.bin"
# fw_cfg keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h, the fw_cfg interface)
FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE = 0x07, 0x08
FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE = 0x0A, 0x0B
FW_CFG_KERNEL_DATA, FW_CFG_INITRD_DATA = 0x11, 0x12
FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA = 0x13, 0x14, 0x15
FW_CFG_SETUP_ADDR, FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA = 0x16, 0x17, 0x18


def linuxboot_rom(path: str = QEMU_LINUXBOOT_ROM) -> bytes:
    try:
        with open(path, "rb") as f:
            rom = f.read()
    except OSError as e:
        raise ValueError(f"--kernel: a Linux kernel under --bios seabios needs QEMU's option "
                         f"ROM {path} ({e.strerror}): apt-get install qemu-system-data") \
            from None
    if rom[:2] != b"\x55\xAA" or sum(rom) & 0xFF:
        raise ValueError(f"--kernel: {path} is not an option ROM (bad signature or checksum)")
    return rom


def add_to_fw_cfg(fw_cfg, plan: LinuxPlan, rom_path: str = QEMU_LINUXBOOT_ROM) -> None:
    """Hand the kernel to SeaBIOS as QEMU does: fw_cfg's setup/kernel/initrd/command-line
    items and QEMU's linuxboot_dma.bin as genroms/linuxboot_dma.bin, first in "bootorder"."""
    rom = linuxboot_rom(rom_path)
    for a_key, s_key, d_key, addr, data in (
            (FW_CFG_SETUP_ADDR, FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA, plan.setup_addr,
             plan.setup),
            (FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_DATA, plan.kernel_addr,
             plan.kernel),
            (FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE, FW_CFG_INITRD_DATA, plan.initrd_addr,
             plan.initrd),
            (FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA, plan.cmdline_addr,
             plan.cmdline)):
        fw_cfg.add_i32(a_key, addr)
        fw_cfg.add_i32(s_key, len(data))
        fw_cfg.add_item(d_key, bytes(data))
    fw_cfg.add_file(OPTION_ROM_FILE, rom)
    fw_cfg.add_file("bootorder", f"/rom@{OPTION_ROM_FILE}\n".encode())
