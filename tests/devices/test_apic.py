"""The local APIC (aero/devices/apic.py): registers, priorities, the timer on virtual time, the
CPU side (INTR/INTA, virtual wire), IA32_APIC_BASE and CPUID on an APIC machine, snapshots, and
tests/guests/apic.asm under Aero and (when installed) QEMU.

Unit rigs run the clock at ips = BUS_HZ, so that one tick is one APIC bus clock: with the divider
at 1 the timer counts once per tick."""

import os
import shutil
import subprocess

import pytest

from aero.clock import Clock
from aero.config import MachineConfig
from aero.cpu.cpu import CPU
from aero.devices.apic import (BUS_HZ, DEFAULT_BASE, ESR_ILLEGAL_REG, ESR_RECV_ILLEGAL,
                               ESR_SEND_ILLEGAL, LocalAPIC)
from aero.machine import Machine
from aero.mem.bus import Bus
from aero.testing import romrun
from aero.testing.fakecpu import FakeCPU

GUESTS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "guests"))
GUEST = os.path.join(GUESTS_DIR, "apic", "apic.bin")

ID, VER, TPR, APR, PPR, EOI, LDR, DFR, SVR = 0x20, 0x30, 0x80, 0x90, 0xA0, 0xB0, 0xD0, 0xE0, 0xF0
ISR, TMR, IRR, ESR, ICR_LO, ICR_HI = 0x100, 0x180, 0x200, 0x280, 0x300, 0x310
LVT_TIMER, LVT_LINT0, LVT_LINT1, LVT_ERROR = 0x320, 0x350, 0x360, 0x370
INIT, CUR, DCR = 0x380, 0x390, 0x3E0


class Rig:
    """A local APIC on a bus, with a fake CPU: INTR levels and NMIs are recorded."""

    def __init__(self, ips=BUS_HZ, **kw):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=ips)
        self.bus = Bus(1 << 20)
        self.intr = []                      # (tick, level)
        self.nmis = []
        self.pic_acks = 0
        self.apic = LocalAPIC(self.bus, self.clock, **kw)
        self.apic.on_intr = lambda lv: self.intr.append((self.clock.now(), lv))
        self.apic.on_nmi = lambda: self.nmis.append(self.clock.now())
        self.apic.pic_ack = self._pic_ack
        self.eois = []
        self.apic.on_eoi = self.eois.append

    def _pic_ack(self):
        self.pic_acks += 1
        return 0x08

    def rd(self, off):
        return self.bus.read32(DEFAULT_BASE + off)

    def wr(self, off, v):
        self.bus.write32(DEFAULT_BASE + off, v)

    def enable(self):
        self.wr(SVR, 0x1FF)

    def advance_to(self, t):
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > t:
                break
            self.cpu.icount = max(self.cpu.icount, ne)
            self.clock.run_due()
        self.cpu.icount = t

    def fires(self, until):
        """Ticks at which the timer raised its vector (acknowledging and EOI-ing each)."""
        out = []
        while True:
            ne = self.clock.next_event()
            if ne is None or ne > until:
                break
            self.advance_to(ne)
            if self.apic.INTR:
                out.append(self.clock.now())
                self.apic.acknowledge()
                self.apic.eoi()
        self.advance_to(until)
        return out


# -- registers ---------------------------------------------------------------------------------

def test_power_on_values():
    r = Rig()
    assert r.rd(ID) == 0
    assert r.rd(VER) == 0x00050014
    assert r.rd(SVR) == 0xFF
    assert r.rd(DFR) == 0xFFFFFFFF
    for off in range(0x320, 0x380, 0x10):
        assert r.rd(off) == 0x10000
    assert r.apic.read_base_msr() == 0xFEE00900


def test_firmware_setup_is_virtual_wire():
    r = Rig(firmware_setup=True)
    assert r.rd(SVR) == 0x1FF
    assert r.rd(LVT_LINT0) == 0x8700
    assert r.rd(LVT_LINT1) == 0x8400
    r.apic.reset()
    assert r.rd(LVT_LINT0) == 0x8700


