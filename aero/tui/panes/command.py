"""The command line: the debugger's command language (``aero.debug.commands``, plus the TUI's
own ``pause``, ``quit``, ``view ADDR`` and ``mem ADDR``) with its output in a scrolling log.

Up and Down walk the history (the line being typed is kept); completion suggests the rest of
the word being typed from the command names and the symbol table (``Session.completions``),
shown greyed after the cursor; Tab (or Right) accepts it.  Enter posts ``CommandPane.Submitted``;
the app runs the line and writes the output here.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, RichLog

PROMPT = "(aero) "
_LAST_WORD = re.compile(r"[A-Za-z_.$?][\w.$@?!]*$")


class WordSuggester(Suggester):
    """Completes the last word of the line from ``complete(prefix) -> list of words``."""

    def __init__(self, complete):
        super().__init__(use_cache=False, case_sensitive=True)
        self.complete = complete

    async def get_suggestion(self, value: str) -> str | None:
        m = _LAST_WORD.search(value)
        if not m or (m.start() and value[m.start() - 1] not in " :+-*[(,/"):
            return None
        word = m.group(0)
        first = m.start() == 0
        for cand in self.complete(word):
            if cand != word and (first or not cand.isalpha() or len(word) >= 2):
                return value[:m.start()] + cand
        return None


class CommandInput(Input):
    """The input line, with history."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous command", show=False),
        Binding("down", "history(1)", "Next command", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]

    def __init__(self, complete, **kw):
        super().__init__(placeholder="debugger command (help lists them)",
                         suggester=WordSuggester(complete), **kw)
        self.history: list[str] = []
        self._pos = 0
        self._draft = ""

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._pos = len(self.history)
        self._draft = ""

    def action_history(self, delta: int) -> None:
        if not self.history:
            return
        if self._pos == len(self.history):
            self._draft = self.value
        self._pos = max(0, min(len(self.history), self._pos + delta))
        self.value = self.history[self._pos] if self._pos < len(self.history) else self._draft
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()


class CommandPane(Vertical):
    """The command log and the input line (see the module docstring)."""

    class Submitted(Message):
        """A command line was entered."""

        def __init__(self, line: str):
            super().__init__()
            self.line = line

    def __init__(self, complete, **kw):
        super().__init__(**kw)
        self._complete = complete

    def compose(self):
        yield RichLog(id="command-log", max_lines=3000, wrap=True, markup=False)
        yield CommandInput(self._complete, id="command-input", compact=True)

    @property
    def input(self) -> CommandInput:
        return self.query_one(CommandInput)

    def write(self, text: str, style: str = "") -> None:
        """Add text to the log (one or more lines), wrapped at the log's width."""
        if text:
            log = self.query_one(RichLog)
            width = log.scrollable_content_region.width
            log.write(Text(text, style=style), width=width if width > 10 else None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value
        inp = self.input
        inp.remember(line.strip())
        inp.value = ""
        self.write(PROMPT + line, "bold")
        self.post_message(self.Submitted(line))
