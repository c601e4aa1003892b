"""The disassembly pane: instructions around the current one, with symbols, breakpoint markers
and a cursor.

The view follows EIP: while the current instruction stays inside the view (and not in its last
three lines), the view does not move and only the highlight does, so the lines above EIP stay
those that were shown (and known right); when EIP leaves it, the view re-anchors a few lines
above EIP (``aero.tui.codeview``: from a known instruction boundary, else a flagged guess shown
dimmed with ``?``).  Moving the cursor (up/down, page up/down) stops following until the next
stop or Home; F9 and F4 act at the cursor.

Markers: ``●`` an enabled breakpoint, ``○`` a disabled one, ``▶`` the current instruction
(highlighted), ``?`` a line decoded from a guessed start.  A symbol that starts at an address is
shown as a ``name:`` label line above it.
"""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget

from ..codeview import Line

ABOVE = 5                   # lines shown above EIP when the view re-anchors
KEEP_BELOW = 3              # re-anchor when EIP comes this close to the bottom


class DisassemblyPane(Widget, can_focus=True):
    """The code around EIP (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "follow", "Back to EIP", show=False),
        Binding("full_stop", "follow", "Back to EIP", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.border_title = "Disassembly"
        self.session = None
        self.lines: list[Line] = []
        self.top: int | None = None         # address of the first line
        self.cursor: int | None = None      # address under the cursor
        self.follow = True                  # the cursor and view follow EIP
        self.pc = 0
        self.marks: dict[int, bool] = {}    # linear breakpoint address -> enabled
        self.guessed: set[int] = set()      # lines decoded from a guessed start
        self._shown = None                  # what the last repaint showed

    # -- data ------------------------------------------------------------------------------------
    def _rows(self) -> int:
        return max(3, self.content_size.height or 20)

    def update_from(self, session, running: bool) -> None:
        self.session = session
        try:
            self.pc = session.dbg.pc()
            self.marks = {r.address: r.enabled for r in session.breakpoints()
                          if r.address is not None and not r.physical}
            if self.follow:
                self._place(self.pc)
            else:
                self.lines = self._decode_from(self.top)
        except Exception:
            if running:
                return
            raise
        code32 = session.m.cpu.code32
        subtitle = ("32-bit" if code32 else "16-bit") + \
            ("" if self.follow else "  (cursor: Home returns to EIP)")
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
        key = (tuple(self.lines), self.pc, self.cursor, tuple(sorted(self.marks.items())))
        if key != self._shown:
            self._shown = key
            self.refresh()

    def _decode_from(self, top: int) -> list[Line]:
        """The view's lines from ``top``; lines first decoded from a guessed start stay flagged
        until they are seen executed."""
        code = self.session.code
        lines = code.forward(top, self._rows())
        if self.guessed:
            self.guessed = {a for a in self.guessed if not code.is_known(a)}
            lines = [dataclasses.replace(ln, sure=False) if ln.address in self.guessed else ln
                     for ln in lines]
        return lines

    def _place(self, pc: int) -> None:
        """Show ``pc``: keep the view if it holds it, else re-anchor above it."""
        code = self.session.code
        rows = self._rows()
        if self.top is not None:
            lines = self._decode_from(self.top)
            addrs = [ln.address for ln in lines]
            if pc in addrs and addrs.index(pc) < max(1, rows - KEEP_BELOW) and \
                    self._label_rows(lines[:addrs.index(pc) + 1]) <= rows:
                self.lines = lines
                self.cursor = pc
                return
        self.lines = code.around(pc, rows, min(ABOVE, rows // 3))
        while len(self.lines) > 1 and self.lines[0].address != pc and \
                self._label_rows(self.lines[:self._index(pc) + 1]) > rows:
            self.lines = self.lines[1:]
        self.top = self.lines[0].address if self.lines else pc
        self.guessed = {ln.address for ln in self.lines if not ln.sure}
        self.cursor = pc

    @staticmethod
    def _label_rows(lines: list[Line]) -> int:
        return len(lines) + sum(1 for ln in lines if ln.label)

    def _index(self, address: int) -> int:
        for i, ln in enumerate(self.lines):
            if ln.address == address:
                return i
        return len(self.lines) - 1

    def show_address(self, address: int) -> None:
        """Scroll the view to ``address`` and put the cursor there (stops following EIP)."""
        if self.session is None:
            return
        self.follow = False
        self.top = address & 0xFFFFFFFF
        self.cursor = self.top
        self.guessed = set()
        self.lines = self._decode_from(self.top)
        self.border_subtitle = "  (cursor: Home returns to EIP)"
        self.refresh()

    # -- keys --------------------------------------------------------------------------------------
    def action_follow(self) -> None:
        self.follow = True
        if self.session is not None:
            self.update_from(self.session, False)

    def action_move(self, delta: int) -> None:
        """Move the cursor ``delta`` lines, scrolling at the edges."""
        if self.session is None or not self.lines:
            return
        self.follow = False
        for _ in range(abs(delta)):
            self._move_one(1 if delta > 0 else -1)
        self.border_subtitle = "  (cursor: Home returns to EIP)"
        self.refresh()

    def _move_one(self, step: int) -> None:
        code = self.session.code
        i = self._index(self.cursor) if self.cursor is not None else 0
        j = i + step
        if j < 0:
            prev = code.before(self.lines[0].address, 1)
            if prev:
                self.top = prev[0].address
                self.guessed |= {ln.address for ln in prev if not ln.sure}
                self.lines = self._decode_from(self.top)
            j = 0
        elif j >= len(self.lines) or self._label_rows(self.lines[:j + 1]) > self._rows():
            if len(self.lines) > 1:
                self.top = self.lines[1].address
                self.lines = self._decode_from(self.top)
            j = min(i, len(self.lines) - 1)
        self.cursor = self.lines[j].address if self.lines else None

    def action_page(self, direction: int) -> None:
        if self.session is None or not self.lines:
            return
        self.follow = False
        code = self.session.code
        rows = self._rows()
        if direction > 0:
            self.top = self.lines[-1].address
        else:
            prev = code.before(self.lines[0].address, rows - 1)
            if prev:
                self.top = prev[0].address
                self.guessed |= {ln.address for ln in prev if not ln.sure}
        self.lines = self._decode_from(self.top)
        self.cursor = self.lines[0].address if self.lines else None
        self.border_subtitle = "  (cursor: Home returns to EIP)"
        self.refresh()

    def on_mouse_scroll_down(self, event) -> None:
        event.stop()
        self.action_move(3)

    def on_mouse_scroll_up(self, event) -> None:
        event.stop()
        self.action_move(-3)

    def on_click(self, event) -> None:
        """Clicking a line puts the cursor on it."""
        row = 0
        for ln in self.lines:
            if ln.label:
                row += 1
            if row == event.y:
                self.follow = False
                self.cursor = ln.address
                self.refresh()
                return
            row += 1

    # -- drawing -----------------------------------------------------------------------------------
    def _address_text(self, address: int) -> str:
        cpu = self.session.m.cpu
        real = not cpu.cr0 & 1 or cpu.flags & 0x20000
        off = (address - cpu.base[1]) & 0xFFFFFFFF
        if real and off <= 0xFFFF:
            return f"{cpu.sel[1]:04x}:{off:04x}"
        return f"{address:08x}"

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.session is None:
            return t
        rows = self._rows()
        shown = 0
        focused = self.has_focus
        for ln in self.lines:
            if shown >= rows:
                break
            if ln.label:
                t.append(f"      {ln.label}:\n", "bold green")
                shown += 1
                if shown >= rows:
                    break
            mark = self.marks.get(ln.address)
            t.append("●" if mark else "○" if mark is not None else " ",
                     "bold red" if mark else "red")
            is_pc = ln.address == self.pc
            t.append("▶" if is_pc else ("?" if not ln.sure else " "),
                     "bold yellow" if is_pc else "grey50")
            raw = ln.raw.hex(" ")
            if len(raw) > 20:
                raw = raw[:19] + "…"
            body = f" {self._address_text(ln.address)}  {raw:<20} {ln.text}"
            style = ""
            if is_pc:
                style = "bold black on yellow"
            elif not ln.sure:
                style = "grey50"
            if ln.address == self.cursor and not (is_pc and self.follow):
                style = (style + " reverse") if focused else (style + " underline")
            t.append(body, style.strip())
            t.append("\n")
            shown += 1
        if t.plain.endswith("\n"):
            t.right_crop(1)
        return t
