"""The x87 instructions: what each D8-DF encoding does to the CPU (Intel SDM Vol. 2, the x87
instruction pages; Vol. 1 ch. 8; Vol. 3 2.5 and table 2-2).

This is the one definition of every x87 instruction.  The instruction table routes opcodes
D8-DF to the ``X87@m`` / ``X87@r`` templates (``aero.cpu.sem.x87``), which call ``mem_op`` with
the ModR/M memory operand or ``reg_op`` for the register forms; the interpreter and the JIT run
the same calls.  The arithmetic is ``float80`` / ``transcendental``, the stack, tags, flags and
memory images are ``x87.X87`` (``cpu.fpu``).

Order of events in every instruction, so that a fault leaves nothing half done:

1. #UD for encodings no P6 executes (FISTTP is SSE3; the empty slots of the opcode map).
2. #NM when CR0.EM or CR0.TS is set (SDM Vol. 3 table 2-2).
3. For a *waiting* instruction (all but FNINIT FNCLEX FNSTENV FNSAVE FNSTSW FNSTCW and the 287
   no-ops FNENI FNDISI FNSETPM): a pending unmasked exception is delivered first
   (``fpu_error``): #MF when CR0.NE = 1; with CR0.NE = 0 the FERR# output is asserted (the PC
   routes it to IRQ13, ``aero.devices.sysports.CoprocessorError``) unless IGNNE# is active;
   when that interrupt can be taken at once, the instruction is left undone and the handler
   returns to it (the SDM's "stops immediately before"); when it cannot (IF = 0, IRQ13
   masked), the instruction executes, as QEMU and Bochs do, instead of freezing the CPU.
4. Memory reads (page faults, #GP) and, for stores, a probe that the whole write will succeed.
5. FIP/FCS/FOP (and FDP/FDS with a memory operand) for non-control instructions.
6. The operation and its result; memory written last.

An unmasked exception an instruction raises sets ES (the status word) and is delivered at the
next waiting instruction, exactly as the SDM describes (Vol. 1 8.6).
"""

from __future__ import annotations

from ..faults import BlockExit, CPUFault
from . import float80 as F
from . import transcendental as T
from .x87 import C1, C2, CC_MASK, IE, INDEFINITE

CR0_PE, CR0_MP, CR0_EM, CR0_TS, CR0_NE = 0x01, 0x02, 0x04, 0x08, 0x20
EFLAGS_CF, EFLAGS_PF, EFLAGS_ZF, EFLAGS_IF, EFLAGS_VM = 0x01, 0x04, 0x40, 0x200, 0x20000
EFLAGS_ARITH = 0x8D5


def fpu_error(cpu) -> None:
    """A waiting instruction found an unmasked exception pending (SDM Vol. 1 8.7, Vol. 3 2.5)."""
    if cpu.cr0 & CR0_NE:
        raise CPUFault(16)
    if not cpu.ignne and cpu.on_ferr is not None:
        cpu.on_ferr()
        # SDM Vol. 3 2.5 (CR0.NE = 0): the processor stops immediately before the waiting
        # instruction until the interrupt comes.  When the interrupt FERR# raised can be taken
        # now, the instruction is left undone (EIP at it; the handler returns to it); otherwise
        # (IF = 0, IRQ13 masked) it runs on, as QEMU and Bochs do, rather than freeze.
        if cpu.intr and cpu.flags & EFLAGS_IF and not cpu.shadow:
            raise BlockExit()


def _enter(cpu, waiting=True):
    if cpu.cr0 & (CR0_EM | CR0_TS):
        raise CPUFault(7)
    fpu = cpu.fpu
    if waiting and fpu._flags & ~fpu._cw & 0x3F:     # fpu.pending_unmasked(), inline
        fpu_error(cpu)
    return fpu


def wait(cpu) -> None:
    """WAIT/FWAIT: #NM only when CR0.MP and CR0.TS are both set, then pending exceptions."""
    if cpu.cr0 & (CR0_MP | CR0_TS) == CR0_MP | CR0_TS:
        raise CPUFault(7)
    if cpu.fpu.pending_unmasked():
        fpu_error(cpu)


