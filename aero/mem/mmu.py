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
* A change of the A20 gate while paging is on removes every entry: A20 masks bit 20 of the
  physical addresses paging produces (and of the page-table addresses), as QEMU applies it.

Fast maps: ``rmap``/``wmap`` (linear page -> physical page) are derived from the TLB for the
current privilege and CR0.WP, and let an access skip the permission check.  Linear pages that a
watch covers (``nofast_r``/``nofast_w``, see ``aero.mem.watch``) are left out of them, so their
accesses take the slow path, which reports them.  ``gen`` is bumped whenever a translation may
have changed (the CPU revalidates its cached code then).
"""

from __future__ import annotations

from ..faults import CPUFault, PF

TLB_CAPACITY = 1024

# entry permission bits
T_USER, T_WRITE, T_DIRTY, T_GLOBAL, T_NX = 1, 2, 4, 8, 16

# A 32-bit paging PDE mapping a 4 MiB page: bits 21:13 are reserved (SDM Vol. 3, Table 4-4:
# bits 20:13 carry physical address bits 39:32 only with PSE-36, which the CPU does not offer
# (CPUID.1:EDX bit 17 clear); bit 21 always).  Any of them set: #PF with the RSVD bit.
PDE4M_RESERVED = 0x3FE000


class MMU:
    def __init__(self, cpu, bus):
        self.cpu = cpu
        self.bus = bus
        self.tlb: dict[int, tuple] = {}   # vpn -> (physical page base, permission bits)
        self.gen = 0                      # bumped whenever a translation may have changed
        self._user = False
        self.nofast_r: set[int] = set()   # linear pages kept out of the fast maps (watched)
        self.nofast_w: set[int] = set()
        self.watches = None               # aero.mem.watch.Watches, once created
        # fn(mmu) wrapping read*/write*/rmw* each time they are chosen (an execution tracer
        # recording data accesses, ``aero.trace.capture``); None: nothing
        self.access_wrapper = None
        self.reset()

    def reset(self) -> None:
        was_paging = getattr(self, "paging", False)
        self.paging = False
        self.pae = False
        self.tlb.clear()
        self.pdpte = [0, 0, 0, 0]
        self._rebuild()
        if was_paging and self.watches is not None and self.watches.linear:
            self.watches.refresh()

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
        toggled = paging != self.paging
        self.paging = paging
        self.pae = bool(cpu.cr4 & 0x20)
        if flush:
            self.tlb.clear()
        if paging and self.pae and (flush or old_cr0 is not None):
            self._load_pdpte()
        self._rebuild()
        if toggled and self.watches is not None and self.watches.linear:
            self.watches.refresh()              # linear watches mark pages differently now

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
            self._new_gen()
            if self.paging:
                self._select_maps()

    def _select_maps(self) -> None:
        if self._user:
            self.rmap, self.wmap = self.r_user, self.w_user
        else:
            self.rmap, self.wmap = self.r_sup, self.w_sup

    def set_nofast(self, read_pages: set, write_pages: set) -> None:
        """Keep these linear pages out of the fast maps (``aero.mem.watch``)."""
        if read_pages != self.nofast_r or write_pages != self.nofast_w:
            self.nofast_r, self.nofast_w = read_pages, write_pages
            if self.paging:
                self._fill_maps()

    def _fill_maps(self) -> None:
        wp = bool(self.cpu.cr0 & 0x10000)
        self.r_sup, self.r_user, self.w_sup, self.w_user = {}, {}, {}, {}
        for vpn, (ppn, bits) in self.tlb.items():
            self._add_fast(vpn, ppn, bits, wp)
        self._select_maps()

    def _new_gen(self) -> None:
        """Translations may have changed: blocks are looked up again (``gen``), and the running
        one stops before its next instruction, in the interpreter and in a compiled unit alike,
        so that the next lookup, and the instruction fetch translation it makes, happens at the
        same instruction in both tiers (they fill the TLB identically)."""
        self.gen += 1
        cpu = self.cpu
        if getattr(cpu, "mmu", None) is self:
            cpu.request_exit()

    def _rebuild(self) -> None:
        self._new_gen()
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
        self._fill_maps()
        self.read8 = self._pg_read8
        self.read16 = self._pg_read16
        self.read32 = self._pg_read32
        self.write8 = self._pg_write8
        self.write16 = self._pg_write16
        self.write32 = self._pg_write32
        self.rmw8, self.rmw16, self.rmw32 = self._pg_rmw8, self._pg_rmw16, self._pg_rmw32
        self.cpu_rebind()

    def set_access_wrapper(self, fn) -> None:
        """Install (or with None remove) ``access_wrapper``: the access functions are chosen
        again, wrapped.  While one is installed, REP string instructions move element by element
        (``aero.cpu.sem.strings``), so that every access goes through them."""
        self.access_wrapper = fn
        self._rebuild()

    def cpu_rebind(self) -> None:
        if self.access_wrapper is not None:
            self.access_wrapper(self)
        if getattr(self.cpu, "mmu", None) is self:
            self.cpu.mem_rebind()

    def a20_changed(self) -> None:
        """The A20 gate changed: linear-to-physical mappings change whatever the paging mode
        (paging on: A20 masks the physical addresses paging produces, so the TLB is flushed)."""
        if self.paging:
            self.tlb.clear()
        self._rebuild()
        if self.watches is not None and self.watches.linear and not self.paging:
            self.watches.refresh()

    def _add_fast(self, vpn, ppn, bits, wp) -> None:
        if vpn not in self.nofast_r:
            self.r_sup[vpn] = ppn
            if bits & T_USER:
                self.r_user[vpn] = ppn
        if bits & T_DIRTY and vpn not in self.nofast_w:
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
    # Paging on: the fast maps, else the slow path (translation, page-straddling accesses,
    # watched linear pages)
    # ------------------------------------------------------------------------------------------
    def _pg_read8(self, lin):
        ppn = self.rmap.get(lin >> 12)
        if ppn is None:
            return self._pg_slow_read(lin, 1, False)
        return self.bus.read8(ppn | (lin & 0xFFF))

    def _pg_read16(self, lin):
        ppn = self.rmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF == 0xFFF:
            return self._pg_slow_read(lin, 2, False)
        return self.bus.read16(ppn | (lin & 0xFFF))

    def _pg_read32(self, lin):
        ppn = self.rmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF > 0xFFC:
            return self._pg_slow_read(lin, 4, False)
        return self.bus.read32(ppn | (lin & 0xFFF))

    # reads with write intent (the first half of a read-modify-write)
    def _pg_rmw8(self, lin):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            return self._pg_slow_read(lin, 1, True)
        return self.bus.read8(ppn | (lin & 0xFFF))

    def _pg_rmw16(self, lin):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF == 0xFFF:
            return self._pg_slow_read(lin, 2, True)
        return self.bus.read16(ppn | (lin & 0xFFF))

    def _pg_rmw32(self, lin):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF > 0xFFC:
            return self._pg_slow_read(lin, 4, True)
        return self.bus.read32(ppn | (lin & 0xFFF))

    def _pg_write8(self, lin, v):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None:
            return self._pg_slow_write(lin, 1, v)
        self.bus.write8(ppn | (lin & 0xFFF), v)

    def _pg_write16(self, lin, v):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF == 0xFFF:
            return self._pg_slow_write(lin, 2, v)
        self.bus.write16(ppn | (lin & 0xFFF), v)

    def _pg_write32(self, lin, v):
        ppn = self.wmap.get(lin >> 12)
        if ppn is None or lin & 0xFFF > 0xFFC:
            return self._pg_slow_write(lin, 4, v)
        self.bus.write32(ppn | (lin & 0xFFF), v)

    def _pg_slow_read(self, lin, size, intent_write):
        """A read that missed the fast map.  An access straddling two pages translates both
        before reading anything (a fault leaves nothing half done; a fault on the second page
        reports that page's first byte in CR2)."""
        user = self._user
        if (lin & 0xFFF) + size > 0x1000:
            first = self.translate(lin, intent_write, user, False)
            second = self.translate(((lin | 0xFFF) + 1) & 0xFFFFFFFF, intent_write, user, False)
            n1 = 0x1000 - (lin & 0xFFF)
            read8 = self.bus.read8
            v = 0
            for i in range(size):
                v |= read8(first + i if i < n1 else second + i - n1) << (8 * i)
        else:
            phys = self.translate(lin, intent_write, user, False)
            bus = self.bus
            v = bus.read8(phys) if size == 1 else bus.read16(phys) if size == 2 else \
                bus.read32(phys)
        if self.nofast_r and self.watches is not None:
            self.watches.on_linear(lin, size, v, v, False)
        return v

    def _pg_slow_write(self, lin, size, v):
        user = self._user
        bus = self.bus
        straddle = (lin & 0xFFF) + size > 0x1000
        first = self.translate(lin, True, user, False)
        if straddle:
            second = self.translate(((lin | 0xFFF) + 1) & 0xFFFFFFFF, True, user, False)
        watched = self.nofast_w and self.watches is not None
        old = None
        if watched:
            old = self._peek(first, size) if not straddle else None
        if straddle:
            n1 = 0x1000 - (lin & 0xFFF)
            for i in range(size):
                bus.write8(first + i if i < n1 else second + i - n1, (v >> (8 * i)) & 0xFF)
        elif size == 1:
            bus.write8(first, v)
        elif size == 2:
            bus.write16(first, v)
        else:
            bus.write32(first, v)
        if watched:
            self.watches.on_linear(lin, size, old, v, True)

    def _peek(self, phys, size):
        """RAM bytes at a physical address without side effects (None outside RAM)."""
        bus = self.bus
        if phys + size <= bus.ram_size and bus.kind[phys >> 12] == 0:
            return int.from_bytes(bus.ram[phys: phys + size], "little")
        return None

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
        if e is None and len(self.tlb) >= TLB_CAPACITY:
            keep = {k: v for k, v in self.tlb.items() if v[1] & T_GLOBAL}
            self.tlb = keep if len(keep) < TLB_CAPACITY else {}
            self._rebuild()
        elif e is not None and e[0] != ppn:
            self._new_gen()         # the page tables changed under a live entry: a new mapping
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
        ppn, bits = self._walk_tables(lin, write, user, fetch, wp)
        return ppn & self.bus.a20_mask, bits

    def _walk_tables(self, lin, write, user, fetch, wp):
        bus = self.bus
        cpu = self.cpu
        a20 = bus.a20_mask
        if self.pae:
            nxe = bool(cpu.efer & 0x800)
            # bits 62:36 are reserved (MAXPHYADDR 36); bit 63 too unless EFER.NXE
            rsv = 0x7FFFFFF000000000 | (0 if nxe else 1 << 63)
            pdpte = self.pdpte[lin >> 30]
            if not pdpte & 1:
                self._fault(lin, False, write, user, fetch)
            pde_addr = ((pdpte & 0xFFFFFF000) + ((lin >> 21) & 0x1FF) * 8) & a20
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
            pte_addr = ((pde & 0xFFFFFF000) + ((lin >> 12) & 0x1FF) * 8) & a20
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
        pde_addr = ((cpu.cr3 & 0xFFFFF000) + ((lin >> 22) << 2)) & a20
        pde = bus.read32(pde_addr)
        if not pde & 1:
            self._fault(lin, False, write, user, fetch)
        u = pde & 4
        w = pde & 2
        if pde & 0x80 and cpu.cr4 & 0x10:                              # 4 MiB page
            if pde & PDE4M_RESERVED:
                self._fault(lin, True, write, user, fetch, rsvd=True)
            bits = _bits(u, w, pde & 0x40, pde & 0x100 and cpu.cr4 & 0x80, False)
            self._check(lin, bits, write, user, fetch, wp)
            _set_ad(bus, pde_addr, pde, write)
            return (pde & 0xFFC00000) + (lin & 0x3FF000), bits | (T_DIRTY if write or pde & 0x40 else 0)
        pte_addr = ((pde & 0xFFFFF000) + (((lin >> 12) & 0x3FF) << 2)) & a20
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
        if self.watches is not None and self.watches.linear:
            self.watches.refresh()


def _bits(u, w, d, g, nx) -> int:
    return ((T_USER if u else 0) | (T_WRITE if w else 0) | (T_DIRTY if d else 0) |
            (T_GLOBAL if g else 0) | (T_NX if nx else 0))


def _rd64(bus, addr) -> int:
    return bus.read32(addr) | bus.read32(addr + 4) << 32


def _set_ad(bus, addr, entry, write) -> None:
    new = entry | 0x20 | (0x40 if write else 0)
    if new != entry:
        bus.write32(addr, new & 0xFFFFFFFF)
