"""``aero jit [machine options] [--top N] [--source ADDR] [--check N]``: run a guest headless
and show what the JIT made of it, or check the JIT against the interpreter."""

from __future__ import annotations

import sys

from ..config import ConfigError


def add_jit_parser(sub, add_machine_options) -> None:
    j = sub.add_parser("jit", help="run a guest and list the hottest translated units (or "
                       "--check the JIT against the interpreter)")
    add_machine_options(j)
    j.add_argument("--max-instructions", type=int, default=50_000_000, metavar="N",
                   help="stop after N instructions (default 50000000)")
    j.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit")
    j.add_argument("--top", type=int, default=20, metavar="N", help="units listed (default 20)")
    j.add_argument("--source", metavar="ADDR", action="append",
                   help="print the guest code and the generated Python of the unit entered at "
                   "linear address ADDR (repeatable)")
    j.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                   help="name the units' entries: a NASM map file or an ELF file")
    j.add_argument("--check", type=int, metavar="N",
                   help="instead: run N random instruction sequences through the JIT and the "
                   "interpreter and compare (aero.jit.check)")
    j.add_argument("--seed", type=int, default=1, help="with --check (default 1)")


def _address(text: str) -> int:
    try:
        return int(text, 0) if not text.lower().endswith("h") else int(text[:-1], 16)
    except ValueError:
        raise ConfigError(f"--source: not an address: {text!r}") from None


def jit_main(args, settings: dict) -> int:
    if args.check is not None:
        from .check import run
        if args.check <= 0:
            print("aero: --check needs a positive count", file=sys.stderr)
            return 2
        return 0 if run(args.check, args.seed) else 1
    from ..config import split_settings
    from ..build import build_machine
    from ..debug.symbols import SymbolTable
    from .report import summary, table, units
    try:
        if settings.get("jit") == "off":
            raise ConfigError("aero jit shows what the JIT does: not with --jit off")
        if args.max_instructions <= 0 or args.top < 0:
            raise ConfigError("--max-instructions and --top must be positive")
        wanted = [_address(a) for a in args.source or []]
        cfg, _ = split_settings({k: v for k, v in settings.items()
                                 if k not in ("max_instructions", "timeout")})
        symbols = None
        if args.symbols:
            symbols = SymbolTable()
            for spec in args.symbols:
                path, _, bias = spec.partition("@")
                try:
                    symbols.load(path, int(bias, 0) if bias else 0)
                except (OSError, ValueError) as e:
                    raise ConfigError(f"--symbols: {spec}: {e}") from None
        m = build_machine(cfg)
    except ConfigError as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    try:
        r = m.run(max_instructions=args.max_instructions, timeout=args.timeout)
        jit = m.cpu.cache.jit
        print(f"aero jit: the run ended ({r.status}) after {m.cpu.icount:,} instructions")
        print(summary(jit, m.cpu.icount))
        print()
        print(table(jit, args.top, symbols))
        infos = units(jit)
        for a in wanted:
            hits = [i for i in infos if i.entry == a]
            if not hits:
                print(f"\naero: no unit is entered at {a:#x}", file=sys.stderr)
                return 1
            i = hits[0]
            print(f"\nunit at {a:#x}: {i.blocks} blocks, {i.instructions} instructions, "
                  f"{'live' if i.live else 'invalidated'}")
            print("\n".join(i.disassembly()))
            print()
            print(i.source)
    finally:
        m.close()
    return 0
