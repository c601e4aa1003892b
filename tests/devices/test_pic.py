"""8259A PIC pair: datasheet sequences written through the I/O ports."""

import pytest

from aero.devices.base import IOBus, IRQLines
from aero.devices.pic import PIC


class Rig:
    def __init__(self, init=True, master_icw4=0x01, slave_icw4=0x01):
        self.bus = IOBus()
        self.intr_log = []
        self.pic = PIC(self.bus, self.intr_log.append)
        self.irq = IRQLines(self.pic.set_irq)
        if init:
            self.init(master_icw4, slave_icw4)

    def init(self, master_icw4=0x01, slave_icw4=0x01, icw1=0x11):
        w = self.bus.write
        w(0x20, 1, icw1)
        w(0x21, 1, 0x08)            # ICW2: vectors 08h-0Fh
        w(0x21, 1, 0x04)            # ICW3: slave on IR2
        w(0x21, 1, master_icw4)
        w(0xA0, 1, icw1)
        w(0xA1, 1, 0x70)
        w(0xA1, 1, 0x02)
        w(0xA1, 1, slave_icw4)
        w(0x21, 1, 0x00)
        w(0xA1, 1, 0x00)

    def out(self, port, v):
        self.bus.write(port, 1, v)

    def inb(self, port):
        return self.bus.read(port, 1)

    def irr(self, base=0x20):
        self.out(base, 0x0A)
        return self.inb(base)

    def isr(self, base=0x20):
        self.out(base, 0x0B)
        v = self.inb(base)
        self.out(base, 0x0A)
        return v

    @property
    def intr(self):
        return self.pic.INTR

    def eoi(self, base=0x20):
        self.out(base, 0x20)


def test_edge_triggered_request_ack_eoi():
    r = Rig()
    assert not r.intr
    r.irq.set(0, True)
    assert r.intr and r.intr_log == [True]
    assert r.irr() == 0x01 and r.isr() == 0
    assert r.pic.acknowledge() == 0x08
    assert r.isr() == 0x01 and r.irr() == 0x00       # INTA clears the edge latch
    assert not r.intr
    # line still high: no new request; a new edge while in service waits for the EOI
    r.irq.set(0, False)
    r.irq.set(0, True)
    assert r.irr() == 0x01 and not r.intr            # same level in service blocks it
    r.eoi()
    assert r.isr() == 0 and r.intr
    assert r.pic.acknowledge() == 0x08


def test_edge_pulse_latches_and_direct_repeat_does_not():
    r = Rig()
    r.irq.pulse(4)                                   # rise and fall before INTA
    assert r.intr and r.irr() == 0x10                # edge latch holds the request
    assert r.pic.acknowledge() == 0x0C
    r.eoi()
    r.pic.set_irq(5, True)
    assert r.pic.acknowledge() == 0x0D
    r.eoi()
    r.pic.set_irq(5, True)                           # still high: not a rising edge
    assert not r.intr and r.irr() == 0


def test_fully_nested_priority():
    r = Rig()
    r.irq.set(3, True)
    r.irq.set(1, True)
    assert r.pic.acknowledge() == 0x09               # IR1 before IR3
    assert not r.intr                                 # IR3 is lower than IR1 in service
    r.irq.set(0, True)
    assert r.intr                                     # IR0 nests over IR1
    assert r.pic.acknowledge() == 0x08
    assert r.isr() == 0x03
    r.eoi()                                           # non-specific EOI: highest (IR0)
    assert r.isr() == 0x02 and not r.intr
    r.eoi()
    assert r.intr and r.pic.acknowledge() == 0x0B


def test_imr_masks_and_unmask_delivers():
    r = Rig()
    r.out(0x21, 0x02)                                 # mask IR1 only
    assert r.inb(0x21) == 0x02
    r.irq.set(1, True)
    assert not r.intr and r.irr() == 0x02
    r.out(0x21, 0x00)
    assert r.intr and r.pic.acknowledge() == 0x09


