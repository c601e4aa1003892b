"""Host input as deterministic events: the `--keys` text syntax and serial input.

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

import re

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


def schedule_keys(machine, text: str, start_ns: int = DEFAULT_START_NS) -> int:
    """Put the key events of ``text`` into the machine's input queue; return the tick after the
    last one."""
    clock = machine.clock
    t = clock.now() + clock.ticks_for_ns(start_ns)
    hold, gap = clock.ticks_for_ns(HOLD_NS), clock.ticks_for_ns(GAP_NS)
    kbc = machine.kbc
    for kind, what in parse_keys(text):
        if kind == "wait":
            t += clock.ticks_for_ns(what)
            continue
        for name in what:                                   # modifiers first, then the key
            machine.schedule_input(t, lambda n=name: kbc.key(n, True), f"key {name} down")
        t += hold
        for name in reversed(what):
            machine.schedule_input(t, lambda n=name: kbc.key(n, False), f"key {name} up")
        t += gap
    return t


def schedule_serial(machine, data: bytes, port: int = 0, start_ns: int = DEFAULT_START_NS):
    """Feed bytes into a UART's receive side (it paces them at the line rate)."""
    uart = machine.uarts[port]
    machine.schedule_input(machine.clock.now() + machine.clock.ticks_for_ns(start_ns),
                           lambda: uart.feed(data), f"serial input {len(data)} bytes")
