"""Tests of the debugger's symbol table (aero/debug/symbols.py) against files made by real tools.

Guests (tests/debug/symbols/): boot.asm (an org 0x7C00 boot sector) and sections.asm (org 0,
follows/vstart/nobits sections) with their NASM maps, kernel.asm + kernel.ld (a higher-half ELF
kernel) and shared.asm (a shared object) with their ELF files, all committed and checked to
rebuild identically; cprog/ (C, built at test time with gcc -m32 when that works).

References: the `nasm -l` listings (every label's address and bytes), `readelf -s` and `nm`
(every ELF symbol's value, size, type and binding), `addr2line` (the line of every code address)
and `objdump --dwarf=decodedline` (the statement rows behind address_of_line).  Tests needing a
missing tool (nasm; binutils: ld, readelf, nm, addr2line, objdump, strip; gcc with 32-bit
support) or pyelftools skip, saying which.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess

import pytest

from aero.debug.symbols import DEFAULT_MAX_DISTANCE, SymbolTable, UnknownSymbol

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "symbols")

# Committed artefacts: name -> (inputs, commands run in a directory holding the inputs, outputs).
BUILDS = {
    "boot": (["boot.asm"], [["nasm", "-f", "bin", "-o", "boot.bin", "boot.asm"]],
             ["boot.bin", "boot.map"]),
    "sections": (["sections.asm"], [["nasm", "-f", "bin", "-o", "sections.bin", "sections.asm"]],
                 ["sections.bin", "sections.map"]),
    "kernel": (["kernel.asm", "kernel.ld"],
               [["nasm", "-f", "elf32", "-o", "kernel.o", "kernel.asm"],
                ["ld", "-m", "elf_i386", "-T", "kernel.ld", "-o", "kernel.elf", "kernel.o"]],
               ["kernel.elf"]),
    "shared": (["shared.asm"],
               [["nasm", "-f", "elf32", "-o", "shared.o", "shared.asm"],
                ["ld", "-m", "elf_i386", "-shared", "-o", "shared.so", "shared.o"]],
               ["shared.so"]),
}
PACKAGES = {"nasm": "nasm", "gcc": "gcc"}          # Debian packages of the tools (else binutils)


def _path(name: str) -> str:
    return os.path.join(HERE, name)


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian package {PACKAGES.get(tool, 'binutils')})")


@pytest.fixture
def elftools():
    return pytest.importorskip("elftools", reason="pyelftools not installed (pip install "
                                                  "pyelftools)")


def _run(cmd: list[str], cwd: str) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed: {r.stderr.strip()}"
    return r.stdout


def _build(name: str, where, extra: dict[int, list[str]] | None = None) -> str:
    """Build guest ``name`` in directory ``where`` (a copy of its inputs); ``extra`` adds flags
    to the numbered command.  Returns the directory."""
    inputs, commands, _ = BUILDS[name]
    where = str(where)
    os.makedirs(where, exist_ok=True)
    for f in inputs:
        shutil.copy(_path(f), where)
    for i, cmd in enumerate(commands):
        _need(cmd[0])
        _run(cmd[:1] + (extra or {}).get(i, []) + cmd[1:], where)
    return where


def _table(*files: str, bias: int = 0, **kw) -> SymbolTable:
    t = SymbolTable(**kw)
    for f in files:
        t.load(_path(f) if not os.path.isabs(f) else f, bias=bias)
    return t


# ---- NASM listings ------------------------------------------------------------------------------
_LIST_ROW = re.compile(r"^\s*(\d+) (?:([0-9A-F]{8}) ([^\s<]*(?:<(?:rep|res) [0-9A-F]+h>)?\S*))?"
                       r"\s*(.*)$")
_LABEL = re.compile(r"^([A-Za-z_.$?@][\w.$?@#~]*):")


def _listed_length(field: str) -> int:
    field = field.rstrip("-").replace("[", "").replace("]", "").replace("(", "").replace(")", "")
    m = re.fullmatch(r"<res ([0-9A-F]+)h>", field)
    if m:
        return int(m.group(1), 16)
    m = re.fullmatch(r"([0-9A-F?]*)<rep ([0-9A-F]+)h>", field)
    if m:
        return len(m.group(1)) // 2 * int(m.group(2), 16)
    assert re.fullmatch(r"[0-9A-F?]*", field), field
    return len(field) // 2


def _listing(source: str, tmp_path) -> dict[str, tuple[str | None, int, bytes]]:
    """Assemble ``source`` with -l; return label -> (section or None for absolute, offset in
    its section, the bytes the listing shows at the label: literal bytes only)."""
    _need("nasm")
    shutil.copy(_path(source), tmp_path)
    _run(["nasm", "-f", "bin", "-l", "out.lst", "-o", "out.bin", source], str(tmp_path))
    labels: dict[str, tuple[str | None, int, bytes]] = {}
    pending: list[str] = []
    section: str | None = ".text"
    parent = ""
    end = 0                                   # offset after the last listed line of the section
    with open(tmp_path / "out.lst") as f:
        rows = f.read().splitlines()
    for row in rows:
        m = _LIST_ROW.match(row)
        if not m or "error:" in row:
            continue
        offset, field, text = m.group(2), m.group(3), m.group(4).strip()
        directive = text.split(";")[0].split()
        if directive[:1] in (["section"], ["absolute"]):
            for name in pending:
                labels[name] = (section, end, b"")
            pending = []
            section = directive[1] if directive[0] == "section" else None
            end = int(directive[1], 0) if directive[0] == "absolute" else 0
            continue
        lm = _LABEL.match(text)
        if lm:
            name = lm.group(1)
            if name.startswith(".") and not name.startswith(".."):
                name = parent + name
            else:
                parent = name
            pending.append(name)
        if offset is not None:
            literal = re.match(r"[0-9A-F]*", field).group(0)
            for name in pending:
                labels[name] = (section, int(offset, 16), bytes.fromhex(literal[:len(literal)
                                                                                // 2 * 2]))
            pending = []
            end = int(offset, 16) + _listed_length(field)
    for name in pending:
        labels[name] = (section, end, b"")
    return labels


# ---- NASM maps ----------------------------------------------------------------------------------
def test_boot_map():
    t = _table("boot.map")
    src = _path("boot.map")
    got = {s.name: (s.address, s.kind, s.section, s.physical, s.source) for s in t.symbols()}
    assert got == {
        "start": (0x7C00, "label", ".text", 0x7C00, src),
        "start.wait": (0x7C14, "label", ".text", 0x7C14, src),
        "print": (0x7C17, "label", ".text", 0x7C17, src),
        "print.next": (0x7C1A, "label", ".text", 0x7C1A, src),
        "greeting": (0x7C1F, "label", ".text", 0x7C1F, src),
        "greeting.end": (0x7C28, "label", ".text", 0x7C28, src),
        "boot_signature": (0x7C00 + 510, "label", ".text", 0x7C00 + 510, src),
        "COM1": (0x3F8, "constant", None, None, src),
        "GREETING_LEN": (len("symbols\r\n"), "constant", None, None, src),
        "bios_ticks": (0x46C, "constant", None, None, src),
    }
    assert [(s.name, s.address, s.size) for s in t.sections()] == [(".text", 0x7C00, 512)]
    # The image: boot_signature's bytes are the signature, at its offset from the origin.
    with open(_path("boot.bin"), "rb") as f:
        image = f.read()
    assert image[t.symbol("boot_signature").physical - 0x7C00:] == b"\x55\xAA"


def test_sections_map_with_bias():
    t = _table("sections.map", bias=0x10000)
    sym = {s.name: s for s in t.symbols()}
    assert (sym["entry"].address, sym["entry"].physical) == (0x10000, 0x10000)
    assert sym["message"].section == ".data" and sym["message"].address == 0x10020
    # vstart: assembled for 0x8000 (virtual), stored at image offset 0x30 (real).
    assert (sym["relocated"].address, sym["relocated"].physical) == (0x18000, 0x10030)
    assert t.lookup("relocated.loop") == 0x18007
    assert sym["stack"].section == ".bss" and sym["buffer"].address == sym["stack"].address + 0x200
    # Constants are not biased.
    assert (t.lookup("STACK_SIZE"), t.lookup("RELOC_SIZE")) == (0x200, 0xD)
    assert [(s.name, s.address, s.size, s.physical) for s in t.sections()] == [
        (".text", 0x10000, 0x1C, 0x10000), (".data", 0x10020, 0xB, 0x10020),
        (".reloc", 0x18000, 0xD, 0x10030), (".bss", 0x18010, 0x300, 0x18010)]
    # The copy of relocated's bytes in the image is at its real address.
    with open(_path("sections.bin"), "rb") as f:
        image = f.read()
    assert image[sym["relocated"].physical - 0x10000:][:2] == b"\xFF\x06"   # inc word [..]
    unbiased = _table("sections.map")
    assert unbiased.lookup("relocated") == 0x8000 and unbiased.lookup("entry") == 0


@pytest.mark.parametrize("guest, origin", [("boot", 0x7C00), ("sections", 0)])
def test_map_matches_listing(guest, origin, tmp_path):
    """Every label of the listing is in the map at its section's address plus its listed offset,
    and the image holds the listed bytes at the symbol's real (physical) address."""
    listed = _listing(guest + ".asm", tmp_path)
    t = _table(guest + ".map")
    bases = {s.name: s.address for s in t.sections()}
    with open(_path(guest + ".bin"), "rb") as f:
        image = f.read()
    assert set(listed) == {s.name for s in t.symbols() if s.name not in ("COM1", "GREETING_LEN",
                                                                         "STACK_SIZE",
                                                                         "RELOC_SIZE")}
    for name, (section, offset, data) in listed.items():
        sym = t.symbol(name)
        if section is None:                    # an absolute label: its listed offset is its value
            assert (sym.kind, sym.address) == ("constant", offset), name
            continue
        assert sym.section == section and sym.address == bases[section] + offset, name
        if data:
            at = sym.physical - origin
            assert image[at:at + len(data)] == data, name


