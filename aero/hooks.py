"""Hooks: Python callbacks on what a running machine does, each with a handle to remove it.

    h = machine.hooks.exec(lambda m, addr: print(hex(addr)), 0x7C00)
    r = machine.run_until()          # stops if a callback returns a true value
    h.remove()

Kinds, and where a callback that returns a true value stops the machine:

=========================  =================================================  ==================
kind                       callback ``fn(machine, info)``; ``info`` is        stops
=========================  =================================================  ==================
``exec(addr[, end])``      the linear (or ``physical=True``) address of the    before the
                           instruction; no address: every instruction          instruction
``block()``                the linear address of the block's first insn        before the block
``mem_read/mem_write/``    ``MemAccess(address, size, value, old, write,       after the
``mem_access(start, end)`` physical)``; linear or ``physical=True``            instruction
``io(port[, end])``        ``IOAccess(port, size, value, write)``              after the
                                                                               instruction
``interrupt(vectors)``     ``InterruptEvent(vector, kind, error_code, cs,      at the handler's
                           eip, cr2)``; kind "hw", "fault", "soft" or          first instruction
                           "shutdown" (triple fault, vector None)
``mode()``                 ``ModeChange(old, new)``: ("real" | "protected" |   after the
                           "v86", paging)                                      instruction
``cr3()``                  ``CR3Load(old, new)``                               after the
                                                                               instruction
``bios(vector, function)`` the Aero BIOS's ``BIOSCall`` when a service call    after the call
                           completes                                           returns to the
                                                                               guest stub
=========================  =================================================  ==================

``Machine.run_until`` then returns status "hook" with the handle in ``result.hook``; the stop lands
on an exact instruction boundary.  Resuming from a stop *before* an instruction executes that
instruction without calling the hook again (as gdb steps over a breakpoint).  An exception raised
by a callback stops the machine the same way and is raised again from ``run_until``.

Nothing is installed until the first hook of a kind is added, and removing the last one removes
its dispatcher: exec and block hooks are compiled into the blocks they concern
(``aero.cpu.hookpoints``; the JIT's units call the callback themselves, ``InlineHook``), memory
hooks mark only the pages they cover (``aero.mem.watch``), I/O hooks wrap the CPU's port
functions, the others set the CPU's observers.  With no hook the run loop and the memory path do
no extra work.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cpu.hookpoints import ExecPoint
from .faults import BlockExit
from .mem.watch import Watch


@dataclass(frozen=True, slots=True)
class MemAccess:
    address: int            # in the hook's space: linear, or physical for physical hooks
    size: int
    value: int | None       # the value read or written
    old: int | None         # before a write (None where it cannot be read without side effects)
    write: bool
    physical: bool
    eip: int                # the instruction making the access


@dataclass(frozen=True, slots=True)
class IOAccess:
    port: int
    size: int
    value: int
    write: bool
    eip: int                # the IN/OUT/INS/OUTS instruction


@dataclass(frozen=True, slots=True)
class InterruptEvent:
    vector: int | None
    kind: str               # "hw", "fault", "soft", "shutdown"
    error_code: int | None
    cs: int
    eip: int                # the interrupted / faulting instruction (or the next, for "soft")
    cr2: int


@dataclass(frozen=True, slots=True)
class ModeChange:
    old: tuple              # (mode, paging)
    new: tuple


@dataclass(frozen=True, slots=True)
class CR3Load:
    old: int
    new: int


AFTER = "after"        # an exec callback's result: stop right after the instruction


class Hook:
    """A handle on an installed hook."""

    __slots__ = ("hooks", "kind", "fn", "where", "_hits", "_counted", "_parts", "_cells",
                 "_fold_at")

    def __init__(self, hooks, kind, fn, where):
        self.hooks = hooks
        self.kind = kind
        self.fn = fn
        self.where = where          # what it watches, for display
        self._hits = 0
        self._counted = None        # an exec hook's count, kept in its fire function's closure
        self._parts = ()
        self._cells = []            # (unit, cell): counts kept by the JIT's units (InlineHook)
        self._fold_at = 32

    @property
    def hits(self) -> int:
        """Times the callback was called."""
        return (self._hits + (self._counted() if self._counted is not None else 0) +
                sum(c.cell_contents for _, c in self._cells))

    def _count_in(self, unit, cell) -> None:
        """A compiled unit counts this hook's calls in ``cell``; the counts of units no longer
        run (``gen`` -1) are folded into ``_hits`` as the list grows."""
        if len(self._cells) >= self._fold_at:
            self._fold(lambda u: u.gen == -1)
            self._fold_at = max(32, 2 * len(self._cells))
        self._cells.append((unit, cell))

    def _fold(self, final) -> None:
        """Move the counts of the units ``final(unit)`` says will not run again into
        ``_hits``, and let those units go."""
        self._hits += sum(c.cell_contents for u, c in self._cells if final(u))
        self._cells = [(u, c) for u, c in self._cells if not final(u)]

    @property
    def installed(self) -> bool:
        return self in self.hooks.all

    def remove(self) -> None:
        """Uninstall (again: nothing)."""
        self.hooks._remove(self)

    def __repr__(self):
        return f"<Hook {self.kind} {self.where} hits={self.hits}>"


class InlineHook:
    """An exec hook as a JIT unit calls it itself (``aero.jit.translate.inline_hooks``): the
    mute test, the count, the exception handling and the result test are compiled into the unit,
    which calls the user's function directly; the hook's ``fire`` still decides while time
    travel mutes hooks, and runs in the interpreted first instruction of a run resumed at a
    hook's stop (``cpu.hook_skip``; ``aero.jit.unit.Unit.execute``)."""

    __slots__ = ("hook", "physical", "stop", "failed")

    def __init__(self, hook, physical, stop, failed):
        self.hook = hook            # its fn, and its hooks (their machine, their muted flag)
        self.physical = physical
        self.stop = stop            # stop(cpu, result): the callback returned a true value
        self.failed = failed        # failed(cpu, exception): it raised