def test_spurious_irq7_when_request_masked_before_inta():
    r = Rig()
    r.irq.set(5, True)
    assert r.intr
    r.out(0x21, 0x20)                                 # masked between INTR and INTA
    assert not r.intr
    assert r.pic.acknowledge() == 0x0F                # default IR7
    assert r.isr() == 0                               # nothing put in service
    assert r.pic.spurious == 1


def test_spurious_irq7_level_line_drops():
    r = Rig()
    r.out(0x4D0, 0x20)                                # IRQ 5 level-triggered
    r.irq.set(5, True)
    assert r.intr
    r.irq.set(5, False)                               # request goes away before INTA
    assert r.irr() == 0
    assert r.pic.acknowledge() == 0x0F
    assert r.isr() == 0


def test_slave_cascade_vector_and_in_service_bits():
    r = Rig()
    r.irq.set(10, True)
    assert r.intr
    assert r.irr(0x20) == 0x04 and r.irr(0xA0) == 0x04
    assert r.pic.acknowledge() == 0x72
    assert r.isr(0x20) == 0x04 and r.isr(0xA0) == 0x04
    assert r.irr(0x20) == 0 and r.irr(0xA0) == 0
    r.eoi(0xA0)
    r.eoi(0x20)
    assert r.isr(0x20) == 0 and r.isr(0xA0) == 0


def test_second_slave_request_gets_fresh_cascade_edge():
    r = Rig(slave_icw4=0x03)                          # slave in AEOI
    r.irq.set(9, True)
    r.irq.set(12, True)
    assert r.pic.acknowledge() == 0x71
    r.eoi(0x20)
    assert r.intr                                     # IRQ 12 still requests via IR2
    assert r.pic.acknowledge() == 0x74


def test_spurious_irq15_leaves_master_ir2_in_service():
    r = Rig()
    r.out(0x4D1, 0x04)                                # IRQ 10 level-triggered
    r.irq.set(10, True)
    assert r.intr
    r.irq.set(10, False)                              # gone before INTA
    assert r.pic.acknowledge() == 0x77                # slave base + 7
    assert r.isr(0xA0) == 0
    assert r.isr(0x20) == 0x04                        # the master saw a real cascade ack
    assert r.pic.spurious == 1
    r.eoi(0x20)
    assert r.isr(0x20) == 0


def test_elcr_masks_and_level_follows_line():
    r = Rig()
    r.out(0x4D0, 0xFF)
    r.out(0x4D1, 0xFF)
    assert r.inb(0x4D0) == 0xF8 and r.inb(0x4D1) == 0xDE
    r.out(0x4D0, 0x08)                                # IRQ 3 level
    r.out(0x4D1, 0x00)
    r.irq.set(3, True)
    assert r.pic.acknowledge() == 0x0B
    assert r.irr() == 0x08                            # level: IRR still follows the pin
    r.eoi()
    assert r.intr                                     # still asserted: interrupts again
    r.irq.set(3, False)
    assert not r.intr and r.irr() == 0


def test_ltim_makes_all_lines_level():
    r = Rig(init=False)
    r.init(icw1=0x19)                                 # LTIM
    r.irq.set(6, True)
    assert r.pic.acknowledge() == 0x0E
    r.eoi()
    assert r.intr
    r.irq.set(6, False)
    assert not r.intr


def test_icw1_resets_state_and_vector_base_masked():
    r = Rig()
    r.out(0x21, 0x55)
    r.irq.set(1, True)
    r.pic.acknowledge()
    r.out(0x20, 0x11)
    r.out(0x21, 0x2F)                                 # low 3 bits ignored in 8086 mode
    r.out(0x21, 0x04)
    r.out(0x21, 0x01)
    assert r.inb(0x21) == 0x00                        # IMR cleared
    assert r.isr() == 0
    assert r.pic.master.vector_base == 0x28
    r.irq.set(1, False)
    r.irq.set(1, True)
    assert r.pic.acknowledge() == 0x29


