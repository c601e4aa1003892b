"""PIIX4 ACPI power-management I/O: PM1a event/control blocks, the PM timer, GPE0, APM ports.

References: Intel 82371AB PIIX4 data sheet (order no. 290562), section 7.2 "Power Management
I/O Space Registers" (PMSTS 00h, PMEN 02h, PMCNTRL 04h, PMTMR 08h, GPSTS 0Ch, GPEN 0Eh,
PCNTRL 10h, P_LVL2 14h, P_LVL3 15h, GLBSTS 18h, DEVSTS 1Ch, GLBEN 20h, GLBCTL 28h, DEVCTL 2Ch,
GPIREG 30h, GPOREG 34h; the block is 64 bytes at PMBA) and 7.1.x "APMC/APMS" (ports B2h/B3h);
ACPI Specification 1.0b/2.0, 4.7.3 "Fixed hardware registers": PM1_STS (TMR_STS bit 0, BM_STS 4,
GBL_STS 5, PWRBTN_STS 8, SLPBTN_STS 9, RTC_STS 10, WAK_STS 15; write 1 to clear), PM1_EN
(TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, RTC_EN 10), PM1_CNT (SCI_EN 0, BM_RLD 1, GBL_RLS 2,
SLP_TYP 12:10, SLP_EN 13 write-only), PM_TMR (24-bit, 3.579545 MHz, TMR_STS set whenever bit 23
changes), 5.2.5 GPE0 (status then enable halves, write 1 to clear).  Conventions from QEMU
(hw/acpi/piix4.c, hw/acpi/core.c, hw/isa/apm.c): PMBA 0600h when QEMU supplies the ACPI tables
(SeaBIOS programs B000h when it builds its own), GPE0 block at the fixed port AFE0h (4 bytes,
what SeaBIOS's FADT points at), the SCI on IRQ 9, SMI_CMD B2h with ACPI_ENABLE F1h setting
SCI_EN and ACPI_DISABLE F0h clearing it.

PM timer: ``PM_TMR = floor(now_ticks * 3579545 / ips) mod 2**24``: virtual time, no host clock,
free-running across resets (as QEMU's, which counts from the virtual clock).  TMR_STS is derived
lazily: it is set once the counter's bit 23 has changed since it was last cleared; an event is
scheduled for that moment only while TMR_EN and SCI_EN are set and TMR_STS is clear (the SCI).

SCI: level-triggered, asserted while SCI_EN and ((PM1_STS & PM1_EN & (TMR|GBL|PWRBTN|RTC)) or
(GPE0_STS & GPE0_EN)).  The ACPI specification has events raise SMI instead while SCI_EN = 0;
QEMU raises its SCI regardless of SCI_EN.  Aero follows the specification (and has no SMM, so
such an event only sets its status bit).

Sleep states (SLP_EN written with SLP_TYP), the PIIX4 "SUS_TYP" encoding that QEMU uses and that
the Aero DSDT uses too: ``\\_S5 = Package {0, 0, 0, 0}`` - SLP_TYP 0 = soft off (S5): calls
``power_off()``; SLP_TYP 2 = S4 (QEMU's default s4_val, DSDT ``\\_S4 = {2, 2, 0, 0}`` when
offered): also powers off, as QEMU does after suspend to disk; SLP_TYP 1 = S3 (suspend to RAM):
reported to ``sleep_cb(1)`` if given (Aero does not offer \\_S3), else ignored; other types are
ignored.  WAK_STS is set by ``wake()`` (for a machine that resumes from S3).

APM: writing B2h (APMC) stores the value, F1h/F0h set/clear SCI_EN, any other value asks for an
SMI through ``smi_cb(value)`` (the PM function passes it on only when DEVACTB.APMC_EN is set;
with no SMM in Aero the request is counted and dropped); B3h (APMS) is a plain scratch register.
"""

from __future__ import annotations

from .base import Device
from .pci import claim_io

