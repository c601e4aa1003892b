"""Linear memory hooks (``hooks.mem_read/mem_write/mem_access``, the debugger's ``watch``, the
guest's DR0-DR3 data breakpoints) see every element of a REP string instruction.

REP MOVS/STOS (and REPE CMPS, REP(N)E SCASB) move runs of elements in bulk
(``aero.cpu.sem.strings._strop_span``); a run must never cover a watched byte, or the watch
misses the accesses.  With paging on, a linear watch marks only the MMU's ``nofast_r`` /
``nofast_w`` page sets (no physical page flag), and the bulk path used to check the physical
flags only: a write hook on linear 0x406FF0-0x407000 saw none of the four REP MOVSD writes the
paging32 guest makes there.

The references are independent of the engine:

* a model of the string instructions in this file (a few lines of Python per instruction over a
  bytearray) gives every access, its value, the old value a write replaces and the instruction
  count of the element making it (REP iterations count one each);
* the same machine stepped one instruction at a time (``Machine.step``: a REP runs one element
  per step, never in bulk) must report exactly the same accesses;
* a run where every hit stops the machine must stop right after each hitting element, with
  [E]CX and EIP showing the REP's progress, and end in the same state as a run without hooks.

Everything runs in real mode, 32-bit flat protected mode (paging off) and with 32-bit paging
(a non-identity mapping, and an alias of the watched physical page), with the JIT on and off.
"""

import os
import struct

import pytest

from aero.build import build_machine
from aero.config import MachineConfig
from aero.cpu.flags import DF
from aero.cpu.sem import strings
from aero.cpu.presets import set_flat32
from aero.debug.debugger import Debugger
from aero.machine import Machine

GUESTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "guests"))

CODE = 0x1000                    # the program, at linear = physical 0x1000 in every mode
PASSES = 3                       # the program runs its REP this many times (JIT-compiled loop)
WINDOW = 0x6000                  # bytes of data the cases use, at offsets 0 .. WINDOW
PORT = 0xE9                      # debugcon: OUTS bytes are collected, INS reads 0xE9
READBACK = 0xE9

# paging: linear 0x400000 + x -> physical 0x200000 + x, and linear 0x500000 + x too (an alias)
PD, PT0, PT1 = 0x10000, 0x11000, 0x12000
PG_WINDOW, PG_PHYS, PG_ALIAS = 0x400000, 0x200000, 0x500000
MODES = {                        # mode: (linear window, physical window)
    "real": (0x20000, 0x20000),                 # DS = ES = 0x2000, 16-bit addressing
    "flat": (0x200000, 0x200000),               # protected mode, paging off
    "paging": (PG_WINDOW, PG_PHYS),
}

# op: (opcode bytes after the REP prefix, element size); dword forms get 0x66 in real mode
OPS = {
    "movsb": (b"\xa4", 1), "movsd": (b"\xa5", 4), "stosd": (b"\xab", 4), "lodsd": (b"\xad", 4),
    "cmpsd": (b"\xa7", 4), "scasb": (b"\xae", 1), "outsb": (b"\x6e", 1), "insb": (b"\x6c", 1),
}


class Case:
    """One REP instruction: ``rep`` 0xF3 (REP/REPE) or 0xF2 (REPNE), offsets of the source and
    destination in the window, the count, EAX, the direction flag, the hooks as
    (kind "r"/"w"/"rw", start offset, end offset), initial bytes, ``alias``: the destination
    is addressed through the alias of the window (paging only), and ``silent``: no access is
    for the hooks (the model says so too)."""

    def __init__(self, name, op, count, src=0, dst=0, hooks=(), rep=0xF3, eax=0, down=False,
                 init=(), alias=False, silent=False):
        self.name, self.op, self.count = name, op, count
        self.src, self.dst, self.hooks, self.rep = src, dst, hooks, rep
        self.eax, self.down, self.init, self.alias = eax, down, init, alias
        self.silent = silent

    def __repr__(self):
        return self.name


def _pattern():
    mem = bytearray((i * 37 + 11) & 0xFF for i in range(WINDOW))
    return mem


