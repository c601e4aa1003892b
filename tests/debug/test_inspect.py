"""aero.debug.inspect against real guests: the system-architecture ROMs in tests/guests (run on a
bare CPU with aero.testing.romrun.build_machine, stopped where their tables exist) and the pmode
scenario on a full machine.  Expected values come from the guests' sources (common.inc's
GDT_COMMON and layout, each guest's page tables and comments), not from the decoder itself.
Every inspection function is also checked to leave the machine exactly as it was."""

from __future__ import annotations

import os
import struct
import time

import pytest

from aero.cpu.state import state_hash
from aero.debug import inspect as I
from aero.testing.romrun import build_machine

GUESTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "guests"))

# common.inc layout
GDT_BASE, IDT_BASE, TSS_BASE = 0x1000, 0x2000, 0x3000
SEL_CODE0, SEL_DATA0, SEL_CODE3, SEL_DATA3, SEL_TSS = 0x08, 0x10, 0x1B, 0x23, 0x28
STACK0, STACK0_TSS = 0x8F000, 0x8E000


class Guest:
    """A guest ROM on a bare CPU, run until a console line or an interrupt says stop."""

    def __init__(self, name: str):
        with open(os.path.join(GUESTS, name + ".bin"), "rb") as f:
            self.bus, self.cpu = build_machine(f.read())
        self.console = bytearray()
        self.stop_line = None
        self.stop_irq = None
        self.done = False
        cpu, bus = self.cpu, self.bus

        def port_out(port, size, value):
            if port == 0xE9:
                self.console.append(value & 0xFF)
                if self.stop_line and self.console.endswith(self.stop_line):
                    cpu.request_stop()
            elif port == 0xF4:
                self.done = True
                cpu.request_stop()
            elif port == 0x92:
                bus.set_a20(bool(value & 2))

        def port_in(port, size):
            if port == 0x92:
                return 2 if bus.a20 else 0
            return (1 << (8 * size)) - 1

        def on_interrupt(vector, code, kind, eip):
            if self.stop_irq is not None and self.stop_irq(vector, cpu):
                cpu.request_stop()

        cpu.port_out, cpu.port_in = port_out, port_in
        cpu.on_interrupt = on_interrupt

    def run(self, line: str | None = None, irq=None, limit: int = 3_000_000) -> "Guest":
        """Run until the console prints ``line`` (a whole line), ``irq(vector, cpu)`` is true
        at an interrupt delivery (the stop lands at the handler), or the guest ends."""
        self.stop_line = (line + "\n").encode() if line else None
        self.stop_irq = irq
        start = self.cpu.icount
        while self.cpu.icount - start < limit:
            why = self.cpu.run(100_000)
            if why in ("stop", "halt", "shutdown") or self.done:
                break
        assert b"FAIL" not in self.console, self.console.decode()
        if line:
            assert self.console.endswith(self.stop_line), self.console.decode()[-300:]
        return self

    def ram32(self, addr: int) -> int:
        return struct.unpack_from("<I", self.bus.ram, addr)[0]

    def ram64(self, addr: int) -> int:
        return struct.unpack_from("<Q", self.bus.ram, addr)[0]

    def put32(self, addr: int, v: int) -> None:
        struct.pack_into("<I", self.bus.ram, addr, v)


def fingerprint(g: Guest):
    """Everything an inspection could disturb on a bare CPU: CPU state, TLB and all of RAM
    (state_hash), the TLB dict and generation, the lazy flags, page flags and dirty pages."""
    cpu, bus = g.cpu, g.bus
    return (state_hash(cpu), dict(cpu.mmu.tlb), cpu.mmu.gen, cpu.lf, cpu.flags,
            bytes(bus.rslow), bytes(bus.wslow), set(bus.dirty), list(cpu.mmu.pdpte))


def inspect_everything(target, machine=None) -> None:
    """Call every inspection function and formatter once."""
    r = I.registers(target)
    assert I.format_registers(r)
    for rows in (I.gdt(target), I.ldt(target)):
        I.format_descriptors(rows, skip_empty=False)
    I.format_idt(I.idt(target))
    I.format_ivt(I.ivt(target))
    I.format_idt(I.interrupt_table(target))
    I.format_tss(I.tss(target))
    I.format_tss(I.tss(target, SEL_TSS))
    for lin in (0, 0x400000, 0x401000, 0x800000, 0xA00000, 0x40000010, 0xFFFFF000):
        I.format_walk(I.walk(target, lin))
        I.translate(target, lin)
    I.format_address_space(I.address_space(target))
    I.format_tlb(I.tlb(target))
    I.format_dump(I.dump(target, 0x3FF0, 64, unit=4))
    I.format_dump(I.dump(target, 0xA0000, 64, space="physical", unit=2))
    I.format_dump(I.dump(target, 0xFFFFFFF0, 64))
    I.format_stack(I.stack(target, 16))
    I.format_backtrace(I.backtrace(target))
    I.descriptor(target, SEL_DATA0)
    I.read_linear(target, 0x7FF0, 64)
    I.read_physical(target, 0xFEBFFFF0, 64)
    if machine is not None:
        I.format_devices(I.devices(machine))
        I.format_pci(I.pci_functions(machine))


