"""`aero run`: build a machine from the command line, run it, map the outcome to an exit status.

Bad input (a missing or unreadable file, a wrong size, a malformed value) gets one line on
stderr and exit status 2 before anything runs.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys

from .machine import Machine, MachineConfig


class _Sink:
    """A byte sink writing to stdout or a file (opened lazily, flushed per line)."""

    def __init__(self, target: str):
        self.target = target
        self.fh = None
        self.broken = None          # a host-side write error: the guest never sees it

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


class BadInput(Exception):
    pass


def _sink(value, what):
    if value is None or value == "none":
        return None
    if value != "stdio":
        d = os.path.dirname(os.path.abspath(value))
        if not os.path.isdir(d):
            raise BadInput(f"{what}: directory {d} does not exist")
    return _Sink(value)


def _read_image(path, what):
    if not os.path.exists(path):
        raise BadInput(f"{what}: no such file: {path}")
    if os.path.isdir(path):
        raise BadInput(f"{what}: {path} is a directory")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"{what}: cannot read {path}: {e.strerror}")


# settings a --config file may hold: option name -> type
CONFIG_KEYS = {
    "bios": str, "vgabios": str, "fda": str, "fdb": str, "hda": str, "hdb": str, "cdrom": str,
    "boot": str, "memory": int, "kernel": str, "cmdline": str, "module": list, "serial": str,
    "serial_input": str, "keys": str, "debugcon": str, "firmware_log": str, "post_codes": bool,
    "ips": int, "rtc": str, "realtime": bool, "no_reboot": bool, "max_instructions": int,
    "timeout": float, "screenshot": str, "headless": bool, "writable": bool, "state_hash": bool,
}
DEFAULTS = {"memory": 32, "serial": "stdio"}

# --bios NAME: (image, VGA BIOS, Debian package providing them)
FIRMWARE = {
    "seabios": ("/usr/share/seabios/bios.bin", "/usr/share/seabios/vgabios-stdvga.bin",
                "seabios"),
    "bochs": ("/usr/share/bochs/BIOS-bochs-latest", "/usr/share/vgabios/vgabios-stdvga.bin",
              "bochsbios vgabios"),
}


def apply_config(args) -> None:
    """Fill options not given on the command line from --config, then the defaults.  Relative
    paths in the file are relative to the file."""
    if getattr(args, "config", None):
        import tomllib
        raw = _read_image(args.config, "--config")
        try:
            cfg = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise BadInput(f"--config: {args.config}: {e}")
        base = os.path.dirname(os.path.abspath(args.config))
        for key, value in cfg.items():
            name = key.replace("-", "_")
            typ = CONFIG_KEYS.get(name)
            if typ is None:
                raise BadInput(f"--config: {args.config}: unknown setting {key!r}")
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                raise BadInput(f"--config: {args.config}: {key} must be {typ.__name__}")
            if name in ("bios", "fda", "fdb", "hda", "hdb", "cdrom", "kernel", "serial_input",
                        "screenshot") and value not in ("aero", "seabios", "bochs"):
                value = os.path.join(base, value)
            if name == "module":
                value = [os.path.join(base, m) for m in value]
            current = getattr(args, name, None)
            if current is None or current is False:
                setattr(args, name, value)
    for name, value in DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


# The built-in demo's boot sector (source: scenarios/demo/demo.asm in the checkout).
DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios",
                    "demo", "demo.bin")


def _demo_floppy() -> str:
    """The built-in demo: its boot sector on a 1.44 MB floppy image in a temporary file."""
    import tempfile
    if not os.path.exists(DEMO):
        raise BadInput(f"the built-in demo is missing ({DEMO}); install Aero from its checkout "
                       "with 'pip install -e .'")
    boot = open(DEMO, "rb").read()
    fd, path = tempfile.mkstemp(prefix="aero-demo-", suffix=".img")
    with os.fdopen(fd, "wb") as f:
        f.write(boot.ljust(1474560, b"\0"))
    return path


def build(args) -> tuple[Machine, list]:
    apply_config(args)
    guest_given = any(getattr(args, n, None) for n in ("bios", "kernel", "fda", "fdb", "hda",
                                                        "hdb", "cdrom"))
    args.demo_image = None
    if not guest_given:                     # `aero run` alone: the built-in demo
        args.demo_image = args.fda = _demo_floppy()
        args.boot = args.boot or "a"
    if args.bios and args.kernel:
        raise BadInput("--kernel starts the kernel directly: give --kernel or --bios, not both")
    if not args.bios and not args.kernel:
        args.bios = "aero"
    aero_bios = args.bios == "aero"
    if aero_bios:
        args.bios = None
    vga_rom = None
    bochs_layout = args.bios == "bochs"
    if args.bios in FIRMWARE:
        bios_path, vga_path, package = FIRMWARE[args.bios]
        if not os.path.exists(bios_path):
            raise BadInput(f"--bios {args.bios}: {bios_path} is missing (apt-get install "
                           f"{package})")
        args.bios = bios_path
        if args.vgabios is None and os.path.exists(vga_path):
            args.vgabios = vga_path
    if args.vgabios:
        vga_rom = _read_image(args.vgabios, "--vgabios")
        if not 2048 <= len(vga_rom) <= (256 << 10):
            raise BadInput(f"--vgabios: {args.vgabios} is {len(vga_rom)} bytes; expected "
                           "2 KiB to 256 KiB")
    if (args.cmdline is not None or args.module) and not args.kernel:
        raise BadInput("--cmdline and --module need --kernel")
    data = None
    if aero_bios:
        pass
    elif args.bios:
        data = _read_image(args.bios, "--bios")
        if len(data) not in (64 << 10, 128 << 10, 256 << 10):
            raise BadInput(f"--bios: {args.bios} is {len(data)} bytes; expected 64, 128 or "
                           "256 KiB")
    rtc = MachineConfig.rtc
    if args.rtc:
        try:
            rtc = _dt.datetime.fromisoformat(args.rtc)
        except ValueError:
            raise BadInput(f"--rtc: not an ISO 8601 date/time: {args.rtc!r}")
    if args.ips is not None and args.ips <= 0:
        raise BadInput("--ips must be positive")
    if args.max_instructions is not None and args.max_instructions < 0:
        raise BadInput("--max-instructions must not be negative")
    sinks = [_sink(args.serial, "--serial"), _sink(args.debugcon, "--debugcon"),
             _sink(args.firmware_log, "--firmware-log")]
    post_cb = (lambda v: print(f"POST {v:02x}", file=sys.stderr)) if args.post_codes else None
    boot = args.boot or "cad"
    if not boot or any(c not in "acd" for c in boot):
        raise BadInput(f"--boot: {args.boot!r}: use the letters a (floppy), c (hard disk), "
                       "d (CD-ROM)")
    cfg = MachineConfig(memory_mib=args.memory, rtc=rtc, no_reboot=args.no_reboot,
                        serial_sinks=[sinks[0], None, None, None], debugcon_sink=sinks[1],
                        firmware_log_sink=sinks[2], post_code_cb=post_cb,
                        fda=args.fda, fdb=args.fdb, hda=args.hda, hdb=args.hdb,
                        cdrom=args.cdrom, boot=boot, writable=args.writable,
                        vga_rom=None if bochs_layout else vga_rom)
    if args.ips:
        cfg.ips = args.ips
    try:
        m = Machine(cfg)
        if aero_bios:
            from .firmware.bios import install_aero_bios
            m.devices.append(install_aero_bios(m))
        elif data is not None:
            m.load_bios(data)
            if bochs_layout and vga_rom:
                # The Bochs emulator's convention: the VGA BIOS sits in the option-ROM area at
                # C0000h and the VGA has no ROM BAR (rombios32 would copy a ROM BAR to C0000h
                # before enabling memory decoding, i.e. copy nothing over it).
                m.bus.map_rom(0xC0000, vga_rom)
        else:
            from .firmware import multiboot
            plan = multiboot.load(args.kernel, m.bus.ram_size, args.cmdline or "",
                                  args.module or [])
            multiboot.apply(m.cpu, m.bus, plan)
            for w in plan.warnings:
                print(f"aero: {args.kernel}: {w}", file=sys.stderr)
    except ValueError as e:
        raise BadInput(str(e))
    if args.keys:
        from .inputs import schedule_keys
        try:
            schedule_keys(m, args.keys)
        except ValueError as e:
            raise BadInput(str(e))
    if args.serial_input:
        from .inputs import schedule_serial
        schedule_serial(m, _read_image(args.serial_input, "--serial-input"))
    if args.screenshot:
        d = os.path.dirname(os.path.abspath(args.screenshot))
        if not os.path.isdir(d):
            raise BadInput(f"--screenshot: directory {d} does not exist")
    return m, [s for s in sinks if s is not None]


def run_command(args) -> int:
    try:
        m, sinks = build(args)
    except BadInput as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    finally:
        if getattr(args, "demo_image", None):
            os.unlink(args.demo_image)          # the image is open in the machine already
    try:
        res = m.run(max_instructions=args.max_instructions, timeout=args.timeout,
                    realtime=args.realtime)
    except KeyboardInterrupt:
        print("aero: interrupted", file=sys.stderr)
        return 130
    finally:
        for s in sinks:
            s.close()
    if res.status == "error":
        print(res.detail, file=sys.stderr)
    elif res.status in ("halted", "shutdown", "timeout"):
        print(f"aero: {res.status}{': ' + res.detail if res.detail else ''} "
              f"after {res.icount} instructions", file=sys.stderr)
    if args.screenshot:
        from .display.png import write_png
        from .display.render import render
        try:
            write_png(args.screenshot, render(m.vga))
        except OSError as e:
            print(f"aero: --screenshot: {e}", file=sys.stderr)
    if args.state_hash:
        print(f"state-hash icount={m.cpu.icount} sha256={m.state_hash()}", file=sys.stderr)
    return res.exit_code
