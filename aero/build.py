"""Building a machine from its configuration: ``build_machine(MachineConfig) -> Machine``.

The one way machines are made (``aero run``, ``aero bench``, the scenarios, the TUI, the tests):
the hardware (``Machine``), the firmware (the Aero BIOS, a ROM image; a multiboot kernel is
loaded after the POST of the Aero BIOS or SeaBIOS, or started directly with no firmware), host
output sinks, and the input events the configuration asks for.  Every problem with the
configuration or its files is a ``ConfigError`` with one readable line, raised before anything
runs.
"""

from __future__ import annotations

import os
import sys

from . import statefile
from .config import FIRMWARE, HARDWARE_KEYS, ConfigError, MachineConfig, split_settings
from .firmware import linuxboot, multiboot
from .firmware.bios import install_aero_bios
from .inputs import schedule_keys, schedule_serial
from .machine import Machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The built-in demo's boot sector (source: scenarios/demo/demo.asm in the checkout).
DEMO = os.path.join(ROOT, "scenarios", "demo", "demo.bin")
FLOPPY_144 = 1474560


class FileSink:
    """A byte sink writing to stdout or a file (opened at the first byte, flushed per line).
    A host-side write error is reported once at ``close``; the guest never sees it."""

    def __init__(self, target: str):
        self.target = target
        self.fh = None
        self.broken = None

    def __call__(self, byte: int) -> None:
        if self.broken:
            return
        try:
            if self.fh is None:
                self.fh = sys.stdout.buffer if self.target == "stdio" else open(self.target, "wb")
            self.fh.write(bytes((byte & 0xFF,)))
            if byte == 10 or self.fh is sys.stdout.buffer:
                self.fh.flush()
        except OSError as e:
            self.broken = e

    def close(self) -> None:
        try:
            if self.fh is not None and self.fh is not sys.stdout.buffer:
                self.fh.close()
            elif self.fh is not None and not self.broken:
                self.fh.flush()
        except OSError as e:
            self.broken = self.broken or e
        if self.broken and not isinstance(self.broken, BrokenPipeError):
            print(f"aero: output to {self.target} failed: {self.broken}", file=sys.stderr)


def make_sink(spec, what: str):
    """None / "none" (nowhere), "stdio", a file path (its directory must exist), or a callable."""
    if spec is None or spec == "none":
        return None
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"{what}: expected stdio, none or a file path")
    if spec != "stdio":
        if os.path.isdir(spec):
            raise ConfigError(f"{what}: {spec} is a directory")
        d = os.path.dirname(os.path.abspath(spec))
        if not os.path.isdir(d):
            raise ConfigError(f"{what}: directory {d} does not exist")
        _probe_write(spec, what)
    return FileSink(spec)


def _probe_write(path: str, what: str) -> None:
    """Fail before the run, not after it, when ``path`` cannot be written (a directory named
    with a trailing slash, no permission, a read-only file system).  Nothing is truncated, a
    file the probe created is removed again; devices and FIFOs are not opened."""
    existed = os.path.lexists(path)
    if existed and not os.path.isfile(path):
        return
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise ConfigError(f"{what}: cannot write {path}: {e.strerror}") from None
    if not existed:
        try:
            os.remove(path)
        except OSError:
            pass


def read_file(path: str, what: str) -> bytes:
    if not os.path.exists(path):
        raise ConfigError(f"{what}: no such file: {path}")
    if os.path.isdir(path):
        raise ConfigError(f"{what}: {path} is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ConfigError(f"{what}: {path} is not a regular file (it would be replaced)")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path}: {e.strerror}") from None


def demo_floppy() -> bytes:
    """The built-in demo: its boot sector on a 1.44 MB floppy."""
    if not os.path.exists(DEMO):
        raise ConfigError(f"the built-in demo is missing ({DEMO}); install Aero from its "
                          "checkout with 'pip install -e .'")
    return read_file(DEMO, "the demo").ljust(FLOPPY_144, b"\0")


def firmware_images(cfg: MachineConfig) -> tuple[bytes | None, bytes | None]:
    """(BIOS ROM bytes, VGA BIOS bytes) for the configuration (None: the Aero BIOS / none)."""
    bios = cfg.bios
    vga_path = cfg.vgabios
    rom = None
    if bios is None or bios == "aero":
        rom = None
    elif isinstance(bios, (bytes, bytearray)):
        rom = bytes(bios)
    else:
        path = bios
        if bios in FIRMWARE:
            path, default_vga, package = FIRMWARE[bios]
            if not os.path.exists(path):
                raise ConfigError(f"--bios {bios}: {path} is missing (apt-get install {package})")
            if vga_path is None and os.path.exists(default_vga):
                vga_path = default_vga
        rom = read_file(path, "--bios")
        if len(rom) not in (64 << 10, 128 << 10, 256 << 10):
            raise ConfigError(f"--bios: {path} is {len(rom)} bytes; expected 64, 128 or 256 KiB")
    vga = None
    if vga_path:
        vga = read_file(vga_path, "--vgabios")
        if not 2048 <= len(vga) <= (256 << 10):
            raise ConfigError(f"--vgabios: {vga_path} is {len(vga)} bytes; expected 2 KiB to "
                              "256 KiB")
    return rom, vga


