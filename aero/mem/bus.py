"""The physical memory bus: RAM, ROM, MMIO ranges, unmapped space, the A20 gate.

Physical space is described per 4 KiB page by ``kind``: RAM (read/write bytes in ``ram``), ROM
(bytes in ``ram`` too, writes ignored), MMIO (dispatched to a device) or unmapped (reads 0xFF,
writes dropped).  Only RAM and ROM pages take the fast path.

Pages holding translated code are flagged in ``code``; a write to such a page calls
``on_code_write(addr, size)`` (the CPU invalidates its blocks there).
"""

from __future__ import annotations

import struct

RAM, ROM, MMIO, UNMAPPED = 0, 1, 2, 3
PAGE = 4096
NPAGES = 1 << 20

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class MMIOHandler:
    """What a device implements to claim an MMIO range."""

    def mmio_read(self, addr: int, size: int) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def mmio_write(self, addr: int, size: int, value: int) -> None:  # pragma: no cover
        raise NotImplementedError


class Bus:
    """Physical memory.  RAM is one bytearray covering the RAM and ROM pages (ROM images live
    in a separate 4 GiB-top area mapped through ``backing``)."""

    def __init__(self, ram_size: int):
        if ram_size % PAGE:
            raise ValueError("RAM size must be a multiple of 4 KiB")
        self.ram_size = ram_size
        self.ram = bytearray(ram_size)
        self.kind = bytearray([UNMAPPED]) * NPAGES
        self.kind[: ram_size // PAGE] = bytes(ram_size // PAGE)          # RAM
        self.code = bytearray(NPAGES)
        self.mmio: dict[int, MMIOHandler] = {}     # page -> handler
        self.rom_pages: dict[int, memoryview] = {}  # pages outside RAM holding ROM bytes
        self.a20_mask = 0xFFFFFFFF
        self.on_code_write = None
        self.on_a20_change = None

    # -- configuration ----------------------------------------------------------------------
    def set_a20(self, enabled: bool) -> None:
        self.a20_mask = 0xFFFFFFFF if enabled else 0xFFEFFFFF
        if self.on_a20_change is not None:
            self.on_a20_change()

    @property
    def a20(self) -> bool:
        return self.a20_mask == 0xFFFFFFFF

    def map_mmio(self, base: int, size: int, handler: MMIOHandler) -> None:
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            self.kind[p] = MMIO
            self.mmio[p] = handler

    def map_rom(self, base: int, data: bytes) -> None:
        """Map read-only bytes at ``base`` (page aligned).  Inside RAM the bytes are copied into
        RAM and the pages made read-only; above RAM they get their own backing."""
        data = bytes(data) + bytes(-len(data) % PAGE)
        for off in range(0, len(data), PAGE):
            p = (base + off) // PAGE
            chunk = data[off: off + PAGE]
            if (p + 1) * PAGE <= self.ram_size:
                self.ram[p * PAGE: (p + 1) * PAGE] = chunk
            else:
                self.rom_pages[p] = memoryview(bytearray(chunk))
            self.kind[p] = ROM

    def set_kind(self, base: int, size: int, kind: int) -> None:
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            self.kind[p] = kind

    # -- access -------------------------------------------------------------------------------
    def read8(self, a: int) -> int:
        k = self.kind[a >> 12]
        if k == RAM or (k == ROM and a < self.ram_size):
            return self.ram[a]
        return self._slow_read(a, 1)

    def read16(self, a: int) -> int:
        k = self.kind[a >> 12]
        if (k == RAM or k == ROM) and a & 0xFFF != 0xFFF and a + 2 <= self.ram_size:
            return _U16.unpack_from(self.ram, a)[0]
        return self._slow_read(a, 2)

    def read32(self, a: int) -> int:
        k = self.kind[a >> 12]
        if (k == RAM or k == ROM) and a & 0xFFF <= 0xFFC and a + 4 <= self.ram_size:
            return _U32.unpack_from(self.ram, a)[0]
        return self._slow_read(a, 4)

    def write8(self, a: int, v: int) -> None:
        p = a >> 12
        if self.kind[p] == RAM:
            self.ram[a] = v
            if self.code[p]:
                self.on_code_write(a, 1)
        else:
            self._slow_write(a, 1, v)

    def write16(self, a: int, v: int) -> None:
        p = a >> 12
        if self.kind[p] == RAM and a & 0xFFF != 0xFFF:
            _U16.pack_into(self.ram, a, v)
            if self.code[p]:
                self.on_code_write(a, 2)
        else:
            self._slow_write(a, 2, v)

    def write32(self, a: int, v: int) -> None:
        p = a >> 12
        if self.kind[p] == RAM and a & 0xFFF <= 0xFFC:
            _U32.pack_into(self.ram, a, v)
            if self.code[p]:
                self.on_code_write(a, 4)
        else:
            self._slow_write(a, 4, v)

    def _slow_read(self, a: int, size: int) -> int:
        p = a >> 12
        if (a & 0xFFF) + size > PAGE:                 # crosses a page: byte by byte
            v = 0
            for i in range(size):
                v |= self.read8((a + i) & 0xFFFFFFFF) << (8 * i)
            return v
        k = self.kind[p]
        if k == MMIO:
            return self.mmio[p].mmio_read(a, size)
        if k == ROM:
            mv = self.rom_pages.get(p)
            if mv is not None:
                off = a & 0xFFF
                return int.from_bytes(mv[off: off + size], "little")
            return int.from_bytes(self.ram[a: a + size], "little")
        if k == RAM:
            return int.from_bytes(self.ram[a: a + size], "little")
        return (1 << (8 * size)) - 1                  # unmapped: all ones

    def _slow_write(self, a: int, size: int, v: int) -> None:
        p = a >> 12
        if (a & 0xFFF) + size > PAGE:
            for i in range(size):
                self.write8((a + i) & 0xFFFFFFFF, (v >> (8 * i)) & 0xFF)
            return
        k = self.kind[p]
        if k == MMIO:
            self.mmio[p].mmio_write(a, size, v)
        elif k == RAM:
            self.ram[a: a + size] = v.to_bytes(size, "little")
            if self.code[p]:
                self.on_code_write(a, size)
        # ROM and unmapped: writes are dropped

    def read_bytes(self, a: int, n: int) -> bytes:
        if self.kind[a >> 12] in (RAM, ROM) and a + n <= self.ram_size and \
                all(self.kind[p] in (RAM, ROM) for p in range(a >> 12, (a + n - 1 >> 12) + 1)):
            return bytes(self.ram[a: a + n])
        return bytes(self.read8((a + i) & 0xFFFFFFFF) for i in range(n))

    def write_bytes(self, a: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.write8((a + i) & 0xFFFFFFFF, b)

    def load(self, a: int, data: bytes) -> None:
        """Place bytes in RAM or ROM regardless of write protection (loaders, tests)."""
        for i, b in enumerate(data):
            q = a + i
            p = q >> 12
            if q < self.ram_size:
                self.ram[q] = b
            elif p in self.rom_pages:
                self.rom_pages[p][q & 0xFFF] = b
