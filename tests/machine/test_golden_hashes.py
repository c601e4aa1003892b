"""Engine changes leave the machine's behaviour alone: every scenario's state hash at fixed
instruction counts equals the recorded one (aero/testing/hashpoints.py), with the interpreter
alone, with the JIT as it runs by default, and with the JIT translating every block at once."""

import json

import pytest

from aero.testing import hashpoints

GOLDEN = json.load(open(hashpoints.GOLDEN))
TIERS = {"interpreter": {"jit": "off"}, "jit": {"jit": "on"},
         "jit-at-once": {"jit": "on", "jit_threshold": 0}}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("key,scenario,firmware", hashpoints.runs())
def test_state_hashes_match_the_recorded_ones(key, scenario, firmware, tier):
    assert hashpoints.fingerprint(scenario, firmware, **TIERS[tier]) == GOLDEN[key]
