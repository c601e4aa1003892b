"""CPU state as data: named register access, a versioned state dict, and a state hash.

Front ends (debugger panes, gdb stub, snapshots) read and write the CPU through these functions,
never through the run loop's internals.
"""

from __future__ import annotations

import hashlib
import json

from .cpu import CPU, REG32, SEG_NAMES
from . import flags as F

STATE_VERSION = 2                # 2: the x87

_R16 = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")
_R8 = ("al", "cl", "dl", "bl", "ah", "ch", "dh", "bh")
# the x87 by gdb's names: ST(i) as 80-bit images, then the control words and pointers
_FPU_WORDS = {"fctrl": "cw", "fstat": "sw", "ftag": "tw", "fiseg": "fcs", "fioff": "fip",
              "foseg": "fds", "fooff": "fdp", "fop": "fop"}
_FPU_MASKS = {"fcs": 0xFFFF, "fds": 0xFFFF, "fip": 0xFFFFFFFF, "fdp": 0xFFFFFFFF, "fop": 0x7FF}


def get_reg(cpu: CPU, name: str) -> int:
    """Read a register by name: eax..edi, ax..di, al..bh, eip, ip, eflags, flags, es..gs,
    cr0/cr2/cr3/cr4, dr0-dr7, efer, cpl; the x87's st0-st7 (80-bit images of ST(i)), fctrl,
    fstat, ftag (the full tag word), fiseg, fioff, foseg, fooff, fop."""
    n = name.lower()
    if n in _FPU_WORDS:
        return getattr(cpu.fpu, _FPU_WORDS[n])
    if len(n) == 3 and n.startswith("st") and n[2] in "01234567":
        return cpu.fpu.st(int(n[2]))
    if n in REG32:
        return cpu.R[REG32.index(n)]
    if n in _R16:
        return cpu.R[_R16.index(n)] & 0xFFFF
    if n in _R8:
        i = _R8.index(n)
        return (cpu.R[i & 3] >> (8 if i >= 4 else 0)) & 0xFF
    if n == "eip":
        return cpu.eip
    if n == "ip":
        return cpu.eip & 0xFFFF
    if n in ("eflags", "flags"):
        return cpu.get_flags() & (0xFFFFFFFF if n == "eflags" else 0xFFFF)
    if n in SEG_NAMES:
        return cpu.sel[SEG_NAMES.index(n)]
    if n in ("cr0", "cr2", "cr3", "cr4"):
        return getattr(cpu, n)
    if n.startswith("dr") and n[2:].isdigit() and int(n[2:]) < 8:
        return cpu.dr[int(n[2:])]
    if n == "efer":
        return cpu.efer
    if n == "cpl":
        return cpu.cpl
    raise KeyError(f"unknown register {name!r}")


def set_reg(cpu: CPU, name: str, value: int) -> None:
    """Write a register by name (segment registers load as in the current mode).  Writing
    st0-st7 replaces the value and leaves the tags' empty/non-empty state alone (``ftag``
    changes that)."""
    n = name.lower()
    if n in _FPU_WORDS:
        attr = _FPU_WORDS[n]
        setattr(cpu.fpu, attr, value & _FPU_MASKS.get(attr, 0xFFFF))
    elif len(n) == 3 and n.startswith("st") and n[2] in "01234567":
        cpu.fpu.regs[cpu.fpu.phys(int(n[2]))] = value & ((1 << 80) - 1)
    elif n in REG32:
        cpu.R[REG32.index(n)] = value & 0xFFFFFFFF
    elif n in _R16:
        i = _R16.index(n)
        cpu.R[i] = (cpu.R[i] & 0xFFFF0000) | (value & 0xFFFF)
    elif n in _R8:
        i = _R8.index(n)
        sh = 8 if i >= 4 else 0
        cpu.R[i & 3] = (cpu.R[i & 3] & ~(0xFF << sh) & 0xFFFFFFFF) | ((value & 0xFF) << sh)
    elif n in ("eip", "ip"):
        cpu.eip = value & (0xFFFFFFFF if n == "eip" else 0xFFFF)
    elif n in ("eflags", "flags"):
        cpu.get_flags()
        cpu.write_flags(value, F.WRITABLE if n == "eflags" else 0xFFFF & F.WRITABLE)
    elif n in SEG_NAMES:
        cpu.load_seg(SEG_NAMES.index(n), value) if n != "cs" else cpu.load_seg_real(1, value)
    elif n == "cr0":
        cpu.write_cr0(value)
    elif n == "cr3":
        cpu.write_cr3(value)
    elif n == "cr4":
        cpu.write_cr4(value)
    elif n == "cr2":
        cpu.cr2 = value & 0xFFFFFFFF
    elif n.startswith("dr") and n[2:].isdigit() and int(n[2:]) < 8:
        cpu.dr[int(n[2:])] = value & 0xFFFFFFFF
        cpu.dr_changed()
    else:
        raise KeyError(f"unknown or read-only register {name!r}")


