"""The x87 floating-point unit's arithmetic: exact 80-bit double-extended values on Python ints.

`float80` is the pure arithmetic library (no CPU state): values are 80-bit register images,
every operation takes the control word and returns (value, status-word bits).
`transcendental` adds F2XM1, FYL2X, FYL2XP1, FPTAN, FSIN, FCOS, FSINCOS and FPATAN.
"""
