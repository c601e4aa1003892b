"""Boot media made with real third-party bootloaders, and runs of them under Aero and QEMU.

Used by ``tests/thirdparty/test_bootloaders.py``.  Every medium boots the same multiboot kernel,
``scenarios/multiboot/kernel.bin`` (it reports on COM1 and exits through isa-debug-exit at 501h
with 10h, exit status 33), through the loader's own multiboot support, with the loader's own
console on COM1 too:

``syslinux-fd``  a 1.44 MB FAT12 floppy: ``mkfs.fat``, ``syslinux --install`` on the image,
                 ``mboot.c32`` and ``libcom32.c32`` copied with mtools; ``syslinux.cfg`` has
                 ``SERIAL 0 115200`` and ``KERNEL mboot.c32`` / ``APPEND kernel.bin ARGS``.
``isolinux-cd``  an El Torito (no emulation) CD: ``xorriso -as mkisofs`` with ``isolinux.bin``,
                 ``ldlinux.c32``, ``mboot.c32``, ``libcom32.c32``, the same configuration.
``grub-fd``      a GRUB 2 (i386-pc) floppy: ``grub-mkimage`` (biosdisk fat multiboot serial
                 terminal echo) with an embedded configuration run by the rescue parser
                 (``serial``, ``terminal_output serial``, ``echo``, ``multiboot``, ``boot``),
                 ``boot.img`` in sector 0 (the FAT BPB kept), ``core.img`` from sector 1 in the
                 FAT's reserved sectors (diskboot's default blocklist, as ``cat boot.img
                 core.img`` gives), the kernel in the FAT file system as ``/boot/kernel.bin``:
                 GRUB reads its core through the BIOS (CHS on a floppy) and the kernel through
                 its own biosdisk and fat drivers.
``grub-iso``     ``grub-mkrescue``'s ISO (El Torito with GRUB's cdboot.img) and a ``grub.cfg``
                 run by GRUB's normal mode.

Debian packages (``PACKAGES``): syslinux syslinux-common isolinux mtools dosfstools xorriso
grub-pc-bin grub-common; ``ensure_tools`` installs the missing ones with apt-get when it can.

    python -m aero.testing.bootmedia DIR          # build all four media in DIR
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KERNEL = os.path.join(ROOT, "scenarios", "multiboot", "kernel.bin")
KERNEL_ARGS = "console=ttyS0 scenario=multiboot"

SYSLINUX_MODULES = "/usr/lib/syslinux/modules/bios"
ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"
GRUB_DIR = "/usr/lib/grub/i386-pc"
BOCHS_BIOS = "/usr/share/bochs/BIOS-bochs-latest"
QEMU = "qemu-system-i386"

# what each medium needs: (a file or a command, the Debian package that has it)
NEEDS = {
    "syslinux-fd": [("syslinux", "syslinux"), ("mkfs.fat", "dosfstools"),
                    ("mcopy", "mtools"),
                    (SYSLINUX_MODULES + "/mboot.c32", "syslinux-common")],
    "isolinux-cd": [(ISOLINUX_BIN, "isolinux"), ("xorriso", "xorriso"),
                    (SYSLINUX_MODULES + "/mboot.c32", "syslinux-common")],
    "grub-fd": [("grub-mkimage", "grub-common"), (GRUB_DIR + "/boot.img", "grub-pc-bin"),
                ("mkfs.fat", "dosfstools"), ("mcopy", "mtools")],
    "grub-iso": [("grub-mkrescue", "grub-common"), (GRUB_DIR + "/cdboot.img", "grub-pc-bin"),
                 ("xorriso", "xorriso"), ("mformat", "mtools")],
}
PACKAGES = sorted({pkg for needs in NEEDS.values() for _, pkg in needs})
MEDIA = list(NEEDS)
KIND = {"syslinux-fd": "fda", "isolinux-cd": "cdrom", "grub-fd": "fda", "grub-iso": "cdrom"}

# the bootloader's own line on COM1, before the kernel's
BANNER = {
    "syslinux-fd": re.compile(r"SYSLINUX 6\.\d+ \d+ Copyright \(C\) 1994-\d+ H\. Peter Anvin"),
    "isolinux-cd": re.compile(r"ISOLINUX 6\.\d+ \d+ +Copyright \(C\) 1994-\d+ H\. Peter Anvin"),
    "grub-fd": re.compile(r"GRUB i386-pc banner"),
    "grub-iso": re.compile(r"GRUB i386-pc grub.cfg banner"),
}


def _have(what: str) -> bool:
    return os.path.exists(what) if what.startswith("/") else shutil.which(what) is not None


def missing(medium: str) -> list[str]:
    """The Debian packages medium still needs."""
    return sorted({pkg for what, pkg in NEEDS[medium] if not _have(what)})


_install_tried: dict = {}


def ensure_tools(medium: str) -> str | None:
    """None when everything medium needs is installed (installing the missing packages with
    apt-get when it is there and we are root), else why not."""
    need = missing(medium)
    if not need:
        return None
    key = tuple(need)
    if key not in _install_tried:
        if not shutil.which("apt-get"):
            why = "no apt-get"
        elif hasattr(os, "geteuid") and os.geteuid() != 0:
            why = "not root, cannot apt-get install"
        else:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
                if p.returncode:
                    subprocess.run(["apt-get", "update", "-qq"], capture_output=True,
                                   timeout=600, env=env)
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                       env=env)
                why = None if p.returncode == 0 else \
                    f"apt-get install failed: {p.stderr.strip()[-200:]}"
            except (OSError, subprocess.SubprocessError) as e:
                why = f"apt-get install failed: {e}"
        _install_tried[key] = why
    still = missing(medium)
    if not still:
        return None
    return (f"{medium} needs the Debian packages {' '.join(still)}"
            f" ({_install_tried[key] or 'still missing after apt-get install'})")


def _run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if p.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: status {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-500:]}")
    return p


SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT mb
PROMPT 0
TIMEOUT 0
LABEL mb
  KERNEL mboot.c32
  APPEND {kernel} {args}
"""


