; kernel.asm: a tiny higher-half multiboot kernel (linked at 0xC0100000, loaded at 0x100000 by
; kernel.ld) for the ELF tests of tests/debug/test_symbols.py.  Its symbols have sizes and types
; where NASM's `global name:function size` gives them, and none for plain labels:
;     nasm -f elf32 -o kernel.o kernel.asm && ld -m elf_i386 -T kernel.ld -o kernel.elf kernel.o
; (The tests also build it with -g -F dwarf for DWARF line information: that output names the
; build directory, so it is built at test time and not committed.)
        bits 32

MB_MAGIC        equ 0x1BADB002          ; constants: SHN_ABS symbols in the ELF file
MB_FLAGS        equ 0
KERNEL_BASE     equ 0xC0000000

        section .multiboot
        align 4
mb_header:
        dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        section .text
        global _start:function (_start.end - _start)
        global sum:function (sum.end - sum)
        global table:data (table.end - table)
        global counter:data 4
_start:
        mov esp, stack_top
        push dword (table.end - table) / 4
        push table
        call sum
        add esp, 8
        mov [counter], eax
.hang:  hlt
        jmp .hang
.end:

sum:                                    ; sum(p, n): the sum of n dwords at p
        mov edx, [esp + 4]
        mov ecx, [esp + 8]
        xor eax, eax
.loop:  add eax, [edx]
        add edx, 4
        loop .loop
        ret
.end:

unsized:                                ; a label without a size or a type
        nop
        ret

        section .data
table:  dd 1, 2, 3, 4
.end:

        section .bss
        alignb 4
counter:        resd 1
stack:          resb 4096
stack_top:
