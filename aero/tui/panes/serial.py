"""The serial console pane: what the guest writes to COM1 (and, when ``--debugcon`` or
``--firmware-log`` is ``stdio``, what it writes to ports E9h/402h, which the TUI shows here
instead of on its own terminal), and a line to type into COM1's receive side.

Output arrives through ``aero.tui.sinks.ByteSink`` (thread-safe, fed by the CPU thread); the
app drains the sinks a few times a second, visible or not, into ``TerminalBuffer``s; this pane
shows them with Textual's line API (only the visible lines are drawn), scrolled to the end
while new output arrives.  Enter sends the typed line and a CR (what a terminal's Enter sends)
through ``Machine.inputs.submit(SerialInput(...))``; not while time travel re-executes the
recording, nor into a recording file being replayed (``Session.send_serial`` says why).
"""

from __future__ import annotations

from rich.segment import Segment
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Label


class TextLines(ScrollView, can_focus=True):
    """A scrollable view of a ``TerminalBuffer``'s lines."""

    def __init__(self, buffer, **kw):
        super().__init__(**kw)
        self.buffer = buffer
        self._version = -1

    def sync(self) -> None:
        """Show new output (scrolling to the end if the view was at the end)."""
        if self.buffer.version == self._version:
            return
        self._version = self.buffer.version
        at_end = self.scroll_offset.y >= self.max_scroll_y
        width = max((len(s) for s in self.buffer.lines[-500:]), default=0)
        self.virtual_size = Size(width, len(self.buffer.lines))
        if at_end:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        sx, sy = self.scroll_offset
        i = sy + y
        lines = self.buffer.lines
        text = lines[i] if 0 <= i < len(lines) else ""
        width = self.size.width
        return Strip([Segment(text[sx:sx + width].ljust(width))], width)


class SerialPane(Vertical):
    """COM1 output and input (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, com1, debugcon=None, **kw):
        super().__init__(**kw)
        self.com1 = com1                # TerminalBuffer
        self.debugcon = debugcon        # TerminalBuffer or None

    def compose(self):
        yield Label("COM1 output", classes="table-title")
        yield TextLines(self.com1, id="serial-output")
        if self.debugcon is not None:
            yield Label("port E9h / 402h output", classes="table-title")
            yield TextLines(self.debugcon, id="debugcon-output")
        yield Input(placeholder="type a line for COM1; Enter sends it with CR",
                    id="serial-input", compact=True)

    def update_from(self, session, running: bool) -> None:
        for view in self.query(TextLines):
            view.sync()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        session = getattr(self.app, "session", None)
        if session is None:
            return
        why = session.send_serial(event.value.encode("latin-1", "replace") + b"\r")
        if why:
            self.app.log_line(why, "red")          # the line stays, to send later
            return
        event.input.value = ""
