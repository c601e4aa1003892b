"""Memory accesses in translated code: the segment check inline, then straight to the MMU's
current access function.

An instruction template reads and writes memory through the CPU's access methods
(``cpu.rd32(seg, off)``, ``cpu.wr8(seg, off, v)``, ``cpu.rmw16(seg, off)``; ``aero.cpu.cpu``):
each checks the offset against the segment's limits (its cached ``rlo``/``rhi`` for reads,
``wlo``/``whi`` for writes) and calls the MMU's function for the current mode (``cpu._r32`` ...:
the bus directly without paging, the TLB's fast maps with it, wrapped for #AC or a tracer).
Translated code does the same in one Python call less per access:

    rd32(S, EA)  ->  (cpu._r32((_bS + _o) & 0xFFFFFFFF) if _rlS <= (_o := EA) <= _rhS_3
                      else rd32(S, _o))

The check is the same comparison; an offset outside the limits takes the method, which raises
the fault exactly as the interpreter does.  A flat segment (base 0, every offset allowed) goes
first by a shorter way: the offset is the linear address (``_flat_paths``,
``SegmentLocals.flat``).  The segment's base and limits are locals of the
unit's ``run`` (``SegmentLocals``), read from the CPU's lists when it starts and again after
every opaque instruction: a segment changes only in a helper (a segment load, a far transfer,
a task switch), and an instruction that calls one keeps reading the lists themselves.  So do
``cpu.flat_ram`` and ``cpu.paged_ram`` (paging, A20 and #AC change them, in helpers too); the
MMU function of the slow path is looked up on ``cpu`` at every access.  The lists are the
CPU's own, bound once per unit: they are replaced only by a reset, which discards every unit.
"""

from __future__ import annotations

import re

_ACCESS = re.compile(r"(?<![\w.])(rd|wr|rmw)(8|16|32)\(")
# bound once per unit (none of them is ever replaced): RAM, the bus's per-page slow flags, the
# struct functions the bus's own fast path uses and the CPU's segment lists
RAM_BINDINGS = ("_ram = cpu.bus.ram; _rslow = cpu.bus.rslow; _wslow = cpu.bus.wslow; "
                "_mmu = cpu.mmu; "
                "_U16 = _S16.unpack_from; _U32 = _S32.unpack_from; _P16 = _S16.pack_into; "
                "_P32 = _S32.pack_into; "
                "_base = cpu.base; _rlo = cpu.rlo; _rhi = cpu.rhi; _wlo = cpu.wlo; _whi = cpu.whi")


class SegmentLocals:
    """The segment values a unit's inlined accesses use, as locals of its ``run``: ``_bS``
    (base), ``_rlS``/``_rhS_N`` (the lowest and highest offset an N+1-byte read may start at),
    ``_wlS``/``_whS_N`` (writes), and ``_flat``/``_paged`` (``cpu.flat_ram``/``paged_ram``).
    ``live`` gives the expressions that read the CPU instead, for opaque instructions."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def _name(self, name: str, expr: str, live: bool) -> str:
        if live:
            return expr
        self.names[name] = expr
        return name

    def base(self, s, live=False) -> str:
        return self._name(f"_b{s}", f"_base[{s}]", live)

    def low(self, kind: str, s, live=False) -> str:
        w = "w" if kind != "rd" else "r"
        return self._name(f"_{w}l{s}", f"_{w}lo[{s}]", live)

    def high(self, kind: str, s, span: int, live=False) -> str:
        w = "w" if kind != "rd" else "r"
        expr = f"_{w}hi[{s}]" + (f" - {span}" if span else "")
        return self._name(f"_{w}h{s}_{span}", expr, live)

    def limit(self, s) -> str:
        """The segment's limit (``cpu.limit``; CS's is what near transfers check)."""
        return self._name(f"_lim{s}", f"cpu.limit[{s}]", False)

    def ss_big(self, live=False) -> str:
        """SS's B bit: the stack's address size (32-bit if set)."""
        return self._name("_ssb", f"cpu.attr[{SS}] & {_A_DB:#x}", live)

    def ss_mask(self, live=False) -> str:
        return self._name("_ssm", f"(0xFFFFFFFF if cpu.attr[{SS}] & {_A_DB:#x} else 0xFFFF)",
                          live)

    def mode(self, which: str, live=False) -> str:
        return self._name(f"_{which}", f"cpu.{which}_ram", live)

    def flat(self, kind: str, s, paged: bool, stack: bool = False, live: bool = False) -> str:
        """True while segment ``s`` is flat for ``kind`` (base 0, every offset allowed: its
        limits are 0 and 0xFFFFFFFF) and the RAM mode is the one named (``cpu.paged_ram`` or
        ``cpu.flat_ram``); for the stack (``stack``), SS's B bit is set as well."""
        w = "w" if kind != "rd" else "r"
        mode = "paged" if paged else "flat"
        expr = (f"cpu.{mode}_ram and _base[{s}] == 0 and _{w}lo[{s}] == 0 and "
                f"_{w}hi[{s}] == 0xFFFFFFFF")
        if stack:
            expr += f" and cpu.attr[{SS}] & {_A_DB:#x} != 0"
        return self._name(f"_{mode[0]}{w}{s}{'s' if stack else ''}", expr, live)

    def load(self) -> str:
        """The statement that reads them all (empty if none is used)."""
        return "; ".join(f"{n} = {e}" for n, e in sorted(self.names.items()))
