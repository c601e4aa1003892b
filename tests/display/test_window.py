"""The guest display window (aero/display/window.py), headless under SDL's dummy video driver:
frames in the window surface equal the golden screens at scale 1 and scaled by nearest
neighbour; keys typed into the window reach a guest running in a worker thread; mouse events
become MouseInput with the PS/2 signs; no display means one line and no window; closing the
window stops the machine."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from aero import scenarios as S
from aero.devices import ps2
from aero.display import window as W
from aero.display.png import read_png
from aero.inputs import KeyInput, MouseInput

pygame = W.pygame
if pygame is None:
    pytest.skip("pygame is not installed", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def dummy_video(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield
    pygame.display.quit()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The hello, mode13h and vbe machines run to their ends (their screens are final)."""
    out = {}
    for name in ("hello", "mode13h", "vbe"):
        m = S.build(S.load(name), str(tmp_path_factory.mktemp(name)))
        r = m.run(timeout=120)
        assert r.status == "debug-exit", (name, r)
        out[name] = m
    return out


def surface_rgb(window) -> np.ndarray:
    """What the window shows, as an (H, W, 3) array."""
    return pygame.surfarray.array3d(window.surface).swapaxes(0, 1)


def golden(name: str) -> np.ndarray:
    with open(S.golden_path(name), "rb") as f:
        return read_png(f.read())


def post(kind, **fields):
    pygame.event.post(pygame.event.Event(kind, **fields))


def post_key(key, down):
    post(pygame.KEYDOWN if down else pygame.KEYUP, key=key, mod=0, unicode="", scancode=0)


class Recorder:
    """Stands in for the input queue's ``submit``: what the window sent, in order."""

    def __init__(self, machine, monkeypatch):
        self.events = []
        monkeypatch.setattr(machine.inputs, "submit", self.events.append)

    def take(self):
        out, self.events[:] = list(self.events), []
        return out


def wait_for(pred, seconds=60.0):
    end = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