def test_symbols_only_map(tmp_path):
    """[map symbols] maps (no section summary) give the same symbols; unsized symbols then reach
    max_distance, since no section end bounds them."""
    _need("nasm")
    with open(_path("boot.asm")) as f:
        src = f.read().replace("[map all boot.map]", "[map symbols boot.map]")
    (tmp_path / "boot.asm").write_text(src)
    _run(["nasm", "-f", "bin", "-o", "boot.bin", "boot.asm"], str(tmp_path))
    text = (tmp_path / "boot.map").read_text()
    assert "Sections (summary)" not in text and "-- Symbols" in text
    t = _table(str(tmp_path / "boot.map"))
    full = _table("boot.map")
    assert [(s.name, s.address, s.kind) for s in t.symbols()] == \
        [(s.name, s.address, s.kind) for s in full.symbols()]
    assert t.sections() == []
    assert full.describe(0x7E00) is None                 # past .text's end
    assert t.describe(0x7E00) == "boot_signature+0x2"
    assert t.describe(0x7DFE + DEFAULT_MAX_DISTANCE - 1) == f"boot_signature+{0xFFFF:#x}"
    assert t.describe(0x7DFE + DEFAULT_MAX_DISTANCE) is None
    short = _table(str(tmp_path / "boot.map"), max_distance=4)
    assert short.describe(0x7C17 + 2) == "print+0x2" and short.describe(0x7C00 + 4) is None


