"""System instructions: descriptor-table registers, control/debug registers, MSRs, CPUID,
SYSENTER/SYSEXIT, interrupt-flag and EFLAGS instructions, software interrupts, IRET, and the
I/O permission check used by IN/OUT/INS/OUTS.

Templates only call helpers named ``sys_*`` (plus ``io_check``); the architecture itself lives in
``aero.cpu.segmentation``, ``aero.cpu.interrupts`` and ``aero.cpu.tasks``.

CPUID identifies the CPU as "GenuineIntel" family 6 model 6 stepping 3 (the value EDX holds after
RESET, see ``CPU.reset``).  Why not a made-up vendor: firmware and operating systems pick their
well-tested P6 code paths by vendor and family, and every feature they use is still gated by the
CPUID feature bits below, which claim only what Aero implements.  The brand string (leaves
0x80000002-4) says what the CPU really is.
"""

from __future__ import annotations

from ...faults import CPUFault
from .. import flags as _F
from ..segmentation import (try_read_desc as _try_read_desc, d_attr as _d_attr,
                            d_limit as _d_limit, read_desc as _read_desc, d_base as _d_base)
from ..interrupts import sys_popf, iret as sys_iret  # noqa: F401 (called by templates)

TEMPLATES = {}

_GP, _UD, _NP = 13, 6, 11

# ---- CPUID ------------------------------------------------------------------------------------
CPUID_SIGNATURE = 0x00000663          # family 6, model 6, stepping 3
# CPUID.1:EDX: FPU(0) DE(2) PSE(3) TSC(4) MSR(5) PAE(6) CX8(8) SEP(11) PGE(13) CMOV(15; with
# FPU also FCMOVcc and FCOMI).
# Not claimed: VME(1, CR4.VME not implemented), MCE, APIC (claimed only on machines built with
# an APIC: sys_cpuid), MTRR, PAT, PSE-36, MMX, FXSR (no FXSAVE/FXRSTOR: the P6 before the
# Pentium II), SSE* (so no FISTTP).
CPUID_1_EDX = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | \
    (1 << 13) | (1 << 15)
CPUID_APIC = 1 << 9                   # CPUID.1:EDX.APIC, set by sys_cpuid on APIC machines
CPUID_80000001_EDX = 1 << 20          # NX (EFER.NXE with PAE paging)
CPUID_MAX_BASIC = 7
CPUID_7_ECX = 1 << 2                  # UMIP (CR4.UMIP: SGDT/SIDT/SLDT/STR/SMSW at CPL > 0 #GP)
CPUID_BRAND = b"Aero Workbench virtual i686 CPU".ljust(48, b"\0")


def _vendor_regs(s: bytes):
    return (int.from_bytes(s[0:4], "little"), int.from_bytes(s[8:12], "little"),
            int.from_bytes(s[4:8], "little"))          # EBX, ECX, EDX


def sys_cpuid_values(leaf: int, sub: int = 0):
    """(EAX, EBX, ECX, EDX) for a CPUID leaf (``sub``: ECX, for leaf 7).  Leaves above the
    maximum return the highest basic leaf's values (as Intel CPUs do): leaf 7's.  Leaves 2-6
    report nothing: leaf 2 one round of null cache descriptors (AL = 1), leaf 4 no cache
    (type 0), 3 (PSN), 5 (MONITOR) and 6 (power management) zeros."""
    if 0x80000000 <= leaf <= 0x80000004:
        if leaf == 0x80000000:
            return 0x80000004, 0, 0, 0
        if leaf == 0x80000001:
            return 0, 0, 0, CPUID_80000001_EDX
        chunk = CPUID_BRAND[(leaf - 0x80000002) * 16:(leaf - 0x80000001) * 16]
        return tuple(int.from_bytes(chunk[i:i + 4], "little") for i in range(0, 16, 4))
    if leaf == 0:
        b, c, d = _vendor_regs(b"GenuineIntel")
        return CPUID_MAX_BASIC, b, c, d
    if leaf == 1:
        return CPUID_SIGNATURE, 0, 0, CPUID_1_EDX
    if leaf == 2:
        return 1, 0, 0, 0
    if 3 <= leaf <= 6:
        return 0, 0, 0, 0
    # leaf 7 and every leaf above the maximum: structured extended features, subleaf 0 only
    return (0, 0, CPUID_7_ECX, 0) if sub == 0 else (0, 0, 0, 0)


