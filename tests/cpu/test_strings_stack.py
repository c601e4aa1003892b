"""String instructions, multi-register stack instructions, loops and small misc instructions,
checked against unicorn 2.1.4 (differential: same code, registers and memory on both sides) in
32-bit flat protected mode and in 16-bit real mode, plus hand-derived SDM expectations where
unicorn cannot judge (segment-limit faults mid-string, I/O, the REP/run-loop contract).

The 80286 hardware vectors for the 16-bit forms run in test_singlestep_forms (real mode).
"""

import gzip
import json
import os
import random

import pytest

unicorn = pytest.importorskip("unicorn")
from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_32, UC_MODE_16, UC_HOOK_INTR  # noqa: E402
from unicorn import x86_const as X  # noqa: E402

from aero.cpu.cpu import (CPU, A_P, A_S, A_RW, A_ACCESSED, A_DB, A_G, A_CODE,  # noqa: E402
                          CR0_PE, CR0_MP, CR0_TS)
from aero.mem.bus import Bus  # noqa: E402

MEM = 0x110000                  # covers every real-mode address (segment FFFF + FFFF)
CODE = 0x1000
UREGS = (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
         X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI)
USEGS = (X.UC_X86_REG_ES, X.UC_X86_REG_CS, X.UC_X86_REG_SS, X.UC_X86_REG_DS,
         X.UC_X86_REG_FS, X.UC_X86_REG_GS)
NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
FLAGS_CMP = 0x8D5 | 0x400          # arithmetic flags and DF
FLAT = A_P | A_S | A_RW | A_ACCESSED | A_DB | A_G
FULL = os.environ.get("AERO_FULL") == "1"        # all 500 vectors per form (else the first 120)


# ---------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------
def aero_cpu(mode, segs=None, mem_size=MEM):
    cpu = CPU(Bus(mem_size))
    if mode == 32:
        cpu.cr0 |= CR0_PE
        for s in range(6):
            cpu.set_seg_cache(s, 0, 0, 0xFFFFFFFF, FLAT | (A_CODE if s == 1 else 0))
        cpu.mode_changed()
    else:
        for s in range(6):
            cpu.load_seg_real(s, (segs or {}).get(s, 0))
    return cpu


def run_aero(mode, code, regs, flags=0x2, mem=(), segs=None, step=None, setup=None,
             mem_size=MEM):
    """Run code + HLT at CODE; returns (cpu, fault) where fault is (vector, eip) or None."""
    cpu = aero_cpu(mode, segs, mem_size)
    ram = cpu.bus.ram
    for addr, data in mem:
        ram[addr: addr + len(data)] = data
    base = cpu.base[1]
    ram[base + CODE: base + CODE + len(code) + 1] = bytes(code) + b"\xf4"
    cpu.R[:] = list(regs)
    cpu.flags = flags | 0x2
    cpu.lf = None
    cpu.eip = CODE
    if setup:
        setup(cpu)
    faults = []

    def intr(vector, code_, kind, ret):
        faults.append((vector, ret))
        cpu.halted = True
    cpu.interrupt = intr
    for _ in range(100000):
        why = cpu.run(step or 1000000)
        if why != "budget":
            break
    assert why == "halt", why
    return cpu, (faults[0] if faults else None)


def run_unicorn(mode, code, regs, flags=0x2, mem=(), segs=None, map_size=MEM, setup=None):
    mu = Uc(UC_ARCH_X86, UC_MODE_32 if mode == 32 else UC_MODE_16)
    mu.mem_map(0, map_size)
    for addr, data in mem:
        mu.mem_write(addr, bytes(data))
    cs_base = 0
    if mode == 16 and segs:
        for s, sel in segs.items():
            mu.reg_write(USEGS[s], sel)
        cs_base = segs.get(1, 0) << 4
    mu.mem_write(cs_base + CODE, bytes(code) + b"\xf4")
    for r, v in zip(UREGS, regs):
        mu.reg_write(r, v)
    mu.reg_write(X.UC_X86_REG_EFLAGS, flags | 0x2)
    if setup:
        setup(mu)
    fault = []

    def on_intr(uc, intno, user):
        fault.append((intno, uc.reg_read(X.UC_X86_REG_EIP)))
        uc.emu_stop()
    mu.hook_add(UC_HOOK_INTR, on_intr)
    try:
        mu.emu_start(cs_base + CODE, cs_base + CODE + len(code), count=1000000)
    except UcError as e:
        fault.append(("ucerr", e.errno, mu.reg_read(X.UC_X86_REG_EIP)))
    return mu, (fault[0] if fault else None)


def compare(mode, code, regs, flags=0x2, mem=(), segs=None, step=None, mem_cmp=None,
            expect_fault=None, flags_cmp=FLAGS_CMP, setup=None, uc_setup=None):
    cpu, afault = run_aero(mode, code, regs, flags, mem, segs, step, setup)
    mu, ufault = run_unicorn(mode, code, regs, flags, mem, segs, setup=uc_setup)
    got = [cpu.R[i] for i in range(8)]
    want = [mu.reg_read(r) for r in UREGS]
    ctx = f"code={bytes(code).hex()} regs={[hex(r) for r in regs]} flags={flags:#x}"
    for i in range(8):
        assert got[i] == want[i], f"{NAMES[i]}: aero {got[i]:#x} unicorn {want[i]:#x} {ctx}"
    gf = cpu.get_flags() & flags_cmp
    uf = mu.reg_read(X.UC_X86_REG_EFLAGS) & flags_cmp
    assert gf == uf, f"flags: aero {gf:#x} unicorn {uf:#x} {ctx}"
    if afault is None:
        assert ufault is None, f"unicorn faulted {ufault} {ctx}"
        ueip = mu.reg_read(X.UC_X86_REG_EIP)
        assert (cpu.eip - 1) & 0xFFFFFFFF == ueip, f"eip aero {cpu.eip - 1:#x} unicorn {ueip:#x}"
    else:
        assert ufault is not None and ufault[0] == afault[0], f"fault aero {afault} unicorn {ufault}"
        assert afault[1] == ufault[1], f"fault eip aero {afault[1]:#x} unicorn {ufault[1]:#x}"
    if expect_fault is not None:
        assert afault is not None and afault[0] == expect_fault
    lo, hi = mem_cmp or (0, MEM)
    a = bytes(cpu.bus.ram[lo:hi])
    b = bytes(mu.mem_read(lo, hi - lo))
    if a != b:
        i = next(k for k in range(len(a)) if a[k] != b[k])
        raise AssertionError(f"memory differs at {lo + i:#x}: aero {a[i]:#x} unicorn {b[i]:#x} {ctx}")
    return cpu


