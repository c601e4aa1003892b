"""Intel 8042 keyboard controller (the AT/PS/2 "KBC") at ports 0x60 (data) and 0x64 (status and
command), with the PS/2 keyboard on its first port and the PS/2 mouse on its auxiliary port.

References: Intel UPI-41A/42 (8042) data sheet; IBM PS/2 Hardware Interface Technical Reference,
"Keyboard/Auxiliary Device Controller": the status register (bit 0 OBF output buffer full, 1 IBF
input buffer full, 2 SYS system flag, 3 A2 command/data (1 = last write was to port 0x64),
4 INH keyboard not inhibited, 5 AUXB output buffer holds auxiliary-device data, 6 TO time-out,
7 PERR parity error), the controller command byte (bit 0 INT keyboard interrupt enable, 1 INT2
auxiliary interrupt enable, 2 SYS, 4 EN disable keyboard, 5 EN2 disable auxiliary device,
6 XLAT translate scan codes to set 1), the controller commands (20-3F read RAM, 60-7F write RAM,
A4 password test, A7/A8 disable/enable aux, A9 aux interface test, AA self test, AB keyboard
interface test, AD/AE disable/enable keyboard, C0 read input port, D0/D1 read/write output port,
D2/D3 write keyboard/aux output buffer, D4 write to aux device, E0 read test inputs, F0-FF pulse
output port bits 0-3), and the output port (bit 0 system reset, active low; bit 1 gate A20;
bit 4 output buffer full (IRQ 1); bit 5 aux output buffer full (IRQ 12)).  The translation table
is the 8042's set 2 -> set 1 table.  PC conventions (power-on command byte, output port value,
re-enabling an interface when a byte is sent to its device, DD/DF A20 commands) follow QEMU.

Timing: the controller answers at once.  Bytes move from a device into the output buffer one at
a time, only while the buffer is empty and the device's interface is enabled; the rest wait in the
device.  IRQ 1 (keyboard) and IRQ 12 (mouse) follow OBF gated by INT/INT2, so reading port 0x60
lowers the line and loading the next byte raises it again (an edge for the 8259A).
"""

from __future__ import annotations

from collections import deque

from .base import Device
from .ps2 import PS2Keyboard, PS2Mouse

# status register
OBF, IBF, SYS, A2, INH, AUXB, TO, PERR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
# controller command byte
CB_INT, CB_INT2, CB_SYS, CB_EN, CB_EN2, CB_XLAT = 0x01, 0x02, 0x04, 0x10, 0x20, 0x40
# output port
OP_RESET, OP_A20, OP_OBF, OP_AUXB = 0x01, 0x02, 0x10, 0x20

IRQ_KBD, IRQ_AUX = 1, 12

# The 8042's translation table: set 2 code -> set 1 code (codes 0x80 and up pass unchanged apart
# from 0x83 (F7) -> 0x41 and 0x84 (Alt-SysRq) -> 0x54).
XLAT_TABLE = bytes.fromhex(
    "ff 43 41 3f 3d 3b 3c 58 64 44 42 40 3e 0f 29 59"
    "65 38 2a 70 1d 10 02 5a 66 71 2c 1f 1e 11 03 5b"
    "67 2e 2d 20 12 05 04 5c 68 39 2f 21 14 13 06 5d"
    "69 31 30 23 22 15 07 5e 6a 72 32 24 16 08 09 5f"
    "6b 33 25 17 18 0b 0a 60 6c 34 35 26 27 19 0c 61"
    "6d 73 28 74 1a 0d 62 6e 3a 36 1c 1b 75 2b 63 76"
    "55 56 77 78 79 7a 0e 7b 7c 4f 7d 4b 47 7e 7f 6f"
    "52 53 50 4c 4d 48 01 45 57 4e 51 4a 37 49 46 54"
) + bytes([0x80, 0x81, 0x82, 0x41, 0x54]) + bytes(range(0x85, 0x100))
assert len(XLAT_TABLE) == 256


