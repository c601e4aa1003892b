; mode13h: a boot sector that sets VGA mode 13h (320x200, 256 colours) through INT 10h AX=0013h
; and draws with the default palette: a white frame, the 16 EGA colours as bars in the top half,
; 16 rows of the 256-colour palette in the bottom half and a diagonal in colour 14.  It reads a
; few pixels back, reports on COM1 and exits through isa-debug-exit with 0x10 (exit status 33).
; The golden screenshot is tests/scenarios/golden/mode13h.png.
bits 16
org 0x7C00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov dx, 0x3FB                       ; COM1 8N1, 115200
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
    mov ax, 0x0013
    int 0x10
    push word 0xA000
    pop es
    xor di, di
    xor dx, dx                          ; y
.row:
    xor cx, cx                          ; x
.col:
    mov ax, cx                          ; bar = x / 20
    mov bl, 20
    div bl
    mov bl, al
    cmp dx, 100
    jb .top
    mov ax, dx                          ; bottom: ((y - 100) / 7) * 16 + x / 20
    sub ax, 100
    mov bh, 7
    div bh
    shl al, 4
    add bl, al
.top:
    mov al, bl
    cmp dx, cx                          ; diagonal
    jne .nd
    mov al, 14
.nd:
    test dx, dx                         ; frame
    jz .fr
    cmp dx, 199
    je .fr
    test cx, cx
    jz .fr
    cmp cx, 319
    jne .put
.fr:
    mov al, 15
.put:
    stosb
    inc cx
    cmp cx, 320
    jb .col
    inc dx
    cmp dx, 200
    jb .row
    ; read back: (0,0) frame, (25,10) bar 1, (50,50) diagonal, (45,150) row 7 bar 2
    cmp byte [es:0], 15
    jne fail
    cmp byte [es:10 * 320 + 25], 1
    jne fail
    cmp byte [es:50 * 320 + 50], 14
    jne fail
    cmp byte [es:150 * 320 + 45], 7 * 16 + 2
    jne fail
    mov si, m_ok
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
puts:
    lodsb
    test al, al
    jz .r
    mov ah, al
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    mov al, ah
    mov dx, 0x3F8
    out dx, al
    jmp puts
.r: ret
m_ok: db "mode 13h: drew 320x200, read back ok", 13, 10, 0
m_fail: db "mode 13h: read back FAILED", 13, 10, 0
times 510-($-$$) db 0
dw 0xAA55
