; hdd: a master boot record that chainloads a second stage.  The BIOS loads this sector at
; 0000:7C00 with DL = the boot drive (80h).  It checks the INT 13h extensions (AH=41h), reads
; the second stage (4 sectors from LBA 1) to 0000:8000 with AH=42h and jumps to it, passing DL.
; Output goes straight to COM1 (8N1 at 115200), so it reads the same under any BIOS.
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
    mov si, m_mbr
    call puts
    mov ah, 0x41                        ; extensions present?
    mov bx, 0x55AA
    mov dl, [drive]
    int 0x13
    jc fail
    cmp bx, 0xAA55
    jne fail
    mov si, dap                         ; extended read: LBA 1..4 -> 0000:8000
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc fail
    cmp word [0x8000], 0x5332           ; stage 2 magic "2S"
    jne fail
    mov dl, [drive]
    jmp 0x0000:0x8002
fail:
    mov si, m_fail
    call puts
    mov al, 0x7F
    mov dx, 0x501
    out dx, al
    cli
    hlt
com_init:
    mov dx, 0x3FB                       ; LCR: DLAB, 8N1
    mov al, 0x83
    out dx, al
    mov dx, 0x3F8
    mov al, 1                           ; divisor 1: 115200 baud
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
    mov ah, al
    mov dx, 0x3FD
.w: in al, dx                           ; wait for THRE
    test al, 0x20
    jz .w
    mov al, ah
    mov dx, 0x3F8
    out dx, al
    jmp puts
.r: ret
align 4
dap: db 16, 0
    dw 4                                ; sectors
    dw 0x8000, 0                        ; buffer
    dq 1                                ; LBA
drive: db 0
m_mbr: db "MBR: loading stage 2", 13, 10, 0
m_fail: db "MBR: disk error", 13, 10, 0
times 446-($-$$) db 0
; one partition entry (active, type 0x7F, LBA 1, 4 sectors) so tools recognise an MBR
db 0x80, 0, 2, 0, 0x7F, 0, 5, 0
dd 1, 4
times 510-($-$$) db 0
dw 0xAA55