def test_map_without_symbols(tmp_path):
    _need("nasm")
    with open(_path("boot.asm")) as f:
        src = f.read().replace("[map all boot.map]", "[map sections boot.map]")
    (tmp_path / "boot.asm").write_text(src)
    _run(["nasm", "-f", "bin", "-o", "boot.bin", "boot.asm"], str(tmp_path))
    path = str(tmp_path / "boot.map")
    with pytest.raises(ValueError) as e:
        SymbolTable().load(path)
    assert str(e.value) == (f"{path}: NASM map file without symbols (write it with "
                            "[map symbols FILE] or [map all FILE])")


def test_negative_and_wide_constants(tmp_path):
    """NASM prints negative constants as 64-bit two's complement; struc offsets are constants."""
    _need("nasm")
    (tmp_path / "c.asm").write_text("[map all c.map]\nMINUS equ -2\nBIG equ 0x123456789\n"
                                    "struc pt\n.x: resw 1\n.y: resw 1\nendstruc\n"
                                    "org 0xFFFF0000\nreset: nop\n")
    _run(["nasm", "-f", "bin", "-o", "c.bin", "c.asm"], str(tmp_path))
    t = _table(str(tmp_path / "c.map"))
    assert (t.lookup("MINUS"), t.lookup("BIG"), t.lookup("pt.y"), t.lookup("pt_size")) == \
        (-2, 0x123456789, 2, 4)
    assert t.lookup("reset") == 0xFFFF0000 and t.describe(0xFFFF0000) == "reset"
    wrapped = _table(str(tmp_path / "c.map"), bias=0x10000)
    assert wrapped.lookup("reset") == 0x00000000 and wrapped.lookup("MINUS") == -2


