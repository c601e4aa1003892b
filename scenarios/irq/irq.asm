; irq: interrupt-driven timer and keyboard.  The boot sector installs its own IRQ0 (INT 08h) and
; IRQ1 (INT 09h) handlers, reprograms PIT channel 0 to 100 Hz (mode 2, divisor 11932), unmasks
; IRQ0/IRQ1 at the master 8259A and then sleeps in HLT.  The keyboard handler reads the scan
; code from port 60h (set 1, as the 8042 translates), turns make codes into ASCII and queues
; them; the main loop echoes them to COM1.  After Enter it waits 50 timer ticks (0.5 s of
; virtual time), reports and exits through isa-debug-exit with 0x10 (exit status 33).
; The manifest types the keys with `--keys` (aero/inputs.py).
bits 16
org 0x7C00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    mov dx, 0x3FB                       ; COM1 8N1, 115200
    mov al, 0x83
    out dx, al
    mov dx, 0x3F8
    mov al, 1
    out dx, al
    inc dx
    xor al, al
    out dx, al
    mov dx, 0x3FB
    mov al, 3
    out dx, al
    xor ax, ax
    mov word [8 * 4], timer             ; INT 08h
    mov [8 * 4 + 2], ax
    mov word [9 * 4], keyboard          ; INT 09h
    mov [9 * 4 + 2], ax
    mov al, 0x34                        ; PIT channel 0: lobyte/hibyte, mode 2
    out 0x43, al
    mov ax, 11932
    out 0x40, al
    mov al, ah
    out 0x40, al
    in al, 0x21                         ; unmask IRQ0 and IRQ1
    and al, 0xFC
    out 0x21, al
    in al, 0x64                         ; drop a stale byte in the 8042 output buffer
    test al, 1
    jz .clean
    in al, 0x60
.clean:
    mov si, m_prompt
    call puts
    sti
.loop:
    hlt
.next:
    cli
    mov bl, [head]
    cmp bl, [tail]
    je .empty
    xor bh, bh
    mov al, [queue + bx]
    inc bl
    and bl, 15
    mov [head], bl
    sti
    call putc
    cmp al, 13
    jne .next
    mov al, 10
    call putc
    jmp .done
.empty:
    sti
    jmp .loop
.done:
    mov eax, [ticks]
    add eax, 50
.wait:
    hlt
    cmp [ticks], eax
    jb .wait
    mov si, m_timer
    call puts
    mov al, 0x10
    mov dx, 0x501
    out dx, al
    cli
    hlt

timer:                                  ; IRQ0
    inc dword [cs:ticks]
    push ax
    mov al, 0x20                        ; non-specific EOI
    out 0x20, al
    pop ax
    iret

keyboard:                               ; IRQ1
    push ax
    push bx
    in al, 0x60
    test al, 0x80                       ; break codes are ignored
    jnz .eoi
    cmp al, keymap_end - keymap
    jae .eoi
    mov bx, keymap
    cs xlatb
    test al, al
    jz .eoi
    mov bl, [cs:tail]
    xor bh, bh
    mov [cs:queue + bx], al
    inc bl
    and bl, 15
    cmp bl, [cs:head]                   ; full: drop the key
    je .eoi
    mov [cs:tail], bl
.eoi:
    mov al, 0x20
    out 0x20, al
    pop bx
    pop ax
    iret

puts:
    lodsb
    test al, al
    jz .r
    call putc
    jmp puts
.r: ret
putc:
    push dx
    push ax
    mov dx, 0x3FD
.w: in al, dx
    test al, 0x20
    jz .w
    pop ax
    mov dx, 0x3F8
    out dx, al
    pop dx
    ret

; scan code set 1 make codes 00h-39h -> ASCII (unshifted US layout)
keymap:
    db 0, 27, "1234567890-=", 8, 9
    db "qwertyuiop[]", 13, 0
    db "asdfghjkl;'`", 0, "\"
    db "zxcvbnm,./", 0, "*", 0, " "
keymap_end:
ticks: dd 0
head: db 0
tail: db 0
queue: times 16 db 0
m_prompt: db "type> ", 0
m_timer: db "50 timer ticks later: bye", 13, 10, 0
times 510-($-$$) db 0
dw 0xAA55
