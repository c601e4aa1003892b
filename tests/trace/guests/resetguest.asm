; resetguest.asm - a bare 64 KiB firmware guest that resets the machine twice by triple fault
; (INT3 with an empty real-mode IVT: #GP, #DF, shutdown), counting the resets in RAM, then exits
; through isa-debug-exit (port 0x501).  For `aero trace`: the instruction count runs on across
; resets, each reset is an event; QEMU resets on a triple fault too, so the logs still line up.
;
; Build: nasm -f bin -o resetguest.bin resetguest.asm

        org 0xF0000
        bits 16

start:  cli
        xor bx, bx
        mov ds, bx
        inc word [0x500]                ; RAM survives a reset
        cmp word [0x500], 3
        jae done
        lidt [cs:null_idt - $$]
        int3                            ; no IVT entry within the limit: triple fault
done:   mov dx, 0x501
        mov al, 0
        out dx, al
        hlt
null_idt:
        dw 0
        dd 0

        times 0xFFF0 - ($ - $$) db 0xF4
        jmp 0xF000:start - $$
        times 0x10000 - ($ - $$) db 0xF4
