"""Pieces of the translation that decide correctness: which lazy-flag stores are dead, which
calls are helpers (keywords are not), what a unit's source looks like."""

from aero.jit.translate import dead_flag_stores, may_exit, opaque, stacky

ADD = "a = r0\nb = r3\nr = (a + b) & 0xffffffff\nr0 = r\ncpu.lf = (2, a, b, r)"
XOR = "a = r2\nb = r0\nr = a ^ b\nr2 = r\ncpu.lf = (8, a, b, r)"
INC = "a = r7\nr = (a + 1) & 0xffffffff\nr7 = r\ncpu.lf = (11, a, cf_source(cpu), r)"
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
