"""The status bar: the machine's state (paused, running, ended, time travelling), the
instruction count, the current instruction's address and symbol, the CPU mode, the last stop,
the event log and the display.  While the guest runs it also shows guest MIPS measured between
refreshes (never in a paused screen, so snapshots stay free of wall-clock figures).

With a recording, ``REC`` (recording now) or ``REPLAY`` (a recording file) and the position in
it, ``rec N / HEAD``, replace the instruction count; a stop at the start or the end of the
recording says so in a badge of its own.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from . import show_text

EDGES = {"start": " START OF RECORDING ", "end": " END OF RECORDING "}


def mode_text(cpu) -> str:
    """"real", "v86", "protected 32-bit", with ", paging" (", PAE") when paging is on."""
    if not cpu.cr0 & 1:
        mode = "real" + (" (32-bit code)" if cpu.code32 else "")
    elif cpu.flags & 0x20000:
        mode = "v86"
    else:
        mode = f"protected {'32' if cpu.code32 else '16'}-bit"
    if cpu.mmu.paging:
        mode += ", paging" + (" (PAE)" if cpu.mmu.pae else "")
    return mode


class StatusBar(Static):
    """One line of state (see the module docstring)."""

    def __init__(self, **kw):
        super().__init__("", **kw)
        self._rate_from = None          # (wall time, icount) at the previous running refresh
        self.display_note = ""

    def update_from(self, session, running: bool) -> None:
        dbg = session.dbg
        cpu = session.m.cpu
        t = Text(no_wrap=True, overflow="ellipsis")
        travel = session.travel
        travelling = running and travel.busy_travelling
        if travelling:
            t.append(" TRAVELLING ", "bold white on dark_blue")
        elif running:
            t.append(" RUNNING ", "bold white on dark_green")
        elif session.ended is not None:
            t.append(" ENDED ", "bold white on dark_red")
        else:
            t.append(" PAUSED ", "bold black on yellow")
        r = travel.recording()
        if r is not None and r.kind != "stopped":
            t.append(" ")
            if r.kind == "live":
                t.append(" REC ", "bold white on red")
            else:
                t.append(" REPLAY ", "bold white on dark_blue")
            t.append(f" rec {r.at:,} / {r.head:,}", "bold")
            stop = session.last_stop
            if not running and stop is not None and stop.reason in EDGES and \
                    stop.icount == cpu.icount:
                t.append(" ")
                t.append(EDGES[stop.reason], "bold black on cyan")
        else:
            t.append(f" icount {cpu.icount:,}", "bold")
        if travelling:
            job = session.runner.current
            t.append(f"  {job.label if job is not None else ''}", "cyan")
        elif running:
            now = (time.monotonic(), cpu.icount)
            if self._rate_from is not None and now[0] > self._rate_from[0]:
                mips = (now[1] - self._rate_from[1]) / (now[0] - self._rate_from[0]) / 1e6
                t.append(f"  {mips:.2f} MIPS")
            self._rate_from = now
        else:
            self._rate_from = None
        t.append("  " + dbg.format_addr(dbg.pc()), "cyan")
        t.append(f"  {mode_text(cpu)}")
        if session.events_on:
            t.append("  events on", "magenta")
        if self.display_note:
            t.append(f"  {self.display_note}", "grey50")
        stop = session.last_stop
        if stop is not None and not running and stop.message and \
                not (stop.reason == "step" and not stop.message.startswith("Run till")):
            t.append("  │ " + stop.message.splitlines()[0], "yellow")
        show_text(self, t)
