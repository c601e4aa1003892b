"""The live profile pane: ``aero.profile.live.LiveProfile`` runs while this pane is shown (the
app starts it when the tab opens and stops it when another tab is chosen, through the session,
so its hooks are never added while the CPU thread runs) and the pane shows its report twice a
second: guest MIPS, the hottest code with symbols, the instruction mix, interrupt and port I/O
rates.  ``r`` resets the figures.  Wall-clock figures: this pane is not part of the snapshot
tests.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Grid
from textual.widgets import Static

INTERVAL = 0.5


def _hot(r: dict) -> Text:
    t = Text()
    for h in r["hot"]:
        t.append(f"{100 * h['share']:5.1f}% ", "bold")
        t.append(f"{h['address']:08x}", "cyan")
        if h["symbol"]:
            t.append(f" <{h['symbol']}>", "green")
        t.append(f"  {h['instructions']:2} insns, {h['first']}\n")
    return t if r["hot"] else Text("(no samples yet)")


def _rates(rows: list) -> Text:
    if not rows:
        return Text("none")
    return Text("\n".join(f"{rate:10.1f}/s  {name}" for name, rate in rows))


class ProfilePane(Grid):
    """The live profile (see the module docstring)."""

    DEFAULT_CLASSES = "pane"
    BINDINGS = [("r", "reset", "Reset")]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.profile = None
        self._timer = None

    def compose(self):
        yield Static("", id="profile-summary")
        yield Static("", id="profile-hot", classes="profile-box")
        yield Static("", id="profile-mix", classes="profile-box")
        yield Static("", id="profile-irq", classes="profile-box")
        yield Static("", id="profile-io", classes="profile-box")

    def on_mount(self) -> None:
        titles = {"profile-hot": "hottest code", "profile-mix": "instruction mix",
                  "profile-irq": "interrupts", "profile-io": "port I/O"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title

    def attach(self, profile) -> None:
        """Show ``profile`` (a started ``LiveProfile``; None detaches)."""
        self.profile = profile
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if profile is not None:
            self._timer = self.set_interval(INTERVAL, self.show_report)
            self.show_report()

    def action_reset(self) -> None:
        if self.profile is not None:
            self.profile.reset()
            self.show_report()

    def update_from(self, session, running: bool) -> None:
        if session.profile is not self.profile:
            self.attach(session.profile)
        elif self.profile is not None:
            self.show_report()

    def show_report(self) -> None:
        if self.profile is None:
            return
        try:
            r = self.profile.report()
        except RuntimeError:
            return                          # a counter changed size while read: next time
        self.query_one("#profile-summary", Static).update(Text(
            f"{r['mips']:.2f} MIPS   {r['instructions']:,} instructions in {r['wall']:.1f} s   "
            f"halted {100 * r['idle_fraction']:.0f}% of virtual time   {r['samples']} samples "
            f"({100 * r['between_blocks']:.0f}% between blocks)   r: reset"))
        self.query_one("#profile-hot", Static).update(_hot(r))
        self.query_one("#profile-mix", Static).update(Text(
            "\n".join(f"{100 * share:5.1f}%  {name}" for name, share in r["mix"]) or "none"))
        self.query_one("#profile-irq", Static).update(_rates(r["interrupts"]))
        self.query_one("#profile-io", Static).update(_rates(r["io"]))
