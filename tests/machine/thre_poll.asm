; thre_poll: write a line to COM1 (8N1) polling LSR.THRE before every byte, as careful
; firmware does, then exit through isa-debug-exit (0x501) with 0.  Regression guest: the UART's
; "transmitter empty" event, scheduled by the guest's OUT, must fire at its own tick and not at
; the end of the CPU's time slice.
bits 16
org 0
start:
    mov dx, 0x3fb
    mov al, 3
    out dx, al
    mov si, msg
.l: cs lodsb
    test al, al
    jz .done
    mov bl, al
    mov dx, 0x3fd
.w: in al, dx
    test al, 0x20
    jz .w
    mov al, bl
    mov dx, 0x3f8
    out dx, al
    jmp .l
.done:
    mov dx, 0x501
    mov al, 0
    out dx, al
    hlt
msg: db "polled THRE output", 10, 0
    times 0xFFF0 - ($ - $$) db 0xFF
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0xFF
