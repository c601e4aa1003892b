"""`aero run`: a machine from the command line (and --config), run, the outcome as an exit status.

The options (``aero.cli`` merges them with a --config file) become settings (``aero.config``): a
``MachineConfig`` and the run's own settings.
Bad input (a missing or unreadable file, a wrong size, a malformed value) gets one line on stderr
and exit status 2 before anything runs.
"""

from __future__ import annotations

import os
import sys

from .build import build_machine
from .config import ConfigError, split_settings
from .display.png import write_png
from .display.render import render

# `aero run` defaults that differ from a MachineConfig's (a library user gets no output unless
# asked; the command prints COM1)
CLI_DEFAULTS = {"serial": "stdio"}


def run_command(settings: dict) -> int:
    """Run a machine from settings (``aero.config``: option names; what --config and the
    command line gave, merged by ``aero.cli``)."""
    try:
        settings = {**CLI_DEFAULTS, **settings}
        cfg, run = split_settings(settings)
        if run.get("screenshot"):
            d = os.path.dirname(os.path.abspath(run["screenshot"]))
            if not os.path.isdir(d):
                raise ConfigError(f"--screenshot: directory {d} does not exist")
        if run.get("max_instructions", 0) < 0:
            raise ConfigError("--max-instructions must not be negative")
        m = build_machine(cfg)
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    try:
        res = m.run(max_instructions=run.get("max_instructions"), timeout=run.get("timeout"),
                    realtime=run.get("realtime", False))
    except KeyboardInterrupt:
        print("aero: interrupted", file=sys.stderr)
        return 130
    finally:
        m.close()
    if res.status == "error":
        print(res.detail, file=sys.stderr)
    elif res.status in ("halted", "shutdown", "timeout"):
        print(f"aero: {res.status}{': ' + res.detail if res.detail else ''} "
              f"after {res.icount} instructions", file=sys.stderr)
    if run.get("screenshot"):
        try:
            write_png(run["screenshot"], render(m.vga))
        except OSError as e:
            print(f"aero: --screenshot: {e}", file=sys.stderr)
    if run.get("state_hash"):
        print(f"state-hash icount={m.cpu.icount} sha256={m.state_hash()}", file=sys.stderr)
    return res.exit_code
