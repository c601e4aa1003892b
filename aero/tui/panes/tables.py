"""The descriptor tables pane: the GDT and the LDT (left) and the IDT, or the IVT in real mode
(right), decoded by ``aero.debug.inspect`` (``gdt``, ``ldt``, ``interrupt_table``).  Empty GDT,
LDT and IDT entries are left out (the title gives the count); a table is rebuilt only when its
rows changed.
"""

from __future__ import annotations

from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label

from ...debug import inspect as I
from . import set_label

DESC_COLUMNS = ("idx", "sel", "type", "base / target", "limit", "dpl", "P", "bits")
IDT_COLUMNS = ("vec", "type", "dpl", "P", "target")
IVT_COLUMNS = ("vec", "seg:off", "linear")


def descriptor_rows(rows: list) -> list[tuple]:
    """GDT/LDT ``Descriptor`` rows as table cells (empty entries left out)."""
    out = []
    for d in rows:
        if d.type == "empty":
            continue
        if d.raw is None or d.type == "null":
            out.append((str(d.index), f"{d.selector:04x}", d.type, "", "", "", "", ""))
            continue
        where = "" if d.base is None else f"{d.base:08x}"
        if d.is_gate:
            where = "-> " + f"{d.gate_selector:04x}" + \
                ("" if d.offset is None else f":{d.offset:08x}")
            if d.params:
                where += f" ({d.params} params)"
        out.append((str(d.index), f"{d.selector:04x}", d.type, where,
                    "" if d.limit is None else f"{d.limit:08x}", str(d.dpl),
                    "P" if d.present else "-", "" if d.bits is None else str(d.bits)))
    return out


def interrupt_rows(rows: list) -> tuple[tuple, list[tuple]]:
    """(columns, cells) for IDT ``Descriptor`` rows or IVT ``IVTEntry`` rows."""
    if rows and isinstance(rows[0], I.IVTEntry):
        return IVT_COLUMNS, [(f"{e.vector:02x}",
                              "unreadable" if e.segment is None
                              else f"{e.segment:04x}:{e.offset:04x}",
                              "" if e.linear is None else f"{e.linear:05x}") for e in rows]
    cells = []
    for d in rows:
        if d.type == "empty":
            continue
        if d.raw is None:
            cells.append((f"{d.index:02x}", "unreadable", "", "", ""))
            continue
        target = "(not a gate)"
        if d.is_gate:
            target = f"{d.gate_selector:04x}" + ("" if d.offset is None else f":{d.offset:08x}")
        cells.append((f"{d.index:02x}", d.type, str(d.dpl), "P" if d.present else "-", target))
    return IDT_COLUMNS, cells


class TablesPane(Horizontal):
    """GDT, LDT and IDT/IVT (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    RUNNING_REFRESH = 1.0          # seconds between refreshes while the guest runs

    def __init__(self, **kw):
        super().__init__(**kw)
        self._shown: dict = {}

    def compose(self):
        with Vertical(id="tables-left"):
            yield Label("GDT", id="gdt-title", classes="table-title")
            yield DataTable(id="gdt", cursor_type="row", zebra_stripes=True)
            yield Label("LDT", id="ldt-title", classes="table-title")
            yield DataTable(id="ldt", cursor_type="row", zebra_stripes=True)
        with Vertical(id="tables-right"):
            yield Label("IDT", id="idt-title", classes="table-title")
            yield DataTable(id="idt", cursor_type="row", zebra_stripes=True)

    def _fill(self, name: str, columns: tuple, cells: list[tuple]) -> None:
        if self._shown.get(name) == (columns, cells):
            return
        self._shown[name] = (columns, cells)
        table = self.query_one(f"#{name}", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)
        table.add_rows(cells)

    def update_from(self, session, running: bool) -> None:
        m = session.m
        cpu = m.cpu
        try:
            gdt, ldt, ints = I.gdt(m), I.ldt(m), I.interrupt_table(m)
        except Exception:
            if running:
                return
            raise
        base, limit = cpu.gdtr
        cells = descriptor_rows(gdt)
        empty = len(gdt) - len(cells)
        set_label(self.query_one("#gdt-title", Label), 
            f"GDT  {base:08x} limit {limit:04x}  {len(gdt)} entries"
            + (f", {empty} empty hidden" if empty else "")
            + ("  (real mode: not in use)" if not cpu.cr0 & 1 else ""))
        self._fill("gdt", DESC_COLUMNS, cells)
        lsel = cpu.ldtr[0]
        set_label(self.query_one("#ldt-title", Label), 
            f"LDT  selector {lsel:04x}  {len(ldt)} entries" if ldt else
            f"LDT  none (LDTR {lsel:04x})")
        self._fill("ldt", DESC_COLUMNS, descriptor_rows(ldt))
        columns, cells = interrupt_rows(ints)
        base, limit = cpu.idtr
        kind = "IVT (real mode)" if columns is IVT_COLUMNS else "IDT"
        empty = len(ints) - len(cells)
        set_label(self.query_one("#idt-title", Label), 
            f"{kind}  {base:08x} limit {limit:04x}  {len(ints)} vectors"
            + (f", {empty} empty hidden" if empty else ""))
        self._fill("idt", columns, cells)
