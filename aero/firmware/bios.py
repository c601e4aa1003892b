"""The Aero BIOS: a high-level-emulation PC BIOS (issue 3, "The Aero BIOS").

The ROM (firmware/aero-bios/aerobios.asm, 64 KiB at F0000 and at the top of 4 GiB) holds only
stubs: each BIOS interrupt vector points to one whose first instruction is ``out 0EBh, al``.
``AeroBIOS`` claims port EBh (nothing else on a PC decodes it) and, when the OUT comes from a
stub (the linear address CS base + EIP is one listed in the ROM's table; the OUT is the first
instruction of its translated block because the stub is entered by a jump, so EIP is its own
address), runs the service in Python on the guest's registers and memory.  Results go back in
the registers and in CF/ZF of the FLAGS image the INT pushed at SS:SP+4 (IRET restores it).  A
service that must wait (INT 16h AH=00h/10h, INT 15h AH=86h, INT 14h) sets the LIVE carry flag:
the stub then executes STI/HLT and retries through its second OUT, so virtual time advances and
interrupts are served while the guest waits.  Writes to port EBh from anywhere else (old software
uses it as an I/O delay) are ignored.

Every BIOS call is reported as a ``BIOSCall`` (vector, function = AH, argument registers, result
registers, CF, ticks waited) to ``AeroBIOS.listener`` if set, and kept in ``AeroBIOS.history``
(the last ``HISTORY`` calls; the timer, keyboard and RTC interrupts are not recorded unless
``record_irqs`` is set).

POST (``post``): IVT, BDA, EBDA (9FC00h, 1 KiB), the 8259A pair (ICW1-4: vectors 08h and 70h;
IRQ 0, 1, 2, 6, 8, 14, 15 unmasked), PIT channel 0 (mode 3, count 0: 18.2 Hz), the 8042 command
byte (translation, IRQ 1), the UARTs (9600 baud 8N1), the RTC (24-hour BCD; the BDA tick count
set from its time of day), the fixed PCI resources (``_init_pci``: VGA BARs with the LFB at
E0000000h, PIIX4 PM at 600h, PIRQ routing, IDE bus master), VGA mode 03h (registers through the
ports with ``vga.program_mode``, the 8x16 font in plane 2), the ACPI and SMBIOS tables
(``place_tables``), then the boot sequence (``boot``: MachineConfig.boot, QEMU's letters a/c/d).

Hardware interrupts: INT 08h (BDA tick count 46Ch with the midnight rollover at 1800B0h and the
flag at 470h, the diskette motor count, then INT 1Ch and EOI in the stub); INT 09h (the stub reads
port 60h and offers the scancode to INT 15h AH=4Fh; the host translates set-1 scancodes with the
shift, Ctrl, Alt, Caps/Num/Scroll Lock and Insert states in 417h/418h/496h into the buffer at
41Eh-43Dh (head/tail 41Ah/41Ch, start/end 480h/482h); Ctrl+Alt+Del resets the machine); INT 70h
(RTC register C read, EOI to both controllers).  BIOS calls are served in real and V86 mode; in
V86 mode with paging the guest addresses are taken as physical (not translated).

The services are split across modules: ``bios_video`` (INT 10h), ``bios_disk`` (INT 13h,
El Torito, boot sector loading); this module has POST, boot, the hardware interrupts and
INT 11h, 12h, 14h, 15h, 16h, 17h, 18h, 19h, 1Ah.

References: IBM PC/AT Technical Reference (BIOS listing: BDA layout, INT 08h/09h/16h/1Ah
semantics), Phoenix "System BIOS for IBM PCs, Compatibles, and EISA Computers" (2nd ed.), Ralf
Brown's Interrupt List (function numbers and return conventions), ACPI 6.5 section 15 (E820),
El Torito Bootable CD-ROM Format Specification 1.0, BIOS Enhanced Disk Drive Specification 3.0
(T13/1572D), VESA BIOS Extension 3.0; PC conventions as in SeaBIOS (what QEMU runs).
"""

from __future__ import annotations

import collections
import os
import struct
from dataclasses import dataclass, field

from ..cpu import flags as F
from ..cpu.state import get_reg, set_reg
from ..devices.base import Device
from ..display.fonts import FONT8, FONT14, FONT16
from .acpi import build_tables
from .bios_disk import DiskServices, Drive
from .bios_video import VideoServices
from .mptable import aero_config as aero_mp_config, place_in_rom
from .smbios import build_smbios

SVC_PORT = 0xEB
ROM_SEG = 0xF000
ROM_BASE = 0xF0000
ROM_PATH = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "firmware",
                                         "aero-bios", "aerobios.bin"))
HISTORY = 512
EBDA_SEG = 0x9FC0
EBDA_KIB = 1
ACPI_SIZE = 60 << 10             # below the SMBIOS range: the ACPI tables (E820 type 3)
SMBIOS_SIZE = 4 << 10            # the top of RAM: the SMBIOS structure table (E820 type 2)
LFB_BASE = 0xE0000000
TICKS_PER_DAY = 0x1800B0
POST_ID = 0x100

# E820 types
E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS = 1, 2, 3, 4

# BDA offsets (from 0x400)
KB_FLAGS, KB_FLAGS2, KB_HEAD, KB_TAIL = 0x17, 0x18, 0x1A, 0x1C
KB_START, KB_END = 0x80, 0x82
KB_FLAGS3 = 0x96

STUB_NAMES = ("dummy_iret", "irq_master", "irq_slave", "halt_forever", "FONT8", "FONT14",
              "FONT16", "config_table", "diskette_params", "hd_param_table", "video_params",
              "rsdp_slot", "vbe_oem", "vbe_vendor", "vbe_product", "vbe_revision", "vbe_modes",
              "smbios_slot", "int09_entry", "vbe_pmi", "vbe_pmi_end")


def _wake_tick(call) -> int | None:
    """When a waiting call's wake-up event fires (None: none scheduled)."""
    ev = call.wake_ev
    return None if ev is None or ev.cancelled else ev.when


@dataclass
class BIOSCall:
    """One BIOS service call: what the debugger shows and the listener receives."""
    vector: int
    function: int                   # AH at entry
    args: dict                      # registers at entry
    result: dict = field(default_factory=dict)   # registers at return
    cf: int = 0                     # carry flag returned
    tick: int = 0                   # virtual time of the call
    waited: int = 0                 # ticks spent waiting in the guest
    deadline: int | None = field(default=None, repr=False)
    wake_ev: object = field(default=None, repr=False, compare=False)

    def __str__(self):
        a = self.args
        return (f"INT {self.vector:02X}h AH={self.function:02X}h AX={a['eax'] & 0xFFFF:04X} "
                f"BX={a['ebx'] & 0xFFFF:04X} CX={a['ecx'] & 0xFFFF:04X} "
                f"DX={a['edx'] & 0xFFFF:04X} -> AX={self.result.get('eax', 0) & 0xFFFF:04X} "
                f"CF={self.cf}")


