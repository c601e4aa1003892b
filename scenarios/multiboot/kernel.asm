; multiboot: a multiboot (v1) kernel, a flat binary with the a.out kludge (header flag bit 16),
; loaded at 1 MiB and started with `--kernel` (QEMU: -kernel).  In 32-bit protected mode with
; paging off, it checks the loader's magic (EAX = 2BADB002h), reads the multiboot information
; at EBX (mem_lower/mem_upper, the command line's arguments), sets up its own stack and GDT, checks that its
; bss was zeroed and reports on COM1; exit through isa-debug-exit with 0x10 (exit status 33).
bits 32
LOAD equ 0x100000
org LOAD
MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010003                 ; page-align modules, memory info, address fields
header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                           ; header_addr
    dd LOAD                             ; load_addr
    dd load_end                         ; load_end_addr
    dd bss_end                          ; bss_end_addr
    dd entry                            ; entry_addr
entry:
    mov esp, stack_top
    mov [mbi], ebx
    mov [magic], eax
    lgdt [gdtr]
    jmp 0x08:.cs
.cs:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
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
    mov edi, stack                      ; the loader zeroed the bss (nothing pushed yet)
    mov ecx, stack_top - stack
    xor al, al
    repe scasb
    jne fail
    mov esi, m_hello
    call puts
    cmp dword [magic], 0x2BADB002
    jne fail
    mov esi, m_magic
    call puts
    mov ebx, [mbi]
    test byte [ebx], 1                  ; flags bit 0: mem_lower, mem_upper
    jz fail
    mov esi, m_mem
    call puts
    mov eax, [ebx + 4]
    call putdec
    mov esi, m_kib
    call puts
    mov eax, [ebx + 8]                  ; in MiB, rounded up: SeaBIOS under QEMU keeps the
    add eax, 1023                       ; top 128 KiB of RAM, Aero's loader does not
    shr eax, 10
    call putdec
    mov esi, m_upper
    call puts
    test byte [ebx], 4                  ; flags bit 2: cmdline
    jz fail
    mov esi, m_cmd
    call puts
    mov esi, [ebx + 16]                 ; QEMU and Aero pass "KERNEL-PATH ARGS": skip the path
.arg:
    lodsb
    test al, al
    jz .noarg
    cmp al, ' '
    jne .arg
    call puts
.noarg:
    mov esi, m_end
    call puts
    mov eax, cr0
    test eax, 0x80000000
    jnz fail
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
puts:
    lodsb
    test al, al
    jz .r
    call putc
    jmp puts
.r: ret
putc:
    push edx
    push eax
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    pop eax
    mov dx, 0x3F8
    out dx, al
    pop edx
    ret
putdec:
    mov ebx, 10
    xor ecx, ecx
.d: xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .d
.o: pop eax
    add al, '0'
    call putc
    loop .o
    mov ebx, [mbi]
    ret
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr: dw gdtr - gdt - 1
    dd gdt
m_hello: db "multiboot kernel at 1 MiB", 13, 10, 0
m_magic: db "magic 2BADB002 ok", 13, 10, 0
m_mem: db "mem_lower ", 0
m_kib: db " KiB, mem_upper ", 0
m_upper: db " MiB", 13, 10, 0
m_cmd: db "cmdline [", 0
m_end: db "]", 13, 10, 0
m_ok: db "paging off, flat segments: ok", 13, 10, 0
m_fail: db "multiboot FAILED", 13, 10, 0
load_end:
section .bss follows=.text nobits
bss_start:
mbi: resd 1
magic: resd 1
stack: resb 4096
stack_top:
bss_end:
