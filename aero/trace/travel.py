"""Time travel: moving a machine to any instruction count of a recorded run.

A position is an instruction count.  Going to N restores the last keyframe at or before N and
re-executes up to N with every host hook muted (the machine is deterministic on its instruction
count; the recorded inputs are posted again at their ticks), or, when N is ahead and near, just
runs forward.  Everything backwards is built on that:

* ``reverse_stepi``: to N - 1: exactly the state a forward run had one instruction earlier.
* ``reverse_next``: back over a call: if the previous instruction returned to here (RET, RETF,
  IRET), to the CALL or INT n that made the call, or to the moment the interrupt was taken;
  otherwise one instruction.
* ``last_hit``: the last stop some hooks would have caused before here, found by re-executing
  the keyframe windows backwards from the current one with only those hooks live (counting
  their hits), then re-executing the winning window up to that hit, where the hook stops the
  machine as it would have going forward (the debugger's reverse-continue and who-wrote).

A position "at N" is the state between instruction N - 1 and N before any interrupt due at
that boundary is taken (what ``Machine.run_until(icount=N)`` gives); a stop in an interrupt
handler's first instruction is at the same count, after the interrupt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError
from ..cpu.decoder import decode
from ..faults import CPUFault
from ..inputs import event_from_json
from ..debug import inspect as I


class TravelError(ConfigError):
    """A position time travel cannot reach (one line)."""


_CALLS = frozenset(("CALL", "CALL_RM", "CALLF", "CALLF_M", "INT", "INT3", "INTO", "INT1"))
_RETURNS = frozenset(("RETN", "RETN_IMM", "RETF", "IRET"))


class TimeTravel:
    def __init__(self, machine, timeline, recorder=None):
        """Travel over ``timeline`` (``aero.trace.timeline``).  ``recorder``: the recording in
        progress that made it (live time travel: the timeline grows as the machine runs past
        its head); without one the timeline is a finished recording and running forward stops
        at its end."""
        self.m = machine
        self.tl = timeline
        self.rec = recorder
        self.off_timeline = False           # the host changed the machine (no recorder)
        self._queue: list = []              # recorded inputs not yet posted again
        self._armed = False
        self.restores = 0                   # keyframes restored (for the figures)
        machine.edit_listeners.append(self._on_edit)

    def close(self) -> None:
        m = self.m
        m.cancel_timers(self._inject)
        m.cancel_timers(self._end_stop)
        if self._on_edit in m.edit_listeners:
            m.edit_listeners.remove(self._on_edit)

    # ------------------------------------------------------------------------------------------
    @property
    def start(self) -> int:
        return self.tl.start

    @property
    def head(self) -> int:
        if self.rec is not None:
            self.rec.sync()
        return self.tl.head

    @property
    def at_end(self) -> bool:
        """A finished recording's machine at its last instruction."""
        return self.rec is None and self.m.cpu.icount >= self.tl.head

    def _on_edit(self, what: str) -> None:
        if self.rec is None:
            self.off_timeline = True
            self.m.cancel_timers(self._inject)
            self.m.cancel_timers(self._end_stop)

    # -- recorded inputs -----------------------------------------------------------------------
    def _arm_inputs(self) -> None:
        """Queue the recorded inputs the machine has not posted yet (numbered from its input
        queue's count on), each to be posted again at the tick it was first posted at."""
        m = self.m
        m.cancel_timers(self._inject)
        self._queue = self.tl.inputs_from(m.inputs.count)
        if self._queue:
            m.at_tick(self._queue[0][1], self._inject)

    def _inject(self) -> None:
        m = self.m
        now = m.clock.now()
        q = self._queue
        rec = self.rec
        while q and q[0][1] <= now:
            n, _, tick, data = q.pop(0)
            if n != m.inputs.count:
                # not the input the recording posted next: the run has left the recording
                self._queue = []
                return
            if rec is not None:
                rec.injecting = True
            try:
                m.inputs.post(tick, event_from_json(data))
            finally:
                if rec is not None:
                    rec.injecting = False
        if q:
            m.at_tick(q[0][1], self._inject)

    def _arm_end(self) -> None:
        """A finished recording: forward runs stop at its end."""
        m = self.m
        m.cancel_timers(self._end_stop)
        if self.rec is None and m.cpu.icount < self.tl.head:
            m.at_icount(self.tl.head, self._end_stop)

    def _end_stop(self) -> None:
        self.m.request_stop()

    # -- positions -----------------------------------------------------------------------------
    def restore(self, i: int) -> None:
        """Put the machine in keyframe ``i``."""
        m = self.m
        hooks = m.hooks
        was = hooks.muted
        hooks.muted = True              # a restore is not the guest switching modes or CR3
        try:
            m.set_state(self.tl.state(i))
        finally:
            hooks.muted = was
        self.restores += 1
        self.off_timeline = False
        self._arm_inputs()
        self._arm_end()
        if self.rec is not None:
            self.rec.went_back()

    def check_position(self, target: int) -> None:
        lo, hi = self.start, self.head
        if not lo <= target <= hi:
            raise TravelError(f"instruction {target} is outside the recording "
                              f"({lo} to {hi})")

    def goto(self, target: int) -> None:
        """Move the machine to instruction count ``target`` (see the module's notes)."""
        self.check_position(target)
        m = self.m
        cpu = m.cpu
        i = self.tl.keyframe_before(target)
        cur = cpu.icount
        if self.off_timeline or not self.tl.keyframes[i].icount <= cur <= target:
            self.restore(i)
        self._run_muted(target)
        # resuming here runs this instruction without stopping again at a breakpoint on it
        cpu._resume_at = (cpu.icount, cpu.base[1], cpu.eip)

    def _run_muted(self, target: int):
        m = self.m
        hooks = m.hooks
        was = hooks.muted, m.quiet
        hooks.muted = m.quiet = True
        try:
            r = m.run_until(icount=target)
        finally:
            hooks.muted, m.quiet = was
        if m.cpu.icount != target:
            raise TravelError(f"re-executing the recording stopped at instruction "
                              f"{m.cpu.icount} ({r.status}{': ' + r.detail if r.detail else ''}) "
                              f"before reaching {target}")
        return r

    def reverse_stepi(self, n: int = 1) -> int:
        self.head                                   # noqa: B018 (brings a recording up to date)
        cur = self.m.cpu.icount
        if cur <= self.start:
            raise TravelError("at the start of the recording")
        target = max(self.start, cur - max(1, n))
        self.goto(target)
        return target

    # -- searching backwards -------------------------------------------------------------------
    def _windows(self, limit: int):
        """(keyframe index, window start, window end) going backwards from ``limit``: each
        window runs from a keyframe to the next later one (or ``limit``); a keyframe an edit
        superseded (another at the same count) starts no window."""
        kfs = self.tl.keyframes
        end = limit
        for i in range(len(kfs) - 1, -1, -1):
            k = kfs[i].icount
            if k < end:
                yield i, k, end
                end = k

    def last_hit(self, scan, limit: int | None = None):
        """Find the last hit, before instruction ``limit`` (default: here), of the hooks that
        ``scan`` (a ``HookScan``) manages, by re-executing the keyframe windows backwards
        with only those hooks live.  Returns the hit (``Hit``: the instruction it came from,
        whether it stops after that instruction, what the hook saw), with ``scan.found`` set
        for ``reproduce``; None if nothing hit.  The machine is left somewhere in the
        recording: go on with ``goto`` or ``reproduce``."""
        m = self.m
        self.head                                   # noqa: B018 (brings a recording up to date)
        cur = m.cpu.icount if limit is None else limit
        if cur <= self.start:
            raise TravelError("at the start of the recording")
        hooks = m.hooks
        saved = hooks.muted, hooks.unmuted, m.quiet
        hooks.muted, hooks.unmuted, m.quiet = True, frozenset(scan.hooks), True
        try:
            for i, lo, hi in self._windows(cur):
                self.restore(i)
                scan.counting()
                m.run_until(icount=hi)
                hits = [k for k, h in enumerate(scan.hits) if h.icount < cur]
                if hits:
                    scan.found = (i, hits[-1], cur)
                    return scan.hits[hits[-1]]
        finally:
            hooks.muted, hooks.unmuted, m.quiet = saved
        scan.found = None
        return None

    def reproduce(self, scan):
        """Stop the machine at the hit ``last_hit`` found, as its hook would have stopped it
        going forward (a breakpoint before its instruction, an interrupt catch in the
        handler); the RunResult."""
        m = self.m
        i, k, cur = scan.found
        hooks = m.hooks
        saved = hooks.muted, hooks.unmuted, m.quiet
        hooks.muted, hooks.unmuted, m.quiet = True, frozenset(scan.hooks), True
        try:
            self.restore(i)
            scan.stop_at(k)
            return m.run_until(icount=cur + 1)
        finally:
            hooks.muted, hooks.unmuted, m.quiet = saved

    # -- stepping over backwards ---------------------------------------------------------------
    def previous_instruction(self):
        """Go back one instruction; (the decoded instruction there, the state's CS base, EIP
        and stack pointer before we left)."""
        m = self.m
        cpu = m.cpu
        after = (cpu.base[1], cpu.eip, _sp(cpu))
        self.reverse_stepi(1)
        return _insn_at(m), after

    def reverse_next(self) -> str:
        """Step back over calls: if the previous instruction returned to here, back to the
        CALL or INT n that called (or to the instruction before an interrupt or exception was
        taken); otherwise one instruction back.  Returns "call", "interrupt" or "step"."""
        m = self.m
        cpu = m.cpu
        cur = cpu.icount
        ins, (cs_base, eip, sp) = self.previous_instruction()
        if ins is None or ins.entry.name not in _RETURNS:
            return "step"
        if ins.entry.name == "IRET":
            hit = self.last_hit(_InterruptScan(m, eip), limit=cur - 1)
            if hit is not None and hit.icount > self.start:
                self.goto(hit.icount - 1)
                return "interrupt"
            self.goto(cur - 1)
            return "step"
        mask = 0xFFFFFFFF if cpu.attr[2] & 0x4000 else 0xFFFF
        hit = self.last_hit(_CallScan(m, (cs_base + eip) & 0xFFFFFFFF, (sp - ins.imm) & mask),
                            limit=cur - 1)
        if hit is not None:
            self.goto(hit.icount)
            return "call"
        self.goto(cur - 1)
        return "step"


