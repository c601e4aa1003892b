"""Engine changes leave the machine's behaviour alone: every scenario's state hash at fixed
instruction counts equals the recorded one (aero/testing/hashpoints.py)."""

import json

import pytest

from aero.testing import hashpoints

GOLDEN = json.load(open(hashpoints.GOLDEN))


@pytest.mark.parametrize("key,scenario,firmware", hashpoints.runs())
def test_state_hashes_match_the_recorded_ones(key, scenario, firmware):
    assert hashpoints.fingerprint(scenario, firmware) == GOLDEN[key]
