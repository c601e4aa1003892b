"""A live profile of a running machine: hottest code, instruction mix, interrupt and device I/O
rates, guest MIPS.

Two sources, chosen for what they cost:

* **Samples** (free for the guest): a background thread looks at the block the CPU is running
  (``cpu.cur_block``) every ``interval`` seconds and counts it.  Hot code and the instruction
  mix come from the samples: each sample credits the block's instructions.  Reading those
  attributes from another thread is safe in CPython; a sample may land between blocks (then it
  counts as "between blocks": the run loop, devices, idle skipping).
* **Counters** (cheap hooks, ``aero.hooks``): every interrupt and exception by vector, and every
  port access by device, counted exactly.  They are installed by ``start`` and removed by
  ``stop``; I/O and interrupts already cost far more than a counter.

``report()`` returns the figures since ``start`` (or the last ``reset``) as plain data; the
TUI's profile pane shows it a few times a second.
"""

from __future__ import annotations

import collections
import threading
import time

from ..faults import NAMES as VECTOR_NAMES


class LiveProfile:
    def __init__(self, machine, interval: float = 0.005, symbols=None):
        self.m = machine
        self.interval = interval
        self.symbols = symbols
        self._hooks = []
        self._thread = None
        self._stop = threading.Event()
        self.reset()

    def reset(self) -> None:
        self.samples: collections.Counter = collections.Counter()     # block -> samples
        self.idle_samples = 0
        self.vectors: collections.Counter = collections.Counter()     # (kind, vector) -> n
        self.ports: collections.Counter = collections.Counter()       # (device, dir) -> n
        self.t0 = time.monotonic()
        self.icount0 = self.m.cpu.icount
        self.idle0 = self.m.cpu.idle_time

    # -- collection -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        hooks = self.m.hooks
        owner = self.m.io.owner
        vectors, ports = self.vectors, self.ports

        def on_irq(m, ev):
            vectors[(ev.kind, ev.vector)] += 1

        def on_io(m, acc):
            dev = owner.get(acc.port)
            ports[(getattr(dev, "name", f"port {acc.port:#x}"), "out" if acc.write else "in")] += 1
        self._hooks = [hooks.interrupt(on_irq), hooks.io(on_io, 0, 0x10000)]
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="aero-profile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _sample(self) -> None:
        cpu = self.m.cpu
        samples = self.samples
        wait = self._stop.wait
        while not wait(self.interval):
            blk = cpu.cur_block
            if blk is None:
                self.idle_samples += 1
            else:
                samples[blk] += 1

    # -- results ----------------------------------------------------------------------------------
    def report(self, top: int = 15) -> dict:
        """Figures since start: ``mips``, ``instructions``, ``idle_fraction`` (virtual time
        skipped while halted), ``hot`` (rows: address, symbol, share of samples, instructions
        of the block, first instruction), ``mix`` (mnemonic, share), ``interrupts`` (per
        second, by vector), ``io`` (per second, by device and direction)."""
        cpu = self.m.cpu
        wall = max(1e-9, time.monotonic() - self.t0)
        n = cpu.icount - self.icount0
        idle = cpu.idle_time - self.idle0
        total = sum(self.samples.values()) + self.idle_samples
        hot = []
        by_addr: collections.Counter = collections.Counter()
        blocks = {}
        for blk, c in self.samples.items():
            by_addr[blk.lin] += c
            blocks.setdefault(blk.lin, blk)
        for lin, c in by_addr.most_common(top):
            blk = blocks[lin]
            sym = self.symbols.describe(lin) if self.symbols is not None else None
            hot.append({"address": lin, "symbol": sym, "share": c / total if total else 0.0,
                        "instructions": len(blk.insns),
                        "first": blk.insns[0].mnemonic if blk.insns else "?"})
        mix: collections.Counter = collections.Counter()
        for blk, c in self.samples.items():
            for ins in blk.insns:
                mix[ins.mnemonic.lower()] += c
        mtotal = sum(mix.values()) or 1
        return {
            "wall": wall,
            "instructions": n,
            "mips": n / wall / 1e6,
            "idle_fraction": idle / (n + idle) if n + idle else 0.0,
            "samples": total,
            "between_blocks": self.idle_samples / total if total else 0.0,
            "hot": hot,
            "mix": [(k, v / mtotal) for k, v in mix.most_common(top)],
            "interrupts": [(f"{kind} {vec:#04x}" + (f" {VECTOR_NAMES[vec]}" if kind == "fault"
                                                     and vec in VECTOR_NAMES else ""),
                            c / wall) for (kind, vec), c in self.vectors.most_common(top)
                           if vec is not None],
            "io": [(f"{dev} {d}", c / wall) for (dev, d), c in self.ports.most_common(top)],
        }


def format_report(r: dict) -> str:
    lines = [f"{r['mips']:.2f} MIPS  ({r['instructions']:,} instructions in {r['wall']:.1f} s; "
             f"halted {100 * r['idle_fraction']:.0f}% of virtual time; {r['samples']} samples)",
             "", "hottest code"]
    for h in r["hot"]:
        name = f" <{h['symbol']}>" if h["symbol"] else ""
        lines.append(f"  {100 * h['share']:5.1f}%  {h['address']:#010x}{name}  "
                     f"{h['instructions']:2} insns from {h['first']}")
    lines += ["", "instruction mix"]
    lines += [f"  {100 * share:5.1f}%  {name}" for name, share in r["mix"]]
    lines += ["", "interrupts per second"]
    lines += [f"  {rate:10.1f}  {name}" for name, rate in r["interrupts"]] or ["  none"]
    lines += ["", "port I/O per second"]
    lines += [f"  {rate:10.1f}  {name}" for name, rate in r["io"]] or ["  none"]
    return "\n".join(lines)