CASES = [
    # the destination runs from an unwatched page into the watched range
    Case("movsd-into-write-watch", "movsd", 16, src=0x3000, dst=0x0FF0,
         hooks=[("w", 0x1008, 0x1010)]),
    # the colleague's report: the run starts in the watched page, and runs out of the range
    Case("movsd-write-watch-first-page", "movsd", 16, src=0x3000, dst=0x0FF0,
         hooks=[("w", 0x0FF0, 0x1000)]),
    Case("movsb-into-write-watch-unaligned", "movsb", 20, src=0x3001, dst=0x0FFA,
         hooks=[("w", 0x1001, 0x1003)]),
    Case("stosd-into-write-watch", "stosd", 8, dst=0x1FF8, eax=0xA5C3E1F7,
         hooks=[("w", 0x2000, 0x2004)]),
    Case("stosd-write-watch-mid-page", "stosd", 0x300, dst=0x2000, eax=0x01020304,
         hooks=[("w", 0x2400, 0x2402)]),
    # the source side
    Case("movsd-source-read-watch", "movsd", 8, src=0x0FF8, dst=0x5000,
         hooks=[("r", 0x1000, 0x1008)]),
    Case("movsb-both-sides", "movsb", 24, src=0x0FF4, dst=0x2FF8,
         hooks=[("r", 0x1002, 0x1004), ("w", 0x3000, 0x3001), ("rw", 0x2FF9, 0x3002)]),
    Case("movsd-down-into-write-watch", "movsd", 8, src=0x4010, dst=0x1008, down=True,
         hooks=[("w", 0x0FF8, 0x0FFC)]),
    # a write watch does not see reads, a read watch no writes
    Case("movsd-watch-wrong-direction", "movsd", 8, src=0x0FF8, dst=0x2FF8,
         hooks=[("w", 0x1000, 0x1008), ("r", 0x3000, 0x3008)], silent=True),
    # reads by the other REP string instructions
    Case("lodsd-read-watch", "lodsd", 6, src=0x0FF8, hooks=[("r", 0x1000, 0x1004)]),
    Case("repe-cmpsd-read-watch-destination", "cmpsd", 12, src=0x0FF0, dst=0x3FF0,
         init=[(0x0FF0, bytes(range(48))), (0x3FF0, bytes(range(40)) + b"\xff" * 8)],
         hooks=[("r", 0x4004, 0x400C)]),
    Case("repe-cmpsd-read-watch-source", "cmpsd", 12, src=0x0FF0, dst=0x3FF0,
         init=[(0x0FF0, bytes(range(48))), (0x3FF0, bytes(range(48)))],
         hooks=[("rw", 0x1000, 0x1004)]),
    Case("repne-scasb-read-watch", "scasb", 64, dst=0x0FF0, rep=0xF2, eax=0x7E,
         init=[(0x0FF0, bytes(0x20) + b"\x7e")], hooks=[("r", 0x1008, 0x100A)]),
    Case("repe-scasb-read-watch", "scasb", 64, dst=0x0FF0, eax=0x00,
         init=[(0x0FF0, bytes(0x18) + b"\x01")], hooks=[("r", 0x1004, 0x1006)]),
    Case("rep-outsb-read-watch", "outsb", 8, src=0x0FFC, hooks=[("r", 0x1000, 0x1002)]),
    Case("rep-insb-write-watch", "insb", 8, dst=0x0FFC, hooks=[("w", 0x1000, 0x1002)]),
    # paging: writes through another linear page mapping the watched bytes are not linear hits
    Case("movsd-through-alias", "movsd", 16, src=0x3000, dst=0x0FF0, alias=True, silent=True,
         hooks=[("w", 0x0FF0, 0x1010)]),
]


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------
def program(mode, case, si, di):
    """mov [e]cx, count / mov [e]si / mov [e]di / REP op / dec [e]bx / jnz back / hlt; and the
    offset of the REP instruction and its length."""
    opcode, size = OPS[case.op]
    if mode == "real":
        imm = struct.Struct("<H").pack
        opcode = (b"\x66" if size == 4 else b"") + opcode
    else:
        imm = struct.Struct("<I").pack
    code = b"\xb9" + imm(case.count) + b"\xbe" + imm(si) + b"\xbf" + imm(di)
    rep_at = len(code)
    code += bytes((case.rep,)) + opcode
    rep_len = len(code) - rep_at
    code += b"\x4b"                                         # dec [e]bx
    code += b"\x75" + bytes(((-(len(code) + 2)) & 0xFF,))  # jnz to the start
    code += b"\xf4"                                         # hlt (IF = 0: the run ends)
    return code, rep_at, rep_len


