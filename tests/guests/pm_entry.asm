; pm_entry.asm - protected-mode entry and exit.
; Real mode -> GDT, CR0.PE, far jump to a 32-bit code segment; data segments with a non-zero
; base; the CPU setting a descriptor's accessed bit; a 16-bit protected-mode code segment; back
; to real mode keeping 4 GiB limits in the descriptor caches ("unreal" mode); real-mode segment
; bases; a real-mode segment limit violation (#GP through the IVT); and back into protected mode.
; Also the segmentation instructions: LLDT/SLDT with a segment from the LDT, LAR, LSL, VERR,
; VERW, ARPL, and an expand-down data segment; LMSW cannot clear PE; the A20 gate (port 0x92)
; wrapping addresses at 1 MiB when disabled.
%include "common.inc"

gdt_rom:
        GDT_COMMON
        DESC 0x20000, 0xFFFF, 0x92, 0           ; 0x40 data16 base 0x20000, accessed bit clear
        DESC LDT_BASE, 0x17, 0x82, 0            ; 0x48 LDT (3 entries)
        DESC 0, 0xFFF, 0x97, 0x4                ; 0x50 data32 expand-down, limit 0xFFF
        DESC 0, 0xFFFFF, 0x99, 0xC              ; 0x58 code, execute-only
gdt_rom_end:
LDT_BASE        equ 0x7000

; ZF after an instruction, as 0/1 in EAX
%macro ZF_TO_EAX 0
        setz al
        movzx eax, al
%endmacro

        bits 32
main:
        mov ax, cs
        movzx eax, ax
        CHECK "pm-cs-selector", eax, SEL_CODE0
        smsw ax
        and eax, 1
        CHECK "pm-cr0-pe", eax, 1
        mov ax, ss
        movzx eax, ax
        CHECK "pm-ss-selector", eax, SEL_DATA0
        ; 32-bit stack: PUSH moves ESP by 4
        mov ebx, esp
        push dword 0x5A5A5A5A
        sub ebx, esp
        pop eax
        CHECK "pm-push32", ebx, 4
        ; SGDT stores what LGDT loaded
        mov dword [var0], 0
        mov dword [var0 + 4], 0
        sgdt [var0]
        movzx eax, word [var0]
        CHECK "sgdt-limit", eax, gdt_rom_end - gdt_rom - 1
        CHECK "sgdt-base", [var0 + 2], GDT_BASE
        ; a data segment with base 0x20000; loading it sets the accessed bit in the GDT
        mov dword [0x20010], 0
        mov ax, 0x40
        mov es, ax
        mov dword [es:0x10], 0x12345678
        CHECK "data-seg-base", [0x20010], 0x12345678
        movzx eax, byte [GDT_BASE + 0x40 + 5]
        CHECK "gdt-accessed-bit", eax, 0x93
        mov ax, SEL_DATA0
        mov es, ax

        ; ---- LDT: LLDT, SLDT, a data segment from the LDT (TI=1)
        mov dword [LDT_BASE], 0
        mov dword [LDT_BASE + 4], 0
        mov esi, ldt_entry
        mov eax, [esi]
        mov [LDT_BASE + 8], eax
        mov eax, [esi + 4]
        mov [LDT_BASE + 12], eax
        mov ax, 0x48
        lldt ax
        xor eax, eax
        sldt ax
        CHECK "sldt", eax, 0x48
        mov dword [0x30020], 0
        mov ax, 0x0C                            ; LDT index 1
        mov fs, ax
        mov dword [fs:0x20], 0x0BADCAFE
        CHECK "ldt-segment-base", [0x30020], 0x0BADCAFE
        mov ax, SEL_DATA0
        mov fs, ax
        xor eax, eax
        str ax
        CHECK "str-before-ltr", eax, 0
        ; ---- LAR / LSL / VERR / VERW / ARPL
        mov ecx, SEL_DATA0
        xor ebx, ebx
        lar ebx, ecx
        ZF_TO_EAX
        CHECK "lar-valid-zf", eax, 1
        and ebx, 0x00F0FF00                     ; bits 19:16 undefined
        CHECK "lar-data-rights", ebx, 0x00C09300
        mov ecx, 0x0C
        lar ebx, ecx
        and ebx, 0x00F0FF00
        CHECK "lar-ldt-selector", ebx, 0x00009300
        mov ecx, 0x1238
        mov ebx, 0x55
        lar ebx, ecx
        ZF_TO_EAX
        CHECK "lar-beyond-gdt-zf", eax, 0
        CHECK "lar-beyond-gdt-unchanged", ebx, 0x55
        xor ecx, ecx
        lar ebx, ecx
        ZF_TO_EAX
        CHECK "lar-null-zf", eax, 0
        mov ecx, SEL_DATA0
        lsl ebx, ecx
        CHECK "lsl-granular", ebx, 0xFFFFFFFF
        mov ecx, 0x40
        lsl ebx, ecx
        CHECK "lsl-byte", ebx, 0xFFFF
        mov ecx, SEL_TSS
        lsl ebx, ecx
        ZF_TO_EAX
        CHECK "lsl-tss-zf", eax, 1
        CHECK "lsl-tss", ebx, 0x2068
        mov ecx, 0x48                           ; LDT descriptors are valid for LSL too
        lsl ebx, ecx
        CHECK "lsl-ldt", ebx, 0x17
        mov cx, 0x58
        verr cx
        ZF_TO_EAX
        CHECK "verr-exec-only", eax, 0
        mov cx, SEL_CODE0
        verr cx
        ZF_TO_EAX
        CHECK "verr-readable-code", eax, 1
        verw cx
        ZF_TO_EAX
        CHECK "verw-code", eax, 0
        mov cx, SEL_DATA0
        verw cx
        ZF_TO_EAX
        CHECK "verw-data", eax, 1
        mov cx, SEL_TSS
        verr cx
        ZF_TO_EAX
        CHECK "verr-system", eax, 0
        mov eax, 0x0010
        mov ebx, 0x0003
        arpl ax, bx
        mov ecx, 0
        setz cl
        CHECK "arpl-raises-rpl", eax, 0x13
        CHECK "arpl-zf", ecx, 1
        mov eax, 0x0013
        arpl ax, bx
        mov ecx, 1
        setz cl
        CHECK "arpl-unchanged-zf", ecx, 0
        ; ---- expand-down data segment: offsets above the limit only
        mov ax, 0x50
        mov es, ax
        mov dword [0x10000], 0
        mov dword [es:0x10000], 0x0DDBA11
        CHECK "expand-down-above-limit", [0x10000], 0x0DDBA11
        TRY .r_ed
.f_ed:  mov eax, [es:0x800]
.r_ed:  ENDTRY
        EXPECT "gp-expand-down-below-limit", 13, 0, .f_ed
        mov ax, SEL_DATA0
        mov es, ax

        ; ---- LMSW sets but never clears PE
        smsw ax
        and ax, 0xFFFE
        lmsw ax
        smsw ax
        and eax, 1
        CHECK "lmsw-cannot-clear-pe", eax, 1

        ; into a 16-bit code segment (base F0000), then real mode
        xor eax, eax
        mov [var0], eax
        mov [var0 + 4], eax
        mov [var0 + 8], eax
        mov [var0 + 12], eax
        mov dword [0x200000], 0
        mov dword [0x20030], 0
        jmp SEL_CODE16:R(code16)

ldt_entry:
        DESC 0x30000, 0xFFFF, 0x93, 0           ; LDT 0x0C: data, base 0x30000

        bits 16
code16:
        db 0xB8, 0x34, 0x12, 0x90, 0x90         ; 16-bit: mov ax,0x1234 / nop / nop
        mov [var0], eax
        mov ax, SEL_DATA16                      ; 64 KiB, B=0 stack and FS; DS/ES/GS stay 4 GiB
        mov ss, ax
        mov fs, ax
        mov esp, 0x7000
        mov eax, cr0
        and al, 0xFE
        mov cr0, eax
        jmp 0xF000:R(real_again)
real_again:
        mov ax, cs
        mov [var0 + 4], ax
        xor ax, ax
        mov ds, ax                              ; real-mode loads keep the 4 GiB limit
        mov es, ax
        mov ss, ax
        mov esi, 0x200000
        mov dword [esi], 0xCAFEBABE
        mov eax, [esi]
        mov [var0 + 8], eax
        mov ax, 0x2000
        mov es, ax
        mov dword [es:0x30], 0x11223344         ; physical 0x20030
        xor ax, ax
        mov es, ax
        ; A20 off: FFFF:0600 (linear 0x1005F0) wraps to 0x5F0; A20 on: it does not
        mov dword [var0 + 0x70], 0
        mov dword [var0 + 0x74], 0
        in al, 0x92
        and al, 0xFC
        out 0x92, al
        mov ax, 0xFFFF
        mov es, ax
        mov dword [es:0x600], 0xA20A20A2
        in al, 0x92
        or al, 2
        out 0x92, al
        mov dword [es:0x604], 0x0A200A20
        xor ax, ax
        mov es, ax
        ; real-mode IVT, #GP handler, then a read past FS's 64 KiB limit
        mov word [var0 + 0x20], 0x3FF
        mov dword [var0 + 0x22], 0
        o32 lidt [var0 + 0x20]
        mov word [13 * 4], R(rm_gp)
        mov word [13 * 4 + 2], 0xF000
        mov esi, 0x10000
        mov eax, [fs:esi]
rm_after_gp:
        o32 lidt [idtr_ram]
        mov eax, cr0
        or al, 1
        mov cr0, eax
        jmp dword SEL_CODE0:pm_again
rm_gp:
        mov dword [var0 + 12], 13
        mov sp, 0x7000
        jmp 0xF000:R(rm_after_gp)

        bits 32
pm_again:
        mov ax, SEL_DATA0
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, STACK0
        CHECK "code16-operand-size", [var0], 0x1234
        CHECK "real-mode-cs", [var0 + 4], 0xF000
        CHECK "unreal-4g-read", [var0 + 8], 0xCAFEBABE
        CHECK "unreal-4g-write", [0x200000], 0xCAFEBABE
        CHECK "real-mode-seg-base", [0x20030], 0x11223344
        CHECK "real-mode-limit-gp", [var0 + 12], 13
        CHECK "a20-off-wraps", [var0 + 0x70], 0xA20A20A2
        CHECK "a20-on-no-wrap", [var0 + 0x74], 0
        CHECK "a20-on-above-1m", [0x1005F4], 0x0A200A20
        mov ax, cs
        movzx eax, ax
        CHECK "pm-reentry-cs", eax, SEL_CODE0
        jmp finish

%include "rom_end.inc"
