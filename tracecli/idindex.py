"""A compact map from call-id hashes to small integers, for files with millions of calls.

Validating a 1 GB file means remembering ~1M call ids (duplicates, late parents, ends
whose start came first). A Python `set` of 1M id strings costs ~130 MB; this costs ~8
bytes an id plus a fixed 8 MB filter, so `validate` stays under its memory budget.

How: the caller hashes each id to 64 bits (`hash(str)`, SipHash) and gives it an
*ordinal* (its position in the caller's own per-call arrays). New entries go to a small
dict; when it fills it is frozen into a sorted `array('q')` block of `prefix<<32 | ordinal`
(prefix = the hash's top 32 bits), and blocks of similar size are merged, LSM-style, so
there are only ~log2(n / 32k) of them. A lookup bisects each block for the prefix and
confirms the full hash with the caller's `hashes[ordinal]`. A bitmap over all frozen
hashes answers most misses (the common case: a new id) without touching the blocks.

Trade-off: two different ids with the same 64-bit hash are taken for the same id. With n
ids the chance of that anywhere in a run is about n² / 2⁶⁵: 3e-8 for a million ids,
3e-4 for a hundred million. The effect would be one false "duplicate call id" (or a
missed "end without start"), never a crash or a lost record; the hash seed changes every
run, so a re-run would not repeat it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

RECENT_MAX = 1 << 15
_BITMAP_BITS = 1 << 26  # 8 MB; ~1.5% false positives at 1M ids, ~15% at 10M
_BIT_MASK = _BITMAP_BITS - 1
_LOW32 = 0xFFFFFFFF
_MERGE_CHUNK = 1 << 15


class HashIndex:
    """hash → ordinal, with `hashes[ordinal]` (owned by the caller) the source of truth."""

    __slots__ = ("_bitmap", "_blocks", "_hashes", "recent")

    def __init__(self, hashes: array) -> None:
        self._hashes = hashes
        self.recent: dict[int, int] = {}
        self._blocks: list[array] = []
        self._bitmap: bytearray | None = None

    def __len__(self) -> int:
        return len(self.recent) + sum(len(b) for b in self._blocks)

    def get(self, h: int) -> int | None:
        o = self.recent.get(h)
        if o is not None or self._bitmap is None:
            return o
        b = h & _BIT_MASK
        if not self._bitmap[b >> 3] & (1 << (b & 7)):
            return None
        prefix = h >> 32
        lo = prefix << 32
        hashes = self._hashes
        for block in self._blocks:
            i = bisect_left(block, lo)
            n = len(block)
            while i < n:
                k = block[i]
                if k >> 32 != prefix:
                    break
                o = k & _LOW32
                if hashes[o] == h:
                    return o
                i += 1
        return None

    @property
    def frozen(self) -> bool:
        """Whether any entry has left `recent` (so a miss there is not the last word)."""
        return self._bitmap is not None

    def freeze_if_full(self) -> None:
        if len(self.recent) >= RECENT_MAX:
            self._freeze()

    def add(self, h: int, ordinal: int) -> None:
        """Record a hash not already present (the caller looked it up first)."""
        self.recent[h] = ordinal
        if len(self.recent) >= RECENT_MAX:
            self._freeze()

    def _freeze(self) -> None:
        if self._bitmap is None:
            self._bitmap = bytearray(_BITMAP_BITS >> 3)
        bitmap = self._bitmap
        keys = []
        for h, o in self.recent.items():
            b = h & _BIT_MASK
            bitmap[b >> 3] |= 1 << (b & 7)
            keys.append(((h >> 32) << 32) | o)
        keys.sort()
        self._blocks.append(array("q", keys))
        self.recent.clear()  # the same dict: callers may hold it
        blocks = self._blocks
        while len(blocks) >= 2 and len(blocks[-2]) <= len(blocks[-1]) * 2:
            b2 = blocks.pop()
            b1 = blocks.pop()
            blocks.append(_merge(b1, b2))


def _merge(a: array, b: array) -> array:
    """Merge two sorted arrays, holding at most 2 * _MERGE_CHUNK Python ints at a time."""
    out = array("q")
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        pivot = min(a[min(i + _MERGE_CHUNK, na) - 1], b[min(j + _MERGE_CHUNK, nb) - 1])
        ia = bisect_right(a, pivot, i)
        jb = bisect_right(b, pivot, j)
        out.extend(array("q", sorted(a[i:ia] + b[j:jb])))
        i, j = ia, jb
    out.extend(a[i:])
    out.extend(b[j:])
    return out
