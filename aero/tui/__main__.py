"""``python -m aero.tui [machine options] [--no-display] [--symbols FILE[@BIAS]]
[--replay FILE]``: the TUI without the ``aero`` command (the same options as ``aero tui``)."""

from __future__ import annotations

import argparse
import sys

from ..options import add_machine_options, settings_from_args
from ..config import ConfigError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aero.tui",
                                description="The Aero TUI: debug a PC guest in the terminal")
    add_machine_options(p)
    p.add_argument("--no-display", action="store_true",
                   help="no guest display window (the TUI alone)")
    p.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                   help="load symbols: a NASM map file or an ELF file (repeatable)")
    p.add_argument("--load-state", metavar="FILE", help="start from a saved state")
    p.add_argument("--replay", metavar="FILE", help="open a recording (aero record) instead of "
                   "building a machine: F7/F8, goto and the Timeline over all of it")
    return p.parse_args(argv)


def run(argv=None) -> int:
    args = parse_args(argv)
    from .app import main
    try:
        settings = settings_from_args(args)
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    return main(settings, symbols=args.symbols or [], display=not args.no_display,
                replay=args.replay)


if __name__ == "__main__":
    sys.exit(run())
