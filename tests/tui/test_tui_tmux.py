"""The TUI in a real terminal: tmux runs ``python3 -m aero.tui`` (the built-in demo), send-keys
types into it (F-keys, shift+F11, Ctrl+C, commands) and capture-pane reads the screen.  The
tmux server has a socket of its own and is ended at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

TMUX = shutil.which("tmux")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Terminal:
    def __init__(self, command: str, width: int = 120, height: int = 40):
        self.socket = f"aero-tui-test-{os.getpid()}"
        self.tmux("new-session", "-d", "-s", "tui", "-x", str(width), "-y", str(height),
                  "-c", REPO, command)

    def tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=20).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "tui", "-l", text)
        self.keys("Enter")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        t0 = time.monotonic()
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{text!r} did not show; the screen:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, text: str, timeout: float = 30.0) -> str:
        t0 = time.monotonic()
        while True:
            screen = self.screen()
            if text not in screen:
                return screen
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{text!r} is still there; the screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=20)


def test_tui_in_tmux():
    env = f"-u COLUMNS -u LINES PYTHONPATH={REPO}"       # the pty gives the size
    term = Terminal(f"env {env} {sys.executable} -m aero.tui --no-display; "
                    "echo TUI-EXIT=$?; sleep 30")
    try:
        screen = term.wait_for("PAUSED")
        assert "▶ f000:fff0  ea" in screen and "EIP 0000fff0" in screen
        assert "no display window (--no-display)" in screen
        term.keys("F11")                                # the BIOS's first jump
        screen = term.wait_for("EIP 0000e05b" if "0xf000:0xe05b" in screen else "icount 1")
        term.type("b 0x7c5b")                           # the demo's print routine
        term.wait_for("Breakpoint 1 at linear 0x00007c5b")
        term.keys("F5")
        screen = term.wait_for("Breakpoint 1, 0000:7c5b")
        assert "▶ 0000:7c5b  ac" in screen and "lodsb" in screen
        term.keys("F11")                                # lodsb
        term.wait_for("▶ 0000:7c5c")
        term.type("delete 1")                           # print loops back to its start
        term.wait_for("(aero) delete 1")
        term.keys("S-F11")                              # step out: back after the call
        screen = term.wait_for("▶ 0000:7c13")
        assert "Run till exit" in screen
        term.type("x/4xb 0x7c00")
        term.wait_for("0000:7c00 (0x00007c00): fa 31 c0 8e")
        term.keys("C-c")                                # pauses (nothing runs); never quits
        term.wait_for("(the guest is not running)")
        term.keys("F6", "F6")                           # tabs: Breakpoints, then Tables
        screen = term.wait_for("IVT (real mode)")
        assert "seg:off" in screen and "linear" in screen
        term.keys("F2")
        term.wait_for("Registers")
        term.keys("F1")
        term.wait_for("Everywhere")
        term.keys("Escape")                             # alone: a key typed at once after
        term.wait_gone("Everywhere")                    # it would read as alt+key
        term.type("quit")
        term.wait_for("TUI-EXIT=0")
    finally:
        term.close()
