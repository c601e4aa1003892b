"""Implied seek on the 82077AA (issue 10, item 2).

The Bochs BIOS reads any cylinder with READ DATA alone, never a SEEK, as the Bochs and QEMU
controllers seek implicitly whatever CONFIGURE EIS says.  Aero's controller does the same (the
data sheet does it only with EIS = 1; see aero/devices/fdc.py), reporting ST0 SE as QEMU does,
so GRUB and SYSLINUX floppies read past cylinder 0 under ``--bios bochs``.

The controller is driven through its ports (the rig of test_fdc.py); then a boot sector reads
three later cylinders through INT 13h under the Bochs BIOS (and, for comparison, SeaBIOS, which
seeks first, and the Aero BIOS).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from aero.build import build_machine
from aero.config import FIRMWARE, MachineConfig

from test_fdc import DIR, Rig, lba, sector_pattern


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    r.init()
    return r


# -- the controller ------------------------------------------------------------------------------
def test_read_data_seeks_implicitly_without_eis(rig):
    assert rig.fdc.EIS is False                       # the power-on CONFIGURE
    rig.program_dma(0x1000, 512)
    # no SEEK: the head is at cylinder 0; ST0 = SE | head 1, the sector comes from cylinder 5
    assert rig.read_data(5, 1, 3) == [0x20 | 0x04, 0, 0, 5, 1, 4, 2]
    assert bytes(rig.mem[0x1000:0x1200]) == sector_pattern(lba(5, 1, 3))
    assert rig.fdc.drives[0].PCN == 5
    # backwards, to cylinder 2
    rig.program_dma(0x1000, 1024)
    assert rig.read_data(2, 0, 17) == [0x20, 0, 0, 3, 0, 1, 2]    # TC at EOT: next cylinder
    assert bytes(rig.mem[0x1000:0x1400]) == (sector_pattern(lba(2, 0, 17))
                                             + sector_pattern(lba(2, 0, 18)))
    # the same cylinder again: no seek, no SE
    rig.program_dma(0x1000, 512)
    assert rig.read_data(2, 0, 1) == [0x00, 0, 0, 2, 0, 2, 2]
    # the controller's cylinder moved: SENSE DRIVE STATUS says not track 0, a SEEK starts there
    rig.command(0x04, 0x00)
    assert not rig.results()[0] & 0x10
    rig.seek(0)


def test_read_data_seeks_implicitly_with_eis(rig):
    rig.command(0x13, 0x00, 0x40 | 0x20, 0x00)        # CONFIGURE: EIS, FIFO disabled
    rig.program_dma(0x1000, 512)
    assert rig.read_data(40, 0, 9) == [0x20, 0, 0, 40, 0, 10, 2]
    assert bytes(rig.mem[0x1000:0x1200]) == sector_pattern(lba(40, 0, 9))


def test_write_data_seeks_implicitly(rig):
    data = bytes((i * 29) & 0xFF for i in range(512))
    rig.mem[0x4000:0x4200] = data
    rig.program_dma(0x4000, 512, to_memory=False)
    rig.command(0x45, 0x00, 7, 0, 2, 2, 18, 0x1B, 0xFF)
    rig.advance()
    assert rig.results(7) == [0x20, 0, 0, 7, 0, 3, 2]
    assert rig.image.read(lba(7, 0, 2), 1) == data
    assert rig.image.read(lba(0, 0, 2), 1) == sector_pattern(lba(0, 0, 2))   # not cylinder 0


def test_implied_seek_clears_disk_change(rig):
    assert rig.r(DIR) & 0x80                          # changed since power-on
    rig.program_dma(0x1000, 512)
    rig.read_data(3, 0, 1)
    assert not rig.r(DIR) & 0x80                      # the head stepped with a diskette in


def test_implied_seek_beyond_the_medium_finds_no_address_mark(rig):
    rig.program_dma(0x1000, 512)
    assert rig.read_data(80, 0, 1)[:3] == [0x20 | 0x40, 0x01, 0x00]   # SE, abnormal, MA
    assert rig.dma.remaining(2) == 512
    rig.program_dma(0x1000, 512)                      # and back onto the medium
    assert rig.read_data(79, 1, 18) == [0x20 | 0x04, 0, 0, 80, 1, 1, 2]   # TC at EOT
    assert bytes(rig.mem[0x1000:0x1200]) == sector_pattern(lba(79, 1, 18))


# -- a boot sector reading later cylinders through INT 13h -------------------------------------
BOOT_ASM = r"""
bits 16
org 0x7C00
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov si, reads
.next:
    lodsw                          ; CX: cylinder in CH, sector in CL
    test ax, ax
    jz .ok
    mov cx, ax
    lodsw                          ; DH: head
    mov dx, ax
    mov dl, 0                      ; drive A:
    push si
    mov di, 3                      ; three tries, as boot loaders do
