"""Replaying a recording: the machine rebuilt from it, re-executed, and checked against it.

``open_recording(path, host)`` rebuilds the recorded machine (its settings, checked against the
identity recorded with it: memory, firmware, devices, every disk image by SHA-256) and puts it in
the first keyframe.  ``verify`` re-executes the whole recording, posting the recorded inputs at
their ticks, and compares as it goes: the registers at every checkpoint, the state digest at
every keyframe, and the final state.

On a divergence it narrows down where the replay went astray: the last checkpoint that agreed
and the first that did not bound it (record with ``checkpoint_every=1`` to make that one
instruction); then the window between them is re-executed to find the instruction that last
changed what differs (a register, or the first differing byte of memory), and both states are
printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import statefile
from ..build import build_machine
from ..config import ConfigError, HARDWARE_KEYS, MachineConfig
from ..cpu.disasm import disasm_bytes
from ..debug import inspect as I
from ..testing.statediff import diff as state_diff
from .digest import StateDigest
from .recording import Recording, RecordingError
from .timeline import CP_FIELDS, FileTimeline, checkpoint_row
from .travel import TimeTravel

DIVERGED = 12           # exit status of `aero replay` when the replay differs from the recording


@dataclass
class Divergence:
    what: str                   # "registers", "state", "end"
    good: int                   # the last instruction count known to agree
    bad: int                    # the first count known to differ
    lines: list = field(default_factory=list)      # the report

    def report(self) -> str:
        return "\n".join(self.lines)


def open_recording(path: str, host: dict | None = None):
    """(machine, recording, timeline, time travel) for a recording file, the machine in its
    first keyframe.  ``host``: host-side settings (serial, debugcon, ...).  RecordingError
    (one line) if the file or the machine it needs is not usable."""
    rec = Recording(path)
    try:
        hw = {k: v for k, v in rec.header.get("config", {}).items() if k in HARDWARE_KEYS}
        try:
            cfg = MachineConfig(**hw, **(host or {}))
            m = build_machine(cfg)
        except (ConfigError, TypeError) as e:
            raise RecordingError(f"{path}: the recorded machine cannot be built: {e}") from None
        try:
            statefile.check_identity(rec.header.get("machine", {}), m)
        except ValueError as e:
            m.close()
            msg = str(e).replace("the state is of", "it was recorded on")
            raise RecordingError(f"{path}: {msg}") from None
        tl = FileTimeline(rec)
        tt = TimeTravel(m, tl)
        try:
            tt.restore(0)
        except (ValueError, KeyError) as e:
            m.close()
            raise RecordingError(f"{path}: its first keyframe does not fit the machine: {e}") \
                from None
        return m, rec, tl, tt
    except BaseException:
        rec.close()
        raise


class _Checker:
    """Host timers comparing the replay with the recording as it goes."""

    def __init__(self, m, tl, tt):
        self.m, self.tl, self.tt = m, tl, tt
        self.digest = StateDigest()
        plan = [(row[0], 0, j) for j, row in enumerate(tl.checkpoints)]
        plan += [(k.icount, 1, j) for j, k in enumerate(tl.keyframes) if j > 0]
        plan.sort()
        self.plan = plan
        self.pos = 0
        self.good = tl.start
        self.divergence: Divergence | None = None
        self.checked = {"checkpoints": 0, "keyframes": 0}
        self._arm()

    def _arm(self) -> None:
        if self.pos < len(self.plan):
            self.m.at_icount(self.plan[self.pos][0], self._fire)

    def _fire(self) -> None:
        m = self.m
        icount = m.cpu.icount
        while self.pos < len(self.plan) and self.plan[self.pos][0] <= icount:
            at, kind, j = self.plan[self.pos]
            self.pos += 1
            if at != icount:
                continue                    # passed by (never: timers stop exactly there)
            if kind == 0:
                rec = self.tl.checkpoints[j]
                row = checkpoint_row(m.cpu)
                self.checked["checkpoints"] += 1
                if row != rec:
                    self._diverged("registers", icount, rec, row)
                    return
            else:
                kf = self.tl.keyframes[j]
                if kf.edit:
                    # the host changed the machine here while recording: do the same
                    self.tt.restore(j)
                    self.good = icount
                    continue
                st = m.get_state()
                self.checked["keyframes"] += 1
                if self.digest(st) != kf.digest:
                    self._diverged("state", icount, self.tl.state(j), st)
                    return
            self.good = icount
        self._arm()

    def _diverged(self, what, icount, recorded, replayed) -> None:
        self.divergence = (what, self.good, icount, recorded, replayed)
        self.m.request_stop()


def verify(m, tl, tt, progress=None):
    """Re-execute the recording on ``m`` (in its first keyframe) and compare.  Returns (the
    machine's last RunResult, Divergence or None, what was checked)."""
    checker = _Checker(m, tl, tt)
    end = tl.end or {}
    r = m.run_until(icount=tl.head)
    m.cancel_timers(checker._fire)
    if checker.divergence is not None:
        return r, _explain(m, tl, tt, *checker.divergence), checker.checked
    if m.cpu.icount != tl.head:
        d = Divergence("end", checker.good, m.cpu.icount, [
            f"the replay ended at instruction {m.cpu.icount} ({r.status}"
            f"{': ' + r.detail if r.detail else ''}); the recording goes on to {tl.head}"])
        return r, d, checker.checked
    if end.get("digest"):
        st = m.get_state()
        if checker.digest(st) != end["digest"]:
            d = Divergence("state", checker.good, tl.head,
                           [f"the final state differs (the recording's end, instruction "
                            f"{tl.head}); the last check that agreed was at {checker.good}"])
            return r, d, checker.checked
        checker.checked["final"] = 1
    return r, None, checker.checked


# ---------------------------------------------------------------------------------------------
# Explaining a divergence
# ---------------------------------------------------------------------------------------------
def _explain(m, tl, tt, what, good, bad, recorded, replayed) -> Divergence:
    every = tl.header.get("checkpoint_every", 0)
    if what == "registers":
        lines = [f"replay diverged: the registers differ at instruction {bad}; they agreed at "
                 f"instruction {good}" + (" (the first differing instruction: the recording "
                                          "has a checkpoint at every one)"
                                          if bad - good == 1 else
                                          f" (the recording's checkpoints are {every} apart; "
                                          "record with --checkpoint-every 1 to pin the "
                                          "instruction)")]
        lines.append(f"  {'register':<9} {'recorded':>12} {'replayed':>12}")
        differ = []
        for name, a, b in zip(CP_FIELDS, recorded, replayed):
            mark = "  <--" if a != b else ""
            if a != b:
                differ.append(name)
            lines.append(f"  {name:<9} {a:>#12x} {b:>#12x}{mark}")
        lines += _last_change(m, tl, tt, good, bad, differ)
        return Divergence("registers", good, bad, lines)
    diffs = state_diff(recorded, replayed, "", None, 12)
    lines = [f"replay diverged: the machine state differs at instruction {bad} (the keyframe "
             f"there); the registers agreed at every checkpoint up to it; the last check that "
             f"agreed was at {good}", "  what differs (recorded vs replayed):"]
    lines += [f"    {d}" for d in diffs]
    page = _first_page(recorded, replayed)
    if page is not None:
        pg, off = page
        addr = pg * 4096 + off
        lines += _last_write(m, tl, tt, good, bad, addr)
    return Divergence("state", good, bad, lines)


def _first_page(a: dict, b: dict):
    for i, (p, q) in enumerate(zip(a["ram"], b["ram"])):
        if p is not q and p != q:
            off = next(j for j in range(len(p)) if p[j] != q[j])
            return i, off
    return None


def _describe_insn(m) -> str:
    cpu = m.cpu
    lin = (cpu.base[1] + cpu.eip) & 0xFFFFFFFF
    raw = I.read_linear(m, lin, 15) or []
    code = bytes(b for b in (raw[:raw.index(None)] if None in raw else raw))
    try:
        n, text = disasm_bytes(code, cpu.eip, cpu.code32)
    except Exception:                   # noqa: BLE001 (unreadable code: say so)
        n, text = 0, "(cannot decode)"
    return f"{cpu.sel[1]:04x}:{cpu.eip:08x}  {code[:n].hex(' '):<24} {text}"


def _last_change(m, tl, tt, good, bad, names) -> list:
    """Re-execute (good, bad] one instruction at a time; the last instruction after which one
    of the differing registers changed."""
    if not names or bad - good > 1_000_000:
        return []
    idx = [CP_FIELDS.index(n) for n in names if n not in ("icount", "tick")]
    if not idx:
        return []
    try:
        tt.goto(good)
    except Exception:                   # noqa: BLE001 (the explanation is best effort)
        return []
    last = None
    prev = checkpoint_row(m.cpu)
    hooks = m.hooks
    hooks.muted = m.quiet = True
    try:
        while m.cpu.icount < bad:
            where = _describe_insn(m)
            at = m.cpu.icount
            m.run_until(instructions=1)
            row = checkpoint_row(m.cpu)
            if any(row[i] != prev[i] for i in idx):
                last = (at, where, [(CP_FIELDS[i], prev[i], row[i]) for i in idx
                                    if row[i] != prev[i]])
            prev = row
    finally:
        hooks.muted = m.quiet = False
    if last is None:
        return []
    at, where, changes = last
    ch = ", ".join(f"{n} {a:#x} -> {b:#x}" for n, a, b in changes)
    return [f"  in the replay, the last instruction that changed them: instruction {at}",
            f"    {where}    ({ch})"]


def _last_write(m, tl, tt, good, bad, addr) -> list:
    """The replay's last write to physical ``addr`` in (good, bad]."""
    try:
        tt.goto(good)
    except Exception:                   # noqa: BLE001
        return []
    writes = []

    def on_write(m_, acc):
        cpu = m_.cpu
        writes.append((cpu.now() - cpu.idle_time, acc.eip, acc.value))
        return False
    hooks = m.hooks
    h = hooks.mem_write(on_write, addr, addr + 1, physical=True)
    saved = hooks.muted, hooks.unmuted, m.quiet
    hooks.muted, hooks.unmuted, m.quiet = True, frozenset((h,)), True
    try:
        m.run_until(icount=bad)
    finally:
        hooks.muted, hooks.unmuted, m.quiet = saved
        h.remove()
    first = [f"  the first differing byte: physical {addr:#x}"]
    if not writes:
        return first + ["  the replay did not write it between those instructions"]
    at, eip, value = writes[-1]
    return first + [f"  the replay last wrote it at instruction {at} (EIP {eip:#x}, value "
                    f"{value:#x})"]
