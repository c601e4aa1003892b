; tlb.asm - TLB invalidation semantics (SDM Vol. 3, 4.10): a translation used once stays in use
; after its PTE is edited, until INVLPG or a CR3 load removes it; global pages (CR4.PGE, PTE.G)
; survive CR3 loads but not INVLPG or a CR4.PGE change; not-present entries are not cached; a
; write through an entry cached by a read still sets the dirty bit.
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

PD              equ 0x100000
PT0             equ 0x101000
PT1             equ 0x102000
LIN             equ 0x400000
FRAME_A         equ 0x210000
FRAME_B         equ 0x211000
%define PTE1(i) dword [PT1 + (i) * 4]

        bits 32
main:
        mov edi, PD
        mov ecx, 3 * 1024
.z:     mov dword [edi], 0
        add edi, 4
        dec ecx
        jnz .z
        mov edi, PT0
        mov eax, 0x003
.id:    mov [edi], eax
        add edi, 4
        add eax, 0x1000
        cmp edi, PT0 + 4096
        jb .id
        mov dword [PD + 0 * 4], PT0 | 0x3
        mov dword [PD + 1 * 4], PT1 | 0x3
        mov dword [FRAME_A], 0xAAAAAAAA
        mov dword [FRAME_B], 0xBBBBBBBB
        mov PTE1(0), FRAME_A | 3
        mov PTE1(1), FRAME_A | 3 | 0x100                ; global
        mov PTE1(2), 0
        mov PTE1(3), FRAME_A | 3
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        jmp .on
.on:
        ; ---- edit a PTE without invalidating: the old translation stays
        CHECK "tlb-fill", [LIN], 0xAAAAAAAA
        mov PTE1(0), FRAME_B | 3
        CHECK "tlb-stale-after-pte-edit", [LIN], 0xAAAAAAAA
        invlpg [LIN]
        CHECK "tlb-invlpg-removes", [LIN], 0xBBBBBBBB
        mov PTE1(0), FRAME_A | 3
        CHECK "tlb-stale-again", [LIN], 0xBBBBBBBB
        mov eax, cr3
        mov cr3, eax
        CHECK "tlb-cr3-load-removes", [LIN], 0xAAAAAAAA

        ; ---- global pages
        mov eax, cr4
        or eax, 0x80                                    ; PGE
        mov cr4, eax
        CHECK "tlb-global-fill", [LIN + 0x1000], 0xAAAAAAAA
        mov PTE1(1), FRAME_B | 3 | 0x100
        mov eax, cr3
        mov cr3, eax
        CHECK "tlb-global-survives-cr3-load", [LIN + 0x1000], 0xAAAAAAAA
        invlpg [LIN + 0x1000]
        CHECK "tlb-global-invlpg-removes", [LIN + 0x1000], 0xBBBBBBBB
        mov PTE1(1), FRAME_A | 3 | 0x100
        CHECK "tlb-global-stale", [LIN + 0x1000], 0xBBBBBBBB
        mov eax, cr4
        and eax, ~0x80                                  ; clearing PGE flushes everything
        mov cr4, eax
        CHECK "tlb-pge-clear-flushes-global", [LIN + 0x1000], 0xAAAAAAAA

        ; ---- not-present entries are not cached
        TRY .r1
        mov eax, [LIN + 0x2000]
.r1:    ENDTRY
        CHECK "tlb-not-present-faults", [exc_vec], 14
        mov PTE1(2), FRAME_B | 3
        TRY .r2
        mov eax, [LIN + 0x2000]
        mov [var0], eax
.r2:    ENDTRY
        CHECK "tlb-not-present-not-cached", [exc_vec], 0xFF
        CHECK "tlb-not-present-now-present", [var0], 0xBBBBBBBB

        ; ---- dirty bit: read first (entry cached without D), then write
        mov eax, [LIN + 0x3000]
        mov eax, PTE1(3)
        and eax, 0x60
        CHECK "dirty-clear-after-read", eax, 0x20
        mov dword [LIN + 0x3000 + 4], 1
        mov eax, PTE1(3)
        and eax, 0x60
        CHECK "dirty-set-by-write-after-read", eax, 0x60
        jmp finish

%include "rom_end.inc"
