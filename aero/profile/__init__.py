"""Profiling a running guest: where its time goes (``aero.profile.live``)."""
