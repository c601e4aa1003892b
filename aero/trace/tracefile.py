"""Trace files: what ``aero trace record`` writes and ``aero trace query/export/diff`` read.

A trace is a directory (``run.trace/``) of Parquet files, one per kind of record, plus an index:

==========================  ======================================================================
file                        one row per
==========================  ======================================================================
``instructions.parquet``    retired instruction, in order: ``icount`` (its instruction count: the
                            number retired before it; every REP iteration counts one), ``pc`` (its
                            linear address), ``cs`` (selector), ``length`` (bytes; 0 for an
                            instruction whose fetch faulted).  With ``--registers`` also the state
                            *before* it: ``eip``, ``eax`` ``ecx`` ``edx`` ``ebx`` ``esp`` ``ebp``
                            ``esi`` ``edi``, ``eflags``, ``es`` ``ss`` ``ds`` ``fs`` ``gs``,
                            ``cr0`` ``cr2`` ``cr3`` ``cr4``
``memory.parquet``          data access: ``icount`` (of the instruction making it), ``address``
                            (linear), ``size`` (1, 2, 4), ``value``, ``write``, ``system`` (made
                            while delivering an interrupt or exception rather than by an
                            instruction's own operands; ``icount`` is then the handler's first
                            instruction)
``io.parquet``              port access: ``icount``, ``port``, ``size``, ``value``, ``write``
``events.parquet``          interrupt, exception, mode switch, CR3 load, BIOS call: ``icount`` (the
                            first instruction after it: the handler's), ``kind`` (``hw``, ``fault``,
                            ``soft``, ``shutdown``, ``mode``, ``cr3``, ``bios``), ``vector``,
                            ``error_code``, ``cs``/``eip`` (where it came from), ``return_pc``
                            (the linear address the handler returns to), ``eax``, ``cr2``, ``text``
``code.parquet``            distinct instruction decoded: ``pc``, ``code32``, ``bytes``, ``icount``
                            (when it was decoded; self-modified code gets a new row)
``trace.json``              the header and the index: format version, producer, machine settings,
                            the instruction range, what was captured, row counts, and per file its
                            chunks (Parquet row groups) with the ``icount`` range each covers
==========================  ======================================================================

Every file is chunked (a Parquet row group per ``chunk_rows`` rows, 1M by default), compressed
(zstd; counts, addresses, values and registers delta-encoded, the rest dictionary/RLE-encoded) and
carries min/max statistics per chunk, so pandas, polars, DuckDB and pyarrow read it directly and
skip what a filter on ``icount`` or ``pc`` excludes::

    pandas.read_parquet("run.trace/instructions.parquet")
    duckdb.sql("SELECT pc, count(*) FROM 'run.trace/instructions.parquet' GROUP BY pc")

The writer works in a directory beside the target and renames it into place when the trace is
complete, so a trace path never holds half a trace.  ``TraceFile`` reads one back; every problem
with a trace (missing, damaged, another format version) is a ``TraceError`` with one readable line.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.parquet as pq

FORMAT = "aero-trace"
VERSION = 1
INDEX = "trace.json"
CHUNK_ROWS = 1 << 20
DELTA_COLUMNS = ("icount", "address", "value", "eip", "eax", "ecx", "edx", "ebx", "esp", "ebp",
                 "esi", "edi", "eflags", "cr0", "cr2", "cr3", "cr4")
DELTA_TABLES = ("instructions", "memory", "io", "events")

REGISTERS = ("eip", "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eflags",
             "es", "ss", "ds", "fs", "gs", "cr0", "cr2", "cr3", "cr4")
SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs")

_U16 = ("es", "ss", "ds", "fs", "gs")

SCHEMAS = {
    "instructions": pa.schema([("icount", pa.uint64()), ("pc", pa.uint32()), ("cs", pa.uint16()),
                               ("length", pa.uint8())]),
    "memory": pa.schema([("icount", pa.uint64()), ("address", pa.uint32()), ("size", pa.uint8()),
                         ("value", pa.uint32()), ("write", pa.bool_()), ("system", pa.bool_())]),
    "io": pa.schema([("icount", pa.uint64()), ("port", pa.uint16()), ("size", pa.uint8()),
                     ("value", pa.uint32()), ("write", pa.bool_())]),
    "events": pa.schema([("icount", pa.uint64()), ("kind", pa.string()), ("vector", pa.int16()),
                         ("error_code", pa.uint32()), ("cs", pa.uint16()), ("eip", pa.uint32()),
                         ("return_pc", pa.uint32()), ("eax", pa.uint32()), ("cr2", pa.uint32()),
                         ("text", pa.string())]),
    "code": pa.schema([("pc", pa.uint32()), ("code32", pa.bool_()), ("bytes", pa.binary()),
                       ("icount", pa.uint64())]),
}
TABLES = tuple(SCHEMAS)


def instruction_schema(registers: bool) -> pa.Schema:
    s = SCHEMAS["instructions"]
    if registers:
        for r in REGISTERS:
            s = s.append(pa.field(r, pa.uint16() if r in _U16 else pa.uint32()))
    return s


class TraceError(ValueError):
    """A trace that cannot be read or written: one line, fit for `aero: ...` and exit status 2."""


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
class _TableWriter:
    """Buffers one table's columns (numpy arrays) and writes a row group per ``chunk_rows``."""

    def __init__(self, path: str, schema: pa.Schema, chunk_rows: int, table: str = ""):
        self.table = table
        self.path = path
        self.schema = schema
        self.chunk_rows = chunk_rows
        self.parts: dict[str, list] = {f.name: [] for f in schema}
        self.pending = 0
        self.rows = 0
        self.chunks: list[dict] = []
        self.writer = None

    def _open(self):
        names = self.schema.names
        # counts, addresses and values run in sequences: delta encoding (then zstd) stores them
        # in a fraction of a byte each where a dictionary would need several
        plain = [n for n in names if n in DELTA_COLUMNS and self.table in DELTA_TABLES]
        dictionary = [n for n in names if n not in plain and n != "bytes"]
        self.writer = pq.ParquetWriter(
            self.path, self.schema, compression="zstd", compression_level=3,
            use_dictionary=dictionary,
            column_encoding={n: "DELTA_BINARY_PACKED" for n in plain},
            write_statistics=True, write_page_index=True)

    def add(self, cols: dict) -> None:
        n = None
        for name, parts in self.parts.items():
            a = cols[name]
            parts.append(a)
            n = len(a)
        self.pending += n or 0
        while self.pending >= self.chunk_rows:
            self._write(self.chunk_rows)

    def _write(self, n: int) -> None:
        if self.writer is None:
            self._open()
        arrays = []
        for f in self.schema:
            parts = self.parts[f.name]
            if len(parts) == 1 and len(parts[0]) == n:
                col, rest = parts[0], None
            else:
                joined = _concat(parts)
                col, rest = joined[:n], joined[n:]
            self.parts[f.name] = [] if rest is None or len(rest) == 0 else [rest]
            arrays.append(_arrow(col, f.type))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.writer.write_table(table, row_group_size=n)
        chunk = {"rows": n}
        if "icount" in self.schema.names and n:
            ic = arrays[self.schema.names.index("icount")]
            chunk["icount_min"] = int(pac.min(ic).as_py())
            chunk["icount_max"] = int(pac.max(ic).as_py())
        self.chunks.append(chunk)
        self.rows += n
        self.pending -= n

    def close(self) -> None:
        if self.pending:
            self._write(self.pending)
        if self.writer is None:                       # an empty table still gets its file
            self._open()
        self.writer.close()
        self.writer = None


