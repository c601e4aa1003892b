"""Machine configuration: everything a machine is built from, in one value.

``aero run`` options, a ``--config`` TOML file, a scenario manifest's ``[machine]`` table, the
benchmark and the TUI all end up as a ``MachineConfig``; ``aero.build.build_machine`` turns one
into a running ``Machine``.  Settings are named as the ``aero run`` options are (``--no-reboot``
is ``no_reboot``; in TOML ``no-reboot`` works too).

Settings of a run rather than of the machine (``RUN_KEYS``: limits, pacing, what to print or
save at the end) travel beside it as a plain dict.

Every problem is a ``ConfigError`` (a ``ValueError``) with one readable line.
"""

from __future__ import annotations

import datetime as _dt
import os
import tomllib
from dataclasses import dataclass, field, fields

DEFAULT_IPS = 20_000_000
JIT_THRESHOLD = 800          # runs of a block before the JIT translates it (README, "The JIT")
DEFAULT_RTC = _dt.datetime(2026, 1, 1, 12, 0, 0)
MAX_MEMORY_MIB = 3584

# --bios NAME: (image, VGA BIOS, Debian package providing them)
FIRMWARE = {
    "seabios": ("/usr/share/seabios/bios.bin", "/usr/share/seabios/vgabios-stdvga.bin",
                "seabios"),
    "bochs": ("/usr/share/bochs/BIOS-bochs-latest", "/usr/share/vgabios/vgabios-stdvga.bin",
              "bochsbios vgabios"),
}


class ConfigError(ValueError):
    """A bad setting or input file: one line, fit for `aero: ...` and exit status 2."""