def make_machine(mode, case, jit, out=None):
    m = Machine(MachineConfig(bios=None, memory=4, jit=jit, jit_threshold=0,
                              debugcon=out.append if out is not None else None))
    cpu, bus = m.cpu, m.bus
    lin, phys = MODES[mode]
    if mode == "real":
        for s in range(6):
            cpu.load_seg_real(s, 0)
        cpu.load_seg_real(0, lin >> 4)                      # ES
        cpu.load_seg_real(3, lin >> 4)                      # DS
        seg = lin
    else:
        set_flat32(cpu)
        seg = 0
        if mode == "paging":
            bus.load(PD, struct.pack("<2I", PT0 | 3, PT1 | 3))
            bus.load(PT0, struct.pack("<1024I", *[(i << 12) | 3 for i in range(1024)]))
            bus.load(PT1, struct.pack("<512I", *[(PG_PHYS + ((i & 0xFF) << 12)) | 3
                                                 for i in range(512)]))
            cpu.write_cr3(PD)
            cpu.write_cr0(cpu.cr0 | 0x80000000)
            assert cpu.mmu.paging
    mem = _pattern()
    for off, data in case.init:
        mem[off: off + len(data)] = data
    bus.load(phys, bytes(mem))
    dst_base = PG_ALIAS if case.alias else lin
    code, rep_at, rep_len = program(mode, case, lin + case.src - seg, dst_base + case.dst - seg)
    bus.load(CODE, code)
    cpu.eip = CODE
    cpu.R[0] = case.eax
    cpu.R[2] = PORT
    cpu.R[3] = PASSES
    cpu.R[4] = 0x9000
    if case.down:
        cpu.flags |= DF
    return m, CODE + rep_at, rep_len


def window(m, mode):
    phys = MODES[mode][1]
    return bytes(m.bus.ram[phys: phys + WINDOW])


def add_hooks(m, mode, case, stop, seen):
    """The case's hooks; each records (icount, hook index, write, address, size, value, old,
    eip) and stops the machine if ``stop``."""
    lin = MODES[mode][0]
    make = {"r": m.hooks.mem_read, "w": m.hooks.mem_write, "rw": m.hooks.mem_access}
    for i, (kind, lo, hi) in enumerate(case.hooks):
        def fn(mm, acc, i=i):
            seen.append((mm.cpu.now(), i, acc.write, acc.address, acc.size, acc.value,
                         acc.old if acc.write else None, acc.eip))
            return stop
        make[kind](fn, lin + lo, lin + hi)


