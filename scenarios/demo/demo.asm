; demo: the built-in demo of `aero run` (no arguments).  A boot sector that greets on the screen
; and on COM1, draws a colour pattern in VGA mode 13h, waits one second of virtual time, writes
; a closing line and powers the machine off through ACPI (PM1a_CNT: SLP_TYP S5 | SLP_EN), so the
; run ends by itself with exit status 0.  Booted from a floppy by the Aero BIOS.
bits 16
org 0x7C00

PM1A_CNT equ 0x604                      ; PIIX4 PM block at 0x600 (set up by the BIOS)

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov si, hello
    call print
    mov ax, 0x0013                      ; 320x200, 256 colours
    int 0x10
    push word 0xA000
    pop es
    xor di, di
    xor dx, dx                          ; y
.row:
    xor cx, cx                          ; x
.col:
    mov ax, cx                          ; colour = (x ^ y) + (x * y >> 6)
    xor ax, dx
    mov bx, ax
    mov ax, cx
    mul dl
    shr ax, 6
    add ax, bx
    stosb
    inc cx
    cmp cx, 320
    jb .col
    inc dx
    cmp dx, 200
    jb .row
    mov ah, 0x86                        ; wait 1 s (CX:DX microseconds) in virtual time
    mov cx, 0x000F
    mov dx, 0x4240
    int 0x15
    mov si, bye
    call print
    mov dx, PM1A_CNT                    ; ACPI S5: SLP_TYP = 0, SLP_EN
    mov ax, 0x2000
    out dx, ax
    cli
.halt:
    hlt
    jmp .halt

print:                                  ; DS:SI -> teletype and COM1 (INT 14h)
    lodsb
    test al, al
    jz .done
    push ax
    mov ah, 0x0E
    mov bx, 0x000F
    int 0x10
    pop ax
    mov ah, 0x01
    xor dx, dx
    int 0x14
    jmp print
.done:
    ret

hello: db "Aero Workbench demo: hello from a boot sector.", 13, 10, 0
bye:   db "Drew a pattern in mode 13h, waited 1 s of virtual time. Powering off.", 13, 10, 0

    times 510 - ($ - $$) db 0
    dw 0xAA55
