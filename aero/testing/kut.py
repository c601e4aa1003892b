"""kvm-unit-tests (the QEMU/KVM x86 test suite), i386 build, under Aero and under QEMU.

kvm-unit-tests (https://gitlab.com/kvm-unit-tests/kvm-unit-tests, GPL-2.0) is not part of this
repository: it is built once into a cache outside the checkout and run from there.

* The cache: ``$AERO_KUT_DIR`` (default ``/var/cache/aero/kvm-unit-tests``) holds the source
  tree in ``src/`` (built in place: ``src/x86/*.flat``) and ``qemu-results.json``, QEMU's results
  (recomputed by ``qemu`` below when ``qemu-system-i386`` is present).
* ``python -m aero.testing.kut build [SRC]``: copy a source tree (a git checkout or an unpacked
  archive) into the cache if given, then ``./configure --arch=i386 && make`` there (needs
  ``gcc-multilib`` on a 64-bit host).
* ``python -m aero.testing.kut run NAME`` runs one test under Aero, ``qemu NAME`` under QEMU
  (``qemu all`` refreshes the JSON), ``compare [NAME...]`` both, side by side; ``list`` shows the
  tests run and those not run (``NOT_RUN``, with the reason).

Each test is a multiboot kernel (``x86/NAME.flat``).  It prints to COM1 and ends by writing its
status to QEMU's ``isa-debug-exit`` at port F4h (exit status ``(v << 1) | 1``; v = 0: every check
passed).  Both engines get the machine ``x86/run`` gives QEMU, as far as Aero has it:

* Aero: ``MachineConfig(kernel=..., apic=True, debug_exit_port=0xF4, memory=128)`` (the Aero
  BIOS's POST, then the multiboot loader), plus ``TestDev`` below: QEMU's ``pc-testdev``, the
  suite's own test device, attached by this harness (it is no PC hardware: QEMU adds it only
  for this suite, with ``-device pc-testdev``).  QEMU's ``pci-testdev`` is not modelled: of
  the tests run here only vmexit looks for it (it prints one line about it, which the output
  comparison leaves out; its PCI tests are not in unittests.cfg).
* QEMU: the command ``x86/run`` builds (``--no-reboot -nodefaults -device pc-testdev -device
  isa-debug-exit,iobase=0xf4,iosize=0x4 -device pci-testdev -machine accel=tcg -smp 1 -kernel``)
  with the test's ``-append`` arguments and ``qemu_params`` from ``x86/unittests.cfg``, without
  the ``-initrd`` environment file ``run_tests.sh`` adds (neither engine gets one: the tests then
  read their settings from fw_cfg and use the defaults).

The results are parsed from the output: ``PASS:``/``FAIL:``/``SKIP:``/``XFAIL:``/``XPASS:``
lines and the ``SUMMARY:`` line (``N tests, M unexpected failures, K expected failures,
J skipped``).  ``Result.verdict()`` (the counts, the summary line, how the run ended) is what
is compared, with the report lines themselves where ``Spec`` says so; ``Spec.expect`` records
what Aero is expected to do for each test (the same as QEMU, a documented gap or bug, a
partial run).  tests/thirdparty/test_kvm_unit_tests.py runs them all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

DEFAULT_DIR = "/var/cache/aero/kvm-unit-tests"
QEMU = "qemu-system-i386"
RESULTS_JSON = "qemu-results.json"


def kut_dir() -> str:
    return os.environ.get("AERO_KUT_DIR") or DEFAULT_DIR


def src_dir() -> str:
    return os.path.join(kut_dir(), "src")


def flat_path(name: str) -> str:
    return os.path.join(src_dir(), "x86", f"{name}.flat")


# ------------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------------
# QEMU options for a CPU with Aero's features (as far as QEMU can drop them: TCG still executes
# x87 instructions whatever CPUID says): qemu32 without MMX, FXSR, SSE, SSE2.
AERO_LIKE_CPU = ("-cpu", "qemu32,-sse,-sse2,-fxsr,-mmx")


@dataclass(frozen=True)
class Spec:
    """One entry of x86/unittests.cfg run here (i386, one CPU), and what is expected of Aero.

    ``expect``:

    * ``match``: Aero's verdict (report counts, summary line, how the run ended) is QEMU's.
    * ``aero-gap``: the test uses a CPU feature Aero does not have (``why``); against QEMU with
      the test's own ``-cpu`` Aero differs (an expected failure), against QEMU with
      ``like_aero`` (a CPU without the feature) the verdicts are the same.
    * ``aero-bug``: Aero differs from QEMU because of a fault in Aero (``why``): an expected
      failure until it is fixed.
    * ``qemu-bug``: QEMU 7.2's TCG fails a check that hardware (and KVM) passes (``why``): Aero's
      reports up to that check are QEMU's, and Aero's verdict is ``aero_verdict``.
    * ``partial``: Aero stops early, where it lacks something (``why``); every report it made is
      QEMU's (same order), at least ``min_reports`` of them (or, for a test without reports,
      the output lines matching ``lines_re``).
    """
    name: str
    file: str                       # x86/<file>.flat
    args: str = ""                  # -append (the kernel command line)
    qemu_params: tuple = ()         # extra QEMU options from unittests.cfg
    timeout: float = 90.0           # QEMU's timeout (seconds; unittests.cfg's or 90)
    aero_timeout: float = 600.0     # wall seconds allowed under Aero
    max_instructions: int = 4_000_000_000
    slow: bool = False              # over ~60 s under Aero: pytest's slow marker
    expect: str = "match"
    why: str = ""
    like_aero: tuple | None = None  # QEMU options for a CPU without what Aero lacks (aero-gap)
    aero_verdict: dict | None = None    # qemu-bug: Aero's expected verdict
    min_reports: int = 0            # partial
    lines_re: str | None = None     # partial, tests without reports: the lines compared
    qemu_cached: bool = False       # QEMU's run is long: its cached result is used
    same_reports: bool = True       # match: the report lines themselves are the same too
    same_output: bool = False       # match, a test without reports: the same output lines


_LIKE = AERO_LIKE_CPU
# Every i386 test of x86/unittests.cfg that needs only what Aero has (one CPU, no KVM, no
# Hyper-V), or that runs partly.  REQUIRED are the acceptance set.
SPECS = {s.name: s for s in [
    Spec("realmode", "realmode", aero_timeout=30),
    Spec("umip", "umip", qemu_params=("-cpu", "qemu64,+umip")),
    Spec("taskswitch", "taskswitch", same_output=True),
    Spec("taskswitch2", "taskswitch2", expect="qemu-bug",
         why="QEMU 7.2 TCG fails the last check, 'lcall with cs.rpl != cs.dpl' (a task switch "
             "to a conforming code segment with RPL 3, DPL 0): it prints garbage and exits 2; "
             "Aero passes it, as KVM does",
         aero_verdict={"PASS": 13, "FAIL": 0, "SKIP": 0, "XFAIL": 0, "XPASS": 0,
                       "summary": "SUMMARY: 13 tests", "status": "exit", "exit": 0}),
    Spec("setjmp", "setjmp"),
    Spec("cmpxchg8b", "cmpxchg8b"),
    Spec("eventinj", "eventinj"),
    Spec("emulator", "emulator", expect="aero-gap",
         why="no SSE/FXSR: test_sse sets CR4.OSFXSR, #GP on Aero (a reserved bit without "
             "FXSR), and the test aborts after 61 PASS (exit 63); QEMU without SSE stops at "
             "the same place (#UD on MOVDQU), with the same counts and exit status",
         like_aero=_LIKE),
    Spec("sieve", "sieve", timeout=180, expect="partial", max_instructions=60_000_000,
         qemu_cached=True,
         why="three 100 MB sieves are ~1e10 instructions (QEMU TCG itself needs ~2 min); "
             "Aero runs the static and the paged 1 MB sieve (60M instructions)",
         lines_re=r"^(static|mapped|virtual):\d+ out of \d+$", min_reports=2),
    Spec("tsc", "tsc", qemu_params=("-cpu", "max"), expect="aero-gap",
         why="no RDTSCP/RDPID (and the TSC_ADJUST checks need them): 'SUMMARY: 0 tests', "
             "skip (exit 38)", like_aero=_LIKE),
    Spec("tsc_adjust", "tsc_adjust", qemu_params=("-cpu", "max")),
    Spec("hypercall", "hypercall"),
    Spec("msr", "msr", qemu_params=("-cpu", "max,vendor=GenuineIntel"), expect="partial",
         why="IA32_MISC_ENABLE (1A0h) is not implemented: RDMSR #GP, the test aborts after "
             "the three SYSENTER MSRs (IA32_PAT, also tested, is missing as well)",
         min_reports=3),
    Spec("smap", "smap", qemu_params=("-cpu", "max"), expect="aero-gap",
         why="no SMAP (CPUID.7.0:EBX[20], CR4.SMAP): the test skips (exit 38)",
         like_aero=_LIKE),
    Spec("la57", "la57", qemu_params=("-cpu", "max,host-phys-bits"), same_reports=False,
         why="one PASS each, but not the same check: QEMU's -cpu max offers LA57 (setting "
             "CR4.LA57 in 32-bit mode must not fault), Aero does not (it must #GP, and does)"),
    Spec("tsx-ctrl", "tsx-ctrl", qemu_params=("-cpu", "max")),
]}
for _a in ("vmcall", "mov_from_cr8", "mov_to_cr8", "tscdeadline", "tscdeadline_immed"):
    # vmexit latency benchmarks that end at once on Aero (VMCALL: #UD; CR8: 64-bit only; TSC
    # deadline: not offered): no reports, the exit status is compared
    SPECS[f"vmexit_{_a}"] = Spec(
        f"vmexit_{_a}", "vmexit", _a, same_output=True,
        qemu_params=("-cpu", "qemu64,+x2apic,+tsc-deadline") if "tscdeadline" in _a else ())
REQUIRED = ("realmode", "umip", "taskswitch2", "setjmp", "cmpxchg8b", "eventinj")

# The i386 entries of x86/unittests.cfg (and built tests without one) not run, and why.
NOT_RUN = {
    "smptest": "SMP: -smp 2 (Aero has one CPU)",
    "smptest3": "SMP: -smp 3",
    "vmexit_ipi": "SMP: -smp 2 (IPIs between CPUs)",
    "vmexit_ipi_halt": "SMP: -smp 2",
    "vmexit_cr0_wp": "SMP: -smp 2",
    "vmexit_cr4_pge": "SMP: -smp 2",
    "kvmclock_test": "KVM only (kvmclock paravirtual MSRs), -smp 2",
    "asyncpf": "KVM only: -cpu host (KVM async page faults)",
    "pmu": "KVM only (accel = kvm): the PMU",
    "hyperv_synic": "Hyper-V (-cpu host,hv_passthrough, hyperv-testdev), KVM only, -smp 2",
    "hyperv_connections": "Hyper-V, KVM only, -smp 2",
    "hyperv_stimer": "Hyper-V, KVM only, -smp 2",
    "hyperv_stimer_direct": "Hyper-V, KVM only, -smp 2",
    "s3": "ACPI S3 suspend/resume: Aero's PM does S5 (power off) only; the test writes "
          "SLP_TYP=S3 and waits for an RTC-alarm wake-up through the resume vector (hangs)",
    # vmexit's latency loops double until 2^30 TSC ticks have passed; Aero's TSC counts
    # instructions, so each needs over 10^9 of them (cpuid: 164M in 300 s, inl_from_pmtimer: 55M
    # in 300 s), and they print timings, no checks
    "vmexit_cpuid": "latency benchmark: over 10^9 instructions under Aero (hours), no checks",
    "vmexit_inl_pmtimer": "latency benchmark: over 10^9 instructions (PM timer reads), no checks",
    "vmexit_ple_round_robin": "latency benchmark: over 10^9 instructions, no checks",
    "init": "commented out in unittests.cfg (INIT/SIPI to a second CPU)",
    "hpet_read_test": "no unittests.cfg entry; needs an HPET (Aero has none)",
    "dummy": "no unittests.cfg entry (an empty test)",
}


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
REPORT_RE = re.compile(r"^(PASS|FAIL|SKIP|XFAIL|XPASS): ?(.*)$")
SUMMARY_RE = re.compile(r"^SUMMARY: (\d+) tests(?:, (\d+) unexpected failures)?"
                        r"(?:, (\d+) expected failures)?(?:, (\d+) skipped)?")


@dataclass
class Result:
    name: str
    engine: str                     # "aero" or "qemu"
    status: str                     # "exit" (isa-debug-exit), "timeout", "shutdown", ...
    exit_value: int | None          # v written to isa-debug-exit (0: all passed)
    reports: list = field(default_factory=list)     # [kind, description]
    summary: str | None = None
    seconds: float = 0.0
    icount: int | None = None       # Aero: instructions retired
    output: str = ""

    @property
    def counts(self) -> dict:
        c = {"PASS": 0, "FAIL": 0, "SKIP": 0, "XFAIL": 0, "XPASS": 0}
        for kind, _ in self.reports:
            c[kind] += 1
        return c

    def verdict(self) -> dict:
        """What is compared between the engines: the report counts, the summary line, how
        the run ended."""
        return {**self.counts, "summary": self.summary, "status": self.status,
                "exit": self.exit_value}

    def short(self) -> str:
        c = self.counts
        s = f"{c['PASS']} pass, {c['FAIL']} fail, {c['SKIP']} skip"
        if c["XFAIL"] or c["XPASS"]:
            s += f", {c['XFAIL']} xfail, {c['XPASS']} xpass"
        end = f"exit {self.exit_value}" if self.status == "exit" else self.status
        return f"{s}; {end}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["output"] = self.output[-20000:]
        return d


def parse(name: str, engine: str, output: str, status: str, exit_value, seconds=0.0,
          icount=None) -> Result:
    reports, summary = [], None
    for line in output.replace("\r", "").split("\n"):
        m = REPORT_RE.match(line)
        if m:
            reports.append([m.group(1), m.group(2)])
        elif line.startswith("SUMMARY:") and summary is None:
            summary = line.strip()
    return Result(name, engine, status, exit_value, reports, summary, round(seconds, 2),
                  icount, output)


# ------------------------------------------------------------------------------------------------
# pc-testdev: the suite's test device, as QEMU's hw/misc/pc-testdev.c behaves
# ------------------------------------------------------------------------------------------------
class TestDev:
    """QEMU's ``pc-testdev`` (``-device pc-testdev``), which kvm-unit-tests expects beside the
    PC: port E0h-E3h a 32-bit scratch register (a write of any width sets it, a read returns
    it), port E4h "flush page" (QEMU unmaps and remaps the page's host memory to force
    re-translation; Aero has nothing to flush: ignored), ports 2000h-2017h ISA IRQ lines 0-23
    (a byte write sets the line's level), and 64 KiB of plain memory at FF000000h ("iomem",
    reached through MMIO, which is what the emulator test needs)."""

    name = "pc-testdev"
    IOMEM_BASE, IOMEM_LEN = 0xFF000000, 0x10000

    def __init__(self):
        self.ioport_data = 0
        self.iomem = bytearray(self.IOMEM_LEN)
        self.machine = None

    def attach(self, m) -> None:
        self.machine = m
        m.io.register(0xE0, 4, self, self._port_read, self._port_write, widths=(1, 2, 4))
        m.io.register(0xE4, 4, self, None, lambda port, size, value: None, widths=(1, 2, 4))
        m.io.register(0x2000, 24, self, None, self._irq_write, widths=(1, 2, 4))
        m.bus.map_mmio(self.IOMEM_BASE, self.IOMEM_LEN, self)

    def _port_read(self, port: int, size: int) -> int:
        return self.ioport_data

    def _port_write(self, port: int, size: int, value: int) -> None:
        self.ioport_data = value & 0xFFFFFFFF

    def _irq_write(self, port: int, size: int, value: int) -> None:
        line = port - 0x2000
        m = self.machine
        level = bool(value & 0xFF)
        if line < 16:
            m.irq.set(line, level)
        elif m.ioapic is not None:
            m.ioapic.set_pin(line, level)

    def mmio_read(self, addr: int, size: int) -> int:
        off = addr - self.IOMEM_BASE
        return int.from_bytes(self.iomem[off:off + size], "little")

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        off = addr - self.IOMEM_BASE
        self.iomem[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------
def _spec(name: str) -> Spec:
    if name in SPECS:
        return SPECS[name]
    return Spec(name, name)          # a built test without an entry here: no arguments


def is_built() -> bool:
    return os.path.exists(flat_path("setjmp"))


def run_aero(name: str, timeout: float | None = None, max_instructions: int | None = None,
             jit: str = "on", spec: Spec | None = None) -> Result:
    """Run one test under Aero (through build_machine / Machine.run_until)."""
    from ..build import build_machine
    from ..config import MachineConfig

    spec = spec or _spec(name)
    out = bytearray()
    cfg = MachineConfig(kernel=flat_path(spec.file), cmdline=spec.args or None, apic=True,
                        debug_exit_port=0xF4, memory=128, serial=out.append, no_reboot=True,
                        jit=jit)
    m = build_machine(cfg)
    TestDev().attach(m)
    t0 = time.monotonic()
    r = m.run_until(instructions=spec.max_instructions if max_instructions is None
                    else max_instructions,
                    timeout=spec.aero_timeout if timeout is None else timeout)
    seconds = time.monotonic() - t0
    if r.status == "debug-exit":
        status, value = "exit", r.exit_code >> 1
    else:
        status, value = r.status, None
    text = out.decode("latin-1")
    if r.status == "error" and r.detail:
        text += "\n[aero] " + r.detail
    return parse(name, "aero", text, status, value, seconds, r.icount)


def qemu_command(name: str, spec: Spec | None = None, like_aero: bool = False) -> list:
    """The command ``x86/run`` builds for the test (``like_aero``: with the CPU of
    ``Spec.like_aero`` instead of the test's own ``-cpu``)."""
    spec = spec or _spec(name)
    cmd = [QEMU, "--no-reboot", "-nodefaults", "-device", "pc-testdev",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-display", "none",
           "-serial", "stdio", "-device", "pci-testdev", "-machine", "accel=tcg",
           "-kernel", flat_path(spec.file), "-smp", "1"]
    if spec.args:
        cmd += ["-append", spec.args]
    return cmd + list(spec.like_aero if like_aero else spec.qemu_params)


def have_qemu() -> bool:
    return shutil.which(QEMU) is not None


def run_qemu(name: str, spec: Spec | None = None, like_aero: bool = False) -> Result:
    spec = spec or _spec(name)
    t0 = time.monotonic()
    try:
        p = subprocess.run(qemu_command(name, spec, like_aero), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=spec.timeout)
        out, rc = p.stdout, p.returncode
        status = "exit" if rc & 1 else ("shutdown" if rc == 0 else f"rc {rc}")
        value = rc >> 1 if rc & 1 else None
    except subprocess.TimeoutExpired as e:
        out, status, value = e.stdout or b"", "timeout", None
    return parse(name, "qemu-like-aero" if like_aero else "qemu", out.decode("latin-1"),
                 status, value, time.monotonic() - t0)


def results_path() -> str:
    return os.path.join(kut_dir(), RESULTS_JSON)


def load_qemu_results() -> dict:
    try:
        with open(results_path()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: Result(**v) for k, v in data.get("results", {}).items()}


def save_qemu_results(results: dict) -> None:
    old = {}
    try:
        with open(results_path()) as f:
            old = json.load(f).get("results", {})
    except (OSError, ValueError):
        pass
    old.update({k: r.to_json() for k, r in results.items()})
    version = ""
    if have_qemu():
        version = subprocess.run([QEMU, "--version"], capture_output=True,
                                 text=True).stdout.split("\n")[0]
    tmp = f"{results_path()}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({"qemu": version, "results": old}, f, indent=1, sort_keys=True)
    os.replace(tmp, results_path())


def _key(name: str, like_aero: bool) -> str:
    return f"{name}@like-aero" if like_aero else name


def qemu_result(name: str, refresh: bool = False, like_aero: bool = False) -> Result | None:
    """QEMU's result for a test: from the JSON cache, or (QEMU present and ``refresh`` or not
    cached) by running it, then cached."""
    key = _key(name, like_aero)
    cached = load_qemu_results().get(key)
    if cached is not None and not refresh:
        return cached
    if not have_qemu():
        return cached
    r = run_qemu(name, like_aero=like_aero)
    save_qemu_results({key: r})
    return r


# ------------------------------------------------------------------------------------------------
# Comparing
# ------------------------------------------------------------------------------------------------
def diff_reports(a: Result, q: Result, limit: int = 12) -> str:
    """The first differing report lines, for failure messages."""
    out = []
    for i in range(max(len(a.reports), len(q.reports))):
        ar = a.reports[i] if i < len(a.reports) else None
        qr = q.reports[i] if i < len(q.reports) else None
        if ar != qr:
            out.append(f"  #{i + 1}: aero {ar!r}  qemu {qr!r}")
            if len(out) >= limit:
                break
    return "\n".join(out)


def same_verdict(a: Result, q: Result, reports: bool = False) -> str | None:
    """None if Aero's verdict is QEMU's (and, with ``reports``, every report line is the
    same), else what differs."""
    va, vq = a.verdict(), q.verdict()
    if va == vq:
        if reports and a.reports != q.reports:
            return f"{a.name}: same counts, different reports\n{diff_reports(a, q)}"
        return None
    fields = ", ".join(f"{k}: aero {va[k]!r} qemu {vq[k]!r}" for k in va if va[k] != vq[k])
    return f"{a.name}: {fields}\n{diff_reports(a, q)}"


# QEMU's own lines, and the one from pci-testdev, which Aero does not have
QEMU_ONLY_LINES = re.compile(r"^(qemu-system-\S+: |pci-testdev at )")


def same_output(a: Result, q: Result) -> str | None:
    """None if the outputs are the same, line by line (QEMU's own lines left out)."""
    la = a.output.replace("\r", "").rstrip("\n").split("\n")
    lq = [ln for ln in q.output.replace("\r", "").rstrip("\n").split("\n")
          if not QEMU_ONLY_LINES.match(ln)]
    if la == lq:
        return None
    import difflib
    d = list(difflib.unified_diff(lq, la, "qemu", "aero", lineterm="", n=1))
    return f"{a.name}: different output\n" + "\n".join(d[:30])


def _lines(r: Result, pattern: str) -> list:
    rx = re.compile(pattern)
    return [ln.strip() for ln in r.output.replace("\r", "").split("\n") if rx.match(ln.strip())]


def check_partial(spec: Spec, a: Result, q: Result) -> str | None:
    """A ``partial`` test: everything Aero reported is what QEMU reported first."""
    if spec.lines_re:
        la, lq = _lines(a, spec.lines_re), _lines(q, spec.lines_re)
    else:
        la, lq = a.reports, q.reports
    if len(la) < spec.min_reports:
        return f"{spec.name}: only {len(la)} reports/lines (at least {spec.min_reports}): {la}"
    if la != lq[:len(la)]:
        return f"{spec.name}: Aero's reports are not QEMU's first ones\n{diff_reports(a, q)}"
    return None


def check_qemu_bug(spec: Spec, a: Result, q: Result) -> str | None:
    """A ``qemu-bug`` test: Aero's verdict is the hardware one, its reports extend QEMU's."""
    n = len(q.reports)
    if a.reports[:n] != q.reports:
        return f"{spec.name}: Aero's first reports are not QEMU's\n{diff_reports(a, q)}"
    if a.verdict() != spec.aero_verdict:
        return f"{spec.name}: verdict {a.verdict()} (expected {spec.aero_verdict})"
    return None


# ------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------
def build(src: str | None = None, jobs: int = 2) -> str:
    """Copy ``src`` into the cache (unless it is the cache's own tree) and build the i386 tests
    there.  Returns the build directory."""
    dest = src_dir()
    if src is not None and os.path.abspath(src) != os.path.abspath(dest):
        if not os.path.exists(os.path.join(src, "configure")):
            raise SystemExit(f"kut: {src} is not a kvm-unit-tests source tree (no configure)")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git"))
    if not os.path.exists(os.path.join(dest, "configure")):
        raise SystemExit(f"kut: no source tree in {dest}: give one (kut build SRC)")
    if not os.path.exists(os.path.join(dest, "config.mak")):
        subprocess.run(["./configure", "--arch=i386"], cwd=dest, check=True)
    subprocess.run(["make", f"-j{jobs}"], cwd=dest, check=True)
    return dest


def ensure_built() -> bool:
    """Build the cache's source tree if it is there and not built yet; True if built."""
    if is_built():
        return True
    if os.path.exists(os.path.join(src_dir(), "configure")) and shutil.which("make"):
        try:
            build()
        except (subprocess.CalledProcessError, SystemExit, OSError):
            return False
    return is_built()


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def _names(args) -> list:
    if not args or args == ["all"]:
        return list(SPECS)
    return args


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aero.testing.kut", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="copy SRC into the cache and build the i386 tests")
    b.add_argument("src", nargs="?")
    r = sub.add_parser("run", help="run tests under Aero (prints the output)")
    r.add_argument("names", nargs="*")
    r.add_argument("--jit", default="on")
    r.add_argument("--timeout", type=float)
    q = sub.add_parser("qemu", help="run tests under QEMU and cache the results")
    q.add_argument("names", nargs="*")
    c = sub.add_parser("compare", help="Aero against QEMU (cached results unless --refresh)")
    c.add_argument("names", nargs="*")
    c.add_argument("--refresh", action="store_true")
    c.add_argument("--markdown", action="store_true", help="a results table")
    sub.add_parser("list", help="the tests run and those not run")
    a = ap.parse_args(argv)

    if a.cmd == "build":
        print(build(a.src))
        return 0
    if a.cmd == "list":
        for s in SPECS.values():
            print(f"{s.name:28} x86/{s.file}.flat {s.args}".rstrip())
        for n, why in NOT_RUN.items():
            print(f"{n:28} not run: {why}")
        return 0
    if not ensure_built():
        print(f"kut: kvm-unit-tests not built in {src_dir()}: run `python -m aero.testing.kut "
              "build SRC`", file=sys.stderr)
        return 2
    if a.cmd == "run":
        for n in _names(a.names):
            res = run_aero(n, timeout=a.timeout, jit=a.jit)
            sys.stdout.write(res.output)
            print(f"== {n} (aero): {res.short()}; {res.seconds:.1f} s, {res.icount} insns")
        return 0
    if a.cmd == "qemu":
        done = {}
        for n in _names(a.names):
            res = done[n] = run_qemu(n)
            print(f"== {n} (qemu): {res.short()}; {res.seconds:.1f} s")
        save_qemu_results(done)
        return 0
    rows = []
    for n in _names(a.names):
        spec = _spec(n)
        qr = qemu_result(n, refresh=a.refresh)
        ql = qemu_result(n, refresh=a.refresh, like_aero=True) if spec.like_aero else None
        ar = run_aero(n)
        note = evaluate(spec, ar, qr, ql)
        rows.append((n, spec, qr, ql, ar, note))
        if not a.markdown:
            print(f"{n:26} qemu: {qr.short() if qr else '-':40} aero: {ar.short():40} "
                  f"{note} ({ar.seconds:.1f} s)")
    if a.markdown:
        print("| test | QEMU 7.2 TCG | Aero | result | Aero time |")
        print("|---|---|---|---|---|")
        for n, spec, qr, ql, ar, note in rows:
            q = qr.short() if qr else "-"
            if ql is not None:
                q += f" (CPU like Aero's: {ql.short()})"
            print(f"| {n} | {q} | {ar.short()} | {note} | {ar.seconds:.1f} s |")
    return 0


def evaluate(spec: Spec, a: Result, q: Result | None, ql: Result | None = None) -> str:
    """One word or phrase on how Aero's result relates to QEMU's (the table's last column)."""
    if q is None:
        return "no QEMU result"
    if spec.expect == "partial":
        bad = check_partial(spec, a, q)
        return "partial: DIFFERENT" if bad else "partial: same as far as Aero runs"
    if spec.expect == "qemu-bug":
        bad = check_qemu_bug(spec, a, q)
        return "DIFFERENT" if bad else "same up to QEMU's bug; Aero passes the rest"
    if same_verdict(a, q) is None:
        if spec.expect != "match":
            return f"same (expected {spec.expect}: fixed?)"
        return "same" if same_verdict(a, q, spec.same_reports) is None else \
            "same counts, different reports"
    if ql is not None and same_verdict(a, ql, True) is None:
        return "same as QEMU with a CPU like Aero's"
    return "DIFFERENT" + (f" ({spec.expect})" if spec.expect != "match" else "")


if __name__ == "__main__":
    sys.exit(main())
