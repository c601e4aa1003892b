"""Host output sinks for the TUI and a small terminal buffer to show what they received.

``ByteSink`` is what the machine is built with (``serial=``, ``debugcon=``): the CPU thread calls
it with one byte at a time, the UI thread collects what arrived with ``take()``.  It needs no
lock: ``deque.append`` and ``deque.popleft`` are atomic in CPython, and only the CPU thread
appends.  A sink can pass every byte on to another one (``tee``: the ``--serial FILE`` the user
asked for as well).

``TerminalBuffer`` turns the bytes into lines the way a plain terminal would: CR returns to the
start of the line (and the next characters overwrite it), LF ends the line, BS moves back, TAB
goes to the next multiple of 8, ANSI escape sequences are dropped, bytes 80h-FFh are shown as
code page 437 (the PC's character set); other control bytes are not shown.
"""

from __future__ import annotations

import collections

_CP437 = bytes(range(256)).decode("cp437")


class ByteSink:
    """A thread-safe byte sink: ``sink(byte)`` from the CPU thread, ``take()`` from the UI."""

    def __init__(self, tee=None):
        self._queue: collections.deque = collections.deque()
        self.tee = tee                  # another sink (callable(byte)) receiving every byte
        self.count = 0                  # bytes received so far

    def __call__(self, byte: int) -> None:
        self._queue.append(byte & 0xFF)
        self.count += 1
        if self.tee is not None:
            self.tee(byte)

    def take(self) -> bytes:
        """The bytes received since the last ``take`` (empty when none)."""
        q = self._queue
        n = len(q)
        if not n:
            return b""
        pop = q.popleft
        return bytes(pop() for _ in range(n))

    def close(self) -> None:
        """Close the tee (a file sink flushes and reports a write error once)."""
        close = getattr(self.tee, "close", None)
        if close is not None:
            close()


class TerminalBuffer:
    """Lines of text made from a byte stream (see the module docstring); at most
    ``max_lines`` are kept (the oldest are dropped)."""

    def __init__(self, max_lines: int = 5000):
        self.max_lines = max_lines
        self.lines: list[str] = [""]
        self.col = 0
        self.dropped = 0                # lines dropped from the top so far
        self._esc = 0                   # 0: text, 1: after ESC, 2: inside CSI
        self.version = 0                # bumped by every feed that changed something

    def feed(self, data: bytes) -> None:
        if not data:
            return
        lines = self.lines
        cur = list(lines[-1])
        col = self.col
        for b in data:
            if self._esc:
                if self._esc == 1:
                    self._esc = 2 if b == 0x5B else 0       # ESC [ starts a CSI sequence
                elif 0x40 <= b <= 0x7E:
                    self._esc = 0
                continue
            if b == 0x0A:
                lines[-1] = "".join(cur)
                lines.append("")
                cur, col = [], 0
            elif b == 0x0D:
                col = 0
            elif b == 0x08:
                col = max(0, col - 1)
            elif b == 0x09:
                col = (col // 8 + 1) * 8
            elif b == 0x1B:
                self._esc = 1
            elif b < 0x20 or b == 0x7F:
                continue
            else:
                if col > len(cur):
                    cur.extend(" " * (col - len(cur)))
                ch = _CP437[b]
                if col == len(cur):
                    cur.append(ch)
                else:
                    cur[col] = ch
                col += 1
        lines[-1] = "".join(cur)
        self.col = col
        extra = len(lines) - self.max_lines
        if extra > 0:
            del lines[:extra]
            self.dropped += extra
        self.version += 1

    def text(self) -> str:
        """Everything kept, lines joined with newlines."""
        return "\n".join(self.lines)