def _concat(parts):
    if not parts:
        return np.zeros(0)
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    out = []
    for p in parts:
        out.extend(p)
    return out


def _arrow(col, typ):
    if isinstance(col, np.ndarray):
        return pa.array(col.astype(typ.to_pandas_dtype(), copy=False), type=typ)
    return pa.array(col, type=typ)


class TraceWriter:
    """Writes a trace directory.  ``add(table, columns)`` appends rows (numpy arrays, or lists for
    the string and binary columns); ``close(extra)`` completes it and moves it into place."""

    def __init__(self, path: str, header: dict, registers: bool = False,
                 chunk_rows: int = CHUNK_ROWS):
        self.path = os.path.abspath(path)
        check_output_path(self.path)
        self.tmp = f"{self.path}.tmp-{os.getpid()}"
        if os.path.exists(self.tmp):
            shutil.rmtree(self.tmp)
        try:
            os.mkdir(self.tmp)
        except OSError as e:
            raise TraceError(f"cannot create {self.tmp}: {e.strerror}") from None
        self.header = dict(header)
        self.registers = registers
        self.tables = {}
        for name in TABLES:
            schema = instruction_schema(registers) if name == "instructions" else SCHEMAS[name]
            self.tables[name] = _TableWriter(os.path.join(self.tmp, f"{name}.parquet"), schema,
                                             chunk_rows, name)

    def add(self, table: str, cols: dict) -> None:
        self.tables[table].add(cols)

    def rows(self, table: str) -> int:
        t = self.tables[table]
        return t.rows + t.pending

    def close(self, extra: dict | None = None) -> dict:
        for t in self.tables.values():
            t.close()
        index = {"format": FORMAT, "version": VERSION, **self.header, **(extra or {}),
                 "registers": self.registers,
                 "tables": {name: {"file": f"{name}.parquet", "rows": t.rows,
                                   "chunks": t.chunks}
                            for name, t in self.tables.items()}}
        with open(os.path.join(self.tmp, INDEX), "w") as f:
            json.dump(index, f, indent=1)
            f.write("\n")
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)
        os.rename(self.tmp, self.path)
        return index

    def abandon(self) -> None:
        for t in self.tables.values():
            if t.writer is not None:
                try:
                    t.writer.close()
                except Exception:           # noqa: BLE001 (a failed write; the files go anyway)
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_output_path(path: str) -> None:
    """A trace may be written at ``path``: its directory exists, and nothing but an earlier trace
    is there (which is replaced).  TraceError otherwise."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise TraceError(f"directory {d} does not exist (for the trace {path})")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise TraceError(f"{path} exists and is not a trace directory (it would be replaced)")
        if os.listdir(path) and not os.path.isfile(os.path.join(path, INDEX)):
            raise TraceError(f"{path} is a directory that holds no trace (it would be replaced)")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def is_trace(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, INDEX))


class TraceFile:
    """A trace directory opened for reading.  ``header`` is its index (``trace.json``)."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.exists(path):
            raise TraceError(f"no such trace: {path}")
        if not os.path.isdir(path):
            raise TraceError(f"{path} is not a trace (a trace is a directory written by "
                             "'aero trace record')")
        ipath = os.path.join(path, INDEX)
        if not os.path.isfile(ipath):
            raise TraceError(f"{path} is not a trace: it has no {INDEX}")
        try:
            with open(ipath, encoding="utf-8") as f:
                h = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TraceError(f"{path}: unreadable {INDEX}: {e}") from None
        if not isinstance(h, dict) or h.get("format") != FORMAT:
            raise TraceError(f"{path}: {INDEX} does not describe an Aero trace")
        if h.get("version") != VERSION:
            raise TraceError(f"{path}: trace format version {h.get('version')!r}; this Aero "
                             f"reads version {VERSION}")
        self.header = h
        self._files: dict[str, pq.ParquetFile] = {}
        for name in ("instructions",):
            self._file(name)

    # -- facts ------------------------------------------------------------------------------------
    @property
    def first(self) -> int:
        """The icount of the first instruction traced."""
        return int(self.header["first"])

    @property
    def end(self) -> int:
        """One past the icount of the last instruction traced."""
        return int(self.header["end"])

    @property
    def has_registers(self) -> bool:
        return bool(self.header.get("registers"))

    @property
    def has_memory(self) -> bool:
        return bool(self.header.get("capture", {}).get("memory"))

    def rows(self, table: str) -> int:
        return int(self.header["tables"][table]["rows"])

    # -- access -----------------------------------------------------------------------------------
    def _file(self, table: str) -> pq.ParquetFile:
        f = self._files.get(table)
        if f is None:
            meta = self.header.get("tables", {}).get(table)
            if meta is None:
                raise TraceError(f"{self.path}: the index lists no {table} table")
            p = os.path.join(self.path, meta["file"])
            try:
                f = pq.ParquetFile(p)
            except FileNotFoundError:
                raise TraceError(f"{self.path}: {meta['file']} is missing") from None
            except (OSError, pa.ArrowException) as e:
                raise TraceError(f"{self.path}: {meta['file']} is damaged ({_one_line(e)})") \
                    from None
            if f.metadata.num_rows != meta["rows"]:
                raise TraceError(f"{self.path}: {meta['file']} holds {f.metadata.num_rows} rows; "
                                 f"the index says {meta['rows']}")
            self._files[table] = f
        return f

    def columns(self, table: str) -> list[str]:
        return self._file(table).schema_arrow.names

    def _groups(self, table: str, lo: int | None, hi: int | None) -> list[int]:
        chunks = self.header["tables"][table]["chunks"]
        out = []
        for i, c in enumerate(chunks):
            if not c["rows"]:
                continue
            if lo is not None and "icount_max" in c and c["icount_max"] < lo:
                continue
            if hi is not None and "icount_min" in c and c["icount_min"] >= hi:
                continue
            out.append(i)
        return out

    def read(self, table: str, columns=None, lo: int | None = None,
             hi: int | None = None) -> pa.Table:
        """Rows of ``table`` (only ``columns``), those with ``lo <= icount < hi`` when given; only
        the chunks that can hold them are read."""
        f = self._file(table)
        cols = None if columns is None else list(columns)
        need = cols
        if cols is not None and (lo is not None or hi is not None) and "icount" not in cols:
            need = cols + ["icount"]
        groups = self._groups(table, lo, hi)
        try:
            t = f.read_row_groups(groups, columns=need) if groups else \
                f.schema_arrow.empty_table().select(need or f.schema_arrow.names)
        except (OSError, pa.ArrowException) as e:
            raise TraceError(f"{self.path}: {table}.parquet is damaged ({_one_line(e)})") \
                from None
        if lo is not None or hi is not None:
            ic = t.column("icount")
            mask = None
            if lo is not None:
                mask = pac.greater_equal(ic, pa.scalar(lo, pa.uint64()))
            if hi is not None:
                m2 = pac.less(ic, pa.scalar(hi, pa.uint64()))
                mask = m2 if mask is None else pac.and_(mask, m2)
            t = t.filter(mask)
            if need is not cols:
                t = t.select(cols)
        return t

    def iter_chunks(self, table: str, columns=None):
        """The table chunk by chunk (one Parquet row group each), as pyarrow Tables."""
        f = self._file(table)
        for i in range(f.num_row_groups):
            try:
                yield f.read_row_group(i, columns=columns)
            except (OSError, pa.ArrowException) as e:
                raise TraceError(f"{self.path}: {table}.parquet is damaged ({_one_line(e)})") \
                    from None

    def arrays(self, table: str, columns=None, lo=None, hi=None) -> dict:
        """Like ``read``, as numpy arrays (strings and bytes as Python lists)."""
        t = self.read(table, columns, lo, hi)
        out = {}
        for name in t.column_names:
            col = t.column(name)
            if pa.types.is_string(col.type) or pa.types.is_binary(col.type) or col.null_count:
                out[name] = col.to_pylist()
            else:
                out[name] = col.to_numpy()
        return out

    def code(self) -> "CodeMap":
        return CodeMap(self.arrays("code"))

    def close(self) -> None:
        self._files.clear()


