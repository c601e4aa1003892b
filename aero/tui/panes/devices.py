"""The devices pane: every device's ``summary()`` (``aero.debug.inspect.devices``: PIC, PIT,
RTC/CMOS, the UARTs, the i8042, DMA, FDC, IDE, VGA, the PCI functions, ...) in a grid of boxes,
one per device.  A box is redrawn only when its text changed; while the guest runs, a summary
that fails to read (torn state) keeps its previous text.
"""

from __future__ import annotations

from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from ...debug import inspect as I


def section_text(sec: I.DeviceSection) -> str:
    """A device's rows as aligned ``key  value`` lines."""
    w = max((len(str(k)) for k, _ in sec.rows), default=0)
    return "\n".join(f"{str(k).ljust(w)}  {v}" for k, v in sec.rows) or "(no state)"


class DevicesPane(VerticalScroll):
    """Device summaries (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__(**kw)
        self._text: dict[str, str] = {}

    def compose(self):
        yield Grid(id="devices-grid")

    def update_from(self, session, running: bool) -> None:
        try:
            sections = I.devices(session.m)
        except Exception:
            if running:
                return
            raise
        grid = self.query_one("#devices-grid", Grid)
        new = []
        for sec in sections:
            text = section_text(sec)
            if running and sec.rows and sec.rows[0][0] == "error":
                continue                    # a torn read: keep what is shown
            wid = f"device-{sec.key}"
            if sec.key not in self._text:
                box = Static(text, id=wid, classes="device", markup=False)
                box.border_title = sec.name
                new.append(box)
            elif self._text[sec.key] != text:
                self.query_one(f"#{wid}", Static).update(text)
            self._text[sec.key] = text
        if new:
            grid.mount_all(new)
