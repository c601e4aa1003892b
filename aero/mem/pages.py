"""Memory snapshots as shared immutable pages.

A ``PageMirror`` keeps what a memory (RAM, VRAM) held at the last sync point as one ``bytes``
object per 4 KiB page.  Together with dirty tracking (which pages were written since), it makes a
complete snapshot cost one copy per *changed* page: ``snapshot`` refreshes the changed pages and
returns the mirror as a tuple, whose unchanged pages are the very objects earlier snapshots hold.
``restore`` writes back only the pages that differ from what the memory holds (by object
identity, plus the pages written since the last sync).  A snapshot is therefore complete and
independent, yet successive snapshots share everything they have in common: this is what makes
snapshots of a 32 MiB machine cheap, and keyframes of a recording small.
"""

from __future__ import annotations

PAGE = 4096
ZERO_PAGE = bytes(PAGE)


class PageMirror:
    def __init__(self, buf: bytearray):
        if len(buf) % PAGE:
            raise ValueError("memory size must be a multiple of 4 KiB")
        self.buf = buf
        mv = memoryview(buf)
        self.pages = [ZERO_PAGE if mv[a: a + PAGE] == ZERO_PAGE else bytes(mv[a: a + PAGE])
                      for a in range(0, len(buf), PAGE)]

    def snapshot(self, dirty) -> tuple:
        """The memory's pages now; ``dirty``: the pages written since the last sync."""
        mv = memoryview(self.buf)
        pages = self.pages
        for p in dirty:
            page = mv[p * PAGE: (p + 1) * PAGE]
            if page == pages[p]:
                continue                # written with what it held: the same page object
            page = bytes(page)
            pages[p] = ZERO_PAGE if page == ZERO_PAGE else page
        return tuple(pages)

    def restore(self, snap: tuple, dirty) -> list[int]:
        """Make the memory hold ``snap``; returns the pages written (those that may differ)."""
        if len(snap) != len(self.pages):
            raise ValueError(f"a snapshot of {len(snap) * PAGE >> 10} KiB of memory cannot "
                             f"be restored into {len(self.pages) * PAGE >> 10} KiB")
        pages = self.pages
        for p in dirty:
            pages[p] = None
        buf = self.buf
        written = []
        for p, (cur, want) in enumerate(zip(pages, snap)):
            if cur is not want:
                buf[p * PAGE: (p + 1) * PAGE] = want
                written.append(p)
        self.pages = list(snap)
        return written

    def audit(self, dirty=()) -> list[int]:
        """Pages whose mirror differs from the memory although they are not in ``dirty`` (for
        tests: a writer that bypasses dirty tracking)."""
        mv = memoryview(self.buf)
        dirty = set(dirty)
        return [p for p, page in enumerate(self.pages)
                if p not in dirty and mv[p * PAGE: (p + 1) * PAGE] != page]
