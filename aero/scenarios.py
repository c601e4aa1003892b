"""The scenario collection (``scenarios/<name>/scenario.toml``): load manifests, build disk images
from the committed boot sectors, run a scenario under Aero (the code path of `aero run`) and,
optionally, under ``qemu-system-i386``, and check the outcome.

    python -m aero.scenarios [--list] [--qemu] [--regenerate] [--bios seabios] [NAME...]

Manifest fields (TOML)::

    description = "one line"
    qemu = true                 # same serial output expected under qemu-system-i386 + SeaBIOS

    [machine]                   # `aero run --config` settings (aero.config.CONFIG_KEYS):
    boot = "c"                  # fda/hda/cdrom/kernel/boot/keys/memory/cmdline/ips/...; paths
    kernel = "kernel.bin"       # are relative to the scenario directory

    [image]                     # optional: an image built in a temporary directory
    kind = "floppy"             # floppy (1.44 MB) | hdd | iso
    boot = "hello.bin"          # boot sector (floppy, hdd) or El Torito no-emulation image (iso)
    size = 1048576              # hdd: image size in bytes (default 1 MiB)
    parts = [{ lba = 1, file = "stage2.bin" }]      # hdd/floppy: more files at 512-byte LBAs
    volume_id = "AERO"          # iso: the PVD's volume identifier
    files = [{ name = "README.TXT", text = "..." }] # iso: files after the boot image (LBA 24...)

    [expect]
    serial = "exact COM1 output"          # or
    serial_pattern = "regex (fullmatch, DOTALL)"
    exit = 33                   # `aero run` exit status; QEMU gives the same for isa-debug-exit
    qemu_exit = 0               # optional: QEMU's status when it differs (ACPI poweroff: 0)
    screen = "hello"            # golden screenshot tests/scenarios/golden/<screen>.png

The image kind decides the drive (floppy -> fda, hdd -> hda, iso -> cdrom).  Every ``*.asm`` in a
scenario directory is built with ``nasm -f bin -I <dir>/`` into the ``.bin`` of the same name,
which is committed (``rebuild`` checks they are identical).

Under QEMU: ``-nodefaults -display none -serial stdio -device isa-debug-exit,iobase=0x501,
iosize=2 -m 32 -no-reboot`` with QEMU's default firmware (SeaBIOS); images are attached with
``snapshot=on`` (the CD ``readonly=on``), plus ``-vga std`` so the display scenarios have a VGA.
Keys (``keys``) are typed through the QEMU monitor's ``sendkey`` once the guest has written its
first COM1 byte.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field

import numpy as np

from .build import build_machine
from .config import CONFIG_KEYS, split_settings
from .devices.ps2 import KEYS
from .display.png import read_png
from .inputs import parse_keys
from .machine import Machine
from .runcmd import run_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(ROOT, "scenarios")
GOLDEN = os.path.join(ROOT, "tests", "scenarios", "golden")
FLOPPY_SIZE = 1474560
DEFAULT_TIMEOUT = 60.0
QEMU = "qemu-system-i386"
QEMU_BASE = ["-nodefaults", "-display", "none", "-serial", "stdio", "-device",
             "isa-debug-exit,iobase=0x501,iosize=2", "-no-reboot", "-vga", "std"]
PATH_KEYS = ("fda", "fdb", "hda", "hdb", "cdrom", "kernel", "serial_input", "bios", "vgabios")
TOP_KEYS = {"description", "qemu", "machine", "image", "expect"}
IMAGE_KEYS = {"kind", "boot", "size", "parts", "volume_id", "files"}
EXPECT_KEYS = {"serial", "serial_pattern", "exit", "qemu_exit", "screen"}
IMAGE_DRIVE = {"floppy": "fda", "hdd": "hda", "iso": "cdrom"}


class ManifestError(ValueError):
    pass


@dataclass
class Scenario:
    name: str
    directory: str
    description: str
    qemu: bool
    machine: dict
    image: dict | None
    serial: str | None
    serial_pattern: str | None
    exit: int
    qemu_exit: int
    screen: str | None

    def path(self, rel: str) -> str:
        return os.path.join(self.directory, rel)

    def sources(self) -> list[str]:
        return sorted(f for f in os.listdir(self.directory) if f.endswith(".asm"))


@dataclass
class Outcome:
    runner: str                     # "aero" or "qemu"
    exit: int
    serial: bytes
    seconds: float
    screenshot: str | None = None   # PNG path (Aero only)
    firmware_log: bytes = b""       # port 402h output (Aero only)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------------------------------------
# Manifests
# ----------------------------------------------------------------------------------------------
def names() -> list[str]:
    return sorted(d for d in os.listdir(SCENARIOS)
                  if os.path.isfile(os.path.join(SCENARIOS, d, "scenario.toml")))


def load(name: str, directory: str | None = None) -> Scenario:
    """The scenario ``name`` (in ``scenarios/``, or in ``directory``); ManifestError if bad."""
    d = directory or os.path.join(SCENARIOS, name)
    f = os.path.join(d, "scenario.toml")
    if not os.path.isfile(f):
        raise ManifestError(f"{name}: no such scenario ({f} missing)")
    try:
        with open(f, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{f}: {e}")

    def bad(msg):
        return ManifestError(f"{f}: {msg}")

    for k in raw:
        if k not in TOP_KEYS:
            raise bad(f"unknown field {k!r}")
    machine = dict(raw.get("machine", {}))
    for k, v in machine.items():
        typ = CONFIG_KEYS.get(k.replace("-", "_"))
        if typ is None:
            raise bad(f"[machine]: {k!r} is not an `aero run` setting")
        if typ is float and isinstance(v, int):
            v = float(v)
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise bad(f"[machine]: {k} must be {typ.__name__}")
    for k in ("serial", "screenshot", "config"):
        if k in machine:
            raise bad(f"[machine]: {k} is set by the runner")
    image = raw.get("image")
    if image is not None:
        for k in image:
            if k not in IMAGE_KEYS:
                raise bad(f"[image]: unknown field {k!r}")
        if image.get("kind") not in IMAGE_DRIVE:
            raise bad(f"[image]: kind must be one of {sorted(IMAGE_DRIVE)}")
        if "boot" not in image:
            raise bad("[image]: boot (the boot sector's .bin) is required")
        if IMAGE_DRIVE[image["kind"]] in machine:
            raise bad(f"[image] and [machine] both give {IMAGE_DRIVE[image['kind']]}")
    expect = raw.get("expect", {})
    for k in expect:
        if k not in EXPECT_KEYS:
            raise bad(f"[expect]: unknown field {k!r}")
    if ("serial" in expect) == ("serial_pattern" in expect):
        raise bad("[expect]: give exactly one of serial, serial_pattern")
    if not isinstance(expect.get("exit"), int):
        raise bad("[expect]: exit (an integer) is required")
    qemu = raw.get("qemu", False)
    return Scenario(name=name, directory=d, description=raw.get("description", ""), qemu=qemu,
                    machine=machine, image=image, serial=expect.get("serial"),
                    serial_pattern=expect.get("serial_pattern"), exit=expect["exit"],
                    qemu_exit=expect.get("qemu_exit", expect["exit"]),
                    screen=expect.get("screen"))


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------
def _read(scn: Scenario, rel: str) -> bytes:
    with open(scn.path(rel), "rb") as f:
        return f.read()


def build_image(scn: Scenario, workdir: str) -> tuple[str, str] | None:
    """Build the scenario's image in ``workdir``; return (drive setting, path) or None."""
    img = scn.image
    if img is None:
        return None
    kind = img["kind"]
    boot = _read(scn, img["boot"])
    if kind == "iso":
        files = []
        for f in img.get("files", []):
            data = f["text"].encode() if "text" in f else _read(scn, f["file"])
            files.append((f["name"], data))
        data = make_iso(boot, files, img.get("volume_id", scn.name.upper()))
    else:
        size = FLOPPY_SIZE if kind == "floppy" else img.get("size", 1 << 20)
        buf = bytearray(size)
        buf[:len(boot)] = boot
        for p in img.get("parts", []):
            part = _read(scn, p["file"])
            at = p["lba"] * 512
            if at + len(part) > size:
                raise ManifestError(f"{scn.name}: {p['file']} does not fit at LBA {p['lba']}")
            buf[at:at + len(part)] = part
        data = bytes(buf)
    path = os.path.join(workdir, f"{scn.name}.{'iso' if kind == 'iso' else 'img'}")
    with open(path, "wb") as f:
        f.write(data)
    return IMAGE_DRIVE[kind], path


