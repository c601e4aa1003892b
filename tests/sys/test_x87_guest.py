"""x87 error delivery and state images (tests/guests/x87/): NASM guests run on a whole Aero
Machine (the 8259s and the chipset's FERR#/IRQ13 logic, ``aero.devices.sysports``) and, for
x87.asm, under qemu-system-i386 (TCG), compared line by line.

* x87.asm: #MF with CR0.NE = 1, #NM (EM, TS, MP), FIP/FOP kept by control instructions,
  FNSAVE/FRSTOR round trips in real mode (16- and 32-bit images, real-mode layout) and protected
  mode (16 and 32 bit), FNSTENV masking, FLDENV, and FERR# -> IRQ13 with CR0.NE = 0 observed at
  the 8259s with interrupts off (poll mode).  Every image is also printed as a ``DUMP`` line.
* x87_irq.asm: FERR# -> IRQ13 taken with IF = 1 (handler: port F0h, FNCLEX, EOIs).  Aero only:
  QEMU 7.2 aborts as soon as FERR#'s IRQ13 reaches the CPU (``test_qemu_aborts_...``).

The guests' checks state what the Intel SDM says.  QEMU 7.2 fails some of them: each is listed
in ``QEMU_DEVIATIONS`` with QEMU's value and the SDM text it contradicts, and
``test_qemu_deviation`` shows it explicitly (QEMU's FAIL line, Aero's PASS line).  The images'
words QEMU writes differently are listed per DUMP in ``QEMU_DUMP_DIFFS``.

Build the guests (from tests/guests/x87/): ``nasm -f bin -I ../ -o x87.bin x87.asm`` (and
x87_irq); ``test_rebuild`` checks the committed images are current.
"""

from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile

import pytest

from aero.config import MachineConfig
from aero.machine import Machine
from aero.testing import romrun

GUESTS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "guests"))
X87_DIR = os.path.join(GUESTS_DIR, "x87")
GUESTS = ("x87", "x87_irq")
LIMIT = 2_000_000

needs_qemu = pytest.mark.skipif(not romrun.qemu_available(), reason="qemu-system-i386 not found")


def _image(guest: str) -> str:
    return os.path.join(X87_DIR, guest + ".bin")


def run_aero(guest: str, jit: str = "off", jit_threshold: int | None = None) -> romrun.RomResult:
    """The guest on an Aero Machine without firmware: the image mapped as QEMU's -bios maps it,
    port 0xE9 collected, QEMU's isa-debug-exit at 0xF4 (the 8259-only PC, as QEMU with
    ``-cpu ...,-apic``; x87.asm never lets the 8259 reach the CPU, so QEMU's local APIC does
    not matter for it)."""
    out = bytearray()
    kw = {} if jit_threshold is None else {"jit_threshold": jit_threshold}
    m = Machine(MachineConfig(bios=None, debug_exit_port=0xF4, debugcon=out.append, jit=jit,
                              **kw))
    with open(_image(guest), "rb") as f:
        m.load_bios(f.read())
    r = m.run(max_instructions=LIMIT)
    status = "exit" if r.status == "debug-exit" else r.status
    return romrun.RomResult(status, r.exit_code, out.decode("latin-1"), r.icount, r.detail)


@functools.lru_cache(maxsize=None)
def _aero(guest: str, jit: str = "off") -> romrun.RomResult:
    return run_aero(guest, jit)


@functools.lru_cache(maxsize=None)
def _qemu(guest: str = "x87") -> romrun.RomResult:
    return romrun.run_qemu(_image(guest), timeout=30)


def _describe(r: romrun.RomResult) -> str:
    return f"[{r.runner}] {r.verdict()}\n{r.detail}\n--- console ---\n{r.console[-4000:]}"


def _dumps(r: romrun.RomResult) -> dict:
    out = {}
    for line in r.console.splitlines():
        if line.startswith("DUMP "):
            name, *words = line.split()[1:]
            out[name] = words
    return out


_GOT_WANT = re.compile(r"got=0x([0-9a-f]+) want=0x([0-9a-f]+)")


def _got_want(line: str) -> tuple[int, int]:
    m = _GOT_WANT.search(line)
    assert m, line
    return int(m.group(1), 16), int(m.group(2), 16)


# ---- where QEMU 7.2 departs from the SDM (x87.asm) ----------------------------------------------
# check -> (what QEMU reports: a value, a function of the check's "want", or None for an address
# we do not pin; why).  The real-mode code runs as EF00:(1000h + offset) so that its linear
# address (what the SDM's real-mode image holds) and its offset (what QEMU stores) differ.
_OFFSET = lambda want: want + 0x1000          # noqa: E731 - QEMU's IP offset under CS=EF00h
_RM_LAYOUT = ("QEMU writes the protected-mode layout in real mode (IP offset, CS, DP offset, DS) "
              "instead of the real-mode one: 20/32-bit linear FIP and FDP, FIP/FDP bits 31:16 "
              "in bits 27:12 of the next word beside the opcode (SDM Vol. 1 8.1.10, figures "
              "8-10 and 8-12, real-address mode formats)")
