"""kvm-unit-tests (i386) under Aero against QEMU 7.2's TCG (aero/testing/kut.py).

Each test is run under Aero (an APIC machine with the Aero BIOS, the kernel loaded as multiboot,
isa-debug-exit at F4h and the suite's pc-testdev) and compared with QEMU's result: run now when
qemu-system-i386 is installed, else the one cached in the build's qemu-results.json.  What each
test expects of Aero (the same verdict, a documented gap or bug, a partial run) is
``kut.SPECS[name].expect``; the tests not run, and why, are ``kut.NOT_RUN``.

Skipped when the build is missing (``python -m aero.testing.kut build SRC``, SRC a
kvm-unit-tests checkout).  Tests taking over a minute under Aero are marked slow and run with
AERO_FULL=1.
"""

from __future__ import annotations

import pytest

from aero.testing import kut
from tests.conftest import FULL

BUILT = kut.ensure_built()
needs_build = pytest.mark.skipif(
    not BUILT, reason=f"kvm-unit-tests not built in {kut.src_dir()}: run `python -m "
                      "aero.testing.kut build SRC` (SRC: a kvm-unit-tests source tree)")


def _params(names):
    out = []
    for n in names:
        spec = kut.SPECS[n]
        marks = []
        if spec.slow:
            marks.append(pytest.mark.slow)
            if not FULL:
                marks.append(pytest.mark.skip(reason="slow (over a minute under Aero): "
                                                     "AERO_FULL=1 runs it"))
        out.append(pytest.param(n, marks=marks, id=n))
    return out


_aero_cache: dict = {}


def aero(name: str) -> kut.Result:
    if name not in _aero_cache:
        _aero_cache[name] = kut.run_aero(name)
    return _aero_cache[name]


def qemu(name: str, like_aero: bool = False) -> kut.Result:
    refresh = kut.have_qemu() and not kut.SPECS[name].qemu_cached
    r = kut.qemu_result(name, refresh=refresh, like_aero=like_aero)
    if r is None:
        pytest.skip(f"no QEMU result for {name}: install qemu-system-x86 (or a cached "
                    f"{kut.results_path()})")
    return r


@needs_build
@pytest.mark.parametrize("name", _params(kut.SPECS))
def test_against_qemu(name, request):
    """Aero's verdict against QEMU's with the test's own unittests.cfg options."""
    spec = kut.SPECS[name]
    q = qemu(name)
    a = aero(name)
    if spec.expect == "partial":
        problem = kut.check_partial(spec, a, q)
    elif spec.expect == "qemu-bug":
        problem = kut.check_qemu_bug(spec, a, q)
    else:
        if spec.expect in ("aero-gap", "aero-bug"):
            request.applymarker(pytest.mark.xfail(reason=spec.why, strict=True))
        problem = kut.same_verdict(a, q, reports=spec.expect == "match" and spec.same_reports)
        if problem is None and spec.same_output:
            problem = kut.same_output(a, q)
    assert problem is None, problem


@needs_build
@pytest.mark.parametrize("name", _params(n for n, s in kut.SPECS.items() if s.like_aero))
def test_against_qemu_with_aeros_cpu(name):
    """Tests using a CPU feature Aero lacks: the same verdict as QEMU with a CPU without it."""
    problem = kut.same_verdict(aero(name), qemu(name, like_aero=True), reports=True)
    assert problem is None, problem


def test_required_set_is_covered():
    assert set(kut.REQUIRED) <= set(kut.SPECS)
    assert not set(kut.SPECS) & set(kut.NOT_RUN)


def test_parse_summary_and_reports():
    out = ("enabling apic\r\nPASS: a\r\nFAIL: b c\r\nSKIP: d\r\nXFAIL: e\r\n"
           "SUMMARY: 4 tests, 1 unexpected failures, 1 expected failures, 1 skipped\r\n")
    r = kut.parse("t", "aero", out, "exit", 1)
    assert r.counts == {"PASS": 1, "FAIL": 1, "SKIP": 1, "XFAIL": 1, "XPASS": 0}
    assert r.summary == "SUMMARY: 4 tests, 1 unexpected failures, 1 expected failures, 1 skipped"
    assert r.reports[1] == ["FAIL", "b c"]
