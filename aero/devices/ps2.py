"""PS/2 devices behind the i8042: the MF2 keyboard and the (IntelliMouse) mouse.

References:

* IBM PS/2 Hardware Interface Technical Reference, "Keyboards (101- and 102-Key)": keyboard
  commands (ED Set/Reset Status Indicators, EE Echo, F0 Select Alternate Scan Codes, F2 Read ID,
  F3 Set Typematic Rate/Delay, F4 Enable, F5 Default Disable, F6 Set Default, F7-FD set-3 key
  types, FE Resend, FF Reset), responses (FA ACK, FE Resend, AA BAT completion, EE echo, 00/FF
  overflow), the typematic rate/delay encoding, and the three scan code sets.
* IBM PS/2 Technical Reference, "Pointing Device": mouse commands (E6/E7 scaling, E8 resolution,
  E9 status request, EA stream mode, EB read data, EC/EE wrap mode, F0 remote mode, F2 read
  device type, F3 sample rate, F4/F5 enable/disable, F6 defaults, FE resend, FF reset), the
  3-byte data packet (sign and overflow bits) and the status bytes.
* Microsoft IntelliMouse PS/2 extensions: the sample-rate "knock" 200,100,80 makes the device ID 03
  and adds a fourth packet byte (wheel); then 200,200,80 makes it ID 04 (IntelliMouse Explorer:
  wheel in bits 0-3 plus buttons 4 and 5).

A device never touches the controller's registers.  It keeps the bytes it has to send in its own
``queue`` (the keyboard's 16-byte buffer, the mouse's buffer) and calls ``notify()``; the
controller pulls one byte at a time with ``pop()`` whenever its output buffer is empty and the
device's interface is enabled (see ``i8042.py``).  Host input reaches the devices only through the
machine's deterministic input queue: ``PS2Keyboard.key(name, down)`` and
``PS2Mouse.event(dx, dy, dz, buttons)``.  Typematic repeat runs on the virtual clock.
"""

from __future__ import annotations

from collections import deque

ACK, RESEND, BAT_OK, ECHO = 0xFA, 0xFE, 0xAA, 0xEE
NS_PER_MS = 1_000_000

