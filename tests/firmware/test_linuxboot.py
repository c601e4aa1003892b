"""The Linux/x86 boot protocol in ``aero run --kernel`` (issue 11): aero/firmware/linuxboot.py.

Two kinds of guest:

* A synthetic bzImage (``SETUP_ASM`` below, assembled with nasm at test time: a setup header
  by hand and a small real-mode setup).  Entered as Linux's setup is, it prints over port E9
  what the loader gave it (segment registers, SP, IF, the header fields the loader fills, the
  command line through cmd_line_ptr, the first bytes of the initrd and of the protected-mode
  kernel copied with INT 15h AH=87h, the E820 map it asks the BIOS for, as Linux's setup
  does) and exits through isa-debug-exit.  Its transcript under qemu-system-i386 -kernel
  (QEMU 7.2 + SeaBIOS + QEMU's linuxboot_dma.bin) is the reference: Aero's is the same but for
  type_of_loader (Aero 0xFF, "no assigned id"; QEMU 0xB0, its own) and the E820 lines (each
  BIOS's own map; Aero's are checked against the Aero BIOS's ``memory_map``).
* Debian 12's i386 kernel (linux-image-6.1.0-*-686), fetched with apt into
  /var/cache/aero/debian-i386 (``AERO_DEBIAN_I386``: another directory, or the vmlinuz file).
  Its real-mode setup checks the CPU (CPUID and an FNINIT/FNSTSW probe for the x87) and jumps
  to the protected-mode kernel, under the Aero BIOS and SeaBIOS.  The whole boot to a shell is
  tests/thirdparty/test_linux.py.
"""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from aero.build import build_machine
from aero.cli import main
from aero.config import FIRMWARE, ConfigError, MachineConfig
from aero.firmware import linuxboot as lb

NASM = shutil.which("nasm")
QEMU = shutil.which("qemu-system-i386")
SEABIOS = FIRMWARE["seabios"][0]
needs_nasm = pytest.mark.skipif(NASM is None, reason="nasm not installed")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
needs_seabios = pytest.mark.skipif(
    not Path(SEABIOS).exists() or not Path(lb.QEMU_LINUXBOOT_ROM).exists(),
    reason="seabios or qemu-system-data (linuxboot_dma.bin) not installed")

KSIZE = 4096                    # the synthetic protected-mode kernel
SETUP_SECTS = 2

