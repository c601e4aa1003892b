"""Intel 82077AA CHMOS single-chip floppy disk controller (the PC's FDC at 3F0h-3F7h).

Reference: Intel 82077AA data sheet (order no. 290166): section 2 "Register description"
(SRA/SRB (PS/2 mode), DOR (DRIVE SEL0-1, nRESET, DMA GATE, MOT EN0-3), TDR, MSR (RQM, DIO,
NON-DMA, CMD BSY, DRV x BUSY), DSR (S/W RESET, POWER DOWN, PRECOMP, DRATE SEL), FIFO, DIR (DSK
CHG), CCR), section 3 "Reset" (DOR and DSR software resets; the polling routine's interrupt
after a reset and the four SENSE INTERRUPT STATUS results C0h-C3h), section 5 "Controller
phases" (command, execution, result), Table 5-4 "Status register 0-3" bits and Table 5-6
"Result phase termination values with no error" (the C H R N reported after a transfer that
ended at EOT, with and without MT), section 5.2 "Command descriptions" (READ DATA, WRITE
DATA, READ ID, FORMAT TRACK, RECALIBRATE, SEEK and RELATIVE SEEK, SENSE INTERRUPT STATUS, SENSE
DRIVE STATUS, SPECIFY, CONFIGURE, VERSION (90h), DUMPREG, LOCK, PERPENDICULAR MODE, INVALID
(result ST0 = 80h)).  PC conventions (QEMU hw/block/fdc.c): IRQ 6, DMA channel 2, port 3F6h
belongs to the IDE controller, the data-rate check that makes a BIOS probe the media density.

Modelling choices:

* Data moves through the 8237A (``dma.transfer(2, ...)``) a sector at a time; the command ends at
  the DMA terminal count (normal termination) or at the end of the track/cylinder (ST0
  abnormal termination with ST1 EN), as the data sheet describes.
* Timing: a command's execution phase lasts ``delay_ns`` of virtual time (100 us by default):
  MSR shows CMD BSY without RQM meanwhile, and the data transfer, result phase and IRQ 6
  happen when the clock event fires.  SEEK/RECALIBRATE leave the controller free at once and
  complete (DRV x BUSY cleared on SENSE INTERRUPT STATUS) after the same delay; leaving reset
  raises the polling interrupt after it too.  Without a clock everything completes at once.
* Errors: no diskette, a track beyond the medium, a data rate the medium was not recorded at
  or FM mode: ST0 abnormal termination, ST1 MA (no ID address mark found); a sector ID not
  found: ST1 ND (with ST2 WC / BC when the cylinder differs); write-protected: ST1 NW; DMA not
  serviced (channel masked, DMA gate off, or SPECIFY ND = non-DMA mode): ST1 OR.
* Implied seek, always: READ DATA and WRITE DATA for a cylinder other than the present one move
  the head there first, whatever CONFIGURE EIS says, and report ST0 SE in their result.  The
  data sheet seeks implicitly only with EIS = 1 (CONFIGURE; with EIS = 0 the command would end
  with ST1 ND and ST2 WC, the IDs on the track under the head not matching C).  Aero follows
  QEMU (fd_seek, its EIS check compiled out; it too sets SE) and Bochs (the cylinder taken from
  the command, no SE), which both seek implicitly: the Bochs BIOS relies on it, issuing READ
  DATA for any cylinder without a SEEK.  A BIOS that seeks first (SeaBIOS) sees no difference.
  EIS is stored and reported by DUMPREG as written.
* After a reset with polling enabled, four SENSE INTERRUPT STATUS results (C0h-C3h) are due;
  as in QEMU, the next interrupt of another kind (e.g. a RECALIBRATE completing) discards the
  ones not yet sensed (the Bochs BIOS never senses them).
* IRQ 6 is driven only while DOR DMA GATE is set (AT mode: INT and DRQ are tri-stated
  otherwise).  The DSK CHG line is set at power-on and on media change and cleared by a
  completed SEEK or RECALIBRATE with a diskette in the drive.
* Not modelled: non-DMA (PIO) data transfers (SPECIFY ND makes transfers fail with OR, which is
  what a host that never services the FIFO would see), READ/WRITE DELETED DATA, READ TRACK,
  VERIFY, the SCAN commands (all answered as INVALID), the FIFO threshold's timing, head load/
  unload and step timing (SPECIFY values are stored and shown), the 79-step RECALIBRATE limit.
  FORMAT TRACK writes the fill byte into the sectors whose IDs match the image's layout (an
  image cannot change its format).
"""