def rnd32(rng):
    return rng.getrandbits(32)


# ---------------------------------------------------------------------------------------------
# String instructions
# ---------------------------------------------------------------------------------------------
STRING_OPS = {"MOVS": 0xA4, "CMPS": 0xA6, "STOS": 0xAA, "LODS": 0xAC, "SCAS": 0xAE}


def _string_case(rng, mode, op, width, rep, asz16, df, count):
    code = []
    if rep:
        code.append(rep)
    if asz16 != (mode == 16):
        code.append(0x67)
    if width == 2 and mode == 32 or width == 4 and mode == 16:
        code.append(0x66)
    code.append(STRING_OPS[op] + (0 if width == 1 else 1))
    regs = [rnd32(rng) for _ in range(8)]
    regs[4] = 0x0000F000 if mode == 16 else 0x000F0000
    if mode == 16:
        regs[4] = (regs[4] & 0xFFFF)
    span = max(count, 1) * width + 8
    if asz16:
        src, dst = 0x4000, 0x9000
        if df:
            src, dst = src + span, dst + span
        regs[6] = (regs[6] & 0xFFFF0000) | src
        regs[7] = (regs[7] & 0xFFFF0000) | dst
        regs[1] = (regs[1] & 0xFFFF0000) | count
    else:
        # 32-bit addressing; in real mode offsets must stay within the 64 KiB limit
        src, dst = (0x20000, 0x60000) if mode == 32 else (0x4000, 0x9000)
        if df:
            src, dst = src + span, dst + span
        regs[6], regs[7], regs[1] = src, dst, count
    if mode == 16:
        regs = [r & 0xFFFF if i in (4,) else r for i, r in enumerate(regs)]
    # small alphabets so that equal and unequal elements both occur (REPE / REPNE)
    a = bytes(rng.choice((0x11, 0x22)) for _ in range(span + 16))
    b = bytearray(a)
    for _ in range(rng.randrange(0, 4)):
        b[rng.randrange(len(b))] ^= 0xFF
    lo = min(src, dst) - 16
    mem = [(src - 16 if df else src, a), (dst - 16 if df else dst, bytes(b))]
    regs[0] = (regs[0] & ~0xFFFFFFFF) | int.from_bytes(a[:4], "little") if rng.random() < 0.5 \
        else regs[0]
    flags = 0x2 | (0x400 if df else 0) | rng.choice((0, 0x8D5))
    return code, regs, flags, mem, lo


@pytest.mark.parametrize("op", sorted(STRING_OPS))
@pytest.mark.parametrize("mode", [32, 16])
def test_string_ops_vs_unicorn(op, mode):
    rng = random.Random(f"{op}{mode}")
    n = 0
    for width in (1, 2, 4):
        for rep in (None, 0xF3, 0xF2):
            for asz16 in (False, True):
                for df in (0, 1):
                    for count in (0, 1, rng.randrange(2, 40)):
                        if not rep and count > 1:
                            continue
                        code, regs, flags, mem, lo = _string_case(
                            rng, mode, op, width, rep, asz16, df, count)
                        compare(mode, code, regs, flags, mem)
                        n += 1
    assert n > 50


def test_string_16bit_address_wraps():
    """67-prefixed string ops in 32-bit code use SI/DI/CX and wrap at 64 KiB."""
    for op, width, df in ((0xA4, 1, 0), (0xA5, 4, 0), (0xA5, 2, 1), (0xAB, 4, 1), (0xA6, 1, 0)):
        code = [0xF3, 0x67] + ([0x66] if width == 2 else []) + [op]
        si = 0xFFF9 if not df else 0x0006
        regs = [0x11223344, 0xABCD0000 | 9, 0, 0, 0xF0000, 0, 0x12340000 | si,
                0x56780000 | (si ^ 0x8000)]
        mem = [(0x0000, bytes(range(0x40, 0x80))), (0xFFC0, bytes(range(0x80, 0xC0))),
               (0x7FC0, bytes(range(0x20, 0x60))), (0x8000, bytes(range(0x60, 0xA0)))]
        # keep the code page out of the wrapped range
        compare(32, code, regs, 0x2 | (0x400 if df else 0), mem)


def test_segment_override_applies_to_source_only():
    """Real mode with distinct segment bases: the override picks the source segment; the
    destination is always ES."""
    segs = {0: 0x3000, 1: 0, 2: 0x5000, 3: 0x1000, 4: 0x2000, 5: 0x4000}
    rng = random.Random(7)
    mem = [(base, bytes(rng.getrandbits(8) for _ in range(0x200)))
           for base in (0x10000, 0x20000, 0x30000, 0x40000, 0x50000, 0x60000)]
    for prefix in (None, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65):
        for body in ([0xF3, 0xA4], [0xF3, 0xA7], [0xAC], [0xF2, 0xAE], [0x66, 0xA5], [0xD7],
                     [0xF3, 0x66, 0xAB]):
            code = ([prefix] if prefix else []) + body
            regs = [0x40, 8, 0, 0x10, 0xF000, 0, 0x20, 0x100]
            if prefix == 0x2E:                 # CS base 0: the source is the code page
                regs[6] = CODE - 0x10
                regs[3] = CODE - 0x80
            compare(16, code, regs, 0x2, mem, segs)