def _control_done(cpu, fpu) -> None:
    """After an instruction that can clear ES: FERR# goes inactive, and with it IGNNE#."""
    if cpu.ignne and not fpu.pending_unmasked():
        cpu.ignne = False


def _real(cpu) -> bool:
    return not cpu.cr0 & CR0_PE or bool(cpu.flags & EFLAGS_VM)


# ---------------------------------------------------------------------------------------------
# memory access: whole operands, read before anything changes, writes probed first

def _read(cpu, seg, ea, n, amask):
    if n == 2:
        return cpu.rd16(seg, ea)
    if n == 4:
        return cpu.rd32(seg, ea)
    lo = cpu.rd32(seg, ea) | cpu.rd32(seg, (ea + 4) & amask) << 32
    if n == 8:
        return lo
    return lo | cpu.rd16(seg, (ea + 8) & amask) << 64


def _read_bytes(cpu, seg, ea, n, amask):
    """An n-byte image (n even: 14, 28, 94, 108) in dwords and a last word."""
    out = bytearray()
    for i in range(0, n - 3, 4):
        out += cpu.rd32(seg, (ea + i) & amask).to_bytes(4, "little")
    if n & 2:
        out += cpu.rd16(seg, (ea + n - 2) & amask).to_bytes(2, "little")
    return bytes(out)


def _probe(cpu, seg, ea, n):
    cpu.check_write(seg, ea, n)


def _write(cpu, seg, ea, n, value, amask):
    if n == 2:
        cpu.wr16(seg, ea, value)
        return
    if n == 4:
        cpu.wr32(seg, ea, value)
        return
    cpu.wr32(seg, ea, value & 0xFFFFFFFF)
    cpu.wr32(seg, (ea + 4) & amask, (value >> 32) & 0xFFFFFFFF)
    if n == 10:
        cpu.wr16(seg, (ea + 8) & amask, (value >> 64) & 0xFFFF)


def _write_bytes(cpu, seg, ea, data, amask):
    n = len(data)
    for i in range(0, n - 3, 4):
        cpu.wr32(seg, (ea + i) & amask, int.from_bytes(data[i:i + 4], "little"))
    if n & 2:
        cpu.wr16(seg, (ea + n - 2) & amask, int.from_bytes(data[n - 2:], "little"))


def _sext(v, bits):
    return v - (1 << bits) if v >> (bits - 1) else v


# ---------------------------------------------------------------------------------------------
# arithmetic shared by the memory and register forms

def _binary(op, a, b, cw, den=False):
    """ST op operand for the eight arithmetic slots (0 add 1 mul 4 sub 5 subr 6 div 7 divr):
    a is the destination's value, b the other operand; den: a denormal m32/m64 operand."""
    if op == 0:
        return F.fadd(a, b, cw, den)
    if op == 1:
        return F.fmul(a, b, cw, den)
    if op == 4:
        return F.fsub(a, b, cw, den)
    if op == 5:
        return F.fsub(b, a, cw, den)
    if op == 6:
        return F.fdiv(a, b, cw, den)
    return F.fdiv(b, a, cw, den)


def _compare(fpu, a, b, pops, unordered=False, den=False):
    """FCOM/FCOMP/FCOMPP/FUCOM*/FTST/FICOM: C3 C2 C0 from the comparison, C1 = 0."""
    codes, sw = F.fcom(a, b, fpu.cw, unordered)
    if den and not sw & IE:
        sw |= F.DE
        if not fpu.cw & F.DE:
            codes = None
    if codes is None:
        fpu.raise_flags(sw)
        return
    fpu.raise_flags(codes | sw, CC_MASK)
    for _ in range(pops):
        fpu.pop()


def _compare_underflow(fpu, pops):
    if fpu.underflow(pop=pops):
        fpu.set_cc(F.CC_UNORDERED)


# ---------------------------------------------------------------------------------------------
# memory forms: MEM[row * 8 + reg](cpu, fpu, seg, ea, amask, osz)

_REAL = {0: (4, F.float32_operand), 4: (8, F.float64_operand)}
_INT = {2: 32, 6: 16}


