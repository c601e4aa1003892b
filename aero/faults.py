"""Guest exceptions raised inside the CPU, the early-exit signal, and the emulator-bug report.

A neutral module: memory (``aero.mem``) raises page faults and the CPU raises everything else, so
both import from here and neither imports the other for it.

A guest fault is a Python exception only inside the CPU core: the run loop catches it and delivers
it to the guest through the IDT/IVT.  It never reaches a user as a traceback.
"""

from __future__ import annotations

DE, DB, NMI, BP, OF, BR, UD, NM, DF, MF, TS, NP, SS, GP, PF, AC = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 10, 11, 12, 13, 14, 17)

NAMES = {0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
         10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC"}

# Vectors that push an error code when delivered in protected mode (SDM Vol. 3, 6.13).
HAS_ERROR_CODE = frozenset((DF, TS, NP, SS, GP, PF, AC))
# Contributory exceptions for the double-fault rules (SDM Vol. 3, Table 6-5).
CONTRIBUTORY = frozenset((DE, TS, NP, SS, GP))


class CPUFault(Exception):
    """A guest exception: fault or trap, with its vector and error code."""

    __slots__ = ("vector", "error_code")

    def __init__(self, vector: int, error_code: int | None = None):
        self.vector = vector
        self.error_code = error_code

    def __str__(self) -> str:
        name = NAMES.get(self.vector, f"vector {self.vector}")
        return name if self.error_code is None else f"{name}({self.error_code:#x})"


class BlockExit(Exception):
    """Raised at an instruction boundary, before the next instruction starts, to leave the running
    block early (``CPU.request_exit``: self-modifying code, a device raising an interrupt line, a
    hook asking to stop).  The instruction it is raised before has not executed and does not
    count.  Never escapes the run loop."""


class EmulatorError(Exception):
    """A bug in Aero surfaced while executing: carries the report the user sees."""

    def __init__(self, report: str):
        super().__init__(report)
        self.report = report

