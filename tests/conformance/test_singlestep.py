"""The whole 80286 hardware-vector suite (all 162,500 tests; about a minute)."""

import io

from aero.conformance import singlestep


def test_singlestep_80286_vectors_meet_target(singlestep_dir):
    out = io.StringIO()
    ok = singlestep.run(singlestep_dir, out=out)
    text = out.getvalue()
    print(text)
    last = text.strip().splitlines()[-1]
    assert last.startswith("passed "), last
    assert ok, "\n".join(l for l in text.splitlines() if "first failure" in l or l.startswith(("passed", "excluded")))


def test_rules_are_predicates_that_can_reject(singlestep_dir):
    # every rule must leave ordinary tests alone
    from aero.conformance import singlestep_rules as rules
    import gzip, json, os
    tests = json.load(gzip.open(os.path.join(singlestep_dir, "00.json.gz")))[:50]
    plain = [t for t in tests if 0xF0 not in t["bytes"][:4]]
    assert plain and all(rules.excluded_by(t) is None for t in plain)
