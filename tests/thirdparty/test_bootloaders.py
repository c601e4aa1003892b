"""Real third-party bootloaders (SYSLINUX, ISOLINUX, GRUB 2) boot a multiboot kernel under Aero.

Debian packages these tests need (installed here with apt-get when missing and possible, else
the tests skip saying which; for .ci/run):
    syslinux syslinux-common isolinux mtools dosfstools xorriso grub-pc-bin grub-common
and qemu-system-x86 (with seabios, bochsbios, vgabios) for the comparison with QEMU.

The media are built at test time by ``aero/testing/bootmedia.py`` (see there): a SYSLINUX floppy
(``syslinux-fd``), an ISOLINUX CD (``isolinux-cd``), a GRUB floppy made with grub-mkimage
(``grub-fd``) and grub-mkrescue's ISO (``grub-iso``), each booting
``scenarios/multiboot/kernel.bin`` through the loader's multiboot support with the loader's own
console on COM1.  Each is booted under the Aero BIOS, SeaBIOS and the Bochs BIOS (``aero run
--bios B --fda/--cdrom ... --serial FILE --headless --timeout``) and checked for the loader's
banner on COM1, then the kernel's report, then exit status 33 (isa-debug-exit 10h); then the
whole COM1 transcript is compared with qemu-system-i386's for the same medium (SeaBIOS standing
in for the Aero BIOS; the Bochs BIOS run by QEMU with ``-cpu qemu32,-apic``).

Known difference from QEMU (``QEMU_ONLY``): with the Bochs BIOS, GRUB's multiboot loader prints
"error: Can't get controller info.." under QEMU and not under Aero: its VBE 4F00h call fails
there because the Bochs BIOS on QEMU's PC does not run QEMU's VGA option ROM (the ROM is at
C0000h but INT 10h stays at the Bochs BIOS's own F000:F065), while Aero's Bochs configuration
runs the LGPL vgabios-stdvga, which has VBE.

Each boot takes 12-50 s under Aero (26 M instructions for SYSLINUX/ISOLINUX, 55 M for the GRUB
floppy); CI runs a fixed sample (``CI_SAMPLE``: the three loaders under the Aero BIOS, ISOLINUX
under SeaBIOS, SYSLINUX's floppy under the Bochs BIOS: the floppy path whose missing implicit
seek gave "CHS Boot error"), the rest are marked slow and run with AERO_FULL=1.
"""

from __future__ import annotations

import re

import pytest

from aero.testing import bootmedia
from tests.conftest import FULL

BIOSES = ["aero", "seabios", "bochs"]
CI_SAMPLE = {("syslinux-fd", "aero"), ("isolinux-cd", "aero"), ("grub-fd", "aero"),
             ("isolinux-cd", "seabios"), ("syslinux-fd", "bochs")}

# what QEMU prints on COM1 and Aero legitimately does not (module docstring); GRUB ends its
# lines with "\n\r"
QEMU_ONLY = {
    ("grub-fd", "bochs"): ["error: Can't get controller info..\n\r"],
    ("grub-iso", "bochs"): ["error: Can't get controller info..\n\r"],
}


def _params():
    out = []
    for medium in bootmedia.MEDIA:
        for bios in BIOSES:
            marks = []
            if (medium, bios) not in CI_SAMPLE:
                marks.append(pytest.mark.slow)
                if not FULL:
                    marks.append(pytest.mark.skip(reason="slow (12-50 s under Aero): "
                                                         "AERO_FULL=1 runs it"))
            out.append(pytest.param(medium, bios, marks=marks, id=f"{medium}-{bios}"))
    return out


_media: dict = {}
_aero: dict = {}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bootmedia"))


def medium_path(medium: str, directory: str) -> str:
    if medium not in _media:
        why = bootmedia.ensure_tools(medium)
        _media[medium] = ("skip", why) if why else ("ok", bootmedia.build(medium, directory))
    state, value = _media[medium]
    if state == "skip":
        pytest.skip(value)
    return value


def aero_run(medium: str, bios: str, directory: str) -> bootmedia.Run:
    key = (medium, bios)
    if key not in _aero:
        _aero[key] = bootmedia.run_aero(medium, medium_path(medium, directory), bios,
                                        timeout=300)
    return _aero[key]


def _describe(r: bootmedia.Run) -> str:
    return (f"{r.runner} status {r.status} after {r.seconds:.1f} s\n$ {r.command}\n"
            f"COM1: {r.serial!r}\nstderr: {r.stderr}")


@pytest.mark.parametrize("medium,bios", _params())
def test_boots(medium, bios, media_dir, record_property):
    """The loader's banner on COM1, then the kernel's report and its isa-debug-exit."""
    r = aero_run(medium, bios, media_dir)
    record_property("aero_seconds", round(r.seconds, 1))
    banner = bootmedia.BANNER[medium].search(r.serial)
    assert banner, f"no {medium} banner on COM1\n{_describe(r)}"
    rest = r.serial[banner.end():]
    assert re.search(bootmedia.expected_kernel_output(medium), rest), \
        f"the kernel's report is missing after the banner\n{_describe(r)}"
    assert r.status == 33, _describe(r)


def _normalise(serial: str, drop: list[str]) -> str:
    out = serial
    for line in drop:
        out = out.replace(line, "", 1)
    return out


@pytest.mark.parametrize("medium,bios", _params())
def test_same_as_qemu(medium, bios, media_dir, record_property):
    """COM1 byte for byte as under qemu-system-i386 with the same medium and BIOS (SeaBIOS for
    the Aero BIOS), and the same exit status."""
    if not bootmedia.have_qemu():
        pytest.skip("qemu-system-i386 is not installed (Debian: qemu-system-x86)")
    path = medium_path(medium, media_dir)
    q = bootmedia.run_qemu(medium, path, "seabios" if bios == "aero" else bios)
    record_property("qemu_seconds", round(q.seconds, 1))
    assert q.status == 33, f"QEMU did not boot it\n{_describe(q)}"
    a = aero_run(medium, bios, media_dir)
    drop = QEMU_ONLY.get((medium, bios), [])
    for line in drop:
        assert line in q.serial, \
            f"QEMU no longer prints {line!r}: update QEMU_ONLY\n{_describe(q)}"
    assert a.serial == _normalise(q.serial, drop), \
        f"COM1 differs from QEMU's\n{_describe(a)}\n{_describe(q)}"
    assert a.status == q.status


def test_missing_tools_skip_reason(monkeypatch):
    """Without the tools and without apt-get, ensure_tools names the packages to install."""
    monkeypatch.setattr(bootmedia.shutil, "which", lambda name: None)
    monkeypatch.setattr(bootmedia.os.path, "exists", lambda p: False)
    monkeypatch.setattr(bootmedia, "_install_tried", {})
    why = bootmedia.ensure_tools("grub-fd")
    assert why == ("grub-fd needs the Debian packages dosfstools grub-common grub-pc-bin mtools "
                   "(no apt-get)")
    assert bootmedia.PACKAGES == ["dosfstools", "grub-common", "grub-pc-bin", "isolinux",
                                  "mtools", "syslinux", "syslinux-common", "xorriso"]
