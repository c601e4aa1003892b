; cdrom: an El Torito "no emulation" boot image.  The BIOS reads the boot catalog, loads the 4
; virtual (512-byte) sectors of this image at 07C0:0000 and jumps there with DL = the CD's drive
; number.  The image then reads the ISO 9660 primary volume descriptor (sector 16) and a data
; file (sector 24, placed by aero/scenarios.py) through INT 13h AH=42h with 2048-byte sectors,
; prints what it found on COM1 and exits through isa-debug-exit with 0x10 (exit status 33).
bits 16
org 0x7C00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov [drive], dl
    call com_init
    mov si, m_boot
    call puts
    mov eax, 16                         ; primary volume descriptor
    call read
    jc fail
    cmp dword [0x9001], 'CD00'
    jne fail
    mov si, m_pvd
    call puts
    mov si, 0x9000 + 40                 ; volume identifier (32 chars, space padded)
    mov cx, 32
.v: lodsb
    cmp al, ' '
    je .vd
    call putc
    loop .v
.vd:
    mov si, m_crlf
    call puts
    mov eax, 24                         ; the data file
    call read
    jc fail
    mov si, 0x9000
    call puts
    mov si, m_end                       ; proves the last 512 bytes of this image were loaded
    call puts
    mov al, 0x10
    jmp exit
fail:
    mov si, m_fail
    call puts
    mov al, 0x7F
exit:
    mov dx, 0x501
    out dx, al
    cli
    hlt
; read one 2048-byte CD sector (LBA in EAX) to 0000:9000
read:
    mov [dap.lba], eax
    mov si, dap
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    ret
com_init:
    mov dx, 0x3FB
    mov al, 0x83
    out dx, al
    mov dx, 0x3F8
    mov al, 1
    out dx, al
    inc dx
    xor al, al
    out dx, al
    mov dx, 0x3FB
    mov al, 3
    out dx, al
    ret
puts:
    lodsb
    test al, al
    jz .r
    call putc
    jmp puts
.r: ret
putc:
    push dx
    push ax
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    pop ax
    mov dx, 0x3F8
    out dx, al
    pop dx
    ret
align 4
dap: db 16, 0
    dw 1
    dw 0x9000, 0
.lba: dq 0
drive: db 0
m_boot: db "El Torito: booted from CD", 13, 10, 0
m_pvd: db "volume: ", 0
m_crlf: db 13, 10, 0
m_fail: db "CD read failed", 13, 10, 0
times 1536-($-$$) db 0
m_end: db "boot image: all 4 virtual sectors loaded", 13, 10, 0
times 2048-($-$$) db 0