def _both16(v: int) -> bytes:
    return struct.pack("<H", v) + struct.pack(">H", v)


def _both32(v: int) -> bytes:
    return struct.pack("<I", v) + struct.pack(">I", v)


def _dirent(name: bytes, lba: int, size: int, is_dir: bool) -> bytes:
    n = len(name)
    rec = bytearray(33 + n + (1 - n % 2))
    rec[0] = len(rec)
    rec[2:10] = _both32(lba)
    rec[10:18] = _both32(size)
    rec[18:25] = bytes((126, 1, 1, 12, 0, 0, 0))            # 2026-01-01 12:00:00 UTC
    rec[25] = 2 if is_dir else 0
    rec[28:32] = _both16(1)
    rec[32] = n
    rec[33:33 + n] = name
    return bytes(rec)


def make_iso(boot: bytes, files: list[tuple[str, bytes]], volume_id: str) -> bytes:
    """A minimal ISO 9660 image with an El Torito no-emulation boot entry.

    Sectors: 16 PVD, 17 boot record, 18 terminator, 19 boot catalog, 20 root directory, 21/22
    path tables (L/M), 23.. the boot image, then the files in order (the first at 24 when the
    boot image is one sector)."""
    S = 2048
    boot_lba = 23
    boot_secs = max(1, -(-len(boot) // S))
    lba = boot_lba + boot_secs
    placed = []
    for name, data in files:
        placed.append((name, data, lba))
        lba += max(1, -(-len(data) // S))
    total = lba
    img = bytearray(total * S)
    # root directory
    root = _dirent(b"\0", 20, S, True) + _dirent(b"\1", 20, S, True)
    root += _dirent(b"BOOT.BIN;1", boot_lba, len(boot), False)
    for name, data, at in placed:
        root += _dirent(name.upper().encode() + b";1", at, len(data), False)
    if len(root) > S:
        raise ManifestError("too many files for a one-sector root directory")
    img[20 * S:20 * S + len(root)] = root
    # path tables: the root only
    img[21 * S:21 * S + 10] = struct.pack("<BBIH", 1, 0, 20, 1) + b"\0\0"
    img[22 * S:22 * S + 10] = struct.pack(">BBIH", 1, 0, 20, 1) + b"\0\0"
    # primary volume descriptor
    pvd = bytearray(S)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[8:40] = b"AERO".ljust(32)
    pvd[40:72] = volume_id.upper().encode().ljust(32)[:32]
    pvd[80:88] = _both32(total)
    pvd[120:124] = _both16(1)
    pvd[124:128] = _both16(1)
    pvd[128:132] = _both16(S)
    pvd[132:140] = _both32(10)
    struct.pack_into("<I", pvd, 140, 21)
    struct.pack_into(">I", pvd, 148, 22)
    pvd[156:190] = _dirent(b"\0", 20, S, True)
    for off, ln in ((190, 128), (318, 128), (446, 128), (574, 128), (702, 37), (739, 37),
                    (776, 37)):
        pvd[off:off + ln] = b" " * ln
    for off in (813, 830, 847, 864):
        pvd[off:off + 17] = b"0" * 16 + b"\0"
    pvd[813:829] = pvd[830:846] = b"2026010112000000"
    pvd[881] = 1
    img[16 * S:17 * S] = pvd
    # El Torito boot record volume descriptor
    br = bytearray(S)
    br[0:7] = b"\x00CD001\x01"
    br[7:30] = b"EL TORITO SPECIFICATION"
    struct.pack_into("<I", br, 0x47, 19)
    img[17 * S:18 * S] = br
    img[18 * S:18 * S + 7] = b"\xffCD001\x01"
    # boot catalog: validation entry + initial/default entry (no emulation, 07C0h, 4 sectors)
    val = bytearray(32)
    val[0] = 1
    val[4:28] = b"AERO SCENARIOS".ljust(24, b"\0")
    val[30:32] = b"\x55\xAA"
    struct.pack_into("<H", val, 28, (-sum(struct.unpack("<16H", bytes(val)))) & 0xFFFF)
    ent = bytearray(32)
    ent[0], ent[1] = 0x88, 0
    struct.pack_into("<HBBHI", ent, 2, 0, 0, 0, min(4, boot_secs * 4), boot_lba)
    img[19 * S:19 * S + 64] = val + ent
    img[boot_lba * S:boot_lba * S + len(boot)] = boot
    for name, data, at in placed:
        img[at * S:at * S + len(data)] = data
    return bytes(img)


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def machine_settings(scn: Scenario, workdir: str) -> dict:
    """The scenario's `aero run` settings with absolute paths and the built image attached."""
    settings = {}
    for k, v in scn.machine.items():
        k = k.replace("-", "_")
        if k in PATH_KEYS and v not in ("aero", "seabios", "bochs"):
            v = scn.path(v)
        elif k == "module":
            v = [scn.path(m) for m in v]
        settings[k] = v
    built = build_image(scn, workdir)
    if built:
        settings[built[0]] = built[1]
    return settings


def run_aero(scn: Scenario, workdir: str, screenshot: bool = True,
             bios: str | None = None) -> Outcome:
    """Run under Aero exactly as ``aero run`` does with the scenario's settings; ``bios``
    replaces the Aero BIOS (``seabios``, ``bochs`` or a path) for scenarios that boot from a
    drive."""
    settings = run_settings(scn, workdir, bios)
    fwlog = settings["firmware_log"]
    serial = settings["serial"]
    shot = os.path.join(workdir, "screen.png") if screenshot else None
    if shot:
        settings["screenshot"] = shot
    t0 = time.monotonic()
    code = run_command(settings)
    dt = time.monotonic() - t0
    out = open(serial, "rb").read() if os.path.exists(serial) else b""
    o = Outcome("aero", code, out, dt, shot if shot and os.path.exists(shot) else None)
    if os.path.exists(fwlog):
        o.firmware_log = open(fwlog, "rb").read()
    check(scn, o)
    return o


def build(scn: Scenario, workdir: str, **settings) -> Machine:
    """The scenario's machine (its image built in ``workdir``), with ``settings`` over the
    manifest's; not yet run.  For tests and tools that drive a scenario themselves."""
    merged = {**machine_settings(scn, workdir), **settings}
    cfg, _ = split_settings(merged)
    return build_machine(cfg)


def run_settings(scn: Scenario, workdir: str, bios: str | None = None) -> dict:
    """The `aero run` settings a scenario runs with: its machine, its image (built in
    ``workdir``), COM1 and the firmware log into files there, a generous timeout."""
    settings = machine_settings(scn, workdir)
    settings.setdefault("timeout", DEFAULT_TIMEOUT)
    settings.setdefault("firmware_log", os.path.join(workdir, "firmware.log"))
    if bios:
        if "kernel" in settings and bios not in ("aero", "seabios"):
            raise ManifestError(f"{scn.name}: a --kernel scenario boots after the POST of the "
                                "Aero BIOS or SeaBIOS only")
        settings["bios"] = bios
        settings["timeout"] = max(settings["timeout"], 300.0)
    settings["serial"] = os.path.join(workdir, "serial.out")
    settings["headless"] = True
    return settings


def qemu_command(scn: Scenario, workdir: str) -> list[str]:
    s = machine_settings(scn, workdir)
    cmd = [QEMU] + QEMU_BASE + ["-m", str(s.pop("memory", 32))]
    drives = {"fda": "if=floppy,index=0", "fdb": "if=floppy,index=1",
              "hda": "if=ide,index=0,media=disk", "hdb": "if=ide,index=1,media=disk",
              "cdrom": "if=ide,index=2,media=cdrom"}
    for k, v in s.items():
        if k in drives:
            cmd += ["-drive", f"file={v},format=raw,{drives[k]}"
                    + (",snapshot=on" if k != "cdrom" else ",readonly=on")]
        elif k == "boot":
            cmd += ["-boot", f"order={v}"]
        elif k == "kernel":
            cmd += ["-kernel", v]
        elif k == "cmdline":
            cmd += ["-append", v]
        elif k == "rtc":
            cmd += ["-rtc", f"base={v}"]
        elif k in ("ips", "timeout", "max_instructions", "realtime", "headless", "keys"):
            pass                                        # Aero-only pacing and limits
        else:
            raise ManifestError(f"{scn.name}: {k} has no QEMU equivalent here")
    return cmd


def qemu_sendkeys(text: str) -> list:
    """`--keys` TEXT as QEMU monitor commands: ("sendkey KEYS", None) or (None, seconds).  Keys
    are given as QEMU key numbers (scan code set 1, E0-prefixed codes as 80h | code)."""
    out = []
    for kind, what in parse_keys(text):
        if kind == "wait":
            out.append((None, what / 1e9))
            continue
        codes = []
        for name in what:
            make = KEYS[name][0]
            if name in ("PrintScreen", "Pause"):
                raise ManifestError(f"--keys: {name} has no QEMU key number here")
            codes.append(f"0x{(0x80 | make & 0xFF) if make > 0xFF else make:02x}")
        out.append(("sendkey " + "-".join(codes), None))
    return out


def run_qemu(scn: Scenario, workdir: str, timeout: float = 120) -> Outcome:
    """Run under qemu-system-i386.  Keys (`keys`) go through the monitor's sendkey once the
    guest has written its first byte to COM1 (QEMU's time is not virtual, so a scenario that
    takes keys must be ready for them when it first prints)."""
    cmd = qemu_command(scn, workdir)
    keys = scn.machine.get("keys")
    mon = os.path.join(workdir, "qemu-monitor.sock")
    if keys:
        cmd += ["-monitor", f"unix:{mon},server=on,wait=off"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    chunks = []
    first = threading.Event()

    def reader():
        while True:
            b = p.stdout.read1(4096)
            if not b:
                break
            chunks.append(b)
            first.set()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        if keys and first.wait(timeout):
            with socket.socket(socket.AF_UNIX) as sk:
                sk.connect(mon)
                sk.settimeout(0.05)
                for command, pause in qemu_sendkeys(keys):
                    if command:
                        sk.sendall(command.encode() + b"\n")
                        pause = 0.15                    # sendkey holds the keys 100 ms
                    end = time.monotonic() + pause
                    while time.monotonic() < end:
                        try:
                            sk.recv(4096)               # drain the monitor's echo
                        except (socket.timeout, BlockingIOError):
                            pass
        code = p.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except (subprocess.TimeoutExpired, OSError):
        p.kill()
        code = p.wait()
        code = -1 if code == 0 else code
    th.join(5)
    p.stderr.close()
    o = Outcome("qemu", code, b"".join(chunks), time.monotonic() - t0)
    check(scn, o)
    return o


def check(scn: Scenario, o: Outcome) -> None:
    want_exit = scn.exit if o.runner == "aero" else scn.qemu_exit
    if o.exit != want_exit:
        o.problems.append(f"exit status {o.exit}, expected {want_exit}")
    text = o.serial.decode("latin-1")
    if scn.serial is not None and text != scn.serial:
        o.problems.append(f"serial output differs:\n  got:      {text!r}\n"
                          f"  expected: {scn.serial!r}")
    if scn.serial_pattern is not None and not re.fullmatch(scn.serial_pattern, text, re.S):
        o.problems.append(f"serial output {text!r} does not match {scn.serial_pattern!r}")


# ----------------------------------------------------------------------------------------------
# Golden screens
# ----------------------------------------------------------------------------------------------
def golden_path(screen: str) -> str:
    return os.path.join(GOLDEN, f"{screen}.png")


def compare_frames(actual, expected, label: str = "screen") -> str | None:
    """None when pixel-equal, else a description of the difference."""
    if actual.shape != expected.shape:
        return (f"{label}: size {actual.shape[1]}x{actual.shape[0]}, golden is "
                f"{expected.shape[1]}x{expected.shape[0]}")
    diff = np.any(actual != expected, axis=-1)
    n = int(np.count_nonzero(diff))
    if not n:
        return None
    ys, xs = np.nonzero(diff)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    samples = ", ".join(f"({int(x)},{int(y)}) got {tuple(int(c) for c in actual[y, x])} "
                        f"want {tuple(int(c) for c in expected[y, x])}"
                        for y, x in list(zip(ys, xs))[:4])
    return (f"{label}: {n} of {diff.size} pixels differ, in x {x0}..{x1}, y {y0}..{y1}; "
            f"first: {samples}")


def check_screen(scn: Scenario, o: Outcome, regenerate: bool = False) -> str | None:
    """Compare the run's screenshot with the golden one (or rewrite it).  None when equal."""
    if not scn.screen:
        return None
    if o.screenshot is None:
        return f"{scn.name}: no screenshot was written"
    gold = golden_path(scn.screen)
    if regenerate:
        os.makedirs(GOLDEN, exist_ok=True)
        shutil.copyfile(o.screenshot, gold)
        return None
    if not os.path.exists(gold):
        return f"{scn.name}: golden {gold} missing (python -m aero.scenarios --regenerate)"
    msg = compare_frames(read_png(open(o.screenshot, "rb").read()),
                         read_png(open(gold, "rb").read()), f"{scn.name} vs {gold}")
    if msg:
        kept = os.path.join(tempfile.gettempdir(), f"aero-scenario-{scn.screen}-actual.png")
        shutil.copyfile(o.screenshot, kept)
        msg += f"; actual screen saved as {kept} (python -m aero.scenarios --regenerate " \
               f"{scn.name} accepts it)"
    return msg


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------
def rebuild(scn: Scenario, outdir: str) -> dict[str, tuple[bytes, bytes]]:
    """Assemble every source; return {bin name: (built, committed)}."""
    res = {}
    for src in scn.sources():
        out = os.path.join(outdir, f"{scn.name}-{src[:-4]}.bin")
        subprocess.run(["nasm", "-f", "bin", "-I", scn.directory + os.sep, "-o", out,
                        scn.path(src)], check=True, capture_output=True)
        binname = src[:-4] + ".bin"
        committed = _read(scn, binname) if os.path.exists(scn.path(binname)) else b""
        res[binname] = (open(out, "rb").read(), committed)
    return res


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m aero.scenarios",
                                description="run the scenarios under Aero (and QEMU)")
    p.add_argument("names", nargs="*", metavar="NAME", help="scenarios (default: all)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--qemu", action="store_true",
                   help="also run the qemu = true scenarios under qemu-system-i386")
    p.add_argument("--regenerate", action="store_true",
                   help="rewrite the golden screenshots from this run")
    p.add_argument("--bios", metavar="seabios|bochs|PATH",
                   help="run under this firmware instead of the Aero BIOS (no golden screens)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the serial output")
    args = p.parse_args(argv)
    try:
        scns = [load(n) for n in (args.names or names())]
    except ManifestError as e:
        print(f"aero.scenarios: {e}", file=sys.stderr)
        return 2
    if args.list:
        for s in scns:
            print(f"{s.name:10s} {'qemu ' if s.qemu else '     '}{s.description}")
        return 0
    if args.qemu and shutil.which(QEMU) is None:
        print(f"aero.scenarios: {QEMU} not found", file=sys.stderr)
        return 2
    failed = 0
    for s in scns:
        with tempfile.TemporaryDirectory(prefix=f"aero-scn-{s.name}-") as wd:
            if args.bios not in (None, "aero", "seabios") and "kernel" in s.machine:
                print(f"{s.name:10s} skipped: --kernel boots after the Aero BIOS or SeaBIOS only")
                continue
            results = [run_aero(s, wd, bios=args.bios)]
            screen = None if args.bios else check_screen(s, results[0], args.regenerate)
            if screen:
                results[0].problems.append(screen)
            if args.qemu and s.qemu:
                results.append(run_qemu(s, wd))
        for o in results:
            state = "ok" if o.ok else "FAIL"
            runner = o.runner if not (args.bios and o.runner == "aero") else f"aero+{args.bios}"
            print(f"{s.name:10s} {runner:5s} {state:4s} exit {o.exit:3d} {o.seconds:6.2f} s"
                  + (" (golden rewritten)" if args.regenerate and s.screen and o.runner == "aero"
                     else ""))
            if args.verbose:
                sys.stdout.write(o.serial.decode("latin-1"))
            for prob in o.problems:
                print(f"    {prob}")
            failed += not o.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
