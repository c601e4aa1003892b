"""The gdb remote stub (aero/debug/gdbstub.py): Debian's gdb in batch mode against it, and the
protocol itself through a raw socket (checksums, malformed and overlong packets, paging of the
target description, Ctrl-C, disconnects, a second client, detach and kill)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from aero import scenarios
from aero.build import build_machine
from aero.config import MachineConfig
from aero.debug import gdbstub as G
from aero.debug.debugger import Debugger

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_ASM = os.path.join(HERE, "gdb", "guest.asm")
GUEST_BIN = os.path.join(HERE, "gdb", "guest.bin")
GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed (Debian: gdb)")
HELLO = open(os.path.join(scenarios.SCENARIOS, "hello", "hello.bin"), "rb").read()


# ----------------------------------------------------------------------------------------------
# Machines and servers
# ----------------------------------------------------------------------------------------------
def scenario_machine(tmp_path, name, **settings):
    os.makedirs(tmp_path, exist_ok=True)
    out = bytearray()
    m = scenarios.build(scenarios.load(name), str(tmp_path), serial=out.append, **settings)
    return m, out


def guest_machine(tmp_path):
    """The tests' own guest (tests/debug/gdb/guest.asm) on a 1.44 MB floppy."""
    data = open(GUEST_BIN, "rb").read()
    img = tmp_path / "guest.img"
    img.write_bytes(data + bytes(scenarios.FLOPPY_SIZE - len(data)))
    return build_machine(MachineConfig(fda=str(img)))


@pytest.fixture
def servers():
    made = []

    def start(machine, wait=True, **kw):
        dbg = machine if isinstance(machine, Debugger) else Debugger(machine)
        srv = G.GdbServer(dbg, "127.0.0.1:0", wait=wait, **kw).start()
        made.append(srv)
        return srv
    yield start
    for srv in made:
        srv.close()


