"""The debugger's command language (gdb- and Bochs-like), shared by the console (`aero debug`),
the TUI's command line and the gdb stub's ``monitor`` command.

``Commands(debugger).execute(line) -> str`` runs one command and returns what it prints;
mistakes raise ``DebugError`` (one line).  ``help`` lists the commands.  Addresses are
expressions (``aero.debug.expr``): ``0x7c00``, ``0000:7c05``, ``main+3``, ``[esp]``.
"""

from __future__ import annotations

import re

from ..cpu.disasm import disasm_bytes
from . import inspect as I
from .fpuview import format_fpu, fpu_state
from .debugger import Debugger, DebugError, Stop, VECTOR_NAMES

HELP = {
    "break": "break|b [/p] ADDR [if COND]   breakpoint at a linear (/p physical) address; "
             "seg:off works in real mode",
    "tbreak": "tbreak|tb [/p] ADDR [if COND]  a breakpoint deleted when hit",
    "watch": "watch|rwatch|awatch [/p] ADDR [LEN] [if COND]   stop after a write / read / "
             "access of LEN bytes (default 1; 2 or 4 for a word/dword target)",
    "catch": "catch io PORT[-PORT] [in|out] | exception [NAME|VECTOR...] | interrupt "
             "[VECTOR...] | triple | mode | cr3 | bios [INT [AH]]",
    "delete": "delete|d [N...]   delete points (all without N)",
    "enable": "enable N...   /   disable N...",
    "condition": "condition N [COND]   set or clear a point's condition",
    "ignore": "ignore N COUNT   let the next COUNT hits pass",
    "magic": "magic on|off   stop after each xchg bx,bx (the Bochs magic breakpoint)",
    "continue": "continue|c [N]   run (at most N instructions)",
    "stepi": "stepi|si|s [N]   step N instructions, into calls and interrupts",
    "nexti": "nexti|ni|n   step over CALL, INT, REP strings and LOOPs",
    "finish": "finish   run until the current function returns",
    "until": "until|advance ADDR   run until ADDR is reached",
    "x": "x/NFU ADDR   examine memory (xp: physical): N count, F x d u c s i (format), "
         "U b h w g (unit)",
    "disassemble": "disassemble|disas|u [ADDR] [N]   N instructions from ADDR (default: here)",
    "print": "print|p EXPR   evaluate (registers, [memory], seg:off, symbols)",
    "set": "set REG = EXPR | set byte|word|dword [ADDR] = EXPR",
    "registers": "registers|regs|r|info registers   the CPU's registers",
    "info": "info break|registers|float|gdt|idt|ldt|tss|tlb|pages ADDR|memmap|stack|mode|"
            "devices|DEVICE|symbols|events",
    "backtrace": "backtrace|bt   the EBP chain",
    "sym": "sym NAME ADDR | symbols FILE [BIAS]   add a symbol / load a NASM map or ELF",
    "events": "events on|off|[N]   log interrupts, exceptions, mode switches, BIOS calls / show",
    "snapshot": "snapshot NAME | restore NAME | state save|load FILE",
    "record": "record start [KEYFRAME_EVERY] | stop | save FILE | info   record from here on "
              "(in memory), for the reverse commands; save writes a recording file",
    "reverse-stepi": "reverse-stepi|rsi [N]   back N instructions (to the exact state a "
                     "forward run had there)",
    "reverse-nexti": "reverse-nexti|rni|reverse-next|rn   back one instruction, over a call or "
                     "interrupt that returned here",
    "reverse-continue": "reverse-continue|rc   back to the previous stop of a breakpoint, "
                        "watchpoint or catch (the start of the recording if none)",
    "goto": "goto N   to instruction count N of the recording",
    "who-wrote": "who-wrote|ww [/p] ADDR [LEN]   back to the instruction that last wrote "
                 "(any of LEN bytes at) ADDR",
    "help": "help [COMMAND]",
    "quit": "quit|q",
}
ALIASES = {"b": "break", "tb": "tbreak", "rwatch": "watch", "awatch": "watch", "d": "delete",
           "disable": "enable", "c": "continue", "cont": "continue", "si": "stepi",
           "s": "stepi", "step": "stepi", "ni": "nexti", "n": "nexti", "next": "nexti",
           "advance": "until", "xp": "x", "disas": "disassemble", "u": "disassemble",
           "p": "print", "regs": "registers", "r": "registers", "bt": "backtrace",
           "symbols": "sym", "restore": "snapshot", "state": "snapshot", "q": "quit",
           "exit": "quit", "h": "help", "?": "help", "rec": "record",
           "rsi": "reverse-stepi", "rs": "reverse-stepi", "reverse-step": "reverse-stepi",
           "rni": "reverse-nexti", "rn": "reverse-nexti", "reverse-next": "reverse-nexti",
           "rc": "reverse-continue", "ww": "who-wrote", "timeline": "record"}


