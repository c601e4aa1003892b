"""Intel 8254 Programmable Interval Timer at 40h-43h, and the PC's system control port B (61h).

References: Intel 8254 datasheet (order no. 231164): "Control Word Format", "Write Operations",
"Read Operations" (Counter Latch Command, Read-Back Command, Status Byte, NULL COUNT),
"Mode Definitions" (modes 0-5, incl. the two-byte write rules of modes 0 and 4, mode 2/3 count
changes taking effect at the end of the current period / half-cycle, odd counts in mode 3),
"Operation Common to All Modes" (loading on the next CLK after the write, GATE sampling,
counter wrap to FFFFh / 9999 BCD) and Figure "Gate Pin Operations Summary".  IBM PC/AT Technical
Reference, "System Timers" and "Port 61h" (system control port B).

Input clock: 1.193182 MHz.  The PIT CLK edge number at virtual tick ``t`` is
``t * 1193182 // ips``; a channel keeps the edge at which its counting element (CE) was last
loaded and the count it was loaded with, and derives its value and OUT lazily from the current
edge (``Channel.value_out``).  Nothing is polled: the only clock event is the next rising edge of
channel 0's OUT (IRQ 0), at most one pending at a time, i.e. one event per period in modes 2
and 3 (18.2 events per virtual second at the BIOS rate, 1000 at a 1 kHz tick).

Timing model (datasheet "Mode Definitions"): after a complete count is written, the CR is
transferred to the CE on the next CLK edge (k = 0) and counting starts on the following edges,
so in mode 0 OUT goes high N+1 CLKs after the write; in mode 2 OUT is low for one CLK when the CE
reaches 1; in mode 3 an even count N gives N/2 CLKs high, N/2 low, counting down by two; an odd
count (N+1)/2 high, (N-1)/2 low, the CE going N-1, N-3, ..., 0 while high and N-1, ..., 2 while
low; modes 4 and 5
pulse OUT low for one CLK when the CE reaches 0.  GATE low suspends counting in modes 0, 2, 3, 4
and forces OUT high in modes 2 and 3; a GATE rising edge triggers modes 1, 2, 3, 5 (reload on the
next CLK).  A count of 0 means 65536 (10000 in BCD).  Modes 6 and 7 are modes 2 and 3; the
status byte reports the mode bits as written.

PC wiring: the gates of channels 0 and 1 are tied high; channel 2's gate is port 61h bit 0
(``PortB``); channel 0 OUT drives IRQ 0 through IRQLines (a rising edge each period); channel 2
OUT reads back at port 61h bit 5 and, gated by bit 1, drives the speaker.  Reading port 43h
(write-only, 3-state) returns FFh.

Power-on state: "When power is first applied, the 8254 is in an undefined state. The Mode, count
value, and output of all Counters are undefined" (datasheet, "Programming the 8254"); a counter
starts counting only once a count has been written after a control word ("Write Operations").
Aero powers on (and comes out of a hardware reset) with every counter idle: no count loaded, not
counting, OUT high, reading as mode 3 with LSB/MSB access, CE = 0.  Channel 0 therefore makes no
IRQ 0 edge until the guest programs it, and channel 2's GATE does not start it either.  (QEMU
starts all three counters in mode 3 with count 65536, channel 0 ticking at 18.2 Hz from reset;
Bochs starts them in mode 4 with OUT high, which likewise never pulses until written.)  Every
firmware Aero boots (its own BIOS, SeaBIOS, the Bochs BIOS) programs channel 0 during POST.
"""

from __future__ import annotations

from .base import Device

PIT_HZ = 1_193_182
INF = 1 << 62                         # "until a gate trigger loads the CR"