_LAST = {8: None, 16: "!= 0xFFF", 32: "<= 0xFFC"}     # the access stays in its page


def _in_place(kind: str, bits: int, addr: str, value: str | None) -> str:
    if kind == "wr":
        if bits == 8:
            return f"_ram.__setitem__({addr}, {value})"
        return f"_P{bits}(_ram, {addr}, {value})"
    return f"_ram[{addr}]" if bits == 8 else f"_U{bits}(_ram, {addr})[0]"


# the local a slow path sets, when the translation checks it instead of ``cpu.exit_req``
SLOW_MARK = "_x"


def _slow_path(call: str, before_slow: str | None, mark: bool) -> str:
    if before_slow:
        call = f"({before_slow} or {call})"
    return f"(({SLOW_MARK} := 1) and {call})" if mark else call


def ram_access(kind: str, bits: int, lin: str, value: str | None, n: int,
               segs: SegmentLocals, live: bool = False, before_slow: str | None = None,
               mark: bool = False) -> str:
    """The MMU function's call for ``kind`` (rd, wr, rmw) at linear ``lin``, with its fast path
    inline:

    * while ``cpu.flat_ram`` (paging off, A20 on, nothing wrapped: the function is
      ``Bus.read32`` ...), a page with no slow flag is plain RAM, read or written in place (a
      write to a code page, a watched page, ROM or MMIO has its flag set and goes through the
      function, as it would have);
    * while ``cpu.paged_ram`` (paging on, nothing wrapped: the function is the MMU's
      ``_pg_read32`` ...), the linear page in the MMU's current fast map (``rmap``, or ``wmap``
      for writes and reads with write intent: pages whose translation is cached with its
      accessed and dirty bits already set, and not watched) gives the physical page, and a
      physical page with no slow flag is read or written in place, as ``_pg_read32`` and then
      ``Bus.read32`` would do.  Anything else calls the function."""
    fn = {"rd": "_r", "wr": "_w", "rmw": "_m"}[kind] + str(bits)
    a = f"_a{n}"
    # the mode first: with paging on, no time goes into the flat test
    (test, fast), (ptest, pfast) = _in_place_paths(
        kind, bits, segs.mode("flat", live), segs.mode("paged", live), f"({a} := {lin})", a,
        value, n)
    call = f"cpu.{fn}({lin}, {value})" if kind == "wr" else f"cpu.{fn}({lin})"
    call = _slow_path(call, before_slow, mark)
    return f"({fast} if {test} else {pfast} if {ptest} else {call})"


def _in_place_paths(kind: str, bits: int, flat: str, paged: str, addr: str, name: str,
                    value: str | None, n: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """The (test, access) pairs that read or write RAM in place: while ``flat`` is true, at
    the address itself; while ``paged`` is, at its page in the MMU's fast map.  Either way the
    access stays in its page and the physical page has no slow flag.  ``addr`` is the
    address's expression, ``name`` the local it is kept in (``addr`` may assign it)."""
    p = f"_p{n}"
    flags = "_wslow" if kind == "wr" else "_rslow"
    last = f" and {name} & 0xFFF {_LAST[bits]}" if _LAST[bits] else ""
    fmap = "rmap" if kind == "rd" else "wmap"
    return ((f"{flat} and not {flags}[{addr} >> 12]{last}", _in_place(kind, bits, name, value)),
            (f"{paged} and ({p} := _mmu.{fmap}.get({addr} >> 12)) is not None{last} and "
             f"not {flags}[{p} >> 12]", _in_place(kind, bits, f"({p} | ({name} & 0xFFF))", value)))


def _flat_paths(kind: str, bits: int, off: str, t: str, value: str | None, n: int,
                segs: SegmentLocals, seg, stack: bool = False,
                live: bool = False) -> tuple[str, str]:
    """The in-place accesses for a flat segment (``SegmentLocals.flat``), tried before
    anything else: the offset is the linear address, and an offset the limits would refuse
    (past 0xFFFFFFFF - size + 1) also leaves its page, which these test anyway.  ``off`` is the
    offset's expression, ``t`` the name it is kept in (``off`` may assign it).  Returns the
    (paging off, paging on) pairs of (test, access)."""
    return _in_place_paths(kind, bits, segs.flat(kind, seg, False, stack, live),
                           segs.flat(kind, seg, True, stack, live), off, t, value, n)


def in_range(expr: str) -> bool:
    """Whether offset expression ``expr`` is surely in 0 .. 0xFFFFFFFF: a register local, a
    literal, or a whole expression masked to 16 or 32 bits (so a flat segment's fast path may
    index the page flags with it, unchecked)."""
    expr = expr.strip()
    while expr.startswith("(") and _closes_at_end(expr):
        expr = expr[1:-1].strip()
    if re.fullmatch(r"r[0-7]|\d+|0x[0-9a-fA-F]{1,8}", expr):
        return True
    m = re.fullmatch(r"(.*) & (0xFFFF|0xFFFFFFFF|0xffff|0xffffffff)", expr, re.S)
    if m is None:
        return False
    inner = m.group(1).strip()
    if re.fullmatch(r"r[0-7]", inner):
        return True
    return inner.startswith("(") and _closes_at_end(inner)


def _closes_at_end(expr: str) -> bool:
    """Whether the parenthesis ``expr`` opens with closes at its very end."""
    depth = 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(expr) - 1
    return False


_EA_LINE = re.compile(r"^\s*ea = (.*)$", re.M)


def _offset_in_range(body: str, ea: str) -> bool:
    if ea.strip() == "ea":
        lines = _EA_LINE.findall(body)
        return len(lines) == 1 and in_range(lines[0])
    return in_range(ea)


def _args(text: str, start: int) -> tuple[list[str], int] | None:
    """The top-level comma-separated arguments of the call whose '(' is at ``start - 1``, and
    the index after its ')'; None if unbalanced."""
    depth = 0
    args, cur = [], []
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    return None


def inline_accesses(body: str, counter: list, segs: SegmentLocals, live: bool = False,
                    before_slow: str | None = None, mark: bool = False) -> tuple[str, bool]:
    """``body`` with its memory accesses inlined (see the module docstring); True if any was.
    ``counter`` ([int]) numbers the temporaries across a unit; the segment values are the
    locals of ``segs``, or read from the CPU if ``live`` (an opaque instruction).
    ``before_slow``, an expression giving None, is evaluated before either slow path (the MMU
    function, or the method for an offset outside the limits) is called.  With ``mark``, a slow
    path also sets the local ``_x`` (``SLOW_MARK``) to 1: the only way the access may have
    asked the running code to stop."""
    out = []
    pos = 0
    changed = False
    while True:
        m = _ACCESS.search(body, pos)
        if m is None:
            out.append(body[pos:])
            break
        parsed = _args(body, m.end())
        if parsed is None:
            out.append(body[pos:])
            break
        args, end = parsed
        kind, bits = m.group(1), int(m.group(2))
        nargs = 3 if kind == "wr" else 2
        if len(args) != nargs or not args[0].isdigit() or any(_ACCESS.search(a) for a in args):
            out.append(body[pos:end])               # left as it is (never happens in templates)
            pos = end
            continue
        seg, ea = args[0], args[1]
        counter[0] += 1
        n = counter[0]
        t = f"_o{n}"
        span = bits // 8 - 1
        lin = f"({segs.base(seg, live)} + {t}) & 0xFFFFFFFF"
        hi = segs.high(kind, seg, span, live)
        cond = f"{segs.low(kind, seg, live)} <= ({t} := ({ea})) <= {hi}"
        value = args[2] if kind == "wr" else None
        fast = ram_access(kind, bits, lin, value, n, segs, live, before_slow, mark)
        slow = f"{kind}{bits}({seg}, {t}, {value})" if kind == "wr" else f"{kind}{bits}({seg}, {t})"
        slow = _slow_path(slow, before_slow, mark)
        out.append(body[pos:m.start()])
        access = f"({fast} if {cond} else {slow})"
        if not live and _offset_in_range(body, ea):
            (ft, fa), (pt, pa) = _flat_paths(kind, bits, f"({t} := {ea})", t, value, n, segs,
                                             seg)
            access = f"({fa} if {ft} else {pa} if {pt} else {access})"
        out.append(access)
        pos = end
        changed = True
    return "".join(out), changed


# ---- the stack -------------------------------------------------------------------------------
# PUSH/POP/CALL/RET's helpers (cpu.push16/32, pop16/32, stack_read, stack_add) inline as well,
# on ESP kept in its local r4: the same address size from SS's B bit, the same limit check, the
# MMU function; a check that fails calls the helper (with ESP written back), which faults.  With
# the segment values read live (a unit with exec points on most instructions keeps the registers
# in cpu.R), the translation puts ``R[4]`` for ``r4``, and the flat-stack test reads SS live too.
SS = 2
_A_DB = 0x4000
_LINE = re.compile(r"^(\s*)(?:(\w+) = )?cpu\.(push16|push32|pop16|pop32|stack_read|stack_add)"
                   r"\((.*)\)(\s*&\s*0x[0-9A-Fa-f]+)?\s*$")


def _stack_line(indent: str, target: str | None, helper: str, arg: str, mask: str | None,
                n: int, segs: SegmentLocals, live: bool = False,
                sb: str | None = None) -> list[str] | None:
    """``sb``: a local holding SS's B bit, read live by an earlier helper of the same
    instruction (nothing between them loads SS: an instruction that does is opaque)."""
    i = indent
    big, wrap = segs.ss_big(live), segs.ss_mask(live)
    base = segs.base(SS, live)
    sp = f"_sp{n}"
    first = []
    if live and sb is not None:
        big, wrap = sb, f"(0xFFFFFFFF if {sb} else 0xFFFF)"
    elif live and helper != "stack_add":        # SS's B bit read once
        first = [f"{i}_sb{n} = {big}"]
        big, wrap = f"_sb{n}", f"(0xFFFFFFFF if _sb{n} else 0xFFFF)"

    def flat_paths(kind, bits, value, off, then):
        # a flat 32-bit stack (``_flat_paths``): the offset ``off`` is the linear address
        (ft, fa), (pt, pa) = _flat_paths(kind, bits, off, sp, value, n, segs, SS, stack=True,
                                         live=live)
        put = f"{i}    " if kind == "wr" else f"{i}    _v{n} = "
        return [f"{i}if {ft}:", put + fa, *then, f"{i}elif {pt}:", put + pa, *then]

    def flat(kind, bits, value, then):
        # with segment locals: tried after ESP is masked, before the limit check
        return [] if live else flat_paths(kind, bits, value, sp, then)

    def live_flat(kind, bits, value, addr, then, general):
        # with the segment read live, the flat test reads it too and computes the offset
        # (``addr``) itself, and the general code (B bit, limits) runs only when it fails;
        # the B bit is known set there, for a later helper of the instruction
        if not live:
            return general
        then = then + ([f"{i}    _sb{n} = 1"] if first else [])
        return [*flat_paths(kind, bits, value, f"({sp} := {addr})", then),
                f"{i}else:", *("    " + line for line in general)]

    limits = "if" if live else "elif"               # the limit check, after any flat paths

    if helper.startswith("push") and target is None and mask is None:
        size = int(helper[4:]) // 8
        general = [
            *first, f"{i}_sp{n} = (r4 - {size}) & {wrap}",
            *flat("wr", size * 8, f"_v{n}", [f"{i}    r4 = _sp{n}"]),
            f"{i}{limits} {segs.low('wr', SS, live)} <= _sp{n} <= "
            f"{segs.high('wr', SS, size - 1, live)}:",
            f"{i}    " + ram_access("wr", size * 8, f"({base} + _sp{n}) & 0xFFFFFFFF",
                                    f"_v{n}", n, segs, live),
            f"{i}    r4 = _sp{n} if {big} else (r4 & 0xFFFF0000) | _sp{n}",
            f"{i}else:",
            f"{i}    R[4] = r4; cpu.{helper}(_v{n}); r4 = R[4]"]
        return [f"{i}_v{n} = {arg}",
                *live_flat("wr", size * 8, f"_v{n}", f"(r4 - {size}) & 0xFFFFFFFF",
                           [f"{i}    r4 = _sp{n}"], general)]
    if helper.startswith("pop") and target is not None and not arg.strip():
        size = int(helper[3:]) // 8
        popped = [f"{i}    r4 = (_sp{n} + {size}) & 0xFFFFFFFF"]
        general = [
            *first, f"{i}_sp{n} = r4 & {wrap}",
            *flat("rd", size * 8, None, popped),
            f"{i}{limits} {segs.low('rd', SS, live)} <= _sp{n} <= "
            f"{segs.high('rd', SS, size - 1, live)}:",
            f"{i}    _v{n} = " + ram_access("rd", size * 8, f"({base} + _sp{n}) & 0xFFFFFFFF",
                                          None, n, segs, live),
            f"{i}    r4 = (_sp{n} + {size}) & 0xFFFFFFFF if {big} else "
            f"(r4 & 0xFFFF0000) | ((_sp{n} + {size}) & 0xFFFF)",
            f"{i}else:",
            f"{i}    R[4] = r4; _v{n} = cpu.{helper}(); r4 = R[4]"]
        return [*live_flat("rd", size * 8, None, "r4", popped, general),
                f"{i}{target} = _v{n}{mask or ''}"]
    if helper == "stack_read" and target is not None:
        parts = [p.strip() for p in arg.split(",")]
        if len(parts) != 2 or parts[1] not in ("16", "32"):
            return None
        size = int(parts[1]) // 8
        general = [
            *first, f"{i}_sp{n} = (r4 + {parts[0]}) & {wrap}",
            *flat("rd", size * 8, None, []),
            f"{i}{limits} {segs.low('rd', SS, live)} <= _sp{n} <= "
            f"{segs.high('rd', SS, size - 1, live)}:",
            f"{i}    _v{n} = " + ram_access("rd", size * 8, f"({base} + _sp{n}) & 0xFFFFFFFF",
                                          None, n, segs, live),
            f"{i}else:",
            f"{i}    R[4] = r4; _v{n} = cpu.stack_read({arg})"]
        return [*live_flat("rd", size * 8, None, f"(r4 + {parts[0]}) & 0xFFFFFFFF", [],
                           general),
                f"{i}{target} = _v{n}{mask or ''}"]
    if helper == "stack_add" and target is None and mask is None:
        return [f"{i}if {big}:",
                f"{i}    r4 = (r4 + ({arg})) & 0xFFFFFFFF",
                f"{i}else:",
                f"{i}    r4 = (r4 & 0xFFFF0000) | ((r4 + ({arg})) & 0xFFFF)"]
    return None


def inline_stack(body: str, counter: list, segs: SegmentLocals,
                 live: bool = False) -> str | None:
    """``body`` (registers already in locals, ESP in ``r4``) with every stack helper call
    inlined, or None when one of them is in a form this does not rewrite (the caller then
    writes ESP back around the helpers instead)."""
    out = []
    sb = None
    for line in body.splitlines():
        if "cpu.push" not in line and "cpu.pop" not in line and "cpu.stack_" not in line:
            out.append(line)
            continue
        m = _LINE.match(line)
        if m is None:
            return None
        counter[0] += 1
        lines = _stack_line(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5),
                            counter[0], segs, live, sb if m.group(1) == "" else None)
        if lines is None or any(h in m.group(4) for h in ("cpu.push", "cpu.pop", "cpu.stack_")):
            return None
        if live and m.group(1) == "" and m.group(3) != "stack_add" and sb is None:
            sb = f"_sb{counter[0]}"
        out.extend(lines)
    return "\n".join(out)
