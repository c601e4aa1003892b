; boot.asm: a boot sector (org 0x7C00) for tests/debug/test_symbols.py.  It prints a line on COM1
; and halts.  The [map all] directive makes NASM write boot.map beside boot.bin:
;     nasm -f bin -o boot.bin boot.asm
[map all boot.map]
        bits 16
        org 0x7C00

COM1            equ 0x3F8               ; constants: in the map's "No Section" table
GREETING_LEN    equ greeting.end - greeting

        absolute 0x46C                  ; an absolute label (also "No Section"): the BDA tick count
bios_ticks:     resd 1

        section .text
start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7C00
        sti
        mov si, greeting
        mov cx, GREETING_LEN
        call print
.wait:  hlt                             ; a local label: NASM reports it as start.wait
        jmp .wait

print:                                  ; print CX bytes from DS:SI on COM1
        mov dx, COM1
.next:  lodsb
        out dx, al
        loop .next
        ret

greeting:
        db "symbols", 13, 10
.end:
        times 510 - ($ - $$) db 0
boot_signature:
        dw 0xAA55