# -- keys ----------------------------------------------------------------------------------------
# name: (set 1 make, set 2 make, set 3 make); 0xE0xx = E0-prefixed code.  PrintScreen and Pause
# have sequences of their own (see _make_bytes).  Set 3 codes from the IBM 101/102-key table.
KEYS: dict[str, tuple[int, int, int]] = {
    "Escape": (0x01, 0x76, 0x08),
    "1": (0x02, 0x16, 0x16), "2": (0x03, 0x1E, 0x1E), "3": (0x04, 0x26, 0x26),
    "4": (0x05, 0x25, 0x25), "5": (0x06, 0x2E, 0x2E), "6": (0x07, 0x36, 0x36),
    "7": (0x08, 0x3D, 0x3D), "8": (0x09, 0x3E, 0x3E), "9": (0x0A, 0x46, 0x46),
    "0": (0x0B, 0x45, 0x45),
    "Minus": (0x0C, 0x4E, 0x4E), "Equal": (0x0D, 0x55, 0x55), "Backspace": (0x0E, 0x66, 0x66),
    "Tab": (0x0F, 0x0D, 0x0D),
    "q": (0x10, 0x15, 0x15), "w": (0x11, 0x1D, 0x1D), "e": (0x12, 0x24, 0x24),
    "r": (0x13, 0x2D, 0x2D), "t": (0x14, 0x2C, 0x2C), "y": (0x15, 0x35, 0x35),
    "u": (0x16, 0x3C, 0x3C), "i": (0x17, 0x43, 0x43), "o": (0x18, 0x44, 0x44),
    "p": (0x19, 0x4D, 0x4D),
    "LeftBracket": (0x1A, 0x54, 0x54), "RightBracket": (0x1B, 0x5B, 0x5B),
    "Enter": (0x1C, 0x5A, 0x5A), "LeftCtrl": (0x1D, 0x14, 0x11),
    "a": (0x1E, 0x1C, 0x1C), "s": (0x1F, 0x1B, 0x1B), "d": (0x20, 0x23, 0x23),
    "f": (0x21, 0x2B, 0x2B), "g": (0x22, 0x34, 0x34), "h": (0x23, 0x33, 0x33),
    "j": (0x24, 0x3B, 0x3B), "k": (0x25, 0x42, 0x42), "l": (0x26, 0x4B, 0x4B),
    "Semicolon": (0x27, 0x4C, 0x4C), "Apostrophe": (0x28, 0x52, 0x52),
    "Grave": (0x29, 0x0E, 0x0E), "LeftShift": (0x2A, 0x12, 0x12),
    "Backslash": (0x2B, 0x5D, 0x5C),
    "z": (0x2C, 0x1A, 0x1A), "x": (0x2D, 0x22, 0x22), "c": (0x2E, 0x21, 0x21),
    "v": (0x2F, 0x2A, 0x2A), "b": (0x30, 0x32, 0x32), "n": (0x31, 0x31, 0x31),
    "m": (0x32, 0x3A, 0x3A),
    "Comma": (0x33, 0x41, 0x41), "Period": (0x34, 0x49, 0x49), "Slash": (0x35, 0x4A, 0x4A),
    "RightShift": (0x36, 0x59, 0x59), "KPMultiply": (0x37, 0x7C, 0x7E),
    "LeftAlt": (0x38, 0x11, 0x19), "Space": (0x39, 0x29, 0x29), "CapsLock": (0x3A, 0x58, 0x14),
    "F1": (0x3B, 0x05, 0x07), "F2": (0x3C, 0x06, 0x0F), "F3": (0x3D, 0x04, 0x17),
    "F4": (0x3E, 0x0C, 0x1F), "F5": (0x3F, 0x03, 0x27), "F6": (0x40, 0x0B, 0x2F),
    "F7": (0x41, 0x83, 0x37), "F8": (0x42, 0x0A, 0x3F), "F9": (0x43, 0x01, 0x47),
    "F10": (0x44, 0x09, 0x4F), "F11": (0x57, 0x78, 0x56), "F12": (0x58, 0x07, 0x5E),
    "NumLock": (0x45, 0x77, 0x76), "ScrollLock": (0x46, 0x7E, 0x5F),
    "KP7": (0x47, 0x6C, 0x6C), "KP8": (0x48, 0x75, 0x75), "KP9": (0x49, 0x7D, 0x7D),
    "KPMinus": (0x4A, 0x7B, 0x84),
    "KP4": (0x4B, 0x6B, 0x6B), "KP5": (0x4C, 0x73, 0x73), "KP6": (0x4D, 0x74, 0x74),
    "KPPlus": (0x4E, 0x79, 0x7C),
    "KP1": (0x4F, 0x69, 0x69), "KP2": (0x50, 0x72, 0x72), "KP3": (0x51, 0x7A, 0x7A),
    "KP0": (0x52, 0x70, 0x70), "KPDot": (0x53, 0x71, 0x71),
    "NonUSBackslash": (0x56, 0x61, 0x13),
    "KPEnter": (0xE01C, 0xE05A, 0x79), "RightCtrl": (0xE01D, 0xE014, 0x58),
    "KPDivide": (0xE035, 0xE04A, 0x77), "RightAlt": (0xE038, 0xE011, 0x39),
    "Home": (0xE047, 0xE06C, 0x6E), "Up": (0xE048, 0xE075, 0x63),
    "PageUp": (0xE049, 0xE07D, 0x6F), "Left": (0xE04B, 0xE06B, 0x61),
    "Right": (0xE04D, 0xE074, 0x6A), "End": (0xE04F, 0xE069, 0x65),
    "Down": (0xE050, 0xE072, 0x60), "PageDown": (0xE051, 0xE07A, 0x6D),
    "Insert": (0xE052, 0xE070, 0x67), "Delete": (0xE053, 0xE071, 0x64),
    "LeftMeta": (0xE05B, 0xE01F, 0x8B), "RightMeta": (0xE05C, 0xE027, 0x8C),
    "Menu": (0xE05D, 0xE02F, 0x8D),
    "PrintScreen": (0xE037, 0xE07C, 0x57), "Pause": (0x45, 0x77, 0x62),
}

