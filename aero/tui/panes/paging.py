"""The paging pane: the page-table walk of an address (``aero.debug.inspect.walk``: each level's
entry, its flags, the physical address or where the walk stops), the mapped address space in
runs (``address_space``), and the TLB's entries (``tlb``), each checked against the page tables
now, stale ones flagged in red with what differs.

The address is an expression re-evaluated at each refresh (default ``cs:eip``: the page of the
current instruction).
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static

from ...debug import inspect as I
from . import set_label
from ...debug.debugger import DebugError

DEFAULT_EXPR = "cs:eip"
TLB_COLUMNS = ("linear", "physical", "bits", "now")


def tlb_cells(rows: list) -> list[tuple]:
    """TLB rows as table cells; stale entries red, with their reasons."""
    out = []
    for r in rows:
        now = ""
        if r.stale:
            now = "STALE: " + ", ".join(r.reasons)
            if r.now_physical is not None:
                now += f" (now {r.now_physical:09x} {r.now_bits})"
        style = "bold red" if r.stale else ""
        out.append(tuple(Text(c, style=style) for c in
                         (f"{r.linear:08x}", f"{r.physical:09x}", r.bits, now)))
    return out


class PagingPane(Horizontal):
    """Walk, address space and TLB (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    RUNNING_REFRESH = 1.0          # seconds between refreshes while the guest runs

    def __init__(self, **kw):
        super().__init__(**kw)
        self.expr = DEFAULT_EXPR
        self._tlb_shown = None

    def compose(self):
        with Vertical(id="paging-left"):
            yield Input(DEFAULT_EXPR, placeholder="linear address (expression)",
                        id="paging-address", compact=True)
            with VerticalScroll(id="paging-text"):
                yield Static("", id="paging-walk")
                yield Static("", id="paging-map")
        with Vertical(id="paging-right"):
            yield Label("TLB", id="tlb-title", classes="table-title")
            yield DataTable(id="tlb", cursor_type="row", zebra_stripes=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.expr = event.value.strip() or DEFAULT_EXPR
        session = getattr(self.app, "session", None)
        if session is not None:
            self.update_from(session, session.running)

    def update_from(self, session, running: bool) -> None:
        m = session.m
        try:
            addr = session.dbg.address(self.expr)
            walk = I.format_walk(I.walk(m, addr))
        except DebugError as e:
            walk = f"{self.expr}: {e}"
        except Exception:
            if running:
                return
            raise
        try:
            space = I.format_address_space(I.address_space(m, max_runs=64))
            rows = I.tlb(m)
        except Exception:
            if running:
                return
            raise
        set_label(self.query_one("#paging-walk", Static), Text(walk))
        set_label(self.query_one("#paging-map", Static), Text("\n" + space))
        stale = sum(r.stale for r in rows)
        set_label(self.query_one("#tlb-title", Label), 
            f"TLB  {len(rows)} entries, {stale} stale" if rows else "TLB  empty")
        cells = tlb_cells(rows)
        key = [tuple(c.plain for c in row) for row in cells]
        if key != self._tlb_shown:
            self._tlb_shown = key
            table = self.query_one("#tlb", DataTable)
            table.clear(columns=True)
            table.add_columns(*TLB_COLUMNS)
            table.add_rows(cells)
