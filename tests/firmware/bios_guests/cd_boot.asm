; El Torito no-emulation boot image (loaded at linear 7C00h; entered at 0000:7C00 by SeaBIOS
; and the Aero BIOS, at 07C0:0000 by some others: it normalises CS first): prints the boot
; drive, reads CD sector 21 (2048 bytes) with INT 13h AH=42h and prints the text there; exits
; with status 1.
        bits    16
        org     0
start:  jmp     07C0h:.go
.go:    cli
        mov     ax, cs
        mov     ds, ax
        mov     es, ax
        xor     ax, ax
        mov     ss, ax
        mov     sp, 7C00h
        sti
        mov     [drive], dl
        mov     si, msg
        call    puts
        mov     al, [drive]
        call    puthex8
        mov     si, crlf
        call    puts
        mov     si, dap
        mov     ah, 42h
        mov     dl, [drive]
        int     13h
        jc      .bad
        push    ds
        xor     ax, ax
        mov     ds, ax
        mov     si, 8000h
        call    puts
        pop     ds
        mov     al, 1
        jmp     exit
.bad:   mov     si, bad
        call    puts
        mov     al, 2
        jmp     exit
%include "common.inc"
drive:  db      0
msg:    db      "CD boot from drive ", 0
crlf:   db      13, 10, 0
bad:    db      "CD read failed", 13, 10, 0
        align   4
dap:    db      10h, 0
        dw      1
        dw      8000h, 0
        dq      21
        times   2048 - ($ - $$) db 0
