"""Measurements of the TUI, not timed tests: how many single steps per second go through the
TUI with the Code tab's panes (disassembly, registers, memory, stack, status bar) refreshing,
and how long a pause takes to stop a guest running at full speed.

    python3 tests/tui/measure_tui.py [--steps N] [--pauses N]

Each step is an F11 key event posted to the app (the binding, the worker thread, the
``RunDone`` message, the app's handling of it) and the next one is sent when that has been
handled; the same through the action method, without the key dispatch.  The panes refresh
from the stopped machine after a step, at most 20 times a second (``STEP_REFRESH``) while steps
come faster than that (as here) and always after the last one; Textual repaints what changed.
The built-in demo is stepped from its boot sector (its drawing loop).

Each pause: the guest (a boot sector spinning in ``inc eax; jmp``) runs for 0.2 s, then an F12
key event is posted, and the time until the app has handled the stop (panes refreshed) is the
latency.  Both run headless at 120x40 (``App.run_test``): the terminal's own
drawing is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

from textual import events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aero.tui.app import STEP_REFRESH, AeroApp, build_app  # noqa: E402
from tui_helpers import SIZE, spin_settings  # noqa: E402


class MeasuredApp(AeroApp):
    """The app, telling the measurement when a worker result has been handled."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.handled = asyncio.Event()

    def on_run_done(self, message) -> None:
        super().on_run_done(message)
        self.handled.set()


async def _one(app, send) -> float:
    app.handled.clear()
    t0 = time.perf_counter()
    send()
    await app.handled.wait()
    return time.perf_counter() - t0


async def measure_steps(n: int) -> dict:
    """Steps per second through the TUI, by F11 key events and by the action, stepping the
    built-in demo from its boot sector (its drawing loop)."""
    app = build_app({}, display=False, app_class=MeasuredApp)
    out = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.session.dbg.break_at(0x7C00)
        await _one(app, app.action_cont)
        for label, send in (("key", lambda: app.post_message(events.Key("f11", None))),
                            ("action", app.action_step_into)):
            t0 = time.perf_counter()
            for _ in range(n):
                await _one(app, send)
            out[label] = n / (time.perf_counter() - t0)
    app.close()
    return out


async def measure_pauses(workdir: str, n: int, run_for: float = 0.2) -> list[float]:
    """Pause latencies (seconds) while the spinning guest runs."""
    app = build_app(spin_settings(workdir), display=False, app_class=MeasuredApp)
    lat = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for _ in range(n):
            app.action_cont()
            await asyncio.sleep(run_for)
            assert app.session.running
            lat.append(await _one(app, lambda: app.post_message(events.Key("f12", None))))
            assert not app.session.running
    app.close()
    return lat


def run(steps: int = 2000, pauses: int = 20) -> dict:
    """All the figures as a dict (steps per second; pause latencies in ms)."""
    with tempfile.TemporaryDirectory() as d:
        demo = asyncio.run(measure_steps(steps))
        lat = asyncio.run(measure_pauses(d, pauses))
    ms = [1000 * x for x in lat]
    return {"steps_per_s_key": demo["key"], "steps_per_s_action": demo["action"],
            "pause_ms_median": statistics.median(ms), "pause_ms_max": max(ms),
            "pause_ms_min": min(ms), "pauses": len(ms), "steps": steps}


def report(r: dict) -> str:
    return (f"single steps through the TUI, panes refreshing (at most {1 / STEP_REFRESH:.0f}/s, "
            f"and after the last step): "
            f"{r['steps_per_s_key']:,.0f}/s by F11 key events, "
            f"{r['steps_per_s_action']:,.0f}/s by the action ({r['steps']} steps each)\n"
            f"pause latency while running (F12 key event to the stop handled): median "
            f"{r['pause_ms_median']:.1f} ms, min {r['pause_ms_min']:.1f} ms, max "
            f"{r['pause_ms_max']:.1f} ms over {r['pauses']} pauses")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--pauses", type=int, default=20)
    args = ap.parse_args()
    print(report(run(args.steps, args.pauses)))