# ----------------------------------------------------------------------------------------------
# import and the headless fallback
# ----------------------------------------------------------------------------------------------
def test_import_opens_nothing_and_prints_nothing():
    env = {k: v for k, v in os.environ.items() if k != "PYGAME_HIDE_SUPPORT_PROMPT"}
    r = subprocess.run([sys.executable, "-c", "import aero.display.window, pygame;"
                        "print(pygame.display.get_init())"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "False\n", "")


def test_no_display_means_one_line_and_no_window(monkeypatch, capfd, tmp_path):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    m = S.build(S.load("hello"), str(tmp_path))
    win, why = W.open_window(m, "hello")
    assert win is None and not pygame.display.get_init()
    assert why == "aero: no display (no DISPLAY or WAYLAND_DISPLAY); running headless"
    assert capfd.readouterr() == ("", "")


def test_sdl_failure_means_one_line_and_no_window(monkeypatch, capfd, tmp_path):
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")
    m = S.build(S.load("hello"), str(tmp_path))
    win, why = W.open_window(m, "hello")
    assert win is None and not pygame.display.get_init()
    assert why.startswith("aero: no display (SDL: ") and why.endswith("); running headless")
    assert "\n" not in why
    assert capfd.readouterr() == ("", "")


def test_open_window_with_a_display(dummy_video, tmp_path):
    m = S.build(S.load("hello"), str(tmp_path))
    win, why = W.open_window(m, "hello", scale=1)
    assert why is None and isinstance(win, W.DisplayWindow)
    assert pygame.display.get_caption()[0] == "Aero - hello"
    win.close()
    assert win.closed and win.surface is None and not win.pump()


# ----------------------------------------------------------------------------------------------
# frames
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hello", "mode13h", "vbe"])
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_frames_equal_the_golden_screens(dummy_video, finished, name, scale):
    win = W.DisplayWindow(finished[name], name, scale=scale)
    win.frame()
    want = golden(name).repeat(scale, axis=0).repeat(scale, axis=1)   # nearest neighbour
    got = surface_rgb(win)
    assert got.shape == want.shape
    assert S.compare_frames(got, want, name) is None
    assert win.frame_size == (want.shape[1] // scale, want.shape[0] // scale)
    win.close()


def test_window_follows_mode_changes(dummy_video, tmp_path):
    m = S.build(S.load("mode13h"), str(tmp_path))
    win = W.DisplayWindow(m, "mode13h", scale=2)
    win.frame()                     # power-on: the CRTC describes no mode yet, black 640x480
    assert win.frame_size == W.NO_PICTURE and not surface_rgb(win).any()
    m.run(max_instructions=100)     # the Aero BIOS's POST has set up text mode...
    assert win.pump()
    m.run(timeout=60)               # ... and the guest switched to mode 13h
    assert win.pump()
    assert win.frame_size == (320, 200) and win.surface.get_size() == (640, 400)
    want = golden("mode13h").repeat(2, axis=0).repeat(2, axis=1)
    assert S.compare_frames(surface_rgb(win), want, "mode13h") is None
    win.close()


def test_automatic_scale():
    assert W.fit_scale(320, 200, (1728, 972)) == 4         # at most MAX_SCALE
    assert W.fit_scale(320, 200, (921, 691)) == 2
    assert W.fit_scale(720, 400, (1728, 972)) == 2
    assert W.fit_scale(640, 480, (921, 691)) == 1
    assert W.fit_scale(1024, 768, (921, 691)) == 1         # never below 1


# ----------------------------------------------------------------------------------------------
# keyboard
# ----------------------------------------------------------------------------------------------
def test_keymap_covers_the_keyboard_with_ps2_names():
    for key, name in W.KEYMAP.items():
        assert name in ps2.KEYS, (key, name)
    names = set(W.KEYMAP.values())
    wanted = set("abcdefghijklmnopqrstuvwxyz0123456789") | {f"F{n}" for n in range(1, 13)}
    wanted |= {"Enter", "Escape", "Backspace", "Tab", "Space", "Up", "Down", "Left", "Right",
               "LeftShift", "RightShift", "LeftCtrl", "RightCtrl", "LeftAlt", "RightAlt",
               "Insert", "Delete", "Home", "End", "PageUp", "PageDown", "Minus", "Equal",
               "LeftBracket", "RightBracket", "Backslash", "Semicolon", "Apostrophe", "Grave",
               "Comma", "Period", "Slash", "KPEnter", "KP0", "KP9", "KPDot"}
    assert wanted <= names, wanted - names
    assert W.KEYMAP[pygame.K_RETURN] == "Enter" and W.KEYMAP[pygame.K_QUOTE] == "Apostrophe"


def test_keys_typed_into_the_window_reach_the_guest(dummy_video, tmp_path):
    """irq echoes typed keys to COM1; the machine runs in a worker thread (run_with_window)
    while a third thread types "hi" and Enter into the window once the guest prompts."""
    out = bytearray()
    m = S.build(S.load("irq"), str(tmp_path), serial=out.append, keys="")
    win = W.DisplayWindow(m, "irq", scale=1)

    def typist():
        if not wait_for(lambda: out.startswith(b"type> ")):
            return
        for key in (pygame.K_h, pygame.K_i, pygame.K_RETURN):
            post_key(key, True)
            post_key(key, False)
        post_key(pygame.K_F13, True)            # no PS/2 key: ignored

    t = threading.Thread(target=typist, daemon=True)
    t.start()
    r = W.run_with_window(win, timeout=60)
    t.join()
    assert (r.status, r.exit_code) == ("debug-exit", 33)
    assert bytes(out) == b"type> hi\r\n50 timer ticks later: bye\r\n"
    assert win.pump() and not win.held          # every key went up again
    win.close()


def test_key_events_in_order_and_released_on_focus_loss(dummy_video, tmp_path, monkeypatch):
    m = S.build(S.load("hello"), str(tmp_path))
    win = W.DisplayWindow(m, "hello", scale=1)
    rec = Recorder(m, monkeypatch)
    post_key(pygame.K_LSHIFT, True)
    post_key(pygame.K_a, True)
    post_key(pygame.K_a, False)
    post_key(pygame.K_UP, False)                # never went down here: not sent
    post_key(pygame.K_LCTRL, True)
    win.pump()
    assert rec.take() == [KeyInput("LeftShift", True), KeyInput("a", True),
                          KeyInput("a", False), KeyInput("LeftCtrl", True)]
    post(pygame.WINDOWFOCUSLOST)
    win.pump()
    assert rec.take() == [KeyInput("LeftCtrl", False), KeyInput("LeftShift", False)]
    win.close()


# ----------------------------------------------------------------------------------------------
# mouse
# ----------------------------------------------------------------------------------------------
def test_mouse_grab_motion_and_buttons(dummy_video, tmp_path, monkeypatch):
    m = S.build(S.load("hello"), str(tmp_path))
    win = W.DisplayWindow(m, "hello", scale=1)
    rec = Recorder(m, monkeypatch)
    post(pygame.MOUSEMOTION, pos=(10, 10), rel=(4, 4), buttons=(0, 0, 0))
    win.pump()
    assert rec.take() == [] and not win.grabbed            # not grabbed: the host's pointer
    post(pygame.MOUSEBUTTONDOWN, pos=(10, 10), button=1)
    post(pygame.MOUSEBUTTONUP, pos=(10, 10), button=1)
    win.pump()
    assert win.grabbed and rec.take() == []                # the grabbing click is not sent
    assert pygame.display.get_caption()[0] == f"Aero - hello - {W.RELEASE_HINT}"
    # right 5, down 3, then right 2, up 7: one event, in screen directions (dy down)
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(5, 3), buttons=(0, 0, 0))
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(2, -7), buttons=(0, 0, 0))
    win.pump()
    assert rec.take() == [MouseInput(7, -4, 0, None)]
    # a button change carries the motion before it; motion after it comes next
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(-1, 0), buttons=(0, 0, 0))
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=3)
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(0, 2), buttons=(0, 0, 1))
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=1)
    post(pygame.MOUSEBUTTONUP, pos=(0, 0), button=3)
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=2)
    win.pump()
    assert rec.take() == [MouseInput(-1, 0, 0, 0b010), MouseInput(0, 2, 0, 0b011),
                          MouseInput(0, 0, 0, 0b001), MouseInput(0, 0, 0, 0b101)]
    win.close()


