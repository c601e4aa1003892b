"""The x87 in the debugger: ``info float`` (aero/debug/fpuview.py), the x87 register names, and
Debian's gdb reading and writing them through the stub (``info float``, ``$st0``, ``$fctrl``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from aero.config import MachineConfig
from aero.debug.commands import Commands
from aero.debug.debugger import Debugger
from aero.debug.fpuview import value_text
from aero.fpu import float80 as F
from aero.machine import Machine
from aero.scenarios import ROOT

HELLO = os.path.join(ROOT, "scenarios", "hello", "hello.bin")
ONE_AND_HALF = (F.BIAS << 64) | 0xC000000000000000


def test_value_text():
    assert value_text(F.ONE) == "+1"
    assert value_text(ONE_AND_HALF | 1 << 79) == "-1.5"
    assert value_text(F.POS_INF) == "+Inf" and value_text(F.INDEFINITE) == "-QNaN"
    assert value_text(F.const("pi", 0x37F)) == "+3.141592653589793239"
    assert value_text(1).endswith("(denormal)")
    assert value_text((0x4000 << 64) | 1) == "(unnormal)"


def test_info_float_and_register_names():
    m = Machine(MachineConfig(bios=None))
    d = Debugger(m)
    c = Commands(d)
    fpu = m.cpu.fpu
    fpu.fninit()
    fpu.push(F.ONE)
    fpu.push(ONE_AND_HALF)
    out = c.execute("info float")
    assert "=>R6: Valid    0x3fffc000000000000000 +1.5" in out
    assert "  R7: Valid    0x3fff8000000000000000 +1" in out
    assert "  R0: Empty" in out
    assert re.search(r"Control Word:\s+0x037f\s+IM DM ZM OM UM PM\s+PC: Extended", out)
    assert "TOP: 6" in out and "Tag Word:            0x0fff" in out
    assert str(F.ONE) in c.execute("p $st1") or hex(F.ONE) in c.execute("p $st1")
    c.execute("set fctrl = 0x27f")
    assert fpu.cw == 0x27F and d.reg("fctrl") == 0x27F
    m.close()


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb absent (apt-get install gdb)")
def test_gdb_info_float(tmp_path):
    """Debian's gdb reads the x87 registers (the target description's i387_ext st0-st7 and
    the control registers) and writes them."""
    img = tmp_path / "hello.img"
    img.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    aero = subprocess.Popen([sys.executable, "-m", "aero", "run", "--fda", str(img),
                             "--headless", "--gdb", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = aero.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        g = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set architecture i8086",
                            "-ex", f"target remote 127.0.0.1:{m.group(1)}",
                            "-ex", "break *0x7c00", "-ex", "continue",
                            "-ex", "info float",
                            "-ex", "set $fctrl = 0x37f", "-ex", "set $ftag = 0x3fff",
                            "-ex", "set $st0 = 1.5", "-ex", "p $st0", "-ex", "p/x $fctrl",
                            "-ex", "kill"], capture_output=True, text=True, timeout=60)
        out = g.stdout
        assert "=>R0: Zero    0x00000000000000000000 +0" in out, out + g.stderr
        assert re.search(r"Control Word:\s+0x0040", out), out
        assert re.search(r"\$1 = 1\.5\b", out), out
        assert "$2 = 0x37f" in out, out
    finally:
        aero.kill()
        aero.wait(timeout=30)