def sys_cpuid(cpu):
    R = cpu.R
    leaf = R[0]
    R[0], R[3], R[1], R[2] = sys_cpuid_values(leaf, R[1])
    # -- APIC (aero.devices.apic): CPUID.1:EDX.APIC (bit 9) while IA32_APIC_BASE.EN is set,
    # EBX[31:24] the initial APIC ID.  No APIC: as before.
    apic = cpu.apic
    if apic is not None and leaf == 1:
        R[3] |= apic.initial_id << 24
        if apic.enabled:
            R[2] |= CPUID_APIC
    # CPUID.1 loads IA32_BIOS_SIGN_ID with the microcode update signature: no update here
    if leaf == 1 and MSR_BIOS_SIGN_ID in cpu.msr:
        cpu.msr[MSR_BIOS_SIGN_ID] = 0


TEMPLATES["CPUID"] = "sys_cpuid(cpu)\n"

# ---- privilege helpers ---------------------------------------------------------------------------


def sys_priv0(cpu):
    """Privileged instructions: #GP(0) unless CPL 0 (V86 mode runs at CPL 3)."""
    if cpu.cpl:
        raise CPUFault(_GP, 0)


def sys_pm_only(cpu):
    """Instructions not recognised in real-address and virtual-8086 mode: #UD."""
    if not cpu.cr0 & 1 or cpu.flags & _F.VM:
        raise CPUFault(_UD)


def sys_store_reg(cpu, ins, v):
    """A 16-bit system value stored to a register: zero-extended with a 32-bit operand size."""
    R = cpu.R
    r = ins.rm
    if ins.opsize == 32:
        R[r] = v & 0xFFFFFFFF
    else:
        R[r] = (R[r] & 0xFFFF0000) | (v & 0xFFFF)


# ---- descriptor-table registers -----------------------------------------------------------------
for _n, _reg in (("LGDT", "gdtr"), ("LIDT", "idtr")):
    TEMPLATES[_n] = f"""
sys_priv0(cpu)
lim = rd16($SEG, $EA)
base = rd32($SEG, ($EA + 2) & $AMASK)
cpu.{_reg} = [base & 0xFFFFFF if $OSZ == 16 else base, lim]
"""
    TEMPLATES["S" + _n[1:]] = f"""
sys_umip(cpu)
ea2 = ($EA + 2) & $AMASK
cpu.check_write($SEG, $EA, 2)
cpu.check_write($SEG, ea2, 4)
wr16($SEG, $EA, cpu.{_reg}[1])
wr32($SEG, ea2, cpu.{_reg}[0] & 0xFFFFFF if $OSZ == 16 else cpu.{_reg}[0])
"""

TEMPLATES["SLDT@r"] = "sys_pm_only(cpu)\nsys_umip(cpu)\nsys_store_reg(cpu, $INS, cpu.ldtr[0])\n"
TEMPLATES["SLDT@m"] = "sys_pm_only(cpu)\nsys_umip(cpu)\nwr16($SEG, $EA, cpu.ldtr[0])\n"
TEMPLATES["STR@r"] = "sys_pm_only(cpu)\nsys_umip(cpu)\nsys_store_reg(cpu, $INS, cpu.tr[0])\n"
TEMPLATES["STR@m"] = "sys_pm_only(cpu)\nsys_umip(cpu)\nwr16($SEG, $EA, cpu.tr[0])\n"
TEMPLATES["SMSW@r"] = "sys_umip(cpu)\nsys_store_reg(cpu, $INS, cpu.cr0)\n"
TEMPLATES["SMSW@m"] = "sys_umip(cpu)\nwr16($SEG, $EA, cpu.cr0 & 0xFFFF)\n"


def sys_umip(cpu):
    """User-mode instruction prevention (CR4.UMIP, SDM Vol. 3, 2.5): SGDT, SIDT, SLDT, STR and
    SMSW raise #GP(0) at CPL > 0 (virtual-8086 mode included); SLDT/STR are #UD first there."""
    if cpu.cr4 & CR4_UMIP and cpu.cpl:
        raise CPUFault(_GP, 0)


