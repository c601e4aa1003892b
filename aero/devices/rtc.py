"""Motorola MC146818 real-time clock and CMOS RAM at ports 70h/71h.

References: Motorola MC146818A datasheet: "Address Map" (Figure 3), "Time, Calendar and Alarm
Locations" (Table 2, binary/BCD and 12/24-hour formats, the PM bit 7 of the hours byte, alarm
don't-care codes C0h-FFh), "Update Cycle" (UIP set 244 us before the update), "Register A"
(UIP, DV2-DV0, RS3-RS0, Table 5 periodic rates), "Register B" (SET, PIE, AIE, UIE, SQWE, DM,
24/12, DSE), "Register C" (IRQF, PF, AF, UF; cleared by reading), "Register D" (VRT), and
"Interrupts" (IRQF = PF.PIE + AF.AIE + UF.UIE; PF is set at the periodic rate whether or not
PIE is set; the divider reset releasing starts the first update 500 ms later).  IBM PC/AT
Technical Reference, "CMOS RAM Address Map"; QEMU's hw/rtc/mc146818rtc.c and hw/i386/pc.c for the
PC conventions (NMI mask in port 70h bit 7, century byte 32h, memory-size bytes, boot order in
3Dh/38h as SeaBIOS and the Bochs BIOS read them, checksum over 10h-2Dh in 2Eh-2Fh).

Virtual time only (no host clock): the time is a configured start datetime at the moment the
device is created (virtual time 0 in a machine), advanced by the clock's virtual time (ticks at
the clock's ips, converted exactly to 32.768 kHz time-base cycles; the same instant as
``clock.ns()`` without its rounding to whole nanoseconds).  Updates happen at whole seconds after
the divider origin; nothing is polled.  The current time, register C flags and
UIP are computed lazily when read; a clock event is scheduled only for the next moment the IRQ 8
output would assert (the next periodic tick if PIE, the next update if UIE, the next alarm
match if AIE), and none while IRQ 8 is already asserted (it stays so until register C is read).

Modelling notes: only the 32.768 kHz time base (DV = 010) runs the clock; DV = 11x holds the
divider in reset (on release the first update comes 500 ms later); other DV codes stop it.
Register B's DSE is ignored, SQWE is stored (there is no SQW pin).  Time registers written with
out-of-range values read back as written until the next update, which normalises them (seconds,
minutes and hours clamp to their maximum, the date to the last day of the month).  Changing DM or
24/12 re-encodes the current time in the new format (the chip would not convert; software always
re-initialises the time after changing them).  The day of week (register 6) is a free-running
1-7 counter advanced at midnight, as in the chip.
"""

from __future__ import annotations

import datetime as _dt

from .base import Device

HZ = 32768                                     # time-base cycles per second
UIP_CYCLES = 8                                 # 8 / 32768 s = 244.1 us
YEAR_BIAS = 400                                # datetime needs year >= 1; Gregorian repeats/400y

# Register numbers and bits
SECONDS, SECONDS_ALARM, MINUTES, MINUTES_ALARM, HOURS, HOURS_ALARM = 0, 1, 2, 3, 4, 5
DAY_OF_WEEK, DATE_OF_MONTH, MONTH, YEAR = 6, 7, 8, 9
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
CENTURY = 0x32
UIP = 0x80
SET, PIE, AIE, UIE, SQWE, DM, H24, DSE = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
IRQF, PF, AF, UF = 0x80, 0x40, 0x20, 0x10
VRT = 0x80

DEFAULT_START = _dt.datetime(2000, 1, 1, 0, 0, 0)