def test_mouse_wheel(dummy_video, tmp_path, monkeypatch):
    m = S.build(S.load("hello"), str(tmp_path))
    win = W.DisplayWindow(m, "hello", scale=1)
    rec = Recorder(m, monkeypatch)
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=1)
    win.pump()
    post(pygame.MOUSEWHEEL, x=0, y=1, flipped=False)        # away from the user: dz -1
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=4)      # SDL's legacy wheel button
    post(pygame.MOUSEBUTTONUP, pos=(0, 0), button=4)
    win.pump()
    assert rec.take() == [MouseInput(0, 0, -1, None)]
    post(pygame.MOUSEWHEEL, x=0, y=-3, flipped=False)       # towards the user: dz +3
    post(pygame.MOUSEWHEEL, x=0, y=1, flipped=True)         # "natural" scrolling
    win.pump()
    assert rec.take() == [MouseInput(0, 0, 4, None)]
    win.close()


def test_ctrl_alt_g_releases_the_grab(dummy_video, tmp_path, monkeypatch):
    m = S.build(S.load("hello"), str(tmp_path))
    win = W.DisplayWindow(m, "hello", scale=1)
    rec = Recorder(m, monkeypatch)
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=1)
    win.pump()
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=1)     # held when the grab ends
    post_key(pygame.K_LCTRL, True)
    post_key(pygame.K_LALT, True)
    post_key(pygame.K_g, True)
    post_key(pygame.K_g, False)
    post_key(pygame.K_LALT, False)
    post_key(pygame.K_LCTRL, False)
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(3, 3), buttons=(0, 0, 0))
    win.pump()
    assert not win.grabbed and pygame.display.get_caption()[0] == "Aero - hello"
    assert rec.take() == [MouseInput(0, 0, 0, 0b001),
                          KeyInput("LeftCtrl", True), KeyInput("LeftAlt", True),
                          MouseInput(0, 0, 0, 0),       # G is the host's; buttons released
                          KeyInput("LeftAlt", False), KeyInput("LeftCtrl", False)]
    win.close()


def test_pointer_moved_up_reaches_the_ps2_mouse_as_up(dummy_video, tmp_path):
    """The whole way: the host pointer moves up 3 and right 2; the PS/2 mouse (reporting still
    off, so it accumulates) holds the packet counts, whose Y axis points up."""
    m = S.build(S.load("hello"), str(tmp_path))
    win = W.DisplayWindow(m, "hello", scale=1)
    post(pygame.MOUSEBUTTONDOWN, pos=(0, 0), button=1)
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(2, -3), buttons=(0, 0, 0))
    win.pump()
    win.close()
    assert m.inputs.drain() == 1            # what the run loop does between slices
    m.clock.run_due()
    assert (m.kbc.mouse.dx, m.kbc.mouse.dy) == (2, 3)


# ----------------------------------------------------------------------------------------------
# running with the window
# ----------------------------------------------------------------------------------------------
def test_closing_the_window_stops_the_machine(dummy_video, tmp_path):
    out = bytearray()
    m = S.build(S.load("irq"), str(tmp_path), serial=out.append, keys="")
    win = W.DisplayWindow(m, "irq", scale=1)

    def closer():
        if wait_for(lambda: out.startswith(b"type> ")):     # the guest runs, waiting for keys
            post(pygame.QUIT)

    t = threading.Thread(target=closer, daemon=True)
    t.start()
    r = W.run_with_window(win, timeout=60)
    t.join()
    assert (r.status, r.exit_code) == ("stop", 0)
    assert win.closed and not pygame.display.get_init()
    assert bytes(out) == b"type> "
    assert m.run(max_instructions=m.cpu.icount + 1000).status == "limit"   # resumable


def test_run_ends_with_the_guest_showing_its_last_screen(dummy_video, tmp_path):
    m = S.build(S.load("mode13h"), str(tmp_path))
    win = W.DisplayWindow(m, "mode13h", scale=1)
    r = W.run_with_window(win, timeout=60)
    assert (r.status, r.exit_code) == ("debug-exit", 33)
    assert not win.closed
    assert S.compare_frames(surface_rgb(win), golden("mode13h"), "mode13h") is None
    win.close()


def test_an_exception_in_the_run_reaches_the_caller(dummy_video, tmp_path):
    m = S.build(S.load("mode13h"), str(tmp_path))

    def boom(machine, addr):
        raise RuntimeError("hook failed")

    m.hooks.exec(boom, 0x7C00)
    win = W.DisplayWindow(m, "mode13h", scale=1)
    with pytest.raises(RuntimeError, match="hook failed"):
        W.run_with_window(win, timeout=60)
    win.close()