def test_icw1_single_mode_skips_icw3_and_no_ic4():
    r = Rig(init=False)
    r.out(0x20, 0x13)                                 # single, IC4
    r.out(0x21, 0x40)
    r.out(0x21, 0x02)                                 # this is ICW4 (AEOI), no ICW3
    assert r.pic.master.AEOI and r.pic.master.init_state == 0
    r.out(0x21, 0xFB)                                 # now OCW1
    assert r.inb(0x21) == 0xFB
    r.out(0x20, 0x10)                                 # no IC4: ICW4 functions zero
    r.out(0x21, 0x40)
    r.out(0x21, 0x04)                                 # ICW3 ends the sequence
    assert not r.pic.master.AEOI and r.pic.master.init_state == 0
    r.out(0x21, 0x12)
    assert r.inb(0x21) == 0x12


def test_auto_eoi():
    r = Rig(master_icw4=0x03)
    r.irq.set(4, True)
    assert r.pic.acknowledge() == 0x0C
    assert r.isr() == 0
    r.irq.set(5, True)
    assert r.intr                                     # nothing in service blocks IR5


def test_rotate_on_auto_eoi():
    r = Rig(master_icw4=0x03)
    r.out(0x20, 0x80)                                 # rotate in AEOI mode: set
    r.irq.set(0, True)
    assert r.pic.acknowledge() == 0x08                # IR0 becomes lowest
    r.irq.set(0, False)
    r.irq.set(0, True)
    r.irq.set(7, True)
    assert r.pic.acknowledge() == 0x0F                # IR7 now outranks IR0
    assert r.pic.acknowledge() == 0x08
    r.out(0x20, 0x00)                                 # rotate in AEOI: clear
    assert not r.pic.master.rotate_on_AEOI


def test_rotate_on_nonspecific_eoi():
    r = Rig()
    r.irq.set(0, True)
    r.pic.acknowledge()
    r.out(0x20, 0xA0)                                 # rotate on non-specific EOI
    assert r.isr() == 0
    r.irq.set(0, False)
    r.irq.set(0, True)
    r.irq.set(1, True)
    assert r.pic.acknowledge() == 0x09                # IR1 highest now, IR0 lowest
    assert not r.intr                                  # IR0 (lowest) blocked by IR1
    r.eoi()
    assert r.pic.acknowledge() == 0x08


def test_set_priority_and_specific_eoi_commands():
    r = Rig()
    r.out(0x20, 0xC4)                                 # IR4 lowest, IR5 highest
    r.irq.set(3, True)
    r.irq.set(6, True)
    assert r.pic.acknowledge() == 0x0E                # IR6 outranks IR3
    # IR3 is lower than IR6 in this order (5,6,7,0,1,2,3,4): it waits
    assert r.isr() == 0x40 and not r.intr
    r.out(0x20, 0x66)                                 # specific EOI for IR6
    assert r.isr() == 0 and r.pic.acknowledge() == 0x0B
    r.out(0x20, 0xE3)                                 # rotate on specific EOI IR3
    assert r.isr() == 0
    assert r.pic.master.priority_add == 4             # IR3 lowest, IR4 highest
    r.out(0x20, 0x40)                                 # OCW2 no-op
    assert r.pic.master.priority_add == 4


def test_nonspecific_eoi_clears_highest_under_rotation():
    r = Rig()
    r.out(0x20, 0xC2)                                 # IR2 lowest: order 3..7,0,1,2
    r.irq.set(1, True)
    r.pic.acknowledge()
    r.irq.set(6, True)
    assert r.pic.acknowledge() == 0x0E                # IR6 outranks IR1
    assert r.isr() == 0x42
    r.eoi()                                           # clears IR6 (highest in this order)
    assert r.isr() == 0x02


