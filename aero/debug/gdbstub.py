"""A GDB Remote Serial Protocol stub: gdb (``target remote 127.0.0.1:1234``) drives a machine
through an ``aero.debug.debugger.Debugger``, beside Aero's own debugger and TUI.

    aero run --gdb 1234 ...       ->  run_gdb(machine, "1234", wait=True)
    the TUI                       ->  GdbServer(debugger, "127.0.0.1:0").start()

**Target.** One thread (id 1), an i386 described by ``qXfer:features:read:target.xml``:
the feature ``org.gnu.gdb.i386.core`` (eax ecx edx ebx esp ebp esi edi eip eflags cs ss ds es
fs gs, st0-st7, fctrl fstat ftag fiseg fioff foseg fooff fop: gdb numbers 0-31) and
``org.aero.gdb.i386.sys`` (cr0 cr2 cr3 cr4 efer: 32-36, group "system"; gdb 13 lists them
in ``info registers`` too).  The x87 registers are the CPU's (``info float``, ``p $st0``;
ftag is the full tag word, as in an FSAVE image); writing st0-st7 keeps the tags.  EFER is
read only.

**Addresses are linear.**  ``m``/``M``/``X`` read and write linear memory through the
debugger (reads without side effects; writes invalidate translated code), and breakpoints and
watchpoints are linear.  So that gdb's ``$pc``, ``b *0x7c00`` and ``x/i $pc`` agree with that
memory in real mode too, the stub reports EIP as the linear address of the next instruction
(CS base + EIP); writing the pc register stores EIP = value - CS base.  In real mode use gdb's
``set architecture i8086`` (16-bit disassembly; with ``set osabi none`` gdb does not warn
about a GNU/Linux ABI), ``set architecture i386`` after the switch to protected mode.

**Breakpoints** ``Z0``/``Z1`` and **watchpoints** ``Z2`` (write), ``Z3`` (read), ``Z4``
(access) become the Debugger's points (``break_at``/``watch``/``delete``), so they show in
the TUI beside its own and stop the machine the same way; they are removed when gdb detaches
or goes away.  Stop replies say ``swbreak:``/``hwbreak:`` (so gdb does not adjust the pc) and
``watch:ADDR``/``rwatch:``/``awatch:``; a stop gdb did not ask for (one of the TUI's points, a
halt, a triple fault) is explained in an ``O`` console packet before its ``T05``.  A guest
that ends its run (isa-debug-exit, power-off) ends the inferior: ``W`` with the exit status.
``qRcmd`` (gdb's ``monitor``) runs a command of ``aero.debug.commands`` on the worker (Ctrl-C
pauses a ``monitor continue``); its output and errors come back as ``O`` packets.  gdb does
not know that such a command ran the machine: ``maint flush register-cache`` after it.

**Sessions.**  The machine waits for gdb before its first instruction (as QEMU's ``-s -S``)
unless ``wait`` is false: then it runs from the start and an attach interrupts it.  One client
at a time; another is accepted, sent ``E.busy`` and closed.  ``D`` (detach) removes gdb's
points and lets the machine run on; ``k`` ends the session (``run_gdb`` returns); a client that
disconnects without either leaves the machine paused (running on with ``wait=False``), its
state intact, and the next client picks it up there.

**Threads.**  One I/O thread accepts connections and reads packets (a selector over the
listening socket, the client and a wake-up pipe).  Runs (``c``, ``s``, ``vCont``, ``monitor``
commands, and the free run of ``wait=False`` or after ``D``) happen on one worker thread at a
time, so the I/O thread keeps reading: the interrupt byte (0x03) calls ``Debugger.pause``,
which is thread safe.  Packets arriving while the machine runs wait until it stops (gdb sends
none in all-stop mode).  Sends are serialised by a lock.  Malformed input never raises: a bad
checksum is answered ``-``, a packet over ``PacketSize`` with ``E``, garbage between packets
is dropped, a truncated packet is dropped when the next one starts.
"""

from __future__ import annotations

import collections
import re
import selectors
import socket
import threading

