"""Intel 8237A DMA controller pair with the PC/AT page registers.

Reference: Intel 8237A High Performance Programmable DMA Controller data sheet: register
description (Current/Base Address and Word Count registers reached through the byte pointer
flip-flop, Command register (bit 2 controller disable), Mode register (bits 0-1 channel, 2-3
transfer type 00 verify / 01 write (to memory) / 10 read (from memory), bit 4 autoinitialize,
bit 5 address decrement, bits 6-7 demand / single / block / cascade), Request register, Mask
register (single bit and all bits forms), Status register (bits 0-3 TC reached, cleared by
reading; bits 4-7 request pending), Temporary register), the software commands (Clear Byte
Pointer Flip-Flop, Master Clear, Clear Mask Register) and Terminal Count behaviour (the word
count rolls from 0 to FFFFh; with autoinitialize the current registers reload from the base
registers, without it the channel's mask bit is set).

PC/AT wiring (IBM PC AT Technical Reference, System Board "DMA Controller"): DMA1 at ports
0x00-0x0F serves 8-bit channels 0-3; DMA2 at 0xC0-0xDE (even ports; the odd ones alias) serves
16-bit channels 4-7, transfers words and shifts its address left by one (address bits A1-A16,
so a transfer cannot cross a 128 KiB boundary); DMA1 is cascaded into DMA2 channel 4, so DMA1
transfers need channel 4 unmasked.  Page registers (address bits 16-23): 0x87 ch0, 0x83 ch1,
0x81 ch2, 0x82 ch3, 0x8B ch5, 0x89 ch6, 0x8A ch7 (0x8F ch4, the refresh page; 0x84-0x86, 0x88,
0x8C-0x8E are plain scratch registers).  Port 0x80 belongs to the POST code device.

Devices move data with ``transfer(channel, data_or_length, direction)``: the whole request is
done at once (single, block and demand modes differ only in bus timing, not modelled), it stops
at TC, and the mode register (not the device) decides what happens to memory.  Memory-to-memory
transfers (command bit 0, DMA1 channels 0/1) are not used on PCs and not modelled.
"""

from __future__ import annotations

from .base import Device

VERIFY, WRITE, READ = "verify", "write", "read"     # WRITE: into memory; READ: out of memory
TYPES = (VERIFY, WRITE, READ, "illegal")
MODES = ("demand", "single", "block", "cascade")
CMD_DISABLE = 0x04
MODE_AUTOINIT, MODE_DECREMENT = 0x10, 0x20

PAGE_PORT = {0: 0x87, 1: 0x83, 2: 0x81, 3: 0x82, 4: 0x8F, 5: 0x8B, 6: 0x89, 7: 0x8A}


class _Controller:
    """One 8237A."""

    def __init__(self):
        self.master_clear()
        self.base_addr = [0] * 4
        self.base_count = [0] * 4
        self.cur_addr = [0] * 4
        self.cur_count = [0] * 4
        self.mode = [0] * 4

    def master_clear(self) -> None:
        self.command = 0
        self.status = 0             # TC bits 0-3
        self.request = 0            # software requests, bits 0-3
        self.temp = 0
        self.flipflop = 0
        self.mask = 0x0F

    _FIELDS = ("command", "status", "request", "temp", "flipflop", "mask")
    _LISTS = ("base_addr", "base_count", "cur_addr", "cur_count", "mode")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._FIELDS}
        st.update({k: list(getattr(self, k)) for k in self._LISTS})
        return st

    def set_state(self, st: dict) -> None:
        for k in self._FIELDS:
            setattr(self, k, st[k])
        for k in self._LISTS:
            setattr(self, k, list(st[k]))


