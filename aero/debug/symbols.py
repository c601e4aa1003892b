"""Debugger symbols: names for addresses, addresses for names, source lines for addresses.

A :class:`SymbolTable` gathers symbols from several sources and answers the debugger's questions:
``lookup(name)`` (an address for a name typed wherever an address is accepted), ``describe(addr)``
(``"name+0x1c"`` for disassembly and stacks), ``nearest``, ``line``/``address_of_line`` (DWARF
line information) and ``names(prefix)`` (completion).

Sources
-------
**NASM map files.**  For ``nasm -f bin`` a map is requested from the source with the ``[map]``
directive: ``[map symbols x.map]`` or ``[map all x.map]`` (``brief``, ``sections`` and
``segments`` maps carry no symbols and are refused).  Its ``-- Symbols --`` part has one table
per section::

    ---- Section .text --------------------------------------------------------
    Real              Virtual           Name
                7C00              7C00  start
                7C07              7C07  start.loop

"Real" is where the bytes sit in the image (the origin plus the file offset: where they are
loaded), "Virtual" is the address the code was assembled for; they differ only in a section with
``vstart=`` (code copied elsewhere before it runs).  A symbol's ``address`` is the virtual one,
the address the CPU executes at, and that is what :meth:`SymbolTable.lookup` returns; the real
one is kept as ``physical``.  Local labels are reported by NASM as ``parent.local`` and are
stored under that name.  The ``---- No Section ----`` table (``Value  Name``) holds ``equ``
constants, ``struc`` offsets and ``absolute`` labels: they are kept with ``kind="constant"``,
are found by ``lookup`` and ``names`` but never name an address in ``describe``; NASM prints
negative values as 64-bit two's complement and they are read back as negative numbers.  When
the map has a section summary (``[map all]``), each section's extent is recorded and bounds the
reach of the symbols in it.

**ELF files** (read with pyelftools): defined symbols of ``.symtab``, and of ``.dynsym`` when
there is one (a stripped shared object), with their sizes, types (``func``, ``object``; untyped
symbols, such as NASM labels, are ``label``) and bindings.  Section and file symbols are skipped;
``SHN_ABS`` symbols (NASM ``equ`` constants) become constants.  Local symbols remember the
``STT_FILE`` symbol before them as their ``unit`` (``c1.c``), which qualified names can use.
A symbol size of 0 means "unknown" (the ELF convention).  When a ``PT_LOAD`` segment's physical
address differs from its virtual one (a kernel linked high and loaded low with ``AT()``), the
symbols in it get their ``physical`` address too.  DWARF ``.debug_line`` information, when
present (versions 2 to 5), maps addresses to ``(file, line)`` and back; file names are made
absolute with the compilation directory, as ``addr2line`` prints them.  Line sequences that
start outside every allocated section (code discarded by the linker) are ignored.  Relocatable
objects (``.o``) are refused: their symbol values are offsets, not addresses.

**User names**: :meth:`SymbolTable.add` (the debugger's ``sym`` command).  They win over loaded
symbols in ``lookup`` and are preferred by ``describe`` at the same address.

Semantics
---------
Addresses are 32-bit linear addresses.  ``load(path, bias)`` adds ``bias`` (the address an image
assembled with ``org 0`` or linked at 0 is loaded at, or a relocation offset) to every address
and physical address from that file, modulo 2**32; constants are not biased.  Loading a file
again replaces what it gave before; :meth:`SymbolTable.unload` forgets it.

``lookup(name)`` resolves, in order: a user name; the exact name (several symbols of that name at
different addresses are resolved in favour of non-constants, then of global or weak ones, and
are otherwise ambiguous); a qualified name ``qual!name``, where ``qual`` is a loaded file's name
(``boot.map``, ``boot``) or a local symbol's unit (``c2.c``, ``c2``); the unique name equal to
it ignoring case; the unique local label ending in it (``.loop`` for ``start.loop``).  Failing
all of those it raises :class:`UnknownSymbol` (a ``KeyError`` whose ``str()`` is a readable
one-line message naming close matches or the ambiguous candidates).

``nearest(addr)`` considers the symbols starting at the highest address at or below ``addr``
(constants excluded) and returns the preferred one that covers ``addr``: a symbol with a known
size covers ``[start, start + size)``; one without covers ``max_distance`` bytes (64 KiB unless
set), cut at the end of its section when the section's extent is known.  Among symbols at the
same address, user names come first, then functions and objects, then global ones, then names
that are not local labels.  ``describe(addr)`` formats it as ``name`` or ``name+0x1c``.

``line(addr)`` is the ``(file, line)`` of the line-table row covering ``addr`` (when several rows
share an address, the last one counts, as in ``addr2line``).  ``address_of_line(file, line)`` is
the lowest address of a statement row for that line and ``addresses_of_line`` all of them; the
file is matched by its full path, by a trailing part of it (``sub/c2.c``) or by its base name.
"""