# ---------------------------------------------------------------------------------------------
# Registers, descriptor tables
# ---------------------------------------------------------------------------------------------
def check_gdt_common(rows) -> None:
    """GDT_COMMON (tests/guests/common.inc), decoded."""
    assert rows[0].type == "null"
    code0, data0, code3, data3, tss, code16, data16 = rows[1:8]
    for d, dpl, kind in ((code0, 0, "code RX"), (data0, 0, "data RW"), (code3, 3, "code RX"),
                         (data3, 3, "data RW")):
        assert (d.type, d.dpl, d.present, d.base, d.limit, d.bits, d.g) == (
            kind, dpl, True, 0, 0xFFFFFFFF, 32, True)
    assert (code0.selector, data3.selector, tss.selector) == (0x08, 0x20, 0x28)
    assert (tss.base, tss.limit, tss.bits, tss.dpl) == (TSS_BASE, 0x2068, 32, 0)
    assert tss.type in ("TSS32 available", "TSS32 busy")
    assert (code16.type, code16.base, code16.limit, code16.bits) == (
        "code RX", 0xF0000, 0xFFFF, 16)
    assert (data16.type, data16.base, data16.limit, data16.bits, data16.g) == (
        "data RW", 0, 0xFFFF, 16, False)
    assert rows[1].raw == bytes.fromhex("ffff0000009bcf00")


def check_common_idt(rows) -> None:
    """build_idt: 32 interrupt gates (0x8E00, SEL_CODE0, exc_stubs + 16 * vector), IDT limit
    0x7FF, so 256 vectors of which the others are zero."""
    assert len(rows) == 256
    stubs = rows[0].offset
    for v in range(32):
        if v in (10, 13, 14) and rows[v].gate_selector != SEL_CODE0:
            continue                # the task_switch / paging guests reroute some vectors
        g = rows[v]
        assert (g.type, g.gate_selector, g.dpl, g.present) == (
            "interrupt gate 32", SEL_CODE0, 0, True), v
        if v not in (13, 14):
            assert g.offset == stubs + 16 * v
    assert 0xF0000 <= stubs < 0x100000


def test_pm_entry_real_mode_unreal_and_ivt():
    # pm_entry goes back to real mode with 4 GiB limits in DS/ES, loads an IVT (base 0, limit
    # 0x3FF) with vector 13 -> F000:rm_gp and faults on a read past FS's 64 KiB limit
    g = Guest("pm_entry").run(irq=lambda v, cpu: v == 13 and not cpu.cr0 & 1)
    cpu = g.cpu
    r = I.registers(cpu)
    assert (r.operating_mode, r.paging, r.cpl, r["mode"]) == ("real", False, 0,
                                                               "real, paging off")
    assert r.segment("cs").selector == 0xF000 and r.segment("cs").base == 0xF0000
    assert r.segment("ds").limit == 0xFFFFFFFF and r.segment("fs").limit == 0xFFFF
    assert "unreal: ds limit ffffffff" in r.notes
    assert "PE" not in r.cr0_set and r.idtr == (0, 0x3FF)
    vt = I.interrupt_table(cpu)
    assert isinstance(vt[0], I.IVTEntry) and len(vt) == 256
    assert (vt[13].segment, vt[13].offset) == (0xF000, cpu.eip)
    assert vt[13].linear == 0xF0000 + cpu.eip
    text = I.format_idt(vt)
    assert f"0d   f000:{cpu.eip:04x}" in text
    # the GDT is still there: GDT_COMMON plus pm_entry's own descriptors
    rows = I.gdt(cpu)
    assert len(rows) == 12                  # GDTR.limit = 12 * 8 - 1: nothing beyond
    check_gdt_common(rows)
    d40, ldt, ed, xonly = rows[8:12]
    # 0x40 data16 base 0x20000 (loaded once: the CPU set its accessed bit, 0x92 -> 0x93)
    assert (d40.type, d40.base, d40.limit, d40.accessed, d40.raw[5]) == (
        "data RW", 0x20000, 0xFFFF, True, 0x93)
    assert (ldt.type, ldt.base, ldt.limit, ldt.s) == ("LDT", 0x7000, 0x17, False)
    assert (ed.type, ed.limit, ed.bits, ed.g) == ("data RW expand-down", 0xFFF, 32, False)
    assert (xonly.type, xonly.limit) == ("code X", 0xFFFFFFFF)
    assert I.tss(cpu).fields == [] and "null" in I.tss(cpu).note    # pm_entry never does LTR


def test_pm_entry_ldt_and_selectors():
    g = Guest("pm_entry").run("PASS ldt-segment-base")
    cpu = g.cpu
    r = I.registers(cpu)
    assert r.operating_mode == "protected 32-bit" and r["mode"] == "protected 32-bit, paging off"
    assert (r.ldtr.selector, r.ldtr.base, r.ldtr.limit, r.ldtr.type, r.ldtr.usable) == (
        0x48, 0x7000, 0x17, "LDT", True)
    assert (r.gdtr, r.segment("cs").selector, r.segment("ss").selector) == (
        (GDT_BASE, 12 * 8 - 1), SEL_CODE0, SEL_DATA0)
    rows = I.ldt(cpu)
    assert [d.selector for d in rows] == [0x04, 0x0C, 0x14]         # limit 0x17: 3 entries
    assert rows[0].type == rows[2].type == "empty"      # an LDT has no null descriptor
    # LDT entry 1: DESC 0x30000, 0xFFFF, 0x93, 0 (FS was loaded from it)
    d = rows[1]
    assert (d.type, d.base, d.limit, d.dpl, d.present, d.accessed, d.bits) == (
        "data RW", 0x30000, 0xFFFF, 0, True, True, 16)
    assert I.descriptor(cpu, 0x0C)["base"] == 0x30000
    assert I.descriptor(cpu, 0x0F).base == 0x30000              # RPL ignored
    assert I.descriptor(cpu, 0x40).base == 0x20000
    assert I.descriptor(cpu, 0) is None
    assert I.descriptor(cpu, 0x1238) is None                    # beyond the GDT limit
    assert I.descriptor(cpu, 0x1C) is None                      # beyond the LDT limit
    text = I.format_descriptors(rows)
    assert "000c" in text and "data RW" in text and "2 empty entries not shown" in text
    check_common_idt(I.idt(cpu))
    check_gdt_common(I.gdt(cpu))


