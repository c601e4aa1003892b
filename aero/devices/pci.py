"""PCI: configuration mechanism #1, the bus, the configuration-space header, BARs and INTx.

References: PCI Local Bus Specification rev. 2.2/3.0, section 3.2.2.3.2 "Configuration
Mechanism #1" (CONFIG_ADDRESS at 0CF8h, a dword register: bit 31 enable, bits 23:16 bus,
15:11 device, 10:8 function, 7:2 register; CONFIG_DATA at 0CFCh-0CFFh, byte/word/dword at the
byte offset the port selects), chapter 6 "Configuration Space" (6.1 header: Vendor ID, Device
ID, Command, Status, Revision ID, Class Code, Header Type with bit 7 = multi-function,
Subsystem Vendor ID / Subsystem ID, Interrupt Line / Interrupt Pin; 6.2.5 Base Addresses:
sizing by writing all ones and reading back the mask, I/O and 32/64-bit memory BARs, the
Expansion ROM Base Address at 30h with its enable bit 0), 6.2.2 Command (IOSE bit 0, MSE bit 1,
BME bit 2, Interrupt Disable bit 10) and 6.2.3 Status (Interrupt Status bit 3), 2.2.6 INTA#-INTD#
(level-sensitive, active low, shareable).  Intel 82371SB PIIX3 data sheet, 2.3.7 PIRQRC[A:D]
(route PIRQx# to an ISA IRQ, bit 7 = disable) and 7.2 "PCI interrupt routing".

Conventions follow QEMU (hw/pci/pci.c): the device-specific area 40h-FFh is writable unless a
device says otherwise; every function carries subsystem 1AF4:1100 (Red Hat / "QEMU virtual
machine") unless it sets its own; reads from an absent function return all ones; a BAR is
decoded only while its Command enable bit is set, it is non-zero, does not wrap and (for I/O)
lies inside the 64 KiB I/O space; the expansion ROM also needs its enable bit.

INTx swizzle on the i440FX host bus (QEMU's ``pci_slot_get_pirq`` for PIIX, SeaBIOS's
``piix_pci_slot_get_irq`` and the _PRT of QEMU's DSDT agree):
``PIRQ index = (slot + intx - 1) mod 4`` with intx = 0 for INTA# (Interrupt Pin register - 1),
i.e. slot 1 INTA# -> PIRQA, slot 0 INTA# -> PIRQD.  PIRQA-D go through the PIIX3 PIRQRC
registers (``aero.devices.piix``) to ISA IRQs; lines are level-triggered and wire-ORed, so the
router drives an ISA line high while any source routed to it is asserted (the PIC must have the
line's ELCR bit set, as firmware does).

Classes:

* ``PCIFunction`` - one function: 256 bytes of configuration space with per-byte write masks
  (``wmask``) and write-1-to-clear masks (``w1cmask``), the standard type-0 header, BARs
  (``add_bar`` / ``add_rom_bar``), hooks ``bar_changed(index, old, new)`` and
  ``command_changed(old, new)``, ``config_changed(offset, size)`` for device registers, and
  ``set_irq(level)`` for its INTx# pin.  Listeners added with ``on_bar(callback)`` are called
  as ``callback(function, index, old_base, new_base)`` (``None`` = not decoded).
* ``PCIIRQRouter`` - PIRQA-D (and fixed sources such as the ACPI SCI) to ISA IRQ lines.
* ``PCIBus`` - bus 0 with its functions, the configuration mechanism #1 ports and INTx.
"""

from __future__ import annotations

from .base import Device

# Configuration header offsets (PCI 3.0, 6.1)
VENDOR_ID, DEVICE_ID, COMMAND, STATUS = 0x00, 0x02, 0x04, 0x06
REVISION_ID, CLASS_PROG, CLASS_DEVICE = 0x08, 0x09, 0x0A
CACHE_LINE_SIZE, LATENCY_TIMER, HEADER_TYPE, BIST = 0x0C, 0x0D, 0x0E, 0x0F
BAR0, SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID, ROM_ADDRESS = 0x10, 0x2C, 0x2E, 0x30
CAPABILITIES, INTERRUPT_LINE, INTERRUPT_PIN = 0x34, 0x3C, 0x3D

