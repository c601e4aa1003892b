; Boot sector: prints through INT 10h teletype and COM1 (INT 14h), reads sector 2 through
; INT 13h AH=02h and prints the text found there, then writes "done" to the isa-debug-exit port.
; Same behaviour under SeaBIOS (QEMU) and the Aero BIOS.
        bits    16
        org     7C00h
start:  cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 7C00h
        sti
        mov     [drive], dl
        mov     ax, 00E3h               ; COM1: 9600 baud, 8N1
        xor     dx, dx
        int     14h
        mov     si, hello
        call    print
        ; read sector 2 (CHS 0/0/2) to 0:8000
        mov     ax, 0201h
        mov     bx, 8000h
        mov     cx, 0002h
        xor     dh, dh
        mov     dl, [drive]
        int     13h
        jc      .err
        mov     si, 8000h
        call    print
        mov     si, bye
        call    print
.halt:  mov     dx, 501h                ; isa-debug-exit: status (1 << 1) | 1 = 3
        mov     al, 1
        out     dx, al
        cli
        hlt
        jmp     .halt
.err:   mov     si, err
        call    print
        jmp     .halt

; print the NUL-terminated string at DS:SI on the screen and COM1
print:  lodsb
        test    al, al
        jz      .ret
        push    ax
        mov     ah, 0Eh
        mov     bx, 0007h
        int     10h
        pop     ax
        mov     ah, 01h
        xor     dx, dx
        int     14h
        jmp     print
.ret:   ret

drive:  db      0
hello:  db      "Hello from the boot sector", 13, 10, 0
bye:    db      "Bye", 13, 10, 0
err:    db      "INT 13h failed", 13, 10, 0
        times   510 - ($ - $$) db 0
        dw      0AA55h
; sector 2
        db      "Sector 2 says hi", 13, 10, 0
        times   1024 - ($ - $$) db 0