PM_FREQ = 3_579_545
PM_SIZE = 64
SCI_IRQ = 9
APM_CNT_PORT, APM_STS_PORT = 0xB2, 0xB3
GPE0_BASE, GPE0_LEN = 0xAFE0, 4
ACPI_ENABLE, ACPI_DISABLE = 0xF1, 0xF0

# PM1_STS / PM1_EN bits
TMR_STS, BM_STS, GBL_STS, PWRBTN_STS, SLPBTN_STS, RTC_STS, PWRBTNOR_STS, WAK_STS = \
    0x0001, 0x0010, 0x0020, 0x0100, 0x0200, 0x0400, 0x0800, 0x8000
TMR_EN, GBL_EN, PWRBTN_EN, RTC_EN = 0x0001, 0x0020, 0x0100, 0x0400
PM1_SCI_EVENTS = TMR_STS | GBL_STS | PWRBTN_STS | RTC_STS
# PM1_CNT bits
SCI_EN, BM_RLD, GBL_RLS, SLP_EN = 0x0001, 0x0002, 0x0004, 0x2000
SLP_TYP_SHIFT = 10
SLP_TYP_S5, SLP_TYP_S3, SLP_TYP_S4 = 0, 1, 2

PM1_STS, PM1_EN, PM1_CNT, PM_TMR = 0x00, 0x02, 0x04, 0x08


def _masks():
    wmask = bytearray(PM_SIZE)
    w1c = bytearray(PM_SIZE)
    w1c[0], w1c[1] = 0x31, 0x8F                       # PMSTS
    wmask[2], wmask[3] = 0x21, 0x05                   # PMEN
    wmask[4], wmask[5] = 0x03, 0x1C                   # PMCNTRL: SCI_EN BM_RLD | SLP_TYP
    w1c[0x0C], w1c[0x0D] = 0xFF, 0xFF                 # GPSTS
    wmask[0x0E] = wmask[0x0F] = 0xFF                  # GPEN
    for o in range(0x10, 0x14):                       # PCNTRL
        wmask[o] = 0xFF
    w1c[0x18], w1c[0x19] = 0xFF, 0xFF                 # GLBSTS
    for o in range(0x1C, 0x20):                       # DEVSTS
        w1c[o] = 0xFF
    wmask[0x20] = wmask[0x21] = 0xFF                  # GLBEN
    for o in list(range(0x28, 0x30)) + list(range(0x34, 0x38)):   # GLBCTL DEVCTL GPOREG
        wmask[o] = 0xFF
    return bytes(wmask), bytes(w1c)


WMASK, W1CMASK = _masks()