# ---------------------------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------------------------
def model(mode, case):
    """Run the program on a model: (accesses the hooks must report, in order, as add_hooks
    records them but with the element index instead of the EIP; the window afterwards; the
    bytes OUTS sends; REP iterations per pass)."""
    lin = MODES[mode][0]
    opcode, size = OPS[case.op]
    mem = _pattern()
    for off, data in case.init:
        mem[off: off + len(data)] = data
    step = -size if case.down else size
    dst_lin = PG_ALIAS if case.alias else lin
    mask = (1 << (8 * size)) - 1
    hits, out = [], bytearray()
    t = 0
    iters = None

    def rd(x):
        return int.from_bytes(mem[x: x + size], "little")

    def access(t, i, write, address, value, old):
        for h, (kind, lo, hi) in enumerate(case.hooks):
            if (("w" in kind) if write else ("r" in kind)) and \
                    address < lin + hi and address + size > lin + lo:
                hits.append((t, h, write, address, size, value, old if write else None, i))

    for _ in range(PASSES):
        t += 3                                           # mov ecx / mov esi / mov edi
        s, d = case.src, case.dst
        n = 0
        for i in range(case.count):
            if case.op in ("movsb", "movsd"):
                v, old = rd(s), rd(d)
                access(t + i, i, False, lin + s, v, v)
                mem[d: d + size] = v.to_bytes(size, "little")
                access(t + i, i, True, dst_lin + d, v, old)
            elif case.op == "stosd":
                v, old = case.eax & mask, rd(d)
                mem[d: d + size] = v.to_bytes(size, "little")
                access(t + i, i, True, dst_lin + d, v, old)
            elif case.op == "insb":
                v, old = READBACK, rd(d)
                mem[d: d + size] = v.to_bytes(size, "little")
                access(t + i, i, True, dst_lin + d, v, old)
            elif case.op in ("lodsd", "outsb"):
                v = rd(s)
                access(t + i, i, False, lin + s, v, v)
                if case.op == "outsb":
                    out.append(v)
            elif case.op == "cmpsd":
                a, b = rd(s), rd(d)
                access(t + i, i, False, lin + s, a, a)
                access(t + i, i, False, dst_lin + d, b, b)
            elif case.op == "scasb":
                b = rd(d)
                access(t + i, i, False, dst_lin + d, b, b)
            s, d = s + step, d + step
            n += 1
            if case.op == "cmpsd" and a != b:
                break                                    # REPE: ends on a difference
            if case.op == "scasb" and (b == case.eax & mask) == (case.rep == 0xF2):
                break                                    # REPNE: on a match; REPE: a mismatch
        assert iters in (None, n)
        iters = n
        t += n + 2                                       # the iterations, dec, jnz
    return hits, bytes(mem), bytes(out), iters


def expect_hits(model_hits, rep_eip):
    return [(t, h, w, a, s, v, o, rep_eip) for t, h, w, a, s, v, o, _ in model_hits]


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jit", ["on", "off"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_hooks_see_every_rep_element(case, mode, jit):
    if case.alias and mode != "paging":
        pytest.skip("an alias needs paging")
    want, want_mem, want_out, iters = model(mode, case)
    assert bool(want) != case.silent, "the case must touch its watched range (or say it not)"

    # watch-free: the guest does what the model says (this run takes the bulk paths)
    out0 = []
    plain, rep_eip, rep_len = make_machine(mode, case, jit, out0)
    r = plain.run_until(icount=100_000)
    assert r.status == "halted", r
    assert window(plain, mode) == want_mem and bytes(out0) == want_out
    assert r.icount == PASSES * (iters + 5) + 1
    if jit == "on":
        assert plain.cpu.cache.jit.compiles > 0          # the loop around the REP runs compiled

    # hooks that do not stop: every access reported, at the element's instruction count
    out = []
    m, _, _ = make_machine(mode, case, jit, out)
    seen = []
    add_hooks(m, mode, case, False, seen)
    r = m.run_until(icount=100_000)
    assert r.status == "halted", r
    assert seen == expect_hits(want, rep_eip)
    assert m.state_hash() == plain.state_hash() and bytes(out) == want_out

    # the element-by-element reference: single steps (one REP iteration each)
    ref, _, _ = make_machine(mode, case, jit)
    stepped = []
    add_hooks(ref, mode, case, False, stepped)
    while True:
        r = ref.step()
        if r.status != "limit":
            break
    assert r.status == "halted", r
    assert stepped == seen
    assert ref.state_hash() == plain.state_hash()

    # hooks that stop: the machine stops right after each hitting element, mid-REP
    st, _, _ = make_machine(mode, case, jit)
    stops_seen = []
    add_hooks(st, mode, case, True, stops_seen)
    stops = []
    while True:
        r = st.run_until(icount=100_000)
        if r.status != "hook":
            break
        cpu = st.cpu
        stops.append((r.icount, cpu.R[1] & (0xFFFF if mode == "real" else 0xFFFFFFFF),
                      cpu.eip))
    assert r.status == "halted", r
    assert stops_seen == seen
    want_stops = []
    for t, _h, _w, _a, _s, _v, _o, i in want:
        done = i + 1
        stop = (t + 1, case.count - done, rep_eip if done < iters else rep_eip + rep_len)
        if stop not in want_stops:
            want_stops.append(stop)
    assert stops == want_stops
    assert st.state_hash() == plain.state_hash()


