; vbe: sets a VBE linear-framebuffer mode through INT 10h and draws in it.
;   * 4F00h: controller info ("VESA" signature, version);
;   * 4F01h: mode info of 112h (640x480, 24 bits per pixel): resolution, bits per pixel, bytes
;     per scan line, PhysBasePtr (the LFB address: the VGA's PCI BAR, which differs between
;     machines, so it is read, never assumed);
;   * 4F02h with BX = 4112h (bit 14: linear framebuffer);
;   * "unreal" mode (FS with a 4 GiB limit loaded in protected mode, back to real mode) to reach
;     the LFB with 32-bit addresses; a 256x128 colour gradient at (64,48), a white 2-pixel frame
;     around it, and a read-back of two pixels;
; then reports on COM1 and exits through isa-debug-exit with 0x10 (exit status 33).
; Sectors 2-3 are loaded by the boot sector (INT 13h AH=02h) to 7E00h.
bits 16
org 0x7C00
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov ax, 0x0202
    mov cx, 0x0002
    xor dh, dh
    mov bx, 0x7E00
    int 0x13
    jc $
    jmp part2
times 510-($-$$) db 0
dw 0xAA55
part2:
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
    mov di, 0x9000                      ; controller info
    mov dword [di], 'VBE2'
    mov ax, 0x4F00
    int 0x10
    cmp ax, 0x004F
    jne fail
    cmp dword [0x9000], 'VESA'
    jne fail
    mov si, m_vesa
    call puts
    movzx eax, byte [0x9005]            ; version major.minor
    call putdec
    mov al, '.'
    call putc
    movzx eax, byte [0x9004]
    call putdec
    mov si, m_crlf
    call puts
    mov di, 0x9200                      ; mode info
    mov cx, 0x112
    mov ax, 0x4F01
    int 0x10
    cmp ax, 0x004F
    jne fail
    test byte [0x9200], 0x80            ; ModeAttributes bit 7: LFB available
    jz fail
    mov ax, [0x9200 + 0x10]
    mov [pitch], ax
    mov eax, [0x9200 + 0x28]
    mov [lfb], eax
    movzx eax, byte [0x9200 + 0x19]
    mov [bpp], al
    shr al, 3
    mov [bytespp], al
    mov si, m_mode
    call puts
    movzx eax, word [0x9200 + 0x12]
    call putdec
    mov al, 'x'
    call putc
    movzx eax, word [0x9200 + 0x14]
    call putdec
    mov al, 'x'
    call putc
    movzx eax, byte [bpp]
    call putdec
    mov si, m_crlf
    call puts
    mov ax, 0x4F02
    mov bx, 0x4112
    int 0x10
    cmp ax, 0x004F
    jne fail
    mov ax, 0x4F03                      ; current mode
    int 0x10
    and bx, 0x1FF
    cmp bx, 0x112
    jne fail
    ; unreal mode: FS limit 4 GiB
    cli
    in al, 0x92
    or al, 2
    and al, 0xFE
    out 0x92, al
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp .pm
.pm:
    mov bx, 0x08
    mov fs, bx
    and al, 0xFE
    mov cr0, eax
    jmp .rm
.rm:
    xor ax, ax
    mov fs, ax
    sti
    ; gradient: pixel (x, y) in the box = (B, G, R) = (x, 2y, 255 - x)
    xor edx, edx                        ; y
.row:
    mov eax, edx
    add eax, 48
    movzx ebx, word [pitch]
    imul eax, ebx
    add eax, [lfb]
    movzx ebx, byte [bytespp]
    imul ebx, ebx, 64
    add eax, ebx
    mov edi, eax                        ; start of this row in the box
    xor ecx, ecx                        ; x
.col:
    mov [fs:edi], cl
    mov al, dl
    shl al, 1
    mov [fs:edi + 1], al
    mov al, 255
    sub al, cl
    mov [fs:edi + 2], al
    movzx eax, byte [bytespp]
    add edi, eax
    inc ecx
    cmp ecx, 256
    jb .col
    inc edx
    cmp edx, 128
    jb .row
    ; frame: rows 44-45 and 178-179, columns 60-61 and 322-323, from (60,44) to (323,179)
    mov edx, 44
.frow:
    mov ecx, 60
.fcol:
    cmp edx, 46
    jb .white
    cmp edx, 178
    jae .white
    cmp ecx, 62
    jb .white
    cmp ecx, 322
    jb .skip
.white:
    call pixaddr
    mov word [fs:edi], 0xFFFF
    mov byte [fs:edi + 2], 0xFF
.skip:
    inc ecx
    cmp ecx, 324
    jb .fcol
    inc edx
    cmp edx, 180
    jb .frow
    ; read back: (64+10, 48+20) = (10, 40, 245); (60,44) white
    mov ecx, 74
    mov edx, 68
    call pixaddr
    cmp word [fs:edi], 0x280A
    jne fail
    cmp byte [fs:edi + 2], 245
    jne fail
    mov ecx, 60
    mov edx, 44
    call pixaddr
    cmp dword [fs:edi], 0x00FFFFFF
    je .ok
    cmp byte [bpp], 24                  ; 24 bpp: the 4th byte is the next pixel (white too)
    jne fail
.ok:
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
; EDI = LFB address of pixel (ECX, EDX)
pixaddr:
    push eax
    push ebx
    movzx eax, word [pitch]
    imul eax, edx
    movzx ebx, byte [bytespp]
    imul ebx, ecx
    add eax, ebx
    add eax, [lfb]
    mov edi, eax
    pop ebx
    pop eax
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
; EAX in decimal
putdec:
    push ebx
    push ecx
    push edx
    mov ebx, 10
    xor ecx, ecx
.d: xor edx, edx
    div ebx
    push dx
    inc ecx
    test eax, eax
    jnz .d
.o: pop ax
    add al, '0'
    call putc
    loop .o
    pop edx
    pop ecx
    pop ebx
    ret
align 8
gdt: dq 0
    dq 0x00CF92000000FFFF               ; 08h: data, base 0, 4 GiB
gdtr: dw gdtr - gdt - 1
    dd gdt
lfb: dd 0
pitch: dw 0
bpp: db 0
bytespp: db 0
m_vesa: db "VESA ", 0
m_mode: db "mode 112h: ", 0
m_crlf: db 13, 10, 0
m_ok: db "LFB drawn and read back", 13, 10, 0
m_fail: db "VBE FAILED", 13, 10, 0
times 1536-($-$$) db 0
