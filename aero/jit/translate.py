"""Translating a region of blocks into one Python function.

A region is a set of interpreter blocks (``aero.jit.region``) sharing a code segment; the
function runs them as the run loop would, one after another, following the control transfers
between them itself:

* every instruction is its semantic template (``aero.cpu.sem``, expanded by
  ``aero.cpu.codegen.expand``: the one definition of every instruction), constants inlined as
  literals (values that are not numbers, such as the decoded instruction some helpers take, are
  bound once when the unit is made);
* the eight general registers live in locals (``r0`` ... ``r7``) and go back to ``cpu.R`` when the
  function returns, and around instructions whose helpers read or write ``cpu.R`` themselves;
  the segment values the inlined memory accesses use are locals too (``aero.jit.memory``);
* lazy flags: a store nothing reads before a later instruction replaces the flags is dropped
  (``dead_flag_stores``), or, with memory accesses in between, left in locals until something
  could see it (``deferred_flag_stores``); INC/DEC take their carry from the instruction before
  (``forward_cf``), and a branch tests the values the instruction before compared
  (``specialise_branch``);
* an instruction's temporaries (``a``, ``b``, ``r``, ``ea``) go into the statement that uses
  them where nothing else reads them (``propagate_copies``): ``r0 = (r0 + r3) & 0xffffffff``;
* the block's last instruction sets a local ``pc`` instead of ``cpu.eip``; a loop dispatches on it
  to the next block of the region, and returns when it leaves the region;
* before a block, the budget: if its instructions would go past ``limit`` (``done > _lN``, with
  ``_lN = limit - N`` for a block of N made once), the function returns
  there (the run loop finishes the count with the interpreter), so instruction counts, device
  events and interrupts land on the same boundaries as in the interpreter;
* after an instruction that may have asked the running code to stop (``cpu.exit_req``: it called
  into the slow memory path, a device, a helper), and after every block, the request is checked
  and the function returns at that boundary (after one whose only calls are memory accesses,
  only when a slow path ran: it sets the local ``_x``).

A fault propagates with its traceback: the line it came from says which instruction of which
block faulted, and the frame's locals give the registers, the lazy flags left in locals and the
count done so far (``Unit``); nothing is tracked while running.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..cpu import codegen, flags
from ..cpu.blocks import JumpBlock
from .memory import RAM_BINDINGS, SLOW_MARK, SegmentLocals, inline_accesses, inline_stack

_PARAM = re.compile(r"\bP(\d+)\b")
_REG = re.compile(r"\bR\[(\d)\]")
_SET_EIP = re.compile(r"^(\s*)cpu\.eip\s*=(?!=)\s*(.*)$", re.M)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\(")
_HOIST = codegen._HOIST
_LOCAL_REG = re.compile(r"(?<![\w.])r([0-7])(?!\w)")
# an instruction's exec points (hook_prefix), then its own code
_PREFIX = re.compile(r"^((?:cpu\.eip = [^\n]*\n)(?:K\d+\(cpu, [^\n]*\)\n)+)(.*)$", re.S)
# the access methods, and the MMU functions they call (inlined: aero.jit.memory)
_MEM = frozenset(_HOIST) | frozenset(f"cpu._{k}{n}" for k in "rwm" for n in (8, 16, 32))
# calls on values only: no device, no code cache, no hook, no register list
_PURE = frozenset(("cond", "carry", "arith", "sext_to", "sign_of", "cf_source", "alu_szp",
                   "alu_cf", "alu_put", "alu_adc_flags", "int", "len", "min", "max", "abs",
                   "bool", "CPUFault", "hex", "divmod", "cpu.get_flags", "cpu.set_arith",
                   "cpu.write_flags", "cpu.seg_fault"))
# helpers that touch ESP (cpu.R[4]) and no other register
_STACK = frozenset(("cpu.push16", "cpu.push32", "cpu.pop16", "cpu.pop32", "cpu.stack_read",
                    "cpu.stack_add"))
IND = " " * 16                          # the indentation of a block's code in run()
_SEGLOAD = "@SEGLOAD@"                  # where the segment locals are read again


@dataclass
class Translation:
    source: str = ""
    consts: list = field(default_factory=list)   # values bound by name (K0, K1, ...)
    lines: list = field(default_factory=list)    # first source line of each instruction
    where: list = field(default_factory=list)    # (block index, instruction index) per entry
    # per entry, the registers in cpu.R that are more recent than the locals while it runs
    # (written back before it: all of them around a helper, ESP around a stack helper)
    flushed: list = field(default_factory=list)
    regs: tuple = ()                             # the registers kept in locals
    # per entry, the lazy flags the interpreter would have in cpu.lf while it runs, when a
    # translation left them in locals (an expression on the frame's locals), else None
    lazy: list = field(default_factory=list)
    # the hooks whose calls the unit counts (inline_hooks): the cell's name -> InlineHook
    counters: dict = field(default_factory=dict)

    def locate(self, line: int) -> tuple[int, int]:
        """(block index, instruction index) of the instruction holding source ``line``."""
        return self.where[max(0, bisect.bisect_right(self.lines, line) - 1)]


_KEYWORDS = frozenset(("if", "elif", "else", "and", "or", "not", "in", "is", "return", "while",
                       "for", "lambda", "assert", "del", "raise", "yield"))


def _calls(body: str):
    return [c for c in (m.group(1) for m in _CALL.finditer(body)) if c not in _KEYWORDS]


def may_exit(body: str) -> bool:
    """Whether an instruction's code calls something that may ask the running code to stop: a
    memory access (its slow path reaches devices, watches and the code cache), a helper."""
    return any(c not in _PURE for c in _calls(body))


def opaque(body: str) -> bool:
    """Whether an instruction's code calls something that reads or writes ``cpu.R`` (any of
    it) itself, or may set ``cpu.eip``."""
    return any(c not in _PURE and c not in _MEM and c not in _STACK for c in _calls(body))


def stacky(body: str) -> bool:
    """Whether it calls a stack helper (reads and writes ``cpu.R[4]``, ESP, and nothing else of
    the registers; never sets EIP)."""
    return any(c in _STACK for c in _calls(body))


# INC/DEC's carry source (aero.cpu.flags.cf_source) inline: one call less per INC/DEC
_CF_SOURCE = (f"((cpu.flags & 1) if (lf_ := cpu.lf) is None else "
              f"(lf_[2] if lf_[0] >= {flags.INC_K} else lf_))")

# flag liveness: calls that neither read flags nor touch the CPU
_FLAGLESS_CALLS = frozenset(("int", "len", "min", "max", "abs", "bool", "sext_to", "sign_of"))
_LF_LAST = re.compile(r"\ncpu\.lf = (?:_lf\d+ = )?\([^\n]*\)\s*$")
# the kind of a lazy-flags store that is an instruction's last statement
_LF_KIND = re.compile(r"\ncpu\.lf = \((\d+), [^\n]*\)\s*$")
# an INC/DEC's store whose carry source is a local (forwarded from the instruction before it)
_LF_INCDEC = re.compile(r"\ncpu\.lf = \(\d+, \w+, (_lf\d+), \w+\)\s*$")


def _clean(body: str) -> bool:
    """Neither reads nor writes the flags, cannot fault, call out or ask to stop: no access to
    the CPU object at all (register locals and arithmetic only)."""
    return ("cpu" not in body and "raise" not in body and
            all(c in _FLAGLESS_CALLS for c in _calls(body)))


def _replaces_flags(body: str) -> bool:
    """Sets all six arithmetic flags unconditionally (a lazy-flags tuple as its last statement),
    reading none, and cannot fault or call out before that."""
    text = "\n" + body
    m = _LF_LAST.search(text)
    if m is None:
        return False
    value = m.group(0).split("=", 1)[1]           # the tuple: it must not read the old flags
    return _clean(text[:m.start()]) and _clean(value)


def forward_cf(bodies: list[str], counter: list) -> list[str]:
    """INC/DEC keep CF: their carry source (``_CF_SOURCE``, read from ``cpu.lf``) is known when
    the instruction before them in the block ends with a lazy-flags store of a known kind.
    That store also goes to a local (``_lfN``), and the INC/DEC takes its carry source from it:
    the previous tuple itself, or its own carry source for an earlier INC/DEC.  The INC/DEC
    then no longer reads ``cpu.lf``, so the earlier store may become dead (``dead_flag_stores``
    keeps the local)."""
    out = list(bodies)
    for i in range(1, len(out)):
        if _CF_SOURCE not in out[i]:
            continue
        before = out[i].split(_CF_SOURCE, 1)[0].rpartition("\n")[0]
        if not _clean(before):
            continue                             # (nothing may change cpu.lf in between)
        m = _LF_KIND.search("\n" + out[i - 1])
        if m is None:
            continue
        kind = int(m.group(1))
        prev = "\n" + out[i - 1]
        if kind >= flags.INC_K:
            # an INC/DEC before: its own carry source, when that is already a local, directly
            src = _LF_INCDEC.search(prev)
            if src is not None:
                out[i] = out[i].replace(_CF_SOURCE, src.group(1))
                continue
        name = f"_lf{counter[0]}"
        counter[0] += 1
        at = m.start() + len("\ncpu.lf = ")
        out[i - 1] = (prev[:at] + f"{name} = " + prev[at:])[1:]
        out[i] = out[i].replace(_CF_SOURCE, f"{name}[2]" if kind >= flags.INC_K else name)
    return out


def _drop_flag_store(body: str) -> str:
    """``body`` without its last statement's store to ``cpu.lf`` (a local it also sets stays)."""
    text = "\n" + body
    m = _LF_LAST.search(text)
    line = m.group(0)
    if "= _lf" in line:
        return (text[:m.start()] + line.replace("cpu.lf = ", "", 1))[1:]
    out = text[:m.start()] + "\n"
    return out[1:] if out.strip() else "pass"


