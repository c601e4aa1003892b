; privilege.asm - privilege levels: IRET to ring 3, INT through a DPL-3 gate to ring 0 with the
; stack switch from the TSS (pushed SS:ESP), INT through a DPL-0 gate from ring 3 (#GP with an
; IDT error code), privileged and IOPL-sensitive instructions in ring 3, the TSS I/O permission
; bitmap, a call gate with parameter copying and RETF back to ring 3, data segment registers
; nulled on a return to an outer level, POPF ignoring IOPL/IF in ring 3, and #AC.  Also:
; interrupt gates clear IF and trap gates do not; a far call from ring 3 to a conforming ring-0
; segment keeps CPL 3 and to a non-conforming one faults; SYSENTER/SYSEXIT.
%include "common.inc"

CG_PARAMS       equ 2
gdt_rom:
        GDT_COMMON
        ; 0x40: 32-bit call gate, DPL 3, to SEL_CODE0:cg_target, copying 2 dwords
        dw A(cg_target) & 0xFFFF
        dw SEL_CODE0
        db CG_PARAMS
        db 0xEC
        dw A(cg_target) >> 16
        DESC 0, 0xFFFFF, 0x9F, 0xC              ; 0x48 code32 ring 0, conforming, flat
gdt_rom_end:

        bits 32
main:
        call setup_rings
        mov ebx, 0x30                           ; INT 0x30: DPL 3 gate -> h30
        mov eax, h30
        mov ecx, 0xEE00
        mov edx, SEL_CODE0
        call set_gate
        mov ebx, 0x31                           ; INT 0x31: DPL 0 gate
        mov eax, h30
        mov ecx, 0x8E00
        call set_gate

        ; ---- IRET to ring 3: CS/SS/ESP from the frame, DS (DPL 0) nulled
        mov ax, SEL_DATA0
        mov ds, ax
        mov es, ax
        push dword SEL_DATA3
        push dword STACK3
        pushfd
        push dword SEL_CODE3
        push dword .r3
        iretd
.r3:    mov bx, ds
        mov cx, cs
        mov dx, ss
        mov edi, esp
        mov ax, SEL_DATA3
        mov ds, ax
        mov es, ax
        movzx ebx, bx
        mov [var0], ebx
        movzx ecx, cx
        mov [var0 + 4], ecx
        movzx edx, dx
        mov [var0 + 8], edx
        mov [var0 + 12], edi
        ; ---- INT 0x30 through the DPL 3 gate: ring 0 on SS0:ESP0 from the TSS
        mov dword [var0 + 0x10], 0
.int30: int 0x30
.int30r:
        mov [var0 + 0x40], esp
        RING0
        CHECK "iret-ring3-nulls-ds", [var0], 0
        CHECK "iret-ring3-cs", [var0 + 4], SEL_CODE3
        CHECK "iret-ring3-ss", [var0 + 8], SEL_DATA3
        CHECK "iret-ring3-esp", [var0 + 12], STACK3
        CHECK "int-ring0-cs", [var0 + 0x10], SEL_CODE0
        CHECK "int-ring0-ss-from-tss", [var0 + 0x14], SEL_DATA0
        CHECK "int-ring0-esp-from-tss", [var0 + 0x18], STACK0_TSS - 20
        CHECK "int-frame-eip", [var0 + 0x1C], .int30r
        CHECK "int-frame-cs", [var0 + 0x20], SEL_CODE3
        CHECK "int-frame-esp", [var0 + 0x28], STACK3
        CHECK "int-frame-ss", [var0 + 0x2C], SEL_DATA3
        CHECK "iret-back-to-ring3-esp", [var0 + 0x40], STACK3

        ; ---- INT 0x31 through a DPL 0 gate from ring 3: #GP(0x31*8+2) on the ring-0 stack
        RING3
        TRY .r31
.f31:   int 0x31
.r31:   ENDTRY
        RESUME0
        CHECK "int-dpl0-gate-gp-vector", [exc_vec], 13
        CHECK "int-dpl0-gate-gp-errcode", [exc_frame], 0x31 * 8 + 2
        CHECK "int-dpl0-gate-gp-eip", [exc_frame + 4], .f31
        CHECK "int-dpl0-gate-gp-cs", [exc_frame + 8], SEL_CODE3
        CHECK "int-dpl0-gate-gp-esp", [exc_frame + 16], STACK3
        CHECK "int-dpl0-gate-gp-ss", [exc_frame + 20], SEL_DATA3
        CHECK "fault-ring3-stack-switch", [exc_esp], STACK0_TSS - 24

        ; ---- privileged / IOPL-sensitive instructions in ring 3 (IOPL 0)