def test_overlapping_movs_matches_element_order():
    """REP MOVS with overlapping ranges behaves element by element (memset-by-overlap idiom),
    forward and backward, for every element size and distance (the bulk path must agree)."""
    rng = random.Random(3)
    base = 0x20000
    pattern = bytes(rng.getrandbits(8) for _ in range(0x400))
    for width in (1, 2, 4):
        for dist in (-9, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 8, 9):
            for df in (0, 1):
                count = 37
                code = [0xF3] + ([0x66] if width == 2 else []) + [0xA4 if width == 1 else 0xA5]
                src = base + 0x100 if not df else base + 0x300
                regs = [0, count, 0, 0, 0xF0000, 0, src, src + dist]
                compare(32, code, regs, 0x2 | (0x400 if df else 0), [(base, pattern)])


def test_rep_movs_self_modifying_code():
    """REP MOVSB overwriting the instructions right after it: the new code runs."""
    # rep movsb ; nop nop nop nop ; hlt   (the movsb copies inc eax x4 over the nops)
    code = [0xF3, 0xA4, 0x90, 0x90, 0x90, 0x90]
    regs = [0, 4, 0, 0, 0xF0000, 0, 0x20000, CODE + 2]
    mem = [(0x20000, b"\x40\x40\x40\x40")]
    cpu = compare(32, code, regs, 0x2, mem)
    assert cpu.R[0] == 4
    # the overwritten code was already compiled (first pass copies nothing)
    # mov ebx,2 ; L: rep movsb ; nop x4 ; mov ecx,4 ; dec ebx ; jnz L
    code = [0xBB, 2, 0, 0, 0, 0xF3, 0xA4, 0x90, 0x90, 0x90, 0x90, 0xB9, 4, 0, 0, 0, 0x4B,
            0x75, 0xF2]
    regs = [0, 0, 0, 0, 0xF0000, 0, 0x20000, CODE + 7]
    cpu = compare(32, code, regs, 0x2, mem)
    assert cpu.R[0] == 4
    # REP STOSW (two elements: the bulk path) over the nops
    code = [0x66, 0xF3, 0xAB, 0x90, 0x90, 0x90, 0x90]
    regs = [0x40404040, 2, 0, 0, 0xF0000, 0, 0, CODE + 3]
    cpu = compare(32, code, regs, 0x2)
    assert cpu.R[0] == 0x40404044


@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_rep_interrupted_by_budget_resumes(step):
    """The run loop gives a REP instruction at most the remaining budget; it resumes where it
    stopped, and every iteration counts one retired instruction."""
    rng = random.Random(step)
    for body, count in (([0xF3, 0xA5], 50), ([0xF3, 0xAA], 33), ([0xF3, 0xA6], 40),
                        ([0xF2, 0xAF], 21), ([0xF3, 0xAD], 9)):
        code = [0x90] + body + [0x90]
        regs = [0x22222222, count, 0, 0, 0xF0000, 0, 0x20000, 0x30000]
        mem = [(0x20000, bytes(rng.choice((0x22, 0x23)) for _ in range(0x200))),
               (0x30000, bytes(rng.choice((0x22, 0x23)) for _ in range(0x200)))]
        cpu = compare(32, code, regs, 0x2, mem, step=step)
        iterations = count - cpu.R[1]
        assert cpu.icount == 1 + iterations + 1 + 1       # nop, REP iterations, nop, hlt


def test_rep_count_zero_retires_as_one():
    cpu, _ = run_aero(32, [0xF3, 0xA4, 0x90], [0, 0, 0, 0, 0xF0000, 0, 0x20000, 0x30000])
    assert cpu.icount == 3 and cpu.R[6] == 0x20000


def test_fault_mid_string_keeps_completed_iterations():
    """A fault in iteration k leaves the registers as iteration k-1 left them, EIP at the
    instruction (unicorn: the destination runs into unmapped memory; Aero: into the ES
    limit at the same offset)."""
    for body, width in (([0xF3, 0xAB], 4), ([0xF3, 0xA4], 1), ([0xF3, 0x66, 0xA5], 2)):
        code = [0x90] + body
        regs = [0x12345678, 300, 0, 0, 0x8000, 0, 0x9000, 0x1FF00 + 8]
        mem = [(0x9000, bytes(range(256)) * 4)]

        def limit_es(cpu):
            cpu.set_seg_cache(0, 0, 0, 0x1FFFF, FLAT & ~A_G)
        cpu, afault = run_aero(32, code, regs, 0x2, mem, setup=limit_es, mem_size=MEM)
        mu, ufault = run_unicorn(32, code, regs, 0x2, mem, map_size=0x20000)
        assert afault == (13, CODE + 1)
        assert ufault[0] == "ucerr" and ufault[2] == CODE + 1
        for i in range(8):
            assert cpu.R[i] == mu.reg_read(UREGS[i]), NAMES[i]
        done = (0x100 - 8) // width
        assert cpu.R[1] == 300 - done
        assert bytes(cpu.bus.ram[0x1FF00:0x20000]) == bytes(mu.mem_read(0x1FF00, 0x100))


PD, PT0, PT1 = 0x70000, 0x71000, 0x72000


