"""Semantic templates: the one definition of what each instruction does.

Every module in this package defines ``TEMPLATES = {name: source}`` and the helper functions its
templates call.  ``load()`` merges them: templates by name (a name defined twice is an error), and
helpers into the namespace the compiled code runs in.

Writing a template (expanded by ``aero.cpu.codegen``, where the placeholders are listed):

* A template is the body of a function run once per execution of the instruction.  ``cpu`` (the
  CPU) and ``R`` (its register list) are in scope, plus ``rd8/rd16/rd32(seg, off)`` and
  ``wr8/wr16/wr32(seg, off, value)``.
* Read operands with ``$A``/``$B``/``$C``; write operand 1 with a line ``$A = expr``.  Values
  written must already be masked to the operand size (``$MASK``).
* Fault before changing anything: do every read and every check that can raise ``CPUFault``
  before the first write to registers, flags or memory, so a faulting instruction can restart.
* Arithmetic flags are lazy: set ``cpu.lf = (%KIND, a, b, r)`` (see ``aero.cpu.flags``) or, for
  instructions whose flags do not fit a lazy kind, compute them and call
  ``cpu.set_arith(bits, mask)``.
* Control transfers set ``cpu.eip`` themselves (the table marks them ``ends=JUMP/COND``).
  Everything else leaves EIP alone: the run loop advances it.
* Variants: ``NAME.cc`` is used for condition code cc when present; ``NAME@m`` / ``NAME@r`` for
  the memory / register form of the ModR/M operand.
"""

from __future__ import annotations

import importlib
import pkgutil

from ... import faults
from .. import flags as F


def load():
    ns = {"__builtins__": __builtins__}
    for name in dir(F):
        if not name.startswith("_"):
            ns[name] = getattr(F, name)
    for name in ("CPUFault", "EmulatorError", "BlockExit"):
        ns[name] = getattr(faults, name)
    templates: dict[str, str] = {}
    owner: dict[str, str] = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        module = importlib.import_module(f"{__name__}.{mod}")
        for tname, src in getattr(module, "TEMPLATES", {}).items():
            if tname in templates:
                raise RuntimeError(f"template {tname} defined in both {owner[tname]} and {mod}")
            templates[tname] = src
            owner[tname] = mod
        for k, v in vars(module).items():
            if not k.startswith("_") and k != "TEMPLATES" and callable(v):
                ns.setdefault(k, v)
    return templates, ns