def test_privilege_call_gate_conforming_and_io_bitmap():
    g = Guest("privilege").run("PASS io-bitmap-allows-port")
    cpu = g.cpu
    rows = I.gdt(cpu)
    check_gdt_common(rows)
    assert rows[5].type == "TSS32 busy"                         # after LTR
    gate = rows[8]                                              # 0x40
    assert (gate.type, gate.dpl, gate.gate_selector, gate.params, gate.present) == (
        "call gate 32", 3, SEL_CODE0, 2, True)
    assert gate.is_gate and gate.base is None
    assert 0xF0000 <= gate.offset < 0x100000
    assert f"-> 0008:{gate.offset:08x} params=2" in I.format_descriptors(rows)
    conf = rows[9]                                              # 0x48
    assert (conf.type, conf.dpl, conf.limit) == ("code RX conforming", 0, 0xFFFFFFFF)
    idt = I.idt(cpu)
    assert (idt[0x30].type, idt[0x30].dpl, idt[0x31].dpl, idt[0x32].dpl) == (
        "interrupt gate 32", 3, 0, 3)
    # the guest points the I/O map base at 0x68: a bitmap inside the 0x2068 limit
    t = I.tss(cpu)
    assert (t.selector, t.kind, t.busy, t.base, t.limit) == (SEL_TSS, "32-bit", True,
                                                              TSS_BASE, 0x2068)
    assert (t.value("SS0"), t.value("ESP0"), t.io_map_base) == (SEL_DATA0, STACK0_TSS, 0x68)
    assert t.io_bitmap_inside and t.io_bitmap_bytes == 0x2068 - 0x68 + 1
    assert "I/O bitmap at +0068" in I.format_tss(t)


# ---------------------------------------------------------------------------------------------
# TSS
# ---------------------------------------------------------------------------------------------
def test_task_switch_tss_in_a_nested_task():
    # INT 0x40 goes through a task gate to TSS B (init_tss_b: tb_nested): stop in task B
    g = Guest("task_switch").run(irq=lambda v, cpu: v == 0x40)
    cpu = g.cpu
    assert I.registers(cpu).tr.selector == 0x40
    assert "NT" in I.registers(cpu).eflags_set
    idt = I.idt(cpu)
    assert (idt[0x40].type, idt[0x40].gate_selector, idt[0x40].offset) == (
        "task gate", 0x40, None)
    assert "-> 0040" in I.format_idt(idt)
    check_common_idt(idt)
    rows = I.gdt(cpu)
    check_gdt_common(rows)
    assert [rows[i].type for i in (5, 8, 9, 10)] == [
        "TSS32 busy", "TSS32 busy", "TSS32 available", "TSS32 available"]
    assert [(rows[i].base, rows[i].limit) for i in (8, 9, 10)] == [
        (0x6000, 0x67), (0x6100, 0x50), (0x6200, 0x67)]
    # the current task: TSS B as init_tss_b filled it, with the back link to task A
    t = I.tss(cpu)
    assert (t.selector, t.base, t.limit, t.kind, t.busy, t.source) == (
        0x40, 0x6000, 0x67, "32-bit", True, "TR cache")
    assert t.value("EIP") == cpu.eip                      # tb_nested, where task B starts
    assert (t.value("back link"), t.value("EFLAGS"), t.value("EAX"), t.value("ESP")) == (
        SEL_TSS, 0x2, 0xB0B0B0B0, 0x8C000)
    assert [t.value(n) for n in ("ES", "CS", "SS", "DS", "FS", "GS", "LDT")] == [
        SEL_DATA0, SEL_CODE0, SEL_DATA0, SEL_DATA0, SEL_DATA0, SEL_DATA0, 0]
    assert (t.io_map_base, t.io_bitmap_inside, t.io_bitmap_bytes, t.t_bit) == (
        0x68, False, 0, False)
    assert not any(f.beyond_limit for f in t.fields) and t.note == ""
    # task A's TSS (selector 0x28): its state saved by the switch
    a = I.tss(cpu, SEL_TSS)
    assert (a.source, a.base, a.limit, a.busy) == ("GDT", TSS_BASE, 0x2068, True)
    assert (a.value("EAX"), a.value("SS0"), a.value("ESP0")) == (0xA2A2A2A2, SEL_DATA0,
                                                                 STACK0_TSS)
    assert a.value("CS") == SEL_CODE0 and 0xF0000 <= a.value("EIP") < 0x100000
    assert (a.io_map_base, a.io_bitmap_inside) == (0x3000, False)    # setup_tss: no bitmap
    # TSS C: limit 0x50 is below 0x67; the fields past it are flagged
    c = I.tss(cpu, 0x48)
    assert "below the minimum" in c.note
    past = [f.name for f in c.fields if f.beyond_limit]
    assert past[0] == "SS" and past[-1] == "I/O map base"      # SS is at 0x50-0x51
    assert "past limit" in I.format_tss(c)
    # selectors that do not name a TSS
    assert I.tss(cpu, SEL_CODE0).kind is None and "not a TSS" in I.tss(cpu, SEL_CODE0).note
    assert I.tss(cpu, 0x1238).fields == []


