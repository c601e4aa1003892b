; shared.asm: a shared object for tests/debug/test_symbols.py: linked at 0 (load it with a bias),
; its global symbols are in .dynsym too, so they survive `strip`:
;     nasm -f elf32 -o shared.o shared.asm && ld -m elf_i386 -shared -o shared.so shared.o
        bits 32
        global lib_add:function (lib_add.end - lib_add)
        global lib_version:data 4

        section .text
lib_add:                                ; lib_add(a, b): a + b
        mov eax, [esp + 4]
        add eax, [esp + 8]
        ret
.end:
private:                                ; a local label: in .symtab only
        xor eax, eax
        ret

        section .data
lib_version:
        dd 3