def test_write_masks():
    r = Rig()
    r.enable()
    r.wr(ID, 0xFFFFFFFF)
    assert r.rd(ID) == 0xFF000000
    r.wr(TPR, 0x1234)
    assert r.rd(TPR) == 0x34
    r.wr(LDR, 0x12345678)
    assert r.rd(LDR) == 0x12000000
    r.wr(DFR, 0)
    assert r.rd(DFR) == 0x0FFFFFFF
    r.wr(SVR, 0xFFFFFFFF)
    assert r.rd(SVR) == 0x3FF
    r.wr(LVT_TIMER, 0xFFFFFFFF)
    assert r.rd(LVT_TIMER) == 0x300FF
    r.wr(LVT_LINT0, 0xFFFFFFFF)
    assert r.rd(LVT_LINT0) == 0x1A7FF            # remote IRR (bit 14) and status read-only
    r.wr(LVT_ERROR, 0xFFFFFFFF)
    assert r.rd(LVT_ERROR) == 0x100FF
    r.wr(ICR_HI, 0xFFFFFFFF)
    assert r.rd(ICR_HI) == 0xFF000000
    r.wr(DCR, 0xFF)
    assert r.rd(DCR) == 0xB
    for ro in (VER, PPR, ISR, IRR, TMR, CUR):
        before = r.rd(ro)
        r.wr(ro, 0x5A5A5A5A)
        assert r.rd(ro) == before
    assert r.rd(APR) == 0                          # not on a Pentium 4
    assert r.bus.read8(DEFAULT_BASE + ID + 3) == 0xFF        # narrower reads see the bytes


def test_software_disable_masks_lvts_and_drops_fixed():
    r = Rig()
    r.enable()
    r.wr(LVT_TIMER, 0x40)
    assert r.rd(LVT_TIMER) == 0x40
    r.wr(SVR, 0xFF)                                # software disable
    assert r.rd(LVT_TIMER) == 0x10040
    r.wr(LVT_TIMER, 0x40)                          # cannot unmask while disabled
    assert r.rd(LVT_TIMER) == 0x10040
    assert not r.apic.message(0x40, 0, False, 0, False)
    assert r.rd(IRR + 0x20) == 0


def test_esr_write_then_read_and_error_interrupt():
    r = Rig()
    r.enable()
    r.wr(LVT_ERROR, 0xEE)
    r.wr(ICR_LO, 0x00040003)                       # self IPI, illegal vector 3
    assert r.rd(ESR) == 0                          # not visible until ESR is written
    r.wr(ESR, 0)
    assert r.rd(ESR) == ESR_SEND_ILLEGAL
    assert r.apic.IRR >> 0xEE & 1                  # the error LVT fired
    r.wr(ESR, 0)
    assert r.rd(ESR) == 0
    r.apic.message(0x05, 0, False, 0, False)       # received illegal vector
    r.rd(0x3F0)                                    # reserved register
    r.wr(ESR, 0)
    assert r.rd(ESR) == ESR_RECV_ILLEGAL | ESR_ILLEGAL_REG


def test_ppr():
    r = Rig()
    r.enable()
    r.wr(TPR, 0x35)
    assert r.rd(PPR) == 0x35
    r.apic.message(0x51, 0, False, 0, False)
    assert r.apic.acknowledge() == 0x51
    assert r.rd(PPR) == 0x50                       # ISRV class above TPR's
    r.wr(TPR, 0x62)
    assert r.rd(PPR) == 0x62
    r.wr(TPR, 0x55)
    assert r.rd(PPR) == 0x55                       # same class: TPR