SETUP_ASM = r"""
; A synthetic bzImage for tests/firmware/test_linuxboot.py: the setup header by hand, then a
; real-mode setup that reports what the boot loader gave it on port E9 and exits (port 501h).
bits 16
org 0
%ifndef VERSION
%define VERSION 0x020F
%endif
%ifndef LOADFLAGS
%define LOADFLAGS 0x01
%endif
%ifndef INITRD_MAX
%define INITRD_MAX 0x7FFFFFFF
%endif
        times 0x1F1 - ($ - $$) db 0
        db SETUP_SECTS                  ; 1F1 setup_sects
        dw 0                            ; 1F2 root_flags
        dd KSIZE / 16                   ; 1F4 syssize
        dw 0                            ; 1F8 ram_size
        dw 0x1234                       ; 1FA vid_mode (the loader sets it)
        dw 0                            ; 1FC root_dev
        dw 0xAA55                       ; 1FE boot_flag
        jmp short start                 ; 200 jump
        db "HdrS"                       ; 202 header
        dw VERSION                      ; 206 version
        dd 0                            ; 208 realmode_swtch
        dw 0, 0                         ; 20C start_sys_seg, kernel_version
        db 0                            ; 210 type_of_loader
        db LOADFLAGS                    ; 211 loadflags
        dw 0                            ; 212 setup_move_size
        dd 0x100000                     ; 214 code32_start
        dd 0, 0, 0                      ; 218 ramdisk_image, ramdisk_size, bootsect_kludge
        dw 0                            ; 224 heap_end_ptr
        db 0, 0                         ; 226 ext_loader_ver, ext_loader_type
        dd 0                            ; 228 cmd_line_ptr
        dd INITRD_MAX                   ; 22C initrd_addr_max
        dd 0x100000                     ; 230 kernel_alignment
        db 0, 0                         ; 234 relocatable_kernel, min_alignment
        dw 0                            ; 236 xloadflags
        dd 255                          ; 238 cmdline_size
        dd 0                            ; 23C hardware_subarch
        dq 0                            ; 240 hardware_subarch_data
        dd 0, 0                         ; 248 payload_offset, payload_length
        dq 0                            ; 250 setup_data
        dq 0x100000                     ; 258 pref_address
        dd 0x10000                      ; 260 init_size
        dd 0, 0                         ; 264 handover_offset, kernel_info_offset
start:                                  ; CS = X/16 + 20h: CS-relative offset = label - 200h
        pushf
        pop word [cs:save_fl - 0x200]
        mov [cs:save_sp - 0x200], sp
        mov [cs:save_ss - 0x200], ss
        mov [cs:save_ds - 0x200], ds
        mov [cs:save_es - 0x200], es
        mov [cs:save_fs - 0x200], fs
        mov [cs:save_gs - 0x200], gs
        mov ax, cs
        sub ax, 0x20
        mov ds, ax                      ; DS = ES = X/16 from CS, whatever the loader did
        mov es, ax
        cld
        mov si, s_entry
        mov ax, cs
        call field4
        mov si, s_ds
        mov ax, [save_ds]
        call field4
        mov si, s_es
        mov ax, [save_es]
        call field4
        mov si, s_fs
        mov ax, [save_fs]
        call field4
        mov si, s_gs
        mov ax, [save_gs]
        call field4
        mov si, s_ss
        mov ax, [save_ss]
        call field4
        mov si, s_sp
        mov ax, [save_sp]
        call field4
        mov si, s_if
        mov ax, [save_fl]
        shr ax, 9
        and ax, 1
        movzx eax, ax
        mov cx, 1
        call field
        call nl
        mov si, s_loader
        movzx eax, byte [0x210]
        mov cx, 2
        call field
        call nl
        mov si, s_hdr
        movzx eax, byte [0x211]
        mov cx, 2
        call field
        mov si, s_heap
        mov ax, [0x224]
        call field4
        mov si, s_cmdptr
        mov eax, [0x228]
        mov cx, 8
        call field
        mov si, s_vid
        mov ax, [0x1FA]
        call field4
        call nl
        mov si, s_rd
        mov eax, [0x218]
        mov cx, 8
        call field
        mov si, s_rdsize
        mov eax, [0x21C]
        mov cx, 8
        call field
        call nl
        ; the command line, through cmd_line_ptr
        mov si, s_cmdline
        call puts
        mov eax, [0x228]
        mov bx, ax
        and bx, 0x0F
        shr eax, 4
        mov fs, ax
.c:     mov al, [fs:bx]
        test al, al
        jz .cend
        call putc
        inc bx
        jmp .c
.cend:  mov al, ']'
        call putc
        call nl
        ; the initrd's first and last 16 bytes, the kernel's first 16
        mov eax, [0x21C]
        test eax, eax
        jz .nord
        mov si, s_rdhead
        mov eax, [0x218]
        call dump16
        mov si, s_rdtail
        mov eax, [0x218]
        add eax, [0x21C]
        sub eax, 16
        call dump16
.nord:  mov si, s_kernel
        mov eax, [0x214]
        call dump16
        ; the memory map, as Linux's setup asks for it
        xor ebx, ebx
.e:     mov eax, 0xE820
        mov edx, 0x534D4150
        mov ecx, 20
        mov di, e820buf
        int 0x15
        jc .edone
        cmp eax, 0x534D4150
        jne .edone
        push ebx
        mov si, s_e820
        call puts
        mov eax, [e820buf + 4]
        mov cx, 8
        call hex
        mov eax, [e820buf]
        call hex
        mov al, ' '
        call putc
        mov eax, [e820buf + 12]
        call hex
        mov eax, [e820buf + 8]
        call hex
        mov al, ' '
        call putc
        mov eax, [e820buf + 16]
        mov cx, 1
        call hex
        call nl
        pop ebx
        test ebx, ebx
        jnz .e
.edone: mov si, s_done
        call puts
        mov dx, 0x501
        mov al, 0x10
        out dx, al                      ; exit status (10h << 1) | 1 = 33
        cli
        hlt

putc:   push dx
        mov dx, 0xE9
        out dx, al
        pop dx
        ret
puts:   lodsb
        test al, al
        jz .d
        call putc
        jmp puts
.d:     ret
nl:     mov al, 10
        jmp putc
field4: movzx eax, ax
        mov cx, 4
field:  push eax                        ; SI = label, EAX = value, CX = hex digits
        call puts
        pop eax
hex:    pushad
        mov ebx, eax
.l:     dec cx
        mov eax, ebx
        push cx
        shl cx, 2
        shr eax, cl
        pop cx
        and al, 0x0F
        add al, '0'
        cmp al, '9'
        jbe .p
        add al, 7
.p:     call putc
        test cx, cx
        jnz .l
        popad
        ret
dump16:                                 ; SI = label, EAX = physical address: 16 bytes in hex
        push eax
        call puts
        pop eax
        pushad
        mov [gdt87 + 0x12], ax
        shr eax, 16
        mov [gdt87 + 0x14], al
        mov [gdt87 + 0x17], ah
        mov ax, ds
        movzx eax, ax
        shl eax, 4
        add eax, buf
        mov [gdt87 + 0x1A], ax
        shr eax, 16
        mov [gdt87 + 0x1C], al
        mov [gdt87 + 0x1F], ah
        mov si, gdt87
        mov cx, 8
        mov ah, 0x87
        int 0x15
        mov si, buf
        mov bx, 16
.b:     lodsb
        movzx eax, al
        mov cx, 2
        call hex
        dec bx
        jnz .b
        call nl
        popad
        ret

s_entry:  db "cs ", 0
s_ds:     db " ds ", 0
s_es:     db " es ", 0
s_fs:     db " fs ", 0
s_gs:     db " gs ", 0
s_ss:     db " ss ", 0
s_sp:     db " sp ", 0
s_if:     db " if ", 0
s_loader: db "type_of_loader ", 0
s_hdr:    db "loadflags ", 0
s_heap:   db " heap_end_ptr ", 0
s_cmdptr: db " cmd_line_ptr ", 0
s_vid:    db " vid_mode ", 0
s_rd:     db "ramdisk_image ", 0
s_rdsize: db " ramdisk_size ", 0
s_cmdline: db "cmdline [", 0
s_rdhead: db "initrd head ", 0
s_rdtail: db "initrd tail ", 0
s_kernel: db "kernel ", 0
s_e820:   db "e820 ", 0
s_done:   db "done", 10, 0
save_fl:  dw 0
save_sp:  dw 0
save_ss:  dw 0
save_ds:  dw 0
save_es:  dw 0
save_fs:  dw 0
save_gs:  dw 0
align 8
gdt87:    times 0x10 db 0
          dw 0xFFFF, 0
          db 0, 0x93, 0, 0
          dw 0xFFFF, 0
          db 0, 0x93, 0, 0
          times 0x10 db 0
buf:      times 16 db 0
e820buf:  times 24 db 0
        times (SETUP_SECTS + 1) * 512 - ($ - $$) db 0
"""


def kernel_body() -> bytes:
    return b"PMKERNEL" + bytes((i * 7 + 3) & 0xFF for i in range(KSIZE - 8))


def build_image(tmp_path, name="bz.bin", **defines) -> Path:
    """The synthetic bzImage: setup assembled by nasm (-D overrides), kernel appended."""
    src = tmp_path / "setup.asm"
    src.write_text(SETUP_ASM)
    out = tmp_path / (name + ".setup")
    args = [NASM, "-f", "bin", "-o", str(out), f"-DSETUP_SECTS={SETUP_SECTS}",
            f"-DKSIZE={KSIZE}"]
    args += [f"-D{k}={v:#x}" for k, v in defines.items()]
    subprocess.run(args + [str(src)], check=True)
    setup = out.read_bytes()
    assert len(setup) == (SETUP_SECTS + 1) * 512
    img = tmp_path / name
    img.write_bytes(setup + kernel_body())
    return img


INITRD = bytes((i * 13 + 5) & 0xFF for i in range(5000))


def initrd_file(tmp_path) -> Path:
    p = tmp_path / "initrd.img"
    p.write_bytes(INITRD)
    return p


def run_aero(kernel, bios="aero", limit=5_000_000, **kw):
    out = bytearray()
    m = build_machine(MachineConfig(bios=bios, kernel=str(kernel), debugcon=out.append, **kw))
    r = m.run(max_instructions=limit if bios == "aero" else 300_000_000)
    return m, r, out.decode("latin-1")


