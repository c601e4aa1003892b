; input_echo: set up the i8042 (translation on) and COM1 (8N1), echo COM1 input to the debug
; console until a newline, then print the first four bytes the keyboard controller delivers
; (set-1 scancodes) in hex, then exit through isa-debug-exit (0x501) with 0x20.
; A 64 KiB ROM started at the reset vector.
bits 16
org 0
start:
    cli
    mov al, 0x60                    ; i8042: write command byte
    out 0x64, al
    mov al, 0x40                    ; XLAT on, interrupts off, both ports enabled
    out 0x60, al
    mov al, 0xAE                    ; enable the keyboard interface
    out 0x64, al
    mov dx, 0x3FB                   ; COM1 LCR: 8 data bits, no parity, 1 stop bit
    mov al, 0x03
    out dx, al
    mov dx, 0x3FD                   ; COM1 LSR
.serial:
    in al, dx
    test al, 1                      ; DR: a byte is waiting
    jz .serial
    mov dx, 0x3F8
    in al, dx
    mov dx, 0xE9
    out dx, al
    mov dx, 0x3FD
    cmp al, 10
    jne .serial

    mov cx, 4
.key:
    in al, 0x64
    test al, 1                      ; OBF
    jz .key
    in al, 0x60
    call hex
    loop .key
    mov al, 10
    out 0xE9, al
    mov dx, 0x501
    mov al, 0x20
    out dx, al
    hlt

hex:                                ; print AL as two hex digits and a space
    push ax
    shr al, 4
    call .digit
    pop ax
    and al, 0x0F
    call .digit
    mov al, ' '
    out 0xE9, al
    ret
.digit:
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 7
.out:
    out 0xE9, al
    ret

    times 0xFFF0 - ($ - $$) db 0xFF
reset:
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0xFF
