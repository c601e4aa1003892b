"""Exports of a trace to formats other tools read: Tenet text traces (``tenet``), drcov coverage for
Lighthouse (``drcov``), Chrome trace / Perfetto JSON (``chrome``), speedscope profiles
(``speedscope``)."""