def test_tss16_hand_made():
    # no guest uses a 16-bit TSS: build one in RAM with a GDT pointing at it
    bus, cpu = build_machine(open(os.path.join(GUESTS, "pm_entry.bin"), "rb").read())
    gdt = 0x1000
    bus.ram[gdt: gdt + 16] = bytes(8) + struct.pack("<HHBBBB", 0x2B, 0x5000, 0, 0x81, 0, 0)
    cpu.gdtr[:] = [gdt, 15]
    fields = [0x18, 0x1111, 0x10, 0, 0, 0, 0, 0x1234, 0x0202] + list(range(0xA0, 0xA8)) + \
        [0x20, 0x28, 0x30, 0x38, 0x40]
    bus.ram[0x5000: 0x5000 + 44] = struct.pack("<22H", *fields)
    t = I.tss(cpu, 0x08)
    assert (t.kind, t.busy, t.base, t.limit) == ("16-bit", False, 0x5000, 0x2B)
    assert [t.value(n) for n in ("back link", "SP0", "SS0", "IP", "FLAGS", "AX", "DI", "ES",
                                 "CS", "SS", "DS", "LDT")] == [
        0x18, 0x1111, 0x10, 0x1234, 0x0202, 0xA0, 0xA7, 0x20, 0x28, 0x30, 0x38, 0x40]
    assert t.io_map_base is None and "16-bit available" in I.format_tss(t)
    assert I.gdt(cpu)[1].type == "TSS16 available" and I.gdt(cpu)[1].bits == 16


def test_descriptor_table_limits_unreadable_and_empty():
    g = Guest("paging32").run()
    cpu = g.cpu
    saved = list(cpu.gdtr), list(cpu.idtr)
    try:
        cpu.gdtr[:] = [GDT_BASE, 0x1A]          # 3 whole entries and part of a fourth
        assert [d.index for d in I.gdt(cpu)] == [0, 1, 2]
        cpu.gdtr[:] = [GDT_BASE, 0]             # less than one entry
        assert I.gdt(cpu) == [] and I.format_descriptors([]) == "(empty table)"
        cpu.gdtr[:] = [0x402000 - 8, 0x17]      # linear 0x402000 is not present
        rows = I.gdt(cpu)
        assert [d.type for d in rows] == ["null", "unreadable", "unreadable"]
        assert rows[1].raw is None and rows[1].base is None
        assert "-- -- --" in I.format_descriptors(rows)
        cpu.idtr[:] = [0x401FF0, 0xFF]          # half present, half not
        rows = I.idt(cpu)
        assert len(rows) == 32 and rows[1].type != "unreadable"
        assert rows[2].type == "unreadable" and rows[31].type == "unreadable"
        cpu.idtr[:] = [IDT_BASE, 0x3F]
        assert len(I.idt(cpu)) == 8
    finally:
        cpu.gdtr[:], cpu.idtr[:] = saved


# ---------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------
PT1 = 0x102000


def test_paging32_walk_and_accessed_dirty_bits():
    g = Guest("paging32").run("PASS untouched-pte-no-accessed")
    cpu = g.cpu
    r = I.registers(cpu)
    assert r.paging and not r.pae and "PSE" in r.cr4_set and r.cr3_base == 0x100000
    assert r["mode"] == "protected 32-bit, paging on"
    # LIN + 0x10 was written: PTE1(0) gets A and D; the PDE of the table A only
    w = I.walk(cpu, 0x400010)
    assert w.paging == "32-bit" and [lv.name for lv in w.levels] == ["PDE", "PTE"]
    pde, pte = w.levels
    assert (pde.address, pde.raw) == (0x100004, 0x102000 | 0x27)
    assert "A" in pde.flags and "D" not in pde.flags
    assert (pte.address, pte.raw, pte.flags) == (PT1, 0x200063, ["P", "RW", "A", "D"])
    assert (w.physical, w.page_size, w.user, w.writable, w.fault) == (
        0x200010, 4096, False, True, None)
    # LIN + 0x3000 was only read: A, not D
    assert I.walk(cpu, 0x403008).levels[1].flags == ["P", "RW", "US", "A"]
    # PTE1(1) is untouched: neither A nor D, and walking it sets nothing
    before = g.ram32(PT1 + 4)
    w = I.walk(cpu, 0x401000)
    assert w.levels[1].flags == ["P"] and not w.writable and w.physical == 0x201000
    assert g.ram32(PT1 + 4) == before == 0x201001 and 0x401 not in cpu.mmu.tlb
    # not present, supervisor PDE with a user PTE, read-only PDE with a writable PTE
    assert I.walk(cpu, 0x402004).fault == "not present at PTE"
    assert I.walk(cpu, 0x402004).physical is None
    assert I.walk(cpu, 0x1000000).user is False
    assert I.walk(cpu, 0x1400000).writable is False and I.walk(cpu, 0x1400000).user
    assert I.walk(cpu, 0x1800000).fault == "not present at PDE"
    assert "not present at PTE" in I.format_walk(I.walk(cpu, 0x402004))
    assert "-> physical 00200010" in I.format_walk(I.walk(cpu, 0x400010))
    # the TLB holds LIN (filled by the write); translate uses it, the walk agrees
    assert cpu.mmu.tlb[0x400][0] == 0x200000
    assert I.translate(cpu, 0x400123) == I.translate(cpu, 0x400123, tlb=False) == 0x200123
    assert I.translate(cpu, 0x402000) is None


