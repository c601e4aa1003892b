; mbrom.asm - Aero's multiboot option ROM: `aero run --bios seabios --kernel K` (the Aero BIOS
; does the same from its own boot entry, host-side; see aero/firmware/multiboot.py).
;
; As QEMU's -kernel does for multiboot images, the machine hands SeaBIOS this ROM as the fw_cfg
; file genroms/multiboot.bin, with "bootorder" naming it first (/rom@genroms/multiboot.bin).
; SeaBIOS runs option ROMs from fw_cfg at POST; this one is a PnP ROM whose init does nothing
; and whose boot entry vector (BEV) loads the kernel when SeaBIOS boots it, after POST.
;
; The BEV reads fw_cfg item 11h (FW_CFG_KERNEL_DATA), written by aero.firmware.multiboot
; (``rom_blob``), all little-endian:
;   u16 IP, u16 CS      the real-mode entry of the loader's entry code (``boot_code``)
;   u32 mbi             the multiboot information structure (below 1 MiB, 16-byte aligned)
;   u32 mmap            the memory map buffer (below 1 MiB, 16-byte aligned, 0x500 bytes)
;   u32 count           then `count` times: u32 address, u32 length, `length` bytes
; It copies each part to its address with fw_cfg DMA (QEMU docs/specs/fw_cfg.rst: the
; FWCfgDmaAccess structure, big-endian, its address written to ports 514h/518h), so memory
; above 1 MiB needs no mode switch.  Then, as the multiboot specification's mem_* and mmap_*
; fields need: the memory map from INT 15h E820 (each entry preceded by its size, 20),
; mem_lower from INT 12h, mem_upper as the contiguous available RAM from 1 MiB in the map, in
; KiB (the rule QEMU's multiboot ROM uses); A20 on (port 92h); then a far return to the entry
; code, which switches to protected mode and jumps to the kernel.
;
; The last byte is the checksum: 0 here, set when the machine adds the ROM (every byte of an
; option ROM sums to 0 mod 256).  Build: nasm -f bin -o mbrom.bin mbrom.asm

        bits    16
        org     0
FWCFG_CTL       equ 0x510
FWCFG_DATA      equ 0x511
FWCFG_DMA_HI    equ 0x514
FWCFG_DMA_LO    equ 0x518
KERNEL_DATA     equ 0x11
DMA_READ        equ 0x02
SMAP            equ 0x534D4150
MMAP_MAX        equ 0x500
ROM_SIZE        equ 1024

        db      0x55, 0xAA
        db      ROM_SIZE / 512
        jmp     init                            ; offset 3: the initialisation entry
        times   0x18 - ($ - $$) db 0
        dw      0                               ; no PCI data structure
        dw      pnp                             ; the PnP expansion header

        align   16
pnp:    db      "$PnP"
        db      1                               ; revision
        db      2                               ; length: 2 x 16 bytes
        dw      0                               ; no next header
        db      0
        db      0                               ; header checksum (SeaBIOS ignores it)
        dd      0                               ; device id
        dw      0                               ; manufacturer string
        dw      product                         ; product name: the boot menu's entry
        db      0, 0, 0                         ; device type
        db      0x20                            ; indicators: IPL device
        dw      0                               ; boot connection vector: none
        dw      0                               ; disconnect vector
        dw      bev                             ; bootstrap entry vector
        dw      0
        dw      0

product: db     "Aero multiboot loader", 0
m_dma:  db      "multiboot: fw_cfg DMA failed", 13, 10, 0

init:   retf

; --- the boot entry ----------------------------------------------------------------------------
bev:    cld
        mov     dx, FWCFG_CTL
        mov     ax, KERNEL_DATA
        out     dx, ax                          ; select the item (offset 0)
        call    rd32
        push    eax                             ; [bp+8]: IP, CS of the entry code
        call    rd32
        push    eax                             ; [bp+4]: mbi
        call    rd32
        push    eax                             ; [bp+0]: mmap
        mov     bp, sp
        call    rd32
        mov     si, ax                          ; parts to copy
.part:  test    si, si
        jz      .copied
        call    rd32
        mov     edi, eax                        ; address
        call    rd32                            ; length
        call    dma_read
        dec     si
        jmp     .part
.copied:
        ; the memory map: INT 15h E820 into mmap + 4, + 28, ... (each after its size dword)
        mov     eax, [bp]
        shr     eax, 4
        mov     es, ax
        mov     eax, [bp + 4]
        shr     eax, 4
        mov     fs, ax                          ; FS:0 = the MBI
        xor     ebx, ebx
        mov     di, 4
.e820:  cmp     di, MMAP_MAX - 20
        ja      .mapped
        mov     eax, 0xE820
        mov     ecx, 20
        mov     edx, SMAP
        int     0x15
        jc      .mapped
        cmp     eax, SMAP
        jne     .mapped
        mov     dword [es:di - 4], 20
        add     di, 24
        test    ebx, ebx
        jnz     .e820
.mapped:
        sub     di, 4
        movzx   edi, di
        mov     [fs:44], edi                    ; mmap_length
        ; mem_lower: INT 12h
        int     0x12
        movzx   eax, ax
        mov     [fs:4], eax
        ; mem_upper: follow available (type 1) ranges below 4 GiB from 1 MiB, in any order
        mov     edx, 0x100000
.restart:
        xor     di, di
.scan:  cmp     di, [fs:44]
        jae     .upper
        cmp     dword [es:di + 20], 1
        jne     .next
        cmp     dword [es:di + 8], 0
        jne     .next
        mov     eax, [es:di + 4]
        cmp     edx, eax
        jb      .next
        add     eax, [es:di + 12]
        cmp     edx, eax
        jae     .next
        mov     edx, eax
        jmp     .restart
.next:  add     di, 24
        jmp     .scan
.upper: sub     edx, 0x100000
        shr     edx, 10
        mov     [fs:8], edx
        ; A20 on (port 92h, bit 1; bit 0 would reset), then the entry code
        in      al, 0x92
        or      al, 0x02
        and     al, 0xFE
        out     0x92, al
        add     sp, 8                           ; mmap, mbi
        retf                                    ; to the entry code (IP, CS)

; EAX = the next little-endian dword of the selected item
rd32:   push    dx
        mov     dx, FWCFG_DATA
        in      al, dx
        ror     eax, 8
        in      al, dx
        ror     eax, 8
        in      al, dx
        ror     eax, 8
        in      al, dx
        ror     eax, 8
        pop     dx
        ret

; copy EAX bytes of the selected item (from its current offset) to physical address EDI
dma_read:
        push    ebx
        push    edx
        sub     sp, 16
        push    bp
        mov     bp, sp
        bswap   eax
        mov     [bp + 2 + 4], eax               ; length
        mov     dword [bp + 2], DMA_READ << 24  ; control (big-endian 2)
        mov     dword [bp + 2 + 8], 0           ; address, high dword
        mov     eax, edi
        bswap   eax
        mov     [bp + 2 + 12], eax              ; address, low dword
        xor     eax, eax
        mov     ax, ss
        shl     eax, 4
        movzx   ebx, bp
        add     eax, ebx
        add     eax, 2                          ; the structure's physical address
        bswap   eax
        mov     ebx, eax
        xor     eax, eax
        mov     dx, FWCFG_DMA_HI
        out     dx, eax
        mov     eax, ebx
        mov     dx, FWCFG_DMA_LO
        out     dx, eax                         ; runs the transfer
        mov     eax, [bp + 2]
        pop     bp
        add     sp, 16
        pop     edx
        pop     ebx
        test    eax, eax
        jnz     .fail
        ret
.fail:  mov     si, m_dma
.puts:  cs lodsb
        test    al, al
        jz      .halt
        mov     ah, 0x0E
        mov     bx, 7
        int     0x10
        jmp     .puts
.halt:  cli
        hlt
        jmp     .halt

        times   ROM_SIZE - 1 - ($ - $$) db 0
        db      0                               ; checksum
