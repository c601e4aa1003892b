"""Machine inspection: the system state of a machine decoded for the debugger and the TUI.

Every function here is a pure function over a machine (``aero.machine.Machine``) or a bare CPU
(``aero.cpu.cpu.CPU``, as ``aero.testing.romrun.build_machine`` makes): it returns plain data
(dataclasses whose fields also read like a dict, ``row["base"]``) and has a ``format_*``
companion that renders it as aligned text columns.  Nothing here changes the machine:

* guest memory is read without side effects: RAM and ROM bytes straight from ``bus.ram`` (and
  the ROM pages above RAM), never through the bus accessors, so no watchpoint fires, no dirty
  page is recorded and no MMIO device is touched.  MMIO pages read as unreadable (``None``)
  except those whose contents can be read without side effects (PAM pages reading their ROM
  side, the VGA linear framebuffer, and any MMIO handler offering ``peek(addr, size)``);
* linear addresses are translated by a page-table walk of this module's own (``walk``) that
  reads the entries as above, sets no accessed/dirty bit, fills no TLB entry and raises no
  fault; ``translate`` looks at the TLB first (read only), as the CPU does;
* EFLAGS is computed from the lazy flags without materialising them in the CPU.

Sections (each a data function and a formatter):

=====================  ======================================================================
registers              general, segment (with their descriptor caches), control, debug and
                       system-table registers, EFLAGS and CR0/CR4/EFER bits, CPL, the mode
gdt / ldt / idt / ivt  descriptor tables read at their linear base, limits respected
tss                    the current task's TSS (or any TSS selector), 16- or 32-bit
walk / address_space   the page-table walk for one address; the mapped runs of the whole space
tlb                    the MMU's TLB entries, each checked against the page tables (stale)
devices / pci          device summaries as key/value sections; PCI functions and their BARs
dump                   hex rows for memory views and ``x/``
stack / backtrace      stack slots from SS:ESP; the EBP chain
=====================  ======================================================================

Memory access for the debugger and the gdb stub (all side-effect free, none raises for
unreadable memory):

* ``translate(m, lin)`` -> physical address or None (not present);
* ``read_physical(m, addr, n)`` / ``read_linear(m, lin, n)`` -> a list of byte values with None
  for each byte that cannot be read; ``read_physical_bytes`` / ``read_linear_bytes`` -> bytes,
  or None if any byte cannot be read; ``read_int(m, addr, size, space)`` -> int or None.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..cpu import flags as F
from ..cpu.cpu import (A_ACCESSED, A_CODE, A_DB, A_DC, A_G, A_P, A_RW, A_S, CR0_PE, CS, REG32,
                       SEG_NAMES, SS_)
from ..cpu.segmentation import d_attr, d_base, d_limit
from ..devices.vga import _LFB
from ..mem.bus import MMIO, NPAGES, PAGE, RAM, ROM, UNMAPPED
from ..mem.mmu import PDE4M_RESERVED, T_DIRTY, T_GLOBAL, T_NX, T_USER, T_WRITE

__all__ = [
    "translate", "read_physical", "read_physical_bytes", "read_linear", "read_linear_bytes",
    "read_int",
    "registers", "format_registers", "segment_type",
    "gdt", "ldt", "descriptor", "format_descriptors", "format_gdt", "format_ldt",
    "idt", "ivt", "interrupt_table", "format_idt", "format_ivt",
    "tss", "format_tss",
    "walk", "format_walk", "entry_flags", "address_space", "format_address_space",
    "tlb", "format_tlb",
    "devices", "device", "pci_functions", "format_devices", "format_device", "format_pci",
    "dump", "format_dump",
    "stack", "format_stack", "backtrace", "format_backtrace",
]


class _Data:
    """Rows that read both ways: ``row.base`` and ``row["base"]`` (``KeyError`` if absent)."""

    def __getitem__(self, key: str):
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        """The field ``key``, or ``default`` when there is no such field."""
        return getattr(self, key) if key in self.keys() else default

    def keys(self) -> list:
        """The field names, in declaration order."""
        return [f.name for f in fields(self)]

    def as_dict(self) -> dict:
        """The row as a plain (recursively converted) dict."""
        return asdict(self)


def _cpu(target):
    """The CPU of a machine, or the CPU itself."""
    if hasattr(target, "mmu"):
        return target
    return target.cpu


def _table(headers, rows, right=()) -> list:
    """Aligned text lines: a header line then one line per row (cells are strings)."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(cells):
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()
    return [line(headers)] + [line(r) for r in rows]


# =============================================================================================
# Memory: physical and linear reads without side effects
# =============================================================================================
def _page_source(bus, p: int, ones_unmapped: bool):
    """Where physical page ``p`` can be read without side effects: (buffer, offset of the page
    in it), "ones" (unmapped space, which reads as all ones), or None (unreadable)."""
    if p < 0 or p >= NPAGES:
        return None
    k = bus.kind[p]
    if k == RAM:
        return (bus.ram, p * PAGE) if p < bus.ram_pages else None
    if k == ROM:
        if p < bus.ram_pages:
            return bus.ram, p * PAGE
        mv = bus.rom_pages.get(p)
        return (mv, 0) if mv is not None else None
    if k == MMIO:
        h = bus.mmio.get(p)
        if h is None:
            return None
        if h is getattr(bus, "_shadow_wo", None):      # PAM: reads return bus.ram's bytes
            return bus.ram, p * PAGE
        if isinstance(h, _LFB):                         # the VGA linear framebuffer
            off = p * PAGE - h.base
            if 0 <= off and off + PAGE <= len(h.vram):
                return h.vram, off
            return None
        peek = getattr(h, "peek", None)
        if callable(peek):
            return bytes(peek(p * PAGE + i, 1) & 0xFF for i in range(PAGE)), 0
        return None
    if k == UNMAPPED:
        return "ones" if ones_unmapped else None
    return None


def _phys_span(bus, addr: int, n: int, ones_unmapped: bool = False) -> list:
    """``n`` byte values from physical ``addr`` (None for each unreadable byte)."""
    out = []
    while n > 0:
        p = addr >> 12
        off = addr & 0xFFF
        k = min(n, PAGE - off)
        src = _page_source(bus, p, ones_unmapped)
        if src is None:
            out.extend([None] * k)
        elif src == "ones":
            out.extend([0xFF] * k)
        else:
            buf, base = src
            out.extend(bytes(buf[base + off: base + off + k]))
        addr += k
        n -= k
    return out


def _phys_int(bus, addr: int, size: int, ones_unmapped: bool = True):
    """A little-endian value of ``size`` bytes at physical ``addr``, or None (unreadable).
    Unmapped space reads as all ones by default, as the CPU's page walker sees it."""
    vals = _phys_span(bus, addr, size, ones_unmapped)
    if None in vals:
        return None
    return int.from_bytes(bytes(vals), "little")


def _phys_table(bus, addr: int, count: int, esize: int):
    """A page-table page as a numpy array (uint32 or uint64), or None if unreadable.  The
    table must lie inside one 4 KiB page (paging structures are page aligned)."""
    src = _page_source(bus, addr >> 12, True)
    dtype = "<u4" if esize == 4 else "<u8"
    if src is None:
        return None
    if src == "ones":
        return np.full(count, (1 << (8 * esize)) - 1, dtype=np.uint32 if esize == 4 else np.uint64)
    buf, base = src
    start = base + (addr & 0xFFF)
    raw = bytes(buf[start: start + count * esize])
    return np.frombuffer(raw, dtype=dtype).astype(np.uint32 if esize == 4 else np.uint64)


def read_physical(target, addr: int, n: int) -> list:
    """``n`` bytes at physical address ``addr`` as a list of ints, with None for each byte
    that cannot be read without side effects (MMIO, unmapped space, beyond 4 GiB)."""
    return _phys_span(_cpu(target).bus, addr, n)


def read_physical_bytes(target, addr: int, n: int):
    """``n`` bytes at physical ``addr`` as bytes, or None if any of them cannot be read."""
    vals = read_physical(target, addr, n)
    return None if None in vals else bytes(vals)


def translate(target, lin: int, tlb: bool = True):
    """The physical address linear ``lin`` maps to now, or None if it is not mapped.

    With paging off: the linear address with the A20 gate applied.  With paging on: the TLB's
    entry for the page when there is one (``tlb=True``, the default: that is what the CPU uses,
    a stale entry included), else a walk of the page tables in memory (``walk``).  Reads only:
    no TLB fill, no accessed/dirty bit, no fault.  Permissions are not checked (a debugger
    reads supervisor and user pages alike)."""
    cpu = _cpu(target)
    mmu = cpu.mmu
    lin &= 0xFFFFFFFF
    if not mmu.paging:
        return lin & cpu.bus.a20_mask
    if tlb:
        e = mmu.tlb.get(lin >> 12)
        if e is not None:
            return e[0] | (lin & 0xFFF)
    return walk(cpu, lin).physical