# ---- lookups, user names, describe --------------------------------------------------------------
def test_lookup_rules(tmp_path):
    t = _table("boot.map")
    assert t.lookup("start") == 0x7C00
    assert t.lookup("start.wait") == 0x7C14                    # parent.local
    assert t.lookup(".wait") == 0x7C14                         # a unique local label
    assert t.lookup("START") == 0x7C00                         # a unique case-insensitive match
    assert t.lookup("com1") == 0x3F8
    assert "start" in t and "nope" not in t
    with pytest.raises(UnknownSymbol) as e:
        t.lookup("strat")
    assert isinstance(e.value, KeyError)
    assert str(e.value) == "unknown symbol 'strat' (did you mean start?)"
    with pytest.raises(KeyError, match=r"did you mean greeting, greeting\.end\?"):
        t.lookup("greting")
    with pytest.raises(KeyError, match=r"^unknown symbol 'zzzz'$"):
        t.lookup("zzzz")
    s = _table("sections.map")
    with pytest.raises(KeyError, match=r"\.end: ambiguous local label: message\.end, "
                                       r"relocated\.end"):
        s.lookup(".end")
    # The same map loaded again under another name and bias: qualified names pick one.
    other = str(tmp_path / "other.map")
    shutil.copy(_path("boot.map"), other)
    t.load(other, bias=0x1000)
    with pytest.raises(KeyError) as e:
        t.lookup("start")
    assert str(e.value) == "start: ambiguous: boot.map!start at 0x7c00, other.map!start at 0x8c00"
    assert t.lookup("other!start") == 0x8C00 and t.lookup("boot.map!start") == 0x7C00
    assert t.lookup("COM1") == 0x3F8                           # same value twice: not ambiguous
    # Two spellings differing only in case: no case-insensitive fallback.
    t.add("Marker", 1)
    t.add("marker", 2)
    assert t.lookup("Marker") == 1
    with pytest.raises(KeyError, match="MARKER: ambiguous ignoring case: Marker, marker"):
        t.lookup("MARKER")


def test_user_names():
    t = _table("boot.map")
    t.add("start", 0x1234)
    assert t.lookup("start") == 0x1234                         # user names win
    t.add("entry_point", 0x7C00)
    assert t.describe(0x7C00) == "entry_point"                 # and are preferred at an address
    assert t.describe(0x7C01) == "entry_point+0x1"
    assert t.nearest(0x7C02) == ("entry_point", 0x7C00, None)
    assert t.remove("entry_point") and not t.remove("entry_point")
    assert t.remove("start")
    assert t.lookup("start") == 0x7C00 and t.describe(0x7C01) == "start+0x1"
    t.add("blob", 0x5000, size=0x10)
    assert t.describe(0x500F) == "blob+0xf" and t.describe(0x5010) is None
    assert t.nearest(0x5004) == ("blob", 0x5000, 0x10)
    for bad in (("", 1), ("a b", 1), ("x", -1), ("x", 1 << 32)):
        with pytest.raises(ValueError):
            t.add(*bad)
    empty = SymbolTable()
    empty.add("only", 0x100)
    assert empty.names() == ["only"] and empty.describe(0xFF) is None


def test_describe_and_nearest_boot():
    t = _table("boot.map")
    assert t.describe(0x7C00) == "start"                       # exact start
    assert t.describe(0x7C05) == "start+0x5"                   # in the middle
    assert t.describe(0x7C15) == "start.wait+0x1"              # after a local label
    assert t.nearest(0x7C1B) == ("print.next", 0x7C1A, None)
    assert t.describe(0x7BFF) is None and t.nearest(0) is None  # below the first symbol
    assert t.describe(0x7DFF) == "boot_signature+0x1"
    assert t.describe(0x7E00) is None                          # beyond the section's end
    assert t.describe(0x3F8) is None and t.describe(0x46C) is None   # constants name nothing
    assert t.symbol_at(0x7C1F).name == "greeting"


def test_names_for_completion():
    t = _table("boot.map", "sections.map")
    assert t.names("start") == ["start", "start.wait"]
    assert t.names("pr") == ["print", "print.next"]
    assert t.names("q") == []
    every = t.names()
    assert every == sorted(every) and "COM1" in every and "relocated.loop" in every
    assert len(every) == len(t) == 10 + 12


def test_reload_and_unload():
    t = _table("sections.map")
    path = _path("sections.map")
    assert t.lookup("entry") == 0
    assert t.load(path, bias=0x20000) == 12                    # loading again replaces
    assert t.lookup("entry") == 0x20000 and len(t) == 12
    assert t.sources() == [path]
    assert t.unload(path) and not t.unload(path)
    assert len(t) == 0 and t.names() == [] and t.describe(0x20000) is None