class DMA8237(Device):
    name = "dma"
    STATE_VERSION = 1

    def __init__(self, read_mem=None, write_mem=None):
        """``read_mem(addr, n) -> bytes`` and ``write_mem(addr, data)`` reach physical memory
        (e.g. ``aero.mem.bus.Bus.read_bytes`` / ``write_bytes``)."""
        self.read_mem = read_mem
        self.write_mem = write_mem
        self.ctl = (_Controller(), _Controller())
        self.page_regs = bytearray(16)      # ports 0x80-0x8F (0x80 itself is not claimed here)
        self.dreq = 0                       # hardware DREQ lines of channels 0-7
        self.transferred = [0] * 8          # bytes moved per channel (statistics)
        self.last_tc = False                # the last transfer() ended at terminal count

    def reset(self) -> None:
        """RESET: like Master Clear (registers cleared, all channels masked)."""
        for c in self.ctl:
            c.master_clear()
        self.dreq = 0

    def register(self, iobus) -> None:
        iobus.register(0x00, 16, self, self.io_read, self.io_write)
        iobus.register(0xC0, 32, self, self.io_read, self.io_write)
        iobus.register(0x81, 15, self, self.io_read, self.io_write)

    # -- port I/O ----------------------------------------------------------------------------
    @staticmethod
    def _decode(port: int):
        if port < 0x10:
            return 0, port
        return 1, (port - 0xC0) >> 1

    def io_read(self, port: int, size: int) -> int:
        if 0x80 <= port <= 0x8F:
            return self.page_regs[port & 0xF]
        n, reg = self._decode(port)
        c = self.ctl[n]
        if reg < 8:
            ch = reg >> 1
            v = c.cur_count[ch] if reg & 1 else c.cur_addr[ch]
            b = (v >> 8) & 0xFF if c.flipflop else v & 0xFF
            c.flipflop ^= 1
            return b
        if reg == 8:                                    # status (TC bits clear on read)
            req = ((self.dreq >> (4 * n)) & 0xF) | c.request
            v = c.status | (req << 4)
            c.status = 0
            return v
        if reg == 0xD:                                  # temporary register
            return c.temp
        if reg == 0xF:                                  # mask register (readable on PIIX)
            return 0xF0 | c.mask
        return 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        v = value & 0xFF
        if 0x80 <= port <= 0x8F:
            self.page_regs[port & 0xF] = v
            return
        n, reg = self._decode(port)
        c = self.ctl[n]
        if reg < 8:
            ch = reg >> 1
            if reg & 1:
                old = c.base_count[ch]
                new = (old & 0xFF) | (v << 8) if c.flipflop else (old & 0xFF00) | v
                c.base_count[ch] = c.cur_count[ch] = new
            else:
                old = c.base_addr[ch]
                new = (old & 0xFF) | (v << 8) if c.flipflop else (old & 0xFF00) | v
                c.base_addr[ch] = c.cur_addr[ch] = new
            c.flipflop ^= 1
        elif reg == 8:
            c.command = v
        elif reg == 9:                                  # request register
            bit = 1 << (v & 3)
            c.request = (c.request | bit) if v & 4 else (c.request & ~bit)
        elif reg == 0xA:                                # single mask bit
            bit = 1 << (v & 3)
            c.mask = (c.mask | bit) if v & 4 else (c.mask & ~bit)
        elif reg == 0xB:                                # mode
            c.mode[v & 3] = v & 0xFC
        elif reg == 0xC:                                # clear byte pointer flip-flop
            c.flipflop = 0
        elif reg == 0xD:                                # master clear
            c.master_clear()
        elif reg == 0xE:                                # clear mask register
            c.mask = 0
        elif reg == 0xF:                                # write all mask bits
            c.mask = v & 0x0F

    # -- the device side -------------------------------------------------------------------------
    def set_dreq(self, channel: int, level: bool) -> None:
        """A device's DREQ line (shown in the status register's request bits)."""
        bit = 1 << channel
        self.dreq = (self.dreq | bit) if level else (self.dreq & ~bit)

    def page(self, channel: int) -> int:
        return self.page_regs[PAGE_PORT[channel] & 0xF]

    def mode_of(self, channel: int) -> tuple[str, str, bool, bool]:
        """(transfer type, mode, autoinit, decrement) of a channel."""
        m = self.ctl[channel >> 2].mode[channel & 3]
        return TYPES[(m >> 2) & 3], MODES[m >> 6], bool(m & MODE_AUTOINIT), bool(
            m & MODE_DECREMENT)

    def address(self, channel: int) -> int:
        """The physical address of the channel's next transfer."""
        c = self.ctl[channel >> 2]
        a = c.cur_addr[channel & 3]
        if channel < 4:
            return (self.page(channel) << 16) | a
        return ((self.page(channel) & 0xFE) << 16) | (a << 1)

    def remaining(self, channel: int) -> int:
        """Bytes left before terminal count."""
        n = self.ctl[channel >> 2].cur_count[channel & 3] + 1
        return n if channel < 4 else 2 * n

    def ready(self, channel: int) -> bool:
        """Would the channel be granted the bus: controller enabled, channel unmasked, not a
        cascade channel, and for DMA1 the cascade channel 4 of DMA2 unmasked and enabled."""
        c = self.ctl[channel >> 2]
        ch = channel & 3
        if c.command & CMD_DISABLE or c.mask & (1 << ch) or c.mode[ch] >> 6 == 3:
            return False
        if channel < 4:
            c2 = self.ctl[1]
            if c2.command & CMD_DISABLE or c2.mask & 1:
                return False
        return True

    def transfer(self, channel: int, data_or_length, direction: str = WRITE):
        """Move data for a device on ``channel`` (0-3 bytes, 5-7 words) until the request is done
        or terminal count.

        * ``direction="write"`` (device -> memory): ``data_or_length`` is the device's bytes;
          returns how many bytes were taken.
        * ``direction="read"`` (memory -> device): ``data_or_length`` is the number of bytes
          wanted (returns the bytes read; their length is the count) or a bytearray to fill
          (returns the count).
        * ``direction="verify"``: a length; addresses and count advance, memory untouched.

        ``last_tc`` tells the device whether the transfer ended at terminal count (the TC
        signal a floppy controller uses to end its command).  Nothing moves (0 / empty) while the channel is not ready (see ``ready``).  The mode
        register decides the memory side: a channel programmed to read while the device writes
        reads memory and discards it; one programmed to write while the device reads leaves
        memory alone and hands the device 0xFF bytes (an undriven bus)."""
        buf = None
        if direction == WRITE:
            data = bytes(data_or_length)
            want = len(data)
        elif direction == READ:
            if isinstance(data_or_length, (bytearray, memoryview)):
                buf = data_or_length
                want = len(buf)
            else:
                want = int(data_or_length)
            data = None
        elif direction == VERIFY:
            want = data_or_length if isinstance(data_or_length, int) else len(data_or_length)
            data = None
        else:
            raise ValueError(f"DMA direction {direction!r}")
        unit = 1 if channel < 4 else 2
        self.last_tc = False
        if not self.ready(channel) or want < unit:
            return b"" if direction == READ and buf is None else 0
        c = self.ctl[channel >> 2]
        ch = channel & 3
        mode = c.mode[ch]
        kind = TYPES[(mode >> 2) & 3]
        dec = bool(mode & MODE_DECREMENT)
        units = min(want // unit, c.cur_count[ch] + 1)
        out = bytearray()
        done = 0
        while done < units:
            a = c.cur_addr[ch]
            k = 1 if dec else min(units - done, 0x10000 - a)
            phys = self.address(channel)
            n = k * unit
            if kind == WRITE:
                if direction == WRITE:
                    self._write(phys, data[done * unit: done * unit + n])
                elif direction == READ:
                    out += b"\xff" * n
            elif kind == READ:
                chunk = self._read(phys, n)
                if direction == READ:
                    out += chunk
            elif direction == READ:
                out += b"\xff" * n
            c.cur_addr[ch] = (a - k if dec else a + k) & 0xFFFF
            done += k
        tc = units == c.cur_count[ch] + 1
        c.cur_count[ch] = (c.cur_count[ch] - units) & 0xFFFF
        if tc:
            self.last_tc = True
            c.status |= 1 << ch
            c.request &= ~(1 << ch)
            if mode & MODE_AUTOINIT:
                c.cur_addr[ch] = c.base_addr[ch]
                c.cur_count[ch] = c.base_count[ch]
            else:
                c.mask |= 1 << ch
        count = units * unit
        self.transferred[channel] += count
        if direction == READ:
            if buf is not None:
                buf[:count] = out
                return count
            return bytes(out)
        return count

    def _read(self, addr: int, n: int) -> bytes:
        if self.read_mem is None:
            return b"\xff" * n
        return bytes(self.read_mem(addr, n))

    def _write(self, addr: int, data: bytes) -> None:
        if self.write_mem is not None:
            self.write_mem(addr, data)

    # -- inspection and snapshots ------------------------------------------------------------
    def summary(self) -> dict:
        out = {}
        for n, c in enumerate(self.ctl):
            out[f"DMA{n + 1}"] = (f"command {c.command:02X} status {c.status:02X} mask "
                                  f"{c.mask:X} request {c.request:X} flip-flop {c.flipflop}")
        for ch in range(8):
            if ch == 4:
                c = self.ctl[1]
                out["ch4"] = f"cascade {MODES[c.mode[0] >> 6]}, " + (
                    "masked" if c.mask & 1 else "unmasked")
                continue
            c = self.ctl[ch >> 2]
            i = ch & 3
            kind, mode, ai, dec = self.mode_of(ch)
            out[f"ch{ch}"] = (
                f"{'masked' if c.mask & (1 << i) else 'ready ' if self.ready(ch) else 'blocked'}"
                f" {kind}/{mode}{' auto' if ai else ''}{' dec' if dec else ''} "
                f"addr {self.address(ch):06X} (base {c.base_addr[i]:04X}) count "
                f"{c.cur_count[i]:04X} (base {c.base_count[i]:04X})")
        out["pages"] = " ".join(f"{p:02X}" for p in self.page_regs[1:])
        return out

    def get_state(self) -> dict:
        return {"version": self.STATE_VERSION, "ctl": [c.get_state() for c in self.ctl],
                "page_regs": bytes(self.page_regs).hex(), "dreq": self.dreq,
                "transferred": list(self.transferred), "last_tc": self.last_tc}

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        for c, s in zip(self.ctl, st["ctl"]):
            c.set_state(s)
        self.page_regs = bytearray(bytes.fromhex(st["page_regs"]))
        self.dreq = st["dreq"]
        self.transferred = list(st["transferred"])
        self.last_tc = st["last_tc"]
