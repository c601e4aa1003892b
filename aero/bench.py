"""`aero bench`: guest MIPS of the interpreter on fixed kernels, each with a validated checksum.

Each kernel is a small 32-bit flat-mode loop (hand-assembled below, bytes annotated) that runs a
fixed number of iterations and halts; the benchmark runs it repeatedly for about ``--seconds``,
counts retired guest instructions (REP iterations count one each) and divides by wall time.
The final register state is checked against a checksum computed independently in Python, so a
fast-but-wrong interpreter fails the benchmark instead of looking good.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time

from .build import ROOT, build_machine
from .config import FIRMWARE, MachineConfig
from .cpu.presets import flat32

CODE = 0x1000
DATA = 0x100000
M32 = 0xFFFFFFFF


def _d(v):
    return struct.pack("<I", v & M32)


def _alu_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\xbb" + _d(0x12345) +      # mov ebx, 0x12345
        b"\x31\xd2"                  # xor edx, edx
        b"\x31\xf6"                  # xor esi, esi
        b"\x31\xff"                  # xor edi, edi
        # loop:
        b"\x01\xd8"                  # add eax, ebx
        b"\x31\xc2"                  # xor edx, eax
        b"\x83\xee\x03"              # sub esi, 3
        b"\x47"                      # inc edi
        b"\x49"                      # dec ecx
        b"\x75\xf5"                  # jnz loop
        b"\xf4")                     # hlt
    eax = edx = esi = edi = 0
    for _ in range(n):
        eax = (eax + 0x12345) & M32
        edx ^= eax
        esi = (esi - 3) & M32
        edi = (edi + 1) & M32
    return code, 6 + 6 * n + 1, {0: eax, 2: edx, 6: esi, 7: edi, 1: 0}


def _branch_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\x31\xdb"                  # xor ebx, ebx
        # loop:
        b"\xf6\xc1\x01"              # test cl, 1
        b"\x74\x03"                  # jz even
        b"\x40"                      # inc eax
        b"\xeb\x01"                  # jmp next
        # even:
        b"\x43"                      # inc ebx
        # next:
        b"\x83\xf9\x10"              # cmp ecx, 16
        b"\x77\x02"                  # ja skip
        b"\x01\xc3"                  # add ebx, eax
        # skip:
        b"\x49"                      # dec ecx
        b"\x75\xed"                  # jnz loop
        b"\xf4")
    eax = ebx = 0
    count = 3
    for c in range(n, 0, -1):
        count += 2
        if c & 1:
            eax += 1
            count += 2
        else:
            ebx += 1
            count += 1
        count += 2
        if not c > 16:
            ebx += eax
            count += 1
        count += 2
    return code, count + 1, {0: eax & M32, 3: ebx & M32}


def _mem_kernel(n):
    # sums a 64-dword table into a running total and writes prefix sums back
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        # outer:
        b"\xbe" + _d(DATA) +         # mov esi, DATA
        b"\xbf" + _d(DATA + 0x1000) +  # mov edi, DATA+0x1000
        b"\xba" + _d(16) +           # mov edx, 16
        # inner:
        b"\x8b\x1e"                  # mov ebx, [esi]
        b"\x01\xd8"                  # add eax, ebx
        b"\x89\x07"                  # mov [edi], eax
        b"\x83\xc6\x04"              # add esi, 4
        b"\x83\xc7\x04"              # add edi, 4
        b"\x4a"                      # dec edx
        b"\x75\xf1"                  # jnz inner
        b"\x49"                      # dec ecx
        b"\x75\xdf"                  # jnz outer
        b"\xf4")
    table = [(i * 2654435761) & M32 for i in range(16)]
    eax = 0
    for _ in range(n):
        for v in table:
            eax = (eax + v) & M32
    data = b"".join(_d(v) for v in table)
    return code, 2 + n * (3 + 16 * 7 + 2) + 1, {0: eax}, data


def _call_kernel(n):
    code = (
        b"\xb9" + _d(n) +            # mov ecx, n
        b"\x31\xc0"                  # xor eax, eax
        b"\xbc" + _d(DATA + 0x8000) +  # mov esp, DATA+0x8000
        # loop:
        b"\xe8\x04\x00\x00\x00"      # call f
        b"\x49"                      # dec ecx
        b"\x75\xf8"                  # jnz loop
        b"\xf4"                      # hlt
        # f:
        b"\x83\xc0\x07"              # add eax, 7
        b"\xc3")                     # ret
    return code, 3 + n * 5 + 1, {0: (7 * n) & M32, 4: DATA + 0x8000}


def _rep_kernel(n):
    code = (
        b"\xbb" + _d(n) +            # mov ebx, n
        b"\xfc"                      # cld
        # loop:
        b"\xbe" + _d(DATA) +         # mov esi, DATA
        b"\xbf" + _d(DATA + 0x2000) +  # mov edi, DATA+0x2000
        b"\xb9" + _d(256) +          # mov ecx, 256
        b"\xf3\xa5"                  # rep movsd
        b"\x4b"                      # dec ebx
        b"\x75\xec"                  # jnz loop
        b"\xf4")
    data = bytes((i * 7 + 3) & 0xFF for i in range(1024))
    return code, 2 + n * (3 + 256 + 2) + 1, {1: 0, 6: DATA + 1024, 7: DATA + 0x2000 + 1024}, data


KERNELS = {
    "alu": (_alu_kernel, 20000),
    "branch": (_branch_kernel, 20000),
    "memory": (_mem_kernel, 1000),
    "call": (_call_kernel, 20000),
    "rep-movs": (_rep_kernel, 400),
}


def run_kernel(name: str, seconds: float = 2.0):
    """Run one kernel repeatedly for about ``seconds``; return (MIPS, instructions, wall)."""
    make, n = KERNELS[name]
    built = make(n)
    code, expect_count, expect_regs = built[:3]
    data = built[3] if len(built) > 3 else b""
    cpu = flat32(4 << 20)
    bus = cpu.bus
    bus.ram[CODE: CODE + len(code)] = code
    if data:
        bus.ram[DATA: DATA + len(data)] = data
    total = 0
    wall = 0.0
    runs = 0
    while wall < seconds or runs == 0:
        cpu.eip = CODE
        cpu.halted = False
        start_icount = cpu.icount
        t0 = time.perf_counter()
        why = cpu.run(expect_count * 2 + 100)
        wall += time.perf_counter() - t0
        executed = cpu.icount - start_icount
        if why != "halt" or executed != expect_count:
            raise AssertionError(f"kernel {name}: stopped with {why!r} after {executed} "
                                 f"instructions, expected HLT after {expect_count}")
        for r, v in expect_regs.items():
            if cpu.R[r] != v:
                raise AssertionError(f"kernel {name}: checksum register {r} = {cpu.R[r]:#x}, "
                                     f"expected {v:#x}")
        total += executed
        runs += 1
    return total / wall / 1e6, total, wall


def boot_times():
    """Wall time of whole boots of scenarios/hello/hello.bin from a floppy: under Debian's
    SeaBIOS (when installed) and under the Aero BIOS.  Yields (name, instructions, seconds)."""
    boot = open(os.path.join(ROOT, "scenarios", "hello", "hello.bin"), "rb").read()
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "hello.img")
        with open(img, "wb") as f:
            f.write(boot.ljust(1474560, b"\0"))
        for name in ("seabios", "aero"):
            if name == "seabios" and not os.path.exists(FIRMWARE["seabios"][0]):
                continue
            m = build_machine(MachineConfig(bios=name, fda=img))
            t0 = time.perf_counter()
            r = m.run(timeout=300)
            wall = time.perf_counter() - t0
            m.close()
            if r.exit_code != (0x21 << 1) | 1:
                raise AssertionError(f"boot under {name} ended with {r.status} {r.exit_code}")
            yield name, r.icount, wall


def main(seconds: float = 2.0, kernels=None, boot: bool = False) -> int:
    if boot:
        print("aero bench --boot: firmware POST + hello boot sector from a floppy")
        for name, n, wall in boot_times():
            print(f"  {name:8} {wall:6.2f} s   ({n:,} instructions, {n / wall / 1e6:.2f} MIPS)")
        return 0
    names = kernels or list(KERNELS)
    for n in names:
        if n not in KERNELS:
            print(f"aero: unknown kernel {n!r} (choose from {', '.join(KERNELS)})", file=sys.stderr)
            return 2
    print(f"aero bench: interpreter, CPython {sys.version.split()[0]}, "
          f"{seconds:g} s per kernel")
    for n in names:
        try:
            mips, total, wall = run_kernel(n, seconds)
        except AssertionError as e:
            print(f"  {n:10} FAILED: {e}")
            return 1
        print(f"  {n:10} {mips:6.2f} MIPS   ({total:,} instructions in {wall:.2f} s, checksum ok)")
    return 0