def dead_flag_stores(bodies: list[str]) -> set[int]:
    """Indexes of the instructions of one block whose lazy-flags store is dead: a later
    instruction of the block replaces all the flags, and nothing between can read them, fault,
    or leave the block (so no handler, hook or run loop sees the flags in between)."""
    dead = set()
    for i, body in enumerate(bodies):
        if _LF_LAST.search("\n" + body) is None:
            continue
        for later in bodies[i + 1:]:
            if _replaces_flags(later):
                dead.add(i)
                break
            if not _clean(later):
                break
    return dead


# a lazy store of plain locals or numbers, which the locals still describe later
_LF_PLAIN = re.compile(r"\ncpu\.lf = (\((\d+), (\w+), (\w+), (\w+)\))\s*$")
_ACCESSES = frozenset(codegen._HOIST)


def _assigns(body: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){name}\s*(?::=|[-+*/&|^%<>]*=(?!=))", body) is not None


def _mem_only(body: str) -> bool:
    """Reads or writes memory through the inlined accesses and does nothing else with the CPU:
    it may fault, or call the slow path (a device, a watched page), but never reads the flags."""
    return ("cpu" not in body and "raise" not in body and
            all(c in _FLAGLESS_CALLS or c in _ACCESSES for c in _calls(body)))