%macro GP0_IN_RING3 2
        RING3
        TRY %%r
%%f:    %2
%%r:    ENDTRY
        RESUME0
        EXPECT_FRAME %1, 13, 0, %%f
%endmacro
        GP0_IN_RING3 "ring3-cli-iopl0", cli
        GP0_IN_RING3 "ring3-hlt", hlt
        GP0_IN_RING3 "ring3-mov-cr0", {mov eax, cr0}
        GP0_IN_RING3 "ring3-lgdt", {lgdt [gdtr_ram]}
        GP0_IN_RING3 "ring3-in-no-bitmap", {in al, 0x80}

        ; ---- IOPL 3: CLI allowed in ring 3
        pushfd
        pop eax
        or eax, 0x3200                          ; IOPL=3, IF=1
        RING3 eax
        cli
        pushfd
        pop eax
        mov [var0], eax
        RING0
        mov eax, [var0]
        and eax, 0x3200
        CHECK "ring3-cli-iopl3", eax, 0x3000

        ; ---- POPF in ring 3 with IOPL 0 leaves IOPL and IF alone
        pushfd
        pop eax
        and eax, ~0x3200                        ; IOPL=0, IF=0
        RING3 eax
        push dword 0x3200 | 0x2
        popfd
        pushfd
        pop eax
        mov [var0], eax
        RING0
        mov eax, [var0]
        and eax, 0x3200
        CHECK "ring3-popf-keeps-iopl-if", eax, 0

        ; ---- the I/O permission bitmap: port 0xE9 allowed, 0xEA not
        mov edi, TSS_BASE + 0x68
        mov ecx, 0x2000 / 4
.fill:  mov dword [edi], 0xFFFFFFFF
        add edi, 4
        dec ecx
        jnz .fill
        mov byte [edi], 0xFF                    ; the byte after the bitmap
        and byte [TSS_BASE + 0x68 + 0xE9 / 8], ~(1 << (0xE9 & 7))
        mov word [TSS_BASE + 0x66], 0x68
        RING3
        TRY .rio1
        mov al, 'I'
        out 0xE9, al                            ; permitted by the bitmap
        mov al, 10
        out 0xE9, al
.rio1:  ENDTRY
        mov eax, [exc_vec]
        mov [var0], eax
        TRY .rio2
.fio2:  out 0xEA, al                            ; not permitted
.rio2:  ENDTRY
        RESUME0
        CHECK "io-bitmap-allows-port", [var0], 0xFF
        CHECK "io-bitmap-denies-port-vector", [exc_vec], 13
        CHECK "io-bitmap-denies-port-eip", [exc_frame + 4], .fio2
        mov word [TSS_BASE + 0x66], 0x3000

        ; ---- call gate from ring 3 with 2 parameters, RETF 8 back
        RING3
        mov [var0 + 0x40], esp
        push dword 0x11111111
        push dword 0x22222222
.cgc:   call 0x43:0                             ; gate selector, RPL 3
.cgr:   mov bx, ds
        movzx ebx, bx
        mov cx, cs
        movzx ecx, cx
        mov edx, esp
        mov ax, SEL_DATA3
        mov ds, ax
        mov [var0 + 0x44], ebx
        mov [var0 + 0x48], ecx
        mov [var0 + 0x4C], edx
        RING0
        CHECK "callgate-ring0-cs", [var0 + 0x20], SEL_CODE0
        CHECK "callgate-ring0-esp", [var0 + 0x24], STACK0_TSS - 24
        CHECK "callgate-frame-eip", [var0 + 0x28], .cgr
        CHECK "callgate-frame-cs", [var0 + 0x2C], SEL_CODE3
        CHECK "callgate-param0", [var0 + 0x30], 0x22222222
        CHECK "callgate-param1", [var0 + 0x34], 0x11111111
        mov eax, [var0 + 0x40]
        sub eax, 8
        CHECK "callgate-frame-esp", [var0 + 0x38], eax
        CHECK "callgate-frame-ss", [var0 + 0x3C], SEL_DATA3
        CHECK "retf-outer-nulls-ds", [var0 + 0x44], 0
        CHECK "retf-outer-cs", [var0 + 0x48], SEL_CODE3
        CHECK "retf-imm-outer-esp", [var0 + 0x4C], [var0 + 0x40]

        ; ---- interrupt gate clears IF, trap gate keeps it (the PICs are masked)
        mov ebx, 0x33
        mov eax, h_flags
        mov ecx, 0x8E00                         ; interrupt gate
        mov edx, SEL_CODE0
        call set_gate
        mov ebx, 0x34
        mov ecx, 0x8F00                         ; trap gate
        call set_gate
        sti
        int 0x33
        mov eax, [var0 + 0x50]
        mov [var0 + 0x54], eax
        int 0x34
        cli
        mov eax, [var0 + 0x54]
        and eax, 0x200
        CHECK "interrupt-gate-clears-if", eax, 0
        mov eax, [var0 + 0x50]
        and eax, 0x200
        CHECK "trap-gate-keeps-if", eax, 0x200

        ; ---- far calls from ring 3: conforming ring-0 code runs at CPL 3
        RING3
        call 0x48:conf_target
        RING0
        CHECK "conforming-call-keeps-cpl", [var0 + 0x58], 0x4B
        RING3
        TRY .rnc
