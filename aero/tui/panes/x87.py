"""The x87 pane: what ``info float`` prints (``aero.debug.fpuview``): the physical registers
R7..R0 with their tags, raw images and values (TOP marked ``=>``), the status, control and tag
words decoded, the last instruction and operand pointers, CR0's x87 bits and a pending unmasked
exception.  Lines that changed since the last stop are highlighted, as in the registers pane.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...debug.fpuview import format_fpu, fpu_state
from . import Baseline, show_text

CHANGED = "bold black on yellow"


def render_fpu(lines: list, ref: list | None) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, ln in enumerate(lines):
        changed = ref is not None and (i >= len(ref) or ref[i] != ln)
        t.append(ln, CHANGED if changed and ln else "")
        t.append("\n")
    return t


class FpuPane(Static):
    """The x87 (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.border_title = "x87 FPU"
        self._baseline = Baseline()

    def update_from(self, session, running: bool) -> None:
        try:
            lines = format_fpu(fpu_state(session.m.cpu)).split("\n")
        except Exception:
            if running:
                return
            raise
        ref = self._baseline.reference(session, running, lines)
        show_text(self, render_fpu(lines, ref))
