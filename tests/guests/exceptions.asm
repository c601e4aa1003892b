; exceptions.asm - exceptions in 32-bit protected mode (ring 0): vector, whether an error code is
; pushed, its value, and the saved EIP (faults: the faulting instruction; traps: the next one).
; #DE (DIV, IDIV overflow, AAM 0) #DB (INT1, TF single step with DR6.BS) #BP #OF #BR #UD #NM
; #DF #NP #SS #GP (selector error codes, IDT error codes, segment type/limit/null checks,
; over-long instructions, unknown MSRs).
%include "common.inc"

gdt_rom:
        GDT_COMMON
        DESC 0x20000, 0xFFFF, 0x93, 0           ; 0x40 data, base 0x20000, limit 0xFFFF
        DESC 0, 0xFFFF, 0x13, 0                 ; 0x48 data, not present
        DESC 0, 0xFFFFF, 0x91, 0xC              ; 0x50 data, read-only, flat
        DESC 0, 0x8FFFF, 0x93, 0x4              ; 0x58 data32 (B=1), limit 0x8FFFF (a stack)
        DESC 0, 0xFFFFF, 0x99, 0xC              ; 0x60 code, execute-only
gdt_rom_end:

        bits 32
main:
        ; ---- #DE: fault, no error code
        xor edx, edx
        mov eax, 1
        xor ecx, ecx
        TRY .r_de
.f_de:  div ecx
.r_de:  ENDTRY
        EXPECT "de", 0, NOERR, .f_de
        CHECK "de-saved-cs", [exc_frame + 4], SEL_CODE0
        ; ---- #DE: IDIV overflow, AAM 0
        mov eax, 0x80000000
        mov edx, 0xFFFFFFFF
        mov ecx, -1
        TRY .r_de2
.f_de2: idiv ecx
.r_de2: ENDTRY
        EXPECT "de-idiv-overflow", 0, NOERR, .f_de2
        TRY .r_de3
.f_de3: db 0xD4, 0x00                           ; AAM 0
.r_de3: ENDTRY
        EXPECT "de-aam0", 0, NOERR, .f_de3
        ; ---- #DB: single step (TF set by POPF traps after the next instruction)
        TRY .r_tf
        pushfd
        or dword [esp], 0x100
        popfd
        nop
.r_tf:  ENDTRY
        pushfd
        pop eax
        mov [var0 + 0x40], eax
        EXPECT "tf-single-step", 1, NOERR, .r_tf
        mov eax, [exc_frame + 8]
        and eax, 0x100
        CHECK "tf-single-step-pushed-tf", eax, 0x100
        mov eax, [var0 + 0x40]
        and eax, 0x100
        CHECK "tf-cleared-in-handler", eax, 0
        mov eax, dr6
        and eax, 0x4000
        CHECK "tf-single-step-dr6-bs", eax, 0x4000
        ; ---- #UD
        TRY .r_ud3
.f_ud3: db 0x8E, 0xC8                           ; MOV CS, AX
.r_ud3: ENDTRY
        EXPECT "ud-mov-cs", 6, NOERR, .f_ud3
        TRY .r_ud4
.f_ud4: db 0x8D, 0xC1                           ; LEA with a register operand
.r_ud4: ENDTRY
        EXPECT "ud-lea-register", 6, NOERR, .f_ud4
        TRY .r_ud5
.f_ud5: db 0x0F, 0xC7, 0xC8                     ; CMPXCHG8B with a register operand
.r_ud5: ENDTRY
        EXPECT "ud-cmpxchg8b-register", 6, NOERR, .f_ud5
        ; ---- #GP(0): unknown MSR, reserved CR4 bit
        mov ecx, 0x0BAD0BAD
        TRY .r_msr
.f_msr: rdmsr
.r_msr: ENDTRY
        EXPECT "gp-rdmsr-unknown", 13, 0, .f_msr
        mov ecx, 0x0BAD0BAD
        xor eax, eax
        xor edx, edx
        TRY .r_msr2
.f_msr2:
        wrmsr
