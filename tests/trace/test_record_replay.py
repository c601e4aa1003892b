"""Recording and replaying runs (aero/trace): every scenario replays equal to its recording; live
input from the host (keys, mouse, serial, as a window or the TUI would send it) is recorded and
posted again at its ticks; a replay that goes astray is caught and located; bad files are
refused with one line."""

import os
import random
import re

import pytest

from aero import scenarios as S
from aero.cli import main
from aero.inputs import KeyInput, MouseInput, SerialInput
from aero.runcmd import run_command
from aero.trace.recorder import Recorder
from aero.trace.recording import MAGIC, Recording, RecordingError, Writer
from aero.trace.replay import DIVERGED, open_recording, verify
from aero.trace.replaycmd import replay_command


def record_scenario(tmp_path, name):
    scn = S.load(name)
    work = tmp_path / "rec"
    work.mkdir()
    settings = S.run_settings(scn, str(work))
    path = str(tmp_path / f"{name}.aerorec")
    code = run_command(settings, record={"path": path})
    serial = open(settings["serial"], "rb").read()
    return scn, path, code, serial


@pytest.mark.parametrize("name", S.names())
def test_every_scenario_replays_equal(tmp_path, name, capsys):
    scn, path, code, serial = record_scenario(tmp_path, name)
    assert code == scn.exit
    rec = Recording(path)
    assert rec.end["digest"] and rec.end["status"]
    rec.close()
    out = tmp_path / "replay.out"
    assert replay_command(path, serial=str(out)) == 0, capsys.readouterr().err
    assert out.read_bytes() == serial
    assert "replay matches" in capsys.readouterr().err


def live_session(tmp_path, path, checkpoint_every=4096, keyframe_every=100_000):
    """The irq scenario (its own keyboard and timer handlers, keys echoed to COM1) recorded
    while the host sends keys, mouse motion and serial bytes at odd moments, as a display
    window or the TUI would (InputQueue.submit from the run loop's point of view)."""
    out = bytearray()
    m = S.build(S.load("irq"), str(tmp_path), serial=out.append, keys=None)
    rec = Recorder(m, path=path, keyframe_every=keyframe_every,
                   checkpoint_every=checkpoint_every).start()
    rnd = random.Random(7)
    events = [KeyInput("x", True), KeyInput("x", False), MouseInput(3, -2, 0, 1),
              SerialInput(b"serial bytes\n"), KeyInput("y", True), KeyInput("y", False)]
    for ev in events:
        r = m.run_until(instructions=rnd.randrange(20_000, 90_000))
        m.inputs.submit(ev)
    m.inputs.post(m.clock.now() + 5000, KeyInput("z", True))     # a script posting ahead
    r = m.run_until(instructions=50_000)
    m.inputs.submit(KeyInput("enter", True))                    # the guest ends on Enter
    r = m.run_until(instructions=3_000_000)
    assert r.status == "debug-exit", r
    rec.stop(r)
    m.close()
    return rec.timeline, bytes(out), r


def test_live_host_input_is_recorded_and_replayed(tmp_path):
    path = str(tmp_path / "live.aerorec")
    tl, out, r = live_session(tmp_path, path)
    assert len(tl.inputs) == 8
    assert re.search(rb"x+y+z+", out)               # the guest echoed the live keys (held)
    m, rec, ftl, tt = open_recording(path)
    assert ftl.inputs == tl.inputs
    res, div, checked = verify(m, ftl, tt)
    assert div is None, div.report()
    assert checked["checkpoints"] > 50 and checked["keyframes"] >= 2 and checked["final"]
    assert res.status == r.status and res.icount == r.icount


def test_a_replay_without_the_input_diverges_and_says_where(tmp_path):
    path = str(tmp_path / "live.aerorec")
    live_session(tmp_path, path)
    m, rec, tl, tt = open_recording(path)
    first = tl.inputs[0]
    tl.inputs = tl.inputs[1:]                       # the first key never arrives
    tt._arm_inputs()
    res, div, checked = verify(m, tl, tt)
    assert div is not None
    assert div.good < div.bad
    assert div.report().startswith("replay diverged")
    # the divergence cannot come before the input took effect
    assert div.bad >= tl.checkpoints[0][0] and first[2] > 0


def test_the_input_posted_by_the_host_takes_effect_at_the_same_point_however_run(tmp_path):
    """Regression: input posted while the machine was stopped took effect before the next
    instruction, but posted by a replay's timer at the same tick it took effect one
    instruction later (the clock's due events ran only after a slice)."""
    m = S.build(S.load("irq"), str(tmp_path), keys=None)      # it waits for keys
    assert m.run_until(icount=150_000).status == "limit"
    m.inputs.post(m.clock.now(), KeyInput("q", True))
    m.run_until(icount=200_000)
    h1 = m.state_hash()
    m2 = S.build(S.load("irq"), str(tmp_path), keys=None)
    m2.run_until(icount=140_000)
    m2.at_icount(150_000, lambda: m2.inputs.post(m2.clock.now(), KeyInput("q", True)))
    m2.run_until(icount=200_000)
    assert m2.state_hash() == h1


