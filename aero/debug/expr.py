"""Debugger expressions: `eax+4`, `[esp+8]`, `byte [ds:si]`, `ds:si`, `main+0x10`, `cs:eip`,
`eax == 5 and [ebp-4] > 3`.

Grammar (lowest precedence first; Python's keyword operators work too)::

    expr     := or
    or       := and { ("||" | "or") and }
    and      := not { ("&&" | "and") not }
    not      := ("!" | "not") not | compare
    compare  := bitor [ ("==" | "!=" | "<" | "<=" | ">" | ">=") bitor ]
    bitor    := bitxor { "|" bitxor }     bitxor := bitand { "^" bitand }
    bitand   := shift { "&" shift }       shift  := sum { ("<<" | ">>") sum }
    sum      := term { ("+" | "-") term }
    term     := unary { ("*" | "/" | "%") unary }
    unary    := ("-" | "~") unary | segoff
    segoff   := primary [ ":" primary ]          seg:off, a linear address
    primary  := number | register | symbol | "(" expr ")"
              | [ "byte" | "word" | "dword" | "qword" ] "[" expr "]"     memory (default dword)
              | "phys" "[" expr "]"                                       physical memory, dword

Numbers: ``0x7c00``, ``7c00h``, ``0b101``, ``0o17``, ``123``; in ``seg:off`` written with two
bare hex numbers (``0000:7c00``, ``f000:fff0``) both parts are hex, as everyone writes them.  Registers: ``eax``..``edi``,
``ax``..``di``, ``al``..``bh``, ``eip``/``ip``/``pc``, ``eflags``/``flags``, ``es``..``gs``,
``cr0``-``cr4``, ``dr0``-``dr7``, ``efer``, ``cpl``; a leading ``$`` is allowed (gdb's ``$pc``).
Anything else that looks like a name is a symbol (NASM local labels ``parent.local`` included).
``seg:off`` is the linear address of the offset in that segment: a segment register uses its
cached base (right in every mode); a number is a real-mode segment (times 16) in real and V86
mode and a selector (looked up in the GDT/LDT) in protected mode.  Memory is read at linear
addresses without side effects; an unreadable address is an error.

``evaluate(text, env)`` parses and evaluates; ``compile_expr(text)`` parses once for conditions
evaluated many times.  ``env`` supplies registers, memory, segments and symbols (``Env``).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|[0-9][0-9a-fA-F]*[hH](?![\w.])|[0-9]+)
    | (?P<name>\$?[A-Za-z_.@][A-Za-z0-9_.@$]*)
    | (?P<op>\|\||&&|==|!=|<=|>=|<<|>>|[-+*/%&|^~!<>()\[\]:])
    )""", re.X)

SIZES = {"byte": 1, "word": 2, "dword": 4, "qword": 8}
_KEYWORD_OPS = {"or": "||", "and": "&&", "not": "!"}


class ExprError(ValueError):
    """A malformed expression or one that cannot be evaluated (one line)."""


# seg:off written the conventional way, both parts bare hex: 0000:7c00, f000:fff0
_BARE_SEGOFF = re.compile(r"(?<![\w.$])([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8})(?![\w.])")


def tokenize(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = _BARE_SEGOFF.sub(lambda m: f"0x{m.group(1)}:0x{m.group(2)}", text.rstrip())
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"unexpected {text[pos:].strip()[:10]!r} in {text!r}")
        pos = m.end()
        if m.group("num"):
            out.append(("num", m.group("num")))
        elif m.group("name"):
            name = m.group("name")
            low = name.lower()
            if low in _KEYWORD_OPS:
                out.append(("op", _KEYWORD_OPS[low]))
            else:
                out.append(("name", name))
        else:
            out.append(("op", m.group("op")))
    return out


def parse_number(s: str) -> int:
    low = s.lower()
    if low.startswith(("0x", "0b", "0o")):
        return int(low, 0)
    if low.endswith("h"):
        return int(low[:-1], 16)
    return int(low, 10)


# -- the tree: tuples ("num", v) ("reg", name) ("sym", name) ("mem", size, phys, e)
#    ("segoff", a, b) ("un", op, e) ("bin", op, a, b)

