"""The help screen (F1 or ?): every key of the TUI, global and per pane, from ``aero.tui.keys``
(the time travel keys among them: F7, shift+F7, F8, Ctrl+R and the Timeline tab's), and a
reminder of the command line.  Escape, F1, q or ? closes it.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .keys import PANE_KEYS, describe_global

INTRO = ("Aero TUI. The command line takes the debugger's commands (help lists them; "
         "b 0x7c00, x/16xb ds:si, catch io 0x501, info gdt, record start, goto N, who-wrote "
         "ADDR ...) and the TUI's own: pause, view ADDR (disassembly), mem ADDR (memory "
         "view), quit. Time travel: ctrl+r records from here on, F7 / shift+F7 / F8 go back, "
         "goto N and the Timeline tab move anywhere in the recording; aero tui --replay FILE "
         "opens a recording made by aero record.")


def help_table() -> Table:
    """Every key as a two-column table, in sections."""
    table = Table(show_header=False, box=None, pad_edge=False, expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True, width=24)
    table.add_column("what")
    table.add_row(Text("Everywhere", style="bold underline"), "")
    for key, desc in describe_global():
        table.add_row(key, desc)
    for section, rows in PANE_KEYS:
        table.add_row("", "")
        table.add_row(Text(section, style="bold underline"), "")
        for key, desc in rows:
            table.add_row(key, desc)
    return table


class HelpScreen(ModalScreen):
    """The keys (see the module docstring)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Close", priority=True),
        Binding("f1", "app.pop_screen", "Close", priority=True),
        Binding("q", "app.pop_screen", "Close", priority=True),
        Binding("question_mark", "app.pop_screen", "Close", priority=True),
    ]

    def compose(self):
        with VerticalScroll(id="help-box"):
            yield Static(Text(INTRO), id="help-intro")
            yield Static(help_table(), id="help-keys")