def test_bulk_moves_avoid_only_the_watched_page(monkeypatch):
    """With paging on, the bulk path skips exactly the pages a linear watch covers: the spans it
    moves in bulk never overlap the watched page, the other pages still move in bulk, and once
    the hook is removed the whole REP moves in bulk again."""
    case = CASES[0]                           # REP MOVSD of 16 dwords, 0x0FF0 -> 0x1030
    lin = MODES["paging"][0]
    spans = []
    real = strings._strop_span

    def spy(cpu, s, off, n, size, down, amask, write):
        k, phys = real(cpu, s, off, n, size, down, amask, write)
        spans.append((write, off, k))
        return k, phys
    monkeypatch.setattr(strings, "_strop_span", spy)
    m, _, _ = make_machine("paging", case, "off")
    h = m.hooks.mem_write(lambda mm, acc: None, lin + 0x1008, lin + 0x1010)
    m.cpu.R[3] = 1                            # one pass
    assert m.run_until(icount=100_000).status == "halted"
    bulk = [(off, off + 4 * k) for write, off, k in spans if write and k > 0]
    assert bulk == [(lin + 0x0FF0, lin + 0x1000)]            # the page before the watched one
    assert h.hits == 2
    h.remove()
    spans.clear()
    m.cpu.eip, m.cpu.R[3] = CODE, 1
    m.cpu.halted = False
    assert m.run_until(icount=100_000).status == "halted"
    bulk = [(off, off + 4 * k) for write, off, k in spans if write and k > 0]
    assert bulk == [(lin + 0x0FF0, lin + 0x1000), (lin + 0x1000, lin + 0x1030)]
    assert all(k > 0 for _, _, k in spans)


# ---------------------------------------------------------------------------------------------
# The guest that showed it: tests/guests/paging32.bin
# ---------------------------------------------------------------------------------------------
PAGING32_DST = 0x406FF0          # REP MOVSD destination (LIN + 0x6FF0), physical 0x206FF0
PAGING32_SRC = 0x50000           # its source (identity mapped)


def paging32(jit):
    return build_machine(MachineConfig(bios=os.path.join(GUESTS, "paging32.bin"),
                                       debug_exit_port=0xF4, jit=jit))


def _record(m, seen, stop, physical=False, dst=PAGING32_DST, src=PAGING32_SRC):
    def rec(mm, acc):
        seen.append((mm.cpu.now(), acc.write, acc.address, acc.value))
        return stop
    m.hooks.mem_write(rec, dst, dst + 0x10, physical=physical)
    m.hooks.mem_read(rec, src, src + 0x10, physical=physical)


