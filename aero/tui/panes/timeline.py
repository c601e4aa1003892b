"""The Timeline pane: the recording time travel moves over (``aero.tui.travel``).

Shown: whether there is a recording (being made now with Ctrl+R or ``record start``, or a file
opened with ``aero tui --replay FILE``), its range of instruction counts, and the position as a
bar across the pane's width: a row of events over it (``x`` exceptions, ``m`` mode switches,
``c`` CR3 loads, ``i`` hardware interrupts, ``s`` software INT n, ``b`` BIOS calls, ``e`` host
edits; the most telling kind where several share a column), the position (``●``; a move on its
way shows its target, a search backwards where it started), and a row of keyframes (``▲``: where
re-execution starts from).  Below, the events around the position, the current one (the last
at or before it) marked ``▶``.  Without a recording the pane says how to make one.

Keys, with the event list focused: left / right move by 1/100 of the recording, shift+left /
right to the previous / next event, home / end to its start / end, enter to the event under the
cursor, ``g`` to the instruction count field.  Each move is a worker job; a key held down
changes the move queued instead of queueing more (``TimeTravelControl``).
"""

from __future__ import annotations

import bisect
import textwrap

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Label, Static

from ...debug.debugger import DebugError
from . import show_text

LABEL = 10                      # width of the bar's row labels
# event kind -> (mark, style, rank: the highest rank wins a shared column)
MARKS = {"exception": ("x", "bold red", 7), "shutdown": ("X", "bold red", 8),
         "mode": ("m", "bold magenta", 6), "cr3": ("c", "bold yellow", 5),
         "edit": ("e", "bold white", 4), "interrupt": ("i", "cyan", 3),
         "int": ("s", "blue", 2), "bios": ("b", "green", 1)}
OTHER = ("·", "white", 0)
LEGEND = ("x exception  m mode switch  c CR3 load  i interrupt  s INT n  b BIOS call  "
          "e edit  ▲ keyframe")
WINDOW = 100                    # the event list holds up to 3 * WINDOW rows around the position
COLUMNS = ("", "icount", "kind", "what")
HELP = ("←/→ move 1%   shift+←/→ previous/next event   home/end start/end   enter go to the "
        "event   g go to an instruction")


