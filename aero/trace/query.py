"""Questions asked of a trace (``aero trace query``), answered chunk by chunk with numpy so that
a trace of hundreds of millions of instructions needs neither the memory nor the time of loading
it whole.

* ``accesses`` / who-wrote: the reads and writes overlapping an address range, with the
  instruction that made each (its count, PC and disassembly);
* ``pc_hits``: when the PC reached an address (its instruction counts);
* ``instructions_between``: what ran between two counts, disassembled, with the events there;
* ``coverage``: distinct instructions and bytes executed, merged into ranges, by symbol;
* ``hot``: instructions executed per address or per symbol, hottest first;
* ``events``, ``io``: the interrupt/exception/mode/BIOS events and the port accesses.

Every function returns plain data (lists of dicts), which ``format_rows`` turns into text and
``aero trace query --json`` prints as JSON.
"""

from __future__ import annotations

import collections

import numpy as np

from .tracefile import TraceFile


def _name(symbols, addr: int):
    if symbols is None:
        return None
    return symbols.describe(int(addr))


def pc_at(tf: TraceFile, icounts) -> dict:
    """{icount: (pc, cs, length)} for the given instruction counts (only the chunks holding them
    are read)."""
    want = np.unique(np.asarray(list(icounts), dtype=np.uint64))
    out = {}
    if not len(want):
        return out
    chunks = tf.header["tables"]["instructions"]["chunks"]
    for c in chunks:
        if not c["rows"]:
            continue
        sel = want[(want >= c["icount_min"]) & (want <= c["icount_max"])]
        if not len(sel):
            continue
        t = tf.arrays("instructions", ["icount", "pc", "cs", "length"], int(sel[0]),
                      int(sel[-1]) + 1)
        idx = np.searchsorted(t["icount"], sel)
        ok = idx < len(t["icount"])
        for i, ic in zip(idx[ok], sel[ok]):
            if t["icount"][i] == ic:
                out[int(ic)] = (int(t["pc"][i]), int(t["cs"][i]), int(t["length"][i]))
    return out


# ---------------------------------------------------------------------------------------------
def accesses(tf: TraceFile, address: int, size: int = 1, writes_only: bool = False,
             before: int | None = None, limit: int | None = None) -> list[dict]:
    """The memory accesses overlapping [address, address + size): chronological, or, with
    ``before``, the ones before that count, most recent first."""
    if not tf.has_memory:
        raise ValueError("this trace holds no memory accesses (recorded with --no-memory)")
    lo, hi = address, address + size
    hits = []
    for t in tf.iter_chunks("memory"):
        a = t.column("address").to_numpy().astype(np.int64)
        s = t.column("size").to_numpy().astype(np.int64)
        m = (a < hi) & (a + s > lo)
        if writes_only:
            m &= t.column("write").to_numpy(zero_copy_only=False)
        if before is not None:
            m &= t.column("icount").to_numpy() < before
        if m.any():
            idx = np.nonzero(m)[0]
            sub = t.take(idx)
            for r in sub.to_pylist():
                hits.append(r)
    if before is not None:
        hits.reverse()
    if limit:
        hits = hits[:limit]
    where = pc_at(tf, [h["icount"] for h in hits if not h["system"]])
    code = tf.code()
    for h in hits:
        if h["system"]:
            h["pc"] = None
            h["by"] = "interrupt delivery"
        else:
            pc, cs, ln = where.get(h["icount"], (None, None, None))
            h["pc"] = pc
            h["by"] = code.disasm(pc, icount=h["icount"]) if pc is not None else "?"
    return hits


def pc_hits(tf: TraceFile, address: int, limit: int | None = None) -> dict:
    """When the PC reached ``address``: how often, the first and last counts, and the counts
    (the first ``limit``)."""
    icounts = []
    total = 0
    first = last = None
    for t in tf.iter_chunks("instructions", ["icount", "pc"]):
        pc = t.column("pc").to_numpy()
        idx = np.nonzero(pc == address)[0]
        if not len(idx):
            continue
        ic = t.column("icount").to_numpy()[idx]
        total += len(ic)
        if first is None:
            first = int(ic[0])
        last = int(ic[-1])
        if limit is None or len(icounts) < limit:
            room = len(ic) if limit is None else limit - len(icounts)
            icounts.extend(int(v) for v in ic[:room])
    return {"address": address, "count": total, "first": first, "last": last,
            "icounts": icounts}