def _paging_mem(notpresent):
    """Page tables: 0-4 MiB identity; linear 4 MiB + i pages -> scattered physical pages
    0x90000 + perm[i] pages, page ``notpresent`` absent."""
    import struct
    pd = struct.pack("<II", PT0 | 7, PT1 | 7) + bytes(4096 - 8)
    pt0 = b"".join(struct.pack("<I", (i << 12) | 7) for i in range(1024))
    perm = [3, 0, 6, 1, 7, 2, 5, 4]
    pt1 = b"".join(struct.pack("<I", (0x90000 + perm[i] * 0x1000) | 7 if i != notpresent else 0)
                   for i in range(8)) + bytes(4096 - 32)
    data = bytes((i * 13 + 7) & 0xFF for i in range(0x8000))
    return [(PD, pd), (PT0, pt0), (PT1, pt1), (0x90000, data)]


def _aero_paging(cpu):
    cpu.cr3 = PD
    cpu.mmu.cr3_written()
    cpu.write_cr0(cpu.cr0 | 0x80000000)


def _uc_paging(mu):
    mu.reg_write(X.UC_X86_REG_CR3, PD)
    mu.reg_write(X.UC_X86_REG_CR0, mu.reg_read(X.UC_X86_REG_CR0) | 0x80000001)


@pytest.mark.parametrize("step", [None, 5])
def test_rep_strings_with_paging_vs_unicorn(step):
    """With paging the bulk path moves page-sized runs: scattered physical pages, elements
    straddling pages, a not-present page mid-string (#PF with the completed iterations kept,
    CR2), A/D bits in the page tables, both directions."""
    L = 0x400000
    cases = [([0xF3, 0xA5], 0x1000, L + 0x800, L + 0x4002, 0),      # movsd, dst unaligned
             ([0xF3, 0xA4], 0x3000, L + 0x10, L + 0x3005, 0),       # movsb into page 5
             ([0xF3, 0x66, 0xA5], 0x900, L + 0x1FFF, L + 0x6001, 0),  # movsw, both straddle
             ([0xF3, 0xA5], 0x700, L + 0x3FF0, L + 0x7FF0, 0x400),  # movsd backwards
             ([0xF3, 0xAB], 0x1800, 0, L + 0x7FFC, 0x400),          # stosd backwards to page 5
             ([0xF3, 0xAA], 0x2800, 0, L + 0x2000, 0),              # stosb, ends in page 4
             ([0xF3, 0xAB], 0x100, 0, L + 0x0FFE, 0),               # stosd straddling, no fault
             ([0xF3, 0xA5], 0x200, L + 0x5000 - 0x10, L + 0x10, 0)]  # source page absent
    for code, count, src, dst, df in cases:
        regs = [0x89ABCDEF, count, 0, 0, 0x8000, 0, src, dst]
        cpu = compare(32, code, regs, 0x2 | df, _paging_mem(5), step=step,
                      setup=_aero_paging, uc_setup=_uc_paging)
        if cpu.R[1]:
            assert cpu.cr2 >> 12 == (L >> 12) + 5


@pytest.mark.parametrize("paging", [False, True])
def test_long_scasb_vs_unicorn(paging):
    """REPNE/REPE SCASB over long runs (strlen / memchr / skip-spaces idioms), across pages,
    both directions, ending on a match, on the count or on a not-present page."""
    L = 0x400000 if paging else 0x90000
    pm = _paging_mem(6)
    body = bytearray(b"\x20" * 0x8000)
    body[0x2345] = 0
    body[0x0123] = 0x41
    pm[3] = (0x90000, bytes(body))
    if paging:                       # the same bytes through the scattered mapping
        perm = [3, 0, 6, 1, 7, 2, 5, 4]
        phys = bytearray(0x8000)
        for i in range(8):
            phys[perm[i] * 0x1000:(perm[i] + 1) * 0x1000] = body[i * 0x1000:(i + 1) * 0x1000]
        pm[3] = (0x90000, bytes(phys))
    setup, uc_setup = (_aero_paging, _uc_paging) if paging else (None, None)
    cases = [(0xF2, 0x00, 0x4000, L + 0x10, 0), (0xF2, 0x00, 0x1000, L + 0x10, 0),
             (0xF2, 0x00, 0x7000, L + 0x5FF0, 0x400), (0xF3, 0x20, 0x4000, L + 0x200, 0),
             (0xF3, 0x20, 0x4000, L + 0x5000, 0x400), (0xF2, 0x99, 0x6000, L + 0x10, 0),
             (0xF3, 0x20, 0x300, L + 0x1F0, 0)]
    for rep, al, count, di, df in cases:
        regs = [0xABCDEF00 | al, count, 0, 0, 0x8000, 0, 0, di]
        compare(32, [rep, 0xAE], regs, 0x2 | df, pm, setup=setup, uc_setup=uc_setup)
        compare(32, [rep, 0xAE], regs, 0x2 | df, pm, setup=setup, uc_setup=uc_setup, step=999)


@pytest.mark.parametrize("paging", [False, True])
def test_long_cmps_vs_unicorn(paging):
    """REPE/REPNE CMPS over long runs (memcmp): equal runs across pages, a difference deep
    inside, both directions, every element size, misaligned elements."""
    L = 0x400000 if paging else 0x90000
    # every page present: which of [ESI] and [EDI] CMPS reads first is not architectural
    # (Aero and Bochs read the source first, QEMU the destination), so a fault on one of them
    # would leave different accessed bits
    pm = _paging_mem(8)
    half = bytes((i * 29 + 5) & 0xFF for i in range(0x4000))
    other = bytearray(half)
    other[0x2345] ^= 0x10
    body = half + bytes(other)
    if paging:
        perm = [3, 0, 6, 1, 7, 2, 5, 4]
        phys = bytearray(0x8000)
        for i in range(8):
            phys[perm[i] * 0x1000:(perm[i] + 1) * 0x1000] = body[i * 0x1000:(i + 1) * 0x1000]
        body = bytes(phys)
    pm[3] = (0x90000, body)
    setup, uc_setup = (_aero_paging, _uc_paging) if paging else (None, None)
    for prefix, count, off, df in (([0xF3, 0xA6], 0x3000, 0x10, 0), ([0xF3, 0xA6], 0x2000, 0x10, 0),
                                   ([0xF3, 0xA7], 0xF00, 0x11, 0), ([0xF3, 0x66, 0xA7], 0x1F00, 0x3, 0),
                                   ([0xF3, 0xA6], 0x3000, 0x3FF0, 0x400),
                                   ([0xF3, 0xA7], 0x800, 0x3FF1, 0x400),
                                   ([0xF2, 0xA6], 0x1000, 0x10, 0)):
        regs = [0, count, 0, 0, 0x8000, 0, L + off, L + 0x4000 + off]
        compare(32, prefix, regs, 0x2 | df, pm, setup=setup, uc_setup=uc_setup)


