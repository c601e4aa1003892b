"""The registers pane: general registers, EIP, EFLAGS decoded, the mode, the segment registers
with their descriptor caches, LDTR and TR, CR0/CR2/CR3/CR4, EFER, GDTR and IDTR.

Values that changed since the last stop are highlighted (``Baseline``); EFLAGS is shown as its
hex value and as each flag's name, bright when set and dim when clear.  The data comes from
``aero.debug.inspect.registers`` (side-effect free: lazy flags are folded without touching the
CPU).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...debug import inspect as I
from . import Baseline, show_text

GPR_ROWS = (("eax", "ebx", "ecx"), ("edx", "esi", "edi"), ("ebp", "esp", "eip"))
FLAG_ROWS = (("OF", "DF", "IF", "TF", "SF", "ZF", "AF", "PF", "CF"),
             ("NT", "RF", "VM", "AC", "VIF", "VIP", "ID"))
CHANGED = "bold black on yellow"
NAME = "cyan"
DIM = "grey42"
_SHORT_TYPES = ((" expand-down", " ED"), (" conforming", " C"), ("interrupt gate", "int gate"),
                ("available", "avail"), ("reserved", "rsvd"))


def _short_type(t: str) -> str:
    for a, b in _SHORT_TYPES:
        t = t.replace(a, b)
    return t


def _flat(r: I.Registers) -> dict:
    """The values compared between stops, by name."""
    out = dict(r.gpr)
    out.update(eip=r.eip, eflags=r.eflags, cr0=r.cr0, cr2=r.cr2, cr3=r.cr3, cr4=r.cr4,
               efer=r.efer, gdtr=r.gdtr, idtr=r.idtr, mode=r.mode, cpl=r.cpl, iopl=r.iopl)
    for s in r.segments + [r.ldtr, r.tr]:
        out[s.name] = (s.selector, s.base, s.limit, s.attr)
    return out


def render_registers(r: I.Registers, ref: dict | None) -> Text:
    """The pane's text; ``ref``: the values to highlight changes against (``_flat``)."""
    now = _flat(r)
    t = Text(no_wrap=True, overflow="ellipsis")

    def changed(key) -> bool:
        return ref is not None and ref.get(key) != now.get(key)

    def val(key, text: str) -> None:
        t.append(text, CHANGED if changed(key) else "")

    for row in GPR_ROWS:
        for i, n in enumerate(row):
            t.append(("  " if i else "") + n.upper() + " ", NAME)
            val(n, f"{now[n]:08x}")
        t.append("\n")
    t.append("EFLAGS ", NAME)
    val("eflags", f"{r.eflags:08x}")
    t.append("  IOPL ", NAME)
    val("iopl", str(r.iopl))
    t.append("  CPL ", NAME)
    val("cpl", str(r.cpl))
    t.append("\n")
    old_flags = ref.get("eflags") if ref is not None else None
    bits = dict(I.EFLAGS_BITS)
    for row in FLAG_ROWS:
        for i, name in enumerate(row):
            mask = bits[name]
            on = bool(r.eflags & mask)
            style = "bold" if on else DIM
            if old_flags is not None and bool(old_flags & mask) != on:
                style = CHANGED
            t.append((" " if i else "") + (name if on else name.lower()), style)
        t.append("\n")
    val("mode", r.mode)
    if r.halted:
        t.append("  halted", "bold red")
    t.append("\n")
    for note in r.notes:
        t.append(f"{note}\n", "yellow")
    t.append("     sel  base     limit    type       dpl P D/B G\n", NAME)
    for s in r.segments + [r.ldtr, r.tr]:
        t.append(f"{s.name.upper():<4} ", NAME)
        style = CHANGED if changed(s.name) else ("" if s.usable else DIM)
        dbits = ("32" if s.db else "16") if s.s else "--"
        t.append(f"{s.selector:04x} {s.base:08x} {s.limit:08x} {_short_type(s.type):<10.10} "
                 f"{s.dpl:>3} {'P' if s.present else '-'} {dbits:<3} {'G' if s.g else '-'}",
                 style)
        t.append("\n")
    for key, width, names in (("cr0", 8, r.cr0_set), ("cr4", 8, r.cr4_set),
                              ("efer", 8, r.efer_set)):
        t.append(f"{key.upper():<4} ", NAME)
        val(key, f"{now[key]:0{width}x}")
        t.append(" " + " ".join(names) + "\n", DIM if not names else "")
    t.append("CR2  ", NAME)
    val("cr2", f"{r.cr2:08x}")
    t.append("  CR3 ", NAME)
    val("cr3", f"{r.cr3:08x}")
    t.append("\n")
    for key in ("gdtr", "idtr"):
        base, limit = now[key]
        t.append(f"{key.upper():<4} ", NAME)
        val(key, f"{base:08x} limit {limit:04x}")
        t.append("\n")
    return t


class RegistersPane(Static):
    """The registers (see the module docstring)."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.border_title = "Registers"
        self._baseline = Baseline()

    def update_from(self, session, running: bool) -> None:
        try:
            r = I.registers(session.m)
        except Exception:
            if running:
                return              # torn state while the guest runs: the next refresh
            raise
        ref = self._baseline.reference(session, running, _flat(r))
        show_text(self, render_registers(r, ref))
