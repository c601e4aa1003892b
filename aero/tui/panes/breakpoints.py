"""The breakpoints pane: every breakpoint, watchpoint and catch of the debugger, with its state,
condition and hit count; space enables or disables the selected one, Delete deletes it, Enter
shows a breakpoint's address in the disassembly.  Changes go through the session (at once when
the guest is stopped, injected into a continue otherwise).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label

COLUMNS = ("id", "type", "on", "where / what", "condition", "hits", "ignore")


class BreakpointsPane(Vertical):
    """The points list (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    BINDINGS = [
        Binding("space", "toggle", "Enable/disable"),
        Binding("delete", "delete", "Delete"),
        Binding("d", "delete", "Delete", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self._shown = None
        self._rows = []

    def compose(self):
        yield DataTable(id="breakpoints-table", cursor_type="row", zebra_stripes=True)
        yield Label("space: enable/disable   delete: delete   enter: show in the disassembly   "
                    "(or the commands break, watch, catch, delete, condition)",
                    id="breakpoints-help")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)

    def update_from(self, session, running: bool) -> None:
        rows = session.breakpoints()
        cells = [(str(r.id), r.kind + (" (temp)" if r.temporary else ""),
                  "y" if r.enabled else "n", r.what, r.condition or "", str(r.hits),
                  str(r.ignore) if r.ignore else "") for r in rows]
        if cells == self._shown:
            return
        self._shown = cells
        self._rows = rows
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for r, c in zip(rows, cells):
            table.add_row(*c, key=str(r.id))
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))

    def _selected(self):
        table = self.query_one(DataTable)
        if not self._rows or table.cursor_row is None or \
                not 0 <= table.cursor_row < len(self._rows):
            return None
        return self._rows[table.cursor_row]

    def action_toggle(self) -> None:
        row = self._selected()
        if row is not None:
            self.app.point_outcome(self.app.session.enable_point(row.id, not row.enabled))

    def action_delete(self) -> None:
        row = self._selected()
        if row is not None:
            self.app.point_outcome(self.app.session.delete_point(row.id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._selected()
        if row is not None and row.address is not None and not row.physical:
            self.app.show_code(row.address)