from ..machine import RunResult
from . import inspect as I
from .commands import Commands
from .debugger import Debugger, DebugError

PACKET_SIZE = 0x4000
SEND_TIMEOUT = 10.0
THREAD_ID = 1
SIGINT, SIGTRAP = 2, 5

_CORE = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags",
         "cs", "ss", "ds", "es", "fs", "gs")
_FPU_CTRL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
_SYS = ("cr0", "cr2", "cr3", "cr4", "efer")
# (name, size in bytes) in gdb's numbering
REGISTERS = ([(n, 4) for n in _CORE] + [(f"st{i}", 10) for i in range(8)] +
             [(n, 4) for n in _FPU_CTRL] + [(n, 4) for n in _SYS])
_REGNUM = {n: i for i, (n, _) in enumerate(REGISTERS)}
_SEGS = ("es", "cs", "ss", "ds", "fs", "gs")            # the CPU's order (cpu.sel, cpu.base)


def _flags_xml(fid: str, fields) -> str:
    body = "".join(f'<field name="{n}" start="{b}" end="{e}"/>' for n, b, e in fields)
    return f'<flags id="{fid}" size="4">{body}</flags>'


def target_xml() -> str:
    """The target description served to gdb."""
    eflags = [("CF", 0, 0), ("", 1, 1), ("PF", 2, 2), ("AF", 4, 4), ("ZF", 6, 6), ("SF", 7, 7),
              ("TF", 8, 8), ("IF", 9, 9), ("DF", 10, 10), ("OF", 11, 11), ("IOPL", 12, 13),
              ("NT", 14, 14), ("RF", 16, 16), ("VM", 17, 17), ("AC", 18, 18), ("VIF", 19, 19),
              ("VIP", 20, 20), ("ID", 21, 21)]
    cr0 = [("PE", 0, 0), ("MP", 1, 1), ("EM", 2, 2), ("TS", 3, 3), ("ET", 4, 4), ("NE", 5, 5),
           ("WP", 16, 16), ("AM", 18, 18), ("NW", 29, 29), ("CD", 30, 30), ("PG", 31, 31)]
    cr4 = [("VME", 0, 0), ("PVI", 1, 1), ("TSD", 2, 2), ("DE", 3, 3), ("PSE", 4, 4),
           ("PAE", 5, 5), ("MCE", 6, 6), ("PGE", 7, 7), ("PCE", 8, 8), ("OSFXSR", 9, 9),
           ("OSXMMEXCPT", 10, 10)]
    efer = [("SCE", 0, 0), ("LME", 8, 8), ("LMA", 10, 10), ("NXE", 11, 11)]
    types = {"esp": "data_ptr", "ebp": "data_ptr", "eip": "code_ptr", "eflags": "i386_eflags"}
    core = ['<reg name="eax" bitsize="32" type="int32" regnum="0"/>']
    core += [f'<reg name="{n}" bitsize="32" type="{types.get(n, "int32")}"/>'
             for n in _CORE[1:]]
    core += [f'<reg name="st{i}" bitsize="80" type="i387_ext"/>' for i in range(8)]
    core += [f'<reg name="{n}" bitsize="32" type="int" group="float"/>' for n in _FPU_CTRL]
    sys_types = {"cr0": "i386_cr0", "cr4": "i386_cr4", "efer": "i386_efer"}
    sys = [f'<reg name="{n}" bitsize="32" type="{sys_types.get(n, "int32")}" group="system"/>'
           for n in _SYS]
    return ('<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            '<target version="1.0">\n<architecture>i386</architecture>\n'
            '<feature name="org.gnu.gdb.i386.core">\n' + _flags_xml("i386_eflags", eflags) +
            "\n" + "\n".join(core) + "\n</feature>\n"
            '<feature name="org.aero.gdb.i386.sys">\n' + _flags_xml("i386_cr0", cr0) +
            _flags_xml("i386_cr4", cr4) + _flags_xml("i386_efer", efer) + "\n" +
            "\n".join(sys) + "\n</feature>\n</target>\n")


TARGET_XML = target_xml().encode()


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(payload: bytes) -> bytes:
    """``$payload#cc``."""
    return b"$" + payload + b"#%02x" % checksum(payload)


