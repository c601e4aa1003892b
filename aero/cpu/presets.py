"""Ready-made CPU setups for tools, benchmarks and tests (no firmware involved)."""

from __future__ import annotations

from .cpu import CPU, A_P, A_S, A_RW, A_ACCESSED, A_DB, A_G, A_CODE, CR0_PE
from ..mem.bus import Bus

FLAT_DATA = A_P | A_S | A_RW | A_ACCESSED | A_DB | A_G
FLAT_CODE = FLAT_DATA | A_CODE


def flat32(ram_size: int = 16 << 20) -> CPU:
    """A CPU in 32-bit flat protected mode, ring 0, paging off: CS = 0x08 and the data segments
    = 0x10, all with base 0 and a 4 GiB limit.  No GDT exists in memory (the caches are set
    directly), so code must not reload segment registers."""
    return set_flat32(CPU(Bus(ram_size)))


def set_flat32(cpu: CPU) -> CPU:
    """Put a CPU (a machine's, say) in the state ``flat32`` describes."""
    cpu.cr0 |= CR0_PE
    for s in range(6):
        if s == 1:
            cpu.set_seg_cache(1, 0x08, 0, 0xFFFFFFFF, FLAT_CODE)
        else:
            cpu.set_seg_cache(s, 0x10, 0, 0xFFFFFFFF, FLAT_DATA)
    cpu.mode_changed()
    return cpu


def real16(ram_size: int = 16 << 20) -> CPU:
    """A CPU just after reset, then with CS = DS = ES = SS = 0 (real mode, A20 enabled)."""
    cpu = CPU(Bus(ram_size))
    for s in range(6):
        cpu.load_seg_real(s, 0)
    cpu.eip = 0
    return cpu
