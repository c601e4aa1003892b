"""`aero bench --travel`: what recording costs and how fast time travel is.

The workload is ``aero/benchdata/travel.bin``, a boot sector that runs until stopped: it fills a
512 KiB region one word at a time (a page dirtied every 6,144 instructions), checksums each page
through a call, and takes a 1 kHz timer interrupt.  The figures:

* a plain run of N instructions, the same run recorded to a file (the ratio is the recording's
  cost), the file's size, and a replay of it (checked at every checkpoint and keyframe);
* over that recording: go to a random instruction, reverse-stepi at a random instruction,
  reverse-continue to a breakpoint (the interrupt handler) and to a watchpoint (the checksum
  variable), who-wrote on a word of the region: median and worst of the samples, and the worst
  place for goto (the instruction before a keyframe: a whole interval re-executed).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time

from ..build import build_machine
from ..config import MachineConfig
from ..debug.debugger import Debugger
from .recorder import KEYFRAME_EVERY, Recorder
from .replay import open_recording, verify

WORKLOAD = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchdata", "travel.bin")
IRQ0, SUM, REGION = 0x7C6B, 0x7C71, 0x10000     # from travel.asm's listing


def _image(workdir: str) -> str:
    img = os.path.join(workdir, "travel.img")
    with open(WORKLOAD, "rb") as f, open(img, "wb") as out:
        out.write(f.read().ljust(1474560, b"\0"))
    return img


def _machine(img: str):
    return build_machine(MachineConfig(fda=img, boot="a"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def travel_figures(instructions: int = 100_000_000, keyframe_every: int = KEYFRAME_EVERY,
                   samples: int = 10, seed: int = 1, progress=print) -> dict:
    out: dict = {"instructions": instructions, "keyframe_every": keyframe_every}
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        img = _image(d)
        m = _machine(img)
        out["plain_s"] = _timed(lambda: m.run_until(icount=instructions))
        m.close()
        progress(f"  plain run              {out['plain_s']:8.1f} s "
                 f"({instructions / out['plain_s'] / 1e6:.2f} MIPS)")
        path = os.path.join(d, "travel.aerorec")
        m = _machine(img)
        rec = Recorder(m, path=path, keyframe_every=keyframe_every, keep_states=False)

        def record():
            rec.start()
            r = m.run_until(icount=instructions)
            rec.stop(r)
        out["record_s"] = _timed(record)
        m.close()
        out["record_ratio"] = out["record_s"] / out["plain_s"]
        out["file_bytes"] = os.path.getsize(path)
        out["keyframes"] = len(rec.timeline.keyframes)
        progress(f"  recorded               {out['record_s']:8.1f} s   x{out['record_ratio']:.3f}"
                 f" of the plain run; {out['file_bytes'] / 1e6:.1f} MB, {out['keyframes']} "
                 f"keyframes, {out['file_bytes'] / instructions:.3f} bytes/instruction")
        m, recf, tl, tt = open_recording(path)
        res = {}
        out["replay_s"] = _timed(lambda: res.setdefault("v", verify(m, tl, tt)))
        out["replay_ok"] = res["v"][1] is None
        progress(f"  replayed and checked   {out['replay_s']:8.1f} s   "
                 f"{'equal' if out['replay_ok'] else 'DIVERGED'}")

        dbg = Debugger(m)
        dbg.attach_recording(tt)
        lo, hi = tl.start + 1, tl.head
        times: dict = {k: [] for k in ("goto", "reverse_stepi", "rc_breakpoint", "rc_watch",
                                       "who_wrote")}
        for _ in range(samples):
            times["goto"].append(_timed(lambda: dbg.goto(rnd.randrange(lo, hi))))
            dbg.goto(rnd.randrange(lo + 100_000, hi))
            times["reverse_stepi"].append(_timed(dbg.reverse_stepi))
        bp = dbg.break_at(IRQ0)
        for _ in range(samples):
            dbg.goto(rnd.randrange(lo + 100_000, hi))
            times["rc_breakpoint"].append(_timed(dbg.reverse_continue))
        dbg.delete(bp.id)
        wp = dbg.watch(SUM, 2)
        for _ in range(samples):
            dbg.goto(rnd.randrange(lo + 100_000, hi))
            times["rc_watch"].append(_timed(dbg.reverse_continue))
        dbg.delete(wp.id)
        for _ in range(samples):
            dbg.goto(rnd.randrange(lo + 1_000_000, hi))
            addr = REGION + 2 * rnd.randrange(0, 0x40000)
            times["who_wrote"].append(_timed(lambda: dbg.who_wrote(addr, 2)))
        # the worst place: just before a keyframe, a whole interval from the previous one
        k = tl.keyframes[len(tl.keyframes) // 2].icount
        dbg.goto(tl.start)
        out["goto_worst_s"] = _timed(lambda: dbg.goto(k - 1))
        for name, ts in times.items():
            out[name] = {"median_s": statistics.median(ts), "max_s": max(ts)}
            progress(f"  {name.replace('_', ' '):22} median {statistics.median(ts) * 1e3:7.0f} ms"
                     f"   worst {max(ts) * 1e3:7.0f} ms   ({samples} samples)")
        progress(f"  goto, worst place      {out['goto_worst_s'] * 1e3:7.0f} ms  (the instruction"
                 " before a keyframe)")
        m.close()
        recf.close()
    return out
