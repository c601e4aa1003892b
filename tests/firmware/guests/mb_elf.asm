; mb_elf.asm - a multiboot test kernel in ELF32 form, written by hand (nasm -f bin) so that
; building it needs nothing but NASM.
;
; Two PT_LOAD segments:
;   text: file offset 0, p_paddr 0x100000, p_vaddr 0xC0100000 (a "higher half" link address),
;         executable; e_entry is the *virtual* entry point, which a loader must translate to
;         the physical one (QEMU and GRUB do).
;   data: file offset 0x1000, p_paddr = p_vaddr = 0x200000, p_filesz = 16 bytes of data,
;         p_memsz covering the bss (from 0x200100) as well (which the loader must zero).
; The multiboot header (flags: page-aligned modules, memory information) is in the text
; segment right after the program headers.  See mbreport.inc for what the kernel prints.

%define KERNEL_NAME "elf"
%define VIRT_OFFSET 0xC0000000
%define MB_FLAGS 0x00000003
%define BSS_OFFSET 0x100

        bits    32
        section .text start=0 vstart=0x100000
ehdr:   db      0x7F, "ELF", 1, 1, 1, 0         ; ELFCLASS32, ELFDATA2LSB, EV_CURRENT
        times 8 db 0
        dw      2                               ; e_type ET_EXEC
        dw      3                               ; e_machine EM_386
        dd      1                               ; e_version
        dd      start + VIRT_OFFSET             ; e_entry (virtual)
        dd      phdrs - ehdr                    ; e_phoff
        dd      0                               ; e_shoff
        dd      0                               ; e_flags
        dw      52                              ; e_ehsize
        dw      32                              ; e_phentsize
        dw      2                               ; e_phnum
        dw      40                              ; e_shentsize
        dw      0                               ; e_shnum
        dw      0                               ; e_shstrndx
phdrs:  dd      1                               ; PT_LOAD: text
        dd      0                               ; p_offset
        dd      ehdr + VIRT_OFFSET              ; p_vaddr
        dd      ehdr                            ; p_paddr
        dd      text_end - ehdr                 ; p_filesz
        dd      text_end - ehdr                 ; p_memsz
        dd      5                               ; p_flags R+X
        dd      0x1000                          ; p_align
        dd      1                               ; PT_LOAD: data + bss
        dd      data_file_offset                ; p_offset
        dd      data_start                      ; p_vaddr
        dd      data_start                      ; p_paddr
        dd      data_end - data_start           ; p_filesz
        dd      kernel_end - bss_start + BSS_OFFSET ; p_memsz
        dd      6                               ; p_flags R+W
        dd      0x1000                          ; p_align

        align   4
mbh:    dd      0x1BADB002
        dd      MB_FLAGS
        dd      -(0x1BADB002 + MB_FLAGS)

start:  jmp     mb_entry

%include "mbreport.inc"

text_end:

        section .data follows=.text align=0x1000 vstart=0x200000
data_start:
data_word:
        dd      0x600DDA7A
        dd      1, 2, 3
data_end:

%if BSS_OFFSET != 0x100
%error keep BSS_OFFSET and the .bss vstart in step
%endif
        ; (the data must stay below BSS_OFFSET bytes: 16 here)

        section .bss nobits vstart=0x200100
bss_start:
MB_BSS
kernel_end:

data_file_offset equ 0x1000
