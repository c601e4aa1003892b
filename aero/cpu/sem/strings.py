"""String instructions (MOVS CMPS SCAS LODS STOS INS OUTS, with and without REP) and port I/O
(IN, OUT).

Addressing (SDM Vol. 1, 7.3.9; Vol. 2, MOVS/CMPS/...): the source is [E]SI in DS or the segment
override (``$SSEG``), the destination is [E]DI in ES, never overridden.  The address size chooses
SI/DI/CX (wrapping at 64 KiB) or ESI/EDI/ECX.  EFLAGS.DF chooses the direction.

REP contract with the run loop (``CPU.run``): a ``NAME_REP`` template executes at most
``cpu.rep_budget`` (>= 1) iterations, sets ``cpu.rep_done`` to the number it executed (1 when the
count was already 0: the instruction then retires as one), and sets ``cpu.eip`` itself: to the
next instruction when the count reached 0 or the REPE/REPNE condition ended the loop, otherwise
back to the instruction, which resumes later (interruptible, restartable mid-string).  A fault in
iteration k leaves the registers and flags as iteration k-1 left them (the run loop points EIP
back at the instruction).

F3 is REP / REPE and F2 is REPNE for CMPS and SCAS; for the others both mean REP.

REP MOVS/STOS move runs of elements in bulk through the bus when a run lies in plain RAM, no
segment check can fail and no watch covers it (with paging on, a run stays within one page and
is translated exactly as its first element's own access would be); the result is exactly what
the element-by-element loop produces (including overlapping MOVS, e.g. the memset-by-overlap
idiom), and the writes still reach the self-modifying-code detector.  REPE CMPS and REP(N)E
SCASB search such runs in bulk the same way (memcmp / strlen / memchr idioms).  Elements in a
watched page go one by one through the accessors, which report them to the watches.

I/O: in protected mode (including V86) ``io_check(cpu, port, size)`` (``aero.cpu.sem.system``)
applies the IOPL / TSS I/O-bitmap rules and raises #GP(0); real mode has no I/O protection.
"""

from ...faults import CPUFault
from .system import io_check
from ..flags import DF, IF, SUB_K

TEMPLATES = {}

# ---- without REP: lean inline forms ----------------------------------------------------------
TEMPLATES["MOVS"] = """
si = R[6] & $AMASK
di = R[7] & $AMASK
wr$BITS(0, di, rd$BITS($SSEG, si))
d = -$BYTES if cpu.flags & 0x400 else $BYTES
R[6] = (R[6] & ~$AMASK) | ((si + d) & $AMASK)
R[7] = (R[7] & ~$AMASK) | ((di + d) & $AMASK)
"""

TEMPLATES["CMPS"] = """
si = R[6] & $AMASK
di = R[7] & $AMASK
a = rd$BITS($SSEG, si)
b = rd$BITS(0, di)
d = -$BYTES if cpu.flags & 0x400 else $BYTES
R[6] = (R[6] & ~$AMASK) | ((si + d) & $AMASK)
R[7] = (R[7] & ~$AMASK) | ((di + d) & $AMASK)
cpu.lf = (%SUB, a, b, (a - b) & $MASK)
"""

TEMPLATES["SCAS"] = """
di = R[7] & $AMASK
a = $A
b = rd$BITS(0, di)
d = -$BYTES if cpu.flags & 0x400 else $BYTES
R[7] = (R[7] & ~$AMASK) | ((di + d) & $AMASK)
cpu.lf = (%SUB, a, b, (a - b) & $MASK)
"""

TEMPLATES["LODS"] = """
si = R[6] & $AMASK
v = rd$BITS($SSEG, si)
$A = v
d = -$BYTES if cpu.flags & 0x400 else $BYTES
R[6] = (R[6] & ~$AMASK) | ((si + d) & $AMASK)
"""

TEMPLATES["STOS"] = """
di = R[7] & $AMASK
wr$BITS(0, di, $B)
d = -$BYTES if cpu.flags & 0x400 else $BYTES
R[7] = (R[7] & ~$AMASK) | ((di + d) & $AMASK)
"""

# INS/OUTS: the codegen infers the operation size from the DX operand, so the size comes from
# the opcode (even = byte) and the operand size, through the Insn.
TEMPLATES["INS"] = """
strop_ins(cpu, $INS, $AMASK, $EIP, $NEXT, False)
"""

TEMPLATES["OUTS"] = """
strop_outs(cpu, $INS, $AMASK, $SSEG, $EIP, $NEXT, False)
"""

