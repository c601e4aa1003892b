"""The x87 FPU's architectural state and its state machine (Intel SDM Vol. 1 ch. 8; Vol. 3 9.1).

`X87` holds what the x87 keeps between instructions: the eight 80-bit physical data registers
R0..R7 (values are 80-bit register images as ints, as in `float80`), TOP, the control word, the
status word, which registers are empty, the last instruction pointer FCS:FIP, the last data
pointer FDS:FDP and the last opcode (11 bits).  It knows nothing about the CPU: the CPU
integration decodes an x87 instruction, calls `float80`/`transcendental` for the arithmetic and
these methods for the stack, the flags and the memory images, and delivers #MF itself.  E.g.

    if fpu.pending_unmasked(): deliver #MF (CR0.NE=1) or assert FERR# (CR0.NE=0)   # waiting insns
    fpu.note_instruction(eip, cs, (opcode & 7) << 8 | modrm, ea, ds)    # non-control insns
    FADD ST(0), ST(i):  ops = fpu.fetch(0, i)
                        if ops is None: fpu.underflow(dest=0)
                        else: fpu.apply(float80.fadd(*ops, fpu.cw), dest=0)
    FADDP ST(i), ST(0): ... fpu.apply(float80.fadd(ST(i), ST(0), cw), dest=i, pop=1)
    FLD m64:            fpu.push(*float80.from_float64(bits, fpu.cw))
    FSTP m64:           ops = fpu.fetch(0); if ops is None: store the m64 indefinite when
                        fpu.underflow(pop=1, store=True) is true; else if fpu.apply(
                        float80.to_float64(ops[0], fpu.cw), pop=1): write the value
    FCOMP:              codes, sw = float80.fcom(a, b, fpu.cw); if codes is None (unmasked):
                        fpu.raise_flags(sw); else fpu.raise_flags(codes | sw, CC_MASK); pop()
    FNSTENV/FNSAVE/FLDENV/FRSTOR: fstenv / fsave / load_env / restore (osz, real_mode)

Choices, with the SDM text they rest on:

* Tags (SDM Vol. 1 8.1.7).  Only empty / non-empty is state: the full tag of a non-empty register
  (00 valid, 01 zero, 10 special = NaN, infinity, denormal, pseudo-denormal or unsupported
  encoding) is computed from the register's contents whenever it is read.  This is exactly what
  the SDM requires of FLDENV/FRSTOR ("the x87 FPU uses those tag values only to determine if the
  data registers are empty (11B) or non-empty ... [and] reads the actual value in the data
  register and sets the tag for the register accordingly"), and every other instruction that
  writes a register also sets its tag from the value, so a stored tag word is always the one
  computed from the contents (also FSTENV/FSAVE, SDM figures 8-9..8-12; the recreation table for
  FXSAVE's abridged tag, SDM Vol. 1 10.5.1 / FXSAVE, uses the same classification).
* ES and B (SDM Vol. 1 8.1.3: "ES is set when any unmasked exception flag is set"; B
  "reflects the contents of ES"): derived, not stored: whenever the status word is read, ES = B =
  (SW & ~CW & 3Fh) != 0.  So FLDCW/FLDENV/FRSTOR unmasking a set flag makes the exception pending
  (SDM FLDCW, FLDENV: "a floating-point exception will be generated upon execution of the next
  floating-point instruction"), and masking it again removes it.
* Control word: bits 15:13 and 7 are reserved and read 0, bit 6 reserved and reads 1 (the RESET
  value 0040h and FNINIT's 037Fh both have it; processors force it on FLDCW).  Bit 12 (the
  287's infinity control) is kept as loaded.
* RESET (SDM Vol. 3 table 9-1): CW 0040h, SW 0, TW 5555h (every register holds +0.0, tag zero),
  pointers and opcode 0.  FNINIT (SDM FINIT): CW 037Fh, SW 0, TW FFFFh, FIP FCS FDP FDS FOP 0,
  register contents unchanged.  INIT leaves the x87 alone (the CPU just does not call anything).
* Stack faults (SDM Vol. 1 8.5.1.1): overflow = IE|SF with C1 = 1, underflow = IE|SF with C1 = 0.
  Masked response: the destination gets the QNaN floating-point indefinite and the instruction
  completes (TOP moves as usual); unmasked: TOP and the registers are left unchanged.
* Memory images (SDM Vol. 1 8.1.10, figures 8-9 .. 8-12): 14 bytes (16-bit operand size) or 28
  bytes (32-bit), real-address/virtual-8086 layout or protected-mode layout; FSAVE adds ST(0)..ST(7)
  at 10 bytes each (94 / 108 bytes).  Reserved upper halves of the 32-bit image's CW, SW, TW and
  FDS dwords (and of the real-mode pointer-low dwords) are written as FFFFh, as Intel processors
  do; bits 31:27 of the FCS/opcode dword and the zero fields of the real-mode layout are written
  0.  In real/V86 mode the images hold 20-bit (16-bit form) or 32-bit (32-bit form) linear
  pointers; this model keeps the logical FCS:FIP / FDS:FDP and stores (sel << 4) + offset.  Loading
  a real-mode image sets the offset to the linear pointer and the selector to 0, so storing it
  again writes the same pointer.  The 16-bit protected-mode image has no opcode field: loading
  it sets FOP to 0 (the SDM is silent; chosen).
* FSTENV/FNSTENV masks all exceptions after storing (SDM FSTENV: "then masks all floating-point
  exceptions"); FSAVE/FNSAVE initialises the FPU after storing (SDM FSAVE: as FNINIT).
* Condition codes: `apply` and `raise_flags` write only the condition-code bits an instruction
  defines (`cc_mask`, C1 by default); undefined ones are left unchanged.
"""