# Command register bits
CMD_IO, CMD_MEMORY, CMD_MASTER, CMD_SPECIAL = 0x0001, 0x0002, 0x0004, 0x0008
CMD_PARITY, CMD_SERR, CMD_INTX_DISABLE = 0x0040, 0x0100, 0x0400
# Status register bits
STS_INTERRUPT = 0x0008
STS_W1C = 0x0100 | 0x0800 | 0x1000 | 0x2000 | 0x4000 | 0x8000   # error bits, write 1 to clear

ROM_SLOT = 6
BAR_IO, BAR_MEM32, BAR_MEM64 = "io", "mem32", "mem64"
ROM_ENABLE = 0x01
QEMU_SUBSYSTEM = (0x1AF4, 0x1100)

CONFIG_ADDRESS_PORT = 0xCF8
CONFIG_DATA_PORT = 0xCFC
CONFIG_ADDRESS_MASK = 0x80FFFFFC      # bits 30:24 and 1:0 are reserved (read 0)

PIIX_RESERVED_IRQS = frozenset((0, 1, 2, 8, 13))   # PIRQRC: values that route nowhere


def pirq_of(slot: int, pin: int) -> int:
    """PIRQ index (0 = PIRQA) for Interrupt Pin ``pin`` (1 = INTA#) of a device in ``slot``."""
    return (slot + pin - 2) & 3


def claim_io(iobus, base: int, count: int, dev, read, write, widths=(1,)) -> bool:
    """Register ports only if none is owned by another device (a guest can program a BAR over
    other devices' ports; then nothing is mapped and False is returned)."""
    if base < 0 or base + count > 0x10000:
        return False
    for p in range(base, base + count):
        o = iobus.owner.get(p)
        if o is not None and o is not dev:
            return False
    iobus.register(base, count, dev, read, write, widths)
    return True


class BAR:
    __slots__ = ("index", "size", "kind", "prefetch")

    def __init__(self, index, size, kind, prefetch):
        self.index = index
        self.size = size
        self.kind = kind
        self.prefetch = prefetch


