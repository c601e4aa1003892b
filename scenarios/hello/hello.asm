; hello: a boot sector that prints a line through the BIOS teletype (INT 10h AH=0Eh) and COM1
; (8N1 set up first, bytes written straight to the transmitter), then exits through
; isa-debug-exit (port 0x501) with 0x21, so `aero run` / QEMU exit with status 67.
bits 16
org 0x7c00
    xor ax, ax
    mov ds, ax
    mov dx, 0x3fb
    mov al, 3
    out dx, al
    mov si, msg
.l: lodsb
    test al, al
    jz .done
    mov ah, 0x0e
    mov bx, 7
    int 0x10
    mov dx, 0x3f8
    out dx, al
    jmp .l
.done:
    mov dx, 0x501
    mov al, 0x21
    out dx, al
    cli
    hlt
msg: db "Hello from the boot sector", 13, 10, 0
times 510-($-$$) db 0
dw 0xaa55