def deferred_flag_stores(bodies: list[str], dead: set[int]) -> tuple[set[int], dict[int, str]]:
    """Lazy-flags stores that a later instruction of the block replaces, with only memory
    accesses that may fault or call out in between (``dead_flag_stores`` wants none): the
    store is dropped, and the tuple, built from locals nothing in between assigns, is made
    only when something could see it: by the slow path of those accesses before it calls out,
    by an early exit after them, and from the frame's locals when one faults (``Unit``).
    Returns the dropped stores and, per instruction in between, the tuple's expression."""
    dropped: set[int] = set()
    pending: dict[int, str] = {}
    for i, body in enumerate(bodies):
        if i in dead:
            continue
        m = _LF_PLAIN.search("\n" + body)
        if m is None:
            continue
        names = [v for v in m.group(3, 4, 5) if not v.isdigit() and not v.startswith("0x")]
        between = []
        for j in range(i + 1, len(bodies)):
            later = bodies[j]
            if _replaces_flags(later):
                if any(_mem_only(bodies[k]) and not _clean(bodies[k]) for k in between):
                    dropped.add(i)
                    for k in between:
                        pending[k] = m.group(1)
                break
            if any(_assigns(later, v) for v in names) or not (_clean(later) or
                                                               _mem_only(later)):
                break
            between.append(j)
    return dropped, pending


