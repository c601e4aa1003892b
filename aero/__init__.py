"""Aero Workbench: an x86 PC emulator built to be looked into."""

__version__ = "0.1.0"
