"""i8042 keyboard controller + PS/2 keyboard and mouse: port-level sequences per the IBM PS/2
technical reference and the 8042 data sheet."""

import pytest

from aero.clock import Clock
from aero.devices.base import IOBus, IRQLines
from aero.devices.i8042 import I8042, XLAT_TABLE
from aero.devices.ps2 import KEYS, break_bytes, make_bytes, keys_for_char
from aero.testing.fakecpu import FakeCPU


class Rig:
    def __init__(self, ips=1_000_000):
        self.cpu = FakeCPU()
        self.clock = Clock(self.cpu, ips=ips)
        self.edges = []
        self.irq = IRQLines(lambda line, level: self.edges.append((line, level)))
        self.resets = 0
        self.a20 = []
        self.kbc = I8042(self.irq, self.clock, reset_cb=self._reset, a20_cb=self.a20.append)
        self.bus = IOBus()
        self.kbc.register(self.bus)

    def _reset(self):
        self.resets += 1

    def status(self):
        return self.bus.read(0x64, 1)

    def cmd(self, c, data=None):
        self.bus.write(0x64, 1, c)
        if data is not None:
            self.bus.write(0x60, 1, data)

    def send(self, b):
        self.bus.write(0x60, 1, b)

    def read_all(self):
        out = []
        while self.status() & 0x01:
            out.append(self.bus.read(0x60, 1))
        return out

    def rising(self, line):
        return sum(1 for l, lv in self.edges if l == line and lv)

    def advance(self, ticks):
        self.cpu.icount += ticks
        self.clock.run_due()

    def set_cb(self, v):
        self.cmd(0x60, v)


@pytest.fixture
def rig():
    return Rig()


def test_power_on_status_and_command_byte(rig):
    assert rig.status() == 0x18                 # A2 (last write was a command) | INH
    rig.cmd(0x20)
    assert rig.status() & 0x01 and not rig.status() & 0x20
    assert rig.bus.read(0x60, 1) == 0x03        # INT | INT2 (QEMU's power-on value)
    assert rig.status() & 0x01 == 0
    assert rig.bus.read(0x60, 1) == 0x03        # buffer empty: the last byte again


def test_a2_bit_tracks_command_vs_data(rig):
    rig.cmd(0x60)
    assert rig.status() & 0x08
    rig.send(0x00)
    assert not rig.status() & 0x08


def test_self_test_and_interface_tests(rig):
    assert not rig.status() & 0x04
    rig.cmd(0xAA)
    assert rig.read_all() == [0x55]
    assert rig.status() & 0x04                  # SYS set by a passed self test
    rig.cmd(0xAB)
    assert rig.read_all() == [0x00]
    rig.cmd(0xA9)
    assert rig.read_all() == [0x00]
    rig.cmd(0xA4)
    assert rig.read_all() == [0xF1]             # no password installed


def test_command_byte_write_read_and_ram(rig):
    rig.set_cb(0x65)
    assert rig.status() & 0x04                  # SYS follows command byte bit 2
    rig.cmd(0x20)
    assert rig.read_all() == [0x65]
    rig.cmd(0x61, 0x5A)                         # controller RAM byte 1
    rig.cmd(0x21)
    assert rig.read_all() == [0x5A]
    rig.cmd(0xA8)
    rig.cmd(0x20)
    assert rig.read_all() == [0x45]             # EN2 cleared
    rig.cmd(0xA7)
    rig.cmd(0x20)
    assert rig.read_all() == [0x65]
    rig.cmd(0xA8)
    rig.cmd(0xAD)
    rig.cmd(0x20)
    assert rig.read_all() == [0x55]             # EN set
    rig.cmd(0xAE)
    rig.cmd(0x20)
    assert rig.read_all() == [0x45]


def test_keyboard_reset_one_byte_at_a_time_with_irq1_edges(rig):
    rig.set_cb(0x01)                            # INT, no translation
    rig.edges.clear()
    rig.send(0xFF)
    assert rig.status() & 0x01
    assert rig.irq.level[1]
    assert rig.bus.read(0x60, 1) == 0xFA
    assert rig.irq.level[1]                     # next byte loaded at once: a new edge
    assert rig.bus.read(0x60, 1) == 0xAA
    assert not rig.irq.level[1] and not rig.status() & 0x01
    assert rig.rising(1) == 2
    assert rig.rising(12) == 0


