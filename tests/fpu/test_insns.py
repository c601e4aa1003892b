"""The x87 in the CPU (aero/fpu/insns.py): the instruction table, faults (#UD, #NM, #MF), FERR#
and IRQ13, the last-instruction pointers, restartable stores, FSAVE/FRSTOR through the CPU, the
state (hash, snapshot, INIT/RESET), and both tiers.  Arithmetic results are checked against
unicorn in test_x87_unicorn.py and against QEMU in tests/sys/test_x87_guest.py."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile

import pytest

from aero.cpu import disasm as D
from aero.cpu.decoder import decode
from aero.cpu.presets import real16
from aero.cpu.state import get_state, set_state, state_hash
from aero.fpu import float80 as F
from aero.fpu import insns as I

NASM = shutil.which("nasm")
needs_nasm = pytest.mark.skipif(NASM is None, reason="nasm not installed")

CODE, HANDLER, DATA = 0x1000, 0x0F00, 0x2000
ONE = F.ONE
TWO = (F.BIAS + 1) << 64 | F.J_BIT


def assemble16(src: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        s, o = os.path.join(d, "t.asm"), os.path.join(d, "t.bin")
        with open(s, "w") as f:
            f.write(f"bits 16\norg {CODE:#x}\n{src}\n")
        subprocess.run([NASM, "-f", "bin", "-o", o, s], check=True)
        with open(o, "rb") as f:
            return f.read()


def machine16(src: str, cr0: int = 0, jit: bool = False):
    """A real-mode CPU running ``src`` at 0:1000; every vector's handler is a HLT at 0:0F00;
    ``events`` records (vector, kind, EIP) of each delivery."""
    cpu = real16(1 << 20)
    code = assemble16(src)
    ram = cpu.bus.ram
    ram[CODE:CODE + len(code)] = code
    ram[HANDLER] = 0xF4
    for v in range(32):
        struct.pack_into("<HH", ram, v * 4, HANDLER, 0)
    cpu.write_cr0(cpu.cr0 | cr0)
    cpu.eip = CODE
    cpu.R[4] = 0x8000
    events = []
    cpu.on_interrupt = lambda vec, code, kind, eip: events.append((vec, kind, eip))
    if jit:
        from aero.jit import JIT
        cpu.cache.jit = JIT(cpu, 1)
    return cpu, events


def run16(src, cr0=0, jit=False, budget=10_000):
    cpu, events = machine16(src, cr0, jit)
    cpu.run(budget)
    return cpu, events


def label(src, name):
    """The address of ``name:`` in the assembled program."""
    code = assemble16(src + f"\ndw {name}")
    return struct.unpack_from("<H", code, len(code) - 2)[0]


# ---------------------------------------------------------------------------------------------
# The table: every encoding the disassembler names has semantics, and nothing else does

def _x87_names():
    for row in range(8):
        for reg in range(8):
            yield ("mem", row, reg, None), D._X87_MEM[row][reg]
            form = D._X87_REG[row][reg]
            for rm in range(8):
                name = form.get(rm) if isinstance(form, dict) else form
                yield ("reg", row, reg, rm), name


def test_every_named_encoding_has_semantics_and_only_those():
    for (kind, row, reg, rm), name in _x87_names():
        valid = I.valid_mem(row, reg) if kind == "mem" else I.valid_reg(row, reg, rm)
        if name is None:
            assert not valid, (kind, row, reg, rm)
        elif "fisttp" in (name if isinstance(name, str) else name[0]):
            assert not valid                     # SSE3: #UD on this P6
        else:
            assert valid, (kind, row, reg, rm, name)


@pytest.mark.parametrize("raw", [b"\xdb\x08", b"\xdd\x08", b"\xdf\x08",   # fisttp m32/m64/m16
                                 b"\xd9\x08", b"\xdd\x28", b"\xd9\xd1", b"\xdf\xe1"])
def test_unexecutable_encodings_raise_ud_before_nm(raw):
    src = "db " + ",".join(str(b) for b in raw) + "\nhlt"
    for cr0 in (0, 0x04, 0x08):                  # #UD wins over CR0.EM/TS's #NM
        cpu, events = run16(src, cr0)
        assert events[0][:2] == (6, "fault") and events[0][2] == CODE


# ---------------------------------------------------------------------------------------------
# #NM, #MF, FERR#

@needs_nasm
@pytest.mark.parametrize("cr0, vector", [(0, None), (0x02, None), (0x04, 7), (0x08, 7),
                                         (0x0A, 7), (0x06, 7)])
def test_cr0_em_ts_raise_nm_for_escapes(cr0, vector):
    cpu, events = run16("fninit\nfld1\nhlt", cr0)
    if vector is None:
        assert events == [] and cpu.fpu.st(0) == ONE
    else:
        assert events[0] == (7, "fault", CODE)


@needs_nasm
@pytest.mark.parametrize("cr0, nm", [(0, False), (0x02, False), (0x08, False), (0x0A, True),
                                     (0x04, False), (0x0E, True)])
def test_wait_raises_nm_only_with_mp_and_ts(cr0, nm):
    cpu, events = run16("wait\nhlt", cr0)
    assert events == ([(7, "fault", CODE)] if nm else [])


PENDING_ZE = """
    fninit
    fldcw [cs:cw]
    fldz
    fld1
    fdiv st0, st1            ; 1/0 with ZE unmasked: ES pending, ST0 unchanged
    fnstsw [cs:sw]           ; no-wait: no #MF
    fnstcw [cs:cw2]