def run_qemu(tmp_path, kernel, initrd=None, append="", extra=()):
    log = tmp_path / "qemu-debugcon.log"
    args = [QEMU, "-kernel", str(kernel), "-append", append, "-display", "none",
            "-nodefaults", "-m", "32", "-debugcon", f"file:{log}", "-device",
            "isa-debug-exit,iobase=0x501,iosize=2", "-no-reboot", *extra]
    if initrd is not None:
        args += ["-initrd", str(initrd)]
    p = subprocess.run(args, timeout=60, capture_output=True)
    assert p.returncode == 33, p.stderr
    return log.read_text("latin-1")


def hexbytes(b: bytes) -> str:
    return "".join(f"{x:02X}" for x in b)


CMDLINE = "console=ttyS0 root=/dev/ram0 vga=ext quiet"


def expected_lines(initrd_addr, e820=None, loader="FF"):
    lines = [
        "cs 1020 ds 1000 es 1000 fs 1000 gs 1000 ss 1000 sp FFF0 if 0",
        f"type_of_loader {loader}",
        "loadflags 81 heap_end_ptr FE00 cmd_line_ptr 00020000 vid_mode FFFE",
        f"ramdisk_image {initrd_addr:08X} ramdisk_size {len(INITRD):08X}",
        f"cmdline [{CMDLINE}]",
        f"initrd head {hexbytes(INITRD[:16])}",
        f"initrd tail {hexbytes(INITRD[-16:])}",
        f"kernel {hexbytes(kernel_body()[:16])}",
    ]
    for base, length, typ in e820 or []:
        lines.append(f"e820 {base:016X} {length:016X} {typ}")
    return lines + ["done"]


# ---------------------------------------------------------------------------------------------
# The plan (no CPU)
# ---------------------------------------------------------------------------------------------
def synthetic_bytes(version=0x020F, loadflags=1, initrd_max=0x7FFFFFFF, setup_sects=SETUP_SECTS,
                    ksize=KSIZE, cmdline_size=255) -> bytes:
    """A setup header built in Python (for the plan tests: no nasm needed)."""
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<IHHHH", setup, 0x1F4, ksize // 16, 0, 0x1234, 0, 0xAA55)
    setup[0x200:0x202] = b"\xEB\x66"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<I", setup, 0x22C, initrd_max)
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<QI", setup, 0x258, 0x100000, 0x10000)
    return bytes(setup) + kernel_body()[:ksize]


def test_plan_layout():
    data = synthetic_bytes()
    plan = lb.load_image(data, "bz", 32 << 20, CMDLINE, INITRD, "rd")
    assert (plan.setup_addr, plan.cmdline_addr, plan.kernel_addr) == (0x10000, 0x20000, 0x100000)
    assert plan.entry == (0x1020, 0) and plan.stack_pointer == 0xFFF0
    s = plan.setup
    assert s[0x210] == 0xFF and s[0x211] == 0x81                     # CAN_USE_HEAP | LOADED_HIGH
    assert struct.unpack_from("<H", s, 0x224)[0] == 0xFE00
    assert struct.unpack_from("<I", s, 0x228)[0] == 0x20000
    assert struct.unpack_from("<H", s, 0x1FA)[0] == 0xFFFE          # vga=ext
    # the initrd: the highest page below the end of RAM (default map: 32 MiB)
    assert plan.initrd_addr == ((32 << 20) - len(INITRD)) & ~0xFFF
    assert struct.unpack_from("<II", s, 0x218) == (plan.initrd_addr, len(INITRD))
    assert dict(plan.writes) == {0x10000: s, 0x20000: CMDLINE.encode() + b"\0",
                                 0x100000: kernel_body(), plan.initrd_addr: INITRD}
    assert plan.setup_size == 3 * 512 and plan.warnings == []
    # the rest of the image is unchanged
    changed = [i for i in range(len(s)) if s[i] != data[i]]
    assert set(changed) <= {0x1FA, 0x1FB, 0x210, 0x211, *range(0x218, 0x220), 0x224, 0x225,
                            *range(0x228, 0x22C)}