# ---- ELF: symbols -------------------------------------------------------------------------------
def _readelf_symbols(path: str) -> dict[str, list[tuple[str, int, int, str, str, str]]]:
    """readelf -sW: table name -> [(name, value, size, type, bind, ndx)] of defined symbols."""
    _need("readelf")
    out = _run(["readelf", "-sW", path], HERE)
    tables: dict[str, list] = {}
    current = None
    for row in out.splitlines():
        m = re.match(r"^Symbol table '(\S+)'", row)
        if m:
            current = tables.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\s*\d+:\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+(\w+)\s+(\w+)\s+\w+\s+(\w+)"
                     r"\s*(\S*)$", row)
        if m and current is not None and m.group(5) != "UND" and m.group(3) not in (
                "FILE", "SECTION") and m.group(6):
            current.append((m.group(6), int(m.group(1), 16), int(m.group(2), 0), m.group(3),
                            m.group(4), m.group(5)))
    return tables


def _check_against_readelf(t: SymbolTable, path: str, bias: int = 0, tables=None) -> int:
    """Every defined symbol readelf prints (of ``tables``, default all) is in ``t`` with the
    same value (plus ``bias``), size, type and binding, and ``t`` has no others.  Returns the
    number of distinct (name, address) pairs."""
    kinds = {"FUNC": "func", "OBJECT": "object", "NOTYPE": "label"}
    expected = set()
    for table, rows in _readelf_symbols(path).items():
        if tables is not None and table not in tables:
            continue
        for name, value, size, stype, bind, ndx in rows:
            if ndx == "ABS":
                sym = t.symbol(name)
                assert (sym.kind, sym.address) == ("constant", value), name
            else:
                value = (value + bias) & 0xFFFFFFFF
                sym = [s for s in t.symbols() if (s.name, s.address) == (name, value)][0]
                assert (sym.size, sym.kind, sym.binding) == (size or None, kinds[stype],
                                                             bind.lower()), name
            expected.add((name, value))
    assert {(s.name, s.address) for s in t.symbols()} == expected
    return len(expected)


def test_kernel_elf_against_readelf(elftools):
    t = _table("kernel.elf")
    assert _check_against_readelf(t, _path("kernel.elf")) == 16


def test_kernel_elf(elftools):
    t = _table("kernel.elf")
    s = {x.name: x for x in t.symbols()}
    assert (s["_start"].address, s["_start"].size, s["_start"].kind, s["_start"].binding) == \
        (0xC0100010, 28, "func", "global")
    assert (s["sum"].size, s["table"].size, s["table"].kind, s["counter"].size) == \
        (18, 16, "object", 4)
    assert (s["unsized"].size, s["unsized"].kind, s["unsized"].binding) == (None, "label", "local")
    assert s["_start.hang"].unit == "kernel.asm" and s["_start"].unit is None
    assert (t.lookup("MB_MAGIC"), t.lookup("KERNEL_BASE")) == (0x1BADB002, 0xC0000000)
    assert s["MB_MAGIC"].kind == "constant"
    # Linked high, loaded low (kernel.ld's AT()): physical addresses from the PT_LOAD segments.
    assert s["_start"].physical == 0x100010 and s["table"].physical == 0x101000
    assert s["stack_top"].physical == 0x102014           # the end of the last segment
    assert [(x.name, x.address, x.size, x.physical) for x in t.sections()] == [
        (".text", 0xC0100000, 0x40, 0x100000), (".data", 0xC0101000, 0x10, 0x101000),
        (".bss", 0xC0101010, 0x1004, 0x101010)]
    assert t.lookup(".hang") == 0xC0100029 and t.lookup("kernel!sum") == 0xC010002C


def test_kernel_describe(elftools):
    t = _table("kernel.elf")
    assert t.describe(0xC0100010) == "_start"                  # exact start
    assert t.describe(0xC0100015) == "_start+0x5"              # in the middle (sized)
    assert t.describe(0xC010002A) == "_start.hang+0x1"         # a local label inside it
    assert t.describe(0xC010002C) == "sum"                     # sum, not _start.end (a label)
    assert t.nearest(0xC0100031) == ("sum", 0xC010002C, 18)
    assert t.describe(0xC010003F) == "unsized+0x1"             # unsized: up to the section end
    assert t.describe(0xC0100040) is None
    assert t.describe(0xC0101012) == "counter+0x2"             # counter, not table.end
    assert t.describe(0xC0100000) == "mb_header"
    assert t.describe(0xC00FFFFF) is None and t.describe(0) is None   # below the first symbol
    assert t.describe(0x1BADB002) is None                      # a constant names nothing