def test_no_irq1_without_int(rig):
    rig.set_cb(0x00)
    rig.edges.clear()
    rig.send(0xEE)
    assert rig.status() & 0x01 and rig.rising(1) == 0
    assert rig.read_all() == [0xEE]             # echo


def test_identify_translated_and_raw(rig):
    rig.set_cb(0x00)
    rig.send(0xF2)
    assert rig.read_all() == [0xFA, 0xAB, 0x83]
    rig.set_cb(0x40)                            # XLAT: 0x83 -> 0x41
    rig.send(0xF2)
    assert rig.read_all() == [0xFA, 0xAB, 0x41]


def test_scancode_set_2_make_break_and_translation(rig):
    rig.set_cb(0x00)
    rig.kbc.key("a", True)
    rig.kbc.key("a", False)
    rig.kbc.key("Up", True)
    rig.kbc.key("Up", False)
    assert rig.read_all() == [0x1C, 0xF0, 0x1C, 0xE0, 0x75, 0xE0, 0xF0, 0x75]
    rig.set_cb(0x40)
    rig.kbc.key("a", True)
    rig.kbc.key("a", False)
    rig.kbc.key("Up", True)
    rig.kbc.key("Up", False)
    out = rig.read_all()
    rig.kbc.key("Pause", True)
    rig.kbc.key("Pause", False)
    out += rig.read_all()
    rig.kbc.key("PrintScreen", True)
    rig.kbc.key("PrintScreen", False)
    assert out + rig.read_all() == [0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8,
                              0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5,
                              0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA]


def test_translation_table_matches_every_key():
    for name, (s1, s2, _s3) in KEYS.items():
        if name in ("Pause", "PrintScreen"):
            continue
        assert XLAT_TABLE[s2 & 0xFF] == s1 & 0xFF, name
    assert XLAT_TABLE[0x83] == 0x41 and XLAT_TABLE[0xFA] == 0xFA


@pytest.mark.parametrize("name,set2,set1", [
    ("Enter", [0x5A], [0x1C]), ("LeftShift", [0x12], [0x2A]), ("F1", [0x05], [0x3B]),
    ("F7", [0x83], [0x41]), ("KP7", [0x6C], [0x47]), ("KPEnter", [0xE0, 0x5A], [0xE0, 0x1C]),
    ("KPDivide", [0xE0, 0x4A], [0xE0, 0x35]), ("RightCtrl", [0xE0, 0x14], [0xE0, 0x1D]),
    ("Delete", [0xE0, 0x71], [0xE0, 0x53]), ("Escape", [0x76], [0x01]),
])
def test_key_codes(name, set2, set1):
    assert make_bytes(name, 2) == set2
    assert make_bytes(name, 1) == set1
    assert break_bytes(name, 2) == set2[:-1] + [0xF0, set2[-1]]
    assert break_bytes(name, 1) == set1[:-1] + [set1[-1] | 0x80]


def test_key_names_case_and_aliases(rig):
    rig.set_cb(0x00)
    rig.kbc.key("ENTER", True)
    rig.kbc.key("esc", True)
    rig.kbc.key("arrowleft", True)
    assert rig.read_all() == [0x5A, 0x76, 0xE0, 0x6B]
    assert keys_for_char("A") == ("a", True)
    assert keys_for_char("?") == ("Slash", True)
    with pytest.raises(KeyError):
        rig.kbc.key("NoSuchKey", True)


def test_scancode_set_select_and_query(rig):
    rig.set_cb(0x00)
    rig.send(0xF0)
    rig.send(0x00)
    assert rig.read_all() == [0xFA, 0xFA, 0x02]
    rig.send(0xF0)
    rig.send(0x01)
    assert rig.read_all() == [0xFA, 0xFA]
    rig.kbc.key("a", True)
    rig.kbc.key("a", False)
    assert rig.read_all() == [0x1E, 0x9E]
    rig.send(0xF0)
    rig.send(0x03)
    rig.kbc.key("F1", True)
    rig.kbc.key("F1", False)
    assert rig.read_all() == [0xFA, 0xFA, 0x07, 0xF0, 0x07]
    rig.send(0xF9)                               # set 3: all keys make only
    rig.kbc.key("F1", True)
    rig.kbc.key("F1", False)
    assert rig.read_all() == [0xFA, 0x07]
    rig.send(0xF0)
    rig.send(0x07)
    assert rig.read_all() == [0xFA, 0xFE]        # no such set
    rig.set_cb(0x40)
    rig.send(0xF0)
    rig.send(0x00)
    assert rig.read_all() == [0xFA, 0xFA, 0x3F]  # set 3, translated