def build_syslinux_floppy(out: str) -> str:
    """A 1.44 MB SYSLINUX floppy at out."""
    if os.path.exists(out):
        os.remove(out)
    _run(["mkfs.fat", "-C", out, "1440"])
    _run(["syslinux", "--install", out])
    cfg = os.path.join(os.path.dirname(out), "syslinux.cfg")
    with open(cfg, "w") as f:
        f.write(SYSLINUX_CFG.format(kernel="kernel.bin", args=KERNEL_ARGS))
    _run(["mcopy", "-i", out, cfg, os.path.join(SYSLINUX_MODULES, "mboot.c32"),
          os.path.join(SYSLINUX_MODULES, "libcom32.c32"), KERNEL, "::/"])
    return out


def _isolinux_cd(out: str, modules, files: dict, cfg: str) -> str:
    """An ISOLINUX El Torito CD at ``out``: isolinux.bin and SYSLINUX ``modules`` in
    /isolinux with ``cfg`` as isolinux.cfg, and ``files`` (path on the CD -> host file)."""
    tree = out + ".tree"
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(os.path.join(tree, "isolinux"))
    for f in (ISOLINUX_BIN, *(os.path.join(SYSLINUX_MODULES, m) for m in modules)):
        shutil.copy(f, os.path.join(tree, "isolinux"))
    for name, src in files.items():
        shutil.copy(src, os.path.join(tree, name))
    with open(os.path.join(tree, "isolinux", "isolinux.cfg"), "w") as f:
        f.write(cfg)
    if os.path.exists(out):
        os.remove(out)
    _run(["xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-b", "isolinux/isolinux.bin",
          "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
          "-boot-info-table", tree])
    shutil.rmtree(tree, ignore_errors=True)
    return out


def build_isolinux_cd(out: str) -> str:
    """An ISOLINUX El Torito CD at out."""
    return _isolinux_cd(out, ("ldlinux.c32", "mboot.c32", "libcom32.c32"),
                        {"kernel.bin": KERNEL},
                        SYSLINUX_CFG.format(kernel="/kernel.bin", args=KERNEL_ARGS))