def test_real_mode_word_at_ffff_faults_before_any_change():
    """A 386+ raises #GP(0) for a word string operand at offset FFFFh with SI/DI/CX intact
    (the 80286 recorded them advanced; SDM Vol. 3, 20.1.? real-mode exceptions)."""
    mem = [(0, b"\x00" * 0x34 + b"\x00\x20\x00\x00")]        # IVT 13 -> 0000:2000 (hlt)
    for code, si, di, cx in (([0xA5], 0xFFFF, 0x10, 1), ([0xF3, 0xAB], 0, 0xFFF1, 20)):
        regs = [0, cx, 0, 0, 0x8000, 0, si, di]
        cpu, fault = run_aero(16, code, regs, 0x2, mem)
        assert fault == (13, CODE)
        iters = (0xFFFF - di) // 2 if code[0] == 0xF3 else 0
        assert cpu.R[1] == cx - iters and cpu.R[6] == si and cpu.R[7] == di + 2 * iters


# ---------------------------------------------------------------------------------------------
# I/O: IN OUT INS OUTS (real mode: no I/O protection)
# ---------------------------------------------------------------------------------------------
def test_port_io_real_mode():
    log = []

    def port_in(port, size):
        v = (port * 7 + len(log)) & ((1 << (8 * size)) - 1)
        log.append(("in", port, size, v))
        return v

    def port_out(port, size, value):
        log.append(("out", port, size, value))

    def setup(cpu):
        cpu.port_in = port_in
        cpu.port_out = port_out
    # in al,0x60; in ax,dx; in eax,dx; out 0x80,al; out dx,ax; out dx,eax; out 0x71,eax
    code = [0xE4, 0x60, 0xED, 0x66, 0xED, 0xE6, 0x80, 0xEF, 0x66, 0xEF, 0x66, 0xE7, 0x71]
    cpu, fault = run_aero(16, code, [0x11223344, 0, 0x3F8, 0, 0x8000, 0, 0, 0], setup=setup)
    assert fault is None
    assert [(k, p, s) for k, p, s, _ in log] == [
        ("in", 0x60, 1), ("in", 0x3F8, 2), ("in", 0x3F8, 4), ("out", 0x80, 1),
        ("out", 0x3F8, 2), ("out", 0x3F8, 4), ("out", 0x71, 4)]
    v3 = log[2][3]
    assert log[3][3] == v3 & 0xFF and log[4][3] == v3 & 0xFFFF and log[5][3] == v3
    assert cpu.R[0] == v3

    # rep insw (DF=1); cld; mov cx,4; rep es outsb; mov di,0x300; insd
    log.clear()
    code = [0xF3, 0x6D, 0xFC, 0xB9, 4, 0, 0xF3, 0x26, 0x6E, 0xBF, 0x00, 0x03, 0x66, 0x6D]
    regs = [0, 3, 0x1F0, 0, 0x8000, 0, 0x100, 0x206]
    mem = [(0x20100, bytes(range(0x50, 0x58))), (0x30100, bytes(range(0x60, 0x68)))]
    cpu, fault = run_aero(16, code, regs, 0x2 | 0x400, mem, segs={0: 0x2000, 3: 0x3000},
                          setup=setup)
    assert fault is None
    ins = [v for k, _, s, v in log if k == "in" and s == 2]
    assert len(ins) == 3
    ram = cpu.bus.ram
    for i, v in enumerate(ins):
        a = 0x20000 + 0x206 - 2 * i
        assert ram[a] | ram[a + 1] << 8 == v
    outs = [v for k, _, s, v in log if k == "out"]
    assert outs == [0x50, 0x51, 0x52, 0x53]              # ES:SI, not DS:SI
    assert cpu.R[1] == 0 and cpu.R[6] == 0x104
    d = [v for k, _, s, v in log if k == "in" and s == 4]
    assert len(d) == 1 and cpu.R[7] == 0x304
    assert int.from_bytes(ram[0x20300:0x20304], "little") == d[0]


