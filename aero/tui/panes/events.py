"""The event log pane: what ``Debugger.events`` records, newest last: stops (breakpoints,
catches, pauses, the guest's end) always, and, while logging is on, every interrupt and
exception, mode switch, CR3 load and Aero BIOS call (``Debugger.log_events``; the hooks cost
only while on, hence the switch, off at start).  Plain single steps also stop the machine; their
entries ("at ...", "now at ...") are left out here, or stepping would flood the log; so are
time travel's steps and moves ("back at instruction ...", "at instruction ...").

New entries are found by identity: the log is a bounded deque of (icount, text) tuples, and the
pane remembers the last tuple it showed.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, RichLog, Switch

_STEP = re.compile(r"^(at |now at |Run till exit: now at |back at instruction )")


class EventsPane(Vertical):
    """The event log (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    BINDINGS = [("e", "toggle", "Event logging")]

    def __init__(self, **kw):
        super().__init__(**kw)
        self._last = None
        self.session = None

    def compose(self):
        with Horizontal(id="events-bar"):
            yield Switch(False, id="events-switch")
            yield Label("log interrupts, exceptions, mode switches, CR3 loads and BIOS calls "
                        "(e toggles; costs while on)", id="events-label")
        yield RichLog(id="events-log", max_lines=5000, wrap=False, markup=False)

    def update_from(self, session, running: bool) -> None:
        self.session = session
        switch = self.query_one(Switch)
        if switch.value != session.events_on:
            with switch.prevent(Switch.Changed):
                switch.value = session.events_on
        entries = list(session.dbg.events)
        start = 0
        if self._last is not None:
            for i in range(len(entries) - 1, -1, -1):
                if entries[i] is self._last:
                    start = i + 1
                    break
        if start >= len(entries):
            return
        log = self.query_one(RichLog)
        for entry in entries[start:]:
            icount, text = entry
            if not _STEP.match(text):
                line = Text(f"{icount:>12}  ", style="cyan")
                line.append(text)
                log.write(line)
        self._last = entries[-1]

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self.app.set_event_log(event.value)

    def action_toggle(self) -> None:
        if self.session is not None:
            self.app.set_event_log(not self.session.events_on)
