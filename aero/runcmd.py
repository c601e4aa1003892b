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
from .build import build_from_settings
from .config import ConfigError
from .debug.gdbstub import parse_address, run_gdb
from .display.png import write_png
from .display.render import render

# `aero run` defaults that differ from a MachineConfig's (a library user gets no output unless
# asked; the command prints COM1)
CLI_DEFAULTS = {"serial": "stdio"}


def _save(m, path: str) -> bool:
    try:
        statefile.save(path, m, settings=m.config.hardware())
    except OSError as e:
        print(f"aero: --save-state: cannot write {path}: {e.strerror}", file=sys.stderr)
        return False
    return True


def _execute(m, run: dict):
    """Run the machine as the run settings say (saving a state at an instruction count or at
    the end; under gdb's control with --gdb); (RunResult, whether every save worked)."""
    if run.get("gdb"):
        res = run_gdb(m, run["gdb"], wait=not run.get("gdb_nowait"),
                      log=lambda text: print(f"aero: {text}", file=sys.stderr, flush=True))
        return res, True
    limit = run.get("max_instructions")
    save_at = run.get("at_instruction")
    saved_ok = True
    timing = {"timeout": run.get("timeout"), "realtime": run.get("realtime", False)}
    if save_at is not None and m.cpu.icount <= save_at and (limit is None or save_at <= limit):
        res = m.run(max_instructions=save_at, **timing)
        if res.status == "limit" and m.cpu.icount == save_at:
            saved_ok = _save(m, run["save_state"])
            res = m.run(max_instructions=limit, **timing)
        else:
            print(f"aero: --at-instruction {save_at}: the run ended ({res.status}) at "
                  f"instruction {m.cpu.icount}; no state saved", file=sys.stderr)
        return res, saved_ok
    if save_at is not None:
        print(f"aero: --at-instruction {save_at} is outside this run; no state saved",
              file=sys.stderr)
    res = m.run(max_instructions=limit, **timing)
    if run.get("save_state") and save_at is None and res.status != "error":
        saved_ok = _save(m, run["save_state"])
    return res, saved_ok


def _title(settings: dict) -> str:
    for key in ("kernel", "cdrom", "hda", "fda", "bios"):
        v = settings.get(key)
        if isinstance(v, str):
            return os.path.basename(v)
    return "demo"


def _start_recording(m, record: dict):
    """`aero record`: a Recorder writing the file (checked before anything runs)."""
    from .trace.recorder import Recorder
    path = record["path"]
    if m.config.writable:
        raise ConfigError("--writable would change the disk images the recording "
                          "depends on; record without it (guest writes go to an overlay that "
                          "the recording holds)")
    d = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory (give the recording file to write)")
    if not os.path.isdir(d):
        raise ConfigError(f"directory {d} does not exist (for the recording {path})")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ConfigError(f"{path} is not a regular file (a recording would replace it)")
    for key in ("keyframe_every", "checkpoint_every"):
        if record.get(key) is not None and record[key] <= 0:
            raise ConfigError(f"--{key.replace('_', '-')} must be positive")
    kw = {k: record[k] for k in ("keyframe_every", "checkpoint_every")
          if record.get(k) is not None}
    try:
        return Recorder(m, path=path, keep_states=False, **kw).start()
    except OSError as e:
        raise ConfigError(f"cannot write the recording {path}: {e.strerror}") from None


def _finish_recording(rec, res) -> None:
    try:
        tl = rec.stop(res)
    except OSError as e:
        print(f"aero: the recording could not be completed: {e.strerror}", file=sys.stderr)
        return
    size = os.path.getsize(rec.path)
    print(f"aero: recorded instructions {tl.start} to {tl.head} in {rec.path} "
          f"({len(tl.keyframes)} keyframes, {len(tl.inputs)} inputs, {size / 1e6:.1f} MB)",
          file=sys.stderr)


def run_command(settings: dict, record: dict | None = None) -> int:
    """Run a machine from settings (``aero.config``: option names; what --config and the
    command line gave, merged by ``aero.cli``).  ``record``: record the run (`aero record`:
    path, keyframe_every, checkpoint_every)."""
    rec = None
    try:
        m, run = build_from_settings({**CLI_DEFAULTS, **settings})
        if run.get("gdb_nowait") and not run.get("gdb"):
            raise ConfigError("--gdb-nowait needs --gdb")
        if run.get("gdb"):
            try:
                parse_address(run["gdb"])
            except ValueError as e:
                raise ConfigError(f"--gdb: {e}") from None
        if record is not None:
            try:
                rec = _start_recording(m, record)
            except ConfigError:
                m.close()
                raise
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    res = None
    try:
        window = None
        if not run.get("headless"):
            from .display.window import open_window, run_with_window   # pygame: only if used
            window, why = open_window(m, title=_title(settings))
            if why:
                print(why, file=sys.stderr)
        if window is not None:
            try:
                res, saved_ok = run_with_window(window, go=lambda: _execute(m, run))
            finally:
                window.close()
        else:
            res, saved_ok = _execute(m, run)
    except KeyboardInterrupt:
        print("aero: interrupted", file=sys.stderr)
        if rec is not None and m.cpu.cur_block is None:
            _finish_recording(rec, None)            # what was recorded so far stays usable
            rec = None
        return 130
    finally:
        if rec is not None:
            if res is not None:
                _finish_recording(rec, res)
            else:
                rec.abandon()
        m.close()
    if res.status == "error":
        print(res.detail, file=sys.stderr)
    elif res.status in ("halted", "shutdown", "timeout"):
        print(f"aero: {res.status}{': ' + res.detail if res.detail else ''} "
              f"after {res.icount} instructions", file=sys.stderr)
    if m.resets:
        # the instruction count runs on across resets: a guest in a reboot loop still reaches
        # --max-instructions, and this line says why it got nowhere
        print(f"aero: {m.resets} reset{'' if m.resets == 1 else 's'}", file=sys.stderr)
    if run.get("screenshot"):
        try:
            write_png(run["screenshot"], render(m.vga))
        except OSError as e:
            print(f"aero: --screenshot: {e}", file=sys.stderr)
            saved_ok = False
    if run.get("jit_stats"):
        from .jit.report import summary
        print(summary(m.cpu.cache.jit, m.cpu.icount), file=sys.stderr)
    if run.get("state_hash"):
        print(f"state-hash icount={m.cpu.icount} sha256={m.state_hash()}", file=sys.stderr)
    return res.exit_code if saved_ok else 2