from __future__ import annotations

from .base import Device
from .disk import DiskImage, RATE_250K, RATE_300K, RATE_500K, RATE_1M

# DOR
DOR_DRIVE_SEL, DOR_nRESET, DOR_DMA_GATE = 0x03, 0x04, 0x08
# MSR
MSR_RQM, MSR_DIO, MSR_NON_DMA, MSR_CB = 0x80, 0x40, 0x20, 0x10
# DSR
DSR_SW_RESET, DSR_POWER_DOWN = 0x80, 0x40
# ST0
ST0_IC_ABNORMAL, ST0_IC_INVALID, ST0_IC_POLL = 0x40, 0x80, 0xC0
ST0_SE, ST0_EC = 0x20, 0x10
# ST1
ST1_EN, ST1_DE, ST1_OR, ST1_ND, ST1_NW, ST1_MA = 0x80, 0x20, 0x10, 0x04, 0x02, 0x01
# ST2
ST2_CM, ST2_DD, ST2_WC, ST2_BC, ST2_MD = 0x40, 0x20, 0x10, 0x02, 0x01

RATE_NAMES = {RATE_500K: "500 kbps", RATE_300K: "300 kbps", RATE_250K: "250 kbps",
              RATE_1M: "1 Mbps"}

COMMAND_DELAY_NS = 100_000
SECTOR = 512


def _command_length(op: int) -> int | None:
    """Total bytes of the command phase for opcode ``op`` (None: INVALID)."""
    low = op & 0x1F
    if low == 0x06:                         # READ DATA (MT MFM SK)
        return 9
    if op & 0x3F == 0x05:                   # WRITE DATA (MT MFM)
        return 9
    if op & 0xBF == 0x0A:                   # READ ID (MFM)
        return 2
    if op & 0xBF == 0x0D:                   # FORMAT TRACK (MFM)
        return 6
    return {0x03: 3, 0x04: 2, 0x07: 2, 0x08: 1, 0x0F: 3, 0x8F: 3, 0xCF: 3, 0x13: 4,
            0x0E: 1, 0x10: 1, 0x12: 2, 0x14: 1, 0x94: 1}.get(op)


COMMAND_NAMES = {0x03: "SPECIFY", 0x04: "SENSE DRIVE STATUS", 0x07: "RECALIBRATE",
                 0x08: "SENSE INTERRUPT STATUS", 0x0F: "SEEK", 0x8F: "RELATIVE SEEK",
                 0xCF: "RELATIVE SEEK", 0x13: "CONFIGURE", 0x0E: "DUMPREG", 0x10: "VERSION",
                 0x12: "PERPENDICULAR MODE", 0x14: "UNLOCK", 0x94: "LOCK"}


def command_name(op: int) -> str:
    if op & 0x1F == 0x06:
        return "READ DATA"
    if op & 0x3F == 0x05:
        return "WRITE DATA"
    if op & 0xBF == 0x0A:
        return "READ ID"
    if op & 0xBF == 0x0D:
        return "FORMAT TRACK"
    return COMMAND_NAMES.get(op, f"INVALID {op:02X}")