def test_kernel_bias(elftools):
    t = _table("kernel.elf", bias=0x1000)
    assert t.lookup("_start") == 0xC0101010 and t.symbol("_start").physical == 0x101010
    assert t.lookup("MB_MAGIC") == 0x1BADB002                  # constants are not biased
    assert t.describe(0xC0101015) == "_start+0x5"
    assert _check_against_readelf(t, _path("kernel.elf"), bias=0x1000) == 16
    wrapped = _table("kernel.elf", bias=0x40000000)            # addresses wrap modulo 2**32
    assert wrapped.lookup("_start") == 0x00100010


def test_shared_object(elftools, tmp_path):
    t = _table("shared.so", bias=0x40000000)
    assert t.lookup("lib_add") == 0x40001000 and t.lookup("lib_version") == 0x40003000
    assert t.lookup("private") == 0x40001009
    assert _check_against_readelf(t, _path("shared.so"), bias=0x40000000) == 5
    _need("nm")
    nm = _run(["nm", "-D", "-S", "--defined-only", _path("shared.so")], HERE)
    for row in nm.splitlines():
        value, size, _, name = row.split()
        assert t.nearest(0x40000000 + int(value, 16)) == (name, 0x40000000 + int(value, 16),
                                                          int(size, 16))
    # Stripped: only .dynsym is left, and the sized function's reach ends at its size.
    _need("strip")
    stripped = str(tmp_path / "stripped.so")
    _run(["strip", "-o", stripped, _path("shared.so")], HERE)
    s = _table(stripped, bias=0x40000000)
    assert sorted(s.names()) == ["lib_add", "lib_version"]
    assert _check_against_readelf(s, stripped, bias=0x40000000, tables=[".dynsym"]) == 2
    assert s.describe(0x40001008) == "lib_add+0x8"
    assert s.describe(0x40001009) is None                      # beyond its size


# ---- ELF: DWARF lines ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def debug_kernel(tmp_path_factory):
    """kernel.asm built with NASM's DWARF line information (names its build directory)."""
    pytest.importorskip("elftools", reason="pyelftools not installed (pip install pyelftools)")
    where = _build("kernel", tmp_path_factory.mktemp("dwarf"), {0: ["-g", "-F", "dwarf"]})
    return os.path.join(where, "kernel.elf")


@pytest.fixture(scope="module")
def cprog(tmp_path_factory):
    """cprog/ built with gcc -m32 -g -O0 (skipped when gcc cannot build 32-bit code here)."""
    pytest.importorskip("elftools", reason="pyelftools not installed (pip install pyelftools)")
    _need("gcc")
    where = str(tmp_path_factory.mktemp("cprog"))
    shutil.copytree(_path("cprog"), where, dirs_exist_ok=True)
    cmd = ["gcc", "-m32", "-g", "-O0", "-ffreestanding", "-fno-pic", "-no-pie", "-nostdlib",
           "-static", "-fno-asynchronous-unwind-tables", "-Wl,-Ttext=0x200000",
           "-Wl,--build-id=none", "-o", "prog.elf", "one.c", "sub/two.c"]
    r = subprocess.run(cmd, cwd=where, capture_output=True, text=True)
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"gcc -m32 cannot build here ({last}; Debian package gcc-multilib)")
    return os.path.join(where, "prog.elf")


def _addr2line(path: str, addrs: list[int]) -> list[tuple[str, int] | None]:
    _need("addr2line")
    out = _run(["addr2line", "-e", path] + [hex(a) for a in addrs], HERE).splitlines()
    assert len(out) == len(addrs)
    res = []
    for row in out:
        row = re.sub(r" \(discriminator \d+\)$", "", row)
        f, _, n = row.rpartition(":")
        res.append(None if f == "??" or n in ("?", "0") else (os.path.normpath(f), int(n)))
    return res


def _statement_rows(path: str) -> dict[tuple[str, int], set[int]]:
    """(base name, line) -> addresses of the statement rows, from objdump's decoded lines."""
    _need("objdump")
    out = _run(["objdump", "--dwarf=decodedline", path], HERE)
    rows: dict[tuple[str, int], set[int]] = {}
    for row in out.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s+(0x[0-9a-f]+)(?:\s+\d+)?\s+x$", row)
        if m:
            rows.setdefault((os.path.basename(m.group(1)), int(m.group(2))), set()).add(
                int(m.group(3), 16))
    assert rows
    return rows


