"""Compiling decoded instructions into Python closures from their semantic templates.

Each table entry names a template (``aero.cpu.sem``): Python statements with placeholders.  For one
decoded instruction the placeholders are expanded into source text whose *shape* depends only on
the instruction's structure (operand kinds and sizes, addressing form), while the concrete values
(register numbers, displacement, immediates, EIPs) are parameters ``P0, P1, ...``.  The source is
compiled once per shape into a factory, and the factory is called with the values to make the
closure the interpreter runs.  The JIT tier expands the same templates with the values inlined.

Placeholders (see ``aero/cpu/sem/__init__.py`` for the template-writing guide):

    $A $B $C        read operand 1, 2, 3 (an expression)
    $A = expr       write operand 1 (a whole line)
    $MASK $BITS $SIGN $SI $BYTES     operation size: mask, bits, sign bit, size index, bytes
    $OSZ $ASZ $AMASK                 operand size, address size, address mask
    $NEXT $EIP $TARGET               next EIP, this EIP, relative branch target
    $SEG $EA                         segment number and offset of the memory operand
    $SSEG                            segment of a string source (override or DS)
    $CC $ARG $REP $REG $MOD $RM      table constants, prefix, ModR/M fields
    $MODRM                           the ModR/M byte
    $INS                             the Insn object (for helper functions)
    %ADD %SUB %LOGIC %INC %DEC       lazy-flag kinds at the operation size
"""

from __future__ import annotations

import re

from . import flags as F
from . import sem
from ..faults import CPUFault, EmulatorError
from ..fpu import insns as x87_insns

_SIZES = {"b": 8, "w": 16, "d": 32, "q": 64}
_FIXED_REGS = {"AL": (0, 8), "CL": (1, 8), "DX": (2, 16), "AX": (0, 16)}
_SEGS = {"ES": 0, "CS": 1, "SS": 2, "DS": 3, "FS": 4, "GS": 5}

_factories: dict[str, object] = {}
_templates: dict[str, str] | None = None
_namespace: dict | None = None


def templates() -> dict[str, str]:
    global _templates, _namespace
    if _templates is None:
        _templates, _namespace = sem.load()
    return _templates


def namespace() -> dict:
    templates()
    return _namespace


class Gen:
    """Source builder for one instruction."""

    def __init__(self, ins, code32):
        self.ins = ins
        self.code32 = code32
        self.params: list = []
        self.prologue: list[str] = []
        self.has_ea = False

    def param(self, value) -> str:
        self.params.append(value)
        return f"P{len(self.params) - 1}"

    # -- operands ------------------------------------------------------------------------------
    def operand(self, spec: str):
        """(read expression, write function, size in bits) for an operand spec."""
        ins = self.ins
        osz = ins.opsize
        if spec in _FIXED_REGS:
            r, size = _FIXED_REGS[spec]
            return self.reg(r, size)
        if spec == "eAX":
            return self.reg(0, osz)
        if spec in _SEGS:
            s = _SEGS[spec]
            return f"cpu.sel[{s}]", None, 16
        if spec == "1":
            return "1", None, 8
        if spec == "Ex":                        # x87: the templates use $SEG/$EA or $RM
            return None, None, 0
        kind, sz = spec[0], spec[1:]
        if spec == "sIb":
            v = ins.imm & ((1 << osz) - 1)
            return self.param(v), None, osz
        if kind == "I":
            size = osz if sz in ("z", "v") else _SIZES[sz]
            return self.param(ins.imm & ((1 << size) - 1)), None, size
        size = osz if sz in ("v", "z") else _SIZES.get(sz, osz)
        if kind == "G":
            return self.reg(ins.reg, size)
        if kind == "Z":
            return self.reg(ins.opcode & 7, size)
        if kind == "E":
            if ins.mod == 3:
                return self.reg(ins.rm, size)
            return self.mem(size)
        if kind == "R":
            return self.reg(ins.rm, 32)
        if kind == "O":
            return self.mem(size)
        if kind == "M":
            return self.mem(size if sz in _SIZES else osz)
        if kind == "S":
            return f"cpu.sel[{self.param(ins.reg)}]", None, 16
        if kind in ("C", "D", "J", "A", "X", "Y"):
            return None, None, osz
        raise EmulatorError(f"codegen: unknown operand spec {spec}")

    def reg(self, r: int, size: int):
        if size == 32:
            p = self.param(r)
            return f"R[{p}]", (lambda v: [f"R[{p}] = {v}"]), 32
        if size == 16:
            p = self.param(r)
            return (f"(R[{p}] & 0xFFFF)",
                    (lambda v: [f"R[{p}] = (R[{p}] & 0xFFFF0000) | ({v})"]), 16)
        if r < 4:
            p = self.param(r)
            return (f"(R[{p}] & 0xFF)",
                    (lambda v: [f"R[{p}] = (R[{p}] & 0xFFFFFF00) | ({v})"]), 8)
        p = self.param(r - 4)
        return (f"((R[{p}] >> 8) & 0xFF)",
                (lambda v: [f"R[{p}] = (R[{p}] & 0xFFFF00FF) | (({v}) << 8)"]), 8)

    def ea(self) -> str:
        """Emit the effective-address computation once; return the name holding it."""
        if not self.has_ea:
            ins = self.ins
            terms = []
            if ins.base >= 0:
                terms.append(f"R[{self.param(ins.base)}]")
            if ins.index >= 0:
                t = f"R[{self.param(ins.index)}]"
                terms.append(f"({t} << {ins.scale})" if ins.scale else t)
            if ins.disp or not terms:
                terms.append(self.param(ins.disp))
            amask = "0xFFFFFFFF" if ins.adsize == 32 else "0xFFFF"
            expr = " + ".join(terms)
            if len(terms) > 1 or ins.adsize == 16 and ins.base >= 0:
                expr = f"({expr}) & {amask}"
            self.prologue.append(f"ea = {expr}")
            self.seg = self.param(ins.mem_seg)
            self.has_ea = True
        return "ea"

    def mem(self, size: int):
        ea = self.ea()
        s = self.seg
        if size not in (8, 16, 32):
            return None, None, size
        return (f"rd{size}({s}, {ea})", (lambda v: [f"wr{size}({s}, {ea}, {v})"]), size)


