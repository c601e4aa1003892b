"""The physical memory bus: RAM, ROM, MMIO ranges, unmapped space, the A20 gate.

Physical space is described per 4 KiB page by ``kind``: RAM (read/write bytes in ``ram``), ROM
(bytes in ``ram`` too, writes ignored), MMIO (dispatched to a device) or unmapped (reads 0xFF,
writes dropped).  Only RAM and ROM pages take the fast path.

Pages holding translated code are flagged in ``code``; a write to such a page calls
``on_code_write(addr, size)`` (the CPU invalidates its blocks there).

Shadowing (the i440FX PAM registers, ``aero.devices.i440fx``): pages declared with
``add_shadow`` have two backings, the DRAM behind them and a "ROM side" (the BIOS image or other
PCI-side bytes, or nothing).  ``set_shadow(base, size, read_ram, write_ram)`` picks, per page,
where reads come from and whether writes reach DRAM.  ``ram`` always holds what reads return, so
three of the four combinations keep the fast path: read RAM + write RAM is a RAM page, read RAM
+ write dropped and read ROM + write dropped are ROM pages, and read ROM + write RAM is an MMIO
page whose writes land in the hidden DRAM copy.  When the read source changes, the bytes are
swapped between ``ram`` and the hidden copy (``shadow_hidden``) and translated code on the page
is invalidated.  ``map_rom`` into a shadow page sets its ROM side.
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


class _ShadowWriteToRAM(MMIOHandler):
    """A PAM page that reads from its ROM side (held in ``bus.ram``) while writes go to DRAM."""

    def __init__(self, bus):
        self.bus = bus

    def mmio_read(self, addr: int, size: int) -> int:
        return int.from_bytes(self.bus.ram[addr: addr + size], "little")

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        off = addr & 0xFFF
        self.bus.shadow_hidden[addr >> 12][off: off + size] = value.to_bytes(size, "little")


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
        # PAM shadowing (see the module docstring): page -> mode (bit 0 read RAM, bit 1 write
        # RAM), page -> ROM-side bytes (None: nothing decodes there, reads all ones), page -> the
        # DRAM bytes while the page reads from its ROM side.
        self.shadow_mode: dict[int, int] = {}
        self.shadow_rom: dict[int, bytes | None] = {}
        self.shadow_hidden: dict[int, bytearray] = {}
        self._shadow_wo = _ShadowWriteToRAM(self)

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
            if p in self.shadow_mode:                 # a PAM page: this is its ROM side
                self._set_shadow_rom_page(p, chunk)
                continue
            if (p + 1) * PAGE <= self.ram_size:
                self.ram[p * PAGE: (p + 1) * PAGE] = chunk
            else:
                self.rom_pages[p] = memoryview(bytearray(chunk))
            self.kind[p] = ROM

    def set_kind(self, base: int, size: int, kind: int) -> None:
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            self.kind[p] = kind

    def unmap(self, base: int, size: int) -> None:
        """Make pages unmapped again (a BAR moved away): drops their MMIO handler and any ROM
        backing above RAM.  Not for shadow (PAM) pages."""
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            if p in self.shadow_mode:
                raise ValueError(f"page {p * PAGE:#x} is under PAM control")
            self.kind[p] = UNMAPPED
            self.mmio.pop(p, None)
            self.rom_pages.pop(p, None)

    # -- PAM shadowing --------------------------------------------------------------------------
    def add_shadow(self, base: int, size: int) -> None:
        """Put [base, base+size) under read/write-enable control, starting in mode 0 (reads from
        the ROM side, writes dropped: the PAM power-on state).  Pages already holding ROM bytes
        (``map_rom``) keep them as their ROM side; other pages have no ROM side (reads 0xFF).
        The DRAM behind the pages keeps its current contents (RAM-kind pages) or is zero."""
        if base % PAGE or size % PAGE or base + size > self.ram_size:
            raise ValueError("shadow range must be page aligned and inside RAM")
        for p in range(base // PAGE, (base + size) // PAGE):
            if p in self.shadow_mode:
                continue
            a = p * PAGE
            k = self.kind[p]
            if k == ROM:
                self.shadow_rom[p] = bytes(self.ram[a: a + PAGE])
                self.shadow_hidden[p] = bytearray(PAGE)
            else:
                self.shadow_rom[p] = None
                self.shadow_hidden[p] = bytearray(self.ram[a: a + PAGE]) if k == RAM \
                    else bytearray(PAGE)
                self.ram[a: a + PAGE] = b"\xff" * PAGE
            self.mmio.pop(p, None)
            self.shadow_mode[p] = 0
            self._shadow_kind(p)
            self._shadow_changed(p)

    def set_shadow_rom(self, base: int, data: bytes | None, size: int | None = None) -> None:
        """Set the ROM side of shadow pages (``data`` None: nothing there, reads all ones)."""
        if data is None:
            for p in range(base // PAGE, (base + (size or 0) + PAGE - 1) // PAGE):
                self._set_shadow_rom_page(p, None)
            return
        data = bytes(data) + bytes(-len(data) % PAGE)
        for off in range(0, len(data), PAGE):
            self._set_shadow_rom_page((base + off) // PAGE, data[off: off + PAGE])

    def _set_shadow_rom_page(self, p: int, chunk: bytes | None) -> None:
        if p not in self.shadow_mode:
            raise ValueError(f"page {p * PAGE:#x} is not a shadow page")
        self.shadow_rom[p] = chunk
        if not self.shadow_mode[p] & 1:               # reads come from the ROM side now
            a = p * PAGE
            self.ram[a: a + PAGE] = chunk if chunk is not None else b"\xff" * PAGE
            self._shadow_changed(p)
        self._shadow_kind(p)

    def set_shadow(self, base: int, size: int, read_ram: bool, write_ram: bool) -> None:
        """Select, for every shadow page in the range, reads from DRAM (else the ROM side) and
        writes into DRAM (else dropped)."""
        mode = (1 if read_ram else 0) | (2 if write_ram else 0)
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            old = self.shadow_mode.get(p)
            if old is None:
                raise ValueError(f"page {p * PAGE:#x} is not a shadow page")
            if old == mode:
                continue
            if (old ^ mode) & 1:                       # the read source changes: swap bytes
                a = p * PAGE
                if mode & 1:
                    self.ram[a: a + PAGE] = self.shadow_hidden.pop(p)
                else:
                    self.shadow_hidden[p] = bytearray(self.ram[a: a + PAGE])
                    rom = self.shadow_rom.get(p)
                    self.ram[a: a + PAGE] = rom if rom is not None else b"\xff" * PAGE
                self._shadow_changed(p)
            self.shadow_mode[p] = mode
            self._shadow_kind(p)

    def _shadow_kind(self, p: int) -> None:
        mode = self.shadow_mode[p]
        if mode == 2:
            self.kind[p] = MMIO
            self.mmio[p] = self._shadow_wo
            return
        if self.mmio.get(p) is self._shadow_wo:
            del self.mmio[p]
        if mode == 3:
            self.kind[p] = RAM
        elif mode == 1 or self.shadow_rom.get(p) is not None:
            self.kind[p] = ROM
        else:
            self.kind[p] = UNMAPPED

    def _shadow_changed(self, p: int) -> None:
        if self.code[p] and self.on_code_write is not None:
            self.on_code_write(p * PAGE, PAGE)

    def shadow_dram(self, base: int, size: int) -> bytes:
        """The DRAM bytes behind [base, base+size), whatever the read source is."""
        out = bytearray()
        for a in range(base, base + size):
            p = a >> 12
            hid = self.shadow_hidden.get(p)
            out.append(hid[a & 0xFFF] if hid is not None else self.ram[a])
        return bytes(out)

    def shadow_get_state(self) -> dict:
        """Modes and the hidden DRAM pages (what ``ram`` does not hold), for snapshots."""
        return {"mode": {str(p): m for p, m in sorted(self.shadow_mode.items())},
                "hidden": {str(p): bytes(h).hex() for p, h in sorted(self.shadow_hidden.items())
                           if any(h)},
                "hidden_zero": [str(p) for p, h in sorted(self.shadow_hidden.items())
                                if not any(h)]}

    def shadow_set_state(self, st: dict) -> None:
        """Restore modes and hidden DRAM (``ram`` itself is restored with the RAM image)."""
        self.shadow_hidden.clear()
        for k, m in st["mode"].items():
            p = int(k)
            if p not in self.shadow_mode:
                raise ValueError(f"page {p * PAGE:#x} is not a shadow page")
            self.shadow_mode[p] = m
        for k, h in st["hidden"].items():
            self.shadow_hidden[int(k)] = bytearray(bytes.fromhex(h))
        for k in st["hidden_zero"]:
            self.shadow_hidden[int(k)] = bytearray(PAGE)
        for p in self.shadow_mode:
            if not self.shadow_mode[p] & 1 and p not in self.shadow_hidden:
                self.shadow_hidden[p] = bytearray(PAGE)
            self._shadow_kind(p)

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
        n = len(data)
        if n and a + n <= self.ram_size:
            pages = range(a >> 12, ((a + n - 1) >> 12) + 1)
            if all(self.kind[p] == RAM and not self.code[p] for p in pages):
                self.ram[a: a + n] = data              # plain RAM without code: one copy
                return
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
