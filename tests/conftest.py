import os

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
SINGLESTEP = os.path.join(SHARED, "testdata", "singlestep-80286")
FULL = os.environ.get("AERO_FULL") == "1"


@pytest.fixture
def singlestep_dir():
    if not os.path.isdir(SINGLESTEP):
        pytest.skip("shared/testdata/singlestep-80286 not present")
    return SINGLESTEP
