"""The guest display for the TUI: the pygame window (``aero.display.window``) in a thread of its
own.

SDL wants every call from one thread, so the window is opened, pumped and closed in the display
thread and nowhere else.  The thread calls ``pump()`` (the host's keyboard and mouse to the
guest through ``machine.inputs.submit``, then one frame) at the window's frame rate, whether
the guest runs or is paused (a paused guest's screen still shows, and typed keys wait in the
input queue for the next run).  Nothing is printed: when no window can be opened, ``reason``
holds the one line saying why and the TUI shows it; when the user closes the window, ``closed``
is set and the TUI says so.

Time travel.  ``input_gate()`` (``TimeTravelControl.input_gate``) decides what happens to the
window's input: "pass" it to the guest, "hold" it while time travel re-executes the recording
(input taken then would be posted somewhere in the past; held events go to the guest, in order,
once it is done), or "drop" it (a recording file being replayed: it replays its own input).
"""

from __future__ import annotations

import collections
import threading
import time

from ..display.window import DEFAULT_FPS, open_window


class DisplayThread:
    def __init__(self, machine, title: str = "guest", fps: int = DEFAULT_FPS, input_gate=None):
        self.machine = machine
        self.title = title
        self.fps = fps
        self.input_gate = input_gate        # () -> "pass" | "hold" | "drop" (None: pass)
        self.held: collections.deque = collections.deque()     # input held back (gate "hold")
        self.dropped = 0                    # input dropped (gate "drop")
        self.reason: str | None = None      # why no window (one line), once known
        self.error: str | None = None       # a failure of the window while it ran
        self.opened = False
        self.closed = False                 # the window was closed (by the user or stop())
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aero-tui-display", daemon=True)

    def start(self, wait: float = 5.0) -> bool:
        """Start the thread and wait (at most ``wait`` s) until the window is open or known to
        be impossible; True if a window is open."""
        self._thread.start()
        self._ready.wait(wait)
        return self.opened

    def _run(self) -> None:
        try:
            win, why = open_window(self.machine, self.title, fps=self.fps)
        except Exception as e:          # never let SDL take the TUI down
            win, why = None, f"aero: no display ({type(e).__name__}: {e}); running headless"
        if win is None:
            self.reason = why
            self._ready.set()
            return
        self.opened = True
        self._ready.set()
        period = 1.0 / max(1, self.fps)
        submit = win._submit
        win._submit = lambda event: self.submit(event, submit)
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                self.submit(None, submit)           # input held back, once it may go
                if not win.pump():
                    break
                self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            win.close()
            self.closed = True

    def submit(self, event, send) -> None:
        """Pass ``event`` (None: nothing new) to ``send`` as the gate says, after any input
        held back before it (the display thread only)."""
        how = self.input_gate() if self.input_gate is not None else "pass"
        if how == "drop":
            self.dropped += len(self.held) + (event is not None)
            self.held.clear()
            return
        if event is not None:
            self.held.append(event)
        if how == "pass":
            while self.held:
                send(self.held.popleft())

    def stop(self, timeout: float = 2.0) -> None:
        """Close the window (from its own thread) and end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
