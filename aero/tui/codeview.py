"""Disassembly around an address for the TUI, with capstone.

The code size follows the CPU: 32-bit when the CS cache's D bit is set and the CPU is not in
virtual-8086 mode (``CPU.code32``), else 16-bit.  Capstone is given the instruction's offset in
CS (EIP), so relative branch targets read as CS offsets, as the CPU's own disassembler writes
them; a branch target is then named by the symbol covering CS base + target.

Disassembling *backwards* from an address is ambiguous on x86 (instructions have no fixed
length).  ``before(addr, n)`` finds the ``n`` instructions that end exactly at ``addr`` from a
start that is known to be an instruction boundary, nearest-but-farthest first:

1. boundaries the view has seen executed (``note``: every address the TUI stopped at, and
   the addresses before and after each step), instruction starts of the blocks in the CPU's
   code cache (decoded because they ran), and the starts of symbols;
2. failing those, a guess: each start in the 64 bytes before ``addr`` is decoded forwards and
   the one giving the longest run of valid instructions that lands exactly on ``addr`` wins
   (x86 code resynchronises within a few instructions, so most starts agree).  Guessed lines are
   flagged (``Line.sure`` is False) and the pane dims them.

The pane keeps its previous view while the current instruction stays inside it, so lines above
EIP that were right stay right; it re-anchors (a few lines above EIP, found as above) only when
EIP leaves the view.  Bytes are read without side effects (``Debugger.read``); unreadable memory
gives a line of its own.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

import capstone

MAX_INSN = 15
GUESS_WINDOW = 64
_BRANCH = re.compile(r"^(j\w+|call|loop\w*|jcxz|jecxz)$")
_HEX = re.compile(r"^0x[0-9a-f]+$")


@dataclass(frozen=True)
class Line:
    """One disassembled instruction."""
    address: int            # linear
    length: int             # 0: unreadable (one line, then the view stops)
    raw: bytes
    text: str               # "mov ax, 0x10", "call 0x7c20 <print>"
    label: str | None       # a symbol starting exactly here
    sure: bool = True       # decoded from a known instruction boundary

    def next_address(self, base: int, code32: bool) -> int:
        """Where the next instruction starts: EIP wraps at 64 KiB in 16-bit code."""
        mask = 0xFFFFFFFF if code32 else 0xFFFF
        return (base + ((self.address - base + max(1, self.length)) & mask)) & 0xFFFFFFFF


class CodeView:
    """Disassembly of a machine's code as ``Line``s (see the module docstring)."""

    def __init__(self, debugger, history: int = 4096):
        self.dbg = debugger
        self.cpu = debugger.cpu
        self._cs = {}
        for bits, mode in ((16, capstone.CS_MODE_16), (32, capstone.CS_MODE_32)):
            cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
            cs.detail = False
            self._cs[bits] = cs
        self._history: collections.deque = collections.deque(maxlen=history)
        self._cache: dict = {}

    # -- what is known ---------------------------------------------------------------------------
    def note(self, address: int) -> None:
        """Record an address where an instruction starts (one that ran or is about to)."""
        self._history.append(address & 0xFFFFFFFF)

    def is_known(self, address: int) -> bool:
        """Whether ``address`` was seen executed (``note``)."""
        return address in self._history

    def context(self) -> tuple[int, bool]:
        """(CS base, 32-bit code) now."""
        return self.cpu.base[1], bool(self.cpu.code32)

    def known_boundaries(self, lo: int, hi: int) -> set:
        """Known instruction starts in [lo, hi): history, code-cache blocks, symbols."""
        out = {a for a in list(self._history) if lo <= a < hi}
        base, code32 = self.context()
        cache = getattr(self.cpu, "cache", None)
        blocks = getattr(cache, "blocks", None)
        if blocks:
            for blk in list(blocks.values()):
                try:
                    if blk.lin >= hi or blk.lin_end <= lo:
                        continue
                    key = blk.key[1]
                    if key >> 33 != base or bool(key & 1) != code32:
                        continue
                    for e in blk.eips:
                        a = (base + e) & 0xFFFFFFFF
                        if lo <= a < hi:
                            out.add(a)
                except (AttributeError, IndexError, TypeError):
                    continue            # a block of another kind (the JIT's): skip it
        sym = self.dbg.symbols.nearest(hi - 1) if hi > lo else None
        if sym is not None and lo <= sym[1] < hi:
            out.add(sym[1])
        return out

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, address: int, sure: bool = True) -> Line:
        """The instruction at a linear address (in the current CS and code size)."""
        address &= 0xFFFFFFFF
        base, code32 = self.context()
        read = self.dbg.read
        code = read(address, MAX_INSN)
        n = MAX_INSN
        while code is None and n > 1:          # the end of a readable range
            n -= 1
            code = read(address, n)
        label = self._label(address)
        if code is None:
            return Line(address, 0, b"", "(unreadable)", label, sure)
        key = (address, base, code32, code)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._disasm(code, address, base, code32)
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache[key] = hit
        length, text = hit
        return Line(address, length, code[:length], text, label, sure)

    def _disasm(self, code: bytes, address: int, base: int, code32: bool) -> tuple[int, str]:
        mask = 0xFFFFFFFF if code32 else 0xFFFF
        eip = (address - base) & mask
        for _, size, mnem, ops in self._cs[32 if code32 else 16].disasm_lite(code, eip, 1):
            return size, self._symbolize(mnem, ops, base)
        return 1, f"(bad) db {code[0]:#04x}"

    def _symbolize(self, mnem: str, ops: str, base: int) -> str:
        text = f"{mnem} {ops}" if ops else mnem
        if _BRANCH.match(mnem) and _HEX.match(ops):
            name = self.dbg.symbols.describe((base + int(ops, 16)) & 0xFFFFFFFF)
            if name:
                text += f" <{name}>"
        return text

    def _label(self, address: int) -> str | None:
        sym = self.dbg.symbols.nearest(address)
        if sym is not None and sym[1] == address:
            return sym[0]
        return None

    def forward(self, address: int, count: int, sure: bool = True) -> list[Line]:
        """``count`` instructions from ``address`` (fewer where memory becomes unreadable)."""
        out = []
        a = address & 0xFFFFFFFF
        base, code32 = self.context()
        for _ in range(max(0, count)):
            line = self.decode(a, sure)
            out.append(line)
            if line.length == 0:
                break
            a = line.next_address(base, code32)
        return out

    def _chain(self, start: int, target: int) -> list[Line] | None:
        """Instructions from ``start`` that end exactly at ``target``, or None."""
        out = []
        a = start
        while a < target:
            line = self.decode(a)
            if line.length == 0 or line.text.startswith("(bad)"):
                return None
            out.append(line)
            a = line.address + line.length
        return out if a == target else None

    def before(self, address: int, count: int) -> list[Line]:
        """Up to ``count`` instructions ending exactly at ``address`` (see the module
        docstring); lines found by guessing have ``sure`` False."""
        address &= 0xFFFFFFFF
        if count <= 0:
            return []
        lo = max(0, address - MAX_INSN * count)
        for start in sorted(self.known_boundaries(lo, address)):
            chain = self._chain(start, address)
            if chain:
                return chain[-count:]
        best: list[Line] = []
        for start in range(max(0, address - GUESS_WINDOW), address):
            chain = self._chain(start, address)
            if chain and len(chain) > len(best):
                best = chain
        return [Line(x.address, x.length, x.raw, x.text, x.label, False)
                for x in best[-count:]]

    def around(self, address: int, rows: int, above: int) -> list[Line]:
        """``rows`` lines: up to ``above`` before ``address``, then from ``address`` on."""
        prev = self.before(address, min(above, max(0, rows - 1)))
        return prev + self.forward(address, rows - len(prev))
