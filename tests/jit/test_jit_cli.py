"""`aero jit`, `aero run --jit-stats`, `--jit on|off`: what the user sees."""

import subprocess
import sys


def aero(*args):
    return subprocess.run([sys.executable, "-m", "aero", *args], capture_output=True, text=True,
                          timeout=300)


def test_jit_stats_and_the_same_run_either_way():
    on = aero("run", "--headless", "--jit-stats", "--state-hash")
    off = aero("run", "--headless", "--jit", "off", "--jit-stats", "--state-hash")
    assert on.returncode == off.returncode == 0
    assert on.stdout == off.stdout
    hash_on = [ln for ln in on.stderr.splitlines() if ln.startswith("state-hash")]
    hash_off = [ln for ln in off.stderr.splitlines() if ln.startswith("state-hash")]
    assert hash_on == hash_off and hash_on
    assert "ran translated" in on.stderr and "jit: off" in off.stderr


def test_aero_jit_lists_units_and_shows_one():
    r = aero("jit", "--top", "3", "--source", "0x7c22")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("aero jit: the run ended (poweroff) after 707,832")
    assert any(ln.split()[:1] == ["7c22"] for ln in lines)      # the demo's drawing loop
    assert "00007c37  jb 0x7c22" in r.stdout
    assert "def run(limit):" in r.stdout


def test_bad_options_are_one_line():
    for args in (("jit", "--source", "zz"), ("run", "--jit", "maybe"),
                 ("run", "--jit-threshold", "-1", "--headless")):
        r = aero(*args)
        assert r.returncode == 2, args
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, args
