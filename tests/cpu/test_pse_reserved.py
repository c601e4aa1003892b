"""32-bit paging, a PDE mapping a 4 MiB page (CR4.PSE): bits 21:13 are reserved on a CPU without
PSE-36 (SDM Vol. 3, Table 4-4; CPUID.1:EDX bit 17 is clear), so an access through such a PDE
raises #PF with the RSVD bit (error code bit 3) and the P bit set.  unicorn (QEMU) offers PSE-36
and treats bits 20:13 as physical address bits 39:32, but bit 21 is reserved there too: that one
is compared with it."""

import pytest

from aero.cpu.cpu import CPU
from aero.debug import inspect as I
from aero.faults import CPUFault
from aero.mem.bus import Bus

PD = 0x10000


def paged_cpu(pde):
    bus = Bus(4 << 20)
    cpu = CPU(bus)
    bus.write32(PD + 4 * 0, 0x83)                    # 0-4 MiB: identity, 4 MiB page, RW
    bus.write32(PD + 4 * 1, pde)                     # 4-8 MiB: the PDE under test
    cpu.write_cr0(cpu.cr0 | 1)
    cpu.cr4 |= 0x10                                  # PSE
    cpu.write_cr3(PD)
    cpu.write_cr0(cpu.cr0 | 0x80000000)
    return cpu


@pytest.mark.parametrize("bit", range(13, 22))
def test_reserved_bits_of_a_4m_pde_fault_with_rsvd(bit):
    cpu = paged_cpu(0x83 | 1 << bit)
    with pytest.raises(CPUFault) as e:
        cpu.mmu.translate(0x400123, False, False, False)
    assert e.value.vector == 14 and e.value.error_code == 0x9 and cpu.cr2 == 0x400123
    assert I.walk(cpu, 0x400123).fault == "reserved bits set at PDE"
    assert any("reserved bits" in p for p in I.address_space(cpu).problems)


def test_a_clean_4m_pde_maps():
    cpu = paged_cpu(0x400083)
    assert cpu.mmu.translate(0x400123, False, False, False) == 0x400123
    assert I.walk(cpu, 0x400123).physical == 0x400123


def test_bit_21_is_reserved_for_unicorn_too():
    unicorn = pytest.importorskip("unicorn")
    from unicorn import x86_const as X
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
    uc.mem_map(0, 8 << 20)
    code = b"\xa1\x23\x01\x40\x00\xf4"               # mov eax, [0x400123]; hlt
    uc.mem_write(0x1000, code)
    uc.mem_write(PD, (0x83).to_bytes(4, "little") + (0x83 | 1 << 21).to_bytes(4, "little"))
    uc.reg_write(X.UC_X86_REG_CR3, PD)
    uc.reg_write(X.UC_X86_REG_CR4, 0x10)
    uc.reg_write(X.UC_X86_REG_CR0, 0x80000001)
    faults = []

    def hook(u, intno, _):
        faults.append(intno)
        u.emu_stop()
    uc.hook_add(unicorn.UC_HOOK_INTR, hook)
    try:
        uc.emu_start(0x1000, 0x1000 + len(code) - 1, count=2)
    except unicorn.UcError:
        faults.append("error")
    assert faults and faults[0] == 14