def read_linear(target, lin: int, n: int, tlb: bool = True) -> list:
    """``n`` bytes at linear ``lin`` (wrapping at 4 GiB) as a list of ints, with None for
    each byte on a page that is not mapped or whose physical memory cannot be read."""
    cpu = _cpu(target)
    bus = cpu.bus
    out = []
    lin &= 0xFFFFFFFF
    while n > 0:
        k = min(n, PAGE - (lin & 0xFFF))
        phys = translate(cpu, lin, tlb)
        if phys is None:
            out.extend([None] * k)
        else:
            out.extend(_phys_span(bus, phys, k))
        lin = (lin + k) & 0xFFFFFFFF
        n -= k
    return out


def read_linear_bytes(target, lin: int, n: int, tlb: bool = True):
    """``n`` bytes at linear ``lin`` as bytes, or None if any of them cannot be read."""
    vals = read_linear(target, lin, n, tlb)
    return None if None in vals else bytes(vals)


def read_int(target, addr: int, size: int, space: str = "linear", tlb: bool = True):
    """A little-endian value of ``size`` bytes at a linear or physical address, or None if any
    byte cannot be read."""
    if space == "physical":
        vals = read_physical(target, addr, size)
    elif space == "linear":
        vals = read_linear(target, addr, size, tlb)
    else:
        raise ValueError(f"space is 'linear' or 'physical', not {space!r}")
    return None if None in vals else int.from_bytes(bytes(vals), "little")


# =============================================================================================
# Registers
# =============================================================================================
EFLAGS_BITS = (("CF", F.CF), ("PF", F.PF), ("AF", F.AF), ("ZF", F.ZF), ("SF", F.SF),
               ("TF", F.TF), ("IF", F.IF), ("DF", F.DF), ("OF", F.OF), ("NT", F.NT),
               ("RF", F.RF), ("VM", F.VM), ("AC", F.AC), ("VIF", F.VIF), ("VIP", F.VIP),
               ("ID", F.ID))
CR0_BITS = (("PE", 0), ("MP", 1), ("EM", 2), ("TS", 3), ("ET", 4), ("NE", 5), ("WP", 16),
            ("AM", 18), ("NW", 29), ("CD", 30), ("PG", 31))
# Aero implements TSD DE PSE PAE PGE UMIP (aero/cpu/sem/system.py CR4_VALID); the others are
# named for completeness (MOV CR4 refuses them with #GP).
CR4_BITS = (("VME", 0), ("PVI", 1), ("TSD", 2), ("DE", 3), ("PSE", 4), ("PAE", 5), ("MCE", 6),
            ("PGE", 7), ("PCE", 8), ("OSFXSR", 9), ("OSXMMEXCPT", 10), ("UMIP", 11))
EFER_BITS = (("SCE", 0), ("LME", 8), ("LMA", 10), ("NXE", 11))


def _bit_names(value: int, table) -> list:
    return [n for n, b in table if value >> b & 1]


def _eflags(cpu) -> int:
    """EFLAGS with the lazy arithmetic flags folded in, leaving the CPU untouched."""
    f = cpu.flags
    if cpu.lf is not None:
        f = (f & ~F.ARITH) | F.arith(cpu.lf)
    return f


def segment_type(attr: int) -> str:
    """The type of a descriptor (attribute layout of the CPU's caches: type in bits 0-3, S in
    bit 4): "code RX", "code X conforming", "data RW", "data R expand-down", "LDT",
    "TSS32 busy", "call gate 32", "task gate", "interrupt gate 16", ..."""
    t = attr & 0xF
    if not attr & A_S:
        return _SYS_TYPES[t]
    if attr & A_CODE:
        return "code " + ("RX" if t & A_RW else "X") + (" conforming" if t & A_DC else "")
    return "data " + ("RW" if t & A_RW else "R") + (" expand-down" if t & A_DC else "")


_SYS_TYPES = {0: "reserved 0", 1: "TSS16 available", 2: "LDT", 3: "TSS16 busy",
              4: "call gate 16", 5: "task gate", 6: "interrupt gate 16", 7: "trap gate 16",
              8: "reserved 8", 9: "TSS32 available", 10: "reserved 10", 11: "TSS32 busy",
              12: "call gate 32", 13: "reserved 13", 14: "interrupt gate 32",
              15: "trap gate 32"}


@dataclass
class SegmentCache(_Data):
    """A segment register (or LDTR/TR) and its descriptor cache, decoded."""
    name: str
    selector: int
    base: int
    limit: int               # in bytes, as the cache holds it (granularity already applied)
    attr: int                # cache attribute: descriptor bits 8-23 >> 8
    type: str                # segment_type(attr)
    s: bool                  # code/data (True) or system
    dpl: int
    present: bool
    db: bool                 # D/B: 32-bit code / big stack
    g: bool
    avl: bool
    accessed: bool
    usable: bool             # False for a null selector loaded in protected mode


def _seg_cache(name: str, sel: int, base: int, limit: int, attr: int, usable: bool):
    return SegmentCache(name, sel, base, limit, attr, segment_type(attr), bool(attr & A_S),
                        (attr >> 5) & 3, bool(attr & A_P), bool(attr & A_DB), bool(attr & A_G),
                        bool(attr & 0x1000), bool(attr & A_S and attr & A_ACCESSED), usable)


@dataclass
class Registers(_Data):
    """The CPU's registers decoded (``registers``)."""
    gpr: dict                # eax..edi -> value
    eip: int
    eflags: int
    eflags_set: list         # names of the set flags (CF PF ... ID)
    iopl: int
    segments: list           # SegmentCache for es, cs, ss, ds, fs, gs
    cr0: int
    cr0_set: list
    cr2: int
    cr3: int
    cr3_base: int            # page directory (32-bit) or PDPT (PAE) base
    cr3_pwt: bool
    cr3_pcd: bool
    cr4: int
    cr4_set: list
    efer: int
    efer_set: list
    gdtr: tuple              # (base, limit)
    idtr: tuple
    ldtr: SegmentCache
    tr: SegmentCache
    dr: dict                 # dr0-dr3, dr6, dr7
    cpl: int
    operating_mode: str      # "real", "protected 16-bit", "protected 32-bit", "v86"
    paging: bool
    pae: bool
    mode: str                # operating mode with paging, e.g. "protected 32-bit, paging (PAE)"
    halted: bool
    icount: int
    notes: list              # e.g. "unreal: ds limit ffffffff"

    def segment(self, name: str) -> SegmentCache:
        """The segment register called ``name`` (es, cs, ss, ds, fs, gs)."""
        return self.segments[SEG_NAMES.index(name.lower())]


def _operating_mode(cpu, eflags: int) -> str:
    if not cpu.cr0 & CR0_PE:
        return "real"
    if eflags & F.VM:
        return "v86"
    return "protected 32-bit" if cpu.attr[CS] & A_DB else "protected 16-bit"


def registers(target) -> Registers:
    """Every register of the CPU decoded: general registers, EIP, EFLAGS (flag names, IOPL),
    segment registers with their caches, CR0/CR2/CR3/CR4, EFER, DR0-DR3/DR6/DR7, GDTR, IDTR,
    LDTR, TR, the CPL and the operating mode.  Returns a ``Registers``."""
    cpu = _cpu(target)
    fl = _eflags(cpu)
    opmode = _operating_mode(cpu, fl)
    pm = opmode.startswith("protected")
    segs = []
    for i, n in enumerate(SEG_NAMES):
        a = cpu.attr[i]
        usable = not pm or i == CS or bool(a & A_P)
        segs.append(_seg_cache(n, cpu.sel[i], cpu.base[i], cpu.limit[i], a, usable))
    lsel, lbase, llim, lattr = cpu.ldtr
    tsel, tbase, tlim, tattr = cpu.tr
    paging = bool(cpu.mmu.paging)
    pae = paging and bool(cpu.mmu.pae)
    mode = f"{opmode}, paging " + (("on (PAE)" if pae else "on") if paging else "off")
    notes = []
    if opmode == "real":
        for s in segs:
            if s.limit > 0xFFFF:
                notes.append(f"unreal: {s.name} limit {s.limit:x}")
        if cpu.attr[CS] & A_DB:
            notes.append("cs cache has D=1: code decodes as 32-bit")
    return Registers(
        gpr={n: cpu.R[i] for i, n in enumerate(REG32)}, eip=cpu.eip, eflags=fl,
        eflags_set=_bit_names(fl, [(n, b.bit_length() - 1) for n, b in EFLAGS_BITS]),
        iopl=(fl >> 12) & 3, segments=segs,
        cr0=cpu.cr0, cr0_set=_bit_names(cpu.cr0, CR0_BITS), cr2=cpu.cr2, cr3=cpu.cr3,
        cr3_base=cpu.cr3 & (0xFFFFFFE0 if cpu.cr4 & 0x20 else 0xFFFFF000),
        cr3_pwt=bool(cpu.cr3 & 8), cr3_pcd=bool(cpu.cr3 & 0x10),
        cr4=cpu.cr4, cr4_set=_bit_names(cpu.cr4, CR4_BITS),
        efer=cpu.efer, efer_set=_bit_names(cpu.efer, EFER_BITS),
        gdtr=tuple(cpu.gdtr), idtr=tuple(cpu.idtr),
        ldtr=_seg_cache("ldtr", lsel, lbase, llim, lattr, bool(lsel & 0xFFFC and lattr & A_P)),
        tr=_seg_cache("tr", tsel, tbase, tlim, tattr, bool(tsel & 0xFFFC)),
        dr={f"dr{i}": cpu.dr[i] for i in (0, 1, 2, 3, 6, 7)},
        cpl=cpu.cpl, operating_mode=opmode, paging=paging, pae=pae, mode=mode,
        halted=cpu.halted, icount=cpu.icount, notes=notes)