class PCIFunction(Device):
    """One PCI function with a type-0 configuration header.  Subclasses set the class
    attributes, call ``add_bar`` in ``__init__`` and set device registers in ``init_config``
    (called at construction and on reset)."""

    name = "pci-function"
    STATE_VERSION = 1
    VENDOR = 0xFFFF
    DEVICE = 0xFFFF
    REVISION = 0x00
    CLASS = 0x000000                # base class << 16 | sub-class << 8 | programming interface
    MULTIFUNCTION = False
    SUBSYSTEM = QEMU_SUBSYSTEM
    PIN = 0                         # Interrupt Pin: 0 none, 1 INTA# .. 4 INTD#
    COMMAND_RESET = 0x0000
    STATUS_RESET = 0x0000

    def __init__(self):
        self.config = bytearray(256)
        self.wmask = bytearray(256)
        self.w1cmask = bytearray(256)
        self.bars: list[BAR | None] = [None] * 7
        self.mapped: list[int | None] = [None] * 7    # the decoded base of each BAR, or None
        self.bus: PCIBus | None = None
        self.slot = None
        self.func = None
        self.irq_level = False          # the INTx# input as the device drives it
        self._bar_listeners = []
        self._build_header()

    # -- construction ---------------------------------------------------------------------------
    def _build_header(self) -> None:
        c, w = self.config, self.wmask
        c[:] = bytes(256)
        w[:] = bytes(64) + b"\xff" * 192               # device-specific area writable (QEMU)
        self.w1cmask[:] = bytes(256)
        self.put16(VENDOR_ID, self.VENDOR)
        self.put16(DEVICE_ID, self.DEVICE)
        c[REVISION_ID] = self.REVISION
        c[CLASS_PROG] = self.CLASS & 0xFF
        self.put16(CLASS_DEVICE, self.CLASS >> 8)
        c[HEADER_TYPE] = 0x80 if self.MULTIFUNCTION else 0x00
        if self.SUBSYSTEM is not None:
            self.put16(SUBSYSTEM_VENDOR_ID, self.SUBSYSTEM[0])
            self.put16(SUBSYSTEM_ID, self.SUBSYSTEM[1])
        c[INTERRUPT_PIN] = self.PIN
        self.put16(COMMAND, self.COMMAND_RESET)
        self.put16(STATUS, self.STATUS_RESET)
        cmd_w = CMD_IO | CMD_MEMORY | CMD_MASTER | CMD_SPECIAL | CMD_PARITY | CMD_SERR | \
            CMD_INTX_DISABLE
        w[COMMAND], w[COMMAND + 1] = cmd_w & 0xFF, cmd_w >> 8
        self.w1cmask[STATUS], self.w1cmask[STATUS + 1] = STS_W1C & 0xFF, STS_W1C >> 8
        w[CACHE_LINE_SIZE] = w[LATENCY_TIMER] = w[INTERRUPT_LINE] = 0xFF
        for bar in self.bars:
            if bar is not None:
                self._bar_header(bar)
        self.init_config()

    def init_config(self) -> None:
        """Device registers' reset values and write masks (subclasses)."""

    def add_bar(self, index: int, size: int, kind: str = BAR_MEM32,
                prefetch: bool = False) -> None:
        """Declare BAR ``index`` (0-5) of ``size`` bytes (a power of two; at least 4 for I/O,
        16 for memory).  A 64-bit memory BAR also takes index + 1."""
        if size & (size - 1) or size < (4 if kind == BAR_IO else 16):
            raise ValueError("BAR size must be a power of two (>= 4 for I/O, >= 16 for memory)")
        if not 0 <= index <= (4 if kind == BAR_MEM64 else 5):
            raise ValueError("bad BAR index")
        bar = BAR(index, size, kind, prefetch)
        self.bars[index] = bar
        self._bar_header(bar)

    def add_rom_bar(self, size: int) -> None:
        """Declare the Expansion ROM Base Address register (30h) for a ``size``-byte ROM."""
        if size & (size - 1) or size < 2048:
            raise ValueError("ROM size must be a power of two >= 2 KiB")
        bar = BAR(ROM_SLOT, size, BAR_MEM32, False)
        self.bars[ROM_SLOT] = bar
        self._bar_header(bar)

    def _bar_header(self, bar: BAR) -> None:
        if bar.index == ROM_SLOT:
            off = ROM_ADDRESS
            self.put32(off, 0)
            self._put_mask(off, (~(bar.size - 1) & 0xFFFFF800) | ROM_ENABLE)
            return
        off = BAR0 + 4 * bar.index
        if bar.kind == BAR_IO:
            self.put32(off, 0x1)
            self._put_mask(off, ~(bar.size - 1) & 0xFFFFFFFC)
        else:
            low = (0x4 if bar.kind == BAR_MEM64 else 0x0) | (0x8 if bar.prefetch else 0)
            self.put32(off, low)
            self._put_mask(off, ~(bar.size - 1) & 0xFFFFFFF0)
            if bar.kind == BAR_MEM64:
                self.put32(off + 4, 0)
                self._put_mask(off + 4, 0xFFFFFFFF)

    def _put_mask(self, off: int, mask: int) -> None:
        self.wmask[off: off + 4] = (mask & 0xFFFFFFFF).to_bytes(4, "little")

    # -- byte helpers -----------------------------------------------------------------------------
    def get(self, off: int, size: int) -> int:
        return int.from_bytes(self.config[off: off + size], "little")

    def put16(self, off: int, v: int) -> None:
        self.config[off: off + 2] = (v & 0xFFFF).to_bytes(2, "little")

    def put32(self, off: int, v: int) -> None:
        self.config[off: off + 4] = (v & 0xFFFFFFFF).to_bytes(4, "little")

    @property
    def command(self) -> int:
        return self.get(COMMAND, 2)

    @property
    def bdf(self) -> str:
        return f"00:{self.slot or 0:02x}.{self.func or 0}"

    # -- configuration cycles -------------------------------------------------------------------
    def config_read(self, off: int, size: int) -> int:
        """A configuration read of ``size`` bytes at ``off`` (bytes past 0xFF read as 0xFF)."""
        v = 0
        for i in range(size):
            a = off + i
            v |= (self.config[a] if a < 256 else 0xFF) << (8 * i)
        return v

    def config_write(self, off: int, size: int, value: int) -> None:
        old_cmd = self.command
        cfg, wm, w1c = self.config, self.wmask, self.w1cmask
        end = min(off + size, 256)
        for a in range(off, end):
            b = (value >> (8 * (a - off))) & 0xFF
            m = wm[a]
            v = (cfg[a] & ~m) | (b & m)
            v &= ~(b & w1c[a])
            cfg[a] = v & 0xFF
        if end <= off:
            return
        touched = range(off, end)
        if COMMAND in touched or COMMAND + 1 in touched:
            new_cmd = self.command
            if new_cmd != old_cmd:
                self._update_bars()
                if (old_cmd ^ new_cmd) & CMD_INTX_DISABLE:
                    self._drive_intx()
                self.command_changed(old_cmd, new_cmd)
        if off < 0x28 and end > BAR0 or off < 0x34 and end > ROM_ADDRESS:
            self._update_bars()
        self.config_changed(off, end - off)

    # -- hooks ----------------------------------------------------------------------------------
    def config_changed(self, off: int, size: int) -> None:
        """Bytes [off, off+size) were written (device registers react here)."""

    def command_changed(self, old: int, new: int) -> None:
        """The Command register changed."""

    def bar_changed(self, index: int, old: int | None, new: int | None) -> None:
        """BAR ``index`` moved from ``old`` to ``new`` (``None``: not decoded)."""

    def on_bar(self, callback) -> None:
        """Call ``callback(function, index, old, new)`` whenever a BAR's decoded base changes."""
        self._bar_listeners.append(callback)

    # -- BAR decoding ---------------------------------------------------------------------------
    def bar_address(self, index: int) -> int | None:
        """Where BAR ``index`` decodes now (QEMU's pci_bar_address rules), or None."""
        bar = self.bars[index]
        if bar is None:
            return None
        cmd = self.command
        size = bar.size
        if index == ROM_SLOT:
            raw = self.get(ROM_ADDRESS, 4)
            if not cmd & CMD_MEMORY or not raw & ROM_ENABLE:
                return None
            base = raw & ~(size - 1) & 0xFFFFF800
            limit = 1 << 32
        else:
            off = BAR0 + 4 * index
            if bar.kind == BAR_IO:
                if not cmd & CMD_IO:
                    return None
                base = self.get(off, 4) & ~(size - 1) & 0xFFFFFFFC
                limit = 0x10000
            else:
                if not cmd & CMD_MEMORY:
                    return None
                base = self.get(off, 4) & 0xFFFFFFF0
                if bar.kind == BAR_MEM64:
                    base |= self.get(off + 4, 4) << 32
                base &= ~(size - 1)
                limit = 1 << 32       # the CPU's physical space (no PAE here)
        # QEMU refuses a memory BAR whose last byte would be FFFFFFFFh (all ones while sizing)
        if base == 0 or base + size > limit or (limit == 1 << 32 and base + size == limit):
            return None
        return base

    def _update_bars(self) -> None:
        for i, bar in enumerate(self.bars):
            if bar is None:
                continue
            new = self.bar_address(i)
            old = self.mapped[i]
            if new != old:
                self.mapped[i] = new
                self.bar_changed(i, old, new)
                for cb in self._bar_listeners:
                    cb(self, i, old, new)

    # -- INTx -----------------------------------------------------------------------------------
    def set_irq(self, level: bool) -> None:
        """Drive this function's INTx# (True = asserted).  Shows in Status bit 3; reaches the
        bus unless Command bit 10 (Interrupt Disable) is set."""
        self.irq_level = bool(level)
        sts = self.get(STATUS, 2)
        sts = (sts | STS_INTERRUPT) if level else (sts & ~STS_INTERRUPT)
        self.put16(STATUS, sts)
        self._drive_intx()

    def _drive_intx(self) -> None:
        if self.bus is not None and self.config[INTERRUPT_PIN]:
            self.bus.set_intx(self, self.irq_level and not self.command & CMD_INTX_DISABLE)

    # -- Device -----------------------------------------------------------------------------------
    def reset(self) -> None:
        if self.irq_level:
            self.set_irq(False)
        self._build_header()
        self._update_bars()

    def summary(self) -> dict:
        d = {"BDF": self.bdf, "ID": f"{self.get(0, 2):04X}:{self.get(2, 2):04X}",
             "class": f"{self.get(0x08, 4) >> 8:06X}", "command": f"{self.command:04X}",
             "status": f"{self.get(STATUS, 2):04X}"}
        for i, bar in enumerate(self.bars):
            if bar is not None:
                m = self.mapped[i]
                label = "ROM" if i == ROM_SLOT else f"BAR{i}"
                d[label] = f"{bar.kind} {bar.size:#x} @ " + ("-" if m is None else f"{m:#x}")
        if self.config[INTERRUPT_PIN]:
            d["INTx"] = f"INT{'ABCD'[(self.config[INTERRUPT_PIN] - 1) & 3]}# " + \
                ("asserted" if self.irq_level else "idle") + \
                f", line {self.config[INTERRUPT_LINE]}"
        return d

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "config": self.config.hex(),
                "irq_level": self.irq_level}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.config[:] = bytes.fromhex(st["config"])
        self.irq_level = st["irq_level"]
        self._update_bars()
        self._drive_intx()
        self.state_loaded()

    def state_loaded(self) -> None:
        """Re-derive side effects (mappings) from the restored configuration (subclasses)."""