def get_state(cpu: CPU) -> dict:
    """Everything architectural (and the TLB) as plain data."""
    st = {
        "version": STATE_VERSION,
        "regs": list(cpu.R),
        "eip": cpu.eip,
        "eflags": cpu.get_flags(),
        "segs": [[cpu.sel[s], cpu.base[s], cpu.limit[s], cpu.attr[s]] for s in range(6)],
        "cr": [cpu.cr0, cpu.cr2, cpu.cr3, cpu.cr4],
        "dr": list(cpu.dr),
        "efer": cpu.efer,
        "gdtr": list(cpu.gdtr),
        "idtr": list(cpu.idtr),
        "ldtr": list(cpu.ldtr),
        "tr": list(cpu.tr),
        "halted": cpu.halted,
        "shadow": cpu.shadow,
        "icount": cpu.icount,
        "idle_time": cpu.idle_time,
        "tsc_offset": cpu.tsc_offset,
        "sysenter": list(cpu.sysenter),
        "msr": sorted([k, v] for k, v in cpu.msr.items()),
        "nmi_pending": cpu.nmi_pending,
        "mmu": cpu.mmu.get_state(),
        "fpu": cpu.fpu.get_state(),
    }
    if cpu.ignne:
        st["ignne"] = True
    # NMI blocking (an NMI handler running, one NMI held): only while it holds, so that states
    # (and their hashes) of machines that never took an NMI are as they were
    if cpu.nmi_blocked or cpu.nmi_latched:
        st["nmi_blocked"] = [cpu.nmi_blocked, cpu.nmi_latched]
    return st


def set_state(cpu: CPU, st: dict, flush: bool = True) -> None:
    """Restore the CPU; ``flush``: drop every translated block (a machine restoring its
    memory too keeps the blocks whose code did not change: ``CodeCache.restored``)."""
    if st.get("version") != STATE_VERSION:
        raise ValueError(f"CPU state version {st.get('version')!r} is not {STATE_VERSION}")
    cpu.R[:] = [v & 0xFFFFFFFF for v in st["regs"]]
    cpu.eip = st["eip"]
    cpu.flags = st["eflags"]
    cpu.lf = None
    for s, (sel, base, limit, attr) in enumerate(st["segs"]):
        cpu.sel[s], cpu.base[s], cpu.limit[s], cpu.attr[s] = sel, base, limit, attr
    cpu.cr0, cpu.cr2, cpu.cr3, cpu.cr4 = st["cr"]
    cpu.dr[:] = st["dr"]
    cpu.efer = st["efer"]
    cpu.gdtr[:] = st["gdtr"]
    cpu.idtr[:] = st["idtr"]
    cpu.ldtr[:] = st["ldtr"]
    cpu.tr[:] = st["tr"]
    cpu.halted = st["halted"]
    cpu.shadow = st["shadow"]
    cpu.icount = st["icount"]
    cpu.idle_time = st["idle_time"]
    cpu.tsc_offset = st["tsc_offset"]
    cpu.sysenter[:] = st["sysenter"]
    cpu.msr = {k: v for k, v in st["msr"]}
    cpu.nmi_pending = st["nmi_pending"]
    cpu.nmi_blocked, cpu.nmi_latched = st.get("nmi_blocked", (False, False))
    cpu.fpu.set_state(st["fpu"])
    cpu.ignne = st.get("ignne", False)
    if flush:
        cpu.cache.flush()
    cpu.mode_changed()
    cpu.mmu.set_state(st["mmu"])
    cpu.dr_changed()


def state_hash(cpu: CPU, include_ram: bool = True) -> str:
    """SHA-256 over the CPU state (canonical JSON) and, by default, all of RAM."""
    h = hashlib.sha256()
    h.update(json.dumps(get_state(cpu), sort_keys=True, separators=(",", ":")).encode())
    if include_ram:
        h.update(cpu.bus.ram)
    return h.hexdigest()
