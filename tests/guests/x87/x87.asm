; x87.asm - how x87 errors are delivered and what the x87 state images hold, compared with QEMU
; (SDM Vol. 1 ch. 8 and appendix D; Vol. 3 2.5 (CR0), table 2-2 (EM/MP/TS), 6.15 (#NM, #MF)).
;
; * CR0.NE = 1: an unmasked divide-by-zero sets ES/B and leaves the destination unchanged; the
;   next FWAIT raises #MF (a fault: the saved EIP is the FWAIT's), no-wait instructions do not;
;   a waiting x87 instruction raises #MF before it executes; FSAVE is FWAIT + FNSAVE; FLDCW and
;   FLDENV unmasking a set flag make it pending; FNCLEX clears it; the control instructions
;   leave FIP alone.
; * CR0.EM / CR0.TS / CR0.MP: #NM for ESC instructions with EM or TS; WAIT faults only with
;   MP and TS both set; CLTS.
; * FNSAVE/FRSTOR in real mode (16- and 32-bit images, the real-mode layout with 20/32-bit
;   linear pointers; the code runs as EF00:xxxx so that linear address and offset differ) and in
;   protected mode (16- and 32-bit images): every field and the eight registers; each image
;   restored with FRSTOR and saved again.  FNSTENV masks all exceptions; FLDENV loads the
;   control, status and tag words and the pointers.  Every image is also printed as a
;   "DUMP name w0 w1 ..." line so that the Aero and QEMU transcripts compare word by word.
; * CR0.NE = 0 (the PC's FERR#/IRQ13 logic), with interrupts off: the 8259s programmed (slave
;   IR5 = IRQ13 and the cascade unmasked) and the IRQ13 request observed in the slave's IRR and
;   taken with the poll command, serviced as a handler would (port F0h, FNCLEX, EOI slave then
;   master); the order of events is kept in a log ("A", "I" = IRQ13 serviced, "B" ...).  A real
;   CPU would wait at the waiting instruction for the interrupt (impossible with IF = 0); Aero
;   and QEMU run on, which is what the polled checks rely on.  x87_irq.asm takes IRQ13 with
;   IF = 1 (Aero only: QEMU 7.2 aborts when FERR# reaches the CPU, see test_x87_guest.py).
;
; Runs under Aero on a whole Machine (it needs the 8259s and the chipset's FERR# logic, so it lives
; in its own directory, like apic/) and under qemu-system-i386 (tests/sys/test_x87_guest.py,
; which lists the checks QEMU 7.2 fails against the SDM).  Under QEMU the local APIC stays as
; reset (LINT0 masked), so the 8259's output never reaches the CPU.
; Build (from this directory): nasm -f bin -I ../ -o x87.bin x87.asm
%define CUSTOM_REAL_ENTRY
%include "common.inc"

gdt_rom:
        GDT_COMMON
        DESC 0, 0xFFFFF, 0x93, 0xC              ; 0x40 data32 flat (GS: a distinct FDS)
gdt_rom_end:

%include "x87.inc"

SEL_GS          equ 0x40
CW_TEST         equ 0x077F          ; all masked, 64-bit precision, RC = down
TW_TEST         equ 0x103F          ; R7 valid, R6 zero, R5..R3 valid, R2..R0 empty

; images
RM16A           equ 0x8800          ; real mode, 16-bit image
RM16B           equ 0x8900          ; ... after FRSTOR + FNSAVE
RM32A           equ 0x8A00
RM32B           equ 0x8B00
SAVE32A         equ 0x8000
SAVE32B         equ 0x8100
SAVE16A         equ 0x8200
SAVE16B         equ 0x8300
SAVE32C         equ 0x8400
ENVA            equ 0x8600
ENVB            equ 0x8680
ENVC            equ 0x8700
RM_DS           equ 0x1234          ; real-mode data segment of the memory operand
RM_OPND         equ 0x0100          ; its offset: linear 0x12440
RM_CS           equ 0xEF00          ; real-mode code runs at EF00:(1000h + offset)

; ---- real mode -----------------------------------------------------------------------------------
        bits 16
real_main:
        mov eax, cr0
        and eax, ~(CR0_EM | CR0_TS)
        or eax, CR0_MP | CR0_NE
        mov cr0, eax
        mov ax, RM_DS
        mov ds, ax
        mov dword [RM_OPND], 0x3F800000         ; 1.0
        xor ax, ax
        mov ds, ax
        ; the 16-bit image
        call rm_setup
        mov ax, RM_DS
        mov ds, ax
        jmp RM_CS:(R(rm_blk16) + 0x1000)
rm_back16:
        xor ax, ax
        mov ds, ax
        o16 fnsave [RM16A]
        fld1
        fld1
        o16 frstor [RM16A]
        o16 fnsave [RM16B]
        ; the 32-bit image
        call rm_setup
        mov ax, RM_DS
        mov ds, ax
        jmp RM_CS:(R(rm_blk32) + 0x1000)
rm_back32:
        xor ax, ax
        mov ds, ax
        o32 fnsave [RM32A]
        fld1
        fld1
        o32 frstor [RM32A]
        o32 fnsave [RM32B]
        jmp enter_pm32

; every physical register +0.0, then CW_TEST and ST0..ST4 = -2.5 12345 pi 0 1 (TOP = 3)
rm_setup:
        fninit
%rep 8
        fldz
%endrep
        fninit
        fldcw [cs:R(cw_test)]
        fld1
        fldz
        fldpi
        fild dword [cs:R(i_val)]
        fld dword [cs:R(f_m25)]
        ret

; run as EF00:(1000h + offset), DS = 1234h: FIP linear = offset + F0000h, FDP linear = 12440h
rm_blk16:
rm_fadd16:
        fadd dword [RM_OPND]                    ; D8 06: FOP 006h; ST0 = -1.5
        jmp 0xF000:R(rm_back16)
rm_blk32:
rm_fadd32:
        fadd dword [RM_OPND]
        jmp 0xF000:R(rm_back32)

; ---- data ----------------------------------------------------------------------------------------
        align 4
cw_test:        dw CW_TEST
cw_unmask_all:  dw 0x0340
cw_ext:         dw 0x037F
        align 4
i_val:          dd 12345
f_m25:          dd -2.5
; the registers every image must hold: ST0..ST7 (80 bits each)
regs_want:
        dq 0xC000000000000000
        dw 0xBFFF                               ; -1.5
        dq 0xC0E4000000000000
        dw 0x400C                               ; 12345
        dq 0xC90FDAA22168C234
        dw 0x4000                               ; pi rounded down
        dq 0
        dw 0                                    ; +0
        dq 0x8000000000000000
        dw 0x3FFF                               ; 1.0
        times 30 db 0                           ; three empty registers holding +0
; a hand-made 32-bit protected-mode environment: ZE set and unmasked, ES clear
env_hand:
        dd 0xFFFF037B                           ; CW
        dd 0xFFFF2804                           ; SW: TOP 5, ZE (ES and B clear)
        dd 0xFFFFFFFF                           ; TW: all empty
        dd 0x12345678                           ; FIP
        dd 0x01230033                           ; FOP 123h, FCS 33h
        dd 0x9ABCDEF0                           ; FDP
        dd 0xFFFF005B                           ; FDS
; the same as FNSTENV would have written it (ES and B set)
env_hand_es:
        dd 0xFFFF037B
        dd 0xFFFFA884
        dd 0xFFFFFFFF
        dd 0x12345678
        dd 0x01230033
        dd 0x9ABCDEF0
        dd 0xFFFF005B

        bits 32
; FIPKEEP "name", instruction: FIP still points to a FLD1 after the instruction
%macro FIPKEEP 2+
        fninit
%%ref:  fld1
        %2
        fnstenv [ENVC]
        CHECK %1, [ENVC + 12], %%ref
%endmacro

; the protected-mode setup of every image test, as rm_setup (each test then adds 1.0 through GS)
pm_setup:
        fninit
%rep 8
        fldz
%endrep
        fninit
        fldcw [cw_test]
        fld1
        fldz
        fldpi
        fild dword [i_val]
        fld dword [f_m25]
        ret

; ---- main --------------------------------------------------------------------------------------
main:
        SETCR0 CR0_MP | CR0_NE, CR0_EM | CR0_TS
        mov ax, SEL_GS
        mov gs, ax

        ; ======== real mode images (made by real_main) ========
        DUMP "rm-fsave16", RM16A, 47
        DUMP "rm-fsave16-again", RM16B, 47
        DUMP "rm-fsave32", RM32A, 54
        DUMP "rm-fsave32-again", RM32B, 54
        ; 16-bit real-mode layout (SDM Vol. 1 8.1.10, figure 8-12): FIP 15..0, then
        ; FIP 19..16 in bits 15:12 with FOP in 10:0, FDP 15..0, then FDP 19..16 in bits 15:12
        CHECKW "rm-fsave16-cw", RM16A, CW_TEST
        CHECKW "rm-fsave16-sw", RM16A + 2, 0x1800
        CHECKW "rm-fsave16-tw", RM16A + 4, TW_TEST
        CHECKW "rm-fsave16-fip", RM16A + 6, (A(rm_fadd16) & 0xFFFF)
        CHECKW "rm-fsave16-fip-high-fop", RM16A + 8, ((A(rm_fadd16) >> 16) << 12) | 0x006
        CHECKW "rm-fsave16-fdp", RM16A + 10, 0x2440
        CHECKW "rm-fsave16-fdp-high", RM16A + 12, 0x1000
        CHECKMEM "rm-fsave16-regs", RM16A + 14, regs_want, 80
        CHECKMEM "rm-frstor16-roundtrip-control", RM16A, RM16B, 6
        CHECKMEM "rm-frstor16-roundtrip-pointers", RM16A + 6, RM16B + 6, 8
        CHECKMEM "rm-frstor16-roundtrip-regs", RM16A + 14, RM16B + 14, 80
        ; 32-bit real-mode layout: dwords, FIP 31..16 and FDP 31..16 in bits 27:12
        CHECKW "rm-fsave32-cw", RM32A, CW_TEST
        CHECKW "rm-fsave32-sw", RM32A + 4, 0x1800
        CHECKW "rm-fsave32-tw", RM32A + 8, TW_TEST
        CHECKW "rm-fsave32-fip", RM32A + 12, (A(rm_fadd32) & 0xFFFF)
        CHECK "rm-fsave32-fip-high-fop", [RM32A + 16], ((A(rm_fadd32) >> 16) << 12) | 0x006
        CHECKW "rm-fsave32-fdp", RM32A + 20, 0x2440
        CHECK "rm-fsave32-fdp-high", [RM32A + 24], 0x1000
        CHECKMEM "rm-fsave32-regs", RM32A + 28, regs_want, 80
        CHECKMEM "rm-frstor32-roundtrip-control", RM32A, RM32B, 12
        CHECKMEM "rm-frstor32-roundtrip-pointers", RM32A + 12, RM32B + 12, 16
        CHECKMEM "rm-frstor32-roundtrip-regs", RM32A + 28, RM32B + 28, 80

        ; ======== the FPU is there; its initial state ========
        mov eax, 1
        cpuid
        and edx, 1
        CHECK "cpuid-fpu", edx, 1
        fninit
        CHECKCW "fninit-cw", 0x037F
        CHECKSW "fninit-sw", 0
        fnstenv [ENVA]
        CHECKW "fninit-tw", ENVA + 8, 0xFFFF

        ; ======== CR0.NE = 1: #MF ========
        fninit
        fldcw [cw_ze]
        fld1
mf_fdiv:
        fdiv dword [f_zero]                     ; 1/0 with ZE unmasked: pending
        ; FIP/FOP/FDP of the faulting instruction, for the handler (SDM 8.1.8, 8.1.9)
        fnstenv [ENVA]
        fldenv [ENVA]                           ; FNSTENV masked everything: back as it was
        CHECK "mf-env-fip", [ENVA + 12], mf_fdiv
        CHECK "mf-env-fcs-fop", [ENVA + 16], (0x035 << 16) | SEL_CODE0
        CHECK "mf-env-fdp", [ENVA + 20], f_zero
        CHECKW "mf-env-fds", ENVA + 24, SEL_DATA0
        CHECKSW "ze-unmasked-sw", SW_ZE_PENDING
        ; the destination keeps 1.0 (SDM Vol. 1 8.5.3: with #Z unmasked, TOP and the source
        ; operands stay unchanged); FNSAVE does not wait, FRSTOR puts everything back
        fnsave [SAVE32C]
        CHECKW "ze-unmasked-dest-unchanged", SAVE32C + 28 + 8, 0x3FFF
        frstor [SAVE32C]
        ; FWAIT: #MF, a fault at the FWAIT
        TRY r_mf1
mf_fwait:
        fwait
        nop
r_mf1:  ENDTRY
        EXPECT "mf-fwait", 16, NOERR, mf_fwait
        CHECKSW "mf-still-pending-sw", SW_ZE_PENDING
        ; no-wait instructions do not deliver it
        TRY r_mf2
        fnstcw [tmpw]
        fnstsw ax
        fnstsw [tmpw]
r_mf2:  ENDTRY
        NOFAULT "mf-not-on-no-wait-insns"
        ; a waiting x87 instruction: #MF before it executes (SDM Vol. 1 8.6, 8.7.1: a pending
        ; exception is reported at the next waiting x87 instruction or WAIT/FWAIT; Vol. 3
        ; 6.15, interrupt 16)
        TRY r_mf3
mf_fadd:
        fadd st0, st0
r_mf3:  ENDTRY
        EXPECT "mf-before-waiting-fpu-insn", 16, NOERR, mf_fadd
        fnstenv [ENVA]
        fldenv [ENVA]
        CHECK "mf-fip-still-the-fdiv", [ENVA + 12], mf_fdiv
        ; FSAVE is FWAIT + FNSAVE: #MF at the FWAIT prefix byte
        TRY r_mf4
mf_fsave:
        fsave [SAVE32C]
r_mf4:  ENDTRY
        EXPECT "mf-fsave-waiting-form", 16, NOERR, mf_fsave
        ; FNSAVE does not wait: it saves the pending state and initialises the FPU
        TRY r_mf5
        fnsave [SAVE32C]
        fwait
r_mf5:  ENDTRY
        NOFAULT "fnsave-pending-no-fault"
        CHECKW "fnsave-pending-image-sw", SAVE32C + 4, SW_ZE_PENDING
        ; FNCLEX clears ES/B and the flags
        frstor [SAVE32C]
        CHECKSW "frstor-pending-sw", SW_ZE_PENDING
        fnclex
        CHECKSW "fnclex-sw", 0x3800
        TRY r_mf6
        fwait
        fld1
r_mf6:  ENDTRY
        NOFAULT "fwait-after-fnclex-no-fault"
        ; a masked ZE: infinity, no ES
        fninit
        fld1
        fdiv dword [f_zero]
        CHECKSW "ze-masked-sw", 0x3804
        fnsave [SAVE32C]
        CHECKW "ze-masked-result-inf", SAVE32C + 28 + 8, 0x7FFF
        frstor [SAVE32C]
        ; FLDCW unmasking a set flag makes it pending (SDM FLDCW; ES: Vol. 1 8.1.3.3)
        fldcw [cw_ze]
        CHECKSW "fldcw-unmask-sets-es", SW_ZE_PENDING
        TRY r_mf7
mf_fwait2:
        fwait
r_mf7:  ENDTRY
        EXPECT "fldcw-unmask-fwait", 16, NOERR, mf_fwait2
        fninit

        ; ======== FIP/FCS/FOP: only non-control instructions set them (SDM Vol. 1 8.1.8, 8.1.9;
        ; the control instructions, 8.3.11: FNSTSW, FNSTCW, FLDCW, FNCLEX, WAIT/FWAIT ...) =====
        FIPKEEP "fip-kept-by-fnstsw-ax", fnstsw ax
        FIPKEEP "fip-kept-by-fnstsw-m16", fnstsw [tmpw]
        FIPKEEP "fip-kept-by-fnstcw", fnstcw [tmpw]
        FIPKEEP "fip-kept-by-fldcw", fldcw [cw_ext]
        FIPKEEP "fip-kept-by-fnclex", fnclex
        FIPKEEP "fip-kept-by-fwait", fwait
        fninit

        ; ======== #NM: CR0.EM, CR0.TS, CR0.MP (SDM Vol. 3 table 2-2) ========
        SETCR0 CR0_EM, 0
        TRY r_nm1
nm_em_fld:
        fld1
r_nm1:  ENDTRY
        EXPECT "nm-em-fld1", 7, NOERR, nm_em_fld
        TRY r_nm2
nm_em_fnstsw:
        fnstsw ax
r_nm2:  ENDTRY
        EXPECT "nm-em-fnstsw", 7, NOERR, nm_em_fnstsw
        TRY r_nm3
        fwait
r_nm3:  ENDTRY
        NOFAULT "nm-em-fwait-no-fault"
        SETCR0 CR0_TS | CR0_MP, CR0_EM
        TRY r_nm4
nm_ts_fld:
        fld1
r_nm4:  ENDTRY
        EXPECT "nm-ts-fld1", 7, NOERR, nm_ts_fld
        TRY r_nm5
nm_ts_fwait:
        fwait
r_nm5:  ENDTRY
        EXPECT "nm-ts-mp-fwait", 7, NOERR, nm_ts_fwait
        SETCR0 0, CR0_MP
        TRY r_nm6
        fwait
r_nm6:  ENDTRY
        NOFAULT "nm-ts-no-mp-fwait-no-fault"
        TRY r_nm7
nm_ts_fninit:
        fninit
r_nm7:  ENDTRY
        EXPECT "nm-ts-no-mp-fninit", 7, NOERR, nm_ts_fninit
        clts
        mov eax, cr0
        and eax, CR0_TS
        CHECK "clts-clears-ts", eax, 0
        TRY r_nm8
        fninit
        fld1
        fwait
r_nm8:  ENDTRY
        NOFAULT "after-clts-no-fault"
        SETCR0 CR0_MP, 0

        ; ======== protected mode images ========
        ; 32-bit FNSAVE (SDM Vol. 1 8.1.10, figure 8-9, then ST0..ST7)
        call pm_setup
pm_fadd32:
        fadd dword [gs:f_one]                   ; 65 D8 05: FOP 005h, FDS = GS
        fnsave [SAVE32A]
        DUMP "pm-fsave32", SAVE32A, 54
        CHECKW "pm-fsave32-cw", SAVE32A, CW_TEST
        CHECKW "pm-fsave32-sw", SAVE32A + 4, 0x1800
        CHECKW "pm-fsave32-tw", SAVE32A + 8, TW_TEST
        CHECK "pm-fsave32-fip", [SAVE32A + 12], pm_fadd32
        CHECKW "pm-fsave32-fcs", SAVE32A + 16, SEL_CODE0
        CHECKW "pm-fsave32-fop", SAVE32A + 18, 0x005
        CHECK "pm-fsave32-fdp", [SAVE32A + 20], f_one
        CHECKW "pm-fsave32-fds", SAVE32A + 24, SEL_GS
        CHECKMEM "pm-fsave32-regs", SAVE32A + 28, regs_want, 80
        ; the reserved upper halves of CW, SW, TW and FDS (SDM: "reserved"): Intel processors
        ; store 1s there
        mov ax, [SAVE32A + 2]
        and ax, [SAVE32A + 6]
        and ax, [SAVE32A + 10]
        and ax, [SAVE32A + 26]
        movzx eax, ax
        CHECK "pm-fsave32-reserved-ones", eax, 0xFFFF
        ; FNSAVE then initialises the FPU
        fnstenv [ENVA]
        CHECK "fnsave-then-fninit-fip", [ENVA + 12], 0
        CHECKW "fnsave-then-fninit-tw", ENVA + 8, 0xFFFF
        CHECKCW "fnsave-then-fninit-cw", 0x037F
        CHECKSW "fnsave-then-fninit-sw", 0
        ; FRSTOR puts it back: saving again gives the same image
        fld1
        fld1
        frstor [SAVE32A]
        fnsave [SAVE32B]
        DUMP "pm-fsave32-again", SAVE32B, 54
        CHECKMEM "pm-frstor32-roundtrip-control", SAVE32A, SAVE32B, 12
        CHECKMEM "pm-frstor32-roundtrip-pointers", SAVE32A + 12, SAVE32B + 12, 16
        CHECKMEM "pm-frstor32-roundtrip-regs", SAVE32A + 28, SAVE32B + 28, 80

        ; 16-bit FNSAVE in protected mode (SDM Vol. 1 figure 8-11)
        call pm_setup
pm_fadd16:
        fadd dword [gs:f_one]
        o16 fnsave [SAVE16A]
        DUMP "pm-fsave16", SAVE16A, 47
        CHECKW "pm-fsave16-cw", SAVE16A, CW_TEST
        CHECKW "pm-fsave16-sw", SAVE16A + 2, 0x1800
        CHECKW "pm-fsave16-tw", SAVE16A + 4, TW_TEST
        CHECKW "pm-fsave16-fip", SAVE16A + 6, (A(pm_fadd16) & 0xFFFF)
        CHECKW "pm-fsave16-fcs", SAVE16A + 8, SEL_CODE0
        CHECKW "pm-fsave16-fdp", SAVE16A + 10, (A(f_one) & 0xFFFF)
        CHECKW "pm-fsave16-fds", SAVE16A + 12, SEL_GS
        CHECKMEM "pm-fsave16-regs", SAVE16A + 14, regs_want, 80
        fld1
        fld1
        o16 frstor [SAVE16A]
        o16 fnsave [SAVE16B]
        DUMP "pm-fsave16-again", SAVE16B, 47
        CHECKMEM "pm-frstor16-roundtrip-control", SAVE16A, SAVE16B, 6
        CHECKMEM "pm-frstor16-roundtrip-pointers", SAVE16A + 6, SAVE16B + 6, 8
        CHECKMEM "pm-frstor16-roundtrip-regs", SAVE16A + 14, SAVE16B + 14, 80

        ; FNSTENV stores, then masks all exceptions (SDM FSTENV/FNSTENV)
        fninit
        fldcw [cw_unmask_all]
        fnstenv [ENVA]
        DUMP "pm-fstenv32-unmasked", ENVA, 14
        CHECKW "fnstenv-image-cw", ENVA, 0x0340
        CHECKCW "fnstenv-masks-all", 0x037F
        fldenv [ENVA]
        CHECKCW "fldenv-restores-cw", 0x0340
        o16 fnstenv [ENVB]
        DUMP "pm-fstenv16-unmasked", ENVB, 7
        CHECKW "fnstenv16-image-cw", ENVB, 0x0340
        CHECKCW "fnstenv16-masks-all", 0x037F

        ; FLDENV of an image with ZE set and unmasked but ES clear: ES follows (SDM FLDENV:
        ; "a floating-point exception will be generated upon execution of the next
        ; floating-point instruction"); the pointers are loaded
        fninit
        fldenv [env_hand]
        CHECKSW "fldenv-unmasked-flag-sets-es", 0xA884
        TRY r_le1
le_fwait:
        fwait
r_le1:  ENDTRY
        EXPECT "fldenv-unmasked-flag-fwait", 16, NOERR, le_fwait
        fnstenv [ENVB]
        DUMP "pm-fstenv32-after-fldenv", ENVB, 14
        CHECKMEM "fldenv32-pointers-loaded", env_hand + 12, ENVB + 12, 16
        CHECKW "fldenv32-tw-all-empty", ENVB + 8, 0xFFFF
        ; the same image as FNSTENV writes it (ES and B set): #MF at the next FWAIT
        fninit
        fldenv [env_hand_es]
        CHECKSW "fldenv-es-image-sw", 0xA884
        TRY r_le2
le_fwait2:
        fwait
r_le2:  ENDTRY
        EXPECT "fldenv-es-image-fwait", 16, NOERR, le_fwait2
        ; the 16-bit protected-mode environment: FLDENV then FNSTENV
        fninit
        fldcw [cw_test]
        fld1
        fldz
le_fadd16:
        fadd dword [gs:f_one]
        o16 fnstenv [ENVC]
        fninit
        o16 fldenv [ENVC]
        o16 fnstenv [ENVC + 0x40]
        DUMP "pm-fstenv16", ENVC, 7
        CHECKW "fnstenv16-fip", ENVC + 6, (A(le_fadd16) & 0xFFFF)
        CHECKW "fnstenv16-tw", ENVC + 4, 0x0FFF
        CHECKMEM "fldenv16-roundtrip", ENVC, ENVC + 0x40, 14
        fninit

        ; ======== CR0.NE = 0: FERR# -> IRQ13 at the 8259s, interrupts off, polled ========
        ; (Vol. 3 2.5 CR0.NE; Vol. 1 8.7.2 and D.2.1: FERR# is asserted at the next waiting
        ; instruction; the AT logic latches IRQ13 until port F0h is written, which also asserts
        ; IGNNE# until FERR# goes inactive, i.e. until ES is cleared)
        call pic_init
        SETCR0 0, CR0_NE
        mov dword [h_f0], 1
        mov dword [h_clex], 1

        ; FWAIT with ZE pending: IRQ13 requested; serviced (poll = INTA, F0h, FNCLEX, EOIs)
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        CHECKSW "ferr-pending-sw", SW_ZE_PENDING
        SLAVE_IRR
        CHECK "ferr-not-before-the-fwait", eax, 0
        EVENT 'A'
        fwait
        SLAVE_IRR
        CHECK "ferr-fwait-requests-irq13", eax, 0x20
        call ferr_service
        EVENT 'B'
        fld1
        fwait
        call ferr_service
        EVENT 'C'
        CHECK "ferr-fwait-order", [evlog], 'AIBC'
        CHECK "ferr-fwait-serviced-once", [irq13_count], 1
        CHECK "ferr-poll-slave", [irq13_isr_s], 0x85
        CHECK "ferr-poll-master", [irq13_isr_m], 0x82
        CHECK "ferr-service-sw", [irq13_sw], SW_ZE_PENDING
        CHECK "ferr-irr-clear-after-f0", [irq13_irr_s], 0
        CHECKSW "ferr-after-service-sw", 0x3000

        ; FNCLEX in the service cleared ES: FERR# went inactive and with it IGNNE#, so the next
        ; error requests IRQ13 again
        EVRESET
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        call ferr_service
        EVENT 'B'
        CHECK "ferr-again-after-fnclex", [evlog], 'AIB'

        ; a waiting x87 instruction meets the pending error: FERR# there, not at the next FWAIT
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        EVENT 'C'
        fadd st0, st0
        call ferr_service
        EVENT 'D'
        fwait
        call ferr_service
        EVENT 'E'
        CHECK "ferr-at-waiting-fpu-insn", [evlog], 'CIDE'

        ; the service writes F0h but leaves ES set: IGNNE# lets waiting instructions run, no
        ; further IRQ13
        mov dword [h_clex], 0
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        call ferr_service
        EVENT 'B'
        fwait
        fld1
        fwait
        call ferr_service
        EVENT 'C'
        CHECK "ignne-order", [evlog], 'AIBC'
        fnstsw ax
        and eax, 0x80
        CHECK "ignne-es-still-set", eax, 0x80
        fnclex
        mov dword [h_clex], 1

        ; without the F0h write IRQ13 stays asserted: a new error makes no new request (edge
        ; triggered 8259) until F0h is written
        mov dword [h_f0], 0
        EVRESET
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        EVENT 'A'
        fwait
        call ferr_service                       ; no F0h write; FNCLEX
        EVENT 'B'
        fld1
        fdiv dword [f_zero]
        fwait
        call ferr_service
        EVENT 'C'
        xor al, al
        out 0xF0, al
        fninit
        fldenv [env_ze]
        fld1
        fdiv dword [f_zero]
        fwait
        call ferr_service
        EVENT 'D'
        CHECK "irq13-latched-until-f0", [evlog], 'AIBC'
        CHECK "irq13-latched-until-f0-then", [evlog + 4], 'ID'
        mov dword [h_f0], 1

        call pic_mask_all
        SETCR0 CR0_NE, 0
        fninit
        jmp finish

; ferr_service: what an IRQ13 handler does, with interrupts off: poll the slave (the INTA); if
; IRQ13 was requested, poll the master too (IR2), log 'I', note the status word, write port
; F0h (h_f0), FNCLEX (h_clex), EOI the slave, then the master
ferr_service:
        push eax
        mov al, 0x0C                            ; OCW3: poll
        out 0xA0, al
        in al, 0xA0
        test al, 0x80
        jz .none
        movzx eax, al
        mov [irq13_isr_s], eax
        mov al, 0x0C
        out 0x20, al
        in al, 0x20
        movzx eax, al
        mov [irq13_isr_m], eax
        EVENT 'I'
        inc dword [irq13_count]
        fnstsw ax
        movzx eax, ax
        mov [irq13_sw], eax
        cmp dword [h_f0], 0
        je .nf
        xor al, al
        out 0xF0, al
        SLAVE_IRR
        mov [irq13_irr_s], eax
.nf:    cmp dword [h_clex], 0
        je .nc
        fnclex
.nc:    mov al, 0x20
        out 0xA0, al
        out 0x20, al
.none:  pop eax
        ret

%include "rom_end.inc"
