"""The JIT against the interpreter on random instruction sequences (``aero.jit.check``): a fixed
sample in CI, 20,000 sequences with AERO_FULL=1."""

import io
import re

import pytest

from aero.jit import check, translate
from tests.conftest import FULL


def test_random_sequences_end_as_in_the_interpreter():
    out = io.StringIO()
    n = 20_000 if FULL else 600
    ok = check.run(n, 2026, out=out)
    assert ok, out.getvalue()
    ran = int(re.search(r"(\d+) sequences ran translated code", out.getvalue()).group(1))
    assert ran > n * 0.8, out.getvalue()        # most sequences really ran translated code


def test_the_check_finds_a_planted_bug(monkeypatch):
    """Registers not written back around a helper that reads them: the check must see it."""
    monkeypatch.setattr(translate, "opaque", lambda body: False)
    out = io.StringIO()
    assert not check.run(200, 1, out=out)
    assert "regs: interpreter" in out.getvalue()


@pytest.mark.parametrize("mode", (16, 32))
@pytest.mark.parametrize("seed", (1, 2) if not FULL else (1, 2, 3, 4, 5))
def test_random_bytes_as_code(seed, mode):
    """1 MiB of random bytes run as code (faults delivered through random tables, restarts
    after a shutdown): the JIT at threshold 0 and the interpreter agree at every chunk, and no
    Python exception escapes either."""
    n = 1_000_000 if FULL else 60_000
    assert check.random_code(seed, n, mode) == []
