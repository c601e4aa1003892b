; init.asm - an INIT IPI to itself (SDM Vol. 3, 10.6.1 ICR delivery mode 101b; 9.1 Table 9-1):
; the bootstrap processor restarts at the reset vector in its INIT state, the local APIC back
; in its INIT state with its ID kept, while devices (a DMA page register), MSRs (SYSENTER_CS) and
; the time-stamp counter (it runs on) are untouched, and RAM keeps what the first pass wrote.
;
; Run under Aero with MachineConfig(apic=True) (tests/devices/test_apic_init.py) and under
; qemu-system-i386.  Build (from this directory): nasm -f bin -I ../ -o init.bin init.asm
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

APIC            equ 0xFEE00000
A_ID            equ APIC + 0x020
A_TPR           equ APIC + 0x080
A_SVR           equ APIC + 0x0F0
A_ICR_LO        equ APIC + 0x300
A_ICR_HI        equ APIC + 0x310

passes_done     equ var0 + 0x40     ; how many times main ran (RAM survives INIT)
tsc_before      equ var0 + 0x44     ; the TSC just before the INIT (low, high)
after_icr       equ var0 + 0x4C     ; set if the instruction after the ICR write ran twice

        bits 32
main:
        mov eax, [passes_done]
        inc dword [passes_done]
        test eax, eax
        jnz second
        ; first pass: leave marks that a system reset would undo and an INIT must not
        mov al, 0xAB
        out 0x83, al                            ; a DMA page register (a device's state)
        mov ecx, 0x174                          ; IA32_SYSENTER_CS
        mov eax, 0x1234
        xor edx, edx
        wrmsr
        mov dword [A_SVR], 0x1FF                ; APIC software-enabled: INIT makes SVR FFh
        mov dword [A_TPR], 0x20
        rdtsc
        mov [tsc_before], eax
        mov [tsc_before + 4], edx
        mov dword [A_ICR_HI], 0                 ; destination: APIC ID 0 (this one)
        mov dword [A_ICR_LO], 0x00004500        ; INIT, level assert, physical
        inc dword [after_icr]                   ; runs at most once before the INIT is taken
        inc dword [after_icr]
        inc dword [after_icr]
        inc dword [after_icr]
        hlt
second:
        CHECK "main-ran-twice", [passes_done], 2
        xor eax, eax
        in al, 0x83
        CHECK "device-state-kept", eax, 0xAB
        mov ecx, 0x174
        rdmsr
        CHECK "sysenter-cs-kept", eax, 0x1234
        CHECK "svr-init-state", [A_SVR], 0xFF
        CHECK "tpr-init-state", [A_TPR], 0
        CHECK "apic-id-kept", [A_ID], 0
        rdtsc
        sub eax, [tsc_before]
        sbb edx, [tsc_before + 4]
        shr edx, 31                             ; 0 when TSC now >= TSC before
        CHECK "tsc-runs-on", edx, 0
        mov eax, [after_icr]
        cmp eax, 1
        setbe al
        movzx eax, al
        CHECK "init-taken-promptly", eax, 1
        jmp finish

%include "rom_end.inc"