# Branches on flags the instruction just before set (aero.cpu.flags.cond, specialised): after a
# lazy store (KIND, a, b, r) of plain locals, ZF is r == 0 whatever the kind; after a subtraction
# (CMP, SUB, SBB without carry) CF is a < b, and signed "less" is an unsigned comparison with the
# sign bit flipped.
_LF_TUPLE = re.compile(r"\ncpu\.lf = \((\d+), (a), (b), (r)\)\s*$")
_LF_R = re.compile(r"\ncpu\.lf = \(\d+, [^\n]*, r\)\s*$")
_ZF_JCC = re.compile(r"^lf = cpu\.lf\n(pc|cpu\.eip) = (\S+) if \(\(lf\[3\] == 0\) if lf is not None "
                     r"else \(cpu\.flags & 0x40\)\) else (\S+)$")
_CC_JCC = re.compile(r"^(pc|cpu\.eip) = (\S+) if cond\(cpu, (\d+)\) else (\S+)$")


def specialise_branch(prev: str, jcc: str) -> str:
    """``jcc`` (a Jcc body) with its condition computed from the locals ``prev`` (the body of
    the instruction before it in the block) left, where that is exact; else ``jcc``."""
    z = _ZF_JCC.match(jcc.strip())
    if z and _LF_R.search("\n" + prev):
        return f"{z.group(1)} = {z.group(2)} if r == 0 else {z.group(3)}"
    m = _LF_TUPLE.search("\n" + prev)
    if m is None:
        return jcc
    kind = int(m.group(1))
    c = _CC_JCC.match(jcc.strip())
    if c is None:
        return jcc
    cc = int(c.group(3))
    cls, inv = cc >> 1, cc & 1
    test = None
    if cls == 2:
        test = "r == 0"
    elif flags.SUB_K <= kind < flags.LOGIC_K:
        sign = flags.SIGN[kind - flags.SUB_K]
        test = {1: "a < b", 3: "a <= b", 6: f"(a ^ {sign:#x}) < (b ^ {sign:#x})",
                7: f"(a ^ {sign:#x}) <= (b ^ {sign:#x})"}.get(cls)
    if test is None:
        return jcc
    if inv:
        test = f"not ({test})"
    return f"{c.group(1)} = {c.group(2)} if {test} else {c.group(4)}"


_COUNT = re.compile(r"^(?P<i>[ ]*)c = (?P<v>\d+|0x[0-9a-fA-F]+) & (?P<m>31|0x1f)\n"
                    r"(?P=i)if c:\n(?P<blk>(?:(?P=i)    [^\n]*(?:\n|$))+)", re.M)


def fold_count(body: str) -> str:
    """A shift or rotate by a constant count: ``c = N & 31`` then ``if c:`` around the work
    becomes the work alone (or nothing, for a count of 0), so its lazy-flags store is the
    instruction's last statement, which dead-store elimination and branch specialisation
    look for."""
    def sub(m):
        i, c = m.group("i"), int(m.group("v"), 0) & 31
        if not c:
            return f"{i}c = 0\n"
        blk = "".join(ln[4:] + "\n" if ln.strip() else "\n"
                      for ln in m.group("blk").rstrip("\n").split("\n"))
        return f"{i}c = {c}\n{blk}"
    return _COUNT.sub(sub, body)


_TEMPS = ("a", "b", "r", "ea", "o", "p")  # the templates' temporaries (per instruction)
_SIMPLE = re.compile(r"^(R\[\d\]|\w+) = (?!=)(.+)$")
_ATOM = re.compile(r"^(?:R\[\d\]|\w+|0x[0-9a-fA-F]+)$")
_NAMES = re.compile(r"R\[\d\]|(?<![\w.])[A-Za-z_]\w*")


