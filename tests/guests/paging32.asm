; paging32.asm - 32-bit paging: 4 KiB pages through a page table, 4 MiB pages (CR4.PSE),
; accessed/dirty bits in PDEs and PTEs, #PF error codes (P, W/R, U/S) and CR2 for reads, writes,
; user accesses and instruction fetches, a page-crossing access, and CR0.WP for supervisor writes
; to read-only pages.  The U/S and R/W permissions of the PDE and the PTE combine (the more
; restrictive wins).  A REP MOVSD that runs into a not-present page faults with its progress in
; ECX/ESI/EDI and, once the handler maps the page and IRETs, finishes the copy.
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

PD              equ 0x100000
PT0             equ 0x101000            ; identity map of 0-4 MiB, user + writable
PT1             equ 0x102000            ; linear 0x400000-0x7FFFFF, one entry per test page
PT2             equ 0x103000            ; linear 0x1000000: supervisor PDE, user PTE
PT3             equ 0x104000            ; linear 0x1400000: read-only PDE, writable PTE
LIN             equ 0x400000
%define PTE1(i) dword [PT1 + (i) * 4]

        bits 32
main:
        call setup_rings
        ; page directory and tables
        mov edi, PD
        mov ecx, 5 * 1024
.z:     mov dword [edi], 0
        add edi, 4
        dec ecx
        jnz .z
        mov edi, PT0
        mov eax, 0x007
.id:    mov [edi], eax
        add edi, 4
        add eax, 0x1000
        cmp edi, PT0 + 4096
        jb .id
        mov dword [PD + 0 * 4], PT0 | 0x7
        mov dword [PD + 1 * 4], PT1 | 0x7
        mov dword [PD + 2 * 4], 0x400000 | 0x87         ; 4 MiB page (user, RW) -> 0x400000
        mov dword [PD + 3 * 4], 0x400000 | 0x87         ; same frame at linear 0xC00000
        mov dword [PD + 4 * 4], PT2 | 0x3
        mov dword [PD + 5 * 4], PT3 | 0x5
        mov dword [PT2], 0x206000 | 0x7
        mov dword [PT3], 0x207000 | 0x7
        mov PTE1(6), 0x206000 | 0x3
        mov PTE1(7), 0                                  ; mapped by pf_map7 on demand
        mov PTE1(0), 0x200000 | 0x3                     ; supervisor RW
        mov PTE1(1), 0x201000 | 0x1                     ; supervisor read-only
        mov PTE1(2), 0                                  ; not present
        mov PTE1(3), 0x203000 | 0x7                     ; user RW
        mov PTE1(4), 0x204000 | 0x5                     ; user read-only
        mov PTE1(5), 0x205000 | 0x3                     ; supervisor only
        mov dword [0x200010], 0
        mov dword [0x201000], 0x0BADF00D
        mov eax, PD
        mov cr3, eax
        mov eax, cr4
        or eax, 0x10                                    ; PSE
        mov cr4, eax
        mov eax, cr0
        or eax, 0x80000000                              ; PG (WP still 0)
        mov cr0, eax
        jmp .on
.on:    mov eax, cr0
        shr eax, 31
        CHECK "paging-on", eax, 1

        ; ---- a 4 KiB mapping
        mov dword [LIN + 0x10], 0x13572468
        CHECK "4k-translate", [0x200010], 0x13572468
        mov eax, PTE1(0)
        and eax, 0x60
        CHECK "4k-write-sets-accessed-dirty", eax, 0x60
        mov eax, [LIN + 0x3000 + 8]                     ; read only
        mov eax, PTE1(3)
        and eax, 0x60
        CHECK "4k-read-sets-accessed-only", eax, 0x20
        mov eax, [PD + 4]
        and eax, 0x60
        CHECK "pde-accessed-not-dirty", eax, 0x20
        mov eax, PTE1(1)
        and eax, 0x60
        CHECK "untouched-pte-no-accessed", eax, 0

        ; ---- #PF: not present (read, write), CR2, saved EIP
        TRY .r1
.f1:    mov eax, [LIN + 0x2000 + 4]
.r1:    ENDTRY
        EXPECT "pf-read-not-present", 14, 0, .f1
        CHECK "pf-read-not-present-cr2", [exc_cr2], LIN + 0x2004
        TRY .r2
.f2:    mov dword [LIN + 0x2000 + 8], 1
.r2:    ENDTRY
        EXPECT "pf-write-not-present", 14, 2, .f2
        CHECK "pf-write-not-present-cr2", [exc_cr2], LIN + 0x2008
        ; a dword straddling a present and a not-present page: CR2 = the not-present byte
        TRY .r3
.f3:    mov eax, [LIN + 0x1FFE]
.r3:    ENDTRY
        EXPECT "pf-page-crossing", 14, 0, .f3
        CHECK "pf-page-crossing-cr2", [exc_cr2], LIN + 0x2000
        ; instruction fetch from a not-present page: EIP = CR2 = the page
        TRY .r4
        jmp LIN + 0x2000
