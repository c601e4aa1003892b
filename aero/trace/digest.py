"""A fast digest of a machine state, for the recorder's checkpoints.

``Machine.state_hash`` hashes 48 MiB of memory every time (tens of milliseconds).  A recording
needs digests often, so this one works on ``Machine.get_state()`` results, whose memory is a
tuple of immutable 4 KiB pages shared between successive states: a page object digested once is
not digested again, and the zero page is known in advance.  Taking a state and digesting it
costs a few milliseconds, mostly proportional to what changed.

What it covers is what ``state_hash`` covers, in a canonical form: the clock's pending events
as (tick, name) in firing order, not their raw sequence numbers (a replay schedules its own host
timers, which shifts those numbers without changing what fires when).
"""

from __future__ import annotations

import hashlib
import json

from ..mem.pages import ZERO_PAGE

_ZERO_DIGEST = hashlib.blake2b(ZERO_PAGE, digest_size=16).digest()


def _blob(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "blake2b:" + hashlib.blake2b(v, digest_size=16).hexdigest()
    if isinstance(v, tuple):
        return list(v)
    return repr(v)


def canonical(state: dict) -> dict:
    """A state without its memory, in the form digests and comparisons use."""
    out = {k: v for k, v in state.items() if k not in ("ram", "vram", "clock")}
    out["events"] = [[when, name] for when, _, name in state["clock"]["events"]]
    return out


class StateDigest:
    def __init__(self):
        self._cache: dict[int, tuple[bytes, bytes]] = {}    # id(page) -> (page, digest)

    def page_digests(self, pages: tuple) -> bytes:
        cache = self._cache
        out = []
        fresh = {}
        for p in pages:
            if p is ZERO_PAGE:
                out.append(_ZERO_DIGEST)
                continue
            e = cache.get(id(p))
            if e is None or e[0] is not p:
                e = (p, hashlib.blake2b(p, digest_size=16).digest())
            fresh[id(p)] = e
            out.append(e[1])
        self._fresh.update(fresh)
        return b"".join(out)

    def __call__(self, state: dict) -> str:
        """The digest of a ``Machine.get_state()`` result."""
        self._fresh = {}
        h = hashlib.sha256()
        h.update(json.dumps(canonical(state), sort_keys=True, separators=(",", ":"),
                            default=_blob).encode())
        h.update(self.page_digests(state["ram"]))
        h.update(self.page_digests(state["vram"]))
        self._cache = self._fresh            # keep the pages of this state (and only them)
        return h.hexdigest()
