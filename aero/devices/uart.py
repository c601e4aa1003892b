"""National Semiconductor PC16550D / NS16550A UART (the PC's COM1-COM4).

Reference: PC16550D Universal Asynchronous Receiver/Transmitter with FIFOs data sheet (National
Semiconductor, 1995): Table II (register summary: RBR, THR, IER, IIR, FCR, LCR, MCR, LSR, MSR,
SCR, DLL, DLM; LCR bit 7 = DLAB selects the divisor latch at offsets 0/1), Table IV (interrupt
control: priority 1 receiver line status (IIR=06, reset by reading LSR), 2 received data
available (04, reset when the FIFO drops below the trigger level), 2 character time-out (0C, no
character removed from or put into the RCVR FIFO during the last 4 character times while at least
one character is in it; reset by reading RBR), 3 THR empty (02, reset by reading IIR when it is
the source, or writing THR), 4 modem status (00, reset by reading MSR)), section 8.4 (FCR: bit 0
FIFO enable, 1 RCVR FIFO reset, 2 XMIT FIFO reset, 3 DMA mode, 6-7 RCVR trigger 1/4/8/14 bytes;
IIR bits 6-7 set while FIFOs are enabled), 8.6 (MCR: DTR, RTS, OUT1, OUT2, LOOP; in loopback
the transmitter output is looped to the receiver and the modem control outputs to the modem
status inputs: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2), 8.7 (LSR: DR, OE, PE, FE, BI, THRE, TEMT,
error in RCVR FIFO) and 8.8 (MSR: DCTS, DDSR, TERI, DDCD, CTS, DSR, RI, DCD).

PC conventions: COM1 0x3F8/IRQ 4, COM2 0x2F8/IRQ 3, COM3 0x3E8/IRQ 4, COM4 0x2E8/IRQ 3; the
UART's INTR reaches the 8259A only while MCR.OUT2 is set (the OUT2 pin enables the IRQ driver on
PC boards; in loopback the pin is forced inactive, so no IRQ reaches the PIC then), and only the
lines' own level changes are driven, so two UARTs can share a line as long as one keeps OUT2
clear.  Clock: 1.8432 MHz, baud = 115200 / divisor.

Timing is virtual: a character occupies the line for (start + data + parity + stop) bits at the
programmed baud rate.  Writing THR moves the byte into the transmitter shift register at once if
it is idle (THRE goes back to 1, TEMT stays 0 until the character time has passed); the byte
reaches the host ``sink(byte)`` (or, in loopback, the receiver) when its character time ends.
Host input ``feed(bytes)`` arrives one byte per character time, and only while the receiver has
room (RBR, or the 16-byte RCVR FIFO): host input waits instead of overrunning, like QEMU's
flow-controlled character backends.  Loopback bytes can overrun (OE), as on the chip.  Not
modelled: parity/framing errors and break reception (bytes from the host are always clean), the
delayed THRE indication in FIFO mode, DMA mode signalling (TXRDY/RXRDY pins).
"""

from __future__ import annotations

from collections import deque

from .base import Device

# register offsets
RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7

# IER
ERBFI, ETBEI, ELSI, EDSSI = 0x01, 0x02, 0x04, 0x08
# IIR interrupt identification
IIR_NONE, IIR_RLS, IIR_RDA, IIR_CTI, IIR_THRE, IIR_MS = 0x01, 0x06, 0x04, 0x0C, 0x02, 0x00
IIR_FIFO = 0xC0
# LCR
LCR_PEN, LCR_BREAK, LCR_DLAB = 0x08, 0x40, 0x80
# MCR
DTR, RTS, OUT1, OUT2, LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
# LSR
DR, OE, PE, FE, BI, THRE, TEMT, RCVR_ERR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
# MSR
DCTS, DDSR, TERI, DDCD, CTS, DSR, RI, DCD = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

FIFO_SIZE = 16
TRIGGER = (1, 4, 8, 14)
XTAL = 1_843_200

COM_PORTS = {"COM1": (0x3F8, 4), "COM2": (0x2F8, 3), "COM3": (0x3E8, 4), "COM4": (0x2E8, 3)}


