"""`aero run --gdb`: Debian's gdb attaches to a run started from the command line."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from aero.scenarios import ROOT

HELLO = os.path.join(ROOT, "scenarios", "hello", "hello.bin")


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb absent (apt-get install gdb)")
def test_gdb_attaches_to_aero_run(tmp_path):
    img = tmp_path / "hello.img"
    img.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    aero = subprocess.Popen([sys.executable, "-m", "aero", "run", "--fda", str(img),
                             "--headless", "--gdb", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = aero.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(the machine waits for gdb\)", line)
        assert m, line
        g = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set architecture i8086",
                            "-ex", f"target remote 127.0.0.1:{m.group(1)}",
                            "-ex", "break *0x7c00", "-ex", "continue",
                            "-ex", "info registers eip", "-ex", "x/2xb 0x7c00",
                            "-ex", "detach"], capture_output=True, text=True, timeout=60)
        assert "Breakpoint 1, 0x00007c00" in g.stdout, g.stdout + g.stderr
        assert re.search(r"eip\s+0x7c00", g.stdout)
        assert "0x31\t0xc0" in g.stdout                  # xor ax, ax
        out, err = aero.communicate(timeout=60)
    finally:
        if aero.poll() is None:
            aero.kill()
    assert aero.returncode == 67                         # the guest ran on after detach
    assert out == "Hello from the boot sector\n"              # (text mode folds \r\n)
    assert "gdb: " in err


def test_gdb_option_mistakes(tmp_path, capsys):
    from aero.cli import main
    img = tmp_path / "hello.img"
    img.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    assert main(["run", "--fda", str(img), "--headless", "--gdb", "nope"]) == 2
    assert "expected [HOST:]PORT" in capsys.readouterr().err
    assert main(["run", "--fda", str(img), "--headless", "--gdb-nowait"]) == 2
    assert "--gdb-nowait needs --gdb" in capsys.readouterr().err