def test_paging32_4m_pages_and_address_space():
    g = Guest("paging32").run()
    cpu = g.cpu
    assert g.done and b"DONE fails=0x00000000" in g.console
    # PD[3] (linear 0xC00000) was written: A and D; PD[2] (0x800000) only read: A
    w = I.walk(cpu, 0xC01234)
    assert (len(w.levels), w.page_size, w.physical, w.user, w.writable) == (
        1, 4 << 20, 0x401234, True, True)
    assert w.levels[0].flags == ["P", "RW", "US", "A", "D", "PS"]
    assert I.walk(cpu, 0x801234).levels[0].flags == ["P", "RW", "US", "A", "PS"]
    # the PDE of a page table never gets D (pde-accessed-not-dirty)
    assert I.walk(cpu, 0x400000).levels[0].raw == 0x102027
    # PTE1(3): read then written from ring 3 -> A D; PTE1(7) mapped on demand and written
    assert I.walk(cpu, 0x403000).levels[1].raw == 0x203067
    assert I.walk(cpu, 0x407000).levels[1].raw == 0x207063
    t0 = time.perf_counter()
    a = I.address_space(cpu)
    assert time.perf_counter() - t0 < 0.5
    got = [(r.linear, r.end, r.physical, r.flags) for r in a.runs]
    assert got == [
        (0x000000, 0x3FFFFF, 0x000000, "RW U"),         # PT0: identity, user + writable
        (0x400000, 0x400FFF, 0x200000, "RW S"),         # PTE1(0) supervisor RW
        (0x401000, 0x401FFF, 0x201000, "R S"),          # PTE1(1) supervisor read-only
        (0x403000, 0x403FFF, 0x203000, "RW U"),         # PTE1(3) user RW
        (0x404000, 0x404FFF, 0x204000, "R U"),          # PTE1(4) user read-only
        (0x405000, 0x407FFF, 0x205000, "RW S"),         # PTE1(5-7): 0x205000-0x207000
        (0x800000, 0xBFFFFF, 0x400000, "RW U"),         # 4 MiB page
        (0xC00000, 0xFFFFFF, 0x400000, "RW U"),         # the same frame again
        (0x1000000, 0x1000FFF, 0x206000, "RW S"),       # supervisor PDE, user PTE
        (0x1400000, 0x1400FFF, 0x207000, "R U"),        # read-only PDE, writable PTE
    ]
    assert a.mapped_bytes == sum(r.pages for r in a.runs) * 4096
    assert not a.truncated and a.problems == []
    text = I.format_address_space(a)
    assert "00800000-00bfffff  000400000    4M  RW U" in text


def test_address_space_full_32bit_map_is_fast():
    # 1024 page tables of 1024 present entries each (all of 4 GiB, identity): one run; then
    # every other page read-only: 2^19 runs, cut at max_runs
    bus, cpu = build_machine(open(os.path.join(GUESTS, "paging32.bin"), "rb").read())
    pd, pts = 0x100000, 0x400000
    bus.ram[pd: pd + 4096] = struct.pack("<1024I", *[(pts + 4096 * i) | 7 for i in range(1024)])
    import numpy as np
    ptes = (np.arange(1 << 20, dtype=np.uint64) << 12) | 7
    bus.ram[pts: pts + (4 << 20)] = ptes.astype("<u4").tobytes()
    cpu.write_cr3(pd)
    cpu.write_cr0(cpu.cr0 | 1 | 0x80000000)
    t0 = time.perf_counter()
    a = I.address_space(cpu)
    elapsed = time.perf_counter() - t0
    assert [(r.linear, r.end, r.physical, r.flags) for r in a.runs] == [
        (0, 0xFFFFFFFF, 0, "RW U")]
    assert a.mapped_bytes == 1 << 32 and elapsed < 1.0
    ptes[1::2] &= ~np.uint64(2)
    bus.ram[pts: pts + (4 << 20)] = ptes.astype("<u4").tobytes()
    t0 = time.perf_counter()
    a = I.address_space(cpu, max_runs=3000)
    elapsed = time.perf_counter() - t0
    assert a.truncated and len(a.runs) == 3000 and elapsed < 1.0
    assert (a.runs[1].linear, a.runs[1].flags, a.runs[1].pages) == (0x1000, "R U", 1)
    assert "(truncated)" in I.format_address_space(a)