from . import float80 as F

IE, DE, ZE, OE, UE, PE, SF, ES = F.IE, F.DE, F.ZE, F.OE, F.UE, F.PE, F.SF, F.ES
C0, C1, C2, C3 = F.C0, F.C1, F.C2, F.C3
B = 0x8000
EXC_MASK = F.EXC_MASK
CC_MASK = C0 | C1 | C2 | C3
TOP_MASK = 0x3800
INDEFINITE = F.INDEFINITE

CW_RESET = 0x0040              # after RESET (SDM Vol. 3 table 9-1)
CW_INIT = 0x037F               # after FNINIT
CW_KEEP = 0x1F3F               # loadable control-word bits; bit 6 always reads 1

TAG_VALID, TAG_ZERO, TAG_SPECIAL, TAG_EMPTY = 0, 1, 2, 3


def tag_of(value):
    """Full 2-bit tag of a non-empty register holding `value` (SDM Vol. 1 8.1.7)."""
    exp = (value >> 64) & F.EXP_MAX
    sig = value & F.SIG_MASK
    if exp == F.EXP_MAX:
        return TAG_SPECIAL                     # infinities, NaNs, pseudo-NaN/-infinity
    if exp == 0:
        return TAG_ZERO if sig == 0 else TAG_SPECIAL   # denormal, pseudo-denormal
    return TAG_VALID if sig & F.J_BIT else TAG_SPECIAL   # unnormal: unsupported


def _w(data, off):
    return data[off] | data[off + 1] << 8


def _d(data, off):
    return int.from_bytes(bytes(data[off:off + 4]), "little")