.r4:    ENDTRY
        EXPECT "pf-fetch-not-present", 14, 0, LIN + 0x2000
        CHECK "pf-fetch-not-present-cr2", [exc_cr2], LIN + 0x2000

        ; ---- CR0.WP
        mov dword [LIN + 0x1000], 0x600DF00D            ; WP=0: supervisor writes anything
        CHECK "wp0-supervisor-writes-read-only", [0x201000], 0x600DF00D
        mov eax, cr0
        or eax, 0x10000
        mov cr0, eax
        TRY .r5
.f5:    mov dword [LIN + 0x1000 + 4], 0x12345678
.r5:    ENDTRY
        EXPECT "wp1-supervisor-write-read-only", 14, 3, .f5
        CHECK "wp1-supervisor-write-read-only-cr2", [exc_cr2], LIN + 0x1004
        CHECK "wp1-nothing-written", [0x201004], 0

        ; ---- user accesses (ring 3)
        RING3
        mov dword [LIN + 0x3000 + 0x20], 0x33333333     ; user RW: fine
        RING0
        CHECK "user-write-user-page", [0x203020], 0x33333333
        RING3
        TRY .r6
.f6:    mov eax, [LIN + 0x5000]                         ; supervisor page
.r6:    ENDTRY
        RESUME0
        EXPECT_FRAME "pf-user-read-supervisor", 14, 5, .f6
        CHECK "pf-user-read-supervisor-cr2", [exc_cr2], LIN + 0x5000
        RING3
        TRY .r7
.f7:    mov dword [LIN + 0x4000 + 0x10], 1              ; user read-only page
.r7:    ENDTRY
        RESUME0
        EXPECT_FRAME "pf-user-write-read-only", 14, 7, .f7
        CHECK "pf-user-write-read-only-cr2", [exc_cr2], LIN + 0x4010
        RING3
        TRY .r8
.f8:    mov dword [LIN + 0x2000], 1                     ; not present, user write
.r8:    ENDTRY
        RESUME0
        EXPECT_FRAME "pf-user-write-not-present", 14, 6, .f8

        ; ---- PDE and PTE permissions combine
        RING3
        TRY .r9
.f9:    mov eax, [0x1000000]                            ; PDE supervisor, PTE user
.r9:    ENDTRY
        RESUME0
        EXPECT_FRAME "pf-user-read-supervisor-pde", 14, 5, .f9
        RING3
        TRY .r10
.f10:   mov dword [0x1400000], 1                        ; PDE read-only, PTE writable
.r10:   ENDTRY
        RESUME0
        EXPECT_FRAME "pf-user-write-read-only-pde", 14, 7, .f10
        TRY .r11
.f11:   mov dword [0x1400004], 1                        ; supervisor, WP=1
.r11:   ENDTRY
        EXPECT "pf-wp1-supervisor-write-read-only-pde", 14, 3, .f11

        ; ---- REP MOVSD into a not-present page: fault mid-string, restart after IRET
        mov edi, 0x50000
        mov eax, 0x11110000
        mov ecx, 16
.src:   mov [edi], eax
        add edi, 4
        inc eax
        dec ecx
        jnz .src
        mov dword [0x207000 + 44], 0
        mov ebx, 14
        mov eax, pf_map7
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        mov dword [var0 + 0x40], 0
        cld
        mov esi, 0x50000
        mov edi, LIN + 0x6FF0
        mov ecx, 16
        rep movsd
        mov [var0 + 0x50], ecx
        mov [var0 + 0x54], edi
        mov ebx, 14
        mov eax, exc_stubs + 14 * 16
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        CHECK "rep-movs-pf-count", [var0 + 0x40], 1
        CHECK "rep-movs-pf-cr2", [var0 + 0x44], LIN + 0x7000
        CHECK "rep-movs-pf-ecx-progress", [var0 + 0x48], 12
        CHECK "rep-movs-pf-edi-progress", [var0 + 0x4C], LIN + 0x7000
        CHECK "rep-movs-pf-esi-progress", [var0 + 0x58], 0x50010
        CHECK "rep-movs-restart-ecx", [var0 + 0x50], 0
        CHECK "rep-movs-restart-edi", [var0 + 0x54], LIN + 0x7030
        CHECK "rep-movs-restart-data", [0x207000 + 44], 0x1111000F
        CHECK "rep-movs-first-page-data", [0x206FF0], 0x11110000

        ; ---- 4 MiB pages (PSE)
        mov dword [0xC01234], 0xFEEDFACE
        CHECK "4m-translate", [0x801234], 0xFEEDFACE
        mov eax, [PD + 3 * 4]
        and eax, 0x60
        CHECK "4m-write-sets-accessed-dirty", eax, 0x60
        mov eax, [PD + 2 * 4]
        and eax, 0x60
        CHECK "4m-read-sets-accessed-only", eax, 0x20
        jmp finish

; #PF handler for the REP MOVSD test: record, map page 7, IRET (restarts the instruction)
pf_map7:
        inc dword [var0 + 0x40]
        push eax
        mov eax, cr2
        mov [var0 + 0x44], eax
        mov [var0 + 0x48], ecx
        mov [var0 + 0x4C], edi
        mov [var0 + 0x58], esi
        mov PTE1(7), 0x207000 | 0x3
        pop eax
        add esp, 4                                      ; the error code
        iretd

%include "rom_end.inc"
