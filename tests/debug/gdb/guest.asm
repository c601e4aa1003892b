; guest: the gdb stub tests' boot sector (floppy, loaded at 7C00h by the BIOS).
; Real mode: a byte counter at 600h written and read (watchpoints), then 32-bit protected mode
; (flat GDT) at 7C80h, then 4 MiB paging (CR4.PSE) with linear 40000000h mapped to physical 0
; as well as identity, and at 7D00h a dword store through that alias (linear 40000700h =
; physical 700h) after a NOP; exits through isa-debug-exit with 10h (status 33).
; Rebuild: nasm -f bin -o guest.bin guest.asm
bits 16
org 0x7C00
counter equ 0x600
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    mov byte [counter], 0x41            ; 'A'
    mov cx, 3
.bump:
    inc byte [counter]
    loop .bump
    mov bl, [counter]                   ; a plain read: 'D'
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm32
    times 0x80-($-$$) db 0xCC
bits 32
pm32:                                   ; 7C80h
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov edi, 0x1000                     ; page directory at 1000h
    mov ecx, 1024
    xor eax, eax
    rep stosd
    mov dword [0x1000], 0x83            ; 0-4 MiB: identity, a 4 MiB page
    mov dword [0x1000 + 0x100 * 4], 0x83    ; 40000000h: physical 0 too
    mov eax, cr4
    or eax, 0x10                        ; PSE
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp paged
    times 0x100-($-$$) db 0xCC
paged:                                  ; 7D00h
    nop
    mov dword [0x40000700], 0xCAFEF00D
    mov dx, 0x501
    mov al, 0x10
    out dx, al
    cli
    hlt
align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF               ; 08h: code, flat, 32-bit
    dq 0x00CF92000000FFFF               ; 10h: data, flat
gdtr:
    dw gdtr - gdt - 1
    dd gdt
    times 510-($-$$) db 0
    dw 0xAA55