def _tok(name: str) -> re.Pattern:
    return re.compile(rf"(?<![\w.]){name}(?!\w)")


def _dead_after(name: str, later: list[str]) -> bool:
    """Whether temporary ``name`` is assigned before anything reads it in ``later`` (the rest
    of the block; the next block starts with fresh temporaries)."""
    tok = _tok(name)
    for body in later:
        for line in body.split("\n"):
            if tok.search(line) is None:
                continue
            m = _SIMPLE.match(line)
            return m is not None and m.group(1) == name and tok.search(m.group(2)) is None
    return True


def _impure(expr: str) -> bool:
    return any(c not in _PURE for c in _calls(expr))


def _statement(line: str):
    """(target, expression) of a plain assignment, (None, call) of a call statement, else
    None."""
    m = _SIMPLE.match(line)
    if m is not None:
        return m.group(1), m.group(2)
    if re.match(r"^\w+\(.*\)$", line):
        return None, line
    return None


def _drop_dead_temps(lines: list[str], later: list[str]) -> str:
    """A body with statements of other kinds: its top-level assignments to temporaries that
    nothing reads (later in it or in the block) and whose value calls nothing left out (the
    overflow bit of an IMUL whose flags are dead)."""
    keep = []
    for k, ln in enumerate(lines):
        st = _statement(ln) if not ln.startswith((" ", "\t")) else None
        if st and st[0] in _TEMPS and not _impure(st[1]) and \
                not any(_tok(st[0]).search(x) for x in lines[k + 1:]) and \
                _dead_after(st[0], later):
            continue
        keep.append(ln)
    return "\n".join(keep) if keep else "pass"


def propagate_copies(bodies: list[str], keep: set[int]) -> list[str]:
    """Each instruction's temporaries (``_TEMPS``: ``a``, ``b``, ``r``, ``ea``, IMUL's ``o``
    and ``p``) substituted into the
    statement that uses them, where that is exact: the body is plain assignments and calls, the
    temporary is used once (or is a copy of a name or a number), nothing between changes what
    its value reads, and nothing later in the block reads it (a specialised branch's ``r``, a
    forwarded carry's tuple).  ``keep``: instructions whose temporaries the lazy flags left in
    locals describe.  ``a = r0; b = r3; r = (a + b) & M; r0 = r`` becomes
    ``r0 = (r0 + r3) & M``."""
    out = list(bodies)
    for i, body in enumerate(out):
        if i in keep:
            continue
        lines = [ln for ln in body.split("\n") if ln.strip()]
        st = [_statement(ln) for ln in lines]
        if not st or not all(st):
            out[i] = _drop_dead_temps(lines, out[i + 1:])
            continue
        changed = True
        while changed:
            changed = False
            for k, (name, expr) in enumerate(st):
                if name not in _TEMPS or not _dead_after(name, out[i + 1:]):
                    continue
                tok = _tok(name)
                if tok.search(expr) or any(t == name for t, _ in st[k + 1:]):
                    continue
                uses = [j for j in range(k + 1, len(st)) if tok.search(st[j][1])]
                if len(uses) > 1 and not _ATOM.match(expr) or not uses and _impure(expr):
                    continue
                reads = set(_NAMES.findall(expr))
                end = uses[-1] if uses else k
                if any(st[j][0] in reads for j in range(k + 1, end)):
                    continue
                # a helper called before the use might change what it reads (cpu.R, the CPU)
                if ("R[" in expr or "cpu" in expr) and any(
                        c not in _PURE and c not in _ACCESSES
                        for j in range(k + 1, end + 1) for c in _calls(st[j][1])):
                    continue
                # a call that reads memory or may fault stays in order with every other such
                # call and with every store to something that is not a temporary
                if _impure(expr) and uses and (
                        _impure(st[end][1]) or any(st[j][0] not in _TEMPS or _impure(st[j][1])
                                                   for j in range(k + 1, end))):
                    continue
                sub = expr if _ATOM.match(expr) else f"({expr})"
                st = st[:k] + [(t, tok.sub(lambda _: sub, e) if j in uses else e)
                               for j, (t, e) in enumerate(st[k + 1:], k + 1)]
                changed = True
                break
        out[i] = "\n".join(e if t is None else f"{t} = {e}" for t, e in st) if st else "pass"
    return out


