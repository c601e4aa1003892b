"""Linear-to-physical translation: the A20 gate, paging walks and the TLB.

Paging modes (SDM Vol. 3, chapter 4): 32-bit paging with 4 KiB pages and, with CR4.PSE, 4 MiB
pages; PAE paging (CR4.PAE) with 4 KiB and 2 MiB pages and the execute-disable bit (EFER.NXE).

The TLB model (deterministic, part of the machine state and its hash):

* An entry maps one 4 KiB linear page to a physical page with the permissions of the walk that
  filled it (user, writable, dirty, global, no-execute).  Large pages are entered per 4 KiB page.
* Entries are filled only by an access that needed them, after the walk set the accessed (and, for
  a write, dirty) bits in memory.  A write through an entry whose dirty bit was clear walks again.
* They are removed exactly when the architecture requires: INVLPG removes one page's entry
  (global or not); a CR3 write removes every non-global entry; a CR4 write changing PGE, PAE or
  PSE, or a CR0 write changing PG, removes every entry.  Nothing else removes entries, so a guest
  that edits a page table without INVLPG keeps using the stale mapping, as on hardware.
* Capacity: 1024 entries.  Filling the 1025th first removes every non-global entry (and every
  entry if all were global).
"""

from __future__ import annotations

from ..cpu.faults import CPUFault, PF

TLB_CAPACITY = 1024

# entry permission bits
T_USER, T_WRITE, T_DIRTY, T_GLOBAL, T_NX = 1, 2, 4, 8, 16


