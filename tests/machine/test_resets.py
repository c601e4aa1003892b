"""Time and limits across guest resets (issue 10): the instruction count and virtual time run on
from power-on through every reset (port 64h, 92h, CF9h, a triple fault), so a guest in a reboot
loop reaches --max-instructions, --state-hash counts from power-on, and `aero run` says how many
resets there were; --no-reboot ends the run at the first reset of any kind (as QEMU's does);
recordings, time travel and saved states work across resets.

The guest, reset_loop.asm, starts, counts its starts in RAM, writes the count to port E9h and
resets the machine again, by turns through each of the four ways, forever."""

import os
import random
import re
import shutil
import subprocess

import pytest

from aero.build import build_machine
from aero.cli import main
from aero.config import MachineConfig
from aero.trace.recorder import Recorder
from aero.trace.replay import open_recording, verify

HERE = os.path.dirname(__file__)
ROM = os.path.join(HERE, "reset_loop.bin")


def machine(**kw):
    out = bytearray()
    m = build_machine(MachineConfig(bios=ROM, debugcon=out.append, **kw))
    ticks = []                          # virtual time at each reset
    reset = m.reset

    def noted_reset():
        ticks.append(m.clock.now())
        reset()
    m.reset = noted_reset
    return m, out, ticks


def test_a_reboot_loop_reaches_the_instruction_limit():
    m, out, ticks = machine()
    r = m.run(max_instructions=5000, timeout=60)
    assert r.status == "limit" and r.icount == m.cpu.icount == 5000
    # every start wrote its count: the four ways of resetting all worked, many times over
    assert len(out) >= 100 and bytes(out) == bytes(i & 0xFF for i in range(1, len(out) + 1))
    assert m.resets == len(ticks) in (len(out), len(out) - 1)
    # virtual time ran on: strictly increasing reset times, now = retired + idle
    assert ticks == sorted(set(ticks)) and ticks[-1] < m.clock.now()
    assert m.clock.now() == m.cpu.icount + m.cpu.idle_time
    # the time-stamp counter starts again at 0 at a RESET (SDM Vol. 3, "Time-Stamp Counter")
    assert m.cpu.tsc() == m.clock.now() - ticks[-1]


def test_the_count_is_from_power_on_however_the_run_is_sliced():
    a, _, _ = machine()
    a.run(max_instructions=3001, timeout=60)
    b, _, _ = machine()
    rnd = random.Random(5)
    for _ in range(3001):
        if b.run_until(instructions=rnd.randrange(1, 200), icount=3001).status == "limit" \
                and b.cpu.icount == 3001:
            break
    assert b.cpu.icount == 3001 and a.resets == b.resets > 100
    assert a.state_hash() == b.state_hash()


def test_aero_run_reports_the_resets_and_the_count_from_power_on(tmp_path, capsys):
    dc = tmp_path / "dc.bin"
    code = main(["run", "--bios", ROM, "--headless", "--serial", "none", "--debugcon", str(dc),
                 "--max-instructions", "4000", "--state-hash", "--timeout", "60"])
    err = capsys.readouterr().err
    assert code == 0, err
    n = int(re.search(r"^aero: (\d+) resets$", err, re.M).group(1))
    assert n > 100 and len(dc.read_bytes()) in (n, n + 1)
    assert re.search(r"^state-hash icount=4000 sha256=[0-9a-f]{64}$", err, re.M)
    m, _, _ = machine()
    m.run(max_instructions=4000, timeout=60)
    assert m.resets == n and f"sha256={m.state_hash()}" in err


def test_no_reboot_ends_the_run_at_a_reset_request(capsys):
    m, out, ticks = machine(no_reboot=True)
    r = m.run(max_instructions=5000)
    assert r.status == "shutdown" and r.exit_code == 6 and r.detail == "reset requested"
    assert out == b"\x01" and m.resets == 0 and not ticks
    assert main(["run", "--bios", ROM, "--headless", "--serial", "none", "--no-reboot",
                 "--max-instructions", "5000"]) == 6
    err = capsys.readouterr().err
    assert re.fullmatch(r"aero: shutdown: reset requested after \d+ instructions\n", err), err


def test_no_reboot_ends_the_run_at_a_triple_fault():
    # the fourth start triple-faults: get there through three resets, go on with --no-reboot
    m, _, _ = machine()
    while m.resets < 3:
        m.step()
    nr, out, ticks = machine(no_reboot=True)
    nr.set_state(m.get_state())
    r = nr.run(max_instructions=20_000)
    assert r.status == "shutdown" and r.detail == "triple fault" and r.exit_code == 6
    assert nr.resets == 3 and not ticks and out == b"\x04"


def test_a_saved_state_between_resets_continues_the_same(tmp_path):
    ref, _, _ = machine()
    assert ref.run(max_instructions=2500, timeout=60).status == "limit"
    m, _, _ = machine()
    m.run(max_instructions=1234, timeout=60)
    st = m.get_state()
    fresh, _, _ = machine()
    fresh.set_state(st)
    assert fresh.resets == m.resets > 0 and fresh.cpu.tsc() == m.cpu.tsc()
    fresh.run(max_instructions=2500, timeout=60)
    assert fresh.state_hash() == ref.state_hash() and fresh.resets == ref.resets


def test_recording_replay_and_time_travel_across_resets(tmp_path):
    path = str(tmp_path / "loop.aerorec")
    m, _, ticks = machine()
    rec = Recorder(m, path=path, keyframe_every=700, checkpoint_every=64).start()
    r = m.run(max_instructions=4000, timeout=60)
    rec.stop(r)
    assert r.status == "limit" and m.resets > 100
    resets_at = list(ticks)             # no idle time here: ticks are instruction counts
    # a forward reference for some places, the instruction after a reset among them
    rnd = random.Random(3)
    points = sorted(set(rnd.sample(range(1, 4000), 8) + [resets_at[10], resets_at[57] + 1]))
    ref, _, _ = machine()
    want = {}
    for p in points:
        for q in (p - 1, p):
            ref.run_until(icount=q)
            want[q] = ref.state_hash()
    rm, recording, tl, tt = open_recording(path)
    res, div, checked = verify(rm, tl, tt)
    assert div is None, div.report()
    assert res.icount == 4000 and checked["final"] and rm.resets == m.resets
    rnd.shuffle(points)
    for p in points:
        tt.goto(p)
        assert rm.state_hash() == want[p], p
        tt.reverse_stepi()
        assert rm.cpu.icount == p - 1 and rm.state_hash() == want[p - 1], p


def test_the_guest_rebuilds_identically(tmp_path):
    if shutil.which("nasm") is None:
        pytest.skip("nasm not found")
    out = tmp_path / "reset_loop.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), os.path.join(HERE, "reset_loop.asm")],
                   check=True)
    assert out.read_bytes() == open(ROM, "rb").read()
