"""The scenario collection (scenarios/*/scenario.toml, run by aero/scenarios.py): every scenario
passes under the Aero BIOS through the code path of `aero run`, golden screens are pixel-equal,
the qemu = true ones print the same COM1 text under qemu-system-i386 + SeaBIOS, and every
committed .bin rebuilds identically from its NASM source."""

import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from aero import scenarios as S

EXPECTED = {"hello", "demo", "hdd", "cdrom", "pmode", "irq", "mode13h", "vbe", "multiboot"}
ALL = S.names()
QEMU_OK = shutil.which(S.QEMU) is not None
NASM_OK = shutil.which("nasm") is not None


def test_the_collection_is_complete():
    assert EXPECTED <= set(ALL)
    for name in ALL:
        scn = S.load(name)
        assert scn.description and scn.sources(), name
        for src in scn.sources():                       # every source has its committed .bin
            assert os.path.exists(scn.path(src[:-4] + ".bin")), (name, src)
    goldens = {S.load(n).screen for n in ALL} - {None}
    assert {"hello", "mode13h"} <= goldens
    for g in goldens:
        assert os.path.exists(S.golden_path(g)), g


@pytest.mark.parametrize("name", ALL)
def test_under_aero(name, tmp_path):
    scn = S.load(name)
    out = S.run_aero(scn, str(tmp_path))
    assert out.ok, f"{name} under Aero:\n" + "\n".join(out.problems)
    msg = S.check_screen(scn, out)
    assert msg is None, msg


@pytest.mark.parametrize("name", ALL)
def test_same_serial_under_qemu(name, tmp_path):
    scn = S.load(name)
    if not scn.qemu:
        pytest.skip(f"{name} is Aero-only (qemu = false)")
    if not QEMU_OK:
        pytest.skip("qemu-system-i386 absent")
    out = S.run_qemu(scn, str(tmp_path))
    assert out.ok, f"{name} under QEMU:\n" + "\n".join(out.problems)


@pytest.mark.skipif(not NASM_OK, reason="nasm absent")
@pytest.mark.parametrize("name", ALL)
def test_binaries_rebuild_identically(name, tmp_path):
    for binname, (built, committed) in S.rebuild(S.load(name), str(tmp_path)).items():
        assert built == committed, f"scenarios/{name}/{binname} differs from its source"


# ----------------------------------------------------------------------------------------------
# the runner itself
# ----------------------------------------------------------------------------------------------
def test_wrong_expectations_are_reported(tmp_path):
    scn = S.load("hello")
    scn.serial = "Hello from somewhere else\r\n"
    scn.exit = 3
    out = S.run_aero(scn, str(tmp_path))
    assert not out.ok and len(out.problems) == 2
    assert "exit status 67, expected 3" in out.problems[0]
    assert "Hello from the boot sector" in out.problems[1]
    scn.serial, scn.serial_pattern, scn.exit = None, r"Hello from the \w+ sector\r\n", 67
    fresh = out.__class__("aero", 67, out.serial, 0.0)
    S.check(scn, fresh)
    assert fresh.ok


def test_golden_comparison_reports_where(tmp_path):
    a = np.zeros((200, 320, 3), np.uint8)
    assert S.compare_frames(a, a.copy()) is None
    b = a.copy()
    b[10:12, 30:35] = (255, 0, 0)
    msg = S.compare_frames(b, a, "x")
    assert "10 of 64000 pixels differ" in msg and "x 30..34, y 10..11" in msg
    assert "(30,10) got (255, 0, 0) want (0, 0, 0)" in msg
    assert "size 640x200" in S.compare_frames(np.zeros((200, 640, 3), np.uint8), a)


def test_golden_mismatch_is_caught(tmp_path):
    """A screen that differs from the golden one fails, naming the scenario and the pixels."""
    from aero.display.png import read_png, write_png
    scn = S.load("hello")
    out = S.run_aero(scn, str(tmp_path))
    frame = read_png(open(out.screenshot, "rb").read())
    frame[0, 0] = (1, 2, 3)
    write_png(out.screenshot, frame)
    msg = S.check_screen(scn, out)
    assert msg and "hello" in msg and "1 of" in msg and "(0,0) got (1, 2, 3)" in msg


def _manifest(tmp_path, text):
    d = tmp_path / "bad"
    d.mkdir(exist_ok=True)
    (d / "scenario.toml").write_text(text)
    return lambda: S.load("bad", str(d))