LINUX_CFG = """SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz {append}
"""


def build_linux_iso(out: str, kernel: str, initrd: str, append: str) -> str:
    """An ISOLINUX El Torito CD at out that boots a Linux ``kernel`` with ``initrd`` through
    SYSLINUX's own Linux loader (the kernel and initrd read through the BIOS's INT 13h
    extensions from the CD), the command line ``append``."""
    return _isolinux_cd(out, ("ldlinux.c32",), {"vmlinuz": kernel, "initrd.gz": initrd},
                        LINUX_CFG.format(append=append))


GRUB_EARLY_CFG = """serial --unit=0 --speed=115200
terminal_output serial
echo GRUB $grub_cpu-$grub_platform banner
multiboot /boot/kernel.bin {args}
boot
"""
GRUB_FD_MODULES = ["biosdisk", "fat", "multiboot", "serial", "terminal", "echo"]


def build_grub_floppy(out: str) -> str:
    """A GRUB 2 (i386-pc) 1.44 MB floppy at out: boot.img, core.img in the FAT's reserved
    sectors 1..n (diskboot.img's default blocklist starts at sector 2), the kernel in FAT."""
    d = os.path.dirname(out)
    cfg = os.path.join(d, "grub-early.cfg")
    with open(cfg, "w") as f:
        f.write(GRUB_EARLY_CFG.format(args=KERNEL_ARGS))
    core_path = os.path.join(d, "grub-core.img")
    _run(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_DIR, "-o", core_path,
          "-p", "(fd0)/boot/grub", "-c", cfg, *GRUB_FD_MODULES])
    with open(core_path, "rb") as f:
        core = f.read()
    with open(os.path.join(GRUB_DIR, "boot.img"), "rb") as f:
        boot = bytearray(f.read())
    sectors = (len(core) + 511) // 512
    if os.path.exists(out):
        os.remove(out)
    _run(["mkfs.fat", "-C", "-R", str(1 + sectors), out, "1440"])
    with open(out, "r+b") as f:
        bpb = f.read(512)
        boot[0x03:0x5A] = bpb[0x03:0x5A]   # GRUB_BOOT_MACHINE_BPB_START..END: keep the FAT's
        f.seek(0)
        f.write(boot)
        f.write(core)
    _run(["mmd", "-i", out, "::/boot"])
    _run(["mcopy", "-i", out, KERNEL, "::/boot/kernel.bin"])
    return out


GRUB_CFG = """serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
echo GRUB $grub_cpu-$grub_platform grub.cfg banner
multiboot /boot/kernel.bin {args}
boot
"""


def build_grub_iso(out: str) -> str:
    """grub-mkrescue's i386-pc ISO at out."""
    tree = out + ".tree"
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(os.path.join(tree, "boot", "grub"))
    shutil.copy(KERNEL, os.path.join(tree, "boot", "kernel.bin"))
    with open(os.path.join(tree, "boot", "grub", "grub.cfg"), "w") as f:
        f.write(GRUB_CFG.format(args=KERNEL_ARGS))
    if os.path.exists(out):
        os.remove(out)
    _run(["grub-mkrescue", "-d", GRUB_DIR, "-o", out, tree, "--modules=multiboot serial"])
    shutil.rmtree(tree, ignore_errors=True)
    return out


BUILDERS = {"syslinux-fd": (build_syslinux_floppy, "syslinux.img"),
            "isolinux-cd": (build_isolinux_cd, "isolinux.iso"),
            "grub-fd": (build_grub_floppy, "grub.img"),
            "grub-iso": (build_grub_iso, "grub.iso")}


def build(medium: str, directory: str) -> str:
    fn, name = BUILDERS[medium]
    os.makedirs(directory, exist_ok=True)
    return fn(os.path.join(directory, name))


