; sections.asm: a real-mode program assembled at offset 0 (org 0) to be loaded at 1000:0000
; (linear 0x10000: load its map with bias 0x10000), for tests/debug/test_symbols.py.  It has a
; data section that follows the code, a section assembled for another address (vstart) that the
; program copies there before running it, and an uninitialised (nobits) section:
;     nasm -f bin -o sections.bin sections.asm
[map all sections.map]
        bits 16
        org 0

STACK_SIZE      equ 0x200
RELOC_SIZE      equ relocated.end - relocated

        section .text
entry:
        mov ax, cs
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, stack + STACK_SIZE
        mov si, section..reloc.start    ; where the relocated part is in the image
        mov di, relocated               ; where it was assembled to run
        mov cx, RELOC_SIZE
        cld
        rep movsb
        jmp relocated
.spin:  jmp .spin

        section .data follows=.text align=16
message:
        db "sections", 0
.end:
counter:
        dw 0

        section .reloc follows=.data align=16 vstart=0x8000
relocated:
        inc word [counter]
        mov si, message
.loop:  lodsb
        test al, al
        jnz .loop
        hlt
.end:

        section .bss follows=.reloc nobits align=16
stack:  resb STACK_SIZE
buffer: resb 256
