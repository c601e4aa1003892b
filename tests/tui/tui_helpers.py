"""Helpers for the TUI tests: machines from scenarios, a guest that spins, waiting for the
worker, reading what the panes show."""

from __future__ import annotations

import asyncio
import os
import time

from aero import scenarios
from aero.tui.app import build_app

SIZE = (120, 40)
FLOPPY = 1474560


def scenario_settings(name: str, workdir) -> dict:
    """A scenario's machine settings with its image built in ``workdir``."""
    return scenarios.machine_settings(scenarios.load(name), str(workdir))


def spin_settings(workdir, cli: bool = False) -> dict:
    """A floppy whose boot sector counts in EAX forever (the guest never stops by itself);
    with ``cli``, interrupts off first, so that a pause always lands in the loop, never in the
    BIOS's timer interrupt handler."""
    loop = "66 40 eb fc"                                                # inc eax; jmp $-2
    boot = bytes.fromhex(("fa " if cli else "") + loop).ljust(510, b"\0") + b"\x55\xaa"
    path = os.path.join(str(workdir), "spin.img")
    with open(path, "wb") as f:
        f.write(boot.ljust(FLOPPY, b"\0"))
    return {"fda": path, "boot": "a"}


def make_app(settings: dict, symbols=()):
    """The TUI over those settings, without a display window."""
    return build_app(settings, symbols=symbols, display=False)


async def wait_jobs(pilot, app, n: int, timeout: float = 30.0) -> None:
    """Wait until the app has handled ``n`` worker results in all and the worker is idle."""
    t0 = time.monotonic()
    while app.jobs_done < n or app.session.running or app.refresh_pending:
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"the worker did not finish ({app.jobs_done} of {n} jobs)")
        await asyncio.sleep(0.005)
        await pilot.pause()
    await pilot.pause()


async def command(pilot, line: str) -> None:
    """Escape to the command line, type a command and Enter."""
    await pilot.press("escape", *line, "enter")
    await pilot.pause()


def plain(widget) -> str:
    """What a pane shows, as plain text."""
    content = widget.render() if not hasattr(widget, "content") else widget.content
    return getattr(content, "plain", str(content))


def log_text(app) -> str:
    """The command log's text."""
    from textual.widgets import RichLog
    return "\n".join(line.text for line in app.query_one("#command-log", RichLog).lines)