@pytest.mark.parametrize("jit", ["on", "off"])
def test_paging32_rep_movsd_into_a_watched_page(jit):
    # the four dwords REP MOVSD writes before it faults on the not-present page 0x407000, and
    # the four it reads for them
    vals = [0x11110000 + i for i in range(4)]

    m = paging32(jit)
    seen = []
    _record(m, seen, False)
    r = m.run_until(icount=3_000_000)
    assert r.status == "debug-exit" and r.exit_code == 1
    writes = [(a, v) for _, w, a, v in seen if w]
    reads = [(a, v) for _, w, a, v in seen if not w]
    assert writes == [(PAGING32_DST + 4 * i, v) for i, v in enumerate(vals)]
    assert reads == [(PAGING32_SRC + 4 * i, v) for i, v in enumerate(vals)]
    # element i reads then writes, both at the REP's first count + i
    t0 = seen[0][0]
    assert [t for t, *_ in seen] == [t0 + i // 2 for i in range(8)]
    assert t0 == 43250

    # a physical watch on the same bytes (the page flags the bulk path always honoured)
    p = paging32(jit)
    phys = []
    _record(p, phys, False, physical=True, dst=PAGING32_DST - 0x200000)
    p.run_until(icount=3_000_000)
    assert [(t, w, v) for t, w, _, v in phys] == [(t, w, v) for t, w, _, v in seen]

    # element by element: the machine stepped through the REP
    ref = paging32(jit)
    ref.run_until(icount=t0 - 20)
    stepped = []
    _record(ref, stepped, False)
    while ref.cpu.icount < t0 + 20:
        assert ref.step().status == "limit"
    assert stepped == seen

    # stopping: after each element, ECX counting down, EIP on the REP MOVSD
    st = paging32(jit)
    hits = []
    _record(st, hits, True)
    stops = []
    while (r := st.run_until(icount=3_000_000)).status == "hook":
        stops.append((r.icount, st.cpu.R[1], st.cpu.R[6], st.cpu.R[7]))
    assert r.status == "debug-exit" and r.exit_code == 1
    assert stops == [(t0 + i + 1, 15 - i, PAGING32_SRC + 4 * (i + 1), PAGING32_DST + 4 * (i + 1))
                     for i in range(4)]
    assert hits == seen


def test_paging32_debugger_watch_stops_in_the_rep():
    m = paging32("on")
    d = Debugger(m)
    p = d.watch(PAGING32_DST, 16, "w")
    s = d.cont()
    assert s.reason == "watchpoint" and s.point is p, s
    acc = s.details["access"]
    assert (acc.address, acc.value, acc.write) == (PAGING32_DST, 0x11110000, True)
    assert m.cpu.icount == 43251 and d.reg("ecx") == 15 and d.reg("edi") == PAGING32_DST + 4
    for i in range(1, 4):
        s = d.cont()
        assert s.reason == "watchpoint" and s.details["access"].value == 0x11110000 + i
    d.delete(p.id)
    assert d.cont().reason == "exit"


# ---------------------------------------------------------------------------------------------
# The guest's own data breakpoints (DR0-DR3 are linear watches too)
# ---------------------------------------------------------------------------------------------
GDT, IDT, HANDLER = 0x2000, 0x2800, 0x1800


@pytest.mark.parametrize("jit", ["on", "off"])
@pytest.mark.parametrize("mode", ["flat", "paging"])
def test_guest_data_breakpoint_traps_after_the_rep_element(mode, jit):
    """DR1 (write, 4 bytes) on the 6th dword REP MOVSD writes: #DB after that element, with the
    REP's progress in the registers and its address as the saved EIP."""
    case = CASES[0]
    m, rep_eip, _ = make_machine(mode, case, jit)
    cpu = m.cpu
    lin = MODES[mode][0]
    # a GDT (flat code 0x08, data 0x10) and an IDT whose #DB gate leads to HLT
    m.bus.load(GDT, struct.pack("<6I", 0, 0, 0xFFFF, 0xCF9A00, 0xFFFF, 0xCF9200))
    cpu.gdtr[:] = [GDT, 23]
    gate = struct.pack("<2I", (0x08 << 16) | HANDLER, (HANDLER & 0xFFFF0000) | 0x8E00)
    m.bus.load(IDT + 8, gate)
    cpu.idtr[:] = [IDT, 0x7FF]
    m.bus.load(HANDLER, b"\xf4")
    target = lin + 0x1004                     # dst 0x0FF0: element 5
    cpu.dr[1] = target
    cpu.dr[7] = 0x4 | (0b1101 << 20)          # L1, write, 4 bytes
    cpu.dr_changed()
    r = m.run_until(icount=100_000)
    assert r.status == "halted", r
    assert cpu.eip == HANDLER + 1 and cpu.dr[6] & 0x2
    assert r.icount == 3 + 6 + 1              # three MOVs, six elements, the handler's HLT
    esp = cpu.R[4]
    saved_eip = int.from_bytes(m.bus.ram[esp: esp + 4], "little")
    assert saved_eip == rep_eip
    assert cpu.R[1] == case.count - 6 and cpu.R[7] == lin + case.dst + 24
