"""SVG snapshots of the TUI's screens (pytest-textual-snapshot's ``snap_compare``), stored under
``tests/tui/__snapshots__/``; ``python3 -m pytest tests/tui --snapshot-update`` rewrites them
(look at the report before committing).  Every screen is taken paused, at 120x40, so nothing
time-dependent shows (no MIPS, no wall clock; the profile tab is not snapshotted).  Screens whose
devices show image paths use the built-in demo (its floppy has no path)."""

from __future__ import annotations

import pytest

from tui_helpers import SIZE, command, make_app, scenario_settings, wait_jobs

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture
def close_apps():
    apps = []
    yield apps.append
    for app in apps:
        app.close()


def snap(snap_compare, app, run_before=None, press=()):
    return snap_compare(app, terminal_size=SIZE, run_before=run_before, press=press)


async def to_boot_sector(pilot, extra_steps=0):
    app = pilot.app
    await pilot.pause()
    await command(pilot, "b 0x7c00")
    await pilot.press("f5")
    await wait_jobs(pilot, app, 1)
    for i in range(extra_steps):
        await pilot.press("f11")
        await wait_jobs(pilot, app, 2 + i)


async def to_page_fault(pilot):
    app = pilot.app
    await pilot.pause()
    await command(pilot, "catch exception pf")
    await pilot.press("f5")
    await wait_jobs(pilot, app, 1)


def test_reset_vector(snap_compare, close_apps):
    app = make_app({})
    close_apps(app)
    assert snap(snap_compare, app)


def test_boot_sector_stepped(snap_compare, close_apps, tmp_path):
    """hello after a breakpoint at 7C00h and six steps: the current line, the breakpoint
    marker, changed registers, the memory view following ds:esi at the message."""
    app = make_app(scenario_settings("hello", tmp_path))
    close_apps(app)

    async def run_before(pilot):
        await to_boot_sector(pilot, 6)
        await pilot.press("f10")
        await wait_jobs(pilot, app, 8)
    assert snap(snap_compare, app, run_before)


def test_breakpoints(snap_compare, close_apps):
    app = make_app({})
    close_apps(app)

    async def run_before(pilot):
        await to_boot_sector(pilot)
        await command(pilot, "watch 0x500 2")
        await command(pilot, "catch io 0x3f8")
        await command(pilot, "tbreak 0x7c10 if ax == 0")
        await command(pilot, "disable 2")
        await pilot.press("alt+2")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_tables_protected_mode(snap_compare, close_apps, tmp_path):
    app = make_app(scenario_settings("pmode", tmp_path))
    close_apps(app)

    async def run_before(pilot):
        await to_page_fault(pilot)
        await pilot.press("alt+3")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_code_at_page_fault(snap_compare, close_apps, tmp_path):
    """32-bit code, paging on: the #PF handler, CR2, the registers of protected mode."""
    app = make_app(scenario_settings("pmode", tmp_path))
    close_apps(app)
    assert snap(snap_compare, app, to_page_fault)


def test_paging(snap_compare, close_apps, tmp_path):
    app = make_app(scenario_settings("pmode", tmp_path))
    close_apps(app)

    async def run_before(pilot):
        await to_page_fault(pilot)
        await pilot.press("alt+4")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_devices(snap_compare, close_apps):
    app = make_app({})
    close_apps(app)

    async def run_before(pilot):
        await to_boot_sector(pilot)
        await pilot.press("alt+5")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_x87(snap_compare, close_apps):
    """The x87 tab after the debugger's command line set the FPU up: TOP 7, ST0 = 1.5, the
    FNINIT control word, R7 the only non-empty register."""
    app = make_app({})
    close_apps(app)

    async def run_before(pilot):
        await to_boot_sector(pilot)
        for cmd in ("set fctrl = 0x37f", "set fstat = 0x3820", "set ftag = 0x3fff",
                    "set st0 = 0x3fffc000000000000000"):
            await command(pilot, cmd)
        await pilot.press("alt+0")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_serial_and_events(snap_compare, close_apps, tmp_path):
    """hello run to its end with the event log on: the Events tab (BIOS calls, interrupts,
    the stops)."""
    app = make_app(scenario_settings("hello", tmp_path))
    close_apps(app)

    async def run_before(pilot):
        await pilot.pause()
        await command(pilot, "events on")
        await pilot.press("f5")
        await wait_jobs(pilot, app, 1)
        await pilot.press("alt+7")
        await pilot.pause()
    assert snap(snap_compare, app, run_before)


def test_serial(snap_compare, close_apps, tmp_path):
    app = make_app(scenario_settings("hello", tmp_path))
    close_apps(app)

    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("f5")
        await wait_jobs(pilot, app, 1)
        await pilot.press("alt+6")
        await pilot.pause(0.3)
    assert snap(snap_compare, app, run_before)


def test_help(snap_compare, close_apps):
    app = make_app({})
    close_apps(app)
    assert snap(snap_compare, app, press=("f1",))