def test_plan_initrd_rules():
    # below initrd_addr_max (its last byte at most initrd_addr_max)
    plan = lb.load_image(synthetic_bytes(initrd_max=0x7FFFFF), "bz", 32 << 20, "", INITRD)
    assert plan.initrd_addr == 0x7FE000
    # below the end of available RAM in the BIOS's map (here: ACPI data from 0x1FE0000)
    mm = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
          (0x100000, 0x1EE0000, 1), (0x1FE0000, 0x20000, 3)]
    plan = lb.load_image(synthetic_bytes(), "bz", 32 << 20, "", INITRD, memory_map=mm)
    assert plan.initrd_addr == (0x1FE0000 - len(INITRD)) & ~0xFFF
    # no initrd: zeros
    plan = lb.load_image(synthetic_bytes(), "bz", 32 << 20, "")
    assert struct.unpack_from("<II", plan.setup, 0x218) == (0, 0)
    assert plan.cmdline == b"\0"


@pytest.mark.parametrize("cmd, mode", [("", 0xFFFF), ("vga=normal", 0xFFFF), ("vga=ext", 0xFFFE),
                                       ("vga=ask", 0xFFFD), ("a vga=0x317 b", 0x317),
                                       ("vga=791", 791), ("vga=junk", 0xFFFF)])
def test_vid_mode_from_the_command_line(cmd, mode):
    assert lb.load_image(synthetic_bytes(), "bz", 32 << 20, cmd).vid_mode == mode


@pytest.mark.parametrize("short", [1, 8, 15])
def test_a_file_ending_inside_its_last_paragraph_loads(short):
    """syssize counts whole 16-byte paragraphs: memtest86+ 6.10's file ends 8 bytes into its
    last one (QEMU loads it); a whole paragraph missing is a truncated file."""
    data = synthetic_bytes()
    plan = lb.load_image(data[:-short], "bz", 32 << 20)
    assert plan.kernel == data[plan.setup_size:-short]
    with pytest.raises(ValueError, match="truncated"):
        lb.load_image(data[:-16], "bz", 32 << 20)


@pytest.mark.parametrize("data, match", [
    (b"\0" * 100, "file too short"),
    (synthetic_bytes()[:0x400], "truncated: 1024 bytes, its real-mode setup alone is 1536"),
    (synthetic_bytes()[:0x600 + 100], "truncated: the protected-mode kernel is 100 bytes, the "
                                      "header says 4096"),
    (synthetic_bytes(version=0x0201), r"boot protocol 2\.01 is too old"),
    (synthetic_bytes(loadflags=0), "a zImage"),
    (synthetic_bytes(setup_sects=70), "real-mode setup of 36352 bytes"),
])
def test_bad_images(data, match):
    with pytest.raises(ValueError, match="^--kernel: bz: " + match):
        lb.load_image(data, "bz", 32 << 20)


def test_bad_command_line_and_initrd():
    with pytest.raises(ValueError, match="^--append: the command line is 300 bytes; this kernel "
                                         "takes at most 255$"):
        lb.load_image(synthetic_bytes(), "bz", 32 << 20, "x" * 300)
    with pytest.raises(ValueError, match=r"^--initrd: rd: the initrd \(1572864 bytes\) does not "
                                         r"fit .* and 0x200000 .*: the kernel's "
                                         r"initrd_addr_max is 0x1fffff$"):
        lb.load_image(synthetic_bytes(initrd_max=0x1FFFFF), "bz", 32 << 20, "",
                      bytes(0x180000), "rd")
    with pytest.raises(ValueError,
                       match=r"^--initrd: rd: the initrd \(3145728 bytes\) does not fit"):
        lb.load_image(synthetic_bytes(), "bz", 3 << 20, "", bytes(3 << 20), "rd")


def test_init_size_warning():
    data = bytearray(synthetic_bytes())
    struct.pack_into("<I", data, 0x260, 40 << 20)                       # init_size 40 MiB
    plan = lb.load_image(bytes(data), "bz", 32 << 20, "")
    assert len(plan.warnings) == 1 and "to decompress (init_size)" in plan.warnings[0]