@pytest.mark.parametrize("text, what", [
    ('[image]\nkind = "floppy"\n[expect]\nserial = ""\nexit = 1\n', "boot"),
    ('[machine]\nserial = "x"\n[expect]\nserial = ""\nexit = 1\n', "set by the runner"),
    ('colour = 1\n[expect]\nserial = ""\nexit = 1\n', "unknown field"),
    ('[machine]\nflux = 1\n[expect]\nserial = ""\nexit = 1\n', "not an `aero run` setting"),
    ('[machine]\nmemory = "lots"\n[expect]\nserial = ""\nexit = 1\n', "memory must be int"),
    ('[expect]\nexit = 1\n', "exactly one of serial"),
    ('[expect]\nserial = ""\n', "exit"),
    ('[image]\nkind = "tape"\nboot = "x"\n[expect]\nserial = ""\nexit = 1\n', "kind"),
])
def test_bad_manifests(tmp_path, text, what):
    with pytest.raises(S.ManifestError, match=what):
        _manifest(tmp_path, text)()


def test_iso_is_iso9660_with_el_torito():
    boot = bytes(range(256)) * 8
    iso = S.make_iso(boot, [("README.TXT", b"hi\r\n"), ("TWO.BIN", b"\x01" * 3000)], "vol")
    sec = lambda n: iso[n * 2048:(n + 1) * 2048]
    assert sec(16)[:7] == b"\x01CD001\x01" and sec(16)[40:43] == b"VOL"
    assert struct.unpack_from("<I", sec(16), 80)[0] == len(iso) // 2048 == 27
    assert sec(17)[7:30] == b"EL TORITO SPECIFICATION" and sec(18)[:7] == b"\xffCD001\x01"
    cat_lba = struct.unpack_from("<I", sec(17), 0x47)[0]
    cat = sec(cat_lba)
    assert sum(struct.unpack_from("<16H", cat)) & 0xFFFF == 0 and cat[30:32] == b"\x55\xAA"
    assert cat[32] == 0x88 and cat[33] == 0                 # bootable, no emulation
    count, lba = struct.unpack_from("<HI", cat, 38)
    assert count == 4 and sec(lba) == boot
    assert sec(24)[:4] == b"hi\r\n" and iso[25 * 2048:25 * 2048 + 3000] == b"\x01" * 3000


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso absent")
def test_iso_reads_back_with_xorriso(tmp_path):
    p = tmp_path / "t.iso"
    p.write_bytes(S.make_iso(b"\xEB\xFE" + bytes(2046), [("README.TXT", b"hello\n")], "AERO"))
    out = subprocess.run(["xorriso", "-indev", str(p), "-find", "/", "-exec", "lsdl", "--",
                          "-report_el_torito", "plain"], capture_output=True, text=True)
    assert "README.TXT" in out.stdout and "BOOT.BIN" in out.stdout, out.stdout + out.stderr
    assert "El Torito boot img" in out.stdout and " none " in out.stdout, out.stdout


def test_command_line(capsys):
    assert S.main(["--list"]) == 0
    listed = capsys.readouterr().out.split("\n")
    assert {line.split()[0] for line in listed if line} == set(ALL)
    assert S.main(["no-such-scenario"]) == 2
    assert "no such scenario" in capsys.readouterr().err
    assert S.main(["hello"]) == 0
    assert "hello      aero  ok" in capsys.readouterr().out


def test_keys_for_qemu_monitor():
    cmds = S.qemu_sendkeys("aB{wait 2s}{Ctrl+Alt+Delete}{Up}{Enter}")
    assert cmds == [("sendkey 0x1e", None), ("sendkey 0x2a-0x30", None), (None, 2.0),
                    ("sendkey 0x1d-0x38-0xd3", None), ("sendkey 0xc8", None),
                    ("sendkey 0x1c", None)]


@pytest.mark.skipif(not QEMU_OK, reason="qemu-system-i386 absent")
def test_qemu_command_line(tmp_path):
    cmd = S.qemu_command(S.load("cdrom"), str(tmp_path))
    for opt in ("-nodefaults", "-no-reboot", "isa-debug-exit,iobase=0x501,iosize=2"):
        assert opt in cmd
    assert cmd[cmd.index("-m") + 1] == "32" and cmd[cmd.index("-boot") + 1] == "order=d"
    assert any(a.endswith("media=cdrom,readonly=on") for a in cmd)


@pytest.mark.skipif(not os.path.exists("/usr/share/seabios/bios.bin"), reason="seabios absent")
@pytest.mark.parametrize("name, line", [("hdd", "Booting from Hard Disk..."),
                                        ("cdrom", "Booting from DVD/CD...")])
def test_seabios_boots_the_disk_scenarios(name, line, tmp_path):
    """Debian's SeaBIOS POSTs on Aero and boots the hard-disk and CD scenarios; its port-402h
    log says from where."""
    out = S.run_aero(S.load(name), str(tmp_path), screenshot=False, bios="seabios")
    assert out.ok, f"{name} under Aero + SeaBIOS:\n" + "\n".join(out.problems)
    log = out.firmware_log.decode("latin-1")
    assert "SeaBIOS (version 1.16" in log and line in log and "Booting from 0000:7c00" in log
