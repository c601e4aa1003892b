"""The `aero` command."""

from __future__ import annotations

import argparse
import os
import sys

from .config import ConfigError
from .options import add_machine_options, add_run_options, settings_from_args

DEFAULT_SINGLESTEP = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "testdata",
                                  "singlestep-80286")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):                      # one clear line, exit status 2
        print(f"aero: {message}", file=sys.stderr)
        sys.exit(2)


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
    b.add_argument("--travel", action="store_true",
                   help="recording cost and time-travel speed instead (a long run: see "
                   "--instructions)")
    b.add_argument("--instructions", type=int, default=100_000_000, metavar="N",
                   help="with --travel: the recording's length (default 100000000)")
    b.add_argument("--keyframe-every", type=int, metavar="N",
                   help="with --travel: the keyframe interval (default: the recorder's)")
    b.add_argument("--trace", action="store_true",
                   help="execution tracing instead: speed and bytes per instruction of "
                   "'aero trace record' (instructions only, and in full)")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON")

    r = sub.add_parser("run", help="run a PC: the built-in demo, a floppy, a disk, a CD, a "
                       "multiboot kernel or a firmware image")
    add_machine_options(r)
    add_run_options(r)

    rc = sub.add_parser("record", help="run a PC as `aero run` does and record the run: "
                        "keyframes, host input, checkpoints (for aero replay and time travel)")
    rc.add_argument("out", metavar="OUT", help="the recording file to write")
    add_machine_options(rc)
    add_run_options(rc)
    rc.add_argument("--keyframe-every", type=int, metavar="N",
                    help="a keyframe every N instructions (default 500000)")
    rc.add_argument("--checkpoint-every", type=int, metavar="N",
                    help="registers checked every N instructions (default 4096; 1 pins a "
                    "replay divergence to its instruction)")

    rp = sub.add_parser("replay", help="re-execute a recording and check it; or serve it to "
                        "gdb with reverse execution")
    rp.add_argument("file", metavar="FILE", help="a recording (aero record)")
    rp.add_argument("--serial", metavar="stdio|FILE|none", help="COM1 output (default stdio)")
    rp.add_argument("--debugcon", metavar="stdio|FILE", help="port 0xE9 output")
    rp.add_argument("--gdb", metavar="[HOST:]PORT",
                    help="serve the recording to gdb instead (reverse-stepi, reverse-continue)")

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
    d.add_argument("--replay", metavar="FILE", help="debug a recording (aero record): "
                   "reverse-stepi, reverse-continue, goto and who-wrote over all of it")

    t = sub.add_parser("tui", help="the workbench in the terminal: code, registers, memory, "
                       "breakpoints, tables, devices, serial, events, profile; the guest's "
                       "display in a window")
    add_machine_options(t)
    t.add_argument("--no-display", action="store_true",
                   help="no guest display window (the terminal UI alone)")
    t.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                   help="load symbols: a NASM map file or an ELF file (repeatable)")
    t.add_argument("--load-state", metavar="FILE", help="start from a saved state")
    t.add_argument("--replay", metavar="FILE", help="open a recording (aero record) instead of "
                   "building a machine: F7/F8, goto and the Timeline over all of it")

    from .trace.tracecmd import add_trace_parser
    add_trace_parser(sub)
    from .jit.cmd import add_jit_parser
    add_jit_parser(sub, add_machine_options)

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


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            from .runcmd import run_command
            return run_command(settings_from_args(args))
        if args.cmd == "record":
            from .runcmd import run_command
            return run_command(settings_from_args(args), record={
                "path": args.out, "keyframe_every": args.keyframe_every,
                "checkpoint_every": args.checkpoint_every})
        if args.cmd == "replay":
            from .trace.replaycmd import replay_command
            return replay_command(args.file, serial=args.serial or "stdio",
                                  debugcon=args.debugcon, gdb=args.gdb)
        if args.cmd == "debug":
            from .debug.console import main as debug_main
            return debug_main(settings_from_args(args), scripts=args.scripts or [],
                              commands=args.commands or [], symbols=args.symbols or [],
                              batch=args.batch, replay=args.replay)
        if args.cmd == "tui":
            from .tui.app import main as tui_main
            return tui_main(settings_from_args(args), symbols=args.symbols or [],
                            display=not args.no_display, replay=args.replay)
        if args.cmd == "jit":
            from .jit.cmd import jit_main
            return jit_main(args, settings_from_args(args))
        if args.cmd == "trace":
            from .trace.tracecmd import trace_main
            return trace_main(args)
        if args.cmd == "bench" and args.trace:
            from .trace.tracebench import run_trace_bench
            return run_trace_bench(json_path=args.json)
        if args.cmd == "bench":
            from .bench import main as bench_main
            return bench_main(seconds=args.seconds, kernels=args.kernel, boot=args.boot,
                              machine=args.machine, callgrind=args.callgrind,
                              json_path=args.json, travel=args.travel,
                              instructions=args.instructions,
                              keyframe_every=args.keyframe_every)
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
