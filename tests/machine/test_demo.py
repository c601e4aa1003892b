"""`aero run` with no arguments: the built-in demo boots under the Aero BIOS and ends itself."""

import os
import shutil
import subprocess

import pytest

from aero.cli import main as aero_main

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DEMO_DIR = os.path.join(ROOT, "scenarios", "demo")


def test_demo_runs_and_powers_off(tmp_path, capsys):
    shot = tmp_path / "demo.png"
    assert aero_main(["run", "--screenshot", str(shot), "--state-hash"]) == 0
    cap = capsys.readouterr()
    assert cap.out == ("Aero Workbench demo: hello from a boot sector.\r\n"
                       "Drew a pattern in mode 13h, waited 1 s of virtual time. Powering off.\r\n")
    from aero.display.png import read_png
    frame = read_png(shot.read_bytes())
    assert frame.shape == (200, 320, 3) and len({tuple(p) for p in frame[100]}) > 20
    # the same run twice: the same state hash
    first = cap.err.strip().splitlines()[-1]
    assert aero_main(["run", "--state-hash"]) == 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == first


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_demo_rebuilds_identically(tmp_path):
    out = tmp_path / "d.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), os.path.join(DEMO_DIR, "demo.asm")],
                   check=True)
    assert out.read_bytes() == open(os.path.join(DEMO_DIR, "demo.bin"), "rb").read()
