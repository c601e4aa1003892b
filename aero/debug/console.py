"""`aero debug`: the debugger as a line-oriented console, for scripts and plain terminals.

    aero debug --fda boot.img -ex "b 0x7c00" -ex c -ex "x/4i cs:eip"
    aero debug --kernel k.elf --symbols k.elf -x script.gdb --batch

The machine is built as `aero run` builds it and stops before its first instruction (the reset
vector, or a multiboot kernel's entry).  Commands come from ``-x`` scripts, then ``-ex``
commands, then standard input (unless ``--batch``); when the input is not a terminal each
command is echoed after the prompt, so a transcript reads like a session.  While the machine
runs (``continue``, ``finish``, ...), Ctrl-C pauses it.  The exit status is 0, or 2 for bad
options or when a command failed in batch mode.
"""

from __future__ import annotations

import sys
import threading

from ..build import build_from_settings
from ..config import ConfigError
from .commands import Commands, split_script
from .debugger import Debugger, DebugError

PROMPT = "(aero) "


class Console:
    def __init__(self, debugger: Debugger, out=None, echo: bool = False):
        self.dbg = debugger
        self.cmds = Commands(debugger)
        self.out = out or sys.stdout
        self.echo = echo
        self.failed = 0

    def run_line(self, line: str) -> None:
        if self.echo:
            self.out.write(PROMPT + line.rstrip() + "\n")
        try:
            text = self._execute(line)
        except DebugError as e:
            self.failed += 1
            text = f"error: {e}"
        if text:
            self.out.write(text + "\n")
        self.out.flush()

    def _execute(self, line: str) -> str:
        """Run a command in a worker thread so that Ctrl-C here can pause the machine."""
        box: dict = {}

        def work():
            try:
                box["out"] = self.cmds.execute(line)
            except BaseException as e:          # handed back to the main thread
                box["err"] = e
        t = threading.Thread(target=work, daemon=True)
        t.start()
        while t.is_alive():
            try:
                t.join(0.1)
            except KeyboardInterrupt:
                self.dbg.pause()
        if "err" in box:
            raise box["err"]
        return box.get("out", "")

    def interact(self, stream) -> None:
        tty = stream.isatty()
        while not self.cmds.quit:
            if tty:
                self.out.write(PROMPT)
                self.out.flush()
            line = stream.readline()
            if not line:
                break
            self.run_line(line)


def main(settings: dict, scripts=(), commands=(), symbols=(), batch: bool = False,
         replay: str | None = None) -> int:
    """``replay``: debug a recording file instead of building a machine from ``settings``
    (only host output settings apply then)."""
    try:
        settings = {"serial": "stdio", **settings}
        if replay is not None:
            from ..trace.replay import open_recording
            other = [k for k in settings if k not in ("serial", "debugcon", "firmware_log")]
            if other:
                raise ConfigError(f"--replay rebuilds the recorded machine: --"
                                  f"{other[0].replace('_', '-')} does not go with it")
            m, _, _, tt = open_recording(replay, {k: settings[k] for k in settings})
        else:
            m, run = build_from_settings(settings)
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    dbg = Debugger(m)
    if replay is not None:
        dbg.attach_recording(tt)
    try:
        for spec in symbols:
            path, _, bias = spec.partition("@")
            n = dbg.load_symbols(path, int(bias, 0) if bias else 0)
            print(f"{n} symbols from {path}")
        lines = []
        for path in scripts:
            try:
                with open(path) as f:
                    lines += split_script(f.read())
            except OSError as e:
                raise DebugError(f"-x {path}: {e.strerror}") from None
    except DebugError as e:
        print(f"aero: {e}", file=sys.stderr)
        m.close()
        return 2
    lines += list(commands)
    con = Console(dbg, echo=not sys.stdin.isatty() or bool(lines))
    print(f"Aero debugger: {dbg.format_addr(dbg.pc())}, {m.cpu.mode} mode. 'help' lists the "
          "commands.")
    if replay is not None:
        print(f"Replaying {replay}: instructions {dbg.travel.start} to {dbg.travel.head}.")
    try:
        for line in lines:
            if con.cmds.quit:
                break
            con.run_line(line)
        if not batch and not con.cmds.quit:
            con.echo = not sys.stdin.isatty()
            con.interact(sys.stdin)
    finally:
        m.close()
    return 2 if batch and con.failed else 0
