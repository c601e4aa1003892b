import os

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
# the 80286 hardware vectors: ../shared/testdata/singlestep-80286 beside the checkout, or where
# AERO_SINGLESTEP points (README, "Conformance")
SINGLESTEP = os.environ.get("AERO_SINGLESTEP") or os.path.join(SHARED, "testdata",
                                                                "singlestep-80286")
FULL = os.environ.get("AERO_FULL") == "1"


@pytest.fixture
def singlestep_dir():
    if not os.path.isdir(SINGLESTEP):
        pytest.skip(f"the 80286 test vectors are not at {SINGLESTEP} (set AERO_SINGLESTEP; "
                    "README, Conformance)")
    return SINGLESTEP
