"""Choosing what a unit covers: the hot block and the blocks it leads to.

From the hot block, the region follows static control flow (the fall-through, a jump's or a
call's target, both ways of a conditional branch, the return address after a call) through blocks
the code cache already holds for the same code segment: code that has run, decoded as it ran.  A
return or an indirect jump is dispatched at run time like any other transfer: staying in the region
when its target is in it.  Blocks ending in a REP string instruction, blocks with hooks compiled
in, and blocks decoded for another translation generation stay out; so does everything past a
block after which the run loop must look at the world (a far transfer, a mode change): the region
returns after such a block.

Every block of a region lies in the code pages of its entry block.  A unit is checked against
the page tables as its entry block is (``CodeCache.lookup``, after the MMU's generation
changed), and the interpreter's checks of the other blocks, were it running them, would then
find their pages in the TLB: both tiers fill the TLB alike.  (A block on another page is
reached through the run loop, which checks it as the interpreter does.)
"""

from __future__ import annotations

from ..cpu.blocks import JumpBlock

MAX_BLOCKS = 24
MAX_INSNS = 400


def successors(blk) -> list[int]:
    """The EIPs control may reach after ``blk`` without computing them (the fall-through or
    return address first)."""
    if blk.check:
        return []
    last = blk.insns[-1]
    if not isinstance(blk, JumpBlock):
        return [blk.end_eip]
    ends = last.entry.ends
    name = last.entry.name
    mask = 0xFFFFFFFF if last.opsize == 32 else 0xFFFF
    target = (blk.end_eip + last.imm) & mask
    if ends == "cond":
        return [blk.end_eip, target]
    if name == "JMP":
        return [target]
    if name == "CALL":
        return [target, blk.end_eip]
    if name == "CALL_RM":
        return [blk.end_eip]
    return []


def form(cache, entry, usable) -> list:
    """The blocks of a region starting at ``entry`` (first in the list).  ``usable(blk)`` says
    whether a cached block may join."""
    base = entry.key[1] >> 33
    code32 = entry.key[1] & 1
    pages = set(entry.pages)
    region = [entry]
    seen = {entry.eips[0]}
    queue = list(successors(entry))
    total = entry.count
    jump = cache.jump
    while queue and len(region) < MAX_BLOCKS:
        eip = queue.pop(0)
        if eip in seen:
            continue
        seen.add(eip)
        cached = jump.get((base << 33) | code32 | (eip << 1))
        if cached is None or not usable(cached):
            continue
        blk = getattr(cached, "block", cached)      # a unit: the block it was made from
        if total + blk.count > MAX_INSNS or not pages.issuperset(blk.pages):
            continue
        region.append(blk)
        total += blk.count
        queue.extend(successors(blk))
    return region
