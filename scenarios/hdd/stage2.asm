; hdd second stage: loaded by mbr.asm at 0000:8000 (4 sectors from LBA 1), entered at 8002h
; with DL = boot drive.  It proves the whole stage arrived (its fourth sector carries a filler
; pattern and a tail marker), reports on COM1 and exits through isa-debug-exit with 0x10
; (exit status 33).
bits 16
org 0x8000
    db "2S"                             ; magic checked by the MBR
entry:
    mov [drive], dl
    mov si, m_hello
    call puts
    mov al, [drive]
    call puthex8
    mov si, m_crlf
    call puts
    push ds
    pop es
    mov di, filler                      ; sector 4 holds 500 bytes of A5h and the tail marker
    mov al, 0xA5
    mov cx, 500
    cld
    repe scasb
    jne .bad
    cmp dword [tail], 'LAST'
    jne .bad
    mov si, m_ok
    call puts
    mov al, 0x10
    jmp exit
.bad:
    mov si, m_bad
    call puts
    mov al, 0x7E
exit:
    mov dx, 0x501
    out dx, al
    cli
    hlt
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
puthex8:
    push ax
    shr al, 4
    call .n
    pop ax
    and al, 0x0F
.n: add al, '0'
    cmp al, '9'
    jbe .p
    add al, 7
.p: jmp putc
drive: db 0
m_hello: db "stage 2 running, boot drive ", 0
m_crlf: db 13, 10, 0
m_ok: db "stage 2: all 4 sectors intact", 13, 10, 0
m_bad: db "stage 2: sectors missing", 13, 10, 0
times 1536-($-$$) db 0
filler: times 500 db 0xA5               ; the last sector is loaded too
times 2048-8-($-$$) db 0
tail: db "LAST"
dd 0
