"""ARPL with a memory destination in a read-only segment or page (issue 10, item 3).

SDM Vol. 2, ARPL: "If the RPL field of the destination operand is less than the RPL field of the
source operand, the ZF flag is set and the RPL field of the destination operand is increased ...
Otherwise, the ZF flag is cleared and no change is made to the destination operand"; the 80386
PRM raises #GP(0) "if the result is in a nonwritable segment".  A 386-class CPU writes the
destination only when it raises the RPL, so with ZF = 0 a read-only segment (or a read-only
page) neither faults nor changes; with ZF = 1 the write faults as any write would.
"""

from __future__ import annotations

import struct

from aero.cpu.cpu import A_P, A_S, A_ACCESSED, A_DB, A_G, CR0_PG, CR0_WP
from aero.cpu.presets import flat32

CODE, HANDLER, IDT, GDT, DATA = 0x1000, 0x1800, 0x2000, 0x3000, 0x5000
RO_DATA = A_P | A_S | A_ACCESSED | A_DB | A_G          # data, read-only (W = 0)
ZF = 0x40


def machine():
    cpu = flat32(1 << 20)
    for vec in (13, 14):                                # #GP, #PF -> 08:HANDLER (HLT)
        lo = (HANDLER & 0xFFFF) | (0x08 << 16)
        hi = (HANDLER & 0xFFFF0000) | 0x8E00
        cpu.bus.ram[IDT + vec * 8: IDT + vec * 8 + 8] = struct.pack("<II", lo, hi)
    cpu.idtr = [IDT, 0x7FF]
    # the gate's CS is loaded from the GDT: null, 08h flat 32-bit code, 10h flat data
    cpu.bus.ram[GDT:GDT + 24] = struct.pack("<6I", 0, 0, 0x0000FFFF, 0x00CF9B00,
                                            0x0000FFFF, 0x00CF9300)
    cpu.gdtr = [GDT, 0x17]
    cpu.bus.ram[HANDLER] = 0xF4                         # hlt
    cpu.R[4] = 0x9000
    seen = []
    cpu.on_interrupt = lambda vector, code, kind, eip: seen.append((vector, code))
    return cpu, seen


def run_arpl(cpu, dest_rpl, src_rpl):
    """ARPL WORD [DATA], CX; HLT.  Returns the word at DATA afterwards."""
    cpu.bus.ram[DATA:DATA + 2] = (0x0010 | dest_rpl).to_bytes(2, "little")
    cpu.R[1] = 0x0018 | src_rpl
    code = b"\x63\x0D" + DATA.to_bytes(4, "little") + b"\xF4"     # arpl [DATA], cx ; hlt
    cpu.bus.ram[CODE:CODE + len(code)] = code
    cpu.eip = CODE
    cpu.flags |= ZF                                     # ARPL must clear it when no change
    assert cpu.run(10) == "halt"
    return int.from_bytes(cpu.bus.ram[DATA:DATA + 2], "little")


def test_no_adjustment_in_read_only_segment_neither_writes_nor_faults():
    cpu, seen = machine()
    cpu.set_seg_cache(3, 0x10, 0, 0xFFFFFFFF, RO_DATA)  # DS read-only
    assert run_arpl(cpu, 3, 1) == 0x0013
    assert seen == []
    assert cpu.eip == CODE + 7                          # past the HLT after ARPL
    assert not cpu.get_flags() & ZF


def test_adjustment_in_read_only_segment_raises_gp0():
    cpu, seen = machine()
    cpu.set_seg_cache(3, 0x10, 0, 0xFFFFFFFF, RO_DATA)
    assert run_arpl(cpu, 1, 3) == 0x0011                # unchanged: the write faulted
    assert seen == [(13, 0)]
    assert cpu.eip == HANDLER + 1
    # the fault frame points at the ARPL
    assert int.from_bytes(cpu.bus.ram[0x9000 - 12:0x9000 - 8], "little") == CODE


def test_adjustment_in_writable_segment_writes_and_sets_zf():
    cpu, seen = machine()
    assert run_arpl(cpu, 1, 3) == 0x0013
    assert seen == []
    assert cpu.get_flags() & ZF


def _page_tables(cpu):
    """Identity-map the first 4 MiB, the page at DATA read-only; CR0.WP makes that bind ring 0."""
    pd, pt = 0x10000, 0x11000
    cpu.bus.ram[pd:pd + 4] = struct.pack("<I", pt | 3)
    for i in range(1024):
        flags = 1 if i == DATA >> 12 else 3             # present, read-only / read-write
        cpu.bus.ram[pt + 4 * i: pt + 4 * i + 4] = struct.pack("<I", (i << 12) | flags)
    cpu.write_cr3(pd)
    cpu.write_cr0(cpu.cr0 | CR0_PG | CR0_WP)


def test_no_adjustment_in_read_only_page_does_not_page_fault():
    cpu, seen = machine()
    _page_tables(cpu)
    assert run_arpl(cpu, 2, 2) == 0x0012                # equal RPLs: no change
    assert seen == []
    assert not cpu.get_flags() & ZF


def test_adjustment_in_read_only_page_is_a_write_page_fault():
    cpu, seen = machine()
    _page_tables(cpu)
    assert run_arpl(cpu, 0, 3) == 0x0010
    assert seen == [(14, 0b011)]                        # P = 1, W = 1, supervisor
    assert cpu.cr2 == DATA