def test_planted_cpu_bug_is_located_to_its_instruction(tmp_path, monkeypatch):
    """A replay on a CPU whose zero flag is wrong from instruction N on: with a checkpoint at
    every instruction the report names the first instruction whose registers differ, which a
    lockstep comparison of a correct and a bugged machine confirms independently."""
    import aero.cpu.flags as F
    path = str(tmp_path / "exact.aerorec")
    m = S.build(S.load("irq"), str(tmp_path), keys=None)     # waits for keys: runs on
    m.run_until(icount=100_000)
    rec = Recorder(m, path=path, checkpoint_every=1, keyframe_every=20_000).start()
    r = m.run_until(icount=130_000)
    assert r.status == "limit"
    rec.stop(r)
    m.close()

    good_arith = F.arith
    bugged = {}

    def arith(lf):
        f = good_arith(lf)
        cpu = bugged.get("cpu")
        if cpu is not None and cpu.icount >= 110_000 and lf[0] // 3 != 2:    # ZF wrong
            f ^= F.ZF
        return f
    monkeypatch.setattr(F, "arith", arith)

    # independently: where do a correct and a bugged machine first differ?
    from aero.trace.timeline import checkpoint_row
    ok_m, _, _, ok_tt = open_recording(path)
    bad_m, _, _, bad_tt = open_recording(path)
    expect = None
    while ok_m.cpu.icount < 130_000:
        bugged["cpu"] = None
        assert ok_m.run_until(instructions=1).status == "limit"
        a = checkpoint_row(ok_m.cpu)
        bugged["cpu"] = bad_m.cpu
        bad_m.run_until(instructions=1)
        if checkpoint_row(bad_m.cpu) != a:
            expect = ok_m.cpu.icount
            break
    assert expect is not None and expect >= 110_000

    m, _, tl, tt = open_recording(path)
    bugged["cpu"] = m.cpu
    res, div, _ = verify(m, tl, tt)
    assert div is not None and div.what == "registers"
    assert (div.good, div.bad) == (expect - 1, expect)
    text = div.report()
    assert f"differ at instruction {expect}" in text and "the first differing instruction" in text
    assert "eflags" in text and "<--" in text
    assert "the last instruction that changed them" in text


def test_aero_record_and_replay_commands(tmp_path, capsys):
    out = tmp_path / "r.aerorec"
    serial = tmp_path / "s.out"
    assert main(["record", str(out), "--headless", "--keys", "ab{Enter}", "--serial",
                 str(serial), "--max-instructions", "300000", "--keyframe-every", "100000"]) \
        == 0
    err = capsys.readouterr().err
    assert "recorded instructions 0 to 300000" in err and "3 keyframes" in err
    assert main(["replay", str(out), "--serial", "none"]) == 0
    assert "replay matches" in capsys.readouterr().err
    # a recording is written under another name until it is complete
    assert not os.path.exists(str(out) + ".partial")


def test_bad_recordings_are_refused_with_one_line(tmp_path, capsys):
    good = tmp_path / "g.aerorec"
    assert main(["record", str(good), "--headless", "--serial", "none",
                 "--max-instructions", "50000"]) == 0
    capsys.readouterr()
    data = good.read_bytes()
    cases = {
        "missing": (None, "no such file"),
        "notrec": (b"hello world" * 10, "not an Aero recording"),
        "trunc": (data[: len(data) // 2], "truncated recording"),
        "crc": (data[:200] + bytes([data[200] ^ 0xFF]) + data[201:], "CRC mismatch"),
    }
    for name, (content, msg) in cases.items():
        p = tmp_path / f"{name}.aerorec"
        if content is not None:
            p.write_bytes(content)
        assert main(["replay", str(p)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (name, err)
    # another format version
    p = tmp_path / "v2.aerorec"
    w = Writer(str(p), {"machine": {}, "config": {}})
    w.index.append([0, 0, 0, "", False, 8])
    w.close({"icount": 0})
    raw = p.read_bytes().replace(b'"format":1', b'"format":9')
    import struct
    import zlib
    # fix the header chunk's CRC so that only the version is wrong
    n = struct.unpack_from("<I", raw, len(MAGIC) + 1)[0]
    body = raw[len(MAGIC) + 5: len(MAGIC) + 5 + n]
    raw = raw[: len(MAGIC) + 5 + n] + struct.pack("<I", zlib.crc32(body)) + \
        raw[len(MAGIC) + 9 + n:]
    p.write_bytes(raw)
    with pytest.raises(RecordingError, match="format 9"):
        Recording(str(p))
    # a machine option that does not go with --replay, a directory, --writable
    assert main(["debug", "--replay", str(good), "--memory", "64", "--batch"]) == 2
    assert "--memory does not go with it" in capsys.readouterr().err
    assert main(["record", str(tmp_path), "--headless"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["record", str(tmp_path / "w.aerorec"), "--headless", "--writable"]) == 2
    assert "--writable" in capsys.readouterr().err


def test_a_changed_disk_image_is_refused(tmp_path, capsys):
    img = tmp_path / "fl.img"
    from aero.build import demo_floppy
    img.write_bytes(demo_floppy())
    rec = tmp_path / "fl.aerorec"
    assert main(["record", str(rec), "--headless", "--serial", "none", "--fda", str(img),
                 "--max-instructions", "50000"]) == 0
    data = bytearray(img.read_bytes())
    data[5000] ^= 1
    img.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["replay", str(rec)]) == 2
    err = capsys.readouterr().err
    assert "disk image 1 (floppy) differs in contents" in err and err.count("\n") == 1
    with pytest.raises(RecordingError):
        open_recording(str(rec))
    assert DIVERGED == 12
