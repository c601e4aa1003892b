; apic.asm - the local APIC from a protected-mode guest (SDM Vol. 3A, chapter 10): CPUID.1:EDX.APIC,
; IA32_APIC_BASE, the power-on register values (version, SVR, LVT LINT0 and timer masked), software
; enable through the spurious-interrupt vector register, TPR/PPR, a self IPI, TPR holding a
; request in IRR until lowered, the timer in one-shot mode (one interrupt, current count 0
; after it) and in periodic mode (interrupts counted with HLT; none while masked).
;
; Run under Aero with MachineConfig(apic=True) (tests/devices/test_apic.py) and under
; qemu-system-i386, whose pc machine always has an APIC.  Timing-independent: the checks hold
; whatever the APIC bus clock and the instruction rate.  It lives in its own directory because
; the guests beside common.inc run on aero.testing.romrun's bare CPU, which has no APIC.
; Build (from this directory): nasm -f bin -I ../ -o apic.bin apic.asm
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

APIC            equ 0xFEE00000
A_VER           equ APIC + 0x030
A_TPR           equ APIC + 0x080
A_PPR           equ APIC + 0x0A0
A_EOI           equ APIC + 0x0B0
A_SVR           equ APIC + 0x0F0
A_ISR1          equ APIC + 0x100 + 0x10 * (0x41 / 32)
A_IRR1          equ APIC + 0x200 + 0x10 * (0x41 / 32)
A_ICR_LO        equ APIC + 0x300
A_LVT_TIMER     equ APIC + 0x320
A_LVT_LINT0     equ APIC + 0x350
A_INIT          equ APIC + 0x380
A_CUR           equ APIC + 0x390
A_DCR           equ APIC + 0x3E0

cnt_ipi         equ var0            ; vector 41h (self IPIs)
cnt_timer       equ var0 + 4        ; vector 50h (timer)
cnt_spurious    equ var0 + 8        ; vector FFh
isr_seen        equ var0 + 12       ; ISR word of vector 41h inside its handler

        bits 32
main:
        xor eax, eax
        mov [cnt_ipi], eax
        mov [cnt_timer], eax
        mov [cnt_spurious], eax
        mov ebx, 0x41
        mov eax, h_ipi
        mov edx, SEL_CODE0
        mov ecx, 0x8E00
        call set_gate
        mov ebx, 0x50
        mov eax, h_timer
        call set_gate
        mov ebx, 0xFF
        mov eax, h_spurious
        call set_gate

        mov eax, 1
        cpuid
        and edx, 1 << 9
        CHECK "cpuid-apic", edx, 1 << 9
        mov ecx, 0x1B
        rdmsr
        and eax, 0xFFFFF900
        CHECK "apic-base-msr", eax, 0xFEE00900
        CHECK "version", [A_VER], 0x00050014
        CHECK "svr-reset", [A_SVR], 0xFF
        CHECK "lint0-reset-masked", [A_LVT_LINT0], 0x10000
        CHECK "lvt-timer-reset", [A_LVT_TIMER], 0x10000

        mov dword [A_SVR], 0x1FF                ; software enable, spurious vector FFh
        CHECK "svr-enabled", [A_SVR], 0x1FF
        mov dword [A_TPR], 0x35
        CHECK "tpr", [A_TPR], 0x35
        CHECK "ppr-follows-tpr", [A_PPR], 0x35
        mov dword [A_TPR], 0

        ; a self IPI (shorthand self, fixed, vector 41h)
        sti
        mov dword [A_ICR_LO], 0x00040041
        nop
        nop
        cli
        CHECK "self-ipi", [cnt_ipi], 1
        CHECK "isr-in-handler", [isr_seen], 2

        ; TPR class 4 holds vector 41h in IRR
        mov dword [A_TPR], 0x40
        sti
        mov dword [A_ICR_LO], 0x00040041
        nop
        nop
        cli
        CHECK "tpr-blocks", [cnt_ipi], 1
        mov eax, [A_IRR1]
        and eax, 2
        CHECK "irr-held", eax, 2
        sti
        mov dword [A_TPR], 0                    ; lowering TPR lets it through
        nop
        nop
        cli
        CHECK "tpr-lowered", [cnt_ipi], 2

        ; the timer, one-shot, divide by 1
        mov dword [A_DCR], 0xB
        mov dword [A_LVT_TIMER], 0x50
        CHECK "lvt-timer-oneshot", [A_LVT_TIMER], 0x50
        mov dword [A_INIT], 20000
        sti
.w1:    hlt
        cmp dword [cnt_timer], 0
        je .w1
        cli
        CHECK "oneshot-fired", [cnt_timer], 1
        CHECK "oneshot-current-zero", [A_CUR], 0
        sti
        mov ecx, 20000                          ; nothing more comes
.s1:    dec ecx
        jnz .s1
        cli
        CHECK "oneshot-once", [cnt_timer], 1

        ; periodic, divide by 16: count five interrupts
        mov dword [cnt_timer], 0
        mov dword [A_DCR], 0x3
        mov dword [A_LVT_TIMER], 0x20050
        CHECK "lvt-timer-periodic", [A_LVT_TIMER], 0x20050
        mov dword [A_INIT], 50000
        mov eax, [A_CUR]
        cmp eax, 50000
        setbe al
        movzx eax, al
        CHECK "current-within-initial", eax, 1
        sti
.w2:    hlt
        cmp dword [cnt_timer], 5
        jb .w2
        cli
        CHECK "periodic-five", [cnt_timer], 5
        mov dword [A_LVT_TIMER], 0x30050        ; masked: it keeps counting, raises nothing
        mov dword [cnt_timer], 0
        sti
        mov ecx, 200000
.s2:    dec ecx
        jnz .s2
        cli
        CHECK "masked-silent", [cnt_timer], 0
        mov eax, [A_CUR]
        mov ecx, 1000
.s3:    dec ecx
        jnz .s3
        mov ebx, [A_CUR]
        cmp eax, ebx
        setne al
        movzx eax, al
        CHECK "masked-still-counts", eax, 1
        mov dword [A_INIT], 0                   ; stop
        CHECK "stopped-current-zero", [A_CUR], 0
        CHECK "no-spurious", [cnt_spurious], 0
        jmp finish

h_ipi:
        push eax
        inc dword [cnt_ipi]
        mov eax, [A_ISR1]
        mov [isr_seen], eax
        mov dword [A_EOI], 0
        pop eax
        iret

h_timer:
        inc dword [cnt_timer]
        mov dword [A_EOI], 0
        iret

h_spurious:
        inc dword [cnt_spurious]
        iret

%include "rom_end.inc"