def parse_rom(rom: bytes) -> tuple[dict, dict]:
    """The ROM's service table: {offset of an OUT: (service id, retry)} and the named offsets."""
    if rom[:8] != b"AEROBIOS":
        raise ValueError("not an Aero BIOS image (no AEROBIOS table)")
    n = struct.unpack_from("<H", rom, 8)[0]
    entries = {}
    for i in range(n):
        sid, off, retry = struct.unpack_from("<HHH", rom, 10 + 6 * i)
        entries[off] = (sid, bool(retry))
    k = rom.index(b"STUBS", 10 + 6 * n)
    k = (k + 5 + 1) & ~1
    names = {}
    for i, name in enumerate(STUB_NAMES):
        names[name] = struct.unpack_from("<H", rom, k + 2 * i)[0]
    return entries, names


# Set-1 scancode translation: scancode -> (normal, shift, ctrl, alt) as (scan << 8) | ascii;
# None: no key code for that combination.
def _kbd_table():
    t = {}
    rows = [(0x02, "1234567890-=", "!@#$%^&*()_+"), (0x10, "qwertyuiop[]", "QWERTYUIOP{}"),
            (0x1E, "asdfghjkl;'`", "ASDFGHJKL:\"~"), (0x2B, "\\zxcvbnm,./", "|ZXCVBNM<>?")]
    ctrl_special = {0x03: 0x0300, 0x07: 0x071E, 0x0C: 0x0C1F, 0x1A: 0x1A1B, 0x1B: 0x1B1D,
                    0x2B: 0x2B1C}
    for first, norm, shift in rows:
        for i, (a, b) in enumerate(zip(norm, shift)):
            sc = first + i
            if a.isalpha():
                ctrl = (sc << 8) | (ord(a) - 0x60)
            else:
                ctrl = ctrl_special.get(sc)
            alt = (sc << 8) if a.isalpha() else None
            if first == 0x02:
                alt = (0x78 + i) << 8
            t[sc] = ((sc << 8) | ord(a), (sc << 8) | ord(b), ctrl, alt)
    t[0x01] = (0x011B, 0x011B, 0x011B, 0x0100)
    t[0x0E] = (0x0E08, 0x0E08, 0x0E7F, 0x0E00)
    t[0x0F] = (0x0F09, 0x0F00, 0x9400, 0xA500)
    t[0x1C] = (0x1C0D, 0x1C0D, 0x1C0A, 0xA600)
    t[0x39] = (0x3920, 0x3920, 0x3920, 0x3920)
    t[0x37] = (0x372A, 0x372A, 0x9600, 0x3700)
    t[0x4A] = (0x4A2D, 0x4A2D, 0x8E00, 0x4A00)
    t[0x4E] = (0x4E2B, 0x4E2B, 0x9000, 0x4E00)
    for i in range(10):                                     # F1-F10
        sc = 0x3B + i
        t[sc] = (sc << 8, (0x54 + i) << 8, (0x5E + i) << 8, (0x68 + i) << 8)
    t[0x57] = (0x8500, 0x8700, 0x8900, 0x8B00)             # F11, F12
    t[0x58] = (0x8600, 0x8800, 0x8A00, 0x8C00)
    return t


KBD = _kbd_table()
# keypad 47h-53h: (NumLock off code, digit); ctrl codes for the cursor keys
KEYPAD = {0x47: "7", 0x48: "8", 0x49: "9", 0x4B: "4", 0x4C: "5", 0x4D: "6", 0x4F: "1",
          0x50: "2", 0x51: "3", 0x52: "0", 0x53: "."}
KEYPAD_CTRL = {0x47: 0x7700, 0x48: 0x8D00, 0x49: 0x8400, 0x4B: 0x7300, 0x4C: 0x8F00,
               0x4D: 0x7400, 0x4F: 0x7500, 0x50: 0x9100, 0x51: 0x7600, 0x52: 0x9200, 0x53: 0x9300}