def test_port_io_protected_mode_permission():
    """CPL 3 > IOPL 0: the TSS I/O bitmap decides, per byte of the access; a denied IN/OUT/
    INS/OUTS raises #GP(0) before any port or register is touched (SDM Vol. 1, 18.5.2)."""
    log = []
    tss = 0x50000
    bitmap = bytearray(b"\xff" * 0x2001)
    for port in (0x60, 0x3F8, 0x3F9, 0x3FA, 0x3FB):
        bitmap[port >> 3] &= ~(1 << (port & 7))

    def setup(cpu):
        cpu.set_seg_cache(1, 0x1B, 0, 0xFFFFFFFF, FLAT | A_CODE | 0x60)
        cpu.set_seg_cache(2, 0x23, 0, 0xFFFFFFFF, FLAT | 0x60)
        cpu.mode_changed()
        assert cpu.cpl == 3
        cpu.tr = [0x28, tss, 0x68 + len(bitmap) - 1, 0x8B]
        cpu.bus.ram[tss + 0x66: tss + 0x68] = (0x68).to_bytes(2, "little")
        cpu.bus.ram[tss + 0x68: tss + 0x68 + len(bitmap)] = bitmap
        cpu.port_in = lambda port, size: log.append(("in", port, size)) or 0x5A5A5A5A
        cpu.port_out = lambda port, size, v: log.append(("out", port, size, v))

    regs = [0x11111111, 2, 0x3F8, 0, 0x8000, 0, 0x20000, 0x30000]
    allowed = [([0xE4, 0x60], [("in", 0x60, 1)]),
               ([0xED], [("in", 0x3F8, 4)]),
               ([0xF3, 0x6E], [("out", 0x3F8, 1, 0), ("out", 0x3F8, 1, 0)]),
               ([0xF3, 0x6D], [("in", 0x3F8, 4), ("in", 0x3F8, 4)]),
               ([0x66, 0xEF], [("out", 0x3F8, 2, 0x1111)])]
    for code, expect in allowed:
        log.clear()
        cpu, fault = run_aero(32, code, regs, 0x2, setup=setup)
        # the closing HLT is privileged at CPL 3: its #GP marks the end
        assert fault == (13, CODE + len(code)) and log == expect, (code, log)
    denied = [[0xE4, 0x61], [0xE6, 0x61], [0x42] * 4 + [0xEC], [0x42, 0x42, 0xED],  # inc edx
              [0x42, 0x42, 0xF3, 0x6D], [0x42, 0x42, 0xF3, 0x6F], [0x42] * 4 + [0x6E]]
    for code in denied:
        log.clear()
        cpu, fault = run_aero(32, code, regs, 0x2, setup=setup)
        pre = code.count(0x42)
        assert fault == (13, CODE + pre) and log == [], (code, log)
        assert cpu.R[0] == regs[0] and cpu.R[1] == regs[1] and cpu.R[6] == regs[6]
        assert cpu.R[7] == regs[7] and cpu.R[2] == regs[2] + pre


# ---------------------------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------------------------
def test_loops_vs_unicorn():
    rng = random.Random(11)
    for mode in (32, 16):
        for asz_prefix in (False, True):
            p67 = [0x67] if asz_prefix else []
            for cc, op in ((2, 0xE2), (1, 0xE1), (0, 0xE0)):
                for count in (0, 1, 2, 5, 0x10003):
                    for k in (0, 3, 7):
                        # L: inc eax ; cmp eax, k ; loopX L ; hlt
                        imm = k.to_bytes(4 if mode == 32 else 2, "little")
                        body = [0x40, 0x3D] + list(imm)
                        code = body + p67 + [op, (-(len(body) + len(p67) + 2)) & 0xFF]
                        a16 = (mode == 16) != asz_prefix
                        eff = count & (0xFFFF if a16 else 0xFFFFFFFF)
                        if (eff == 0 or eff > 0x100) and (cc == 2 or cc == 0 and k == 0):
                            continue            # would run 64K / 4G iterations
                        ecx = count | (rng.getrandbits(8) << 24 if a16 else 0)
                        regs = [0, ecx, 0, 0, 0x8000, 0, 0, 0]
                        # unicorn deviation: LOOPE/LOOPNE lose AF of the preceding CMP
                        # (inc eax; cmp eax,3; loope -> unicorn AF=0, but 1 - 3 borrows
                        # from bit 4; SDM: LOOPcc changes no flags)
                        compare(mode, code, regs, 0x2,
                                flags_cmp=FLAGS_CMP & ~0x10 if cc != 2 else FLAGS_CMP)
            for ecx in (0, 1, 0x10000, 0xFFFF):
                # jcxz +1 ; inc eax ; hlt
                code = p67 + [0xE3, 0x01, 0x40]
                compare(mode, code, [0, ecx, 0, 0, 0x8000, 0, 0, 0], 0x2)


def test_loop_with_16bit_operand_size_masks_target():
    """66-prefixed LOOP in 32-bit code: the target is masked to 16 bits."""
    code_at = 0x12000
    # at 0x12000: mov ecx,2 ; 66 loop +0x10 -> target (0x12008 + 0x10) & 0xFFFF = 0x2018
    rel = 0x10
    prog = bytes([0xB9, 2, 0, 0, 0, 0x66, 0xE2, rel])
    nxt = code_at + len(prog)
    target = (nxt + rel) & 0xFFFF
    mu_mem = [(code_at, prog), (target, b"\x40\xf4"), (nxt, b"\xf4")]
    # jump into code_at from CODE
    jmp = [0xE9] + list(((code_at - (CODE + 5)) & 0xFFFFFFFF).to_bytes(4, "little"))
    regs = [0, 0, 0, 0, 0x8000, 0, 0, 0]
    cpu, _ = run_aero(32, jmp, regs, 0x2, mu_mem)
    mu = Uc(UC_ARCH_X86, UC_MODE_32)
    mu.mem_map(0, MEM)
    for a, d in mu_mem:
        mu.mem_write(a, d)
    mu.mem_write(CODE, bytes(jmp))
    mu.emu_start(CODE, target + 1, count=100)
    assert mu.reg_read(X.UC_X86_REG_EIP) == target + 1 == cpu.eip - 1
    assert cpu.R[0] == mu.reg_read(X.UC_X86_REG_EAX) == 1
    assert cpu.R[1] == mu.reg_read(X.UC_X86_REG_ECX) == 1


# ---------------------------------------------------------------------------------------------
# Stack instructions
# ---------------------------------------------------------------------------------------------
def _stack_regs(rng, mode, esp):
    regs = [rnd32(rng) for _ in range(8)]
    regs[4] = esp
    if mode == 16:
        regs = [r & 0xFFFF if i == 4 else r for i, r in enumerate(regs)]
    return regs