class FloppyDrive:
    """One drive on the controller: its head position and the diskette in it."""

    def __init__(self, unit: int, present: bool = True):
        self.unit = unit
        self.present = present
        self.image: DiskImage | None = None
        self.write_protected = False
        self.PCN = 0                  # present cylinder number (the controller's count)
        self.head = 0                 # last head selected (HDS)
        self.sector = 1               # the sector ID passing under the head next (READ ID)
        self.disk_change = True       # DSK CHG: set at power-on and on media change
        self.busy = False             # DRV x BUSY in MSR (seek issued, not yet sensed)
        self.seek_target = 0
        self.seek_st0 = 0

    @property
    def geometry(self):
        return None if self.image is None else self.image.geometry

    _FIELDS = ("present", "write_protected", "PCN", "head", "sector", "disk_change", "busy",
               "seek_target", "seek_st0")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._FIELDS}
        st["image"] = None if self.image is None else self.image.get_state()
        return st

    def set_state(self, st: dict) -> None:
        for k in self._FIELDS:
            setattr(self, k, st[k])
        if st["image"] is not None:
            if self.image is None:
                raise ValueError(f"fdc drive {self.unit}: snapshot has a diskette, "
                                 "the drive is empty")
            self.image.set_state(st["image"])
        elif self.image is not None:
            raise ValueError(f"fdc drive {self.unit}: snapshot has no diskette")


