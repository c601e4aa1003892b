"""The memory pane: a hex and ASCII view of linear or physical memory, editable.

The address is an expression (``aero.debug.expr``: ``0x7c00``, ``ds:esi``, ``[esp]``,
``main+4``) re-evaluated at every refresh, so an expression naming registers follows them
(``ds:esi`` follows ESI as the guest runs); a leading ``/p`` (or the ``p`` key) reads physical
memory.  Rows hold 16, 8 or 4 bytes, as many as fit the pane's width.  Bytes that changed since
the last stop are highlighted; unreadable bytes (not present, MMIO) show as ``--``.

Editing: with the view focused, the arrows move a cursor over the bytes and typing two hex
digits writes that byte through ``Debugger.write`` (as a device would: translated code there is
invalidated); only while the guest is stopped.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Input

from ...debug import inspect as I
from ...debug.debugger import DebugError
from . import Baseline

DEFAULT_EXPR = "ds:esi"
CHANGED = "bold black on yellow"
HEXDIGITS = "0123456789abcdef"


class HexView(Widget, can_focus=True):
    """The bytes (see the module docstring)."""

    BINDINGS = [
        Binding("up", "move(0, -1)", show=False), Binding("down", "move(0, 1)", show=False),
        Binding("left", "move(-1, 0)", show=False), Binding("right", "move(1, 0)", show=False),
        Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False),
        Binding("p", "toggle_physical", "Physical", show=False),
        Binding("g", "edit_address", "Address", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.session = None
        self.expr = DEFAULT_EXPR
        self.physical = False
        self.scroll_rows = 0                # rows scrolled from the expression's address
        self.base = 0                       # address of the first byte shown
        self.cursor = 0                     # index of the byte under the cursor
        self.nibble: int | None = None      # the first digit typed of a byte
        self.data: list = []
        self.ref: dict | None = None
        self.error: str | None = None
        self._baseline = Baseline()
        self._shown = None                  # what the last repaint showed

    # -- geometry ----------------------------------------------------------------------------------
    @property
    def width_bytes(self) -> int:
        w = self.content_size.width or 80
        for n in (16, 8):
            if w >= 10 + 3 * n + 1 + n:
                return n
        return 4

    @property
    def rows(self) -> int:
        return max(1, self.content_size.height or 8)

    # -- data --------------------------------------------------------------------------------------
    def set_expression(self, text: str) -> None:
        text = text.strip() or DEFAULT_EXPR
        self.physical = False
        if text.startswith("/p"):
            self.physical, text = True, text[2:].strip()
        self.expr = text
        self.scroll_rows = 0
        self.cursor = 0
        self.nibble = None
        if self.session is not None:
            self.update_from(self.session, self.session.running)

    def update_from(self, session, running: bool) -> None:
        self.session = session
        try:
            start = session.dbg.address(self.expr)
            self.error = None
        except DebugError as e:
            self.error = str(e)
            start = self.base
        n = self.width_bytes
        self.base = (start + self.scroll_rows * n) & (0xFFFFFFFF if not self.physical
                                                       else (1 << 36) - 1)
        count = n * self.rows
        try:
            space = "physical" if self.physical else "linear"
            vals = (I.read_physical(session.m, self.base, count) if self.physical
                    else I.read_linear(session.m, self.base, count))
        except Exception:
            if running:
                return
            raise
        self.data = vals
        now = {(self.base + i): v for i, v in enumerate(vals)}
        self.ref = self._baseline.reference(session, running, now)
        self.cursor = min(self.cursor, count - 1)
        where = f"{space} {self.base:08x}"
        subtitle = f"error: {self.error}" if self.error else where
        if self.parent.border_subtitle != subtitle:
            self.parent.border_subtitle = subtitle
        ref = self.ref or {}
        changed = tuple(i for i, v in enumerate(vals) if ref.get(self.base + i, v) != v)
        key = (self.base, tuple(vals), changed, self.cursor, self.nibble, n)
        if key != self._shown:
            self._shown = key
            self.refresh()

    # -- keys --------------------------------------------------------------------------------------
    def action_move(self, dx: int, dy: int) -> None:
        n = self.width_bytes
        c = self.cursor + dx + dy * n
        self.nibble = None
        if c < 0:
            self.scroll_rows -= 1
            c += n
        elif c >= n * self.rows:
            self.scroll_rows += 1
            c -= n
        self.cursor = c
        if self.session is not None:
            self.update_from(self.session, self.session.running)

    def action_page(self, direction: int) -> None:
        self.scroll_rows += direction * self.rows
        self.nibble = None
        if self.session is not None:
            self.update_from(self.session, self.session.running)

    def action_toggle_physical(self) -> None:
        self.physical = not self.physical
        if self.session is not None:
            self.update_from(self.session, self.session.running)

    def action_edit_address(self) -> None:
        self.parent.query_one(Input).focus()

    def on_key(self, event) -> None:
        ch = (event.character or "").lower()
        if ch and ch in HEXDIGITS and self.session is not None:
            event.stop()
            event.prevent_default()
            self.type_digit(HEXDIGITS.index(ch))

    def type_digit(self, digit: int) -> None:
        """A hex digit typed at the cursor: the second one of a byte writes it."""
        if self.nibble is None:
            self.nibble = digit
            self._shown = None
            self.refresh()
            return
        value = (self.nibble << 4) | digit
        self.nibble = None
        addr = self.base + self.cursor
        s = self.session
        if s.running:
            self.app.notify("the guest is running: pause it first (F12)", severity="warning")
            return
        try:
            s.dbg.write(addr, bytes((value,)), physical=self.physical)
        except DebugError as e:
            self.app.notify(str(e), severity="error")
            return
        self.action_move(1, 0)

    def on_click(self, event) -> None:
        """Clicking a byte puts the cursor on it."""
        n = self.width_bytes
        col = event.x - 10
        if 0 <= col < 3 * n and 0 <= event.y < self.rows:
            self.cursor = event.y * n + col // 3
            self.nibble = None
            self._shown = None
            self.refresh()

    # -- drawing -----------------------------------------------------------------------------------
    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="crop")
        n = self.width_bytes
        data = self.data
        ref = self.ref or {}
        focused = self.has_focus
        for r in range(min(self.rows, (len(data) + n - 1) // n)):
            a = self.base + r * n
            t.append(f"{a & 0xFFFFFFFF:08x}  ", "cyan")
            chars = []
            for i in range(n):
                k = r * n + i
                v = data[k] if k < len(data) else None
                style = CHANGED if ref.get(a + i, v) != v else ""
                if k == self.cursor and focused:
                    style = "reverse"
                if v is None:
                    cell = "--"
                elif k == self.cursor and self.nibble is not None:
                    cell = f"{self.nibble:x}_"
                else:
                    cell = f"{v:02x}"
                t.append(cell, style)
                t.append(" ")
                chars.append((" " if v is None else chr(v) if 0x20 <= v < 0x7F else ".",
                              style))
            t.append(" ")
            for c, style in chars:
                t.append(c, style)
            t.append("\n")
        if t.plain.endswith("\n"):
            t.right_crop(1)
        return t


class MemoryPane(Vertical):
    """The address field and the hex view."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.border_title = "Memory"

    def compose(self):
        yield Input(DEFAULT_EXPR, placeholder="address: expression, /p for physical",
                    id="memory-address", compact=True)
        yield HexView(id="memory-view")

    def update_from(self, session, running: bool) -> None:
        self.query_one(HexView).update_from(session, running)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        view = self.query_one(HexView)
        view.set_expression(event.value)
        view.focus()

    def show(self, text: str) -> None:
        """Show the memory at an address expression (the ``mem`` command)."""
        self.query_one(Input).value = text
        self.query_one(HexView).set_expression(text)