def test_poll_command():
    r = Rig()
    r.out(0x20, 0x0C)                                 # poll
    assert r.inb(0x20) == 0x00                        # no request: I = 0
    r.out(0x21, 0x01)                                 # IMR applies to polling too
    r.irq.set(0, True)
    r.irq.set(5, True)
    r.out(0x20, 0x0C)
    assert r.inb(0x20) == 0x85                        # IR5, I bit set
    assert r.isr() == 0x20                            # the read acted as INTA
    r.out(0x20, 0x0C)
    assert r.inb(0x20) == 0x00                        # IR0 masked, nothing else
    # after a poll read the next read is an ordinary status read again
    assert r.inb(0x20) == 0x01


def test_poll_slave():
    r = Rig()
    r.irq.set(13, True)
    r.out(0x20, 0x0C)
    assert r.inb(0x20) == 0x82                        # master reports the cascade line
    r.out(0xA0, 0x0C)
    assert r.inb(0xA0) == 0x85
    assert r.isr(0xA0) == 0x20 and r.isr(0x20) == 0x04


def test_special_mask_mode():
    r = Rig()
    r.irq.set(3, True)
    r.pic.acknowledge()                               # IR3 in service, no EOI
    r.irq.set(5, True)
    assert not r.intr                                 # lower priority blocked
    r.out(0x21, 0x08)                                 # mask IR3
    assert not r.intr                                 # plain masking is not enough
    r.out(0x20, 0x68)                                 # OCW3: set special mask
    assert r.pic.master.special_mask and r.intr
    assert r.pic.acknowledge() == 0x0D
    r.out(0x20, 0x65)                                 # specific EOI IR5
    r.out(0x20, 0x48)                                 # reset special mask
    assert not r.pic.master.special_mask
    r.irq.set(5, False)
    r.irq.set(5, True)
    assert not r.intr                                 # IR3 in service blocks again


def test_ocw3_read_register_select_persists():
    r = Rig()
    r.irq.set(6, True)
    r.pic.acknowledge()
    r.irq.set(7, True)
    r.out(0x20, 0x0B)
    assert r.inb(0x20) == 0x40 and r.inb(0x20) == 0x40   # ISR until changed
    r.out(0x20, 0x08)                                 # RR = 0: no change
    assert r.inb(0x20) == 0x40
    r.out(0x20, 0x0A)
    assert r.inb(0x20) == 0x80                        # IRR


def test_special_fully_nested_mode():
    for sfnm, expect in ((0x11, True), (0x01, False)):
        r = Rig(master_icw4=sfnm)
        r.irq.set(12, True)
        assert r.pic.acknowledge() == 0x74
        r.irq.set(9, True)                            # higher priority on the same slave
        assert r.intr is expect
        if expect:
            assert r.pic.acknowledge() == 0x71
            assert r.isr(0xA0) == 0x12


def test_intr_callback_only_on_change_and_summary():
    r = Rig()
    r.irq.set(1, True)
    r.irq.set(2, True)
    assert r.intr_log == [True]
    s = r.pic.summary()
    assert s["master.IRR"] == "00000110" and s["master.base"] == "0x08"
    assert s["slave.base"] == "0x70" and s["INTR"] is True
    assert "edge" in s["master.mode"]


def test_state_roundtrip():
    r = Rig(master_icw4=0x03)
    r.out(0x4D1, 0x08)
    r.out(0x20, 0xC5)
    r.irq.set(11, True)
    r.irq.set(4, True)
    st = r.pic.get_state()
    r2 = Rig(init=False)
    r2.pic.set_state(st)
    assert r2.pic.get_state() == st
    assert r2.intr
    assert r2.pic.acknowledge() == r.pic.acknowledge()
    with pytest.raises(ValueError):
        r2.pic.set_state(dict(st, version=99))


def test_reset():
    r = Rig()
    r.irq.set(3, True)
    r.pic.reset()
    # a hardware reset: every request masked until the guest programs the pair (power-on state)
    assert not r.intr and r.pic.master.IMR == 0xFF and r.pic.master.vector_base == 0