class MMU:
    def __init__(self, cpu, bus):
        self.cpu = cpu
        self.bus = bus
        self.tlb: dict[int, tuple] = {}   # vpn -> (physical page base, permission bits)
        self.gen = 0                      # bumped whenever a translation may have changed
        self._user = False
        self.reset()

    def reset(self) -> None:
        self.paging = False
        self.pae = False
        self.tlb.clear()
        self.pdpte = [0, 0, 0, 0]
        self._rebuild()

    # ------------------------------------------------------------------------------------------
    # Control register changes
    # ------------------------------------------------------------------------------------------
    def control_changed(self, old_cr0=None, old_cr4=None) -> None:
        cpu = self.cpu
        paging = bool(cpu.cr0 & 0x80000000 and cpu.cr0 & 1)
        flush = False
        if paging != self.paging:
            flush = True
        if old_cr4 is not None and (old_cr4 ^ cpu.cr4) & (0x80 | 0x20 | 0x10):
            flush = True
        self.paging = paging
        self.pae = bool(cpu.cr4 & 0x20)
        if flush:
            self.tlb.clear()
        if paging and self.pae and (flush or old_cr0 is not None):
            self._load_pdpte()
        self._rebuild()

    def cr3_written(self) -> None:
        self.tlb = {k: v for k, v in self.tlb.items() if v[1] & T_GLOBAL}
        if self.paging and self.pae:
            self._load_pdpte()
        self._rebuild()

    def invlpg(self, lin: int) -> None:
        if self.tlb.pop((lin & 0xFFFFFFFF) >> 12, None) is not None:
            self._rebuild()

    def flush(self) -> None:
        self.tlb.clear()
        self._rebuild()

    def _load_pdpte(self) -> None:
        """PAE: the four PDPTEs are loaded when CR3 is written (SDM Vol. 3, 4.4.1)."""
        base = self.cpu.cr3 & 0xFFFFFFE0
        rd = self.bus.read32
        self.pdpte = [rd(base + 8 * i) | rd(base + 8 * i + 4) << 32 for i in range(4)]
        for e in self.pdpte:
            if e & 1 and e & 0xFFFFFFF0000001E6:
                raise CPUFault(13, 0)

    # ------------------------------------------------------------------------------------------
    # Fast maps: derived from the TLB; rebuilt when the TLB or CR0.WP changes.
    # ------------------------------------------------------------------------------------------
    @property
    def user(self) -> bool:
        return self._user

    @user.setter
    def user(self, value: bool) -> None:
        if value != self._user:
            self._user = value
            self.gen += 1
            if self.paging:
                self._select_maps()

    def _select_maps(self) -> None:
        if self._user:
            self.rmap, self.wmap = self.r_user, self.w_user
        else:
            self.rmap, self.wmap = self.r_sup, self.w_sup

    def _rebuild(self) -> None:
        self.gen += 1
        bus = self.bus
        if not self.paging:
            if bus.a20_mask == 0xFFFFFFFF:          # linear == physical: straight to the bus
                self.read8, self.read16, self.read32 = bus.read8, bus.read16, bus.read32
                self.write8, self.write16, self.write32 = bus.write8, bus.write16, bus.write32
                self.rmw8, self.rmw16, self.rmw32 = bus.read8, bus.read16, bus.read32
            else:
                a20 = bus
                self.read8 = lambda lin: a20.read8(lin & a20.a20_mask)
                self.read16 = self._flat_read16
                self.read32 = self._flat_read32
                self.write8 = lambda lin, v: a20.write8(lin & a20.a20_mask, v)
                self.write16 = self._flat_write16
                self.write32 = self._flat_write32
                self.rmw8, self.rmw16, self.rmw32 = self.read8, self.read16, self.read32
            self.cpu_rebind()
            return
        wp = bool(self.cpu.cr0 & 0x10000)
        self.r_sup, self.r_user, self.w_sup, self.w_user = {}, {}, {}, {}
        for vpn, (ppn, bits) in self.tlb.items():
            self._add_fast(vpn, ppn, bits, wp)
        self._select_maps()
        self.read8 = self._pg_read8
        self.read16 = self._pg_read16
        self.read32 = self._pg_read32
        self.write8 = self._pg_write8
        self.write16 = self._pg_write16
        self.write32 = self._pg_write32
        self.rmw8, self.rmw16, self.rmw32 = self._pg_rmw8, self._pg_rmw16, self._pg_rmw32
        self.cpu_rebind()

    def cpu_rebind(self) -> None:
        if getattr(self.cpu, "mmu", None) is self:
            self.cpu.mem_rebind()

    def a20_changed(self) -> None:
        if not self.paging:
            self._rebuild()

    def _add_fast(self, vpn, ppn, bits, wp) -> None:
        self.r_sup[vpn] = ppn
        if bits & T_USER:
            self.r_user[vpn] = ppn
        if bits & T_DIRTY:
            if bits & T_WRITE or not wp:
                self.w_sup[vpn] = ppn
            if bits & T_WRITE and bits & T_USER:
                self.w_user[vpn] = ppn

    # ------------------------------------------------------------------------------------------
    # Paging off
    # ------------------------------------------------------------------------------------------
    def _flat_read16(self, lin):
        bus = self.bus
        if lin & 0xFFFFF == 0xFFFFF and bus.a20_mask != 0xFFFFFFFF or lin == 0xFFFFFFFF:
            return self.read8(lin) | self.read8((lin + 1) & 0xFFFFFFFF) << 8
        return bus.read16(lin & bus.a20_mask)

    def _flat_read32(self, lin):
        bus = self.bus
        if (lin & 0xFFFFF) > 0xFFFFC and bus.a20_mask != 0xFFFFFFFF or lin > 0xFFFFFFFC:
            return sum(self.read8((lin + i) & 0xFFFFFFFF) << (8 * i) for i in range(4))
        return bus.read32(lin & bus.a20_mask)

    def _flat_write16(self, lin, v):
        bus = self.bus
        if lin & 0xFFFFF == 0xFFFFF and bus.a20_mask != 0xFFFFFFFF or lin == 0xFFFFFFFF:
            self.write8(lin, v & 0xFF)
            self.write8((lin + 1) & 0xFFFFFFFF, v >> 8)
        else:
            bus.write16(lin & bus.a20_mask, v)

    def _flat_write32(self, lin, v):
        bus = self.bus
        if (lin & 0xFFFFF) > 0xFFFFC and bus.a20_mask != 0xFFFFFFFF or lin > 0xFFFFFFFC:
            for i in range(4):
                self.write8((lin + i) & 0xFFFFFFFF, (v >> (8 * i)) & 0xFF)
        else:
            bus.write32(lin & bus.a20_mask, v)

    # ------------------------------------------------------------------------------------------
    # Paging on
    # ------------------------------------------------------------------------------------------
    def _pg_read8(self, lin):
        ppn = self.rmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, False, self._user, False) & ~0xFFF
        return self.bus.read8(ppn | (lin & 0xFFF))

    def _pg_read16(self, lin):
        if lin & 0xFFF == 0xFFF:
            return self._pg_read8(lin) | self._pg_read8((lin + 1) & 0xFFFFFFFF) << 8
        ppn = self.rmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, False, self._user, False) & ~0xFFF
        return self.bus.read16(ppn | (lin & 0xFFF))

    def _pg_read32(self, lin):
        if lin & 0xFFF > 0xFFC:
            return self._split_read(lin, 4)
        ppn = self.rmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, False, self._user, False) & ~0xFFF
        return self.bus.read32(ppn | (lin & 0xFFF))

    def _split_read(self, lin, size):
        # translate both pages before reading anything (a fault leaves nothing half done); a
        # fault on the second page reports that page's first byte in CR2
        first = self.translate(lin, False, self._user, False)
        self.translate(((lin | 0xFFF) + 1) & 0xFFFFFFFF, False, self._user, False)
        v = 0
        for i in range(size):
            v |= self._pg_read8((lin + i) & 0xFFFFFFFF) << (8 * i)
        return v

    # reads with write intent (the first half of a read-modify-write)
    def _pg_rmw8(self, lin):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        return self.bus.read8(ppn | (lin & 0xFFF))

    def _pg_rmw16(self, lin):
        if lin & 0xFFF == 0xFFF:
            self.probe_write(lin, 2)
            return self._pg_read16(lin)
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        return self.bus.read16(ppn | (lin & 0xFFF))

    def _pg_rmw32(self, lin):
        if lin & 0xFFF > 0xFFC:
            self.probe_write(lin, 4)
            return self._pg_read32(lin)
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        return self.bus.read32(ppn | (lin & 0xFFF))

    def _pg_write8(self, lin, v):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        self.bus.write8(ppn | (lin & 0xFFF), v)

    def _pg_write16(self, lin, v):
        if lin & 0xFFF == 0xFFF:
            return self._split_write(lin, 2, v)
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        self.bus.write16(ppn | (lin & 0xFFF), v)

    def _pg_write32(self, lin, v):
        if lin & 0xFFF > 0xFFC:
            return self._split_write(lin, 4, v)
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            ppn = self.translate(lin, True, self._user, False) & ~0xFFF
        self.bus.write32(ppn | (lin & 0xFFF), v)

    def _split_write(self, lin, size, v):
        self.translate(lin, True, self._user, False)
        self.translate(((lin | 0xFFF) + 1) & 0xFFFFFFFF, True, self._user, False)
        for i in range(size):
            self._pg_write8((lin + i) & 0xFFFFFFFF, (v >> (8 * i)) & 0xFF)

    def probe_write(self, lin: int, size: int) -> None:
        if self.paging:
            self.translate(lin, True, self._user, False)
            if (lin & 0xFFF) + size > 0x1000:
                self.translate(((lin | 0xFFF) + 1) & 0xFFFFFFFF, True, self._user, False)

    def translate_fetch(self, lin: int) -> int:
        if not self.paging:
            return lin & self.bus.a20_mask
        e = self.tlb.get(lin >> 12)
        if e is not None:
            ppn, bits = e
            if not bits & T_NX and (not self._user or bits & T_USER):
                return ppn | (lin & 0xFFF)
        return self.translate(lin, False, self._user, True)

    def translate_sup(self, lin: int, write: bool = False) -> int:
        """Translate a supervisor access (descriptor tables, TSS), whatever the CPL."""
        if not self.paging:
            return lin & self.bus.a20_mask
        return self.translate(lin, write, False, False)

    def read_sup(self, lin: int, size: int) -> int:
        v = 0
        for i in range(size):
            a = (lin + i) & 0xFFFFFFFF
            v |= self.bus.read8(self.translate_sup(a)) << (8 * i)
        return v

    def write_sup(self, lin: int, size: int, value: int) -> None:
        for i in range(size):
            a = (lin + i) & 0xFFFFFFFF
            self.bus.write8(self.translate_sup(a, True), (value >> (8 * i)) & 0xFF)

    def translate(self, lin: int, write: bool, user: bool, fetch: bool) -> int:
        """Walk the page tables (or use the TLB) for one access; raise #PF on failure."""
        lin &= 0xFFFFFFFF
        vpn = lin >> 12
        cpu = self.cpu
        wp = bool(cpu.cr0 & 0x10000)
        e = self.tlb.get(vpn)
        if e is not None:
            ppn, bits = e
            if self._allowed(bits, write, user, fetch, wp) and (not write or bits & T_DIRTY):
                return ppn | (lin & 0xFFF)
        ppn, bits = self._walk(lin, write, user, fetch, wp)
        if vpn not in self.tlb and len(self.tlb) >= TLB_CAPACITY:
            keep = {k: v for k, v in self.tlb.items() if v[1] & T_GLOBAL}
            self.tlb = keep if len(keep) < TLB_CAPACITY else {}
            self._rebuild()
        self.tlb[vpn] = (ppn, bits)
        self._add_fast(vpn, ppn, bits, wp)
        return ppn | (lin & 0xFFF)

    def _allowed(self, bits, write, user, fetch, wp) -> bool:
        if user and not bits & T_USER:
            return False
        if write and not bits & T_WRITE and (user or wp):
            return False
        if fetch and bits & T_NX:
            return False
        return True

    def _fault(self, lin, present, write, user, fetch, rsvd=False):
        cpu = self.cpu
        code = (1 if present else 0) | (2 if write else 0) | (4 if user else 0) | (8 if rsvd else 0)
        if fetch and self.pae and cpu.efer & 0x800:
            code |= 0x10
        cpu.cr2 = lin
        raise CPUFault(PF, code)

    def _walk(self, lin, write, user, fetch, wp):
        bus = self.bus
        cpu = self.cpu
        if self.pae:
            nxe = bool(cpu.efer & 0x800)
            # bits 62:36 are reserved (MAXPHYADDR 36); bit 63 too unless EFER.NXE
            rsv = 0x7FFFFFF000000000 | (0 if nxe else 1 << 63)
            pdpte = self.pdpte[lin >> 30]
            if not pdpte & 1:
                self._fault(lin, False, write, user, fetch)
            pde_addr = (pdpte & 0xFFFFFF000) + ((lin >> 21) & 0x1FF) * 8
            pde = _rd64(bus, pde_addr)
            if not pde & 1:
                self._fault(lin, False, write, user, fetch)
            if pde & rsv or (pde & 0x80 and pde & 0x1FE000):
                self._fault(lin, True, write, user, fetch, rsvd=True)
            u = pde & 4
            w = pde & 2
            nx = bool(pde >> 63) if nxe else False
            if pde & 0x80:                                            # 2 MiB page
                bits = _bits(u, w, pde & 0x40, pde & 0x100 and cpu.cr4 & 0x80, nx)
                self._check(lin, bits, write, user, fetch, wp)
                _set_ad(bus, pde_addr, pde, write)
                ppn = (pde & 0xFFFE00000) + (lin & 0x1FF000)
                return ppn & 0xFFFFFFFFF, bits | (T_DIRTY if write or pde & 0x40 else 0)
            pte_addr = (pde & 0xFFFFFF000) + ((lin >> 12) & 0x1FF) * 8
            pte = _rd64(bus, pte_addr)
            if not pte & 1:
                self._fault(lin, False, write, user, fetch)
            if pte & rsv:
                self._fault(lin, True, write, user, fetch, rsvd=True)
            nx = nx or (bool(pte >> 63) if nxe else False)
            bits = _bits(u and pte & 4, w and pte & 2, pte & 0x40, pte & 0x100 and cpu.cr4 & 0x80, nx)
            self._check(lin, bits, write, user, fetch, wp)
            if not pde & 0x20:
                bus.write32(pde_addr, (pde | 0x20) & 0xFFFFFFFF)
            _set_ad(bus, pte_addr, pte, write)
            return pte & 0xFFFFFF000, bits | (T_DIRTY if write or pte & 0x40 else 0)
        # 32-bit paging
        pde_addr = (cpu.cr3 & 0xFFFFF000) + ((lin >> 22) << 2)
        pde = bus.read32(pde_addr)
        if not pde & 1:
            self._fault(lin, False, write, user, fetch)
        u = pde & 4
        w = pde & 2
        if pde & 0x80 and cpu.cr4 & 0x10:                              # 4 MiB page
            bits = _bits(u, w, pde & 0x40, pde & 0x100 and cpu.cr4 & 0x80, False)
            self._check(lin, bits, write, user, fetch, wp)
            _set_ad(bus, pde_addr, pde, write)
            return (pde & 0xFFC00000) + (lin & 0x3FF000), bits | (T_DIRTY if write or pde & 0x40 else 0)
        pte_addr = (pde & 0xFFFFF000) + (((lin >> 12) & 0x3FF) << 2)
        pte = bus.read32(pte_addr)
        if not pte & 1:
            self._fault(lin, False, write, user, fetch)
        bits = _bits(u and pte & 4, w and pte & 2, pte & 0x40, pte & 0x100 and cpu.cr4 & 0x80, False)
        self._check(lin, bits, write, user, fetch, wp)
        if not pde & 0x20:
            bus.write32(pde_addr, pde | 0x20)
        _set_ad(bus, pte_addr, pte, write)
        return pte & 0xFFFFF000, bits | (T_DIRTY if write or pte & 0x40 else 0)

    def _check(self, lin, bits, write, user, fetch, wp):
        if not self._allowed(bits, write, user, fetch, wp):
            self._fault(lin, True, write, user, fetch)

    # ------------------------------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------------------------------
    def tlb_entries(self):
        """The TLB as (linear page, physical page, permission names) rows, sorted."""
        names = ((T_USER, "U"), (T_WRITE, "W"), (T_DIRTY, "D"), (T_GLOBAL, "G"), (T_NX, "NX"))
        return [(vpn << 12, ppn, "".join(n for b, n in names if bits & b))
                for vpn, (ppn, bits) in sorted(self.tlb.items())]

    def get_state(self) -> dict:
        return {"version": 1, "tlb": sorted([k, v[0], v[1]] for k, v in self.tlb.items()),
                "pdpte": list(self.pdpte)}

    def set_state(self, st: dict) -> None:
        if st.get("version") != 1:
            raise ValueError("unsupported MMU state version")
        self.paging = bool(self.cpu.cr0 & 0x80000000 and self.cpu.cr0 & 1)
        self.pae = bool(self.cpu.cr4 & 0x20)
        self.tlb = {k: (p, b) for k, p, b in st["tlb"]}
        self.pdpte = list(st["pdpte"])
        self._rebuild()


def _bits(u, w, d, g, nx) -> int:
    return ((T_USER if u else 0) | (T_WRITE if w else 0) | (T_DIRTY if d else 0) |
            (T_GLOBAL if g else 0) | (T_NX if nx else 0))


def _rd64(bus, addr) -> int:
    return bus.read32(addr) | bus.read32(addr + 4) << 32


def _set_ad(bus, addr, entry, write) -> None:
    new = entry | 0x20 | (0x40 if write else 0)
    if new != entry:
        bus.write32(addr, new & 0xFFFFFFFF)