class Commands:
    def __init__(self, debugger: Debugger):
        self.dbg = debugger
        self.snapshots: dict[str, dict] = {}
        self.quit = False

    # ------------------------------------------------------------------------------------------
    def execute(self, line: str) -> str:
        line = line.strip()
        if not line or line.startswith("#"):
            return ""
        m = re.match(r"([A-Za-z?][A-Za-z?-]*)(/\S*)?\s*(.*)$", line)
        if not m:
            raise DebugError(f"not a command: {line!r} (try help)")
        word, fmt, rest = m.group(1).lower(), m.group(2) or "", m.group(3).strip()
        cmd = ALIASES.get(word, word)
        fn = getattr(self, "cmd_" + cmd.replace("-", "_"), None)
        if fn is None:
            raise DebugError(f"unknown command {word!r} (try help)")
        return fn(word, fmt, rest) or ""

    # -- points -------------------------------------------------------------------------------
    @staticmethod
    def _split_if(rest: str) -> tuple[str, str | None]:
        m = re.match(r"(.*?)\s+if\s+(.*)$", rest)
        return (m.group(1), m.group(2)) if m else (rest, None)

    @staticmethod
    def _phys(fmt: str, rest: str) -> tuple[bool, str]:
        if fmt == "/p":
            return True, rest
        if rest.startswith("/p "):
            return True, rest[3:]
        return False, rest

    def cmd_break(self, word, fmt, rest):
        phys, rest = self._phys(fmt, rest)
        where, cond = self._split_if(rest)
        if not where:
            where = "cs:eip"
        where = where.lstrip("*")                          # gdb's `b *0x7c00`
        p = self.dbg.break_at(where, physical=phys, condition=cond,
                              temporary=word in ("tbreak", "tb"))
        return f"{'Temporary b' if p.temporary else 'B'}reakpoint {p.id} at {p.what}"

    cmd_tbreak = cmd_break

    def cmd_watch(self, word, fmt, rest):
        phys, rest = self._phys(fmt, rest)
        where, cond = self._split_if(rest)
        parts = where.rsplit(None, 1)
        length = 1
        if len(parts) == 2 and re.fullmatch(r"0x[0-9a-fA-F]+|\d+", parts[1]) and \
                not where.rstrip().endswith("]"):
            where, length = parts[0], int(parts[1], 0)
        else:
            m = re.match(r"(byte|word|dword)\s*\[(.*)\]$", where.strip())
            if m:
                length = {"byte": 1, "word": 2, "dword": 4}[m.group(1)]
                where = m.group(2)
            elif where.strip().startswith("[") and where.strip().endswith("]"):
                length, where = 4, where.strip()[1:-1]
        access = {"rwatch": "r", "awatch": "rw"}.get(word, "w")
        p = self.dbg.watch(where, length, access, physical=phys, condition=cond)
        kind = {"w": "Watchpoint", "r": "Read watchpoint", "rw": "Access watchpoint"}[access]
        return f"{kind} {p.id}: {p.what}"

    cmd_rwatch = cmd_awatch = cmd_watch

    def cmd_catch(self, word, fmt, rest):
        rest, cond = self._split_if(rest)
        args = rest.split()
        if not args:
            raise DebugError(HELP["catch"])
        what, args = args[0].lower(), args[1:]
        d = self.dbg
        if what == "io":
            if not args:
                raise DebugError("catch io PORT[-PORT] [in|out]")
            direction = args[1].lower() if len(args) > 1 else "both"
            if direction not in ("in", "out", "both"):
                raise DebugError("direction: in or out")
            lo, _, hi = args[0].partition("-")
            lo_v = d.eval(lo)
            hi_v = d.eval(hi) + 1 if hi else lo_v + 1
            p = d.catch_io(lo_v, hi_v, direction, cond)
        elif what in ("exception", "exc"):
            p = d.catch_interrupt(self._vectors(args) if args else None, ("fault",), cond)
        elif what in ("interrupt", "int", "vector"):
            p = d.catch_interrupt(self._vectors(args) if args else None,
                                  ("hw", "soft", "fault"), cond)
        elif what in ("triple", "shutdown"):
            p = d.catch_interrupt(None, ("shutdown",), cond)
        elif what == "mode":
            p = d.catch_mode(cond)
        elif what == "cr3":
            p = d.catch_cr3(cond)
        elif what == "bios":
            vec = d.eval(args[0]) if args else None
            fn = d.eval(args[1]) if len(args) > 1 else None
            p = d.catch_bios(vec, fn, cond)
        else:
            raise DebugError(f"catch what? {HELP['catch']}")
        return f"Catchpoint {p.id}: {p.what}"

    def _vectors(self, args) -> list[int]:
        out = []
        for a in args:
            for part in a.split(","):
                if not part:
                    continue
                v = VECTOR_NAMES.get(part.lower().lstrip("#"))
                if v is None:
                    v = self.dbg.eval(part)
                if v == "triple" or not isinstance(v, int) or not 0 <= v <= 255:
                    raise DebugError(f"not a vector: {part}")
                out.append(v)
        return out

    def cmd_delete(self, word, fmt, rest):
        ids = [int(x) for x in rest.split()] if rest else list(self.dbg.points)
        for i in ids:
            self.dbg.delete(i)
        return f"deleted {len(ids)}" if not rest else ""

    def cmd_enable(self, word, fmt, rest):
        if not rest:
            raise DebugError(f"{word} N...")
        for i in rest.split():
            self.dbg.enable(int(i), word != "disable")
        return ""

    def cmd_condition(self, word, fmt, rest):
        parts = rest.split(None, 1)
        if not parts:
            raise DebugError(HELP["condition"])
        self.dbg.condition(int(parts[0]), parts[1] if len(parts) > 1 else None)
        return ""

    def cmd_ignore(self, word, fmt, rest):
        parts = rest.split()
        if len(parts) != 2:
            raise DebugError(HELP["ignore"])
        self.dbg._point(int(parts[0])).ignore = int(parts[1], 0)
        return ""

    def cmd_magic(self, word, fmt, rest):
        on = rest.lower() in ("on", "1", "yes", "")
        self.dbg.set_magic(on)
        return f"magic breakpoint {'on' if on else 'off'}"

    # -- running ------------------------------------------------------------------------------
    def _stop(self, stop: Stop) -> str:
        lines = [stop.message] if stop.message else []
        if stop.reason not in ("exit", "error", "shutdown", "halted", "timeout"):
            lines.append(self._here())
        return "\n".join(lines)

    def _here(self) -> str:
        d = self.dbg
        pc = d.pc()
        n, text = self._disasm_one(pc)
        return f"=> {d.format_addr(pc)}:  {text}"

    def cmd_continue(self, word, fmt, rest):
        n = self.dbg.eval(rest) if rest else None
        return self._stop(self.dbg.cont(instructions=n))

    def cmd_stepi(self, word, fmt, rest):
        n = self.dbg.eval(rest) if rest else 1
        stop = self.dbg.step(n)
        return self._here() if stop.reason == "step" else self._stop(stop)

    def cmd_nexti(self, word, fmt, rest):
        stop = self.dbg.next()
        return self._here() if stop.reason == "step" else self._stop(stop)

    def cmd_finish(self, word, fmt, rest):
        return self._stop(self.dbg.finish())

    def cmd_until(self, word, fmt, rest):
        if not rest:
            raise DebugError("until ADDR")
        stop = self.dbg.until(rest.lstrip("*"))
        return self._here() if stop.reason == "step" else self._stop(stop)

    # -- time travel ----------------------------------------------------------------------------
    def cmd_record(self, word, fmt, rest):
        args = rest.split()
        d = self.dbg
        if word == "timeline" or args[:1] == ["info"]:
            return d.timeline_info()
        if not args or args[0] not in ("start", "stop", "save"):
            raise DebugError(HELP["record"])
        if args[0] == "start":
            if len(args) > 1:
                return d.record_start(keyframe_every=max(1, d.eval(args[1])))
            return d.record_start()
        if args[0] == "stop":
            return d.record_stop()
        if len(args) != 2:
            raise DebugError("record save FILE")
        return d.record_save(args[1])

    def _back(self, stop: Stop) -> str:
        return self._stop(stop)

    def cmd_reverse_stepi(self, word, fmt, rest):
        return self._back(self.dbg.reverse_stepi(self.dbg.eval(rest) if rest else 1))

    def cmd_reverse_nexti(self, word, fmt, rest):
        return self._back(self.dbg.reverse_next())

    def cmd_reverse_continue(self, word, fmt, rest):
        return self._back(self.dbg.reverse_continue())

    def cmd_goto(self, word, fmt, rest):
        if not rest:
            raise DebugError(HELP["goto"])
        return self._back(self.dbg.goto(self.dbg.eval(rest)))

    def cmd_who_wrote(self, word, fmt, rest):
        phys, rest = self._phys(fmt, rest)
        parts = rest.split()
        if not parts or len(parts) > 2:
            raise DebugError(HELP["who-wrote"])
        addr = self.dbg.address(parts[0])
        size = self.dbg.eval(parts[1]) if len(parts) > 1 else 1
        if not 1 <= size <= 4096:
            raise DebugError("who-wrote: 1 to 4096 bytes")
        return self._back(self.dbg.who_wrote(addr, size, physical=phys))

    # -- memory, registers, expressions -------------------------------------------------------
    def cmd_x(self, word, fmt, rest):
        m = re.fullmatch(r"/?(\d*)([xduocsib]?)([bhwg]?)", fmt or "")
        if not m:
            raise DebugError(f"bad format {fmt!r}: {HELP['x']}")
        count = int(m.group(1) or 1)
        f = m.group(2) or "x"
        unit = {"b": 1, "h": 2, "w": 4, "g": 8}.get(m.group(3) or "", 4 if f != "c" else 1)
        physical = word == "xp"
        addr = self.dbg.address(rest or "cs:eip")
        d = self.dbg
        if f == "i":
            return self._disassemble(addr, count)
        if f == "s":
            data = d.read(addr, 256, physical) or b""
            return f"{addr:#010x}: {data.split(bytes(1))[0]!r}"
        if f == "c":
            unit = 1
        lines = []
        per_line = max(1, 16 // unit)
        for i in range(0, count, per_line):
            a = (addr + i * unit) & 0xFFFFFFFF
            vals = []
            for j in range(min(per_line, count - i)):
                b = d.read((a + j * unit) & 0xFFFFFFFF, unit, physical)
                if b is None:
                    vals.append("??" * unit)
                    continue
                v = int.from_bytes(b, "little")
                if f == "x":
                    vals.append(f"{v:0{2 * unit}x}")
                elif f == "d":
                    vals.append(str(v - (1 << (8 * unit)) if v >> (8 * unit - 1) else v))
                elif f == "u":
                    vals.append(str(v))
                elif f == "o":
                    vals.append(f"{v:o}")
                elif f == "b":
                    vals.append(f"{v:0{8 * unit}b}")
                else:
                    vals.append(repr(chr(v)) if 32 <= v < 127 else f"\\x{v:02x}")
            label = f"{a:#010x}" if physical else d.format_addr(a)
            lines.append(f"{label}: {' '.join(vals)}")
        return "\n".join(lines)

    def _disasm_one(self, lin: int) -> tuple[int, str]:
        d = self.dbg
        code = d.read(lin, 15) or b""
        n = 15
        while not code and n > 1:                       # the end of a mapped range
            n -= 1
            code = d.read(lin, n) or b""
        if not code:
            return 0, "(unreadable)"
        cpu = d.cpu
        eip = (lin - cpu.base[1]) & 0xFFFFFFFF
        length, text = disasm_bytes(code, eip, cpu.code32)
        return length, self._symbolize(text)

    def _symbolize(self, text: str) -> str:
        syms = self.dbg.symbols

        def sub(m):
            v = int(m.group(0), 16)
            name = syms.describe(v) if v >= 0x100 else None
            return f"{m.group(0)} <{name}>" if name else m.group(0)
        return re.sub(r"0x[0-9a-fA-F]{3,8}\b", sub, text)

    def _disassemble(self, addr: int, count: int) -> str:
        lines = []
        pc = self.dbg.pc()
        for _ in range(count):
            n, text = self._disasm_one(addr)
            code = self.dbg.read(addr, max(n, 1)) or b""
            mark = "=>" if addr == pc else "  "
            lines.append(f"{mark} {self.dbg.format_addr(addr)}:  {code.hex():<16} {text}")
            if n == 0:
                break
            addr = (addr + n) & 0xFFFFFFFF
        return "\n".join(lines)

    def cmd_disassemble(self, word, fmt, rest):
        parts = rest.split()
        addr = self.dbg.address(parts[0]) if parts else self.dbg.pc()
        count = self.dbg.eval(parts[1]) if len(parts) > 1 else 10
        return self._disassemble(addr, count)

    def cmd_print(self, word, fmt, rest):
        if not rest:
            raise DebugError("print EXPR")
        v = self.dbg.eval(rest)
        if fmt == "/x":
            return f"{v & 0xFFFFFFFFFFFFFFFF:#x}"
        if fmt == "/d":
            return str(v)
        sym = self.dbg.symbols.describe(v & 0xFFFFFFFF) if v >= 0x100 else None
        return f"{v & 0xFFFFFFFFFFFFFFFF:#x} ({v})" + (f" <{sym}>" if sym else "")

    def cmd_set(self, word, fmt, rest):
        m = re.match(r"(?:var\s+)?(.+?)\s*=\s*(.+)$", rest)
        if not m:
            raise DebugError(HELP["set"])
        target, value = m.group(1).strip(), self.dbg.eval(m.group(2))
        mm = re.fullmatch(r"(byte|word|dword|qword)?\s*\[(.*)\]", target)
        if mm:
            size = {"byte": 1, "word": 2, "dword": 4, "qword": 8}[mm.group(1) or "dword"]
            addr = self.dbg.address(mm.group(2))
            self.dbg.write(addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
            return ""
        self.dbg.set_reg(target.lstrip("$"), value)
        return ""

    def cmd_registers(self, word, fmt, rest):
        return I.format_registers(I.registers(self.dbg.m))

    def cmd_backtrace(self, word, fmt, rest):
        frames = I.backtrace(self.dbg.m)
        out = [f"#0  {self.dbg.format_addr(self.dbg.pc())}"]
        for i, f in enumerate(frames, 1):
            out.append(f"#{i}  {self.dbg.format_addr(f['return_linear'])}")
        return "\n".join(out)

    def cmd_info(self, word, fmt, rest):
        parts = rest.split()
        if not parts:
            raise DebugError(HELP["info"])
        what, args = parts[0].lower(), parts[1:]
        d = self.dbg
        m = d.m
        if what in ("b", "break", "breakpoints", "watch", "watchpoints", "catch"):
            if not d.points:
                return "no breakpoints, watchpoints or catches"
            return "\n".join(p.describe() for p in d.points.values())
        if what in ("r", "reg", "registers"):
            return self.cmd_registers(word, fmt, rest)
        if what in ("float", "fpu", "x87"):
            return format_fpu(fpu_state(d.cpu))
        if what == "gdt":
            if not d.cpu.cr0 & 1 and d.cpu.gdtr == [0, 0xFFFF] and "all" not in args:
                return ("GDTR holds its reset value (base 0, limit 0xffff): no GDT has been "
                        "loaded ('info gdt all' decodes it anyway)")
            return I.format_descriptors(I.gdt(m))
        if what == "ldt":
            return I.format_descriptors(I.ldt(m))
        if what in ("idt", "ivt"):
            return I.format_idt(I.interrupt_table(m))
        if what == "tss":
            return I.format_tss(I.tss(m))
        if what == "tlb":
            return I.format_tlb(I.tlb(m))
        if what in ("pages", "page", "walk"):
            addr = d.address(args[0]) if args else d.pc()
            return I.format_walk(I.walk(m, addr))
        if what in ("memmap", "mappings"):
            return I.format_address_space(I.address_space(m))
        if what == "stack":
            return I.format_stack(I.stack(m, int(args[0], 0) if args else 16))
        if what == "mode":
            return I.registers(m)["mode"]
        if what in ("symbols", "sym"):
            prefix = args[0] if args else ""
            rows = [s for s in d.symbols.symbols() if s.name.startswith(prefix)]
            return "\n".join(f"{s.address & 0xFFFFFFFF:#010x} {s.kind:8} {s.name}"
                             for s in rows[:500]) or "no symbols"
        if what == "events":
            return self.cmd_events("events", "", args[0] if args else "")
        if what in ("devices", "device"):
            if args:
                return I.format_device(I.device(m, args[0]))
            return I.format_devices(I.devices(m))
        try:
            return I.format_device(I.device(m, what))
        except KeyError:
            raise DebugError(f"info what? {HELP['info']}") from None

    def cmd_sym(self, word, fmt, rest):
        args = rest.split()
        if word == "symbols":
            if not args:
                raise DebugError(HELP["sym"])
            n = self.dbg.load_symbols(args[0], self.dbg.eval(args[1]) if len(args) > 1 else 0)
            return f"{n} symbols from {args[0]}"
        if len(args) != 2:
            raise DebugError(HELP["sym"])
        self.dbg.symbols.add(args[0], self.dbg.address(args[1]))
        return ""

    def cmd_events(self, word, fmt, rest):
        if rest in ("on", "off"):
            self.dbg.log_events(rest == "on")
            return f"event log {rest}"
        n = int(rest) if rest else 20
        ev = list(self.dbg.events)[-n:]
        return "\n".join(f"{ic:>12}  {text}" for ic, text in ev) or "no events"

    def cmd_snapshot(self, word, fmt, rest):
        from .. import statefile
        args = rest.split()
        m = self.dbg.m
        if word == "state":
            if len(args) != 2 or args[0] not in ("save", "load"):
                raise DebugError("state save|load FILE")
            try:
                if args[0] == "save":
                    size = statefile.save(args[1], m, settings=m.config.hardware())
                    return f"saved {size} bytes to {args[1]}"
                header, st = statefile.load(args[1])
                statefile.check_identity(header["machine"], m)
            except OSError as e:
                raise DebugError(f"{args[1]}: {e.strerror}") from None
            except ValueError as e:             # StateFileError: one line
                raise DebugError(str(e)) from None
            self.dbg.restore_state(st, args[1])
            return f"loaded {args[1]} (instruction {m.cpu.icount})"
        if len(args) != 1:
            raise DebugError("snapshot NAME / restore NAME")
        if word == "restore":
            st = self.snapshots.get(args[0])
            if st is None:
                raise DebugError(f"no snapshot {args[0]!r}")
            self.dbg.restore_state(st, f"snapshot {args[0]}")
            return f"restored {args[0]} (instruction {m.cpu.icount})"
        self.snapshots[args[0]] = m.get_state()
        return f"snapshot {args[0]} at instruction {m.cpu.icount}"

    def cmd_help(self, word, fmt, rest):
        if rest:
            key = ALIASES.get(rest.lower(), rest.lower())
            if key not in HELP:
                raise DebugError(f"no command {rest!r}")
            return HELP[key]
        return "\n".join(HELP[k] for k in HELP)

    def cmd_quit(self, word, fmt, rest):
        self.quit = True
        return ""


def split_script(text: str) -> list[str]:
    """Lines of a command file (``-x``), comments and blank lines dropped."""
    return [ln for ln in (x.strip() for x in text.splitlines()) if ln and not ln.startswith("#")]

