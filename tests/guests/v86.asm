; v86.asm - virtual-8086 mode: entry by IRET with EFLAGS.VM=1 (segment registers from the
; frame, base = selector * 16, CS:IP in the ROM at F000); with IOPL < 3, INT n, CLI and PUSHF trap
; to the #GP(0) monitor in ring 0 (frame with VM=1 and the V86 segment registers, data segment
; registers null in the monitor, stack from TSS.ESP0); with IOPL = 3, CLI/STI work and INT n goes
; through a DPL-3 IDT gate to ring 0 and IRET returns to V86 restoring ES/DS/FS/GS; INT n through
; a DPL-0 gate gives #GP(vector*8+2).  INT3 is not IOPL-sensitive (it goes through a DPL-3 IDT
; gate even with IOPL 0), and IN/OUT in V86 consult the TSS I/O bitmap whatever IOPL is (no
; bitmap here: #GP(0) with IOPL 0 and with IOPL 3).
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

MONLOG          equ 0x700               ; records of 16 dwords
mon_ds          equ var0 + 0x78
mon_n           equ var0 + 0x7C
v86_next        equ var0 + 0x74
V86_STORE       equ 0x5C0               ; what V86 code stores (seen from V86 with DS=0)
; record fields
L_ERR           equ 0
L_EIP           equ 4
L_CS            equ 8
L_EFL           equ 12
L_ES            equ 16
L_DS            equ 20
L_ESP           equ 24
L_HDS           equ 28
L_OP            equ 32
%define REC(i, f) [MONLOG + (i) * 64 + (f)]

%macro ENTER_V86 3                      ; EIP label, EFLAGS, ES
        push dword 0                    ; GS
        push dword 0                    ; FS
        push dword 0                    ; DS
        push dword %3                   ; ES
        push dword 0x7000               ; SS
        push dword 0xF000               ; ESP
        push dword %2                   ; EFLAGS
        push dword 0xF000               ; CS
        push dword R(%1)                ; EIP
        iretd
%endmacro

        bits 32
main:
        call setup_tss
        mov dword [mon_n], 0
        mov ebx, 13                     ; #GP -> the V86 monitor
        mov eax, v86_monitor
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        mov ebx, 0x21                   ; INT 0x21: DPL 3 gate
        mov eax, h21
        mov ecx, 0xEE00
        call set_gate
        mov ebx, 3                      ; INT3: DPL 3 gate
        mov eax, h21
        mov ecx, 0xEE00
        call set_gate
        mov ebx, 0x23                   ; INT 0x23: DPL 0 gate
        mov eax, h21
        mov ecx, 0x8E00
        call set_gate
        mov dword [0x10010], 0

        ; ---- phase 1: IOPL 0
        mov dword [v86_next], phase2
        ENTER_V86 v86_p1, 0x20002, 0x1000

phase2:
        CHECK "v86-cs", [V86_STORE], 0xF000
        CHECK "v86-ss-sp", [V86_STORE + 4], 0x7000F000
        CHECK "v86-seg-base", [0x10010], 0x76543210
        CHECK "v86-iopl0-traps", [mon_n], 6
        CHECK "v86-int-iopl0-gp-errcode", REC(0, L_ERR), 0
        CHECK "v86-int-iopl0-gp-eip", REC(0, L_EIP), R(v86_p1.int21)
        CHECK "v86-int-iopl0-gp-cs", REC(0, L_CS), 0xF000
        mov eax, REC(0, L_EFL)
        and eax, 0x23000
        CHECK "v86-int-iopl0-gp-eflags-vm", eax, 0x20000
        CHECK "v86-int-iopl0-gp-pushed-es", REC(0, L_ES), 0x1000
        CHECK "v86-int-iopl0-gp-pushed-ds", REC(0, L_DS), 0
        CHECK "v86-int-iopl0-gp-monitor-ds-null", REC(0, L_HDS), 0
        CHECK "v86-int-iopl0-gp-esp0", REC(0, L_ESP), STACK0_TSS - 40
        CHECK "v86-cli-iopl0-gp-eip", REC(1, L_EIP), R(v86_p1.cli)
        CHECK "v86-cli-iopl0-gp-errcode", REC(1, L_ERR), 0
        CHECK "v86-pushf-iopl0-gp-eip", REC(2, L_EIP), R(v86_p1.pushf)
        CHECK "v86-int3-iopl0-via-idt-eip", REC(3, L_EIP), R(v86_p1.int3r)
        CHECK "v86-int3-iopl0-via-idt-errcode-none", REC(3, L_ERR), NOERR
        CHECK "v86-in-iopl0-no-bitmap-gp-eip", REC(4, L_EIP), R(v86_p1.in80)
        CHECK "v86-in-iopl0-no-bitmap-gp-errcode", REC(4, L_ERR), 0
        CHECK "v86-hlt-gp-opcode", REC(5, L_OP), 0xF4

        ; ---- phase 2: IOPL 3
        mov dword [mon_n], 0
        mov dword [v86_next], done
        ENTER_V86 v86_p2, 0x23202, 0x1234

done:
        CHECK "v86-iopl3-cli", [V86_STORE + 8], 0
        CHECK "v86-iopl3-sti", [V86_STORE + 12], 0x200
        CHECK "v86-int-iopl3-via-idt-eip", REC(0, L_EIP), R(v86_p2.int21r)
        CHECK "v86-int-iopl3-via-idt-errcode-none", REC(0, L_ERR), NOERR
        CHECK "v86-int-iopl3-via-idt-cs", REC(0, L_CS), 0xF000
        mov eax, REC(0, L_EFL)
        and eax, 0x23000
        CHECK "v86-int-iopl3-via-idt-eflags", eax, 0x23000
        CHECK "v86-int-iopl3-via-idt-pushed-es", REC(0, L_ES), 0x1234
        CHECK "v86-int-iopl3-via-idt-handler-ds-null", REC(0, L_HDS), 0
        CHECK "v86-int-iopl3-via-idt-esp0", REC(0, L_ESP), STACK0_TSS - 36
        CHECK "v86-iret-restores-es", [V86_STORE + 16], 0x1234
        CHECK "v86-int-dpl0-gate-gp-errcode", REC(1, L_ERR), 0x23 * 8 + 2
        CHECK "v86-int-dpl0-gate-gp-eip", REC(1, L_EIP), R(v86_p2.int23)
        CHECK "v86-in-iopl3-no-bitmap-gp-eip", REC(2, L_EIP), R(v86_p2.in80)
        CHECK "v86-iopl3-traps", [mon_n], 4
        jmp finish

; #GP monitor: log the frame, skip the instruction (CD xx: 2 bytes, else 1), IRET to V86;
; HLT ends V86 and continues at [v86_next] in ring 0.
v86_monitor:
        mov [ss:mon_ds], ds
        pushad
        mov ax, SEL_DATA0
        mov ds, ax
        mov es, ax
        mov ebx, [mon_n]
        shl ebx, 6
        add ebx, MONLOG
        lea edx, [esp + 32]
        mov [ebx + L_ESP], edx
        mov eax, [edx]
        mov [ebx + L_ERR], eax
        mov eax, [edx + 4]
        mov [ebx + L_EIP], eax
        mov eax, [edx + 8]
        mov [ebx + L_CS], eax
        mov eax, [edx + 12]
        mov [ebx + L_EFL], eax
        mov eax, [edx + 24]
        mov [ebx + L_ES], eax
        mov eax, [edx + 28]
        mov [ebx + L_DS], eax
        movzx eax, word [mon_ds]
        mov [ebx + L_HDS], eax
        movzx eax, word [edx + 8]
        shl eax, 4
        add eax, [edx + 4]
        movzx ecx, byte [eax]
        mov [ebx + L_OP], ecx
        inc dword [mon_n]
        cmp cl, 0xF4
        je .exit
        cmp cl, 0xCD                    ; INT imm8 and IN/OUT imm8: 2 bytes
        je .two
        and cl, 0xF5
        cmp cl, 0xE4
        jne .one
.two:
        inc dword [edx + 4]
.one:   inc dword [edx + 4]
        popad
        add esp, 4
        iretd
.exit:  mov esp, STACK0
        jmp [v86_next]

; INT 0x21 from V86 with IOPL 3 (and INT 0x23's target, never reached): log, IRET to V86
h21:
        mov [ss:mon_ds], ds
        pushad
        mov ax, SEL_DATA0
        mov ds, ax
        mov es, ax
        mov ebx, [mon_n]
        shl ebx, 6
        add ebx, MONLOG
        lea edx, [esp + 32]
        mov [ebx + L_ESP], edx
        mov dword [ebx + L_ERR], NOERR
        mov eax, [edx]
        mov [ebx + L_EIP], eax
        mov eax, [edx + 4]
        mov [ebx + L_CS], eax
        mov eax, [edx + 8]
        mov [ebx + L_EFL], eax
        mov eax, [edx + 20]
        mov [ebx + L_ES], eax
        mov eax, [edx + 24]
        mov [ebx + L_DS], eax
        movzx eax, word [mon_ds]
        mov [ebx + L_HDS], eax
        inc dword [mon_n]
        popad
        iretd

        bits 16
v86_p1:
        mov ax, cs
        mov [V86_STORE], ax
        mov ax, ss
        mov [V86_STORE + 6], ax
        mov [V86_STORE + 4], sp
        mov dword [es:0x10], 0x76543210         ; ES=0x1000: linear 0x10010
.int21: int 0x21
.cli:   cli
.pushf: pushf
        int3
.int3r:
.in80:  in al, 0x80
        hlt

v86_p2:
        cli
        pushf
        pop ax
        and ax, 0x200
        mov [V86_STORE + 8], ax
        sti
        pushf
        pop ax
        cli
        and ax, 0x200
        mov [V86_STORE + 12], ax
        int 0x21
.int21r:
        mov ax, es
        mov [V86_STORE + 16], ax
.int23: int 0x23
.in80:  in al, 0x80
        hlt

%include "rom_end.inc"