# ---- with REP -----------------------------------------------------------------------------------
TEMPLATES["MOVS_REP"] = """
strop_rep_movs(cpu, $BYTES, $AMASK, $SSEG, $EIP, $NEXT)
"""

TEMPLATES["STOS_REP"] = """
strop_rep_stos(cpu, $BYTES, $AMASK, $EIP, $NEXT)
"""

TEMPLATES["LODS_REP"] = """
strop_rep_lods(cpu, $BYTES, $AMASK, $SSEG, $EIP, $NEXT)
"""

TEMPLATES["CMPS_REP"] = """
strop_rep_cmps(cpu, $BYTES, $AMASK, $SSEG, $REP, $EIP, $NEXT)
"""

TEMPLATES["SCAS_REP"] = """
strop_rep_scas(cpu, $BYTES, $AMASK, $REP, $EIP, $NEXT)
"""

TEMPLATES["INS_REP"] = """
strop_ins(cpu, $INS, $AMASK, $EIP, $NEXT, True)
"""

TEMPLATES["OUTS_REP"] = """
strop_outs(cpu, $INS, $AMASK, $SSEG, $EIP, $NEXT, True)
"""

# ---- IN / OUT -------------------------------------------------------------------------------------
# IN AL/eAX, imm8|DX: the first operand gives the size.  OUT imm8|DX, AL/eAX: the codegen's size
# comes from the port operand, so the size is taken from the opcode (even = byte).
TEMPLATES["IN"] = """
port = $B
if cpu.cr0 & 1:
    io_check(cpu, port, $BYTES)
$A = cpu.port_in(port, $BYTES) & $MASK
"""

TEMPLATES["OUT"] = """
port = $A
v = $B
n = $OSB if $INS.opcode & 1 else 1
if cpu.cr0 & 1:
    io_check(cpu, port, n)
cpu.port_out(port, n, v)
"""


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _rw(cpu, size):
    if size == 1:
        return cpu.rd8, cpu.wr8
    if size == 2:
        return cpu.rd16, cpu.wr16
    return cpu.rd32, cpu.wr32


_SIZE_INDEX = {1: 0, 2: 1, 4: 2}


def _strop_span(cpu, s, off, n, size, down, amask, write):
    """How many of the next ``n`` elements of a string operand (the first at offset ``off`` of
    segment ``s``) can be moved in bulk, and the physical address of the first one.

    Returns (k, phys) with k >= 1 for a run that passes the segment checks as a whole, lies in
    one page when paging is on (translated now, exactly as the next element's own access would
    be: through the MMU's fast map, or else ``translate`` with the same #PF, A/D bits and TLB
    fill) and maps to plain RAM (ROM too for a read) with no watch on it;
    (0, 0) when the next element straddles a page, or lies in a linear page that a watch covers
    for this direction (move it alone, then try again); (-1, 0) when bulk moves are not
    possible for the rest of this instruction.

    Watches (``aero.mem.watch``) are seen where they mark pages: physical watches, and linear
    ones while paging is off, as SLOW_WATCH on the physical pages (``Bus.plain_ram`` refuses
    those); linear ones while paging is on only by keeping their pages out of the MMU's fast
    maps (``nofast_r`` / ``nofast_w``), so a page found in the fast map is unwatched and only a
    miss looks at those sets.  The element path then reports each access."""
    mmu = cpu.mmu
    if mmu.access_wrapper is not None:
        return -1, 0                               # a tracer sees every access: no bulk moves
    lin = (cpu.base[s] + off) & 0xFFFFFFFF
    paging = mmu.paging
    if paging:
        po = lin & 0xFFF
        if po + size > 0x1000:
            return 0, 0
        ppn = (mmu.wmap if write else mmu.rmap).get(lin >> 12)
        if ppn is None and lin >> 12 in (mmu.nofast_w if write else mmu.nofast_r):
            return 0, 0                            # a linear watch on the page: element by element
        k = po // size + 1 if down else (0x1000 - po) // size
        if k > n:
            k = n
    else:
        k = n
    total = k * size
    lo_off = off - (k - 1) * size if down else off
    if lo_off < 0 or lo_off + total - 1 > amask:
        return -1, 0                               # the offset wraps: element by element
    if write:
        if lo_off < cpu.wlo[s] or lo_off + total - 1 > cpu.whi[s]:
            return -1, 0
    elif lo_off < cpu.rlo[s] or lo_off + total - 1 > cpu.rhi[s]:
        return -1, 0
    bus = cpu.bus
    if paging:
        phys = ppn | po if ppn is not None else mmu.translate(lin, write, mmu.user, False)
        lo = phys - (k - 1) * size if down else phys
    else:
        lo = cpu.base[s] + lo_off
        if bus.a20_mask != 0xFFFFFFFF and lo + total > 0x100000:
            return -1, 0
        phys = lo + (k - 1) * size if down else lo
    if not bus.plain_ram(lo, lo + total, write):
        return -1, 0
    return k, phys


