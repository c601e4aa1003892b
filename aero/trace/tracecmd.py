"""`aero trace`: record execution traces, look into them, export them, compare them.

    aero trace record OUT [machine options] [--from N --to M] [--registers] [--no-memory]
    aero trace info TRACE
    aero trace query TRACE who-wrote|accesses|pc|range|coverage|hot|events|io ...
    aero trace export TRACE tenet|drcov|chrome|speedscope -o FILE
    aero trace diff A B        (A, B: traces or QEMU -d exec,cpu,nochain logs)

Exit statuses: ``record`` returns what `aero run` would (the guest's isa-debug-exit status, 0 at
the instruction limit...); ``diff`` 0 when the traces agree, 1 when they diverge; every command 2
for bad input (one line on stderr: a missing or damaged trace, a bad option or address).
"""

from __future__ import annotations

import json
import os
import sys

from ..config import ConfigError
from ..options import add_machine_options, add_run_options, settings_from_args

FORMATS = ("tenet", "drcov", "chrome", "speedscope")
QUERIES = ("who-wrote", "accesses", "pc", "range", "coverage", "hot", "events", "io")


class UsageError(ValueError):
    """Bad input to `aero trace`: one line, exit status 2."""


def add_trace_parser(sub) -> None:
    """Add `aero trace` and its subcommands to the `aero` command's subparsers."""
    pcls = sub._parser_class
    t = sub.add_parser("trace", help="execution traces: record one (Parquet), query it, export "
                       "it (Tenet, drcov, Chrome trace, speedscope), diff two (or a QEMU log)")
    ts = t.add_subparsers(dest="trace_cmd", parser_class=pcls)

    r = ts.add_parser("record", help="run a PC as `aero run` does and trace every instruction, "
                      "memory access, port access and interrupt into OUT (a directory of "
                      "Parquet files)")
    r.add_argument("out", metavar="OUT", help="the trace to write (a directory, e.g. run.trace)")
    add_machine_options(r)
    add_run_options(r)
    r.add_argument("--from", dest="trace_from", type=int, metavar="N",
                   help="start tracing at instruction count N (run untraced up to it)")
    r.add_argument("--to", dest="trace_to", type=int, metavar="M",
                   help="stop at instruction count M (the last one traced is M-1)")
    r.add_argument("--registers", action="store_true",
                   help="also the registers before every instruction (several times slower; "
                   "for 'aero trace diff' against QEMU)")
    r.add_argument("--no-memory", action="store_true", help="leave out memory accesses")
    r.add_argument("--no-io", action="store_true", help="leave out port accesses")
    r.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                   help="rows per chunk (Parquet row group; default 1048576)")

    i = ts.add_parser("info", help="what a trace holds: range, counts, sizes, machine")
    i.add_argument("trace", metavar="TRACE")
    i.add_argument("--json", action="store_true", help="the index as JSON")

    q = ts.add_parser("query", help="who wrote an address, when the PC reached one, what ran "
                      "between two counts, coverage, hottest code, events, port I/O")
    q.add_argument("trace", metavar="TRACE")
    qs = q.add_subparsers(dest="query", parser_class=pcls)

    def common(p, limit=True):
        p.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                       help="name addresses with symbols from a NASM map or an ELF file")
        p.add_argument("--json", action="store_true", help="rows as JSON")
        if limit:
            p.add_argument("--limit", type=int, default=50, metavar="N",
                           help="at most N rows (default 50; 0: all)")

    w = qs.add_parser("who-wrote", help="the writes to ADDR: when (icount), by which "
                      "instruction, the value")
    w.add_argument("address", metavar="ADDR", help="linear address (0x7c00, 0000:7c00, a "
                   "symbol with --symbols)")
    w.add_argument("--size", type=int, default=1, metavar="N", help="bytes from ADDR (default 1)")
    w.add_argument("--before", type=int, metavar="ICOUNT",
                   help="only writes before this instruction count (the last one first)")
    common(w)
    a = qs.add_parser("accesses", help="every read and write of ADDR")
    a.add_argument("address", metavar="ADDR")
    a.add_argument("--size", type=int, default=1, metavar="N")
    common(a)
    p = qs.add_parser("pc", help="when the PC reached ADDR (instruction counts)")
    p.add_argument("address", metavar="ADDR")
    common(p)
    g = qs.add_parser("range", help="the instructions run between counts A and B")
    g.add_argument("start", type=int, metavar="A")
    g.add_argument("stop", type=int, metavar="B")
    common(g)
    c = qs.add_parser("coverage", help="code covered: distinct instructions and bytes, by "
                      "symbol with --symbols")
    common(c, limit=False)
    h = qs.add_parser("hot", help="hottest code: instructions executed per address, by "
                      "symbol with --symbols")
    h.add_argument("--top", type=int, default=20, metavar="N")
    h.add_argument("--by", choices=("instruction", "symbol"), default=None,
                   help="group by instruction or by symbol (default: symbol with --symbols)")
    common(h, limit=False)
    e = qs.add_parser("events", help="interrupts, exceptions, mode switches, CR3 loads, BIOS "
                      "calls")
    e.add_argument("--kind", action="append", metavar="KIND",
                   help="only these kinds (hw, fault, soft, shutdown, mode, cr3, bios)")
    common(e)
    o = qs.add_parser("io", help="port accesses")
    o.add_argument("--port", metavar="PORT[-END]", help="only this port (range)")
    common(o)

    x = ts.add_parser("export", help="write a trace in another tool's format: Tenet text "
                      "trace, drcov coverage (Lighthouse), Chrome trace / Perfetto JSON, "
                      "speedscope profile")
    x.add_argument("trace", metavar="TRACE")
    x.add_argument("format", choices=FORMATS, metavar="FORMAT",
                   help="tenet | drcov | chrome | speedscope")
    x.add_argument("-o", "--output", required=True, metavar="FILE")
    x.add_argument("--symbols", metavar="FILE[@BIAS]", action="append",
                   help="symbols for frame and span names (speedscope, chrome)")
    x.add_argument("--module", action="append", metavar="NAME@BASE[-END]",
                   help="drcov: a module (default: one module 'memory' covering all addresses)")
    x.add_argument("--from", dest="start", type=int, metavar="N",
                   help="from instruction count N")
    x.add_argument("--to", dest="stop", type=int, metavar="M", help="to instruction count M")

    d = ts.add_parser("diff", help="the first divergence between two traces, or a trace and a "
                      "QEMU log (qemu-system-i386 -accel tcg -singlestep -d exec,cpu,nochain)")
    d.add_argument("a", metavar="A", help="a trace, or a QEMU log")
    d.add_argument("b", metavar="B", help="a trace, or a QEMU log")
    d.add_argument("--from-pc", metavar="ADDR",
                   help="start each side at its first instruction at linear address ADDR")
    d.add_argument("--skip-a", type=int, default=0, metavar="N",
                   help="skip A's first N instructions (after --from-pc)")
    d.add_argument("--skip-b", type=int, default=0, metavar="N")
    d.add_argument("--max", type=int, metavar="N", help="compare at most N instructions")
    d.add_argument("--ignore", action="append", metavar="REG[,REG]",
                   help="registers not to compare (e.g. edx,eflags)")
    d.add_argument("--eflags-mask", metavar="MASK",
                   help="compare only these EFLAGS bits (e.g. 0x8d5: the arithmetic flags)")
    d.add_argument("--no-memory", action="store_true",
                   help="do not compare memory accesses (two Aero traces)")
    d.add_argument("--context", type=int, default=3, metavar="N",
                   help="instructions shown before the divergence (default 3)")
    d.add_argument("--json", action="store_true", help="the result as JSON")