def test_pusha_popa_vs_unicorn():
    rng = random.Random(5)
    stack = bytes(rng.getrandbits(8) for _ in range(0x100))
    for mode in (32, 16):
        for p66 in ([], [0x66]):
            for code in ([0x60], [0x61], [0x60, 0x61]):
                for esp in (0x8000, 0x8004, 0x8081):
                    regs = _stack_regs(rng, mode, esp)
                    compare(mode, p66 + code if len(code) == 1 else p66 + [0x60] + p66 + [0x61],
                            regs, 0x2, [(0x7F80, stack)])


def test_pusha_wraps_sp_in_real_mode():
    rng = random.Random(6)
    for sp in (0x0004, 0x0010, 0x0000):
        regs = _stack_regs(rng, 16, sp)
        compare(16, [0x60], regs, 0x2, segs={2: 0x3000})


@pytest.mark.parametrize("mode", [32, 16])
def test_enter_vs_unicorn(mode):
    rng = random.Random(mode)
    frame = bytes(rng.getrandbits(8) for _ in range(0x400))
    for p66 in ([], [0x66]):
        for level in (0, 1, 2, 3, 5, 31, 32, 33, 255):
            for alloc in (0, 4, 0x123):
                for ebp_delta in (0x100, 0, -4, 4, 2, -2):
                    esp = 0x8000
                    regs = _stack_regs(rng, mode, esp)
                    # EBP's upper half as ESP's: with operand size != stack size unicorn writes
                    # [E]BP at the stack size, the SDM and Bochs at the operand size
                    # (test_enter_mixed_sizes_sdm)
                    regs[5] = esp + ebp_delta
                    code = p66 + [0xC8, alloc & 0xFF, alloc >> 8, level]
                    compare(mode, code, regs, 0x2, [(0x7C00, frame)])


def test_enter_mixed_sizes_sdm():
    """Operand size != stack size (SDM Vol. 2, ENTER; Bochs agrees): FrameTemp is the
    [E]SP value after pushing [E]BP; EBP <- FrameTemp (32-bit operand) / BP <- FrameTemp
    (16-bit operand, upper EBP kept); [E]SP moves at the stack size."""
    import struct
    frame = bytes((i * 7 + 1) & 0xFF for i in range(0x800))
    # 16-bit code, 66 ENTER 8,2 (32-bit operands on a 16-bit stack), ESP/EBP upper halves set
    regs = [0, 0, 0, 0, 0xABCD8000, 0x12348010, 0, 0]
    cpu, fault = run_aero(16, [0x66, 0xC8, 8, 0, 2], regs, 0x2, [(0x7C00, frame)])
    assert fault is None
    assert cpu.R[5] == 0xABCD7FFC                          # EBP <- ESP after the push
    assert cpu.R[4] == 0xABCD7FFC - 8 - 8                  # SP: 2 more pushes, 8 allocated
    ram = cpu.bus.ram
    assert struct.unpack_from("<I", ram, 0x7FFC)[0] == 0x12348010       # old EBP
    assert struct.unpack_from("<I", ram, 0x7FF8)[0] == struct.unpack_from("<I", frame, 0x40C)[0]
    assert struct.unpack_from("<I", ram, 0x7FF4)[0] == 0xABCD7FFC      # FrameTemp
    # 32-bit code, 66 ENTER 4,1 (16-bit operands on a 32-bit stack)
    regs = [0, 0, 0, 0, 0x00018000, 0x5555F000, 0, 0]
    cpu, fault = run_aero(32, [0x66, 0xC8, 4, 0, 1], regs, 0x2)
    assert fault is None
    assert cpu.R[5] == 0x55557FFE                          # BP <- SP after the push
    assert cpu.R[4] == 0x00018000 - 2 - 2 - 4
    assert cpu.bus.ram[0x17FFE] | cpu.bus.ram[0x17FFF] << 8 == 0xF000
    assert cpu.bus.ram[0x17FFC] | cpu.bus.ram[0x17FFD] << 8 == 0x7FFE


def test_leave_vs_unicorn():
    rng = random.Random(9)
    stack = bytes(rng.getrandbits(8) for _ in range(0x100))
    for mode in (32, 16):
        for p66 in ([], [0x66]):
            regs = _stack_regs(rng, mode, 0x7000)
            regs[5] = (regs[5] & 0xFFFF0000) | 0x8010 if mode == 16 else 0x8010
            compare(mode, p66 + [0xC9], regs, 0x2, [(0x7F80, stack)])
            # enter then leave restores ESP/EBP
            regs = _stack_regs(rng, mode, 0x8000)
            regs[5] = (regs[5] & 0xFFFF0000) | 0x8040 if mode == 16 else 0x8040
            compare(mode, p66 + [0xC8, 0x10, 0, 3] + p66 + [0xC9], regs, 0x2, [(0x7F00, stack)])


def test_pop_rm_vs_unicorn():
    rng = random.Random(13)
    stack = bytes(rng.getrandbits(8) for _ in range(0x100))
    cases32 = ([0x8F, 0x04, 0x24], [0x8F, 0x44, 0x24, 0x04], [0x8F, 0x44, 0x24, 0xFC],
               [0x66, 0x8F, 0x04, 0x24], [0x66, 0x8F, 0x44, 0x24, 0x02], [0x8F, 0x00],
               [0x8F, 0xC3], [0x8F, 0xC4], [0x66, 0x8F, 0xC4], [0x8F, 0x04, 0x64],
               [0x8F, 0x05, 0x00, 0x90, 0x00, 0x00], [0x67, 0x8F, 0x06, 0x00, 0x90])
    cases16 = ([0x8F, 0x06, 0x00, 0x90], [0x8F, 0x07], [0x8F, 0x46, 0x02], [0x66, 0x8F, 0x00],
               [0x8F, 0xC4], [0x8F, 0xC0], [0x67, 0x8F, 0x04, 0x24])
    for mode, cases in ((32, cases32), (16, cases16)):
        for code in cases:
            regs = _stack_regs(rng, mode, 0x8000)
            regs[0] = 0x9010
            regs[3] = 0x9020
            regs[5] = 0x7FF0
            regs[6] = 0x9030
            regs[7] = 0x9040
            compare(mode, code, regs, 0x2, [(0x7F80, stack)])


