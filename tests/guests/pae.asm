; pae.asm - PAE paging (CR4.PAE): PDPTEs, 4 KiB and 2 MiB pages, accessed/dirty bits in 64-bit
; entries, a not-present PDPTE, execute-disable with EFER.NXE (#PF with the I/D bit, reads still
; allowed, both in a PTE and in a 2 MiB PDE), and the XD bit as a reserved bit when NXE=0 (#PF
; with RSVD) as well as a reserved bit in a 2 MiB PDE.
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

PDPT            equ 0x100000
PD0             equ 0x101000
PT0             equ 0x102000            ; identity map of 0-2 MiB
PT1             equ 0x103000            ; linear 0x400000-0x5FFFFF
XD              equ 0x80000000          ; bit 63, in the high dword
%macro ENTRY64 3                        ; address, low dword, high dword
        mov dword [%1], %2
        mov dword [%1 + 4], %3
%endmacro

        bits 32
main:
        mov edi, PDPT
        mov ecx, 4 * 1024
.z:     mov dword [edi], 0
        add edi, 4
        dec ecx
        jnz .z
        mov edi, PT0
        mov eax, 0x003
.id:    mov [edi], eax
        add edi, 8
        add eax, 0x1000
        cmp edi, PT0 + 4096
        jb .id
        ENTRY64 PDPT, PD0 | 1, 0
        ENTRY64 PD0 + 0 * 8, PT0 | 3, 0
        ENTRY64 PD0 + 1 * 8, 0x200000 | 0x83, 0         ; 2 MiB identity 2-4 MiB
        ENTRY64 PD0 + 2 * 8, PT1 | 3, 0
        ENTRY64 PD0 + 3 * 8, 0x800000 | 0x83, 0         ; linear 0x600000 -> 0x800000
        ENTRY64 PD0 + 4 * 8, 0x800000 | 0x83, XD        ; linear 0x800000 -> 0x800000, NX
        ENTRY64 PD0 + 5 * 8, 0xA00000 | 0x83 | 0x2000, 0 ; reserved bit 13 set
        ENTRY64 PT1 + 0 * 8, 0x210000 | 3, 0
        ENTRY64 PT1 + 1 * 8, 0x211000 | 3, XD           ; NX
        ENTRY64 PT1 + 2 * 8, 0x212000 | 3, 0
        ENTRY64 PT1 + 3 * 8, 0x213000 | 3, XD           ; never touched before NXE=0
        mov esi, code_bytes                             ; mov eax, 0x12345678 / ret
        mov edi, 0x211000
        call copy_code
        mov edi, 0x212000
        call copy_code
        mov dword [0x800100], 0
        ; ---- CPUID: PAE and NX
        mov eax, 1
        cpuid
        and edx, 1 << 6
        CHECK "cpuid-pae", edx, 1 << 6
        mov eax, 0x80000001
        cpuid
        and edx, 1 << 20
        CHECK "cpuid-nx", edx, 1 << 20
        ; ---- EFER.NXE, CR4.PAE, CR3, CR0.PG
        mov ecx, 0xC0000080
        rdmsr
        or eax, 0x800
        wrmsr
        mov eax, cr4
        or eax, 0x20
        mov cr4, eax
        mov eax, PDPT
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        jmp .on
.on:    mov eax, cr4
        and eax, 0x20
        CHECK "pae-on", eax, 0x20

        ; ---- 4 KiB and 2 MiB translations, A/D bits
        mov dword [0x400010], 0x24682468
        CHECK "pae-4k-translate", [0x210010], 0x24682468
        mov eax, [PT1]
        and eax, 0x60
        CHECK "pae-4k-accessed-dirty", eax, 0x60
        mov eax, [PD0 + 2 * 8]
        and eax, 0x60
        CHECK "pae-pde-accessed", eax, 0x20
        mov dword [0x600100], 0x9ABCDEF0
        CHECK "pae-2m-translate", [0x800100], 0x9ABCDEF0
        mov eax, [PD0 + 3 * 8]
        and eax, 0x60
        CHECK "pae-2m-accessed-dirty", eax, 0x60
        mov eax, [PD0 + 4 * 8]
        and eax, 0x60
        CHECK "pae-2m-read-accessed-only", eax, 0x20
        ; ---- not-present PDPTE
        TRY .r1
.f1:    mov eax, [0x40000010]
.r1:    ENDTRY
        EXPECT "pae-pdpte-not-present", 14, 0, .f1
        CHECK "pae-pdpte-not-present-cr2", [exc_cr2], 0x40000010

        ; ---- execute-disable
        mov eax, 0
        call 0x402000
        CHECK "pae-exec-allowed", eax, 0x12345678
        CHECK "nx-read-allowed", [0x401000], 0x345678B8
        TRY .r2
        call 0x401000
.r2:    ENDTRY
        mov eax, [saved_esp]                            ; the CALL pushed its return address
        sub eax, 4
        mov [saved_esp], eax
        EXPECT "nx-fetch-4k", 14, 0x11, 0x401000
        CHECK "nx-fetch-4k-cr2", [exc_cr2], 0x401000
        TRY .r3
        jmp 0x800000
.r3:    ENDTRY
        EXPECT "nx-fetch-2m", 14, 0x11, 0x800000
        ; ---- reserved bits
        TRY .r4
.f4:    mov eax, [0xA00000]
.r4:    ENDTRY
        EXPECT "pae-2m-reserved-bit", 14, 0x9, .f4
        mov ecx, 0xC0000080
        rdmsr
        and eax, ~0x800
        wrmsr
        TRY .r5
.f5:    mov eax, [0x403000]
.r5:    ENDTRY
        EXPECT "pae-xd-reserved-without-nxe", 14, 0x9, .f5
        jmp finish

copy_code:
        mov ecx, code_end - code_bytes
.l:     mov al, [esi]
        mov [edi], al
        inc esi
        inc edi
        dec ecx
        jnz .l
        mov esi, code_bytes
        ret
code_bytes:
        mov eax, 0x12345678
        ret
code_end:

%include "rom_end.inc"
