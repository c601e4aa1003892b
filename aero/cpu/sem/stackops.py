"""Multi-register stack instructions (PUSHA POPA ENTER LEAVE, PUSH Sreg, POP r/m), loops (LOOP
LOOPE LOOPNE JCXZ/JECXZ) and small misc instructions (BOUND XLAT UD2).

Stack width: the SS descriptor's B bit chooses SP (wrapping at 64 KiB) or ESP; the operand size
chooses the width of each pushed or popped item.  Every multi-part instruction reads and probes
everything before it writes anything, so a fault leaves no partial state.
"""

from ...faults import CPUFault
from ..segmentation import A_DB

TEMPLATES = {}

# ---- loops (SDM Vol. 2, LOOP/LOOPcc, Jcc: JCXZ/JECXZ) ------------------------------------------
# The counter is CX or ECX by ADDRESS size; the target is masked by operand size ($TARGET) and
# must lie within the CS limit (#GP(0) otherwise, nothing changed).
_LOOP_TAKEN = """
    t = $TARGET
    if t > cpu.limit[1]:
        raise CPUFault(13, 0)
    cpu.eip = t
else:
    cpu.eip = $NEXT
R[1] = (R[1] & ~$AMASK) | c
"""

_ZF = "lf = cpu.lf\nz = (lf[3] == 0) if lf is not None else (cpu.flags & 0x40)\n"

TEMPLATES["LOOP.2"] = "c = (R[1] - 1) & $AMASK\nif c:" + _LOOP_TAKEN              # LOOP
TEMPLATES["LOOP.1"] = _ZF + "c = (R[1] - 1) & $AMASK\nif c and z:" + _LOOP_TAKEN    # LOOPE
TEMPLATES["LOOP.0"] = _ZF + "c = (R[1] - 1) & $AMASK\nif c and not z:" + _LOOP_TAKEN  # LOOPNE

TEMPLATES["JCXZ"] = """
if R[1] & $AMASK:
    cpu.eip = $NEXT
else:
    t = $TARGET
    if t > cpu.limit[1]:
        raise CPUFault(13, 0)
    cpu.eip = t
"""

# ---- stack ------------------------------------------------------------------------------------
TEMPLATES["PUSHA"] = """
stkop_pusha(cpu, $OSZ)
"""

TEMPLATES["POPA"] = """
stkop_popa(cpu, $OSZ)
"""

# ENTER with nesting level 0 (the common case) inline; nested frames in stkop_enter.
TEMPLATES["ENTER"] = """
if $IMMB & 31:
    stkop_enter(cpu, $OSZ, $IMM, $IMMB)
else:
    smask = 0xFFFFFFFF if cpu.attr[2] & 0x4000 else 0xFFFF
    esp = R[4]
    frame = (esp - $OSB) & smask
    new_sp = (frame - $IMM) & smask
    cpu.check_write(2, new_sp, $OSB)
    wr$OSZ(2, frame, R[5] & ((1 << $OSZ) - 1))
    R[5] = (R[5] & ~((1 << $OSZ) - 1)) | (((esp & ~smask) | frame) & ((1 << $OSZ) - 1))
    R[4] = (esp & ~smask) | new_sp
"""

# LEAVE: [E]SP <- [E]BP (stack size), then pop [E]BP (operand size); the read comes first.
TEMPLATES["LEAVE"] = """
if cpu.attr[2] & 0x4000:
    sp = R[5]
    v = rd$OSZ(2, sp)
    R[4] = (sp + $OSB) & 0xFFFFFFFF
else:
    sp = R[5] & 0xFFFF
    v = rd$OSZ(2, sp)
    R[4] = (R[4] & 0xFFFF0000) | ((sp + $OSB) & 0xFFFF)
R[5] = (R[5] & ~$MASK) | v
"""

# PUSH ES/CS/SS/DS/FS/GS.  With a 32-bit operand size ESP moves by 4; the SDM allows either a
# zero-extended 32-bit write or a 16-bit write leaving the upper half alone (recent Intel cores).
# Aero writes the zero-extended dword, as unicorn/QEMU do (the differential oracle).
TEMPLATES["PUSH_SEG"] = """
cpu.push$OSZ(cpu.sel[$ARG])
"""

# POP r/m (8F /0).  Register form: as POP r.  Memory form: an ESP base is used AFTER the pop
# increments it, and ESP stays unchanged if the write faults (SDM Vol. 2, POP).
TEMPLATES["POP_RM@r"] = """
v = cpu.pop$OSZ()
$A = v
"""

TEMPLATES["POP_RM@m"] = """
stkop_pop_rm(cpu, $INS)
"""

# ---- misc -------------------------------------------------------------------------------------
# BOUND r, m16&16 / m32&32: signed bounds; #BR (vector 5, a fault) when out of range.
TEMPLATES["BOUND"] = """
s = $SIGN
i = ($A ^ s) - s
lo = (rd$BITS($SEG, $EA) ^ s) - s
hi = (rd$BITS($SEG, ($EA + $BYTES) & $AMASK) ^ s) - s
if i < lo or i > hi:
    raise CPUFault(5)
"""

# XLAT: AL <- [seg:[E]BX + AL], DS or the override, [E]BX by address size.
TEMPLATES["XLAT"] = """
R[0] = (R[0] & 0xFFFFFF00) | rd8($SSEG, (R[3] + (R[0] & 0xFF)) & $AMASK)
"""