def test_leds_typematic_enable_disable_and_unknown(rig):
    rig.set_cb(0x00)
    rig.send(0xED)
    rig.send(0x07)
    assert rig.read_all() == [0xFA, 0xFA]
    assert rig.kbc.keyboard.leds == 7
    rig.send(0xF3)
    rig.send(0x00)
    assert rig.read_all() == [0xFA, 0xFA]
    assert rig.kbc.keyboard.typematic == 0
    rig.send(0xF5)                               # default disable
    assert rig.read_all() == [0xFA]
    assert rig.kbc.keyboard.typematic == 0x2B
    rig.kbc.key("a", True)
    assert rig.read_all() == []
    rig.send(0xF4)
    assert rig.read_all() == [0xFA]
    rig.kbc.key("b", True)
    assert rig.read_all() == [0x32]
    rig.send(0xEF)
    assert rig.read_all() == [0xFE]
    rig.send(0xFE)                               # resend the last byte
    assert rig.read_all() == [0xFE]
    rig.send(0xF6)
    assert rig.read_all() == [0xFA]


def test_keyboard_interface_disable_holds_data(rig):
    rig.set_cb(0x01)
    rig.cmd(0xAD)
    rig.kbc.key("a", True)
    assert not rig.status() & 0x01
    rig.cmd(0xAE)
    assert rig.read_all() == [0x1C]


def test_sending_to_keyboard_reenables_interface(rig):
    rig.set_cb(0x10)
    rig.send(0xEE)
    assert rig.read_all() == [0xEE]
    rig.cmd(0x20)
    assert rig.read_all() == [0x00]


def test_bytes_wait_in_device_while_output_buffer_full(rig):
    rig.set_cb(0x00)
    for k in "abc":
        rig.kbc.key(k, True)
    assert rig.status() & 0x01
    assert len(rig.kbc.keyboard.queue) == 2
    assert rig.read_all() == [0x1C, 0x32, 0x21]


def test_keyboard_buffer_overflow_code(rig):
    rig.set_cb(0x00)
    for _ in range(20):
        rig.kbc.key("a", True)
    out = rig.read_all()
    assert out[:17] == [0x1C] * 17 and out[17:] == [0x00]


def test_typematic_repeat_on_virtual_time(rig):
    rig.set_cb(0x00)
    rig.send(0xF3)
    rig.send(0x00)                               # 30 cps (33.36 ms), 250 ms delay
    rig.read_all()
    rig.kbc.key("a", True)
    assert rig.read_all() == [0x1C]
    rig.advance(250_000 - 1)
    assert rig.read_all() == []
    rig.advance(1)
    assert rig.read_all() == [0x1C]
    rig.advance(33_360 - 1)
    assert rig.read_all() == []
    rig.advance(1)
    assert rig.read_all() == [0x1C]
    rig.kbc.key("a", False)
    assert rig.read_all() == [0xF0, 0x1C]
    rig.advance(1_000_000)
    assert rig.read_all() == []


def test_typematic_default_and_last_key_repeats(rig):
    rig.set_cb(0x00)
    rig.kbc.key("a", True)
    rig.kbc.key("LeftShift", True)
    rig.read_all()
    rig.advance(500_000)                         # default delay 500 ms
    assert rig.read_all() == [0x12]
    rig.advance(91_740)                          # (8+3)*2*4.17 ms
    assert rig.read_all() == [0x12]