class I8042(Device):
    name = "i8042"
    STATE_VERSION = 1
    DATA, STATUS = 0x60, 0x64
    POWER_ON_CB = CB_INT | CB_INT2                      # as QEMU (firmware sets its own)
    POWER_ON_OUTPORT = OP_RESET | OP_A20 | 0xCC         # 0xCC: bits that read as ones

    def __init__(self, irq=None, clock=None, reset_cb=None, a20_cb=None):
        self.irq = irq
        self.clock = clock
        self.reset_cb = reset_cb        # called with no argument: system reset requested
        self.a20_cb = a20_cb            # called with bool: output port bit 1 written
        self.keyboard = PS2Keyboard(clock, notify=self._service)
        self.mouse = PS2Mouse(notify=self._service)
        self.ctrl_queue: deque = deque()        # controller replies: (byte, aux)
        self.resets_requested = 0
        self._init_regs()

    def _init_regs(self) -> None:
        self.ram = bytearray(32)
        self.ram[0] = self.POWER_ON_CB
        self.status = A2 | INH
        self.out_byte = 0
        self.outport = self.POWER_ON_OUTPORT
        self.expect = None              # controller command awaiting a data byte on port 0x60
        self.xlat_f0 = False            # translation: an F0 prefix was seen
        self.ctrl_queue.clear()
        self.last_cmd = None

    def reset(self) -> None:
        self._init_regs()
        self.keyboard.reset_state()
        self.mouse.reset_state()
        self._update_irq()

    def register(self, iobus) -> None:
        iobus.register(self.DATA, 1, self, self.io_read, self.io_write)
        iobus.register(self.STATUS, 1, self, self.io_read, self.io_write)

    @property
    def command_byte(self) -> int:
        return self.ram[0]

    # -- output buffer ---------------------------------------------------------------------------
    def _load(self, b: int, aux: bool) -> None:
        self.out_byte = b & 0xFF
        self.status |= OBF
        if aux:
            self.status |= AUXB
        else:
            self.status &= ~AUXB
        self._update_irq()

    def _service(self) -> None:
        """Fill an empty output buffer from the controller's replies, then the keyboard, then the
        mouse (each only while its interface is enabled)."""
        if self.status & OBF:
            return
        if self.ctrl_queue:
            b, aux = self.ctrl_queue.popleft()
            self._load(b, aux)
            return
        cb = self.ram[0]
        kbd = self.keyboard
        if not cb & CB_EN:
            while kbd.queue:
                b = kbd.pop()
                if cb & CB_XLAT:
                    if b == 0xF0:
                        self.xlat_f0 = True
                        continue
                    b = XLAT_TABLE[b] | (0x80 if self.xlat_f0 else 0)
                    self.xlat_f0 = False
                self._load(b, False)
                return
        if not cb & CB_EN2 and self.mouse.queue:
            self._load(self.mouse.pop(), True)

    def _reply(self, b: int, aux: bool = False) -> None:
        self.ctrl_queue.append((b & 0xFF, aux))
        self._service()

    def _update_irq(self) -> None:
        if self.irq is None:
            return
        st, cb = self.status, self.ram[0]
        self.irq.set(IRQ_KBD, bool(st & OBF and not st & AUXB and cb & CB_INT))
        self.irq.set(IRQ_AUX, bool(st & OBF and st & AUXB and cb & CB_INT2))

    # -- port I/O ------------------------------------------------------------------------------
    def io_read(self, port: int, size: int) -> int:
        if port == self.STATUS:
            return self.status
        b = self.out_byte               # with OBF clear: the last byte again (as QEMU)
        if self.status & OBF:
            self.status &= ~(OBF | AUXB)
            self._update_irq()
            self._service()
        return b

    def io_write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        if port == self.STATUS:
            self.status |= A2
            self._command(value)
        else:
            self.status &= ~A2
            self._data(value)

    # -- controller commands ---------------------------------------------------------------------
    def _command(self, c: int) -> None:
        self.last_cmd = c
        self.expect = None
        if 0x20 <= c <= 0x3F:                       # read controller RAM (0x20: command byte)
            self._reply(self.ram[c & 0x1F])
        elif 0x60 <= c <= 0x7F or c in (0xD1, 0xD2, 0xD3, 0xD4):
            self.expect = c
        elif c == 0xA1:                             # controller version (not all KBCs answer)
            pass
        elif c == 0xA4:                             # password installed test: none
            self._reply(0xF1)
        elif c == 0xA7:                             # disable auxiliary device
            self._set_cb(self.ram[0] | CB_EN2)
        elif c == 0xA8:                             # enable auxiliary device
            self._set_cb(self.ram[0] & ~CB_EN2)
        elif c == 0xA9:                             # auxiliary interface test: no error
            self._reply(0x00)
        elif c == 0xAA:                             # self test
            self.status |= SYS
            self._reply(0x55)
        elif c == 0xAB:                             # keyboard interface test: no error
            self._reply(0x00)
        elif c == 0xAD:                             # disable keyboard
            self._set_cb(self.ram[0] | CB_EN)
        elif c == 0xAE:                             # enable keyboard
            self._set_cb(self.ram[0] & ~CB_EN)
        elif c == 0xC0:                             # read input port: keyboard not inhibited
            self._reply(0x80)
        elif c == 0xD0:                             # read output port
            self._reply(self._outport_value())
        elif c == 0xDD:                             # disable A20 (HP Vectra extension)
            self._write_outport(self.outport & ~OP_A20)
        elif c == 0xDF:                             # enable A20
            self._write_outport(self.outport | OP_A20)
        elif c == 0xE0:                             # read test inputs T0/T1
            self._reply(0x00)
        elif c >= 0xF0:                             # pulse output port bits 0-3 (0 = pulse)
            if not c & OP_RESET:
                self._request_reset()
        # other commands: ignored

    def _data(self, v: int) -> None:
        e = self.expect
        self.expect = None
        if e is None:                               # a byte for the keyboard
            if self.ram[0] & CB_EN:                 # sending re-enables the interface (QEMU)
                self._set_cb(self.ram[0] & ~CB_EN, service=False)
            self.keyboard.write(v)
            self._service()
        elif 0x60 <= e <= 0x7F:                     # write controller RAM
            if e == 0x60:
                self._set_cb(v)
            else:
                self.ram[e & 0x1F] = v
        elif e == 0xD1:                             # write output port
            self._write_outport(v)
        elif e == 0xD2:                             # write keyboard output buffer
            self._reply(v, aux=False)
        elif e == 0xD3:                             # write auxiliary output buffer
            self._reply(v, aux=True)
        elif e == 0xD4:                             # write to auxiliary device
            if self.ram[0] & CB_EN2:
                self._set_cb(self.ram[0] & ~CB_EN2, service=False)
            self.mouse.write(v)
            self._service()

    def _set_cb(self, v: int, service: bool = True) -> None:
        self.ram[0] = v & 0xFF
        if v & CB_SYS:
            self.status |= SYS
        else:
            self.status &= ~SYS
        self._update_irq()
        if service:
            self._service()

    def _outport_value(self) -> int:
        v = self.outport & ~(OP_OBF | OP_AUXB)
        if self.status & OBF:
            v |= OP_AUXB if self.status & AUXB else OP_OBF
        return v

    def _write_outport(self, v: int) -> None:
        self.outport = v & ~(OP_OBF | OP_AUXB)
        if self.a20_cb is not None:
            self.a20_cb(bool(v & OP_A20))
        if not v & OP_RESET:
            self._request_reset()

    def _request_reset(self) -> None:
        self.resets_requested += 1
        if self.reset_cb is not None:
            self.reset_cb()

    # -- host input (from the machine's input queue) -----------------------------------------
    def key(self, name: str, down: bool) -> None:
        self.keyboard.key(name, down)

    def mouse_event(self, dx=0, dy=0, dz=0, buttons=None) -> None:
        self.mouse.event(dx, dy, dz, buttons)

    # -- inspection and snapshots --------------------------------------------------------------
    def summary(self) -> dict:
        st, cb = self.status, self.ram[0]
        flags = " ".join(n for n, b in (("OBF", OBF), ("IBF", IBF), ("SYS", SYS), ("A2", A2),
                                        ("INH", INH), ("AUXB", AUXB)) if st & b) or "-"
        cbf = " ".join(n for n, b in (("INT", CB_INT), ("INT2", CB_INT2), ("SYS", CB_SYS),
                                      ("EN", CB_EN), ("EN2", CB_EN2), ("XLAT", CB_XLAT))
                       if cb & b) or "-"
        return {
            "status": f"{st:02X} ({flags})", "command byte": f"{cb:02X} ({cbf})",
            "output buffer": f"{self.out_byte:02X}" if st & OBF else "empty",
            "output port": f"{self._outport_value():02X}",
            "A20": bool(self.outport & OP_A20),
            "pending command": f"{self.expect:02X}" if self.expect is not None else "-",
        } | {f"kbd {k}": v for k, v in self.keyboard.summary().items()} | {
            f"mouse {k}": v for k, v in self.mouse.summary().items()}

    def get_state(self) -> dict:
        return {
            "version": self.STATE_VERSION, "ram": bytes(self.ram).hex(), "status": self.status,
            "out_byte": self.out_byte, "outport": self.outport, "expect": self.expect,
            "xlat_f0": self.xlat_f0, "ctrl_queue": [list(x) for x in self.ctrl_queue],
            "last_cmd": self.last_cmd, "resets_requested": self.resets_requested,
            "keyboard": self.keyboard.get_state(), "mouse": self.mouse.get_state(),
        }

    def set_state(self, st: dict) -> None:
        self.check_version(st)
        self.ram = bytearray(bytes.fromhex(st["ram"]))
        self.status = st["status"]
        self.out_byte = st["out_byte"]
        self.outport = st["outport"]
        self.expect = st["expect"]
        self.xlat_f0 = st["xlat_f0"]
        self.ctrl_queue = deque((b, bool(a)) for b, a in st["ctrl_queue"])
        self.last_cmd = st["last_cmd"]
        self.resets_requested = st["resets_requested"]
        self.keyboard.set_state(st["keyboard"])
        self.mouse.set_state(st["mouse"])
        self._update_irq()
