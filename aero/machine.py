"""A PC: the CPU, memory map, port bus, interrupt wiring, devices and the virtual-time run loop.

Memory map (i440FX-era PC): RAM from 0; the VGA window A0000-BFFFF; option ROMs C0000-DFFFF;
the BIOS in E0000-FFFFF (the last 128 KiB of the image) and the whole image at the top of 4 GiB.

Time: one tick per retired instruction (``aero.clock``).  The run loop executes the CPU up to the
next device event, fires due events, and while the CPU is halted skips straight to the next event
(accounting the skipped ticks as idle time).  Host input reaches the guest only through the
input queue (``machine.inputs``, ``aero.inputs``: typed events stamped with the tick at which
they take effect), so two runs with the same inputs end in the same state hash.

State: ``get_state`` / ``set_state`` cover the whole machine (CPU and TLB, RAM and VRAM, shadow
RAM, every device, the clock's pending events, pending input, disk overlays); memory travels as
shared immutable pages (``aero.mem.pages``), so a snapshot copies only what changed since the
previous one.  ``state_hash`` digests the same state.

Run outcomes (``RunResult.status``) and the `aero run` exit statuses they map to:

=============  ===========================================================  ===========
status         meaning                                                      exit status
=============  ===========================================================  ===========
debug-exit     the guest wrote v to isa-debug-exit                          (v << 1) | 1
limit          the instruction count asked for was reached                  0
               (--max-instructions, ``step``, ``run_until(instructions=)``)
poweroff       the guest powered off (ACPI S5)                              0
hook           a hook asked to stop (``RunResult.hook``; ``aero.hooks``)     0
stop           ``request_stop()`` (from any thread)                         0
timeout        wall-clock --timeout                                         4
shutdown       triple fault or reset request with no_reboot                 6
halted         HLT with interrupts disabled, or nothing left to wake it      8
error          internal emulator error (report in RunResult.detail)         10
=============  ===========================================================  ===========

Driving a machine: ``run_until`` runs until one of those happens; ``step(n)`` runs n
instructions (device events, interrupts and halts included); ``request_stop`` stops a run at
the next instruction boundary; ``hooks`` (``aero.hooks``) installs callbacks that can stop it at
an exact instruction.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass

from .clock import Clock
from .config import MachineConfig
from .cpu.cpu import CPU
from .faults import EmulatorError
from .cpu import flags as F
from .cpu.state import get_state as cpu_state, set_state as cpu_set_state
from .jit import JIT
from .devices.base import IOBus, IRQLines
from .devices.apic import LocalAPIC
from .devices.atapi import ATAPICDROM
from .devices.disk import DiskImage
from .devices.dma import DMA8237
from .devices.fdc import FDC82077AA
from .devices.fwcfg import FWCfg
from .devices.i440fx import I440FXPCI
from .devices.ide import ATADisk, BusMaster, IDEChannel
from .devices.i8042 import I8042
from .devices.ioapic import IOAPIC, IOAPICPIRQRouter, ISAIRQFanout
from .devices.pic import PIC
from .devices.pit import PIT, PortB
from .devices.rtc import RTC
from .devices.sysports import (CoprocessorError, DebugCon, DebugExit, FirmwareLog, Port92,
                               PostCode, ResetControl)
from .devices.uart import UART16550A
from .devices.vga import VGA
from .devices.vga_pci import VGAPCI
from .firmware.acpi import build_madt, build_tables
from .firmware.qemu_loader import table_loader_files
from .hooks import Hooks
from .inputs import InputQueue
from .mem.bus import Bus, UNMAPPED
from .mem.pages import PageMirror

STATE_VERSION = 1
SLICE = 500_000                     # longest CPU run between host checks (ticks)
LOW_ALIAS = 128 << 10

_CMOS_FLOPPY = {1: "360k", 2: "1.2M", 3: "720k", 4: "1.44M", 5: "2.88M"}

EXIT_STATUS = {"limit": 0, "poweroff": 0, "hook": 0, "stop": 0, "timeout": 4, "shutdown": 6,
               "halted": 8, "error": 10}


HOST_KEYS = frozenset(("label", "path"))


def _without_host_names(value):
    if isinstance(value, dict):
        return {k: _without_host_names(v) for k, v in value.items() if k not in HOST_KEYS}
    if isinstance(value, (list, tuple)):
        return [_without_host_names(v) for v in value]
    return value


@dataclass
class RunResult:
    status: str
    exit_code: int
    icount: int
    detail: str = ""
    hook: object = None             # the aero.hooks.Hook that stopped the run (status "hook")


class Machine:
    """The hardware of a PC as ``config`` describes it.  ``aero.build.build_machine`` makes
    complete machines (firmware, host sinks, inputs); constructed directly, a machine has no
    firmware until ``load_bios``, and its output goes to callables given in the config.

    ``sinks`` (serial, debugcon, firmware_log -> callable or None), ``post_code``, ``vga_rom``
    (the VGA's ROM BAR contents) and ``fda_data`` (an in-memory floppy for drive A:) are the
    host-side pieces ``build_machine`` resolved from the configuration."""

    def __init__(self, config: MachineConfig | None = None, sinks: dict | None = None,
                 post_code=None, vga_rom: bytes | None = None, fda_data: bytes | None = None):
        self.config = cfg = config or MachineConfig(bios=None)
        if sinks is None:
            sinks = {n: v for n in ("serial", "debugcon", "firmware_log")
                     if callable(v := getattr(cfg, n))}
        if post_code is None and callable(cfg.post_codes):
            post_code = cfg.post_codes
        self.sinks = [s for s in sinks.values() if s is not None]
        # host output is dropped while ``quiet`` (time travel re-executing what was shown)
        self.quiet = False
        sinks = {k: self._quietable(v) for k, v in sinks.items()}
        post_code = self._quietable(post_code)
        ram = cfg.memory << 20
        self.bus = Bus(ram)
        self.bus.set_kind(0xA0000, 0x60000, UNMAPPED)      # VGA window, option ROMs, BIOS
        self.bus.track_dirty()                             # for snapshots: see get_state
        self._ram_mirror = PageMirror(self.bus.ram)
        self.cpu = cpu = CPU(self.bus)
        self.clock = Clock(cpu, cfg.ips)
        if cfg.jit == "on":
            cpu.cache.jit = JIT(cpu, cfg.jit_threshold)
        self.io = IOBus()
        cpu.port_in = self.io.read
        cpu.port_out = self.io.write
        self.exit_status = None
        self.result_status = None
        self.resets = 0

        self.pic = PIC(self.io, cpu.set_intr)
        cpu.iack = self.pic.acknowledge
        self.irq = IRQLines(self.pic.set_irq)
        self.pit = PIT(self.io, self.irq, self.clock)
        self.portb = PortB(self.io, self.pit, self.clock)
        self.rtc = RTC(self.io, self.irq, self.clock, cfg.rtc)
        self.kbc = I8042(self.irq, self.clock, reset_cb=self.request_reset,
                         a20_cb=self.bus.set_a20)
        self.kbc.register(self.io)
        self.uarts = []
        for n in range(4):
            u = UART16550A.com(n + 1, self.irq, self.clock, sinks.get("serial") if n == 0
                               else None)
            u.register(self.io)
            self.uarts.append(u)
        self.dma = DMA8237(self.bus.read_bytes, self.bus.write_bytes)
        self.dma.register(self.io)
        self.port92 = Port92(self.bus.set_a20, self.request_reset, lambda: self.bus.a20)
        self.port92.register(self.io)
        self.post = PostCode(post_code)
        self.post.register(self.io)
        self.debugcon = DebugCon(sinks.get("debugcon"))
        self.debugcon.register(self.io)
        self.fwlog = FirmwareLog(sinks.get("firmware_log"))
        self.fwlog.register(self.io)
        self.debug_exit = DebugExit(self._debug_exit, cfg.debug_exit_port)
        self.debug_exit.register(self.io)
        self.reset_control = ResetControl(lambda hard: self.request_reset())
        self.reset_control.register(self.io)
        self.fpu_error = CoprocessorError(self.irq, cpu)
        self.fpu_error.register(self.io)
        self.vga = VGA(self.clock, rom=vga_rom)
        self._vram_mirror = PageMirror(self.vga.vram)
        self.vga.register(self.io)
        self.vga.map_legacy(self.bus)
        self._attach_storage(cfg, fda_data)
        # PCI: i440FX host bridge, PIIX3 (ISA, IDE with bus mastering), PIIX4 PM, the VGA
        self.bus_master = BusMaster(self.ide, self.bus.read_bytes, self.bus.write_bytes,
                                    iobus=self.io)
        self.pci = I440FXPCI(self.io, self.bus, self.irq, self.clock,
                             bus_master=self.bus_master, power_off=self.power_off)
        self.vga_pci = self.pci.bus.add(VGAPCI(self.vga, self.bus), 2, 0)
        self.fw_cfg = FWCfg(self.bus.read_bytes, self.bus.write_bytes)
        self.fw_cfg.register(self.io)
        self.fw_cfg.pc_defaults(ram)
        # -- APIC generation (MachineConfig.apic; aero/devices/apic.py, ioapic.py) -------------
        # A local APIC between the 8259A pair and the CPU (LINT0 virtual wire, INTR, INTA), an
        # I/O APIC seeing the ISA IRQs (IRQ0 on pin 2), the PIC's INTR (pin 0) and PIRQA-D
        # (pins 16-19), and the MADT for the firmware's ACPI tables.
        self.lapic = self.ioapic = None
        apic_devices = []
        self.acpi_extra_tables = ()        # tables added to the firmware's ACPI set
        if cfg.apic:
            # under the Aero BIOS the APIC resets to what its (host-side) POST leaves: virtual
            # wire, as SeaBIOS sets it up (aero/devices/apic.py)
            self.lapic = LocalAPIC(self.bus, self.clock, cpu, firmware_setup=cfg.bios == "aero")
            self.ioapic = IOAPIC(self.bus, self.lapic)
            cpu.apic = self.lapic
            cpu.iack = self.lapic.acknowledge
            self.lapic.pic_ack = lambda: self.ioapic.extint_acknowledge(self.pic)
            self.lapic.on_eoi = self.ioapic.eoi
            self.lapic.on_init = self.request_init

            def pic_intr(level, lapic=self.lapic, ioapic=self.ioapic):
                ioapic.set_pic_intr(level)
                lapic.set_lint0(level)
            self.pic.on_intr = pic_intr
            self.irq.sink = ISAIRQFanout(self.pic.set_irq, self.ioapic)
            self.pci.bus.router = IOAPICPIRQRouter(self.irq, self.ioapic)
            self.pci.isa.state_loaded()             # its PIRQ routes into the new router
            apic_devices = [self.lapic, self.ioapic]
            self.acpi_extra_tables = (build_madt(),)
        # -- end of the APIC block ---------------------------------------------------------------
        # ACPI tables for firmware that loads them through QEMU's linker/loader (SeaBIOS)
        for name, data in table_loader_files(build_tables(
                0, extra_tables=self.acpi_extra_tables)).items():
            self.fw_cfg.add_file(name, data)
        self.devices = [self.pic, self.pit, self.portb, self.rtc, self.kbc, *self.uarts,
                        self.dma, self.port92, self.post, self.debugcon, self.fwlog,
                        self.debug_exit, self.reset_control, self.vga, self.fdc, *self.ide,
                        self.bus_master, *self.pci.devices, self.vga_pci, self.fw_cfg,
                        *self.images, *apic_devices, self.fpu_error]
        self.bios_image = None
        self.aero_bios = None               # the Aero BIOS device, when it is the firmware
        self._reset_pending = False
        self._init_pending = False          # an INIT for the CPU (the local APIC)
        self._user_stop = False
        self.running = False                # a run_until is in progress (any thread may ask)
        self._timers: list = []             # host timers (at_icount / at_tick)
        self._timer_seq = itertools.count()
        self.edit_listeners: list = []      # callables(what): the host changed the state
        cpu.on_shutdown = self._on_shutdown
        self.hooks = Hooks(self)
        self.inputs = InputQueue(self)

    def _attach_storage(self, cfg: MachineConfig, fda_data: bytes | None) -> None:
        """Floppy drives A/B, IDE primary (hard disks) and secondary (CD-ROM); CMOS to match.
        Image problems raise ValueError with one readable line."""
        self.images = []

        def image(kind, path):
            img = getattr(DiskImage, kind)(path, **({} if kind == "cdrom" else
                                                    {"writable": cfg.writable}))
            self.images.append(img)
            return img

        self.fdc = FDC82077AA(self.irq, self.dma, self.clock)
        self.fdc.register(self.io)
        floppy_types = []
        for unit, path in enumerate((cfg.fda, cfg.fdb)):
            img = None
            if unit == 0 and fda_data is not None:
                img = DiskImage(data=fda_data, kind="floppy", label="<built-in demo floppy>")
                self.images.append(img)
            elif path:
                img = image("floppy", path)
            if img is not None:
                self.fdc.insert(unit, img)
                floppy_types.append(_CMOS_FLOPPY[img.geometry.cmos_type])
        disks = [ATADisk(image("hard_disk", p)) if p else None for p in (cfg.hda, cfg.hdb)]
        cd = ATAPICDROM(image("cdrom", cfg.cdrom)) if cfg.cdrom else None
        self.ide = [IDEChannel(0, self.irq, disks[0], disks[1]), IDEChannel(1, self.irq, cd)]
        for ch in self.ide:
            ch.register(self.io)
        self.rtc.configure(cfg.memory << 20, floppies=floppy_types, boot=cfg.boot)
        for i, d in enumerate(disks):
            if d is not None:
                self.rtc.set_hard_disk(i, *d.geometry)

    # ------------------------------------------------------------------------------------------
    # Firmware
    # ------------------------------------------------------------------------------------------
    def _quietable(self, sink):
        if sink is None:
            return None

        def out(value, sink=sink):
            if not self.quiet:
                sink(value)
        return out

    def load_bios(self, data: bytes) -> None:
        """Map a BIOS image as QEMU does: all of it at the top of 4 GiB, its last 128 KiB (all
        of it if smaller) just below 1 MiB."""
        n = len(data)
        if n not in (64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20) and n % 4096:
            raise ValueError(f"BIOS image size {n} is not a multiple of 4 KiB")
        if n == 0 or n > 1 << 20:
            raise ValueError(f"BIOS image size {n} is not between 4 KiB and 1 MiB")
        self.bios_image = bytes(data)
        self.bus.map_rom((1 << 32) - n, data)
        low = data[-LOW_ALIAS:]
        self.bus.map_rom(0x100000 - len(low), low)

    # ------------------------------------------------------------------------------------------
    # Events from devices
    # ------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and close the host output sinks (files, stdout) and disk images."""
        for s in self.sinks:
            close = getattr(s, "close", None)
            if close is not None:
                close()
        for img in self.images:
            img.close()

    def _debug_exit(self, status: int) -> None:
        self.exit_status = status
        self.cpu.request_stop()

    def request_reset(self) -> None:
        """The guest asked for a system reset (port 64h, 92h or CF9h; Ctrl+Alt+Del).  With
        ``no_reboot`` the run ends instead, as with QEMU's -no-reboot."""
        if self.config.no_reboot:
            self.result_status = "shutdown"
        else:
            self._reset_pending = True
        self.cpu.request_stop()

    def _on_shutdown(self) -> None:
        if not self.config.no_reboot:
            self._reset_pending = True

    def power_off(self) -> None:
        self.result_status = "poweroff"
        self.cpu.request_stop()

    def request_init(self) -> None:
        """The local APIC delivered an INIT to the CPU: taken at the next instruction
        boundary (``cpu_init``)."""
        self._init_pending = True
        self.cpu.request_stop()

    def cpu_init(self) -> None:
        """INIT (SDM Vol. 3, 9.1, Table 9-1): the processor to its power-up state, except that
        the MSRs (SYSENTER, EFER, ...) and the x87 keep their values and the time-stamp counter
        runs on;
        the local APIC to its INIT state, keeping its ID.  Devices, the A20 gate and memory are
        untouched.  The CPU (the bootstrap processor) then runs from the reset vector."""
        cpu = self.cpu
        keep = (cpu.tsc_offset, dict(cpu.msr), list(cpu.sysenter), cpu.efer,
                cpu.fpu.get_state())
        cpu.reset()
        cpu.tsc_offset, cpu.msr, cpu.sysenter[:], cpu.efer, fpu = keep
        cpu.fpu.set_state(fpu)          # INIT leaves the x87 as it was (SDM Vol. 3 table 9-1)
        cpu.mode_changed()
        if self.lapic is not None:
            self.lapic.init_signal()

    def reset(self) -> None:
        """A system reset: CPU and devices to power-on state; RAM keeps its contents.  Virtual
        time runs on (the instruction count is since power-on: limits, recordings and traces
        count across resets); ``resets`` counts them."""
        self.resets += 1
        self.cpu.reset()
        self.bus.set_a20(True)
        for d in self.devices:
            d.reset()

    # ------------------------------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------------------------------
    def run(self, max_instructions: int | None = None, timeout: float | None = None,
            realtime: bool = False) -> RunResult:
        """Run until the guest ends the run, or ``max_instructions`` have retired in all (the
        instruction count since power-on, resets included, not this call's), or ``timeout``
        seconds of wall time."""
        return self.run_until(icount=max_instructions, timeout=timeout, realtime=realtime)

    def step(self, n: int = 1) -> RunResult:
        """Run ``n`` more instructions (status "limit"), unless something stops it first."""
        return self.run_until(instructions=n)

    def request_stop(self) -> None:
        """Stop the current run at the next instruction boundary: status "stop".  Safe to
        call from any thread; nothing happens if no run is in progress (the machine is
        stopped already)."""
        if not self.running:
            return
        self._user_stop = True
        self.cpu.request_stop()

    def run_until(self, instructions: int | None = None, icount: int | None = None,
                  timeout: float | None = None, realtime: bool = False) -> RunResult:
        """Run until ``instructions`` more have retired or the instruction count reaches
        ``icount`` ("limit"), a hook asks to stop ("hook"), ``request_stop`` ("stop"), the
        guest ends the run, or ``timeout`` seconds of wall time pass ("timeout").  While the CPU
        is halted, virtual time jumps to the next device event.  ``realtime`` paces virtual time
        to the wall clock."""
        if instructions is not None:
            target = self.cpu.icount + max(0, instructions)
            icount = target if icount is None else min(icount, target)
        self.running = True
        try:
            return self._run(icount, timeout, realtime)
        finally:
            self.running = False
            self._user_stop = False

    def _run(self, icount, timeout, realtime) -> RunResult:
        cpu, clock = self.cpu, self.clock
        wall0 = time.monotonic()
        virt0 = clock.now()
        deadline = wall0 + timeout if timeout else None
        try:
            while True:
                if self.exit_status is not None:
                    return self._result("debug-exit", self.exit_status)
                if self.result_status is not None:
                    return self._result(self.result_status, detail="reset requested" if
                                        self.result_status == "shutdown" else "")
                if self._reset_pending:
                    self._reset_pending = False
                    self.reset()
                if self._init_pending:
                    self._init_pending = False
                    self.cpu_init()
                if self._user_stop:
                    self._user_stop = False
                    cpu.stop_requested = False
                    return self._result("stop")
                if self._timers:
                    self._fire_timers()
                if self.inputs.submitted:
                    self.inputs.drain()
                # what is due now (input the host just posted) happens before the next
                # instruction, however the run got here
                clock.run_due()
                if icount is not None and cpu.icount >= icount:
                    return self._result("limit")
                now = clock.now()
                budget = SLICE
                nxt = clock.next_event()
                if nxt is not None:
                    budget = min(budget, max(1, nxt - now))
                if icount is not None:
                    budget = min(budget, icount - cpu.icount)
                if self._timers:
                    budget = min(budget, self._timer_budget(now))
                why = cpu.run(budget)
                clock.run_due()
                if why == "hook" or why == "shutdown" and cpu.take_hook_stop():
                    return self._hook_stop()
                if why == "halt" and not self._reset_pending and self.exit_status is None:
                    if not cpu.flags & F.IF and not cpu.nmi_pending:
                        return self._result("halted", detail="HLT with interrupts disabled")
                    if not cpu.intr:
                        nxt = clock.next_event()
                        host = self._next_tick_timer()
                        if nxt is None and host is None:
                            return self._result("halted", detail="HLT and no event can wake it")
                        until = host if nxt is None else nxt if host is None else min(nxt, host)
                        cpu.idle_time += max(0, until - clock.now())
                        clock.run_due()
                elif why == "shutdown" and self.config.no_reboot:
                    return self._result("shutdown", detail="triple fault")
                if deadline is not None and time.monotonic() > deadline:
                    return self._result("timeout")
                if realtime:
                    ahead = clock.ns(clock.now() - virt0) / 1e9 - (time.monotonic() - wall0)
                    if ahead > 0.002:
                        time.sleep(ahead)
        except EmulatorError as e:
            return self._result("error", detail=e.report)

    def note_edit(self, what: str) -> None:
        """Say that the host changed the machine outside its run (a debugger writing registers
        or memory, a state loaded): a recording in progress takes a keyframe there."""
        for fn in list(self.edit_listeners):
            fn(what)

    # ------------------------------------------------------------------------------------------
    # Host timers: callbacks at exact instruction counts or ticks, not part of the machine
    # ------------------------------------------------------------------------------------------
    def at_icount(self, icount: int, fn) -> None:
        """Call ``fn()`` between instructions once the instruction count reaches ``icount``
        (in a run; before the run stops there).  Host-side: not saved with the state.  The
        recorder's checkpoints use it."""
        self._timers.append((icount, 0, next(self._timer_seq), fn))

    def at_tick(self, tick: int, fn) -> None:
        """Call ``fn()`` between instructions once virtual time reaches ``tick`` (idle skipping
        stops there).  Host-side, as ``at_icount``: replay injects recorded input with it."""
        self._timers.append((tick, 1, next(self._timer_seq), fn))

    def cancel_timers(self, fn=None) -> None:
        """Drop the host timers calling ``fn`` (all of them with None)."""
        self._timers = [t for t in self._timers if fn is not None and t[3] is not fn]

    def _fire_timers(self) -> None:
        """Fire the due host timers, in the order they were set."""
        while self._timers:
            icount, now = self.cpu.icount, self.clock.now()
            due = [t for t in self._timers if (now if t[1] else icount) >= t[0]]
            if not due:
                return
            t = min(due, key=lambda t: t[2])
            self._timers.remove(t)
            t[3]()

    def _timer_budget(self, now: int) -> int:
        """Instructions until the first host timer (at least 1)."""
        icount = self.cpu.icount
        return max(1, min((when - (now if kind else icount)) for when, kind, _, _ in self._timers))

    def _next_tick_timer(self):
        ticks = [when for when, kind, _, _ in self._timers if kind]
        return min(ticks) if ticks else None

    def _hook_stop(self) -> RunResult:
        hook = self.cpu.stopped_by
        self.cpu.stopped_by = None
        err = self.hooks.error
        if err is not None:
            self.hooks.error = None
            raise err
        r = self._result("hook")
        r.hook = hook
        return r

    def _result(self, status: str, code: int | None = None, detail: str = "") -> RunResult:
        if code is None:
            code = EXIT_STATUS[status]
        return RunResult(status, code, self.cpu.icount, detail)

    # ------------------------------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------------------------------
    def _keyed_devices(self):
        return [(f"{d.name}{i}", d) for i, d in enumerate(self.devices)]

    def device_states(self) -> dict:
        return {k: (d.get_state(vram=False) if d is self.vga else d.get_state())
                for k, d in self._keyed_devices()}

    def get_state(self) -> dict:
        """The whole machine between two instructions, as plain data (``set_state`` takes it
        back).  RAM and VRAM are tuples of 4 KiB pages shared with earlier snapshots; the rest
        is small.  Taking a snapshot starts a new dirty-tracking interval."""
        cpu = self.cpu
        if cpu.cur_block is not None:
            raise RuntimeError("get_state inside an instruction")
        st = {
            "version": STATE_VERSION,
            "cpu": cpu_state(cpu),
            "ram": self._ram_mirror.snapshot(self.bus.dirty),
            "vram": self._vram_mirror.snapshot(self.vga.vram_dirty),
            "a20": self.bus.a20,
            "devices": self.device_states(),
            "irq": list(self.irq.level),
            "clock": self.clock.get_state(),
            "inputs": self.inputs.get_state(),
            "machine": {"exit_status": self.exit_status, "result_status": self.result_status,
                        "reset_pending": self._reset_pending, "resets": self.resets},
        }
        if self._init_pending:                  # (only then: other states keep their layout)
            st["machine"]["init_pending"] = True
        self._sync_memory()
        return st

    def set_state(self, st: dict) -> None:
        """Put the machine in the state ``get_state`` returned (of this machine or of one built
        from the same configuration).  A ValueError if it does not fit; the machine is then
        in no defined state and should be restored again or discarded."""
        if st.get("version") != STATE_VERSION:
            raise ValueError(f"machine state version {st.get('version')!r}, expected "
                             f"{STATE_VERSION}")
        keyed = self._keyed_devices()
        if [k for k, _ in keyed] != list(st["devices"]):
            raise ValueError("the state is of a machine with other devices")
        cpu = self.cpu
        self.clock.clear()
        # devices re-derive interrupt lines as they are restored: let nothing through until
        # the lines themselves are restored, and the interrupt controller last
        sink, self.irq.sink = self.irq.sink, None
        try:
            self.bus.set_a20(st["a20"])
            cpu_set_state(cpu, st["cpu"], flush=False)
            pic = None
            for key, d in keyed:
                if d is self.pic:
                    pic = key
                    continue
                d.set_state(st["devices"][key])
            self.irq.level[:] = st["irq"]
        finally:
            self.irq.sink = sink
        self.pic.set_state(st["devices"][pic])
        # memory last: restoring the chipset's PAM registers moves bytes between RAM and the
        # shadow copies; the saved RAM is what the guest saw
        changed = self._ram_mirror.restore(st["ram"], self.bus.dirty)
        self._vram_mirror.restore(st["vram"], self.vga.vram_dirty)
        cpu.cache.restored(changed, self.bus.ram_pages)
        self.inputs.set_state(st["inputs"])
        self.clock.set_state(st["clock"])
        ms = st["machine"]
        self.exit_status = ms["exit_status"]
        self.result_status = ms["result_status"]
        self._reset_pending = ms["reset_pending"]
        self._init_pending = ms.get("init_pending", False)
        self.resets = ms["resets"]
        self._sync_memory()

    def _sync_memory(self) -> None:
        self.bus.track_dirty()
        self.vga.vram_dirty.clear()

    def state_hash(self) -> str:
        """SHA-256 over the machine state: CPU (and TLB), device states, interrupt lines,
        virtual time, the A20 gate, pending events and input, RAM and VRAM.  Host file names
        (a disk image's path) are not guest state and are left out; raw bytes inside device
        states enter as their own digests."""
        h = hashlib.sha256()
        st = {"cpu": cpu_state(self.cpu), "devices": _without_host_names(self.device_states()),
              "irq": self.irq.level, "now": self.clock.now(), "a20": self.bus.a20,
              "events": [[e.when, e.name] for e in self.clock.pending()],
              "inputs": self.inputs.get_state()}
        h.update(json.dumps(st, sort_keys=True, separators=(",", ":"), default=_blob).encode())
        h.update(self.bus.ram)
        h.update(self.vga.vram)
        return h.hexdigest()


def _blob(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(v).hexdigest()
    return repr(v)