def _seg_flags(s: SegmentCache) -> str:
    out = ["P" if s.present else "-", "A" if s.accessed else "-",
           ("32" if s.db else "16") if s.s else "--", "G" if s.g else "-"]
    return " ".join(out)


def format_registers(r: Registers) -> str:
    """The registers as text: general registers, EIP/EFLAGS, the mode, a segment table with the
    caches, the system-table registers, control and debug registers."""
    g = r.gpr
    lines = [
        "  ".join(f"{n}={g[n]:08x}" for n in ("eax", "ebx", "ecx", "edx")),
        "  ".join(f"{n}={g[n]:08x}" for n in ("esi", "edi", "ebp", "esp")),
        f"eip={r.eip:08x}  eflags={r.eflags:08x} [{' '.join(r.eflags_set)}] IOPL={r.iopl}",
        f"mode: {r.mode}  cpl={r.cpl}" + ("  halted" if r.halted else "") +
        f"  icount={r.icount}",
    ]
    lines += [f"note: {n}" for n in r.notes]
    rows = []
    for s in r.segments + [r.ldtr, r.tr]:
        rows.append([s.name, f"{s.selector:04x}", f"{s.base:08x}", f"{s.limit:08x}",
                     f"{s.attr:04x}", s.type, str(s.dpl), _seg_flags(s),
                     "" if s.usable else "unusable"])
    lines += _table(["reg", "sel", "base", "limit", "attr", "type", "dpl", "P A D/B G", ""],
                    rows)
    lines.append(f"gdtr base={r.gdtr[0]:08x} limit={r.gdtr[1]:04x}   "
                 f"idtr base={r.idtr[0]:08x} limit={r.idtr[1]:04x}")
    cr3x = " ".join(n for n, v in (("PWT", r.cr3_pwt), ("PCD", r.cr3_pcd)) if v)
    lines.append(f"cr0={r.cr0:08x} [{' '.join(r.cr0_set)}]  cr2={r.cr2:08x}  "
                 f"cr3={r.cr3:08x} [base {r.cr3_base:08x}{' ' + cr3x if cr3x else ''}]")
    lines.append(f"cr4={r.cr4:08x} [{' '.join(r.cr4_set)}]  "
                 f"efer={r.efer:016x} [{' '.join(r.efer_set)}]")
    lines.append("  ".join(f"{n}={v:08x}" for n, v in r.dr.items()))
    return "\n".join(lines)


# =============================================================================================
# Descriptor tables
# =============================================================================================
@dataclass
class Descriptor(_Data):
    """One GDT/LDT entry (or IDT gate) decoded.  ``raw`` is None when unreadable; then the
    decoded fields are None too."""
    index: int
    selector: int            # the selector naming it (RPL 0); for IDT rows the vector * 8
    address: int             # linear address of the entry
    raw: bytes | None
    type: str                # segment_type, or "null", "empty", "unreadable"
    base: int | None         # segments, TSS, LDT
    limit: int | None        # in bytes, granularity applied
    attr: int | None
    dpl: int | None
    present: bool | None
    s: bool | None
    db: bool | None
    g: bool | None
    avl: bool | None
    accessed: bool | None
    bits: int | None         # 16 or 32 for code/data segments, TSSs and gates
    gate_selector: int | None    # gates: target selector (task gates: the TSS selector)
    offset: int | None           # call/interrupt/trap gates: entry offset
    params: int | None           # call gates: parameter count

    @property
    def is_gate(self) -> bool:
        """Whether this is a call, task, interrupt or trap gate."""
        return self.attr is not None and not self.attr & A_S and self.attr & 0xF in (
            4, 5, 6, 7, 12, 14, 15)


def _decode(index: int, selector: int, address: int, raw, null_first: bool) -> Descriptor:
    if raw is None:
        return Descriptor(index, selector, address, None, "unreadable", *([None] * 14))
    lo, hi = struct.unpack("<II", raw)
    a = d_attr(hi)
    kind = segment_type(a)
    if lo == 0 and hi == 0:
        kind = "null" if null_first and index == 0 else "empty"
    t = a & 0xF
    system = not a & A_S
    gsel = off = params = None
    base = d_base(lo, hi)
    limit = d_limit(lo, hi)
    bits = None
    if system and t in (4, 5, 6, 7, 12, 14, 15):        # gates have no base/limit
        base = limit = None
        gsel = lo >> 16
        if t != 5:
            off = (lo & 0xFFFF) | (hi & 0xFFFF0000 if t & 8 else 0)
        if t in (4, 12):
            params = hi & 0x1F
        bits = None if t == 5 else (32 if t & 8 else 16)
    elif system:
        bits = 32 if t in (9, 11) else 16 if t in (1, 3) else None
    else:
        bits = 32 if a & A_DB else 16
    return Descriptor(index, selector, address, bytes(raw), kind, base, limit, a, (a >> 5) & 3,
                      bool(a & A_P), not system, bool(a & A_DB), bool(a & A_G),
                      bool(a & 0x1000), bool(not system and a & A_ACCESSED), bits, gsel, off,
                      params)