def _text_range(t: SymbolTable) -> range:
    text = [s for s in t.sections() if s.name == ".text"][0]
    return range(text.address, text.address + text.size + 2)


def test_kernel_lines_against_addr2line(debug_kernel):
    t = _table(debug_kernel)
    addrs = list(_text_range(t))
    expected = _addr2line(debug_kernel, addrs)
    assert [t.line(a) for a in addrs] == expected
    full = os.path.join(os.path.dirname(debug_kernel), "kernel.asm")
    assert t.files() == [full]
    with open(full) as f:
        src = f.read().splitlines()
    n = next(i for i, ln in enumerate(src, 1) if ln.strip().startswith("call sum"))
    assert t.line(t.lookup("_start") + 0xC) == (full, n)       # push 4 (5), push table (5)
    assert t.line(0xC0100000) is None                          # the multiboot header: data


def test_kernel_address_of_line(debug_kernel):
    t = _table(debug_kernel)
    rows = _statement_rows(debug_kernel)
    full = os.path.join(os.path.dirname(debug_kernel), "kernel.asm")
    for (base, line), addrs in rows.items():
        assert t.addresses_of_line(base, line) == sorted(addrs)
        assert t.addresses_of_line(full, line) == sorted(addrs)
        assert t.address_of_line("kernel.asm", line) == min(addrs)
        assert _addr2line(debug_kernel, [min(addrs)]) == [(full, line)]
    with open(full) as f:
        src = f.read().splitlines()
    n = next(i for i, ln in enumerate(src, 1) if ln.startswith("sum:"))
    assert t.address_of_line("kernel.asm", n + 1) == t.lookup("sum")
    assert t.address_of_line("kernel.asm", 1) is None          # a comment
    assert t.address_of_line("other.asm", n + 1) is None
    assert t.address_of_line("/elsewhere/kernel.asm", n + 1) is None
    # With a bias, lines move with the code.
    b = _table(debug_kernel, bias=0x10000)
    assert b.line(t.lookup("sum") + 0x10000) == t.line(t.lookup("sum"))
    assert b.address_of_line("kernel.asm", n + 1) == t.lookup("sum") + 0x10000


def test_c_program(cprog):
    t = _table(cprog)
    assert _check_against_readelf(t, cprog) == len(_readelf_symbols(cprog)[".symtab"])
    helpers = sorted((s.unit, s.address) for s in t.symbols() if s.name == "helper")
    assert [u for u, _ in helpers] == ["one.c", "two.c"]
    with pytest.raises(KeyError, match=r"^helper: ambiguous: one\.c!helper at 0x[0-9a-f]+, "
                                       r"two\.c!helper at 0x[0-9a-f]+$"):
        t.lookup("helper")
    assert t.lookup("one!helper") == helpers[0][1] and t.lookup("two.c!helper") == helpers[1][1]
    assert t.lookup("compute") == t.symbol("compute").address      # global: not ambiguous
    addrs = list(_text_range(t))
    assert [t.line(a) for a in addrs] == _addr2line(cprog, addrs)
    where = os.path.dirname(cprog)
    two = os.path.join(where, "sub", "two.c")
    assert sorted(t.files()) == [os.path.join(where, "one.c"), two]
    rows = _statement_rows(cprog)
    for (base, line), addrs in rows.items():
        assert t.addresses_of_line(base, line) == sorted(addrs)
    with open(two) as f:
        n = next(i for i, ln in enumerate(f.read().splitlines(), 1) if "compute(5)" in ln)
    a = t.address_of_line("sub/two.c", n)                     # a trailing part of the path
    assert a is not None and a == t.address_of_line("two.c", n) == t.address_of_line(two, n)
    assert t.address_of_line("other/two.c", n) is None
    assert t.describe(a).startswith("_start+0x") and t.line(a) == (two, n)
    # nm agrees on values and sizes.
    _need("nm")
    for row in _run(["nm", "-S", "--defined-only", cprog], HERE).splitlines():
        parts = row.split()
        if len(parts) == 4:
            value, size, _, name = parts
            assert any(s.address == int(value, 16) and s.size == int(size, 16)
                       for s in t.symbols() if s.name == name), row