def test_pae_walk_nx_reserved_and_pdpte_cache():
    # stop after the NX fetch checks, while EFER.NXE is still set
    g = Guest("pae").run("PASS nx-fetch-2m-eip")
    cpu = g.cpu
    r = I.registers(cpu)
    assert r.pae and "NXE" in r.efer_set and r["mode"] == "protected 32-bit, paging on (PAE)"
    w = I.walk(cpu, 0x400010)                  # PT1[0]: written -> A D
    assert [lv.name for lv in w.levels] == ["PDPTE", "PDE", "PTE"]
    assert w.levels[0].raw == 0x101001 and w.levels[0].note == ""
    assert (w.levels[1].address, w.levels[1].raw) == (0x101010, 0x103023)    # PDE A only
    assert (w.levels[2].raw, w.physical, w.nx) == (0x210063, 0x210010, False)
    nx4k = I.walk(cpu, 0x401000)                # PT1[1]: XD
    assert nx4k.nx and "NX" in nx4k.levels[2].flags and nx4k.physical == 0x211000
    w2m = I.walk(cpu, 0x600100)                 # 2 MiB page written: A D
    assert (w2m.page_size, w2m.physical) == (2 << 20, 0x800100)
    assert w2m.levels[1].flags == ["P", "RW", "A", "D", "PS"]
    assert I.walk(cpu, 0x800000).nx and I.walk(cpu, 0x800000).page_size == 2 << 20
    assert I.walk(cpu, 0xA00000).fault == "reserved bits set at PDE"          # bit 13
    assert I.walk(cpu, 0x40000010).fault == "not present at PDPTE"
    a = I.address_space(cpu)
    got = [(r.linear, r.end, r.physical, r.flags) for r in a.runs]
    assert got == [
        (0x000000, 0x3FFFFF, 0x000000, "RW S"),      # PT0 (0-2 MiB) + 2 MiB identity page
        (0x400000, 0x400FFF, 0x210000, "RW S"),
        (0x401000, 0x401FFF, 0x211000, "RW S NX"),
        (0x402000, 0x402FFF, 0x212000, "RW S"),
        (0x403000, 0x403FFF, 0x213000, "RW S NX"),
        (0x600000, 0x7FFFFF, 0x800000, "RW S"),
        (0x800000, 0x9FFFFF, 0x800000, "RW S NX"),
    ]
    assert a.problems == ["00a00000: reserved bits set in PDE 0000000000a02083"]
    # the CPU uses the PDPTEs loaded at the CR3 write: edit the PDPT in memory
    old = g.ram32(0x100000)
    g.put32(0x100000, 0)
    try:
        w = I.walk(cpu, 0x400010)
        assert w.physical == 0x210010 and "memory holds 0000000000000000" in w.levels[0].note
        assert I.address_space(cpu).runs[0].linear == 0
    finally:
        g.put32(0x100000, old)


def test_pae_after_nxe_cleared_xd_is_reserved():
    g = Guest("pae").run()
    cpu = g.cpu
    assert "NXE" not in I.registers(cpu).efer_set
    assert I.walk(cpu, 0x403000).fault == "reserved bits set at PTE"
    a = I.address_space(cpu)
    assert "00403000: reserved bits set in PTE 8000000000213003" in a.problems
    assert all("NX" not in r.flags for r in a.runs)
    # entries filled while NXE was set are kept by the TLB: they no longer match memory
    rows = {r.linear: r for r in I.tlb(cpu)}
    assert rows[0x401000].stale and "reserved bits" in rows[0x401000].reasons[0]


# ---------------------------------------------------------------------------------------------
# TLB
# ---------------------------------------------------------------------------------------------
def test_tlb_guest_stale_entries():
    g = Guest("tlb").run("PASS tlb-stale-after-pte-edit")
    cpu = g.cpu
    rows = {r.linear: r for r in I.tlb(cpu)}
    r = rows[0x400000]                  # filled with FRAME_A; the PTE now says FRAME_B
    assert (r.physical, r.now_physical, r.stale, r.reasons) == (
        0x210000, 0x211000, True, ["physical"])
    assert [x.linear for x in rows.values() if x.stale] == [0x400000]
    assert "STALE: physical (now 000211000" in I.format_tlb(list(rows.values()))
    # reads follow the TLB (as the guest does: tlb-stale-after-pte-edit reads 0xAAAAAAAA)
    assert I.translate(cpu, 0x400000) == 0x210000
    assert I.translate(cpu, 0x400000, tlb=False) == 0x211000
    assert I.read_int(cpu, 0x400000, 4) == 0xAAAAAAAA
    assert I.read_int(cpu, 0x400000, 4, tlb=False) == 0xBBBBBBBB
    w = I.walk(cpu, 0x400000)
    assert w.physical == 0x211000 and w.tlb == (0x210000, "W")     # filled by a read
    # global entry kept across a CR3 load, stale after its PTE went back to FRAME_A
    g.run("PASS tlb-global-stale")
    rows = {r.linear: r for r in I.tlb(cpu)}
    r = rows[0x401000]
    assert "G" in r.bits.split() and r.stale and r.now_physical == 0x210000
    assert "G" in r.now_bits.split()


def test_tlb_stale_after_editing_ptes_in_ram():
    g = Guest("paging32").run()
    cpu = g.cpu
    assert not any(r.stale for r in I.tlb(cpu))
    rows = {r.linear: r for r in I.tlb(cpu)}
    assert rows[0x403000].bits == "U W D"
    assert rows[0x400000].bits == "W D" and rows[0x401000].bits == "D"
    g.put32(PT1 + 3 * 4, 0x203065)         # PTE1(3) read-only now
    g.put32(PT1 + 0 * 4, 0)                # PTE1(0) not present now
    g.put32(PT1 + 6 * 4, 0x206023)         # PTE1(6): D cleared, entry still says dirty
    rows = {r.linear: r for r in I.tlb(cpu)}
    assert rows[0x403000].reasons == ["W"]
    assert rows[0x400000].reasons == ["not mapped now (not present at PTE)"]
    assert rows[0x406000].reasons == ["D clear in memory"]
    assert sum(r.stale for r in rows.values()) == 3


