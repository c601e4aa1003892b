"""Rough edges of the `aero` command line (issue 10): an output that cannot be written (a
directory, a directory named with a trailing slash, a path nothing can create) is bad input,
one line and exit status 2 before anything runs, and checking it truncates and leaves behind
nothing; the help texts say what the commands do now."""

import os
import re

import pytest

from aero.cli import build_parser, main

OUTPUTS = ("--serial", "--debugcon", "--firmware-log", "--screenshot", "--save-state")


def run(capsys, *args):
    try:
        code = main(["run", "--headless", "--max-instructions", "20000", "--state-hash", *args])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr()


@pytest.mark.parametrize("option", OUTPUTS)
@pytest.mark.parametrize("kind", ["directory", "trailing-slash", "no-such-directory",
                                  "unwritable"])
def test_an_unwritable_output_is_bad_input(tmp_path, capsys, option, kind):
    target = {"directory": str(tmp_path),
              "trailing-slash": str(tmp_path / "nodir") + os.sep,
              "no-such-directory": str(tmp_path / "missing" / "out"),
              "unwritable": "/proc/aero-cannot-create-this"}[kind]
    serial = [] if option == "--serial" else ["--serial", "none"]
    code, out = run(capsys, *serial, option, target)
    assert code == 2, out.err
    assert out.err.startswith(f"aero: {option}: ") and out.err.count("\n") == 1, out.err
    assert "state-hash" not in out.err and out.out == ""          # nothing ran
    assert sorted(os.listdir(tmp_path)) == []                       # nothing left behind


def test_checking_outputs_truncates_nothing_and_creates_nothing(tmp_path, capsys):
    kept = tmp_path / "serial.txt"
    kept.write_bytes(b"keep me")
    state = tmp_path / "old.aerostate"
    state.write_bytes(b"an older state")
    code, out = run(capsys, "--serial", str(kept), "--save-state", str(state),
                    "--debugcon", str(tmp_path / "new-debugcon.txt"),
                    "--hda", str(tmp_path / "missing.img"))      # fails after the outputs
    assert code == 2 and out.err.count("\n") == 1 and "missing.img" in out.err
    assert kept.read_bytes() == b"keep me" and state.read_bytes() == b"an older state"
    assert sorted(os.listdir(tmp_path)) == ["old.aerostate", "serial.txt"]


def test_outputs_that_work_are_written(tmp_path, capsys):
    serial = tmp_path / "com1.txt"
    code, out = run(capsys, "--serial", str(serial), "--screenshot", str(tmp_path / "s.png"),
                    "--save-state", str(tmp_path / "s.aerostate"))
    assert code == 0, out.err
    assert serial.exists() and (tmp_path / "s.png").stat().st_size > 0
    assert (tmp_path / "s.aerostate").stat().st_size > 0


def _helps():
    """(name, help text) of `aero` and every subcommand, nested ones included."""
    import argparse
    out = []

    def walk(name, parser):
        out.append((name, parser.format_help()))
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub, p in a.choices.items():
                    walk(f"{name} {sub}", p)
    walk("aero", build_parser())
    return out


def test_help_texts_say_what_the_commands_do_now():
    helps = dict(_helps())
    assert {"aero run", "aero record", "aero replay", "aero debug", "aero tui", "aero trace",
            "aero jit", "aero bench", "aero conformance singlestep"} <= set(helps)
    for name, text in helps.items():
        assert not re.search(r"\btoday\b", text), name
    top = re.sub(r"\s+", " ", helps["aero"])
    assert ("run a PC: the built-in demo, a floppy, a disk, a CD, a multiboot kernel or a "
            "firmware image") in top
    for name in ("aero run", "aero record", "aero debug", "aero tui", "aero jit"):
        text = re.sub(r"\s+", " ", helps[name])
        assert "--bios aero|seabios|bochs|PATH" in text, name
        assert "the built-in Aero BIOS (default)" in text, name
    for name in ("aero run", "aero record"):
        text = re.sub(r"\s+", " ", helps[name])
        assert "since power-on" in text and "across guest resets" in text
        assert "reset the guest asks for (ports 64h, 92h, CF9h)" in text


def test_apic_with_the_bochs_bios_is_refused(capsys):
    """The Bochs BIOS enables the local APIC without setting up virtual wire (LINT0 stays
    masked), so its POST would wait forever for the timer (as under QEMU 7.2): refused."""
    code, out = run(capsys, "--apic", "--bios", "bochs")
    assert code == 2 and out.err.startswith("aero: --apic cannot be used with --bios bochs")


def test_debug_exit_port_option(tmp_path, capsys):
    """--debug-exit-port moves isa-debug-exit (kvm-unit-tests write their status to 0xF4)."""
    rom = bytearray(b"\xf4" * 0x10000)
    rom[0xFFF0:0xFFF5] = b"\xb0\x05\xe6\xf4\xf4"          # mov al, 5; out 0xf4, al; hlt
    path = tmp_path / "rom.bin"
    path.write_bytes(bytes(rom))
    code, _ = run(capsys, "--bios", str(path), "--debug-exit-port", "0xf4")
    assert code == (5 << 1) | 1
    code, _ = run(capsys, "--bios", str(path))           # default 0x501: the OUT goes nowhere
    assert code == 8                                      # halted with interrupts off
    code, out = run(capsys, "--bios", str(path), "--debug-exit-port", "0x10000")
    assert code == 2 and "invalid port value" in out.err
