"""A compact map from call-id hashes to small integers, for files with millions of calls.

Validating a 1 GB file means remembering ~1M call ids (duplicates, late parents, ends
whose start came first). A Python `set` of 1M id strings costs ~130 MB; this costs 12
bytes an id (its hash and its ordinal), plus a fixed 8 MB filter and a bounded dict of
the newest ids, so `validate` stays under its memory budget.

How: the caller hashes each id to 64 bits (`hash(str)`, SipHash) and gives it an
*ordinal* (its position in the caller's own per-call arrays). New entries go to a dict;
when it fills it is frozen into a block of two arrays, the hashes sorted and their
ordinals beside them (sorting and splitting happen in C). Blocks are merged only when
there are more than a few (smallest neighbours first), since merging costs what it
moves; a lookup bisects each. A bitmap over all frozen hashes answers most misses (the
common case: a new id) without touching the blocks. The bitmap is addressed by a hash's
*top* bits (`h >> 41` picks the byte; a negative index counts from the end, so the 2²³
bytes are covered exactly once), so freezing sorted hashes walks it front to back, which
the cache likes: the loop setting the bits costs ~30% less CPU than with the low bits
(the same instructions, fewer cache misses). Hashes of strings spread over all 64 bits;
a caller hashing small ints would only make the filter useless, not wrong.

Trade-off: two different ids with the same 64-bit hash are taken for the same id. With n
ids the chance of that anywhere in a run is about n² / 2⁶⁵: 3e-8 for a million ids,
3e-4 for a hundred million. The effect would be one false "duplicate call id" (or a
missed "end without start"), never a crash or a lost record; the hash seed changes every
run, so a re-run would not repeat it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeAlias

RECENT_MAX = 1 << 16  # ~7 MB of dict at most; fewer freezes and merges than smaller
_BITMAP_BITS = 1 << 26  # 8 MB; ~1.5% false positives at 1M ids, ~15% at 10M
_BYTE_SHIFT = 64 - 23  # h >> 41: a byte index in [-2**22, 2**22), the top 23 bits
_BIT_SHIFT = _BYTE_SHIFT - 3  # (h >> 38) & 7: the bit within that byte, the next 3 bits
_MERGE_CHUNK = 1 << 15
_MAX_BLOCKS = 16  # 1M ids need no merge at all; 10M ids, each id merged a few times

Block: TypeAlias = tuple["array[int]", "array[int]"]  # (sorted hashes, their ordinals)


class HashIndex:
    """hash → ordinal: `recent` (a dict, the newest), then frozen sorted blocks."""

    __slots__ = ("_bitmap", "_blocks", "recent")

    def __init__(self, _unused: Any = None) -> None:
        self.recent: dict[int, int] = {}
        self._blocks: list[Block] = []
        self._bitmap: bytearray | None = None

    def __len__(self) -> int:
        return len(self.recent) + sum(len(keys) for keys, _ in self._blocks)

    @property
    def frozen(self) -> bool:
        """Whether any entry has left `recent` (so a miss there is not the last word)."""
        return self._bitmap is not None

    def get(self, h: int) -> int | None:
        o = self.recent.get(h)
        if o is not None or self._bitmap is None:
            return o
        if not self._bitmap[h >> _BYTE_SHIFT] & (1 << ((h >> _BIT_SHIFT) & 7)):
            return None
        for keys, ords in self._blocks:
            i = bisect_left(keys, h)
            if i < len(keys) and keys[i] == h:
                return ords[i]
        return None

    def any_of(self, hs: Iterable[int]) -> bool:
        """Whether any of these hashes has left `recent` for the blocks (recent itself is
        the caller's to test, as a set operation)."""
        if self._bitmap is None:
            return False
        bitmap = self._bitmap
        for h in hs:
            if (
                bitmap[h >> _BYTE_SHIFT] & (1 << ((h >> _BIT_SHIFT) & 7))
                and self.get(h) is not None
            ):
                return True
        return False

    def items(self) -> Iterator[tuple[int, int]]:
        """Every (hash, ordinal): the frozen blocks', then `recent`'s."""
        for keys, ords in self._blocks:
            yield from zip(keys, ords, strict=True)
        yield from self.recent.items()

    def add(self, h: int, ordinal: int) -> None:
        """Record a hash not already present (the caller looked it up first)."""
        self.recent[h] = ordinal
        if len(self.recent) >= RECENT_MAX:
            self._freeze()

    def freeze_if_full(self) -> None:
        """For callers that fill `recent` themselves (`dict.update`)."""
        if len(self.recent) >= RECENT_MAX:
            self._freeze()

    def _freeze(self) -> None:
        if self._bitmap is None:
            self._bitmap = bytearray(_BITMAP_BITS >> 3)
        bitmap = self._bitmap
        recent = self.recent
        keys = sorted(recent)  # ints sort far faster than (hash, ordinal) tuples
        for h in keys:  # ascending, so the bitmap is walked in order (see the docstring)
            bitmap[h >> _BYTE_SHIFT] |= 1 << ((h >> _BIT_SHIFT) & 7)
        self._blocks.append((array("q", keys), array("I", _values(recent, keys))))
        self.recent.clear()  # the same dict: callers may hold it
        blocks = self._blocks
        while len(blocks) > _MAX_BLOCKS:
            # merge the smallest neighbours: each merge costs what it moves, so blocks
            # are left alone until there are many (a lookup past `recent` is rare: the
            # bitmap answers most misses)
            i = min(range(len(blocks) - 1), key=lambda j: len(blocks[j][0]) + len(blocks[j + 1][0]))
            blocks[i : i + 2] = [_merge(blocks[i], blocks[i + 1])]


def _values(where: Mapping[int, int] | Sequence[int], keys: Sequence[int]) -> Sequence[int]:
    """`where[k]` for each key (or position), in one C call: `itemgetter` of many keys
    costs ~25% less than a `map` over `__getitem__` (of one it gives the value, not a
    1-tuple)."""
    if len(keys) < 2:
        return [where[k] for k in keys]
    values: tuple[int, ...] = itemgetter(*keys)(where)
    return values


def _merge(a: Block, b: Block) -> Block:
    """Merge two blocks, holding at most 2 * _MERGE_CHUNK entries as Python objects.

    The inputs are consumed from the front as the output grows, so a merge needs little
    more memory than its result (a memmove per chunk is cheap next to a second copy).
    """
    (ka, oa), (kb, ob) = a, b
    keys, ords = array("q"), array("I")  # ordinals: < 2**32
    while ka and kb:
        pivot = min(ka[min(_MERGE_CHUNK, len(ka)) - 1], kb[min(_MERGE_CHUNK, len(kb)) - 1])
        ia = bisect_right(ka, pivot)
        jb = bisect_right(kb, pivot)
        chunk_keys = (ka[:ia] + kb[:jb]).tolist()
        # the order of the positions, not a dict from key to ordinal: two sorted runs
        # sort in one pass, and list lookups are cheap (~40% less than the dict's way)
        order = sorted(range(len(chunk_keys)), key=chunk_keys.__getitem__)
        keys.extend(_values(chunk_keys, order))
        ords.extend(_values((oa[:ia] + ob[:jb]).tolist(), order))
        del ka[:ia], oa[:ia], kb[:jb], ob[:jb]
    for rest_k, rest_o in ((ka, oa), (kb, ob)):
        keys.extend(rest_k)
        ords.extend(rest_o)
    return keys, ords