ALIASES = {
    "Esc": "Escape", "Return": "Enter", "Ctrl": "LeftCtrl", "Shift": "LeftShift",
    "Alt": "LeftAlt", "Win": "LeftMeta", "Meta": "LeftMeta", "Del": "Delete", "Ins": "Insert",
    "PgUp": "PageUp", "PgDn": "PageDown", "ArrowUp": "Up", "ArrowDown": "Down",
    "ArrowLeft": "Left", "ArrowRight": "Right", "Print": "PrintScreen", "SysRq": "PrintScreen",
    "Break": "Pause", "Caps": "CapsLock", "BackSpace": "Backspace",
    "-": "Minus", "=": "Equal", "[": "LeftBracket", "]": "RightBracket", ";": "Semicolon",
    "'": "Apostrophe", "`": "Grave", "\\": "Backslash", ",": "Comma", ".": "Period",
    "/": "Slash", " ": "Space", "KPAsterisk": "KPMultiply", "KPDecimal": "KPDot",
}
_LOWER = {k.lower(): k for k in KEYS}
_LOWER.update({k.lower(): v for k, v in ALIASES.items()})

# US layout: character -> (key, shift)
_SHIFTED = {'!': '1', '@': '2', '#': '3', '$': '4', '%': '5', '^': '6', '&': '7', '*': '8',
            '(': '9', ')': '0', '_': 'Minus', '+': 'Equal', '{': 'LeftBracket',
            '}': 'RightBracket', ':': 'Semicolon', '"': 'Apostrophe', '~': 'Grave',
            '|': 'Backslash', '<': 'Comma', '>': 'Period', '?': 'Slash'}


def key_name(name: str) -> str:
    """The canonical key name for ``name`` (case-insensitive, with aliases); KeyError if none."""
    if name in KEYS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    k = _LOWER.get(name.lower())
    if k is None:
        raise KeyError(f"unknown key {name!r}")
    return k


def keys_for_char(ch: str) -> tuple[str, bool]:
    """(key name, shift needed) that types ``ch`` on a US keyboard; KeyError if none."""
    if ch == "\n" or ch == "\r":
        return "Enter", False
    if ch == "\t":
        return "Tab", False
    if ch == "\b":
        return "Backspace", False
    if ch == "\x1b":
        return "Escape", False
    if "a" <= ch <= "z" or "0" <= ch <= "9":
        return ch, False
    if "A" <= ch <= "Z":
        return ch.lower(), True
    if ch in _SHIFTED:
        return _SHIFTED[ch], True
    if ch in ALIASES:
        return ALIASES[ch], False
    raise KeyError(f"no key types {ch!r}")


def _with_prefix(code: int) -> list[int]:
    return [0xE0, code & 0xFF] if code > 0xFF else [code]


def make_bytes(name: str, scancode_set: int) -> list[int]:
    """The make sequence of key ``name`` in scan code set 1, 2 or 3."""
    if scancode_set == 1:
        if name == "Pause":
            return [0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]
        if name == "PrintScreen":
            return [0xE0, 0x2A, 0xE0, 0x37]
        return _with_prefix(KEYS[name][0])
    if scancode_set == 2:
        if name == "Pause":
            return [0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]
        if name == "PrintScreen":
            return [0xE0, 0x12, 0xE0, 0x7C]
        return _with_prefix(KEYS[name][1])
    return [KEYS[name][2]]


def break_bytes(name: str, scancode_set: int) -> list[int]:
    """The break sequence (empty for Pause in sets 1 and 2, which has none)."""
    if scancode_set == 1:
        if name == "Pause":
            return []
        if name == "PrintScreen":
            return [0xE0, 0xB7, 0xE0, 0xAA]
        c = KEYS[name][0]
        return _with_prefix(c | 0x80)
    if scancode_set == 2:
        if name == "Pause":
            return []
        if name == "PrintScreen":
            return [0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]
        c = KEYS[name][1]
        return [0xE0, 0xF0, c & 0xFF] if c > 0xFF else [0xF0, c]
    return [0xF0, KEYS[name][2]]


_SET3_CODE_TO_KEY = {v[2]: k for k, v in KEYS.items()}

# Set-3 key types (F7-FD): bit 0 typematic, bit 1 break code.
T_MAKE, T_TYPEMATIC, T_BREAK = 0, 1, 2
T_ALL = T_TYPEMATIC | T_BREAK


def typematic_period_ns(value: int) -> int:
    """F3 parameter bits 0-4: period = (8 + A) * 2**B * 4.17 ms (A = bits 0-2, B = bits 3-4)."""
    return (8 + (value & 7)) * (1 << ((value >> 3) & 3)) * 4_170_000


def typematic_delay_ns(value: int) -> int:
    """F3 parameter bits 5-6: delay = (1 + D) * 250 ms."""
    return (1 + ((value >> 5) & 3)) * 250 * NS_PER_MS