# ---- errors -------------------------------------------------------------------------------------
def _error(path: str) -> str:
    """The one-line message of loading ``path``, which must fail."""
    with pytest.raises(ValueError) as e:
        SymbolTable().load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(path + ":"), msg
    return msg


def test_map_errors(tmp_path):
    error = _error
    with open(_path("boot.asm"), "rb") as f:
        source = f.read()
    missing = str(tmp_path / "missing.map")
    assert error(missing) == f"{missing}: cannot read: No such file or directory"
    for name, data in (("empty.map", b""), ("text.map", b"hello\n"), ("junk.bin", b"\xff\xfe\x00"),
                       ("source.asm", source)):
        path = str(tmp_path / name)
        with open(path, "wb") as f:
            f.write(data)
        assert error(path) == f"{path}: not a NASM map file or an ELF file"
    assert error(str(tmp_path)).startswith(f"{tmp_path}: cannot read: ")
    # A map whose symbol line is damaged: the line is named.
    with open(_path("boot.map")) as f:
        lines = f.read().splitlines()
    no = next(i for i, ln in enumerate(lines) if ln.endswith("  print"))
    lines[no] = lines[no].replace("7C17", "7G17")
    bad = str(tmp_path / "bad.map")
    with open(bad, "w") as f:
        f.write("\n".join(lines) + "\n")
    assert error(bad) == f"{bad}:{no + 1}: malformed NASM map symbol line: " \
                         f"{lines[no].strip()!r}"


def test_truncated_elf(tmp_path, elftools):
    with open(_path("kernel.elf"), "rb") as f:
        elf = f.read()
    for cut in (16, 52, 0x1000, len(elf) - 200):
        path = str(tmp_path / f"cut{cut}.elf")
        with open(path, "wb") as f:
            f.write(elf[:cut])
        assert _error(path).startswith(f"{path}: malformed ELF file: ")


def test_elf_without_symbols(tmp_path, elftools):
    _need("strip")
    path = str(tmp_path / "stripped.elf")
    _run(["strip", "-o", path, _path("kernel.elf")], HERE)
    with pytest.raises(ValueError) as e:
        SymbolTable().load(path)
    assert str(e.value) == f"{path}: no symbol table"


def test_relocatable_object(tmp_path, elftools):
    where = _build("kernel", tmp_path)
    path = os.path.join(where, "kernel.o")
    with pytest.raises(ValueError) as e:
        SymbolTable().load(path)
    assert str(e.value) == (f"{path}: relocatable object file: its symbols have no addresses "
                            "until it is linked")


def test_corrupt_elf_files(elftools):
    """Damaged ELF files load or give one line; never another exception."""
    with open(_path("kernel.elf"), "rb") as f:
        elf = f.read()
    rnd = random.Random(2026)
    for i in range(300):
        data = bytearray(elf)
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if i % 4 == 0:
            del data[rnd.randrange(len(data)):]
        try:
            SymbolTable().load_elf(bytes(data), "x.elf")
        except ValueError as e:
            assert str(e).startswith("x.elf: ") and "\n" not in str(e)


def test_corrupt_dwarf(debug_kernel, tmp_path):
    """Damaged line information is reported as such (the symbols were fine)."""
    with open(debug_kernel, "rb") as f:
        data = bytearray(f.read())
    from elftools.elf.elffile import ELFFile
    with open(debug_kernel, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".debug_line")
        off = sec["sh_offset"]
    data[off:off + 4] = b"\xff\xff\xff\x7f"                   # unit length far beyond the end
    path = str(tmp_path / "bad-dwarf.elf")
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(ValueError, match=r"bad-dwarf\.elf: malformed DWARF line information: "):
        SymbolTable().load(path)


# ---- committed artefacts ------------------------------------------------------------------------
@pytest.mark.parametrize("guest", sorted(BUILDS))
def test_rebuild(guest, tmp_path):
    where = _build(guest, tmp_path)
    for out in BUILDS[guest][2]:
        with open(os.path.join(where, out), "rb") as f:
            built = f.read()
        with open(_path(out), "rb") as f:
            committed = f.read()
        assert built == committed, (f"tests/debug/symbols/{out} is stale: rebuild it with "
                                    + " && ".join(" ".join(c) for c in BUILDS[guest][1]))


def test_every_guest_listed():
    sources = sorted(f for f in os.listdir(HERE) if f.endswith(".asm"))
    assert sources == sorted(BUILDS[g][0][0] for g in BUILDS)