def _table_entries(cpu, base: int, limit: int, esize: int, maxn: int):
    """The entries of a descriptor table (as raw bytes or None) that lie inside its limit."""
    n = min(maxn, (limit + 1) // esize) if limit >= esize - 1 else 0
    data = read_linear(cpu, base, n * esize) if n else []
    out = []
    for i in range(n):
        chunk = data[i * esize:(i + 1) * esize]
        out.append(None if None in chunk else bytes(chunk))
    return out


def gdt(target) -> list:
    """The GDT entries inside GDTR.limit, read at GDTR.base (linear): a list of
    ``Descriptor`` (index 0 is "null" when zero, other zero entries "empty")."""
    cpu = _cpu(target)
    base, limit = cpu.gdtr
    return [_decode(i, i << 3, (base + 8 * i) & 0xFFFFFFFF, raw, True)
            for i, raw in enumerate(_table_entries(cpu, base, limit, 8, 8192))]


def ldt(target) -> list:
    """The LDT entries inside the LDTR cache's limit, read at its base: a list of
    ``Descriptor`` (selectors with TI=1); empty when LDTR holds a null or unusable selector."""
    cpu = _cpu(target)
    sel, base, limit, attr = cpu.ldtr
    if not sel & 0xFFFC or not attr & A_P:
        return []
    return [_decode(i, (i << 3) | 4, (base + 8 * i) & 0xFFFFFFFF, raw, False)
            for i, raw in enumerate(_table_entries(cpu, base, limit, 8, 8192))]


def descriptor(target, selector: int):
    """The descriptor a selector names in the GDT or the LDT (TI bit) as a ``Descriptor``, or
    None for a null selector or one outside its table's limit."""
    cpu = _cpu(target)
    selector &= 0xFFFF
    idx = selector >> 3
    if selector & 4:
        lsel, base, limit, attr = cpu.ldtr
        if not lsel & 0xFFFC or not attr & A_P:
            return None
    else:
        if not selector & 0xFFFC:
            return None
        base, limit = cpu.gdtr
    if idx * 8 + 7 > limit:
        return None
    addr = (base + idx * 8) & 0xFFFFFFFF
    raw = read_linear_bytes(cpu, addr, 8)
    return _decode(idx, selector & 0xFFF8 | (selector & 4), addr, raw, not selector & 4)


def _desc_cells(d: Descriptor, table: str) -> list:
    raw = d.raw.hex(" ") if d.raw is not None else "-- " * 7 + "--"
    if d.raw is None or d.type in ("null", "empty"):
        what = ""
    elif d.is_gate:
        if d.offset is None:
            what = f"-> {d.gate_selector:04x}"
        else:
            what = f"-> {d.gate_selector:04x}:{d.offset:08x}"
        if d.params is not None:
            what += f" params={d.params}"
    else:
        what = f"base={d.base:08x} limit={d.limit:08x}"
        if d.s:
            what += f" {d.bits}-bit" + (" A" if d.accessed else "")
    blank = d.present is None or d.type in ("null", "empty")
    present = "" if blank else ("P" if d.present else "NP")
    dpl = "" if blank else str(d.dpl)
    first = f"{d.index:3d}" if table == "idt" else f"{d.index:4d}"
    return [first, f"{d.selector:04x}", raw, d.type, dpl, present, what]


def format_descriptors(rows: list, skip_empty: bool = True) -> str:
    """GDT or LDT rows as text: index, selector, raw bytes, type, DPL, present, base/limit
    (gates: selector:offset, parameter count).  Zero entries other than the null descriptor
    are left out unless ``skip_empty`` is false."""
    shown = [d for d in rows if not (skip_empty and d.type == "empty")]
    if not rows:
        return "(empty table)"
    lines = _table(["idx", "sel", "raw", "type", "dpl", "P", ""],
                   [_desc_cells(d, "gdt") for d in shown])
    if len(shown) < len(rows):
        n = len(rows) - len(shown)
        lines.append(f"({n} empty {'entry' if n == 1 else 'entries'} not shown)")
    return "\n".join(lines)


format_gdt = format_descriptors
format_ldt = format_descriptors


def idt(target) -> list:
    """The IDT read as protected-mode gates (vectors inside IDTR.limit, at most 256): a list
    of ``Descriptor`` with ``index`` = vector (type "interrupt gate 32", "trap gate 16",
    "task gate", ...; "empty" for zero entries)."""
    cpu = _cpu(target)
    base, limit = cpu.idtr
    return [_decode(v, v << 3, (base + 8 * v) & 0xFFFFFFFF, raw, False)
            for v, raw in enumerate(_table_entries(cpu, base, limit, 8, 256))]


@dataclass
class IVTEntry(_Data):
    """A real-mode interrupt vector."""
    vector: int
    address: int             # linear address of the vector
    segment: int | None      # None when unreadable
    offset: int | None
    linear: int | None       # segment * 16 + offset


def ivt(target) -> list:
    """The interrupt vector table the real-mode CPU uses (IDTR base and limit): a list of
    ``IVTEntry`` for the vectors inside the limit."""
    cpu = _cpu(target)
    base, limit = cpu.idtr
    out = []
    for v, raw in enumerate(_table_entries(cpu, base, limit, 4, 256)):
        addr = (base + 4 * v) & 0xFFFFFFFF
        if raw is None:
            out.append(IVTEntry(v, addr, None, None, None))
        else:
            off, seg = struct.unpack("<HH", raw)
            out.append(IVTEntry(v, addr, seg, off, (seg << 4) + off))
    return out


def interrupt_table(target) -> list:
    """What the CPU delivers interrupts through now: ``ivt`` in real mode, ``idt`` otherwise."""
    cpu = _cpu(target)
    return ivt(cpu) if not cpu.cr0 & CR0_PE else idt(cpu)


def format_ivt(rows: list) -> str:
    """IVT rows as text: vector, segment:offset, linear address."""
    if not rows:
        return "(empty table)"
    cells = [[f"{e.vector:02x}", f"{e.segment:04x}:{e.offset:04x}" if e.segment is not None
              else "unreadable", f"{e.linear:05x}" if e.linear is not None else ""]
             for e in rows]
    return "\n".join(_table(["vec", "seg:off", "linear"], cells))


def format_idt(rows: list, skip_empty: bool = True) -> str:
    """IDT rows (or IVT rows, which are passed to ``format_ivt``) as text: vector, gate type,
    DPL, present, selector:offset.  Zero entries are left out unless ``skip_empty`` is false."""
    if rows and isinstance(rows[0], IVTEntry):
        return format_ivt(rows)
    if not rows:
        return "(empty table)"
    shown = [d for d in rows if not (skip_empty and d.type == "empty")]
    cells = []
    for d in shown:
        c = _desc_cells(d, "idt")
        c[0] = f"{d.index:02x}"
        if d.raw is not None and d.type != "empty" and not d.is_gate:
            c[6] = "(not a gate)"
        cells.append([c[0], c[3], c[4], c[5], c[6]])
    lines = _table(["vec", "type", "dpl", "P", "target"], cells)
    if len(shown) < len(rows):
        n = len(rows) - len(shown)
        lines.append(f"({n} empty {'vector' if n == 1 else 'vectors'} not shown)")
    return "\n".join(lines)


# =============================================================================================
# TSS
# =============================================================================================
TSS32_FIELDS = (("back link", 0x00, 2), ("ESP0", 0x04, 4), ("SS0", 0x08, 2), ("ESP1", 0x0C, 4),
                ("SS1", 0x10, 2), ("ESP2", 0x14, 4), ("SS2", 0x18, 2), ("CR3", 0x1C, 4),
                ("EIP", 0x20, 4), ("EFLAGS", 0x24, 4), ("EAX", 0x28, 4), ("ECX", 0x2C, 4),
                ("EDX", 0x30, 4), ("EBX", 0x34, 4), ("ESP", 0x38, 4), ("EBP", 0x3C, 4),
                ("ESI", 0x40, 4), ("EDI", 0x44, 4), ("ES", 0x48, 2), ("CS", 0x4C, 2),
                ("SS", 0x50, 2), ("DS", 0x54, 2), ("FS", 0x58, 2), ("GS", 0x5C, 2),
                ("LDT", 0x60, 2), ("T", 0x64, 2), ("I/O map base", 0x66, 2))
TSS16_FIELDS = (("back link", 0x00, 2), ("SP0", 0x02, 2), ("SS0", 0x04, 2), ("SP1", 0x06, 2),
                ("SS1", 0x08, 2), ("SP2", 0x0A, 2), ("SS2", 0x0C, 2), ("IP", 0x0E, 2),
                ("FLAGS", 0x10, 2), ("AX", 0x12, 2), ("CX", 0x14, 2), ("DX", 0x16, 2),
                ("BX", 0x18, 2), ("SP", 0x1A, 2), ("BP", 0x1C, 2), ("SI", 0x1E, 2),
                ("DI", 0x20, 2), ("ES", 0x22, 2), ("CS", 0x24, 2), ("SS", 0x26, 2),
                ("DS", 0x28, 2), ("LDT", 0x2A, 2))


@dataclass
class TSSField(_Data):
    """One field of a TSS."""
    name: str
    offset: int
    size: int
    value: int | None        # None: unreadable
    beyond_limit: bool       # the field lies (partly) past the TSS limit


@dataclass
class TSSInfo(_Data):
    """A TSS decoded (``tss``).  ``fields`` is empty when there is nothing to decode (``note``
    says why)."""
    selector: int
    base: int
    limit: int
    kind: str | None         # "32-bit", "16-bit", or None (not a TSS)
    busy: bool
    source: str              # "TR cache" or "GDT"
    fields: list
    t_bit: bool | None
    io_map_base: int | None
    io_bitmap_inside: bool | None    # whether the I/O bitmap starts inside the limit
    io_bitmap_bytes: int             # bytes of bitmap inside the limit (0: none)
    note: str

    def value(self, name: str):
        """The value of the field called ``name`` ("ESP0", "EIP", "LDT" ...), or None."""
        for f in self.fields:
            if f.name == name:
                return f.value
        return None


def tss(target, selector: int | None = None) -> TSSInfo:
    """The TSS of the current task (TR's cached base, limit and type: what the CPU uses), or
    of the TSS descriptor ``selector`` names in the GDT, decoded as a 16- or 32-bit TSS:
    back link, stacks, CR3, EIP, EFLAGS, general and segment registers, LDT, T bit and I/O
    map base.  Returns a ``TSSInfo``."""
    cpu = _cpu(target)
    if selector is None:
        sel, base, limit, attr = cpu.tr
        source = "TR cache"
        if not sel & 0xFFFC:
            return TSSInfo(sel, base, limit, None, False, source, [], None, None, None, 0,
                           "TR holds a null selector (no LTR yet)")
    else:
        source = "GDT"
        sel = selector & 0xFFFF
        d = descriptor(cpu, sel) if not sel & 4 else None
        if d is None or d.raw is None:
            why = "unreadable" if d is not None else "not in the GDT"
            return TSSInfo(sel, 0, 0, None, False, source, [], None, None, None, 0,
                           f"selector {sel:04x}: {why}")
        base, limit, attr = d.base, d.limit, d.attr
    t = attr & 0xF
    if attr & A_S or t not in (1, 3, 9, 11):
        return TSSInfo(sel, base or 0, limit or 0, None, False, source, [], None, None, None,
                       0, f"not a TSS: {segment_type(attr)}")
    is32 = bool(t & 8)
    layout = TSS32_FIELDS if is32 else TSS16_FIELDS
    span = 0x68 if is32 else 0x2C
    data = read_linear(cpu, base, span)
    out = []
    for name, off, size in layout:
        chunk = data[off:off + size]
        v = None if None in chunk else int.from_bytes(bytes(chunk), "little")
        out.append(TSSField(name, off, size, v, off + size - 1 > limit))
    info = TSSInfo(sel, base, limit, "32-bit" if is32 else "16-bit", bool(t & 2), source, out,
                   None, None, None, 0, "")
    if is32:
        tv = info.value("T")
        info.t_bit = None if tv is None else bool(tv & 1)
        io = info.value("I/O map base")
        info.io_map_base = io
        if io is not None:
            info.io_bitmap_inside = io <= limit
            info.io_bitmap_bytes = limit - io + 1 if io <= limit else 0
    notes = []
    if limit < span - 1:
        notes.append(f"limit {limit:#x} is below the minimum {span - 1:#x}")
    if None in data:
        notes.append("part of the TSS is unreadable")
    info.note = "; ".join(notes)
    return info


def format_tss(t: TSSInfo) -> str:
    """A TSS as text: the descriptor line, then offset, field, value (fields past the limit
    marked), then the I/O bitmap."""
    head = (f"TSS {t.selector:04x} ({t.source}) base={t.base:08x} limit={t.limit:08x} "
            + (f"{t.kind}{' busy' if t.busy else ' available'}" if t.kind else ""))
    lines = [head.rstrip()]
    if t.note:
        lines.append(f"note: {t.note}")
    if not t.fields:
        return "\n".join(lines)
    cells = []
    for f in t.fields:
        v = "unreadable" if f.value is None else f"{f.value:0{2 * f.size}x}"
        cells.append([f"+{f.offset:02x}", f.name, v, "past limit" if f.beyond_limit else ""])
    lines += _table(["off", "field", "value", ""], cells)
    if t.kind == "32-bit":
        if t.io_map_base is None:
            lines.append("I/O bitmap: unreadable")
        elif t.io_bitmap_inside:
            lines.append(f"I/O bitmap at +{t.io_map_base:04x}: {t.io_bitmap_bytes} bytes inside "
                         f"the limit (ports 0-{t.io_bitmap_bytes * 8 - 1:#x})")
        else:
            lines.append(f"I/O bitmap base {t.io_map_base:#06x} is past the limit: no bitmap "
                         "(every port needs CPL <= IOPL)")
    return "\n".join(lines)


# =============================================================================================
# Paging
# =============================================================================================
_PT_BITS = ((0, "P"), (1, "RW"), (2, "US"), (3, "PWT"), (4, "PCD"), (5, "A"), (6, "D"),
            (7, "PS"), (8, "G"))
PAE_RSVD = 0x7FFFFFF000000000          # bits 62:36 (MAXPHYADDR 36); bit 63 too without NXE


def entry_flags(raw: int, level: str, pae: bool) -> list:
    """The flag names set in a paging-structure entry: P RW US PWT PCD A D PS (PAT in a PTE)
    G, and NX (bit 63, PAE)."""
    out = []
    for bit, n in _PT_BITS:
        if raw >> bit & 1:
            out.append("PAT" if bit == 7 and level == "PTE" else n)
    if pae and raw >> 63 & 1:
        out.append("NX")
    return out


@dataclass
class WalkLevel(_Data):
    """One level of a page-table walk."""
    name: str                # "PDPTE", "PDE", "PTE"
    address: int             # physical address of the entry
    raw: int | None          # the entry as the CPU uses it (None: unreadable)
    flags: list
    note: str = ""


@dataclass
class Walk(_Data):
    """The page-table walk for one linear address (``walk``)."""
    linear: int
    paging: str              # "off", "32-bit", "PAE"
    levels: list
    physical: int | None     # None: not mapped (see ``fault``)
    page_size: int           # 4096, 2 MiB or 4 MiB (0 when not mapped)
    fault: str | None        # e.g. "not present at PTE", "reserved bits set at PDE"
    user: bool               # effective permissions of the mapping (PDE and PTE combined)
    writable: bool
    nx: bool
    global_: bool
    dirty: bool
    tlb: tuple | None        # the TLB entry for the page: (physical page, bit names), if any


def _tlb_names(bits: int) -> str:
    names = ((T_USER, "U"), (T_WRITE, "W"), (T_DIRTY, "D"), (T_GLOBAL, "G"), (T_NX, "NX"))
    return " ".join(n for b, n in names if bits & b)


def walk(target, lin: int) -> Walk:
    """Walk the page tables for linear ``lin`` the way the CPU does (same entries, same A20
    masking, the PAE PDPTEs from the MMU's PDPTE registers), reading each entry without side
    effects.  Each level gives the entry's physical address, raw value and flags; the result
    is the physical address, or the level at which the walk stops (not present, reserved
    bits, unreadable).  Returns a ``Walk``."""
    cpu = _cpu(target)
    mmu = cpu.mmu
    bus = cpu.bus
    lin &= 0xFFFFFFFF
    a20 = bus.a20_mask
    te = mmu.tlb.get(lin >> 12)
    tlb_e = (te[0], _tlb_names(te[1])) if te is not None else None
    w = Walk(lin, "off", [], None, 0, None, False, False, False, False, False, tlb_e)
    if not mmu.paging:
        w.physical = lin & a20
        w.page_size = PAGE
        w.user = w.writable = True
        return w
    pge = bool(cpu.cr4 & 0x80)

    def stop(why):
        w.fault = why
        return w

    if mmu.pae:
        w.paging = "PAE"
        nxe = bool(cpu.efer & 0x800)
        rsv = PAE_RSVD | (0 if nxe else 1 << 63)
        i = lin >> 30
        pdpte = mmu.pdpte[i]
        mem_addr = (cpu.cr3 & 0xFFFFFFE0) + 8 * i
        mem = _phys_int(bus, mem_addr, 8)
        note = "" if mem == pdpte else (
            "memory holds " + ("unreadable" if mem is None else f"{mem:016x}") +
            " (the CPU uses the PDPTE loaded at the last CR3 write)")
        w.levels.append(WalkLevel("PDPTE", mem_addr, pdpte, entry_flags(pdpte, "PDPTE", True),
                                  note))
        if not pdpte & 1:
            return stop("not present at PDPTE")
        pde_addr = ((pdpte & 0xFFFFFF000) + ((lin >> 21) & 0x1FF) * 8) & a20
        pde = _phys_int(bus, pde_addr, 8)
        w.levels.append(WalkLevel("PDE", pde_addr, pde,
                                  [] if pde is None else entry_flags(pde, "PDE", True)))
        if pde is None:
            return stop("PDE unreadable")
        if not pde & 1:
            return stop("not present at PDE")
        if pde & rsv or (pde & 0x80 and pde & 0x1FE000):
            return stop("reserved bits set at PDE")
        nx = nxe and bool(pde >> 63)
        if pde & 0x80:
            w.physical = ((pde & 0xFFFE00000) + (lin & 0x1FFFFF)) & a20
            w.page_size = 2 << 20
            w.user, w.writable, w.nx = bool(pde & 4), bool(pde & 2), nx
            w.global_, w.dirty = bool(pde & 0x100 and pge), bool(pde & 0x40)
            return w
        pte_addr = ((pde & 0xFFFFFF000) + ((lin >> 12) & 0x1FF) * 8) & a20
        pte = _phys_int(bus, pte_addr, 8)
        w.levels.append(WalkLevel("PTE", pte_addr, pte,
                                  [] if pte is None else entry_flags(pte, "PTE", True)))
        if pte is None:
            return stop("PTE unreadable")
        if not pte & 1:
            return stop("not present at PTE")
        if pte & rsv:
            return stop("reserved bits set at PTE")
        w.physical = ((pte & 0xFFFFFF000) & a20) | (lin & 0xFFF)
        w.page_size = PAGE
        w.user, w.writable = bool(pde & 4 and pte & 4), bool(pde & 2 and pte & 2)
        w.nx = nx or (nxe and bool(pte >> 63))
        w.global_, w.dirty = bool(pte & 0x100 and pge), bool(pte & 0x40)
        return w
    w.paging = "32-bit"
    pde_addr = ((cpu.cr3 & 0xFFFFF000) + ((lin >> 22) << 2)) & a20
    pde = _phys_int(bus, pde_addr, 4)
    w.levels.append(WalkLevel("PDE", pde_addr, pde,
                              [] if pde is None else entry_flags(pde, "PDE", False)))
    if pde is None:
        return stop("PDE unreadable")
    if not pde & 1:
        return stop("not present at PDE")
    if pde & 0x80 and cpu.cr4 & 0x10:
        if pde & PDE4M_RESERVED:
            return stop("reserved bits set at PDE")
        w.physical = ((pde & 0xFFC00000) + (lin & 0x3FFFFF)) & a20
        w.page_size = 4 << 20
        w.user, w.writable = bool(pde & 4), bool(pde & 2)
        w.global_, w.dirty = bool(pde & 0x100 and pge), bool(pde & 0x40)
        return w
    if pde & 0x80:
        w.levels[-1].note = "PS ignored: CR4.PSE is clear"
    pte_addr = ((pde & 0xFFFFF000) + (((lin >> 12) & 0x3FF) << 2)) & a20
    pte = _phys_int(bus, pte_addr, 4)
    w.levels.append(WalkLevel("PTE", pte_addr, pte,
                              [] if pte is None else entry_flags(pte, "PTE", False)))
    if pte is None:
        return stop("PTE unreadable")
    if not pte & 1:
        return stop("not present at PTE")
    w.physical = ((pte & 0xFFFFF000) & a20) | (lin & 0xFFF)
    w.page_size = PAGE
    w.user, w.writable = bool(pde & 4 and pte & 4), bool(pde & 2 and pte & 2)
    w.global_, w.dirty = bool(pte & 0x100 and pge), bool(pte & 0x40)
    return w


def _perm_text(w: Walk) -> str:
    return " ".join(n for n, v in (("RW" if w.writable else "R", True),
                                   ("U" if w.user else "S", True), ("NX", w.nx),
                                   ("G", w.global_), ("D", w.dirty)) if v)


def format_walk(w: Walk) -> str:
    """A walk as text: one line per level (entry address, raw value, flags), then the result."""
    pae = w.paging == "PAE"
    pd = 9 if pae else 8                       # physical address digits (36 bits with PAE)
    lines = [f"linear {w.linear:08x}  paging {w.paging}"]
    for lv in w.levels:
        raw = "unreadable" if lv.raw is None else f"{lv.raw:0{16 if pae else 8}x}"
        lines.append((f"  {lv.name:<5} @ {lv.address:0{pd}x} = {raw}  {' '.join(lv.flags)}"
                      ).rstrip() + (f"  ({lv.note})" if lv.note else ""))
    if w.paging == "off":
        lines.append(f"  -> physical {w.physical:08x} (linear = physical, A20 applied)")
    elif w.physical is not None:
        size = {4096: "4 KiB", 2 << 20: "2 MiB", 4 << 20: "4 MiB"}.get(w.page_size, "")
        lines.append(f"  -> physical {w.physical:0{pd}x} ({size} page, {_perm_text(w)})")
    else:
        lines.append(f"  -> {w.fault}")
    if w.tlb is not None:
        lines.append(f"  TLB: {w.tlb[0]:0{pd}x} [{w.tlb[1]}]")
    return "\n".join(lines)


# ---- the whole address space ------------------------------------------------------------------
# effective permission bits of a mapped page, as the address-space summary merges them
_E_W, _E_U, _E_PWT, _E_PCD, _E_G, _E_NX = 1, 2, 4, 8, 16, 32


def _eff_text(e: int) -> str:
    out = ["RW" if e & _E_W else "R", "U" if e & _E_U else "S"]
    out += [n for b, n in ((_E_NX, "NX"), (_E_G, "G"), (_E_PWT, "PWT"), (_E_PCD, "PCD"))
            if e & b]
    return " ".join(out)


@dataclass
class MapRun(_Data):
    """A run of linear memory mapped contiguously with the same permissions."""
    linear: int
    end: int                 # last linear byte (inclusive)
    physical: int
    flags: str               # "RW U", "R S NX G", ... (PDE and PTE combined)
    pages: int               # 4 KiB pages in the run


@dataclass
class AddressSpace(_Data):
    """The mapped linear address space (``address_space``)."""
    paging: str              # "off", "32-bit", "PAE"
    runs: list
    truncated: bool          # more runs than ``max_runs``: only the first are listed
    mapped_bytes: int
    problems: list           # entries the CPU would refuse (reserved bits), unreadable tables


def _np_flags(e, keep_g: bool):
    """Effective bits from entry arrays (W, U combined by the caller)."""
    f = ((e >> 3) & 1) * _E_PWT + ((e >> 4) & 1) * _E_PCD
    if keep_g:
        f = f + ((e >> 8) & 1) * _E_G
    return f.astype(np.int64)


def address_space(target, max_runs: int = 4096, max_problems: int = 64) -> AddressSpace:
    """Every mapped linear page, merged into runs (linear start-end -> physical start, flags)
    for a memory-map view.  Reads each paging structure once, skips not-present tables, and
    vectorises the per-entry work (a full 1024 x 1024 32-bit map takes a few tens of ms).
    Runs break where the physical address is not contiguous or the effective permissions
    (RW, U/S, NX, G, PWT, PCD) change.  Returns an ``AddressSpace``."""
    cpu = _cpu(target)
    mmu = cpu.mmu
    bus = cpu.bus
    a20 = bus.a20_mask
    if not mmu.paging:
        runs = [MapRun(0, 0xFFFFFFFF, 0, "RW U", 1 << 20)]
        probs = [] if a20 == 0xFFFFFFFF else ["A20 is off: physical bit 20 is forced to 0"]
        return AddressSpace("off", runs, False, 1 << 32, probs)
    pge = bool(cpu.cr4 & 0x80)
    lins, phys, effs = [], [], []
    problems = []

    def problem(text):
        if len(problems) < max_problems:
            problems.append(text)

    if mmu.pae:
        kind = "PAE"
        nxe = bool(cpu.efer & 0x800)
        rsv = PAE_RSVD | (0 if nxe else 1 << 63)
        for i in range(4):
            pdpte = mmu.pdpte[i]
            if not pdpte & 1:
                continue
            pd = _phys_table(bus, (pdpte & 0xFFFFFF000) & a20, 512, 8)
            if pd is None:
                problem(f"{i << 30:08x}: page directory at {pdpte & 0xFFFFFF000:09x} "
                        "is unreadable")
                continue
            for j in np.nonzero(pd & 1)[0].tolist():
                pde = int(pd[j])
                lbase = (i << 30) | (j << 21)
                if pde & rsv or (pde & 0x80 and pde & 0x1FE000):
                    problem(f"{lbase:08x}: reserved bits set in PDE {pde:016x}")
                    continue
                pw, pu = pde >> 1 & 1, pde >> 2 & 1
                pnx = bool(nxe and pde >> 63)
                if pde & 0x80:
                    k = np.arange(512, dtype=np.int64)
                    lins.append(lbase + (k << 12))
                    phys.append(((pde & 0xFFFE00000) + (k << 12)) & a20)
                    e = (pw * _E_W + pu * _E_U + (pde >> 3 & 1) * _E_PWT +
                         (pde >> 4 & 1) * _E_PCD + (_E_G if pde & 0x100 and pge else 0) +
                         (_E_NX if pnx else 0))
                    effs.append(np.full(512, e, dtype=np.int64))
                    continue
                pt = _phys_table(bus, (pde & 0xFFFFFF000) & a20, 512, 8)
                if pt is None:
                    problem(f"{lbase:08x}: page table at {pde & 0xFFFFFF000:09x} is unreadable")
                    continue
                idx = np.nonzero(pt & 1)[0]
                if not idx.size:
                    continue
                ents = pt[idx]
                bad = (ents & np.uint64(rsv)) != 0
                if bad.any():
                    for k in idx[bad][:4].tolist():
                        problem(f"{lbase + (k << 12):08x}: reserved bits set in PTE "
                                f"{int(pt[k]):016x}")
                    idx, ents = idx[~bad], ents[~bad]
                    if not idx.size:
                        continue
                lins.append(lbase + (idx.astype(np.int64) << 12))
                phys.append((ents & np.uint64(0xFFFFFF000)).astype(np.int64) & a20)
                f = _np_flags(ents, pge)
                f += ((ents >> np.uint64(1)) & np.uint64(pw)).astype(np.int64) * _E_W
                f += ((ents >> np.uint64(2)) & np.uint64(pu)).astype(np.int64) * _E_U
                if pnx:
                    f += _E_NX
                elif nxe:
                    f += (ents >> np.uint64(63)).astype(np.int64) * _E_NX
                effs.append(f)
    else:
        kind = "32-bit"
        pse = bool(cpu.cr4 & 0x10)
        pd_base = (cpu.cr3 & 0xFFFFF000) & a20
        pd = _phys_table(bus, pd_base, 1024, 4)
        if pd is None:
            return AddressSpace(kind, [], False, 0,
                                [f"page directory at {pd_base:08x} is unreadable"])
        for i in np.nonzero(pd & 1)[0].tolist():
            pde = int(pd[i])
            lbase = i << 22
            pw, pu = pde >> 1 & 1, pde >> 2 & 1
            if pde & 0x80 and pse:
                if pde & PDE4M_RESERVED:
                    problem(f"{lbase:08x}: reserved bits set in PDE {pde:08x}")
                    continue
                k = np.arange(1024, dtype=np.int64)
                lins.append(lbase + (k << 12))
                phys.append(((pde & 0xFFC00000) + (k << 12)) & a20)
                e = (pw * _E_W + pu * _E_U + (pde >> 3 & 1) * _E_PWT + (pde >> 4 & 1) * _E_PCD
                     + (_E_G if pde & 0x100 and pge else 0))
                effs.append(np.full(1024, e, dtype=np.int64))
                continue
            pt = _phys_table(bus, (pde & 0xFFFFF000) & a20, 1024, 4)
            if pt is None:
                problem(f"{lbase:08x}: page table at {pde & 0xFFFFF000:08x} is unreadable")
                continue
            idx = np.nonzero(pt & 1)[0]
            if not idx.size:
                continue
            ents = pt[idx].astype(np.int64)
            lins.append(lbase + (idx.astype(np.int64) << 12))
            phys.append((ents & 0xFFFFF000) & a20)
            f = _np_flags(ents, pge)
            f += ((ents >> 1) & pw) * _E_W + ((ents >> 2) & pu) * _E_U
            effs.append(f)
    if not lins:
        return AddressSpace(kind, [], False, 0, problems)
    lin_a = np.concatenate(lins)
    phys_a = np.concatenate(phys)
    eff_a = np.concatenate(effs)
    n = lin_a.size
    brk = np.ones(n, dtype=bool)
    brk[1:] = ((lin_a[1:] != lin_a[:-1] + PAGE) | (phys_a[1:] != phys_a[:-1] + PAGE) |
               (eff_a[1:] != eff_a[:-1]))
    starts = np.nonzero(brk)[0]
    truncated = starts.size > max_runs
    ends = np.append(starts[1:], n) - 1
    runs = []
    for s, e in zip(starts[:max_runs].tolist(), ends[:max_runs].tolist()):
        runs.append(MapRun(int(lin_a[s]), int(lin_a[e]) + PAGE - 1, int(phys_a[s]),
                           _eff_text(int(eff_a[s])), e - s + 1))
    return AddressSpace(kind, runs, truncated, n * PAGE, problems)


def format_address_space(a: AddressSpace) -> str:
    """The memory map as text: linear start-end, physical start, size, flags."""
    kib = a.mapped_bytes >> 10
    size = f"{kib >> 10} MiB" if kib >= 1024 and not kib % 1024 else f"{kib} KiB"
    lines = [f"paging {a.paging}: {size} mapped in {len(a.runs)} "
             f"run{'' if len(a.runs) == 1 else 's'}" + (" (truncated)" if a.truncated else "")]
    cells = []
    for r in a.runs:
        size = r.pages * PAGE
        sz = f"{size >> 20}M" if size % (1 << 20) == 0 else f"{size >> 10}K"
        cells.append([f"{r.linear:08x}-{r.end:08x}", f"{r.physical:09x}", sz, r.flags])
    lines += _table(["linear", "physical", "size", "flags"], cells, right={2})
    lines += [f"problem: {p}" for p in a.problems]
    return "\n".join(lines)


# =============================================================================================
# TLB
# =============================================================================================
@dataclass
class TLBRow(_Data):
    """A TLB entry and how it compares with the page tables in memory now."""
    linear: int
    physical: int
    bits: str                # "U W D G NX" (the entry's permissions)
    now_physical: int | None     # page a walk gives now (None: not mapped now)
    now_bits: str
    stale: bool
    reasons: list            # what differs: "not mapped now", "physical", "U", "W", "NX", ...


def tlb(target) -> list:
    """The MMU's TLB entries, sorted by linear address, each compared with a walk of the page
    tables now: an entry is stale when the walk gives another physical page, no mapping,
    other permissions (U, W, NX, G), or a clear dirty bit where the entry says dirty.
    Returns a list of ``TLBRow``."""
    cpu = _cpu(target)
    out = []
    for vpn, (ppn, bits) in sorted(cpu.mmu.tlb.copy().items()):   # copy: atomic
        lin = vpn << 12
        w = walk(cpu, lin)
        reasons = []
        now_bits = ""
        now_phys = None
        if w.physical is None:
            reasons.append(f"not mapped now ({w.fault})")
        else:
            now_phys = w.physical & ~0xFFF
            nb = ((T_USER if w.user else 0) | (T_WRITE if w.writable else 0) |
                  (T_DIRTY if w.dirty else 0) | (T_GLOBAL if w.global_ else 0) |
                  (T_NX if w.nx else 0))
            now_bits = _tlb_names(nb)
            if now_phys != ppn:
                reasons.append("physical")
            for b, n in ((T_USER, "U"), (T_WRITE, "W"), (T_NX, "NX"), (T_GLOBAL, "G")):
                if (bits ^ nb) & b:
                    reasons.append(n)
            if bits & T_DIRTY and not nb & T_DIRTY:
                reasons.append("D clear in memory")
        out.append(TLBRow(lin, ppn, _tlb_names(bits), now_phys, now_bits, bool(reasons),
                          reasons))
    return out


def format_tlb(rows: list) -> str:
    """TLB rows as text: linear, physical, bits, and for stale entries what the page tables
    say now."""
    if not rows:
        return "(TLB empty)"
    cells = []
    for r in rows:
        now = "" if not r.stale else (
            "STALE: " + ", ".join(r.reasons) +
            (f" (now {r.now_physical:09x} [{r.now_bits}])" if r.now_physical is not None else ""))
        cells.append([f"{r.linear:08x}", f"{r.physical:09x}", r.bits, now])
    stale = sum(r.stale for r in rows)
    return "\n".join(_table(["linear", "physical", "bits", ""], cells) +
                     [f"{len(rows)} entries, {stale} stale"])


# =============================================================================================
# Devices
# =============================================================================================
@dataclass
class DeviceSection(_Data):
    """One device's summary as key/value rows."""
    key: str                 # the machine's state key (name + index: "uart16550a5")
    name: str                # the device's name ("uart", "pic" ...), "#n" added for repeats
    rows: list               # (key, value) pairs


def devices(machine) -> list:
    """Every device of the machine, in the machine's order, as ``DeviceSection`` rows of its
    ``summary()`` (a summary that raises shows the error as its only row)."""
    counts: dict = {}
    for d in machine.devices:
        counts[d.name] = counts.get(d.name, 0) + 1
    seen: dict = {}
    out = []
    for i, d in enumerate(machine.devices):
        seen[d.name] = seen.get(d.name, 0) + 1
        title = d.name if counts[d.name] == 1 else f"{d.name} #{seen[d.name]}"
        try:
            rows = list(d.summary().items())
        except Exception as e:        # a broken summary must not take the pane down
            rows = [("error", f"{type(e).__name__}: {e}")]
        out.append(DeviceSection(f"{d.name}{i}", title, rows))
    return out


def device(machine, name: str) -> DeviceSection:
    """The section of the device called ``name`` (its title, its state key, or its name when
    only one device has it); ``KeyError`` if there is none."""
    secs = devices(machine)
    for s in secs:
        if name in (s.name, s.key):
            return s
    matches = [s for s in secs if s.name.split(" #")[0] == name]
    if matches:
        return matches[0]
    raise KeyError(name)


def format_device(sec: DeviceSection) -> str:
    """One device section as text: a title line and aligned key: value rows."""
    lines = [f"[{sec.name}]"]
    w = max((len(str(k)) for k, _ in sec.rows), default=0)
    lines += [f"  {str(k).ljust(w)}  {v}" for k, v in sec.rows]
    return "\n".join(lines)


def format_devices(secs: list) -> str:
    """All device sections as text, separated by blank lines."""
    return "\n\n".join(format_device(s) for s in secs)


@dataclass
class PCIFunctionInfo(_Data):
    """A PCI function on bus 0."""
    bdf: str
    name: str
    vendor: int
    device: int
    class_code: int          # base << 16 | sub << 8 | programming interface
    command: int
    bars: list               # (label, kind, size, decoded base or None)
    irq: str                 # "INTA# line 11", "" when the function has no pin


def pci_functions(machine) -> list:
    """The PCI functions of the machine's bus 0, sorted by slot/function, with their IDs,
    class, command register and BARs (kind, size, the base decoded now or None)."""
    bus = machine.pci.bus
    out = []
    for (slot, fn), f in sorted(bus.functions.items()):
        bars = []
        for i, b in enumerate(f.bars):
            if b is not None:
                bars.append(("ROM" if i == 6 else f"BAR{i}", b.kind, b.size, f.mapped[i]))
        pin = f.config[0x3D]
        irq = f"INT{'ABCD'[(pin - 1) & 3]}# line {f.config[0x3C]}" if pin else ""
        out.append(PCIFunctionInfo(f.bdf, f.name, f.get(0, 2), f.get(2, 2), f.get(8, 4) >> 8,
                                   f.get(4, 2), bars, irq))
    return out


def format_pci(rows: list) -> str:
    """PCI functions as text: bdf, vendor:device, class, command, BARs, interrupt."""
    cells = []
    for r in rows:
        bars = ", ".join(f"{lbl} {k} {size:#x} @ " + ("-" if base is None else f"{base:#x}")
                         for lbl, k, size, base in r.bars)
        cells.append([r.bdf, f"{r.vendor:04x}:{r.device:04x}", f"{r.class_code:06x}",
                      f"{r.command:04x}", r.name, r.irq, bars])
    return "\n".join(_table(["bdf", "id", "class", "cmd", "name", "irq", "BARs"], cells))


# =============================================================================================
# Memory dump
# =============================================================================================
@dataclass
class DumpRow(_Data):
    """One row of a hex dump."""
    address: int
    unit: int                # bytes per value: 1, 2 or 4
    values: list             # units (little-endian ints), None where not readable
    ascii: str               # printable bytes, "." for others, " " for unreadable ones


def dump(target, address: int, length: int, space: str = "linear", unit: int = 1,
         width: int = 16, tlb: bool = True) -> list:
    """``length`` bytes (rounded up to whole units) from ``address`` in rows of ``width``
    bytes, as ``DumpRow``s of 1-, 2- or 4-byte little-endian units.  Linear addresses wrap at
    4 GiB; bytes that cannot be read (not present, MMIO, unmapped) are None, never an error."""
    if unit not in (1, 2, 4):
        raise ValueError(f"unit is 1, 2 or 4, not {unit!r}")
    if space not in ("linear", "physical"):
        raise ValueError(f"space is 'linear' or 'physical', not {space!r}")
    if width % unit or width <= 0:
        raise ValueError("width must be a positive multiple of the unit")
    length = max(0, -(-length // unit) * unit)
    cpu = _cpu(target)
    if space == "linear":
        address &= 0xFFFFFFFF
        data = read_linear(cpu, address, length, tlb)
    else:
        data = read_physical(cpu, address, length)
    rows = []
    for r in range(0, length, width):
        chunk = data[r:r + width]
        vals = []
        for u in range(0, len(chunk), unit):
            part = chunk[u:u + unit]
            vals.append(None if None in part else int.from_bytes(bytes(part), "little"))
        text = "".join(" " if b is None else (chr(b) if 0x20 <= b < 0x7F else ".")
                       for b in chunk)
        a = (address + r) & 0xFFFFFFFF if space == "linear" else address + r
        rows.append(DumpRow(a, unit, vals, text))
    return rows


def format_dump(rows: list) -> str:
    """Dump rows as text: address, units in hex ("--" for each unreadable byte), ASCII."""
    if not rows:
        return ""
    width = max(len(r.values) for r in rows)
    lines = []
    for r in rows:
        u = r.unit
        cells = ["--" * u if v is None else f"{v:0{2 * u}x}" for v in r.values]
        cells += [" " * (2 * u)] * (width - len(cells))
        lines.append(f"{r.address:08x}  {' '.join(cells)}  |{r.ascii}|")
    return "\n".join(lines)


# =============================================================================================
# Stack and backtrace
# =============================================================================================
@dataclass
class StackSlot(_Data):
    """One stack slot."""
    offset: int              # offset within SS (from ESP, or SP for a 16-bit stack)
    address: int             # linear address
    size: int                # 4 (SS.B set) or 2
    value: int | None        # None: unreadable
    marks: list              # "esp", "ebp" where those registers point


def _stack_geometry(cpu):
    big = bool(cpu.attr[SS_] & A_DB)
    w = 4 if big else 2
    mask = 0xFFFFFFFF if big else 0xFFFF
    return big, w, mask


def stack(target, count: int = 16) -> list:
    """``count`` slots from SS:ESP upwards (dwords with SS.B set, else words at SS:SP), each
    with its linear address and value (None if unreadable).  Returns a list of ``StackSlot``."""
    cpu = _cpu(target)
    big, w, mask = _stack_geometry(cpu)
    sp = cpu.R[4] & mask
    bp = cpu.R[5] & mask
    out = []
    for k in range(max(0, count)):
        off = (sp + k * w) & mask
        lin = (cpu.base[SS_] + off) & 0xFFFFFFFF
        marks = [n for n, v in (("esp" if big else "sp", sp), ("ebp" if big else "bp", bp))
                 if v == off]
        out.append(StackSlot(off, lin, w, read_int(cpu, lin, w), marks))
    return out


def format_stack(rows: list) -> str:
    """Stack slots as text: SS offset, linear address, value, markers."""
    if not rows:
        return "(no slots)"
    cells = [[f"{r.offset:0{2 * r.size}x}", f"{r.address:08x}",
              "unreadable" if r.value is None else f"{r.value:0{2 * r.size}x}",
              " ".join(f"<- {m}" for m in r.marks)] for r in rows]
    return "\n".join(_table(["ss:off", "linear", "value", ""], cells))


@dataclass
class Frame(_Data):
    """A caller frame found on the EBP chain."""
    level: int               # 1: the caller of the current function, 2: its caller, ...
    frame: int               # EBP value that pointed at this frame's saved EBP
    saved_ebp: int           # the saved EBP (the next frame)
    return_cs: int           # assumed: the current CS (near calls)
    return_eip: int
    return_linear: int


class Backtrace(list):
    """A list of ``Frame``s (callers, innermost first) with ``reason``: why the walk stopped."""

    def __init__(self, frames=(), reason: str = ""):
        super().__init__(frames)
        self.reason = reason


def backtrace(target, max_frames: int = 64) -> Backtrace:
    """A best-effort backtrace from the EBP chain: at each frame [EBP] is the caller's EBP
    and [EBP + 4] (2 on a 16-bit stack) the return address, taken as a near return into the
    current code segment.  Stops on EBP 0, a frame outside SS, an unreadable slot, a chain
    that does not increase, a zero return address, or ``max_frames``.  Returns a
    ``Backtrace`` (a list of ``Frame``) whose ``reason`` says where it stopped."""
    cpu = _cpu(target)
    big, w, mask = _stack_geometry(cpu)
    ss_base, ss_limit = cpu.base[SS_], cpu.limit[SS_]
    expand_down = not cpu.attr[SS_] & A_CODE and cpu.attr[SS_] & A_DC
    cs_sel, cs_base = cpu.sel[CS], cpu.base[CS]
    bp = cpu.R[5] & mask
    frames = []
    reason = f"{max_frames} frames"
    while len(frames) < max_frames:
        if bp == 0:
            reason = "frame pointer is 0"
            break
        inside = (bp > ss_limit) if expand_down else (bp + 2 * w - 1 <= ss_limit)
        if not inside or bp + 2 * w - 1 > mask:
            reason = f"frame pointer {bp:x} outside SS"
            break
        lin = (ss_base + bp) & 0xFFFFFFFF
        saved = read_int(cpu, lin, w)
        ret = read_int(cpu, (lin + w) & 0xFFFFFFFF, w)
        if saved is None or ret is None:
            reason = f"frame at {lin:08x} unreadable"
            break
        if ret == 0:
            reason = "return address 0"
            break
        frames.append(Frame(len(frames) + 1, bp, saved, cs_sel, ret,
                            (cs_base + ret) & 0xFFFFFFFF))
        if saved == 0:
            reason = "frame pointer is 0"
            break
        if saved <= bp:
            reason = "saved frame pointer does not increase"
            break
        bp = saved
    return Backtrace(frames, reason)


def format_backtrace(bt: Backtrace) -> str:
    """A backtrace as text: one line per caller frame, then why the walk stopped."""
    lines = [f"#{f.level:<2} {f.return_cs:04x}:{f.return_eip:08x} (linear {f.return_linear:08x})"
             f"  frame {f.frame:08x}" for f in bt]
    lines.append(f"(stopped: {bt.reason})")
    return "\n".join(lines)
