; diffguest.asm - a bare 64 KiB firmware guest for `aero trace` tests: runs from the reset vector
; with interrupts off and no device but isa-debug-exit (port 0x501), so that Aero and
; qemu-system-i386 execute exactly the same instructions and can be compared one by one
; (`aero trace diff` against `qemu-system-i386 -singlestep -d exec,cpu,nochain`).
;
; It goes through real mode (arithmetic, the stack, calls, a software interrupt through the IVT,
; REP string instructions), protected mode (32-bit loops over memory, calls, an exception
; through the IDT), then paging (4 MiB identity pages), and exits.  Only instructions whose
; flags the SDM defines are used (no shifts, MUL/DIV or CPUID), so EFLAGS can be compared too.
;
; `planted` is the one instruction that compares two equal values 0x1234: the test that plants
; a flag bug for exactly that case expects the divergence to be reported there.
;
; Build: nasm -f bin -o diffguest.bin diffguest.asm   (also writes diffguest.map)

        [map symbols diffguest.map]
        org 0xF0000
        bits 16

%define R(x) ((x) - $$)                 ; offset in the F000 segment

STACK16 equ 0x7000
BUF     equ 0x2000
IVT40   equ 0x40 * 4
IDT     equ 0x1000
PD      equ 0x3000
STACK32 equ 0x9000

start:
        cli
        cld
        xor ax, ax
        mov ss, ax
        mov sp, STACK16
        mov ds, ax
        mov es, ax

        ; ---- real mode: arithmetic with defined flags ---------------------------------------
        mov cx, 40
        mov ax, 0x0101
        mov bx, 0x7F03
        xor dx, dx
arith:  add ax, bx
        adc dx, 0
        sub bx, 0x0305
        sbb dx, 1
        inc si
        dec di
        neg bx
        xor bx, 0x5A5A
        and ax, 0x7FFF
        or  dx, 0x0100
        cmp ax, 0x0101
        loop arith

        ; the stack and calls
        mov cx, 8
calls:  push cx
        call sum16
        pop cx
        loop calls

        ; a software interrupt through the IVT
        mov word [IVT40], R(int40)
        mov word [IVT40 + 2], 0xF000
        mov ax, 0x1100
        int 0x40
        int 0x40

        ; REP string instructions
        mov di, BUF
        mov ax, 0xA55A
        mov cx, 16
        rep stosw
        mov si, BUF
        mov di, BUF + 0x100
        mov cx, 32
        rep movsb
        mov si, BUF
        mov di, BUF + 0x100
        mov cx, 32
        repe cmpsb

        ; the planted comparison: 0x1234 with 0x1234, once
        mov ax, 0x1200
        add ax, 0x34
        mov bx, ax
planted:
        cmp ax, bx
        pushf
        pop dx

        ; ---- protected mode --------------------------------------------------------------------
        lgdt [cs:R(gdtr)]
        mov eax, cr0
        or al, 1
        mov cr0, eax
        jmp dword 0x08:pm32

sum16:  add [BUF + 0x200], cx
        adc word [BUF + 0x202], 0
        ret

int40:  add ax, 0x0011
        iret

        bits 32
pm32:   mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, STACK32

        ; an IDT with a #UD handler
        mov eax, ud_handler
        mov [IDT + 6 * 8], ax
        mov word [IDT + 6 * 8 + 2], 0x08
        mov word [IDT + 6 * 8 + 4], 0x8E00
        shr eax, 16
        mov [IDT + 6 * 8 + 6], ax
        lidt [idtr]

        ; 32-bit loops over memory
        mov edi, BUF
        mov ecx, 64
        mov eax, 0x01020304
fill:   mov [edi], eax
        add eax, 0x11111111
        add edi, 4
        dec ecx
        jnz fill
        mov esi, BUF
        mov ecx, 64
        xor ebx, ebx
sum:    add ebx, [esi]
        adc ebx, 0
        add esi, 4
        call twiddle
        dec ecx
        jnz sum
        mov esi, BUF
        mov edi, BUF + 0x400
        mov ecx, 64
        rep movsd

        ; an exception: #UD, handled, resumed after the instruction
        ud2
        mov edx, 0x600D

        ; ---- paging: 4 MiB identity pages --------------------------------------------------------
        mov edi, PD
        mov eax, 0x00000083             ; present, writable, 4 MiB page
        mov ecx, 1024
pde:    mov [edi], eax
        add eax, 0x00400000
        add edi, 4
        dec ecx
        jnz pde
        mov eax, cr4
        or eax, 0x10                    ; CR4.PSE
        mov cr4, eax
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        mov ecx, 16
paged:  add dword [BUF + 0x800], ecx
        dec ecx
        jnz paged

        ; ---- exit through isa-debug-exit ----------------------------------------------------------
        mov dx, 0x501
        mov al, 0
        out dx, al
        hlt

twiddle:
        xor eax, eax
        add eax, ebx
        ret

ud_handler:
        add dword [esp], 2
        iret

        align 8
gdt:    dq 0
        dw 0xFFFF, 0x0000, 0x9A00, 0x00CF       ; 0x08 code32, flat
        dw 0xFFFF, 0x0000, 0x9200, 0x00CF       ; 0x10 data32, flat
gdt_end:
gdtr:   dw gdt_end - gdt - 1
        dd gdt
idtr:   dw 8 * 8 - 1
        dd IDT

        times 0xFFF0 - ($ - $$) db 0xF4
        bits 16
reset:  jmp 0xF000:R(start)
        times 0x10000 - ($ - $$) db 0xF4
