"""The TUI's key bindings in one table: the app binds them and the help screen lists them.

Global keys are *priority* bindings (they work whichever widget has the focus, the command line
included), except ``q`` and ``?``, which type themselves into text fields and act elsewhere.
Ctrl+C pauses (it never quits: Ctrl+Q or ``quit`` does).  Each pane's own keys are listed
under ``PANE_KEYS`` for the help screen; the panes bind them themselves.

The footer shows the labelled keys in this order, after the focused pane's own: the time travel
keys (F7, F8, Ctrl+R; ``aero.tui.travel``) come after F12, so that where a pane's keys make the
footer too long for the terminal it is they that are cut, not Pause.
"""

from __future__ import annotations

from textual.binding import Binding

TABS = (("code", "Code"), ("breakpoints", "Breakpoints"), ("tables", "Tables"),
        ("paging", "Paging"), ("devices", "Devices"), ("serial", "Serial"), ("events", "Events"),
        ("profile", "Profile"), ("timeline", "Timeline"), ("x87", "x87"))

# (keys, action, footer label or "", description, priority)
GLOBAL_KEYS = (
    ("f1", "help", "Help", "this help (also ? outside text fields)", True),
    ("f5", "cont", "Cont", "continue: run until a breakpoint, a catch, the guest's end or a "
     "pause", True),
    ("f4", "run_to_cursor", "", "run to the disassembly cursor", True),
    ("f9", "toggle_break", "Break", "toggle a breakpoint at the disassembly cursor (at the "
     "current instruction when the cursor follows it)", True),
    ("f10", "step_over", "Over", "step over: CALL, INT, REP strings and LOOPs run to the next "
     "instruction", True),
    ("f11", "step_into", "Into", "step one instruction (into calls and interrupts)", True),
    ("shift+f11", "step_out", "Out", "step out: run until the current function returns", True),
    ("f12", "pause", "Pause", "pause the running guest (within 100 ms)", True),
    ("ctrl+c", "pause", "", "pause, as F12 (Ctrl+C never quits)", True),
    ("f7", "reverse_step", "Back", "step back one instruction, to the exact earlier state "
     "(needs a recording: ctrl+r; held down, goes back as many as pressed)", True),
    ("shift+f7", "reverse_next", "", "step back over a call or interrupt that returned here",
     True),
    ("f8", "reverse_cont", "RevCont", "reverse-continue: back to the previous stop of a "
     "breakpoint, watchpoint or catch (the start of the recording if none)", True),
    ("ctrl+r", "toggle_record", "Rec", "record on / off: record from here on, in memory (for "
     "F7, F8 and the Timeline tab), or stop", True),
    ("f2", "show_tab('code')", "", "the Code tab (disassembly, registers, memory, stack)", True),
    ("f6", "next_tab", "", "next tab", True),
    ("shift+f6", "previous_tab", "", "previous tab", True),
    ("ctrl+pagedown", "next_tab", "", "next tab", True),
    ("ctrl+pageup", "previous_tab", "", "previous tab", True),
    ("escape", "focus_command", "", "back to the command line", False),
    ("ctrl+q", "quit", "Quit", "quit (also the quit command, or q outside text fields)", True),
    ("q", "quit", "", "quit (outside text fields)", False),
    ("question_mark", "help", "", "this help (outside text fields)", False),
)

PANE_KEYS = (
    ("Command line", (("up / down", "previous / next command"),
                      ("tab", "complete a command or symbol name (when one is suggested)"),
                      ("enter", "run the command; output in the log above"))),
    ("Disassembly", (("up / down, pgup / pgdn", "move the cursor (the view stops following "
                      "EIP)"),
                     ("mouse wheel, click", "scroll / put the cursor on a line"),
                     ("home or .", "back to the current instruction (follow EIP again)"))),
    ("Memory", (("arrows, pgup / pgdn", "move the cursor / scroll"),
                ("0-9 a-f", "type a byte (two digits) at the cursor: writes guest memory"),
                ("p", "linear / physical"),
                ("g", "edit the address: an expression, re-evaluated at every stop "
                 "(ds:esi follows ESI)"))),
    ("Breakpoints", (("space", "enable / disable the selected point"),
                     ("delete", "delete it"),
                     ("enter", "show a breakpoint's address in the disassembly"))),
    ("Events", (("e", "event logging on / off (logging every interrupt costs)"),)),
    ("Profile", (("r", "reset the figures"),)),
    ("Timeline", (("left / right", "move back / forward by 1/100 of the recording (held "
                   "down: one move, retargeted)"),
                  ("shift+left / right", "to the previous / next event"),
                  ("home / end", "to the start / end of the recording"),
                  ("enter", "to the event under the cursor"),
                  ("g", "type an instruction count to go to"))),
    ("Serial", (("enter", "send the typed line to COM1 (with CR)"),)),
)


def bindings() -> list[Binding]:
    """The app's bindings: the global keys, then alt+1 ... alt+9, alt+0 for the tabs."""
    out = [Binding(k, action, label or k, show=bool(label), priority=prio)
           for k, action, label, _, prio in GLOBAL_KEYS]
    for n, (tab_id, title) in enumerate(TABS, 1):
        out.append(Binding(f"alt+{n % 10}", f"show_tab('{tab_id}')", title, show=False,
                           priority=True))
    return out


def describe_global() -> list[tuple[str, str]]:
    """(key, what it does) rows for the help screen."""
    rows = [(_key_text(k), desc) for k, _, _, desc, _ in GLOBAL_KEYS]
    rows.append(("alt+1 ... alt+9, alt+0", "tabs: " + ", ".join(t for _, t in TABS) +
                 " (where the terminal sends Alt as Escape; tmux does not: use F6)"))
    return rows


def _key_text(key: str) -> str:
    return {"question_mark": "?"}.get(key, key)