def instructions_between(tf: TraceFile, start: int, stop: int,
                         limit: int | None = None) -> dict:
    """The instructions with ``start <= icount < stop`` (the first ``limit``), disassembled,
    and the events among them."""
    hi = stop if limit is None else min(stop, start + limit)
    t = tf.arrays("instructions", None, start, hi)
    code = tf.code()
    regs = [c for c in t if c not in ("icount", "pc", "cs", "length")]
    rows = []
    for i in range(len(t["icount"])):
        ic, pc = int(t["icount"][i]), int(t["pc"][i])
        r = {"icount": ic, "pc": pc, "cs": int(t["cs"][i]), "length": int(t["length"][i]),
             "disasm": code.disasm(pc, int(t["eip"][i]) if "eip" in t else None, ic)
             if t["length"][i] else "(fetch faulted)"}
        for name in regs:
            r[name] = int(t[name][i])
        rows.append(r)
    ev = tf.read("events", None, start, hi + 1).to_pylist()
    return {"start": start, "stop": stop, "shown": len(rows), "total": max(0, min(stop, tf.end)
                                                                            - max(start, tf.first)),
            "instructions": rows, "events": ev}


def _distinct(tf: TraceFile):
    """(pcs, lengths, executions) of every distinct instruction address executed."""
    counts: collections.Counter = collections.Counter()
    lengths: dict = {}
    for t in tf.iter_chunks("instructions", ["pc", "length"]):
        pc = t.column("pc").to_numpy()
        ln = t.column("length").to_numpy()
        u, idx, c = np.unique(pc, return_index=True, return_counts=True)
        for p, i, n in zip(u.tolist(), idx.tolist(), c.tolist()):
            counts[p] += n
            lengths.setdefault(p, int(ln[i]))
    pcs = np.array(sorted(counts), dtype=np.int64)
    return pcs, np.array([lengths[p] for p in pcs.tolist()], dtype=np.int64), \
        np.array([counts[p] for p in pcs.tolist()], dtype=np.int64)


def ranges_of(pcs, lengths) -> list[tuple[int, int]]:
    """Merge instructions (sorted addresses with lengths) into [start, end) byte ranges."""
    out: list[list[int]] = []
    for p, n in zip(pcs.tolist(), lengths.tolist()):
        n = max(int(n), 1)
        if out and p <= out[-1][1]:
            out[-1][1] = max(out[-1][1], p + n)
        else:
            out.append([p, p + n])
    return [(a, b) for a, b in out]


def coverage(tf: TraceFile, symbols=None) -> dict:
    pcs, lens, counts = _distinct(tf)
    rngs = ranges_of(pcs, lens)
    out = {"instructions_executed": int(counts.sum()), "distinct_instructions": len(pcs),
           "bytes_covered": int(sum(b - a for a, b in rngs)),
           "ranges": [{"start": a, "end": b, "symbol": _name(symbols, a)} for a, b in rngs]}
    if symbols is not None:
        by: dict = {}
        for p, n, c in zip(pcs.tolist(), lens.tolist(), counts.tolist()):
            near = symbols.nearest(p)
            key = near[0] if near else None
            e = by.setdefault(key, {"symbol": key, "distinct_instructions": 0, "bytes": 0,
                                    "executed": 0})
            e["distinct_instructions"] += 1
            e["bytes"] += n
            e["executed"] += c
        out["by_symbol"] = sorted(by.values(), key=lambda e: -e["executed"])
    return out


def hot(tf: TraceFile, top: int = 20, symbols=None, by: str = "instruction") -> list[dict]:
    """The hottest code: instructions executed per address (``by="instruction"``) or per
    symbol, with each one's share of all instructions executed."""
    pcs, lens, counts = _distinct(tf)
    total = int(counts.sum()) or 1
    if by == "symbol":
        agg: collections.Counter = collections.Counter()
        first: dict = {}
        for p, c in zip(pcs.tolist(), counts.tolist()):
            near = symbols.nearest(p) if symbols is not None else None
            key = near[0] if near else f"{p & ~0xFFF:#010x} (no symbol)"
            agg[key] += c
            first.setdefault(key, near[1] if near else p & ~0xFFF)
        return [{"symbol": k, "address": first[k], "count": c, "share": c / total}
                for k, c in agg.most_common(top)]
    order = np.argsort(-counts, kind="stable")[:top]
    code = tf.code()
    return [{"pc": int(pcs[i]), "symbol": _name(symbols, pcs[i]), "count": int(counts[i]),
             "share": int(counts[i]) / total, "disasm": code.disasm(int(pcs[i]))}
            for i in order]


def events(tf: TraceFile, kinds=None, limit: int | None = None) -> list[dict]:
    rows = tf.read("events").to_pylist()
    if kinds:
        rows = [r for r in rows if r["kind"] in kinds]
    return rows[:limit] if limit else rows


def io(tf: TraceFile, lo: int | None = None, hi: int | None = None,
       limit: int | None = None) -> list[dict]:
    rows = []
    for t in tf.iter_chunks("io"):
        if lo is not None:
            p = t.column("port").to_numpy()
            t = t.filter((p >= lo) & (p < hi))
        rows.extend(t.to_pylist())
        if limit and len(rows) >= limit:
            return rows[:limit]
    return rows