FLOPPY_TYPES = {None: 0, "": 0, "360k": 1, "1.2M": 2, "720k": 3, "1.44M": 4, "2.88M": 5}
BOOT_CODES = {"a": 1, "b": 1, "c": 2, "d": 3, "n": 4}
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _bcd(v: int) -> int:
    return ((v // 10 % 10) << 4 | v % 10) & 0xFF


def _unbcd(v: int) -> int:
    return (v >> 4) * 10 + (v & 15)


def periodic_cycles(rs: int):
    """Periodic interrupt period in 32.768 kHz cycles for RS3-RS0 (Table 5), None if off."""
    if rs == 0:
        return None
    if rs < 3:
        return 1 << (rs + 6)                    # 0001: 3.90625 ms, 0010: 7.8125 ms
    return 1 << (rs - 1)                        # 0011: 122.07 us ... 1111: 500 ms


class RTC(Device):
    name = "rtc"
    STATE_VERSION = 1

    def __init__(self, iobus, irq, clock, start: _dt.datetime = DEFAULT_START):
        self.irq = irq
        self.clock = clock
        self.cmos = bytearray(128)
        self.index = 0
        self.nmi_masked = False
        self.reg_a = 0x26                       # DV = 010 (32.768 kHz), RS = 0110 (1024 Hz)
        self.reg_b = H24
        self.flags = 0                          # latched PF/AF/UF
        self.irq_asserted = False
        # Time-base cycles since the divider origin = (now * 32768 - origin_q) // ips: exact
        # in virtual ticks (clock.ns() would round to whole ns); updates at whole seconds.
        self.origin_q = 0
        t = start
        self.fields = [t.second, t.minute, t.hour, t.isoweekday() % 7 + 1, t.day, t.month,
                       t.year]
        self.base_m = 0
        self.pf_mark = 0
        self.uf_mark = 0
        self.af_next = None
        self._event = None
        if iobus is not None:
            self.register(iobus)
        rel = self._rel()
        self.base_m = self.uf_mark = rel // HZ
        self._reset_pf_mark(rel)
        self._recompute_alarm()

    # -- time base -----------------------------------------------------------------------------
    def _rel(self) -> int:
        """32.768 kHz cycles since the divider origin."""
        return (self.clock.now() * HZ - self.origin_q) // self.clock.ips

    def _tick_of_cycle(self, cyc: int) -> int:
        """The first tick at which _rel() >= cyc."""
        return -(-(cyc * self.clock.ips + self.origin_q) // HZ)

    @property
    def divider_running(self) -> bool:
        return (self.reg_a >> 4) & 7 == 2

    @property
    def updates_running(self) -> bool:
        return self.divider_running and not self.reg_b & SET

    def _period(self):
        return periodic_cycles(self.reg_a & 15)

    def _reset_pf_mark(self, rel: int) -> None:
        p = self._period()
        self.pf_mark = rel // p if p else 0

    # -- the calendar --------------------------------------------------------------------------
    @staticmethod
    def _normalise(f) -> _dt.datetime:
        sec, mi, hr, _dow, day, mon, year = f
        mon = min(max(mon, 1), 12)
        year = min(max(year, 0), 9999 - YEAR_BIAS) + YEAR_BIAS
        mdays = _MONTH_DAYS[mon - 1] + (mon == 2 and (year % 4 == 0 and
                                                     (year % 100 != 0 or year % 400 == 0)))
        return _dt.datetime(year, mon, min(max(day, 1), mdays), min(hr, 23), min(mi, 59),
                            min(sec, 59))

    def _fields_at(self, m: int):
        f = self.fields
        if not self.updates_running or m <= self.base_m:
            return list(f)
        t0 = self._normalise(f)
        t = t0 + _dt.timedelta(seconds=m - self.base_m)
        days = (t.date() - t0.date()).days
        dow = (f[3] - 1 + days) % 7 + 1
        return [t.second, t.minute, t.hour, dow, t.day, t.month, t.year - YEAR_BIAS]

    def current_fields(self):
        """[second, minute, hour (0-23), day of week (1 = Sunday), date, month, full year]."""
        return self._fields_at(self._rel() // HZ)

    def now(self) -> _dt.datetime:
        """The RTC's current time as a datetime (normalised)."""
        t = self._normalise(self.current_fields())
        return t.replace(year=t.year - YEAR_BIAS) if t.year > YEAR_BIAS else t

    def _rebase(self) -> None:
        """Materialise the current time into ``fields`` (at the current update index)."""
        m = self._rel() // HZ
        self.fields = self._fields_at(m)
        self.base_m = m

    # -- register formats ----------------------------------------------------------------------
    def _enc(self, v: int) -> int:
        return v & 0xFF if self.reg_b & DM else _bcd(v)

    def _dec(self, v: int) -> int:
        return v if self.reg_b & DM else _unbcd(v)

    def _enc_hour(self, h: int) -> int:
        if self.reg_b & H24:
            return self._enc(h)
        h12 = h % 12 or 12
        return self._enc(h12) | (0x80 if h >= 12 else 0)

    def _dec_hour(self, v: int) -> int:
        if self.reg_b & H24:
            return self._dec(v)
        h = self._dec(v & 0x7F)
        return h % 12 + (12 if v & 0x80 else 0)

    # -- the alarm -----------------------------------------------------------------------------
    def _alarm_set(self, reg: int, count: int, enc) -> list:
        a = self.cmos[reg]
        if a & 0xC0 == 0xC0:
            return list(range(count))
        return [v for v in range(count) if enc(v) == a]

    def _recompute_alarm(self) -> None:
        """The next update index (> now) whose new time matches the alarm registers."""
        self.af_next = None
        if not self.updates_running:
            return
        S = self._alarm_set(SECONDS_ALARM, 60, self._enc)
        M = self._alarm_set(MINUTES_ALARM, 60, self._enc)
        H = self._alarm_set(HOURS_ALARM, 24, self._enc_hour)
        if not (S and M and H):
            return
        m = self._rel() // HZ
        f = self._fields_at(m)
        t = self._normalise(f)
        sod = t.hour * 3600 + t.minute * 60 + t.second
        for day in (0, 1):
            for h in H:
                if day == 0 and h < sod // 3600:
                    continue
                for mi in M:
                    for s in S:
                        x = day * 86400 + h * 3600 + mi * 60 + s
                        if x > sod:
                            self.af_next = m + (x - sod)
                            return

    # -- flags and IRQ 8 -----------------------------------------------------------------------
    def _sync_flags(self) -> None:
        if not self.divider_running:
            return
        rel = self._rel()
        p = self._period()
        if p:
            i = rel // p
            if i > self.pf_mark:
                self.flags |= PF
            self.pf_mark = i
        if not self.reg_b & SET:
            m = rel // HZ
            if m > self.uf_mark:
                self.flags |= UF
                self.uf_mark = m
            if self.af_next is not None and m >= self.af_next:
                self.flags |= AF

    def _update_irq(self) -> None:
        self._sync_flags()
        if self._event is not None:
            self._event.cancel()
            self._event = None
        if not self.irq_asserted and self.flags & self.reg_b & (PF | AF | UF):
            self.irq_asserted = True
            if self.irq is not None:
                self.irq.set(8, True)
        if self.irq_asserted or self.clock is None:
            return
        # the next moment IRQF could go to 1: schedule only what is enabled
        cands = []
        if self.divider_running:
            p = self._period()
            if self.reg_b & PIE and p:
                cands.append((self.pf_mark + 1) * p)
            if self.updates_running:
                if self.reg_b & UIE:
                    cands.append((self.uf_mark + 1) * HZ)
                if self.reg_b & AIE and self.af_next is not None:
                    cands.append(self.af_next * HZ)
        if cands:
            self._event = self.clock.schedule(self._tick_of_cycle(min(cands)), self._on_event,
                                              "rtc.irq8")

    def _on_event(self) -> None:
        self._event = None
        self._update_irq()

    def register_c(self) -> int:
        """Read register C: flags with IRQF, then clear them and drop IRQ 8."""
        self._sync_flags()
        v = self.flags
        if v & self.reg_b & (PF | AF | UF):
            v |= IRQF
        if self.flags & AF:
            self.flags = 0
            self._recompute_alarm()
        self.flags = 0
        if self.irq_asserted:
            self.irq_asserted = False
            if self.irq is not None:
                self.irq.set(8, False)
        self._update_irq()
        return v

    # -- register file -------------------------------------------------------------------------
    def read_register(self, r: int) -> int:
        if r == REG_A:
            v = self.reg_a
            if self.updates_running and self._rel() % HZ >= HZ - UIP_CYCLES:
                v |= UIP
            return v
        if r == REG_B:
            return self.reg_b
        if r == REG_C:
            return self.register_c()
        if r == REG_D:
            return VRT
        if r in (SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DATE_OF_MONTH, MONTH, YEAR, CENTURY):
            f = self.current_fields()
            if r == SECONDS:
                return self._enc(f[0])
            if r == MINUTES:
                return self._enc(f[1])
            if r == HOURS:
                return self._enc_hour(f[2])
            if r == DAY_OF_WEEK:
                return self._enc(f[3])
            if r == DATE_OF_MONTH:
                return self._enc(f[4])
            if r == MONTH:
                return self._enc(f[5])
            if r == YEAR:
                return self._enc(f[6] % 100)
            return self._enc(f[6] // 100)
        return self.cmos[r]

    def write_register(self, r: int, value: int) -> None:
        value &= 0xFF
        if r in (SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DATE_OF_MONTH, MONTH, YEAR, CENTURY):
            self._sync_flags()
            self._rebase()
            f = self.fields
            if r == SECONDS:
                f[0] = self._dec(value)
            elif r == MINUTES:
                f[1] = self._dec(value)
            elif r == HOURS:
                f[2] = self._dec_hour(value)
            elif r == DAY_OF_WEEK:
                f[3] = self._dec(value)
            elif r == DATE_OF_MONTH:
                f[4] = self._dec(value)
            elif r == MONTH:
                f[5] = self._dec(value)
            elif r == YEAR:
                f[6] = f[6] // 100 * 100 + self._dec(value)
            else:
                f[6] = self._dec(value) * 100 + f[6] % 100
            self._recompute_alarm()
            self._update_irq()
        elif r in (SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM):
            self._sync_flags()
            self.cmos[r] = value
            self._recompute_alarm()
            self._update_irq()
        elif r == REG_A:
            self._sync_flags()
            self._rebase()
            was_running = self.divider_running
            self.reg_a = value & 0x7F           # UIP is read-only
            if self.divider_running and not was_running:
                # divider leaves reset/stop: the first update comes 500 ms later
                self.origin_q = self.clock.now() * HZ - (HZ // 2) * self.clock.ips
                self.base_m = self.uf_mark = self._rel() // HZ
            self._reset_pf_mark(self._rel())
            self._recompute_alarm()
            self._update_irq()
        elif r == REG_B:
            self._sync_flags()
            self._rebase()
            was_set = self.reg_b & SET
            if value & SET:
                value &= ~UIE                   # SET = 1 clears UIE
            self.reg_b = value
            if was_set and not value & SET:
                m = self._rel() // HZ
                self.base_m = self.uf_mark = m
            self._recompute_alarm()
            self._update_irq()
        elif r in (REG_C, REG_D):
            pass                                # read-only
        else:
            self.cmos[r] = value

    # -- ports ---------------------------------------------------------------------------------
    def register(self, iobus) -> None:
        iobus.register(0x70, 2, self, self.io_read, self.io_write)

    def io_read(self, port: int, size: int) -> int:
        if port == 0x70:
            return 0xFF                         # the index register is write-only
        return self.read_register(self.index)

    def io_write(self, port: int, size: int, value: int) -> None:
        if port == 0x70:
            self.nmi_masked = bool(value & 0x80)
            self.index = value & 0x7F
        else:
            self.write_register(self.index, value)

    # -- CMOS configuration helpers (what a machine sets up before POST) ----------------------
    def update_checksum(self) -> None:
        """Standard CMOS checksum: the 16-bit sum of 10h-2Dh, big-endian in 2Eh-2Fh."""
        s = sum(self.cmos[0x10:0x2E]) & 0xFFFF
        self.cmos[0x2E] = s >> 8
        self.cmos[0x2F] = s & 0xFF

    def set_memory(self, ram_bytes: int, below_4g: int | None = None) -> None:
        """Memory-size bytes as QEMU's PC sets them: 15h-16h base memory (640 KiB), 17h-18h and
        30h-31h extended memory above 1 MiB in KiB (max 65535), 34h-35h memory above 16 MiB
        below 4 GiB in 64 KiB units, 5Bh-5Dh memory above 4 GiB in 64 KiB units."""
        if below_4g is None:
            below_4g = ram_bytes if ram_bytes < 0xE0000000 else 0xC0000000
        below_4g = min(below_4g, ram_bytes)
        above_4g = ram_bytes - below_4g
        c = self.cmos
        c[0x15], c[0x16] = 640 & 0xFF, 640 >> 8
        ext = min(max(below_4g - (1 << 20), 0) // 1024, 0xFFFF)
        c[0x17] = c[0x30] = ext & 0xFF
        c[0x18] = c[0x31] = ext >> 8
        over16 = min(max(below_4g - (16 << 20), 0) // 65536, 0xFFFF)
        c[0x34], c[0x35] = over16 & 0xFF, over16 >> 8
        hi = above_4g // 65536
        c[0x5B], c[0x5C], c[0x5D] = hi & 0xFF, (hi >> 8) & 0xFF, (hi >> 16) & 0xFF
        self.update_checksum()

    def set_equipment(self, floppies: int = 0, fpu: bool = True, ps2_mouse: bool = True,
                      video: int = 0) -> None:
        """Equipment byte 14h: bit 0 floppy present, bit 1 math coprocessor, bit 2 PS/2 mouse
        (QEMU), bits 5-4 primary display (00 = EGA/VGA), bits 7-6 number of floppies - 1."""
        v = (fpu << 1) | (ps2_mouse << 2) | ((video & 3) << 4)
        if floppies:
            v |= 1 | ((floppies - 1) & 3) << 6
        self.cmos[0x14] = v
        self.update_checksum()

    def set_floppy_types(self, a=None, b=None) -> None:
        """Byte 10h: drive A type in the high nibble, B in the low (4 = 1.44 MB, 3 = 720 KB)."""
        self.cmos[0x10] = FLOPPY_TYPES[a] << 4 | FLOPPY_TYPES[b]
        self.update_checksum()

    def set_hard_disk(self, index: int, cylinders: int, heads: int, sectors: int,
                      translation: int = 1) -> None:
        """Hard disk type and geometry as QEMU/Bochs store them: 12h (type F for drives 0/1),
        19h/1Ah extended type 47, user geometry at 1Bh (drive 0) / 24h (drive 1), and the
        translation byte read by the Bochs BIOS, 39h for ATA devices 0-3 (3Ah for 4-7), 2 bits
        per device (0 none, 1 LBA, 2 large, 3 r-echs)."""
        c = self.cmos
        if index < 2:
            c[0x12] |= 0xF0 if index == 0 else 0x0F
            c[0x19 + index] = 47
            o = 0x1B if index == 0 else 0x24
            cyl = min(cylinders, 0xFFFF)
            c[o + 0], c[o + 1] = cyl & 0xFF, cyl >> 8
            c[o + 2] = heads & 0xFF
            c[o + 3] = c[o + 4] = 0xFF          # write precompensation: none
            c[o + 5] = 0xC0 | ((heads > 8) << 3)
            c[o + 6], c[o + 7] = cyl & 0xFF, cyl >> 8   # landing zone
            c[o + 8] = sectors & 0xFF
        reg = 0x39 + index // 4
        shift = (index & 3) * 2
        c[reg] = (c[reg] & ~(3 << shift)) | (translation & 3) << shift
        self.update_checksum()

    def set_boot_order(self, order: str, check_floppy_signature: bool = True) -> None:
        """Boot devices as QEMU letters (a floppy, c hard disk, d CD-ROM, n network), up to
        three: 3Dh = second << 4 | first, 38h = third << 4 | (1 = skip the floppy boot
        signature check).  SeaBIOS reads 3Dh | (38h & F0h) << 4, one device per nibble."""
        codes = [BOOT_CODES[ch] for ch in order.lower()[:3]] + [0, 0, 0]
        self.cmos[0x3D] = codes[1] << 4 | codes[0]
        self.cmos[0x38] = codes[2] << 4 | (0 if check_floppy_signature else 1)

    def set_cpu_count(self, n: int) -> None:
        """5Fh: number of CPUs - 1 (QEMU; SeaBIOS reads it)."""
        self.cmos[0x5F] = (n - 1) & 0xFF

    def configure(self, memory: int, floppies=(), boot: str = "cad", cpus: int = 1,
                  below_4g: int | None = None) -> None:
        """Set the CMOS fields from a machine configuration (memory in bytes, floppy types
        such as ``["1.44M"]``, QEMU boot letters)."""
        fl = list(floppies)[:2]
        self.set_floppy_types(*(fl + [None, None])[:2])
        self.set_equipment(floppies=len(fl))
        self.set_memory(memory, below_4g)
        self.set_boot_order(boot)
        self.set_cpu_count(cpus)

    # -- Device API ----------------------------------------------------------------------------
    def reset(self) -> None:
        """The RESET pin: clears PIE, AIE, UIE, SQWE and the flags; time and RAM are kept."""
        self._sync_flags()
        self.reg_b &= ~(PIE | AIE | UIE | SQWE)
        self.flags = 0
        if self.irq_asserted:
            self.irq_asserted = False
            if self.irq is not None:
                self.irq.set(8, False)
        self._update_irq()

    def summary(self) -> dict:
        self._sync_flags()
        f = self.current_fields()
        b = self.reg_b
        names = [n for n, bit in (("SET", SET), ("PIE", PIE), ("AIE", AIE), ("UIE", UIE),
                                   ("SQWE", SQWE), ("DM", DM), ("24h", H24)) if b & bit]
        p = self._period()
        rate = f"{HZ / p:g} Hz" if p else "off"
        return {
            "time": f"{f[6]:04d}-{f[5]:02d}-{f[4]:02d} {f[2]:02d}:{f[1]:02d}:{f[0]:02d} "
                    f"dow={f[3]}",
            "A": f"{self.read_register(REG_A):#04x}", "B": f"{b:#04x} {' '.join(names)}",
            "C": f"{self.flags:#04x}", "periodic": rate,
            "divider": "running" if self.divider_running else "stopped/reset",
            "alarm": " ".join(f"{self.cmos[r]:02x}" for r in (HOURS_ALARM, MINUTES_ALARM,
                                                              SECONDS_ALARM)),
            "IRQ8": self.irq_asserted, "index": f"{self.index:#04x}",
            "NMI": "masked" if self.nmi_masked else "enabled",
        }

    def get_state(self) -> dict:
        self._sync_flags()
        return {"version": self.STATE_VERSION, "cmos": bytes(self.cmos).hex(),
                "index": self.index,
                "nmi_masked": self.nmi_masked, "reg_a": self.reg_a, "reg_b": self.reg_b,
                "flags": self.flags, "irq_asserted": self.irq_asserted,
                "origin_q": self.origin_q, "fields": list(self.fields),
                "base_m": self.base_m, "pf_mark": self.pf_mark, "uf_mark": self.uf_mark,
                "af_next": self.af_next}

    def set_state(self, state: dict) -> None:
        self.check_version(state)
        self.cmos = bytearray(bytes.fromhex(state["cmos"]))
        for k in ("index", "nmi_masked", "reg_a", "reg_b", "flags", "irq_asserted",
                  "origin_q", "base_m", "pf_mark", "uf_mark", "af_next"):
            setattr(self, k, state[k])
        self.fields = list(state["fields"])
        if self.irq is not None:
            self.irq.set(8, self.irq_asserted)
        self._update_irq()
