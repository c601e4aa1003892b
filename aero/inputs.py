"""Host input as deterministic events: typed input events, the machine's input queue, the
`--keys` text syntax and serial input.

Nothing from the host reaches the guest except through ``InputQueue.post(tick, event)``: an event
(``KeyInput``, ``MouseInput``, ``SerialInput``) takes effect at virtual tick ``tick``, so the same
events give the same run.  Pending events are plain data: they are part of the machine's state
(``Machine.get_state``) and can be recorded and replayed.

``--keys TEXT`` types into the PS/2 keyboard.  Plain characters are typed as on a US keyboard
(Shift is pressed for capitals and symbols).  Inside braces:

* ``{Enter}``, ``{F1}``, ``{Up}``, ``{Escape}`` ... press and release a named key
  (names as in ``aero/devices/ps2.py``, case-insensitive);
* ``{Ctrl+c}``, ``{Alt+F4}``, ``{Ctrl+Alt+Delete}``: modifiers held around a key;
* ``{wait 500ms}``, ``{wait 2s}``, ``{wait 100us}``: a pause in virtual time;
* ``{{`` and ``}}`` are literal braces.

Every key is held for ``HOLD`` and followed by ``GAP`` of virtual time; typing starts at
``start_ns`` (default 0.5 s of virtual time, after firmware has set up the keyboard).  The events
go into the machine's input queue stamped with their ticks, so a run with the same --keys is the
same run.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

from .devices.ps2 import key_name, keys_for_char

HOLD_NS = 30_000_000
GAP_NS = 30_000_000
DEFAULT_START_NS = 500_000_000
_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_WAIT = re.compile(r"^wait\s+(\d+(?:\.\d+)?)\s*(s|ms|us|ns)$", re.I)


class KeysSyntaxError(ValueError):
    pass


def parse_keys(text: str):
    """Parse --keys TEXT into a list of ("press", [key names]) and ("wait", ns) items."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "{":
            if text.startswith("{{", i):
                out.append(("press", _char("{")))
                i += 2
                continue
            j = text.find("}", i)
            if j < 0:
                raise KeysSyntaxError(f"--keys: unclosed '{{' at position {i}")
            out.append(_token(text[i + 1: j].strip(), i))
            i = j + 1
        elif c == "}":
            if text.startswith("}}", i):
                out.append(("press", _char("}")))
                i += 2
                continue
            raise KeysSyntaxError(f"--keys: unmatched '}}' at position {i} (write '}}}}')")
        else:
            out.append(("press", _char(c)))
            i += 1
    return out


def _char(c: str):
    try:
        name, shift = keys_for_char(c)
    except KeyError:
        raise KeysSyntaxError(f"--keys: no key types {c!r} on a US keyboard")
    return ["LeftShift", key_name(name)] if shift else [key_name(name)]


def _token(tok: str, pos: int):
    m = _WAIT.match(tok)
    if m:
        return ("wait", int(float(m.group(1)) * _UNITS[m.group(2).lower()]))
    parts = [p.strip() for p in tok.split("+")] if tok != "+" else ["+"]
    if not tok or any(not p for p in parts):
        raise KeysSyntaxError(f"--keys: empty key name in '{{{tok}}}' at position {pos}")
    names = []
    for p in parts:
        try:
            names.append(key_name(p))
        except KeyError:
            if len(p) == 1:
                names.extend(_char(p))
            else:
                raise KeysSyntaxError(f"--keys: unknown key {p!r} at position {pos}")
    return ("press", names)


@dataclass(frozen=True, slots=True)
class KeyInput:
    """A key going down or up on the PS/2 keyboard (``aero.devices.ps2`` key names)."""
    key: str
    down: bool

    def apply(self, machine) -> None:
        machine.kbc.key(self.key, self.down)


@dataclass(frozen=True, slots=True)
class MouseInput:
    """PS/2 mouse motion in screen directions, as hosts report it (dx right, dy down, dz
    wheel towards the user) and buttons (bit 0 left, 1 right, 2 middle; None: unchanged).
    The mouse turns dy into the PS/2 packet's upward Y."""
    dx: int = 0
    dy: int = 0
    dz: int = 0
    buttons: int | None = None

    def apply(self, machine) -> None:
        machine.kbc.mouse_event(self.dx, self.dy, self.dz, self.buttons)


@dataclass(frozen=True, slots=True)
class SerialInput:
    """Bytes arriving on a UART's receive line (port 0 = COM1); the UART paces them at its
    line rate."""
    data: bytes
    port: int = 0

    def apply(self, machine) -> None:
        machine.uarts[self.port].feed(self.data)


EVENT_TYPES = {"key": KeyInput, "mouse": MouseInput, "serial": SerialInput}
_KIND_OF = {v: k for k, v in EVENT_TYPES.items()}


def event_to_data(ev) -> list:
    kind = _KIND_OF[type(ev)]
    if kind == "key":
        return [kind, ev.key, ev.down]
    if kind == "mouse":
        return [kind, ev.dx, ev.dy, ev.dz, ev.buttons]
    return [kind, bytes(ev.data), ev.port]


def event_from_data(data: list):
    kind, *fields = data
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown input event kind {kind!r}")
    return EVENT_TYPES[kind](*fields)


def event_to_json(ev) -> list:
    """``event_to_data`` with bytes as hex text (for JSON: recordings)."""
    return [v.hex() if isinstance(v, (bytes, bytearray)) else v for v in event_to_data(ev)]


def event_from_json(data: list):
    if data and data[0] == "serial":
        return SerialInput(bytes.fromhex(data[1]), *data[2:])
    return event_from_data(data)


class InputQueue:
    """The machine's input queue: events stamped with the tick they take effect at.

    ``post(tick, event)`` is for code running with the machine (scripts, ``--keys``).  Live
    input from other threads (a display window, a terminal) goes through ``submit(event)``:
    thread-safe, it stops the running slice at the next instruction boundary, and the machine
    posts the event for that instruction count (``Machine.run_until`` drains the submissions
    between slices), so a recording sees exactly when it took effect."""

    def __init__(self, machine):
        self.machine = machine
        self.pending: dict[int, tuple] = {}         # number -> (tick, event, clock event)
        self.count = 0                              # events posted so far (numbers them)
        self.listeners = []                         # callables(tick, event) (recorders)
        self.submitted: collections.deque = collections.deque()    # from other threads

    def submit(self, event) -> None:
        """Host input from any thread: takes effect at the next instruction boundary."""
        if type(event) not in _KIND_OF:
            raise TypeError(f"not an input event: {event!r}")
        self.submitted.append(event)
        self.machine.cpu.request_stop()             # the run loop drains it

    def drain(self) -> int:
        """Post what other threads submitted, at the current tick (the machine's thread)."""
        n = 0
        now = self.machine.clock.now()
        while self.submitted:
            self.post(now, self.submitted.popleft())
            n += 1
        return n

    def post(self, tick: int, event) -> int:
        """``event`` takes effect at virtual tick ``tick`` (never earlier than now)."""
        if type(event) not in _KIND_OF:
            raise TypeError(f"not an input event: {event!r}")
        clock = self.machine.clock
        tick = max(tick, clock.now())
        n = self.count
        self.count += 1
        ev = clock.schedule(tick, lambda: self._fire(n), f"input#{n}")
        self.pending[n] = (tick, event, ev)
        for fn in self.listeners:
            fn(tick, event)
        return n

    def _fire(self, n: int) -> None:
        _, event, _ = self.pending.pop(n)
        event.apply(self.machine)

    def get_state(self) -> dict:
        return {"version": 1, "count": self.count,
                "pending": [[n, tick, event_to_data(ev)]
                            for n, (tick, ev, _) in sorted(self.pending.items())]}

    def set_state(self, st: dict) -> None:
        if st.get("version") != 1:
            raise ValueError("unsupported input queue state version")
        for _, _, ev in self.pending.values():
            ev.cancel()
        self.pending = {}
        clock = self.machine.clock
        for n, tick, data in st["pending"]:
            event = event_from_data(data)
            ev = clock.schedule(tick, lambda n=n: self._fire(n), f"input#{n}")
            self.pending[n] = (tick, event, ev)
        self.count = st["count"]


def schedule_keys(machine, text: str, start_ns: int = DEFAULT_START_NS) -> int:
    """Post the key events of ``text`` to the machine's input queue; return the tick after the
    last one."""
    clock = machine.clock
    t = clock.now() + clock.ticks_for_ns(start_ns)
    hold, gap = clock.ticks_for_ns(HOLD_NS), clock.ticks_for_ns(GAP_NS)
    post = machine.inputs.post
    for kind, what in parse_keys(text):
        if kind == "wait":
            t += clock.ticks_for_ns(what)
            continue
        for name in what:                                   # modifiers first, then the key
            post(t, KeyInput(name, True))
        t += hold
        for name in reversed(what):
            post(t, KeyInput(name, False))
        t += gap
    return t


def schedule_serial(machine, data: bytes, port: int = 0, start_ns: int = DEFAULT_START_NS):
    """Feed bytes into a UART's receive side (it paces them at the line rate)."""
    machine.inputs.post(machine.clock.now() + machine.clock.ticks_for_ns(start_ns),
                        SerialInput(bytes(data), port))
