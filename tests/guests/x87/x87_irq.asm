; x87_irq.asm - FERR# delivered as IRQ13 with interrupts on (CR0.NE = 0, the PC's "MS-DOS
; compatibility" error reporting: SDM Vol. 3 2.5 CR0.NE; Vol. 1 8.7.2 and appendix D).
;
; Both 8259s are programmed (ICW1-ICW4; only IRQ13 = slave IR5 and the cascade, master IR2,
; unmasked), IF = 1.  An unmasked divide-by-zero is pending; the next waiting instruction
; asserts FERR#, the chipset raises IRQ13 and the handler (vector 2Dh) notes what it sees
; (return EIP, FIP and status word from FNSTENV, the ISRs), writes port F0h (clears the IRQ13
; latch and asserts IGNNE#), does FNCLEX (unless told not to) and EOIs the slave, then the
; master.  The order of events is kept in a log ("A", "I" = IRQ13 handler, "B" ...).
;
; The SDM: with CR0.NE = 0 and IGNNE# inactive the processor asserts FERR# "and stop[s]
; instruction execution immediately before executing the next waiting floating-point
; instruction or WAIT/FWAIT instruction" (Vol. 3 2.5): the interrupt returns to the waiting
; instruction, and the handler sees the x87 state of the error (FIP = the instruction that
; raised it, TOP unchanged).  The "-sdm" checks ask exactly that; the other checks hold whether
; the waiting instruction completes before the interrupt or after it.
;
; Aero only: QEMU 7.2 aborts (tcg_handle_interrupt: assertion failed: qemu_mutex_iothread_locked)
; as soon as FERR#'s IRQ13 reaches the CPU; x87.asm checks FERR# against QEMU with IF = 0.
; Build (from this directory): nasm -f bin -I ../ -o x87_irq.bin x87_irq.asm
%include "common.inc"

gdt_rom:
        GDT_COMMON
gdt_rom_end:

%include "x87.inc"

        bits 32
main:
        SETCR0 CR0_MP, CR0_EM | CR0_TS | CR0_NE
        mov ebx, 0x20                           ; IDT: 20h-2Fh, IRQ13 at 2Dh
.gates: mov eax, irq_other_handler
        cmp ebx, IRQ13_VECTOR
        jne .g
        mov eax, irq13_handler
.g:     mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        inc ebx
        cmp ebx, 0x30
        jb .gates
        mov dword [irq_other], 0
        mov dword [h_f0], 1
        mov dword [h_clex], 1
        call pic_init
        sti

        ; FWAIT with ZE pending: IRQ13 at the FWAIT
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
fw_fdiv:
        fdiv dword [f_zero]
        CHECKSW "irq-pending-sw", SW_ZE_PENDING
        CHECK "irq-none-before-the-fwait", [irq13_count], 0
        EVENT 'A'
fw_fwait:
        fwait
fw_after:
        jmp short fw_next
fw_next:
        EVENT 'B'
        mov ecx, 100
.d1:    dec ecx
        jnz .d1
        fld1
        fwait
        EVENT 'C'
        CHECK "irq-fwait-order", [evlog], 'AIBC'
        CHECK "irq-fwait-once", [irq13_count], 1
        mov eax, [irq13_eip]
        cmp eax, fw_fwait
        setae dl
        cmp eax, fw_next
        setbe dh
        and dl, dh
        movzx eax, dl
        CHECK "irq-fwait-return-eip-at-or-after-the-fwait", eax, 1
        CHECK "irq-fwait-return-eip-sdm", [irq13_eip], fw_fwait
        CHECK "irq-fwait-handler-fip", [irq13_fip], fw_fdiv
        CHECK "irq-fwait-handler-sw", [irq13_sw], SW_ZE_PENDING
        CHECK "irq-fwait-handler-slave-isr", [irq13_isr_s], 0x20
        CHECK "irq-fwait-handler-master-isr", [irq13_isr_m], 0x04
        CHECK "irq-fwait-slave-irr-after-f0", [irq13_irr_s], 0
        CHECKSW "irq-fwait-after-sw", 0x3000
        SLAVE_IRR
        CHECK "irq-fwait-slave-irr-clear", eax, 0

        ; FNCLEX in the handler released IGNNE#: the next error raises IRQ13 again
        EVRESET
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        jmp short .n2
.n2:    EVENT 'B'
        CHECK "irq-again-after-fnclex", [evlog], 'AIB'
        CHECK "irq-again-after-fnclex-once", [irq13_count], 1

        ; a waiting x87 instruction (FLD1) meets the pending error
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
wi_fdiv:
        fdiv dword [f_zero]
        EVENT 'C'
wi_fld1:
        fld1
        jmp short .n3
.n3:    EVENT 'D'
        fwait
        jmp short .n4
.n4:    EVENT 'E'
        CHECK "irq-waiting-insn-order", [evlog], 'CIDE'
        CHECK "irq-waiting-insn-once", [irq13_count], 1
        CHECKSW "irq-waiting-insn-fld1-ran-once", 0x3000
        CHECK "irq-waiting-insn-return-eip-sdm", [irq13_eip], wi_fld1
        CHECK "irq-waiting-insn-handler-fip-sdm", [irq13_fip], wi_fdiv
        CHECK "irq-waiting-insn-handler-sw-sdm", [irq13_sw], SW_ZE_PENDING

        ; the handler writes F0h but leaves ES set: IGNNE# lets waiting instructions run, no
        ; IRQ13 again
        mov dword [h_clex], 0
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        jmp short .n5
.n5:    EVENT 'B'
        fwait
        fld1
        fwait
        jmp short .n6
.n6:    EVENT 'C'
        CHECK "irq-ignne-order", [evlog], 'AIBC'
        CHECK "irq-ignne-once", [irq13_count], 1
        fnstsw ax
        and eax, 0x80
        CHECK "irq-ignne-es-still-set", eax, 0x80
        fnclex
        mov dword [h_clex], 1

        ; IF = 0: IRQ13 stays requested, taken after STI and the instruction after it
        EVRESET
        cli
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        jmp short .n8
.n8:    EVENT 'B'
        SLAVE_IRR
        CHECK "irq-if0-slave-irr", eax, 0x20
        sti
        nop
        EVENT 'C'
        CHECK "irq-if0-order", [evlog], 'ABIC'
        CHECK "irq-if0-once", [irq13_count], 1

        cli
        call pic_mask_all
        SETCR0 CR0_NE, 0
        CHECK "no-other-irqs", [irq_other], 0
        fninit
        jmp finish

; IRQ13 (vector 2Dh)
irq13_handler:
        push eax
        push edx
        EVENT 'I'
        inc dword [irq13_count]
        mov eax, [esp + 8]
        mov [irq13_eip], eax
        fnstsw ax
        movzx eax, ax
        mov [irq13_sw], eax
        fnstenv [HENV]                          ; (masks everything: FLDENV puts it back)
        fldenv [HENV]
        mov eax, [HENV + 12]
        mov [irq13_fip], eax
        mov al, 0x0B                            ; OCW3: read ISR
        out 0xA0, al
        in al, 0xA0
        movzx eax, al
        mov [irq13_isr_s], eax
        mov al, 0x0B
        out 0x20, al
        in al, 0x20
        movzx eax, al
        mov [irq13_isr_m], eax
        cmp dword [h_f0], 0
        je .nf
        xor al, al
        out 0xF0, al
        SLAVE_IRR
        mov [irq13_irr_s], eax
.nf:    cmp dword [h_clex], 0
        je .nc
        fnclex
.nc:    mov al, 0x20                            ; EOI: slave, then master
        out 0xA0, al
        out 0x20, al
        pop edx
        pop eax
        iretd

irq_other_handler:
        push eax
        inc dword [irq_other]
        mov al, 0x20
        out 0xA0, al
        out 0x20, al
        pop eax
        iretd

%include "rom_end.inc"