_NO_PTR_LOAD = ("QEMU's FRSTOR/FLDENV load CW, SW and TW only, not FIP, FCS, FOP, FDP or FDS "
                "(SDM FLDENV/FRSTOR: the environment loaded includes the instruction pointer, "
                "data pointer and last opcode)")
QEMU_DEVIATIONS = {
    "rm-fsave16-fip": (_OFFSET, _RM_LAYOUT),
    "rm-fsave16-fip-high-fop": (0xEF00, _RM_LAYOUT + "; QEMU never stores FOP"),
    "rm-fsave16-fdp": (0x0100, _RM_LAYOUT),
    "rm-fsave16-fdp-high": (0x1234, _RM_LAYOUT),
    "rm-fsave32-fip": (_OFFSET, _RM_LAYOUT),
    "rm-fsave32-fip-high-fop": (0xEF00, _RM_LAYOUT + "; QEMU never stores FOP"),
    "rm-fsave32-fdp": (0x0100, _RM_LAYOUT),
    "rm-fsave32-fdp-high": (0x1234, _RM_LAYOUT),
    "rm-frstor16-roundtrip-pointers": (0, _NO_PTR_LOAD),
    "rm-frstor32-roundtrip-pointers": (0, _NO_PTR_LOAD),
    "pm-frstor32-roundtrip-pointers": (0, _NO_PTR_LOAD),
    "pm-frstor16-roundtrip-pointers": (0, _NO_PTR_LOAD),
    "fldenv32-pointers-loaded": (0, _NO_PTR_LOAD),
    "fldenv16-roundtrip": (6, _NO_PTR_LOAD + " (byte 6 is FIP)"),
    "mf-env-fcs-fop": (0x0008, "QEMU stores no last opcode: bits 26:16 of the 32-bit image's "
                       "FCS dword are 0 (SDM Vol. 1 8.1.9 and figure 8-9: FOP there)"),
    "pm-fsave32-fop": (0, "QEMU stores no last opcode (SDM Vol. 1 8.1.9, figure 8-9)"),
    "pm-fsave32-reserved-ones": (0, "the upper halves of the 32-bit image's CW, SW, TW and FDS "
                                 "dwords are 'reserved' in the SDM (figure 8-9); Intel "
                                 "processors store 1s there, and so does Aero (aero/fpu/x87.py); "
                                 "QEMU stores 0s.  Not an SDM rule: a difference from hardware"),
    "ze-unmasked-dest-unchanged": (0x7FFF, "with ZE unmasked QEMU still writes the masked "
                                   "response (infinity) to ST(0) (SDM Vol. 1 8.5.3: "
                                   "with #Z unmasked, TOP and the source operands remain "
                                   "unchanged)"),
    "mf-before-waiting-fpu-insn-vector": (0xFF, "QEMU checks for a pending x87 exception only "
                                          "in FWAIT, so a waiting x87 instruction runs instead "
                                          "of raising #MF (SDM Vol. 1 8.6: pending exceptions "
                                          "are delivered before the next waiting x87 "
                                          "instruction; Vol. 3 6.15, interrupt 16)"),
    "mf-fip-still-the-fdiv": (None, "follows from the previous one: the FADD ran, so FIP points "
                              "to it instead of the FDIV that raised the exception"),
    "fldcw-unmask-sets-es": (0x3804, "QEMU computes ES only when an exception is raised, so "
                             "FLDCW unmasking a set flag leaves ES clear (SDM Vol. 1 8.1.3.3: "
                             "ES is set when any unmasked exception flag is set; FLDCW: an "
                             "exception will be generated by the next floating-point "
                             "instruction)"),
    "fldcw-unmask-fwait-vector": (0xFF, "follows: no ES, so FWAIT raises no #MF (SDM FLDCW)"),
    "fldenv-unmasked-flag-sets-es": (0x2804, "the same for FLDENV of an image whose ES bit is "
                                     "clear (SDM FLDENV: an unmasked flag set in the loaded "
                                     "status word generates an exception at the next waiting "
                                     "instruction)"),
    "fldenv-unmasked-flag-fwait-vector": (0xFF, "follows: no #MF at the next FWAIT"),
    "fnstenv-masks-all": (0x0340, "QEMU's FNSTENV does not mask the exceptions after storing "
                          "(SDM FSTENV/FNSTENV: 'then masks all floating-point exceptions')"),
    "fnstenv16-masks-all": (0x0340, "the same for the 16-bit form"),
    "fip-kept-by-fnstsw-ax": (lambda want: want + 2,
                              "QEMU updates FIP (to the FNSTSW AX itself) on FNSTSW AX; it is a "
                              "control instruction, which leaves FIP/FOP alone (SDM Vol. 1 "
                              "8.1.8, 8.3.11); the m16 form and the others are right"),
    "ferr-again-after-fnclex": (int.from_bytes(b"AB", "little"),
                                "QEMU clears its IGNNE# only in FLDENV/FRSTOR/XRSTOR: after a "
                                "port F0h write, FNCLEX (or FNINIT) leaves IGNNE# active and "
                                "every later error is ignored.  The AT logic deasserts IGNNE# "
                                "when FERR# goes inactive, i.e. when ES is cleared (SDM Vol. 1 "
                                "appendix D.2.1; QEMU's own comment in cpu_set_ignne says so)"),
    "ferr-at-waiting-fpu-insn": (int.from_bytes(b"CDIE", "little"),
                                 "QEMU asserts FERR# only in FWAIT, not at a waiting x87 "
                                 "instruction (SDM Vol. 3 2.5 CR0.NE: FERR# and the stop "
                                 "'immediately before executing the next waiting floating-point "
                                 "instruction or WAIT/FWAIT instruction')"),
}

