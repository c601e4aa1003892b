; The Aero BIOS ROM: a 64 KiB image mapped at F000:0000 (and at the top of 4 GiB).
;
; High-level emulation: every BIOS service vector points to a stub whose first instruction is
; `out SVC_PORT, al`.  The emulator's handler for that port (aero/firmware/bios.py) identifies
; the service from the linear address of the OUT (CS base + EIP: the stub is entered by a jump,
; so the OUT is the first instruction of its translated block), does the work in Python on the
; guest's registers and memory, returns CF/ZF in the FLAGS image the INT pushed at SS:SP+4, and
; sets the LIVE carry flag to say "not finished yet: wait".  Waiting stubs then halt with
; interrupts enabled and retry through a second OUT (`.again`), so virtual time advances and the
; timer and keyboard interrupts are served while the guest waits (INT 16h AH=00h, INT 15h AH=86h).
;
; SVC_PORT = 0xEB.  On this machine nothing else decodes port EBh (it is not a DMA page
; register, not POST 80h, not debugcon E9h, not port 92h, not the PIC/PIT/CMOS/KBC).  Some old
; software writes EBh as an I/O delay: such writes come from addresses that are not stubs and
; are ignored.
;
; The image starts with a table the host code reads: "AEROBIOS", a word count, then entries
; (service id, offset of an OUT, 0 = first entry / 1 = retry after a wait).  Service ids 00h-FFh
; are interrupt vectors; 100h is POST.
;
; The three VGA fonts are filled in by the host when it installs the ROM (aero.display.fonts;
; see README.md): 8x8 at FONT8 (its lower half also at the IBM-compatible F000:FA6E), 8x14 at
; FONT14, 8x16 at FONT16.  This file is assembled with `nasm -f bin -o aerobios.bin`.

        cpu     386
        bits    16
        org     0

SVC_PORT        equ     0EBh

; ---------------------------------------------------------------------------------------------
; The service table
; ---------------------------------------------------------------------------------------------
        db      "AEROBIOS"
        dw      (table_end - table) / 6
table:
%macro ENTRY 3
        dw      %1, %2, %3
%endmacro
        ENTRY   010h, svc_10, 0
        ENTRY   010h, svc_10.again, 1
        ENTRY   011h, svc_11, 0
        ENTRY   011h, svc_11.again, 1
        ENTRY   012h, svc_12, 0
        ENTRY   012h, svc_12.again, 1
        ENTRY   013h, svc_13, 0
        ENTRY   013h, svc_13.again, 1
        ENTRY   014h, svc_14, 0
        ENTRY   014h, svc_14.again, 1
        ENTRY   015h, svc_15, 0
        ENTRY   015h, svc_15.again, 1
        ENTRY   016h, svc_16, 0
        ENTRY   016h, svc_16.again, 1
        ENTRY   017h, svc_17, 0
        ENTRY   017h, svc_17.again, 1
        ENTRY   01Ah, svc_1A, 0
        ENTRY   01Ah, svc_1A.again, 1
        ENTRY   018h, svc_18, 0
        ENTRY   019h, svc_19, 0
        ENTRY   008h, svc_08, 0
        ENTRY   009h, svc_09.key, 0
        ENTRY   070h, svc_70, 0
        ENTRY   100h, post_out, 0
table_end:

; Other fixed things the host needs: offsets of the non-OUT stubs and data
        align   2
        db      "STUBS"
        align   2
stub_offsets:
        dw      dummy_iret, irq_master, irq_slave, halt_forever, FONT8, FONT14, FONT16
        dw      config_table, diskette_params, hd_param_table, video_params, rsdp_slot
        dw      vbe_oem, vbe_vendor, vbe_product, vbe_revision, vbe_modes, smbios_slot
        dw      svc_09                  ; the INT 09h entry (its OUT is at svc_09.key)
        dw      vbe_pmi, vbe_pmi_end    ; the VBE protected-mode interface (INT 10h 4F0Ah)

