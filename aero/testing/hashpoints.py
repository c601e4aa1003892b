"""State-hash fingerprints of the scenarios: the guard that engine work changes no behaviour.

Every scenario (and the hello floppy under SeaBIOS and the Bochs BIOS) runs to fixed
instruction counts, and the machine's state hash is taken at each and at the end of the run.
``tests/machine/golden_hashes.json`` holds the fingerprints; a refactor of the CPU, the memory
path or the run loop must leave every one of them as it is.

    python -m aero.testing.hashpoints                  # compare with the golden file
    python -m aero.testing.hashpoints --write FILE     # write fresh fingerprints
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from .. import scenarios as S
from ..config import FIRMWARE

POINTS = (1000, 20000, 150000, 700000)
END = 60_000_000
GOLDEN = os.path.join(S.ROOT, "tests", "machine", "golden_hashes.json")
FIRMWARE_RUNS = ("seabios", "bochs")


def runs() -> list[tuple[str, str, str | None]]:
    """(key, scenario, firmware) of every fingerprinted run whose firmware is installed."""
    out = [(n, n, None) for n in S.names()]
    for fw in FIRMWARE_RUNS:
        if os.path.exists(FIRMWARE[fw][0]):
            out.append((f"hello@{fw}", "hello", fw))
    return out


def fingerprint(name: str, bios: str | None = None, **settings) -> dict:
    """{icount: state hash} at each point, and "end": [status, exit code, icount, hash].
    ``settings`` go to the machine (e.g. ``jit="off"``): none of them may change a hash."""
    scn = S.load(name)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        extra = dict(settings, bios=bios) if bios else dict(settings)
        if "kernel" in scn.machine:
            # the multiboot command line starts with the kernel's path (as QEMU's does): a
            # relative one keeps the fingerprint the same wherever the checkout lives
            os.chdir(scn.directory)
            extra["kernel"] = scn.machine["kernel"]
        try:
            m = S.build(scn, d, **extra)
        finally:
            os.chdir(cwd)
        out = {}
        r = None
        for p in POINTS:
            r = m.run(max_instructions=p)
            out[str(m.cpu.icount)] = m.state_hash()
            if r.status != "limit":
                break
        if r.status == "limit":
            r = m.run(max_instructions=END)
        out["end"] = [r.status, r.exit_code, m.cpu.icount, m.state_hash()]
        m.close()
        return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m aero.testing.hashpoints")
    p.add_argument("--write", metavar="FILE", help="write fingerprints instead of comparing")
    args = p.parse_args(argv)
    res = {key: fingerprint(scn, fw) for key, scn, fw in runs()}
    if args.write:
        with open(args.write, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
        return 0
    golden = json.load(open(GOLDEN))
    bad = 0
    for key, fp in res.items():
        for point, h in golden[key].items():
            if fp.get(point) != h:
                bad += 1
                print(f"{key} at {point}: {fp.get(point)} (golden {h})")
    print(f"{len(res)} runs compared, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