class X87:
    """The x87's state.  `st`-relative indices (0..7) are relative to TOP; `phys` ones are not."""

    def __init__(self):
        self.reset()

    # ---------------------------------------------------------------- init
    def reset(self):
        """Power-on / RESET state (SDM Vol. 3 table 9-1): CW 0040h, SW 0, TW 5555h."""
        self.regs = [F.POS_ZERO] * 8
        self.empty = 0                          # bit i set: physical register Ri is empty
        self.top = 0
        self._cw = CW_RESET
        self._flags = 0                         # SW without TOP, ES and B
        self.fip = self.fcs = self.fdp = self.fds = self.fop = 0

    def fninit(self):
        """FNINIT/FINIT (SDM FINIT): registers keep their contents but are all tagged empty."""
        self._cw = CW_INIT
        self._flags = 0
        self.top = 0
        self.empty = 0xFF
        self.fip = self.fcs = self.fdp = self.fds = self.fop = 0

    def fnclex(self):
        """FNCLEX/FCLEX: clear PE UE OE ZE DE IE, SF, ES and B; C0..C3 and TOP unchanged."""
        self._flags &= ~(EXC_MASK | SF)

    # ---------------------------------------------------------------- words
    @property
    def cw(self):
        return self._cw

    @cw.setter
    def cw(self, value):                        # FLDCW
        self._cw = (value & CW_KEEP) | 0x0040

    @property
    def sw(self):
        """The status word as FNSTSW stores it: TOP in 13:11, ES and B from the pending flags."""
        sw = (self._flags & ~(TOP_MASK | ES | B)) | (self.top << 11)
        if self.pending_unmasked():
            sw |= ES | B
        return sw

    @sw.setter
    def sw(self, value):                        # FLDENV / FRSTOR
        self._flags = value & ~(TOP_MASK | ES | B) & 0xFFFF
        self.top = (value >> 11) & 7

    def tag(self, phys):
        """Full tag of physical register `phys`."""
        if self.empty >> phys & 1:
            return TAG_EMPTY
        return tag_of(self.regs[phys])

    @property
    def tw(self):
        """The full tag word (physical register i in bits 2i+1:2i), computed from the contents."""
        tw = 0
        for i in range(8):
            tw |= self.tag(i) << (2 * i)
        return tw

    @tw.setter
    def tw(self, value):                        # FLDENV / FRSTOR: only empty / non-empty counts
        self.empty = 0
        for i in range(8):
            if (value >> (2 * i)) & 3 == TAG_EMPTY:
                self.empty |= 1 << i

    @property
    def abridged_tw(self):
        """FXSAVE's abridged tag byte: bit i set when physical register i is non-empty."""
        return ~self.empty & 0xFF

    # ---------------------------------------------------------------- stack
    def phys(self, i):
        return (self.top + i) & 7

    def is_empty(self, i):
        return bool(self.empty >> self.phys(i) & 1)

    def st(self, i):
        """Raw contents of ST(i) (whatever the tag says)."""
        return self.regs[self.phys(i)]

    def fetch(self, *sts):
        """The values of ST(i) for each i given, or None when any is empty: the caller then
        signals stack underflow with `underflow(...)`."""
        if any(self.is_empty(i) for i in sts):
            return None
        return tuple(self.st(i) for i in sts)

    def write(self, i, value):
        """ST(i) := value (tagged non-empty)."""
        p = self.phys(i)
        self.regs[p] = value
        self.empty &= ~(1 << p)

    def pop(self):
        """Tag ST(0) empty and increment TOP (no exception checks: FSTP etc. check on reading)."""
        self.empty |= 1 << self.top
        self.top = (self.top + 1) & 7

    def _stack_fault(self, c1):
        self._flags = (self._flags & ~C1) | IE | SF | (C1 if c1 else 0)
        return bool(self._cw & IE)              # True: masked, the instruction completes

    def push(self, value, sw=0):
        """FLD-style push of a result (value, sw) from float80 (e.g. a load conversion).

        Stack overflow when the new ST(0) (physical TOP-1) is non-empty: IE|SF and C1 = 1; masked,
        the QNaN indefinite is pushed; unmasked, TOP and the registers are unchanged.  Otherwise
        the conversion's flags are raised (C1 from sw, 0 if absent) and, unless `value` is None
        (an unmasked exception stops the load), the value is pushed.
        Returns True when something was pushed."""
        new = (self.top - 1) & 7
        if not self.empty >> new & 1:
            if not self._stack_fault(True):
                return False
            value = INDEFINITE
        else:
            self.raise_flags(sw, C1)
            if value is None:
                return False
        self.top = new
        self.write(0, value)
        return True

    def underflow(self, dest=None, pop=0, store=False):
        """Signal stack underflow (an empty source register; SDM 8.5.1.1): IE|SF, C1 = 0.

        Masked response: ST(dest) (if `dest` is not None) receives the QNaN indefinite, then
        `pop` pops happen as usual; returns True.  For a store to memory (`store=True`) the
        caller writes the indefinite of the memory format when this returns True.
        Unmasked: nothing changes (no write, no pop); returns False and the exception is
        pending."""
        if not self._stack_fault(False):
            return False
        if dest is not None:
            self.write(dest, INDEFINITE)
        for _ in range(pop):
            self.pop()
        return True

    def apply(self, result, dest=None, pop=0, cc_mask=C1):
        """Complete an instruction given float80's (value, sw).

        The flags in sw are raised (condition codes only those in cc_mask, which are replaced).
        value None (an unmasked IE/DE/ZE, or OE/UE for a store to memory): the destination and
        TOP are unchanged, returns False.  Otherwise ST(dest) := value (dest None: a store to
        memory, which the caller does when True is returned), then `pop` pops; returns True.
        ST(dest) is numbered before the pops (FADDP ST(i), ST(0) is apply(r, i, pop=1)).
        Comparisons (float80.fcom/ftst/fxam return (codes, sw)) use instead
        raise_flags(codes | sw, CC_MASK) when codes is not None, then pop."""
        value, sw = result
        self.raise_flags(sw, cc_mask)
        if value is None:
            return False
        if dest is not None:
            self.write(dest, value)
        for _ in range(pop):
            self.pop()
        return True

    def fxch(self, i=1):
        """FXCH ST(i).  An empty operand is stack underflow; masked, empty registers become the
        indefinite before the exchange; unmasked, nothing changes.  C1 = 0."""
        if self.is_empty(0) or self.is_empty(i):
            if not self._stack_fault(False):
                return False
            for k in (0, i):
                if self.is_empty(k):
                    self.write(k, INDEFINITE)
        else:
            self._flags &= ~C1
        a, b = self.st(0), self.st(i)
        self.write(0, b)
        self.write(i, a)
        return True

    def ffree(self, i):
        """FFREE ST(i): tag it empty; TOP and the flags are unchanged."""
        self.empty |= 1 << self.phys(i)

    def fincstp(self):
        self.top = (self.top + 1) & 7
        self._flags &= ~C1

    def fdecstp(self):
        self.top = (self.top - 1) & 7
        self._flags &= ~C1

    # ---------------------------------------------------------------- exceptions
    def raise_flags(self, sw_bits, cc_mask=0):
        """Merge an operation's status bits: exception flags and SF are ORed in (sticky), the
        condition codes in cc_mask are replaced.  ES/B follow.  Returns pending_unmasked()."""
        self._flags = (self._flags & ~cc_mask) | (sw_bits & cc_mask) | (sw_bits & (EXC_MASK | SF))
        return self.pending_unmasked()

    def set_cc(self, bits, cc_mask=CC_MASK):
        self._flags = (self._flags & ~cc_mask) | (bits & cc_mask)

    def pending_unmasked(self):
        """Unmasked exception flags set (SW & ~CW & 3Fh); non-zero means ES is set.

        The CPU delivers it before the next waiting x87 instruction or WAIT/FWAIT (not before
        FNINIT FNCLEX FNSTENV FNSAVE FNSTSW FNSTCW; SDM Vol. 1 8.6, 8.7): #MF when CR0.NE
        = 1, otherwise the FERR# line (IRQ13 on a PC)."""
        return self._flags & ~self._cw & EXC_MASK

    def note_instruction(self, fip, fcs, fop, fdp=None, fds=None):
        """Record the last non-control instruction (SDM 8.1.8, 8.1.9): its CS:EIP, the 11-bit
        opcode ((first byte & 7) << 8 | ModR/M) and, with a memory operand, DS:offset of that
        operand (else FDP/FDS are left as they were)."""
        self.fip, self.fcs, self.fop = fip & 0xFFFFFFFF, fcs & 0xFFFF, fop & 0x7FF
        if fdp is not None:
            self.fdp = fdp & 0xFFFFFFFF
            self.fds = (fds or 0) & 0xFFFF

    # ---------------------------------------------------------------- memory images
    @staticmethod
    def env_size(osz):
        return 28 if osz == 32 else 14

    @staticmethod
    def save_size(osz):
        return 108 if osz == 32 else 94

    def env_bytes(self, osz, real_mode):
        """The FSTENV image (pure: see fstenv).  osz 16 or 32; real_mode for real/V86 mode."""
        cw, sw, tw = self._cw, self.sw, self.tw
        if osz == 32:
            out = bytearray(28)
            for off, word in ((0, cw), (4, sw), (8, tw)):
                out[off:off + 4] = (0xFFFF0000 | word).to_bytes(4, "little")
            if real_mode:
                ip = ((self.fcs << 4) + self.fip) & 0xFFFFFFFF
                dp = ((self.fds << 4) + self.fdp) & 0xFFFFFFFF
                out[12:16] = (0xFFFF0000 | ip & 0xFFFF).to_bytes(4, "little")
                out[16:20] = ((ip >> 16) << 12 | self.fop).to_bytes(4, "little")
                out[20:24] = (0xFFFF0000 | dp & 0xFFFF).to_bytes(4, "little")
                out[24:28] = ((dp >> 16) << 12).to_bytes(4, "little")
            else:
                out[12:16] = self.fip.to_bytes(4, "little")
                out[16:20] = (self.fop << 16 | self.fcs).to_bytes(4, "little")
                out[20:24] = self.fdp.to_bytes(4, "little")
                out[24:28] = (0xFFFF0000 | self.fds).to_bytes(4, "little")
            return bytes(out)
        if real_mode:
            ip = ((self.fcs << 4) + self.fip) & 0xFFFFF
            dp = ((self.fds << 4) + self.fdp) & 0xFFFFF
            words = (cw, sw, tw, ip & 0xFFFF, (ip >> 16) << 12 | self.fop,
                     dp & 0xFFFF, (dp >> 16) << 12)
        else:
            words = (cw, sw, tw, self.fip & 0xFFFF, self.fcs, self.fdp & 0xFFFF, self.fds)
        return b"".join(w.to_bytes(2, "little") for w in words)

    def load_env(self, data, osz, real_mode):
        """FLDENV from an image (14 or 28 bytes, or the start of a save image)."""
        if osz == 32:
            self.cw, sw, tw = _w(data, 0), _w(data, 4), _w(data, 8)
            if real_mode:
                d10, d18 = _d(data, 16), _d(data, 24)
                self.fip = _w(data, 12) | ((d10 >> 12) & 0xFFFF) << 16
                self.fop = d10 & 0x7FF
                self.fdp = _w(data, 20) | ((d18 >> 12) & 0xFFFF) << 16
                self.fcs = self.fds = 0
            else:
                d10 = _d(data, 16)
                self.fip, self.fcs, self.fop = _d(data, 12), d10 & 0xFFFF, (d10 >> 16) & 0x7FF
                self.fdp, self.fds = _d(data, 20), _w(data, 24)
        else:
            self.cw, sw, tw = _w(data, 0), _w(data, 2), _w(data, 4)
            if real_mode:
                w8, w12 = _w(data, 8), _w(data, 12)
                self.fip = _w(data, 6) | (w8 >> 12) << 16
                self.fop = w8 & 0x7FF
                self.fdp = _w(data, 10) | (w12 >> 12) << 16
                self.fcs = self.fds = 0
            else:
                self.fip, self.fcs = _w(data, 6), _w(data, 8)
                self.fdp, self.fds = _w(data, 10), _w(data, 12)
                self.fop = 0
        self.sw = sw
        self.tw = tw

    fldenv = load_env

    def fstenv(self, osz, real_mode):
        """FNSTENV/FSTENV: the image, then all exceptions are masked."""
        data = self.env_bytes(osz, real_mode)
        self._cw |= EXC_MASK
        return data

    def save_bytes(self, osz, real_mode):
        """The FSAVE image (pure: see fsave): environment + ST(0)..ST(7), 10 bytes each."""
        return self.env_bytes(osz, real_mode) + b"".join(
            F.to_bytes80(self.st(i)) for i in range(8))

    def fsave(self, osz, real_mode):
        """FNSAVE/FSAVE: the image, then FNINIT."""
        data = self.save_bytes(osz, real_mode)
        self.fninit()
        return data

    def restore(self, data, osz, real_mode):
        """FRSTOR: the environment, then ST(0)..ST(7) (relative to the loaded TOP)."""
        self.load_env(data, osz, real_mode)
        base = self.env_size(osz)
        for i in range(8):
            self.regs[self.phys(i)] = F.from_bytes80(data[base + 10 * i:base + 10 * i + 10])

    frstor = restore

    def fxsave_x87(self):
        """The x87 part of the FXSAVE image, bytes 0..31 (FCW FSW abridged FTW FOP FIP FCS FDP
        FDS, 32-bit layout, MXCSR fields 0) and 32..159 (ST0..ST7 in 16-byte slots)."""
        out = bytearray(160)
        out[0:2] = self._cw.to_bytes(2, "little")
        out[2:4] = self.sw.to_bytes(2, "little")
        out[4] = self.abridged_tw
        out[6:8] = self.fop.to_bytes(2, "little")
        out[8:12] = self.fip.to_bytes(4, "little")
        out[12:14] = self.fcs.to_bytes(2, "little")
        out[16:20] = self.fdp.to_bytes(4, "little")
        out[20:22] = self.fds.to_bytes(2, "little")
        for i in range(8):
            out[32 + 16 * i:42 + 16 * i] = F.to_bytes80(self.st(i))
        return bytes(out)

    def fxrstor_x87(self, data):
        """Load the x87 part of an FXSAVE image (the abridged tag: bit i set = non-empty)."""
        self.cw = _w(data, 0)
        self.sw = _w(data, 2)
        self.empty = ~data[4] & 0xFF
        self.fop = _w(data, 6) & 0x7FF
        self.fip, self.fcs = _d(data, 8), _w(data, 12)
        self.fdp, self.fds = _d(data, 16), _w(data, 20)
        for i in range(8):
            self.regs[self.phys(i)] = F.from_bytes80(data[32 + 16 * i:42 + 16 * i])

    # ---------------------------------------------------------------- state
    def get_state(self):
        return {"regs": list(self.regs), "empty": self.empty, "top": self.top, "cw": self._cw,
                "flags": self._flags, "fip": self.fip, "fcs": self.fcs, "fdp": self.fdp,
                "fds": self.fds, "fop": self.fop}

    def set_state(self, state):
        self.regs = [int(v) for v in state["regs"]]
        self.empty, self.top = state["empty"], state["top"]
        self._cw, self._flags = state["cw"], state["flags"]
        for k in ("fip", "fcs", "fdp", "fds", "fop"):
            setattr(self, k, state[k])

    def summary(self):
        """For the debugger: words, TOP, pending exceptions and ST(0)..ST(7)."""
        names = ("valid", "zero", "special", "empty")
        return {
            "cw": self._cw, "sw": self.sw, "tw": self.tw, "top": self.top,
            "pending": self.pending_unmasked(),
            "fip": self.fip, "fcs": self.fcs, "fdp": self.fdp, "fds": self.fds, "fop": self.fop,
            "st": [{"i": i, "phys": self.phys(i), "tag": names[self.tag(self.phys(i))],
                    "class": None if self.is_empty(i) else F.classify(self.st(i)),
                    "value": self.st(i)} for i in range(8)],
        }