# ---------------------------------------------------------------------------------------------
def _sym(symbols, addr) -> str:
    n = _name(symbols, addr) if addr is not None else None
    return f" <{n}>" if n else ""


def format_rows(query: str, rows, tf: TraceFile, symbols=None) -> list[str]:
    """Text lines for a query's result."""
    out = []
    if query in ("who-wrote", "accesses"):
        if not rows:
            return ["no access" if query == "accesses" else "no write"]
        for r in rows:
            kind = "write" if r["write"] else "read "
            where = "(interrupt delivery)" if r["system"] else \
                f"{r['pc']:#010x}{_sym(symbols, r['pc'])}  {r['by']}" if r["pc"] is not None \
                else "?"
            out.append(f"icount {r['icount']:>12}  {kind} {r['size']} bytes at "
                       f"{r['address']:#010x} = {r['value']:#0{2 + 2 * r['size']}x}  by {where}")
        return out
    if query == "pc":
        r = rows
        if not r["count"]:
            return [f"the PC never reached {r['address']:#010x}"]
        out.append(f"{r['address']:#010x}{_sym(symbols, r['address'])}: reached {r['count']:,} "
                   f"times, first at icount {r['first']}, last at {r['last']}")
        out.extend(f"  {ic}" for ic in r["icounts"])
        if len(r["icounts"]) < r["count"]:
            out.append(f"  ... {r['count'] - len(r['icounts']):,} more (--limit)")
        return out
    if query == "range":
        evs = collections.defaultdict(list)
        for e in rows["events"]:
            evs[e["icount"]].append(e)
        for r in rows["instructions"]:
            for e in evs.pop(r["icount"], ()):
                out.append("             " + _event_text(e))
            out.append(f"icount {r['icount']:>12}  {r['cs']:04x} {r['pc']:#010x}"
                       f"{_sym(symbols, r['pc'])}  {r['disasm']}")
        for ic in sorted(evs):
            for e in evs[ic]:
                out.append("             " + _event_text(e))
        if rows["shown"] < rows["total"]:
            out.append(f"... {rows['total'] - rows['shown']:,} more instructions (--limit)")
        return out
    if query == "coverage":
        r = rows
        out.append(f"{r['instructions_executed']:,} instructions executed, "
                   f"{r['distinct_instructions']:,} distinct, {r['bytes_covered']:,} bytes "
                   f"of code in {len(r['ranges'])} ranges")
        for g in r["ranges"][:200]:
            out.append(f"  {g['start']:#010x}-{g['end']:#010x}  {g['end'] - g['start']:6} bytes"
                       + (f"  <{g['symbol']}>" if g["symbol"] else ""))
        if len(r["ranges"]) > 200:
            out.append(f"  ... {len(r['ranges']) - 200} more ranges (--json for all)")
        for s in r.get("by_symbol", []):
            out.append(f"  {s['symbol'] or '(no symbol)':30} {s['distinct_instructions']:6} "
                       f"instructions, {s['bytes']:6} bytes, executed {s['executed']:,}")
        return out
    if query == "hot":
        for r in rows:
            if "pc" in r:
                out.append(f"{100 * r['share']:6.2f}%  {r['count']:>12,}  {r['pc']:#010x}"
                           + (f" <{r['symbol']}>" if r["symbol"] else "") + f"  {r['disasm']}")
            else:
                out.append(f"{100 * r['share']:6.2f}%  {r['count']:>12,}  {r['symbol']}")
        return out
    if query == "events":
        return [_event_text(e) for e in rows] or ["no events"]
    if query == "io":
        return [f"icount {r['icount']:>12}  {'out' if r['write'] else 'in '} port "
                f"{r['port']:#06x} size {r['size']} value {r['value']:#x}" for r in rows] or \
            ["no port access"]
    return [str(rows)]


def _event_text(e: dict) -> str:
    k = e["kind"]
    ic = f"icount {e['icount']:>12}  "
    if k in ("hw", "fault", "soft"):
        what = {"hw": "interrupt", "fault": "exception", "soft": "INT"}[k]
        name = f" {e['text']}" if e.get("text") else ""
        code = f" error {e['error_code']:#x}" if e.get("error_code") is not None else ""
        cr2 = f" cr2={e['cr2']:#x}" if e.get("cr2") is not None else ""
        ah = f" AH={(e['eax'] >> 8) & 0xFF:02X}h" if k == "soft" else ""
        return (f"{ic}{what} {e['vector']:#04x}{name}{ah}{code}{cr2} from "
                f"{e['cs']:04x}:{e['eip']:08x}")
    if k == "shutdown":
        return f"{ic}shutdown (triple fault)"
    return f"{ic}{k}: {e.get('text') or ''}"