def escape(data: bytes) -> bytes:
    """Binary data for a packet: ``$ # } *`` escaped with ``}`` and XOR 0x20."""
    out = bytearray()
    for b in data:
        if b in b"$#}*":
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        out.append(next(it, 0x20) ^ 0x20 if b == 0x7D else b)
    return bytes(out)


def parse_address(address) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"PORT"``, ``":PORT"``, an int or a (host, port) pair; the host
    defaults to 127.0.0.1, port 0 picks a free port."""
    if isinstance(address, tuple):
        return address[0] or "127.0.0.1", int(address[1])
    if isinstance(address, int):
        return "127.0.0.1", address
    host, _, port = str(address).strip().rpartition(":")
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"gdb address {address!r}: expected [HOST:]PORT") from None
    if not 0 <= p <= 65535:
        raise ValueError(f"gdb address {address!r}: port out of range")
    return host.strip("[]") or "127.0.0.1", p


_SYNC = re.compile(rb"[$\x03+-]")


class PacketReader:
    """Splits what gdb sends into events: ("packet", payload), ("bad", None) for a checksum
    error, ("overlong", None), ("interrupt", None) for 0x03, ("ack", b"+" or b"-")."""

    def __init__(self, limit: int = PACKET_SIZE):
        self.limit = limit
        self.buf = bytearray()
        self.skipping = False           # inside a packet too long to keep

    def feed(self, data: bytes) -> list:
        buf = self.buf
        buf += data
        events = []
        while buf:
            if self.skipping:
                end = buf.find(b"#")
                start = buf.find(b"$")
                if start != -1 and (end == -1 or start < end):
                    del buf[:start]                     # truncated: dropped
                elif end == -1 or len(buf) < end + 3:
                    if end == -1:
                        buf.clear()
                    break
                else:
                    del buf[:end + 3]
                    events.append(("overlong", None))
                self.skipping = False
                continue
            c = buf[0]
            if c == 0x24:                                       # $
                end = buf.find(b"#", 1)
                nxt = buf.find(b"$", 1)
                if nxt != -1 and (end == -1 or nxt < end):      # truncated: a new one began
                    del buf[:nxt]
                    continue
                if end == -1:
                    if len(buf) > self.limit + 1:
                        buf.clear()
                        self.skipping = True
                    break
                if len(buf) < end + 3:
                    break
                payload = bytes(buf[1:end])
                cks = bytes(buf[end + 1:end + 3])
                del buf[:end + 3]
                ok = all(x in b"0123456789abcdefABCDEF" for x in cks) and \
                    int(cks, 16) == checksum(payload)
                if not ok:
                    events.append(("bad", None))
                elif len(payload) > self.limit:
                    events.append(("overlong", None))
                else:
                    events.append(("packet", payload))
            elif c == 0x03:
                del buf[:1]
                events.append(("interrupt", None))
            elif c in (0x2B, 0x2D):                             # + -
                del buf[:1]
                events.append(("ack", bytes((c,))))
            else:                                               # garbage between packets
                m = _SYNC.search(buf)
                del buf[:m.start() if m else len(buf)]
        return events


class _Session:
    """One gdb connection."""

    def __init__(self, sock: socket.socket, peer):
        self.sock = sock
        self.peer = peer
        self.reader = PacketReader()
        self.noack = False
        self.last = b""                 # the last packet sent, for a "-"
        self.closed = False
        self.run_on = False             # when it ends: let the machine run on
        self.points: dict = {}          # (type, address, length) -> Point
        self.stop = None                # the last stop reply
        self.deferred: collections.deque = collections.deque()


class GdbServer:
    """A gdb remote stub over TCP driving ``debugger``.  ``start()`` listens (``address``
    tells where: port 0 picks one); ``wait_finished()`` blocks until gdb kills the session or
    the machine's run ends with no gdb in control, and returns that RunResult; ``close()``
    stops serving, leaving the machine paused and gdb's points removed."""

    def __init__(self, debugger: Debugger, address="127.0.0.1:0", wait: bool = True,
                 commands: Commands | None = None, log=None):
        self.dbg = debugger
        self.m = debugger.m
        self.wait = wait
        self.commands = commands if commands is not None else Commands(debugger)
        self.log = log or (lambda text: None)
        host, port = parse_address(address)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
            self._listener.listen(4)
        except OSError:
            self._listener.close()
            raise
        self.host, self.port = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._send_lock = threading.Lock()
        self._lock = threading.RLock()          # session, worker and pause bookkeeping
        self._session: _Session | None = None
        self._worker: threading.Thread | None = None
        self._paused_by_us = False
        self._in_run = False                    # a worker is inside a run (or command)
        self._thread: threading.Thread | None = None
        self._closed = False
        self.result: RunResult | None = None    # set when finished
        self.finished = threading.Event()
        self.attached = threading.Event()       # set while a gdb is connected

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "GdbServer":
        self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._serve, name="gdbstub-io", daemon=True)
        self._thread.start()
        if not self.wait:
            with self._lock:
                self._start_worker(self._free_run)
        return self

    def wait_finished(self, timeout: float | None = None) -> RunResult | None:
        self.finished.wait(timeout)
        return self.result

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._in_run:
                self._interrupt()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        w = self._worker
        if w is not None and w is not threading.current_thread():
            w.join(5)
        with self._lock:
            s = self._session
            if s is not None:
                self._end_session(s)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _finish(self, result: RunResult) -> None:
        if not self.finished.is_set():
            self.result = result
            self.finished.set()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass

    # -- I/O thread ----------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closed:
            s = self._session
            poll = 0.05 if s is not None and s.deferred else None
            for key, _ in self._sel.select(poll):
                try:
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._wake_r.recv(4096)
                    else:
                        self._read(key.data)
                except Exception as e:               # never let the server die
                    self.log(f"gdb: internal error: {type(e).__name__}: {e}")
            s = self._session
            if s is not None and s.deferred and not self._busy():
                self._drain(s)
        s = self._session
        if s is not None:
            self._close_socket(s)

    def _busy(self) -> bool:
        w = self._worker
        return (w is not None and w.is_alive()) or self.dbg.running.is_set()

    def _accept(self) -> None:
        sock, peer = self._listener.accept()
        if self._session is not None or self._closed:
            self.log(f"gdb: refused {peer[0]}:{peer[1]}: a debugger is already attached")
            try:
                sock.sendall(frame(b"E.busy: another debugger is attached"))
            except OSError:
                pass
            sock.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(SEND_TIMEOUT)           # reads only follow the selector's word
        s = _Session(sock, peer)
        with self._lock:
            self._session = s
            if self.result is not None and self.result.status in ("debug-exit", "poweroff"):
                s.stop = self._exit_reply(self.result)
            if self._in_run:
                self._interrupt()                       # an attach stops the machine
            elif self.dbg.running.is_set():
                self.dbg.pause()                        # (run by another front-end)
        self._sel.register(sock, selectors.EVENT_READ, s)
        self.attached.set()
        self.log(f"gdb: {peer[0]}:{peer[1]} attached")

    def _read(self, s: _Session) -> None:
        try:
            data = s.sock.recv(65536)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:
            self.log("gdb: the debugger went away")
            self._disconnect(s, run_on=not self.wait)
            return
        for kind, payload in s.reader.feed(data):
            if s.closed:
                return
            if kind == "interrupt":
                with self._lock:
                    if self._in_run:
                        self._interrupt()
            elif kind == "ack":
                if payload == b"-" and not s.noack and s.last:
                    self._raw(s, s.last)
            elif kind == "bad":
                self._raw(s, b"-")
            elif kind == "overlong":
                self._ack(s)
                self._send(s, b"E.packet too long")
            else:
                self._ack(s)
                if s.deferred or self._busy():
                    if len(s.deferred) < 256:
                        s.deferred.append(payload)
                else:
                    self._handle(s, payload)
        if s.deferred and not self._busy():
            self._drain(s)

    def _drain(self, s: _Session) -> None:
        while s.deferred and not s.closed and not self._busy():
            self._handle(s, s.deferred.popleft())

    def _handle(self, s: _Session, payload: bytes) -> None:
        try:
            reply = self._dispatch(s, payload)
        except DebugError as e:
            reply = b"E." + str(e).encode(errors="replace")[:200]
        except ValueError:                      # malformed numbers, hex, fields
            reply = b"E01"
        except Exception as e:                   # a bug here must not kill the session
            self.log(f"gdb: {payload[:40]!r}: {type(e).__name__}: {e}")
            reply = b"E01"
        if reply is not None and not s.closed:
            self._send(s, reply)
            if payload == b"QStartNoAckMode":
                s.noack = True

    # -- sending -------------------------------------------------------------------------------
    def _raw(self, s: _Session, data: bytes) -> None:
        with self._send_lock:
            if s.closed:
                return
            try:
                s.sock.sendall(data)
            except OSError:                     # gone or stalled: the reader sees it end
                pass

    def _ack(self, s: _Session) -> None:
        if not s.noack:
            self._raw(s, b"+")

    def _send(self, s: _Session, payload) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        pkt = frame(payload)
        s.last = pkt
        self._raw(s, pkt)

    def _console(self, s: _Session, text: str) -> None:
        """Text for gdb's console (``O`` packets)."""
        data = text.encode(errors="replace")
        for i in range(0, len(data), 2000):
            self._send(s, b"O" + data[i:i + 2000].hex().encode())

    # -- sessions and workers ------------------------------------------------------------------
    def _close_socket(self, s: _Session) -> None:
        with self._send_lock:
            s.closed = True
            try:
                self._sel.unregister(s.sock)
            except (KeyError, ValueError):
                pass
            try:
                s.sock.close()
            except OSError:
                pass

    def _disconnect(self, s: _Session, run_on: bool) -> None:
        """The session ends: gdb's points go (now, or when the run in progress has
        stopped); the machine stays paused, or runs on."""
        self._close_socket(s)
        with self._lock:
            if self._session is s:
                self._session = None
                self.attached.clear()
            s.run_on = run_on
            if self._worker is not None and self._worker.is_alive():
                if self._in_run:
                    self._interrupt()
                return                              # the worker ends the session
            self._end_session(s)

    def _end_session(self, s: _Session) -> None:
        """With the machine stopped (the lock held): remove gdb's points, maybe run on."""
        for p in list(s.points.values()):
            if p.id in self.dbg.points:
                self.dbg.delete(p.id)
        s.points.clear()
        if s.run_on and not (self._closed or self.finished.is_set() or
                             self.dbg.running.is_set()):
            self._start_worker(self._free_run)

    def _start_worker(self, fn, session: _Session | None = None, *args) -> None:
        """Run ``fn(*args)`` on a worker thread (the lock held); ``session``: the gdb
        session it answers, ended by the worker if it goes away meanwhile."""
        self._paused_by_us = False
        self._in_run = True
        t = threading.Thread(target=self._work, args=(fn, session) + args,
                             name=f"gdbstub-{fn.__name__.strip('_')}", daemon=True)
        self._worker = t
        t.start()

    def _work(self, fn, session, *args) -> None:
        try:
            fn(*((session,) if session is not None else ()) + args)
        except Exception as e:
            self.log(f"gdb: {fn.__name__.strip('_')} failed: {type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._in_run = False
                if self._worker is threading.current_thread():
                    self._worker = None
                if session is not None and session.closed and self._session is not session:
                    self._end_session(session)
            self._wake()

    def _interrupt(self) -> None:
        """Pause our run in progress (the lock held)."""
        self._paused_by_us = True
        self.dbg.pause()

    def _run(self, go):
        """Run ``go`` (a run of the machine, or a command that may run it) in the worker.  A
        pause that comes too late (the run had stopped for another reason) has no effect on
        the next run: ``Machine.request_stop`` only stops a run in progress."""
        try:
            return go()
        finally:
            with self._lock:
                self._paused_by_us = False
                self._in_run = False

    def _free_run(self) -> None:
        stop = self._run(self.dbg.cont)
        if stop.reason != "pause":
            self.log(f"gdb: {stop.message.splitlines()[0] if stop.message else stop.reason}")
            self._finish(stop.result if stop.result is not None else
                         RunResult(stop.reason, 10, self.m.cpu.icount, stop.message))

    def _gdb_run(self, s: _Session, step: bool) -> None:
        stop = self._run(self.dbg.step if step else self.dbg.cont)
        reply = self._stop_reply(s, stop)
        s.stop = reply
        if not s.closed:
            self._send(s, reply)
        if stop.reason == "exit":
            self._finish(stop.result)

    def _monitor(self, s: _Session, text: str) -> None:
        try:
            out = self._run(lambda: self.commands.execute(text))
        except DebugError as e:
            out = f"error: {e}"
        except Exception as e:
            out = f"error: {type(e).__name__}: {e}"
        if out:
            self._console(s, out if out.endswith("\n") else out + "\n")
        self._send(s, b"OK")

    # -- stop replies --------------------------------------------------------------------------
    def _t_reply(self, sig: int, extra: str = "") -> str:
        regs = "".join(f"{n:02x}:{self._reg_bytes(n).hex()};" for n in (4, 5, 8))
        return f"T{sig:02x}thread:{THREAD_ID:02x};{extra}{regs}"

    @staticmethod
    def _exit_reply(r: RunResult) -> str:
        return f"W{r.exit_code & 0xFF:02x}"

    def _stop_reply(self, s: _Session, stop) -> str:
        if stop.reason == "exit":
            self._console(s, f"aero: {stop.message}\n")
            return self._exit_reply(stop.result)
        if stop.reason == "pause":
            return self._t_reply(SIGINT)
        if stop.reason in ("start", "end"):          # the ends of a recording
            end = "begin" if stop.reason == "start" else "end"
            return self._t_reply(SIGTRAP, f"replaylog:{end};")
        owner = None
        if stop.point is not None:
            owner = next((k for k, p in s.points.items() if p is stop.point), None)
        if owner is None:
            if stop.reason not in ("step", "limit") and stop.message:
                self._console(s, f"aero: {stop.message}\n")
            return self._t_reply(SIGTRAP)
        kind, addr, length = owner
        if kind in (0, 1):
            return self._t_reply(SIGTRAP, "swbreak:;" if kind == 0 else "hwbreak:;")
        acc = stop.details.get("access")
        hit = addr
        if acc is not None and addr <= acc.address < addr + length:
            hit = acc.address
        name = {2: "watch", 3: "rwatch", 4: "awatch"}[kind]
        return self._t_reply(SIGTRAP, f"{name}:{hit:x};")

    # -- registers -----------------------------------------------------------------------------
    def _reg_value(self, n: int) -> int:
        name, _ = REGISTERS[n]
        cpu = self.m.cpu
        if name == "eip":
            return (cpu.base[1] + cpu.eip) & 0xFFFFFFFF
        if name == "eflags":
            return I.registers(self.m).eflags
        if name in _SEGS:
            return cpu.sel[_SEGS.index(name)]
        if name.startswith("st"):
            return self.dbg.reg(name)
        return self.dbg.reg(name) & 0xFFFFFFFF

    def _reg_bytes(self, n: int) -> bytes:
        return self._reg_value(n).to_bytes(REGISTERS[n][1], "little")

    def _set_reg(self, n: int, value: int) -> None:
        name, _ = REGISTERS[n]
        cpu = self.m.cpu
        if name == "efer":
            raise DebugError("efer is read only here")
        if name == "eip":
            cpu.eip = (value - cpu.base[1]) & (0xFFFFFFFF if cpu.code32 else 0xFFFF)
            return
        if name == "cs" and cpu.cr0 & 1:
            raise DebugError("cs cannot be loaded in protected mode (jump there instead)")
        self.dbg.set_reg(name, value)

    def _all_regs(self) -> bytes:
        return b"".join(self._reg_bytes(n) for n in range(len(REGISTERS)))

    def _write_all(self, data: bytes) -> None:
        sizes = [sz for _, sz in REGISTERS]
        if len(data) > sum(sizes):
            raise DebugError("G: too many bytes")
        values = {}
        off = 0
        for n, sz in enumerate(sizes):
            if off + sz > len(data):
                break
            values[n] = int.from_bytes(data[off:off + sz], "little")
            off += sz
        eip = _REGNUM["eip"]
        for n in sorted(values, key=lambda k: k == eip):     # EIP last: after CS
            if values[n] != self._reg_value(n):
                self._set_reg(n, values[n])

    # -- packets -------------------------------------------------------------------------------
    def _dispatch(self, s: _Session, p: bytes):
        """The reply to a packet (bytes or str), or None when it comes later (a run)."""
        c = p[:1]
        if c == b"?":
            return s.stop or self._t_reply(SIGTRAP)
        if c == b"g":
            return self._all_regs().hex()
        if c == b"G":
            self._write_all(bytes.fromhex(p[1:].decode()))
            return "OK"
        if c == b"p":
            n = int(p[1:], 16)
            if not 0 <= n < len(REGISTERS):
                return "E00"
            return self._reg_bytes(n).hex()
        if c == b"P":
            reg, eq, val = p[1:].partition(b"=")
            n = int(reg, 16)
            if not eq or not val:
                return "E01"
            if not 0 <= n < len(REGISTERS):
                return "E00"
            raw = bytes.fromhex(val.decode())
            self._set_reg(n, int.from_bytes(raw, "little"))
            return "OK"
        if c == b"m":
            addr, length = (int(x, 16) for x in p[1:].split(b","))
            length = min(length, (PACKET_SIZE - 8) // 2)
            vals = I.read_linear(self.m, addr, length)
            n = vals.index(None) if None in vals else len(vals)
            return bytes(vals[:n]).hex() if n or not length else "E14"
        if c in (b"M", b"X"):
            head, _, body = p[1:].partition(b":")
            addr, length = (int(x, 16) for x in head.split(b","))
            data = bytes.fromhex(body.decode()) if c == b"M" else unescape(body)
            if len(data) != length:
                return "E16"
            try:
                self.dbg.write(addr, data)
            except DebugError:
                return "E14"
            return "OK"
        if c in (b"c", b"s", b"C", b"S"):
            arg = p[1:]
            if c in (b"C", b"S"):
                arg = arg.partition(b";")[2]
            if arg:
                self._set_reg(_REGNUM["eip"], int(arg, 16))
            return self._resume(s, step=c in (b"s", b"S"))
        if p in (b"bs", b"bc"):
            return self._reverse(s, step=p == b"bs")
        if c in (b"Z", b"z"):
            return self._point(s, c == b"Z", p[1:])
        if c in (b"H", b"T"):
            return "OK"
        if c == b"k":
            self._kill(s)
            return None
        if c == b"D":
            self._send(s, b"OK")
            self.log("gdb: detached; the machine runs on")
            self._disconnect(s, run_on=True)
            return None
        if c == b"q":
            return self._query(s, p)
        if p == b"QStartNoAckMode":
            return "OK"
        if c == b"v":
            return self._v(s, p)
        return ""

    def _query(self, s: _Session, p: bytes):
        if p.startswith(b"qSupported"):
            return (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;swbreak+;hwbreak+;"
                    "vContSupported+;QStartNoAckMode+;ReverseStep+;ReverseContinue+")
        if p.startswith(b"qAttached"):
            return "1"
        if p == b"qC":
            return f"QC{THREAD_ID:x}"
        if p == b"qfThreadInfo":
            return f"m{THREAD_ID:x}"
        if p == b"qsThreadInfo":
            return "l"
        if p.startswith(b"qXfer:features:read:"):
            annex, _, span = p[len(b"qXfer:features:read:"):].partition(b":")
            if annex != b"target.xml":
                return "E00"
            off, length = (int(x, 16) for x in span.split(b","))
            chunk = TARGET_XML[off:off + min(length, PACKET_SIZE // 2)]
            more = off + len(chunk) < len(TARGET_XML)
            return (b"m" if more else b"l") + escape(chunk)
        if p.startswith(b"qRcmd,"):
            text = bytes.fromhex(p[6:].decode()).decode(errors="replace")
            with self._lock:
                self._start_worker(self._monitor, s, text)
            return None
        if p.startswith(b"qSymbol"):
            return "OK"
        return ""

    def _v(self, s: _Session, p: bytes):
        if p == b"vCont?":
            return "vCont;c;C;s;S"
        if p.startswith(b"vCont;"):
            step = None
            for action in p[6:].split(b";"):
                verb, _, thread = action.partition(b":")
                if thread and thread not in (b"-1", b"1", b"01", b"p1.1", b"p1.-1"):
                    continue
                if verb[:1] in (b"s", b"S"):
                    step = True
                    break
                if verb[:1] in (b"c", b"C") and step is None:
                    step = False
            if step is None:
                return "E22"
            return self._resume(s, step)
        if p.startswith(b"vKill"):
            self._send(s, b"OK")
            self._kill(s)
            return None
        return ""                                   # vMustReplyEmpty and the rest

    def _resume(self, s: _Session, step: bool):
        with self._lock:
            if self._busy():
                return "E.the machine is running (another front-end drives it)"
            self._start_worker(self._gdb_run, s, step)
        return None

    def _reverse(self, s: _Session, step: bool):
        """``bs`` / ``bc``: reverse-stepi / reverse-continue over the session's recording."""
        if self.dbg.travel is None:
            return "E.no recording: serve one with aero replay FILE --gdb, or 'monitor " \
                   "record start' first"
        with self._lock:
            if self._busy():
                return "E.the machine is running (another front-end drives it)"
            self._start_worker(self._gdb_reverse, s, step)
        return None

    def _gdb_reverse(self, s: _Session, step: bool) -> None:
        from .debugger import Stop
        dbg = self.dbg

        def go():
            try:
                return dbg.reverse_stepi() if step else dbg.reverse_continue()
            except DebugError as e:
                return Stop("start", str(e), icount=self.m.cpu.icount)
        stop = self._run(go)
        reply = self._stop_reply(s, stop)
        s.stop = reply
        if not s.closed:
            self._send(s, reply)

    def _kill(self, s: _Session) -> None:
        self.log("gdb: killed")
        self._finish(RunResult("stop", 0, self.m.cpu.icount, "killed by gdb"))
        self._disconnect(s, run_on=False)

    def _point(self, s: _Session, insert: bool, args: bytes):
        parts = args.split(b";")[0].split(b",")
        if len(parts) != 3:
            return "E22"
        kind, addr, length = int(parts[0], 16), int(parts[1], 16), int(parts[2], 16)
        if kind > 4:
            return ""
        key = (kind, addr & 0xFFFFFFFF, length if kind >= 2 else 1)
        with self._lock:
            if not insert:
                p = s.points.pop(key, None)
                if p is not None and p.id in self.dbg.points:
                    self.dbg.delete(p.id)
                return "OK"
            if key in s.points:
                return "OK"
            if kind <= 1:
                p = self.dbg.break_at(key[1])
            else:
                p = self.dbg.watch(key[1], key[2], {2: "w", 3: "r", 4: "rw"}[kind])
            p.what += " (gdb)"
            s.points[key] = p
        return "OK"


def run_gdb(target, address="127.0.0.1:1234", wait: bool = True, log=None,
            commands: Commands | None = None) -> RunResult:
    """Serve gdb on ``address`` for a built machine (or a Debugger over one) until gdb kills
    the session or the run ends with no gdb in control (after ``D``, or with ``wait`` false
    and no gdb attached); the machine's RunResult (status "stop" after ``k``).  ``log`` gets
    one-line notices: where it listens, attaches and detaches."""
    dbg = target if isinstance(target, Debugger) else Debugger(target)
    server = GdbServer(dbg, address, wait=wait, commands=commands, log=log)
    server.start()
    (log or (lambda t: None))(f"gdb: listening on {server.address}" +
                              (" (the machine waits for gdb)" if wait else ""))
    try:
        while not server.finished.wait(0.2):
            pass
        return server.result
    finally:
        server.close()