class PS2Keyboard:
    """An MF2 keyboard (ID AB 83).  ``key(name, down)`` is the host side; ``write(byte)`` receives
    the bytes the controller sends; ``queue`` holds the bytes for the controller."""

    name = "ps2kbd"
    STATE_VERSION = 1
    BUFFER = 16                     # the keyboard's own output buffer (IBM: 16 bytes)
    DEFAULT_TYPEMATIC = 0x2B        # 10.9 characters/s, 500 ms delay

    def __init__(self, clock=None, notify=None):
        self.clock = clock
        self.notify = notify or (lambda: None)
        self.queue: deque[int] = deque()
        self._repeat_event = None
        self.reset_state()

    # -- state ---------------------------------------------------------------------------------
    def reset_state(self) -> None:
        self.queue.clear()
        self.scan_enabled = True
        self.scancode_set = 2
        self.leds = 0                       # bit 0 Scroll, bit 1 Num, bit 2 Caps
        self.typematic = self.DEFAULT_TYPEMATIC
        self.pending = None                 # command awaiting its parameter byte
        self.last_sent = ACK
        self.key_types: dict[int, int] = {}  # set-3 code -> type (default T_ALL)
        self.default_type = T_ALL
        self.pressed: list[str] = []
        self._cancel_repeat()
        self.repeat_key = None
        self.repeat_at = None
        self.commands = 0

    reset = reset_state

    def _defaults(self) -> None:
        """F5/F6: default typematic rate/delay, set-3 key types; clears the output buffer."""
        self.typematic = self.DEFAULT_TYPEMATIC
        self.key_types = {}
        self.default_type = T_ALL
        self.queue.clear()
        self._cancel_repeat()
        self.repeat_key = None

    def _send(self, *bs: int) -> None:
        for b in bs:
            self.queue.append(b)
            self.last_sent = b
        self.notify()

    def pop(self) -> int:
        return self.queue.popleft()

    # -- commands from the host (port 0x60 writes forwarded by the controller) ---------------
    def write(self, b: int) -> None:
        b &= 0xFF
        self.commands += 1
        p = self.pending
        if p is not None and not (b >= 0xED and p in (0xED, 0xF3, 0xF0)) and p not in (
                0xFB, 0xFC, 0xFD):
            self.pending = None
            if p == 0xED:                       # Set/Reset Status Indicators
                self.leds = b & 7
                self._send(ACK)
            elif p == 0xF3:                     # Set Typematic Rate/Delay
                self.typematic = b & 0x7F
                self._send(ACK)
            elif p == 0xF0:                     # Select Alternate Scan Codes
                if b == 0:
                    self._send(ACK, self.scancode_set)
                elif 1 <= b <= 3:
                    self.scancode_set = b
                    self.queue.clear()
                    self._send(ACK)
                else:
                    self._send(RESEND)
            return
        if p in (0xFB, 0xFC, 0xFD):
            if b < 0xED:                        # a set-3 key code whose type is being set
                self.key_types[b] = {0xFB: T_TYPEMATIC, 0xFC: T_BREAK, 0xFD: T_MAKE}[p]
                self._send(ACK)
                return
            self.pending = None
        self.pending = None
        if b == 0xED or b == 0xF3 or b == 0xF0:
            self.pending = b
            self._send(ACK)
        elif b == 0xEE:                         # Echo
            self._send(ECHO)
        elif b == 0xF2:                         # Read ID
            self._send(ACK, 0xAB, 0x83)
        elif b == 0xF4:                         # Enable
            self.queue.clear()
            self.scan_enabled = True
            self._send(ACK)
        elif b == 0xF5:                         # Default Disable
            self._defaults()
            self.scan_enabled = False
            self._send(ACK)
        elif b == 0xF6:                         # Set Default
            self._defaults()
            self.scan_enabled = True
            self._send(ACK)
        elif 0xF7 <= b <= 0xFA:                 # set 3: all keys typematic/make-break/make/all
            self.key_types = {}
            self.default_type = {0xF7: T_TYPEMATIC, 0xF8: T_BREAK, 0xF9: T_MAKE, 0xFA: T_ALL}[b]
            self._send(ACK)
        elif 0xFB <= b <= 0xFD:                 # set 3: key type for the keys that follow
            self.pending = b
            self._send(ACK)
        elif b == 0xFE:                         # Resend
            self.queue.append(self.last_sent)
            self.notify()
        elif b == 0xFF:                         # Reset: ACK, then the BAT completion code
            self.reset_state()
            self._send(ACK, BAT_OK)
        else:
            self._send(RESEND)

    # -- host input ----------------------------------------------------------------------------
    def key(self, name: str, down: bool) -> None:
        """A key press (down) or release from the host input queue."""
        name = key_name(name)
        if down:
            if name not in self.pressed:
                self.pressed.append(name)
        elif name in self.pressed:
            self.pressed.remove(name)
        if not self.scan_enabled:
            return
        s = self.scancode_set
        if down:
            self._emit(make_bytes(name, s))
            if self._is_typematic(name):
                self.repeat_key = name
                self._schedule_repeat(typematic_delay_ns(self.typematic))
            else:
                self._cancel_repeat()
                self.repeat_key = None
        else:
            if s == 3 and not (self._type3(name) & T_BREAK):
                seq = []
            else:
                seq = break_bytes(name, s)
            if seq:
                self._emit(seq)
            if self.repeat_key == name:
                self._cancel_repeat()
                self.repeat_key = None

    def type_text(self, text: str) -> None:
        """Press and release keys typing ``text`` (with LeftShift as needed), all at once."""
        for ch in text:
            k, shift = keys_for_char(ch)
            if shift:
                self.key("LeftShift", True)
            self.key(k, True)
            self.key(k, False)
            if shift:
                self.key("LeftShift", False)

    def _type3(self, name: str) -> int:
        return self.key_types.get(KEYS[name][2], self.default_type)

    def _is_typematic(self, name: str) -> bool:
        if self.scancode_set == 3:
            return bool(self._type3(name) & T_TYPEMATIC)
        return name != "Pause"

    def _emit(self, seq: list[int]) -> None:
        """Queue a key's bytes; on overflow the last position holds the overflow code."""
        over = 0xFF if self.scancode_set == 1 else 0x00
        if len(self.queue) + len(seq) > self.BUFFER:
            if not self.queue or self.queue[-1] != over:
                self.queue.append(over)
                self.notify()
            return
        self._send(*seq)

    # -- typematic repeat on virtual time ----------------------------------------------------
    def _cancel_repeat(self) -> None:
        if self._repeat_event is not None:
            self._repeat_event.cancel()
            self._repeat_event = None
        self.repeat_at = None

    def _schedule_repeat(self, ns: int) -> None:
        self._cancel_repeat()
        if self.clock is None:
            return
        self.repeat_at = self.clock.now() + self.clock.ticks_for_ns(ns)
        self._repeat_event = self.clock.schedule(self.repeat_at, self._repeat, "kbd-typematic")

    def _repeat(self) -> None:
        self._repeat_event = None
        self.repeat_at = None
        name = self.repeat_key
        if name is None or name not in self.pressed or not self.scan_enabled:
            self.repeat_key = None
            return
        self._emit(make_bytes(name, self.scancode_set))
        self._schedule_repeat(typematic_period_ns(self.typematic))

    # -- inspection and snapshots ---------------------------------------------------------------
    def summary(self) -> dict:
        return {
            "scanning": self.scan_enabled, "set": self.scancode_set,
            "LEDs": "".join(c for c, bit in (("S", 1), ("N", 2), ("C", 4)) if self.leds & bit)
            or "-",
            "typematic": f"{self.typematic:#04x} ({1e9 / typematic_period_ns(self.typematic):.1f}"
                         f"/s, {typematic_delay_ns(self.typematic) // NS_PER_MS} ms)",
            "pressed": " ".join(self.pressed) or "-", "queued": " ".join(
                f"{b:02X}" for b in self.queue) or "-",
        }

    def get_state(self) -> dict:
        return {
            "version": self.STATE_VERSION, "queue": list(self.queue),
            "scan_enabled": self.scan_enabled, "scancode_set": self.scancode_set,
            "leds": self.leds, "typematic": self.typematic, "pending": self.pending,
            "last_sent": self.last_sent, "key_types": [[k, v] for k, v in sorted(self.key_types.items())],
            "default_type": self.default_type, "pressed": list(self.pressed),
            "repeat_key": self.repeat_key, "repeat_at": self.repeat_at,
            "commands": self.commands,
        }

    def set_state(self, st: dict) -> None:
        if st.get("version") != self.STATE_VERSION:
            raise ValueError(f"{self.name}: state version {st.get('version')!r}")
        self._cancel_repeat()
        self.queue = deque(st["queue"])
        self.scan_enabled = st["scan_enabled"]
        self.scancode_set = st["scancode_set"]
        self.leds = st["leds"]
        self.typematic = st["typematic"]
        self.pending = st["pending"]
        self.last_sent = st["last_sent"]
        self.key_types = dict(st["key_types"])
        self.default_type = st["default_type"]
        self.pressed = list(st["pressed"])
        self.repeat_key = st["repeat_key"]
        self.commands = st["commands"]
        if st["repeat_at"] is not None and self.clock is not None:
            self.repeat_at = st["repeat_at"]
            self._repeat_event = self.clock.schedule(self.repeat_at, self._repeat,
                                                     "kbd-typematic")