def sys_lldt(cpu, sel):
    sys_priv0(cpu)
    sel &= 0xFFFF
    if not sel & 0xFFFC:
        cpu.ldtr = [sel, 0, 0, 0]                  # null: LDTR unusable
        return
    if sel & 4:
        raise CPUFault(_GP, sel & 0xFFFC)
    addr, lo, hi = _read_desc(cpu, sel)
    a = _d_attr(hi)
    if a & 0x10 or (a & 0xF) != 2:
        raise CPUFault(_GP, sel & 0xFFFC)
    if not a & 0x80:
        raise CPUFault(_NP, sel & 0xFFFC)
    cpu.ldtr = [sel, _d_base(lo, hi), _d_limit(lo, hi), a]


def sys_ltr(cpu, sel):
    sys_priv0(cpu)
    sel &= 0xFFFF
    if not sel & 0xFFFC:
        raise CPUFault(_GP, 0)
    if sel & 4:
        raise CPUFault(_GP, sel & 0xFFFC)
    addr, lo, hi = _read_desc(cpu, sel)
    a = _d_attr(hi)
    if a & 0x10 or (a & 0xF) not in (1, 9):
        raise CPUFault(_GP, sel & 0xFFFC)
    if not a & 0x80:
        raise CPUFault(_NP, sel & 0xFFFC)
    cpu.mmu.write_sup((addr + 5) & 0xFFFFFFFF, 1, ((hi >> 8) & 0xFF) | 2)   # busy
    cpu.tr = [sel, _d_base(lo, hi), _d_limit(lo, hi), a | 2]


TEMPLATES["LLDT"] = "sys_pm_only(cpu)\nsys_lldt(cpu, $A)\n"
TEMPLATES["LTR"] = "sys_pm_only(cpu)\nsys_ltr(cpu, $A)\n"

TEMPLATES["LMSW"] = """
sys_priv0(cpu)
v = $A
c = cpu.cr0
cpu.write_cr0((c & ~0xF) | (v & 0xF) | (c & 1))
"""

TEMPLATES["CLTS"] = "sys_priv0(cpu)\ncpu.cr0 &= ~8\n"

TEMPLATES["ARPL"] = """
sys_pm_only(cpu)
d = $A
s = $B
if (d & 3) < (s & 3):
    $A = (d & 0xFFFC) | (s & 3)
    cpu.set_arith(ZF, ZF)
else:
    cpu.set_arith(0, ZF)
"""
# The memory form writes only when the RPL is raised: "Otherwise, the ZF flag is cleared and no
# change is made to the destination operand" (SDM Vol. 2, ARPL; the 80386 PRM raises #GP(0) "if
# the result is in a nonwritable segment").  So the destination is read as data (not with write
# intent, which would fault in a read-only segment or page) and written only when ZF becomes 1.
# Bochs (read_RMW) and QEMU (an unconditional store) write it either way.
TEMPLATES["ARPL@m"] = """
sys_pm_only(cpu)
d = rd16($SEG, $EA)
s = $B
if (d & 3) < (s & 3):
    wr16($SEG, $EA, (d & 0xFFFC) | (s & 3))
    cpu.set_arith(ZF, ZF)
else:
    cpu.set_arith(0, ZF)
"""

# LAR: descriptor types it accepts (system descriptors); LSL: those with a limit.
_LAR_SYS = frozenset((1, 2, 3, 4, 5, 9, 0xB, 0xC))
_LSL_SYS = frozenset((1, 2, 3, 9, 0xB))


def _sys_visible(cpu, sel, a):
    """The privilege rule of LAR/LSL/VERR/VERW: conforming code is always visible, everything
    else needs DPL >= CPL and DPL >= RPL."""
    if a & 0x18 == 0x18 and a & 4:
        return True
    dpl = (a >> 5) & 3
    return dpl >= cpu.cpl and dpl >= (sel & 3)


def sys_lar_lsl(cpu, sel, lsl, osz):
    """LAR (lsl=False) / LSL: the value to store, or None (ZF cleared)."""
    d = _try_read_desc(cpu, sel)
    ok = False
    if d is not None:
        addr, lo, hi = d
        a = _d_attr(hi)
        if a & 0x10 or (a & 0xF) in (_LSL_SYS if lsl else _LAR_SYS):
            ok = _sys_visible(cpu, sel, a)
    if not ok:
        cpu.set_arith(0, _F.ZF)
        return None
    cpu.set_arith(_F.ZF, _F.ZF)
    if lsl:
        v = _d_limit(lo, hi)
    else:
        v = hi & 0x00F0FF00
    return v & (0xFFFF if osz == 16 else 0xFFFFFFFF)