class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, op=None):
        t = self.peek()
        if op is not None and t != ("op", op):
            found = t[1] if t[1] is not None else "the end"
            raise ExprError(f"expected {op!r}, found {found!r} in {self.text!r}")
        self.i += 1
        return t

    def parse(self):
        if not self.toks:
            raise ExprError("empty expression")
        e = self.binary(0)
        if self.i != len(self.toks):
            raise ExprError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return e

    LEVELS = (("||",), ("&&",), None, ("==", "!=", "<", "<=", ">", ">="), ("|",), ("^",),
              ("&",), ("<<", ">>"), ("+", "-"), ("*", "/", "%"))

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        if self.LEVELS[level] is None:                  # the "not" level
            if self.peek() == ("op", "!"):
                self.take()
                return ("un", "!", self.binary(level))
            return self.binary(level + 1)
        left = self.binary(level + 1)
        ops = self.LEVELS[level]
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            op = self.take()[1]
            left = ("bin", op, left, self.binary(level + 1))
            if level == 3:                              # comparisons do not chain
                break
        return left

    def unary(self):
        t = self.peek()
        if t in (("op", "-"), ("op", "~")):
            self.take()
            return ("un", t[1], self.unary())
        if t == ("op", "+"):
            self.take()
            return self.unary()
        return self.segoff()

    def segoff(self):
        a = self.primary()
        if self.peek() == ("op", ":"):
            self.take()
            return ("segoff", a, self.primary())
        return a

    def primary(self):
        kind, v = self.peek()
        if kind == "num":
            self.take()
            return ("num", parse_number(v))
        if kind == "name":
            low = v.lower()
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else (None, None)
            if low in SIZES and nxt == ("op", "["):
                self.take()
                return self.memory(SIZES[low], False)
            if low == "phys" and nxt == ("op", "["):
                self.take()
                return self.memory(4, True)
            self.take()
            name = v[1:] if v.startswith("$") else v
            if name.lower() in REGISTERS:
                return ("reg", name.lower())
            return ("sym", name)
        if (kind, v) == ("op", "("):
            self.take()
            e = self.binary(0)
            self.take(")")
            return e
        if (kind, v) == ("op", "["):
            return self.memory(4, False)
        if kind is None:
            raise ExprError(f"incomplete expression {self.text!r}")
        raise ExprError(f"unexpected {v!r} in {self.text!r}")

    def memory(self, size, phys):
        self.take("[")
        e = self.binary(0)
        self.take("]")
        return ("mem", size, phys, e)


REGISTERS = frozenset((
    "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
    "ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
    "al", "cl", "dl", "bl", "ah", "ch", "dh", "bh",
    "eip", "ip", "pc", "eflags", "flags", "es", "cs", "ss", "ds", "fs", "gs",
    "cr0", "cr2", "cr3", "cr4", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7", "efer", "cpl",
    # the x87 (80-bit images of ST(i); gdb's names for its words and pointers)
    "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7", "fctrl", "fstat", "ftag", "fiseg",
    "fioff", "foseg", "fooff", "fop"))
SEGMENT_REGISTERS = ("es", "cs", "ss", "ds", "fs", "gs")


class Env:
    """What expressions are evaluated against (the debugger supplies one per machine)."""

    def reg(self, name: str) -> int:                         # pragma: no cover - interface
        raise NotImplementedError

    def read(self, addr: int, size: int, physical: bool) -> int:   # pragma: no cover
        raise NotImplementedError

    def seg_base(self, seg) -> int:      # seg: a segment register name or a selector value
        raise NotImplementedError        # pragma: no cover

    def symbol(self, name: str) -> int:                      # pragma: no cover
        raise NotImplementedError


def compile_expr(text: str):
    """Parse ``text`` once; returns the tree (evaluate it with ``run``)."""
    return _Parser(text).parse()


def run(tree, env: Env) -> int:
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "reg":
        return env.reg(tree[1])
    if kind == "sym":
        return env.symbol(tree[1])
    if kind == "mem":
        _, size, phys, e = tree
        return env.read(run(e, env) & 0xFFFFFFFF, size, phys)
    if kind == "segoff":
        a, b = tree[1], tree[2]
        seg = a[1] if a[0] == "reg" and a[1] in SEGMENT_REGISTERS else run(a, env) & 0xFFFF
        return (env.seg_base(seg) + run(b, env)) & 0xFFFFFFFF
    if kind == "un":
        v = run(tree[2], env)
        op = tree[1]
        return -v if op == "-" else ~v if op == "~" else int(not v)
    _, op, a, b = tree
    if op == "||":
        return int(bool(run(a, env)) or bool(run(b, env)))
    if op == "&&":
        return int(bool(run(a, env)) and bool(run(b, env)))
    x, y = run(a, env), run(b, env)
    if op in ("/", "%") and y == 0:
        raise ExprError("division by zero")
    return _BIN[op](x, y)


_BIN = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x // y, "%": lambda x, y: x % y, "&": lambda x, y: x & y,
    "|": lambda x, y: x | y, "^": lambda x, y: x ^ y, "<<": lambda x, y: x << (y & 63),
    ">>": lambda x, y: x >> (y & 63), "==": lambda x, y: int(x == y),
    "!=": lambda x, y: int(x != y), "<": lambda x, y: int(x < y),
    "<=": lambda x, y: int(x <= y), ">": lambda x, y: int(x > y),
    ">=": lambda x, y: int(x >= y),
}


def evaluate(text: str, env: Env) -> int:
    return run(compile_expr(text), env)


def is_segoff(tree) -> bool:
    """Whether an address expression was written as seg:off (a real-mode style address)."""
    return tree[0] == "segoff"
