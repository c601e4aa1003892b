; mb_low.asm - a multiboot (v1) kernel linked at 0x8000 that relies on what a BIOS's POST left
; behind, as a kernel that goes back to real mode (or runs BIOS code in v86 mode) does.  Flat
; binary with the a.out kludge (header flag bit 16); kernel and bss fit below 0x9000, so the
; loader's page-aligned area after it (module list, command lines) starts at 0x9000.
;
; It prints on the debug console (port 0xE9):
;   magic      EAX = 2BADB002h at entry
;   mbi        the MBI flags, mem_lower and the command line's arguments (if flagged)
;   ivt 08     the segment of IVT entry 08h (a BIOS's timer handler: F000h)
;   pic        whether IRQ 0 is unmasked in the master 8259's IMR
;   pm irq0    an IDT (vectors 00h-7Fh) with a timer handler at 08h only, STI in protected
;              mode with only IRQ 0 unmasked: three timer interrupts arrive through vector 08h
;              (the PIC's base is the BIOS's 08h; any other vector ends the test)
;   rm ticks   back in real mode with the IVT, IMR restored, STI: the BIOS's INT 08h handler
;              advances the BDA tick count at 46Ch by 3
;   int12      INT 12h's conventional memory size in KiB
; then writes 10h to isa-debug-exit (port 0x501): exit status 33.  Failures write 7Fh (255).

%define MB_FLAGS 0x00010003
        bits    32
        org     0x8000
load_start:
mbh:    dd      0x1BADB002
        dd      MB_FLAGS
        dd      -(0x1BADB002 + MB_FLAGS)
        dd      mbh                             ; header_addr
        dd      load_start                      ; load_addr
        dd      load_end                        ; load_end_addr
        dd      bss_end                         ; bss_end_addr
        dd      start                           ; entry_addr

start:  cli
        mov     esp, stack_top
        mov     [magic], eax
        mov     [mbi], ebx
        lgdt    [gdtr]
        jmp     0x08:.cs
.cs:    mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     esi, m_hello
        call    puts
        mov     esi, m_magic
        call    puts
        mov     eax, [magic]
        call    puthex
        call    nl
        ; the information structure
        mov     ebx, [mbi]
        mov     esi, m_mbi
        call    puts
        mov     eax, [ebx]
        call    puthex
        test    byte [ebx], 1
        jz      .nomem
        mov     esi, m_lower
        call    puts
        mov     eax, [ebx + 4]
        call    putdec
.nomem: test    byte [ebx], 4
        jz      .nocmd
        mov     esi, m_cmd
        call    puts
        mov     esi, [ebx + 16]                 ; "PATH ARGS": print from the space on
.arg:   lodsb
        test    al, al
        jz      .noarg
        cmp     al, ' '
        jne     .arg
        call    puts
.noarg: mov     al, ']'
        call    putc
.nocmd: call    nl
        ; IVT entry 08h and the master PIC's mask
        mov     esi, m_ivt
        call    puts
        movzx   eax, word [0x08 * 4 + 2]
        call    puthex4
        call    nl
        mov     esi, m_pic
        call    puts
        in      al, 0x21
        mov     [imr], al
        mov     esi, m_yes
        test    al, 1
        jz      .unm
        mov     esi, m_no
.unm:   call    puts
        ; protected mode: an IDT, only IRQ 0 unmasked, STI, three ticks through vector 08h
        mov     edi, idt
        mov     ecx, 0x80
        mov     edx, unexpected
.fill:  call    gate
        loop    .fill
        mov     edi, idt + 8 * 8
        mov     edx, tick32
        call    gate
        lidt    [idtr]
        mov     al, 0xFE
        out     0x21, al
        sti
.wait:  hlt
        cmp     dword [ticks], 3
        jb      .wait
        cli
        mov     esi, m_pmirq
        call    puts
        ; back to real mode: 16-bit segments, PE off, the IVT
        jmp     0x18:pm16

gate:   ; EDI = the gate, EDX = the handler; EDI += 8
        mov     eax, edx
        mov     [edi], ax
        mov     word [edi + 2], 0x08
        mov     word [edi + 4], 0x8E00          ; 32-bit interrupt gate, present, DPL 0
        shr     eax, 16
        mov     [edi + 6], ax
        add     edi, 8
        ret

tick32: push    eax
        inc     dword [ticks]
        mov     al, 0x20
        out     0x20, al
        pop     eax
        iretd

unexpected:
        mov     esi, m_unexp
        call    puts
        jmp     fail

fail:   mov     esi, m_fail
        call    puts
        mov     al, 0x7F
        mov     dx, 0x501
        out     dx, al
        cli
        hlt

puts:   lodsb
        test    al, al
        jz      .r
        call    putc
        jmp     puts
.r:     ret
putc:   out     0xE9, al
        ret
nl:     mov     al, 10
        jmp     putc
puthex: push    eax                             ; EAX as 8 hex digits
        shr     eax, 16
        call    puthex4
        pop     eax
puthex4:                                        ; AX as 4 hex digits
        push    ecx
        mov     ecx, 4
.d:     rol     ax, 4
        push    eax
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     .o
        add     al, 'A' - '9' - 1
.o:     call    putc
        pop     eax
        loop    .d
        pop     ecx
        ret
putdec: push    ebx
        mov     ebx, 10
        xor     ecx, ecx
.d:     xor     edx, edx
        div     ebx
        push    edx
        inc     ecx
        test    eax, eax
        jnz     .d
.o:     pop     eax
        add     al, '0'
        call    putc
        loop    .o
        pop     ebx
        ret

        bits    16
pm16:   mov     ax, 0x20
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     eax, cr0
        and     al, 0xFE
        mov     cr0, eax
        jmp     0:rm
rm:     xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     sp, stack_top
        lidt    [ivt]
        mov     al, [imr]
        out     0x21, al
        sti
        mov     eax, [0x46C]
        mov     [t0], eax
.wait:  hlt
        mov     eax, [0x46C]
        sub     eax, [t0]
        cmp     eax, 3
        jb      .wait
        mov     si, m_rm
        call    puts16
        int     0x12
        call    putdec16
        mov     al, 10
        out     0xE9, al
        mov     si, m_ok
        call    puts16
        mov     al, 0x10
        mov     dx, 0x501
        out     dx, al
        cli
        hlt

puts16: lodsb
        test    al, al
        jz      .r
        out     0xE9, al
        jmp     puts16
.r:     ret
putdec16:                                       ; AX in decimal
        mov     bx, 10
        xor     cx, cx
.d:     xor     dx, dx
        div     bx
        push    dx
        inc     cx
        test    ax, ax
        jnz     .d
.o:     pop     ax
        add     al, '0'
        out     0xE9, al
        loop    .o
        ret

        align   8
gdt:    dq      0
        dq      0x00CF9A000000FFFF              ; 08h: flat 32-bit code
        dq      0x00CF92000000FFFF              ; 10h: flat 32-bit data
        dq      0x00009A000000FFFF              ; 18h: 16-bit code, base 0, 64 KiB
        dq      0x000092000000FFFF              ; 20h: 16-bit data, base 0, 64 KiB
gdtr:   dw      gdtr - gdt - 1
        dd      gdt
idtr:   dw      0x80 * 8 - 1
        dd      idt
ivt:    dw      0x3FF
        dd      0
m_hello: db     "mb_low: a kernel at 0x8000", 10, 0
m_magic: db     "magic ", 0
m_mbi:  db      "mbi flags ", 0
m_lower: db     " mem_lower ", 0
m_cmd:  db      " cmdline [", 0
m_ivt:  db      "ivt 08 segment ", 0
m_pic:  db      "pic irq0 unmasked ", 0
m_yes:  db      "yes", 10, 0
m_no:   db      "no", 10, 0
m_pmirq: db     "pm irq0 via vector 08: 3 ticks", 10, 0
m_rm:   db      "rm bda ticks +3, int12 ", 0
m_ok:   db      "ok", 10, 0
m_unexp: db     "unexpected interrupt", 10, 0
m_fail: db      "FAILED", 10, 0
        align   4
load_end:

        absolute load_end
magic:  resd    1
mbi:    resd    1
ticks:  resd    1
t0:     resd    1
imr:    resb    4
        alignb  8
idt:    resb    0x80 * 8
stack:  resb    1024
stack_top:
bss_end:
