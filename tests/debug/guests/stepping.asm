; stepping.asm - a boot sector for the debugger's tests: calls, a loop, a REP string, an INT,
; the Bochs magic breakpoint, a data write and an I/O port, then isa-debug-exit (status 33).
; Labels are used by the tests through the NASM map file written beside it (stepping.map).
bits 16
org 0x7c00
[map symbols stepping.map]

start:
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7000
        mov cx, 4
again:
        call add_one                    ; step over: the next line at the same depth
        loop again                      ; step over: leaves the loop
        mov di, buffer
        mov al, 0x5a
        mov cx, 8
        rep stosb                       ; step over: all 8 at once
        mov ah, 0x0e
        mov al, '*'
        int 0x10                        ; step over / into the BIOS
        xchg bx, bx                     ; the magic breakpoint
        mov word [counter], 0x1234      ; a watched write
        mov dx, 0x3f8
        mov al, '!'
        out dx, al                      ; a caught port
        call outer
        mov dx, 0x501
        mov al, 0x10
        out dx, al                      ; isa-debug-exit: status 33
        cli
        hlt

add_one:
        inc word [counter]
        ret

outer:
        call inner                      ; finish from inner returns here
        ret
inner:
        nop
        nop
        ret

counter: dw 0
buffer: times 8 db 0

times 510 - ($ - $$) db 0
dw 0xaa55