def column(n: int, start: int, head: int, width: int) -> int:
    """The bar column of instruction count ``n`` (0 ... width - 1)."""
    if head <= start or width <= 1:
        return 0
    return max(0, min(width - 1, (n - start) * (width - 1) // (head - start)))


def first_at_column(c: int, start: int, head: int, width: int) -> int:
    """The smallest instruction count at or after ``start`` in bar column ``c`` or later."""
    return start + -(-c * (head - start) // (width - 1))


class EventIndex:
    """The instruction counts of a timeline's events by kind, each list sorted, extended as a
    recording grows (its event list only grows; a new list, as a cut recording gets, is indexed
    afresh), so that drawing the event row costs per column and kind, not per event."""

    def __init__(self):
        self.events = None              # the list indexed
        self.n = 0                      # how many of its rows
        self.by_kind: dict[str, list[int]] = {}

    def update(self, events: list) -> "EventIndex":
        if events is not self.events or len(events) < self.n:
            self.events, self.n, self.by_kind = events, 0, {}
        new = events[self.n:]           # a copy: the recording may append meanwhile
        for row in new:
            self.by_kind.setdefault(row[1], []).append(row[0])
        self.n += len(new)
        return self


def event_row(index: EventIndex, start: int, head: int, width: int) -> Text:
    """The events (an ``EventIndex``) as marks across ``width`` columns; where several kinds
    share a column, the highest ranked shows."""
    best: list = [None] * width
    for kind, counts in index.by_kind.items():
        mark = MARKS.get(kind, OTHER)
        i = 0
        while i < len(counts):
            c = column(counts[i], start, head, width)
            if best[c] is None or mark[2] > best[c][2]:
                best[c] = mark
            if c >= width - 1 or head <= start or width <= 1:
                break                   # every later count falls in the last column
            i = bisect.bisect_left(counts, first_at_column(c + 1, start, head, width), i + 1)
    t = Text()
    for mark in best:
        if mark is None:
            t.append(" ")
        else:
            t.append(mark[0], mark[1])
    return t


def bar(r, width: int, index: EventIndex | None = None) -> Text:
    """The bar: events, position, keyframes, the scale (``r``: a ``travel.Recording``;
    ``index``: its events indexed, kept from one refresh to the next)."""
    w = max(10, width - LABEL)
    start, head = r.start, r.head
    t = Text(no_wrap=True, overflow="crop")
    t.append("events".ljust(LABEL), "grey50")
    t.append_text(event_row((index or EventIndex()).update(r.events), start, head, w))
    t.append("\n" + "position".ljust(LABEL), "grey50")
    c = column(r.at, start, head, w)
    t.append("━" * c, "bold cyan")
    t.append("●", "bold yellow" if r.moving or r.searching else "bold cyan")
    t.append("─" * (w - c - 1), "grey50")
    t.append("\n" + "keyframes".ljust(LABEL), "grey50")
    cols = {column(k, start, head, w) for k in r.keyframes}
    t.append("".join("▲" if i in cols else " " for i in range(w)), "green")
    left, right = f"{start:,}", f"{head:,}"
    t.append("\n" + " " * LABEL + left + right.rjust(max(1, w - len(left))), "grey50")
    t.append("\n" + " " * LABEL + LEGEND, "grey50")
    return t


def summary(r) -> Text:
    """One line: the kind of recording, its range, the position."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if r.kind == "live":
        t.append(" REC ", "bold white on red")
        t.append(" recording now")
    else:
        t.append(" REPLAY ", "bold white on dark_blue")
        t.append(f" {r.path}")
    span = max(1, r.head - r.start)
    pct = 100 * (r.at - r.start) / span
    t.append(f"   instructions {r.start:,} to {r.head:,}   ")
    where = "going to" if r.moving else "searching back from" if r.searching else "at"
    t.append(f"{where} {r.at:,} ({pct:.1f}%)", "bold")
    t.append(f"   {len(r.keyframes)} keyframes, {len(r.events)} events")
    return t


KEYWORDS = ("ctrl+r", "record start", "record save FILE", "aero tui --replay FILE", "F7",
            "shift+F7", "F8")


def no_recording(r, width: int) -> tuple[Text, Text]:
    """What the pane says without a recording to move over (``r``: None, or the recording
    made in this session and stopped): a summary line and the explanation, wrapped to
    ``width``."""
    head = Text(no_wrap=True, overflow="ellipsis")
    words = []
    if r is not None:
        head.append(" STOPPED ", "bold black on grey70")
        head.append(f" the recording of this session covered instructions {r.start:,} to "
                    f"{r.head:,}")
        words.append("It was stopped: record save FILE writes it to a file, aero tui --replay "
                     "FILE opens it again.")
    else:
        head.append(" NO RECORDING ", "bold black on grey70")
        head.append(" nothing to travel in")
    words.append("ctrl+r (or the command record start) records from here on, in memory; then "
                 "F7 steps back, shift+F7 steps back over a call, F8 goes back to the previous "
                 "breakpoint, and this tab shows the timeline. To open a recording file (aero "
                 "record): aero tui --replay FILE.")
    lines = [ln for para in words for ln in textwrap.wrap(para, max(20, width))]
    body = Text("\n".join(lines[:5]), no_wrap=True, overflow="crop")
    body.highlight_words(KEYWORDS, "bold")
    return head, body


class EventTable(DataTable):
    """The events around the position, with the Timeline's moving keys."""

    BINDINGS = [
        Binding("left", "move('scrub', -1)", "Back 1%", show=False),
        Binding("right", "move('scrub', 1)", "Forward 1%", show=False),
        Binding("shift+left", "move('event', -1)", "Previous event", show=False),
        Binding("shift+right", "move('event', 1)", "Next event", show=False),
        Binding("home", "move('edge', 0)", "Start", show=False),
        Binding("end", "move('edge', 1)", "End", show=False),
        Binding("g", "ask", "Go to instruction", show=False),
    ]

    def action_move(self, how: str, direction: int) -> None:
        travel = self.app.session.travel
        why = {"scrub": travel.scrub, "event": travel.to_event,
               "edge": lambda d: travel.to_edge(d > 0)}[how](direction)
        self.app.travel_outcome(why)

    def action_ask(self) -> None:
        self.screen.query_one("#timeline-goto", Input).focus()


class TimelinePane(Vertical):
    """The recording and the position in it (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.border_title = "Timeline"
        self._window = None             # (events list, lo, hi, last row) shown in the table
        self._rows: list = []           # the event rows shown, in order
        self._lo = 0
        self._marked: int | None = None     # table row marked as the current event
        self._at = None                 # the position the cursor was last moved for
        self._index = EventIndex()      # the recording's events by kind (for the bar)

    def compose(self):
        yield Static("", id="timeline-summary")
        yield Static("", id="timeline-bar")
        with Horizontal(id="timeline-goto-row"):
            yield Label("go to: ", id="timeline-goto-label")
            yield Input(placeholder="an instruction count (g)", id="timeline-goto",
                        compact=True)
        yield EventTable(id="timeline-events", cursor_type="row", zebra_stripes=True)
        yield Label(HELP, id="timeline-help")

    def on_mount(self) -> None:
        self.query_one(EventTable).add_columns(*COLUMNS)

    def update_from(self, session, running: bool) -> None:
        r = session.travel.recording()
        summary_w = self.query_one("#timeline-summary", Static)
        bar_w = self.query_one("#timeline-bar", Static)
        if r is None or r.kind == "stopped":
            head, body = no_recording(r, bar_w.content_size.width or 100)
            show_text(summary_w, head)
            show_text(bar_w, body)
            self._show_events([], 0, 0, -1, None)
            return
        show_text(summary_w, summary(r))
        show_text(bar_w, bar(r, bar_w.content_size.width or 100, self._index))
        self._show_events(r.events, r.start, r.head, r.current_event(), r.at)

    def _show_events(self, events: list, start: int, head: int, cur: int, at) -> None:
        table = self.query_one(EventTable)
        lo = max(0, (max(cur, 0) // WINDOW) * WINDOW - WINDOW)
        hi = min(len(events), lo + 3 * WINDOW)
        key = (id(events), lo, hi, events[hi - 1] if hi else None)
        if key != self._window:
            self._window = key
            self._rows, self._lo, self._marked = events[lo:hi], lo, None
            table.clear()
            for row in self._rows:
                mark = MARKS.get(row[1], OTHER)
                table.add_row("", Text(f"{row[0]:,}", "cyan"), Text(row[1], mark[1]), row[2])
        mark = cur - lo if 0 <= cur - lo < len(self._rows) else None
        if mark != self._marked:
            for row, text in ((self._marked, ""), (mark, Text("▶", "bold yellow"))):
                if row is not None and row < table.row_count:
                    table.update_cell_at(Coordinate(row, 0), text)
            self._marked = mark
        if at != self._at:
            self._at = at
            if mark is not None:
                table.move_cursor(row=mark)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        i = event.cursor_row
        if 0 <= i < len(self._rows):
            self.app.travel_outcome(self.app.session.travel.move_to(self._rows[i][0], "goto"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        session = self.app.session
        try:
            target = session.dbg.eval(text)
        except DebugError as e:
            self.app.travel_outcome(str(e))
            return
        event.input.value = ""
        self.query_one(EventTable).focus()
        self.app.travel_outcome(session.travel.move_to(target, "goto", clamp=False))

