"""Pieces of the translation that decide correctness: which lazy-flag stores are dead, which
calls are helpers (keywords are not), what a unit's source looks like."""

from aero.cpu import flags
from aero.jit.translate import dead_flag_stores, may_exit, opaque, stacky

ADD = "a = r0\nb = r3\nr = (a + b) & 0xffffffff\nr0 = r\ncpu.lf = (2, a, b, r)"
XOR = "a = r2\nb = r0\nr = a ^ b\nr2 = r\ncpu.lf = (8, a, b, r)"
INC = f"a = r7\nr = (a + 1) & 0xffffffff\nr7 = r\ncpu.lf = ({flags.INC_K + 2}, a, cf_source(cpu), r)"
MOV = "r1 = r2"
LOAD = "ea = 0x2000\nr1 = rd32(3, ea)"
SHL = "a = r0\nc = r1 & 31\nif c:\n    r = (a << c) & 0xffffffff\n    r0 = r\n    cpu.lf = (2, a, a, r)"


def test_a_store_overwritten_before_any_reader_is_dead():
    assert dead_flag_stores([ADD, XOR]) == {0}
    assert dead_flag_stores([ADD, MOV, MOV, XOR]) == {0}


def test_a_reader_keeps_it():
    assert dead_flag_stores([ADD, INC]) == set()          # INC keeps CF: it reads the flags
    assert dead_flag_stores([XOR, ADD, INC]) == {0}


def test_anything_that_may_fault_or_leave_keeps_it():
    assert dead_flag_stores([ADD, LOAD, XOR]) == set()    # a #PF handler sees ADD's flags
    assert dead_flag_stores([ADD, SHL]) == set()          # SHL by 0 changes no flag


def test_keywords_are_not_calls():
    jcc = "lf = cpu.lf\ncpu.eip = 0x10 if ((lf[3] == 0) if lf is not None else (cpu.flags & 0x40)) else 0x20"
    assert not opaque(jcc) and not may_exit(jcc)
    assert opaque("cpu.interrupt(3, None, 'soft', 0x10)")
    ret = "t = cpu.stack_read(0, 32)\ncpu.stack_add(4)\ncpu.eip = t"
    assert stacky(ret) and not opaque(ret) and may_exit(ret)


def test_specialised_branches_agree_with_cond():
    """Every condition code after SUB/CMP of every width, and ZF after other kinds: the
    specialised test gives what aero.cpu.flags.cond gives on the same lazy flags."""
    import random
    from types import SimpleNamespace
    from aero.cpu import flags
    from aero.jit.translate import specialise_branch
    rng = random.Random(3)
    checked = 0
    for kind in range(flags.DEC_K + 3):
        mask = flags.MASK[kind % 3]
        for cc in range(16):
            prev = f"a = 1\ncpu.lf = ({kind}, a, b, r)"
            jcc = f"pc = 0x10 if cond(cpu, {cc}) else 0x20"
            spec = specialise_branch(prev, jcc)
            if spec == jcc:
                continue
            for _ in range(200):
                a = rng.choice((0, 1, mask, mask >> 1, (mask >> 1) + 1, rng.getrandbits(32) & mask))
                b = rng.choice((0, 1, mask, mask >> 1, (mask >> 1) + 1, rng.getrandbits(32) & mask))
                op = kind // 3 * 3               # a tuple as the templates make it
                if op == flags.ADD_K:
                    r = (a + b) & mask
                elif op == flags.SUB_K:
                    r = (a - b) & mask
                elif op == flags.LOGIC_K:
                    r = rng.choice((a & b, a | b, a ^ b))
                elif op in (flags.SHR_K, flags.SAR_K):
                    b = rng.randrange(1, 32)     # the count
                    sign = flags.SIGN[kind % 3]
                    s = a - (sign << 1) if op == flags.SAR_K and a & sign else a
                    r = (s >> b) & mask
                elif op == flags.MUL_K:
                    a, b = 0, rng.choice((0, 1))    # CF = OF = b
                    r = rng.getrandbits(32) & mask
                else:
                    b = rng.choice((0, 1))       # the carry source INC/DEC keep
                    r = (a + 1) & mask if op == flags.INC_K else (a - 1) & mask
                cpu = SimpleNamespace(lf=(kind, a, b, r), flags=2)
                want = 0x10 if flags.cond(cpu, cc) else 0x20
                env = {"a": a, "b": b, "r": r}
                exec(spec, {}, env)
                assert env["pc"] == want, (kind, cc, a, b, r, spec)
                checked += 1
    assert checked > 5000