def _scale21(v: int) -> int:
    """2:1 scaling (IBM table): 0->0, 1->1, 2->1, 3->3, 4->6, 5->9, otherwise 2n."""
    a = abs(v)
    s = {0: 0, 1: 1, 2: 1, 3: 3, 4: 6, 5: 9}.get(a, 2 * a)
    return -s if v < 0 else s


class PS2Mouse:
    """A PS/2 mouse with the IntelliMouse (ID 3) and IntelliMouse Explorer (ID 4) extensions.

    ``event(dx, dy, dz, buttons)``: dx to the right, dy downwards (host screen convention; the
    packet's Y axis points up, so it carries -dy), dz wheel clicks (positive = towards the user),
    buttons bit 0 left, 1 right, 2 middle, 3 button 4, 4 button 5.  Resolution (E8) and sample rate
    (F3) are stored and reported; host deltas are taken as counts at the current resolution and a
    packet is sent for each host event (stream mode), as QEMU does."""

    name = "ps2mouse"
    STATE_VERSION = 1
    BUFFER = 256

    def __init__(self, notify=None):
        self.notify = notify or (lambda: None)
        self.queue: deque[int] = deque()
        self.reset_state()

    def reset_state(self) -> None:
        self.queue.clear()
        self.device_id = 0
        self.buttons = 0
        self.dx = self.dy = self.dz = 0
        self.pending = None
        self.last_sent = ACK
        self.rates: list[int] = []
        self.wrap = False
        self.commands = 0
        self._defaults()

    reset = reset_state

    def _defaults(self) -> None:
        self.sample_rate = 100
        self.resolution = 2            # 4 counts/mm
        self.scaling21 = False
        self.remote = False
        self.enabled = False
        self.dx = self.dy = self.dz = 0

    def _send(self, *bs: int) -> None:
        for b in bs:
            self.queue.append(b & 0xFF)
            self.last_sent = b & 0xFF
        self.notify()

    def pop(self) -> int:
        b = self.queue.popleft()
        if self._has_motion():
            self._stream()
        return b

    @property
    def packet_size(self) -> int:
        return 4 if self.device_id in (3, 4) else 3

    # -- commands --------------------------------------------------------------------------------
    def write(self, b: int) -> None:
        b &= 0xFF
        self.commands += 1
        p = self.pending
        if p is not None:
            self.pending = None
            if p == 0xF3:                                   # Set Sample Rate
                self.sample_rate = b
                self.rates = (self.rates + [b])[-3:]
                if self.rates == [200, 100, 80] and self.device_id == 0:
                    self.device_id = 3
                elif self.rates == [200, 200, 80] and self.device_id == 3:
                    self.device_id = 4
                self._send(ACK)
                return
            if p == 0xE8:                                   # Set Resolution
                self.resolution = b & 3
                self._send(ACK)
                return
        if self.wrap and b not in (0xEC, 0xFF):
            self._send(b)                                   # wrap mode echoes
            return
        if b != 0xF3:
            self.rates = []                                 # the knock must be consecutive
        if b == 0xFF:                                       # Reset
            self.reset_state()
            self._send(ACK, BAT_OK, 0x00)
        elif b == 0xFE:                                     # Resend
            self._send(self.last_sent)
        elif b == 0xF6:                                     # Set Defaults
            self._defaults()
            self._send(ACK)
        elif b == 0xF5:                                     # Disable Data Reporting
            self.enabled = False
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xF4:                                     # Enable Data Reporting
            self.enabled = True
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xF3 or b == 0xE8:
            self.pending = b
            self._send(ACK)
        elif b == 0xF2:                                     # Get Device ID
            self._send(ACK, self.device_id)
        elif b == 0xF0:                                     # Set Remote Mode
            self.remote = True
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xEE:                                     # Set Wrap Mode
            self.wrap = True
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xEC:                                     # Reset Wrap Mode
            self.wrap = False
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xEB:                                     # Read Data
            self._send(ACK)
            self._send(*self._packet(scaled=False))
        elif b == 0xEA:                                     # Set Stream Mode
            self.remote = False
            self.dx = self.dy = self.dz = 0
            self._send(ACK)
        elif b == 0xE9:                                     # Status Request
            bt = self.buttons
            s1 = ((self.remote << 6) | (self.enabled << 5) | (self.scaling21 << 4)
                  | ((bt & 1) << 2) | ((bt >> 2 & 1) << 1) | (bt >> 1 & 1))
            self._send(ACK, s1, self.resolution, self.sample_rate)
        elif b == 0xE7:                                     # Set Scaling 2:1
            self.scaling21 = True
            self._send(ACK)
        elif b == 0xE6:                                     # Set Scaling 1:1
            self.scaling21 = False
            self._send(ACK)
        else:
            self._send(RESEND)

    # -- movement ----------------------------------------------------------------------------
    def event(self, dx: int = 0, dy: int = 0, dz: int = 0, buttons: int | None = None) -> None:
        """Host motion: accumulate; in stream mode with reporting on, send a packet."""
        changed = buttons is not None and (buttons & 0x1F) != self.buttons
        if buttons is not None:
            self.buttons = buttons & 0x1F
        self.dx += dx
        self.dy -= dy
        self.dz += dz
        if self.enabled and not self.remote and not self.wrap and (changed or self._has_motion()):
            self._stream(force=True)

    def _has_motion(self) -> bool:
        return bool(self.dx or self.dy or self.dz)

    def _stream(self, force: bool = False) -> None:
        if not self.enabled or self.remote or self.wrap:
            return
        if len(self.queue) + self.packet_size > self.BUFFER:
            return                  # sent when the buffer drains (see pop)
        if force or self._has_motion():
            self._send(*self._packet(scaled=self.scaling21))

    def _packet(self, scaled: bool) -> list[int]:
        dx, dy = self.dx, self.dy
        if scaled:
            dx, dy = _scale21(dx), _scale21(dy)
        xo = dx > 255 or dx < -256
        yo = dy > 255 or dy < -256
        dx = max(-256, min(255, dx))
        dy = max(-256, min(255, dy))
        bt = self.buttons
        b0 = ((bt & 1) | (bt & 2) | (bt & 4) | 0x08 | ((dx < 0) << 4) | ((dy < 0) << 5)
              | (xo << 6) | (yo << 7))
        pkt = [b0, dx & 0xFF, dy & 0xFF]
        if self.device_id == 3:
            pkt.append(max(-8, min(7, self.dz)) & 0xFF)
        elif self.device_id == 4:
            pkt.append((max(-8, min(7, self.dz)) & 0x0F) | ((bt >> 3 & 3) << 4))
        self.dx = self.dy = self.dz = 0
        return pkt

    # -- inspection and snapshots ---------------------------------------------------------------
    def summary(self) -> dict:
        return {
            "mode": "wrap" if self.wrap else ("remote" if self.remote else "stream"),
            "reporting": self.enabled, "ID": self.device_id, "rate": self.sample_rate,
            "resolution": f"{1 << self.resolution} counts/mm",
            "scaling": "2:1" if self.scaling21 else "1:1", "buttons": f"{self.buttons:05b}",
            "queued": " ".join(f"{b:02X}" for b in self.queue) or "-",
        }

    _FIELDS = ("device_id", "buttons", "dx", "dy", "dz", "pending", "last_sent", "wrap",
               "sample_rate", "resolution", "scaling21", "remote", "enabled", "commands")

    def get_state(self) -> dict:
        st = {k: getattr(self, k) for k in self._FIELDS}
        st.update(version=self.STATE_VERSION, queue=list(self.queue), rates=list(self.rates))
        return st

    def set_state(self, st: dict) -> None:
        if st.get("version") != self.STATE_VERSION:
            raise ValueError(f"{self.name}: state version {st.get('version')!r}")
        for k in self._FIELDS:
            setattr(self, k, st[k])
        self.queue = deque(st["queue"])
        self.rates = list(st["rates"])