class Hooks:
    def __init__(self, machine):
        self.machine = machine
        self.cpu = machine.cpu
        self.all: list[Hook] = []
        self.error: BaseException | None = None     # raised by a callback; run_until re-raises
        self._io: list[Hook] = []
        self._io_saved = None
        self._irq: list[Hook] = []
        self._mode: list[Hook] = []
        self._cr3: list[Hook] = []
        self._bios: list[Hook] = []
        self.muted = False          # callbacks not called (time travel re-running the past)
        self.unmuted = frozenset()  # ... except these hooks'

    # -- calling callbacks ---------------------------------------------------------------------------
    def _call(self, hook: Hook, info) -> bool:
        """Call a hook's callback; True if the machine must stop (it said so, or raised)."""
        if self.muted and hook not in self.unmuted:
            return False
        hook._hits += 1
        try:
            return bool(hook.fn(self.machine, info))
        except Exception as e:              # carried out of run_until at the stop
            if self.error is None:
                self.error = e
            return True

    def _stop_after(self, hook: Hook) -> None:
        """Stop once the current instruction completes."""
        cpu = self.cpu
        if cpu.hook_stop is None:
            cpu.hook_stop = hook
        cpu.rep_break = True
        cpu.request_exit()

    # -- execution -----------------------------------------------------------------------------------
    def exec(self, fn, address: int | None = None, end: int | None = None,
             physical: bool = False, match=None) -> Hook:
        """``fn(machine, address)`` before each instruction at ``address`` (or in [address,
        end)), linear unless ``physical``; with no address, before every instruction;
        ``match``: only instructions this predicate on the decoded instruction accepts.

        The callback's result: a true value stops the machine before the instruction;
        ``AFTER`` lets it run and stops the machine right after it."""
        if address is None:
            lo, hi = 0, 1 << 32
        else:
            lo, hi = address & 0xFFFFFFFF, (end if end is not None else address + 1)
        where = ("every instruction" if address is None else
                 f"{'phys' if physical else 'lin'} {lo:#x}" +
                 (f"-{hi:#x}" if hi - lo > 1 else "")) + (" (matching)" if match else "")
        hook = Hook(self, "exec", fn, where)
        pt = ExecPoint(self._exec_fire(hook, physical), lo, hi, physical=physical, match=match)
        return self._add_point(hook, pt)

    def block(self, fn) -> Hook:
        """``fn(machine, address)`` before the first instruction of every block."""
        hook = Hook(self, "block", fn, "block entry")
        return self._add_point(hook, ExecPoint(self._exec_fire(hook, False), entry=True))

    def _exec_fire(self, hook: Hook, physical: bool):
        hooks = self

        # called before every instruction the point covers (in the JIT's translations too):
        # the callback, the machine and the address choice are bound once
        fn, machine = hook.fn, hooks.machine

        def stop(cpu, r):
            if r is AFTER:
                hooks._stop_after(hook)
            else:
                cpu.hook_stop = hook
                cpu.hook_before = True
                cpu.attn = True
                raise BlockExit()

        def failed(cpu, e):                 # carried out of run_until at the stop
            hooks.error = hooks.error or e
            stop(cpu, True)

        # the count is a closure variable (a callback before every instruction pays less for
        # it than for an attribute of the hook): Hook.hits reads it
        n = 0
        if physical:
            def fire(cpu, lin, phys):
                nonlocal n
                if cpu.hook_skip or hooks.muted and hook not in hooks.unmuted:
                    return
                n += 1
                try:
                    r = fn(machine, phys)
                except Exception as e:
                    return failed(cpu, e)
                if r:
                    stop(cpu, r)
        else:
            def fire(cpu, lin, phys):
                nonlocal n
                if cpu.hook_skip or hooks.muted and hook not in hooks.unmuted:
                    return
                n += 1
                try:
                    r = fn(machine, lin)
                except Exception as e:
                    return failed(cpu, e)
                if r:
                    stop(cpu, r)
        hook._counted = lambda: n
        fire.inline = InlineHook(hook, physical, stop, failed)
        return fire

    def _add_point(self, hook: Hook, pt: ExecPoint) -> Hook:
        hook._parts = (pt,)
        self.all.append(hook)
        self.cpu.add_exec_point(pt)
        return hook

    # -- memory --------------------------------------------------------------------------------------
    def mem_read(self, fn, start: int, end: int | None = None, physical: bool = False) -> Hook:
        """``fn(machine, MemAccess)`` after each read overlapping [start, end) (one byte when
        ``end`` is omitted)."""
        return self._mem(fn, start, end, physical, True, False)

    def mem_write(self, fn, start: int, end: int | None = None, physical: bool = False) -> Hook:
        return self._mem(fn, start, end, physical, False, True)

    def mem_access(self, fn, start: int, end: int | None = None, physical: bool = False) -> Hook:
        return self._mem(fn, start, end, physical, True, True)

    def _mem(self, fn, start, end, physical, read, write) -> Hook:
        lo = start & 0xFFFFFFFF
        hi = end if end is not None else lo + 1
        kind = "mem_access" if read and write else "mem_read" if read else "mem_write"
        hook = Hook(self, kind, fn, f"{'phys' if physical else 'lin'} {lo:#x}-{hi:#x}")

        def on_access(watch, addr, size, old, new, is_write):
            info = MemAccess(addr, size, new, old, is_write, physical, self.cpu.insn_eip())
            if self._call(hook, info):
                self._stop_after(hook)
        w = Watch(lo, hi, read, write, not physical, on_access)
        hook._parts = (w,)
        self.all.append(hook)
        self.cpu.watches.add(w)
        return hook

    # -- I/O ports -----------------------------------------------------------------------------------
    def io(self, fn, port: int, end: int | None = None, read: bool = True,
           write: bool = True) -> Hook:
        """``fn(machine, IOAccess)`` after each IN/OUT (and INS/OUTS element) on ``port`` (or
        ports [port, end))."""
        hi = end if end is not None else port + 1
        hook = Hook(self, "io", fn, f"port {port:#x}" + (f"-{hi:#x}" if hi - port > 1 else "") +
                    ("" if read and write else " in" if read else " out"))
        hook._parts = (port, hi, read, write)
        self.all.append(hook)
        self._io.append(hook)
        if self._io_saved is None:
            cpu = self.cpu
            self._io_saved = (cpu.port_in, cpu.port_out)
            port_in, port_out = self._io_saved

            def hooked_in(p, size):
                v = port_in(p, size)
                for h in list(self._io):
                    lo, hi, r, _ = h._parts
                    if r and lo <= p < hi and \
                            self._call(h, IOAccess(p, size, v, False, cpu.insn_eip())):
                        self._stop_after(h)
                return v

            def hooked_out(p, size, v):
                port_out(p, size, v)
                for h in list(self._io):
                    lo, hi, _, w = h._parts
                    if w and lo <= p < hi and \
                            self._call(h, IOAccess(p, size, v, True, cpu.insn_eip())):
                        self._stop_after(h)
            cpu.port_in, cpu.port_out = hooked_in, hooked_out
        return hook

    # -- interrupts, modes, CR3, BIOS calls ------------------------------------------------------------
    def interrupt(self, fn, vectors=None) -> Hook:
        """``fn(machine, InterruptEvent)`` at each interrupt or exception delivered (``vectors``:
        an int or a collection to filter on; None: all, and triple faults)."""
        if isinstance(vectors, int):
            vectors = (vectors,)
        vs = frozenset(vectors) if vectors is not None else None
        hook = Hook(self, "interrupt", fn, "all vectors" if vs is None else
                    "vectors " + ",".join(f"{v:#x}" for v in sorted(vs)))
        hook._parts = (vs,)
        self.all.append(hook)
        self._irq.append(hook)
        self.cpu.on_interrupt = self._on_interrupt
        return hook

    def _on_interrupt(self, vector, code, kind, eip):
        cpu = self.cpu
        ev = None
        for h in list(self._irq):
            vs = h._parts[0]
            if vs is None or vector in vs:
                if ev is None:
                    ev = InterruptEvent(vector, kind, code, cpu.sel[1], eip, cpu.cr2)
                if self._call(h, ev):
                    self._stop_after(h)

    def mode(self, fn) -> Hook:
        """``fn(machine, ModeChange)`` when real/protected/V86 mode or paging changes."""
        hook = Hook(self, "mode", fn, "mode changes")
        self.all.append(hook)
        self._mode.append(hook)
        cpu = self.cpu
        if cpu.on_mode is None:
            cpu._mode_key = cpu._mode_now()
        cpu.on_mode = self._on_mode
        return hook

    def _on_mode(self, old, new):
        ev = ModeChange(old, new)
        for h in list(self._mode):
            if self._call(h, ev):
                self._stop_after(h)

    def cr3(self, fn) -> Hook:
        """``fn(machine, CR3Load)`` at every CR3 load (MOV CR3, task switch)."""
        hook = Hook(self, "cr3", fn, "CR3 loads")
        self.all.append(hook)
        self._cr3.append(hook)
        self.cpu.on_cr3 = self._on_cr3
        return hook

    def _on_cr3(self, old, new):
        ev = CR3Load(old, new)
        for h in list(self._cr3):
            if self._call(h, ev):
                self._stop_after(h)

    def bios(self, fn, vector: int | None = None, function: int | None = None) -> Hook:
        """``fn(machine, BIOSCall)`` when an Aero BIOS service call completes (``vector``: INT
        number, ``function``: AH at entry; None matches any).  Needs the Aero BIOS."""
        bios = self.machine.aero_bios
        if bios is None:
            raise ValueError("BIOS hooks need the Aero BIOS (this machine runs other firmware)")
        hook = Hook(self, "bios", fn, "BIOS " + ("INT *" if vector is None else
                                               f"INT {vector:02X}h") +
                    ("" if function is None else f" AH={function:02X}h"))
        hook._parts = (vector, function)
        self.all.append(hook)
        self._bios.append(hook)
        bios.listener = self._on_bios
        return hook

    def _on_bios(self, call):
        for h in list(self._bios):
            v, f = h._parts
            if (v is None or call.vector == v) and (f is None or call.function == f):
                if self._call(h, call):
                    self._stop_after(h)

    # -- removal ---------------------------------------------------------------------------------------
    def _remove(self, hook: Hook) -> None:
        if hook not in self.all:
            return
        self.all.remove(hook)
        cpu = self.cpu
        if hook.kind in ("exec", "block"):
            cpu.remove_exec_point(hook._parts[0])
            # the units holding it are invalidated: their counts are final, and the hook no
            # longer keeps the units alive
            hook._fold(lambda u: True)
        elif hook.kind.startswith("mem_"):
            cpu.watches.remove(hook._parts[0])
        elif hook.kind == "io":
            self._io.remove(hook)
            if not self._io:
                cpu.port_in, cpu.port_out = self._io_saved
                self._io_saved = None
        elif hook.kind == "interrupt":
            self._irq.remove(hook)
            if not self._irq:
                cpu.on_interrupt = None
        elif hook.kind == "mode":
            self._mode.remove(hook)
            if not self._mode:
                cpu.on_mode = None
        elif hook.kind == "cr3":
            self._cr3.remove(hook)
            if not self._cr3:
                cpu.on_cr3 = None
        elif hook.kind == "bios":
            self._bios.remove(hook)
            if not self._bios:
                self.machine.aero_bios.listener = None

    def clear(self) -> None:
        """Remove every hook."""
        for h in list(self.all):
            h.remove()