def _calls_only_memory(body: str) -> bool:
    """Whether the only calls out are memory accesses (their slow paths can say they ran)."""
    return all(c in _PURE or c in _ACCESSES for c in _calls(body))


def _before_slow(lazy: str | None, eip) -> str | None:
    """What a slow memory path does before it calls out: puts the lazy flags left in locals
    (``lazy``) and the block's EIP (unless ``eip`` is False) where the interpreter has them."""
    if eip is False:
        return lazy and f"_setlf(cpu, {lazy})"
    return f"_seteip(cpu, {eip:#x}, {lazy})" if lazy else f"_seteip(cpu, {eip:#x})"


def hook_prefix(ins, at, literal) -> str:
    """The exec points (``aero.cpu.hookpoints``) that fire before ``ins``, as the interpreter's
    ``hooked`` closure runs them: EIP set to the instruction, each point's ``fire`` called.  The
    call makes the instruction opaque (registers written back before it, read again after it),
    keeps the flags stored before it live and its branch unspecialised, so a callback sees and
    may change the state exactly as in the interpreter; a stop (``BlockExit``) or a guest
    breakpoint (``CPUFault``) is attributed to the instruction as any fault is."""
    if not at:
        return ""
    pts, lin, phys = at
    return f"cpu.eip = {ins.eip:#x}\n" + "".join(
        f"{literal(p.fire)}(cpu, {lin:#x}, {phys:#x})\n" for p in pts)


_FIRE = re.compile(r"^(K(\d+))\(cpu, (0x[0-9a-f]+), (0x[0-9a-f]+)\)$", re.M)


def inline_hooks(body: str, consts: list, literal, counters: dict) -> str:
    """The calls of exec points' ``fire`` in ``body`` (``hook_prefix``), for points that are
    user hooks (``aero.hooks.InlineHook``), compiled in: the test ``fire`` would make, the
    count (``counters``: its cell's name -> the hook, read by ``Hook.hits``), the callback
    called directly and its result tested.  While hooks are muted ``fire`` itself runs; a run
    that skips host hooks never enters a translation (``Unit.execute``).  The whole is still
    one opaque call site for every other rule."""
    def one(m):
        ih = getattr(consts[int(m.group(2))], "inline", None)
        if ih is None:
            return m.group(0)
        name = f"_n{m.group(2)}"
        counters[name] = ih
        hook = ih.hook
        return (f"if {literal(hook.hooks)}.muted:\n"
                f"    {m.group(0)}\n"
                "else:\n"
                f"    {name} += 1\n"
                "    try:\n"
                f"        _hr = {literal(hook.fn)}({literal(hook.hooks.machine)}, "
                f"{m.group(4) if ih.physical else m.group(3)})\n"
                "    except Exception as _he:\n"
                f"        {literal(ih.failed)}(cpu, _he)\n"
                "    if _hr:\n"
                f"        {literal(ih.stop)}(cpu, _hr)")
    return _FIRE.sub(one, body)


