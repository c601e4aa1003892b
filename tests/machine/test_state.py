"""Whole-machine state: get_state/set_state on every scenario, snapshot files, and the pieces
they rest on (typed inputs, the clock's events, dirty-page tracking)."""

import pytest

from aero import scenarios as S
from aero.inputs import KeyInput, MouseInput, SerialInput, event_from_data, event_to_data
from aero.mem.pages import ZERO_PAGE
from aero.testing.hashpoints import GOLDEN
from aero.testing.statediff import machine_diff

import json

ENDS = {k: v["end"][2] for k, v in json.load(open(GOLDEN)).items() if "@" not in k}


def ref_at(tmp_path, name, st):
    """A machine run straight to the state's instruction count (to show what differs)."""
    m = build(tmp_path, name)
    m.run(max_instructions=st["cpu"]["icount"])
    return m


def build(tmp_path, name, out=None, **settings):
    if out is not None:
        settings["serial"] = out.append
    return S.build(S.load(name), str(tmp_path), **settings)


@pytest.mark.parametrize("name", S.names())
def test_round_trip_and_continuing_match_the_uninterrupted_run(tmp_path, name):
    end = ENDS[name]
    points = sorted({max(1, end // 3), max(2, 2 * end // 3)})
    out_a = []
    a = build(tmp_path, name, out_a)
    snaps = []
    for p in points:
        assert a.run(max_instructions=p).status == "limit"
        snaps.append((a.get_state(), a.state_hash(), len(out_a)))
        assert a._ram_mirror.audit(a.bus.dirty) == []           # nothing bypassed tracking
        assert a._vram_mirror.audit(a.vga.vram_dirty) == []
    ra = a.run()
    final = (ra.status, ra.exit_code, ra.icount, a.state_hash())

    out_b = []
    b = build(tmp_path, name, out_b)
    for st, h, n_out in snaps:                 # b is fresh, then a machine that ran elsewhere
        b.set_state(st)
        assert b.state_hash() == h, machine_diff(ref_at(tmp_path, name, st), b)
        start = len(out_b)
        rb = b.run()
        assert (rb.status, rb.exit_code, rb.icount, b.state_hash()) == final
        assert bytes(out_b[start:]) == bytes(out_a[n_out:])


def test_state_survives_a_round_trip_through_a_file(tmp_path):
    from aero import statefile
    a = build(tmp_path, "pmode")
    a.run(max_instructions=60_000)
    path = tmp_path / "s.aerostate"
    statefile.save(str(path), a)
    h = a.state_hash()
    header, st = statefile.load(str(path))
    assert header["icount"] == 60_000 and header["machine"]["memory_mib"] == 32
    b = build(tmp_path, "pmode")
    statefile.check_identity(header["machine"], b)
    b.set_state(st)
    assert b.state_hash() == h
    assert b.run().exit_code == a.run().exit_code == 33


def test_a_snapshot_after_a_short_run_copies_only_changed_pages(tmp_path):
    m = build(tmp_path, "demo")
    m.run(max_instructions=100_000)
    s1 = m.get_state()
    m.run(max_instructions=150_000)
    s2 = m.get_state()
    ram = sum(1 for x, y in zip(s1["ram"], s2["ram"]) if x is not y)
    vram = sum(1 for x, y in zip(s1["vram"], s2["vram"]) if x is not y)
    assert 0 < ram < 64 and 0 < vram < 64           # of 8192 and 4096 pages
    assert s2["ram"].count(ZERO_PAGE) > len(s2["ram"]) // 2     # zero pages shared too
    # the older snapshot is untouched and still restores exactly
    m2 = build(tmp_path, "demo")
    m2.run(max_instructions=100_000)
    h1 = m2.state_hash()
    m.set_state(s1)
    assert m.state_hash() == h1


def test_restore_writes_back_only_what_differs(tmp_path):
    m = build(tmp_path, "pmode")
    m.run(max_instructions=50_000)
    st = m.get_state()
    m.run(max_instructions=51_000)
    dirty = set(m.bus.dirty)
    assert dirty
    assert sorted(m._ram_mirror.restore(st["ram"], m.bus.dirty)) == sorted(dirty)


def test_pending_inputs_are_typed_events_in_the_state(tmp_path):
    m = build(tmp_path, "irq")                  # its --keys are pending at the start
    st = m.get_state()
    pending = st["inputs"]["pending"]
    assert pending and all(data[0] == "key" for _, _, data in pending)
    for ev in (KeyInput("a", True), MouseInput(1, -2, 0, 5), SerialInput(b"hi\n", 1)):
        assert event_from_data(event_to_data(ev)) == ev
    with pytest.raises(ValueError):
        event_from_data(["telepathy", 1])


def test_clock_restore_checks_the_devices_recreated_every_event(tmp_path):
    m = build(tmp_path, "irq")
    m.run(max_instructions=20_000)
    st = m.get_state()
    st["clock"]["events"].append([10 ** 9, 12345, "phantom"])
    with pytest.raises(ValueError, match="phantom"):
        m.set_state(st)


def test_state_of_another_machine_is_refused(tmp_path):
    a = build(tmp_path, "pmode")
    st = a.get_state()
    b = build(tmp_path, "cdrom")                    # a CD-ROM where pmode has a floppy
    with pytest.raises(ValueError, match="diskette"):
        b.set_state(st)
    c = build(tmp_path, "hello", fdb=str(tmp_path / "hello.img"))   # one more device
    with pytest.raises(ValueError, match="other devices"):
        c.set_state(st)


def test_get_state_inside_an_instruction_is_refused(tmp_path):
    m = build(tmp_path, "hello")
    errors = []

    def grab(mm, addr):
        try:
            mm.get_state()
        except RuntimeError as e:
            errors.append(str(e))
    m.hooks.exec(grab, 0x7C00)
    m.run()
    assert errors and "inside an instruction" in errors[0]


def test_restore_while_a_bios_call_polls():
    """INT 14h AH=01h waits for the UART with a poll that wakes long before its deadline; a
    state saved then restores with the wake-up at its own tick (it used to be re-armed at the
    deadline, which the restore refused as an event the snapshot does not have)."""
    from aero.build import build_machine
    from aero.config import MachineConfig
    m = build_machine(MachineConfig(demo=True))
    bios = next(d for d in m.devices if hasattr(d, "_pending"))
    m.run_until(instructions=300)
    polls = [c for c in bios._pending.values() if c.vector == 0x14 and c.wake_ev]
    assert polls and polls[0].wake_ev.when < polls[0].deadline
    n = build_machine(MachineConfig(demo=True))
    n.set_state(m.get_state())
    assert n.state_hash() == m.state_hash()
    r1, r2 = m.run(), n.run()
    assert (r1.status, m.cpu.icount, m.state_hash()) == (r2.status, n.cpu.icount, n.state_hash())