def test_eoi_clears_highest_isr_and_preemption():
    r = Rig()
    r.enable()
    r.apic.message(0x40, 0, False, 0, False)
    assert r.apic.acknowledge() == 0x40
    r.apic.message(0x45, 0, False, 0, False)        # same class: waits
    assert not r.apic.INTR
    r.apic.message(0x80, 0, False, 0, False)        # higher class: preempts
    assert r.apic.INTR
    assert r.apic.acknowledge() == 0x80
    assert r.rd(ISR + 0x40) == 1 and r.rd(ISR + 0x20) == 1
    r.wr(EOI, 0)
    assert r.rd(ISR + 0x40) == 0 and r.rd(ISR + 0x20) == 1
    assert not r.apic.INTR                         # 45h still blocked by 40h in service
    r.wr(EOI, 0)
    assert r.apic.INTR and r.apic.acknowledge() == 0x45
    assert r.eois == []                            # edge vectors: no EOI broadcast


def test_tpr_blocks_and_spurious():
    r = Rig()
    r.enable()
    r.wr(TPR, 0x50)
    r.apic.message(0x55, 0, False, 0, False)
    assert not r.apic.INTR
    r.wr(TPR, 0x40)
    assert r.apic.INTR
    r.wr(TPR, 0x50)                                # withdrawn before the INTA: spurious
    assert r.apic.acknowledge() == 0xFF
    assert r.rd(ISR + 0x40) == 0


def test_level_vector_eoi_broadcast():
    r = Rig()
    r.enable()
    r.apic.message(0x61, 0, False, 0, True)
    assert r.rd(TMR + 0x30) == 2
    assert r.apic.acknowledge() == 0x61
    r.wr(EOI, 0)
    assert r.eois == [0x61]


def test_destinations():
    r = Rig()
    r.enable()
    a = r.apic
    assert a.matches(0, False) and a.matches(0xFF, False) and not a.matches(1, False)
    r.wr(LDR, 0x04000000)
    assert a.matches(0x06, True) and not a.matches(0x01, True)       # flat
    r.wr(DFR, 0x0FFFFFFF)                                            # cluster
    r.wr(LDR, 0x21000000)
    assert a.matches(0x21, True) and a.matches(0x23, True) and not a.matches(0x11, True)


def test_ipis():
    r = Rig()
    r.enable()
    r.wr(ICR_LO, 0x00040041)                       # self
    assert r.apic.IRR >> 0x41 & 1
    r.wr(ICR_LO, 0x00080042)                       # all including self
    assert r.apic.IRR >> 0x42 & 1
    r.wr(ICR_LO, 0x000C0043)                       # all excluding self
    assert not r.apic.IRR >> 0x43 & 1
    r.wr(ICR_HI, 0)
    r.wr(ICR_LO, 0x00000044)                       # physical destination 0: us
    assert r.apic.IRR >> 0x44 & 1
    r.wr(ICR_HI, 0x01000000)
    r.wr(ICR_LO, 0x00000045)                       # physical 1: nobody
    assert not r.apic.IRR >> 0x45 & 1
    r.wr(ICR_HI, 0)
    r.wr(ICR_LO, 0x00000400)                       # NMI to us
    assert len(r.nmis) == 1
    before = r.apic.dropped_ipis
    r.wr(ICR_LO, 0x00084500)                       # INIT (assert) to all incl. self: dropped
    r.wr(ICR_LO, 0x00080610)                       # SIPI: dropped
    assert r.apic.dropped_ipis == before + 2


# -- the timer ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dcr,div", [(0xB, 1), (0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16),
                                     (0x8, 32), (0x9, 64), (0xA, 128)])
def test_oneshot_divide(dcr, div):
    r = Rig()
    r.enable()
    r.wr(DCR, dcr)
    r.wr(LVT_TIMER, 0x50)
    r.advance_to(100)
    r.wr(INIT, 10)
    assert r.rd(CUR) == 10
    r.advance_to(100 + 3 * div)
    assert r.rd(CUR) == 7
    r.advance_to(100 + 3 * div + div - 1)
    assert r.rd(CUR) == 7
    r.advance_to(100 + 10 * div)
    assert r.rd(CUR) == 0
    assert not r.apic.INTR
    # as QEMU: the interrupt one count after the counter reads 0
    assert r.fires(100 + 100 * div) == [100 + 11 * div]
    assert r.rd(CUR) == 0


