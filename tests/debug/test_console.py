"""`aero debug`: command scripts against the guests, their transcripts checked."""

import os
import subprocess
import sys

import pytest

from aero.cli import main as aero_main

GUESTS = os.path.join(os.path.dirname(__file__), "guests")


@pytest.fixture
def floppy(tmp_path):
    img = tmp_path / "stepping.img"
    img.write_bytes(open(os.path.join(GUESTS, "stepping.bin"), "rb").read().ljust(1474560, b"\0"))
    return str(img)


def debug(capsys, tmp_path, floppy, script, *extra):
    sx = tmp_path / "script.gdb"
    sx.write_text(script)
    code = aero_main(["debug", "--fda", floppy, "--serial", "none", "--symbols",
                      os.path.join(GUESTS, "stepping.map"), "-x", str(sx), "--batch", *extra])
    return code, capsys.readouterr().out


def test_breakpoint_step_examine_continue(capsys, tmp_path, floppy):
    code, out = debug(capsys, tmp_path, floppy, """
        # stop at the boot sector, then at a labelled routine
        break start
        continue
        x/3i cs:eip
        break add_one if word [counter] == 2
        c
        print word [counter]
        finish
        info breakpoints
        delete
        c
    """)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("7 symbols from") and "Aero debugger" in lines[1]
    assert "(aero) break start" in out
    assert "Breakpoint 1 at linear 0x00007c00 <start>" in out
    assert "Breakpoint 1, 0000:7c00 (0x00007c00) <start>" in out
    assert "=> 0000:7c00 (0x00007c00) <start>:  31c0" in out and "xor ax, ax" in out
    assert "Breakpoint 2, 0000:7c3c (0x00007c3c) <add_one>" in out
    assert "0x2 (2)" in out
    assert "Run till exit" in out and "<again+0x3>" in out
    assert "  2 break  y linear 0x00007c3c <add_one> if word [counter] == 2   hit 1 time" in out
    assert out.rstrip().endswith("the guest ended the run (exit status 33) after 62 "
                                 "instructions")


def test_watch_catch_and_registers(capsys, tmp_path, floppy):
    code, out = debug(capsys, tmp_path, floppy, """
        watch counter 2
        catch io 0x3f8 out
        c
        c
        delete 1
        c
        info registers
        x/8xb buffer
        set ax = 0x4142
        p ax
        stepi 3
        c
    """)
    assert code == 0, out
    assert "Watchpoint 1: linear 0x00007c48+2 w" in out
    assert "Catchpoint 2: io 0x3f8 out" in out
    assert "Old value = 0x0000\nNew value = 0x0001" in out
    assert "Catch 2: OUT port 0x03f8 size 1 value 0x21" in out
    assert "eax=" in out and "cr0=" in out
    assert "0000:7c4a (0x00007c4a) <buffer>: 5a 5a 5a 5a 5a 5a 5a 5a" in out
    assert "0x4142 (16706)" in out


def test_mistakes_are_one_line_and_batch_exit_status(capsys, tmp_path, floppy):
    code, out = debug(capsys, tmp_path, floppy, """
        frobnicate
        break
        x/2xq 0
        p [
        b nosuchlabel
    """)
    assert code == 2
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(errors) == 4, out
    assert "unknown command 'frobnicate'" in errors[0]
    assert "unknown symbol 'nosuchlabel'" in errors[-1]


def test_symbols_and_option_errors(capsys, tmp_path, floppy):
    assert aero_main(["debug", "--fda", floppy, "--symbols", str(tmp_path / "none.map"),
                      "--batch"]) == 2
    assert "No such file" in capsys.readouterr().err
    assert aero_main(["debug", "--fda", str(tmp_path / "missing.img"), "--batch"]) == 2


def test_interactive_session_on_stdin(tmp_path, floppy):
    p = subprocess.run([sys.executable, "-m", "aero", "debug", "--fda", floppy, "--serial",
                        "none"], input="b 0x7c00\nc\nsi\nquit\n", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "(aero) b 0x7c00" in p.stdout and "Breakpoint 1, 0000:7c00" in p.stdout
    assert "=> 0000:7c02" in p.stdout