# ---------------------------------------------------------------------------------------------
# Memory, stack
# ---------------------------------------------------------------------------------------------
def test_dump_and_readers():
    g = Guest("paging32").run()
    cpu = g.cpu
    rows = I.dump(cpu, GDT_BASE + 8, 8, space="physical", unit=4)
    assert rows[0].values == [0x0000FFFF, 0x00CF9B00] and rows[0].address == 0x1008
    rows = I.dump(cpu, 0x401FF8, 16)                        # mapped, then not present
    assert rows[0].values[:8] == list(g.bus.ram[0x201FF8:0x202000])
    assert rows[0].values[8:] == [None] * 8 and rows[0].ascii.endswith(" " * 8)
    assert I.format_dump(rows).count("--") == 8
    rows = I.dump(cpu, 0x401FFE, 4, unit=2)
    assert rows[0].values[1] is None and rows[0].unit == 2
    assert I.read_linear_bytes(cpu, 0x401FFE, 4) is None
    assert I.read_linear_bytes(cpu, 0x400010, 4) == (0x13572468).to_bytes(4, "little")
    # unmapped physical space and beyond: None, never an exception
    assert I.read_physical(cpu, 0x10000000, 4) == [None] * 4
    top = g.bus.rom_pages[0xFFFFF]                         # the ROM's last page, below 4 GiB
    assert I.read_physical(cpu, 0xFFFFFFFE, 4) == [top[0xFFE], top[0xFFF], None, None]
    assert I.read_physical_bytes(cpu, 0xFFFF0, 16) == bytes(g.bus.ram[0xFFFF0:0x100000])
    # linear wrap at 4 GiB (0xFFFFF000 is not mapped by paging32)
    rows = I.dump(cpu, 0xFFFFFFF8, 16)
    assert rows[0].values == [None] * 8 + list(g.bus.ram[0:8])
    with pytest.raises(ValueError):
        I.dump(cpu, 0, 4, unit=3)
    text = I.format_dump(I.dump(cpu, 0xF0000, 32, unit=1))
    assert text.startswith("000f0000  ")


def test_stack_and_backtrace_32bit():
    g = Guest("paging32").run()
    cpu = g.cpu
    # a frame chain in free RAM: f0 -> f1 -> f2 -> 0, return addresses in the ROM
    f0, f1, f2 = 0x60000, 0x60100, 0x60200
    for fp, nxt, ret in ((f0, f1, 0xF1111), (f1, f2, 0xF2222), (f2, 0, 0xF3333)):
        g.put32(fp, nxt)
        g.put32(fp + 4, ret)
    cpu.R[4], cpu.R[5] = f0 - 8, f0
    g.put32(f0 - 8, 0x12345678)
    slots = I.stack(cpu, 4)
    assert [(s.address, s.value, s.size) for s in slots] == [
        (f0 - 8, 0x12345678, 4), (f0 - 4, g.ram32(f0 - 4), 4), (f0, f1, 4), (f0 + 4, 0xF1111, 4)]
    assert slots[0].marks == ["esp"] and slots[2].marks == ["ebp"]
    assert "<- ebp" in I.format_stack(slots)
    bt = I.backtrace(cpu)
    assert [(f.frame, f.return_eip, f.return_cs) for f in bt] == [
        (f0, 0xF1111, SEL_CODE0), (f1, 0xF2222, SEL_CODE0), (f2, 0xF3333, SEL_CODE0)]
    assert bt[0]["return_linear"] == 0xF1111 and bt.reason == "frame pointer is 0"
    g.put32(f1, f0)                                   # a loop: stops, does not spin
    bt = I.backtrace(cpu)
    assert len(bt) == 2 and "does not increase" in bt.reason
    g.put32(f1, 0x402000)                             # not present
    bt = I.backtrace(cpu)
    assert len(bt) == 2 and "unreadable" in bt.reason
    assert "(stopped:" in I.format_backtrace(bt)


def test_stack_and_backtrace_16bit_real_mode():
    bus, cpu = build_machine(open(os.path.join(GUESTS, "pm_entry.bin"), "rb").read())
    cpu.load_seg_real(1, 0xF000)                      # CS base F0000h (at reset FFFF0000h)
    cpu.load_seg_real(2, 0x2000)                      # SS = 2000h (base 0x20000, B = 0)
    cpu.R[4], cpu.R[5] = 0xFFF0FFF0, 0x1000           # SP = FFF0h: the upper half is ignored
    struct.pack_into("<HH", bus.ram, 0x20000 + 0xFFF0, 0xBEEF, 0xCAFE)
    struct.pack_into("<HH", bus.ram, 0x21000, 0x1100, 0x0123)
    struct.pack_into("<HH", bus.ram, 0x21100, 0, 0x0456)
    slots = I.stack(cpu, 2)
    assert [(s.offset, s.address, s.value, s.size) for s in slots] == [
        (0xFFF0, 0x2FFF0, 0xBEEF, 2), (0xFFF2, 0x2FFF2, 0xCAFE, 2)]
    bt = I.backtrace(cpu)
    assert [(f.frame, f.return_cs, f.return_eip, f.return_linear) for f in bt] == [
        (0x1000, 0xF000, 0x0123, 0xF0123), (0x1100, 0xF000, 0x0456, 0xF0456)]
    r = I.registers(cpu)
    assert r.segment("ss").base == 0x20000 and r.operating_mode == "real"


# ---------------------------------------------------------------------------------------------
# Dict-style access (the debugger's commands read rows like dicts)
# ---------------------------------------------------------------------------------------------
def test_rows_read_like_dicts():
    g = Guest("pm_entry").run("PASS ldt-segment-base")
    r = I.registers(g.cpu)
    assert r["cpl"] == 0 and r.get("nope", 7) == 7 and "mode" in r.keys()
    with pytest.raises(KeyError):
        r["nope"]
    assert r.as_dict()["ldtr"]["base"] == 0x7000