class ACPIPM(Device):
    name = "acpi-pm"
    STATE_VERSION = 1

    def __init__(self, iobus, clock, sci_cb=None, power_off=None, sleep_cb=None, smi_cb=None,
                 gpe_base: int | None = GPE0_BASE):
        self.iobus = iobus
        self.clock = clock
        self.sci_cb = sci_cb                # callable(level): the SCI line (IRQ 9)
        self.power_off = power_off          # callable(): S5 / S4
        self.sleep_cb = sleep_cb            # callable(slp_typ) for S3
        self.smi_cb = smi_cb                # callable(apmc_value) -> bool (SMI delivered?)
        self.gpe_base = gpe_base
        self.base: int | None = None        # where the PM block decodes (None: disabled)
        self.conflict = None                # a base we could not claim
        self.regs = bytearray(PM_SIZE)
        self.GPE0_STS = 0
        self.GPE0_EN = 0
        self.APMC = 0
        self.APMS = 0
        self.tmr_period = 0                 # (counter >> 23) when TMR_STS was last updated
        self.sci = False
        self.smi_requests = 0
        self.sleeps: list[int] = []
        self._event = None
        self.reset()

    # -- wiring ---------------------------------------------------------------------------------
    def register_fixed(self) -> None:
        """The ports that do not move with PMBA: APMC/APMS and the GPE0 block."""
        self.iobus.register(APM_CNT_PORT, 2, self, self._apm_read, self._apm_write)
        if self.gpe_base is not None:
            self.iobus.register(self.gpe_base, GPE0_LEN, self, self._gpe_read, self._gpe_write)

    def map(self, base: int | None) -> None:
        """Decode the 64-byte PM block at ``base`` (PMBA & FFC0h) or nowhere (None)."""
        if base == self.base:
            return
        if self.base is not None:
            self.iobus.unregister(self.base, PM_SIZE)
            self.base = None
        self.conflict = None
        if base is not None:
            if claim_io(self.iobus, base, PM_SIZE, self, self._pm_read, self._pm_write,
                        widths=(1, 2, 4)):
                self.base = base
            else:
                self.conflict = base

    # -- the PM timer -----------------------------------------------------------------------------
    def count(self) -> int:
        """The unwrapped PM timer count at the current virtual time."""
        return self.clock.now() * PM_FREQ // self.clock.ips

    def pm_tmr(self) -> int:
        return self.count() & 0xFFFFFF

    def _sync_tmr(self) -> None:
        k = self.count() >> 23
        if k != self.tmr_period:
            self.tmr_period = k
            self.regs[0] |= TMR_STS

    def _tick_of_count(self, c: int) -> int:
        ips = self.clock.ips
        return -(-c * ips // PM_FREQ)

    # -- registers --------------------------------------------------------------------------------
    def reg16(self, off: int) -> int:
        return self.regs[off] | self.regs[off + 1] << 8

    def _pm_read(self, port: int, size: int) -> int:
        off = port - self.base
        self._sync_tmr()
        tmr = self.pm_tmr()
        v = 0
        for i in range(size):
            o = off + i
            if 8 <= o < 12:
                b = (tmr >> (8 * (o - 8))) & 0xFF
            elif o < PM_SIZE:
                b = self.regs[o]
            else:
                b = 0xFF
            v |= b << (8 * i)
        return v

    def _pm_write(self, port: int, size: int, value: int) -> None:
        off = port - self.base
        self._sync_tmr()                    # a toggle before this write is visible to its W1C
        cnt_high = None
        for i in range(size):
            o = off + i
            if o >= PM_SIZE:
                break
            b = (value >> (8 * i)) & 0xFF
            m = WMASK[o]
            self.regs[o] = ((self.regs[o] & ~m) | (b & m)) & ~(b & W1CMASK[o]) & 0xFF
            if o == PM1_CNT + 1:
                cnt_high = b
        self._update()
        if cnt_high is not None and cnt_high & (SLP_EN >> 8):
            self._sleep((cnt_high >> (SLP_TYP_SHIFT - 8)) & 7)

    def _sleep(self, typ: int) -> None:
        self.sleeps.append(typ)
        if typ in (SLP_TYP_S5, SLP_TYP_S4):
            if self.power_off is not None:
                self.power_off()
        elif typ == SLP_TYP_S3 and self.sleep_cb is not None:
            self.sleep_cb(typ)

    def _gpe_read(self, port: int, size: int) -> int:
        o = port - self.gpe_base
        return ((self.GPE0_STS | self.GPE0_EN << 16) >> (8 * o)) & 0xFF

    def _gpe_write(self, port: int, size: int, value: int) -> None:
        o = port - self.gpe_base
        b = value & 0xFF
        if o < 2:
            self.GPE0_STS &= ~(b << (8 * o))
        else:
            sh = 8 * (o - 2)
            self.GPE0_EN = (self.GPE0_EN & ~(0xFF << sh)) | (b << sh)
        self._update()

    def _apm_read(self, port: int, size: int) -> int:
        return self.APMC if port == APM_CNT_PORT else self.APMS

    def _apm_write(self, port: int, size: int, value: int) -> None:
        v = value & 0xFF
        if port == APM_STS_PORT:
            self.APMS = v
            return
        self.APMC = v
        if v == ACPI_ENABLE:
            self.regs[PM1_CNT] |= SCI_EN
        elif v == ACPI_DISABLE:
            self.regs[PM1_CNT] &= ~SCI_EN
        else:
            self.smi_requests += 1
            if self.smi_cb is not None:
                self.smi_cb(v)
            return
        self._update()

    # -- events -----------------------------------------------------------------------------------
    def press_power_button(self) -> None:
        self._sync_tmr()
        self.regs[1] |= PWRBTN_STS >> 8
        self._update()

    def rtc_alarm(self) -> None:
        self._sync_tmr()
        self.regs[1] |= RTC_STS >> 8
        self._update()

    def wake(self) -> None:
        self.regs[1] |= WAK_STS >> 8
        self._update()

    def set_gpe(self, bit: int) -> None:
        """A general-purpose event: set GPE0_STS bit ``bit`` (0-15)."""
        self.GPE0_STS |= 1 << bit
        self._update()

    def _update(self) -> None:
        sts, en, cnt = self.reg16(PM1_STS), self.reg16(PM1_EN), self.reg16(PM1_CNT)
        level = bool(cnt & SCI_EN) and bool((sts & en & PM1_SCI_EVENTS) or
                                            (self.GPE0_STS & self.GPE0_EN))
        if level != self.sci:
            self.sci = level
            if self.sci_cb is not None:
                self.sci_cb(level)
        want = bool(en & TMR_EN and cnt & SCI_EN and not sts & TMR_STS)
        if self._event is not None:
            self._event.cancel()
            self._event = None
        if want:
            when = self._tick_of_count((self.tmr_period + 1) << 23)
            self._event = self.clock.schedule(when, self._tmr_event, "pm-timer")

    def _tmr_event(self) -> None:
        self._event = None
        self._sync_tmr()
        self._update()

    # -- Device ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self.regs[:] = bytes(PM_SIZE)
        self.GPE0_STS = self.GPE0_EN = 0
        self.APMC = self.APMS = 0
        self.tmr_period = self.count() >> 23
        self._update()

    def summary(self) -> dict:
        self._sync_tmr()
        sts, en, cnt = self.reg16(PM1_STS), self.reg16(PM1_EN), self.reg16(PM1_CNT)
        return {"PMBA": "-" if self.base is None else f"{self.base:#06x}",
                "PM1_STS": f"{sts:04X}", "PM1_EN": f"{en:04X}",
                "PM1_CNT": f"{cnt:04X}" + (" SCI_EN" if cnt & SCI_EN else "") +
                f" SLP_TYP={(cnt >> SLP_TYP_SHIFT) & 7}",
                "PM_TMR": f"{self.pm_tmr():06X}",
                "GPE0": f"STS {self.GPE0_STS:04X} EN {self.GPE0_EN:04X}",
                "SCI": "asserted" if self.sci else "idle",
                "APM": f"CNT {self.APMC:02X} STS {self.APMS:02X}, {self.smi_requests} SMI requests",
                "sleeps": " ".join(map(str, self.sleeps[-8:])) or "-"}

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "base": self.base, "regs": self.regs.hex(),
                "gpe": [self.GPE0_STS, self.GPE0_EN], "apm": [self.APMC, self.APMS],
                "tmr_period": self.tmr_period, "sci": self.sci,
                "smi_requests": self.smi_requests, "sleeps": list(self.sleeps),
                "event": None if self._event is None else self._event.when}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.map(st["base"])
        self.regs[:] = bytes.fromhex(st["regs"])
        self.GPE0_STS, self.GPE0_EN = st["gpe"]
        self.APMC, self.APMS = st["apm"]
        self.tmr_period = st["tmr_period"]
        self.smi_requests = st["smi_requests"]
        self.sleeps = list(st["sleeps"])
        self.sci = not st["sci"]            # force the line to be driven to the saved level
        self._update()
