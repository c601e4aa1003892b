"""The debugger's expression language (aero/debug/expr.py)."""

import pytest

from aero.debug import expr as E


class Env(E.Env):
    def __init__(self):
        self.regs = {"eax": 5, "ebx": 0x100, "esp": 0x7000, "esi": 0x10, "si": 0x10,
                     "ds": 0x1000,
                     "cs": 0xF000, "eip": 0xFFF0, "al": 5}
        self.mem = {0x7008: 0x11223344, 0x10010: 0xAB, 0x100: 7}
        self.bases = {"ds": 0x10000, "cs": 0xF0000}

    def reg(self, name):
        return self.regs[name]

    def read(self, addr, size, physical):
        if addr not in self.mem:
            raise E.ExprError(f"cannot read {addr:#x}")
        v = self.mem[addr] & ((1 << (8 * size)) - 1)
        return v + (0x1000000 if physical else 0)

    def seg_base(self, seg):
        return self.bases[seg] if isinstance(seg, str) else seg << 4

    def symbol(self, name):
        if name == "main":
            return 0x7C00
        if name == "main.loop":
            return 0x7C10
        raise E.ExprError(f"no symbol {name!r}")


@pytest.mark.parametrize("text,value", [
    ("eax+4", 9), ("0x10", 16), ("7c00h", 0x7C00), ("0b101", 5), ("0o17", 15), ("123", 123),
    ("[esp+8]", 0x11223344), ("byte [esp+8]", 0x44), ("word [esp+8]", 0x3344),
    ("ds:si", 0x10010), ("byte [ds:si]", 0xAB), ("cs:eip", 0xFFFF0), ("0x1000:0x10", 0x10010),
    ("main+3", 0x7C03), ("main.loop", 0x7C10), ("$eax", 5), ("-1", -1), ("~0 & 0xff", 0xFF),
    ("1 << 4 | 1", 17), ("(eax + 1) * 2", 12), ("eax == 5", 1), ("eax != 5", 0),
    ("eax == 5 and [esp+8] > 3", 1), ("eax < 3 || ebx >= 0x100", 1), ("!eax", 0),
    ("not (eax == 4)", 1), ("10 / 3", 3), ("10 % 3", 1), ("phys[0x100]", 0x1000007),
    ("al", 5), ("ebx - ebx", 0), ("0000:7c00", 0x7C00), ("f000:fff0", 0xFFFF0),
    ("1000:10+1", 0x10011),
])
def test_values(text, value):
    assert E.evaluate(text, Env()) == value


@pytest.mark.parametrize("text,message", [
    ("", "empty"), ("eax +", "incomplete"), ("[eax", "expected ']'"), ("eax )", "unexpected"),
    ("nosuch + 1", "no symbol"), ("1 / 0", "division by zero"), ("eax $", "unexpected"),
    ("[0x9999]", "cannot read"),
])
def test_errors(text, message):
    with pytest.raises(E.ExprError, match=message):
        E.evaluate(text, Env())


def test_compiled_once_evaluated_many_times():
    env = Env()
    tree = E.compile_expr("eax == 6")
    assert E.run(tree, env) == 0
    env.regs["eax"] = 6
    assert E.run(tree, env) == 1
    assert E.is_segoff(E.compile_expr("0:7c00")) and not E.is_segoff(E.compile_expr("7c00h"))
