; travel.asm - the workload of `aero bench --travel`: a boot sector that runs until stopped.
; It fills 4 KiB pages of a 512 KiB region one word at a time, checksums each with a call,
; and takes a PIT interrupt every millisecond (its handler counts them), so a recording of it
; has steady page dirtying, calls, returns and interrupts to travel over.
bits 16
org 0x7c00

start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7000
        mov word [8 * 4], irq0          ; IRQ0 -> vector 8 (the BIOS's PIC setup)
        mov word [8 * 4 + 2], 0
        mov al, 0x34                    ; PIT channel 0, mode 2, 1 kHz
        out 0x43, al
        mov ax, 1193
        out 0x40, al
        mov al, ah
        out 0x40, al
        in al, 0x21
        and al, 0xfe                    ; unmask IRQ0
        out 0x21, al
        sti
        mov bx, 0x1000
main:
        mov es, bx
        xor di, di
        mov cx, 2048
        mov ax, bx
fill:
        stosw                           ; one word at a time: a page in 6144 instructions
        add ax, cx
        loop fill
        call checksum
        add bx, 0x100                   ; the next 4 KiB
        cmp bx, 0x9000
        jb main
        mov bx, 0x1000
        jmp main

checksum:
        push ds
        mov ds, bx
        xor si, si
        xor dx, dx
        mov cx, 512
.next:
        lodsw
        add dx, ax
        rol dx, 1
        loop .next
        pop ds
        mov [sum], dx
        ret

irq0:
        inc word [ticks]
        push ax
        mov al, 0x20
        out 0x20, al
        pop ax
        iret

ticks:  dw 0
sum:    dw 0

        times 510 - ($ - $$) db 0
        dw 0xaa55