def test_output_port_a20_and_reset(rig):
    rig.cmd(0xD0)
    assert rig.read_all() == [0xCF]
    rig.cmd(0xD1, 0xDD)                          # A20 off, no reset
    assert rig.a20 == [False] and rig.resets == 0
    rig.cmd(0xD0)
    assert rig.read_all() == [0xCD]
    rig.cmd(0xD1, 0xDF)
    assert rig.a20 == [False, True]
    rig.cmd(0xD1, 0xDE)                          # bit 0 low: system reset
    assert rig.resets == 1
    rig.cmd(0xFF)                                # pulse nothing
    assert rig.resets == 1
    rig.cmd(0xFE)                                # pulse bit 0: reset
    assert rig.resets == 2
    rig.cmd(0xF0)
    assert rig.resets == 3
    rig.cmd(0xDD)
    assert rig.a20[-1] is False


def test_output_port_reports_obf_bits(rig):
    rig.set_cb(0x00)
    rig.cmd(0xD2, 0x11)
    rig.cmd(0xD0)                                # read while the keyboard byte is waiting
    assert rig.bus.read(0x60, 1) == 0x11
    assert rig.bus.read(0x60, 1) == 0xDF         # bit 4: output buffer full (IRQ 1)
    rig.cmd(0xD3, 0x22)
    rig.cmd(0xD0)
    assert rig.read_all() == [0x22, 0xEF]        # bit 5: aux output buffer full (IRQ 12)


def test_write_kbd_and_aux_output_buffers(rig):
    rig.set_cb(0x03)
    rig.edges.clear()
    rig.cmd(0xD2, 0x42)
    assert rig.status() & 0x21 == 0x01 and rig.irq.level[1]
    assert rig.bus.read(0x60, 1) == 0x42
    rig.cmd(0xD3, 0x43)
    assert rig.status() & 0x21 == 0x21 and rig.irq.level[12] and not rig.irq.level[1]
    assert rig.bus.read(0x60, 1) == 0x43
    assert not rig.irq.level[12]


def test_input_port_and_test_inputs(rig):
    rig.cmd(0xC0)
    assert rig.read_all() == [0x80]
    rig.cmd(0xE0)
    assert rig.read_all() == [0x00]


# -- mouse -----------------------------------------------------------------------------------------

def aux(rig, *bs):
    for b in bs:
        rig.cmd(0xD4, b)


def test_mouse_reset_via_aux_with_irq12(rig):
    rig.set_cb(0x02)
    rig.edges.clear()
    aux(rig, 0xFF)
    assert rig.status() & 0x21 == 0x21
    assert rig.read_all() == [0xFA, 0xAA, 0x00]
    assert rig.rising(12) == 3 and rig.rising(1) == 0


def test_mouse_aux_disabled_holds_data(rig):
    rig.set_cb(0x00)
    aux(rig, 0xF2)
    rig.read_all()
    rig.cmd(0xA7)
    rig.kbc.mouse.enabled = True
    rig.kbc.mouse_event(1, 0)
    assert not rig.status() & 0x01
    rig.cmd(0xA8)
    assert rig.read_all() == [0x08, 0x01, 0x00]


def test_mouse_id_knocks(rig):
    rig.set_cb(0x00)
    aux(rig, 0xF2)
    assert rig.read_all() == [0xFA, 0x00]
    aux(rig, 0xF3, 200, 0xF3, 100, 0xF3, 80, 0xF2)
    assert rig.read_all() == [0xFA] * 6 + [0xFA, 0x03]
    aux(rig, 0xF3, 200, 0xF3, 200, 0xF3, 80, 0xF2)
    assert rig.read_all() == [0xFA] * 6 + [0xFA, 0x04]
    aux(rig, 0xFF, 0xF2)
    assert rig.read_all() == [0xFA, 0xAA, 0x00, 0xFA, 0x00]


def test_mouse_knock_must_be_consecutive(rig):
    rig.set_cb(0x00)
    aux(rig, 0xF3, 200, 0xF3, 100, 0xE6, 0xF3, 80, 0xF2)
    assert rig.read_all()[-1] == 0x00
    aux(rig, 0xF3, 200, 0xF3, 200, 0xF3, 80, 0xF2)  # the Explorer knock needs ID 3 first
    assert rig.read_all()[-1] == 0x00