def trace_main(args) -> int:
    """Run `aero trace ...` from parsed arguments; the exit status."""
    from .tracefile import TraceError       # pyarrow: imported when a trace command runs
    cmd = getattr(args, "trace_cmd", None)
    try:
        if cmd == "record":
            return _record(args)
        if cmd == "info":
            return _info(args)
        if cmd == "query":
            return _query(args)
        if cmd == "export":
            return _export(args)
        if cmd == "diff":
            return _diff(args)
        print("aero: trace: give a subcommand: record, info, query, export or diff",
              file=sys.stderr)
        return 2
    except (UsageError, TraceError, ConfigError) as e:
        print(f"aero: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


# ---------------------------------------------------------------------------------------------
# record
# ---------------------------------------------------------------------------------------------
_UNSUPPORTED = {"gdb": "--gdb", "gdb_nowait": "--gdb-nowait", "at_instruction": "--at-instruction"}


def _record(args) -> int:
    from ..build import build_from_settings
    from ..runcmd import CLI_DEFAULTS
    from .capture import Capture
    from .tracefile import CHUNK_ROWS, TraceWriter, check_output_path

    settings = settings_from_args(args)
    for key, opt in _UNSUPPORTED.items():
        if settings.get(key):
            raise UsageError(f"trace record: {opt} is not supported while tracing")
    lo, hi = args.trace_from, args.trace_to
    if lo is not None and lo < 0 or hi is not None and hi < 0:
        raise UsageError("trace record: --from and --to must not be negative")
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(f"trace record: --to {hi} must be after --from {lo}")
    chunk = args.chunk_rows if args.chunk_rows is not None else CHUNK_ROWS
    if chunk <= 0:
        raise UsageError("trace record: --chunk-rows must be positive")
    try:
        check_output_path(args.out)
    except ValueError as e:
        raise UsageError(f"trace record: {e}") from None
    m, run = build_from_settings({**CLI_DEFAULTS, **settings})
    limit = run.get("max_instructions")
    stop = hi if limit is None else limit if hi is None else min(hi, limit)
    timing = {"timeout": run.get("timeout"), "realtime": run.get("realtime", False)}
    writer = cap = res = None
    try:
        if lo is not None and m.cpu.icount < lo:
            res = m.run(max_instructions=lo if stop is None else min(lo, stop), **timing)
            if m.cpu.icount < lo:
                raise UsageError(f"trace record: the run ended ({res.status}) at instruction "
                                 f"{m.cpu.icount}, before --from {lo}; nothing traced")
        header = {"producer": _producer(), "created": _now(),
                  "machine": m.config.hardware(),
                  "capture": {"memory": not args.no_memory, "io": not args.no_io,
                              "events": True, "registers": bool(args.registers)},
                  "ips": m.config.ips}
        writer = TraceWriter(args.out, header, registers=bool(args.registers), chunk_rows=chunk)
        cap = Capture(m, writer, memory=not args.no_memory, io=not args.no_io,
                      registers=bool(args.registers)).start()
        res = m.run(max_instructions=stop, **timing)
        totals = cap.stop()
        index = writer.close({"first": cap.first, "end": cap.end, "totals": totals,
                              "status": res.status, "exit_code": res.exit_code,
                              "detail": res.detail or None})
        writer = None
    except KeyboardInterrupt:
        print("aero: interrupted; no trace written", file=sys.stderr)
        return 130
    finally:
        if writer is not None:
            writer.abandon()
        m.close()
    if res.status == "error":
        print(res.detail, file=sys.stderr)
    elif res.status in ("halted", "shutdown", "timeout"):
        print(f"aero: {res.status}{': ' + res.detail if res.detail else ''} "
              f"after {res.icount} instructions", file=sys.stderr)
    size = _dir_size(args.out)
    n = index["end"] - index["first"]
    t = index["totals"]
    print(f"aero: traced instructions {index['first']} to {index['end']} into {args.out}: "
          f"{n:,} instructions, {t['memory']:,} memory accesses, {t['io']:,} port accesses, "
          f"{t['events']:,} events; {size / 1e6:.2f} MB "
          f"({size / max(n, 1):.2f} bytes per instruction)", file=sys.stderr)
    if t.get("unattributed"):
        print(f"aero: warning: {t['unattributed']} instruction rows could not be attributed "
              "exactly", file=sys.stderr)
    if run.get("save_state"):
        from .. import statefile
        try:
            statefile.save(run["save_state"], m, settings=m.config.hardware())
        except OSError as e:
            print(f"aero: --save-state: cannot write {run['save_state']}: {e.strerror}",
                  file=sys.stderr)
            return 2
    if run.get("screenshot"):
        from ..display.png import write_png
        from ..display.render import render
        try:
            write_png(run["screenshot"], render(m.vga))
        except OSError as e:
            print(f"aero: --screenshot: {e}", file=sys.stderr)
    if run.get("state_hash"):
        print(f"state-hash icount={m.cpu.icount} sha256={m.state_hash()}", file=sys.stderr)
    return res.exit_code


def _producer() -> str:
    from .. import __version__
    return f"aero {__version__}"


def _now() -> str:
    import datetime as _dt
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _dir_size(path: str) -> int:
    total = 0
    for name in os.listdir(path):
        p = os.path.join(path, name)
        if os.path.isfile(p):
            total += os.path.getsize(p)
    return total


# ---------------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------------
def _info(args) -> int:
    from .tracefile import TraceFile
    tf = TraceFile(args.trace)
    h = tf.header
    if args.json:
        print(json.dumps(h, indent=1))
        return 0
    n = tf.end - tf.first
    size = _dir_size(args.trace)
    print(f"{args.trace}: Aero trace (format {h['format']} {h['version']}, {h.get('producer')}, "
          f"{h.get('created')})")
    mach = h.get("machine", {})
    what = ", ".join(f"{k}={v}" for k, v in mach.items()
                     if k in ("bios", "kernel", "fda", "hda", "cdrom", "memory") and v)
    print(f"  machine      {what}")
    print(f"  instructions {tf.first} to {tf.end} ({n:,}); run ended: {h.get('status')} "
          f"(exit status {h.get('exit_code')})")
    cap = h.get("capture", {})
    print("  captured     instructions" + "".join(
        f", {k}" for k in ("memory", "io", "events", "registers") if cap.get(k)))
    for name, meta in h["tables"].items():
        p = os.path.join(args.trace, meta["file"])
        sz = os.path.getsize(p) if os.path.exists(p) else 0
        print(f"  {name:12} {meta['rows']:>12,} rows in {len(meta['chunks'])} chunks, "
              f"{sz / 1e6:8.2f} MB")
    print(f"  total        {size / 1e6:.2f} MB, {size / max(n, 1):.2f} bytes per instruction")
    if h.get("totals", {}).get("unattributed"):
        print(f"  warning      {h['totals']['unattributed']} rows not attributed exactly")
    return 0


# ---------------------------------------------------------------------------------------------
# query, export, diff
# ---------------------------------------------------------------------------------------------
def load_symbols(specs):
    """A SymbolTable from --symbols FILE[@BIAS] options (None without any)."""
    if not specs:
        return None
    from ..debug.symbols import SymbolTable
    st = SymbolTable()
    for spec in specs:
        path, bias = spec, 0
        if "@" in spec:
            path, b = spec.rsplit("@", 1)
            try:
                bias = int(b, 0)
            except ValueError:
                raise UsageError(f"--symbols {spec}: bad bias {b!r}") from None
        if not os.path.isfile(path):
            raise UsageError(f"--symbols: no such file: {path}")
        try:
            st.load(path, bias)
        except (ValueError, OSError) as e:
            raise UsageError(f"--symbols {path}: {e}") from None
    return st


def parse_address(text: str, symbols=None) -> int:
    """A linear address: a number (0x7c00, 31744, 7c00h), SEG:OFF (real mode: SEG*16+OFF), or a
    symbol name when symbols are loaded."""
    t = text.strip()
    try:
        if ":" in t:
            seg, off = t.split(":", 1)
            return ((int(seg, 16) << 4) + int(off, 16)) & 0xFFFFFFFF
        if t.lower().endswith("h") and all(c in "0123456789abcdefABCDEF" for c in t[:-1]):
            return int(t[:-1], 16)
        return int(t, 0) & 0xFFFFFFFF
    except ValueError:
        pass
    if symbols is not None:
        try:
            return symbols.lookup(t)
        except KeyError as e:
            raise UsageError(str(e)) from None
    raise UsageError(f"not an address: {text!r} (a number, SEG:OFF"
                     f"{', or a symbol' if symbols is not None else '; symbols need --symbols'})")


def _query(args) -> int:
    from . import query as Q
    if not args.query:
        raise UsageError(f"trace query: give a query: {', '.join(QUERIES)}")
    from .tracefile import TraceFile
    tf = TraceFile(args.trace)
    syms = load_symbols(getattr(args, "symbols", None))
    try:
        return _run_query(args, tf, syms, Q)
    except ValueError as e:
        from .tracefile import TraceError
        if isinstance(e, (TraceError, UsageError)):
            raise
        raise UsageError(f"trace query {args.query}: {e}") from None


def _run_query(args, tf, syms, Q) -> int:
    limit = getattr(args, "limit", 0) or None
    name = args.query
    if name in ("who-wrote", "accesses"):
        if args.size <= 0:
            raise UsageError("--size must be positive")
        addr = parse_address(args.address, syms)
        rows = Q.accesses(tf, addr, args.size, writes_only=name == "who-wrote",
                          before=getattr(args, "before", None), limit=limit)
    elif name == "pc":
        rows = Q.pc_hits(tf, parse_address(args.address, syms), limit=limit)
    elif name == "range":
        if args.stop <= args.start:
            raise UsageError(f"range: B ({args.stop}) must be after A ({args.start})")
        rows = Q.instructions_between(tf, args.start, args.stop, limit=limit)
    elif name == "coverage":
        rows = Q.coverage(tf, syms)
    elif name == "hot":
        by = args.by or ("symbol" if syms is not None else "instruction")
        if by == "symbol" and syms is None:
            raise UsageError("hot --by symbol needs --symbols")
        rows = Q.hot(tf, top=args.top, symbols=syms, by=by)
    elif name == "events":
        rows = Q.events(tf, kinds=args.kind, limit=limit)
    elif name == "io":
        lo = hi = None
        if args.port:
            a, _, b = args.port.partition("-")
            try:
                lo = int(a, 0)
                hi = int(b, 0) + 1 if b else lo + 1
            except ValueError:
                raise UsageError(f"--port {args.port}: expected PORT or PORT-END") from None
        rows = Q.io(tf, lo, hi, limit=limit)
    else:                                                   # argparse limits the choices
        raise UsageError(f"unknown query {name}")
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
    else:
        for line in Q.format_rows(name, rows, tf, syms):
            print(line)
    return 0


def _export(args) -> int:
    from .tracefile import TraceFile
    tf = TraceFile(args.trace)
    out = args.output
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise UsageError(f"export: directory {d} does not exist (for {out})")
    if os.path.isdir(out):
        raise UsageError(f"export: {out} is a directory")
    syms = load_symbols(args.symbols)
    lo, hi = args.start, args.stop
    fmt = args.format
    try:
        if fmt == "tenet":
            from .export.tenet import write_tenet
            n = write_tenet(tf, out, lo, hi)
            what = f"{n:,} lines"
        elif fmt == "drcov":
            from .export.drcov import parse_module, write_drcov
            mods = [parse_module(s) for s in (args.module or [])]
            n = write_drcov(tf, out, mods or None, lo, hi)
            what = f"{n:,} basic blocks"
        elif fmt == "chrome":
            from .export.chrome import write_chrome
            n = write_chrome(tf, out, syms, lo, hi)
            what = f"{n:,} events"
        else:
            from .export.speedscope import write_speedscope
            n = write_speedscope(tf, out, syms, lo, hi)
            what = f"{n:,} frame events"
    except ValueError as e:
        from .tracefile import TraceError
        if isinstance(e, TraceError):
            raise
        raise UsageError(f"export {fmt}: {e}") from None
    except OSError as e:
        raise UsageError(f"export: cannot write {out}: {e.strerror}") from None
    print(f"aero: wrote {out} ({fmt}, {what})", file=sys.stderr)
    return 0


def _diff(args) -> int:
    from .tracediff import DiffOptions, diff_paths
    ignore = set()
    for spec in args.ignore or ():
        ignore.update(r.strip().lower() for r in spec.split(",") if r.strip())
    mask = None
    if args.eflags_mask:
        try:
            mask = int(args.eflags_mask, 0)
        except ValueError:
            raise UsageError(f"--eflags-mask {args.eflags_mask}: not a number") from None
    for n in ("skip_a", "skip_b"):
        if getattr(args, n) < 0:
            raise UsageError(f"--{n.replace('_', '-')} must not be negative")
    if args.max is not None and args.max <= 0:
        raise UsageError("--max must be positive")
    opts = DiffOptions(from_pc=parse_address(args.from_pc) if args.from_pc else None,
                       skip_a=args.skip_a, skip_b=args.skip_b, max_steps=args.max,
                       ignore=ignore, eflags_mask=mask, memory=not args.no_memory,
                       context=max(0, args.context))
    result = diff_paths(args.a, args.b, opts)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result.report())
    return 0 if result.same else 1