def sys_verify(cpu, sel, write):
    d = _try_read_desc(cpu, sel)
    ok = False
    if d is not None:
        a = _d_attr(d[2])
        if a & 0x10:
            if write:
                ok = not a & 8 and a & 2 and _sys_visible(cpu, sel, a)
            else:
                ok = (not a & 8 or a & 2) and _sys_visible(cpu, sel, a)
    cpu.set_arith(_F.ZF if ok else 0, _F.ZF)


TEMPLATES["LAR"] = """
sys_pm_only(cpu)
v = sys_lar_lsl(cpu, $B, False, $OSZ)
if v is not None:
    $A = v
"""
TEMPLATES["LSL"] = """
sys_pm_only(cpu)
v = sys_lar_lsl(cpu, $B, True, $OSZ)
if v is not None:
    $A = v
"""
TEMPLATES["VERR"] = "sys_pm_only(cpu)\nsys_verify(cpu, $A, False)\n"
TEMPLATES["VERW"] = "sys_pm_only(cpu)\nsys_verify(cpu, $A, True)\n"

# ---- control and debug registers ----------------------------------------------------------------
# CR4 bits Aero implements: TSD(2) DE(3) PSE(4) PAE(5) PGE(7) UMIP(11).  Others are reserved:
# #GP(0).
CR4_UMIP = 0x800
CR4_VALID = 0x04 | 0x08 | 0x10 | 0x20 | 0x80 | CR4_UMIP


def sys_read_cr(cpu, n):
    if n not in (0, 2, 3, 4):
        raise CPUFault(_UD)
    sys_priv0(cpu)
    return (cpu.cr0, 0, cpu.cr2, cpu.cr3, cpu.cr4)[n] & 0xFFFFFFFF


def sys_write_cr(cpu, n, v):
    if n not in (0, 2, 3, 4):
        raise CPUFault(_UD)
    sys_priv0(cpu)
    if n == 0:
        if v & 0x80000000 and not v & 1:                 # PG without PE
            raise CPUFault(_GP, 0)
        if v & 0x20000000 and not v & 0x40000000:        # NW without CD
            raise CPUFault(_GP, 0)
        cpu.write_cr0(v)                                  # atomic: a PDPTE fault keeps old CR0
        # Compiled blocks stay valid: they are keyed by CS base, EIP and code size, templates
        # check the mode when they run, and paging changes revalidate blocks (MMU generation).
    elif n == 2:
        cpu.cr2 = v
    elif n == 3:
        cpu.write_cr3(v)
    else:
        if v & ~CR4_VALID:
            raise CPUFault(_GP, 0)
        cpu.write_cr4(v)


def _sys_dr_index(cpu, n):
    if n in (4, 5):
        if cpu.cr4 & 8:                                   # CR4.DE: DR4/DR5 are reserved
            raise CPUFault(_UD)
        n += 2
    sys_priv0(cpu)
    if cpu.dr[7] & 0x2000:                                # DR7.GD: general detect (#DB fault)
        cpu.dr[7] &= ~0x2000
        cpu.dr[6] |= 0x2000                               # DR6.BD
        raise CPUFault(1)
    return n


def sys_read_dr(cpu, n):
    return cpu.dr[_sys_dr_index(cpu, n)] & 0xFFFFFFFF


def sys_write_dr(cpu, n, v):
    n = _sys_dr_index(cpu, n)
    if n == 6:
        v = (v & 0x0000E00F) | 0xFFFF0FF0
    elif n == 7:
        v = (v & 0xFFFF2BFF) | 0x400
    cpu.dr[n] = v & 0xFFFFFFFF
    if n != 6:
        cpu.dr_changed()


TEMPLATES["MOV_FROM_CR"] = "$A = sys_read_cr(cpu, $REG)\n"
TEMPLATES["MOV_TO_CR"] = "sys_write_cr(cpu, $REG, $B)\n"
TEMPLATES["MOV_FROM_DR"] = "$A = sys_read_dr(cpu, $REG)\n"
TEMPLATES["MOV_TO_DR"] = "sys_write_dr(cpu, $REG, $B)\n"

