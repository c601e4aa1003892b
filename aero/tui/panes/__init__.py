"""The TUI's panes, one module each.

Every pane that shows machine state has ``update_from(session, running)``: the app calls it on
the UI thread for the panes that are visible, at once when a run stops (``running`` False: the
machine is idle, the state consistent) and a few times a second while the guest runs
(``running`` True: the state may be torn for a moment, and a read that fails is skipped until
the next refresh; a pane whose refresh costs more sets ``RUNNING_REFRESH``, the seconds between
its refreshes while the guest runs).  Panes mark themselves with the ``pane`` CSS class so the
app finds them.

``Baseline`` keeps what a pane showed at the last stops, to highlight what changed: at a stop,
values are compared with those of the previous stop; while running, with those of the last
stop.

Panes change only what changed: ``show_text`` skips a Static whose text is the same, and the
panes that draw themselves compare a key of what they show before asking for a repaint, so
stepping repaints the disassembly and the registers but not a memory view that did not change.
"""

from __future__ import annotations


class Baseline:
    """Values at the last two stops (see the module docstring)."""

    def __init__(self):
        self.epoch = None
        self.previous = None            # at the stop before the last
        self.last = None                # at the last stop

    def reference(self, session, running: bool, current):
        """What ``current`` should be compared with (None: nothing to compare yet)."""
        if self.epoch is None:
            self.epoch, self.previous, self.last = session.epoch, current, current
        elif not running and session.epoch != self.epoch:
            self.epoch, self.previous, self.last = session.epoch, self.last, current
        return self.last if running else self.previous



def show_text(widget, text) -> None:
    """Show a rich ``Text`` in a Static (no layout pass: the panes have fixed sizes), unless
    it already shows exactly that."""
    if widget.content != text:
        widget.update(text, layout=False)


def set_label(widget, content) -> None:
    """Update a Label or Static only when its content changes (an update costs a layout)."""
    if widget.content != content:
        widget.update(content)