def expected_kernel_output(medium: str) -> str:
    """The kernel's lines on COM1 (mem_lower aside: it is the BIOS's, 639 or 636 KiB)."""
    # SYSLINUX's mboot.c32 passes "PATH ARGS" (the kernel skips the path, as under QEMU's
    # -kernel); GRUB 2 passes only what follows the path, so the kernel skips the first word
    args = KERNEL_ARGS if medium.startswith(("syslinux", "isolinux")) \
        else KERNEL_ARGS.split(" ", 1)[1]
    return ("multiboot kernel at 1 MiB\r\nmagic 2BADB002 ok\r\n"
            "mem_lower (639|636) KiB, mem_upper 31 MiB\r\n"
            f"cmdline \\[{re.escape(args)}\\]\r\npaging off, flat segments: ok\r\n")


@dataclasses.dataclass
class Run:
    status: int | None       # exit status (33: the kernel's isa-debug-exit), None: timed out
    serial: str              # COM1, latin-1
    seconds: float
    runner: str
    stderr: str = ""
    command: str = ""


def _boot_args(medium: str, path: str) -> list[str]:
    if KIND[medium] == "fda":
        return ["--fda", path, "--boot", "a"]
    return ["--cdrom", path, "--boot", "d"]


def aero_command(medium: str, path: str, bios: str, serial: str, timeout: float) -> list[str]:
    return [sys.executable, "-m", "aero", "run", "--bios", bios, *_boot_args(medium, path),
            "--serial", serial, "--headless", "--timeout", str(timeout)]


def run_aero(medium: str, path: str, bios: str, timeout: float = 150.0) -> Run:
    serial = f"{path}.{bios}.aero.serial"
    cmd = aero_command(medium, path, bios, serial, timeout)
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT)
    secs = time.monotonic() - t
    with open(serial, "rb") as f:
        out = f.read().decode("latin-1")
    return Run(p.returncode, out, secs, "aero", p.stderr.strip()[-2000:], " ".join(cmd))


def have_qemu() -> bool:
    return shutil.which(QEMU) is not None


def qemu_command(medium: str, path: str, bios: str, serial: str) -> list[str]:
    drive = "if=floppy" if KIND[medium] == "fda" else "media=cdrom"
    cmd = [QEMU, "-display", "none", "-m", "32", "-no-reboot", "-accel", "tcg",
           "-drive", f"file={path},{drive},format=raw,readonly=on",
           "-boot", "a" if KIND[medium] == "fda" else "d",
           "-serial", f"file:{serial}", "-device", "isa-debug-exit,iobase=0x501,iosize=2"]
    if bios == "bochs":
        # the Bochs BIOS turns the local APIC on without virtual wire and waits for the timer
        # forever under QEMU's default CPU (README, --apic): no APIC, as on Aero's PC
        cmd += ["-bios", BOCHS_BIOS, "-cpu", "qemu32,-apic"]
    return cmd


def run_qemu(medium: str, path: str, bios: str, timeout: float = 60.0) -> Run:
    """bios: seabios or bochs (the Aero BIOS has no QEMU counterpart: SeaBIOS stands in)."""
    serial = f"{path}.{bios}.qemu.serial"
    if os.path.exists(serial):
        os.remove(serial)
    cmd = qemu_command(medium, path, bios, serial)
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        status, err = p.returncode, p.stderr.strip()[-2000:]
    except subprocess.TimeoutExpired:
        status, err = None, f"no exit within {timeout} s"
    secs = time.monotonic() - t
    out = ""
    if os.path.exists(serial):
        with open(serial, "rb") as f:
            out = f.read().decode("latin-1")
    return Run(status, out, secs, "qemu", err, " ".join(cmd))


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m aero.testing.bootmedia",
                                 description="Build third-party bootloader media.")
    ap.add_argument("directory")
    ap.add_argument("--media", nargs="*", default=MEDIA, choices=MEDIA)
    a = ap.parse_args(argv)
    rc = 0
    for m in a.media:
        why = ensure_tools(m)
        if why:
            print(f"{m}: {why}", file=sys.stderr)
            rc = 1
            continue
        print(build(m, a.directory))
    return rc


if __name__ == "__main__":
    sys.exit(main())
