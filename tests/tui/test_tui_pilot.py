"""The TUI driven by real key presses (Textual's ``run_test`` pilot) through scenarios: break at
the boot sector, step, inspect and edit memory, catch I/O and exceptions, and check what the
panes show."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable

from aero.tui.panes.disassembly import DisassemblyPane
from aero.tui.panes.memory import HexView
from aero.tui.panes.registers import RegistersPane
from aero.tui.panes.stack import StackPane
from aero.tui.panes.status import StatusBar
from tui_helpers import SIZE, command, log_text, make_app, plain, scenario_settings, wait_jobs


def current_line(app) -> str:
    """The disassembly line marked as the current instruction."""
    lines = [ln for ln in plain(app.query_one(DisassemblyPane)).splitlines() if "▶" in ln]
    assert len(lines) == 1, lines
    return lines[0]


def test_hello_break_step_memory_catch(tmp_path):
    app = make_app(scenario_settings("hello", tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "f000:fff0" in current_line(app)          # paused at the reset vector
            assert "EIP 0000fff0" in plain(app.query_one(RegistersPane))
            await command(pilot, "b 0x7c00")
            assert "Breakpoint 1 at linear 0x00007c00" in log_text(app)
            await pilot.press("f5")
            await wait_jobs(pilot, app, 1)
            assert "Breakpoint 1, 0000:7c00" in log_text(app)
            line = current_line(app)
            assert "●▶ 0000:7c00  31 c0" in line and "xor ax, ax" in line
            assert "EIP 00007c00" in plain(app.query_one(RegistersPane))
            assert "PAUSED" in plain(app.query_one(StatusBar))

            await pilot.press("f11")                        # xor ax, ax
            await wait_jobs(pilot, app, 2)
            assert "0000:7c02" in current_line(app) and "mov ds, ax" in current_line(app)
            regs = plain(app.query_one(RegistersPane))
            assert "EIP 00007c02" in regs and "ZF" in regs   # xor sets ZF
            await pilot.press("f10")                        # mov ds, ax
            await wait_jobs(pilot, app, 3)
            assert "0000:7c04" in current_line(app) and "mov dx, 0x3fb" in current_line(app)
            for _ in range(4):                              # to lodsb: mov dx; mov al; out; mov si
                await pilot.press("f11")
            await wait_jobs(pilot, app, 7)
            assert "lodsb" in current_line(app)
            assert "ESI 00007c27" in plain(app.query_one(RegistersPane))

            # the memory view follows ds:esi: the message; then edit its first byte
            view = app.query_one(HexView)
            first = plain(view).splitlines()[0]
            assert first.startswith("00007c27  48 65 6c 6c 6f 20 66 72") and "Hello fr" in first
            view.focus()
            await pilot.press("6", "8")                     # 'H' -> 'h'
            await pilot.pause()
            assert plain(view).splitlines()[0].startswith("00007c27  68 65")
            assert app.session.dbg.read(0x7C27, 1) == b"h"
            await pilot.press("escape")                     # back to the command line

            await command(pilot, "x/4xb 0x7c00")
            assert "31 c0 8e d8" in log_text(app).replace("0x", "")
            assert "+00" in plain(app.query_one(StackPane))

            await command(pilot, "catch io 0x501")
            await pilot.press("f5")
            await wait_jobs(pilot, app, 8)
            log = log_text(app)
            assert "Catch 2: OUT port 0x0501 size 1 value 0x21" in log
            assert "cli" in current_line(app)

            await pilot.press("alt+2")                      # the breakpoints list
            await pilot.pause()
            table = app.query_one("#breakpoints-table", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            assert rows[0][:4] == ["1", "break", "y", "linear 0x00007c00"] and rows[0][5] == "1"
            assert rows[1][:4] == ["2", "catch", "y", "io 0x501"]
            await pilot.press("space")                      # disable breakpoint 1
            await pilot.pause()
            assert not app.session.dbg.points[1].enabled
            assert table.get_row_at(0)[2] == "n"
            await pilot.press("delete")
            await pilot.pause()
            assert 1 not in app.session.dbg.points and table.row_count == 1

            await pilot.press("alt+6")                      # the serial console
            await pilot.pause(0.3)
            assert app.com1.lines[0] == "hello from the boot sector"
            await pilot.press("f2", "f5")
            await wait_jobs(pilot, app, 9)
            assert "exit status 67" in log_text(app)
            assert "ENDED" in plain(app.query_one(StatusBar))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    app.close()


def test_pmode_catch_exception_tables_and_paging(tmp_path):
    app = make_app(scenario_settings("pmode", tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await command(pilot, "catch exception pf")
            await pilot.press("f5")
            await wait_jobs(pilot, app, 1)
            log = log_text(app)
            assert "Catch 1: fault interrupt 0x0e #PF error code 0x2 CR2=0x80000010" in log
            regs = plain(app.query_one(RegistersPane))
            assert "protected 32-bit, paging on" in regs and "CR2  80000010" in regs
            assert "PG" in regs and "PE" in regs
            assert "32-bit" in app.query_one(DisassemblyPane).border_subtitle
            await pilot.press("alt+3")                      # descriptor tables
            await pilot.pause(0.2)
            gdt = app.query_one("#gdt", DataTable)
            rows = [gdt.get_row_at(i) for i in range(gdt.row_count)]
            assert rows[1][:3] == ["1", "0008", "code RX"] and rows[1][7] == "32"
            idt = app.query_one("#idt", DataTable)
            vecs = {idt.get_row_at(i)[0]: idt.get_row_at(i) for i in range(idt.row_count)}
            assert vecs["0e"][1] == "interrupt gate 32" and vecs["0e"][4].startswith("0008:")
            await pilot.press("alt+4")                      # paging: walk of CR2 and the TLB
            await pilot.pause(0.2)
            inp = app.query_one("#paging-address")
            inp.value = "0x40001000"
            inp.focus()
            await pilot.press("enter")
            await pilot.pause(0.2)
            walk = plain(app.query_one("#paging-walk"))
            assert "linear 40001000  paging 32-bit" in walk
            assert "-> physical 00030000 (4 KiB page" in walk
            tlb = app.query_one("#tlb", DataTable)
            assert tlb.row_count > 0
            # remap the alias 40000000h in memory: its TLB entry goes stale
            await command(pilot, "set dword [0x22000] = 0x31007")
            await pilot.press("alt+4")
            await pilot.pause(0.2)
            rows = {str(tlb.get_row_at(i)[0]): tlb.get_row_at(i) for i in range(tlb.row_count)}
            assert str(rows["40000000"][3]).startswith("STALE: physical")
            assert "1 stale" in str(app.query_one("#tlb-title").content)
            await pilot.press("alt+7")                      # the event log shows the stop
            await pilot.pause(0.2)
            from textual.widgets import RichLog
            events = "\n".join(s.text for s in app.query_one("#events-log", RichLog).lines)
            assert "Catch 1: fault interrupt 0x0e #PF" in events
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    app.close()


def test_keys_help_pause_and_command_line(tmp_path):
    from tui_helpers import spin_settings
    # interrupts off: Ctrl+C pauses wherever the guest is, and this test looks for the loop
    # (once, on a loaded host, the pause fell in the BIOS's timer handler)
    app = make_app(spin_settings(tmp_path, cli=True))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("f1")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            await pilot.pause()
            assert type(app.screen).__name__ != "HelpScreen"
            # while the guest runs, the pilot's presses wait for an idle process (up to 1 s
            # each): the commands are put in the line and entered with one key press
            await pilot.press("f5")
            await pilot.pause(0.3)
            assert app.session.running and "RUNNING" in plain(app.query_one(StatusBar))
            inp = app.query_one("#command-input")
            inp.value = "b 0x7c10"                          # injected into the running guest
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert app.session.running and app.session.breakpoint_at(0x7C10) is not None
            assert "Breakpoint 1 at linear 0x00007c10" in log_text(app)
            inp.value = "si"
            await pilot.press("enter")
            await pilot.pause(0.05)
            assert "running: pause it first" in log_text(app)
            await pilot.press("ctrl+c")                     # pauses, never quits
            await wait_jobs(pilot, app, 2)                  # the injected break, the run
            assert not app.session.running and app.is_running
            assert "paused at 0000:7c0" in log_text(app)
            await command(pilot, "p $eax > 0")
            assert "0x1 (1)" in log_text(app)
            await pilot.press("up")
            assert inp.value == "p $eax > 0"
            await pilot.press("up")
            assert inp.value == "si"
            await pilot.press("down", "down")
            assert inp.value == ""
            await pilot.press(*"disas")                     # completion of a command name
            await pilot.pause(0.2)
            await pilot.press("tab")
            assert inp.value == "disassemble"
            inp.value = ""
            await pilot.press(*"quit", "enter")
            await pilot.pause()
        assert app.return_value == 0

    asyncio.run(scenario())
    app.close()


def test_profile_tab_runs_only_while_shown(tmp_path):
    from tui_helpers import spin_settings
    app = make_app(spin_settings(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("alt+8")
            await pilot.pause()
            assert app.session.profile is not None
            await pilot.press("f5")
            await pilot.pause(0.6)
            app.query_one("#profile-pane").show_report()
            summary = plain(app.query_one("#profile-summary"))
            hot = plain(app.query_one("#profile-hot"))
            assert "MIPS" in summary and "00007c00" in hot
            await pilot.press("f12")
            await wait_jobs(pilot, app, 1)
            await pilot.press("f2")
            await pilot.pause()
            assert app.session.profile is None
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    app.close()


def test_disassembly_cursor_breakpoint_and_run_to_cursor(tmp_path):
    app = make_app(scenario_settings("hello", tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await command(pilot, "tb 0x7c00")
            await pilot.press("f5")
            await wait_jobs(pilot, app, 1)
            dis = app.query_one(DisassemblyPane)
            dis.focus()
            await pilot.press("down", "down", "down")       # to 7C07 mov al, 3
            assert dis.cursor == 0x7C07 and not dis.follow
            await pilot.press("f9")                         # a breakpoint at the cursor
            await pilot.pause()
            assert app.session.breakpoint_at(0x7C07) is not None
            assert "●  0000:7c07" in plain(dis)
            await pilot.press("f9")                         # and off again
            await pilot.pause()
            assert app.session.breakpoint_at(0x7C07) is None
            await pilot.press("down", "down", "f4")         # run to the cursor: 7C0A
            await wait_jobs(pilot, app, 2)
            assert app.session.dbg.pc() == 0x7C0A and dis.follow
            assert "mov si, 0x7c27" in current_line(app)
            await pilot.press("up")                          # above the boot sector: guessed
            for _ in range(8):
                await pilot.press("up")
            assert any("?" in ln[:2] for ln in plain(dis).splitlines())
            await pilot.press("home")
            assert dis.follow and dis.cursor == 0x7C0A
            await command(pilot, "view 0x7c1f")
            assert dis.lines[0].address == 0x7C1F and "mov dx, 0x501" in plain(dis)
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    app.close()