_TOKEN = re.compile(r"\$([A-Z]+)|%([A-Z]+)")
_WRITE = re.compile(r"^(\s*)\$([ABC])\s*=(?!=)\s*(.*)$")


def expand(ins, code32: bool, src: str) -> tuple[str, list]:
    """Expand a template for one instruction: (function body source, parameter values)."""
    g = Gen(ins, code32)
    entry = ins.entry
    ops = [g.operand(spec) for spec in entry.ops]
    # A memory operand the template also writes is read with write intent (rmw*): the segment
    # must be writable and a page fault reports W=1, as a read-modify-write does on hardware.
    for i, letter in enumerate("AB"):
        if i < len(ops) and ops[i][0] and ops[i][0].startswith("rd") and \
                re.search(rf"^\s*\${letter}\s*=(?!=)", src, re.M):
            ops[i] = ("rmw" + ops[i][0][2:],) + tuple(ops[i][1:])
    size = next((o[2] for o in ops if o[0] is not None), ins.opsize)
    if entry.ops and entry.ops[0] in ("Eb", "Gb", "AL", "Zb", "Ob", "Xb", "Yb"):
        size = 8
    si = {8: 0, 16: 1, 32: 2}.get(size, 2)
    emask = 0xFFFFFFFF if code32 else 0xFFFF
    nxt = (ins.eip + ins.length) & emask
    values = {}

    def value(name):
        if name in values:
            return values[name]
        if name == "MASK":
            v = hex((1 << size) - 1)
        elif name == "BITS":
            v = str(size)
        elif name == "SIGN":
            v = hex(1 << (size - 1))
        elif name == "SI":
            v = str(si)
        elif name == "BYTES":
            v = str(size // 8)
        elif name == "OSZ":
            v = str(ins.opsize)
        elif name == "OSB":
            v = str(ins.opsize // 8)
        elif name == "ASZ":
            v = str(ins.adsize)
        elif name == "AMASK":
            v = "0xFFFFFFFF" if ins.adsize == 32 else "0xFFFF"
        elif name == "NEXT":
            v = g.param(nxt)
        elif name == "EIP":
            v = g.param(ins.eip)
        elif name == "TARGET":
            tmask = 0xFFFFFFFF if ins.opsize == 32 else 0xFFFF
            v = g.param((nxt + ins.imm) & tmask)
        elif name == "SEG":
            g.ea()
            v = g.seg
        elif name == "EA":
            v = g.ea()
        elif name == "SSEG":
            v = g.param(ins.seg if ins.seg >= 0 else 3)
        elif name == "CC":
            v = str(entry.cc)
        elif name == "ARG":
            v = str(entry.arg)
        elif name == "REP":
            v = hex(ins.rep)
        elif name == "REG":
            v = g.param(ins.reg)
        elif name == "MOD":
            v = str(ins.mod)
        elif name == "RM":
            v = g.param(ins.rm)
        elif name == "MODRM":
            v = g.param(ins.mod << 6 | ins.reg << 3 | ins.rm)
        elif name == "INS":
            v = g.param(ins)
        elif name == "IMM":
            v = g.param(ins.imm)
        elif name == "IMMB":
            v = g.param(ins.imm2)
        elif name in ("A", "B", "C"):
            idx = "ABC".index(name)
            if idx >= len(ops) or ops[idx][0] is None:
                raise EmulatorError(f"codegen: {entry.name} has no readable operand {name}")
            v = ops[idx][0]
        else:
            raise EmulatorError(f"codegen: unknown placeholder ${name} in {entry.name}")
        values[name] = v
        return v

    def sub(m):
        if m.group(1):
            return value(m.group(1))
        return str(F.KIND[m.group(2)] + si)

    body = []
    for line in src.splitlines():
        if not line.strip():
            continue
        m = _WRITE.match(line)
        if m:
            indent, which, expr = m.groups()
            idx = "ABC".index(which)
            writer = ops[idx][1] if idx < len(ops) else None
            if writer is None:
                raise EmulatorError(f"codegen: {entry.name} cannot write operand {which}")
            for stmt in writer(_TOKEN.sub(sub, expr)):
                body.append(indent + stmt)
        else:
            body.append(_TOKEN.sub(sub, line))
    return "\n".join(g.prologue + body) if g.prologue else "\n".join(body), g.params, g.prologue


_HOIST = ("rd8", "rd16", "rd32", "wr8", "wr16", "wr32", "rmw8", "rmw16", "rmw32")


def factory_source(body: str, prologue, nparams: int) -> str:
    params = "".join(f", P{i}" for i in range(nparams))
    lines = [f"def make(cpu, R{params}):"]
    for h in _HOIST:
        if h + "(" in body:
            lines.append(f"    {h} = cpu.{h}")
    lines.append("    def op():")
    for ln in body.splitlines():
        lines.append("        " + ln)
    lines.append("    return op")
    return "\n".join(lines) + "\n"


def _ud_op():
    raise CPUFault(6)


def select(ins):
    """The semantics of a decoded instruction: ("fault", vector, ends) for an instruction that
    faults before doing anything (#UD), else ("template", name, source, ends)."""
    entry = ins.entry
    if entry.ud:
        return ("fault", 6, "jump")
    if ins.lock and not (entry.lock and ins.mod != 3 and ins.mod != -1):
        return ("fault", 6, "jump")                # LOCK is checked before anything else
    if entry.x87 and not (x87_insns.valid_reg(entry.arg >> 3, ins.reg, ins.rm) if ins.mod == 3
                          else x87_insns.valid_mem(entry.arg >> 3, ins.reg)):
        return ("fault", 6, "jump")                # an x87 encoding no P6 executes
    if ins.mod == 3 and any(s[0] == "M" for s in entry.ops):
        return ("fault", 6, "jump")                # memory-only operand given a register
    tpl = templates()
    name = entry.name
    ends = entry.ends
    if entry.rep and ins.rep:
        name = name + "_REP" if name + "_REP" in tpl else name
        ends = "rep"
    # variants: NAME.cc for one condition code, NAME@m / NAME@r for memory / register forms
    if entry.cc is not None and f"{name}.{entry.cc}" in tpl:
        name = f"{name}.{entry.cc}"
    form = "@m" if 0 <= ins.mod < 3 else "@r"
    if name + form in tpl:
        name += form
    src = tpl.get(name)
    if src is None:
        raise EmulatorError(f"no semantics for {entry.mnemonic(ins.opsize)} "
                            f"(template {name}) at {ins.eip:#x}: {ins.raw.hex()}")
    return ("template", name, src, ends)


def compile_insn(cpu, ins, code32: bool):
    """Return (closure, block-ending kind) for a decoded instruction."""
    sel = select(ins)
    if sel[0] == "fault":
        return _ud_op, sel[2]
    _, name, src, ends = sel
    body, params, prologue = expand(ins, code32, src)
    key = f"{len(params)}\n{body}"
    fac = _factories.get(key)
    if fac is None:
        source = factory_source(body, prologue, len(params))
        ns = namespace()
        code = compile(source, f"<aero:{name}>", "exec")
        local = {}
        exec(code, ns, local)
        fac = _factories[key] = local["make"]
    return fac(cpu, cpu.R, *params), ends