def translate(blocks, code32: bool, entry_eip: int) -> Translation:
    """The factory source for ``blocks`` (the first is the entry)."""
    t = Translation()
    consts: list = []
    const_ids: dict[int, str] = {}

    def literal(value) -> str:
        if type(value) is int:
            return str(value) if 0 <= value < 10 else hex(value)
        if id(value) not in const_ids:
            const_ids[id(value)] = f"K{len(consts)}"
            consts.append(value)
        return const_ids[id(value)]

    # expand every instruction first: which registers, which hoisted accessors
    expanded = []
    regs: set[int] = set()
    hoist: set[str] = set()
    for blk in blocks:
        out = []
        points = blk.hooked or {}
        for k, ins in enumerate(blk.insns):
            at = points.get(k)
            sel = codegen.select(ins)
            if sel[0] == "fault":
                out.append((ins, f"fault {sel[1]}", hook_prefix(ins, at, literal) +
                            f"raise CPUFault({sel[1]})"))
                continue
            _, name, src, _ = sel
            body, params, _ = codegen.expand(ins, code32, src)
            body = fold_count(_PARAM.sub(lambda m: literal(params[int(m.group(1))]), body))
            body = body.replace("cf_source(cpu)", _CF_SOURCE)
            body = hook_prefix(ins, at, literal) + body
            regs.update(int(r) for r in _REG.findall(body))
            hoist.update(h for h in _HOIST if h + "(" in body)
            out.append((ins, name, body))
        expanded.append(out)
    # many exec points (a callback on every instruction): the registers stay in cpu.R, as in the
    # interpreter, rather than go back and forth around every call
    hooked = sum(len(b.hooked) for b in blocks if b.hooked)
    direct = hooked * 4 > sum(b.count for b in blocks)
    if direct:
        regs = set()
    elif any(opaque(b) for out in expanded for _, _, b in out):
        regs = set(range(8))
    elif any(stacky(b) for out in expanded for _, _, b in out):
        regs.add(4)
    regs = tuple(sorted(regs))
    t.regs = regs
    load = "; ".join(f"r{r} = R[{r}]" for r in regs)
    store = "; ".join(f"R[{r}] = r{r}" for r in regs)

    body_lines: list[str] = []
    budgets: set[int] = set()                   # the block sizes the budget is checked for
    temps = [0]
    uses_segments = False
    segs = SegmentLocals()                      # read at the start and after opaque instructions

    def emit(text: str, indent: str = IND) -> None:
        body_lines.append(indent + text)

    for bi, (blk, out) in enumerate(zip(blocks, expanded)):
        n = len(out)
        out = [(ins, name, body) for (ins, name, _), body in
               zip(out, forward_cf([body for _, _, body in out], temps))]
        dead = dead_flag_stores([body for _, _, body in out])
        dropped, pending = deferred_flag_stores([body for _, _, body in out], dead)
        dead |= dropped
        bodies = []
        for i, (ins, name, body) in enumerate(out):
            if i and name in ("JCC", "JCC.4", "JCC.5"):
                body = specialise_branch(out[i - 1][2], body)
            if i in dead:
                body = _drop_flag_store(body)
            bodies.append(body)
        bodies = propagate_copies(bodies, dropped)
        jumps = isinstance(blk, JumpBlock)      # its last instruction sets EIP itself
        emit(f"{'if' if bi == 0 else 'elif'} pc == {blk.eips[0]:#x}:", " " * 12)
        emit(f"if done > _l{n}:")               # done + n > limit, the sum made once
        emit("    break")
        budgets.add(n)
        # as in the interpreter, EIP is the block's start while it runs (helpers may read it):
        # stored when the block starts, or, when only memory accesses may call out, by their
        # slow paths before they do
        slow_eip = False
        if bodies[0].startswith(f"cpu.eip = {blk.eips[0]:#x}\n"):
            pass                                 # the first instruction's exec points store it
        elif any(may_exit(b) and not _calls_only_memory(b) for b in bodies):
            emit(f"cpu.eip = {blk.eips[0]:#x}")
        elif any(may_exit(b) for b in bodies):
            slow_eip = True
        for i, ((ins, name, _), body) in enumerate(zip(out, bodies)):
            last = i == n - 1
            t.lines.append(len(body_lines))
            t.where.append((bi, i))
            lazy = pending.get(i)
            t.lazy.append(lazy)
            emit(f"# {bi}.{i} {ins.eip:#x} {name}")
            op = opaque(body)
            st = not op and stacky(body)
            pc_set = False                       # the body sets pc itself
            if direct:
                t.flushed.append(())             # no register in a local: cpu.R is current
                st = False
                pre = _PREFIX.match(body)
                hooks, core = pre.groups() if pre else ("", body)
                if last and jumps and not opaque(core):
                    core = _SET_EIP.sub(r"\1pc = \2", core)
                    body = hooks + core
                    pc_set = True
                if not opaque(core) and stacky(core) and (inl := inline_stack(
                        _REG.sub(r"r\1", core), temps, segs, live=True)) is not None:
                    # the stack helpers inline here too, on ESP in cpu.R, after the hooks
                    body = hooks + _LOCAL_REG.sub(r"R[\1]", inl)
                    uses_segments = True
            elif op:
                t.flushed.append(regs)
                if store:
                    emit(store)
            elif st and (inl := inline_stack(_REG.sub(r"r\1", body), temps, segs)) is not None:
                # the stack helpers inline, on ESP in r4 (aero.jit.memory)
                t.flushed.append(())
                body = inl
                st = False
                uses_segments = True
            elif st:
                # ESP goes through cpu.R around the helper; the body reads it from there too
                t.flushed.append((4,))
                emit("R[4] = r4")
                body = _REG.sub(lambda m: m.group(0) if m.group(1) == "4" else f"r{m.group(1)}",
                                body)
            else:
                t.flushed.append(())
                body = _REG.sub(r"r\1", body)
            if last and jumps and not op:
                body = _SET_EIP.sub(r"\1pc = \2", body)
            if not op and "cpu.limit[1]" in body:
                body = body.replace("cpu.limit[1]", segs.limit(1))      # CS: far transfers are opaque
            # only its memory accesses may ask to stop: their slow paths say when they ran
            marked = not op and not st and all(c in _PURE or c in _ACCESSES
                                               for c in _calls(body))
            body, inlined = inline_accesses(body, temps, segs, live=op,
                                            before_slow=_before_slow(
                                                lazy, slow_eip and blk.eips[0]),
                                            mark=marked)
            uses_segments |= inlined
            if blk.hooked:
                body = inline_hooks(body, consts, literal, t.counters)
            for ln in body.splitlines():
                emit(ln)
            if op:
                emit(f"{load}; {_SEGLOAD}" if load else _SEGLOAD)
            elif st:
                emit("r4 = R[4]")
            if last and jumps and op and not pc_set:
                emit("pc = cpu.eip")                 # a helper transferred control
            if not last and may_exit(body):
                leave = (f"done += {i + 1}; pc = {blk.eips[i + 1]:#x}; " +
                         (f"cpu.lf = {lazy}; " if lazy else "") + "break")
                if marked and inlined:
                    emit(f"if {SLOW_MARK}:")
                    emit(f"    {SLOW_MARK} = 0")
                    emit("    if cpu.exit_req:")
                    emit("        " + leave)
                else:
                    emit("if cpu.exit_req:")
                    emit("    " + leave)
        emit(f"done += {n}")
        if not jumps:
            emit(f"pc = {blk.end_eip:#x}")
        if blk.check:
            emit("break")                        # the run loop looks at the world after it
    emit("else:", " " * 12)
    emit("break")
    body_lines.append(" " * 12 + "if cpu.exit_req:")
    body_lines.append(" " * 16 + "break")

    head = [f"def make(cpu, R{''.join(f', K{k}' for k in range(len(consts)))}):"]
    for h in sorted(hoist):
        head.append(f"    {h} = cpu.{h}")
    seg_load = segs.load()
    if uses_segments or seg_load:
        head.append("    " + RAM_BINDINGS)
    if t.counters:
        head.append("    " + " = ".join(t.counters) + " = 0")
    head.append("    def run(limit):")
    if t.counters:
        head.append("        nonlocal " + ", ".join(t.counters))
    if seg_load:
        head.append("        " + seg_load)
    if load:
        head.append("        " + load)
    head.append("        " + "; ".join(f"_l{k} = limit - {k}" for k in sorted(budgets)))
    head.append(f"        pc = {entry_eip:#x}")
    head.append(f"        done = {SLOW_MARK} = 0")
    head.append("        while True:")
    first = len(head) + 1
    t.lines = [first + j for j in t.lines]
    tail = []
    if store:
        tail.append("        " + store)
    tail += ["        cpu.eip = pc", "        return done", "    return run", ""]
    body = "\n".join(body_lines)
    body = body.replace(_SEGLOAD, seg_load) if seg_load else \
        body.replace(f"; {_SEGLOAD}", "").replace(_SEGLOAD, "pass")
    t.source = "\n".join(head + [body] + tail)
    t.consts = consts
    return t
