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
