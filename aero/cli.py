"""The `aero` command."""

from __future__ import annotations

import argparse
import os
import sys

from .config import CONFIG_KEYS, ConfigError, read_toml

DEFAULT_SINGLESTEP = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "testdata",
                                  "singlestep-80286")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):                      # one clear line, exit status 2
        print(f"aero: {message}", file=sys.stderr)
        sys.exit(2)


def add_machine_options(r) -> None:
    """The options that describe a machine (`aero run`, `aero debug`, `aero tui`)."""
    r.add_argument("--bios", metavar="aero|seabios|bochs|PATH",
                   help="firmware: the built-in Aero BIOS (default), Debian's SeaBIOS or Bochs "
                   "BIOS, or an image (64/128/256 KiB) mapped at the top of 4 GiB with its last "
                   "128 KiB below 1 MiB")
    r.add_argument("--vgabios", metavar="PATH", help="VGA BIOS served through the VGA's ROM BAR")
    r.add_argument("--kernel", metavar="ELF", help="multiboot kernel (ELF32 or a.out kludge), "
                   "started directly in protected mode")
    r.add_argument("--cmdline", metavar="STR", help="the kernel's command line")
    r.add_argument("--module", action="append", metavar="FILE[,ARGS]",
                   help="a multiboot module (repeatable)")
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
    r.add_argument("--rtc", metavar="ISO8601", help="RTC start time (default 2026-01-01T12:00:00)")
    r.add_argument("--no-reboot", action="store_true", help="stop on triple fault (exit 6)")
    r.add_argument("--serial", metavar="stdio|FILE|none", help="COM1 output (default stdio)")
    r.add_argument("--serial-input", metavar="FILE", help="bytes fed into COM1")
    r.add_argument("--keys", metavar="TEXT", help="type TEXT on the PS/2 keyboard: characters, "
                   "{Enter} {F1} {Ctrl+c} ..., {wait 500ms}")
    r.add_argument("--debugcon", metavar="stdio|FILE", help="port 0xE9 output")
    r.add_argument("--firmware-log", metavar="stdio|FILE", help="port 0x402 output")
    r.add_argument("--post-codes", action="store_true", help="print port 0x80 POST codes")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="aero", description="Aero Workbench: an x86 PC emulator built to be looked into")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    b = sub.add_parser("bench", help="speed figures: guest MIPS, hook overheads, stepping, "
                       "snapshots, boots")
    b.add_argument("--seconds", type=float, default=2.0, help="time per kernel (default 2)")
    b.add_argument("--kernel", action="append", help="run only these kernels")
    b.add_argument("--boot", action="store_true",
                   help="time whole boots instead: SeaBIOS and the Aero BIOS booting a floppy")
    b.add_argument("--machine", action="store_true",
                   help="Machine.step rate and snapshot/restore times instead")
    b.add_argument("--callgrind", action="store_true",
                   help="host instructions per guest instruction under valgrind instead")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON")

    r = sub.add_parser("run", help="run a PC: the built-in demo, a floppy, a disk, a CD, a "
                       "multiboot kernel or a firmware image")
    add_machine_options(r)
    r.add_argument("--max-instructions", type=int, metavar="N", help="stop after N instructions")
    r.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit (exit 4)")
    r.add_argument("--realtime", action="store_true", help="pace virtual time to the wall clock")
    r.add_argument("--screenshot", metavar="PNG", help="save the screen when the run ends")
    r.add_argument("--headless", action="store_true",
                   help="no display window (without a display the run is headless anyway, "
                   "with a one-line notice)")
    r.add_argument("--state-hash", action="store_true",
                   help="print 'state-hash icount=N sha256=HEX' to stderr at the end")
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

    d = sub.add_parser("debug", help="the debugger as a line-oriented console (gdb/Bochs-like "
                       "commands; 'help' lists them)")
    add_machine_options(d)
    d.add_argument("-x", "--command", metavar="SCRIPT", action="append", dest="scripts",
                   help="run the commands in SCRIPT first (repeatable)")
    d.add_argument("--eval", "-ex", metavar="COMMAND", action="append", dest="commands",
                   help="run COMMAND first (after the scripts; repeatable)")
    d.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                   help="load symbols: a NASM map file or an ELF file (repeatable)")
    d.add_argument("--batch", action="store_true",
                   help="exit after the scripts and commands instead of reading standard input")
    d.add_argument("--load-state", metavar="FILE", help="start from a saved state")

    c = sub.add_parser("conformance", help="check the CPU against external references")
    csub = c.add_subparsers(dest="suite", parser_class=_Parser)
    s = csub.add_parser("singlestep", help="hardware-recorded 80286 real-mode vectors")
    s.add_argument("directory", help="the singlestep-80286 directory")
    s.add_argument("--limit", type=int, help="tests per form (default: all)")
    s.add_argument("--form", action="append", help="only these forms (e.g. 01, F6.6)")
    s.add_argument("-v", "--verbose", action="store_true")
    u = csub.add_parser("unicorn", help="differential testing against unicorn")
    u.add_argument("--count", type=int, default=1000)
    u.add_argument("--seed", type=int, default=1)
    u.add_argument("--mode", choices=("both", "32", "16"), default="both")
    u.add_argument("-v", "--verbose", action="store_true")
    k = csub.add_parser("capstone", help="decoder lengths and mnemonics against capstone")
    k.add_argument("--count", type=int, default=200000)
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("-v", "--verbose", action="store_true")
    return p


def settings_from_args(args) -> dict:
    """The machine and run settings the options give (``aero.config`` names): a --config
    file's, with the command line's over them.  No argparse object goes further than here."""
    settings = read_toml(args.config) if getattr(args, "config", None) else {}
    for name in CONFIG_KEYS:
        v = getattr(args, name, None)
        if v is not None and v is not False:
            settings[name] = v
    return settings


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            from .runcmd import run_command
            return run_command(settings_from_args(args))
        if args.cmd == "debug":
            from .debug.console import main as debug_main
            return debug_main(settings_from_args(args), scripts=args.scripts or [],
                              commands=args.commands or [], symbols=args.symbols or [],
                              batch=args.batch)
        if args.cmd == "bench":
            from .bench import main as bench_main
            return bench_main(seconds=args.seconds, kernels=args.kernel, boot=args.boot,
                              machine=args.machine, callgrind=args.callgrind,
                              json_path=args.json)
        if args.cmd == "conformance":
            if args.suite == "singlestep":
                if not os.path.isdir(args.directory):
                    raise UsageError(f"no such directory: {args.directory}")
                from .conformance import singlestep
                ok = singlestep.run(args.directory, limit=args.limit, forms=args.form,
                                    verbose=args.verbose)
                return 0 if ok else 1
            if args.suite == "unicorn":
                from .conformance import unicorn_diff
                return 0 if unicorn_diff.run(args.count, args.seed, args.mode, args.verbose) else 1
            if args.suite == "capstone":
                from .conformance import capstone_cmp
                return 0 if capstone_cmp.run(args.count, args.seed, args.verbose) else 1
            p.parse_args(["conformance", "--help"])
        p.print_help()
        return 2
    except (UsageError, ConfigError) as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aero: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