class UART16550A(Device):
    STATE_VERSION = 1
    POWER_ON_DIVISOR = 1       # the divisor latch is undefined at power-on; 115200 baud here

    def __init__(self, base: int, irq_line: int, irq=None, clock=None, sink=None,
                 name: str = "uart"):
        if clock is None:
            raise ValueError("the UART needs the machine clock for its character timing")
        self.base = base
        self.irq_line = irq_line
        self.irq = irq
        self.clock = clock
        self.sink = sink                  # callable(byte) receiving transmitted bytes
        self.name = name
        self.host_rx: deque[int] = deque()
        self.modem_in = CTS | DSR | DCD   # host-side modem status lines (a connected terminal)
        self.divisor = self.POWER_ON_DIVISOR
        self._tx_event = self._rx_event = self._to_event = None
        self.irq_level = False
        self.tx_count = self.rx_count = 0
        self._init_regs()

    @classmethod
    def com(cls, n: int, irq=None, clock=None, sink=None) -> "UART16550A":
        """COM1..COM4 at their PC addresses and IRQs."""
        base, line = COM_PORTS[f"COM{n}"]
        return cls(base, line, irq, clock, sink, name=f"COM{n}")

    def _init_regs(self) -> None:
        for ev in (self._tx_event, self._rx_event, self._to_event):
            if ev is not None:
                ev.cancel()
        self._tx_event = self._rx_event = self._to_event = None
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0                      # only FIFO enable, DMA mode and trigger bits kept
        self.rx: deque[int] = deque()
        self.tx: deque[int] = deque()
        self.tsr = None                   # byte in the transmitter shift register
        self.tx_end = 0                   # tick at which the TSR's character has been sent
        self.rx_at = None                 # tick at which the next host byte arrives
        self.rbr = 0                      # last byte read (RBR keeps it)
        self.lsr_err = 0                  # OE PE FE BI, cleared by reading LSR
        self.thre_ip = False              # THRE interrupt pending
        self.msr_in = self._modem_inputs()
        self.msr_delta = 0
        self.rx_activity = 0              # tick of the last character in or RBR read
        self.timeout_at = None

    def reset(self) -> None:
        """MR (master reset): registers to their reset values (divisor latch unaffected)."""
        self._init_regs()
        self._update()
        self._arm_rx()

    def register(self, iobus) -> None:
        iobus.register(self.base, 8, self, self.io_read, self.io_write)

    # -- derived values ------------------------------------------------------------------------
    @property
    def fifo_enabled(self) -> bool:
        return bool(self.fcr & 1)

    @property
    def trigger(self) -> int:
        return TRIGGER[self.fcr >> 6]

    @property
    def word_mask(self) -> int:
        return (1 << (5 + (self.lcr & 3))) - 1

    @property
    def baud(self) -> float:
        return XTAL / 16 / (self.divisor or 65536)

    def char_bits_x2(self) -> int:
        """Twice the bits in one character frame: start, data, parity, stop (1, 1.5 or 2)."""
        data = 5 + (self.lcr & 3)
        stop2 = 2 if not self.lcr & 4 else (3 if data == 5 else 4)
        return 2 * (1 + data + bool(self.lcr & LCR_PEN)) + stop2

    def char_ticks(self) -> int:
        ns = self.char_bits_x2() * (self.divisor or 65536) * 16 * 1_000_000_000 // (2 * XTAL)
        return self.clock.ticks_for_ns(ns)

    def _modem_inputs(self) -> int:
        if self.mcr & LOOP:
            m = self.mcr
            return ((m & RTS and CTS) | (m & DTR and DSR) | (m & OUT1 and RI)
                    | (m & OUT2 and DCD))
        return self.modem_in

    def lsr(self) -> int:
        v = self.lsr_err
        if self.rx:
            v |= DR
        if not self.tx:
            v |= THRE
            if self.tsr is None:
                v |= TEMT
        if self.fifo_enabled and self.lsr_err & (PE | FE | BI):
            v |= RCVR_ERR
        return v

    def _timeout(self) -> bool:
        return (self.fifo_enabled and bool(self.rx) and self.timeout_at is not None
                and self.clock.now() >= self.timeout_at)

    def interrupt_id(self) -> int:
        """Table IV priority order; IIR_NONE when nothing is pending."""
        ier = self.ier
        if ier & ELSI and self.lsr_err & (OE | PE | FE | BI):
            return IIR_RLS
        if ier & ERBFI:
            if self.rx and (not self.fifo_enabled or len(self.rx) >= self.trigger):
                return IIR_RDA
            if self._timeout():
                return IIR_CTI
        if ier & ETBEI and self.thre_ip:
            return IIR_THRE
        if ier & EDSSI and self.msr_delta:
            return IIR_MS
        return IIR_NONE

    def _update(self) -> None:
        level = (self.interrupt_id() != IIR_NONE and bool(self.mcr & OUT2)
                 and not self.mcr & LOOP)
        if level != self.irq_level:
            self.irq_level = level
            if self.irq is not None:
                self.irq.set(self.irq_line, level)

    # -- port I/O ------------------------------------------------------------------------------
    def io_read(self, port: int, size: int) -> int:
        r = (port - self.base) & 7
        dlab = self.lcr & LCR_DLAB
        if r == RBR:
            if dlab:
                return self.divisor & 0xFF
            return self._read_rbr()
        if r == IER:
            return (self.divisor >> 8) & 0xFF if dlab else self.ier
        if r == IIR:
            iid = self.interrupt_id()
            if iid == IIR_THRE:
                self.thre_ip = False
                self._update()
            return iid | (IIR_FIFO if self.fifo_enabled else 0)
        if r == LCR:
            return self.lcr
        if r == MCR:
            return self.mcr
        if r == LSR:
            v = self.lsr()
            if self.lsr_err:
                self.lsr_err = 0
                self._update()
            return v
        if r == MSR:
            v = self.msr_in | self.msr_delta
            if self.msr_delta:
                self.msr_delta = 0
                self._update()
            return v
        return self.scr

    def io_write(self, port: int, size: int, value: int) -> None:
        r = (port - self.base) & 7
        v = value & 0xFF
        dlab = self.lcr & LCR_DLAB
        if r == THR:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | v
            else:
                self._write_thr(v)
        elif r == IER:
            if dlab:
                self.divisor = (self.divisor & 0xFF) | (v << 8)
            else:
                if v & ETBEI and not self.ier & ETBEI and not self.tx:
                    self.thre_ip = True     # enabling ETBEI with THR empty interrupts at once
                self.ier = v & 0x0F
                self._update()
        elif r == FCR:
            self._write_fcr(v)
        elif r == LCR:
            self.lcr = v
        elif r == MCR:
            was_loop = self.mcr & LOOP
            self.mcr = v & 0x1F
            self._set_msr_inputs(self._modem_inputs())
            self._update()
            if was_loop and not self.mcr & LOOP:
                self._arm_rx()
        elif r == SCR:
            self.scr = v
        # LSR and MSR writes: factory test only, ignored

    # -- receiver ------------------------------------------------------------------------------
    def _read_rbr(self) -> int:
        if self.rx:
            self.rbr = self.rx.popleft()
        self.rx_activity = self.clock.now()
        self._arm_timeout()
        self._update()
        self._arm_rx()
        return self.rbr

    def _room(self) -> bool:
        return len(self.rx) < (FIFO_SIZE if self.fifo_enabled else 1)

    def _receive(self, b: int, when: int) -> None:
        """A character has been assembled in the receiver shift register."""
        b &= self.word_mask
        self.rx_count += 1
        if self.fifo_enabled:
            if len(self.rx) < FIFO_SIZE:
                self.rx.append(b)
            else:
                self.lsr_err |= OE          # the shift register's character is lost
        else:
            if self.rx:
                self.lsr_err |= OE          # RBR overwritten
                self.rx[0] = b
            else:
                self.rx.append(b)
        self.rx_activity = when
        self._arm_timeout()
        self._update()

    def _arm_timeout(self) -> None:
        if self._to_event is not None:
            self._to_event.cancel()
            self._to_event = None
        if self.fifo_enabled and self.rx:
            self.timeout_at = self.rx_activity + 4 * self.char_ticks()
            self._to_event = self.clock.schedule(self.timeout_at, self._on_timeout,
                                                 f"{self.name}-timeout")
        else:
            self.timeout_at = None

    def _on_timeout(self) -> None:
        self._to_event = None
        self._update()

    def feed(self, data) -> None:
        """Host input: bytes for the receive side (from the machine's input queue)."""
        if isinstance(data, int):
            data = bytes([data])
        self.host_rx.extend(data)
        self._arm_rx()

    def _arm_rx(self, start: int | None = None) -> None:
        if (self._rx_event is None and self.host_rx and not self.mcr & LOOP and self._room()):
            self.rx_at = (self.clock.now() if start is None else start) + self.char_ticks()
            self._rx_event = self.clock.schedule(self.rx_at, self._on_rx, f"{self.name}-rx")

    def _on_rx(self) -> None:
        self._rx_event = None
        when = self.rx_at
        self.rx_at = None
        if self.host_rx and not self.mcr & LOOP and self._room():
            self._receive(self.host_rx.popleft(), when)
            self._arm_rx(when)                  # back-to-back characters
        else:
            self._arm_rx()

    # -- transmitter ---------------------------------------------------------------------------
    def _write_thr(self, v: int) -> None:
        # The host sink gets every byte the guest writes, when it writes it (QEMU's convention):
        # a guest that overruns THR loses nothing on the host side, while what the guest sees
        # (THRE/TEMT, the FIFO, loopback) keeps the chip's timing.
        # Like QEMU's backends, the host gets all 8 bits whatever the programmed word length
        # (firmware often never sets LCR, leaving the 5-bit reset value).
        if self.sink is not None and not self.mcr & LOOP:
            self.sink(v & 0xFF)
        self.thre_ip = False
        if self.fifo_enabled:
            if len(self.tx) < FIFO_SIZE:
                self.tx.append(v)
        elif self.tx:
            self.tx[0] = v                  # THR overwritten before it reached the TSR
        else:
            self.tx.append(v)
        if self.tsr is None:
            self._start_tx(self.clock.now())
        self._update()

    def _start_tx(self, start: int) -> None:
        self.tsr = self.tx.popleft()
        self.tx_end = start + self.char_ticks()
        self._tx_event = self.clock.schedule(self.tx_end, self._on_tx_done, f"{self.name}-tx")
        if not self.tx:
            self.thre_ip = True

    def _on_tx_done(self) -> None:
        self._tx_event = None
        b = self.tsr & self.word_mask
        self.tsr = None
        self.tx_count += 1
        if self.mcr & LOOP:
            self._receive(b, self.tx_end)
        if self.tx:
            self._start_tx(self.tx_end)
        self._update()

    def _write_fcr(self, v: int) -> None:
        if (v ^ self.fcr) & 1:                  # changing FCR0 clears both FIFOs
            if self.tx:
                self.thre_ip = True
            self.rx.clear()
            self.tx.clear()
        if not v & 1:
            self.fcr = 0
        else:
            if v & 0x02:
                self.rx.clear()
            if v & 0x04:
                if self.tx:
                    self.thre_ip = True
                self.tx.clear()
            self.fcr = v & 0xC9
        self._arm_timeout()
        self._update()
        self._arm_rx()

    # -- modem lines -----------------------------------------------------------------------------
    def _set_msr_inputs(self, new: int) -> None:
        old = self.msr_in
        ch = old ^ new
        d = 0
        if ch & CTS:
            d |= DCTS
        if ch & DSR:
            d |= DDSR
        if old & RI and not new & RI:
            d |= TERI
        if ch & DCD:
            d |= DDCD
        self.msr_in = new
        self.msr_delta |= d

    def set_modem_lines(self, cts=None, dsr=None, ri=None, dcd=None) -> None:
        """Host side of the modem status lines (effective when not in loopback)."""
        m = self.modem_in
        for flag, bit in ((cts, CTS), (dsr, DSR), (ri, RI), (dcd, DCD)):
            if flag is not None:
                m = (m | bit) if flag else (m & ~bit)
        self.modem_in = m
        if not self.mcr & LOOP:
            self._set_msr_inputs(m)
            self._update()

    # -- inspection and snapshots ------------------------------------------------------------
    def summary(self) -> dict:
        data = 5 + (self.lcr & 3)
        par = "N" if not self.lcr & LCR_PEN else ("E" if self.lcr & 0x10 else "O")
        stop = "1" if not self.lcr & 4 else ("1.5" if data == 5 else "2")
        iid = self.interrupt_id()
        return {
            "port": f"{self.base:#x} IRQ {self.irq_line}",
            "line": f"{self.baud:.0f} {data}{par}{stop}" + (" BREAK" if self.lcr & LCR_BREAK
                                                           else ""),
            "IER": f"{self.ier:02X}", "IIR": f"{iid | (IIR_FIFO if self.fifo_enabled else 0):02X}",
            "LCR": f"{self.lcr:02X}", "MCR": f"{self.mcr:02X}", "LSR": f"{self.lsr():02X}",
            "MSR": f"{self.msr_in | self.msr_delta:02X}", "SCR": f"{self.scr:02X}",
            "FIFO": f"on, trigger {self.trigger}" if self.fifo_enabled else "off",
            "RX": len(self.rx), "TX": len(self.tx) + (self.tsr is not None),
            "host input waiting": len(self.host_rx), "IRQ": self.irq_level,
            "sent": self.tx_count, "received": self.rx_count,
        }

    _FIELDS = ("ier", "lcr", "mcr", "scr", "fcr", "tsr", "tx_end", "rx_at", "rbr", "lsr_err",
               "thre_ip", "msr_in", "msr_delta", "rx_activity", "timeout_at", "divisor",
               "modem_in", "irq_level", "tx_count", "rx_count")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._FIELDS}
        st.update(version=self.STATE_VERSION, rx=list(self.rx), tx=list(self.tx),
                  host_rx=list(self.host_rx))
        return st

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self._init_regs()
        for k in self._FIELDS:
            setattr(self, k, st[k])
        self.rx = deque(st["rx"])
        self.tx = deque(st["tx"])
        self.host_rx = deque(st["host_rx"])
        if self.tsr is not None:
            self._tx_event = self.clock.schedule(self.tx_end, self._on_tx_done, f"{self.name}-tx")
        if self.rx_at is not None:
            self._rx_event = self.clock.schedule(self.rx_at, self._on_rx, f"{self.name}-rx")
        if self.timeout_at is not None:
            self._to_event = self.clock.schedule(self.timeout_at, self._on_timeout,
                                                 f"{self.name}-timeout")
