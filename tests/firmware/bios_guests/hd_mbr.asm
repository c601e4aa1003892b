; Hard-disk MBR: checks the EDD extensions (INT 13h AH=41h), reads the second stage (LBA 1-2)
; with AH=42h to 0:8000 and jumps to it; the second stage reads LBA 3 with CHS (AH=02h), prints
; both through INT 10h and COM1 and exits with status 1 (exit code 3).
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
        mov     si, msg
        call    puts
        mov     al, [drive]
        call    puthex8
        mov     si, crlf
        call    puts
        mov     ah, 41h
        mov     bx, 55AAh
        mov     dl, [drive]
        int     13h
        jc      fail
        cmp     bx, 0AA55h
        jne     fail
        mov     si, dap
        mov     ah, 42h
        mov     dl, [drive]
        int     13h
        jc      fail
        jmp     0:8000h
fail:   mov     si, bad
        call    puts
        mov     al, 2
        jmp     exit
%include "common.inc"
drive:  db      0
msg:    db      "MBR: booted from drive ", 0
crlf:   db      13, 10, 0
bad:    db      "MBR: disk error", 13, 10, 0
dap:    db      10h, 0
        dw      2                       ; sectors
        dw      8000h, 0                ; buffer 0:8000
        dq      1                       ; LBA
        times   446 - ($ - $$) db 0
        ; one partition entry (active, type 83h, LBA 1, 2047 sectors)
        db      80h, 0, 2, 0, 83h, 15, 63, 0
        dd      1, 2047
        times   510 - ($ - $$) db 0
        dw      0AA55h

; ---- second stage at 0:8000 (LBA 1-2) ----
        section stage2 vstart=8000h
stage2: mov     si, s2msg
        call    puts
        mov     ax, 0201h               ; CHS read: cylinder 0, head 0, sector 4 = LBA 3
        mov     bx, 9000h
        mov     cx, 0004h
        xor     dh, dh
        mov     dl, [drive]
        int     13h
        jc      .bad
        mov     si, 9000h
        call    puts
        mov     al, 1
        jmp     exit
.bad:   mov     si, bad
        call    puts
        mov     al, 2
        jmp     exit
s2msg:  db      "Stage 2 running", 13, 10, 0
        times   1024 - ($ - $$) db 0
; LBA 3
        db      "LBA 3 read through CHS", 13, 10, 0
        times   512 - ($ - $$) + 1024 db 0
