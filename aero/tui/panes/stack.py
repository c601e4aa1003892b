"""The stack pane: slots from SS:ESP upwards (dwords with SS.B set, else words at SS:SP), each
as its offset from ESP (``+08``) and value, with ESP/EBP markers, the symbol a value names (a
return address, a function pointer), and values changed since the last stop highlighted; the
border gives SS:ESP's linear address.  Data from ``aero.debug.inspect.stack``.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...debug import inspect as I
from . import Baseline, show_text

CHANGED = "bold black on yellow"


class StackPane(Static):
    """The stack (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.border_title = "Stack"
        self._baseline = Baseline()

    def update_from(self, session, running: bool) -> None:
        rows = max(1, self.content_size.height or 12)
        try:
            slots = I.stack(session.m, rows)
        except Exception:
            if running:
                return
            raise
        now = {s.address: s.value for s in slots}
        ref = self._baseline.reference(session, running, now) or {}
        symbols = session.dbg.symbols
        t = Text(no_wrap=True, overflow="ellipsis")
        for i, s in enumerate(slots):
            digits = 2 * s.size
            t.append(f"+{i * s.size:02x} ", "cyan")
            if s.value is None:
                t.append("?" * digits, "red")
            else:
                style = CHANGED if ref.get(s.address, s.value) != s.value else ""
                t.append(f"{s.value:0{digits}x}", style)
                name = symbols.describe(s.value) if s.value >= 0x100 else None
                if name:
                    t.append(f" <{name}>", "green")
            if s.marks:
                t.append(" ← " + ",".join(s.marks), "bold magenta")
            if i + 1 < len(slots):
                t.append("\n")
        if slots:
            self.border_subtitle = f"{slots[0].address:08x} {8 * slots[0].size}-bit"
        show_text(self, t)