def _strop_bulk_movs(cpu, size, amask, sseg, si, di, n, down):
    """Move a run of the next n elements at once if that is exactly what the element loop
    would do.  Returns the number moved (>= 1), 0 (move one element alone, then retry) or -1
    (no bulk moves for the rest of this instruction)."""
    ks, src = _strop_span(cpu, sseg, si, n, size, down, amask, False)
    if ks <= 0:
        return ks
    kd, dst = _strop_span(cpu, 0, di, ks, size, down, amask, True)
    if kd <= 0:
        return kd
    k = kd
    total = k * size
    if down:
        src -= (k - 1) * size
        dst -= (k - 1) * size
    ram = cpu.bus.ram
    if dst == src:
        pass
    elif ((dst > src) if down else (dst < src)) or dst >= src + total or src >= dst + total:
        # forward with dst below src (or backward with dst above): element order reads every
        # source byte before it is overwritten, which is what memmove does
        ram[dst:dst + total] = ram[src:src + total]
    elif not down and (dst - src) % size == 0:
        # forward overlap with dst above src: the first (dst - src) bytes repeat (memset idiom)
        d = dst - src
        pat = bytes(ram[src:src + d])
        ram[dst:dst + total] = (pat * -(-total // d))[:total]
    else:
        return -1
    cpu.bus.note_ram_write(dst, total)
    return k


def _strop_rep_counts(cpu, amask, nxt):
    """The REP prologue: (count in [E]CX, iterations allowed now by cpu.rep_budget), or None
    when the count is 0 (the instruction completes at once and counts one)."""
    cnt = cpu.R[1] & amask
    if not cnt:
        cpu.rep_done = 1
        cpu.eip = nxt
        return None
    budget = cpu.rep_budget
    cpu.rep_done = 0
    return cnt, (cnt if cnt <= budget else budget)


def strop_rep_movs(cpu, size, amask, sseg, eip, nxt):
    R = cpu.R
    counts = _strop_rep_counts(cpu, amask, nxt)
    if counts is None:
        return
    cnt, n = counts
    si = R[6] & amask
    di = R[7] & amask
    down = cpu.flags & DF
    step = -size if down else size
    rd, wr = _rw(cpu, size)
    bulk = n > 1
    done = 0
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            if bulk and n - done > 1:
                k = _strop_bulk_movs(cpu, size, amask, sseg, si, di, n - done, down)
                if k > 0:
                    done += k
                    si = (si + step * k) & amask
                    di = (di + step * k) & amask
                    continue
                if k < 0:
                    bulk = False
            wr(0, di, rd(sseg, si))
            si = (si + step) & amask
            di = (di + step) & amask
            done += 1
            if cpu.rep_break:
                break
    finally:
        R[6] = (R[6] & ~amask) | si
        R[7] = (R[7] & ~amask) | di
        R[1] = (R[1] & ~amask) | (cnt - done)
        cpu.rep_done = done             # (after a fault: the iterations completed)
    cpu.eip = nxt if done == cnt else eip


def strop_rep_stos(cpu, size, amask, eip, nxt):
    R = cpu.R
    counts = _strop_rep_counts(cpu, amask, nxt)
    if counts is None:
        return
    cnt, n = counts
    di = R[7] & amask
    value = R[0] & ((1 << (8 * size)) - 1)
    down = cpu.flags & DF
    step = -size if down else size
    wr = _rw(cpu, size)[1]
    bulk = n > 1
    done = 0
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            if bulk and n - done > 1:
                k, dst = _strop_span(cpu, 0, di, n - done, size, down, amask, True)
                if k > 0:
                    if down:
                        dst -= (k - 1) * size
                    cpu.bus.ram[dst:dst + k * size] = value.to_bytes(size, "little") * k
                    cpu.bus.note_ram_write(dst, k * size)
                    done += k
                    di = (di + step * k) & amask
                    continue
                if k < 0:
                    bulk = False
            wr(0, di, value)
            di = (di + step) & amask
            done += 1
            if cpu.rep_break:
                break
    finally:
        R[7] = (R[7] & ~amask) | di
        R[1] = (R[1] & ~amask) | (cnt - done)
        cpu.rep_done = done
    cpu.eip = nxt if done == cnt else eip


def strop_rep_lods(cpu, size, amask, sseg, eip, nxt):
    R = cpu.R
    counts = _strop_rep_counts(cpu, amask, nxt)
    if counts is None:
        return
    cnt, n = counts
    si = R[6] & amask
    step = -size if cpu.flags & DF else size
    rd = _rw(cpu, size)[0]
    done = 0
    v = None
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            v = rd(sseg, si)
            si = (si + step) & amask
            done += 1
            if cpu.rep_break:
                break
    finally:
        if done:
            R[0] = (R[0] & ~((1 << (8 * size)) - 1)) | v
        R[6] = (R[6] & ~amask) | si
        R[1] = (R[1] & ~amask) | (cnt - done)
        cpu.rep_done = done
    cpu.eip = nxt if done == cnt else eip


def _strop_bulk_cmps(cpu, size, amask, sseg, si, di, n, down):
    """REPE CMPS over runs of plain RAM: (elements compared, last a, last b) with the scan
    ending at the first unequal element, or None when the run cannot be taken in bulk (the
    caller then compares element by element; a straddling element also lands there)."""
    ks, src = _strop_span(cpu, sseg, si, n, size, down, amask, False)
    if ks <= 0:
        return None
    k, dst = _strop_span(cpu, 0, di, ks, size, down, amask, False)
    if k <= 0:
        return None
    total = k * size
    if down:
        src -= (k - 1) * size
        dst -= (k - 1) * size
    ram = cpu.bus.ram
    A = bytes(ram[src:src + total])
    B = bytes(ram[dst:dst + total])
    if A == B:
        e = 0 if down else total - size                 # the last element compared
        v = int.from_bytes(A[e:e + size], "little")
        return k, v, v
    if down:                                            # scanning from the top: last difference
        lo, hi = 0, total                               # invariant: A[hi:] == B[hi:]
        while hi - lo > 16:
            mid = (lo + hi) // 2
            if A[mid:hi] == B[mid:hi]:
                hi = mid
            else:
                lo = mid
        j = next(i for i in range(hi - 1, lo - 1, -1) if A[i] != B[i])
        e = j - j % size
        used = (total - e) // size
    else:
        lo, hi = 0, total                               # invariant: A[:lo] == B[:lo]
        while hi - lo > 16:
            mid = (lo + hi) // 2
            if A[lo:mid] == B[lo:mid]:
                lo = mid
            else:
                hi = mid
        j = next(i for i in range(lo, hi) if A[i] != B[i])
        e = j - j % size
        used = e // size + 1
    return used, int.from_bytes(A[e:e + size], "little"), int.from_bytes(B[e:e + size], "little")


def strop_rep_cmps(cpu, size, amask, sseg, rep, eip, nxt):
    R = cpu.R
    counts = _strop_rep_counts(cpu, amask, nxt)
    if counts is None:
        return
    cnt, n = counts
    si = R[6] & amask
    di = R[7] & amask
    step = -size if cpu.flags & DF else size
    rd = _rw(cpu, size)[0]
    want_eq = rep == 0xF3
    done = 0
    a = b = 0
    stopped = False
    down = cpu.flags & DF
    bulk = want_eq and n > 1
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            if bulk and n - done > 1:
                r = _strop_bulk_cmps(cpu, size, amask, sseg, si, di, n - done, down)
                if r is not None:
                    used, a, b = r
                    done += used
                    si = (si + step * used) & amask
                    di = (di + step * used) & amask
                    if a != b:
                        stopped = True
                        break
                    continue
                bulk = False
            a = rd(sseg, si)
            b = rd(0, di)
            si = (si + step) & amask
            di = (di + step) & amask
            done += 1
            if (a == b) != want_eq:
                stopped = True
                break
            if cpu.rep_break:
                break
    finally:
        R[6] = (R[6] & ~amask) | si
        R[7] = (R[7] & ~amask) | di
        R[1] = (R[1] & ~amask) | (cnt - done)
        if done:
            cpu.lf = (SUB_K + _SIZE_INDEX[size], a, b, (a - b) & ((1 << (8 * size)) - 1))
        cpu.rep_done = done
    cpu.eip = nxt if stopped or done == cnt else eip


def strop_rep_scas(cpu, size, amask, rep, eip, nxt):
    R = cpu.R
    counts = _strop_rep_counts(cpu, amask, nxt)
    if counts is None:
        return
    cnt, n = counts
    di = R[7] & amask
    step = -size if cpu.flags & DF else size
    rd = _rw(cpu, size)[0]
    mask = (1 << (8 * size)) - 1
    a = R[0] & mask
    want_eq = rep == 0xF3
    done = 0
    b = 0
    stopped = False
    bulk = size == 1 and n > 1
    down = cpu.flags & DF
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            if bulk and n - done > 1:
                # SCASB over a run of plain RAM: find the element that ends the scan
                k, phys = _strop_span(cpu, 0, di, n - done, 1, down, amask, False)
                if k > 0:
                    lo = phys - k + 1 if down else phys
                    run = bytes(cpu.bus.ram[lo:lo + k])
                    key = bytes((a,))
                    if want_eq:
                        rest = run.rstrip(key) if down else run.lstrip(key)
                        used = k - len(rest) + 1 if rest else k
                        b = (rest[-1] if down else rest[0]) if rest else a
                        stopped = bool(rest)
                    else:
                        idx = run.rfind(key) if down else run.find(key)
                        used = (k - idx if down else idx + 1) if idx >= 0 else k
                        b = a if idx >= 0 else (run[0] if down else run[-1])
                        stopped = idx >= 0
                    done += used
                    di = (di + step * used) & amask
                    if stopped:
                        break
                    continue
                if k < 0:
                    bulk = False
            b = rd(0, di)
            di = (di + step) & amask
            done += 1
            if (a == b) != want_eq:
                stopped = True
                break
            if cpu.rep_break:
                break
    finally:
        R[7] = (R[7] & ~amask) | di
        R[1] = (R[1] & ~amask) | (cnt - done)
        if done:
            cpu.lf = (SUB_K + _SIZE_INDEX[size], a, b, (a - b) & mask)
        cpu.rep_done = done
    cpu.eip = nxt if stopped or done == cnt else eip


def _strop_irq_pending(cpu):
    """Something wants the CPU between iterations of a REP INS/OUTS (an I/O write may have
    raised an interrupt line): stop early, the instruction resumes after it is served."""
    return (cpu.intr and cpu.flags & IF) or cpu.nmi_pending or cpu.stop_requested or \
        cpu.rep_break


def strop_ins(cpu, ins, amask, eip, nxt, rep):
    """INS (SDM Vol. 2, INS/INSB/INSW/INSD): port DX -> ES:[E]DI."""
    R = cpu.R
    size = ins.opsize >> 3 if ins.opcode & 1 else 1
    port = R[2] & 0xFFFF
    if rep:
        counts = _strop_rep_counts(cpu, amask, nxt)
        if counts is None:
            return
        cnt, n = counts
    else:
        cnt = n = 1
    if cpu.cr0 & 1:
        io_check(cpu, port, size)
    di = R[7] & amask
    step = -size if cpu.flags & DF else size
    wr = _rw(cpu, size)[1]
    port_in = cpu.port_in
    vmask = (1 << (8 * size)) - 1
    done = 0
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            cpu.check_write(0, di, size)   # fault before the port is read
            wr(0, di, port_in(port, size) & vmask)
            di = (di + step) & amask
            done += 1
            if rep and done < n and _strop_irq_pending(cpu):
                break
    finally:
        R[7] = (R[7] & ~amask) | di
        if rep:
            R[1] = (R[1] & ~amask) | (cnt - done)
            cpu.rep_done = done
    if rep:
        cpu.eip = nxt if done == cnt else eip


def strop_outs(cpu, ins, amask, sseg, eip, nxt, rep):
    """OUTS (SDM Vol. 2, OUTS/OUTSB/OUTSW/OUTSD): DS:[E]SI (or override) -> port DX."""
    R = cpu.R
    size = ins.opsize >> 3 if ins.opcode & 1 else 1
    port = R[2] & 0xFFFF
    if rep:
        counts = _strop_rep_counts(cpu, amask, nxt)
        if counts is None:
            return
        cnt, n = counts
    else:
        cnt = n = 1
    if cpu.cr0 & 1:
        io_check(cpu, port, size)
    si = R[6] & amask
    step = -size if cpu.flags & DF else size
    rd = _rw(cpu, size)[0]
    port_out = cpu.port_out
    done = 0
    try:
        while done < n:
            cpu.rep_done = done          # virtual time inside the REP (CPU.now)
            port_out(port, size, rd(sseg, si))
            si = (si + step) & amask
            done += 1
            if rep and done < n and _strop_irq_pending(cpu):
                break
    finally:
        R[6] = (R[6] & ~amask) | si
        if rep:
            R[1] = (R[1] & ~amask) | (cnt - done)
            cpu.rep_done = done
    if rep:
        cpu.eip = nxt if done == cnt else eip