class FDC82077AA(Device):
    name = "fdc"
    STATE_VERSION = 1

    def __init__(self, irq=None, dma=None, clock=None, drives: int = 2, base: int = 0x3F0,
                 irq_line: int = 6, dma_channel: int = 2, delay_ns: int = COMMAND_DELAY_NS):
        self.irq = irq
        self.dma = dma
        self.clock = clock
        self.base = base
        self.irq_line = irq_line
        self.dma_channel = dma_channel
        self.delay_ns = delay_ns
        self.drives = [FloppyDrive(i, i < drives) for i in range(4)]
        self._events: dict[str, object] = {}
        self.timers: dict[str, int] = {}
        self.irq_level = False
        self._eot = 0
        self.commands = 0
        self.last_command = ""
        self._power_on()

    # -- reset -----------------------------------------------------------------------------------
    def _power_on(self) -> None:
        self.DOR = 0                  # hardware reset: nRESET low, the controller held in reset
        self.TDR = 0
        # DSR/CCR DRATE SEL at power-on: 500 kbps, as QEMU's controller starts (its DSR is 0).
        # The Bochs BIOS never programs the rate before reading a 1.44 MB diskette and relies
        # on this; SeaBIOS probes the rates either way.
        self.rate = RATE_500K
        self.precomp = 0
        self.power_down = False
        self.SRT = self.HUT = self.HLT = 0
        self.ND = False
        self.LOCK = False
        self._config_defaults()
        self.perp = 0                 # PERPENDICULAR MODE: D3-D0 (bits 5-2), GAP, WGATE
        self._controller_reset()
        self.phase = "reset"

    def _config_defaults(self) -> None:
        self.EIS = False              # implied seek
        self.EFIFO = True             # 1 = FIFO disabled (8272A compatible)
        self.POLL = False             # 1 = drive polling disabled
        self.FIFOTHR = 0
        self.PRETRK = 0

    def _controller_reset(self) -> None:
        for name in list(self._events):
            self._cancel(name)
        self.phase = "idle"
        self.cmd: list[int] = []
        self.result: list[int] = []
        self.result_pos = 0
        self.intpend = False
        self.result_int = False       # the pending interrupt is a result-phase one
        self.reset_sense = 0          # SENSE INTERRUPT STATUS results still due after reset
        self.sense_queue: list[int] = []   # drives whose seek completed, in order
        if not self.LOCK:
            self._config_defaults()
        for d in self.drives:
            d.PCN = 0
            d.busy = False
        self._update_irq()

    def reset(self) -> None:
        """Hardware reset (RESET pin)."""
        for name in list(self._events):
            self._cancel(name)
        self._power_on()
        for d in self.drives:
            d.disk_change = True
            d.sector = 1
            d.head = 0
        self._update_irq()

    def _software_reset(self) -> None:
        """DOR nRESET low or DSR S/W RESET: everything but DOR, the data rate and SPECIFY
        (and CONFIGURE while LOCKed)."""
        self._controller_reset()
        self.phase = "reset"

    def _leave_reset(self) -> None:
        self.phase = "idle"
        if not self.POLL:
            self._arm("reset", self._delay())

    # -- wiring ----------------------------------------------------------------------------------
    def register(self, iobus) -> None:
        iobus.register(self.base, 6, self, self.io_read, self.io_write)
        iobus.register(self.base + 7, 1, self, self.io_read, self.io_write)

    def insert(self, unit: int, image: DiskImage, write_protected: bool = False) -> None:
        """Put a diskette in drive ``unit`` (the image must be a floppy format)."""
        if image is not None and image.geometry is None:
            raise ValueError(f"{image.label}: not a floppy image")
        d = self.drives[unit]
        if not d.present:
            raise ValueError(f"fdc: there is no drive {unit}")
        d.image = image
        d.write_protected = write_protected
        d.disk_change = True

    def eject(self, unit: int) -> None:
        d = self.drives[unit]
        d.image = None
        d.disk_change = True

    def cmos_type(self, unit: int) -> int:
        """The CMOS drive type (10h nibble) for a drive sized for its diskette: 0 none,
        1 360K, 2 1.2M, 3 720K, 4 1.44M, 5 2.88M (a drive with no diskette: 4)."""
        d = self.drives[unit]
        if not d.present:
            return 0
        return 4 if d.image is None else d.image.geometry.cmos_type

    # -- time ------------------------------------------------------------------------------------
    def _delay(self) -> int | None:
        if self.clock is None or self.delay_ns <= 0:
            return None
        return self.clock.now() + self.clock.ticks_for_ns(self.delay_ns)

    def _arm(self, name: str, when: int | None) -> None:
        """Run the action ``name`` at tick ``when`` (now, if None)."""
        self._cancel(name)
        if when is None:
            self._fire(name)
            return
        self.timers[name] = when
        self._events[name] = self.clock.schedule(when, lambda: self._on_timer(name),
                                                 f"fdc-{name}")

    def _cancel(self, name: str) -> None:
        ev = self._events.pop(name, None)
        if ev is not None:
            ev.cancel()
        self.timers.pop(name, None)

    def _on_timer(self, name: str) -> None:
        self._events.pop(name, None)
        self.timers.pop(name, None)
        self._fire(name)

    def _fire(self, name: str) -> None:
        if name == "exec":
            self._execute()
        elif name == "reset":
            self.result_int = False
            self._interrupt()
            self.reset_sense = 4
        elif name.startswith("seek"):
            self._seek_done(int(name[4:]))

    # -- interrupt -------------------------------------------------------------------------------
    def _interrupt(self) -> None:
        # A new interrupt ends the polling statuses a reset left unsensed (as QEMU does; the
        # Bochs BIOS never senses them and expects its RECALIBRATE's status next).
        self.reset_sense = 0
        self.intpend = True
        self._update_irq()

    def _update_irq(self) -> None:
        level = self.intpend and bool(self.DOR & DOR_DMA_GATE)
        if level != self.irq_level:
            self.irq_level = level
            if self.irq is not None:
                self.irq.set(self.irq_line, level)

    # -- registers -------------------------------------------------------------------------------
    def MSR(self) -> int:
        busy = 0
        for d in self.drives:
            if d.busy:
                busy |= 1 << d.unit
        ph = self.phase
        if ph == "reset":
            return 0
        if ph == "idle":
            return MSR_RQM | busy
        if ph == "command":
            return MSR_RQM | MSR_CB | busy
        if ph == "exec":
            return MSR_CB | busy
        return MSR_RQM | MSR_DIO | MSR_CB | busy        # result

    def SRA(self) -> int:
        d = self.drives[self.DOR & 3]
        v = 0x04                                        # nINDX inactive
        if self.intpend:
            v |= 0x80
        if not self.drives[1].present:
            v |= 0x40                                   # nDRV2
        if d.PCN != 0:
            v |= 0x10                                   # nTRK0
        if d.head:
            v |= 0x08                                   # HDSEL
        if not d.write_protected:
            v |= 0x02                                   # nWP
        return v

    def SRB(self) -> int:
        return 0xC0 | ((self.DOR & 1) << 5) | ((self.DOR >> 4) & 3)

    def DIR(self) -> int:
        d = self.drives[self.DOR & 3]
        return 0x80 if d.present and d.disk_change else 0x00

    def io_read(self, port: int, size: int) -> int:
        reg = port - self.base
        if reg == 0:
            return self.SRA()
        if reg == 1:
            return self.SRB()
        if reg == 2:
            return self.DOR
        if reg == 3:
            return self.TDR & 3
        if reg == 4:
            return self.MSR()
        if reg == 5:
            return self._read_fifo()
        if reg == 7:
            return self.DIR()
        return 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        reg = port - self.base
        v = value & 0xFF
        if reg == 2:
            old = self.DOR
            self.DOR = v
            if not v & DOR_nRESET:
                if old & DOR_nRESET or self.phase != "reset":
                    self._software_reset()
            elif not old & DOR_nRESET:
                self._leave_reset()
            self._update_irq()
        elif reg == 3:
            self.TDR = v & 3
        elif reg == 4:                                  # DSR
            self.rate = v & 3
            self.precomp = (v >> 2) & 7
            self.power_down = bool(v & DSR_POWER_DOWN)
            if v & DSR_SW_RESET and self.DOR & DOR_nRESET:
                self._software_reset()                  # self-clearing
                self.power_down = False
                self._leave_reset()
        elif reg == 5:
            self._write_fifo(v)
        elif reg == 7:                                  # CCR
            self.rate = v & 3

    # -- command and result phases ---------------------------------------------------------------
    def _write_fifo(self, v: int) -> None:
        if self.phase not in ("idle", "command"):
            return
        self.cmd.append(v)
        if len(self.cmd) == 1:
            self.phase = "command"
            if _command_length(v) is None:
                self.last_command = command_name(v)
                self._results([ST0_IC_INVALID])
                return
        if len(self.cmd) >= _command_length(self.cmd[0]):
            self._dispatch()

    def _read_fifo(self) -> int:
        if self.phase != "result":
            return 0
        if self.result_pos == 0 and self.result_int:
            self.intpend = False                        # cleared by reading the first byte
            self.result_int = False
            self._update_irq()
        v = self.result[self.result_pos]
        self.result_pos += 1
        if self.result_pos >= len(self.result):
            self.phase = "idle"
            self.cmd = []
            self.result = []
            self.result_pos = 0
            if self.sense_queue and not self.intpend:
                self._interrupt()                       # another seek has completed
        return v

    def _results(self, values: list[int], interrupt: bool = False) -> None:
        self.result = [x & 0xFF for x in values]
        self.result_pos = 0
        self.phase = "result"
        if interrupt:
            self.result_int = True
            self._interrupt()

    def _idle(self) -> None:
        self.phase = "idle"
        self.cmd = []

    def _dispatch(self) -> None:
        c = self.cmd
        op = c[0]
        self.commands += 1
        self.last_command = command_name(op)
        if op == 0x03:                                  # SPECIFY
            self.SRT, self.HUT = c[1] >> 4, c[1] & 0xF
            self.HLT, self.ND = c[2] >> 1, bool(c[2] & 1)
            self._idle()
        elif op == 0x04:                                # SENSE DRIVE STATUS
            d = self.drives[c[1] & 3]
            d.head = (c[1] >> 2) & 1
            st3 = 0x28 | (c[1] & 7)
            if d.write_protected and d.image is not None:
                st3 |= 0x40
            if d.present and d.PCN == 0:
                st3 |= 0x10
            self._results([st3])
        elif op in (0x07, 0x0F, 0x8F, 0xCF):            # RECALIBRATE, SEEK, RELATIVE SEEK
            ds = c[1] & 3
            d = self.drives[ds]
            d.head = (c[1] >> 2) & 1
            st0 = ST0_SE | (d.head << 2) | ds
            if op == 0x07:
                target = 0
                st0 &= ~0x04
                if not d.present:
                    st0 |= ST0_IC_ABNORMAL | ST0_EC     # track 0 never found
                    target = d.PCN
            elif op == 0x0F:
                target = c[2]
            elif op == 0xCF:                            # DIR = 1: step in
                target = min(255, d.PCN + c[2])
            else:
                target = max(0, d.PCN - c[2])
            d.seek_target = target
            d.seek_st0 = st0
            d.busy = True
            self._idle()
            self._arm(f"seek{ds}", self._delay())
        elif op == 0x08:                                # SENSE INTERRUPT STATUS
            self._sense_interrupt()
        elif op == 0x10:                                # VERSION
            self._results([0x90])
        elif op == 0x13:                                # CONFIGURE
            self.EIS = bool(c[2] & 0x40)
            self.EFIFO = bool(c[2] & 0x20)
            self.POLL = bool(c[2] & 0x10)
            self.FIFOTHR = c[2] & 0x0F
            self.PRETRK = c[3]
            self._idle()
        elif op in (0x14, 0x94):                        # LOCK / UNLOCK
            self.LOCK = bool(op & 0x80)
            self._results([0x10 if self.LOCK else 0x00])
        elif op == 0x0E:                                # DUMPREG
            self._results([self.drives[0].PCN, self.drives[1].PCN, self.drives[2].PCN,
                           self.drives[3].PCN, (self.SRT << 4) | self.HUT,
                           (self.HLT << 1) | self.ND, self._last_eot(),
                           (0x80 if self.LOCK else 0) | (self.perp & 0x3F),
                           (self.EIS << 6) | (self.EFIFO << 5) | (self.POLL << 4) |
                           self.FIFOTHR, self.PRETRK])
        elif op == 0x12:                                # PERPENDICULAR MODE
            v = c[1]
            if v & 0x80:                                # OW: D3-D0 are written
                self.perp = v & 0x3F
            else:
                self.perp = (self.perp & 0x3C) | (v & 3)
            self._idle()
        else:                                           # READ/WRITE DATA, READ ID, FORMAT
            self.phase = "exec"
            self._arm("exec", self._delay())

    def _last_eot(self) -> int:
        """SC/EOT of DUMPREG: the EOT of the last READ/WRITE (or 0)."""
        return getattr(self, "_eot", 0)

    def _sense_interrupt(self) -> None:
        if self.reset_sense:
            unit = 4 - self.reset_sense
            self.reset_sense -= 1
            self.intpend = False
            self._update_irq()
            self._results([ST0_IC_POLL | unit, self.drives[unit].PCN])
            return
        if self.sense_queue and self.intpend:
            unit = self.sense_queue.pop(0)
            d = self.drives[unit]
            d.busy = False
            self.intpend = False
            self._update_irq()
            self._results([d.seek_st0, d.PCN])
            return
        self._results([ST0_IC_INVALID])

    def _seek_done(self, unit: int) -> None:
        d = self.drives[unit]
        d.PCN = d.seek_target
        if d.image is not None:
            d.disk_change = False               # a step pulse with a diskette in the drive
        if unit in self.sense_queue:
            self.sense_queue.remove(unit)
        self.sense_queue.append(unit)
        if self.phase != "result" or not self.result_int:
            self._interrupt()

    # -- execution phase ---------------------------------------------------------------------------
    def _execute(self) -> None:
        c = self.cmd
        op = c[0]
        ds = c[1] & 3
        d = self.drives[ds]
        d.head = (c[1] >> 2) & 1
        if op & 0xBF == 0x0A:
            self._read_id(d, op)
        elif op & 0xBF == 0x0D:
            self._format(d, op)
        else:
            self._transfer(d, op, write=(op & 0x1F) == 0x05)

    def _medium_error(self, d: FloppyDrive, op: int) -> int:
        """ST1 bits if the track under the head cannot be read at all (0: it can)."""
        g = d.geometry
        if not d.present or g is None or not op & 0x40 or self.rate not in g.rates:
            return ST1_MA
        if d.PCN >= g.cylinders or d.head >= g.heads:
            return ST1_MA
        return 0

    def _end(self, st0: int, st1: int, st2: int, c: int, h: int, r: int, n: int) -> None:
        self._results([st0, st1, st2, c, h, r, n], interrupt=True)

    def _read_id(self, d: FloppyDrive, op: int) -> None:
        st0 = (d.head << 2) | d.unit
        err = self._medium_error(d, op)
        if err:
            self._end(st0 | ST0_IC_ABNORMAL, err, 0, d.PCN, d.head, d.sector, 2)
            return
        g = d.geometry
        r = d.sector if 1 <= d.sector <= g.sectors else 1
        d.sector = r % g.sectors + 1
        self._end(st0, 0, 0, d.PCN, d.head, r, 2)

    def _dma_ok(self) -> bool:
        return (self.dma is not None and self.DOR & DOR_DMA_GATE and not self.ND
                and self.dma.ready(self.dma_channel))

    def _transfer(self, d: FloppyDrive, op: int, write: bool) -> None:
        c = self.cmd
        MT = bool(op & 0x80)
        C, H, R, N, EOT = c[2], c[3], c[4], c[5], c[6]
        self._eot = EOT
        se = 0
        if d.present and C != d.PCN:
            # implied seek, with or without CONFIGURE EIS (see the module docstring)
            d.PCN = C
            se = ST0_SE
            if d.image is not None:
                d.disk_change = False

        def end(st0, st1, st2, c, h, r, n):
            self._end(st0 | se, st1, st2, c, h, r, n)

        head = d.head
        st0 = (head << 2) | d.unit
        err = self._medium_error(d, op)
        if err:
            end(st0 | ST0_IC_ABNORMAL, err, 0, C, H, R, N)
            return
        if write and d.write_protected:
            end(st0 | ST0_IC_ABNORMAL, ST1_NW, 0, C, H, R, N)
            return
        g = d.geometry
        img = d.image
        ch = self.dma_channel
        while True:
            st0 = (head << 2) | d.unit
            if H != head or N != 2 or not 1 <= R <= g.sectors:
                end(st0 | ST0_IC_ABNORMAL, ST1_ND, 0, C, H, R, N)
                return
            lba = g.lba(d.PCN, head, R)
            if not self._dma_ok():
                end(st0 | ST0_IC_ABNORMAL, ST1_OR, 0, C, H, R, N)
                return
            if write:
                data = self.dma.transfer(ch, SECTOR, "read")
                moved = len(data)
                if moved:
                    img.write(lba, bytes(data) + bytes(SECTOR - moved))  # rest filled with 00
            else:
                moved = self.dma.transfer(ch, img.read(lba), "write")
            tc = self.dma.last_tc
            if moved < SECTOR and not tc:
                end(st0 | ST0_IC_ABNORMAL, ST1_OR, 0, C, H, R, N)
                return
            d.sector = R % g.sectors + 1
            end_of_track = R == EOT
            if end_of_track:                            # Table 5-6
                if MT and head == 0:
                    head = 1                            # continue on side 1
                    H ^= 1
                    R = 1
                    end_of_track = False
                else:
                    C = (C + 1) & 0xFF
                    if MT:
                        H ^= 1
                    R = 1
            else:
                R += 1
            if tc:
                end((head << 2) | d.unit, 0, 0, C, H, R, N)
                return
            if end_of_track:
                end((head << 2) | d.unit | ST0_IC_ABNORMAL, ST1_EN, 0, C, H, R, N)
                return
            if head >= g.heads:                         # MT onto the missing side
                end((head << 2) | d.unit | ST0_IC_ABNORMAL, ST1_MA, 0, C, H, R, N)
                return

    def _format(self, d: FloppyDrive, op: int) -> None:
        c = self.cmd
        N, SC, D = c[2], c[3], c[5]
        st0 = (d.head << 2) | d.unit
        err = self._medium_error(d, op)
        if err:
            self._end(st0 | ST0_IC_ABNORMAL, err, 0, d.PCN, d.head, 1, N)
            return
        if d.write_protected:
            self._end(st0 | ST0_IC_ABNORMAL, ST1_NW, 0, d.PCN, d.head, 1, N)
            return
        g = d.geometry
        last = (d.PCN, d.head, 1, N)
        for _ in range(SC):
            if not self._dma_ok():
                self._end(st0 | ST0_IC_ABNORMAL, ST1_OR, 0, *last)
                return
            ident = self.dma.transfer(self.dma_channel, 4, "read")
            if len(ident) < 4:
                self._end(st0 | ST0_IC_ABNORMAL, ST1_OR, 0, *last)
                return
            ic, ih, ir, iN = ident
            last = (ic, ih, ir, iN)
            if iN == 2 and ic == d.PCN and ih == d.head and 1 <= ir <= g.sectors:
                d.image.write(g.lba(d.PCN, d.head, ir), bytes([D]) * SECTOR)
        self._end(st0, 0, 0, *last)

    # -- inspection and snapshots ----------------------------------------------------------------
    def summary(self) -> dict:
        out = {
            "ports": f"{self.base:#x}-{self.base + 7:#x} IRQ {self.irq_line} DMA "
                     f"{self.dma_channel}",
            "DOR": f"{self.DOR:02X}" + (" reset" if not self.DOR & DOR_nRESET else "") +
                   (" DMA-gate" if self.DOR & DOR_DMA_GATE else "") +
                   f" drive {self.DOR & 3} motors {(self.DOR >> 4):04b}",
            "MSR": f"{self.MSR():02X}", "phase": self.phase,
            "data rate": RATE_NAMES[self.rate],
            "command": " ".join(f"{b:02X}" for b in self.cmd) + (
                f" ({self.last_command})" if self.last_command else ""),
            "result": " ".join(f"{b:02X}" for b in self.result),
            "SPECIFY": f"SRT {self.SRT} HUT {self.HUT} HLT {self.HLT} "
                       f"{'non-DMA (not modelled)' if self.ND else 'DMA'}",
            "CONFIGURE": f"EIS {int(self.EIS)} EFIFO {int(self.EFIFO)} POLL {int(self.POLL)} "
                         f"FIFOTHR {self.FIFOTHR} PRETRK {self.PRETRK}"
                         f"{' LOCKed' if self.LOCK else ''}",
            "INT": f"{'pending' if self.intpend else 'clear'}, IRQ {int(self.irq_level)}",
            "sense due": (f"{self.reset_sense} reset " if self.reset_sense else "") +
                         " ".join(f"drive{u}" for u in self.sense_queue),
        }
        for dr in self.drives:
            if not dr.present:
                continue
            media = "empty" if dr.image is None else (
                f"{dr.image.geometry.name} {dr.image.label}"
                f"{' WP' if dr.write_protected else ''} dirty {dr.image.dirty}")
            out[f"drive {dr.unit}"] = (f"cyl {dr.PCN} head {dr.head}"
                                       f"{' busy' if dr.busy else ''}"
                                       f"{' DSKCHG' if dr.disk_change else ''}: {media}")
        return out

    _FIELDS = ("DOR", "TDR", "rate", "precomp", "power_down", "SRT", "HUT", "HLT", "ND", "LOCK",
               "EIS", "EFIFO", "POLL", "FIFOTHR", "PRETRK", "perp", "phase", "cmd", "result",
               "result_pos", "intpend", "result_int", "reset_sense", "sense_queue",
               "irq_level", "commands", "last_command")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._FIELDS}
        st["cmd"] = list(self.cmd)
        st["result"] = list(self.result)
        st["sense_queue"] = list(self.sense_queue)
        st["eot"] = self._last_eot()
        st["timers"] = dict(sorted(self.timers.items()))
        st["drives"] = [d.get_state() for d in self.drives]
        st["version"] = self.STATE_VERSION
        return st

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        for name in list(self._events):
            self._cancel(name)
        for k in self._FIELDS:
            setattr(self, k, st[k])
        self.cmd = list(st["cmd"])
        self.result = list(st["result"])
        self.sense_queue = list(st["sense_queue"])
        self._eot = st["eot"]
        for d, ds in zip(self.drives, st["drives"]):
            d.set_state(ds)
        for name, when in st["timers"].items():
            self.timers[name] = when
            self._events[name] = self.clock.schedule(
                when, lambda n=name: self._on_timer(n), f"fdc-{name}")
        if self.irq is not None:
            self.irq.set(self.irq_line, self.irq_level)
