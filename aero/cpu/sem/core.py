"""Data movement, the basic ALU, and near control flow: the instructions every program runs.

Templates only; see the package docstring for the conventions.
"""

from ...faults import CPUFault
from .. import flags as _F

TEMPLATES = {}

_ALU2 = {
    "ADD": ("(a + b) & $MASK", "%ADD", True),
    "SUB": ("(a - b) & $MASK", "%SUB", True),
    "CMP": ("(a - b) & $MASK", "%SUB", False),
    "AND": ("a & b", "%LOGIC", True),
    "OR": ("a | b", "%LOGIC", True),
    "XOR": ("a ^ b", "%LOGIC", True),
    "TEST": ("a & b", "%LOGIC", False),
}
for _name, (_expr, _kind, _write) in _ALU2.items():
    TEMPLATES[_name] = (
        "a = $A\n"
        "b = $B\n"
        f"r = {_expr}\n"
        + ("$A = r\n" if _write else "")
        + f"cpu.lf = ({_kind}, a, b, r)\n")

# XOR r, r / SUB r, r (zeroing idioms) need no special case: the generic form is already exact.

TEMPLATES["INC"] = """
a = $A
r = (a + 1) & $MASK
$A = r
cpu.lf = (%INC, a, cf_source(cpu), r)
"""

TEMPLATES["DEC"] = """
a = $A
r = (a - 1) & $MASK
$A = r
cpu.lf = (%DEC, a, cf_source(cpu), r)
"""

TEMPLATES["MOV"] = """
$A = $B
"""

TEMPLATES["MOVZX"] = """
$A = $B
"""

TEMPLATES["MOVSX"] = """
v = $B
$A = sext_to(v, sign_of($INS), $MASK)
"""

TEMPLATES["LEA"] = """
$A = $EA & $MASK
"""

TEMPLATES["NOP"] = """
pass
"""

TEMPLATES["XCHG"] = """
a = $A
b = $B
$A = b
$B = a
"""

# ---- near control flow --------------------------------------------------------------------
TEMPLATES["JMP"] = """
cpu.eip = $TARGET
"""

TEMPLATES["JCC"] = """
cpu.eip = $TARGET if cond(cpu, $CC) else $NEXT
"""

TEMPLATES["JCC.4"] = """
lf = cpu.lf
cpu.eip = $TARGET if ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)) else $NEXT
"""

TEMPLATES["JCC.5"] = """
lf = cpu.lf
cpu.eip = $NEXT if ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)) else $TARGET
"""

TEMPLATES["CALL"] = """
cpu.push$OSZ($NEXT)
cpu.eip = $TARGET
"""

TEMPLATES["CALL_RM"] = """
t = $A
cpu.push$OSZ($NEXT)
cpu.eip = t
"""

TEMPLATES["JMP_RM"] = """
cpu.eip = $A
"""

TEMPLATES["RETN"] = """
t = cpu.stack_read(0, $OSZ)
if t > cpu.limit[1]:
    raise CPUFault(13, 0)
cpu.stack_add($OSB)
cpu.eip = t
"""

TEMPLATES["RETN_IMM"] = """
t = cpu.stack_read(0, $OSZ)
if t > cpu.limit[1]:
    raise CPUFault(13, 0)
cpu.stack_add($OSB + $IMM)
cpu.eip = t
"""

# ---- stack ------------------------------------------------------------------------------------
TEMPLATES["PUSH"] = """
cpu.push$OSZ($A)
"""

TEMPLATES["POP"] = """
v = cpu.pop$OSZ()
$A = v
"""

# ---- flag instructions -----------------------------------------------------------------------
TEMPLATES["CLC"] = "cpu.set_arith(0, CF)\n"
TEMPLATES["STC"] = "cpu.set_arith(CF, CF)\n"
TEMPLATES["CMC"] = "cpu.set_arith(cpu.get_flags() ^ CF, CF)\n"
TEMPLATES["CLD"] = "cpu.flags &= ~DF\n"
TEMPLATES["STD"] = "cpu.flags |= DF\n"


def sign_of(ins):
    """Sign bit of the source of MOVSX (byte or word form)."""
    return 0x80 if ins.opcode == 0xBE else 0x8000


def sext_to(v, sign, mask):
    return (v - (sign << 1)) & mask if v & sign else v

TEMPLATES["HLT"] = """
if cpu.cpl:
    raise CPUFault(13, 0)
cpu.halted = True
"""
