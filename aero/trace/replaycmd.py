"""`aero replay FILE`: re-execute a recording and check it, or serve it to gdb.

Exit statuses: 0 the replay matched the recording at every checkpoint, keyframe and at its end;
12 it diverged (the report on stderr says where and what); 2 the file or the machine it needs is
not usable (one line: truncated, damaged, another format version, a disk image that changed).
"""

from __future__ import annotations

import sys
import time

from ..config import ConfigError
from .replay import DIVERGED, open_recording, verify


def replay_command(path: str, serial="stdio", debugcon=None, gdb: str | None = None) -> int:
    from ..debug.gdbstub import parse_address, run_gdb
    try:
        if gdb:
            try:
                parse_address(gdb)
            except ValueError as e:
                raise ConfigError(f"--gdb: {e}") from None
        m, rec, tl, tt = open_recording(path, {"serial": serial, "debugcon": debugcon})
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    try:
        if gdb:
            from ..debug.debugger import Debugger
            dbg = Debugger(m)
            dbg.attach_recording(tt)
            run_gdb(dbg, gdb, wait=True,
                    log=lambda text: print(f"aero: {text}", file=sys.stderr, flush=True))
            return 0
        t0 = time.perf_counter()
        r, div, checked = verify(m, tl, tt)
        dt = time.perf_counter() - t0
    except KeyboardInterrupt:
        print("aero: interrupted", file=sys.stderr)
        return 130
    finally:
        m.close()
        rec.close()
    if div is not None:
        print(div.report(), file=sys.stderr)
        return DIVERGED
    n = tl.head - tl.start
    print(f"aero: replay matches {path}: instructions {tl.start} to {tl.head} "
          f"({checked['checkpoints']} checkpoints, {checked['keyframes']} keyframes"
          f"{', the final state' if checked.get('final') else ''}; {dt:.1f} s, "
          f"{n / max(dt, 1e-9) / 1e6:.2f} M instructions/s)", file=sys.stderr)
    return 0
