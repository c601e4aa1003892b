"""The physical memory bus: RAM, ROM, MMIO ranges, unmapped space, the A20 gate.

Physical space is described per 4 KiB page by ``kind``: RAM (read/write bytes in ``ram``), ROM
(bytes in ``ram`` too, writes ignored), MMIO (dispatched to a device) or unmapped (reads 0xFF,
writes dropped).  Only RAM and ROM pages take the fast path.

Page flags (as v86 keeps them): ``rslow[page]`` and ``wslow[page]`` are zero for a page that
reads (writes) as plain RAM, the fast path; any bit sends the access through ``_slow_read`` /
``_slow_write``, which deal with every reason at once:

* ``SLOW_KIND``  the page is not plain RAM for this direction (ROM for writes, MMIO, unmapped,
  ROM above RAM for reads);
* ``SLOW_CODE``  the page holds translated code: a write calls ``on_code_write(addr, size)``
  (the CPU invalidates its blocks there) -- self-modifying code costs nothing elsewhere;
* ``SLOW_WATCH`` a watchpoint covers part of the page: accesses call
  ``on_watch(addr, size, old, new, write)`` after they complete (``aero.mem.watch``);
* ``SLOW_TRACK`` dirty tracking is armed (``track_dirty``): the first write to the page records
  it in ``dirty`` and clears the bit, so tracking costs one slow write per page per snapshot.

Code that changes RAM without the accessors (bulk REP moves, DMA, loaders) calls
``note_ram_write(addr, n)`` so that dirty tracking and self-modifying-code detection see it.

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

# page flag bits (rslow / wslow)
SLOW_KIND, SLOW_CODE, SLOW_WATCH, SLOW_TRACK = 1, 2, 4, 8
_NOTE = SLOW_TRACK | SLOW_CODE
_BULK_BLOCKERS = SLOW_KIND | SLOW_WATCH
_ARM_TRACK = bytes(v | SLOW_TRACK for v in range(256))

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
        self.ram_pages = ram_size // PAGE
        self.kind = bytearray([UNMAPPED]) * NPAGES
        self.kind[: self.ram_pages] = bytes(self.ram_pages)          # RAM
        self.rslow = bytearray([SLOW_KIND]) * NPAGES
        self.rslow[: self.ram_pages] = bytes(self.ram_pages)
        self.wslow = bytearray(self.rslow)
        self.mmio: dict[int, MMIOHandler] = {}     # page -> handler
        self.rom_pages: dict[int, memoryview] = {}  # pages outside RAM holding ROM bytes
        self.a20_mask = 0xFFFFFFFF
        self.on_code_write = None
        self.on_a20_change = None
        self.on_watch = None
        # fn(addr, n) after RAM bytes changed without the accessors (``note_ram_write``: DMA,
        # firmware services' block copies, loaders): an execution tracer's (aero.trace.capture)
        self.on_bulk_write = None
        self.dirty: set[int] = set()               # pages written since track_dirty()
        self.tracking = False
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

    def _set_kind(self, p: int, kind: int) -> None:
        """Set page ``p``'s kind and the SLOW_KIND bits that follow from it."""
        self.kind[p] = kind
        fast_read = kind == RAM or (kind == ROM and p < self.ram_pages)
        self.rslow[p] = (self.rslow[p] & ~SLOW_KIND) | (0 if fast_read else SLOW_KIND)
        self.wslow[p] = (self.wslow[p] & ~SLOW_KIND) | (0 if kind == RAM else SLOW_KIND)

    def map_mmio(self, base: int, size: int, handler: MMIOHandler) -> None:
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            self._set_kind(p, MMIO)
            self.mmio[p] = handler

    def unmap_mmio(self, base: int, size: int, handler: MMIOHandler) -> None:
        """Make the pages ``handler`` claims in the range unmapped again (a BAR moved)."""
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            if self.mmio.get(p) is handler:
                del self.mmio[p]
                self._set_kind(p, UNMAPPED)

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
                self.note_ram_write(p * PAGE, PAGE)
            else:
                self.rom_pages[p] = memoryview(bytearray(chunk))
            self._set_kind(p, ROM)

    def set_kind(self, base: int, size: int, kind: int) -> None:
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            self._set_kind(p, kind)

    def unmap(self, base: int, size: int) -> None:
        """Make pages unmapped again (a BAR moved away): drops their MMIO handler and any ROM
        backing above RAM.  Not for shadow (PAM) pages."""
        for p in range(base // PAGE, (base + size + PAGE - 1) // PAGE):
            if p in self.shadow_mode:
                raise ValueError(f"page {p * PAGE:#x} is under PAM control")
            self.mmio.pop(p, None)
            self.rom_pages.pop(p, None)
            self._set_kind(p, UNMAPPED)

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
                self.note_ram_write(a, PAGE)
            self.mmio.pop(p, None)
            self.shadow_mode[p] = 0
            self._shadow_kind(p)

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
            self.note_ram_write(a, PAGE)
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
                self.note_ram_write(a, PAGE)
            self.shadow_mode[p] = mode
            self._shadow_kind(p)

    def _shadow_kind(self, p: int) -> None:
        mode = self.shadow_mode[p]
        if mode == 2:
            self._set_kind(p, MMIO)
            self.mmio[p] = self._shadow_wo
            return
        if self.mmio.get(p) is self._shadow_wo:
            del self.mmio[p]
        if mode == 3:
            self._set_kind(p, RAM)
        elif mode == 1 or self.shadow_rom.get(p) is not None:
            self._set_kind(p, ROM)
        else:
            self._set_kind(p, UNMAPPED)

    def shadow_dram(self, base: int, size: int) -> bytes:
        """The DRAM bytes behind [base, base+size), whatever the read source is."""
        out = bytearray()
        for a in range(base, base + size):
            p = a >> 12
            hid = self.shadow_hidden.get(p)
            out.append(hid[a & 0xFFF] if hid is not None else self.ram[a])
        return bytes(out)

    def shadow_get_state(self) -> dict:
        """Modes and the hidden DRAM pages (what ``ram`` does not hold), as raw bytes."""
        return {"mode": {str(p): m for p, m in sorted(self.shadow_mode.items())},
                "hidden": {str(p): bytes(h) for p, h in sorted(self.shadow_hidden.items())}}

    def shadow_set_state(self, st: dict) -> None:
        """Restore modes and hidden DRAM (``ram`` itself is restored with the RAM image)."""
        self.shadow_hidden.clear()
        for k, m in st["mode"].items():
            p = int(k)
            if p not in self.shadow_mode:
                raise ValueError(f"page {p * PAGE:#x} is not a shadow page")
            self.shadow_mode[p] = m
        for k, h in st["hidden"].items():
            self.shadow_hidden[int(k)] = bytearray(h)
        for p in self.shadow_mode:
            if not self.shadow_mode[p] & 1 and p not in self.shadow_hidden:
                self.shadow_hidden[p] = bytearray(PAGE)
            self._shadow_kind(p)

    # -- page flags ----------------------------------------------------------------------------
    def set_code(self, p: int, on: bool) -> None:
        """Mark page ``p`` as holding translated code (writes call ``on_code_write``)."""
        self.wslow[p] = (self.wslow[p] | SLOW_CODE) if on else (self.wslow[p] & ~SLOW_CODE)

    def set_watch(self, p: int, read: bool, write: bool) -> None:
        """Send reads and/or writes of page ``p`` through ``on_watch`` (``aero.mem.watch``)."""
        self.rslow[p] = (self.rslow[p] | SLOW_WATCH) if read else (self.rslow[p] & ~SLOW_WATCH)
        self.wslow[p] = (self.wslow[p] | SLOW_WATCH) if write else (self.wslow[p] & ~SLOW_WATCH)

    def track_dirty(self) -> None:
        """Start a new dirty-tracking interval: forget what was written so far, and record every
        RAM page written from now on in ``dirty``."""
        n = self.ram_pages
        self.wslow[:n] = self.wslow[:n].translate(_ARM_TRACK)
        self.dirty = set()
        self.tracking = True

    def note_ram_write(self, a: int, n: int) -> None:
        """RAM bytes [a, a+n) were changed without the accessors (bulk moves, DMA, loaders):
        record them for dirty tracking and tell the self-modifying-code detector, page by page."""
        end = min(a + n, self.ram_size)
        if self.on_bulk_write is not None and a < end:
            self.on_bulk_write(a, end - a)
        wslow = self.wslow
        if a < end and (end - 1) >> 12 == a >> 12 and not wslow[a >> 12] & _NOTE:
            return                                  # one page, nothing to tell: the usual case
        while a < end:
            p = a >> 12
            nxt = min(end, (p + 1) * PAGE)
            f = wslow[p]
            if f & SLOW_TRACK:
                self.dirty.add(p)
                wslow[p] = f & ~SLOW_TRACK
            if f & SLOW_CODE and self.on_code_write is not None:
                self.on_code_write(a, nxt - a)
            a = nxt

    def plain_ram(self, lo: int, end: int, write: bool) -> bool:
        """Whether [lo, end) is RAM (ROM too for reading) that bulk copies may touch directly:
        no MMIO, nothing unmapped, no watchpoint.  A bulk write must then call
        ``note_ram_write``."""
        if end > self.ram_size:
            return False
        flags = self.wslow if write else self.rslow
        p = lo >> 12
        last = (end - 1) >> 12
        if p == last:
            return not flags[p] & _BULK_BLOCKERS
        for p in range(p, last + 1):
            if flags[p] & _BULK_BLOCKERS:
                return False
        return True

    # -- access -------------------------------------------------------------------------------
    def read8(self, a: int) -> int:
        if not self.rslow[a >> 12]:
            return self.ram[a]
        return self._slow_read(a, 1)

    def read16(self, a: int) -> int:
        if not self.rslow[a >> 12] and a & 0xFFF != 0xFFF:
            return _U16.unpack_from(self.ram, a)[0]
        return self._slow_read(a, 2)

    def read32(self, a: int) -> int:
        if not self.rslow[a >> 12] and a & 0xFFF <= 0xFFC:
            return _U32.unpack_from(self.ram, a)[0]
        return self._slow_read(a, 4)

    def write8(self, a: int, v: int) -> None:
        if not self.wslow[a >> 12]:
            self.ram[a] = v
        else:
            self._slow_write(a, 1, v)

    def write16(self, a: int, v: int) -> None:
        if not self.wslow[a >> 12] and a & 0xFFF != 0xFFF:
            _U16.pack_into(self.ram, a, v)
        else:
            self._slow_write(a, 2, v)

    def write32(self, a: int, v: int) -> None:
        if not self.wslow[a >> 12] and a & 0xFFF <= 0xFFC:
            _U32.pack_into(self.ram, a, v)
        else:
            self._slow_write(a, 4, v)

    def peek8(self, a: int) -> int:
        """A byte as a read sees it, without telling watches (instruction fetch)."""
        if not self.rslow[a >> 12]:
            return self.ram[a]
        k = self.kind[a >> 12]
        if k == RAM or (k == ROM and a < self.ram_size):
            return self.ram[a]
        if k == ROM:
            return self.rom_pages[a >> 12][a & 0xFFF]
        if k == MMIO:
            return self.mmio[a >> 12].mmio_read(a, 1)
        return 0xFF

    def _slow_read(self, a: int, size: int) -> int:
        p = a >> 12
        if (a & 0xFFF) + size > PAGE:                 # crosses a page: byte by byte
            v = 0
            for i in range(size):
                v |= self.read8((a + i) & 0xFFFFFFFF) << (8 * i)
            return v
        k = self.kind[p]
        if k == MMIO:
            v = self.mmio[p].mmio_read(a, size)
        elif k == ROM:
            mv = self.rom_pages.get(p)
            if mv is not None:
                off = a & 0xFFF
                v = int.from_bytes(mv[off: off + size], "little")
            else:
                v = int.from_bytes(self.ram[a: a + size], "little")
        elif k == RAM:
            v = int.from_bytes(self.ram[a: a + size], "little")
        else:
            v = (1 << (8 * size)) - 1                 # unmapped: all ones
        if self.rslow[p] & SLOW_WATCH:
            self.on_watch(a, size, v, v, False)
        return v

    def _slow_write(self, a: int, size: int, v: int) -> None:
        p = a >> 12
        if (a & 0xFFF) + size > PAGE:
            for i in range(size):
                self.write8((a + i) & 0xFFFFFFFF, (v >> (8 * i)) & 0xFF)
            return
        f = self.wslow[p]
        k = self.kind[p]
        old = None
        if k == RAM:
            if f & SLOW_WATCH:
                old = int.from_bytes(self.ram[a: a + size], "little")
            self.ram[a: a + size] = v.to_bytes(size, "little")
            if f & SLOW_TRACK:
                self.dirty.add(p)
                self.wslow[p] = f & ~SLOW_TRACK
            if f & SLOW_CODE:
                self.on_code_write(a, size)
        elif k == MMIO:
            self.mmio[p].mmio_write(a, size, v)
        # ROM and unmapped: writes are dropped
        if f & SLOW_WATCH:
            self.on_watch(a, size, old, v, True)

    def read_bytes(self, a: int, n: int) -> bytes:
        if n and self.plain_ram(a, a + n, False):
            return bytes(self.ram[a: a + n])
        return bytes(self.read8((a + i) & 0xFFFFFFFF) for i in range(n))

    def write_bytes(self, a: int, data: bytes) -> None:
        n = len(data)
        if n and self.plain_ram(a, a + n, True):
            self.ram[a: a + n] = data                  # plain RAM: one copy
            self.note_ram_write(a, n)
            return
        for i, b in enumerate(data):
            self.write8((a + i) & 0xFFFFFFFF, b)

    def load(self, a: int, data: bytes) -> None:
        """Place bytes in RAM or ROM regardless of write protection (loaders, tests)."""
        n = len(data)
        inside = max(0, min(n, self.ram_size - a))
        if inside:
            self.ram[a: a + inside] = data[:inside]
            self.note_ram_write(a, inside)
        for i in range(inside, n):
            q = a + i
            p = q >> 12
            if p in self.rom_pages:
                self.rom_pages[p][q & 0xFFF] = data[i]


CLEAR_BIT = {bit: bytes(v & ~bit for v in range(256)) for bit in (SLOW_CODE, SLOW_WATCH, SLOW_TRACK)}
