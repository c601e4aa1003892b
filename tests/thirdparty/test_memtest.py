"""memtest86+ (Debian 12's memtest86+ package, 6.10, the ia32 BIOS image) under Aero.

``/boot/memtest86+ia32.bin`` is a Linux boot protocol 2.12 image, so ``aero run --kernel``
starts it directly (no SYSLINUX): ``--append "console=ttyS0,115200"`` sends its screen, as
VT100 escapes, to COM1.  The package is installed with apt-get when missing (skipped with the
reason when it cannot be).  QEMU 7.2 (``qemu-system-i386 -kernel ... -append ...``) shows the
banner and runs test #0 ("Address test, walking ones, no cache") with 0 errors at once, with
``-cpu qemu32`` and with ``-cpu qemu32,-fpu`` alike: QEMU's ``-fpu`` only clears
CPUID.1:EDX.FPU, its TCG still executes x87 instructions.

What used to go wrong ("resets in a loop" under SYSLINUX), and what these tests pin: memtest's
boot/startup32.S executes ``finit`` before ``call reloc``, and its C code does x87 arithmetic
(its delay loop's 64-bit division goes through doubles: FILD m64 / FDIVRP / FCOM / FNSTSW AX /
FLDCW / FISTP m64).  Before Aero had an x87 these raised #NM, and memtest's #NM path (entered
before ``reloc``, or with EBX not holding its GOT) ran wild into a triple fault.  With the x87
(``aero/fpu``) memtest runs test #0 to its end with 0 errors and takes no exception at all, in
both tiers.

A loader finding, fixed: Aero's Linux loader refused this image ("truncated: the protected-mode
kernel is 137176 bytes, the header says 137184"): memtest's syssize counts its last paragraph
whole, 8 bytes past the end of its file.  QEMU loads the file as it is, and so does Aero now
(``test_loader_accepts_the_debian_image``).  The command line adds ``nopause`` (memtest's own option: no 3 s wait for a key before
the first test, 60 M instructions at 20 M ips).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from aero.build import build_machine
from aero.config import MachineConfig

IMAGE = "/boot/memtest86+ia32.bin"
QEMU = shutil.which("qemu-system-i386")
MEMORY = 16                     # MiB: test #0 covers all of it (time grows with it)

# nopause: no 3 s wait for a key (60 M instructions at 20 M ips) before the first test
APPEND = "console=ttyS0,115200 nopause"


def _ensure_image() -> str | None:
    """None if the image is there (installing the package if needed), else why not."""
    if os.path.exists(IMAGE):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{IMAGE} missing and apt-get not usable: apt-get install memtest86+"
    try:
        p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                            "memtest86+"], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    except (OSError, subprocess.SubprocessError) as e:
        return f"apt-get install memtest86+ failed: {e}"
    if not os.path.exists(IMAGE):
        return f"apt-get install memtest86+ did not give {IMAGE}: {p.stderr.strip()[-200:]}"
    return None


_WHY = _ensure_image()
needs_image = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")


@pytest.fixture(scope="module")
def image() -> str:
    """The Debian image, as the package installs it."""
    return IMAGE


def screen_text(raw: bytes) -> str:
    """The serial console's text with the VT100 escapes turned into line breaks."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", raw.decode("latin-1"))


def machine(kernel: str, out: bytearray, **kw):
    return build_machine(MachineConfig(kernel=kernel, append=APPEND,
                                       memory=MEMORY, no_reboot=True, serial=out.append, **kw))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@needs_image
def test_loader_accepts_the_debian_image():
    """memtest86+ 6.10's file ends 8 bytes into the last paragraph its syssize counts; QEMU
    loads it as it is, and so does Aero (it refused the image as truncated before)."""
    from aero.firmware import linuxboot as lb
    data = Path(IMAGE).read_bytes()
    setup = ((data[0x1F1] or 4) + 1) * 512
    assert len(data) - setup < struct.unpack_from("<I", data, 0x1F4)[0] * 16
    lb.load_image(data, IMAGE, MEMORY << 20)


NEXT_TEST = re.compile(r"#([1-9][0-9]*)  \[")     # memtest's first pass goes #0, #3, ...


def _run_to_test0_end(m, out, limit):
    """Run until test #0 has ended: another test's name is on the console (the serial console
    only receives what changed on memtest's screen)."""
    t = time.time()
    while m.cpu.icount < limit:
        r = m.run(max_instructions=min(limit, m.cpu.icount + 2_000_000))
        text = screen_text(bytes(out))
        if r.status not in ("limit", "hook") or NEXT_TEST.search(text):
            return r, text, time.time() - t
    return r, screen_text(bytes(out)), time.time() - t


@needs_image
@pytest.mark.parametrize("jit", ["on", "off"])
def test_memtest_runs_test0(image, jit):
    """memtest86+ starts (banner, memory size on the serial console), runs test #0 over all of
    its memory and goes on to the next test with 0 errors, taking no exception: its FNINIT and
    its C code's x87 arithmetic run on Aero's x87."""
    out = bytearray()
    m = machine(image, out, jit=jit)
    faults = []
    m.hooks.interrupt(lambda mach, ev: faults.append((mach.cpu.icount, ev))
                      if ev.kind in ("fault", "shutdown") else None)
    r, text, secs = _run_to_test0_end(m, out, 80_000_000)
    x87 = m.cpu.fpu.fop                     # the last x87 instruction's opcode was recorded
    m.close()
    assert not faults, faults[:5]
    assert re.search(r"Memtest86\+ v6\.\d+", text), text[-2000:]
    assert "#0  [Address test, walking ones, no cache]" in text, text[-2000:]
    assert NEXT_TEST.search(text), (r, text[-2000:])
    assert re.search(r"Errors: 0\b", text) and not re.search(r"Errors: *[1-9]", text), text
    assert x87 != 0


@needs_image
@needs_qemu
def test_qemu_runs_test0_without_cpuid_fpu():
    """The reference: QEMU with -cpu qemu32,-fpu (CPUID without FPU; TCG still runs x87) shows
    the banner and gets past test #0 with 0 errors."""
    p = subprocess.Popen([QEMU, "-cpu", "qemu32,-fpu", "-m", str(MEMORY), "-kernel", IMAGE,
                          "-append", "console=ttyS0,115200", "-serial", "stdio", "-display",
                          "none", "-no-reboot", "-nodefaults"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    buf = bytearray()
    try:
        os.set_blocking(p.stdout.fileno(), False)
        deadline = time.time() + 30
        while time.time() < deadline:
            chunk = p.stdout.read()
            if chunk:
                buf.extend(chunk)
                if NEXT_TEST.search(screen_text(bytes(buf))):
                    break
            time.sleep(0.1)
    finally:
        p.kill()
        p.wait(timeout=10)
    text = screen_text(bytes(buf))
    assert re.search(r"Memtest86\+ v6\.\d+", text), text[-2000:]
    assert "#0  [Address test, walking ones, no cache]" in text
    assert NEXT_TEST.search(text) and "Errors: 0" in text, text[-1000:]
    assert not re.search(r"Errors: *[1-9]", text)
