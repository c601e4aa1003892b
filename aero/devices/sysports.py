"""Small PC system ports, one Device class each.

* ``Port92`` - System Control Port A (IBM PS/2 Hardware Interface Technical Reference, "System
  Control Port A, hex 0092"; Intel 82371 PIIX "Port 92h"): bit 0 ALT_RESET / fast reset (a 0->1
  transition resets the processor), bit 1 ALT_A20_GATE; reads back what was written (bit 1 from
  the live A20 state when an ``a20_state`` getter is given).
* ``PostCode`` - port 0x80, the manufacturing-test (POST code) port: keeps the last value and a
  history; reads return the last value written (the page-register latch behind it on ATs).
* ``DebugCon`` - port 0xE9 (Bochs/QEMU debug console): written bytes go to ``sink(byte)``; reads
  return 0xE9, the value firmware probes for ("is the debug port there?").
* ``FirmwareLog`` - the same at port 0x402, QEMU's default port for SeaBIOS's debug output.
* ``DebugExit`` - QEMU's isa-debug-exit (iobase 0x501, iosize 2): writing v ends the run with exit
  status (v << 1) | 1 (``exit_cb(status)``).
* ``ResetControl`` - port 0xCF9, the PIIX3 Reset Control register (82371SB data sheet, RC): bit 1
  SRST selects a hard (1) or soft (0) reset, bit 2 RCPU starts it; bit 3 FULL_RST (PIIX4/ICH) also
  asks for a hard reset.  ``reset_cb(hard)``.  Register only the byte port 0xCF9: the PCI
  configuration address port 0xCF8 is a dword port owned by the host bridge.
* ``CoprocessorError`` - the AT's x87 error logic (IBM PC AT Technical Reference, "Math
  Coprocessor"; Intel SDM Vol. 1 D.2.1, the "PC-style" FERR#/IGNNE# circuit; PIIX3 "FERR#"):
  the CPU's FERR# (``cpu.on_ferr``: an unmasked x87 exception met by a waiting instruction with
  CR0.NE = 0) latches IRQ13; a write to port 0xF0 clears the latch and asserts IGNNE#
  (``cpu.ignne``) until FERR# goes inactive (the CPU clears it when ES clears).
"""

from __future__ import annotations

from .base import Device


class Port92(Device):
    name = "port92"
    PORT = 0x92

    def __init__(self, a20_cb=None, reset_cb=None, a20_state=None):
        self.a20_cb = a20_cb            # callable(enabled: bool)
        self.reset_cb = reset_cb        # callable(): fast (CPU) reset
        self.a20_state = a20_state      # optional callable() -> bool, the live A20 gate
        self.value = 0
        self.resets = 0

    def reset(self) -> None:
        self.value = 0

    def register(self, iobus) -> None:
        iobus.register(self.PORT, 1, self, self.io_read, self.io_write)

    def io_read(self, port: int, size: int) -> int:
        v = self.value & ~0x02
        a20 = self.a20_state() if self.a20_state is not None else self.value & 0x02
        return v | (0x02 if a20 else 0)

    def io_write(self, port: int, size: int, value: int) -> None:
        v = value & 0xFF
        old = self.value
        self.value = v
        if self.a20_cb is not None:
            self.a20_cb(bool(v & 0x02))
        if v & 0x01 and not old & 0x01:
            self.resets += 1
            if self.reset_cb is not None:
                self.reset_cb()

    def summary(self) -> dict:
        return {"value": f"{self.value:02X}", "A20": bool(self.io_read(self.PORT, 1) & 2),
                "fast resets": self.resets}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "value": self.value, "resets": self.resets}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.value = st["value"]
        self.resets = st["resets"]


class PostCode(Device):
    name = "post"
    PORT = 0x80
    HISTORY = 4096

    def __init__(self, callback=None, history: int = HISTORY):
        self.callback = callback        # callable(code) on every write
        self.max_history = history
        self.last = None
        self.history: list[int] = []
        self.writes = 0

    def reset(self) -> None:
        pass                            # a latch, and the history survives resets on purpose

    def register(self, iobus) -> None:
        iobus.register(self.PORT, 1, self, self.io_read, self.io_write)

    def io_read(self, port: int, size: int) -> int:
        return 0xFF if self.last is None else self.last

    def io_write(self, port: int, size: int, value: int) -> None:
        v = value & 0xFF
        self.last = v
        self.writes += 1
        self.history.append(v)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        if self.callback is not None:
            self.callback(v)

    def summary(self) -> dict:
        return {"last": "-" if self.last is None else f"{self.last:02X}", "writes": self.writes,
                "recent": " ".join(f"{v:02X}" for v in self.history[-16:]) or "-"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "last": self.last, "history": list(self.history),
                "writes": self.writes}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.last = st["last"]
        self.history = list(st["history"])
        self.writes = st["writes"]


