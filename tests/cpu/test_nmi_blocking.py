"""NMI blocking (SDM Vol. 3, 6.7.1 "Handling Multiple NMIs"): while an NMI handler runs, until
its IRET, further NMIs are blocked; one arriving meanwhile is held and taken right after the
IRET, more are lost.  Found by kvm-unit-tests' eventinj (its "NMI nesting" check).

The guest: a real-mode ROM whose NMI handler counts how deeply it is nested and how often it
ran; the test raises NMIs from the host at chosen instructions."""

import shutil
import subprocess

import pytest

from aero.build import build_machine
from aero.config import MachineConfig

SRC = """
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [2*4], nmi_handler
    mov word [2*4+2], 0xF000
    mov byte [0x500], 0              ; depth now
    mov byte [0x501], 0              ; deepest
    mov byte [0x502], 0              ; NMIs taken
main_loop:
    nop
    jmp main_loop
nmi_handler:
    inc byte [0x502]
    inc byte [0x500]
    mov al, [0x500]
    cmp al, [0x501]
    jbe in_handler
    mov [0x501], al
in_handler:
    nop
    nop
    nop
    dec byte [0x500]
    iret
after_iret_marker:
    times 0xFFF0 - ($ - $$) db 0xF4
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0xF4
"""


@pytest.fixture(scope="module")
def rom(tmp_path_factory):
    nasm = shutil.which("nasm")
    if nasm is None:
        pytest.skip("nasm not installed")
    d = tmp_path_factory.mktemp("nmi")
    (d / "nmi.asm").write_text(SRC)
    subprocess.run([nasm, "-f", "bin", "-l", str(d / "nmi.lst"), "-o", str(d / "nmi.bin"),
                    str(d / "nmi.asm")], check=True)
    labels = {}
    lines = (d / "nmi.lst").read_text().splitlines()
    for i, line in enumerate(lines):
        for name in ("main_loop:", "in_handler:", "nmi_handler:"):
            if line.strip().endswith(name):
                labels[name[:-1]] = 0xF0000 + int(lines[i + 1].split()[1], 16)
    return (d / "nmi.bin").read_bytes(), labels


def machine(rom, jit):
    m = build_machine(MachineConfig(bios=rom[0], jit=jit))
    stop_at(m, rom[1]["main_loop"])
    return m


def stop_at(m, addr):
    h = m.hooks.exec(lambda mm, a: True, addr, physical=True)
    r = m.run_until(instructions=10_000)
    h.remove()
    assert r.status == "hook", r


def counters(m):
    depth, deepest, taken = m.bus.read_bytes(0x500, 3)
    return depth, deepest, taken


@pytest.mark.parametrize("jit", ["off", "on"])
def test_an_nmi_in_the_handler_waits_for_its_iret(rom, jit):
    m = machine(rom, jit)
    m.cpu.raise_nmi()
    stop_at(m, rom[1]["in_handler"])
    assert m.cpu.nmi_blocked
    m.cpu.raise_nmi()                          # blocked: held
    m.cpu.raise_nmi()                          # a third one is lost
    assert not m.cpu.nmi_pending and m.cpu.nmi_latched
    entries = []
    h = m.hooks.exec(lambda mm, a: entries.append(mm.cpu.icount) and False,
                     rom[1]["nmi_handler"], physical=True)
    start = m.cpu.icount
    m.run_until(instructions=200)
    h.remove()
    assert counters(m) == (0, 1, 2)            # never nested; two handlers ran, not three
    # the held NMI was taken right after the IRET: the second handler starts 5 instructions
    # (nop, nop, nop, dec, iret) after the stop
    assert entries == [start + 5]
    assert not m.cpu.nmi_blocked and not m.cpu.nmi_latched


def test_blocking_is_in_the_state_and_a_reset_clears_it(rom):
    m = machine(rom, "off")
    m.cpu.raise_nmi()
    stop_at(m, rom[1]["in_handler"])
    m.cpu.raise_nmi()
    saved = m.get_state()
    h = m.state_hash()
    m2 = build_machine(MachineConfig(bios=rom[0], jit="off"))
    m2.set_state(saved)
    assert m2.state_hash() == h and m2.cpu.nmi_blocked and m2.cpu.nmi_latched
    m2.run_until(instructions=200)
    m.run_until(instructions=200)
    assert m.state_hash() == m2.state_hash() and counters(m2) == (0, 1, 2)
    m.cpu.raise_nmi()
    stop_at(m, rom[1]["in_handler"])
    m.reset()
    assert not m.cpu.nmi_blocked and not m.cpu.nmi_latched


def test_a_machine_that_never_took_an_nmi_keeps_its_state_layout(rom):
    m = machine(rom, "off")
    from aero.cpu.state import get_state
    assert "nmi_blocked" not in get_state(m.cpu)
