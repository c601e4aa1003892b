"""The TUI's step rate and pause latency (``measure_tui.py``), printed, not timed: run with
``-s`` to see the figures (``python3 tests/tui/measure_tui.py`` measures more steps)."""

from __future__ import annotations

import measure_tui


def test_step_rate_and_pause_latency_are_measured():
    r = measure_tui.run(steps=300, pauses=5)
    print()
    print(measure_tui.report(r))
    assert r["steps_per_s_key"] > 0 and r["steps_per_s_action"] > 0
    assert r["pauses"] == 5 and r["pause_ms_max"] >= r["pause_ms_min"] > 0