.try:
    mov ax, 0x0201                 ; read one sector
    mov bx, 0x8000
    int 0x13
    jnc .read
    mov al, ah
    dec di
    jz .fail
    xor ax, ax                     ; reset the controller, retry
    int 0x13
    jmp .try
.read:
    pop si
    ; the sector starts with its CHS: C (byte), H (byte), S (byte)
    cmp [0x8000], ch
    jne .bad
    cmp [0x8001], dh
    jne .bad
    cmp [0x8002], cl
    jne .bad
    mov al, ch                     ; progress on COM1: the cylinder in decimal, a space
    aam
    add ax, 0x3030
    xchg al, ah
    call putc
    xchg al, ah
    call putc
    mov al, ' '
    call putc
    jmp .next
.ok:
    mov si, okmsg
.print:
    lodsb
    test al, al
    jz .exit
    call putc
    jmp .print
.exit:
    mov al, 0x10
    jmp .out
.bad:
    mov al, 0x7E
    jmp .out
.fail:
    or al, 0x80                    ; INT 13h status with bit 7: a read error
.out:
    mov dx, 0x501
    out dx, al
    cli
    hlt

putc:                              ; AL to COM1 (the BIOS initialised it)
    push dx
    push ax
    mov dx, 0x3FD
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop ax
    mov dx, 0x3F8
    out dx, al
    pop dx
    ret

reads:                             ; CX (CH cylinder, CL sector), DH head
    dw (5 << 8) | 3, 0x0100
    dw (79 << 8) | 18, 0x0100
    dw (1 << 8) | 1, 0x0000
    dw 0
okmsg: db "OK", 13, 10, 0
    times 510 - ($ - $$) db 0
    dw 0xAA55
"""


def floppy_image(tmp_path) -> str:
    """A 1.44 MB image: the boot sector, then every sector starting with its C, H, S."""
    src = tmp_path / "boot.asm"
    src.write_text(BOOT_ASM)
    subprocess.run(["nasm", "-f", "bin", "-o", str(tmp_path / "boot.bin"), str(src)],
                   check=True)
    img = bytearray()
    for c in range(80):
        for h in range(2):
            for s in range(1, 19):
                img += bytes([c, h, s]) + bytes(range(256))[:253] + bytes(256)
    boot = (tmp_path / "boot.bin").read_bytes()
    assert len(boot) == 512
    img[:512] = boot
    path = tmp_path / "cyl.img"
    path.write_bytes(bytes(img))
    return str(path)


FIRMWARES = [
    pytest.param("bochs", marks=pytest.mark.skipif(
        not os.path.exists(FIRMWARE["bochs"][0]), reason="bochsbios not installed")),
    pytest.param("seabios", marks=pytest.mark.skipif(
        not os.path.exists(FIRMWARE["seabios"][0]), reason="seabios not installed")),
    "aero",
]


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
@pytest.mark.parametrize("bios", FIRMWARES)
def test_boot_sector_reads_later_cylinders(bios, tmp_path):
    out = bytearray()
    m = build_machine(MachineConfig(bios=bios, fda=floppy_image(tmp_path),
                                    serial=out.append))
    r = m.run(timeout=300)
    assert (r.status, r.exit_code) == ("debug-exit", (0x10 << 1) | 1), (r, bytes(out))
    assert bytes(out).endswith(b"05 79 01 OK\r\n"), bytes(out)