TEMPLATES["INVLPG"] = """
sys_priv0(cpu)
cpu.mmu.invlpg((cpu.base[$SEG] + $EA) & 0xFFFFFFFF)
"""
TEMPLATES["INVD"] = "sys_priv0(cpu)\n"
TEMPLATES["WBINVD"] = "sys_priv0(cpu)\n"

# ---- time stamp counter, MSRs, SYSENTER/SYSEXIT -----------------------------------------------
MSR_APIC_BASE = 0x1B
# IA32_BIOS_SIGN_ID (SDM Vol. 4, table 2-2; Vol. 3 9.11.7.1): software writes 0, executes CPUID.1
# and reads the microcode update signature in bits 63:32; Aero's CPU has no update: 0.  Kept in
# cpu.msr (so in the state) once written.
MSR_BIOS_SIGN_ID = 0x8B
MSR_TSC, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_EFER = (
    0x10, 0x174, 0x175, 0x176, 0xC0000080)
EFER_NXE = 0x800


def sys_rdtsc(cpu):
    if cpu.cr4 & 4 and cpu.cpl:
        raise CPUFault(_GP, 0)
    t = cpu.tsc()
    cpu.R[0] = t & 0xFFFFFFFF
    cpu.R[2] = (t >> 32) & 0xFFFFFFFF


def sys_rdmsr(cpu):
    sys_priv0(cpu)
    n = cpu.R[1]
    if n == MSR_TSC:
        v = cpu.tsc()
    elif MSR_SYSENTER_CS <= n <= MSR_SYSENTER_EIP:
        v = cpu.sysenter[n - MSR_SYSENTER_CS]
    elif n == MSR_EFER:
        v = cpu.efer
    elif n == MSR_APIC_BASE and cpu.apic is not None:       # IA32_APIC_BASE (APIC machines)
        v = cpu.apic.read_base_msr()
    elif n == MSR_BIOS_SIGN_ID:
        v = cpu.msr.get(n, 0)
    else:
        raise CPUFault(_GP, 0)
    cpu.R[0] = v & 0xFFFFFFFF
    cpu.R[2] = (v >> 32) & 0xFFFFFFFF


def sys_wrmsr(cpu):
    sys_priv0(cpu)
    R = cpu.R
    n = R[1]
    v = (R[2] << 32) | R[0]
    if n == MSR_TSC:
        cpu.tsc_offset = v - (cpu.icount + cpu.idle_time)
    elif MSR_SYSENTER_CS <= n <= MSR_SYSENTER_EIP:
        cpu.sysenter[n - MSR_SYSENTER_CS] = v & (0xFFFF if n == MSR_SYSENTER_CS else 0xFFFFFFFF)
    elif n == MSR_EFER:
        if v & ~EFER_NXE:
            raise CPUFault(_GP, 0)
        cpu.efer = v
    elif n == MSR_APIC_BASE and cpu.apic is not None:       # IA32_APIC_BASE (APIC machines)
        if not cpu.apic.write_base_msr(v):
            raise CPUFault(_GP, 0)
    elif n == MSR_BIOS_SIGN_ID:
        cpu.msr[n] = v
    else:
        raise CPUFault(_GP, 0)


_FLAT_CODE0, _FLAT_DATA0, _FLAT_CODE3, _FLAT_DATA3 = 0xC09B, 0xC093, 0xC0FB, 0xC0F3


def sys_sysenter(cpu):
    cs = cpu.sysenter[0]
    if not cpu.cr0 & 1 or not cs & 0xFFFC:
        raise CPUFault(_GP, 0)
    cpu.get_flags()
    cpu.flags &= ~(_F.VM | _F.IF | _F.RF)
    cpu.set_seg_cache(2, (cs & 0xFFFC) + 8, 0, 0xFFFFFFFF, _FLAT_DATA0)
    cpu.set_seg_cache(1, cs & 0xFFFC, 0, 0xFFFFFFFF, _FLAT_CODE0)
    cpu.R[4] = cpu.sysenter[1]
    cpu.eip = cpu.sysenter[2]