def test_mouse_stream_packets_sign_overflow_buttons(rig):
    rig.set_cb(0x00)
    m = rig.kbc
    m.mouse_event(5, 0)                          # reporting disabled after power-on
    assert rig.read_all() == []
    aux(rig, 0xF4)
    assert rig.read_all() == [0xFA]
    m.mouse_event(5, -3)                         # right and up
    assert rig.read_all() == [0x08, 0x05, 0x03]
    m.mouse_event(-2, 4, buttons=0b101)          # left+middle, left and down
    assert rig.read_all() == [0x08 | 0x10 | 0x20 | 0x05, 0xFE, 0xFC]
    m.mouse_event(300, 0, buttons=0)
    assert rig.read_all() == [0x08 | 0x40, 0xFF, 0x00]
    m.mouse_event(0, 0, buttons=0b010)           # button change alone sends a packet
    assert rig.read_all() == [0x0A, 0x00, 0x00]
    aux(rig, 0xF5)
    m.mouse_event(3, 3)
    assert rig.read_all() == [0xFA]


def test_mouse_wheel_packets(rig):
    rig.set_cb(0x00)
    aux(rig, 0xF3, 200, 0xF3, 100, 0xF3, 80, 0xF4)
    rig.read_all()
    rig.kbc.mouse_event(0, 0, dz=-1)
    assert rig.read_all() == [0x08, 0x00, 0x00, 0xFF]
    rig.kbc.mouse_event(1, 0, dz=20)
    assert rig.read_all() == [0x08, 0x01, 0x00, 0x07]
    aux(rig, 0xF3, 200, 0xF3, 200, 0xF3, 80)
    rig.read_all()
    rig.kbc.mouse_event(0, 0, dz=2, buttons=0b11000)
    assert rig.read_all() == [0x08, 0x00, 0x00, 0x32]


def test_mouse_status_scaling_resolution_remote(rig):
    rig.set_cb(0x00)
    aux(rig, 0xE8, 3, 0xF3, 40, 0xE7, 0xF4)
    rig.read_all()
    rig.kbc.mouse_event(0, 0, buttons=1)
    rig.read_all()
    aux(rig, 0xE9)
    assert rig.read_all() == [0xFA, 0x20 | 0x10 | 0x04, 3, 40]
    rig.kbc.mouse_event(4, 0)                    # 2:1 scaling: 4 -> 6
    assert rig.read_all() == [0x09, 0x06, 0x00]
    aux(rig, 0xE6, 0xF0)                         # 1:1, remote mode
    rig.read_all()
    rig.kbc.mouse_event(7, -2)
    assert rig.read_all() == []
    aux(rig, 0xEB)
    assert rig.read_all() == [0xFA, 0x09, 0x07, 0x02]
    aux(rig, 0xE9)
    assert rig.read_all() == [0xFA, 0x40 | 0x20 | 0x04, 3, 40]
    aux(rig, 0xEA, 0xF6, 0xE9)
    assert rig.read_all() == [0xFA, 0xFA, 0xFA, 0x04, 2, 100]


def test_mouse_wrap_mode(rig):
    rig.set_cb(0x00)
    aux(rig, 0xEE, 0x12, 0xF2, 0xEC, 0xF2)
    assert rig.read_all() == [0xFA, 0x12, 0xF2, 0xFA, 0xFA, 0x00]


def test_state_round_trip_mid_stream(rig):
    rig.set_cb(0x41)
    rig.send(0xF3)
    rig.send(0x00)
    rig.read_all()
    rig.kbc.key("a", True)
    rig.kbc.key("b", True)
    aux(rig, 0xF4)
    st = rig.kbc.get_state()
    assert rig.bus.read(0x60, 1) == 0x1E
    rest = rig.read_all()
    r2 = Rig()
    r2.kbc.set_state(st)
    assert r2.bus.read(0x60, 1) == 0x1E
    assert r2.read_all() == rest == [0x30, 0xFA]
    assert r2.irq.level[1] is False
    r2.advance(250_000)                          # typematic event rescheduled
    assert r2.read_all() == [0x30]
    s = r2.kbc.summary()
    assert "XLAT" in s["command byte"] and s["kbd pressed"] == "a b"
    with pytest.raises(ValueError):
        r2.kbc.set_state({**st, "version": 99})


def test_reset_restores_power_on(rig):
    rig.set_cb(0x47)
    rig.kbc.key("a", True)
    rig.kbc.reset()
    assert rig.status() == 0x18
    rig.cmd(0x20)
    assert rig.read_all() == [0x03]
