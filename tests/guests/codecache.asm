; codecache.asm - translated code follows the code's physical bytes, whatever caches it.
;
; * The A20 gate: with A20 off, FFFF:05A0 (linear 0x100590) wraps to physical 0x000590, so a far
;   call to it runs the code there, not the code at 0x100590 that ran before; stores through
;   either alias change the code that runs next.
; * An instruction straddling two pages: after its second page is remapped (and CR3 reloaded)
;   the instruction's second half comes from the new frame; a store into that second half takes
;   effect at the next execution; a PTE edit without a TLB flush keeps the old translation (as
;   for data, tlb.asm).
%define CUSTOM_REAL_ENTRY
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

SNIP            equ 0x590               ; code at 0x000590 and at 0x100590 (= FFFF:05A0)
RES             equ var0                ; the real-mode part's results, one byte each

        bits 16
real_main:
        mov ax, 0xFFFF
        mov es, ax
        mov byte [es:0x5A0], 0xB0       ; 0x100590: mov al, 0xA1 / retf
        mov byte [es:0x5A1], 0xA1
        mov byte [es:0x5A2], 0xCB
        mov byte [SNIP], 0xB0           ; 0x000590: mov al, 0xA0 / retf
        mov byte [SNIP + 1], 0xA0
        mov byte [SNIP + 2], 0xCB
        call 0xFFFF:0x05A0              ; A20 on: the copy above 1 MiB
        mov [RES], al
        in al, 0x92                     ; A20 off
        and al, 0xFD
        out 0x92, al
        call 0xFFFF:0x05A0              ; wraps to 0x000590
        mov [RES + 1], al
        mov byte [es:0x5A1], 0xA3       ; a store through the wrapped alias (0x000591)
        call 0xFFFF:0x05A0
        mov [RES + 2], al
        in al, 0x92                     ; A20 on again
        or al, 2
        out 0x92, al
        call 0xFFFF:0x05A0
        mov [RES + 3], al
        mov byte [es:0x5A1], 0xA2       ; a store into the code above 1 MiB
        call 0xFFFF:0x05A0
        mov [RES + 4], al
        jmp enter_pm32

PD              equ 0x100000
PT0             equ 0x101000
PT1             equ 0x102000
LIN             equ 0x400000            ; page A at LIN, page B at LIN + 0x1000
FRAME_A         equ 0x210000
FRAME_B1        equ 0x211000
FRAME_B2        equ 0x212000
ENTRY           equ LIN + 0xFFE         ; mov eax, imm32 straddling pages A and B, then ret
%define PTE1(i) dword [PT1 + (i) * 4]

        bits 32
main:
        movzx eax, byte [RES]
        CHECK "a20-on-runs-code-above-1mib", eax, 0xA1
        movzx eax, byte [RES + 1]
        CHECK "a20-off-runs-the-wrapped-code", eax, 0xA0
        movzx eax, byte [RES + 2]
        CHECK "a20-off-store-through-wrapped-alias", eax, 0xA3
        movzx eax, byte [RES + 3]
        CHECK "a20-on-again-runs-code-above-1mib", eax, 0xA1
        movzx eax, byte [RES + 4]
        CHECK "a20-on-store-into-code-above-1mib", eax, 0xA2

        ; identity map 0-4 MiB, map pages A and B at 4 MiB
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
        mov word [FRAME_A + 0xFFE], 0x78B8      ; B8 78: mov eax, 0x??????78
        mov dword [FRAME_B1], 0xC3123456        ; 56 34 12 / C3 ret
        mov dword [FRAME_B2], 0xC3654321        ; 21 43 65 / C3 ret
        mov PTE1(0), FRAME_A | 3
        mov PTE1(1), FRAME_B1 | 3
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        jmp .on
.on:
        call ENTRY
        CHECK "straddle-first-frame", eax, 0x12345678
        mov PTE1(1), FRAME_B2 | 3                ; remap page B without a flush
        call ENTRY
        CHECK "straddle-stale-translation-without-flush", eax, 0x12345678
        mov eax, cr3
        mov cr3, eax
        call ENTRY
        CHECK "straddle-second-page-remapped", eax, 0x65432178
        mov byte [LIN + 0x1000], 0x99            ; store into the instruction's second half
        call ENTRY
        CHECK "straddle-store-into-second-half", eax, 0x65439978
        mov PTE1(1), FRAME_B1 | 3
        invlpg [LIN + 0x1000]
        call ENTRY
        CHECK "straddle-invlpg-remaps-second-page", eax, 0x12345678
        jmp finish

%include "rom_end.inc"
