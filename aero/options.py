"""Command-line options shared by the commands (`aero run`, `record`, `debug`, `tui`) and the
settings they give (``aero.config`` names).  Below the commands, so that front-ends such as
``python -m aero.tui`` use them without importing ``aero.cli``."""

from __future__ import annotations

from .config import CONFIG_KEYS, read_toml


def port(text: str) -> int:
    """An I/O port number, decimal or 0x-hex, 0-0xFFFF (argparse reports a ValueError)."""
    v = int(text, 0)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(text)
    return v


def add_machine_options(r) -> None:
    """The options that describe a machine (`aero run`, `aero debug`, `aero tui`)."""
    r.add_argument("--bios", metavar="aero|seabios|bochs|PATH",
                   help="firmware: the built-in Aero BIOS (default), Debian's SeaBIOS or Bochs "
                   "BIOS, or an image (64/128/256 KiB) mapped at the top of 4 GiB with its last "
                   "128 KiB below 1 MiB")
    r.add_argument("--vgabios", metavar="PATH", help="VGA BIOS served through the VGA's ROM BAR")
    r.add_argument("--kernel", metavar="FILE", help="a multiboot kernel (ELF32 or a.out "
                   "kludge) or a Linux bzImage, booted after the BIOS's POST")
    r.add_argument("--cmdline", metavar="STR", help="the kernel's command line (as --append)")
    r.add_argument("--module", action="append", metavar="FILE[,ARGS]",
                   help="a multiboot module (repeatable)")
    r.add_argument("--initrd", metavar="FILE", help="a Linux kernel's initial ramdisk (for a "
                   "multiboot kernel: one more module)")
    r.add_argument("--append", metavar="STR", help="the kernel's command line (QEMU's name; "
                   "--cmdline is its alias)")
    r.add_argument("--config", metavar="FILE.toml", help="settings as TOML (the option names, "
                   "with - or _); options given on the command line override it")
    r.add_argument("--memory", type=int, metavar="MiB", help="RAM (default 32)")
    r.add_argument("--fda", metavar="IMG", help="floppy image in drive A: (160K-2.88M)")
    r.add_argument("--fdb", metavar="IMG", help="floppy image in drive B:")
    r.add_argument("--hda", metavar="IMG", help="raw hard disk image, primary master")
    r.add_argument("--hdb", metavar="IMG", help="raw hard disk image, primary slave")
    r.add_argument("--cdrom", metavar="ISO", help="CD-ROM image, secondary master")
    r.add_argument("--boot", metavar="ORDER", help="boot order as QEMU letters (default cad)")
    r.add_argument("--writable", action="store_true",
                   help="write guest disk changes to the image files (default: an overlay)")
    r.add_argument("--ips", type=int, default=None, metavar="N",
                   help="guest instructions per virtual second (default 20000000)")
    r.add_argument("--jit", choices=("on", "off"), default=None,
                   help="translate hot guest code to Python (default on; the machine does "
                   "exactly the same either way)")
    r.add_argument("--jit-threshold", type=int, default=None, metavar="N",
                   help="translate a block after it ran N times (default 800)")
    r.add_argument("--rtc", metavar="ISO8601", help="RTC start time (default 2026-01-01T12:00:00)")
    r.add_argument("--no-reboot", action="store_true",
                   help="end the run instead of resetting the machine, on a triple fault or a "
                   "reset the guest asks for (ports 64h, 92h, CF9h): exit 6")
    r.add_argument("--apic", action="store_true",
                   help="the APIC generation: a local APIC, an I/O APIC, the ACPI MADT and an "
                   "MP table (default: the 8259A-only PC)")
    r.add_argument("--serial", metavar="stdio|FILE|none", help="COM1 output (default stdio)")
    r.add_argument("--serial-input", metavar="FILE", help="bytes fed into COM1")
    r.add_argument("--keys", metavar="TEXT", help="type TEXT on the PS/2 keyboard: characters, "
                   "{Enter} {F1} {Ctrl+c} ..., {wait 500ms}")
    r.add_argument("--debugcon", metavar="stdio|FILE|none", help="port 0xE9 output")
    r.add_argument("--firmware-log", metavar="stdio|FILE|none", help="port 0x402 output")
    r.add_argument("--post-codes", action="store_true", help="print port 0x80 POST codes")
    r.add_argument("--debug-exit-port", type=port, metavar="PORT",
                   help="the isa-debug-exit port (default 0x501, SeaBIOS's; kvm-unit-tests use "
                   "0xf4): writing v there ends the run with exit status (v<<1)|1")


def add_run_options(r) -> None:
    """How a run goes and ends (`aero run`, `aero record`)."""
    r.add_argument("--max-instructions", type=int, metavar="N",
                   help="stop when N instructions have retired since power-on (exit 0; the "
                   "count runs on across guest resets)")
    r.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit (exit 4)")
    r.add_argument("--realtime", action="store_true", help="pace virtual time to the wall clock")
    r.add_argument("--screenshot", metavar="PNG", help="save the screen when the run ends")
    r.add_argument("--headless", action="store_true",
                   help="no display window (without a display the run is headless anyway, "
                   "with a one-line notice)")
    r.add_argument("--jit-stats", action="store_true",
                   help="print what the JIT did at the end: units, compiles, invalidations, "
                   "the share of instructions run translated")
    r.add_argument("--state-hash", action="store_true",
                   help="print 'state-hash icount=N sha256=HEX' to stderr at the end (N: "
                   "instructions since power-on)")
    r.add_argument("--save-state", metavar="FILE",
                   help="save the machine's state to FILE when the run ends (or at "
                   "--at-instruction N, then go on)")
    r.add_argument("--at-instruction", type=int, metavar="N",
                   help="with --save-state: save when the instruction count reaches N")
    r.add_argument("--load-state", metavar="FILE",
                   help="start from a saved state (the machine is rebuilt from the settings "
                   "saved with it unless machine options are given, which must match)")
    r.add_argument("--gdb", metavar="[HOST:]PORT",
                   help="serve the GDB remote protocol (127.0.0.1 unless HOST is given); the "
                   "machine waits for gdb before its first instruction")
    r.add_argument("--gdb-nowait", action="store_true",
                   help="with --gdb: run at once; gdb can attach later")


def settings_from_args(args) -> dict:
    """The machine and run settings the options give (``aero.config`` names): a --config
    file's, with the command line's over them.  No argparse object goes further than here."""
    settings = read_toml(args.config) if getattr(args, "config", None) else {}
    for name in CONFIG_KEYS:
        v = getattr(args, name, None)
        if v is not None and v is not False:
            settings[name] = v
    return settings