.r_msr2:
        ENDTRY
        EXPECT "gp-wrmsr-unknown", 13, 0, .f_msr2
        ; ---- #UD
        TRY .r_ud
.f_ud:  ud2
.r_ud:  ENDTRY
        EXPECT "ud-ud2", 6, NOERR, .f_ud
        TRY .r_ud2
.f_ud2: db 0xF0, 0x90                           ; LOCK NOP
.r_ud2: ENDTRY
        EXPECT "ud-lock", 6, NOERR, .f_ud2
        ; ---- #BP, INT1, #OF: traps, EIP after the instruction
        TRY .r_bp
        int3
.r_bp:  ENDTRY
        EXPECT "bp", 3, NOERR, .r_bp
        TRY .r_db
        db 0xF1                                 ; INT1 / ICEBP
.r_db:  ENDTRY
        EXPECT "int1", 1, NOERR, .r_db
        mov al, 0x7F
        add al, 1                               ; OF=1
        TRY .r_of
        into
.r_of:  ENDTRY
        EXPECT "of", 4, NOERR, .r_of
        xor eax, eax                            ; OF=0: INTO does nothing
        TRY .r_of0
        into
.r_of0: ENDTRY
        CHECK "of-not-taken", [exc_vec], 0xFF
        ; ---- #BR: fault
        mov dword [var0], 10
        mov dword [var0 + 4], 20
        mov eax, 15
        TRY .r_br0
        bound eax, [var0]
.r_br0: ENDTRY
        CHECK "br-in-range", [exc_vec], 0xFF
        mov eax, 21
        TRY .r_br
.f_br:  bound eax, [var0]
.r_br:  ENDTRY
        EXPECT "br", 5, NOERR, .f_br
        ; ---- #NM: an ESC opcode with CR0.TS=1
        mov eax, cr0
        or eax, 8
        mov cr0, eax
        TRY .r_nm
.f_nm:  fninit
.r_nm:  ENDTRY
        clts
        EXPECT "nm", 7, NOERR, .f_nm
        ; ---- software INT n through a DPL0 gate from ring 0
        mov ebx, 0x41
        mov eax, exc_stubs + 31 * 16
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        TRY .r_int
        int 0x41
.r_int: ENDTRY
        EXPECT "int-n", 31, NOERR, .r_int
        ; ---- #GP with selector error codes
        mov ax, 0x1238                          ; beyond the GDT limit
        TRY .r_gp1
.f_gp1: mov ds, ax
.r_gp1: ENDTRY
        EXPECT "gp-sel-beyond-gdt", 13, 0x1238, .f_gp1
        mov ax, SEL_TSS                         ; a system segment into DS
        TRY .r_gp2
.f_gp2: mov ds, ax
.r_gp2: ENDTRY
        EXPECT "gp-sel-system-into-ds", 13, SEL_TSS, .f_gp2
        mov ax, 0x60                            ; execute-only code into DS
        TRY .r_gp3
.f_gp3: mov es, ax
.r_gp3: ENDTRY
        EXPECT "gp-sel-exec-only-into-es", 13, 0x60, .f_gp3
        mov ax, SEL_CODE0                       ; code into SS
        TRY .r_gp4
.f_gp4: mov ss, ax
.r_gp4: ENDTRY
        EXPECT "gp-sel-code-into-ss", 13, SEL_CODE0, .f_gp4
        mov ax, SEL_DATA0 | 3                   ; SS with RPL != CPL
        TRY .r_gp5
.f_gp5: mov ss, ax
.r_gp5: ENDTRY
        EXPECT "gp-sel-ss-rpl", 13, SEL_DATA0, .f_gp5
        xor eax, eax                            ; null selector into SS
        TRY .r_gp6
.f_gp6: mov ss, ax
.r_gp6: ENDTRY
        EXPECT "gp-sel-null-ss", 13, 0, .f_gp6
        TRY .r_gp7
.f_gp7: jmp 0:0                                 ; far jump to the null selector
.r_gp7: ENDTRY
        EXPECT "gp-far-jmp-null", 13, 0, .f_gp7
        mov ax, SEL_DATA0
        TRY .r_gp8