def _sp(cpu) -> int:
    return cpu.R[4] if cpu.attr[2] & 0x4000 else cpu.R[4] & 0xFFFF


def _insn_at(m):
    """The decoded instruction at CS:EIP (None if it cannot be read)."""
    cpu = m.cpu
    lin = (cpu.base[1] + cpu.eip) & 0xFFFFFFFF
    raw = I.read_linear(m, lin, 15) or []
    code = bytes(b for b in (raw[:raw.index(None)] if None in raw else raw))
    if not code:
        return None
    try:
        return decode(lambda i: code[i], cpu.eip, cpu.code32)
    except (CPUFault, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Hit:
    icount: int             # the instruction it came from (or the count an interrupt came at)
    after: bool             # the hook stops after that instruction (a watch, most catches)
    what: object = None     # what the hook saw (a MemAccess, an InterruptEvent, a point...)
    between: bool = False   # it came between instructions (an interrupt being delivered)


class HookScan:
    """Base of the scans ``TimeTravel.last_hit`` runs: a hook's callback calls ``hit()``,
    which records the hit and says whether to stop (only when reproducing one)."""

    def __init__(self, m):
        self.m = m
        self.hooks: list = []
        self.hits: list[Hit] = []
        self.found = None
        self._stop = None

    def counting(self) -> None:
        self.hits = []
        self._stop = None

    def stop_at(self, k: int) -> None:
        self.hits = []
        self._stop = k

    def hit(self, after: bool = False, what=None) -> bool:
        cpu = self.m.cpu
        n = len(self.hits)
        self.hits.append(Hit(cpu.now() - cpu.idle_time, after, what, cpu.cur_block is None))
        return self._stop is not None and n == self._stop

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks = []


class _CallScan(HookScan):
    """Calls (CALL, CALLF, INT n) whose return address is ``here`` with the stack pointer
    where the return left it."""

    def __init__(self, m, here: int, sp: int):
        super().__init__(m)
        cpu = m.cpu

        def fn(m_, lin):
            ins = _insn_at(m_)
            if ins is None:
                return False
            nxt = (cpu.base[1] + ((ins.eip + ins.length) &
                                  (0xFFFFFFFF if cpu.code32 else 0xFFFF))) & 0xFFFFFFFF
            if nxt != here or _sp(cpu) != sp:
                return False
            return self.hit()
        self.hooks = [m.hooks.exec(fn, match=lambda ins: ins.entry.name in _CALLS)]


class _InterruptScan(HookScan):
    """Hardware interrupts and exceptions taken with ``eip`` as the return address."""

    def __init__(self, m, eip: int):
        super().__init__(m)

        def fn(m_, ev):
            if ev.kind not in ("hw", "fault") or ev.eip != eip:
                return False
            return self.hit()
        self.hooks = [m.hooks.interrupt(fn)]
