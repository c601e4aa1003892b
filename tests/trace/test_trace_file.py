"""Trace files (aero trace record, aero.trace.tracefile): Parquet tables that pyarrow reads
directly, chunked with an index, compressed; --from/--to, --no-memory, --registers; the reader;
bad output paths, options and damaged traces are one line and exit status 2."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from aero.cli import main
from aero.trace.tracefile import REGISTERS, TraceError, TraceFile

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guests", "diffguest.bin")


def record(path, *extra):
    return main(["trace", "record", str(path), "--bios", GUEST, "--headless", "--serial", "none",
                 *extra])


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    p = tmp_path_factory.mktemp("file") / "g.trace"
    assert record(p, "--chunk-rows", "1000") == 1          # the guest's exit status
    return str(p)


def test_tables_read_directly_with_pyarrow(chunked):
    index = json.load(open(os.path.join(chunked, "trace.json")))
    assert index["format"] == "aero-trace" and index["version"] == 1
    assert index["first"] == 0 and index["end"] > 6000
    assert index["status"] == "debug-exit" and index["exit_code"] == 1
    ins = pq.read_table(os.path.join(chunked, "instructions.parquet"))
    assert ins.column_names == ["icount", "pc", "cs", "length"]
    assert str(ins.schema.field("pc").type) == "uint32"
    ic = ins.column("icount").to_numpy()
    assert (ic == np.arange(index["end"])).all()
    assert ins.column("pc").to_pylist()[:2] == [0xFFFFFFF0, 0xF0000]     # reset vector, start
    mem = pq.read_table(os.path.join(chunked, "memory.parquet"))
    assert mem.column_names == ["icount", "address", "size", "value", "write", "system"]
    assert mem.num_rows == index["totals"]["memory"] > 1000
    ev = pq.read_table(os.path.join(chunked, "events.parquet")).to_pylist()
    assert {"soft", "fault", "mode", "cr3"} <= {e["kind"] for e in ev}
    io = pq.read_table(os.path.join(chunked, "io.parquet")).to_pylist()
    assert io == [{"icount": index["end"] - 1, "port": 0x501, "size": 1, "value": 0,
                   "write": True}]
    code = pq.read_table(os.path.join(chunked, "code.parquet"))
    assert code.num_rows > 50
    # a filter on icount skips the chunks it excludes (Parquet statistics)
    t = pq.read_table(os.path.join(chunked, "instructions.parquet"),
                      filters=[("icount", ">=", 2500), ("icount", "<", 2600)])
    assert t.column("icount").to_pylist() == list(range(2500, 2600))


def test_chunks_index_and_encoding(chunked):
    index = json.load(open(os.path.join(chunked, "trace.json")))
    for name, meta in index["tables"].items():
        f = pq.ParquetFile(os.path.join(chunked, meta["file"]))
        assert f.metadata.num_rows == meta["rows"]
        assert f.num_row_groups == max(1, len(meta["chunks"])) or meta["rows"] == 0
        assert sum(c["rows"] for c in meta["chunks"]) == meta["rows"]
        assert all(c["rows"] <= 1000 for c in meta["chunks"])
        col = f.metadata.row_group(0).column(0)
        assert col.compression == "ZSTD"
    chunks = index["tables"]["instructions"]["chunks"]
    assert len(chunks) == -(-index["end"] // 1000)
    for a, b in zip(chunks, chunks[1:]):
        assert b["icount_min"] == a["icount_max"] + 1
    f = pq.ParquetFile(os.path.join(chunked, "instructions.parquet"))
    assert "DELTA_BINARY_PACKED" in f.metadata.row_group(0).column(0).encodings


def test_reader_reads_only_the_chunks_it_needs(chunked):
    tf = TraceFile(chunked)
    assert tf._groups("instructions", 2500, 2600) == [2]
    t = tf.read("instructions", ["pc"], 2500, 2600)
    assert t.num_rows == 100 and t.column_names == ["pc"]
    whole = pq.read_table(os.path.join(chunked, "instructions.parquet")).column("pc")
    assert t.column("pc").to_pylist() == whole.to_pylist()[2500:2600]
    m = tf.arrays("memory", ["icount", "address"], 3000, 4000)
    assert ((m["icount"] >= 3000) & (m["icount"] < 4000)).all()


def test_from_to_registers_and_no_memory(chunked, tmp_path):
    p = tmp_path / "part.trace"
    assert record(p, "--from", "1000", "--to", "3000", "--registers", "--no-memory") == 0
    tf = TraceFile(str(p))
    assert (tf.first, tf.end) == (1000, 3000) and tf.has_registers and not tf.has_memory
    part = tf.arrays("instructions")
    assert part["icount"].tolist() == list(range(1000, 3000))
    assert set(REGISTERS) <= set(part)
    full = TraceFile(chunked).arrays("instructions", ["pc"], 1000, 3000)
    assert part["pc"].tolist() == full["pc"].tolist()
    assert tf.rows("memory") == 0
    # EIP + CS base is the PC (real mode here: base = CS * 16)
    real = part["cr0"] & 1 == 0
    assert ((part["eip"][real] + (part["cs"][real].astype(np.int64) << 4)) ==
            part["pc"][real]).all()


def test_info(chunked, capsys):
    assert main(["trace", "info", chunked]) == 0
    out = capsys.readouterr().out
    assert "instructions 0 to" in out and "bytes per instruction" in out
    assert main(["trace", "info", chunked, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "aero-trace"


def test_recording_replaces_a_trace_but_nothing_else(chunked, tmp_path, capsys):
    p = tmp_path / "again.trace"
    assert record(p, "--to", "100") == 0
    assert record(p, "--to", "200") == 0
    assert TraceFile(str(p)).end == 200
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    capsys.readouterr()


def _one_line_2(args, capsys):
    try:
        code = main(args)
    except SystemExit as e:                 # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert err.startswith("aero: ") and err.count("\n") == 1, (args, err)
    return err


def test_bad_record_options(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    d = tmp_path / "notatrace"
    d.mkdir()
    (d / "precious").write_text("x")
    t = str(tmp_path / "t.trace")
    for args in (["trace", "record", str(f), "--bios", GUEST],
                 ["trace", "record", str(d), "--bios", GUEST],
                 ["trace", "record", str(tmp_path / "no" / "t.trace"), "--bios", GUEST],
                 ["trace", "record", t, "--bios", GUEST, "--from", "10", "--to", "5"],
                 ["trace", "record", t, "--bios", GUEST, "--from", "-1"],
                 ["trace", "record", t, "--bios", GUEST, "--chunk-rows", "0"],
                 ["trace", "record", t, "--bios", GUEST, "--gdb", "1234"],
                 ["trace", "record", t, "--bios", str(tmp_path / "missing.bin")],
                 ["trace", "record", t, "--bios", GUEST, "--from", "10000000", "--headless",
                  "--serial", "none"],
                 ["trace", "record", t, "--bogus"],
                 ["trace"]):
        _one_line_2(args, capsys)
    assert (d / "precious").read_text() == "x" and f.read_text() == "x"
    assert not os.path.exists(t)


def test_damaged_traces(chunked, tmp_path, capsys):
    import shutil
    bad = tmp_path / "bad.trace"
    shutil.copytree(chunked, bad)
    ins = bad / "instructions.parquet"
    ins.write_bytes(ins.read_bytes()[:-100])
    assert "damaged" in _one_line_2(["trace", "info", str(bad)], capsys)
    shutil.rmtree(bad)
    shutil.copytree(chunked, bad)
    idx = json.load(open(bad / "trace.json"))
    idx["version"] = 99
    (bad / "trace.json").write_text(json.dumps(idx))
    assert "version 99" in _one_line_2(["trace", "info", str(bad)], capsys)
    (bad / "trace.json").write_text("{not json")
    _one_line_2(["trace", "query", str(bad), "hot"], capsys)
    os.remove(bad / "trace.json")
    _one_line_2(["trace", "export", str(bad), "tenet", "-o", str(tmp_path / "x")], capsys)
    _one_line_2(["trace", "info", str(tmp_path / "missing.trace")], capsys)
    f = tmp_path / "plain.txt"
    f.write_text("x")
    _one_line_2(["trace", "info", str(f)], capsys)
    with pytest.raises(TraceError):
        TraceFile(str(f))


def test_bench_measures_a_workload(tmp_path):
    """The benchmark's measuring code on a small workload (figures are printed, not tested)."""
    from aero.build import build_machine
    from aero.config import MachineConfig
    from aero.trace.tracebench import measure
    lines = []
    f = measure("guest", lambda: build_machine(MachineConfig(bios=GUEST)),
                lambda m: m.run().icount, str(tmp_path), progress=lines.append, rounds=1)
    assert set(f) == {"plain", "instructions", "full"}
    assert f["plain"]["instructions"] == f["full"]["instructions"] > 6000
    assert f["full"]["bytes_per_instruction"] > f["instructions"]["bytes_per_instruction"] > 0
    assert f["full"]["unattributed"] == 0
    assert len(lines) == 1 and "guest" in lines[0]
