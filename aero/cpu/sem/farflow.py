"""Far control flow and segment-register loads: CALLF, JMPF (direct and through memory), RETF,
LDS/LES/LSS/LFS/LGS, MOV to/from segment registers, POP into a segment register.

In real and virtual-8086 mode a segment load is base = selector << 4; in protected mode it goes
through ``aero.cpu.segmentation`` (descriptor checks, call gates, task switches).  Every template
reads and checks everything before it changes anything.
"""

from __future__ import annotations

from ..transfers import far_call, far_jump, far_ret  # noqa: F401 (called by templates)

TEMPLATES = {}

TEMPLATES["CALLF"] = "far_call(cpu, $IMMB, $IMM, $OSZ, $NEXT)\n"
TEMPLATES["JMPF"] = "far_jump(cpu, $IMMB, $IMM, $OSZ, $NEXT)\n"

# FF /3, FF /5: the far pointer at $SEG:$EA is offset (16/32 bits by operand size), selector.
TEMPLATES["CALLF_M"] = """
off = rd$OSZ($SEG, $EA)
sel = rd16($SEG, ($EA + $OSB) & $AMASK)
far_call(cpu, sel, off, $OSZ, $NEXT)
"""
TEMPLATES["JMPF_M"] = """
off = rd$OSZ($SEG, $EA)
sel = rd16($SEG, ($EA + $OSB) & $AMASK)
far_jump(cpu, sel, off, $OSZ, $NEXT)
"""

TEMPLATES["RETF"] = "far_ret(cpu, $OSZ, $IMM)\n"

# LDS/LES/LSS/LFS/LGS: load the segment register first (it may fault), then the register.
TEMPLATES["LFP"] = """
off = rd$OSZ($SEG, $EA)
sel = rd16($SEG, ($EA + $OSB) & $AMASK)
cpu.load_seg($ARG, sel)
$A = off
"""

# 8E: MOV Sreg, r/m16.  CS and the encodings 6, 7 are #UD.  MOV SS blocks interrupts (and
# single-step traps) until the next instruction has executed.
TEMPLATES["MOV_TO_SEG"] = """
r = $REG
if r == 1 or r > 5:
    raise CPUFault(6)
v = $B
cpu.load_seg(r, v)
if r == 2:
    cpu.shadow = True
"""

# 8C: MOV r/m16, Sreg.  A register destination with a 32-bit operand size gets the selector
# zero-extended; a memory destination is always written as 16 bits.
TEMPLATES["MOV_FROM_SEG@r"] = """
r = $REG
if r > 5:
    raise CPUFault(6)
$A = cpu.sel[r]
"""
TEMPLATES["MOV_FROM_SEG@m"] = """
r = $REG
if r > 5:
    raise CPUFault(6)
wr16($SEG, $EA, cpu.sel[r])
"""

# POP ES/SS/DS/FS/GS: the stack pointer moves by the operand size with the *old* stack's
# address size (relevant for POP SS).  POP SS blocks interrupts for one instruction.
TEMPLATES["POP_SEG"] = """
sp = R[4]
big = cpu.attr[2] & 0x4000
v = cpu.stack_read(0, $OSZ) & 0xFFFF
cpu.load_seg($ARG, v)
R[4] = ((sp + $OSB) & 0xFFFFFFFF) if big else ((sp & 0xFFFF0000) | ((sp + $OSB) & 0xFFFF))
if $ARG == 2:
    cpu.shadow = True
"""