after:
    fld1                     ; waiting: the pending exception is delivered here
    hlt
cw: dw 0x037B
sw: dw 0
cw2: dw 0
"""
WAITING = "    fld1                     ; waiting: the pending exception is delivered here"


@needs_nasm
@pytest.mark.parametrize("jit", [False, True])
def test_mf_at_the_next_waiting_instruction_with_cr0_ne(jit):
    cpu, events = run16(PENDING_ZE, cr0=0x20, jit=jit)
    assert events == [(16, "fault", label(PENDING_ZE, "after"))]
    sw = struct.unpack_from("<H", cpu.bus.ram, label(PENDING_ZE, "sw"))[0]
    assert sw & 0x80FF == 0x8084                 # B, ES, ZE
    assert cpu.fpu.st(0) == ONE and cpu.fpu.top == 6


@needs_nasm
def test_no_wait_forms_do_not_deliver():
    src = PENDING_ZE.replace(WAITING, "    fnclex\n    fld1")
    cpu, events = run16(src, cr0=0x20)
    assert events == [] and cpu.fpu.top == 5


@needs_nasm
def test_fwait_delivers_and_nothing_without_ne_and_a_chipset():
    src = PENDING_ZE.replace(WAITING, "    fwait\n    fld1")
    cpu, events = run16(src, cr0=0x20)
    assert events == [(16, "fault", label(src, "after"))]
    # CR0.NE = 0 on a bare CPU (no FERR# listener): the instruction executes
    cpu, events = run16(src, cr0=0)
    assert events == [] and cpu.fpu.top == 5


@needs_nasm
@pytest.mark.parametrize("jit", ["off", "on"])
def test_ferr_raises_irq13_until_port_f0(jit):
    """CR0.NE = 0 in a PC: FERR# latches IRQ13 at the PIC; OUT F0h clears it and asserts IGNNE#
    (the next waiting instructions do not assert FERR# again) until FNCLEX clears ES."""
    from aero.config import MachineConfig
    from aero.machine import Machine
    m = Machine(MachineConfig(bios=None, jit=jit))
    src = PENDING_ZE.replace("    hlt\ncw:", "    fld1\n    out 0xF0, al\n    fld1\n    fld1\n"
                             "    fnclex\nok:    hlt\ncw:")
    code = assemble16(src)
    m.bus.ram[CODE:CODE + len(code)] = code
    cpu = m.cpu
    for s in range(6):
        cpu.load_seg_real(s, 0)
    cpu.eip = CODE
    seen = []
    orig = m.fpu_error.ferr
    m.fpu_error.ferr = lambda: (seen.append((cpu.insn_eip(), m.pic.summary())), orig())
    cpu.on_ferr = m.fpu_error.ferr
    m.run(max_instructions=40)
    assert len(seen) == 2                         # two waiting insns before OUT F0h
    assert m.fpu_error.count == 2 and not m.fpu_error.latched
    assert not cpu.ignne                          # FNCLEX cleared ES: IGNNE# went inactive
    assert cpu.eip == label(src, "ok") + 1
    m.close()


# ---------------------------------------------------------------------------------------------
# pointers, restartable stores, images

@needs_nasm
def test_last_instruction_and_operand_pointers():
    src = """
    fninit
    mov ax, 0x0200
    mov ds, ax
    fld dword [0x10]         ; non-control, memory operand
    fldcw [0x20]             ; control: the pointers stay
    fnstenv [0x40]
    hlt
    """
    cpu = real16(1 << 20)
    code = assemble16(src)
    cpu.bus.ram[CODE:CODE + len(code)] = code
    struct.pack_into("<fH", cpu.bus.ram, 0x2010, 1.5, 0)
    struct.pack_into("<H", cpu.bus.ram, 0x2020, 0x037F)
    cpu.eip = CODE
    cpu.run(100)
    fpu = cpu.fpu
    fld = CODE + len(assemble16("fninit\nmov ax, 0x0200\nmov ds, ax"))
    assert (fpu.fip, fpu.fcs, fpu.fop) == (fld, 0, 0x100 | 0x06)   # D9 /0 [disp16]: modrm 06
    assert (fpu.fdp, fpu.fds) == (0x10, 0x0200)
    env = bytes(cpu.bus.ram[0x2040:0x2040 + 14])
    ip, op_hi, dp, dp_hi = struct.unpack_from("<4H", env, 6)
    assert ip == fld & 0xFFFF and op_hi & 0x7FF == 0x106 and dp == 0x2010
    assert fpu.st(0) == F.from_float32(struct.unpack("<I", struct.pack("<f", 1.5))[0],
                                       0x37F)[0]


@needs_nasm
def test_a_store_that_faults_leaves_the_fpu_as_it_was():
    """FSTP m64 across the segment limit: #GP/#SS before anything changes, restartable."""
    src = "fninit\nfld1\nfld1\nfstp qword [0xFFFC]\nhlt"
    cpu, events = machine16(src)
    cpu.run(100)
    assert events[0][:2] == (13, "fault")
    assert cpu.fpu.top == 6 and cpu.fpu.fetch(0, 1) == (ONE, ONE)
    assert cpu.fpu.sw & 0x3F == 0


@needs_nasm
@pytest.mark.parametrize("o32", [False, True])
def test_fsave_frstor_round_trip_through_the_cpu(o32):
    pre = "o32 " if o32 else ""
    src = f"""
    fninit
    fld1
    fldpi
    fldz
    fdiv st0, st0            ; invalid, masked: indefinite, IE
    {pre}fnsave [0x3000]
    fld1                     ; after FNSAVE the FPU is initialised
    {pre}frstor [0x3000]
    {pre}fnsave [0x3200]
    hlt
    """
    cpu, _ = run16(src)
    n = 108 if o32 else 94
    a = bytes(cpu.bus.ram[0x3000:0x3000 + n])
    b = bytes(cpu.bus.ram[0x3200:0x3200 + n])
    assert a == b
    env = 28 if o32 else 14
    regs = [F.from_bytes80(a[env + 10 * i:env + 10 * i + 10]) for i in range(3)]
    assert regs == [F.INDEFINITE, F.const("pi", 0x37F), ONE]
    sw = struct.unpack_from("<H", a, 4 if o32 else 2)[0]
    assert sw & 0x3F == 1 and (sw >> 11) & 7 == 5


# ---------------------------------------------------------------------------------------------
# state

@needs_nasm
def test_state_hash_snapshot_and_reset_cover_the_fpu():
    cpu, _ = run16("fninit\nfld1\nfld1\nfaddp\nhlt")
    assert cpu.fpu.st(0) == TWO
    st = get_state(cpu)
    h = state_hash(cpu)
    cpu.fpu.write(0, ONE)
    assert state_hash(cpu) != h
    set_state(cpu, st)
    assert state_hash(cpu) == h and cpu.fpu.st(0) == TWO
    cpu.reset()
    assert cpu.fpu.cw == 0x40 and cpu.fpu.tw == 0x5555


def test_init_keeps_the_fpu():
    from aero.config import MachineConfig
    from aero.machine import Machine
    m = Machine(MachineConfig(bios=None))
    m.cpu.fpu.fninit()
    m.cpu.fpu.push(TWO)
    m.cpu_init()
    assert m.cpu.fpu.st(0) == TWO and m.cpu.fpu.cw == 0x037F
    m.reset()
    assert m.cpu.fpu.cw == 0x0040
    m.close()


def test_decoder_reads_modrm_for_every_escape():
    for row in range(8):
        code = bytes((0xD8 + row, 0xC1)) + bytes(14)
        ins = decode(code.__getitem__, 0, False)
        assert ins.length == 2 and ins.entry.x87
        code = bytes((0xD8 + row, 0x06, 0x34, 0x12)) + bytes(12)
        ins = decode(code.__getitem__, 0, False)
        assert ins.length == 4