@dataclass
class MachineConfig:
    # firmware: "aero" (the built-in HLE BIOS), "seabios", "bochs", a ROM image path, the ROM
    # bytes, or None (no firmware: the caller maps a ROM with Machine.load_bios)
    bios: str | bytes | None = "aero"
    vgabios: str | None = None          # a VGA BIOS image (default: the firmware's own)
    # a multiboot kernel, booted after the firmware's POST (the Aero BIOS or SeaBIOS) before
    # any drive (with bios None: started at once, on a machine no firmware has set up)
    kernel: str | None = None
    cmdline: str | None = None
    module: list = field(default_factory=list)      # "FILE[,ARGS]" each
    # a Linux kernel (bzImage, aero.firmware.linuxboot): its initial ramdisk, and its command
    # line (``append``: QEMU's -append; an alias of ``cmdline``, give one of the two)
    initrd: str | None = None
    append: str | None = None
    # drives: image paths
    fda: str | None = None
    fdb: str | None = None
    hda: str | None = None
    hdb: str | None = None
    cdrom: str | None = None
    boot: str = "cad"                   # boot order, QEMU letters
    writable: bool = False              # guest disk writes reach the image files
    demo: bool = False                  # the built-in demo floppy in drive A:
    # the machine
    memory: int = 32                    # MiB
    ips: int = DEFAULT_IPS              # guest instructions per virtual second
    rtc: _dt.datetime = DEFAULT_RTC
    no_reboot: bool = False             # a triple fault ends the run instead of resetting
    # the APIC generation (aero/devices/apic.py, ioapic.py): a local APIC, an I/O APIC and an
    # ACPI MADT; off by default (the 8259A-only PC)
    apic: bool = False
    debug_exit_port: int = 0x501
    # host side: where output goes (None: nowhere, "stdio", a file path, or a callable(byte))
    serial: object = None               # COM1
    debugcon: object = None             # port 0xE9
    firmware_log: object = None         # port 0x402
    post_codes: object = False          # True: "POST xx" lines on stderr, or a callable(value)
    # input, delivered through the machine's input queue at virtual times
    keys: str | None = None             # --keys syntax (aero.inputs)
    serial_input: str | bytes | None = None     # a file path, or the bytes, fed into COM1
    # the JIT tier (aero.jit): "on" or "off" (True/False accepted), and after how many runs of
    # a block it is translated; neither changes what the machine does, only how fast
    jit: str | bool = "on"
    jit_threshold: int = JIT_THRESHOLD

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if isinstance(self.rtc, str):
            try:
                self.rtc = _dt.datetime.fromisoformat(self.rtc)
            except ValueError:
                raise ConfigError(f"--rtc: not an ISO 8601 date/time: {self.rtc!r}") from None
        if not isinstance(self.memory, int) or not 2 <= self.memory <= MAX_MEMORY_MIB:
            raise ConfigError(f"--memory must be between 2 and {MAX_MEMORY_MIB} MiB "
                              f"(got {self.memory})")
        if not isinstance(self.ips, int) or self.ips <= 0:
            raise ConfigError("--ips must be positive")
        if self.jit in (True, False):
            self.jit = "on" if self.jit else "off"
        if self.jit not in ("on", "off"):
            raise ConfigError(f"--jit: {self.jit!r}: use on or off")
        if not isinstance(self.jit_threshold, int) or isinstance(self.jit_threshold, bool) or \
                self.jit_threshold < 0:
            raise ConfigError("--jit-threshold must be 0 or more")
        if not self.boot or any(c not in "acd" for c in self.boot):
            raise ConfigError(f"--boot: {self.boot!r}: use the letters a (floppy), c (hard "
                              "disk), d (CD-ROM)")
        if self.kernel and self.bios not in (None, "aero", "seabios"):
            # the multiboot loader is the Aero BIOS's first boot entry, or an option ROM that
            # SeaBIOS runs from fw_cfg (as QEMU's); other firmware would boot its own way
            name = self.bios if isinstance(self.bios, str) else "ROM"
            raise ConfigError(f"--kernel boots after the POST of the Aero BIOS or SeaBIOS; it "
                              f"cannot be used with --bios {name}")
        if self.apic and self.bios == "bochs":
            # the Bochs BIOS software-enables the local APIC but leaves LINT0 masked (no
            # virtual wire), so no 8259A interrupt ever reaches the CPU: its POST waits forever
            # for a timer tick (qemu-system-i386 7.2 hangs the same way)
            raise ConfigError("--apic cannot be used with --bios bochs: the Bochs BIOS leaves "
                              "the local APIC's LINT0 masked and hangs waiting for the timer")
        if (self.cmdline is not None or self.module) and not self.kernel:
            raise ConfigError("--cmdline and --module need --kernel")
        if (self.initrd is not None or self.append is not None) and not self.kernel:
            raise ConfigError("--initrd and --append need --kernel")
        if self.append is not None and self.cmdline is not None:
            raise ConfigError("--append and --cmdline both give the kernel's command line: "
                              "give one")

    # -- identity ----------------------------------------------------------------------------------
    @property
    def firmware_name(self) -> str:
        b = self.bios
        if self.kernel:
            return "kernel"
        if b is None:
            return "none"
        if isinstance(b, (bytes, bytearray)):
            return "rom"
        return b if b in ("aero", "seabios", "bochs") else "rom"

    def settings(self) -> dict:
        """The configuration as plain settings (what a TOML file would hold), paths absolute;
        callables and bytes are left out."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if callable(v) or isinstance(v, (bytes, bytearray)):
                continue
            if isinstance(v, _dt.datetime):
                v = v.isoformat()
            elif f.name in PATH_KEYS and isinstance(v, str) and v not in FIRMWARE and \
                    v != "aero":
                v = os.path.abspath(v)
            elif f.name == "module":
                v = [os.path.abspath(m.split(",", 1)[0]) + m[len(m.split(",", 1)[0]):]
                     for m in v]
            out[f.name] = v
        return out

    def hardware(self) -> dict:
        """The settings that define the machine itself (``HARDWARE_KEYS``): what a saved state
        records to rebuild its machine."""
        st = self.settings()
        return {k: st[k] for k in HARDWARE_KEYS if k in st}


# Settings a --config file (or a scenario's [machine] table) may hold: name -> type.
MACHINE_KEYS = {
    "bios": str, "vgabios": str, "fda": str, "fdb": str, "hda": str, "hdb": str, "cdrom": str,
    "boot": str, "memory": int, "kernel": str, "cmdline": str, "module": list, "initrd": str,
    "append": str, "serial": str,
    "serial_input": str, "keys": str, "debugcon": str, "firmware_log": str, "post_codes": bool,
    "ips": int, "rtc": str, "no_reboot": bool, "writable": bool, "jit": str,
    "jit_threshold": int, "apic": bool, "debug_exit_port": int,
}
RUN_KEYS = {
    "realtime": bool, "max_instructions": int, "timeout": float, "screenshot": str,
    "headless": bool, "state_hash": bool, "jit_stats": bool, "save_state": str,
    "at_instruction": int,
    "load_state": str, "gdb": str, "gdb_nowait": bool,
}
CONFIG_KEYS = {**MACHINE_KEYS, **RUN_KEYS}
PATH_KEYS = ("bios", "vgabios", "fda", "fdb", "hda", "hdb", "cdrom", "kernel", "initrd",
             "serial_input", "screenshot", "save_state", "load_state")
# what defines the machine a saved state belongs to (host output and inputs are not: pending
# input is part of the state itself)
HARDWARE_KEYS = ("bios", "vgabios", "kernel", "cmdline", "module", "initrd", "append", "fda",
                 "fdb", "hda", "hdb", "cdrom", "boot", "writable", "demo", "memory", "ips", "rtc",
                 "no_reboot", "debug_exit_port", "apic")


def check_settings(raw: dict, where: str, base_dir: str | None = None) -> dict:
    """Check the names and types of settings read from a file (TOML); return them with names
    normalised (``-`` to ``_``) and, given ``base_dir``, relative paths made relative to it."""
    out = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        typ = CONFIG_KEYS.get(name)
        if typ is None:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} must be {typ.__name__}")
        if base_dir is not None:
            if name in PATH_KEYS and value not in ("aero", "seabios", "bochs"):
                value = os.path.join(base_dir, value)
            elif name == "module":
                value = [os.path.join(base_dir, m) for m in value]
        out[name] = value
    return out


def read_toml(path: str) -> dict:
    """The settings in a --config file (paths relative to the file), checked."""
    if not os.path.exists(path):
        raise ConfigError(f"--config: no such file: {path}")
    if os.path.isdir(path):
        raise ConfigError(f"--config: {path} is a directory")
    try:
        with open(path, "rb") as f:
            raw = tomllib.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"--config: {path}: {e}") from None
    return check_settings(raw, f"--config: {path}", os.path.dirname(os.path.abspath(path)))


def split_settings(settings: dict) -> tuple[MachineConfig, dict]:
    """Settings (names as MACHINE_KEYS / RUN_KEYS; None means not given) -> the machine
    configuration and the run settings.  With no firmware, kernel or drive given, the machine
    boots the built-in demo."""
    given = {k: v for k, v in settings.items() if v is not None and v is not False}
    run = {k: given.pop(k) for k in list(given) if k in RUN_KEYS}
    unknown = [k for k in given if k not in MACHINE_KEYS]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    if not any(given.get(k) for k in ("bios", "kernel", "fda", "fdb", "hda", "hdb", "cdrom")):
        given["demo"] = True
        given.setdefault("boot", "a")
    if "module" in given:
        given["module"] = list(given["module"])
    return MachineConfig(**given), run