# ---------------------------------------------------------------------------------------------
# `aero run`: one line, exit status 2
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, line", [
    ("garbage", "aero: --kernel: {k}: not a kernel: no Linux setup header (\"HdrS\" at 0x202) "
                "and no multiboot header (magic 0x1BADB002) in the first 8192 bytes"),
    ("truncated", "aero: --kernel: {k}: truncated: the protected-mode kernel is 100 bytes, the "
                  "header says 4096"),
    ("old", "aero: --kernel: {k}: boot protocol 2.01 is too old (Aero loads 2.02 and later)"),
    ("big-initrd", "aero: --initrd: {rd}: the initrd (3145728 bytes) does not fit in available "
                   "RAM between the kernel's end (0x101000) and 0x1f0000 (at most 978944 bytes): "
                   "give more --memory"),
    ("module", "aero: --kernel: {k} is a Linux kernel: --module is for multiboot kernels (give "
               "its initrd with --initrd)"),
    ("both", "aero: --append and --cmdline both give the kernel's command line: give one"),
])
def test_cli_errors(tmp_path, capsys, case, line):
    k = tmp_path / "k.bin"
    rd = tmp_path / "rd.img"
    rd.write_bytes(bytes(3 << 20))
    args = ["run", "--headless", "--kernel", str(k)]
    k.write_bytes(synthetic_bytes())
    if case == "garbage":
        k.write_bytes(b"hello" * 1000)
    elif case == "truncated":
        k.write_bytes(synthetic_bytes()[:0x600 + 100])
    elif case == "old":
        k.write_bytes(synthetic_bytes(version=0x0201))
    elif case == "big-initrd":
        args += ["--initrd", str(rd), "--memory", "2"]
    elif case == "module":
        args += ["--module", str(rd)]
    elif case == "both":
        args += ["--append", "a", "--cmdline", "b"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == line.format(k=k, rd=rd) + "\n"


def test_config_needs_a_kernel():
    with pytest.raises(ConfigError, match="--initrd and --append need --kernel"):
        MachineConfig(initrd="rd")
    with pytest.raises(ConfigError, match="--initrd and --append need --kernel"):
        MachineConfig(append="x")
    cfg = MachineConfig(kernel="k", initrd="rd", append="x")
    assert cfg.hardware()["initrd"] == os.path.abspath("rd") and cfg.hardware()["append"] == "x"


# ---------------------------------------------------------------------------------------------
# The synthetic setup under the Aero BIOS and under QEMU
# ---------------------------------------------------------------------------------------------
@needs_nasm
@pytest.mark.parametrize("jit", ["off", "on"])
def test_synthetic_setup_under_the_aero_bios(tmp_path, jit):
    img = build_image(tmp_path)
    rd = initrd_file(tmp_path)
    m, r, out = run_aero(img, append=CMDLINE, initrd=str(rd), jit=jit)
    assert (r.status, r.exit_code) == ("debug-exit", 33), out
    emap = m.aero_bios.memory_map()
    ram_top = max(b + n for b, n, t in emap if t == 1)
    addr = (ram_top - len(INITRD)) & ~0xFFF
    assert out.splitlines() == expected_lines(addr, emap)
    m.close()


@needs_nasm
def test_cmdline_is_an_alias_and_no_initrd(tmp_path):
    img = build_image(tmp_path)
    m, r, out = run_aero(img, cmdline="hello world")
    assert r.exit_code == 33, out
    lines = out.splitlines()
    assert "ramdisk_image 00000000 ramdisk_size 00000000" in lines
    assert "cmdline [hello world]" in lines and not any("initrd" in ln for ln in lines)
    assert "loadflags 81 heap_end_ptr FE00 cmd_line_ptr 00020000 vid_mode FFFF" in lines
    m.close()


@needs_nasm
def test_reset_loads_the_kernel_again(tmp_path):
    """Every POST loads the kernel again (QEMU runs its option ROM again)."""
    img = build_image(tmp_path)
    out = bytearray()
    m = build_machine(MachineConfig(kernel=str(img), append="x", debugcon=out.append))
    assert m.run(max_instructions=5_000_000).exit_code == 33
    first = bytes(out)
    m.bus.write_bytes(0x10000, bytes(0x600))                 # the setup is gone
    m.reset()
    m.exit_status = None
    assert m.run(max_instructions=m.cpu.icount + 5_000_000).exit_code == 33
    assert bytes(out) == first * 2
    m.close()


@needs_nasm
@needs_qemu
def test_synthetic_setup_matches_qemu(tmp_path):
    """QEMU's transcript, line for line, but for type_of_loader and the E820 map; the initrd
    placed by the same rule (initrd_addr_max 0x7FFFFF: the page below 8 MiB under both)."""
    img = build_image(tmp_path, INITRD_MAX=0x7FFFFF)
    rd = initrd_file(tmp_path)
    ref = run_qemu(tmp_path, img, rd, CMDLINE).splitlines()
    m, r, out = run_aero(img, append=CMDLINE, initrd=str(rd))
    assert r.exit_code == 33, out
    got = out.splitlines()
    strip = [ln for ln in ref if not ln.startswith("e820 ")]
    assert strip == expected_lines(0x7FE000, loader="B0")
    assert [ln for ln in got if not ln.startswith("e820 ")] == [
        ln.replace("type_of_loader B0", "type_of_loader FF") for ln in strip]
    assert len([ln for ln in ref if ln.startswith("e820 ")]) >= 4
    m.close()


@needs_nasm
@needs_seabios
def test_synthetic_setup_under_seabios(tmp_path):
    """--bios seabios: fw_cfg's Linux items and QEMU's linuxboot_dma.bin, as under QEMU."""
    img = build_image(tmp_path, INITRD_MAX=0x7FFFFF)
    rd = initrd_file(tmp_path)
    m, r, out = run_aero(img, bios="seabios", append=CMDLINE, initrd=str(rd))
    assert r.exit_code == 33, out
    got = [ln for ln in out[out.index("cs 1020"):].splitlines() if not ln.startswith("e820 ")]
    assert got == expected_lines(0x7FE000)
    m.close()


# ---------------------------------------------------------------------------------------------
# Debian's i386 kernel
# ---------------------------------------------------------------------------------------------
DEBIAN_DIR = "/var/cache/aero/debian-i386"
FPU_MESSAGE = ["This kernel requires the following features not present on the CPU:", "fpu",
               "Unable to boot - please use a kernel appropriate for your CPU."]


def debian_kernel() -> str:
    """vmlinuz of Debian 12's linux-image-6.1.0-*-686: $AERO_DEBIAN_I386 (a file or a
    directory), else /var/cache/aero/debian-i386, fetched there with apt-get download when
    missing (needs root, the i386 architecture enabled and Debian's archive); skips with the
    reason when out of reach."""
    where = os.environ.get("AERO_DEBIAN_I386", DEBIAN_DIR)
    if os.path.isfile(where):
        return where
    found = sorted(glob.glob(os.path.join(where, "vmlinuz-6.1.0-*-686")))
    if found:
        return found[-1]
    why = _fetch_debian_kernel(where)
    found = sorted(glob.glob(os.path.join(where, "vmlinuz-6.1.0-*-686")))
    if not found:
        pytest.skip(f"Debian's i386 kernel is not in {where} and could not be fetched ({why}); "
                    f"see tests/firmware/test_linuxboot.py debian_kernel()")
    return found[-1]


def _fetch_debian_kernel(where: str) -> str:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return "no apt-get/dpkg-deb"
    try:
        os.makedirs(where, exist_ok=True)
        arches = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                                text=True, timeout=30).stdout.split()
        if "i386" not in arches:
            return "the i386 architecture is not enabled (dpkg --add-architecture i386 && " \
                   "apt-get update)"
        names = subprocess.run(["apt-cache", "search", "--names-only",
                                r"^linux-image-6\.1\.0-[0-9]+-686$"],
                               capture_output=True, text=True, timeout=60).stdout.split("\n")
        pkgs = sorted((ln.split()[0] for ln in names if ln.strip()),
                      key=lambda n: int(n.split("-")[3]))
        if not pkgs:
            return "apt-cache knows no linux-image-6.1.0-*-686"
        p = subprocess.run(["apt-get", "download", pkgs[-1]], cwd=where, capture_output=True,
                           text=True, timeout=300)
        debs = sorted(glob.glob(os.path.join(where, pkgs[-1] + "_*.deb")))
        if p.returncode or not debs:
            return f"apt-get download {pkgs[-1]} failed: {p.stderr.strip()[-200:]}"
        tmp = os.path.join(where, "extract")
        subprocess.run(["dpkg-deb", "-x", debs[-1], tmp], check=True, timeout=300)
        for v in glob.glob(os.path.join(tmp, "boot", "vmlinuz-*")):
            shutil.copy(v, where)
        shutil.rmtree(tmp, ignore_errors=True)
        return "fetched"
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)


