"""Test harnesses that run guest programs on a bare Aero CPU (and, for comparison, on QEMU)."""