def sys_sysexit(cpu):
    cs = cpu.sysenter[0]
    if not cpu.cr0 & 1 or not cs & 0xFFFC or cpu.cpl:
        raise CPUFault(_GP, 0)
    cpu.set_seg_cache(1, ((cs + 16) & 0xFFFC) | 3, 0, 0xFFFFFFFF, _FLAT_CODE3)
    cpu.set_seg_cache(2, ((cs + 24) & 0xFFFC) | 3, 0, 0xFFFFFFFF, _FLAT_DATA3)
    cpu.R[4] = cpu.R[1]
    cpu.eip = cpu.R[2]


TEMPLATES["RDTSC"] = "sys_rdtsc(cpu)\n"
TEMPLATES["RDMSR"] = "sys_rdmsr(cpu)\n"
TEMPLATES["WRMSR"] = "sys_wrmsr(cpu)\n"
TEMPLATES["SYSENTER"] = "sys_sysenter(cpu)\n"
TEMPLATES["SYSEXIT"] = "sys_sysexit(cpu)\n"

# ---- interrupt flag, EFLAGS ---------------------------------------------------------------------
# CLI/STI: allowed when CPL <= IOPL (real mode: CPL 0; V86: CPL 3, so IOPL must be 3).
TEMPLATES["CLI"] = """
if cpu.cpl > (cpu.flags >> 12) & 3:
    raise CPUFault(13, 0)
cpu.flags &= ~IF
"""
TEMPLATES["STI"] = """
f = cpu.flags
if cpu.cpl > (f >> 12) & 3:
    raise CPUFault(13, 0)
if not f & IF:
    cpu.shadow = True
    cpu.flags = f | IF
"""
# PUSHF: the image has VM and RF clear (32-bit); V86 with IOPL < 3 is #GP(0).
TEMPLATES["PUSHF"] = """
f = cpu.flags
if f & 0x20000 and f & 0x3000 != 0x3000:
    raise CPUFault(13, 0)
cpu.push$OSZ(cpu.get_flags() & $MASK & 0xFCFFFF)
"""
TEMPLATES["POPF"] = "sys_popf(cpu, $OSZ)\n"

# ---- software interrupts and IRET ---------------------------------------------------------------
# INT n in V86 mode with IOPL < 3 goes to the #GP handler (the V86 monitor); INT3 and INTO do not.
TEMPLATES["INT"] = """
f = cpu.flags
if f & 0x20000 and f & 0x3000 != 0x3000:
    raise CPUFault(13, 0)
cpu.interrupt($IMM, None, "soft", $NEXT)
"""
TEMPLATES["INT3"] = 'cpu.interrupt(3, None, "soft", $NEXT)\n'
TEMPLATES["INTO"] = """
if cond(cpu, 0):
    cpu.interrupt(4, None, "soft", $NEXT)
else:
    cpu.eip = $NEXT
"""
# INT1 (ICEBP): delivered like an external #DB: no gate DPL check, EXT set in error codes.
TEMPLATES["INT1"] = 'cpu.interrupt(1, None, "hw", $NEXT)\n'
TEMPLATES["IRET"] = "sys_iret(cpu, $OSZ, $NEXT)\n"


# ---- I/O permission -----------------------------------------------------------------------------
def io_check(cpu, port, size):
    """IN/OUT/INS/OUTS permission (SDM Vol. 1, 18.5): in protected mode with CPL > IOPL, and in
    V86 mode, every bit of the port range in the TSS I/O permission bitmap must be clear.
    ``size`` is in bytes (1, 2, 4) or bits (8, 16, 32)."""
    if not cpu.cr0 & 1:
        return
    f = cpu.flags
    if not f & _F.VM and cpu.cpl <= (f >> 12) & 3:
        return
    if size >= 8:
        size //= 8
    tsel, tbase, tlimit, tattr = cpu.tr
    if (tattr & 0xD) != 9 or tlimit < 0x67:            # not a 32-bit TSS: no bitmap
        raise CPUFault(_GP, 0)
    rd = cpu.mmu.read_sup
    iomap = rd((tbase + 0x66) & 0xFFFFFFFF, 2)
    off = iomap + (port >> 3)
    if off + 1 > tlimit:
        raise CPUFault(_GP, 0)
    bits = rd((tbase + off) & 0xFFFFFFFF, 2)
    if (bits >> (port & 7)) & ((1 << size) - 1):
        raise CPUFault(_GP, 0)