def _run_code(code: bytes, regs, jit: dict):
    from aero.config import MachineConfig
    from aero.cpu.presets import set_flat32
    from aero.machine import Machine
    m = Machine(MachineConfig(bios=None, memory=4, **jit))
    cpu = set_flat32(m.cpu)
    cpu.bus.load(0x1000, code)
    cpu.R[:] = list(regs)
    cpu.eip = 0x1000
    r = m.run_until(icount=100000)
    return r.status, tuple(cpu.R), cpu.get_flags(), cpu.icount


def test_inc_dec_carry_forwarded_from_the_previous_flags():
    """INC/DEC after an ALU instruction of the same block take their carry source from it
    (``forward_cf``): ADC/SBB/SETC/PUSHF after chains of INC/DEC see the CF the first
    instruction set, exactly as in the interpreter, over random operands, in a loop that the
    JIT translates (threshold 0) and runs many times."""
    import random
    rng = random.Random(5)
    alu = [b"\x01\xd8", b"\x29\xd8", b"\x21\xd8", b"\x39\xd8", b"\x83\xc0\x7f", b"\xf9", b"\xf8"]
    incdec = [b"\x41", b"\x49", b"\x46", b"\x4e", b"\xff\xc6"]
    readers = [b"\x11\xd7", b"\x19\xd7", b"\x0f\x92\xc2", b"\x9c\x5d"]   # adc, sbb, setc dl, pushf/pop ebp
    for _ in range(40):
        body = b""
        for _ in range(6):
            body += rng.choice(alu) + b"".join(rng.choice(incdec) for _ in range(rng.randint(1, 3)))
            body += rng.choice(readers)
        # ESP at 0x8000; a counted loop around the body (ecx is the body's too: use [0x9000])
        code = (b"\xbc\x00\x80\x00\x00"                       # mov esp, 0x8000
                b"\xc7\x05\x00\x90\x00\x00\x40\x00\x00\x00"   # mov dword [0x9000], 64
                + body +
                b"\xff\x0d\x00\x90\x00\x00"                   # dec dword [0x9000]
                + b"\x0f\x85" + (-(len(body) + 12)).to_bytes(4, "little", signed=True)
                + b"\xf4")
        regs = [rng.getrandbits(32) for _ in range(8)]
        ref = _run_code(code, regs, {"jit": "off"})
        assert ref[0] == "halted" or ref[0] == "limit" or ref[0] == "halt", ref
        assert _run_code(code, regs, {"jit_threshold": 0}) == ref
        assert _run_code(code, regs, {"jit_threshold": 3}) == ref


# Three rounds of: add ebx, 0x40000000 (lazy flags, different each round from EBX =
# 0x3fffffff); mov [esi], eax; add ecx, 0 (all six flags replaced); then ESI += EDI for the
# next round.  From the second round on the loop is translated code (threshold 0), which leaves ADD's
# flags in locals across the store.
_DEFERRED = (b"\xba\x03\x00\x00\x00"                  # mov edx, 3
             b"\x81\xc3\x00\x00\x00\x40" b"\x90\x90"    # L: add ebx, 0x40000000; nop; nop
             b"\x89\x06" b"\x83\xc1\x00"                # mov [esi], eax; add ecx, 0
             b"\x01\xfe" b"\x4a" b"\x75\xee" b"\xf4")      # add esi, edi; dec edx; jnz L; hlt


def test_a_store_between_keeps_the_flags_in_locals():
    from aero.jit.translate import deferred_flag_stores
    add = "a = r3\nb = 1\nr = (a + b) & 0xffffffff\nr3 = r\ncpu.lf = (2, a, b, r)"
    assert deferred_flag_stores([add, "ea = r6\nwr32(3, ea, r0)", ADD], set()) == \
        ({0}, {1: "(2, a, b, r)"})
    assert deferred_flag_stores([add, "ea = r6\nwr32(3, ea, r0)", INC], set()) == (set(), {})
    assert deferred_flag_stores([add, "a = rd32(3, r6)", ADD], set()) == (set(), {})


def test_flags_left_in_locals_reach_a_fault():
    """The third round's store crosses the segment's limit: #GP, then (no IDT) a triple
    fault.  The flags the CPU holds then are ADD's, recovered from the unit's frame."""
    from aero.cpu.flags import arith
    regs = [0, 0, 0, 0x3FFFFFFF, 0, 0, 0x3F0000, 0x7FE07FFF]       # ESI 0xfffffffe at the third
    want = _run_code(_DEFERRED, regs, {"jit": "off", "no_reboot": True})
    assert want[0] == "shutdown", want
    assert want[2] & 0x8D5 == arith((2, 0xBFFFFFFF, 0x40000000, 0xFFFFFFFF)), want
    assert _run_code(_DEFERRED, regs, {"jit_threshold": 0, "no_reboot": True}) == want


