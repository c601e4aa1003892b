"""Where two machine states differ: the paths of the values that differ, for tests and for
locating a divergence."""

from __future__ import annotations

from ..cpu.state import get_state as cpu_state
from ..machine import _without_host_names


def hashed_view(m) -> dict:
    """What ``Machine.state_hash`` digests, as data."""
    return {"cpu": cpu_state(m.cpu), "devices": _without_host_names(m.device_states()),
            "irq": list(m.irq.level), "now": m.clock.now(), "a20": m.bus.a20,
            "events": [[e.when, e.name] for e in m.clock.pending()],
            "inputs": m.inputs.get_state(), "ram": bytes(m.bus.ram), "vram": bytes(m.vga.vram)}


def diff(a, b, path: str = "", out: list | None = None, limit: int = 20) -> list[str]:
    """Paths where plain data ``a`` and ``b`` differ (at most ``limit``)."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'b' if k not in a else 'a'}")
            else:
                diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out, limit)
    elif isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)) and \
            len(a) == len(b) and a != b:
        first = next(i for i in range(len(a)) if a[i] != b[i])
        out.append(f"{path}: bytes differ from offset {first:#x} "
                   f"({a[first]:02x} vs {b[first]:02x})")
    elif a != b:
        out.append(f"{path}: {a!r:.80} vs {b!r:.80}")
    return out


def machine_diff(m1, m2, limit: int = 20) -> list[str]:
    return diff(hashed_view(m1), hashed_view(m2), "", None, limit)