# ---------------------------------------------------------------------------------------------
# No side effects
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,line", [
    ("paging32", "PASS 4k-read-sets-accessed-only"),   # A/D bits still clear in places
    ("paging32", None),
    ("pae", "PASS nx-fetch-2m-eip"),
    ("tlb", "PASS tlb-stale-after-pte-edit"),
    ("task_switch", None),
    ("pm_entry", "PASS ldt-segment-base"),
])
def test_no_side_effects_on_guests(name, line):
    g = Guest(name).run(line)
    cpu = g.cpu
    before = fingerprint(g)                 # (state_hash folds pending lazy flags in)
    inspect_everything(cpu)
    assert fingerprint(g) == before
    # lazy flags pending, as mid-run: registers() reads them without materialising them
    flags, lf = cpu.flags, (0, 0xFFFFFFFF, 1, 0)      # ADD: result 0 with a carry
    cpu.lf = lf
    assert {"CF", "ZF"} <= set(I.registers(cpu).eflags_set)
    inspect_everything(cpu)
    assert cpu.lf is lf and cpu.flags == flags


# ---------------------------------------------------------------------------------------------
# A full machine: the pmode scenario
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pmode_machine(tmp_path_factory):
    from aero import scenarios
    m = scenarios.build(scenarios.load("pmode"), str(tmp_path_factory.mktemp("pmode")))
    h = m.hooks.interrupt(lambda m, ev: True, [14])     # stop at the #PF handler
    r = m.run_until(instructions=5_000_000)
    h.remove()
    assert r.status == "hook"
    yield m
    m.close()


def test_pmode_scenario_tables_and_paging(pmode_machine):
    m = pmode_machine
    before = m.state_hash()
    cpu = m.cpu
    r = I.registers(m)
    assert (r.cr2, r.cr3_base, r["mode"]) == (0x80000010, 0x20000, "protected 32-bit, paging on")
    # IDT: limit 15 * 8 - 1, vector 0Eh a 32-bit interrupt gate to pf_handler (where we are)
    idt = I.idt(m)
    assert len(idt) == 15
    assert (idt[14].type, idt[14].gate_selector, idt[14].offset, idt[14].dpl) == (
        "interrupt gate 32", 0x08, cpu.eip, 0)
    assert all(d.type == "empty" for i, d in enumerate(idt) if i != 14)
    # GDT: null, 08h code 4 GiB, 10h data
    gdt = I.gdt(m)
    assert [(d.type, d.base, d.limit) for d in gdt] == [
        ("null", 0, 0), ("code RX", 0, 0xFFFFFFFF), ("data RW", 0, 0xFFFFFFFF)]
    # paging: 0-4 MiB identity; 40000000h and 40001000h both -> 30000h; 80000000h not yet
    a = I.address_space(m)
    assert [(x.linear, x.end, x.physical) for x in a.runs] == [
        (0, 0x3FFFFF, 0), (0x40000000, 0x40000FFF, 0x30000), (0x40001000, 0x40001FFF, 0x30000)]
    assert I.walk(m, 0x80000010).fault == "not present at PDE"
    assert I.translate(m, 0x40001004) == 0x30004
    assert I.read_int(m, 0x40001000, 4) == 0x12345678           # the alias test's value
    # the VGA window is MMIO with side effects: not read
    assert I.read_physical(m, 0xA0000, 4) == [None] * 4
    assert m.state_hash() == before
    inspect_everything(m, m)
    assert m.state_hash() == before


def test_pmode_scenario_devices_and_pci(pmode_machine):
    m = pmode_machine
    before = m.state_hash()
    secs = I.devices(m)
    assert len(secs) == len(m.devices)
    names = [s.name for s in secs]
    for n in ("pic", "pit", "rtc", "i8042", "COM1", "vga", "fdc", "i440fx", "piix3"):
        assert n in names
    com1 = I.device(m, "COM1")
    assert dict(com1.rows)["port"].startswith("0x3f8")
    assert I.device(m, com1.key) is com1 or I.device(m, com1.key).key == com1.key
    with pytest.raises(KeyError):
        I.device(m, "no-such-device")
    text = I.format_devices(secs)
    assert "[pic]" in text and "master.IMR" in text
    pci = {f.bdf: f for f in I.pci_functions(m)}
    assert (pci["00:00.0"].vendor, pci["00:00.0"].device) == (0x8086, 0x1237)
    assert (pci["00:01.0"].vendor, pci["00:01.0"].device) == (0x8086, 0x7000)
    vga = pci["00:02.0"]
    assert (vga.vendor, vga.device, vga.class_code) == (0x1234, 0x1111, 0x030000)
    bar0 = vga.bars[0]
    assert bar0[:3] == ("BAR0", "mem32", 16 << 20)
    assert "1234:1111" in I.format_pci(list(pci.values()))
    # the linear framebuffer reads without side effects (VRAM bytes)
    if bar0[3] is not None:
        assert I.read_physical(m, bar0[3], 4) == list(m.vga.vram[0:4])
    assert m.state_hash() == before


def test_pmode_scenario_after_the_fault_handler_mapped_the_page(tmp_path):
    from aero import scenarios
    m = scenarios.build(scenarios.load("pmode"), str(tmp_path))
    try:
        r = m.run_until(instructions=5_000_000)
        assert r.status == "debug-exit"
        w = I.walk(m, 0x80000010)
        assert (w.physical, w.levels[0].raw & 0xFFFFF000, w.levels[1].raw) == (
            0x31010, 0x23000, 0x31063)          # written by the retried store: A and D
        runs = [(x.linear, x.physical) for x in I.address_space(m).runs]
        assert (0x80000000, 0x31000) in runs
    finally:
        m.close()