def screen_lines(m) -> list[str]:
    d = m.bus.read_bytes(0xB8000, 80 * 25 * 2)
    rows = [bytes(d[r * 160 + 2 * c] for c in range(80)).decode("cp437").rstrip()
            for r in range(25)]
    return [r for r in rows if r]


def _run_to_the_kernel(m, limit):
    """Run until the setup jumps to the protected-mode kernel (code32_start, 1 MiB) or the
    limit; the screen's lines."""
    m.hooks.exec(lambda mach, addr: mach.cpu.mode == "protected32", 0x100000)
    m.run(max_instructions=limit)
    return screen_lines(m)


@pytest.mark.parametrize("bios", ["aero", pytest.param("seabios", marks=needs_seabios)])
def test_debian_kernel_passes_its_cpu_check(bios):
    """The setup's CPU check (CPUID, and has_fpu(): FNINIT, FNSTSW, FNSTCW) finds the x87 and
    everything else the 686 kernel requires, and jumps to the protected-mode kernel.  (Before
    Aero had an x87 it stopped with QEMU's ``-cpu qemu32,-fpu`` text, ``FPU_MESSAGE``.)"""
    m = build_machine(MachineConfig(kernel=debian_kernel(), append="console=ttyS0", memory=64,
                                    bios=bios))
    lines = _run_to_the_kernel(m, 20_000_000)
    assert m.cpu.mode == "protected32" and m.cpu.eip == 0x100000, (hex(m.cpu.eip), lines)
    assert FPU_MESSAGE[0] not in lines
    assert m.cpu.fpu.cw == 0x037F               # the probe's FNINIT
    m.close()


