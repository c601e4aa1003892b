; timer_irq: program the PIC and PIT like a BIOS, count 100 IRQ 0 ticks at 1 kHz while halted,
; then report on the debug console (0xE9) and exit through isa-debug-exit (0x501) with 0x10.
; A 64 KiB ROM started at the reset vector; runs under Aero and under QEMU.
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [ticks], 0
    mov word [8 * 4], irq0              ; IVT vector 8 -> F000:irq0
    mov word [8 * 4 + 2], 0xF000
    mov al, 0x11                        ; ICW1: edge, cascade, ICW4 needed
    out 0x20, al
    out 0xA0, al
    mov al, 0x08                        ; ICW2: master vectors 08h-0Fh
    out 0x21, al
    mov al, 0x70                        ; slave vectors 70h-77h
    out 0xA1, al
    mov al, 0x04                        ; ICW3: slave on IR2
    out 0x21, al
    mov al, 0x02
    out 0xA1, al
    mov al, 0x01                        ; ICW4: 8086 mode
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE                        ; unmask IRQ 0 only
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al
    mov al, 0x34                        ; PIT channel 0, lobyte/hibyte, mode 2
    out 0x43, al
    mov ax, 1193                        ; 1193182 Hz / 1193 = 1000.15 Hz
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
.wait:
    hlt
    cmp word [ticks], 100
    jb .wait
    cli
    mov si, msg
    mov dx, 0xE9
.print:
    cs lodsb
    test al, al
    jz .done
    out dx, al
    jmp .print
.done:
    mov dx, 0x501
    mov al, 0x10
    out dx, al
    hlt
    jmp .done

irq0:
    inc word [ticks]
    push ax
    mov al, 0x20                        ; non-specific EOI
    out 0x20, al
    pop ax
    iret

msg: db "TICKS 100", 10, 0
ticks equ 0x500

    times 0xFFF0 - ($ - $$) db 0xFF
reset:
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0xFF