class DebugCon(Device):
    name = "debugcon"
    PORT = 0xE9
    READBACK = 0xE9
    TAIL = 256

    def __init__(self, sink=None, port: int | None = None):
        self.sink = sink                # callable(byte)
        self.port = self.PORT if port is None else port
        self.count = 0
        self.tail = bytearray()         # the last bytes written, for the debugger pane

    def register(self, iobus) -> None:
        iobus.register(self.port, 1, self, self.io_read, self.io_write)

    def io_read(self, port: int, size: int) -> int:
        return self.READBACK

    def io_write(self, port: int, size: int, value: int) -> None:
        b = value & 0xFF
        self.count += 1
        self.tail.append(b)
        if len(self.tail) > self.TAIL:
            del self.tail[: len(self.tail) - self.TAIL]
        if self.sink is not None:
            self.sink(b)

    def summary(self) -> dict:
        text = self.tail.decode("latin-1")
        last = text.rsplit("\n", 2)[-2:] if "\n" in text else [text]
        return {"port": f"{self.port:#x}", "bytes": self.count,
                "last line": " | ".join(s for s in last if s)[-80:] or "-"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "count": self.count, "tail": self.tail.hex()}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.count = st["count"]
        self.tail = bytearray(bytes.fromhex(st["tail"]))


class FirmwareLog(DebugCon):
    """SeaBIOS's debug output port under QEMU (it probes for the 0xE9 read-back first)."""
    name = "fwlog"
    PORT = 0x402


class DebugExit(Device):
    name = "isa-debug-exit"
    PORT = 0x501
    SIZE = 2

    def __init__(self, exit_cb=None, port: int | None = None):
        self.exit_cb = exit_cb          # callable(status)
        self.port = self.PORT if port is None else port
        self.exit_status = None

    def register(self, iobus) -> None:
        iobus.register(self.port, self.SIZE, self, None, self.io_write, widths=(1, 2, 4))

    def io_write(self, port: int, size: int, value: int) -> None:
        v = value & ((1 << (8 * size)) - 1)
        self.exit_status = (v << 1) | 1
        if self.exit_cb is not None:
            self.exit_cb(self.exit_status)

    def summary(self) -> dict:
        return {"port": f"{self.port:#x}", "exit status": self.exit_status
                if self.exit_status is not None else "-"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "exit_status": self.exit_status}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.exit_status = st["exit_status"]


class ResetControl(Device):
    name = "rcr"
    PORT = 0xCF9
    SRST, RCPU, FULL_RST = 0x02, 0x04, 0x08

    def __init__(self, reset_cb=None):
        self.reset_cb = reset_cb        # callable(hard: bool)
        self.value = 0
        self.resets = 0
        self.last_kind = None

    def reset(self) -> None:
        self.value = 0

    def register(self, iobus) -> None:
        iobus.register(self.PORT, 1, self, self.io_read, self.io_write)

    def io_read(self, port: int, size: int) -> int:
        return self.value

    def io_write(self, port: int, size: int, value: int) -> None:
        v = value & 0xFF
        self.value = v & (self.SRST | self.FULL_RST)
        if v & self.RCPU:
            hard = bool(v & (self.SRST | self.FULL_RST))
            self.resets += 1
            self.last_kind = "hard" if hard else "soft"
            if self.reset_cb is not None:
                self.reset_cb(hard)

    def summary(self) -> dict:
        return {"RC": f"{self.value:02X}", "resets": self.resets,
                "last": self.last_kind or "-"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "value": self.value, "resets": self.resets,
                "last_kind": self.last_kind}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.value = st["value"]
        self.resets = st["resets"]
        self.last_kind = st["last_kind"]


class CoprocessorError(Device):
    name = "fpu-error"
    PORT = 0xF0
    IRQ = 13

    def __init__(self, irq, cpu):
        self.irq = irq                  # IRQLines
        self.cpu = cpu
        self.latched = False
        self.count = 0                  # FERR# assertions seen
        cpu.on_ferr = self.ferr

    def reset(self) -> None:
        if self.latched:
            self.irq.set(self.IRQ, False)
        self.latched = False

    def register(self, iobus) -> None:
        iobus.register(self.PORT, 1, self, None, self.io_write)

    def ferr(self) -> None:
        """FERR# asserted: IRQ13 (level, held until port F0h is written)."""
        self.count += 1
        if not self.latched:
            self.latched = True
            self.irq.set(self.IRQ, True)

    def io_write(self, port: int, size: int, value: int) -> None:
        self.cpu.ignne = bool(self.cpu.fpu.pending_unmasked())
        if self.latched:
            self.latched = False
            self.irq.set(self.IRQ, False)

    def summary(self) -> dict:
        return {"IRQ13 latched": self.latched, "IGNNE#": self.cpu.ignne,
                "FERR# assertions": self.count}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "latched": self.latched, "count": self.count}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.latched, self.count = st["latched"], st["count"]