def test_periodic_and_masking():
    r = Rig()
    r.enable()
    r.wr(DCR, 0xB)
    r.wr(LVT_TIMER, 0x20050)
    r.wr(INIT, 99)                                 # period 100 counts
    r.advance_to(30)
    assert r.rd(CUR) == 69
    assert r.fires(350) == [100, 200, 300]
    assert r.rd(CUR) == 99 - 50
    r.wr(LVT_TIMER, 0x30050)                       # masked: counts, raises nothing
    assert r.fires(650) == []
    assert r.rd(CUR) == 49
    r.wr(LVT_TIMER, 0x20050)
    assert r.fires(820) == [700, 800]
    r.wr(INIT, 0)                                  # stop
    assert r.rd(CUR) == 0 and r.fires(2000) == []


def test_divide_change_carries_on():
    r = Rig()
    r.enable()
    r.wr(DCR, 0xB)
    r.wr(LVT_TIMER, 0x50)
    r.wr(INIT, 100)
    r.advance_to(40)
    r.wr(DCR, 0x0)                                 # /2 from count 60 on
    assert r.rd(CUR) == 60
    r.advance_to(60)
    assert r.rd(CUR) == 50
    assert r.fires(1000) == [40 + 61 * 2]


def test_timer_at_default_ips():
    """20M instructions per second, 1 GHz bus: 50 bus clocks per instruction."""
    r = Rig(ips=20_000_000)
    r.enable()
    r.wr(DCR, 0x3)                                 # /16
    r.wr(LVT_TIMER, 0x50)
    r.wr(INIT, 1000)
    r.advance_to(16)
    assert r.rd(CUR) == 1000 - 16 * 50 // 16
    assert r.fires(10_000) == [-(-1001 * 16 // 50)]


def test_timer_snapshot_mid_count():
    r = Rig()
    r.enable()
    r.wr(DCR, 0x1)
    r.wr(LVT_TIMER, 0x20050)
    r.wr(INIT, 999)
    r.advance_to(1234)
    st = r.apic.get_state()
    expect = r.fires(20_000)
    r2 = Rig()
    r2.cpu.icount = 1234
    r2.apic.set_state(st)
    assert r2.rd(CUR) == st["initial_count"] - (1234 // 4) % 1000
    assert r2.fires(20_000) == expect


# -- the CPU side ----------------------------------------------------------------------------------

def test_extint_passthrough_and_hardware_disable():
    r = Rig(firmware_setup=True)
    r.apic.set_lint0(True)
    assert r.apic.INTR
    assert r.apic.acknowledge() == 0x08 and r.pic_acks == 1
    r.apic.set_lint0(False)
    assert not r.apic.INTR
    r.wr(LVT_LINT0, 0x18700)                       # masked: the PIC is cut off
    r.apic.set_lint0(True)
    assert not r.apic.INTR
    r.apic.set_lint0(False)
    # IA32_APIC_BASE.EN = 0: the APIC is bypassed, the window is gone
    assert r.apic.write_base_msr(0xFEE00000)
    assert r.bus.read32(DEFAULT_BASE + VER) == 0xFFFFFFFF
    r.apic.set_lint0(True)
    assert r.apic.INTR and r.apic.acknowledge() == 0x08
    r.apic.set_lint1(True)
    assert len(r.nmis) == 1
    r.apic.set_lint0(False)
    r.apic.set_lint1(False)
    assert r.apic.write_base_msr(0xFEE00800)       # back: power-on (+ POST) state
    assert r.rd(VER) == 0x00050014


def test_lint1_nmi():
    r = Rig(firmware_setup=True)
    r.apic.set_lint1(True)
    r.apic.set_lint1(False)
    r.apic.set_lint1(True)
    assert len(r.nmis) == 2


def test_base_msr_relocation_and_reserved_bits():
    r = Rig()
    assert r.apic.write_base_msr(0xFED00900)       # BSP bit is read-only anyway
    assert r.bus.read32(DEFAULT_BASE + VER) == 0xFFFFFFFF
    assert r.bus.read32(0xFED00000 + VER) == 0x00050014
    assert r.apic.read_base_msr() == 0xFED00900
    for bad in (0xFEE00801, 0xFEE00A00, 0xFEE00C00, 1 << 40):
        assert not r.apic.write_base_msr(bad)
    # relocated over RAM and away again: the RAM page comes back
    r.bus.write32(0x5000, 0x12345678)
    assert r.apic.write_base_msr(0x5800)
    assert r.bus.read32(0x5000 + VER) == 0x00050014
    assert r.apic.write_base_msr(0xFEE00800)
    assert r.bus.read32(0x5000) == 0x12345678


# -- on a machine --------------------------------------------------------------------------------

def _machine(**kw):
    return Machine(MachineConfig(bios=None, apic=True, **kw))


def test_cpuid_and_msr_on_apic_machine():
    from aero.cpu.sem.system import sys_cpuid, sys_rdmsr
    m = _machine()
    cpu = m.cpu
    cpu.R[0] = 1
    sys_cpuid(cpu)
    assert cpu.R[2] & (1 << 9)
    cpu.R[1] = 0x1B
    sys_rdmsr(cpu)
    assert cpu.R[0] == 0xFEE00900 and cpu.R[2] == 0
    m.lapic.write_base_msr(0xFEE00000)            # hardware disabled: CPUID says no APIC
    cpu.R[0] = 1
    sys_cpuid(cpu)
    assert not cpu.R[2] & (1 << 9)
    plain = CPU(Bus(1 << 20))
    plain.R[0] = 1
    sys_cpuid(plain)
    assert not plain.R[2] & (1 << 9)


def test_apic_off_by_default():
    m = Machine(MachineConfig(bios=None))
    assert m.lapic is None and m.cpu.apic is None
    assert m.bus.read32(0xFEE00030) == 0xFFFFFFFF
    assert not any(k.startswith(("lapic", "ioapic")) for k in m.device_states())


def test_virtual_wire_pic_interrupt_on_machine():
    """A real-mode loop with IF=1 under the Aero BIOS's APIC setup: an 8259A interrupt (IRQ 1)
    reaches the CPU through LINT0 and its vector comes from the PIC."""
    m = Machine(MachineConfig(bios="aero", apic=True))
    m.bus.load(0x1000, bytes([0xFB, 0xEB, 0xFE]))           # sti; jmp $
    m.bus.load(0x2000, bytes([0xCF]))                        # iret
    m.bus.load(0x09 * 4, bytes([0x00, 0x20, 0x00, 0x00]))    # IVT[9] = 0000:2000
    cpu = m.cpu
    cpu.load_seg_real(1, 0)
    cpu.eip = 0x1000
    for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFD)):
        m.io.write(port, 1, v)
    seen = []
    m.hooks.interrupt(lambda mm, ev: seen.append((mm.cpu.icount, ev.vector)))
    m.run_until(instructions=10)
    m.irq.set(1, True)
    t = cpu.icount
    m.run_until(instructions=10)
    assert seen and seen[0] == (t, 9)
    assert m.pic.master.ISR == 2


def test_timer_interrupt_at_exact_instruction_count():
    """Timer expiry ticks = interrupt delivery instruction counts, in real mode, JIT off/on."""
    for jit in ("off", "on"):
        m = _machine(jit=jit, ips=BUS_HZ // 10)             # 10 bus clocks per instruction
        m.bus.load(0x1000, bytes([0xFB, 0x90, 0xEB, 0xFD]))  # sti; l: nop; jmp l
        m.bus.load(0x2000, bytes([0xCF]))
        m.bus.load(0x50 * 4, bytes([0x00, 0x20, 0x00, 0x00]))
        cpu = m.cpu
        cpu.load_seg_real(1, 0)
        cpu.eip = 0x1000
        a = m.lapic
        a.write_reg(SVR, 0x1FF)
        a.write_reg(DCR, 0xB)
        a.write_reg(LVT_TIMER, 0x20050)
        a.write_reg(INIT, 999)                               # 1000 counts = 100 instructions
        seen = []

        def hit(mm, ev):
            seen.append(mm.cpu.icount)
            mm.lapic.write_reg(EOI, 0)
        m.hooks.interrupt(hit, 0x50)
        m.run_until(icount=1050)
        assert seen == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], jit


def test_machine_snapshot_mid_timer():
    m = _machine(ips=BUS_HZ // 10)
    m.bus.load(0x1000, bytes([0xFB, 0x90, 0xEB, 0xFD]))
    m.bus.load(0x2000, bytes([0xCF]))
    m.bus.load(0x50 * 4, bytes([0x00, 0x20, 0x00, 0x00]))
    m.cpu.load_seg_real(1, 0)
    m.cpu.eip = 0x1000
    for off, v in ((SVR, 0x1FF), (DCR, 0x0), (LVT_TIMER, 0x20050), (INIT, 777)):
        m.lapic.write_reg(off, v)
    m.run_until(icount=1234)
    st = m.get_state()
    h0 = m.state_hash()
    m.run_until(icount=5000)
    end = m.state_hash()
    m2 = _machine(ips=BUS_HZ // 10)
    m2.set_state(st)
    assert m2.state_hash() == h0
    m2.run_until(icount=5000)
    assert m2.state_hash() == end
    m.set_state(st)
    assert m.state_hash() == h0


# -- the guest -----------------------------------------------------------------------------------

def _run_guest(jit):
    out = bytearray()
    m = _machine(debug_exit_port=0xF4, debugcon=out.append, jit=jit)
    with open(GUEST, "rb") as f:
        m.load_bios(f.read())
    r = m.run(max_instructions=5_000_000)
    return r, out.decode("latin-1")


@pytest.mark.parametrize("jit", ["off", "on"])
def test_guest_on_aero(jit):
    r, log = _run_guest(jit)
    assert r.status == "debug-exit" and r.exit_code == 1, log
    assert "FAIL" not in log and "DONE fails=0x00000000" in log


@pytest.mark.skipif(not romrun.qemu_available(), reason="qemu-system-i386 not installed")
def test_guest_same_as_qemu():
    q = romrun.run_qemu(GUEST)
    assert q.status == "exit" and q.exit_code == 1, q.console
    _, log = _run_guest("on")
    assert log.splitlines() == q.console.splitlines()


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm not installed")
def test_guest_rebuilds_identically(tmp_path):
    src = os.path.dirname(GUEST)
    out = tmp_path / "apic.bin"
    subprocess.run(["nasm", "-f", "bin", "-I", GUESTS_DIR + os.sep, "-o", str(out),
                    os.path.join(src, "apic.asm")], check=True, cwd=src)
    with open(GUEST, "rb") as f:
        assert out.read_bytes() == f.read()


def test_demo_under_aero_bios_same_with_apic():
    """Virtual wire: the built-in demo (PIT interrupts through the 8259A, a 1 s wait) runs the
    same with the APIC generation as without, instruction for instruction."""
    from aero.build import build_machine
    results = []
    for apic in (False, True):
        out = bytearray()
        m = build_machine(MachineConfig(demo=True, apic=apic, serial=out.append))
        r = m.run(max_instructions=5_000_000)
        results.append((r.status, r.icount, bytes(out)))
    assert results[0][0] == "poweroff"
    assert results[0] == results[1]
