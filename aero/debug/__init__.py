"""The debugger: breakpoints, watchpoints, catches, stepping, symbols, expressions, the command
language and the gdb remote stub.  No UI code: the console (`aero debug`), the TUI and gdb all
drive a ``Debugger`` (``aero.debug.debugger``)."""
