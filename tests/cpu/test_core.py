"""The run loop, blocks, self-modifying code, budgets, state and the instruction table."""

import pytest

from aero.cpu import table as T
from aero.cpu.codegen import templates
from aero.cpu.presets import flat32, real16
from aero.cpu.state import get_state, set_state, state_hash, get_reg, set_reg


def load(cpu, addr, code):
    cpu.bus.ram[addr: addr + len(code)] = code
    cpu.eip = addr


def test_every_table_entry_has_semantics():
    tpl = templates()
    missing = sorted({e.name for _, _, _, e in T.all_entries() if not e.ud}
                     - {n.split(".")[0].split("@")[0] for n in tpl})
    assert missing == []


def test_budget_is_exact_and_resumable():
    cpu = flat32(1 << 20)
    # inc eax x 10, hlt
    load(cpu, 0x1000, b"\x40" * 10 + b"\xf4")
    assert cpu.run(3) == "budget"
    assert cpu.R[0] == 3 and cpu.eip == 0x1003 and cpu.icount == 3
    assert cpu.run(100) == "halt"
    assert cpu.R[0] == 10 and cpu.icount == 11


def test_self_modifying_code_takes_effect_on_next_instruction():
    cpu = flat32(1 << 20)
    # mov byte [0x1007], 0x48 (turn the next "inc eax" into "dec eax"); then inc eax; hlt
    code = b"\xc6\x05\x07\x10\x00\x00\x48" + b"\x40" + b"\xf4"
    load(cpu, 0x1000, code)
    assert cpu.run(10) == "halt"
    assert cpu.R[0] == 0xFFFFFFFF


def test_code_rewritten_between_runs_is_recompiled():
    cpu = flat32(1 << 20)
    load(cpu, 0x1000, b"\x40\xf4")
    cpu.run(10)
    assert cpu.R[0] == 1
    cpu.mmu.write8(0x1000, 0x48)             # a write through the bus invalidates the block
    cpu.eip = 0x1000
    cpu.halted = False
    cpu.run(10)
    assert cpu.R[0] == 0


def test_real_mode_wraps_ip_and_segments():
    cpu = real16(1 << 20)
    cpu.load_seg_real(1, 0x1000)
    # at 1000:FFFF a one-byte inc ax, then IP wraps to 0000 where a hlt sits
    cpu.bus.ram[0x1FFFF] = 0x40
    cpu.bus.ram[0x10000] = 0xF4
    cpu.eip = 0xFFFF
    assert cpu.run(10) == "halt"
    assert cpu.R[0] == 1 and cpu.eip == 1


def test_invalid_opcode_is_a_guest_exception_not_a_python_error():
    cpu = real16(1 << 20)
    # IVT entry 6 -> 0000:0500 (hlt); code: 0F 0B (ud2)
    cpu.bus.ram[6 * 4: 6 * 4 + 4] = bytes([0x00, 0x05, 0x00, 0x00])
    cpu.bus.ram[0x500] = 0xF4
    cpu.R[4] = 0x7000
    load(cpu, 0x100, b"\x0f\x0b")
    assert cpu.run(10) == "halt"
    assert cpu.eip == 0x501
    # the pushed return address is the faulting instruction
    assert cpu.bus.ram[0x7000 - 6] | cpu.bus.ram[0x7000 - 5] << 8 == 0x100


def test_state_roundtrip_and_hash():
    cpu = flat32(1 << 20)
    load(cpu, 0x1000, b"\x40\x43\x40\xf4")
    cpu.run(2)
    st = get_state(cpu)
    h = state_hash(cpu)
    cpu.run(10)
    assert state_hash(cpu) != h
    set_state(cpu, st)
    cpu.bus.ram[0:0] = b""
    assert get_state(cpu) == st
    cpu.run(10)
    assert cpu.R[0] == 2 and cpu.R[3] == 1


def test_named_registers():
    cpu = flat32(1 << 20)
    set_reg(cpu, "eax", 0x12345678)
    assert get_reg(cpu, "ax") == 0x5678 and get_reg(cpu, "ah") == 0x56 and get_reg(cpu, "al") == 0x78
    set_reg(cpu, "bh", 0xAB)
    assert get_reg(cpu, "ebx") == 0xAB00
    with pytest.raises(KeyError):
        get_reg(cpu, "xmm0")


def test_triple_fault_reports_shutdown():
    cpu = real16(1 << 20)
    cpu.idtr[1] = 0                      # an empty IVT: every interrupt faults
    shut = []
    cpu.on_shutdown = lambda: shut.append(cpu.icount)
    load(cpu, 0x100, b"\x0f\x0b")
    assert cpu.run(10) == "shutdown"
    assert shut