def to_bcd(v: int) -> int:
    v %= 10000
    return (v // 1000) << 12 | (v // 100 % 10) << 8 | (v // 10 % 10) << 4 | v % 10


def from_bcd(v: int) -> int:
    return ((v >> 12) & 15) * 1000 + ((v >> 8) & 15) * 100 + ((v >> 4) & 15) * 10 + (v & 15)


def mode_value_out(mode: int, n: int, k: int, modulus: int):
    """CE value (as an integer, not yet BCD-encoded) and OUT, ``k`` >= 0 CLK edges after the CE
    was loaded with the count ``n`` (1..modulus)."""
    if mode == 0 or mode == 1:
        return (n - k) % modulus, k >= n
    if mode == 2:
        j = k % n
        return n - j, j != n - 1
    if mode == 3:
        j = k % n
        if n & 1 == 0:
            h = n >> 1
            return n - 2 * (j % h), j < h
        # odd (8254 datasheet, mode 3 "Odd counts"): N-1 is loaded and counts down by two; one
        # CLK after it expires OUT goes low and N-1 is reloaded; when that expires OUT goes high
        # (the 8253's "decrement by one / by three" description differs in the CE values only)
        hi = (n + 1) >> 1
        if j < hi:
            return n - 1 - 2 * j, True
        return n - 1 - 2 * (j - hi), False
    # modes 4 and 5
    return (n - k) % modulus, k != n


def first_half(n: int) -> int:
    """Length in CLKs of mode 3's high half-cycle."""
    return (n + 1) >> 1


class Channel:
    FIELDS = ("mode", "mode_bits", "rw", "bcd", "CR", "cr_valid", "write_msb", "cr_lsb",
              "read_msb", "OL", "status_latch", "gate", "running", "base", "n", "phase0",
              "frozen", "frozen_k", "pre_value", "pre_out", "pending_edge", "pending_n",
              "pending_phase0", "null_until")

    def __init__(self, index: int):
        self.index = index
        self.power_on(0)

    def power_on(self, edge: int) -> None:
        self.mode = 3
        self.mode_bits = 3
        self.rw = 3
        self.bcd = False
        self.CR = 0
        self.cr_valid = False            # no count written since power-on: idle
        self.write_msb = False           # rw=3: the next write is the MSB
        self.cr_lsb = 0
        self.read_msb = False            # rw=3: the next unlatched read is the MSB
        self.OL = []                     # latched count bytes still to be read
        self.status_latch = None         # latched status byte, or None
        self.gate = self.index != 2
        self.running = False             # undefined until programmed: idle, OUT high
        self.base = edge                 # edge at which the CE was loaded with n (k = 0)
        self.n = 65536
        self.phase0 = 0                  # mode 3: segment starts this many CLKs into a period
        self.frozen = False              # counting suspended by GATE low
        self.frozen_k = 0
        self.pre_value = 0               # CE value and OUT before the pending load / if idle
        self.pre_out = True
        self.pending_edge = None         # modes 2/3: a new count loaded at this edge
        self.pending_n = 0
        self.pending_phase0 = 0
        self.null_until = None           # NULL COUNT is 1 while the edge is < this

    # -- derived state -------------------------------------------------------------------------
    @property
    def modulus(self) -> int:
        return 10000 if self.bcd else 65536

    def count_of_cr(self) -> int:
        v = from_bcd(self.CR) if self.bcd else self.CR
        return v or self.modulus

    def settle(self, e: int) -> None:
        """Apply a deferred mode 2/3 reload whose edge has passed."""
        pe = self.pending_edge
        if pe is not None and e >= pe and self.running and not self.frozen:
            self.base = pe
            self.n = self.pending_n
            self.phase0 = self.pending_phase0
            self.pending_edge = None

    def value_out(self, e: int):
        """(CE value as an integer, OUT) at edge e (call settle(e) first)."""
        if not self.running:
            return self.pre_value, self.pre_out
        if self.frozen:
            k = self.frozen_k
            if k < 0 and e >= self.base:
                k = 0                                # loaded while GATE is low, held
            if k < 0:
                v, out = self.pre_value, self.pre_out
            else:
                v, out = mode_value_out(self.mode, self.n, k + self.phase0, self.modulus)
            if self.mode in (2, 3):
                out = True                           # GATE low forces OUT high
            return v, out
        k = e - self.base
        if k < 0:
            return self.pre_value, self.pre_out
        return mode_value_out(self.mode, self.n, k + self.phase0, self.modulus)

    def null_count(self, e: int) -> bool:
        return self.null_until is not None and e < self.null_until

    def _seg_next_rise(self, e: int, base: int, n: int, phase0: int):
        mode = self.mode
        k = e - base
        if mode == 0 or mode == 1:
            return base + n if k < n else None
        if mode == 4 or mode == 5:
            return base + n + 1 if k <= n else None
        if k < 0:
            kk = phase0
        else:
            kk = k + phase0
        return base - phase0 + n * (kk // n + 1)

    def next_rise(self, e: int):
        """The first edge > e at which OUT goes from low to high, or None."""
        if not self.running or self.frozen:
            return None
        r = self._seg_next_rise(e, self.base, self.n, self.phase0)
        pe = self.pending_edge
        if pe is not None and (r is None or r > pe):
            _, out_before = mode_value_out(self.mode, self.n, pe - 1 - self.base + self.phase0,
                                           self.modulus)
            _, out_after = mode_value_out(self.mode, self.pending_n, self.pending_phase0,
                                          self.modulus)
            if out_after and not out_before:
                return pe
            return self._seg_next_rise(pe, pe, self.pending_n, self.pending_phase0)
        return r

    # -- programming ---------------------------------------------------------------------------
    def encoded(self, v: int) -> int:
        return to_bcd(v) if self.bcd else v & 0xFFFF

    def status(self, e: int) -> int:
        _, out = self.value_out(e)
        return (out << 7 | self.null_count(e) << 6 | self.rw << 4 | self.mode_bits << 1
                | self.bcd)

    def latch_count(self, e: int) -> None:
        if self.OL:
            return                                   # already latched: ignored
        v = self.encoded(self.value_out(e)[0])
        if self.rw == 1:
            self.OL = [v & 0xFF]
        elif self.rw == 2:
            self.OL = [v >> 8]
        else:
            self.OL = [v & 0xFF, v >> 8]

    def latch_status(self, e: int) -> None:
        if self.status_latch is None:
            self.status_latch = self.status(e)

    def control(self, e: int, value: int) -> None:
        v, out = self.value_out(e)
        self.mode_bits = (value >> 1) & 7
        self.mode = self.mode_bits if self.mode_bits < 6 else self.mode_bits - 4
        self.rw = (value >> 4) & 3
        self.bcd = bool(value & 1)
        self.write_msb = False
        self.read_msb = False
        self.OL = []
        self.status_latch = None
        self.cr_valid = False
        self.running = False
        self.frozen = False
        self.pending_edge = None
        self.phase0 = 0
        self.pre_value = v                           # the CE is not touched
        self.pre_out = self.mode != 0                # OUT: low in mode 0, high otherwise
        self.null_until = INF

    def write(self, e: int, value: int) -> None:
        rw = self.rw
        if rw == 1:
            self.CR = value
        elif rw == 2:
            self.CR = value << 8
        elif not self.write_msb:
            self.cr_lsb = value
            self.write_msb = True
            if self.mode == 0:
                # mode 0: writing the first byte disables counting, OUT low at once
                v, _ = self.value_out(e)
                self.running = False
                self.frozen = False
                self.pre_value = v
                self.pre_out = False
            return
        else:
            self.CR = self.cr_lsb | value << 8
            self.write_msb = False
        self._count_written(e)

    def _start(self, e: int, keep_out: bool) -> None:
        """Load the CR into the CE on the next CLK edge."""
        v, out = self.value_out(e)
        self.pre_value = v
        if keep_out:
            self.pre_out = out
        self.running = True
        self.frozen = False
        self.base = e + 1
        self.n = self.count_of_cr()
        self.phase0 = 0
        self.pending_edge = None
        if self.null_until is not None:
            self.null_until = min(self.null_until, e + 1)

    def _count_written(self, e: int) -> None:
        self.cr_valid = True
        self.null_until = INF
        mode = self.mode
        if mode == 0 or mode == 4:
            self._start(e, keep_out=True)
            if mode == 0:
                self.pre_out = False
            if not self.gate:
                self.frozen = True
                self.frozen_k = -1
        elif mode == 2 or mode == 3:
            if not self.running:
                if self.gate:
                    self._start(e, keep_out=False)
                    self.pre_out = True
            elif self.frozen:
                pass                                 # loaded by the next GATE trigger
            elif self.base > e:                      # not yet loaded: replace
                self.n = self.count_of_cr()
                self.null_until = self.base
            else:
                n = self.n
                kk = e - self.base + self.phase0
                j = kk % n
                period_start = self.base - self.phase0 + (kk - j)
                new_n = self.count_of_cr()
                if mode == 2:
                    self.pending_edge = period_start + n
                    self.pending_phase0 = 0
                else:
                    fh = first_half(n)
                    if j < fh:                       # end of the high half-cycle
                        self.pending_edge = period_start + fh
                        self.pending_phase0 = first_half(new_n)
                    else:
                        self.pending_edge = period_start + n
                        self.pending_phase0 = 0
                self.pending_n = new_n
                self.null_until = self.pending_edge
        # modes 1 and 5: the CR waits for a GATE trigger

    def set_gate(self, e: int, level: bool) -> None:
        if level == self.gate:
            return
        self.gate = level
        mode = self.mode
        if mode == 0 or mode == 4:
            if not self.running:
                return
            if not level:
                self.frozen_k = e - self.base
                self.frozen = True
            elif self.frozen:
                k = self.frozen_k
                if k < 0 and e >= self.base:
                    k = 0
                self.base = e - k
                self.frozen = False
        elif mode == 2 or mode == 3:
            if not level:
                if self.running and not self.frozen:
                    self.frozen_k = e - self.base
                    self.frozen = True
                    if self.pending_edge is not None:
                        self.pending_edge = None
                        self.null_until = INF
            elif self.cr_valid:
                self._start(e, keep_out=False)
                self.pre_out = True
        elif level and self.cr_valid:                # modes 1, 5: rising edge triggers
            self._start(e, keep_out=True)

    def state(self) -> dict:
        d = {f: getattr(self, f) for f in self.FIELDS}
        d["OL"] = list(self.OL)
        return d

    def load(self, d: dict) -> None:
        for f in self.FIELDS:
            setattr(self, f, d[f])
        self.OL = list(d["OL"])


class PIT(Device):
    name = "pit"
    STATE_VERSION = 1

    def __init__(self, iobus, irq, clock):
        self.irq = irq
        self.clock = clock
        self.channels = [Channel(i) for i in range(3)]
        self._event = None
        self._rise = None               # the edge of channel 0's scheduled OUT rise
        self.irq0_edges = 0             # rising edges delivered to IRQ 0 (for the debugger)
        if iobus is not None:
            self.register(iobus)
        self.reset()

    def register(self, iobus) -> None:
        iobus.register(0x40, 4, self, self.io_read, self.io_write)

    # -- time ----------------------------------------------------------------------------------
    def edge(self) -> int:
        """The number of PIT CLK edges since virtual time 0."""
        return self.clock.now() * PIT_HZ // self.clock.ips

    def tick_of_edge(self, e: int) -> int:
        return -(-e * self.clock.ips // PIT_HZ)

    # -- IRQ 0 ---------------------------------------------------------------------------------
    def _peek(self) -> int:
        """The current edge with all channels settled, without touching IRQ 0 (for the
        debugger and snapshots: looking must not change what the guest sees)."""
        e = self.edge()
        for ch in self.channels:
            ch.settle(e)
        return e

    def _sync(self) -> int:
        """Bring channel 0's IRQ line up to now (delivering a due rising edge); returns the
        current edge with all channels settled."""
        e = self.edge()
        for ch in self.channels:
            ch.settle(e)
        if self._rise is not None and self._rise <= e:
            self._rise = None
            self._deliver_rise()
            if self.irq is not None:
                self.irq.set(0, self.channels[0].value_out(e)[1])
            self._reschedule(e)
        elif self.irq is not None:
            # mirror OUT; a rise seen here that no event predicted still makes an edge
            out = self.channels[0].value_out(e)[1]
            if out and not self.irq.level[0]:
                self.irq0_edges += 1
            self.irq.set(0, out)
        return e

    def _deliver_rise(self) -> None:
        self.irq0_edges += 1
        if self.irq is not None:
            self.irq.set(0, False)
            self.irq.set(0, True)

    def _after_change(self, e: int) -> None:
        """Channel 0's OUT may have changed at edge e: update the line and the event."""
        out = self.channels[0].value_out(e)[1]
        if self.irq is not None:
            if out and not self.irq.level[0]:
                self.irq0_edges += 1
            self.irq.set(0, out)
        self._reschedule(e)

    def _reschedule(self, e: int) -> None:
        r = self.channels[0].next_rise(e)
        if r == self._rise and (r is None or self._event is not None):
            return
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._rise = r
        if r is not None and self.clock is not None:
            self._event = self.clock.schedule(self.tick_of_edge(r), self._on_event, "pit.irq0")

    def _on_event(self) -> None:
        self._event = None
        self._reschedule(self._sync())

    # -- gate / outputs used by PortB ----------------------------------------------------------
    def set_gate(self, channel: int, level: bool) -> None:
        e = self._sync()
        self.channels[channel].set_gate(e, bool(level))
        self._after_change(e)

    def out(self, channel: int) -> bool:
        e = self._peek()
        return bool(self.channels[channel].value_out(e)[1])

    def counter_value(self, channel: int) -> int:
        """The CE value now, as the counter would read (BCD-encoded in BCD mode)."""
        e = self._peek()
        ch = self.channels[channel]
        return ch.encoded(ch.value_out(e)[0])

    def frequency(self, channel: int):
        """The output frequency of a channel in mode 2 or 3 (Hz), or None."""
        ch = self.channels[channel]
        if ch.mode in (2, 3) and ch.running and not ch.frozen:
            return PIT_HZ / ch.n
        return None

    # -- ports ---------------------------------------------------------------------------------
    def io_read(self, port: int, size: int) -> int:
        i = port & 3
        if i == 3:
            return 0xFF                               # control word register is write-only
        e = self._sync()
        ch = self.channels[i]
        if ch.status_latch is not None:
            v = ch.status_latch
            ch.status_latch = None
            return v
        if ch.OL:
            return ch.OL.pop(0)
        v = ch.encoded(ch.value_out(e)[0])
        if ch.rw == 1:
            return v & 0xFF
        if ch.rw == 2:
            return v >> 8
        if ch.read_msb:
            ch.read_msb = False
            return v >> 8
        ch.read_msb = True
        return v & 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        i = port & 3
        e = self._sync()
        if i == 3:
            sc = value >> 6
            if sc == 3:                               # read-back command
                for c in range(3):
                    if value & (2 << c):
                        ch = self.channels[c]
                        if not value & 0x20:
                            ch.latch_count(e)
                        if not value & 0x10:
                            ch.latch_status(e)
                return
            ch = self.channels[sc]
            if (value >> 4) & 3 == 0:                 # counter latch command
                ch.latch_count(e)
                return
            ch.control(e, value)
        else:
            self.channels[i].write(e, value)
        self._after_change(e)

    # -- Device API ----------------------------------------------------------------------------
    def reset(self) -> None:
        e = self.edge() if self.clock is not None else 0
        for ch in self.channels:
            ch.power_on(e)
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._rise = None
        if self.irq is not None:
            self.irq.set(0, True)
        self._reschedule(e)

    def summary(self) -> dict:
        e = self._peek()
        out = {}
        for ch in self.channels:
            v, o = ch.value_out(e)
            p = f"ch{ch.index}"
            rw = {0: "-", 1: "LSB", 2: "MSB", 3: "LSB/MSB"}[ch.rw]
            out[f"{p}.mode"] = f"{ch.mode_bits} ({rw}{', BCD' if ch.bcd else ''})"
            out[f"{p}.CR"] = f"{ch.CR:#06x}"
            out[f"{p}.CE"] = f"{ch.encoded(v):#06x}"
            out[f"{p}.OUT"] = int(o)
            out[f"{p}.GATE"] = int(ch.gate)
            flags = []
            if ch.null_count(e):
                flags.append("NULL")
            if ch.OL:
                flags.append("latched")
            if ch.status_latch is not None:
                flags.append("status")
            if ch.frozen:
                flags.append("gated")
            if not ch.running:
                flags.append("idle")
            out[f"{p}.flags"] = " ".join(flags)
        f0 = self.frequency(0)
        out["irq0"] = f"{f0:.3f} Hz" if f0 else "-"
        out["irq0_edges"] = self.irq0_edges
        return out

    def get_state(self) -> dict:
        e = self._peek()
        return {"version": self.STATE_VERSION, "edge": e,
                "channels": [ch.state() for ch in self.channels],
                "rise": self._rise, "irq0_edges": self.irq0_edges}

    def set_state(self, state: dict) -> None:
        self.check_version(state)
        for ch, d in zip(self.channels, state["channels"]):
            ch.load(d)
        self.irq0_edges = state["irq0_edges"]
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._rise = None
        e = self.edge()
        r = state["rise"]
        if r is not None and r <= e:
            self._deliver_rise()
        if self.irq is not None:
            self.irq.set(0, self.channels[0].value_out(e)[1])
        self._reschedule(e)


class PortB(Device):
    """System control port B (61h).  Write: bit 0 TIMER 2 GATE, bit 1 SPEAKER DATA, bit 2
    parity check enable (active low), bit 3 channel check enable (active low).  Read: those bits,
    bit 4 the refresh-request toggle (flips every 15.085 us of virtual time), bit 5 OUT of timer
    channel 2, bit 6 channel check (IOCHK), bit 7 parity check (both 0 here)."""

    name = "portb"
    STATE_VERSION = 1
    REFRESH_NS = 15_085

    def __init__(self, iobus, pit: PIT, clock):
        self.pit = pit
        self.clock = clock
        self.value = 0
        if iobus is not None:
            self.register(iobus)

    def register(self, iobus) -> None:
        iobus.register(0x61, 1, self, self.io_read, self.io_write)

    @property
    def speaker_on(self) -> bool:
        """The speaker is driven by channel 2 (GATE and SPEAKER DATA both set)."""
        return self.value & 3 == 3

    def speaker_frequency(self):
        return self.pit.frequency(2) if self.speaker_on else None

    def refresh_toggle(self) -> int:
        return (self.clock.ns() // self.REFRESH_NS) & 1

    def io_read(self, port: int, size: int) -> int:
        return (self.value & 0x0F) | self.refresh_toggle() << 4 | self.pit.out(2) << 5

    def io_write(self, port: int, size: int, value: int) -> None:
        self.value = value & 0x0F
        self.pit.set_gate(2, bool(value & 1))

    def reset(self) -> None:
        self.value = 0
        self.pit.set_gate(2, False)

    def summary(self) -> dict:
        f = self.speaker_frequency()
        return {"value": f"{self.value:#04x}", "GATE2": self.value & 1,
                "SPEAKER": (self.value >> 1) & 1, "OUT2": int(self.pit.out(2)),
                "speaker": f"{f:.1f} Hz" if f else "off"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "value": self.value}

    def set_state(self, state: dict) -> None:
        self.check_version(state)
        self.value = state["value"]
