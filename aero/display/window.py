"""The guest display window: a pygame window that shows the guest's screen and sends the
host's keyboard and mouse to the guest.

Threading model.  The window lives in one thread (the caller's, normally the main thread:
some platforms insist on it) and the machine runs in another (``run_with_window`` starts it).
From the window thread the window only

* reads the VGA state to render it (``aero.display.render.render``); a frame read while the
  CPU thread writes video memory or registers can tear, which a display may do: the next frame
  shows the new state (a frame whose rendering fails is skipped; failing 30 frames in a row
  is a bug and raises);
* submits input events with ``machine.inputs.submit`` (thread-safe: the machine posts them at
  the instruction count where it takes them, so recordings stay exact);
* and, in ``run_with_window``, calls ``machine.request_stop()`` when the window is closed.

Nothing else of the machine is touched, so the guest stays deterministic given its inputs.
``pump()`` (events, then one frame) and ``frame()`` drive the window one step at a time (the
TUI, the tests); ``run()`` paces frames at ``fps`` (default 30) until the window closes or a
condition holds.  Only one window at a time: pygame has one display.  A frame costs about
5 ms in 80x25 text and 1 ms in mode 13h (rendering is most of it; measured under SDL's dummy
driver), taken from the guest's thread by the interpreter lock while it runs.

Keys.  ``KEYMAP`` maps pygame key codes (``pygame.K_*``, SDL keycodes) to the PS/2 key names
of ``aero.devices.ps2.KEYS``: letters, digits, punctuation, Enter, Escape, Backspace, Tab,
Space, the arrows, F1-F12, the left and right Shift/Ctrl/Alt/GUI keys, Menu, the lock keys,
Insert/Delete/Home/End/PageUp/PageDown, PrintScreen, Pause and the keypad.  Key codes follow
the host's layout, which suits a US layout on both sides (a character key types the character
printed on it); keys with no PS/2 name are ignored.  The host's key repeat is off: the guest's
keyboard repeats held keys itself, in virtual time.  When the window loses focus or closes,
every key and button the guest believes held is released.

Mouse.  Clicking the window grabs the pointer (the click itself is not sent); while grabbed,
relative motion, buttons and the wheel go to the guest as ``MouseInput`` (screen directions,
as the host reports them: dx right, dy down; dz positive towards the user, so a wheel turned up
is -1).  Motion events of one pump are merged; a button change carries the motion before it.
Ctrl+Alt+G releases the grab (and grabs again); the title says so while grabbed, as QEMU does.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")    # no banner on import
try:
    import pygame
except ImportError:                                          # pragma: no cover
    pygame = None

from ..inputs import KeyInput, MouseInput
from .render import render

DEFAULT_FPS = 30
MAX_SCALE = 4                   # automatic scale: at most 4x, within 90% of the desktop
NO_PICTURE = (640, 480)         # shown (black) while the CRTC describes no real mode
RENDER_RETRIES = 30             # consecutive failed renders tolerated (torn reads)
RELEASE_HINT = "Ctrl+Alt+G releases the mouse"
# pygame buttons 1 left, 2 middle, 3 right -> MouseInput bits 0 left, 2 middle, 1 right
_BUTTON_BITS = {1: 1, 2: 4, 3: 2}


def _keymap() -> dict[int, str]:
    if pygame is None:                                       # pragma: no cover
        return {}
    k = {getattr(pygame, f"K_{c}"): c for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
    k.update({getattr(pygame, f"K_F{n}"): f"F{n}" for n in range(1, 13)})
    k.update({getattr(pygame, f"K_KP{n}"): f"KP{n}" for n in range(10)})
    k.update({
        pygame.K_RETURN: "Enter", pygame.K_ESCAPE: "Escape", pygame.K_BACKSPACE: "Backspace",
        pygame.K_TAB: "Tab", pygame.K_SPACE: "Space",
        pygame.K_MINUS: "Minus", pygame.K_EQUALS: "Equal",
        pygame.K_LEFTBRACKET: "LeftBracket", pygame.K_RIGHTBRACKET: "RightBracket",
        pygame.K_BACKSLASH: "Backslash", pygame.K_SEMICOLON: "Semicolon",
        pygame.K_QUOTE: "Apostrophe", pygame.K_BACKQUOTE: "Grave", pygame.K_COMMA: "Comma",
        pygame.K_PERIOD: "Period", pygame.K_SLASH: "Slash", pygame.K_LESS: "NonUSBackslash",
        pygame.K_UP: "Up", pygame.K_DOWN: "Down", pygame.K_LEFT: "Left", pygame.K_RIGHT: "Right",
        pygame.K_INSERT: "Insert", pygame.K_DELETE: "Delete", pygame.K_HOME: "Home",
        pygame.K_END: "End", pygame.K_PAGEUP: "PageUp", pygame.K_PAGEDOWN: "PageDown",
        pygame.K_LSHIFT: "LeftShift", pygame.K_RSHIFT: "RightShift",
        pygame.K_LCTRL: "LeftCtrl", pygame.K_RCTRL: "RightCtrl",
        pygame.K_LALT: "LeftAlt", pygame.K_RALT: "RightAlt", pygame.K_MODE: "RightAlt",
        pygame.K_LGUI: "LeftMeta", pygame.K_RGUI: "RightMeta", pygame.K_MENU: "Menu",
        pygame.K_CAPSLOCK: "CapsLock", pygame.K_NUMLOCK: "NumLock",
        pygame.K_SCROLLOCK: "ScrollLock", pygame.K_PRINT: "PrintScreen",
        pygame.K_SYSREQ: "PrintScreen", pygame.K_PAUSE: "Pause", pygame.K_BREAK: "Pause",
        pygame.K_KP_PERIOD: "KPDot", pygame.K_KP_DIVIDE: "KPDivide",
        pygame.K_KP_MULTIPLY: "KPMultiply", pygame.K_KP_MINUS: "KPMinus",
        pygame.K_KP_PLUS: "KPPlus", pygame.K_KP_ENTER: "KPEnter",
    })
    return k


KEYMAP: dict[int, str] = _keymap()


class NoDisplay(RuntimeError):
    """No window can be opened (no display, or SDL failed); the message says why."""


def headless_reason() -> str | None:
    """Why no window can be opened here, or None if one may be (SDL has the last word)."""
    if pygame is None:
        return "pygame is not installed"
    if os.environ.get("SDL_VIDEODRIVER") or sys.platform in ("win32", "darwin"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no DISPLAY or WAYLAND_DISPLAY"
    return None


def open_window(machine, title: str = "guest", scale: int | None = None,
                fps: int = DEFAULT_FPS) -> tuple[DisplayWindow | None, str | None]:
    """``(window, None)``, or ``(None, line)`` with one line to print before going on
    headless (``aero: no display (...); running headless``)."""
    why = headless_reason()
    if why is None:
        try:
            return DisplayWindow(machine, title, scale, fps), None
        except NoDisplay as e:
            why = str(e)
    return None, f"aero: no display ({why}); running headless"


def fit_scale(width: int, height: int, bounds: tuple[int, int]) -> int:
    """The largest integer scale (1..MAX_SCALE) at which a width x height frame fits in
    ``bounds``."""
    s = min(bounds[0] // max(1, width), bounds[1] // max(1, height), MAX_SCALE)
    return max(1, s)


class DisplayWindow:
    """A window showing ``machine``'s screen and sending it the host's input.  ``scale``:
    a fixed integer scale, or None to pick one per mode (``fit_scale`` within 90% of the
    desktop).  Raises ``NoDisplay`` when SDL cannot open a window."""

    def __init__(self, machine, title: str = "guest", scale: int | None = None,
                 fps: int = DEFAULT_FPS):
        if pygame is None:
            raise NoDisplay("pygame is not installed")
        if scale is not None and scale < 1:
            raise ValueError(f"scale must be a positive integer, not {scale!r}")
        self.machine = machine
        self.title = title
        self.fixed_scale = scale
        self.fps = fps
        self.scale = 1
        self.frame_size = (0, 0)        # the guest frame's (width, height)
        self.frame_seconds = 0.0        # what the last frame cost (render, blit, flip)
        self.closed = False
        self.grabbed = False
        self.held: set[str] = set()     # PS/2 keys the guest has been told are down
        self.buttons = 0                # MouseInput button bits the guest has been told
        self._swallowed: set[int] = set()   # pygame keys kept from the guest (Ctrl+Alt+G)
        self._motion = [0, 0, 0]        # merged dx, dy (down), dz not yet submitted
        self._failures = 0
        try:
            pygame.display.init()
            info = pygame.display.Info()
            desk = (info.current_w, info.current_h)
            self.bounds = ((desk[0] * 9 // 10, desk[1] * 9 // 10) if min(desk) > 0
                           else (1024, 768))
            pygame.key.set_repeat()     # no host repeat: the guest keyboard repeats itself
            self._set_mode(*NO_PICTURE)
        except pygame.error as e:
            pygame.display.quit()
            raise NoDisplay(f"SDL: {e}") from None

    # -- drawing -----------------------------------------------------------------------------
    @property
    def surface(self):
        """The window's surface (what is on the screen), or None once closed."""
        return None if self.closed else pygame.display.get_surface()

    def _set_mode(self, width: int, height: int) -> None:
        self.scale = self.fixed_scale or fit_scale(width, height, self.bounds)
        self.frame_size = (width, height)
        pygame.display.set_mode((width * self.scale, height * self.scale))
        self._set_title()

    def _set_title(self) -> None:
        hint = f" - {RELEASE_HINT}" if self.grabbed else ""
        pygame.display.set_caption(f"Aero - {self.title}{hint}")

    def frame(self) -> None:
        """Render the guest's screen into the window and show it."""
        if self.closed:
            return
        t0 = time.perf_counter()
        try:
            img = render(self.machine.vga)
        except Exception:
            self._failures += 1         # a torn read of a changing mode: try the next frame
            if self._failures > RENDER_RETRIES:
                raise
            return
        self._failures = 0
        h, w = img.shape[:2]
        if w < NO_PICTURE[0] // 4 or h < NO_PICTURE[1] // 4:    # CRTC not yet programmed
            w, h = self.frame_size
            img = np.zeros((h, w, 3), np.uint8)
        if (w, h) != self.frame_size:
            self._set_mode(w, h)
        src = pygame.image.frombuffer(np.ascontiguousarray(img), (w, h), "RGB")
        screen = pygame.display.get_surface()
        if self.scale == 1:
            screen.blit(src, (0, 0))
        else:                           # nearest neighbour, straight into the window
            pygame.transform.scale(src.convert(screen), screen.get_size(), screen)
        pygame.display.flip()
        self.frame_seconds = time.perf_counter() - t0

    # -- input -------------------------------------------------------------------------------
    def pump(self) -> bool:
        """Handle pending window events (input to the guest, grab, close), then show one
        frame.  False once the window is closed."""
        if self.closed:
            return False
        for ev in pygame.event.get():
            self._handle(ev)
            if self.closed:
                return False
        self._flush_motion()
        self.frame()
        return True

    def _submit(self, event) -> None:
        self.machine.inputs.submit(event)

    def _handle(self, ev) -> None:
        t = ev.type
        if t == pygame.QUIT:
            self.close()
        elif t in (pygame.KEYDOWN, pygame.KEYUP):
            self._key(ev.key, t == pygame.KEYDOWN)
        elif t == pygame.WINDOWFOCUSLOST:
            self._release_all()
            self._grab(False)
        elif t == pygame.MOUSEBUTTONDOWN and ev.button in _BUTTON_BITS and not self.grabbed:
            self._grab(True)            # the grabbing click stays with the host
        elif not self.grabbed:
            return
        elif t in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP):
            bit = _BUTTON_BITS.get(ev.button, 0)        # 4-7: the wheel, see MOUSEWHEEL
            new = self.buttons | bit if t == pygame.MOUSEBUTTONDOWN else self.buttons & ~bit
            if new != self.buttons:
                self.buttons = new
                self._flush_motion(force=True)
        elif t == pygame.MOUSEMOTION:
            self._motion[0] += ev.rel[0]
            self._motion[1] += ev.rel[1]
        elif t == pygame.MOUSEWHEEL:
            self._motion[2] += ev.y if getattr(ev, "flipped", False) else -ev.y

    def _key(self, key: int, down: bool) -> None:
        ctrl = self.held & {"LeftCtrl", "RightCtrl"}
        alt = self.held & {"LeftAlt", "RightAlt"}
        if down and key == pygame.K_g and ctrl and alt:
            self._swallowed.add(key)
            self._grab(not self.grabbed)
            return
        if not down and key in self._swallowed:
            self._swallowed.discard(key)
            return
        name = KEYMAP.get(key)
        if name is None or (not down and name not in self.held):
            return
        if down:
            self.held.add(name)
        else:
            self.held.discard(name)
        self._submit(KeyInput(name, down))

    def _flush_motion(self, force: bool = False) -> None:
        dx, dy, dz = self._motion
        if force or dx or dy or dz:
            self._motion = [0, 0, 0]
            self._submit(MouseInput(dx, dy, dz, self.buttons if force else None))

    def _grab(self, on: bool) -> None:
        if on == self.grabbed:
            return
        if not on:
            self._flush_motion()
            if self.buttons:
                self.buttons = 0
                self._flush_motion(force=True)
        self.grabbed = on
        pygame.event.set_grab(on)
        pygame.mouse.set_visible(not on)    # hidden and grabbed: relative motion, unbounded
        self._set_title()

    def _release_all(self) -> None:
        for name in sorted(self.held):
            self._submit(KeyInput(name, False))
        self.held.clear()
        self._swallowed.clear()
        if self.buttons:
            self.buttons = 0
            self._flush_motion(force=True)

    # -- running -----------------------------------------------------------------------------
    def run(self, until=None) -> bool:
        """Show frames at ``fps`` until the window is closed (False) or ``until()`` is true
        (True, after showing one last frame)."""
        period = 1.0 / self.fps
        next_t = time.monotonic()
        while True:
            if until is not None and until():
                self.pump()
                return True
            if not self.pump():
                return False
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)       # sleeps without the GIL: the guest runs meanwhile
            else:
                next_t = time.monotonic()   # late: do not try to catch up

    def close(self) -> None:
        """Release held keys and buttons to the guest and close the window."""
        if self.closed:
            return
        self._release_all()
        if self.grabbed:
            pygame.event.set_grab(False)
            pygame.mouse.set_visible(True)
            self.grabbed = False
        self.closed = True
        pygame.display.quit()


def run_with_window(window: DisplayWindow, max_instructions: int | None = None,
                    timeout: float | None = None, realtime: bool = False, go=None):
    """Run ``window.machine`` (``Machine.run`` with these limits, or ``go()``) in a worker
    thread while the window runs in this one; closing the window stops the machine.  Returns
    the RunResult (or what ``go`` returned; an exception from the run is raised here).  The
    window stays open when the run ends."""
    machine = window.machine
    box = {}

    def work():
        try:
            box["result"] = go() if go is not None else machine.run(
                max_instructions=max_instructions, timeout=timeout, realtime=realtime)
        except BaseException as e:      # carried to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=work, name="aero-machine", daemon=True)
    worker.start()
    try:
        window.run(until=lambda: not worker.is_alive())
    finally:
        if worker.is_alive():
            machine.request_stop()
        worker.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