class PCIIRQRouter:
    """PIRQA#-PIRQD# and fixed sources onto the 16 ISA IRQ lines, wire-ORed, level-triggered.

    ``route[n]`` is the ISA IRQ PIRQn reaches (None: disabled).  The router drives a line only
    while it has asserted it: lines no source of ours asserts are left to ISA devices."""

    def __init__(self, irq=None):
        self.irq = irq                      # IRQLines (or None: nothing is driven)
        self.route: list[int | None] = [None] * 4
        self.pirq_level = [False] * 4
        self.fixed: dict[str, tuple[int, bool]] = {}
        self.driven: set[int] = set()

    def set_pirq(self, n: int, level: bool) -> None:
        if self.pirq_level[n] != bool(level):
            self.pirq_level[n] = bool(level)
            self._update()

    def set_route(self, n: int, irq: int | None) -> None:
        if self.route[n] != irq:
            self.route[n] = irq
            self._update()

    def set_fixed(self, name: str, irq: int, level: bool) -> None:
        """A source hard-wired to an ISA IRQ (the PIIX4 SCI on IRQ 9).  Only asserted sources
        are kept, so the state does not depend on who said "not asserted" first."""
        want = (irq, True) if level else None
        if self.fixed.get(name) != want:
            if level:
                self.fixed[name] = want
            else:
                self.fixed.pop(name, None)
            self._update()

    def asserted(self) -> set[int]:
        want = {self.route[n] for n in range(4) if self.pirq_level[n] and self.route[n] is not None}
        want |= {irq for irq, lv in self.fixed.values() if lv}
        return want

    def _update(self) -> None:
        want = self.asserted()
        if self.irq is not None:
            for line in sorted(self.driven - want):
                self.irq.set(line, False)
            for line in sorted(want - self.driven):
                self.irq.set(line, True)
        self.driven = want

    def get_state(self) -> dict:
        return {"route": list(self.route), "pirq_level": list(self.pirq_level),
                "fixed": {k: list(v) for k, v in sorted(self.fixed.items())},
                "driven": sorted(self.driven)}

    def set_state(self, st: dict) -> None:
        self.route = list(st["route"])
        self.pirq_level = list(st["pirq_level"])
        self.fixed = {k: (v[0], v[1]) for k, v in st["fixed"].items()}
        self.driven = set(st["driven"])


