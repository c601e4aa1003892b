"""Guest debug registers: DR0-DR3 breakpoints under DR7 (SDM Vol. 3, 17.2).

Nothing here costs anything while DR7 enables no breakpoint.  When it does, the run loop executes
one instruction at a time (``CPU._step_one``) and:

* before an instruction, an enabled execute breakpoint (R/W = 00) whose address equals the
  instruction's linear address raises a #DB fault, unless EFLAGS.RF is set (RF suppresses it for
  that one instruction and is cleared when an instruction completes);
* memory accesses go through watching accessors that note data breakpoints (R/W = 01 write,
  11 read or write; LEN 1, 2 or 4 bytes, the address aligned down to the length); when the
  instruction completes, a #DB trap is delivered with the matching B0-B3 bits in DR6
  (together with BS when EFLAGS.TF also traps).

I/O breakpoints (R/W = 10 with CR4.DE) and the TSS T-bit trap are not modelled.
DR7.GD is handled by the MOV DRn templates (aero/cpu/sem/system.py).
"""

from __future__ import annotations

LEN_BYTES = {0: 1, 1: 2, 2: 8, 3: 4}


def breakpoints(dr7: int, dr: list) -> list:
    """Enabled breakpoints as (index, kind, start, end) with kind 0 exec, 1 write, 3 rw."""
    out = []
    for i in range(4):
        if not (dr7 >> (2 * i)) & 3:
            continue
        kind = (dr7 >> (16 + 4 * i)) & 3
        if kind == 2:                                   # I/O breakpoints: not modelled
            continue
        n = 1 if kind == 0 else LEN_BYTES[(dr7 >> (18 + 4 * i)) & 3]
        start = dr[i] & ~(n - 1) & 0xFFFFFFFF
        out.append((i, kind, start, start + n))
    return out


def exec_hits(bps: list, lin: int) -> int:
    hits = 0
    for i, kind, start, _ in bps:
        if kind == 0 and lin == start:
            hits |= 1 << i
    return hits


def watch(cpu, access, size: int, write: bool):
    """Wrap a linear-address accessor (read: ``f(lin)``, write: ``f(lin, value)``) so that
    accesses overlapping a data breakpoint set its bit in ``cpu.dbg_hits``."""
    data = [(1 << i, start, end) for i, kind, start, end in cpu.dbg_bps
            if kind == 3 or (kind == 1 and write)]
    if not data:
        return access

    def watched(lin, *value):
        for bit, start, end in data:
            if lin < end and lin + size > start:
                cpu.dbg_hits |= bit
        return access(lin, *value)
    return watched
