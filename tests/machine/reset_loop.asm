; reset_loop.asm - a bare 64 KiB firmware guest in a reboot loop.  Each start counts itself in
; RAM (RAM survives a reset), writes the count's low byte to the debug console (port E9h) and
; resets the machine again, by turns: start 1 through the keyboard controller (FEh to port 64h),
; 2 through port 92h (fast reset), 3 through port CF9h (hard reset), 4 by a triple fault (INT3
; with an empty real-mode IVT: #GP, #DF, shutdown), 5 through port 64h again, and so on.  It never
; ends by itself: `aero run --max-instructions N` must still stop at N (the count runs on across
; resets) and say how many resets there were; `--no-reboot` stops it at the first.
;
; Build: nasm -f bin -o reset_loop.bin reset_loop.asm

        org 0xF0000
        bits 16

start:  cli
        xor ax, ax
        mov ds, ax
        mov ax, [0x500]
        inc ax
        mov [0x500], ax
        out 0xE9, al                    ; the count of starts
        and al, 3
        cmp al, 1
        je by_kbc
        cmp al, 2
        je by_port92
        cmp al, 3
        je by_cf9
        lidt [cs:null_idt - $$]
        int3                            ; no IVT entry within the limit: triple fault
by_kbc: mov al, 0xFE                    ; pulse output port bit 0: system reset
        out 0x64, al
        jmp $
by_port92:
        in al, 0x92
        or al, 1                        ; ALT_RESET 0 -> 1
        out 0x92, al
        jmp $
by_cf9: mov dx, 0xCF9
        mov al, 0x06                    ; SRST (hard) | RCPU
        out dx, al
        jmp $
null_idt:
        dw 0
        dd 0

        times 0xFFF0 - ($ - $$) db 0xF4
        jmp 0xF000:start - $$
        times 0x10000 - ($ - $$) db 0xF4