def _m_arith(row, op):
    """D8/DC (m32fp/m64fp) and DA/DE (m32int/m16int) arithmetic and comparisons."""
    if row in _REAL:
        n, conv = _REAL[row]

        def load(cpu, seg, ea, amask):
            return conv(_read(cpu, seg, ea, n, amask))
    else:
        bits = _INT[row]

        def load(cpu, seg, ea, amask):
            return F.from_int(_sext(_read(cpu, seg, ea, bits // 8, amask), bits)), False

    def run(cpu, fpu, seg, ea, amask, osz):
        b, den = load(cpu, seg, ea, amask)
        ops = fpu.fetch(0)
        if op in (2, 3):
            if ops is None:
                _compare_underflow(fpu, op - 2)
            else:
                _compare(fpu, ops[0], b, op - 2, den=den)
        elif ops is None:
            fpu.underflow(dest=0)
        else:
            fpu.apply(_binary(op, ops[0], b, fpu.cw, den), dest=0)
    return run


def _m_load(n, convert):
    def run(cpu, fpu, seg, ea, amask, osz):
        value, sw = convert(_read(cpu, seg, ea, n, amask), fpu.cw)
        fpu.push(value, sw)
    return run


def _m_store(n, convert, indefinite, pop):
    def run(cpu, fpu, seg, ea, amask, osz):
        _probe(cpu, seg, ea, n)
        ops = fpu.fetch(0)
        if ops is None:
            if fpu.underflow(pop=pop, store=True):
                _write(cpu, seg, ea, n, indefinite, amask)
            return
        value, sw = convert(ops[0], fpu.cw)
        if fpu.apply((value, sw), pop=pop):
            _write(cpu, seg, ea, n, value, amask)
    return run


def _conv_int(bits):
    def conv(raw, cw):
        return F.from_int(_sext(raw, bits)), 0
    return conv


def _conv_store_int(bits):
    def conv(a, cw):
        return F.to_int(a, bits, cw)
    return conv


def _conv_raw80(raw, cw):
    return raw, 0


def _conv_store80(a, cw):
    return a, 0


def _conv_bcd_load(raw, cw):
    return F.from_bcd(raw.to_bytes(10, "little")), 0


def _conv_bcd_store(a, cw):
    data, sw = F.to_bcd(a, cw)
    return (None if data is None else int.from_bytes(data, "little")), sw


def _m_fldenv(cpu, fpu, seg, ea, amask, osz):
    data = _read_bytes(cpu, seg, ea, fpu.env_size(osz), amask)
    fpu.load_env(data, osz, _real(cpu))
    _control_done(cpu, fpu)


def _m_frstor(cpu, fpu, seg, ea, amask, osz):
    data = _read_bytes(cpu, seg, ea, fpu.save_size(osz), amask)
    fpu.restore(data, osz, _real(cpu))
    _control_done(cpu, fpu)


def _m_fnstenv(cpu, fpu, seg, ea, amask, osz):
    _probe(cpu, seg, ea, fpu.env_size(osz))
    _write_bytes(cpu, seg, ea, fpu.fstenv(osz, _real(cpu)), amask)


def _m_fnsave(cpu, fpu, seg, ea, amask, osz):
    _probe(cpu, seg, ea, fpu.save_size(osz))
    _write_bytes(cpu, seg, ea, fpu.fsave(osz, _real(cpu)), amask)
    _control_done(cpu, fpu)


def _m_fldcw(cpu, fpu, seg, ea, amask, osz):
    fpu.cw = cpu.rd16(seg, ea)
    _control_done(cpu, fpu)


def _m_fnstcw(cpu, fpu, seg, ea, amask, osz):
    cpu.wr16(seg, ea, fpu.cw)


def _m_fnstsw(cpu, fpu, seg, ea, amask, osz):
    cpu.wr16(seg, ea, fpu.sw)


# (handler, waiting, control): control instructions leave FIP/FOP/FDP alone
MEM: list = [None] * 64
for _op in range(8):
    for _row in (0, 2, 4, 6):
        MEM[_row * 8 + _op] = (_m_arith(_row, _op), True, False)
_IND32, _IND64 = 0xFFC00000, 0xFFF8000000000000
MEM[1 * 8 + 0] = (_m_load(4, F.from_float32), True, False)
MEM[1 * 8 + 2] = (_m_store(4, F.to_float32, _IND32, 0), True, False)
MEM[1 * 8 + 3] = (_m_store(4, F.to_float32, _IND32, 1), True, False)
MEM[1 * 8 + 4] = (_m_fldenv, True, True)
MEM[1 * 8 + 5] = (_m_fldcw, True, True)
MEM[1 * 8 + 6] = (_m_fnstenv, False, True)
MEM[1 * 8 + 7] = (_m_fnstcw, False, True)
MEM[3 * 8 + 0] = (_m_load(4, _conv_int(32)), True, False)
MEM[3 * 8 + 2] = (_m_store(4, _conv_store_int(32), 1 << 31, 0), True, False)
MEM[3 * 8 + 3] = (_m_store(4, _conv_store_int(32), 1 << 31, 1), True, False)
MEM[3 * 8 + 5] = (_m_load(10, _conv_raw80), True, False)
MEM[3 * 8 + 7] = (_m_store(10, _conv_store80, INDEFINITE, 1), True, False)
MEM[5 * 8 + 0] = (_m_load(8, F.from_float64), True, False)
MEM[5 * 8 + 2] = (_m_store(8, F.to_float64, _IND64, 0), True, False)
MEM[5 * 8 + 3] = (_m_store(8, F.to_float64, _IND64, 1), True, False)
MEM[5 * 8 + 4] = (_m_frstor, True, True)
MEM[5 * 8 + 6] = (_m_fnsave, False, True)
MEM[5 * 8 + 7] = (_m_fnstsw, False, True)
MEM[7 * 8 + 0] = (_m_load(2, _conv_int(16)), True, False)
MEM[7 * 8 + 2] = (_m_store(2, _conv_store_int(16), 1 << 15, 0), True, False)
MEM[7 * 8 + 3] = (_m_store(2, _conv_store_int(16), 1 << 15, 1), True, False)
MEM[7 * 8 + 4] = (_m_load(10, _conv_bcd_load), True, False)
MEM[7 * 8 + 5] = (_m_load(8, _conv_int(64)), True, False)
MEM[7 * 8 + 6] = (_m_store(10, _conv_bcd_store, F.BCD_INDEFINITE, 1), True, False)
MEM[7 * 8 + 7] = (_m_store(8, _conv_store_int(64), 1 << 63, 1), True, False)
# MEM slots left None: D9 /1, DB /1 /4 /6, DD /1 /5, DF /1 (FISTTP is SSE3): #UD (the table
# marks them, see ``valid_mem``)


def valid_mem(row: int, reg: int) -> bool:
    return MEM[row * 8 + reg] is not None


def mem_op(cpu, key, modrm, seg, ea, eip, amask, osz):
    """An x87 instruction with a memory operand: key = (opcode - D8h) * 8 + ModR/M.reg."""
    handler, waiting, control = MEM[key]
    fpu = _enter(cpu, waiting)
    if control:
        handler(cpu, fpu, seg, ea, amask, osz)
        return
    # non-control: FIP/FCS/FOP and FDP/FDS are recorded once the operand is known to be
    # accessible; the handlers read before they change anything
    fpu.note_instruction(eip, cpu.sel[1], (key >> 3) << 8 | modrm, ea, cpu.sel[seg])
    handler(cpu, fpu, seg, ea, amask, osz)


# ---------------------------------------------------------------------------------------------
# register forms: REG[row * 64 + reg * 8 + rm](cpu, fpu, i) with i = rm

def _r_arith(op, dest_i, pop):
    """D8 (ST0 = ST0 op STi), DC (STi = STi op ST0; sub/div reversed), DE (DC and pop)."""
    def run(cpu, fpu, i):
        ops = fpu.fetch(0, i)
        d = i if dest_i else 0
        if ops is None:
            fpu.underflow(dest=d, pop=pop)
            return
        st0, sti = ops
        if dest_i:
            # DC/DE: /4 is "FSUBR ST(i), ST(0)" (ST(i) = ST(0) - ST(i)) and /5 "FSUB ST(i), ST(0)"
            # (ST(i) = ST(i) - ST(0)); likewise /6 /7 for division
            res = _binary(op ^ 1 if op >= 4 else op, sti, st0, fpu.cw)
        else:
            res = _binary(op, st0, sti, fpu.cw)
        fpu.apply(res, dest=d, pop=pop)
    return run


def _r_com(pops, unordered=False):
    def run(cpu, fpu, i):
        ops = fpu.fetch(0, i)
        if ops is None:
            _compare_underflow(fpu, pops)
        else:
            _compare(fpu, ops[0], ops[1], pops, unordered)
    return run


def _r_fcompp(unordered):
    def run(cpu, fpu, i):
        ops = fpu.fetch(0, 1)
        if ops is None:
            _compare_underflow(fpu, 2)
        else:
            _compare(fpu, ops[0], ops[1], 2, unordered)
    return run


def _r_comi(unordered, pop):
    """FCOMI/FUCOMI(P): ZF PF CF in EFLAGS (OF SF AF cleared), C1 = 0."""
    codes_to_eflags = {F.CC_GT: 0, F.CC_LT: EFLAGS_CF, F.CC_EQ: EFLAGS_ZF,
                       F.CC_UNORDERED: EFLAGS_ZF | EFLAGS_PF | EFLAGS_CF}

    def run(cpu, fpu, i):
        ops = fpu.fetch(0, i)
        if ops is None:
            if fpu.underflow(pop=pop):
                cpu.set_arith(EFLAGS_ZF | EFLAGS_PF | EFLAGS_CF, EFLAGS_ARITH)
            return
        codes, sw = F.fcom(ops[0], ops[1], fpu.cw, unordered)
        fpu.raise_flags(sw, C1)
        if codes is None:
            return
        cpu.set_arith(codes_to_eflags[codes], EFLAGS_ARITH)
        if pop:
            fpu.pop()
    return run


def _r_fcmov(cond, negate):
    def run(cpu, fpu, i):
        fl = cpu.get_flags()
        if cond == 0:
            c = fl & EFLAGS_CF
        elif cond == 1:
            c = fl & EFLAGS_ZF
        elif cond == 2:
            c = fl & (EFLAGS_CF | EFLAGS_ZF)
        else:
            c = fl & EFLAGS_PF
        ops = fpu.fetch(0, i)
        if ops is None:
            fpu.underflow(dest=0)
            return
        fpu.set_cc(0, C1)
        if bool(c) != negate:
            fpu.write(0, ops[1])
    return run


def _r_fld(cpu, fpu, i):
    if fpu.is_empty(i):
        if fpu.underflow():
            fpu.push(INDEFINITE)
        return
    fpu.push(fpu.st(i))


def _r_fxch(cpu, fpu, i):
    fpu.fxch(i)


def _r_fst(pop):
    def run(cpu, fpu, i):
        if fpu.is_empty(0):
            fpu.underflow(dest=i, pop=pop)
            return
        fpu.set_cc(0, C1)
        fpu.write(i, fpu.st(0))
        if pop:
            fpu.pop()
    return run


def _r_fnop(cpu, fpu, i):
    pass


def _r_unary(fn, cc_mask=C1):
    def run(cpu, fpu, i):
        ops = fpu.fetch(0)
        if ops is None:
            fpu.underflow(dest=0)
            return
        fpu.apply(fn(ops[0], fpu.cw), dest=0, cc_mask=cc_mask)
    return run


def _r_sign(fn):
    def run(cpu, fpu, i):
        ops = fpu.fetch(0)
        if ops is None:
            fpu.underflow(dest=0)
            return
        fpu.set_cc(0, C1)
        fpu.write(0, fn(ops[0]))
    return run


def _r_ftst(cpu, fpu, i):
    ops = fpu.fetch(0)
    if ops is None:
        _compare_underflow(fpu, 0)
    else:
        _compare(fpu, ops[0], F.POS_ZERO, 0)


def _r_fxam(cpu, fpu, i):
    fpu.set_cc(F.fxam(fpu.st(0), fpu.is_empty(0)))


def _r_const(name):
    def run(cpu, fpu, i):
        fpu.push(F.const(name, fpu.cw))
    return run


def _r_st1(fn):
    """FYL2X FYL2XP1 FPATAN: ST(1) = fn(ST0, ST1), then pop."""
    def run(cpu, fpu, i):
        ops = fpu.fetch(0, 1)
        if ops is None:
            fpu.underflow(dest=1, pop=1)
            return
        fpu.apply(fn(ops[0], ops[1], fpu.cw), dest=1, pop=1)
    return run


def _r_fscale(cpu, fpu, i):
    ops = fpu.fetch(0, 1)
    if ops is None:
        fpu.underflow(dest=0)
        return
    fpu.apply(F.fscale(ops[0], ops[1], fpu.cw), dest=0)


def _r_fprem(fn):
    def run(cpu, fpu, i):
        ops = fpu.fetch(0, 1)
        if ops is None:
            fpu.underflow(dest=0)
            return
        fpu.apply(fn(ops[0], ops[1], fpu.cw), dest=0, cc_mask=CC_MASK)
    return run


def _st0_for_two_results(fpu):
    """ST0 for FPTAN, FSINCOS and FXTRACT, which replace ST0 and push a second result; None when
    a stack fault ends the instruction: ST0 empty (underflow) or ST(7), where the push lands,
    full (overflow, C1 = 1), with the masked response (both results the indefinite)."""
    ops = fpu.fetch(0)
    if ops is None:
        if fpu.underflow(dest=0):
            fpu.push(INDEFINITE)
        return None
    if not fpu.is_empty(7):
        if fpu._stack_fault(True):
            fpu.write(0, INDEFINITE)
            fpu.push(INDEFINITE)
        return None
    return ops[0]


def _r_fptan(cpu, fpu, i):
    a = _st0_for_two_results(fpu)
    if a is None:
        return
    value, sw = T.fptan(a, fpu.cw)
    if not fpu.apply((value, sw), dest=0, cc_mask=C1 | C2):
        return
    if not sw & C2:
        fpu.push(F.ONE)


def _r_fsincos(cpu, fpu, i):
    a = _st0_for_two_results(fpu)
    if a is None:
        return
    s, c, sw = T.fsincos(a, fpu.cw)
    fpu.raise_flags(sw, C1 | C2)
    if sw & C2 or s is None:
        return
    fpu.write(0, s)
    fpu.push(c, sw & C1)


def _r_fxtract(cpu, fpu, i):
    a = _st0_for_two_results(fpu)
    if a is None:
        return
    e, sig, sw = F.fxtract(a, fpu.cw)
    fpu.raise_flags(sw, C1)
    if e is None:
        return
    fpu.write(0, e)
    fpu.push(sig, sw & C1)


def _r_fdecstp(cpu, fpu, i):
    fpu.fdecstp()


def _r_fincstp(cpu, fpu, i):
    fpu.fincstp()


def _r_ffree(cpu, fpu, i):
    fpu.ffree(i)


def _r_ffreep(cpu, fpu, i):
    fpu.ffree(i)
    fpu.pop()


def _r_fnclex(cpu, fpu, i):
    fpu.fnclex()
    _control_done(cpu, fpu)


def _r_fninit(cpu, fpu, i):
    fpu.fninit()
    _control_done(cpu, fpu)


def _r_fnstsw_ax(cpu, fpu, i):
    R = cpu.R
    R[0] = (R[0] & 0xFFFF0000) | fpu.sw


def _r_287_nop(cpu, fpu, i):
    """FNENI, FNDISI, FNSETPM: 8087/287 control; no-ops since the 387 (SDM Vol. 1 8.3.13)."""


# (handler, waiting, control) per row * 64 + reg * 8 + rm
REG: list = [None] * 512


def _all(row, reg, handler, waiting=True, control=False):
    for rm in range(8):
        REG[row * 64 + reg * 8 + rm] = (handler, waiting, control)


def _one(row, reg, rm, handler, waiting=True, control=False):
    REG[row * 64 + reg * 8 + rm] = (handler, waiting, control)


for _op in range(8):
    if _op in (2, 3):
        _all(0, _op, _r_com(_op - 2))
        _all(4, _op, _r_com(_op - 2))                 # FCOM2 / FCOMP3 aliases
    else:
        _all(0, _op, _r_arith(_op, False, 0))
        _all(4, _op, _r_arith(_op, True, 0))
        _all(6, _op, _r_arith(_op, True, 1))
_all(6, 2, _r_com(1))                                 # FCOMP5 alias
_one(6, 3, 1, _r_fcompp(False))
_all(1, 0, _r_fld)
_all(1, 1, _r_fxch)
_one(1, 2, 0, _r_fnop)
_all(1, 3, _r_fst(1))                                 # FSTP1 alias
_one(1, 4, 0, _r_sign(F.fchs))
_one(1, 4, 1, _r_sign(F.fabs))
_one(1, 4, 4, _r_ftst)
_one(1, 4, 5, _r_fxam)
for _rm, _name in enumerate(F.CONSTANTS):
    _one(1, 5, _rm, _r_const(_name))
_one(1, 6, 0, _r_unary(T.f2xm1))
_one(1, 6, 1, _r_st1(T.fyl2x))
_one(1, 6, 2, _r_fptan)
_one(1, 6, 3, _r_st1(T.fpatan))
_one(1, 6, 4, _r_fxtract)
_one(1, 6, 5, _r_fprem(F.fprem1))
_one(1, 6, 6, _r_fdecstp)
_one(1, 6, 7, _r_fincstp)
_one(1, 7, 0, _r_fprem(F.fprem))
_one(1, 7, 1, _r_st1(T.fyl2xp1))
_one(1, 7, 2, _r_unary(F.fsqrt))
_one(1, 7, 3, _r_fsincos)
_one(1, 7, 4, _r_unary(F.frndint))
_one(1, 7, 5, _r_fscale)
_one(1, 7, 6, _r_unary(T.fsin, C1 | C2))
_one(1, 7, 7, _r_unary(T.fcos, C1 | C2))
for _c in range(4):
    _all(2, _c, _r_fcmov(_c, False))
    _all(3, _c, _r_fcmov(_c, True))
_one(2, 5, 1, _r_fcompp(True))                        # FUCOMPP
_one(3, 4, 0, _r_287_nop, False, True)                # FNENI
_one(3, 4, 1, _r_287_nop, False, True)                # FNDISI
_one(3, 4, 2, _r_fnclex, False, True)
_one(3, 4, 3, _r_fninit, False, True)
_one(3, 4, 4, _r_287_nop, False, True)                # FNSETPM
_all(3, 5, _r_comi(True, 0))
_all(3, 6, _r_comi(False, 0))
_all(5, 0, _r_ffree)
_all(5, 1, _r_fxch)                                   # FXCH4 alias
_all(5, 2, _r_fst(0))
_all(5, 3, _r_fst(1))
_all(5, 4, _r_com(0, True))
_all(5, 5, _r_com(1, True))
_all(7, 0, _r_ffreep)
_all(7, 1, _r_fxch)                                   # FXCH7 alias
_all(7, 2, _r_fst(1))                                 # FSTP8 alias
_all(7, 3, _r_fst(1))                                 # FSTP9 alias
_one(7, 4, 0, _r_fnstsw_ax, False, True)
_all(7, 5, _r_comi(True, 1))
_all(7, 6, _r_comi(False, 1))


def valid_reg(row: int, reg: int, rm: int) -> bool:
    return REG[row * 64 + reg * 8 + rm] is not None


def reg_op(cpu, key, eip):
    """An x87 instruction on registers: key = (opcode - D8h) * 64 + ModR/M.reg * 8 + rm."""
    entry = REG[key]
    if entry is None:
        raise CPUFault(6)
    handler, waiting, control = entry
    fpu = _enter(cpu, waiting)
    if not control:                                 # fpu.note_instruction, inline
        fpu.fip = eip
        fpu.fcs = cpu.sel[1]
        fpu.fop = (key >> 6) << 8 | 0xC0 | (key & 63)
    handler(cpu, fpu, key & 7)
