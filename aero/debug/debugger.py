"""The debugger core: breakpoints, watchpoints, catches, stepping and inspection over a machine.

No UI here: the console (`aero debug`), the TUI and the gdb stub all drive a ``Debugger``.
Everything is built on the machine's hooks (``aero.hooks``), so it costs nothing while unused and
stops on exact instruction boundaries:

* **breakpoints** on a linear address, a physical address, or seg:off (converted to linear when
  set); each with an optional condition (an expression, ``aero.debug.expr``), a hit count, an
  ignore count, enable/disable, and "temporary" (deleted when hit).  The Bochs magic
  breakpoint (``xchg bx, bx``) can be switched on.
* **watchpoints** on linear or physical ranges, for writes, reads or both: they stop after the
  access and report the watched bytes' old and new values.
* **catches**: I/O ports (in/out, ranges), exceptions and interrupts by vector (a #PF reports
  CR2 and its error code), triple faults, mode switches, CR3 loads, BIOS service calls.
* **stepping**: into (``step``), over (``next``: CALL, INT, REP strings and LOOPs run to the
  next instruction at the same stack depth), out (``finish``: to the instruction after the
  current function's return), to an address (``until``), N instructions, continue, ``pause``
  from another thread.

Every stop is a ``Stop`` (why, which point, a message like gdb's, details).  Addresses shown
and accepted are linear unless said otherwise; ``format_addr`` adds seg:off and symbols.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from ..cpu.decoder import decode
from ..cpu.state import get_reg, set_reg
from ..faults import CPUFault, NAMES as FAULT_NAMES
from ..hooks import AFTER
from . import expr as E
from . import inspect as I
from .reverse import ReverseMixin
from .symbols import SymbolTable

# exception names usable in `catch exception`
VECTOR_NAMES = {v.lstrip("#").lower(): k for k, v in FAULT_NAMES.items()}
VECTOR_NAMES.update({"triple": "triple"})

# instruction kinds by table entry name (aero/cpu/table.py: the semantic template's name)
_CALLS = frozenset(("CALL", "CALL_RM", "CALLF", "CALLF_M", "INT", "INT3", "INTO", "INT1"))
_LOOPS = frozenset(("LOOP", "JCXZ"))                    # LOOP, LOOPE, LOOPNE, JCXZ/JECXZ
_RETURNS = frozenset(("RETN", "RETN_IMM", "RETF", "IRET"))


class DebugError(ValueError):
    """A command the debugger cannot carry out (one line)."""


@dataclass
class Point:
    """A breakpoint, watchpoint or catch as the user sees it."""
    id: int
    kind: str                       # "break", "watch", "catch"
    what: str                       # human description of where / what
    enabled: bool = True
    condition: str | None = None
    hits: int = 0
    ignore: int = 0                 # hits to let pass before stopping
    temporary: bool = False
    after: bool = False             # stops after the instruction (watches, most catches)
    hooks: list = field(default_factory=list, repr=False)
    tree: object = field(default=None, repr=False)        # the compiled condition
    value: bytes | None = field(default=None, repr=False)  # a watchpoint's bytes

    def describe(self) -> str:
        s = f"{self.id:3} {self.kind:6} {'y' if self.enabled else 'n'} {self.what}"
        if self.condition:
            s += f" if {self.condition}"
        if self.ignore:
            s += f" (ignore next {self.ignore})"
        if self.temporary:
            s += " (temporary)"
        return s + (f"   hit {self.hits} time{'s' if self.hits != 1 else ''}"
                    if self.hits else "")


@dataclass
class Stop:
    """Why a run stopped."""
    reason: str                     # breakpoint watchpoint catch step pause limit exit halted
    message: str                    # shutdown timeout error
    point: Point | None = None
    details: dict = field(default_factory=dict)
    result: object = None           # the machine's RunResult
    icount: int = 0


class _Env(E.Env):
    def __init__(self, dbg):
        self.dbg = dbg

    def reg(self, name):
        return self.dbg.reg(name)

    def read(self, addr, size, physical):
        data = self.dbg.read(addr, size, physical=physical)
        if data is None:
            space = "physical" if physical else "linear"
            raise E.ExprError(f"cannot read {size} bytes at {space} {addr:#x}")
        return int.from_bytes(data, "little")

    def seg_base(self, seg):
        return self.dbg.seg_base(seg)

    def symbol(self, name):
        try:
            return self.dbg.symbols.lookup(name)
        except KeyError as e:
            raise E.ExprError(str(e.args[0]) if e.args else f"no symbol {name!r}") from None


class Debugger(ReverseMixin):
    def __init__(self, machine, symbols: SymbolTable | None = None):
        self.m = machine
        self.cpu = machine.cpu
        self.symbols = symbols if symbols is not None else SymbolTable()
        self.points: dict[int, Point] = {}
        self._next_id = 1
        self._by_hook: dict = {}            # hook -> point
        self._hit: dict = {}                # details of the last point that stopped the run
        self.magic: Point | None = None
        self.last: Stop | None = None
        self.events: collections.deque = collections.deque(maxlen=2000)   # (icount, text)
        self._event_hooks: list = []
        self.env = _Env(self)
        self.running = threading.Event()    # set while a run is in progress (any thread)
        self.scan = None                    # a time travel search in progress (reverse.py)
        self.travel = None                  # TimeTravel over a recording (reverse.py)
        self.recorder = None                # the recording in progress, if any

    # ------------------------------------------------------------------------------------------
    # Registers, memory, addresses
    # ------------------------------------------------------------------------------------------
    def reg(self, name: str) -> int:
        n = name.lower()
        if n == "pc":
            n = "eip"
        try:
            return get_reg(self.cpu, n)
        except KeyError:
            raise DebugError(f"no register {name!r}") from None

    def set_reg(self, name: str, value: int) -> None:
        n = name.lower()
        if n == "pc":
            n = "eip"
        try:
            set_reg(self.cpu, n, value)
        except KeyError:
            raise DebugError(f"no register {name!r} (or it is read-only)") from None
        except CPUFault as e:
            raise DebugError(f"loading {name} faults: {e}") from None
        self.m.note_edit(f"{n} = {value:#x}")

    def pc(self) -> int:
        """The linear address of the next instruction."""
        return (self.cpu.base[1] + self.cpu.eip) & 0xFFFFFFFF

    def translate(self, lin: int) -> int | None:
        return I.translate(self.m, lin)

    def read(self, addr: int, n: int, physical: bool = False) -> bytes | None:
        """``n`` bytes at a linear (or physical) address, without side effects; None if any of
        them cannot be read (not present)."""
        data = I.read_physical(self.m, addr, n) if physical else I.read_linear(self.m, addr, n)
        if data is None or any(b is None for b in data):
            return None
        return bytes(data)

    def write(self, addr: int, data: bytes, physical: bool = False) -> None:
        """Write bytes at a linear (or physical) address, as a device would: translated code
        there is invalidated.  Pages that are not present are an error."""
        for i, b in enumerate(data):
            a = (addr + i) & 0xFFFFFFFF
            p = a if physical else self.translate(a)
            if p is None:
                raise DebugError(f"linear {a:#x} is not mapped")
            self.m.bus.write_bytes(p, bytes((b,)))
        if data:
            self.m.note_edit(f"{len(data)} byte{'s' if len(data) > 1 else ''} written at "
                             f"{'physical' if physical else 'linear'} {addr:#x}")

    def restore_state(self, state: dict, what: str) -> None:
        """Put the machine in a saved state (a snapshot, a state file)."""
        self.m.set_state(state)
        self.m.note_edit(f"state restored: {what}")

    def seg_base(self, seg) -> int:
        """The base of a segment register (by name) or of a selector / real-mode segment."""
        cpu = self.cpu
        if isinstance(seg, str):
            return cpu.base[E.SEGMENT_REGISTERS.index(seg)]
        if not cpu.cr0 & 1 or cpu.flags & 0x20000:
            return (seg & 0xFFFF) << 4
        for i, sel in enumerate(cpu.sel):                    # a loaded selector: its cache
            if sel == seg:
                return cpu.base[i]
        d = I.descriptor(self.m, seg)
        if d is None:
            raise E.ExprError(f"selector {seg:#06x} is not in the GDT/LDT")
        return d["base"]

    def eval(self, text: str) -> int:
        try:
            return E.evaluate(text, self.env)
        except E.ExprError as e:
            raise DebugError(str(e)) from None

    def address(self, text: str) -> int:
        """An address expression (linear; seg:off converted) masked to 32 bits."""
        return self.eval(text) & 0xFFFFFFFF

    def format_addr(self, lin: int) -> str:
        """``0x00007c05 <main+5>`` (with CS:IP form in real mode)."""
        s = f"{lin:#010x}"
        cpu = self.cpu
        if (not cpu.cr0 & 1 or cpu.flags & 0x20000) and 0 <= lin - cpu.base[1] <= 0xFFFF:
            s = f"{cpu.sel[1]:04x}:{lin - cpu.base[1]:04x} ({s})"
        sym = self.symbols.describe(lin)
        return f"{s} <{sym}>" if sym else s

    # ------------------------------------------------------------------------------------------
    # Points
    # ------------------------------------------------------------------------------------------
    def _new_point(self, kind: str, what: str, condition: str | None = None, **kw) -> Point:
        tree = None
        if condition:
            try:
                tree = E.compile_expr(condition)
            except E.ExprError as e:
                raise DebugError(f"bad condition: {e}") from None
        p = Point(self._next_id, kind, what, condition=condition, tree=tree, **kw)
        self._next_id += 1
        self.points[p.id] = p
        return p

    def _attach(self, p: Point, *hooks) -> Point:
        for h in hooks:
            p.hooks.append(h)
            self._by_hook[h] = p
        return p

    def _should_stop(self, p: Point, info=None) -> bool:
        """Count a hit of an enabled point whose condition holds; True if it stops.  While time
        travel searches backwards (``scan``), hits are only counted by the scan."""
        if not p.enabled:
            return False
        if p.tree is not None:
            try:
                if not E.run(p.tree, self.env):
                    return False
            except E.ExprError as e:
                if self.scan is not None:
                    return self.scan.hit(p.after, (p, info))
                self._hit[p.id] = {"condition_error": str(e)}
                p.hits += 1
                return True                     # a broken condition stops (and says why)
        if self.scan is not None:
            return self.scan.hit(p.after, (p, info))
        p.hits += 1
        if p.ignore:
            p.ignore -= 1
            return False
        return True

    def break_at(self, where, physical: bool = False, condition: str | None = None,
                 temporary: bool = False) -> Point:
        """A breakpoint at an address (an int, or an expression: ``0x7c00``, ``0000:7c05``,
        ``main``, ``cs:eip+3``)."""
        addr = where if isinstance(where, int) else self.address(where)
        space = "physical" if physical else "linear"
        what = f"{space} {addr:#010x}"
        sym = self.symbols.describe(addr) if not physical else None
        if sym:
            what += f" <{sym}>"
        p = self._new_point("break", what, condition, temporary=temporary)

        def hit(m, a, p=p):
            return self._should_stop(p)
        return self._attach(p, self.m.hooks.exec(hit, addr, physical=physical))

    def watch(self, where, length: int = 1, access: str = "w", physical: bool = False,
              condition: str | None = None) -> Point:
        """A watchpoint on ``length`` bytes: ``access`` "w" (writes), "r" (reads), "rw"."""
        addr = where if isinstance(where, int) else self.address(where)
        if not 1 <= length <= 4096:
            raise DebugError("watch 1 to 4096 bytes")
        if access not in ("w", "r", "rw"):
            raise DebugError("access: w, r or rw")
        space = "physical" if physical else "linear"
        what = f"{space} {addr:#010x}+{length} {access}"
        p = self._new_point("watch", what, condition, after=True)
        p.value = self.read(addr, length, physical)
        hooks = self.m.hooks
        make = {"w": hooks.mem_write, "r": hooks.mem_read, "rw": hooks.mem_access}[access]

        def hit(m, acc, p=p):
            if not self._should_stop(p, acc):
                return False
            self._hit[p.id] = {"access": acc, "addr": addr, "length": length,
                               "physical": physical}
            return True
        return self._attach(p, make(hit, addr, addr + length, physical=physical))

    def catch_io(self, lo: int, hi: int | None = None, direction: str = "both",
                 condition: str | None = None) -> Point:
        hi = lo + 1 if hi is None else hi
        if not 0 <= lo < hi <= 0x10000:
            raise DebugError("ports are 0-0xFFFF")
        what = f"io {lo:#x}" + (f"-{hi - 1:#x}" if hi - lo > 1 else "") + \
            ("" if direction == "both" else f" {direction}")
        p = self._new_point("catch", what, condition, after=True)

        def hit(m, acc, p=p):
            if not self._should_stop(p, acc):
                return False
            self._hit[p.id] = {"io": acc}
            return True
        return self._attach(p, self.m.hooks.io(hit, lo, hi, read=direction != "out",
                                               write=direction != "in"))

    def catch_interrupt(self, vectors=None, kinds=("hw", "fault", "soft"),
                        condition: str | None = None) -> Point:
        """Exceptions (kind "fault"), hardware and software interrupts, by vector; the kind
        "shutdown" is a triple fault."""
        vs = None if vectors is None else frozenset(vectors)
        names = "all" if vs is None else ",".join(
            FAULT_NAMES.get(v, f"{v:#x}") if "fault" in kinds else f"{v:#x}" for v in sorted(vs))
        label = {("fault",): "exception", ("shutdown",): "triple fault"}.get(tuple(kinds),
                                                                          "interrupt")
        p = self._new_point("catch", label if label == "triple fault" else f"{label} {names}",
                            condition)
        kinds = frozenset(kinds)

        def hit(m, ev, p=p):
            if ev.kind not in kinds or not self._should_stop(p, ev):
                return False
            self._hit[p.id] = {"interrupt": ev}
            return True
        hook_vectors = None if vs is None or "shutdown" in kinds else vs
        return self._attach(p, self.m.hooks.interrupt(hit, hook_vectors))

    def catch_mode(self, condition: str | None = None) -> Point:
        p = self._new_point("catch", "mode switches", condition, after=True)

        def hit(m, ch, p=p):
            if not self._should_stop(p, ch):
                return False
            self._hit[p.id] = {"mode": ch}
            return True
        return self._attach(p, self.m.hooks.mode(hit))

    def catch_cr3(self, condition: str | None = None) -> Point:
        p = self._new_point("catch", "CR3 loads", condition, after=True)

        def hit(m, ld, p=p):
            if not self._should_stop(p, ld):
                return False
            self._hit[p.id] = {"cr3": ld}
            return True
        return self._attach(p, self.m.hooks.cr3(hit))

    def catch_bios(self, vector: int | None = None, function: int | None = None,
                   condition: str | None = None) -> Point:
        if self.m.aero_bios is None:
            raise DebugError("BIOS calls are reported by the Aero BIOS only; with other "
                             "firmware use 'catch int 0x13' (the INT instruction)")
        what = "bios " + ("*" if vector is None else f"INT {vector:02X}h") + \
            ("" if function is None else f" AH={function:02X}h")
        p = self._new_point("catch", what, condition, after=True)

        def hit(m, call, p=p):
            if not self._should_stop(p, call):
                return False
            self._hit[p.id] = {"bios": call}
            return True
        return self._attach(p, self.m.hooks.bios(hit, vector, function))

    def set_magic(self, on: bool) -> None:
        """The Bochs magic breakpoint: stop right after each ``xchg bx, bx``."""
        if on and self.magic is None:
            p = self._new_point("break", "magic (xchg bx, bx)", after=True)

            def hit(m, a, p=p):
                return AFTER if self._should_stop(p) else None
            self.magic = self._attach(p, self.m.hooks.exec(hit, match=_is_magic))
        elif not on and self.magic is not None:
            self.delete(self.magic.id)

    def delete(self, pid: int) -> None:
        p = self._point(pid)
        for h in p.hooks:
            h.remove()
            self._by_hook.pop(h, None)
        del self.points[pid]
        if p is self.magic:
            self.magic = None

    def enable(self, pid: int, on: bool = True) -> None:
        self._point(pid).enabled = on

    def condition(self, pid: int, text: str | None) -> None:
        p = self._point(pid)
        try:
            p.tree = E.compile_expr(text) if text else None
        except E.ExprError as e:
            raise DebugError(f"bad condition: {e}") from None
        p.condition = text or None

    def _point(self, pid: int) -> Point:
        p = self.points.get(pid)
        if p is None:
            raise DebugError(f"no breakpoint, watchpoint or catch number {pid}")
        return p

    # ------------------------------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop a run in progress at the next instruction boundary (from any thread)."""
        self.m.request_stop()

    def cont(self, instructions: int | None = None, timeout: float | None = None) -> Stop:
        """Run until a point stops the machine, the guest ends the run, ``instructions`` more
        instructions have run, or ``pause``."""
        return self._run(lambda: self.m.run_until(instructions=instructions, timeout=timeout))

    def step(self, n: int = 1) -> Stop:
        """Step ``n`` instructions (into calls and interrupts); points still stop it."""
        return self._run(lambda: self.m.run_until(instructions=max(1, n)), step=True)

    def next(self) -> Stop:
        """Step over: a CALL, INT n, REP string instruction or LOOP runs until the instruction
        after it is reached at the same stack depth; anything else is one step."""
        ins = self.current_insn()
        if ins is None:
            return self.step()
        name = ins.entry.name
        if not (name in _CALLS or name in _LOOPS or (ins.entry.rep and ins.rep)):
            return self.step()
        nxt = (self.cpu.base[1] + ((ins.eip + ins.length) & self._ip_mask())) & 0xFFFFFFFF
        return self._run_to(nxt, same_depth=True)

    def until(self, where) -> Stop:
        """Run until the instruction at an address is reached."""
        addr = where if isinstance(where, int) else self.address(where)
        return self._run_to(addr, same_depth=False)

    def finish(self) -> Stop:
        """Run until the current function returns: stop right after the RET/RETF/IRET that
        leaves it (the first return executed at this stack depth or above)."""
        sp0 = self._sp()

        def at_return(m, a):
            return AFTER if self._sp() >= sp0 else None
        h = self.m.hooks.exec(at_return, match=_is_return)
        try:
            stop = self._run(lambda: self.m.run_until(), temp=h)
        finally:
            h.remove()
        if stop.reason == "temp":
            stop.reason = "step"
            stop.message = f"Run till exit: now at {self.format_addr(self.pc())}"
        return stop

    def _run_to(self, addr: int, same_depth: bool) -> Stop:
        sp0 = self._sp()

        def arrived(m, a):
            return not same_depth or self._sp() >= sp0
        h = self.m.hooks.exec(arrived, addr)
        try:
            stop = self._run(lambda: self.m.run_until(), temp=h)
        finally:
            h.remove()
        if stop.reason == "temp":
            stop.reason = "step"
            stop.message = f"now at {self.format_addr(self.pc())}"
        return stop

    def _sp(self) -> int:
        cpu = self.cpu
        return cpu.R[4] if cpu.attr[2] & 0x4000 else cpu.R[4] & 0xFFFF

    def _ip_mask(self) -> int:
        return 0xFFFFFFFF if self.cpu.code32 else 0xFFFF

    def current_insn(self):
        """The decoded instruction at CS:EIP (None if it cannot be read)."""
        cpu = self.cpu
        eip = cpu.eip
        mask = self._ip_mask()
        code = self.read(self.pc(), 15) or b""
        if not code:
            return None
        try:
            return decode(lambda i: code[i], eip & mask, cpu.code32)
        except (CPUFault, IndexError):
            return None

    def _run(self, go, step: bool = False, temp=None) -> Stop:
        tt = self.travel
        if tt is not None and tt.at_end and not tt.off_timeline:
            return self._stopped(Stop("end", f"at the end of the recording (instruction "
                                             f"{self.cpu.icount}); reverse-stepi, "
                                             "reverse-continue or goto go back",
                                      icount=self.cpu.icount))
        self._hit = {}
        self.running.set()
        try:
            r = go()
        except Exception as e:              # a hook callback's error: stopped at a boundary
            self.running.clear()
            return self._stopped(Stop("error", f"hook raised {type(e).__name__}: {e}",
                                      icount=self.cpu.icount))
        finally:
            self.running.clear()
        return self._stopped(self._interpret(r, step, temp))

    def _interpret(self, r, step: bool, temp) -> Stop:
        icount = r.icount
        where = self.format_addr(self.pc())
        if r.status == "hook":
            if r.hook is temp:
                return Stop("temp", "", result=r, icount=icount)
            p = self._by_hook.get(r.hook)
            if p is None:
                return Stop("hook", f"stopped by a hook ({r.hook.where}) at {where}",
                            result=r, icount=icount)
            details = self._hit.get(p.id, {})
            msg = self._describe_hit(p, details, where)
            if p.temporary:
                self.delete(p.id)
            kind = {"break": "breakpoint", "watch": "watchpoint"}.get(p.kind, "catch")
            return Stop(kind, msg, point=p, details=details, result=r, icount=icount)
        if r.status == "limit":
            return Stop("step" if step else "limit", f"at {where}", result=r, icount=icount)
        if r.status == "stop":
            tt = self.travel
            if tt is not None and tt.at_end and not tt.off_timeline:
                return Stop("end", f"the end of the recording: instruction {icount}, "
                                   f"{where}", result=r, icount=icount)
            return Stop("pause", f"paused at {where}", result=r, icount=icount)
        if r.status in ("debug-exit", "poweroff") and self.travel is not None and \
                self.travel.rec is None and self.travel.at_end:
            return Stop("end", f"the end of the recording (the guest ended the run there): "
                               f"instruction {icount}", result=r, icount=icount)
        if r.status in ("debug-exit", "poweroff"):
            what = f"exit status {r.exit_code}" if r.status == "debug-exit" else "powered off"
            return Stop("exit", f"the guest ended the run ({what}) after {icount} "
                        "instructions", result=r, icount=icount)
        msg = {"halted": f"halted: {r.detail}", "shutdown": "triple fault (shutdown)",
               "timeout": "timeout", "error": r.detail}.get(r.status, r.status)
        return Stop(r.status, msg, result=r, icount=icount)

    def _describe_hit(self, p: Point, d: dict, where: str) -> str:
        if "condition_error" in d:
            return (f"{p.kind} {p.id}: its condition failed ({d['condition_error']}); stopped "
                    f"at {where}")
        if p.kind == "break":
            return f"Breakpoint {p.id}, {where}"
        if p.kind == "watch":
            acc = d.get("access")
            new = self.read(d["addr"], d["length"], d["physical"]) if "addr" in d else None
            old, p.value = p.value, new
            line = f"Watchpoint {p.id}: {p.what}"
            if acc is not None and acc.write:
                line += f"\nOld value = {_hexbytes(old)}\nNew value = {_hexbytes(new)}"
            elif acc is not None:
                line += f"\nValue = {_hexbytes(new)} (read)"
            if acc is not None:
                line += f"\nby the instruction at {self.format_addr(self._cs_lin(acc.eip))}; " \
                        f"now at {where}"
            return line
        if "io" in d:
            a = d["io"]
            arrow = "OUT" if a.write else "IN"
            return (f"Catch {p.id}: {arrow} port {a.port:#06x} size {a.size} value "
                    f"{a.value:#x} at {self.format_addr(self._cs_lin(a.eip))}")
        if "interrupt" in d:
            ev = d["interrupt"]
            if ev.kind == "shutdown":
                return f"Catch {p.id}: triple fault (shutdown) at {where}"
            name = FAULT_NAMES.get(ev.vector, "") if ev.kind == "fault" else ""
            s = f"Catch {p.id}: {ev.kind} interrupt {ev.vector:#04x}{' ' + name if name else ''}"
            if ev.error_code is not None:
                s += f" error code {ev.error_code:#x}"
            if ev.vector == 14 and ev.kind == "fault":
                s += f" CR2={ev.cr2:#010x}"
            return s + f" from {ev.cs:04x}:{ev.eip:08x}; now at the handler {where}"
        if "mode" in d:
            ch = d["mode"]
            return f"Catch {p.id}: mode {_mode_text(ch.old)} -> {_mode_text(ch.new)} at {where}"
        if "cr3" in d:
            ld = d["cr3"]
            return f"Catch {p.id}: CR3 {ld.old:#010x} -> {ld.new:#010x} at {where}"
        if "bios" in d:
            return f"Catch {p.id}: BIOS {d['bios']} at {where}"
        return f"{p.kind} {p.id} at {where}"

    def _cs_lin(self, eip: int) -> int:
        return (self.cpu.base[1] + eip) & 0xFFFFFFFF

    def _stopped(self, stop: Stop) -> Stop:
        self.last = stop
        self.events.append((stop.icount, stop.message.splitlines()[0] if stop.message else
                            stop.reason))
        return stop

    # ------------------------------------------------------------------------------------------
    # Event log (interrupts, exceptions, mode switches, BIOS calls) without stopping
    # ------------------------------------------------------------------------------------------
    def log_events(self, on: bool = True) -> None:
        """Record interrupts, exceptions, mode switches, CR3 loads and BIOS calls in
        ``events`` as they happen (hooks that never stop; they cost only while on)."""
        for h in self._event_hooks:
            h.remove()
        self._event_hooks = []
        if not on:
            return
        hooks = self.m.hooks
        ev = self.events
        cpu = self.cpu

        def irq(m, e):
            if e.kind == "shutdown":
                ev.append((cpu.icount, "triple fault"))
            else:
                name = FAULT_NAMES.get(e.vector, "") if e.kind == "fault" else ""
                extra = f" err={e.error_code:#x}" if e.error_code is not None else ""
                extra += f" cr2={e.cr2:#x}" if e.vector == 14 and e.kind == "fault" else ""
                ev.append((cpu.icount, f"{e.kind} int {e.vector:#04x} {name}{extra} from "
                                       f"{e.cs:04x}:{e.eip:08x}"))
        self._event_hooks.append(hooks.interrupt(irq))
        self._event_hooks.append(hooks.mode(
            lambda m, ch: ev.append((cpu.icount, f"mode {_mode_text(ch.old)} -> "
                                                 f"{_mode_text(ch.new)}"))))
        self._event_hooks.append(hooks.cr3(
            lambda m, ld: ev.append((cpu.icount, f"CR3 <- {ld.new:#010x}"))))
        if self.m.aero_bios is not None:
            self._event_hooks.append(hooks.bios(
                lambda m, c: ev.append((cpu.icount, f"BIOS {c}"))))

    # ------------------------------------------------------------------------------------------
    # Symbols
    # ------------------------------------------------------------------------------------------
    def load_symbols(self, path: str, bias: int = 0) -> int:
        try:
            return self.symbols.load(path, bias=bias)
        except (OSError, ValueError) as e:
            raise DebugError(str(e)) from None


def _is_magic(ins) -> bool:
    return ins.raw == b"\x87\xdb"


def _is_return(ins) -> bool:
    return ins.entry.name in _RETURNS


def _mode_text(m) -> str:
    mode, paging = m
    return mode + (" + paging" if paging else "")


def _hexbytes(b) -> str:
    if b is None:
        return "(unreadable)"
    if len(b) in (1, 2, 4, 8):
        return f"{int.from_bytes(b, 'little'):#0{2 + 2 * len(b)}x}"
    return b.hex(" ")