class PCIBus(Device):
    """PCI bus 0 and configuration mechanism #1 (the host bridge's CONFIG_ADDRESS /
    CONFIG_DATA ports).  ``register(iobus)`` claims only 0CF8h (a dword register; byte and word
    accesses read it and are ignored as writes) and 0CFCh-0CFFh: 0CF9h belongs to the PIIX3
    reset control register."""

    name = "pci"
    STATE_VERSION = 2

    def __init__(self, irq=None):
        self.functions: dict[tuple[int, int], PCIFunction] = {}
        self.router = PCIIRQRouter(irq)
        self.CONFIG_ADDRESS = 0
        self.intx: dict[tuple[int, int], bool] = {}    # (slot, fn) -> INTx# reaching the bus
        self.config_reads = 0
        self.config_writes = 0

    def add(self, function: PCIFunction, slot: int, fn: int = 0) -> PCIFunction:
        if not 0 <= slot < 32 or not 0 <= fn < 8:
            raise ValueError("slot 0-31, function 0-7")
        if (slot, fn) in self.functions:
            raise ValueError(f"00:{slot:02x}.{fn} is taken")
        self.functions[(slot, fn)] = function
        function.bus, function.slot, function.func = self, slot, fn
        return function

    def find(self, vendor: int, device: int) -> PCIFunction | None:
        for f in self.functions.values():
            if f.get(VENDOR_ID, 2) == vendor and f.get(DEVICE_ID, 2) == device:
                return f
        return None

    def register(self, iobus) -> None:
        iobus.register(CONFIG_ADDRESS_PORT, 1, self, self._addr_read, self._addr_write,
                       widths=(1, 2, 4))
        iobus.register(CONFIG_DATA_PORT, 4, self, self._data_read, self._data_write,
                       widths=(1, 2, 4))

    # -- mechanism #1 -------------------------------------------------------------------------
    def _addr_read(self, port: int, size: int) -> int:
        return self.CONFIG_ADDRESS

    def _addr_write(self, port: int, size: int, value: int) -> None:
        if size == 4:                           # only a dword write loads CONFIG_ADDRESS
            self.CONFIG_ADDRESS = value & CONFIG_ADDRESS_MASK

    def _target(self):
        a = self.CONFIG_ADDRESS
        if not a & 0x80000000:
            return None, 0
        if (a >> 16) & 0xFF:                    # only bus 0 exists (no PCI-PCI bridges)
            return None, 0
        f = self.functions.get(((a >> 11) & 0x1F, (a >> 8) & 7))
        return f, a & 0xFC

    def _data_read(self, port: int, size: int) -> int:
        f, reg = self._target()
        mask = (1 << (8 * size)) - 1
        if f is None:
            return mask
        self.config_reads += 1
        return f.config_read(reg + (port & 3), size) & mask

    def _data_write(self, port: int, size: int, value: int) -> None:
        f, reg = self._target()
        if f is None:
            return
        self.config_writes += 1
        f.config_write(reg + (port & 3), size, value & ((1 << (8 * size)) - 1))

    # direct access (firmware services, tests)
    def read_config(self, slot: int, fn: int, off: int, size: int) -> int:
        f = self.functions.get((slot, fn))
        return (1 << (8 * size)) - 1 if f is None else f.config_read(off, size)

    def write_config(self, slot: int, fn: int, off: int, size: int, value: int) -> None:
        f = self.functions.get((slot, fn))
        if f is not None:
            f.config_write(off, size, value)

    # -- INTx -----------------------------------------------------------------------------------
    def set_intx(self, function: PCIFunction, level: bool) -> None:
        key = (function.slot, function.func)
        if level:
            self.intx[key] = True
        else:
            self.intx.pop(key, None)        # only asserted pins are kept: one state, any order
        self._update_pirqs()

    def _update_pirqs(self) -> None:
        levels = [False] * 4
        for slot, fn in self.intx:
            pin = self.functions[(slot, fn)].config[INTERRUPT_PIN]
            if pin:
                levels[pirq_of(slot, pin)] = True
        for n in range(4):
            self.router.set_pirq(n, levels[n])

    # -- Device ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """CONFIG_ADDRESS only: each function is a Device of its own and is reset by the
        machine (``reset_all`` does both)."""
        self.CONFIG_ADDRESS = 0

    def reset_all(self) -> None:
        self.reset()
        for _, f in sorted(self.functions.items()):
            f.reset()

    def summary(self) -> dict:
        a = self.CONFIG_ADDRESS
        d = {"CONFIG_ADDRESS": f"{a:08X}" + (f" (00:{(a >> 11) & 31:02x}.{(a >> 8) & 7} reg "
                                              f"{a & 0xFC:02X})" if a & 0x80000000 else ""),
             "functions": " ".join(f"{f.bdf}={f.get(0, 2):04X}:{f.get(2, 2):04X}"
                                   for _, f in sorted(self.functions.items())),
             "PIRQ": " ".join(f"{'ABCD'[n]}->" + ("off" if r is None else f"IRQ{r}") +
                              ("*" if self.router.pirq_level[n] else "")
                              for n, r in enumerate(self.router.route)),
             "config cycles": f"{self.config_reads} reads, {self.config_writes} writes"}
        return d

    def get_state(self) -> dict:
        """The bus's own state; each function saves its configuration space itself."""
        return {"version": self.STATE_VERSION, "CONFIG_ADDRESS": self.CONFIG_ADDRESS,
                "intx": [[s, f] for s, f in sorted(self.intx)],
                "router": self.router.get_state(),
                "counts": [self.config_reads, self.config_writes]}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.CONFIG_ADDRESS = st["CONFIG_ADDRESS"]
        self.intx = {(s, f): True for s, f in st["intx"]}
        self.router.set_state(st["router"])
        self.config_reads, self.config_writes = st["counts"]