TEMPLATES["UD2"] = """
raise CPUFault(6)
"""


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _stkop_smask(cpu):
    return 0xFFFFFFFF if cpu.attr[2] & A_DB else 0xFFFF


def stkop_pusha(cpu, osz):
    """PUSHA/PUSHAD: push AX CX DX BX (original) SP BP SI DI."""
    R = cpu.R
    size = osz >> 3
    vmask = 0xFFFFFFFF if osz == 32 else 0xFFFF
    smask = _stkop_smask(cpu)
    sp = R[4] & smask
    vals = [R[i] & vmask for i in range(8)]
    offs = [(sp - size * (i + 1)) & smask for i in range(8)]
    check = cpu.check_write
    if offs[7] < offs[0]:                         # contiguous: one probe covers all
        check(2, offs[7], 8 * size)
    else:
        for o in offs:
            check(2, o, size)
    wr = cpu.wr32 if size == 4 else cpu.wr16
    for o, v in zip(offs, vals):
        wr(2, o, v)
    R[4] = (R[4] & ~smask) | offs[7]


def stkop_popa(cpu, osz):
    """POPA/POPAD: pop DI SI BP (skip SP) BX DX CX AX; all reads before any register write."""
    R = cpu.R
    size = osz >> 3
    read = cpu.stack_read
    vals = [read(size * i, osz) for i in range(8)]
    if osz == 32:
        for i in (0, 1, 2, 4, 5, 6, 7):
            R[7 - i] = vals[i]
    else:
        for i in (0, 1, 2, 4, 5, 6, 7):
            r = 7 - i
            R[r] = (R[r] & 0xFFFF0000) | vals[i]
    cpu.stack_add(8 * size)


def stkop_enter(cpu, osz, alloc, level):
    """ENTER imm16, imm8 (SDM Vol. 2, ENTER): the nested-frame algorithm.

    Pushes [E]BP, copies level-1 frame pointers from the enclosing frame ([E]BP - i*size),
    pushes the new frame pointer FrameTemp (the [E]SP value after the first push), sets [E]BP
    to it and subtracts the allocation from [E]SP.  Items have the operand size; stack
    addresses and [E]SP wrap by the stack size.  [E]BP is written at the OPERAND size
    ("EBP <- FrameTemp" / "BP <- FrameTemp", as the SDM and Bochs do; QEMU/unicorn write it at
    the stack size, which differs only when the two sizes differ).  The final stack top is
    probed for a write (as Bochs does; the SDM lists #SS for a new [E]SP outside the limit).
    Everything is read and probed before anything is written; the reads see the earlier writes
    of the same ENTER (byte overlay)."""
    R = cpu.R
    level &= 31
    size = osz >> 3
    smask = _stkop_smask(cpu)
    vmask = 0xFFFFFFFF if osz == 32 else 0xFFFF
    esp, ebp = R[4], R[5]
    frame = (esp - size) & smask                  # where [E]BP goes
    frame_temp = (esp & ~smask) | frame           # ESP after pushing [E]BP
    writes = [(frame, ebp & vmask)]
    if level:
        rd = cpu.rd32 if size == 4 else cpu.rd16
        overlay = {}

        def record(off, v):
            for k in range(size):
                overlay[(off + k) & smask] = (v >> (8 * k)) & 0xFF
        record(frame, ebp & vmask)
        for i in range(1, level):
            src = (ebp - size * i) & smask
            v = rd(2, src)
            if overlay:
                for k in range(size):
                    b = overlay.get((src + k) & smask)
                    if b is not None:
                        v = (v & ~(0xFF << (8 * k))) | (b << (8 * k))
            dst = (frame - size * i) & smask
            writes.append((dst, v))
            record(dst, v)
        writes.append(((frame - size * level) & smask, frame_temp & vmask))
    new_sp = (frame - size * level - alloc) & smask
    for off, _ in writes:
        cpu.check_write(2, off, size)
    cpu.check_write(2, new_sp, size)
    wr = cpu.wr32 if size == 4 else cpu.wr16
    for off, v in writes:
        wr(2, off, v)
    R[5] = (ebp & ~vmask) | (frame_temp & vmask)
    R[4] = (esp & ~smask) | new_sp


def stkop_pop_rm(cpu, ins):
    """POP m16/m32 (8F /0): the address is computed with ESP already incremented."""
    R = cpu.R
    osz = ins.opsize
    size = osz >> 3
    v = cpu.stack_read(0, osz)
    if cpu.attr[2] & A_DB:
        new_esp = (R[4] + size) & 0xFFFFFFFF
    else:
        new_esp = (R[4] & 0xFFFF0000) | ((R[4] + size) & 0xFFFF)
    ea = ins.disp
    base = ins.base
    if base >= 0:
        ea += new_esp if base == 4 else R[base]
    if ins.index >= 0:
        ea += R[ins.index] << ins.scale
    ea &= 0xFFFFFFFF if ins.adsize == 32 else 0xFFFF
    if size == 4:
        cpu.wr32(ins.mem_seg, ea, v)
    else:
        cpu.wr16(ins.mem_seg, ea, v)
    R[4] = new_esp
