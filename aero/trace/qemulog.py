"""QEMU execution logs as traces, for ``aero trace diff``.

The log to compare with comes from::

    qemu-system-i386 -accel tcg -singlestep -d exec,cpu,nochain -D qemu.log ...

(QEMU 7.2 has no ``-one-insn-per-tb`` yet: ``-singlestep`` is its name there.)  With one
instruction per translation block and block chaining off, QEMU logs every executed instruction:
``-d exec`` a line ``Trace N: HOSTPTR [CSBASE/PC/FLAGS/CFLAGS]`` (PC is the linear address) each
time a block is entered, and ``-d cpu`` the registers before it::

    Trace 0: 0x7f0000000100 [000f0000/000f0003/00000040/ff000201]
    EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000663
    ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000
    EIP=00000003 EFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
    ES =0000 00000000 0000ffff 00009300
    CS =f000 000f0000 0000ffff 00009b00
    ...
    CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000

A REP string instruction is a block of its own that re-enters itself once per iteration, so
each iteration is a record, as each is an instruction count in Aero.  An instruction whose fetch
faults is never translated and has no record.  Lines of other kinds (``-d int``, ``-d in_asm``)
are skipped.  A log without ``-d cpu`` gives the PCs alone.

``read_qemu_log(path)`` returns the records as numpy columns with the names Aero's traces use
(``pc``, ``eip``, ``eax`` ... ``edi``, ``eflags``, ``es`` ``cs`` ``ss`` ``ds`` ``fs`` ``gs``,
``cr0`` ``cr2`` ``cr3`` ``cr4``).  Gzip-compressed logs are read too.
"""

from __future__ import annotations

import gzip
import re

import numpy as np

from .tracefile import TraceError

_TRACE = re.compile(rb"^Trace \d+: (?:0x)?[0-9a-fA-F]+ \[([0-9a-fA-F]+)/([0-9a-fA-F]+)/"
                    rb"[0-9a-fA-F]+(?:/[0-9a-fA-F]+)?\]", re.M)
_GPR = re.compile(rb"EAX=([0-9a-f]{8}) EBX=([0-9a-f]{8}) ECX=([0-9a-f]{8}) EDX=([0-9a-f]{8})\s*\n"
                  rb"ESI=([0-9a-f]{8}) EDI=([0-9a-f]{8}) EBP=([0-9a-f]{8}) ESP=([0-9a-f]{8})\s*\n"
                  rb"EIP=([0-9a-f]{8}) EFL=([0-9a-f]{8})")
_SEG = re.compile(rb"^(ES|CS|SS|DS|FS|GS) =([0-9a-f]{4}) ", re.M)
_CR = re.compile(rb"CR0=([0-9a-f]{8}) CR2=([0-9a-f]{8}) CR3=([0-9a-f]{8}) CR4=([0-9a-f]{8})")

GPR_NAMES = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags")
SEG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")
CR_NAMES = ("cr0", "cr2", "cr3", "cr4")
_BLOCK = 32 << 20


def looks_like_qemu_log(path: str) -> bool:
    try:
        with _open(path) as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return bool(_TRACE.search(head))


def _open(path: str):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


class QemuLog:
    """The records of a QEMU log: ``columns`` (name -> numpy array), ``registers`` (whether the
    log has ``-d cpu`` state), ``path``."""

    def __init__(self, path: str, columns: dict, registers: bool):
        self.path = path
        self.columns = columns
        self.registers = registers

    def __len__(self) -> int:
        return len(self.columns["pc"])


def read_qemu_log(path: str, limit: int | None = None) -> QemuLog:
    """Parse a ``-d exec[,cpu],nochain`` log (the first ``limit`` records)."""
    pcs: list = []
    gprs: list = []
    segs: list = []
    crs: list = []
    have_cpu = None
    try:
        f = _open(path)
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e.strerror}") from None
    with f:
        rest = b""
        while True:
            try:
                data = f.read(_BLOCK)
            except (OSError, EOFError) as e:
                raise TraceError(f"cannot read {path}: {e}") from None
            buf = rest + data
            if not data:
                cut = len(buf)
            else:
                # keep the last (possibly incomplete) record for the next block
                cut = buf.rfind(b"\nTrace ")
                if cut <= 0:
                    rest = buf
                    continue
                cut += 1
            piece, rest = buf[:cut], buf[cut:]
            starts = [m for m in _TRACE.finditer(piece)]
            for i, m in enumerate(starts):
                end = starts[i + 1].start() if i + 1 < len(starts) else len(piece)
                pcs.append(int(m.group(2), 16))
                body = piece[m.end():end]
                g = _GPR.search(body)
                if have_cpu is None:
                    have_cpu = g is not None
                if have_cpu:
                    if g is None:
                        raise TraceError(f"{path}: record {len(pcs) - 1} (PC {pcs[-1]:#x}) has "
                                         "no register state; log with -d exec,cpu,nochain")
                    gprs.append([int(v, 16) for v in g.groups()])
                    sd = dict(_SEG.findall(body))
                    segs.append([int(sd.get(n.upper().encode(), b"0"), 16) for n in SEG_NAMES])
                    c = _CR.search(body)
                    crs.append([int(v, 16) for v in c.groups()] if c else [0, 0, 0, 0])
                if limit is not None and len(pcs) >= limit:
                    break
            if not data or limit is not None and len(pcs) >= limit:
                break
    if not pcs:
        raise TraceError(f"{path} is neither an Aero trace nor a QEMU log with 'Trace' lines "
                         "(qemu-system-i386 -singlestep -d exec,cpu,nochain -D FILE)")
    cols = {"pc": np.array(pcs, dtype=np.uint32) & np.uint32(0xFFFFFFFF)}
    if have_cpu:
        g = np.array(gprs, dtype=np.uint64).astype(np.uint32)
        for i, n in enumerate(GPR_NAMES):
            cols[n] = g[:, i]
        s = np.array(segs, dtype=np.uint32)
        for i, n in enumerate(SEG_NAMES):
            cols[n] = s[:, i]
        c = np.array(crs, dtype=np.uint64).astype(np.uint32)
        for i, n in enumerate(CR_NAMES):
            cols[n] = c[:, i]
    return QemuLog(path, cols, bool(have_cpu))