.fnc:   call SEL_CODE0:conf_target
.rnc:   ENDTRY
        RESUME0
        EXPECT_FRAME "far-call-to-inner-nonconforming-gp", 13, SEL_CODE0, .fnc

        ; ---- SYSENTER / SYSEXIT
        mov ecx, 0x174
        mov eax, SEL_CODE0
        xor edx, edx
        wrmsr
        mov ecx, 0x175
        mov eax, STACK0_TSS - 0x100
        wrmsr
        mov ecx, 0x176
        mov eax, sysenter_target
        wrmsr
        RING3
        mov ecx, esp
        mov edx, .after_sysexit
        sysenter
.after_sysexit:
        mov bx, cs
        mov cx, ss
        mov edi, esp
        mov ax, SEL_DATA3
        mov ds, ax
        movzx ebx, bx
        mov [var0 + 0x70], ebx
        movzx ecx, cx
        mov [var0 + 0x74], ecx
        mov [var0 + 0x78], edi
        RING0
        CHECK "sysenter-cs", [var0 + 0x60], SEL_CODE0
        CHECK "sysenter-ss", [var0 + 0x64], SEL_DATA0
        CHECK "sysenter-esp", [var0 + 0x68], STACK0_TSS - 0x100
        CHECK "sysexit-cs", [var0 + 0x70], SEL_CODE3
        CHECK "sysexit-ss", [var0 + 0x74], SEL_DATA3
        CHECK "sysexit-esp", [var0 + 0x78], STACK3

        ; ---- #AC: CR0.AM, EFLAGS.AC, ring 3, misaligned dword
        mov eax, cr0
        or eax, 0x40000
        mov cr0, eax
        pushfd
        pop eax
        or eax, 0x40000
        RING3 eax
        TRY .rac
.fac:   mov eax, [var0 + 1]
.rac:   ENDTRY
        RESUME0
        mov eax, cr0
        and eax, ~0x40000
        mov cr0, eax
        EXPECT_FRAME "ac", 17, 0, .fac
        jmp finish

; INT 0x30 handler (ring 0): record where we are and the frame, IRET back
h30:
        mov ax, cs
        movzx eax, ax
        mov [var0 + 0x10], eax
        mov ax, ss
        movzx eax, ax
        mov [var0 + 0x14], eax
        mov [var0 + 0x18], esp
%assign k 0
%rep 5
        mov eax, [esp + 4*k]
        mov [var0 + 0x1C + 4*k], eax
%assign k k+1
%endrep
        iretd

; INT 0x33/0x34: record EFLAGS inside the handler
h_flags:
        pushfd
        pop dword [var0 + 0x50]
        iretd

; a conforming segment's code: record CS
conf_target:
        mov ax, cs
        movzx eax, ax
        mov [var0 + 0x58], eax
        retf

sysenter_target:
        mov ax, SEL_DATA0
        mov ds, ax
        mov es, ax
        mov ax, cs
        movzx eax, ax
        mov [var0 + 0x60], eax
        mov ax, ss
        movzx eax, ax
        mov [var0 + 0x64], eax
        mov [var0 + 0x68], esp
        mov ax, SEL_DATA3
        mov ds, ax
        mov es, ax
        sysexit

; the call gate's target (ring 0)
cg_target:
        mov ax, cs
        movzx eax, ax
        mov [var0 + 0x20], eax
        mov [var0 + 0x24], esp
%assign k 0
%rep 6
        mov eax, [esp + 4*k]
        mov [var0 + 0x28 + 4*k], eax
%assign k k+1
%endrep
        mov ax, SEL_DATA0                       ; DPL 0 data: must be nulled by RETF to ring 3
        mov ds, ax
        retf 4 * CG_PARAMS

%include "rom_end.inc"
