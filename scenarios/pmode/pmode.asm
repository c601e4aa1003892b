; pmode: a boot sector that enters 32-bit protected mode and turns on 4 KiB paging.
;   * A20 through port 92h, a flat GDT (code 08h, data 10h), CR0.PE, a far jump to 32-bit code;
;   * a page directory at 20000h whose entry 0 identity-maps the first 4 MiB (page table at
;     21000h), and entry 100h (virtual 40000000h) -> a second table at 22000h mapping
;     40000000h and 40001000h both to physical 30000h (an alias);
;   * CR3, CR0.PG; write through one alias, read through the other and physically;
;   * an IDT whose vector 0Eh (#PF) handler reports CR2 and the error code, maps the faulting
;     page (80000000h -> 31000h, directory entry 200h -> table 23000h) and returns, so the
;     faulting store is retried and succeeds.
; The boot sector loads the rest of the program (floppy sectors 2-3, INT 13h AH=02h) at 7E00h;
; from then on nothing calls the BIOS.  All output goes to COM1 by port I/O; exit through
; isa-debug-exit with 0x10 (status 33).
bits 16
org 0x7C00
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov ax, 0x0202                      ; read 2 sectors: C0 H0 S2, DL = boot drive
    mov cx, 0x0002
    xor dh, dh
    mov bx, 0x7E00
    int 0x13
    jc $
    cli
    jmp part2
times 510-($-$$) db 0
dw 0xAA55
part2:
    in al, 0x92                         ; fast A20
    or al, 2
    and al, 0xFE
    out 0x92, al
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7C00
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
    mov esi, m_pm
    call puts
    ; page tables: clear 20000h-23FFFh
    mov edi, 0x20000
    mov ecx, 4 * 1024
    xor eax, eax
    rep stosd
    mov dword [0x20000], 0x21003        ; PDE 0 -> identity table, present + writable
    mov dword [0x20000 + 0x100 * 4], 0x22003
    mov edi, 0x21000                    ; identity map 0-4 MiB
    mov eax, 3
    mov ecx, 1024
.id: stosd
    add eax, 0x1000
    loop .id
    mov dword [0x22000], 0x30003        ; 40000000h -> 30000h
    mov dword [0x22004], 0x30003        ; 40001000h -> 30000h
    mov eax, pf_handler                 ; IDT vector 0Eh: 32-bit interrupt gate
    mov [idt + 14 * 8], ax
    mov word [idt + 14 * 8 + 2], 0x08
    mov word [idt + 14 * 8 + 4], 0x8E00
    shr eax, 16
    mov [idt + 14 * 8 + 6], ax
    lidt [idtr]
    mov eax, 0x20000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .flush
.flush:
    mov esi, m_pg
    call puts
    mov dword [0x40000000], 0x12345678
    mov eax, [0x40001000]               ; the alias
    cmp eax, 0x12345678
    jne fail
    cmp dword [0x30000], 0x12345678     ; physical (identity mapped)
    jne fail
    mov esi, m_alias
    call puts
    mov dword [0x80000010], 0xCAFEF00D  ; unmapped: #PF, the handler maps it, retried
    cmp dword [0x31010], 0xCAFEF00D
    jne fail
    cmp byte [faults], 1
    jne fail
    mov esi, m_ok
    call puts
    mov al, 0x10
    jmp exit
fail:
    mov esi, m_fail
    call puts
    mov al, 0x7F
exit:
    mov dx, 0x501
    out dx, al
    cli
    hlt

pf_handler:
    pushad
    inc byte [faults]
    mov esi, m_pf
    call puts
    mov eax, cr2
    call puthex32
    mov esi, m_err
    call puts
    mov eax, [esp + 32]                 ; the error code above the pushad frame
    call puthex32
    mov esi, m_crlf
    call puts
    mov dword [0x20000 + 0x200 * 4], 0x23003
    mov dword [0x23000], 0x31003        ; 80000000h -> 31000h
    mov eax, cr3                        ; flush the TLB
    mov cr3, eax
    popad
    add esp, 4                          ; drop the error code
    iretd

puts:
    lodsb
    test al, al
    jz .r
    call putc
    jmp puts
.r: ret
putc:
    mov ah, al
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    mov al, ah
    mov dx, 0x3F8
    out dx, al
    ret
puthex32:
    mov ecx, 8
.n: rol eax, 4
    push eax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe .p
    add al, 7
.p: call putc
    pop eax
    loop .n
    ret

faults: db 0
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF               ; 08h: code, base 0, 4 GiB
    dq 0x00CF92000000FFFF               ; 10h: data
gdtr: dw gdtr - gdt - 1
    dd gdt
idtr: dw 15 * 8 - 1
    dd idt
m_pm: db "protected mode", 13, 10, 0
m_pg: db "paging on", 13, 10, 0
m_alias: db "alias ok", 13, 10, 0
m_pf: db "#PF cr2=", 0
m_err: db " err=", 0
m_crlf: db 13, 10, 0
m_ok: db "paging ok", 13, 10, 0
m_fail: db "FAIL", 13, 10, 0
align 8
idt: times 15 dq 0
times 1536-($-$$) db 0
