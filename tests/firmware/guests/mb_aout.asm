; mb_aout.asm - a multiboot test kernel in flat binary form using the "a.out kludge" (header
; flag bit 16): the header gives header_addr, load_addr, load_end_addr, bss_end_addr and
; entry_addr, and the loader needs no executable format (Multiboot Specification 0.6.96,
; 3.1.3).  The header is not at the start of the file (a loader must compute the file offset
; of load_addr from header_addr - load_addr), the image is loaded at 0x180000, and the bss
; after load_end_addr must be zeroed.  See mbreport.inc for what the kernel prints.

%define KERNEL_NAME "aout"
%define MB_FLAGS 0x00010003

        bits    32
        org     0x180000
load_start:
        jmp     start
        times 30 db 0x90                        ; the header need not come first

        align   4
mbh:    dd      0x1BADB002
        dd      MB_FLAGS
        dd      -(0x1BADB002 + MB_FLAGS)
        dd      mbh                             ; header_addr
        dd      load_start                      ; load_addr
        dd      load_end                        ; load_end_addr
        dd      kernel_end                      ; bss_end_addr
        dd      start                           ; entry_addr

start:  jmp     mb_entry

%include "mbreport.inc"

data_word:
        dd      0xA0D7DA7A
        align   16
load_end:

        absolute load_end
MB_BSS
kernel_end:
