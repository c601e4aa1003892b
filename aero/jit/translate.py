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
* the block's last instruction sets a local ``pc`` instead of ``cpu.eip``; a loop dispatches on it
  to the next block of the region, and returns when it leaves the region;
* before a block, the budget: if its instructions would go past ``limit``, the function returns
  there (the run loop finishes the count with the interpreter), so instruction counts, device
  events and interrupts land on the same boundaries as in the interpreter;
* after an instruction that may have asked the running code to stop (``cpu.exit_req``: it called
  into the slow memory path, a device, a helper), and after every block, the request is checked
  and the function returns at that boundary.

A fault propagates with its traceback: the line it came from says which instruction of which
block faulted, and the frame's locals give the registers and the count done so far
(``Unit``); nothing is tracked while running.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..cpu import codegen
from ..cpu.blocks import JumpBlock

_PARAM = re.compile(r"\bP(\d+)\b")
_REG = re.compile(r"\bR\[(\d)\]")
_SET_EIP = re.compile(r"^(\s*)cpu\.eip\s*=(?!=)\s*(.*)$", re.M)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\(")
_HOIST = codegen._HOIST
_MEM = frozenset(_HOIST)
# calls on values only: no device, no code cache, no hook, no register list
_PURE = frozenset(("cond", "carry", "arith", "sext_to", "sign_of", "cf_source", "alu_szp",
                   "alu_cf", "alu_put", "alu_adc_flags", "int", "len", "min", "max", "abs",
                   "bool", "CPUFault", "hex", "divmod", "cpu.get_flags", "cpu.set_arith",
                   "cpu.write_flags", "cpu.seg_fault"))
IND = " " * 16                          # the indentation of a block's code in run()


@dataclass
class Translation:
    source: str = ""
    consts: list = field(default_factory=list)   # values bound by name (K0, K1, ...)
    lines: list = field(default_factory=list)    # first source line of each instruction
    where: list = field(default_factory=list)    # (block index, instruction index) per entry
    regs: tuple = ()                             # the registers kept in locals

    def locate(self, line: int) -> tuple[int, int]:
        """(block index, instruction index) of the instruction holding source ``line``."""
        return self.where[max(0, bisect.bisect_right(self.lines, line) - 1)]


def _calls(body: str):
    return [m.group(1) for m in _CALL.finditer(body)]


def may_exit(body: str) -> bool:
    """Whether an instruction's code calls something that may ask the running code to stop: a
    memory access (its slow path reaches devices, watches and the code cache), a helper."""
    return any(c not in _PURE for c in _calls(body))


def opaque(body: str) -> bool:
    """Whether an instruction's code calls something that reads or writes ``cpu.R`` itself."""
    return any(c not in _PURE and c not in _MEM for c in _calls(body))


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
        for ins in blk.insns:
            sel = codegen.select(ins)
            if sel[0] == "fault":
                out.append((ins, f"fault {sel[1]}", f"raise CPUFault({sel[1]})"))
                continue
            _, name, src, _ = sel
            body, params, _ = codegen.expand(ins, code32, src)
            body = _PARAM.sub(lambda m: literal(params[int(m.group(1))]), body)
            regs.update(int(r) for r in _REG.findall(body))
            hoist.update(h for h in _HOIST if h + "(" in body)
            out.append((ins, name, body))
        expanded.append(out)
    if any(opaque(b) for out in expanded for _, _, b in out):
        regs = set(range(8))
    regs = tuple(sorted(regs))
    t.regs = regs
    load = "; ".join(f"r{r} = R[{r}]" for r in regs)
    store = "; ".join(f"R[{r}] = r{r}" for r in regs)

    body_lines: list[str] = []

    def emit(text: str, indent: str = IND) -> None:
        body_lines.append(indent + text)

    for bi, (blk, out) in enumerate(zip(blocks, expanded)):
        n = len(out)
        jumps = isinstance(blk, JumpBlock)      # its last instruction sets EIP itself
        emit(f"{'if' if bi == 0 else 'elif'} pc == {blk.eips[0]:#x}:", " " * 12)
        emit(f"if done + {n} > limit:")
        emit("    break")
        if any(may_exit(body) for _, _, body in out):
            # as in the interpreter, EIP is the block's start while it runs (helpers may read it)
            emit(f"cpu.eip = {blk.eips[0]:#x}")
        for i, (ins, name, body) in enumerate(out):
            last = i == n - 1
            t.lines.append(len(body_lines))
            t.where.append((bi, i))
            emit(f"# {bi}.{i} {ins.eip:#x} {name}")
            op = opaque(body)
            if op and store:
                emit(store)
            else:
                body = _REG.sub(r"r\1", body)
            if last and jumps and not op:
                body = _SET_EIP.sub(r"\1pc = \2", body)
            for ln in body.splitlines():
                emit(ln)
            if op and load:
                emit(load)
            if last and jumps and op:
                emit("pc = cpu.eip")                 # a helper transferred control
            if not last and may_exit(body):
                emit("if cpu.exit_req:")
                emit(f"    done += {i + 1}; pc = {blk.eips[i + 1]:#x}; break")
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
    head.append("    def run(limit):")
    if load:
        head.append("        " + load)
    head.append(f"        pc = {entry_eip:#x}")
    head.append("        done = 0")
    head.append("        while True:")
    first = len(head) + 1
    t.lines = [first + j for j in t.lines]
    tail = []
    if store:
        tail.append("        " + store)
    tail += ["        cpu.eip = pc", "        return done", "    return run", ""]
    t.source = "\n".join(head + body_lines + tail)
    t.consts = consts
    return t