from __future__ import annotations

import bisect
import difflib
import io
import os
import re
import struct
from dataclasses import dataclass

__all__ = ["Section", "Symbol", "SymbolTable", "UnknownSymbol", "DEFAULT_MAX_DISTANCE"]

DEFAULT_MAX_DISTANCE = 0x10000      # how far an unsized symbol reaches, unless set otherwise
USER_SOURCE = "<user>"
_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Symbol:
    """One name.  ``address`` is virtual (where the CPU executes or accesses it), or the value of
    a constant; ``size`` is None when unknown; ``kind`` is ``func``, ``object``, ``label``,
    ``constant`` or ``user``; ``binding`` is ``global``, ``local``, ``weak`` or None (unknown);
    ``physical`` is the load address when the source gives one; ``unit`` is the source file of
    an ELF local symbol; ``source`` is the loaded file's path (or ``"<user>"``)."""

    name: str
    address: int
    size: int | None = None
    kind: str = "label"
    section: str | None = None
    source: str = USER_SOURCE
    physical: int | None = None
    binding: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A section's extent: virtual ``address``, ``size`` in bytes, ``physical`` load address."""

    name: str
    address: int
    size: int
    physical: int | None
    source: str


class UnknownSymbol(KeyError):
    """An unknown or ambiguous name; ``str()`` is the message (KeyError's would add quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class _LineRange:
    start: int
    end: int
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class _Stmt:
    file: str
    line: int
    address: int


def _rank(sym: Symbol) -> tuple:
    """Preference among symbols at one address (smaller first)."""
    return (sym.kind != "user",
            sym.kind not in ("func", "object"),
            sym.binding == "local",
            "." in sym.name[1:],
            sym.name)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


class SymbolTable:
    """Symbols from NASM maps, ELF files and the user; see the module docstring."""

    def __init__(self, max_distance: int = DEFAULT_MAX_DISTANCE) -> None:
        self.max_distance = max_distance
        self._symbols: dict[str, list[Symbol]] = {}          # source -> its symbols
        self._sections: dict[str, list[Section]] = {}        # source -> its sections
        self._lines: dict[str, list[_LineRange]] = {}        # source -> its line ranges
        self._stmts: dict[str, list[_Stmt]] = {}             # source -> its statement rows
        self._user: dict[str, Symbol] = {}
        self._dirty = True
        # Indexes, rebuilt on the first query after a change.
        self._by_name: dict[str, list[Symbol]] = {}
        self._folded: dict[str, list[str]] = {}
        self._sorted_names: list[str] = []
        self._starts: list[int] = []
        self._groups: list[list[Symbol]] = []
        self._extent: dict[tuple[str, str], tuple[int, int]] = {}
        self._line_starts: list[int] = []
        self._line_ranges: list[_LineRange] = []
        self._line_index: dict[tuple[str, int], list[int]] = {}
        self._files: dict[str, list[str]] = {}               # base name -> full paths

    # ---- loading --------------------------------------------------------------------------------
    def load(self, path: str, bias: int = 0) -> int:
        """Load an ELF file or a NASM map (decided by content); return the number of symbols.

        Raises ValueError with a one-line message for unreadable or malformed files."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
        if data[:4] == b"\x7fELF":
            return self.load_elf(data, path, bias)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a NASM map file or an ELF file") from None
        return self.load_map(text, path, bias)

    def load_map(self, text: str, source: str = "<map>", bias: int = 0) -> int:
        """Load a NASM map file's text (see the module docstring); return the symbol count."""
        symbols, sections = _parse_nasm_map(text, source, bias)
        self._replace(source, symbols, sections, [], [])
        return len(symbols)

    def load_elf(self, data: bytes, source: str = "<elf>", bias: int = 0) -> int:
        """Load an ELF image's symbols and DWARF lines; return the symbol count."""
        symbols, sections, lines, stmts = _parse_elf(data, source, bias)
        self._replace(source, symbols, sections, lines, stmts)
        return len(symbols)

    def unload(self, source: str) -> bool:
        """Forget everything loaded from ``source`` (the path given to load); True if known."""
        if source not in self._symbols:
            return False
        del self._symbols[source], self._sections[source]
        del self._lines[source], self._stmts[source]
        self._dirty = True
        return True

    def sources(self) -> list[str]:
        """The loaded files, in loading order."""
        return list(self._symbols)

    def _replace(self, source: str, symbols: list[Symbol], sections: list[Section],
                 lines: list[_LineRange], stmts: list[_Stmt]) -> None:
        self._symbols.pop(source, None)          # a reloaded file moves to the end of sources()
        self._symbols[source] = symbols
        self._sections[source] = sections
        self._lines[source] = lines
        self._stmts[source] = stmts
        self._dirty = True

    # ---- user names -----------------------------------------------------------------------------
    def add(self, name: str, address: int, size: int | None = None) -> Symbol:
        """Name ``address`` (replacing a user name of the same spelling); return the symbol."""
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"bad symbol name {name!r}: empty or contains spaces")
        if not 0 <= address <= _MASK:
            raise ValueError(f"{name}: address {address:#x} is not a 32-bit address")
        if size is not None and size <= 0:
            raise ValueError(f"{name}: size must be positive")
        sym = Symbol(name, address, size, "user")
        self._user[name] = sym
        self._dirty = True
        return sym

    def remove(self, name: str) -> bool:
        """Remove a user name; True if it existed."""
        if self._user.pop(name, None) is None:
            return False
        self._dirty = True
        return True

    # ---- indexes --------------------------------------------------------------------------------
    def _index(self) -> None:
        if not self._dirty:
            return
        every = [s for syms in self._symbols.values() for s in syms] + list(self._user.values())
        by_name: dict[str, list[Symbol]] = {}
        for s in every:
            by_name.setdefault(s.name, []).append(s)
        folded: dict[str, list[str]] = {}
        for n in by_name:
            folded.setdefault(n.casefold(), []).append(n)
        groups: dict[int, list[Symbol]] = {}
        for s in every:
            if s.kind != "constant":
                groups.setdefault(s.address, []).append(s)
        self._by_name = by_name
        self._folded = folded
        self._sorted_names = sorted(by_name)
        self._starts = sorted(groups)
        self._groups = [g if len(g) == 1 else sorted(g, key=_rank)
                        for g in map(groups.__getitem__, self._starts)]
        self._extent = {(sec.source, sec.name): (sec.address, sec.address + sec.size)
                        for secs in self._sections.values() for sec in secs}
        ranges = sorted((r for rs in self._lines.values() for r in rs), key=lambda r: r.start)
        self._line_ranges = ranges
        self._line_starts = [r.start for r in ranges]
        index: dict[tuple[str, int], list[int]] = {}
        files: dict[str, list[str]] = {}
        for stmts in self._stmts.values():
            for st in stmts:
                index.setdefault((st.file, st.line), []).append(st.address)
        for full in {r.file for rs in self._lines.values() for r in rs} | \
                {f for f, _ in index}:
            files.setdefault(os.path.basename(full), []).append(full)
        for addrs in index.values():
            addrs[:] = sorted(set(addrs))
        self._line_index = index
        self._files = files
        self._dirty = False

    def __len__(self) -> int:
        return sum(len(s) for s in self._symbols.values()) + len(self._user)

    def __contains__(self, name: object) -> bool:
        self._index()
        return name in self._by_name

    def symbols(self) -> list[Symbol]:
        """Every symbol (constants and user names included), sorted by address then name."""
        every = [s for syms in self._symbols.values() for s in syms] + list(self._user.values())
        return sorted(every, key=lambda s: (s.address, s.name))

    def sections(self) -> list[Section]:
        """Every section whose extent is known, sorted by address."""
        return sorted((s for secs in self._sections.values() for s in secs),
                      key=lambda s: (s.address, s.name))

    def names(self, prefix: str = "") -> list[str]:
        """Sorted names starting with ``prefix`` (for completion)."""
        self._index()
        names = self._sorted_names
        lo = bisect.bisect_left(names, prefix)
        hi = lo
        while hi < len(names) and names[hi].startswith(prefix):
            hi += 1
        return names[lo:hi]

    # ---- name -> address ------------------------------------------------------------------------
    def lookup(self, name: str) -> int:
        """The address (or constant value) of ``name``; UnknownSymbol if unknown or ambiguous."""
        return self.symbol(name).address

    def symbol(self, name: str) -> Symbol:
        """The symbol ``lookup`` resolves ``name`` to."""
        self._index()
        if name in self._user:
            return self._user[name]
        if name in self._by_name:
            return self._resolve(name, self._by_name[name])
        if "!" in name:
            qual, _, bare = name.partition("!")
            cands = [s for s in self._by_name.get(bare, ()) if _qualifies(s, qual)]
            if cands:
                return self._resolve(name, cands)
        same = self._folded.get(name.casefold(), [])
        if len(same) == 1:
            return self._resolve(same[0], self._by_name[same[0]])
        if name.startswith(".") and len(name) > 1:
            ends = [n for n in self._sorted_names if n.endswith(name) and len(n) > len(name)]
            if len(ends) == 1:
                return self._resolve(ends[0], self._by_name[ends[0]])
            if ends:
                raise UnknownSymbol(f"{name}: ambiguous local label: {', '.join(ends[:8])}"
                                    + (", ..." if len(ends) > 8 else ""))
        if len(same) > 1:
            raise UnknownSymbol(f"{name}: ambiguous ignoring case: {', '.join(sorted(same))}")
        close = difflib.get_close_matches(name, self._sorted_names, n=5, cutoff=0.6)
        if not close:
            close = [n for n in self._sorted_names if name.casefold() in n.casefold()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownSymbol(f"unknown symbol {name!r}{hint}")

    @staticmethod
    def _resolve(name: str, cands: list[Symbol]) -> Symbol:
        for keep in (lambda s: True, lambda s: s.kind != "constant",
                     lambda s: s.binding != "local"):
            narrowed = [s for s in cands if keep(s)]
            if narrowed:
                cands = narrowed
            if len({s.address for s in cands}) == 1:
                return min(cands, key=_rank)
        shown = ", ".join(f"{_qualified(s)} at {s.address:#x}"
                          for s in sorted(cands, key=lambda s: s.address)[:8])
        raise UnknownSymbol(f"{name}: ambiguous: {shown}")

    # ---- address -> name ------------------------------------------------------------------------
    def symbol_at(self, address: int) -> Symbol | None:
        """The symbol ``nearest`` describes ``address`` with (None if none covers it)."""
        self._index()
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start = self._starts[i]
        for sym in self._groups[i]:
            if address < self._reach(sym, start):
                return sym
        return None

    def _reach(self, sym: Symbol, start: int) -> int:
        if sym.size:
            return start + sym.size
        end = start + self.max_distance
        ext = self._extent.get((sym.source, sym.section)) if sym.section else None
        if ext is not None and ext[0] <= start < ext[1]:
            end = min(end, ext[1])
        return end

    def nearest(self, address: int) -> tuple[str, int, int | None] | None:
        """``(name, start, size)`` of the symbol covering ``address`` (size None: unknown)."""
        sym = self.symbol_at(address)
        return None if sym is None else (sym.name, sym.address, sym.size)

    def describe(self, address: int) -> str | None:
        """``"name"`` or ``"name+0x1c"`` for ``address``, or None when no symbol covers it."""
        sym = self.symbol_at(address)
        if sym is None:
            return None
        off = address - sym.address
        return sym.name if off == 0 else f"{sym.name}+{off:#x}"

    # ---- lines ----------------------------------------------------------------------------------
    def line(self, address: int) -> tuple[str, int] | None:
        """``(file, line)`` for ``address`` from DWARF line information, or None."""
        self._index()
        i = bisect.bisect_right(self._line_starts, address) - 1
        while i >= 0:
            r = self._line_ranges[i]
            if address < r.end:
                return (r.file, r.line) if r.line > 0 else None
            if i == 0 or self._line_starts[i - 1] != r.start:
                break
            i -= 1
        return None

    def addresses_of_line(self, file: str, line: int) -> list[int]:
        """Sorted start addresses of the statements of ``file:line`` (empty if none)."""
        self._index()
        out: set[int] = set()
        for full in self._match_files(file):
            out.update(self._line_index.get((full, line), ()))
        return sorted(out)

    def address_of_line(self, file: str, line: int) -> int | None:
        """The lowest address of ``file:line``'s statements, or None."""
        addrs = self.addresses_of_line(file, line)
        return addrs[0] if addrs else None

    def files(self) -> list[str]:
        """The source files named by the line information."""
        self._index()
        return sorted(f for fulls in self._files.values() for f in fulls)

    def _match_files(self, file: str) -> list[str]:
        fulls = self._files.get(os.path.basename(file), [])
        if os.path.basename(file) == file:
            return fulls
        want = os.path.normpath(file)
        if os.path.isabs(want):
            return [f for f in fulls if f == want]
        return [f for f in fulls if f == want or f.endswith(os.sep + want)]


def _qualifies(sym: Symbol, qual: str) -> bool:
    if sym.source != USER_SOURCE and qual in (os.path.basename(sym.source), _stem(sym.source)):
        return True
    return sym.unit is not None and qual in (sym.unit, _stem(sym.unit))


def _qualified(sym: Symbol) -> str:
    if sym.unit:
        return f"{sym.unit}!{sym.name}"
    if sym.source != USER_SOURCE:
        return f"{os.path.basename(sym.source)}!{sym.name}"
    return sym.name


# ---- NASM maps ----------------------------------------------------------------------------------
_MAP_HEAD = re.compile(r"^- NASM Map file -+\s*$")
_PART = re.compile(r"^-- (.+?) -+\s*$")
_SECTION = re.compile(r"^---- (?:Section (\S+)|(No Section)) -+\s*$")
_SUMMARY_ROW = re.compile(
    r"^\s*([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+(\S+)\s+(\S+)\s*$")
_SYMBOL_ROW = re.compile(r"^\s*([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+(\S+)\s*$")
_VALUE_ROW = re.compile(r"^\s*([0-9A-Fa-f]+)\s+(\S+)\s*$")


def _parse_nasm_map(text: str, source: str, bias: int) -> tuple[list[Symbol], list[Section]]:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not _MAP_HEAD.match(first):
        raise ValueError(f"{source}: not a NASM map file or an ELF file")
    symbols: list[Symbol] = []
    sections: list[Section] = []
    part = ""
    section: str | None = None      # current symbol table: a section name, "" for No Section
    seen_symbols = False
    for no, raw in enumerate(lines, 1):
        ln = raw.rstrip()
        if not ln.strip() or _MAP_HEAD.match(ln):
            continue
        m = _PART.match(ln)
        if m and not ln.startswith("---"):
            part = m.group(1)
            seen_symbols |= part == "Symbols"
            section = None
            continue
        if part == "Sections (summary)":
            m = _SUMMARY_ROW.match(ln)
            if m:
                vstart, start, _stop, length = (int(m.group(i), 16) for i in range(1, 5))
                sections.append(Section(m.group(6), (vstart + bias) & _MASK, length,
                                        (start + bias) & _MASK, source))
            continue
        if part != "Symbols":
            continue
        m = _SECTION.match(ln)
        if m:
            section = m.group(1) or ""
            continue
        if section is None or ln.split() in (["Value", "Name"], ["Real", "Virtual", "Name"]):
            if section is None:
                raise ValueError(f"{source}:{no}: malformed NASM map: {ln.strip()[:60]!r}")
            continue
        if section == "":
            m = _VALUE_ROW.match(ln)
            if not m:
                raise ValueError(f"{source}:{no}: malformed NASM map symbol line: "
                                 f"{ln.strip()[:60]!r}")
            value = int(m.group(1), 16)
            if value >= 1 << 63:
                value -= 1 << 64
            symbols.append(Symbol(m.group(2), value, None, "constant", None, source))
            continue
        m = _SYMBOL_ROW.match(ln)
        if not m:
            raise ValueError(f"{source}:{no}: malformed NASM map symbol line: {ln.strip()[:60]!r}")
        real, virtual = int(m.group(1), 16), int(m.group(2), 16)
        symbols.append(Symbol(m.group(3), (virtual + bias) & _MASK, None, "label", section,
                              source, (real + bias) & _MASK))
    if not seen_symbols:
        raise ValueError(f"{source}: NASM map file without symbols "
                         "(write it with [map symbols FILE] or [map all FILE])")
    return symbols, sections


# ---- ELF ----------------------------------------------------------------------------------------
_ELF_KINDS = {"STT_FUNC": "func", "STT_GNU_IFUNC": "func", "STT_LOOS": "func",
              "STT_OBJECT": "object", "STT_COMMON": "object", "STT_NOTYPE": "label"}
_ELF_BINDINGS = {"STB_GLOBAL": "global", "STB_LOCAL": "local", "STB_WEAK": "weak",
                 "STB_GNU_UNIQUE": "global"}


def _parse_elf(data: bytes, source: str, bias: int
               ) -> tuple[list[Symbol], list[Section], list[_LineRange], list[_Stmt]]:
    try:
        from elftools.common.exceptions import DWARFError, ELFError
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise ValueError(f"{source}: reading ELF files needs pyelftools "
                         "(pip install pyelftools)") from None
    broken = (ELFError, DWARFError, struct.error, ValueError, IndexError, KeyError, TypeError,
              AttributeError, AssertionError, UnicodeDecodeError, EOFError)
    try:
        elf = ELFFile(io.BytesIO(data))
        etype = elf["e_type"]
        if etype == "ET_REL":
            raise _Refused(f"{source}: relocatable object file: its symbols have no addresses "
                           "until it is linked")
        if etype not in ("ET_EXEC", "ET_DYN"):
            raise _Refused(f"{source}: ELF file of type {etype}, not an executable")
        tables = [s for s in (elf.get_section_by_name(".symtab"),
                              elf.get_section_by_name(".dynsym"))
                  if s is not None and s.header["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM")]
        if not tables:
            raise _Refused(f"{source}: no symbol table")
        secs = list(elf.iter_sections())
        loads = [(seg["p_vaddr"], seg["p_memsz"], seg["p_paddr"]) for seg in elf.iter_segments()
                 if seg["p_type"] == "PT_LOAD"]
        alloc = [(s.name, s["sh_addr"], s["sh_size"]) for s in secs
                 if s["sh_flags"] & 0x2 and s["sh_size"]]          # SHF_ALLOC
        sections = [Section(name, (addr + bias) & _MASK, size,
                            _physical(addr, loads, bias), source) for name, addr, size in alloc]
        symbols: list[Symbol] = []
        seen: set[tuple[str, int]] = set()
        for table in tables:
            unit = None
            for sym in table.iter_symbols():
                stype, bind = sym["st_info"]["type"], sym["st_info"]["bind"]
                shndx = sym["st_shndx"]
                if stype == "STT_FILE":
                    unit = sym.name or None
                    continue
                if not sym.name or stype in ("STT_SECTION", "STT_TLS") or \
                        shndx in ("SHN_UNDEF", "SHN_COMMON"):
                    continue
                binding = _ELF_BINDINGS.get(bind, "global")
                value = sym["st_value"]
                if shndx == "SHN_ABS":
                    key = (sym.name, value)
                    if key not in seen:
                        seen.add(key)
                        symbols.append(Symbol(sym.name, value, None, "constant", None, source,
                                              None, binding,
                                              unit if binding == "local" else None))
                    continue
                address = (value + bias) & _MASK
                if (sym.name, address) in seen:
                    continue
                seen.add((sym.name, address))
                section = secs[shndx].name if isinstance(shndx, int) and shndx < len(secs) \
                    else None
                symbols.append(Symbol(sym.name, address, sym["st_size"] or None,
                                      _ELF_KINDS.get(stype, "label"), section, source,
                                      _physical(value, loads, bias), binding,
                                      unit if binding == "local" else None))
    except _Refused as e:
        raise ValueError(str(e)) from None
    except broken as e:
        raise ValueError(f"{source}: malformed ELF file: {_one_line(e)}") from None
    lines: list[_LineRange] = []
    stmts: list[_Stmt] = []
    try:
        if elf.has_dwarf_info(strict=True) and \
                (elf.has_section(".debug_line") or elf.has_section(".zdebug_line")):
            lines, stmts = _elf_lines(elf, bias, alloc)
    except broken as e:
        raise ValueError(f"{source}: malformed DWARF line information: {_one_line(e)}") from None
    return symbols, sections, lines, stmts


class _Refused(Exception):
    """A well-formed ELF file this module does not take (its message is the user's line)."""


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg[:120]


def _physical(vaddr: int, loads: list[tuple[int, int, int]], bias: int) -> int | None:
    """The load address of ``vaddr`` through the PT_LOAD segment holding it (or ending at it,
    for labels such as ``_end``), or None."""
    for inclusive in (False, True):
        for start, size, paddr in loads:
            if start <= vaddr < start + size + inclusive:
                return (vaddr - start + paddr + bias) & _MASK
    return None


def _elf_lines(elf, bias: int,
               alloc: list[tuple[str, int, int]]) -> tuple[list[_LineRange], list[_Stmt]]:
    """The address ranges of the line table's rows, and its statement rows (for breakpoints)."""
    dwarf = elf.get_dwarf_info()
    ranges: list[_LineRange] = []
    stmts: list[_Stmt] = []

    def allocated(addr: int) -> bool:
        return not alloc or any(a <= addr < a + n for _, a, n in alloc)

    for cu in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            continue
        top = cu.get_top_DIE()
        comp_dir = _text(top.attributes["DW_AT_comp_dir"].value) \
            if "DW_AT_comp_dir" in top.attributes else ""
        names = _line_files(program, comp_dir)
        seq: list = []
        for entry in program.get_entries():
            if entry.state is None:
                continue
            seq.append(entry.state)
            if not entry.state.end_sequence:
                continue
            if allocated(seq[0].address):
                for row, nxt in zip(seq, seq[1:]):
                    name = names.get(row.file, f"<file {row.file}>")
                    start = (row.address + bias) & _MASK
                    if row.is_stmt and row.line > 0:
                        stmts.append(_Stmt(name, row.line, start))
                    if nxt.address > row.address:       # else the next row at this address wins
                        ranges.append(_LineRange(start, start + nxt.address - row.address,
                                                 name, row.line))
            seq = []
    return ranges, stmts


def _line_files(program, comp_dir: str) -> dict[int, str]:
    """File register value -> absolute path, for DWARF 2-4 (1-based) and 5 (0-based)."""
    header = program.header
    version = header["version"]
    dirs = [_text(d) for d in header["include_directory"] or ()]
    out: dict[int, str] = {}
    for i, fe in enumerate(header["file_entry"] or ()):
        name = _text(fe.name)
        di = fe.dir_index
        if version >= 5:
            d = dirs[di] if di < len(dirs) else ""
            index = i
        else:
            d = comp_dir if di == 0 else (dirs[di - 1] if di - 1 < len(dirs) else "")
            index = i + 1
        if not os.path.isabs(d) and comp_dir:
            d = os.path.join(comp_dir, d)
        out[index] = os.path.normpath(os.path.join(d, name)) if d else name
    return out


def _text(value) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