class AeroBIOS(VideoServices, DiskServices, Device):
    name = "aero-bios"
    STATE_VERSION = 2

    def __init__(self, machine, rom: bytes):
        self.m = machine
        self.cpu = machine.cpu
        self.bus = machine.bus
        self.io = machine.io
        self.clock = machine.clock
        self.rom = bytes(rom)
        self.entries, self.off = parse_rom(self.rom)
        self.listener = None
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.record_irqs = False
        self.log = []                       # POST/boot messages (also sent to port 402h)
        self._call = None
        self._pending: dict[int, BIOSCall] = {}
        self.acpi = None                    # (base, size) of the ACPI tables, when placed
        self.rsdp = None
        self.drives = {}
        self.cd_boot = None                 # El Torito boot information (bios_disk)
        self.boot_drive = None
        self.vbe_mode = None
        self.disk_status = {}
        self.handlers = {0x10: self.int10, 0x11: self.int11, 0x12: self.int12,
                         0x13: self.int13, 0x14: self.int14, 0x15: self.int15,
                         0x16: self.int16, 0x17: self.int17, 0x18: self.int18,
                         0x19: self.int19, 0x1A: self.int1a, 0x08: self.irq0, 0x09: self.irq1,
                         0x70: self.irq8}
        self.io.register(SVC_PORT, 1, self, None, self._svc_out)

    # ------------------------------------------------------------------------------------------
    # Device interface
    # ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        for call in self._pending.values():
            if call.wake_ev is not None:
                call.wake_ev.cancel()
        self._pending.clear()
        self._call = None

    def summary(self) -> dict:
        last = self.history[-1] if self.history else None
        return {"service port": f"{SVC_PORT:#04x}", "calls": len(self.history),
                "last call": str(last) if last else "-",
                "boot drive": f"{self.boot_drive:#04x}" if self.boot_drive is not None else "-",
                "VBE mode": f"{self.vbe_mode:#x}" if self.vbe_mode else "-"}

    def get_state(self) -> dict:
        images, fdds = self.m.images, self.m.fdc.drives
        drives = [[n, d.kind, images.index(d.image), d.cyls, d.heads, d.spt, d.sector_size,
                   d.offset, d.count, d.wp,
                   None if d.fdc_drive is None else fdds.index(d.fdc_drive)]
                  for n, d in sorted(self.drives.items())]
        return {"version": self.STATE_VERSION, "boot_drive": self.boot_drive,
                "vbe_mode": self.vbe_mode,
                "waiting": sorted([k, c.vector, c.function, c.tick, c.deadline, _wake_tick(c)]
                                  for k, c in self._pending.items()),
                "disk_status": dict(self.disk_status), "cd_boot": self.cd_boot,
                "drives": drives, "acpi": list(self.acpi) if self.acpi else None}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.boot_drive = st["boot_drive"]
        self.vbe_mode = st["vbe_mode"]
        images, fdds = self.m.images, self.m.fdc.drives
        self.drives = {n: Drive(kind, images[i], c, h, s, sector_size=ss, offset=off, count=cnt,
                                wp=wp, fdc_drive=None if fdc is None else fdds[fdc])
                       for n, kind, i, c, h, s, ss, off, cnt, wp, fdc in st["drives"]}
        self.acpi = tuple(st["acpi"]) if st["acpi"] else None
        self._pending = {}
        for k, vector, function, tick, deadline, *wake in st["waiting"]:
            call = self._pending[k] = BIOSCall(vector, function, {}, tick=tick,
                                               deadline=deadline)
            # re-arm the wake-up the call had scheduled (a poll may wake before its deadline);
            # states saved before the wake tick was kept have only the deadline
            when = wake[0] if wake else deadline
            if when is not None:
                outer, self._call = self._call, call
                self.wake_at(when if wake else max(when, self.clock.now()))
                self._call = outer
        self.disk_status = dict(st["disk_status"])
        self.cd_boot = st["cd_boot"]

    # ------------------------------------------------------------------------------------------
    # Guest access helpers
    # ------------------------------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return get_reg(self.cpu, name)

    def setreg(self, name: str, value: int) -> None:
        set_reg(self.cpu, name, value)

    @property
    def ah(self) -> int:
        return (self.cpu.R[0] >> 8) & 0xFF

    @property
    def al(self) -> int:
        return self.cpu.R[0] & 0xFF

    def set_ah(self, v: int) -> None:
        self.setreg("ah", v)

    def set_al(self, v: int) -> None:
        self.setreg("al", v)

    def lin(self, seg: int, off: int) -> int:
        return ((seg << 4) + (off & 0xFFFF)) & self.bus.a20_mask

    def rb(self, a: int) -> int:
        return self.bus.read8(a & self.bus.a20_mask)

    def rw(self, a: int) -> int:
        return self.rb(a) | (self.rb(a + 1) << 8)

    def rd(self, a: int) -> int:
        return self.rw(a) | (self.rw(a + 2) << 16)

    def wb(self, a: int, v: int) -> None:
        self.bus.write8(a & self.bus.a20_mask, v & 0xFF)

    def ww(self, a: int, v: int) -> None:
        self.wb(a, v)
        self.wb(a + 1, v >> 8)

    def wd(self, a: int, v: int) -> None:
        self.ww(a, v)
        self.ww(a + 2, v >> 16)

    def read_mem(self, a: int, n: int) -> bytes:
        m = self.bus.a20_mask
        if m == 0xFFFFFFFF or (a + n) < 0x100000:
            return self.bus.read_bytes(a & m, n)
        return bytes(self.rb(a + i) for i in range(n))

    def write_mem(self, a: int, data: bytes) -> None:
        m = self.bus.a20_mask
        if m == 0xFFFFFFFF or (a + len(data)) < 0x100000:
            self.bus.write_bytes(a & m, bytes(data))
        else:
            for i, b in enumerate(data):
                self.wb(a + i, b)

    def bda_b(self, off: int) -> int:
        return self.rb(0x400 + off)

    def bda_w(self, off: int) -> int:
        return self.rw(0x400 + off)

    def set_bda_b(self, off: int, v: int) -> None:
        self.wb(0x400 + off, v)

    def set_bda_w(self, off: int, v: int) -> None:
        self.ww(0x400 + off, v)

    def _flags_addr(self) -> int:
        cpu = self.cpu
        return (cpu.base[2] + ((cpu.R[4] + 4) & 0xFFFF)) & self.bus.a20_mask

    def ret_flags(self, set_bits: int = 0, clear_bits: int = 0) -> None:
        """Edit the FLAGS image the INT pushed (IRET restores it)."""
        a = self._flags_addr()
        self.ww(a, (self.rw(a) & ~clear_bits) | set_bits)

    def set_cf(self, on: bool) -> None:
        self.ret_flags(F.CF, 0) if on else self.ret_flags(0, F.CF)

    def set_zf(self, on: bool) -> None:
        self.ret_flags(F.ZF, 0) if on else self.ret_flags(0, F.ZF)

    def ret_cf(self) -> int:
        return self.rw(self._flags_addr()) & F.CF

    def outb(self, port: int, v: int) -> None:
        self.io.write(port, 1, v & 0xFF)

    def inb(self, port: int) -> int:
        return self.io.read(port, 1)

    def _regs(self) -> dict:
        c = self.cpu
        d = {n: c.R[i] for i, n in enumerate(("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi",
                                               "edi"))}
        d.update(ds=c.sel[3], es=c.sel[0])
        return d

    def message(self, text: str) -> None:
        """A POST/boot message: kept in ``log`` and written to the firmware log port 402h."""
        self.log.append(text)
        for ch in (text + "\n").encode("latin-1", "replace"):
            self.io.write(0x402, 1, ch)

    # ------------------------------------------------------------------------------------------
    # Dispatch
    # ------------------------------------------------------------------------------------------
    def _svc_out(self, port: int, size: int, value: int) -> None:
        cpu = self.cpu
        if cpu.cr0 & 1 and not cpu.flags & F.VM:
            return                                  # not a real-mode BIOS call
        lin = (cpu.base[1] + cpu.insn_eip()) & 0xFFFFFFFF
        if not ROM_BASE <= lin < ROM_BASE + 0x10000:
            return
        ent = self.entries.get(lin - ROM_BASE)
        if ent is None:
            return                                  # an I/O delay write, not a stub
        sid, retry = ent
        if sid == POST_ID:
            self.post()
            return
        handler = self.handlers[sid]
        irq = sid in (0x08, 0x09, 0x70)
        # a call that waits is found again on retry by its stack frame (interrupt handlers,
        # and the services they call, run in between)
        key = (cpu.base[2] + (cpu.R[4] & 0xFFFF)) & 0xFFFFFFFF
        call = self._pending.pop(key, None) if retry else None
        if call is None:
            call = BIOSCall(sid, (cpu.R[0] >> 8) & 0xFF, self._regs(), tick=self.clock.now())
        outer, self._call = self._call, call
        try:
            wait = handler() if irq or sid in (0x18, 0x19) else handler(retry)
        finally:
            self._call = outer
        cpu.set_arith(F.CF if wait else 0, F.CF)
        if wait:
            self._pending[key] = call
            return
        if call.wake_ev is not None:
            call.wake_ev.cancel()
            call.wake_ev = None
        call.result = self._regs()
        call.cf = self.ret_cf() if not irq and sid not in (0x18, 0x19) else 0
        call.waited = self.clock.now() - call.tick
        if irq and not self.record_irqs:
            return
        self.history.append(call)
        if self.listener is not None:
            self.listener(call)

    @property
    def _wait_deadline(self):
        return self._call.deadline

    @_wait_deadline.setter
    def _wait_deadline(self, v):
        self._call.deadline = v

    def wake_at(self, tick: int) -> None:
        """Wake the CPU from the waiting stub's HLT at virtual tick ``tick`` (a wait on time
        with no interrupt due, e.g. INT 15h AH=86h)."""
        call = self._call
        if call.wake_ev is not None:
            call.wake_ev.cancel()
        cpu = self.cpu

        def wake():
            call.wake_ev = None
            cpu.halted = False
            cpu.attn = True
        call.wake_ev = self.clock.schedule(
            tick, wake, f"bios-wake:{call.vector:02x}:{call.function:02x}:{call.tick}")

    def vec(self, n: int, seg: int, off: int) -> None:
        self.ww(4 * n, off)
        self.ww(4 * n + 2, seg)

    # ------------------------------------------------------------------------------------------
    # POST
    # ------------------------------------------------------------------------------------------
    def stub(self, sid: int) -> int:
        for off, (s, retry) in self.entries.items():
            if s == sid and not retry:
                return off
        raise KeyError(sid)

    def post(self) -> None:
        self.reset()
        self.message("Aero BIOS: POST")
        self.write_mem(0, bytes(0x500))                       # IVT and BDA
        self.write_mem(EBDA_SEG << 4, bytes(EBDA_KIB << 10))
        self._init_ivt()
        self._init_bda()
        self._init_pic()
        # PIT channel 0: mode 3 (square wave), count 0 (65536): IRQ 0 at 18.2 Hz
        self.outb(0x43, 0x36)
        self.outb(0x40, 0)
        self.outb(0x40, 0)
        self._init_kbc()
        for u in self.m.uarts:                                # 9600 baud, 8N1, no interrupts
            self.outb(u.base + 3, 0x80)
            self.outb(u.base, 12)
            self.outb(u.base + 1, 0)
            self.outb(u.base + 3, 0x03)
            self.outb(u.base + 1, 0)
        # RTC: divider 32.768 kHz with the 1024 Hz periodic rate, 24-hour BCD, no interrupts
        self.outb(0x70, 0x0A)
        self.outb(0x71, 0x26)
        self.outb(0x70, 0x0B)
        self.outb(0x71, 0x02)
        self.outb(0x70, 0x0C)
        self.inb(0x71)
        self.outb(0x70, 0x0D)
        self.inb(0x71)
        self.wd(0x46C, self.rtc_ticks())
        self._init_pci()
        self.vbe_mode = None
        self.set_video_mode(0x03)
        self.place_tables()
        self.build_drive_map()
        self.boot()

    # PCI configuration mechanism #1 (ports CF8h/CFCh)
    def pci_write(self, dev: int, fn: int, off: int, size: int, value: int) -> None:
        self.io.write(0xCF8, 4, 0x80000000 | (dev << 11) | (fn << 8) | (off & 0xFC))
        self.io.write(0xCFC + (off & 3), size, value)

    def pci_read(self, dev: int, fn: int, off: int, size: int) -> int:
        self.io.write(0xCF8, 4, 0x80000000 | (dev << 11) | (fn << 8) | (off & 0xFC))
        return self.io.read(0xCFC + (off & 3), size)

    def _init_pci(self) -> None:
        """The fixed PCI resources of this board, as SeaBIOS assigns them on QEMU's pc machine:
        VGA (00:02.0) BAR0 = the LFB at E0000000h, BAR2 = E1000000h, memory decode on; PIIX4 PM
        (00:01.3) PMBA = 600h with PMREGMISC.PMIOSE (the ACPI FADT points there), SCI on IRQ 9;
        PIIX3 PIRQA-D routed to IRQ 10, 10, 11, 11 (level-triggered in the ELCR); the PIIX IDE
        (00:01.1) bus-master block at C000h with I/O decode and bus mastering on.  Without a
        PCI host bridge (no CF8h decoder) the LFB is mapped directly."""
        m = self.m
        if 0xCF8 not in self.io.owner:
            m.vga.map_lfb(m.bus, LFB_BASE)
            return
        if self.pci_read(2, 0, 0, 2) == 0x1234:
            self.pci_write(2, 0, 0x10, 4, LFB_BASE)
            self.pci_write(2, 0, 0x18, 4, LFB_BASE + (16 << 20))
            self.pci_write(2, 0, 0x04, 2, self.pci_read(2, 0, 0x04, 2) | 0x0003)
        if self.pci_read(1, 3, 0, 2) == 0x8086:
            self.pci_write(1, 3, 0x40, 4, 0x0601)
            self.pci_write(1, 3, 0x80, 1, 0x01)
            self.pci_write(1, 3, 0x3C, 1, 9)
            self.pci_write(1, 3, 0x04, 2, self.pci_read(1, 3, 0x04, 2) | 0x0001)
        if self.pci_read(1, 0, 0, 2) == 0x8086:
            for i, irq in enumerate((10, 10, 11, 11)):
                self.pci_write(1, 0, 0x60 + i, 1, irq)
            self.outb(0x4D0, 0x00)
            self.outb(0x4D1, 0x0C | 0x02)                     # IRQ 9 (SCI), 10, 11: level
        if self.pci_read(1, 1, 0, 2) == 0x8086:
            self.pci_write(1, 1, 0x20, 4, 0xC001)
            self.pci_write(1, 1, 0x04, 2, self.pci_read(1, 1, 0x04, 2) | 0x0005)

    def _init_ivt(self) -> None:
        o = self.off
        for n in range(256):
            self.vec(n, ROM_SEG, o["dummy_iret"])
        for n in range(0x08, 0x10):
            self.vec(n, ROM_SEG, o["irq_master"])
        for n in range(0x70, 0x78):
            self.vec(n, ROM_SEG, o["irq_slave"])
        for sid in (0x08, 0x09, 0x70, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                    0x19, 0x1A):
            self.vec(sid, ROM_SEG, self.stub(sid))
        self.vec(0x09, ROM_SEG, o["int09_entry"])
        self.vec(0x40, ROM_SEG, self.stub(0x13))             # the diskette service
        self.vec(0x1D, ROM_SEG, o["video_params"])
        self.vec(0x1E, ROM_SEG, o["diskette_params"])
        self.vec(0x1F, ROM_SEG, o["FONT8"] + 1024)           # 8x8 glyphs 80h-FFh
        self.vec(0x43, ROM_SEG, o["FONT8"])
        self.vec(0x41, 0, 0)
        self.vec(0x46, 0, 0)

    def equipment(self) -> int:
        nflop = sum(1 for d in self.m.fdc.drives[:2] if d.image is not None)
        eq = 0x0004 | 0x0020 | (len(self.m.uarts) << 9)      # PS/2 mouse, 80x25 colour, COMs
        if nflop:
            eq |= 0x0001 | ((nflop - 1) << 6)
        return eq

    def _init_bda(self) -> None:
        for i, base in enumerate((0x3F8, 0x2F8, 0x3E8, 0x2E8)[:len(self.m.uarts)]):
            self.set_bda_w(2 * i, base)
            self.set_bda_b(0x7C + i, 1)                       # serial timeouts
        self.set_bda_w(0x0E, EBDA_SEG)
        self.set_bda_w(0x10, self.equipment())
        self.set_bda_w(0x13, 640 - EBDA_KIB)
        self.set_bda_w(KB_HEAD, 0x1E)
        self.set_bda_w(KB_TAIL, 0x1E)
        self.set_bda_w(KB_START, 0x1E)
        self.set_bda_w(KB_END, 0x3E)
        self.set_bda_b(KB_FLAGS3, 0x10)                       # 101/102-key keyboard
        self.set_bda_b(0x75, sum(1 for d in self.m.ide[0].devices if d is not None
                                 and hasattr(d, "geometry")))
        self.wb(EBDA_SEG << 4, EBDA_KIB)

    def _init_pic(self) -> None:
        for base, vector, icw3 in ((0x20, 0x08, 0x04), (0xA0, 0x70, 0x02)):
            self.outb(base, 0x11)                             # ICW1: edge, cascade, ICW4
            self.outb(base + 1, vector)                       # ICW2
            self.outb(base + 1, icw3)                         # ICW3
            self.outb(base + 1, 0x01)                         # ICW4: 8086 mode
        self.outb(0x21, 0xB8)                                 # unmask IRQ 0, 1, 2, 6
        self.outb(0xA1, 0x3E)                                 # unmask IRQ 8, 14, 15

    def _init_kbc(self) -> None:
        while self.inb(0x64) & 1:                             # drain the output buffer
            self.inb(0x60)
        self.outb(0x64, 0x60)                                 # write command byte:
        self.outb(0x60, 0x45)                                 # XLAT, SYS, INT (IRQ 1)
        self.outb(0x64, 0xAE)                                 # enable the keyboard interface
        while self.inb(0x64) & 1:
            self.inb(0x60)

    # ------------------------------------------------------------------------------------------
    # ACPI tables
    # ------------------------------------------------------------------------------------------
    def acpi_range(self) -> tuple[int, int]:
        ram = self.bus.ram_size
        return ram - SMBIOS_SIZE - ACPI_SIZE, ACPI_SIZE

    def smbios_range(self) -> tuple[int, int]:
        return self.bus.ram_size - SMBIOS_SIZE, SMBIOS_SIZE

    def place_tables(self) -> None:
        """Copy the ACPI tables (aero.firmware.acpi.build_tables, built at install time because
        their addresses depend on the RAM size) into the reserved range below the top of RAM
        (E820 type 3) and the SMBIOS structure table (aero.firmware.smbios) into the top 4 KiB
        (E820 type 2).  The RSDP and the SMBIOS entry point are in the ROM (F0000-FFFFF),
        written into the image by ``install_aero_bios``."""
        if self.acpi_blob is not None:
            base, size = self.acpi_range()
            self.write_mem(base, self.acpi_blob + bytes(size - len(self.acpi_blob)))
            self.acpi = (base, size)
        if self.smbios_table is not None:
            base, size = self.smbios_range()
            self.write_mem(base, self.smbios_table + bytes(size - len(self.smbios_table)))

    acpi_blob = None
    smbios_table = None

    def memory_map(self) -> list[tuple[int, int, int]]:
        """The E820 map: (base, length, type)."""
        ram = self.bus.ram_size
        ebda = EBDA_SEG << 4
        acpi_base, acpi_size = self.acpi_range()
        top = acpi_base if self.acpi_blob is not None else (
            ram - SMBIOS_SIZE if self.smbios_table is not None else ram)
        mm = [(0, ebda, E820_RAM), (ebda, 0xA0000 - ebda, E820_RESERVED),
              (0xF0000, 0x10000, E820_RESERVED), (0x100000, top - 0x100000, E820_RAM)]
        if self.acpi_blob is not None:
            mm.append((acpi_base, acpi_size, E820_ACPI))
        if self.smbios_table is not None:
            mm.append((*self.smbios_range(), E820_RESERVED))
        n = len(self.m.bios_image or self.rom)
        mm.append(((1 << 32) - n, n, E820_RESERVED))
        return mm

    # ------------------------------------------------------------------------------------------
    # Boot
    # ------------------------------------------------------------------------------------------
    # A boot entry tried before the drives, as QEMU's option ROMs with boot index 0 are:
    # ``aero.build`` sets it for --kernel (aero.firmware.multiboot.load_after_post).  Called at
    # the end of every POST; returns (CS, IP, SS, SP): the real-mode entry, and where to push it.
    boot_first = None

    def boot(self) -> None:
        """Try the devices in MachineConfig.boot order; jump to the first that boots (through
        the stub's RETF), else print "No bootable device." and halt."""
        if self.boot_first is not None:
            seg, off, ss, sp = self.boot_first()
            self._enter(seg, off, None, ss, sp)
            return
        for letter in self.m.config.boot.lower():
            entry = None
            if letter == "a":
                entry = self.load_floppy_boot()
            elif letter == "c":
                entry = self.load_hd_boot()
            elif letter == "d":
                entry = self.load_cd_boot()
            if entry is not None:
                seg, off, drive = entry
                self.boot_drive = drive
                self._enter(seg, off, drive)
                return
        self.message("No bootable device.")
        self.teletype_string("No bootable device.\r\n")
        self._enter(ROM_SEG, self.off["halt_forever"], None)

    def _enter(self, seg: int, off: int, drive, ss: int = 0, sp: int = 0x7C00 - 4) -> None:
        """Set the boot registers and push seg:off at SS:SP for the stub's RETF."""
        cpu = self.cpu
        for r in ("eax", "ebx", "ecx", "esi", "edi", "ebp"):
            self.setreg(r, 0)
        self.setreg("edx", drive or 0)
        for s in ("ds", "es"):
            self.setreg(s, 0)
        self.setreg("ss", ss)
        self.setreg("esp", sp)
        self.ww(self.lin(ss, sp), off)
        self.ww(self.lin(ss, sp + 2), seg)
        cpu.write_flags(F.IF if drive is not None else 0, F.IF | F.DF | F.TF)

    def int18(self) -> bool:
        self.message("No bootable device.")
        self.teletype_string("No bootable device.\r\n")
        return False

    def int19(self) -> bool:
        self.build_drive_map()
        self.boot()
        return False

    # ------------------------------------------------------------------------------------------
    # Hardware interrupts
    # ------------------------------------------------------------------------------------------
    def irq0(self) -> bool:
        t = self.rd(0x46C) + 1
        if t >= TICKS_PER_DAY:
            t = 0
            self.set_bda_b(0x70, 1)
        self.wd(0x46C, t)
        motor = self.bda_b(0x40)
        if motor:
            self.set_bda_b(0x40, motor - 1)
            if motor == 1:
                self.set_bda_b(0x3F, self.bda_b(0x3F) & 0xF0)
                self.outb(0x3F2, 0x0C)                        # motors off, controller enabled
        return False

    def irq8(self) -> bool:
        self.outb(0x70, 0x0C)
        self.inb(0x71)
        return False

    def irq1(self) -> bool:
        self.keyboard_scancode(self.al)                      # the stub read port 60h
        return False

    def keyboard_scancode(self, sc: int) -> None:
        """Set-1 scancode processing (INT 09h): shift states in 417h/418h/496h, key codes into
        the buffer at 41Eh."""
        f1, f2, f3 = self.bda_b(KB_FLAGS), self.bda_b(KB_FLAGS2), self.bda_b(KB_FLAGS3)
        if sc in (0xFA, 0xFE, 0x00, 0xFF):                     # ACK, resend, errors
            return
        if sc == 0xE0:
            self.set_bda_b(KB_FLAGS3, f3 | 0x02)
            return
        if sc == 0xE1:
            self.set_bda_b(KB_FLAGS3, f3 | 0x01)
            return
        e0 = bool(f3 & 0x02)
        e1 = bool(f3 & 0x01)
        self.set_bda_b(KB_FLAGS3, f3 & ~0x03)
        if e1:
            return                                            # Pause: ignored
        up = bool(sc & 0x80)
        code = sc & 0x7F
        if e0 and code in (0x2A, 0x36):
            return                                            # fake shifts
        mods = {0x2A: (0x02, None), 0x36: (0x01, None), 0x1D: (0x04, 0x01),
                0x38: (0x08, 0x02)}
        if code in mods:
            bit, b2 = mods[code]
            if e0 and code in (0x1D, 0x38):
                b2 = None
                f3b = 0x04 if code == 0x1D else 0x08
                f3n = self.bda_b(KB_FLAGS3)
                self.set_bda_b(KB_FLAGS3, f3n & ~f3b if up else f3n | f3b)
            if up:
                f1 &= ~bit
                if b2:
                    f2 &= ~b2
                # the combined bit stays while the other side is down
                if code == 0x1D and (f2 & 0x01 or self.bda_b(KB_FLAGS3) & 0x04):
                    f1 |= 0x04
                if code == 0x38 and (f2 & 0x02 or self.bda_b(KB_FLAGS3) & 0x08):
                    f1 |= 0x08
            else:
                f1 |= bit
                if b2:
                    f2 |= b2
            self.set_bda_b(KB_FLAGS, f1)
            self.set_bda_b(KB_FLAGS2, f2)
            return
        toggles = {0x3A: (0x40, 0x40), 0x45: (0x20, 0x20), 0x46: (0x10, 0x10)}
        if code in toggles and not e0:
            tbit, hbit = toggles[code]
            if up:
                f2 &= ~hbit
            else:
                if not f2 & hbit:
                    f1 ^= tbit
                f2 |= hbit
            self.set_bda_b(KB_FLAGS, f1)
            self.set_bda_b(KB_FLAGS2, f2)
            return
        if up:
            if code == 0x52:
                self.set_bda_b(KB_FLAGS2, f2 & ~0x80)
            return
        shift = bool(f1 & 0x03)
        ctrl = bool(f1 & 0x04)
        alt = bool(f1 & 0x08)
        key = None
        if code == 0x53 and ctrl and alt:                     # Ctrl+Alt+Del: warm reboot
            self.set_bda_w(0x72, 0x1234)
            self.m.request_reset()
            return
        if code in KEYPAD:
            if code == 0x52:
                if not f2 & 0x80:
                    f1 ^= 0x80
                    self.set_bda_b(KB_FLAGS, f1)
                self.set_bda_b(KB_FLAGS2, f2 | 0x80)
            if e0:
                key = (code << 8) | 0xE0
                if ctrl:
                    key = KEYPAD_CTRL[code]
                elif alt:
                    key = (code + 0x50) << 8
            elif ctrl:
                key = KEYPAD_CTRL[code]
            elif alt:
                key = None                                    # Alt+keypad: ASCII entry (not kept)
            elif bool(f1 & 0x20) != shift:
                key = (code << 8) | ord(KEYPAD[code])
            else:
                key = code << 8
        elif e0 and code == 0x1C:
            key = 0xE00D if not ctrl else 0xE00A
        elif e0 and code == 0x35:
            key = 0xE02F
        elif code in KBD:
            normal, shifted, ctl, alt_c = KBD[code]
            if alt:
                key = alt_c
            elif ctrl:
                key = ctl
            else:
                ch = normal & 0xFF
                use_shift = shift
                if 0x61 <= ch <= 0x7A and f1 & 0x40:
                    use_shift = not use_shift
                key = shifted if use_shift else normal
        if key is not None:
            self.put_key(key)

    def put_key(self, key: int) -> bool:
        head, tail = self.bda_w(KB_HEAD), self.bda_w(KB_TAIL)
        start, end = self.bda_w(KB_START) or 0x1E, self.bda_w(KB_END) or 0x3E
        nxt = tail + 2
        if nxt >= end:
            nxt = start
        if nxt == head:
            return False                                      # buffer full
        self.ww(0x400 + tail, key)
        self.set_bda_w(KB_TAIL, nxt)
        return True

    def _get_key(self, remove: bool):
        head, tail = self.bda_w(KB_HEAD), self.bda_w(KB_TAIL)
        if head == tail:
            return None
        key = self.rw(0x400 + head)
        if remove:
            start, end = self.bda_w(KB_START) or 0x1E, self.bda_w(KB_END) or 0x3E
            head += 2
            if head >= end:
                head = start
            self.set_bda_w(KB_HEAD, head)
        return key

    # ------------------------------------------------------------------------------------------
    # INT 11h, 12h, 17h
    # ------------------------------------------------------------------------------------------
    def int11(self, retry=False) -> bool:
        self.setreg("ax", self.bda_w(0x10))
        return False

    def int12(self, retry=False) -> bool:
        self.setreg("ax", self.bda_w(0x13))
        return False

    def int17(self, retry=False) -> bool:
        # no parallel ports: every printer call fails (as SeaBIOS does for a missing port)
        self.set_cf(True)
        return False

    # ------------------------------------------------------------------------------------------
    # INT 14h: serial ports (through the 16550A registers)
    # ------------------------------------------------------------------------------------------
    BAUD_DIVISORS = (1047, 768, 384, 192, 96, 48, 24, 12)    # 110 .. 9600 baud

    def int14(self, retry=False) -> bool:
        ah, dx = self.ah, self.reg("dx")
        base = self.bda_w(2 * dx) if dx < 4 else 0
        if not base:
            self.set_cf(True)
            return False
        self.set_cf(False)
        u = next((u for u in self.m.uarts if u.base == base), None)
        if ah == 0x00:
            al = self.al
            div = self.BAUD_DIVISORS[al >> 5]
            self.outb(base + 3, 0x80)
            self.outb(base, div & 0xFF)
            self.outb(base + 1, div >> 8)
            self.outb(base + 3, al & 0x1F)
            self.outb(base + 1, 0)                            # no interrupts
            self.setreg("ax", (self.inb(base + 5) << 8) | self.inb(base + 6))
        elif ah == 0x01:
            if not retry:
                self._wait_deadline = self.clock.now() + self.clock.ticks_for_ns(
                    (self.bda_b(0x7C + dx) or 1) * 1_000_000_000)
            lsr = self.inb(base + 5)
            if not lsr & 0x20:                                # THR not empty: wait
                if self.clock.now() < self._wait_deadline:
                    self.wake_at(self.clock.now() + (u.char_ticks() if u else 1000))
                    return True
                self.set_ah(lsr | 0x80)
                return False
            self.outb(base, self.al)
            self.set_ah(self.inb(base + 5))
        elif ah == 0x02:
            if not retry:
                self._wait_deadline = self.clock.now() + self.clock.ticks_for_ns(
                    (self.bda_b(0x7C + dx) or 1) * 1_000_000_000)
            lsr = self.inb(base + 5)
            if not lsr & 0x01:
                if self.clock.now() < self._wait_deadline:
                    self.wake_at(self.clock.now() + (u.char_ticks() if u else 1000))
                    return True
                self.set_ah(lsr | 0x80)
                return False
            self.setreg("ax", ((lsr & 0x1E) << 8) | self.inb(base))
        elif ah == 0x03:
            self.setreg("ax", (self.inb(base + 5) << 8) | self.inb(base + 6))
        else:
            self.set_cf(True)
        return False

    # ------------------------------------------------------------------------------------------
    # INT 15h: system services
    # ------------------------------------------------------------------------------------------
    def int15(self, retry=False) -> bool:
        ah, ax = self.ah, self.reg("ax")
        ok = lambda: self.set_cf(False)

        def fail(code=0x86):
            self.set_ah(code)
            self.set_cf(True)
        if ah == 0x4F:                                        # keyboard intercept: keep the key
            self.set_cf(True)
        elif ah in (0x90, 0x91):
            self.set_ah(0)
            ok()
        elif ah == 0x86:
            now = self.clock.now()
            if not retry:
                us = (self.reg("cx") << 16) | self.reg("dx")
                self._wait_deadline = now + self.clock.ticks_for_ns(us * 1000)
            if now < self._wait_deadline:
                self.wake_at(self._wait_deadline)
                return True
            self.set_ah(0)
            ok()
        elif ah == 0x87:
            self._block_move()
        elif ah == 0x88:
            ext = (self.bus.ram_size >> 10) - 1024
            self.setreg("ax", min(ext, 0xFFFF))
            ok()
        elif ax == 0xE801:
            top = self.memory_map()[3]
            end = top[0] + top[1]
            below16 = min(end, 16 << 20) - (1 << 20)
            above16 = max(0, end - (16 << 20))
            for r in ("ax", "cx"):
                self.setreg(r, below16 >> 10)
            for r in ("bx", "dx"):
                self.setreg(r, above16 >> 16)
            ok()
        elif ax == 0xE820 and self.reg("edx") == 0x534D4150:
            self._e820()
        elif ah == 0x24:
            al = self.al
            if al == 0x00:
                self.m.bus.set_a20(False)
                self.set_ah(0)
                ok()
            elif al == 0x01:
                self.m.bus.set_a20(True)
                self.set_ah(0)
                ok()
            elif al == 0x02:
                self.setreg("ax", 1 if self.bus.a20 else 0)
                ok()
            elif al == 0x03:
                self.setreg("bx", 0x0003)                     # keyboard controller and port 92h
                self.set_ah(0)
                ok()
            else:
                fail()
        elif ah == 0xC0:
            self.setreg("es", ROM_SEG)
            self.setreg("bx", self.off["config_table"])
            self.set_ah(0)
            ok()
        elif ah == 0xC1:
            self.setreg("es", EBDA_SEG)
            ok()
        else:
            fail()
        return False

    def _e820(self) -> None:
        mm = self.memory_map()
        i = self.reg("ebx")
        size = self.reg("ecx")
        if i >= len(mm) or size < 20:
            self.set_ah(0x86)
            self.set_cf(True)
            return
        base, length, kind = mm[i]
        a = self.lin(self.reg("es"), self.reg("di"))
        rec = struct.pack("<QQI", base, length, kind)
        n = 20
        if size >= 24:
            rec += struct.pack("<I", 1)                       # ACPI 3.0 extended attributes
            n = 24
        self.write_mem(a, rec)
        self.setreg("eax", 0x534D4150)
        self.setreg("ecx", n)
        self.setreg("ebx", 0 if i + 1 >= len(mm) else i + 1)
        self.set_cf(False)

    def _block_move(self) -> None:
        """INT 15h AH=87h: copy CX words between the descriptors at ES:SI+10h (source) and
        ES:SI+18h (destination).  A20 is enabled for the move, as a BIOS does."""
        gdt = self.lin(self.reg("es"), self.reg("si"))
        n = self.reg("cx") * 2

        def base(d):
            return self.rb(d + 2) | (self.rb(d + 3) << 8) | (self.rb(d + 4) << 16) | (
                self.rb(d + 7) << 24)
        src, dst = base(gdt + 0x10), base(gdt + 0x18)
        if n > 0x10000:
            self.set_ah(0x01)
            self.set_cf(True)
            return
        self.bus.write_bytes(dst, self.bus.read_bytes(src, n))
        self.set_ah(0)
        self.set_cf(False)

    # ------------------------------------------------------------------------------------------
    # INT 16h: keyboard
    # ------------------------------------------------------------------------------------------
    def int16(self, retry=False) -> bool:
        ah = self.ah
        if ah in (0x00, 0x10):
            key = self._get_key(True)
            if key is None:
                return True                                   # wait in the guest (HLT)
            if ah == 0x00 and key & 0xFF == 0xE0:
                key &= 0xFF00
            self.setreg("ax", key)
        elif ah in (0x01, 0x11):
            key = self._get_key(False)
            if key is None:
                self.set_zf(True)
            else:
                if ah == 0x01 and key & 0xFF == 0xE0:
                    key &= 0xFF00
                self.setreg("ax", key)
                self.set_zf(False)
        elif ah == 0x02:
            self.set_al(self.bda_b(KB_FLAGS))
        elif ah == 0x12:
            f2, f3 = self.bda_b(KB_FLAGS2), self.bda_b(KB_FLAGS3)
            # left Ctrl/Alt (418h), right Ctrl/Alt (496h), Scroll/Num/Caps held, SysRq held
            hi = (f2 & 0x73) | (f3 & 0x0C) | ((f2 & 0x04) << 5)
            self.setreg("ax", (hi << 8) | self.bda_b(KB_FLAGS))
        elif ah == 0x03:
            pass
        elif ah == 0x05:
            self.set_al(0 if self.put_key(self.reg("cx")) else 1)
        elif ah == 0x09:
            self.set_al(0x30)                                 # 10h-12h supported
        elif ah == 0x0A:
            self.setreg("bx", 0xAB41)                         # MF2 keyboard, translation on
        return False

    # ------------------------------------------------------------------------------------------
    # INT 1Ah: time of day and RTC
    # ------------------------------------------------------------------------------------------
    def _cmos(self, reg: int) -> int:
        self.outb(0x70, reg)
        return self.inb(0x71)

    def _cmos_w(self, reg: int, v: int) -> None:
        self.outb(0x70, reg)
        self.outb(0x71, v)

    def rtc_ticks(self) -> int:
        """The time of day from the RTC as timer ticks since midnight (PIT input 1.193182 MHz
        divided by 65536)."""
        def bcd(v):
            return (v >> 4) * 10 + (v & 0x0F)
        binary = self._cmos(0x0B) & 0x04
        conv = (lambda v: v) if binary else bcd
        secs = conv(self._cmos(0x04) & 0x7F) * 3600 + conv(self._cmos(0x02)) * 60 + conv(
            self._cmos(0x00))
        return min(TICKS_PER_DAY - 1, secs * 1193182 // 65536)

    def int1a(self, retry=False) -> bool:
        ah = self.ah
        if ah == 0x00:
            t = self.rd(0x46C)
            self.setreg("cx", t >> 16)
            self.setreg("dx", t & 0xFFFF)
            self.set_al(self.bda_b(0x70))
            self.set_bda_b(0x70, 0)
            self.set_cf(False)
        elif ah == 0x01:
            self.wd(0x46C, (self.reg("cx") << 16) | self.reg("dx"))
            self.set_bda_b(0x70, 0)
            self.set_cf(False)
        elif ah == 0x02:
            self.setreg("ch", self._cmos(0x04))
            self.setreg("cl", self._cmos(0x02))
            self.setreg("dh", self._cmos(0x00))
            self.setreg("dl", self._cmos(0x0B) & 1)
            self.set_ah(0)
            self.set_cf(False)
        elif ah == 0x03:
            b = self._cmos(0x0B)
            self._cmos_w(0x0B, b | 0x80)
            self._cmos_w(0x04, self.reg("ch"))
            self._cmos_w(0x02, self.reg("cl"))
            self._cmos_w(0x00, self.reg("dh"))
            self._cmos_w(0x0B, (b & 0x7E) | (self.reg("dl") & 1) | 0x02)
            self.set_ah(0)
            self.set_cf(False)
        elif ah == 0x04:
            self.setreg("ch", self._cmos(0x32))
            self.setreg("cl", self._cmos(0x09))
            self.setreg("dh", self._cmos(0x08))
            self.setreg("dl", self._cmos(0x07))
            self.set_ah(0)
            self.set_cf(False)
        elif ah == 0x05:
            b = self._cmos(0x0B)
            self._cmos_w(0x0B, b | 0x80)
            self._cmos_w(0x32, self.reg("ch"))
            self._cmos_w(0x09, self.reg("cl"))
            self._cmos_w(0x08, self.reg("dh"))
            self._cmos_w(0x07, self.reg("dl"))
            self._cmos_w(0x0B, b & 0x7F)
            self.set_ah(0)
            self.set_cf(False)
        else:
            self.set_cf(True)
        return False


def load_rom(path: str = ROM_PATH) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def build_rom(rom: bytes, acpi_rsdp: bytes | None = None,
              smbios_eps: bytes | None = None) -> bytes:
    """The ROM image with the fonts (aero.display.fonts), the RSDP and the SMBIOS entry point
    filled in."""
    _, off = parse_rom(rom)
    img = bytearray(rom)
    img[off["FONT8"]: off["FONT8"] + 2048] = FONT8
    img[off["FONT14"]: off["FONT14"] + 3584] = FONT14
    img[off["FONT16"]: off["FONT16"] + 4096] = FONT16
    img[0xFA6E: 0xFA6E + 1024] = FONT8[:1024]
    if acpi_rsdp is not None:
        img[off["rsdp_slot"]: off["rsdp_slot"] + len(acpi_rsdp)] = acpi_rsdp
    if smbios_eps is not None:
        img[off["smbios_slot"]: off["smbios_slot"] + len(smbios_eps)] = smbios_eps
    return bytes(img)


def install_aero_bios(machine, rom_path: str = ROM_PATH) -> AeroBIOS:
    """Load the Aero BIOS into ``machine`` (m.load_bios), claim the service port and return the
    service object.  The ACPI tables are built here (their place depends on the RAM size)."""
    rom = load_rom(rom_path)
    bios = AeroBIOS(machine, rom)
    rsdp = None
    base, _ = bios.acpi_range()
    serial = tuple((u.base, u.irq_line) for u in machine.uarts)
    tables = build_tables(base, pci_hole_start=max(machine.bus.ram_size, 0xE0000000),
                          serial_ports=serial, extra_tables=machine.acpi_extra_tables)
    if len(tables.blob) <= ACPI_SIZE:
        bios.acpi_blob = tables.blob
        rsdp = tables.rsdp
        bios.rsdp = (ROM_BASE + bios.off["rsdp_slot"], rsdp)
    eps = None
    base, size = bios.smbios_range()
    sm = build_smbios(base, machine.bus.ram_size, bios_release_date="11/26/2026")
    if len(sm.table) <= size:
        bios.smbios_table = sm.table
        eps = sm.entry_point
    image = build_rom(rom, rsdp, eps)
    bios.mptable_address = None
    if machine.lapic is not None:
        # APIC machines: the MP table (aero.firmware.mptable), floating pointer and
        # configuration table, in the ROM's free space below the table at F000:E6F5
        image, bios.mptable_address = place_in_rom(image, ROM_BASE, bios.off["config_table"],
                                                   aero_mp_config(machine))
    machine.load_bios(image)
    bios.rom = machine.bios_image
    machine.aero_bios = bios
    return bios