def test_pop_rm_fault_leaves_esp():
    """POP m with a faulting write (ES... here DS limit) keeps ESP unchanged."""
    def limit_ds(cpu):
        cpu.set_seg_cache(3, 0, 0, 0x8FFF, FLAT & ~A_G)
    regs = [0x9000, 0, 0, 0, 0x8000, 0, 0, 0]
    cpu, fault = run_aero(32, [0x8F, 0x00], regs, 0x2, setup=limit_ds)
    assert fault == (13, CODE) and cpu.R[4] == 0x8000


def test_push_seg_vs_unicorn():
    """PUSH Sreg with 16/32-bit operand size (real mode): a 32-bit push moves SP by 4 and
    writes the zero-extended selector (unicorn/QEMU; the SDM also allows a 16-bit write)."""
    segs = {0: 0x1234, 2: 0x0800, 3: 0x2345, 4: 0x3456, 5: 0x4567}
    for code in ([0x06], [0x0E], [0x16], [0x1E], [0x0F, 0xA0], [0x0F, 0xA8],
                 [0x66, 0x06], [0x66, 0x0E], [0x66, 0x1E], [0x66, 0x0F, 0xA8]):
        regs = [0, 0, 0, 0, 0x1000, 0, 0, 0]
        compare(16, code, regs, 0x2, [(0x8000 + 0xF00, b"\xAA" * 0x100)], segs)


def test_bound_vs_unicorn():
    for mode in (32, 16):
        for p66 in ([], [0x66]):
            wide = (mode == 32) != bool(p66)
            n = 4 if wide else 2
            for lo, hi, idx in ((-5, 10, 3), (-5, 10, -5), (-5, 10, 10), (-5, 10, -6),
                                (-5, 10, 11), (7, 3, 5), (0, 0x7FFF, -1)):
                m = (1 << (8 * n)) - 1
                mem = [(0x9000, (lo & m).to_bytes(n, "little") + (hi & m).to_bytes(n, "little"))]
                regs = [idx & 0xFFFFFFFF, 0, 0, 0x9000, 0x8000, 0, 0, 0]
                if not wide:
                    regs[0] = (0xABCD0000 | (idx & 0xFFFF))
                modrm = [0x03] if mode == 32 else [0x07]          # [ebx] / [bx]
                out = not (lo <= idx <= hi)
                compare(mode, p66 + [0x62] + modrm, regs, 0x2, mem,
                        expect_fault=5 if out else None)


def test_xlat_vs_unicorn():
    rng = random.Random(17)
    table = bytes(rng.getrandbits(8) for _ in range(0x300))
    for mode in (32, 16):
        for p67 in ([], [0x67]):
            for al in (0, 0x7F, 0x80, 0xFF):
                a16 = (mode == 16) != bool(p67)
                regs = [0xAABBCC00 | al, 0, 0, (0x12340000 if a16 else 0) | 0x9000, 0x8000,
                        0, 0, 0]
                compare(mode, p67 + [0xD7], regs, 0x2, [(0x9000, table)])


def test_wait_and_ud2():
    cpu, fault = run_aero(32, [0x9B, 0x40], [0] * 4 + [0x8000] + [0] * 3)
    assert fault is None and cpu.R[0] == 1

    def ts_mp(cpu):
        cpu.cr0 |= CR0_MP | CR0_TS
    cpu, fault = run_aero(32, [0x9B], [0] * 4 + [0x8000] + [0] * 3, setup=ts_mp)
    assert fault == (7, CODE)

    def ts_only(cpu):
        cpu.cr0 |= CR0_TS
    cpu, fault = run_aero(32, [0x9B], [0] * 4 + [0x8000] + [0] * 3, setup=ts_only)
    assert fault is None
    mu, ufault = run_unicorn(32, [0x0F, 0x0B], [0] * 4 + [0x8000] + [0] * 3)
    cpu, fault = run_aero(32, [0x0F, 0x0B], [0] * 4 + [0x8000] + [0] * 3)
    assert fault == (6, CODE)
    assert ufault is not None and ufault[-1] == CODE


# ---------------------------------------------------------------------------------------------
# The 80286 hardware vectors for every 16-bit form owned here
# ---------------------------------------------------------------------------------------------
FORMS = ["06", "0E", "16", "1E", "60", "61", "62", "6C", "6D", "6E", "6F", "8F", "9B",
         "A4", "A5", "A6", "A7", "AA", "AB", "AC", "AD", "AE", "AF", "C9", "D7", "E0", "E1",
         "E2", "E3", "E4", "E5", "E6", "E7", "EC", "ED", "EE", "EF"]


@pytest.mark.parametrize("form", FORMS)
def test_singlestep_80286_forms(form, singlestep_dir):
    from aero.conformance import singlestep as S, singlestep_rules as rules
    meta = json.load(open(os.path.join(singlestep_dir, "metadata.json")))
    tests = json.load(gzip.open(os.path.join(singlestep_dir, form + ".json.gz")))
    if not FULL:
        tests = tests[:120]
    h = S.Harness()
    mask = S.flags_mask(meta, form)
    passed = considered = 0
    failures = []
    for t in tests:
        if rules.excluded_by(t):
            continue
        considered += 1
        err = h.run_test(t, mask)
        if err is None:
            passed += 1
        else:
            failures.append((t["name"], err))
    assert considered >= (400 if FULL else 80)
    assert passed >= 0.995 * considered, failures[:5]