; ---------------------------------------------------------------------------------------------
; Service stubs
; ---------------------------------------------------------------------------------------------
; A service that may wait: the host clears live CF when the call is complete (IRET restores the
; caller's FLAGS with the results), sets it to wait for an interrupt and retry.
%macro SERVICE 1
svc_%1:
        out     SVC_PORT, al
        jnc     .done
.wait:  sti
        hlt
        jmp     .again                  ; ends the block: .again starts a new one
.again: out     SVC_PORT, al
        jc      .wait
.done:  iret
%endmacro

        align   16
        SERVICE 10
        SERVICE 11
        SERVICE 12
        SERVICE 13
        SERVICE 14
        SERVICE 15
        SERVICE 16
        SERVICE 17
        SERVICE 1A

; INT 18h: no bootable device.  The host prints the message; the machine then halts.
svc_18: out     SVC_PORT, al
halt_forever:
        cli
        hlt
        jmp     halt_forever

; INT 19h: bootstrap loader.  The host loads the boot sector, sets the registers and SS:SP,
; and pushes the entry point (or halt_forever) for this RETF.
svc_19: out     SVC_PORT, al
        retf

; IRQ 0: the host counts the tick (BDA 46Ch/470h); then INT 1Ch; then EOI.
svc_08: out     SVC_PORT, al
        int     1Ch
        push    ax
        mov     al, 20h
        out     20h, al
        pop     ax
        iret

; IRQ 1: read the scancode, offer it to INT 15h AH=4Fh (the keyboard intercept: CF clear
; means "consumed"), then the host processes the scancode in AL (shift states in 417h/418h/496h,
; key codes into the buffer); EOI.  `jnc` ends a block, so the OUT at .key starts one.
svc_09: push    ax
        in      al, 60h
        mov     ah, 4Fh
        stc
        int     15h
        jnc     .done
.key:   out     SVC_PORT, al
.done:  mov     al, 20h
        out     20h, al
        pop     ax
        iret

; IRQ 8: the host reads RTC register C (acknowledging the interrupt); EOI to both PICs.
svc_70: out     SVC_PORT, al
        push    ax
        mov     al, 20h
        out     0A0h, al
        out     20h, al
        pop     ax
        iret

; Other hardware interrupts: just the EOI.
irq_master:
        push    ax
        mov     al, 20h
        out     20h, al
        pop     ax
        iret
irq_slave:
        push    ax
        mov     al, 20h
        out     0A0h, al
        out     20h, al
        pop     ax
        iret

dummy_iret:
        iret

; POST: a flat stack, then the host does everything and pushes the boot entry point.
post_entry:
        cli
        cld
        xor     ax, ax
        mov     ss, ax
        mov     sp, 7C00h
        jmp     post_out
post_out:
        out     SVC_PORT, al
        retf

; ---------------------------------------------------------------------------------------------
; Data
; ---------------------------------------------------------------------------------------------
        align   16
FONT8:  times   2048 db 0               ; filled by the host
FONT14: times   3584 db 0
FONT16: times   4096 db 0

; Hard disk parameter table (INT 41h/46h): filled by the host in RAM copies; here zeros.
hd_param_table:
        times   16 db 0

video_params:
        times   64 db 0

; VBE controller information strings and the mode list (INT 10h AX=4F00h points here).
vbe_oem:        db      "Aero VBE", 0
vbe_vendor:     db      "Aero Workbench", 0
vbe_product:    db      "Aero stdvga (Bochs DISPI)", 0
vbe_revision:   db      "1.0", 0
        align   2
vbe_modes:      ; keep in step with VBE_MODES in aero/firmware/bios_video.py
        dw      101h, 103h, 105h                ; 640x480, 800x600, 1024x768 at 8 bpp
        dw      111h, 114h, 117h                ; ... 16 bpp (5:6:5)
        dw      112h, 115h, 118h                ; ... 24 bpp
        dw      140h, 141h, 142h                ; ... 32 bpp (Bochs numbering)
        dw      0FFFFh

; The VBE protected-mode interface (VBE 3.0, function 0Ah): a table of offsets (relative to the
; table) to 32-bit code the OS copies and calls near, with the registers of functions 05h, 07h
; and 09h, and the list of I/O ports that code touches.  The code drives the Bochs DISPI
; registers (index 1CEh, data 1CFh) and the DAC.
        align   4
vbe_pmi:
        dw      pmi_set_window - vbe_pmi
        dw      pmi_set_display_start - vbe_pmi
        dw      pmi_set_palette - vbe_pmi
        dw      pmi_ports - vbe_pmi
pmi_ports:
        dw      1CEh, 1CFh, 3C8h, 3C9h, 0FFFFh  ; I/O ports
        dw      0FFFFh                          ; no memory areas
        bits    32
pmi_set_window:                         ; BL = window (0), DX = bank in 64 KiB units
        push    eax
        push    edx
        mov     ax, 5                   ; VBE_DISPI_INDEX_BANK
        mov     dx, 1CEh
        out     dx, ax
        pop     edx
        mov     eax, edx
        push    edx
        mov     dx, 1CFh
        out     dx, ax
        pop     edx
        pop     eax
        ret
pmi_set_display_start:                  ; BL = 00h/80h, DX:CX = start address in dwords
        pushad
        movzx   eax, dx
        shl     eax, 16
        mov     ax, cx
        shl     eax, 2                  ; bytes into the framebuffer
        mov     ebx, eax
        mov     dx, 1CEh
        mov     ax, 3                   ; VBE_DISPI_INDEX_BPP
        out     dx, ax
        inc     dx
        in      ax, dx
        movzx   ecx, ax
        add     ecx, 7
        shr     ecx, 3                  ; bytes per pixel
        dec     dx
        mov     ax, 6                   ; VBE_DISPI_INDEX_VIRT_WIDTH
        out     dx, ax
        inc     dx
        in      ax, dx
        movzx   esi, ax
        imul    esi, ecx                ; bytes per scan line
        mov     eax, ebx
        xor     edx, edx
        div     esi                     ; EAX = line, EDX = byte in the line
        mov     edi, eax
        mov     eax, edx
        xor     edx, edx
        div     ecx                     ; EAX = pixel in the line
        mov     ebx, eax
        mov     dx, 1CEh
        mov     ax, 8                   ; VBE_DISPI_INDEX_X_OFFSET
        out     dx, ax
        inc     dx
        mov     eax, ebx
        out     dx, ax
        dec     dx
        mov     ax, 9                   ; VBE_DISPI_INDEX_Y_OFFSET
        out     dx, ax
        inc     dx
        mov     eax, edi
        out     dx, ax
        popad
        ret
pmi_set_palette:                        ; CX entries from DX, DS:EDI -> (blue, green, red, 0)
        pushad
        mov     al, dl
        mov     dx, 3C8h
        out     dx, al
        inc     dx
        movzx   ecx, cx
        mov     esi, edi
.next:  jecxz   .done
        mov     al, [esi + 2]
        out     dx, al
        mov     al, [esi + 1]
        out     dx, al
        mov     al, [esi]
        out     dx, al
        add     esi, 4
        dec     ecx
        jmp     .next
.done:  popad
        ret
        bits    16
vbe_pmi_end:

; The ACPI RSDP (36 bytes on a 16-byte boundary in F0000-FFFFF), written by the host when it
; installs the ROM (the tables themselves live in reserved RAM at the top of memory).
        align   16
rsdp_slot:
        times   48 db 0

; The SMBIOS 2.1 entry point (31 bytes on a 16-byte boundary), written by the host likewise.
        align   16
smbios_slot:
        times   32 db 0

; INT 15h AH=C0h: system configuration table (IBM PS/2 layout; model FCh = AT).
        times   0E6F5h - ($ - $$) db 0
config_table:
        dw      8                       ; bytes that follow
        db      0FCh                    ; model
        db      00h                     ; submodel
        db      01h                     ; BIOS revision
        db      74h                     ; feature 1: 2nd PIC, RTC, INT 15h/4Fh, EBDA
        db      40h                     ; feature 2: INT 16h AH=09h
        db      0, 0, 0

; INT 1Eh: diskette parameter table (1.44 MB), at its IBM-compatible address.
        times   0EFC7h - ($ - $$) db 0
diskette_params:
        db      0AFh, 02h, 25h, 02h, 12h, 1Bh, 0FFh, 6Ch, 0F6h, 0Fh, 08h

; The 8x8 font's first 128 glyphs at the IBM-compatible F000:FA6E (filled by the host).
        times   0FA6Eh - ($ - $$) db 0
font8_compat:
        times   1024 db 0

; Reset vector
        times   0FFF0h - ($ - $$) db 0
        jmp     0F000h:post_entry
        db      "11/26/26"              ; BIOS date at F000:FFF5
        db      0
        db      0FCh                    ; model byte at F000:FFFE
        db      0
