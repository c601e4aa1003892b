"""Guest debug registers DR0-DR7 (SDM Vol. 3, 17.2-17.3), in real mode."""

from aero.cpu import flags as F
from aero.cpu.presets import real16


def machine(code: bytes):
    cpu = real16(1 << 20)
    cpu.bus.ram[4:8] = bytes([0x00, 0x05, 0x00, 0x00])   # IVT 1 (#DB) -> 0000:0500: hlt
    cpu.bus.ram[0x500] = 0xF4
    cpu.R[4] = 0x7000
    cpu.bus.ram[0x100: 0x100 + len(code)] = code
    cpu.eip = 0x100
    return cpu


def pushed_ip(cpu):
    return cpu.bus.ram[0x7000 - 6] | cpu.bus.ram[0x7000 - 5] << 8


CODE = bytes([0x40,               # 100: inc ax
              0x43,               # 101: inc bx
              0xA2, 0x02, 0x06,   # 102: mov [0x602], al
              0x41,               # 105: inc cx
              0xF4])              # 106: hlt


def test_instruction_breakpoint_is_a_fault_before_the_instruction():
    cpu = machine(CODE)
    cpu.dr[0] = 0x101
    cpu.dr[7] = 0x401                          # L0, R/W0 = 00 (execute)
    cpu.dr_changed()
    assert cpu.run(100) == "halt"
    assert cpu.eip == 0x501                    # in the #DB handler
    assert pushed_ip(cpu) == 0x101             # fault: returns to the breakpoint
    assert cpu.R[0] == 1 and cpu.R[3] == 0     # inc bx not executed
    assert cpu.dr[6] & 0xF == 0x1


def test_rf_suppresses_the_instruction_breakpoint_once():
    cpu = machine(CODE)
    cpu.dr[0] = 0x100
    cpu.dr[7] = 0x401
    cpu.dr_changed()
    cpu.flags |= F.RF
    assert cpu.run(100) == "halt"
    assert cpu.eip == 0x107 and cpu.R[3] == 1  # ran to the final hlt
    assert not cpu.flags & F.RF


def test_data_write_breakpoint_is_a_trap_after_the_access():
    cpu = machine(CODE)
    cpu.dr[1] = 0x600
    cpu.dr[7] = 0x400 | 0x4 | (0b01 << 20) | (0b11 << 22)   # L1, write, 4 bytes
    cpu.dr_changed()
    assert cpu.run(100) == "halt"
    assert pushed_ip(cpu) == 0x105             # trap: after the mov
    assert cpu.bus.ram[0x602] == 1             # the write happened
    assert cpu.dr[6] & 0xF == 0x2


def test_data_breakpoint_outside_the_range_does_not_fire():
    cpu = machine(CODE)
    cpu.dr[1] = 0x604
    cpu.dr[7] = 0x400 | 0x4 | (0b01 << 20) | (0b00 << 22)   # 1 byte at 0x604
    cpu.dr_changed()
    assert cpu.run(100) == "halt"
    assert cpu.eip == 0x107


def test_general_detect_faults_on_mov_dr():
    cpu = machine(bytes([0x0F, 0x21, 0xC0, 0xF4]))           # mov eax, dr0; hlt
    cpu.dr[7] = 0x400 | 0x2000                               # GD
    cpu.dr_changed()
    assert cpu.run(100) == "halt"
    assert cpu.eip == 0x501 and pushed_ip(cpu) == 0x100
    assert cpu.dr[6] & 0x2000 and not cpu.dr[7] & 0x2000


def test_no_breakpoints_no_single_stepping():
    cpu = machine(CODE)
    cpu.dr[0] = 0x101                          # address set but not enabled in DR7
    cpu.run(100)
    assert cpu.eip == 0x107 and not cpu.dbg.active


def test_enabled_breakpoints_cost_no_single_stepping(monkeypatch):
    # review finding: one enabled DR0 sent every instruction through a decode-per-step path.
    # Now a breakpoint is compiled into the block holding its address only: a loop elsewhere
    # runs as whole blocks (no instruction is run alone) at full speed.
    from aero.cpu.cpu import CPU
    cpu = machine(bytes([0xB9, 0x00, 0x10,      # 100: mov cx, 0x1000
                         0x40,                  # 103: inc ax
                         0xE2, 0xFD,            # 104: loop 103
                         0xF4]))                # 106: hlt
    cpu.dr[0] = 0x200                           # enabled, never reached
    cpu.dr[1] = 0x700
    cpu.dr[7] = 0x400 | 0x1 | 0x4 | (0b1101 << 20)
    cpu.dr_changed()
    alone = []
    monkeypatch.setattr(CPU, "_single", lambda self, key: alone.append(self.eip))
    assert cpu.run(100_000) == "halt"
    assert cpu.R[0] & 0xFFFF == 0x1000 and alone == []
