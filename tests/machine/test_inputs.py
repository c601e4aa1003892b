"""Host input through the deterministic queue: --keys, --serial-input, --config, --screenshot."""

import os
import subprocess
import shutil

import pytest

from aero.cli import main as aero_main
from aero.inputs import KeysSyntaxError, parse_keys

HERE = os.path.dirname(__file__)
ECHO = os.path.join(HERE, "input_echo.bin")


def test_keys_syntax():
    assert parse_keys("aB{Enter}") == [("press", ["a"]), ("press", ["LeftShift", "b"]),
                                       ("press", ["Enter"])]
    assert parse_keys("{Ctrl+Alt+Del}{wait 1.5s}{{") == [
        ("press", ["LeftCtrl", "LeftAlt", "Delete"]), ("wait", 1_500_000_000),
        ("press", ["LeftShift", "LeftBracket"])]
    for bad in ("{Nope}", "{Enter", "x}", "{}", "{Ctrl+}", "\u00e9"):
        with pytest.raises(KeysSyntaxError):
            parse_keys(bad)


def run_echo(tmp_path, capsys, *extra):
    si = tmp_path / "in.txt"
    si.write_bytes(b"hello serial\n")
    code = aero_main(["run", "--bios", ECHO, "--debugcon", "stdio", "--serial-input", str(si),
                      "--keys", "aB", "--max-instructions", "50000000", "--state-hash",
                      "--ips", "1000000", *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_serial_input_and_keys_reach_the_guest_deterministically(tmp_path, capsys):
    code, out, err = run_echo(tmp_path, capsys)
    assert code == (0x20 << 1) | 1
    # the serial bytes, then a make, a break, Shift's make and B's make (set 1)
    assert out == "hello serial\n1E 9E 2A 30 \n"
    code2, out2, err2 = run_echo(tmp_path, capsys)
    assert (code2, out2, err2) == (code, out, err)          # same inputs, same state hash


def test_config_file_and_command_line_override(tmp_path, capsys):
    (tmp_path / "in.txt").write_bytes(b"from config\n")
    shutil.copy(ECHO, tmp_path / "echo.bin")
    cfg = tmp_path / "m.toml"
    cfg.write_text('bios = "echo.bin"\nserial-input = "in.txt"\nkeys = "aB"\n'
                   'debugcon = "stdio"\nmax_instructions = 50000000\nmemory = 16\n'
                   'ips = 1000000\n')
    code = aero_main(["run", "--config", str(cfg)])
    assert code == 65 and capsys.readouterr().out.startswith("from config\n")
    code = aero_main(["run", "--config", str(cfg), "--max-instructions", "10"])
    assert code == 0                                         # the flag wins over the file


@pytest.mark.parametrize("text, message", [
    ("memory = 'x'\n", "memory must be int"),
    ("colour = 3\n", "unknown setting 'colour'"),
    ("memory = \n", "--config"),
])
def test_bad_config_is_one_line_and_status_2(tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert aero_main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_screenshot_is_a_png(tmp_path, capsys):
    shot = tmp_path / "s.png"
    code, _, _ = run_echo(tmp_path, capsys, "--screenshot", str(shot))
    assert code == 65
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm absent")
def test_guest_rebuilds_identically(tmp_path):
    out = tmp_path / "e.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), os.path.join(HERE, "input_echo.asm")],
                   check=True)
    assert out.read_bytes() == open(ECHO, "rb").read()