def test_flags_left_in_locals_reach_a_watch_callback():
    """A write watch on the store's address: the callback sees ADD's flags, in the interpreter
    and in translated code (the slow path puts them in place before it calls out), and a
    callback that stops the run leaves them there too."""
    from aero.config import MachineConfig
    from aero.cpu.presets import set_flat32
    from aero.machine import Machine
    for stop in (False, True):
        seen = {}
        for jit in ("off", "on"):
            m = Machine(MachineConfig(bios=None, memory=4, jit=jit, jit_threshold=0))
            cpu = set_flat32(m.cpu)
            cpu.bus.load(0x1000, _DEFERRED)
            cpu.R[6] = 0x3F0000
            cpu.R[3] = 0x3FFFFFFF
            cpu.eip = 0x1000
            got = seen[jit] = []

            def watch(mm, acc, got=got):
                got.append((mm.cpu.get_flags() & 0x8D5, mm.cpu.eip))
                return stop
            m.hooks.mem_write(watch, 0x3F0000, 0x3F0004)
            while m.run_until(icount=1000).status == "hook":
                got.append((cpu.icount, cpu.get_flags() & 0x8D5))
            assert sum(u.execs for u in cpu.cache.jit.units) if jit == "on" else True
        assert seen["off"] == seen["on"] and len(set(seen["off"])) == len(seen["off"]), seen


def test_a_watch_callback_sees_the_blocks_eip():
    """A block whose only calls out are memory accesses stores EIP (the block's start, as the
    interpreter has it) in the slow path, before a watch callback runs, not when it starts:
    here the second block of a translated loop (entered from the first inside the unit)."""
    from aero.config import MachineConfig
    from aero.cpu.presets import set_flat32
    from aero.machine import Machine
    code = (b"\xb9\x05\x00\x00\x00"       # mov ecx, 5
            b"\x83\xc0\x01\xeb\x00"         # L: add eax, 1; jmp M
            b"\x8b\x1e\x89\x07\x49\x75\xf4"  # M: mov ebx, [esi]; mov [edi], eax; dec ecx; jnz L
            b"\xf4")
    seen = {}
    for jit in ("off", "on"):
        m = Machine(MachineConfig(bios=None, memory=4, jit=jit, jit_threshold=0))
        cpu = set_flat32(m.cpu)
        cpu.bus.load(0x1000, code)
        cpu.R[6], cpu.R[7] = 0x3000, 0x3800
        cpu.eip = 0x1000
        got = seen[jit] = []
        m.hooks.mem_read(lambda mm, acc: got.append(("r", mm.cpu.eip, mm.cpu.now())), 0x3000, 0x3004)
        m.hooks.mem_write(lambda mm, acc: got.append(("w", mm.cpu.eip, mm.cpu.now())), 0x3800, 0x3804)
        assert m.run_until(icount=1000).status == "halted"
        assert sum(u.execs for u in cpu.cache.jit.units) if jit == "on" else True
    assert seen["off"] == seen["on"] and len(seen["off"]) == 10, seen
    assert {e for _, e, _ in seen["off"]} == {0x100A}, seen


def test_temporaries_substituted_only_where_exact():
    from aero.jit.translate import propagate_copies
    add = "a = R[0]\nb = R[3]\nr = (a + b) & 0xffffffff\nR[0] = r"
    assert propagate_copies([add], set()) == ["R[0] = ((R[0] + R[3]) & 0xffffffff)"]
    # a later specialised branch reads r: r stays
    assert propagate_copies([add, "pc = 1 if r == 0 else 2"], set())[0] == \
        "r = (R[0] + R[3]) & 0xffffffff\nR[0] = r"
    # flags left in locals describe them: all stay
    assert propagate_copies([add], {0}) == [add]
    # a memory read stays before the write that follows it (XCHG), and is never dropped
    xchg = ("ea = (R[7] + 0x12) & 0xFFFFFFFF\na = rmw8(3, ea)\nb = ((R[3] >> 8) & 0xFF)\n"
            "wr8(3, ea, b)\nR[3] = (R[3] & 0xFFFF00FF) | ((a) << 8)")
    assert "a = rmw8(3, ea)\n" in propagate_copies([xchg], set())[0]
    assert propagate_copies(["a = rd32(3, R[6])\nR[0] = 5"], set()) == \
        ["a = rd32(3, R[6])\nR[0] = 5"]
    # a helper between may change cpu.R: a copy of R[4] is not moved past it
    assert propagate_copies(["a = R[4]\nhelper(cpu)\nR[0] = a"], set()) == \
        ["a = R[4]\nhelper(cpu)\nR[0] = a"]
    # an IMUL whose flags are dead: its overflow bit is not computed
    imul = "a = R[3]\nif a & 0x80000000:\n    a -= 1\np = a * 3\nr = p & 0xffffffff\nR[3] = r\no = 0 if p < 9 else 1"
    assert "o = " not in propagate_copies([imul], set())[0]
    assert "o = " in propagate_copies([imul, "x = o"], set())[0]
