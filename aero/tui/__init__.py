"""The Textual TUI: the debugger's cockpit (`aero tui`, `python -m aero.tui`).

The package is split by what each module holds:

=================  =============================================================================
``app``            the ``AeroApp`` (layout, key bindings, refresh policy) and ``main()``
``session``        the machine, its ``Debugger`` and ``Commands``, and the policy of which
                   command runs where (UI thread, worker thread, paused-and-resumed); no Textual
``runner``         the worker thread that moves the machine (continue, steps, run commands)
``travel``         time travel for the session: the reverse keys and commands as worker jobs,
                   moves coalesced while a key is held, recording on/off (Ctrl+R); no Textual
``codeview``       capstone disassembly around an address, with known instruction boundaries
``sinks``          thread-safe host output sinks (COM1, port E9h) and a small terminal buffer
``display``        the pygame guest display in a thread of its own
``keys``           the key bindings, shared by the app and the help screen
``help``           the help screen
``panes/``         one module per pane (registers, disassembly, memory, stack, tables, paging,
                   devices, serial, events, breakpoints, profile, timeline, command line,
                   status bar)
``aero.tcss``      the styles
=================  =============================================================================

Threads: the UI thread (Textual's event loop) owns every widget; the runner's worker thread
runs the machine; the display thread owns SDL; the CPU thread (the worker) calls the output
sinks.  Panes read machine state on the UI thread: consistent whenever the worker is idle (every
pane is refreshed at once when a run stops), and possibly torn for a moment while the guest
runs, which the periodic refresh tolerates.
"""

__all__ = ["AeroApp", "main"]


def __getattr__(name):
    """``AeroApp`` and ``main`` load Textual only when asked for (the UI-free modules of the
    package do not need it)."""
    if name in __all__:
        from . import app
        return getattr(app, name)
    raise AttributeError(name)
