"""Guest debug registers: DR0-DR3 breakpoints under DR7 (SDM Vol. 3, 17.2-17.3), built on the
same mechanisms as host hooks, so that they cost nothing where they do not apply.

* An enabled execute breakpoint (R/W = 00) is an execution point (``aero.cpu.hookpoints``) at
  its linear address: only the block holding that address is decoded with it.  Before the
  instruction runs it raises a #DB fault, with the matching B0-B3 bits in DR6, unless EFLAGS.RF
  is set (RF suppresses it for that one instruction; the run loop clears RF when an instruction
  completes).
* An enabled data breakpoint (R/W = 01 write, 11 read or write; LEN 1, 2, 4 or 8 bytes, the
  address aligned down to the length) is a linear memory watch (``aero.mem.watch``): only
  accesses to its page take the slow path.  An access overlapping it sets its bit in
  ``cpu.dbg_hits`` and asks the running block to stop after the instruction; the run loop then
  delivers the #DB trap (together with DR6.BS when EFLAGS.TF also traps).

``update`` reinstalls them whenever DR0-DR3 or DR7 change (``CPU.dr_changed``: MOV DRn, the
debugger, a state restore).  I/O breakpoints (R/W = 10 with CR4.DE) and the TSS T-bit trap are
not modelled.  DR7.GD is handled by the MOV DRn templates (aero/cpu/sem/system.py).
"""

from __future__ import annotations

from ..faults import CPUFault, DB
from ..mem.watch import Watch
from .flags import RF
from .hookpoints import ExecPoint

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
        out.append((i, kind, start, min(start + n, 1 << 32)))
    return out


class GuestBreakpoints:
    """The guest's DR0-DR3 breakpoints as installed execution points and watches."""

    def __init__(self, cpu):
        self.cpu = cpu
        self.active: list = []              # breakpoints() as installed
        self._points: list = []
        self._watches: list = []

    def update(self) -> None:
        cpu = self.cpu
        bps = breakpoints(cpu.dr[7], cpu.dr)
        if bps == self.active:
            return
        for pt in self._points:
            cpu.remove_exec_point(pt)
        for w in self._watches:
            cpu.watches.remove(w)
        self._points, self._watches = [], []
        self.active = bps
        execs: dict[int, int] = {}
        for i, kind, start, end in bps:
            if kind == 0:
                execs[start] = execs.get(start, 0) | (1 << i)
            else:
                w = Watch(start, end, kind == 3, True, True, _data_hit(cpu, 1 << i))
                cpu.watches.add(w)
                self._watches.append(w)
        for addr, bits in sorted(execs.items()):
            pt = ExecPoint(_exec_hit(bits), addr, addr + 1, guest=True)
            cpu.add_exec_point(pt)
            self._points.append(pt)


def _exec_hit(bits: int):
    def fire(cpu, lin, phys):
        if not cpu.flags & RF:                            # instruction breakpoint: a fault
            cpu.dr[6] = (cpu.dr[6] & ~0xF) | bits
            raise CPUFault(DB)
    return fire


def _data_hit(cpu, bit: int):
    def hit(watch, addr, size, old, new, write):
        cpu.dbg_hits |= bit
        cpu.rep_break = True
        cpu.request_exit()
    return hit
