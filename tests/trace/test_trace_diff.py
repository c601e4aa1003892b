"""`aero trace diff`: an Aero trace against a real QEMU log of the same guest agrees instruction by
instruction (PC and every register); a CPU bug planted in a test build (a flag computed wrong) is
reported at exactly the instruction that computed it, against QEMU and against a good Aero trace;
QEMU logs are parsed as QEMU 7.2 writes them; bad input is one line and exit status 2.

The guest (tests/trace/guests/diffguest.asm) runs from the reset vector with interrupts off and no
device but isa-debug-exit, in real mode, protected mode and with paging, so that the whole run is
comparable: QEMU's firmware is not involved."""

import os
import shutil
import subprocess

import pytest

from aero.cli import main
from aero.cpu import flags as F
from aero.debug.symbols import SymbolTable
from aero.trace.qemulog import read_qemu_log
from aero.trace.tracediff import DiffOptions, diff_paths

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guests", "diffguest.bin")
GUEST_MAP = os.path.join(HERE, "guests", "diffguest.map")
QEMU = shutil.which("qemu-system-i386")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not found")


def symbol(name):
    st = SymbolTable()
    st.load(GUEST_MAP)
    return st.lookup(name)


def record(path, *extra):
    code = main(["trace", "record", str(path), "--bios", GUEST, "--registers", "--headless",
                 "--serial", "none", "--max-instructions", "200000", *extra])
    assert code == 1, "the guest exits through isa-debug-exit with 0: status 1"
    return str(path)


