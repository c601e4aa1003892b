"""What the JIT did: the summary of ``aero run --jit-stats`` and the table of ``aero jit``.

``units(jit)`` is the inspection API the TUI and scripts use: one ``UnitInfo`` per unit made,
with its guest address ranges, size, executions, instructions run translated, compile time,
whether it was invalidated, its generated Python source and its guest disassembly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cpu.disasm import disasm


@dataclass
class UnitInfo:
    entry: int                  # linear address of the entry block
    ranges: list                # [(linear start, linear end)] of its blocks, merged
    blocks: int
    instructions: int
    execs: int
    retired: int                # instructions it ran as translated code
    compile_ms: float
    live: bool                  # False once invalidated (code written, paging changed, ...)
    unit: object

    @property
    def source(self) -> str:
        return self.unit.source

    def disassembly(self) -> list[str]:
        """The guest instructions, block by block (``EIP  text``)."""
        out = []
        for b in self.unit.blocks:
            for eip, ins in zip(b.eips, b.insns):
                out.append(f"{eip:08x}  {disasm(ins)}")
            out.append("")
        return out[:-1]


def _ranges(unit) -> list:
    spans = sorted((b.lin, b.lin_end) for b in unit.blocks)
    out = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def units(jit) -> list[UnitInfo]:
    """Every unit the JIT made, hottest (most instructions run) first."""
    infos = [UnitInfo(u.block.lin, _ranges(u), len(u.blocks), len(u.insns), u.execs,
                      u.retired, u.compile_s * 1e3, u.gen >= 0, u) for u in jit.units]
    infos.sort(key=lambda i: -i.retired)
    return infos


def summary(jit, icount: int) -> str:
    """One paragraph: units, compiles, invalidations, the share of instructions run translated."""
    if jit is None:
        return "jit: off"
    made = len(jit.units)
    live = sum(1 for u in jit.units if u.gen >= 0)
    retired = sum(u.retired for u in jit.units)
    share = 100.0 * retired / icount if icount else 0.0
    text = (f"jit: {made} units compiled ({live} live, {made - live} invalidated), "
            f"{jit.compile_s * 1e3:.0f} ms compiling; {retired:,} of {icount:,} instructions "
            f"({share:.1f}%) ran translated; threshold {jit.threshold}")
    if jit.failures:
        text += f"; {len(jit.failures)} blocks could not be translated (first: {jit.failures[0]})"
    return text


def table(jit, top: int = 20, symbols=None) -> str:
    """The ``top`` hottest units, a line each."""
    rows = [f"{'entry':>10} {'ranges':30} {'blocks':>6} {'insns':>6} {'runs':>9} "
            f"{'instructions':>13} {'compile':>8}  state"]
    for i in units(jit)[:top]:
        where = " ".join(f"{lo:x}-{hi:x}" for lo, hi in i.ranges)
        if len(where) > 30:
            where = where[:27] + "..."
        name = ""
        sym = symbols.symbol_at(i.entry) if symbols is not None else None
        if sym is not None:
            off = i.entry - sym.address
            name = sym.name + (f"+{off:#x}" if off else "")
        rows.append(f"{i.entry:10x} {where:30} {i.blocks:6} {i.instructions:6} {i.execs:9,} "
                    f"{i.retired:13,} {i.compile_ms:6.1f}ms  "
                    f"{'live' if i.live else 'invalidated'}{'  ' + name if name else ''}")
    return "\n".join(rows)
