"""The standard VGA as a PCI function (00:02.0): 1234:1111, as QEMU's ``-vga std``.

BAR0 is the 16 MiB linear framebuffer (prefetchable), BAR2 the 4 KiB MMIO register block, and
the expansion ROM BAR serves the VGA BIOS image (``vga.rom``).  When firmware programs and
enables a BAR, the VGA maps itself there (``aero/devices/vga.py``); the ROM is mapped read-only
while the ROM BAR's enable bit and the memory decode bit are set.
"""

from __future__ import annotations

from .pci import BAR_MEM32, ROM_SLOT, PCIFunction


def _rom_bar_size(n: int) -> int:
    size = 2048
    while size < n:
        size <<= 1
    return size


class VGAPCI(PCIFunction):
    name = "vga-pci"
    VENDOR, DEVICE, REVISION = 0x1234, 0x1111, 0x02
    CLASS = 0x030000
    COMMAND_RESET = 0x0000

    def __init__(self, vga, membus):
        self.vga = vga
        self.membus = membus
        self.rom_mapped = None
        super().__init__()
        self.add_bar(0, vga.bar0_size, BAR_MEM32, prefetch=True)
        self.add_bar(2, vga.bar2_size, BAR_MEM32)
        if vga.rom:
            self.add_rom_bar(_rom_bar_size(len(vga.rom)))

    def bar_changed(self, index: int, old, new) -> None:
        bus = self.membus
        if index == 0:
            if new is None:
                self.vga.unmap_lfb()
            else:
                self.vga.map_lfb(bus, new)
        elif index == 2:
            if new is None:
                self.vga.unmap_bar2()
            else:
                self.vga.map_bar2(bus, new)
        elif index == ROM_SLOT:
            if self.rom_mapped is not None:
                bus.unmap(self.rom_mapped, self.bars[ROM_SLOT].size)
                self.rom_mapped = None
            if new is not None and self.vga.rom:
                bus.map_rom(new, self.vga.rom)
                self.rom_mapped = new

    def summary(self) -> dict:
        out = super().summary()
        out["rom"] = f"{self.rom_mapped:#x}" if self.rom_mapped is not None else "-"
        return out