def gdb(port, *commands, arch="i8086", timeout=90):
    """gdb -batch against the stub; its stdout and stderr."""
    args = [GDB, "-nx", "-batch", "-ex", "set osabi none", "-ex", f"set architecture {arch}",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p.stdout + p.stderr


# ----------------------------------------------------------------------------------------------
# A raw protocol client
# ----------------------------------------------------------------------------------------------
class Client:
    def __init__(self, port, ack=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.acks = []              # '+'/'-' the stub sent
        self.console = []           # text of O packets
        self.ack = ack

    def close(self):
        self.sock.close()

    def raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        self.raw(G.frame(payload))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the stub closed the connection")
        self.buf += data

    def read_byte_ack(self):
        while not self.buf:
            self._fill()
        c, self.buf = self.buf[:1], self.buf[1:]
        return c

    def read(self) -> bytes:
        """The next packet's payload (acks recorded, O packets collected, checksums checked)."""
        while True:
            while self.buf[:1] in (b"+", b"-"):
                self.acks.append(self.buf[:1])
                self.buf = self.buf[1:]
            m = re.match(rb"\$([^#]*)#([0-9a-f]{2})", self.buf, re.S)
            if not m:
                self._fill()
                continue
            self.buf = self.buf[m.end():]
            payload = m.group(1)
            assert int(m.group(2), 16) == G.checksum(payload)
            if self.ack:
                self.raw(b"+")
            if payload[:1] == b"O" and payload != b"OK":
                self.console.append(bytes.fromhex(payload[1:].decode()).decode())
                continue
            return payload

    def ask(self, payload) -> bytes:
        self.send(payload)
        return self.read()

    def ask_str(self, payload) -> str:
        return self.ask(payload).decode()

    def reg(self, n) -> int:
        return int.from_bytes(bytes.fromhex(self.ask_str(f"p{n:x}")), "little")


def stop_fields(reply: bytes) -> dict:
    text = reply.decode()
    assert text[0] == "T", text
    out = {"signal": int(text[1:3], 16)}
    for part in text[3:].split(";"):
        if part:
            k, _, v = part.partition(":")
            out[k] = v
    return out


def wait_for(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ----------------------------------------------------------------------------------------------
# gdb itself
# ----------------------------------------------------------------------------------------------
@needs_gdb
def test_gdb_real_mode_breakpoint_registers_memory_stepi_monitor(tmp_path, servers):
    m, out = scenario_machine(tmp_path, "hello")
    srv = servers(m)
    text = gdb(srv.port, "break *0x7c00", "continue", "info registers", "x/4xb 0x7c00",
               "stepi", "x/i $pc", "monitor x/4i cs:eip", "monitor info gdt all",
               "monitor bogus", "p $eflags")
    assert "0xfffffff0 in ?? ()" in text                    # the reset vector, linear
    # gdb takes the target description without a word (the one warning: no program file)
    assert [w for w in re.findall(r"warning: .*", text)
            if not w.startswith("warning: No executable has been specified")] == []
    assert "i386.core" not in text and "XML" not in text
    assert "Breakpoint 1, 0x00007c00 in ?? ()" in text
    # the registers gdb shows are the machine's at 0x7c00 (a twin run, deterministic)
    twin, _ = scenario_machine(tmp_path / "twin", "hello")
    tdbg = Debugger(twin)
    tdbg.break_at(0x7c00)
    assert tdbg.cont().reason == "breakpoint"
    regs = dict(re.findall(r"^(\w+)\s+(0x[0-9a-f]+)\s", text, re.M))
    for name in ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eflags", "cs", "ss",
                 "ds", "es", "fs", "gs", "cr0", "cr3", "cr4"):
        assert int(regs[name], 16) == tdbg.reg(name), name
    assert int(regs["eip"], 16) == tdbg.pc() == 0x7c00
    assert re.search(r"0x7c00:\s+0x31\s+0xc0\s+0x8e\s+0xd8", text)
    assert HELLO[:4] == bytes((0x31, 0xc0, 0x8e, 0xd8))
    assert "0x00007c02 in ?? ()" in text                    # stepi over xor ax, ax
    assert re.search(r"=> 0x7c02:\s+mov\s+%eax,%ds", text)
    assert "=> 0000:7c02 (0x00007c02):  8ed8             mov ds, ax" in text  # monitor x/4i
    assert "mov dx, 0x3fb" in text
    assert "idx   sel   raw" in text                        # monitor info gdt all
    assert "error: unknown command 'bogus'" in text
    assert "[ PF ZF IF IOPL=0 ]" in text
    # gdb -batch detaches at the end: the machine runs on to its end
    assert srv.wait_finished(60).status == "debug-exit"
    assert srv.result.exit_code == 67
    assert bytes(out) == b"Hello from the boot sector\r\n"


@needs_gdb
def test_gdb_watchpoints_protected_mode_paging_and_kill(tmp_path, servers):
    m = guest_machine(tmp_path)
    srv = servers(m)
    text = gdb(srv.port,
               "break *0x7c00", "continue",
               "watch *(char*)0x600", "continue", "continue",
               "delete", "rwatch *(char*)0x600", "continue",
               "delete", "awatch *(char*)0x600", "continue", "continue",
               "delete", "break *0x7c80", "continue",
               "set architecture i386", "x/2i $pc", "info registers cr0 cs",
               "break *0x7d00", "continue",
               "watch *(unsigned int*)0x40000700", "continue",
               "x/xw 0x40000700", "monitor xp/1xw 0x700", "monitor info tlb",
               "kill")
    blocks = text.split("Hardware ")
    hits = [b for b in blocks if "Old value" in b or "Value =" in b]
    assert "watchpoint 2: *(char*)0x600\n\nOld value = 0 '\\000'\nNew value = 65 'A'\n" \
           "0x00007c0f in ?? ()" in hits[0]                # after mov byte [0x600], 'A'
    assert "Old value = 65 'A'\nNew value = 66 'B'\n0x00007c16 in ?? ()" in hits[1]
    assert "read watchpoint 3: *(char*)0x600\n\nValue = 67 'C'" in hits[2]
    assert "access (read/write) watchpoint 4: *(char*)0x600\n\nOld value = 67 'C'\n" \
           "New value = 68 'D'" in hits[3]
    assert "access (read/write) watchpoint 4: *(char*)0x600\n\nValue = 68 'D'\n" \
           "0x00007c1c in ?? ()" in hits[4]                 # mov bl, [0x600]: a read
    assert "Breakpoint 5, 0x00007c80 in ?? ()" in text
    assert re.search(r"=> 0x7c80:\s+mov\s+\$0x10,%ax", text)
    assert re.search(r"cr0\s+0x60000011\s+\[ PE ET NW CD \]", text)
    assert re.search(r"cs\s+0x8\s+8", text)
    assert "Old value = 0\nNew value = 3405705229\n0x00007d0b in ?? ()" in hits[5]
    assert re.search(r"0x40000700:\s+0xcafef00d", text)    # linear, through the alias
    assert "0x00000700: cafef00d" in text                   # physical, Aero's own x
    assert re.search(r"40000000\s+000000000\s+W D", text)   # the TLB entry of the alias
    assert "[Inferior 1 (Remote target) killed]" in text
    assert srv.wait_finished(10).status == "stop"
    assert srv.result.detail == "killed by gdb"
    assert not srv.dbg.points


@needs_gdb
def test_gdb_ctrl_c_interrupts_a_running_guest(tmp_path, servers):
    m, out = scenario_machine(tmp_path, "irq", keys="")
    srv = servers(m)
    args = [GDB, "-nx", "-batch", "-ex", "set osabi none", "-ex", "set architecture i8086",
            "-ex", f"target remote 127.0.0.1:{srv.port}", "-ex", "continue",
            "-ex", "info registers eip cs", "-ex", "p $pc == ($cs * 16 + $eip) - $cs * 16"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: srv.dbg.running.is_set() and m.cpu.icount > 20_000)
        p.send_signal(signal.SIGINT)
        text, _ = p.communicate(timeout=60)
    finally:
        p.kill()
    assert "Program received signal SIGINT, Interrupt." in text
    assert re.search(r"eip\s+0x7c[0-9a-f]{2}\s", text)       # in the boot sector's loop
    assert "[Inferior 1 (Remote target) detached]" in text   # -batch's end: detach
    assert wait_for(srv.dbg.running.is_set)                 # and the guest runs on
    assert bytes(out) == b"type> "


# ----------------------------------------------------------------------------------------------
# The protocol, byte by byte
# ----------------------------------------------------------------------------------------------
def test_qsupported_and_simple_queries(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    c = Client(servers(m).port)
    feats = c.ask_str("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386").split(";")
    assert set(feats) == {"PacketSize=4000", "qXfer:features:read+", "swbreak+", "hwbreak+",
                          "vContSupported+", "QStartNoAckMode+", "ReverseStep+",
                          "ReverseContinue+"}
    assert c.acks == [b"+"]
    t = stop_fields(c.ask("?"))
    assert t["signal"] == 5 and t["thread"] == "01"
    assert int.from_bytes(bytes.fromhex(t["08"]), "little") == 0xFFFFFFF0   # linear pc
    assert c.ask("qAttached") == b"1"
    assert c.ask("qC") == b"QC1"
    assert c.ask("qfThreadInfo") == b"m1"
    assert c.ask("qsThreadInfo") == b"l"
    assert c.ask("Hg0") == b"OK" and c.ask("Hc-1") == b"OK"
    assert c.ask("vMustReplyEmpty") == b""
    assert c.ask("vCont?") == b"vCont;c;C;s;S"
    assert c.ask("qFrobnicate") == b"" and c.ask("jUnknown:x") == b"" and c.ask("!") == b""
    assert c.ask("qSymbol::") == b"OK"


def test_target_description_paging_and_register_layout(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    c = Client(servers(m).port)
    doc = b""
    off = 0
    while True:
        r = c.ask(f"qXfer:features:read:target.xml:{off:x},40")
        assert r[:1] in (b"m", b"l")
        chunk = G.unescape(r[1:])
        assert len(chunk) <= 0x40
        doc += chunk
        off += len(chunk)
        if r[:1] == b"l":
            break
    assert doc == G.TARGET_XML
    assert c.ask(f"qXfer:features:read:target.xml:{len(doc) + 10:x},40") == b"l"
    assert c.ask("qXfer:features:read:other.xml:0,40") == b"E00"
    root = ET.fromstring(doc.split(b"\n", 2)[2])
    assert root.find("architecture").text == "i386"
    feats = {f.get("name"): [r.get("name") for r in f.findall("reg")]
             for f in root.findall("feature")}
    assert feats["org.gnu.gdb.i386.core"] == [
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags", "cs", "ss",
        "ds", "es", "fs", "gs", "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7",
        "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
    assert feats["org.aero.gdb.i386.sys"] == ["cr0", "cr2", "cr3", "cr4", "efer"]
    bits = [int(r.get("bitsize")) for f in root.findall("feature") for r in f.findall("reg")]
    g = c.ask("g")
    assert len(g) == sum(bits) // 4 == 2 * 196
    raw = bytes.fromhex(g.decode())
    off = 0
    for n, b in enumerate(bits):                            # p n agrees with g
        assert c.ask(f"p{n:x}") == raw[off:off + b // 8].hex().encode()
        off += b // 8
    assert c.ask(f"p{len(bits):x}") == b"E00"
    assert raw[16 * 4:16 * 4 + 80] == bytes(80)             # st0-st7: +0.0 after RESET
    fctrl = 16 * 4 + 80
    assert raw[fctrl:fctrl + 4] == b"\x40\x00\x00\x00"      # the RESET control word 0040h
    ftag = fctrl + 2 * 4
    assert raw[ftag:ftag + 4] == b"\x55\x55\x00\x00"        # every register tagged zero


def test_registers_read_and_write_with_a_linear_pc(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    cpu = m.cpu
    assert cpu.base[1] == 0xFFFF0000 and cpu.eip == 0xFFF0
    assert c.reg(8) == 0xFFFFFFF0
    assert c.ask("P8=00fbffff") == b"OK"                    # pc = 0xfffffb00
    assert cpu.eip == 0xFB00 and c.reg(8) == 0xFFFFFB00
    assert c.ask("P8=f0ffffff") == b"OK"
    assert c.ask("Z0,7c00,1") == b"OK"
    assert stop_fields(c.ask("c"))["swbreak"] == ""
    assert c.ask("z0,7c00,1") == b"OK"
    assert c.ask("P0=78563412") == b"OK" and dbg.reg("eax") == 0x12345678
    one = (0x3FFF << 64 | 1 << 63).to_bytes(10, "little")           # 1.0
    assert c.ask("P10=" + one.hex()) == b"OK"
    assert bytes.fromhex(c.ask_str("p10")) == one and cpu.fpu.st(0) == 0x3FFF << 64 | 1 << 63
    assert c.ask("P18=7f030000") == b"OK" and cpu.fpu.cw == 0x037F     # fctrl
    assert c.ask("P1a=ffff0000") == b"OK" and cpu.fpu.is_empty(0)      # ftag: all empty
    assert c.ask("P1c=34120000") == b"OK" and cpu.fpu.fip == 0x1234    # fioff
    assert c.ask("P24=00010000")[:1] == b"E"                          # efer: read only
    assert c.ask("P0") == b"E01" and c.ask("Pzz=00") == b"E01" and c.ask("P0=") == b"E01"
    assert c.ask("P40=00000000") == b"E00"
    g = bytearray(bytes.fromhex(c.ask_str("g")))
    g[4:8] = (0xABCD).to_bytes(4, "little")                 # ecx
    g[32:36] = (0x7C05).to_bytes(4, "little")               # pc (linear)
    g[48:52] = (0x50).to_bytes(4, "little")                 # ds
    assert c.ask("G" + g.hex()) == b"OK"
    assert dbg.reg("ecx") == 0xABCD and cpu.eip == 0x7C05 and m.cpu.base[3] == 0x500
    assert c.ask("G" + g.hex() + "00" * 300) == b"E.G: too many bytes"
    assert c.ask("G123") == b"E01"


def test_memory_read_write_binary_and_partial(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    assert c.ask("Z0,7c00,1") == b"OK" and c.ask("c")[:1] == b"T"
    assert bytes.fromhex(c.ask_str("m7c00,20")) == HELLO[:0x20]
    assert c.ask("M500,4:deadbeef") == b"OK"
    assert dbg.read(0x500, 4) == bytes.fromhex("deadbeef")
    data = bytes([0x23, 0x24, 0x7D, 0x2A, 0x00, 0x03, 0xFF])      # # $ } * and friends
    assert c.ask(b"X510,7:" + G.escape(data)) == b"OK"
    assert dbg.read(0x510, 7) == data
    assert c.ask("X510,0:") == b"OK"                        # gdb's probe
    assert c.ask("M500,2:00") == b"E16"                     # length and data disagree
    assert c.ask("md0000000,4") == b"E14"                   # nothing there
    assert c.ask("m1fffffe,4") == b"0000"                   # the end of RAM: partial
    assert c.ask("mzz,4") == b"E01" and c.ask("m7c00") == b"E01"
    big = c.ask("m0,ffffff")
    assert 0 < len(big) < G.PACKET_SIZE                     # clamped to a packet
    # the code at 0x7c00 was translated; a write there takes effect at once
    assert c.ask("M7c00,1:f4") == b"OK" and dbg.current_insn().entry.name == "HLT"


def test_checksum_errors_garbage_truncated_and_overlong_packets(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    srv = servers(m)
    c = Client(srv.port)
    c.raw(b"$g#00")                                         # wrong checksum
    assert c.read_byte_ack() == b"-"
    c.raw(b"$g#zz")                                         # not hex
    assert c.read_byte_ack() == b"-"
    c.raw(b"hello world\r\n" + bytes(range(4, 32)))       # garbage between packets
    assert c.ask("qC") == b"QC1"
    c.raw(b"$m7c00,4")                                      # truncated by the next packet
    assert c.ask("qC") == b"QC1"
    c.raw(G.frame(b"M0,1:" + b"0" * (G.PACKET_SIZE + 10)))  # over PacketSize, checksum right
    assert c.read().startswith(b"E")
    big = G.frame(b"a" * (3 * G.PACKET_SIZE))
    c.raw(big[:-10])                                        # over PacketSize, no end yet
    time.sleep(0.1)
    c.raw(big[-10:])
    assert c.read().startswith(b"E")
    c.raw(b"$" + b"b" * (2 * G.PACKET_SIZE))               # ... cut short by a packet:
    assert c.ask("qC") == b"QC1"                            # dropped, as a truncated one
    for bad in ("Z0", "Z0,zz,1", "zq", "p", "pxyz", "c12g", "vCont;q", "qRcmd,zz", "G1",
                "qXfer:features:read:target.xml:zz", "M1,1:zz", "X"):
        r = c.ask(bad)
        assert r[:1] in (b"E", b""), (bad, r)
    c.raw(b"-")                                             # a NAK: the last reply again
    assert c.read()[:1] in (b"E", b"")
    assert stop_fields(c.ask("?"))["signal"] == 5           # still serving
    assert srv._thread.is_alive()


def test_no_ack_mode(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    c = Client(servers(m).port)
    assert c.ask("QStartNoAckMode") == b"OK"
    c.ack = False
    n = len(c.acks)
    assert c.ask("qC") == b"QC1" and c.ask("qAttached") == b"1"
    assert len(c.acks) == n                                 # no more '+' from the stub


def test_breakpoints_step_and_the_debuggers_own_points(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    assert c.ask("Z0,7c00,1") == b"OK" and c.ask("Z0,7c00,1") == b"OK"     # idempotent
    assert [p.what for p in dbg.points.values()] == ["linear 0x00007c00 (gdb)"]
    t = stop_fields(c.ask("vCont;c"))
    assert t["signal"] == 5 and "swbreak" in t and c.reg(8) == 0x7C00
    assert c.ask("z0,7c00,1") == b"OK" and not dbg.points
    assert c.ask("z0,7c00,1") == b"OK"                      # already gone
    t = stop_fields(c.ask("vCont;s:1;c"))                   # step thread 1
    assert t["signal"] == 5 and "swbreak" not in t and c.reg(8) == 0x7C02
    t = stop_fields(c.ask("s"))
    assert c.reg(8) == 0x7C04 and int.from_bytes(bytes.fromhex(t["08"]), "little") == 0x7C04
    assert c.ask("Z1,7c09,1") == b"OK"
    assert "hwbreak" in stop_fields(c.ask("c")) and c.reg(8) == 0x7C09
    assert c.ask("z1,7c09,1") == b"OK"
    # a breakpoint of Aero's own (the TUI's): a plain SIGTRAP, explained on gdb's console
    own = dbg.break_at(0x7C0D)
    t = stop_fields(c.ask("c"))
    assert t["signal"] == 5 and "swbreak" not in t and "hwbreak" not in t
    assert c.console[-1].startswith(f"aero: Breakpoint {own.id}, 0000:7c0d")
    assert own.id in dbg.points                             # not gdb's to remove
    assert c.ask("Z5,0,0") == b""                           # unsupported kinds
    # the rest of the run: the guest exits, the inferior with it
    dbg.delete(own.id)
    assert c.ask("c") == b"W43"
    assert "exit status 67" in c.console[-1]


def test_watchpoint_stop_replies(tmp_path, servers):
    m = guest_machine(tmp_path)
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    assert c.ask("Z2,600,1") == b"OK"
    t = stop_fields(c.ask("c"))
    assert t["watch"] == "600" and c.reg(8) == 0x7C0F
    assert dbg.read(0x600, 1) == b"A"
    assert c.ask("z2,600,1") == b"OK" and c.ask("Z3,600,1") == b"OK"
    assert stop_fields(c.ask("c"))["rwatch"] == "600"       # inc reads it
    assert c.ask("z3,600,1") == b"OK" and c.ask("Z4,5fe,4") == b"OK"
    assert stop_fields(c.ask("c"))["awatch"] == "600"       # the address accessed
    assert c.ask("z4,5fe,4") == b"OK" and not dbg.points
    assert c.ask("Z2,0,2000")[:1] == b"E"                   # over 4 KiB: refused
    # with paging on: the alias at 0x40000000 reads and writes; unmapped pages do not
    assert c.ask("Z0,7d00,1") == b"OK" and "swbreak" in stop_fields(c.ask("c"))
    assert c.ask("M40000704,2:3412") == b"OK" and dbg.read(0x704, 2, physical=True) == b"\x34\x12"
    assert c.ask("m40000704,2") == b"3412"
    assert c.ask("m80000000,4") == b"E14" and c.ask("M80000000,1:00") == b"E14"
    assert c.ask("m3ffffffe,4") == b"E14"                   # nothing readable at the start
    assert c.ask("m3ffffe,4") == b"0000"                    # the end of the identity map



def test_stepping_over_a_watched_write(tmp_path, servers):
    m = guest_machine(tmp_path)
    c = Client(servers(m).port)
    assert c.ask("Z0,7c0a,1") == b"OK" and "swbreak" in stop_fields(c.ask("c"))
    assert c.ask("z0,7c0a,1") == b"OK" and c.ask("Z2,600,1") == b"OK"
    t = stop_fields(c.ask("s"))                             # mov byte [0x600], 0x41
    assert t.get("watch") == "600" and c.reg(8) == 0x7C0F, c.console


def test_ctrl_c_interrupts_and_the_run_resumes(tmp_path, servers):
    m, out = scenario_machine(tmp_path, "irq", keys="")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    for _ in range(2):
        c.send("c")
        assert wait_for(dbg.running.is_set)
        time.sleep(0.3)
        c.raw(b"\x03")
        t = stop_fields(c.read())
        assert t["signal"] == 2
        assert not dbg.running.is_set()
    ic = m.cpu.icount
    assert ic > 0 and 0x7C00 <= c.reg(8) < 0x7E00
    time.sleep(0.2)
    assert m.cpu.icount == ic                               # paused
    c.raw(b"\x03")                                          # nothing runs: ignored
    assert c.ask("qC") == b"QC1"
    t = stop_fields(c.ask("s"))                             # not cut short by that ^C
    assert t["signal"] == 5 and m.cpu.icount == ic + 1
    assert bytes(out) == b"type> "


def test_a_disconnect_mid_run_leaves_the_machine_paused(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "irq", keys="")
    dbg = Debugger(m)
    srv = servers(dbg)
    c = Client(srv.port)
    assert c.ask("Z0,12345,1") == b"OK" and c.ask("Z2,500,2") == b"OK"
    c.send("c")
    assert wait_for(dbg.running.is_set)
    time.sleep(0.2)
    c.close()
    assert wait_for(lambda: not dbg.running.is_set() and not srv._busy())
    assert wait_for(lambda: not dbg.points)                 # gdb's points went with gdb
    ic = m.cpu.icount
    st = m.state_hash()
    time.sleep(0.3)
    assert m.cpu.icount == ic and m.state_hash() == st      # paused, state intact
    c2 = Client(srv.port)                                   # the next gdb finds it there
    assert stop_fields(c2.ask("?"))["signal"] == 5
    assert c2.reg(8) == dbg.pc()
    assert m.state_hash() == st
    assert not srv.finished.is_set()


def test_nowait_runs_from_the_start_attach_interrupts_and_disconnect_runs_on(tmp_path,
                                                                             servers):
    m, out = scenario_machine(tmp_path, "irq", keys="")
    dbg = Debugger(m)
    srv = servers(dbg, wait=False)
    assert wait_for(lambda: m.cpu.icount > 1000)            # no gdb yet: it runs
    c = Client(srv.port)
    t = stop_fields(c.ask("?"))
    assert t["signal"] == 5
    ic = m.cpu.icount
    time.sleep(0.3)
    assert m.cpu.icount == ic and not dbg.running.is_set()  # attached: stopped
    assert c.ask("Z0,12345,1") == b"OK"
    c.close()
    assert wait_for(lambda: m.cpu.icount > ic + 1000)       # gone: it runs on
    assert wait_for(lambda: not dbg.points)
    c2 = Client(srv.port)                                   # a later attach stops it again
    assert c2.ask("?")[:3] == b"T05"
    assert not dbg.running.is_set()


def test_a_second_client_is_refused_while_the_first_keeps_working(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    srv = servers(m)
    c = Client(srv.port)
    assert c.ask("qC") == b"QC1"
    c2 = Client(srv.port)
    assert c2.read().startswith(b"E")
    with pytest.raises((EOFError, ConnectionError)):
        c2.read()
    assert c.ask("qC") == b"QC1"
    assert c.ask("m7c00,2") == b"0000"                      # (the boot sector is not loaded)
    assert stop_fields(c.ask("?"))["signal"] == 5
    c.close()
    assert wait_for(lambda: not srv.attached.is_set())
    c3 = Client(srv.port)                                   # free again
    assert c3.ask("qC") == b"QC1"


def test_detach_removes_gdbs_points_and_lets_the_machine_run_on(tmp_path, servers):
    m, out = scenario_machine(tmp_path, "hello")
    dbg = Debugger(m)
    srv = servers(dbg)
    c = Client(srv.port)
    assert c.ask("Z0,7c00,1") == b"OK"
    assert stop_fields(c.ask("c"))["swbreak"] == ""
    assert c.ask("Z0,7c09,1") == b"OK" and len(dbg.points) == 2
    assert c.ask("D") == b"OK"
    with pytest.raises((EOFError, ConnectionError)):
        c.read()
    r = srv.wait_finished(30)
    assert r.status == "debug-exit" and r.exit_code == 67
    assert not dbg.points
    assert bytes(out) == b"Hello from the boot sector\r\n"


def test_kill_ends_the_session(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    srv = servers(m)
    c = Client(srv.port)
    c.send("k")
    r = srv.wait_finished(10)
    assert r.status == "stop" and r.detail == "killed by gdb" and r.icount == 0
    c2 = Client(srv.port)
    assert c2.ask("vKill;1") == b"OK"


def test_monitor_commands_output_and_errors(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    assert c.ask("qRcmd," + b"info registers".hex()) == b"OK"
    text = "".join(c.console)
    assert "mode: real, paging off" in text and "eip=0000fff0" in text
    c.console.clear()
    assert c.ask("qRcmd," + b"x/2xb 0xfffffff0".hex()) == b"OK"
    assert "ea" in c.console[0]                             # the reset vector's far jump
    c.console.clear()
    assert c.ask("qRcmd," + b"frobnicate".hex()) == b"OK"
    assert c.console == ["error: unknown command 'frobnicate' (try help)\n"]
    c.console.clear()
    assert c.ask("qRcmd," + b"break 0x7c00".hex()) == b"OK"   # Aero's own point
    assert c.ask("qRcmd," + b"continue".hex()) == b"OK"       # runs the machine
    assert "Breakpoint 1, 0000:7c00" in "".join(c.console)
    assert c.reg(8) == 0x7C00


def test_monitor_continue_is_interrupted_by_ctrl_c(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "irq", keys="")
    dbg = Debugger(m)
    c = Client(servers(dbg).port)
    c.send("qRcmd," + b"continue".hex())
    assert wait_for(lambda: dbg.running.is_set() and m.cpu.icount > 20_000)
    c.raw(b"\x03")
    assert c.read() == b"OK"
    assert "paused at" in "".join(c.console)
    ic = m.cpu.icount
    assert stop_fields(c.ask("s"))["signal"] == 5 and m.cpu.icount == ic + 1


def test_a_halt_is_explained_on_gdbs_console(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "hello")
    c = Client(servers(m).port)
    assert c.ask("Z0,7c00,1") == b"OK" and c.ask("c")[:1] == b"T"
    assert c.ask("z0,7c00,1") == b"OK"
    assert c.ask("M7c00,2:faf4") == b"OK"                   # cli; hlt
    t = stop_fields(c.ask("c"))
    assert t["signal"] == 5 and c.reg(8) == 0x7C02
    assert c.console[-1] == "aero: halted: HLT with interrupts disabled\n"


def test_an_attach_pauses_a_run_of_another_front_end(tmp_path, servers):
    m, _ = scenario_machine(tmp_path, "irq", keys="")
    dbg = Debugger(m)
    srv = servers(dbg)
    box = {}
    tui = threading.Thread(target=lambda: box.setdefault("stop", dbg.cont()))
    tui.start()
    assert wait_for(dbg.running.is_set)
    c = Client(srv.port)
    assert stop_fields(c.ask("?"))["signal"] == 5           # answered once it stopped
    tui.join(10)
    assert box["stop"].reason == "pause"
    assert c.reg(8) == dbg.pc()


def test_run_gdb_serves_until_kill_or_the_end(tmp_path):
    m, _ = scenario_machine(tmp_path, "hello")
    lines = []
    box = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "r", G.run_gdb(m, "127.0.0.1:0", wait=True, log=lines.append)))
    t.start()
    assert wait_for(lambda: lines)
    port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", lines[0]).group(1))
    c = Client(port)
    assert c.ask("qC") == b"QC1"
    c.send("k")
    t.join(20)
    assert box["r"].status == "stop"
    # nowait, and no gdb ever comes: the guest runs to its end
    m2, out = scenario_machine(tmp_path / "2", "hello")
    r = G.run_gdb(m2, 0, wait=False)
    assert r.status == "debug-exit" and r.exit_code == 67
    assert bytes(out) == b"Hello from the boot sector\r\n"


# ----------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------
def test_packet_reader_splits_and_escapes():
    r = G.PacketReader(limit=16)
    ev = r.feed(b"+$qC#b")
    assert ev == [("ack", b"+")]
    assert r.feed(b"4\x03$g#67") == [("packet", b"qC"), ("interrupt", None), ("packet", b"g")]
    assert r.feed(b"$g#66-") == [("bad", None), ("ack", b"-")]
    assert r.feed(b"$" + b"x" * 40) == []
    assert r.feed(b"yy#00$?#3f") == [("overlong", None), ("packet", b"?")]
    assert r.feed(b"$" + b"z" * 40 + b"$?#3f") == [("packet", b"?")]     # truncated
    data = bytes(range(256))
    assert G.unescape(G.escape(data)) == data
    assert b"$" not in G.escape(data) and b"#" not in G.escape(data)
    assert G.frame(b"OK") == b"$OK#9a"


def test_parse_address():
    assert G.parse_address("1234") == ("127.0.0.1", 1234)
    assert G.parse_address(":0") == ("127.0.0.1", 0)
    assert G.parse_address("0.0.0.0:1234") == ("0.0.0.0", 1234)
    assert G.parse_address(4321) == ("127.0.0.1", 4321)
    for bad in ("host:", "x", "1:99999"):
        with pytest.raises(ValueError):
            G.parse_address(bad)


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm is not installed")
def test_guest_rebuilds_identically(tmp_path):
    out = tmp_path / "guest.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), GUEST_ASM], check=True)
    assert out.read_bytes() == open(GUEST_BIN, "rb").read()