def _text(d: bytes) -> str:
    return "\n".join(bytes(d[r * 160 + 2 * c] for c in range(80)).decode("cp437").rstrip()
                     for r in range(25))


# ---------------------------------------------------------------------------------------------
# Saved states; --initrd and --append for a multiboot kernel
# ---------------------------------------------------------------------------------------------
@needs_nasm
@pytest.mark.parametrize("cut", [10, 40, 300])
def test_state_saved_around_the_boot_restores_exactly(tmp_path, cut):
    """The loader keeps no state of its own: a state saved in POST, in the entry code or in the
    setup, restored into a machine built from the same configuration, ends the same."""
    img = build_image(tmp_path)
    rd = initrd_file(tmp_path)

    def make(out):
        return build_machine(MachineConfig(kernel=str(img), initrd=str(rd), append=CMDLINE,
                                           debugcon=out.append))
    whole, before, after = bytearray(), bytearray(), bytearray()
    m = make(whole)
    assert m.run(max_instructions=5_000_000).exit_code == 33
    end = (m.cpu.icount, m.state_hash())
    m1 = make(before)
    m1.run(max_instructions=cut)
    m2 = make(after)
    m2.set_state(m1.get_state())
    assert m2.run(max_instructions=5_000_000).exit_code == 33
    assert (m2.cpu.icount, m2.state_hash()) == end and before + after == whole
    for x in (m, m1, m2):
        x.close()


SCENARIO_KERNEL = Path(__file__).parents[2] / "scenarios" / "multiboot" / "kernel.bin"


def test_multiboot_kernel_takes_initrd_as_a_module_and_append_as_cmdline(tmp_path):
    """QEMU's -initrd and -append for a multiboot kernel: one more module, the command line."""
    rd = initrd_file(tmp_path)
    m = build_machine(MachineConfig(kernel=str(SCENARIO_KERNEL), initrd=str(rd), append="a b",
                                    jit="off"))
    m.run(max_instructions=200)
    mbi = 0x9500
    flags, = struct.unpack("<I", m.bus.read_bytes(mbi, 4))
    cmdline, count, mods = struct.unpack("<III", m.bus.read_bytes(mbi + 16, 12))
    assert flags & 0x0C == 0x0C and count == 1
    start, end, mcmd = struct.unpack("<III", m.bus.read_bytes(mods, 12))
    assert m.bus.read_bytes(start, end - start) == INITRD
    assert m.bus.read_bytes(mcmd, len(str(rd)) + 1) == str(rd).encode() + b"\0"
    assert m.bus.read_bytes(cmdline, 200).split(b"\0")[0] == f"{SCENARIO_KERNEL} a b".encode()
    m.close()
