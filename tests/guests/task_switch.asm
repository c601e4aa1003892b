; task_switch.asm - hardware task switching with 32-bit TSSs: JMP to a TSS (busy bits, registers
; saved into the old TSS and loaded from the new, TR, CR0.TS, NT clear), CALL to a TSS (back link,
; NT set, the caller stays busy) and IRET back through the back link, INT through a task gate, an
; exception through a task gate (error code pushed on the new task's stack), #TS for a TSS whose
; limit is too small, #GP for a JMP to a busy TSS, and #TS for a bad LDT selector in the new
; TSS, raised after the switch committed, delivered through a task gate (the new task is the one
; that faulted: its saved EIP is its first instruction, it is busy and is the handler's back link).
%include "common.inc"

TSS_B           equ 0x6000
TSS_C           equ 0x6100
SEL_TSS_B       equ 0x40
SEL_TSS_C       equ 0x48
STACK_B         equ 0x8C000
STACK_D         equ 0x8B000

gdt_rom:
        GDT_COMMON
        DESC TSS_B, 0x67, 0x89, 0               ; 0x40 TSS B, available
        DESC TSS_C, 0x50, 0x89, 0               ; 0x48 TSS C, limit too small
        DESC TSS_D, 0x67, 0x89, 0               ; 0x50 TSS D, the #TS handler task
gdt_rom_end:
TSS_D           equ 0x6200
SEL_TSS_D       equ 0x50

%define TYPE_OF(sel) byte [GDT_BASE + (sel) + 5]

        bits 32
main:
        call setup_tss
        ; ---- JMP to TSS B
        mov eax, tb_jmp
        call init_tss_b
        mov eax, 0xA0A0A0A0
        jmp SEL_TSS_B:0
.after_jmp:
        mov [var0 + 0x40], eax
        str ax
        movzx eax, ax
        mov [var0 + 0x44], eax
        movzx eax, TYPE_OF(SEL_TSS_B)
        mov [var0 + 0x48], eax
        CHECK "jmp-tss-regs-loaded", [var0], 0xB0B0B0B0
        CHECK "jmp-tss-tr", [var0 + 4], SEL_TSS_B
        CHECK "jmp-tss-new-busy", [var0 + 8], 0x8B
        CHECK "jmp-tss-old-not-busy", [var0 + 12], 0x89
        CHECK "jmp-tss-nt-clear", [var0 + 16], 0
        CHECK "jmp-tss-sets-cr0-ts", [var0 + 20], 8
        CHECK "jmp-tss-saved-eip", [var0 + 24], .after_jmp
        CHECK "jmp-tss-saved-eax", [var0 + 28], 0xA0A0A0A0
        CHECK "jmp-tss-back-link-untouched", [var0 + 32], 0
        CHECK "jmp-back-regs-restored", [var0 + 0x40], 0xA0A0A0A0
        CHECK "jmp-back-tr", [var0 + 0x44], SEL_TSS
        CHECK "jmp-back-old-not-busy", [var0 + 0x48], 0x89
        clts

        ; ---- CALL to TSS B, IRET back
        mov eax, tb_nested
        call init_tss_b
        mov eax, 0xA1A1A1A1
        call SEL_TSS_B:0
.after_call:
        call record_return
        CHECK "call-tss-nt-set", [var0 + 16], 0x4000
        CHECK "call-tss-back-link", [var0 + 32], SEL_TSS
        CHECK "call-tss-caller-stays-busy", [var0 + 12], 0x8B
        CHECK "call-tss-new-busy", [var0 + 8], 0x8B
        CHECK "call-tss-saved-eip", [var0 + 24], .after_call
        CHECK "iret-task-regs-restored", [var0 + 0x40], 0xA1A1A1A1
        CHECK "iret-task-tr", [var0 + 0x44], SEL_TSS
        CHECK "iret-task-callee-not-busy", [var0 + 0x48], 0x89
        CHECK "iret-task-caller-busy", [var0 + 0x4C], 0x8B
        CHECK "iret-task-caller-nt-clear", [var0 + 0x50], 0
        clts

        ; ---- INT through a task gate
        mov eax, tb_nested
        call init_tss_b
        mov ebx, 0x40
        xor eax, eax
        mov ecx, 0x8500                         ; task gate, DPL 0
        mov edx, SEL_TSS_B
        call set_gate
        mov eax, 0xA2A2A2A2
        int 0x40
.after_int:
        call record_return
        CHECK "int-task-gate-nt-set", [var0 + 16], 0x4000
        CHECK "int-task-gate-back-link", [var0 + 32], SEL_TSS
        CHECK "int-task-gate-saved-eip", [var0 + 24], .after_int
        CHECK "int-task-gate-return", [var0 + 0x40], 0xA2A2A2A2
        CHECK "int-task-gate-callee-not-busy", [var0 + 0x48], 0x89
        clts

        ; ---- #GP through a task gate: the error code lands on the new task's stack
        mov eax, tb_exc
        call init_tss_b
        mov ebx, 13
        xor eax, eax
        mov ecx, 0x8500
        mov edx, SEL_TSS_B
        call set_gate
        mov ax, 0x1238
.f_exc: mov ds, ax                              ; #GP(0x1238); tb_exc skips this instruction
.after_exc:
        mov ebx, 13                             ; restore the #GP interrupt gate
        mov eax, exc_stubs + 13 * 16
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        clts
        CHECK "exc-task-gate-errcode", [var0 + 0x60], 0x1238
        CHECK "exc-task-gate-stack", [var0 + 0x64], STACK_B - 4
        CHECK "exc-task-gate-saved-eip", [var0 + 0x68], .f_exc

        ; ---- #TS: TSS limit below 0x67
        TRY .r_ts
.f_ts:  jmp SEL_TSS_C:0
.r_ts:  ENDTRY
        EXPECT "ts-tss-limit", 10, SEL_TSS_C, .f_ts
        ; ---- #GP: JMP to the busy (current) TSS
        TRY .r_busy
.f_busy:
        jmp SEL_TSS:0
.r_busy:
        ENDTRY
        EXPECT "jmp-busy-tss-gp", 13, SEL_TSS, .f_busy
        ; ---- #TS after the commit point: the new TSS names a non-LDT descriptor as its LDT;
        ;      the #TS goes through a task gate to task D
        mov eax, tb_never
        call init_tss_b
        mov dword [TSS_B + 0x60], SEL_TSS       ; LDT field: a TSS descriptor
        mov esi, TSS_B                          ; task D: a copy of B running tb_ts
        mov edi, TSS_D
        mov ecx, 0x68 / 4
.cpd:   mov eax, [esi]
        mov [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .cpd
        mov dword [TSS_D + 0x20], tb_ts
        mov dword [TSS_D + 0x38], STACK_D
        mov dword [TSS_D + 0x60], 0
        mov ebx, 10
        xor eax, eax
        mov ecx, 0x8500
        mov edx, SEL_TSS_D
        call set_gate
        jmp SEL_TSS_B:0
.after_ldt:
        jmp finish                              ; not reached: tb_ts finishes

; after returning to task A: registers, TR, busy bits, NT
record_return:
        mov [var0 + 0x40], eax
        str ax
        movzx eax, ax
        mov [var0 + 0x44], eax
        movzx eax, TYPE_OF(SEL_TSS_B)
        mov [var0 + 0x48], eax
        movzx eax, TYPE_OF(SEL_TSS)
        mov [var0 + 0x4C], eax
        pushfd
        pop eax
        and eax, 0x4000
        mov [var0 + 0x50], eax
        ret

; init_tss_b: EAX = entry point; a fresh ring-0 task with EAX=0xB0B0B0B0
init_tss_b:
        mov edi, TSS_B
        mov ecx, 0x68 / 4
.z:     mov dword [edi], 0
        add edi, 4
        dec ecx
        jnz .z
        mov [TSS_B + 0x20], eax                 ; EIP
        mov dword [TSS_B + 0x24], 0x2           ; EFLAGS
        mov dword [TSS_B + 0x28], 0xB0B0B0B0    ; EAX
        mov dword [TSS_B + 0x38], STACK_B       ; ESP
        mov dword [TSS_B + 0x4C], SEL_CODE0     ; CS
        mov dword [TSS_B + 0x48], SEL_DATA0     ; ES
        mov dword [TSS_B + 0x50], SEL_DATA0     ; SS
        mov dword [TSS_B + 0x54], SEL_DATA0     ; DS
        mov dword [TSS_B + 0x58], SEL_DATA0     ; FS
        mov dword [TSS_B + 0x5C], SEL_DATA0     ; GS
        mov word [TSS_B + 0x66], 0x68
        ret

; task B: what the new task sees
record_in_b:
        mov [var0], eax
        str ax
        movzx eax, ax
        mov [var0 + 4], eax
        movzx eax, TYPE_OF(SEL_TSS_B)
        mov [var0 + 8], eax
        movzx eax, TYPE_OF(SEL_TSS)
        mov [var0 + 12], eax
        pushfd
        pop eax
        and eax, 0x4000
        mov [var0 + 16], eax
        smsw ax
        and eax, 8
        mov [var0 + 20], eax
        mov eax, [TSS_BASE + 0x20]
        mov [var0 + 24], eax
        mov eax, [TSS_BASE + 0x28]
        mov [var0 + 28], eax
        movzx eax, word [TSS_B]
        mov [var0 + 32], eax
        ret

tb_jmp:
        call record_in_b
        jmp SEL_TSS:0
tb_nested:
        call record_in_b
        iretd
tb_never:
        jmp finish

; the #TS handler task
tb_ts:
        mov eax, [esp]
        mov [var0 + 0x10], eax
        mov [var0 + 0x14], esp
        str ax
        movzx eax, ax
        CHECK "ts-bad-ldt-task-gate-tr", eax, SEL_TSS_D
        CHECK "ts-bad-ldt-errcode", [var0 + 0x10], SEL_TSS
        CHECK "ts-bad-ldt-errcode-on-handler-stack", [var0 + 0x14], STACK_D - 4
        movzx eax, word [TSS_D]
        CHECK "ts-bad-ldt-back-link-is-new-task", eax, SEL_TSS_B
        CHECK "ts-bad-ldt-new-task-eip", [TSS_B + 0x20], tb_never
        movzx eax, TYPE_OF(SEL_TSS_B)
        CHECK "ts-bad-ldt-new-task-busy", eax, 0x8B
        movzx eax, TYPE_OF(SEL_TSS)
        CHECK "ts-bad-ldt-old-task-not-busy", eax, 0x89
        CHECK "ts-bad-ldt-old-task-saved-eip", [TSS_BASE + 0x20], main.after_ldt
        jmp finish
tb_exc:
        mov eax, [esp]
        mov [var0 + 0x60], eax
        mov [var0 + 0x64], esp
        mov eax, [TSS_BASE + 0x20]
        mov [var0 + 0x68], eax
        mov dword [TSS_BASE + 0x20], main.after_exc     ; resume task A after the fault
        add esp, 4
        iretd

%include "rom_end.inc"