.f_gp8: jmp SEL_DATA0:0                         ; far jump to a data segment
.r_gp8: ENDTRY
        EXPECT "gp-far-jmp-data", 13, SEL_DATA0, .f_gp8
        ; ---- #GP(0) for an instruction longer than 15 bytes
        TRY .r_gp9
.f_gp9: times 15 db 0x66
        nop
.r_gp9: ENDTRY
        EXPECT "gp-insn-too-long", 13, 0, .f_gp9
        ; ---- #GP with an IDT error code: vector beyond the IDT limit
        mov word [var0], 0x3FF
        mov dword [var0 + 2], IDT_BASE
        lidt [var0]
        TRY .r_gpi
.f_gpi: int 0x90
.r_gpi: ENDTRY
        lidt [idtr_ram]
        EXPECT "gp-idt-limit", 13, 0x90 * 8 + 2, .f_gpi
        ; ---- #NP: not-present segment and not-present gate
        mov ax, 0x48
        TRY .r_np1
.f_np1: mov ds, ax
.r_np1: ENDTRY
        EXPECT "np-seg", 11, 0x48, .f_np1
        mov ebx, 0x42
        mov eax, exc_stubs + 31 * 16
        mov ecx, 0x0E00                         ; interrupt gate, P=0
        mov edx, SEL_CODE0
        call set_gate
        TRY .r_np2
.f_np2: int 0x42
.r_np2: ENDTRY
        EXPECT "np-gate", 11, 0x42 * 8 + 2, .f_np2
        ; ---- #SS: not-present stack segment
        mov ax, 0x48
        TRY .r_ss1
.f_ss1: mov ss, ax
.r_ss1: ENDTRY
        EXPECT "ss-not-present", 12, 0x48, .f_ss1
        ; ---- #DF: #DE whose gate is not present -> #NP while delivering -> #DF(0)
        xor ebx, ebx
        mov eax, exc_stubs
        mov ecx, 0x0E00
        mov edx, SEL_CODE0
        call set_gate
        xor edx, edx
        mov eax, 1
        xor ecx, ecx
        TRY .r_df
        div ecx
.r_df:  ENDTRY
        xor ebx, ebx
        mov eax, exc_stubs
        mov ecx, 0x8E00
        mov edx, SEL_CODE0
        call set_gate
        CHECK "df-vector", [exc_vec], 8
        mov eax, [saved_esp]
        sub eax, [exc_esp]
        CHECK "df-has-errcode", eax, 16
        CHECK "df-errcode", [exc_frame], 0
        ; ---- checks made on use (QEMU's TCG does not make these: see README)
        mov ax, 0x40
        mov es, ax
        TRY .r_lim
.f_lim: mov eax, [es:0xFFFE]                    ; straddles the 64 KiB limit
.r_lim: ENDTRY
        EXPECT "gp-seg-limit", 13, 0, .f_lim
        mov ax, 0x50
        mov es, ax
        TRY .r_ro
.f_ro:  mov [es:var0], eax                      ; write to a read-only data segment
.r_ro:  ENDTRY
        EXPECT "gp-write-readonly-seg", 13, 0, .f_ro
        TRY .r_cs
.f_cs:  mov [cs:var0], eax                      ; write through CS
.r_cs:  ENDTRY
        EXPECT "gp-write-cs", 13, 0, .f_cs
        xor eax, eax
        mov es, ax                              ; a null selector loads fine ...
        TRY .r_nul
.f_nul: mov eax, [es:var0]                      ; ... but using it faults
.r_nul: ENDTRY
        EXPECT "gp-null-seg-use", 13, 0, .f_nul
        mov ax, SEL_DATA0
        mov es, ax
        mov ax, 0x58                            ; SS limit 0x8FFFF
        mov ss, ax
        TRY .r_ssl
.f_ssl: mov eax, [ss:0x90000]
.r_ssl: ENDTRY
        EXPECT "ss-seg-limit", 12, 0, .f_ssl
        mov ax, SEL_DATA0
        mov ss, ax
        jmp finish

%include "rom_end.inc"