def build_machine(cfg: MachineConfig) -> Machine:
    """A machine as ``cfg`` describes it, at its reset vector (or at the kernel's entry)."""
    cfg.validate()
    rom, vga_rom = firmware_images(cfg)
    sinks = {name: make_sink(getattr(cfg, name), f"--{name.replace('_', '-')}")
             for name in ("serial", "debugcon", "firmware_log")}
    post = cfg.post_codes
    if post is True:
        post = _print_post_code
    elif not callable(post):
        post = None
    serial_input = cfg.serial_input
    if isinstance(serial_input, str):
        serial_input = read_file(serial_input, "--serial-input")
    bochs_layout = cfg.bios == "bochs"
    # --append is --cmdline; a Linux bzImage ("HdrS" at 0x202) gets --initrd as its initial
    # ramdisk, a multiboot kernel as one more module (QEMU's -initrd)
    cmdline = cfg.cmdline if cfg.append is None else cfg.append
    try:
        linux = bool(cfg.kernel) and linuxboot.kernel_kind(cfg.kernel) == "linux"
    except ValueError as e:
        raise ConfigError(str(e)) from None
    modules = list(cfg.module) + ([(cfg.initrd, None)] if cfg.initrd and not linux else [])
    if linux and (cfg.module or cfg.bios is None):
        raise ConfigError(f"--kernel: {cfg.kernel} is a Linux kernel: " + (
            "--module is for multiboot kernels (give its initrd with --initrd)" if cfg.module
            else "it boots after the POST of the Aero BIOS or SeaBIOS (not with no firmware)"))
    try:
        m = Machine(cfg, sinks=sinks, post_code=post,
                    vga_rom=None if bochs_layout else vga_rom,
                    fda_data=demo_floppy() if cfg.demo and not cfg.fda else None)
        if cfg.kernel and cfg.bios == "aero":
            # As QEMU -kernel: the BIOS's POST first (IVT, BDA, PIC at 08h/70h, PIT at
            # 18.2 Hz...), then the multiboot loader as its first boot entry, with the BIOS's
            # memory map.  The kernel is read and checked now, loaded at every POST.
            bios = install_aero_bios(m)
            m.devices.append(bios)
            if linux:
                plan = linuxboot.load(cfg.kernel, m.bus.ram_size, cmdline or "", cfg.initrd,
                                      memory_map=bios.memory_map())
                bios.boot_first = lambda: linuxboot.load_after_post(m.bus, plan)
            else:
                plan = multiboot.load(cfg.kernel, m.bus.ram_size, cmdline or "", modules,
                                      memory_map=bios.memory_map())
                bios.boot_first = lambda: multiboot.load_after_post(m.bus, plan)
        elif cfg.kernel and cfg.bios is None:
            # no firmware: the kernel starts at once, on a machine nothing has set up
            plan = multiboot.load(cfg.kernel, m.bus.ram_size, cmdline or "", modules)
            multiboot.apply(m.cpu, m.bus, plan)
        elif cfg.bios == "aero":
            m.devices.append(install_aero_bios(m))
        elif rom is not None:
            m.load_bios(rom)
            if bochs_layout and vga_rom:
                # The Bochs emulator's convention: the VGA BIOS sits in the option-ROM area at
                # C0000h and the VGA has no ROM BAR (rombios32 would copy a ROM BAR to C0000h
                # before enabling memory decoding, i.e. copy nothing over it).
                m.bus.map_rom(0xC0000, vga_rom)
        if cfg.kernel and cfg.bios == "seabios":
            # as QEMU: SeaBIOS runs the multiboot option ROM from fw_cfg as its first boot
            # entry; the ROM asks SeaBIOS for the memory map (the plan's is replaced)
            if linux:       # QEMU's linuxboot_dma.bin reads the kernel from fw_cfg
                plan = linuxboot.load(cfg.kernel, m.bus.ram_size, cmdline or "", cfg.initrd)
                linuxboot.add_to_fw_cfg(m.fw_cfg, plan)
            else:
                plan = multiboot.load(cfg.kernel, m.bus.ram_size, cmdline or "", modules)
                multiboot.add_to_fw_cfg(m.fw_cfg, plan)
        if cfg.kernel:
            for w in plan.warnings:
                print(f"aero: {cfg.kernel}: {w}", file=sys.stderr)
        if cfg.keys:
            schedule_keys(m, cfg.keys)
        if serial_input:
            schedule_serial(m, serial_input)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return m


def _writable_dir(path: str, what: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ConfigError(f"{what}: directory {d} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"{what}: {path} is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ConfigError(f"{what}: {path} is not a regular file (it would be replaced)")
    _probe_write(path, what)


def build_from_settings(settings: dict):
    """(machine, run settings) from settings as `aero run` takes them (``aero.config`` names):
    the machine built, or restored from ``load_state`` (rebuilt from the settings saved with
    it unless machine settings are given, which must then describe the same machine)."""
    cfg, run = split_settings(settings)
    for key in ("screenshot", "save_state"):
        if run.get(key):
            _writable_dir(run[key], f"--{key.replace('_', '-')}")
    if run.get("max_instructions", 0) < 0:
        raise ConfigError("--max-instructions must not be negative")
    if "at_instruction" in run and "save_state" not in run:
        raise ConfigError("--at-instruction needs --save-state")
    state = None
    if run.get("load_state"):
        header, state = statefile.load(run["load_state"])
        if not any(k in settings and k != "demo" for k in HARDWARE_KEYS):
            saved = {k: v for k, v in header.get("config", {}).items() if k in HARDWARE_KEYS}
            host = {k: v for k, v in cfg.__dict__.items()
                    if k in ("serial", "debugcon", "firmware_log", "post_codes")}
            cfg = MachineConfig(**saved, **host)
        m = build_machine(cfg)
        try:
            statefile.check_identity(header["machine"], m)
            m.set_state(state)
        except ValueError as e:
            m.close()
            raise ConfigError(f"--load-state: {run['load_state']}: {e}") from None
    else:
        m = build_machine(cfg)
    return m, run


def _print_post_code(v: int) -> None:
    print(f"POST {v:02x}", file=sys.stderr)
