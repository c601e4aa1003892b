"""`aero run`: a machine from the command line (and --config), run, the outcome as an exit status.

The options (``aero.cli`` merges them with a --config file) become settings (``aero.config``): a
``MachineConfig`` and the run's own settings.  Bad input (a missing or unreadable file, a wrong
size, a malformed value, an unusable state file) gets one line on stderr and exit status 2
before anything runs.

Saved states (``--save-state``, ``--load-state``; ``aero.statefile``): a state records the
settings that define its machine; ``--load-state FILE`` alone rebuilds that machine, and with
machine options the machine they describe must be the same one.
"""

from __future__ import annotations

import os
import sys

from . import statefile
from .build import build_machine
from .config import HARDWARE_KEYS, ConfigError, MachineConfig, split_settings
from .display.png import write_png
from .display.render import render

# `aero run` defaults that differ from a MachineConfig's (a library user gets no output unless
# asked; the command prints COM1)
CLI_DEFAULTS = {"serial": "stdio"}


def _writable_dir(path: str, what: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ConfigError(f"{what}: directory {d} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"{what}: {path} is a directory")


def _machine(settings: dict):
    """(machine, run settings, saved state or None) for the settings."""
    cfg, run = split_settings(settings)
    for key in ("screenshot", "save_state"):
        if run.get(key):
            _writable_dir(run[key], f"--{key.replace('_', '-')}")
    if run.get("max_instructions", 0) < 0:
        raise ConfigError("--max-instructions must not be negative")
    if "at_instruction" in run and "save_state" not in run:
        raise ConfigError("--at-instruction needs --save-state")
    state = None
    if run.get("load_state"):
        header, state = statefile.load(run["load_state"])
        if not any(k in settings and k != "demo" for k in HARDWARE_KEYS):
            saved = {k: v for k, v in header.get("config", {}).items() if k in HARDWARE_KEYS}
            host = {k: v for k, v in cfg.__dict__.items()
                    if k in ("serial", "debugcon", "firmware_log", "post_codes")}
            cfg = MachineConfig(**saved, **host)
        m = build_machine(cfg)
        try:
            statefile.check_identity(header["machine"], m)
            m.set_state(state)
        except ValueError as e:
            m.close()
            raise ConfigError(f"--load-state: {run['load_state']}: {e}") from None
    else:
        m = build_machine(cfg)
    return m, run


def _save(m, path: str) -> bool:
    try:
        statefile.save(path, m, settings=m.config.hardware())
    except OSError as e:
        print(f"aero: --save-state: cannot write {path}: {e.strerror}", file=sys.stderr)
        return False
    return True


def run_command(settings: dict) -> int:
    """Run a machine from settings (``aero.config``: option names; what --config and the
    command line gave, merged by ``aero.cli``)."""
    try:
        m, run = _machine({**CLI_DEFAULTS, **settings})
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    limit = run.get("max_instructions")
    save_at = run.get("at_instruction")
    saved_ok = True
    try:
        if save_at is not None and m.cpu.icount <= save_at and (limit is None or save_at <= limit):
            res = m.run(max_instructions=save_at, timeout=run.get("timeout"),
                        realtime=run.get("realtime", False))
            if res.status == "limit" and m.cpu.icount == save_at:
                saved_ok = _save(m, run["save_state"])
                res = m.run(max_instructions=limit, timeout=run.get("timeout"),
                            realtime=run.get("realtime", False))
            else:
                print(f"aero: --at-instruction {save_at}: the run ended ({res.status}) at "
                      f"instruction {m.cpu.icount}; no state saved", file=sys.stderr)
        else:
            if save_at is not None:
                print(f"aero: --at-instruction {save_at} is outside this run; no state saved",
                      file=sys.stderr)
            res = m.run(max_instructions=limit, timeout=run.get("timeout"),
                        realtime=run.get("realtime", False))
            if run.get("save_state") and save_at is None and res.status != "error":
                saved_ok = _save(m, run["save_state"])
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
    return res.exit_code if saved_ok else 2