class CodeMap:
    """The bytes of the instructions a trace ran, for disassembly: ``at(pc, icount)`` is the
    (bytes, code32) decoded at ``pc`` most recently before ``icount``."""

    def __init__(self, cols: dict):
        self.by_pc: dict[int, list] = {}
        for pc, c32, raw, ic in zip(cols.get("pc", ()), cols.get("code32", ()),
                                    cols.get("bytes", ()), cols.get("icount", ())):
            self.by_pc.setdefault(int(pc), []).append((int(ic), bytes(raw), bool(c32)))
        for lst in self.by_pc.values():
            lst.sort(key=lambda e: e[0])

    def at(self, pc: int, icount: int | None = None):
        lst = self.by_pc.get(int(pc))
        if not lst:
            return None
        best = lst[0]
        if icount is not None:
            for e in lst:
                if e[0] <= icount:
                    best = e
                else:
                    break
        return best[1], best[2]

    def disasm(self, pc: int, eip: int | None = None, icount: int | None = None) -> str:
        """The instruction at ``pc`` as text ("??" when its bytes were not captured)."""
        from ..cpu.disasm import disasm_bytes             # noqa: PLC0415
        got = self.at(pc, icount)
        if got is None:
            return "??"
        raw, c32 = got
        try:
            return disasm_bytes(raw, pc if eip is None else eip, c32)[1]
        except Exception:               # noqa: BLE001 (bytes that no longer decode)
            return "(bad) " + raw.hex(" ")


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