def qemu_log(path):
    """qemu-system-i386 running the guest with one instruction per block, every block logged
    with the registers before it (QEMU 7.2: -singlestep; later versions: -one-insn-per-tb)."""
    r = subprocess.run([QEMU, "-accel", "tcg", "-singlestep", "-d", "exec,cpu,nochain",
                        "-D", str(path), "-bios", GUEST, "-display", "none", "-nodefaults",
                        "-m", "32", "-device", "isa-debug-exit,iobase=0x501,iosize=2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 1, r.stderr.decode(errors="replace")[-2000:]
    return str(path)


def planted_bug(monkeypatch):
    """A CPU bug: SUB/CMP of 0x1234 with itself reports CF=1 (it must be 0)."""
    real = F.arith

    def buggy(lf):
        f = real(lf)
        kind, a, b, _ = lf
        if kind // 3 == 1 and a == b == 0x1234:
            f |= F.CF
        return f
    monkeypatch.setattr(F, "arith", buggy)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("diff")
    return {"dir": d, "good": record(d / "good.trace")}


@pytest.fixture(scope="module")
def qlog(work):
    if QEMU is None:
        pytest.skip("qemu-system-i386 not found")
    return qemu_log(work["dir"] / "qemu.log")


@pytest.fixture(scope="module")
def bad(work):
    mp = pytest.MonkeyPatch()
    try:
        planted_bug(mp)
        return record(work["dir"] / "bad.trace")
    finally:
        mp.undo()


@needs_qemu
def test_aero_and_qemu_agree_on_every_instruction(work, qlog, capsys):
    q = read_qemu_log(qlog)
    assert q.registers and len(q) > 6000
    r = diff_paths(work["good"], qlog)
    assert r.same, r.report()
    assert r.steps == len(q)
    assert set(r.compared_registers) >= {"eax", "ebx", "ecx", "edx", "esi", "edi", "ebp",
                                         "esp", "eip", "eflags", "cs", "ds", "ss", "cr0",
                                         "cr3", "cr4"}
    assert main(["trace", "diff", work["good"], qlog]) == 0
    out = capsys.readouterr().out
    assert "no divergence" in out and f"compared {len(q):,} instructions" in out


@needs_qemu
def test_planted_flag_bug_is_reported_at_its_instruction_against_qemu(work, qlog, bad, capsys):
    planted = symbol("planted")
    r = diff_paths(bad, qlog)
    assert not r.same and r.what == "registers" and r.registers == ["eflags"]
    d = r.as_dict()
    assert d["producer_pc"] == planted
    assert "cmp ax, bx" in d["producer"]
    # the state after the planted CMP: CF set on the Aero side only
    a_fl, b_fl = (int(s.cols["eflags"][s.offset + r.step]) for s in (r.a, r.b))
    assert a_fl ^ b_fl == F.CF
    assert main(["trace", "diff", bad, qlog]) == 1
    out = capsys.readouterr().out
    assert f"{planted:#010x}  cmp ax, bx" in out
    assert "differs in eflags" in out


def test_planted_bug_against_a_good_aero_trace(work, bad):
    r = diff_paths(work["good"], bad)
    assert not r.same and r.what == "registers"
    assert r.as_dict()["producer_pc"] == symbol("planted")
    # the icount of the first execution of `planted` in the good trace
    import pyarrow.parquet as pq
    t = pq.read_table(os.path.join(work["good"], "instructions.parquet"), columns=["pc"])
    first = t.column("pc").to_pylist().index(symbol("planted"))
    assert r.step - 1 == first


def test_two_runs_agree_and_memory_is_compared(work, tmp_path):
    again = record(tmp_path / "again.trace")
    r = diff_paths(work["good"], again)
    assert r.same and r.steps > 6000
    assert "memory accesses" in r.report()


def test_a_wrong_memory_value_is_found(work, tmp_path, monkeypatch):
    """A bug that only changes a value written to memory (PUSHF pushing a wrong CF) shows as a
    memory divergence at the PUSHF when registers are not compared."""
    planted_bug(monkeypatch)
    bad2 = record(tmp_path / "bad2.trace")
    opts = DiffOptions(ignore={"eflags"})
    r = diff_paths(work["good"], bad2, opts)
    assert not r.same and r.what == "memory"
    assert r.a.describe(r.step).endswith("pushf")


def test_from_pc_and_limits(work):
    pm = symbol("pm32")
    r = diff_paths(work["good"], work["good"], DiffOptions(from_pc=pm, skip_b=1, max_steps=50))
    assert not r.same and r.step == 0 and r.what == "pc"
    r = diff_paths(work["good"], work["good"], DiffOptions(from_pc=pm, max_steps=50))
    assert r.same and r.steps == 50
    assert r.a.label(0) == r.b.label(0)


def test_one_trace_shorter(work, tmp_path):
    short = str(tmp_path / "short.trace")
    assert main(["trace", "record", short, "--bios", GUEST, "--registers", "--headless",
                 "--serial", "none", "--to", "1000"]) == 0
    r = diff_paths(work["good"], short)
    assert not r.same and r.what == "length" and r.step == 1000
    assert "goes on with" in r.report()


QEMU_SAMPLE = """\
Trace 0: 0x7fdd58000100 [ffff0000/fffffff0/00000040/ff000201] 
EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000663
ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000
EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0000 00000000 0000ffff 00009300
CS =f000 ffff0000 0000ffff 00009b00
SS =0000 00000000 0000ffff 00009300
DS =0000 00000000 0000ffff 00009300
FS =0000 00000000 0000ffff 00009300
GS =0000 00000000 0000ffff 00009300
LDT=0000 00000000 0000ffff 00008200
TR =0000 00000000 0000ffff 00008b00
GDT=     00000000 0000ffff
IDT=     00000000 0000ffff
CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000
DR0=00000000 DR1=00000000 DR2=00000000 DR3=00000000 
DR6=ffff0ff0 DR7=00000400
CCS=00000000 CCD=00000000 CCO=EFLAGS
EFER=0000000000000000
Servicing hardware INT=0x08
Trace 0: 0x7fdd58000240 [000f0000/000f0003/00000040/ff000201] 
EAX=00001234 EBX=00000000 ECX=00000005 EDX=00000663
ESI=00000000 EDI=00000000 EBP=00000000 ESP=00006ffe
EIP=00000003 EFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0000 00000000 0000ffff 00009300
CS =f000 000f0000 0000ffff 00009b00
SS =0000 00000000 0000ffff 00009300
DS =0040 00000400 0000ffff 00009300
FS =0000 00000000 0000ffff 00009300
GS =0000 00000000 0000ffff 00009300
LDT=0000 00000000 0000ffff 00008200
TR =0000 00000000 0000ffff 00008b00
GDT=     00000000 0000ffff
IDT=     00000000 0000ffff
CR0=60000011 CR2=00000000 CR3=00001000 CR4=00000010
"""


def test_qemu_log_parser(tmp_path):
    p = tmp_path / "q.log"
    p.write_text(QEMU_SAMPLE)
    q = read_qemu_log(str(p))
    c = q.columns
    assert len(q) == 2 and q.registers
    assert c["pc"].tolist() == [0xFFFFFFF0, 0xF0003]
    assert c["eip"].tolist() == [0xFFF0, 3]
    assert c["eax"].tolist() == [0, 0x1234] and c["ecx"].tolist() == [0, 5]
    assert c["edx"].tolist() == [0x663, 0x663] and c["esp"].tolist() == [0, 0x6FFE]
    assert c["eflags"].tolist() == [2, 0x46]
    assert c["cs"].tolist() == [0xF000, 0xF000] and c["ds"].tolist() == [0, 0x40]
    assert c["cr0"].tolist() == [0x60000010, 0x60000011] and c["cr3"].tolist() == [0, 0x1000]
    assert c["cr4"].tolist() == [0, 0x10]
    # the gzip-compressed log reads the same; a PC-only log (-d exec) gives PCs alone
    import gzip
    gz = tmp_path / "q.log.gz"
    gz.write_bytes(gzip.compress(QEMU_SAMPLE.encode()))
    assert read_qemu_log(str(gz)).columns["pc"].tolist() == c["pc"].tolist()
    pcs_only = tmp_path / "exec.log"
    pcs_only.write_text("".join(l + "\n" for l in QEMU_SAMPLE.splitlines()
                                if l.startswith("Trace")))
    e = read_qemu_log(str(pcs_only))
    assert not e.registers and set(e.columns) == {"pc"}


def test_bad_inputs_are_one_line_and_status_2(work, tmp_path, capsys):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    for args in (["trace", "diff", work["good"], str(junk)],
                 ["trace", "diff", work["good"], str(tmp_path / "missing")],
                 ["trace", "diff", str(empty_dir), work["good"]],
                 ["trace", "diff", work["good"], work["good"], "--from-pc", "0x12345678"],
                 ["trace", "diff", work["good"], work["good"], "--from-pc", "nowhere"],
                 ["trace", "diff", work["good"], work["good"], "--eflags-mask", "zz"],
                 ["trace", "diff", work["good"], work["good"], "--max", "0"]):
        try:
            code = main(args)
        except SystemExit as e:
            code = e.code
        assert code == 2, args
        err = capsys.readouterr().err
        assert err.startswith("aero: ") and err.count("\n") == 1, (args, err)


RESET_GUEST = os.path.join(HERE, "guests", "resetguest.bin")


def test_counts_go_on_across_machine_resets(tmp_path):
    """Two triple faults reset the machine; the instruction count runs on across them, each
    reset is an event, and QEMU's log, which goes on too, still lines up."""
    p = str(tmp_path / "reset.trace")
    assert main(["trace", "record", p, "--bios", RESET_GUEST, "--registers", "--headless",
                 "--serial", "none", "--max-instructions", "10000"]) == 1
    from aero.trace.tracefile import TraceFile
    tf = TraceFile(p)
    ins = tf.arrays("instructions")
    assert ins["icount"].tolist() == list(range(tf.end))
    assert [pc for pc in ins["pc"].tolist()].count(0xFFFFFFF0) == 3
    ev = tf.read("events").to_pylist()
    resets = [e["icount"] for e in ev if e["kind"] == "reset"]
    assert len(resets) == 2 and tf.header["totals"]["resets"] == 2
    assert all(ins["pc"][ic] == 0xFFFFFFF0 for ic in resets)
    assert [e["kind"] for e in ev if e["icount"] == resets[0]] == \
        ["soft", "fault", "fault", "shutdown", "reset"]
    if QEMU is not None:
        log = tmp_path / "reset.log"
        r = subprocess.run([QEMU, "-accel", "tcg", "-singlestep", "-d", "exec,cpu,nochain",
                            "-D", str(log), "-bios", RESET_GUEST, "-display", "none",
                            "-nodefaults", "-m", "32",
                            "-device", "isa-debug-exit,iobase=0x501,iosize=2"],
                           capture_output=True, timeout=60)
        assert r.returncode == 1
        d = diff_paths(p, str(log))
        assert d.same and d.steps == tf.end, d.report()


@pytest.mark.parametrize("name", ["diffguest", "resetguest"])
def test_guests_rebuild_identically(tmp_path, name):
    if shutil.which("nasm") is None:
        pytest.skip("nasm not found")
    shutil.copy(os.path.join(HERE, "guests", name + ".asm"), tmp_path / (name + ".asm"))
    subprocess.run(["nasm", "-f", "bin", "-o", name + ".bin", name + ".asm"],
                   cwd=tmp_path, check=True)
    assert (tmp_path / (name + ".bin")).read_bytes() == \
        open(os.path.join(HERE, "guests", name + ".bin"), "rb").read()
    if name == "diffguest":
        assert (tmp_path / "diffguest.map").read_text() == open(GUEST_MAP).read()
