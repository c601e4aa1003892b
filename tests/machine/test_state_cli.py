"""`aero run --save-state / --at-instruction / --load-state`: QEMU's savevm/loadvm as a file."""

import hashlib
import json
import struct

import pytest

from aero.cli import main as aero_main
from aero.scenarios import ROOT

HELLO = f"{ROOT}/scenarios/hello/hello.bin"


@pytest.fixture
def floppy(tmp_path):
    p = tmp_path / "hello.img"
    p.write_bytes(open(HELLO, "rb").read().ljust(1474560, b"\0"))
    return str(p)


def run(*argv):
    return aero_main(["run", "--headless", *argv])


def state_hash(err):
    return [ln for ln in err.splitlines() if ln.startswith("state-hash")][-1]


def test_save_at_an_instruction_then_load_and_finish(tmp_path, floppy, capsys):
    s = tmp_path / "s.aerostate"
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    before = hashlib.sha256(open(floppy, "rb").read()).hexdigest()
    assert run("--fda", floppy, "--serial", str(out1), "--save-state", str(s),
               "--at-instruction", "200", "--state-hash") == 67
    h1 = state_hash(capsys.readouterr().err)
    assert s.stat().st_size > 0 and open(s, "rb").read(10) == b"AEROSTATE\n"
    assert run("--load-state", str(s), "--serial", str(out2), "--state-hash") == 67
    h2 = state_hash(capsys.readouterr().err)
    assert h1 == h2                                   # same end, same instruction count
    full, tail = out1.read_bytes(), out2.read_bytes()
    assert full == b"Hello from the boot sector\r\n" and tail and full.endswith(tail)
    assert hashlib.sha256(open(floppy, "rb").read()).hexdigest() == before


def test_save_at_the_end_and_explicit_machine_options(tmp_path, floppy, capsys):
    s = tmp_path / "end.aerostate"
    assert run("--fda", floppy, "--serial", "none", "--max-instructions", "100",
               "--save-state", str(s)) == 0
    # the same machine given explicitly: accepted, and it runs on to the exit
    assert run("--fda", floppy, "--serial", "none", "--load-state", str(s)) == 67
    # another machine: refused with one line
    assert run("--fda", floppy, "--memory", "64", "--load-state", str(s)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "memory" in err[0]


def _rewrite(path, mutate_header):
    data = open(path, "rb").read()[:-32]
    n = struct.unpack_from("<I", data, 10)[0]
    header = json.loads(data[14:14 + n])
    mutate_header(header)
    hdr = json.dumps(header).encode()
    body = data[:10] + struct.pack("<I", len(hdr)) + hdr + data[14 + n:]
    open(path, "wb").write(body + hashlib.sha256(body).digest())


@pytest.mark.parametrize("damage,message", [
    ("truncate", "truncated"),
    ("garbage", "not an Aero state file"),
    ("version", "format 99"),
    ("flip", "checksum"),
])
def test_bad_state_files_are_refused_with_one_line(tmp_path, floppy, capsys, damage, message):
    s = tmp_path / "s.aerostate"
    assert run("--fda", floppy, "--serial", "none", "--max-instructions", "50",
               "--save-state", str(s)) == 0
    data = s.read_bytes()
    if damage == "truncate":
        s.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        s.write_bytes(b"not a state at all")
    elif damage == "version":
        _rewrite(s, lambda h: h.update(format=99))
    else:
        s.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    capsys.readouterr()
    assert run("--load-state", str(s)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_changed_disk_image_is_refused(tmp_path, floppy, capsys):
    s = tmp_path / "s.aerostate"
    assert run("--fda", floppy, "--serial", "none", "--max-instructions", "50",
               "--save-state", str(s)) == 0
    data = bytearray(open(floppy, "rb").read())
    data[5000] ^= 0xFF
    open(floppy, "wb").write(data)
    assert run("--load-state", str(s)) == 2
    assert "disk image 1 (floppy) differs in contents" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--at-instruction", "5"], "--at-instruction needs --save-state"),
    (["--save-state", "/nonexistent-dir/s"], "does not exist"),
    (["--load-state", "/nonexistent-file"], "no such file"),
])
def test_option_mistakes(tmp_path, floppy, capsys, argv, message):
    assert run("--fda", floppy, *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