# DUMP lines QEMU writes differently: name -> (the 16-bit word indices that differ, why)
QEMU_DUMP_DIFFS = {
    "rm-fsave16": ({3, 4, 5, 6}, "real-mode pointer layout, no FOP"),
    "rm-fsave16-again": ({3, 4, 5, 6}, "pointers not restored by FRSTOR"),
    "rm-fsave32": ({1, 3, 5, 6, 7, 8, 10, 11, 12},
                   "reserved words 0, real-mode pointer layout, no FOP"),
    "rm-fsave32-again": ({1, 3, 5, 6, 7, 8, 10, 11, 12},
                         "reserved words 0, pointers not restored"),
    "pm-fsave32": ({1, 3, 5, 9, 13}, "reserved words 0, no FOP"),
    "pm-fsave32-again": ({1, 3, 5, 6, 9, 10, 11, 12, 13},
                         "reserved words 0, no FOP, pointers not restored"),
    "pm-fsave16-again": ({3, 5, 6}, "pointers not restored by FRSTOR"),
    "pm-fstenv32-unmasked": ({1, 3, 5, 13}, "reserved words 0"),
    "pm-fstenv32-after-fldenv": ({1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13},
                                 "reserved words 0, no ES from FLDENV, pointers not loaded"),
}

# The checks of what the SDM says the IRQ13 handler sees with CR0.NE = 0 (x87_irq.asm): the
# processor stops "immediately before executing the next waiting floating-point instruction"
# (SDM Vol. 3 2.5, CR0.NE), so the handler returns to it and sees the error's FIP and TOP.
# (Aero executed the instruction first until aero/fpu/insns.py fpu_error left it undone.)
SDM_IRQ_CHECKS = ("irq-fwait-return-eip-sdm", "irq-waiting-insn-return-eip-sdm",
                  "irq-waiting-insn-handler-fip-sdm", "irq-waiting-insn-handler-sw-sdm")


# ---- Aero ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("jit", ["off", "on"])
def test_aero_x87(jit):
    r = _aero("x87", jit)
    assert r.passed, f"first failure: {r.first_failure()}\n" + _describe(r)
    assert len(r.checks) >= 130


@pytest.mark.parametrize("guest", GUESTS)
def test_aero_jit_translating_everything_reports_the_same(guest):
    """The JIT translating every block after its first run: the same transcript, the same exit,
    at the same instruction count as the interpreter."""
    ref = _aero(guest, "off")
    jit = run_aero(guest, "on", jit_threshold=0)
    assert (jit.status, jit.exit_code, jit.icount) == (ref.status, ref.exit_code, ref.icount)
    assert jit.console == ref.console


@pytest.mark.parametrize("jit", ["off", "on"])
def test_aero_x87_irq(jit):
    """IRQ13 with IF = 1: every check passes."""
    r = _aero("x87_irq", jit)
    assert r.status == "exit" and "DONE fails=" in r.console, _describe(r)
    assert not r.failed, _describe(r)
    assert len(r.checks) >= 25
    assert r.checks["irq-fwait-order"][0] and r.checks["irq-waiting-insn-order"][0]


@pytest.mark.parametrize("check", SDM_IRQ_CHECKS)
def test_aero_x87_irq_sdm(check):
    """What the SDM says the IRQ13 handler sees with CR0.NE = 0: the return address is the
    waiting instruction, FIP and TOP are those of the error."""
    r = _aero("x87_irq")
    assert r.checks[check][0], r.checks[check][1]


