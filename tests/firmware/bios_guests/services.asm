; Floppy boot sector exercising BIOS services; results are stored in memory for the test:
;   0F00 ticks before (dword), 0F04 ticks after a 500 ms INT 15h AH=86h wait, 0F08 INT 12h,
;   0F0A INT 11h, 0F0C/0F0E E801 AX/BX, 0F10 INT 15h AH=88h, 0F12/0F14 INT 1Ah AH=02h CX/DX,
;   0F16/0F18 AH=04h CX/DX, 0F1A model byte via INT 15h AH=C0h, 0F1C/0F1E INT 10h AX=1130h BH=6
;   ES:BP, 0F20 AX of VBE 4F00h, 0F22 AX of 4F01h, 0F24/0F26 keys from INT 16h AH=00h/10h,
;   0F28 INT 16h AH=02h shift flags, 0F2A E820 entry count, 0F2C INT 10h AH=03h DX,
;   1000 E820 entries (24 bytes each), 2000 VBE controller info, 2200 mode info of 112h.
; Exits with status 1 (exit code 3) through isa-debug-exit.
        bits    16
        org     7C00h
start:  cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 7C00h
        sti
        mov     ah, 00h
        int     1Ah
        mov     [0F00h], dx
        mov     [0F02h], cx
        mov     ah, 86h
        mov     cx, 0007h
        mov     dx, 0A120h              ; 500000 us
        int     15h
        mov     ah, 00h
        int     1Ah
        mov     [0F04h], dx
        mov     [0F06h], cx
        int     12h
        mov     [0F08h], ax
        int     11h
        mov     [0F0Ah], ax
        mov     ax, 0E801h
        int     15h
        mov     [0F0Ch], ax
        mov     [0F0Eh], bx
        mov     ah, 88h
        int     15h
        mov     [0F10h], ax
        mov     ah, 02h
        int     1Ah
        mov     [0F12h], cx
        mov     [0F14h], dx
        mov     ah, 04h
        int     1Ah
        mov     [0F16h], cx
        mov     [0F18h], dx
        mov     ah, 0C0h
        int     15h
        mov     al, [es:bx+2]
        mov     [0F1Ah], al
        push    ds
        pop     es
        mov     ax, 1130h
        mov     bh, 6
        push    bp
        int     10h
        mov     [0F1Ch], bp
        mov     [0F1Eh], es
        pop     bp
        push    ds
        pop     es
        mov     dword [2000h], "VBE2"
        mov     ax, 4F00h
        mov     di, 2000h
        int     10h
        mov     [0F20h], ax
        mov     ax, 4F01h
        mov     cx, 112h
        mov     di, 2200h
        int     10h
        mov     [0F22h], ax
        ; E820
        xor     ebx, ebx
        mov     di, 1000h
        xor     si, si
.e820:  mov     eax, 0E820h
        mov     ecx, 24
        mov     edx, 534D4150h
        int     15h
        jc      .e820done
        inc     si
        add     di, 24
        test    ebx, ebx
        jnz     .e820
.e820done:
        mov     [0F2Ah], si
        ; teletype something, then report the cursor
        mov     ax, 0E41h
        mov     bx, 0007h
        int     10h
        mov     ax, 0E42h
        int     10h
        mov     ah, 03h
        xor     bh, bh
        int     10h
        mov     [0F2Ch], dx
        ; keys
        mov     ah, 00h
        int     16h
        mov     [0F24h], ax
        mov     ah, 10h
        int     16h
        mov     [0F26h], ax
        mov     ah, 02h
        int     16h
        mov     [0F28h], al
        mov     dx, 501h
        mov     al, 1
        out     dx, al
.h:     cli
        hlt
        jmp     .h
        times   510 - ($ - $$) db 0
        dw      0AA55h