# ---- QEMU ---------------------------------------------------------------------------------------
@needs_qemu
def test_qemu_x87_fails_exactly_the_documented_checks():
    q = _qemu()
    assert q.status == "exit" and "DONE fails=" in q.console, _describe(q)
    assert set(q.failed) == set(QEMU_DEVIATIONS), _describe(q)
    assert q.exit_code == 3
    assert len(q.checks) >= 130


@needs_qemu
def test_aero_and_qemu_report_the_same_checks():
    """The same checks in the same order with the same verdicts, but for the deviations.  A
    wrong vector makes the guest skip that exception's frame checks, so Aero reports a few more
    ("x-no-errcode", "x-eip" after QEMU's failing "x-vector")."""
    a, q = _aero("x87"), _qemu()
    hidden = tuple(n[: -len("vector")] for n in QEMU_DEVIATIONS if n.endswith("-vector"))
    extra = [n for n in a.checks if n not in q.checks]
    assert all(n.startswith(hidden) for n in extra), extra
    assert [n for n in a.checks if n in q.checks] == list(q.checks)
    differ = {n for n in q.checks if a.checks[n][0] != q.checks[n][0]}
    assert differ == set(QEMU_DEVIATIONS)


@needs_qemu
@pytest.mark.parametrize("check", sorted(QEMU_DEVIATIONS))
def test_qemu_deviation(check):
    """One documented QEMU 7.2 deviation from the SDM: QEMU fails the check with the value
    recorded here, Aero passes it (the reason is in QEMU_DEVIATIONS)."""
    expect, why = QEMU_DEVIATIONS[check]
    q_ok, q_line = _qemu().checks[check]
    a_ok, a_line = _aero("x87").checks[check]
    assert a_ok, a_line
    assert not q_ok, f"QEMU passes {check} now ({q_line}): drop it from QEMU_DEVIATIONS ({why})"
    got, want = _got_want(q_line)
    if callable(expect):
        expect = expect(want)
    if expect is not None:
        assert got == expect, f"{q_line}: QEMU's value changed (expected {expect:#x}); {why}"


@needs_qemu
def test_image_dumps_compared_with_qemu():
    """The image words (FSAVE/FSTENV dumps): identical to QEMU's except the words listed in
    QEMU_DUMP_DIFFS, which differ exactly there."""
    da, dq = _dumps(_aero("x87")), _dumps(_qemu())
    assert list(da) == list(dq)
    assert len(da) >= 12
    for name in da:
        diff = {i for i, (x, y) in enumerate(zip(da[name], dq[name])) if x != y}
        assert len(da[name]) == len(dq[name])
        want = QEMU_DUMP_DIFFS.get(name, (set(), ""))[0]
        assert diff == want, (name, sorted(diff), da[name], dq[name])


@needs_qemu
def test_qemu_aborts_when_ferr_reaches_the_cpu():
    """QEMU 7.2 cannot run x87_irq.asm: FWAIT's helper raises IRQ13 (fpu_check_raise_ferr_irq)
    from the vCPU thread without the big QEMU lock, and the PIC's interrupt request trips
    ``tcg_handle_interrupt: assertion failed: (qemu_mutex_iothread_locked())``.  Shown on the
    8259-only PC (``-cpu ...,-apic``, Aero's machine); with the local APIC as reset (LINT0
    masked) the request never reaches the CPU instead, and with LINT0 set to ExtINT QEMU aborts
    the same way.  When this fails, QEMU delivers FERR#: compare x87_irq.asm with it too."""
    with tempfile.TemporaryDirectory() as td:
        log = os.path.join(td, "debugcon.log")
        cmd = romrun.qemu_command(_image("x87_irq"), log, romrun.QEMU_CPU + ",-apic")
        p = subprocess.run(cmd, capture_output=True, timeout=30, cwd=td, preexec_fn=_no_core)
        with open(log, "rb") as f:
            console = f.read().decode("latin-1")
    err = p.stderr.decode(errors="replace")
    assert p.returncode == -signal.SIGABRT, (p.returncode, err, console)
    assert "tcg_handle_interrupt" in err and "iothread_locked" in err, err
    assert "PASS irq-pending-sw" in console and "irq-fwait-order" not in console


def _no_core():
    """The abort must not leave a core file behind."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ---- the images ---------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm not found")
@pytest.mark.parametrize("guest", GUESTS)
def test_rebuild(guest, tmp_path):
    out = tmp_path / (guest + ".bin")
    subprocess.run(["nasm", "-f", "bin", "-I", GUESTS_DIR + os.sep, "-o", str(out),
                    os.path.join(X87_DIR, guest + ".asm")], check=True, cwd=X87_DIR)
    with open(_image(guest), "rb") as f:
        committed = f.read()
    assert out.read_bytes() == committed, f"{guest}.bin is stale: rebuild it from {guest}.asm"
    assert len(committed) == 0x10000
